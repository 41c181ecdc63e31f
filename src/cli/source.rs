//! Where the fleet comes from: exactly one of `--aws` (default), `--docker`, `--demo`, with
//! their flags, plus the flags every source shares. All are global: accepted before or after
//! the command.

use clap::Args;

use crate::fleet::filter::AgentFilter;
use crate::fleet::Fleet;

pub const DEFAULT_GITEA: &str = "https://git.moleculesai.app";

#[derive(Debug, Args, Clone, Default)]
pub struct SourceArgs {
    /// EC2 hosts found with DescribeInstances, reached with SSM Run Command (the default).
    #[arg(long, global = true, hide = true, help_heading = "Fleet source")]
    pub aws: bool,
    /// This machine's Docker engine as one host.
    #[arg(long, global = true, help_heading = "Fleet source")]
    pub docker: bool,
    /// A built-in simulated fleet: no credentials, no network, deterministic.
    #[arg(long, global = true, hide = true, help_heading = "Fleet source")]
    pub demo: bool,

    /// EC2 tag filter KEY=VALUE (repeatable; default Role=workspace).
    #[arg(long = "tag", global = true, hide = true, value_name = "KEY=VALUE", help_heading = "AWS")]
    pub tags: Vec<String>,
    /// EC2 instance id (repeatable).
    #[arg(long = "instance", global = true, hide = true, value_name = "ID", help_heading = "AWS")]
    pub instances: Vec<String>,
    /// AWS profile, as in the aws CLI.
    #[arg(long, global = true, hide = true, help_heading = "AWS")]
    pub profile: Option<String>,
    /// AWS region (repeatable: several regions in one view).
    #[arg(long = "region", global = true, hide = true, help_heading = "AWS")]
    pub regions: Vec<String>,
    /// Endpoint URL, as in the aws CLI.
    #[arg(long, global = true, hide = true, help_heading = "AWS")]
    pub endpoint_url: Option<String>,

    /// Docker engine address (default: DOCKER_HOST, else the default socket).
    #[arg(long, global = true, value_name = "URI", help_heading = "Docker")]
    pub docker_host: Option<String>,

    /// Size of the demo fleet, HOSTSxAGENTS (e.g. 1000x8).
    #[arg(long, global = true, hide = true, value_name = "HOSTSxAGENTS", help_heading = "Demo")]
    pub demo_scale: Option<String>,
    /// Simulated SSM command latency in milliseconds (default 200).
    #[arg(long, global = true, hide = true, value_name = "MS", help_heading = "Demo")]
    pub demo_latency: Option<u64>,
    /// Keep the simulated fleet's state in FILE so it outlives one process.
    #[arg(long, global = true, hide = true, value_name = "FILE", help_heading = "Demo")]
    pub demo_state: Option<std::path::PathBuf>,

    /// Which containers are codex agents: label=K=V, name=GLOB or image=SUBSTR (default image=codex).
    #[arg(long, global = true, value_name = "FILTER", help_heading = "Agents")]
    pub agent_filter: Option<AgentFilter>,
    /// The agent user (default: owner of the container's codex process, else of $CODEX_HOME, else agent).
    #[arg(long, global = true, value_name = "NAME", help_heading = "Agents")]
    pub agent_user: Option<String>,
    /// Gitea base URL for the reachability check and the boot assertion.
    #[arg(long, global = true, value_name = "URL", help_heading = "Agents")]
    pub gitea_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Aws,
    Docker,
    Demo,
}

impl SourceArgs {
    pub fn kind(&self) -> Kind {
        if self.docker {
            Kind::Docker
        } else if self.demo {
            Kind::Demo
        } else {
            Kind::Aws
        }
    }

    /// Exactly one source; its flags only with it.
    pub fn validate(&self) -> Result<(), String> {
        let n = [self.aws, self.docker, self.demo].iter().filter(|b| **b).count();
        if n > 1 {
            return Err("choose one fleet source: --aws, --docker or --demo".into());
        }
        if let Some(s) = &self.demo_scale {
            parse_scale(s)?;
        }
        Ok(())
    }

    pub fn gitea(&self) -> String {
        self.gitea_url.clone().unwrap_or_else(|| DEFAULT_GITEA.to_string())
    }

    pub fn filter(&self) -> AgentFilter {
        self.agent_filter.clone().unwrap_or_default()
    }
}

/// `1000x8` -> (1000, 8).
pub fn parse_scale(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("--demo-scale `{s}`: expected HOSTSxAGENTS, e.g. 1000x8");
    let (h, a) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let (h, a): (usize, usize) = (h.parse().map_err(|_| bad())?, a.parse().map_err(|_| bad())?);
    if h == 0 || a == 0 {
        return Err(bad());
    }
    Ok((h, a))
}

/// Open the chosen source.
pub async fn open(s: &SourceArgs) -> Result<Box<dyn Fleet>, String> {
    match s.kind() {
        Kind::Docker => {
            let opts = crate::fleet::docker::DockerOptions {
                filter: s.filter(),
                agent_user: s.agent_user.clone(),
                gitea_url: s.gitea(),
                ..Default::default()
            };
            let f = crate::fleet::docker::DockerFleet::connect(s.docker_host.as_deref(), opts)
                .await
                .map_err(|e| format!("cannot reach the Docker engine: {e}"))?;
            Ok(Box::new(f))
        }
        Kind::Demo => Err("the demo fleet is not built into this version yet; see `codex-fleet --help`".into()),
        Kind::Aws => Err("the AWS source is not built into this version yet; `fix-config` works on local files".into()),
    }
}
