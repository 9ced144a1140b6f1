//! Notifications to people: rollout events rendered for Slack-compatible incoming webhooks,
//! Microsoft Teams and a generic JSON webhook signed with HMAC-SHA256.
//!
//! [`Notifier::notify`] never blocks and never fails the caller: it de-duplicates (same
//! event, app, environment, version, metric and commit within [`NotifierConfig::dedup_window`]),
//! rate-limits ([`NotifierConfig::max_per_minute`]), and hands the message to one bounded
//! queue per sink. A background task per sink delivers with a timeout, retrying failed
//! attempts (connection error, timeout, any status outside 2xx) with exponential backoff; a
//! dead sink is logged and counted in [`Telemetry`] (`rollgate_notification_retries_total`,
//! `rollgate_notifications_total{result="failed"}`), never fatal.
//!
//! Sink URLs are secrets (a Slack incoming-webhook URL is its own credential): logs show only
//! the scheme, host and port.
//!
//! # The generic webhook's signature
//! The body is the JSON of [`Notification`] (plus `"timestamp"`, RFC 3339). The header
//! [`SIGNATURE_HEADER`] (`X-Rollgate-Signature`) is `sha256=` followed by the lower-case hex
//! HMAC-SHA256 of the raw body bytes under the shared secret. A receiver recomputes it over the
//! bytes it received (before parsing) and compares in constant time ([`verify_signature`]).

use std::collections::HashMap;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::telemetry::{NotificationDrop, NotificationSink, Telemetry};

/// The generic webhook's signature header.
pub const SIGNATURE_HEADER: &str = "X-Rollgate-Signature";

/// The generic webhook's event header (the [`EventKind`] name).
pub const EVENT_HEADER: &str = "X-Rollgate-Event";

/// Something worth telling a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EventKind {
    /// A new version started rolling out.
    RolloutStarted,
    /// The canary moved to the next step.
    StepAdvanced,
    /// An analysis failed.
    AnalysisFailed,
    /// The canary was rolled back.
    RolledBack,
    /// The version was promoted.
    Promoted,
    /// A promotion waits for a person's approval.
    WaitingForApproval,
    /// A promotion commit was reverted in Git.
    RevertedInGit,
}

impl EventKind {
    /// The name in JSON and in [`EVENT_HEADER`].
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::RolloutStarted => "rolloutStarted",
            EventKind::StepAdvanced => "stepAdvanced",
            EventKind::AnalysisFailed => "analysisFailed",
            EventKind::RolledBack => "rolledBack",
            EventKind::Promoted => "promoted",
            EventKind::WaitingForApproval => "waitingForApproval",
            EventKind::RevertedInGit => "revertedInGit",
        }
    }

    /// A short title for people.
    #[must_use]
    pub fn title(self) -> &'static str {
        match self {
            EventKind::RolloutStarted => "Rollout started",
            EventKind::StepAdvanced => "Step advanced",
            EventKind::AnalysisFailed => "Analysis failed",
            EventKind::RolledBack => "Rolled back",
            EventKind::Promoted => "Promoted",
            EventKind::WaitingForApproval => "Waiting for approval",
            EventKind::RevertedInGit => "Reverted in Git",
        }
    }

    /// Whether it reports a failure (red in chat).
    #[must_use]
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            EventKind::AnalysisFailed | EventKind::RolledBack | EventKind::RevertedInGit
        )
    }

    fn color(self) -> &'static str {
        match self {
            k if k.is_failure() => "#d62728",
            EventKind::WaitingForApproval => "#ff7f0e",
            _ => "#2ca02c",
        }
    }
}

/// The metric that failed an analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailingMetric {
    /// The metric's name in the template.
    pub name: String,
    /// The value measured.
    pub observed: f64,
    /// The condition it broke, as written (`>= 0.99`, `result[0] < 500`).
    pub bound: String,
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// What happened.
    pub event: EventKind,
    /// The application.
    pub app: String,
    /// The environment (`staging`, `prod`).
    pub environment: String,
    /// The version rolled out.
    pub version: String,
    /// Free text (the controller's event message).
    pub message: String,
    /// The failing metric, for failures decided by analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<FailingMetric>,
    /// The Git commit (promotion or revert).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

impl Notification {
    /// One line for people, naming every field that is set.
    #[must_use]
    pub fn text(&self) -> String {
        let mut s = format!(
            "{}: {} {} in {}",
            self.event.title(),
            self.app,
            self.version,
            self.environment
        );
        if let Some(m) = &self.metric {
            s.push_str(&format!(
                "; metric {} observed {} (bound {})",
                m.name, m.observed, m.bound
            ));
        }
        if let Some(c) = &self.commit {
            s.push_str(&format!("; commit {c}"));
        }
        if !self.message.is_empty() {
            s.push_str(&format!(". {}", self.message));
        }
        s
    }

    /// (label, value) pairs shown as fields in chat messages.
    #[must_use]
    pub fn facts(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("App", self.app.clone()),
            ("Environment", self.environment.clone()),
            ("Version", self.version.clone()),
        ];
        if let Some(m) = &self.metric {
            f.push(("Metric", m.name.clone()));
            f.push(("Observed", m.observed.to_string()));
            f.push(("Bound", m.bound.clone()));
        }
        if let Some(c) = &self.commit {
            f.push(("Commit", c.clone()));
        }
        f
    }

    fn dedup_key(&self) -> String {
        let metric = self.metric.as_ref().map(|m| m.name.as_str()).unwrap_or("");
        let commit = self.commit.as_deref().unwrap_or("");
        format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{metric}\u{1f}{commit}",
            self.event.as_str(),
            self.app,
            self.environment,
            self.version
        )
    }
}

/// The kind of a sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat).
    Slack,
    /// A Microsoft Teams incoming webhook (MessageCard).
    Teams,
    /// Any HTTP endpoint: the notification as JSON, signed with HMAC-SHA256.
    Webhook,
}

impl SinkKind {
    fn metric(self) -> NotificationSink {
        match self {
            SinkKind::Slack => NotificationSink::Slack,
            SinkKind::Teams => NotificationSink::Teams,
            SinkKind::Webhook => NotificationSink::Webhook,
        }
    }
}

/// One configured sink.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sink {
    /// Its name (logs).
    pub name: String,
    /// What it speaks.
    #[serde(rename = "type")]
    pub kind: SinkKind,
    /// Where messages are POSTed (a secret: never logged whole).
    pub url: String,
    /// The HMAC key of a `webhook` sink (unsigned when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &redact(&self.url))
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The body a sink receives for `n`, rendered at `timestamp` (RFC 3339).
#[must_use]
pub fn render(kind: SinkKind, n: &Notification, timestamp: &str) -> serde_json::Value {
    match kind {
        SinkKind::Slack => json!({
            "text": n.text(),
            "attachments": [{
                "color": n.event.color(),
                "title": n.event.title(),
                "text": n.message,
                "fields": n.facts().into_iter().map(|(k, v)| json!({"title": k, "value": v, "short": true})).collect::<Vec<_>>(),
            }],
        }),
        SinkKind::Teams => json!({
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": n.text(),
            "themeColor": n.event.color().trim_start_matches('#'),
            "title": format!("{}: {}", n.event.title(), n.app),
            "sections": [{
                "text": n.message,
                "facts": n.facts().into_iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
            }],
        }),
        SinkKind::Webhook => {
            let mut v = serde_json::to_value(n).unwrap_or_else(|_| json!({}));
            if let Some(o) = v.as_object_mut() {
                o.insert("timestamp".to_owned(), json!(timestamp));
                o.insert("text".to_owned(), json!(n.text()));
            }
            v
        }
    }
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`.
#[must_use]
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `header` (the [`SIGNATURE_HEADER`] value) is the signature of `body` under
/// `secret`, compared in constant time.
#[must_use]
pub fn verify_signature(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hexsig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hexsig) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// How the notifier queues, filters and retries.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// Messages waiting per sink; further ones are dropped (and counted).
    pub queue_capacity: usize,
    /// The same notification again within this window is dropped.
    pub dedup_window: Duration,
    /// At most this many notifications accepted per rolling minute.
    pub max_per_minute: usize,
    /// Attempts after the first failed one.
    pub retries: u32,
    /// The first wait between attempts; doubles each time up to `max_backoff`.
    pub backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// Timeout of one attempt.
    pub timeout: Duration,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        NotifierConfig {
            queue_capacity: 256,
            dedup_window: Duration::from_secs(300),
            max_per_minute: 60,
            retries: 5,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
        }
    }
}

/// What [`Notifier::notify`] did with a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Queued for every sink (or for those whose queue had room).
    Queued,
    /// The same notification was accepted within the de-duplication window.
    Duplicate,
    /// More than `max_per_minute` in the last minute.
    RateLimited,
}

/// The notifier could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The HTTP client could not be built (TLS back end).
    #[error("cannot build the notification HTTP client: {0}")]
    Client(String),
    /// Not inside a Tokio runtime, so the delivery tasks cannot start.
    #[error("notifications need a Tokio runtime")]
    NoRuntime,
}

struct Filter {
    seen: HashMap<String, Instant>,
    accepted: VecDeque<Instant>,
}

/// Hands notifications to the sinks' background tasks. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    queues: Vec<(SinkKind, mpsc::Sender<Notification>)>,
    filter: Arc<Mutex<Filter>>,
    config: NotifierConfig,
    telemetry: Telemetry,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("sinks", &self.queues.len())
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// Start one delivery task per sink on the current Tokio runtime.
    ///
    /// # Errors
    /// [`NotifyError::NoRuntime`] outside a runtime, [`NotifyError::Client`] when the HTTP
    /// client cannot be built.
    pub fn start(
        sinks: Vec<Sink>,
        config: NotifierConfig,
        telemetry: Telemetry,
    ) -> Result<Notifier, NotifyError> {
        let rt = tokio::runtime::Handle::try_current().map_err(|_| NotifyError::NoRuntime)?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .build()
            .map_err(|e| NotifyError::Client(e.without_url().to_string()))?;
        let mut queues = Vec::new();
        for sink in sinks {
            let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
            queues.push((sink.kind, tx));
            rt.spawn(deliver_loop(
                sink,
                rx,
                client.clone(),
                config.clone(),
                telemetry.clone(),
            ));
        }
        Ok(Notifier {
            queues,
            filter: Arc::new(Mutex::new(Filter {
                seen: HashMap::new(),
                accepted: VecDeque::new(),
            })),
            config,
            telemetry,
        })
    }

    /// Queue `n` for every sink without waiting: duplicates within the window and messages
    /// over the rate are dropped (and counted), a full sink queue drops the message for that
    /// sink only.
    pub fn notify(&self, n: Notification) -> Accepted {
        let now = Instant::now();
        {
            let mut f = match self.filter.lock() {
                Ok(f) => f,
                Err(p) => p.into_inner(),
            };
            let window = self.config.dedup_window;
            f.seen.retain(|_, t| now.duration_since(*t) < window);
            let key = n.dedup_key();
            if f.seen.contains_key(&key) {
                self.telemetry
                    .notification_dropped(NotificationDrop::Duplicate);
                tracing::debug!(event = n.event.as_str(), app = %n.app, "notification de-duplicated");
                return Accepted::Duplicate;
            }
            while f
                .accepted
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
            {
                f.accepted.pop_front();
            }
            if f.accepted.len() >= self.config.max_per_minute {
                self.telemetry
                    .notification_dropped(NotificationDrop::RateLimited);
                tracing::warn!(event = n.event.as_str(), app = %n.app, "notification dropped: more than {} a minute", self.config.max_per_minute);
                return Accepted::RateLimited;
            }
            f.seen.insert(key, now);
            f.accepted.push_back(now);
        }
        for (kind, tx) in &self.queues {
            if tx.try_send(n.clone()).is_err() {
                self.telemetry
                    .notification_dropped(NotificationDrop::QueueFull);
                tracing::warn!(sink = ?kind, event = n.event.as_str(), "notification dropped: sink queue full");
            }
        }
        Accepted::Queued
    }
}

async fn deliver_loop(
    sink: Sink,
    mut rx: mpsc::Receiver<Notification>,
    client: reqwest::Client,
    config: NotifierConfig,
    telemetry: Telemetry,
) {
    let label = sink.kind.metric();
    let target = redact(&sink.url);
    while let Some(n) = rx.recv().await {
        let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let body = match serde_json::to_vec(&render(sink.kind, &n, &timestamp)) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(sink = %sink.name, "cannot render notification: {e}");
                continue;
            }
        };
        let mut wait = config.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = client
                .post(&sink.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
            if sink.kind == SinkKind::Webhook {
                req = req.header(EVENT_HEADER, n.event.as_str());
                if let Some(secret) = &sink.secret {
                    req = req.header(SIGNATURE_HEADER, sign(secret.as_bytes(), &body));
                }
            }
            let why = match req.send().await {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("HTTP {}", r.status().as_u16())),
                Err(e) if e.is_timeout() => Some("timed out".to_owned()),
                Err(e) => Some(format!("{}", e.without_url())),
            };
            let Some(why) = why else {
                telemetry.notification_delivered(label, true);
                tracing::debug!(sink = %sink.name, url = %target, attempt, "notification sent");
                break;
            };
            if attempt > config.retries {
                telemetry.notification_delivered(label, false);
                tracing::error!(sink = %sink.name, url = %target, attempts = attempt, event = n.event.as_str(), "notification sink failed, message dropped: {why}");
                break;
            }
            telemetry.notification_retried(label);
            tracing::warn!(sink = %sink.name, url = %target, attempt, "notification sink failed ({why}); retrying in {:?}", wait);
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(config.max_backoff);
        }
    }
}

/// Scheme, host and port only: incoming-webhook URLs carry their token in the path.
fn redact(raw: &str) -> String {
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
    fn signature_round_trip_and_tamper() {
        let s = sign(b"k", b"{\"a\":1}");
        assert!(s.starts_with("sha256=") && s.len() == 7 + 64);
        assert!(verify_signature(b"k", b"{\"a\":1}", &s));
        assert!(!verify_signature(b"k", b"{\"a\":2}", &s));
        assert!(!verify_signature(b"other", b"{\"a\":1}", &s));
        assert!(!verify_signature(b"k", b"{\"a\":1}", "md5=00"));
    }

    #[test]
    fn sink_debug_hides_url_and_secret() {
        let s = Sink {
            name: "ops".into(),
            kind: SinkKind::Slack,
            url: "https://hooks.slack.example/services/T0/B0/XXXXSECRET".into(),
            secret: Some("hush".into()),
        };
        let d = format!("{s:?}");
        assert!(!d.contains("XXXXSECRET") && !d.contains("hush"), "{d}");
    }
}
