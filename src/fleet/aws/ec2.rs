//! Discovery: `DescribeInstances` (tag filters or instance ids, running only, paginated, the
//! Name tag) and the SSM managed-node view (`DescribeInstanceInformation`: PingStatus, agent
//! version) so that offline hosts show as unreachable without waiting for a command to time out.

use std::collections::HashMap;

use aws_sdk_ec2::types::Filter;
use aws_sdk_ssm::types::InstanceInformationStringFilter;
use aws_smithy_types::error::display::DisplayErrorContext;

use super::{AwsFleet, RegionClients};
use crate::fleet::{FleetError, Host};

/// Map an SDK error to the trait's error, keeping AWS's own words.
pub(crate) fn sdk_error<E, R>(what: &str, e: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> FleetError
where
    E: std::error::Error + aws_smithy_types::error::metadata::ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    let text = format!("{what}: {}", DisplayErrorContext(&e));
    let code = match &e {
        SdkError::ServiceError(s) => s.err().code().map(str::to_string),
        _ => None,
    };
    let lower = text.to_ascii_lowercase();
    if lower.contains("no credentials") || lower.contains("credentialsnotloaded") || lower.contains("failed to load credentials") {
        return FleetError::NoCredentials(super::no_credentials_message(&text));
    }
    match code.as_deref() {
        Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "AuthFailure") => FleetError::Refused(text),
        _ => FleetError::Other(text),
    }
}

/// The instances of one region matching the operator's filters.
pub(crate) async fn describe_instances(fleet: &AwsFleet, rc: &RegionClients) -> Result<Vec<Host>, FleetError> {
    let mut filters = vec![Filter::builder().name("instance-state-name").values("running").build()];
    for (k, v) in fleet.opts.effective_tags() {
        filters.push(Filter::builder().name(format!("tag:{k}")).values(v).build());
    }
    if !fleet.opts.instances.is_empty() {
        // A filter, not InstanceIds: an id of another region is then no error.
        filters.push(Filter::builder().name("instance-id").set_values(Some(fleet.opts.instances.clone())).build());
    }
    let mut pages = rc.ec2.describe_instances().set_filters(Some(filters)).max_results(fleet.opts.page_size.clamp(5, 1000)).into_paginator().send();
    let mut hosts = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error(&format!("DescribeInstances in {}", rc.region), e))?;
        for r in page.reservations() {
            for i in r.instances() {
                let Some(id) = i.instance_id() else { continue };
                let running = i.state().and_then(|s| s.name()).map(|n| n.as_str() == "running").unwrap_or(false);
                if !running {
                    continue;
                }
                let name = i
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some("Name"))
                    .and_then(|t| t.value())
                    .unwrap_or(id)
                    .to_string();
                hosts.push(Host {
                    id: id.to_string(),
                    name,
                    location: rc.region.clone(),
                    reachable: true,
                    unreachable_reason: None,
                    agent_version: None,
                });
            }
        }
    }
    Ok(hosts)
}

/// Above this many hosts in a region (selected by tags), discovery asks SSM only which
/// managed nodes are not Online instead of asking for each host: 50 ids a call at 10 calls a
/// second is 18 s of `DescribeInstanceInformation` at 10,000 hosts, before the scan could even
/// start; the not-Online nodes of an account fit a page or two. What a big fleet goes without:
/// the SSM agent version per host, and knowing up front a host with no SSM agent registered
/// (SSM does not target it, and the scan says so when its command ends).
pub const PING_BY_ID_MAX: usize = 250;

/// PingStatus and agent version for `hosts`; a refused call leaves them reachable (to be
/// learned from the commands) and is reported as a note.
pub(crate) async fn ping_status(fleet: &AwsFleet, rc: &RegionClients, hosts: &mut [Host]) {
    if hosts.len() > PING_BY_ID_MAX && fleet.opts.instances.is_empty() {
        return not_online(fleet, rc, hosts).await;
    }
    let ids: Vec<String> = hosts.iter().map(|h| h.id.clone()).collect();
    let mut info: HashMap<String, (String, Option<String>)> = HashMap::new();
    for chunk in ids.chunks(50) {
        if !instance_information(fleet, rc, "InstanceIds", chunk.to_vec(), &mut info).await {
            return;
        }
    }
    for h in hosts.iter_mut() {
        match info.get(&h.id) {
            Some((ping, ver)) => {
                h.agent_version = ver.clone();
                if ping != "Online" {
                    h.reachable = false;
                    h.unreachable_reason = Some(format!("SSM PingStatus {ping}"));
                }
            }
            None => {
                h.reachable = false;
                h.unreachable_reason = Some("not an SSM managed node (no SSM agent registered for this instance)".into());
            }
        }
    }
}

/// A big fleet's ping status: the managed nodes whose PingStatus is not Online
/// (`ConnectionLost`, `Inactive`), whatever their number of pages; every other host is taken
/// as reachable and its command says otherwise. See [`PING_BY_ID_MAX`].
async fn not_online(fleet: &AwsFleet, rc: &RegionClients, hosts: &mut [Host]) {
    let mut lost: HashMap<String, (String, Option<String>)> = HashMap::new();
    let not_online = vec!["ConnectionLost".to_string(), "Inactive".to_string()];
    if !instance_information(fleet, rc, "PingStatus", not_online, &mut lost).await {
        return;
    }
    for h in hosts.iter_mut() {
        if let Some((ping, _)) = lost.get(&h.id).filter(|(p, _)| p.as_str() != "Online") {
            h.reachable = false;
            h.unreachable_reason = Some(format!("SSM PingStatus {ping}"));
        }
    }
}

/// Every page of `DescribeInstanceInformation` filtered by `key` = `values`, as (ping status,
/// agent version) by instance into `info`; `false` (and a note saying so) when it could not be
/// asked or SSM refused it.
async fn instance_information(
    fleet: &AwsFleet,
    rc: &RegionClients,
    key: &str,
    values: Vec<String>,
    info: &mut HashMap<String, (String, Option<String>)>,
) -> bool {
    let filter = match InstanceInformationStringFilter::builder().key(key).set_values(Some(values)).build() {
        Ok(f) => f,
        Err(e) => {
            fleet.note(format!("DescribeInstanceInformation not used: {e}"));
            return false;
        }
    };
    let mut pages = rc.ssm.describe_instance_information().filters(filter).max_results(50).into_paginator().send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(p) => {
                for i in p.instance_information_list() {
                    if let Some(id) = i.instance_id() {
                        let ping = i.ping_status().map(|p| p.as_str().to_string()).unwrap_or_default();
                        info.insert(id.to_string(), (ping, i.agent_version().map(str::to_string)));
                    }
                }
            }
            Err(e) => {
                fleet.note(format!(
                    "DescribeInstanceInformation refused in {} ({}); going on without SSM ping status: \
                     unreachable hosts show up when their commands fail",
                    rc.region,
                    DisplayErrorContext(&e)
                ));
                return false;
            }
        }
    }
    true
}
