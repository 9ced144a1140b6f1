//! Controller behaviour beyond the acceptance scenarios of `tests/controller.rs`, against
//! the real kube-apiserver and a real Prometheus: Flagger's `threshold` over the
//! shorthand's checks; blue-green by Service selectors when there is no HTTPRoute;
//! `secretKeyRef` args read from Secrets and never shown; `rollgate controller` ready
//! only once its caches synced, with approvals fed from the PromotionPolicies it sees;
//! AnalysisRun `ttlStrategy`; the shorthand's `metrics[].templateRef` to a MetricTemplate.

#[path = "support/controller.rs"]
mod controller;
#[path = "support/git.rs"]
mod git;
#[path = "support/k8s.rs"]
mod k8s;
#[path = "support/prometheus.rs"]
mod prometheus;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use controller::*;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::watcher;
use rollgate::core::strategy::Phase;
use rollgate::k8s::AnalysisRun;

/// A TCP relay on loopback in front of a real Prometheus: while closed it answers every
/// connection with `503` (a failed query, so a failed Flagger check); once opened it
/// forwards bytes both ways. Lets a test make exactly the checks it wants fail.
struct Gate {
    /// `http://127.0.0.1:PORT`.
    url: String,
    open: Arc<AtomicBool>,
    upstream: Arc<std::sync::Mutex<Option<u16>>>,
}

impl Gate {
    fn start() -> Gate {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("addr").port();
        let open = Arc::new(AtomicBool::new(false));
        let upstream = Arc::new(std::sync::Mutex::new(None::<u16>));
        let (o, u) = (open.clone(), upstream.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut client) = conn else { continue };
                let target = *u.lock().expect("lock");
                match target.filter(|_| o.load(Ordering::SeqCst)) {
                    None => {
                        let _ = client.set_read_timeout(Some(Duration::from_millis(200)));
                        let mut buf = [0u8; 4096];
                        let _ = client.read(&mut buf);
                        let _ = client.write_all(
                            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        );
                        let _ = client.shutdown(Shutdown::Both);
                    }
                    Some(port) => {
                        let Ok(server) = TcpStream::connect(("127.0.0.1", port)) else {
                            continue;
                        };
                        let (mut c2, mut s2) = (
                            client.try_clone().expect("clone"),
                            server.try_clone().expect("clone"),
                        );
                        let mut server = server;
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut c2, &mut s2);
                            let _ = s2.shutdown(Shutdown::Write);
                        });
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut server, &mut client);
                            let _ = client.shutdown(Shutdown::Write);
                        });
                    }
                }
            }
        });
        Gate {
            url: format!("http://127.0.0.1:{port}"),
            open,
            upstream,
        }
    }

    /// Forward to the Prometheus at `url` from now on.
    fn open_to(&self, url: &str) {
        let port: u16 = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in url");
        *self.upstream.lock().expect("lock") = Some(port);
        self.open.store(true, Ordering::SeqCst);
    }
}

/// Healthy canary traffic for Flagger's `gatewayapi` success rate (100%).
fn healthy(ns: &str) -> prometheus::Prometheus {
    prometheus::Prometheus::start(&prometheus::Backfill::new().counter(
        "http_request_duration_seconds_count",
        &format!(
            r#"kubernetes_namespace="{ns}",kubernetes_pod_name="podinfo-7d9f8b6c5-x2x9k",status="200""#
        ),
        10.0,
    ))
}

fn shorthand_rollout(threshold: u32) -> String {
    format!(
        r#"apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata: {{name: podinfo}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: podinfo}}
  service: {{port: 80}}
  trafficRouting: {{gatewayAPI: {{httpRoute: {{name: podinfo}}}}}}
  strategy:
    canary:
      analysis:
        interval: 10s
        threshold: {threshold}
        stepWeight: 50
        metrics:
          - name: request-success-rate
            interval: 1m
            thresholdRange: {{min: 99}}
"#
    )
}

/// A namespace with the target, its route and the shorthand Rollout, a kubelet, and a
/// controller whose Prometheus sits behind a closed [`Gate`].
async fn flagger_scene(
    threshold: u32,
) -> (
    kube::Client,
    String,
    Gate,
    Running,
    tokio::task::JoinHandle<()>,
) {
    let cp = k8s::shared();
    install_crds(cp);
    let client = cp.client().await;
    let ns = cp.namespace("thr");
    apply(
        cp,
        &ns,
        &deployment_yaml("podinfo", "ghcr.io/acme/app:1.0.0"),
    );
    apply(cp, &ns, &route_yaml("podinfo"));
    apply(cp, &ns, &shorthand_rollout(threshold));
    let (_, kubelet) = kubelet(client.clone(), &ns);
    let gate = Gate::start();
    let cache = std::env::temp_dir().join(format!("rollgate-gaps-{ns}"));
    let running = Running::start(client.clone(), &ns, "dev", &gate.url, &cache);
    wait_for(&client, &ns, "podinfo", 60, "Initialized", initialized).await;
    set_image(&client, &ns, "podinfo", "ghcr.io/acme/app:1.1.0").await;
    (client, ns, gate, running, kubelet)
}

async fn check_runs(client: &kube::Client, ns: &str) -> Vec<String> {
    let mut names: Vec<String> = Api::<AnalysisRun>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("list runs")
        .items
        .into_iter()
        .filter_map(|r| r.metadata.name)
        .filter(|n| n.contains("-check-"))
        .collect();
    names.sort();
    names
}

/// Flagger's `threshold: 2`: one failed check (Prometheus unreachable) holds the weight
/// for another interval, the next check passes, and the rollout is promoted with the
/// failed check still counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failed_check_under_threshold_two_does_not_roll_back() {
    let (client, ns, gate, _c, _k) = flagger_scene(2).await;
    let prom = healthy(&ns);
    let st = wait_for(&client, &ns, "podinfo", 60, "one failed check", |st| {
        st.failed_checks == 1
    })
    .await;
    assert_eq!(st.phase, Phase::Progressing, "{st:?}");
    assert_eq!(st.canary_weight, 50, "the weight is held, not rolled back");
    gate.open_to(&prom.url);
    let st = wait_for(
        &client,
        &ns,
        "podinfo",
        90,
        "Succeeded",
        phase_is(Phase::Succeeded),
    )
    .await;
    assert_eq!(
        st.failed_checks, 1,
        "a passing check does not reset the count"
    );
    let runs = check_runs(&client, &ns).await;
    assert!(
        runs.iter().any(|n| n.ends_with("-check-1-c0")) && runs.iter().any(|n| n.ends_with("-c1")),
        "the failed check and the later passing ones are separate runs: {runs:?}"
    );
    let reasons: Vec<String> = events(&client, &ns)
        .await
        .into_iter()
        .map(|(_, reason, _)| reason)
        .collect();
    assert!(
        reasons.iter().any(|r| r == "AnalysisCheckFailed"),
        "{reasons:?}"
    );
    assert!(
        !reasons.iter().any(|r| r == "RolloutAborted"),
        "{reasons:?}"
    );
}

/// The same failed check with `threshold: 1` rolls back at once: weight 0, `Failed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failed_check_at_threshold_one_rolls_back() {
    let (client, ns, _gate, _c, _k) = flagger_scene(1).await;
    let st = wait_for(
        &client,
        &ns,
        "podinfo",
        60,
        "Failed",
        phase_is(Phase::Failed),
    )
    .await;
    assert_eq!(st.failed_checks, 1);
    assert_eq!(st.canary_weight, 0);
    assert!(
        st.message
            .as_deref()
            .is_some_and(|m| m.contains("Failed checks threshold reached 1")),
        "{st:?}"
    );
    let w = read_route_weights(&client, &ns).await;
    assert_eq!(w, Some((100, 0)), "traffic back on the primary");
}

async fn read_route_weights(client: &kube::Client, ns: &str) -> Option<(u64, u64)> {
    let r = route(client, ns, "podinfo").await;
    rollgate::core::strategy::read_weights(&r, "podinfo-primary", "podinfo-canary")
}

/// The `app` selector values a Service showed, in order (from a watch, so no transient
/// state is missed).
fn record_selector(
    client: kube::Client,
    ns: &str,
    service: &str,
) -> (
    Arc<std::sync::Mutex<Vec<String>>>,
    tokio::task::JoinHandle<()>,
) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let out = seen.clone();
    let api: Api<Service> = Api::namespaced(client, ns);
    let cfg = watcher::Config::default().fields(&format!("metadata.name={service}"));
    let task = tokio::spawn(async move {
        let mut stream = watcher::watcher(api, cfg).boxed();
        while let Some(ev) = stream.next().await {
            let (Ok(watcher::Event::Apply(svc)) | Ok(watcher::Event::InitApply(svc))) = ev else {
                continue;
            };
            let app = svc
                .spec
                .and_then(|s| s.selector)
                .and_then(|s| s.get("app").cloned())
                .unwrap_or_default();
            let mut s = out.lock().expect("lock");
            if s.last() != Some(&app) {
                s.push(app);
            }
        }
    });
    (seen, task)
}

async fn selector(client: &kube::Client, ns: &str, service: &str) -> String {
    Api::<Service>::namespaced(client.clone(), ns)
        .get(service)
        .await
        .expect("get service")
        .spec
        .and_then(|s| s.selector)
        .and_then(|s| s.get("app").cloned())
        .unwrap_or_default()
}

const OK_QUERY: &str =
    r#"sum(rate(http_requests_total{service="{{args.service}}",code="200"}[1m]))"#;

/// A blue-green Rollout with no `trafficRouting`: the preview is checked before the switch,
/// the switch waits for a manual promote, and a post-promotion analysis runs after it.
fn selector_blue_green(condition: &str) -> (String, String, String) {
    let rollout = r#"apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata: {name: podinfo}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 80}
  strategy:
    blueGreen:
      activeService: podinfo-active
      previewService: podinfo-preview
      prePromotionAnalysis:
        templates: [{templateName: pre}]
        args: [{name: service, value: podinfo-canary}]
      autoPromotionEnabled: false
      postPromotionAnalysis:
        templates: [{templateName: post}]
        args: [{name: service, value: podinfo-canary}]
      scaleDownDelaySeconds: 0
"#
    .to_owned();
    (
        rollout,
        template_yaml("pre", OK_QUERY, condition),
        // The post-promotion analysis takes a few seconds, so its moment can be seen.
        template_yaml("post", OK_QUERY, "result[0] > 5").replace(
            "interval: 1s\n      count: 2",
            "interval: 2s\n      count: 3",
        ),
    )
}

async fn selector_scene(
    condition: &str,
) -> (
    kube::Client,
    String,
    prometheus::Prometheus,
    Running,
    tokio::task::JoinHandle<()>,
) {
    let cp = k8s::shared();
    install_crds(cp);
    let client = cp.client().await;
    let ns = cp.namespace("bgsel");
    let (rollout, pre, post) = selector_blue_green(condition);
    apply(
        cp,
        &ns,
        &deployment_yaml("podinfo", "ghcr.io/acme/app:1.0.0"),
    );
    apply(cp, &ns, &pre);
    apply(cp, &ns, &post);
    apply(cp, &ns, &rollout);
    let (_, kubelet) = kubelet(client.clone(), &ns);
    let prom = prometheus::Prometheus::start(&prometheus::Backfill::new().counter(
        "http_requests_total",
        r#"service="podinfo-canary",code="200""#,
        10.0,
    ));
    let cache = std::env::temp_dir().join(format!("rollgate-gaps-{ns}"));
    let running = Running::start(client.clone(), &ns, "dev", &prom.url, &cache);
    wait_for(&client, &ns, "podinfo", 60, "Initialized", initialized).await;
    (client, ns, prom, running, kubelet)
}

/// No HTTPRoute: the preview Service selects the new version before the switch, the
/// active Service moves to it at promotion at once (while the primary still runs the old
/// version, so the post-promotion analysis sees live traffic on the new one), and returns
/// to the primary once the primary runs the new version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_without_a_route_switches_service_selectors() {
    let (client, ns, _prom, _c, _k) = selector_scene("result[0] > 5").await;
    let (active, _w) = record_selector(client.clone(), &ns, "podinfo-active");
    assert_eq!(
        selector(&client, &ns, "podinfo-active").await,
        "podinfo-primary"
    );
    set_image(&client, &ns, "podinfo", "ghcr.io/acme/app:1.1.0").await;
    wait_for(
        &client,
        &ns,
        "podinfo",
        60,
        "paused before the switch",
        |st| st.phase == Phase::Paused,
    )
    .await;
    assert_eq!(
        selector(&client, &ns, "podinfo-preview").await,
        "podinfo",
        "the preview selects the new version's pods"
    );
    assert_eq!(
        selector(&client, &ns, "podinfo-active").await,
        "podinfo-primary",
        "no live traffic on the new version before the switch"
    );
    assert_eq!(
        image(&client, &ns, "podinfo").await.as_deref(),
        Some("ghcr.io/acme/app:1.1.0")
    );
    let api: Api<rollgate::k8s::Rollout> = Api::namespaced(client.clone(), &ns);
    api.patch(
        "podinfo",
        &PatchParams::default(),
        &Patch::Merge(
            serde_json::json!({"metadata": {"annotations": {"rollgate.dev/request": "promote"}}}),
        ),
    )
    .await
    .expect("promote");
    wait_for(
        &client,
        &ns,
        "podinfo",
        60,
        "post-promotion analysis",
        |st| {
            st.analysis_runs.iter().any(|r| r.name.contains("-post"))
                && st.phase == Phase::Progressing
        },
    )
    .await;
    assert_eq!(
        selector(&client, &ns, "podinfo-active").await,
        "podinfo",
        "switched to the new version at once"
    );
    assert_eq!(
        image(&client, &ns, "podinfo-primary").await.as_deref(),
        Some("ghcr.io/acme/app:1.0.0"),
        "the primary still runs the old version during post-promotion analysis"
    );
    wait_for(
        &client,
        &ns,
        "podinfo",
        90,
        "Succeeded",
        phase_is(Phase::Succeeded),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        active.lock().expect("lock").clone(),
        ["podinfo-primary", "podinfo", "podinfo-primary"],
        "old primary, new version, promoted primary"
    );
    assert_eq!(
        image(&client, &ns, "podinfo-primary").await.as_deref(),
        Some("ghcr.io/acme/app:1.1.0")
    );
}

/// A failed pre-promotion analysis leaves the active Service on the old version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_without_a_route_stays_on_the_old_version_when_pre_promotion_fails() {
    let (client, ns, _prom, _c, _k) = selector_scene("result[0] > 1000").await;
    let (active, _w) = record_selector(client.clone(), &ns, "podinfo-active");
    set_image(&client, &ns, "podinfo", "ghcr.io/acme/app:1.1.0").await;
    let st = wait_for(
        &client,
        &ns,
        "podinfo",
        90,
        "Failed",
        phase_is(Phase::Failed),
    )
    .await;
    assert!(st.aborted);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(active.lock().expect("lock").clone(), ["podinfo-primary"]);
    assert_eq!(
        image(&client, &ns, "podinfo-primary").await.as_deref(),
        Some("ghcr.io/acme/app:1.0.0")
    );
}

/// Everything logged by the whole test binary (all crates, all levels), installed once as
/// the global subscriber so the controller's tasks on every worker thread are captured.
fn logs() -> &'static Arc<std::sync::Mutex<Vec<u8>>> {
    static LOGS: std::sync::OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || LogSink(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        buf
    })
}

struct LogSink(Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const TOKEN: &str = "s3cr3t-7f1e9a-d4c2";

/// A template whose web metric sends `args.token` (from Secret `probe-creds`, key
/// `token`) in a header and the URL, and a canary Rollout with it as a step analysis.
fn secret_scene_yaml(url: &str) -> (String, String) {
    let template = format!(
        r#"apiVersion: rollgate.dev/v1alpha1
kind: AnalysisTemplate
metadata: {{name: probe}}
spec:
  args:
    - name: token
      valueFrom: {{secretKeyRef: {{name: probe-creds, key: token}}}}
  metrics:
    - name: probe
      count: 1
      successCondition: "result == true"
      provider:
        web:
          url: "{url}/check?token={{{{args.token}}}}"
          headers: [{{key: Authorization, value: "Bearer {{{{args.token}}}}"}}]
          jsonPath: "{{$.ok}}"
"#
    );
    let rollout = r#"apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata: {name: podinfo}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 80}
  strategy:
    canary:
      steps:
        - setWeight: 50
        - analysis: {templates: [{templateName: probe}]}
"#
    .to_owned();
    (template, rollout)
}

async fn secret_scene(
    server: &str,
) -> (kube::Client, String, Running, tokio::task::JoinHandle<()>) {
    let cp = k8s::shared();
    install_crds(cp);
    let client = cp.client().await;
    let ns = cp.namespace("sec");
    let (template, rollout) = secret_scene_yaml(server);
    apply(
        cp,
        &ns,
        &deployment_yaml("podinfo", "ghcr.io/acme/app:1.0.0"),
    );
    apply(cp, &ns, &template);
    apply(cp, &ns, &rollout);
    let (_, kubelet) = kubelet(client.clone(), &ns);
    let cache = std::env::temp_dir().join(format!("rollgate-gaps-{ns}"));
    let running = Running::start(client.clone(), &ns, "dev", "http://127.0.0.1:9", &cache);
    wait_for(&client, &ns, "podinfo", 60, "Initialized", initialized).await;
    (client, ns, running, kubelet)
}

fn secret_yaml(key: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: probe-creds}}\nstringData: {{{key}: {TOKEN}}}\n"
    )
}

/// Everything a user or an operator can see of the namespace: runs, Rollout, Events.
async fn visible(client: &kube::Client, ns: &str) -> String {
    let runs = Api::<AnalysisRun>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("runs");
    let rollout = Api::<rollgate::k8s::Rollout>::namespaced(client.clone(), ns)
        .get("podinfo")
        .await
        .expect("rollout");
    format!(
        "{}\n{}\n{:?}",
        serde_json::to_string(&runs).expect("json"),
        serde_json::to_string(&rollout).expect("json"),
        events(client, ns).await
    )
}

/// The controller reads the arg from the Secret at measurement time: the web check gets
/// the real value (header and URL), and the value appears in no run, status, Event or log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_key_ref_args_reach_the_provider_and_nothing_else() {
    let logs = logs();
    let server = prometheus::FixedServer::start(200, "application/json", r#"{"ok": true}"#);
    let (client, ns, _c, _k) = secret_scene(&server.url).await;
    apply(k8s::shared(), &ns, &secret_yaml("token"));
    set_image(&client, &ns, "podinfo", "ghcr.io/acme/app:1.1.0").await;
    wait_for(
        &client,
        &ns,
        "podinfo",
        60,
        "Succeeded",
        phase_is(Phase::Succeeded),
    )
    .await;
    let requests = server.requests.lock().expect("lock").clone();
    assert!(
        requests.iter().any(
            |r| r.contains(&format!("Bearer {TOKEN}")) && r.contains(&format!("token={TOKEN}"))
        ),
        "the provider got the Secret's value: {requests:?}"
    );
    let seen = visible(&client, &ns).await;
    assert!(seen.contains("probe"), "the check is visible: {seen}");
    assert!(!seen.contains(TOKEN), "secret value visible: {seen}");
    let log = String::from_utf8_lossy(&logs.lock().expect("lock")).into_owned();
    assert!(!log.is_empty(), "logs are captured");
    assert!(!log.contains(TOKEN), "secret value logged");
}

/// A missing Secret, then a missing key: the run ends Error with a message naming the
/// Rollout, the run, the arg and the Secret, and the rollout is aborted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_secret_or_key_is_a_clear_error() {
    let logs = logs();
    let server = prometheus::FixedServer::start(200, "application/json", r#"{"ok": true}"#);
    let (client, ns, _c, _k) = secret_scene(&server.url).await;
    set_image(&client, &ns, "podinfo", "ghcr.io/acme/app:1.1.0").await;
    let st = wait_for(
        &client,
        &ns,
        "podinfo",
        60,
        "Failed",
        phase_is(Phase::Failed),
    )
    .await;
    assert_eq!(st.canary_weight, 0);
    let runs = Api::<AnalysisRun>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .expect("runs")
        .items;
    assert_eq!(runs.len(), 1);
    let run = runs[0].metadata.name.clone().unwrap_or_default();
    let message = runs[0].status.clone().unwrap_or_default().message;
    assert_eq!(
        message,
        format!(
            "Unable to resolve metric arguments: Rollout {ns}/podinfo, AnalysisRun {run}: arg \"token\": Secret {ns}/probe-creds not found"
        )
    );
    // The Secret appears without the key; a retry runs the analysis again.
    apply(k8s::shared(), &ns, &secret_yaml("other"));
    let api: Api<rollgate::k8s::Rollout> = Api::namespaced(client.clone(), &ns);
    api.patch(
        "podinfo",
        &PatchParams::default(),
        &Patch::Merge(
            serde_json::json!({"metadata": {"annotations": {"rollgate.dev/request": "retry"}}}),
        ),
    )
    .await
    .expect("retry");
    wait_for(&client, &ns, "podinfo", 60, "Failed again", |st| {
        st.phase == Phase::Failed && st.retries == 1
    })
    .await;
    let retried = Api::<AnalysisRun>::namespaced(client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .expect("runs")
        .items
        .into_iter()
        .find(|r| {
            r.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.ends_with("-r1"))
        })
        .expect("the retried run");
    let message = retried.status.unwrap_or_default().message;
    assert!(
        message.contains("arg \"token\": key 'token' does not exist in Secret")
            && message.contains("/probe-creds"),
        "{message}"
    );
    assert!(
        server.requests.lock().expect("lock").is_empty(),
        "never measured"
    );
    assert!(!visible(&client, &ns).await.contains(TOKEN));
    let log = String::from_utf8_lossy(&logs.lock().expect("lock")).into_owned();
    assert!(!log.contains(TOKEN), "secret value logged");
}

/// `rollgate controller` (the binary) for namespace `ns` with leader election off, its
/// HTTP server on a free port; killed on drop.
struct Binary {
    child: std::process::Child,
    port: u16,
}

impl Binary {
    fn start(kubeconfig: &std::path::Path, ns: &str, cache: &std::path::Path) -> Binary {
        let port = prometheus::free_port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_rollgate"))
            .args(["controller", "-n", ns, "--git-cache"])
            .arg(cache)
            .env("KUBECONFIG", kubeconfig)
            .env("ROLLGATE_ENVIRONMENT", "dev")
            .env("ROLLGATE_HTTP_ADDRESS", format!("127.0.0.1:{port}"))
            .env("ROLLGATE_LEADER_ELECTION", "false")
            .env("ROLLGATE_LOG", "info")
            .env_remove("ROLLGATE_PROMETHEUS_ADDRESS")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start rollgate controller");
        Binary { child, port }
    }

    /// Status and body of `GET path`, once the server answers at all (up to 30 s).
    async fn get(&self, path: &str) -> (u16, String) {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        for _ in 0..300 {
            if let Ok(r) = reqwest::get(&url).await {
                let status = r.status().as_u16();
                return (status, r.text().await.unwrap_or_default());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("rollgate controller never answered {url}");
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// With an API server that never answers, the controller starts (healthy) but its caches
/// never sync, so it never reports ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_stays_unready_while_the_caches_cannot_sync() {
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"https://127.0.0.1:{}\", insecure-skip-tls-verify: true}}}}]\nusers: [{{name: u, user: {{token: nobody}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u}}}}]\ncurrent-context: x\n",
            prometheus::free_port()
        ),
    )
    .expect("write kubeconfig");
    let c = Binary::start(&kubeconfig, "default", dir.path());
    assert_eq!(c.get("/healthz").await.0, 200, "the process is up");
    for _ in 0..30 {
        let (status, body) = c.get("/readyz").await;
        assert_eq!(status, 503, "ready without synced caches: {body}");
        assert!(body.contains("caches not synced"), "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const APPROVER: &str = r#"apiVersion: v1
kind: ServiceAccount
metadata: {name: approver}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: promotion-approver}
rules:
  - apiGroups: [rollgate.dev]
    resources: [promotionpolicies]
    verbs: [approve]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: approver}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: promotion-approver}
subjects: [{kind: ServiceAccount, name: approver}]
"#;

/// A running `rollgate controller` becomes ready once its caches synced, and
/// `POST /api/v1/approvals` with a real ServiceAccount token lands a promotion that waits
/// for approval, through the PromotionPolicy the controller found in the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_work_in_a_running_controller() {
    let cp = k8s::shared();
    install_crds(cp);
    let ns = cp.namespace("appr");
    apply(cp, &ns, APPROVER);
    let repo = git::Fixture::new(&[
        ("app/values-dev.yaml", &git::values("1.2.3")),
        ("app/values-staging.yaml", &git::values("1.2.3")),
        ("app/values-prod.yaml", &git::values("1.2.1")),
    ]);
    let envs = [
        ("dev", "app/values-dev.yaml", "image.tag", false),
        ("staging", "app/values-staging.yaml", "image.tag", false),
        ("prod", "app/values-prod.yaml", "image.tag", true),
    ];
    let text = git::policy_text("podinfo", &repo.url(), &envs);
    // staging → prod waits for approval on a branch.
    let out = repo.rollgate(&[
        "promote",
        "--policy",
        &repo
            .policy("policy.yaml", "podinfo", &envs)
            .display()
            .to_string(),
        "--app",
        "podinfo",
        "--to",
        "prod",
        "--version",
        "1.2.3",
        "--output",
        "json",
    ]);
    assert_eq!(
        git::json(&out)["result"],
        "pendingApproval",
        "{}",
        git::show(&out)
    );
    apply(cp, &ns, &text);

    let cache = tempfile::tempdir().expect("temp dir");
    let c = Binary::start(cp.kubeconfig(), &ns, cache.path());
    let mut ready = false;
    for _ in 0..300 {
        if c.get("/readyz").await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the controller became ready once its caches synced");

    let (ok, token, err) = cp.kubectl(
        &["create", "token", "approver", "-n", &ns, "--duration=10m"],
        None,
    );
    assert!(ok, "token: {err}");
    let url = format!("http://127.0.0.1:{}/api/v1/approvals", c.port);
    let body = r#"{"app":"podinfo","env":"prod","version":"1.2.3"}"#;
    let http = reqwest::Client::new();
    let forbidden = http
        .post(&url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(forbidden.status().as_u16(), 401, "no token, no approval");
    let r = http
        .post(&url)
        .bearer_auth(token.trim())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    let answer: serde_json::Value = r.json().await.expect("json");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"], "landed", "{answer}");
    assert!(
        repo.remote_file("app/values-prod.yaml")
            .contains("\"1.2.3\""),
        "prod has the version on main"
    );
}

fn ttl_run(name: &str, url: &str, condition: &str, ttl: &str) -> String {
    format!(
        r#"apiVersion: rollgate.dev/v1alpha1
kind: AnalysisRun
metadata: {{name: {name}}}
spec:
  {ttl}
  metrics:
    - name: probe
      count: 1
      successCondition: "{condition}"
      provider:
        web: {{url: "{url}/ok", jsonPath: "{{$.ok}}"}}
"#
    )
}

/// Argo's `ttlStrategy`: a Successful run goes `secondsAfterSuccess` after completing, a
/// Failed one `secondsAfterFailure`; a run without a TTL, or whose outcome has no value
/// and no `secondsAfterCompletion`, stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_runs_are_deleted_after_their_ttl() {
    let cp = k8s::shared();
    install_crds(cp);
    let client = cp.client().await;
    let ns = cp.namespace("ttl");
    let server = prometheus::FixedServer::start(200, "application/json", r#"{"ok": true}"#);
    let cache = std::env::temp_dir().join(format!("rollgate-gaps-{ns}"));
    let _c = Running::start(client.clone(), &ns, "dev", "http://127.0.0.1:9", &cache);
    let pass = "result == true";
    let fail = "result == false";
    for (name, condition, ttl) in [
        (
            "pass-ttl",
            pass,
            "ttlStrategy: {secondsAfterSuccess: 2, secondsAfterCompletion: 600}",
        ),
        (
            "fail-ttl",
            fail,
            "ttlStrategy: {secondsAfterFailure: 3, secondsAfterSuccess: 600}",
        ),
        ("pass-no-ttl", pass, "terminate: false"),
        (
            "pass-failure-only",
            pass,
            "ttlStrategy: {secondsAfterFailure: 1}",
        ),
    ] {
        apply(cp, &ns, &ttl_run(name, &server.url, condition, ttl));
    }
    let api: Api<AnalysisRun> = Api::namespaced(client.clone(), &ns);
    let mut completed: std::collections::BTreeMap<String, chrono::DateTime<chrono::Utc>> =
        Default::default();
    let mut deleted: std::collections::BTreeMap<String, chrono::DateTime<chrono::Utc>> =
        Default::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while deleted.len() < 2 && tokio::time::Instant::now() < deadline {
        for name in ["pass-ttl", "fail-ttl"] {
            if deleted.contains_key(name) {
                continue;
            }
            match api.get_opt(name).await.expect("get run") {
                Some(run) => {
                    if let Some(at) = run.status.and_then(|s| s.completed_at) {
                        completed.insert(name.to_owned(), at);
                    }
                }
                None => {
                    deleted.insert(name.to_owned(), chrono::Utc::now());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (name, ttl) in [("pass-ttl", 2), ("fail-ttl", 3)] {
        let done = completed
            .get(name)
            .unwrap_or_else(|| panic!("{name} never completed"));
        let gone = deleted
            .get(name)
            .unwrap_or_else(|| panic!("{name} never deleted"));
        assert!(
            *gone - *done > chrono::TimeDelta::seconds(ttl),
            "{name} deleted {:?} after completing, before its TTL of {ttl}s",
            *gone - *done
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for name in ["pass-no-ttl", "pass-failure-only"] {
        let run = api
            .get_opt(name)
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("{name} was deleted"));
        let phase = run.status.map(|s| s.phase);
        assert_eq!(
            phase,
            Some(rollgate::core::analysis::value::AnalysisPhase::Successful),
            "{name} completed and stays"
        );
    }
}

fn template_rollout(template: &str) -> String {
    format!(
        r#"apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata: {{name: podinfo}}
spec:
  targetRef: {{apiVersion: apps/v1, kind: Deployment, name: podinfo}}
  service: {{port: 80}}
  strategy:
    canary:
      analysis:
        interval: 10s
        threshold: 1
        stepWeight: 100
        metrics:
          - name: ok-rate
            interval: 2m
            templateRef: {{name: {template}}}
            templateVariables: {{code: "200"}}
            thresholdRange: {{min: 5}}
"#
    )
}

const METRIC_TEMPLATE: &str = r#"apiVersion: rollgate.dev/v1alpha1
kind: MetricTemplate
metadata: {name: ok-rate}
spec:
  provider: {type: prometheus}
  query: |
    sum(rate(http_request_duration_seconds_count{
      kubernetes_namespace="{{ namespace }}",
      kubernetes_pod_name=~"{{ target }}-.*",
      status="{{ variables.code }}"
    }[{{ interval }}]))
"#;

/// `metrics[].templateRef` names a MetricTemplate read from the API server: its query is
/// rendered for the Rollout (namespace, target, interval, variables) and checked against
/// `thresholdRange`; a template that does not exist fails the check, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_ref_metrics_come_from_metric_templates() {
    let cp = k8s::shared();
    install_crds(cp);
    let (ok, _, err) = cp.kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/metrictemplates.rollgate.dev",
        ],
        None,
    );
    assert!(ok, "{err}");
    let client = cp.client().await;
    let logs = logs();
    for (template, passes) in [("ok-rate", true), ("missing", false)] {
        let ns = cp.namespace("mtpl");
        let prom = healthy(&ns);
        apply(
            cp,
            &ns,
            &deployment_yaml("podinfo", "ghcr.io/acme/app:1.0.0"),
        );
        apply(cp, &ns, METRIC_TEMPLATE);
        apply(cp, &ns, &template_rollout(template));
        let (_, _k) = kubelet(client.clone(), &ns);
        let cache = std::env::temp_dir().join(format!("rollgate-gaps-{ns}"));
        let _c = Running::start(client.clone(), &ns, "dev", &prom.url, &cache);
        wait_for(&client, &ns, "podinfo", 60, "Initialized", initialized).await;
        set_image(&client, &ns, "podinfo", "ghcr.io/acme/app:1.1.0").await;
        let want = if passes {
            Phase::Succeeded
        } else {
            Phase::Failed
        };
        let st = tokio::time::timeout(
            Duration::from_secs(40),
            wait_for(&client, &ns, "podinfo", 90, "finished", phase_is(want)),
        )
        .await;
        if st.is_err() {
            let log = String::from_utf8_lossy(&logs.lock().expect("lock")).into_owned();
            let warn: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
            panic!("not finished; warnings:\n{}", warn.join("\n"));
        }
        let runs = Api::<AnalysisRun>::namespaced(client.clone(), &ns)
            .list(&ListParams::default())
            .await
            .expect("runs")
            .items;
        let check = runs
            .iter()
            .find(|r| {
                r.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.contains("-check-"))
            })
            .expect("a check run");
        let status = check.status.clone().unwrap_or_default();
        if passes {
            let spec = serde_json::to_string(&check.spec).expect("json");
            for rendered in [
                &format!(r#"kubernetes_namespace=\"{ns}\""#),
                r#"kubernetes_pod_name=~\"podinfo-.*\""#,
                r#"status=\"200\""#,
                "[2m]",
            ] {
                assert!(spec.contains(rendered), "{rendered} not in {spec}");
            }
            assert_eq!(status.phase.as_str(), "Successful", "{status:?}");
        } else {
            assert_eq!(status.phase.as_str(), "Error", "{status:?}");
            assert!(
                status
                    .message
                    .contains(&format!("MetricTemplate {ns}/missing"))
                    && status.message.contains("not found"),
                "{}",
                status.message
            );
        }
    }
}
