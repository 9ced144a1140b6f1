//! Child processes of the demo: each one logs to its own file in the work directory, dies
//! with the demo (SIGKILL when the demo's thread that started it ends, and on drop), and
//! can be stopped on its own.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, Command};

use super::DemoError;

/// A started child process.
#[derive(Debug)]
pub struct Proc {
    /// What it is (`etcd`, `traefik`, `app dev v2`), for messages.
    pub name: String,
    /// Its log file (stdout and stderr).
    pub log: PathBuf,
    child: Child,
}

impl Proc {
    /// Start `program` with `args` and `envs`, logging to `<logs>/<file>.log`.
    ///
    /// # Errors
    /// [`DemoError::Spawn`] when the program cannot be started.
    pub fn spawn(
        name: &str,
        logs: &Path,
        file: &str,
        program: &Path,
        args: &[String],
        envs: &[(&str, String)],
    ) -> Result<Self, DemoError> {
        let log = logs.join(format!("{file}.log"));
        let out = std::fs::File::create(&log).map_err(|source| DemoError::Io {
            path: log.clone(),
            source,
        })?;
        let err = out.try_clone().map_err(|source| DemoError::Io {
            path: log.clone(),
            source,
        })?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        die_with_parent(&mut cmd);
        let child = cmd.spawn().map_err(|source| DemoError::Spawn {
            what: format!("{name} ({})", program.display()),
            source,
        })?;
        Ok(Self {
            name: name.to_owned(),
            log,
            child,
        })
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines of its log, for an error message.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Stop it: SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(mut self, grace: std::time::Duration) {
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            // SAFETY: kill(2) on the pid of our own child; it touches no memory of ours.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// Make the child receive SIGKILL when the thread that started it ends (the demo was
/// killed), so no server outlives the demo.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2),
    // which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Run a short command to its end; its output on failure.
///
/// # Errors
/// [`DemoError::Spawn`] or [`DemoError::Command`] with the command's stderr.
pub async fn run(
    what: &str,
    program: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String, DemoError> {
    use tokio::io::AsyncWriteExt as _;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|source| DemoError::Spawn {
        what: format!("{what} ({})", program.display()),
        source,
    })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .await
            .map_err(|source| DemoError::Spawn {
                what: format!("{what}: writing its input"),
                source,
            })?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|source| DemoError::Spawn {
            what: what.to_owned(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(DemoError::Command {
            what: what.to_owned(),
            detail: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            ),
        })
    }
}
