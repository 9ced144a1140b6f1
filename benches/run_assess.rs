//! Run assessment speed: one `assess` of a run of 10 metrics with 10 measurements each
//! (what every reconcile of a busy run does), and the due-metric scan.

use chrono::{TimeDelta, TimeZone};
use criterion::{Criterion, criterion_group, criterion_main};
use rollgate::core::analysis::model::{AnalysisRunSpec, Metric, MetricProvider, WebMetric};
use rollgate::core::analysis::run::{assess, due_metrics, prepare, record_measurement};
use rollgate::core::analysis::status::{AnalysisRunStatus, Measurement};
use rollgate::core::analysis::value::AnalysisPhase;

fn assessment(c: &mut Criterion) {
    let metrics = (0..10)
        .map(|i| Metric {
            name: format!("metric-{i}"),
            interval: Some("1m".into()),
            failure_limit: Some(rollgate::core::analysis::model::IntOrString::Int(20)),
            provider: MetricProvider {
                web: Some(WebMetric {
                    url: "http://127.0.0.1:1/".into(),
                    ..WebMetric::default()
                }),
                ..MetricProvider::default()
            },
            ..Metric::default()
        })
        .collect();
    let spec = AnalysisRunSpec {
        metrics,
        ..AnalysisRunSpec::default()
    };
    let run = prepare(&spec).expect("valid");
    let t0 = chrono::Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("date");
    let mut status = AnalysisRunStatus::default();
    for round in 0..10 {
        let at = t0 + TimeDelta::minutes(round);
        for i in 0..10 {
            let m = Measurement {
                phase: if (round + i64::from(i)) % 3 == 0 {
                    AnalysisPhase::Failed
                } else {
                    AnalysisPhase::Successful
                },
                message: String::new(),
                started_at: Some(at),
                finished_at: Some(at),
                value: "[0.97]".into(),
                metadata: Default::default(),
                resume_at: None,
            };
            record_measurement(&run, &mut status, i as usize, m, &Default::default(), &[]);
        }
        assess(&run, &mut status, at);
    }
    let now = t0 + TimeDelta::minutes(10);
    c.bench_function("assess: 10 metrics x 10 measurements", |b| {
        b.iter_batched(
            || status.clone(),
            |mut s| assess(&run, &mut s, now),
            criterion::BatchSize::SmallInput,
        )
    });
    c.bench_function("due_metrics: 10 metrics", |b| {
        b.iter(|| due_metrics(&run, std::hint::black_box(&status), now))
    });
}

criterion_group!(benches, assessment);
criterion_main!(benches);
