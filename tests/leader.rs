//! Leader election against a real kube-apiserver: of two candidates exactly one leads;
//! killing the leader (its task aborted, no release) hands over after the lease duration;
//! a graceful shutdown releases the Lease and hands over at once.

#[path = "support/k8s.rs"]
mod k8s;

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use rollgate::leader::{LeaderElection, LeaseConfig, is_leader};
use rollgate::shutdown::Shutdown;
use rollgate::telemetry::Telemetry;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const LEASE: Duration = Duration::from_secs(4);
const RETRY: Duration = Duration::from_millis(250);

fn config(ns: &str, identity: &str) -> LeaseConfig {
    LeaseConfig {
        lease_duration: LEASE,
        renew_deadline: Duration::from_secs(3),
        retry_period: RETRY,
        api_timeout: Duration::from_secs(2),
        ..LeaseConfig::new(ns, "rollgate-controller", identity)
    }
}

struct Candidate {
    name: &'static str,
    rx: watch::Receiver<bool>,
    shutdown: Shutdown,
    task: JoinHandle<()>,
}

async fn candidate(client: &kube::Client, ns: &str, name: &'static str) -> Candidate {
    candidate_with(client, ns, name, None).await
}

async fn candidate_with(
    client: &kube::Client,
    ns: &str,
    name: &'static str,
    telemetry: Option<Telemetry>,
) -> Candidate {
    let mut election =
        LeaderElection::new(client.clone(), config(ns, name)).expect("valid lease config");
    if let Some(t) = telemetry {
        election = election.with_telemetry(t);
    }
    let rx = election.subscribe();
    let shutdown = Shutdown::new();
    let task = tokio::spawn(election.run(shutdown.wait()));
    Candidate {
        name,
        rx,
        shutdown,
        task,
    }
}

async fn holder(client: &kube::Client, ns: &str) -> Option<String> {
    let api: Api<Lease> = Api::namespaced(client.clone(), ns);
    api.get_opt("rollgate-controller")
        .await
        .expect("read the Lease")
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

/// Wait until exactly one of `cs` says leader; panics after `within`. Meanwhile checks that
/// never two say so at once.
async fn wait_for_single_leader(cs: &[&Candidate], within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let leaders: Vec<usize> = (0..cs.len()).filter(|i| is_leader(&cs[*i].rx)).collect();
        assert!(leaders.len() <= 1, "two leaders at once: {leaders:?}");
        if let [one] = leaders[..] {
            return one;
        }
        assert!(Instant::now() < deadline, "no leader within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_candidates_exactly_one_leads_and_the_lease_names_it() {
    let cp = k8s::shared();
    let client = cp.client().await;
    let ns = cp.namespace("lease-one");
    let telemetry = Telemetry::new();
    let a = candidate_with(&client, &ns, "alpha", Some(telemetry.clone())).await;
    let b = candidate(&client, &ns, "beta").await;
    let first = wait_for_single_leader(&[&a, &b], Duration::from_secs(20)).await;
    // Stays exactly one over several renewals, and it is the one the Lease names.
    let until = Instant::now() + LEASE + Duration::from_secs(1);
    while Instant::now() < until {
        let now = wait_for_single_leader(&[&a, &b], Duration::from_secs(1)).await;
        assert_eq!(now, first, "leadership moved without a failure");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let name = [a.name, b.name][first];
    assert_eq!(holder(&client, &ns).await.as_deref(), Some(name));
    let gauge = if first == 0 { "1" } else { "0" };
    assert!(
        telemetry
            .encode()
            .lines()
            .any(|l| l == format!("rollgate_leader {gauge}")),
        "rollgate_leader should be {gauge} for alpha"
    );
    a.task.abort();
    b.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_hands_over_after_the_lease_duration() {
    let cp = k8s::shared();
    let client = cp.client().await;
    let ns = cp.namespace("lease-kill");
    let a = candidate(&client, &ns, "alpha").await;
    // Let alpha win alone, then start beta so it watches a held Lease.
    wait_for_single_leader(&[&a], Duration::from_secs(20)).await;
    let b = candidate(&client, &ns, "beta").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(is_leader(&a.rx) && !is_leader(&b.rx));

    // A kill: the task is dropped mid-flight, nothing is released.
    a.task.abort();
    let killed = Instant::now();
    let _ = a.task.await;
    assert!(
        !is_leader(&a.rx),
        "an aborted election must read as not leader"
    );
    assert!(
        !*a.rx.borrow(),
        "an aborted election must say false, not leave a stale true"
    );
    let api: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let last = api
        .get("rollgate-controller")
        .await
        .expect("lease")
        .spec
        .expect("spec");
    assert_eq!(last.holder_identity.as_deref(), Some("alpha"));
    let last_renewal = last.renew_time.expect("alpha renewed").0;

    wait_for_single_leader(&[&b], LEASE + Duration::from_secs(10)).await;
    let took = killed.elapsed();
    // Same machine, same wall clock: beta took over no earlier than a whole lease
    // duration after alpha's last renewal (renewTime has microsecond precision).
    let since_renewal = last_renewal
        .duration_until(k8s_openapi::jiff::Timestamp::now())
        .as_secs_f64();
    assert!(
        since_renewal >= LEASE.as_secs_f64() - 0.01,
        "beta took over {since_renewal:.3} s after alpha's last renewal, before the {LEASE:?} lease expired"
    );
    assert!(
        took <= LEASE + Duration::from_secs(3),
        "beta took over only after {took:?} (lease {LEASE:?})"
    );
    assert_eq!(holder(&client, &ns).await.as_deref(), Some("beta"));
    let spec = api
        .get("rollgate-controller")
        .await
        .expect("lease")
        .spec
        .expect("spec");
    assert_eq!(spec.lease_transitions, Some(1));
    b.task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_releases_and_hands_over_at_once() {
    let cp = k8s::shared();
    let client = cp.client().await;
    let ns = cp.namespace("lease-release");
    let a = candidate(&client, &ns, "alpha").await;
    wait_for_single_leader(&[&a], Duration::from_secs(20)).await;
    let b = candidate(&client, &ns, "beta").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(is_leader(&a.rx) && !is_leader(&b.rx));

    let mut a_rx = a.rx.clone();
    a.shutdown.trigger();
    let stopped = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), a.task)
        .await
        .expect("run returns after shutdown")
        .expect("run did not panic");
    // Alpha said "not leader" before it released.
    assert!(!*a_rx.borrow_and_update());
    wait_for_single_leader(&[&b], LEASE).await;
    let took = stopped.elapsed();
    assert!(
        took < LEASE / 2,
        "after a release beta should take over at its next retry, took {took:?}"
    );
    assert_eq!(holder(&client, &ns).await.as_deref(), Some("beta"));

    // Beta's graceful stop clears the holder.
    b.shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(10), b.task)
        .await
        .expect("run returns after shutdown")
        .expect("run did not panic");
    assert_eq!(holder(&client, &ns).await, None);
}

/// A TCP proxy to the API server that the test can cut, as a network partition.
struct Partition {
    url: String,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
}

impl Partition {
    async fn to(server: &str) -> Self {
        let upstream = server
            .strip_prefix("https://")
            .expect("an https server URL")
            .to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let url = format!("https://{}", listener.local_addr().expect("address"));
        let tasks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let t = std::sync::Arc::clone(&tasks);
        let acceptor = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let conn = tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                t.lock().expect("lock").push(conn);
            }
        });
        tasks.lock().expect("lock").push(acceptor);
        Self { url, tasks }
    }

    /// Drop every connection and stop accepting.
    fn cut(&self) {
        for t in self.tasks.lock().expect("lock").drain(..) {
            t.abort();
        }
    }

    /// A client that reaches the API server only through this proxy.
    async fn client(&self, cp: &k8s::ControlPlane) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(cp.kubeconfig()).expect("kubeconfig");
        let mut config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .expect("client config");
        config.cluster_url = self.url.parse().expect("proxy URL");
        kube::Client::try_from(config).expect("client")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_steps_down_before_anyone_else_takes_over() {
    let cp = k8s::shared();
    let client = cp.client().await;
    let ns = cp.namespace("lease-partition");
    let partition = Partition::to(cp.server()).await;
    let cut_off = partition.client(cp).await;
    let a = candidate(&cut_off, &ns, "alpha").await;
    wait_for_single_leader(&[&a], Duration::from_secs(20)).await;
    let b = candidate(&client, &ns, "beta").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(is_leader(&a.rx) && !is_leader(&b.rx));

    // Alpha can no longer renew. It must stop acting within its renew deadline (3 s),
    // and beta must not start before alpha stopped.
    partition.cut();
    let cut = Instant::now();
    let mut alpha_stopped = None;
    let mut beta_started = None;
    while beta_started.is_none() && cut.elapsed() < LEASE + Duration::from_secs(10) {
        let (al, bl) = (is_leader(&a.rx), is_leader(&b.rx));
        assert!(
            !(al && bl),
            "alpha and beta both act {:?} after the cut",
            cut.elapsed()
        );
        if !al && alpha_stopped.is_none() {
            alpha_stopped = Some(cut.elapsed());
        }
        if bl {
            beta_started = Some(cut.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stopped = alpha_stopped.expect("alpha stepped down");
    let started = beta_started.expect("beta took over");
    assert!(
        stopped <= Duration::from_secs(3) + Duration::from_millis(500),
        "alpha acted {stopped:?} without renewing (renew deadline 3 s)"
    );
    assert!(stopped < started, "alpha {stopped:?}, beta {started:?}");
    assert_eq!(holder(&client, &ns).await.as_deref(), Some("beta"));
    a.task.abort();
    b.task.abort();
}
