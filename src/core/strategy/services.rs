//! The Services a Rollout manages and what each selects (Flagger's layout): the apex
//! `<svc>` and `<svc>-primary` select the primary pods, `<svc>-canary` the target's.
//! A blue-green Rollout without a traffic router switches by selector instead: at the
//! switch the active (apex) Service selects the target's pods, and it returns to the
//! primary's once the primary runs the new version (or on abort).

use serde::Serialize;

use super::spec::{RolloutSpec, Strategy, Weight};

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

/// Whether the Rollout switches traffic by Service selector: blue-green with no
/// `trafficRouting` (with a router the HTTPRoute weights do it and the selectors never
/// move; a canary without a router has no weights to carry out).
pub fn switches_by_selector(spec: &RolloutSpec) -> bool {
    matches!(spec.strategy, Strategy::BlueGreen(_))
        && spec
            .traffic_routing
            .as_ref()
            .and_then(|t| t.gateway_api.as_ref())
            .is_none()
}

/// [`managed_services`] while the canary has `canary_weight`: when the Rollout
/// [`switches_by_selector`] and the canary has all traffic, the active (apex) Service
/// selects the target's pods (the new version); otherwise as [`managed_services`].
pub fn managed_services_at(
    spec: &RolloutSpec,
    label_key: &str,
    label_value: &str,
    canary_weight: Weight,
) -> Vec<ManagedService> {
    let mut services = managed_services(spec, label_key, label_value);
    if switches_by_selector(spec) && canary_weight == Weight::FULL {
        for s in services.iter_mut().filter(|s| s.role == ServiceRole::Apex) {
            label_value.clone_into(&mut s.selector.1);
        }
    }
    services
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> RolloutSpec {
        serde_yaml::with::singleton_map_recursive::deserialize(serde_yaml::Deserializer::from_str(
            yaml,
        ))
        .expect("spec")
    }

    fn apex(services: &[ManagedService]) -> &str {
        services
            .iter()
            .find(|s| s.role == ServiceRole::Apex)
            .map(|s| s.selector.1.as_str())
            .expect("apex")
    }

    #[test]
    fn blue_green_without_router_moves_the_active_selector_only_at_full_weight() {
        let bg = spec(
            "targetRef: {name: p}\nservice: {port: 80}\nstrategy: {blueGreen: {activeService: p-active}}\n",
        );
        assert!(switches_by_selector(&bg));
        assert_eq!(
            apex(&managed_services_at(&bg, "app", "p", Weight::ZERO)),
            "p-primary"
        );
        assert_eq!(
            apex(&managed_services_at(&bg, "app", "p", Weight::FULL)),
            "p"
        );
        let preview = managed_services_at(&bg, "app", "p", Weight::ZERO);
        let preview = preview
            .iter()
            .find(|s| s.role == ServiceRole::Canary)
            .expect("preview");
        assert_eq!(
            preview.selector.1, "p",
            "the preview always selects the new version"
        );
    }

    #[test]
    fn routers_and_canaries_never_move_selectors() {
        for yaml in [
            "targetRef: {name: p}\nservice: {port: 80}\ntrafficRouting: {gatewayAPI: {httpRoute: {name: r}}}\nstrategy: {blueGreen: {}}\n",
            "targetRef: {name: p}\nservice: {port: 80}\nstrategy: {canary: {steps: [{setWeight: 100}]}}\n",
        ] {
            let s = spec(yaml);
            assert!(!switches_by_selector(&s));
            assert_eq!(
                apex(&managed_services_at(&s, "app", "p", Weight::FULL)),
                "p-primary"
            );
        }
    }
}
