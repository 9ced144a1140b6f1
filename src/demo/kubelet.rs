//! A stand-in for kubelet, the Deployment controller and the EndpointSlice controller
//! (no kubelet runs in the demo): for every Deployment of the demo's namespaces it runs one
//! `rollgate demo-app` process with the version of the Deployment's image tag (none when
//! scaled to zero), reports the Deployment ready once that process has served for a
//! moment, and writes EndpointSlices for every Service whose selector matches the
//! process's pod labels.
//!
//! Make-before-break, as a rolling update with a termination grace period: a new process
//! is started and put into the EndpointSlices before the old one leaves them, and the old
//! one keeps serving for [`TERMINATION_GRACE`] after it left, while Traefik reloads. So no
//! request fails because of a switch itself.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;

use super::netns::DEMO_IP;
use super::observe::Journal;
use super::procs::Proc;
use super::{ENVIRONMENTS, behaviour};
use crate::controller::workload::image_tag;

/// How long a replaced or scaled-down process keeps serving after it left the
/// EndpointSlices (Traefik reloads within about 3 s).
pub const TERMINATION_GRACE: Duration = Duration::from_secs(8);
/// How long a new process serves in the EndpointSlices before its Deployment is reported
/// ready (a readiness delay: the data plane has picked it up before traffic is shifted).
pub const READY_DELAY: Duration = Duration::from_millis(3500);
/// The label on the EndpointSlices the demo writes.
pub const MANAGED_BY: &str = "rollgate-demo";
const TICK: Duration = Duration::from_millis(250);

/// One running version process ("pod").
struct Pod {
    ns: String,
    deployment: String,
    name: String,
    version: String,
    labels: BTreeMap<String, String>,
    port: u16,
    proc: Proc,
    serving_since: Option<Instant>,
}

impl Pod {
    fn matches(&self, want: &Want) -> bool {
        self.version == want.version && self.labels == want.labels
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Want {
    version: String,
    labels: BTreeMap<String, String>,
}

/// One EndpointSlice: Service, pod, port name and port.
type Slice = (String, String, String, u16);

/// The stand-in's state.
pub struct Kubelet {
    client: kube::Client,
    exe: PathBuf,
    logs: PathBuf,
    targets: PathBuf,
    journal: Arc<Journal>,
    next_port: u16,
    next_pod: u32,
    pods: HashMap<(String, String), Pod>,
    starting: HashMap<(String, String), Pod>,
    terminating: Vec<(Pod, Instant)>,
    slices: HashMap<String, BTreeSet<Slice>>,
    targets_written: String,
}

impl Kubelet {
    /// A stand-in that starts `exe demo-app`, logs to `logs` and keeps Prometheus'
    /// file-based service discovery in `targets` up to date.
    pub fn new(
        client: kube::Client,
        exe: PathBuf,
        logs: PathBuf,
        targets: PathBuf,
        journal: Arc<Journal>,
    ) -> Self {
        Self {
            client,
            exe,
            logs,
            targets,
            journal,
            next_port: 20000,
            next_pod: 0,
            pods: HashMap::new(),
            starting: HashMap::new(),
            terminating: Vec::new(),
            slices: HashMap::new(),
            targets_written: String::new(),
        }
    }

    /// Run until the task is dropped (which kills every process it started).
    pub async fn run(mut self) {
        loop {
            for env in ENVIRONMENTS {
                if let Err(e) = self.tick(env.name).await {
                    tracing::debug!(env = env.name, error = %e, "kubelet stand-in");
                }
            }
            self.reap().await;
            self.write_targets();
            tokio::time::sleep(TICK).await;
        }
    }

    async fn tick(&mut self, ns: &str) -> Result<(), kube::Error> {
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        let list = deployments.list(&ListParams::default()).await?;
        for d in &list.items {
            let name = d.metadata.name.clone().unwrap_or_default();
            let key = (ns.to_owned(), name.clone());
            let spec = d.spec.as_ref();
            let replicas = spec.and_then(|s| s.replicas).unwrap_or(1);
            let want = (replicas > 0).then(|| Want {
                version: image_tag(d).unwrap_or_else(|| "unknown".to_owned()),
                labels: spec
                    .and_then(|s| s.template.metadata.as_ref())
                    .and_then(|m| m.labels.clone())
                    .unwrap_or_default(),
            });
            self.converge(&key, want.as_ref()).await;
            self.report(&deployments, d, want.as_ref()).await?;
        }
        self.endpoints(ns).await
    }

    /// Start, swap or stop the process of one Deployment.
    async fn converge(&mut self, key: &(String, String), want: Option<&Want>) {
        let Some(want) = want else {
            if let Some(p) = self.starting.remove(key) {
                p.proc.stop(Duration::from_millis(200)).await;
            }
            if let Some(p) = self.pods.remove(key) {
                self.journal.event(
                    &key.0,
                    "pod",
                    &format!("{} {} stops (scaled to zero)", key.1, p.version),
                );
                self.terminating
                    .push((p, Instant::now() + TERMINATION_GRACE));
            }
            return;
        };
        if self.pods.get(key).is_some_and(|p| p.matches(want)) {
            if let Some(p) = self.starting.remove(key) {
                p.proc.stop(Duration::from_millis(200)).await;
            }
            return;
        }
        let stale = self.starting.get(key).is_some_and(|p| !p.matches(want));
        if stale && let Some(p) = self.starting.remove(key) {
            p.proc.stop(Duration::from_millis(200)).await;
        }
        if !self.starting.contains_key(key) {
            match self.spawn(key, want) {
                Ok(p) => {
                    self.starting.insert(key.clone(), p);
                }
                Err(e) => {
                    self.journal
                        .event(&key.0, "error", &format!("{}: {e}", key.1));
                    return;
                }
            }
        }
        let healthy = match self.starting.get(key) {
            Some(p) => tokio::time::timeout(
                Duration::from_millis(300),
                tokio::net::TcpStream::connect((DEMO_IP, p.port)),
            )
            .await
            .is_ok_and(|r| r.is_ok()),
            None => false,
        };
        if healthy && let Some(mut p) = self.starting.remove(key) {
            p.serving_since = Some(Instant::now());
            self.journal.event(
                &key.0,
                "pod",
                &format!("{} {} serving on port {}", key.1, p.version, p.port),
            );
            if let Some(old) = self.pods.insert(key.clone(), p) {
                self.terminating
                    .push((old, Instant::now() + TERMINATION_GRACE));
            }
        }
    }

    fn spawn(&mut self, key: &(String, String), want: &Want) -> Result<Pod, super::DemoError> {
        let port = self.next_port;
        self.next_port = self.next_port.wrapping_add(1);
        self.next_pod += 1;
        let name = format!("{}-{}-{}", key.1, want.version, self.next_pod);
        let b = behaviour(&want.version);
        let proc = Proc::spawn(
            &format!("{} {}", key.0, name),
            &self.logs,
            &format!("app-{}-{name}", key.0),
            &self.exe,
            &[
                "demo-app".into(),
                "--version".into(),
                want.version.clone(),
                "--listen".into(),
                format!("{DEMO_IP}:{port}"),
                "--error-every".into(),
                b.error_every.to_string(),
                "--latency-ms".into(),
                b.latency.as_millis().to_string(),
            ],
            &[],
        )?;
        Ok(Pod {
            ns: key.0.clone(),
            deployment: key.1.clone(),
            name,
            version: want.version.clone(),
            labels: want.labels.clone(),
            port,
            proc,
            serving_since: None,
        })
    }

    /// Write the Deployment's status the way the Deployment controller would.
    async fn report(
        &self,
        api: &Api<Deployment>,
        d: &Deployment,
        want: Option<&Want>,
    ) -> Result<(), kube::Error> {
        let name = d.metadata.name.clone().unwrap_or_default();
        let generation = d.metadata.generation.unwrap_or(0);
        let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let ready = match want {
            None => true,
            Some(w) => self.pods.get(&(api_ns(d), name.clone())).is_some_and(|p| {
                p.matches(w) && p.serving_since.is_some_and(|t| t.elapsed() >= READY_DELAY)
            }),
        };
        if !ready {
            return Ok(());
        }
        let st = d.status.clone().unwrap_or_default();
        if st.observed_generation == Some(generation)
            && st.replicas.unwrap_or(0) == replicas
            && st.available_replicas.unwrap_or(0) == replicas
            && st.updated_replicas.unwrap_or(0) == replicas
        {
            return Ok(());
        }
        let status = json!({"status": {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
        }});
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
            .await?;
        Ok(())
    }

    /// EndpointSlices: one per (Service, serving pod whose labels match its selector).
    async fn endpoints(&mut self, ns: &str) -> Result<(), kube::Error> {
        let services: Api<Service> = Api::namespaced(self.client.clone(), ns);
        let mut want: BTreeSet<Slice> = BTreeSet::new();
        for svc in services.list(&ListParams::default()).await?.items {
            let name = svc.metadata.name.clone().unwrap_or_default();
            let Some(spec) = svc.spec else { continue };
            let Some(selector) = spec.selector.filter(|s| !s.is_empty()) else {
                continue;
            };
            let port_name = spec
                .ports
                .as_ref()
                .and_then(|p| p.first())
                .and_then(|p| p.name.clone())
                .unwrap_or_default();
            for ((pns, _), pod) in &self.pods {
                if pns == ns && selector.iter().all(|(k, v)| pod.labels.get(k) == Some(v)) {
                    want.insert((name.clone(), pod.name.clone(), port_name.clone(), pod.port));
                }
            }
        }
        let have = self.slices.get(ns).cloned().unwrap_or_default();
        if have == want {
            return Ok(());
        }
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
        for (svc, pod, port_name, port) in want.difference(&have) {
            let slice = json!({
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": format!("{svc}-{pod}"),
                    "labels": {
                        "kubernetes.io/service-name": svc,
                        "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
                    },
                },
                "addressType": "IPv4",
                "endpoints": [{
                    "addresses": [DEMO_IP.to_string()],
                    "conditions": {"ready": true, "serving": true, "terminating": false},
                    "targetRef": {"kind": "Pod", "name": pod, "namespace": ns},
                }],
                "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
            });
            api.patch(
                &format!("{svc}-{pod}"),
                &PatchParams::apply(MANAGED_BY).force(),
                &Patch::Apply(slice),
            )
            .await?;
            self.journal.event(
                ns,
                "endpoints",
                &format!("Service {svc} + {pod} ({DEMO_IP}:{port})"),
            );
        }
        for (svc, pod, _, _) in have.difference(&want) {
            match api
                .delete(&format!("{svc}-{pod}"), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
            self.journal
                .event(ns, "endpoints", &format!("Service {svc} - {pod}"));
        }
        self.slices.insert(ns.to_owned(), want);
        Ok(())
    }

    /// Stop the processes whose grace period is over.
    async fn reap(&mut self) {
        let now = Instant::now();
        let (done, keep): (Vec<_>, Vec<_>) =
            self.terminating.drain(..).partition(|(_, at)| *at <= now);
        self.terminating = keep;
        for (p, _) in done {
            p.proc.stop(Duration::from_millis(500)).await;
        }
    }

    /// Prometheus' file-based service discovery: every running version process.
    fn write_targets(&mut self) {
        let mut targets: Vec<serde_json::Value> = self
            .pods
            .values()
            .chain(self.terminating.iter().map(|(p, _)| p))
            .map(|p| {
                json!({
                    "targets": [format!("{DEMO_IP}:{}", p.port)],
                    "labels": {"namespace": p.ns, "deployment": p.deployment, "pod": p.name, "version": p.version},
                })
            })
            .collect();
        targets.sort_by_key(|t| t.to_string());
        let text = serde_json::Value::Array(targets).to_string();
        if text != self.targets_written {
            let tmp = self.targets.with_extension("tmp");
            if std::fs::write(&tmp, &text).is_ok() && std::fs::rename(&tmp, &self.targets).is_ok() {
                self.targets_written = text;
            }
        }
    }
}

fn api_ns(d: &Deployment) -> String {
    d.metadata.namespace.clone().unwrap_or_default()
}
