//! Argo's `prometheus` provider, through the `prometheus-http-query` crate.
//!
//! Authentication: headers (a bearer token is an `Authorization` header), basic auth and
//! OAuth2 client credentials. Result shaping follows Argo exactly: a scalar is a float, a
//! vector is a list of floats (also with one sample, and an empty, non-nil list with
//! none), a matrix is flattened in series order, and any other result type is the error
//! `Prometheus metric type not supported`. The measurement `value` is Go's float text (`10`, `NaN`, `+Inf`, `[10,11]`).
//! Warnings go to the measurement metadata (`warnings`), the resolved query to the metric
//! metadata (`ResolvedPrometheusQuery`).
//!
//! [`PrometheusClient`] is shared with the `builtin` provider: it owns the address, the
//! timeout, headers and authentication, and returns the decoded [`QueryData`].

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use futures::FutureExt as _;
use futures::future::BoxFuture;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

use super::duration::parse_go_duration;
use super::{Provider, ProviderError, ProviderSettings};
use crate::core::analysis::model::{Authentication, Header, Metric, PrometheusMetric, RangeQuery};
use crate::core::analysis::value::{Observation, Value};

/// Argo's default query timeout, seconds.
pub const DEFAULT_TIMEOUT_SECONDS: i64 = 30;

/// Longest server body quoted in an error message.
const MAX_BODY_IN_ERROR: usize = 512;

/// What a Prometheus query returned, labels dropped.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryData {
    /// `resultType: scalar`.
    Scalar(f64),
    /// `resultType: vector`: one value per series, in the server's order.
    Vector(Vec<f64>),
    /// `resultType: matrix`: the values of each series, series in the server's order.
    Matrix(Vec<Vec<f64>>),
    /// Any other result type (`string`), by name.
    Other(String),
}

/// A decoded query answer.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryAnswer {
    /// The data.
    pub data: QueryData,
    /// Warnings the server attached to the answer.
    pub warnings: Vec<String>,
}

/// OAuth2 client-credentials settings (Argo's `authentication.oauth2`).
#[derive(Clone)]
struct OAuth2Client {
    http: reqwest::Client,
    token_url: String,
    shown_token_url: String,
    client_id: String,
    client_secret: String,
    scopes: Vec<String>,
}

impl OAuth2Client {
    /// Fetch a token with the client-credentials grant (credentials in the basic auth
    /// header, RFC 6749 section 2.3.1).
    async fn token(&self) -> Result<String, String> {
        let mut form = vec![("grant_type", "client_credentials".to_owned())];
        if !self.scopes.is_empty() {
            form.push(("scope", self.scopes.join(" ")));
        }
        let body = serde_urlencoded_form(&form);
        let response = self
            .http
            .post(&self.token_url)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "cannot obtain an OAuth2 token from {}: {}",
                    self.shown_token_url,
                    if e.is_timeout() {
                        "timeout"
                    } else {
                        "request failed"
                    }
                )
            })?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!(
                "cannot obtain an OAuth2 token from {}: HTTP {}",
                self.shown_token_url,
                status.as_u16()
            ));
        }
        let parsed: serde_json::Value = serde_json::from_str(&text).map_err(|_| {
            format!(
                "cannot obtain an OAuth2 token from {}: the answer is not JSON",
                self.shown_token_url
            )
        })?;
        parsed
            .get("access_token")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                format!(
                    "cannot obtain an OAuth2 token from {}: no access_token in the answer",
                    self.shown_token_url
                )
            })
    }
}

/// `application/x-www-form-urlencoded` encoding of `pairs`.
fn serde_urlencoded_form(pairs: &[(&str, String)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    ser.finish()
}

/// A configured connection to one Prometheus HTTP API.
#[derive(Clone)]
pub struct PrometheusClient {
    client: prometheus_http_query::Client,
    oauth2: Option<OAuth2Client>,
    /// The address without user info, for messages.
    shown_address: String,
    timeout: Duration,
}

impl std::fmt::Debug for PrometheusClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusClient")
            .field("address", &self.shown_address)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Connection options of a [`PrometheusClient`].
#[derive(Debug, Clone, Default)]
pub struct ClientOptions<'a> {
    /// The metric's own address.
    pub address: Option<&'a str>,
    /// Timeout in seconds (default 30; negative is an error; 0 means the default).
    pub timeout_seconds: Option<i64>,
    /// Skip TLS verification.
    pub insecure: bool,
    /// Extra headers (an `Authorization: Bearer ...` header is bearer authentication).
    pub headers: &'a [Header],
    /// Authentication.
    pub authentication: Option<&'a Authentication>,
}

impl PrometheusClient {
    /// Configure a client.
    ///
    /// # Errors
    /// Argo's messages: `prometheus address is not configured`, `prometheus address is not
    /// is url format`, `prometheus timeout should not be negative`, `missing mandatory
    /// parameter in metric for basic auth setup: username` (or `: password`), `missing
    /// mandatory parameter in metric for OAuth2 setup`; an invalid header name or value.
    pub fn new(
        options: &ClientOptions<'_>,
        settings: &ProviderSettings,
    ) -> Result<Self, ProviderError> {
        let address = settings
            .prometheus_address_for(options.address)
            .ok_or_else(|| ProviderError::new("prometheus address is not configured"))?;
        let mut url = url::Url::parse(&address)
            .ok()
            .filter(|u| u.has_host() && !u.scheme().is_empty())
            .ok_or_else(|| ProviderError::new("prometheus address is not is url format"))?;
        let timeout_seconds = options.timeout_seconds.unwrap_or(0);
        if timeout_seconds < 0 {
            return Err(ProviderError::new(
                "prometheus timeout should not be negative",
            ));
        }
        let timeout_seconds = if timeout_seconds == 0 {
            DEFAULT_TIMEOUT_SECONDS
        } else {
            timeout_seconds
        };
        let timeout = Duration::from_secs(timeout_seconds.unsigned_abs());

        let mut headers = HeaderMap::new();
        for h in options.headers {
            let name = HeaderName::from_bytes(h.key.as_bytes()).map_err(|_| {
                ProviderError::new(format!("invalid prometheus header name \"{}\"", h.key))
            })?;
            let mut value = HeaderValue::from_str(&h.value).map_err(|_| {
                ProviderError::new(format!("invalid value for prometheus header \"{}\"", h.key))
            })?;
            value.set_sensitive(true);
            headers.append(name, value);
        }
        let mut oauth2 = None;
        if let Some(auth) = options.authentication {
            if let Some(basic) = &auth.basic_auth
                && (!basic.username.is_empty() || !basic.password.is_empty())
            {
                if basic.username.is_empty() {
                    return Err(ProviderError::new(
                        "missing mandatory parameter in metric for basic auth setup: username",
                    ));
                }
                if basic.password.is_empty() {
                    return Err(ProviderError::new(
                        "missing mandatory parameter in metric for basic auth setup: password",
                    ));
                }
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", basic.username, basic.password));
                let mut value = HeaderValue::from_str(&format!("Basic {token}"))
                    .map_err(|_| ProviderError::new("invalid basic auth credentials"))?;
                value.set_sensitive(true);
                headers.insert(AUTHORIZATION, value);
            }
            if let Some(oauth) = &auth.oauth2
                && !oauth.token_url.is_empty()
            {
                if oauth.client_id.is_empty() || oauth.client_secret.is_empty() {
                    return Err(ProviderError::new(
                        "missing mandatory parameter in metric for OAuth2 setup",
                    ));
                }
                let token_url = url::Url::parse(&oauth.token_url)
                    .map_err(|_| ProviderError::new("prometheus OAuth2 tokenUrl is not a URL"))?;
                let mut shown = token_url.clone();
                let _ = shown.set_username("");
                let _ = shown.set_password(None);
                shown.set_query(None);
                oauth2 = Some(OAuth2Client {
                    http: reqwest::Client::builder()
                        .timeout(timeout)
                        .danger_accept_invalid_certs(options.insecure)
                        .build()
                        .map_err(|e| {
                            ProviderError::new(format!("cannot build the HTTP client: {e}"))
                        })?,
                    token_url: token_url.to_string(),
                    shown_token_url: shown.to_string(),
                    client_id: oauth.client_id.clone(),
                    client_secret: oauth.client_secret.clone(),
                    scopes: oauth.scopes.clone(),
                });
            }
            if auth.sigv4.is_some() && address.contains("aps-workspaces") {
                return Err(ProviderError::new(
                    "prometheus SigV4 authentication is not supported by rollgate yet",
                ));
            }
        }
        // User info in the URL becomes basic auth; messages show the address without it.
        let mut shown = url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        let shown_address = shown.as_str().trim_end_matches('/').to_owned();
        if url.path() != "/" && url.path().ends_with('/') {
            let trimmed = url.path().trim_end_matches('/').to_owned();
            url.set_path(&trimmed);
        }

        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .danger_accept_invalid_certs(options.insecure)
            .default_headers(headers)
            .build()
            .map_err(|e| ProviderError::new(format!("cannot build the HTTP client: {e}")))?;
        let client = prometheus_http_query::Client::from(http, url.as_str())
            .map_err(|_| ProviderError::new("prometheus address is not is url format"))?;
        Ok(Self {
            client,
            oauth2,
            shown_address,
            timeout,
        })
    }

    /// The address, without user info.
    #[must_use]
    pub fn address(&self) -> &str {
        &self.shown_address
    }

    /// The request timeout.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Run an instant query at the server's now.
    ///
    /// # Errors
    /// [`ProviderError`] naming the query: transport failure or timeout, an error status
    /// with the server's message (a PromQL syntax error), an undecodable answer.
    pub async fn instant(&self, query: &str) -> Result<QueryAnswer, ProviderError> {
        let mut builder = self.client.query(query);
        if let Some(bearer) = self.bearer(query).await? {
            builder = builder.header(AUTHORIZATION, bearer);
        }
        self.finish(query, builder.get_raw()).await
    }

    /// The `Authorization` value from OAuth2, when configured.
    async fn bearer(&self, query: &str) -> Result<Option<HeaderValue>, ProviderError> {
        let Some(oauth) = &self.oauth2 else {
            return Ok(None);
        };
        let token = oauth.token().await.map_err(|cause| {
            ProviderError::new(format!("prometheus query \"{query}\" failed: {cause}"))
        })?;
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| ProviderError::new("the OAuth2 token is not a valid header value"))?;
        value.set_sensitive(true);
        Ok(Some(value))
    }

    /// Run a range query (`start`/`end` in Unix seconds, `step` in seconds).
    ///
    /// # Errors
    /// As [`PrometheusClient::instant`].
    pub async fn range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: f64,
    ) -> Result<QueryAnswer, ProviderError> {
        let mut builder = self.client.query_range(query, start, end, step);
        if let Some(bearer) = self.bearer(query).await? {
            builder = builder.header(AUTHORIZATION, bearer);
        }
        self.finish(query, builder.get_raw()).await
    }

    async fn finish(
        &self,
        query: &str,
        sent: impl Future<Output = Result<reqwest::Response, prometheus_http_query::Error>>,
    ) -> Result<QueryAnswer, ProviderError> {
        let fail = |cause: String| {
            ProviderError::new(format!("prometheus query \"{query}\" failed: {cause}"))
        };
        // The client timeout covers the request; this outer one also covers a server
        // that accepts the connection and never answers while the body is read.
        let outcome = tokio::time::timeout(self.timeout, async {
            let response = sent.await.map_err(|e| self.transport_cause(&e))?;
            let status = response.status();
            let body = response.text().await.map_err(|e| self.reqwest_cause(&e))?;
            Ok::<_, String>((status, body))
        })
        .await;
        let (status, body) = match outcome {
            Err(_) => {
                return Err(fail(format!(
                    "no answer from {} within {}s (timeout)",
                    self.shown_address,
                    self.timeout.as_secs()
                )));
            }
            Ok(Err(cause)) => return Err(fail(cause)),
            Ok(Ok(x)) => x,
        };
        let parsed: ApiResponse = match serde_json::from_str(&body) {
            Ok(p) => p,
            Err(_) => {
                return Err(fail(format!(
                    "HTTP {} from {}: {}",
                    status.as_u16(),
                    self.shown_address,
                    shorten(body.trim())
                )));
            }
        };
        if parsed.status != "success" {
            let kind = parsed.error_type.unwrap_or_else(|| "error".to_owned());
            let message = parsed
                .error
                .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
            return Err(fail(format!("{kind}: {message}")));
        }
        let Some(data) = parsed.data else {
            return Err(fail("the answer has no data".to_owned()));
        };
        let data = decode(&data).map_err(fail)?;
        Ok(QueryAnswer {
            data,
            warnings: parsed.warnings,
        })
    }

    fn transport_cause(&self, err: &prometheus_http_query::Error) -> String {
        use std::error::Error as _;
        match err {
            prometheus_http_query::Error::Client(c) => match c.source() {
                Some(src) => match src.downcast_ref::<reqwest::Error>() {
                    Some(r) => self.reqwest_cause(r),
                    None => format!("request to {} failed: {src}", self.shown_address),
                },
                None => format!("request to {} failed: {c}", self.shown_address),
            },
            other => format!("request to {} failed: {other}", self.shown_address),
        }
    }

    fn reqwest_cause(&self, err: &reqwest::Error) -> String {
        use std::error::Error as _;
        if err.is_timeout() {
            return format!(
                "no answer from {} within {}s (timeout)",
                self.shown_address,
                self.timeout.as_secs()
            );
        }
        // The reqwest message names the URL (possibly with credentials); use the causes.
        let mut causes = Vec::new();
        let mut src = err.source();
        while let Some(s) = src {
            let text = s.to_string();
            if !causes.contains(&text) {
                causes.push(text);
            }
            src = s.source();
        }
        let what = if err.is_connect() {
            "cannot connect to"
        } else {
            "request failed to"
        };
        if causes.is_empty() {
            format!("{what} {}", self.shown_address)
        } else {
            format!("{what} {}: {}", self.shown_address, causes.join(": "))
        }
    }
}

fn shorten(text: &str) -> String {
    if text.len() <= MAX_BODY_IN_ERROR {
        return text.to_owned();
    }
    let mut end = MAX_BODY_IN_ERROR;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[derive(Debug, Deserialize)]
struct ApiResponse {
    status: String,
    #[serde(default)]
    data: Option<ApiData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ApiData {
    #[serde(rename = "resultType")]
    result_type: String,
    #[serde(default)]
    result: serde_json::Value,
}

/// A Prometheus sample value (`"10"`, `"NaN"`, `"+Inf"`).
fn sample_value(pair: &serde_json::Value) -> Result<f64, String> {
    let text = pair
        .get(1)
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| format!("malformed sample {pair}"))?;
    parse_prom_float(text).ok_or_else(|| format!("malformed sample value \"{text}\""))
}

/// Parse a float as Prometheus writes it.
#[must_use]
pub fn parse_prom_float(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        t => t.parse().ok(),
    }
}

fn decode(data: &ApiData) -> Result<QueryData, String> {
    let series = || {
        data.result
            .as_array()
            .ok_or_else(|| format!("malformed {} result", data.result_type))
    };
    match data.result_type.as_str() {
        "scalar" => Ok(QueryData::Scalar(sample_value(&data.result)?)),
        "vector" => Ok(QueryData::Vector(
            series()?
                .iter()
                .map(|s| sample_value(s.get("value").unwrap_or(&serde_json::Value::Null)))
                .collect::<Result<_, _>>()?,
        )),
        "matrix" => Ok(QueryData::Matrix(
            series()?
                .iter()
                .map(|s| {
                    s.get("values")
                        .and_then(serde_json::Value::as_array)
                        .map(|vs| vs.iter().map(sample_value).collect::<Result<Vec<_>, _>>())
                        .unwrap_or_else(|| Ok(Vec::new()))
                })
                .collect::<Result<_, _>>()?,
        )),
        other => Ok(QueryData::Other(other.to_owned())),
    }
}

/// A float as Go's `strconv.FormatFloat(f, 'f', -1, 64)` writes it (`10`, `0.5`, `NaN`,
/// `+Inf`, `-Inf`), which is how Argo renders Prometheus values.
#[must_use]
pub fn format_go_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f == f64::INFINITY {
        "+Inf".to_owned()
    } else if f == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{f}")
    }
}

/// Shape query data as Argo does: the condition value and the measurement value text.
///
/// # Errors
/// `Prometheus metric type not supported` for a result type other than scalar, vector or
/// matrix.
pub fn shape(data: &QueryData) -> Result<(Value, String), ProviderError> {
    let list = |values: Vec<f64>| {
        let text = format!(
            "[{}]",
            values
                .iter()
                .map(|v| format_go_float(*v))
                .collect::<Vec<_>>()
                .join(",")
        );
        (
            Value::List(values.into_iter().map(Value::Float).collect()),
            text,
        )
    };
    match data {
        QueryData::Scalar(f) => Ok((Value::Float(*f), format_go_float(*f))),
        QueryData::Vector(v) => Ok(list(v.clone())),
        QueryData::Matrix(m) => Ok(list(m.iter().flatten().copied().collect())),
        QueryData::Other(_) => Err(ProviderError::new("Prometheus metric type not supported")),
    }
}

/// Argo's prometheus provider.
#[derive(Debug, Clone)]
pub struct PrometheusProvider {
    client: PrometheusClient,
}

impl PrometheusProvider {
    /// Configure the provider for one metric.
    ///
    /// # Errors
    /// See [`PrometheusClient::new`].
    pub fn new(
        metric: &PrometheusMetric,
        settings: &ProviderSettings,
    ) -> Result<Self, ProviderError> {
        let client = PrometheusClient::new(
            &ClientOptions {
                address: metric.address.as_deref(),
                timeout_seconds: metric.timeout,
                insecure: metric.insecure,
                headers: &metric.headers,
                authentication: metric.authentication.as_ref(),
            },
            settings,
        )?;
        Ok(Self { client })
    }

    /// The configured client.
    #[must_use]
    pub fn client(&self) -> &PrometheusClient {
        &self.client
    }

    async fn run(&self, metric: &Metric) -> Result<Observation, ProviderError> {
        let Some(prom) = &metric.provider.prometheus else {
            return Err(ProviderError::new(format!(
                "metric \"{}\" has no prometheus provider",
                metric.name
            )));
        };
        let query = prom.query.as_str();
        let answer = match &prom.range_query {
            Some(range) => {
                let (start, end, step) = range_bounds(range, now_seconds())?;
                self.client.range(query, start, end, step).await?
            }
            None => self.client.instant(query).await?,
        };
        let (result, value) = shape(&answer.data)?;
        let mut measurement_metadata = BTreeMap::new();
        if !answer.warnings.is_empty() {
            measurement_metadata.insert(
                "warnings".to_owned(),
                answer
                    .warnings
                    .iter()
                    .map(|w| format!("\"{w}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        let mut metric_metadata = BTreeMap::new();
        metric_metadata.insert("ResolvedPrometheusQuery".to_owned(), query.to_owned());
        Ok(Observation {
            result,
            value,
            measurement_metadata,
            metric_metadata,
            phase: None,
            message: None,
        })
    }
}

impl Provider for PrometheusProvider {
    fn measure<'a>(
        &'a self,
        metric: &'a Metric,
    ) -> BoxFuture<'a, Result<Observation, ProviderError>> {
        self.run(metric).boxed()
    }
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Evaluate `rangeQuery` at `now` (Unix seconds): start and end are `now()` optionally
/// followed by `+`/`-` `duration("GO-DURATION")` terms; step is a Go duration.
///
/// # Errors
/// Argo's messages: `failed to parse rangeQuery.start as time: <cause>` (also `.end`),
/// `failed to parse rangeQuery.step as duration: <cause>`.
pub fn range_bounds(range: &RangeQuery, now: f64) -> Result<(i64, i64, f64), ProviderError> {
    let start = time_expr(&range.start, now).map_err(|c| {
        ProviderError::new(format!("failed to parse rangeQuery.start as time: {c}"))
    })?;
    let end = time_expr(&range.end, now)
        .map_err(|c| ProviderError::new(format!("failed to parse rangeQuery.end as time: {c}")))?;
    let step = parse_go_duration(range.step.trim()).map_err(|c| {
        ProviderError::new(format!("failed to parse rangeQuery.step as duration: {c}"))
    })?;
    // Truncation to whole seconds is what the HTTP API's Unix-second parameters hold.
    #[allow(clippy::cast_possible_truncation)]
    Ok((start.floor() as i64, end.floor() as i64, step))
}

fn time_expr(expr: &str, now: f64) -> Result<f64, String> {
    let mut rest = expr.trim();
    rest = rest
        .strip_prefix("now()")
        .ok_or_else(|| {
            format!("unsupported time expression \"{expr}\" (use now() - duration(\"1h\"))")
        })?
        .trim_start();
    let mut t = now;
    while !rest.is_empty() {
        let sign = match rest.as_bytes()[0] {
            b'-' => -1.0,
            b'+' => 1.0,
            _ => return Err(format!("unsupported time expression \"{expr}\"")),
        };
        rest = rest[1..].trim_start();
        let inner = rest
            .strip_prefix("duration(")
            .ok_or_else(|| format!("unsupported time expression \"{expr}\""))?;
        let close = inner
            .find(')')
            .ok_or_else(|| format!("unsupported time expression \"{expr}\""))?;
        let arg = inner[..close].trim();
        let text = arg
            .strip_prefix('"')
            .and_then(|a| a.strip_suffix('"'))
            .ok_or_else(|| format!("unsupported time expression \"{expr}\""))?;
        t += sign * parse_go_duration(text).map_err(|e| e.0)?;
        rest = inner[close + 1..].trim_start();
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_text() {
        assert_eq!(format_go_float(10.0), "10");
        assert_eq!(format_go_float(0.5), "0.5");
        assert_eq!(format_go_float(f64::NAN), "NaN");
        assert_eq!(format_go_float(f64::INFINITY), "+Inf");
        assert_eq!(format_go_float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_go_float(1e21), "1000000000000000000000");
    }

    #[test]
    fn range_start_error_is_argos() {
        let r = RangeQuery {
            start: "now() - duration(\"??\")".into(),
            end: "now()".into(),
            step: "1m".into(),
        };
        assert_eq!(
            range_bounds(&r, 1000.0).unwrap_err().message,
            "failed to parse rangeQuery.start as time: time: invalid duration \"??\""
        );
        let ok = RangeQuery {
            start: "now() - duration(\"1h\")".into(),
            end: "now()".into(),
            step: "1m".into(),
        };
        assert_eq!(range_bounds(&ok, 7200.5), Ok((3600, 7200, 60.0)));
    }
}
