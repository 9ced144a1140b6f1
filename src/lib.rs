//! rollgate: a progressive-delivery analysis engine.
//!
//! rollgate steps traffic for a Deployment (canary weights or blue-green), judges each
//! step from Prometheus with the semantics of Argo Rollouts `AnalysisTemplate`s and
//! Flagger's built-in metrics (plus statistical canary-vs-baseline judges), and promotes
//! the version through Git, reverting the promotion commit when a check fails.
//!
//! # Layout
//!
//! - [`core`]: pure, synchronous decision logic. No I/O and no clock: time and
//!   observations come in as arguments, values (`Verdict`, `MetricPhase`, `Decision`,
//!   `PromotionPlan`) come out. A test (`tests/core_purity.rs`) fails if anything under
//!   `src/core/` names tokio, kube, git2, axum, hyper or reqwest.
//! - [`providers`]: metric providers at the edge (Prometheus, web, Flagger built-ins).
//! - [`gitops`]: the Git side of promotion (fetch, edit, commit, push, revert).
//! - [`k8s`]: custom resource types and their generated CRDs.
//! - [`cli`]: the `rollgate` command line; `main.rs` only parses and dispatches.
//! - [`telemetry`], [`leader`], [`server`], [`shutdown`]: the controller process: metrics,
//!   Lease-based leader election, the HTTP server (health, metrics, status and approvals
//!   API) and graceful shutdown.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod cli;
pub mod controller;
pub mod core;
pub mod demo;
pub mod gitops;
pub mod hooks;
pub mod k8s;
pub mod leader;
pub mod notify;
pub mod providers;
pub mod runner;
pub mod server;
pub mod shutdown;
pub mod telemetry;
pub mod traffic;
