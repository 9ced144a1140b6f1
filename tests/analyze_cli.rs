//! `rollgate analyze` through the binary: verdict exit codes, Argo-shaped JSON, live view,
//! and clear errors for bad input. Metrics are measured over HTTP from a local server by
//! the `web` provider.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Serves fixed bodies by path on 127.0.0.1: `/ok` 0.99, `/bad` 0.5, `/json`
/// `{"data":{"ok":true}}`, anything else 500.
fn serve() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let req = String::from_utf8_lossy(&buf);
                let path = req.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (code, body) = match path.as_str() {
                    "/ok" => ("200 OK", "0.99"),
                    "/bad" => ("200 OK", "0.5"),
                    "/json" => ("200 OK", r#"{"data":{"ok":true}}"#),
                    _ => ("500 Internal Server Error", "oops"),
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 {code}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    format!("http://{addr}")
}

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Self(tempfile::tempdir().expect("tempdir"))
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    }
}

fn analyze(files: &[&Path], extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rollgate"));
    cmd.arg("analyze");
    for f in files {
        cmd.arg("-f").arg(f);
    }
    cmd.args(extra).output().expect("the binary runs")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("an exit code")
}

fn stdout_json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn template(name: &str, metric: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata:\n  name: {name}\nspec:\n  metrics:\n{metric}"
    )
}

fn web_metric(name: &str, url: &str, conditions: &str) -> String {
    format!("  - name: {name}\n{conditions}    provider:\n      web:\n        url: {url}\n")
}

#[test]
fn verdicts_map_to_exit_codes_with_argo_shaped_json() {
    let server = serve();
    let dir = Dir::new();
    let cases = [
        (
            "ok",
            "    successCondition: result >= 0.95\n",
            0,
            "Successful",
        ),
        ("bad", "    successCondition: result >= 0.95\n", 1, "Failed"),
        (
            "bad",
            "    successCondition: result > 0.9\n    failureCondition: result < 0.1\n",
            2,
            "Inconclusive",
        ),
    ];
    for (path, conditions, exit, phase) in cases {
        let f = dir.file(
            "t.yaml",
            &template(
                "t",
                &web_metric("rate", &format!("{server}/{path}"), conditions),
            ),
        );
        let o = analyze(&[&f], &["--output", "json"]);
        assert_eq!(code(&o), exit, "{}", stderr(&o));
        let status = stdout_json(&o);
        assert_eq!(status["phase"], phase);
        let r = &status["metricResults"][0];
        assert_eq!(r["name"], "rate");
        assert_eq!(r["count"], 1);
        assert_eq!(r["measurements"][0]["phase"], phase);
        assert!(status["runSummary"]["count"] == 1);
        assert!(
            stderr(&o).contains(&format!("rate: measurement {phase}")),
            "live view: {}",
            stderr(&o)
        );
    }
    let f = dir.file(
        "t.yaml",
        &template(
            "t",
            &web_metric(
                "rate",
                &format!("{server}/bad"),
                "    successCondition: result >= 0.95\n",
            ),
        ),
    );
    let o = analyze(&[&f], &["--output", "json"]);
    assert_eq!(
        stdout_json(&o)["message"],
        "Metric \"rate\" assessed Failed due to failed (1) > failureLimit (0)"
    );
}

#[test]
fn provider_errors_end_in_error_after_the_consecutive_error_limit() {
    let server = serve();
    let dir = Dir::new();
    let f = dir.file(
        "t.yaml",
        &template("t", &web_metric("rate", &format!("{server}/down"), "")),
    );
    let o = analyze(
        &[&f],
        &["--output", "json", "--error-retry-interval", "50ms"],
    );
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let status = stdout_json(&o);
    assert_eq!(status["phase"], "Error");
    let message = status["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Metric \"rate\" assessed Error due to consecutiveErrors (5) > consecutiveErrorLimit (4)"
        ),
        "{message}"
    );
    assert_eq!(status["metricResults"][0]["error"], 5);
}

#[test]
fn args_json_maps_and_rollgate_api_version() {
    let server = serve();
    let dir = Dir::new();
    let text = format!(
        "apiVersion: rollgate.dev/v1alpha1\nkind: AnalysisTemplate\nmetadata:\n  name: t\nspec:\n  metrics:\n  - name: ready\n    successCondition: \"{{{{ args.expect }}}} == result.data.ok\"\n    provider:\n      web:\n        url: {server}/{{{{args.path}}}}\n  args:\n  - name: path\n  - name: expect\n    value: \"true\"\n"
    );
    let f = dir.file("t.yaml", &text);
    let o = analyze(&[&f], &["--arg", "path=json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Phase:   Successful"), "{out}");
    assert!(out.contains("ready"), "{out}");
}

#[test]
fn an_analysis_run_document_runs_as_is() {
    let server = serve();
    let dir = Dir::new();
    let text = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisRun\nmetadata:\n  name: r\nspec:\n  metrics:\n  - name: rate\n    successCondition: result >= 0.95\n    provider:\n      web:\n        url: {server}/ok\n"
    );
    let f = dir.file("run.yaml", &text);
    let o = analyze(&[&f], &["--output", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn invalid_specs_are_error_runs_that_say_where() {
    let dir = Dir::new();
    let cases = [
        (
            "    provider:\n      web:\n        url: http://127.0.0.1:1/\n      prometheus:\n        query: up\n",
            "Analysis spec invalid: metrics[0]: multiple providers specified",
            "field `provider`",
        ),
        (
            "    successCondition: result >=\n    provider:\n      web:\n        url: http://127.0.0.1:1/\n",
            "Analysis spec invalid: metrics[0]: invalid successCondition \"result >=\": syntax error at 1:10",
            "field `successCondition`",
        ),
        (
            "    interval: 1d\n    provider:\n      web:\n        url: http://127.0.0.1:1/\n",
            "Analysis spec invalid: metrics[0]: invalid interval string: time: unknown unit \"d\" in duration \"1d\"",
            "field `interval`",
        ),
        (
            "    provider:\n      job:\n        spec: {}\n",
            "Metric \"rate\": provider job is not supported by rollgate analyze: provider.job runs a Kubernetes Job owned by its AnalysisRun",
            "field `provider.job`",
        ),
    ];
    for (body, message, field) in cases {
        let f = dir.file(
            "bad.yaml",
            &template("checks", &format!("  - name: other\n    provider:\n      web:\n        url: http://127.0.0.1:1/\n  - name: rate\n{body}")),
        );
        let o = analyze(&[&f], &["--output", "json"]);
        assert_eq!(code(&o), 3, "{}", stderr(&o));
        let got = stdout_json(&o)["message"].as_str().unwrap().to_owned();
        let want = message.replace("metrics[0]", "metrics[1]");
        assert!(got.starts_with(&want), "{got} vs {want}");
        if !field.is_empty() {
            let e = stderr(&o);
            assert!(
                e.contains("bad.yaml:11: AnalysisTemplate \"checks\": metric \"rate\"")
                    && e.contains(field),
                "{e}"
            );
        }
    }
}

#[test]
fn bad_input_exits_64_naming_file_line_and_field() {
    let dir = Dir::new();
    let malformed = dir.file(
        "malformed.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: a\nspec: {}\n",
    );
    let unknown = dir.file(
        "unknown.yaml",
        &template(
            "t",
            "  - name: rate\n    provider:\n      promethus:\n        query: up\n",
        ),
    );
    let one = dir.file(
        "one.yaml",
        &template("one", &web_metric("rate", "http://127.0.0.1:1/", "")),
    );
    let two = dir.file(
        "two.yaml",
        &template("two", &web_metric("rate", "http://127.0.0.1:1/", "")),
    );
    let needs_arg = dir.file(
        "args.yaml",
        &format!(
            "{}  args:\n  - name: service\n",
            template(
                "needs",
                &web_metric("rate", "http://127.0.0.1:1/{{args.service}}", "")
            )
        ),
    );
    let missing = dir.0.path().join("missing.yaml");
    let cases: Vec<(Vec<&Path>, Vec<&str>, Vec<&str>)> = vec![
        (vec![&malformed], vec![], vec!["malformed.yaml:4:"]),
        (
            vec![&unknown],
            vec![],
            vec![
                "unknown.yaml:9:7",
                "AnalysisTemplate \"t\"",
                "spec.metrics[0].provider: unknown field `promethus`",
            ],
        ),
        (vec![&missing], vec![], vec!["missing.yaml: cannot read"]),
        (
            vec![&one, &two],
            vec![],
            vec![
                "two metrics have the same name 'rate'",
                "one.yaml",
                "two.yaml",
            ],
        ),
        (
            vec![&needs_arg],
            vec![],
            vec!["args.yaml", "args.service was not resolved"],
        ),
        (
            vec![&one],
            vec!["--arg", "novalue"],
            vec!["--arg novalue: expected NAME=VALUE"],
        ),
        (
            vec![&one],
            vec!["--error-retry-interval", "1d"],
            vec!["--error-retry-interval: time: unknown unit \"d\" in duration \"1d\""],
        ),
    ];
    for (files, extra, wants) in cases {
        let o = analyze(&files, &extra);
        assert_eq!(code(&o), 64, "{files:?} {extra:?}: {}", stderr(&o));
        let e = stderr(&o);
        for w in wants {
            assert!(e.contains(w), "{w:?} not in {e}");
        }
        assert!(o.stdout.is_empty());
    }
}
