//! `rollgate demo`: the whole dev → staging → prod story on one machine, on real parts.
//!
//! A real kube-apiserver (three namespaces standing in for the dev, staging and prod
//! clusters) with one `rollgate controller` process per environment; Traefik as the
//! Gateway API data plane; versions of a small application of ours run as local
//! processes ([`app`]), with a stand-in for kubelet and the EndpointSlice controller
//! ([`kubelet`]); a real Prometheus scraping Traefik and the application; a traffic
//! generator ([`traffic`]); a bare Git remote with `application-x/values-<env>.yaml` and a
//! sync loop standing in for Argo CD ([`gitops`]).
//!
//! [`story`] tells the story (v2 goes through with an approval before prod; v3 is caught
//! in staging and reverted), [`observe`] watches it, [`view`] shows it live and
//! [`report`] sums it up as text or one JSON document. Everything runs in a private
//! network namespace ([`netns`]).

pub mod app;
pub mod cluster;
pub mod gitops;
pub mod kubelet;
pub mod manifests;
pub mod netns;
pub mod observe;
pub mod procs;
pub mod report;
pub mod run;
pub mod story;
pub mod traffic;
pub mod view;

use std::path::PathBuf;
use std::time::Duration;

/// The Deployment (and Rollout, HTTPRoute) name in every environment.
pub const APP: &str = "app";
/// The application, its PromotionPolicy and its folder in the deploy repository.
pub const POLICY: &str = "application-x";
/// The image repository; the tag is the version.
pub const IMAGE: &str = "demo/application-x";
/// Traefik's `web` entry point and the Gateway's listener port.
pub const GATEWAY_PORT: u16 = 8000;
/// Traefik's metrics entry point.
pub const TRAEFIK_METRICS_PORT: u16 = 8082;
/// Prometheus.
pub const PROMETHEUS_PORT: u16 = 9090;
/// The first controller's HTTP port (one per environment after it).
pub const CONTROLLER_PORT: u16 = 8181;

/// One environment of the story: its canary steps and how strict its check is.
#[derive(Debug, Clone, Copy)]
pub struct Environment {
    /// Name (also the namespace and the controller's `--env`).
    pub name: &'static str,
    /// The canary weights, each followed by a pause and an analysis.
    pub weights: &'static [u8],
    /// Seconds of each pause.
    pub pause_seconds: u32,
    /// Measurements per analysis (2 s apart).
    pub measurements: u32,
    /// The success rate the canary needs (0..1).
    pub min_success_rate: f64,
    /// Whether entering this environment waits for `rollgate approve`.
    pub manual_approval: bool,
}

/// dev (quick and lenient), staging and prod (strict), prod behind an approval.
pub const ENVIRONMENTS: &[Environment] = &[
    Environment {
        name: "dev",
        weights: &[20, 50],
        pause_seconds: 8,
        measurements: 1,
        min_success_rate: 0.9,
        manual_approval: false,
    },
    Environment {
        name: "staging",
        weights: &[20, 50],
        pause_seconds: 10,
        measurements: 2,
        min_success_rate: 0.99,
        manual_approval: false,
    },
    Environment {
        name: "prod",
        weights: &[20, 50],
        pause_seconds: 10,
        measurements: 2,
        min_success_rate: 0.99,
        manual_approval: true,
    },
];

/// How a version behaves.
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    /// Every n-th request fails (0: never).
    pub error_every: u64,
    /// Time per request.
    pub latency: Duration,
}

/// The story's versions: v1 and v2 healthy, v3 fails 5 % of its requests.
pub fn behaviour(version: &str) -> Behaviour {
    match version {
        "v3" => Behaviour {
            error_every: 20,
            latency: Duration::from_millis(9),
        },
        "v1" => Behaviour {
            error_every: 0,
            latency: Duration::from_millis(8),
        },
        _ => Behaviour {
            error_every: 0,
            latency: Duration::from_millis(6),
        },
    }
}

/// Why the demo could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A tool or binary the demo needs is not installed or built.
    #[error("{what} is missing: {hint}")]
    Missing {
        /// What is missing.
        what: String,
        /// How to get it.
        hint: String,
    },
    /// A program could not be started.
    #[error("cannot start {what}: {source}")]
    Spawn {
        /// The program.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A command or server failed.
    #[error("{what} failed: {detail}")]
    Command {
        /// The command.
        what: String,
        /// Its output or error.
        detail: String,
    },
    /// Something did not happen in time.
    #[error("timed out waiting for {what}\n{state}")]
    Timeout {
        /// What the demo waited for.
        what: String,
        /// The state when it gave up.
        state: String,
    },
    /// A file could not be written or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The Kubernetes API failed.
    #[error("{what}: {source}")]
    Api {
        /// The call.
        what: String,
        /// The client error.
        source: kube::Error,
    },
    /// The story went off its script.
    #[error("{0}")]
    Story(String),
}
