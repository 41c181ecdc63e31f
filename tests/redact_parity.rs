//! The on-host redactor (assets/redact.awk, run by the probe inside containers) and the Rust one
//! (codex::redact) must produce the same bytes on every input: the console restores and diffs
//! what the host redacted. Checked on a corpus (with golden outputs) and on generated lines.

use codex_fleet::codex::redact::{redact, redact_argv, restore};
use proptest::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const AWK: &str = include_str!("../assets/redact.awk");

/// Every awk on this machine that we can run the redactor with (mawk is the reference; busybox
/// and original-awk when present, since containers may only have those).
fn awks() -> Vec<Vec<String>> {
    let mut v = Vec::new();
    for (bin, pre) in [
        ("mawk", vec![]),
        ("awk", vec![]),
        ("busybox", vec!["awk"]),
        ("original-awk", vec![]),
    ] {
        let ok = Command::new("sh")
            .args(["-c", &format!("command -v {bin} >/dev/null")])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            let mut c = vec![bin.to_string()];
            c.extend(pre.iter().map(|s| s.to_string()));
            v.push(c);
        }
    }
    assert!(!v.is_empty(), "no awk found");
    v
}

fn run_awk(awk: &[String], input: &[u8], vars: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(&awk[0]);
    cmd.args(&awk[1..]).env("LC_ALL", "C");
    for (k, v) in vars {
        cmd.arg("-v").arg(format!("{k}={v}"));
    }
    cmd.arg(AWK)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let w = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    w.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{awk:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("awk output is UTF-8")
}

/// How the probe calls the awk on a file: `nonl=1` when the last byte is not a newline.
fn awk_text(awk: &[String], text: &str) -> String {
    let nonl = if !text.is_empty() && !text.ends_with('\n') {
        "1"
    } else {
        "0"
    };
    run_awk(awk, text.as_bytes(), &[("nonl", nonl)])
}

/// The probe feeds `/proc/PID/cmdline` with NULs turned into newlines.
fn awk_argv(awk: &[String], argv: &[String]) -> Vec<String> {
    let mut input = String::new();
    for a in argv {
        input.push_str(a);
        input.push('\n');
    }
    let out = run_awk(awk, input.as_bytes(), &[("argvmode", "1")]);
    out.strip_suffix('\n')
        .unwrap_or(&out)
        .split('\n')
        .map(String::from)
        .collect()
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/redact");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|e| e != "out"))
        .collect();
    v.sort();
    v
}

#[test]
fn corpus_parity_golden_and_restore() {
    let awks = awks();
    for f in fixtures() {
        let text = std::fs::read_to_string(&f).unwrap();
        let r = redact(&text);
        for awk in &awks {
            assert_eq!(
                awk_text(awk, &text),
                r.text,
                "awk {awk:?} vs Rust on {}",
                f.display()
            );
        }
        // Text that already holds a placeholder cannot be restored unambiguously.
        if !text.contains("<redacted:") {
            assert_eq!(
                restore(&r.text, &r.secrets).unwrap(),
                text,
                "restore of {}",
                f.display()
            );
        }
        let golden = f.with_file_name(format!("{}.out", f.file_name().unwrap().to_string_lossy()));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &r.text).unwrap();
        }
        let want = std::fs::read_to_string(&golden)
            .unwrap_or_else(|_| panic!("missing {}", golden.display()));
        assert_eq!(r.text, want, "golden {}", golden.display());
    }
}

#[test]
fn corpus_leaks_no_known_secret() {
    let secrets = [
        "mm-3f9a8b7c6d5e4f3a2b1c",
        "abc123",
        "tok-very-secret-value-123",
        "zz-key-value",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "mol_live_8f7e6d5c4b3a2910",
        "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "p@ss w0rd",
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
        "ghp_0123456789abcdefghijABCDEFGHIJ012345",
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "eyJhbGciOiJIUzI1NiJ9",
        "session=abcdef123456",
        "xoxb-1234567890-abcdefghij",
        "glpat-abcdefghij0123456789",
        "AIzaSyA1234567890abcdefghijklmnopqrstu",
        "hunter2",
        "dXNlcjpwYXNzd29yZA==",
        "0123456789abcdef",
        "sk-abcdefghijklmnopqrstuvwxyz012",
        "ASIAABCDEFGHIJKLMNOP",
        "värde",
        "日本語",
        "no newline at end",
        "never closed",
        // arrays.toml / arrays.json: every element of a secret's array, argv-style elements.
        "two words secret",
        "ghp_0123456789abcdefghijABCDEFGHIJ012345",
        "AIzaSyA1234567890abcdefghijklmnopqrstu",
        "abc123def456",
    ];
    let mut all = String::new();
    for f in fixtures() {
        all.push_str(&redact(&std::fs::read_to_string(&f).unwrap()).text);
    }
    for s in secrets {
        assert!(!all.contains(s), "secret {s:?} leaked:\n{all}");
    }
    for keep in [
        "MINIMAX_API_KEY",
        "MOLECULE_API_TOKEN",
        "\"file\"",
        "\"chatgpt\"",
        "200000",
        "8192",
        "${OPENAI_API_KEY:-}",
        "sk-short",
        "task-abcdefghijklmnopqrstuvwxyz",
        "Bearer authentication",
        "\"--api-key\"",
        "\"PATH=/usr/bin:/bin\"",
        "\"--name\", \"plain\"",
        "[8080, 8081]",
        "user = \"ops\"",
    ] {
        assert!(all.contains(keep), "{keep:?} should not be redacted");
    }
}

#[test]
fn redacted_toml_stays_valid() {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/redact/codex-config.toml");
    let text = std::fs::read_to_string(f).unwrap();
    text.parse::<toml_edit::DocumentMut>()
        .expect("fixture is valid TOML");
    redact(&text)
        .text
        .parse::<toml_edit::DocumentMut>()
        .expect("redacted TOML stays valid");
}

#[test]
fn argv_parity() {
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "codex",
            "--api-key",
            "k-1",
            "-c",
            "model_providers.x.api_key=\"v\"",
            "app-server",
        ],
        vec![
            "node",
            "/usr/local/bin/codex",
            "--token=abc",
            "-H",
            "Authorization: Bearer abc123def456",
            "",
        ],
        vec![
            "codex",
            "-c",
            "sandbox_mode=\"workspace-write\"",
            "--password",
            "-x",
            "--secret",
            "s e c",
        ],
        vec![
            "codex",
            "exec",
            "sk-abcdefghijklmnopqrstuvwxyz",
            "--auth",
            "sk-abcdefghijklmnopqrstuvwxyz",
        ],
        vec!["codex", "-c", "k.secret='''x"],
        // Rule 4: `NAME=VALUE` whole, blanks included; arrays inside an argument end with it.
        vec![
            "env",
            "GITHUB_TOKEN=two words",
            "--password=p w",
            "-c",
            "api_keys=[\"a b\", 'c'",
            "x",
        ],
        vec![
            "codex",
            "-c",
            "mcp.args=[\"--token\", \"t t\"]",
            "--api-key",
            "--token",
            "v",
        ],
        vec![
            "sh",
            "-c",
            "X_TOKEN==v",
            "--auth=\"q\"",
            "--auth={a=1}",
            "---token=x",
            "--token=",
        ],
    ];
    for awk in awks() {
        for c in &cases {
            let argv: Vec<String> = c.iter().map(|s| s.to_string()).collect();
            assert_eq!(
                awk_argv(&awk, &argv),
                redact_argv(&argv),
                "{awk:?} on {argv:?}"
            );
        }
    }
}

/// Labels (issue 10 item 6): the host's awk reads them as docker's `{{json $k}} {{json $v}}`
/// lines and must print, per label, what the Docker backend keeps (`redact_label`).
#[test]
fn label_parity() {
    use codex_fleet::fleet::aws::host_script::{label_line, parse_labels};
    use codex_fleet::fleet::docker::redact_label;
    let labels: Vec<(&str, &str)> = vec![
        ("auth.token", "Bearer abc def"),
        ("api key", "k1 k2"),
        ("password", "two words"),
        ("password", ""),
        ("note", "password=two words"),
        ("note2", "TOKEN=x y\nsecond line"),
        ("multi", "line1\napi_key = \"s3\"\nline3\r\n"),
        ("esc", "\u{1b}]52;c;Zm9v\u{7}\u{1b}[2J\u{7f} \u{9b}31m"),
        ("uni", "värde 日本語 \u{2028} \u{fffd} 😀"),
        ("pct", "100% =sure= %0a"),
        ("k=with=eq", "v"),
        (
            "plain",
            "sk-abcdefghijklmnopqrstuvwxyz012 and ghp_abcdefghijklmnopqrstuvwxyz0123",
        ),
        ("args", "--api-key sk-short"),
        ("quote\"key", "back\\slash \"q\""),
        ("empty", ""),
    ];
    let mut input = String::new();
    let mut want = String::new();
    for (k, v) in &labels {
        input.push_str(&format!(
            "{} {}\n",
            serde_json::to_string(k).unwrap(),
            serde_json::to_string(v).unwrap()
        ));
        want.push_str(&label_line(k, &redact_label(k, v)));
        want.push('\n');
    }
    // docker's own escapes for U+2028 and invalid UTF-8, which serde_json does not produce.
    input.push_str("\"go\" \"a\\u2028b\\ufffdc\\u001b\\u00e9\\/\"\n\n");
    want.push_str(&label_line(
        "go",
        &redact_label("go", "a\u{2028}b\u{fffd}c\u{1b}é/"),
    ));
    want.push('\n');
    for awk in awks() {
        let got = run_awk(&awk, input.as_bytes(), &[("labelmode", "1")]);
        assert_eq!(got, want, "{awk:?}");
    }
    let back = parse_labels(&want);
    assert_eq!(
        back.len(),
        labels.len(),
        "one label per key (`password` twice, `go` once more)"
    );
    assert_eq!(
        back["multi"].lines().count(),
        3,
        "a value with lines stays one label"
    );
    assert_eq!(back["k=with=eq"], "v");
    for leak in [
        "abc def",
        "k1",
        "k2",
        "two words",
        "words",
        "x y",
        "second line",
        "s3",
        "sk-abcdefghij",
        "ghp_abcdef",
    ] {
        assert!(!want.contains(leak), "{leak:?} leaked: {want}");
    }
}

/// The boot check's WARN line (issue 10 item 6): the host's awk (bootmode) selects, trims,
/// redacts and cuts the line exactly as the Docker backend does (`boot_warn_in_log`).
#[test]
fn boot_warn_parity() {
    use codex_fleet::fleet::docker::boot_warn_in_log;
    let long: String = "é".repeat(290) + &"x".repeat(40);
    let logs: Vec<String> = vec![
        String::new(),
        "[start] boot\nno warning here\n".into(),
        "WARN: network boot check failed: GET http://g/api/v1/version returned 000; continuing boot\n".into(),
        "WARN: network boot check failed: GET http://g/api/v1/version?token=abc def returned 000\r\nlater\n".into(),
        "WARN boot check 1 Bearer abc123def456\n  WARN: Boot Check 2 password=two words api_key: \"k k\"  \t\n".into(),
        format!("\u{1b}]52;c;Zm9v\u{7}WARN /api/v1/version {long}\n"),
        format!("WARN boot check sk-abcdefghijklmnopqrstuvwxyz {long}"),
        "warn boot check lower case\nWARN but not the check\n".into(),
        format!("WARN boot check {}\n", "sk-abcdefghijklmnopqrstuvwxyz ".repeat(20)),
    ];
    for awk in awks() {
        for log in &logs {
            let got = run_awk(&awk, log.as_bytes(), &[("bootmode", "1")]);
            let want = boot_warn_in_log(log).unwrap_or_default();
            assert_eq!(got, want, "{awk:?} on {log:?}");
            assert!(want.chars().count() <= 300);
        }
    }
    let w = boot_warn_in_log(&logs[4]).unwrap();
    assert!(
        w.starts_with("WARN: Boot Check 2") && !w.contains("two words") && !w.contains("k k"),
        "{w}"
    );
}

/// Fragments that steer generated lines into every branch of the scanner.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "api_key", "token", "Authorization", "env_key", "x_env_var", "password", "auth", "name", "a.b.secret",
            "max_tokens", "cli_auth_credentials_store", "\"X-Api-Key\"", "'cookie'", "export ", "--token", "k",
            "api_keys", "args", "env", "\"--api-key\"", "\"TOKEN=", "--password=", "-t", "= [", ": [\"",
        ]).prop_map(String::from),
        3 => prop::sample::select(vec![
            " = ", "=", ": ", ":", "==", "://", "::", " ", "\t", "\"", "'", "\"\"\"", "'''", "{", "}", "[", "]",
            ",", ";", "#", "\\", "\\\"", "\n", "\r", "$", "${X}", "$HOME", "true", "false", "<redacted:1>", "é", "日",
        ]).prop_map(String::from),
        2 => prop::sample::select(vec![
            "sk-", "sk-proj-abcdefghijklmnopqrst", "ghp_abcdefghijklmnopqrst12", "github_pat_abcdefghij0123456789",
            "glpat-", "xoxb-", "xoxq-0123456789", "AKIA", "ASIAABCDEFGHIJKLMNOP", "AIza", "eyJabcdefghij", ".abcd",
            "Bearer ", "bearer\t", "Basic ", "token ", "digest ", "abc123def", "0123456789",
        ]).prop_map(String::from),
        2 => "[a-zA-Z0-9_.-]{1,12}",
        1 => "[ -~]{1,6}",
    ]
}

fn doc() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn generated_text_parity(text in doc()) {
        let r = redact(&text);
        for awk in awks() {
            prop_assert_eq!(awk_text(&awk, &text), r.text.clone(), "awk {:?} on {:?}", awk, text);
        }
        if !text.contains("<redacted:") {
            prop_assert_eq!(restore(&r.text, &r.secrets).unwrap(), text.clone());
        }
    }

    #[test]
    fn generated_label_parity(k in "[a-z_. ]{1,8}", v in doc()) {
        use codex_fleet::fleet::aws::host_script::label_line;
        let input = format!("{} {}\n", serde_json::to_string(&k).unwrap(), serde_json::to_string(&v).unwrap());
        let want = format!("{}\n", label_line(&k, &codex_fleet::fleet::docker::redact_label(&k, &v)));
        for awk in awks() {
            prop_assert_eq!(run_awk(&awk, input.as_bytes(), &[("labelmode", "1")]), want.clone(), "awk {:?} on {:?}", awk, v);
        }
    }

    #[test]
    fn generated_argv_parity(argv in prop::collection::vec(prop::collection::vec(fragment(), 0..5).prop_map(|v| v.concat().replace(['\n', '\r'], " ")), 1..6)) {
        let want = redact_argv(&argv);
        for awk in awks() {
            prop_assert_eq!(awk_argv(&awk, &argv), want.clone(), "awk {:?} on {:?}", awk, argv);
        }
    }
}
