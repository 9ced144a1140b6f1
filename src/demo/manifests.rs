//! The Kubernetes objects of the demo, as YAML: the Gateway, and per environment a
//! namespace with the application's Deployment, HTTPRoute, AnalysisTemplate, Rollout and
//! PromotionPolicy.

use super::{APP, ENVIRONMENTS, Environment, GATEWAY_PORT, IMAGE, POLICY};

/// Traefik's GatewayClass and the shared Gateway (namespace `gateway`, one HTTP listener
/// on Traefik's `web` entry point, routes from every namespace).
pub fn gateway() -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: gateway}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: traefik}}
spec: {{controllerName: traefik.io/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: web, namespace: gateway}}
spec:
  gatewayClassName: traefik
  listeners:
    - {{name: web, protocol: HTTP, port: {GATEWAY_PORT}, allowedRoutes: {{namespaces: {{from: All}}}}}}
"#
    )
}

/// The host name clients use for `env`.
pub fn host(env: &str) -> String {
    format!("{env}.{POLICY}.demo")
}

/// Everything of one environment, in its own namespace.
pub fn environment(env: &Environment, version: &str, repo_url: &str) -> String {
    let name = env.name;
    let host = host(name);
    let min = env.min_success_rate;
    let count = env.measurements;
    let steps: String = env
        .weights
        .iter()
        .map(|w| {
            format!(
                "        - setWeight: {w}\n        - pause: {{duration: {pause}s}}\n        - analysis:\n            \
                 templates: [{{templateName: success-rate}}]\n            args: [{{name: namespace, value: {name}}}]\n",
                pause = env.pause_seconds
            )
        })
        .collect();
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata: {{name: {name}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {APP}, namespace: {name}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {APP}}}}}
  template:
    metadata: {{labels: {{app: {APP}}}}}
    spec:
      containers:
        - {{name: app, image: "{IMAGE}:{version}", ports: [{{name: http, containerPort: 80}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {APP}, namespace: {name}}}
spec:
  parentRefs: [{{name: web, namespace: gateway}}]
  hostnames: ["{host}"]
  rules:
    - backendRefs:
        - {{name: {APP}-primary, port: 80, weight: 100}}
        - {{name: {APP}-canary, port: 80, weight: 0}}
---
apiVersion: rollgate.dev/v1alpha1
kind: AnalysisTemplate
metadata: {{name: success-rate, namespace: {name}}}
spec:
  args: [{{name: namespace}}]
  metrics:
    - name: success-rate
      interval: 2s
      count: {count}
      failureLimit: 0
      successCondition: "len(result) > 0 && result[0] >= {min}"
      provider:
        prometheus:
          query: >-
            sum(rate(http_requests_total{{namespace="{{{{args.namespace}}}}",deployment="{APP}",code!~"5.."}}[10s]))
            / sum(rate(http_requests_total{{namespace="{{{{args.namespace}}}}",deployment="{APP}"}}[10s]))
---
apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata:
  name: {APP}
  namespace: {name}
  annotations: {{rollgate.dev/promotion-policy: {POLICY}}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: {APP}}}
  service: {{port: 80}}
  trafficRouting: {{gatewayAPI: {{httpRoute: {{name: {APP}}}}}}}
  strategy:
    canary:
      steps:
{steps}---
{policy}"#,
        policy = policy(Some(name), repo_url)
    )
}

/// The PromotionPolicy: dev → staging automatically, staging → prod after approval,
/// revert on failure. With `namespace`, the in-cluster object; without, the file the
/// `rollgate approve` CLI reads.
pub fn policy(namespace: Option<&str>, repo_url: &str) -> String {
    let ns = namespace.map_or_else(String::new, |n| format!(", namespace: {n}"));
    let envs: String = ENVIRONMENTS
        .iter()
        .map(|e| {
            format!(
                "    - {{name: {n}, file: {POLICY}/values-{n}.yaml, field: image.tag{a}}}\n",
                n = e.name,
                a = if e.manual_approval {
                    ", approval: manual"
                } else {
                    ""
                }
            )
        })
        .collect();
    format!(
        r#"apiVersion: rollgate.dev/v1alpha1
kind: PromotionPolicy
metadata: {{name: {POLICY}{ns}}}
spec:
  repository: {{url: "{repo_url}", branch: main}}
  environments:
{envs}  onFailure: revert
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_document_parses_as_yaml() {
        for env in ENVIRONMENTS {
            let text = environment(env, "v1", "file:///tmp/x.git");
            for doc in text.split("\n---\n") {
                let v: serde_yaml::Value = serde_yaml::from_str(doc).expect(doc);
                assert!(v.get("kind").is_some(), "{doc}");
            }
            assert!(
                text.contains(r#"namespace="{{args.namespace}}",deployment="app""#),
                "{text}"
            );
        }
        let p: crate::core::promotion::policy::PolicyFile =
            crate::core::promotion::policy::PolicyFile::parse(
                "p.yaml",
                &policy(None, "file:///x.git"),
            )
            .expect("policy");
        assert!(p.app(POLICY).is_ok());
        let gw: Vec<serde_yaml::Value> = gateway()
            .split("\n---\n")
            .map(|d| serde_yaml::from_str(d).expect(d))
            .collect();
        assert_eq!(
            gw[2]["spec"]["listeners"][0]["port"].as_u64(),
            Some(u64::from(GATEWAY_PORT))
        );
    }
}
