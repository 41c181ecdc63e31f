//! Host locks other runs hold, as the plan and the confirmation say them.

use crate::rollout::locks::Held;

/// The held locks as the plan and the confirmation say them.
pub fn held_text(held: &[Held]) -> String {
    if held.is_empty() {
        return String::new();
    }
    let mut s = format!("\nheld by another run's host lock ({} agent(s); the rollout skips them until it is released):\n", held.len());
    for h in held {
        s.push_str(&format!(
            "  {}: {}run {} ({}, {}); `codex-fleet unlock --run {}` if no process acts for it\n",
            h.agent,
            if h.maybe { "maybe locked (the lock got no answer) by " } else { "" },
            h.run_id,
            h.holder,
            h.state,
            h.run_id
        ));
    }
    s
}
