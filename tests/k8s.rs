//! The test control plane itself: the harness gives a working `kube::Client` against a real
//! kube-apiserver, tears the servers down when the owning test panics, and
//! `scripts/k8s-test-env up`/`down` start and stop one for people.

#[path = "support/k8s.rs"]
mod k8s;

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};

fn alive(pid: &str) -> bool {
    Command::new("kill")
        .args(["-0", pid])
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[tokio::test]
async fn the_client_talks_to_a_real_api_server() {
    let cp = k8s::shared();
    let client = cp.client().await;
    let version = client.apiserver_version().await.expect("GET /version");
    assert_eq!(version.git_version, "v1.36.3", "{version:?}");
    let names: Vec<String> = Api::<Namespace>::all(client)
        .list(&ListParams::default())
        .await
        .expect("list namespaces")
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    for ns in ["default", "kube-system"] {
        assert!(names.contains(&ns.to_owned()), "{names:?}");
    }
    // RBAC is on: an unknown user is refused.
    let (ok, _, err) = cp.kubectl(&["get", "secrets", "-A", "--as=nobody"], None);
    assert!(!ok);
    assert!(err.contains("forbidden"), "{err}");
}

#[test]
fn a_panicking_test_still_stops_its_servers() {
    let dir: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let pids: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let result = std::panic::catch_unwind(|| {
        let cp = k8s::ControlPlane::start();
        let d = cp.kubeconfig().parent().expect("dir").to_path_buf();
        let p = std::fs::read_to_string(d.join("pids")).expect("pids file");
        *pids.lock().expect("lock") = p.split_whitespace().map(str::to_owned).collect();
        *dir.lock().expect("lock") = Some(d);
        panic!("the test fails while the control plane runs");
    });
    assert!(result.is_err());
    let pids = pids.into_inner().expect("lock");
    assert_eq!(pids.len(), 2, "etcd and kube-apiserver were running");
    for pid in &pids {
        assert!(!alive(pid), "process {pid} survived the panic");
    }
    let dir = dir.into_inner().expect("lock").expect("dir recorded");
    assert!(!dir.exists(), "{} was not removed", dir.display());
}

#[test]
fn the_script_starts_and_stops_a_control_plane() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/k8s-test-env");
    let run = tempfile::tempdir().expect("temp dir");
    let run_dir = run.path().join("run");
    let sh = |cmd: &str| {
        let out = Command::new("bash")
            .arg(&script)
            .arg(cmd)
            .env("ROLLGATE_K8S_RUN", &run_dir)
            .output()
            .expect("run scripts/k8s-test-env");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, kubeconfig, err) = sh("up");
    assert!(ok, "scripts/k8s-test-env up failed: {err}");
    assert_eq!(kubeconfig, run_dir.join("kubeconfig").display().to_string());
    let (ok, out, err) = k8s::run_with_stdin(
        Command::new(k8s::bin("kubectl")).args([
            "--kubeconfig",
            &kubeconfig,
            "get",
            "namespace",
            "kube-system",
            "-o",
            "name",
        ]),
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "namespace/kube-system");
    let pid = std::fs::read_to_string(run_dir.join("apiserver.pid")).expect("pid file");
    // `up` again reuses the running instance.
    let (ok, again, _) = sh("up");
    assert!(ok && again == kubeconfig);
    let (ok, _, err) = sh("down");
    assert!(ok, "down failed: {err}");
    assert!(!alive(pid.trim()), "kube-apiserver still runs after down");
    assert!(!run_dir.exists());
}

#[test]
fn with_the_controller_manager_deployments_get_replica_sets() {
    let cp = k8s::ControlPlane::start_with_controller_manager();
    let ns = cp.namespace("kcm");
    let (ok, _, err) = cp.kubectl(
        &[
            "create",
            "deployment",
            "web",
            "-n",
            &ns,
            "--image=example.invalid/web:1",
            "--replicas=2",
        ],
        None,
    );
    assert!(ok, "{err}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, out, _) = cp.kubectl(
            &[
                "get",
                "replicasets",
                "-n",
                &ns,
                "-o",
                "jsonpath={.items[*].spec.replicas}",
            ],
            None,
        );
        if out.trim() == "2" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no ReplicaSet for the Deployment after 60 s (got {out:?})"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}
