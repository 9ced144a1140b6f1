//! The Helm chart `charts/rollgate`: lint and template are clean, the rendered manifests
//! pass a server-side dry run on a real kube-apiserver (with rollgate's and the Gateway
//! API CRDs installed), and the chart's RBAC grants the controller exactly its verbs
//! (SubjectAccessReview as the chart's ServiceAccount).

#[path = "support/k8s.rs"]
mod k8s;

use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize as _;

fn chart() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("charts/rollgate")
        .display()
        .to_string()
}

/// `helm` without a cluster (lint, template); its caches in a temp dir.
fn helm(args: &[&str]) -> (bool, String, String) {
    let home = tempfile::tempdir().expect("temp dir");
    k8s::run_with_stdin(
        Command::new(k8s::bin("helm"))
            .args(args)
            .env("HELM_CACHE_HOME", home.path().join("cache"))
            .env("HELM_CONFIG_HOME", home.path().join("config"))
            .env("HELM_DATA_HOME", home.path().join("data")),
        None,
    )
}

const VALUES: [&str; 8] = [
    "--set",
    "environment=staging",
    "--set",
    "prometheus.address=http://prom.example.com:9090",
    "--set",
    "extraSecrets={prom-creds}",
    "--set",
    "replicaCount=2",
];

fn render(namespace: &str, extra: &[&str]) -> String {
    let chart = chart();
    let mut args = vec!["template", "rg", &chart, "--namespace", namespace];
    args.extend_from_slice(&VALUES);
    args.extend_from_slice(extra);
    let (ok, out, err) = helm(&args);
    assert!(ok, "helm template failed: {err}");
    assert!(err.trim().is_empty(), "helm template warned: {err}");
    out
}

fn docs(yaml: &str) -> Vec<serde_yaml::Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| serde_yaml::Value::deserialize(d).expect("rendered YAML parses"))
        .filter(|v| !v.is_null())
        .collect()
}

fn kinds(yaml: &str) -> Vec<String> {
    docs(yaml)
        .iter()
        .map(|d| d["kind"].as_str().unwrap_or("?").to_owned())
        .collect()
}

#[test]
fn helm_lint_is_clean() {
    let chart = chart();
    for extra in [&[][..], &["--set", "serviceMonitor.enabled=true"][..]] {
        let mut args = vec!["lint", "--strict", &chart];
        args.extend_from_slice(&VALUES);
        args.extend_from_slice(extra);
        let (ok, out, err) = helm(&args);
        assert!(ok, "helm lint failed:\n{out}\n{err}");
        assert!(
            out.contains("1 chart(s) linted, 0 chart(s) failed"),
            "{out}"
        );
        assert!(
            !out.contains("[WARNING]") && !out.contains("[ERROR]"),
            "helm lint is not clean:\n{out}"
        );
    }
}

#[test]
fn template_renders_every_part_and_refuses_missing_environment() {
    let out = render("ops", &[]);
    let mut k = kinds(&out);
    k.sort();
    assert_eq!(
        k,
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount"
        ]
    );
    let with_sm = render("ops", &["--set", "serviceMonitor.enabled=true"]);
    assert!(kinds(&with_sm).contains(&"ServiceMonitor".to_owned()));
    // The CRDs ship with the chart (Helm installs crds/ first).
    let with_crds = render("ops", &["--include-crds"]);
    assert_eq!(
        kinds(&with_crds)
            .iter()
            .filter(|k| *k == "CustomResourceDefinition")
            .count(),
        6
    );
    // Values reach the controller.
    let d = docs(&out);
    let deploy = d
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("Deployment");
    assert_eq!(deploy["spec"]["replicas"].as_u64(), Some(2));
    let env = serde_yaml::to_string(&deploy["spec"]["template"]["spec"]["containers"][0]["env"])
        .expect("env");
    for want in [
        "ROLLGATE_ENVIRONMENT",
        "staging",
        "http://prom.example.com:9090",
        "ROLLGATE_LEASE_NAME",
    ] {
        assert!(
            env.contains(want),
            "{want} missing from the controller env:\n{env}"
        );
    }
    // No environment: refused with a message naming the value.
    let (ok, _, err) = helm(&["template", "rg", &chart()]);
    assert!(!ok, "rendered without an environment");
    assert!(err.contains("`environment` is required"), "{err}");
    // Two replicas without leader election: refused.
    let chart = chart();
    let mut args = vec!["template", "rg", &chart];
    args.extend_from_slice(&VALUES);
    args.extend_from_slice(&["--set", "leaderElection.enabled=false"]);
    let (ok, _, err) = helm(&args);
    assert!(!ok && err.contains("leaderElection.enabled=true"), "{err}");
}

/// Installs the chart's CRDs and the Gateway API CRDs once, then dry-runs the chart.
#[test]
fn rendered_manifests_pass_a_server_side_dry_run() {
    let cp = k8s::shared();
    let ns = cp.namespace("chart-dry");
    let gw = std::fs::read_to_string(k8s::gateway_api_crds()).expect("read Gateway API CRDs");
    let (ok, _, err) = cp.kubectl(&["apply", "--server-side", "-f", "-"], Some(&gw));
    assert!(ok, "Gateway API CRDs: {err}");
    let crds = PathBuf::from(chart()).join("crds");
    let (ok, _, err) = cp.kubectl(
        &["apply", "--server-side", "-f", &crds.display().to_string()],
        None,
    );
    assert!(ok, "chart CRDs: {err}");
    let rendered = render(&ns, &[]);
    let (ok, out, err) = cp.kubectl(
        &[
            "apply",
            "--dry-run=server",
            "--server-side",
            "-n",
            &ns,
            "-f",
            "-",
        ],
        Some(&rendered),
    );
    assert!(ok, "server-side dry run refused the chart:\n{err}");
    assert_eq!(
        out.matches("(server dry run)").count(),
        7,
        "every rendered object is dry-run applied:\n{out}"
    );
    // The dry run really validates: a broken manifest is refused.
    let broken = rendered.replace("replicas: 2", "replicas: two");
    let (ok, _, err) = cp.kubectl(
        &[
            "apply",
            "--dry-run=server",
            "--server-side",
            "-n",
            &ns,
            "-f",
            "-",
        ],
        Some(&broken),
    );
    assert!(!ok, "a broken Deployment passed the dry run");
    assert!(err.contains("replicas"), "{err}");
}

/// Asks the API server whether the chart's ServiceAccount may do something
/// (`resource` may carry a subresource: `rollouts/status`).
async fn allowed(
    client: &kube::Client,
    sa_ns: &str,
    (verb, group, resource, ns, name): (&str, &str, &str, &str, &str),
) -> bool {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
    };
    let (res, sub) = resource.split_once('/').unwrap_or((resource, ""));
    let sar = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(format!("system:serviceaccount:{sa_ns}:rg-rollgate")),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{sa_ns}"),
                "system:authenticated".into(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(res.into()),
                subresource: Some(sub.into()),
                namespace: Some(ns.into()),
                name: Some(name.into()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let answer = kube::Api::<SubjectAccessReview>::all(client.clone())
        .create(&kube::api::PostParams::default(), &sar)
        .await
        .expect("SubjectAccessReview");
    answer.status.is_some_and(|s| s.allowed)
}

#[tokio::test]
async fn rbac_allows_the_controllers_verbs_and_nothing_else() {
    let cp = k8s::shared();
    let ns = cp.namespace("chart-rbac");
    let rendered = render(&ns, &[]);
    let (ok, _, err) = cp.kubectl(
        &["apply", "--server-side", "-n", &ns, "-f", "-"],
        Some(&rendered),
    );
    assert!(ok, "install the chart's objects: {err}");
    let app = "apps-ns";
    let client = cp.client().await;
    let allowed_cases = [
        ("watch", "rollgate.dev", "rollouts", app, ""),
        ("patch", "rollgate.dev", "rollouts", app, "podinfo"),
        ("patch", "rollgate.dev", "rollouts/status", app, "podinfo"),
        (
            "update",
            "rollgate.dev",
            "rollouts/finalizers",
            app,
            "podinfo",
        ),
        ("list", "rollgate.dev", "clusteranalysistemplates", "", ""),
        ("get", "rollgate.dev", "analysistemplates", app, "t"),
        ("get", "rollgate.dev", "metrictemplates", app, "m"),
        ("get", "flagger.app", "metrictemplates", app, "m"),
        ("create", "rollgate.dev", "analysisruns", app, ""),
        ("delete", "rollgate.dev", "analysisruns", app, "r"),
        ("patch", "rollgate.dev", "analysisruns/status", app, "r"),
        ("watch", "rollgate.dev", "promotionpolicies", app, ""),
        (
            "patch",
            "rollgate.dev",
            "promotionpolicies/status",
            app,
            "p",
        ),
        ("create", "apps", "deployments", app, ""),
        ("patch", "apps", "deployments", app, "podinfo-primary"),
        ("create", "", "services", app, ""),
        ("update", "", "services", app, "podinfo-canary"),
        (
            "patch",
            "gateway.networking.k8s.io",
            "httproutes",
            app,
            "podinfo",
        ),
        ("create", "events.k8s.io", "events", app, ""),
        ("create", "", "events", app, ""),
        ("create", "coordination.k8s.io", "leases", &ns, ""),
        (
            "update",
            "coordination.k8s.io",
            "leases",
            &ns,
            "rollgate-controller",
        ),
        ("get", "", "secrets", &ns, "rollgate-git-credentials"),
        ("get", "", "secrets", &ns, "prom-creds"),
        ("create", "authentication.k8s.io", "tokenreviews", "", ""),
        (
            "create",
            "authorization.k8s.io",
            "subjectaccessreviews",
            "",
            "",
        ),
    ];
    for (verb, group, resource, at, name) in allowed_cases {
        assert!(
            allowed(&client, &ns, (verb, group, resource, at, name)).await,
            "the controller may not {verb} {group}/{resource} {at}/{name}, but needs to"
        );
    }
    let refused_cases = [
        ("update", "rollgate.dev", "rollouts", app, "podinfo"),
        ("delete", "rollgate.dev", "rollouts", app, "podinfo"),
        ("create", "rollgate.dev", "analysistemplates", app, ""),
        ("update", "rollgate.dev", "metrictemplates", app, "m"),
        ("update", "rollgate.dev", "promotionpolicies", app, "p"),
        ("delete", "apps", "deployments", app, "podinfo"),
        ("delete", "", "services", app, "podinfo"),
        ("create", "gateway.networking.k8s.io", "httproutes", app, ""),
        (
            "delete",
            "gateway.networking.k8s.io",
            "httproutes",
            app,
            "podinfo",
        ),
        ("get", "", "secrets", &ns, "someone-elses-secret"),
        ("list", "", "secrets", &ns, ""),
        ("get", "", "secrets", app, "rollgate-git-credentials"),
        (
            "update",
            "coordination.k8s.io",
            "leases",
            &ns,
            "another-lease",
        ),
        (
            "update",
            "coordination.k8s.io",
            "leases",
            app,
            "rollgate-controller",
        ),
        ("create", "", "pods", app, ""),
        ("get", "", "configmaps", app, "c"),
        (
            "create",
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            "",
            "",
        ),
    ];
    for (verb, group, resource, at, name) in refused_cases {
        assert!(
            !allowed(&client, &ns, (verb, group, resource, at, name)).await,
            "the controller may {verb} {group}/{resource} {at}/{name}, which it never needs"
        );
    }
}
