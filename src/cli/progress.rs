//! One status line on stderr for long CLI work (hosts answered of the total while scanning),
//! redrawn in place. Only when stderr is a terminal and the output is not `--json`: a pipe or a
//! log file gets nothing from it, and stdout never does.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

pub struct Progress {
    on: bool,
    shown: AtomicBool,
}

impl Progress {
    pub fn new(g: &super::GlobalArgs) -> Progress {
        Progress { on: !g.json && std::io::stderr().is_terminal(), shown: AtomicBool::new(false) }
    }

    /// Replace the status line with `msg`.
    pub fn set(&self, msg: &str) {
        if self.on {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[2K{msg}");
            let _ = e.flush();
            self.shown.store(true, Ordering::Relaxed);
        }
    }

    /// Erase the status line (before the result, or before a line that must stay).
    pub fn clear(&self) {
        if self.on && self.shown.swap(false, Ordering::Relaxed) {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[2K");
            let _ = e.flush();
        }
    }
}
