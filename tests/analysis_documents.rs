//! Loading analysis objects from YAML and composing them into a run, through the library.

use rollgate::core::analysis::documents::{ObjectBody, ObjectKind, compose, parse_documents};
use rollgate::core::analysis::model::Argument;
use rollgate::core::analysis::run::prepare;

/// An Argo Rollouts template as the Argo docs write it, unchanged.
const ARGO: &str = r#"# from the Argo Rollouts docs
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: success-rate
spec:
  args:
  - name: service-name
  - name: api-token
    valueFrom:
      secretKeyRef:
        name: token-secret
        key: apiToken
  dryRun:
  - metricName: .*
  measurementRetention:
  - metricName: success
    limit: 20
  metrics:
  - name: success-rate
    interval: 5m
    count: "{{args.count}}"
    successCondition: result[0] >= 0.95
    failureLimit: 3
    provider:
      prometheus:
        address: http://prometheus.example.com:9090
        timeout: 20
        headers:
        - key: Authorization
          value: "Bearer {{ args.api-token }}"
        query: |
          sum(irate(
            istio_requests_total{reporter="source",destination_service=~"{{args.service-name}}",response_code!~"5.*"}[5m]
          )) /
          sum(irate(
            istio_requests_total{reporter="source",destination_service=~"{{args.service-name}}"}[5m]
          ))
---
apiVersion: argoproj.io/v1alpha1
kind: ClusterAnalysisTemplate
metadata:
  name: shared
spec:
  args:
  - name: count
    value: "3"
  metrics:
  - name: "ready"
    successCondition: result.ok == true
    provider:
      web:
        url: http://status.example.com/ready
        jsonPath: "{$.data}"
"#;

fn arg(name: &str, value: &str) -> Argument {
    Argument {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

#[test]
fn argo_yaml_loads_unchanged_and_composes() {
    let objects = parse_documents("argo.yaml", ARGO).expect("loads");
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[0].kind, ObjectKind::AnalysisTemplate);
    assert_eq!(objects[0].name, "success-rate");
    assert_eq!(objects[0].line, 1);
    assert_eq!(objects[0].metric_lines, vec![20]);
    assert_eq!(objects[1].kind, ObjectKind::ClusterAnalysisTemplate);
    assert_eq!(objects[1].line, 40);
    assert_eq!(objects[1].metric_lines, vec![49]);
    let ObjectBody::Template(t) = &objects[0].body else {
        panic!("a template")
    };
    assert_eq!(t.metrics[0].interval.as_deref(), Some("5m"));

    let c = compose(&objects, &[arg("service-name", "checkout")]).expect("composes");
    assert_eq!(c.spec.metrics.len(), 2);
    assert_eq!(c.origins[1].object, "ClusterAnalysisTemplate \"shared\"");
    assert_eq!(c.origins[1].line, 49);
    let run = prepare(&c.spec).expect("valid");
    let m = &run.metrics[0];
    // Args substituted (the secret as a placeholder), count from the other template.
    assert_eq!(m.effective_count, Some(3));
    let q = &m.metric.provider.prometheus.as_ref().unwrap().query;
    assert!(q.contains("destination_service=~\"checkout\""), "{q}");
    assert_eq!(
        m.metric.provider.prometheus.as_ref().unwrap().headers[0].value,
        "Bearer temp-for-secret"
    );
    assert!(run.metrics.iter().all(|m| m.dry_run));
    assert_eq!(run.metrics[0].retention_limit, 20);
    assert_eq!(run.metrics[1].retention_limit, 10);
}

#[test]
fn composition_errors_are_argos() {
    let objects = parse_documents("argo.yaml", ARGO).expect("loads");
    let e = compose(&objects, &[]).expect_err("an arg is missing");
    assert!(
        e.to_string().contains("args.service-name was not resolved"),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("argo.yaml:1: AnalysisTemplate \"success-rate\""),
        "{e}"
    );

    let twice = format!(
        "{ARGO}---\n{}",
        ARGO.replace("ClusterAnalysisTemplate", "AnalysisTemplate")
            .replace("name: success-rate\n", "name: other\n")
    );
    let objects = parse_documents("twice.yaml", &twice).expect("loads");
    let e = compose(&objects, &[]).expect_err("duplicates");
    // The renamed copy keeps `ready`, which is now in two namespaced templates.
    assert!(
        e.message
            .starts_with("two metrics have the same name 'ready'"),
        "{e}"
    );
    assert!(
        e.message
            .contains("AnalysisTemplate \"shared\" (twice.yaml:95)")
            && e.message
                .contains("ClusterAnalysisTemplate \"shared\" (twice.yaml:40)"),
        "{e}"
    );

    let conflict = ARGO.replace(
        "  - name: service-name\n",
        "  - name: service-name\n  - name: count\n    value: \"5\"\n",
    );
    let objects = parse_documents("c.yaml", &conflict).expect("loads");
    let e = compose(&objects, &[]).expect_err("conflict");
    assert_eq!(
        e.message,
        "Argument `count` specified multiple times with different values: '5', '3'"
    );
}

#[test]
fn nested_templates_are_resolved_once() {
    let text = r#"apiVersion: rollgate.dev/v1alpha1
kind: AnalysisTemplate
metadata:
  name: all
spec:
  templates:
  - templateName: a
  - templateName: shared
    clusterScope: true
  metrics:
  - name: own
    provider:
      web:
        url: http://127.0.0.1:1/
---
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata:
  name: a
spec:
  metrics:
  - name: from-a
    provider:
      web:
        url: http://127.0.0.1:1/
---
apiVersion: argoproj.io/v1alpha1
kind: ClusterAnalysisTemplate
metadata:
  name: shared
spec:
  metrics:
  - name: from-shared
    provider:
      web:
        url: http://127.0.0.1:1/
"#;
    let objects = parse_documents("nested.yaml", text).expect("loads");
    let c = compose(&objects, &[]).expect("composes");
    let names: Vec<&str> = c.spec.metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["own", "from-a", "from-shared"]);
    let missing = text.replace("templateName: a", "templateName: nope");
    let objects = parse_documents("nested.yaml", &missing).expect("loads");
    let e = compose(&objects, &[]).expect_err("missing");
    assert!(
        e.message
            .contains("AnalysisTemplate \"nope\" is referenced"),
        "{e}"
    );
}

#[test]
fn bad_documents_name_file_line_object_and_field() {
    let cases = [
        (
            "apiVersion: v1\nkind: ConfigMap\n",
            "x.yaml:1: unsupported kind `ConfigMap`",
        ),
        (
            "apiVersion: argoproj.io/v1beta9\nkind: AnalysisTemplate\nmetadata:\n  name: t\n",
            "x.yaml:1: AnalysisTemplate \"t\": unsupported apiVersion `argoproj.io/v1beta9`",
        ),
        (
            "---\napiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata:\n  name: t\nspec:\n  metrics:\n  - name: m\n    count: [1]\n",
            // serde reports untagged values at their parent.
            "x.yaml:8:5: AnalysisTemplate \"t\": spec.metrics[0]: data did not match any variant of untagged enum IntOrString",
        ),
        (
            "kind: AnalysisTemplate\n",
            "x.yaml:1: missing field `apiVersion`",
        ),
        ("# nothing\n", "x.yaml: no AnalysisTemplate"),
    ];
    for (text, want) in cases {
        let e = parse_documents("x.yaml", text).expect_err(text).to_string();
        assert!(e.starts_with(want), "{e:?} does not start with {want:?}");
    }
}

#[test]
fn rules_that_match_nothing_make_the_spec_invalid() {
    let base = "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata:\n  name: t\nspec:\n  RULES\n  metrics:\n  - name: error-rate-p99\n    provider:\n      web:\n        url: http://127.0.0.1:1/\n";
    let run = |rules: &str| {
        let objects = parse_documents("r.yaml", &base.replace("RULES", rules)).expect("loads");
        prepare(&compose(&objects, &[]).expect("composes").spec)
    };
    assert!(
        run("dryRun:\n  - metricName: error")
            .expect("unanchored")
            .metrics[0]
            .dry_run
    );
    assert_eq!(
        run("dryRun:\n  - metricName: \"*\"")
            .expect_err("a bare * matches nothing")
            .to_string(),
        "Analysis spec invalid: dryRun[0]: Rule didn't match any metric name(s)"
    );
    assert_eq!(
        run("measurementRetention:\n  - metricName: latency\n    limit: 5")
            .expect_err("no match")
            .to_string(),
        "Analysis spec invalid: measurementRetention[0]: Rule didn't match any metric name(s)"
    );
    let objects = parse_documents(
        "r.yaml",
        &base.replace(
            "RULES",
            "dryRun:\n  - metricName: error\n  - metricName: error",
        ),
    )
    .expect("loads");
    assert_eq!(
        compose(&objects, &[]).expect_err("duplicate rule").message,
        "two Dry-Run metric rules have the same name 'error'"
    );
}
