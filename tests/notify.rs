//! Notifications against real HTTP servers on loopback: one message per sink carrying the
//! fields, the generic webhook's signature verifies, a failing sink is retried with backoff
//! and counted, duplicates and bursts are dropped, and the caller never waits.

#[path = "support/hooks.rs"]
mod support;

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rollgate::notify::{
    Accepted, EventKind, FailingMetric, Notification, Notifier, NotifierConfig, SIGNATURE_HEADER,
    Sink, SinkKind, verify_signature,
};
use rollgate::telemetry::Telemetry;
use sha2::Sha256;

fn failed() -> Notification {
    Notification {
        event: EventKind::AnalysisFailed,
        app: "checkout".into(),
        environment: "prod".into(),
        version: "v1.4.2".into(),
        message: "Canary failed 3 checks; rolling back".into(),
        metric: Some(FailingMetric {
            name: "request-success-rate".into(),
            observed: 93.5,
            bound: ">= 99".into(),
        }),
        commit: Some("4e1f0c2a9b".into()),
    }
}

fn fast() -> NotifierConfig {
    NotifierConfig {
        backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        retries: 3,
        timeout: Duration::from_secs(2),
        ..NotifierConfig::default()
    }
}

async fn wait_for(srv: &support::Scripted, n: usize) -> Vec<support::Seen> {
    let start = Instant::now();
    loop {
        let seen = srv.seen();
        if seen.len() >= n || start.elapsed() > Duration::from_secs(10) {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_fields(text: &str) {
    for f in [
        "checkout",
        "prod",
        "v1.4.2",
        "request-success-rate",
        "93.5",
        ">= 99",
        "4e1f0c2a9b",
    ] {
        assert!(text.contains(f), "message lacks {f}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_rollout_gives_one_message_per_sink_with_the_fields() {
    let slack = support::serve(vec![(200, Duration::ZERO, "ok")]).await;
    let teams = support::serve(vec![(200, Duration::ZERO, "1")]).await;
    let hook = support::serve(vec![(204, Duration::ZERO, "")]).await;
    let secret = "s3cret-key";
    let sinks = vec![
        Sink {
            name: "chat".into(),
            kind: SinkKind::Slack,
            url: slack.url.clone(),
            secret: None,
        },
        Sink {
            name: "teams".into(),
            kind: SinkKind::Teams,
            url: teams.url.clone(),
            secret: None,
        },
        Sink {
            name: "ci".into(),
            kind: SinkKind::Webhook,
            url: hook.url.clone(),
            secret: Some(secret.into()),
        },
    ];
    let t = Telemetry::new();
    let n = Notifier::start(sinks, fast(), t.clone()).expect("starts");
    assert_eq!(n.notify(failed()), Accepted::Queued);
    assert_eq!(
        n.notify(failed()),
        Accepted::Duplicate,
        "same event twice is de-duplicated"
    );

    let s = wait_for(&slack, 1).await;
    let m = wait_for(&teams, 1).await;
    let w = wait_for(&hook, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        (slack.seen().len(), teams.seen().len(), hook.seen().len()),
        (1, 1, 1)
    );

    let sj = s[0].json();
    assert_fields(sj["text"].as_str().expect("slack text"));
    assert_fields(&sj["attachments"][0]["fields"].to_string());

    let mj = m[0].json();
    assert_eq!(mj["@type"], "MessageCard");
    assert_fields(&mj["sections"][0]["facts"].to_string());

    let wj = w[0].json();
    assert_eq!(wj["event"], "analysisFailed");
    assert_eq!(wj["app"], "checkout");
    assert_eq!(wj["environment"], "prod");
    assert_eq!(wj["version"], "v1.4.2");
    assert_eq!(wj["metric"]["observed"], 93.5);
    assert_eq!(wj["metric"]["bound"], ">= 99");
    assert_eq!(wj["commit"], "4e1f0c2a9b");
    assert_eq!(w[0].headers["x-rollgate-event"], "analysisFailed");

    // The signature verifies, independently recomputed, and with the library helper.
    let header = w[0].headers[SIGNATURE_HEADER].to_str().expect("ascii");
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(&w[0].body);
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(header, want);
    assert!(verify_signature(secret.as_bytes(), &w[0].body, header));
    assert!(!verify_signature(b"wrong", &w[0].body, header));

    let text = t.encode();
    for sink in ["slack", "teams", "webhook"] {
        assert!(
            text.contains(&format!(
                "rollgate_notifications_total{{sink=\"{sink}\",result=\"sent\"}} 1"
            )),
            "{sink} sent once:\n{text}"
        );
    }
    assert!(text.contains("rollgate_notifications_dropped_total{reason=\"duplicate\"} 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_returning_500_is_retried_with_backoff_and_counted() {
    let srv = support::serve(vec![
        (500, Duration::ZERO, "down"),
        (500, Duration::ZERO, "down"),
        (200, Duration::ZERO, "ok"),
    ])
    .await;
    let dead = support::serve(vec![(500, Duration::ZERO, "down")]).await;
    let t = Telemetry::new();
    let n = Notifier::start(
        vec![
            Sink {
                name: "flaky".into(),
                kind: SinkKind::Slack,
                url: srv.url.clone(),
                secret: None,
            },
            Sink {
                name: "dead".into(),
                kind: SinkKind::Teams,
                url: dead.url.clone(),
                secret: None,
            },
        ],
        fast(),
        t.clone(),
    )
    .expect("starts");
    n.notify(failed());
    let seen = wait_for(&srv, 3).await;
    assert_eq!(seen.len(), 3);
    let gap1 = seen[1].at - seen[0].at;
    let gap2 = seen[2].at - seen[1].at;
    assert!(gap1 >= Duration::from_millis(100), "first backoff {gap1:?}");
    assert!(
        gap2 >= Duration::from_millis(200),
        "backoff doubles: {gap2:?}"
    );

    // The dead sink: 1 + 3 retries, then given up (not fatal: the notifier keeps going).
    let d = wait_for(&dead, 4).await;
    assert_eq!(d.len(), 4);
    let start = Instant::now();
    let text = loop {
        let text = t.encode();
        if text.contains("rollgate_notifications_total{sink=\"teams\",result=\"failed\"} 1")
            || start.elapsed() > Duration::from_secs(5)
        {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        text.contains("rollgate_notification_retries_total{sink=\"slack\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("rollgate_notifications_total{sink=\"slack\",result=\"sent\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("rollgate_notification_retries_total{sink=\"teams\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("rollgate_notifications_total{sink=\"teams\",result=\"failed\"} 1"),
        "{text}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(dead.seen().len(), 4, "no attempts after giving up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_never_waits_and_bursts_are_rate_limited() {
    // A sink that takes 5 s to answer each message.
    let slow = support::serve(vec![(200, Duration::from_secs(5), "")]).await;
    let t = Telemetry::new();
    let cfg = NotifierConfig {
        max_per_minute: 5,
        queue_capacity: 2,
        ..fast()
    };
    let n = Notifier::start(
        vec![Sink {
            name: "slow".into(),
            kind: SinkKind::Slack,
            url: slow.url.clone(),
            secret: None,
        }],
        cfg,
        t.clone(),
    )
    .expect("starts");
    let mut results = vec![n.notify(failed())];
    // Let the sink's task take the first message, so it is in flight.
    assert_eq!(wait_for(&slow, 1).await.len(), 1);
    let start = Instant::now();
    for i in 1..8 {
        let mut m = failed();
        m.version = format!("v2.0.{i}");
        results.push(n.notify(m));
    }
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "notify blocked: {:?}",
        start.elapsed()
    );
    assert_eq!(
        results.iter().filter(|r| **r == Accepted::Queued).count(),
        5
    );
    assert_eq!(
        results
            .iter()
            .filter(|r| **r == Accepted::RateLimited)
            .count(),
        3
    );
    let text = t.encode();
    assert!(
        text.contains("rollgate_notifications_dropped_total{reason=\"rate_limited\"} 3"),
        "{text}"
    );
    // One in flight, two queued, two dropped for a full queue.
    assert!(
        text.contains("rollgate_notifications_dropped_total{reason=\"queue_full\"} 2"),
        "{text}"
    );
}
