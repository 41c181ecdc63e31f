//! Styles; with NO_COLOR only modifiers remain (the words and glyphs carry the meaning).

use ratatui::style::{Color, Modifier, Style};

use crate::diagnose::Verdict;
use crate::probe::Outcome as ProbeOutcome;

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }
    pub fn verdict(&self, v: Verdict) -> Style {
        match v {
            Verdict::Stalled => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            Verdict::Unknown => self.fg(Color::Magenta),
            Verdict::AtRisk => self.fg(Color::Yellow),
            Verdict::Healthy => self.fg(Color::Green),
        }
    }
    pub fn selected(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }
    pub fn bold(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }
    pub fn dim(&self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }
    pub fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn ok(&self) -> Style {
        self.fg(Color::Green)
    }
    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow)
    }
    pub fn accent(&self) -> Style {
        self.fg(Color::Cyan)
    }
    pub fn outcome(&self, o: ProbeOutcome) -> Style {
        match o {
            ProbeOutcome::Ok => self.ok(),
            ProbeOutcome::Denied => self.error(),
            ProbeOutcome::Absent => self.dim(),
            ProbeOutcome::Error => self.warn(),
        }
    }
}
