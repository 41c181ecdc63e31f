//! Atomic, backed-up local file writes.
