//! SIGTERM and SIGINT trigger the shared shutdown signal. Each test re-runs itself as a
//! child process (this test binary, filtered to the one test, with an environment
//! variable set), so the signal reaches only that child.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rollgate::shutdown::Shutdown;

/// Set in the child to the signal it is sent.
const CHILD: &str = "ROLLGATE_SHUTDOWN_CHILD";

/// In the child: install the handlers, say so, and report that `wait` completed.
fn child() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let shutdown = Shutdown::new();
        shutdown
            .listen_for_signals()
            .expect("install signal handlers");
        let waiter = tokio::spawn(shutdown.wait());
        println!("READY");
        tokio::time::timeout(Duration::from_secs(20), waiter)
            .await
            .expect("the signal triggers the shutdown")
            .expect("waiter");
        assert!(shutdown.is_triggered());
        println!("SHUTDOWN-OBSERVED");
    });
}

/// In the parent: run `test` as a child, send it `signal` once its handlers are in place,
/// and check it observed the shutdown and exited cleanly.
fn parent(test: &str, signal: &str) {
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, signal)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let n = stdout
            .read_line(&mut line)
            .expect("read the child's output");
        assert!(
            n > 0,
            "the child ended before installing its handlers:\n{seen}"
        );
        seen.push_str(&line);
        if line.trim_end().ends_with("READY") {
            break;
        }
    }
    let pid = child.id().to_string();
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -{signal} {pid}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for the child") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the child did not exit after SIG{signal}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    stdout
        .read_to_string(&mut seen)
        .expect("rest of the output");
    assert!(
        seen.contains("SHUTDOWN-OBSERVED"),
        "SIG{signal} did not trigger the shutdown; child output:\n{seen}"
    );
    assert!(status.success(), "the child failed ({status}):\n{seen}");
}

#[test]
fn sigterm_triggers_the_shutdown() {
    match std::env::var(CHILD).as_deref() {
        Ok("TERM") => child(),
        _ => parent("sigterm_triggers_the_shutdown", "TERM"),
    }
}

#[test]
fn sigint_triggers_the_shutdown() {
    match std::env::var(CHILD).as_deref() {
        Ok("INT") => child(),
        _ => parent("sigint_triggers_the_shutdown", "INT"),
    }
}
