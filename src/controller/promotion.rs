//! The Git side of a finished rollout in this cluster's environment, through
//! [`crate::gitops::Promoter`]: on success commit the version to the next environment of
//! the Rollout's `PromotionPolicy` (or push its approval branch); on failure revert the
//! commit that brought the version into this environment. Both are idempotent (the
//! promotion id trailer, the file's current version), so a restart never doubles a commit.

use std::collections::BTreeMap;
use std::time::Instant;

use k8s_openapi::api::core::v1::Secret as K8sSecret;
use kube::ResourceExt;
use kube::api::Api;

use super::{Context, POLICY_ANNOTATION, call, reasons};
use crate::core::promotion::plan::Source;
use crate::core::promotion::policy::{
    ApiVersion, OnFailure, PolicyKind, PolicyMetadata, PromotionPolicy as CorePolicy, Version,
};
use crate::gitops::{Credentials, Promoter, PromoterConfig, PromotionResult, RevertResult, Secret};
use crate::k8s::{PromotionPolicy, Rollout};
use crate::telemetry::{PromotionAction, PromotionEffect, PromotionFailure};

/// What the Git side did, for the status condition and the Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitOutcome {
    /// Constant reason (see [`reasons`]).
    pub reason: &'static str,
    /// Human-readable, naming the environment and the commit.
    pub message: String,
    /// The commit made or found.
    pub commit: Option<String>,
}

/// Why the Git side failed (retried on the next reconcile).
#[derive(Debug, thiserror::Error)]
pub enum PromotionError {
    /// The policy, its Secret or the version is unusable.
    #[error("{0}")]
    Input(String),
    /// The API server failed.
    #[error(transparent)]
    Api(#[from] super::Error),
    /// Git failed.
    #[error(transparent)]
    Git(#[from] crate::gitops::GitError),
}

/// Promote (`succeeded`) or revert `version` for `rollout`. `Ok(None)`: nothing to do
/// (no policy, this environment is not in it, the last environment, or `onFailure:
/// abort`).
///
/// # Errors
/// [`PromotionError`]; the caller records it and tries again later.
pub async fn settle(
    ctx: &Context,
    rollout: &Rollout,
    version: &str,
    succeeded: bool,
    evidence: &str,
) -> Result<Option<GitOutcome>, PromotionError> {
    let ns = rollout.namespace().unwrap_or_default();
    let policy_name = rollout
        .annotations()
        .get(POLICY_ANNOTATION)
        .cloned()
        .unwrap_or_else(|| rollout.name_any());
    let api: Api<PromotionPolicy> = Api::namespaced(ctx.client.clone(), &ns);
    let object = format!("PromotionPolicy {ns}/{policy_name}");
    let Some(policy) = call("get", &object, api.get_opt(&policy_name)).await? else {
        return Ok(None);
    };
    let policy = core_policy(&ns, &policy_name, policy.spec.spec)?;
    let env_name = ctx.config.environment.as_str();
    let Some(this_env) = policy.environment(env_name).cloned() else {
        return Ok(None);
    };
    let version: Version = version
        .parse()
        .map_err(|e| PromotionError::Input(format!("{object}: version: {e}")))?;
    let target = if succeeded {
        let all = policy.spec.environments.as_slice();
        let at = all.iter().position(|e| e.name.as_str() == env_name);
        match at.and_then(|i| all.get(i + 1)) {
            Some(next) => next.clone(),
            None => return Ok(None),
        }
    } else {
        if policy.spec.on_failure == OnFailure::Abort {
            return Ok(None);
        }
        this_env.clone()
    };
    let config = promoter_config(ctx, &ns, &policy, "").await?;
    let started = Instant::now();
    let _guard = ctx.git_lock.lock().await;
    let result = async {
        let promoter = Promoter::open(config).await?;
        if succeeded {
            let out = promoter
                .promote(
                    &policy,
                    &target,
                    &version,
                    Source::Environment(env_name.to_owned()),
                    Some(evidence),
                )
                .await?;
            let commit = out.commit.clone();
            let short = commit.as_deref().map(short).unwrap_or("-").to_owned();
            Ok::<_, PromotionError>(Some(match out.result {
                PromotionResult::PendingApproval | PromotionResult::AlreadyPending => GitOutcome {
                    reason: reasons::AWAITING_APPROVAL,
                    message: format!(
                        "{version} waits for approval into {} on branch {} (commit {short})",
                        target.name, out.branch
                    ),
                    commit,
                },
                PromotionResult::Committed
                | PromotionResult::AlreadyLanded
                | PromotionResult::AlreadyAtVersion => GitOutcome {
                    reason: reasons::PROMOTED,
                    message: format!(
                        "{version} promoted to {} in commit {short} ({:?})",
                        target.name, out.result
                    ),
                    commit,
                },
            }))
        } else {
            let out = promoter
                .revert(
                    &policy,
                    &target,
                    &version,
                    Some("rollout failed"),
                    Some(evidence),
                )
                .await?;
            let commit = out.commit.clone();
            let short = commit.as_deref().map(short).unwrap_or("-").to_owned();
            Ok(Some(match out.result {
                RevertResult::Reverted => GitOutcome {
                    reason: reasons::REVERTED,
                    message: format!(
                        "{version} reverted in {} by commit {short} (reverted {})",
                        target.name,
                        out.reverted.as_deref().map(self::short).unwrap_or("-")
                    ),
                    commit,
                },
                RevertResult::NotCurrent | RevertResult::NotFound => GitOutcome {
                    reason: reasons::NOTHING_TO_REVERT,
                    message: format!(
                        "{version} is not in {}'s file any more ({:?}); nothing reverted",
                        target.name, out.result
                    ),
                    commit: None,
                },
            }))
        }
    }
    .await;
    let action = if succeeded {
        PromotionAction::Promote
    } else {
        PromotionAction::Revert
    };
    match &result {
        Ok(Some(out)) => {
            let effect = match out.reason {
                reasons::AWAITING_APPROVAL => PromotionEffect::PendingApproval,
                reasons::NOTHING_TO_REVERT => PromotionEffect::Unchanged,
                _ if out.message.contains("(Committed)") || out.reason == reasons::REVERTED => {
                    PromotionEffect::Committed
                }
                _ => PromotionEffect::Unchanged,
            };
            ctx.telemetry
                .promotion_succeeded(action, effect, started.elapsed());
        }
        Ok(None) => {}
        Err(PromotionError::Git(e)) => {
            ctx.telemetry
                .promotion_failed(action, PromotionFailure::from(e), started.elapsed());
        }
        Err(_) => {
            ctx.telemetry
                .promotion_failed(action, PromotionFailure::Input, started.elapsed());
        }
    }
    result
}

/// The core policy of the `PromotionPolicy` object `ns/name`.
///
/// # Errors
/// [`PromotionError::Input`] when the object's name is not a valid application name.
pub fn core_policy(
    ns: &str,
    name: &str,
    spec: crate::core::promotion::policy::PromotionPolicySpec,
) -> Result<CorePolicy, PromotionError> {
    Ok(CorePolicy {
        api_version: ApiVersion::V1Alpha1,
        kind: PolicyKind::PromotionPolicy,
        metadata: PolicyMetadata {
            name: name.parse().map_err(|e| {
                PromotionError::Input(format!("PromotionPolicy {ns}/{name}: metadata.name: {e}"))
            })?,
            namespace: Some(ns.to_owned()),
        },
        spec,
    })
}

/// The Git settings for `policy` (its Secret's credentials, the controller's cache and
/// timeout). `suffix` keeps a separate clone (the approvals API holds its own open, and an
/// open clone is locked).
///
/// # Errors
/// A missing Secret or an API failure.
pub async fn promoter_config(
    ctx: &Context,
    ns: &str,
    policy: &CorePolicy,
    suffix: &str,
) -> Result<PromoterConfig, PromotionError> {
    let credentials = credentials(ctx, ns, policy).await?;
    let repo = &policy.spec.repository;
    let mut config = PromoterConfig::new(&repo.url, &repo.branch);
    if let Some(dir) = &ctx.config.git_cache {
        config.cache_dir = dir.join(
            crate::gitops::default_cache_dir(&repo.url)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "repo".to_owned()),
        );
    }
    if !suffix.is_empty() {
        let mut name = config.cache_dir.as_os_str().to_owned();
        name.push(suffix);
        config.cache_dir = name.into();
    }
    config.credentials = credentials;
    config.timeout = ctx.config.git_timeout;
    Ok(config)
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// Credentials from the policy's Secret (`username`, `password`, `token` keys).
async fn credentials(
    ctx: &Context,
    ns: &str,
    policy: &CorePolicy,
) -> Result<Credentials, PromotionError> {
    let Some(r) = &policy.spec.repository.secret_ref else {
        return Ok(Credentials::default());
    };
    let api: Api<K8sSecret> = Api::namespaced(ctx.client.clone(), ns);
    let object = format!("Secret {ns}/{}", r.name);
    let secret = call("get", &object, api.get_opt(&r.name))
        .await?
        .ok_or_else(|| PromotionError::Input(format!("{object} not found")))?;
    let data: BTreeMap<String, String> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| String::from_utf8(v.0).ok().map(|v| (k, v)))
        .collect();
    Ok(Credentials {
        username: data.get("username").cloned(),
        password: data.get("password").map(|s| Secret::new(s.clone())),
        token: data.get("token").map(|s| Secret::new(s.clone())),
        ..Credentials::default()
    })
}
