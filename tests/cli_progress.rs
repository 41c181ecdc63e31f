//! Progress on stderr, through the binary: with stderr on a real terminal (a pty) `scan` shows
//! "N/TOTAL host(s) answered" and erases it before the result; with stderr a pipe, or under
//! `--json`, nothing but the documented lines reaches stderr (for `scan`: none), and stdout never
//! carries it.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};

fn scan(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_codex-fleet"));
    c.args(["--demo", "--demo-latency", "1", "--demo-scale", "4x2"]).args(args).stdin(Stdio::null());
    c.env("NO_COLOR", "1").env("XDG_CONFIG_HOME", "/nonexistent").env_remove("CODEX_FLEET_CONTEXT");
    c
}

/// Run `cmd` with stderr on a fresh pty; returns (stdout, what the terminal received).
fn with_pty_stderr(mut cmd: Command) -> (String, String) {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty fills two fds we then own.
    let rc = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(rc, 0, "openpty");
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::from(slave)).spawn().unwrap();
    // The parent's copy of the slave went into the Command and is closed once spawned; read
    // the master until the child's end closes (EIO).
    drop(cmd);
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::from(master);
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match f.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        String::from_utf8_lossy(&buf).into_owned()
    });
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let status = child.wait().unwrap();
    assert!(status.code().is_some_and(|c| c < 2), "{status:?}");
    (stdout, reader.join().unwrap())
}

#[test]
fn a_terminal_sees_hosts_answered_of_the_total_and_stdout_never_does() {
    let (stdout, term) = with_pty_stderr(scan(&["scan"]));
    assert!(term.contains("4/4 host(s) answered"), "no progress on the terminal: {term:?}");
    assert!(term.contains("1/4 host(s) answered"), "progress is not counted up: {term:?}");
    assert!(term.ends_with("\r\x1b[2K"), "the status line is not erased at the end: {term:?}");
    assert!(!stdout.contains("answered"), "progress on stdout: {stdout}");
    assert!(stdout.contains("VERDICT"), "{stdout}");
}

#[test]
fn json_on_a_terminal_and_a_pipe_get_no_progress() {
    let (stdout, term) = with_pty_stderr(scan(&["scan", "--json"]));
    assert_eq!(term, "", "--json: stderr must stay quiet on a terminal");
    serde_json::from_str::<serde_json::Value>(&stdout).expect("stdout is the JSON document alone");

    let out = scan(&["scan"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "stderr not a terminal: nothing but documented lines (none for scan)");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("answered"));
}

#[test]
fn apply_and_rollback_show_agents_done_of_the_total_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo.json");
    let with = |args: &[&str]| {
        let mut c = scan(&["--demo-state", demo.to_str().unwrap()]);
        c.args(args).env("CODEX_FLEET_STATE_DIR", dir.path().join("state"));
        c
    };
    // Two agents the demo plans a change for, named exactly (host/container from the scan).
    let out = with(&["plan", "--json"]).output().unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<String> = plan["agents"].as_array().unwrap().iter().take(2).map(|a| a["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 2, "{plan}");
    let mut args = vec!["apply", "--yes", "--canary", "1", "--wave", "1"];
    for id in &ids {
        args.extend(["--agent", id.as_str()]);
    }
    let (stdout, term) = with_pty_stderr(with(&args));
    assert!(term.contains("agent(s) done"), "no progress on the terminal: {term:?}");
    assert!(term.contains("wave 1 · 1/2 agent(s) done") || term.contains("wave 1 · 2/2 agent(s) done"), "{term:?}");
    let last = term.rfind("agent(s) done").unwrap();
    assert!(term[last..].contains("\r\x1b[2K"), "the status line is erased after the run: {term:?}");
    assert!(!stdout.contains("agent(s) done"), "progress on stdout: {stdout}");
    let run_id = stdout.split_whitespace().nth(1).unwrap().trim_end_matches(':').to_string();
    assert!(run_id.len() > 10, "{stdout}");

    // A pipe gets the step lines only, never the status line.
    let out = with(&["rollback", "--yes", "--run", &run_id]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("agent(s) done") && !err.contains("\x1b[2K"), "{err}");
    assert!(out.status.code().is_some_and(|c| c < 2), "{err}");
}
