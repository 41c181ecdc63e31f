//! The simulated AWS endpoint: an in-process HTTP connector handed to the real aws-sdk-ec2 and
//! aws-sdk-ssm clients. It answers EC2 `DescribeInstances` (Query protocol, XML, paginated) and
//! SSM `SendCommand`, `ListCommands`, `ListCommandInvocations`, `GetCommandInvocation`,
//! `DescribeInstanceInformation`, `CancelCommand` (awsJson1_1) with SSM's real limits: 50
//! instance ids per call, request-rate quotas (token buckets) answered with
//! `ThrottlingException` / `RequestLimitExceeded`, output truncation (24,000 / 8,000 characters
//! for GetCommandInvocation, 2,500 per plugin in ListCommandInvocations), eventual consistency
//! right after SendCommand, `MaxConcurrency` / `MaxErrors`, delivery and execution timeouts.
//!
//! Nothing above the SDK's HTTP layer knows it talks to this: the console's own code path is
//! the one it uses against AWS.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::world::{ScriptResult, World};

/// SSM's output limits.
pub const GET_STDOUT_LIMIT: usize = 24_000;
pub const GET_STDERR_LIMIT: usize = 8_000;
pub const LIST_OUTPUT_LIMIT: usize = 2_500;
pub const MAX_INSTANCE_IDS: usize = 50;

/// Request-rate quotas (per second, burst), as the issue gives SSM's defaults.
#[derive(Debug, Clone)]
pub struct Quotas {
    pub send_command: (f64, f64),
    pub invocations: (f64, f64),
    pub describe: (f64, f64),
    pub other: (f64, f64),
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas { send_command: (10.0, 20.0), invocations: (20.0, 40.0), describe: (10.0, 20.0), other: (20.0, 40.0) }
    }
}

/// Knobs of the simulated service (not of the fleet).
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// How long a host takes to run a command (SSM's own latency dominates).
    pub command_latency: Duration,
    /// Round trip of one API call.
    pub api_latency: Duration,
    /// How long an invocation stays invisible after SendCommand (eventual consistency).
    pub consistency_delay: Duration,
    pub quotas: Quotas,
    /// DescribeInstances page size when the caller does not ask for one.
    pub default_page: usize,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            command_latency: Duration::from_millis(200),
            api_latency: Duration::from_millis(8),
            consistency_delay: Duration::from_millis(60),
            quotas: Quotas::default(),
            default_page: 1000,
        }
    }
}

/// Counters of what the console asked (benchmarks report them).
#[derive(Debug, Default)]
pub struct Stats {
    pub calls: Mutex<BTreeMap<String, u64>>,
    pub throttled: AtomicU64,
}

impl Stats {
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.calls.lock().unwrap().clone()
    }
    pub fn total(&self) -> u64 {
        self.calls.lock().unwrap().values().sum()
    }
}

struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new((rate, burst): (f64, f64)) -> Bucket {
        Bucket { rate, burst, tokens: burst, at: Instant::now() }
    }
    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Status of one invocation, as SSM names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvState {
    pub status: &'static str,
    pub detail: &'static str,
}

#[derive(Debug, Clone)]
struct Invocation {
    instance_id: String,
    instance_name: String,
    visible_at: Instant,
    state: InvState,
    started: Option<SystemTime>,
    ended: Option<SystemTime>,
    result: Option<ScriptResult>,
}

#[derive(Debug, Clone)]
struct Command {
    id: String,
    region: String,
    comment: String,
    document: String,
    parameters: Value,
    instance_ids: Vec<String>,
    targets: Value,
    requested: SystemTime,
    max_concurrency: String,
    max_errors: String,
    timeout_seconds: i64,
    execution_timeout: Duration,
    invocations: Vec<Invocation>,
    cancelled: bool,
}

/// Runs a command's script on one instance for real instead of the [`World`]'s Rust host: the
/// AWS-on-real-containers harness (tests/aws_real.rs) runs the production host scripts with
/// `sh` as root on this machine's Docker engine. SSM's side (delivery, statuses, output caps,
/// MaxConcurrency/MaxErrors, cancellation) stays this simulation's.
#[async_trait::async_trait]
pub trait HostExec: Send + Sync {
    /// Run `script` as `AWS-RunShellScript` does; `timed_out` when it ran past `timeout` (and was
    /// stopped).
    async fn run(&self, instance: &str, script: &str, timeout: Duration) -> (ScriptResult, bool);
}

/// The simulated AWS: shared by the connector (SDK side) and the tests/benchmarks (to inject
/// faults and read counters).
pub struct SimAws {
    /// Instances whose scripts really run (see [`HostExec`]).
    executors: Mutex<HashMap<String, Arc<dyn HostExec>>>,
    pub world: Arc<World>,
    pub opts: ServiceOptions,
    pub stats: Stats,
    commands: Mutex<HashMap<String, Command>>,
    order: Mutex<Vec<String>>,
    /// By region and quota: AWS counts request rates per account and Region.
    buckets: Mutex<HashMap<(String, &'static str), Bucket>>,
    /// A throttling storm: every rate-limited call is refused until this instant.
    storm_until: Mutex<Option<Instant>>,
    seq: AtomicU64,
}

impl std::fmt::Debug for SimAws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimAws")
    }
}

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn iso(t: SystemTime) -> String {
    aws_smithy_types::DateTime::from(t)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// `50`, `10%`: how many of `total`.
fn count_of(spec: &str, total: usize) -> Option<usize> {
    if let Some(p) = spec.strip_suffix('%') {
        let p: usize = p.parse().ok()?;
        Some((total * p).div_ceil(100))
    } else {
        spec.parse().ok()
    }
}

fn valid_concurrency(s: &str) -> bool {
    let re = regex::Regex::new(r"^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$").unwrap();
    re.is_match(s)
}

fn valid_errors(s: &str) -> bool {
    let re = regex::Regex::new(r"^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$").unwrap();
    re.is_match(s)
}

type Reply = (u16, String, &'static str);

fn json_err(code: &str, msg: &str) -> Reply {
    (400, json!({"__type": code, "message": msg}).to_string(), "application/x-amz-json-1.1")
}

fn json_ok(v: Value) -> Reply {
    (200, v.to_string(), "application/x-amz-json-1.1")
}

fn xml_err(status: u16, code: &str, msg: &str) -> Reply {
    (
        status,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{}</Message></Error></Errors><RequestID>sim-request</RequestID></Response>",
            xml_escape(msg)
        ),
        "text/xml;charset=UTF-8",
    )
}

pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `application/x-www-form-urlencoded` decoding.
fn form_decode(body: &str) -> Vec<(String, String)> {
    fn dec(s: &str) -> String {
        let b = s.as_bytes();
        let mut o = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => o.push(b' '),
                b'%' if i + 2 < b.len() => {
                    match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                        Ok(v) => {
                            o.push(v);
                            i += 2;
                        }
                        Err(_) => o.push(b'%'),
                    }
                }
                c => o.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&o).into_owned()
    }
    body.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (dec(k), dec(v))
    }).collect()
}

impl SimAws {
    pub fn new(world: Arc<World>, opts: ServiceOptions) -> Arc<SimAws> {
        Arc::new(SimAws {
            executors: Mutex::new(HashMap::new()),
            world,
            opts,
            stats: Stats::default(),
            commands: Mutex::new(HashMap::new()),
            order: Mutex::new(Vec::new()),
            buckets: Mutex::new(HashMap::new()),
            storm_until: Mutex::new(None),
            seq: AtomicU64::new(1),
        })
    }

    /// The HTTP client to give the SDK config.
    pub fn http_client(self: &Arc<Self>) -> SimHttpClient {
        SimHttpClient { aws: self.clone() }
    }

    /// Run the scripts sent to `instance` with `exec` (the instance must be in the world).
    pub fn run_on(&self, instance: &str, exec: Arc<dyn HostExec>) {
        self.executors.lock().unwrap().insert(instance.to_string(), exec);
    }

    /// Refuse every rate-limited call for `d` (a throttling storm).
    pub fn throttle_storm(&self, d: Duration) {
        *self.storm_until.lock().unwrap() = Some(Instant::now() + d);
    }

    fn count(&self, op: &str) {
        *self.stats.calls.lock().unwrap().entry(op.to_string()).or_default() += 1;
    }

    fn admit(&self, op: &str, region: &str) -> bool {
        if let Some(until) = *self.storm_until.lock().unwrap() {
            if Instant::now() < until {
                self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                return false;
            }
        }
        let q = &self.opts.quotas;
        let (key, rate): (&'static str, (f64, f64)) = match op {
            "SendCommand" => ("send", q.send_command),
            "ListCommandInvocations" | "GetCommandInvocation" => ("inv", q.invocations),
            "DescribeInstances" => ("ec2-describe", q.describe),
            "DescribeInstanceInformation" => ("ssm-describe", q.describe),
            _ => ("other", q.other),
        };
        let ok = self.buckets.lock().unwrap().entry((region.to_string(), key)).or_insert_with(|| Bucket::new(rate)).take();
        if !ok {
            self.stats.throttled.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    async fn handle(self: Arc<Self>, req: HttpRequest) -> HttpResponse {
        tokio::time::sleep(self.opts.api_latency).await;
        let host = req.headers().get("host").map(str::to_string).unwrap_or_else(|| {
            req.uri().split("//").nth(1).and_then(|r| r.split('/').next()).unwrap_or("").to_string()
        });
        let region = region_of(&host, req.headers().get("authorization").unwrap_or(""));
        let body = req.body().bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
        let target = req.headers().get("x-amz-target").map(str::to_string);
        let (status, text, ctype) = match target {
            Some(t) => {
                let op = t.rsplit('.').next().unwrap_or("").to_string();
                self.count(&op);
                let input: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                self.ssm(&op, &region, &input)
            }
            None => {
                let params = form_decode(&body);
                let action = params.iter().find(|(k, _)| k == "Action").map(|(_, v)| v.clone()).unwrap_or_default();
                self.count(&action);
                self.ec2(&action, &region, &params)
            }
        };
        let mut rsp = HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(text));
        rsp.headers_mut().insert("content-type", ctype);
        rsp.headers_mut().insert("x-amzn-requestid", format!("sim-{}", self.seq.fetch_add(1, Ordering::Relaxed)));
        rsp
    }

    // ----------------------------------------------------------------------------------------
    // EC2

    fn ec2(&self, action: &str, region: &str, p: &[(String, String)]) -> Reply {
        if action != "DescribeInstances" {
            return xml_err(400, "InvalidAction", &format!("The action {action} is not valid for this web service."));
        }
        if !self.admit(action, region) {
            return xml_err(503, "RequestLimitExceeded", "Request limit exceeded.");
        }
        let get = |k: &str| p.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let ids: Vec<String> = p.iter().filter(|(k, _)| k.starts_with("InstanceId.")).map(|(_, v)| v.clone()).collect();
        let max: Option<usize> = get("MaxResults").and_then(|v| v.parse().ok());
        if max.is_some() && !ids.is_empty() {
            return xml_err(400, "InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults");
        }
        if let Some(m) = max {
            if !(5..=1000).contains(&m) {
                return xml_err(400, "InvalidParameterValue", &format!("Value ( {m} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000."));
            }
        }
        // Filters: Filter.N.Name / Filter.N.Value.M
        let mut filters: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
        for (k, v) in p {
            let Some(rest) = k.strip_prefix("Filter.") else { continue };
            let (n, field) = rest.split_once('.').unwrap_or((rest, ""));
            let e = filters.entry(n.to_string()).or_default();
            if field == "Name" {
                e.0 = v.clone();
            } else if field.starts_with("Value.") {
                e.1.push(v.clone());
            }
        }
        let filters: Vec<(String, Vec<String>)> = filters.into_values().collect();
        let w = self.world.snapshot_hosts();
        let known: Vec<&super::world::SimHost> = w.iter().filter(|h| h.region == region).collect();
        for id in &ids {
            if !known.iter().any(|h| &h.instance_id == id) {
                return xml_err(400, "InvalidInstanceID.NotFound", &format!("The instance ID '{id}' does not exist"));
            }
        }
        let matches = |h: &super::world::SimHost| {
            (ids.is_empty() || ids.contains(&h.instance_id))
                && filters.iter().all(|(name, vals)| {
                    if let Some(tag) = name.strip_prefix("tag:") {
                        h.tags.get(tag).is_some_and(|v| vals.iter().any(|x| glob(x, v)))
                    } else if name == "tag-key" {
                        vals.iter().any(|k| h.tags.contains_key(k))
                    } else if name == "instance-state-name" {
                        vals.contains(&h.ec2_state)
                    } else if name == "instance-id" {
                        vals.contains(&h.instance_id)
                    } else {
                        true
                    }
                })
        };
        // One reservation per host group (hosts launched together share one).
        let mut reservations: Vec<(String, Vec<&super::world::SimHost>)> = Vec::new();
        for h in known.into_iter().filter(|h| matches(h)) {
            match reservations.iter_mut().find(|(r, _)| *r == h.reservation) {
                Some((_, v)) => v.push(h),
                None => reservations.push((h.reservation.clone(), vec![h])),
            }
        }
        // Pages count instances, never splitting a reservation (as EC2 does).
        let start: usize = get("NextToken").and_then(|t| t.strip_prefix("sim-").and_then(|n| n.parse().ok())).unwrap_or(0);
        let page = max.unwrap_or(if ids.is_empty() { self.opts.default_page } else { usize::MAX });
        let mut out = String::new();
        let mut n = 0;
        let mut next = None;
        for (i, (rid, hosts)) in reservations.iter().enumerate().skip(start) {
            if n > 0 && n + hosts.len() > page {
                next = Some(i);
                break;
            }
            n += hosts.len();
            out.push_str(&format!("<item><reservationId>{rid}</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet>"));
            for h in hosts {
                out.push_str(&instance_xml(h));
            }
            out.push_str("</instancesSet></item>");
        }
        let next = next.map(|i| format!("<nextToken>sim-{i}</nextToken>")).unwrap_or_default();
        (
            200,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>sim</requestId><reservationSet>{out}</reservationSet>{next}</DescribeInstancesResponse>"
            ),
            "text/xml;charset=UTF-8",
        )
    }

    // ----------------------------------------------------------------------------------------
    // SSM

    fn ssm(self: &Arc<Self>, op: &str, region: &str, input: &Value) -> Reply {
        match op {
            "SendCommand" | "ListCommands" | "ListCommandInvocations" | "GetCommandInvocation"
            | "DescribeInstanceInformation" | "CancelCommand" => {}
            _ => return json_err("UnknownOperationException", &format!("{op} is not simulated")),
        }
        if !self.admit(op, region) {
            return json_err("ThrottlingException", "Rate exceeded");
        }
        match op {
            "SendCommand" => self.send_command(region, input),
            "ListCommands" => self.list_commands(region, input),
            "ListCommandInvocations" => self.list_invocations(input),
            "GetCommandInvocation" => self.get_invocation(input),
            "DescribeInstanceInformation" => self.describe_information(region, input),
            "CancelCommand" => self.cancel(input),
            _ => unreachable!(),
        }
    }

    fn describe_information(&self, region: &str, input: &Value) -> Reply {
        let max = input["MaxResults"].as_u64().unwrap_or(50) as usize;
        if !(5..=50).contains(&max) {
            return json_err("ValidationException", "1 validation error detected: Value at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 50");
        }
        let mut ids: HashSet<String> = HashSet::new();
        let mut pings: Option<HashSet<String>> = None;
        for f in input["Filters"].as_array().into_iter().flatten() {
            let values = f["Values"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from));
            match f["Key"].as_str() {
                Some("InstanceIds") => ids.extend(values),
                Some("PingStatus") => pings.get_or_insert_with(HashSet::new).extend(values),
                Some(k) => return json_err("InvalidInstanceInformationFilterValue", &format!("filter key {k} is not simulated")),
                None => return json_err("ValidationException", "a filter without a Key"),
            }
        }
        let hosts: Vec<_> = self
            .world
            .snapshot_hosts()
            .into_iter()
            .filter(|h| h.region == region && h.ssm_managed && (ids.is_empty() || ids.contains(&h.instance_id)))
            .filter(|h| pings.as_ref().is_none_or(|p| p.contains(h.ping_status())))
            .collect();
        let start: usize = input["NextToken"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
        let list: Vec<Value> = hosts
            .iter()
            .skip(start)
            .take(max)
            .map(|h| {
                json!({
                    "InstanceId": h.instance_id,
                    "PingStatus": h.ping_status(),
                    "LastPingDateTime": epoch(SystemTime::now()) - if h.online { 30.0 } else { 3600.0 },
                    "AgentVersion": h.agent_version,
                    "IsLatestVersion": false,
                    "PlatformType": "Linux",
                    "PlatformName": "Amazon Linux",
                    "PlatformVersion": "2023",
                    "ResourceType": "EC2Instance",
                    "ComputerName": format!("{}.{}.compute.internal", h.name, h.region),
                })
            })
            .collect();
        let mut out = json!({ "InstanceInformationList": list });
        if start + max < hosts.len() {
            out["NextToken"] = json!((start + max).to_string());
        }
        json_ok(out)
    }

    fn send_command(self: &Arc<Self>, region: &str, input: &Value) -> Reply {
        let doc = input["DocumentName"].as_str().unwrap_or("");
        if doc != "AWS-RunShellScript" {
            return json_err("InvalidDocument", &format!("Document {doc} does not exist in your account"));
        }
        let ids: Vec<String> =
            input["InstanceIds"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect();
        let targets = input["Targets"].as_array().cloned().unwrap_or_default();
        if ids.len() > MAX_INSTANCE_IDS {
            return json_err(
                "ValidationException",
                &format!("1 validation error detected: Value '{:?}' at 'instanceIds' failed to satisfy constraint: Member must have length less than or equal to 50", ids.len()),
            );
        }
        if ids.is_empty() == targets.is_empty() {
            return json_err("InvalidParameters", "exactly one of InstanceIds and Targets must be given");
        }
        if targets.len() > 5 {
            return json_err("ValidationException", "Targets: Member must have length less than or equal to 5");
        }
        let comment = input["Comment"].as_str().unwrap_or("").to_string();
        if comment.chars().count() > 100 {
            return json_err("ValidationException", "Comment: Member must have length less than or equal to 100");
        }
        let max_concurrency = input["MaxConcurrency"].as_str().unwrap_or("50").to_string();
        let max_errors = input["MaxErrors"].as_str().unwrap_or("0").to_string();
        if !valid_concurrency(&max_concurrency) {
            return json_err("ValidationException", &format!("Value '{max_concurrency}' at 'maxConcurrency' failed to satisfy constraint"));
        }
        if !valid_errors(&max_errors) {
            return json_err("ValidationException", &format!("Value '{max_errors}' at 'maxErrors' failed to satisfy constraint"));
        }
        let timeout_seconds = input["TimeoutSeconds"].as_i64().unwrap_or(3600);
        if !(30..=2_592_000).contains(&timeout_seconds) {
            return json_err("ValidationException", "TimeoutSeconds must be between 30 and 2592000");
        }
        let params = input["Parameters"].clone();
        let exec_timeout: u64 = params["executionTimeout"][0].as_str().and_then(|s| s.parse().ok()).unwrap_or(3600);
        let hosts = self.world.snapshot_hosts();
        let in_region: Vec<_> = hosts.iter().filter(|h| h.region == region).collect();
        let mut resolved: Vec<(String, String)> = Vec::new();
        if !ids.is_empty() {
            for id in &ids {
                let name = in_region.iter().find(|h| &h.instance_id == id).map(|h| h.name.clone()).unwrap_or_default();
                resolved.push((id.clone(), name));
            }
        } else {
            for t in &targets {
                let key = t["Key"].as_str().unwrap_or("");
                let vals: Vec<&str> = t["Values"].as_array().into_iter().flatten().filter_map(|v| v.as_str()).collect();
                for h in &in_region {
                    let hit = if let Some(tag) = key.strip_prefix("tag:") {
                        h.tags.get(tag).is_some_and(|v| vals.contains(&v.as_str()))
                    } else if key == "tag-key" {
                        vals.iter().any(|k| h.tags.contains_key(*k))
                    } else if key == "InstanceIds" {
                        vals.contains(&h.instance_id.as_str())
                    } else {
                        false
                    };
                    // SSM targets only running managed nodes it knows.
                    if hit && h.ssm_managed && h.ec2_state == "running" && !resolved.iter().any(|(i, _)| *i == h.instance_id) {
                        resolved.push((h.instance_id.clone(), h.name.clone()));
                    }
                }
            }
        }
        let id = format!("{:08x}-sim0-4000-8000-{:012x}", self.seq.fetch_add(1, Ordering::Relaxed), self.world.seed_hash() & 0xffff_ffff_ffff);
        let now = Instant::now();
        let cmd = Command {
            id: id.clone(),
            region: region.to_string(),
            comment,
            document: doc.to_string(),
            parameters: params,
            instance_ids: ids.clone(),
            targets: Value::Array(targets.clone()),
            requested: SystemTime::now(),
            max_concurrency,
            max_errors,
            timeout_seconds,
            execution_timeout: Duration::from_secs(exec_timeout),
            invocations: resolved
                .iter()
                .map(|(i, n)| Invocation {
                    instance_id: i.clone(),
                    instance_name: n.clone(),
                    visible_at: now + self.opts.consistency_delay,
                    state: InvState { status: "Pending", detail: "Pending" },
                    started: None,
                    ended: None,
                    result: None,
                })
                .collect(),
            cancelled: false,
        };
        let out = json!({ "Command": self.command_json(&cmd) });
        self.commands.lock().unwrap().insert(id.clone(), cmd);
        self.order.lock().unwrap().push(id.clone());
        let me = self.clone();
        tokio::spawn(super::scoped(async move { me.run_command(id).await }));
        json_ok(out)
    }

    fn command_json(&self, c: &Command) -> Value {
        let done = |s: &str| matches!(s, "Success" | "Failed" | "TimedOut" | "Cancelled");
        let completed = c.invocations.iter().filter(|i| done(i.state.status)).count();
        let errors = c.invocations.iter().filter(|i| matches!(i.state.status, "Failed" | "TimedOut") && i.state.detail != "DeliveryTimedOut").count();
        let dto = c.invocations.iter().filter(|i| i.state.detail == "DeliveryTimedOut").count();
        let status = if c.cancelled && completed == c.invocations.len() {
            "Cancelled"
        } else if completed < c.invocations.len() {
            if c.invocations.iter().all(|i| i.state.status == "Pending") { "Pending" } else { "InProgress" }
        } else if errors + dto == 0 {
            "Success"
        } else if errors > 0 {
            "Failed"
        } else {
            "TimedOut"
        };
        json!({
            "CommandId": c.id,
            "DocumentName": c.document,
            "DocumentVersion": "$DEFAULT",
            "Comment": c.comment,
            "Parameters": c.parameters,
            "InstanceIds": c.instance_ids,
            "Targets": c.targets,
            "RequestedDateTime": epoch(c.requested),
            "Status": status,
            "StatusDetails": status,
            "MaxConcurrency": c.max_concurrency,
            "MaxErrors": c.max_errors,
            "TargetCount": c.invocations.len(),
            "CompletedCount": completed,
            "ErrorCount": errors,
            "DeliveryTimedOutCount": dto,
            "TimeoutSeconds": c.timeout_seconds,
        })
    }

    /// SSM's fan-out: at most MaxConcurrency at once; past MaxErrors no further target.
    async fn run_command(self: Arc<Self>, id: String) {
        let (n, conc, max_err, exec_timeout, delivery_timeout, script) = {
            let cmds = self.commands.lock().unwrap();
            let c = &cmds[&id];
            let n = c.invocations.len();
            let script = c.parameters["commands"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join("\n");
            (
                n,
                count_of(&c.max_concurrency, n).unwrap_or(50).max(1),
                count_of(&c.max_errors, n).unwrap_or(0),
                c.execution_timeout,
                Duration::from_secs(c.timeout_seconds as u64),
                Arc::new(script),
            )
        };
        let payload = Arc::new(crate::fleet::aws::host_script::decode(&script));
        let sem = Arc::new(tokio::sync::Semaphore::new(conc));
        let errors = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for k in 0..n {
            let permit = sem.clone().acquire_owned().await.unwrap();
            let stop = {
                let cmds = self.commands.lock().unwrap();
                cmds[&id].cancelled
            } || errors.load(Ordering::SeqCst) as usize > max_err;
            if stop {
                drop(permit);
                let mut cmds = self.commands.lock().unwrap();
                let inv = &mut cmds.get_mut(&id).unwrap().invocations[k];
                inv.state = InvState { status: "Cancelled", detail: "Cancelled" };
                inv.ended = Some(SystemTime::now());
                continue;
            }
            let me = self.clone();
            let id2 = id.clone();
            let errs = errors.clone();
            let script = script.clone();
            let payload = payload.clone();
            tasks.push(tokio::spawn(super::scoped(async move {
                let _permit = permit;
                let ok = me.run_invocation(&id2, k, &script, &payload, exec_timeout, delivery_timeout).await;
                if !ok {
                    errs.fetch_add(1, Ordering::SeqCst);
                }
            })));
        }
        for t in tasks {
            let _ = t.await;
        }
    }

    fn set_state(&self, id: &str, k: usize, f: impl FnOnce(&mut Invocation)) {
        let mut cmds = self.commands.lock().unwrap();
        if let Some(c) = cmds.get_mut(id) {
            f(&mut c.invocations[k]);
        }
    }

    fn cancelled(&self, id: &str) -> bool {
        self.commands.lock().unwrap().get(id).is_some_and(|c| c.cancelled)
    }

    /// One host: delivery, execution, result. Returns false when it counts as an error.
    async fn run_invocation(
        &self,
        id: &str,
        k: usize,
        script: &str,
        payload: &Result<crate::fleet::aws::host_script::Payload, String>,
        exec_timeout: Duration,
        delivery_timeout: Duration,
    ) -> bool {
        let instance = {
            let cmds = self.commands.lock().unwrap();
            cmds[id].invocations[k].instance_id.clone()
        };
        let Some(host) = self.world.host(&instance) else {
            self.set_state(id, k, |i| {
                i.state = InvState { status: "Failed", detail: "Undeliverable" };
                i.ended = Some(SystemTime::now());
            });
            return true; // undeliverable does not count against MaxErrors
        };
        if !host.ssm_managed || host.ec2_state != "running" {
            self.set_state(id, k, |i| {
                i.state = InvState { status: "Failed", detail: "Undeliverable" };
                i.ended = Some(SystemTime::now());
            });
            return true;
        }
        let lat = self.world.latency_for(&instance, self.opts.command_latency);
        // Delivery: a host that lost its connection never picks the command up.
        if !host.online {
            let wait = delivery_timeout.min(self.world.offline_delivery_wait());
            let t0 = Instant::now();
            while t0.elapsed() < wait {
                if self.cancelled(id) {
                    self.set_state(id, k, |i| i.state = InvState { status: "Cancelled", detail: "Cancelled" });
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(20).min(wait)).await;
            }
            self.set_state(id, k, |i| {
                i.state = InvState { status: "TimedOut", detail: "DeliveryTimedOut" };
                i.ended = Some(SystemTime::now());
            });
            return true;
        }
        // A host's time is its own, counted from delivery: the simulator computing a thousand
        // hosts' answers on two cores must not make each host slower than its latency says
        // (real hosts run side by side); the simulator's own time counts only where it exceeds
        // the host's.
        let delivered = Instant::now();
        tokio::time::sleep(lat / 4).await;
        if self.cancelled(id) {
            self.set_state(id, k, |i| i.state = InvState { status: "Cancelled", detail: "Cancelled" });
            return true;
        }
        self.set_state(id, k, |i| {
            i.state = InvState { status: "InProgress", detail: "InProgress" };
            i.started = Some(SystemTime::now());
        });
        let exec = self.executors.lock().unwrap().get(&instance).cloned();
        let t0 = delivered + lat / 4;
        let (result, run_for) = match &exec {
            Some(x) => {
                // Really run: the time is spent already; a run past the limit was stopped.
                let (r, timed_out) = x.run(&instance, script, exec_timeout).await;
                (r, if timed_out { exec_timeout + Duration::from_millis(1) } else { Duration::ZERO })
            }
            None => {
                let r = self.world.execute_decoded(&instance, payload).await;
                let run_for = lat * 3 / 4 + r.extra_time;
                (r, run_for)
            }
        };
        while t0.elapsed() < run_for.min(exec_timeout) && exec.is_none() {
            if self.cancelled(id) {
                self.set_state(id, k, |i| i.state = InvState { status: "Cancelling", detail: "Cancelling" });
                tokio::time::sleep(Duration::from_millis(30)).await;
                self.set_state(id, k, |i| {
                    i.state = InvState { status: "Cancelled", detail: "Cancelled" };
                    i.ended = Some(SystemTime::now());
                    i.result = Some(ScriptResult { stdout: String::new(), ..result.clone() });
                });
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25).min(run_for)).await;
        }
        // A lost answer (fault knob): the work is done, SSM reports the command timed out.
        let timed_out = run_for > exec_timeout || result.lost;
        let ok = result.rc == 0 && !timed_out;
        self.set_state(id, k, |i| {
            i.state = if timed_out {
                InvState { status: "TimedOut", detail: "ExecutionTimedOut" }
            } else if result.rc == 0 {
                InvState { status: "Success", detail: "Success" }
            } else {
                InvState { status: "Failed", detail: "Failed" }
            };
            i.ended = Some(SystemTime::now());
            let mut r = result.clone();
            if timed_out {
                r.rc = -1;
                r.stdout = r.stdout.chars().take(r.stdout.len() / 2).collect();
            }
            i.result = Some(r);
        });
        ok
    }

    /// One command by id, or the region's commands newest first (SSM's order), in pages of
    /// `MaxResults` (1-50), narrowed by the `InvokedAfter` filter (an RFC 3339 time).
    fn list_commands(&self, region: &str, input: &Value) -> Reply {
        let cmds = self.commands.lock().unwrap();
        if let Some(id) = input["CommandId"].as_str() {
            return match cmds.get(id) {
                Some(c) => json_ok(json!({ "Commands": [self.command_json(c)] })),
                None => json_err("InvalidCommandId", "no such command"),
            };
        }
        let max = input["MaxResults"].as_u64().unwrap_or(50) as usize;
        if !(1..=50).contains(&max) {
            return json_err("ValidationException", "MaxResults: Member must have value less than or equal to 50");
        }
        let mut after: Option<SystemTime> = None;
        for f in input["Filters"].as_array().into_iter().flatten() {
            match (f["key"].as_str(), f["value"].as_str()) {
                (Some("InvokedAfter"), Some(v)) if after.is_none() => match humantime::parse_rfc3339_weak(v) {
                    Ok(t) => after = Some(t),
                    Err(_) => return json_err("InvalidFilterValue", &format!("InvokedAfter {v:?} is not a time")),
                },
                (Some(k), _) => return json_err("InvalidFilterKey", &format!("filter {k} is not simulated (or given twice)")),
                (None, _) => return json_err("ValidationException", "a filter without a key"),
            }
        }
        let order = self.order.lock().unwrap();
        let all: Vec<&Command> = order
            .iter()
            .rev()
            .filter_map(|i| cmds.get(i))
            .filter(|c| c.region == region && after.is_none_or(|a| c.requested >= a))
            .collect();
        let start: usize = input["NextToken"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
        let list: Vec<Value> = all.iter().skip(start).take(max).map(|c| self.command_json(c)).collect();
        let mut out = json!({ "Commands": list });
        if start + max < all.len() {
            out["NextToken"] = json!((start + max).to_string());
        }
        json_ok(out)
    }

    fn plugin_output(r: &Option<ScriptResult>) -> String {
        let Some(r) = r else { return String::new() };
        let mut s = r.stdout.clone();
        if !r.stderr.is_empty() {
            s.push_str("\n----------ERROR-------\n");
            s.push_str(&r.stderr);
        }
        s.chars().take(LIST_OUTPUT_LIMIT).collect()
    }

    fn list_invocations(&self, input: &Value) -> Reply {
        let max = input["MaxResults"].as_u64().unwrap_or(50) as usize;
        if !(1..=50).contains(&max) {
            return json_err("ValidationException", "MaxResults: Member must have value less than or equal to 50");
        }
        let details = input["Details"].as_bool().unwrap_or(false);
        let cid = input["CommandId"].as_str();
        let iid = input["InstanceId"].as_str();
        // CommandFilter: `Status` is simulated (one status a filter, as SSM takes it).
        let mut status = None;
        for f in input["Filters"].as_array().into_iter().flatten() {
            match (f["key"].as_str(), f["value"].as_str()) {
                (Some("Status"), Some(v)) if status.is_none() => status = Some(v.to_string()),
                (Some(k), _) => return json_err("InvalidFilterKey", &format!("filter {k} is not simulated (or given twice)")),
                (None, _) => return json_err("ValidationException", "a filter without a key"),
            }
        }
        let now = Instant::now();
        let cmds = self.commands.lock().unwrap();
        let mut all: Vec<(&Command, &Invocation)> = Vec::new();
        let order = self.order.lock().unwrap();
        for id in order.iter().rev() {
            if cid.is_some_and(|c| c != id) {
                continue;
            }
            let c = &cmds[id];
            for inv in &c.invocations {
                if inv.visible_at <= now && iid.is_none_or(|i| i == inv.instance_id) && status.as_ref().is_none_or(|s| s == inv.state.status) {
                    all.push((c, inv));
                }
            }
        }
        let start: usize = input["NextToken"].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
        let page: Vec<Value> = all
            .iter()
            .skip(start)
            .take(max)
            .map(|(c, i)| {
                let mut v = json!({
                    "CommandId": c.id,
                    "InstanceId": i.instance_id,
                    "InstanceName": i.instance_name,
                    "Comment": c.comment,
                    "DocumentName": c.document,
                    "DocumentVersion": "$DEFAULT",
                    "RequestedDateTime": epoch(c.requested),
                    "Status": i.state.status,
                    "StatusDetails": i.state.detail,
                    "TraceOutput": "",
                });
                if details {
                    let rc = i.result.as_ref().map(|r| r.rc).unwrap_or(-1);
                    let mut plugin = json!({
                        "Name": "aws:runShellScript",
                        "Status": i.state.status,
                        "StatusDetails": i.state.detail,
                        "ResponseCode": rc,
                        "Output": Self::plugin_output(&i.result),
                    });
                    if let Some(t) = i.started {
                        plugin["ResponseStartDateTime"] = json!(epoch(t));
                    }
                    if let Some(t) = i.ended {
                        plugin["ResponseFinishDateTime"] = json!(epoch(t));
                    }
                    v["CommandPlugins"] = json!([plugin]);
                }
                v
            })
            .collect();
        let mut out = json!({ "CommandInvocations": page });
        if start + max < all.len() {
            out["NextToken"] = json!((start + max).to_string());
        }
        json_ok(out)
    }

    fn get_invocation(&self, input: &Value) -> Reply {
        let cid = input["CommandId"].as_str().unwrap_or("");
        let iid = input["InstanceId"].as_str().unwrap_or("");
        let cmds = self.commands.lock().unwrap();
        let Some(c) = cmds.get(cid) else {
            return json_err("InvalidCommandId", "");
        };
        let Some(i) = c.invocations.iter().find(|i| i.instance_id == iid && i.visible_at <= Instant::now()) else {
            return json_err("InvocationDoesNotExist", "");
        };
        let r = i.result.clone().unwrap_or(ScriptResult { rc: -1, ..Default::default() });
        let mut v = json!({
            "CommandId": c.id,
            "InstanceId": i.instance_id,
            "Comment": c.comment,
            "DocumentName": c.document,
            "DocumentVersion": "$DEFAULT",
            "PluginName": "aws:runShellScript",
            "ResponseCode": if i.result.is_some() { r.rc } else { -1 },
            "Status": i.state.status,
            "StatusDetails": i.state.detail,
            "StandardOutputContent": r.stdout.chars().take(GET_STDOUT_LIMIT).collect::<String>(),
            "StandardOutputUrl": "",
            "StandardErrorContent": r.stderr.chars().take(GET_STDERR_LIMIT).collect::<String>(),
            "StandardErrorUrl": "",
        });
        if let Some(t) = i.started {
            v["ExecutionStartDateTime"] = json!(iso(t));
        }
        if let Some(t) = i.ended {
            v["ExecutionEndDateTime"] = json!(iso(t));
            if let Some(s) = i.started {
                v["ExecutionElapsedTime"] = json!(format!("PT{:.3}S", t.duration_since(s).unwrap_or_default().as_secs_f64()));
            }
        }
        json_ok(v)
    }

    fn cancel(&self, input: &Value) -> Reply {
        let cid = input["CommandId"].as_str().unwrap_or("");
        let mut cmds = self.commands.lock().unwrap();
        let Some(c) = cmds.get_mut(cid) else {
            return json_err("InvalidCommandId", "");
        };
        c.cancelled = true;
        for i in &mut c.invocations {
            if i.state.status == "Pending" || i.state.status == "Delayed" {
                i.state = InvState { status: "Cancelled", detail: "Cancelled" };
                i.ended = Some(SystemTime::now());
            }
        }
        json_ok(json!({}))
    }
}

fn instance_xml(h: &super::world::SimHost) -> String {
    let code = if h.ec2_state == "running" { 16 } else if h.ec2_state == "stopped" { 80 } else { 0 };
    let tags: String = h
        .tags
        .iter()
        .map(|(k, v)| format!("<item><key>{}</key><value>{}</value></item>", xml_escape(k), xml_escape(v)))
        .collect();
    format!(
        "<item><instanceId>{}</instanceId><imageId>ami-0sim</imageId><instanceState><code>{code}</code><name>{}</name></instanceState>\
<privateDnsName>ip-10-0-0-1.{}.compute.internal</privateDnsName><instanceType>m7i.xlarge</instanceType>\
<placement><availabilityZone>{}a</availabilityZone><tenancy>default</tenancy></placement><platformDetails>Linux/UNIX</platformDetails>\
<tagSet>{tags}</tagSet></item>",
        h.instance_id, h.ec2_state, h.region, h.region
    )
}

/// `*` wildcards, as EC2 filter values allow.
fn glob(pat: &str, s: &str) -> bool {
    if !pat.contains('*') {
        return pat == s;
    }
    let parts: Vec<&str> = pat.split('*').collect();
    let mut rest = s;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            if !rest.starts_with(p) {
                return false;
            }
            rest = &rest[p.len()..];
        } else if i == parts.len() - 1 {
            return rest.ends_with(p);
        } else if let Some(k) = rest.find(p) {
            rest = &rest[k + p.len()..];
        } else {
            return false;
        }
    }
    true
}

/// The region of a request: the endpoint host (`ssm.eu-west-1.amazonaws.com`), else the
/// SigV4 credential scope (custom endpoints).
fn region_of(host: &str, auth: &str) -> String {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.len() >= 3 && (parts[0] == "ssm" || parts[0] == "ec2") {
        return parts[1].to_string();
    }
    // Credential=AKID/20250101/us-east-2/ssm/aws4_request
    if let Some(c) = auth.split("Credential=").nth(1) {
        if let Some(r) = c.split('/').nth(2) {
            return r.to_string();
        }
    }
    "us-east-2".to_string()
}

/// The SDK-facing side: an `HttpClient` whose connector is the simulated AWS.
#[derive(Debug, Clone)]
pub struct SimHttpClient {
    aws: Arc<SimAws>,
}

#[derive(Debug, Clone)]
struct SimConnector {
    aws: Arc<SimAws>,
}

impl HttpConnector for SimConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let aws = self.aws.clone();
        HttpConnectorFuture::new(super::scoped(async move { Ok(aws.handle(request).await) }))
    }
}

impl HttpClient for SimHttpClient {
    fn http_connector(&self, _settings: &HttpConnectorSettings, _components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(SimConnector { aws: self.aws.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_specs() {
        assert_eq!(count_of("100%", 1000), Some(1000));
        assert_eq!(count_of("10%", 15), Some(2));
        assert_eq!(count_of("7", 15), Some(7));
        assert!(valid_concurrency("100%") && valid_concurrency("50") && !valid_concurrency("0"));
        assert!(valid_errors("0") && valid_errors("5%") && !valid_errors("101%"));
    }

    #[test]
    fn each_region_has_its_own_request_rate() {
        let sim = SimAws::new(Arc::new(crate::sim::world::World::new(crate::sim::demo::fleet(1, 1), None)), ServiceOptions::default());
        let admitted = |region: &str| (0..100).filter(|_| sim.admit("ListCommandInvocations", region)).count();
        let east = admitted("us-east-2");
        assert!((40..45).contains(&east), "the burst, and what refilled meanwhile: {east}");
        assert!(!sim.admit("GetCommandInvocation", "us-east-2"), "one quota for both calls");
        assert!((40..45).contains(&admitted("us-west-2")), "another region's quota is its own");
        assert!(sim.admit("SendCommand", "us-east-2"), "another call's quota is its own");
    }

    #[test]
    fn globbing() {
        assert!(glob("work*", "workspace") && glob("*space", "workspace") && glob("w*k*e", "workspace"));
        assert!(!glob("work", "workspace"));
    }

    #[test]
    fn form() {
        let p = form_decode("Action=DescribeInstances&Filter.1.Name=tag%3ARole&Filter.1.Value.1=a+b");
        assert_eq!(p[1], ("Filter.1.Name".into(), "tag:Role".into()));
        assert_eq!(p[2].1, "a b");
    }
}
