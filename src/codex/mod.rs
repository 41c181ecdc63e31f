//! What codex does with a config, and how to change it to the durable fix. Pure: no IO.

pub mod argv;
pub mod config;
pub mod diff;
pub mod emitter;
pub mod fix;
pub mod modes;
pub mod redact;
pub mod repair;
pub mod version;
