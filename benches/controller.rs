//! Query coalescing against a real Prometheus: `RUNS` analysis runs (default 1,000) each
//! measure one of `DISTINCT` queries (default 10) once per round, for `ROUNDS` rounds,
//! through the controller's provider path (`providers::build` + `Coalescer`), with a
//! 5 s window and with coalescing off. Prints upstream requests, wall time and queries/s.
//!
//! `cargo bench --bench controller` (env `RUNS`, `DISTINCT`, `ROUNDS` to change the size).
//! It does not measure the reconcilers against the API server (RSS, CPU, reconcile
//! latency); see the README.

#[path = "../tests/support/prometheus.rs"]
mod prometheus;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rollgate::controller::Coalescer;
use rollgate::core::analysis::model::{Metric, MetricProvider, PrometheusMetric};
use rollgate::providers::{ProviderSettings, build};
use rollgate::telemetry::Telemetry;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn metric(address: &str, i: usize) -> Metric {
    Metric {
        name: "success-rate".into(),
        interval: Some("10s".into()),
        provider: MetricProvider {
            prometheus: Some(PrometheusMetric {
                address: Some(address.to_owned()),
                query: format!(
                    "sum(rate(http_requests_total{{service=\"svc-{i}\",code=\"200\"}}[1m]))"
                ),
                ..PrometheusMetric::default()
            }),
            ..MetricProvider::default()
        },
        ..Metric::default()
    }
}

async fn round_trip(
    address: &str,
    runs: usize,
    distinct: usize,
    rounds: usize,
    window: Duration,
) -> (u64, usize, Duration) {
    let coalescer = Arc::new(Coalescer::new(window, Telemetry::new()));
    let settings = ProviderSettings::default();
    let metrics: Vec<Metric> = (0..runs).map(|r| metric(address, r % distinct)).collect();
    let providers: Vec<_> = metrics
        .iter()
        .map(|m| {
            let p = build(m, &settings).expect("provider");
            coalescer.wrap(m, &settings, p)
        })
        .collect();
    let started = Instant::now();
    let mut errors = 0;
    for _ in 0..rounds {
        let answers =
            futures::future::join_all(providers.iter().zip(&metrics).map(|(p, m)| p.measure(m)))
                .await;
        errors += answers.iter().filter(|a| a.is_err()).count();
    }
    (coalescer.upstream_requests(), errors, started.elapsed())
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let runs = env("RUNS", 1000);
    let distinct = env("DISTINCT", 10).max(1);
    let rounds = env("ROUNDS", 3).max(1);
    let mut data = prometheus::Backfill::new();
    for i in 0..distinct {
        data = data.counter(
            "http_requests_total",
            &format!("service=\"svc-{i}\",code=\"200\""),
            10.0,
        );
    }
    let prom = prometheus::Prometheus::start(&data);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("{runs} runs, {distinct} distinct queries, {rounds} rounds");
    for (label, window) in [
        ("coalesced (5s window)", Duration::from_secs(5)),
        ("not coalesced", Duration::ZERO),
    ] {
        let (upstream, errors, took) =
            rt.block_on(round_trip(&prom.url, runs, distinct, rounds, window));
        let measurements = runs * rounds;
        println!(
            "{label:>22}: {measurements} measurements ({errors} errors), {upstream} Prometheus requests in {:.2}s ({:.0} measurements/s, {:.0} requests/s)",
            took.as_secs_f64(),
            measurements as f64 / took.as_secs_f64(),
            upstream as f64 / took.as_secs_f64(),
        );
    }
}
