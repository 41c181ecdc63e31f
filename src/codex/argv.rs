//! Codex command-line overrides found in how codex is started.
//!
//! Precedence makes these matter: `-s/--sandbox`, `-a/--ask-for-approval`, `-c key=value`,
//! `--profile`, `--full-auto` and `--dangerously-bypass-approvals-and-sandbox` beat
//! config.toml, so an agent whose container starts `codex -s workspace-write ...` stays
//! sandboxed whatever the file says. A config change cannot cure that: it is reported
//! (`cli-override`) and not planned.

use serde::Serialize;

/// What one or more codex command lines override.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CliOverrides {
    pub sandbox_mode: Option<String>,
    pub approval_policy: Option<String>,
    pub profile: Option<String>,
    pub network_access: Option<bool>,
    /// `codex exec` (approval defaults to never there).
    pub exec: bool,
    /// The overriding flags as they were written (evidence; values are sandbox words, never
    /// secrets: only these keys are kept).
    pub flags: Vec<String>,
}

impl CliOverrides {
    /// Does anything here override the two settings the fix owns?
    pub fn overrides_fix(&self) -> bool {
        self.sandbox_mode.is_some() || self.approval_policy.is_some() || self.profile.is_some()
    }

    /// Combine several command lines: the first one that sets a value wins.
    pub fn merge(mut self, other: CliOverrides) -> CliOverrides {
        self.sandbox_mode = self.sandbox_mode.or(other.sandbox_mode);
        self.approval_policy = self.approval_policy.or(other.approval_policy);
        self.profile = self.profile.or(other.profile);
        self.network_access = self.network_access.or(other.network_access);
        self.exec |= other.exec;
        for f in other.flags {
            if !self.flags.contains(&f) {
                self.flags.push(f);
            }
        }
        self
    }
}

/// Split a `sh -c` string into words: quotes and backslashes honoured, operators (`;`, `&&`,
/// `|`, `||`, `&`) kept as their own words. Good enough to find a codex invocation; never
/// used to build a command.
pub fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                has = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                has = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(n) = chars.next() {
                                cur.push(n)
                            }
                        }
                        _ => cur.push(c),
                    }
                }
            }
            '\\' => {
                has = true;
                if let Some(n) = chars.next() {
                    cur.push(n)
                }
            }
            ';' | '&' | '|' | '\n' => {
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
                let mut op = c.to_string();
                if (c == '&' || c == '|') && chars.peek() == Some(&c) {
                    op.push(chars.next().unwrap());
                }
                out.push(op);
            }
            c if c.is_whitespace() => {
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => {
                has = true;
                cur.push(c)
            }
        }
    }
    if has {
        out.push(cur);
    }
    out
}

fn is_operator(w: &str) -> bool {
    matches!(w, ";" | "&" | "&&" | "|" | "||" | "\n")
}

/// Is this word the codex executable (`codex`, `/usr/local/bin/codex`, `codex-x86_64-...`)?
fn is_codex(word: &str) -> bool {
    let base = word.rsplit('/').next().unwrap_or(word);
    base == "codex" || base.starts_with("codex-x86_64") || base.starts_with("codex-aarch64")
}

/// Expand a command line: words of `sh -c "..."`-style arguments are split too, so a codex
/// invocation inside a shell string is found.
fn expand(argv: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for a in argv {
        if a.contains(char::is_whitespace) || a.contains(';') || a.contains("&&") {
            out.extend(shell_words(a));
        } else {
            out.push(a.clone());
        }
    }
    out
}

/// The value of a `-c key=value` override as codex reads it: TOML when it parses as a
/// value, else the raw string.
fn config_value(raw: &str) -> String {
    let raw = raw.trim();
    if let Ok(v) = raw.parse::<toml_edit::Value>() {
        if let Some(s) = v.as_str() {
            return s.to_string();
        }
        if let Some(b) = v.as_bool() {
            return b.to_string();
        }
        return v.to_string().trim().to_string();
    }
    raw.to_string()
}

/// Find every codex invocation in a command line (the container's Entrypoint+Cmd, or a
/// process's argv) and what it overrides.
pub fn parse_command_line(argv: &[String]) -> CliOverrides {
    let words = expand(argv);
    let mut o = CliOverrides::default();
    let mut i = 0;
    while i < words.len() {
        if !is_codex(&words[i]) {
            i += 1;
            continue;
        }
        i += 1;
        let mut first_positional = true;
        while i < words.len() && !is_operator(&words[i]) {
            let w = words[i].as_str();
            let (flag, inline) = match w.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
                _ => (w, None),
            };
            let take = |i: &mut usize| -> Option<String> {
                if let Some(v) = inline.clone() {
                    return Some(v);
                }
                *i += 1;
                words.get(*i).cloned()
            };
            match flag {
                "-s" | "--sandbox" => {
                    if let Some(v) = take(&mut i) {
                        o.flags.push(format!("{flag} {v}"));
                        o.sandbox_mode.get_or_insert(v);
                    }
                }
                "-a" | "--ask-for-approval" => {
                    if let Some(v) = take(&mut i) {
                        o.flags.push(format!("{flag} {v}"));
                        o.approval_policy.get_or_insert(v);
                    }
                }
                "-p" | "--profile" => {
                    if let Some(v) = take(&mut i) {
                        o.flags.push(format!("{flag} {v}"));
                        o.profile.get_or_insert(v);
                    }
                }
                "-c" | "--config" => {
                    if let Some(kv) = take(&mut i) {
                        if let Some((k, v)) = kv.split_once('=') {
                            let k = k.trim();
                            let v = config_value(v);
                            match k {
                                "sandbox_mode" => {
                                    o.flags.push(format!("-c sandbox_mode={v}"));
                                    o.sandbox_mode.get_or_insert(v);
                                }
                                "approval_policy" => {
                                    o.flags.push(format!("-c approval_policy={v}"));
                                    o.approval_policy.get_or_insert(v);
                                }
                                "profile" => {
                                    o.flags.push(format!("-c profile={v}"));
                                    o.profile.get_or_insert(v);
                                }
                                "sandbox_workspace_write.network_access" => {
                                    o.flags.push(format!("-c {k}={v}"));
                                    o.network_access.get_or_insert(v == "true");
                                }
                                _ => {}
                            }
                        }
                    }
                }
                "--full-auto" => {
                    o.flags.push(flag.to_string());
                    o.sandbox_mode.get_or_insert("workspace-write".into());
                    o.approval_policy.get_or_insert("on-request".into());
                }
                "--dangerously-bypass-approvals-and-sandbox" | "--yolo" => {
                    o.flags.push(flag.to_string());
                    o.sandbox_mode.get_or_insert(super::modes::DANGER_FULL_ACCESS.into());
                    o.approval_policy.get_or_insert(super::modes::NEVER.into());
                }
                w if first_positional && !w.starts_with('-') => {
                    first_positional = false;
                    if w == "exec" || w == "e" {
                        o.exec = true;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
    o
}

/// Overrides from several command lines (container start command and the argv of each of the
/// container's codex processes), first setter wins.
pub fn parse_all<'a>(lines: impl IntoIterator<Item = &'a [String]>) -> CliOverrides {
    lines
        .into_iter()
        .map(parse_command_line)
        .fold(CliOverrides::default(), CliOverrides::merge)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn finds_flags_in_direct_argv() {
        let o = parse_command_line(&v(&["/usr/bin/codex", "-s", "workspace-write", "-a=never", "app-server"]));
        assert_eq!(o.sandbox_mode.as_deref(), Some("workspace-write"));
        assert_eq!(o.approval_policy, None, "-a=never is not codex syntax for a short flag");
        let o = parse_command_line(&v(&["codex", "--ask-for-approval=never", "exec", "hi"]));
        assert_eq!(o.approval_policy.as_deref(), Some("never"));
        assert!(o.exec);
    }

    #[test]
    fn finds_codex_inside_sh_c() {
        let o = parse_command_line(&v(&[
            "sh",
            "-c",
            "start.sh && exec codex -c 'sandbox_mode=\"read-only\"' --profile ci app-server",
        ]));
        assert_eq!(o.sandbox_mode.as_deref(), Some("read-only"));
        assert_eq!(o.profile.as_deref(), Some("ci"));
        assert!(o.overrides_fix());
    }

    #[test]
    fn ignores_other_programs_flags() {
        let o = parse_command_line(&v(&["molecule-runtime", "-s", "x", "--profile", "p"]));
        assert_eq!(o, CliOverrides::default());
    }

    #[test]
    fn bypass_forces_the_fix_values() {
        let o = parse_command_line(&v(&["codex", "--dangerously-bypass-approvals-and-sandbox", "exec"]));
        assert_eq!(o.sandbox_mode.as_deref(), Some("danger-full-access"));
        assert_eq!(o.approval_policy.as_deref(), Some("never"));
    }

    #[test]
    fn network_override() {
        let o = parse_command_line(&v(&["codex", "-c", "sandbox_workspace_write.network_access=true"]));
        assert_eq!(o.network_access, Some(true));
        assert!(!o.overrides_fix());
    }
}
