//! The apply confirmation's options, typed: canary, wave size, max errors and restart timeout
//! as the operator types them, validated by the same parsers as the CLI's flags
//! ([`crate::rollout::options`]), and the "pause after the canary" toggle. Each confirmation
//! starts from the defaults: nothing typed in a cancelled one carries over.

use std::time::Duration;

use crate::rollout::journal::RunOptions;
use crate::rollout::options::{parse_canary, parse_max_errors, parse_restart_timeout, parse_wave, OptionError, RolloutOptions};

/// One typed option of the confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Canary,
    Wave,
    MaxErrors,
    RestartTimeout,
}

impl Field {
    pub const ALL: [Field; 4] = [Field::Canary, Field::Wave, Field::MaxErrors, Field::RestartTimeout];

    /// The option as the operator knows it (the parsers' error names it the same way).
    pub fn label(self) -> &'static str {
        match self {
            Field::Canary => "canary",
            Field::Wave => "wave size",
            Field::MaxErrors => "max errors",
            Field::RestartTimeout => "restart timeout",
        }
    }

    /// The key that edits it in the confirmation.
    pub fn key(self) -> char {
        match self {
            Field::Canary => 'c',
            Field::Wave => 'w',
            Field::MaxErrors => 'e',
            Field::RestartTimeout => 't',
        }
    }

    pub fn hint(self) -> &'static str {
        match self {
            Field::Canary => "agents first, alone (0: none)",
            Field::Wave => "N agents or P% per wave",
            Field::MaxErrors => "N or P% failures over the run",
            Field::RestartTimeout => "seconds, or 90s / 2m",
        }
    }
}

/// The confirmation's options as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyForm {
    pub canary: String,
    pub wave: String,
    pub max_errors: String,
    pub restart_timeout: String,
    pub pause_after_canary: bool,
    /// The field being typed into, if any.
    pub editing: Option<Field>,
    /// The first key typed replaces the field's text (it is shown selected).
    pub fresh: bool,
}

impl Default for ApplyForm {
    fn default() -> Self {
        ApplyForm {
            canary: "1".into(),
            wave: "25%".into(),
            max_errors: "0".into(),
            restart_timeout: "120".into(),
            pause_after_canary: false,
            editing: None,
            fresh: false,
        }
    }
}

/// The options a confirmed apply runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyChoice {
    pub opts: RunOptions,
    pub restart_timeout: Duration,
    pub pause_after_canary: bool,
}

impl ApplyForm {
    /// The defaults with what a named context sets (`canary`, `wave`, `max_errors`,
    /// `stable_timeout` in seconds) over them: where every confirmation starts.
    pub fn from_context(canary: Option<String>, wave: Option<String>, max_errors: Option<String>, restart_timeout: Option<String>) -> ApplyForm {
        let d = ApplyForm::default();
        ApplyForm {
            canary: canary.unwrap_or(d.canary),
            wave: wave.unwrap_or(d.wave),
            max_errors: max_errors.unwrap_or(d.max_errors),
            restart_timeout: restart_timeout.unwrap_or(d.restart_timeout),
            ..d
        }
    }

    pub fn value(&self, f: Field) -> &str {
        match f {
            Field::Canary => &self.canary,
            Field::Wave => &self.wave,
            Field::MaxErrors => &self.max_errors,
            Field::RestartTimeout => &self.restart_timeout,
        }
    }

    fn value_mut(&mut self, f: Field) -> &mut String {
        match f {
            Field::Canary => &mut self.canary,
            Field::Wave => &mut self.wave,
            Field::MaxErrors => &mut self.max_errors,
            Field::RestartTimeout => &mut self.restart_timeout,
        }
    }

    /// Start typing into `f`.
    pub fn start(&mut self, f: Field) {
        self.editing = Some(f);
        self.fresh = true;
    }

    pub fn insert(&mut self, c: char) {
        let Some(f) = self.editing else { return };
        let fresh = std::mem::take(&mut self.fresh);
        let v = self.value_mut(f);
        if fresh {
            v.clear();
        }
        if v.chars().count() < 16 {
            v.push(c);
        }
    }

    pub fn backspace(&mut self) {
        let Some(f) = self.editing else { return };
        // The value is shown selected until a key is typed: backspace deletes it all.
        if std::mem::take(&mut self.fresh) {
            self.value_mut(f).clear();
        } else {
            self.value_mut(f).pop();
        }
    }

    pub fn done(&mut self) {
        self.editing = None;
        self.fresh = false;
    }

    /// The field's own error, if its text does not parse.
    pub fn field_error(&self, f: Field) -> Option<OptionError> {
        let v = self.value(f);
        match f {
            Field::Canary => parse_canary(v).err(),
            Field::Wave => parse_wave(v).err(),
            Field::MaxErrors => parse_max_errors(v).err(),
            Field::RestartTimeout => parse_restart_timeout(v).err(),
        }
    }

    /// The first invalid field's error (what blocks `y`).
    pub fn error(&self) -> Option<OptionError> {
        Field::ALL.iter().find_map(|f| self.field_error(*f))
    }

    /// The four fields validated together.
    pub fn choice(&self) -> Result<ApplyChoice, OptionError> {
        let o = RolloutOptions::parse(&self.canary, &self.wave, &self.max_errors, &self.restart_timeout)?;
        Ok(ApplyChoice { opts: o.run_options(), restart_timeout: o.restart_timeout, pause_after_canary: self.pause_after_canary })
    }
}
