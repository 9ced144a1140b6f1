//! Acceptance tests of the controller against a real kube-apiserver, a real Prometheus and
//! a real Git remote. The tests play kubelet (Deployments are marked ready) and Argo CD
//! (the target's image is set after the environment's file changed).

#[path = "support/controller.rs"]
mod controller;
#[path = "support/git.rs"]
mod git;
#[path = "support/k8s.rs"]
mod k8s;
#[path = "support/prometheus.rs"]
mod prometheus;

use std::time::Duration;

use controller::*;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ListParams};
use rollgate::controller::conditions;
use rollgate::core::strategy::{ConditionStatus, Phase};
use rollgate::k8s::AnalysisRun;

const OK_QUERY: &str =
    r#"sum(rate(http_requests_total{service="{{args.service}}",code="200"}[1m]))"#;

fn prometheus() -> prometheus::Prometheus {
    prometheus::Prometheus::start(&prometheus::Backfill::new().counter(
        "http_requests_total",
        r#"service="podinfo-canary",code="200""#,
        10.0,
    ))
}

fn rev(repo: &git::Fixture, r: &str) -> String {
    git::git(&repo.remote(), &["rev-parse", r])
        .trim()
        .to_owned()
}

fn repo() -> git::Fixture {
    git::Fixture::new(&[
        ("app/values-dev.yaml", &git::values("1.0.0")),
        ("app/values-staging.yaml", &git::values("1.0.0")),
        ("app/values-prod.yaml", &git::values("1.0.0")),
    ])
}

fn canary_rollout(name: &str, pause: &str) -> String {
    canary_rollout_with(name, pause, "success-rate", name)
}

fn canary_rollout_with(name: &str, pause: &str, template: &str, route: &str) -> String {
    format!(
        r#"apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata: {{name: {name}}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: {name}}}
  service: {{port: 80}}
  trafficRouting: {{gatewayAPI: {{httpRoute: {{name: {route}}}}}}}
  strategy:
    canary:
      steps:
        - setWeight: 20
        - pause: {{duration: {pause}}}
        - analysis:
            templates: [{{templateName: {template}}}]
            args: [{{name: service, value: {name}-canary}}]
        - setWeight: 50
        - pause: {{duration: 1s}}
"#
    )
}

struct Scene {
    client: kube::Client,
    ns: String,
    prom: prometheus::Prometheus,
    repo: git::Fixture,
    cache: tempfile::TempDir,
    _kubelet: tokio::task::JoinHandle<()>,
}

impl Scene {
    /// A namespace with the app's Deployment (1.0.0), HTTPRoute, template and policy.
    async fn new(condition: &str) -> Scene {
        let cp = k8s::shared();
        install_crds(cp);
        let client = cp.client().await;
        let ns = cp.namespace("ctl");
        let repo = repo();
        apply(
            cp,
            &ns,
            &deployment_yaml("podinfo", "ghcr.io/acme/app:1.0.0"),
        );
        apply(cp, &ns, &route_yaml("podinfo"));
        apply(cp, &ns, &template_yaml("success-rate", OK_QUERY, condition));
        apply(cp, &ns, &policy_yaml("podinfo", &repo.url(), true));
        let (_, kubelet) = kubelet(client.clone(), &ns);
        Scene {
            client,
            ns,
            prom: prometheus(),
            repo,
            cache: tempfile::tempdir().expect("temp dir"),
            _kubelet: kubelet,
        }
    }

    fn start(&self) -> Running {
        self.start_as("dev", &self.prom.url)
    }

    fn start_as(&self, env: &str, prometheus: &str) -> Running {
        Running::start(
            self.client.clone(),
            &self.ns,
            env,
            prometheus,
            self.cache.path(),
        )
    }

    /// CI commits `version` to dev; Argo CD syncs it into the Deployment.
    async fn release(&self, version: &str) {
        self.release_in("dev", version).await;
    }

    /// `version` is committed to `env`'s file; Argo CD syncs it into the Deployment.
    async fn release_in(&self, env: &str, version: &str) {
        self.repo.person_commits(
            &format!("app/values-{env}.yaml"),
            &git::values(version),
            &format!("ci: {env} {version}"),
        );
        set_image(
            &self.client,
            &self.ns,
            "podinfo",
            &format!("ghcr.io/acme/app:{version}"),
        )
        .await;
    }

    async fn runs(&self) -> Vec<AnalysisRun> {
        Api::<AnalysisRun>::namespaced(self.client.clone(), &self.ns)
            .list(&ListParams::default())
            .await
            .expect("list runs")
            .items
    }

    async fn replicas(&self, name: &str) -> Option<i32> {
        Api::<Deployment>::namespaced(self.client.clone(), &self.ns)
            .get(name)
            .await
            .expect("get deployment")
            .spec?
            .replicas
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_happy_path_steps_weights_promotes_and_commits_to_the_next_environment() {
    let s = Scene::new("result[0] > 5").await;
    apply(k8s::shared(), &s.ns, &canary_rollout("podinfo", "1s"));
    let (weights, _w) = record_weights(
        s.client.clone(),
        &s.ns,
        "podinfo",
        "podinfo-primary",
        "podinfo-canary",
    );
    let _c = s.start();
    wait_for(&s.client, &s.ns, "podinfo", 60, "Initialized", initialized).await;
    assert_eq!(
        image(&s.client, &s.ns, "podinfo-primary").await.as_deref(),
        Some("ghcr.io/acme/app:1.0.0")
    );
    assert_eq!(
        s.replicas("podinfo").await,
        Some(0),
        "the idle canary is scaled to zero"
    );
    let route_before = route(&s.client, &s.ns, "podinfo").await;

    s.release("1.1.0").await;
    let commits_before = s.repo.commit_count();
    let st = wait_for(
        &s.client,
        &s.ns,
        "podinfo",
        90,
        "Succeeded with Git settled",
        |st| {
            st.phase == Phase::Succeeded
                && condition(st, conditions::GIT_PROMOTION)
                    .is_some_and(|c| c.status == ConditionStatus::True)
        },
    )
    .await;

    // The exact weight sequence on the route, as watched.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = weights.lock().expect("lock").clone();
    assert_eq!(
        seen,
        vec![(100, 0), (80, 20), (50, 50), (100, 0)],
        "weights seen"
    );
    // Every other backend and rule as it was.
    let route = route(&s.client, &s.ns, "podinfo").await;
    assert_eq!(route["spec"]["rules"][0]["backendRefs"][2]["weight"], 5);
    assert_eq!(route["spec"]["rules"][1], route_before["spec"]["rules"][1]);
    assert_eq!(
        route["spec"]["rules"][0]["matches"],
        route_before["spec"]["rules"][0]["matches"]
    );

    // The analysis ran and passed; the new template is on the primary; canary at zero.
    let runs = s.runs().await;
    assert_eq!(runs.len(), 1, "one step analysis run");
    assert_eq!(
        runs[0].status.as_ref().map(|x| x.phase).map(|p| p.as_str()),
        Some("Successful")
    );
    assert_eq!(
        image(&s.client, &s.ns, "podinfo-primary").await.as_deref(),
        Some("ghcr.io/acme/app:1.1.0")
    );
    assert_eq!(s.replicas("podinfo").await, Some(0));
    assert_eq!(s.replicas("podinfo-primary").await, Some(2));

    // Git: staging got 1.1.0 in one commit with trailers, recorded in status and Event.
    assert!(
        s.repo
            .remote_file("app/values-staging.yaml")
            .contains("tag: \"1.1.0\"")
    );
    assert_eq!(s.repo.commit_count(), commits_before + 1);
    let msg = s.repo.message("main");
    assert!(
        msg.contains("Rollgate-Promotion: podinfo/staging/1.1.0"),
        "{msg}"
    );
    assert!(msg.contains("Rollgate-From: dev"), "{msg}");
    let sha = rev(&s.repo, "main");
    let cond = condition(&st, conditions::GIT_PROMOTION).expect("condition");
    assert_eq!(cond.reason, "GitPromoted");
    assert!(cond.message.contains(&sha[..12]), "{cond:?} vs {sha}");
    let events = events(&s.client, &s.ns).await;
    assert!(
        events
            .iter()
            .any(|(_, r, n)| r == "GitPromoted" && n.contains(&sha[..12])),
        "{events:#?}"
    );
    for reason in [
        "NewRevisionDetected",
        "TrafficWeightChanged",
        "AnalysisRunCreated",
        "RolloutCompleted",
    ] {
        assert!(
            events.iter().any(|(_, r, _)| r == reason),
            "no {reason} event: {events:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_analysis_aborts_at_once_and_reverts_the_environment_commit() {
    let s = Scene::new("result[0] > 1000").await;
    apply(k8s::shared(), &s.ns, &canary_rollout("podinfo", "1s"));
    let (weights, _w) = record_weights(
        s.client.clone(),
        &s.ns,
        "podinfo",
        "podinfo-primary",
        "podinfo-canary",
    );
    let _c = s.start();
    wait_for(&s.client, &s.ns, "podinfo", 60, "Initialized", initialized).await;
    s.release("1.1.0").await;
    let introduced = rev(&s.repo, "main");
    let st = wait_for(
        &s.client,
        &s.ns,
        "podinfo",
        90,
        "Failed with Git settled",
        |st| {
            st.phase == Phase::Failed
                && condition(st, conditions::GIT_PROMOTION)
                    .is_some_and(|c| c.status == ConditionStatus::True)
        },
    )
    .await;
    assert!(st.aborted);
    assert_eq!(st.canary_weight, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = weights.lock().expect("lock").clone();
    assert_eq!(seen, vec![(100, 0), (80, 20), (100, 0)], "weights seen");
    assert_eq!(s.replicas("podinfo").await, Some(0), "canary scaled down");
    assert_eq!(
        image(&s.client, &s.ns, "podinfo-primary").await.as_deref(),
        Some("ghcr.io/acme/app:1.0.0"),
        "the primary keeps the old version"
    );
    // The revert commit on the remote: dev is back at 1.0.0, staging untouched.
    assert!(
        s.repo
            .remote_file("app/values-dev.yaml")
            .contains("tag: \"1.0.0\"")
    );
    assert!(
        s.repo
            .remote_file("app/values-staging.yaml")
            .contains("tag: \"1.0.0\"")
    );
    let msg = s.repo.message("main");
    assert!(
        msg.contains(&introduced),
        "the revert names the reverted commit: {msg}"
    );
    let cond = condition(&st, conditions::GIT_PROMOTION).expect("condition");
    assert_eq!(cond.reason, "GitReverted", "{cond:?}");
    let events = events(&s.client, &s.ns).await;
    assert!(
        events
            .iter()
            .any(|(t, r, n)| t == "Warning" && r == "RolloutAborted" && n.contains("Failed")),
        "{events:#?}"
    );
    assert!(
        events.iter().any(|(_, r, _)| r == "GitReverted"),
        "{events:#?}"
    );
}

fn git_settled(phase: Phase) -> impl Fn(&rollgate::core::strategy::RolloutStatus) -> bool {
    move |st| {
        st.phase == phase
            && condition(st, conditions::GIT_PROMOTION)
                .is_some_and(|c| c.status == ConditionStatus::True)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_mid_rollout_resumes_from_status_and_never_doubles_a_commit() {
    let s = Scene::new("result[0] > 5").await;
    apply(k8s::shared(), &s.ns, &canary_rollout("podinfo", "3s"));
    let (weights, _w) = record_weights(
        s.client.clone(),
        &s.ns,
        "podinfo",
        "podinfo-primary",
        "podinfo-canary",
    );
    let first = s.start();
    wait_for(&s.client, &s.ns, "podinfo", 60, "Initialized", initialized).await;
    s.release("1.1.0").await;
    let commits_before = s.repo.commit_count();
    wait_for(&s.client, &s.ns, "podinfo", 60, "canary at 20%", |st| {
        st.canary_weight == 20 && st.phase == Phase::Progressing
    })
    .await;
    first.kill().await;
    // Nothing moves while no controller runs.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(status(&s.client, &s.ns, "podinfo").await.canary_weight, 20);
    let second = s.start();
    let st = wait_for(
        &s.client,
        &s.ns,
        "podinfo",
        90,
        "Succeeded",
        git_settled(Phase::Succeeded),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        weights.lock().expect("lock").clone(),
        vec![(100, 0), (80, 20), (50, 50), (100, 0)],
        "the restarted controller went on from step 1, not from the start"
    );
    assert_eq!(s.runs().await.len(), 1, "the analysis ran once");
    assert_eq!(
        s.repo.commit_count(),
        commits_before + 1,
        "one promotion commit"
    );
    let promoted = rev(&s.repo, "main");

    // A crash after the commit but before the status write: the status does not record
    // the Git outcome. The next controller finds the trailer and commits nothing.
    second.kill().await;
    let mut forgotten = st.clone();
    forgotten
        .conditions
        .retain(|c| c.type_ != conditions::GIT_PROMOTION);
    let api: Api<rollgate::k8s::Rollout> = Api::namespaced(s.client.clone(), &s.ns);
    api.patch_status(
        "podinfo",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(
            serde_json::json!({"status": {"conditions": forgotten.conditions}}),
        ),
    )
    .await
    .expect("forget the Git condition");
    assert!(
        condition(
            &status(&s.client, &s.ns, "podinfo").await,
            conditions::GIT_PROMOTION
        )
        .is_none()
    );
    let _third = s.start();
    let st = wait_for(
        &s.client,
        &s.ns,
        "podinfo",
        60,
        "Git settled again",
        git_settled(Phase::Succeeded),
    )
    .await;
    let cond = condition(&st, conditions::GIT_PROMOTION).expect("condition");
    assert!(
        cond.message.contains("1.1.0 promoted to staging")
            && (cond.message.contains("AlreadyLanded")
                || cond.message.contains("AlreadyAtVersion")),
        "{cond:?}"
    );
    assert_eq!(
        s.repo.commit_count(),
        commits_before + 1,
        "still one promotion commit"
    );
    assert_eq!(rev(&s.repo, "main"), promoted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotion_into_prod_waits_for_manual_approval() {
    let s = Scene::new("result[0] > 5").await;
    apply(k8s::shared(), &s.ns, &canary_rollout("podinfo", "1s"));
    let _c = s.start_as("staging", &s.prom.url);
    wait_for(&s.client, &s.ns, "podinfo", 60, "Initialized", initialized).await;
    s.release_in("staging", "1.1.0").await;
    let main_before = rev(&s.repo, "main");
    let st = wait_for(
        &s.client,
        &s.ns,
        "podinfo",
        90,
        "Succeeded",
        git_settled(Phase::Succeeded),
    )
    .await;
    let cond = condition(&st, conditions::GIT_PROMOTION).expect("condition");
    assert_eq!(cond.reason, "GitAwaitingApproval", "{cond:?}");
    let branch = "rollgate/promote/podinfo/prod/1.1.0";
    assert!(
        s.repo.branches().iter().any(|b| b == branch),
        "{:?}",
        s.repo.branches()
    );
    assert!(cond.message.contains(branch), "{cond:?}");
    assert_eq!(
        rev(&s.repo, "main"),
        main_before,
        "main is untouched until approved"
    );
    assert!(
        s.repo
            .remote_file("app/values-prod.yaml")
            .contains("tag: \"1.0.0\"")
    );
    assert!(
        s.repo
            .remote_file_at(branch, "app/values-prod.yaml")
            .contains("tag: \"1.1.0\"")
    );
    let events = events(&s.client, &s.ns).await;
    assert!(
        events
            .iter()
            .any(|(_, r, n)| r == "GitAwaitingApproval" && n.contains(branch)),
        "{events:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_deployment_or_route_is_reported_and_nothing_moves() {
    let s = Scene::new("result[0] > 5").await;
    let cp = k8s::shared();
    apply(cp, &s.ns, &canary_rollout("ghost", "1s"));
    apply(
        cp,
        &s.ns,
        &canary_rollout_with("podinfo", "1s", "success-rate", "nope"),
    );
    let _c = s.start();
    let st = wait_for(&s.client, &s.ns, "ghost", 60, "TargetNotFound", |st| {
        condition(st, conditions::READY).is_some_and(|c| c.reason == "TargetNotFound")
    })
    .await;
    let c = condition(&st, conditions::READY).expect("condition");
    assert_eq!(c.status, ConditionStatus::False);
    assert!(
        c.message
            .contains(&format!("Deployment {}/ghost not found", s.ns)),
        "{c:?}"
    );
    let st = wait_for(
        &s.client,
        &s.ns,
        "podinfo",
        60,
        "TrafficRoutingError",
        |st| condition(st, conditions::READY).is_some_and(|c| c.reason == "TrafficRoutingError"),
    )
    .await;
    let c = condition(&st, conditions::READY).expect("condition");
    assert!(
        c.message.contains("HTTPRoute") && c.message.contains("nope"),
        "{c:?}"
    );
    assert!(st.primary_revision.is_none(), "nothing was initialised");
    let events = events(&s.client, &s.ns).await;
    for reason in ["TargetNotFound", "TrafficRoutingError"] {
        assert!(
            events.iter().any(|(t, r, _)| t == "Warning" && r == reason),
            "no {reason} warning: {events:#?}"
        );
    }
    // The route untouched; fixing the input lets the Rollout proceed.
    assert_eq!(weights_now(&s).await, (100, 0));
    apply(
        cp,
        &s.ns,
        &deployment_yaml("ghost", "ghcr.io/acme/ghost:1.0.0"),
    );
    apply(cp, &s.ns, &route_yaml("ghost"));
    wait_for(&s.client, &s.ns, "ghost", 60, "ghost Initialized", |st| {
        initialized(st)
            && condition(st, conditions::READY).is_some_and(|c| c.status == ConditionStatus::True)
    })
    .await;
}

async fn weights_now(s: &Scene) -> (u64, u64) {
    let r = route(&s.client, &s.ns, "podinfo").await;
    rollgate::core::strategy::read_weights(&r, "podinfo-primary", "podinfo-canary")
        .expect("weights")
}

/// A release whose analysis cannot run ends Failed with traffic on the primary and a
/// condition and Event saying why.
async fn release_fails(s: &Scene, c: Running, expect: &str) {
    wait_for(&s.client, &s.ns, "podinfo", 60, "Initialized", initialized).await;
    s.release("1.1.0").await;
    let st = wait_for(
        &s.client,
        &s.ns,
        "podinfo",
        90,
        "Failed",
        git_settled(Phase::Failed),
    )
    .await;
    assert!(st.aborted);
    assert_eq!(st.canary_weight, 0);
    assert_eq!(weights_now(s).await, (100, 0), "no stuck traffic");
    let runs = s.runs().await;
    let message = runs[0]
        .status
        .as_ref()
        .map(|x| x.message.clone())
        .unwrap_or_default();
    let phase = runs[0].status.as_ref().map(|x| x.phase).map(|p| p.as_str());
    assert_eq!(phase, Some("Error"), "{message}");
    assert!(
        message.contains(expect),
        "run message {message:?} lacks {expect:?}"
    );
    let events = events(&s.client, &s.ns).await;
    assert!(
        events
            .iter()
            .any(|(t, r, n)| t == "Warning" && r == "RolloutAborted" && n.contains("Error")),
        "{events:#?}"
    );
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_template_fails_the_rollout_with_a_condition() {
    let s = Scene::new("result[0] > 5").await;
    apply(
        k8s::shared(),
        &s.ns,
        &canary_rollout_with("podinfo", "1s", "no-such-template", "podinfo"),
    );
    let c = s.start();
    release_fails(&s, c, "AnalysisTemplate no-such-template not found").await;
    let st = status(&s.client, &s.ns, "podinfo").await;
    let ready = condition(&st, conditions::READY).expect("Ready");
    assert_eq!(ready.reason, "AnalysisTemplateError");
    assert!(ready.message.contains("no-such-template"), "{ready:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_with_a_bad_condition_fails_the_rollout() {
    let s = Scene::new("result[0] >").await;
    apply(k8s::shared(), &s.ns, &canary_rollout("podinfo", "1s"));
    let c = s.start();
    release_fails(&s, c, "successCondition").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_prometheus_fails_the_rollout_without_stuck_traffic() {
    let s = Scene::new("result[0] > 5").await;
    apply(k8s::shared(), &s.ns, &canary_rollout("podinfo", "1s"));
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let c = s.start_as("dev", &closed);
    release_fails(&s, c, "prometheus").await;
}

fn blue_green_rollout(name: &str) -> String {
    format!(
        r#"apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata: {{name: {name}}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: {name}}}
  service: {{port: 80}}
  trafficRouting: {{gatewayAPI: {{httpRoute: {{name: {name}}}}}}}
  strategy:
    blueGreen:
      prePromotionAnalysis:
        templates: [{{templateName: success-rate}}]
        args: [{{name: service, value: {name}-canary}}]
      scaleDownDelaySeconds: 0
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_switches_after_a_passing_pre_promotion_analysis() {
    let s = Scene::new("result[0] > 5").await;
    apply(k8s::shared(), &s.ns, &blue_green_rollout("podinfo"));
    let (weights, _w) = record_weights(
        s.client.clone(),
        &s.ns,
        "podinfo",
        "podinfo-primary",
        "podinfo-canary",
    );
    let _c = s.start();
    wait_for(&s.client, &s.ns, "podinfo", 60, "Initialized", initialized).await;
    s.release("1.1.0").await;
    wait_for(
        &s.client,
        &s.ns,
        "podinfo",
        90,
        "Succeeded",
        git_settled(Phase::Succeeded),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        weights.lock().expect("lock").clone(),
        vec![(100, 0), (0, 100), (100, 0)],
        "preview gets all traffic after the analysis, then the promoted primary"
    );
    let runs = s.runs().await;
    assert_eq!(runs.len(), 1);
    assert!(
        runs[0]
            .metadata
            .name
            .as_deref()
            .unwrap_or_default()
            .contains("pre"),
        "{:?}",
        runs[0].metadata.name
    );
    assert_eq!(
        image(&s.client, &s.ns, "podinfo-primary").await.as_deref(),
        Some("ghcr.io/acme/app:1.1.0")
    );
    assert!(
        s.repo
            .remote_file("app/values-staging.yaml")
            .contains("tag: \"1.1.0\"")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_never_switches_when_the_pre_promotion_analysis_fails() {
    let s = Scene::new("result[0] > 1000").await;
    apply(k8s::shared(), &s.ns, &blue_green_rollout("podinfo"));
    let (weights, _w) = record_weights(
        s.client.clone(),
        &s.ns,
        "podinfo",
        "podinfo-primary",
        "podinfo-canary",
    );
    let _c = s.start();
    wait_for(&s.client, &s.ns, "podinfo", 60, "Initialized", initialized).await;
    s.release("1.1.0").await;
    let st = wait_for(
        &s.client,
        &s.ns,
        "podinfo",
        90,
        "Failed",
        git_settled(Phase::Failed),
    )
    .await;
    assert!(st.aborted);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        weights.lock().expect("lock").clone(),
        vec![(100, 0)],
        "never switched"
    );
    assert_eq!(
        image(&s.client, &s.ns, "podinfo-primary").await.as_deref(),
        Some("ghcr.io/acme/app:1.0.0")
    );
    assert_eq!(s.replicas("podinfo").await, Some(0));
    assert!(
        s.repo
            .remote_file("app/values-dev.yaml")
            .contains("tag: \"1.0.0\""),
        "reverted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_only_the_leader_acts_and_killing_it_hands_over() {
    let s = Scene::new("result[0] > 5").await;
    apply(k8s::shared(), &s.ns, &canary_rollout("podinfo", "4s"));
    let (a, a_leads) = Running::start_elected(
        s.client.clone(),
        &s.ns,
        "replica-a",
        &s.prom.url,
        s.cache.path(),
    );
    // A holds the Lease before B starts, so the roles are known.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !*a_leads.borrow() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "replica-a never led"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_b, b_leads) = Running::start_elected(
        s.client.clone(),
        &s.ns,
        "replica-b",
        &s.prom.url,
        s.cache.path(),
    );
    wait_for(&s.client, &s.ns, "podinfo", 60, "Initialized", initialized).await;
    s.release("1.1.0").await;
    wait_for(&s.client, &s.ns, "podinfo", 60, "canary at 20%", |st| {
        st.canary_weight == 20
    })
    .await;
    assert!(!*b_leads.borrow(), "one leader at a time");
    let before = event_reporters(&s.client, &s.ns).await;
    assert!(!before.is_empty());
    assert!(
        before.iter().all(|(_, who)| who == "replica-a"),
        "only the leader acted: {before:?}"
    );
    a.kill().await;
    let st = wait_for(
        &s.client,
        &s.ns,
        "podinfo",
        90,
        "Succeeded after handover",
        git_settled(Phase::Succeeded),
    )
    .await;
    assert!(*b_leads.borrow(), "replica-b took over");
    assert_eq!(st.canary_weight, 0);
    let after = event_reporters(&s.client, &s.ns).await;
    let b_events: Vec<&String> = after
        .iter()
        .filter(|(_, who)| who == "replica-b")
        .map(|(r, _)| r)
        .collect();
    assert!(
        b_events.iter().any(|r| *r == "RolloutCompleted"),
        "{after:?}"
    );
    assert!(
        s.repo
            .remote_file("app/values-staging.yaml")
            .contains("tag: \"1.1.0\"")
    );
}
