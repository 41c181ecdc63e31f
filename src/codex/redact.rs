//! Secret redaction shared by diffs, reports and the probe. See issue #2.
//!
//! Secrets must never leave a host (SSM keeps command outputs), so the probe redacts inside the
//! container with `assets/redact.awk`; everything the console shows is redacted here. The two
//! implementations must agree byte for byte (tested in `tests/redact_parity.rs`), so the
//! algorithm is a plain left-to-right byte scanner over ASCII classes: no regex engine whose
//! leftmost-longest/leftmost-first semantics could differ between mawk and Rust.
//!
//! # The rule
//! Text is processed line by line (`\n`; `\r` is an ordinary byte). At each byte, in order:
//! 1. **Token shapes** (at a word boundary: the previous byte is not `[A-Za-z0-9]`): `sk-` + 20
//!    `[A-Za-z0-9_-]`, `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_` + 20 `[A-Za-z0-9]`, `github_pat_` + 20
//!    `[A-Za-z0-9_]`, `glpat-` + 20 `[A-Za-z0-9_-]`, `xox?-` (`?` in `abposr`) + 10
//!    `[A-Za-z0-9-]`, `AKIA`/`ASIA` + 16 `[A-Z0-9]`, `AIza` + 30 `[A-Za-z0-9_-]`, JWTs
//!    `eyJ...` (segments of >= 10, 4, 4 `[A-Za-z0-9_-]` joined by dots), and the credential after
//!    a `Bearer` word (>= 8 bytes of `[A-Za-z0-9._~+/=-]` holding a digit). The numbers are floors.
//! 2. **Key/value pairs**: a key (a bare `[A-Za-z0-9_.-]+` run starting at a non-key byte, or a
//!    `"..."`/`'...'` quoted name), blanks, `=` (not `==`) or `:` (not `:/`, `::`), blanks,
//!    value. If [`is_secret_key`] says so, the value is replaced: inside its quotes for `"v"`,
//!    `'v'`, `"""v"""` (a multi-line one as a whole); for a bare value up to a terminator
//!    (` \t,;}]#"'` after `=`; `",'}` after `:` with trailing blanks dropped, so YAML and HTTP
//!    header values with blanks are covered); an auth scheme word (`Bearer`, `Basic`, `Token`,
//!    `Digest`) stays visible and only the credential after it is replaced. A value `{` is
//!    not replaced but scanned (inline tables with several pairs per line); a value `[` opens
//!    an array (rule 3), whatever the key. Left alone: empty values, bare `true`/`false`, plain
//!    shell references `$NAME`/`${...}`, placeholders. For a non-secret pair scanning goes on
//!    at the value, so nothing inside it is skipped.
//! 3. **Arrays** (`k = [...]`, `"k": [...]`; nested, and across lines until the `]` that closes
//!    the first `[`): the scanner reads elements. Blanks and `,` are copied; `[`/`]` nest; a
//!    `"..."` (`\` escapes) or `'...'` element (unclosed: to the end of the line) or a bare one
//!    (up to one of `` \t,[]{}#"'``) is an element. A `#` starts a comment: the rest of the
//!    line is scanned as text on its own (rule 4's last case), the array goes on. `{` or `}`
//!    ends the array: scanning goes on by rules 1-2 from there (a table in an array). If the key is a secret,
//!    every element's value is replaced (as a scalar: quoted ones inside their quotes, bare ones
//!    whole; the rule 2 exceptions hold). Otherwise each element is an argument (rule 4), the
//!    "previous argument" being the previous element (none after a `[` or `]`).
//! 4. **Arguments** (of a command line, [`redact_argv`], or of an array): an argument that
//!    follows a secret flag (`-x`/`--name`, at most two dashes, a name of `[A-Za-z0-9_.-]` that
//!    is a secret key) and does not start with `-` is replaced whole; `NAME=VALUE`,
//!    `-x=VALUE`, `--name=VALUE` with a secret NAME and a VALUE not starting with `=`, a quote,
//!    `{` or `[` has VALUE replaced whole as a bare scalar (blanks included: `TOKEN=two words`);
//!    any other argument is scanned as one line by rules 1-3 (nothing it opens outlives it: an
//!    unclosed multi-line value is replaced to its end, an unclosed array just ends).
//!
//! Each distinct value gets `<redacted:N>`, N counting distinct values from 1 in order of first
//! appearance (the multi-line value's N is assigned when it closes).

use thiserror::Error;

/// Redacted text plus the values it hid; `secrets[N-1]` is the value of `<redacted:N>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Redacted {
    pub text: String,
    pub secrets: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RestoreError {
    #[error("placeholder <redacted:{n}> at byte {offset} has no value (only {known} known)")]
    UnknownPlaceholder {
        n: String,
        offset: usize,
        known: usize,
    },
}

/// Replace secret values in `text` (see the module doc for the rule).
pub fn redact(text: &str) -> Redacted {
    let mut r = Redactor::default();
    let text = r.text(text.as_bytes());
    r.finish(text)
}

/// Put secret values back into text redacted by [`redact`] (or by the on-host awk, given the
/// secrets the host kept). A placeholder whose N has no value is an error: writing a file with a
/// dangling placeholder would destroy the secret.
pub fn restore(text: &str, secrets: &[String]) -> Result<String, RestoreError> {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut i = 0;
    while let Some(p) = text[i..].find("<redacted:") {
        let start = i + p;
        let ds = start + "<redacted:".len();
        let de = run(b, ds, |c| c.is_ascii_digit());
        if de > ds && de < b.len() && b[de] == b'>' {
            let n = &text[ds..de];
            match n.parse::<usize>() {
                Ok(k) if k >= 1 && k <= secrets.len() => {
                    out.push_str(&text[last..start]);
                    out.push_str(&secrets[k - 1]);
                    last = de + 1;
                    i = de + 1;
                    continue;
                }
                _ => {
                    return Err(RestoreError::UnknownPlaceholder {
                        n: n.to_string(),
                        offset: start,
                        known: secrets.len(),
                    })
                }
            }
        }
        i = start + 1;
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// Whether a key of this name holds a secret. Dotted names are judged by their last component
/// (`model_providers.x.env_key` is `env_key`). Names of environment variables (`env_key`,
/// `*_env_var`, `env_vars`) and codex's non-secret enum settings are not secrets, nor are token
/// *counts* (`*_tokens`, `*token_limit*`, `*max_token*`).
pub fn is_secret_key(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or(name);
    let n = last.to_ascii_lowercase();
    const EXEMPT: [&str; 7] = [
        "env_key",
        "env_key_instructions",
        "env_vars",
        "cli_auth_credentials_store",
        "mcp_oauth_credentials_store",
        "preferred_auth_method",
        "forced_login_method",
    ];
    if EXEMPT.contains(&n.as_str())
        || n.ends_with("_env_var")
        || n.ends_with("_env_vars")
        || n.ends_with("_tokens")
        || n.contains("token_limit")
        || n.contains("max_token")
    {
        return false;
    }
    const WORDS: [&str; 8] = [
        "key",
        "token",
        "secret",
        "passw",
        "credential",
        "auth",
        "cookie",
        "bearer",
    ];
    WORDS.iter().any(|w| n.contains(w))
}

/// Redact a command line (rule 4 of the module doc). An argument following a flag whose name
/// is a secret key (`--api-key VALUE`, `--token VALUE`) is replaced whole, as is the value of
/// `--api-key=v` / `TOKEN=v`; every other argument is redacted as text (`-c k="v"`,
/// `Authorization: Bearer ...`, token shapes). Placeholders
/// are numbered across the whole argv. Arguments are treated as single lines: the on-host awk
/// reads `/proc/PID/cmdline` with NULs turned into newlines, so an argument containing a newline
/// is seen there as two arguments.
pub fn redact_argv(argv: &[String]) -> Vec<String> {
    let mut r = Redactor::default();
    let mut out = Vec::with_capacity(argv.len());
    for (k, a) in argv.iter().enumerate() {
        let after_flag = k > 0 && is_secret_flag(argv[k - 1].as_bytes());
        match r.argv_elem(a.as_bytes(), after_flag) {
            Some(v) => out.push(String::from_utf8(v).expect("cuts are at ASCII bytes")),
            None => out.push(r.text(a.as_bytes())),
        }
    }
    out
}

/// Redact one argument on its own (rule 4 of the module doc, no flag before it): a
/// `NAME=VALUE` with a secret NAME has its whole VALUE replaced, blanks and lines included;
/// anything else is redacted as text. Label values are redacted so (`fleet::docker::redact_label`).
pub fn redact_arg(a: &str) -> Redacted {
    let mut r = Redactor::default();
    let text = match r.argv_elem(a.as_bytes(), false) {
        Some(v) => String::from_utf8(v).expect("cuts are at ASCII bytes"),
        None => r.text(a.as_bytes()),
    };
    r.finish(text)
}

/// `-x` / `--name` (no `=`) whose name is a secret key.
fn is_secret_flag(b: &[u8]) -> bool {
    if b.len() < 2 || b[0] != b'-' {
        return false;
    }
    let d = run(b, 0, |c| c == b'-');
    let name = &b[d..];
    d <= 2
        && !name.is_empty()
        && name.iter().all(|&c| is_keychar(c))
        && is_secret_key(&String::from_utf8_lossy(name))
}

/// `NAME=VALUE` or `-x=VALUE` / `--name=VALUE` whose name is a secret key and whose value is
/// not quoted, a table or an array (those are scanned as text): the offset of VALUE.
fn secret_assign(b: &[u8]) -> Option<usize> {
    let d = run(b, 0, |c| c == b'-');
    let e = run(b, d, is_keychar);
    if d > 2 || e == d || e + 1 >= b.len() || b[e] != b'=' || b"=\"'{[".contains(&b[e + 1]) {
        return None;
    }
    is_secret_key(&String::from_utf8_lossy(&b[d..e])).then_some(e + 1)
}

fn is_keychar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-'
}
fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}
fn run(b: &[u8], from: usize, f: impl Fn(u8) -> bool) -> usize {
    let mut e = from;
    while e < b.len() && f(b[e]) {
        e += 1;
    }
    e
}
fn starts(b: &[u8], i: usize, p: &[u8]) -> bool {
    b.len() >= i + p.len() && &b[i..i + p.len()] == p
}
fn starts_ci(b: &[u8], i: usize, p: &[u8]) -> bool {
    b.len() >= i + p.len() && b[i..i + p.len()].eq_ignore_ascii_case(p)
}
fn find(b: &[u8], from: usize, p: &[u8]) -> Option<usize> {
    if from > b.len() {
        return None;
    }
    b[from..]
        .windows(p.len())
        .position(|w| w == p)
        .map(|x| x + from)
}
fn is_b64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// A known token shape starting at `i` (a boundary): `(secret_start, secret_end)`.
fn token_at(l: &[u8], i: usize) -> Option<(usize, usize)> {
    let alnum = |c: u8| c.is_ascii_alphanumeric();
    let with = |from: usize, min: usize, f: &dyn Fn(u8) -> bool| {
        let e = run(l, from, f);
        (e - from >= min).then_some((i, e))
    };
    let c = *l.get(i)?;
    match c {
        b's' if starts(l, i, b"sk-") => with(i + 3, 20, &is_b64url),
        b'g' => {
            for p in [b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_"] {
                if starts(l, i, p) {
                    return with(i + 4, 20, &alnum);
                }
            }
            if starts(l, i, b"github_pat_") {
                return with(i + 11, 20, &|c: u8| c.is_ascii_alphanumeric() || c == b'_');
            }
            if starts(l, i, b"glpat-") {
                return with(i + 6, 20, &is_b64url);
            }
            None
        }
        b'x' if starts(l, i, b"xox")
            && l.len() > i + 4
            && b"abposr".contains(&l[i + 3])
            && l[i + 4] == b'-' =>
        {
            with(i + 5, 10, &|c: u8| c.is_ascii_alphanumeric() || c == b'-')
        }
        b'A' if starts(l, i, b"AKIA") || starts(l, i, b"ASIA") => with(i + 4, 16, &|c: u8| {
            c.is_ascii_uppercase() || c.is_ascii_digit()
        }),
        b'A' if starts(l, i, b"AIza") => with(i + 4, 30, &is_b64url),
        b'e' if starts(l, i, b"eyJ") => {
            let e1 = run(l, i, is_b64url);
            if e1 - i < 10 || l.get(e1) != Some(&b'.') {
                return None;
            }
            let e2 = run(l, e1 + 1, is_b64url);
            if e2 - e1 - 1 < 4 || l.get(e2) != Some(&b'.') {
                return None;
            }
            let e3 = run(l, e2 + 1, is_b64url);
            (e3 - e2 > 4).then_some((i, e3))
        }
        b'b' | b'B' if starts_ci(l, i, b"bearer") && l.len() > i + 6 && is_blank(l[i + 6]) => {
            let s = run(l, i + 6, is_blank);
            let e = run(l, s, |c| {
                c.is_ascii_alphanumeric() || b"._~+/=-".contains(&c)
            });
            (e - s >= 8 && l[s..e].iter().any(|c| c.is_ascii_digit())).then_some((s, e))
        }
        _ => None,
    }
}

/// Length of an auth scheme word plus the blanks after it at the start of `v`, when a
/// credential follows (`Bearer xyz`): the scheme stays visible.
fn scheme_len(v: &[u8]) -> usize {
    for s in [&b"bearer"[..], b"basic", b"token", b"digest"] {
        if starts_ci(v, 0, s) && v.len() > s.len() && is_blank(v[s.len()]) {
            let e = run(v, s.len(), is_blank);
            if e < v.len() {
                return e;
            }
        }
    }
    0
}

fn is_placeholder(v: &[u8]) -> bool {
    let p = b"<redacted:";
    v.len() > p.len() + 1
        && starts(v, 0, p)
        && v[v.len() - 1] == b'>'
        && v[p.len()..v.len() - 1].iter().all(|c| c.is_ascii_digit())
}

/// `$NAME` or `${...}`: a reference to a variable, not a value.
fn is_shell_ref(v: &[u8]) -> bool {
    if v.len() >= 2 && v[0] == b'$' && (v[1].is_ascii_alphabetic() || v[1] == b'_') {
        return v[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_');
    }
    v.len() >= 3
        && starts(v, 0, b"${")
        && v[v.len() - 1] == b'}'
        && !v[2..v.len() - 1].contains(&b'}')
}

#[derive(Default)]
struct Redactor {
    secrets: Vec<String>,
    /// The array being read, across lines (rule 3).
    arr: Option<Arr>,
}

/// An open array: its nesting depth, whether its key is a secret, and whether the previous
/// element was a secret flag.
#[derive(Clone, Copy)]
struct Arr {
    depth: usize,
    secret: bool,
    after_flag: bool,
}

/// An open multi-line string of a secret key: its closing delimiter byte and the value so far.
type Open = (u8, Vec<u8>);

impl Redactor {
    fn placeholder(&mut self, v: &[u8]) -> String {
        let v = String::from_utf8_lossy(v).into_owned();
        let n = match self.secrets.iter().position(|s| *s == v) {
            Some(p) => p + 1,
            None => {
                self.secrets.push(v);
                self.secrets.len()
            }
        };
        format!("<redacted:{n}>")
    }

    fn finish(self, text: String) -> Redacted {
        Redacted {
            text,
            secrets: self.secrets,
        }
    }

    /// A scalar value of a secret key: the replacement text.
    fn scalar(&mut self, v: &[u8], bare: bool) -> Vec<u8> {
        if v.is_empty()
            || is_placeholder(v)
            || is_shell_ref(v)
            || (bare && (v == b"true" || v == b"false"))
        {
            return v.to_vec();
        }
        let s = scheme_len(v);
        let mut out = v[..s].to_vec();
        out.extend_from_slice(self.placeholder(&v[s..]).as_bytes());
        out
    }

    /// One element of a command line or of an array that is not a secret's (rule 4): the
    /// replacement, or None when it is to be scanned as text.
    fn argv_elem(&mut self, a: &[u8], after_flag: bool) -> Option<Vec<u8>> {
        if after_flag && !a.is_empty() && a[0] != b'-' {
            return Some(self.placeholder(a).into_bytes());
        }
        let v = secret_assign(a)?;
        let mut out = a[..v].to_vec();
        out.extend_from_slice(&self.scalar(&a[v..], true));
        Some(out)
    }

    /// An element of an array scanned as one line of text on its own (nothing it opens,
    /// a multi-line string or an array, outlives it).
    fn elem_text(&mut self, a: &[u8], out: &mut Vec<u8>) {
        let outer = self.arr.take();
        if let Some((_, buf)) = self.line(a, 0, out) {
            out.extend_from_slice(self.placeholder(&buf).as_bytes());
        }
        self.arr = outer;
    }

    /// One step inside an open array at `l[i]`; returns the next offset.
    fn arr_step(&mut self, l: &[u8], i: usize, out: &mut Vec<u8>) -> usize {
        let n = l.len();
        let mut a = self.arr.expect("in an array");
        let c = l[i];
        match c {
            b' ' | b'\t' | b',' => {
                out.push(c);
                return i + 1;
            }
            b'[' | b']' => {
                out.push(c);
                a.after_flag = false;
                if c == b'[' {
                    a.depth += 1;
                } else {
                    a.depth -= 1;
                }
                self.arr = (a.depth > 0).then_some(a);
                return i + 1;
            }
            b'{' | b'}' => {
                // A table in an array: the array is no longer followed.
                self.arr = None;
                return i;
            }
            b'#' => {
                // A comment: the rest of the line, as text on its own; the array goes on.
                self.elem_text(&l[i..], out);
                return n;
            }
            _ => {}
        }
        let (s, e, next) = if c == b'"' || c == b'\'' {
            let mut e = i + 1;
            while e < n && l[e] != c {
                e += if c == b'"' && l[e] == b'\\' { 2 } else { 1 };
            }
            let e = e.min(n);
            (i + 1, e, if e < n { e + 1 } else { n })
        } else {
            let e = run(l, i, |b| !b" \t,[]{}#\"'".contains(&b));
            (i, e, e)
        };
        let v = &l[s..e];
        out.extend_from_slice(&l[i..s]);
        if a.secret {
            let r = self.scalar(v, s == i);
            out.extend_from_slice(&r);
        } else {
            match self.argv_elem(v, a.after_flag) {
                Some(r) => out.extend_from_slice(&r),
                None => self.elem_text(v, out),
            }
            a.after_flag = is_secret_flag(v);
        }
        out.extend_from_slice(&l[e..next]);
        self.arr = Some(a);
        next
    }

    fn text(&mut self, t: &[u8]) -> String {
        self.arr = None;
        if t.is_empty() {
            return String::new();
        }
        let (body, nl) = match t.last() {
            Some(b'\n') => (&t[..t.len() - 1], true),
            _ => (t, false),
        };
        let mut out = Vec::with_capacity(t.len());
        let mut open: Option<Open> = None;
        for (idx, line) in body.split(|&c| c == b'\n').enumerate() {
            let mut start = 0;
            match open.take() {
                Some((d, mut buf)) => {
                    buf.push(b'\n');
                    match find(line, 0, &[d, d, d]) {
                        Some(p) => {
                            buf.extend_from_slice(&line[..p]);
                            out.extend_from_slice(self.placeholder(&buf).as_bytes());
                            out.extend_from_slice(&[d, d, d]);
                            start = p + 3;
                        }
                        None => {
                            buf.extend_from_slice(line);
                            open = Some((d, buf));
                            continue;
                        }
                    }
                }
                None if idx > 0 => out.push(b'\n'),
                None => {}
            }
            open = self.line(line, start, &mut out);
        }
        if let Some((_, buf)) = open {
            out.extend_from_slice(self.placeholder(&buf).as_bytes());
        }
        if nl {
            out.push(b'\n');
        }
        String::from_utf8(out).expect("cuts are at ASCII bytes")
    }

    /// Scan one line from `i`, appending to `out`; returns an open multi-line secret value.
    fn line(&mut self, l: &[u8], mut i: usize, out: &mut Vec<u8>) -> Option<Open> {
        let n = l.len();
        while i < n {
            if self.arr.is_some() {
                i = self.arr_step(l, i, out);
                continue;
            }
            let c = l[i];
            if i == 0 || !l[i - 1].is_ascii_alphanumeric() {
                if let Some((s, e)) = token_at(l, i) {
                    out.extend_from_slice(&l[i..s]);
                    out.extend_from_slice(self.placeholder(&l[s..e]).as_bytes());
                    i = e;
                    continue;
                }
            }
            let key = if c == b'"' || c == b'\'' {
                find(l, i + 1, &[c]).map(|j| (i + 1, j, j + 1))
            } else if is_keychar(c) && (i == 0 || !is_keychar(l[i - 1])) {
                let j = run(l, i, is_keychar);
                Some((i, j, j))
            } else {
                None
            };
            if let Some((ks, ke, k)) = key {
                let s = run(l, k, is_blank);
                let sep = l.get(s).copied();
                let next = l.get(s + 1).copied();
                let is_sep = match sep {
                    Some(b'=') => next != Some(b'='),
                    Some(b':') => next != Some(b'/') && next != Some(b':'),
                    _ => false,
                };
                if is_sep {
                    let sep = sep.unwrap();
                    let v = run(l, s + 1, is_blank);
                    let name = String::from_utf8_lossy(&l[ks..ke]);
                    out.extend_from_slice(&l[i..v]);
                    i = v;
                    let secret = is_secret_key(&name);
                    if l.get(v) == Some(&b'[') {
                        out.push(b'[');
                        self.arr = Some(Arr {
                            depth: 1,
                            secret,
                            after_flag: false,
                        });
                        i = v + 1;
                    } else if secret {
                        if let Some(r) = self.value(l, &mut i, sep, out) {
                            return Some(r);
                        }
                    }
                    continue;
                }
            }
            out.push(c);
            i += 1;
        }
        None
    }

    /// The value of a secret key at `*i` (already past the separator and blanks).
    fn value(&mut self, l: &[u8], i: &mut usize, sep: u8, out: &mut Vec<u8>) -> Option<Open> {
        let n = l.len();
        let v = *i;
        if v >= n {
            return None;
        }
        let c = l[v];
        if (c == b'"' || c == b'\'') && starts(l, v, &[c, c, c]) {
            out.extend_from_slice(&[c, c, c]);
            return match find(l, v + 3, &[c, c, c]) {
                Some(e) => {
                    let r = self.scalar(&l[v + 3..e], false);
                    out.extend_from_slice(&r);
                    out.extend_from_slice(&[c, c, c]);
                    *i = e + 3;
                    None
                }
                None => {
                    *i = n;
                    Some((c, l[v + 3..].to_vec()))
                }
            };
        }
        if c == b'"' || c == b'\'' {
            let mut e = v + 1;
            while e < n && l[e] != c {
                e += if c == b'"' && l[e] == b'\\' { 2 } else { 1 };
            }
            let e = e.min(n);
            out.push(c);
            let r = self.scalar(&l[v + 1..e], false);
            out.extend_from_slice(&r);
            if e < n {
                out.push(c);
                *i = e + 1;
            } else {
                *i = n;
            }
            return None;
        }
        if c == b'{' {
            return None;
        }
        let term: &[u8] = if sep == b'=' {
            b" \t,;}]#\"'"
        } else {
            b"\",'}"
        };
        let mut e = run(l, v, |b| !term.contains(&b));
        if sep == b'=' {
            // `Authorization=Bearer xyz`: the credential after a scheme word is the value.
            let s = scheme_len(&l[v..]);
            if s > 0 && e == v + run(&l[v..], 0, |b| b.is_ascii_alphabetic()) {
                e = run(l, v + s, |b| !term.contains(&b));
            }
        } else {
            while e > v && is_blank(l[e - 1]) {
                e -= 1;
            }
        }
        let r = self.scalar(&l[v..e], true);
        out.extend_from_slice(&r);
        *i = e;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(t: &str) -> String {
        redact(t).text
    }

    #[test]
    fn toml_forms() {
        assert_eq!(r("api_key = \"abc\"\n"), "api_key = \"<redacted:1>\"\n");
        assert_eq!(r("api_key = 'abc'"), "api_key = '<redacted:1>'");
        assert_eq!(r("token = abc123 # c"), "token = <redacted:1> # c");
        assert_eq!(
            r("env_key = \"OPENAI_API_KEY\""),
            "env_key = \"OPENAI_API_KEY\""
        );
        assert_eq!(
            r("bearer_token_env_var = \"X\""),
            "bearer_token_env_var = \"X\""
        );
        assert_eq!(
            r("cli_auth_credentials_store = \"file\""),
            "cli_auth_credentials_store = \"file\""
        );
        assert_eq!(
            r("forced_login_method=\"chatgpt\""),
            "forced_login_method=\"chatgpt\""
        );
        assert_eq!(
            r("requires_openai_auth = true"),
            "requires_openai_auth = true"
        );
        assert_eq!(
            r("model_auto_compact_token_limit = 200000"),
            "model_auto_compact_token_limit = 200000"
        );
        assert_eq!(
            r("http_headers = { Authorization = \"Bearer x1\", \"X-Token\" = \"y\", a = \"b\" }"),
            "http_headers = { Authorization = \"Bearer <redacted:1>\", \"X-Token\" = \"<redacted:2>\", a = \"b\" }"
        );
        assert_eq!(
            r("[mcp_servers.x.env]\nAPI_KEY = \"s\"\nB_KEY = \"s\""),
            "[mcp_servers.x.env]\nAPI_KEY = \"<redacted:1>\"\nB_KEY = \"<redacted:1>\""
        );
    }

    #[test]
    fn multiline() {
        let t = "a = 1\nsecret = \"\"\"\nline1\nline2\"\"\" # x\nb = 2";
        let x = redact(t);
        assert_eq!(
            x.text,
            "a = 1\nsecret = \"\"\"<redacted:1>\"\"\" # x\nb = 2"
        );
        assert_eq!(x.secrets, vec!["\nline1\nline2".to_string()]);
        assert_eq!(r("password = '''open\nrest"), "password = '''<redacted:1>");
    }

    #[test]
    fn shell_json_yaml_headers() {
        assert_eq!(
            r("export OPENAI_API_KEY=\"v1\""),
            "export OPENAI_API_KEY=\"<redacted:1>\""
        );
        assert_eq!(r("GITHUB_TOKEN=v2 cmd"), "GITHUB_TOKEN=<redacted:1> cmd");
        assert_eq!(r("X_TOKEN=\"${X_TOKEN:-}\""), "X_TOKEN=\"${X_TOKEN:-}\"");
        assert_eq!(
            r("{\"auth\": \"v\", \"n\": 1}"),
            "{\"auth\": \"<redacted:1>\", \"n\": 1}"
        );
        assert_eq!(r("password: my pass  "), "password: <redacted:1>  ");
        assert_eq!(
            r("Authorization: Basic dXNlcjpwYXNz"),
            "Authorization: Basic <redacted:1>"
        );
        assert_eq!(r("url: https://x/y"), "url: https://x/y");
    }

    #[test]
    fn token_shapes() {
        let k = "sk-proj-abcdefghijklmnopqrstuvwx";
        assert_eq!(r(&format!("x {k} y {k}")), "x <redacted:1> y <redacted:1>");
        assert_eq!(
            r("task-abcdefghijklmnopqrstuvwxyz"),
            "task-abcdefghijklmnopqrstuvwxyz"
        );
        assert_eq!(r("id AKIAIOSFODNN7EXAMPLE."), "id <redacted:1>.");
        assert_eq!(
            r("curl -H 'x: Bearer abc123def'"),
            "curl -H 'x: Bearer <redacted:1>'"
        );
        assert_eq!(r("Bearer authentication"), "Bearer authentication");
        assert_eq!(
            r("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_abcd"),
            "<redacted:1>"
        );
    }

    #[test]
    fn arrays_and_arguments() {
        assert_eq!(
            r("api_keys = [\"a b\", 'c', 7, true, \"$X\"]"),
            "api_keys = [\"<redacted:1>\", '<redacted:2>', <redacted:3>, true, \"$X\"]"
        );
        assert_eq!(
            r("args = [\n  \"--api-key\", # the key\n  \"v v\",\n  \"--n\", \"x\"\n]\nafter = \"y\""),
            "args = [\n  \"--api-key\", # the key\n  \"<redacted:1>\",\n  \"--n\", \"x\"\n]\nafter = \"y\""
        );
        assert_eq!(
            r("\"env\": [\"TOKEN=a b\", \"PATH=/bin\", \"--password=p\"]"),
            "\"env\": [\"TOKEN=<redacted:1>\", \"PATH=/bin\", \"--password=<redacted:2>\"]"
        );
        assert_eq!(
            r("creds = [{ user = \"u\", password = \"p\" }]"),
            "creds = [{ user = \"u\", password = \"<redacted:1>\" }]"
        );
        assert_eq!(
            redact_arg("TOKEN=two words\nmore").text,
            "TOKEN=<redacted:1>"
        );
        assert_eq!(redact_arg("note x=1").text, "note x=1");
    }

    #[test]
    fn restore_roundtrip_and_errors() {
        let t = "a_key = \"v\"\nb = 'sk-abcdefghijklmnopqrstuvwxyz'\n";
        let x = redact(t);
        assert_eq!(restore(&x.text, &x.secrets).unwrap(), t);
        assert!(restore("<redacted:3>", &x.secrets).is_err());
        assert_eq!(restore("<redacted:x>", &[]).unwrap(), "<redacted:x>");
    }

    #[test]
    fn argv() {
        let a: Vec<String> = [
            "codex",
            "--api-key",
            "v",
            "-c",
            "x.token=\"t\"",
            "--token=v",
            "app-server",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            redact_argv(&a),
            vec![
                "codex",
                "--api-key",
                "<redacted:1>",
                "-c",
                "x.token=\"<redacted:2>\"",
                "--token=<redacted:1>",
                "app-server"
            ]
        );
    }
}

/// Placeholders renumbered by order of first appearance, so that two redactions of the same
/// content compare equal whatever numbering each started from (agent-ops.sh's CANON_AWK does
/// the same on the host).
pub fn canonical_placeholders(text: &str) -> String {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| regex::Regex::new(r"<redacted:([0-9]+)>").unwrap());
    let mut map: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    re.replace_all(text, |c: &regex::Captures| {
        let n = map.len() + 1;
        let k = *map.entry(c[1].to_string()).or_insert(n);
        format!("<redacted:{k}>")
    })
    .into_owned()
}
