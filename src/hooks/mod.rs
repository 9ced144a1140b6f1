//! Calling webhooks (the edge of [`crate::core::hooks`]): POST the JSON payload with the hook's
//! timeout, retry connection errors, timeouts and 5xx answers with exponential backoff, and
//! hand back a [`HookOutcome`] for the core to interpret plus the response body as the event
//! text.
//!
//! Hook URLs may carry credentials (user info, tokens in the query): logs and errors only
//! ever show [`redact_url`]'s form: scheme, host and port.

use std::time::Duration;

use crate::core::hooks::{HookEffect, HookOutcome, HookPayload, HookSpec, retryable_status};

/// The longest response body kept as event text, in bytes.
pub const MAX_BODY: usize = 4096;

/// The first wait between attempts; it doubles after each failed attempt.
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);

/// The longest wait between attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What one hook call came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookResponse {
    /// How it ended after the retries.
    pub outcome: HookOutcome,
    /// The response body of the last answer (at most [`MAX_BODY`] bytes), or why there was
    /// none; becomes the event text.
    pub message: String,
    /// Attempts made (1 + retries used).
    pub attempts: u32,
    /// What the answer means for the rollout.
    pub effect: HookEffect,
}

/// A hook client: one verifying and one non-verifying (`disableTLS`) HTTP client, and the
/// first backoff.
#[derive(Debug, Clone)]
pub struct HookCaller {
    client: reqwest::Client,
    insecure: reqwest::Client,
    backoff: Duration,
}

/// The HTTP clients could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HookClientError {
    /// The TLS back end could not be initialised.
    #[error("cannot build the webhook HTTP client: {0}")]
    Build(String),
}

impl HookCaller {
    /// A caller with [`DEFAULT_BACKOFF`].
    ///
    /// # Errors
    /// [`HookClientError::Build`] when the TLS back end cannot be set up.
    pub fn new() -> Result<HookCaller, HookClientError> {
        Self::with_backoff(DEFAULT_BACKOFF)
    }

    /// A caller whose first wait between attempts is `backoff`.
    ///
    /// # Errors
    /// [`HookClientError::Build`] when the TLS back end cannot be set up.
    pub fn with_backoff(backoff: Duration) -> Result<HookCaller, HookClientError> {
        let build = |insecure: bool| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .tls_danger_accept_invalid_certs(insecure)
                .build()
                .map_err(|e| HookClientError::Build(e.without_url().to_string()))
        };
        Ok(HookCaller {
            client: build(false)?,
            insecure: build(true)?,
            backoff,
        })
    }

    /// POST `payload` to `hook.url`, retrying up to `hook.retries` times after a connection
    /// error, a timeout or a 5xx answer. Never fails: a bad spec is
    /// [`HookOutcome::Invalid`], which every hook type treats as a "no".
    pub async fn call(&self, hook: &HookSpec, payload: &HookPayload) -> HookResponse {
        let (outcome, message, attempts) = self.attempts(hook, payload).await;
        let effect = hook.kind.effect(outcome.clone());
        let target = redact_url(&hook.url);
        match &outcome {
            HookOutcome::Answered(s) if outcome.passed() => {
                tracing::debug!(hook = %hook.name, kind = %hook.kind, url = %target, status = s, attempts, "webhook passed");
            }
            _ => {
                tracing::info!(hook = %hook.name, kind = %hook.kind, url = %target, outcome = ?outcome, attempts, ?effect, "webhook did not pass: {message}");
            }
        }
        HookResponse {
            outcome,
            message,
            attempts,
            effect,
        }
    }

    async fn attempts(&self, hook: &HookSpec, payload: &HookPayload) -> (HookOutcome, String, u32) {
        let timeout = match hook.effective_timeout() {
            Ok(t) => t,
            Err(e) => return (HookOutcome::Invalid, e.to_string(), 0),
        };
        let url = match reqwest::Url::parse(&hook.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => u,
            _ => {
                return (
                    HookOutcome::Invalid,
                    format!(
                        "webhook {:?}: field url: not an http(s) URL: {}",
                        hook.name,
                        redact_url(&hook.url)
                    ),
                    0,
                );
            }
        };
        let client = if hook.disable_tls {
            &self.insecure
        } else {
            &self.client
        };
        let mut wait = self.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = client
                .post(url.clone())
                .timeout(timeout)
                .json(payload)
                .send()
                .await;
            let (outcome, message) = match sent {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body = read_body(resp).await;
                    (HookOutcome::Answered(status), body)
                }
                Err(e) if e.is_timeout() => (
                    HookOutcome::TimedOut,
                    format!("no answer within {}", humantime(timeout)),
                ),
                Err(e) => (
                    HookOutcome::Unreachable,
                    format!("cannot reach webhook: {}", error_chain(&e.without_url())),
                ),
            };
            let retry = match outcome {
                HookOutcome::Answered(s) => retryable_status(s),
                HookOutcome::TimedOut | HookOutcome::Unreachable => true,
                HookOutcome::Invalid => false,
            };
            if !retry || attempt > hook.retries() {
                return (outcome, message, attempt);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_BACKOFF);
        }
    }
}

async fn read_body(resp: reqwest::Response) -> String {
    match resp.bytes().await {
        Ok(b) => {
            let cut = &b[..b.len().min(MAX_BODY)];
            String::from_utf8_lossy(cut).trim().to_owned()
        }
        Err(_) => String::new(),
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

fn humantime(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

/// A URL cut to its scheme, host and port (user info, path, query and fragment may hold
/// tokens): safe for logs, events and errors.
#[must_use]
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{host}{port}/…", u.scheme())
        }
        Err(_) => "<unparseable url>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_drops_credentials_and_query() {
        assert_eq!(
            redact_url("https://user:s3cret@hooks.example:8443/p/q?token=abc#f"),
            "https://hooks.example:8443/…"
        );
        assert_eq!(redact_url("not a url"), "<unparseable url>");
    }
}
