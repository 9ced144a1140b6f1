//! The demo's GitOps side: a bare remote holding `application-x/values-{env}.yaml`, a
//! working clone where "CI" commits new versions to dev, and a sync loop standing in for
//! Argo CD (fetch, read each environment's `image.tag`, set that environment's Deployment
//! image). The git CLI plays these outside actors; rollgate's own Git work goes through
//! its controllers and `rollgate approve`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde_json::json;

use super::observe::Journal;
use super::procs;
use super::{APP, DemoError, ENVIRONMENTS, IMAGE, POLICY};
use crate::controller::workload::image_tag;

/// The deploy repository.
pub struct DeployRepo {
    /// The bare remote (what Argo CD and the controllers use).
    pub remote: PathBuf,
    /// CI's working clone.
    pub work: PathBuf,
    git: PathBuf,
}

/// One commit on `main`, newest first in [`DeployRepo::history`].
#[derive(Debug, Clone, Serialize)]
pub struct Commit {
    /// Full hash.
    pub sha: String,
    /// Author name.
    pub author: String,
    /// First line of the message.
    pub subject: String,
    /// `Rollgate-*` trailers.
    pub trailers: BTreeMap<String, String>,
    /// Whether it is a revert (`Rollgate-Revert` trailer).
    pub revert: bool,
}

/// The file of `env`, relative to the repository root.
pub fn values_path(env: &str) -> String {
    format!("{POLICY}/values-{env}.yaml")
}

fn values(env: &str, version: &str) -> String {
    format!(
        "# {POLICY} in {env}: synced into the cluster by the demo's Argo CD stand-in\n\
         replicaCount: 1\nimage:\n  repository: {IMAGE}\n  tag: \"{version}\"   # promoted by rollgate\n"
    )
}

impl DeployRepo {
    /// Create the remote and the clone with `version` in every environment.
    ///
    /// # Errors
    /// git missing or failing.
    pub async fn create(dir: &Path, version: &str) -> Result<Self, DemoError> {
        let git = super::netns::require("git", "git")?;
        let remote = dir.join("deploy.git");
        let work = dir.join("ci-clone");
        let repo = Self { remote, work, git };
        let r = repo.remote.to_string_lossy().into_owned();
        let w = repo.work.to_string_lossy().into_owned();
        repo.git(
            None,
            &["init", "--quiet", "--bare", "--initial-branch=main", &r],
        )
        .await?;
        repo.git(None, &["init", "--quiet", "--initial-branch=main", &w])
            .await?;
        repo.git(Some(&repo.work), &["remote", "add", "origin", &r])
            .await?;
        std::fs::create_dir_all(repo.work.join(POLICY)).map_err(|source| DemoError::Io {
            path: repo.work.join(POLICY),
            source,
        })?;
        for env in ENVIRONMENTS {
            super::cluster::write(
                &repo.work.join(values_path(env.name)),
                &values(env.name, version),
            )?;
        }
        repo.git(Some(&repo.work), &["add", "."]).await?;
        repo.git(
            Some(&repo.work),
            &[
                "commit",
                "--quiet",
                "-m",
                &format!("{POLICY}: {version} in every environment"),
            ],
        )
        .await?;
        repo.git(Some(&repo.work), &["push", "--quiet", "origin", "main"])
            .await?;
        Ok(repo)
    }

    /// The remote's URL for the PromotionPolicy.
    pub fn url(&self) -> String {
        format!("file://{}", self.remote.display())
    }

    async fn git(&self, dir: Option<&Path>, args: &[&str]) -> Result<String, DemoError> {
        let mut all: Vec<&str> = vec![
            "-c",
            "user.name=ci",
            "-c",
            "user.email=ci@demo.invalid",
            "-c",
            "advice.detachedHead=false",
        ];
        let d;
        if let Some(dir) = dir {
            d = dir.to_string_lossy().into_owned();
            all.extend(["-C", &d]);
        }
        all.extend(args);
        procs::run(&format!("git {}", args.join(" ")), &self.git, &all, None).await
    }

    async fn bare(&self, args: &[&str]) -> Result<String, DemoError> {
        let r = self.remote.to_string_lossy().into_owned();
        let mut all = vec!["--git-dir", &r];
        all.extend(args);
        procs::run(&format!("git {}", args.join(" ")), &self.git, &all, None).await
    }

    /// CI commits `version` to `env`'s file and pushes (retrying when a controller pushed
    /// first). Returns the commit.
    ///
    /// # Errors
    /// Git failing five times.
    pub async fn ci_release(&self, env: &str, version: &str) -> Result<String, DemoError> {
        let mut last = None;
        for _ in 0..5 {
            self.git(Some(&self.work), &["fetch", "--quiet", "origin"])
                .await?;
            self.git(
                Some(&self.work),
                &["reset", "--quiet", "--hard", "origin/main"],
            )
            .await?;
            super::cluster::write(&self.work.join(values_path(env)), &values(env, version))?;
            self.git(
                Some(&self.work),
                &[
                    "commit",
                    "--quiet",
                    "-am",
                    &format!("ci: build {version} of {POLICY}, deploy to {env}"),
                ],
            )
            .await?;
            match self
                .git(Some(&self.work), &["push", "--quiet", "origin", "main"])
                .await
            {
                Ok(_) => {
                    return Ok(self
                        .git(Some(&self.work), &["rev-parse", "HEAD"])
                        .await?
                        .trim()
                        .to_owned());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(DemoError::Story("CI push failed".into())))
    }

    /// The version `env`'s file holds on `main`.
    ///
    /// # Errors
    /// Git failing or the file missing its `image.tag`.
    pub async fn version(&self, env: &str) -> Result<String, DemoError> {
        let text = self
            .bare(&["show", &format!("main:{}", values_path(env))])
            .await?;
        let doc: serde_yaml::Value = serde_yaml::from_str(&text)
            .map_err(|e| DemoError::Story(format!("{}: {e}", values_path(env))))?;
        doc.get("image")
            .and_then(|i| i.get("tag"))
            .and_then(serde_yaml::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| DemoError::Story(format!("{}: no image.tag", values_path(env))))
    }

    /// The branches of the remote.
    ///
    /// # Errors
    /// Git failing.
    pub async fn branches(&self) -> Result<Vec<String>, DemoError> {
        Ok(self
            .bare(&["for-each-ref", "--format=%(refname:short)", "refs/heads"])
            .await?
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// `main`'s commits, newest first.
    ///
    /// # Errors
    /// Git failing.
    pub async fn history(&self) -> Result<Vec<Commit>, DemoError> {
        let out = self
            .bare(&["log", "--format=%H%x1f%an%x1f%B%x1e", "main"])
            .await?;
        Ok(out
            .split('\u{1e}')
            .filter_map(|rec| {
                let mut f = rec.trim_start_matches('\n').splitn(3, '\u{1f}');
                let sha = f.next()?.trim().to_owned();
                if sha.is_empty() {
                    return None;
                }
                let author = f.next()?.to_owned();
                let body = f.next().unwrap_or_default();
                let subject = body.lines().next().unwrap_or_default().to_owned();
                let trailers: BTreeMap<String, String> = body
                    .lines()
                    .filter_map(|l| l.split_once(": "))
                    .filter(|(k, _)| k.starts_with("Rollgate-"))
                    .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
                    .collect();
                let revert = trailers.contains_key("Rollgate-Revert");
                Some(Commit {
                    sha,
                    author,
                    subject,
                    trailers,
                    revert,
                })
            })
            .collect())
    }
}

/// The Argo CD stand-in: every second, set each environment's Deployment image to the
/// tag its file holds on `main`.
pub async fn sync_loop(repo: Arc<DeployRepo>, client: kube::Client, journal: Arc<Journal>) {
    loop {
        for env in ENVIRONMENTS {
            let Ok(version) = repo.version(env.name).await else {
                continue;
            };
            let api: Api<Deployment> = Api::namespaced(client.clone(), env.name);
            let Ok(Some(d)) = api.get_opt(APP).await else {
                continue;
            };
            if image_tag(&d).as_deref() == Some(version.as_str()) {
                continue;
            }
            let patch = json!({"spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": format!("{IMAGE}:{version}")}
            ]}}}});
            if api
                .patch(APP, &PatchParams::default(), &Patch::Strategic(patch))
                .await
                .is_ok()
            {
                journal.event(
                    env.name,
                    "sync",
                    &format!(
                        "Argo CD stand-in: {} → {version} (from {})",
                        image_tag(&d).unwrap_or_default(),
                        values_path(env.name)
                    ),
                );
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
