//! Plans of a promotion or a revert: what file changes to what, with which commit message,
//! or why nothing needs to change.
//!
//! The Git side gathers the facts (the file at the branch tip, whether the promotion id is
//! already on the branch, the commit that brought a version in) and this module decides.
//!
//! # Commit trailers
//!
//! A promotion commit ends with:
//!
//! ```text
//! Rollgate-Promotion: application-x/staging/1.2.3
//! Rollgate-App: application-x
//! Rollgate-From: dev
//! Rollgate-To: staging
//! Rollgate-Version: 1.2.3
//! Rollgate-Evidence: analysis success-rate Successful
//! ```
//!
//! `Rollgate-Promotion` is the stable id `<app>/<environment>/<version>`: the same
//! promotion always has the same id, so a retry finds it on the branch and commits
//! nothing. `Rollgate-From` is the source environment, or `-` when the version was given
//! directly. A revert commit carries `Rollgate-Revert: <id of the reverted promotion>`,
//! `Rollgate-App`, `Rollgate-To`, `Rollgate-Version` (the version restored),
//! `Rollgate-Reason` and `Rollgate-Evidence`; a reverted promotion may be promoted again.

use std::fmt;

use serde::Serialize;

use super::edit::{self, EditError};
use super::policy::{Approval, EnvironmentSpec, Version};

/// Trailer keys.
pub mod trailer {
    /// The stable promotion id `<app>/<env>/<version>`.
    pub const PROMOTION: &str = "Rollgate-Promotion";
    /// The application.
    pub const APP: &str = "Rollgate-App";
    /// The source environment (`-` when the version was given directly).
    pub const FROM: &str = "Rollgate-From";
    /// The target environment.
    pub const TO: &str = "Rollgate-To";
    /// The version written.
    pub const VERSION: &str = "Rollgate-Version";
    /// What the promotion or revert rests on (analysis result, reason).
    pub const EVIDENCE: &str = "Rollgate-Evidence";
    /// On a revert: the id of the reverted promotion.
    pub const REVERT: &str = "Rollgate-Revert";
    /// On a revert: why.
    pub const REASON: &str = "Rollgate-Reason";
    /// On a promotion landed by `rollgate approve`: the approval branch.
    pub const APPROVED: &str = "Rollgate-Approved";
}

/// The stable id of a promotion: application, target environment and version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct PromotionId {
    /// The application.
    pub app: String,
    /// The target environment.
    pub env: String,
    /// The version.
    pub version: String,
}

impl PromotionId {
    /// The id of promoting `version` of `app` into `env`.
    pub fn new(app: &str, env: &str, version: &str) -> Self {
        Self {
            app: app.to_owned(),
            env: env.to_owned(),
            version: version.to_owned(),
        }
    }

    /// The branch that carries this promotion while it waits for approval:
    /// `rollgate/promote/<app>/<env>/<version>`, with `:` and `@` of digests as `-`
    /// (they are not allowed in Git ref names).
    pub fn approval_branch(&self) -> String {
        let version: String = self
            .version
            .chars()
            .map(|c| if c == ':' || c == '@' { '-' } else { c })
            .collect();
        format!("rollgate/promote/{}/{}/{}", self.app, self.env, version)
    }
}

impl fmt::Display for PromotionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.app, self.env, self.version)
    }
}

/// The `Rollgate-*` trailers of a commit message, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trailers(pub Vec<(String, String)>);

impl Trailers {
    /// Parse every `Rollgate-<Key>: value` line of a commit message.
    pub fn parse(message: &str) -> Self {
        Self(
            message
                .lines()
                .filter(|l| l.starts_with("Rollgate-"))
                .filter_map(|l| l.split_once(": "))
                .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
                .collect(),
        )
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Whether a commit message carries the trailer `key: value` (fast check on raw text).
pub fn has_trailer(message: &str, key: &str, value: &str) -> bool {
    message.lines().any(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix(": "))
            .is_some_and(|v| v.trim() == value)
    })
}

/// Make free text safe for a trailer: one line, credentials in URLs masked, bounded.
pub fn one_line(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = redact_userinfo(flat.trim());
    if flat.chars().count() > 500 {
        let mut cut: String = flat.chars().take(497).collect();
        cut.push_str("...");
        cut
    } else {
        flat
    }
}

/// Mask the user-info part of every `scheme://user:secret@host` in `text`.
pub fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '/')
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(userinfo_end) => {
                out.push_str("***");
                out.push_str(&tail[userinfo_end..end]);
            }
            None => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Where a promoted version comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "env")]
pub enum Source {
    /// The version currently in this environment (`--from`).
    Environment(String),
    /// The version was given directly (`--version`).
    Direct,
}

impl Source {
    fn trailer(&self) -> &str {
        match self {
            Source::Environment(e) => e,
            Source::Direct => "-",
        }
    }
}

/// A promotion to plan.
#[derive(Debug, Clone)]
pub struct PromotionRequest<'a> {
    /// The application.
    pub app: &'a str,
    /// The target environment.
    pub env: &'a EnvironmentSpec,
    /// The version to write.
    pub version: &'a Version,
    /// Where it comes from.
    pub source: Source,
    /// What the promotion rests on (free text; made one line and credential-free).
    pub evidence: Option<&'a str>,
}

impl PromotionRequest<'_> {
    /// The promotion's stable id.
    pub fn id(&self) -> PromotionId {
        PromotionId::new(self.app, self.env.name.as_str(), self.version.as_str())
    }

    /// The commit message: a subject, a sentence, and the trailers.
    pub fn message(&self) -> String {
        let id = self.id();
        let evidence = self.evidence.map_or_else(|| "-".to_owned(), one_line);
        let from = match &self.source {
            Source::Environment(e) => format!(" from {e}"),
            Source::Direct => String::new(),
        };
        format!(
            "promote {app} {version} to {env}\n\n\
             Write {version} into {field} of {file}{from}.\n\n\
             {p}: {id}\n{a}: {app}\n{f}: {src}\n{t}: {env}\n{v}: {version}\n{e}: {evidence}\n",
            app = self.app,
            version = self.version,
            env = self.env.name,
            field = self.env.field,
            file = self.env.file,
            p = trailer::PROMOTION,
            a = trailer::APP,
            f = trailer::FROM,
            src = self.source.trailer(),
            t = trailer::TO,
            v = trailer::VERSION,
            e = trailer::EVIDENCE,
        )
    }
}

/// Facts about the target branch that a promotion plan needs (gathered by the Git side).
#[derive(Debug, Clone, Default)]
pub struct BranchFacts {
    /// The environment's file at the branch tip, `None` if it does not exist.
    pub file_text: Option<String>,
    /// A commit on the branch carrying this promotion id that no later commit reverted.
    pub landed: Option<String>,
    /// The tip of the approval branch if it exists and carries this promotion id.
    pub pending: Option<String>,
}

/// Where a promotion commit goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "branch")]
pub enum Target {
    /// Straight onto the environments' branch.
    Branch,
    /// Onto this approval branch, to wait for `rollgate approve` or a merge.
    ApprovalBranch(String),
}

/// A commit to make: one file gets new content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitPlan {
    /// The file in the repository.
    pub file: String,
    /// Its whole new content.
    pub text: String,
    /// The commit message (with trailers).
    pub message: String,
    /// The version in the field before the change.
    pub previous: String,
    /// Where the commit goes.
    pub target: Target,
}

/// What a promotion does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromotionDecision {
    /// The field already holds the version: nothing to commit.
    AlreadyAtVersion,
    /// The promotion id is already on the branch (and not reverted): nothing to commit,
    /// even though the field moved on since (a retry must not roll a later version back).
    AlreadyLanded {
        /// The commit carrying the id.
        commit: String,
    },
    /// The promotion already waits for approval on its branch.
    AlreadyPending {
        /// The approval branch.
        branch: String,
        /// Its tip.
        commit: String,
    },
    /// Make this commit.
    Commit(CommitPlan),
}

/// Errors of planning a promotion or a revert.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The environment's file is not in the repository.
    #[error("{file}: no such file on the branch (environment {env})")]
    FileMissing {
        /// The file.
        file: String,
        /// The environment.
        env: String,
    },
    /// The file could not be read or edited (malformed, field missing).
    #[error(transparent)]
    Edit(#[from] EditError),
    /// The commit that brought the version created the file: there is no earlier
    /// version to go back to.
    #[error(
        "{file}: commit {commit} created the file; there is no earlier version of {field} to revert to"
    )]
    NoEarlierVersion {
        /// The file.
        file: String,
        /// The field.
        field: String,
        /// The commit.
        commit: String,
    },
}

/// Decide what promoting `req` does, given the branch facts.
///
/// # Errors
/// [`PlanError::FileMissing`] or [`PlanError::Edit`] naming the file and field.
pub fn plan_promotion(
    req: &PromotionRequest<'_>,
    facts: &BranchFacts,
) -> Result<PromotionDecision, PlanError> {
    let file = req.env.file.as_str();
    let text = facts
        .file_text
        .as_deref()
        .ok_or_else(|| PlanError::FileMissing {
            file: file.to_owned(),
            env: req.env.name.to_string(),
        })?;
    let edit = edit::set_field(file, text, &req.env.field, req.version.as_str())?;
    if !edit.changed {
        return Ok(PromotionDecision::AlreadyAtVersion);
    }
    if let Some(commit) = &facts.landed {
        return Ok(PromotionDecision::AlreadyLanded {
            commit: commit.clone(),
        });
    }
    let target = match req.env.approval {
        Approval::None => Target::Branch,
        Approval::Manual => {
            let branch = req.id().approval_branch();
            if let Some(commit) = &facts.pending {
                return Ok(PromotionDecision::AlreadyPending {
                    branch,
                    commit: commit.clone(),
                });
            }
            Target::ApprovalBranch(branch)
        }
    };
    Ok(PromotionDecision::Commit(CommitPlan {
        file: file.to_owned(),
        text: edit.text,
        message: req.message(),
        previous: edit.previous,
        target,
    }))
}

/// The commit that brought a version into an environment, as found by the Git side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntroducingCommit {
    /// Its id.
    pub commit: String,
    /// Found by its `Rollgate-Promotion` trailer (`false`: by the history of the field).
    pub by_trailer: bool,
    /// The environment's file in the commit's parent (`None`: the commit created it).
    pub parent_text: Option<String>,
    /// Later commits on the branch that changed the same file.
    pub later_commits: Vec<String>,
    /// Other files the commit changed (left as they are by the revert).
    pub other_files: Vec<String>,
    /// The commit's `Rollgate-Evidence`, if any.
    pub evidence: Option<String>,
}

/// Facts a revert plan needs.
#[derive(Debug, Clone, Default)]
pub struct RevertFacts {
    /// The environment's file at the branch tip.
    pub file_text: Option<String>,
    /// The commit that brought the version in, if found.
    pub introducing: Option<IntroducingCommit>,
}

/// A revert to plan.
#[derive(Debug, Clone)]
pub struct RevertRequest<'a> {
    /// The application.
    pub app: &'a str,
    /// The environment.
    pub env: &'a EnvironmentSpec,
    /// The version to take out.
    pub version: &'a Version,
    /// Why (free text).
    pub reason: Option<&'a str>,
    /// What the revert rests on (free text, e.g. the failed analysis).
    pub evidence: Option<&'a str>,
}

/// How much a revert changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RevertMode {
    /// The file goes back to its content before the promotion commit (`git revert`).
    WholeChange,
    /// Later commits touched the file: only the field goes back.
    FieldOnly,
}

/// What a revert does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevertDecision {
    /// The environment does not hold the version (already reverted, or moved on).
    NotCurrent {
        /// What it holds.
        current: String,
    },
    /// No commit brought the version into the file (history has no such change).
    NotFound,
    /// Make this commit.
    Commit {
        /// The commit.
        plan: CommitPlan,
        /// Whole change or field only.
        mode: RevertMode,
        /// The reverted commit.
        reverted: String,
        /// The version restored.
        restored: String,
    },
}

/// Decide what reverting `req` does.
///
/// # Errors
/// [`PlanError`] naming the file and field.
pub fn plan_revert(
    req: &RevertRequest<'_>,
    facts: &RevertFacts,
) -> Result<RevertDecision, PlanError> {
    let file = req.env.file.as_str();
    let field = &req.env.field;
    let text = facts
        .file_text
        .as_deref()
        .ok_or_else(|| PlanError::FileMissing {
            file: file.to_owned(),
            env: req.env.name.to_string(),
        })?;
    let current = edit::read_field(file, text, field)?;
    if current != req.version.as_str() {
        return Ok(RevertDecision::NotCurrent { current });
    }
    let Some(intro) = &facts.introducing else {
        return Ok(RevertDecision::NotFound);
    };
    let parent = intro
        .parent_text
        .as_deref()
        .ok_or_else(|| PlanError::NoEarlierVersion {
            file: file.to_owned(),
            field: field.to_string(),
            commit: intro.commit.clone(),
        })?;
    let restored = edit::read_field(file, parent, field)?;
    let (new_text, mode) = if intro.later_commits.is_empty() {
        (parent.to_owned(), RevertMode::WholeChange)
    } else {
        (
            edit::set_field(file, text, field, &restored)?.text,
            RevertMode::FieldOnly,
        )
    };
    let id = PromotionId::new(req.app, req.env.name.as_str(), req.version.as_str());
    let reason = req.reason.map_or_else(|| "-".to_owned(), one_line);
    let evidence = req
        .evidence
        .map(one_line)
        .or_else(|| intro.evidence.clone())
        .unwrap_or_else(|| "-".to_owned());
    let how = match mode {
        RevertMode::WholeChange => format!(
            "This reverts commit {}{}.",
            intro.commit,
            if intro.other_files.is_empty() {
                String::new()
            } else {
                format!(
                    " for {file}; the commit's other files ({}) are left as they are",
                    intro.other_files.join(", ")
                )
            }
        ),
        RevertMode::FieldOnly => format!(
            "This reverts the change of {field} in {file} made by commit {}.\n\
             Only the field goes back to {restored}: later commits touched the file ({}).",
            intro.commit,
            intro.later_commits.join(", ")
        ),
    };
    let found = if intro.by_trailer {
        "found by its Rollgate-Promotion trailer"
    } else {
        "found in the history of the field"
    };
    let message = format!(
        "revert {app} {version} in {env}\n\n\
         {how}\nThe commit that brought {version} into {env} was {found}.\nReason: {reason}\n\n\
         {r}: {id}\n{a}: {app}\n{t}: {env}\n{v}: {restored}\n{rs}: {reason}\n{e}: {evidence}\n",
        app = req.app,
        version = req.version,
        env = req.env.name,
        r = trailer::REVERT,
        a = trailer::APP,
        t = trailer::TO,
        v = trailer::VERSION,
        rs = trailer::REASON,
        e = trailer::EVIDENCE,
    );
    Ok(RevertDecision::Commit {
        plan: CommitPlan {
            file: file.to_owned(),
            text: new_text,
            message,
            previous: current,
            target: Target::Branch,
        },
        mode,
        reverted: intro.commit.clone(),
        restored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::promotion::policy::PolicyFile;

    const POLICY: &str = "\
apiVersion: rollgate.dev/v1alpha1
kind: PromotionPolicy
metadata: {name: app}
spec:
  repository: {url: file:///r.git}
  environments:
    - {name: dev, file: app/values-dev.yaml, field: image.tag}
    - {name: prod, file: app/values-prod.yaml, field: image.tag, approval: manual}
";

    fn policy() -> PolicyFile {
        PolicyFile::parse("p.yaml", POLICY).expect("policy")
    }

    #[test]
    fn promotion_commit_has_trailers_and_only_the_token_changes() {
        let p = policy();
        let env = p.environment("app", "dev").expect("dev");
        let v: Version = "1.2.4".parse().expect("v");
        let req = PromotionRequest {
            app: "app",
            env,
            version: &v,
            source: Source::Direct,
            evidence: Some("analysis ok\nsee https://u:secret@prom/x"),
        };
        let facts = BranchFacts {
            file_text: Some("image:\n  tag: 1.2.3 # c\n".into()),
            ..Default::default()
        };
        let PromotionDecision::Commit(plan) = plan_promotion(&req, &facts).expect("plan") else {
            panic!("expected a commit")
        };
        assert_eq!(plan.text, "image:\n  tag: 1.2.4 # c\n");
        assert_eq!(plan.previous, "1.2.3");
        assert_eq!(plan.target, Target::Branch);
        let t = Trailers::parse(&plan.message);
        assert_eq!(t.get(trailer::PROMOTION), Some("app/dev/1.2.4"));
        assert_eq!(t.get(trailer::FROM), Some("-"));
        assert_eq!(t.get(trailer::TO), Some("dev"));
        assert_eq!(t.get(trailer::VERSION), Some("1.2.4"));
        let ev = t.get(trailer::EVIDENCE).expect("evidence");
        assert!(!ev.contains("secret") && ev.contains("analysis ok"), "{ev}");
        assert!(has_trailer(
            &plan.message,
            trailer::PROMOTION,
            "app/dev/1.2.4"
        ));
        assert!(!has_trailer(
            &plan.message,
            trailer::PROMOTION,
            "app/dev/1.2"
        ));
    }

    #[test]
    fn idempotency_decisions() {
        let p = policy();
        let v: Version = "2".parse().expect("v");
        let dev = p.environment("app", "dev").expect("dev");
        let req = PromotionRequest {
            app: "app",
            env: dev,
            version: &v,
            source: Source::Environment("ci".into()),
            evidence: None,
        };
        let at = BranchFacts {
            file_text: Some("image: {tag: \"2\"}\n".into()),
            landed: Some("abc".into()),
            pending: None,
        };
        assert_eq!(
            plan_promotion(&req, &at).expect("plan"),
            PromotionDecision::AlreadyAtVersion
        );
        let moved_on = BranchFacts {
            file_text: Some("image: {tag: \"3\"}\n".into()),
            landed: Some("abc".into()),
            pending: None,
        };
        assert_eq!(
            plan_promotion(&req, &moved_on).expect("plan"),
            PromotionDecision::AlreadyLanded {
                commit: "abc".into()
            }
        );
        let prod = p.environment("app", "prod").expect("prod");
        let req = PromotionRequest { env: prod, ..req };
        let facts = BranchFacts {
            file_text: Some("image: {tag: \"1\"}\n".into()),
            landed: None,
            pending: None,
        };
        let PromotionDecision::Commit(plan) = plan_promotion(&req, &facts).expect("plan") else {
            panic!("commit expected")
        };
        assert_eq!(
            plan.target,
            Target::ApprovalBranch("rollgate/promote/app/prod/2".into())
        );
        let pending = BranchFacts {
            pending: Some("def".into()),
            ..facts
        };
        assert!(matches!(
            plan_promotion(&req, &pending).expect("plan"),
            PromotionDecision::AlreadyPending { .. }
        ));
        let missing = BranchFacts::default();
        let err = plan_promotion(&req, &missing).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "app/values-prod.yaml: no such file on the branch (environment prod)"
        );
    }

    #[test]
    fn revert_whole_or_field_only() {
        let p = policy();
        let dev = p.environment("app", "dev").expect("dev");
        let v: Version = "2".parse().expect("v");
        let req = RevertRequest {
            app: "app",
            env: dev,
            version: &v,
            reason: Some("error rate 7%"),
            evidence: None,
        };
        let intro = IntroducingCommit {
            commit: "c2".into(),
            by_trailer: true,
            parent_text: Some("image:\n  tag: '1'\n".into()),
            later_commits: vec![],
            other_files: vec![],
            evidence: Some("canary ok".into()),
        };
        let facts = RevertFacts {
            file_text: Some("image:\n  tag: '2'\n".into()),
            introducing: Some(intro.clone()),
        };
        let RevertDecision::Commit {
            plan,
            mode,
            restored,
            ..
        } = plan_revert(&req, &facts).expect("plan")
        else {
            panic!("commit expected")
        };
        assert_eq!(mode, RevertMode::WholeChange);
        assert_eq!(restored, "1");
        assert_eq!(plan.text, "image:\n  tag: '1'\n");
        assert!(
            plan.message.contains("This reverts commit c2."),
            "{}",
            plan.message
        );
        assert!(plan.message.contains("Reason: error rate 7%"));
        let t = Trailers::parse(&plan.message);
        assert_eq!(t.get(trailer::REVERT), Some("app/dev/2"));
        assert_eq!(t.get(trailer::EVIDENCE), Some("canary ok"));

        let later = RevertFacts {
            file_text: Some("# new comment\nimage:\n  tag: '2'\n".into()),
            introducing: Some(IntroducingCommit {
                later_commits: vec!["c3".into()],
                ..intro
            }),
        };
        let RevertDecision::Commit { plan, mode, .. } = plan_revert(&req, &later).expect("plan")
        else {
            panic!("commit expected")
        };
        assert_eq!(mode, RevertMode::FieldOnly);
        assert_eq!(plan.text, "# new comment\nimage:\n  tag: '1'\n");
        assert!(
            plan.message
                .contains("Only the field goes back to 1: later commits touched the file (c3)")
        );

        let done = RevertFacts {
            file_text: Some("image:\n  tag: '1'\n".into()),
            introducing: None,
        };
        assert_eq!(
            plan_revert(&req, &done).expect("plan"),
            RevertDecision::NotCurrent {
                current: "1".into()
            }
        );
    }

    #[test]
    fn redaction_and_branch_names() {
        assert_eq!(
            redact_userinfo("see https://bob:pw@host/x and ssh://git@h/r"),
            "see https://***@host/x and ssh://***@h/r"
        );
        assert_eq!(
            PromotionId::new("a", "prod", "1.0@sha256:ab").approval_branch(),
            "rollgate/promote/a/prod/1.0-sha256-ab"
        );
    }
}
