//! The agent-ops script (`assets/agent-ops.sh`, with the on-host redactor `assets/redact.awk`
//! embedded) and the one parser of its output. Every backend that mutates files inside a
//! container runs this script as root (`docker exec`, or SSM's `AWS-RunShellScript`): backup,
//! conditional write (placeholders restored on the host), conditional restore, lock, unlock.
//! Values are passed as positional arguments ([`Op::args`]) and the new content on stdin, never
//! inside the script's text.
//!
//! # Output, format 1
//! ```text
//! #cfo 1 write
//! path=/home/agent/.codex/config.toml
//! before=3f...
//! ok=1                   or err=changed|held|refused|absent|io|usage with msg=...
//! #cfo 1 end 4           trailer: the number of items (missing: truncated)
//! ```
//! Values are percent-encoded (`%XX` for bytes outside `[A-Za-z0-9._~/:@+=-]`), as the probe's.

use std::collections::BTreeMap;

use crate::fleet::{FleetError, LockOutcome, WriteReceipt};

const OPS_SH: &str = include_str!("../../assets/agent-ops.sh");
const REDACT_AWK: &str = include_str!("../../assets/redact.awk");
const MARKER: &str = "#@@REDACT_AWK@@";

/// The output format this parser reads and the script writes.
pub const FORMAT: u32 = 1;

/// `$0` of the script when run with `sh -c SCRIPT NAME ARGS...`.
pub const ARGV0: &str = "codex-fleet-agent-ops";

/// Where backups live inside a container.
pub const BACKUP_ROOT: &str = "/var/backups/codex-fleet";
/// The PATH of every command run as root in a container (the container's own PATH may name a
/// directory the agent writes to, where a `sh` or `stat` of its own would then run as root).
pub const ROOT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where locks live inside a container.
pub const LOCK_ROOT: &str = "/var/lib/codex-fleet/locks";

/// The complete script: agent-ops.sh with redact.awk embedded.
pub fn script() -> String {
    debug_assert!(OPS_SH.contains(MARKER) && !REDACT_AWK.contains("CFP_AWK_EOF"));
    OPS_SH.replacen(MARKER, REDACT_AWK.trim_end_matches('\n'), 1)
}

/// One operation, with its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op<'a> {
    Backup { path: &'a str, run_id: &'a str },
    /// The new content goes on stdin ([`write_input`]); with `preview_bytes`, followed by the
    /// content the plan was made from, which the current file must redact to.
    Write { path: &'a str, expected_sha256: Option<&'a str>, run_id: &'a str, preview_bytes: Option<usize> },
    Restore { path: &'a str, backup: &'a str, expected_current_sha256: Option<&'a str> },
    /// `prev`: tokens whose lock of this run may be taken over, comma-separated, or `-`.
    Lock { run_id: &'a str, token: &'a str, holder: &'a str, prev: &'a str },
    Unlock { run_id: &'a str, token: &'a str, prev: &'a str },
}

impl Op<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Backup { .. } => "backup",
            Op::Write { .. } => "write",
            Op::Restore { .. } => "restore",
            Op::Lock { .. } => "lock",
            Op::Unlock { .. } => "unlock",
        }
    }

    /// The script's positional arguments (`$1`...).
    pub fn args(&self) -> Vec<String> {
        let opt = |s: Option<&str>| s.unwrap_or("-").to_string();
        let mut v = vec![self.name().to_string()];
        match self {
            Op::Backup { path, run_id } => v.extend([path.to_string(), run_id.to_string()]),
            Op::Write { path, expected_sha256, run_id, preview_bytes } => {
                v.extend([path.to_string(), opt(*expected_sha256), run_id.to_string()]);
                v.extend(preview_bytes.map(|n| n.to_string()));
            }
            Op::Restore { path, backup, expected_current_sha256 } => {
                v.extend([path.to_string(), backup.to_string(), opt(*expected_current_sha256)])
            }
            Op::Lock { run_id, token, holder, prev } => {
                v.extend([run_id.to_string(), token.to_string(), holder.to_string(), prev.to_string()])
            }
            Op::Unlock { run_id, token, prev } => v.extend([run_id.to_string(), token.to_string(), prev.to_string()]),
        }
        v
    }

    /// The whole command line for an exec API: `/bin/sh -c SCRIPT codex-fleet-agent-ops ARGS...`
    /// (by absolute path, with [`ROOT_PATH`]: never a `sh` the agent put on the PATH).
    pub fn command(&self) -> Vec<String> {
        let mut v = vec!["/bin/sh".to_string(), "-c".to_string(), script(), ARGV0.to_string()];
        v.extend(self.args());
        v
    }
}

/// A write's stdin and its `preview_bytes`: the new content, then (when the request carries it)
/// the redacted content the plan was made from. The script compares that content with the file
/// it reads itself: a matching sha256 alone is only what the container said about itself.
pub fn write_input(req: &crate::fleet::WriteRequest) -> (Vec<u8>, Option<usize>) {
    let mut v = req.after_redacted.as_bytes().to_vec();
    match &req.before_redacted {
        Some(b) if req.before_sha256.is_some() => {
            v.extend_from_slice(b.as_bytes());
            (v, Some(req.after_redacted.len()))
        }
        _ => (v, None),
    }
}

/// The script's answer, decoded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OpsOutput {
    pub op: String,
    pub items: BTreeMap<String, String>,
}

impl OpsOutput {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.items.get(k).map(String::as_str)
    }

    pub fn ok(&self) -> bool {
        self.get("ok") == Some("1")
    }

    /// `(code, message)` of a refusal or failure.
    pub fn err(&self) -> Option<(&str, &str)> {
        self.get("err").map(|c| (c, self.get("msg").unwrap_or("")))
    }

    /// The failure as a fleet error (`None` when the operation succeeded).
    pub fn error(&self) -> Option<FleetError> {
        let (code, msg) = self.err()?;
        let path = self.get("path").unwrap_or("").to_string();
        Some(match code {
            "changed" => FleetError::Changed { path, found: self.get("found").unwrap_or("?").to_string() },
            "held" => FleetError::Refused(format!("{msg}: {}", self.holder())),
            "refused" | "usage" => FleetError::Refused(msg.to_string()),
            _ => FleetError::Other(format!("{code}: {msg}")),
        })
    }

    /// Who holds a lock: `HOLDER (run RUN, since TIME)`.
    pub fn holder(&self) -> String {
        format!(
            "{} (run {}, since {})",
            self.get("holder").filter(|h| !h.is_empty()).unwrap_or("?"),
            self.get("run").unwrap_or("?"),
            self.get("since").filter(|h| !h.is_empty()).unwrap_or("?"),
        )
    }

    /// For backup / write / restore: where the original is kept and the file's sha256 after.
    pub fn receipt(&self) -> Result<Option<WriteReceipt>, FleetError> {
        if let Some(e) = self.error() {
            return Err(e);
        }
        if self.get("absent") == Some("1") {
            return Ok(None);
        }
        let sha = self.get("sha").ok_or_else(|| FleetError::Other(format!("{}: no sha256 in the answer", self.op)))?;
        Ok(Some(WriteReceipt {
            backup_path: self.get("backup").unwrap_or("").to_string(),
            after_sha256: sha.to_string(),
        }))
    }

    pub fn lock_outcome(&self) -> Result<LockOutcome, FleetError> {
        match self.err() {
            None => Ok(LockOutcome::Acquired),
            Some(("held", _)) => Ok(LockOutcome::HeldBy(self.holder())),
            Some(_) => Err(self.error().unwrap_or_else(|| FleetError::Other("lock failed".into()))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpsParseError {
    #[error("no agent-ops header (`#cfo {FORMAT} OP`) in the output")]
    NoHeader,
    #[error("agent-ops output format {0} is not supported (this console reads {FORMAT})")]
    UnsupportedVersion(String),
    #[error("truncated: no trailer `#cfo {FORMAT} end N` ({0} items read)")]
    Truncated(usize),
    #[error("trailer says {declared} items, {found} were read (output damaged)")]
    CountMismatch { declared: usize, found: usize },
    #[error("item {0:?} is not key=value")]
    BadItem(String),
    #[error("item {0:?}: bad percent-encoding")]
    BadEncoding(String),
}

/// Parse the script's stdout. Lines before the header are ignored (nothing should be there).
pub fn parse(text: &str) -> Result<OpsOutput, OpsParseError> {
    let mut lines = text.lines();
    let header = lines.by_ref().find(|l| l.starts_with("#cfo ")).ok_or(OpsParseError::NoHeader)?;
    let mut h = header.split(' ').skip(1);
    let version = h.next().unwrap_or("");
    if version != FORMAT.to_string() {
        return Err(OpsParseError::UnsupportedVersion(version.to_string()));
    }
    let mut out = OpsOutput { op: h.next().unwrap_or("").to_string(), items: BTreeMap::new() };
    let mut n = 0;
    for l in lines {
        if let Some(rest) = l.strip_prefix("#cfo ") {
            let mut t = rest.split(' ');
            if t.next() == Some("1") && t.next() == Some("end") {
                let declared: usize = t.next().and_then(|x| x.parse().ok()).unwrap_or(usize::MAX);
                if declared != n {
                    return Err(OpsParseError::CountMismatch { declared, found: n });
                }
                return Ok(out);
            }
            continue;
        }
        let (k, v) = l.split_once('=').ok_or_else(|| OpsParseError::BadItem(l.to_string()))?;
        let v = decode(v).ok_or_else(|| OpsParseError::BadEncoding(l.to_string()))?;
        out.items.insert(k.to_string(), v);
        n += 1;
    }
    Err(OpsParseError::Truncated(n))
}

/// `%XX` decoding (a trailing `%0a` is a newline of the value).
fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_embeds_the_redactor_once() {
        let s = script();
        assert!(!s.contains(MARKER));
        assert!(s.contains("function issecret("));
        assert!(s.starts_with("#!/bin/sh"));
    }

    #[test]
    fn args_are_positional_values() {
        let op = Op::Write { path: "/a b/$(x)", expected_sha256: None, run_id: "r1", preview_bytes: None };
        assert_eq!(op.args(), ["write", "/a b/$(x)", "-", "r1"]);
        let with = Op::Write { path: "/p", expected_sha256: None, run_id: "r1", preview_bytes: Some(7) };
        assert_eq!(with.args(), ["write", "/p", "-", "r1", "7"]);
        let c = op.command();
        assert_eq!(&c[..2], ["/bin/sh", "-c"], "root's sh by absolute path, never the container PATH's");
        assert_eq!(c[3], ARGV0);
        assert_eq!(&c[4..], ["write", "/a b/$(x)", "-", "r1"]);
    }

    #[test]
    fn parses_and_detects_truncation() {
        let t = "#cfo 1 write\npath=/x%20y\nbefore=-\nbackup=/var/backups/codex-fleet/r/%252fx\nsha=ab\nok=1\n#cfo 1 end 5\n";
        let o = parse(t).unwrap();
        assert_eq!(o.get("path"), Some("/x y"));
        assert_eq!(o.get("backup"), Some("/var/backups/codex-fleet/r/%2fx"));
        assert!(o.ok());
        let r = o.receipt().unwrap().unwrap();
        assert_eq!(r.after_sha256, "ab");
        assert_eq!(parse("#cfo 1 write\npath=/x\n"), Err(OpsParseError::Truncated(1)));
        assert!(matches!(parse("#cfo 1 write\npath=/x\n#cfo 1 end 2\n"), Err(OpsParseError::CountMismatch { .. })));
        assert_eq!(parse("oops"), Err(OpsParseError::NoHeader));
        assert!(matches!(parse("#cfo 2 write\n#cfo 2 end 0\n"), Err(OpsParseError::UnsupportedVersion(_))));
    }

    #[test]
    fn errors_map_to_fleet_errors() {
        let o = parse("#cfo 1 write\npath=/p\nfound=ff\nerr=changed\nmsg=changed%21\n#cfo 1 end 4\n").unwrap();
        assert_eq!(o.error(), Some(FleetError::Changed { path: "/p".into(), found: "ff".into() }));
        let o = parse("#cfo 1 lock\nrun=r0\nholder=ann%40box\nsince=2026\nerr=held\nmsg=m\n#cfo 1 end 5\n").unwrap();
        assert_eq!(o.lock_outcome(), Ok(LockOutcome::HeldBy("ann@box (run r0, since 2026)".into())));
    }
}
