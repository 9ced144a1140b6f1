//! The controller's HTTP server against a real kube-apiserver (TokenReview,
//! SubjectAccessReview, Rollouts) and a real git remote (approvals): routes through
//! `Router::oneshot`, and one test over a real socket with a graceful shutdown.

#[path = "support/git.rs"]
mod git;
#[path = "support/k8s.rs"]
mod k8s;

use std::io::Write as _;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use rollgate::core::promotion::plan::Source;
use rollgate::core::promotion::policy::PolicyFile;
use rollgate::gitops::{Promoter, PromoterConfig, PromotionResult};
use rollgate::server::{
    ApprovalTarget, AuthError, BearerToken, KubeAuth, ServerConfig, ServerState, router, serve,
};
use rollgate::shutdown::Shutdown;
use rollgate::telemetry::{OPENMETRICS_CONTENT_TYPE, Telemetry};
use tower::ServiceExt as _;

const APP: &str = "application-x";

const ROLLOUT: &str = r#"
apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata: {name: podinfo}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  trafficRouting:
    gatewayAPI:
      httpRoute: {name: podinfo}
  strategy:
    canary:
      steps:
        - setWeight: 10
        - pause: {duration: 5m}
        - setWeight: 30
        - pause: {}
"#;

/// Per namespace: ServiceAccounts `reader` (may get rollouts), `approver` (may approve
/// promotionpolicies), `nobody` (no rights), and the Rollout `podinfo` with a status.
const RBAC: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: approver}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: nobody}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: rollout-reader}
rules:
  - apiGroups: [rollgate.dev]
    resources: [rollouts]
    verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: rollout-reader}
subjects: [{kind: ServiceAccount, name: reader}]
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

/// The control plane with rollgate's CRDs installed.
fn control_plane() -> &'static k8s::ControlPlane {
    static DONE: OnceLock<()> = OnceLock::new();
    let cp = k8s::shared();
    DONE.get_or_init(|| {
        let crds = std::process::Command::new(env!("CARGO_BIN_EXE_rollgate"))
            .arg("crds")
            .output()
            .expect("run rollgate crds");
        assert!(crds.status.success(), "rollgate crds failed");
        let (ok, _, err) = cp.kubectl(
            &["apply", "--server-side", "-f", "-"],
            Some(&String::from_utf8_lossy(&crds.stdout)),
        );
        assert!(ok, "install CRDs: {err}");
        let (ok, _, err) = cp.kubectl(
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=60s",
                "crd/rollouts.rollgate.dev",
                "crd/promotionpolicies.rollgate.dev",
            ],
            None,
        );
        assert!(ok, "CRDs not established: {err}");
    });
    cp
}

struct Cluster {
    cp: &'static k8s::ControlPlane,
    ns: String,
    client: kube::Client,
}

impl Cluster {
    async fn new(prefix: &str) -> Self {
        let cp = control_plane();
        let ns = cp.namespace(prefix);
        let (ok, _, err) = cp.kubectl(&["apply", "-n", &ns, "-f", "-"], Some(RBAC));
        assert!(ok, "RBAC: {err}");
        let (ok, _, err) = cp.kubectl(&["apply", "-n", &ns, "-f", "-"], Some(ROLLOUT));
        assert!(ok, "Rollout: {err}");
        let (ok, _, err) = cp.kubectl(
            &[
                "patch",
                "rollout",
                "podinfo",
                "-n",
                &ns,
                "--subresource=status",
                "--type=merge",
                "-p",
                r#"{"status":{"phase":"Paused","currentStepIndex":3,"canaryWeight":30,"pauseReason":"CanaryPauseStep"}}"#,
            ],
            None,
        );
        assert!(ok, "status: {err}");
        let client = cp.client().await;
        Self { cp, ns, client }
    }

    /// A real ServiceAccount token from the TokenRequest API.
    fn token(&self, sa: &str, audience: Option<&str>) -> String {
        let mut args = vec!["create", "token", sa, "-n", &self.ns, "--duration=10m"];
        let aud;
        if let Some(a) = audience {
            aud = format!("--audience={a}");
            args.push(&aud);
        }
        let (ok, out, err) = self.cp.kubectl(&args, None);
        assert!(ok, "create token {sa}: {err}");
        let t = out.trim().to_owned();
        assert!(t.split('.').count() == 3, "a JWT");
        t
    }

    fn state(&self) -> ServerState {
        let s = ServerState::new(self.client.clone(), Telemetry::new());
        s.readiness.caches_synced();
        s
    }
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

async fn call(state: &ServerState, req: Request<Body>) -> Reply {
    let resp = router(state.clone())
        .oneshot(req)
        .await
        .expect("the router answers");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .expect("read the body")
        .to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::empty()).expect("request")
}

fn post_json(path: &str, token: Option<&str>, body: &str) -> Request<Body> {
    let mut b = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::from(body.to_owned())).expect("request")
}

fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Collects everything logged (all crates, all levels) while it is the default subscriber.
#[derive(Clone, Default)]
struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn health_and_readiness_follow_the_controller() {
    let c = Cluster::new("srv-health").await;
    let state = ServerState::new(c.client.clone(), Telemetry::new());
    let r = call(&state, get("/healthz", None)).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(&state, get("/readyz", None)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.body.contains("caches not synced"), "{}", r.body);
    state.readiness.caches_synced();
    let r = call(&state, get("/readyz", None)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    state.readiness.shutting_down();
    let r = call(&state, get("/readyz", None)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.body.contains("shutting down"), "{}", r.body);
    // Liveness does not depend on readiness.
    assert_eq!(
        call(&state, get("/healthz", None)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn metrics_are_openmetrics_and_count_requests_by_route_template() {
    let c = Cluster::new("srv-metrics").await;
    let state = c.state();
    for _ in 0..3 {
        call(&state, get("/healthz", None)).await;
    }
    let r = call(&state, get("/no/such/path", None)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.json()["error"].is_string());
    let r = call(
        &state,
        get(&format!("/api/v1/rollouts/{}/podinfo", c.ns), None),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let r = call(&state, get("/metrics", None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some(OPENMETRICS_CONTENT_TYPE)
    );
    assert!(r.body.ends_with("# EOF\n"));
    let m = &r.body;
    assert_eq!(
        sample(
            m,
            r#"rollgate_http_requests_total{route="/healthz",code="200"}"#
        ),
        Some(3.0),
        "{m}"
    );
    assert_eq!(
        sample(
            m,
            r#"rollgate_http_requests_total{route="unmatched",code="404"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            m,
            r#"rollgate_http_requests_total{route="/api/v1/rollouts/{namespace}/{name}",code="401"}"#
        ),
        Some(1.0)
    );
    assert!(
        !m.contains("podinfo") && !m.contains(&c.ns),
        "raw paths leaked"
    );
}

#[tokio::test]
async fn rollout_status_needs_an_accepted_token_and_the_get_permission() {
    let c = Cluster::new("srv-status").await;
    let state = c.state();
    let path = format!("/api/v1/rollouts/{}/podinfo", c.ns);
    let reader = c.token("reader", None);
    let nobody = c.token("nobody", None);
    let logs = LogCapture::default();
    let _guard = logs.install();

    // No token, a malformed header, a bogus token: 401 with a Bearer challenge.
    let r = call(&state, get(&path, None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.as_bytes()),
        Some(&b"Bearer"[..])
    );
    let basic = Request::get(&path)
        .header(header::AUTHORIZATION, "Basic cmVhZGVyOnJlYWRlcg==")
        .body(Body::empty())
        .expect("request");
    assert_eq!(call(&state, basic).await.status, StatusCode::UNAUTHORIZED);
    // Change a character well inside the signature. The last base64url character of an
    // RS256 signature carries padding bits a decoder may ignore, so changing it can leave
    // the signature, and the token, valid.
    let at = reader.len() - 10;
    let swap = if &reader[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{swap}{}", &reader[..at], &reader[at + 1..]);
    let r = call(&state, get(&path, Some(&forged))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert!(!r.body.contains(&forged[..20]), "the token is echoed");
    let r = call(&state, get(&path, Some("not-a-token"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // A valid token without the permission: 403 naming the caller, not the token.
    let r = call(&state, get(&path, Some(&nobody))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let msg = r.json()["error"].as_str().expect("error").to_owned();
    assert!(
        msg.contains(&format!("system:serviceaccount:{}:nobody", c.ns)),
        "{msg}"
    );

    // The reader gets the status.
    let r = call(&state, get(&path, Some(&reader))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    assert_eq!(v["namespace"], c.ns.as_str());
    assert_eq!(v["name"], "podinfo");
    assert_eq!(v["status"]["phase"], "Paused", "{v}");
    assert_eq!(v["status"]["canaryWeight"], 30);
    assert_eq!(v["status"]["currentStepIndex"], 3);
    assert_eq!(v["generation"], 1);

    // Missing Rollout: 404 (the role covers every rollout of the namespace).
    let r = call(
        &state,
        get(&format!("/api/v1/rollouts/{}/missing", c.ns), Some(&reader)),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    // Another namespace: the reader has no right there.
    let r = call(
        &state,
        get("/api/v1/rollouts/default/podinfo", Some(&reader)),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);

    let logged = logs.text();
    assert!(!logged.is_empty(), "the capture saw nothing");
    for t in [&reader, &nobody, &forged] {
        assert!(!logged.contains(t.as_str()), "a token was logged");
        // Nor a recognisable part of it (its signature).
        let sig = t.rsplit('.').next().expect("signature");
        assert!(!logged.contains(sig), "a token signature was logged");
    }
}

#[tokio::test]
async fn token_review_accepts_a_service_account_token_and_refuses_a_bogus_one() {
    let c = Cluster::new("srv-review").await;
    let auth = KubeAuth::new(c.client.clone());
    let token = c.token("reader", None);
    let caller = auth
        .authenticate(&BearerToken::from_header(&format!("Bearer {token}")).expect("bearer"))
        .await
        .expect("a real ServiceAccount token is accepted");
    assert_eq!(
        caller.username,
        format!("system:serviceaccount:{}:reader", c.ns)
    );
    assert!(
        caller.groups.iter().any(|g| g == "system:serviceaccounts"),
        "{:?}",
        caller.groups
    );
    assert!(caller.uid.is_some());

    // A token of the right shape signed by nobody the API server trusts.
    let mut parts: Vec<&str> = token.split('.').collect();
    parts[2] = "c2lnbmVkLWJ5LW5vYm9keQ";
    let bogus = parts.join(".");
    let err = auth
        .authenticate(&BearerToken::from_header(&format!("Bearer {bogus}")).expect("bearer"))
        .await
        .expect_err("a bogus token is refused");
    assert!(matches!(err, AuthError::Unauthenticated), "{err:?}");
    assert!(!err.to_string().contains("c2lnbmVk"));

    // Audiences: a token for another audience is refused, one for ours accepted.
    let scoped = auth.clone().with_audiences(vec!["rollgate".to_owned()]);
    let err = scoped
        .authenticate(&BearerToken::from_header(&format!("Bearer {token}")).expect("bearer"))
        .await
        .expect_err("the API server's audience is not rollgate's");
    assert!(matches!(err, AuthError::Unauthenticated), "{err:?}");
    let for_us = c.token("reader", Some("rollgate"));
    scoped
        .authenticate(&BearerToken::from_header(&format!("Bearer {for_us}")).expect("bearer"))
        .await
        .expect("a token for audience rollgate is accepted");
}

fn promotion_repo() -> (
    git::Fixture,
    rollgate::core::promotion::policy::PromotionPolicy,
) {
    let f = git::Fixture::new(&[
        ("application-x/values-staging.yaml", &git::values("1.2.3")),
        ("application-x/values-prod.yaml", &git::values("1.2.1")),
    ]);
    let text = git::policy_text(
        APP,
        &f.url(),
        &[
            (
                "staging",
                "application-x/values-staging.yaml",
                "image.tag",
                false,
            ),
            ("prod", "application-x/values-prod.yaml", "image.tag", true),
        ],
    );
    let policy = PolicyFile::parse("policy.yaml", &text)
        .expect("policy parses")
        .app(APP)
        .expect("the app's policy")
        .clone();
    (f, policy)
}

#[tokio::test]
async fn approvals_land_a_pending_promotion_for_an_allowed_caller_only() {
    let c = Cluster::new("srv-approve").await;
    let (repo, policy) = promotion_repo();
    let mut config = PromoterConfig::new(&repo.url(), "main");
    config.cache_dir = repo.cache();
    let promoter = Arc::new(Promoter::open(config).await.expect("open the cache"));
    let prod = policy.environment("prod").expect("prod").clone();
    let pending = promoter
        .promote(
            &policy,
            &prod,
            &"1.2.3".parse().expect("version"),
            Source::Environment("staging".to_owned()),
            Some("staging soaked"),
        )
        .await
        .expect("promote into prod");
    assert_eq!(pending.result, PromotionResult::PendingApproval);
    let branch = "rollgate/promote/application-x/prod/1.2.3";
    assert!(repo.branches().contains(&branch.to_owned()));

    let state = c.state();
    state.approvals.insert(ApprovalTarget {
        policy: policy.clone(),
        promoter: Arc::clone(&promoter),
        namespace: c.ns.clone(),
        object: APP.to_owned(),
    });
    let approver = c.token("approver", None);
    let reader = c.token("reader", None);
    let body = r#"{"app":"application-x","env":"prod","version":"1.2.3"}"#;
    let path = "/api/v1/approvals";

    let r = call(&state, post_json(path, None, body)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(&state, post_json(path, Some("bogus"), body)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = call(&state, post_json(path, Some(&reader), body)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert!(
        r.body.contains("approve") && r.body.contains("promotionpolicies"),
        "{}",
        r.body
    );
    assert!(
        repo.remote_file("application-x/values-prod.yaml")
            .contains("1.2.1"),
        "a forbidden approval changed prod"
    );

    // Bad requests from an allowed caller.
    for (bad, status) in [
        ("{not json", StatusCode::BAD_REQUEST),
        (
            r#"{"app":"application-x","env":"prod"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"app":"application-x","env":"prod","version":"1.2.3","extra":1}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"app":"application-x","env":"prod","version":"not a version!"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"app":"other-app","env":"prod","version":"1.2.3"}"#,
            StatusCode::NOT_FOUND,
        ),
        (
            r#"{"app":"application-x","env":"qa","version":"1.2.3"}"#,
            StatusCode::NOT_FOUND,
        ),
        (
            r#"{"app":"application-x","env":"prod","version":"9.9.9"}"#,
            StatusCode::CONFLICT,
        ),
    ] {
        let r = call(&state, post_json(path, Some(&approver), bad)).await;
        assert_eq!(r.status, status, "{bad}: {}", r.body);
        assert!(r.json()["error"].is_string(), "{bad}: {}", r.body);
    }

    // The approval lands the pending commit on main and deletes the branch.
    let r = call(&state, post_json(path, Some(&approver), body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v = r.json();
    assert_eq!(v["result"], "landed", "{v}");
    assert_eq!(v["id"], "application-x/prod/1.2.3");
    assert_eq!(v["branchDeleted"], true);
    assert!(
        repo.remote_file("application-x/values-prod.yaml")
            .contains("\"1.2.3\""),
        "prod has the version on main"
    );
    assert!(!repo.branches().contains(&branch.to_owned()));
    let commit = v["commit"].as_str().expect("commit").to_owned();
    assert!(
        repo.message(&commit)
            .contains("Rollgate-Promotion: application-x/prod/1.2.3"),
        "{}",
        repo.message(&commit)
    );

    // Again: already landed, nothing new on main.
    let count = repo.commit_count();
    let r = call(&state, post_json(path, Some(&approver), body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["result"], "alreadyLanded");
    assert_eq!(repo.commit_count(), count);

    let m = state.telemetry.encode();
    assert_eq!(
        sample(
            &m,
            r#"rollgate_promotions_total{action="approve",result="committed"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"rollgate_promotions_total{action="approve",result="unchanged"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"rollgate_promotion_failures_total{action="approve",reason="input"}"#
        ),
        Some(1.0),
        "the 9.9.9 approval counts as an input failure"
    );

    // The policy removed: 404.
    state.approvals.remove(APP);
    let r = call(&state, post_json(path, Some(&approver), body)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_on_a_real_socket_and_drains_on_shutdown() {
    let c = Cluster::new("srv-socket").await;
    let mut state = c.state();
    state.config = ServerConfig {
        drain_delay: Duration::from_millis(1500),
        ..ServerConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("address");
    let shutdown = Shutdown::new();
    let server = tokio::spawn(serve(listener, state.clone(), shutdown.wait()));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    let url = |p: &str| format!("http://{addr}{p}");

    let r = http.get(url("/healthz")).send().await.expect("healthz");
    assert_eq!(r.status().as_u16(), 200);
    let r = http.get(url("/readyz")).send().await.expect("readyz");
    assert_eq!(r.status().as_u16(), 200);
    let reader = c.token("reader", None);
    let r = http
        .get(url(&format!("/api/v1/rollouts/{}/podinfo", c.ns)))
        .bearer_auth(&reader)
        .send()
        .await
        .expect("status");
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["status"]["canaryWeight"], 30);
    let r = http.get(url("/metrics")).send().await.expect("metrics");
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some(OPENMETRICS_CONTENT_TYPE)
    );

    // Shutdown: readiness drops at once while the server still answers (drain), then
    // the server returns and the port is closed.
    shutdown.trigger();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = http
        .get(url("/readyz"))
        .send()
        .await
        .expect("readyz while draining");
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.text().await.expect("body").contains("shutting down"));
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("serve returns after the drain")
        .expect("task")
        .expect("serve ok");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "the port still accepts after serve returned"
    );
    let _ = std::io::stderr().flush();
}

#[tokio::test]
async fn an_unreachable_api_server_is_503_not_401() {
    let c = Cluster::new("srv-down").await;
    let token = c.token("reader", None);
    // A client whose API server does not answer (nothing listens on the port).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let kc = kube::config::Kubeconfig::read_from(c.cp.kubeconfig()).expect("kubeconfig");
    let mut config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("client config");
    config.cluster_url = format!("https://127.0.0.1:{port}").parse().expect("url");
    let dead = kube::Client::try_from(config).expect("client");
    let mut state = ServerState::new(dead.clone(), Telemetry::new());
    state.auth = KubeAuth::new(dead).with_timeout(Duration::from_secs(2));
    state.readiness.caches_synced();
    let r = call(
        &state,
        get(&format!("/api/v1/rollouts/{}/podinfo", c.ns), Some(&token)),
    )
    .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(
        r.body.contains("authentication is unavailable"),
        "{}",
        r.body
    );
    assert!(!r.body.contains(&token[..16]));
    // Health does not depend on the API server.
    assert_eq!(
        call(&state, get("/healthz", None)).await.status,
        StatusCode::OK
    );
}
