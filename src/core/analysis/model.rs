//! The analysis model: `AnalysisTemplate`, `ClusterAnalysisTemplate` and `AnalysisRun`
//! specs, field for field the Argo Rollouts model (`argoproj.io/v1alpha1`), plus
//! rollgate's own providers.
//!
//! These types are plain data (serde + schemars): the CRDs in [`crate::k8s`] wrap them and
//! the CLI reads them from YAML. Integer-or-string fields (`count`, the limits) keep
//! `{{args.NAME}}` templates until arguments are substituted.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The API groups whose analysis objects rollgate reads unchanged.
pub const API_VERSIONS: &[&str] = &["rollgate.dev/v1alpha1", "argoproj.io/v1alpha1"];

/// The spec shared by `AnalysisTemplate` and `ClusterAnalysisTemplate`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplateSpec {
    /// The metrics to measure; names are unique across composed templates.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// Arguments that `{{args.NAME}}` tags in the metrics refer to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Argument>,
    /// Metrics (by unanchored RE2 regular expression) that never affect the run phase.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dry_run: Vec<DryRun>,
    /// How many measurements to keep per metric (by regular expression).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurement_retention: Vec<MeasurementRetention>,
    /// Other templates whose metrics and args are merged into this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<AnalysisTemplateRef>,
}

/// The spec of an `AnalysisRun`: resolved metrics plus run-level controls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunSpec {
    /// The metrics to measure.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// Argument values for `{{args.NAME}}` tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Argument>,
    /// Stop measuring: the run completes at its next assessment.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub terminate: bool,
    /// Dry-run rules, as in the template.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dry_run: Vec<DryRun>,
    /// Retention rules, as in the template.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurement_retention: Vec<MeasurementRetention>,
    /// When completed runs are deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_strategy: Option<TtlStrategy>,
}

/// Deletion of completed runs, in seconds after `completedAt`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TtlStrategy {
    /// After any completion, unless a more specific value is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_completion: Option<i32>,
    /// After a Failed run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_failure: Option<i32>,
    /// After a Successful run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_after_success: Option<i32>,
}

/// A reference from one template to another (composition).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplateRef {
    /// Name of the referenced template.
    pub template_name: String,
    /// The reference is to a `ClusterAnalysisTemplate`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cluster_scope: bool,
}

/// A dry-run rule: metrics whose name matches never change the run phase.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    /// Go RE2 regular expression, matched unanchored against metric names.
    pub metric_name: String,
}

/// A retention rule: how many measurements to keep for matching metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeasurementRetention {
    /// Go RE2 regular expression, matched unanchored against metric names.
    pub metric_name: String,
    /// Measurements kept (the default history is 10).
    pub limit: i32,
}

/// An integer that may also be written as a string, such as `"{{args.count}}"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum IntOrString {
    /// A plain integer.
    Int(i64),
    /// A string: an integer in text or an argument template.
    String(String),
}

/// One metric of a template or run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    /// Unique name within the run.
    pub name: String,
    /// Go duration from the finish of one measurement to the next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Go duration before the first measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay: Option<String>,
    /// Measurements wanted (errors do not count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<IntOrString>,
    /// Expression that makes a measurement Successful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_condition: Option<String>,
    /// Expression that makes a measurement Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_condition: Option<String>,
    /// The metric fails when `failed > failureLimit` (default 0; -1 disables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_limit: Option<IntOrString>,
    /// The metric is Inconclusive when `inconclusive > inconclusiveLimit` (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inconclusive_limit: Option<IntOrString>,
    /// The metric errors when `consecutiveError > consecutiveErrorLimit` (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_error_limit: Option<IntOrString>,
    /// The metric succeeds once `consecutiveSuccess >= consecutiveSuccessLimit` (0: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_success_limit: Option<IntOrString>,
    /// Where the measurement comes from: exactly one provider must be set.
    #[serde(default)]
    pub provider: MetricProvider,
}

/// The provider of a metric. Exactly one field must be set; an unknown key is refused
/// when the YAML is read. Providers of Argo Rollouts that rollgate does not implement are
/// accepted as opaque values so a template loads, and rejected by validation by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricProvider {
    /// A PromQL query against Prometheus (or Thanos, Cortex, Mimir).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusMetric>,
    /// An HTTP request whose JSON answer is the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<WebMetric>,
    /// rollgate: one of Flagger's built-in metrics for a mesh or ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<BuiltinMetric>,
    /// rollgate: a statistical judge of the canary against its baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<super::judge_metric::JudgeMetric>,
    /// Argo Rollouts `job` provider: each measurement runs a Kubernetes Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobMetric>,
    /// Argo Rollouts `kayenta` provider (not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub kayenta: Option<serde_json::Value>,
    /// Argo Rollouts `datadog` provider (not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub datadog: Option<serde_json::Value>,
    /// Argo Rollouts `wavefront` provider (not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub wavefront: Option<serde_json::Value>,
    /// Argo Rollouts `newRelic` provider (not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub new_relic: Option<serde_json::Value>,
    /// Argo Rollouts `cloudWatch` provider (not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub cloud_watch: Option<serde_json::Value>,
    /// Argo Rollouts `graphite` provider (not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub graphite: Option<serde_json::Value>,
    /// Argo Rollouts `influxdb` provider (not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub influxdb: Option<serde_json::Value>,
    /// Argo Rollouts `skywalking` provider (not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub skywalking: Option<serde_json::Value>,
    /// Argo Rollouts metric plugins (not supported); each entry counts as one provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub plugin: Option<BTreeMap<String, serde_json::Value>>,
}

impl MetricProvider {
    /// The providers set, by their YAML key (`prometheus`, `job`, `plugin/<name>` per plugin
    /// entry). Validation wants exactly one.
    #[must_use]
    pub fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        let mut add = |set: bool, name: &str| {
            if set {
                names.push(name.to_owned());
            }
        };
        add(self.prometheus.is_some(), "prometheus");
        add(self.job.is_some(), "job");
        add(self.web.is_some(), "web");
        add(self.wavefront.is_some(), "wavefront");
        add(self.kayenta.is_some(), "kayenta");
        add(self.datadog.is_some(), "datadog");
        add(self.new_relic.is_some(), "newRelic");
        add(self.cloud_watch.is_some(), "cloudWatch");
        add(self.graphite.is_some(), "graphite");
        add(self.influxdb.is_some(), "influxdb");
        add(self.skywalking.is_some(), "skywalking");
        add(self.builtin.is_some(), "builtin");
        add(self.judge.is_some(), "judge");
        if let Some(plugins) = &self.plugin {
            names.extend(plugins.keys().map(|k| format!("plugin/{k}")));
        }
        names
    }
}

impl IntOrString {
    /// The value as Kubernetes' `IntOrString.IntValue()` reads it: the integer, or the
    /// string parsed as a base-10 integer, 0 when it does not parse.
    #[must_use]
    pub fn int_value(&self) -> i64 {
        match self {
            IntOrString::Int(i) => *i,
            IntOrString::String(s) => s.parse::<i32>().map_or(0, i64::from),
        }
    }
}

/// A `key: value` header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    /// Header name.
    pub key: String,
    /// Header value (may be an `{{args.NAME}}` template, e.g. from a Secret).
    pub value: String,
}

/// Argo's `prometheus` provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusMetric {
    /// Base URL of the Prometheus HTTP API (scheme and host required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The PromQL query.
    #[serde(default)]
    pub query: String,
    /// Request timeout in seconds (default 30; negative is invalid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// Skip TLS verification.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// Extra request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
    /// Authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
    /// A range query instead of an instant query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range_query: Option<RangeQuery>,
}

/// Provider authentication.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Authentication {
    /// HTTP basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// OAuth2 client credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth2: Option<OAuth2>,
    /// AWS SigV4 (Amazon Managed Prometheus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigv4: Option<Sigv4>,
}

/// HTTP basic authentication.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    /// User name.
    #[serde(default)]
    pub username: String,
    /// Password (usually an `{{args.NAME}}` from a Secret).
    #[serde(default)]
    pub password: String,
}

/// OAuth2 client-credentials flow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuth2 {
    /// Token endpoint.
    #[serde(default)]
    pub token_url: String,
    /// Client id.
    #[serde(default)]
    pub client_id: String,
    /// Client secret.
    #[serde(default)]
    pub client_secret: String,
    /// Scopes requested.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
}

/// AWS SigV4 signing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sigv4 {
    /// AWS region.
    #[serde(default)]
    pub region: String,
    /// AWS profile.
    #[serde(default)]
    pub profile: String,
    /// Role to assume.
    #[serde(default)]
    pub role_arn: String,
}

/// A Prometheus range query: `start` and `end` are expressions (`now() - duration("1h")`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RangeQuery {
    /// Start time expression.
    #[serde(default)]
    pub start: String,
    /// End time expression.
    #[serde(default)]
    pub end: String,
    /// Step, a Go duration.
    #[serde(default)]
    pub step: String,
}

/// Argo's `web` provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebMetric {
    /// HTTP method (`GET` by default, `POST`, `PUT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The URL to call.
    pub url: String,
    /// Request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
    /// Request body as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Request body as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
    pub json_body: Option<serde_json::Value>,
    /// Timeout in seconds (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
    /// JSONPath into the answer (default `{$}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_path: Option<String>,
    /// Skip TLS verification.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// Authentication (OAuth2 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
}

/// Argo's `job` provider: each measurement creates a `batch/v1` Job from `spec`, owned by
/// the AnalysisRun; the Job completing makes the measurement Successful, the Job failing
/// (backoff limit, `activeDeadlineSeconds`) makes it Failed. Conditions are not evaluated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobMetric {
    /// Labels and annotations given to every Job (rollgate's own keys win).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<JobMetadata>,
    /// The Job's spec (`batch/v1` JobSpec), sent to the API server as written: the server
    /// validates it when the Job is created, so fields newer than rollgate still work.
    #[schemars(extend("type" = "object", "x-kubernetes-preserve-unknown-fields" = true))]
    pub spec: serde_json::Value,
}

/// The metadata of the Jobs a `job` metric creates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobMetadata {
    /// Labels added to each Job.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations added to each Job.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// rollgate's `builtin` provider: Flagger's built-in metrics, rendered to exactly
/// Flagger's PromQL for the chosen mesh or ingress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuiltinMetric {
    /// `request-success-rate` (percent) or `request-duration` (milliseconds).
    pub metric: String,
    /// The mesh or ingress whose metrics are queried (Flagger's `spec.provider`:
    /// `istio`, `linkerd`, `nginx`, `gatewayapi:v1`, ...). Ignored when `query` is set.
    #[serde(default)]
    pub mesh: String,
    /// Prometheus address (default: the run's Prometheus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Namespace of the canary.
    #[serde(default)]
    pub namespace: String,
    /// The target workload (Flagger's `targetRef.name`).
    #[serde(default)]
    pub target: String,
    /// Service name (default: the target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Ingress name (default: the target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<String>,
    /// Route name (default: the target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Rate window (default `1m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Flagger's pass band: the check passes when `min <= value <= max`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_range: Option<ThresholdRange>,
    /// A rendered custom query (a Flagger `MetricTemplate`) checked Flagger's way instead
    /// of a built-in one: `metric` is then only a label and the raw value is compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Skip TLS verification (a `MetricTemplate`'s `insecureSkipVerify`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
}

/// Flagger's `thresholdRange`: bounds themselves pass.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdRange {
    /// Lowest passing value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Highest passing value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// A template or run argument.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Argument {
    /// Argument name, used as `{{args.NAME}}`.
    pub name: String,
    /// Literal value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Where the value comes from instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFrom>,
}

/// The source of an argument value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValueFrom {
    /// A key of a Secret in the run's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
    /// A field of the owning object (`metadata.labels['x']`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<FieldRef>,
    /// Rollout side only: the pod-template hash, `Stable` or `Latest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template_hash_value: Option<String>,
}

/// A key in a Secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    pub name: String,
    /// Key within the Secret.
    pub key: String,
}

/// A field path of the owning object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldRef {
    /// The path, such as `metadata.namespace` or `metadata.labels['app']`.
    pub field_path: String,
}
