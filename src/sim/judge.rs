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

use super::world::{SimAgent, SIM_CWD};
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
        None => format!("judged by the built-in codex model (set {ENV} to judge with a real codex)"),
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

/// Answers already given, by everything they depend on (the same bytes always get the same
/// answer from the same binary).
static ANSWERS: LazyLock<Mutex<BTreeMap<String, (Step, Option<CodexEffective>)>>> = LazyLock::new(Default::default);

/// Run the real `codex` on this agent's files. `Err`: codex could not be run at all (no
/// bubblewrap, a broken binary): the caller falls back on the built-in model.
pub fn answer(codex: &Path, a: &SimAgent) -> Result<(Step, Option<CodexEffective>), String> {
    let key = {
        use sha2::{Digest, Sha256};
        let meta = std::fs::metadata(codex).map_err(|e| format!("{}: {e}", codex.display()))?;
        let mut h = Sha256::new();
        for part in [
            codex.display().to_string(),
            meta.len().to_string(),
            a.codex_home.clone(),
            format!("{:?}", a.config),
            format!("{:?}", a.layers),
        ] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        hex::encode(h.finalize())
    };
    if let Some(v) = ANSWERS.lock().unwrap().get(&key) {
        return Ok(v.clone());
    }
    let v = run(codex, a)?;
    ANSWERS.lock().unwrap().insert(key, v.clone());
    Ok(v)
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

fn run(codex: &Path, a: &SimAgent) -> Result<(Step, Option<CodexEffective>), String> {
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
    write("home/config.toml", &a.config)?;
    write("etc/config.toml", &a.layers.system)?;
    write("etc/requirements.toml", &a.layers.requirements)?;
    write("etc/managed_config.toml", &a.layers.managed)?;
    write("ws/.codex/config.toml", &a.layers.project)?;
    if a.layers.project.is_none() {
        let _ = std::fs::remove_dir(d.join("ws/.codex"));
    }
    // the binary's own tree (bin/codex and codex-resources next to it)
    let real = std::fs::canonicalize(codex).map_err(|e| format!("{}: {e}", codex.display()))?;
    let tree = real.parent().and_then(Path::parent).ok_or("codex is not in a bin/ directory")?;
    let rel = real.strip_prefix(tree).map_err(|e| e.to_string())?;
    let home_parent = Path::new(&a.codex_home).parent().map(|p| p.display().to_string()).unwrap_or_else(|| "/".into());
    let s = |p: &Path| p.display().to_string();
    let mut args: Vec<String> = ["--die-with-parent", "--unshare-net", "--tmpfs", "/", "--dev", "/dev", "--proc", "/proc", "--dir", "/tmp", "--dir", "/etc"]
        .map(String::from)
        .to_vec();
    args.extend(["--ro-bind".into(), s(tree), "/opt/codex".into()]);
    args.extend(["--ro-bind".into(), s(&d.join("etc")), "/etc/codex".into()]);
    args.extend(["--bind".into(), s(&d.join("home")), a.codex_home.clone()]);
    args.extend(["--bind".into(), s(&d.join("ws")), SIM_CWD.into(), "--chdir".into(), SIM_CWD.into()]);
    args.extend(["--setenv".into(), "HOME".into(), home_parent, "--setenv".into(), "CODEX_HOME".into(), a.codex_home.clone()]);
    args.extend(["--setenv".into(), "TMPDIR".into(), "/tmp".into(), "--".into()]);
    args.push(format!("/opt/codex/{}", rel.display()));
    args.extend(["debug".into(), "prompt-input".into()]);
    let out_path = d.join("out");
    let out = std::fs::File::create(&out_path).map_err(|e| e.to_string())?;
    let mut child = Command::new(bwrap)
        .args(&args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(|e| e.to_string())?)
        .stderr(out)
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
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = String::from_utf8_lossy(&std::fs::read(&out_path).map_err(|e| e.to_string())?).into_owned();
    if text.starts_with("bwrap:") {
        return Err(text.lines().next().unwrap_or_default().to_string());
    }
    if !status.success() {
        let err: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(6).collect();
        let err = err.join("\n");
        // the probe's signature letter: only codex's config-error words make it `c`
        let config_words = ["duplicate key", "TOML parse error", "Error loading config", "unknown variant", "no longer supported"];
        let signature = config_words.iter().any(|w| err.contains(w)).then_some(Signature::ConfigError);
        return Ok((Step { outcome: Outcome::Error, rc: status.code(), stderr: err, signature }, None));
    }
    let e = read_prompt_input(&text);
    if e.sandbox_mode.is_none() {
        return Err(format!("the demo's codex printed no sandbox mode: {}", text.chars().take(200).collect::<String>()));
    }
    Ok((Step { outcome: Outcome::Ok, rc: Some(0), stderr: String::new(), signature: None }, Some(e)))
}
