//! What every JSON document says of itself (`format`, `version`, `context`), and the report as
//! it is written, by the CLI (`report`) and the console (`e`, `:export`) alike.

use serde_json::Value;

use super::report::{report_text, Format};
use crate::rollout::summary::RunSummary;
use crate::scan::FleetReport;

/// The version of every `--json` document's shape; raised when a field changes meaning or goes.
pub const JSON_VERSION: u32 = 1;

/// A JSON document as it goes out: `format` names its shape (`codex-fleet/scan`, ... each with
/// a schema in docs/schema/), `version` its version, `context` the named context it ran in.
pub fn document(kind: &str, mut v: Value, context: Option<&str>) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.insert("format".into(), format!("codex-fleet/{kind}").into());
        m.insert("version".into(), JSON_VERSION.into());
        m.insert("context".into(), context.into());
    }
    v
}

/// The report as written to a file or stdout: a JSON report is a document like every `--json`
/// output (and keeps the exact text, terminal-acting characters as `\uXXXX`); a Markdown one
/// names the context under its title; md and csv are for people, so host text in them is made
/// terminal-safe wherever they go. (CSV rows stay rows: the context is not a column.)
pub fn report_file(report: &FleetReport, runs: &[RunSummary], format: Format, generated: &str, context: Option<&str>) -> String {
    let text = report_text(report, runs, format, generated);
    match format {
        Format::Json => {
            let text = match serde_json::from_str(&text) {
                Ok(v) => serde_json::to_string_pretty(&document("report", v, context)).unwrap_or(text),
                Err(_) => text,
            };
            crate::term_safe::json(text)
        }
        Format::Md => {
            let text = match (context, text.strip_prefix("# codex-fleet report\n")) {
                (Some(c), Some(rest)) => format!("# codex-fleet report\n\nContext: {c}.\n{rest}"),
                _ => text,
            };
            crate::term_safe::text(&text).into_owned()
        }
        Format::Csv => crate::term_safe::text(&text).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_file_names_its_context_and_is_terminal_safe() {
        let report = crate::tui::fixtures::incident_fleet();
        let md = report_file(&report, &[], Format::Md, "2026-12-01T00:00:00Z", Some("prod-ro"));
        assert!(md.starts_with("# codex-fleet report\n\nContext: prod-ro.\n"), "{md}");
        assert!(!md.contains('\u{1b}'), "md is for people: no raw escape");
        let json: Value = serde_json::from_str(&report_file(&report, &[], Format::Json, "t", Some("prod-ro"))).unwrap();
        assert_eq!(json["context"], "prod-ro");
        assert_eq!(json["format"], "codex-fleet/report");
        let none: Value = serde_json::from_str(&report_file(&report, &[], Format::Json, "t", None)).unwrap();
        assert!(none["context"].is_null());
        assert!(!report_file(&report, &[], Format::Md, "t", None).contains("Context:"));
    }
}
