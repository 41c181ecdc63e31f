//! This machine's Docker engine as one host, through bollard.
//!
//! Reads: list containers by `--agent-filter`, inspect (user, Entrypoint + Cmd, image, labels,
//! state, restart count, started at), the shared probe run as the agent user through the exec
//! API, the container's changes against its image (`docker diff`) and the boot check's WARN
//! line from the tail of its log (no other log line is kept). Mutations: the shared
//! `agent-ops.sh` run as root through the exec API (values as arguments, content on stdin),
//! restart through the API. Nothing that comes from the engine (names, labels, file contents)
//! is ever put into a shell command's text: container ids go into API paths, values into argv.
//!
//! Engines as old as 20.10 (API 1.41) work: the API version is negotiated at connect.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{ChangeType, ContainerInspectResponse};
use bollard::query_parameters::{
    InspectContainerOptions, ListContainersOptions, LogsOptions, RestartContainerOptions, TopOptions,
};
use bollard::Docker;
use futures::{StreamExt, TryStreamExt};
use tokio::io::AsyncWriteExt;

use super::filter::AgentFilter;
use super::ops::{self, Op};
use super::{
    AgentRead, AgentRef, BackupRequest, Fleet, FleetError, Host, HostRead, LockKey, LockOutcome, RestoreRequest, VerifyReport,
    WriteReceipt, WriteRequest,
};
use crate::codex::redact::{redact, redact_argv};
use crate::probe::{self, Mode, Outcome, ProbeReport};

/// The default agent user when neither `--agent-user`, a codex process nor `$CODEX_HOME` tells.
pub const DEFAULT_AGENT_USER: &str = "agent";
/// The default Gitea, as in the contract.
pub const DEFAULT_GITEA: &str = "https://git.moleculesai.app";

/// How the Docker source is told which containers are agents and how to reach Gitea.
#[derive(Debug, Clone)]
pub struct DockerOptions {
    pub filter: AgentFilter,
    /// `--agent-user`: run the probe as this user instead of finding out.
    pub agent_user: Option<String>,
    pub gitea_url: String,
    /// Containers read at the same time (each probe runs codex a few times).
    pub concurrency: usize,
    /// Upper bound for one probe run.
    pub probe_timeout: Duration,
    /// Upper bound for one agent-ops run.
    pub ops_timeout: Duration,
    /// How long a container must run without a restart to count as stable.
    pub stable_for: Duration,
    /// Seconds the engine waits for a container to stop before killing it on restart.
    pub stop_timeout: i32,
}

impl Default for DockerOptions {
    fn default() -> Self {
        DockerOptions {
            filter: AgentFilter::default(),
            agent_user: None,
            gitea_url: DEFAULT_GITEA.into(),
            concurrency: 4,
            probe_timeout: Duration::from_secs(180),
            ops_timeout: Duration::from_secs(60),
            stable_for: Duration::from_secs(3),
            stop_timeout: 10,
        }
    }
}

/// The Docker engine of this machine as a [`Fleet`] of one host.
pub struct DockerFleet {
    docker: Docker,
    address: String,
    opts: DockerOptions,
    host: Host,
}

/// What one exec returned.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: Option<i64>,
}

/// Largest stdout kept from one exec (a probe in `files` mode is a few tens of KB).
const MAX_STDOUT: usize = 8 << 20;
const MAX_STDERR: usize = 64 << 10;
/// Log lines searched for the boot check's WARN line.
const LOG_TAIL: &str = "400";
/// `docker diff` lines kept (the emitter's and config's are always kept).
const MAX_LAYER_CHANGES: usize = 5000;

fn docker_err(e: DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError { status_code, message } => format!("engine answered {status_code}: {message}"),
        e => e.to_string(),
    }
}

fn is_not_found(e: &DockerError) -> bool {
    matches!(e, DockerError::DockerResponseServerError { status_code: 404, .. })
}

impl DockerFleet {
    /// Connect to the engine at `docker_host` (else `DOCKER_HOST`, else the default socket) and
    /// negotiate the API version (20.10 engines speak 1.41).
    pub async fn connect(docker_host: Option<&str>, opts: DockerOptions) -> Result<DockerFleet, FleetError> {
        let address = docker_host
            .map(str::to_string)
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string());
        let unreachable = |reason: String| FleetError::Unreachable { host: format!("docker {address}"), reason };
        let docker = if address.starts_with('/') {
            Docker::connect_with_unix(&address, 120, bollard::API_DEFAULT_VERSION)
        } else {
            Docker::connect_with_host(&address)
        }
        .map_err(|e| unreachable(docker_err(e)))?;
        let docker = docker.negotiate_version().await.map_err(|e| unreachable(docker_err(e)))?;
        let info = docker.info().await.map_err(|e| unreachable(docker_err(e)))?;
        let name = info.name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "docker".into());
        let host = Host {
            id: format!("docker:{name}"),
            name,
            location: address.clone(),
            reachable: true,
            unreachable_reason: None,
            agent_version: Some(format!(
                "Docker {} (API {})",
                info.server_version.unwrap_or_else(|| "?".into()),
                docker.client_version()
            )),
        };
        Ok(DockerFleet { docker, address, opts, host })
    }

    /// The bollard client (tests use it to set up their containers).
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    pub fn options(&self) -> &DockerOptions {
        &self.opts
    }

    /// This engine as a host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Running containers that the agent filter selects: (id, name).
    pub async fn list_agents(&self) -> Result<Vec<(String, String)>, FleetError> {
        let mut filters: HashMap<String, Vec<String>> = HashMap::new();
        filters.insert("status".into(), vec!["running".into()]);
        if let AgentFilter::Label { key, value } = &self.opts.filter {
            filters.insert("label".into(), vec![format!("{key}={value}")]);
        }
        let list = self
            .docker
            .list_containers(Some(ListContainersOptions { all: false, filters: Some(filters), ..Default::default() }))
            .await
            .map_err(|e| self.unreachable(e))?;
        let mut out = Vec::new();
        for c in list {
            let Some(id) = c.id else { continue };
            let name = c.names.unwrap_or_default().first().map(|n| n.trim_start_matches('/').to_string()).unwrap_or_default();
            let labels: BTreeMap<String, String> = c.labels.unwrap_or_default().into_iter().collect();
            let image = c.image.unwrap_or_default();
            if self.opts.filter.matches(&name, &image, &labels) {
                out.push((id, name));
            }
        }
        out.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }

    fn unreachable(&self, e: DockerError) -> FleetError {
        FleetError::Unreachable { host: self.host.id.clone(), reason: docker_err(e) }
    }

    async fn inspect(&self, agent: &AgentRef) -> Result<ContainerInspectResponse, FleetError> {
        match self.docker.inspect_container(&agent.container_id, None::<InspectContainerOptions>).await {
            Ok(i) => Ok(i),
            Err(e) if is_not_found(&e) => Err(FleetError::AgentGone { agent: agent.id() }),
            Err(e) => Err(self.unreachable(e)),
        }
    }

    /// Run `cmd` (an argv: no shell unless it is `sh`) in the container as `user`, `stdin`
    /// piped in when given. Errors are the engine's (the command's own failures are in the
    /// output's exit code).
    pub async fn exec(
        &self,
        container_id: &str,
        user: &str,
        cmd: Vec<String>,
        stdin: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<ExecOutput, FleetError> {
        let run = async {
            let created = self
                .docker
                .create_exec(
                    container_id,
                    CreateExecOptions {
                        attach_stdin: Some(stdin.is_some()),
                        attach_stdout: Some(true),
                        attach_stderr: Some(true),
                        tty: Some(false),
                        cmd: Some(cmd),
                        user: Some(user.to_string()),
                        // Root never looks a command up in the container's PATH, which may
                        // name a directory the agent writes to.
                        env: (user == "0" || user == "root").then(|| vec![format!("PATH={}", ops::ROOT_PATH)]),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| FleetError::Other(format!("exec: {}", docker_err(e))))?;
            let started = self
                .docker
                .start_exec(&created.id, Some(StartExecOptions { detach: false, tty: false, output_capacity: Some(1 << 16) }))
                .await
                .map_err(|e| FleetError::Other(format!("exec: {}", docker_err(e))))?;
            let mut out = ExecOutput::default();
            let (mut so, mut se) = (Vec::new(), Vec::new());
            if let StartExecResults::Attached { mut output, mut input } = started {
                let feed = async {
                    if let Some(data) = stdin {
                        // A command that exits without reading its stdin is not an error here.
                        let _ = input.write_all(data).await;
                    }
                    let _ = input.shutdown().await;
                };
                let read = async {
                    while let Some(item) = output.next().await {
                        match item {
                            Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                                if so.len() < MAX_STDOUT {
                                    so.extend_from_slice(&message);
                                }
                            }
                            Ok(LogOutput::StdErr { message }) => {
                                if se.len() < MAX_STDERR {
                                    se.extend_from_slice(&message);
                                }
                            }
                            Ok(LogOutput::StdIn { .. }) => {}
                            Err(e) => {
                                let m = format!("\n[codex-fleet: the exec stream broke: {}]", docker_err(e));
                                se.extend_from_slice(m.as_bytes());
                                break;
                            }
                        }
                    }
                };
                tokio::join!(feed, read);
            }
            out.stdout = String::from_utf8_lossy(&so).into_owned();
            out.stderr = String::from_utf8_lossy(&se).into_owned();
            if let Ok(i) = self.docker.inspect_exec(&created.id).await {
                out.exit_code = i.exit_code;
            }
            Ok(out)
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(FleetError::Timeout(format!("command in container {} after {timeout:?}", short(container_id)))),
        }
    }

    /// The agent user: `--agent-user`, else the owner of the container's codex process, else
    /// of `$CODEX_HOME`, else `agent`.
    async fn agent_user(&self, id: &str, codex_home: Option<&str>) -> String {
        if let Some(u) = &self.opts.agent_user {
            return u.clone();
        }
        if let Ok(top) = self.docker.top_processes(id, Some(TopOptions { ps_args: "-o pid,uid,args".into() })).await {
            let titles = top.titles.unwrap_or_default();
            let (ui, ai) = (titles.iter().position(|t| t == "UID"), titles.iter().position(|t| t == "COMMAND"));
            if let (Some(ui), Some(ai)) = (ui, ai) {
                for p in top.processes.unwrap_or_default() {
                    let argv0 = p.get(ai).and_then(|a| a.split_whitespace().next()).unwrap_or("");
                    let base = argv0.rsplit('/').next().unwrap_or("");
                    if base == "codex" || base.starts_with("codex-x86_64") || base.starts_with("codex-aarch64") {
                        if let Some(uid) = p.get(ui).filter(|u| u.chars().all(|c| c.is_ascii_digit())) {
                            return uid.clone();
                        }
                    }
                }
            }
        }
        if let Some(home) = codex_home {
            let cmd = vec!["stat".to_string(), "-c".to_string(), "%u".to_string(), home.to_string()];
            if let Ok(o) = self.exec(id, "0", cmd, None, Duration::from_secs(10)).await {
                let uid = o.stdout.trim();
                if o.exit_code == Some(0) && !uid.is_empty() && uid.chars().all(|c| c.is_ascii_digit()) {
                    return uid.to_string();
                }
            }
        }
        DEFAULT_AGENT_USER.into()
    }

    /// Run the shared probe as `user`; the report, or why there is none.
    async fn probe(&self, id: &str, user: &str, codex_home: Option<&str>, mode: Mode) -> Result<ProbeReport, String> {
        let mut cmd = vec!["sh".to_string(), "-c".to_string(), probe::script(), "codex-fleet-probe".to_string()];
        cmd.push(mode.arg().into());
        cmd.push(self.opts.gitea_url.clone());
        if let Some(h) = codex_home {
            cmd.push(h.into());
        }
        let out = match self.exec(id, user, cmd, None, self.opts.probe_timeout).await {
            Ok(o) => o,
            Err(e) => return Err(format!("probe: {e}")),
        };
        match probe::parse(&out.stdout) {
            Ok(r) => Ok(r),
            Err(pe) => Err(self.why_no_report(id, user, &out, &pe.to_string()).await),
        }
    }

    /// A probe (or ops) run without a readable answer: say why in the operator's words.
    async fn why_no_report(&self, id: &str, user: &str, out: &ExecOutput, parse_error: &str) -> String {
        let stderr = first_line(&out.stderr);
        // A container whose PID 1 ends takes a moment to be reported as stopped.
        for _ in 0..10 {
            let Ok(i) = self.docker.inspect_container(id, None::<InspectContainerOptions>).await else { break };
            let st = i.state.unwrap_or_default();
            if st.running != Some(true) {
                return format!(
                    "the container stopped during the probe (now {}, exit code {}): {parse_error}",
                    st.status.map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
                    st.exit_code.unwrap_or(-1)
                );
            }
            // (no readable report: give the engine a moment to say whether the container died)
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let said = if stderr.is_empty() { first_line(&out.stdout) } else { stderr };
        let no_header = !out.stdout.contains("#cfp ");
        match out.exit_code {
            Some(126) | Some(127) if no_header => {
                if said.contains("executable file not found") || said.contains("no such file or directory") || said.is_empty() {
                    format!("no shell in the container: `sh` could not be run as {user} ({})", if said.is_empty() { "exit status 127" } else { said })
                } else {
                    format!("the probe could not be started as {user}: {said}")
                }
            }
            Some(rc) if no_header => {
                format!("the probe printed no report (exit status {rc}){}", if said.is_empty() { String::new() } else { format!(": {said}") })
            }
            _ => format!("the probe's output could not be read: {parse_error}"),
        }
    }

    /// Everything about one container.
    pub async fn read_container(&self, id: &str, name: &str) -> Result<AgentRead, FleetError> {
        let agent = AgentRef { host: self.host.id.clone(), container_id: id.to_string(), name: name.to_string() };
        let info = self.inspect(&agent).await?;
        let config = info.config.clone().unwrap_or_default();
        let state = info.state.clone().unwrap_or_default();
        let name = info.name.as_deref().map(|n| n.trim_start_matches('/').to_string()).unwrap_or_else(|| name.into());
        let agent = AgentRef { name, ..agent };
        // Of the environment, only HOME and CODEX_HOME are read.
        let env_of = |k: &str| {
            config.env.iter().flatten().find_map(|e| e.strip_prefix(k).and_then(|r| r.strip_prefix('='))).map(str::to_string)
        };
        let codex_home = env_of("CODEX_HOME").or_else(|| env_of("HOME").map(|h| format!("{}/.codex", h.trim_end_matches('/'))));
        let mut start_command: Vec<String> = config.entrypoint.clone().unwrap_or_default();
        start_command.extend(config.cmd.clone().unwrap_or_default());
        let labels: BTreeMap<String, String> =
            config.labels.clone().unwrap_or_default().into_iter().map(|(k, v)| (k.clone(), redact_label(&k, &v))).collect();
        let running = state.running == Some(true);

        let (user, probe) = if running {
            let user = self.agent_user(id, codex_home.as_deref()).await;
            let probe = self.probe(id, &user, codex_home.as_deref(), Mode::Files).await;
            (user, probe)
        } else {
            let why = format!(
                "the container is not running ({}, exit code {})",
                state.status.map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
                state.exit_code.unwrap_or(-1)
            );
            (self.opts.agent_user.clone().unwrap_or_else(|| DEFAULT_AGENT_USER.into()), Err(why))
        };
        let user = match &probe {
            Ok(p) => p.user.clone().filter(|u| !u.is_empty()).unwrap_or(user),
            Err(_) => user,
        };
        let emitter = probe.as_ref().ok().map(|p| p.emitter.path.clone()).filter(|p| !p.is_empty());
        let config_path = probe.as_ref().ok().map(|p| p.config.path.clone()).filter(|p| !p.is_empty());
        let layer_changes = self.layer_changes(id, &[emitter.as_deref(), config_path.as_deref()]).await;
        let boot_warn = self.boot_warn(id).await;
        let read = AgentRead {
            agent,
            image: config.image.clone().unwrap_or_default(),
            image_id: info.image.clone().unwrap_or_default(),
            labels,
            state: state.status.map(|s| s.to_string()).unwrap_or_default(),
            restart_count: info.restart_count.unwrap_or(0).max(0) as u64,
            started_at: state.started_at.clone().unwrap_or_default(),
            user,
            start_command: redact_argv(&start_command),
            layer_changes,
            boot_warn,
            probe,
        };
        Ok(read)
    }

    /// `docker diff` as `C /path` lines (bounded; the files that matter always kept).
    async fn layer_changes(&self, id: &str, keep: &[Option<&str>]) -> Vec<String> {
        let Ok(Some(changes)) = self.docker.container_changes(id).await else { return Vec::new() };
        let mut out = Vec::new();
        for c in changes {
            let k = match c.kind {
                ChangeType::_0 => 'C',
                ChangeType::_1 => 'A',
                ChangeType::_2 => 'D',
            };
            let important = keep.iter().flatten().any(|p| *p == c.path) || c.path == crate::codex::emitter::EMITTER_PATH;
            if out.len() < MAX_LAYER_CHANGES || important {
                out.push(format!("{k} {}", c.path));
            }
        }
        out
    }

    /// The last boot-check WARN line in the tail of the container's log, redacted. Every
    /// other line is dropped as it is read.
    async fn boot_warn(&self, id: &str) -> Option<String> {
        let opts = LogsOptions { stdout: true, stderr: true, tail: LOG_TAIL.into(), ..Default::default() };
        let mut stream = self.docker.logs(id, Some(opts));
        let mut found = None;
        let mut partial = String::new();
        while let Ok(Some(item)) = stream.try_next().await {
            let bytes = match item {
                LogOutput::StdOut { message } | LogOutput::StdErr { message } | LogOutput::Console { message } => message,
                LogOutput::StdIn { .. } => continue,
            };
            partial.push_str(&String::from_utf8_lossy(&bytes));
            while let Some(nl) = partial.find('\n') {
                let line: String = partial.drain(..=nl).collect();
                if is_boot_warn(&line) {
                    found = Some(line);
                }
            }
            if partial.len() > 64 << 10 {
                partial.clear();
            }
        }
        if is_boot_warn(&partial) {
            found = Some(partial);
        }
        found.map(|l| boot_warn_text(&l))
    }

    /// Mutations name a container only by the full id a scan read, and the engine must agree
    /// (a name or an id prefix can be taken by another container).
    async fn checked(&self, agent: &AgentRef) -> Result<(), FleetError> {
        if !crate::fleet::aws::host_script::is_full_id(&agent.container_id) {
            return Err(FleetError::Refused(format!("{}: no full container id ({:?}); scan again", agent.id(), agent.container_id)));
        }
        match self.inspect(agent).await?.id {
            Some(id) if id == agent.container_id => Ok(()),
            _ => Err(FleetError::AgentGone { agent: agent.id() }),
        }
    }

    async fn run_op(&self, agent: &AgentRef, op: Op<'_>, stdin: Option<&[u8]>) -> Result<ops::OpsOutput, FleetError> {
        self.checked(agent).await?;
        let cmd = op.command();
        let out = match self.exec(&agent.container_id, "0", cmd, stdin, self.opts.ops_timeout).await {
            Ok(o) => o,
            Err(FleetError::Other(m)) if m.contains("No such container") || m.contains("404") => {
                return Err(FleetError::AgentGone { agent: agent.id() })
            }
            Err(e) => return Err(e),
        };
        ops::parse(&out.stdout).map_err(|pe| {
            let stderr = first_line(&out.stderr);
            FleetError::Other(format!(
                "{} on {}: {pe}{}",
                op.name(),
                agent.name,
                if stderr.is_empty() { String::new() } else { format!(" ({stderr})") }
            ))
        })
    }

    /// Container state, restart count and start time.
    async fn status(&self, agent: &AgentRef) -> Result<(bool, String, u64, String, i64), FleetError> {
        let i = self.inspect(agent).await?;
        let st = i.state.unwrap_or_default();
        Ok((
            st.running == Some(true) && st.restarting != Some(true),
            st.status.map(|s| s.to_string()).unwrap_or_default(),
            i.restart_count.unwrap_or(0).max(0) as u64,
            st.started_at.unwrap_or_default(),
            st.exit_code.unwrap_or(0),
        ))
    }
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

fn first_line(s: &str) -> &str {
    s.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("")
}

/// Is this log line the boot check's WARN line (the network check against Gitea)?
pub fn is_boot_warn(line: &str) -> bool {
    let l = line.to_ascii_lowercase();
    line.contains("WARN") && (l.contains("boot check") || l.contains("/api/v1/version"))
}

/// At most this many characters of the boot-check WARN line leave a host.
pub const BOOT_WARN_MAX: usize = 300;

/// The boot-check WARN line as it leaves a host: ASCII blanks trimmed at both ends, redacted
/// as text, cut to [`BOOT_WARN_MAX`] characters. On AWS hosts `assets/redact.awk` (bootmode)
/// does the same, byte for byte (tests/redact_parity.rs).
pub fn boot_warn_text(line: &str) -> String {
    let l = redact(line.trim_matches(|c: char| c.is_ascii_whitespace())).text;
    l.chars().take(BOOT_WARN_MAX).collect()
}

/// The last line of a log (lines end at `\n`) that [`is_boot_warn`], as [`boot_warn_text`].
pub fn boot_warn_in_log(log: &str) -> Option<String> {
    log.split('\n').filter(|l| is_boot_warn(l)).last().map(boot_warn_text)
}

/// A label value as it leaves a host: `<redacted>` whole when its key names a secret (blanks,
/// lines and all); else redacted as one argument (`codex::redact::redact_arg`: `TOKEN=two
/// words` whole, token shapes, pairs). `assets/redact.awk` (labelmode) does the same on AWS hosts.
pub fn redact_label(key: &str, value: &str) -> String {
    if crate::codex::redact::is_secret_key(key) {
        return if value.is_empty() { String::new() } else { "<redacted>".into() };
    }
    crate::codex::redact::redact_arg(value).text
}

#[async_trait]
impl Fleet for DockerFleet {
    fn describe(&self) -> String {
        format!("docker {} {}", self.address, self.opts.filter)
    }

    async fn discover(&self) -> Result<Vec<Host>, FleetError> {
        let mut h = self.host.clone();
        if let Err(e) = self.docker.ping().await {
            h.reachable = false;
            h.unreachable_reason = Some(docker_err(e));
        }
        Ok(vec![h])
    }

    async fn scan(&self, hosts: &[Host], tx: tokio::sync::mpsc::Sender<HostRead>) -> Result<(), FleetError> {
        if !hosts.iter().any(|h| h.id == self.host.id) {
            return Ok(());
        }
        let agents = match self.list_agents().await {
            Ok(list) => {
                let reads = futures::stream::iter(list)
                    .map(|(id, name)| async move {
                        match self.read_container(&id, &name).await {
                            Ok(r) => Some(r),
                            // Gone between list and inspect: not an agent any more.
                            Err(FleetError::AgentGone { .. }) => None,
                            Err(e) => Some(unreadable(&self.host.id, &id, &name, e.to_string())),
                        }
                    })
                    .buffer_unordered(self.opts.concurrency.max(1))
                    .filter_map(|r| async move { r })
                    .collect::<Vec<_>>()
                    .await;
                Ok(reads)
            }
            Err(e) => Err(e.to_string()),
        };
        let _ = tx.send(HostRead { host: self.host.clone(), agents }).await;
        Ok(())
    }

    async fn read_agent(&self, agent: &AgentRef) -> Result<AgentRead, FleetError> {
        self.read_container(&agent.container_id, &agent.name).await
    }

    async fn backup(&self, agent: &AgentRef, req: &BackupRequest) -> Result<Option<WriteReceipt>, FleetError> {
        self.run_op(agent, Op::Backup { path: &req.path, run_id: &req.run_id }, None).await?.receipt()
    }

    async fn write_file(&self, agent: &AgentRef, req: &WriteRequest) -> Result<WriteReceipt, FleetError> {
        let (stdin, preview_bytes) = ops::write_input(req);
        let op = Op::Write { path: &req.path, expected_sha256: req.before_sha256.as_deref(), run_id: &req.run_id, preview_bytes };
        let out = self.run_op(agent, op, Some(&stdin)).await?;
        out.receipt()?.ok_or_else(|| FleetError::Other(format!("write {}: no receipt", req.path)))
    }

    async fn restore_file(&self, agent: &AgentRef, req: &RestoreRequest) -> Result<WriteReceipt, FleetError> {
        let op = Op::Restore {
            path: &req.path,
            backup: &req.backup_path,
            expected_current_sha256: req.expected_current_sha256.as_deref(),
        };
        let out = self.run_op(agent, op, None).await?;
        out.receipt()?.ok_or_else(|| FleetError::Other(format!("restore {}: no receipt", req.path)))
    }

    async fn restart(&self, agent: &AgentRef) -> Result<(), FleetError> {
        self.checked(agent).await?;
        let opts = RestartContainerOptions { t: Some(self.opts.stop_timeout), ..Default::default() };
        match self.docker.restart_container(&agent.container_id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Err(FleetError::AgentGone { agent: agent.id() }),
            Err(e) => Err(FleetError::Other(format!("restart: {}", docker_err(e)))),
        }
    }

    async fn wait_stable(&self, agent: &AgentRef, timeout: Duration) -> Result<AgentRead, FleetError> {
        let deadline = Instant::now() + timeout;
        let mut since: Option<(Instant, u64, String)> = None;
        loop {
            let (running, status, restarts, started, exit) = self.status(agent).await?;
            if running {
                match &since {
                    Some((t, n, s)) if *n == restarts && *s == started => {
                        if t.elapsed() >= self.opts.stable_for {
                            return self.read_agent(agent).await;
                        }
                    }
                    _ => since = Some((Instant::now(), restarts, started)),
                }
            } else {
                since = None;
            }
            if Instant::now() >= deadline {
                return Err(FleetError::Timeout(format!(
                    "{} did not stay up for {:?} within {timeout:?} (state {status}, exit code {exit}, {restarts} restarts)",
                    agent.name, self.opts.stable_for
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn verify(&self, agent: &AgentRef) -> Result<VerifyReport, FleetError> {
        let (running, status, ..) = self.status(agent).await?;
        if !running {
            return Ok(VerifyReport { passed: false, checks: vec![("running".into(), false, format!("state {status}"))] });
        }
        let info = self.inspect(agent).await?;
        let env = info.config.and_then(|c| c.env).unwrap_or_default();
        let env_of = |k: &str| env.iter().find_map(|e| e.strip_prefix(k).and_then(|r| r.strip_prefix('='))).map(str::to_string);
        let codex_home = env_of("CODEX_HOME").or_else(|| env_of("HOME").map(|h| format!("{}/.codex", h.trim_end_matches('/'))));
        let user = self.agent_user(&agent.container_id, codex_home.as_deref()).await;
        let p = self
            .probe(&agent.container_id, &user, codex_home.as_deref(), Mode::Detail)
            .await
            .map_err(FleetError::Other)?;
        Ok(boot_assertion(&p, &self.opts.gitea_url))
    }

    async fn lock(&self, agent: &AgentRef, key: &LockKey) -> Result<LockOutcome, FleetError> {
        let prev = key.takeover_arg();
        let op = Op::Lock { run_id: &key.run_id, token: &key.token, holder: &key.holder, prev: &prev };
        self.run_op(agent, op, None).await?.lock_outcome()
    }

    async fn unlock(&self, agent: &AgentRef, key: &LockKey) -> Result<(), FleetError> {
        let prev = key.takeover_arg();
        match self.run_op(agent, Op::Unlock { run_id: &key.run_id, token: &key.token, prev: &prev }, None).await?.error() {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}

/// An agent whose container could be listed but not read.
fn unreadable(host: &str, id: &str, name: &str, why: String) -> AgentRead {
    AgentRead {
        agent: AgentRef { host: host.into(), container_id: id.into(), name: name.into() },
        image: String::new(),
        image_id: String::new(),
        labels: BTreeMap::new(),
        state: String::new(),
        restart_count: 0,
        started_at: String::new(),
        user: String::new(),
        start_command: Vec::new(),
        layer_changes: Vec::new(),
        boot_warn: None,
        probe: Err(why),
    }
}

/// The boot assertion from a probe run after the restart: where codex is present, its
/// effective permissions (`codex debug prompt-input`) are danger-full-access + never and the
/// request to Gitea made the way codex makes it (`codex sandbox [linux] -c
/// 'sandbox_mode="danger-full-access"' -- curl ...`) answers 200; without codex, the plain
/// request from the agent user answers 200.
pub fn boot_assertion(p: &ProbeReport, gitea: &str) -> VerifyReport {
    let mut checks = Vec::new();
    let url = format!("{}/api/v1/version", gitea.trim_end_matches('/'));
    let http_words = |h: &crate::probe::Http| match h.status {
        Some(s) => format!("HTTP {s}"),
        None => {
            let e = first_line(&h.stderr);
            if e.is_empty() { format!("no answer ({})", h.outcome.as_str()) } else { format!("no answer: {e}") }
        }
    };
    if p.codex_path.is_some() {
        let eff = p.effective.clone().unwrap_or_default();
        let sm = eff.sandbox_mode.clone().unwrap_or_else(|| "?".into());
        let ap = eff.approval_policy.clone().unwrap_or_else(|| "?".into());
        let ok = p.prompt_input.outcome == Outcome::Ok && sm == "danger-full-access" && ap == "never";
        let mut ev = format!("`sandbox_mode` is `{sm}`; Approval policy is currently {ap}.");
        if p.prompt_input.outcome != Outcome::Ok {
            ev = format!("codex debug prompt-input failed: {}", first_line(&p.prompt_input.stderr));
        }
        checks.push(("codex debug prompt-input".to_string(), ok, ev));
        let g = &p.gitea_codex;
        checks.push((
            format!("codex sandbox -c 'sandbox_mode=\"{sm}\"' -- curl {url}"),
            g.status == Some(200),
            http_words(g),
        ));
    } else {
        let g = &p.gitea_plain;
        checks.push((format!("curl {url} (no codex in the container)"), g.status == Some(200), http_words(g)));
    }
    VerifyReport { passed: checks.iter().all(|c| c.1), checks }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_warn_lines() {
        assert!(is_boot_warn("WARN: network boot check failed: GET https://x/api/v1/version returned 000; continuing boot\n"));
        assert!(!is_boot_warn("[start] boot 2026 uid=0"));
        assert!(!is_boot_warn("WARN: something else"));
    }

    #[test]
    fn labels_redacted_where_secret() {
        assert_eq!(redact_label("molecule.org-id", "1234"), "1234");
        assert_eq!(redact_label("api_token", "abc"), "<redacted>");
        assert!(!redact_label("note", "key ghp_abcdefghijklmnopqrstuvwxyz0123").contains("ghp_abc"));
        // Values with blanks: whole (issue 10 item 6).
        assert_eq!(redact_label("auth.token", "Bearer abc def"), "<redacted>");
        assert_eq!(redact_label("note", "GITHUB_TOKEN=two words"), "GITHUB_TOKEN=<redacted:1>");
        assert_eq!(boot_warn_text(&format!(" WARN boot check token=abc def {}\r\n", "x".repeat(400))).chars().count(), 300);
        assert!(boot_warn_text("WARN boot check token=abc def").starts_with("WARN boot check token=<redacted:1> def"));
    }

    #[test]
    fn assertion_needs_both_checks() {
        let mut p = ProbeReport { codex_path: Some("/usr/local/bin/codex".into()), ..Default::default() };
        p.prompt_input.outcome = Outcome::Ok;
        p.effective = Some(crate::probe::CodexEffective {
            sandbox_mode: Some("danger-full-access".into()),
            approval_policy: Some("never".into()),
            network_access: None,
        });
        p.gitea_codex.status = Some(200);
        assert!(boot_assertion(&p, "http://g:3000/").passed);
        p.gitea_codex.status = None;
        p.gitea_codex.stderr = "curl: (6) Could not resolve host: g".into();
        let v = boot_assertion(&p, "http://g:3000");
        assert!(!v.passed);
        assert!(v.checks[1].2.contains("Could not resolve host"), "{v:?}");
        let q = ProbeReport { gitea_plain: crate::probe::Http { status: Some(200), ..Default::default() }, ..Default::default() };
        assert!(boot_assertion(&q, "http://g").passed);
    }
}
