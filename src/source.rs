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
    #[arg(long, global = true, help_heading = "Fleet source")]
    pub aws: bool,
    /// This machine's Docker engine as one host.
    #[arg(long, global = true, help_heading = "Fleet source")]
    pub docker: bool,
    /// A built-in simulated fleet: no credentials, no network, deterministic.
    #[arg(long, global = true, help_heading = "Fleet source")]
    pub demo: bool,

    /// EC2 tag filter KEY=VALUE (repeatable; default Role=workspace).
    #[arg(long = "tag", global = true, value_name = "KEY=VALUE", help_heading = "AWS")]
    pub tags: Vec<String>,
    /// EC2 instance id (repeatable).
    #[arg(long = "instance", global = true, value_name = "ID", help_heading = "AWS")]
    pub instances: Vec<String>,
    /// AWS profile, as in the aws CLI.
    #[arg(long, global = true, help_heading = "AWS")]
    pub profile: Option<String>,
    /// AWS region (repeatable: several regions in one view).
    #[arg(long = "region", global = true, help_heading = "AWS")]
    pub regions: Vec<String>,
    /// Endpoint URL, as in the aws CLI.
    #[arg(long, global = true, help_heading = "AWS")]
    pub endpoint_url: Option<String>,

    /// Docker engine address (default: DOCKER_HOST, else the default socket).
    #[arg(long, global = true, value_name = "URI", help_heading = "Docker")]
    pub docker_host: Option<String>,

    /// Size of the demo fleet, HOSTSxAGENTS (e.g. 1000x8).
    #[arg(long, global = true, value_name = "HOSTSxAGENTS", help_heading = "Demo")]
    pub demo_scale: Option<String>,
    /// Simulated SSM command latency in milliseconds (default 200).
    #[arg(long, global = true, value_name = "MS", help_heading = "Demo")]
    pub demo_latency: Option<u64>,
    /// Keep the simulated fleet's state in FILE so it outlives one process.
    #[arg(long, global = true, value_name = "FILE", help_heading = "Demo")]
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

/// `1000x8` -> (1000, 8), with the flag named in the error.
pub fn parse_scale(s: &str) -> Result<(usize, usize), String> {
    crate::sim::parse_scale(s).map_err(|e| format!("--demo-scale {e}"))
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
        Kind::Demo => {
            let scale = match &s.demo_scale {
                Some(x) => Some(parse_scale(x)?),
                None => None,
            };
            let opts = crate::sim::DemoOptions {
                scale,
                latency: std::time::Duration::from_millis(s.demo_latency.unwrap_or(200)),
                state_file: s.demo_state.clone(),
                aws: aws_options(s)?,
            };
            let f = crate::sim::demo_fleet(opts).await.map_err(|e| format!("cannot start the demo fleet: {e}"))?;
            Ok(Box::new(f))
        }
        Kind::Aws => {
            let f = crate::fleet::aws::AwsFleet::connect(aws_options(s)?).await.map_err(|e| match e {
                crate::fleet::FleetError::NoCredentials(m) => m,
                e => format!("cannot reach AWS: {e}"),
            })?;
            Ok(Box::new(f))
        }
    }
}

/// `--tag`, `--instance`, `--profile`, `--region`, `--endpoint-url` and the agent flags, as the
/// AWS backend takes them (the demo takes the same: it is the same backend).
fn aws_options(s: &SourceArgs) -> Result<crate::fleet::aws::AwsOptions, String> {
    let tags = s.tags.iter().map(|t| parse_tag(t)).collect::<Result<Vec<_>, _>>()?;
    Ok(crate::fleet::aws::AwsOptions {
        tags,
        instances: s.instances.clone(),
        profile: s.profile.clone(),
        regions: s.regions.clone(),
        endpoint_url: s.endpoint_url.clone(),
        agent_filter: s.filter().to_string(),
        agent_user: s.agent_user.clone(),
        gitea_url: s.gitea(),
        ..Default::default()
    })
}

/// `--tag KEY=VALUE` -> (KEY, VALUE); the key must not be empty.
pub fn parse_tag(t: &str) -> Result<(String, String), String> {
    match t.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("--tag `{t}`: expected KEY=VALUE, e.g. Role=workspace")),
    }
}
