//! [`Promoter`]: promote, revert, approve and history against one GitOps remote.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use git2::Oid;
use serde::Serialize;

use super::GitError;
use super::credentials::Credentials;
use super::repo::{Cache, Identity, PushFailure, RemoteHeads, RemoteSpec};
use crate::core::promotion::edit;
use crate::core::promotion::plan::{
    self, BranchFacts, PromotionDecision, PromotionId, PromotionRequest, RevertDecision,
    RevertFacts, RevertMode, RevertRequest, Source, Target, Trailers, trailer,
};
use crate::core::promotion::policy::{Approval, EnvironmentSpec, PromotionPolicy, Version};

/// How a [`Promoter`] reaches its remote.
#[derive(Debug, Clone)]
pub struct PromoterConfig {
    /// Clone URL (`file://`, `https://`, `ssh://`, `git@host:path`).
    pub url: String,
    /// The branch every environment syncs from.
    pub branch: String,
    /// Where the bare cache clone lives (one per remote; locked while in use).
    pub cache_dir: PathBuf,
    /// Credentials for the remote.
    pub credentials: Credentials,
    /// Author and committer of promotion commits.
    pub identity: Identity,
    /// Bound of each fetch and push.
    pub timeout: Duration,
    /// Attempts of fetch-edit-push before giving up when other promoters win the race.
    pub max_attempts: u32,
    /// Backoff unit after a lost race: a uniform wait below this times 2, 4, 8, then 16.
    pub backoff: Duration,
}

impl PromoterConfig {
    /// Defaults for `url` and `branch`: cache from [`default_cache_dir`], no
    /// credentials, 60 s timeout, 100 attempts, 5 ms backoff unit.
    pub fn new(url: &str, branch: &str) -> Self {
        Self {
            url: url.to_owned(),
            branch: branch.to_owned(),
            cache_dir: default_cache_dir(url),
            credentials: Credentials::default(),
            identity: Identity::default(),
            timeout: Duration::from_secs(60),
            max_attempts: 100,
            backoff: Duration::from_millis(5),
        }
    }
}

/// The cache directory of a remote: `$ROLLGATE_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/rollgate/git`, else `$HOME/.cache/rollgate/git`, each followed by a
/// hash of the URL.
pub fn default_cache_dir(url: &str) -> PathBuf {
    let base = std::env::var_os("ROLLGATE_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("rollgate/git"))
        })
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/rollgate/git")))
        .unwrap_or_else(|| std::env::temp_dir().join("rollgate/git"));
    // FNV-1a: stable across Rust versions, unlike the std hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in url.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    base.join(format!("{h:016x}"))
}

/// What a promotion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PromotionResult {
    /// The commit landed on the branch.
    Committed,
    /// The commit was pushed to the approval branch and waits for approval.
    PendingApproval,
    /// The environment already had the version: nothing committed.
    AlreadyAtVersion,
    /// The promotion id was already on the branch: nothing committed.
    AlreadyLanded,
    /// The promotion already waits on its approval branch: nothing pushed.
    AlreadyPending,
}

/// The result of [`Promoter::promote`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PromotionOutcome {
    /// The promotion id (`app/env/version`).
    pub id: String,
    /// The application.
    pub app: String,
    /// The target environment.
    pub env: String,
    /// The version.
    pub version: String,
    /// The source environment, or `-`.
    pub from: String,
    /// What happened.
    pub result: PromotionResult,
    /// The commit made, or the one found (landed / pending).
    pub commit: Option<String>,
    /// The branch the commit is on.
    pub branch: String,
    /// The version the environment had before.
    pub previous: Option<String>,
    /// Fetch-edit-push attempts used.
    pub attempts: u32,
}

/// What a revert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RevertResult {
    /// A revert commit landed.
    Reverted,
    /// The environment does not hold the version (already reverted, or moved on).
    NotCurrent,
    /// No commit brought the version in.
    NotFound,
}

/// The result of [`Promoter::revert`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevertOutcome {
    /// The application.
    pub app: String,
    /// The environment.
    pub env: String,
    /// The version taken out.
    pub version: String,
    /// What happened.
    pub result: RevertResult,
    /// The revert commit.
    pub commit: Option<String>,
    /// The reverted commit.
    pub reverted: Option<String>,
    /// The version restored.
    pub restored: Option<String>,
    /// Whole change or field only.
    pub mode: Option<RevertMode>,
    /// What the environment holds when it is not the version.
    pub current: Option<String>,
    /// Attempts used.
    pub attempts: u32,
}

/// What an approval did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ApprovalResult {
    /// The pending promotion landed on the branch.
    Landed,
    /// It had already landed (approved before, or merged by a person in the forge).
    AlreadyLanded,
    /// The branch already had the version (set some other way); nothing committed.
    AlreadyAtVersion,
}

/// The result of [`Promoter::approve`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalOutcome {
    /// The promotion id.
    pub id: String,
    /// The approval branch.
    pub approval_branch: String,
    /// What happened.
    pub result: ApprovalResult,
    /// The commit on the main branch carrying the promotion.
    pub commit: Option<String>,
    /// Whether the approval branch was deleted afterwards.
    pub branch_deleted: bool,
    /// Attempts used.
    pub attempts: u32,
}

/// A promotion waiting for approval.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingApproval {
    /// The promotion id.
    pub id: String,
    /// The version.
    pub version: String,
    /// The approval branch.
    pub branch: String,
    /// Its tip.
    pub commit: String,
    /// Commit time of the tip (seconds since the epoch).
    pub since: i64,
    /// The promotion's evidence.
    pub evidence: Option<String>,
}

/// How the current version got into an environment.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// The commit that set the current version (a merge, when merged in the forge).
    pub commit: String,
    /// Its commit time (seconds since the epoch).
    pub since: i64,
    /// The promotion id (`Rollgate-Promotion`), when rollgate made the change.
    pub promotion: Option<String>,
    /// `Rollgate-From`.
    pub from: Option<String>,
    /// `Rollgate-Evidence`.
    pub evidence: Option<String>,
    /// The id of the promotion this commit reverted, when it is a revert.
    pub reverts: Option<String>,
    /// The commit's subject line.
    pub subject: String,
}

/// One environment in `rollgate history`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentHistory {
    /// The environment.
    pub env: String,
    /// Its file.
    pub file: String,
    /// Its field.
    pub field: String,
    /// Its approval gate.
    pub approval: Approval,
    /// The version there now.
    pub current: Option<String>,
    /// How it got there.
    pub set_by: Option<HistoryEntry>,
    /// Promotions waiting for approval.
    pub pending: Vec<PendingApproval>,
    /// Why the version could not be read (missing file or field, malformed YAML).
    pub error: Option<String>,
}

/// Promotes, reverts and approves versions in one GitOps repository.
pub struct Promoter {
    cache: Arc<Mutex<Cache>>,
    remote: RemoteSpec,
    config: PromoterConfig,
}

impl std::fmt::Debug for Promoter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Promoter")
            .field("url", &self.remote.shown())
            .field("branch", &self.config.branch)
            .finish_non_exhaustive()
    }
}

enum Push {
    Landed,
    Moved,
}

impl Promoter {
    /// Open the cache for `config.url` (creating it), waiting while another process
    /// holds it.
    ///
    /// # Errors
    /// [`GitError::Cache`] when the directory cannot be created, locked or opened.
    pub async fn open(config: PromoterConfig) -> Result<Self, GitError> {
        set_libgit2_timeouts(config.timeout);
        let dir = config.cache_dir.clone();
        let cache = tokio::task::spawn_blocking(move || Cache::open(&dir))
            .await
            .map_err(|e| GitError::Task(e.to_string()))??;
        let remote = RemoteSpec {
            url: config.url.clone(),
            credentials: config.credentials.clone(),
            timeout: config.timeout,
        };
        Ok(Self {
            cache: Arc::new(Mutex::new(cache)),
            remote,
            config,
        })
    }

    /// Run `f` on the cache in a blocking thread; `outbound` bounds it by the timeout.
    async fn blocking<T, F>(&self, op: &str, outbound: bool, f: F) -> Result<T, GitError>
    where
        T: Send + 'static,
        F: FnOnce(&Cache, &RemoteSpec) -> Result<T, GitError> + Send + 'static,
    {
        let cache = Arc::clone(&self.cache);
        let remote = self.remote.clone();
        let task = tokio::task::spawn_blocking(move || {
            let guard = cache
                .lock()
                .map_err(|_| GitError::Task("git cache lock poisoned".to_owned()))?;
            f(&guard, &remote)
        });
        let joined = if outbound {
            // libgit2 checks the deadline itself; this bounds a connect that never returns.
            let bound = self.config.timeout + Duration::from_secs(5);
            tokio::time::timeout(bound, task)
                .await
                .map_err(|_| GitError::Timeout {
                    op: op.to_owned(),
                    url: self.remote.shown(),
                    after: self.config.timeout,
                })?
        } else {
            task.await
        };
        joined.map_err(|e| GitError::Task(e.to_string()))?
    }

    async fn fetch(&self, prefixes: Vec<String>) -> Result<(RemoteHeads, Oid), GitError> {
        let branch = self.config.branch.clone();
        self.blocking("fetch", true, move |cache, remote| {
            let heads = cache.fetch(remote, &branch, &prefixes)?;
            let tip = heads
                .get(&format!("refs/heads/{branch}"))
                .copied()
                .ok_or_else(|| GitError::BranchMissing {
                    branch: branch.clone(),
                    url: remote.shown(),
                })?;
            Ok((heads, tip))
        })
        .await
    }

    async fn backoff(&self, attempt: u32) {
        // "Full jitter": a uniform wait in [0, base * 2^min(attempt, 4)). Promoters that
        // lost the same race spread out instead of colliding again, and the wait stays
        // short (at most 16 * base), which keeps the latency tail under contention low.
        let cap = self.config.backoff * (1u32 << attempt.min(4));
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mut x = u64::from(nanos) ^ (u64::from(std::process::id()) << 32) ^ u64::from(attempt);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let fraction = (x % 1024) as f64 / 1024.0;
        tokio::time::sleep(cap.mul_f64(fraction)).await;
    }

    /// Push `commit` to `branch` expecting `expected`; decide what a failure means by
    /// looking at the remote again.
    async fn push(
        &self,
        commit: Oid,
        branch: &str,
        expected: Option<Oid>,
    ) -> Result<Push, GitError> {
        let target = branch.to_owned();
        let result = self
            .blocking("push", true, move |cache, remote| {
                Ok(cache.push(remote, commit, &target, expected))
            })
            .await?;
        let failure = match result {
            Ok(()) => return Ok(Push::Landed),
            Err(PushFailure::Moved) => return Ok(Push::Moved),
            Err(f) => f,
        };
        // Did it land after all (reply lost), or did the branch move (a race)?
        let target = branch.to_owned();
        let now = self
            .blocking("fetch", true, move |cache, remote| {
                let heads = cache.fetch(remote, &target, &[])?;
                Ok(heads.get(&format!("refs/heads/{target}")).copied())
            })
            .await?;
        if now == Some(commit) {
            return Ok(Push::Landed);
        }
        if now != expected {
            return Ok(Push::Moved);
        }
        Err(match failure {
            PushFailure::TimedOut => GitError::Timeout {
                op: "push".to_owned(),
                url: self.remote.shown(),
                after: self.config.timeout,
            },
            PushFailure::Refused {
                message,
                remote_output,
                auth,
            } => GitError::PushRefused {
                branch: branch.to_owned(),
                url: self.remote.shown(),
                message,
                remote_output,
                auth,
            },
            PushFailure::Moved => GitError::Task("unreachable push state".to_owned()),
        })
    }

    /// The version currently in environment `env` of `policy` (for `--from`).
    ///
    /// # Errors
    /// [`GitError`] for Git failures; [`GitError::Plan`] for a missing file or field;
    /// [`GitError::BadSourceVersion`] when the value is not a version.
    pub async fn current_version(&self, env: &EnvironmentSpec) -> Result<Version, GitError> {
        let (_, tip) = self.fetch(Vec::new()).await?;
        let env = env.clone();
        self.blocking("read", false, move |cache, _| {
            let file = env.file.as_str();
            let text = cache
                .read(tip, file)?
                .ok_or_else(|| plan::PlanError::FileMissing {
                    file: file.to_owned(),
                    env: env.name.to_string(),
                })?;
            let value = edit::read_field(file, &text, &env.field).map_err(plan::PlanError::from)?;
            value.parse().map_err(|_| GitError::BadSourceVersion {
                file: file.to_owned(),
                field: env.field.to_string(),
                value,
            })
        })
        .await
    }

    /// Promote `version` of the policy's application into environment `env`: commit it
    /// on the branch, or on the approval branch when the environment needs approval.
    /// Idempotent: an environment already at the version, or a promotion id already on
    /// the branch, commits nothing.
    ///
    /// # Errors
    /// [`GitError`]: remote failures, a refused push, a lost race after every attempt,
    /// or [`GitError::Plan`] for a missing file or field or malformed YAML.
    #[tracing::instrument(name = "git.promote", skip_all, fields(app = policy.app(), env = %env.name, version = %version))]
    pub async fn promote(
        &self,
        policy: &PromotionPolicy,
        env: &EnvironmentSpec,
        version: &Version,
        source: Source,
        evidence: Option<&str>,
    ) -> Result<PromotionOutcome, GitError> {
        let app = policy.app().to_owned();
        let id = PromotionId::new(&app, env.name.as_str(), version.as_str());
        let approval_branch = id.approval_branch();
        let message_source = source.clone();
        let mut outcome = PromotionOutcome {
            id: id.to_string(),
            app: app.clone(),
            env: env.name.to_string(),
            version: version.to_string(),
            from: match &source {
                Source::Environment(e) => e.clone(),
                Source::Direct => "-".to_owned(),
            },
            result: PromotionResult::AlreadyAtVersion,
            commit: None,
            branch: self.config.branch.clone(),
            previous: None,
            attempts: 0,
        };
        let prefixes = match env.approval {
            Approval::Manual => vec![approval_branch.clone()],
            Approval::None => Vec::new(),
        };
        for attempt in 1..=self.config.max_attempts {
            outcome.attempts = attempt;
            let (heads, tip) = self.fetch(prefixes.clone()).await?;
            let pending_tip = heads.get(&format!("refs/heads/{approval_branch}")).copied();
            let (env_c, version_c, app_c, source_c, evidence_c, id_s) = (
                env.clone(),
                version.clone(),
                app.clone(),
                message_source.clone(),
                evidence.map(str::to_owned),
                id.to_string(),
            );
            let identity = self.config.identity.clone();
            let planned = self
                .blocking("plan", false, move |cache, _| {
                    let req = PromotionRequest {
                        app: &app_c,
                        env: &env_c,
                        version: &version_c,
                        source: source_c,
                        evidence: evidence_c.as_deref(),
                    };
                    let mut facts = BranchFacts {
                        file_text: cache.read(tip, env_c.file.as_str())?,
                        landed: None,
                        pending: None,
                    };
                    if let Some(p) = pending_tip {
                        let carries = cache
                            .repo
                            .find_commit(p)
                            .ok()
                            .map(|c| {
                                plan::has_trailer(
                                    &String::from_utf8_lossy(c.message_raw_bytes()),
                                    trailer::PROMOTION,
                                    &id_s,
                                )
                            })
                            .unwrap_or(false);
                        if !carries {
                            return Err(GitError::ApprovalBranchTaken {
                                branch: req.id().approval_branch(),
                                id: id_s,
                            });
                        }
                        facts.pending = Some(p.to_string());
                    }
                    let mut decision = plan::plan_promotion(&req, &facts)?;
                    if matches!(decision, PromotionDecision::Commit(_)) {
                        facts.landed = cache.find_landed(tip, &id_s)?.map(|c| c.to_string());
                        if facts.landed.is_some() {
                            decision = plan::plan_promotion(&req, &facts)?;
                        }
                    }
                    let commit = match &decision {
                        PromotionDecision::Commit(p) => {
                            Some(cache.commit_file(tip, &p.file, &p.text, &p.message, &identity)?)
                        }
                        _ => None,
                    };
                    Ok((decision, commit))
                })
                .await?;
            let (plan, commit) = match planned {
                (PromotionDecision::AlreadyAtVersion, _) => {
                    outcome.result = PromotionResult::AlreadyAtVersion;
                    outcome.previous = Some(version.to_string());
                    return Ok(outcome);
                }
                (PromotionDecision::AlreadyLanded { commit }, _) => {
                    outcome.result = PromotionResult::AlreadyLanded;
                    outcome.commit = Some(commit);
                    return Ok(outcome);
                }
                (PromotionDecision::AlreadyPending { branch, commit }, _) => {
                    outcome.result = PromotionResult::AlreadyPending;
                    outcome.commit = Some(commit);
                    outcome.branch = branch;
                    return Ok(outcome);
                }
                (PromotionDecision::Commit(plan), Some(commit)) => (plan, commit),
                (PromotionDecision::Commit(_), None) => {
                    return Err(GitError::Task("commit not made".to_owned()));
                }
            };
            let (branch, expected, result) = match &plan.target {
                Target::Branch => (
                    self.config.branch.clone(),
                    Some(tip),
                    PromotionResult::Committed,
                ),
                Target::ApprovalBranch(b) => (b.clone(), None, PromotionResult::PendingApproval),
            };
            match self.push(commit, &branch, expected).await? {
                Push::Landed => {
                    tracing::info!(id = %id, commit = %commit, branch = %branch, attempt, "git.promote landed");
                    outcome.result = result;
                    outcome.commit = Some(commit.to_string());
                    outcome.branch = branch;
                    outcome.previous = Some(plan.previous);
                    return Ok(outcome);
                }
                Push::Moved => {
                    tracing::debug!(id = %id, attempt, "git.promote lost a race; fetching again");
                    self.backoff(attempt).await;
                }
            }
        }
        Err(GitError::Contention {
            branch: self.config.branch.clone(),
            attempts: self.config.max_attempts,
        })
    }

    /// Revert the commit that brought `version` into `env`: the whole change when no
    /// later commit touched the file, otherwise only the field. Idempotent: an
    /// environment that no longer holds the version gets no commit.
    ///
    /// # Errors
    /// As [`Promoter::promote`].
    #[tracing::instrument(name = "git.revert", skip_all, fields(app = policy.app(), env = %env.name, version = %version))]
    pub async fn revert(
        &self,
        policy: &PromotionPolicy,
        env: &EnvironmentSpec,
        version: &Version,
        reason: Option<&str>,
        evidence: Option<&str>,
    ) -> Result<RevertOutcome, GitError> {
        let app = policy.app().to_owned();
        let mut outcome = RevertOutcome {
            app: app.clone(),
            env: env.name.to_string(),
            version: version.to_string(),
            result: RevertResult::NotFound,
            commit: None,
            reverted: None,
            restored: None,
            mode: None,
            current: None,
            attempts: 0,
        };
        for attempt in 1..=self.config.max_attempts {
            outcome.attempts = attempt;
            let (_, tip) = self.fetch(Vec::new()).await?;
            let (env_c, version_c, app_c) = (env.clone(), version.clone(), app.clone());
            let (reason_c, evidence_c) = (reason.map(str::to_owned), evidence.map(str::to_owned));
            let identity = self.config.identity.clone();
            let (decision, commit) = self
                .blocking("plan revert", false, move |cache, _| {
                    let file = env_c.file.as_str();
                    let file_text = cache.read(tip, file)?;
                    let id = PromotionId::new(&app_c, env_c.name.as_str(), version_c.as_str());
                    let holds = file_text
                        .as_deref()
                        .and_then(|t| edit::read_field(file, t, &env_c.field).ok())
                        .is_some_and(|v| v == version_c.as_str());
                    let introducing = if holds {
                        cache.introducing(
                            tip,
                            file,
                            &env_c.field,
                            version_c.as_str(),
                            &id.to_string(),
                        )?
                    } else {
                        None
                    };
                    let req = RevertRequest {
                        app: &app_c,
                        env: &env_c,
                        version: &version_c,
                        reason: reason_c.as_deref(),
                        evidence: evidence_c.as_deref(),
                    };
                    let decision = plan::plan_revert(
                        &req,
                        &RevertFacts {
                            file_text,
                            introducing,
                        },
                    )?;
                    let commit = match &decision {
                        RevertDecision::Commit { plan, .. } => Some(cache.commit_file(
                            tip,
                            &plan.file,
                            &plan.text,
                            &plan.message,
                            &identity,
                        )?),
                        _ => None,
                    };
                    Ok((decision, commit))
                })
                .await?;
            match (decision, commit) {
                (RevertDecision::NotCurrent { current }, _) => {
                    outcome.result = RevertResult::NotCurrent;
                    outcome.current = Some(current);
                    return Ok(outcome);
                }
                (RevertDecision::NotFound, _) => {
                    outcome.result = RevertResult::NotFound;
                    return Ok(outcome);
                }
                (
                    RevertDecision::Commit {
                        mode,
                        reverted,
                        restored,
                        ..
                    },
                    Some(commit),
                ) => match self.push(commit, &self.config.branch, Some(tip)).await? {
                    Push::Landed => {
                        tracing::info!(commit = %commit, reverted = %reverted, "git.revert landed");
                        outcome.result = RevertResult::Reverted;
                        outcome.commit = Some(commit.to_string());
                        outcome.reverted = Some(reverted);
                        outcome.restored = Some(restored);
                        outcome.mode = Some(mode);
                        return Ok(outcome);
                    }
                    Push::Moved => self.backoff(attempt).await,
                },
                (RevertDecision::Commit { .. }, None) => {
                    return Err(GitError::Task("commit not made".to_owned()));
                }
            }
        }
        Err(GitError::Contention {
            branch: self.config.branch.clone(),
            attempts: self.config.max_attempts,
        })
    }

    /// Land the promotion of `version` into `env` that waits on its approval branch.
    /// A promotion already on the branch (approved before, or merged by a person in the
    /// forge) is recognised as approved. The approval branch is deleted afterwards
    /// (best effort).
    ///
    /// # Errors
    /// [`GitError::NoPendingPromotion`] when there is nothing to approve; otherwise as
    /// [`Promoter::promote`].
    #[tracing::instrument(name = "git.approve", skip_all, fields(app = policy.app(), env = %env.name, version = %version))]
    pub async fn approve(
        &self,
        policy: &PromotionPolicy,
        env: &EnvironmentSpec,
        version: &Version,
    ) -> Result<ApprovalOutcome, GitError> {
        let id = PromotionId::new(policy.app(), env.name.as_str(), version.as_str());
        let approval_branch = id.approval_branch();
        let mut outcome = ApprovalOutcome {
            id: id.to_string(),
            approval_branch: approval_branch.clone(),
            result: ApprovalResult::AlreadyLanded,
            commit: None,
            branch_deleted: false,
            attempts: 0,
        };
        for attempt in 1..=self.config.max_attempts {
            outcome.attempts = attempt;
            let (heads, tip) = self.fetch(vec![approval_branch.clone()]).await?;
            let pending = heads.get(&format!("refs/heads/{approval_branch}")).copied();
            let (env_c, version_c, id_s, branch_c) = (
                env.clone(),
                version.clone(),
                id.to_string(),
                approval_branch.clone(),
            );
            let identity = self.config.identity.clone();
            let main = self.config.branch.clone();
            // (landed commit, commit to push, result)
            let step = self
                .blocking("plan approval", false, move |cache, _| {
                    if let Some(landed) = cache.find_landed(tip, &id_s)? {
                        return Ok((Some(landed), None, ApprovalResult::AlreadyLanded));
                    }
                    let Some(p) = pending else {
                        return Err(GitError::NoPendingPromotion {
                            id: id_s,
                            branch: branch_c,
                            main,
                        });
                    };
                    let commit = cache.repo.find_commit(p).map_err(|e| GitError::Local {
                        op: "read commit".to_owned(),
                        message: e.message().to_owned(),
                    })?;
                    let message = commit.message_raw().unwrap_or("").to_owned();
                    if !plan::has_trailer(&message, trailer::PROMOTION, &id_s) {
                        return Err(GitError::ApprovalBranchTaken {
                            branch: branch_c,
                            id: id_s,
                        });
                    }
                    if commit.parent_id(0).ok() == Some(tip) {
                        return Ok((None, Some(p), ApprovalResult::Landed));
                    }
                    let file = env_c.file.as_str();
                    let text =
                        cache
                            .read(tip, file)?
                            .ok_or_else(|| plan::PlanError::FileMissing {
                                file: file.to_owned(),
                                env: env_c.name.to_string(),
                            })?;
                    let edit = edit::set_field(file, &text, &env_c.field, version_c.as_str())
                        .map_err(plan::PlanError::from)?;
                    if !edit.changed {
                        return Ok((None, None, ApprovalResult::AlreadyAtVersion));
                    }
                    let message = format!(
                        "{}{}: {}\n",
                        if message.ends_with('\n') {
                            message.clone()
                        } else {
                            format!("{message}\n")
                        },
                        trailer::APPROVED,
                        branch_c
                    );
                    let c = cache.commit_file(tip, file, &edit.text, &message, &identity)?;
                    Ok((None, Some(c), ApprovalResult::Landed))
                })
                .await?;
            let (landed, to_push, result) = step;
            outcome.result = result;
            let landed = match to_push {
                None => landed,
                Some(c) => match self.push(c, &self.config.branch, Some(tip)).await? {
                    Push::Landed => Some(c),
                    Push::Moved => {
                        self.backoff(attempt).await;
                        continue;
                    }
                },
            };
            outcome.commit = landed.map(|c| c.to_string());
            if pending.is_some() {
                let branch = approval_branch.clone();
                let deleted = self
                    .blocking("delete branch", true, move |cache, remote| {
                        Ok(cache.delete_branch(remote, &branch))
                    })
                    .await;
                outcome.branch_deleted = matches!(deleted, Ok(Ok(())));
                if !outcome.branch_deleted {
                    tracing::warn!(branch = %approval_branch, "could not delete the approval branch");
                }
            }
            return Ok(outcome);
        }
        Err(GitError::Contention {
            branch: self.config.branch.clone(),
            attempts: self.config.max_attempts,
        })
    }

    /// Per environment: the current version, since when, by which promotion and on
    /// what evidence, and the promotions waiting for approval.
    ///
    /// # Errors
    /// [`GitError`] for Git failures; per-environment read problems are reported in
    /// [`EnvironmentHistory::error`].
    #[tracing::instrument(name = "git.history", skip_all, fields(app = policy.app()))]
    pub async fn history(
        &self,
        policy: &PromotionPolicy,
    ) -> Result<Vec<EnvironmentHistory>, GitError> {
        let app = policy.app().to_owned();
        let prefix = format!("rollgate/promote/{app}/");
        let (heads, tip) = self.fetch(vec![prefix.clone()]).await?;
        let envs: Vec<EnvironmentSpec> = policy.spec.environments.iter().cloned().collect();
        self.blocking("history", false, move |cache, _| {
            let mut out = Vec::new();
            for env in envs {
                let file = env.file.as_str().to_owned();
                let mut h = EnvironmentHistory {
                    env: env.name.to_string(),
                    file: file.clone(),
                    field: env.field.to_string(),
                    approval: env.approval,
                    current: None,
                    set_by: None,
                    pending: Vec::new(),
                    error: None,
                };
                match cache.read(tip, &file)? {
                    None => {
                        h.error = Some(format!("{file}: no such file on the branch"));
                    }
                    Some(text) => match edit::read_field(&file, &text, &env.field) {
                        Err(e) => h.error = Some(e.to_string()),
                        Ok(v) => {
                            h.current = Some(v);
                            if let Some(c) = cache.field_change(tip, &file, &env.field, None)? {
                                h.set_by = Some(entry(cache, c)?);
                            }
                        }
                    },
                }
                let env_prefix = format!("refs/heads/{prefix}{}/", env.name);
                for (name, oid) in heads.range(env_prefix.clone()..) {
                    if !name.starts_with(&env_prefix) {
                        break;
                    }
                    let Ok(commit) = cache.repo.find_commit(*oid) else {
                        continue;
                    };
                    let t = Trailers::parse(commit.message_raw().unwrap_or(""));
                    let Some(id) = t.get(trailer::PROMOTION) else {
                        continue;
                    };
                    if cache.find_landed(tip, id)?.is_some() {
                        continue; // merged in the forge or approved: not pending
                    }
                    h.pending.push(PendingApproval {
                        id: id.to_owned(),
                        version: t.get(trailer::VERSION).unwrap_or("").to_owned(),
                        branch: name.trim_start_matches("refs/heads/").to_owned(),
                        commit: oid.to_string(),
                        since: commit.time().seconds(),
                        evidence: t.get(trailer::EVIDENCE).map(str::to_owned),
                    });
                }
                out.push(h);
            }
            Ok(out)
        })
        .await
    }
}

/// The history entry of commit `c`; a merge without trailers takes those of the merged
/// branch's tip (a promotion merged in the forge).
fn entry(cache: &Cache, c: Oid) -> Result<HistoryEntry, GitError> {
    let commit = cache.repo.find_commit(c).map_err(|e| GitError::Local {
        op: "read commit".to_owned(),
        message: e.message().to_owned(),
    })?;
    let mut message = commit.message_raw().unwrap_or("").to_owned();
    if !message.contains("Rollgate-")
        && commit.parent_count() > 1
        && let Ok(merged) = commit.parent(1)
    {
        message = merged.message_raw().unwrap_or("").to_owned();
    }
    let t = Trailers::parse(&message);
    Ok(HistoryEntry {
        commit: c.to_string(),
        since: commit.time().seconds(),
        promotion: t.get(trailer::PROMOTION).map(str::to_owned),
        from: t.get(trailer::FROM).map(str::to_owned),
        evidence: t.get(trailer::EVIDENCE).map(str::to_owned),
        reverts: t.get(trailer::REVERT).map(str::to_owned),
        subject: commit.summary().ok().flatten().unwrap_or("").to_owned(),
    })
}

/// Bound libgit2's connect and read/write waits by the timeout (process-wide, set once).
fn set_libgit2_timeouts(timeout: Duration) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: these only store an integer in libgit2's global settings; they run once,
        // before this process's first git2 network operation (Promoter::open calls this
        // before creating its cache).
        unsafe {
            let _ = git2::opts::set_server_connect_timeout_in_milliseconds(ms);
            let _ = git2::opts::set_server_timeout_in_milliseconds(ms);
        }
    });
}
