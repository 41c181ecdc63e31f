//! The one-line input (the `/` filter and the `:` command line) and the command line's Tab
//! completion. Knows nothing of the console around it.

use super::super::action::Edit;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineInput {
    pub text: String,
    /// Cursor position in chars.
    pub cursor: usize,
    /// The whole text is selected: typing replaces it, Backspace clears it, a cursor key keeps
    /// it (`/` opens on the current filter this way, like a browser's address bar).
    pub selected: bool,
}

impl LineInput {
    pub fn with(text: &str) -> LineInput {
        LineInput { text: text.into(), cursor: text.chars().count(), selected: false }
    }
    /// `text`, wholly selected (see [`LineInput::selected`]).
    pub fn selecting(text: &str) -> LineInput {
        LineInput { selected: !text.is_empty(), ..LineInput::with(text) }
    }
    fn byte(&self, c: usize) -> usize {
        self.text.char_indices().nth(c).map(|(i, _)| i).unwrap_or(self.text.len())
    }
    pub fn apply(&mut self, e: Edit) {
        if std::mem::take(&mut self.selected) && matches!(e, Edit::Insert(_) | Edit::Backspace | Edit::Delete) {
            self.text.clear();
            self.cursor = 0;
            if !matches!(e, Edit::Insert(_)) {
                return;
            }
        }
        let n = self.text.chars().count();
        match e {
            Edit::Insert(ch) => {
                let b = self.byte(self.cursor);
                self.text.insert(b, ch);
                self.cursor += 1;
            }
            Edit::Backspace if self.cursor > 0 => {
                let b = self.byte(self.cursor - 1);
                self.text.remove(b);
                self.cursor -= 1;
            }
            Edit::Delete if self.cursor < n => {
                let b = self.byte(self.cursor);
                self.text.remove(b);
            }
            Edit::Left => self.cursor = self.cursor.saturating_sub(1),
            Edit::Right => self.cursor = (self.cursor + 1).min(n),
            Edit::Home => self.cursor = 0,
            Edit::End => self.cursor = n,
            Edit::Clear => *self = LineInput::default(),
            _ => {}
        }
    }
}

/// The `:` commands and their arguments, for Tab completion (kept in step with
/// [`App::command`] by a test).
pub const COMMANDS: [&str; 11] = ["agents", "audit", "export", "filter", "help", "hosts", "plan", "quit", "rollout", "runs", "sort"];

const ARGS: [(&str, &[&str]); 2] = [("sort", &["host", "mode", "name", "verdict"]), ("export", &["csv", "json", "md"])];

/// Complete the `:` line: the command word, or the first argument of `sort` / `export`. Returns
/// the new text (extended to the longest common prefix; a blank after a unique completion) and
/// the candidates.
pub fn complete(text: &str) -> (String, Vec<&'static str>) {
    let (head, word, choices): (&str, &str, &[&str]) = match text.split_once(' ') {
        None => ("", text, &COMMANDS),
        Some((cmd, rest)) if !rest.contains(' ') => match ARGS.iter().find(|(c, _)| *c == cmd) {
            Some((_, args)) => (&text[..cmd.len() + 1], rest, args),
            None => return (text.to_string(), Vec::new()),
        },
        Some(_) => return (text.to_string(), Vec::new()),
    };
    let hits: Vec<&'static str> = choices.iter().copied().filter(|c| c.starts_with(word)).collect();
    match hits.as_slice() {
        [] => (text.to_string(), hits),
        [one] => (format!("{head}{one} "), hits),
        many => {
            let mut common = many[0].to_string();
            for h in &many[1..] {
                while !h.starts_with(&common) {
                    common.pop();
                }
            }
            (format!("{head}{}", if common.len() > word.len() { &common } else { word }), hits)
        }
    }
}
