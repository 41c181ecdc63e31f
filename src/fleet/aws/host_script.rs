//! The host scripts sent with SSM Run Command (`AWS-RunShellScript`): one template
//! (`assets/host-ops.sh`) and a versioned payload header that carries every value as data.
//!
//! # Payload (format 1)
//! ```text
//! #!/bin/sh
//! # codex-fleet host script, payload format 1 ...
//! CFH_V=1
//! d() { printf '%s' "$1" | base64 -d; printf x; }
//! CFH_RUN=$(d 'cnVuLTE='); CFH_RUN=${CFH_RUN%x}
//! CFH_Z=1
//! CFH_N=2
//! CFH_1_INSTANCE=$(d 'aS0wMTIz'); CFH_1_INSTANCE=${CFH_1_INSTANCE%x}
//! CFH_1_OP=$(d 'd3JpdGU='); CFH_1_OP=${CFH_1_OP%x}
//! CFH_1_F_CONTAINER=$(d '...'); CFH_1_F_CONTAINER=${CFH_1_F_CONTAINER%x}
//! CFH_1_F_CONTENT=$(d '...'); CFH_1_F_CONTENT=${CFH_1_F_CONTENT%x}
//! ...
//! CFH_2_F_CONTENT=$CFH_1_F_CONTENT
//! # -- end of payload --
//! ```
//! Every value is base64 inside single quotes (the base64 alphabet has no quote), decoded into
//! a variable and only ever used as `"$VAR"`: nothing from the console or from a host is
//! interpolated into shell code. A value of [`SHARE_MIN`] bytes or more that an earlier item of
//! the same command carries already is not sent again: the later item's variable is assigned
//! from the earlier one's (the same fixed config written to a whole wave's agents travels once
//! a command, not once an agent). Several items (one per agent operation) can share one
//! command: each names its instance (`*`: every target) and the script runs only its own,
//! known from `$AWS_SSM_INSTANCE_ID`, which the SSM agent sets. The container-side mutations
//! run `agent-ops.sh` ([`crate::fleet::ops`]) in the container, whose `#cfo` answer is printed
//! inside the item verbatim.
//!
//! # Output (format 1)
//! ```text
//! #cfh 1 begin i-0123
//! #cfh 1 item 1 write
//! ...the operation's own lines...
//! #cfh 1 item 1 end 0
//! #cfh 1 end 1
//! ```
//! With `CFH_Z=1` the whole text is gzipped and base64'd between `#cfz 1 LEN` and `#cfz 1 end`
//! (a scan of 8 agents then fits `ListCommandInvocations`' 2,500 characters). A missing trailer
//! means the output was cut: the console falls back to `GetCommandInvocation`, then to smaller
//! commands. A scan's answer then carries the texts its records refer to by hash, in one more
//! frame (`#cft 1 LEN`, base64 of gzip of `b HASH VALUE` lines, `#cft 1 end`; [`pack_texts`]),
//! within the 24,000 characters `GetCommandInvocation` returns: the listing stops before it.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

pub const FORMAT: u32 = 1;
const TEMPLATE: &str = include_str!("../../../assets/host-ops.sh");
const END_OF_PAYLOAD: &str = "# -- end of payload --";

/// One operation for one instance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Item {
    /// The instance it is for; `*` for every target of the command.
    pub instance: String,
    pub op: String,
    /// Field names: `[A-Z0-9_]+`.
    pub fields: BTreeMap<String, String>,
}

impl Item {
    pub fn new(instance: &str, op: &str) -> Item {
        Item { instance: instance.into(), op: op.into(), fields: BTreeMap::new() }
    }
    pub fn with(mut self, k: &str, v: impl Into<String>) -> Item {
        debug_assert!(k.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_'));
        self.fields.insert(k.into(), v.into());
        self
    }
    pub fn get(&self, k: &str) -> Option<&str> {
        self.fields.get(k).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Payload {
    pub run: String,
    /// Compress the output (scans, reads).
    pub z: bool,
    pub items: Vec<Item>,
}

fn b64(s: &str) -> String {
    B64.encode(s.as_bytes())
}

/// Extra files the script writes to its private directory before running (the probe with its
/// redactor), gzip+base64 inside single quotes: our own constant text, never a host's.
/// The scripts `p` needs, each gzipped and base64-encoded once a process: they are the same
/// in every command (compressing probe.sh again for each of a rollout's ~1,000 commands was
/// a measurable share of the console's CPU).
fn embedded(p: &Payload) -> Vec<(&'static str, &'static str)> {
    static PROBE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| gz_b64(&crate::probe::script()));
    static OPS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| gz_b64(&crate::fleet::ops::script()));
    let needs_probe = p.items.iter().any(|i| matches!(i.op.as_str(), "scan" | "read" | "wait"));
    let needs_ops = p.items.iter().any(|i| matches!(i.op.as_str(), "backup" | "write" | "restore" | "lock" | "unlock"));
    let mut v = Vec::new();
    if needs_probe {
        v.push(("probe.sh", PROBE.as_str()));
    }
    if needs_ops {
        v.push(("agent-ops.sh", OPS.as_str()));
    }
    v
}

fn gz_b64(text: &str) -> String {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(text.as_bytes()).unwrap();
    B64.encode(gz.finish().unwrap())
}

/// `NAME=$(d 'BASE64'); NAME=${NAME%x}`: the value, trailing newlines and all.
fn assign(name: &str, v: &str) -> String {
    format!("{name}=$(d '{}'); {name}=${{{name}%x}}\n", b64(v))
}

/// Values at least this long are sent once a command however many items carry them
/// ([`render`]); a command's payload budget counts them once too (`batch.rs`).
pub const SHARE_MIN: usize = 64;

/// The whole script for `p`.
pub fn render(p: &Payload) -> String {
    let mut s = String::new();
    s.push_str("#!/bin/sh\n");
    s.push_str("# codex-fleet host script, payload format 1: the values below are data (base64), decoded into\n");
    s.push_str("# variables and only ever used quoted. Body: assets/host-ops.sh.\n");
    s.push_str(&format!("CFH_V={FORMAT}\n"));
    // `$(...)` drops trailing newlines: d() appends an `x` that each assignment strips again.
    s.push_str("d() { printf '%s' \"$1\" | base64 -d; printf x; }\n");
    s.push_str(&assign("CFH_RUN", &p.run));
    s.push_str(&format!("CFH_Z={}\n", u8::from(p.z)));
    s.push_str(&format!("CFH_N={}\n", p.items.len()));
    // A long value already sent in this command (one fixed config for many agents) is sent
    // once; later items copy the variable that holds it (`NAME=$OTHER`: an assignment, never
    // split or evaluated).
    let mut sent: std::collections::HashMap<&str, String> = std::collections::HashMap::new();
    for (i, it) in p.items.iter().enumerate() {
        let n = i + 1;
        s.push_str(&assign(&format!("CFH_{n}_INSTANCE"), &it.instance));
        s.push_str(&assign(&format!("CFH_{n}_OP"), &it.op));
        for (k, v) in &it.fields {
            let name = format!("CFH_{n}_F_{k}");
            if v.len() >= SHARE_MIN {
                if let Some(first) = sent.get(v.as_str()) {
                    s.push_str(&format!("{name}=${first}\n"));
                    continue;
                }
                sent.insert(v, name.clone());
            }
            s.push_str(&assign(&name, v));
        }
    }
    s.push_str(END_OF_PAYLOAD);
    s.push('\n');
    s.push_str("CFH_DIR=$(mktemp -d /var/tmp/codex-fleet.XXXXXXXX) || exit 97\n");
    s.push_str("trap 'rm -rf \"$CFH_DIR\"' EXIT\n");
    for (name, packed) in embedded(p) {
        s.push_str(&format!("printf '%s' '{packed}' | base64 -d | gzip -dc > \"$CFH_DIR/{name}\" || exit 97\n"));
    }
    s.push_str(TEMPLATE);
    s
}

/// Read a script's payload header back (the simulated hosts do this: a structured header,
/// not the shell text of the body).
pub fn decode(script: &str) -> Result<Payload, String> {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^CFH_([0-9]+)_(INSTANCE|OP|F_([A-Z0-9_]+))=\$\(d '([A-Za-z0-9+/=]*)'\); CFH_[0-9A-Z_]+=\$\{CFH_[0-9A-Z_]+%x\}$").unwrap()
    });
    // A value sent earlier in the same command: `CFH_n_F_K=$CFH_m_F_J` ([`render`]).
    static COPY: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"^CFH_([0-9]+)_F_([A-Z0-9_]+)=\$CFH_([0-9]+)_F_([A-Z0-9_]+)$").unwrap());
    let re = &*RE;
    let mut p = Payload::default();
    let mut version = None;
    let mut n = 0usize;
    let dec = |v: &str| -> Result<String, String> {
        B64.decode(v).map_err(|e| e.to_string()).and_then(|b| String::from_utf8(b).map_err(|e| e.to_string()))
    };
    for line in script.lines() {
        if line == END_OF_PAYLOAD {
            if version != Some(FORMAT) {
                return Err(format!("payload format {version:?} not supported"));
            }
            if p.items.len() != n {
                return Err(format!("payload declares {n} items, has {}", p.items.len()));
            }
            return Ok(p);
        }
        if let Some(v) = line.strip_prefix("CFH_V=") {
            version = v.parse().ok();
        } else if let Some(v) = line.strip_prefix("CFH_RUN=$(d '").and_then(|v| v.strip_suffix("'); CFH_RUN=${CFH_RUN%x}")) {
            p.run = dec(v)?;
        } else if let Some(v) = line.strip_prefix("CFH_Z=") {
            p.z = v == "1";
        } else if let Some(v) = line.strip_prefix("CFH_N=") {
            n = v.parse().map_err(|_| "bad CFH_N")?;
        } else if let Some(c) = COPY.captures(line) {
            let (idx, from): (usize, usize) = (c[1].parse().map_err(|_| "bad index")?, c[3].parse().map_err(|_| "bad index")?);
            if idx == 0 || idx > n {
                return Err(format!("item {idx} out of range"));
            }
            let v = p
                .items
                .get(from.wrapping_sub(1))
                .and_then(|it| it.fields.get(&c[4]))
                .cloned()
                .ok_or_else(|| format!("item {idx} copies CFH_{from}_F_{}, which is not set before it", &c[4]))?;
            while p.items.len() < idx {
                p.items.push(Item::default());
            }
            p.items[idx - 1].fields.insert(c[2].to_string(), v);
        } else if let Some(c) = re.captures(line) {
            let idx: usize = c[1].parse().map_err(|_| "bad index")?;
            if idx == 0 || idx > n {
                return Err(format!("item {idx} out of range"));
            }
            while p.items.len() < idx {
                p.items.push(Item::default());
            }
            let it = &mut p.items[idx - 1];
            let v = dec(&c[4])?;
            match &c[2] {
                "INSTANCE" => it.instance = v,
                "OP" => it.op = v,
                _ => {
                    it.fields.insert(c[3].to_string(), v);
                }
            }
        }
    }
    Err("no end of payload".into())
}

// ---------------------------------------------------------------------------------------------
// Output

/// Percent-encoding of free text in host output: the probe's alphabet, one implementation.
pub use crate::probe::parse::pct_encode as pct;

/// One label of a `c` record's `lb=` text (before its percent-encoding): `K=V` with `%`, CR and
/// LF (and `=` in K) percent-encoded, so a value with lines or blanks stays one label
/// (`assets/redact.awk` labelmode prints these on the host).
pub fn label_line(k: &str, v: &str) -> String {
    let esc = |s: &str, eq: bool| {
        let mut o = String::with_capacity(s.len());
        for ch in s.chars() {
            match ch {
                '%' => o.push_str("%25"),
                '\n' => o.push_str("%0a"),
                '\r' => o.push_str("%0d"),
                '=' if eq => o.push_str("%3d"),
                c => o.push(c),
            }
        }
        o
    };
    format!("{}={}", esc(k, true), esc(v, false))
}

/// The labels of an `lb=` text (its lines, [`label_line`]).
pub fn parse_labels(lb: &str) -> std::collections::BTreeMap<String, String> {
    lb.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (unpct(k), unpct(v))).collect()
}

pub fn unpct(s: &str) -> String {
    let b = s.as_bytes();
    let mut o = Vec::with_capacity(b.len());
    let mut i = 0;
    // Bytes, not a slice of `s`: a `%` before a multibyte character (a host's or a
    // container's text) must not cut it (slicing there panicked).
    let hex = |k: usize| b.get(k).and_then(|&c| (c as char).to_digit(16));
    while i < b.len() {
        if b[i] == b'%' {
            if let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2)) {
                o.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        o.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&o).into_owned()
}

/// One item's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemOutput {
    pub seq: usize,
    pub op: String,
    pub lines: Vec<String>,
    pub rc: i32,
}

/// A host's framed output, complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostOutput {
    pub instance: String,
    pub items: Vec<ItemOutput>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutputError {
    #[error("output truncated (no trailer)")]
    Truncated,
    #[error("no host script output (no `#cfh {FORMAT} begin`)")]
    Missing,
    #[error("host output damaged: {0}")]
    Damaged(String),
}

/// Frame plain output as the script does with `CFH_Z=1`.
pub fn pack(plain: &str) -> String {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(plain.as_bytes()).unwrap();
    let b = B64.encode(gz.finish().unwrap());
    format!("#cfz {FORMAT} {}\n{b}\n#cfz {FORMAT} end\n", b.len())
}

/// Undo [`pack`] if the text is packed; plain text is returned as is.
pub fn unpack(text: &str) -> Result<String, OutputError> {
    let Some(start) = text.find(&format!("#cfz {FORMAT} ")) else {
        return Ok(text.to_string());
    };
    let rest = &text[start..];
    let mut lines = rest.lines();
    let head = lines.next().unwrap_or("");
    let len: usize = head.split_whitespace().nth(2).and_then(|n| n.parse().ok()).ok_or(OutputError::Truncated)?;
    let body = lines.next().ok_or(OutputError::Truncated)?;
    if body.len() != len || lines.next() != Some(&format!("#cfz {FORMAT} end")) {
        return Err(OutputError::Truncated);
    }
    let gz = B64.decode(body).map_err(|e| OutputError::Damaged(e.to_string()))?;
    let mut out = String::new();
    flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut out).map_err(|e| OutputError::Damaged(e.to_string()))?;
    Ok(out)
}

/// What a scan's whole answer may hold (GetCommandInvocation's 24,000 characters): the packed
/// summary first, then the texts frame ([`pack_texts`]) in what is left.
pub const ANSWER_LIMIT: usize = 23_900;

/// The texts a scan kept by hash (`store`: hash -> value), as one more frame after the packed
/// summary: `#cft 1 LEN`, base64 of gzip of `b HASH VALUE` lines, `#cft 1 end`. The listing's
/// 2,500 characters end within or right after the summary, so the texts cost nothing there;
/// GetCommandInvocation on a host that holds a text reads it without another command. Within
/// `budget` characters: the texts of at most 4x `budget` bytes (percent-encoded text packs
/// about 4:1), else of at most half that, ... (small texts first: stderr lines, hashes; a big
/// emitter is then looked for in another host's answer, or fetched by the `blobs` command).
/// `host-ops.sh`'s `texts` does the same with files; empty when nothing fits.
pub fn pack_texts(store: &BTreeMap<String, String>, budget: usize) -> String {
    let mut lim = budget * 4;
    for _ in 0..4 {
        let plain: String = store.iter().filter(|(_, v)| v.len() <= lim).map(|(h, v)| format!("b {h} {v}\n")).collect();
        if plain.is_empty() {
            return String::new();
        }
        let b = packed_texts(plain);
        if b.len() <= budget {
            return format!("#cft {FORMAT} {}\n{b}\n#cft {FORMAT} end\n", b.len());
        }
        lim /= 2;
    }
    String::new()
}

/// `plain` gzipped and base64-encoded, remembered by content: only the simulated hosts call
/// [`pack_texts`], and a big demo fleet's hosts hold a few dozen distinct sets of texts, so a
/// thousand hosts compressing theirs again was half the CPU of a 1000x8 demo scan (`perf`,
/// docs/benchmarks.md): the simulator's work in the console's process, not the console's.
fn packed_texts(plain: String) -> std::sync::Arc<str> {
    static MEMO: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<str>>>> =
        std::sync::LazyLock::new(Default::default);
    if let Some(b) = MEMO.lock().unwrap().get(&plain) {
        return b.clone();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(plain.as_bytes()).unwrap();
    let b: std::sync::Arc<str> = B64.encode(gz.finish().unwrap()).into();
    let mut m = MEMO.lock().unwrap();
    if m.len() >= 512 {
        m.clear();
    }
    m.insert(plain, b.clone());
    b
}

/// The base64 length a packed answer declares (`#cfz 1 LEN`), 0 when it is not packed.
pub fn packed_len(text: &str) -> usize {
    text.lines().next().and_then(|h| h.strip_prefix(&format!("#cfz {FORMAT} "))).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// The `(hash, value)` pairs of a texts frame in `text`, if a whole one is there (none when the
/// output was cut before its end, or the host had none). Unchecked: the caller accepts a text
/// only when its hash is what the text hashes to.
pub fn unpack_texts(text: &str) -> Vec<(String, String)> {
    let Some(start) = text.find(&format!("#cft {FORMAT} ")) else { return Vec::new() };
    let mut lines = text[start..].lines();
    let len: Option<usize> = lines.next().and_then(|h| h.split_whitespace().nth(2)).and_then(|n| n.parse().ok());
    let (Some(len), Some(body)) = (len, lines.next()) else { return Vec::new() };
    if body.len() != len || lines.next() != Some(&format!("#cft {FORMAT} end")) {
        return Vec::new();
    }
    let Ok(gz) = B64.decode(body) else { return Vec::new() };
    let mut out = String::new();
    if flate2::read::GzDecoder::new(&gz[..]).read_to_string(&mut out).is_err() {
        return Vec::new();
    }
    out.lines()
        .filter_map(|l| l.strip_prefix("b ")?.split_once(' ').map(|(h, v)| (h.to_string(), v.to_string())))
        .collect()
}

/// Parse a host's output (packed or plain); anything before the frame (stray lines) is ignored.
pub fn parse_output(text: &str) -> Result<HostOutput, OutputError> {
    let plain = unpack(text)?;
    let begin = format!("#cfh {FORMAT} begin ");
    let start = plain.find(&begin).ok_or(OutputError::Missing)?;
    let mut lines = plain[start..].lines();
    let instance = lines.next().unwrap()[begin.len()..].trim().to_string();
    let mut items: Vec<ItemOutput> = Vec::new();
    let mut cur: Option<ItemOutput> = None;
    let item_p = format!("#cfh {FORMAT} item ");
    let end_p = format!("#cfh {FORMAT} end ");
    for l in lines {
        if let Some(rest) = l.strip_prefix(&item_p) {
            let t: Vec<&str> = rest.split_whitespace().collect();
            match (t.as_slice(), cur.take()) {
                ([seq, "end", rc], Some(mut it)) if seq.parse::<usize>().ok() == Some(it.seq) => {
                    it.rc = rc.parse().map_err(|_| OutputError::Damaged(l.into()))?;
                    items.push(it);
                }
                ([seq, op], None) => {
                    let seq = seq.parse().map_err(|_| OutputError::Damaged(l.into()))?;
                    cur = Some(ItemOutput { seq, op: op.to_string(), lines: Vec::new(), rc: -1 });
                }
                _ => return Err(OutputError::Damaged(l.into())),
            }
        } else if let Some(n) = l.strip_prefix(&end_p) {
            if cur.is_some() {
                return Err(OutputError::Truncated);
            }
            let n: usize = n.trim().parse().map_err(|_| OutputError::Damaged(l.into()))?;
            if n != items.len() {
                return Err(OutputError::Damaged(format!("trailer says {n} items, {} read", items.len())));
            }
            return Ok(HostOutput { instance, items });
        } else if let Some(it) = cur.as_mut() {
            it.lines.push(l.to_string());
        }
    }
    Err(OutputError::Truncated)
}

/// Write a host's output the way the script frames it (the simulated hosts use this).
pub fn frame(instance: &str, items: &[ItemOutput]) -> String {
    let mut s = format!("#cfh {FORMAT} begin {instance}\n");
    for it in items {
        s.push_str(&format!("#cfh {FORMAT} item {} {}\n", it.seq, it.op));
        for l in &it.lines {
            s.push_str(l);
            s.push('\n');
        }
        s.push_str(&format!("#cfh {FORMAT} item {} end {}\n", it.seq, it.rc));
    }
    s.push_str(&format!("#cfh {FORMAT} end {}\n", items.len()));
    s
}

// ---------------------------------------------------------------------------------------------
// One container's record in a scan
//
// The host script frames each container itself: a `c id=FULL_ID ...` line from `docker inspect`,
// `d`/`w`/`e` lines, and the probe's whole output as ONE percent-encoded `p` line, so nothing a
// container prints can start a line of the frame or a neighbour's record. Long free-text probe
// items travel as `KEY=@HASH12:LEN` references into the host's blob store; the console accepts a
// text for a hash only when it is that text's [`blob_hash`] under the scan's nonce.

/// Probe items that travel by reference in a scan: free text, and the full file hashes
/// (random hex does not compress; the same file's hash is fetched once).
pub fn is_blob_key(k: &str) -> bool {
    k.starts_with("e.") || matches!(k, "cfx" | "emx" | "cf" | "em" | "sy" | "rq" | "mc" | "pj" | "syx" | "rqx" | "mcx" | "pjx")
}

/// Values this short travel inline: a reference (`@` + 12 hex + `:` + length) would be about as long.
pub const BLOB_MIN: usize = 24;

/// The hash a blob is named by: the first 12 hex digits of `sha256(KEY "\n" TEXT)`, KEY the
/// scan's nonce (a read's, its `NONCE`). 12 digits are what SSM's 2,500-character listing
/// leaves room for (16 made a host of eight agents with every config layer overflow it), and
/// every blob is checked against its hash when it arrives; but 48 bits do not stop a search
/// for a second text of the same hash (~2^48 SHA-256, hours on a GPU), and the console keeps
/// one text per hash for the whole fleet: unkeyed, a container that found one for another
/// agent's config could have its text shown and diagnosed as that agent's. Keyed by a random
/// nonce that no container sees and every scan renews, the search would have to start when
/// the scan does and end before it does ([`super::texts::TextStore`]).
pub fn blob_hash(key: &str, v: &str) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(key.as_bytes());
    h.update(b"\n");
    h.update(v.as_bytes());
    hex::encode(h.finalize())[..12].to_string()
}

/// `(key, hash, len)` of a probe line that is a blob reference (`KEY=@HASH12:LEN`, KEY a blob key).
pub fn blob_ref(line: &str) -> Option<(&str, &str, usize)> {
    let (k, v) = line.split_once('=')?;
    let (h, n) = value_ref(v)?;
    is_blob_key(k).then_some((k, h, n))
}

/// One probe line as a scan carries it: a long free-text value (or one starting with `@`, which
/// would read as a reference) replaced by its reference and kept in `store` (what host-ops.sh
/// does with sha256sum and a file per blob), named by [`blob_hash`] under `key`.
pub fn reduce_line(l: &str, key: &str, store: &mut BTreeMap<String, String>) -> String {
    match l.split_once('=') {
        Some((k, v)) if is_blob_key(k) && (v.len() > BLOB_MIN || v.starts_with('@')) => format!("{k}={}", reduce_value(v, key, store)),
        _ => l.to_string(),
    }
}

/// A value kept in `store` and replaced by its reference `@HASH12:LEN` (the image id of a scan's
/// `c` lines: 32 random bytes that do not compress, the same for many containers, fetched once).
pub fn reduce_value(v: &str, key: &str, store: &mut BTreeMap<String, String>) -> String {
    let h = blob_hash(key, v);
    let out = format!("@{h}:{}", v.len());
    store.insert(h, v.to_string());
    out
}

/// `(hash, len)` of a value that is a reference (`@HASH12:LEN`).
pub fn value_ref(v: &str) -> Option<(&str, usize)> {
    let (h, n) = v.strip_prefix('@')?.split_once(':')?;
    let hex12 = h.len() == 12 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    hex12.then_some(())?;
    Some((h, n.parse().ok()?))
}

/// The `p` line of a record: the probe's output (reduced or not) as one line, with `%`, CR and
/// LF percent-encoded (nothing else needs to be: the line cannot end early, and the rest keeps
/// gzip's compression of the probe's own text; [`unpct`] reads it back).
pub fn probe_line<'a>(lines: impl IntoIterator<Item = &'a str>) -> String {
    let mut o = String::from("p ");
    for l in lines {
        o.push_str(&l.replace('%', "%25").replace('\r', "%0d"));
        o.push_str("%0a");
    }
    o
}

/// Is `id` a full container id (64 lower-case hex digits)?
pub fn is_full_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `k=v k=v` items of one line.
pub fn kv(line: &str) -> BTreeMap<String, String> {
    line.split_whitespace()
        .filter_map(|t| t.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let p = Payload {
            run: "run-1".into(),
            z: true,
            items: vec![
                Item::new("i-1", "write").with("CONTAINER", "a'b\"c $(rm -rf /)").with("PATH", "/x y"),
                Item::new("*", "scan").with("FILTER", "image=codex"),
            ],
        };
        let s = render(&p);
        assert!(!s.contains("rm -rf /)"), "values travel encoded");
        assert_eq!(decode(&s).unwrap(), p);
    }

    #[test]
    fn a_long_value_travels_once_a_command() {
        let config = "sandbox_mode = \"danger-full-access\"\n".repeat(200) + "\n\n";
        let other = config.replace("danger", "xdanger");
        let item = |i: &str, c: &str| Item::new(i, "write").with("CONTENT", c).with("BEFORE_TEXT", c).with("RUN", "r");
        let p = Payload {
            run: "run-1".into(),
            z: false,
            items: vec![item("i-1", &config), item("i-2", &config), item("i-2", &other), item("i-3", &config)],
        };
        let s = render(&p);
        assert_eq!(s.matches(&B64.encode(&config)).count(), 1, "sent once");
        assert_eq!(s.matches(&B64.encode(&other)).count(), 1);
        assert!(s.contains("\nCFH_1_F_CONTENT=$CFH_1_F_BEFORE_TEXT\n"), "{}", &s[..600]);
        assert!(s.contains("\nCFH_4_F_CONTENT=$CFH_1_F_BEFORE_TEXT\n"));
        assert!(s.contains("\nCFH_1_F_RUN=$(d 'cg=='); "), "short values are not shared");
        assert_eq!(decode(&s).unwrap(), p);
        // A copy must name a value set before it, in range.
        let bad = |line: &str| {
            let t = s.replacen("CFH_4_F_CONTENT=$CFH_1_F_BEFORE_TEXT", line, 1);
            decode(&t).unwrap_err()
        };
        assert!(bad("CFH_4_F_CONTENT=$CFH_4_F_RUN").contains("not set before it"));
        assert!(bad("CFH_4_F_CONTENT=$CFH_9_F_CONTENT").contains("not set before it"));
        assert!(bad("CFH_5_F_CONTENT=$CFH_1_F_CONTENT").contains("out of range"));
    }

    #[test]
    fn references_are_the_hosts_own() {
        let mut store = BTreeMap::new();
        // A container's value that looks like a reference is itself kept by reference.
        let forged = "@0123456789ab:30";
        let l = reduce_line(&format!("cfx={forged}"), "scan-1-ab", &mut store);
        let (k, h, n) = blob_ref(&l).unwrap();
        assert_eq!((k, n), ("cfx", forged.len()));
        assert_eq!(store[h], forged);
        assert_eq!(blob_hash("scan-1-ab", forged), h);
        // Named under the key, and under another key by another name (sha256 of "KEY\nTEXT").
        assert_ne!(blob_hash("scan-2-cd", forged), h);
        use sha2::Digest;
        assert_eq!(h, &hex::encode(sha2::Sha256::digest(format!("scan-1-ab\n{forged}").as_bytes()))[..12]);
        // Only blob keys refer; short values travel inline.
        assert_eq!(blob_ref("cv=@0123456789ab:30"), None);
        assert_eq!(reduce_line("cv=0.133.0", "k", &mut store), "cv=0.133.0");
        // The p line cannot end early, and reads back.
        let p = probe_line(["a=1%", "#cfh 1 end 1\r", "c id=x"]);
        assert!(!p.contains('\n') && !p.contains('\r'));
        assert_eq!(unpct(&p[2..]), "a=1%\n#cfh 1 end 1\r\nc id=x\n");
        assert!(is_full_id(&"a".repeat(64)) && !is_full_id(&"a".repeat(12)) && !is_full_id(&"A".repeat(64)));
    }

    #[test]
    fn output_round_trip_and_truncation() {
        let items = vec![ItemOutput { seq: 1, op: "scan".into(), lines: vec!["h docker=27.1".into()], rc: 0 }];
        let plain = frame("i-1", &items);
        let packed = pack(&plain);
        assert_eq!(parse_output(&packed).unwrap().items, items);
        assert_eq!(parse_output(&plain).unwrap().instance, "i-1");
        assert_eq!(parse_output(&packed[..packed.len() - 12]), Err(OutputError::Truncated));
        assert_eq!(parse_output(&plain[..plain.len() - 12]), Err(OutputError::Truncated));
        assert_eq!(unpct(&pct("a b%c\n")), "a b%c\n");
        // A `%` that is no escape stays, whatever follows it (a multibyte character cut by
        // the escape's two bytes panicked).
        assert_eq!(unpct("%a€ %€ 100% %4"), "%a€ %€ 100% %4");
        assert_eq!(unpct("%e2%82%ac%41%zz"), "€A%zz");
    }
}
