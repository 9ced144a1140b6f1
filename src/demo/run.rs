//! Bring every part of the demo up (inside its network namespace), tell the story, sum
//! it up, and take everything down again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cluster::{Cluster, SERVER, gateway_api_crds};
use super::gitops::DeployRepo;
use super::kubelet::Kubelet;
use super::netns::{DEMO_IP, require};
use super::observe::{Echo, Journal};
use super::procs::Proc;
use super::report::Report;
use super::traffic::Counts;
use super::{
    CONTROLLER_PORT, DemoError, ENVIRONMENTS, GATEWAY_PORT, PROMETHEUS_PORT, TRAEFIK_METRICS_PORT,
    manifests,
};

/// What `rollgate demo` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// No live view.
    pub headless: bool,
    /// Echo events on stderr (stdout carries one JSON document).
    pub json: bool,
    /// Where the JSON event log goes.
    pub event_log: PathBuf,
    /// The Kubernetes test binaries (default: `scripts/k8s-test-env bin-dir`).
    pub k8s_bin_dir: Option<PathBuf>,
    /// The Traefik binary (default: `scripts/traefik-build path`).
    pub traefik: Option<PathBuf>,
    /// Keep the work directory (logs, repository, Prometheus data) here.
    pub work_dir: Option<PathBuf>,
    /// Requests per second per environment.
    pub rate: u32,
}

/// Everything the story and the report need.
pub struct Scene {
    /// The API.
    pub client: kube::Client,
    /// The journal.
    pub journal: Arc<Journal>,
    /// The deploy repository.
    pub repo: Arc<DeployRepo>,
    /// The rollgate binary (for `rollgate approve`).
    pub exe: PathBuf,
    /// The work directory.
    pub work: PathBuf,
    /// The PromotionPolicy file for the CLI.
    pub policy_file: PathBuf,
    /// Prometheus' URL.
    pub prometheus: String,
    /// Traffic counts per environment.
    pub counts: Counts,
    /// Requests per second per environment.
    pub rate: u32,
    /// Background tasks stopped at the end.
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Locate a default path printed by one of the repository's scripts.
async fn script_path(script: &str, arg: &str) -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(script);
    if !script.is_file() {
        return None;
    }
    let out = super::procs::run(
        "locating a binary",
        Path::new("bash"),
        &[&script.to_string_lossy(), arg],
        None,
    )
    .await
    .ok()?;
    Some(PathBuf::from(out.trim()))
}

/// Run the demo inside the namespace; the report, or why it could not run.
///
/// # Errors
/// A missing tool, or a part that did not come up; the story's own failures end up in
/// the report instead.
pub async fn run(opts: Options) -> Result<Report, DemoError> {
    // Everything that is missing is reported before anything starts.
    let traefik = match opts.traefik.clone() {
        Some(p) => p,
        None => script_path("traefik-build", "path")
            .await
            .unwrap_or_else(|| PathBuf::from("traefik")),
    };
    if !traefik.is_file() {
        return Err(DemoError::Missing {
            what: format!("Traefik ({})", traefik.display()),
            hint: "run ./scripts/setup (scripts/traefik-build builds it), or pass --traefik".into(),
        });
    }
    let prometheus = require("prometheus", "prometheus")?;
    require("git", "git")?;
    require("openssl", "openssl")?;
    let bin = super::cluster::bin_dir(opts.k8s_bin_dir.clone()).await?;
    let exe = std::env::current_exe().map_err(|source| DemoError::Spawn {
        what: "finding the rollgate binary".into(),
        source,
    })?;
    super::netns::setup_loopback().await?;

    let (work, temporary) = match &opts.work_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("rollgate-demo-{}", std::process::id())),
            true,
        ),
    };
    let logs = work.join("logs");
    std::fs::create_dir_all(&logs).map_err(|source| DemoError::Io {
        path: logs.clone(),
        source,
    })?;
    let log = std::fs::File::create(&opts.event_log).map_err(|source| DemoError::Io {
        path: opts.event_log.clone(),
        source,
    })?;
    let echo = if opts.json {
        Echo::Stderr
    } else if opts.headless {
        Echo::Stdout
    } else {
        Echo::Quiet
    };
    let journal = Journal::new(Some(log), echo);
    journal.event(
        "demo",
        "start",
        &format!("work directory {} (logs in logs/)", work.display()),
    );

    let mut servers: Vec<Proc> = Vec::new();
    let result = bring_up(
        &opts,
        &bin,
        &traefik,
        &prometheus,
        &exe,
        &work,
        &logs,
        &journal,
        &mut servers,
    )
    .await;
    let report = match result {
        Ok(mut scene) => {
            let story = super::story::tell(&scene).await;
            let report = super::report::build(&scene, story.err()).await;
            for t in scene.tasks.drain(..) {
                t.abort();
            }
            report
        }
        Err(e) => {
            for s in &mut servers {
                if !s.running() {
                    journal.event(
                        "demo",
                        "error",
                        &format!("{} exited; its log:\n{}", s.name, s.log_tail()),
                    );
                }
            }
            stop(servers).await;
            return Err(e);
        }
    };
    stop(servers).await;
    if temporary && report.completed {
        let _ = std::fs::remove_dir_all(&work);
    }
    Ok(report)
}

async fn stop(servers: Vec<Proc>) {
    for s in servers.into_iter().rev() {
        s.stop(Duration::from_secs(2)).await;
    }
}

#[allow(clippy::too_many_arguments)]
async fn bring_up(
    opts: &Options,
    bin: &Path,
    traefik: &Path,
    prometheus: &Path,
    exe: &Path,
    work: &Path,
    logs: &Path,
    journal: &Arc<Journal>,
    servers: &mut Vec<Proc>,
) -> Result<Scene, DemoError> {
    let started = Instant::now();
    let cluster = Cluster::start(bin, work, logs).await?;
    let client = cluster.client.clone();
    journal.event(
        "demo",
        "cluster",
        &format!(
            "kube-apiserver ready at {SERVER} in {:.1}s",
            started.elapsed().as_secs_f64()
        ),
    );
    let (kubeconfig, token, ca) = (&cluster.kubeconfig, &cluster.token, &cluster.ca);
    let crds = crate::k8s::crds_yaml().map_err(|e| DemoError::Story(e.to_string()))?;
    cluster.apply("rollgate CRDs", Some(&crds), None).await?;
    cluster
        .apply("Gateway API CRDs", None, Some(&gateway_api_crds(bin)))
        .await?;
    cluster
        .wait_established(&[
            "rollouts.rollgate.dev",
            "analysisruns.rollgate.dev",
            "analysistemplates.rollgate.dev",
            "promotionpolicies.rollgate.dev",
            "httproutes.gateway.networking.k8s.io",
            "gateways.gateway.networking.k8s.io",
            "gatewayclasses.gateway.networking.k8s.io",
        ])
        .await?;

    let repo = Arc::new(DeployRepo::create(work, "v1").await?);
    let policy_file = work.join("policy.yaml");
    super::cluster::write(&policy_file, &manifests::policy(None, &repo.url()))?;
    cluster
        .apply("the Gateway", Some(&manifests::gateway()), None)
        .await?;
    for env in ENVIRONMENTS {
        cluster
            .apply(
                env.name,
                Some(&manifests::environment(env, "v1", &repo.url())),
                None,
            )
            .await?;
    }
    journal.event(
        "demo",
        "cluster",
        "CRDs, Gateway, and per environment Deployment app (v1), HTTPRoute, AnalysisTemplate, Rollout, PromotionPolicy applied",
    );

    let mut tasks = Vec::new();
    let targets = work.join("app-targets.json");
    super::cluster::write(&targets, "[]")?;
    let kubelet = Kubelet::new(
        client.clone(),
        exe.to_owned(),
        logs.to_owned(),
        targets.clone(),
        journal.clone(),
    );
    tasks.push(tokio::spawn(kubelet.run()));

    // Prometheus: Traefik, every version process, the controllers; every second.
    let controllers: Vec<String> = (0..ENVIRONMENTS.len())
        .map(|i| format!("'{DEMO_IP}:{}'", CONTROLLER_PORT + i as u16))
        .collect();
    let config = work.join("prometheus.yml");
    super::cluster::write(
        &config,
        &format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n  \
             - job_name: traefik\n    static_configs: [{{targets: ['{DEMO_IP}:{TRAEFIK_METRICS_PORT}']}}]\n  \
             - job_name: application-x\n    file_sd_configs: [{{files: ['{}'], refresh_interval: 1s}}]\n  \
             - job_name: rollgate\n    static_configs: [{{targets: [{}]}}]\n",
            targets.display(),
            controllers.join(", ")
        ),
    )?;
    let prometheus_url = format!("http://{DEMO_IP}:{PROMETHEUS_PORT}");
    servers.push(Proc::spawn(
        "prometheus",
        logs,
        "prometheus",
        prometheus,
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", work.join("prometheus").display()),
            format!("--web.listen-address={DEMO_IP}:{PROMETHEUS_PORT}"),
            "--storage.tsdb.retention.time=1d".into(),
        ],
        &[],
    )?);
    wait_http(&format!("{prometheus_url}/-/ready"), "Prometheus", servers).await?;
    journal.event(
        "demo",
        "prometheus",
        &format!("Prometheus ready at {prometheus_url}, scraping every 1s"),
    );

    servers.push(Proc::spawn(
        "traefik",
        logs,
        "traefik",
        traefik,
        &[
            format!("--entryPoints.web.address={DEMO_IP}:{GATEWAY_PORT}"),
            format!("--entryPoints.metrics.address={DEMO_IP}:{TRAEFIK_METRICS_PORT}"),
            "--providers.kubernetesgateway=true".into(),
            format!("--providers.kubernetesgateway.endpoint={SERVER}"),
            format!("--providers.kubernetesgateway.token={token}"),
            format!(
                "--providers.kubernetesgateway.certauthfilepath={}",
                ca.display()
            ),
            "--providers.providersThrottleDuration=1s".into(),
            "--metrics.prometheus=true".into(),
            "--metrics.prometheus.entryPoint=metrics".into(),
            "--log.level=INFO".into(),
        ],
        &[],
    )?);
    wait_http(
        &format!("http://{DEMO_IP}:{TRAEFIK_METRICS_PORT}/metrics"),
        "Traefik",
        servers,
    )
    .await?;
    journal.event(
        "demo",
        "traefik",
        &format!("Traefik (Gateway API provider) serving on {DEMO_IP}:{GATEWAY_PORT}"),
    );

    for (i, env) in ENVIRONMENTS.iter().enumerate() {
        let port = CONTROLLER_PORT + i as u16;
        servers.push(Proc::spawn(
            &format!("rollgate controller ({})", env.name),
            logs,
            &format!("controller-{}", env.name),
            exe,
            &[
                "controller".into(),
                "--env".into(),
                env.name.into(),
                "--namespace".into(),
                env.name.into(),
                "--lease-namespace".into(),
                env.name.into(),
                "--prometheus".into(),
                prometheus_url.clone(),
                "--coalesce-window".into(),
                "1".into(),
                "--git-cache".into(),
                work.join(format!("git-cache-{}", env.name))
                    .display()
                    .to_string(),
                "--metrics-addr".into(),
                format!("{DEMO_IP}:{port}"),
            ],
            &[
                ("KUBECONFIG", kubeconfig.display().to_string()),
                ("ROLLGATE_LOG", "info".into()),
            ],
        )?);
    }
    journal.event(
        "demo",
        "controller",
        "one rollgate controller per environment started (dev, staging, prod)",
    );
    // The API server's processes are stopped last.
    servers.splice(0..0, cluster.procs);

    tasks.push(tokio::spawn(super::gitops::sync_loop(
        repo.clone(),
        client.clone(),
        journal.clone(),
    )));
    tasks.push(tokio::spawn(super::observe::watch_routes(
        client.clone(),
        journal.clone(),
    )));
    tasks.push(tokio::spawn(super::observe::watch_rollouts(
        client.clone(),
        journal.clone(),
    )));
    tasks.push(tokio::spawn(super::observe::watch_runs(
        client.clone(),
        journal.clone(),
    )));
    let counts = Counts::default();
    if !opts.headless {
        tasks.push(tokio::spawn(super::view::live(
            journal.clone(),
            repo.clone(),
            counts.clone(),
            client.clone(),
        )));
    }
    Ok(Scene {
        client,
        journal: journal.clone(),
        repo,
        exe: exe.to_owned(),
        work: work.to_owned(),
        policy_file,
        prometheus: prometheus_url,
        counts,
        rate: opts.rate,
        tasks,
    })
}

/// Wait until `url` answers 200 (60 s), naming the server and its log otherwise.
async fn wait_http(url: &str, what: &str, servers: &mut [Proc]) -> Result<(), DemoError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| DemoError::Story(e.to_string()))?;
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if let Some(s) = servers.last_mut()
            && !s.running()
        {
            return Err(DemoError::Command {
                what: format!("{what} exited"),
                detail: s.log_tail(),
            });
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(DemoError::Timeout {
                what: format!("{what} at {url}"),
                state: servers.last().map(Proc::log_tail).unwrap_or_default(),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
