//! The controller's webhooks and notifications end to end: a real kube-apiserver (the tests
//! play kubelet), real HTTP servers on loopback for the hooks and the sinks, a real
//! Prometheus and a real Git remote where the scenario needs them.
//!
//! Every hook type is tried four ways at once, one Rollout each: allowed (200), refused
//! (403), slow (answers after 3 s, hook timeout 1 s) and unreachable (nothing listens). The
//! rollouts use Flagger's shorthand (`interval: 10s`, `threshold: 1`, `stepWeight: 50`:
//! weights 50, 100, then promotion) and must do what Flagger does: phase, weight, failed
//! checks.

#[path = "support/controller.rs"]
mod controller;
#[path = "support/git.rs"]
mod git;
#[path = "support/hookwire.rs"]
mod hookwire;
#[path = "support/k8s.rs"]
mod k8s;
#[path = "support/prometheus.rs"]
mod prometheus;

use std::time::Duration;

use controller::{apply, condition, deployment_yaml, events, install_crds, kubelet, set_image};
use hookwire::{Controller, Sampler, Switch, dead_url};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use rollgate::controller::{Config, conditions};
use rollgate::core::strategy::{Phase, RolloutStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Allowed,
    Refused,
    Slow,
    Unreachable,
}

const VARIANTS: [Variant; 4] = [
    Variant::Allowed,
    Variant::Refused,
    Variant::Slow,
    Variant::Unreachable,
];

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Allowed => "allowed",
            Variant::Refused => "refused",
            Variant::Slow => "slow",
            Variant::Unreachable => "unreachable",
        }
    }
}

/// One Rollout of a scene, with its hook server (none when unreachable).
struct Case {
    variant: Variant,
    server: Option<Switch>,
    sampler: Sampler,
}

impl Case {
    fn name(&self) -> &'static str {
        self.variant.name()
    }
    fn server(&self) -> &Switch {
        self.server.as_ref().expect("this variant has a server")
    }
}

async fn hook_server(v: Variant) -> (Option<Switch>, String) {
    let s = match v {
        Variant::Allowed => Switch::start(200, Duration::ZERO, "approved").await,
        Variant::Refused => Switch::start(403, Duration::ZERO, "denied by the test").await,
        Variant::Slow => Switch::start(200, Duration::from_secs(3), "too late").await,
        Variant::Unreachable => return (None, dead_url().await),
    };
    let url = s.url.clone();
    (Some(s), url)
}

fn rollout_yaml(name: &str, kind: &str, url: &str) -> String {
    format!(
        r#"apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata: {{name: {name}}}
spec:
  targetRef: {{name: {name}}}
  service: {{port: 80}}
  strategy:
    canary:
      analysis:
        interval: 10s
        threshold: 1
        stepWeight: 50
        webhooks:
          - name: gate-{name}
            type: {kind}
            url: "{url}"
            timeout: 1s
            metadata: {{check: "{kind}"}}
"#
    )
}

fn policy_yaml(name: &str, url: &str) -> String {
    format!(
        r#"apiVersion: rollgate.dev/v1alpha1
kind: PromotionPolicy
metadata: {{name: {name}}}
spec:
  repository: {{url: "{url}", branch: main}}
  environments:
    - {{name: dev, file: "{name}/values-dev.yaml", field: image.tag}}
    - {{name: staging, file: "{name}/values-staging.yaml", field: image.tag}}
  onFailure: revert
"#
    )
}

struct Scene {
    client: kube::Client,
    ns: String,
    cases: Vec<Case>,
    repo: Option<git::Fixture>,
    _cache: tempfile::TempDir,
    _ctl: Controller,
    _kubelet: tokio::task::JoinHandle<()>,
}

impl Scene {
    /// Four Rollouts (one per variant) whose single webhook has type `kind`, initialised,
    /// then released at 1.1.0. With `git`, each has a PromotionPolicy dev → staging.
    async fn start(kind: &str, git: bool) -> Scene {
        Scene::start_with(kind, git, rollout_yaml).await
    }

    /// As [`Scene::start`], with the Rollouts written by `yaml(name, kind, url)`.
    async fn start_with(kind: &str, git: bool, yaml: fn(&str, &str, &str) -> String) -> Scene {
        let cp = k8s::shared();
        install_crds(cp);
        let client = cp.client().await;
        let ns = cp.namespace("hooks");
        let (_, kubelet) = kubelet(client.clone(), &ns);
        let repo = git.then(|| {
            let files: Vec<(String, String)> = VARIANTS
                .iter()
                .flat_map(|v| {
                    ["dev", "staging"].map(|e| {
                        (
                            format!("{}/values-{e}.yaml", v.name()),
                            git::values("1.0.0"),
                        )
                    })
                })
                .collect();
            let refs: Vec<(&str, &str)> = files
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            git::Fixture::new(&refs)
        });
        let mut cases = Vec::new();
        for v in VARIANTS {
            let (server, url) = hook_server(v).await;
            apply(
                cp,
                &ns,
                &deployment_yaml(v.name(), "ghcr.io/acme/app:1.0.0"),
            );
            apply(cp, &ns, &yaml(v.name(), kind, &url));
            if let Some(repo) = &repo {
                apply(cp, &ns, &policy_yaml(v.name(), &repo.url()));
            }
            cases.push(Case {
                variant: v,
                server,
                sampler: Sampler::start(client.clone(), &ns, v.name()),
            });
        }
        let cache = tempfile::tempdir().expect("temp dir");
        let mut config = Config::new("dev");
        config.namespace = Some(ns.clone());
        config.git_cache = Some(cache.path().to_owned());
        config.git_timeout = Duration::from_secs(20);
        config.hook_backoff = Duration::from_millis(100);
        let ctl = Controller::start(client.clone(), config);
        let scene = Scene {
            client,
            ns,
            cases,
            repo,
            _cache: cache,
            _ctl: ctl,
            _kubelet: kubelet,
        };
        for c in &scene.cases {
            controller::wait_for(
                &scene.client,
                &scene.ns,
                c.name(),
                60,
                "Initialized",
                controller::initialized,
            )
            .await;
        }
        for c in &scene.cases {
            if let Some(repo) = &scene.repo {
                repo.person_commits(
                    &format!("{}/values-dev.yaml", c.name()),
                    &git::values("1.1.0"),
                    &format!("ci: {} 1.1.0", c.name()),
                );
            }
            set_image(&scene.client, &scene.ns, c.name(), "ghcr.io/acme/app:1.1.0").await;
        }
        scene
    }

    fn case(&self, v: Variant) -> &Case {
        self.cases
            .iter()
            .find(|c| c.variant == v)
            .expect("every variant has a case")
    }

    fn refusing(&self) -> impl Iterator<Item = &Case> {
        self.cases.iter().filter(|c| c.variant != Variant::Allowed)
    }

    async fn wait(
        &self,
        v: Variant,
        secs: u64,
        what: &str,
        pred: impl Fn(&RolloutStatus) -> bool,
    ) -> RolloutStatus {
        controller::wait_for(&self.client, &self.ns, v.name(), secs, what, pred).await
    }

    async fn status(&self, v: Variant) -> RolloutStatus {
        controller::status(&self.client, &self.ns, v.name()).await
    }

    async fn canary_replicas(&self, v: Variant) -> Option<i32> {
        Api::<Deployment>::namespaced(self.client.clone(), &self.ns)
            .get(v.name())
            .await
            .expect("get deployment")
            .spec?
            .replicas
    }

    /// The Events of one Rollout: (reason, note).
    async fn events_of(&self, v: Variant) -> Vec<(String, String)> {
        let api: Api<k8s_openapi::api::events::v1::Event> =
            Api::namespaced(self.client.clone(), &self.ns);
        api.list(&Default::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(v.name()))
            .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
            .collect()
    }
}

fn succeeded(s: &RolloutStatus) -> bool {
    s.phase == Phase::Succeeded
        && s.history
            .last()
            .is_some_and(|h| h.phase == Phase::Succeeded)
}

fn failed(s: &RolloutStatus) -> bool {
    s.phase == Phase::Failed && s.aborted
}

/// The JSON payload Flagger sends, with the phase expected.
fn assert_payload(body: &serde_json::Value, name: &str, ns: &str, phase: &str, kind: &str) {
    assert_eq!(body["name"], name, "{body}");
    assert_eq!(body["namespace"], ns, "{body}");
    assert_eq!(body["phase"], phase, "{body}");
    assert!(
        body["checksum"].as_str().is_some_and(|c| !c.is_empty()),
        "{body}"
    );
    assert_eq!(body["metadata"]["check"], kind, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_rollout_no_waits_without_failed_checks_and_is_asked_again_each_tick() {
    let s = Scene::start("confirm-rollout", false).await;
    let ok = s.wait(Variant::Allowed, 120, "Succeeded", succeeded).await;
    assert_eq!(ok.failed_checks, 0);
    let first = s.case(Variant::Allowed).server().seen();
    assert_eq!(first.len(), 1, "asked once: {first:?}");
    assert_payload(
        &first[0].json(),
        "allowed",
        &s.ns,
        "Initialized",
        "confirm-rollout",
    );
    for c in s.refusing() {
        let st = s.status(c.variant).await;
        assert_eq!(st.phase, Phase::Waiting, "{}: {st:?}", c.name());
        assert_eq!(c.sampler.max_weight(), 0, "{}", c.name());
        assert_eq!(c.sampler.max_failed_checks(), 0, "{}", c.name());
        assert_eq!(
            s.canary_replicas(c.variant).await,
            Some(0),
            "{}: the new revision is not scaled up",
            c.name()
        );
        assert!(
            s.events_of(c.variant)
                .await
                .iter()
                .any(|(r, _)| r == "RolloutWaiting"),
            "{}",
            c.name()
        );
    }
    assert!(
        s.case(Variant::Refused).server().seen().len() >= 2,
        "a refused confirm-rollout is asked again each interval"
    );
    // Once the gate says yes, the rollout goes ahead.
    s.case(Variant::Refused).server().set(200, "now");
    let st = s
        .wait(Variant::Refused, 90, "Succeeded after yes", succeeded)
        .await;
    assert_eq!(st.failed_checks, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_rollout_failure_counts_a_failed_check_and_rolls_back_at_threshold() {
    let s = Scene::start("pre-rollout", false).await;
    s.wait(Variant::Allowed, 120, "Succeeded", succeeded).await;
    let seen = s.case(Variant::Allowed).server().seen();
    assert_eq!(seen.len(), 1, "pre-rollout runs once per rollout");
    assert_payload(
        &seen[0].json(),
        "allowed",
        &s.ns,
        "Progressing",
        "pre-rollout",
    );
    assert_eq!(s.case(Variant::Allowed).sampler.max_weight(), 100);
    for c in s.refusing() {
        let st = s.wait(c.variant, 60, "Failed", failed).await;
        assert_eq!(st.canary_weight, 0, "{}", c.name());
        assert_eq!(
            c.sampler.max_weight(),
            0,
            "{}: no traffic before pre-rollout passes",
            c.name()
        );
        assert_eq!(c.sampler.max_failed_checks(), 1, "{}", c.name());
        let msg = st.message.clone().unwrap_or_default();
        assert!(msg.contains("threshold reached 1"), "{}: {msg}", c.name());
        let ev = s.events_of(c.variant).await;
        assert!(
            ev.iter()
                .any(|(r, n)| r == "WebhookCheckFailed" && n.contains("pre-rollout")),
            "{}: {ev:?}",
            c.name()
        );
        assert!(
            ev.iter().any(|(r, _)| r == "FailedChecksThreshold"),
            "{ev:?}"
        );
        assert_eq!(s.canary_replicas(c.variant).await, Some(0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_hook_failure_halts_the_weight_and_rolls_back_at_threshold() {
    let s = Scene::start("rollout", false).await;
    s.wait(Variant::Allowed, 120, "Succeeded", succeeded).await;
    let seen = s.case(Variant::Allowed).server().seen();
    assert!(!seen.is_empty());
    for r in &seen {
        assert_payload(&r.json(), "allowed", &s.ns, "Progressing", "rollout");
    }
    for c in s.refusing() {
        let st = s.wait(c.variant, 60, "Failed", failed).await;
        assert_eq!(st.canary_weight, 0);
        assert_eq!(
            c.sampler.max_weight(),
            50,
            "{}: the first step happens (pre-rollout tick), the second is halted",
            c.name()
        );
        assert_eq!(c.sampler.max_failed_checks(), 1, "{}", c.name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_traffic_increase_no_keeps_the_weight_without_failed_checks() {
    let s = Scene::start("confirm-traffic-increase", false).await;
    s.wait(Variant::Allowed, 120, "Succeeded", succeeded).await;
    assert!(
        s.case(Variant::Allowed).server().seen().len() >= 2,
        "asked before 50 and 100"
    );
    for c in s.refusing() {
        let st = s.status(c.variant).await;
        assert_eq!(st.phase, Phase::Progressing, "{}: {st:?}", c.name());
        assert_eq!(c.sampler.max_weight(), 0, "{}", c.name());
        assert_eq!(c.sampler.max_failed_checks(), 0, "{}", c.name());
        assert!(
            s.events_of(c.variant)
                .await
                .iter()
                .any(|(r, _)| r == "TrafficIncreaseHeld"),
            "{}",
            c.name()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_promotion_no_waits_for_promotion_with_checks_going_on() {
    let s = Scene::start("confirm-promotion", false).await;
    s.wait(Variant::Allowed, 120, "Succeeded", succeeded).await;
    for c in s.refusing() {
        let st = s
            .wait(c.variant, 30, "WaitingPromotion", |st| {
                st.phase == Phase::WaitingPromotion
            })
            .await;
        assert_eq!(st.canary_weight, 100, "{}", c.name());
        assert_eq!(st.failed_checks, 0);
    }
    // Still waiting an interval later: never promoted, never failed.
    tokio::time::sleep(Duration::from_secs(11)).await;
    for c in s.refusing() {
        let st = s.status(c.variant).await;
        assert_eq!(st.phase, Phase::WaitingPromotion, "{}", c.name());
        assert!(
            !c.sampler.all().iter().any(|x| x.phase == Phase::Promoting),
            "{}",
            c.name()
        );
    }
    assert!(
        s.case(Variant::Refused).server().seen().len() >= 2,
        "asked each tick"
    );
}

/// A blue-green Rollout without an HTTPRoute (the switch is made by Service selectors)
/// whose single webhook has type `kind`.
fn blue_green_yaml(name: &str, kind: &str, url: &str) -> String {
    format!(
        r#"apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata: {{name: {name}}}
spec:
  targetRef: {{name: {name}}}
  service: {{port: 80}}
  strategy:
    blueGreen:
      scaleDownDelaySeconds: 0
      webhooks:
        - name: gate-{name}
          type: {kind}
          url: "{url}"
          timeout: 1s
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_confirm_promotion_no_keeps_the_old_version_on_the_primary() {
    let s = Scene::start_with("confirm-promotion", false, blue_green_yaml).await;
    s.wait(Variant::Allowed, 120, "Succeeded", succeeded).await;
    assert_eq!(
        controller::image(
            &s.client,
            &s.ns,
            &format!("{}-primary", Variant::Allowed.name())
        )
        .await
        .as_deref(),
        Some("ghcr.io/acme/app:1.1.0"),
        "a yes promotes: the primary runs the new version"
    );
    for c in s.refusing() {
        let st = s
            .wait(c.variant, 60, "WaitingPromotion", |st| {
                st.phase == Phase::WaitingPromotion
            })
            .await;
        assert_eq!(
            st.failed_checks,
            0,
            "{}: a no is not a failed check",
            c.name()
        );
    }
    // An interval later: still waiting, the primary never got the new template.
    tokio::time::sleep(Duration::from_secs(11)).await;
    for c in s.refusing() {
        let st = s.status(c.variant).await;
        assert_eq!(st.phase, Phase::WaitingPromotion, "{}", c.name());
        assert!(
            !c.sampler.all().iter().any(|x| x.phase == Phase::Promoting),
            "{}",
            c.name()
        );
        assert_eq!(
            controller::image(&s.client, &s.ns, &format!("{}-primary", c.name()))
                .await
                .as_deref(),
            Some("ghcr.io/acme/app:1.0.0"),
            "{}: the primary keeps the old version",
            c.name()
        );
    }
    assert!(
        s.case(Variant::Refused).server().seen().len() >= 2,
        "asked again each tick"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_rollout_is_called_after_success_and_its_answer_changes_nothing() {
    let s = Scene::start("post-rollout", false).await;
    for c in &s.cases {
        s.wait(c.variant, 120, "Succeeded", succeeded).await;
    }
    for v in [Variant::Allowed, Variant::Refused, Variant::Slow] {
        let seen = s.case(v).server().wait_for(1, 10).await;
        assert_eq!(seen.len(), 1, "{v:?}: once per rollout");
        assert_payload(
            &seen[0].json(),
            v.name(),
            &s.ns,
            "Succeeded",
            "post-rollout",
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passing_rollback_hook_rolls_back_and_other_answers_do_nothing() {
    let s = Scene::start("rollback", false).await;
    let st = s.wait(Variant::Allowed, 60, "Failed", failed).await;
    assert_eq!(st.canary_weight, 0);
    let msg = st.message.unwrap_or_default();
    assert!(
        msg.contains("rollback webhook gate-allowed passed"),
        "{msg}"
    );
    assert_eq!(st.failed_checks, 0, "a rollback is not a failed check");
    let seen = s.case(Variant::Allowed).server().seen();
    assert_payload(&seen[0].json(), "allowed", &s.ns, "Progressing", "rollback");
    assert!(
        s.events_of(Variant::Allowed)
            .await
            .iter()
            .any(|(r, _)| r == "RolledBackByWebhook")
    );
    for c in s.refusing() {
        let st = s.wait(c.variant, 120, "Succeeded", succeeded).await;
        assert_eq!(st.failed_checks, 0);
    }
    assert!(
        s.case(Variant::Refused).server().seen().len() >= 2,
        "polled each interval while progressing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_hooks_get_every_event_and_their_answers_are_ignored() {
    let s = Scene::start("event", false).await;
    for c in &s.cases {
        s.wait(c.variant, 120, "Succeeded", succeeded).await;
    }
    for v in [Variant::Allowed, Variant::Refused] {
        let seen = s.case(v).server().wait_for(4, 10).await;
        let bodies: Vec<_> = seen.iter().map(|r| r.json()).collect();
        assert!(
            bodies.iter().any(|b| b["metadata"]["eventType"] == "Normal"
                && b["metadata"]["eventMessage"]
                    .as_str()
                    .is_some_and(|m| m.contains("New revision"))
                && b["metadata"]["timestamp"]
                    .as_str()
                    .is_some_and(|t| t.parse::<i64>().is_ok())
                && b["metadata"]["check"] == "event"),
            "{v:?}: {bodies:#?}"
        );
        assert!(
            bodies.iter().any(|b| b["metadata"]["eventMessage"]
                .as_str()
                .is_some_and(|m| m.contains("promoted"))),
            "{v:?}: {bodies:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_git_promotion_no_holds_the_commit_to_the_next_environment() {
    let s = Scene::start("confirm-git-promotion", true).await;
    let repo = s.repo.as_ref().expect("repo");
    let st = s
        .wait(
            Variant::Allowed,
            120,
            "Succeeded and promoted in Git",
            |st| {
                succeeded(st)
                    && condition(st, conditions::GIT_PROMOTION)
                        .is_some_and(|c| c.reason == "GitPromoted")
            },
        )
        .await;
    assert_eq!(st.failed_checks, 0);
    assert!(
        repo.remote_file("allowed/values-staging.yaml")
            .contains("tag: \"1.1.0\""),
        "the allowed app is committed to staging"
    );
    for c in s.refusing() {
        let st = s
            .wait(c.variant, 60, "Git promotion held", |st| {
                succeeded(st)
                    && condition(st, conditions::GIT_PROMOTION)
                        .is_some_and(|c| c.reason == "GitAwaitingConfirmation")
            })
            .await;
        let cond = condition(&st, conditions::GIT_PROMOTION).expect("condition");
        assert!(
            cond.message.contains(&format!("gate-{}", c.name())),
            "{cond:?}"
        );
    }
    tokio::time::sleep(Duration::from_secs(11)).await;
    for c in s.refusing() {
        assert!(
            repo.remote_file(&format!("{}/values-staging.yaml", c.name()))
                .contains("tag: \"1.0.0\""),
            "{}: nothing committed while the hook says no",
            c.name()
        );
    }
    // Yes at last: the commit lands.
    s.case(Variant::Refused).server().set(200, "go");
    s.wait(Variant::Refused, 60, "promoted in Git", |st| {
        condition(st, conditions::GIT_PROMOTION).is_some_and(|c| c.reason == "GitPromoted")
    })
    .await;
    assert!(
        repo.remote_file("refused/values-staging.yaml")
            .contains("tag: \"1.1.0\"")
    );
}

// ---------------------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------------------

const OK_QUERY: &str =
    r#"sum(rate(http_requests_total{service="{{args.service}}",code="200"}[1m]))"#;

fn failing_rollout() -> String {
    r#"apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata: {name: podinfo}
spec:
  targetRef: {name: podinfo}
  service: {port: 80}
  strategy:
    canary:
      steps:
        - setWeight: 20
        - analysis:
            templates: [{templateName: success-rate}]
            args: [{name: service, value: podinfo-canary}]
        - setWeight: 50
"#
    .to_owned()
}

fn metric_value(encoded: &str, line_start: &str) -> f64 {
    encoded
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_rollout_tells_every_sink_once_with_metric_and_commit_and_a_dead_sink_is_retried()
{
    use rollgate::notify::{NotifierConfig, Sink, SinkKind, verify_signature};
    let cp = k8s::shared();
    install_crds(cp);
    let client = cp.client().await;
    let ns = cp.namespace("notify");
    let prom = prometheus::Prometheus::start(&prometheus::Backfill::new().counter(
        "http_requests_total",
        r#"service="podinfo-canary",code="200""#,
        10.0,
    ));
    let repo = git::Fixture::new(&[
        ("podinfo/values-dev.yaml", &git::values("1.0.0")),
        ("podinfo/values-staging.yaml", &git::values("1.0.0")),
    ]);
    apply(
        cp,
        &ns,
        &deployment_yaml("podinfo", "ghcr.io/acme/app:1.0.0"),
    );
    apply(
        cp,
        &ns,
        &controller::template_yaml("success-rate", OK_QUERY, "result[0] > 1000"),
    );
    apply(cp, &ns, &policy_yaml("podinfo", &repo.url()));
    apply(cp, &ns, &failing_rollout());
    let (_, _kubelet) = kubelet(client.clone(), &ns);

    let slack = Switch::start(200, Duration::ZERO, "ok").await;
    let teams = Switch::start(200, Duration::ZERO, "1").await;
    let hook = Switch::start(202, Duration::ZERO, "").await;
    let dead = Switch::start(500, Duration::ZERO, "down").await;
    let secret = "s3cr3t-hmac-key";
    let sink = |name: &str, kind, url: &str, secret: Option<&str>| Sink {
        name: name.to_owned(),
        kind,
        url: url.to_owned(),
        secret: secret.map(str::to_owned),
    };
    let cache = tempfile::tempdir().expect("temp dir");
    let mut config = Config::new("dev");
    config.namespace = Some(ns.clone());
    config.git_cache = Some(cache.path().to_owned());
    config.providers.prometheus_address = Some(prom.url.clone());
    config.notify_sinks = vec![
        sink("chat", SinkKind::Slack, &slack.url, None),
        sink("office", SinkKind::Teams, &teams.url, None),
        sink("audit", SinkKind::Webhook, &hook.url, Some(secret)),
        sink("dead", SinkKind::Webhook, &dead.url, None),
    ];
    config.notifier = NotifierConfig {
        retries: 3,
        backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
        ..NotifierConfig::default()
    };
    let ctl = Controller::start(client.clone(), config);
    controller::wait_for(
        &client,
        &ns,
        "podinfo",
        60,
        "Initialized",
        controller::initialized,
    )
    .await;
    repo.person_commits(
        "podinfo/values-dev.yaml",
        &git::values("1.1.0"),
        "ci: dev 1.1.0",
    );
    set_image(&client, &ns, "podinfo", "ghcr.io/acme/app:1.1.0").await;
    let st = controller::wait_for(&client, &ns, "podinfo", 120, "Failed and reverted", |st| {
        st.phase == Phase::Failed
            && condition(st, conditions::GIT_PROMOTION).is_some_and(|c| c.reason == "GitReverted")
    })
    .await;
    assert!(st.aborted);
    let revert = git::git(&repo.remote(), &["rev-parse", "main"])
        .trim()
        .to_owned();
    assert!(
        repo.remote_file("podinfo/values-dev.yaml")
            .contains("tag: \"1.0.0\""),
        "dev is reverted"
    );

    // Each sink: exactly one "analysis failed" message naming app, environment, version,
    // metric, observed value, bound and the revert commit.
    let wanted = [
        "podinfo",
        "dev",
        "1.1.0",
        "success-rate",
        "result[0] > 1000",
        &revert,
    ];
    let wait_one = |srv: &Switch, pick: fn(&serde_json::Value) -> bool| {
        let srv_seen = srv.seen();
        srv_seen
            .into_iter()
            .filter(|r| pick(&r.json()))
            .collect::<Vec<_>>()
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let slack_failed = wait_one(&slack, |b| {
        b["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Analysis failed"))
    });
    let teams_failed = wait_one(&teams, |b| {
        b["summary"]
            .as_str()
            .is_some_and(|t| t.starts_with("Analysis failed"))
    });
    let hook_failed = wait_one(&hook, |b| b["event"] == "analysisFailed");
    for (sink, got) in [
        ("slack", &slack_failed),
        ("teams", &teams_failed),
        ("webhook", &hook_failed),
    ] {
        assert_eq!(
            got.len(),
            1,
            "{sink}: one analysis-failed message, got {got:?}"
        );
        let text = String::from_utf8_lossy(&got[0].body).into_owned();
        for w in wanted {
            assert!(text.contains(w), "{sink}: {w:?} missing from {text}");
        }
    }
    let h = &hook_failed[0];
    let body = h.json();
    assert_eq!(body["metric"]["name"], "success-rate");
    let observed = body["metric"]["observed"].as_f64().expect("observed value");
    assert!((5.0..1000.0).contains(&observed), "{body}");
    for got in [&slack_failed, &teams_failed] {
        let text = String::from_utf8_lossy(&got[0].body).into_owned();
        assert!(text.contains(&observed.to_string()), "{text}");
    }
    assert_eq!(body["commit"], revert.as_str());
    let sig = h
        .headers
        .get("x-rollgate-signature")
        .and_then(|v| v.to_str().ok())
        .expect("signed");
    assert!(
        verify_signature(secret.as_bytes(), &h.body, sig),
        "signature verifies"
    );
    assert!(!verify_signature(b"wrong", &h.body, sig));
    // Reverted in Git is told too, with the commit.
    assert!(
        hook.seen()
            .iter()
            .any(|r| r.json()["event"] == "revertedInGit" && r.json()["commit"] == revert.as_str())
    );

    // The dead sink: retried with growing waits, then given up, and counted.
    let attempts = dead.wait_for(4, 20).await;
    assert!(
        attempts.len() >= 4,
        "1 attempt + 3 retries: {}",
        attempts.len()
    );
    let gaps: Vec<Duration> = attempts[..4]
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at))
        .collect();
    assert!(gaps[0] >= Duration::from_millis(180), "{gaps:?}");
    assert!(
        gaps[1] > gaps[0] && gaps[2] > gaps[1],
        "backoff grows: {gaps:?}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = ctl.telemetry.encode();
        if metric_value(
            &text,
            r#"rollgate_notifications_total{sink="webhook",result="failed"}"#,
        ) >= 1.0
            || tokio::time::Instant::now() > deadline
        {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        metric_value(
            &text,
            r#"rollgate_notification_retries_total{sink="webhook"}"#
        ) >= 3.0,
        "{text}"
    );
    assert!(
        metric_value(
            &text,
            r#"rollgate_notifications_total{sink="webhook",result="failed"}"#
        ) >= 1.0,
        "{text}"
    );
    assert!(
        metric_value(
            &text,
            r#"rollgate_notifications_total{sink="slack",result="sent"}"#
        ) >= 1.0,
        "{text}"
    );
    assert!(!text.contains(&dead.url) && !text.contains(secret));
    // Kubernetes Events are written too.
    let ev = events(&client, &ns).await;
    assert!(ev.iter().any(|(_, r, _)| r == "RolloutAborted"), "{ev:?}");
}

// ---------------------------------------------------------------------------------------
// `rollgate controller` sink flags
// ---------------------------------------------------------------------------------------

fn controller_cli(args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rollgate"));
    cmd.arg("controller").arg("--env").arg("dev").args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("ROLLGATE_NOTIFY_") {
            cmd.env_remove(k);
        }
    }
    cmd.output().expect("run rollgate")
}

#[test]
fn unusable_sink_files_are_refused_naming_the_flag_and_never_their_content() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing");
    let out = controller_cli(&["--notify-slack-url-file", missing.to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(
        err.contains("--notify-slack-url-file") && err.contains("missing"),
        "{err}"
    );

    let bad = dir.path().join("teams");
    std::fs::write(&bad, "hooks.example/SECRET-TOKEN-123\n").expect("write");
    let out = controller_cli(&["--notify-teams-url-file", bad.to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("not an http(s) URL"), "{err}");
    assert!(
        !err.contains("SECRET-TOKEN-123"),
        "the file's content leaked: {err}"
    );

    let key = dir.path().join("key");
    std::fs::write(&key, "k").expect("write");
    let out = controller_cli(&["--notify-webhook-secret-file", key.to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("needs --notify-webhook-url-file"), "{err}");
}
