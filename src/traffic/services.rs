//! The Services of a Rollout (Flagger's layout, from
//! [`managed_services`](crate::core::strategy::managed_services)): created when missing,
//! their selector and port kept by server-side apply under rollgate's field manager.

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
