//! The demo's private network namespace.
//!
//! Traefik reads EndpointSlices, and the API server refuses loopback addresses in them
//! ("may not be in the loopback range"). The demo therefore runs in a network namespace
//! of its own (`unshare -n`, or `unshare -rn` when not root) whose loopback interface also
//! carries the private address [`DEMO_IP`]: every process binds it, nothing outside the
//! namespace can reach it, and fixed ports never clash with anything on the host.

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use super::DemoError;
use super::procs;

/// Set in the re-executed demo: it already runs inside its namespace.
pub const MARKER: &str = "ROLLGATE_DEMO_NETNS";
/// The address every demo process binds, on the namespace's loopback interface.
pub const DEMO_IP: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 1);

/// Whether this process is the demo inside its namespace.
pub fn inside() -> bool {
    std::env::var_os(MARKER).is_some()
}

/// Find `program` on the PATH (or the usual system directories).
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// A tool the demo needs, or the error naming it and how to get it.
///
/// # Errors
/// [`DemoError::Missing`].
pub fn require(program: &str, package: &str) -> Result<PathBuf, DemoError> {
    which(program).ok_or_else(|| DemoError::Missing {
        what: format!("`{program}` (Debian package {package})"),
        hint: "run ./scripts/setup".to_owned(),
    })
}

/// Run this same command again inside a new network namespace and return its exit code.
///
/// # Errors
/// `unshare` missing or failing to start.
pub async fn reexec(args: Vec<OsString>) -> Result<i32, DemoError> {
    let unshare = require("unshare", "util-linux")?;
    require("ip", "iproute2")?;
    let exe = std::env::current_exe().map_err(|source| DemoError::Spawn {
        what: "finding the rollgate binary".to_owned(),
        source,
    })?;
    let mut cmd = tokio::process::Command::new(&unshare);
    // SAFETY: geteuid(2) reads a process attribute and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    cmd.arg(if root { "--net" } else { "--map-root-user" });
    if !root {
        cmd.arg("--net");
    }
    cmd.arg("--").arg(exe).args(args).env(MARKER, "1");
    cmd.kill_on_drop(true);
    procs::die_with_parent(&mut cmd);
    let status = cmd.status().await.map_err(|source| DemoError::Spawn {
        what: format!("{} --net", unshare.display()),
        source,
    })?;
    Ok(status.code().unwrap_or(3))
}

/// Bring the namespace's loopback up and give it [`DEMO_IP`].
///
/// # Errors
/// `ip` missing or refusing (no CAP_NET_ADMIN in the namespace).
pub async fn setup_loopback() -> Result<(), DemoError> {
    let ip = require("ip", "iproute2")?;
    procs::run("ip link set lo up", &ip, &["link", "set", "lo", "up"], None).await?;
    let addr = format!("{DEMO_IP}/32");
    procs::run(
        "ip addr add 10.213.0.1/32 dev lo",
        &ip,
        &["addr", "add", &addr, "dev", "lo"],
        None,
    )
    .await?;
    Ok(())
}
