//! Every case of `kayenta-judge-cases.json` through the public library API.

#[path = "support/judge_vectors.rs"]
mod vectors;

use std::collections::BTreeMap;

use rollgate::core::judge::kayenta::{
    ClassifierParams, Direction, EffectSize, EffectSizeMeasure, Label, MetricSettings, NanStrategy,
    ScoreClass, ScoreThresholds, ScoredMetric, classify, classify_mean_inequality, classify_score,
    cles, iqr_outliers, mean_ratio, multi_interval, percentile_r7, score, transform,
};
use rollgate::core::judge::{wilcox_asymptotic, wilcox_asymptotic_zeroin};
use serde_json::Value;
use vectors::{load, num, nums};

fn label(s: &str) -> Label {
    serde_json::from_value(Value::String(s.to_owned())).expect("known label")
}

fn case<'a>(doc: &'a Value, section: &str) -> &'a Vec<Value> {
    doc[section].as_array().expect("section")
}

#[test]
fn classifier_cases() {
    let doc = load("kayenta-judge-cases.json");
    let mut n = 0;
    for c in case(&doc, "classifier") {
        let id = c["id"].as_str().expect("id");
        let i = &c["inputs"];
        let (canary, baseline) = (nums(&i["experiment"]), nums(&i["control"]));
        let want = &c["expected"];
        if i["classifier"] == "MeanInequalityClassifier" {
            let got = classify_mean_inequality(&baseline, &canary);
            assert_eq!(
                got,
                label(want["classification"].as_str().expect("s")),
                "{id}"
            );
            n += 1;
            continue;
        }
        let pair = |key: &str| {
            let v = nums(&i[key]);
            (v[0], v[1]) // (decrease, increase)
        };
        let (allowed_decrease, allowed_increase) = pair("effectSizeThresholds_decrease_increase");
        let (critical_decrease, critical_increase) = pair("criticalThresholds_decrease_increase");
        let settings = MetricSettings {
            direction: serde_json::from_value::<Direction>(i["direction"].clone()).expect("dir"),
            nan_strategy: serde_json::from_value::<NanStrategy>(i["nanStrategy"].clone())
                .expect("nan"),
            critical: i["isCriticalMetric"].as_bool().expect("bool"),
            effect_size: EffectSize {
                measure: serde_json::from_value::<EffectSizeMeasure>(
                    i["effectSizeMeasure"].clone(),
                )
                .expect("measure"),
                allowed_increase: Some(allowed_increase),
                allowed_decrease: Some(allowed_decrease),
                critical_increase: Some(critical_increase),
                critical_decrease: Some(critical_decrease),
            },
            ..MetricSettings::default()
        };
        let params = ClassifierParams {
            tolerance: num(&i["tolerance"]),
            confidence: num(&i["confLevel"]),
        };
        let got = classify(
            &transform(&baseline, &settings),
            &transform(&canary, &settings),
            &settings,
            params,
        );
        assert_eq!(
            got.label,
            label(want["classification"].as_str().expect("s")),
            "{id}: {got:?}"
        );
        if let Some(critical) = want.get("critical") {
            assert_eq!(got.critical, critical.as_bool().expect("bool"), "{id}");
        }
        if let Some(dev) = want.get("deviation_meanRatio") {
            assert!(num(dev).is_nan() && got.deviation.is_nan(), "{id}");
        }
        n += 1;
    }
    assert_eq!(n, 15);
}

#[test]
fn scorer_cases() {
    let doc = load("kayenta-judge-cases.json");
    let mut n = 0;
    let scorer_like = case(&doc, "scorer")
        .iter()
        .chain(case(&doc, "derived"))
        .filter(|c| c["inputs"].get("metrics").is_some());
    for c in scorer_like {
        let id = c["id"].as_str().expect("id");
        let i = &c["inputs"];
        let weights: BTreeMap<String, f64> =
            serde_json::from_value(i["groupWeights"].clone()).expect("weights");
        let metrics: Vec<ScoredMetric> = i["metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .enumerate()
            .map(|(k, m)| ScoredMetric {
                name: m["name"].as_str().map_or(format!("m{k}"), str::to_owned),
                label: label(m["classification"].as_str().expect("label")),
                critical: m["critical"].as_bool().unwrap_or(false),
                groups: serde_json::from_value(m["groups"].clone()).expect("groups"),
                reason: None,
            })
            .collect();
        let got = score(&metrics, &weights);
        assert_eq!(
            got.score,
            num(&c["expected"]["summaryScore"]),
            "{id}: {got:?}"
        );
        if let Some(gs) = c["expected"].get("groupScores_sorted") {
            let mut scores: Vec<f64> = got.groups.iter().map(|g| g.score).collect();
            scores.sort_by(f64::total_cmp);
            assert_eq!(scores, nums(gs), "{id}");
        }
        n += 1;
    }
    assert_eq!(n, 7);
}

#[test]
fn judges_md_scoring_examples() {
    let m = |label: Label, group: &str| ScoredMetric {
        name: group.to_owned(),
        label,
        critical: false,
        groups: vec![group.to_owned()],
        reason: None,
    };
    let weights = BTreeMap::from([("errors".to_owned(), 50.0)]);
    let metrics = [
        m(Label::Pass, "errors"),
        m(Label::Pass, "errors"),
        m(Label::High, "errors"),
        m(Label::Pass, "latency"),
        m(Label::Pass, "latency"),
        m(Label::Low, "saturation"),
    ];
    assert_eq!(score(&metrics, &weights).score, 58.33);
}

#[test]
fn mannwhitney_interval_cases() {
    let doc = load("kayenta-judge-cases.json");
    for c in case(&doc, "mannwhitney") {
        let id = c["id"].as_str().expect("id");
        let i = &c["inputs"];
        let (canary, baseline) = (nums(&i["x_experiment"]), nums(&i["y_control"]));
        let conf = num(&i["confidenceLevel"]);
        let e = &c["expected"];
        // the zeroin port reproduces Kayenta's numbers to the vector's tolerances
        let got = wilcox_asymptotic_zeroin(&baseline, &canary, conf).expect("ok");
        let tol_ci = e
            .get("abs_tolerance_ci")
            .or(e.get("abs_tolerance"))
            .map_or(1e-6, num);
        let tol_est = e
            .get("abs_tolerance_estimate")
            .or(e.get("abs_tolerance"))
            .map_or(1e-6, num);
        for (what, value, tol) in [
            ("ci_lower", got.low, tol_ci),
            ("ci_upper", got.high, tol_ci),
            ("estimate", got.estimate, tol_est),
        ] {
            let want = num(&e[what]);
            assert!(
                (value - want).abs() <= tol,
                "zeroin {id} {what}: {value} vs {want}"
            );
        }
        let got = wilcox_asymptotic(&baseline, &canary, conf).expect("ok");
        // Kayenta's zeroin lands within 1e-4 of the exact jump points (judges.md §3); the
        // small case is exact (jump points and the flat-region midpoint).
        let tol = if e.get("abs_tolerance").is_some() {
            1e-6
        } else {
            1e-4
        };
        for (what, value) in [
            ("ci_lower", got.low),
            ("ci_upper", got.high),
            ("estimate", got.estimate),
        ] {
            let want = num(&e[what]);
            assert!(
                (value - want).abs() <= tol,
                "{id} {what}: {value} vs {want}"
            );
        }
    }
}

#[test]
fn detector_transform_and_statistic_cases() {
    let doc = load("kayenta-judge-cases.json");
    for c in case(&doc, "detectors_transforms_stats") {
        let id = c["id"].as_str().expect("id");
        let (i, e) = (&c["inputs"], &c["expected"]);
        match id {
            "detector/iqr_basic" | "detector/iqr_empty" => {
                let reduce = i["reduceSensitivity"].as_bool().unwrap_or(false);
                let got = iqr_outliers(&nums(&i["data"]), num(&i["factor"]), reduce);
                let want: Vec<bool> =
                    serde_json::from_value(e["outlier_mask"].clone()).expect("mask");
                assert_eq!(got, want, "{id}");
            }
            "transform/remove_nan" => {
                let got = transform(&nums(&i["data"]), &MetricSettings::default());
                assert_eq!(got, nums(&e["result"]), "{id}");
            }
            "stats/percentile_r7" => {
                let data = nums(&i["data"]);
                for (p, key) in [(5.0, "p5"), (50.0, "p50"), (100.0, "p100")] {
                    assert!(
                        (percentile_r7(&data, p) - num(&e[key])).abs() < 1e-4,
                        "{id} {key}"
                    );
                }
            }
            "stats/mean_ratio" => {
                for (pair, want) in i.as_array().expect("pairs").iter().zip(nums(e)) {
                    let got = mean_ratio(&nums(&pair["control"]), &nums(&pair["experiment"]));
                    assert!(
                        got == want || (got.is_nan() && want.is_nan()),
                        "{id}: {got} vs {want}"
                    );
                }
            }
            "stats/cles_identical" => {
                let got = cles(&nums(&i["control"]), &nums(&i["experiment"]));
                assert_eq!(got, num(&e["cles"]), "{id}");
            }
            other => panic!("unhandled vector {other}"),
        }
    }
}

#[test]
fn score_classification_and_multi_interval_cases() {
    let doc = load("kayenta-judge-cases.json");
    let mut n = 0;
    for c in case(&doc, "derived") {
        let id = c["id"].as_str().expect("id");
        let (i, e) = (&c["inputs"], &c["expected"]);
        if let Some(s) = i.get("score") {
            let t = ScoreThresholds {
                pass: num(&i["pass"]),
                marginal: num(&i["marginal"]),
            };
            let want = match e["classification"].as_str().expect("class") {
                "Pass" => ScoreClass::Pass,
                "Marginal" => ScoreClass::Marginal,
                _ => ScoreClass::Fail,
            };
            assert_eq!(classify_score(num(s), t), want, "{id}");
            n += 1;
        } else if let Some(scores) = i.get("interval_scores") {
            let t = ScoreThresholds {
                pass: num(&i["pass"]),
                marginal: num(&i["marginal"]),
            };
            let got = multi_interval(&nums(scores), Some(t));
            assert_eq!(
                got.passed,
                e["didPassThresholds"].as_bool().expect("bool"),
                "{id}"
            );
            assert_eq!(got.message, e["message"].as_str().expect("msg"), "{id}");
            n += 1;
        }
    }
    assert_eq!(n, 3);
    // a score equal to marginal is Marginal for the judge but stops the run as a failure
    let t = ScoreThresholds {
        pass: 75.0,
        marginal: 50.0,
    };
    assert!(!multi_interval(&[90.0, 50.0, 95.0], Some(t)).passed);
    assert_eq!(
        multi_interval(&[90.0, 50.0, 95.0], Some(t)).intervals_judged,
        2
    );
}
