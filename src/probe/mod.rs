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
pub mod text;

pub use model::*;
pub use parse::{
    merge, parse, pct_decode, pct_encode, ParseError, BUNDLED_BWRAP, DEFAULT_EMITTER, FORMAT,
};
pub use text::{Interner, Text};
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

/// The signature letter `assets/probe.sh` gives a step's stderr (its `result` function's awk
/// program, run by `awk` on `stderr`): the one rule set that classifies a failing step. The
/// host runs it in the probe; the demo's hosts and the tests that feed recorded stderr in run
/// the same program through this, so nothing re-implements it. Memoized per text; `None` when
/// no pattern matches (or no awk).
pub fn host_signature(stderr: &str) -> Option<Signature> {
    use std::collections::HashMap;
    use std::io::Write;
    use std::sync::{LazyLock, Mutex};
    static MEMO: LazyLock<Mutex<HashMap<String, Option<Signature>>>> = LazyLock::new(|| Mutex::new(HashMap::new()));
    if let Some(s) = MEMO.lock().unwrap().get(stderr) {
        return *s;
    }
    let program = signature_program();
    let out = std::process::Command::new("awk")
        .arg(program)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().expect("piped").write_all(stderr.as_bytes())?;
            c.wait_with_output()
        })
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let s = out.trim().chars().next().and_then(Signature::from_code);
    MEMO.lock().unwrap().insert(stderr.to_string(), s);
    s
}

/// The awk program of probe.sh's `result` (between `sg=$(awk '` and `' "$T/$1.err"`).
pub fn signature_program() -> &'static str {
    let start = PROBE_SH.find("sg=$(awk '").expect("probe.sh classifies in result()") + "sg=$(awk '".len();
    let len = PROBE_SH[start..].find("' \"$T/$1.err\"").expect("the program ends at the stderr file");
    &PROBE_SH[start..start + len]
}
