//! The story, told step by step: v1 everywhere; CI commits v2 to dev, which goes through
//! dev and staging by itself, waits for approval before prod, is approved with the
//! `rollgate approve` CLI, and reaches prod; then v3 (5 % errors) passes dev's lenient
//! check and is caught in staging: traffic back to the primary, the staging promotion
//! commit reverted, staging synced back to v2, prod untouched.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;

use super::run::Scene;
use super::traffic::generate;
use super::{APP, DemoError, ENVIRONMENTS, GATEWAY_PORT, manifests, netns::DEMO_IP};
use crate::controller::conditions;
use crate::controller::workload::{image_tag, readiness};
use crate::core::strategy::{Phase, Readiness, RolloutStatus};
use crate::k8s::Rollout;

/// What one environment looks like right now.
#[derive(Debug, Clone, Default)]
pub struct EnvState {
    /// The Rollout's status.
    pub status: RolloutStatus,
    /// The primary's version (image tag) and whether it is ready.
    pub primary: Option<(String, bool)>,
    /// The target Deployment's version.
    pub target: Option<String>,
    /// The Git condition's (reason, message).
    pub git: Option<(String, String)>,
}

/// Read one environment's state.
pub async fn state(client: &kube::Client, env: &str) -> EnvState {
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), env);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), env);
    let status = rollouts
        .get_opt(APP)
        .await
        .ok()
        .flatten()
        .and_then(|r| r.status)
        .map(|s| s.status)
        .unwrap_or_default();
    let primary = deployments
        .get_opt(&format!("{APP}-primary"))
        .await
        .ok()
        .flatten()
        .map(|d| {
            (
                image_tag(&d).unwrap_or_default(),
                readiness(&d) == Readiness::Ready,
            )
        });
    let target = deployments
        .get_opt(APP)
        .await
        .ok()
        .flatten()
        .and_then(|d| image_tag(&d));
    let git = status
        .conditions
        .iter()
        .find(|c| c.type_ == conditions::GIT_PROMOTION)
        .map(|c| (c.reason.clone(), c.message.clone()));
    EnvState {
        status,
        primary,
        target,
        git,
    }
}

fn describe(env: &str, s: &EnvState) -> String {
    format!(
        "{env}: phase {} step {:?} weight {} primary {:?} target {:?} git {:?} message {:?}",
        s.status.phase.as_str(),
        s.status.current_step_index,
        s.status.canary_weight,
        s.primary,
        s.target,
        s.git,
        s.status.message
    )
}

/// Wait (up to `secs`) until `env` satisfies `pred`.
async fn wait_env(
    scene: &Scene,
    env: &str,
    secs: u64,
    what: &str,
    pred: impl Fn(&EnvState) -> bool,
) -> Result<EnvState, DemoError> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = state(&scene.client, env).await;
        if pred(&s) {
            return Ok(s);
        }
        if Instant::now() > deadline {
            let mut all = String::new();
            for e in ENVIRONMENTS {
                all.push_str(&describe(e.name, &state(&scene.client, e.name).await));
                all.push('\n');
            }
            return Err(DemoError::Timeout {
                what: format!("{env}: {what} (after {secs}s)"),
                state: all,
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The primary runs `version`, ready, and the rollout is done.
fn settled_on(version: &str) -> impl Fn(&EnvState) -> bool + '_ {
    move |s| {
        s.primary.as_ref().is_some_and(|(v, r)| v == version && *r)
            && matches!(s.status.phase, Phase::Succeeded | Phase::Initialized)
            && s.status.primary_revision.is_some()
    }
}

/// Tell the story.
///
/// # Errors
/// A step that did not happen in time; the report says which.
pub async fn tell(scene: &Scene) -> Result<(), DemoError> {
    let j = &scene.journal;
    for env in ENVIRONMENTS {
        wait_env(
            scene,
            env.name,
            180,
            "the Rollout initialized with v1",
            settled_on("v1"),
        )
        .await?;
    }
    j.event(
        "demo",
        "story",
        "v1 runs everywhere; waiting for Traefik to route each environment",
    );
    wait_routed().await?;
    let mut traffic = Vec::new();
    for env in ENVIRONMENTS {
        traffic.push(tokio::spawn(generate(
            env.name,
            format!("{DEMO_IP}:{GATEWAY_PORT}"),
            scene.rate,
            scene.counts.clone(),
            j.started(),
        )));
    }
    j.event(
        "demo",
        "story",
        &format!(
            "traffic: {} requests/s per environment through Traefik",
            scene.rate
        ),
    );
    let result = story(scene).await;
    // A few more seconds of traffic on the final state, then stop it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for t in traffic {
        t.abort();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    result
}

async fn story(scene: &Scene) -> Result<(), DemoError> {
    let j = &scene.journal;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // --- v2: dev → staging automatically, prod after approval ---------------------
    let sha = scene.repo.ci_release("dev", "v2").await?;
    j.event(
        "dev",
        "ci",
        &format!(
            "CI commits v2 to {} ({})",
            super::gitops::values_path("dev"),
            short(&sha)
        ),
    );
    wait_env(scene, "dev", 240, "v2 promoted in dev", settled_on("v2")).await?;
    wait_env(
        scene,
        "staging",
        240,
        "v2 promoted in staging",
        settled_on("v2"),
    )
    .await?;
    wait_env(
        scene,
        "staging",
        60,
        "the prod promotion waiting for approval",
        |s| {
            s.git
                .as_ref()
                .is_some_and(|(r, m)| r == "GitAwaitingApproval" && m.contains("v2"))
        },
    )
    .await?;
    approve(scene, "prod", "v2").await?;
    wait_env(scene, "prod", 240, "v2 promoted in prod", settled_on("v2")).await?;
    j.event("demo", "story", "v2 runs everywhere");

    // --- v3: passes dev's lenient check, caught in staging -------------------------
    let sha = scene.repo.ci_release("dev", "v3").await?;
    j.event(
        "dev",
        "ci",
        &format!(
            "CI commits v3 (5% errors) to {} ({})",
            super::gitops::values_path("dev"),
            short(&sha)
        ),
    );
    wait_env(scene, "dev", 240, "v3 promoted in dev", settled_on("v3")).await?;
    // The failure is brief in the status (the revert's sync brings v2 back at once, which
    // is already promoted): watch the journal and Git for it.
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let failed = j.saw("staging", "rollout", "Failed");
        let reverted = scene
            .repo
            .history()
            .await
            .unwrap_or_default()
            .iter()
            .any(|c| {
                c.trailers
                    .get("Rollgate-Revert")
                    .is_some_and(|id| id.ends_with("/staging/v3"))
            });
        if failed && reverted {
            break;
        }
        if Instant::now() > deadline {
            return Err(DemoError::Timeout {
                what: format!(
                    "staging: v3 failed (seen: {failed}) and its promotion reverted (seen: {reverted})"
                ),
                state: describe("staging", &state(&scene.client, "staging").await),
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    wait_env(scene, "staging", 60, "staging synced back to v2", |s| {
        s.target.as_deref() == Some("v2")
            && s.primary.as_ref().is_some_and(|(v, _)| v == "v2")
            && s.status.canary_weight == 0
    })
    .await?;
    // Let the revert's sync settle (no new rollout starts: v2 is the primary's revision).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let prod = state(&scene.client, "prod").await;
    if prod.primary.as_ref().map(|(v, _)| v.as_str()) != Some("v2") {
        return Err(DemoError::Story(format!(
            "prod should still run v2: {}",
            describe("prod", &prod)
        )));
    }
    j.event(
        "demo",
        "story",
        "v3 stopped in staging and reverted; prod untouched at v2",
    );
    Ok(())
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Run `rollgate approve` as a user would.
async fn approve(scene: &Scene, env: &str, version: &str) -> Result<(), DemoError> {
    let cache = scene.work.join("git-cache-approver");
    let args: Vec<String> = vec![
        "approve".into(),
        "--policy".into(),
        scene.policy_file.display().to_string(),
        "--app".into(),
        super::POLICY.into(),
        "--env".into(),
        env.into(),
        "--version".into(),
        version.into(),
        "--cache-dir".into(),
        cache.display().to_string(),
        "--author-name".into(),
        "release-manager".into(),
    ];
    scene
        .journal
        .event(env, "approve", &format!("$ rollgate {}", args.join(" ")));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = super::procs::run("rollgate approve", &scene.exe, &refs, None).await?;
    scene.journal.event(env, "approve", out.trim());
    Ok(())
}

/// Wait until Traefik routes a request of every environment to the application.
async fn wait_routed() -> Result<(), DemoError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| DemoError::Story(e.to_string()))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    for env in ENVIRONMENTS {
        loop {
            let r = client
                .get(format!("http://{DEMO_IP}:{GATEWAY_PORT}/"))
                .header("host", manifests::host(env.name))
                .send()
                .await;
            let last = match r {
                Ok(r) if r.status().is_success() => break,
                Ok(r) => format!("HTTP {}", r.status()),
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                return Err(DemoError::Timeout {
                    what: format!("Traefik to route {}", manifests::host(env.name)),
                    state: last,
                });
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    Ok(())
}
