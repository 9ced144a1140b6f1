//! Every case of the `conditions`, `runs`, `run_level` and `validation` sections of
//! `argo-rollouts-cases.json`, driven through the library's public analysis API.

#[path = "support/analysis.rs"]
mod support;

use chrono::TimeDelta;
use rollgate::core::analysis::model::{AnalysisRunSpec, DryRun, Metric, MetricProvider, WebMetric};
use rollgate::core::analysis::run::{
    PreparedMetric, assess, assess_metric, evaluate_measurement, limit_verdict, prepare,
    record_measurement,
};
use rollgate::core::analysis::status::{AnalysisRunStatus, Measurement, MetricResult};
use rollgate::core::analysis::value::{AnalysisPhase, Observation, Value};
use serde_json::Value as Json;
use support::{metric, t0, vectors};

fn phase(s: &str) -> AnalysisPhase {
    serde_json::from_value(Json::String(s.to_owned())).expect("a phase name")
}

fn result_value(case: &Json) -> Result<Value, String> {
    let r = &case["result"];
    Ok(match case["result_type"].as_str().expect("result_type") {
        "bool" | "object" | "string" | "int" | "null" => Value::from(r),
        "float" => match r {
            Json::String(s) if s == "NaN" => Value::Float(f64::NAN),
            Json::String(s) if s == "+Inf" => Value::Float(f64::INFINITY),
            Json::String(s) if s == "-Inf" => Value::Float(f64::NEG_INFINITY),
            other => Value::Float(other.as_f64().expect("a float")),
        },
        "float_list" => Value::List(
            r.as_array()
                .expect("a list")
                .iter()
                .map(|v| Value::Float(v.as_f64().expect("a float")))
                .collect(),
        ),
        // The Prometheus provider refuses these before any condition is evaluated.
        "unsupported_prom_type" => return Err("Prometheus metric type not supported".into()),
        other => panic!("unknown result_type {other}"),
    })
}

#[test]
fn conditions() {
    let v = vectors();
    let cases = v["conditions"].as_array().expect("conditions");
    assert_eq!(cases.len(), 19);
    for case in cases {
        let m = Metric {
            name: "m".into(),
            success_condition: case["success"].as_str().map(str::to_owned),
            failure_condition: case["failure"].as_str().map(str::to_owned),
            ..Metric::default()
        };
        let pm = PreparedMetric::new(&m).expect("conditions compile");
        let outcome = result_value(case).map(|result| Observation {
            result,
            value: case["measurement_value"].as_str().unwrap_or("").to_owned(),
            ..Observation::default()
        });
        let got = evaluate_measurement(&pm, &outcome, t0(), t0());
        let expected = phase(case["expected"].as_str().expect("expected"));
        assert_eq!(got.phase, expected, "{case}: {}", got.message);
        if let Some(s) = case["error_contains"].as_str() {
            assert!(got.message.contains(s), "{case}: message {:?}", got.message);
        }
        if expected == AnalysisPhase::Error {
            assert!(got.value.is_empty(), "an Error measurement keeps no value");
            assert!(!got.message.is_empty());
        } else if let Some(value) = case["measurement_value"].as_str() {
            assert_eq!(got.value, value);
        }
    }
}

#[test]
fn empty_results_error_with_argos_message() {
    let m = Metric {
        name: "m".into(),
        success_condition: Some("result[0] >= 0.95".into()),
        ..Metric::default()
    };
    let pm = PreparedMetric::new(&m).expect("compiles");
    let got = evaluate_measurement(
        &pm,
        &Ok(Observation {
            result: Value::List(vec![]),
            value: "[]".into(),
            ..Observation::default()
        }),
        t0(),
        t0(),
    );
    assert_eq!(got.phase, AnalysisPhase::Error);
    assert_eq!(
        got.message,
        "could not evaluate successCondition \"result[0] >= 0.95\": metric result is nil or empty: no data returned from the metric provider"
    );
}

fn counters_result(case: &Json) -> MetricResult {
    let c = &case["counters"];
    let n = |k: &str| i32::try_from(c[k].as_i64().expect("a counter")).expect("small");
    let mut r = MetricResult::new("m", false);
    r.count = n("count");
    r.successful = n("successful");
    r.failed = n("failed");
    r.inconclusive = n("inconclusive");
    r.error = n("error");
    r.consecutive_error = n("consecutiveError");
    r.consecutive_success = n("consecutiveSuccess");
    if let Some(p) = case["last_measurement_phase"].as_str() {
        let p = phase(p);
        r.measurements.push(Measurement {
            phase: p,
            message: String::new(),
            started_at: Some(t0()),
            finished_at: p.is_completed().then(t0),
            value: String::new(),
            metadata: Default::default(),
            resume_at: None,
        });
    }
    r
}

fn web_metric(name: &str) -> Metric {
    Metric {
        name: name.into(),
        provider: MetricProvider {
            web: Some(WebMetric {
                url: "http://127.0.0.1:1/".into(),
                ..WebMetric::default()
            }),
            ..MetricProvider::default()
        },
        ..Metric::default()
    }
}

fn measurement(p: AnalysisPhase, at: chrono::DateTime<chrono::Utc>) -> Measurement {
    Measurement {
        phase: p,
        message: if p == AnalysisPhase::Error {
            "boom".into()
        } else {
            String::new()
        },
        started_at: Some(at),
        finished_at: Some(at),
        value: String::new(),
        metadata: Default::default(),
        resume_at: None,
    }
}

#[test]
fn runs() {
    let v = vectors();
    let cases = v["runs"].as_array().expect("runs");
    assert_eq!(cases.len(), 23);
    for case in cases {
        let expected = phase(case["expected_metric_phase"].as_str().expect("phase"));
        match case["kind"].as_str() {
            Some("counters") => {
                let pm = PreparedMetric::new(&metric(&case["metric"], false)).expect("metric");
                let r = counters_result(case);
                let terminating = case["terminating"].as_bool().expect("terminating");
                assert_eq!(assess_metric(&pm, &r, terminating), expected, "{case}");
                if let Some(msg) = case["message"].as_str() {
                    assert_eq!(limit_verdict(&pm, &r).map(|(_, m)| m).as_deref(), Some(msg));
                }
            }
            Some("sequence") => {
                let mut spec = AnalysisRunSpec {
                    metrics: vec![metric(&case["metric"], true)],
                    ..AnalysisRunSpec::default()
                };
                let run = prepare(&spec).expect("valid");
                let mut status = AnalysisRunStatus::default();
                let mut now = t0();
                for p in case["measurements"].as_array().expect("measurements") {
                    let p = phase(p.as_str().expect("phase"));
                    record_measurement(
                        &run,
                        &mut status,
                        0,
                        measurement(p, now),
                        &Default::default(),
                        &[],
                    );
                    assess(&run, &mut status, now);
                    now += TimeDelta::minutes(1);
                }
                if case["terminating_after_last"].as_bool() == Some(true) {
                    spec.terminate = true;
                    let run = prepare(&spec).expect("valid");
                    assess(&run, &mut status, now);
                }
                let r = &status.metric_results[0];
                assert_eq!(r.phase, expected, "{case}");
                let c = &case["final_counters"];
                let got = serde_json::json!({
                    "count": r.count, "successful": r.successful, "failed": r.failed,
                    "inconclusive": r.inconclusive, "error": r.error,
                    "consecutiveError": r.consecutive_error,
                    "consecutiveSuccess": r.consecutive_success,
                });
                assert_eq!(&got, c, "{case}");
            }
            other => panic!("unknown kind {other:?}"),
        }
    }
}

#[test]
fn run_level() {
    let v = vectors();
    let cases = v["run_level"].as_array().expect("run_level");
    assert_eq!(cases.len(), 3);
    for case in cases {
        let phases: Vec<AnalysisPhase> = case["metric_phases"]
            .as_array()
            .expect("phases")
            .iter()
            .map(|p| phase(p.as_str().expect("phase")))
            .collect();
        let dry: Vec<bool> = case["dry_run"]
            .as_array()
            .expect("dry_run")
            .iter()
            .map(|d| d.as_bool().expect("bool"))
            .collect();
        // Each metric is brought to its phase by what it measured: a count-1 metric for a
        // completed phase, an unbounded one (interval) still Running after a success.
        let mut spec = AnalysisRunSpec::default();
        let mut taken = Vec::new();
        for (i, p) in phases.iter().enumerate() {
            let name = format!("metric-{i}");
            let mut m = web_metric(&name);
            let measured = if *p == AnalysisPhase::Running {
                m.interval = Some("1m".into());
                AnalysisPhase::Successful
            } else {
                *p
            };
            taken.push(measured);
            if dry[i] {
                spec.dry_run.push(DryRun {
                    metric_name: format!("^{name}$"),
                });
            }
            spec.metrics.push(m);
        }
        let run = prepare(&spec).expect("valid");
        let mut status = AnalysisRunStatus::default();
        for (i, p) in taken.iter().enumerate() {
            record_measurement(
                &run,
                &mut status,
                i,
                measurement(*p, t0()),
                &Default::default(),
                &[],
            );
        }
        let first = assess(&run, &mut status, t0());
        // A metric that fails makes the run terminate at its next (immediate) step.
        if first.next_requeue == Some(t0()) {
            assess(&run, &mut status, t0());
        }
        let expected = phase(case["expected_run_phase"].as_str().expect("phase"));
        assert_eq!(status.phase, expected, "{case}");
        if expected == AnalysisPhase::Running {
            assert!(status.message.is_empty());
        }
        if let Some(summary) = case.get("expected_dryRunSummary") {
            assert_eq!(
                &serde_json::to_value(status.dry_run_summary).expect("json"),
                summary
            );
        }
        if phases.contains(&AnalysisPhase::Running) && expected.is_completed() {
            // The sibling was cut short: Successful, with its single measurement.
            let sibling = status
                .metric_results
                .iter()
                .find(|r| r.phase == AnalysisPhase::Successful)
                .expect("the running sibling ended");
            assert_eq!(sibling.measurements.len(), 1);
        }
    }
}

#[test]
fn validation() {
    let v = vectors();
    let cases = v["validation"].as_array().expect("validation");
    assert_eq!(cases.len(), 6);
    for case in cases {
        let metrics = match &case["metric"] {
            Json::String(s) if s == "two providers" => {
                let mut m = web_metric("m");
                m.provider.prometheus = Some(Default::default());
                vec![m]
            }
            Json::Object(_) => vec![metric(&case["metric"], false)],
            Json::Null => Vec::new(),
            other => panic!("unknown metric {other}"),
        };
        let spec = AnalysisRunSpec {
            metrics,
            ..AnalysisRunSpec::default()
        };
        let err = prepare(&spec).expect_err("invalid");
        assert_eq!(
            err.to_string(),
            format!(
                "Analysis spec invalid: {}",
                case["error"].as_str().expect("error")
            )
        );
    }
}
