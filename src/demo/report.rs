//! The demo's result: the Git history, each environment's weight sequence, the share of
//! traffic the canary received at each step (from Traefik's counters in Prometheus) next
//! to its weight, the failures not injected by the application, and the final versions.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::gitops::Commit;
use super::observe::{Event, WeightPoint};
use super::run::Scene;
use super::traffic::TrafficStats;
use super::{APP, DemoError, ENVIRONMENTS};

/// Seconds after a weight change before the share is measured (Traefik reloads and the
/// counters are scraped within this).
pub const SETTLE_SECONDS: f64 = 4.0;

/// The canary's measured share at one step.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepShare {
    /// The environment.
    pub env: String,
    /// The canary's weight at this step (percent).
    pub weight: u64,
    /// The window measured, in seconds since the start.
    pub from: f64,
    /// End of the window.
    pub to: f64,
    /// Requests Traefik sent to the canary in the window.
    pub canary_requests: f64,
    /// Requests Traefik sent to primary and canary in the window.
    pub total_requests: f64,
    /// The canary's share in percent (absent when nothing was measured).
    pub share: Option<f64>,
}

/// Where an environment ended.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalVersion {
    /// The version its file holds on `main`.
    pub git: Option<String>,
    /// The version its primary Deployment runs.
    pub primary: Option<String>,
}

/// The whole result (`rollgate demo --output json`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Whether the story ran to its end.
    pub completed: bool,
    /// Why not.
    pub error: Option<String>,
    /// Seconds from start to end.
    pub duration_seconds: f64,
    /// `main`'s commits, oldest first.
    pub git: Vec<Commit>,
    /// Branches of the remote (approval branches are deleted once approved).
    pub branches: Vec<String>,
    /// Every distinct (primary, canary) weight pair of each environment's HTTPRoute.
    pub weights: BTreeMap<String, Vec<WeightPoint>>,
    /// The canary's measured share at each canary step.
    pub steps: Vec<StepShare>,
    /// What the traffic generator saw, per environment.
    pub traffic: BTreeMap<String, TrafficStats>,
    /// Where each environment ended.
    pub final_versions: BTreeMap<String, FinalVersion>,
    /// Every event.
    pub events: Vec<Event>,
}

/// Sum the demo up.
pub async fn build(scene: &Scene, error: Option<DemoError>) -> Report {
    let j = &scene.journal;
    // Let the last scrapes land.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let weights = j.weights();
    let mut steps = Vec::new();
    for env in ENVIRONMENTS {
        let seq = weights.get(env.name).cloned().unwrap_or_default();
        for pair in seq.windows(2) {
            let (w, next) = (pair[0], pair[1]);
            if w.canary == 0 || w.primary == 0 {
                continue;
            }
            steps.push(share(scene, env.name, w, next).await);
        }
    }
    let mut final_versions = BTreeMap::new();
    for env in ENVIRONMENTS {
        let st = super::story::state(&scene.client, env.name).await;
        final_versions.insert(
            env.name.to_owned(),
            FinalVersion {
                git: scene.repo.version(env.name).await.ok(),
                primary: st.primary.map(|(v, _)| v),
            },
        );
    }
    let mut git = scene.repo.history().await.unwrap_or_default();
    git.reverse();
    Report {
        completed: error.is_none(),
        error: error.map(|e| e.to_string()),
        duration_seconds: (j.now() * 10.0).round() / 10.0,
        git,
        branches: scene.repo.branches().await.unwrap_or_default(),
        weights,
        steps,
        traffic: scene
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
        final_versions,
        events: j.events(),
    }
}

/// The canary's share between `w` (plus [`SETTLE_SECONDS`]) and `next`.
async fn share(scene: &Scene, env: &str, w: WeightPoint, next: WeightPoint) -> StepShare {
    let from = w.t + SETTLE_SECONDS;
    let to = next.t;
    let window = (to - from).floor().max(1.0);
    let at = next.unix;
    let canary = format!(
        "sum(increase(traefik_service_requests_total{{service=~\"{env}-{APP}-canary-.*\"}}[{window}s]))"
    );
    let total = format!(
        "sum(increase(traefik_service_requests_total{{service=~\"{env}-{APP}-(primary|canary)-.*\"}}[{window}s]))"
    );
    let c = query(&scene.prometheus, &canary, at).await;
    let t = query(&scene.prometheus, &total, at).await;
    let share = match (c, t) {
        (Some(c), Some(t)) if t > 0.0 && to > from => Some((c / t * 1000.0).round() / 10.0),
        _ => None,
    };
    StepShare {
        env: env.to_owned(),
        weight: w.canary,
        from: (from * 10.0).round() / 10.0,
        to,
        canary_requests: c.map_or(0.0, |v| v.round()),
        total_requests: t.map_or(0.0, |v| v.round()),
        share,
    }
}

/// One instant query's single value at `time` (Unix seconds).
async fn query(prometheus: &str, q: &str, time: f64) -> Option<f64> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .ok()?;
    let v: serde_json::Value = client
        .get(format!("{prometheus}/api/v1/query"))
        .query(&[("query", q), ("time", &format!("{time:.3}"))])
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v.pointer("/data/result/0/value/1")?.as_str()?.parse().ok()
}

/// The report as text.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n== rollgate demo: {} in {:.0}s",
        if r.completed {
            "the story ran to its end".to_owned()
        } else {
            format!("stopped: {}", r.error.as_deref().unwrap_or("?"))
        },
        r.duration_seconds
    );
    let _ = writeln!(out, "\nfinal versions (Git main / primary Deployment):");
    for (env, v) in &r.final_versions {
        let _ = writeln!(
            out,
            "  {env:<8} {} / {}",
            v.git.as_deref().unwrap_or("-"),
            v.primary.as_deref().unwrap_or("-")
        );
    }
    let _ = writeln!(out, "\nGit history of main (oldest first):");
    for c in &r.git {
        let _ = writeln!(
            out,
            "  {} {:<16} {}",
            c.sha.get(..10).unwrap_or(&c.sha),
            c.author,
            c.subject
        );
        for (k, v) in &c.trailers {
            let _ = writeln!(out, "  {:>27} {k}: {v}", "");
        }
    }
    let _ = writeln!(out, "\nHTTPRoute weights (primary/canary) as watched:");
    for (env, seq) in &r.weights {
        let s: Vec<String> = seq
            .iter()
            .map(|w| format!("{}/{}", w.primary, w.canary))
            .collect();
        let _ = writeln!(out, "  {env:<8} {}", s.join(" → "));
    }
    let _ = writeln!(
        out,
        "\ncanary share of traffic per step (Traefik's counters in Prometheus):"
    );
    for s in &r.steps {
        let _ = writeln!(
            out,
            "  {:<8} weight {:>3}%  measured {:>6}  ({} of {} requests, {:.0}s-{:.0}s)",
            s.env,
            s.weight,
            s.share.map_or("-".to_owned(), |v| format!("{v:.1}%")),
            s.canary_requests,
            s.total_requests,
            s.from,
            s.to
        );
    }
    let _ = writeln!(out, "\ntraffic:");
    for (env, t) in &r.traffic {
        let _ = writeln!(
            out,
            "  {env:<8} sent {:>5}  ok {:?}  injected errors {:?}  failed, not injected: {}",
            t.sent, t.ok_by_version, t.injected_by_version, t.failed_not_injected
        );
        for (at, f) in &t.failures {
            let _ = writeln!(out, "           at {at:.1}s: {f}");
        }
    }
    out
}
