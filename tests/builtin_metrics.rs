//! Flagger's built-in metrics: every query vector rendered exactly (through the library
//! and `rollgate metrics render`), MetricTemplate rendering, and the `builtin` provider
//! against a real, backfilled Prometheus (values, thresholds, no data, Prometheus down).

#[path = "support/prometheus.rs"]
mod support;

use std::collections::BTreeMap;
use std::process::Command;

use rollgate::core::analysis::model::{BuiltinMetric, Metric, MetricProvider, ThresholdRange};
use rollgate::core::analysis::value::{AnalysisPhase, Observation, Value};
use rollgate::core::metrics::{
    BuiltinName, MetricTemplate, Observer, RenderError, TemplateModel, TemplateUse,
};
use rollgate::providers::{ProviderSettings, build};
use support::{BAD, Backfill, HEALTHY, Prometheus, canary_data, closed_address, vectors};

fn model_from(vars: &serde_json::Value) -> TemplateModel {
    let get = |k: &str| vars.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let target = get("target").unwrap_or_default();
    let mut m = TemplateModel::new(&get("namespace").unwrap_or_default(), &target);
    for (field, key) in [
        (&mut m.name, "name"),
        (&mut m.service, "service"),
        (&mut m.ingress, "ingress"),
        (&mut m.route, "route"),
        (&mut m.interval, "interval"),
    ] {
        if let Some(v) = get(key) {
            *field = v;
        }
    }
    if let Some(vars) = vars.get("variables").and_then(|v| v.as_object()) {
        for (k, v) in vars {
            m.variables
                .insert(k.clone(), v.as_str().unwrap_or_default().to_owned());
        }
    }
    m
}

fn rollgate() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rollgate"))
}

/// `builtin_query_test_vectors`: the query Flagger's tests expect to be sent, rendered by
/// the library and printed by `rollgate metrics render`, character for character.
#[test]
fn every_query_test_vector_renders_exactly() {
    let all = vectors("flagger-cases.json");
    let cases = all["builtin_query_test_vectors"]
        .as_array()
        .expect("vectors");
    assert!(cases.len() >= 12);
    for case in cases {
        let observer_name = case["observer"].as_str().expect("observer");
        let metric = BuiltinName::parse(case["metric"].as_str().expect("metric")).expect("name");
        let expected = case["expected_query_sent"].as_str().expect("query");
        let observer = if observer_name == "http" {
            Observer::for_provider("kubernetes")
        } else {
            Observer::for_provider(observer_name)
        }
        .expect("known observer");
        let model = model_from(&case["vars"]);
        let got = observer.render(metric, &model).expect("renders");
        assert_eq!(got, expected, "{}", case["test"]);

        // The same through the CLI.
        let mesh = if observer_name == "http" {
            "kubernetes"
        } else {
            observer_name
        };
        let mut cmd = rollgate();
        cmd.args([
            "metrics",
            "render",
            "--mesh",
            mesh,
            "--metric",
            metric.as_str(),
        ]);
        cmd.args(["--namespace", &model.namespace, "--target", &model.target]);
        cmd.args(["--interval", &model.interval, "--service", &model.service]);
        cmd.args(["--ingress", &model.ingress, "--route", &model.route]);
        let out = cmd.output().expect("run rollgate");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed = String::from_utf8(out.stdout).expect("utf8");
        assert_eq!(
            printed.strip_suffix('\n'),
            Some(expected),
            "CLI {}",
            case["test"]
        );
    }
}

/// `builtin_queries`: Flagger's multi-line templates collapse to the one-line forms, and
/// rollgate's templates render to the same strings.
#[test]
fn every_builtin_template_vector_renders_exactly() {
    let all = vectors("flagger-cases.json");
    let cases = all["builtin_queries"].as_array().expect("builtin_queries");
    for case in cases {
        let provider = case["provider"].as_str().expect("provider");
        let metric = BuiltinName::parse(case["metric"].as_str().expect("metric")).expect("name");
        let model = model_from(&case["vars"]);
        let expected = case["rendered"].as_str().expect("rendered");
        let observer = Observer::for_provider(provider).expect("observer");
        assert_eq!(
            observer.render(metric, &model).expect("renders"),
            expected,
            "{provider}"
        );
        // Flagger's own template text, rendered by rollgate's renderer, agrees too
        // (skipper's uses a Go template variable and printf).
        let from_flagger = rollgate::core::metrics::render_query(
            case["template"].as_str().expect("template"),
            &model,
        )
        .expect("flagger template renders");
        assert_eq!(from_flagger, expected, "{provider} (Flagger's template)");
    }
}

/// `template_rendering`: MetricTemplate queries, including a missing variable.
#[test]
fn metric_template_rendering_vectors() {
    let all = vectors("flagger-cases.json");
    for case in all["template_rendering"]
        .as_array()
        .expect("template_rendering")
    {
        let model = model_from(&case["vars"]);
        let tpl = MetricTemplate {
            api_version: "flagger.app/v1beta1".into(),
            kind: "MetricTemplate".into(),
            metadata: rollgate::core::metrics::TemplateMetadata {
                name: case["vars"]["name"].as_str().expect("name").into(),
                namespace: None,
            },
            spec: rollgate::core::metrics::MetricTemplateSpec {
                provider: rollgate::core::metrics::MetricTemplateProvider {
                    kind: "prometheus".into(),
                    address: Some("http://prometheus:9090".into()),
                    ..Default::default()
                },
                query: case["template"].as_str().expect("template").into(),
            },
        };
        let usage = TemplateUse {
            metric_name: None,
            model,
            threshold_range: None,
        };
        let got = tpl.to_metric(&usage);
        match case.get("rendered").and_then(|r| r.as_str()) {
            Some(expected) => {
                let m = got.expect("renders");
                let b = m.provider.builtin.expect("builtin");
                assert_eq!(b.query.as_deref(), Some(expected));
                assert_eq!(b.address.as_deref(), Some("http://prometheus:9090"));
            }
            None => {
                let err = got.expect_err("missing variable");
                assert!(
                    matches!(&err, rollgate::core::metrics::TemplateError::Render {
                        source: RenderError::MissingVariable(k), ..
                    } if k == "cluster"),
                    "{err}"
                );
                assert!(
                    err.to_string()
                        .contains("map has no entry for key \"cluster\"")
                );
            }
        }
    }
}

/// `MetricTemplate` YAML with `--arg`-style arguments for the model and thresholdRange.
#[test]
fn metric_template_yaml_to_metric() {
    let yaml = r#"
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: not-found-percentage
  namespace: istio-system
spec:
  provider:
    type: prometheus
    address: http://prometheus.istio-system:9090
  query: |
    100 - sum(
        rate(
            istio_requests_total{
              reporter="destination",
              destination_workload_namespace="{{ namespace }}",
              destination_workload="{{ target }}",
              response_code!="404"
            }[{{ interval }}]
        )
    )
    /
    sum(
        rate(
            istio_requests_total{
              reporter="destination",
              destination_workload_namespace="{{ namespace }}",
              destination_workload="{{ target }}"
            }[{{ interval }}]
        )
    ) * 100
"#;
    let doc: serde_yaml::Value = serde_yaml::from_str(yaml).expect("yaml");
    assert!(MetricTemplate::is_metric_template(&doc));
    let tpl: MetricTemplate = serde_yaml::from_value(doc).expect("template");
    let args: BTreeMap<String, String> = [
        ("namespace", "test"),
        ("target", "podinfo"),
        ("interval", "2m"),
        ("thresholdRange.max", "5"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let usage = TemplateUse::from_args(&tpl, &args).expect("args");
    let m = tpl.to_metric(&usage).expect("metric");
    assert_eq!(m.name, "not-found-percentage");
    let b = m.provider.builtin.expect("builtin");
    assert_eq!(
        b.threshold_range,
        Some(ThresholdRange {
            min: None,
            max: Some(5.0)
        })
    );
    assert_eq!(
        b.query.as_deref(),
        Some(
            "100 - sum( rate( istio_requests_total{ reporter=\"destination\", destination_workload_namespace=\"test\", destination_workload=\"podinfo\", response_code!=\"404\" }[2m] ) ) / sum( rate( istio_requests_total{ reporter=\"destination\", destination_workload_namespace=\"test\", destination_workload=\"podinfo\" }[2m] ) ) * 100 "
        )
    );
    // A missing target is an error naming the argument.
    let err = TemplateUse::from_args(&tpl, &BTreeMap::new()).expect_err("no target");
    assert!(err.to_string().contains("argument target"), "{err}");
}

fn builtin(mesh: &str, metric: &str, target: &str, range: Option<ThresholdRange>) -> Metric {
    Metric {
        name: format!("{mesh}-{metric}"),
        provider: MetricProvider {
            builtin: Some(BuiltinMetric {
                metric: metric.into(),
                mesh: mesh.into(),
                namespace: "test".into(),
                target: target.into(),
                threshold_range: range,
                ..BuiltinMetric::default()
            }),
            ..MetricProvider::default()
        },
        ..Metric::default()
    }
}

async fn measure(prom: &str, m: &Metric) -> Observation {
    let settings = ProviderSettings {
        prometheus_address: Some(prom.to_owned()),
        ..ProviderSettings::default()
    };
    let p = build(m, &settings).unwrap_or_else(|e| panic!("{}: {e}", m.name));
    p.measure(m)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", m.name))
}

fn float(v: &Value) -> f64 {
    match v {
        Value::Float(f) => *f,
        other => panic!("not a float: {other:?}"),
    }
}

fn min(v: f64) -> Option<ThresholdRange> {
    Some(ThresholdRange {
        min: Some(v),
        max: None,
    })
}

fn max(v: f64) -> Option<ThresholdRange> {
    Some(ThresholdRange {
        min: None,
        max: Some(v),
    })
}

/// The built-in queries of istio, linkerd, nginx, gatewayapi/kubernetes (http observer)
/// and traefik against backfilled series give the expected numbers, and the checks pass
/// or fail on them as Flagger's would.
#[tokio::test]
async fn builtin_metrics_against_real_prometheus() {
    let data = canary_data(
        canary_data(Backfill::new(), "test", "podinfo", HEALTHY),
        "test",
        "badinfo",
        BAD,
    );
    let prom = Prometheus::start(&data);
    let meshes = [
        "istio",
        "linkerd",
        "nginx",
        "gatewayapi:v1",
        "kubernetes",
        "traefik",
    ];
    for mesh in meshes {
        // Healthy: 99.5% success passes min 99; p99 235 ms (nginx: mean 75 ms) passes max 500.
        let obs = measure(
            &prom.url,
            &builtin(mesh, "request-success-rate", "podinfo", min(99.0)),
        )
        .await;
        let rate = float(&obs.result);
        assert!((rate - 99.5).abs() < 1e-6, "{mesh}: {rate}");
        assert_eq!(
            obs.phase,
            Some(AnalysisPhase::Successful),
            "{mesh}: {obs:?}"
        );
        let obs = measure(
            &prom.url,
            &builtin(mesh, "request-success-rate", "podinfo", min(95.0)),
        )
        .await;
        assert_eq!(
            obs.phase,
            Some(AnalysisPhase::Successful),
            "{mesh}: {obs:?}"
        );
        assert_eq!(obs.message, None);
        assert!(
            obs.metric_metadata["ResolvedPrometheusQuery"].starts_with(' '),
            "the query is sent as Flagger sends it"
        );

        let obs = measure(
            &prom.url,
            &builtin(mesh, "request-duration", "podinfo", max(500.0)),
        )
        .await;
        let ms = float(&obs.result);
        let expected = if mesh == "nginx" {
            // Mean: (0.05*80 + 0.1*10 + 0.25*10) / 100 s = 75 ms.
            75.0
        } else {
            235.0
        };
        assert!(
            ms == expected || ms == expected - 1.0,
            "{mesh}: {ms} ms, expected {expected} (truncated)"
        );
        assert_eq!(ms.fract(), 0.0, "{mesh}: durations are whole milliseconds");
        assert_eq!(
            obs.phase,
            Some(AnalysisPhase::Successful),
            "{mesh}: {obs:?}"
        );

        // Bad canary: 90% success fails min 99; p99 ≈ 989 ms fails max 500.
        let obs = measure(
            &prom.url,
            &builtin(mesh, "request-success-rate", "badinfo", min(99.0)),
        )
        .await;
        assert!((float(&obs.result) - 90.0).abs() < 1e-6, "{mesh}");
        assert_eq!(obs.phase, Some(AnalysisPhase::Failed), "{mesh}");
        assert_eq!(
            obs.message.as_deref(),
            Some("Halt badinfo.test advancement success rate 90.00% < 99%"),
            "{mesh}"
        );
        let obs = measure(
            &prom.url,
            &builtin(mesh, "request-duration", "badinfo", max(500.0)),
        )
        .await;
        assert_eq!(obs.phase, Some(AnalysisPhase::Failed), "{mesh}: {obs:?}");
        let msg = obs.message.expect("message");
        assert!(
            msg.starts_with("Halt badinfo.test advancement request duration ")
                && msg.ends_with(" > 500ms"),
            "{mesh}: {msg}"
        );

        // No traffic: the check fails with Flagger's message.
        let obs = measure(
            &prom.url,
            &builtin(mesh, "request-duration", "ghost", max(500.0)),
        )
        .await;
        assert_eq!(obs.phase, Some(AnalysisPhase::Failed), "{mesh}");
        assert_eq!(
            obs.message.as_deref(),
            Some(
                format!(
                    "Halt advancement no values found for {mesh} metric request-duration probably ghost.test is not receiving traffic"
                )
                .as_str()
            )
        );
        let obs = measure(
            &prom.url,
            &builtin(mesh, "request-success-rate", "ghost", min(99.0)),
        )
        .await;
        assert_eq!(obs.phase, Some(AnalysisPhase::Failed), "{mesh}");
        assert!(
            obs.message
                .as_deref()
                .is_some_and(|m| m.contains("no values found") && m.contains("ghost.test")),
            "{mesh}: {obs:?}"
        );
    }
}

/// Flagger's units: the bound is inclusive and durations are truncated before comparing.
#[tokio::test]
async fn duration_bound_is_inclusive_after_truncation() {
    let prom = Prometheus::start(&canary_data(Backfill::new(), "test", "podinfo", HEALTHY));
    let obs = measure(
        &prom.url,
        &builtin("istio", "request-duration", "podinfo", max(235.0)),
    )
    .await;
    let ms = float(&obs.result);
    // 235 ms (or 234 after truncating floating-point noise) passes max 235.
    assert!(ms <= 235.0, "{ms}");
    assert_eq!(obs.phase, Some(AnalysisPhase::Successful), "{obs:?}");
    let obs = measure(
        &prom.url,
        &builtin("istio", "request-duration", "podinfo", max(200.0)),
    )
    .await;
    assert_eq!(obs.phase, Some(AnalysisPhase::Failed), "{obs:?}");
}

/// Prometheus down or a query error fails the check (Flagger), it is not a provider error.
#[tokio::test]
async fn query_errors_fail_the_check() {
    let addr = closed_address();
    let obs = measure(
        &addr,
        &builtin("istio", "request-success-rate", "podinfo", min(99.0)),
    )
    .await;
    assert_eq!(obs.phase, Some(AnalysisPhase::Failed));
    let msg = obs.message.expect("message");
    assert!(
        msg.starts_with("Prometheus query failed: running query failed: "),
        "{msg}"
    );
    assert!(msg.contains("cannot connect"), "{msg}");

    // Unknown mesh or metric: a configuration error (measurement Error).
    let settings = ProviderSettings {
        prometheus_address: Some(addr),
        ..ProviderSettings::default()
    };
    let err = build(&builtin("istoi", "request-duration", "p", None), &settings)
        .err()
        .expect("unknown mesh");
    assert!(
        err.message.contains("builtin mesh \"istoi\" is unknown"),
        "{}",
        err.message
    );
    let err = build(&builtin("istio", "request-latency", "p", None), &settings)
        .err()
        .expect("unknown metric");
    assert!(
        err.message.contains("not a built-in metric"),
        "{}",
        err.message
    );
}

/// `rollgate metrics list` and `render --output json`, and bad usage.
#[test]
fn metrics_list_and_render_json() {
    let out = rollgate()
        .args(["metrics", "list", "--output", "json"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let items: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(items.len(), rollgate::core::metrics::MESHES.len() * 2);
    for mesh in [
        "istio",
        "linkerd",
        "nginx",
        "contour",
        "traefik",
        "gatewayapi",
        "kubernetes",
        "appmesh",
        "gloo",
        "osm",
        "kuma",
        "skipper",
        "apisix",
        "knative",
    ] {
        for metric in ["request-success-rate", "request-duration"] {
            assert!(
                items.iter().any(|i| i["mesh"] == mesh
                    && i["metric"] == metric
                    && i["template"]
                        .as_str()
                        .is_some_and(|t| t.contains("{{ interval }}"))),
                "{mesh} {metric}"
            );
        }
    }
    let text = rollgate().args(["metrics", "list"]).output().expect("run");
    assert!(text.status.success());
    assert_eq!(
        String::from_utf8_lossy(&text.stdout).lines().count(),
        items.len()
    );

    let out = rollgate()
        .args([
            "metrics",
            "render",
            "--mesh",
            "gatewayapi:v1",
            "--metric",
            "request-duration",
            "--namespace",
            "test",
            "--target",
            "podinfo",
            "--interval",
            "30s",
            "--output",
            "json",
        ])
        .output()
        .expect("run");
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["observer"], "http");
    assert_eq!(doc["unit"], "milliseconds");
    assert_eq!(
        doc["query"],
        " histogram_quantile( 0.99, sum( rate( http_request_duration_seconds_bucket{ kubernetes_namespace=\"test\", kubernetes_pod_name=~\"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)\" }[30s] ) ) by (le) )"
    );

    for (flag, value) in [("--mesh", "istoi"), ("--metric", "request-latency")] {
        let mut args = vec![
            "metrics",
            "render",
            "--mesh",
            "istio",
            "--metric",
            "request-duration",
            "--namespace",
            "a",
            "--target",
            "b",
        ];
        let i = args.iter().position(|a| *a == flag).expect("flag") + 1;
        args[i] = value;
        let out = rollgate().args(&args).output().expect("run");
        assert_eq!(out.status.code(), Some(64));
        assert!(String::from_utf8_lossy(&out.stderr).contains(value));
    }
}
