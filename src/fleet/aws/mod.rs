//! The AWS backend: EC2 hosts found with `DescribeInstances`, reached with SSM Run Command
//! (`AWS-RunShellScript`). The demo (`--demo`) is this same backend over a simulated AWS that
//! sits behind the SDK's HTTP connector ([`crate::sim`]): nothing here knows which one it talks to.
//!
//! - `ec2.rs`: discovery (tags / instance ids, running only, paginated, Name tag, SSM ping status).
//! - `ssm.rs`: SendCommand fan-out (Targets for whole-fleet scans, <= 50 ids otherwise), polling
//!   with backoff, every status, throttling cap, deadlines, cancellation, truncation fallback.
//! - `host_script.rs`: the payload header and output framing of `assets/host-ops.sh`.
//! - `fleet.rs`: the `Fleet` operations on top of them.
//! - `texts.rs`: the long texts the console holds, named by hashes keyed by each scan's nonce.
//! - `batch.rs`: agent operations of a wave coalesced into shared commands (<= 50 instances,
//!   each with the items of all its agents), each agent's answer handed back to it.

mod batch;
pub mod ec2;
mod fleet;
pub use fleet::{blob_commands, Wanted};
pub mod host_script;
pub mod ssm;
pub(crate) mod texts;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;

use super::{FleetError, Host};

/// What the operator asked for (`--tag`, `--instance`, `--profile`, `--region`, `--endpoint-url`,
/// `--agent-filter`, `--agent-user`, `--gitea-url`).
#[derive(Debug, Clone)]
pub struct AwsOptions {
    /// `--tag KEY=VALUE` (repeatable); default `Role=workspace` when no instance is named.
    pub tags: Vec<(String, String)>,
    /// `--instance ID` (repeatable).
    pub instances: Vec<String>,
    pub profile: Option<String>,
    /// `--region` (repeatable); empty: the profile's / environment's region.
    pub regions: Vec<String>,
    pub endpoint_url: Option<String>,
    /// `image=SUBSTR` (default `image=codex`), `label=K=V`, `name=GLOB`.
    pub agent_filter: String,
    pub agent_user: Option<String>,
    pub gitea_url: String,
    /// Deadline of one whole operation (a scan, one agent's write, ...).
    pub op_timeout: Duration,
    /// SDK retry attempts (adaptive retry, client-side rate limiting).
    pub max_attempts: u32,
    /// DescribeInstances page size (5..1000).
    pub page_size: i32,
}

impl Default for AwsOptions {
    fn default() -> Self {
        AwsOptions {
            tags: Vec::new(),
            instances: Vec::new(),
            profile: None,
            regions: Vec::new(),
            endpoint_url: None,
            agent_filter: "image=codex".into(),
            agent_user: None,
            gitea_url: "https://git.moleculesai.app".into(),
            op_timeout: Duration::from_secs(180),
            max_attempts: 6,
            page_size: 1000,
        }
    }
}

impl AwsOptions {
    /// The tag filters in effect (the default applies when neither tags nor instances are given).
    pub fn effective_tags(&self) -> Vec<(String, String)> {
        if self.tags.is_empty() && self.instances.is_empty() {
            vec![("Role".into(), "workspace".into())]
        } else {
            self.tags.clone()
        }
    }
}

/// One region's clients.
#[derive(Debug, Clone)]
pub(crate) struct RegionClients {
    pub region: String,
    pub ec2: aws_sdk_ec2::Client,
    pub ssm: aws_sdk_ssm::Client,
}

/// The fleet of EC2 hosts reached through SSM.
pub struct AwsFleet {
    pub(crate) opts: AwsOptions,
    pub(crate) regions: Vec<RegionClients>,
    /// Instance id -> (region, host) from the last discovery.
    pub(crate) hosts: Mutex<HashMap<String, (String, Host)>>,
    /// Redacted probe texts (file contents, stderr) by their name under the last scan's key:
    /// fetched once per text (`texts::TextStore`).
    pub(crate) blobs: Mutex<texts::TextStore>,
    /// Probe outputs parsed already (`fleet::ProbeMemo`).
    pub(crate) probe_memo: Arc<Mutex<fleet::ProbeMemo>>,
    /// Notes for the operator (e.g. a refused DescribeInstanceInformation).
    pub(crate) notes: Mutex<Vec<String>>,
    pub(crate) cancel: tokio::sync::watch::Sender<bool>,
    /// Our own cap on concurrent API calls (on top of the SDK's adaptive retry).
    pub(crate) api_slots: Arc<tokio::sync::Semaphore>,
    /// Agent operations waiting to share a command ([`batch`]).
    pub(crate) batch: batch::Batcher,
    /// Where the simulated AWS lives when this is the demo (kept alive, never consulted).
    _keep: Option<Arc<dyn std::any::Any + Send + Sync>>,
    /// The demo's note for [`Fleet::describe`](crate::fleet::Fleet::describe) (who judges its
    /// agents' codex), given by the demo's wiring ([`crate::sim`]); `None`: real AWS.
    pub(crate) demo_note: Option<String>,
}

impl std::fmt::Debug for AwsFleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsFleet").field("regions", &self.regions.iter().map(|r| &r.region).collect::<Vec<_>>()).finish()
    }
}

/// The message for a console that finds no AWS credentials.
pub fn no_credentials_message(detail: &str) -> String {
    format!(
        "no AWS credentials found ({detail}). Configure the standard AWS credential chain (environment, \
         ~/.aws/credentials, SSO, instance role) or pass --profile; or run with --demo for a simulated \
         fleet, or --docker for this machine's Docker engine"
    )
}

impl AwsFleet {
    /// Connect with the standard credential chain, `--profile`, `--region`s and `--endpoint-url`.
    /// Fails with [`FleetError::NoCredentials`] when no credentials can be found.
    pub async fn connect(opts: AwsOptions) -> Result<AwsFleet, FleetError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::adaptive().with_max_attempts(opts.max_attempts));
        if let Some(p) = &opts.profile {
            loader = loader.profile_name(p);
        }
        if let Some(u) = &opts.endpoint_url {
            loader = loader.endpoint_url(u);
        }
        if let Some(r) = opts.regions.first() {
            loader = loader.region(Region::new(r.clone()));
        }
        let cfg = loader.load().await;
        let Some(creds) = cfg.credentials_provider() else {
            return Err(FleetError::NoCredentials(no_credentials_message("no credential provider")));
        };
        if let Err(e) = creds.provide_credentials().await {
            return Err(FleetError::NoCredentials(no_credentials_message(&e.to_string())));
        }
        Self::from_sdk_config(opts, &cfg, None)
    }

    /// Build on an SDK config (the demo hands one whose HTTP client is the simulated AWS).
    pub fn from_sdk_config(
        mut opts: AwsOptions,
        cfg: &SdkConfig,
        keep: Option<Arc<dyn std::any::Any + Send + Sync>>,
    ) -> Result<AwsFleet, FleetError> {
        if opts.regions.is_empty() {
            match cfg.region() {
                Some(r) => opts.regions.push(r.to_string()),
                None => {
                    return Err(FleetError::Other(
                        "no AWS region: pass --region (repeatable) or set AWS_REGION / a profile region".into(),
                    ))
                }
            }
        }
        let regions = opts
            .regions
            .iter()
            .map(|r| {
                let ec2c = aws_sdk_ec2::config::Builder::from(cfg).region(Region::new(r.clone())).build();
                let ssmc = aws_sdk_ssm::config::Builder::from(cfg).region(Region::new(r.clone())).build();
                RegionClients {
                    region: r.clone(),
                    ec2: aws_sdk_ec2::Client::from_conf(ec2c),
                    ssm: aws_sdk_ssm::Client::from_conf(ssmc),
                }
            })
            .collect();
        let (cancel, _) = tokio::sync::watch::channel(false);
        Ok(AwsFleet {
            opts,
            regions,
            hosts: Mutex::new(HashMap::new()),
            blobs: Default::default(),
            probe_memo: Default::default(),
            notes: Mutex::new(Vec::new()),
            cancel,
            api_slots: Arc::new(tokio::sync::Semaphore::new(16)),
            batch: batch::Batcher::default(),
            _keep: keep,
            demo_note: None,
        })
    }

    /// Mark this fleet as the demo, with a note for its description (the demo's wiring does).
    pub fn as_demo(mut self, note: String) -> AwsFleet {
        self.demo_note = Some(note);
        self
    }

    /// Notes for the operator gathered so far (e.g. "DescribeInstanceInformation refused").
    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().unwrap().clone()
    }

    pub(crate) fn note(&self, s: String) {
        eprintln!("codex-fleet: {s}");
        let mut n = self.notes.lock().unwrap();
        if !n.contains(&s) {
            n.push(s);
        }
    }

    /// Stop every operation in flight: commands sent are cancelled (CancelCommand), waits end
    /// with an error.
    pub fn cancel(&self) {
        self.cancel.send_replace(true);
    }

    pub(crate) fn cancelled(&self) -> bool {
        *self.cancel.borrow()
    }

    pub(crate) fn region(&self, name: &str) -> Option<&RegionClients> {
        self.regions.iter().find(|r| r.region == name)
    }
}
