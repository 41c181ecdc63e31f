//! SSM status and timing sequences, against the simulated AWS through the real SDK client and
//! through the AWS backend: InvocationDoesNotExist -> InProgress -> Success, Failed with
//! partial output, TimedOut, Undeliverable, delivery timeout, a throttling storm, truncated
//! output, more than 50 hosts, MaxConcurrency.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use codex_fleet::fleet::aws::host_script::{self, Item, Payload};
use codex_fleet::fleet::aws::AwsOptions;
use codex_fleet::sim::{demo_fleet_with_sim, DemoOptions};
use codex_fleet::fleet::{Fleet, FleetError};
use codex_fleet::scan::scan;
use codex_fleet::sim;

fn opts(latency_ms: u64, scale: Option<(usize, usize)>) -> DemoOptions {
    DemoOptions { latency: Duration::from_millis(latency_ms), scale, ..Default::default() }
}

fn client(s: &std::sync::Arc<sim::aws::SimAws>) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&sim::sdk_config(s, 1))
}

fn online_host(s: &sim::aws::SimAws) -> sim::world::SimHost {
    s.world.snapshot_hosts().into_iter().find(|h| h.online && h.region == "us-east-2" && h.ec2_state == "running").unwrap()
}

fn script(items: Vec<Item>) -> String {
    host_script::render(&Payload { run: "t".into(), z: false, items })
}

async fn send(c: &aws_sdk_ssm::Client, ids: &[String], script: String, exec_timeout: &str) -> Result<String, String> {
    let mut p = HashMap::new();
    p.insert("commands".to_string(), vec![script]);
    p.insert("executionTimeout".to_string(), vec![exec_timeout.to_string()]);
    c.send_command()
        .document_name("AWS-RunShellScript")
        .set_instance_ids(Some(ids.to_vec()))
        .set_parameters(Some(p))
        .send()
        .await
        .map(|o| o.command().unwrap().command_id().unwrap().to_string())
        .map_err(|e| format!("{}", aws_smithy_types::error::display::DisplayErrorContext(&e)))
}

/// Statuses seen by polling GetCommandInvocation until a terminal one.
async fn statuses(c: &aws_sdk_ssm::Client, id: &str, instance: &str) -> (Vec<String>, aws_sdk_ssm::operation::get_command_invocation::GetCommandInvocationOutput) {
    let mut seen: Vec<String> = Vec::new();
    loop {
        match c.get_command_invocation().command_id(id).instance_id(instance).send().await {
            Ok(o) => {
                let s = o.status().unwrap().as_str().to_string();
                if seen.last() != Some(&s) {
                    seen.push(s.clone());
                }
                if matches!(s.as_str(), "Success" | "Failed" | "TimedOut" | "Cancelled") {
                    return (seen, o);
                }
            }
            Err(e) => {
                let code = e.as_service_error().and_then(|s| aws_smithy_types::error::metadata::ProvideErrorMetadata::code(s)).unwrap_or("?").to_string();
                assert_eq!(code, "InvocationDoesNotExist");
                if seen.last().map(String::as_str) != Some("InvocationDoesNotExist") {
                    seen.push(code);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invocation_does_not_exist_then_in_progress_then_success() {
    let (s, _) = sim::start(&opts(600, Some((2, 1)))).unwrap();
    let c = client(&s);
    let h = online_host(&s);
    let id = send(&c, std::slice::from_ref(&h.instance_id), script(vec![Item::new("*", "scan")]), "60").await.unwrap();
    let (seen, out) = statuses(&c, &id, &h.instance_id).await;
    assert_eq!(seen.first().map(String::as_str), Some("InvocationDoesNotExist"), "{seen:?}");
    let tail: Vec<&str> = seen.iter().map(String::as_str).skip_while(|s| *s != "InProgress").collect();
    assert_eq!(tail, ["InProgress", "Success"], "{seen:?}");
    assert_eq!(out.response_code(), 0);
    assert!(host_script::parse_output(out.standard_output_content().unwrap()).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_with_partial_output_is_read() {
    let (s, _) = sim::start(&opts(50, Some((2, 2)))).unwrap();
    let c = client(&s);
    let h = online_host(&s);
    // Containers are named by their full id only (a name or prefix could name another one).
    let name = s.world.with(|st| st.agents[&h.instance_id][0].container_id.clone());
    let items = vec![
        Item::new("*", "lock").with("CONTAINER", name.clone()).with("RUN", "r1").with("HOLDER", "t"),
        Item::new("*", "write")
            .with("CONTAINER", name.clone())
            .with("PATH", "/home/agent/.codex/config.toml")
            .with("BEFORE", "0".repeat(64))
            .with("CONTENT", "x = 1\n"),
    ];
    let id = send(&c, std::slice::from_ref(&h.instance_id), script(items), "60").await.unwrap();
    let (seen, out) = statuses(&c, &id, &h.instance_id).await;
    assert_eq!(seen.last().map(String::as_str), Some("Failed"));
    assert_eq!(out.response_code(), 1);
    let o = host_script::parse_output(out.standard_output_content().unwrap()).unwrap();
    // agent-ops' own answers, read by its one parser.
    let lock = codex_fleet::fleet::ops::parse(&o.items[0].lines.join("\n")).unwrap();
    assert!(lock.ok(), "the part that worked is there: {lock:?}");
    let write = codex_fleet::fleet::ops::parse(&o.items[1].lines.join("\n")).unwrap();
    assert_eq!(write.err().map(|e| e.0), Some("changed"), "{write:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn execution_timeout_is_timed_out_and_an_error() {
    let (s, _) = sim::start(&opts(50, Some((2, 1)))).unwrap();
    let c = client(&s);
    let h = online_host(&s);
    s.world.with(|st| st.agents.get_mut(&h.instance_id).unwrap()[0].faults.slow_ms = 3_000);
    let id = send(&c, std::slice::from_ref(&h.instance_id), script(vec![Item::new("*", "scan")]), "1").await.unwrap();
    let (_, out) = statuses(&c, &id, &h.instance_id).await;
    assert_eq!(out.status().unwrap().as_str(), "TimedOut");
    assert_eq!(out.status_details(), Some("ExecutionTimedOut"));

    // Through the backend: a deadline, the command cancelled, a Timeout error.
    let mut o = opts(50, Some((2, 1)));
    o.aws = AwsOptions { op_timeout: Duration::from_millis(1500), ..Default::default() };
    let (fleet, sim2) = demo_fleet_with_sim(o).await.unwrap();
    let hosts = fleet.discover().await.unwrap();
    let host = hosts.iter().find(|h| h.reachable).unwrap().clone();
    let agent = sim2.world.with(|st| {
        let a = &mut st.agents.get_mut(&host.id).unwrap()[0];
        a.faults.slow_ms = 5_000;
        codex_fleet::fleet::AgentRef { host: host.id.clone(), container_id: a.container_id.clone(), name: a.name.clone() }
    });
    let r = fleet.read_agent(&agent).await;
    assert!(matches!(r, Err(FleetError::Timeout(_))), "{r:?}");
    let _ = sim2;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancellation_cancels_the_command() {
    let (fleet, sim) = demo_fleet_with_sim(opts(2_000, Some((2, 1)))).await.unwrap();
    let fleet = std::sync::Arc::new(fleet);
    let hosts = fleet.discover().await.unwrap();
    let host = hosts.iter().find(|h| h.reachable).unwrap().clone();
    let agent = sim.world.with(|st| {
        let a = &st.agents[&host.id][0];
        codex_fleet::fleet::AgentRef { host: host.id.clone(), container_id: a.container_id.clone(), name: a.name.clone() }
    });
    let f2 = fleet.clone();
    let t = tokio::spawn(async move { f2.read_agent(&agent).await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    fleet.cancel();
    let r = t.await.unwrap();
    assert!(matches!(&r, Err(FleetError::Other(m)) if m == "cancelled"), "{r:?}");
    assert_eq!(sim.stats.snapshot().get("CancelCommand").copied(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn undeliverable_and_delivery_timeout() {
    let (s, _) = sim::start(&opts(50, Some((8, 1)))).unwrap();
    let c = client(&s);
    let id = send(&c, &["i-0doesnotexist0000".to_string()], script(vec![Item::new("*", "scan")]), "60").await.unwrap();
    let (_, out) = statuses(&c, &id, "i-0doesnotexist0000").await;
    assert_eq!((out.status().unwrap().as_str(), out.status_details()), ("Failed", Some("Undeliverable")));

    s.world.with(|st| st.faults.offline_delivery_ms = 300);
    let off = s.world.snapshot_hosts().into_iter().find(|h| !h.online && h.ec2_state == "running").unwrap();
    let c = aws_sdk_ssm::Client::from_conf(aws_sdk_ssm::config::Builder::from(&sim::sdk_config(&s, 1)).region(aws_sdk_ssm::config::Region::new(off.region.clone())).build());
    let id = send(&c, std::slice::from_ref(&off.instance_id), script(vec![Item::new("*", "scan")]), "60").await.unwrap();
    let (seen, out) = statuses(&c, &id, &off.instance_id).await;
    assert!(seen.contains(&"Pending".to_string()), "{seen:?}");
    assert_eq!((out.status().unwrap().as_str(), out.status_details()), ("TimedOut", Some("DeliveryTimedOut")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_one_ids_are_refused_and_the_backend_never_sends_them() {
    let (s, _) = sim::start(&opts(30, Some((120, 1)))).unwrap();
    let c = client(&s);
    let ids: Vec<String> = s.world.snapshot_hosts().iter().filter(|h| h.region == "us-east-2").take(51).map(|h| h.instance_id.clone()).collect();
    assert_eq!(ids.len(), 51);
    let e = send(&c, &ids, script(vec![Item::new("*", "scan")]), "60").await.unwrap_err();
    assert!(e.contains("ValidationException"), "{e}");

    // More than 50 hosts named one by one: the backend splits them.
    let all: Vec<String> = s.world.snapshot_hosts().iter().filter(|h| h.ec2_state == "running").map(|h| h.instance_id.clone()).collect();
    let mut o = opts(30, Some((120, 1)));
    o.aws.instances = all.clone();
    let (fleet, sim2) = demo_fleet_with_sim(o).await.unwrap();
    let report = scan(&fleet, |_| {}).await.unwrap();
    assert_eq!(report.hosts.len(), all.len());
    let reached = report.hosts.iter().filter(|h| h.host.reachable).count();
    assert_eq!(reached, all.len() - 1, "all but the offline host");
    let sends = sim2.stats.snapshot()["SendCommand"];
    assert!(sends >= 3, "{sends} SendCommand calls for {} ids", all.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whole_fleet_scan_goes_by_tag_targets_in_a_few_dozen_calls() {
    let (fleet, sim) = demo_fleet_with_sim(opts(100, Some((300, 8)))).await.unwrap();
    let report = scan(&fleet, |_| {}).await.unwrap();
    assert_eq!(report.hosts.len(), 300);
    assert_eq!(report.summary().agents, 299 * 8, "every agent of every reachable host, sidecars filtered out");
    let calls = sim.stats.snapshot();
    assert!(calls["SendCommand"] <= 6, "{calls:?}");
    assert!(calls.get("GetCommandInvocation").copied().unwrap_or(0) <= 20, "{calls:?}");
    assert!(sim.stats.total() < 120, "{calls:?}");
    whole_fleet_texts_are_shared(&report);
}

fn whole_fleet_texts_are_shared(report: &codex_fleet::scan::FleetReport) {
    // Equal file contents are one allocation across the fleet's agents (the scan's memory).
    let mut texts: Vec<&codex_fleet::probe::Text> = Vec::new();
    let mut shared = 0;
    for a in report.hosts.iter().flat_map(|h| &h.agents) {
        let Ok(p) = a.read.probe.as_ref() else { continue };
        for t in [&p.config.redacted, &p.emitter.redacted].into_iter().flatten() {
            match texts.iter().find(|k| k.as_str() == t.as_str()) {
                Some(k) => {
                    assert!(k.ptr_eq(t), "an equal text kept twice");
                    shared += 1;
                }
                None => texts.push(t),
            }
        }
    }
    assert!(texts.len() < 100 && shared > 2000, "{} distinct, {shared} shared", texts.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_big_fleets_ping_status_is_one_call_a_region_and_still_names_the_offline_host() {
    // 300 hosts in us-east-2, more than 250: discovery asks SSM only which nodes are not Online
    // (one call, not six), and the offline host is still known before the scan goes out; the
    // 100 of eu-west-1 are asked for by id (two calls of 50).
    let (fleet, sim) = demo_fleet_with_sim(opts(50, Some((400, 1)))).await.unwrap();
    let report = scan(&fleet, |_| {}).await.unwrap();
    let calls = sim.stats.snapshot();
    assert_eq!(calls["DescribeInstanceInformation"], 1 + 2, "{calls:?}");
    let offline: Vec<_> = report.hosts.iter().filter(|h| !h.host.reachable).collect();
    assert_eq!(offline.len(), 1);
    assert_eq!(offline[0].host.unreachable_reason.as_deref(), Some("SSM PingStatus ConnectionLost"));
    assert_eq!(report.summary().agents, 399);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_big_fleets_host_without_an_ssm_agent_is_named_when_the_scan_ends() {
    let (fleet, sim) = demo_fleet_with_sim(opts(50, Some((400, 1)))).await.unwrap();
    let gone = sim.world.with(|st| {
        let h = st.hosts.iter_mut().find(|h| h.online && h.region == "us-east-2").unwrap();
        h.ssm_managed = false;
        h.instance_id.clone()
    });
    let report = scan(&fleet, |_| {}).await.unwrap();
    let h = report.hosts.iter().find(|h| h.host.id == gone).unwrap();
    assert!(!h.host.reachable);
    let why = h.host.unreachable_reason.as_deref().unwrap_or("");
    assert!(why.contains("not targeted"), "not waited for until the deadline: {why}");
    assert_eq!(report.hosts.iter().filter(|h| h.host.reachable).count(), 398, "the others all answered");
}

/// Selected hosts go out in commands of 50 ids, whose progress is read by one `ListCommands` a
/// region a poll (every 125 ms), not one a command: eight commands polled each would need
/// eight calls a poll, past the quota of 20 a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_of_50_share_one_progress_call_a_region() {
    let (s, _) = sim::start(&opts(1500, Some((400, 1)))).unwrap();
    let mut picked: Vec<String> =
        s.world.snapshot_hosts().into_iter().filter(|h| h.online && h.ec2_state == "running").map(|h| h.instance_id).collect();
    picked.sort();
    picked.truncate(390);
    let mut o = opts(1500, Some((400, 1)));
    o.aws.instances = picked.clone();
    drop(s);
    let (fleet, sim) = demo_fleet_with_sim(o).await.unwrap();
    let before = sim.stats.snapshot().get("ListCommands").copied().unwrap_or(0);
    let t = Instant::now();
    let report = scan(&fleet, |_| {}).await.unwrap();
    let took = t.elapsed();
    assert_eq!(report.hosts.iter().filter(|h| h.host.reachable).count(), 390);
    let calls = sim.stats.snapshot();
    let sends = calls["SendCommand"];
    assert!((8..=10).contains(&sends), "390 hosts in two regions, commands of 50: {calls:?}");
    let beats = (took.as_millis() / 125) as u64;
    let list = calls["ListCommands"] - before;
    // Two regions polled at most once a beat each, and a command asked about alone at most
    // once (not yet in the shared answer right after it went out).
    assert!(list <= 2 * (beats + 2) + sends, "{list} ListCommands in {took:?} ({beats} beats): {calls:?}");
    assert!(list * 2 < sends * beats, "{list} ListCommands in {took:?}: not one a command a beat");
}

/// `ListCommands` without a command id: the region's commands, newest first, in pages, since
/// `InvokedAfter`; another region's commands are not in it; an unknown filter is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_commands_lists_a_regions_commands_newest_first_in_pages() {
    let (s, _) = sim::start(&opts(50, Some((8, 1)))).unwrap();
    let c = client(&s);
    let west = aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::config::Builder::from(&sim::sdk_config(&s, 1)).region(aws_sdk_ssm::config::Region::new("eu-west-1")).build(),
    );
    let host_in = |region: &str| s.world.snapshot_hosts().into_iter().find(|h| h.online && h.region == region && h.ec2_state == "running").unwrap().instance_id;
    let (east_host, west_host) = (host_in("us-east-2"), host_in("eu-west-1"));
    let before = std::time::SystemTime::now() - Duration::from_secs(2);
    let mut east = Vec::new();
    for _ in 0..3 {
        east.push(send(&c, std::slice::from_ref(&east_host), script(vec![Item::new("*", "scan")]), "60").await.unwrap());
    }
    let west_id = send(&west, std::slice::from_ref(&west_host), script(vec![Item::new("*", "scan")]), "60").await.unwrap();
    let since = |t: std::time::SystemTime| {
        aws_sdk_ssm::types::CommandFilter::builder()
            .key(aws_sdk_ssm::types::CommandFilterKey::InvokedAfter)
            .value(humantime::format_rfc3339_seconds(t).to_string())
            .build()
            .unwrap()
    };
    let ids = |o: &aws_sdk_ssm::operation::list_commands::ListCommandsOutput| -> Vec<String> {
        o.commands().iter().map(|c| c.command_id().unwrap().to_string()).collect()
    };
    let first = c.list_commands().filters(since(before)).max_results(2).send().await.unwrap();
    assert_eq!(ids(&first), [east[2].clone(), east[1].clone()], "newest first, a page of 2");
    let token = first.next_token().expect("a next page").to_string();
    let second = c.list_commands().filters(since(before)).max_results(2).next_token(token).send().await.unwrap();
    assert_eq!(ids(&second), [east[0].clone()]);
    assert!(second.next_token().is_none());
    let later = c.list_commands().filters(since(std::time::SystemTime::now() + Duration::from_secs(60))).send().await.unwrap();
    assert!(ids(&later).is_empty(), "none requested after a minute from now");
    assert_eq!(ids(&west.list_commands().send().await.unwrap()), [west_id], "a region lists its own commands");
    let other = aws_sdk_ssm::types::CommandFilter::builder().key(aws_sdk_ssm::types::CommandFilterKey::DocumentName).value("x").build().unwrap();
    assert!(c.list_commands().filters(other).send().await.is_err(), "an unknown filter is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throttling_storm_is_ridden_out() {
    let (fleet, sim) = demo_fleet_with_sim(opts(50, None)).await.unwrap();
    sim.throttle_storm(Duration::from_millis(2500));
    let t = Instant::now();
    let report = scan(&fleet, |_| {}).await.unwrap();
    assert!(report.summary().agents >= 40);
    assert!(sim.stats.throttled.load(std::sync::atomic::Ordering::Relaxed) > 0);
    assert!(t.elapsed() >= Duration::from_millis(2500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn truncated_listing_falls_back_to_get_command_invocation() {
    let (fleet, sim) = demo_fleet_with_sim(opts(30, Some((2, 60)))).await.unwrap();
    let report = scan(&fleet, |_| {}).await.unwrap();
    let big = report.hosts.iter().find(|h| h.host.reachable).unwrap();
    assert_eq!(big.agents.len(), 60, "{:?}", big.host);
    assert!(sim.stats.snapshot().get("GetCommandInvocation").copied().unwrap_or(0) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_concurrency_is_honoured() {
    let (s, _) = sim::start(&opts(300, Some((12, 1)))).unwrap();
    let c = client(&s);
    let ids: Vec<String> = s.world.snapshot_hosts().iter().filter(|h| h.online && h.region == "us-east-2").take(6).map(|h| h.instance_id.clone()).collect();
    let mut p = HashMap::new();
    p.insert("commands".to_string(), vec![script(vec![Item::new("*", "scan")])]);
    let t = Instant::now();
    let id = c
        .send_command()
        .document_name("AWS-RunShellScript")
        .set_instance_ids(Some(ids.clone()))
        .set_parameters(Some(p))
        .max_concurrency("2")
        .send()
        .await
        .unwrap()
        .command()
        .unwrap()
        .command_id()
        .unwrap()
        .to_string();
    for i in &ids {
        statuses(&c, &id, i).await;
    }
    // 6 hosts, 2 at a time, ~300 ms each: at least three rounds.
    assert!(t.elapsed() >= Duration::from_millis(700), "{:?}", t.elapsed());
}

/// `ListCommandInvocations` with a `Status` filter (the scan's listing at half of a big
/// command reads only the hosts that succeeded): only those are listed; a filter key the
/// simulator does not know is refused, not ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_status_filter_lists_only_those_invocations() {
    let (s, _) = sim::start(&opts(50, Some((3, 2)))).unwrap();
    let c = client(&s);
    let hosts: Vec<sim::world::SimHost> =
        s.world.snapshot_hosts().into_iter().filter(|h| h.online && h.region == "us-east-2" && h.ec2_state == "running").take(2).collect();
    assert_eq!(hosts.len(), 2);
    let (ok, bad) = (&hosts[0].instance_id, &hosts[1].instance_id);
    let container = |h: &String| s.world.with(|st| st.agents[h][0].container_id.clone());
    let items = vec![
        Item::new(ok, "lock").with("CONTAINER", container(ok)).with("RUN", "r1").with("HOLDER", "t"),
        // Refused (not the content the plan was made from): this host's invocation fails.
        Item::new(bad, "write").with("CONTAINER", container(bad)).with("PATH", "/home/agent/.codex/config.toml").with("BEFORE", "0".repeat(64)).with("CONTENT", "x = 1\n"),
    ];
    let id = send(&c, &[ok.clone(), bad.clone()], script(items), "60").await.unwrap();
    statuses(&c, &id, ok).await;
    statuses(&c, &id, bad).await;
    let list = |filter: Option<(&str, &str)>| {
        let mut b = c.list_command_invocations().command_id(&id);
        if let Some((k, v)) = filter {
            b = b.filters(aws_sdk_ssm::types::CommandFilter::builder().key(k.into()).value(v).build().unwrap());
        }
        b.send()
    };
    let ids = |o: aws_sdk_ssm::operation::list_command_invocations::ListCommandInvocationsOutput| {
        let mut v: Vec<(String, String)> =
            o.command_invocations().iter().map(|i| (i.instance_id().unwrap().to_string(), i.status().unwrap().as_str().to_string())).collect();
        v.sort();
        v
    };
    let all = ids(list(None).await.unwrap());
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.contains(&(bad.clone(), "Failed".into())), "{all:?}");
    assert_eq!(ids(list(Some(("Status", "Success"))).await.unwrap()), [(ok.clone(), "Success".to_string())]);
    assert!(list(Some(("DocumentName", "AWS-RunShellScript"))).await.is_err(), "an unknown filter is refused");
}

/// A host that lies about texts (serves another text under every name its records use, in
/// its scan answer and to the `blobs` command) gets none of them taken: the console keeps a
/// text only under its own name (keyed by the scan's nonce). The liar's agent whose config no
/// other host holds reads "could not be fetched", never the forged text; every other agent
/// reads as it is (a name the liar shares with honest hosts is served by them).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_serving_forged_texts_gets_none_of_them_shown() {
    let (fleet, sim) = demo_fleet_with_sim(opts(100, Some((40, 8)))).await.unwrap();
    let liar = online_host(&sim);
    let unique = "# held by one host only\nmodel = \"o3\"\n".repeat(3);
    sim.world.with(|st| {
        st.faults.forge_texts.insert(liar.instance_id.clone());
        let a = st.agents.get_mut(&liar.instance_id).unwrap().iter_mut().find(|a| a.state == "running" && a.probe_broken.is_none()).unwrap();
        a.config = Some(unique.clone());
    });
    let report = scan(&fleet, |_| {}).await.unwrap();
    assert!(!format!("{report:?}").contains("forged-by"), "a forged text reached the report");
    let mut missing = 0;
    let mut read = 0;
    for h in &report.hosts {
        for a in &h.agents {
            match &a.read.probe {
                Err(e) if e.contains("could not be fetched") => {
                    assert_eq!(h.host.id, liar.instance_id, "{}: {e}", a.read.agent.name);
                    missing += 1;
                }
                Ok(p) => {
                    read += 1;
                    assert!(!p.config.redacted.as_ref().is_some_and(|t| t.as_str().contains("held by one host only")), "{}", a.read.agent.name);
                }
                Err(_) => {}
            }
        }
    }
    assert_eq!(missing, 1, "the config only the liar holds is missing, nothing else");
    assert!(read > 39 * 7, "{read} agents read whole");
    let notes = fleet.notes();
    assert!(notes.iter().any(|n| n.contains(&liar.instance_id) && n.contains("refused")), "{notes:?}");
}
