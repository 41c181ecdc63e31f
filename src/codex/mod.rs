//! What codex does with a config, and how to change it to the durable fix. Pure: no IO.

pub mod emitter;
pub mod redact;
