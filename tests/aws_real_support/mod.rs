//! The AWS path on real containers: the production AWS code (`AwsFleet`, the real SDK clients)
//! talks to the simulated AWS (`codex_fleet::sim::aws::SimAws`, SSM's statuses, output caps,
//! timeouts, MaxConcurrency/MaxErrors), whose instances run each delivered script FOR REAL:
//! `sh` as root on this machine, as `AWS-RunShellScript` does (the commands in a `_script.sh`
//! run by `sh` in a fresh directory, `AWS_SSM_INSTANCE_ID` set), against this machine's Docker
//! engine and the test images. Each simulated instance sees only the containers labelled
//! `cf-sim.instance=<its id>` in `docker ps` (its own engine); everything else is the engine's.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use codex_fleet::fleet::aws::{AwsFleet, AwsOptions};
use codex_fleet::sim::aws::{HostExec, ServiceOptions, SimAws};
use codex_fleet::sim::world::{ScriptResult, SimHost, World, WorldState, STATE_FORMAT};

pub const REGION: &str = "us-east-2";

/// One instance's shell: a private directory with its `docker` (the engine, `ps` narrowed to
/// the instance's containers).
pub struct ShellHost {
    dir: tempfile::TempDir,
}

impl ShellHost {
    pub fn new(instance: &str) -> ShellHost {
        let dir = tempfile::tempdir().unwrap();
        let docker = dir.path().join("docker");
        let body = format!(
            "#!/bin/sh\n# The Docker engine of {instance}: this machine's, listing only its containers.\n\
             case $1 in ps) shift; exec docker ps --filter label=cf-sim.instance={instance} \"$@\" ;; esac\nexec docker \"$@\"\n"
        );
        std::fs::write(&docker, body).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).unwrap();
        ShellHost { dir }
    }

    fn docker(&self) -> PathBuf {
        self.dir.path().join("docker")
    }
}

#[async_trait::async_trait]
impl HostExec for ShellHost {
    async fn run(&self, instance: &str, script: &str, timeout: Duration) -> (ScriptResult, bool) {
        let work = tempfile::tempdir_in(self.dir.path()).unwrap();
        let file = work.path().join("_script.sh");
        std::fs::write(&file, script).unwrap();
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg(&file)
            .current_dir(work.path())
            .env_clear()
            .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", "/root")
            .env("AWS_SSM_INSTANCE_ID", instance)
            .env("AWS_SSM_REGION_NAME", REGION)
            .env("CODEX_FLEET_DOCKER", self.docker())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let child = cmd.spawn().expect("sh");
        let pid = child.id().unwrap_or(0) as i32;
        match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(Ok(o)) => (
                ScriptResult {
                    stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
                    rc: o.status.code().unwrap_or(-1),
                    extra_time: Duration::ZERO,
                    lost: false,
                },
                false,
            ),
            Ok(Err(e)) => (ScriptResult { stderr: format!("sh: {e}"), rc: -1, ..Default::default() }, false),
            Err(_) => {
                // SSM stops the whole script (its children included) at executionTimeout.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
                (ScriptResult { rc: -1, ..Default::default() }, true)
            }
        }
    }
}

/// A simulated instance, running, managed by SSM and online.
pub fn instance(id: &str, name: &str) -> SimHost {
    SimHost {
        instance_id: id.into(),
        name: name.into(),
        region: REGION.into(),
        reservation: format!("r-{id}"),
        tags: [("Role".to_string(), "workspace".to_string()), ("Name".to_string(), name.to_string())].into_iter().collect(),
        ec2_state: "running".into(),
        ssm_managed: true,
        online: true,
        agent_version: "3.3.1142.0".into(),
        docker_version: "-".into(),
    }
}

/// The production AWS backend over the simulated AWS whose `instances` run scripts for real.
pub fn aws_fleet(instances: &[SimHost], agent_filter: &str, gitea_url: &str) -> (AwsFleet, Arc<SimAws>) {
    let state = WorldState {
        format: STATE_FORMAT,
        seed: 7,
        hosts: instances.to_vec(),
        agents: Default::default(),
        faults: Default::default(),
        mutations: Default::default(),
    };
    let service = ServiceOptions { command_latency: Duration::from_millis(20), ..Default::default() };
    let sim = SimAws::new(Arc::new(World::new(state, None)), service);
    for h in instances {
        sim.run_on(&h.instance_id, Arc::new(ShellHost::new(&h.instance_id)));
    }
    let cfg = codex_fleet::sim::sdk_config(&sim, 3);
    let opts = AwsOptions {
        instances: instances.iter().map(|h| h.instance_id.clone()).collect(),
        regions: vec![REGION.into()],
        agent_filter: agent_filter.into(),
        gitea_url: gitea_url.into(),
        op_timeout: Duration::from_secs(240),
        ..Default::default()
    };
    let keep: Arc<dyn std::any::Any + Send + Sync> = sim.clone();
    let f = AwsFleet::from_sdk_config(opts, &cfg, Some(keep)).expect("aws fleet over the simulated AWS");
    (f, sim)
}
