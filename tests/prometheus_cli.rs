//! `rollgate analyze` against a real Prometheus: success, failure, NaN, empty result,
//! Prometheus down (Error after the consecutive error limit), a PromQL syntax error, a
//! slow server, the address fallback, the builtin provider and Flagger MetricTemplates.

#[path = "support/prometheus.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{BAD, Backfill, HEALTHY, Prometheus, SlowServer, canary_data, closed_address};

struct Outcome {
    code: i32,
    status: serde_json::Value,
    stdout: String,
    stderr: String,
}

fn analyze(dir: &Path, yaml: &str, extra: &[&str], env: &[(&str, &str)]) -> Outcome {
    let file = dir.join(format!("t{}.yaml", rand_suffix()));
    std::fs::write(&file, yaml).expect("write template");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rollgate"));
    cmd.arg("analyze").arg("-f").arg(&file);
    cmd.args(["--output", "json", "--error-retry-interval", "100ms"]);
    cmd.args(extra);
    cmd.env_remove("ARGO_ROLLOUTS_PROMETHEUS_ADDRESS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run rollgate");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let status = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    Outcome {
        code: out.status.code().expect("exit code"),
        status,
        stdout,
        stderr,
    }
}

fn rand_suffix() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    u128::from(N.fetch_add(1, Ordering::Relaxed)) * 1_000_000_000
        + u128::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .subsec_nanos(),
        )
}

fn template(address: &str, query: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: t
spec:
  metrics:
  - name: m
{extra}    provider:
      prometheus:
        address: {address}
        query: '{query}'
"#
    )
}

fn data() -> Backfill {
    canary_data(
        canary_data(Backfill::new(), "test", "podinfo", HEALTHY),
        "test",
        "badinfo",
        BAD,
    )
    .gauge("nan_gauge", "", f64::NAN)
}

fn last_message(o: &Outcome) -> String {
    o.status["metricResults"][0]["measurements"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

const RATE: &str = "sum(rate(istio_requests_total{destination_workload=\"podinfo\",response_code!~\"5.*\"}[1m])) / sum(rate(istio_requests_total{destination_workload=\"podinfo\"}[1m]))";

#[test]
fn success_failure_nan_and_empty_through_the_cli() {
    let prom = Prometheus::start(&data());
    let dir = tempfile::tempdir().expect("dir");

    let ok = analyze(
        dir.path(),
        &template(&prom.url, RATE, "    successCondition: result[0] >= 0.99\n"),
        &[],
        &[],
    );
    assert_eq!(ok.code, 0, "{}\n{}", ok.stdout, ok.stderr);
    assert_eq!(ok.status["phase"], "Successful");
    let m = &ok.status["metricResults"][0];
    assert_eq!(m["measurements"][0]["value"], "[0.995]");
    assert_eq!(m["metadata"]["ResolvedPrometheusQuery"], RATE);

    let failed = analyze(
        dir.path(),
        &template(
            &prom.url,
            RATE,
            "    successCondition: result[0] >= 0.999\n",
        ),
        &[],
        &[],
    );
    assert_eq!(failed.code, 1, "{}\n{}", failed.stdout, failed.stderr);
    assert_eq!(
        failed.status["message"],
        "Metric \"m\" assessed Failed due to failed (1) > failureLimit (0)"
    );

    // NaN with a success-only condition is Failed; with both conditions Inconclusive.
    let nan = analyze(
        dir.path(),
        &template(
            &prom.url,
            "scalar(nan_gauge)",
            "    successCondition: result >= 0.9\n",
        ),
        &[],
        &[],
    );
    assert_eq!(nan.code, 1, "{}\n{}", nan.stdout, nan.stderr);
    assert_eq!(
        nan.status["metricResults"][0]["measurements"][0]["value"],
        "NaN"
    );
    let nan2 = analyze(
        dir.path(),
        &template(
            &prom.url,
            "scalar(nan_gauge)",
            "    successCondition: result >= 0.9\n    failureCondition: result < 0.9\n",
        ),
        &[],
        &[],
    );
    assert_eq!(nan2.code, 2, "{}\n{}", nan2.stdout, nan2.stderr);
    assert_eq!(nan2.status["phase"], "Inconclusive");

    // Empty result: result[0] is an evaluation error, retried; Error after 5 in a row.
    let started = Instant::now();
    let empty = analyze(
        dir.path(),
        &template(
            &prom.url,
            "istio_requests_total{destination_workload=\"ghost\"}",
            "    successCondition: result[0] >= 0.99\n",
        ),
        &[],
        &[],
    );
    assert_eq!(empty.code, 3, "{}\n{}", empty.stdout, empty.stderr);
    let m = &empty.status["metricResults"][0];
    assert_eq!(m["phase"], "Error");
    assert_eq!(m["error"], 5);
    // Argo drops the value of a measurement whose condition errored.
    assert!(
        m["measurements"][0]["value"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    );
    assert!(
        last_message(&empty).contains("metric result is nil or empty"),
        "{}",
        empty.stdout
    );
    assert!(
        empty.status["message"]
            .as_str()
            .unwrap_or_default()
            .contains("consecutiveErrors (5) > consecutiveErrorLimit (4)"),
        "{}",
        empty.stdout
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn down_syntax_error_and_slow_server_through_the_cli() {
    let prom = Prometheus::start(&data());
    let dir = tempfile::tempdir().expect("dir");

    // Prometheus down: five connection errors in a row, then Error (exit 3).
    let down = analyze(
        dir.path(),
        &template(
            &closed_address(),
            "up",
            "    successCondition: result[0] == 1\n",
        ),
        &[],
        &[],
    );
    assert_eq!(down.code, 3, "{}\n{}", down.stdout, down.stderr);
    let m = &down.status["metricResults"][0];
    assert_eq!(m["phase"], "Error");
    assert_eq!(m["consecutiveError"], 5);
    assert!(
        last_message(&down).contains("cannot connect"),
        "{}",
        down.stdout
    );
    assert!(
        down.status["message"]
            .as_str()
            .unwrap_or_default()
            .contains("consecutiveErrors (5) > consecutiveErrorLimit (4)"),
        "{}",
        down.stdout
    );

    // A PromQL syntax error: the server's message reaches the user.
    let bad = analyze(
        dir.path(),
        &template(
            &prom.url,
            "sum(rate(istio_requests_total[1m]",
            "    consecutiveErrorLimit: 0\n",
        ),
        &[],
        &[],
    );
    assert_eq!(bad.code, 3, "{}\n{}", bad.stdout, bad.stderr);
    let msg = last_message(&bad);
    assert!(msg.contains("parse error"), "{msg}");
    assert!(msg.contains("unclosed left parenthesis"), "{msg}");
    assert!(
        bad.status["message"]
            .as_str()
            .unwrap_or_default()
            .contains("unclosed left parenthesis"),
        "{}",
        bad.stdout
    );

    // A server that never answers: the measurement times out after `timeout` seconds.
    let slow = SlowServer::start();
    let started = Instant::now();
    let hung = analyze(
        dir.path(),
        &template(&slow.url, "up", "    consecutiveErrorLimit: 0\n")
            .replace("        query:", "        timeout: 1\n        query:"),
        &[],
        &[],
    );
    assert_eq!(hung.code, 3, "{}\n{}", hung.stdout, hung.stderr);
    assert!(last_message(&hung).contains("timeout"), "{}", hung.stdout);
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[test]
fn address_override_and_environment_fallback() {
    let prom = Prometheus::start(&data());
    let dir = tempfile::tempdir().expect("dir");
    let no_address = template("x", RATE, "    successCondition: result[0] >= 0.99\n")
        .replace("        address: x\n", "");

    let env = analyze(
        dir.path(),
        &no_address,
        &[],
        &[("ARGO_ROLLOUTS_PROMETHEUS_ADDRESS", prom.url.as_str())],
    );
    assert_eq!(env.code, 0, "{}\n{}", env.stdout, env.stderr);

    let none = analyze(dir.path(), &no_address, &[], &[]);
    assert_eq!(none.code, 3, "{}\n{}", none.stdout, none.stderr);
    assert!(
        none.stdout.contains("prometheus address is not configured"),
        "{}",
        none.stdout
    );

    // --prometheus replaces an in-cluster address.
    let over = analyze(
        dir.path(),
        &template(
            "http://prometheus.monitoring.svc:9090",
            RATE,
            "    successCondition: result[0] >= 0.99\n",
        ),
        &["--prometheus", &prom.url],
        &[],
    );
    assert_eq!(over.code, 0, "{}\n{}", over.stdout, over.stderr);
}

#[test]
fn builtin_metrics_and_flagger_metric_templates_through_the_cli() {
    let prom = Prometheus::start(&data());
    let dir = tempfile::tempdir().expect("dir");
    let builtin = |target: &str, failure_limit: u32| {
        format!(
            r"apiVersion: rollgate.dev/v1alpha1
kind: AnalysisTemplate
metadata:
  name: flagger-checks
spec:
  metrics:
  - name: request-success-rate
    failureLimit: {failure_limit}
    provider:
      builtin:
        metric: request-success-rate
        mesh: linkerd
        namespace: test
        target: {target}
        thresholdRange: {{min: 99}}
  - name: request-duration
    provider:
      builtin:
        metric: request-duration
        mesh: gatewayapi:v1
        namespace: test
        target: {target}
        thresholdRange: {{max: 500}}
"
        )
    };
    let ok = analyze(
        dir.path(),
        &builtin("podinfo", 0),
        &["--prometheus", &prom.url],
        &[],
    );
    assert_eq!(ok.code, 0, "{}\n{}", ok.stdout, ok.stderr);
    assert_eq!(
        ok.status["metricResults"][0]["measurements"][0]["value"],
        "99.5"
    );
    assert_eq!(
        ok.status["metricResults"][1]["measurements"][0]["value"],
        "235"
    );

    let bad = analyze(
        dir.path(),
        &builtin("badinfo", 0),
        &["--prometheus", &prom.url],
        &[],
    );
    assert_eq!(bad.code, 1, "{}\n{}", bad.stdout, bad.stderr);
    assert!(
        bad.status["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Halt badinfo.test advancement success rate 90.00% < 99%"),
        "{}",
        bad.stdout
    );

    // No traffic fails the check (Flagger), it does not loop on errors.
    let ghost = analyze(
        dir.path(),
        &builtin("ghost", 0),
        &["--prometheus", &prom.url],
        &[],
    );
    assert_eq!(ghost.code, 1, "{}\n{}", ghost.stdout, ghost.stderr);
    assert!(ghost.stdout.contains("no values found"), "{}", ghost.stdout);

    // Prometheus down fails the check too, immediately.
    let down = analyze(
        dir.path(),
        &builtin("podinfo", 0),
        &["--prometheus", &closed_address()],
        &[],
    );
    assert_eq!(down.code, 1, "{}\n{}", down.stdout, down.stderr);
    assert!(
        down.stdout.contains("Prometheus query failed"),
        "{}",
        down.stdout
    );

    // A Flagger MetricTemplate, rendered from --arg values, checked against thresholdRange.
    let metric_template = format!(
        r#"apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: error-rate
  namespace: test
spec:
  provider:
    type: prometheus
    address: {}
  query: |
    100 - sum(
        rate(
            istio_requests_total{{
              reporter="destination",
              destination_workload_namespace="{{{{ namespace }}}}",
              destination_workload=~"{{{{ target }}}}",
              response_code!~"5.*"
            }}[{{{{ interval }}}}]
        )
    )
    /
    sum(
        rate(
            istio_requests_total{{
              reporter="destination",
              destination_workload_namespace="{{{{ namespace }}}}",
              destination_workload=~"{{{{ target }}}}"
            }}[{{{{ interval }}}}]
        )
    ) * 100
"#,
        prom.url
    );
    let run = |target: &str, extra: &[&str]| {
        let target_arg = format!("target={target}");
        let mut args = vec![
            "--arg",
            target_arg.as_str(),
            "--arg",
            "thresholdRange.max=5",
        ];
        args.extend_from_slice(extra);
        analyze(dir.path(), &metric_template, &args, &[])
    };
    let ok = run("podinfo", &[]);
    assert_eq!(ok.code, 0, "{}\n{}", ok.stdout, ok.stderr);
    let value: f64 = ok.status["metricResults"][0]["measurements"][0]["value"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("value");
    assert!((value - 0.5).abs() < 1e-6, "{value}");
    let bad = run("badinfo", &[]);
    assert_eq!(bad.code, 1, "{}\n{}", bad.stdout, bad.stderr);
    assert!(
        bad.status["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Halt badinfo.test advancement error-rate 10.00 > 5"),
        "{}",
        bad.stdout
    );
    // A missing target is bad usage naming the argument.
    let missing = analyze(dir.path(), &metric_template, &[], &[]);
    assert_eq!(missing.code, 64, "{}\n{}", missing.stdout, missing.stderr);
    assert!(
        missing.stderr.contains("argument target"),
        "{}",
        missing.stderr
    );
}

/// The prometheus-related `conditions` vectors of argo-rollouts-cases.json: the result
/// comes from a real Prometheus answer of the vector's type, the verdict from
/// `rollgate analyze`.
#[test]
fn prometheus_condition_vectors_through_the_cli() {
    let prom = Prometheus::start(
        &data()
            .gauge("two", "i=\"a\"", 10.0)
            .gauge("two", "i=\"b\"", 11.0),
    );
    let dir = tempfile::tempdir().expect("dir");
    let all = support::vectors("argo-rollouts-cases.json");
    let cases: Vec<&serde_json::Value> = all["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .filter(|c| {
            c["source"]
                .as_str()
                .is_some_and(|s| s.contains("metricproviders/prometheus"))
        })
        .collect();
    assert!(cases.len() >= 5, "{}", cases.len());
    for case in cases {
        let query = match (&case["result_type"], &case["result"]) {
            (t, serde_json::Value::Number(n)) if t == "float" => {
                format!("scalar(vector({n}))")
            }
            (t, serde_json::Value::String(s)) if t == "float" && s == "NaN" => {
                "scalar(nan_gauge)".to_owned()
            }
            (t, serde_json::Value::Array(a)) if t == "float_list" => {
                assert_eq!(a, &[serde_json::json!(10.0), serde_json::json!(11.0)]);
                "sort(two)".to_owned()
            }
            (t, _) if t == "unsupported_prom_type" => "\"abc\"".to_owned(),
            other => panic!("unexpected case {other:?}"),
        };
        let mut conditions = String::new();
        for (key, field) in [
            ("success", "successCondition"),
            ("failure", "failureCondition"),
        ] {
            if let Some(c) = case[key].as_str().filter(|c| !c.is_empty()) {
                conditions.push_str(&format!("    {field}: '{c}'\n"));
            }
        }
        let yaml = template(&prom.url, &query.replace('\'', "''"), &conditions).replace(
            "  - name: m\n",
            "  - name: m\n    consecutiveErrorLimit: 0\n",
        );
        let out = analyze(dir.path(), &yaml, &[], &[]);
        let expected = case["expected"].as_str().expect("expected");
        let measurement = &out.status["metricResults"][0]["measurements"][0];
        assert_eq!(measurement["phase"], expected, "{case}\n{}", out.stdout);
        let code = match expected {
            "Successful" => 0,
            "Failed" => 1,
            "Inconclusive" => 2,
            _ => 3,
        };
        assert_eq!(out.code, code, "{case}\n{}\n{}", out.stdout, out.stderr);
        if let Some(v) = case["measurement_value"].as_str() {
            assert_eq!(measurement["value"], v, "{case}");
        }
        if let Some(e) = case["error_contains"].as_str() {
            assert!(
                measurement["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(e),
                "{case}\n{}",
                out.stdout
            );
        }
    }
}
