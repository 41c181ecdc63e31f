//! The real host script (assets/host-ops.sh behind its payload header) run by `sh`, with a
//! stand-in `docker` on PATH: payload decoding (values with quotes, `$(...)`, trailing
//! newlines), instance dispatch, framing, gzip+base64 packing read back by the console.

use std::io::Write;
use std::process::Command;

use codex_fleet::fleet::aws::host_script::{parse_output, render, Item, Payload};

fn run(script: &str, path_prefix: &std::path::Path) -> (String, i32) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("AWS_SSM_INSTANCE_ID", "i-0test")
        .env("CODEX_FLEET_DOCKER", path_prefix.join("docker"))
        .output()
        .unwrap();
    (String::from_utf8_lossy(&out.stdout).into_owned(), out.status.code().unwrap_or(-1))
}

fn fake_docker(dir: &std::path::Path, body: &str) {
    let p = dir.join("docker");
    let mut f = std::fs::File::create(&p).unwrap();
    writeln!(f, "#!/bin/sh\n{body}").unwrap();
    drop(f);
    Command::new("chmod").arg("+x").arg(&p).status().unwrap();
}

#[test]
fn dispatch_framing_and_packing() {
    let dir = tempfile::tempdir().unwrap();
    // No containers; the engine's version.
    fake_docker(dir.path(), r#"case $1 in ps) exit 0 ;; version) echo 27.3.1 ;; *) exit 1 ;; esac"#);
    let nasty = "it's \"quoted\" $(touch /tmp/cfh-pwned) `x`\n\n";
    let p = Payload {
        run: "r1".into(),
        z: true,
        items: vec![
            Item::new("*", "scan").with("FILTER", "image=codex").with("GITEA", "https://git.example").with("NONCE", "n1"),
            Item::new("i-0other", "scan").with("NONCE", nasty),
            Item::new("i-0test", "blobs").with("NONCE", nasty).with("HASHES", "0123456789abcdef zz"),
        ],
    };
    let (stdout, rc) = run(&render(&p), dir.path());
    assert_eq!(rc, 0, "{stdout}");
    assert!(!std::path::Path::new("/tmp/cfh-pwned").exists(), "a value was evaluated");
    let o = parse_output(&stdout).unwrap();
    assert_eq!(o.instance, "i-0test");
    let ops: Vec<(usize, &str)> = o.items.iter().map(|i| (i.seq, i.op.as_str())).collect();
    assert_eq!(ops, [(1, "scan"), (3, "blobs")], "the other instance's item is skipped");
    assert_eq!(o.items[0].lines, ["h docker=27.3.1 n=0"]);
    assert_eq!(o.items[1].lines, ["m 0123456789abcdef"], "only hex hashes are looked up; a hash not kept is `m HASH`");
}

#[test]
fn a_container_gone_is_reported_and_fails_the_item() {
    let dir = tempfile::tempdir().unwrap();
    fake_docker(dir.path(), "exit 1");
    let p = Payload { run: "r1".into(), z: false, items: vec![Item::new("*", "restart").with("CONTAINER", "ab".repeat(32))] };
    let (stdout, rc) = run(&render(&p), dir.path());
    assert_eq!(rc, 1);
    let o = parse_output(&stdout).unwrap();
    assert_eq!(o.items[0].rc, 3);
    assert!(o.items[0].lines[0].starts_with("gone "), "{:?}", o.items[0]);
}

#[test]
fn only_a_full_container_id_that_docker_confirms_names_a_container() {
    let dir = tempfile::tempdir().unwrap();
    // An engine that resolves anything (a name, a prefix) to the same other container.
    fake_docker(dir.path(), &format!("case $1 in inspect) echo {} ;; restart) touch {}/restarted ;; esac", "cd".repeat(32), dir.path().display()));
    for sel in ["codex-a", "cdcdcdcdcdcd", &"ab".repeat(32)] {
        let p = Payload { run: "r1".into(), z: false, items: vec![Item::new("*", "restart").with("CONTAINER", sel)] };
        let (stdout, rc) = run(&render(&p), dir.path());
        assert_eq!(rc, 1, "{sel}: {stdout}");
        let o = parse_output(&stdout).unwrap();
        assert!(o.items[0].lines[0].starts_with("err refused ") || o.items[0].lines[0].starts_with("gone "), "{sel}: {:?}", o.items[0]);
        assert!(!dir.path().join("restarted").exists(), "{sel}: acted on another container");
    }
    let p = Payload { run: "r1".into(), z: false, items: vec![Item::new("*", "restart").with("CONTAINER", "cd".repeat(32))] };
    let (stdout, _) = run(&render(&p), dir.path());
    assert!(dir.path().join("restarted").exists(), "the full id docker confirms is acted on: {stdout}");
}

/// Several agents' items in one command (batch.rs): they run side by side on the host, each on
/// its own container, and each answers in its own frame, in order; one item's failure (a
/// container gone) is its own, its host-mates' items still act and answer.
#[test]
fn several_agents_items_in_one_command_answer_each_in_its_own_frame() {
    let dir = tempfile::tempdir().unwrap();
    let (a, gone, c) = ("aa".repeat(32), "bb".repeat(32), "cc".repeat(32));
    // docker: inspect answers for a and c only; restart leaves a mark per container.
    fake_docker(
        dir.path(),
        &format!(
            r#"case $1 in
inspect) for x; do :; done; case $x in {a}|{c}) case $3 in *Status*) echo running ;; *) echo "$x" ;; esac ;; *) exit 1 ;; esac ;;
restart) touch "{d}/restarted-$2" ;;
esac"#,
            d = dir.path().display()
        ),
    );
    let p = Payload {
        run: "r1".into(),
        z: true,
        items: vec![
            Item::new("i-0test", "restart").with("CONTAINER", a.clone()),
            Item::new("i-0other", "restart").with("CONTAINER", a.clone()),
            Item::new("i-0test", "restart").with("CONTAINER", gone.clone()),
            Item::new("i-0test", "restart").with("CONTAINER", c.clone()),
        ],
    };
    let (stdout, rc) = run(&render(&p), dir.path());
    assert_eq!(rc, 1, "one item failed: {stdout}");
    let o = parse_output(&stdout).unwrap();
    let got: Vec<(usize, i32, String)> = o.items.iter().map(|i| (i.seq, i.rc, i.lines.join("|"))).collect();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!((got[0].0, got[0].1), (1, 0), "{got:?}");
    assert!(got[0].2.starts_with("ok restart st=running"), "{got:?}");
    assert_eq!((got[1].0, got[1].1), (3, 3), "{got:?}");
    assert!(got[1].2.starts_with("gone "), "{got:?}");
    assert_eq!((got[2].0, got[2].1), (4, 0), "{got:?}");
    assert!(dir.path().join(format!("restarted-{a}")).exists() && dir.path().join(format!("restarted-{c}")).exists());
    assert!(!dir.path().join(format!("restarted-{gone}")).exists());
}

/// A long value several items carry travels once in the payload (`CFH_n_F_K=$CFH_m_F_J`); the
/// real `sh` gives every item the whole value, quotes, `$(...)` and trailing newlines included,
/// and evaluates none of it.
#[test]
fn a_value_sent_once_reaches_every_item_that_carries_it() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = ("aa".repeat(32), "bb".repeat(32));
    // docker: inspect confirms any full id; exec keeps what agent-ops would read on stdin.
    fake_docker(
        dir.path(),
        &format!(
            r#"case $1 in
inspect) for x; do :; done; echo "$x" ;;
exec) cat > "{d}/stdin-$7"; echo '#cfo 1 end' ;;
esac"#,
            d = dir.path().display()
        ),
    );
    let config = format!("sandbox_mode = \"danger-full-access\" # it's $(touch {}/pwned) `x`\n\n\n", dir.path().display());
    let before = "approval_policy = \"on-request\"\n".repeat(3);
    let write = |c: &str| {
        Item::new("i-0test", "write")
            .with("CONTAINER", c)
            .with("PATH", "/home/agent/.codex/config.toml")
            .with("BEFORE", "ab".repeat(32))
            .with("CONTENT", config.clone())
            .with("BEFORE_TEXT", before.clone())
            .with("RUN", "r1")
    };
    let p = Payload { run: "r1".into(), z: false, items: vec![write(&a), write(&b)] };
    let script = render(&p);
    assert!(script.contains("CFH_2_F_CONTENT=$CFH_1_F_CONTENT"), "the second item copies the first's value");
    let (stdout, rc) = run(&script, dir.path());
    assert_eq!(rc, 0, "{stdout}");
    assert!(!dir.path().join("pwned").exists(), "a value was evaluated");
    for c in [&a, &b] {
        let got = std::fs::read_to_string(dir.path().join(format!("stdin-{c}"))).unwrap();
        assert_eq!(got, format!("{config}{before}"), "{c}");
    }
}

/// The names a host gives its long texts are keyed by the scan's nonce (sha256 of the nonce,
/// a line feed and the text: what the console checks, `host_script::blob_hash`), so a text
/// found in advance to share another's unkeyed hash names nothing; a read names the texts
/// the console holds under its own nonce, and only those.
#[test]
fn a_hosts_text_names_are_keyed_by_the_nonce_it_was_sent() {
    use codex_fleet::fleet::aws::host_script::{blob_hash, blob_ref, unpack_texts, unpct, value_ref};
    let dir = tempfile::tempdir().unwrap();
    let id = "ef".repeat(32);
    let long = "x".repeat(40) + " the config text";
    fake_docker(
        dir.path(),
        &format!(
            r#"case $1 in
ps) echo {id} ;;
version) echo 27.3.1 ;;
inspect) case $3 in
	*'{{{{.Id}}}}|'*) echo '{id}|/codex-a|codex:1|sha256:{iid}|running|0|2026-11-02T09:00:00.5Z' ;;
	'{{{{.Id}}}}') echo {id} ;;
	'{{{{.Config.Image}}}}') echo codex:1 ;;
	*Env*) echo HOME=/home/agent ;;
	esac ;;
exec) cat >/dev/null; echo '#cfp 1 begin'; echo 'cfx={long}'; echo 'cv=0.133.0' ;;
esac"#,
            iid = "ab".repeat(32)
        ),
    );
    let scan = |nonce: &str| {
        let p = Payload { run: nonce.into(), z: true, items: vec![Item::new("*", "scan").with("FILTER", "image=codex").with("NONCE", nonce)] };
        let (stdout, rc) = run(&render(&p), dir.path());
        assert_eq!(rc, 0, "{stdout}");
        let o = parse_output(&stdout).unwrap();
        let lines = &o.items[0].lines;
        let probe = unpct(&lines.iter().find(|l| l.starts_with("p ")).unwrap()[2..]);
        let (_, h, n) = probe.lines().find_map(blob_ref).unwrap_or_else(|| panic!("no reference: {probe}"));
        assert_eq!(n, long.len());
        let c = lines.iter().find(|l| l.starts_with("c ")).unwrap();
        let iid = c.split(' ').find_map(|kv| kv.strip_prefix("iid=")).unwrap();
        let (ih, _) = value_ref(iid).unwrap();
        let texts: std::collections::BTreeMap<String, String> = unpack_texts(&stdout).into_iter().collect();
        (h.to_string(), ih.to_string(), texts)
    };
    let (n1, n2) = ("scan-1764633600000-00112233aabbccdd", "scan-1764633600001-8899aabbccddeeff");
    let (h1, i1, t1) = scan(n1);
    assert_eq!(h1, blob_hash(n1, &long), "the host's name is the console's, under the nonce");
    assert_eq!(t1.get(&h1), Some(&long), "and its answer carries the text under it");
    assert_eq!(t1.get(&i1).map(|v| unpct(v)), Some(format!("sha256:{}", "ab".repeat(32))));
    let (h2, _, _) = scan(n2);
    assert_eq!(h2, blob_hash(n2, &long));
    assert_ne!(h1, h2, "another scan, other names");
    {
        use sha2::Digest;
        let unkeyed = hex::encode(sha2::Sha256::digest(long.as_bytes()));
        assert!(!unkeyed.starts_with(&h1) && !unkeyed.starts_with(&h2), "not the text's plain sha256");
    }
    // A read: the text the console holds (named under the read's nonce) comes as a reference;
    // a name under another nonce is not the text's, and the text comes whole.
    let read = |nonce: &str, known: &str| {
        let p = Payload {
            run: "r1".into(),
            z: false,
            items: vec![Item::new("*", "read").with("CONTAINER", id.as_str()).with("NONCE", nonce).with("KNOWN", known)],
        };
        let (stdout, rc) = run(&render(&p), dir.path());
        assert_eq!(rc, 0, "{stdout}");
        let o = parse_output(&stdout).unwrap();
        unpct(&o.items[0].lines.iter().find(|l| l.starts_with("p ")).unwrap()[2..])
    };
    assert!(read(n2, &blob_hash(n2, &long)).contains(&format!("cfx=@{}:{}", blob_hash(n2, &long), long.len())));
    assert!(read(n2, &blob_hash(n1, &long)).contains(&format!("cfx={long}")));
}
