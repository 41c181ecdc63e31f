//! Findings and verdicts from config + probe evidence. Pure.
