//! The console's log: a file under the XDG state directory (`console.log`), never the screen.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

static LOG: OnceLock<Mutex<File>> = OnceLock::new();

/// `$XDG_STATE_HOME/codex-fleet/console.log` (or under `$CODEX_FLEET_STATE_DIR`).
pub fn path() -> PathBuf {
    crate::rollout::journal::state_dir().join("console.log")
}

/// Open the log (append). Without it the console still runs; it just does not log.
pub fn init() -> Option<PathBuf> {
    let p = path();
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).ok()?;
    }
    let f = OpenOptions::new().create(true).append(true).open(&p).ok()?;
    let _ = LOG.set(Mutex::new(f));
    Some(p)
}

pub fn write(args: std::fmt::Arguments) {
    if let Some(m) = LOG.get() {
        if let Ok(mut f) = m.lock() {
            let _ = writeln!(f, "{} {args}", crate::rollout::journal::now());
        }
    }
}

macro_rules! tlog {
    ($($t:tt)*) => { $crate::tui::log::write(format_args!($($t)*)) };
}
pub(crate) use tlog;
