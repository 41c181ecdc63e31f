//! The demo's judge of "what would codex do": when a real codex binary is at hand
//! (`CODEX_FLEET_DEMO_CODEX`), the simulated agents' `codex debug prompt-input` is answered by
//! running that codex on the simulated files, so the demo (and every test on it) can disagree
//! with the product's own model of codex; without one, the built-in model answers and the demo's
//! description line says so.
//!
//! `CODEX_FLEET_DEMO_CODEX=/path/to/codex` judges every agent with that binary;
//! `CODEX_FLEET_DEMO_CODEX=0.133.0=/a/codex,0.163.0=/b/codex[,/c/codex]` judges each agent with
//! the binary of its codex version, agents of an unlisted version with the unversioned entry if
//! any, else with the built-in model. codex runs under bubblewrap on a root of its own: the
//! agent's files at the agent's paths (`$CODEX_HOME/config.toml`, `/etc/codex/*.toml`,
//! `/workspace/.codex/config.toml`), nothing of this machine's /etc, no network.

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};


/// What codex is given of one simulated agent: the judge's whole input. The world lends it
/// ([`super::world::SimAgent::codex_files`]); the judge knows nothing else of the world.
#[derive(Debug, Clone, Copy)]
pub struct CodexFiles<'a> {
    pub version: &'a str,
    /// `$CODEX_HOME`.
    pub home: &'a str,
    /// The workspace codex starts in (its project layer's root).
    pub cwd: &'a str,
    pub config: &'a Option<String>,
    pub system: &'a Option<String>,
    pub requirements: &'a Option<String>,
    pub managed: &'a Option<String>,
    pub project: &'a Option<String>,
}

/// Anything that can lend the judge its [`CodexFiles`] (a simulated agent, or the files
/// themselves).
pub trait Judged {
    fn codex_files(&self) -> CodexFiles<'_>;
}

impl Judged for CodexFiles<'_> {
    fn codex_files(&self) -> CodexFiles<'_> {
        *self
    }
}
use crate::probe::{CodexEffective, Outcome, Signature, Step};

pub const ENV: &str = "CODEX_FLEET_DEMO_CODEX";

/// The real codex binaries the demo judges with.
#[derive(Debug, Default)]
pub struct Judge {
    pub by_version: BTreeMap<String, PathBuf>,
    pub any: Option<PathBuf>,
}

impl Judge {
    /// From the environment variable's value; an entry naming no executable file is an error.
    pub fn parse(v: &str) -> Result<Judge, String> {
        let mut j = Judge::default();
        for e in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (ver, path) = match e.split_once('=') {
                Some((v, p)) => (Some(v.trim()), p.trim()),
                None => (None, e),
            };
            let p = PathBuf::from(path);
            if !p.is_file() {
                return Err(format!("{ENV}: {path} is not a file"));
            }
            match ver {
                Some(v) => {
                    j.by_version.insert(v.to_string(), p);
                }
                None => j.any = Some(p),
            }
        }
        Ok(j)
    }

    pub fn codex_for(&self, version: &str) -> Option<&Path> {
        self.by_version.get(version).or(self.any.as_ref()).map(PathBuf::as_path)
    }

    /// For the description line.
    pub fn words(&self) -> String {
        let mut v: Vec<String> = self.by_version.keys().map(|k| format!("codex {k}")).collect();
        if self.any.is_some() {
            v.push("codex (any version)".into());
        }
        format!("judged by the real {}", v.join(", "))
    }
}

/// The judge of this process (`None`: the built-in model); a bad value is reported once on
/// stderr and the built-in model answers.
pub fn judge() -> Option<&'static Judge> {
    static J: LazyLock<Option<Judge>> = LazyLock::new(|| {
        let v = std::env::var(ENV).ok().filter(|v| !v.trim().is_empty())?;
        match Judge::parse(&v) {
            Ok(j) if j.any.is_some() || !j.by_version.is_empty() => Some(j),
            Ok(_) => None,
            Err(e) => {
                eprintln!("{e}; the demo's agents are judged by the built-in model");
                None
            }
        }
    });
    J.as_ref()
}

/// The demo's description: which judge answers its agents' prompt-input.
pub fn description() -> String {
    match judge() {
        Some(j) => j.words(),
        None => format!("judged by the built-in codex model; set {ENV} to judge with a real codex"),
    }
}

/// What `codex debug prompt-input` printed, read as the probe reads it.
pub fn read_prompt_input(text: &str) -> CodexEffective {
    // the word after `pre`: lower-case letters and dashes
    let grab = |pre: &str| {
        text.find(pre).map(|i| {
            let rest = &text[i + pre.len()..];
            let end = rest.find(|c: char| !(c.is_ascii_lowercase() || c == '-')).unwrap_or(rest.len());
            rest[..end].to_string()
        })
    };
    let sandbox_mode = grab("`sandbox_mode` is `").filter(|v| !v.is_empty());
    let mut approval_policy = grab("Approval policy is currently ").or_else(|| grab("`approval_policy` is `")).filter(|v| !v.is_empty());
    if approval_policy.is_none() && text.contains("require_escalated") {
        approval_policy = Some("on-request".into());
    }
    if approval_policy.as_deref() == Some("unless-trusted") {
        approval_policy = Some("untrusted".into());
    }
    let network_access = if text.contains("Network access is enabled") {
        Some(true)
    } else if text.contains("Network access is restricted") {
        Some(false)
    } else {
        None
    };
    CodexEffective { sandbox_mode, approval_policy, network_access }
}

/// The directory of the on-disk cache of answers, shared by every process that sets it (the
/// test suite's processes each start with an empty in-process map).
pub const CACHE_ENV: &str = "CODEX_FLEET_DEMO_CODEX_CACHE";

/// How many codex processes one demo process runs at once (default 2).
pub const JOBS_ENV: &str = "CODEX_FLEET_DEMO_CODEX_JOBS";

/// Bump when the sandbox layout, the argv/env codex sees or the answer's shape changes: the
/// key then changes and old cache entries are never read.
const KEY_FORMAT: &str = "codex-fleet demo judge 2: bwrap tmpfs root, /opt/codex, /etc/codex, CODEX_HOME, /workspace";

type Answer = (Step, Option<CodexEffective>);

/// Answers already given in this process, by [`key`].
static ANSWERS: LazyLock<Mutex<BTreeMap<String, Answer>>> = LazyLock::new(Default::default);

/// Cache statistics of this process: (memory hits, disk hits, codex runs).
static STATS: LazyLock<Mutex<(u64, u64, u64)>> = LazyLock::new(Default::default);

/// (memory hits, disk hits, codex runs) of this process so far.
pub fn stats() -> (u64, u64, u64) {
    *STATS.lock().unwrap()
}

/// Everything codex's answer depends on, hashed: the binary (canonical path, size, mtime), the
/// agent's codex version, every file the sandbox gives codex (absent and empty told apart),
/// and the argv and environment codex runs with. The same key always gets the same answer.
pub fn key(codex: &Path, a: &impl Judged) -> Result<String, String> {
    let a = a.codex_files();
    use sha2::{Digest, Sha256};
    let real = std::fs::canonicalize(codex).map_err(|e| format!("{}: {e}", codex.display()))?;
    let meta = std::fs::metadata(&real).map_err(|e| format!("{}: {e}", real.display()))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = Sha256::new();
    // each part length-prefixed: no two different inputs hash the same bytes
    let mut part = |b: &[u8]| {
        h.update((b.len() as u64).to_le_bytes());
        h.update(b);
    };
    part(KEY_FORMAT.as_bytes());
    // the answer's signature letter is the probe's rules' verdict on codex's words
    part(crate::probe::signature_program().as_bytes());
    part(real.as_os_str().as_encoded_bytes());
    part(meta.len().to_string().as_bytes());
    part(mtime.to_string().as_bytes());
    part(a.version.as_bytes());
    part(a.home.as_bytes());
    part(a.cwd.as_bytes());
    part(b"debug prompt-input");
    part(b"PATH=/usr/bin:/bin HOME=<parent of CODEX_HOME> TMPDIR=/tmp");
    for (name, f) in [
        ("config.toml", a.config),
        ("/etc/codex/config.toml", a.system),
        ("/etc/codex/requirements.toml", a.requirements),
        ("/etc/codex/managed_config.toml", a.managed),
        ("project .codex/config.toml", a.project),
    ] {
        part(name.as_bytes());
        match f {
            Some(t) => {
                part(b"present");
                part(t.as_bytes());
            }
            None => part(b"absent"),
        }
    }
    Ok(hex::encode(h.finalize()))
}

fn cache_dir() -> Option<PathBuf> {
    std::env::var_os(CACHE_ENV).filter(|v| !v.is_empty()).map(PathBuf::from)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CacheEntry {
    key: String,
    step: Step,
    effective: Option<CodexEffective>,
}

/// The answer stored under `key` on disk, if any (an unreadable or foreign entry is a miss).
fn disk_get(key: &str) -> Option<Answer> {
    let p = cache_dir()?.join(format!("{key}.json"));
    let bytes = std::fs::read(p).ok()?;
    let e: CacheEntry = serde_json::from_slice(&bytes).ok()?;
    (e.key == key).then_some((e.step, e.effective))
}

/// Store an answer on disk: written to a private temporary file and renamed into place, so a
/// reader in another process sees a whole entry or none. Failures only cost a later miss.
fn disk_put(key: &str, v: &Answer) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let Some(dir) = cache_dir() else { return };
    if std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).is_err() {
        return;
    }
    let e = CacheEntry { key: key.to_string(), step: v.0.clone(), effective: v.1.clone() };
    let Ok(bytes) = serde_json::to_vec(&e) else { return };
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = dir.join(format!(".{key}.{}.{}.tmp", std::process::id(), N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    let ok = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&bytes))
        .is_ok();
    if !ok || std::fs::rename(&tmp, dir.join(format!("{key}.json"))).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// The cached answer for `key`: this process's map, else the disk (then kept in the map).
fn cached(key: &str) -> Option<Answer> {
    if let Some(v) = ANSWERS.lock().unwrap().get(key) {
        STATS.lock().unwrap().0 += 1;
        return Some(v.clone());
    }
    let v = disk_get(key)?;
    STATS.lock().unwrap().1 += 1;
    ANSWERS.lock().unwrap().insert(key.to_string(), v.clone());
    Some(v)
}

/// At most [`JOBS_ENV`] codex processes at once in this process (the machine has few cores
/// and many test processes).
static SLOTS: LazyLock<(Mutex<usize>, std::sync::Condvar)> = LazyLock::new(Default::default);

fn jobs() -> usize {
    std::env::var(JOBS_ENV).ok().and_then(|v| v.parse().ok()).filter(|n| *n > 0).unwrap_or(2)
}

/// Run codex for a miss (within the bound) and remember its answer in memory and on disk.
/// With the disk cache, one process at a time answers a key (an exclusive lock on
/// `KEY.lock` there): the test suite's processes start together on the same few file sets, and
/// those that wait read the first one's answer instead of running codex again.
fn run_and_store(codex: &Path, a: &CodexFiles, key: &str) -> Result<Answer, String> {
    let _lock = cache_dir().and_then(|dir| {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).ok()?;
        let f = std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(dir.join(format!("{key}.lock"))).ok()?;
        f.lock().ok()?;
        Some(f)
    });
    if _lock.is_some() {
        if let Some(v) = disk_get(key) {
            STATS.lock().unwrap().1 += 1;
            ANSWERS.lock().unwrap().insert(key.to_string(), v.clone());
            return Ok(v);
        }
    }
    {
        let (m, cv) = &*SLOTS;
        let mut busy = m.lock().unwrap();
        while *busy >= jobs() {
            busy = cv.wait(busy).unwrap();
        }
        *busy += 1;
    }
    let v = run(codex, a);
    {
        let (m, cv) = &*SLOTS;
        *m.lock().unwrap() -= 1;
        cv.notify_one();
    }
    let v = v?;
    STATS.lock().unwrap().2 += 1;
    ANSWERS.lock().unwrap().insert(key.to_string(), v.clone());
    disk_put(key, &v);
    Ok(v)
}

/// Run the real `codex` on this agent's files, or give the answer it gave before for the same
/// key (in this process or, with [`CACHE_ENV`], in any). `Err`: codex could not be run at all
/// (no bubblewrap, a broken binary): the caller falls back on the built-in model.
pub fn answer(codex: &Path, a: &impl Judged) -> Result<Answer, String> {
    let a = a.codex_files();
    let key = key(codex, &a)?;
    if let Some(v) = cached(&key) {
        return Ok(v);
    }
    run_and_store(codex, &a, &key)
}

/// Answer every agent of `agents` that the judge will be asked about, the distinct misses in
/// parallel (at most [`JOBS_ENV`] at once), so that the one-by-one [`answer`] calls that follow
/// are all hits. Failures are left for [`answer`] to report.
pub fn prefetch<'a>(agents: impl IntoIterator<Item = CodexFiles<'a>>) {
    let Some(j) = judge() else { return };
    let mut misses: BTreeMap<String, (&Path, CodexFiles<'a>)> = BTreeMap::new();
    for a in agents {
        let Some(codex) = j.codex_for(a.version) else { continue };
        let Ok(k) = key(codex, &a) else { continue };
        if misses.contains_key(&k) || cached(&k).is_some() {
            continue;
        }
        misses.insert(k, (codex, a));
    }
    if misses.len() < 2 {
        // one miss: the caller's own answer() runs it
        return;
    }
    let queue = Mutex::new(misses.into_iter());
    std::thread::scope(|s| {
        for _ in 0..jobs() {
            s.spawn(|| loop {
                let next = queue.lock().unwrap().next();
                let Some((k, (codex, a))) = next else { break };
                let _ = run_and_store(codex, &a, &k);
            });
        }
    });
}

/// The probe's signature letter `c`: codex's config-error words, as assets/probe.sh matches
/// them on the whole stderr (its own rules, run by [`crate::probe::host_signature`]).
pub fn config_words_in(stderr: &str) -> bool {
    crate::probe::host_signature(stderr) == Some(Signature::ConfigError)
}

/// A private scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(base: &Path) -> Result<Scratch, String> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let p = base.join(format!("codex-fleet-demo-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&p)
            .map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(Scratch(p))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(codex: &Path, a: &CodexFiles) -> Result<(Step, Option<CodexEffective>), String> {
    let bwrap = ["/usr/bin/bwrap", "/bin/bwrap"].into_iter().map(Path::new).find(|p| p.is_file()).ok_or("no bwrap to run the demo's codex in")?;
    // codex refuses helper links under a temporary dir: the scratch root is not under /tmp
    let base = std::env::var_os("CODEX_FLEET_DEMO_CODEX_TMP").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/var/tmp"));
    let dir = Scratch::new(&base)?;
    let d = dir.0.as_path();
    let write = |rel: &str, text: &Option<String>| -> Result<(), String> {
        let p = d.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).map_err(|e| e.to_string())?;
        if let Some(t) = text {
            std::fs::write(&p, t).map_err(|e| e.to_string())?;
        }
        Ok(())
    };
    write("home/config.toml", a.config)?;
    write("etc/config.toml", a.system)?;
    write("etc/requirements.toml", a.requirements)?;
    write("etc/managed_config.toml", a.managed)?;
    write("ws/.codex/config.toml", a.project)?;
    if a.project.is_none() {
        let _ = std::fs::remove_dir(d.join("ws/.codex"));
    }
    // the binary's own tree (bin/codex and codex-resources next to it)
    let real = std::fs::canonicalize(codex).map_err(|e| format!("{}: {e}", codex.display()))?;
    let tree = real.parent().and_then(Path::parent).ok_or("codex is not in a bin/ directory")?;
    let rel = real.strip_prefix(tree).map_err(|e| e.to_string())?;
    let home_parent = Path::new(&a.home).parent().map(|p| p.display().to_string()).unwrap_or_else(|| "/".into());
    let s = |p: &Path| p.display().to_string();
    let mut args: Vec<String> = ["--die-with-parent", "--unshare-net", "--tmpfs", "/", "--dev", "/dev", "--proc", "/proc", "--dir", "/tmp", "--dir", "/etc"]
        .map(String::from)
        .to_vec();
    args.extend(["--ro-bind".into(), s(tree), "/opt/codex".into()]);
    args.extend(["--ro-bind".into(), s(&d.join("etc")), "/etc/codex".into()]);
    args.extend(["--bind".into(), s(&d.join("home")), a.home.to_string()]);
    args.extend(["--bind".into(), s(&d.join("ws")), a.cwd.into(), "--chdir".into(), a.cwd.into()]);
    args.extend(["--setenv".into(), "HOME".into(), home_parent, "--setenv".into(), "CODEX_HOME".into(), a.home.to_string()]);
    args.extend(["--setenv".into(), "TMPDIR".into(), "/tmp".into(), "--".into()]);
    args.push(format!("/opt/codex/{}", rel.display()));
    args.extend(["debug".into(), "prompt-input".into()]);
    let out_path = d.join("out");
    let err_path = d.join("err");
    let out = std::fs::File::create(&out_path).map_err(|e| e.to_string())?;
    let err = std::fs::File::create(&err_path).map_err(|e| e.to_string())?;
    let mut child = Command::new(bwrap)
        .args(&args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("bwrap: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the demo's codex did not answer within 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let read = |p: &Path| std::fs::read(p).map(|b| String::from_utf8_lossy(&b).into_owned()).map_err(|e| e.to_string());
    let (text, err) = (read(&out_path)?, read(&err_path)?);
    if err.starts_with("bwrap:") {
        return Err(err.lines().next().unwrap_or_default().to_string());
    }
    if !status.success() {
        // as the probe reports a step's stderr: redacted, its first 6 lines of at most 300
        // characters (the probe runs codex on a copy whose path it puts back: here the paths
        // are the agent's own already)
        let red = crate::codex::redact::redact(&err).text;
        let config_error = config_words_in(&err);
        let lines: Vec<String> = red.lines().take(6).map(|l| l.chars().take(300).collect()).collect();
        let stderr = lines.join("\n").trim_end().to_string();
        let signature = config_error.then_some(Signature::ConfigError);
        return Ok((Step { outcome: Outcome::Error, rc: status.code(), stderr, signature }, None));
    }
    let e = read_prompt_input(&text);
    if e.sandbox_mode.is_none() {
        return Err(format!("the demo's codex printed no sandbox mode: {}", text.chars().take(200).collect::<String>()));
    }
    Ok((Step { outcome: Outcome::Ok, rc: Some(0), stderr: String::new(), signature: None }, Some(e)))
}
