//! Argo's `web` provider: one HTTP request whose JSON answer, at `jsonPath`, is the
//! result.
//!
//! `jsonPath` is Kubernetes-style (`{$.data.ok}`, default `{$}`); rollgate implements the
//! subset templates use: `$`, `.name`, `['name']`, `[index]` (negative counts from the
//! end). A non-2xx status is `received non 2xx response code: <n>`; a path that yields
//! nothing is `result of web metric produced no value`.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};

use super::{Provider, ProviderError};
use crate::core::analysis::model::{Metric, WebMetric};
use crate::core::analysis::value::{Observation, Value};

/// Argo's default web timeout, seconds.
pub const DEFAULT_TIMEOUT_SECONDS: i64 = 10;

/// One step of a JSONPath.
#[derive(Debug, Clone, PartialEq)]
pub enum PathStep {
    /// A member of an object.
    Key(String),
    /// An element of an array (negative: from the end).
    Index(i64),
}

/// Parse a Kubernetes-style JSONPath (`{$.a.b[0]}`, `{.a['b-c']}`, `$.a`).
///
/// # Errors
/// A message naming the path when it is outside the supported subset.
pub fn parse_json_path(path: &str) -> Result<Vec<PathStep>, String> {
    let bad = |why: &str| format!("unsupported jsonPath \"{path}\": {why}");
    let mut s = path.trim();
    if let Some(inner) = s.strip_prefix('{') {
        s = inner
            .strip_suffix('}')
            .ok_or_else(|| bad("unclosed '{'"))?
            .trim();
    }
    s = s.strip_prefix('$').unwrap_or(s);
    let mut steps = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && bytes[end] != b'.' && bytes[end] != b'[' {
                    end += 1;
                }
                if end == start {
                    return Err(bad("empty member name"));
                }
                steps.push(PathStep::Key(s[start..end].to_owned()));
                i = end;
            }
            b'[' => {
                let close = s[i..].find(']').ok_or_else(|| bad("unclosed '['"))? + i;
                let inner = s[i + 1..close].trim();
                if let Some(q) = inner
                    .strip_prefix('\'')
                    .and_then(|x| x.strip_suffix('\''))
                    .or_else(|| inner.strip_prefix('"').and_then(|x| x.strip_suffix('"')))
                {
                    steps.push(PathStep::Key(q.to_owned()));
                } else {
                    let n: i64 = inner
                        .parse()
                        .map_err(|_| bad("only ['name'] and [index] are supported in brackets"))?;
                    steps.push(PathStep::Index(n));
                }
                i = close + 1;
            }
            _ => return Err(bad("expected '.' or '['")),
        }
    }
    Ok(steps)
}

/// Follow `steps` into `doc`.
///
/// # Errors
/// Kubernetes' message for a missing member (`<name> is not found`) or index
/// (`array index out of bounds: index 3, length 2`).
pub fn select<'a>(
    doc: &'a serde_json::Value,
    steps: &[PathStep],
) -> Result<&'a serde_json::Value, String> {
    let mut cur = doc;
    for step in steps {
        cur = match (step, cur) {
            (PathStep::Key(k), serde_json::Value::Object(m)) => {
                m.get(k).ok_or_else(|| format!("{k} is not found"))?
            }
            (PathStep::Index(n), serde_json::Value::Array(a)) => {
                let len = i64::try_from(a.len()).unwrap_or(i64::MAX);
                let idx = if *n < 0 { len + n } else { *n };
                usize::try_from(idx)
                    .ok()
                    .and_then(|i| a.get(i))
                    .ok_or_else(|| format!("array index out of bounds: index {n}, length {len}"))?
            }
            (PathStep::Key(k), _) => return Err(format!("{k} is not found")),
            (PathStep::Index(n), _) => {
                return Err(format!("cannot index a non-array with [{n}]"));
            }
        };
    }
    Ok(cur)
}

/// The measurement value text of a JSON value: strings raw, everything else as JSON.
#[must_use]
pub fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Argo's web provider for one metric.
#[derive(Debug, Clone)]
pub struct WebProvider {
    client: reqwest::Client,
    steps: Vec<PathStep>,
}

impl WebProvider {
    /// Configure the provider.
    ///
    /// # Errors
    /// A negative timeout, an unsupported `jsonPath`, both `body` and `jsonBody`, an invalid
    /// header, OAuth2 authentication (not supported yet).
    pub fn new(metric: &WebMetric) -> Result<Self, ProviderError> {
        let timeout = match metric.timeout_seconds.unwrap_or(0) {
            t if t < 0 => {
                return Err(ProviderError::new("web timeout should not be negative"));
            }
            0 => DEFAULT_TIMEOUT_SECONDS,
            t => t,
        };
        if metric.body.is_some() && metric.json_body.is_some() {
            return Err(ProviderError::new(
                "use either Body or JSONBody; both cannot exists for WebMetric payload",
            ));
        }
        if metric
            .authentication
            .as_ref()
            .is_some_and(|a| a.oauth2.is_some())
        {
            return Err(ProviderError::new(
                "web OAuth2 authentication is not supported by rollgate yet",
            ));
        }
        let steps = parse_json_path(metric.json_path.as_deref().unwrap_or("{$}"))
            .map_err(ProviderError::new)?;
        let timeout = Duration::from_secs(timeout.unsigned_abs());
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .danger_accept_invalid_certs(metric.insecure)
            .build()
            .map_err(|e| ProviderError::new(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { client, steps })
    }

    async fn run(&self, metric: &Metric) -> Result<Observation, ProviderError> {
        let Some(web) = &metric.provider.web else {
            return Err(ProviderError::new(format!(
                "metric \"{}\" has no web provider",
                metric.name
            )));
        };
        let method = web.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| ProviderError::new(format!("invalid web method \"{method}\"")))?;
        let url = url::Url::parse(&web.url)
            .map_err(|e| ProviderError::new(format!("invalid web url: {e}")))?;
        let mut shown = url.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        shown.set_query(None);
        let mut request = self.client.request(method.clone(), url);
        let mut has_content_type = false;
        for h in &web.headers {
            let name = HeaderName::from_bytes(h.key.as_bytes()).map_err(|_| {
                ProviderError::new(format!("invalid web header name \"{}\"", h.key))
            })?;
            let mut value = HeaderValue::from_str(&h.value).map_err(|_| {
                ProviderError::new(format!("invalid value for web header \"{}\"", h.key))
            })?;
            value.set_sensitive(true);
            has_content_type |= name == CONTENT_TYPE;
            request = request.header(name, value);
        }
        let sends_body = matches!(
            method,
            reqwest::Method::POST | reqwest::Method::PUT | reqwest::Method::PATCH
        );
        if sends_body {
            if let Some(body) = &web.body {
                request = request.body(body.clone());
            } else if let Some(json) = &web.json_body {
                if !has_content_type {
                    request = request.header(CONTENT_TYPE, "application/json");
                }
                request = request.body(json.to_string());
            }
        }
        let response = request.send().await.map_err(|e| {
            ProviderError::new(if e.is_timeout() {
                format!("web request to {shown} timed out")
            } else {
                format!("web request to {shown} failed: {}", causes(&e))
            })
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(ProviderError::new(format!(
                "received non 2xx response code: {}",
                status.as_u16()
            )));
        }
        let body = response.bytes().await.map_err(|e| {
            ProviderError::new(if e.is_timeout() {
                format!("web request to {shown} timed out")
            } else {
                format!("reading the answer of {shown} failed: {}", causes(&e))
            })
        })?;
        let doc: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| ProviderError::new(format!("Could not parse JSON body: {e}")))?;
        let found = select(&doc, &self.steps)
            .map_err(|e| ProviderError::new(format!("Could not find JSONPath in body: {e}")))?;
        if found.is_null() {
            return Err(ProviderError::new("result of web metric produced no value"));
        }
        Ok(Observation {
            result: Value::from(found),
            value: value_text(found),
            measurement_metadata: BTreeMap::new(),
            metric_metadata: BTreeMap::new(),
            phase: None,
            message: None,
        })
    }
}

fn causes(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut out: Vec<String> = Vec::new();
    let mut src = err.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push(t);
        }
        src = s.source();
    }
    if out.is_empty() {
        "request failed".to_owned()
    } else {
        out.join(": ")
    }
}

impl Provider for WebProvider {
    fn measure<'a>(
        &'a self,
        metric: &'a Metric,
    ) -> BoxFuture<'a, Result<Observation, ProviderError>> {
        self.run(metric).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        let doc: serde_json::Value =
            serde_json::from_str(r#"{"data":{"ok":true,"list":[1,2,3],"a-b":"x"}}"#).unwrap();
        let get = |p: &str| select(&doc, &parse_json_path(p).unwrap()).map(value_text);
        assert_eq!(get("{$.data.ok}"), Ok("true".into()));
        assert_eq!(get("{.data.list[1]}"), Ok("2".into()));
        assert_eq!(get("{$.data.list[-1]}"), Ok("3".into()));
        assert_eq!(get("{$.data['a-b']}"), Ok("x".into()));
        assert_eq!(get("{$}"), Ok(doc.to_string()));
        assert_eq!(get("{$.data.missing}"), Err("missing is not found".into()));
        assert!(parse_json_path("{$.data[?(@.x)]}").is_err());
    }
}
