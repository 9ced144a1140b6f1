//! Flagger built-in metric queries, rendering and checks (see the [module docs](super)).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::core::analysis::model::{BuiltinMetric, Metric, MetricProvider, ThresholdRange};

/// The two built-in metric names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BuiltinName {
    /// `request-success-rate`: percent of non-5xx responses, 0–100.
    RequestSuccessRate,
    /// `request-duration`: latency in whole milliseconds (P99, or the mean for nginx and
    /// skipper).
    RequestDuration,
}

impl BuiltinName {
    /// Both names, in Flagger's order.
    pub const ALL: [BuiltinName; 2] = [
        BuiltinName::RequestSuccessRate,
        BuiltinName::RequestDuration,
    ];

    /// The name as written in a Canary.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestSuccessRate => "request-success-rate",
            Self::RequestDuration => "request-duration",
        }
    }

    /// Parse a name.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.as_str() == name)
    }

    /// The unit of the checked value.
    #[must_use]
    pub fn unit(self) -> &'static str {
        match self {
            Self::RequestSuccessRate => "percent",
            Self::RequestDuration => "milliseconds",
        }
    }
}

impl std::fmt::Display for BuiltinName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Flagger observer: which metrics a mesh or ingress exposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Observer {
    /// Istio (`istio_requests_total`, `istio_request_duration_milliseconds`).
    Istio,
    /// Linkerd (`response_total`, `response_latency_ms`).
    Linkerd,
    /// AWS App Mesh (Envoy, pod-name matched).
    AppMesh,
    /// Contour (Envoy clusters).
    Contour,
    /// Gloo (Envoy upstreams).
    Gloo,
    /// NGINX ingress (mean duration).
    Nginx,
    /// Skipper (mean duration, route-name matched).
    Skipper,
    /// Traefik.
    Traefik,
    /// Open Service Mesh.
    Osm,
    /// Kuma (Envoy).
    Kuma,
    /// Apache APISIX.
    Apisix,
    /// Knative (Envoy clusters of the revision).
    Knative,
    /// The application's own `http_request_duration_seconds` histogram: providers
    /// `kubernetes` and `gatewayapi:*`. Durations are seconds, converted ×1000.
    Http,
}

/// The `--mesh` values rollgate documents, with the observer each selects.
pub const MESHES: &[(&str, Observer)] = &[
    ("istio", Observer::Istio),
    ("linkerd", Observer::Linkerd),
    ("appmesh", Observer::AppMesh),
    ("contour", Observer::Contour),
    ("gloo", Observer::Gloo),
    ("nginx", Observer::Nginx),
    ("skipper", Observer::Skipper),
    ("traefik", Observer::Traefik),
    ("osm", Observer::Osm),
    ("kuma", Observer::Kuma),
    ("apisix", Observer::Apisix),
    ("knative", Observer::Knative),
    ("kubernetes", Observer::Http),
    ("gatewayapi", Observer::Http),
];

impl Observer {
    /// The observer for a Flagger provider name, with Flagger's matching: prefixes for
    /// `appmesh`, `gloo` and `gatewayapi` (`gatewayapi:v1`, `appmesh:v1beta2`), exact
    /// names otherwise. Flagger falls back to Istio for anything else; rollgate returns
    /// `None` instead so a typo is an error, not a silent Istio query.
    #[must_use]
    pub fn for_provider(provider: &str) -> Option<Self> {
        if provider.starts_with("appmesh") {
            return Some(Self::AppMesh);
        }
        if provider.starts_with("gloo") {
            return Some(Self::Gloo);
        }
        if provider.starts_with("gatewayapi") {
            return Some(Self::Http);
        }
        MESHES
            .iter()
            .find(|(name, _)| *name == provider)
            .map(|(_, o)| *o)
    }

    /// The observer's name as Flagger's tests call it (`http` for kubernetes/gatewayapi).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Istio => "istio",
            Self::Linkerd => "linkerd",
            Self::AppMesh => "appmesh",
            Self::Contour => "contour",
            Self::Gloo => "gloo",
            Self::Nginx => "nginx",
            Self::Skipper => "skipper",
            Self::Traefik => "traefik",
            Self::Osm => "osm",
            Self::Kuma => "kuma",
            Self::Apisix => "apisix",
            Self::Knative => "knative",
            Self::Http => "http",
        }
    }

    /// The query template (whitespace already collapsed; rendering collapses again).
    #[must_use]
    pub fn template(self, metric: BuiltinName) -> &'static str {
        use BuiltinName::{RequestDuration as D, RequestSuccessRate as S};
        match (self, metric) {
            (Self::Istio, S) => {
                r#" sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}", response_code!~"5.*" }[{{ interval }}] ) ) / sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}" }[{{ interval }}] ) ) * 100"#
            }
            (Self::Istio, D) => {
                r#" histogram_quantile( 0.99, sum( rate( istio_request_duration_milliseconds_bucket{ reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload=~"{{ target }}" }[{{ interval }}] ) ) by (le) )"#
            }
            (Self::Linkerd, S) => {
                r#" sum( rate( response_total{ namespace="{{ namespace }}", deployment=~"{{ target }}", classification!="failure", direction="inbound" }[{{ interval }}] ) ) / sum( rate( response_total{ namespace="{{ namespace }}", deployment=~"{{ target }}", direction="inbound" }[{{ interval }}] ) ) * 100"#
            }
            (Self::Linkerd, D) => {
                r#" histogram_quantile( 0.99, sum( rate( response_latency_ms_bucket{ namespace="{{ namespace }}", deployment=~"{{ target }}", direction="inbound" }[{{ interval }}] ) ) by (le) )"#
            }
            (Self::AppMesh, S) => {
                r#" sum( rate( envoy_cluster_upstream_rq{ kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", envoy_response_code!~"5.*" }[{{ interval }}] ) ) / sum( rate( envoy_cluster_upstream_rq{ kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[{{ interval }}] ) ) * 100"#
            }
            (Self::AppMesh, D) => {
                r#" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[{{ interval }}] ) ) by (le) )"#
            }
            (Self::Contour, S) => {
                r#" sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[{{ interval }}] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+", }[{{ interval }}] ) ) * 100"#
            }
            (Self::Contour, D) => {
                r#" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+", }[{{ interval }}] ) ) by (le) )"#
            }
            (Self::Gloo, S) => {
                r#" sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[{{ interval }}] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", }[{{ interval }}] ) ) * 100"#
            }
            (Self::Gloo, D) => {
                r#" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+", }[{{ interval }}] ) ) by (le) )"#
            }
            (Self::Nginx, S) => {
                r#" sum( rate( nginx_ingress_controller_requests{ namespace="{{ namespace }}", ingress="{{ ingress }}", canary!="", status!~"5.*" }[{{ interval }}] ) ) / sum( rate( nginx_ingress_controller_requests{ namespace="{{ namespace }}", ingress="{{ ingress }}", canary!="" }[{{ interval }}] ) ) * 100"#
            }
            (Self::Nginx, D) => {
                r#" sum( rate( nginx_ingress_controller_response_duration_seconds_sum{ namespace="{{ namespace }}", ingress="{{ ingress }}", canary!="" }[{{ interval }}] ) ) / sum( rate( nginx_ingress_controller_response_duration_seconds_count{ namespace="{{ namespace }}", ingress="{{ ingress }}", canary!="" }[{{ interval }}] ) ) * 1000"#
            }
            (Self::Skipper, S) => {
                r#"{{- $route := printf "kube(ew)?_%s__%s_canary__.*__%s_canary(_[0-9]+)?" namespace ingress service }} sum(rate(skipper_response_duration_seconds_bucket{route=~"{{ $route }}",code!~"5..",le="+Inf"}[{{ interval }}])) / sum(rate(skipper_response_duration_seconds_bucket{route=~"{{ $route }}",le="+Inf"}[{{ interval }}])) * 100"#
            }
            (Self::Skipper, D) => {
                r#"{{- $route := printf "kube(ew)?_%s__%s_canary__.*__%s_canary(_[0-9]+)?" namespace ingress service }} sum(rate(skipper_serve_route_duration_seconds_sum{route=~"{{ $route }}"}[{{ interval }}])) / sum(rate(skipper_serve_route_duration_seconds_count{route=~"{{ $route }}"}[{{ interval }}])) * 1000"#
            }
            (Self::Traefik, S) => {
                r#" sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd", code!~"5..", le="+Inf" }[{{ interval }}] ) ) / sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd", le="+Inf" }[{{ interval }}] ) ) * 100"#
            }
            (Self::Traefik, D) => {
                r#" histogram_quantile( 0.99, sum( rate( traefik_service_request_duration_seconds_bucket{ service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd" }[{{ interval }}] ) ) by (le) ) * 1000"#
            }
            (Self::Osm, S) => {
                r#" sum( rate( osm_request_total{ destination_namespace="{{ namespace }}", destination_kind="Deployment", destination_name="{{ target }}", response_code!~"5.*" }[{{ interval }}] ) ) / sum( rate( osm_request_total{ destination_namespace="{{ namespace }}", destination_kind="Deployment", destination_name="{{ target }}" }[{{ interval }}] ) ) * 100"#
            }
            (Self::Osm, D) => {
                r#" histogram_quantile( 0.99, sum( rate( osm_request_duration_ms_bucket{ destination_namespace="{{ namespace }}", destination_kind="Deployment", destination_name="{{ target }}" }[{{ interval }}] ) ) by (le) )"#
            }
            (Self::Kuma, S) => {
                r#" sum( rate( envoy_cluster_upstream_rq{ service=~"{{ target }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+", envoy_response_code!~"5.*" }[{{ interval }}] ) ) / sum( rate( envoy_cluster_upstream_rq{ service=~"{{ target }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+", }[{{ interval }}] ) ) * 100"#
            }
            (Self::Kuma, D) => {
                r#" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ service=~"{{ target }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+", }[{{ interval }}] ) ) by (le) )"#
            }
            (Self::Apisix, S) => {
                r#" sum( rate( apisix_http_status{ route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+", code!~"5.." }[{{ interval }}] ) ) / sum( rate( apisix_http_status{ route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+" }[{{ interval }}] ) ) * 100"#
            }
            (Self::Apisix, D) => {
                r#" histogram_quantile( 0.99, sum( rate( apisix_http_latency_bucket{ type=~"request", route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+" }[{{ interval }}] ) ) by (le) )"#
            }
            (Self::Knative, S) => {
                r#" sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"{{ namespace }}/{{ route }}", envoy_response_code!~"5.*" }[{{ interval }}] ) ) / sum( rate( envoy_cluster_upstream_rq{ envoy_cluster_name=~"{{ namespace }}/{{ route }}", }[{{ interval }}] ) ) * 100"#
            }
            (Self::Knative, D) => {
                r#" histogram_quantile( 0.99, sum( rate( envoy_cluster_upstream_rq_time_bucket{ envoy_cluster_name=~"{{ namespace }}/{{ route }}", }[{{ interval }}] ) ) by (le) )"#
            }
            (Self::Http, S) => {
                r#" sum( rate( http_request_duration_seconds_count{ kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)", status!~"5.*" }[{{ interval }}] ) ) / sum( rate( http_request_duration_seconds_count{ kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[{{ interval }}] ) ) * 100"#
            }
            (Self::Http, D) => {
                r#" histogram_quantile( 0.99, sum( rate( http_request_duration_seconds_bucket{ kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)" }[{{ interval }}] ) ) by (le) )"#
            }
        }
    }

    /// Render the built-in query for `model`, exactly as Flagger sends it.
    ///
    /// # Errors
    /// [`RenderError`] when the template refers to something the model lacks.
    pub fn render(self, metric: BuiltinName, model: &TemplateModel) -> Result<String, RenderError> {
        if self == Self::Skipper {
            // Skipper route names use `_` for every non-word character.
            let enc = |s: &str| {
                s.chars()
                    .map(|c| {
                        if c.is_alphanumeric() || c == '_' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect::<String>()
            };
            let model = TemplateModel {
                name: enc(&model.name),
                namespace: enc(&model.namespace),
                target: enc(&model.target),
                service: enc(&model.service),
                ingress: enc(&model.ingress),
                route: model.route.clone(),
                interval: model.interval.clone(),
                variables: model.variables.clone(),
            };
            return render_query(self.template(metric), &model);
        }
        render_query(self.template(metric), model)
    }

    /// Convert the raw query value to the checked unit: success rate unchanged; duration
    /// ×1000 for the `http` observer (seconds), then truncated toward zero to whole
    /// milliseconds (Go's `int64(value)`; infinities saturate).
    #[must_use]
    pub fn to_unit(self, metric: BuiltinName, raw: f64) -> f64 {
        match metric {
            BuiltinName::RequestSuccessRate => raw,
            BuiltinName::RequestDuration => {
                let ms = if self == Self::Http {
                    raw * 1000.0
                } else {
                    raw
                };
                #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
                {
                    (ms as i64) as f64
                }
            }
        }
    }
}

/// The variables of a Flagger query template (`MetricTemplateModel`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TemplateModel {
    /// `{{ name }}`: the canary name.
    pub name: String,
    /// `{{ namespace }}`: the canary namespace.
    pub namespace: String,
    /// `{{ target }}`: the target workload (`targetRef.name`).
    pub target: String,
    /// `{{ service }}`: `service.name`, or the target.
    pub service: String,
    /// `{{ ingress }}`: `ingressRef.name`, or the target.
    pub ingress: String,
    /// `{{ route }}`: `routeRef.name`, or the target (Knative: the latest revision).
    pub route: String,
    /// `{{ interval }}`: the metric interval (default `1m`).
    pub interval: String,
    /// `{{ variables.KEY }}`: `templateVariables`.
    pub variables: BTreeMap<String, String>,
}

impl TemplateModel {
    /// A model with Flagger's defaults: name, service, ingress and route default to the
    /// target, interval to `1m`.
    #[must_use]
    pub fn new(namespace: &str, target: &str) -> Self {
        Self {
            name: target.to_owned(),
            namespace: namespace.to_owned(),
            target: target.to_owned(),
            service: target.to_owned(),
            ingress: target.to_owned(),
            route: target.to_owned(),
            interval: "1m".to_owned(),
            variables: BTreeMap::new(),
        }
    }

    fn lookup(&self, name: &str) -> Option<&str> {
        Some(match name {
            "name" => &self.name,
            "namespace" => &self.namespace,
            "target" => &self.target,
            "service" => &self.service,
            "ingress" => &self.ingress,
            "route" => &self.route,
            "interval" => &self.interval,
            _ => return None,
        })
    }
}

/// A template that does not render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// `{{ variables.KEY }}` with no such template variable.
    #[error("map has no entry for key \"{0}\"")]
    MissingVariable(String),
    /// An action naming an unknown function or variable.
    #[error("function \"{0}\" not defined")]
    UnknownName(String),
    /// An action outside the supported subset of Go templates, or unbalanced braces.
    #[error("unsupported template action \"{{{{{0}}}}}\"")]
    Unsupported(String),
}

/// Replace every run of whitespace (Go's `\s`: space, `\t`, `\n`, `\f`, `\r`) by one
/// space, as Flagger's Prometheus client does before sending a query.
#[must_use]
pub fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_space = false;
    for c in s.chars() {
        if matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r') {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

/// Render a Flagger query template (the subset of Go templates Flagger's queries and
/// `MetricTemplate`s use: `{{ namespace }}`-style names, `{{ variables.KEY }}`, `{{-`/`-}}`
/// trimming, `{{ $v := printf "..%s.." a b }}` and `{{ $v }}`), then collapse whitespace.
///
/// # Errors
/// [`RenderError`]: a missing template variable (Flagger's `missingkey=error`), an unknown
/// name, an unsupported action.
pub fn render_query(template: &str, model: &TemplateModel) -> Result<String, RenderError> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut locals: BTreeMap<String, String> = BTreeMap::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .ok_or_else(|| RenderError::Unsupported(after.to_owned()))?;
        let mut action = &after[..close];
        if let Some(a) = action.strip_prefix('-')
            && a.starts_with(char::is_whitespace)
        {
            action = a;
            let trimmed = out.trim_end().len();
            out.truncate(trimmed);
        }
        let mut trim_right = false;
        if let Some(a) = action.strip_suffix('-')
            && a.ends_with(char::is_whitespace)
        {
            action = a;
            trim_right = true;
        }
        rest = &after[close + 2..];
        if trim_right {
            rest = rest.trim_start();
        }
        let action = action.trim();
        if let Some((var, expr)) = action.split_once(":=") {
            let var = var.trim();
            if !var.starts_with('$') {
                return Err(RenderError::Unsupported(action.to_owned()));
            }
            let value = eval_expr(expr.trim(), model, &locals)?;
            locals.insert(var.to_owned(), value);
        } else {
            out.push_str(&eval_expr(action, model, &locals)?);
        }
    }
    out.push_str(rest);
    Ok(collapse_whitespace(&out))
}

fn eval_expr(
    expr: &str,
    model: &TemplateModel,
    locals: &BTreeMap<String, String>,
) -> Result<String, RenderError> {
    if let Some(args) = expr.strip_prefix("printf ") {
        let args = args.trim();
        let fmt_end = args
            .strip_prefix('"')
            .and_then(|a| a.find('"'))
            .ok_or_else(|| RenderError::Unsupported(expr.to_owned()))?;
        let format = &args[1..=fmt_end];
        let values = args[fmt_end + 2..]
            .split_whitespace()
            .map(|a| eval_expr(a, model, locals))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = String::new();
        let mut values = values.into_iter();
        let mut pieces = format.split("%s");
        if let Some(first) = pieces.next() {
            out.push_str(first);
        }
        for piece in pieces {
            out.push_str(&values.next().unwrap_or_else(|| "%!s(MISSING)".to_owned()));
            out.push_str(piece);
        }
        return Ok(out);
    }
    if expr.starts_with('$') {
        return locals
            .get(expr)
            .cloned()
            .ok_or_else(|| RenderError::UnknownName(expr.to_owned()));
    }
    if let Some(key) = expr.strip_prefix("variables.") {
        return model
            .variables
            .get(key)
            .cloned()
            .ok_or_else(|| RenderError::MissingVariable(key.to_owned()));
    }
    if expr.contains(char::is_whitespace) || expr.is_empty() {
        return Err(RenderError::Unsupported(expr.to_owned()));
    }
    model
        .lookup(expr)
        .map(str::to_owned)
        .ok_or_else(|| RenderError::UnknownName(expr.to_owned()))
}

/// The outcome of one Flagger metric check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOutcome {
    /// The check passed.
    pub passed: bool,
    /// Flagger's event text when it did not (`Halt podinfo.test advancement success rate
    /// 90.00% < 99%`), empty when it passed.
    pub message: String,
}

/// Go's `%v` of a float64 for the messages (`99`, `99.5`).
fn go_v(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{f}")
    }
}

/// Go's `time.Duration.String()` of a whole number of milliseconds (`100ms`, `1.5s`,
/// `1m0s`, `0s`).
#[must_use]
pub fn go_duration_ms(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_owned();
    }
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    if abs < 1000 {
        return format!("{sign}{abs}ms");
    }
    let hours = abs / 3_600_000;
    let minutes = (abs / 60_000) % 60;
    let millis = abs % 60_000;
    let secs = millis / 1000;
    let frac = millis % 1000;
    let mut s = String::from(sign);
    if hours > 0 {
        s.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        s.push_str(&format!("{minutes}m"));
    }
    s.push_str(&secs.to_string());
    if frac > 0 {
        let f = format!("{frac:03}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('s');
    s
}

/// Flagger's check of a built-in metric value (already in its unit, see
/// [`Observer::to_unit`]) against `thresholdRange` (bounds pass). Without a range the
/// legacy `threshold` of 0 applies: a success rate passes unless negative, a duration
/// fails on any positive value. Duration bounds are truncated to whole milliseconds as
/// in Flagger. `canary` is `<name>.<namespace>` for the messages.
#[must_use]
pub fn check(
    metric: BuiltinName,
    value: f64,
    range: Option<&ThresholdRange>,
    canary: &str,
) -> CheckOutcome {
    let pass = CheckOutcome {
        passed: true,
        message: String::new(),
    };
    let fail = |message: String| CheckOutcome {
        passed: false,
        message,
    };
    match metric {
        BuiltinName::RequestSuccessRate => {
            let (min, max) = match range {
                Some(r) => (r.min, r.max),
                None => (Some(0.0), None),
            };
            if let Some(min) = min
                && value < min
            {
                return fail(format!(
                    "Halt {canary} advancement success rate {value:.2}% < {}%",
                    go_v(min)
                ));
            }
            if let Some(max) = max
                && value > max
            {
                return fail(format!(
                    "Halt {canary} advancement success rate {value:.2}% > {}%",
                    go_v(max)
                ));
            }
            pass
        }
        BuiltinName::RequestDuration => {
            #[allow(clippy::cast_possible_truncation)]
            let ms = |f: f64| f as i64;
            let v = ms(value);
            let (min, max) = match range {
                Some(r) => (r.min.map(ms), r.max.map(ms)),
                None => (None, Some(0)),
            };
            if let Some(min) = min
                && v < min
            {
                return fail(format!(
                    "Halt {canary} advancement request duration {} < {}",
                    go_duration_ms(v),
                    go_duration_ms(min)
                ));
            }
            if let Some(max) = max
                && v > max
            {
                return fail(format!(
                    "Halt {canary} advancement request duration {} > {}",
                    go_duration_ms(v),
                    go_duration_ms(max)
                ));
            }
            pass
        }
    }
}

/// Flagger's check of a custom (`MetricTemplate`) metric named `name`: `thresholdRange`
/// bounds pass; without a range the legacy threshold of 0 applies (any positive value
/// fails). Messages are Flagger's (`Halt podinfo.test advancement error-rate 10.00 > 5`).
#[must_use]
pub fn check_custom(
    name: &str,
    value: f64,
    range: Option<&ThresholdRange>,
    canary: &str,
) -> CheckOutcome {
    let (min, max) = match range {
        Some(r) => (r.min, r.max),
        None => (None, Some(0.0)),
    };
    if let Some(min) = min
        && value < min
    {
        return CheckOutcome {
            passed: false,
            message: format!(
                "Halt {canary} advancement {name} {value:.2} < {}",
                go_v(min)
            ),
        };
    }
    if let Some(max) = max
        && value > max
    {
        return CheckOutcome {
            passed: false,
            message: format!(
                "Halt {canary} advancement {name} {value:.2} > {}",
                go_v(max)
            ),
        };
    }
    CheckOutcome {
        passed: true,
        message: String::new(),
    }
}

/// Flagger's value of a query answer: the last sample of the vector wins; no sample, or
/// a NaN, is "no values found" (`None`).
#[must_use]
pub fn last_value(samples: &[f64]) -> Option<f64> {
    samples.last().copied().filter(|v| !v.is_nan())
}

/// Flagger's event when a query returned no data.
#[must_use]
pub fn no_values_message(provider: &str, metric: &str, target: &str, namespace: &str) -> String {
    let base = format!(
        "Halt advancement no values found for {provider} metric {metric} probably {target}.{namespace} is not receiving traffic"
    );
    if metric == BuiltinName::RequestSuccessRate.as_str() {
        format!("{base}: running query failed: no values found")
    } else {
        base
    }
}

// ----- Flagger MetricTemplate ------------------------------------------------------------

/// The API version of Flagger's `MetricTemplate`.
pub const METRIC_TEMPLATE_API_VERSION: &str = "flagger.app/v1beta1";

/// A Flagger `MetricTemplate` (`flagger.app/v1beta1`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricTemplate {
    /// `flagger.app/v1beta1`.
    #[serde(default)]
    pub api_version: String,
    /// `MetricTemplate`.
    #[serde(default)]
    pub kind: String,
    /// Name and namespace.
    #[serde(default)]
    pub metadata: TemplateMetadata,
    /// The provider and the query.
    pub spec: MetricTemplateSpec,
}

/// Object metadata of a `MetricTemplate` (the fields rollgate reads).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMetadata {
    /// Template name.
    #[serde(default)]
    pub name: String,
    /// Template namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `MetricTemplate.spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricTemplateSpec {
    /// Where the query runs.
    #[serde(default)]
    pub provider: MetricTemplateProvider,
    /// The query, a Go template over the [`TemplateModel`].
    #[serde(default)]
    pub query: String,
}

/// `MetricTemplate.spec.provider`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricTemplateProvider {
    /// `prometheus` (the only type rollgate runs; Flagger treats unknown types as it).
    #[serde(default, rename = "type")]
    pub kind: String,
    /// Prometheus address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// A Secret with `username`/`password` or `token` (needs the cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
    /// Skip TLS verification.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// A reference to a Secret by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SecretRef {
    /// Secret name.
    #[serde(default)]
    pub name: String,
}

/// How one analysis uses a `MetricTemplate`: what Flagger takes from the Canary (the
/// model) and from `analysis.metrics[]` (name, `thresholdRange`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TemplateUse {
    /// The metric's name in the run (default: the template name).
    pub metric_name: Option<String>,
    /// The template variables.
    pub model: TemplateModel,
    /// The pass band (`thresholdRange`; bounds pass).
    pub threshold_range: Option<ThresholdRange>,
}

/// The argument names [`TemplateUse::from_args`] reads.
pub const TEMPLATE_ARGS: &[&str] = &[
    "namespace",
    "target",
    "name",
    "service",
    "ingress",
    "route",
    "interval",
    "thresholdRange.min",
    "thresholdRange.max",
    "variables.KEY",
];

/// A `MetricTemplate` that cannot be turned into a metric.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    /// `apiVersion`/`kind` are not Flagger's `MetricTemplate`.
    #[error("not a Flagger MetricTemplate (apiVersion {api_version:?}, kind {kind:?})")]
    NotAMetricTemplate {
        /// The apiVersion found.
        api_version: String,
        /// The kind found.
        kind: String,
    },
    /// `spec.provider.type` is a provider rollgate cannot query.
    #[error(
        "MetricTemplate {template}: spec.provider.type {kind:?} is not supported (only prometheus)"
    )]
    UnsupportedProvider {
        /// Template name.
        template: String,
        /// The type found.
        kind: String,
    },
    /// `spec.provider.secretRef` needs the cluster.
    #[error(
        "MetricTemplate {template}: spec.provider.secretRef is not supported outside the cluster; put the credentials in the address or use --prometheus"
    )]
    SecretRef {
        /// Template name.
        template: String,
    },
    /// `spec.query` is empty.
    #[error("MetricTemplate {template}: spec.query is empty")]
    EmptyQuery {
        /// Template name.
        template: String,
    },
    /// A required argument is missing or malformed.
    #[error("MetricTemplate {template}: argument {arg}: {reason}")]
    Argument {
        /// Template name.
        template: String,
        /// Argument name.
        arg: String,
        /// What is wrong.
        reason: String,
    },
    /// `spec.query` does not render.
    #[error("MetricTemplate {template}: spec.query: rendering query failed: {source}")]
    Render {
        /// Template name.
        template: String,
        /// The cause.
        source: RenderError,
    },
}

impl MetricTemplate {
    /// Whether a parsed YAML document is a Flagger `MetricTemplate`.
    #[must_use]
    pub fn is_metric_template(doc: &serde_yaml::Value) -> bool {
        doc.get("kind").and_then(serde_yaml::Value::as_str) == Some("MetricTemplate")
            && doc
                .get("apiVersion")
                .and_then(serde_yaml::Value::as_str)
                .is_some_and(|v| v.starts_with("flagger.app/"))
    }

    /// Turn the template into one rollgate metric of the `builtin` provider: the query
    /// rendered for `usage.model`, checked Flagger's way (no data fails, the last sample
    /// wins, `thresholdRange` bounds pass; raw value, no unit conversion). The metric has
    /// no count or interval, so it is measured once.
    ///
    /// # Errors
    /// [`TemplateError`] for a non-prometheus provider, a `secretRef`, an empty query or a
    /// query that does not render (a missing `{{ variables.x }}`).
    pub fn to_metric(&self, usage: &TemplateUse) -> Result<Metric, TemplateError> {
        let template = self.metadata.name.clone();
        if !self.api_version.is_empty() && !self.api_version.starts_with("flagger.app/")
            || !self.kind.is_empty() && self.kind != "MetricTemplate"
        {
            return Err(TemplateError::NotAMetricTemplate {
                api_version: self.api_version.clone(),
                kind: self.kind.clone(),
            });
        }
        let kind = self.spec.provider.kind.as_str();
        if !(kind.is_empty() || kind == "prometheus") {
            return Err(TemplateError::UnsupportedProvider {
                template,
                kind: kind.to_owned(),
            });
        }
        if self.spec.provider.secret_ref.is_some() {
            return Err(TemplateError::SecretRef { template });
        }
        if self.spec.query.trim().is_empty() {
            return Err(TemplateError::EmptyQuery { template });
        }
        let query = render_query(&self.spec.query, &usage.model).map_err(|source| {
            TemplateError::Render {
                template: template.clone(),
                source,
            }
        })?;
        let name = usage
            .metric_name
            .clone()
            .unwrap_or_else(|| template.clone());
        Ok(Metric {
            name,
            provider: MetricProvider {
                builtin: Some(BuiltinMetric {
                    metric: template,
                    mesh: String::new(),
                    address: self.spec.provider.address.clone(),
                    namespace: usage.model.namespace.clone(),
                    target: usage.model.target.clone(),
                    service: Some(usage.model.service.clone()),
                    ingress: Some(usage.model.ingress.clone()),
                    route: Some(usage.model.route.clone()),
                    window: Some(usage.model.interval.clone()),
                    threshold_range: usage.threshold_range.clone(),
                    query: Some(query),
                    insecure: self.spec.provider.insecure_skip_verify,
                }),
                ..MetricProvider::default()
            },
            ..Metric::default()
        })
    }
}

impl TemplateUse {
    /// Read the model and the threshold from `--arg NAME=VALUE` pairs (the convention
    /// for running a `MetricTemplate` outside a Canary): `namespace` (default: the
    /// template's namespace), `target` (required), `name`, `service`, `ingress`, `route`
    /// (default: the target), `interval` (default `1m`), `thresholdRange.min`,
    /// `thresholdRange.max`, and `variables.KEY` for each template variable.
    ///
    /// # Errors
    /// [`TemplateError::Argument`] for a missing target or namespace, or a bound that is
    /// not a number.
    pub fn from_args(
        template: &MetricTemplate,
        args: &BTreeMap<String, String>,
    ) -> Result<Self, TemplateError> {
        let tname = template.metadata.name.clone();
        let missing = |arg: &str| TemplateError::Argument {
            template: tname.clone(),
            arg: arg.to_owned(),
            reason: "is required (pass --arg NAME=VALUE)".to_owned(),
        };
        let target = args
            .get("target")
            .cloned()
            .ok_or_else(|| missing("target"))?;
        let namespace = args
            .get("namespace")
            .cloned()
            .or_else(|| template.metadata.namespace.clone())
            .ok_or_else(|| missing("namespace"))?;
        let mut model = TemplateModel::new(&namespace, &target);
        for (field, arg) in [
            (&mut model.name, "name"),
            (&mut model.service, "service"),
            (&mut model.ingress, "ingress"),
            (&mut model.route, "route"),
            (&mut model.interval, "interval"),
        ] {
            if let Some(v) = args.get(arg) {
                v.clone_into(field);
            }
        }
        for (k, v) in args {
            if let Some(key) = k.strip_prefix("variables.") {
                model.variables.insert(key.to_owned(), v.clone());
            }
        }
        let bound = |arg: &str| -> Result<Option<f64>, TemplateError> {
            args.get(arg)
                .map(|v| {
                    v.trim()
                        .parse::<f64>()
                        .map_err(|_| TemplateError::Argument {
                            template: tname.clone(),
                            arg: arg.to_owned(),
                            reason: format!("{v:?} is not a number"),
                        })
                })
                .transpose()
        };
        let min = bound("thresholdRange.min")?;
        let max = bound("thresholdRange.max")?;
        let threshold_range =
            (min.is_some() || max.is_some()).then_some(ThresholdRange { min, max });
        Ok(Self {
            metric_name: None,
            model,
            threshold_range,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration_ms(0), "0s");
        assert_eq!(go_duration_ms(100), "100ms");
        assert_eq!(go_duration_ms(1500), "1.5s");
        assert_eq!(go_duration_ms(60_000), "1m0s");
        assert_eq!(go_duration_ms(3_723_000), "1h2m3s");
    }

    #[test]
    fn duration_bounds_are_inclusive_and_truncated() {
        let r = ThresholdRange {
            min: None,
            max: Some(500.0),
        };
        let v = Observer::Istio.to_unit(BuiltinName::RequestDuration, 500.9);
        assert!(check(BuiltinName::RequestDuration, v, Some(&r), "p.ns").passed);
        let v = Observer::Istio.to_unit(BuiltinName::RequestDuration, 501.0);
        let out = check(BuiltinName::RequestDuration, v, Some(&r), "p.ns");
        assert_eq!(
            out.message,
            "Halt p.ns advancement request duration 501ms > 500ms"
        );
        assert_eq!(
            Observer::Http.to_unit(BuiltinName::RequestDuration, 0.1),
            100.0
        );
    }

    #[test]
    fn success_rate_bounds() {
        let r = ThresholdRange {
            min: Some(99.0),
            max: None,
        };
        assert!(check(BuiltinName::RequestSuccessRate, 99.0, Some(&r), "p.ns").passed);
        let out = check(BuiltinName::RequestSuccessRate, 98.5, Some(&r), "p.ns");
        assert_eq!(
            out.message,
            "Halt p.ns advancement success rate 98.50% < 99%"
        );
    }

    #[test]
    fn missing_variable_is_an_error() {
        let model = TemplateModel::new("default", "app");
        assert_eq!(
            render_query("x{{ variables.cluster }}", &model),
            Err(RenderError::MissingVariable("cluster".into()))
        );
    }
}

/// A file that holds Flagger `MetricTemplate`s, with the problem and the document.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}: document {document}: {message}")]
pub struct ConvertError {
    /// File name.
    pub file: String,
    /// 1-based document index in the file.
    pub document: usize,
    /// What is wrong.
    pub message: String,
}

/// Rewrite the Flagger `MetricTemplate`s of a YAML file as rollgate `AnalysisTemplate`s,
/// rendered for the `NAME=VALUE` arguments (see [`TemplateUse::from_args`]); other
/// documents are kept. A file without `MetricTemplate`s is returned unchanged (so its line
/// numbers stay right).
///
/// Each template becomes one `builtin` metric named after the template, measured once,
/// whose query is the rendered one and whose pass band is `thresholdRange.min/max`; the
/// model values used are listed as the template's `args`.
///
/// # Errors
/// [`ConvertError`] naming the file and document: malformed YAML, or a template that
/// cannot be turned into a metric ([`TemplateError`]).
pub fn convert_metric_templates(
    file: &str,
    text: &str,
    args: &BTreeMap<String, String>,
) -> Result<Option<String>, ConvertError> {
    if !text.contains("MetricTemplate") {
        return Ok(None);
    }
    let mut docs = Vec::new();
    let mut converted = false;
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let err = |message: String| ConvertError {
            file: file.to_owned(),
            document: i + 1,
            message,
        };
        let value = serde_yaml::Value::deserialize(de).map_err(|e| err(e.to_string()))?;
        if value.is_null() {
            continue;
        }
        if !MetricTemplate::is_metric_template(&value) {
            docs.push(value);
            continue;
        }
        let template: MetricTemplate =
            serde_yaml::from_value(value).map_err(|e| err(format!("MetricTemplate: {e}")))?;
        let usage = TemplateUse::from_args(&template, args).map_err(|e| err(e.to_string()))?;
        let metric = template.to_metric(&usage).map_err(|e| err(e.to_string()))?;
        let m = &usage.model;
        let mut used: Vec<(String, String)> = vec![
            ("namespace".into(), m.namespace.clone()),
            ("target".into(), m.target.clone()),
        ];
        for key in ["name", "service", "ingress", "route", "interval"] {
            if let Some(v) = args.get(key) {
                used.push((key.to_owned(), v.clone()));
            }
        }
        for (k, v) in args {
            if k.starts_with("variables.") || k.starts_with("thresholdRange.") {
                used.push((k.clone(), v.clone()));
            }
        }
        let spec = crate::core::analysis::model::AnalysisTemplateSpec {
            metrics: vec![metric],
            args: used
                .into_iter()
                .map(|(name, value)| crate::core::analysis::model::Argument {
                    name,
                    value: Some(value),
                    value_from: None,
                })
                .collect(),
            ..Default::default()
        };
        let doc = serde_json::json!({
            "apiVersion": "rollgate.dev/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": {"name": template.metadata.name},
            "spec": spec,
        });
        docs.push(serde_yaml::to_value(doc).map_err(|e| err(e.to_string()))?);
        converted = true;
    }
    if !converted {
        return Ok(None);
    }
    let mut out = String::new();
    for d in docs {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&d).map_err(|e| ConvertError {
            file: file.to_owned(),
            document: 0,
            message: e.to_string(),
        })?);
    }
    Ok(Some(out))
}
