//! What the console shows, as values: styles, the screen's arithmetic, and the long texts
//! (an agent's detail, the audit) as lines. Below both the state machine ([`super::app`],
//! which bounds scrolling by them) and the renderer ([`super::ui`], which draws them).

pub mod audit;
pub mod detail;
pub mod layout;
pub mod theme;
pub mod wrap;
