//! Rig for the controller's webhook and notification tests: a real HTTP server on
//! 127.0.0.1 whose answer (status, delay) can be switched while a rollout runs, a
//! controller started in-process with a chosen [`Config`] and a [`Telemetry`] the test can
//! read, and a sampler of a Rollout's status over time.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;
use rollgate::controller::{Config, Telemetry};
use rollgate::core::strategy::RolloutStatus;
use tokio::sync::watch;

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Request {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: std::time::Instant,
}

impl Request {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

#[derive(Clone)]
struct Shared {
    answer: Arc<Mutex<(u16, Duration, String)>>,
    seen: Arc<Mutex<Vec<Request>>>,
}

/// A server answering every request with the current (status, delay, body).
pub struct Switch {
    pub url: String,
    answer: Arc<Mutex<(u16, Duration, String)>>,
    seen: Arc<Mutex<Vec<Request>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Switch {
    /// Start answering `status` after `delay`.
    pub async fn start(status: u16, delay: Duration, body: &str) -> Switch {
        let answer = Arc::new(Mutex::new((status, delay, body.to_owned())));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            answer: answer.clone(),
            seen: seen.clone(),
        };
        let app = Router::new().fallback(any(handle)).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Switch {
            url: format!("http://{addr}/hook"),
            answer,
            seen,
            task,
        }
    }

    /// Answer `status` (without delay) from now on.
    pub fn set(&self, status: u16, body: &str) {
        *self.answer.lock().expect("lock") = (status, Duration::ZERO, body.to_owned());
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Request> {
        self.seen.lock().expect("lock").clone()
    }

    /// Wait up to `secs` until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<Request> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let seen = self.seen();
            if seen.len() >= n || tokio::time::Instant::now() > deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    s.seen.lock().expect("lock").push(Request {
        headers,
        body,
        at: std::time::Instant::now(),
    });
    let (status, delay, text) = s.answer.lock().expect("lock").clone();
    tokio::time::sleep(delay).await;
    (StatusCode::from_u16(status).expect("valid status"), text)
}

/// An address on loopback where nothing listens (bound, then closed).
pub async fn dead_url() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}/hook")
}

/// A controller running in this process with `config`; aborted on drop.
pub struct Controller {
    pub telemetry: Telemetry,
    task: tokio::task::JoinHandle<()>,
}

impl Controller {
    pub fn start(client: kube::Client, config: Config) -> Controller {
        let telemetry = Telemetry::new();
        let t = telemetry.clone();
        let (leader_tx, leader) = watch::channel(true);
        let task = tokio::spawn(async move {
            let _keep = leader_tx;
            rollgate::controller::run(client, config, leader, t, std::future::pending()).await;
        });
        Controller { telemetry, task }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Samples a Rollout's status every 100 ms in the background.
pub struct Sampler {
    seen: Arc<Mutex<Vec<RolloutStatus>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    pub fn start(client: kube::Client, ns: &str, name: &str) -> Sampler {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let out = seen.clone();
        let api: kube::Api<rollgate::k8s::Rollout> = kube::Api::namespaced(client, ns);
        let name = name.to_owned();
        let task = tokio::spawn(async move {
            loop {
                if let Ok(Some(r)) = api.get_opt(&name).await
                    && let Some(s) = r.status
                {
                    out.lock().expect("lock").push(s.status);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Sampler { seen, task }
    }

    /// Every status sampled so far.
    pub fn all(&self) -> Vec<RolloutStatus> {
        self.seen.lock().expect("lock").clone()
    }

    /// The highest canary weight sampled.
    pub fn max_weight(&self) -> u8 {
        self.all()
            .iter()
            .map(|s| s.canary_weight)
            .max()
            .unwrap_or(0)
    }

    /// The highest failed-check count sampled.
    pub fn max_failed_checks(&self) -> u32 {
        self.all()
            .iter()
            .map(|s| s.failed_checks)
            .max()
            .unwrap_or(0)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}
