//! The long texts the console holds (config and emitter contents, stderr lines, image ids),
//! named as the hosts name them: by [`blob_hash`] under a key.
//!
//! Hosts name each long text of a scan by 12 hex digits of `sha256(KEY "\n" TEXT)`, KEY the
//! scan's nonce; the console keeps one text per name for the whole fleet (a thousand hosts
//! hold the same few configs: each is read once). The key is what keeps one host's text from
//! standing for another's: a container cannot search for a second text of another agent's
//! hash before the scan begins (the nonce is random and renewed by every scan, and no
//! container is sent it), and 2^48 SHA-256 do not fit in one scan. Each scan renames the
//! texts held under its own nonce ([`TextStore::rekey`]): a few hundred hashes, not a read.
//! A read or a wait names the texts the console holds under the key current when it is sent,
//! and its answer is read under that key, even if a scan has renewed it meanwhile.

use std::collections::HashMap;

use super::host_script::blob_hash;

/// A nonce for a command: `WHAT-<unix ms>-<16 random hex>` (the time for people reading SSM's
/// command list, the random part so that no host or container can know it before it is sent).
pub(crate) fn new_nonce(what: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let t = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{what}-{}{:03}-{}", t.as_secs(), t.subsec_millis(), crate::fsutil::random_hex(8))
}

/// The texts held, by their name under the current key.
#[derive(Debug)]
pub(crate) struct TextStore {
    key: String,
    by_hash: HashMap<String, String>,
    /// The key before the last [`TextStore::rekey`] and each of its names' new name: reads
    /// sent before a scan renamed everything are answered under it (a rollout's reads while
    /// the console scans again), and a lookup by text would hash every text held.
    prev: Option<(String, HashMap<String, String>)>,
}

impl Default for TextStore {
    fn default() -> Self {
        TextStore { key: new_nonce("texts"), by_hash: HashMap::new(), prev: None }
    }
}

impl TextStore {
    /// The key texts are named by now: what a read sends as its `NONCE`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Name every text held by `key` from now on (a new scan's nonce).
    pub fn rekey(&mut self, key: &str) {
        if key == self.key {
            return;
        }
        let old_key = std::mem::replace(&mut self.key, key.to_string());
        let mut renamed = HashMap::with_capacity(self.by_hash.len());
        for (old, t) in std::mem::take(&mut self.by_hash) {
            let new = blob_hash(key, &t);
            renamed.insert(old, new.clone());
            self.by_hash.insert(new, t);
        }
        self.prev = Some((old_key, renamed));
    }

    /// The text named `h` under `key` (the previous key's names through their renaming; an
    /// older key's, rare, looked for a text at a time).
    pub fn get(&self, key: &str, h: &str) -> Option<&String> {
        if key == self.key {
            return self.by_hash.get(h);
        }
        match &self.prev {
            Some((k, renamed)) if k == key => renamed.get(h).and_then(|n| self.by_hash.get(n)),
            _ => self.by_hash.values().find(|t| blob_hash(key, t) == h),
        }
    }

    pub fn contains(&self, key: &str, h: &str) -> bool {
        self.get(key, h).is_some()
    }

    /// Keep `text` as the one named `h` under `key`, only when that is its name: a host's
    /// answer cannot make its text stand for a name it is not. False when refused.
    pub fn accept(&mut self, key: &str, h: &str, text: String) -> bool {
        if blob_hash(key, &text) != h {
            return false;
        }
        if key == self.key {
            // its name now, checked just above: no need to hash it again
            self.by_hash.entry(h.to_string()).or_insert(text);
        } else {
            self.learn(text);
        }
        true
    }

    /// Keep a text the console read whole (a read's answer), named under the current key.
    pub fn learn(&mut self, text: String) {
        self.by_hash.entry(blob_hash(&self.key, &text)).or_insert(text);
    }

    /// The texts held, with their names under the current key.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.by_hash.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_kept_only_under_its_own_name_and_renamed_by_each_key() {
        let mut s = TextStore::default();
        let k1 = new_nonce("scan");
        s.rekey(&k1);
        let (a, b) = ("config A ".repeat(10), "config B ".repeat(10));
        // Refused: B under A's name (what a forged second text would try).
        assert!(!s.accept(&k1, &blob_hash(&k1, &a), b.clone()));
        assert!(s.accept(&k1, &blob_hash(&k1, &a), a.clone()));
        assert_eq!(s.get(&k1, &blob_hash(&k1, &a)), Some(&a));
        // A name under an unkeyed hash, or another key, does not find it.
        assert!(!s.contains(&k1, &blob_hash("", &a)));
        // A new key renames what is held; the old key's names are still found (a read sent before).
        let k2 = new_nonce("scan");
        assert_ne!(k1, k2, "random part");
        s.rekey(&k2);
        assert_eq!(s.key(), k2);
        assert_eq!(s.get(&k2, &blob_hash(&k2, &a)), Some(&a));
        assert_eq!(s.get(&k1, &blob_hash(&k1, &a)), Some(&a));
        assert!(!s.contains(&k2, &blob_hash(&k1, &a)));
        s.learn(b.clone());
        assert_eq!(s.get(&k2, &blob_hash(&k2, &b)), Some(&b));
        assert_eq!(s.iter().count(), 2);
        assert_eq!(s.get(&k1, &blob_hash(&k1, &b)), None, "learnt after k1: never named under it");
        // Two keys on: the previous through its renaming, the one before by looking.
        let k3 = new_nonce("scan");
        s.rekey(&k3);
        assert_eq!(s.get(&k2, &blob_hash(&k2, &b)), Some(&b));
        assert_eq!(s.get(&k1, &blob_hash(&k1, &a)), Some(&a));
        assert_eq!(s.get(&k3, &blob_hash(&k3, &a)), Some(&a));
    }

    #[test]
    fn nonces_are_random_and_shell_plain() {
        let n = new_nonce("scan");
        let parts: Vec<&str> = n.split('-').collect();
        assert_eq!(parts.len(), 3, "{n}");
        assert_eq!(parts[2].len(), 16);
        assert!(n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'), "{n}");
        assert_ne!(new_nonce("scan")[parts[0].len() + parts[1].len() + 2..], parts[2][..]);
    }
}
