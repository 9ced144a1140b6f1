//! Every case of `mwu-cases.json` through the public library API: U exact, p-values within
//! 1e-9 relative error, Hodges-Lehmann estimate and exact intervals exact, asymptotic
//! (R/Kayenta) roots inside their acceptable intervals.

#[path = "support/judge_vectors.rs"]
mod vectors;

use rollgate::core::judge::{
    Alternative, JudgeError, Method, MwuOptions, hodges_lehmann, mann_whitney, wilcox_asymptotic,
};
use vectors::{close_rel, load, num, nums};

fn alternative(s: &str) -> Alternative {
    match s {
        "two-sided" => Alternative::TwoSided,
        "less" => Alternative::Less,
        "greater" => Alternative::Greater,
        other => panic!("unknown alternative {other}"),
    }
}

#[test]
fn u_and_p_values_match_scipy() {
    let doc = load("mwu-cases.json");
    let mut checked = 0;
    for case in doc["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let (x, y) = (nums(&case["x"]), nums(&case["y"]));
        for r in case["results"].as_array().expect("results") {
            let method = match r["method"].as_str().expect("method") {
                "exact" => Method::Exact,
                "asymptotic" => Method::Asymptotic,
                other => panic!("method {other}"),
            };
            let options = MwuOptions {
                alternative: alternative(r["alternative"].as_str().expect("alt")),
                continuity: r["use_continuity"].as_bool().unwrap_or(true),
                method,
            };
            let got = mann_whitney(&x, &y, options).expect("valid samples");
            assert_eq!(got.u, num(&case["U_x"]), "{name}: U_x");
            assert_eq!(got.u, num(&r["U"]), "{name}: U");
            assert_eq!(got.u_canary, num(&case["U_y"]), "{name}: U_y");
            assert_eq!(
                got.has_ties,
                case["has_ties"].as_bool().expect("bool"),
                "{name}"
            );
            let expected = num(&r["pvalue"]);
            assert!(
                close_rel(got.p_value, expected, 1e-9),
                "{name} {options:?}: p {} vs scipy {expected}",
                got.p_value
            );
            // auto picks what scipy picks: exact only without ties and min size ≤ 8
            let auto = mann_whitney(
                &x,
                &y,
                MwuOptions {
                    method: Method::Auto,
                    ..options
                },
            )
            .expect("valid");
            let n_min = x.len().min(y.len());
            let want = if n_min <= 8 && !got.has_ties {
                Method::Exact
            } else {
                Method::Asymptotic
            };
            assert_eq!(auto.method, want, "{name}: auto method");
            checked += 1;
        }
        let sigma = num(&case["sigma_tie_corrected"]);
        let got = mann_whitney(&x, &y, MwuOptions::default()).expect("valid");
        assert!(
            (got.sigma - sigma).abs() <= 1e-12 * sigma.max(1.0),
            "{name}: sigma {} vs {sigma}",
            got.sigma
        );
    }
    assert!(checked >= 150, "only {checked} results checked");
}

#[test]
fn hodges_lehmann_and_exact_intervals_match_r() {
    let doc = load("mwu-cases.json");
    for case in doc["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let (x, y) = (nums(&case["x"]), nums(&case["y"]));
        let hl = &case["hodges_lehmann_y_minus_x"];
        for (key, conf) in [
            ("ci95_exact_order_statistic", 0.95),
            ("ci98_exact_order_statistic", 0.98),
        ] {
            let got = hodges_lehmann(&x, &y, conf).expect("valid");
            assert_eq!(got.estimate, num(&hl["estimate"]), "{name}: HL estimate");
            let want = &hl[key];
            assert_eq!(got.low, num(&want["lower"]), "{name} {key}: lower");
            assert_eq!(got.high, num(&want["upper"]), "{name} {key}: upper");
            let achieved = got.achieved_confidence.expect("exact interval");
            assert!(
                close_rel(achieved, num(&want["achieved_confidence"]), 1e-9),
                "{name} {key}: achieved {achieved}"
            );
        }
    }
}

#[test]
fn asymptotic_interval_roots_land_in_their_acceptable_intervals() {
    let doc = load("mwu-cases.json");
    let mut roots = 0;
    for case in doc["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let (x, y) = (nums(&case["x"]), nums(&case["y"]));
        let w = &case["wilcox_asymptotic_y_minus_x"];
        if w.get("error").is_some() {
            assert_eq!(
                wilcox_asymptotic(&x, &y, 0.95),
                Err(JudgeError::AllTied),
                "{name}"
            );
            continue;
        }
        for (key, conf) in [("conf_0.95", 0.95), ("conf_0.98", 0.98)] {
            let got = wilcox_asymptotic(&x, &y, conf).expect("valid");
            for (part, value) in [
                ("lower", got.low),
                ("upper", got.high),
                ("estimate", got.estimate),
            ] {
                let iv = nums(&w[key][part]["acceptable_interval"]);
                let tol = 1e-9 * value.abs().max(1.0);
                assert!(
                    value >= iv[0] - tol && value <= iv[1] + tol,
                    "{name} {key} {part}: {value} outside {iv:?} ({})",
                    w[key][part]["interval_kind"]
                );
                roots += 1;
            }
        }
    }
    assert!(roots >= 100);
}

mod properties {
    use proptest::prelude::*;
    use rollgate::core::judge::{MwuOptions, hodges_lehmann, mann_whitney};

    fn sample() -> impl Strategy<Value = Vec<f64>> {
        // quarter steps so that ties within and between samples are common
        prop::collection::vec((-40i32..40).prop_map(|v| f64::from(v) / 4.0), 1..40)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn u_counts_pairs_and_hl_is_the_median_difference(x in sample(), y in sample()) {
            let r = mann_whitney(&x, &y, MwuOptions::default()).expect("valid");
            let mut twice_u = 0u64;
            let mut diffs = Vec::new();
            for a in &x {
                for b in &y {
                    twice_u += if a > b { 2 } else if a == b { 1 } else { 0 };
                    diffs.push(b - a);
                }
            }
            prop_assert_eq!(r.u, twice_u as f64 / 2.0);
            prop_assert_eq!(r.u + r.u_canary, (x.len() * y.len()) as f64);
            prop_assert!(r.p_value.is_nan() || (0.0..=1.0).contains(&r.p_value));
            diffs.sort_by(f64::total_cmp);
            let k = diffs.len();
            let median = if k % 2 == 1 { diffs[k / 2] } else { (diffs[k / 2 - 1] + diffs[k / 2]) / 2.0 };
            let hl = hodges_lehmann(&x, &y, 0.95).expect("valid");
            prop_assert_eq!(hl.estimate, median);
            prop_assert!(hl.low <= hl.estimate && hl.estimate <= hl.high);
            prop_assert!(diffs.contains(&hl.low) && diffs.contains(&hl.high));
        }
    }
}
