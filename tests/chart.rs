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
    // Secrets in application namespaces: `get` only, and only while the value allows it.
    let secret_rules = |yaml: &str| -> Vec<serde_yaml::Value> {
        let d = docs(yaml);
        find(&d, "ClusterRole", "rg-rollgate")["rules"]
            .as_sequence()
            .expect("rules")
            .iter()
            .filter(|r| {
                r["resources"]
                    .as_sequence()
                    .is_some_and(|s| s.iter().any(|x| x == "secrets"))
            })
            .cloned()
            .collect()
    };
    let rules = secret_rules(&out);
    assert_eq!(rules.len(), 1, "{rules:?}");
    assert_eq!(
        rules[0]["verbs"],
        serde_yaml::to_value(["get"]).expect("verbs")
    );
    let without = render("ops", &["--set", "rbac.readSecretsInAppNamespaces=false"]);
    assert!(secret_rules(&without).is_empty());
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

const TESTER: [&str; 6] = [
    "--set",
    "tester.enabled=true",
    "--set",
    "tester.allow[0]=curl -sf *",
    "--set",
    "tester.allow[1]=/bin/echo smoke ok",
];

const NOTIFY: [&str; 8] = [
    "--set",
    "notifications.secretName=rollgate-notify",
    "--set",
    "notifications.slack.enabled=true",
    "--set",
    "notifications.webhook.enabled=true",
    "--set",
    "notifications.maxPerMinute=30",
];

fn find<'a>(d: &'a [serde_yaml::Value], kind: &str, name: &str) -> &'a serde_yaml::Value {
    d.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name} not rendered"))
}

#[test]
fn the_tester_is_optional_and_runs_only_the_allow_list_of_the_values() {
    let without = docs(&render("ops", &[]));
    assert!(
        !without
            .iter()
            .any(|d| d["metadata"]["name"].as_str() == Some("rg-rollgate-tester")),
        "the tester is off by default"
    );
    let d = docs(&render("ops", &TESTER));
    let deploy = find(&d, "Deployment", "rg-rollgate-tester");
    let svc = find(&d, "Service", "rg-rollgate-tester");
    let pod = &deploy["spec"]["template"];
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["args"][0], "tester");
    let env = c["env"].as_sequence().expect("env");
    let allow = env
        .iter()
        .find(|e| e["name"] == "ROLLGATE_TESTER_ALLOW")
        .expect("allow-list env");
    assert_eq!(allow["value"], "curl -sf *\n/bin/echo smoke ok");
    // The tester's pods are selected by its Service and never by the controller's.
    let labels = &pod["metadata"]["labels"];
    for (k, v) in svc["spec"]["selector"].as_mapping().expect("selector") {
        assert_eq!(&labels[k], v, "Service selector {k:?} must match the pods");
    }
    let controller = find(&d, "Deployment", "rg-rollgate");
    let ctl_sel = controller["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .expect("controller selector");
    assert!(
        ctl_sel.iter().any(|(k, v)| &labels[k] != v),
        "the controller's selector matches the tester's pods"
    );
    let ctl_svc = find(&d, "Service", "rg-rollgate");
    assert!(
        ctl_svc["spec"]["selector"]
            .as_mapping()
            .expect("selector")
            .iter()
            .any(|(k, v)| &labels[k] != v),
        "the controller's Service selects the tester's pods"
    );
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http");
    // Lint stays clean with the tester and sinks on.
    let chart = chart();
    let mut args = vec!["lint", "--strict", &chart];
    args.extend_from_slice(&VALUES);
    args.extend_from_slice(&TESTER);
    args.extend_from_slice(&NOTIFY);
    let (ok, out, err) = helm(&args);
    assert!(ok && !out.contains("[WARNING]"), "helm lint:\n{out}\n{err}");
}

#[test]
fn notification_sinks_come_from_a_mounted_secret_never_from_the_pod_spec() {
    let d = docs(&render("ops", &NOTIFY));
    let controller = find(&d, "Deployment", "rg-rollgate");
    let pod = &controller["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let env: std::collections::BTreeMap<String, String> = c["env"]
        .as_sequence()
        .expect("env")
        .iter()
        .filter_map(|e| {
            Some((
                e["name"].as_str()?.to_owned(),
                e["value"].as_str()?.to_owned(),
            ))
        })
        .collect();
    assert_eq!(
        env.get("ROLLGATE_NOTIFY_SLACK_URL_FILE")
            .map(String::as_str),
        Some("/etc/rollgate/notifications/slack-url")
    );
    assert_eq!(
        env.get("ROLLGATE_NOTIFY_WEBHOOK_SECRET_FILE")
            .map(String::as_str),
        Some("/etc/rollgate/notifications/webhook-secret")
    );
    assert!(
        !env.contains_key("ROLLGATE_NOTIFY_TEAMS_URL_FILE"),
        "teams is off"
    );
    assert_eq!(
        env.get("ROLLGATE_NOTIFY_MAX_PER_MINUTE")
            .map(String::as_str),
        Some("30")
    );
    assert_eq!(pod["volumes"][0]["secret"]["secretName"], "rollgate-notify");
    assert_eq!(
        c["volumeMounts"][0]["mountPath"],
        "/etc/rollgate/notifications"
    );
    assert_eq!(c["volumeMounts"][0]["readOnly"], true);
    // A sink without the Secret is refused with the value's name.
    let chart = chart();
    let mut args = vec!["template", "rg", &chart];
    args.extend_from_slice(&VALUES);
    args.extend_from_slice(&["--set", "notifications.teams.enabled=true"]);
    let (ok, _, err) = helm(&args);
    assert!(
        !ok && err.contains("notifications.secretName is required"),
        "{err}"
    );
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
    let mut extra = TESTER.to_vec();
    extra.extend_from_slice(&NOTIFY);
    let rendered = render(&ns, &extra);
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
        9,
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
        ("create", "batch", "jobs", app, ""),
        ("get", "batch", "jobs", app, "uid.smoke.1"),
        ("list", "batch", "jobs", app, ""),
        ("watch", "batch", "jobs", "", ""),
        ("delete", "batch", "jobs", app, "uid.smoke.1"),
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
        // A PromotionPolicy's repository.secretRef and secretKeyRef args, by name.
        ("get", "", "secrets", app, "git-credentials"),
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
        ("list", "", "secrets", &ns, ""),
        ("list", "", "secrets", app, ""),
        ("watch", "", "secrets", app, ""),
        ("update", "", "secrets", app, "git-credentials"),
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
        ("update", "batch", "jobs", app, "uid.smoke.1"),
        ("patch", "batch", "jobs/status", app, "uid.smoke.1"),
        ("create", "batch", "cronjobs", app, ""),
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
