//! EC2 discovery against moto (`moto[server]` from PyPI, cached by scripts/test.sh), one server
//! per test on loopback, reset before use: tag filters, stopped instances excluded, pagination
//! across many reservations, DescribeInstanceInformation refused (moto does not implement it)
//! and discovery going on. moto's SSM never runs anything: no SSM semantics are tested here.

mod common;

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use codex_fleet::fleet::aws::{AwsFleet, AwsOptions};
use codex_fleet::fleet::Fleet;

struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto() -> Option<Moto> {
    let py = common::cache_dir().join("moto-venv/bin/python");
    if !py.is_file() {
        return common::require_or_skip(&format!("moto[server] venv at {}", py.display()));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(py)
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto");
    let t = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t.elapsed() < Duration::from_secs(30), "moto did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let m = Moto { child, url: format!("http://127.0.0.1:{port}") };
    // Reset (a fresh server is empty already; this keeps the contract if a server is shared).
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    use std::io::{Read, Write};
    write!(s, "POST /moto-api/reset HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    assert!(buf.starts_with("HTTP/1.1 200") || buf.starts_with("HTTP/1.0 200"), "{buf}");
    Some(m)
}

fn env() {
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::remove_var("AWS_PROFILE");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
}

async fn ec2(url: &str) -> aws_sdk_ec2::Client {
    env();
    let cfg = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-2"))
        .endpoint_url(url)
        .load()
        .await;
    aws_sdk_ec2::Client::new(&cfg)
}

async fn launch(c: &aws_sdk_ec2::Client, n: i32, tags: &[(&str, &str)]) -> Vec<String> {
    use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
    let mut ts = TagSpecification::builder().resource_type(ResourceType::Instance);
    for (k, v) in tags {
        ts = ts.tags(Tag::builder().key(*k).value(*v).build());
    }
    let out = c
        .run_instances()
        .image_id("ami-12c6146b")
        .min_count(n)
        .max_count(n)
        .tag_specifications(ts.build())
        .send()
        .await
        .expect("run_instances");
    out.instances().iter().filter_map(|i| i.instance_id().map(String::from)).collect()
}

async fn fleet(url: &str, tags: &[(&str, &str)], page: i32) -> AwsFleet {
    env();
    let opts = AwsOptions {
        tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        regions: vec!["us-east-2".into()],
        endpoint_url: Some(url.into()),
        max_attempts: 1, // moto answers unimplemented operations with 500: no retries
        page_size: page,
        ..Default::default()
    };
    AwsFleet::connect(opts).await.expect("connect")
}

#[tokio::test]
async fn tag_filters_and_stopped_instances() {
    let Some(m) = moto() else { return };
    let c = ec2(&m.url).await;
    let ws = launch(&c, 3, &[("Role", "workspace"), ("Name", "ws-a")]).await;
    launch(&c, 2, &[("Role", "build"), ("Name", "builder")]).await;
    c.stop_instances().instance_ids(ws[0].clone()).send().await.unwrap();

    let f = fleet(&m.url, &[], 1000).await; // default tag Role=workspace
    let hosts = f.discover().await.unwrap();
    let ids: Vec<&str> = hosts.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(hosts.len(), 2, "{ids:?}");
    assert!(!ids.contains(&ws[0].as_str()), "the stopped instance is excluded");
    assert!(hosts.iter().all(|h| h.name == "ws-a" && h.location == "us-east-2"));
    // moto does not implement DescribeInstanceInformation: discovery goes on and says so.
    assert!(f.notes().iter().any(|n| n.contains("DescribeInstanceInformation")), "{:?}", f.notes());
    assert!(hosts.iter().all(|h| h.reachable));

    let f = fleet(&m.url, &[("Role", "build")], 1000).await;
    assert_eq!(f.discover().await.unwrap().len(), 2);
    let f = fleet(&m.url, &[("Role", "workspace"), ("Name", "nope")], 1000).await;
    assert!(f.discover().await.unwrap().is_empty());
}

#[tokio::test]
async fn pagination_across_many_reservations() {
    let Some(m) = moto() else { return };
    let c = ec2(&m.url).await;
    let mut all = Vec::new();
    for i in 0..23 {
        all.extend(launch(&c, 1 + (i % 2), &[("Role", "workspace"), ("Name", &format!("ws-{i}"))]).await);
    }
    let f = fleet(&m.url, &[], 5).await;
    let hosts = f.discover().await.unwrap();
    let mut got: Vec<String> = hosts.iter().map(|h| h.id.clone()).collect();
    got.sort();
    all.sort();
    assert_eq!(got, all, "every instance of every page, once");
}

#[tokio::test]
async fn instance_ids_select_hosts() {
    let Some(m) = moto() else { return };
    let c = ec2(&m.url).await;
    let ws = launch(&c, 4, &[("Role", "workspace")]).await;
    env();
    let opts = AwsOptions {
        instances: vec![ws[1].clone(), ws[3].clone()],
        regions: vec!["us-east-2".into()],
        endpoint_url: Some(m.url.clone()),
        max_attempts: 1,
        ..Default::default()
    };
    let f = AwsFleet::connect(opts).await.unwrap();
    let mut ids: Vec<String> = f.discover().await.unwrap().into_iter().map(|h| h.id).collect();
    ids.sort();
    let mut want = vec![ws[1].clone(), ws[3].clone()];
    want.sort();
    assert_eq!(ids, want);
}
