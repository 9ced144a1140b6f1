//! `rollgate promote --require-analysis`: the analysis gate in front of a promotion, through
//! the binary, against a real backfilled Prometheus and a real bare remote over `file://`.
//! The analysis is the shipped `analysis-templates/http` pair (success rate and P99
//! latency), for a healthy canary (99.5 %, 235 ms) and a bad one (90 %, ~989 ms).

#[path = "support/git.rs"]
mod git_support;
#[path = "support/prometheus.rs"]
mod prom_support;

use std::path::{Path, PathBuf};
use std::process::Output;

use git_support::{Fixture, git, show, values};
use prom_support::{BAD, Backfill, HEALTHY, Prometheus, canary_data, closed_address};

const APP: &str = "application-x";
const DEV: &str = "application-x/values-dev.yaml";
const STAGING: &str = "application-x/values-staging.yaml";
const PROD: &str = "application-x/values-prod.yaml";

/// dev 1.2.3, staging 1.2.2, prod 1.2.1; no manual approval.
fn seed_story() -> (Fixture, PathBuf) {
    let f = Fixture::new(&[
        (DEV, &values("1.2.3")),
        (STAGING, &values("1.2.2")),
        (PROD, &values("1.2.1")),
    ]);
    let policy = f.policy(
        "policy.yaml",
        APP,
        &[
            ("dev", DEV, "image.tag", false),
            ("staging", STAGING, "image.tag", false),
            ("prod", PROD, "image.tag", false),
        ],
    );
    (f, policy)
}

/// `podinfo` is healthy, `badinfo` is bad, both in namespace `test`.
fn prometheus() -> Prometheus {
    Prometheus::start(&canary_data(
        canary_data(Backfill::new(), "test", "podinfo", HEALTHY),
        "test",
        "badinfo",
        BAD,
    ))
}

fn template(file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("analysis-templates/http")
        .join(file)
        .display()
        .to_string()
}

/// The gate flags: both http templates, one measurement each, against `prometheus`, for
/// the canary `target`.
fn gate(prometheus: &str, target: &str) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "--require-analysis".into(),
        template("success-rate.yaml"),
        "--require-analysis".into(),
        template("latency-p99.yaml"),
        "--prometheus".into(),
        prometheus.into(),
        "--error-retry-interval".into(),
        "100ms".into(),
    ];
    for (k, v) in [
        ("namespace", "test".to_owned()),
        ("service", format!("{target}-canary")),
        ("count", "1".to_owned()),
        ("interval", "1s".to_owned()),
        ("failure-limit", "0".to_owned()),
    ] {
        a.push("--arg".into());
        a.push(format!("{k}={v}"));
    }
    a
}

fn promote(f: &Fixture, policy: &Path, flags: &[&str], gate: &[String]) -> Output {
    let policy = policy.display().to_string();
    let mut args: Vec<&str> = vec!["promote", "--policy", &policy, "--app", APP];
    args.extend_from_slice(flags);
    args.extend(gate.iter().map(String::as_str));
    f.rollgate(&args)
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("an exit code")
}

fn stdout_json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is JSON ({e})\n{}", show(o)))
}

/// Every ref of the remote with its commit: equal before and after means Git is untouched.
fn refs(f: &Fixture) -> String {
    git(
        &f.remote(),
        &["for-each-ref", "--format=%(objectname) %(refname)"],
    )
}

fn trailer<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    message
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
}

#[test]
fn healthy_analysis_promotes_with_the_summary_as_evidence() {
    let prom = prometheus();
    let (f, policy) = seed_story();
    let before = f.commit_count();
    let out = promote(
        &f,
        &policy,
        &["--to", "staging", "--from", "dev", "--output", "json"],
        &gate(&prom.url, "podinfo"),
    );
    assert_eq!(code(&out), 0, "{}", show(&out));
    let v = stdout_json(&out);
    assert_eq!(v["analysis"]["phase"], "Successful", "{v}");
    assert_eq!(v["analysis"]["runSummary"]["successful"], 2, "{v}");
    assert_eq!(v["gitAction"], "promote", "{v}");
    assert_eq!(v["promotion"]["result"], "committed", "{v}");
    assert!(v.get("revert").is_none(), "{v}");
    assert_eq!(f.commit_count(), before + 1);
    assert_eq!(f.remote_file(STAGING), values("1.2.3"));
    let msg = f.message("main");
    assert_eq!(trailer(&msg, "Rollgate-From"), Some("dev"), "{msg}");
    let evidence = trailer(&msg, "Rollgate-Evidence").expect("an evidence trailer");
    assert_eq!(Some(evidence), v["summary"].as_str(), "{msg}");
    assert!(
        evidence.starts_with(
            "analysis Successful (AnalysisTemplate \"http-success-rate\", AnalysisTemplate \"http-latency-p99\")"
        ),
        "{evidence}"
    );
    // The measured values: 99.5 % and 235 ms.
    assert!(
        evidence.contains("success-rate=[0.995") && evidence.contains("(Successful, 1/1"),
        "{evidence}"
    );
    assert!(evidence.contains("latency-p99=[235"), "{evidence}");

    // With --evidence, both are recorded; text output says what happened.
    let out = promote(
        &f,
        &policy,
        &[
            "--to",
            "prod",
            "--from",
            "staging",
            "--evidence",
            "smoke tests passed",
        ],
        &gate(&prom.url, "podinfo"),
    );
    assert_eq!(code(&out), 0, "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("analysis Successful")
            && text.contains("promoted application-x 1.2.3 to prod"),
        "{text}"
    );
    let evidence = trailer(&f.message("main"), "Rollgate-Evidence")
        .expect("an evidence trailer")
        .to_owned();
    assert!(
        evidence.starts_with("smoke tests passed; analysis Successful ("),
        "{evidence}"
    );
    assert_eq!(f.remote_file(PROD), values("1.2.3"));
    assert_eq!(f.commit_count(), before + 2);
}

#[test]
fn failed_analysis_promotes_nothing_and_inconclusive_exits_2() {
    let prom = prometheus();
    let (f, policy) = seed_story();
    let before = refs(&f);
    let out = promote(
        &f,
        &policy,
        &["--to", "staging", "--from", "dev", "--output", "json"],
        &gate(&prom.url, "badinfo"),
    );
    assert_eq!(code(&out), 1, "{}", show(&out));
    let v = stdout_json(&out);
    assert_eq!(v["analysis"]["phase"], "Failed", "{v}");
    assert_eq!(v["gitAction"], "none", "{v}");
    assert!(
        v.get("promotion").is_none() && v.get("revert").is_none(),
        "{v}"
    );
    assert!(
        v["analysis"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("assessed Failed")),
        "{v}"
    );
    assert_eq!(refs(&f), before, "nothing changes in Git");
    assert_eq!(f.remote_file(STAGING), values("1.2.2"));

    // Neither success nor failure (0.995 is between the two conditions): Inconclusive,
    // exit 2, no promotion and no revert even with --revert-on-failure.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("inconclusive.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {{name: strict}}\nspec:\n  metrics:\n  - name: success-rate\n    successCondition: result[0] >= 0.999\n    failureCondition: result[0] < 0.9\n    provider:\n      prometheus:\n        address: {}\n        query: sum(rate(http_requests_total{{service=\"podinfo-canary\",code!~\"5..\"}}[1m])) / sum(rate(http_requests_total{{service=\"podinfo-canary\"}}[1m]))\n",
            prom.url
        ),
    )
    .expect("write template");
    let out = promote(
        &f,
        &policy,
        &[
            "--to",
            "staging",
            "--from",
            "dev",
            "--revert-on-failure",
            "--require-analysis",
            &file.display().to_string(),
        ],
        &[],
    );
    assert_eq!(code(&out), 2, "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("analysis Inconclusive"), "{text}");
    assert_eq!(refs(&f), before, "nothing changes in Git");
}

#[test]
fn failed_analysis_with_revert_on_failure_reverts_the_source_promotion() {
    let prom = prometheus();
    let (f, policy) = seed_story();
    // CI put 1.2.4 into dev through rollgate.
    let out = promote(&f, &policy, &["--to", "dev", "--version", "1.2.4"], &[]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let dev_promotion = git(&f.remote(), &["rev-parse", "main"]).trim().to_owned();
    let before = f.commit_count();

    let out = promote(
        &f,
        &policy,
        &[
            "--to",
            "staging",
            "--from",
            "dev",
            "--revert-on-failure",
            "--output",
            "json",
        ],
        &gate(&prom.url, "badinfo"),
    );
    assert_eq!(code(&out), 1, "{}", show(&out));
    let v = stdout_json(&out);
    assert_eq!(v["analysis"]["phase"], "Failed", "{v}");
    assert_eq!(v["gitAction"], "revert", "{v}");
    assert!(v.get("promotion").is_none(), "{v}");
    assert_eq!(v["revert"]["result"], "reverted", "{v}");
    assert_eq!(v["revert"]["env"], "dev", "{v}");
    assert_eq!(v["revert"]["reverted"], dev_promotion.as_str(), "{v}");
    assert_eq!(f.commit_count(), before + 1, "one revert commit");
    assert_eq!(f.remote_file(DEV), values("1.2.3"), "dev is back on 1.2.3");
    assert_eq!(f.remote_file(STAGING), values("1.2.2"), "staging untouched");
    let msg = f.message("main");
    assert_eq!(
        v["revert"]["commit"].as_str(),
        Some(git(&f.remote(), &["rev-parse", "main"]).trim()),
        "{v}"
    );
    assert!(
        msg.contains(&dev_promotion),
        "names the reverted commit:\n{msg}"
    );
    let reason = trailer(&msg, "Rollgate-Reason").expect("a reason trailer");
    assert!(
        reason.starts_with("analysis Failed: ") && reason.contains("assessed Failed"),
        "{msg}"
    );
    let evidence = trailer(&msg, "Rollgate-Evidence").expect("an evidence trailer");
    assert_eq!(Some(evidence), v["summary"].as_str(), "{msg}");
    assert!(evidence.contains("success-rate=[0.9"), "{evidence}");

    // Again, naming the version and letting the policy give the source (dev, before
    // staging): dev no longer holds 1.2.4, so nothing more is reverted.
    let out = promote(
        &f,
        &policy,
        &[
            "--to",
            "staging",
            "--version",
            "1.2.4",
            "--revert-on-failure",
            "--output",
            "json",
        ],
        &gate(&prom.url, "badinfo"),
    );
    assert_eq!(code(&out), 1, "{}", show(&out));
    let v = stdout_json(&out);
    assert_eq!(v["revert"]["env"], "dev", "{v}");
    assert_eq!(v["revert"]["result"], "notCurrent", "{v}");
    assert_eq!(f.commit_count(), before + 1, "idempotent");
}

#[test]
fn unreachable_prometheus_is_an_error_and_never_reverts() {
    let (f, policy) = seed_story();
    let out = promote(&f, &policy, &["--to", "dev", "--version", "1.2.4"], &[]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    let before = refs(&f);
    let out = promote(
        &f,
        &policy,
        &[
            "--to",
            "staging",
            "--from",
            "dev",
            "--revert-on-failure",
            "--output",
            "json",
        ],
        &gate(&closed_address(), "podinfo"),
    );
    assert_eq!(code(&out), 3, "{}", show(&out));
    let v = stdout_json(&out);
    assert_eq!(v["analysis"]["phase"], "Error", "{v}");
    assert_eq!(v["gitAction"], "none", "{v}");
    assert!(
        v.get("promotion").is_none() && v.get("revert").is_none(),
        "{v}"
    );
    assert_eq!(refs(&f), before, "nothing changes in Git");
    assert_eq!(f.remote_file(DEV), values("1.2.4"));
}

#[test]
fn unreadable_analysis_files_exit_64_before_touching_git() {
    let (f, policy) = seed_story();
    let before = refs(&f);
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.yaml");
    let malformed = dir.path().join("malformed.yaml");
    std::fs::write(
        &malformed,
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata: {name: x\nspec: [\n",
    )
    .expect("write");
    for file in [&missing, &malformed] {
        let name = file.display().to_string();
        let out = promote(
            &f,
            &policy,
            &[
                "--to",
                "staging",
                "--from",
                "dev",
                "--revert-on-failure",
                "--require-analysis",
                &template("success-rate.yaml"),
                "--require-analysis",
                &name,
            ],
            &[],
        );
        assert_eq!(code(&out), 64, "{}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&name), "names the file: {err}");
        assert_eq!(refs(&f), before, "nothing changes in Git");
        assert!(
            !f.cache().exists(),
            "--from was not resolved: no fetch, no cache clone"
        );
    }

    // No source environment to revert: dev is the first environment.
    let out = promote(
        &f,
        &policy,
        &[
            "--to",
            "dev",
            "--version",
            "1.2.4",
            "--revert-on-failure",
            "--require-analysis",
            &template("success-rate.yaml"),
        ],
        &[],
    );
    assert_eq!(code(&out), 64, "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no source environment"),
        "{}",
        show(&out)
    );
    // Gate options without the gate.
    let out = promote(
        &f,
        &policy,
        &["--to", "staging", "--from", "dev", "--revert-on-failure"],
        &[],
    );
    assert_eq!(code(&out), 64, "{}", show(&out));
    assert_eq!(refs(&f), before);
    assert!(!f.cache().exists());
}
