//! TEMPORARY stand-in until the real redactor lands from helper/probe (same API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted { pub text: String, pub secrets: Vec<String> }
pub fn redact(text: &str) -> Redacted {
    let mut secrets: Vec<String> = Vec::new();
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        if let Some((k, v)) = line.split_once('=') {
            if is_secret_key(k.trim().trim_matches('"')) {
                let val = v.trim().trim_matches('"').to_string();
                let n = secrets.iter().position(|s| *s == val).unwrap_or_else(|| { secrets.push(val.clone()); secrets.len() - 1 }) + 1;
                out.push_str(&format!("{}= \"<redacted:{n}>\"{}", k, if line.ends_with('\n') {"\n"} else {""}));
                continue;
            }
        }
        out.push_str(line);
    }
    Redacted { text: out, secrets }
}
pub fn is_secret_key(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n != "env_key" && ["key", "token", "secret", "password", "credential"].iter().any(|w| n.contains(w))
}
