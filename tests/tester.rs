//! `rollgate tester` through the binary: allowed smoke commands run (exit 0 → 200, non-zero
//! → 500 with the output), others are refused (403), a timeout kills the command's process
//! group, HTTP checks, and steady load against a loopback server.

#[path = "support/hooks.rs"]
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

struct Tester {
    child: Child,
    url: String,
}

impl Drop for Tester {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str], env: &[(&str, &str)]) -> Tester {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rollgate"));
    cmd.args([
        "tester",
        "--listen",
        "127.0.0.1:0",
        "--max-timeout",
        "5s",
        "--max-rps",
        "100",
    ])
    .args(extra)
    .env_remove("ROLLGATE_TESTER_ALLOW")
    .env_remove("ROLLGATE_TESTER_ALLOW_FILE")
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("rollgate tester starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("reads the address line");
    let addr = line
        .trim()
        .strip_prefix("rollgate tester listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Tester {
        child,
        url: format!("http://{addr}/"),
    }
}

async fn hook(t: &Tester, metadata: serde_json::Value) -> (u16, String) {
    let body = json!({"name": "smoke", "namespace": "test", "phase": "Progressing", "checksum": "c", "metadata": metadata});
    let r = reqwest::Client::new()
        .post(&t.url)
        .json(&body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("tester answers");
    let status = r.status().as_u16();
    (status, r.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_commands_run_and_others_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let list = dir.path().join("allow");
    std::fs::write(&list, "# smoke tests\nsh -c 'echo broken >&2; exit 3'\n").expect("write");
    let t = start(
        &["--allow-file", list.to_str().expect("utf8")],
        &[("ROLLGATE_TESTER_ALLOW", "echo smoke *\ntrue")],
    );

    let (s, body) = hook(&t, json!({"type": "cmd", "cmd": "echo smoke 'passed ok'"})).await;
    assert_eq!((s, body.as_str()), (200, "smoke passed ok\n"));

    let (s, _) = hook(&t, json!({"type": "cmd", "cmd": "true"})).await;
    assert_eq!(s, 200, "entry from the environment");

    let (s, body) = hook(
        &t,
        json!({"type": "cmd", "cmd": "sh -c 'echo broken >&2; exit 3'"}),
    )
    .await;
    assert_eq!(s, 500);
    assert!(
        body.contains("exit status 3") && body.contains("broken"),
        "{body}"
    );

    // Not on the list, and a shell asked for a wildcard entry: refused, nothing runs.
    let marker = dir.path().join("ran");
    let cmd = format!("touch {}", marker.display());
    let (s, _) = hook(&t, json!({"type": "cmd", "cmd": cmd})).await;
    assert_eq!(s, 403);
    let (s, _) = hook(
        &t,
        json!({"type": "cmd", "cmd": format!("echo smoke; {cmd}"), "shell": "true"}),
    )
    .await;
    assert_eq!(s, 403);
    // Without a shell, `;` is just an argument of echo.
    let (s, body) = hook(
        &t,
        json!({"type": "cmd", "cmd": format!("echo smoke ';' {cmd}")}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("touch"), "{body}");
    assert!(!marker.exists(), "a refused command ran");

    let (s, _) = hook(&t, json!({"type": "nope"})).await;
    assert_eq!(s, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_kills_the_command_and_its_children() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("survived");
    // The touch runs in a subshell: killing only `sh` would leave it to run.
    let line = format!("(sleep 1; touch {}) & wait", marker.display());
    let t = start(&["--allow", &line, "--allow", "sleep 3"], &[]);

    let start = Instant::now();
    let (s, body) = hook(
        &t,
        json!({"type": "cmd", "cmd": "sleep 3", "timeout": "300ms"}),
    )
    .await;
    assert_eq!(s, 500);
    assert!(body.contains("timed out"), "{body}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "waited {:?}",
        start.elapsed()
    );

    let (s, body) = hook(
        &t,
        json!({"type": "cmd", "cmd": line, "shell": "true", "timeout": "300ms"}),
    )
    .await;
    assert_eq!(s, 500, "{body}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!marker.exists(), "the shell's child outlived the timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_checks_and_steady_load() {
    let app = support::serve(vec![(200, Duration::ZERO, "ok")]).await;
    let broken = support::serve(vec![(503, Duration::ZERO, "no")]).await;
    let t = start(&[], &[]);

    let (s, _) = hook(&t, json!({"type": "http", "url": app.url})).await;
    assert_eq!(s, 200);
    let (s, body) = hook(&t, json!({"type": "http", "url": broken.url})).await;
    assert_eq!((s, body.as_str()), (500, "HTTP 503"));

    let before = app.seen().len();
    let (s, body) = hook(
        &t,
        json!({"type": "load", "url": app.url, "rps": "20", "duration": "1s", "wait": "true"}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let report: serde_json::Value = serde_json::from_str(&body).expect("JSON report");
    assert_eq!(report["sent"], 20);
    assert_eq!(report["ok"], 20);
    assert_eq!(app.seen().len() - before, 20);
    let times: Vec<_> = app.seen()[before..].iter().map(|s| s.at).collect();
    let span = *times.last().expect("some") - times[0];
    assert!(
        span >= Duration::from_millis(850),
        "20 at 20 rps spread over ~1s, got {span:?}"
    );

    // Over the bound: refused. Background load: accepted at once.
    let (s, _) = hook(
        &t,
        json!({"type": "load", "url": app.url, "rps": "1000", "duration": "1s"}),
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = hook(
        &t,
        json!({"type": "load", "url": app.url, "rps": 5, "duration": "400ms"}),
    )
    .await;
    assert_eq!(s, 202);
}
