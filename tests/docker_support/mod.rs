//! A test fleet on this machine's real Docker engine: the images built by
//! `scripts/build-test-images.sh` (no registry, cached by content hash), a user-defined network
//! with a Gitea stand-in, and agent containers in the incident's states. Everything a test
//! makes carries `codex-fleet-test=1` and `cf-test.run=<unique id>`, and is removed when the
//! [`TestFleet`] is dropped (only its own containers).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use codex_fleet::fleet::docker::{DockerFleet, DockerOptions};
use codex_fleet::fleet::filter::AgentFilter;

use crate::common;

pub const EMITTER: &str = "/usr/local/bin/codex_mcp_config.sh";
pub const CONFIG: &str = "/home/agent/.codex/config.toml";

/// The test images (`CF_IMAGE_*` of the build script).
#[derive(Debug, Clone)]
pub struct Images {
    pub base: String,
    pub runtime: String,
    pub runtime_codex: String,
    pub noshell: String,
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A Docker engine and the test images, else skip (panic under CI).
pub fn images() -> Option<Images> {
    let ok = Command::new("docker").args(["version", "--format", "{{.Server.Version}}"]).output();
    match ok {
        Ok(o) if o.status.success() => {}
        Ok(o) => return common::require_or_skip(&format!("a Docker engine ({})", String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => return common::require_or_skip(&format!("the docker CLI ({e})")),
    }
    let out = Command::new("bash")
        .arg(repo().join("scripts/build-test-images.sh"))
        .env("CODEX_FLEET_CACHE", common::cache_dir())
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/build-test-images.sh");
    if !out.status.success() {
        return common::require_or_skip("the test images (scripts/build-test-images.sh failed)");
    }
    let kv: BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    Some(Images {
        base: kv["CF_IMAGE_BASE"].clone(),
        runtime: kv["CF_IMAGE_RUNTIME"].clone(),
        runtime_codex: kv["CF_IMAGE_RUNTIME_CODEX"].clone(),
        noshell: kv["CF_IMAGE_NOSHELL"].clone(),
    })
}

pub fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker").args(args).output().expect("docker CLI")
}

/// `docker ARGS`, which must succeed; its stdout.
pub fn docker_ok(args: &[&str]) -> String {
    let o = docker(args);
    assert!(o.status.success(), "docker {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// How one agent container is made.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// Suffix of the container name (`cf-<run>-<suffix>`).
    pub suffix: String,
    pub image: String,
    /// Extra `docker create` arguments (`--security-opt`, `--network`, `--label`, ...).
    pub args: Vec<String>,
    /// Replaces the emitter in the container (its writable layer) before the first start.
    pub emitter: Option<String>,
    /// `--entrypoint` (first element) and the command after the image.
    pub entrypoint: Option<String>,
    pub cmd: Vec<String>,
    /// Restarts after the first boot (a prepending hotpatch accumulates one copy per start).
    pub restarts: usize,
    /// Not waited for (a container that stops by itself, one without a shell).
    pub no_wait: bool,
}

impl Spec {
    pub fn new(suffix: &str, image: &str) -> Spec {
        Spec { suffix: suffix.into(), image: image.into(), ..Default::default() }
    }
    pub fn arg(mut self, a: &str) -> Spec {
        self.args.push(a.into());
        self
    }
    pub fn emitter(mut self, text: &str) -> Spec {
        self.emitter = Some(text.into());
        self
    }
}

/// The containers, network and Gitea stand-in of one test.
pub struct TestFleet {
    pub run: String,
    pub network: String,
    pub gitea_url: String,
    pub images: Images,
    /// suffix -> container name
    pub names: BTreeMap<String, String>,
}

/// A Gitea stand-in: `/api/v1/version` answers 200, anything else 404.
const GITEA_PY: &str = r#"
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = self.path.split('?')[0].rstrip('/') == '/api/v1/version'
        body = b'{"version":"1.22.6"}' if ok else b'{"message":"not found"}'
        self.send_response(200 if ok else 404)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(('', 3000), H).serve_forever()
"#;

impl TestFleet {
    /// A network and a Gitea stand-in on it.
    pub fn new(test: &str, images: Images) -> TestFleet {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let run = format!("{test}-{}-{:x}", std::process::id(), nanos & 0xffff);
        let network = format!("cf-{run}");
        docker_ok(&["network", "create", "--label", "codex-fleet-test=1", "--label", &format!("cf-test.run={run}"), &network]);
        let gitea = format!("cf-{run}-gitea");
        docker_ok(&[
            "run", "-d", "--name", &gitea, "--network", &network, "--label", "codex-fleet-test=1",
            "--label", &format!("cf-test.run={run}"), &images.base, "python3", "-c", GITEA_PY,
        ]);
        let f = TestFleet { gitea_url: format!("http://{gitea}:3000"), run, network, images, names: BTreeMap::new() };
        // The stand-in answers before any agent boots (their boot check asks it).
        let deadline = Instant::now() + Duration::from_secs(30);
        let probe = "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/api/v1/version').status == 200 else 1)";
        while !docker(&["exec", &gitea, "python3", "-c", probe]).status.success() {
            assert!(Instant::now() < deadline, "the Gitea stand-in did not come up");
            std::thread::sleep(Duration::from_millis(200));
        }
        f
    }

    pub fn name(&self, suffix: &str) -> String {
        self.names.get(suffix).cloned().unwrap_or_else(|| format!("cf-{}-{suffix}", self.run))
    }

    /// Create and start the agents (in parallel), then wait until each has booted.
    pub fn add(&mut self, specs: Vec<Spec>) {
        let handles: Vec<_> = specs
            .into_iter()
            .map(|s| {
                let name = format!("cf-{}-{}", self.run, s.suffix);
                self.names.insert(s.suffix.clone(), name.clone());
                let (run, network, url) = (self.run.clone(), self.network.clone(), self.gitea_url.clone());
                std::thread::spawn(move || create_agent(&run, &network, &url, &name, &s))
            })
            .collect();
        for h in handles {
            h.join().expect("create agent");
        }
    }

    /// The Docker source for this test's agents only.
    pub async fn fleet(&self) -> DockerFleet {
        let opts = DockerOptions {
            filter: AgentFilter::Label { key: "cf-test.agent".into(), value: self.run.clone() },
            gitea_url: self.gitea_url.clone(),
            stable_for: Duration::from_secs(2),
            stop_timeout: 5,
            ..Default::default()
        };
        DockerFleet::connect(None, opts).await.expect("connect to the Docker engine")
    }

    /// A file's bytes inside a container (read as root).
    pub fn read(&self, suffix: &str, path: &str) -> Vec<u8> {
        let o = docker(&["exec", &self.name(suffix), "cat", path]);
        assert!(o.status.success(), "cat {path} in {suffix}: {}", String::from_utf8_lossy(&o.stderr));
        o.stdout
    }

    /// `owner:group mode` of a path inside a container.
    pub fn stat(&self, suffix: &str, path: &str) -> String {
        docker_ok(&["exec", &self.name(suffix), "stat", "-c", "%U:%G %a", path]).trim().to_string()
    }

    /// Run a command in a container (as root unless `user`); (status ok, stdout).
    pub fn exec(&self, suffix: &str, user: Option<&str>, cmd: &[&str]) -> (bool, String) {
        let name = self.name(suffix);
        let mut a = vec!["exec"];
        if let Some(u) = user {
            a.extend(["-u", u]);
        }
        a.push(&name);
        a.extend(cmd);
        let o = docker(&a);
        (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned())
    }
}

fn create_agent(run: &str, network: &str, gitea_url: &str, name: &str, s: &Spec) {
    let boot_url = format!("CODEX_BOOT_CHECK_URL={gitea_url}/api/v1/version");
    let run_label = format!("cf-test.run={run}");
    let agent_label = format!("cf-test.agent={run}");
    let mut a: Vec<&str> = vec!["create", "--name", name, "--label", "codex-fleet-test=1", "--label", &run_label];
    a.extend(["--label", &agent_label, "-e", &boot_url]);
    if !s.args.iter().any(|x| x.starts_with("--network")) {
        a.extend(["--network", network]);
    }
    a.extend(s.args.iter().map(String::as_str));
    if let Some(e) = &s.entrypoint {
        a.extend(["--entrypoint", e]);
    }
    a.push(&s.image);
    a.extend(s.cmd.iter().map(String::as_str));
    docker_ok(&a);
    if let Some(text) = &s.emitter {
        // Into the writable layer, as a hotpatch would: root-owned, 0755.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("codex_mcp_config.sh");
        std::fs::write(&f, text).unwrap();
        set_mode(&f, 0o755);
        // Without -a, docker cp gives the file to the container's user (root), mode kept.
        docker_ok(&["cp", &f.display().to_string(), &format!("{name}:{EMITTER}")]);
    }
    docker_ok(&["start", name]);
    if s.no_wait {
        return;
    }
    wait_booted(name);
    for _ in 0..s.restarts {
        docker_ok(&["restart", "-t", "3", name]);
        wait_booted(name);
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Booted: PID 1 is the long-running stand-in (the emitter and the boot check are done).
pub fn wait_booted(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let o = docker(&["exec", name, "cat", "/proc/1/cmdline"]);
        if o.status.success() && o.stdout.starts_with(b"codex\0") {
            return;
        }
        assert!(Instant::now() < deadline, "{name} did not boot: {}", String::from_utf8_lossy(&docker(&["logs", name]).stderr));
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Drop for TestFleet {
    fn drop(&mut self) {
        let ids = docker(&["ps", "-aq", "--filter", &format!("label=cf-test.run={}", self.run)]);
        let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout).split_whitespace().map(String::from).collect();
        if !ids.is_empty() {
            let mut a = vec!["rm", "-f"];
            a.extend(ids.iter().map(String::as_str));
            let _ = docker(&a);
        }
        let _ = docker(&["network", "rm", &self.network]);
    }
}

/// One journal directory per test process (the rollout engine reads CODEX_FLEET_STATE_DIR).
pub fn state_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        std::env::set_var("CODEX_FLEET_STATE_DIR", d.path());
        d
    })
    .path()
}

/// A fixture file of the repository.
pub fn fixture(rel: &str) -> String {
    std::fs::read_to_string(repo().join("tests/fixtures").join(rel)).unwrap()
}
