//! The probe: the script run in each agent container (`assets/probe.sh`, with the on-host
//! redactor `assets/redact.awk` embedded), its report model and its one parser.
//!
//! Backends run [`script()`] as the agent user with positional arguments
//! `MODE GITEA_URL [CODEX_HOME [EMITTER]]` (MODE `summary`, `detail` or `files`), hand the
//! text to [`parse`], and diagnosis reads the [`ProbeReport`]. The demo fleet writes the same
//! text with [`render_summary`] / [`render_detail`].

pub mod model;
pub mod parse;
pub mod render;

pub use model::*;
pub use parse::{
    merge, parse, pct_decode, pct_encode, ParseError, BUNDLED_BWRAP, DEFAULT_EMITTER, FORMAT,
};
pub use render::{render_detail, render_summary, summary_line, summary_view};

const PROBE_SH: &str = include_str!("../../assets/probe.sh");
const REDACT_AWK: &str = include_str!("../../assets/redact.awk");
/// The line of probe.sh (inside a quoted here-document) that the redactor replaces.
const MARKER: &str = "#@@REDACT_AWK@@";

/// The complete probe script: probe.sh with redact.awk embedded. One file, no other
/// dependency than sh, coreutils (or busybox) and awk, so that it can be sent as an SSM
/// command parameter or piped into `docker exec ... sh -s`.
pub fn script() -> String {
    debug_assert!(PROBE_SH.contains(MARKER) && !REDACT_AWK.contains("CFP_AWK_EOF"));
    PROBE_SH.replacen(MARKER, REDACT_AWK.trim_end_matches('\n'), 1)
}

/// Which output a probe run should produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Outcomes, codes, hashes, effective mode: small enough for SSM's output limit.
    Summary,
    /// Everything, with the verbatim (redacted) stderr of each step, argv and cwd.
    Detail,
    /// Detail plus the redacted contents of config.toml and the emitter.
    Files,
}

impl Mode {
    /// The script's first positional argument.
    pub fn arg(self) -> &'static str {
        match self {
            Mode::Summary => "summary",
            Mode::Detail => "detail",
            Mode::Files => "files",
        }
    }
}
