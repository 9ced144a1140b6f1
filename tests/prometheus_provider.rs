//! The `prometheus` provider against a real Prometheus (Debian's, backfilled with
//! promtool): Argo's result shaping vectors, NaN, empty results, warnings, Prometheus
//! down, a PromQL syntax error, a slow server, configuration errors, authentication.

#[path = "support/prometheus.rs"]
mod support;

use std::time::{Duration, Instant};

use rollgate::core::analysis::model::{
    Authentication, BasicAuth, Header, Metric, MetricProvider, PrometheusMetric, RangeQuery,
};
use rollgate::core::analysis::value::{Observation, Value};
use rollgate::providers::{ProviderError, ProviderSettings, build};
use support::{Backfill, FixedServer, Prometheus, SlowServer, closed_address, vectors};

fn metric(address: &str, query: &str) -> Metric {
    Metric {
        name: "m".into(),
        provider: MetricProvider {
            prometheus: Some(PrometheusMetric {
                address: Some(address.into()),
                query: query.into(),
                ..PrometheusMetric::default()
            }),
            ..MetricProvider::default()
        },
        ..Metric::default()
    }
}

async fn measure(m: &Metric) -> Result<Observation, ProviderError> {
    let p = build(m, &ProviderSettings::default())?;
    p.measure(m).await
}

fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::List(items) => items
            .iter()
            .map(|i| match i {
                Value::Float(f) => *f,
                other => panic!("not a float: {other:?}"),
            })
            .collect(),
        other => panic!("not a list: {other:?}"),
    }
}

fn data() -> Backfill {
    Backfill::new()
        .gauge("two", "i=\"a\"", 10.0)
        .gauge("two", "i=\"b\"", 11.0)
        .gauge("nan_gauge", "", f64::NAN)
        .counter("reqs_total", "code=\"200\"", 9.0)
        .counter("reqs_total", "code=\"500\"", 1.0)
}

/// Every `prometheus_results` vector of argo-rollouts-cases.json, through the provider.
#[tokio::test]
async fn argo_prometheus_result_vectors() {
    let prom = Prometheus::start(&data());
    let cases = vectors("argo-rollouts-cases.json");
    let cases = cases["prometheus_results"]
        .as_array()
        .expect("prometheus_results");
    assert!(!cases.is_empty());
    let mut checked = 0;
    for case in cases {
        let what = case["description"].as_str().expect("description");
        if let Some(expected) = case.get("expected_error") {
            // Configuration: basic auth with a password and no user.
            let mut m = metric(&prom.url, "vector(1)");
            m.provider.prometheus.as_mut().expect("prom").authentication = Some(Authentication {
                basic_auth: Some(BasicAuth {
                    username: String::new(),
                    password: "secret".into(),
                }),
                ..Authentication::default()
            });
            let err = measure(&m).await.expect_err(what);
            assert_eq!(err.message, expected.as_str().expect("text"), "{what}");
            checked += 1;
            continue;
        }
        if let Some(range) = case.get("range_query") {
            let mut m = metric(&prom.url, "two");
            m.provider.prometheus.as_mut().expect("prom").range_query = Some(RangeQuery {
                start: range["start"].as_str().expect("start").into(),
                end: "now()".into(),
                step: "15s".into(),
            });
            let err = measure(&m).await.expect_err(what);
            assert_eq!(
                err.message,
                case["expected_message"].as_str().expect("message"),
                "{what}"
            );
            checked += 1;
            continue;
        }
        let values: Vec<String> = case["prom_values"]
            .as_array()
            .expect("prom_values")
            .iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                n => n.to_string(),
            })
            .collect();
        let query = match case["prom_response_type"].as_str().expect("type") {
            "scalar" => {
                format!("scalar(vector({}))", values[0]).replace("vector(NaN)", "vector(NaN)")
            }
            "vector" if values == ["10"] => "sort(two) < 10.5".to_owned(),
            "vector" => panic!("unexpected vector case {what}"),
            "string" => "\"abc\"".to_owned(),
            other => panic!("unexpected type {other}"),
        };
        let got = measure(&metric(&prom.url, &query)).await;
        if case
            .get("expected_measurement_phase")
            .and_then(|p| p.as_str())
            == Some("Error")
        {
            let err = got.expect_err(what);
            assert_eq!(
                err.message, "Prometheus metric type not supported",
                "{what}"
            );
        } else {
            let obs = got.unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(
                obs.value,
                case["measurement_value"].as_str().expect("value"),
                "{what}"
            );
            match &case["result_as_seen_by_condition"] {
                serde_json::Value::Number(n) => {
                    assert_eq!(obs.result, Value::Float(n.as_f64().expect("f64")), "{what}");
                }
                serde_json::Value::String(s) if s == "NaN" => {
                    assert!(
                        matches!(obs.result, Value::Float(f) if f.is_nan()),
                        "{what}"
                    );
                }
                serde_json::Value::Array(a) => {
                    let want: Vec<f64> = a.iter().map(|x| x.as_f64().expect("f64")).collect();
                    assert_eq!(floats(&obs.result), want, "{what}");
                }
                other => panic!("{what}: unexpected expectation {other}"),
            }
            assert_eq!(
                obs.metric_metadata.get("ResolvedPrometheusQuery"),
                Some(&query),
                "{what}"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, cases.len());
}

/// Vector with two samples, an empty vector, NaN samples, +Inf, and a flattened matrix.
#[tokio::test]
async fn result_shapes_from_real_data() {
    let prom = Prometheus::start(&data());

    let obs = measure(&metric(&prom.url, "sort(two)")).await.expect("two");
    assert_eq!(floats(&obs.result), vec![10.0, 11.0]);
    assert_eq!(obs.value, "[10,11]");
    assert_eq!(obs.phase, None);

    let obs = measure(&metric(&prom.url, "two{i=\"missing\"}"))
        .await
        .expect("empty");
    assert_eq!(obs.result, Value::List(vec![]));
    assert_eq!(obs.value, "[]");

    let obs = measure(&metric(&prom.url, "nan_gauge")).await.expect("nan");
    let v = floats(&obs.result);
    assert_eq!(v.len(), 1);
    assert!(v[0].is_nan());
    assert_eq!(obs.value, "[NaN]");

    let obs = measure(&metric(&prom.url, "scalar(vector(1)) / 0"))
        .await
        .expect("inf");
    assert_eq!(obs.result, Value::Float(f64::INFINITY));
    assert_eq!(obs.value, "+Inf");

    // A success rate from counters: 9 of 10 requests per second are 200.
    let q = "sum(rate(reqs_total{code!~\"5..\"}[1m])) / sum(rate(reqs_total[1m]))";
    let obs = measure(&metric(&prom.url, q)).await.expect("rate");
    let v = floats(&obs.result);
    assert!((v[0] - 0.9).abs() < 1e-9, "{v:?}");

    // Range query: every series' values, series after series.
    let mut m = metric(&prom.url, "sort(two)");
    m.provider.prometheus.as_mut().expect("prom").range_query = Some(RangeQuery {
        start: "now() - duration(\"1m\")".into(),
        end: "now()".into(),
        step: "30s".into(),
    });
    let obs = measure(&m).await.expect("matrix");
    let v = floats(&obs.result);
    assert_eq!(v.len(), 6, "{v:?}");
    assert_eq!(v, vec![10.0, 10.0, 10.0, 11.0, 11.0, 11.0]);
    assert_eq!(obs.value, "[10,10,10,11,11,11]");
}

/// A PromQL syntax error: the server's own message reaches the user, with the query.
#[tokio::test]
async fn promql_syntax_error_carries_the_server_message() {
    let prom = Prometheus::start(&data());
    let q = "sum(rate(reqs_total[1m]";
    let err = measure(&metric(&prom.url, q))
        .await
        .expect_err("syntax error");
    assert!(err.message.contains(q), "{}", err.message);
    eprintln!("SYNTAX: {}", err.message);
    assert!(err.message.contains("bad_data"), "{}", err.message);
    assert!(err.message.contains("parse error"), "{}", err.message);
    assert!(
        err.message.contains("unclosed left parenthesis"),
        "{}",
        err.message
    );
}

/// Prometheus down: a closed port is an error naming the address; credentials in the
/// address never appear.
#[tokio::test]
async fn prometheus_down_is_an_error_without_secrets() {
    let addr = closed_address();
    let with_secret = addr.replace("http://", "http://admin:hunter2@");
    let err = measure(&metric(&with_secret, "up"))
        .await
        .expect_err("down");
    eprintln!("DOWN: {}", err.message);
    assert!(err.message.contains("cannot connect"), "{}", err.message);
    assert!(err.message.contains(&addr), "{}", err.message);
    assert!(!err.message.contains("hunter2"), "{}", err.message);
    assert!(!err.message.contains("admin"), "{}", err.message);
}

/// A server that accepts and never answers: the measurement ends at the timeout.
#[tokio::test]
async fn slow_server_times_out() {
    let slow = SlowServer::start();
    let mut m = metric(&slow.url, "up");
    m.provider.prometheus.as_mut().expect("prom").timeout = Some(1);
    let started = Instant::now();
    let err = measure(&m).await.expect_err("timeout");
    let took = started.elapsed();
    eprintln!("SLOW: {}", err.message);
    assert!(err.message.contains("timeout"), "{}", err.message);
    assert!(err.message.contains("\"up\""), "{}", err.message);
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

/// Argo's configuration messages.
#[tokio::test]
async fn configuration_errors_use_argos_messages() {
    let settings = ProviderSettings::default();
    let err = |m: &Metric| build(m, &settings).err().expect("error").message;

    let m = metric("localhost:9090", "up");
    assert_eq!(err(&m), "prometheus address is not is url format");
    let m = metric("not a url", "up");
    assert_eq!(err(&m), "prometheus address is not is url format");

    let mut m = metric("", "up");
    m.provider.prometheus.as_mut().expect("prom").address = None;
    // The test process does not set ARGO_ROLLOUTS_PROMETHEUS_ADDRESS.
    assert!(std::env::var_os("ARGO_ROLLOUTS_PROMETHEUS_ADDRESS").is_none());
    assert_eq!(err(&m), "prometheus address is not configured");
    // The run-wide default (what the env variable fills) is the fallback...
    let with_default = ProviderSettings {
        default_prometheus_address: Some("http://127.0.0.1:1".into()),
        ..ProviderSettings::default()
    };
    assert!(build(&m, &with_default).is_ok());
    // ...and --prometheus replaces even a bad address of the metric.
    let overridden = ProviderSettings {
        prometheus_address: Some("http://127.0.0.1:1".into()),
        ..ProviderSettings::default()
    };
    assert!(build(&metric("localhost:9090", "up"), &overridden).is_ok());

    let mut m = metric("http://127.0.0.1:1", "up");
    m.provider.prometheus.as_mut().expect("prom").timeout = Some(-1);
    assert_eq!(err(&m), "prometheus timeout should not be negative");

    for (user, pass, missing) in [("", "p", "username"), ("u", "", "password")] {
        let mut m = metric("http://127.0.0.1:1", "up");
        m.provider.prometheus.as_mut().expect("prom").authentication = Some(Authentication {
            basic_auth: Some(BasicAuth {
                username: user.into(),
                password: pass.into(),
            }),
            ..Authentication::default()
        });
        assert_eq!(
            err(&m),
            format!("missing mandatory parameter in metric for basic auth setup: {missing}")
        );
    }
}

/// Basic auth, bearer and custom headers reach the server; warnings are kept.
#[tokio::test]
async fn headers_auth_and_warnings() {
    let body = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]},"warnings":["w1","w2"]}"#;
    let server = FixedServer::start(200, "application/json", body);
    let mut m = metric(&server.url, "up");
    {
        let p = m.provider.prometheus.as_mut().expect("prom");
        p.headers = vec![Header {
            key: "X-Scope-OrgID".into(),
            value: "tenant-1".into(),
        }];
        p.authentication = Some(Authentication {
            basic_auth: Some(BasicAuth {
                username: "user".into(),
                password: "pass".into(),
            }),
            ..Authentication::default()
        });
    }
    let obs = measure(&m).await.expect("fixed answer");
    assert_eq!(
        obs.measurement_metadata.get("warnings").map(String::as_str),
        Some("\"w1\", \"w2\"")
    );
    let requests = server.requests.lock().expect("lock").clone();
    assert_eq!(requests.len(), 1);
    let req = requests[0].to_ascii_lowercase();
    assert!(req.starts_with("get /api/v1/query?query=up"), "{req}");
    assert!(req.contains("x-scope-orgid: tenant-1"), "{req}");
    // base64("user:pass")
    assert!(req.contains("authorization: basic dxnlcjpwyxnz"), "{req}");

    let bearer = FixedServer::start(200, "application/json", body);
    let mut m = metric(&bearer.url, "up");
    m.provider.prometheus.as_mut().expect("prom").headers = vec![Header {
        key: "Authorization".into(),
        value: "Bearer tok3n".into(),
    }];
    measure(&m).await.expect("bearer");
    let req = bearer.requests.lock().expect("lock")[0].clone();
    assert!(
        req.contains("Bearer tok3n") || req.contains("bearer tok3n"),
        "{req}"
    );
}

/// A proxy answering with a non-JSON error: status and body text in the message.
#[tokio::test]
async fn non_json_error_answers_are_reported() {
    let server = FixedServer::start(502, "text/plain", "upstream unavailable");
    let err = measure(&metric(&server.url, "up")).await.expect_err("502");
    assert!(err.message.contains("HTTP 502"), "{}", err.message);
    assert!(
        err.message.contains("upstream unavailable"),
        "{}",
        err.message
    );
}

/// OAuth2 client credentials: a token from the token URL, sent as a bearer token; a
/// refused token request is an error without the secret; missing fields are Argo's error.
#[tokio::test]
async fn oauth2_client_credentials() {
    use rollgate::core::analysis::model::OAuth2;
    let body = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"7"]}}"#;
    let prom = FixedServer::start(200, "application/json", body);
    let tokens = FixedServer::start(
        200,
        "application/json",
        r#"{"access_token":"tok-123","token_type":"bearer","expires_in":3600}"#,
    );
    let oauth = |token_url: &str, secret: &str| Authentication {
        oauth2: Some(OAuth2 {
            token_url: token_url.into(),
            client_id: "rollgate".into(),
            client_secret: secret.into(),
            scopes: vec!["read".into(), "metrics".into()],
        }),
        ..Authentication::default()
    };
    let mut m = metric(&prom.url, "up");
    m.provider.prometheus.as_mut().expect("prom").authentication =
        Some(oauth(&format!("{}/token", tokens.url), "s3cr3t"));
    let obs = measure(&m).await.expect("oauth2 measurement");
    assert_eq!(obs.result, Value::Float(7.0));
    let token_req = tokens.requests.lock().expect("lock")[0].clone();
    assert!(token_req.starts_with("POST /token "), "{token_req}");
    assert!(
        token_req.contains("grant_type=client_credentials"),
        "{token_req}"
    );
    assert!(token_req.contains("scope=read+metrics"), "{token_req}");
    // base64("rollgate:s3cr3t")
    assert!(
        token_req
            .to_ascii_lowercase()
            .contains("authorization: basic cm9sbgdhdgu6cznjcjn0"),
        "{token_req}"
    );
    let prom_req = prom.requests.lock().expect("lock")[0].clone();
    assert!(
        prom_req
            .to_ascii_lowercase()
            .contains("authorization: bearer tok-123"),
        "{prom_req}"
    );

    let refusing = FixedServer::start(401, "application/json", r#"{"error":"invalid_client"}"#);
    let mut m = metric(&prom.url, "up");
    m.provider.prometheus.as_mut().expect("prom").authentication =
        Some(oauth(&refusing.url, "s3cr3t"));
    let err = measure(&m).await.expect_err("refused");
    assert!(err.message.contains("OAuth2 token"), "{}", err.message);
    assert!(err.message.contains("HTTP 401"), "{}", err.message);
    assert!(!err.message.contains("s3cr3t"), "{}", err.message);

    let mut m = metric(&prom.url, "up");
    m.provider.prometheus.as_mut().expect("prom").authentication = Some(oauth(&refusing.url, ""));
    assert_eq!(
        measure(&m).await.expect_err("missing secret").message,
        "missing mandatory parameter in metric for OAuth2 setup"
    );
}
