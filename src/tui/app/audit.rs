//! The Audit view's state: past runs, the by-image audit's scroll, and the report export.

use crate::tui::action::{Action, Effect, Mode, Msg};
use super::App;
use crate::tui::model::input::LineInput;

impl App {
    /// Scrolling the audit and exporting the report.
    pub(super) fn audit_action(&mut self, action: Action) -> Vec<Effect> {
        let mut fx = Vec::new();
        match action {
            Action::ScrollAudit(d) => {
                // Wrapped lines count too: allow up to three screen lines per logical line.
                let n = crate::tui::text::audit::audit_lines(crate::tui::text::theme::Theme { color: !self.no_color }, &self.report).len() * 3;
                self.audit_scroll = self.audit_scroll.saturating_add_signed(d).min(n.saturating_sub(1));
            }
            Action::StartExport => {
                let stamp = crate::fsutil::utc_stamp();
                self.input = LineInput::with(&format!("export md codex-fleet-report-{stamp}.md"));
                self.mode = Mode::Command;
            }
            Action::Export { format, path } => {
                self.info(format!("exporting to {}…", path.display()));
                fx.push(Effect::Export { format, path });
            }
            _ => {}
        }
        fx
    }

    /// The journal's runs, and the export's result.
    pub(super) fn audit_msg(&mut self, msg: Msg) -> Vec<Effect> {
        let fx = Vec::new();
        match msg {
            Msg::Runs(runs) => {
                self.runs = runs;
                self.clamp();
            }
            Msg::Exported(r) => match r {
                Ok(p) => self.info(format!("report written to {}", p.display())),
                Err(e) => self.error(format!("export failed: {e}")),
            },
            _ => {}
        }
        fx
    }
}
