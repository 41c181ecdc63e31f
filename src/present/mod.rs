//! Presentation: how the fleet, a plan, a run and the audit read, as text, for the CLI and the
//! console alike. Pure functions of values (no IO, no terminal), below both front ends: the CLI
//! prints them, the console draws them, and neither imports the other for it.

pub mod agents_table;
pub mod audit;
pub mod document;
pub mod locks;
pub mod plan_text;
pub mod plan_view;
pub mod report;
pub mod table;
pub mod why;

pub use agents_table::agents_table;
pub use audit::audit_unknown;
pub use document::{document, report_file, JSON_VERSION};
pub use plan_text::{plan_text, safe_diff};
pub use report::{report_text, Format};
pub use table::{table, verdict_label};
pub use why::{root_cause, stalled_causes, summary_line, why_stalled, why_text};
