//! The audit view's lines (what the Audit view draws, and what bounds its scrolling).

use ratatui::text::{Line, Span};

use super::theme::Theme;
use crate::scan::FleetReport;

/// The audit view's lines: per image, the agents that lose the fix on re-provision and what
/// the image needs; then what could not be audited.
pub fn audit_lines(theme: Theme, report: &FleetReport) -> Vec<Line<'static>> {
    let t = theme;
    let mut out = Vec::new();
    let audit = crate::present::audit::image_audit(report);
    out.push(Line::styled(
        "Lost on re-provision: fixes that live only in a container's writable layer, emitters that are not idempotent",
        t.bold(),
    ));
    // "Nothing lost" only when every agent could be read (the report's rule and words).
    let unknown = crate::present::audit_unknown(report);
    if audit.is_empty() && unknown.is_empty() {
        out.push(Line::styled("  nothing: every fix is in its image", t.ok()));
    } else if audit.is_empty() {
        out.push(Line::raw("  nothing found on the agents that could be read"));
    }
    for img in &audit {
        out.push(Line::from(vec![
            Span::styled("  ! ", t.warn()),
            Span::styled(crate::term_safe::line(&img.image).into_owned(), t.bold()),
            Span::raw(format!(" lacks the fix: {} agent(s)", img.agents.len())),
        ]));
        for n in &img.needs {
            out.push(Line::from(vec![Span::styled("    needs: ", t.accent()), Span::raw(crate::term_safe::line(n).into_owned())]));
        }
        // Every agent: the list scrolls (J/K) rather than ending in "… and N more".
        for a in &img.agents {
            let files: Vec<String> = a
                .files
                .iter()
                .map(|(p, sha)| format!("{} {}", p, sha.as_deref().map(|h| h.get(..12).unwrap_or(h)).unwrap_or("?")))
                .collect();
            out.push(Line::styled(
                crate::term_safe::line(&format!(
                    "      {} ({}) {:<28} {}  {}",
                    a.host_name,
                    a.host_id,
                    a.id.rsplit('/').next().unwrap_or(&a.id),
                    a.findings.join(","),
                    files.join(", ")
                ))
                .into_owned(),
                t.dim(),
            ));
        }
    }
    // What the audit could not see, after what it found (the report names why for each).
    if !unknown.is_empty() {
        out.push(Line::styled(format!("  ? not audited ({}): what a re-provision would lose there is not known", unknown.len()), t.warn()));
        for u in &unknown {
            out.push(Line::styled(format!("      {}", crate::term_safe::line(u)), t.dim()));
        }
    }
    out
}
