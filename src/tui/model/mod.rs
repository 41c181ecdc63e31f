//! The console's per-view state types, below the state machine ([`super::app`]) and the
//! renderer ([`super::ui`]) alike: they know nothing of either.

pub mod confirm;
pub mod filter;
pub mod filter_index;
pub mod input;
pub mod plan;
pub mod run;
pub mod runs;
