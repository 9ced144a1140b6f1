//! What the demo sees: a journal of timestamped events (also written as JSON lines to the
//! event log), the current state per environment for the live view, and watches on the
//! HTTPRoutes (every distinct weight pair, in order), the Rollouts and the AnalysisRuns.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher;
use serde::Serialize;

use super::{APP, ENVIRONMENTS};
use crate::controller::conditions;
use crate::core::strategy::read_weights;
use crate::k8s::{AnalysisRun, Rollout};
use crate::traffic::httproute::httproute_resource;

/// One thing that happened.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Seconds since the demo started.
    pub t: f64,
    /// Wall-clock time (RFC 3339).
    pub at: String,
    /// The environment (`dev`, `staging`, `prod`) or `demo`.
    pub env: String,
    /// What kind of thing (`weights`, `rollout`, `analysis`, `git`, `sync`, `pod`, ...).
    pub kind: String,
    /// What happened.
    pub message: String,
}

/// One weight pair the route showed.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct WeightPoint {
    /// Seconds since the demo started.
    pub t: f64,
    /// Unix time in seconds (for Prometheus queries).
    #[serde(skip)]
    pub unix: f64,
    /// The primary's weight.
    pub primary: u64,
    /// The canary's weight.
    pub canary: u64,
}

/// The live view of one environment.
#[derive(Debug, Clone, Default)]
pub struct EnvView {
    /// Rollout phase.
    pub phase: String,
    /// Current step index.
    pub step: Option<u32>,
    /// Versions on the primary and the target (canary) Deployments.
    pub primary_version: String,
    /// The target's version.
    pub canary_version: String,
    /// Latest weights.
    pub weights: Option<(u64, u64)>,
    /// Latest analysis run and its measurements.
    pub analysis: String,
    /// The Git condition's message.
    pub git: String,
}

#[derive(Default)]
struct Inner {
    events: Vec<Event>,
    envs: BTreeMap<String, EnvView>,
    weights: BTreeMap<String, Vec<WeightPoint>>,
}

/// How the journal echoes events as they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// Not at all (the live view shows them).
    Quiet,
    /// One line per event on stdout.
    Stdout,
    /// One line per event on stderr (stdout is for the JSON document).
    Stderr,
}

/// The journal, shared by every part of the demo.
pub struct Journal {
    started: Instant,
    inner: Mutex<Inner>,
    log: Mutex<Option<std::fs::File>>,
    echo: Echo,
}

impl Journal {
    /// A journal writing JSON lines to `log`.
    pub fn new(log: Option<std::fs::File>, echo: Echo) -> Arc<Self> {
        Arc::new(Self {
            started: Instant::now(),
            inner: Mutex::new(Inner::default()),
            log: Mutex::new(log),
            echo,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// When the demo started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Seconds since the start.
    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Record an event.
    pub fn event(&self, env: &str, kind: &str, message: &str) {
        let e = Event {
            t: (self.now() * 10.0).round() / 10.0,
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            env: env.to_owned(),
            kind: kind.to_owned(),
            message: message.to_owned(),
        };
        if let Ok(line) = serde_json::to_string(&e)
            && let Some(f) = self
                .log
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_mut()
        {
            let _ = writeln!(f, "{line}");
        }
        let text = format!("{:>6.1}s {:<8} {:<9} {}", e.t, e.env, e.kind, e.message);
        match self.echo {
            Echo::Quiet => {}
            Echo::Stdout => println!("{text}"),
            Echo::Stderr => eprintln!("{text}"),
        }
        self.lock().events.push(e);
    }

    /// Update the view of `env`.
    pub fn update(&self, env: &str, f: impl FnOnce(&mut EnvView)) {
        f(self.lock().envs.entry(env.to_owned()).or_default());
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.clone()
    }

    /// Whether an event of `env` and `kind` whose message starts with `prefix` happened.
    pub fn saw(&self, env: &str, kind: &str, prefix: &str) -> bool {
        self.lock()
            .events
            .iter()
            .any(|e| e.env == env && e.kind == kind && e.message.starts_with(prefix))
    }

    /// The view of every environment.
    pub fn envs(&self) -> BTreeMap<String, EnvView> {
        self.lock().envs.clone()
    }

    /// Every weight pair each route showed, in order.
    pub fn weights(&self) -> BTreeMap<String, Vec<WeightPoint>> {
        self.lock().weights.clone()
    }

    fn weight(&self, env: &str, primary: u64, canary: u64) -> bool {
        let unix = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
        let t = (self.now() * 10.0).round() / 10.0;
        let mut inner = self.lock();
        let seq = inner.weights.entry(env.to_owned()).or_default();
        if seq
            .last()
            .is_some_and(|w| w.primary == primary && w.canary == canary)
        {
            return false;
        }
        seq.push(WeightPoint {
            t,
            unix,
            primary,
            canary,
        });
        inner.envs.entry(env.to_owned()).or_default().weights = Some((primary, canary));
        true
    }
}

/// Watch every environment's HTTPRoute and record each distinct weight pair.
pub async fn watch_routes(client: kube::Client, journal: Arc<Journal>) {
    let tasks = ENVIRONMENTS.iter().map(|env| {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), env.name, &httproute_resource());
        let cfg = watcher::Config::default().fields(&format!("metadata.name={APP}"));
        let journal = journal.clone();
        async move {
            let mut stream = watcher::watcher(api, cfg).boxed();
            while let Some(ev) = stream.next().await {
                let o = match ev {
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => o,
                    _ => continue,
                };
                let Ok(v) = serde_json::to_value(o) else {
                    continue;
                };
                if let Some((p, c)) =
                    read_weights(&v, &format!("{APP}-primary"), &format!("{APP}-canary"))
                    && journal.weight(env.name, p, c)
                {
                    journal.event(env.name, "weights", &format!("primary {p}% / canary {c}%"));
                }
            }
        }
    });
    futures::future::join_all(tasks).await;
}

/// Watch the Rollouts: phase and step changes, the Git condition.
pub async fn watch_rollouts(client: kube::Client, journal: Arc<Journal>) {
    let api: Api<Rollout> = Api::all(client);
    let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
    let mut last: BTreeMap<String, (String, String)> = BTreeMap::new();
    while let Some(ev) = stream.next().await {
        let r = match ev {
            Ok(watcher::Event::Apply(r) | watcher::Event::InitApply(r)) => r,
            _ => continue,
        };
        let env = r.metadata.namespace.clone().unwrap_or_default();
        let Some(st) = r.status.map(|s| s.status) else {
            continue;
        };
        let phase = st.phase.as_str().to_owned();
        let git = st
            .conditions
            .iter()
            .find(|c| c.type_ == conditions::GIT_PROMOTION)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        journal.update(&env, |v| {
            v.phase.clone_from(&phase);
            v.step = st.current_step_index;
            v.git.clone_from(&git);
        });
        let prev = last.entry(env.clone()).or_default();
        if prev.0 != phase {
            let msg = st.message.clone().unwrap_or_default();
            journal.event(&env, "rollout", &format!("{phase}: {msg}"));
            prev.0.clone_from(&phase);
        }
        if prev.1 != git && !git.is_empty() {
            journal.event(&env, "git", &git);
            prev.1 = git;
        }
    }
}

/// Watch the AnalysisRuns: each new measurement and each finished run.
pub async fn watch_runs(client: kube::Client, journal: Arc<Journal>) {
    let api: Api<AnalysisRun> = Api::all(client);
    let mut stream = watcher::watcher(api, watcher::Config::default()).boxed();
    let mut seen: BTreeMap<String, (usize, String)> = BTreeMap::new();
    while let Some(ev) = stream.next().await {
        let run = match ev {
            Ok(watcher::Event::Apply(r) | watcher::Event::InitApply(r)) => r,
            _ => continue,
        };
        let env = run.metadata.namespace.clone().unwrap_or_default();
        let name = run.metadata.name.clone().unwrap_or_default();
        let Some(st) = run.status else { continue };
        let values: Vec<String> = st
            .metric_results
            .iter()
            .flat_map(|m| m.measurements.iter())
            .map(|m| format!("{} {}", m.value, m.phase.as_str()))
            .collect();
        let phase = st.phase.as_str().to_owned();
        let key = format!("{env}/{name}");
        let prev = seen.entry(key).or_default();
        if prev.0 == values.len() && prev.1 == phase {
            continue;
        }
        *prev = (values.len(), phase.clone());
        let text = format!(
            "{name}: {phase} [{}]{}",
            values.join(", "),
            if st.message.is_empty() {
                String::new()
            } else {
                format!(" {}", st.message)
            }
        );
        journal.update(&env, |v| v.analysis.clone_from(&text));
        journal.event(&env, "analysis", &text);
    }
}
