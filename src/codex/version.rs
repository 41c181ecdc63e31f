//! Which codex release an agent runs, and what that release refuses in config.toml.
//!
//! A fleet runs several codex versions at once, and codex keeps changing what it accepts: a key
//! or value one release honours is a hard start-up error in a later one (codex exits 1; the
//! agent is down, not sandboxed). The fixer must never write a config the agent's own codex
//! refuses, so every version difference it acts on lives here, each one measured with the real
//! releases from PyPI (`openai-codex-cli-bin`, `codex debug prompt-input`; the matrix in
//! `tests/real_codex.rs` and docs/codex-versions.md):
//!
//! | change | 0.133.0 | 0.136.0 | 0.144.4 | 0.149.0 | 0.153.4 | 0.163.0 |
//! |---|---|---|---|---|---|---|
//! | legacy `profile = "NAME"` selector | honoured | refused | refused | refused | refused | refused |
//! | `approval_policy = "untrusted"` (top level) | accepted | accepted | accepted | refused | refused | refused |
//!
//! A version not known (`None`: the probe saw no codex, or an unreadable `--version`) is
//! treated as "could be any": the fixer keeps what the oldest generation needs and adds
//! nothing the newest refuses.

use serde::Serialize;

/// A codex release, `major.minor.patch` (pre-release suffixes ignored: `0.150.0-alpha.3` is
/// judged as 0.150.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct CodexVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

/// First release (of the measured matrix) that refuses the legacy `profile = "NAME"` selector
/// (`legacy profile = "p" config is no longer supported; use --profile p with p.config.toml`).
/// 0.133.0 honours it; 0.134.0 (measured outside the test matrix) already refuses it.
pub const LEGACY_PROFILE_REFUSED_FROM: CodexVersion = CodexVersion { major: 0, minor: 134, patch: 0 };
/// First release that refuses `approval_policy = "untrusted"` at the top level
/// (`approval_policy = "untrusted" is no longer supported; remove this setting`); 0.144.4
/// 0.147.0 (measured outside the test matrix) accepts it, 0.149.0 refuses it; 0.148 was not
/// measured and counts as refusing (the fix writes `never` there anyway).
pub const UNTRUSTED_REFUSED_FROM: CodexVersion = CodexVersion { major: 0, minor: 148, patch: 0 };

impl CodexVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        CodexVersion { major, minor, patch }
    }

    /// Reads `0.133.0`, `codex-cli 0.133.0` (what `codex --version` prints and the probe
    /// reports) or `v0.133.0`; `None` for anything else.
    pub fn parse(s: &str) -> Option<CodexVersion> {
        let word = s.split_whitespace().find(|w| w.trim_start_matches('v').starts_with(|c: char| c.is_ascii_digit()))?;
        let core = word.trim_start_matches('v').split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
        let major = parts.next()??;
        let minor = parts.next()??;
        let patch = match parts.next() {
            Some(p) => p?,
            None => 0,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(CodexVersion { major, minor, patch })
    }

    /// Whether this release refuses a top-level legacy `profile = "NAME"` selector.
    pub fn refuses_legacy_profile(self) -> bool {
        self >= LEGACY_PROFILE_REFUSED_FROM
    }

    /// Whether this release refuses `approval_policy = "untrusted"` at the top level.
    pub fn refuses_untrusted(self) -> bool {
        self >= UNTRUSTED_REFUSED_FROM
    }
}

impl std::fmt::Display for CodexVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_codex_prints() {
        assert_eq!(CodexVersion::parse("codex-cli 0.133.0"), Some(CodexVersion::new(0, 133, 0)));
        assert_eq!(CodexVersion::parse("0.163.0"), Some(CodexVersion::new(0, 163, 0)));
        assert_eq!(CodexVersion::parse("v0.150.0-alpha.3"), Some(CodexVersion::new(0, 150, 0)));
        assert_eq!(CodexVersion::parse("codex-cli 0.144"), Some(CodexVersion::new(0, 144, 0)));
        assert_eq!(CodexVersion::parse("codex-cli"), None);
        assert_eq!(CodexVersion::parse("1.2.3.4"), None);
        assert_eq!(CodexVersion::parse("0.x.1"), None);
    }

    #[test]
    fn measured_boundaries() {
        let v = |s| CodexVersion::parse(s).unwrap();
        assert!(!v("0.133.0").refuses_legacy_profile());
        assert!(v("0.134.0").refuses_legacy_profile());
        assert!(v("0.163.0").refuses_legacy_profile());
        assert!(!v("0.147.0").refuses_untrusted());
        assert!(v("0.149.0").refuses_untrusted());
        assert!(!v("0.133.0").refuses_untrusted());
    }
}
