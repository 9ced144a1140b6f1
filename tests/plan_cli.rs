//! `rollgate plan` through the binary: the example Rollouts print their steps and
//! weights; bad files exit 64 naming the file, the line and the field.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn data(name: &str) -> String {
    format!("{}/tests/data/rollouts/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn plan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rollgate"))
        .arg("plan")
        .args(args)
        .output()
        .expect("rollgate runs")
}

fn json_plan(file: &str) -> Value {
    let out = plan(&["-f", &data(file), "--output", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document on stdout")
}

fn canary_weights(v: &Value) -> Vec<u64> {
    v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["canaryWeight"].as_u64().expect("weight"))
        .collect()
}

#[test]
fn canary_steps_example() {
    let v = json_plan("canary-steps.yaml");
    assert_eq!(v["rollout"], "podinfo");
    assert_eq!(v["strategy"], "canary");
    assert_eq!(canary_weights(&v), [10, 10, 10, 30, 30, 60, 60]);
    assert_eq!(v["steps"][2]["step"]["type"], "analysis");
    assert_eq!(
        v["steps"][2]["step"]["source"]["templates"][0]["templateName"],
        "success-rate"
    );
    assert_eq!(
        v["steps"][6]["step"]["duration"],
        Value::Null,
        "pause until promoted"
    );
    assert_eq!(v["background"]["startingStep"], 2);
    assert_eq!(v["promotion"]["canaryWeights"], serde_json::json!([0]));
    assert_eq!(v["minimumSeconds"], 420);
    assert_eq!(v["progressDeadlineSeconds"], 300);
    for s in v["steps"].as_array().expect("steps") {
        assert_eq!(
            s["canaryWeight"].as_u64().expect("c") + s["primaryWeight"].as_u64().expect("p"),
            100
        );
    }
}

#[test]
fn flagger_shorthand_example_overshoots_like_flagger() {
    let v = json_plan("flagger-shorthand.yaml");
    assert_eq!(canary_weights(&v), [20, 20, 40, 40, 60, 60]);
    assert_eq!(v["promotion"]["canaryWeights"], serde_json::json!([30, 0]));
    let bg = &v["background"]["source"];
    assert_eq!(bg["type"], "flaggerChecks");
    assert_eq!(bg["threshold"], 5);
    assert_eq!(bg["intervalSecs"], 60);
    assert_eq!(bg["metrics"][1]["templateRef"]["name"], "latency");
}

#[test]
fn blue_green_example() {
    let v = json_plan("blue-green.yaml");
    assert_eq!(v["strategy"], "blueGreen");
    assert_eq!(canary_weights(&v), [0, 0, 100, 100]);
    assert_eq!(v["steps"][0]["step"]["kind"], "prePromotion");
    assert_eq!(v["steps"][1]["step"]["duration"], "300s");
    assert_eq!(v["steps"][3]["step"]["kind"], "postPromotion");
    assert_eq!(v["promotion"]["scaleDownDelaySeconds"], 60);
}

#[test]
fn text_output_lists_each_step_with_its_weights() {
    let out = plan(&["-f", &data("canary-steps.yaml")]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with(char::is_numeric))
        .collect();
    assert_eq!(rows.len(), 7, "{text}");
    assert!(
        rows[0].contains("setWeight 10") && rows[0].ends_with("10%     90%"),
        "{}",
        rows[0]
    );
    assert!(
        rows[6].contains("pause until promoted") && rows[6].ends_with("60%     40%"),
        "{}",
        rows[6]
    );
    assert!(
        text.contains("background analysis from step 2 until promotion: error-budget"),
        "{text}"
    );
    let out = plan(&["-f", &data("blue-green.yaml"), "--output", "text"]);
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        text.contains("switch: all traffic to the new version"),
        "{text}"
    );
    assert!(
        text.contains("scale the canary to zero after 60s"),
        "{text}"
    );
}

/// (file, line, what the message must name)
const BAD: &[(&str, usize, &[&str])] = &[
    (
        "bad-weight.yaml",
        14,
        &["spec.strategy.canary.steps[1]", "150", "0..=100"],
    ),
    (
        "bad-unknown-field.yaml",
        14,
        &["spec.strategy.canary.analysis", "stepWieght"],
    ),
    (
        "bad-step-kind.yaml",
        14,
        &["spec.strategy.canary.steps[1]", "`wait`"],
    ),
    (
        "bad-duration.yaml",
        14,
        &["spec.strategy.canary.steps[1].pause", "10 minutes"],
    ),
    (
        "bad-starting-step.yaml",
        18,
        &["spec.strategy.canary.analysis.startingStep", "step 7"],
    ),
    (
        "bad-step-weights.yaml",
        13,
        &[
            "spec.strategy.canary.analysis.stepWeights[2]",
            "must increase",
        ],
    ),
    ("bad-syntax.yaml", 7, &["did not find expected"]),
];

#[test]
fn bad_rollouts_exit_64_naming_file_line_and_field() {
    for (file, line, names) in BAD {
        let path = data(file);
        let out = plan(&["-f", &path]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{file}: {err}");
        assert!(out.stdout.is_empty(), "{file}: nothing on stdout");
        assert!(
            err.contains(&format!("{path}:{line}:")),
            "{file}: line {line} in {err}"
        );
        for n in *names {
            assert!(err.contains(n), "{file}: {n:?} in {err}");
        }
    }
}

#[test]
fn wrong_kind_version_or_missing_file_are_usage_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = std::fs::read_to_string(data("canary-steps.yaml")).expect("example");
    for (name, from, to, expect) in [
        (
            "kind.yaml",
            "kind: Rollout",
            "kind: Canary",
            "kind: expected Rollout",
        ),
        (
            "version.yaml",
            "rollgate.dev/v1alpha1",
            "flagger.app/v1beta1",
            "apiVersion: expected rollgate.dev/v1alpha1",
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, good.replace(from, to)).expect("write");
        let out = plan(&["-f", path.to_str().expect("utf-8 path")]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{err}");
        assert!(err.contains(expect), "{err}");
        assert!(err.contains(&format!("{}:", path.display())), "{err}");
    }
    let missing = dir.path().join("absent.yaml");
    let out = plan(&["-f", missing.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("absent.yaml"));
    let out = plan(&["-f", &data("canary-steps.yaml"), "--output", "xml"]);
    assert_eq!(out.status.code(), Some(64), "bad flag value");
    assert!(Path::new(&data("canary-steps.yaml")).exists());
}

#[test]
fn reads_standard_input_with_dash() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_rollgate"))
        .args(["plan", "-f", "-", "--output", "json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("rollgate runs");
    let text = std::fs::read(data("flagger-shorthand.yaml")).expect("example");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&text)
        .expect("write");
    let out = child.wait_with_output().expect("exit");
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(canary_weights(&v), [20, 20, 40, 40, 60, 60]);
}
