//! The sequential judges keep false alarms at or below α under continuous monitoring of
//! healthy canaries, where a fixed-horizon test re-run at every look does not; and they do
//! detect real regressions.

#[path = "support/judge_sim.rs"]
mod sim;

use proptest::prelude::*;
use rollgate::core::judge::{
    CountTest, CountTestConfig, Counts, Decision, JudgeError, ShiftTest, ShiftTestConfig,
};
use sim::{CountSim, LatencySim, naive_z_rejects};

const LOOKS: usize = 120; // 20 minutes of 10 s intervals

/// Fraction of healthy runs in which the count test ever says Fail within `LOOKS` looks.
fn count_false_alarms(runs: u64, seed: u64, rate: f64, split: f64, p: f64, alpha: f64) -> f64 {
    let mut alarms = 0;
    for run in 0..runs {
        let mut s = CountSim::new(seed ^ (run * 0x9E37), rate, split, p, p);
        let mut t = CountTest::new(CountTestConfig {
            alpha,
            split,
            ..CountTestConfig::default()
        })
        .expect("valid config");
        for _ in 0..LOOKS {
            let r = t.observe(s.step()).expect("consistent counters");
            if r.decision == Decision::Fail {
                alarms += 1;
                break;
            }
        }
    }
    alarms as f64 / runs as f64
}

fn naive_false_alarms(runs: u64, seed: u64, rate: f64, p: f64, alpha: f64) -> f64 {
    let mut alarms = 0;
    for run in 0..runs {
        let mut s = CountSim::new(seed ^ (run * 0x9E37), rate, 0.5, p, p);
        if (0..LOOKS).any(|_| naive_z_rejects(s.step(), alpha)) {
            alarms += 1;
        }
    }
    alarms as f64 / runs as f64
}

/// The property test below must be able to fail: the same simulator and the same count
/// of looks push a naive repeated z-test far above α.
#[test]
fn a_naive_repeated_z_test_exceeds_alpha_on_the_same_simulation() {
    let alpha = 0.05;
    let naive = naive_false_alarms(1000, 11, 20.0, 0.01, alpha);
    assert!(
        naive > 2.0 * alpha,
        "naive repeated z-test false alarms {naive}"
    );
    let sequential = count_false_alarms(1000, 11, 20.0, 0.5, 0.01, alpha);
    assert!(sequential <= alpha, "sequential false alarms {sequential}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn count_test_false_alarms_stay_below_alpha(
        seed in any::<u64>(),
        rate in prop::sample::select(vec![2.0, 20.0, 200.0]),
        split in 0.2f64..0.8,
        p in 0.002f64..0.05,
    ) {
        let alpha = 0.05;
        let fpr = count_false_alarms(400, seed, rate, split, p, alpha);
        prop_assert!(fpr <= alpha, "false alarm rate {} > α at rate {} split {} p {}", fpr, rate, split, p);
    }

    #[test]
    fn shift_test_false_alarms_stay_below_alpha(
        seed in any::<u64>(),
        per_look in prop::sample::select(vec![10usize, 50, 200]),
    ) {
        let alpha = 0.05;
        let runs = 400;
        let mut alarms = 0;
        for run in 0..runs {
            let mut s = LatencySim::new(seed ^ (run * 0x51ED), 0.0);
            let mut t = ShiftTest::new(ShiftTestConfig { alpha, ..ShiftTestConfig::default() })
                .expect("valid");
            for _ in 0..60 {
                let (b, c) = s.step(per_look);
                if t.observe(&b, &c).expect("positive").decision == Decision::Fail {
                    alarms += 1;
                    break;
                }
            }
        }
        let fpr = alarms as f64 / runs as f64;
        prop_assert!(fpr <= alpha, "false alarm rate {} > α with {} per look", fpr, per_look);
    }
}

#[test]
fn a_naive_repeated_test_on_latency_exceeds_alpha() {
    let alpha = 0.05;
    let z = rollgate::core::judge::sequential::z_one_sided(alpha);
    let mut alarms = 0;
    for run in 0..500u64 {
        let mut s = LatencySim::new(run, 0.0);
        let (mut lb, mut lc) = (Vec::new(), Vec::new());
        let mut hit = false;
        for _ in 0..60 {
            let (b, c) = s.step(50);
            lb.extend(b.iter().map(|v| v.ln()));
            lc.extend(c.iter().map(|v| v.ln()));
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let var = |v: &[f64], m: f64| {
                v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64
            };
            let (mb, mc) = (mean(&lb), mean(&lc));
            let se = (var(&lb, mb) / lb.len() as f64 + var(&lc, mc) / lc.len() as f64).sqrt();
            hit |= (mc - mb) / se > z;
        }
        alarms += u32::from(hit);
    }
    let fpr = f64::from(alarms) / 500.0;
    assert!(
        fpr > 2.0 * alpha,
        "naive repeated latency test false alarms {fpr}"
    );
}

#[test]
fn count_test_detects_a_quadrupled_error_rate() {
    let mut detected = 0;
    for run in 0..200u64 {
        let mut s = CountSim::new(run, 20.0, 0.5, 0.005, 0.02);
        let mut t = CountTest::new(CountTestConfig::default()).expect("valid");
        if (0..LOOKS).any(|_| t.observe(s.step()).expect("ok").decision == Decision::Fail) {
            detected += 1;
        }
    }
    assert!(detected >= 190, "detected only {detected}/200");
}

#[test]
fn shift_test_detects_a_25_percent_slowdown_and_passes_an_equal_canary() {
    let mut s = LatencySim::new(3, 0.25);
    let mut t = ShiftTest::new(ShiftTestConfig::default()).expect("valid");
    let decision = (0..60)
        .map(|_| {
            let (b, c) = s.step(50);
            t.observe(&b, &c).expect("ok")
        })
        .find(|r| r.decision != Decision::Continue)
        .expect("decides within 60 looks");
    assert_eq!(decision.decision, Decision::Fail);
    assert!(decision.estimate > 0.1 && decision.confidence_sequence.low > 0.0);

    let mut s = LatencySim::new(4, 0.0);
    let mut t = ShiftTest::new(ShiftTestConfig::default()).expect("valid");
    let last = (0..200)
        .map(|_| {
            let (b, c) = s.step(200);
            t.observe(&b, &c).expect("ok")
        })
        .last()
        .expect("looks");
    assert_eq!(last.decision, Decision::Pass, "{last:?}");
}

#[test]
fn counter_reset_and_inconsistent_counts_are_errors() {
    let mut t = CountTest::new(CountTestConfig::default()).expect("valid");
    let c = Counts {
        baseline_errors: 3,
        baseline_requests: 100,
        canary_errors: 1,
        canary_requests: 100,
    };
    t.observe(c).expect("ok");
    let reset = Counts {
        canary_requests: 10,
        ..c
    };
    assert!(matches!(
        t.observe(reset),
        Err(JudgeError::CounterDecreased { .. })
    ));
    let bad = Counts {
        canary_errors: 200,
        canary_requests: 150,
        ..c
    };
    assert!(matches!(
        t.observe(bad),
        Err(JudgeError::ErrorsExceedRequests { .. })
    ));
}
