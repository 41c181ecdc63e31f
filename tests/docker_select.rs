//! Exact agent selection through the binary on the real Docker engine: real container ids
//! (a 12-hex prefix, the full id), the engine host by id and by name, a name that is not a
//! selector (a prefix of a container name), and a selector naming nothing: exit 2 in every
//! command, before anything is done. Fails instead of skipping under CI when the engine or the
//! images are missing.

mod common;
mod docker_support;

use std::process::{Command, Output, Stdio};

use docker_support::*;

fn cli(f: &TestFleet, args: &[&str]) -> Output {
    let state = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_codex-fleet"))
        .args(["--docker", "--agent-filter", &format!("label=cf-test.agent={}", f.run), "--gitea-url", &f.gitea_url])
        .args(args)
        .env("CODEX_FLEET_STATE_DIR", state.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run codex-fleet")
}

fn expect(f: &TestFleet, args: &[&str], code: i32) -> (String, String) {
    let out = cli(f, args);
    let (o, e) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert_eq!(out.status.code(), Some(code), "{args:?}\nstdout:\n{o}\nstderr:\n{e}");
    (o, e)
}

#[test]
fn selectors_on_real_container_ids_and_the_engine_host() {
    let Some(img) = images() else { return };
    let mut f = TestFleet::new("select", img.clone());
    f.add(vec![Spec::new("a", &img.runtime_codex), Spec::new("ab", &img.runtime_codex)]);
    let (o, _) = expect(&f, &["scan", "--json"], 1);
    let scan: serde_json::Value = serde_json::from_str(&o).unwrap();
    // The Docker source's document is the same shape as every source's.
    common::schema::check("scan", &scan);
    let host = &scan["hosts"][0];
    let (hid, hname) = (host["id"].as_str().unwrap().to_string(), host["name"].as_str().unwrap().to_string());
    let agent = |suffix: &str| {
        let name = f.name(suffix);
        host["agents"].as_array().unwrap().iter().find(|a| a["name"] == name.as_str()).cloned().unwrap_or_else(|| panic!("{name}: {scan}"))
    };
    let (a, ab) = (agent("a"), agent("ab"));
    let cid = ab["container_id"].as_str().unwrap().to_string();
    assert_eq!(cid.len(), 64, "{ab}");

    let show = |sel: &str| -> String {
        let (o, _) = expect(&f, &["show", "--json", sel], 0);
        serde_json::from_str::<serde_json::Value>(&o).unwrap()["id"].as_str().unwrap().to_string()
    };
    // by name (unique), HOST/NAME with the engine host's id and name, by id prefix and full id
    assert_eq!(show(&f.name("a")), a["id"].as_str().unwrap());
    assert_eq!(show(&format!("{hid}/{}", f.name("a"))), a["id"].as_str().unwrap());
    assert_eq!(show(&format!("{hname}/{}", f.name("ab"))), ab["id"].as_str().unwrap());
    assert_eq!(show(&cid[..12]), ab["id"].as_str().unwrap());
    assert_eq!(show(&format!("{hid}/{cid}")), ab["id"].as_str().unwrap());
    // `cf-…-a` is a prefix of `cf-…-ab`'s name, never a selector of it; 11 hex digits are none
    expect(&f, &["show", &cid[..11]], 2);
    // (`cf-…-` is a prefix of both names, and the name of neither)
    let (_, e) = expect(&f, &["plan", "--agent", &format!("{hid}/{}", &f.name("ab")[..f.name("ab").len() - 2])], 2);
    assert!(e.contains("no agent"), "{e}");

    // nothing named: exit 2 naming it, nothing done
    for args in [vec!["plan", "--agent", "cf-select-nosuch"], vec!["verify", "--agent", "cf-select-nosuch"], vec!["apply", "--yes", "--agent", "cf-select-nosuch"]] {
        let (o, e) = expect(&f, &args, 2);
        assert!(e.contains("no agent `cf-select-nosuch`") && o.is_empty(), "{args:?}: {e}");
        assert!(!e.lines().any(|l| l.starts_with("run ")), "{e}");
    }
    // verify --agent: that one agent only
    let out = cli(&f, &["verify", "--json", "--agent", &f.name("a")]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    common::schema::check("verify", &v);
    assert_eq!(v["agents"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["agents"][0]["id"], a["id"]);
}
