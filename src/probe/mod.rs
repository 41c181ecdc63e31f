//! The probe report model and its one parser; the script itself is `assets/probe.sh`.

pub mod model;
pub use model::*;
