//! The key map: which [`Action`] a key means in the current mode, popup and view. The only
//! place keys are read; everything after works on actions.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::tui::action::{Action, Edit, Mode, Pending, Popup, View};
use super::App;
use crate::tui::model::confirm::Field;

impl App {
    /// The action a key means here and now (mode, popup, view), if any.
    pub fn action_for(&self, key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && key.code == KeyCode::Char('c') {
            return Some(Action::Quit);
        }
        if self.mode != Mode::Normal {
            return Some(match key.code {
                KeyCode::Esc => Action::CancelInput,
                KeyCode::Enter => Action::SubmitInput,
                KeyCode::Tab if self.mode == Mode::Command => Action::Complete,
                KeyCode::Backspace => Action::Edit(Edit::Backspace),
                KeyCode::Delete => Action::Edit(Edit::Delete),
                KeyCode::Left => Action::Edit(Edit::Left),
                KeyCode::Right => Action::Edit(Edit::Right),
                KeyCode::Home => Action::Edit(Edit::Home),
                KeyCode::End => Action::Edit(Edit::End),
                KeyCode::Char('u') if ctrl => Action::Edit(Edit::Clear),
                KeyCode::Char('a') if ctrl => Action::Edit(Edit::Home),
                KeyCode::Char('e') if ctrl => Action::Edit(Edit::End),
                KeyCode::Char(c) if !ctrl => Action::Edit(Edit::Insert(c)),
                _ => return None,
            });
        }
        match &self.popup {
            Some(Popup::Help) => {
                return match key.code {
                    KeyCode::Char('q') | KeyCode::Char('?') | KeyCode::Esc | KeyCode::Enter => Some(Action::ClosePopup),
                    _ => None,
                }
            }
            Some(Popup::Confirm(Pending::Apply { form, .. })) if form.editing.is_some() => {
                return match key.code {
                    KeyCode::Enter | KeyCode::Tab | KeyCode::Esc => Some(Action::FormDone),
                    KeyCode::Backspace => Some(Action::FormBackspace),
                    KeyCode::Char(c) if !ctrl => Some(Action::FormInsert(c)),
                    _ => None,
                }
            }
            Some(Popup::Confirm(p)) => {
                let apply = matches!(p, Pending::Apply { .. });
                return Some(match key.code {
                    KeyCode::Char('y') | KeyCode::Char('Y') => Action::ConfirmYes,
                    KeyCode::Char(c) if apply && Field::ALL.iter().any(|f| f.key() == c) => {
                        Action::FormField(*Field::ALL.iter().find(|f| f.key() == c).unwrap())
                    }
                    KeyCode::Char('p') if apply => Action::TogglePauseAfterCanary,
                    _ => Action::ConfirmNo,
                });
            }
            Some(Popup::CanaryGate { .. }) => {
                return Some(match key.code {
                    KeyCode::Char('y') | KeyCode::Char('Y') => Action::CanaryContinue,
                    _ => Action::CanaryPause,
                });
            }
            Some(Popup::QuitRun) => {
                return match key.code {
                    KeyCode::Char('d') | KeyCode::Char('D') => Some(Action::QuitDetach),
                    KeyCode::Char('a') | KeyCode::Char('A') => Some(Action::QuitAbort),
                    KeyCode::Esc | KeyCode::Char('n') | KeyCode::Char('q') => Some(Action::ClosePopup),
                    _ => None,
                }
            }
            None => {}
        }
        Some(match key.code {
            KeyCode::Char('q') => Action::Quit,
            KeyCode::Esc => Action::Back,
            KeyCode::Char('?') => Action::Help,
            KeyCode::Char('r') => Action::Refresh,
            KeyCode::Char('v') => Action::Verify,
            KeyCode::Char('j') | KeyCode::Down => Action::Move(1),
            KeyCode::Char('k') | KeyCode::Up => Action::Move(-1),
            KeyCode::Char('g') | KeyCode::Home => Action::Top,
            KeyCode::Char('G') | KeyCode::End => Action::Bottom,
            KeyCode::PageUp => Action::PageUp,
            KeyCode::PageDown => Action::PageDown,
            KeyCode::Char('b') if ctrl => Action::PageUp,
            KeyCode::Char('f') if ctrl => Action::PageDown,
            KeyCode::Enter => Action::Open,
            KeyCode::Tab => Action::NextView,
            KeyCode::Char(' ') => Action::ToggleMark,
            KeyCode::Char('*') => Action::MarkVisible,
            KeyCode::Char('u') => Action::ClearMarks,
            KeyCode::Char('s') => Action::Sort,
            KeyCode::Char('S') => Action::ReverseSort,
            KeyCode::Char('p') => Action::Preview,
            KeyCode::Char('a') => Action::Apply,
            KeyCode::Char('/') => Action::StartFilter,
            KeyCode::Char('c') if matches!(self.view, View::Agents | View::Detail) => Action::CopyId,
            KeyCode::Char(':') => Action::StartCommand,
            KeyCode::Char('e') if self.view == View::Audit => Action::StartExport,
            KeyCode::Char('n') if self.view == View::Plan => Action::NextGroup(1),
            KeyCode::Char('N') if self.view == View::Plan => Action::NextGroup(-1),
            KeyCode::Char('J') if self.view == View::Audit => Action::ScrollAudit(1),
            KeyCode::Char('K') if self.view == View::Audit => Action::ScrollAudit(-1),
            KeyCode::Char('P') if self.view == View::Rollout => Action::PauseResume,
            KeyCode::Char('X') if self.view == View::Rollout => Action::Abort,
            KeyCode::Char('B') if matches!(self.view, View::Rollout | View::Audit | View::Runs | View::Run) => Action::Rollback,
            KeyCode::Char('P') if matches!(self.view, View::Runs | View::Run) => Action::ResumeRun,
            _ => return None,
        })
    }
}
