//! Leader election over a `coordination.k8s.io/v1` Lease, so that of several replicas of
//! the controller exactly one acts.
//!
//! Every candidate runs [`LeaderElection::run`]. Each `retry_period` it reads the Lease and
//!
//! - creates it (holding it) when it does not exist;
//! - renews it when it holds it;
//! - takes it over when nobody holds it (released) or the holder's record has not changed
//!   for the holder's `leaseDurationSeconds`, measured on *this* candidate's monotonic
//!   clock from when it last saw the record change (as client-go does: no trust in the
//!   clocks of other machines);
//! - otherwise stays a follower.
//!
//! Every write is a `replace` carrying the `resourceVersion` that was read, so of two
//! candidates racing for the same record the API server lets exactly one win (the other
//! gets 409 Conflict and stays a follower). Every API call is bounded by `api_timeout`.
//!
//! A leader that cannot renew within `renew_deadline` of its last successful renewal steps
//! down (reports `false`) *before* its Lease can expire for the others
//! (`renew_deadline < lease_duration`), so two replicas never act at once. On shutdown the
//! leader reports `false` first, then releases the Lease (clears `holderIdentity`), so a
//! follower takes over at its next retry instead of after a whole lease duration.
//!
//! What "leader" means to the rest of the process is one value: the
//! [`watch::Receiver<bool>`] of [`LeaderElection::subscribe`]. The controller acts only
//! while it reads `true`, and stops as soon as it changes to `false`.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;

use crate::telemetry::Telemetry;

/// Timing and identity of one candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// Namespace of the Lease (the controller's own namespace).
    pub namespace: String,
    /// Name of the Lease, the same for every replica (`rollgate-controller`).
    pub name: String,
    /// This candidate's identity, unique among the replicas ([`default_identity`]).
    pub identity: String,
    /// How long a Lease stays held without renewal (`leaseDurationSeconds`; whole
    /// seconds, at least 1).
    pub lease_duration: Duration,
    /// How long the leader keeps acting without a successful renewal before it steps
    /// down. Must be shorter than `lease_duration`.
    pub renew_deadline: Duration,
    /// Time between attempts to acquire or renew.
    pub retry_period: Duration,
    /// Bound of each API call. Must be shorter than `renew_deadline`.
    pub api_timeout: Duration,
}

impl LeaseConfig {
    /// The defaults of client-go's leader election: lease 15 s, renew deadline 10 s,
    /// retry every 2 s; each API call bounded by 5 s.
    #[must_use]
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            api_timeout: Duration::from_secs(5),
        }
    }

    /// Check the timings against each other.
    ///
    /// # Errors
    /// [`LeaderError::InvalidConfig`] naming the field when a name or the identity is
    /// empty, the lease duration is under a second or not whole seconds, the renew
    /// deadline is not shorter than the lease duration, the retry period is zero or not
    /// shorter than the renew deadline, or the API timeout is zero or not shorter than the
    /// renew deadline.
    pub fn validate(&self) -> Result<(), LeaderError> {
        let bad = |field: &'static str, message: &str| {
            Err(LeaderError::InvalidConfig {
                field,
                message: message.to_owned(),
            })
        };
        if self.namespace.is_empty() {
            return bad("namespace", "must not be empty");
        }
        if self.name.is_empty() {
            return bad("name", "must not be empty");
        }
        if self.identity.is_empty() {
            return bad("identity", "must not be empty");
        }
        if self.lease_duration < Duration::from_secs(1) || self.lease_duration.subsec_nanos() != 0 {
            return bad(
                "lease_duration",
                "must be a whole number of seconds, at least 1",
            );
        }
        if i32::try_from(self.lease_duration.as_secs()).is_err() {
            return bad("lease_duration", "is too long");
        }
        if self.renew_deadline >= self.lease_duration {
            return bad("renew_deadline", "must be shorter than lease_duration");
        }
        if self.retry_period.is_zero() || self.retry_period >= self.renew_deadline {
            return bad(
                "retry_period",
                "must be positive and shorter than renew_deadline",
            );
        }
        if self.api_timeout.is_zero() || self.api_timeout >= self.renew_deadline {
            return bad(
                "api_timeout",
                "must be positive and shorter than renew_deadline",
            );
        }
        Ok(())
    }
}

/// An identity unique to this process: `$POD_NAME` (the Downward API) or the host name,
/// followed by the process id and a value from the clock, so a restarted pod with the same
/// name is a new candidate.
#[must_use]
pub fn default_identity() -> String {
    let host = std::env::var("POD_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "rollgate".to_owned());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{host}_{}_{nanos:08x}", std::process::id())
}

/// Errors of leader election set-up. Once running, API failures are retried (and logged),
/// never returned: a candidate that cannot reach the API server is simply not the leader.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// A [`LeaseConfig`] field is out of range (see [`LeaseConfig::validate`]).
    #[error("leader election: {field} {message}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

/// Why one attempt to acquire or renew did not succeed (logged, then retried).
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("API call timed out after {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Api(#[from] kube::Error),
}

/// What a candidate last saw of the Lease, and when (on its own clock).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    duration: Option<i32>,
    transitions: Option<i32>,
}

/// One candidate in the election. Build it with [`LeaderElection::new`], take receivers
/// with [`LeaderElection::subscribe`], then drive it with [`LeaderElection::run`].
#[derive(Debug)]
pub struct LeaderElection {
    api: Api<Lease>,
    config: LeaseConfig,
    tx: watch::Sender<bool>,
    telemetry: Option<Telemetry>,
    observed: Option<(Observed, Instant)>,
}

impl LeaderElection {
    /// A candidate with `config`, not leader until [`LeaderElection::run`] wins the Lease.
    ///
    /// # Errors
    /// [`LeaderError::InvalidConfig`] (see [`LeaseConfig::validate`]).
    pub fn new(client: kube::Client, config: LeaseConfig) -> Result<Self, LeaderError> {
        config.validate()?;
        let (tx, _) = watch::channel(false);
        Ok(Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            tx,
            telemetry: None,
            observed: None,
        })
    }

    /// Also report leadership as the `rollgate_leader` gauge.
    #[must_use]
    pub fn with_telemetry(mut self, telemetry: Telemetry) -> Self {
        telemetry.set_leader(false);
        self.telemetry = Some(telemetry);
        self
    }

    /// A receiver of "this candidate is the leader": `false` until the Lease is won, back
    /// to `false` when it is lost, when renewals fail past the renew deadline, and before
    /// the Lease is released on shutdown. It also changes to `false` when the election is
    /// dropped: after [`run`](Self::run) returns, or when its task is aborted or panics.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }

    /// The identity this candidate writes into the Lease.
    #[must_use]
    pub fn identity(&self) -> &str {
        &self.config.identity
    }

    /// Take part in the election until `shutdown` completes; then stop acting (report
    /// `false`) and release the Lease if held. Never fails: API errors are logged at
    /// `warn` and retried every `retry_period`.
    ///
    /// Aborting the task that runs this future (or killing the process) does *not*
    /// release the Lease: the others take over once it expires.
    pub async fn run<F>(mut self, shutdown: F)
    where
        F: Future<Output = ()>,
    {
        // When the last successful renewal *started*: the record it wrote cannot be older,
        // so stepping down by `renew_deadline` after it is before anyone else can see the
        // Lease expire (`renew_deadline < lease_duration`).
        let mut last_renewal: Option<Instant> = None;
        tokio::pin!(shutdown);
        loop {
            let started = Instant::now();
            // A leader's attempt may not run past its renew deadline: it steps down then,
            // whatever the API server is doing.
            let budget = last_renewal.map_or(self.config.lease_duration, |t| {
                self.config.renew_deadline.saturating_sub(t.elapsed())
            });
            let result = match tokio::time::timeout(budget, self.attempt()).await {
                Ok(r) => r,
                Err(_) => Err(AttemptError::Timeout(budget)),
            };
            match result {
                Ok(true) => {
                    last_renewal = Some(started);
                    self.report(true);
                }
                Ok(false) => {
                    last_renewal = None;
                    self.report(false);
                }
                Err(e) => {
                    tracing::warn!(
                        lease = %self.config.name,
                        namespace = %self.config.namespace,
                        error = %e,
                        "leader election: could not acquire or renew the Lease"
                    );
                    if let Some(t) = last_renewal
                        && t.elapsed() >= self.config.renew_deadline
                    {
                        tracing::warn!(
                            lease = %self.config.name,
                            "leader election: renew deadline passed, stepping down"
                        );
                        last_renewal = None;
                        self.report(false);
                    }
                }
            }
            let pause = last_renewal.map_or(self.config.retry_period, |t| {
                self.config
                    .retry_period
                    .min(self.config.renew_deadline.saturating_sub(t.elapsed()))
            });
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
        let was_leader = *self.tx.borrow();
        self.report(false);
        if was_leader {
            match self.release().await {
                Ok(()) => {
                    tracing::info!(lease = %self.config.name, "leader election: Lease released")
                }
                Err(e) => tracing::warn!(
                    lease = %self.config.name,
                    error = %e,
                    "leader election: could not release the Lease; it expires on its own"
                ),
            }
        }
    }

    fn report(&self, leader: bool) {
        let changed = self.tx.send_if_modified(|v| {
            let changed = *v != leader;
            *v = leader;
            changed
        });
        if changed {
            if leader {
                tracing::info!(identity = %self.config.identity, lease = %self.config.name, "became the leader");
            } else {
                tracing::info!(identity = %self.config.identity, lease = %self.config.name, "not the leader");
            }
        }
        if let Some(t) = &self.telemetry {
            t.set_leader(leader);
        }
    }

    async fn call<T>(
        &self,
        fut: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, AttemptError> {
        tokio::time::timeout(self.config.api_timeout, fut)
            .await
            .map_err(|_| AttemptError::Timeout(self.config.api_timeout))?
            .map_err(AttemptError::from)
    }

    fn now() -> MicroTime {
        MicroTime(k8s_openapi::jiff::Timestamp::now())
    }

    fn duration_secs(&self) -> i32 {
        // validate() checked that it fits.
        i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }

    /// One acquire-or-renew round: `Ok(true)` when this candidate holds the Lease now.
    async fn attempt(&mut self) -> Result<bool, AttemptError> {
        let name = self.config.name.clone();
        let current = self.call(self.api.get_opt(&name)).await?;
        let Some(lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.config.identity.clone()),
                    lease_duration_seconds: Some(self.duration_secs()),
                    acquire_time: Some(Self::now()),
                    renew_time: Some(Self::now()),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self
                .call(self.api.create(&PostParams::default(), &lease))
                .await
            {
                Ok(created) => {
                    self.remember(&created);
                    Ok(true)
                }
                Err(AttemptError::Api(kube::Error::Api(s))) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let seen = observed_of(&lease);
        let now = Instant::now();
        let seen_at = match &self.observed {
            Some((o, at)) if *o == seen => *at,
            _ => now,
        };
        self.observed = Some((seen.clone(), seen_at));

        let holder = seen.holder.as_deref();
        let mine = holder == Some(self.config.identity.as_str());
        let held_for = seen
            .duration
            .and_then(|d| u64::try_from(d).ok())
            .map_or(self.config.lease_duration, Duration::from_secs);
        let free = holder.is_none() || now.duration_since(seen_at) >= held_for;
        if !mine && !free {
            return Ok(false);
        }
        let mut next = lease.clone();
        next.spec = Some(LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.duration_secs()),
            acquire_time: if mine {
                spec.acquire_time.clone().or_else(|| Some(Self::now()))
            } else {
                Some(Self::now())
            },
            renew_time: Some(Self::now()),
            lease_transitions: Some(if mine {
                spec.lease_transitions.unwrap_or(0)
            } else {
                spec.lease_transitions.unwrap_or(0).saturating_add(1)
            }),
            ..spec
        });
        match self
            .call(self.api.replace(&name, &PostParams::default(), &next))
            .await
        {
            Ok(written) => {
                self.remember(&written);
                Ok(true)
            }
            // Another candidate wrote first: it holds the Lease now.
            Err(AttemptError::Api(kube::Error::Api(s))) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn remember(&mut self, lease: &Lease) {
        self.observed = Some((observed_of(lease), Instant::now()));
    }

    /// Clear `holderIdentity` if this candidate still holds the Lease.
    async fn release(&mut self) -> Result<(), AttemptError> {
        let name = self.config.name.clone();
        let Some(lease) = self.call(self.api.get_opt(&name)).await? else {
            return Ok(());
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        let mut next = lease;
        next.spec = Some(LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            renew_time: Some(Self::now()),
            ..spec
        });
        self.call(self.api.replace(&name, &PostParams::default(), &next))
            .await?;
        Ok(())
    }
}

impl Drop for LeaderElection {
    /// However the election ends (shutdown, an aborted task, a panic), its receivers read
    /// `false` afterwards: nothing keeps acting on a stale `true`.
    fn drop(&mut self) {
        self.tx.send_replace(false);
        if let Some(t) = &self.telemetry {
            t.set_leader(false);
        }
    }
}

fn observed_of(lease: &Lease) -> Observed {
    let spec = lease.spec.clone().unwrap_or_default();
    Observed {
        holder: spec.holder_identity.filter(|h| !h.is_empty()),
        renew_time: spec.renew_time,
        duration: spec.lease_duration_seconds,
        transitions: spec.lease_transitions,
    }
}

/// Whether `rx` says "leader" now (`false` once the election is gone; belt and braces
/// over the `false` the election sends when it is dropped).
#[must_use]
pub fn is_leader(rx: &watch::Receiver<bool>) -> bool {
    rx.has_changed().is_ok() && *rx.borrow()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_names_the_field() {
        let ok = LeaseConfig::new("ns", "lease", "me");
        assert!(ok.validate().is_ok());
        type Breaker = fn(&mut LeaseConfig);
        let cases: [(&str, Breaker); 6] = [
            ("identity", |c| c.identity.clear()),
            ("lease_duration", |c| {
                c.lease_duration = Duration::from_millis(1500)
            }),
            ("renew_deadline", |c| c.renew_deadline = c.lease_duration),
            ("retry_period", |c| c.retry_period = Duration::ZERO),
            ("api_timeout", |c| c.api_timeout = Duration::from_secs(10)),
            ("namespace", |c| c.namespace.clear()),
        ];
        for (field, break_it) in cases {
            let mut c = ok.clone();
            break_it(&mut c);
            match c.validate() {
                Err(LeaderError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: expected InvalidConfig, got {other:?}"),
            }
        }
    }

    #[test]
    fn default_identities_differ_between_calls() {
        let a = default_identity();
        std::thread::sleep(Duration::from_millis(2));
        let b = default_identity();
        assert!(!a.is_empty());
        assert_ne!(a, b);
    }
}
