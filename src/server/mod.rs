//! The controller's HTTP server (axum): health, readiness, metrics, and an authenticated
//! API for rollout status and manual approvals.
//!
//! | route | auth | answer |
//! |---|---|---|
//! | `GET /healthz` | none | `200 ok` while the process serves |
//! | `GET /readyz` | none | `200 ready` once [`Readiness::caches_synced`], `503` before and during shutdown |
//! | `GET /metrics` | none | OpenMetrics text of [`Telemetry`] |
//! | `GET /api/v1/rollouts/{namespace}/{name}` | bearer, `get rollouts` | the Rollout's status |
//! | `POST /api/v1/approvals` | bearer, `approve promotionpolicies` | lands a pending promotion |
//!
//! The bearer token is checked with a `TokenReview` and the permission with a
//! `SubjectAccessReview`, both by the API server (see [`auth`]). Errors are JSON
//! `{"error": "..."}`; `401` carries `WWW-Authenticate: Bearer`.
//!
//! [`serve`] takes its listener and its shutdown signal as arguments, so tests bind
//! `127.0.0.1:0` and stop it when they like.
//!
//! # Wiring the controller process
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use rollgate::leader::{LeaderElection, LeaseConfig, default_identity};
//! use rollgate::server::{ServerState, serve};
//! use rollgate::shutdown::Shutdown;
//! use rollgate::telemetry::Telemetry;
//!
//! let client = kube::Client::try_default().await?;
//! let shutdown = Shutdown::new();
//! shutdown.listen_for_signals()?; // SIGTERM / SIGINT
//! let telemetry = Telemetry::new();
//! let lease = LeaseConfig::new("rollgate-system", "rollgate-controller", &default_identity());
//! let election = LeaderElection::new(client.clone(), lease)?.with_telemetry(telemetry.clone());
//! let leader = election.subscribe(); // the reconcilers act only while it reads true
//! let election = tokio::spawn(election.run(shutdown.wait()));
//!
//! let mut state = ServerState::new(client.clone(), telemetry.clone());
//! state.config.drain_delay = Duration::from_secs(5);
//! let readiness = state.readiness.clone(); // caches_synced() once the reflectors are ready
//! let approvals = state.approvals.clone(); // insert() each PromotionPolicy with its Promoter
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! let http = tokio::spawn(serve(listener, state, shutdown.wait()));
//!
//! // ... run the reconcilers with `leader`, `telemetry`, `readiness`, `approvals` and
//! // `shutdown.wait()` ...
//! # drop((leader, readiness, approvals));
//! shutdown.wait().await;
//! election.await?; // stopped acting, Lease released
//! http.await??; // in-flight requests answered
//! # Ok(()) }
//! ```

pub mod api;
pub mod auth;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;

pub use api::{ApprovalRequest, ApprovalTarget, Approvals, ErrorBody, RolloutStatusResponse};
pub use auth::{AuthError, BearerToken, Caller, KubeAuth, Permission};

use crate::telemetry::{OPENMETRICS_CONTENT_TYPE, Telemetry};

/// Route templates (also the `route` label of `rollgate_http_requests_total`).
pub mod routes {
    /// Liveness.
    pub const HEALTHZ: &str = "/healthz";
    /// Readiness.
    pub const READYZ: &str = "/readyz";
    /// Metrics.
    pub const METRICS: &str = "/metrics";
    /// Status of one Rollout.
    pub const ROLLOUT: &str = "/api/v1/rollouts/{namespace}/{name}";
    /// Approvals.
    pub const APPROVALS: &str = "/api/v1/approvals";
    /// Any path that matched no route.
    pub const UNMATCHED: &str = "unmatched";
    /// Every route template, in a stable order.
    pub const ALL: [&str; 5] = [HEALTHZ, READYZ, METRICS, ROLLOUT, APPROVALS];
}

/// Whether the controller is ready for traffic: its caches are synced and it is not
/// shutting down. Cheap to clone (shared). Leadership does not enter into it: a follower
/// serves the API and metrics as well as the leader.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    synced: Arc<AtomicBool>,
    stopping: Arc<AtomicBool>,
}

impl Readiness {
    /// Not ready: caches not synced yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The controller's caches (reflectors) have synced: ready, unless shutting down.
    pub fn caches_synced(&self) {
        self.synced.store(true, Ordering::SeqCst);
    }

    /// Shutdown has begun: not ready from now on, for good.
    pub fn shutting_down(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// Ready: synced and not shutting down.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.synced.load(Ordering::SeqCst) && !self.stopping.load(Ordering::SeqCst)
    }

    /// Why not ready, or `None` when ready.
    #[must_use]
    pub fn why_not(&self) -> Option<&'static str> {
        if self.stopping.load(Ordering::SeqCst) {
            Some("shutting down")
        } else if !self.synced.load(Ordering::SeqCst) {
            Some("caches not synced")
        } else {
            None
        }
    }
}

/// Settings of the server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Bound of each API server call the API makes (reading a Rollout).
    pub api_timeout: Duration,
    /// How long [`serve`] keeps answering (with `/readyz` at 503) after the shutdown
    /// signal, so load balancers and the kubelet see "not ready" before the socket
    /// closes. Zero in tests.
    pub drain_delay: Duration,
}

impl Default for ServerConfig {
    /// 5 s API timeout, no drain delay.
    fn default() -> Self {
        Self {
            api_timeout: Duration::from_secs(5),
            drain_delay: Duration::ZERO,
        }
    }
}

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct ServerState {
    /// The metrics registry `/metrics` renders (also counts HTTP requests).
    pub telemetry: Telemetry,
    /// What `/readyz` reports.
    pub readiness: Readiness,
    /// Token and permission checks.
    pub auth: KubeAuth,
    /// The client the API reads Rollouts with (the controller's identity).
    pub client: kube::Client,
    /// Policies approvals can be made for.
    pub approvals: Approvals,
    /// Timeouts and drain delay.
    pub config: ServerConfig,
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerState")
            .field("readiness", &self.readiness)
            .field("auth", &self.auth)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ServerState {
    /// State over `client`: [`KubeAuth::new`] with it, not ready, no policies, default
    /// config. Adjust the public fields as needed.
    #[must_use]
    pub fn new(client: kube::Client, telemetry: Telemetry) -> Self {
        Self {
            telemetry,
            readiness: Readiness::new(),
            auth: KubeAuth::new(client.clone()),
            client,
            approvals: Approvals::new(),
            config: ServerConfig::default(),
        }
    }
}

/// Errors of [`serve`].
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Accepting or serving connections failed.
    #[error("HTTP server: {0}")]
    Io(#[from] std::io::Error),
}

/// The router with every route, for [`serve`] or for `tower::ServiceExt::oneshot` in
/// tests.
pub fn router(state: ServerState) -> Router {
    Router::new()
        .route(routes::HEALTHZ, get(healthz))
        .route(routes::READYZ, get(readyz))
        .route(routes::METRICS, get(metrics))
        .route(routes::ROLLOUT, get(api::get_rollout))
        .route(routes::APPROVALS, post(api::approve))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

/// Serve [`router`] on `listener` until `shutdown` completes. Then `/readyz` answers 503
/// at once, the server keeps answering for `config.drain_delay`, stops accepting, and
/// returns once the requests in flight are answered.
///
/// # Errors
/// [`ServeError::Io`] when the listener fails.
pub async fn serve<F>(
    listener: TcpListener,
    state: ServerState,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let readiness = state.readiness.clone();
    let drain = state.config.drain_delay;
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "HTTP server listening");
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            readiness.shutting_down();
            if !drain.is_zero() {
                tokio::time::sleep(drain).await;
            }
        })
        .await?;
    Ok(())
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<ServerState>) -> Response {
    match state.readiness.why_not() {
        None => (StatusCode::OK, "ready\n").into_response(),
        Some(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<ServerState>) -> Response {
    (
        [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
        state.telemetry.encode(),
    )
        .into_response()
}

async fn not_found() -> api::ApiError {
    api::ApiError::new(StatusCode::NOT_FOUND, "no such route")
}

/// Counts every request by route template and status (never by raw path), and logs it at
/// debug without headers (the token stays out of logs).
async fn count_requests(State(state): State<ServerState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(routes::UNMATCHED, |m| route_label(m.as_str()));
    let method = req.method().clone();
    let response = next.run(req).await;
    let code = response.status().as_u16();
    state.telemetry.http_request(route, code);
    tracing::debug!(%method, route, code, "http request");
    response
}

fn route_label(matched: &str) -> &'static str {
    routes::ALL
        .into_iter()
        .find(|r| *r == matched)
        .unwrap_or(routes::UNMATCHED)
}
