//! The traffic generator: a steady rate of requests per environment through Traefik
//! (host `<env>.application-x.demo`), counting answers by version, injected errors (the
//! application's marker header) and every other failure, which can only come from the
//! path between client and application: a traffic switch, a missing endpoint, a reload.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::app::{INJECTED_HEADER, VERSION_HEADER};
use super::manifests::host;

/// Counts of one environment.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficStats {
    /// Requests sent.
    pub sent: u64,
    /// Successful answers, by version.
    pub ok_by_version: BTreeMap<String, u64>,
    /// Errors the application injected on purpose, by version.
    pub injected_by_version: BTreeMap<String, u64>,
    /// Failures not injected by the application (status or transport error).
    pub failed_not_injected: u64,
    /// The first few such failures: seconds since the start and what happened.
    pub failures: Vec<(f64, String)>,
}

/// The generator's shared counts, per environment.
pub type Counts = Arc<Mutex<BTreeMap<String, TrafficStats>>>;

/// Send `rate` requests per second for `env` to `gateway` until the task is dropped.
pub async fn generate(
    env: &'static str,
    gateway: String,
    rate: u32,
    counts: Counts,
    started: std::time::Instant,
) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(16)
        .build()
    {
        Ok(c) => c,
        Err(_) => return,
    };
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let host = host(env);
    loop {
        tick.tick().await;
        let (client, counts, url, host) = (
            client.clone(),
            counts.clone(),
            format!("http://{gateway}/"),
            host.clone(),
        );
        tokio::spawn(async move {
            let result = client.get(&url).header("host", &host).send().await;
            let mut all = counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let s = all.entry(env.to_owned()).or_default();
            s.sent += 1;
            let failure = match result {
                Ok(r) => {
                    let version = r
                        .headers()
                        .get(VERSION_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("?")
                        .to_owned();
                    if r.status().is_success() {
                        *s.ok_by_version.entry(version).or_default() += 1;
                        None
                    } else if r.headers().contains_key(INJECTED_HEADER) {
                        *s.injected_by_version.entry(version).or_default() += 1;
                        None
                    } else {
                        Some(format!("HTTP {} (version {version})", r.status().as_u16()))
                    }
                }
                Err(e) => Some(format!("transport error: {e}")),
            };
            if let Some(f) = failure {
                s.failed_not_injected += 1;
                if s.failures.len() < 20 {
                    s.failures.push((started.elapsed().as_secs_f64(), f));
                }
            }
        });
    }
}
