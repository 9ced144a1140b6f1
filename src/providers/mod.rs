//! Metric providers: Prometheus, web (HTTP JSON) and Flagger built-in metrics.
