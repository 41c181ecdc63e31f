//! The rollout options an operator types (canary, wave size, max errors, restart timeout):
//! parsed and validated once, by pure functions whose errors name the field, for clap's value
//! parsers and for the console's typed input alike.

use std::time::Duration;

use super::engine::Size;
use super::journal::RunOptions;

/// The longest restart timeout accepted: an hour (a restart that takes longer is not coming).
pub const MAX_RESTART_TIMEOUT: Duration = Duration::from_secs(3600);

/// An option that does not parse or is out of range, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct OptionError {
    /// The option as the operator knows it: `canary`, `wave size`, `max errors`, `restart timeout`.
    pub field: &'static str,
    pub message: String,
}

fn err(field: &'static str, message: String) -> OptionError {
    OptionError { field, message }
}

/// Agents in the canary wave: a whole number, 0 for none.
pub fn parse_canary(s: &str) -> Result<usize, OptionError> {
    let t = s.trim();
    t.parse::<usize>().map_err(|_| err("canary", format!("`{t}` is not a whole number of agents (0 for no canary)")))
}

/// `N` agents or `P%` (0..=100) of the planned agents.
fn parse_size(field: &'static str, s: &str) -> Result<Size, OptionError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(err(field, "empty: expected N agents or P% of the planned agents".into()));
    }
    if let Some(p) = t.strip_suffix('%') {
        let p: u32 = p.trim().parse().map_err(|_| err(field, format!("`{t}` is not N agents or P% of the planned agents")))?;
        if p > 100 {
            return Err(err(field, format!("`{t}`: a percentage is at most 100%")));
        }
        Ok(Size::Percent(p))
    } else {
        t.parse().map(Size::Count).map_err(|_| err(field, format!("`{t}` is not N agents or P% of the planned agents")))
    }
}

/// Wave size after the canary: `N` agents or `P%` of the planned agents, at least 1 and 1%.
pub fn parse_wave(s: &str) -> Result<Size, OptionError> {
    match parse_size("wave size", s)? {
        Size::Count(0) | Size::Percent(0) => Err(err("wave size", format!("`{}`: a wave has at least one agent", s.trim()))),
        size => Ok(size),
    }
}

/// Failures tolerated over the whole run before it halts: `N` or `P%` of the planned agents.
pub fn parse_max_errors(s: &str) -> Result<Size, OptionError> {
    parse_size("max errors", s)
}

/// How long a restarted agent may take to run stably: seconds (`90`) or a duration (`90s`,
/// `2m`), from 1 s to an hour.
pub fn parse_restart_timeout(s: &str) -> Result<Duration, OptionError> {
    let t = s.trim();
    let d = match t.parse::<u64>() {
        Ok(n) => Duration::from_secs(n),
        Err(_) => humantime::parse_duration(t).map_err(|_| err("restart timeout", format!("`{t}` is not seconds (`120`) or a duration (`90s`, `2m`)")))?,
    };
    if d < Duration::from_secs(1) {
        return Err(err("restart timeout", format!("`{t}`: at least 1 second")));
    }
    if d > MAX_RESTART_TIMEOUT {
        return Err(err("restart timeout", format!("`{t}`: at most an hour (3600 s)")));
    }
    Ok(d)
}

/// The four options, validated together, as the engine and the journal take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutOptions {
    pub canary: usize,
    pub wave: Size,
    pub max_errors: Size,
    pub restart_timeout: Duration,
    /// As typed (normalised: trimmed), for the journal.
    pub wave_text: String,
    pub max_errors_text: String,
}

impl RolloutOptions {
    /// Parse the four fields as typed; the first bad one is named.
    pub fn parse(canary: &str, wave: &str, max_errors: &str, restart_timeout: &str) -> Result<RolloutOptions, OptionError> {
        Ok(RolloutOptions {
            canary: parse_canary(canary)?,
            wave: parse_wave(wave)?,
            max_errors: parse_max_errors(max_errors)?,
            restart_timeout: parse_restart_timeout(restart_timeout)?,
            wave_text: wave.trim().to_string(),
            max_errors_text: max_errors.trim().to_string(),
        })
    }

    /// What the run journal records.
    pub fn run_options(&self) -> RunOptions {
        RunOptions { canary: self.canary, wave: self.wave_text.clone(), max_errors: self.max_errors_text.clone() }
    }
}

/// clap value parsers: the same functions, the message naming the field.
pub mod clap_parsers {
    use super::*;

    pub fn canary(s: &str) -> Result<usize, String> {
        parse_canary(s).map_err(|e| e.to_string())
    }
    /// The text as typed (the journal keeps `N` or `P%`), once it parses.
    pub fn wave(s: &str) -> Result<String, String> {
        parse_wave(s).map(|_| s.trim().to_string()).map_err(|e| e.to_string())
    }
    pub fn max_errors(s: &str) -> Result<String, String> {
        parse_max_errors(s).map(|_| s.trim().to_string()).map_err(|e| e.to_string())
    }
    /// In whole seconds.
    pub fn restart_timeout(s: &str) -> Result<u64, String> {
        parse_restart_timeout(s).map(|d| d.as_secs()).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_is_a_whole_number() {
        assert_eq!(parse_canary("0"), Ok(0));
        assert_eq!(parse_canary(" 3 "), Ok(3));
        let e = parse_canary("-1").unwrap_err();
        assert_eq!(e.field, "canary");
        assert!(e.to_string().starts_with("canary: `-1` is not a whole number"), "{e}");
        assert!(parse_canary("two").is_err());
        assert!(parse_canary("").is_err());
    }

    #[test]
    fn wave_is_n_or_percent_never_zero() {
        assert_eq!(parse_wave("5"), Ok(Size::Count(5)));
        assert_eq!(parse_wave("25%"), Ok(Size::Percent(25)));
        assert_eq!(parse_wave(" 100% "), Ok(Size::Percent(100)));
        for bad in ["0", "0%", "101%", "x", "5%%", "", "-3"] {
            let e = parse_wave(bad).unwrap_err();
            assert_eq!(e.field, "wave size", "{bad}");
            assert!(e.to_string().starts_with("wave size: "), "{e}");
        }
        assert!(parse_wave("101%").unwrap_err().message.contains("at most 100%"));
        assert!(parse_wave("0").unwrap_err().message.contains("at least one agent"));
    }

    #[test]
    fn max_errors_may_be_zero() {
        assert_eq!(parse_max_errors("0"), Ok(Size::Count(0)));
        assert_eq!(parse_max_errors("10%"), Ok(Size::Percent(10)));
        let e = parse_max_errors("lots").unwrap_err();
        assert_eq!(e.to_string(), "max errors: `lots` is not N agents or P% of the planned agents");
        assert!(parse_max_errors("150%").is_err());
    }

    #[test]
    fn restart_timeout_is_seconds_or_a_duration_within_an_hour() {
        assert_eq!(parse_restart_timeout("120"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_restart_timeout("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_restart_timeout("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_restart_timeout("3600"), Ok(MAX_RESTART_TIMEOUT));
        for bad in ["0", "3601", "2h", "soon", "-5", ""] {
            let e = parse_restart_timeout(bad).unwrap_err();
            assert_eq!(e.field, "restart timeout", "{bad}");
        }
    }

    #[test]
    fn all_four_together_name_the_first_bad_field() {
        let o = RolloutOptions::parse("1", " 25% ", "0", "120").unwrap();
        assert_eq!(o.run_options(), RunOptions { canary: 1, wave: "25%".into(), max_errors: "0".into() });
        assert_eq!(o.restart_timeout, Duration::from_secs(120));
        assert_eq!(RolloutOptions::parse("1", "25%", "x", "0").unwrap_err().field, "max errors");
        assert_eq!(RolloutOptions::parse("1", "25%", "1", "0").unwrap_err().field, "restart timeout");
        assert_eq!(RolloutOptions::parse("a", "0", "x", "0").unwrap_err().field, "canary");
    }

    #[test]
    fn clap_parsers_keep_the_text_and_name_the_field() {
        assert_eq!(clap_parsers::wave("10%"), Ok("10%".to_string()));
        assert_eq!(clap_parsers::restart_timeout("2m"), Ok(120));
        assert!(clap_parsers::wave("0").unwrap_err().starts_with("wave size: "));
    }
}
