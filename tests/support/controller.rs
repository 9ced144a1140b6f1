//! Acceptance-test rig for the controller: the real kube-apiserver of `support/k8s.rs`
//! with rollgate's and the Gateway API CRDs, a real Prometheus, a real Git remote, the
//! controller running in-process (namespace-scoped, killable), a "kubelet" that marks
//! Deployments ready, and a recorder of the HTTPRoute's weights fed by a watch.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::watcher;
use rollgate::controller::{Config, Telemetry};
use rollgate::core::strategy::{Phase, RolloutStatus};
use rollgate::k8s::Rollout;
use rollgate::providers::ProviderSettings;
use rollgate::traffic::httproute::httproute_resource;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::k8s;

/// Install rollgate's CRDs and the Gateway API CRDs once per test binary.
pub fn install_crds(cp: &k8s::ControlPlane) {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let yaml = rollgate::k8s::crds_yaml().expect("crds");
        let (ok, _, err) = cp.kubectl(&["apply", "--server-side", "-f", "-"], Some(&yaml));
        assert!(ok, "apply rollgate CRDs: {err}");
        let gw = k8s::gateway_api_crds();
        let gw = gw.to_str().expect("utf-8 path");
        let (ok, _, err) = cp.kubectl(&["apply", "--server-side", "-f", gw], None);
        assert!(ok, "apply Gateway API CRDs: {err}");
        for crd in [
            "rollouts.rollgate.dev",
            "analysisruns.rollgate.dev",
            "analysistemplates.rollgate.dev",
            "promotionpolicies.rollgate.dev",
            "httproutes.gateway.networking.k8s.io",
        ] {
            let (ok, _, err) = cp.kubectl(
                &[
                    "wait",
                    "--for=condition=Established",
                    "--timeout=60s",
                    &format!("crd/{crd}"),
                ],
                None,
            );
            assert!(ok, "CRD {crd} not established: {err}");
        }
    });
}

/// Apply YAML in `ns` with kubectl (server-side).
pub fn apply(cp: &k8s::ControlPlane, ns: &str, yaml: &str) {
    let (ok, _, err) = cp.kubectl(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-n",
            ns,
            "-f",
            "-",
        ],
        Some(yaml),
    );
    assert!(ok, "kubectl apply failed: {err}\n{yaml}");
}

/// A controller running in this process for one namespace; `kill` aborts it at once (as
/// SIGKILL would: no graceful shutdown).
pub struct Running {
    task: tokio::task::JoinHandle<()>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    election: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Start a controller for environment `env` in `ns`.
    pub fn start(
        client: kube::Client,
        ns: &str,
        env: &str,
        prometheus: &str,
        git_cache: &std::path::Path,
    ) -> Self {
        let mut config = Config::new(env);
        config.namespace = Some(ns.to_owned());
        config.providers = ProviderSettings {
            prometheus_address: Some(prometheus.to_owned()),
            default_prometheus_address: None,
        };
        config.git_cache = Some(git_cache.to_owned());
        config.git_timeout = Duration::from_secs(20);
        let (leader_tx, leader) = watch::channel(true);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _keep = leader_tx;
            rollgate::controller::run(client, config, leader, Telemetry::new(), async move {
                let _ = stopped.await;
            })
            .await;
        });
        Self {
            task,
            stop: Some(stop),
            election: None,
        }
    }

    /// Start a controller that acts only while it holds the Lease `lease` in `ns` (short
    /// timings), reporting Events as `identity`.
    pub fn start_elected(
        client: kube::Client,
        ns: &str,
        identity: &str,
        prometheus: &str,
        git_cache: &std::path::Path,
    ) -> (Self, watch::Receiver<bool>) {
        let mut config = Config::new("dev");
        config.namespace = Some(ns.to_owned());
        config.providers = ProviderSettings {
            prometheus_address: Some(prometheus.to_owned()),
            default_prometheus_address: None,
        };
        config.git_cache = Some(git_cache.to_owned());
        config.instance = Some(identity.to_owned());
        let mut lease = rollgate::leader::LeaseConfig::new(ns, "rollgate-controller", identity);
        lease.lease_duration = Duration::from_secs(3);
        lease.renew_deadline = Duration::from_secs(2);
        lease.retry_period = Duration::from_millis(300);
        lease.api_timeout = Duration::from_secs(1);
        let telemetry = Telemetry::new();
        let election = rollgate::leader::LeaderElection::new(client.clone(), lease)
            .expect("lease config")
            .with_telemetry(telemetry.clone());
        let leader = election.subscribe();
        let flag = leader.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let election = tokio::spawn(election.run(std::future::pending::<()>()));
        let task = tokio::spawn(async move {
            rollgate::controller::run(client, config, leader, telemetry, async move {
                let _ = stopped.await;
            })
            .await;
        });
        (
            Self {
                task,
                stop: Some(stop),
                election: Some(election),
            },
            flag,
        )
    }

    /// Abort the controller mid-flight.
    pub async fn kill(mut self) {
        self.stop.take();
        if let Some(e) = self.election.take() {
            e.abort();
            let _ = e.await;
        }
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(e) = &self.election {
            e.abort();
        }
        self.task.abort();
    }
}

/// Plays kubelet and the Deployment controller: every 100 ms, every Deployment in `ns`
/// whose status lags its spec gets a ready status. Pause it with the returned flag.
pub fn kubelet(client: kube::Client, ns: &str) -> (Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let enabled = Arc::new(AtomicBool::new(true));
    let flag = enabled.clone();
    let api: Api<Deployment> = Api::namespaced(client, ns);
    let task = tokio::spawn(async move {
        loop {
            if flag.load(Ordering::SeqCst)
                && let Ok(list) = api.list(&ListParams::default()).await
            {
                for d in list.items {
                    let generation = d.metadata.generation.unwrap_or(0);
                    let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                    let st = d.status.clone().unwrap_or_default();
                    if st.observed_generation == Some(generation)
                        && st.available_replicas.unwrap_or(0) == replicas
                        && st.updated_replicas.unwrap_or(0) == replicas
                    {
                        continue;
                    }
                    let name = d.metadata.name.clone().unwrap_or_default();
                    let status = json!({"status": {
                        "observedGeneration": generation,
                        "replicas": replicas,
                        "updatedReplicas": replicas,
                        "readyReplicas": replicas,
                        "availableReplicas": replicas,
                    }});
                    let _ = api
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
                        .await;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    (enabled, task)
}

/// The (primary, canary) weights seen, in order.
pub type Weights = Arc<Mutex<Vec<(u64, u64)>>>;

/// Records every distinct (primary, canary) weight pair the HTTPRoute shows, in order,
/// from a watch (so no transient state is missed).
pub fn record_weights(
    client: kube::Client,
    ns: &str,
    route: &str,
    primary: &str,
    canary: &str,
) -> (Weights, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let out = seen.clone();
    let api: Api<DynamicObject> = Api::namespaced_with(client, ns, &httproute_resource());
    let cfg = watcher::Config::default().fields(&format!("metadata.name={route}"));
    let (primary, canary) = (primary.to_owned(), canary.to_owned());
    let task = tokio::spawn(async move {
        let mut stream = watcher::watcher(api, cfg).boxed();
        while let Some(ev) = stream.next().await {
            let objs = match ev {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => vec![o],
                _ => continue,
            };
            for o in objs {
                let v = serde_json::to_value(o).expect("route json");
                if let Some(w) = rollgate::core::strategy::read_weights(&v, &primary, &canary) {
                    let mut s = out.lock().expect("lock");
                    if s.last() != Some(&w) {
                        s.push(w);
                    }
                }
            }
        }
    });
    (seen, task)
}

/// The Rollout's status.
pub async fn status(client: &kube::Client, ns: &str, name: &str) -> RolloutStatus {
    let api: Api<Rollout> = Api::namespaced(client.clone(), ns);
    api.get(name)
        .await
        .expect("get rollout")
        .status
        .map(|s| s.status)
        .unwrap_or_default()
}

/// Wait (up to `secs`) until the Rollout's status satisfies `pred`; panics with the last
/// status otherwise.
pub async fn wait_for(
    client: &kube::Client,
    ns: &str,
    name: &str,
    secs: u64,
    what: &str,
    pred: impl Fn(&RolloutStatus) -> bool,
) -> RolloutStatus {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let st = status(client, ns, name).await;
        if pred(&st) {
            return st;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "timed out after {secs}s waiting for {what}; status:\n{}\nevents:\n{:#?}",
                serde_json::to_string_pretty(&st).unwrap_or_default(),
                events(client, ns).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether the Rollout is in `phase`.
pub fn phase_is(phase: Phase) -> impl Fn(&RolloutStatus) -> bool {
    move |s| s.phase == phase
}

/// (reason, reporting instance) of every Event rollgate reported in `ns` (the API server's
/// own controllers report there too, e.g. the ClusterIP allocator's repair loop).
pub async fn event_reporters(client: &kube::Client, ns: &str) -> Vec<(String, String)> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter(|e| e.reporting_controller.as_deref() == Some("rollgate"))
                .map(|e| {
                    (
                        e.reason.unwrap_or_default(),
                        e.reporting_instance.unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The primary was initialised (the status exists: an absent status reads as the
/// default phase, `Initialized`).
pub fn initialized(s: &RolloutStatus) -> bool {
    s.phase == Phase::Initialized && s.primary_revision.is_some()
}

/// (type, reason, note) of every Event in `ns`.
pub async fn events(client: &kube::Client, ns: &str) -> Vec<(String, String, String)> {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .map(|e| {
                    (
                        e.type_.unwrap_or_default(),
                        e.reason.unwrap_or_default(),
                        e.note.unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A condition of the status, if set.
pub fn condition<'a>(
    st: &'a RolloutStatus,
    type_: &str,
) -> Option<&'a rollgate::core::strategy::Condition> {
    st.conditions.iter().find(|c| c.type_ == type_)
}

/// The image of the first container of a Deployment.
pub async fn image(client: &kube::Client, ns: &str, name: &str) -> Option<String> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    api.get_opt(name)
        .await
        .expect("get deployment")?
        .spec?
        .template
        .spec?
        .containers
        .first()?
        .image
        .clone()
}

/// Set the target's image (what Argo CD does after a commit to the environment's file).
pub async fn set_image(client: &kube::Client, ns: &str, name: &str, image: &str) {
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}});
    api.patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .expect("set image");
}

/// The HTTPRoute as JSON.
pub async fn route(client: &kube::Client, ns: &str, name: &str) -> Value {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &httproute_resource());
    serde_json::to_value(api.get(name).await.expect("get route")).expect("json")
}

/// A Deployment `name` (label app=name, container `app`, `image`, 2 replicas).
pub fn deployment_yaml(name: &str, image: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
        - {{name: app, image: "{image}"}}
"#
    )
}

/// An HTTPRoute whose first rule splits between `<name>-primary` and `<name>-canary` and
/// also sends 5% to a mirror Service; a second rule sends `/admin` to the primary only.
pub fn route_yaml(name: &str) -> String {
    format!(
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
    - matches: [{{path: {{type: PathPrefix, value: /}}}}]
      backendRefs:
        - {{name: {name}-primary, port: 80, weight: 100}}
        - {{name: {name}-canary, port: 80, weight: 0}}
        - {{name: {name}-mirror, port: 80, weight: 5}}
    - matches: [{{path: {{type: PathPrefix, value: /admin}}}}]
      backendRefs:
        - {{name: {name}-primary, port: 80}}
"#
    )
}

/// An AnalysisTemplate measuring `query` once (1s interval) and passing on `condition`.
pub fn template_yaml(name: &str, query: &str, condition: &str) -> String {
    format!(
        r#"apiVersion: rollgate.dev/v1alpha1
kind: AnalysisTemplate
metadata: {{name: {name}}}
spec:
  args: [{{name: service}}]
  metrics:
    - name: success-rate
      interval: 1s
      count: 2
      successCondition: "{condition}"
      consecutiveErrorLimit: 0
      provider:
        prometheus:
          query: '{query}'
"#
    )
}

/// A PromotionPolicy for app `name` through dev → staging → prod on `url`.
pub fn policy_yaml(name: &str, url: &str, prod_manual: bool) -> String {
    format!(
        r#"apiVersion: rollgate.dev/v1alpha1
kind: PromotionPolicy
metadata: {{name: {name}}}
spec:
  repository: {{url: "{url}", branch: main}}
  environments:
    - {{name: dev, file: "app/values-dev.yaml", field: image.tag}}
    - {{name: staging, file: "app/values-staging.yaml", field: image.tag}}
    - {{name: prod, file: "app/values-prod.yaml", field: image.tag{}}}
  onFailure: revert
"#,
        if prod_manual {
            ", approval: manual"
        } else {
            ""
        }
    )
}
