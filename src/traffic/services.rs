//! The Services of a Rollout (Flagger's layout, from
//! [`managed_services`](crate::core::strategy::managed_services)): created when missing,
//! their selector and port kept by server-side apply under rollgate's field manager.
//! [`AppliedServices`] remembers what was applied, so a Rollout reconciled every few
//! seconds does not re-apply the same three Services each time.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use kube::core::ObjectMeta;
use serde_json::json;

use super::{TrafficError, call};
use crate::core::strategy::ManagedService;

/// The field manager of every object rollgate writes.
pub const FIELD_MANAGER: &str = "rollgate";

/// Apply the managed Services in `namespace`, owned by `owner` (so they go with the
/// Rollout). Idempotent: applying the same intent twice changes nothing.
///
/// # Errors
/// [`TrafficError::Api`] / [`TrafficError::Timeout`].
pub async fn ensure_services(
    client: &Client,
    namespace: &str,
    services: &[ManagedService],
    owner: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
) -> Result<(), TrafficError> {
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    for s in services {
        let meta = ObjectMeta {
            name: Some(s.name.clone()),
            owner_references: owner.clone().map(|o| vec![o]),
            ..ObjectMeta::default()
        };
        let body = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {
                "selector": { s.selector.0.clone(): s.selector.1.clone() },
                "ports": [{
                    "name": s.port_name,
                    "port": s.port,
                    "targetPort": s.target_port,
                    "protocol": "TCP",
                }],
            },
        });
        let object = format!("Service {namespace}/{}", s.name);
        call(
            "apply",
            &object,
            api.patch(
                &s.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(body),
            ),
        )
        .await?;
    }
    Ok(())
}

/// Services applied recently, by namespace and intent (names, selectors, ports, owner).
///
/// [`AppliedServices::due`] is false while the same intent was applied less than
/// [`AppliedServices::RECHECK`] ago, so a steady Rollout costs no Service writes per
/// reconcile (three per reconcile was a third of the API calls at 1,000 Rollouts,
/// `benches/controller_scale.rs`); a changed intent is applied at once, and a Service
/// deleted by hand comes back within `RECHECK`.
#[derive(Debug, Default)]
pub struct AppliedServices {
    applied: Mutex<HashMap<String, Instant>>,
}

impl AppliedServices {
    /// How long an applied intent is trusted before it is applied again.
    pub const RECHECK: Duration = Duration::from_secs(300);

    fn key(
        namespace: &str,
        services: &[ManagedService],
        owner: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
    ) -> String {
        format!(
            "{namespace}\n{services:?}\n{:?}",
            owner.map(|o| (&o.kind, &o.name, &o.uid))
        )
    }

    /// Whether these Services should be applied now.
    pub fn due(
        &self,
        namespace: &str,
        services: &[ManagedService],
        owner: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
    ) -> bool {
        let key = Self::key(namespace, services, owner);
        let applied = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
        applied
            .get(&key)
            .is_none_or(|at| at.elapsed() >= Self::RECHECK)
    }

    /// Record that these Services were applied just now.
    pub fn record(
        &self,
        namespace: &str,
        services: &[ManagedService],
        owner: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
    ) {
        let key = Self::key(namespace, services, owner);
        let mut applied = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
        // Forget expired intents so deleted Rollouts do not accumulate.
        if applied.len() >= 1024 && applied.len().is_power_of_two() {
            applied.retain(|_, at| at.elapsed() < Self::RECHECK);
        }
        applied.insert(key, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::strategy::ServiceRole;

    fn service(name: &str, value: &str) -> ManagedService {
        ManagedService {
            name: name.to_owned(),
            role: ServiceRole::Canary,
            selector: ("app".to_owned(), value.to_owned()),
            port: 80,
            target_port: 80,
            port_name: "http".to_owned(),
        }
    }

    #[test]
    fn an_applied_intent_is_not_due_again_until_it_changes() {
        let memo = AppliedServices::default();
        let a = [service("web-canary", "web")];
        assert!(memo.due("ns", &a, None), "never applied");
        memo.record("ns", &a, None);
        assert!(!memo.due("ns", &a, None), "just applied");
        assert!(memo.due("other", &a, None), "another namespace");
        let changed = [service("web-canary", "web-v2")];
        assert!(memo.due("ns", &changed, None), "a changed selector");
    }
}
