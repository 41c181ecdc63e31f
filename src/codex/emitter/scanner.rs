//! The boot emitter's shell, read: lines, then just enough of POSIX sh to find top-level
//! statements, their command words and heredoc bodies. Anything it cannot follow (an
//! unterminated quote or heredoc, an unbalanced compound) makes the fix refuse rather than
//! guess.

use super::{unsafe_at, EmitterError};

#[derive(Debug, Clone, Copy)]
pub(super) struct Line<'a> {
    /// Without the line terminator (and without a trailing `\r` of a CRLF terminator).
    pub(super) text: &'a str,
    /// `"\n"`, `"\r\n"` or `""` (last line without a newline).
    pub(super) term: &'a str,
}

pub(super) fn split_lines(s: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        match rest.find('\n') {
            Some(i) => {
                let (body, term) = if i > 0 && rest.as_bytes()[i - 1] == b'\r' {
                    (&rest[..i - 1], &rest[i - 1..=i])
                } else {
                    (&rest[..i], &rest[i..=i])
                };
                out.push(Line { text: body, term });
                rest = &rest[i + 1..];
            }
            None => {
                out.push(Line { text: rest, term: "" });
                rest = "";
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Shell scanner: just enough of POSIX sh to find top-level statements, their command words and
// heredoc bodies. Anything it cannot follow (an unterminated quote or heredoc, an unbalanced
// compound) makes the fix refuse rather than guess.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Sq,
    Dq,
    /// `$( ... )`, with the count of unquoted `(` opened inside.
    Subst(u32),
    Bq,
    /// `${ ... }`
    Param,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comp {
    If,
    Loop,
    Case,
    Brace,
    Paren,
}

/// One top-level statement (a complete command list ending at a top-level newline).
#[derive(Debug, Clone, Default)]
pub(super) struct Stmt {
    pub(super) start: usize,
    pub(super) end: usize,
    /// Command words (the word in command position of every simple command) with nesting depth.
    pub(super) cmds: Vec<(String, usize)>,
    /// Variable names assigned by the statement.
    pub(super) assigns: Vec<String>,
    /// Words of the statement's first simple command (for `exit` / `exec`).
    pub(super) first: Vec<String>,
    /// The name of the function the statement defines, if any.
    pub(super) func: Option<String>,
    /// The statement's text without comments, heredoc bodies included.
    pub(super) code: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Blank,
    Comment,
    Stmt(usize),
    /// Excluded from the scan (a managed block being replaced).
    Skipped,
}

struct Scanner {
    ctx: Vec<Ctx>,
    comp: Vec<Comp>,
    pending_heredocs: Vec<(String, bool)>,
    heredoc: Option<(String, bool)>,
    cmd_pos: bool,
    word: String,
    in_word: bool,
    word_quoted: bool,
    expect_delim: Option<bool>,
    redirect_target: bool,
    func_paren: Option<String>,
    awaiting_body: Option<String>,
    continues: bool,
    collecting_first: bool,
    last_word: Option<String>,
    cur: Option<Stmt>,
    stmts: Vec<Stmt>,
}

fn is_assignment(w: &str) -> Option<&str> {
    let eq = w.find('=')?;
    let name = &w[..eq];
    let mut chars = name.chars();
    let first = chars.next()?;
    if (first.is_ascii_alphabetic() || first == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Some(name)
    } else {
        None
    }
}

impl Scanner {
    fn new() -> Self {
        Scanner {
            ctx: Vec::new(),
            comp: Vec::new(),
            pending_heredocs: Vec::new(),
            heredoc: None,
            cmd_pos: true,
            word: String::new(),
            in_word: false,
            word_quoted: false,
            expect_delim: None,
            redirect_target: false,
            func_paren: None,
            awaiting_body: None,
            continues: false,
            collecting_first: true,
            last_word: None,
            cur: None,
            stmts: Vec::new(),
        }
    }

    fn stmt(&mut self) -> &mut Stmt {
        self.cur.as_mut().expect("statement open")
    }

    fn end_word(&mut self, line: usize) {
        if !self.in_word {
            return;
        }
        self.in_word = false;
        let w = std::mem::take(&mut self.word);
        let quoted = std::mem::replace(&mut self.word_quoted, false);
        if let Some(strip) = self.expect_delim.take() {
            let delim: String = w.chars().filter(|c| !matches!(c, '\'' | '"' | '\\')).collect();
            self.pending_heredocs.push((delim, strip));
            return;
        }
        if self.redirect_target {
            self.redirect_target = false;
            return;
        }
        let depth = self.comp.len();
        if self.cmd_pos && !quoted {
            match w.as_str() {
                "if" => return self.comp.push(Comp::If),
                "while" | "until" => return self.comp.push(Comp::Loop),
                "for" => {
                    self.comp.push(Comp::Loop);
                    self.cmd_pos = false;
                    return;
                }
                "case" => {
                    self.comp.push(Comp::Case);
                    self.cmd_pos = false;
                    return;
                }
                "then" | "do" | "else" | "elif" | "!" => return,
                "fi" | "done" | "esac" => {
                    self.comp.pop();
                    self.cmd_pos = false;
                    return;
                }
                "{" => {
                    self.comp.push(Comp::Brace);
                    self.awaiting_body = None;
                    return;
                }
                "}" => {
                    if self.comp.last() == Some(&Comp::Brace) {
                        self.comp.pop();
                    }
                    self.cmd_pos = false;
                    return;
                }
                _ => {}
            }
        }
        if !self.cmd_pos && !quoted && w == "esac" && self.comp.last() == Some(&Comp::Case) {
            self.comp.pop();
            return;
        }
        if self.cmd_pos {
            if let Some(name) = is_assignment(&w) {
                let name = name.to_string();
                self.stmt().assigns.push(name);
                return;
            }
            self.cmd_pos = false;
            self.last_word = Some(w.clone());
            self.stmt().cmds.push((w.clone(), depth));
            if self.collecting_first {
                self.stmt().first.push(w);
            }
            let _ = line;
            return;
        }
        self.last_word = Some(w.clone());
        if self.collecting_first {
            self.stmt().first.push(w);
        }
    }

    fn operator(&mut self) {
        self.cmd_pos = true;
        if self.cur.as_ref().is_some_and(|s| !s.first.is_empty()) {
            self.collecting_first = false;
        }
    }

    /// Feeds one line; returns true when the line is part of a statement.
    fn feed(&mut self, idx: usize, text: &str) -> Result<bool, EmitterError> {
        // Heredoc body lines.
        if let Some((delim, strip)) = self.heredoc.clone() {
            self.stmt().code.push_str(text);
            self.stmt().code.push('\n');
            let t = if strip { text.trim_start_matches('\t') } else { text };
            if t == delim {
                self.heredoc = None;
                if !self.pending_heredocs.is_empty() {
                    self.heredoc = Some(self.pending_heredocs.remove(0));
                } else {
                    self.maybe_end(idx);
                }
            }
            return Ok(true);
        }
        let trimmed = text.trim_start();
        if self.cur.is_none() {
            if trimmed.is_empty() || trimmed.starts_with('#') {
                return Ok(false);
            }
            self.cur = Some(Stmt { start: idx, end: idx, ..Stmt::default() });
            self.cmd_pos = true;
            self.collecting_first = true;
        }
        self.continues = false;
        let chars: Vec<char> = text.chars().collect();
        let mut code = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            if let Some(top) = self.ctx.last().copied() {
                code.push(c);
                self.word.push(c);
                match top {
                    Ctx::Sq => {
                        if c == '\'' {
                            self.ctx.pop();
                        }
                    }
                    Ctx::Dq | Ctx::Param | Ctx::Bq => {
                        if c == '\\' {
                            if let Some(n) = next {
                                code.push(n);
                                self.word.push(n);
                                i += 1;
                            }
                        } else if (top == Ctx::Dq && c == '"')
                            || (top == Ctx::Param && c == '}')
                            || (top == Ctx::Bq && c == '`')
                        {
                            self.ctx.pop();
                        } else if c == '$' && next == Some('(') {
                            code.push('(');
                            self.word.push('(');
                            i += 1;
                            self.ctx.push(Ctx::Subst(0));
                        } else if c == '$' && next == Some('{') {
                            code.push('{');
                            self.word.push('{');
                            i += 1;
                            self.ctx.push(Ctx::Param);
                        } else if c == '`' && top != Ctx::Bq {
                            self.ctx.push(Ctx::Bq);
                        } else if top == Ctx::Param && c == '"' {
                            self.ctx.push(Ctx::Dq);
                        }
                    }
                    Ctx::Subst(n) => match c {
                        '\\' => {
                            if let Some(n) = next {
                                code.push(n);
                                self.word.push(n);
                                i += 1;
                            }
                        }
                        '\'' => self.ctx.push(Ctx::Sq),
                        '"' => self.ctx.push(Ctx::Dq),
                        '`' => self.ctx.push(Ctx::Bq),
                        '$' if next == Some('(') => {
                            code.push('(');
                            self.word.push('(');
                            i += 1;
                            self.ctx.push(Ctx::Subst(0));
                        }
                        '$' if next == Some('{') => {
                            code.push('{');
                            self.word.push('{');
                            i += 1;
                            self.ctx.push(Ctx::Param);
                        }
                        '(' => *self.ctx.last_mut().unwrap() = Ctx::Subst(n + 1),
                        ')' => {
                            if n == 0 {
                                self.ctx.pop();
                            } else {
                                *self.ctx.last_mut().unwrap() = Ctx::Subst(n - 1);
                            }
                        }
                        _ => {}
                    },
                }
                i += 1;
                continue;
            }
            // Unquoted, top level of the statement.
            match c {
                ' ' | '\t' => {
                    self.end_word(idx);
                    code.push(c);
                }
                '#' if !self.in_word => break,
                '\\' => {
                    if let Some(n) = next {
                        self.in_word = true;
                        self.word_quoted = true;
                        self.word.push(c);
                        self.word.push(n);
                        code.push(c);
                        code.push(n);
                        i += 1;
                    } else {
                        // Line continuation.
                        self.continues = true;
                    }
                }
                '\'' | '"' | '`' => {
                    self.in_word = true;
                    self.word_quoted = true;
                    self.word.push(c);
                    code.push(c);
                    self.ctx.push(match c {
                        '\'' => Ctx::Sq,
                        '"' => Ctx::Dq,
                        _ => Ctx::Bq,
                    });
                }
                '$' if next == Some('(') || next == Some('{') => {
                    self.in_word = true;
                    self.word.push(c);
                    self.word.push(next.unwrap());
                    code.push(c);
                    code.push(next.unwrap());
                    i += 1;
                    self.ctx.push(if next == Some('(') { Ctx::Subst(0) } else { Ctx::Param });
                }
                ';' | '&' | '|' => {
                    self.end_word(idx);
                    code.push(c);
                    let two = next == Some(c);
                    if two {
                        code.push(c);
                        i += 1;
                    }
                    self.operator();
                    if c != ';' {
                        let rest: String = chars[i + 1..].iter().collect();
                        let rest = rest.trim();
                        if rest.is_empty() || rest.starts_with('#') {
                            self.continues = true;
                        }
                    }
                }
                '(' => {
                    self.end_word(idx);
                    code.push(c);
                    if self.cmd_pos {
                        self.comp.push(Comp::Paren);
                    } else {
                        self.func_paren = self.last_word.clone();
                    }
                }
                ')' => {
                    self.end_word(idx);
                    code.push(c);
                    if let Some(name) = self.func_paren.take() {
                        if let Some(s) = self.cur.as_mut() {
                            s.cmds.retain(|(w, _)| *w != name);
                            s.func = Some(name.clone());
                            s.first.clear();
                        }
                        self.awaiting_body = Some(name);
                        self.cmd_pos = true;
                    } else if self.comp.last() == Some(&Comp::Case) {
                        self.cmd_pos = true;
                    } else if self.comp.last() == Some(&Comp::Paren) {
                        self.comp.pop();
                        self.cmd_pos = false;
                    }
                }
                '<' | '>' => {
                    self.end_word(idx);
                    code.push(c);
                    if c == '<' && next == Some('<') && chars.get(i + 2) != Some(&'<') {
                        code.push('<');
                        i += 1;
                        let strip = chars.get(i + 1) == Some(&'-');
                        if strip {
                            code.push('-');
                            i += 1;
                        }
                        self.expect_delim = Some(strip);
                    } else {
                        while let Some(&n) = chars.get(i + 1) {
                            if matches!(n, '<' | '>' | '&' | '|') {
                                code.push(n);
                                i += 1;
                            } else {
                                break;
                            }
                        }
                        // `>&2`-style targets are part of the operator word that follows.
                        self.redirect_target = true;
                    }
                }
                _ => {
                    if !self.in_word && c.is_ascii_digit() && matches!(next, Some('<') | Some('>')) {
                        // An fd number before a redirection.
                        code.push(c);
                    } else {
                        self.in_word = true;
                        self.word.push(c);
                        code.push(c);
                    }
                }
            }
            i += 1;
        }
        if !self.ctx.is_empty() {
            self.word.push('\n');
        } else {
            self.end_word(idx);
        }
        {
            let s = self.stmt();
            s.code.push_str(&code);
            s.code.push('\n');
            s.end = idx;
        }
        if self.ctx.is_empty() && !self.continues {
            // A newline ends the command: the next word (after any heredoc bodies) is a command.
            self.cmd_pos = true;
            if self.cur.as_ref().is_some_and(|s| !s.first.is_empty()) {
                self.collecting_first = false;
            }
            if !self.pending_heredocs.is_empty() {
                self.heredoc = Some(self.pending_heredocs.remove(0));
            } else {
                self.maybe_end(idx);
            }
        }
        Ok(true)
    }

    fn maybe_end(&mut self, idx: usize) {
        if self.comp.is_empty() && self.ctx.is_empty() && !self.continues && self.awaiting_body.is_none() && self.heredoc.is_none() {
            if let Some(mut s) = self.cur.take() {
                s.end = idx;
                self.stmts.push(s);
            }
            self.cmd_pos = true;
            self.collecting_first = true;
            self.last_word = None;
        }
    }

    fn finish(self, nlines: usize) -> Result<Vec<Stmt>, EmitterError> {
        if let Some(s) = &self.cur {
            let what = if self.heredoc.is_some() {
                "a heredoc that starts here never ends"
            } else if !self.ctx.is_empty() {
                "a quote or command substitution that starts here is never closed"
            } else {
                "a compound command (if/case/loop/group/function) that starts here never ends"
            };
            let _ = nlines;
            return Err(unsafe_at(s.start + 1, what));
        }
        Ok(self.stmts)
    }
}

/// Scans `lines` (those with `skip[i]` excluded): statements and a kind per line.
pub(super) fn scan(lines: &[Line<'_>], skip: &[bool]) -> Result<(Vec<Stmt>, Vec<Kind>), EmitterError> {
    let mut sc = Scanner::new();
    let mut kinds = vec![Kind::Blank; lines.len()];
    for (i, l) in lines.iter().enumerate() {
        if skip[i] {
            if sc.cur.is_some() {
                return Err(unsafe_at(i + 1, "codex-fleet's managed block sits inside another command"));
            }
            kinds[i] = Kind::Skipped;
            continue;
        }
        let next_stmt = sc.stmts.len();
        let in_stmt = sc.feed(i, l.text)?;
        kinds[i] = if in_stmt {
            Kind::Stmt(next_stmt)
        } else if l.text.trim().is_empty() {
            Kind::Blank
        } else {
            Kind::Comment
        };
    }
    let stmts = sc.finish(lines.len())?;
    Ok((stmts, kinds))
}

