//! The CRDs: `crds/` and `charts/rollgate/crds/` equal what the types generate, and a real
//! kube-apiserver accepts them (`rollgate crds | kubectl apply --server-side -f -`),
//! accepts valid objects and refuses invalid ones with its own message.

#[path = "support/k8s.rs"]
mod k8s;

use std::path::Path;
use std::process::Command;

use kube::api::{Api, PostParams};
use rollgate::k8s::{AnalysisRun, AnalysisTemplate, PromotionPolicy, Rollout};

const REGENERATE: &str =
    "cargo run -- crds --out-dir crds && cargo run -- crds --out-dir charts/rollgate/crds";

fn rollgate_crds() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rollgate"))
        .arg("crds")
        .output()
        .expect("run rollgate crds");
    assert!(
        out.status.success(),
        "rollgate crds failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("rollgate crds prints UTF-8")
}

#[test]
fn crd_files_match_the_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let crds = rollgate::k8s::crds().expect("generate CRDs");
    assert_eq!(crds.len(), 6, "six kinds");
    for dir in ["crds", "charts/rollgate/crds"] {
        let mut expected_files: Vec<String> = Vec::new();
        for crd in &crds {
            let name = rollgate::k8s::file_name(crd);
            let want = format!("---\n{}", rollgate::k8s::to_yaml(crd).expect("yaml"));
            let path = root.join(dir).join(&name);
            let have = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                have == want,
                "{} is out of date with the Rust types; regenerate with:\n    {REGENERATE}",
                path.display()
            );
            expected_files.push(name);
        }
        let mut present: Vec<String> = std::fs::read_dir(root.join(dir))
            .expect("read the CRD dir")
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        present.sort();
        expected_files.sort();
        assert_eq!(
            present, expected_files,
            "{dir}/ holds files that no type generates; regenerate with:\n    {REGENERATE}"
        );
    }
}

#[test]
fn rollgate_crds_prints_every_crd_once() {
    let yaml = rollgate_crds();
    let names: Vec<String> = serde_yaml::Deserializer::from_str(&yaml)
        .map(|doc| {
            let v = serde_yaml::Value::deserialize(doc).expect("a YAML document");
            assert_eq!(v["kind"].as_str(), Some("CustomResourceDefinition"));
            v["metadata"]["name"].as_str().expect("a name").to_owned()
        })
        .collect();
    assert_eq!(
        names,
        [
            "rollouts.rollgate.dev",
            "analysistemplates.rollgate.dev",
            "clusteranalysistemplates.rollgate.dev",
            "analysisruns.rollgate.dev",
            "promotionpolicies.rollgate.dev",
            "metrictemplates.rollgate.dev",
        ]
    );
}

use serde::Deserialize as _;

/// Applies the CRDs once per test binary (server-side, as a user would) and waits until
/// every one is Established.
fn installed() -> &'static k8s::ControlPlane {
    static DONE: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    let cp = k8s::shared();
    DONE.get_or_init(|| {
        let (ok, out, err) = cp.kubectl(
            &[
                "apply",
                "--server-side",
                "--field-manager=rollgate-test",
                "-f",
                "-",
            ],
            Some(&rollgate_crds()),
        );
        assert!(
            ok,
            "rollgate crds | kubectl apply --server-side -f - failed:\n{err}"
        );
        assert_eq!(out.matches("serverside-applied").count(), 6, "{out}");
        let (ok, _, err) = cp.kubectl(
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/rollouts.rollgate.dev",
                "crd/analysistemplates.rollgate.dev",
                "crd/clusteranalysistemplates.rollgate.dev",
                "crd/analysisruns.rollgate.dev",
                "crd/promotionpolicies.rollgate.dev",
                "crd/metrictemplates.rollgate.dev",
            ],
            None,
        );
        assert!(ok, "CRDs not established: {err}");
    });
    cp
}

#[test]
fn crds_apply_server_side_and_are_structural() {
    let cp = installed();
    for crd in [
        "rollouts.rollgate.dev",
        "analysistemplates.rollgate.dev",
        "clusteranalysistemplates.rollgate.dev",
        "analysisruns.rollgate.dev",
        "promotionpolicies.rollgate.dev",
        "metrictemplates.rollgate.dev",
    ] {
        let (ok, out, err) = cp.kubectl(
            &["get", "crd", crd, "-o", "jsonpath={.status.conditions}"],
            None,
        );
        assert!(ok, "{err}");
        assert!(
            !out.contains("NonStructuralSchema"),
            "{crd} has a non-structural schema: {out}"
        );
        assert!(
            out.contains(r#""type":"Established""#) && out.contains(r#""status":"True""#),
            "{crd} is not established: {out}"
        );
    }
    // A second apply changes nothing and still succeeds (idempotent install).
    let (ok, _, err) = cp.kubectl(
        &[
            "apply",
            "--server-side",
            "--field-manager=rollgate-test",
            "-f",
            "-",
        ],
        Some(&rollgate_crds()),
    );
    assert!(ok, "re-apply failed: {err}");
    // Short names and categories are served.
    let (ok, out, err) = cp.kubectl(
        &["api-resources", "--api-group=rollgate.dev", "-o", "wide"],
        None,
    );
    assert!(ok, "{err}");
    for short in ["rgro", "rgat", "rgcat", "rgar", "rgpp"] {
        assert!(out.contains(short), "short name {short} missing:\n{out}");
    }
}

const VALID_ROLLOUT: &str = r#"
apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata: {name: podinfo}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  trafficRouting:
    gatewayAPI:
      httpRoute: {name: podinfo}
  strategy:
    canary:
      steps:
        - setWeight: 10
        - pause: {duration: 5m}
        - analysis:
            templates: [{templateName: success-rate}]
        - setWeight: 50
        - pause: {}
"#;

const VALID_TEMPLATE: &str = r#"
apiVersion: rollgate.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: success-rate}
spec:
  args: [{name: service-name}]
  metrics:
    - name: success-rate
      interval: 1m
      count: "{{args.count}}"
      failureLimit: 1
      successCondition: result[0] >= 0.95
      provider:
        prometheus:
          address: http://prometheus.example:9090
          query: sum(rate(http_requests_total{service="{{args.service-name}}",code!~"5.."}[1m]))
"#;

const VALID_POLICY: &str = r#"
apiVersion: rollgate.dev/v1alpha1
kind: PromotionPolicy
metadata: {name: application-x}
spec:
  repository: {url: "https://git.example.com/deploys.git", branch: main, secretRef: {name: git-creds}}
  environments:
    - {name: dev, file: application-x/values-dev.yaml, field: image.tag}
    - {name: prod, file: application-x/values-prod.yaml, field: image.tag, approval: manual}
  onFailure: revert
"#;

const VALID_RUN: &str = r#"
apiVersion: rollgate.dev/v1alpha1
kind: AnalysisRun
metadata: {name: podinfo-1-step-2}
spec:
  metrics:
    - name: success-rate
      count: 3
      successCondition: result[0] >= 0.95
      provider:
        prometheus: {query: "vector(1)"}
"#;

fn create(cp: &k8s::ControlPlane, ns: &str, yaml: &str) -> (bool, String) {
    let (ok, out, err) = cp.kubectl(&["create", "-n", ns, "-f", "-"], Some(yaml));
    (ok, if ok { out } else { err })
}

#[test]
fn valid_objects_are_accepted_and_read_back_through_the_types() {
    let cp = installed();
    let ns = cp.namespace("crd-valid");
    for doc in [VALID_ROLLOUT, VALID_TEMPLATE, VALID_POLICY, VALID_RUN] {
        let (ok, msg) = create(cp, &ns, doc);
        assert!(ok, "refused a valid object:\n{doc}\n{msg}");
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = cp.client().await;
        let ro: Rollout = Api::namespaced(client.clone(), &ns)
            .get("podinfo")
            .await
            .expect("read the Rollout back");
        assert_eq!(ro.spec.spec.target_ref.name, "podinfo");
        let at: AnalysisTemplate = Api::namespaced(client.clone(), &ns)
            .get("success-rate")
            .await
            .expect("read the template back");
        assert_eq!(at.spec.template.metrics[0].name, "success-rate");
        let pp: PromotionPolicy = Api::namespaced(client.clone(), &ns)
            .get("application-x")
            .await
            .expect("read the policy back");
        assert_eq!(
            pp.spec.spec.repository.url,
            "https://git.example.com/deploys.git"
        );

        // Objects written through the Rust types round-trip too.
        let mut run: AnalysisRun = serde_yaml::from_str(VALID_RUN).expect("parse run");
        run.metadata.name = Some("from-rust".into());
        let api: Api<AnalysisRun> = Api::namespaced(client.clone(), &ns);
        api.create(&PostParams::default(), &run)
            .await
            .expect("create an AnalysisRun from Rust");
    });
}

#[test]
fn status_is_a_subresource_with_enum_phases() {
    let cp = installed();
    let ns = cp.namespace("crd-status");
    assert!(create(cp, &ns, VALID_RUN).0);
    assert!(create(cp, &ns, VALID_ROLLOUT).0);
    // A status in the main resource is dropped: status is a subresource.
    let (ok, _, err) = cp.kubectl(
        &[
            "patch",
            "-n",
            &ns,
            "analysisrun",
            "podinfo-1-step-2",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Running"}}"#,
        ],
        None,
    );
    assert!(ok, "{err}");
    let (_, phase, _) = cp.kubectl(
        &[
            "get",
            "-n",
            &ns,
            "analysisrun",
            "podinfo-1-step-2",
            "-o",
            "jsonpath={.status.phase}",
        ],
        None,
    );
    assert_eq!(phase, "", "status written through the main resource");
    // Through the subresource it is stored, and printer columns show it.
    let (ok, _, err) = cp.kubectl(
        &[
            "patch",
            "-n",
            &ns,
            "rollout.rollgate.dev",
            "podinfo",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Progressing","currentStepIndex":2,"canaryWeight":10}}"#,
        ],
        None,
    );
    assert!(ok, "{err}");
    let (ok, table, err) = cp.kubectl(&["get", "-n", &ns, "rgro", "podinfo"], None);
    assert!(ok, "{err}");
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["NAME", "PHASE", "STEP", "WEIGHT", "AGE"],
        "{table}"
    );
    let row: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(&row[..4], ["podinfo", "Progressing", "2", "10"], "{table}");
    // A phase outside the enum is refused on the status subresource.
    let (ok, _, err) = cp.kubectl(
        &[
            "patch",
            "-n",
            &ns,
            "rollout.rollgate.dev",
            "podinfo",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Exploded"}}"#,
        ],
        None,
    );
    assert!(!ok, "a bad status phase was accepted");
    assert!(
        err.contains("status.phase: Unsupported value: \"Exploded\""),
        "unexpected message: {err}"
    );
}

/// Each case: a valid document with one change, and the server's message it must give.
#[test]
fn invalid_objects_are_refused_with_the_servers_message() {
    let cp = installed();
    let ns = cp.namespace("crd-invalid");
    let cases: [(&str, String, &str); 9] = [
        (
            "bad enum value (onFailure)",
            VALID_POLICY.replace("onFailure: revert", "onFailure: explode"),
            r#"spec.onFailure: Unsupported value: "explode""#,
        ),
        (
            "bad enum value (approval)",
            VALID_POLICY.replace("approval: manual", "approval: sometimes"),
            r#"spec.environments[1].approval: Unsupported value: "sometimes""#,
        ),
        (
            "wrong type (setWeight)",
            VALID_ROLLOUT.replace("setWeight: 10", "setWeight: ten"),
            "spec.strategy.canary.steps[0].setWeight: Invalid value: \"string\"",
        ),
        (
            "out of range (setWeight)",
            VALID_ROLLOUT.replace("setWeight: 50", "setWeight: 150"),
            "spec.strategy.canary.steps[3].setWeight: Invalid value: 150",
        ),
        (
            "missing required field (targetRef)",
            VALID_ROLLOUT.replace(
                "  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}\n",
                "",
            ),
            "spec.targetRef: Required value",
        ),
        (
            "missing required field (metric name)",
            VALID_TEMPLATE
                .replace("    - name: success-rate\n", "    - interval: 5m\n")
                .replace("      interval: 1m\n", ""),
            "spec.metrics[0].name: Required value",
        ),
        (
            "wrong type (metrics)",
            "apiVersion: rollgate.dev/v1alpha1\nkind: AnalysisRun\nmetadata: {name: bad-type}\n\
             spec:\n  metrics: not-a-list\n"
                .to_owned(),
            "spec.metrics: Invalid value: \"string\"",
        ),
        (
            "two kinds in one canary step (oneOf)",
            VALID_ROLLOUT.replace("- setWeight: 10", "- {setWeight: 10, pause: {}}"),
            r#""spec.strategy.canary.steps[0]" must validate one and only one schema (oneOf). Found 2 valid alternatives"#,
        ),
        (
            "unknown field",
            VALID_RUN.replace("  metrics:\n", "  metricz: []\n  metrics:\n"),
            r#"unknown field "spec.metricz""#,
        ),
    ];
    for (what, doc, message) in cases {
        let (ok, msg) = create(cp, &ns, &doc);
        assert!(!ok, "{what}: the server accepted\n{doc}");
        assert!(
            msg.contains(message),
            "{what}: expected the server to say {message:?}, it said:\n{msg}"
        );
    }
}

/// The controller writes status with server-side apply from the core types: a fully
/// populated status must be accepted by the schema and read back unchanged.
#[tokio::test]
async fn status_written_from_the_core_types_round_trips_through_server_side_apply() {
    use kube::api::{Patch, PatchParams};
    use rollgate::core::strategy::{
        AnalysisKind, AnalysisRunRef, Condition, ConditionStatus, HistoryEntry, PauseReason, Phase,
        RolloutStatus, RunPhase, Timestamp,
    };
    use rollgate::k8s::rollout::RolloutStatusBody;

    let cp = installed();
    let ns = cp.namespace("crd-ssa");
    assert!(create(cp, &ns, VALID_ROLLOUT).0);
    let t = Timestamp::from_unix(1_795_000_000);
    let status = RolloutStatus {
        phase: Phase::Paused,
        pause_reason: Some(PauseReason::CanaryPauseStep),
        current_step_index: Some(1),
        step_started_at: Some(t),
        canary_weight: 10,
        last_applied_revision: Some("7d9f8b6c5".into()),
        last_promoted_revision: Some("5c4b3a291".into()),
        primary_revision: Some("5c4b3a291".into()),
        aborted: false,
        analysis_runs: vec![AnalysisRunRef {
            name: "podinfo-7d9f8b6c5-step-2".into(),
            kind: AnalysisKind::Step,
            step_index: Some(2),
            phase: RunPhase::Running,
            resumed: false,
        }],
        failed_checks: 1,
        not_ready_since: None,
        retries: 1,
        pre_rollout_passed: true,
        hooks_checked_at: Some(t),
        scale_down_at: None,
        message: Some("paused at step 1 for 5m".into()),
        conditions: vec![Condition {
            type_: "Progressing".into(),
            status: ConditionStatus::True,
            reason: "NewRevision".into(),
            message: "rolling out 7d9f8b6c5".into(),
            last_transition_time: t,
        }],
        history: vec![HistoryEntry {
            revision: "5c4b3a291".into(),
            phase: Phase::Succeeded,
            finished_at: t,
            message: None,
        }],
    };
    let client = cp.client().await;
    let api: Api<Rollout> = Api::namespaced(client, &ns);
    let patch = serde_json::json!({
        "apiVersion": "rollgate.dev/v1alpha1",
        "kind": "Rollout",
        "status": RolloutStatusBody { status: status.clone() },
    });
    api.patch_status(
        "podinfo",
        &PatchParams::apply("rollgate-controller").force(),
        &Patch::Apply(&patch),
    )
    .await
    .expect("server-side apply of a full status");
    let back = api.get_status("podinfo").await.expect("read status");
    assert_eq!(back.status.map(|s| s.status), Some(status));
}

/// The same for an AnalysisRun's status (metric results and measurements).
#[tokio::test]
async fn analysis_run_status_round_trips_through_server_side_apply() {
    use kube::api::{Patch, PatchParams};
    use rollgate::core::analysis::status::{Measurement, MetricResult, RunSummary, Time};
    use rollgate::core::analysis::value::AnalysisPhase;
    use rollgate::k8s::analysis::AnalysisRunStatus;

    let cp = installed();
    let ns = cp.namespace("crd-run-ssa");
    assert!(create(cp, &ns, VALID_RUN).0);
    let t: Time = serde_json::from_value(serde_json::json!("2026-11-25T17:00:00Z")).expect("time");
    let mut result = MetricResult::new("success-rate", false);
    result.phase = AnalysisPhase::Failed;
    result.count = 2;
    result.successful = 1;
    result.failed = 1;
    // Metadata must survive the API server: the resolved query is evidence.
    result
        .metadata
        .insert("ResolvedPrometheusQuery".into(), "sum(rate(x[1m]))".into());
    result.measurements.push(Measurement {
        phase: AnalysisPhase::Failed,
        message: String::new(),
        started_at: Some(t),
        finished_at: Some(t),
        value: "[0.91]".into(),
        metadata: [("warnings".to_owned(), "\"w1\"".to_owned())].into(),
        resume_at: None,
    });
    let status = AnalysisRunStatus {
        phase: AnalysisPhase::Failed,
        message: "metric \"success-rate\" assessed Failed".into(),
        started_at: Some(t),
        completed_at: Some(t),
        metric_results: vec![result],
        run_summary: RunSummary {
            count: 1,
            failed: 1,
            ..RunSummary::default()
        },
        dry_run_summary: None,
    };
    let api: Api<AnalysisRun> = Api::namespaced(cp.client().await, &ns);
    let patch = serde_json::json!({
        "apiVersion": "rollgate.dev/v1alpha1",
        "kind": "AnalysisRun",
        "status": status,
    });
    api.patch_status(
        "podinfo-1-step-2",
        &PatchParams::apply("rollgate-controller").force(),
        &Patch::Apply(&patch),
    )
    .await
    .expect("server-side apply of a run status");
    let back = api
        .get_status("podinfo-1-step-2")
        .await
        .expect("read status");
    assert_eq!(back.status, Some(status));
    let (_, table, _) = cp.kubectl(&["get", "-n", &ns, "rgar"], None);
    assert!(table.contains("Failed"), "{table}");
}
