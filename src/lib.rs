//! codex-fleet: find codex agents whose sandbox cannot start, explain why, and roll out the
//! durable fix (`sandbox_mode = "danger-full-access"`, `approval_policy = "never"`).
//!
//! The core (`codex`, `probe`, `diagnose`) is pure: values in, values out, no IO. Only `cli`
//! (and later the fleet backends) touch the outside world.

pub mod cli;
pub mod codex;
pub mod cpu;
pub mod diagnose;
pub mod exit;
pub mod fleet;
pub mod fsutil;
pub mod plan;
pub mod present;
pub mod probe;
pub mod rollout;
pub mod saved_plan;
pub mod scan;
pub mod select;
pub mod source;
pub mod sim;
pub mod term_safe;
pub mod tui;
