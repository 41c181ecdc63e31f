//! Rollout: the run journal, its replay, the wave engine, rollback.
//!
//! # The outcome model
//!
//! Every step that changes an agent (lock, backup, write, restart, restore, unlock) ends in one
//! of three ways, and only the host's answer decides which:
//!
//! - **done**: the host answered that it did it;
//! - **failed**: the host answered that it did not (refused, changed since the plan, gone,
//!   not delivered): nothing happened, and the agent's outcome is `failed` or `skipped`;
//! - **unknown**: no answer came (a timeout, a cut or lost answer; see
//!   [`crate::fleet::FleetError::is_no_answer`]). It may or may not have happened. The agent's
//!   outcome is `unknown` ([`journal::Outcome::Unknown`]), the step stays *in flight* in the
//!   journal (a `begin` with no `done`/`failed`), the agent keeps its lock, and the run
//!   **halts** after the wave. Nothing is ever concluded from silence: `apply --resume` and
//!   `rollback` ask the host what is there (re-lock, re-read, compare with the plan and the
//!   backups) before they act.
//!
//! # One run, one process
//!
//! A process acts for a run only while it holds the run's [`journal::Journal`] open: opening
//! it takes an exclusive `flock` on the journal file, held for as long as the process acts
//! (apply, resume, rollback, unlock; the console's too), and refused with who holds it
//! otherwise. Each process has its own lock token ([`journal::process_token`]), journaled in a
//! `session` record; the agents' host locks carry the run id and that token, and a later
//! process of the same run takes over only the locks of the tokens its journal names.
//!
//! # Run states
//!
//! One word each, defined once in [`journal::RunState`] and derived from the journal by
//! [`lifecycle::status`] (the CLI, `runs --json` and the console all use it): `running` (a live
//! process holds it), `interrupted` (nobody does, and it did not finish: paused by the
//! operator, paused after the canary, stopped, or its process died: resume or roll back),
//! `halted` (stopped by a canary failure, the error budget or an unknown outcome:
//! `apply --resume RUN --continue-halted`, or roll back), `done`, `rolled-back`. What each
//! allows: [`lifecycle::allowed_actions`].

pub mod engine;
pub mod journal;
pub mod lifecycle;
pub mod locks;
pub mod options;
pub mod summary;
pub mod view;

/// Is a live process holding this run (executing or rolling it back)?
pub fn is_live(run_id: &str) -> bool {
    journal::is_held(run_id)
}
