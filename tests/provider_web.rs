//! The `web` provider: against the real Prometheus HTTP API (JSON answers, a 400) and a
//! loopback server for bodies, headers, `null` values and timeouts.

#[path = "support/prometheus.rs"]
mod support;

use std::time::{Duration, Instant};

use rollgate::core::analysis::model::{Header, Metric, MetricProvider, WebMetric};
use rollgate::core::analysis::value::{Observation, Value};
use rollgate::providers::{ProviderError, ProviderSettings, build};
use support::{Backfill, FixedServer, Prometheus, SlowServer};

fn web(url: &str, json_path: Option<&str>) -> Metric {
    Metric {
        name: "web".into(),
        provider: MetricProvider {
            web: Some(WebMetric {
                url: url.into(),
                json_path: json_path.map(str::to_owned),
                ..WebMetric::default()
            }),
            ..MetricProvider::default()
        },
        ..Metric::default()
    }
}

async fn measure(m: &Metric) -> Result<Observation, ProviderError> {
    build(m, &ProviderSettings::default())?.measure(m).await
}

#[tokio::test]
async fn json_path_into_a_real_json_api() {
    let prom = Prometheus::start(&Backfill::new().gauge("answer", "", 42.0));
    let url = format!("{}/api/v1/query?query=answer", prom.url);

    let obs = measure(&web(&url, Some("{$.data.result[0].value[1]}")))
        .await
        .expect("value");
    assert_eq!(obs.result, Value::String("42".into()));
    assert_eq!(obs.value, "42");

    let obs = measure(&web(&url, Some("{$.status}")))
        .await
        .expect("status");
    assert_eq!(obs.result, Value::String("success".into()));

    // Default path `{$}`: the whole document; maps and lists are visible to conditions.
    let obs = measure(&web(&url, None)).await.expect("whole");
    let Value::Map(doc) = &obs.result else {
        panic!("not a map: {:?}", obs.result)
    };
    assert_eq!(doc.get("status"), Some(&Value::String("success".into())));

    let err = measure(&web(&url, Some("{$.data.missing}")))
        .await
        .expect_err("missing");
    assert_eq!(
        err.message,
        "Could not find JSONPath in body: missing is not found"
    );

    // A query without `query=` is a 400 from Prometheus.
    let err = measure(&web(&format!("{}/api/v1/query", prom.url), None))
        .await
        .expect_err("400");
    assert_eq!(err.message, "received non 2xx response code: 400");
}

#[tokio::test]
async fn post_body_headers_and_null() {
    let server = FixedServer::start(
        200,
        "application/json",
        r#"{"data":{"ok":true,"n":3,"none":null}}"#,
    );
    let mut m = web(&server.url, Some("{$.data.ok}"));
    {
        let w = m.provider.web.as_mut().expect("web");
        w.method = Some("POST".into());
        w.json_body = Some(serde_json::json!({"canary": "podinfo"}));
        w.headers = vec![Header {
            key: "Authorization".into(),
            value: "Bearer s3cret".into(),
        }];
    }
    let obs = measure(&m).await.expect("ok");
    assert_eq!(obs.result, Value::Bool(true));
    assert_eq!(obs.value, "true");
    let req = server.requests.lock().expect("lock")[0].clone();
    assert!(req.starts_with("POST / HTTP/1.1"), "{req}");
    assert!(
        req.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{req}"
    );
    assert!(req.contains("Bearer s3cret"), "{req}");
    assert!(req.ends_with(r#"{"canary":"podinfo"}"#), "{req}");

    let obs = measure(&web(&server.url, Some("{$.data.n}")))
        .await
        .expect("n");
    assert_eq!(obs.result, Value::Int(3));

    let err = measure(&web(&server.url, Some("{$.data.none}")))
        .await
        .expect_err("null");
    assert_eq!(err.message, "result of web metric produced no value");

    let mut both = web(&server.url, None);
    {
        let w = both.provider.web.as_mut().expect("web");
        w.body = Some("x".into());
        w.json_body = Some(serde_json::json!(1));
    }
    assert!(build(&both, &ProviderSettings::default()).is_err());
}

#[tokio::test]
async fn non_2xx_and_timeout() {
    let server = FixedServer::start(503, "application/json", "{}");
    let err = measure(&web(&server.url, None)).await.expect_err("503");
    assert_eq!(err.message, "received non 2xx response code: 503");

    let slow = SlowServer::start();
    let mut m = web(&slow.url, None);
    m.provider.web.as_mut().expect("web").timeout_seconds = Some(1);
    let started = Instant::now();
    let err = measure(&m).await.expect_err("timeout");
    assert!(err.message.contains("timed out"), "{}", err.message);
    assert!(started.elapsed() < Duration::from_secs(10));
}
