//! The words codex accepts for `sandbox_mode` and `approval_policy`, and the durable fix's pair.
//! A leaf: both the config model and the command-line model speak these words, so neither
//! has to import the other for them.

pub const DANGER_FULL_ACCESS: &str = "danger-full-access";
pub const NEVER: &str = "never";
pub const SANDBOX_MODES: [&str; 3] = ["read-only", "workspace-write", DANGER_FULL_ACCESS];
pub const APPROVAL_POLICIES: [&str; 4] = ["untrusted", "on-failure", "on-request", NEVER];
