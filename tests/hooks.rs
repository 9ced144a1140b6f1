//! Webhooks against real HTTP servers on loopback: every hook type allowed, refused, slow
//! (timeout) and unreachable, the payload shape, retries, and the `webhooks` vectors of
//! `shared/vectors/flagger-cases.json`.

#[path = "support/hooks.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rollgate::core::hooks::{
    EventType, HookEffect, HookOutcome, HookSpec, HookTarget, HookType, checksum, event_payload,
    payload,
};
use rollgate::core::strategy::Phase;
use rollgate::hooks::HookCaller;

fn spec(kind: HookType, url: &str, timeout: &str, retries: u32) -> HookSpec {
    let mut metadata = BTreeMap::new();
    metadata.insert("cmd".to_owned(), "curl -s http://app/healthz".to_owned());
    HookSpec {
        name: format!("{kind}-hook"),
        kind,
        url: url.to_owned(),
        timeout: Some(timeout.to_owned()),
        metadata,
        retries: Some(retries),
        mute_alert: false,
        disable_tls: false,
    }
}

fn target(phase: Phase) -> HookTarget {
    HookTarget {
        name: "podinfo".into(),
        namespace: "test".into(),
        phase,
        checksum: checksum(&BTreeMap::new(), "5f56684589"),
    }
}

fn caller() -> HookCaller {
    HookCaller::with_backoff(Duration::from_millis(50)).expect("client")
}

/// What Flagger does when a hook of this type says no (refused, timed out, unreachable).
fn effect_on_no(kind: HookType) -> HookEffect {
    match kind {
        HookType::ConfirmRollout => HookEffect::WaitForConfirmation,
        HookType::PreRollout | HookType::Rollout => HookEffect::FailedCheck,
        HookType::ConfirmTrafficIncrease => HookEffect::HoldWeight,
        HookType::ConfirmPromotion => HookEffect::WaitPromotion,
        HookType::ConfirmGitPromotion => HookEffect::HoldGitPromotion,
        HookType::PostRollout | HookType::Event => HookEffect::LogOnly,
        HookType::Rollback => HookEffect::Proceed,
    }
}

fn effect_on_yes(kind: HookType) -> HookEffect {
    match kind {
        HookType::Rollback => HookEffect::RollBack,
        HookType::PostRollout | HookType::Event => HookEffect::LogOnly,
        _ => HookEffect::Proceed,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hook_type_allowed_refused_slow_unreachable() {
    let c = caller();
    for kind in HookType::ALL {
        let t = target(Phase::WaitingPromotion);

        // Allowed: 200 with a body that becomes the event text; payload checked.
        let srv = support::serve(vec![(200, Duration::ZERO, "approved by gate")]).await;
        let h = spec(kind, &srv.url, "2s", 0);
        let r = c.call(&h, &payload(&h, &t)).await;
        assert_eq!(r.outcome, HookOutcome::Answered(200), "{kind}");
        assert_eq!(r.message, "approved by gate");
        assert_eq!(r.effect, effect_on_yes(kind), "{kind} allowed");
        let seen = srv.seen();
        assert_eq!(seen.len(), 1, "{kind}: one request");
        assert_eq!(
            seen[0].headers["content-type"], "application/json",
            "{kind}: content type"
        );
        let body = seen[0].json();
        assert_eq!(body["name"], "podinfo");
        assert_eq!(body["namespace"], "test");
        assert_eq!(body["checksum"], t.checksum.as_str());
        assert_eq!(body["metadata"]["cmd"], "curl -s http://app/healthz");
        let want_phase = match kind {
            HookType::PreRollout
            | HookType::Rollout
            | HookType::ConfirmTrafficIncrease
            | HookType::ConfirmPromotion => "Progressing",
            _ => "WaitingPromotion",
        };
        assert_eq!(body["phase"], want_phase, "{kind}: phase sent");

        // Refused: 403, and 204 (Flagger fails anything above 202).
        for status in [403, 204] {
            let srv = support::serve(vec![(status, Duration::ZERO, "no: change freeze")]).await;
            let h = spec(kind, &srv.url, "2s", 0);
            let r = c.call(&h, &payload(&h, &t)).await;
            assert_eq!(r.outcome, HookOutcome::Answered(status), "{kind}");
            assert_eq!(r.effect, effect_on_no(kind), "{kind} refused with {status}");
            assert_eq!(srv.seen().len(), 1, "4xx/204 are not retried");
        }

        // Slow: answers after 1.5 s, timeout 200ms.
        let srv = support::serve(vec![(200, Duration::from_millis(1500), "late")]).await;
        let h = spec(kind, &srv.url, "200ms", 0);
        let start = Instant::now();
        let r = c.call(&h, &payload(&h, &t)).await;
        assert_eq!(r.outcome, HookOutcome::TimedOut, "{kind}");
        assert!(
            start.elapsed() < Duration::from_millis(1200),
            "{kind}: timeout honoured"
        );
        assert_eq!(r.effect, effect_on_no(kind), "{kind} slow");

        // Unreachable.
        let h = spec(kind, &support::dead_url().await, "2s", 0);
        let r = c.call(&h, &payload(&h, &t)).await;
        assert_eq!(r.outcome, HookOutcome::Unreachable, "{kind}");
        assert_eq!(r.effect, effect_on_no(kind), "{kind} unreachable");
    }
}

#[tokio::test]
async fn vector_status_500_fails() {
    let srv = support::serve(vec![(500, Duration::ZERO, "boom")]).await;
    let h = spec(HookType::Rollout, &srv.url, "2s", 0);
    let r = caller()
        .call(&h, &payload(&h, &target(Phase::Progressing)))
        .await;
    assert!(!r.outcome.passed());
    assert_eq!(r.effect, HookEffect::FailedCheck);
    assert_eq!(r.attempts, 1);
}

#[tokio::test]
async fn vector_one_retry_500_then_202_succeeds_after_backoff() {
    let srv = support::serve(vec![
        (500, Duration::ZERO, "boom"),
        (202, Duration::ZERO, "ok"),
    ])
    .await;
    let h = spec(HookType::Rollout, &srv.url, "2s", 1);
    let r = caller()
        .call(&h, &payload(&h, &target(Phase::Progressing)))
        .await;
    assert_eq!(r.outcome, HookOutcome::Answered(202));
    assert_eq!(r.attempts, 2);
    assert_eq!(r.effect, HookEffect::Proceed);
    let seen = srv.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[1].at - seen[0].at >= Duration::from_millis(50),
        "backoff waited"
    );

    // Without a retry the same script fails.
    let srv = support::serve(vec![
        (500, Duration::ZERO, "boom"),
        (202, Duration::ZERO, "ok"),
    ])
    .await;
    let h = spec(HookType::Rollout, &srv.url, "2s", 0);
    let r = caller()
        .call(&h, &payload(&h, &target(Phase::Progressing)))
        .await;
    assert_eq!(r.outcome, HookOutcome::Answered(500));
}

#[tokio::test]
async fn vector_checksum_changes_with_last_applied_spec() {
    let none = BTreeMap::new();
    assert_ne!(
        checksum(&none, "5f56684589"),
        checksum(&none, "4cb74184589")
    );
}

#[tokio::test]
async fn vector_rollback_hook_200_while_progressing_rolls_back() {
    let srv = support::serve(vec![(200, Duration::ZERO, "roll it back")]).await;
    let h = spec(HookType::Rollback, &srv.url, "2s", 0);
    let r = caller()
        .call(&h, &payload(&h, &target(Phase::Progressing)))
        .await;
    assert_eq!(r.effect, HookEffect::RollBack);
    assert_eq!(srv.seen()[0].json()["phase"], "Progressing");
}

#[tokio::test]
async fn event_hook_metadata_and_secret_free_errors() {
    let srv = support::serve(vec![(200, Duration::ZERO, "")]).await;
    let mut h = spec(HookType::Event, &srv.url, "2s", 0);
    h.metadata.insert("timestamp".into(), "0".into());
    let p = event_payload(
        &h,
        &target(Phase::Progressing),
        "Advance podinfo.test canary weight 10",
        EventType::Normal,
        1_764_000_000_000,
    );
    let r = caller().call(&h, &p).await;
    assert_eq!(r.effect, HookEffect::LogOnly);
    let body = srv.seen()[0].json();
    assert_eq!(body["metadata"]["timestamp"], "1764000000000");
    assert_eq!(body["metadata"]["eventType"], "Normal");
    assert_eq!(
        body["metadata"]["eventMessage"],
        "Advance podinfo.test canary weight 10"
    );

    // An unreachable URL with credentials: the message never carries them.
    let dead = support::dead_url()
        .await
        .replace("http://", "http://admin:hunter2@")
        + "?token=t0psecret";
    let h = spec(HookType::Rollout, &dead, "2s", 0);
    let r = caller()
        .call(&h, &payload(&h, &target(Phase::Progressing)))
        .await;
    assert_eq!(r.outcome, HookOutcome::Unreachable);
    assert!(
        !r.message.contains("hunter2") && !r.message.contains("t0psecret"),
        "{}",
        r.message
    );
}

#[tokio::test]
async fn vectors_file_webhooks_are_covered() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/vectors/flagger-cases.json"
    );
    let text = std::fs::read_to_string(path)
        .expect("flagger-cases.json is readable beside the repository");
    let v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let cases = v["webhooks"].as_array().expect("webhooks vectors");
    let c = caller();
    for case in cases {
        let g = &case["given"];
        let e = &case["expected"];
        if let Some(status) = g["response_status"].as_u64() {
            let kind = match g["hook"].as_str() {
                Some(k) => k.parse().expect("hook type"),
                None => HookType::Rollout,
            };
            let phase = match g["phase"].as_str() {
                Some("Progressing") | None => Phase::Progressing,
                Some(other) => panic!("phase {other} not in this test"),
            };
            let srv = support::serve(vec![(status as u16, Duration::ZERO, "")]).await;
            let h = spec(kind, &srv.url, "2s", 0);
            let r = c.call(&h, &payload(&h, &target(phase))).await;
            if let Some(ok) = e["ok"].as_bool() {
                assert_eq!(r.outcome.passed(), ok, "{case}");
            }
            if let Some(action) = e["action"].as_str() {
                assert!(action.starts_with("rollback"), "{case}");
                assert_eq!(r.effect, HookEffect::RollBack, "{case}");
            }
        } else if let Some(responses) = g["responses"].as_array() {
            let script = responses
                .iter()
                .map(|s| (s.as_u64().expect("status") as u16, Duration::ZERO, ""))
                .collect();
            let srv = support::serve(script).await;
            let retries = g["retries"].as_u64().expect("retries") as u32;
            let h = spec(HookType::Rollout, &srv.url, "2s", retries);
            let r = c.call(&h, &payload(&h, &target(Phase::Progressing))).await;
            assert_eq!(r.outcome.passed(), e["ok"].as_bool().expect("ok"), "{case}");
        } else if let Some(specs) = g["canary_status"]["lastAppliedSpec"].as_array() {
            let none = BTreeMap::new();
            let a = checksum(&none, specs[0].as_str().expect("spec"));
            let b = checksum(&none, specs[1].as_str().expect("spec"));
            assert_eq!(e["checksum"], "different");
            assert_ne!(a, b, "{case}");
        } else {
            panic!("webhooks vector not understood: {case}");
        }
    }
    assert_eq!(cases.len(), 4, "all four vectors driven");
}

#[tokio::test]
async fn a_bad_spec_is_a_no_without_a_request() {
    let srv = support::serve(vec![(200, Duration::ZERO, "")]).await;
    let h = spec(HookType::Rollout, &srv.url, "5x", 0);
    let r = caller()
        .call(&h, &payload(&h, &target(Phase::Progressing)))
        .await;
    assert_eq!(r.outcome, HookOutcome::Invalid);
    assert!(r.message.contains("field timeout"), "{}", r.message);
    assert_eq!(r.effect, HookEffect::FailedCheck);
    let h = spec(HookType::ConfirmPromotion, "ftp://127.0.0.1/x", "1s", 3);
    let r = caller()
        .call(&h, &payload(&h, &target(Phase::Progressing)))
        .await;
    assert_eq!((r.outcome, r.attempts), (HookOutcome::Invalid, 0));
    assert_eq!(r.effect, HookEffect::WaitPromotion);
    assert!(srv.seen().is_empty(), "nothing was sent");
}
