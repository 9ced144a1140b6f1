//! Detection benchmark: how fast, and how honestly, each judge tells a bad canary.
//!
//! A simulator of baseline and canary traffic (Poisson arrivals at 1, 10 and 100 requests/s
//! per arm with a diurnal load swing of ±50% over a one-hour period at a random phase;
//! baseline error rate 0.5% against canaries at 0.5%, 1%, 2% and 5%; lognormal latency,
//! median 100 ms and log-sd 0.5, shifted by 0, 5, 10 and 25%) feeds, over a 30-minute
//! rollout:
//! - Argo-style threshold, a 1-minute window judged every minute: errors
//!   `successCondition: result < 0.01`, latency `p95 < 250ms`; failureLimit 0 and 2;
//! - Flagger-style threshold, every minute: success rate ≥ 99%, p99 ≤ 400 ms; rollback at
//!   5 failed checks (`threshold: 5`);
//! - Kayenta per interval: every minute a fresh NetflixACAJudge judgement (tolerance 0.25,
//!   confidence 0.98, direction increase) on the cumulative window's 10-s points (error
//!   rate or mean latency); a High metric scores 0 and stops the run;
//! - rollgate's sequential tests (α = 0.01), looking every 10 s (one scrape): the
//!   Lindon-Malek count test on the cumulative counters, the mixture SPRT on latencies.
//!
//! It reports median and p90 time to detection (runs that never detect count as beyond
//! the horizon), the miss rate, and for healthy canaries the false-rollback rate over
//! 1,000 runs, beside Wald's SPRT limit for the same case (α = 0.01, β = 0.05). Output:
//! a Markdown table on stdout and in `benches/detection-results.md`, and an SVG plot in
//! `benches/detection.svg`.
//!
//! `cargo bench --bench detection` (env `DETECTION_RUNS` = runs per regressed case,
//! default 300; healthy cases always run 1,000).

use std::fmt::Write as _;

use plotters::prelude::*;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Binomial, Distribution, LogNormal, Poisson};
use rollgate::core::judge::kayenta::{
    ClassifierParams, Direction, Label, MetricSettings, classify,
};
use rollgate::core::judge::sequential::{sprt_requests_two_arm, sprt_samples_normal_shift};
use rollgate::core::judge::{
    CountTest, CountTestConfig, Counts, Decision, ShiftTest, ShiftTestConfig,
};

const STEP_S: f64 = 10.0;
const STEPS_PER_WINDOW: usize = 6; // 1 minute
const STEPS: usize = 180; // 30 minutes
const HORIZON_S: f64 = STEP_S * STEPS as f64;
const P0: f64 = 0.005;
const LOG_SD: f64 = 0.5;
const JUDGES: [&str; 5] = [
    "Argo fl=0",
    "Argo fl=2",
    "Flagger thr=5",
    "Kayenta/interval",
    "rollgate sequential",
];

#[derive(Clone, Copy)]
enum Case {
    Errors { p1: f64 },
    Latency { shift: f64 },
}

/// Threshold-judge state: failures counted over 1-minute windows.
#[derive(Default)]
struct Thresholds {
    argo_failures: u32,
    flagger_failures: u32,
}

fn load(t: f64, phase: f64) -> f64 {
    1.0 + 0.5 * (2.0 * std::f64::consts::PI * (t / 3600.0 + phase)).sin()
}

fn poisson(rng: &mut StdRng, mean: f64) -> u64 {
    if mean <= 0.0 {
        0
    } else {
        Poisson::new(mean).expect("positive mean").sample(rng) as u64
    }
}

fn kayenta_high(baseline: &[f64], canary: &[f64]) -> bool {
    let settings = MetricSettings {
        direction: Direction::Increase,
        ..MetricSettings::default()
    };
    let b: Vec<f64> = baseline.iter().copied().filter(|v| !v.is_nan()).collect();
    let c: Vec<f64> = canary.iter().copied().filter(|v| !v.is_nan()).collect();
    classify(&b, &c, &settings, ClassifierParams::default()).label == Label::High
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let k = ((v.len() - 1) as f64 * q).round() as usize;
    *v.select_nth_unstable_by(k, f64::total_cmp).1
}

/// One rollout; returns, per judge, the time of its rollback (None: never).
fn run(case: Case, rate: f64, seed: u64) -> [Option<f64>; 5] {
    let mut rng = StdRng::seed_from_u64(seed);
    let phase: f64 = rng.random();
    let mut out = [None; 5];
    let mut th = Thresholds::default();
    let mut count_test = CountTest::new(CountTestConfig::default()).expect("valid");
    let mut shift_test = ShiftTest::new(ShiftTestConfig::default()).expect("valid");
    let mut counts = Counts::default();
    let (mut kb, mut kc) = (Vec::new(), Vec::new()); // Kayenta's 10-s points
    let (mut wc_err, mut wc_req) = (0u64, 0u64); // the thresholds judge the canary alone
    let mut window_lat: Vec<f64> = Vec::new();
    let lat = LogNormal::new(100f64.ln(), LOG_SD).expect("valid");
    let set = |slot: &mut Option<f64>, t: f64| {
        if slot.is_none() {
            *slot = Some(t);
        }
    };
    for step in 0..STEPS {
        let t0 = step as f64 * STEP_S;
        let t = t0 + STEP_S;
        let mean = rate * load(t0, phase) * STEP_S;
        let (nb, nc) = (poisson(&mut rng, mean), poisson(&mut rng, mean));
        match case {
            Case::Errors { p1 } => {
                let eb = Binomial::new(nb, P0).expect("p").sample(&mut rng);
                let ec = Binomial::new(nc, p1).expect("p").sample(&mut rng);
                counts.baseline_requests += nb;
                counts.canary_requests += nc;
                counts.baseline_errors += eb;
                counts.canary_errors += ec;
                wc_err += ec;
                wc_req += nc;
                let point = |e: u64, n: u64| {
                    if n == 0 {
                        f64::NAN
                    } else {
                        e as f64 / n as f64
                    }
                };
                kb.push(point(eb, nb));
                kc.push(point(ec, nc));
                if out[4].is_none()
                    && count_test.observe(counts).expect("consistent").decision == Decision::Fail
                {
                    set(&mut out[4], t);
                }
            }
            Case::Latency { shift } => {
                let b: Vec<f64> = (0..nb).map(|_| lat.sample(&mut rng)).collect();
                let c: Vec<f64> = (0..nc)
                    .map(|_| lat.sample(&mut rng) * (1.0 + shift))
                    .collect();
                let mean_of = |v: &[f64]| {
                    if v.is_empty() {
                        f64::NAN
                    } else {
                        v.iter().sum::<f64>() / v.len() as f64
                    }
                };
                kb.push(mean_of(&b));
                kc.push(mean_of(&c));
                window_lat.extend_from_slice(&c);
                if out[4].is_none()
                    && shift_test.observe(&b, &c).expect("positive").decision == Decision::Fail
                {
                    set(&mut out[4], t);
                }
            }
        }
        if (step + 1) % STEPS_PER_WINDOW == 0 {
            // threshold judges on the last minute of the canary
            let (argo_fail, flagger_fail) = match case {
                Case::Errors { .. } => {
                    if wc_req == 0 {
                        (false, false)
                    } else {
                        let r = wc_err as f64 / wc_req as f64;
                        (r >= 0.01, 1.0 - r < 0.99)
                    }
                }
                Case::Latency { .. } => {
                    let p95 = quantile(&mut window_lat, 0.95);
                    let p99 = quantile(&mut window_lat, 0.99);
                    (p95 >= 250.0, p99 > 400.0)
                }
            };
            th.argo_failures += u32::from(argo_fail);
            th.flagger_failures += u32::from(flagger_fail);
            if th.argo_failures > 0 {
                set(&mut out[0], t);
            }
            if th.argo_failures > 2 {
                set(&mut out[1], t);
            }
            if th.flagger_failures >= 5 {
                set(&mut out[2], t);
            }
            if out[3].is_none() && kayenta_high(&kb, &kc) {
                set(&mut out[3], t);
            }
            wc_err = 0;
            wc_req = 0;
            window_lat.clear();
        }
        if out.iter().all(Option::is_some) {
            break;
        }
    }
    out
}

struct Summary {
    median: f64,
    p90: f64,
    rate: f64, // miss rate (regressed) or false-rollback rate (healthy)
}

fn summarise(times: &mut [f64], healthy: bool) -> Summary {
    times.sort_by(f64::total_cmp);
    let n = times.len();
    let at = |q: f64| times[((n as f64 * q).ceil() as usize).clamp(1, n) - 1];
    let detected = times.iter().filter(|t| t.is_finite()).count();
    Summary {
        median: at(0.5),
        p90: at(0.9),
        rate: if healthy {
            detected as f64 / n as f64
        } else {
            1.0 - detected as f64 / n as f64
        },
    }
}

fn fmt_time(t: f64) -> String {
    if t.is_finite() {
        format!("{t:.0}")
    } else {
        format!(">{HORIZON_S:.0}")
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let regressed_runs: u64 = std::env::var("DETECTION_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let started = std::time::Instant::now();
    let rates = [1.0, 10.0, 100.0];
    let mut cases: Vec<(String, Case, f64, f64)> = Vec::new(); // label, case, rate, sprt
    for &rate in &rates {
        for p1 in [0.005, 0.01, 0.02, 0.05] {
            let sprt = if p1 > P0 {
                sprt_requests_two_arm(P0, p1, 0.01, 0.05) / rate
            } else {
                f64::NAN
            };
            cases.push((
                format!("errors 0.5% → {}%, {rate} req/s", p1 * 100.0),
                Case::Errors { p1 },
                rate,
                sprt,
            ));
        }
        for shift in [0.0, 0.05, 0.10, 0.25] {
            let sprt = if shift > 0.0 {
                sprt_samples_normal_shift((1.0f64 + shift).ln(), LOG_SD, 0.01, 0.05) / rate
            } else {
                f64::NAN
            };
            cases.push((
                format!("latency +{:.0}%, {rate} req/s", shift * 100.0),
                Case::Latency { shift },
                rate,
                sprt,
            ));
        }
    }
    let mut table = String::new();
    let _ = writeln!(
        table,
        "Time to rollback in seconds over a {HORIZON_S:.0}-s rollout: median / p90 (miss rate); healthy rows give the false-rollback rate (FR) over 1,000 runs.\n"
    );
    let _ = writeln!(table, "| case | SPRT limit (s) | {} |", JUDGES.join(" | "));
    let _ = writeln!(table, "|---|---|{}", "---|".repeat(JUDGES.len()));
    let mut plot_points: Vec<(usize, f64, f64)> = Vec::new(); // judge, p1, median (errors @ 10 req/s)
    for (k, (label, case, rate, sprt)) in cases.iter().enumerate() {
        let healthy = matches!(case, Case::Errors { p1 } if *p1 == P0)
            || matches!(case, Case::Latency { shift } if *shift == 0.0);
        let runs = if healthy { 1000 } else { regressed_runs };
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); JUDGES.len()];
        for r in 0..runs {
            let seed = (k as u64) << 32 | r;
            for (j, t) in run(*case, *rate, seed).iter().enumerate() {
                times[j].push(t.unwrap_or(f64::INFINITY));
            }
        }
        let cells: Vec<String> = times
            .iter_mut()
            .enumerate()
            .map(|(j, t)| {
                let s = summarise(t, healthy);
                if let Case::Errors { p1 } = case
                    && *rate == 10.0
                    && !healthy
                {
                    plot_points.push((j, *p1, s.median));
                }
                if healthy {
                    format!("FR {:.1}%", 100.0 * s.rate)
                } else {
                    format!(
                        "{} / {} ({:.0}%)",
                        fmt_time(s.median),
                        fmt_time(s.p90),
                        100.0 * s.rate
                    )
                }
            })
            .collect();
        let limit = if sprt.is_nan() {
            "—".to_owned()
        } else {
            format!("{sprt:.0}")
        };
        let _ = writeln!(table, "| {label} | {limit} | {} |", cells.join(" | "));
        eprintln!("detection: {label} done ({:.0?})", started.elapsed());
    }
    let _ = writeln!(
        table,
        "\nRegressed cases: {regressed_runs} runs each. Looks: thresholds and Kayenta every 60 s, rollgate every 10 s. Wall time {:.0?}.",
        started.elapsed()
    );
    print!("{table}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches");
    if let Err(e) = std::fs::write(dir.join("detection-results.md"), &table) {
        eprintln!("detection: cannot write the table: {e}");
    }
    if let Err(e) = plot(&dir.join("detection.svg"), &plot_points) {
        eprintln!("detection: cannot draw the plot: {e}");
    }
}

/// Median time to rollback against the canary's error rate at 10 req/s, one line per
/// judge, with the SPRT limit.
fn plot(
    path: &std::path::Path,
    points: &[(usize, f64, f64)],
) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Median time to rollback, baseline 0.5% errors, 10 req/s per arm",
            ("sans-serif", 18),
        )
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.5f64..5.5f64, (1f64..HORIZON_S * 1.2).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("canary error rate (%)")
        .y_desc("seconds (log)")
        .draw()?;
    let colors = [RED, MAGENTA, BLUE, GREEN, BLACK];
    for (j, name) in JUDGES.iter().enumerate() {
        let series: Vec<(f64, f64)> = points
            .iter()
            .filter(|(k, _, _)| *k == j)
            .map(|&(_, p1, m)| (p1 * 100.0, if m.is_finite() { m } else { HORIZON_S * 1.15 }))
            .collect();
        let color = colors[j];
        chart
            .draw_series(LineSeries::new(series.clone(), color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart.draw_series(
            series
                .iter()
                .map(|&(x, y)| Circle::new((x, y), 4, color.filled())),
        )?;
    }
    let sprt: Vec<(f64, f64)> = [0.01, 0.02, 0.05]
        .iter()
        .map(|&p1| (p1 * 100.0, sprt_requests_two_arm(P0, p1, 0.01, 0.05) / 10.0))
        .collect();
    chart
        .draw_series(LineSeries::new(
            sprt,
            ShapeStyle::from(&BLACK.mix(0.5)).stroke_width(1),
        ))?
        .label("SPRT limit")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.5)));
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    root.present()?;
    Ok(())
}
