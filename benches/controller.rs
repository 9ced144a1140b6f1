//! Query coalescing against a real Prometheus: `RUNS` analysis runs (default 1,000) each
//! measure one of `DISTINCT` queries (default 10) once per round, for `ROUNDS` rounds,
//! through the controller's provider path (`providers::build` + `Coalescer`), with a
//! 5 s window and with coalescing off. Prints upstream requests, wall time and queries/s.
//!
//! Measurements run as the AnalysisRun reconciler takes them: at most `CONCURRENCY`
//! (default 30, the controller's `analysis_concurrency`) at once, through the provider the
//! coalescer keeps per metric; the last two lines build a provider (an HTTP client) per
//! measurement, as the controller did before, to show what that costs. An earlier version kept 1,000 providers alive and
//! measured all at once: each provider's HTTP client kept its connection open, Prometheus
//! accepts 512 connections (`--web.max-connections`), and about half the uncoalesced
//! queries timed out after 30 s waiting to be accepted.
//!
//! `cargo bench --bench controller` (env `RUNS`, `DISTINCT`, `ROUNDS`, `CONCURRENCY`).
//! The reconcilers against the API server (RSS, CPU, reconcile latency) are measured by
//! `benches/controller_scale.rs`.

#[path = "../tests/support/prometheus.rs"]
mod prometheus;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
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
    concurrency: usize,
    kept: bool,
) -> (u64, BTreeMap<String, usize>, Duration) {
    let coalescer = Arc::new(Coalescer::new(window, Telemetry::new()));
    let settings = ProviderSettings::default();
    let metrics: Vec<Metric> = (0..runs).map(|r| metric(address, r % distinct)).collect();
    let started = Instant::now();
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..rounds {
        // As the AnalysisRun reconciler does: at most `concurrency` measurements at once,
        // each through the provider the coalescer keeps for its metric (or, `kept` false,
        // one built per measurement, as the controller did before).
        let answers: Vec<_> = futures::stream::iter(&metrics)
            .map(|m| {
                let coalescer = coalescer.clone();
                let settings = &settings;
                async move {
                    let p = if kept {
                        coalescer.provider(m, settings).expect("provider")
                    } else {
                        coalescer.wrap(m, settings, build(m, settings).expect("provider"))
                    };
                    p.measure(m).await
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        for e in answers.into_iter().filter_map(Result::err) {
            *errors.entry(e.message).or_default() += 1;
        }
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
    let concurrency = env("CONCURRENCY", 30).max(1);
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
    println!(
        "{runs} runs, {distinct} distinct queries, {rounds} rounds, {concurrency} measurements at once"
    );
    for (label, window, kept) in [
        ("coalesced (5s window)", Duration::from_secs(5), true),
        ("not coalesced", Duration::ZERO, true),
        ("coalesced, new client each", Duration::from_secs(5), false),
        ("neither", Duration::ZERO, false),
    ] {
        let (upstream, messages, took) = rt.block_on(round_trip(
            &prom.url,
            runs,
            distinct,
            rounds,
            window,
            concurrency,
            kept,
        ));
        let measurements = runs * rounds;
        let errors: usize = messages.values().sum();
        println!(
            "{label:>27}: {measurements} measurements ({errors} errors), {upstream} Prometheus requests in {:.2}s ({:.0} measurements/s, {:.0} requests/s)",
            took.as_secs_f64(),
            measurements as f64 / took.as_secs_f64(),
            upstream as f64 / took.as_secs_f64(),
        );
        for (message, count) in &messages {
            println!("{:>29}{count} × {message}", "");
        }
    }
}
