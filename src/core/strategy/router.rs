//! Gateway API weights: set the weights of the two managed backendRefs of an HTTPRoute
//! and leave everything else exactly as found.
//!
//! Flagger rebuilds and replaces the whole route (flagger#1857, #1737, #1888); the Argo
//! Rollouts plugin once stripped unmanaged backends and rules (plugin#203, #217). Here
//! only rules that hold BOTH the primary and the canary Service are weighted, and in
//! them only those two backendRefs: a rule sending `/admin` to the primary alone is never
//! set to weight 0 by a blue-green switch.

use serde_json::{Value, json};

use super::spec::Weight;

/// Why weights cannot be set on a route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The object has no `spec.rules` list (not an HTTPRoute, or an empty one).
    #[error("HTTPRoute {route}: spec.rules is missing or not a list")]
    NoRules {
        /// Route name (or `<unnamed>`).
        route: String,
    },
    /// No rule has both managed backends, so there is nothing rollgate may weight.
    #[error(
        "HTTPRoute {route}: no rule has both backendRefs {primary} and {canary}; add them to the rule that carries the traffic"
    )]
    NoManagedRule {
        /// Route name.
        route: String,
        /// Primary Service name.
        primary: String,
        /// Canary Service name.
        canary: String,
    },
}

/// The result of [`set_weights`].
#[derive(Debug, Clone, PartialEq)]
pub struct WeightUpdate {
    /// The route with the new weights (everything else unchanged).
    pub route: Value,
    /// An RFC 6902 JSON Patch doing the same: for each managed backendRef a `test` of
    /// its name (so a concurrent reorder fails the patch instead of weighting the wrong
    /// backend) and an `add` of its weight. Empty when nothing changes.
    pub patch: Vec<Value>,
    /// Whether any weight changed (false: the desired state already holds).
    pub changed: bool,
}

fn route_name(route: &Value) -> String {
    route
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>")
        .to_owned()
}

/// A backendRef pointing at Service `name` (kind absent or `Service`, group absent or
/// empty).
fn is_service(backend: &Value, name: &str) -> bool {
    let kind_ok = backend
        .get("kind")
        .and_then(Value::as_str)
        .is_none_or(|k| k == "Service");
    let group_ok = backend
        .get("group")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    kind_ok && group_ok && backend.get("name").and_then(Value::as_str) == Some(name)
}

fn has_both(rule: &Value, primary: &str, canary: &str) -> bool {
    let Some(backends) = rule.get("backendRefs").and_then(Value::as_array) else {
        return false;
    };
    backends.iter().any(|b| is_service(b, primary))
        && backends.iter().any(|b| is_service(b, canary))
}

/// Set `primary`/`canary` weights on the managed backendRefs of an HTTPRoute object (or
/// of its `spec`, when given `{"rules": ...}`).
///
/// # Errors
/// [`RouteError::NoRules`] without a rules list, [`RouteError::NoManagedRule`] when no
/// rule holds both Services.
pub fn set_weights(
    route: &Value,
    primary: &str,
    canary: &str,
    primary_weight: Weight,
    canary_weight: Weight,
) -> Result<WeightUpdate, RouteError> {
    let name = route_name(route);
    let (rules_ptr, rules) = match route.pointer("/spec/rules") {
        Some(r) => ("/spec/rules", r),
        None => ("/rules", route.get("rules").unwrap_or(&Value::Null)),
    };
    let Some(rules) = rules.as_array() else {
        return Err(RouteError::NoRules { route: name });
    };
    let mut out = route.clone();
    let mut patch = Vec::new();
    let mut managed = false;
    let mut changed = false;
    for (ri, rule) in rules.iter().enumerate() {
        if !has_both(rule, primary, canary) {
            continue;
        }
        managed = true;
        let Some(backends) = rule.get("backendRefs").and_then(Value::as_array) else {
            continue;
        };
        for (bi, b) in backends.iter().enumerate() {
            let weight = if is_service(b, primary) {
                primary_weight
            } else if is_service(b, canary) {
                canary_weight
            } else {
                continue;
            };
            let desired = json!(weight.get());
            // Gateway API defaults an absent weight to 1.
            let current = b.get("weight").cloned().unwrap_or(json!(1));
            if current == desired {
                continue;
            }
            changed = true;
            let path = format!("{rules_ptr}/{ri}/backendRefs/{bi}");
            patch.push(
                json!({"op": "test", "path": format!("{path}/name"), "value": b.get("name")}),
            );
            patch.push(json!({"op": "add", "path": format!("{path}/weight"), "value": desired}));
            if let Some(obj) = out.pointer_mut(&path).and_then(Value::as_object_mut) {
                obj.insert("weight".into(), desired);
            }
        }
    }
    if !managed {
        return Err(RouteError::NoManagedRule {
            route: name,
            primary: primary.to_owned(),
            canary: canary.to_owned(),
        });
    }
    Ok(WeightUpdate {
        route: out,
        patch,
        changed,
    })
}

/// Read back the weights of the first rule holding both managed backends (Flagger reads
/// weights from the route each tick). Absent weights count as 1, as in Gateway API.
pub fn read_weights(route: &Value, primary: &str, canary: &str) -> Option<(u64, u64)> {
    let rules = route
        .pointer("/spec/rules")
        .or_else(|| route.get("rules"))?
        .as_array()?;
    let rule = rules.iter().find(|r| has_both(r, primary, canary))?;
    let backends = rule.get("backendRefs")?.as_array()?;
    let weight = |name: &str| {
        backends
            .iter()
            .find(|b| is_service(b, name))
            .map(|b| b.get("weight").and_then(Value::as_u64).unwrap_or(1))
    };
    Some((weight(primary)?, weight(canary)?))
}
