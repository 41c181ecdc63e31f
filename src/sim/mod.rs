//! The simulated AWS behind `--demo`: an in-process HTTP connector given to the real AWS SDK
//! clients ([`aws::SimAws`]), the fleet it serves ([`world::World`]) and the demo fleet's
//! contents ([`demo`]). Only what sits behind the SDK's HTTP connection is simulated.
//!
//! This module's top is also the demo's wiring ([`demo_fleet`]): the production AWS backend
//! ([`crate::fleet::aws`]) built over the simulated AWS. It sits above both, so the AWS backend
//! never knows the demo exists.

pub mod aws;
pub mod demo;
pub mod judge;
pub mod world;

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

use crate::fleet::aws::{AwsFleet, AwsOptions};
use crate::fleet::FleetError;

/// Build the simulated AWS for `opts` and an SDK config whose HTTP client is it.
pub fn start(opts: &DemoOptions) -> Result<(Arc<aws::SimAws>, SdkConfig), String> {
    let (h, a) = opts.scale.unwrap_or((8, 6));
    // (the simulated fleet is the simulator's memory, not the console's)
    let sim = enter(|| {
        let world = world::World::load_or(opts.state_file.clone(), || {
            if opts.scale.is_none() {
                demo::default_fleet()
            } else {
                demo::fleet(h, a)
            }
        })?;
        let service = aws::ServiceOptions { command_latency: opts.latency, ..Default::default() };
        Ok::<_, String>(aws::SimAws::new(Arc::new(world), service))
    })?;
    let cfg = sdk_config(&sim, opts.aws.max_attempts);
    Ok((sim, cfg))
}

/// An SDK config talking to `sim` (static, fake credentials: the simulated AWS checks none).
pub fn sdk_config(sim: &Arc<aws::SimAws>, max_attempts: u32) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(demo::REGIONS[0]))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
            "AKIDDEMO", "demo-secret", None, None, "codex-fleet-demo",
        )))
        .http_client(sim.http_client())
        .retry_config(RetryConfig::adaptive().with_max_attempts(max_attempts).with_initial_backoff(Duration::from_millis(200)))
        .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
        .time_source(aws_smithy_async::time::SystemTimeSource::new())
        .build()
}

/// `--demo`, `--demo-scale`, `--demo-latency`, `--demo-state`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// `--demo-scale HOSTSxAGENTS`; None: the default demo fleet (8 hosts, 48 agents).
    pub scale: Option<(usize, usize)>,
    /// `--demo-latency MS`: how long a simulated host takes to run a command (default 200 ms).
    pub latency: Duration,
    /// `--demo-state FILE`: keep the simulated fleet's state there.
    pub state_file: Option<std::path::PathBuf>,
    /// Agent filter, agent user, Gitea URL, tags, instances, regions, deadlines: as for `--aws`
    /// (regions default to the demo's two).
    pub aws: AwsOptions,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions { scale: None, latency: Duration::from_millis(200), state_file: None, aws: AwsOptions::default() }
    }
}

/// Parse `--demo-scale` (`1000x8`).
pub fn parse_scale(s: &str) -> Result<(usize, usize), String> {
    let (h, a) = s.split_once(['x', 'X']).ok_or_else(|| format!("`{s}`: expected HOSTSxAGENTS, e.g. 1000x8"))?;
    let h: usize = h.trim().parse().map_err(|_| format!("`{s}`: bad host count"))?;
    let a: usize = a.trim().parse().map_err(|_| format!("`{s}`: bad agent count"))?;
    if h == 0 || a == 0 || h > 100_000 || a > 200 {
        return Err(format!("`{s}`: between 1x1 and 100000x200"));
    }
    Ok((h, a))
}

/// The demo fleet: the real AWS backend over the simulated AWS. Same code path as `--aws`.
pub async fn demo_fleet(opts: DemoOptions) -> Result<AwsFleet, FleetError> {
    demo_fleet_with_sim(opts).await.map(|(f, _)| f)
}

/// The demo fleet and a handle on its simulated AWS (tests and benchmarks inject faults and
/// read the API call counters through it).
pub async fn demo_fleet_with_sim(opts: DemoOptions) -> Result<(AwsFleet, Arc<aws::SimAws>), FleetError> {
    let (sim, cfg) = start(&opts).map_err(FleetError::Other)?;
    let mut aws = opts.aws.clone();
    if aws.regions.is_empty() {
        aws.regions = demo::REGIONS.iter().map(|r| r.to_string()).collect();
    }
    let keep: Arc<dyn std::any::Any + Send + Sync> = sim.clone();
    let f = AwsFleet::from_sdk_config(aws, &cfg, Some(keep))?.as_demo(judge::description());
    Ok((f, sim))
}

// ---------------------------------------------------------------------------------------------
// Whose memory: the simulated AWS runs in the console's process; a benchmark's counting
// allocator asks [`in_sim`] to tell the simulator's allocations from the console's own
// (`benches/scan_scaling.rs`).

thread_local! {
    static IN_SIM: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the code running on this thread is the simulated AWS's (its HTTP handler, its
/// hosts, building its fleet).
pub fn in_sim() -> bool {
    IN_SIM.try_with(|c| c.get()).unwrap_or(false)
}

/// Run `f` as the simulator's code.
pub fn enter<R>(f: impl FnOnce() -> R) -> R {
    let prev = IN_SIM.with(|c| c.replace(true));
    let r = f();
    IN_SIM.with(|c| c.set(prev));
    r
}

/// A future whose every poll runs as the simulator's code.
pub struct Scoped<F>(std::pin::Pin<Box<F>>);

impl<F: std::future::Future> std::future::Future for Scoped<F> {
    type Output = F::Output;
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<F::Output> {
        let this = self.get_mut();
        enter(|| this.0.as_mut().poll(cx))
    }
}

pub fn scoped<F: std::future::Future>(f: F) -> Scoped<F> {
    Scoped(Box::pin(f))
}
