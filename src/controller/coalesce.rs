//! Query coalescing: identical Prometheus queries of different analysis runs within one
//! window go to Prometheus once; every run gets the same answer.
//!
//! The key is the provider configuration after argument substitution (address, query,
//! headers, range), so only truly identical requests share an answer. The window is the
//! smaller of the configured window and the metric's interval, so a run never sees an
//! answer older than its own interval.
//!
//! [`Coalescer::provider`] also keeps the providers it built, so a run's metric does not
//! build a new HTTP client for every measurement: building one loads and parses the
//! system's CA certificates, which at 100 measurements a second was the controller's
//! largest CPU cost (`benches/controller_scale.rs`), and a kept client reuses its
//! connections.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use tokio::time::Instant;

use crate::core::analysis::duration::parse_go_duration;
use crate::core::analysis::model::Metric;
use crate::core::analysis::value::Observation;
use crate::providers::{Provider, ProviderError, ProviderSettings, build};
use crate::telemetry::{QueryOutcome, Telemetry};

type Answer = Result<Observation, ProviderError>;

struct Entry {
    at: Instant,
    answer: Shared<BoxFuture<'static, Answer>>,
}

/// Shares identical queries between runs (see the module docs).
pub struct Coalescer {
    window: Duration,
    telemetry: Telemetry,
    entries: Mutex<HashMap<String, Entry>>,
    upstream: AtomicU64,
    served: AtomicU64,
    providers: Mutex<HashMap<String, Arc<dyn Provider>>>,
}

/// Built providers kept at most; beyond, the cache starts over.
const MAX_PROVIDERS: usize = 4096;

impl Coalescer {
    /// A coalescer sharing answers for up to `window` (zero: never share).
    pub fn new(window: Duration, telemetry: Telemetry) -> Self {
        Self {
            window,
            telemetry,
            entries: Mutex::new(HashMap::new()),
            upstream: AtomicU64::new(0),
            served: AtomicU64::new(0),
            providers: Mutex::new(HashMap::new()),
        }
    }

    /// The provider of `metric` (arguments already substituted), wrapped as by
    /// [`Coalescer::wrap`]: built on first use and kept for the same provider
    /// configuration, interval and settings.
    ///
    /// # Errors
    /// [`ProviderError`] from [`build`] (not kept: a fixed configuration is built anew).
    pub fn provider(
        self: &Arc<Self>,
        metric: &Metric,
        settings: &ProviderSettings,
    ) -> Result<Arc<dyn Provider>, ProviderError> {
        let key = serde_json::to_string(&metric.provider)
            .ok()
            .map(|p| format!("{:?}\n{settings:?}\n{p}", metric.interval));
        let lock = || {
            self.providers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(p) = key.as_ref().and_then(|k| lock().get(k).cloned()) {
            return Ok(p);
        }
        let p = self.wrap(metric, settings, build(metric, settings)?);
        if let Some(k) = key {
            let mut providers = lock();
            if providers.len() >= MAX_PROVIDERS {
                providers.clear();
            }
            providers.insert(k, p.clone());
        }
        Ok(p)
    }

    /// Requests sent to the providers so far.
    pub fn upstream_requests(&self) -> u64 {
        self.upstream.load(Ordering::Relaxed)
    }

    /// Measurements served so far (upstream plus shared).
    pub fn measurements(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Wrap the provider of `metric` (arguments already substituted): Prometheus and
    /// built-in metrics are coalesced, others pass through.
    pub fn wrap(
        self: &Arc<Self>,
        metric: &Metric,
        settings: &ProviderSettings,
        inner: Arc<dyn Provider>,
    ) -> Arc<dyn Provider> {
        let p = &metric.provider;
        let address = match (&p.prometheus, &p.builtin) {
            (Some(prom), _) => settings.prometheus_address_for(prom.address.as_deref()),
            (None, Some(b)) => settings.prometheus_address_for(b.address.as_deref()),
            (None, None) => return inner,
        };
        let Ok(config) = serde_json::to_string(p) else {
            return inner;
        };
        let interval = metric
            .interval
            .as_deref()
            .and_then(|i| parse_go_duration(i).ok())
            .and_then(|d| d.to_std().ok());
        let window = interval.map_or(self.window, |i| i.min(self.window));
        Arc::new(Coalesced {
            key: format!("{}\n{config}", address.unwrap_or_default()),
            window,
            inner,
            coalescer: self.clone(),
        })
    }

    async fn measure(
        &self,
        key: &str,
        window: Duration,
        metric: &Metric,
        inner: &Arc<dyn Provider>,
    ) -> Answer {
        self.served.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let (answer, shared) = {
            let mut entries = self
                .entries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            entries.retain(|_, e| now.duration_since(e.at) < self.window.max(window));
            match entries.get(key) {
                Some(e) if now.duration_since(e.at) < window => (e.answer.clone(), true),
                _ => {
                    let m = metric.clone();
                    let p = inner.clone();
                    let answer = async move { p.measure(&m).await }.boxed().shared();
                    if !window.is_zero() {
                        entries.insert(
                            key.to_owned(),
                            Entry {
                                at: now,
                                answer: answer.clone(),
                            },
                        );
                    }
                    self.upstream.fetch_add(1, Ordering::Relaxed);
                    (answer, false)
                }
            }
        };
        let out = answer.await;
        if shared {
            self.telemetry.prometheus_query_coalesced();
        } else {
            let outcome = match &out {
                Ok(_) => QueryOutcome::Success,
                Err(e) if e.message.contains("timed out") || e.message.contains("timeout") => {
                    QueryOutcome::Timeout
                }
                Err(_) => QueryOutcome::Error,
            };
            self.telemetry.prometheus_query(outcome, now.elapsed());
        }
        out
    }
}

struct Coalesced {
    key: String,
    window: Duration,
    inner: Arc<dyn Provider>,
    coalescer: Arc<Coalescer>,
}

impl Provider for Coalesced {
    fn measure<'a>(&'a self, metric: &'a Metric) -> BoxFuture<'a, Answer> {
        self.coalescer
            .measure(&self.key, self.window, metric, &self.inner)
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::analysis::model::{MetricProvider, PrometheusMetric};

    struct Counting(AtomicU64);
    impl Provider for Counting {
        fn measure<'a>(&'a self, _m: &'a Metric) -> BoxFuture<'a, Answer> {
            async move {
                self.0.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(Observation {
                    value: "1".into(),
                    ..Observation::default()
                })
            }
            .boxed()
        }
    }

    fn metric(query: &str) -> Metric {
        Metric {
            name: "m".into(),
            interval: Some("10s".into()),
            provider: MetricProvider {
                prometheus: Some(PrometheusMetric {
                    address: Some("http://127.0.0.1:9".into()),
                    query: query.into(),
                    ..PrometheusMetric::default()
                }),
                ..MetricProvider::default()
            },
            ..Metric::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn identical_queries_within_the_window_go_upstream_once() {
        let c = Arc::new(Coalescer::new(Duration::from_secs(5), Telemetry::new()));
        let inner = Arc::new(Counting(AtomicU64::new(0)));
        let settings = ProviderSettings::default();
        let a = metric("sum(up)");
        let b = metric("sum(rate(x[1m]))");
        // 20 runs measuring the same query concurrently, 20 measuring another one.
        let providers: Vec<_> = (0..40)
            .map(|i| {
                let m = if i % 2 == 0 { &a } else { &b };
                (m.clone(), c.wrap(m, &settings, inner.clone()))
            })
            .collect();
        let answers = futures::future::join_all(providers.iter().map(|(m, p)| p.measure(m))).await;
        assert!(
            answers
                .iter()
                .all(|a| a.as_ref().map(|o| o.value.as_str()) == Ok("1"))
        );
        assert_eq!(
            inner.0.load(Ordering::SeqCst),
            2,
            "one request per distinct query"
        );
        assert_eq!(c.upstream_requests(), 2);
        assert_eq!(c.measurements(), 40);
        // Still within the window: shared.
        tokio::time::advance(Duration::from_secs(2)).await;
        providers[0]
            .1
            .measure(&providers[0].0)
            .await
            .expect("answer");
        assert_eq!(inner.0.load(Ordering::SeqCst), 2);
        // After the window: a new request.
        tokio::time::advance(Duration::from_secs(5)).await;
        providers[0]
            .1
            .measure(&providers[0].0)
            .await
            .expect("answer");
        assert_eq!(inner.0.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_metric_s_provider_is_built_once() {
        let c = Arc::new(Coalescer::new(Duration::from_secs(5), Telemetry::new()));
        let settings = ProviderSettings::default();
        let a = c.provider(&metric("sum(up)"), &settings).expect("provider");
        let again = c.provider(&metric("sum(up)"), &settings).expect("provider");
        let other = c.provider(&metric("sum(x)"), &settings).expect("provider");
        assert!(Arc::ptr_eq(&a, &again), "the same configuration is kept");
        assert!(!Arc::ptr_eq(&a, &other), "another query has its own");
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_window_never_shares() {
        let c = Arc::new(Coalescer::new(Duration::ZERO, Telemetry::new()));
        let inner = Arc::new(Counting(AtomicU64::new(0)));
        let m = metric("sum(up)");
        let p = c.wrap(&m, &ProviderSettings::default(), inner.clone());
        futures::future::join_all((0..5).map(|_| p.measure(&m))).await;
        assert_eq!(inner.0.load(Ordering::SeqCst), 5);
    }
}
