//! The probe script run for real in this machine's /bin/sh (dash), as root and as uid 1000
//! (setpriv, like the real agent), with and without its tools, with the real codex 0.133.0 and
//! 0.163.0, against a Gitea stand-in on 127.0.0.1; its output parsed by the one parser.

mod common;

use codex_fleet::codex::redact::redact;
use codex_fleet::probe::{
    self, parse, render_detail, render_summary, Mode, Outcome, ParseError, ProbeReport,
};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const AGENT_UID: u32 = 1000;
/// One agent's summary at most: 8 of them, each with its ~20-byte framing line, fit the 2,500
/// characters SSM lists per host (8 x (292 + 20) = 2,496).
const SUMMARY_MAX: usize = 292;

fn have(tool: &str) -> Option<PathBuf> {
    std::env::var("PATH")
        .ok()?
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

fn require(tool: &str) -> Option<PathBuf> {
    have(tool).or_else(|| common::require_or_skip(tool))
}

/// A scratch tree every uid can reach (not under /root, not under /tmp: codex refuses helper
/// links under a temporary dir), removed at drop.
struct Scratch(tempfile::TempDir);
impl Scratch {
    fn new() -> Scratch {
        let d = tempfile::Builder::new()
            .prefix("cfp-test-")
            .tempdir_in("/var/tmp")
            .unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Scratch(d)
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
}

fn chown_r(p: &Path, uid: u32) {
    let st = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{uid}"))
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

/// The real codex `version` laid out as in its wheel (bin/codex + codex-resources/bwrap) under
/// `dir`, hard-linked so uid 1000 can reach it (the cache lives under /root).
fn codex_tree(version: &str, dir: &Path) -> Option<PathBuf> {
    let bin = common::codex_bin(version)?;
    let root = dir.join(format!("codex-{version}"));
    std::fs::create_dir_all(root.join("bin")).unwrap();
    let link = |from: &Path, to: &Path| {
        if std::fs::hard_link(from, to).is_err() {
            std::fs::copy(from, to).unwrap();
        }
    };
    link(&bin, &root.join("bin/codex"));
    let bwrap = bin
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("codex-resources/bwrap");
    if bwrap.is_file() {
        std::fs::create_dir_all(root.join("codex-resources")).unwrap();
        link(&bwrap, &root.join("codex-resources/bwrap"));
    }
    Some(root.join("bin/codex"))
}

/// A bin dir holding only the named tools (symlinks), for "tool missing" runs.
fn bin_dir(dir: &Path, tools: &[&str]) -> PathBuf {
    let b = dir.join("bin");
    std::fs::create_dir_all(&b).unwrap();
    for t in tools {
        if let Some(p) = have(t) {
            let _ = std::os::unix::fs::symlink(p, b.join(t));
        }
    }
    b
}

/// Tools the probe needs at the least; everything else is optional.
const BASE_TOOLS: &[&str] = &[
    "sh",
    "awk",
    "cat",
    "tr",
    "sed",
    "grep",
    "id",
    "readlink",
    "mktemp",
    "rm",
    "rmdir",
    "chmod",
    "mkdir",
    "wc",
    "tail",
    "sha256sum",
    "timeout",
    "true",
    "ls",
    "od",
];

struct Gitea {
    child: Child,
    url: String,
}
impl Drop for Gitea {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Gitea stand-in: `/api/v1/version` answers 200 with Gitea's JSON, anything else 404.
fn gitea() -> Option<Gitea> {
    let py = require("python3")?;
    let code = r#"
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path == "/api/v1/version"
        body = b'{"version":"1.22.0"}' if ok else b'not found'
        self.send_response(200 if ok else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_port, flush=True)
s.serve_forever()
"#;
    let mut child = Command::new(py)
        .args(["-c", code])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("server port");
    Some(Gitea {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

/// A URL on a port where nothing listens.
fn closed_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// The assembled script, written into a test's scratch directory (readable by every uid).
fn script_file(dir: &Path) -> PathBuf {
    let p = dir.join("probe.sh");
    if !p.exists() {
        std::fs::write(&p, probe::script()).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    p
}

struct Run<'a> {
    uid: u32,
    home: &'a Path,
    path: String,
    mode: Mode,
    gitea: &'a str,
    extra: Vec<String>,
    codex_home_env: Option<&'a Path>,
    cwd: Option<&'a Path>,
}

impl<'a> Run<'a> {
    fn new(home: &'a Path, path: String, gitea: &'a str) -> Run<'a> {
        Run {
            uid: 0,
            home,
            path,
            mode: Mode::Summary,
            gitea,
            extra: vec![],
            codex_home_env: None,
            cwd: None,
        }
    }

    /// Run the probe in /bin/sh with a clean environment (HOME, PATH and maybe CODEX_HOME).
    fn go(&self) -> String {
        let mut cmd = if self.uid == 0 {
            Command::new("/bin/sh")
        } else {
            let mut c = Command::new(require("setpriv").unwrap());
            c.args([
                &format!("--reuid={}", self.uid),
                &format!("--regid={}", self.uid),
                "--clear-groups",
                "/bin/sh",
            ]);
            c
        };
        // next to the agent's home, inside the test's scratch directory
        cmd.arg(script_file(self.home.parent().unwrap()))
            .arg(self.mode.arg())
            .arg(self.gitea)
            .args(&self.extra);
        cmd.env_clear()
            .env("HOME", self.home)
            .env("PATH", &self.path);
        if let Some(ch) = self.codex_home_env {
            cmd.env("CODEX_HOME", ch);
        }
        cmd.current_dir(self.cwd.unwrap_or(Path::new("/")));
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "probe exited {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("probe output is ASCII")
    }

    fn report(&self) -> (String, ProbeReport) {
        let text = self.go();
        let r = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(text.is_ascii(), "{text}");
        assert_eq!(r.detail, self.mode != Mode::Summary);
        // the renderer (demo fleet) writes exactly what the script wrote
        let again = if r.detail {
            render_detail(&r)
        } else {
            render_summary(&r)
        };
        assert_eq!(again, text, "render(parse(output)) differs from the output");
        (text, r)
    }
}

fn sys_path() -> String {
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
}

/// An agent home with `.codex/config.toml`, owned by `uid`.
fn agent_home(dir: &Path, uid: u32, config: Option<&str>) -> PathBuf {
    let home = dir.join("home");
    std::fs::create_dir_all(home.join(".codex")).unwrap();
    if let Some(c) = config {
        std::fs::write(home.join(".codex/config.toml"), c).unwrap();
    }
    chown_r(&home, uid);
    home
}

/// Every file under `p` with its bytes and mode (to prove the probe left no trace).
fn snapshot(p: &Path) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    let mut m = BTreeMap::new();
    fn walk(p: &Path, m: &mut BTreeMap<PathBuf, (Vec<u8>, u32)>) {
        for e in std::fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            let md = std::fs::symlink_metadata(e.path()).unwrap();
            if md.is_dir() {
                m.insert(e.path(), (vec![], md.mode()));
                walk(&e.path(), m);
            } else {
                m.insert(
                    e.path(),
                    (std::fs::read(e.path()).unwrap_or_default(), md.mode()),
                );
            }
        }
    }
    walk(p, &mut m);
    m
}

fn leftovers(dirs: &[&Path]) -> Vec<PathBuf> {
    let mut v = vec![];
    for d in dirs {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(".cfp.") {
                    v.push(e.path());
                }
            }
        }
    }
    v
}

#[test]
fn script_is_assembled_and_parses_in_dash() {
    let s = probe::script();
    assert!(s.contains("function scanline(") && !s.contains("#@@REDACT_AWK@@"));
    let dir = Scratch::new();
    let f = script_file(dir.path());
    let st = Command::new("/bin/sh").arg("-n").arg(&f).status().unwrap();
    assert!(st.success(), "sh -n rejects the script");
    // busybox ash, when present, must accept it too
    if let Some(bb) = have("busybox") {
        assert!(Command::new(bb)
            .args(["sh", "-n"])
            .arg(&f)
            .status()
            .unwrap()
            .success());
    }
    // mawk-safe: no regex intervals in the awk programs
    for (i, l) in s.lines().enumerate() {
        let regexish = l.contains('/')
            && (l.contains("~ /")
                || l.contains("match(")
                || l.starts_with('\t') && l.contains("/ {"));
        if regexish {
            assert!(
                !l.contains("]{") || l.contains("]{ "),
                "line {}: regex interval? {l}",
                i + 1
            );
        }
    }
}

#[test]
fn root_with_system_tools_and_gitea() {
    let Some(g) = gitea() else { return };
    let dir = Scratch::new();
    let home = agent_home(dir.path(), 0, Some("sandbox_mode = \"read-only\"\n"));
    let before = snapshot(&home);
    let mut run = Run::new(&home, sys_path(), &g.url);
    let (text, r) = run.report();
    assert!(
        text.len() <= SUMMARY_MAX,
        "summary too big ({}): {text}",
        text.len()
    );
    assert_eq!((r.uid, r.gid), (Some(0), Some(0)));
    assert_eq!(r.user.as_deref(), Some("root"));
    assert_eq!(r.cap_eff.as_deref().map(|c| c.len()), Some(16));
    assert!(
        r.uid_map.as_deref().unwrap().starts_with('0'),
        "{:?}",
        r.uid_map
    );
    // absent on this kernel (Debian/Ubuntu patches): reported as absent, not as a failure
    assert_eq!(
        r.sysctl_unprivileged_userns_clone,
        std::fs::read_to_string("/proc/sys/kernel/unprivileged_userns_clone")
            .ok()
            .map(|s| s.trim().to_string())
    );
    assert_eq!(
        r.sysctl_apparmor_restrict_unprivileged_userns,
        std::fs::read_to_string("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
            .ok()
            .map(|s| s.trim().to_string())
    );
    assert_eq!(
        r.sysctl_max_user_namespaces,
        std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
            .ok()
            .map(|s| s.trim().to_string())
    );
    assert_eq!(r.codex_path, None);
    assert_eq!(r.prompt_input.outcome, Outcome::Absent);
    assert_eq!(r.gitea_plain.status, Some(200));
    assert_eq!(r.gitea_plain.outcome, Outcome::Ok);
    assert_eq!(r.gitea_codex.outcome, Outcome::Absent);
    assert_eq!(
        r.config.path,
        format!("{}/.codex/config.toml", home.display())
    );
    assert_eq!(r.config.size, Some(27));
    assert!(r.config.sha256_matches(&hex::encode(Sha256::digest(
        b"sandbox_mode = \"read-only\"\n"
    ))));
    assert_eq!(r.emitter.outcome, Outcome::Absent);

    run.mode = Mode::Detail;
    let (_, d) = run.report();
    assert_eq!(
        d.config.sha256.as_deref(),
        Some(hex::encode(Sha256::digest(b"sandbox_mode = \"read-only\"\n")).as_str())
    );
    let m = r.with_detail(&d);
    assert_eq!(m.config.sha256, d.config.sha256);

    // unreachable Gitea: nothing answered
    let closed = closed_url();
    let (_, u) = Run::new(&home, sys_path(), &closed).report();
    assert_eq!(u.gitea_plain.status, None);
    assert_eq!(u.gitea_plain.outcome, Outcome::Error);
    let mut dr = Run::new(&home, sys_path(), &closed);
    dr.mode = Mode::Detail;
    let (_, ud) = dr.report();
    assert!(
        ud.gitea_plain.stderr.contains("curl: (7)"),
        "{:?}",
        ud.gitea_plain.stderr
    );

    // piped in as `sh -s -- ARGS` (how docker exec and SSM feed it): same answer, and no step
    // swallows the rest of the script from stdin
    let mut sh = Command::new("/bin/sh")
        .args(["-s", "--", "summary", &g.url])
        .env_clear()
        .env("HOME", &home)
        .env("PATH", sys_path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut sh.stdin.take().unwrap(), probe::script().as_bytes()).unwrap();
    let out = sh.wait_with_output().unwrap();
    let piped = parse(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(piped.gitea_plain.status, Some(200));
    assert_eq!(piped.config, r.config);

    assert_eq!(
        snapshot(&home),
        before,
        "the probe changed the agent's home"
    );
    assert!(leftovers(&[&home, Path::new("/var/tmp")]).is_empty());
}

/// The namespace steps say what running the same commands directly says, for root and uid 1000.
#[test]
fn namespace_steps_match_direct_runs() {
    let (Some(unshare), Some(bwrap), Some(setpriv)) =
        (require("unshare"), require("bwrap"), require("setpriv"))
    else {
        return;
    };
    for uid in [0, AGENT_UID] {
        let dir = Scratch::new();
        let home = agent_home(dir.path(), uid, None);
        let mut run = Run::new(&home, sys_path(), "http://127.0.0.1:9");
        run.uid = uid;
        run.mode = Mode::Detail;
        let (_, r) = run.report();
        assert_eq!(r.uid, Some(uid));
        let direct = |args: &[&str]| {
            let mut c = Command::new(&setpriv);
            c.args([
                &format!("--reuid={uid}"),
                &format!("--regid={uid}"),
                "--clear-groups",
            ])
            .args(args);
            let o = c.output().unwrap();
            (
                o.status.code(),
                String::from_utf8_lossy(&o.stderr).trim_end().to_string(),
            )
        };
        let u = unshare.to_str().unwrap();
        for (step, args) in [
            (&r.userns, vec![u, "--user", "/bin/true"]),
            (
                &r.userns_map_root,
                vec![u, "--user", "--map-root-user", "/bin/true"],
            ),
            (
                &r.bwrap,
                vec![
                    bwrap.to_str().unwrap(),
                    "--unshare-user",
                    "--unshare-net",
                    "--ro-bind",
                    "/",
                    "/",
                    "/bin/true",
                ],
            ),
        ] {
            let (rc, err) = direct(&args);
            assert_eq!(step.rc, rc, "uid {uid} {args:?}");
            assert_eq!(step.outcome == Outcome::Ok, rc == Some(0));
            assert_eq!(step.stderr, err, "stderr is verbatim");
        }
        if uid == AGENT_UID {
            assert_eq!(r.cap_eff.as_deref(), Some("0000000000000000"));
        }
    }
}

#[test]
fn missing_tools_are_absent_not_failures() {
    let Some(g) = gitea() else { return };
    let dir = Scratch::new();
    let home = agent_home(dir.path(), AGENT_UID, Some("model = \"x\"\n"));
    // no unshare, bwrap, codex, curl, python3, wget, timeout, sha256sum, mktemp
    let minimal: Vec<&str> = BASE_TOOLS
        .iter()
        .copied()
        .filter(|t| !["timeout", "sha256sum", "mktemp"].contains(t))
        .collect();
    let bin = bin_dir(dir.path(), &minimal);
    for uid in [0, AGENT_UID] {
        let mut run = Run::new(&home, bin.display().to_string(), &g.url);
        run.uid = uid;
        for mode in [Mode::Summary, Mode::Files] {
            run.mode = mode;
            let (_, r) = run.report();
            assert_eq!(r.userns.outcome, Outcome::Absent);
            assert_eq!(r.userns_map_root.outcome, Outcome::Absent);
            assert_eq!(r.bwrap.outcome, Outcome::Absent);
            assert_eq!(r.bwrap_path, None);
            assert_eq!(r.codex_path, None);
            assert_eq!(r.gitea_plain.outcome, Outcome::Absent);
            assert_eq!(r.gitea_plain.status, None);
            assert_eq!(r.gitea_codex.outcome, Outcome::Absent);
            // no hash tool (openssl/python3 not on PATH either): size only
            assert_eq!(r.config.size, Some(12));
            assert_eq!(r.config.sha256, None);
            assert_eq!(r.config.outcome, Outcome::Error);
            if mode == Mode::Files {
                assert_eq!(r.config.redacted.as_deref(), Some("model = \"x\"\n"));
            }
        }
    }
    assert!(leftovers(&[&home]).is_empty());

    // with the tools back: present and run
    let full = bin_dir(
        &dir.path().join("full"),
        &[BASE_TOOLS, &["unshare", "bwrap", "curl"]].concat(),
    );
    let (_, r) = Run::new(&home, full.display().to_string(), &g.url).report();
    assert_ne!(r.userns.outcome, Outcome::Absent);
    assert_ne!(r.bwrap.outcome, Outcome::Absent);
    assert!(r.bwrap_path.as_deref().unwrap().ends_with("/bwrap"));
    assert_eq!(r.gitea_plain.status, Some(200));
    assert_eq!(r.config.sha256.as_deref().map(str::len), Some(12));
}

/// A fake codex process of this "container" (same cgroup): argv[0] `codex`, a secret flag.
fn fake_codex(uid: u32, cwd: &Path) -> Child {
    Command::new("/bin/sh")
        .arg0("/usr/local/bin/codex")
        .args(["-c", "sleep 60;:", "x", "--api-key", "sekrit-value-1"])
        .uid(uid)
        .gid(uid)
        .current_dir(cwd)
        .spawn()
        .unwrap()
}

fn codex_run(version: &str) {
    let Some(g) = gitea() else { return };
    let dir = Scratch::new();
    let Some(codex) = codex_tree(version, dir.path()) else {
        return;
    };
    let path = format!("{}:{}", codex.parent().unwrap().display(), sys_path());
    // the agent's own codex process, with a cwd that is readable to the agent
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    chown_r(&work, AGENT_UID);
    let mut proc_ = fake_codex(AGENT_UID, &work);

    let configs = [
        ("danger", "sandbox_mode = \"danger-full-access\"\napproval_policy = \"never\"\n[model_providers.p]\nname = \"p\"\nbase_url = \"http://127.0.0.1:9\"\nexperimental_bearer_token = \"tok-secret-123\"\n", "danger-full-access", "never"),
        ("workspace", "sandbox_mode = \"workspace-write\"\n\n[sandbox_workspace_write]\nnetwork_access = true\n", "workspace-write", "on-request"),
        ("invalid", "sandbox_mode = \"danger-full-access\"\nsandbox_mode = \"danger-full-access\"\n", "", ""),
    ];
    for (name, cfg, mode, approval) in configs {
        let sub = dir.path().join(name);
        let home = agent_home(&sub, AGENT_UID, Some(cfg));
        // an emitter given by path, hashed but never run or written
        let emitter = sub.join("codex_mcp_config.sh");
        std::fs::write(
            &emitter,
            "#!/bin/sh\nexport OPENAI_API_KEY=\"sk-abcdefghijklmnopqrstuvwxyz\"\n",
        )
        .unwrap();
        let before = snapshot(&home);
        let emitter_before = std::fs::read(&emitter).unwrap();
        let codex_home = home.join(".codex");
        for m in [Mode::Summary, Mode::Files] {
            let mut run = Run::new(&home, path.clone(), &g.url);
            run.uid = AGENT_UID;
            run.mode = m;
            run.codex_home_env = Some(&codex_home);
            run.extra = vec![String::new(), emitter.display().to_string()];
            run.cwd = Some(&work);
            let (text, r) = run.report();
            let ctx = format!("codex {version} {name} {m:?}:\n{text}");
            assert_eq!(
                r.codex_path.as_deref(),
                Some(codex.to_str().unwrap()),
                "{ctx}"
            );
            assert_eq!(
                r.codex_version.as_deref(),
                Some(format!("codex-cli {version}").as_str()),
                "{ctx}"
            );
            assert_eq!(
                r.bwrap_path.as_deref(),
                have("bwrap").as_deref().and_then(Path::to_str),
                "{ctx}"
            );
            assert_eq!(r.emitter.path, emitter.display().to_string());
            assert!(
                r.emitter
                    .sha256_matches(&hex::encode(Sha256::digest(&emitter_before))),
                "{ctx}"
            );
            // the fake agent process, attributed by cgroup, argv redacted on the host
            let p = r
                .codex_processes
                .iter()
                .find(|p| p.pid == proc_.id())
                .unwrap_or_else(|| panic!("process not found: {ctx}"));
            assert!(!text.contains("sekrit"), "{ctx}");
            if !r.codex_processes_elided {
                assert_eq!(
                    p.argv[0],
                    if m == Mode::Summary {
                        "codex"
                    } else {
                        "/usr/local/bin/codex"
                    }
                );
                assert_eq!(p.argv[4..], ["--api-key", "<redacted:1>"], "{ctx}");
            }
            if m != Mode::Summary {
                assert_eq!(p.cwd.as_deref(), Some(work.to_str().unwrap()));
            }
            if name == "invalid" {
                assert_eq!(r.prompt_input.outcome, Outcome::Error, "{ctx}");
                assert_eq!(
                    r.prompt_input.signature,
                    Some(probe::Signature::ConfigError),
                    "{ctx}"
                );
                assert_eq!(r.effective, None);
                assert_eq!(r.gitea_codex.outcome, Outcome::Error);
                if m != Mode::Summary {
                    assert!(r.prompt_input.stderr.contains("duplicate key"), "{ctx}");
                    // the evidence names the agent's real config, not the probe's copy
                    assert!(
                        r.prompt_input.stderr.contains(codex_home.to_str().unwrap()),
                        "{ctx}"
                    );
                }
            } else {
                assert_eq!(r.prompt_input.outcome, Outcome::Ok, "{ctx}");
                let e = r.effective.clone().unwrap();
                assert_eq!(e.sandbox_mode.as_deref(), Some(mode), "{ctx}");
                assert_eq!(e.approval_policy.as_deref(), Some(approval), "{ctx}");
                assert_eq!(e.network_access, Some(true), "{ctx}");
                // through codex's own command path: danger-full-access creates no namespace;
                // workspace-write + network works where bwrap works
                if (name == "danger" || r.bwrap.outcome == Outcome::Ok)
                    && (r.gitea_codex.status != Some(200) || r.gitea_codex.outcome != Outcome::Ok)
                {
                    let mut again = Run {
                        mode: Mode::Detail,
                        ..run
                    };
                    again.extra = vec![String::new(), emitter.display().to_string()];
                    panic!(
                        "gitea through codex failed: {ctx}\nrerun in detail:\n{}",
                        again.go()
                    );
                }
            }
            assert_eq!(r.gitea_plain.status, Some(200), "{ctx}");
            if m == Mode::Files {
                let red = r.config.redacted.as_deref().unwrap();
                assert_eq!(red, redact(cfg).text, "on-host redaction = Rust redaction");
                assert!(
                    !text.contains("tok-secret-123") && !text.contains("sk-abcdefghij"),
                    "{ctx}"
                );
                assert!(r
                    .emitter
                    .redacted
                    .as_deref()
                    .unwrap()
                    .contains("OPENAI_API_KEY=\"<redacted:1>\""));
            }
            if m == Mode::Summary {
                // small, once this test's long scratch paths are a real agent's (the process
                // list, here a fake one, is bounded separately)
                let real = text
                    .replace(codex.to_str().unwrap(), "/usr/local/bin/codex")
                    .replace(codex_home.to_str().unwrap(), "/home/agent/.codex")
                    .split(' ')
                    .filter(|i| !i.starts_with("emp=") && !i.starts_with("px="))
                    .collect::<Vec<_>>()
                    .join(" ");
                assert!(real.len() <= SUMMARY_MAX, "{} bytes: {real}", real.len());
            }
        }
        assert_eq!(
            snapshot(&home),
            before,
            "codex {version} {name}: the agent's CODEX_HOME changed"
        );
        assert_eq!(std::fs::read(&emitter).unwrap(), emitter_before);
        assert!(leftovers(&[&home, &work, Path::new("/var/tmp")]).is_empty());
    }
    let _ = proc_.kill();
    let _ = proc_.wait();
}

#[test]
fn real_codex_0_133_0() {
    codex_run("0.133.0");
}

#[test]
fn real_codex_0_163_0() {
    codex_run("0.163.0");
}

/// Without bwrap on PATH the probe runs codex's own bundled one, as codex would.
#[test]
fn bundled_bwrap_is_found_next_to_codex() {
    let dir = Scratch::new();
    let Some(codex) = codex_tree("0.163.0", dir.path()) else {
        return;
    };
    // codex reached through a symlink, as npm installs it
    let bin = bin_dir(dir.path(), &[BASE_TOOLS, &["unshare", "curl"]].concat());
    std::os::unix::fs::symlink(&codex, bin.join("codex")).unwrap();
    let home = agent_home(dir.path(), AGENT_UID, Some(""));
    let mut run = Run::new(&home, bin.display().to_string(), "http://127.0.0.1:9");
    run.uid = AGENT_UID;
    let (_, s) = run.report();
    assert!(s.bwrap_bundled);
    assert_eq!(s.bwrap_path.as_deref(), Some(probe::BUNDLED_BWRAP));
    assert_ne!(s.bwrap.outcome, Outcome::Absent);
    run.mode = Mode::Detail;
    let (_, d) = run.report();
    assert!(d.bwrap_bundled);
    let p = d.bwrap_path.unwrap();
    assert!(
        p.ends_with("/codex-resources/bwrap") && p.starts_with(dir.path().to_str().unwrap()),
        "{p}"
    );
    assert_eq!(
        d.effective.unwrap().sandbox_mode.as_deref(),
        Some("read-only")
    );
}

#[test]
fn truncated_or_damaged_output_is_an_error_that_says_where() {
    let dir = Scratch::new();
    let home = agent_home(dir.path(), 0, Some("a = 1\n"));
    let mut run = Run::new(&home, sys_path(), "http://127.0.0.1:9");
    run.mode = Mode::Detail;
    let text = run.go();
    let lines: Vec<&str> = text.lines().collect();
    let cut = lines[..lines.len() - 1].join("\n");
    assert!(
        matches!(
            parse(&cut),
            Err(ParseError::Truncated { header_line: 1, .. })
        ),
        "{:?}",
        parse(&cut)
    );
    let mut missing = lines.clone();
    missing.remove(3);
    let e = parse(&missing.join("\n")).unwrap_err();
    assert!(matches!(e, ParseError::CountMismatch { .. }), "{e}");
    assert!(e.to_string().contains("line"), "{e}");
    assert_eq!(parse("no probe here"), Err(ParseError::NoHeader));
    assert!(matches!(
        parse("#cfp 2 s\nx=1\n#cfp 2 end 1\n"),
        Err(ParseError::UnsupportedVersion { .. })
    ));
    let bad = text.replace("\nsu=", "\nsu=zz");
    assert!(
        matches!(parse(&bad), Err(ParseError::BadValue { .. })),
        "{:?}",
        parse(&bad)
    );
    // framing around the output (a backend's per-agent header) is ignored
    let framed = format!("=== ws-abc ===\n{text}=== end ===\n");
    assert_eq!(parse(&framed).unwrap(), parse(&text).unwrap());
}

/// Eight agents' summaries, with a little per-agent framing, fit SSM's 2,500 characters.
#[test]
fn eight_agent_summaries_fit_ssm_output() {
    // the richest realistic summary: incident state, two codex processes (node launcher and
    // native binary), every field present
    let mut r = parse(
        "#cfp 1 s\nid=1000:1000:agent cap=0 um=0_0_4294967295 su=a sc=1,63541,1 \
         px=4711/node,/usr/local/bin/codex,app-server;4730/codex,app-server ns=d1u,d1u,d1u bw=+ \
         cx=/usr/local/bin/codex cv=0.130.0 pi=o0 ef=WN1 ch=/home/agent/.codex \
         cf=0123456789ab:4096 em=fedcba987654:2048 ly=srmp hs=137,137,0,1440 gp=o0:200 gc=d1u:\n#cfp 1 end 19\n",
    )
    .unwrap();
    let rich = render_summary(&r);
    // the npm launcher (`node .../codex`) is dropped when its native codex child is listed
    let back = parse(&rich).unwrap();
    assert_eq!(back.codex_processes.len(), 1);
    assert_eq!(back.codex_processes[0].pid, 4730);
    assert!(rich.len() <= SUMMARY_MAX, "{} bytes: {rich}", rich.len());
    let mut all = String::new();
    for i in 0..8 {
        all.push_str(&format!("== ws-{i:012x} ==\n{rich}"));
    }
    assert!(all.len() <= 2500, "{} bytes", all.len());
    // too many processes: the summary keeps their pids only, and says so
    r.codex_processes = (0..6)
        .map(|i| probe::CodexProcess {
            pid: 100 + i,
            argv: vec!["codex".into(), "exec".into(), "--full-auto".into()],
            cwd: None,
        })
        .collect();
    let s = render_summary(&r);
    let back = parse(&s).unwrap();
    assert!(
        back.codex_processes_elided && back.codex_processes.len() == 6 && s.len() <= SUMMARY_MAX,
        "{s}"
    );
}

/// Demo reports rendered and parsed back are the same report (and the summary is its lossy view).
#[test]
fn render_parse_round_trip() {
    let r = ProbeReport {
        format: 1,
        detail: true,
        uid: Some(1000),
        gid: Some(1000),
        user: Some("agent".into()),
        cap_eff: Some("0000000000000000".into()),
        uid_map: Some("0 0 4294967295".into()),
        subuid: Outcome::Absent,
        sysctl_max_user_namespaces: Some("63541".into()),
        sysctl_apparmor_restrict_unprivileged_userns: Some("1".into()),
        userns: probe::Step { outcome: Outcome::Ok, rc: Some(0), ..Default::default() },
        userns_map_root: probe::Step {
            outcome: Outcome::Denied,
            rc: Some(1),
            stderr: "unshare: write failed /proc/self/uid_map: Operation not permitted".into(),
            signature: Some(probe::Signature::UidMap),
        },
        bwrap: probe::Step {
            outcome: Outcome::Denied,
            rc: Some(1),
            stderr: "bwrap: setting up uid map: Permission denied".into(),
            signature: Some(probe::Signature::UidMap),
        },
        bwrap_path: Some("/usr/lib/node_modules/@openai/codex/vendor/x86_64-unknown-linux-musl/codex-resources/bwrap".into()),
        bwrap_bundled: true,
        codex_path: Some("/usr/local/bin/codex".into()),
        codex_version: Some("codex-cli 0.130.0".into()),
        codex_processes: vec![probe::CodexProcess {
            pid: 42,
            argv: vec!["/usr/bin/node".into(), "/usr/local/bin/codex".into(), "app-server".into(), "a,b c".into()],
            cwd: Some("/workspace/my repo".into()),
        }],
        prompt_input: probe::Step { outcome: Outcome::Ok, rc: Some(0), ..Default::default() },
        effective: Some(probe::CodexEffective {
            sandbox_mode: Some("workspace-write".into()),
            approval_policy: Some("never".into()),
            network_access: Some(true),
        }),
        codex_home: Some("/home/agent/.codex".into()),
        config: probe::FileInfo {
            path: "/home/agent/.codex/config.toml".into(),
            outcome: Outcome::Ok,
            sha256: Some("ab".repeat(32)),
            size: Some(120),
            redacted: Some("api_key = \"<redacted:1>\"\n[x]\n".into()),
        },
        emitter: probe::FileInfo { path: probe::DEFAULT_EMITTER.into(), outcome: Outcome::Absent, ..Default::default() },
        gitea_plain: probe::Http { status: Some(200), outcome: Outcome::Ok, rc: Some(0), ..Default::default() },
        gitea_codex: probe::Http {
            status: None,
            outcome: Outcome::Denied,
            rc: Some(1),
            signature: Some(probe::Signature::UidMap),
            stderr: "bwrap: setting up uid map: Permission denied".into(),
        },
        ..Default::default()
    };
    assert_eq!(parse(&render_detail(&r)).unwrap(), r);
    let s = parse(&render_summary(&r)).unwrap();
    assert!(!s.detail && s.bwrap_bundled && s.userns_map_root.stderr.is_empty());
    assert_eq!(s.userns_map_root.signature, Some(probe::Signature::UidMap));
    assert_eq!(s.codex_processes[0].argv[0], "node");
    assert_eq!(s.config.sha256.as_deref(), Some(&"ab".repeat(6)[..]));
    assert!(s.config.sha256_matches(&"ab".repeat(32)));
    assert_eq!(s.effective, r.effective);
    assert_eq!(probe::merge(&s, &r), r);
}

/// `YYYY-MM-DDTHH:MM:SS.000Z` of `ago` seconds before now, as codex stamps its records.
fn stamp(ago: u64) -> String {
    let t = std::time::SystemTime::now() - std::time::Duration::from_secs(ago);
    let s = humantime::format_rfc3339_seconds(t).to_string();
    format!("{}.000Z", &s[..19])
}

/// codex's session records (rollout-*.jsonl, the format codex-rs writes: one JSON object a
/// line, `response_item` payloads `function_call` / `function_call_output`) are counted within
/// the last 24 h: commands, sandbox failures, successes and how long the current run of
/// failures has lasted. Their content never leaves: no prompt, command or output in the report.
#[test]
fn session_records_are_counted_never_read_out() {
    let dir = Scratch::new();
    let home = agent_home(dir.path(), AGENT_UID, Some("model = \"x\"\n"));
    let day = |ago: u64| stamp(ago)[..10].replace('-', "/");
    let out = |ago: u64, call: &str, output: &str| {
        format!(
            "{{\"timestamp\":\"{}\",\"type\":\"response_item\",\"payload\":{{\"type\":\"function_call\",\"name\":\"shell\",\"call_id\":\"{call}\",\"arguments\":\"{{\\\"command\\\":[\\\"bash\\\",\\\"-lc\\\",\\\"cat SECRET-COMMAND\\\"]}}\"}}}}\n\
             {{\"timestamp\":\"{}\",\"type\":\"response_item\",\"payload\":{{\"type\":\"function_call_output\",\"call_id\":\"{call}\",\"output\":{}}}}}\n",
            stamp(ago),
            stamp(ago),
            serde_json::to_string(output).unwrap()
        )
    };
    let denial = "Exit code: 1\nWall time: 0.1 seconds\nOutput:\nbwrap: loopback: Failed RTM_NEWADDR: Operation not permitted\n";
    let meta = format!(
        "{{\"timestamp\":\"{}\",\"type\":\"session_meta\",\"payload\":{{\"id\":\"s1\",\"cwd\":\"/workspace\",\"instructions\":\"SECRET-PROMPT\"}}}}\n",
        stamp(7200)
    );
    // yesterday's file (30 h ago: outside the window) and today's
    let old = format!("{meta}{}", out(30 * 3600, "c0", denial));
    let now = format!(
        "{meta}{}{}{}{}{}",
        out(3 * 3600, "c1", denial),
        out(3600, "c2", "{\"output\":\"SECRET-OUTPUT\",\"metadata\":{\"exit_code\":0,\"duration_seconds\":0.1}}"),
        out(40 * 60, "c3", denial),
        out(20 * 60, "c4", "Process exited with code 1\nbwrap: setting up uid map: Permission denied\n"),
        out(60, "c5", denial),
    );
    for (ago, text) in [(30 * 3600, &old), (0, &now)] {
        let d = home.join(".codex/sessions").join(day(ago));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("rollout-{}-s{ago}.jsonl", stamp(ago)[..19].replace(':', "-"))), text).unwrap();
    }
    chown_r(&home, AGENT_UID);
    let mut run = Run::new(&home, sys_path(), "http://127.0.0.1:9");
    run.uid = AGENT_UID;
    for mode in [Mode::Summary, Mode::Files] {
        run.mode = mode;
        let (text, r) = run.report();
        let h = r.sessions.clone().unwrap_or_else(|| panic!("no session counts\n{text}"));
        assert_eq!((h.commands, h.sandbox_denials, h.succeeded), (5, 4, 1), "{text}");
        let m = h.stalled_minutes.expect("a run of denials");
        assert!((39..=41).contains(&m), "stalled for {m} min: {text}");
        assert!(h.harm(std::time::SystemTime::now()).unwrap().starts_with("4 sandbox denials in 24 h, 0 commands succeeded since "));
        for secret in ["SECRET", "Wall time", "exit_code", "call_id"] {
            assert!(!text.contains(secret), "{secret} left the container: {text}");
        }
    }
    // a success last: no run of denials
    let d = home.join(".codex/sessions").join(day(0));
    std::fs::write(d.join("rollout-zz-last.jsonl"), out(10, "c6", "Exit code: 0\nOutput:\nok\n")).unwrap();
    chown_r(&home, AGENT_UID);
    run.mode = Mode::Summary;
    let (text, r) = run.report();
    let h = r.sessions.unwrap();
    assert_eq!((h.commands, h.succeeded, h.stalled_minutes), (6, 2, None), "{text}");
    // no sessions directory: no item at all
    std::fs::remove_dir_all(home.join(".codex/sessions")).unwrap();
    let (text, r) = run.report();
    assert!(r.sessions.is_none() && !text.contains("hs="), "{text}");
}
