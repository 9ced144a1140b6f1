//! `rollgate tester`: a smoke and load tester for webhooks, as Flagger's load tester is. It
//! serves `POST /` (any path) and reads the hook payload's `metadata`:
//!
//! - `{"type":"cmd","cmd":"curl -sf http://app/healthz"}` runs the command **without a shell**
//!   (words split as a POSIX shell would, no expansion) unless `"shell":"true"` is given, with
//!   the smaller of `"timeout"` (Go duration) and `--max-timeout`; only commands on the
//!   allow-list run. Exit 0 → 200 with the output; non-zero or timeout → 500 with the output;
//!   not allowed → 403. On timeout the whole process group is killed.
//! - `{"type":"http","url":"http://app/healthz","expectStatus":"200"}` makes one GET: 200
//!   when the status matches (default: any 2xx), else 500.
//! - `{"type":"load","url":"http://app/","rps":"20","duration":"1m"}` sends steady GET traffic,
//!   bounded by `--max-rps` and `--max-load-duration`: 202 at once (the load runs in the
//!   background), or with `"wait":"true"` 200 with `{"sent","ok","failed"}` when it ends.
//!
//! Values may be JSON strings (Flagger's metadata is a string map) or numbers/booleans.
//!
//! # The allow-list
//! From `--allow` (repeatable; when absent, `ROLLGATE_TESTER_ALLOW`, one entry per line) and
//! `--allow-file` / `ROLLGATE_TESTER_ALLOW_FILE` (one per line, `#` comments), as the chart
//! sets them. With no entry at all, every command is refused. An entry matches a
//! command with exactly the same words; an entry ending in ` *` matches any command whose
//! words start with the entry's (`curl -sf *`). With `"shell":"true"` only exact entries
//! match, so a wildcard cannot be stretched with `;` or `&&`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::Semaphore;

use super::{Exit, UsageError};
use crate::core::analysis::duration::parse_go_duration;

/// Arguments of `rollgate tester`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on; the bound address is printed on stdout.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// A command that may run (repeatable; `... *` allows any further arguments). When no
    /// `--allow` is given, `ROLLGATE_TESTER_ALLOW` (one entry per line) is used.
    #[arg(
        long = "allow",
        value_name = "COMMAND",
        env = "ROLLGATE_TESTER_ALLOW",
        value_delimiter = '\n'
    )]
    pub allow: Vec<String>,
    /// A file of allowed commands, one per line (`#` starts a comment).
    #[arg(long, value_name = "FILE", env = "ROLLGATE_TESTER_ALLOW_FILE")]
    pub allow_file: Option<PathBuf>,
    /// The longest a command may run (Go duration).
    #[arg(long, default_value = "60s")]
    pub max_timeout: String,
    /// The highest request rate a load may ask for.
    #[arg(long, default_value_t = 500)]
    pub max_rps: u32,
    /// The longest a load may run (Go duration).
    #[arg(long, default_value = "30m")]
    pub max_load_duration: String,
    /// Loads running at once; more are refused with 429.
    #[arg(long, default_value_t = 4)]
    pub max_loads: usize,
}

/// One allow-list entry: exact words, or a prefix of words (`*` at the end).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    /// The words, and the line as written (what a shell command must equal).
    Exact(Vec<String>, String),
    Prefix(Vec<String>),
}

#[derive(Debug)]
struct Tester {
    allowed: Vec<Allowed>,
    max_timeout: Duration,
    max_rps: u32,
    max_load: Duration,
    loads: Arc<Semaphore>,
    client: reqwest::Client,
}

fn parse_entry(line: &str) -> Option<Allowed> {
    let words = shlex::split(line.trim())?;
    match words.split_last() {
        None => None,
        Some((last, rest)) if last == "*" => Some(Allowed::Prefix(rest.to_vec())),
        Some(_) => Some(Allowed::Exact(words, line.trim().to_owned())),
    }
}

fn go_duration(flag: &str, text: &str) -> Result<Duration, UsageError> {
    parse_go_duration(text)
        .ok()
        .and_then(|d| d.to_std().ok())
        .ok_or_else(|| UsageError(format!("--{flag}: not a Go duration: {text:?}")))
}

/// Run `rollgate tester` until SIGTERM or SIGINT.
///
/// # Errors
/// An unreadable allow-list file or a bad flag value (usage), or an address that cannot be
/// bound.
pub async fn run(args: Args) -> anyhow::Result<Exit> {
    let mut lines: Vec<String> = args.allow.clone();
    if let Some(path) = &args.allow_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?;
        lines.extend(text.lines().map(str::to_owned));
    }
    let mut allowed = Vec::new();
    for line in lines {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let entry = parse_entry(line).ok_or_else(|| {
            UsageError(format!("allow-list entry has unbalanced quotes: {line:?}"))
        })?;
        allowed.push(entry);
    }
    let tester = Arc::new(Tester {
        allowed,
        max_timeout: go_duration("max-timeout", &args.max_timeout)?,
        max_rps: args.max_rps.max(1),
        max_load: go_duration("max-load-duration", &args.max_load_duration)?,
        loads: Arc::new(Semaphore::new(args.max_loads)),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the HTTP client")?,
    });
    tracing::info!(entries = tester.allowed.len(), "tester allow-list loaded");
    let app = axum::Router::new()
        .route("/", post(handle))
        .route("/{*path}", post(handle))
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .with_state(tester);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    println!("rollgate tester listening on {addr}");
    let shutdown = crate::shutdown::Shutdown::new();
    shutdown
        .listen_for_signals()
        .context("installing signal handlers")?;
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.wait())
        .await
        .context("serving")?;
    Ok(Exit::Successful)
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (status, body.into()).into_response()
}

/// Metadata values as strings (Flagger sends a string map; numbers and booleans are accepted).
fn metadata(payload: &serde_json::Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(m) = payload.get("metadata").and_then(|m| m.as_object()) {
        for (k, v) in m {
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.insert(k.clone(), s);
        }
    }
    out
}

async fn handle(
    State(t): State<Arc<Tester>>,
    body: Result<Json<serde_json::Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(payload)) = body else {
        return text(
            StatusCode::BAD_REQUEST,
            "the body is not a JSON webhook payload",
        );
    };
    let md = metadata(&payload);
    let hook = payload.get("name").and_then(|v| v.as_str()).unwrap_or("");
    match md.get("type").map(String::as_str) {
        Some("cmd") => run_cmd(&t, hook, &md).await,
        Some("http") => http_check(&t, &md).await,
        Some("load") => load(&t, &md).await,
        Some(other) => text(
            StatusCode::BAD_REQUEST,
            format!("metadata.type {other:?} is not cmd, http or load"),
        ),
        None => text(StatusCode::BAD_REQUEST, "metadata.type is missing"),
    }
}

fn flag(md: &BTreeMap<String, String>, key: &str) -> bool {
    md.get(key).is_some_and(|v| v == "true")
}

impl Tester {
    /// Whether `cmd` may run: without a shell its words are compared; with a shell the line
    /// itself must equal an exact entry.
    fn allows(&self, cmd: &str, shell: bool) -> bool {
        let Some(words) = shlex::split(cmd) else {
            return false;
        };
        self.allowed.iter().any(|a| match a {
            Allowed::Exact(_, raw) if shell => raw == cmd.trim(),
            Allowed::Exact(w, _) => *w == words,
            Allowed::Prefix(p) => !shell && words.len() >= p.len() && words[..p.len()] == p[..],
        })
    }

    fn timeout(&self, md: &BTreeMap<String, String>) -> Result<Duration, String> {
        match md.get("timeout") {
            None => Ok(self.max_timeout),
            Some(s) => parse_go_duration(s)
                .ok()
                .and_then(|d| d.to_std().ok())
                .map(|d| d.min(self.max_timeout))
                .ok_or_else(|| format!("metadata.timeout is not a Go duration: {s:?}")),
        }
    }
}

async fn run_cmd(t: &Tester, hook: &str, md: &BTreeMap<String, String>) -> Response {
    let Some(cmd) = md.get("cmd") else {
        return text(StatusCode::BAD_REQUEST, "metadata.cmd is missing");
    };
    let shell = flag(md, "shell");
    let timeout = match t.timeout(md) {
        Ok(d) => d,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let words = if shell {
        vec![cmd.trim().to_owned()]
    } else {
        match shlex::split(cmd) {
            Some(w) if !w.is_empty() => w,
            _ => {
                return text(
                    StatusCode::BAD_REQUEST,
                    "metadata.cmd is empty or has unbalanced quotes",
                );
            }
        }
    };
    if !t.allows(cmd, shell) {
        tracing::warn!(hook, shell, "command refused: not on the allow-list");
        return text(
            StatusCode::FORBIDDEN,
            "command not on the tester's allow-list",
        );
    }
    let mut command = if shell {
        let mut c = tokio::process::Command::new("sh");
        c.arg("-c").arg(cmd);
        c
    } else {
        let mut c = tokio::process::Command::new(&words[0]);
        c.args(&words[1..]);
        c
    };
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot start the command: {e}"),
            );
        }
    };
    let pid = child.id();
    let started = Instant::now();
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => {
            let mut body = String::from_utf8_lossy(&out.stdout).into_owned();
            body.push_str(&String::from_utf8_lossy(&out.stderr));
            let code = out.status.code();
            tracing::info!(hook, ?code, elapsed = ?started.elapsed(), "command finished");
            if out.status.success() {
                text(StatusCode::OK, body)
            } else {
                let why = code.map_or_else(
                    || "killed by a signal".to_owned(),
                    |c| format!("exit status {c}"),
                );
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("command failed ({why})\n{body}"),
                )
            }
        }
        Ok(Err(e)) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("command failed: {e}"),
        ),
        Err(_) => {
            // The future (and with it the child, kill_on_drop) is gone; kill its group too,
            // so a shell's children do not outlive the timeout.
            if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
                // SAFETY: kill(2) with a negative pid signals the process group the child
                // leads (process_group(0) above); it touches no memory of ours.
                unsafe {
                    libc::kill(-pid, libc::SIGKILL);
                }
            }
            tracing::warn!(hook, ?timeout, "command timed out and was killed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("command timed out after {timeout:?} and was killed"),
            )
        }
    }
}

async fn http_check(t: &Tester, md: &BTreeMap<String, String>) -> Response {
    let Some(url) = md.get("url").and_then(|u| reqwest::Url::parse(u).ok()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "metadata.url is missing or not a URL",
        );
    };
    let timeout = match t.timeout(md) {
        Ok(d) => d,
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let want: Option<u16> = match md.get("expectStatus").map(|s| s.parse()) {
        None => None,
        Some(Ok(s)) => Some(s),
        Some(Err(_)) => {
            return text(
                StatusCode::BAD_REQUEST,
                "metadata.expectStatus is not a status code",
            );
        }
    };
    match t.client.get(url).timeout(timeout).send().await {
        Ok(r) => {
            let s = r.status();
            let ok = want.map_or(s.is_success(), |w| s.as_u16() == w);
            if ok {
                text(StatusCode::OK, format!("HTTP {}", s.as_u16()))
            } else {
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("HTTP {}", s.as_u16()),
                )
            }
        }
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("request failed: {}", e.without_url()),
        ),
    }
}

/// Totals of one load.
#[derive(Debug, Default, serde::Serialize)]
struct LoadReport {
    sent: u64,
    ok: u64,
    failed: u64,
}

async fn load(t: &Tester, md: &BTreeMap<String, String>) -> Response {
    let Some(url) = md
        .get("url")
        .and_then(|u| reqwest::Url::parse(u).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
    else {
        return text(
            StatusCode::BAD_REQUEST,
            "metadata.url is missing or not an http(s) URL",
        );
    };
    let rps: u32 = match md.get("rps").map(|s| s.parse()) {
        Some(Ok(r)) if r > 0 && r <= t.max_rps => r,
        _ => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("metadata.rps must be 1..={}", t.max_rps),
            );
        }
    };
    let duration = match md
        .get("duration")
        .map(|s| parse_go_duration(s).ok().and_then(|d| d.to_std().ok()))
    {
        Some(Some(d)) if d > Duration::ZERO && d <= t.max_load => d,
        _ => {
            return text(
                StatusCode::BAD_REQUEST,
                format!(
                    "metadata.duration must be a Go duration up to {:?}",
                    t.max_load
                ),
            );
        }
    };
    let Ok(permit) = t.loads.clone().try_acquire_owned() else {
        return text(StatusCode::TOO_MANY_REQUESTS, "too many loads running");
    };
    let client = t.client.clone();
    let job = async move {
        let _permit = permit;
        let report = generate(client, url, rps, duration).await;
        tracing::info!(
            sent = report.sent,
            ok = report.ok,
            failed = report.failed,
            "load finished"
        );
        report
    };
    if flag(md, "wait") {
        let report = job.await;
        (StatusCode::OK, Json(report)).into_response()
    } else {
        tokio::spawn(job);
        text(
            StatusCode::ACCEPTED,
            format!("load started: {rps} rps for {duration:?}"),
        )
    }
}

/// Send `rps` GETs a second for `duration` (at most 2·rps in flight; a tick with no room is
/// counted as failed rather than queued, so the rate never bursts).
async fn generate(
    client: reqwest::Client,
    url: reqwest::Url,
    rps: u32,
    duration: Duration,
) -> LoadReport {
    let inflight = Arc::new(Semaphore::new((rps as usize * 2).max(1)));
    let ok = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let failed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let total = (f64::from(rps) * duration.as_secs_f64()).round() as u64;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rps)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tasks = tokio::task::JoinSet::new();
    let mut sent = 0;
    while sent < total {
        tick.tick().await;
        sent += 1;
        let Ok(p) = inflight.clone().try_acquire_owned() else {
            failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            continue;
        };
        let (c, u, ok, failed) = (client.clone(), url.clone(), ok.clone(), failed.clone());
        tasks.spawn(async move {
            let _p = p;
            let good = matches!(c.get(u).timeout(Duration::from_secs(10)).send().await, Ok(r) if r.status().is_success());
            let counter = if good { &ok } else { &failed };
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
    }
    while tasks.join_next().await.is_some() {}
    LoadReport {
        sent,
        ok: ok.load(std::sync::atomic::Ordering::Relaxed),
        failed: failed.load(std::sync::atomic::Ordering::Relaxed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_matching() {
        let t = Tester {
            allowed: vec![
                parse_entry("curl -sf http://app/healthz").expect("entry"),
                parse_entry("echo *").expect("entry"),
            ],
            max_timeout: Duration::from_secs(1),
            max_rps: 1,
            max_load: Duration::from_secs(1),
            loads: Arc::new(Semaphore::new(1)),
            client: reqwest::Client::new(),
        };
        assert!(t.allows("curl -sf 'http://app/healthz'", false));
        assert!(!t.allows("curl -sf http://app/healthz -o /etc/x", false));
        assert!(t.allows("echo hello world", false));
        assert!(
            !t.allows("echo hello; rm -rf /", true),
            "wildcards never match with a shell"
        );
        assert!(t.allows("curl -sf http://app/healthz", true));
        assert!(
            !t.allows("curl -sf 'http://app/healthz'", true),
            "a shell line must be as written"
        );
        assert!(!t.allows("rm -rf /", false));
    }
}
