//! The Services a Rollout manages and what each selects (Flagger's layout): the apex
//! `<svc>` and `<svc>-primary` select the primary pods, `<svc>-canary` the target's.

use serde::Serialize;

use super::spec::{RolloutSpec, Strategy};

/// Default name of the Service port.
pub const DEFAULT_PORT_NAME: &str = "http";

/// The role of a managed Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ServiceRole {
    /// `<svc>`: what clients call; always selects the primary (blue-green: active).
    Apex,
    /// `<svc>-primary`: the stable pods.
    Primary,
    /// `<svc>-canary`: the new version (blue-green: preview).
    Canary,
}

/// One Service to create or keep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManagedService {
    /// Service name.
    pub name: String,
    /// Its role.
    pub role: ServiceRole,
    /// Selector: the target's selector label key with this value.
    pub selector: (String, String),
    /// Port.
    pub port: u16,
    /// Container port.
    pub target_port: u16,
    /// Port name.
    pub port_name: String,
}

/// The three Services of a Rollout, given the key and value of the target's selector
/// label (e.g. `app`, `podinfo`): the canary selects `value`, the others `value-primary`.
/// Blue-green `activeService`/`previewService` rename the apex and canary Services.
pub fn managed_services(
    spec: &RolloutSpec,
    label_key: &str,
    label_value: &str,
) -> Vec<ManagedService> {
    let svc = spec.service_name();
    let (mut apex, primary, mut canary) = (
        svc.to_owned(),
        format!("{svc}-primary"),
        format!("{svc}-canary"),
    );
    if let Strategy::BlueGreen(b) = &spec.strategy {
        if let Some(a) = &b.active_service {
            apex.clone_from(a);
        }
        if let Some(p) = &b.preview_service {
            canary.clone_from(p);
        }
    }
    let port_name = spec
        .service
        .port_name
        .clone()
        .unwrap_or_else(|| DEFAULT_PORT_NAME.to_owned());
    let port = spec.service.port;
    let target_port = spec.service.target_port.unwrap_or(port);
    let primary_value = format!("{label_value}-primary");
    [
        (apex, ServiceRole::Apex, primary_value.clone()),
        (primary, ServiceRole::Primary, primary_value),
        (canary, ServiceRole::Canary, label_value.to_owned()),
    ]
    .into_iter()
    .map(|(name, role, value)| ManagedService {
        name,
        role,
        selector: (label_key.to_owned(), value),
        port,
        target_port,
        port_name: port_name.clone(),
    })
    .collect()
}
