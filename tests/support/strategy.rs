//! Helpers for the strategy tests: parse Rollout YAML and drive the public state machine
//! tick by tick, applying each decision's status as a reconciler would.
#![allow(dead_code)]

use std::collections::BTreeMap;

use rollgate::core::strategy::{
    Action, Decision, Observations, Readiness, Request, RolloutSpec, RolloutStatus, RunPhase,
    Timestamp, next,
};

/// Parse a spec written in YAML (enum variants as one-key maps).
pub fn spec(yaml: &str) -> RolloutSpec {
    try_spec(yaml).expect("test spec parses")
}

/// Parse a spec, returning serde_yaml's error.
pub fn try_spec(yaml: &str) -> Result<RolloutSpec, serde_yaml::Error> {
    serde_yaml::with::singleton_map_recursive::deserialize(serde_yaml::Deserializer::from_str(yaml))
}

/// A simulated reconciler: keeps the status, the clock and what was observed.
pub struct Sim {
    pub spec: RolloutSpec,
    pub status: RolloutStatus,
    pub now: Timestamp,
    pub revision: String,
    pub canary: Readiness,
    pub primary: Readiness,
    /// Phases the analysis runs report, by name.
    pub runs: BTreeMap<String, RunPhase>,
    /// Every decision so far.
    pub log: Vec<Decision>,
}

impl Sim {
    /// A simulator whose first tick will initialise the primary with revision `rev0`.
    pub fn new(spec: RolloutSpec) -> Sim {
        Sim {
            spec,
            status: RolloutStatus::default(),
            now: Timestamp::from_unix(1_800_000_000),
            revision: "rev0".into(),
            canary: Readiness::Ready,
            primary: Readiness::Ready,
            runs: BTreeMap::new(),
            log: Vec::new(),
        }
    }

    pub fn observations(&self, request: Option<Request>) -> Observations {
        Observations {
            rollout_name: "podinfo".into(),
            revision: self.revision.clone(),
            canary: self.canary,
            primary: self.primary,
            runs: self.runs.clone(),
            request,
        }
    }

    /// One tick after `secs` seconds.
    pub fn tick_after(&mut self, secs: u64, request: Option<Request>) -> Decision {
        self.now = self.now.plus_secs(secs);
        let d = next(
            &self.spec,
            &self.status,
            &self.observations(request),
            self.now,
        )
        .expect("spec compiles");
        self.status = d.status.clone();
        // Terminated runs end Successful, as the analysis engine does.
        for a in &d.actions {
            if let Action::TerminateAnalysisRun { name } = a {
                self.runs.insert(name.clone(), RunPhase::Successful);
            }
        }
        self.log.push(d.clone());
        d
    }

    pub fn tick(&mut self) -> Decision {
        self.tick_after(0, None)
    }

    /// Initialise with `rev0`, then deploy `rev1` (a rollout starts).
    pub fn started(spec: RolloutSpec) -> Sim {
        let mut sim = Sim::new(spec);
        sim.tick();
        sim.revision = "rev1".into();
        sim.tick();
        sim
    }

    /// Names of runs created by a decision.
    pub fn created(d: &Decision) -> Vec<String> {
        d.actions
            .iter()
            .filter_map(|a| match a {
                Action::CreateAnalysisRun { name, .. } => Some(name.clone()),
                _ => None,
            })
            .collect()
    }

    /// Canary weights written over the whole log, in order.
    pub fn canary_weights(&self) -> Vec<u8> {
        self.log
            .iter()
            .flat_map(|d| d.actions.iter())
            .filter_map(|a| match a {
                Action::SetWeights { canary, .. } => Some(canary.get()),
                _ => None,
            })
            .collect()
    }

    /// Run ticks `secs` apart until the phase is finished or `max` ticks pass.
    pub fn run_until_done(&mut self, secs: u64, max: usize) {
        for _ in 0..max {
            let d = self.tick_after(secs, None);
            if !d.status.phase.is_active() {
                return;
            }
        }
    }
}
