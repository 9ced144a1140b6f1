//! The live terminal view: redrawn twice a second with plain ANSI escapes (environments
//! with versions, weights, phase and analysis; traffic; Git commits; recent events).

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use super::gitops::DeployRepo;
use super::observe::Journal;
use super::traffic::Counts;
use super::{APP, ENVIRONMENTS};

/// Redraw until the task is dropped.
pub async fn live(
    journal: Arc<Journal>,
    repo: Arc<DeployRepo>,
    counts: Counts,
    client: kube::Client,
) {
    let mut commits = Vec::new();
    let mut tick: u64 = 0;
    loop {
        if tick.is_multiple_of(4) {
            if let Ok(h) = repo.history().await {
                commits = h;
            }
            for env in ENVIRONMENTS {
                let s = super::story::state(&client, env.name).await;
                journal.update(env.name, |v| {
                    v.primary_version = s.primary.map(|p| p.0).unwrap_or_default();
                    v.canary_version = s.target.unwrap_or_default();
                });
            }
        }
        tick += 1;
        let mut out = String::from("\x1b[H\x1b[2J");
        let _ = writeln!(
            out,
            "\x1b[1mrollgate demo\x1b[0m — application-x through dev → staging → prod   t={:.0}s",
            journal.now()
        );
        let _ = writeln!(
            out,
            "\n{:<8} {:<8} {:<8} {:<10} {:<17} analysis",
            "env", "primary", "target", "weights", "phase (step)"
        );
        let envs = journal.envs();
        let traffic = counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for env in ENVIRONMENTS {
            let v = envs.get(env.name).cloned().unwrap_or_default();
            let weights = v
                .weights
                .map_or("-".to_owned(), |(p, c)| format!("{p}/{c}"));
            let step = v.step.map_or(String::new(), |s| format!(" ({s})"));
            let mut analysis = v.analysis.clone();
            analysis.truncate(70);
            let _ = writeln!(
                out,
                "{:<8} {:<8} {:<8} {:<10} {:<17} {}",
                env.name,
                v.primary_version,
                v.canary_version,
                weights,
                format!("{}{step}", v.phase),
                analysis
            );
            if !v.git.is_empty() {
                let _ = writeln!(out, "{:<8} git: {}", "", v.git);
            }
        }
        let _ = writeln!(out, "\ntraffic through Traefik ({APP}, per environment):");
        for (env, t) in &traffic {
            let _ = writeln!(
                out,
                "  {env:<8} sent {:>5}  ok {:?}  injected {:?}  failed (not injected) {}",
                t.sent, t.ok_by_version, t.injected_by_version, t.failed_not_injected
            );
        }
        let _ = writeln!(out, "\ndeploy repository, main (newest first):");
        for c in commits.iter().take(8) {
            let id = c
                .trailers
                .get("Rollgate-Promotion")
                .or_else(|| c.trailers.get("Rollgate-Revert"))
                .map_or(String::new(), |v| format!("  [{v}]"));
            let _ = writeln!(
                out,
                "  {} {:<16} {}{id}",
                c.sha.get(..8).unwrap_or(&c.sha),
                c.author,
                c.subject
            );
        }
        let _ = writeln!(out, "\nrecent events:");
        let events = journal.events();
        for e in events.iter().rev().take(12).rev() {
            let mut m = e.message.replace('\n', " ");
            m.truncate(110);
            let _ = writeln!(out, "  {:>6.1}s {:<8} {:<9} {m}", e.t, e.env, e.kind);
        }
        let mut stdout = std::io::stdout();
        let _ = stdout.write_all(out.as_bytes());
        let _ = stdout.flush();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
