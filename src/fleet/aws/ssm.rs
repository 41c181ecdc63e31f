//! SSM Run Command: send, poll, collect.
//!
//! - Whole-fleet scans go out by `Targets` (the fleet's tags) and let SSM fan out, with
//!   `MaxConcurrency`/`MaxErrors` chosen by the console; everything else by `InstanceIds`, at
//!   most 50 per call. Changes only ever go to planned instance ids.
//! - Right after SendCommand, `InvocationDoesNotExist` (and an empty listing) means "not yet".
//! - Polling backs off; progress is read from `ListCommands` (one call a command, or one for
//!   a region's commands that run side by side) and the results from
//!   `ListCommandInvocations` with details (50 hosts a page, 2,500 characters each); output
//!   whose framing shows it was cut is fetched again with `GetCommandInvocation` (24,000).
//! - Throttling: the SDK's adaptive retry first, then our own backoff until the deadline, and
//!   a cap on concurrent calls.
//! - Every status and status detail ends in a result; a deadline or a cancellation cancels
//!   the command (`CancelCommand`).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use aws_sdk_ssm::types::{CommandFilter, CommandFilterKey, Target};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tokio::time::Instant;

use super::host_script::{self, HostOutput, OutputError};
use super::{AwsFleet, RegionClients};
use crate::fleet::FleetError;

/// Where a command goes.
#[derive(Debug, Clone)]
pub enum Dest {
    /// At most 50.
    Ids(Vec<String>),
    /// `tag:KEY` = VALUE targets: SSM resolves and fans out.
    Tags(Vec<(String, String)>),
}

#[derive(Debug, Clone)]
pub struct SendSpec {
    pub dest: Dest,
    pub script: String,
    pub comment: String,
    pub max_concurrency: String,
    pub max_errors: String,
    /// The script's run-time limit (the document's `executionTimeout`).
    pub exec_timeout: Duration,
    /// How long SSM tries to deliver (`TimeoutSeconds`, >= 30).
    pub delivery_timeout: Duration,
}

/// One host's end of a command.
#[derive(Debug, Clone)]
pub struct InvResult {
    pub instance: String,
    pub status: String,
    pub detail: String,
    pub rc: i32,
    /// Output as far as SSM returned it (List: 2,500 characters; Get: 24,000).
    pub output: String,
}

impl InvResult {
    /// The host did not get the command at all.
    pub fn undelivered(&self) -> bool {
        matches!(self.detail.as_str(), "Undeliverable" | "DeliveryTimedOut" | "Delivery Timed Out" | "Terminated" | "InvalidPlatform" | "No Instances In Tag")
    }
}

pub fn is_terminal(status: &str) -> bool {
    matches!(status, "Success" | "Failed" | "TimedOut" | "Cancelled")
}

fn is_throttle<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    match e {
        SdkError::ServiceError(s) => matches!(
            s.err().code(),
            Some("ThrottlingException" | "Throttling" | "RequestLimitExceeded" | "TooManyRequestsException" | "RateExceeded")
        ),
        _ => false,
    }
}

fn code_of<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<String> {
    match e {
        SdkError::ServiceError(s) => s.err().code().map(str::to_string),
        _ => None,
    }
}

/// Output as one text: stdout, then stderr (never secret: the scripts redact on the host).
fn joined(stdout: &str, stderr: &str) -> String {
    if stderr.is_empty() {
        stdout.to_string()
    } else {
        format!("{stdout}\n----------ERROR-------\n{stderr}")
    }
}

/// Hosts above which a command's results are listed when complete rather than at every poll.
const BIG_LISTING: i64 = 200;

/// The progress of a region's commands that run side by side (a scan of selected hosts goes
/// out in commands of 50), read for all of them by one `ListCommands` call a poll instead of
/// one call a command: the quota (20 a second) would not let twenty commands be polled every
/// 125 ms.
pub(crate) struct SharedProgress {
    /// `InvokedAfter`: a while before the commands went out (SSM's clock is not ours).
    since: String,
    /// The last answer: when its call went out, and each command's (completed, targets).
    last: tokio::sync::Mutex<Option<(Instant, HashMap<String, (i64, i64)>)>>,
}

impl SharedProgress {
    pub(crate) fn new() -> SharedProgress {
        let since = std::time::SystemTime::now() - Duration::from_secs(600);
        SharedProgress { since: humantime::format_rfc3339_seconds(since).to_string(), last: tokio::sync::Mutex::new(None) }
    }
}

/// Listing tokens an early listing leaves, besides one for each command still to be listed
/// last: the texts' `GetCommandInvocation`s.
const TEXT_TOKENS: usize = 8;

/// An answer of the shared progress call younger than this serves every command polling now
/// (they poll on the same beat, a few milliseconds apart).
const SHARED_FRESH: Duration = Duration::from_millis(40);
/// Pages of the shared call (50 commands each) read before the commands not in them are
/// polled one by one (other users' commands in the region).
const SHARED_PAGES: usize = 4;
/// Progress (`ListCommands`, one call a command, its own quota of 20 a second, taken through
/// our own bucket) is polled every [`FAST_POLL`] for the first [`FAST_POLL_FOR`] of a command,
/// then backs off 1.5x up to 3 s: a command's hosts answer within about one latency, over
/// ~0.4 of it, and the time from the last host's answer to the poll that sees it is time the
/// operator waits for the why line (250 ms polls left the last listing of a 1000x8 scan
/// starting up to 0.25 s late, measured).
const FAST_POLL: Duration = Duration::from_millis(125);
const FAST_POLL_FOR: Duration = Duration::from_secs(10);
/// Once nine in ten of a command's hosts have answered, its progress is polled every
/// [`NEAR_END_POLL`] for up to [`NEAR_END_FOR`]: the last answers are due within a few tens of
/// milliseconds, and at 125 ms the poll that saw them came ~60 ms after them on average (the
/// last listing waited for it: measured); the quota's burst pays for the faster beat.
const NEAR_END_POLL: Duration = Duration::from_millis(50);
const NEAR_END_FOR: Duration = Duration::from_secs(1);

impl AwsFleet {
    /// Call an API with our own throttling cap and backoff on top of the SDK's retries.
    pub(crate) async fn call<T, E, R, F, Fut>(&self, deadline: Instant, mut f: F) -> Result<T, SdkError<E, R>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, R>>>,
        E: ProvideErrorMetadata,
    {
        let mut backoff = Duration::from_millis(300);
        loop {
            let permit = self.api_slots.clone().acquire_owned().await.expect("semaphore open");
            let r = f().await;
            drop(permit);
            match r {
                Err(e) if is_throttle(&e) && Instant::now() + backoff < deadline && !self.cancelled() => {
                    let jitter = Duration::from_millis((Instant::now().elapsed().subsec_nanos() % 200) as u64);
                    tokio::time::sleep(backoff + jitter).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                r => return r,
            }
        }
    }

    /// SendCommand; returns the command id.
    pub(crate) async fn send(&self, rc: &RegionClients, spec: &SendSpec, deadline: Instant) -> Result<String, FleetError> {
        let mut params = HashMap::new();
        params.insert("commands".to_string(), vec![spec.script.clone()]);
        params.insert("executionTimeout".to_string(), vec![spec.exec_timeout.as_secs().max(1).to_string()]);
        let comment: String = spec.comment.chars().take(100).collect();
        let r = self
            .call(deadline, || {
                let mut b = rc
                    .ssm
                    .send_command()
                    .document_name("AWS-RunShellScript")
                    .comment(comment.clone())
                    .set_parameters(Some(params.clone()))
                    .max_concurrency(spec.max_concurrency.clone())
                    .max_errors(spec.max_errors.clone())
                    .timeout_seconds(spec.delivery_timeout.as_secs().max(30) as i32);
                match &spec.dest {
                    Dest::Ids(ids) => {
                        assert!(ids.len() <= 50, "at most 50 instance ids per SendCommand");
                        b = b.set_instance_ids(Some(ids.clone()));
                    }
                    Dest::Tags(tags) => {
                        for (k, v) in tags {
                            b = b.targets(Target::builder().key(format!("tag:{k}")).values(v.clone()).build());
                        }
                    }
                }
                b.send()
            })
            .await
            .map_err(|e| super::ec2::sdk_error(&format!("SendCommand in {}", rc.region), e))?;
        r.command()
            .and_then(|c| c.command_id())
            .map(str::to_string)
            .ok_or_else(|| FleetError::Other("SendCommand returned no command id".into()))
    }

    pub(crate) async fn cancel_command(&self, rc: &RegionClients, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let _ = self.call(deadline, || rc.ssm.cancel_command().command_id(id).send()).await;
    }

    /// Wait for the invocations of `command` on `expect` (None: every target), handing each
    /// one to `on_done` as soon as it ends. At the deadline (or on cancellation) the command
    /// is cancelled and the hosts that did not answer are returned.
    pub(crate) async fn poll_many(
        &self,
        rc: &RegionClients,
        command: &str,
        expect: Option<&HashSet<String>>,
        shared: Option<&SharedProgress>,
        deadline: Instant,
        mut on_done: impl FnMut(InvResult),
    ) -> Result<Vec<String>, FleetError> {
        let mut done: HashSet<String> = HashSet::new();
        let mut backoff = FAST_POLL;
        let sent = Instant::now();
        // When the last progress call went out: the next one is due a backoff after it, not
        // after the listing it may have led to (the last hosts' answers waited for that).
        let mut polled = sent;
        let mut last_completed = -1i64;
        let mut last_listing = Instant::now();
        let mut listed_early = 0i64;
        let mut target_count: Option<i64>;
        // When nine in ten of the hosts waited for had answered.
        let mut near_end: Option<Instant> = None;
        // Hosts completed at the last listing of a shared group's command.
        let mut listed_at = 0i64;
        loop {
            let cap = if near_end.is_some_and(|t| t.elapsed() < NEAR_END_FOR) {
                NEAR_END_POLL
            } else if sent.elapsed() < FAST_POLL_FOR {
                FAST_POLL
            } else {
                Duration::from_secs(3)
            };
            if !self.next_poll(rc, command, deadline, polled, &mut backoff, cap).await? {
                let missing = match expect {
                    Some(e) => e.iter().filter(|i| !done.contains(*i)).cloned().collect(),
                    None => Vec::new(),
                };
                return Ok(missing);
            }
            polled = Instant::now();
            let counts = match shared {
                Some(p) => self.shared_counts(rc, p, command, deadline).await,
                None => None,
            };
            let (completed, targets) = match counts {
                Some(c) => c,
                None => {
                    // Progress: one cheap call (its own quota, 20 a second: our bucket's turn first).
                    self.list_token().await;
                    let lc = self.call(deadline, || rc.ssm.list_commands().command_id(command).send()).await;
                    match lc {
                        Ok(o) => match o.commands().first() {
                            Some(c) => (c.completed_count() as i64, c.target_count() as i64),
                            None => continue, // not visible yet
                        },
                        Err(e) if code_of(&e).as_deref() == Some("InvalidCommandId") => continue, // eventual consistency
                        Err(e) => return Err(super::ec2::sdk_error("ListCommands", e)),
                    }
                }
            };
            target_count = Some(targets);
            if completed <= last_completed {
                continue;
            }
            // Every listing reads every page (one call per 50 hosts, 20 a second): a big
            // command is listed once the hosts it waits for have all completed, or every 5 s
            // or more (`relist_every`) for what came in meanwhile (a slow or silent host), not
            // at every poll.
            // When two whole listings fit in SSM's burst (40 pages: up to 1,000 hosts), two more
            // (of the hosts that succeeded) are made, once a third and once two thirds of the
            // hosts have answered, so that their answers (and the texts they name) are read and
            // diagnosed while the rest still run: a third and two thirds of the pages, one
            // whole listing's worth in all. (At half, with one bucket for the whole account,
            // the quota had not refilled for the last listing: measured; the second early
            // listing pays since each region's quota is its own: docs/benchmarks.md.)
            // A command of a shared group (one page each, up to twenty side by side) is listed
            // early only with tokens to spare: one left for the last listing of every such
            // command, and a few for the texts (listed at every poll, the group's pages outran
            // the quota and the last listings waited for tokens: measured); and only once a
            // fifth of its hosts have answered since its last listing.
            let want = expect.map(|e| e.len() as i64).unwrap_or(targets);
            // Every invocation SSM made has ended (a host it did not target never will).
            let ended = completed >= want || (targets > 0 && completed >= targets);
            if near_end.is_none() && !ended && completed * 10 >= want * 9 {
                near_end = Some(Instant::now());
            }
            let mut have_token = false;
            let early = match shared {
                _ if ended => false,
                Some(_) => {
                    (completed - listed_at) * 5 >= want
                        && {
                            have_token = self.spare_inv_token(&rc.region, self.batch.owed.load(std::sync::atomic::Ordering::Relaxed) + TEXT_TOKENS);
                            have_token
                        }
                }
                None => listed_early < 2 && completed * 3 >= want * (listed_early + 1) && 2 * ((want + 49) / 50) <= 40,
            };
            if (want > BIG_LISTING || shared.is_some()) && !ended && last_listing.elapsed() < relist_every(want) && !early {
                continue;
            }
            listed_at = completed;
            listed_early += i64::from(early);
            // The early listing of a big command reads only the hosts that succeeded: its pages
            // come out of the same quota as the last listing's, which waited for tokens when
            // the early one read every page, or came at half (measured, docs/benchmarks.md).
            // A failed host is read by the next listing (every 5 s, or when all have ended),
            // which lists everything.
            // Never when every invocation has ended: that listing is the one the "not
            // targeted" verdict below is drawn from, and it must have read the failures too.
            let only_success = early && want > BIG_LISTING && completed < want && completed < targets;
            last_listing = Instant::now();
            last_completed = completed;
            // Results: pages of 50 with details.
            let mut token: Option<String> = None;
            loop {
                if !std::mem::take(&mut have_token) {
                    self.inv_token(&rc.region).await;
                }
                let page = self
                    .call(deadline, || {
                        rc.ssm
                            .list_command_invocations()
                            .command_id(command)
                            .details(true)
                            .max_results(50)
                            .set_filters(only_success.then(|| vec![success_filter()]))
                            .set_next_token(token.clone())
                            .send()
                    })
                    .await
                    .map_err(|e| super::ec2::sdk_error("ListCommandInvocations", e))?;
                for inv in page.command_invocations() {
                    let Some(id) = inv.instance_id() else { continue };
                    let status = inv.status().map(|s| s.as_str().to_string()).unwrap_or_default();
                    if done.contains(id) || !is_terminal(&status) || expect.is_some_and(|e| !e.contains(id)) {
                        continue;
                    }
                    let plugin = inv.command_plugins().first();
                    done.insert(id.to_string());
                    on_done(InvResult {
                        instance: id.to_string(),
                        detail: inv.status_details().unwrap_or(&status).to_string(),
                        status,
                        rc: plugin.map(|p| p.response_code()).unwrap_or(-1),
                        output: plugin.and_then(|p| p.output()).unwrap_or("").to_string(),
                    });
                }
                token = page.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
            let all = match expect {
                Some(e) => e.iter().all(|i| done.contains(i)),
                None => target_count.is_some_and(|t| done.len() as i64 >= t),
            };
            if !all && targets > 0 && completed >= targets {
                // Every invocation SSM made has ended and this listing read them all: a host
                // still missing was never targeted (no SSM agent registered for it, or it no
                // longer matches the tags). Waiting for the deadline would not bring it.
                let missing = expect.map(|e| e.iter().filter(|i| !done.contains(*i)).cloned().collect()).unwrap_or_default();
                return Ok(missing);
            }
            if all {
                if target_count.is_some_and(|t| t > done.len() as i64) {
                    // Targets we did not wait for (hosts discovery already knew offline).
                    self.cancel_command(rc, command).await;
                }
                return Ok(Vec::new());
            }
        }
    }

    /// `command`'s (completed, targets) from the region's shared progress call: the last
    /// answer when it is fresh, else one call (`ListCommands` of the region since the group
    /// went out, its pages until every command asked about is found). `None` when the command
    /// is not in it (not visible yet, or past the pages read) or the call failed: the caller
    /// asks for that command alone.
    async fn shared_counts(&self, rc: &RegionClients, p: &SharedProgress, command: &str, deadline: Instant) -> Option<(i64, i64)> {
        let mut last = p.last.lock().await;
        if let Some((at, counts)) = last.as_ref() {
            if at.elapsed() < SHARED_FRESH {
                return counts.get(command).copied();
            }
        }
        let at = Instant::now();
        let mut counts = HashMap::new();
        let mut token: Option<String> = None;
        for _ in 0..SHARED_PAGES {
            self.list_token().await;
            let filter = CommandFilter::builder().key(CommandFilterKey::InvokedAfter).value(p.since.clone()).build().expect("key and value are set");
            let page = self
                .call(deadline, || rc.ssm.list_commands().filters(filter.clone()).max_results(50).set_next_token(token.clone()).send())
                .await
                .ok()?;
            for c in page.commands() {
                if let Some(id) = c.command_id() {
                    counts.insert(id.to_string(), (c.completed_count() as i64, c.target_count() as i64));
                }
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() || counts.contains_key(command) {
                break;
            }
        }
        let mine = counts.get(command).copied();
        *last = Some((at, counts));
        mine
    }

    /// The full output (24,000 characters) of one invocation; `None` while it does not exist
    /// yet or is still running.
    pub(crate) async fn get_invocation(&self, rc: &RegionClients, command: &str, instance: &str, deadline: Instant) -> Result<Option<InvResult>, FleetError> {
        self.inv_token(&rc.region).await;
        let r = self
            .call(deadline, || rc.ssm.get_command_invocation().command_id(command).instance_id(instance).send())
            .await;
        match r {
            Ok(o) => {
                let status = o.status().map(|s| s.as_str().to_string()).unwrap_or_default();
                if !is_terminal(&status) {
                    return Ok(None);
                }
                Ok(Some(InvResult {
                    instance: instance.to_string(),
                    detail: o.status_details().unwrap_or(&status).to_string(),
                    status,
                    rc: o.response_code(),
                    output: joined(o.standard_output_content().unwrap_or(""), o.standard_error_content().unwrap_or("")),
                }))
            }
            Err(e) if code_of(&e).as_deref() == Some("InvocationDoesNotExist") => Ok(None),
            Err(e) => Err(FleetError::Other(format!("GetCommandInvocation: {}", DisplayErrorContext(&e)))),
        }
    }

    /// Wait before the next poll of `command`: `Ok(false)` at the deadline, an error on
    /// cancellation (the command is cancelled on SSM in both cases); the backoff grows 1.5x up
    /// to `cap`.
    async fn next_poll(&self, rc: &RegionClients, command: &str, deadline: Instant, polled: Instant, backoff: &mut Duration, cap: Duration) -> Result<bool, FleetError> {
        if self.cancelled() {
            self.cancel_command(rc, command).await;
            return Err(FleetError::Other("cancelled".into()));
        }
        let now = Instant::now();
        if now >= deadline {
            self.cancel_command(rc, command).await;
            return Ok(false);
        }
        *backoff = (*backoff).min(cap);
        tokio::time::sleep((polled + *backoff).saturating_duration_since(now).min(deadline - now)).await;
        *backoff = backoff.mul_f64(1.5).min(cap);
        Ok(true)
    }
}

/// Our side's rate for `List`/`GetCommandInvocation` a region (SSM: 20/s): a listing's pages
/// come at most this fast (the batcher's bucket; `relist_every` counts with it). Here, not in
/// batch.rs, which uses this module (no import circle).
pub(crate) const INV_RATE: f64 = 19.0;

/// How often a command still waiting for some hosts is listed whole for the answers that came
/// in meanwhile: every 5 s, or every two listings' worth of quota (`INV_RATE` pages a second) when
/// that is longer: a 10,000-host command's listing is 200 pages, ~10 s of quota, and listing
/// it every 5 s made the scan wait for one more whole listing at its end (measured: 26 s
/// instead of 16 s).
fn relist_every(hosts: i64) -> Duration {
    let pages = (hosts.max(0) as u64).div_ceil(50);
    Duration::from_secs(5).max(Duration::from_secs_f64(2.0 * pages as f64 / INV_RATE))
}

/// `ListCommandInvocations`' filter for the invocations that succeeded.
fn success_filter() -> CommandFilter {
    CommandFilter::builder().key(CommandFilterKey::Status).value("Success").build().expect("key and value are set")
}

/// A finished invocation's framed output, or the error it stands for.
pub(crate) fn invocation_output(host: &str, r: &InvResult) -> Result<HostOutput, FleetError> {
    if r.undelivered() {
        return Err(FleetError::Unreachable { host: host.to_string(), reason: format!("SSM {} ({})", r.status, r.detail) });
    }
    match host_script::parse_output(&r.output) {
        Ok(o) => Ok(o),
        Err(OutputError::Truncated) if r.status == "Success" => {
            Err(FleetError::Other(format!("{host}: output exceeds what SSM returns (truncated)")))
        }
        Err(e) => {
            let tail: String = r.output.chars().rev().take(400).collect::<Vec<_>>().into_iter().rev().collect();
            match r.status.as_str() {
                "TimedOut" => Err(FleetError::Timeout(format!("{host}: SSM {} ({}): {e}; output: {tail}", r.status, r.detail))),
                "Cancelled" => Err(FleetError::Other(format!("{host}: command cancelled ({})", r.detail))),
                _ => Err(FleetError::Other(format!("{host}: SSM {} ({}, exit {}): {e}; output: {tail}", r.status, r.detail, r.rc))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_big_command_is_listed_again_no_sooner_than_two_listings_of_quota() {
        assert_eq!(relist_every(50), Duration::from_secs(5));
        assert_eq!(relist_every(1_000), Duration::from_secs(5), "20 pages: the quota refills in ~1 s");
        let big = relist_every(10_000);
        assert!(big > Duration::from_secs(20) && big < Duration::from_secs(22), "200 pages: {big:?}");
    }
}
