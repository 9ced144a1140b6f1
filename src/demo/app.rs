//! The demo's application: one version of `application-x` as an HTTP server
//! (`rollgate demo-app`). `GET /` answers with the version after a set latency; every
//! `error_every`-th request instead fails with 500 and the header
//! [`INJECTED_HEADER`], so the traffic generator can tell an injected error from a
//! failure caused by a traffic switch. `/metrics` exposes `http_requests_total{version,code}`
//! and the histogram `http_request_duration_seconds{version}` in Prometheus' text format.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;

/// Header on an error the application injected on purpose.
pub const INJECTED_HEADER: &str = "x-demo-injected-error";
/// Header carrying the version that answered.
pub const VERSION_HEADER: &str = "x-demo-version";

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 8] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// How one version behaves.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The version it reports.
    pub version: String,
    /// Every n-th request fails (0: never). Deterministic, so "5 %" is exactly 5 %.
    pub error_every: u64,
    /// Time spent on each request.
    pub latency: Duration,
}

struct AppState {
    config: AppConfig,
    requests: AtomicU64,
    ok: AtomicU64,
    errors: AtomicU64,
    buckets: [AtomicU64; BUCKETS.len()],
    sum_micros: AtomicU64,
}

/// Serve the application on `listener` until `shutdown` resolves.
///
/// # Errors
/// When the server fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: AppConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = Arc::new(AppState {
        config,
        requests: AtomicU64::new(0),
        ok: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        buckets: Default::default(),
        sum_micros: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/", get(root))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn root(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    let started = Instant::now();
    let n = s.requests.fetch_add(1, Ordering::Relaxed) + 1;
    tokio::time::sleep(s.config.latency).await;
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&s.config.version) {
        headers.insert(VERSION_HEADER, v);
    }
    let fail = s.config.error_every > 0 && n % s.config.error_every == 0;
    let status = if fail {
        headers.insert(INJECTED_HEADER, HeaderValue::from_static("true"));
        s.errors.fetch_add(1, Ordering::Relaxed);
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        s.ok.fetch_add(1, Ordering::Relaxed);
        StatusCode::OK
    };
    let secs = started.elapsed().as_secs_f64();
    for (i, le) in BUCKETS.iter().enumerate() {
        if secs <= *le {
            s.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }
    s.sum_micros.fetch_add(
        u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
    let body = if fail {
        format!("injected error ({})\n", s.config.version)
    } else {
        format!("application-x {}\n", s.config.version)
    };
    (status, headers, body)
}

async fn metrics(State(s): State<Arc<AppState>>) -> impl IntoResponse {
    let v = &s.config.version;
    let ok = s.ok.load(Ordering::Relaxed);
    let errors = s.errors.load(Ordering::Relaxed);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP http_requests_total Requests served, by version and status code."
    );
    let _ = writeln!(out, "# TYPE http_requests_total counter");
    let _ = writeln!(
        out,
        "http_requests_total{{version=\"{v}\",code=\"200\"}} {ok}"
    );
    let _ = writeln!(
        out,
        "http_requests_total{{version=\"{v}\",code=\"500\"}} {errors}"
    );
    let _ = writeln!(
        out,
        "# HELP http_request_duration_seconds Time to answer a request."
    );
    let _ = writeln!(out, "# TYPE http_request_duration_seconds histogram");
    for (i, le) in BUCKETS.iter().enumerate() {
        let _ = writeln!(
            out,
            "http_request_duration_seconds_bucket{{version=\"{v}\",le=\"{le}\"}} {}",
            s.buckets[i].load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "http_request_duration_seconds_bucket{{version=\"{v}\",le=\"+Inf\"}} {}",
        ok + errors
    );
    let _ = writeln!(
        out,
        "http_request_duration_seconds_sum{{version=\"{v}\"}} {}",
        s.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
    );
    let _ = writeln!(
        out,
        "http_request_duration_seconds_count{{version=\"{v}\"}} {}",
        ok + errors
    );
    ([("content-type", "text/plain; version=0.0.4")], out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_twentieth_request_fails_with_the_marker_and_metrics_count_them() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            AppConfig {
                version: "v3".into(),
                error_every: 20,
                latency: Duration::from_millis(1),
            },
            async move {
                let _ = rx.await;
            },
        ));
        let client = reqwest::Client::new();
        let mut injected = 0;
        for _ in 0..40 {
            let r = client
                .get(format!("http://{addr}/"))
                .send()
                .await
                .expect("get");
            assert_eq!(r.headers()[VERSION_HEADER], "v3");
            if r.status() == 500 {
                assert_eq!(r.headers()[INJECTED_HEADER], "true");
                injected += 1;
            } else {
                assert_eq!(r.status(), 200);
            }
        }
        assert_eq!(injected, 2);
        let m = client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        assert!(
            m.contains(r#"http_requests_total{version="v3",code="500"} 2"#),
            "{m}"
        );
        assert!(
            m.contains(r#"http_requests_total{version="v3",code="200"} 38"#),
            "{m}"
        );
        assert!(
            m.contains(r#"http_request_duration_seconds_count{version="v3"} 40"#),
            "{m}"
        );
        let _ = tx.send(());
        server.await.expect("join").expect("serve");
    }
}
