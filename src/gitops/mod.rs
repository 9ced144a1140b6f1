//! The Git side of promotion: fetch, comment-preserving edit, commit with trailers, push
//! with fetch-and-rebase retries, revert, approvals and history.
//!
//! [`Promoter`] is the entry point. Decisions come from [`crate::core::promotion`]; this
//! module gathers the facts (files and history at the fetched tip) and carries the
//! decisions out with git2, every git2 call inside `tokio::task::spawn_blocking` and every
//! fetch and push bounded by a timeout.
//!
//! Concurrency: a push only moves the remote branch if it still points at the commit the
//! promotion was built on. When another promoter got there first, the promoter fetches
//! again, re-reads the file and re-applies the edit on the new tip (it never merges text),
//! with a bounded number of attempts and jittered exponential backoff. The promotion id
//! trailer makes a retry after a lost push reply a no-op.

pub mod credentials;
mod promoter;
mod repo;

use std::time::Duration;

pub use credentials::{Credentials, CredentialsError, Secret};
pub use promoter::{
    ApprovalOutcome, ApprovalResult, EnvironmentHistory, HistoryEntry, PendingApproval, Promoter,
    PromoterConfig, PromotionOutcome, PromotionResult, RevertOutcome, RevertResult,
    default_cache_dir,
};
pub use repo::Identity;

use crate::core::promotion::plan::PlanError;

/// Errors of the Git side. Messages never contain credentials (URLs are shown with
/// their user-info masked).
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The local cache directory could not be created, locked or opened.
    #[error("git cache {dir}: {message}")]
    Cache {
        /// The cache directory.
        dir: String,
        /// What failed.
        message: String,
    },
    /// A local Git operation on the cache failed (corrupt object, unreadable tree).
    #[error("git {op}: {message}")]
    Local {
        /// The operation.
        op: String,
        /// What libgit2 said.
        message: String,
    },
    /// Fetching from the remote failed (unreachable, authentication, protocol).
    #[error("git {op} from {url} failed{}: {message}", if *.auth { " (authentication)" } else { "" })]
    Remote {
        /// The operation (`fetch`).
        op: String,
        /// The remote, user-info masked.
        url: String,
        /// What libgit2 said.
        message: String,
        /// It was an authentication failure.
        auth: bool,
    },
    /// A fetch or push did not finish within the timeout.
    #[error("git {op} to/from {url} timed out after {after:?}")]
    Timeout {
        /// The operation.
        op: String,
        /// The remote, user-info masked.
        url: String,
        /// The timeout.
        after: Duration,
    },
    /// The branch the environments live on does not exist on the remote.
    #[error("branch {branch} not found on {url}")]
    BranchMissing {
        /// The branch.
        branch: String,
        /// The remote, user-info masked.
        url: String,
    },
    /// The remote refused the push (pre-receive hook, branch protection, permissions,
    /// authentication). Nothing was changed, locally or remotely.
    #[error(
        "push to {branch} on {url} refused{}: {message}{}",
        if *.auth { " (authentication)" } else { "" },
        if .remote_output.is_empty() { String::new() } else { format!("\nremote said:\n{}", .remote_output) }
    )]
    PushRefused {
        /// The branch pushed to.
        branch: String,
        /// The remote, user-info masked.
        url: String,
        /// What libgit2 or the remote reported for the ref.
        message: String,
        /// The remote's messages (hook output).
        remote_output: String,
        /// It was an authentication failure.
        auth: bool,
    },
    /// Other promoters kept moving the branch: every attempt lost the race.
    #[error("push to {branch} lost the race {attempts} times in a row; giving up")]
    Contention {
        /// The branch.
        branch: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The approval branch exists but does not carry this promotion.
    #[error("branch {branch} exists on the remote but does not carry promotion {id}")]
    ApprovalBranchTaken {
        /// The branch.
        branch: String,
        /// The promotion id.
        id: String,
    },
    /// `approve` found no pending promotion and no landed one.
    #[error(
        "no pending promotion {id}: branch {branch} does not exist and the promotion is not on {main}"
    )]
    NoPendingPromotion {
        /// The promotion id.
        id: String,
        /// The approval branch looked for.
        branch: String,
        /// The main branch.
        main: String,
    },
    /// The version read from the source environment is not a valid version.
    #[error("{file}: field {field} holds {value:?}, which is not a version that can be promoted")]
    BadSourceVersion {
        /// The source environment's file.
        file: String,
        /// Its field.
        field: String,
        /// What it holds.
        value: String,
    },
    /// Planning failed: missing file or field, malformed YAML.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A blocking task panicked or was cancelled.
    #[error("git task failed: {0}")]
    Task(String),
}

impl GitError {
    /// Whether the error is about the caller's input (file, field, YAML) rather than Git.
    pub fn is_input_error(&self) -> bool {
        matches!(self, GitError::Plan(_) | GitError::BadSourceVersion { .. })
    }
}
