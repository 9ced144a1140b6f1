//! `rollgate judge` through the binary: the vectors' numbers come out of the CLI, verdicts
//! map to exit codes, and bad input exits 64 naming the file and the line.

#[path = "support/judge_vectors.rs"]
mod vectors;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use vectors::{close_rel, load, num, nums};

fn rollgate(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rollgate"))
        .args(args)
        .output()
        .expect("run the rollgate binary");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write_lines(dir: &Path, name: &str, values: &[f64]) -> PathBuf {
    let path = dir.join(name);
    let text: String = values.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(&path, text).expect("write sample");
    path
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn mann_whitney_cli_reproduces_the_vectors() {
    let doc = load("mwu-cases.json");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut checked = 0;
    // a sample: per case one result, rotating through alternatives, methods and continuity
    for (k, case) in doc["cases"].as_array().expect("cases").iter().enumerate() {
        let name = case["name"].as_str().expect("name");
        let (x, y) = (nums(&case["x"]), nums(&case["y"]));
        let b = write_lines(dir.path(), &format!("{name}-b"), &x);
        let c = write_lines(dir.path(), &format!("{name}-c"), &y);
        let results = case["results"].as_array().expect("results");
        for r in results.iter().cycle().skip(k).take(1) {
            let alt = r["alternative"].as_str().expect("alt");
            let method = r["method"].as_str().expect("method");
            let mut args = vec![
                "judge",
                "mann-whitney",
                "--baseline",
                s(&b),
                "--canary",
                s(&c),
                "--alternative",
                alt,
                "--method",
                method,
                "--confidence",
                "0.98",
                "--output",
                "json",
            ];
            if r["use_continuity"] == Value::Bool(false) {
                args.push("--no-continuity");
            }
            let (code, out, err) = rollgate(&args);
            assert_eq!(code, 0, "{name}: {err}");
            let got: Value = serde_json::from_str(&out).expect("json on stdout");
            assert_eq!(num(&got["u"]), num(&r["U"]), "{name}");
            let want_p = num(&r["pvalue"]);
            let got_p = if got["p_value"].is_null() {
                f64::NAN
            } else {
                num(&got["p_value"])
            };
            assert!(
                close_rel(got_p, want_p, 1e-9),
                "{name} {alt} {method}: {got_p} vs {want_p}"
            );
            let hl = &case["hodges_lehmann_y_minus_x"];
            assert_eq!(num(&got["hl_shift"]), num(&hl["estimate"]), "{name}");
            assert_eq!(
                num(&got["ci_low"]),
                num(&hl["ci98_exact_order_statistic"]["lower"]),
                "{name}"
            );
            assert_eq!(
                num(&got["ci_high"]),
                num(&hl["ci98_exact_order_statistic"]["upper"]),
                "{name}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 20);
}

#[test]
fn bad_sample_line_exits_64_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = dir.path().join("baseline.txt");
    std::fs::write(&b, "1.5\n# a comment\n\n2.5\nfast\n").expect("write");
    let c = write_lines(dir.path(), "canary.txt", &[1.0, 2.0]);
    let (code, out, err) = rollgate(&[
        "judge",
        "mann-whitney",
        "--baseline",
        s(&b),
        "--canary",
        s(&c),
    ]);
    assert_eq!(code, 64, "{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("baseline.txt:5") && err.contains("fast"),
        "{err}"
    );
    let (code, _, err) = rollgate(&[
        "judge",
        "mann-whitney",
        "--baseline",
        "/nonexistent/b",
        "--canary",
        s(&c),
    ]);
    assert_eq!(code, 64, "{err}");
    assert!(err.contains("/nonexistent/b"), "{err}");
}

#[test]
fn kayenta_cli_verdicts_follow_the_classifier_vectors() {
    let doc = load("kayenta-judge-cases.json");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("canary.yaml");
    // one critical-free metric, the judge's own tolerance/confidence given on the command
    // line as the vectors' classifier settings
    std::fs::write(
        &config,
        "metrics:\n  - name: latency\n    groups: [perf]\n    analysisConfigurations:\n      canary:\n        direction: either\nscoreThresholds: {pass: 75, marginal: 50}\n",
    )
    .expect("write config");
    let mut checked = 0;
    for c in doc["classifier"].as_array().expect("classifier") {
        let i = &c["inputs"];
        let plain = i["classifier"] == "MannWhitneyClassifier"
            && i["direction"] == "either"
            && i["nanStrategy"] == "remove"
            && i["isCriticalMetric"] == false
            && i["effectSizeThresholds_decrease_increase"] == serde_json::json!([1.0, 1.0]);
        if !plain {
            continue;
        }
        let id = c["id"].as_str().expect("id");
        let b = write_lines(dir.path(), "b.txt", &nums(&i["control"]));
        let e = write_lines(dir.path(), "c.txt", &nums(&i["experiment"]));
        let tol = num(&i["tolerance"]).to_string();
        let conf = num(&i["confLevel"]).to_string();
        let (code, out, err) = rollgate(&[
            "judge",
            "kayenta",
            "--config",
            s(&config),
            "--baseline",
            s(&b),
            "--canary",
            s(&e),
            "--tolerance",
            &tol,
            "--confidence",
            &conf,
            "--output",
            "json",
        ]);
        let got: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{id}: {err}"));
        let label = c["expected"]["classification"].as_str().expect("label");
        assert_eq!(got["metrics"][0]["classification"], label, "{id}");
        // one metric: Pass scores 100 (exit 0), High/Low score 0 (exit 1)
        let want_code = if label == "Pass" { 0 } else { 1 };
        assert_eq!(code, want_code, "{id}: {out}");
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} cases");
}

#[test]
fn kayenta_cli_marginal_score_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("canary.json");
    std::fs::write(
        &config,
        r#"{"metrics":[{"name":"a","groups":["g"]},{"name":"b","groups":["g"]}],"scoreThresholds":{"pass":75,"marginal":50}}"#,
    )
    .expect("write");
    let b = dir.path().join("b.txt");
    let c = dir.path().join("c.txt");
    let base: String = (0..30).map(|k| format!("a {k}\nb {k}\n")).collect();
    let canary: String = (0..30).map(|k| format!("a {k}\nb {}\n", k + 100)).collect();
    std::fs::write(&b, base).expect("write");
    std::fs::write(&c, canary).expect("write");
    let (code, out, err) = rollgate(&[
        "judge",
        "kayenta",
        "--config",
        s(&config),
        "--baseline",
        s(&b),
        "--canary",
        s(&c),
        "--output",
        "json",
    ]);
    assert_eq!(code, 2, "{out}{err}");
    let got: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(got["verdict"], "Marginal");
    assert_eq!(num(&got["score"]), 50.0);
}

#[test]
fn sequential_cli_decides_and_maps_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |text: &str| {
        let f = dir.path().join("counts.txt");
        std::fs::write(&f, text).expect("write");
        rollgate(&["judge", "sequential", "--counts", s(&f), "--output", "json"])
    };
    // a canary at 4× the baseline error rate: Fail at the look where evidence suffices
    let bad: String = (1..=30u64)
        .map(|k| format!("{} {} {} {}\n", k, k * 200, k * 4, k * 200))
        .collect();
    let (code, out, err) = run(&bad);
    assert_eq!(code, 1, "{out}{err}");
    let got: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(got["decision"], "Fail");
    assert!(num(&got["p_value"]) <= 0.01);
    assert!(
        got["look"].as_u64().expect("look") < 30,
        "stops at the first decision"
    );
    // equal rates, little data: Continue (exit 2)
    let (code, out, _) = run("# be br ce cr\n2 400 3 400\n4 800 4 800\n");
    assert_eq!(code, 2, "{out}");
    // equal rates, lots of data: Pass (exit 0)
    let (code, out, _) = run("5000 1000000 5000 1000000\n");
    assert_eq!(code, 0, "{out}");
    // a counter reset is bad input naming the line
    let (code, _, err) = run("5 100 5 100\n1 50 5 100\n");
    assert_eq!(code, 64);
    assert!(err.contains("counts.txt:2"), "{err}");
    let (code, _, err) = run("5 100 5\n");
    assert_eq!(code, 64);
    assert!(err.contains("counts.txt:1"), "{err}");
}
