//! The demo's Kubernetes API: etcd and kube-apiserver from the test control plane's cache
//! (`scripts/k8s-test-env build`), on fixed ports of the private namespace, with a static
//! admin token, a kubeconfig, a kube client and `kubectl apply`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::DemoError;
use super::procs::{self, Proc};

/// The API server's address inside the namespace.
pub const SERVER: &str = "https://127.0.0.1:6443";

/// A running etcd + kube-apiserver.
pub struct Cluster {
    /// The kubeconfig (admin token).
    pub kubeconfig: PathBuf,
    /// The admin bearer token.
    pub token: String,
    /// The CA that signed the serving certificate.
    pub ca: PathBuf,
    /// kubectl of the same build.
    pub kubectl: PathBuf,
    /// A client with the admin token.
    pub client: kube::Client,
    /// etcd and kube-apiserver.
    pub procs: Vec<Proc>,
}

/// Where the binaries are: `--k8s-bin-dir`, or what `scripts/k8s-test-env bin-dir` prints
/// in the source tree this binary was built from.
///
/// # Errors
/// [`DemoError::Missing`] naming the binary and the set-up command.
pub async fn bin_dir(given: Option<PathBuf>) -> Result<PathBuf, DemoError> {
    let dir = match given {
        Some(d) => d,
        None => {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/k8s-test-env");
            if !script.is_file() {
                return Err(DemoError::Missing {
                    what: "the Kubernetes test binaries (kube-apiserver, etcd, kubectl)".into(),
                    hint: "pass --k8s-bin-dir (or ROLLGATE_K8S_BIN_DIR): the directory \
                           `scripts/k8s-test-env bin-dir` prints after ./scripts/setup"
                        .into(),
                });
            }
            let out = procs::run(
                "scripts/k8s-test-env bin-dir",
                Path::new("bash"),
                &[&script.to_string_lossy(), "bin-dir"],
                None,
            )
            .await?;
            PathBuf::from(out.trim())
        }
    };
    for b in ["etcd", "kube-apiserver", "kubectl"] {
        if !dir.join(b).is_file() {
            return Err(DemoError::Missing {
                what: format!("{}", dir.join(b).display()),
                hint: "run ./scripts/setup (it builds the Kubernetes test control plane)".into(),
            });
        }
    }
    let crds = gateway_api_crds(&dir);
    if !crds.is_file() {
        return Err(DemoError::Missing {
            what: format!("the Gateway API CRDs {}", crds.display()),
            hint: "run ./scripts/setup".into(),
        });
    }
    Ok(dir)
}

/// The Gateway API standard-channel CRDs beside the bin dir.
pub fn gateway_api_crds(bin: &Path) -> PathBuf {
    bin.parent()
        .unwrap_or(bin)
        .join("gateway-api-standard.yaml")
}

async fn openssl(dir: &Path, args: &[&str]) -> Result<(), DemoError> {
    let openssl = super::netns::require("openssl", "openssl")?;
    let mut cmd = tokio::process::Command::new(openssl);
    cmd.args(args).current_dir(dir);
    let out = cmd.output().await.map_err(|source| DemoError::Spawn {
        what: "openssl".into(),
        source,
    })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(DemoError::Command {
            what: format!("openssl {}", args.join(" ")),
            detail: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// A CA and a serving certificate for 127.0.0.1 (rustls refuses a self-signed CA used as
/// the server's own certificate), and the service-account key.
async fn make_certs(dir: &Path) -> Result<(), DemoError> {
    openssl(
        dir,
        &[
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
            "/CN=rollgate-demo-ca",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    )
    .await?;
    openssl(
        dir,
        &[
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
        ],
    )
    .await?;
    write(
        &dir.join("apiserver.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )?;
    openssl(
        dir,
        &[
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
        ],
    )
    .await?;
    openssl(dir, &["genrsa", "-out", "sa.key", "2048"]).await
}

/// Write a file, naming it on failure.
///
/// # Errors
/// [`DemoError::Io`].
pub fn write(path: &Path, text: &str) -> Result<(), DemoError> {
    std::fs::write(path, text).map_err(|source| DemoError::Io {
        path: path.to_owned(),
        source,
    })
}

impl Cluster {
    /// Start etcd and kube-apiserver in `dir` and wait until the API answers.
    ///
    /// # Errors
    /// A binary fails to start or the API is not ready within 120 s.
    pub async fn start(bin: &Path, dir: &Path, logs: &Path) -> Result<Self, DemoError> {
        let pki = dir.join("pki");
        std::fs::create_dir_all(&pki).map_err(|source| DemoError::Io {
            path: pki.clone(),
            source,
        })?;
        make_certs(&pki).await?;
        let token = format!("demo-{:x}", rand_u64());
        write(
            &pki.join("tokens.csv"),
            &format!("{token},rollgate-demo-admin,1,\"system:masters\"\n"),
        )?;
        let etcd = Proc::spawn(
            "etcd",
            logs,
            "etcd",
            &bin.join("etcd"),
            &[
                format!("--data-dir={}", dir.join("etcd").display()),
                "--name=demo".into(),
                "--listen-client-urls=http://127.0.0.1:2379".into(),
                "--advertise-client-urls=http://127.0.0.1:2379".into(),
                "--listen-peer-urls=http://127.0.0.1:2380".into(),
                "--initial-advertise-peer-urls=http://127.0.0.1:2380".into(),
                "--initial-cluster=demo=http://127.0.0.1:2380".into(),
                "--unsafe-no-fsync=true".into(),
            ],
            &[],
        )?;
        let p = |f: &str| pki.join(f).display().to_string();
        let apiserver = Proc::spawn(
            "kube-apiserver",
            logs,
            "kube-apiserver",
            &bin.join("kube-apiserver"),
            &[
                "--etcd-servers=http://127.0.0.1:2379".into(),
                "--bind-address=127.0.0.1".into(),
                "--secure-port=6443".into(),
                "--advertise-address=127.0.0.1".into(),
                format!("--cert-dir={}", dir.join("cert").display()),
                format!("--tls-cert-file={}", p("apiserver.crt")),
                format!("--tls-private-key-file={}", p("apiserver.key")),
                "--service-cluster-ip-range=10.0.0.0/24".into(),
                "--allow-privileged=true".into(),
                "--service-account-issuer=https://kubernetes.default.svc".into(),
                format!("--service-account-key-file={}", p("sa.key")),
                format!("--service-account-signing-key-file={}", p("sa.key")),
                "--authorization-mode=RBAC".into(),
                format!("--token-auth-file={}", p("tokens.csv")),
                "--disable-admission-plugins=ServiceAccount".into(),
            ],
            &[],
        )?;
        let ca = pki.join("ca.crt");
        let ca_data = std::fs::read(&ca).map_err(|source| DemoError::Io {
            path: ca.clone(),
            source,
        })?;
        use base64::Engine as _;
        let kubeconfig = dir.join("kubeconfig");
        write(
            &kubeconfig,
            &format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: demo\n  cluster:\n    server: {SERVER}\n    \
                 certificate-authority-data: {}\nusers:\n- name: admin\n  user:\n    token: {token}\n\
                 contexts:\n- name: demo\n  context: {{cluster: demo, user: admin, namespace: default}}\n\
                 current-context: demo\n",
                base64::engine::general_purpose::STANDARD.encode(ca_data)
            ),
        )?;
        let mut procs = vec![etcd, apiserver];
        let kubectl = bin.join("kubectl");
        let started = Instant::now();
        loop {
            let ready = procs::run(
                "kubectl get namespace default",
                &kubectl,
                &[
                    "--kubeconfig",
                    &kubeconfig.to_string_lossy(),
                    "get",
                    "namespace",
                    "default",
                    "-o",
                    "name",
                ],
                None,
            )
            .await
            .is_ok();
            if ready {
                break;
            }
            for proc in &mut procs {
                if !proc.running() {
                    return Err(DemoError::Command {
                        what: format!("{} exited", proc.name),
                        detail: proc.log_tail(),
                    });
                }
            }
            if started.elapsed() > Duration::from_secs(120) {
                return Err(DemoError::Timeout {
                    what: "kube-apiserver to become ready".into(),
                    state: procs.get(1).map(Proc::log_tail).unwrap_or_default(),
                });
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let kc =
            kube::config::Kubeconfig::read_from(&kubeconfig).map_err(|e| DemoError::Command {
                what: format!("reading {}", kubeconfig.display()),
                detail: e.to_string(),
            })?;
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .map_err(|e| DemoError::Command {
                what: format!("loading {}", kubeconfig.display()),
                detail: e.to_string(),
            })?;
        let client = kube::Client::try_from(config).map_err(|e| DemoError::Command {
            what: "building the Kubernetes client".into(),
            detail: e.to_string(),
        })?;
        Ok(Self {
            kubeconfig,
            token,
            ca,
            kubectl,
            client,
            procs,
        })
    }

    /// `kubectl apply --server-side` of `yaml`, or of the file `path`.
    ///
    /// # Errors
    /// [`DemoError::Command`] with kubectl's message.
    pub async fn apply(
        &self,
        what: &str,
        yaml: Option<&str>,
        path: Option<&Path>,
    ) -> Result<(), DemoError> {
        let kc = self.kubeconfig.to_string_lossy().into_owned();
        let file = path.map_or_else(|| "-".to_owned(), |p| p.to_string_lossy().into_owned());
        procs::run(
            &format!("kubectl apply ({what})"),
            &self.kubectl,
            &[
                "--kubeconfig",
                &kc,
                "apply",
                "--server-side",
                "--force-conflicts",
                "-f",
                &file,
            ],
            yaml,
        )
        .await
        .map(|_| ())
    }

    /// `kubectl wait --for=condition=Established` on CRDs.
    ///
    /// # Errors
    /// [`DemoError::Command`] when they are not established within 60 s.
    pub async fn wait_established(&self, crds: &[&str]) -> Result<(), DemoError> {
        let kc = self.kubeconfig.to_string_lossy().into_owned();
        let mut args = vec![
            "--kubeconfig",
            &kc,
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
        ];
        let names: Vec<String> = crds.iter().map(|c| format!("crd/{c}")).collect();
        args.extend(names.iter().map(String::as_str));
        procs::run(
            "kubectl wait (CRDs established)",
            &self.kubectl,
            &args,
            None,
        )
        .await
        .map(|_| ())
    }
}

/// A random 64-bit number from the kernel (for the token).
fn rand_u64() -> u64 {
    let mut buf = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read as _;
        let _ = f.read_exact(&mut buf);
    }
    u64::from_le_bytes(buf) ^ u64::from(std::process::id())
}
