//! The blocking Git layer on git2: a bare cache clone per remote, fetch, read, commit,
//! push, and the history walks. Every function here blocks; `super::Promoter` calls them
//! inside `tokio::task::spawn_blocking`.
//!
//! There is no work tree: a promotion reads the file from the fetched tip, builds the new
//! tree and commit in the object database and pushes the commit. A refused push
//! therefore leaves nothing behind but an unreferenced object.
//!
//! Pushes are compare-and-swap: the remote branch moves only if it still is the commit
//! the promotion was built on. Over SSH and HTTPS the remote's `receive-pack` does that
//! (and runs its hooks). libgit2's own `file://` transport force-updates the remote ref,
//! which would lose concurrent promotions, so for `file://` remotes rollgate copies the
//! new objects into the remote's object database and moves the ref with
//! `reference_matching` (an atomic compare-and-swap); server-side hooks do not run there,
//! as with any in-process `file://` writer.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use git2::{ErrorCode, Oid, Repository};

use super::GitError;
use super::credentials::Credentials;
use crate::core::promotion::edit;
use crate::core::promotion::plan::{self, IntroducingCommit, trailer};
use crate::core::promotion::policy::VersionField;

/// Where fetched remote branches are kept in the cache repository.
pub(crate) const REMOTE_NS: &str = "refs/rollgate/remote/";

/// The remote end: URL, credentials and the bound of one fetch or push.
#[derive(Debug, Clone)]
pub(crate) struct RemoteSpec {
    pub url: String,
    pub credentials: Credentials,
    pub timeout: Duration,
}

impl RemoteSpec {
    /// The URL with any user-info masked, for messages.
    pub fn shown(&self) -> String {
        plan::redact_userinfo(&self.url)
    }

    /// The path of a `file://` remote.
    fn local_path(&self) -> Option<PathBuf> {
        self.url.strip_prefix("file://").map(PathBuf::from)
    }
}

/// Who commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Author and committer name.
    pub name: String,
    /// Author and committer e-mail.
    pub email: String,
}

impl Default for Identity {
    fn default() -> Self {
        Self {
            name: "rollgate".to_owned(),
            email: "rollgate@localhost".to_owned(),
        }
    }
}

/// The remote's branches after a fetch: full ref name → commit.
pub(crate) type RemoteHeads = BTreeMap<String, Oid>;

/// A bare cache clone, locked for this process while open.
pub(crate) struct Cache {
    pub repo: Repository,
    _lock: File,
}

fn git_err(op: &str, e: &git2::Error) -> GitError {
    GitError::Local {
        op: op.to_owned(),
        message: plan::redact_userinfo(e.message()),
    }
}

impl Cache {
    /// Open (or create) the cache under `dir`, waiting for other processes using it.
    pub fn open(dir: &Path) -> Result<Self, GitError> {
        let io = |e: std::io::Error| GitError::Cache {
            dir: dir.display().to_string(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock = File::create(dir.join("lock")).map_err(io)?;
        lock.lock().map_err(io)?;
        let path = dir.join("repo.git");
        let repo = match Repository::open_bare(&path) {
            Ok(r) => r,
            Err(_) => Repository::init_bare(&path).map_err(|e| GitError::Cache {
                dir: dir.display().to_string(),
                message: e.message().to_owned(),
            })?,
        };
        Ok(Self { repo, _lock: lock })
    }

    /// Fetch `branch` and every branch starting with one of `prefixes` into
    /// [`REMOTE_NS`]; return the remote's current branches.
    pub fn fetch(
        &self,
        remote: &RemoteSpec,
        branch: &str,
        prefixes: &[String],
    ) -> Result<RemoteHeads, GitError> {
        if let Some(path) = remote.local_path() {
            return self.fetch_local(remote, &path, branch, prefixes);
        }
        let mut refspecs = vec![format!("+refs/heads/{branch}:{REMOTE_NS}{branch}")];
        for p in prefixes {
            refspecs.push(format!("+refs/heads/{p}*:{REMOTE_NS}{p}*"));
        }
        let deadline = Instant::now() + remote.timeout;
        let mut callbacks = git2::RemoteCallbacks::new();
        callbacks.credentials(remote.credentials.callback());
        callbacks.transfer_progress(move |_| Instant::now() < deadline);
        callbacks.sideband_progress(move |_| Instant::now() < deadline);
        let mut options = git2::FetchOptions::new();
        options
            .remote_callbacks(callbacks)
            .download_tags(git2::AutotagOption::None)
            .update_fetchhead(false);
        let mut handle = self
            .repo
            .remote_anonymous(&remote.url)
            .map_err(|e| git_err("open remote", &e))?;
        handle
            .fetch(&refspecs, Some(&mut options), None)
            .map_err(|e| transfer_error("fetch", remote, &e, deadline))?;
        let heads: RemoteHeads = handle
            .list()
            .map_err(|e| git_err("list remote branches", &e))?
            .iter()
            .filter(|h| h.name().starts_with("refs/heads/"))
            .map(|h| (h.name().to_owned(), h.oid()))
            .collect();
        self.forget_stale(prefixes, &heads)?;
        Ok(heads)
    }

    /// Fetch from a `file://` remote by reading its refs and copying the objects the
    /// cache lacks (libgit2's local transport re-negotiates over the remote's whole
    /// history on every fetch, which costs a CLI process hundreds of milliseconds).
    fn fetch_local(
        &self,
        remote: &RemoteSpec,
        path: &Path,
        branch: &str,
        prefixes: &[String],
    ) -> Result<RemoteHeads, GitError> {
        let failed = |e: git2::Error| GitError::Remote {
            op: "fetch".to_owned(),
            url: remote.shown(),
            message: plan::redact_userinfo(e.message()),
            auth: false,
        };
        let source = Repository::open_bare(path).map_err(failed)?;
        let mut heads = RemoteHeads::new();
        for r in source.references_glob("refs/heads/*").map_err(failed)? {
            let r = r.map_err(failed)?;
            if let (Ok(name), Ok(resolved)) = (r.name(), r.resolve())
                && let Some(oid) = resolved.target()
            {
                heads.insert(name.to_owned(), oid);
            }
        }
        let src_odb = source.odb().map_err(failed)?;
        let dst_odb = self.repo.odb().map_err(|e| git_err("open cache", &e))?;
        for (name, oid) in &heads {
            let short_name = &name["refs/heads/".len()..];
            let wanted =
                short_name == branch || prefixes.iter().any(|p| short_name.starts_with(p.as_str()));
            if !wanted {
                continue;
            }
            copy_missing(&source, &src_odb, &dst_odb, *oid).map_err(failed)?;
            self.repo
                .reference(
                    &format!("{REMOTE_NS}{short_name}"),
                    *oid,
                    true,
                    "rollgate: fetch",
                )
                .map_err(|e| git_err("update ref", &e))?;
        }
        self.forget_stale(prefixes, &heads)?;
        Ok(heads)
    }

    /// Forget local copies of branches under `prefixes` the remote no longer has.
    fn forget_stale(&self, prefixes: &[String], heads: &RemoteHeads) -> Result<(), GitError> {
        for p in prefixes {
            let pattern = format!("{REMOTE_NS}{p}*");
            let stale: Vec<String> = self
                .repo
                .references_glob(&pattern)
                .map_err(|e| git_err("list branches", &e))?
                .filter_map(Result::ok)
                .filter_map(|r| r.name().ok().map(str::to_owned))
                .filter(|n| {
                    let head = format!("refs/heads/{}", &n[REMOTE_NS.len()..]);
                    !heads.contains_key(&head)
                })
                .collect();
            for name in stale {
                if let Ok(mut r) = self.repo.find_reference(&name) {
                    let _ = r.delete();
                }
            }
        }
        Ok(())
    }

    /// The blob id of `path` in `commit`.
    pub fn blob_id(&self, commit: Oid, path: &str) -> Result<Option<Oid>, GitError> {
        let tree = self
            .repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(|e| git_err("read commit", &e))?;
        match tree.get_path(Path::new(path)) {
            Ok(entry) if entry.kind() == Some(git2::ObjectType::Blob) => Ok(Some(entry.id())),
            Ok(_) => Ok(None),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(git_err("read tree", &e)),
        }
    }

    /// The text of a blob.
    pub fn blob_text(&self, blob: Oid, path: &str) -> Result<String, GitError> {
        let blob = self
            .repo
            .find_blob(blob)
            .map_err(|e| git_err("read file", &e))?;
        String::from_utf8(blob.content().to_vec()).map_err(|_| GitError::Local {
            op: "read file".to_owned(),
            message: format!("{path} is not UTF-8 text"),
        })
    }

    /// The text of `path` in `commit`, `None` if absent.
    pub fn read(&self, commit: Oid, path: &str) -> Result<Option<String>, GitError> {
        self.blob_id(commit, path)?
            .map(|b| self.blob_text(b, path))
            .transpose()
    }

    /// A commit on top of `parent` in which `path` holds `text`.
    pub fn commit_file(
        &self,
        parent: Oid,
        path: &str,
        text: &str,
        message: &str,
        identity: &Identity,
    ) -> Result<Oid, GitError> {
        let repo = &self.repo;
        let parent = repo
            .find_commit(parent)
            .map_err(|e| git_err("read commit", &e))?;
        let base = parent.tree().map_err(|e| git_err("read tree", &e))?;
        let mode = base
            .get_path(Path::new(path))
            .map(|e| e.filemode())
            .unwrap_or(0o100_644);
        let mode = if mode == 0o100_755 {
            git2::FileMode::BlobExecutable
        } else {
            git2::FileMode::Blob
        };
        let blob = repo
            .blob(text.as_bytes())
            .map_err(|e| git_err("write file", &e))?;
        let tree = git2::build::TreeUpdateBuilder::new()
            .upsert(path, blob, mode)
            .create_updated(repo, &base)
            .map_err(|e| git_err("write tree", &e))?;
        let tree = repo.find_tree(tree).map_err(|e| git_err("read tree", &e))?;
        let sig = git2::Signature::now(&identity.name, &identity.email)
            .map_err(|e| git_err("make signature", &e))?;
        repo.commit(None, &sig, &sig, message, &tree, &[&parent])
            .map_err(|e| git_err("write commit", &e))
    }

    /// Move the remote's `refs/heads/<branch>` from `expected` (`None`: create it) to
    /// `commit`, only if it still is `expected`.
    pub fn push(
        &self,
        remote: &RemoteSpec,
        commit: Oid,
        branch: &str,
        expected: Option<Oid>,
    ) -> Result<(), PushFailure> {
        match remote.local_path() {
            Some(path) => self.push_local(&path, commit, branch, expected),
            None => self.push_network(remote, Some(commit), branch),
        }
    }

    /// Delete the remote's `refs/heads/<branch>`.
    pub fn delete_branch(&self, remote: &RemoteSpec, branch: &str) -> Result<(), PushFailure> {
        match remote.local_path() {
            Some(path) => {
                let target = Repository::open_bare(&path).map_err(PushFailure::git)?;
                match target.find_reference(&format!("refs/heads/{branch}")) {
                    Ok(mut r) => r.delete().map_err(PushFailure::git),
                    Err(_) => Ok(()),
                }
            }
            None => self.push_network(remote, None, branch),
        }
    }

    fn push_local(
        &self,
        path: &Path,
        commit: Oid,
        branch: &str,
        expected: Option<Oid>,
    ) -> Result<(), PushFailure> {
        let target = Repository::open_bare(path).map_err(PushFailure::git)?;
        let odb = target.odb().map_err(PushFailure::git)?;
        let source = self.repo.odb().map_err(PushFailure::git)?;
        copy_missing(&self.repo, &source, &odb, commit).map_err(PushFailure::git)?;
        let name = format!("refs/heads/{branch}");
        let message = "rollgate: push";
        let result = match expected {
            Some(old) => target.reference_matching(&name, commit, true, old, message),
            None => target.reference(&name, commit, false, message),
        };
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.code(),
                    ErrorCode::Modified | ErrorCode::Exists | ErrorCode::Locked
                ) =>
            {
                Err(PushFailure::Moved)
            }
            Err(e) => Err(PushFailure::git(e)),
        }
    }

    fn push_network(
        &self,
        remote: &RemoteSpec,
        commit: Option<Oid>,
        branch: &str,
    ) -> Result<(), PushFailure> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let deadline = Instant::now() + remote.timeout;
        let temp = format!(
            "refs/rollgate/push/{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let refspec = match commit {
            Some(c) => {
                self.repo
                    .reference(&temp, c, true, "rollgate: push")
                    .map_err(PushFailure::git)?;
                format!("{temp}:refs/heads/{branch}")
            }
            None => format!(":refs/heads/{branch}"),
        };
        let rejected: Arc<Mutex<Option<String>>> = Arc::default();
        let output: Arc<Mutex<String>> = Arc::default();
        let result = {
            let mut callbacks = git2::RemoteCallbacks::new();
            callbacks.credentials(remote.credentials.callback());
            let r = Arc::clone(&rejected);
            callbacks.push_update_reference(move |_name, status| {
                if let (Some(s), Ok(mut slot)) = (status, r.lock()) {
                    *slot = Some(s.to_owned());
                }
                Ok(())
            });
            let o = Arc::clone(&output);
            callbacks.sideband_progress(move |data| {
                if let Ok(mut out) = o.lock()
                    && out.len() < 4096
                {
                    out.push_str(&String::from_utf8_lossy(data));
                }
                Instant::now() < deadline
            });
            callbacks.push_transfer_progress(move |_, _, _| {});
            let mut options = git2::PushOptions::new();
            options.remote_callbacks(callbacks);
            self.repo
                .remote_anonymous(&remote.url)
                .and_then(|mut h| h.push(&[refspec.as_str()], Some(&mut options)))
        };
        if commit.is_some()
            && let Ok(mut r) = self.repo.find_reference(&temp)
        {
            let _ = r.delete();
        }
        let hook_output = output
            .lock()
            .map(|o| plan::redact_userinfo(o.trim()))
            .unwrap_or_default();
        if let Err(e) = result {
            if e.code() == ErrorCode::NotFastForward {
                return Err(PushFailure::Moved);
            }
            if Instant::now() >= deadline {
                return Err(PushFailure::TimedOut);
            }
            return Err(PushFailure::Refused {
                message: plan::redact_userinfo(e.message()),
                remote_output: hook_output,
                auth: e.code() == ErrorCode::Auth || e.class() == git2::ErrorClass::Http,
            });
        }
        match rejected.lock().ok().and_then(|r| r.clone()) {
            Some(status) if is_race(&status) => Err(PushFailure::Moved),
            Some(status) => Err(PushFailure::Refused {
                message: status,
                remote_output: hook_output,
                auth: false,
            }),
            None => Ok(()),
        }
    }

    /// The newest commit reachable from `tip` carrying `Rollgate-Promotion: id` that no
    /// newer commit reverted (`Rollgate-Revert: id`).
    pub fn find_landed(&self, tip: Oid, id: &str) -> Result<Option<Oid>, GitError> {
        let mut walk = self
            .repo
            .revwalk()
            .map_err(|e| git_err("walk history", &e))?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL)
            .map_err(|e| git_err("walk history", &e))?;
        walk.push(tip).map_err(|e| git_err("walk history", &e))?;
        for oid in walk {
            let oid = oid.map_err(|e| git_err("walk history", &e))?;
            let commit = self
                .repo
                .find_commit(oid)
                .map_err(|e| git_err("read commit", &e))?;
            let message = commit.message_raw().unwrap_or("");
            if !message.contains("Rollgate-") {
                continue;
            }
            if plan::has_trailer(message, trailer::REVERT, id) {
                return Ok(None);
            }
            if plan::has_trailer(message, trailer::PROMOTION, id) {
                return Ok(Some(oid));
            }
        }
        Ok(None)
    }

    /// The commit that brought `version` into `field` of `path`: by its promotion
    /// trailer first, by the first-parent history of the field otherwise.
    pub fn introducing(
        &self,
        tip: Oid,
        path: &str,
        field: &VersionField,
        version: &str,
        id: &str,
    ) -> Result<Option<IntroducingCommit>, GitError> {
        let (found, by_trailer) = match self.find_landed(tip, id)? {
            Some(c) => (c, true),
            None => match self.field_change(tip, path, field, Some(version))? {
                Some(c) => (c, false),
                None => return Ok(None),
            },
        };
        let commit = self
            .repo
            .find_commit(found)
            .map_err(|e| git_err("read commit", &e))?;
        let parent = commit.parent_id(0).ok();
        let parent_text = match parent {
            Some(p) => self.read(p, path)?,
            None => None,
        };
        let mut other_files = Vec::new();
        if let Some(p) = parent {
            let a = self
                .repo
                .find_commit(p)
                .and_then(|c| c.tree())
                .map_err(|e| git_err("read tree", &e))?;
            let b = commit.tree().map_err(|e| git_err("read tree", &e))?;
            let diff = self
                .repo
                .diff_tree_to_tree(Some(&a), Some(&b), None)
                .map_err(|e| git_err("diff", &e))?;
            for d in diff.deltas() {
                if let Some(p) = d.new_file().path().or_else(|| d.old_file().path()) {
                    let p = p.to_string_lossy().into_owned();
                    if p != path {
                        other_files.push(p);
                    }
                }
            }
        }
        let mut later = Vec::new();
        if self.blob_id(tip, path)? != self.blob_id(found, path)? {
            let mut walk = self
                .repo
                .revwalk()
                .map_err(|e| git_err("walk history", &e))?;
            walk.push(tip).map_err(|e| git_err("walk history", &e))?;
            walk.hide(found).map_err(|e| git_err("walk history", &e))?;
            for oid in walk {
                let oid = oid.map_err(|e| git_err("walk history", &e))?;
                let c = self
                    .repo
                    .find_commit(oid)
                    .map_err(|e| git_err("read commit", &e))?;
                let mine = self.blob_id(oid, path)?;
                let mut changed = c.parent_count() > 0;
                for p in c.parent_ids() {
                    if self.blob_id(p, path)? == mine {
                        changed = false;
                    }
                }
                if changed {
                    later.push(short(oid));
                }
            }
            if later.is_empty() {
                later.push(short(tip));
            }
        }
        let evidence = plan::Trailers::parse(commit.message_raw().unwrap_or(""))
            .get(trailer::EVIDENCE)
            .map(str::to_owned);
        Ok(Some(IntroducingCommit {
            commit: found.to_string(),
            by_trailer,
            parent_text,
            later_commits: later,
            other_files,
            evidence,
        }))
    }

    /// Along the first-parent history from `tip`, the newest commit whose change set
    /// `field` of `path` to `value` (`None`: to the value it has at `tip`).
    pub fn field_change(
        &self,
        tip: Oid,
        path: &str,
        field: &VersionField,
        value: Option<&str>,
    ) -> Result<Option<Oid>, GitError> {
        let read_value = |blob: Option<Oid>| -> Result<Option<String>, GitError> {
            match blob {
                None => Ok(None),
                Some(b) => Ok(edit::read_field(path, &self.blob_text(b, path)?, field).ok()),
            }
        };
        let mut at = tip;
        let mut blob = self.blob_id(at, path)?;
        let mut current = read_value(blob)?;
        let target = match value {
            Some(v) => Some(v.to_owned()),
            None => current.clone(),
        };
        let Some(target) = target else {
            return Ok(None);
        };
        loop {
            let commit = self
                .repo
                .find_commit(at)
                .map_err(|e| git_err("read commit", &e))?;
            let Ok(parent) = commit.parent_id(0) else {
                return Ok((current.as_deref() == Some(target.as_str())).then_some(at));
            };
            let parent_blob = self.blob_id(parent, path)?;
            let parent_value = if parent_blob == blob {
                current.clone()
            } else {
                read_value(parent_blob)?
            };
            if current.as_deref() == Some(target.as_str())
                && parent_value.as_deref() != Some(target.as_str())
            {
                return Ok(Some(at));
            }
            at = parent;
            blob = parent_blob;
            current = parent_value;
        }
    }
}

/// The first 12 hex digits of a commit id.
pub(crate) fn short(oid: Oid) -> String {
    let mut s = oid.to_string();
    s.truncate(12);
    s
}

fn is_race(status: &str) -> bool {
    let s = status.to_ascii_lowercase();
    s.contains("non-fast-forward")
        || s.contains("fetch first")
        || s.contains("stale info")
        || s.contains("failed to lock")
        || s.contains("cannot lock")
}

/// Copy `oid` and everything it needs that `dst` lacks from `src`. Objects are written
/// children first, so an interrupted copy never leaves a commit or tree whose contents
/// are missing (the walk stops at objects `dst` has, trusting that invariant).
fn copy_missing(
    repo: &Repository,
    src: &git2::Odb<'_>,
    dst: &git2::Odb<'_>,
    oid: Oid,
) -> Result<(), git2::Error> {
    let mut seen = std::collections::HashSet::new();
    let mut missing = Vec::new();
    let mut stack = vec![oid];
    while let Some(oid) = stack.pop() {
        if !seen.insert(oid) || dst.exists(oid) {
            continue;
        }
        let object = src.read(oid)?;
        match object.kind() {
            git2::ObjectType::Commit => {
                let c = repo.find_commit(oid)?;
                stack.push(c.tree_id());
                stack.extend(c.parent_ids());
            }
            git2::ObjectType::Tree => {
                let t = repo.find_tree(oid)?;
                stack.extend(t.iter().map(|e| e.id()));
            }
            _ => {}
        }
        missing.push(oid);
    }
    for oid in missing.iter().rev() {
        let object = src.read(*oid)?;
        dst.write(object.kind(), object.data())?;
    }
    Ok(())
}

/// Why a push did not land.
#[derive(Debug)]
pub(crate) enum PushFailure {
    /// The remote branch is no longer the commit the promotion was built on (a race):
    /// fetch, re-plan and retry.
    Moved,
    /// The push ran out of time.
    TimedOut,
    /// The remote refused it (hook, protection, authentication) or the transport failed.
    Refused {
        message: String,
        remote_output: String,
        auth: bool,
    },
}

impl PushFailure {
    fn git(e: git2::Error) -> Self {
        Self::Refused {
            message: plan::redact_userinfo(e.message()),
            remote_output: String::new(),
            auth: false,
        }
    }
}

fn transfer_error(op: &str, remote: &RemoteSpec, e: &git2::Error, deadline: Instant) -> GitError {
    if Instant::now() >= deadline {
        return GitError::Timeout {
            op: op.to_owned(),
            url: remote.shown(),
            after: remote.timeout,
        };
    }
    GitError::Remote {
        op: op.to_owned(),
        url: remote.shown(),
        message: plan::redact_userinfo(e.message()),
        auth: e.code() == ErrorCode::Auth,
    }
}
