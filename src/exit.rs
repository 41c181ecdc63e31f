//! The contract's exit statuses, shared by the CLI and the console.

/// The job was done and nothing needs attention.
pub const EXIT_OK: u8 = 0;
/// The job was done and something needs attention (stalled agents, changes planned, failures).
pub const EXIT_ATTENTION: u8 = 1;
/// The job could not be done (usage, refusal, unsafe input, failed scan).
pub const EXIT_FAILURE: u8 = 2;
