//! Criterion benchmarks of the Mann-Whitney U test and the Hodges-Lehmann shift at 10,000
//! samples per side (the same data `scripts/bench-judges` gives scipy).
//!
//! `cargo bench --bench judge_mwu`

use criterion::{Criterion, criterion_group, criterion_main};
use rollgate::core::judge::{MwuOptions, hodges_lehmann, mann_whitney};
use std::hint::black_box;

/// Lognormal-ish latencies from a fixed-seed generator (no dependency on rand's streams).
pub fn latencies(seed: u64, n: usize, scale: f64) -> Vec<f64> {
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u1, u2) = (next().max(1e-300), next());
            let g = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            // milliseconds with 0.1 ms resolution: realistic ties
            (scale * (100f64.ln() + 0.5 * g).exp() * 10.0).round() / 10.0
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let baseline = latencies(1, 10_000, 1.0);
    let canary = latencies(2, 10_000, 1.05);
    c.bench_function("mann_whitney 10k vs 10k", |b| {
        b.iter(|| {
            mann_whitney(
                black_box(&baseline),
                black_box(&canary),
                MwuOptions::default(),
            )
        })
    });
    // Without ties every value is its own group, so the final merge of the two sorted
    // samples mispredicts its branches far more often than with the rounded latencies.
    let untie = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .enumerate()
            .map(|(i, x)| x + i as f64 * 1e-9)
            .collect()
    };
    let (baseline_distinct, canary_distinct) = (untie(&baseline), untie(&canary));
    c.bench_function("mann_whitney 10k vs 10k (no ties)", |b| {
        b.iter(|| {
            mann_whitney(
                black_box(&baseline_distinct),
                black_box(&canary_distinct),
                MwuOptions::default(),
            )
        })
    });
    c.bench_function("hodges_lehmann + 95% CI 10k vs 10k", |b| {
        b.iter(|| hodges_lehmann(black_box(&baseline), black_box(&canary), 0.95))
    });
    // scripts/bench-judges passes the files it also gives scipy
    if let (Ok(bf), Ok(cf)) = (
        std::env::var("ROLLGATE_BENCH_BASELINE"),
        std::env::var("ROLLGATE_BENCH_CANARY"),
    ) {
        let read = |p: &str| -> Vec<f64> {
            std::fs::read_to_string(p)
                .expect("read the bench sample")
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| l.trim().parse().expect("a number per line"))
                .collect()
        };
        let (fb, fc) = (read(&bf), read(&cf));
        c.bench_function("mann_whitney 10k vs 10k (files)", |b| {
            b.iter(|| mann_whitney(black_box(&fb), black_box(&fc), MwuOptions::default()))
        });
        c.bench_function("hodges_lehmann + 95% CI 10k vs 10k (files)", |b| {
            b.iter(|| hodges_lehmann(black_box(&fb), black_box(&fc), 0.95))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
