//! The `judge` provider against a real Prometheus (Debian's, backfilled with promtool):
//! a healthy canary passes, a slower canary or one with more errors fails, missing data is
//! an Error naming the arm and the query; and the shipped `analysis-templates/judge-*.yaml`
//! through `rollgate analyze` (exit 0 on a healthy canary, 1 on a regressed one, 3 when
//! the baseline has no data).

#[path = "support/prometheus.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use rollgate::core::analysis::judge_metric::{
    CountQueries, Direction, JudgeMethod, JudgeMetric, SampleQueries,
};
use rollgate::core::analysis::model::{Metric, MetricProvider};
use rollgate::core::analysis::value::{AnalysisPhase, Observation, Value};
use rollgate::providers::{ProviderError, ProviderSettings, build};
use support::{Backfill, Prometheus, closed_address};

const PODS: usize = 8;
const HIST: &str = "http_request_duration_seconds_bucket";

/// Per-pod latency histograms: p90 of pod `i` lies inside the bucket above `fast`/`slow`
/// bounds, at a position that depends on `i`, so the pods differ.
fn latency(mut b: Backfill, hash: &str, pod_prefix: &str, slow: bool, pods: usize) -> Backfill {
    for i in 0..pods {
        let c = 1.0 + i as f64;
        let buckets: [(f64, f64); 4] = if slow {
            [(0.25, 4.0), (0.5, 4.0), (1.0, c), (2.5, 1.0)]
        } else {
            [(0.05, 4.0), (0.1, 4.0), (0.25, c), (0.5, 1.0)]
        };
        let labels = format!(
            "namespace=\"shop\",service=\"checkout\",rollouts_pod_template_hash=\"{hash}\",pod=\"{pod_prefix}-{i}\""
        );
        b = b.buckets(HIST, &labels, &buckets);
    }
    b
}

/// Per-pod request counters of one arm of `app`: 10 ok/s and `errors(i)` 5xx/s; pod 0
/// has no 5xx series at all (as a pod that never failed).
fn requests(b: Backfill, app: &str, track: &str, errors: impl Fn(usize) -> f64) -> Backfill {
    requests_at(b, app, track, 10.0, errors)
}

/// [`requests`] with `ok` 2xx/s per pod.
fn requests_at(
    mut b: Backfill,
    app: &str,
    track: &str,
    ok: f64,
    errors: impl Fn(usize) -> f64,
) -> Backfill {
    for i in 0..PODS {
        let labels =
            format!("namespace=\"shop\",app=\"{app}\",track=\"{track}\",pod=\"{app}-{track}-{i}\"");
        b = b.counter("http_requests_total", &format!("{labels},code=\"200\""), ok);
        if i > 0 {
            b = b.counter(
                "http_requests_total",
                &format!("{labels},code=\"500\""),
                errors(i),
            );
        }
    }
    b
}

fn data() -> Backfill {
    let mut b = Backfill::new();
    b = latency(b, "stable1", "stable", false, PODS);
    b = latency(b, "healthy1", "healthy", false, PODS);
    b = latency(b, "slow1", "slow", true, PODS);
    b = latency(b, "lonely1", "lonely", false, 1);
    // checkout: a healthy canary (same error ratios as its baseline);
    // payments: a canary at ~3% errors against ~0.6%.
    let base = |i: usize| 0.05 + 0.005 * i as f64;
    b = requests(b, "checkout", "baseline", base);
    b = requests(b, "checkout", "canary", base);
    b = requests(b, "payments", "baseline", base);
    b = requests(b, "payments", "canary", |i| 0.3 + 0.005 * i as f64);
    // quiet: about one error per arm in 5 minutes, too little to decide anything.
    b = requests_at(b, "quiet", "baseline", 0.1, |_| 0.0005);
    b = requests_at(b, "quiet", "canary", 0.1, |_| 0.0005);
    b.gauge("broken_latency", "arm=\"baseline\"", f64::NAN)
}

fn p90(hash: &str) -> String {
    format!(
        "histogram_quantile(0.9, sum by (le, pod) (rate({HIST}{{rollouts_pod_template_hash=\"{hash}\"}}[1m])))"
    )
}

fn error_ratio(app: &str, track: &str) -> String {
    let sel = format!("namespace=\"shop\",app=\"{app}\",track=\"{track}\"");
    format!(
        "(sum by (pod) (rate(http_requests_total{{{sel},code=~\"5..\"}}[1m])) or 0 * sum by (pod) (rate(http_requests_total{{{sel}}}[1m]))) / sum by (pod) (rate(http_requests_total{{{sel}}}[1m]))"
    )
}

fn judge_metric(address: &str, baseline: &str, canary: &str) -> Metric {
    Metric {
        name: "latency-judge".into(),
        provider: MetricProvider {
            judge: Some(JudgeMetric {
                method: JudgeMethod::MannWhitney,
                address: Some(address.into()),
                samples: Some(SampleQueries {
                    baseline: baseline.into(),
                    canary: canary.into(),
                    lookback: Some("10m".into()),
                    step: Some("1m".into()),
                }),
                tolerance: Some(0.1),
                ..JudgeMetric::default()
            }),
            ..MetricProvider::default()
        },
        ..Metric::default()
    }
}

fn judge_of(m: &mut Metric) -> &mut JudgeMetric {
    m.provider.judge.as_mut().expect("judge provider")
}

async fn measure(m: &Metric) -> Result<Observation, ProviderError> {
    let p = build(m, &ProviderSettings::default())?;
    p.measure(m).await
}

fn field<'a>(obs: &'a Observation, key: &str) -> &'a Value {
    let Value::Map(map) = &obs.result else {
        panic!("result is not a map: {:?}", obs.result)
    };
    map.get(key)
        .unwrap_or_else(|| panic!("result has no {key}: {map:?}"))
}

fn float(obs: &Observation, key: &str) -> f64 {
    match field(obs, key) {
        Value::Float(f) => *f,
        other => panic!("{key} is not a float: {other:?}"),
    }
}

fn verdict(obs: &Observation) -> &str {
    match field(obs, "verdict") {
        Value::String(s) => s,
        other => panic!("verdict is not a string: {other:?}"),
    }
}

#[tokio::test]
async fn verdicts_from_real_prometheus() {
    let prom = Prometheus::start(&data());

    // Healthy: the canary's pods have the baseline's latency distribution.
    let healthy = judge_metric(&prom.url, &p90("stable1"), &p90("healthy1"));
    let obs = measure(&healthy).await.expect("healthy canary is judged");
    assert_eq!(verdict(&obs), "Pass", "{obs:?}");
    assert_eq!(obs.phase, Some(AnalysisPhase::Successful));
    assert_eq!(obs.message, None);
    assert_eq!(float(&obs, "estimate"), 0.0);
    assert!(float(&obs, "pValue") > 0.4, "{obs:?}");
    // 8 pods × 11 points (10m window, 1m step, both ends included).
    assert_eq!(field(&obs, "baselineCount"), &Value::Int(88));
    assert_eq!(field(&obs, "canaryCount"), &Value::Int(88));
    assert_eq!(field(&obs, "score"), &Value::Nil);
    assert!(obs.value.starts_with("Pass: shift 0 ["), "{}", obs.value);
    assert_eq!(
        obs.metric_metadata.get("ResolvedBaselineQuery"),
        Some(&p90("stable1"))
    );

    // Regressed: p90 about 0.97 s against about 0.24 s.
    let slow = judge_metric(&prom.url, &p90("stable1"), &p90("slow1"));
    let obs = measure(&slow).await.expect("slow canary is judged");
    assert_eq!(verdict(&obs), "Fail", "{obs:?}");
    assert_eq!(obs.phase, Some(AnalysisPhase::Failed));
    let estimate = float(&obs, "estimate");
    assert!((0.6..0.8).contains(&estimate), "estimate {estimate}");
    assert!(
        float(&obs, "ciLow") > 0.6 && float(&obs, "ciHigh") < 0.8,
        "{obs:?}"
    );
    assert!(float(&obs, "pValue") < 1e-20, "{obs:?}");
    let message = obs
        .message
        .as_deref()
        .expect("a failed judge explains itself");
    assert!(
        message.starts_with("judge mannWhitney: Fail: shift +0."),
        "{message}"
    );

    // The same slowdown is no regression when a decrease is what counts.
    let mut faster_is_bad = slow.clone();
    judge_of(&mut faster_is_bad).direction = Direction::Decrease;
    let obs = measure(&faster_is_bad).await.expect("judged");
    assert_eq!(verdict(&obs), "Pass", "{obs:?}");
    assert!(float(&obs, "pValue") > 0.99, "{obs:?}");

    // ... nor when 400% slower is tolerated.
    let mut tolerant = slow.clone();
    judge_of(&mut tolerant).tolerance = Some(4.0);
    let obs = measure(&tolerant).await.expect("judged");
    assert_eq!(verdict(&obs), "Pass", "{obs:?}");

    // Error ratios: healthy checkout canary passes, payments canary (3% vs 0.6%) fails.
    let ok = judge_metric(
        &prom.url,
        &error_ratio("checkout", "baseline"),
        &error_ratio("checkout", "canary"),
    );
    let obs = measure(&ok).await.expect("judged");
    assert_eq!(verdict(&obs), "Pass", "{obs:?}");
    let bad = judge_metric(
        &prom.url,
        &error_ratio("payments", "baseline"),
        &error_ratio("payments", "canary"),
    );
    let obs = measure(&bad).await.expect("judged");
    assert_eq!(verdict(&obs), "Fail", "{obs:?}");
    let estimate = float(&obs, "estimate");
    assert!((0.02..0.03).contains(&estimate), "estimate {estimate}");

    // With conditions, the conditions decide: the provider sets no phase.
    let mut with_conditions = bad.clone();
    with_conditions.success_condition = Some("result.verdict == \"Pass\"".into());
    let obs = measure(&with_conditions).await.expect("judged");
    assert_eq!(obs.phase, None);
    assert_eq!(obs.message, None);
    assert_eq!(verdict(&obs), "Fail");
}

#[tokio::test]
async fn missing_data_is_an_error_naming_arm_and_query() {
    let prom = Prometheus::start(&data());

    // Empty baseline: nothing has this hash.
    let empty = judge_metric(&prom.url, &p90("nosuchhash"), &p90("healthy1"));
    let err = measure(&empty).await.expect_err("no baseline data");
    let expected = format!(
        "judge metric \"latency-judge\", baseline query \"{}\": no data (no samples in the last 600s)",
        p90("nosuchhash")
    );
    assert_eq!(err.message, expected);

    // Empty canary.
    let empty = judge_metric(&prom.url, &p90("stable1"), &p90("nosuchhash"));
    let err = measure(&empty).await.expect_err("no canary data");
    assert!(
        err.message
            .starts_with("judge metric \"latency-judge\", canary query \""),
        "{}",
        err.message
    );

    // Only NaN points.
    let nan = judge_metric(&prom.url, "broken_latency", &p90("healthy1"));
    let err = measure(&nan).await.expect_err("NaN baseline");
    assert_eq!(
        err.message,
        "judge metric \"latency-judge\", baseline query \"broken_latency\": no data (no samples in the last 600s, 11 NaN points dropped)"
    );

    // Too few samples: one canary pod gives 11 points, fewer than minSamples 20.
    let mut few = judge_metric(&prom.url, &p90("stable1"), &p90("lonely1"));
    judge_of(&mut few).min_samples = Some(20);
    let err = measure(&few).await.expect_err("too few canary samples");
    assert_eq!(
        err.message,
        format!(
            "judge metric \"latency-judge\", canary query \"{}\": the canary query returned 11 usable samples (NaN dropped: 0), fewer than minSamples 20",
            p90("lonely1")
        )
    );

    // A PromQL error names the arm and the query.
    let bad = judge_metric(&prom.url, "sum(", &p90("healthy1"));
    let err = measure(&bad).await.expect_err("syntax error");
    assert!(
        err.message
            .starts_with("judge metric \"latency-judge\", baseline arm: prometheus query \"sum(\" failed: bad_data"),
        "{}",
        err.message
    );

    // Prometheus down.
    let down = judge_metric(&closed_address(), &p90("stable1"), &p90("healthy1"));
    let err = measure(&down).await.expect_err("nothing listens");
    assert!(
        err.message.contains("baseline arm") && err.message.contains("cannot connect to"),
        "{}",
        err.message
    );

    // Misconfiguration is refused when the provider is built.
    let mut no_samples = judge_metric(&prom.url, "x", "y");
    judge_of(&mut no_samples).samples = None;
    let err = build(&no_samples, &ProviderSettings::default())
        .err()
        .expect("samples are required");
    assert_eq!(
        err.message,
        "judge field samples: method mannWhitney needs samples.baseline and samples.canary"
    );
}

fn template(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("analysis-templates")
        .join(name)
        .display()
        .to_string()
}

/// `rollgate analyze`: exit code and stdout.
fn analyze(prom: &str, file: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rollgate"));
    cmd.args([
        "analyze",
        "-f",
        file,
        "--prometheus",
        prom,
        "--error-retry-interval",
        "100ms",
        "--arg",
        "initial-delay=0s",
    ]);
    for a in args {
        cmd.args(["--arg", a]);
    }
    cmd.env_remove("ARGO_ROLLOUTS_PROMETHEUS_ADDRESS");
    let out = cmd.output().expect("run rollgate");
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn shipped_templates_through_rollgate_analyze() {
    let prom = Prometheus::start(&data());
    let mw = template("judge-mann-whitney.yaml");
    let common = [
        "namespace=shop",
        "service=checkout",
        "baseline-hash=stable1",
    ];

    let (code, out, err) = analyze(
        &prom.url,
        &mw,
        &[&common[..], &["canary-hash=healthy1"]].concat(),
    );
    assert_eq!(code, 0, "healthy canary\nstdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("Phase:   Successful"), "{out}");
    assert!(out.contains("Pass: shift 0 ["), "{out}");

    let (code, out, err) = analyze(
        &prom.url,
        &mw,
        &[&common[..], &["canary-hash=slow1"]].concat(),
    );
    assert_eq!(code, 1, "slow canary\nstdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("Phase:   Failed"), "{out}");
    assert!(out.contains("judge mannWhitney: Fail: shift +0."), "{out}");
    // The live view and the final table, for people reading the test log.
    eprintln!("{err}{out}");

    // No baseline data: Error after consecutiveErrorLimit + 1 (5) errors, exit 3.
    let (code, out, err) = analyze(
        &prom.url,
        &mw,
        &[
            "namespace=shop",
            "service=checkout",
            "baseline-hash=nosuchhash",
            "canary-hash=healthy1",
        ],
    );
    assert_eq!(code, 3, "empty baseline\nstdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("Phase:   Error"), "{out}");
    assert!(
        out.contains("judge metric \\\"p90-latency-vs-baseline\\\", baseline query")
            || out.contains("judge metric \"p90-latency-vs-baseline\", baseline query"),
        "{out}"
    );
    assert!(out.contains("no data"), "{out}");

    // Conditions over the result map.
    let cond = template("judge-conditions.yaml");
    let (code, out, err) = analyze(&prom.url, &cond, &["namespace=shop", "app=checkout"]);
    assert_eq!(
        code, 0,
        "healthy error ratio\nstdout:\n{out}\nstderr:\n{err}"
    );
    let (code, out, err) = analyze(&prom.url, &cond, &["namespace=shop", "app=payments"]);
    assert_eq!(code, 1, "3% errors\nstdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("Phase:   Failed"), "{out}");
}

fn counts_metric(address: &str, app: &str) -> Metric {
    let q = |track: &str, errors: bool| {
        let code = if errors { ",code=~\"5..\"" } else { "" };
        format!(
            "sum(increase(http_requests_total{{namespace=\"shop\",app=\"{app}\",track=\"{track}\"{code}}}[$__range]))"
        )
    };
    Metric {
        name: "errors-judge".into(),
        provider: MetricProvider {
            judge: Some(JudgeMetric {
                method: JudgeMethod::SequentialCounts,
                address: Some(address.into()),
                counts: Some(CountQueries {
                    baseline_errors: q("baseline", true),
                    baseline_requests: q("baseline", false),
                    canary_errors: q("canary", true),
                    canary_requests: q("canary", false),
                    canary_weight: None,
                    since: Some("30m".into()),
                }),
                ..JudgeMetric::default()
            }),
            ..MetricProvider::default()
        },
        ..Metric::default()
    }
}

fn int(obs: &Observation, key: &str) -> i64 {
    match field(obs, key) {
        Value::Int(i) => *i,
        other => panic!("{key} is not an int: {other:?}"),
    }
}

#[tokio::test]
async fn sequential_counts_kayenta_and_sequential_latency() {
    let prom = Prometheus::start(&data());

    // Error counts over the last 30 minutes: 80 requests/s per arm, ~0.6% errors.
    let healthy = counts_metric(&prom.url, "checkout");
    let provider = build(&healthy, &ProviderSettings::default()).expect("provider");
    let obs = provider.measure(&healthy).await.expect("judged");
    assert_eq!(verdict(&obs), "Pass", "{obs:?}");
    assert_eq!(obs.phase, Some(AnalysisPhase::Successful));
    let requests = int(&obs, "baselineCount");
    assert!(
        (140_000..=148_000).contains(&requests),
        "{requests} requests in 30m"
    );
    let ratio = float(&obs, "estimate");
    assert!((0.95..1.05).contains(&ratio), "error-rate ratio {ratio}");
    assert!(
        float(&obs, "ciHigh") < 1.5 && float(&obs, "ciLow") < 1.0,
        "{obs:?}"
    );
    assert!(
        obs.value.starts_with("Pass: error-rate ratio 1"),
        "{}",
        obs.value
    );
    let resolved = &obs.metric_metadata["ResolvedCanaryErrorsQuery"];
    assert!(resolved.ends_with("[1800s]))"), "{resolved}");
    // A second look counts from the same start: the window has grown.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = provider.measure(&healthy).await.expect("judged");
    let resolved = &again.metric_metadata["ResolvedCanaryErrorsQuery"];
    assert!(
        resolved.ends_with("[1801s]))") || resolved.ends_with("[1802s]))"),
        "{resolved}"
    );
    assert!(float(&again, "pValue") <= float(&obs, "pValue"));

    // 3% errors in the canary against 0.6%: rolled back.
    let bad = counts_metric(&prom.url, "payments");
    let obs = measure(&bad).await.expect("judged");
    assert_eq!(verdict(&obs), "Fail", "{obs:?}");
    assert_eq!(obs.phase, Some(AnalysisPhase::Failed));
    let ratio = float(&obs, "estimate");
    assert!((4.0..5.0).contains(&ratio), "error-rate ratio {ratio}");
    assert!(float(&obs, "pValue") < 1e-6, "{obs:?}");

    // A counter query without data names the counter and the query.
    let mut empty = counts_metric(&prom.url, "nosuchapp");
    empty.name = "errors-judge".into();
    let err = measure(&empty).await.expect_err("no data");
    assert!(
        err.message.starts_with("judge metric \"errors-judge\", baseline errors query \"sum(increase(http_requests_total{namespace=\"shop\",app=\"nosuchapp\""),
        "{}",
        err.message
    );
    assert!(
        err.message
            .ends_with("no data (append `or vector(0)` if no series means zero)"),
        "{}",
        err.message
    );

    // Kayenta's classifier on the latency samples.
    let mut kayenta = judge_metric(&prom.url, &p90("stable1"), &p90("slow1"));
    let k = judge_of(&mut kayenta);
    k.method = JudgeMethod::Kayenta;
    k.tolerance = None;
    let obs = measure(&kayenta).await.expect("judged");
    assert_eq!(verdict(&obs), "Fail", "{obs:?}");
    assert_eq!(field(&obs, "score"), &Value::Float(0.0));
    assert!(float(&obs, "ciLow") > 0.6, "{obs:?}");
    let mut kayenta_ok = judge_metric(&prom.url, &p90("stable1"), &p90("healthy1"));
    judge_of(&mut kayenta_ok).method = JudgeMethod::Kayenta;
    let obs = measure(&kayenta_ok).await.expect("judged");
    assert_eq!(verdict(&obs), "Pass", "{obs:?}");
    assert_eq!(field(&obs, "score"), &Value::Float(100.0));

    // Sequential latency: slower canary fails, same distribution passes; a second look
    // adds only the new points.
    let mut slow = judge_metric(&prom.url, &p90("stable1"), &p90("slow1"));
    judge_of(&mut slow).method = JudgeMethod::SequentialLatency;
    judge_of(&mut slow).tolerance = None;
    let obs = measure(&slow).await.expect("judged");
    assert_eq!(verdict(&obs), "Fail", "{obs:?}");
    let shift = float(&obs, "estimate");
    assert!((2.5..3.5).contains(&shift), "relative shift {shift}");
    let mut same = judge_metric(&prom.url, &p90("stable1"), &p90("healthy1"));
    let s = judge_of(&mut same);
    s.method = JudgeMethod::SequentialLatency;
    s.tolerance = None;
    s.samples.as_mut().expect("samples").step = Some("1s".into());
    let provider = build(&same, &ProviderSettings::default()).expect("provider");
    let first = provider.measure(&same).await.expect("judged");
    assert_eq!(verdict(&first), "Pass", "{first:?}");
    assert_eq!(int(&first, "baselineCount"), 8 * 601);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let second = provider.measure(&same).await.expect("judged");
    let added = int(&second, "baselineCount") - 8 * 601;
    assert!((8..=8 * 3).contains(&added), "added {added} points");
}

#[test]
fn sequential_template_looks_every_interval() {
    let prom = Prometheus::start(&data());
    let file = template("judge-sequential-errors.yaml");
    let fast = ["namespace=shop", "interval=1s", "looks=3"];

    let (code, out, err) = analyze(&prom.url, &file, &[&fast[..], &["app=checkout"]].concat());
    assert_eq!(code, 0, "healthy\nstdout:\n{out}\nstderr:\n{err}");
    // Three looks, each one a measurement in the live log.
    assert_eq!(
        err.matches("error-rate-vs-baseline: measurement Successful")
            .count(),
        3,
        "{err}"
    );
    assert!(out.contains("Phase:   Successful"), "{out}");

    // Too little traffic to decide: Continue at every look, each Successful, and the
    // metric Successful once `count` looks passed without a failure.
    let (code, out, err) = analyze(&prom.url, &file, &[&fast[..], &["app=quiet"]].concat());
    assert_eq!(code, 0, "quiet\nstdout:\n{out}\nstderr:\n{err}");
    assert_eq!(
        err.matches(
            "error-rate-vs-baseline: measurement Successful value=Continue: error-rate ratio"
        )
        .count(),
        3,
        "{err}"
    );

    let (code, out, err) = analyze(&prom.url, &file, &[&fast[..], &["app=payments"]].concat());
    assert_eq!(code, 1, "3% errors\nstdout:\n{out}\nstderr:\n{err}");
    // Failed at the first look: no second measurement.
    assert_eq!(
        err.matches("error-rate-vs-baseline: measurement").count(),
        1,
        "{err}"
    );
    assert!(
        out.contains("judge sequentialCounts: Fail: error-rate ratio 4."),
        "{out}"
    );
}

/// A judge spec with a wrong method or an unknown field is refused when the file is read
/// (exit 64), naming the file, line, object and field.
#[test]
fn bad_judge_yaml_is_a_usage_error_naming_the_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, judge: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "apiVersion: rollgate.dev/v1alpha1\nkind: AnalysisTemplate\nmetadata:\n  name: t\nspec:\n  metrics:\n    - name: m\n      provider:\n        judge:\n{judge}"
            ),
        )
        .expect("write template");
        path.display().to_string()
    };
    let cases = [
        (
            write("method.yaml", "          method: tTest\n"),
            "method.yaml:10:19: AnalysisTemplate \"t\": spec.metrics[0].provider.judge.method: unknown variant `tTest`",
        ),
        (
            write(
                "field.yaml",
                "          method: mannWhitney\n          samples: {baseline: a, canary: b, lookbak: 5m}\n",
            ),
            "field.yaml:11:45: AnalysisTemplate \"t\": spec.metrics[0].provider.judge.samples: unknown field `lookbak`",
        ),
    ];
    for (file, expected) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_rollgate"))
            .args(["analyze", "-f", &file, "--prometheus", "http://127.0.0.1:1"])
            .output()
            .expect("run rollgate");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{err}");
        assert!(err.contains(expected), "{err}");
    }
}

#[test]
fn kayenta_and_sequential_latency_templates() {
    let prom = Prometheus::start(&data());
    let common = [
        "namespace=shop",
        "service=checkout",
        "baseline-hash=stable1",
    ];
    let kayenta = template("judge-kayenta.yaml");
    let sequential = template("judge-sequential-latency.yaml");
    let fast = ["interval=2s", "step=1s", "looks=3"];

    let (code, out, err) = analyze(
        &prom.url,
        &kayenta,
        &[&common[..], &["canary-hash=healthy1"]].concat(),
    );
    assert_eq!(code, 0, "kayenta healthy\nstdout:\n{out}\nstderr:\n{err}");
    let (code, out, err) = analyze(
        &prom.url,
        &kayenta,
        &[&common[..], &["canary-hash=slow1"]].concat(),
    );
    assert_eq!(code, 1, "kayenta slow\nstdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("Fail: score=0 shift +"), "{out}");

    // Same distribution: Pass at the first look ends the metric (consecutiveSuccessLimit 1).
    let (code, out, err) = analyze(
        &prom.url,
        &sequential,
        &[&common[..], &fast[..], &["canary-hash=healthy1"]].concat(),
    );
    assert_eq!(
        code, 0,
        "sequential healthy\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert_eq!(
        err.matches("p90-latency-sequential: measurement").count(),
        1,
        "{err}"
    );
    let (code, out, err) = analyze(
        &prom.url,
        &sequential,
        &[&common[..], &fast[..], &["canary-hash=slow1"]].concat(),
    );
    assert_eq!(code, 1, "sequential slow\nstdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("Fail: relative shift +"), "{out}");
}
