//! Flagger's webhook model, pure: the hook types, the spec on a Rollout, the JSON payload,
//! which phase each type is sent with, and what an answer means for the rollout.
//!
//! The edge that calls a hook is [`crate::hooks`]; this module only decides. Semantics follow
//! Flagger (`shared/reference/flagger-semantics.md` §7): a hook *passes* when it answers with
//! an HTTP status of at most 202 (203 and 204 fail); confirm hooks that say no make the rollout
//! wait without counting a failed check; `pre-rollout` and `rollout` hooks that fail count one
//! failed check; a `rollback` hook that *passes* rolls the canary back; `post-rollout` and
//! `event` hooks are only logged. rollgate adds `confirm-git-promotion`, asked before the commit
//! that promotes the version into the next environment.

pub mod gate;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::core::analysis::duration::parse_go_duration;
use crate::core::strategy::Phase;

/// The timeout of a hook whose `timeout` is absent or shorter than two characters.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Metadata keys of an `event` hook's payload that user metadata cannot override.
pub const EVENT_KEYS: [&str; 3] = ["eventMessage", "eventType", "timestamp"];

/// When a hook is called, as Flagger names it in `spec.analysis.webhooks[].type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookType {
    /// Before scaling up a new revision; no → the rollout waits (no failed check).
    ConfirmRollout,
    /// On the first analysed tick (weight 0); a failure counts one failed check.
    PreRollout,
    /// On every analysed tick, before the metrics (also an empty `type`); a failure counts
    /// one failed check.
    Rollout,
    /// Before each weight increase (canary, not while mirroring); no → the weight stays.
    ConfirmTrafficIncrease,
    /// Before promotion; no → phase `WaitingPromotion`, checks continue.
    ConfirmPromotion,
    /// After the rollout succeeded or was rolled back; logged only.
    PostRollout,
    /// On each analysed tick while progressing or waiting for promotion; a pass rolls back.
    Rollback,
    /// For every event the controller emits; the answer is ignored.
    Event,
    /// rollgate's own: before the commit into the next environment; no → the commit waits.
    ConfirmGitPromotion,
}

impl HookType {
    /// Every type, in the order of a rollout.
    pub const ALL: [HookType; 9] = [
        HookType::ConfirmRollout,
        HookType::PreRollout,
        HookType::Rollout,
        HookType::ConfirmTrafficIncrease,
        HookType::ConfirmPromotion,
        HookType::ConfirmGitPromotion,
        HookType::PostRollout,
        HookType::Rollback,
        HookType::Event,
    ];

    /// The name written in the spec (`confirm-rollout`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            HookType::ConfirmRollout => "confirm-rollout",
            HookType::PreRollout => "pre-rollout",
            HookType::Rollout => "rollout",
            HookType::ConfirmTrafficIncrease => "confirm-traffic-increase",
            HookType::ConfirmPromotion => "confirm-promotion",
            HookType::PostRollout => "post-rollout",
            HookType::Rollback => "rollback",
            HookType::Event => "event",
            HookType::ConfirmGitPromotion => "confirm-git-promotion",
        }
    }

    /// The phase the payload carries: `Progressing` for `pre-rollout`, `rollout`,
    /// `confirm-traffic-increase` and `confirm-promotion`; the rollout's current phase for
    /// the others (for `post-rollout` that is `Succeeded` or `Failed`).
    #[must_use]
    pub fn phase_sent(self, current: Phase) -> Phase {
        match self {
            HookType::PreRollout
            | HookType::Rollout
            | HookType::ConfirmTrafficIncrease
            | HookType::ConfirmPromotion => Phase::Progressing,
            HookType::ConfirmRollout
            | HookType::Rollback
            | HookType::PostRollout
            | HookType::Event
            | HookType::ConfirmGitPromotion => current,
        }
    }

    /// What the answer of a hook of this type means for the rollout.
    #[must_use]
    pub fn effect(self, outcome: HookOutcome) -> HookEffect {
        let passed = outcome.passed();
        match self {
            HookType::PostRollout | HookType::Event => HookEffect::LogOnly,
            HookType::Rollback if passed => HookEffect::RollBack,
            HookType::Rollback => HookEffect::Proceed,
            _ if passed => HookEffect::Proceed,
            HookType::ConfirmRollout => HookEffect::WaitForConfirmation,
            HookType::ConfirmTrafficIncrease => HookEffect::HoldWeight,
            HookType::ConfirmPromotion => HookEffect::WaitPromotion,
            HookType::ConfirmGitPromotion => HookEffect::HoldGitPromotion,
            HookType::PreRollout | HookType::Rollout => HookEffect::FailedCheck,
        }
    }
}

impl fmt::Display for HookType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A hook `type` that is none of Flagger's nor `confirm-git-promotion`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown webhook type {0:?} (expected one of confirm-rollout, pre-rollout, rollout, confirm-traffic-increase, confirm-promotion, confirm-git-promotion, post-rollout, rollback, event)"
)]
pub struct UnknownHookType(pub String);

impl FromStr for HookType {
    type Err = UnknownHookType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Ok(HookType::Rollout);
        }
        HookType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownHookType(s.to_owned()))
    }
}

impl Serialize for HookType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for HookType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for HookType {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "HookType".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut names: Vec<&str> = vec![""];
        names.extend(HookType::ALL.iter().map(|t| t.as_str()));
        schemars::json_schema!({
            "type": "string",
            "enum": names,
        })
    }
}

impl Default for HookType {
    /// An absent type is a `rollout` hook, as in Flagger.
    fn default() -> Self {
        HookType::Rollout
    }
}

/// One entry of `spec.analysis.webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HookSpec {
    /// The hook's name (logs and events).
    pub name: String,
    /// When it is called (absent or empty: `rollout`).
    #[serde(default, rename = "type")]
    pub kind: HookType,
    /// Where the payload is POSTed. May hold credentials: never log it whole.
    pub url: String,
    /// A Go duration; absent or shorter than two characters means 10s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Sent as the payload's `metadata`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Extra attempts after a connection error or a 5xx answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Do not alert on this hook's failure.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mute_alert: bool,
    /// Skip TLS certificate verification.
    #[serde(
        default,
        rename = "disableTLS",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub disable_tls: bool,
}

/// A hook spec that cannot be called.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookSpecError {
    /// `timeout` is not a Go duration (or is negative).
    #[error("webhook {name:?}: field timeout: {message}")]
    Timeout {
        /// The hook's name.
        name: String,
        /// Why the duration was refused.
        message: String,
    },
}

impl HookSpec {
    /// The timeout of one attempt: the spec's Go duration, or [`DEFAULT_TIMEOUT`] when it is
    /// absent or shorter than two characters (Flagger's rule).
    ///
    /// # Errors
    /// [`HookSpecError::Timeout`] when the text is not a non-negative Go duration.
    pub fn effective_timeout(&self) -> Result<Duration, HookSpecError> {
        let text = match self.timeout.as_deref() {
            None => return Ok(DEFAULT_TIMEOUT),
            Some(t) if t.chars().count() < 2 => return Ok(DEFAULT_TIMEOUT),
            Some(t) => t,
        };
        let err = |message: String| HookSpecError::Timeout {
            name: self.name.clone(),
            message,
        };
        let delta = parse_go_duration(text).map_err(|e| err(e.to_string()))?;
        delta
            .to_std()
            .map_err(|_| err(format!("negative duration {text:?}")))
    }

    /// Extra attempts after the first (0 when absent).
    #[must_use]
    pub fn retries(&self) -> u32 {
        self.retries.unwrap_or(0)
    }
}

/// What the target object looks like to a hook: Flagger's payload minus metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookTarget {
    /// The Rollout's name.
    pub name: String,
    /// The Rollout's namespace.
    pub namespace: String,
    /// The rollout's current phase.
    pub phase: Phase,
    /// [`checksum`] of the tracked configs and the last applied spec.
    pub checksum: String,
}

/// The JSON body POSTed to a hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookPayload {
    /// The Rollout's name.
    pub name: String,
    /// The Rollout's namespace.
    pub namespace: String,
    /// The phase, per [`HookType::phase_sent`].
    pub phase: Phase,
    /// Changes iff the tracked configs or the last applied spec change.
    pub checksum: String,
    /// The hook's metadata (plus the event keys for `event` hooks).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// Kind of a Kubernetes event, as an `event` hook's `eventType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// An ordinary event.
    Normal,
    /// Something went wrong.
    Warning,
}

impl EventType {
    /// `Normal` or `Warning`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// The payload for `hook` on `target`.
#[must_use]
pub fn payload(hook: &HookSpec, target: &HookTarget) -> HookPayload {
    HookPayload {
        name: target.name.clone(),
        namespace: target.namespace.clone(),
        phase: hook.kind.phase_sent(target.phase),
        checksum: target.checksum.clone(),
        metadata: hook.metadata.clone(),
    }
}

/// The payload for an `event` hook: the hook's metadata, then `eventMessage`, `eventType`
/// and `timestamp` (Unix milliseconds as a string), which the user's metadata cannot
/// override. `now_unix_ms` comes from the caller's clock.
#[must_use]
pub fn event_payload(
    hook: &HookSpec,
    target: &HookTarget,
    message: &str,
    event_type: EventType,
    now_unix_ms: i64,
) -> HookPayload {
    let mut p = payload(hook, target);
    p.metadata
        .insert("eventMessage".to_owned(), message.to_owned());
    p.metadata
        .insert("eventType".to_owned(), event_type.as_str().to_owned());
    p.metadata
        .insert("timestamp".to_owned(), now_unix_ms.to_string());
    p
}

/// A checksum of the tracked configs (name → content hash) and the last applied spec,
/// changing iff either changes (FNV-1a 64 over a length-prefixed encoding, in hex).
#[must_use]
pub fn checksum(tracked_configs: &BTreeMap<String, String>, last_applied_spec: &str) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    };
    for (k, v) in tracked_configs {
        feed(k.as_bytes());
        feed(v.as_bytes());
    }
    feed(b"\0lastAppliedSpec");
    feed(last_applied_spec.as_bytes());
    format!("{h:016x}")
}

/// How one hook call ended, as the edge saw it after its retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookOutcome {
    /// The hook answered with this HTTP status.
    Answered(u16),
    /// No answer in time.
    TimedOut,
    /// No connection (refused, DNS, TLS).
    Unreachable,
    /// The spec could not be called (bad timeout or URL).
    Invalid,
}

impl HookOutcome {
    /// Whether the hook said yes: an answer with a status of at most 202 (203 and 204 fail).
    #[must_use]
    pub fn passed(&self) -> bool {
        matches!(self, HookOutcome::Answered(s) if *s <= 202)
    }
}

/// Whether an attempt's answer is worth retrying: a 5xx status (connection errors and
/// timeouts are retried by the edge too).
#[must_use]
pub fn retryable_status(status: u16) -> bool {
    (500..600).contains(&status)
}

/// What a hook's answer means for the rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookEffect {
    /// Go on as if the hook were not there.
    Proceed,
    /// `confirm-rollout` said no: wait, retry next tick, no failed check.
    WaitForConfirmation,
    /// `pre-rollout` or `rollout` failed: failedChecks + 1.
    FailedCheck,
    /// `confirm-traffic-increase` said no: keep the weight, no failed check.
    HoldWeight,
    /// `confirm-promotion` said no: phase `WaitingPromotion`, checks continue.
    WaitPromotion,
    /// `confirm-git-promotion` said no: do not commit to the next environment yet.
    HoldGitPromotion,
    /// `rollback` passed: roll the canary back (phase `Failed`).
    RollBack,
    /// `post-rollout` or `event`: the answer is logged, nothing else.
    LogOnly,
}

impl HookEffect {
    /// Whether this effect counts one failed check.
    #[must_use]
    pub fn counts_failed_check(self) -> bool {
        self == HookEffect::FailedCheck
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: HookType, timeout: Option<&str>) -> HookSpec {
        HookSpec {
            name: "h".into(),
            kind,
            url: "http://x/".into(),
            timeout: timeout.map(str::to_owned),
            metadata: BTreeMap::new(),
            retries: None,
            mute_alert: false,
            disable_tls: false,
        }
    }

    #[test]
    fn status_202_passes_203_and_204_fail() {
        for s in [200, 201, 202] {
            assert!(HookOutcome::Answered(s).passed(), "{s}");
        }
        for s in [203, 204, 300, 403, 500] {
            assert!(!HookOutcome::Answered(s).passed(), "{s}");
        }
        assert!(!HookOutcome::TimedOut.passed());
        assert!(!HookOutcome::Unreachable.passed());
    }

    #[test]
    fn decision_table() {
        use HookEffect::*;
        use HookType::*;
        let yes = HookOutcome::Answered(200);
        let no = HookOutcome::Answered(403);
        let table = [
            (ConfirmRollout, WaitForConfirmation),
            (PreRollout, FailedCheck),
            (Rollout, FailedCheck),
            (ConfirmTrafficIncrease, HoldWeight),
            (ConfirmPromotion, WaitPromotion),
            (ConfirmGitPromotion, HoldGitPromotion),
            (PostRollout, LogOnly),
            (Event, LogOnly),
            (Rollback, Proceed),
        ];
        for (t, on_no) in table {
            assert_eq!(t.effect(no.clone()), on_no, "{t} refused");
            assert_eq!(t.effect(HookOutcome::TimedOut), on_no, "{t} timed out");
        }
        assert_eq!(Rollback.effect(yes.clone()), RollBack);
        assert_eq!(PostRollout.effect(yes.clone()), LogOnly);
        for t in [ConfirmRollout, PreRollout, Rollout, ConfirmPromotion] {
            assert_eq!(t.effect(yes.clone()), Proceed);
        }
        assert!(!ConfirmRollout.effect(no.clone()).counts_failed_check());
        assert!(Rollout.effect(no).counts_failed_check());
    }

    #[test]
    fn timeout_defaults_and_parses() {
        assert_eq!(
            spec(HookType::Rollout, None).effective_timeout(),
            Ok(DEFAULT_TIMEOUT)
        );
        assert_eq!(
            spec(HookType::Rollout, Some("5")).effective_timeout(),
            Ok(DEFAULT_TIMEOUT)
        );
        assert_eq!(
            spec(HookType::Rollout, Some("1m30s")).effective_timeout(),
            Ok(Duration::from_secs(90))
        );
        assert!(
            spec(HookType::Rollout, Some("5x"))
                .effective_timeout()
                .is_err()
        );
        assert!(
            spec(HookType::Rollout, Some("-5s"))
                .effective_timeout()
                .is_err()
        );
    }

    #[test]
    fn spec_parses_flagger_yaml_and_empty_type_is_rollout() {
        let s: HookSpec = serde_json::from_str(
            r#"{"name":"a","type":"","url":"http://t/","timeout":"15s","metadata":{"cmd":"x"},"retries":2,"muteAlert":true,"disableTLS":true}"#,
        )
        .expect("valid");
        assert_eq!(s.kind, HookType::Rollout);
        assert!(s.disable_tls && s.mute_alert);
        assert_eq!(s.retries(), 2);
        let s: HookSpec =
            serde_json::from_str(r#"{"name":"a","type":"confirm-git-promotion","url":"u"}"#)
                .expect("valid");
        assert_eq!(s.kind, HookType::ConfirmGitPromotion);
        assert!(
            serde_json::from_str::<HookSpec>(r#"{"name":"a","type":"nope","url":"u"}"#).is_err()
        );
    }

    #[test]
    fn phase_sent_per_type() {
        assert_eq!(
            HookType::Rollout.phase_sent(Phase::Paused),
            Phase::Progressing
        );
        assert_eq!(
            HookType::ConfirmPromotion.phase_sent(Phase::WaitingPromotion),
            Phase::Progressing
        );
        assert_eq!(
            HookType::Rollback.phase_sent(Phase::WaitingPromotion),
            Phase::WaitingPromotion
        );
        assert_eq!(
            HookType::PostRollout.phase_sent(Phase::Failed),
            Phase::Failed
        );
    }

    #[test]
    fn event_keys_cannot_be_overridden() {
        let mut h = spec(HookType::Event, None);
        h.metadata.insert("eventType".into(), "Mine".into());
        h.metadata.insert("team".into(), "a".into());
        let t = HookTarget {
            name: "app".into(),
            namespace: "ns".into(),
            phase: Phase::Progressing,
            checksum: "c".into(),
        };
        let p = event_payload(&h, &t, "Advance", EventType::Warning, 1_700_000_000_123);
        assert_eq!(p.metadata["eventType"], "Warning");
        assert_eq!(p.metadata["timestamp"], "1700000000123");
        assert_eq!(p.metadata["eventMessage"], "Advance");
        assert_eq!(p.metadata["team"], "a");
        let v = serde_json::to_value(&p).expect("serialises");
        let mut keys: Vec<_> = v.as_object().expect("object").keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["checksum", "metadata", "name", "namespace", "phase"]);
    }

    #[test]
    fn checksum_follows_last_applied_spec() {
        let c = BTreeMap::new();
        assert_ne!(checksum(&c, "5f56684589"), checksum(&c, "4cb74184589"));
        assert_eq!(checksum(&c, "5f56684589"), checksum(&c, "5f56684589"));
        let mut c2 = BTreeMap::new();
        c2.insert("configmap/a".into(), "1".into());
        assert_ne!(checksum(&c, "x"), checksum(&c2, "x"));
    }
}
