//! Gateway API weights: only the two managed backendRefs of rules that hold both are
//! touched (flagger#1857, plugin#203, plugin#217).

use rollgate::core::strategy::{RouteError, Weight, read_weights, set_weights};
use serde_json::{Value, json};

fn route() -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "podinfo", "namespace": "web", "annotations": {"other/controller": "x"}},
        "spec": {
            "parentRefs": [{"name": "public-gw"}],
            "hostnames": ["podinfo.example.com"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
                    "filters": [{"type": "ExtensionRef", "extensionRef": {"group": "x.io", "kind": "Auth", "name": "sso"}}],
                    "backendRefs": [{"name": "podinfo-primary", "port": 9898}]
                },
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"add": [{"name": "x-env", "value": "dev"}]}}],
                    "backendRefs": [
                        {"name": "podinfo-primary", "port": 9898, "weight": 100},
                        {"name": "legacy", "port": 80, "weight": 5},
                        {"name": "podinfo-canary", "port": 9898, "weight": 0},
                        {"name": "podinfo-canary", "kind": "ServiceImport", "group": "multicluster.x-k8s.io", "port": 9898, "weight": 7}
                    ]
                },
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
                    "backendRefs": [{"name": "cdn", "port": 80}]
                }
            ]
        }
    })
}

fn w(n: u8) -> Weight {
    Weight::new(n).expect("<= 100")
}

/// Apply the RFC 6902 ops the router emits (`test`, `add` on object members).
fn apply(doc: &Value, patch: &[Value]) -> Value {
    let mut doc = doc.clone();
    for op in patch {
        let path = op["path"].as_str().expect("path");
        match op["op"].as_str().expect("op") {
            "test" => assert_eq!(doc.pointer(path), Some(&op["value"]), "test op {path}"),
            "add" => {
                let (parent, key) = path.rsplit_once('/').expect("parent");
                doc.pointer_mut(parent)
                    .and_then(Value::as_object_mut)
                    .expect("object parent")
                    .insert(key.to_owned(), op["value"].clone());
            }
            other => panic!("unexpected op {other}"),
        }
    }
    doc
}

#[test]
fn only_the_managed_backends_change() {
    let before = route();
    let up = set_weights(&before, "podinfo-primary", "podinfo-canary", w(70), w(30)).expect("ok");
    assert!(up.changed);
    let mut expected = before.clone();
    expected["spec"]["rules"][1]["backendRefs"][0]["weight"] = json!(70);
    expected["spec"]["rules"][1]["backendRefs"][2]["weight"] = json!(30);
    assert_eq!(
        up.route, expected,
        "every other rule, filter, backend and field as found"
    );
    assert_eq!(
        apply(&before, &up.patch),
        expected,
        "the JSON Patch does the same"
    );
    assert_eq!(up.patch.len(), 4, "a test and an add per managed backend");
    assert_eq!(
        read_weights(&up.route, "podinfo-primary", "podinfo-canary"),
        Some((70, 30))
    );
}

#[test]
fn a_blue_green_switch_leaves_single_backend_rules_alone() {
    let up = set_weights(&route(), "podinfo-primary", "podinfo-canary", w(0), w(100)).expect("ok");
    assert_eq!(
        up.route["spec"]["rules"][0],
        route()["spec"]["rules"][0],
        "/admin keeps its primary"
    );
    assert_eq!(
        up.route["spec"]["rules"][1]["backendRefs"][3]["weight"], 7,
        "other kinds untouched"
    );
}

#[test]
fn setting_the_current_weights_changes_nothing() {
    let up = set_weights(&route(), "podinfo-primary", "podinfo-canary", w(100), w(0)).expect("ok");
    assert!(!up.changed);
    assert!(up.patch.is_empty());
    assert_eq!(up.route, route());
}

#[test]
fn absent_weights_default_to_one_and_are_written() {
    let spec = json!({"rules": [{"backendRefs": [{"name": "a-primary"}, {"name": "a-canary"}]}]});
    assert_eq!(read_weights(&spec, "a-primary", "a-canary"), Some((1, 1)));
    let up = set_weights(&spec, "a-primary", "a-canary", w(100), w(0)).expect("ok");
    assert_eq!(up.patch[1]["path"], "/rules/0/backendRefs/0/weight");
    assert_eq!(
        read_weights(&up.route, "a-primary", "a-canary"),
        Some((100, 0))
    );
}

#[test]
fn a_route_without_both_backends_is_an_error_naming_it() {
    let mut r = route();
    r["spec"]["rules"][1]["backendRefs"]
        .as_array_mut()
        .expect("list")
        .remove(2);
    let err =
        set_weights(&r, "podinfo-primary", "podinfo-canary", w(90), w(10)).expect_err("no rule");
    assert!(matches!(err, RouteError::NoManagedRule { .. }));
    assert!(err.to_string().contains("HTTPRoute podinfo"), "{err}");
    let err = set_weights(&json!({"metadata": {"name": "x"}}), "a", "b", w(1), w(99))
        .expect_err("no rules");
    assert_eq!(err, RouteError::NoRules { route: "x".into() });
}
