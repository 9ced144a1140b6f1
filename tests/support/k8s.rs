//! A real Kubernetes control plane (etcd + kube-apiserver) for integration tests.
//!
//! The binaries are built once by `scripts/k8s-test-env build` into a versioned cache dir
//! outside the repository. [`shared`] starts one control plane per test binary, on free
//! loopback ports in a temporary directory, so test binaries run in parallel without
//! sharing state; tests use a unique namespace each ([`unique_name`]).
//!
//! Teardown does not depend on destructors running: both servers run under a small
//! supervisor shell that reads its stdin, which is a pipe held by the test process. When
//! the test process ends in any way (success, panic, abort, SIGKILL) the pipe closes, the
//! supervisor kills the servers' process group and removes the temporary directory.
//! [`ControlPlane`] also stops everything in `Drop` when it is owned by a test.
//!
//! A missing binary makes the test FAIL with the command that builds it: never skip.
#![allow(dead_code)]

use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long the API server may take to become ready (2 shared cores: be generous).
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The user name of the static admin token (member of `system:masters`).
pub const ADMIN_USER: &str = "rollgate-test-admin";

/// A running etcd + kube-apiserver pair.
pub struct ControlPlane {
    dir: PathBuf,
    kubeconfig: PathBuf,
    server: String,
    supervisor: Child,
    /// Closing this pipe tells the supervisor to stop the servers.
    stdin: Option<ChildStdin>,
}

/// The directory holding `kube-apiserver`, `etcd`, `kubectl` and `helm`.
///
/// # Panics
/// When the binaries are missing, with the command that builds them.
pub fn bin_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = match std::env::var_os("ROLLGATE_K8S_BIN_DIR") {
            Some(d) => PathBuf::from(d),
            None => {
                let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/k8s-test-env");
                let out = Command::new("bash")
                    .arg(&script)
                    .arg("bin-dir")
                    .output()
                    .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
                assert!(out.status.success(), "{} bin-dir failed", script.display());
                PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
            }
        };
        for b in ["etcd", "kube-apiserver", "kubectl", "helm"] {
            assert!(
                dir.join(b).is_file(),
                "\n\n*** the Kubernetes test control plane is not built: {} is missing.\n\
                 *** Build it (once, cached outside the repository) with:\n\
                 ***     scripts/k8s-test-env build\n\
                 *** (scripts/setup runs it too.)\n",
                dir.join(b).display()
            );
        }
        dir
    })
    .clone()
}

/// Path of one of the test binaries (`kubectl`, `helm`, ...).
pub fn bin(name: &str) -> PathBuf {
    bin_dir().join(name)
}

/// The Gateway API standard-channel CRDs (YAML) that `scripts/k8s-test-env build` extracted.
pub fn gateway_api_crds() -> PathBuf {
    let p = bin_dir()
        .parent()
        .expect("the bin dir has a parent")
        .join("gateway-api-standard.yaml");
    assert!(
        p.is_file(),
        "{} is missing: run scripts/k8s-test-env build",
        p.display()
    );
    p
}

/// The control plane shared by all tests of this test binary, started on first use.
pub fn shared() -> &'static ControlPlane {
    static CP: OnceLock<ControlPlane> = OnceLock::new();
    CP.get_or_init(ControlPlane::start)
}

/// A name unique within this test process (for namespaces and objects).
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free loopback port")
        .port()
}

fn run_ok(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (CA:TRUE) and a leaf serving certificate (CA:FALSE) for 127.0.0.1: rustls refuses a
/// self-signed CA certificate used as the server's own.
fn make_certs(dir: &Path) {
    let ossl = |args: &[&str]| {
        run_ok(Command::new("openssl").args(args).current_dir(dir));
    };
    ossl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=rollgate-test-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    ossl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "apiserver.key",
        "-out",
        "apiserver.csr",
        "-subj",
        "/CN=kube-apiserver",
    ]);
    std::fs::write(
        dir.join("apiserver.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("write apiserver.ext");
    ossl(&[
        "x509",
        "-req",
        "-in",
        "apiserver.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "apiserver.crt",
        "-days",
        "2",
        "-extfile",
        "apiserver.ext",
    ]);
    ossl(&["genrsa", "-out", "sa.key", "2048"]);
}

/// The supervisor: starts both servers in its own process group, waits for its stdin to
/// close (the test process ended or dropped the handle), then stops them and removes the
/// directory. `$1` is the directory; the server command lines come from files in it.
const SUPERVISOR: &str = r#"
dir="$1"
pids=""
for s in etcd apiserver kcm; do
  [ -x "$dir/$s.sh" ] || continue
  "$dir/$s.sh" >"$dir/$s.log" 2>&1 </dev/null &
  pids="$pids $!"
  # etcd first: the API server retries, but starts faster when etcd already listens.
  [ "$s" = etcd ] && sleep 0.2
done
echo "$pids" >"$dir/pids.tmp" && mv "$dir/pids.tmp" "$dir/pids"
while read -r _; do :; done
kill -TERM $pids 2>/dev/null
for _ in 1 2 3 4 5 6 7 8; do
  alive=""
  for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ -z "$alive" ] && break
  sleep 0.25
done
kill -KILL $pids 2>/dev/null
wait
rm -rf "$dir"
"#;

impl ControlPlane {
    /// Start etcd and kube-apiserver and wait until the API server is ready.
    ///
    /// # Panics
    /// When a binary is missing or the servers do not become ready (with their logs).
    pub fn start() -> ControlPlane {
        Self::start_with(false)
    }

    /// As [`ControlPlane::start`], plus kube-controller-manager running the deployment,
    /// replicaset, job, garbage-collector and namespace controllers, so Deployments get
    /// ReplicaSets and status as in a cluster, and Jobs get Pods, deadlines and owner
    /// garbage collection (Pods stay Pending: there is no kubelet).
    pub fn start_with_controller_manager() -> ControlPlane {
        Self::start_with(true)
    }

    fn start_with(controller_manager: bool) -> ControlPlane {
        let mut last = String::new();
        // A free port can be taken by another process between the probe and the bind:
        // retry with new ports.
        for _ in 0..3 {
            match Self::try_start(controller_manager) {
                Ok(cp) => return cp,
                Err(e) => last = e,
            }
        }
        panic!("the test control plane did not start:\n{last}");
    }

    fn try_start(controller_manager: bool) -> Result<ControlPlane, String> {
        let bins = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("rollgate-k8s-")
            .tempdir()
            .expect("create a temp dir")
            .keep();
        make_certs(&dir);
        let token = format!("rollgate-admin-{}-{}", std::process::id(), free_port());
        std::fs::write(
            dir.join("tokens.csv"),
            format!("{token},{ADMIN_USER},{ADMIN_USER},\"system:masters\"\n"),
        )
        .expect("write tokens.csv");
        let (ep, pp, ap) = (free_port(), free_port(), free_port());
        let d = dir.display();
        let etcd = format!(
            "#!/bin/sh\nexec '{b}/etcd' --data-dir='{d}/etcd' --name=test \
             --listen-client-urls=http://127.0.0.1:{ep} --advertise-client-urls=http://127.0.0.1:{ep} \
             --listen-peer-urls=http://127.0.0.1:{pp} --initial-advertise-peer-urls=http://127.0.0.1:{pp} \
             --initial-cluster=test=http://127.0.0.1:{pp} --unsafe-no-fsync=true --log-level=warn\n",
            b = bins.display()
        );
        // A /16 of Service IPs: the scale bench creates three Services per Rollout, well past
        // the 254 addresses of a /24.
        let apiserver = format!(
            "#!/bin/sh\nexec '{b}/kube-apiserver' --etcd-servers=http://127.0.0.1:{ep} \
             --bind-address=127.0.0.1 --secure-port={ap} --advertise-address=127.0.0.1 \
             --cert-dir='{d}/cert' --tls-cert-file='{d}/apiserver.crt' \
             --tls-private-key-file='{d}/apiserver.key' \
             --service-cluster-ip-range=10.0.0.0/16 --allow-privileged=true \
             --service-account-issuer=https://kubernetes.default.svc \
             --service-account-key-file='{d}/sa.key' --service-account-signing-key-file='{d}/sa.key' \
             --authorization-mode=RBAC --token-auth-file='{d}/tokens.csv' \
             --disable-admission-plugins=ServiceAccount\n",
            b = bins.display()
        );
        let mut scripts = vec![("etcd.sh", etcd), ("apiserver.sh", apiserver)];
        if controller_manager {
            scripts.push((
                "kcm.sh",
                format!(
                    "#!/bin/sh\nexec '{b}/kube-controller-manager' --kubeconfig='{d}/kubeconfig' \
                     --controllers=deployment,replicaset,job,garbagecollector,namespace \
                     --leader-elect=false --secure-port=0\n",
                    b = bins.display()
                ),
            ));
        }
        for (name, body) in scripts {
            let p = dir.join(name);
            std::fs::write(&p, body).expect("write a start script");
            run_ok(Command::new("chmod").arg("+x").arg(&p));
        }
        let ca = std::fs::read(dir.join("ca.crt")).expect("read ca.crt");
        let server = format!("https://127.0.0.1:{ap}");
        let kubeconfig = dir.join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n    \
                 certificate-authority-data: {}\nusers:\n- name: admin\n  user:\n    token: {token}\n\
                 contexts:\n- name: test\n  context: {{cluster: test, user: admin, namespace: default}}\n\
                 current-context: test\n",
                base64_encode(&ca)
            ),
        )
        .expect("write kubeconfig");

        let mut supervisor = Command::new("bash")
            .arg("-c")
            .arg(SUPERVISOR)
            .arg("rollgate-k8s-supervisor")
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            // Not inherited: the supervisor outlives the test process by a few seconds and
            // must not hold the test runner's output pipe open.
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("spawn the control-plane supervisor");
        let stdin = supervisor.stdin.take();
        let mut cp = ControlPlane {
            dir,
            kubeconfig,
            server,
            supervisor,
            stdin,
        };
        cp.wait_ready()?;
        Ok(cp)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            let ok = |args: &[&str]| {
                Command::new(bin("kubectl"))
                    .arg("--kubeconfig")
                    .arg(&self.kubeconfig)
                    .args(args)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false)
            };
            if ok(&["get", "--raw", "/readyz"]) && ok(&["get", "namespace", "default"]) {
                return Ok(());
            }
            if self.servers_exited() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        let logs = format!(
            "--- apiserver.log (tail) ---\n{}\n--- etcd.log (tail) ---\n{}",
            tail(&self.dir.join("apiserver.log")),
            tail(&self.dir.join("etcd.log"))
        );
        Err(format!(
            "kube-apiserver at {} was not ready within {READY_TIMEOUT:?}\n{logs}",
            self.server
        ))
    }

    fn servers_exited(&self) -> bool {
        let Ok(pids) = std::fs::read_to_string(self.dir.join("pids")) else {
            return false;
        };
        pids.split_whitespace().any(|p| {
            !Command::new("kill")
                .args(["-0", p])
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false)
        })
    }

    /// The kubeconfig file (admin token, CA data) for kubectl, helm and the client.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The API server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// A new admin client. Make one per test: a client is bound to the tokio runtime that
    /// created it, and each `#[tokio::test]` has its own.
    pub async fn client(&self) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("read kubeconfig");
        let config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .expect("kubeconfig to client config");
        kube::Client::try_from(config).expect("build a kube client")
    }

    /// `kubectl --kubeconfig <this> ARGS` with optional stdin; returns (success, stdout, stderr).
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        run_with_stdin(
            Command::new(bin("kubectl"))
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(args),
            stdin,
        )
    }

    /// `helm --kubeconfig <this> ARGS`; returns (success, stdout, stderr).
    pub fn helm(&self, args: &[&str]) -> (bool, String, String) {
        run_with_stdin(
            Command::new(bin("helm"))
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(args)
                .env("HELM_CACHE_HOME", self.dir.join("helm/cache"))
                .env("HELM_CONFIG_HOME", self.dir.join("helm/config"))
                .env("HELM_DATA_HOME", self.dir.join("helm/data")),
            None,
        )
    }

    /// Create a namespace with a unique name and return it.
    pub fn namespace(&self, prefix: &str) -> String {
        let ns = unique_name(prefix);
        let (ok, _, err) = self.kubectl(&["create", "namespace", &ns], None);
        assert!(ok, "create namespace {ns}: {err}");
        ns
    }
}

/// Runs a command, feeding `stdin`; returns (success, stdout, stderr).
pub fn run_with_stdin(cmd: &mut Command, stdin: Option<&str>) -> (bool, String, String) {
    let mut child = cmd
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin was piped");
        let input = input.to_owned();
        // Write from a thread so a large input cannot deadlock against a full stdout pipe.
        std::thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    let out = child.wait_with_output().expect("wait for the command");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tail(p: &Path) -> String {
    let s = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        // Closing stdin makes the supervisor stop the servers and remove the directory.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.supervisor.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.supervisor.id())])
            .status();
        let _ = self.supervisor.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
