//! A text many agents share. A fleet has a handful of distinct config.toml and boot-emitter
//! contents and thousands of agents: kept once each ([`Interner`]), an agent holds a reference
//! (measured: the redacted emitter and config were ~5.3 KB of the ~9 KB a scanned agent kept,
//! see docs/benchmarks.md).

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An immutable string, cloned by reference count; reads, prints and serializes as a `str`.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Text(Arc<str>);

impl Text {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` and `other` are one allocation (shared, not merely equal).
    pub fn ptr_eq(&self, other: &Text) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(Arc::from(s))
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(Arc::from(s))
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Text {
        Text(Arc::from(s.as_str()))
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, o: &str) -> bool {
        &*self.0 == o
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, o: &&str) -> bool {
        &*self.0 == *o
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, o: &String) -> bool {
        &*self.0 == o.as_str()
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        String::deserialize(d).map(Text::from)
    }
}

/// Equal texts made one: the first of each content is kept, later equal ones are replaced by it.
#[derive(Debug, Default)]
pub struct Interner {
    seen: HashSet<Text>,
}

impl Interner {
    pub fn new() -> Interner {
        Interner::default()
    }

    /// Replace `t` by the kept text of the same content (keeping `t` when it is the first).
    pub fn share(&mut self, t: &mut Text) {
        match self.seen.get(t.as_str()) {
            Some(kept) => *t = kept.clone(),
            None => {
                self.seen.insert(t.clone());
            }
        }
    }

    /// How many distinct texts are kept.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_become_one_allocation_and_read_as_before() {
        let mut i = Interner::new();
        let mut a = Text::from("model = \"x\"\n".to_string());
        let mut b = Text::from("model = \"x\"\n");
        let mut c = Text::from("other");
        assert!(!a.ptr_eq(&b));
        i.share(&mut a);
        i.share(&mut b);
        i.share(&mut c);
        assert!(a.ptr_eq(&b), "the second equal text is the first one now");
        assert!(!a.ptr_eq(&c));
        assert_eq!(i.len(), 2);
        assert_eq!(b, "model = \"x\"\n");
        assert_eq!(format!("{b:?}"), format!("{:?}", "model = \"x\"\n"), "Debug as a str (snapshots unchanged)");
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"model = \\\"x\\\"\\n\"");
        let back: Text = serde_json::from_str("\"other\"").unwrap();
        assert_eq!(back, c);
    }
}
