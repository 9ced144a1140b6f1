//! Helpers shared by the analysis tests: the Argo vectors, times, and metrics.
#![allow(dead_code)]

use chrono::TimeZone;
use rollgate::core::analysis::model::Metric;
use rollgate::core::analysis::status::Time;

/// The Argo Rollouts vectors, vendored from `shared/vectors` so a clean clone has them.
pub fn vectors() -> serde_json::Value {
    let text = include_str!("../vectors/argo-rollouts-cases.json");
    serde_json::from_str(text).expect("the vector file is JSON")
}

/// A fixed start time.
pub fn t0() -> Time {
    chrono::Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("valid date")
}

/// A metric from vector JSON, with a name (`m`) when the vector gives none and, when
/// `provider` is set, a web provider so the metric validates.
pub fn metric(json: &serde_json::Value, provider: bool) -> Metric {
    let mut json = json.clone();
    if let Some(o) = json.as_object_mut() {
        o.entry("name").or_insert_with(|| "m".into());
        if provider {
            o.entry("provider")
                .or_insert_with(|| serde_json::json!({"web": {"url": "http://127.0.0.1:1/"}}));
        }
    }
    serde_json::from_value(json).expect("a metric")
}
