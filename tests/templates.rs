//! The shipped `analysis-templates/`: each one against a real, backfilled Prometheus, for
//! a healthy canary (passes) and a bad one (fails), through `rollgate analyze`; plus the
//! numbers each query computes, through the library.

#[path = "support/prometheus.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use rollgate::core::analysis::args::{merge_args, resolve_metric_args};
use rollgate::core::analysis::condition::{Condition, ConditionEnv};
use rollgate::core::analysis::model::{AnalysisTemplateSpec, Argument};
use rollgate::core::analysis::value::Value;
use rollgate::providers::{ProviderSettings, build};
use support::{BAD, Backfill, HEALTHY, Prometheus, canary_data};

/// The `--arg` pairs that point a template at the canary named `t` in namespace `test`.
type ArgsFor = fn(&str) -> Vec<(String, String)>;

/// (directory, args for a canary).
fn cases() -> Vec<(&'static str, ArgsFor)> {
    fn kv(pairs: &[(&str, String)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }
    vec![
        ("istio", |t| {
            kv(&[("namespace", "test".into()), ("workload", t.into())])
        }),
        ("linkerd", |t| {
            kv(&[("namespace", "test".into()), ("deployment", t.into())])
        }),
        ("nginx", |t| {
            kv(&[("namespace", "test".into()), ("ingress", t.into())])
        }),
        ("gateway-api-envoy", |t| {
            kv(&[(
                "cluster",
                format!("httproute/test/{t}/rule/0/backend/{t}-canary"),
            )])
        }),
        ("traefik", |t| {
            kv(&[("service", format!("test-{t}-canary-.*@kubernetescrd"))])
        }),
        ("http", |t| {
            kv(&[
                ("namespace", "test".into()),
                ("service", format!("{t}-canary")),
            ])
        }),
    ]
}

fn template_path(dir: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("analysis-templates")
        .join(dir)
        .join(file)
}

fn data() -> Backfill {
    canary_data(
        canary_data(Backfill::new(), "test", "podinfo", HEALTHY),
        "test",
        "badinfo",
        BAD,
    )
}

#[derive(serde::Deserialize)]
struct TemplateDoc {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    spec: AnalysisTemplateSpec,
}

/// What each shipped query computes on the backfilled data, and whether its condition
/// holds: success 0.995 vs 0.9, p99 235 ms vs ~989 ms.
#[tokio::test]
async fn template_queries_compute_the_expected_values() {
    let prom = Prometheus::start(&data());
    let mut checked = 0;
    for (dir, args_for) in cases() {
        for file in ["success-rate.yaml", "latency-p99.yaml"] {
            let path = template_path(dir, file);
            let text = std::fs::read_to_string(&path).expect("template file");
            let doc: TemplateDoc =
                serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(doc.api_version, "argoproj.io/v1alpha1");
            assert_eq!(doc.kind, "AnalysisTemplate");
            assert_eq!(doc.spec.metrics.len(), 1);
            for (target, healthy) in [("podinfo", true), ("badinfo", false)] {
                let incoming: Vec<Argument> = args_for(target)
                    .into_iter()
                    .chain([("prometheus-address".to_owned(), prom.url.clone())])
                    .map(|(name, value)| Argument {
                        name,
                        value: Some(value),
                        value_from: None,
                    })
                    .collect();
                let args = merge_args(&incoming, &doc.spec.args).expect("args");
                let metric =
                    resolve_metric_args(&doc.spec.metrics[0], &args).expect("resolved metric");
                let provider = build(&metric, &ProviderSettings::default()).expect("provider");
                let obs = provider.measure(&metric).await.expect("measurement");
                let Value::List(items) = &obs.result else {
                    panic!("{dir}/{file}: not a vector: {:?}", obs.result)
                };
                let Some(Value::Float(v)) = items.first() else {
                    panic!("{dir}/{file} {target}: no sample: {}", obs.value)
                };
                let (lo, hi) = match (file, healthy) {
                    ("success-rate.yaml", true) => (0.9949, 0.9951),
                    ("success-rate.yaml", false) => (0.8999, 0.9001),
                    (_, true) => (234.9, 235.1),
                    (_, false) => (985.0, 990.0),
                };
                assert!(
                    (lo..=hi).contains(v),
                    "{dir}/{file} {target}: {v} not in [{lo}, {hi}]"
                );
                let cond = Condition::compile(
                    metric
                        .success_condition
                        .as_deref()
                        .expect("successCondition"),
                )
                .expect("condition compiles");
                let held = cond
                    .evaluate(&ConditionEnv::new(&obs.result))
                    .expect("condition evaluates");
                assert_eq!(held, healthy, "{dir}/{file} {target}: {v}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 24);
}

fn analyze(files: &[PathBuf], args: &[(String, String)], prom: &str) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rollgate"));
    cmd.arg("analyze");
    for f in files {
        cmd.arg("-f").arg(f);
    }
    for (k, v) in args {
        cmd.arg("--arg").arg(format!("{k}={v}"));
    }
    cmd.args(["--arg", "interval=1s", "--arg", "count=2"]);
    cmd.args(["--prometheus", prom, "--output", "json"]);
    let out = cmd.output().expect("run rollgate analyze");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every shipped template pair, through `rollgate analyze`: Successful (exit 0) on the
/// healthy canary, Failed (exit 1) on the bad one, with Argo's status in JSON.
#[test]
fn templates_pass_and_fail_through_rollgate_analyze() {
    let prom = Prometheus::start(&data());
    for (dir, args_for) in cases() {
        let files = [
            template_path(dir, "success-rate.yaml"),
            template_path(dir, "latency-p99.yaml"),
        ];
        let (code, out, err) = analyze(&files, &args_for("podinfo"), &prom.url);
        assert_eq!(code, 0, "{dir} healthy:\n{out}\n{err}");
        let status: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{dir}: not JSON ({e}):\n{out}"));
        assert_eq!(status["phase"], "Successful", "{dir}: {status}");
        let results = status["metricResults"].as_array().expect("metricResults");
        assert_eq!(results.len(), 2, "{dir}");
        for r in results {
            assert_eq!(r["phase"], "Successful", "{dir}: {r}");
            assert_eq!(r["count"], 2, "{dir}: {r}");
        }

        let (code, out, err) = analyze(&files, &args_for("badinfo"), &prom.url);
        assert_eq!(code, 1, "{dir} bad:\n{out}\n{err}");
        let status: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{dir}: not JSON ({e}):\n{out}"));
        assert_eq!(status["phase"], "Failed", "{dir}: {status}");
        let message = status["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("assessed Failed due to failed"),
            "{dir}: {message}"
        );

        // No traffic at all: the guard makes it a failure, not an error loop.
        let (code, out, err) = analyze(&files, &args_for("ghost"), &prom.url);
        assert_eq!(code, 1, "{dir} no traffic:\n{out}\n{err}");
    }
}
