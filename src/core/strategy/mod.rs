//! Canary and blue-green rollout state machines.
//!
//! - [`spec`]: the `Rollout` spec and status types (no Kubernetes client types).
//! - [`plan`]: a spec compiled into steps, Flagger's shorthand expanded with Flagger's
//!   weight semantics; what `rollgate plan` prints.
//! - [`machine`]: `next(spec, status, observations, now) -> Decision`, one tick at a time.
//! - [`router`]: Gateway API weights on an HTTPRoute, touching only the two managed
//!   backendRefs.
//! - [`services`]: the Services a Rollout manages and their selectors.
//! - [`time`]: Go-style durations and RFC 3339 timestamps, with no clock.

pub mod machine;
pub mod plan;
pub mod router;
pub mod services;
pub mod spec;
pub mod time;

pub use machine::{
    Action, Decision, Event, EventReason, Observations, Readiness, Request, Scale, next,
    next_with_plan,
};
pub use plan::{AnalysisSource, Plan, PlanStep, SpecError, compile, flagger_weights};
pub use router::{RouteError, WeightUpdate, read_weights, set_weights};
pub use services::{
    ManagedService, ServiceRole, managed_services, managed_services_at, switches_by_selector,
};
pub use spec::*;
pub use time::{GoDuration, Timestamp};
