//! A real Prometheus for tests: Debian's `prometheus` on a free loopback port, with a
//! temporary data directory backfilled by `promtool tsdb create-blocks-from openmetrics`.
//! The server is killed when the handle drops (also when the test panics).
//!
//! Also a "slow" server that accepts connections and never answers, and a closed port.
//! Missing `prometheus` or `promtool` fails the test loudly (run `scripts/setup`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Seconds between backfilled samples.
pub const STEP: i64 = 15;
/// Backfilled history before "now", seconds.
pub const HISTORY: i64 = 3600;
/// Backfilled "future" after "now", seconds, so `rate(...[1m])` still finds samples
/// however long the test takes to reach its query.
pub const FUTURE: i64 = 2 * 3600;

fn find_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "`{name}` is not installed or not on PATH: the Prometheus integration tests need \
         Debian's `prometheus` package (run ./scripts/setup)"
    );
}

/// The current Unix time in whole seconds.
pub fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs(),
    )
    .expect("time fits i64")
}

/// One series of the backfill: a metric name, a label set and its value over time.
#[derive(Clone)]
struct Series {
    name: String,
    labels: String,
    value: Arc<dyn Fn(i64) -> f64 + Send + Sync>,
}

/// Backfill data, written as OpenMetrics with second timestamps from `now - HISTORY` to
/// `now + FUTURE` every `STEP` seconds.
#[derive(Clone)]
pub struct Backfill {
    start: i64,
    end: i64,
    series: Vec<Series>,
}

impl Default for Backfill {
    fn default() -> Self {
        Self::new()
    }
}

impl Backfill {
    /// An empty backfill around the current time.
    pub fn new() -> Self {
        let n = now();
        Self {
            start: n - HISTORY,
            end: n + FUTURE,
            series: Vec::new(),
        }
    }

    /// A counter growing by `per_second` (so `rate(name[1m])` is `per_second`).
    /// `labels` is the inside of `{...}`, e.g. `code="200",app="x"`.
    pub fn counter(mut self, name: &str, labels: &str, per_second: f64) -> Self {
        let start = self.start;
        #[allow(clippy::cast_precision_loss)]
        let f = move |t: i64| per_second * (t - start) as f64;
        self.series.push(Series {
            name: name.to_owned(),
            labels: labels.to_owned(),
            value: Arc::new(f),
        });
        self
    }

    /// A gauge with a constant value (may be NaN).
    pub fn gauge(mut self, name: &str, labels: &str, value: f64) -> Self {
        self.series.push(Series {
            name: name.to_owned(),
            labels: labels.to_owned(),
            value: Arc::new(move |_| value),
        });
        self
    }

    /// A histogram: `<name>_bucket{le=...}` counters from per-bucket request rates
    /// (`buckets` = (upper bound, requests per second falling in that bucket)), plus
    /// `<name>_count` and `<name>_sum` (sum uses each bucket's upper bound, or `sum_rate`
    /// when given).
    pub fn histogram(
        mut self,
        name: &str,
        labels: &str,
        buckets: &[(f64, f64)],
        sum_rate: Option<f64>,
    ) -> Self {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0.0;
        let mut sum = 0.0;
        for (le, rate) in buckets {
            cumulative += rate;
            sum += le * rate;
            self = self.counter(
                &format!("{name}_bucket"),
                &format!("{labels}{sep}le=\"{le}\""),
                cumulative,
            );
        }
        self = self.counter(
            &format!("{name}_bucket"),
            &format!("{labels}{sep}le=\"+Inf\""),
            cumulative,
        );
        self = self.counter(&format!("{name}_count"), labels, cumulative);
        self.counter(&format!("{name}_sum"), labels, sum_rate.unwrap_or(sum))
    }

    /// Only the `_bucket` counters of a histogram (`name` is the full bucket name):
    /// `buckets` = (upper bound, requests per second in that bucket), plus `le="+Inf"`.
    pub fn buckets(mut self, name: &str, labels: &str, buckets: &[(f64, f64)]) -> Self {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0.0;
        for (le, rate) in buckets {
            cumulative += rate;
            self = self.counter(name, &format!("{labels}{sep}le=\"{le}\""), cumulative);
        }
        self.counter(name, &format!("{labels}{sep}le=\"+Inf\""), cumulative)
    }

    /// The OpenMetrics text: one `unknown` family per metric name, each series sorted by
    /// time, ending with `# EOF`.
    pub fn openmetrics(&self) -> String {
        let mut by_name: BTreeMap<&str, Vec<&Series>> = BTreeMap::new();
        for s in &self.series {
            by_name.entry(&s.name).or_default().push(s);
        }
        let mut out = String::new();
        for (name, series) in by_name {
            writeln!(out, "# TYPE {name} unknown").expect("write to string");
            for s in series {
                let mut t = self.start;
                while t <= self.end {
                    let v = (s.value)(t);
                    let v = if v.is_nan() {
                        "NaN".to_owned()
                    } else {
                        format!("{v}")
                    };
                    writeln!(out, "{name}{{{}}} {v} {t}", s.labels).expect("write to string");
                    t += STEP;
                }
            }
        }
        out.push_str("# EOF\n");
        out
    }
}

/// A running Prometheus, killed on drop.
pub struct Prometheus {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Backfill `data` and start Prometheus on it; waits until it is ready.
    pub fn start(data: &Backfill) -> Self {
        let prometheus = find_tool("prometheus");
        let promtool = find_tool("promtool");
        let dir = tempfile::tempdir().expect("temp dir");
        let input = dir.path().join("backfill.om");
        std::fs::write(&input, data.openmetrics()).expect("write backfill");
        let tsdb = dir.path().join("data");
        let out = Command::new(&promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&input)
            .arg(&tsdb)
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, "global:\n  scrape_interval: 1h\n").expect("write config");
        // The port is free when picked but another process may take it before Prometheus
        // binds it: then Prometheus exits and we try another port.
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let log_path = dir.path().join("prometheus.log");
            let log = std::fs::File::create(&log_path).expect("log file");
            let mut child = Command::new(&prometheus)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", tsdb.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--storage.tsdb.retention.time=100y")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .expect("start prometheus");
            if wait_ready(&mut child, port) {
                return Self {
                    child,
                    url: format!("http://127.0.0.1:{port}"),
                    dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
        }
        panic!("prometheus did not become ready; last log:\n{last_log}");
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Wait up to 60 s for `/-/ready`; false when the server exited (port taken) or never
/// became ready.
fn wait_ready(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some((200, _)) = http_get(port, "/-/ready") {
            return true;
        }
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind loopback")
        .local_addr()
        .expect("local addr")
        .port()
}

/// `http://127.0.0.1:PORT` where nothing listens.
pub fn closed_address() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// A minimal HTTP GET on loopback: status and body.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|x| x.1.to_owned())?;
    Some((status, body))
}

/// A server on loopback that accepts connections and never answers; stops on drop.
pub struct SlowServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SlowServer {
    /// Start accepting.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => held.push(conn),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Self {
            url,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SlowServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A tiny HTTP server on loopback answering every request with a fixed status, content
/// type and body; stops on drop. For the web provider and non-Prometheus answers.
pub struct FixedServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The raw requests received.
    pub requests: Arc<std::sync::Mutex<Vec<String>>>,
}

impl FixedServer {
    /// Start answering.
    pub fn start(status: u16, content_type: &str, body: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = requests.clone();
        let response = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
                        let mut buf = vec![0u8; 65536];
                        let mut got = Vec::new();
                        // Read the head and any body that arrives promptly.
                        loop {
                            match conn.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    got.extend_from_slice(&buf[..n]);
                                    let text = String::from_utf8_lossy(&got);
                                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                                        let len = head
                                            .lines()
                                            .find_map(|l| {
                                                l.to_ascii_lowercase()
                                                    .strip_prefix("content-length:")
                                                    .and_then(|v| v.trim().parse::<usize>().ok())
                                            })
                                            .unwrap_or(0);
                                        if body.len() >= len {
                                            break;
                                        }
                                    }
                                }
                            }
                        }
                        seen.lock()
                            .expect("lock")
                            .push(String::from_utf8_lossy(&got).into_owned());
                        let _ = conn.write_all(response.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self {
            url,
            stop,
            thread: Some(thread),
            requests,
        }
    }
}

impl Drop for FixedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The path of a shared test-vector file (`shared/vectors/NAME`), searched in the
/// ancestors of the crate (the repository sits beside `shared/`). Panics when missing.
pub fn vector_file(name: &str) -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in manifest.ancestors() {
        let candidate = dir.join("shared").join("vectors").join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("test vectors shared/vectors/{name} not found beside the repository");
}

/// A shared vector file, parsed.
pub fn vectors(name: &str) -> serde_json::Value {
    let path = vector_file(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("read vectors"))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Success fraction and latency buckets of a canary in the backfilled data.
#[derive(Debug, Clone, Copy)]
pub struct Traffic {
    /// Requests per second answered 2xx.
    pub ok: f64,
    /// Requests per second answered 5xx.
    pub errors: f64,
    /// Latency buckets in seconds: (upper bound, fraction of the requests in the bucket).
    pub latency: &'static [(f64, f64)],
}

/// 99.5% success, p99 = 0.235 s (235 ms), mean 75 ms: a healthy canary.
pub const HEALTHY: Traffic = Traffic {
    ok: 199.0,
    errors: 1.0,
    latency: &[(0.05, 0.8), (0.1, 0.1), (0.25, 0.1)],
};

/// 90% success, p99 ≈ 0.989 s (989 ms): a bad canary.
pub const BAD: Traffic = Traffic {
    ok: 90.0,
    errors: 10.0,
    latency: &[(0.05, 0.1), (0.1, 0.1), (0.25, 0.1), (1.0, 0.7)],
};

fn scaled(buckets: &[(f64, f64)], factor: f64) -> Vec<(f64, f64)> {
    buckets.iter().map(|(le, r)| (le * factor, *r)).collect()
}

/// The series every mesh, ingress and the plain app would export for one canary
/// (namespace `ns`, workload `target`), so built-in metrics and shipped templates can be
/// checked against the same numbers.
pub fn canary_data(mut b: Backfill, ns: &str, target: &str, t: Traffic) -> Backfill {
    let total = t.ok + t.errors;
    let per_second: Vec<(f64, f64)> = t.latency.iter().map(|(le, f)| (*le, f * total)).collect();
    let seconds = per_second.as_slice();
    let ms = scaled(seconds, 1000.0);
    // Istio.
    let istio = format!(
        "reporter=\"destination\",destination_workload_namespace=\"{ns}\",destination_workload=\"{target}\""
    );
    b = b
        .counter(
            "istio_requests_total",
            &format!("{istio},response_code=\"200\""),
            t.ok,
        )
        .counter(
            "istio_requests_total",
            &format!("{istio},response_code=\"503\""),
            t.errors,
        )
        .buckets("istio_request_duration_milliseconds_bucket", &istio, &ms);
    // Linkerd.
    let linkerd = format!("namespace=\"{ns}\",deployment=\"{target}\",direction=\"inbound\"");
    b = b
        .counter(
            "response_total",
            &format!("{linkerd},classification=\"success\""),
            t.ok,
        )
        .counter(
            "response_total",
            &format!("{linkerd},classification=\"failure\""),
            t.errors,
        )
        .buckets("response_latency_ms_bucket", &linkerd, &ms);
    // NGINX ingress (ingress named after the target; canary ingress label set).
    let nginx =
        format!("namespace=\"{ns}\",ingress=\"{target}\",canary=\"{ns}-{target}-canary-80\"");
    let sum: f64 = seconds.iter().map(|(le, r)| le * r).sum();
    b = b
        .counter(
            "nginx_ingress_controller_requests",
            &format!("{nginx},status=\"200\""),
            t.ok,
        )
        .counter(
            "nginx_ingress_controller_requests",
            &format!("{nginx},status=\"503\""),
            t.errors,
        )
        .counter(
            "nginx_ingress_controller_response_duration_seconds_sum",
            &nginx,
            sum,
        )
        .counter(
            "nginx_ingress_controller_response_duration_seconds_count",
            &nginx,
            total,
        )
        .buckets(
            "nginx_ingress_controller_request_duration_seconds_bucket",
            &nginx,
            t.latency,
        );
    // The application's own histogram as Flagger's http observer expects it.
    let http =
        format!("kubernetes_namespace=\"{ns}\",kubernetes_pod_name=\"{target}-7d9f8c6b5-x2x4z\"");
    b = b
        .counter(
            "http_request_duration_seconds_count",
            &format!("{http},status=\"200\""),
            t.ok,
        )
        .counter(
            "http_request_duration_seconds_count",
            &format!("{http},status=\"503\""),
            t.errors,
        )
        .buckets("http_request_duration_seconds_bucket", &http, seconds);
    // Traefik (service names of the canary's TraefikService).
    let traefik = format!("service=\"{ns}-{target}-canary-80@kubernetescrd\"");
    let lat_ok: Vec<(f64, f64)> = t
        .latency
        .iter()
        .map(|(le, r)| (*le, r * t.ok / total))
        .collect();
    let lat_err: Vec<(f64, f64)> = t
        .latency
        .iter()
        .map(|(le, r)| (*le, r * t.errors / total))
        .collect();
    b = b
        .buckets(
            "traefik_service_request_duration_seconds_bucket",
            &format!("{traefik},code=\"200\""),
            &lat_ok,
        )
        .buckets(
            "traefik_service_request_duration_seconds_bucket",
            &format!("{traefik},code=\"503\""),
            &lat_err,
        );
    // Envoy (Gateway API implementations such as Envoy Gateway, Contour): the cluster of
    // the canary backend.
    let envoy =
        format!("envoy_cluster_name=\"httproute/{ns}/{target}/rule/0/backend/{target}-canary\"");
    b = b
        .counter(
            "envoy_cluster_upstream_rq",
            &format!("{envoy},envoy_response_code=\"200\""),
            t.ok,
        )
        .counter(
            "envoy_cluster_upstream_rq",
            &format!("{envoy},envoy_response_code=\"503\""),
            t.errors,
        )
        .buckets("envoy_cluster_upstream_rq_time_bucket", &envoy, &ms);
    // A plain app instrumented with http_requests_total and a seconds histogram.
    let plain = format!("namespace=\"{ns}\",service=\"{target}-canary\"");
    b.counter(
        "http_requests_total",
        &format!("{plain},code=\"200\""),
        t.ok,
    )
    .counter(
        "http_requests_total",
        &format!("{plain},code=\"503\""),
        t.errors,
    )
    .buckets("http_request_duration_seconds_bucket", &plain, seconds)
}
