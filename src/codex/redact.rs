//! Secret redaction shared by diffs, reports and the probe. See issue #2.
