//! The controller at scale: `N` concurrent Rollouts (default 1,000), each mid-analysis,
//! against a real kube-apiserver + etcd and a real Prometheus, with the release
//! `rollgate controller` binary as a child process. Measured over a steady-state window,
//! once with query coalescing (the default 5 s window) and once without
//! (`--coalesce-window 0`), on the same objects:
//!
//! - controller RSS (`VmRSS` sampled every second: max and mean; `VmHWM` for the peak of
//!   the whole process life, start-up included),
//! - controller CPU (`utime + stime` over the window, as % of one core),
//! - reconcile latency p50/p99 per kind (from the controller's own
//!   `rollgate_reconcile_duration_seconds` histogram, window delta, interpolated within
//!   its power-of-two buckets as `histogram_quantile` does),
//! - Prometheus queries per second (Prometheus' own `prometheus_http_requests_total` for
//!   `/api/v1/query*`), measurements per second and measurement errors,
//! - API server requests per second by verb and resource (the API server's own
//!   `apiserver_request_total`), which shows what each reconcile costs.
//!
//! Each Rollout is `setWeight 20 → analysis → setWeight 50`; the analysis template
//! measures one of `D` distinct queries (default 5, chosen by the Rollout's `service`
//! arg) every `INTERVAL` (default 10 s) with a count high enough that no run ends during
//! the bench, so every Rollout stays mid-analysis. The bench plays kubelet (a watch marks
//! Deployments ready).
//!
//! ```text
//! cargo bench --bench controller_scale
//! ROLLGATE_BENCH_ROLLOUTS=50 ROLLGATE_BENCH_WINDOW=30 cargo bench --bench controller_scale
//! ```
//! Environment: `ROLLGATE_BENCH_ROLLOUTS` (N), `ROLLGATE_BENCH_DISTINCT` (D),
//! `ROLLGATE_BENCH_INTERVAL` (seconds between measurements of one run),
//! `ROLLGATE_BENCH_WINDOW` (steady-state window, seconds, default 120),
//! `ROLLGATE_BENCH_WARMUP` (seconds after the controller settled, default 30),
//! `ROLLGATE_BENCH_MODES` (`coalesced,uncoalesced` by default; either alone).

#[path = "../tests/support/controller.rs"]
mod controller;
#[path = "../tests/support/k8s.rs"]
mod k8s;
#[path = "../tests/support/prometheus.rs"]
mod prometheus;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use kube::Resource;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use rollgate::core::analysis::value::AnalysisPhase;
use rollgate::k8s::{AnalysisRun, Rollout};
use rollgate::traffic::httproute::httproute_resource;
use serde_json::json;

const TEMPLATE: &str = "bench-success-rate";
const QUERY: &str = r#"sum(rate(http_requests_total{service="{{args.service}}",code="200"}[1m]))"#;
/// Concurrent API calls of the set-up (creating objects, patching images).
const SETUP_CONCURRENCY: usize = 32;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Settings {
    rollouts: usize,
    distinct: usize,
    interval: u64,
    window: Duration,
    warmup: Duration,
    modes: Vec<Mode>,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Coalesced,
    Uncoalesced,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Coalesced => "coalesced (5 s)",
            Mode::Uncoalesced => "not coalesced",
        }
    }
    fn window_flag(self) -> &'static str {
        match self {
            Mode::Coalesced => "5",
            Mode::Uncoalesced => "0",
        }
    }
}

impl Settings {
    fn from_env() -> Self {
        let modes = std::env::var("ROLLGATE_BENCH_MODES")
            .unwrap_or_else(|_| "coalesced,uncoalesced".into())
            .split(',')
            .filter_map(|m| match m.trim() {
                "coalesced" => Some(Mode::Coalesced),
                "uncoalesced" => Some(Mode::Uncoalesced),
                _ => None,
            })
            .collect();
        Self {
            rollouts: usize::try_from(env("ROLLGATE_BENCH_ROLLOUTS", 1000)).unwrap_or(1000),
            distinct: usize::try_from(env("ROLLGATE_BENCH_DISTINCT", 5))
                .unwrap_or(5)
                .max(1),
            interval: env("ROLLGATE_BENCH_INTERVAL", 10).max(1),
            window: Duration::from_secs(env("ROLLGATE_BENCH_WINDOW", 120).max(5)),
            warmup: Duration::from_secs(env("ROLLGATE_BENCH_WARMUP", 30)),
            modes,
        }
    }
}

fn template_yaml(interval: u64) -> String {
    format!(
        r#"apiVersion: rollgate.dev/v1alpha1
kind: AnalysisTemplate
metadata: {{name: {TEMPLATE}}}
spec:
  args: [{{name: service}}]
  metrics:
    - name: success-rate
      interval: {interval}s
      count: 1000000
      successCondition: "result[0] >= 0"
      provider:
        prometheus:
          query: '{QUERY}'
"#
    )
}

fn rollout_yaml(name: &str, service: &str) -> String {
    format!(
        r#"apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata: {{name: {name}}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: {name}}}
  service: {{port: 80}}
  trafficRouting: {{gatewayAPI: {{httpRoute: {{name: {name}}}}}}}
  strategy:
    canary:
      steps:
        - setWeight: 20
        - analysis:
            templates: [{{templateName: {TEMPLATE}}}]
            args: [{{name: service, value: {service}}}]
        - setWeight: 50
"#
    )
}

/// Create every object of `yamls` (one kind, `ar`) in `ns`, `SETUP_CONCURRENCY` at a time.
async fn create_all(client: &kube::Client, ns: &str, ar: &ApiResource, yamls: Vec<String>) {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, ar);
    futures::stream::iter(yamls)
        .map(|y| {
            let api = api.clone();
            async move {
                let obj: DynamicObject = serde_yaml::from_str(&y).expect("bench YAML");
                api.create(&PostParams::default(), &obj)
                    .await
                    .unwrap_or_else(|e| panic!("create {}: {e}", ar.kind));
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
}

/// Plays kubelet and the Deployment controller: a watch marks every Deployment whose
/// status lags its spec ready.
fn kubelet(client: kube::Client, ns: &str) -> tokio::task::JoinHandle<()> {
    let api: Api<Deployment> = Api::namespaced(client, ns);
    tokio::spawn(async move {
        let events = watcher(api.clone(), watcher::Config::default()).applied_objects();
        events
            .for_each_concurrent(16, |d| {
                let api = api.clone();
                async move {
                    let Ok(d) = d else { return };
                    let generation = d.metadata.generation.unwrap_or(0);
                    let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                    let st = d.status.clone().unwrap_or_default();
                    if st.observed_generation == Some(generation)
                        && st.available_replicas.unwrap_or(0) == replicas
                        && st.updated_replicas.unwrap_or(0) == replicas
                    {
                        return;
                    }
                    let name = d.metadata.name.clone().unwrap_or_default();
                    let status = json!({"status": {
                        "observedGeneration": generation,
                        "replicas": replicas,
                        "updatedReplicas": replicas,
                        "readyReplicas": replicas,
                        "availableReplicas": replicas,
                    }});
                    let _ = api
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
                        .await;
                }
            })
            .await;
    })
}

/// A `rollgate controller` child process; SIGTERM then wait on drop.
struct Controller {
    child: Child,
    metrics: String,
    log: std::path::PathBuf,
}

impl Controller {
    fn start(
        cp: &k8s::ControlPlane,
        ns: &str,
        prometheus: &str,
        mode: Mode,
        dir: &std::path::Path,
    ) -> Self {
        let port = prometheus::free_port();
        let log = dir.join(format!("controller-{}.log", mode.window_flag()));
        let file = std::fs::File::create(&log).expect("controller log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rollgate"));
        // SAFETY: prctl(2) only sets a flag of the child: it dies with the bench, even when
        // the bench is killed and no destructor runs.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .args(["controller", "--env", "bench", "--prometheus", prometheus])
            .args(["--namespace", ns, "--lease-namespace", ns])
            .args(["--lease-name", &format!("bench-{}", mode.window_flag())])
            .args(["--coalesce-window", mode.window_flag()])
            .arg("--metrics-addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--git-cache")
            .arg(dir.join("git-cache"))
            .env("KUBECONFIG", cp.kubeconfig())
            .env_remove("ROLLGATE_LOG")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("start rollgate controller");
        Self {
            child,
            metrics: format!("http://127.0.0.1:{port}/metrics"),
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(mut self) {
        // SAFETY: kill(2) on our own child's pid; no memory is touched.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(
                libc::pid_t::try_from(self.child.id()).expect("pid fits"),
                libc::SIGTERM,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `(name, labels, value)` of every sample of a text exposition.
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (head, value) = match line.rfind('}') {
            Some(i) => (&line[..=i], line[i + 1..].trim()),
            None => match line.split_once(' ') {
                Some((h, v)) => (h, v.trim()),
                None => continue,
            },
        };
        let value = value.split_whitespace().next().unwrap_or_default();
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match head.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (head, ""),
        };
        let mut map = BTreeMap::new();
        let mut rest = labels;
        while let Some((k, v)) = rest.split_once("=\"") {
            let end = v.find('"').unwrap_or(v.len());
            map.insert(
                k.trim_start_matches(',').trim().to_owned(),
                v[..end].to_owned(),
            );
            rest = v.get(end + 1..).unwrap_or_default();
        }
        out.push((name.to_owned(), map, value));
    }
    out
}

/// The sum of the samples named `name` whose labels satisfy `pred`.
fn sum(
    s: &[(String, BTreeMap<String, String>, f64)],
    name: &str,
    pred: impl Fn(&BTreeMap<String, String>) -> bool,
) -> f64 {
    s.iter()
        .filter(|(n, l, _)| n == name && pred(l))
        .map(|(_, _, v)| v)
        .sum()
}

/// Cumulative `(le, count)` buckets of `rollgate_reconcile_duration_seconds` for `kind`.
fn buckets(s: &[(String, BTreeMap<String, String>, f64)], kind: &str) -> Vec<(f64, f64)> {
    let mut b: Vec<(f64, f64)> = s
        .iter()
        .filter(|(n, l, _)| {
            n == "rollgate_reconcile_duration_seconds_bucket"
                && l.get("kind").map(String::as_str) == Some(kind)
        })
        .filter_map(|(_, l, v)| {
            let le = l.get("le")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, *v))
        })
        .collect();
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    b
}

/// `histogram_quantile` over the difference of two cumulative bucket lists.
fn quantile(q: f64, before: &[(f64, f64)], after: &[(f64, f64)]) -> Option<f64> {
    let delta: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, c)| {
            let b = before
                .iter()
                .find(|(l, _)| l == le)
                .map_or(0.0, |(_, c)| *c);
            (*le, c - b)
        })
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, c) in &delta {
        if c >= rank {
            if le.is_infinite() {
                return Some(prev.0);
            }
            let width = c - prev.1;
            let frac = if width > 0.0 {
                (rank - prev.1) / width
            } else {
                1.0
            };
            return Some(prev.0 + (le - prev.0) * frac);
        }
        prev = (le, c);
    }
    Some(prev.0)
}

async fn get_text(http: &reqwest::Client, url: &str) -> String {
    match http.get(url).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

fn apiserver_metrics(cp: &k8s::ControlPlane) -> String {
    let (ok, out, err) = cp.kubectl(&["get", "--raw", "/metrics"], None);
    assert!(ok, "API server metrics: {err}");
    out
}

/// Clock ticks of user + system CPU of `pid`.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("controller alive");
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    // After the command name: state(3) ... utime(14) stime(15), counted from 1.
    f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0)
}

/// A `kB` field of /proc/PID/status, in MiB.
fn status_mib(pid: u32, field: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[derive(Default)]
struct Figures {
    secs: f64,
    rss_max: f64,
    rss_mean: f64,
    rss_peak_life: f64,
    cpu_pct: f64,
    rollout_p50: Option<f64>,
    rollout_p99: Option<f64>,
    run_p50: Option<f64>,
    run_p99: Option<f64>,
    rollout_per_s: f64,
    run_per_s: f64,
    measurements_per_s: f64,
    measurement_errors: f64,
    reconcile_errors: f64,
    prom_qps: f64,
    api_per_s: f64,
    api_top: Vec<(String, f64)>,
}

fn api_by_call(s: &[(String, BTreeMap<String, String>, f64)]) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for (n, l, v) in s {
        if n != "apiserver_request_total" {
            continue;
        }
        let get = |k: &str| l.get(k).cloned().unwrap_or_default();
        let mut key = format!("{} {}", get("verb"), get("resource"));
        if !get("subresource").is_empty() {
            key = format!("{key}/{}", get("subresource"));
        }
        *m.entry(key).or_insert(0.0) += v;
    }
    m
}

async fn measure(
    cp: &k8s::ControlPlane,
    http: &reqwest::Client,
    ctl: &Controller,
    prom: &str,
    window: Duration,
) -> Figures {
    let pid = ctl.pid();
    let ticks_per_s = {
        // SAFETY: sysconf has no preconditions.
        #[allow(unsafe_code)]
        let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        f64::from(u32::try_from(t).unwrap_or(100))
    };
    let c0 = samples(&get_text(http, &ctl.metrics).await);
    let p0 = samples(&get_text(http, &format!("{prom}/metrics")).await);
    let a0 = samples(&apiserver_metrics(cp));
    let t0 = Instant::now();
    let cpu0 = cpu_ticks(pid);
    let mut rss = Vec::new();
    while t0.elapsed() < window {
        rss.push(status_mib(pid, "VmRSS:"));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let cpu1 = cpu_ticks(pid);
    let secs = t0.elapsed().as_secs_f64();
    let c1 = samples(&get_text(http, &ctl.metrics).await);
    let p1 = samples(&get_text(http, &format!("{prom}/metrics")).await);
    let a1 = samples(&apiserver_metrics(cp));
    #[allow(clippy::cast_precision_loss)]
    let cpu_pct = (cpu1 - cpu0) as f64 / ticks_per_s / secs * 100.0;
    let delta =
        |name: &str, s0: &[_], s1: &[_], pred: &dyn Fn(&BTreeMap<String, String>) -> bool| {
            (sum(s1, name, pred) - sum(s0, name, pred)) / secs
        };
    let kind = |k: &'static str| {
        move |l: &BTreeMap<String, String>| l.get("kind").map(String::as_str) == Some(k)
    };
    let query = |l: &BTreeMap<String, String>| {
        l.get("handler")
            .is_some_and(|h| h.starts_with("/api/v1/query"))
    };
    let (rb0, rb1) = (buckets(&c0, "Rollout"), buckets(&c1, "Rollout"));
    let (ab0, ab1) = (buckets(&c0, "AnalysisRun"), buckets(&c1, "AnalysisRun"));
    let (calls0, calls1) = (api_by_call(&a0), api_by_call(&a1));
    let mut api_top: Vec<(String, f64)> = calls1
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                (v - calls0.get(k).copied().unwrap_or(0.0)) / secs,
            )
        })
        .filter(|(_, r)| *r >= 0.05)
        .collect();
    api_top.sort_by(|a, b| b.1.total_cmp(&a.1));
    #[allow(clippy::cast_precision_loss)]
    let rss_mean = rss.iter().sum::<f64>() / rss.len().max(1) as f64;
    Figures {
        secs,
        rss_max: rss.iter().copied().fold(0.0, f64::max),
        rss_mean,
        rss_peak_life: status_mib(pid, "VmHWM:"),
        cpu_pct,
        rollout_p50: quantile(0.5, &rb0, &rb1),
        rollout_p99: quantile(0.99, &rb0, &rb1),
        run_p50: quantile(0.5, &ab0, &ab1),
        run_p99: quantile(0.99, &ab0, &ab1),
        rollout_per_s: delta("rollgate_reconciles_total", &c0, &c1, &kind("Rollout")),
        run_per_s: delta("rollgate_reconciles_total", &c0, &c1, &kind("AnalysisRun")),
        measurements_per_s: delta("rollgate_analysis_measurements_total", &c0, &c1, &|_| true),
        measurement_errors: delta("rollgate_analysis_measurements_total", &c0, &c1, &|l| {
            l.get("phase").map(String::as_str) == Some("Error")
        }) * secs,
        reconcile_errors: delta("rollgate_reconcile_errors_total", &c0, &c1, &|_| true) * secs,
        prom_qps: delta("prometheus_http_requests_total", &p0, &p1, &query),
        api_per_s: api_top.iter().map(|(_, r)| r).sum(),
        api_top,
    }
}

/// Wait until `pred(count)` over the listed objects holds, printing progress; panics after
/// `secs` with the controller's log tail.
async fn wait_count<K>(
    api: &Api<K>,
    what: &str,
    want: usize,
    secs: u64,
    ctl: &Controller,
    count: impl Fn(&K) -> bool,
) where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let started = Instant::now();
    let mut last_print = Instant::now();
    loop {
        let n = match api.list(&ListParams::default()).await {
            Ok(l) => l.items.iter().filter(|o| count(o)).count(),
            Err(_) => 0,
        };
        if n >= want {
            println!(
                "  {what}: {n}/{want} after {:.0}s",
                started.elapsed().as_secs_f64()
            );
            return;
        }
        if last_print.elapsed() > Duration::from_secs(15) {
            println!(
                "  {what}: {n}/{want} after {:.0}s",
                started.elapsed().as_secs_f64()
            );
            last_print = Instant::now();
        }
        if started.elapsed() > Duration::from_secs(secs) {
            let log = std::fs::read_to_string(&ctl.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "{what}: only {n}/{want} after {secs}s; controller log (last lines, newest first):\n{}",
                tail.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Wait until the controller has reconciled every Rollout and run at least once (its
/// start-up burst is over), then `warmup` more.
async fn settle(http: &reqwest::Client, ctl: &Controller, n: usize, warmup: Duration) {
    let started = Instant::now();
    #[allow(clippy::cast_precision_loss)]
    let want = n as f64;
    loop {
        let s = samples(&get_text(http, &ctl.metrics).await);
        let done = |k: &str| {
            sum(&s, "rollgate_reconciles_total", |l| {
                l.get("kind").map(String::as_str) == Some(k)
            })
        };
        if done("Rollout") >= want && done("AnalysisRun") >= want {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "the controller did not reconcile every object within 900 s"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!(
        "  controller reconciled every object once after {:.0}s; warming up {}s",
        started.elapsed().as_secs_f64(),
        warmup.as_secs()
    );
    tokio::time::sleep(warmup).await;
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |s| format!("{:.1} ms", s * 1000.0))
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let set = Settings::from_env();
    let n = set.rollouts;
    println!(
        "controller_scale: {n} Rollouts, {} distinct queries, {}s measurement interval, {}s window, {} cores",
        set.distinct,
        set.interval,
        set.window.as_secs(),
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let t = Instant::now();
    let cp = k8s::ControlPlane::start();
    controller::install_crds(&cp);
    let mut data = prometheus::Backfill::new();
    for i in 0..set.distinct {
        data = data.counter(
            "http_requests_total",
            &format!("service=\"svc-{i}\",code=\"200\""),
            10.0,
        );
    }
    let prom = prometheus::Prometheus::start(&data);
    println!(
        "  control plane, CRDs and Prometheus up in {:.0}s",
        t.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let results = rt.block_on(async {
        let client = cp.client().await;
        let http = reqwest::Client::new();
        let ns = cp.namespace("scale");
        controller::apply(&cp, &ns, &template_yaml(set.interval));
        let t = Instant::now();
        let names: Vec<String> = (0..n).map(|i| format!("app-{i:04}")).collect();
        create_all(
            &client,
            &ns,
            &ApiResource::erase::<Deployment>(&()),
            names
                .iter()
                .map(|a| controller::deployment_yaml(a, "ghcr.io/acme/app:1.0.0"))
                .collect(),
        )
        .await;
        create_all(
            &client,
            &ns,
            &httproute_resource(),
            names.iter().map(|a| controller::route_yaml(a)).collect(),
        )
        .await;
        create_all(
            &client,
            &ns,
            &ApiResource::erase::<Rollout>(&()),
            names
                .iter()
                .enumerate()
                .map(|(i, a)| rollout_yaml(a, &format!("svc-{}", i % set.distinct)))
                .collect(),
        )
        .await;
        println!(
            "  {n} Deployments, HTTPRoutes and Rollouts created in {:.0}s",
            t.elapsed().as_secs_f64()
        );
        let _kubelet = kubelet(client.clone(), &ns);
        let rollouts: Api<Rollout> = Api::namespaced(client.clone(), &ns);
        let runs: Api<AnalysisRun> = Api::namespaced(client.clone(), &ns);
        let mut results = Vec::new();
        for (i, mode) in set.modes.iter().copied().enumerate() {
            println!("{}:", mode.label());
            let ctl = Controller::start(&cp, &ns, &prom.url, mode, dir.path());
            if i == 0 {
                wait_count(&rollouts, "Rollouts initialized", n, 900, &ctl, |r| {
                    r.status
                        .as_ref()
                        .is_some_and(|s| s.status.primary_revision.is_some())
                })
                .await;
                // Argo CD syncs a new version into every target: every Rollout starts.
                let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
                futures::stream::iter(names.iter())
                    .map(|a| {
                        let d = deployments.clone();
                        async move {
                            let patch = json!({"spec": {"template": {"spec": {"containers": [
                                {"name": "app", "image": "ghcr.io/acme/app:1.1.0"}]}}}});
                            d.patch(a, &PatchParams::default(), &Patch::Strategic(patch))
                                .await
                                .map(|_| ())
                        }
                    })
                    .buffer_unordered(SETUP_CONCURRENCY)
                    .try_collect::<Vec<()>>()
                    .await
                    .expect("set the new image");
                wait_count(&runs, "analysis runs Running", n, 900, &ctl, |r| {
                    r.status
                        .as_ref()
                        .is_some_and(|s| s.phase == AnalysisPhase::Running)
                })
                .await;
            }
            settle(&http, &ctl, n, set.warmup).await;
            println!("  measuring {}s", set.window.as_secs());
            let f = measure(&cp, &http, &ctl, &prom.url, set.window).await;
            // Every Rollout must still be mid-analysis, or the window measured something else.
            wait_count(&runs, "runs still Running", n, 10, &ctl, |r| {
                r.status
                    .as_ref()
                    .is_some_and(|s| s.phase == AnalysisPhase::Running)
            })
            .await;
            ctl.stop();
            results.push((mode, f));
        }
        results
    });
    println!();
    println!(
        "{n} Rollouts mid-analysis, {} distinct queries, one measurement per run every {}s",
        set.distinct, set.interval
    );
    println!(
        "| mode | RSS max / mean (MiB) | peak RSS incl. start-up | CPU (% of one core) | Rollout reconcile p50 / p99 | AnalysisRun reconcile p50 / p99 | reconciles/s (Rollout, run) | measurements/s (errors) | Prometheus queries/s | API requests/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (mode, f) in &results {
        println!(
            "| {} | {:.1} / {:.1} | {:.1} | {:.1} | {} / {} | {} / {} | {:.1}, {:.1} | {:.1} ({:.0}) | {:.2} | {:.0} |",
            mode.label(),
            f.rss_max,
            f.rss_mean,
            f.rss_peak_life,
            f.cpu_pct,
            ms(f.rollout_p50),
            ms(f.rollout_p99),
            ms(f.run_p50),
            ms(f.run_p99),
            f.rollout_per_s,
            f.run_per_s,
            f.measurements_per_s,
            f.measurement_errors,
            f.prom_qps,
            f.api_per_s,
        );
    }
    for (mode, f) in &results {
        println!();
        println!(
            "{} — {:.0}s window, {:.0} reconcile errors; API server requests/s by call:",
            mode.label(),
            f.secs,
            f.reconcile_errors
        );
        for (call, rate) in f.api_top.iter().take(12) {
            println!("  {rate:8.1}  {call}");
        }
    }
}
