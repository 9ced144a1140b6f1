//! Argo's `job` provider: each measurement runs a Kubernetes Job built from the metric's
//! `provider.job` (metadata and a `batch/v1` JobSpec), and the Job's fate is the
//! measurement.
//!
//! A job measurement spans reconciles (the core's in-progress measurements, see
//! [`crate::core::analysis::run`]): [`JobProvider::start`] creates the Job and returns a
//! Running measurement naming it (`metadata.job-name`, Argo's key); each later step
//! [`JobProvider::resume`] reads the Job: condition `Complete` makes the measurement
//! Successful, condition `Failed` (backoff limit, `activeDeadlineSeconds`, a pod failure
//! policy) makes it Failed with the Job's reason; otherwise it stays Running. When the run
//! terminates, [`JobProvider::terminate`] deletes the Job (background propagation, so the
//! Job object goes at once and its pods follow) and the measurement is Successful
//! (`Metric Terminated`). A Job that cannot be created (a spec the API server refuses, a
//! quota, RBAC) is an Error measurement naming the run, the metric and the server's
//! reason.
//!
//! Every Job is named `<run uid>.<metric>.<n>` (n = the metric's measurements so far + 1,
//! as in Argo), shortened with a hash when that would pass 63 characters (the Job
//! controller copies the name into a label); it is owned by the AnalysisRun (controller
//! owner reference, so deleting the run deletes its Jobs), labelled
//! [`RUN_UID_LABEL`] (and [`RUN_NAME_LABEL`] when the run's name is a valid label value), and
//! annotated with the run's and the metric's names. Creating is idempotent: a Job of that
//! name that this run already owns is adopted (a status write lost after a create). After a
//! job measurement completes, the metric's Jobs beyond its measurement history limit (10,
//! or `measurementRetention`) are deleted, oldest first.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::core::analysis::model::{JobMetric, Metric};
use crate::core::analysis::run::{InFlightAction, PreparedRun, terminated_measurement};
use crate::core::analysis::status::{AnalysisRunStatus, Measurement, Time};
use crate::core::analysis::value::AnalysisPhase;
use crate::core::names::is_dns_label;

/// The measurement metadata key naming the measurement's Job (Argo's).
pub const JOB_NAME_KEY: &str = "job-name";
/// Label on every Job: the UID of the AnalysisRun it measures for (Argo:
/// `analysisrun.argoproj.io/uid`). The controller watches Jobs with this label.
pub const RUN_UID_LABEL: &str = "rollgate.dev/analysis-run-uid";
/// Label on a Job naming its AnalysisRun, when the name is a valid label value (63
/// characters at most); the annotation of the same key always holds it.
pub const RUN_NAME_LABEL: &str = "rollgate.dev/analysis-run";
/// Annotation on every Job naming its AnalysisRun (Argo: `analysisrun.argoproj.io/name`).
pub const RUN_NAME_ANNOTATION: &str = "rollgate.dev/analysis-run";
/// Annotation on every Job naming its metric (Argo: `analysisrun.argoproj.io/metric-name`).
pub const METRIC_ANNOTATION: &str = "rollgate.dev/analysis-metric";
/// Longest Job name: the Job controller puts the name into a label value.
pub const MAX_JOB_NAME: usize = 63;
/// Why only the controller measures a job metric.
pub const NEEDS_CONTROLLER: &str = "provider.job runs a Kubernetes Job owned by its AnalysisRun, so only the controller (`rollgate controller`) measures it";
/// Bound of each API call.
const API_TIMEOUT: Duration = Duration::from_secs(10);

/// The AnalysisRun a provider measures for: the owner of its Jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRef {
    /// The owner's `apiVersion` (`rollgate.dev/v1alpha1`).
    pub api_version: String,
    /// The owner's kind (`AnalysisRun`).
    pub kind: String,
    /// The run's namespace, where its Jobs are created.
    pub namespace: String,
    /// The run's name.
    pub name: String,
    /// The run's UID.
    pub uid: String,
}

/// Why a Job operation failed; its text becomes the measurement's message.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// `provider.job.spec` is not an object (a template that skipped the CRD's schema).
    #[error("provider.job.spec must be an object (a batch/v1 JobSpec), not {0}")]
    SpecNotObject(&'static str),
    /// The API server answered with an error (validation, quota, RBAC, conflict).
    #[error("cannot {op} Job {job}: {message}")]
    Api {
        /// What was attempted (`create`, `read`, `delete`, `list`).
        op: &'static str,
        /// The Job's name (or the run's Jobs, for a list).
        job: String,
        /// The server's or the client's message.
        message: String,
        /// The HTTP status of an API error (404 for a missing Job).
        code: Option<u16>,
    },
    /// The API server did not answer in time.
    #[error("cannot {op} Job {job}: no answer within {API_TIMEOUT:?}")]
    Timeout {
        /// What was attempted.
        op: &'static str,
        /// The Job's name.
        job: String,
    },
    /// A Job of that name exists but belongs to something else.
    #[error("Job {0} already exists and is not owned by this AnalysisRun")]
    NotOwned(String),
    /// The in-progress measurement names no Job (a hand-edited status).
    #[error("the measurement names no Job (metadata `{JOB_NAME_KEY}` is missing)")]
    NoJobName,
}

async fn call<T>(
    op: &'static str,
    job: &str,
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, JobError> {
    match tokio::time::timeout(API_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            let (message, code) = match &e {
                kube::Error::Api(s) => (s.message.clone(), Some(s.code)),
                other => (other.to_string(), None),
            };
            Err(JobError::Api {
                op,
                job: job.to_owned(),
                message,
                code,
            })
        }
        Err(_) => Err(JobError::Timeout {
            op,
            job: job.to_owned(),
        }),
    }
}

fn is_label_value(s: &str) -> bool {
    let b = s.as_bytes();
    b.is_empty()
        || (b.len() <= 63
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
            && b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric))
}

/// The name of measurement `sequence` of `metric` in run `run_uid`: Argo's
/// `<uid>.<metric>.<n>`. A metric name that is not a DNS label, or that would make the name
/// longer than [`MAX_JOB_NAME`], is replaced by its lower-cased, shortened form plus 8 hex
/// digits of its SHA-256, so distinct metrics keep distinct names.
#[must_use]
pub fn job_name(run_uid: &str, metric: &str, sequence: i64) -> String {
    let prefix = format!("{run_uid}.");
    let suffix = format!(".{sequence}");
    let budget = MAX_JOB_NAME.saturating_sub(prefix.len() + suffix.len());
    let part = if is_dns_label(metric) && metric.len() <= budget {
        metric.to_owned()
    } else {
        let digest = sha2::Sha256::digest(metric.as_bytes());
        let hash = hex::encode(&digest[..4]);
        let cleaned: String = metric
            .chars()
            .map(|c| {
                let c = c.to_ascii_lowercase();
                if c.is_ascii_lowercase() || c.is_ascii_digit() {
                    c
                } else {
                    '-'
                }
            })
            .take(budget.saturating_sub(hash.len() + 1))
            .collect();
        let cleaned = cleaned.trim_matches('-');
        if cleaned.is_empty() {
            hash
        } else {
            format!("{cleaned}-{hash}")
        }
    };
    format!("{prefix}{part}{suffix}")
}

/// The number of the next measurement of `metric` (Argo: count + error + 1), which names
/// its Job.
#[must_use]
pub fn next_sequence(status: &AnalysisRunStatus, metric: &str) -> i64 {
    status
        .result(metric)
        .map_or(1, |r| i64::from(r.count) + i64::from(r.error) + 1)
}

/// The Job for measurement `sequence` of `metric`, as JSON: the template's spec as written
/// (the API server validates it), its labels and annotations plus rollgate's, owned by the
/// run.
///
/// # Errors
/// [`JobError::SpecNotObject`] when the spec is not a JSON object.
pub fn job_manifest(
    run: &RunRef,
    metric: &str,
    job: &JobMetric,
    sequence: i64,
) -> Result<Value, JobError> {
    if !job.spec.is_object() {
        return Err(JobError::SpecNotObject(match &job.spec {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "a list",
            Value::Object(_) => "an object",
        }));
    }
    let meta = job.metadata.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = meta.labels;
    labels.insert(RUN_UID_LABEL.to_owned(), run.uid.clone());
    if is_label_value(&run.name) {
        labels.insert(RUN_NAME_LABEL.to_owned(), run.name.clone());
    }
    let mut annotations: BTreeMap<String, String> = meta.annotations;
    annotations.insert(RUN_NAME_ANNOTATION.to_owned(), run.name.clone());
    annotations.insert(METRIC_ANNOTATION.to_owned(), metric.to_owned());
    Ok(json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(&run.uid, metric, sequence),
            "namespace": run.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": run.api_version,
                "kind": run.kind,
                "name": run.name,
                "uid": run.uid,
                "controller": true,
            }],
        },
        "spec": job.spec,
    }))
}

/// What a Job's conditions say: `Some(Successful)` once `Complete` is true, `Some(Failed)`
/// with `<reason>: <message>` once `Failed` is true, `None` while it runs.
#[must_use]
pub fn job_outcome(job: &Job) -> Option<(AnalysisPhase, String)> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    let holds = |t: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == t && c.status == "True")
    };
    if let Some(c) = holds("Failed") {
        let name = job.metadata.name.as_deref().unwrap_or_default();
        let reason = c.reason.as_deref().unwrap_or("Failed");
        let message = match c.message.as_deref() {
            Some(m) if !m.is_empty() => format!("Job {name} failed: {reason}: {m}"),
            _ => format!("Job {name} failed: {reason}"),
        };
        return Some((AnalysisPhase::Failed, message));
    }
    holds("Complete").map(|_| (AnalysisPhase::Successful, String::new()))
}

fn sequence_of(job: &Job) -> i64 {
    job.metadata
        .name
        .as_deref()
        .and_then(|n| n.rsplit('.').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Runs, follows, stops and cleans up the Jobs of one AnalysisRun.
pub struct JobProvider {
    run: RunRef,
    jobs: Api<Job>,
    dynamic: Api<DynamicObject>,
}

impl JobProvider {
    /// The provider for `run`, creating Jobs in its namespace with `client`.
    #[must_use]
    pub fn new(client: kube::Client, run: RunRef) -> Self {
        let resource = ApiResource::erase::<Job>(&());
        Self {
            jobs: Api::namespaced(client.clone(), &run.namespace),
            dynamic: Api::namespaced_with(client, &run.namespace, &resource),
            run,
        }
    }

    /// The run this provider measures for.
    #[must_use]
    pub fn run(&self) -> &RunRef {
        &self.run
    }

    fn context(&self, metric: &str) -> String {
        format!(
            "AnalysisRun {}/{} metric \"{metric}\"",
            self.run.namespace, self.run.name
        )
    }

    fn error(&self, mut m: Measurement, metric: &str, e: &JobError, now: Time) -> Measurement {
        m.phase = AnalysisPhase::Error;
        m.message = format!("{}: {e}", self.context(metric));
        m.finished_at = Some(now);
        m.resume_at = None;
        m
    }

    async fn create(&self, manifest: Value, name: &str) -> Result<(), JobError> {
        let object: DynamicObject =
            serde_json::from_value(manifest).map_err(|e| JobError::Api {
                op: "build",
                job: name.to_owned(),
                message: e.to_string(),
                code: None,
            })?;
        match call(
            "create",
            name,
            self.dynamic.create(&PostParams::default(), &object),
        )
        .await
        {
            Ok(_) => Ok(()),
            Err(JobError::Api {
                code: Some(409), ..
            }) => {
                // Created by an earlier step whose status write was lost: adopt it if it
                // is this run's.
                let existing = call("read", name, self.jobs.get(name)).await?;
                let ours = existing
                    .metadata
                    .owner_references
                    .unwrap_or_default()
                    .iter()
                    .any(|o| o.uid == self.run.uid && o.controller == Some(true));
                if ours {
                    Ok(())
                } else {
                    Err(JobError::NotOwned(name.to_owned()))
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Start measurement `sequence` of `metric`: create its Job. Returns a Running
    /// measurement naming the Job, or an Error measurement (the run, the metric and the
    /// reason) when the Job cannot be created.
    #[tracing::instrument(name = "job.start", skip_all, fields(run = %self.run.name, metric = %metric.name, sequence))]
    pub async fn start(&self, metric: &Metric, sequence: i64, now: Time) -> Measurement {
        let m = Measurement {
            phase: AnalysisPhase::Running,
            message: String::new(),
            started_at: Some(now),
            finished_at: None,
            value: String::new(),
            metadata: BTreeMap::new(),
            resume_at: None,
        };
        let Some(job) = &metric.provider.job else {
            let e = JobError::SpecNotObject("missing");
            return self.error(m, &metric.name, &e, now);
        };
        let name = job_name(&self.run.uid, &metric.name, sequence);
        let created = match job_manifest(&self.run, &metric.name, job, sequence) {
            Ok(manifest) => self.create(manifest, &name).await,
            Err(e) => Err(e),
        };
        match created {
            Ok(()) => {
                tracing::info!(run = %self.run.name, metric = %metric.name, job = %name, "job created");
                let mut m = m;
                m.metadata.insert(JOB_NAME_KEY.to_owned(), name);
                m
            }
            Err(e) => self.error(m, &metric.name, &e, now),
        }
    }

    /// Look at the Job of an in-progress measurement: Successful once it completed, Failed
    /// once it failed, unchanged while it runs or when the API server cannot be reached (the
    /// next step looks again); Error when the Job is gone or the measurement names none.
    #[tracing::instrument(name = "job.resume", skip_all, fields(run = %self.run.name, metric))]
    pub async fn resume(&self, metric: &str, measurement: Measurement, now: Time) -> Measurement {
        let Some(name) = measurement.metadata.get(JOB_NAME_KEY).cloned() else {
            return self.error(measurement, metric, &JobError::NoJobName, now);
        };
        match call("read", &name, self.jobs.get(&name)).await {
            Ok(job) => match job_outcome(&job) {
                Some((phase, message)) => {
                    tracing::info!(run = %self.run.name, metric, job = %name, %phase, "job finished");
                    let mut m = measurement;
                    m.phase = phase;
                    m.message = message;
                    m.finished_at = Some(now);
                    m.resume_at = None;
                    m
                }
                None => measurement,
            },
            Err(
                e @ JobError::Api {
                    code: Some(404), ..
                },
            ) => self.error(measurement, metric, &e, now),
            Err(e) => {
                tracing::warn!(run = %self.run.name, metric, job = %name, error = %e, "cannot read the job; will look again");
                measurement
            }
        }
    }

    /// Stop an in-progress measurement because the run terminates: delete its Job. The
    /// measurement is Successful (`Metric Terminated`), or Error when the Job cannot be
    /// deleted.
    #[tracing::instrument(name = "job.terminate", skip_all, fields(run = %self.run.name, metric))]
    pub async fn terminate(
        &self,
        metric: &str,
        measurement: Measurement,
        now: Time,
    ) -> Measurement {
        let Some(name) = measurement.metadata.get(JOB_NAME_KEY).cloned() else {
            return self.error(measurement, metric, &JobError::NoJobName, now);
        };
        match self.delete(&name).await {
            Ok(()) => {
                tracing::info!(run = %self.run.name, metric, job = %name, "job terminated");
                let mut m = measurement;
                m.phase = AnalysisPhase::Successful;
                m.finished_at = Some(now);
                m.resume_at = None;
                terminated_measurement(m)
            }
            Err(e) => self.error(measurement, metric, &e, now),
        }
    }

    async fn delete(&self, name: &str) -> Result<(), JobError> {
        // Background: the Job object goes now and the garbage collector removes its pods
        // (the API's default for batch/v1 Jobs would orphan them).
        match call(
            "delete",
            name,
            self.jobs.delete(name, &DeleteParams::background()),
        )
        .await
        {
            Ok(_)
            | Err(JobError::Api {
                code: Some(404), ..
            }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Delete the Jobs of `metric` beyond the newest `keep`, oldest first; returns the names
    /// deleted.
    ///
    /// # Errors
    /// [`JobError`] when the Jobs cannot be listed or one cannot be deleted.
    #[tracing::instrument(name = "job.garbage_collect", skip_all, fields(run = %self.run.name, metric, keep))]
    pub async fn garbage_collect(
        &self,
        metric: &str,
        keep: usize,
    ) -> Result<Vec<String>, JobError> {
        let selector = format!("{RUN_UID_LABEL}={}", self.run.uid);
        let what = format!("of AnalysisRun {}", self.run.name);
        let list = call(
            "list",
            &what,
            self.jobs.list(&ListParams::default().labels(&selector)),
        )
        .await?;
        let mut jobs: Vec<Job> = list
            .items
            .into_iter()
            .filter(|j| {
                j.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(METRIC_ANNOTATION))
                    .is_some_and(|m| m == metric)
            })
            .collect();
        jobs.sort_by_key(sequence_of);
        let excess = jobs.len().saturating_sub(keep);
        let mut deleted = Vec::new();
        for j in jobs.into_iter().take(excess) {
            let name = j.metadata.name.unwrap_or_default();
            self.delete(&name).await?;
            tracing::info!(run = %self.run.name, metric, job = %name, "job garbage-collected");
            deleted.push(name);
        }
        Ok(deleted)
    }

    /// One step of the run's job metrics: start the `due` ones and resume or terminate those
    /// `in_flight` (indexes into `run.metrics`; other providers' metrics are skipped).
    /// Returns the measurements to record, by metric index.
    pub async fn step(
        &self,
        run: &PreparedRun,
        status: &AnalysisRunStatus,
        due: &[usize],
        in_flight: &[(usize, InFlightAction)],
        now: Time,
    ) -> Vec<(usize, Measurement)> {
        let is_job = |i: usize| {
            run.metrics
                .get(i)
                .is_some_and(|m| m.metric.provider.job.is_some())
        };
        let starts = due
            .iter()
            .copied()
            .filter(|&i| is_job(i))
            .map(|i| async move {
                let metric = &run.metrics[i].metric;
                let sequence = next_sequence(status, &metric.name);
                (i, self.start(metric, sequence, now).await)
            });
        let follows = in_flight
            .iter()
            .copied()
            .filter(|&(i, _)| is_job(i))
            .filter_map(|(i, action)| {
                let name = run.metrics[i].metric.name.clone();
                let last = status.result(&name)?.measurements.last()?.clone();
                Some(async move {
                    let m = match action {
                        InFlightAction::Resume => self.resume(&name, last, now).await,
                        InFlightAction::Terminate => self.terminate(&name, last, now).await,
                    };
                    (i, m)
                })
            });
        let (mut started, followed) = futures::future::join(
            futures::future::join_all(starts),
            futures::future::join_all(follows),
        )
        .await;
        started.extend(followed);
        started
    }

    /// After a step: for each job metric in `measured` whose last measurement completed and
    /// that may have more Jobs than its history keeps, delete the oldest Jobs beyond the
    /// limit. Failures are logged: the Jobs go with the run in any case.
    pub async fn collect_garbage(
        &self,
        run: &PreparedRun,
        status: &AnalysisRunStatus,
        measured: &[usize],
    ) {
        for &i in measured {
            let Some(m) = run.metrics.get(i) else {
                continue;
            };
            if m.metric.provider.job.is_none() {
                continue;
            }
            let Some(r) = status.result(&m.metric.name) else {
                continue;
            };
            let created = usize::try_from(r.count + r.error).unwrap_or(0);
            let completed = r
                .measurements
                .last()
                .is_some_and(|l| l.phase.is_completed());
            if !completed || created <= m.retention_limit {
                continue;
            }
            if let Err(e) = self
                .garbage_collect(&m.metric.name, m.retention_limit)
                .await
            {
                tracing::warn!(run = %self.run.name, metric = %m.metric.name, error = %e, "cannot garbage-collect jobs");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_argo_and_stay_within_63_characters() {
        let uid = "0b5f6c8e-2f4a-4c1e-9a57-3c1d2e4f5a6b";
        assert_eq!(
            job_name(uid, "smoke", 1),
            format!("{uid}.smoke.1"),
            "a short DNS-label metric keeps Argo's name"
        );
        let long = job_name(uid, "integration-tests-against-the-canary", 12);
        assert!(long.len() <= MAX_JOB_NAME, "{long} ({})", long.len());
        assert!(long.starts_with(&format!("{uid}.integration-")), "{long}");
        assert!(long.ends_with(".12"), "{long}");
        // Distinct long names stay distinct; odd characters are replaced.
        assert_ne!(
            job_name(uid, "integration-tests-against-the-canary-a", 1),
            job_name(uid, "integration-tests-against-the-canary-b", 1)
        );
        let odd = job_name(uid, "Smoke_Test", 1);
        assert!(odd.starts_with(&format!("{uid}.smoke-test-")), "{odd}");
        assert!(
            odd.split('.').all(is_dns_label),
            "every part is a DNS label: {odd}"
        );
        let symbols = job_name(uid, "__", 3);
        assert!(symbols.split('.').all(is_dns_label), "{symbols}");
    }

    #[test]
    fn the_manifest_carries_the_spec_labels_and_owner() {
        let run = RunRef {
            api_version: "rollgate.dev/v1alpha1".into(),
            kind: "AnalysisRun".into(),
            namespace: "web".into(),
            name: "podinfo-1-2".into(),
            uid: "u-1".into(),
        };
        let job = JobMetric {
            metadata: Some(crate::core::analysis::model::JobMetadata {
                labels: [("team".to_owned(), "web".to_owned())].into(),
                annotations: [(RUN_NAME_ANNOTATION.to_owned(), "spoofed".to_owned())].into(),
            }),
            spec: json!({"backoffLimit": 0, "activeDeadlineSeconds": 30, "template": {}}),
        };
        let m = job_manifest(&run, "smoke", &job, 2).expect("manifest");
        assert_eq!(m["metadata"]["name"], "u-1.smoke.2");
        assert_eq!(m["metadata"]["labels"]["team"], "web");
        assert_eq!(m["metadata"]["labels"][RUN_UID_LABEL], "u-1");
        assert_eq!(m["metadata"]["labels"][RUN_NAME_LABEL], "podinfo-1-2");
        assert_eq!(
            m["metadata"]["annotations"][RUN_NAME_ANNOTATION], "podinfo-1-2",
            "rollgate's keys win over the template's"
        );
        assert_eq!(m["metadata"]["annotations"][METRIC_ANNOTATION], "smoke");
        assert_eq!(m["metadata"]["ownerReferences"][0]["uid"], "u-1");
        assert_eq!(m["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(m["spec"]["activeDeadlineSeconds"], 30);
        let bad = JobMetric {
            metadata: None,
            spec: json!("run the tests"),
        };
        let e = job_manifest(&run, "smoke", &bad, 1).expect_err("not an object");
        assert_eq!(
            e.to_string(),
            "provider.job.spec must be an object (a batch/v1 JobSpec), not a string"
        );
    }

    #[test]
    fn outcomes_follow_the_true_terminal_conditions() {
        let job = |conds: Value| -> Job {
            serde_json::from_value(json!({
                "metadata": {"name": "j"},
                "status": {"conditions": conds},
            }))
            .expect("job")
        };
        assert_eq!(job_outcome(&job(json!([]))), None);
        assert_eq!(
            job_outcome(&job(json!([{"type": "Complete", "status": "False"}]))),
            None
        );
        assert_eq!(
            job_outcome(&job(
                json!([{"type": "SuccessCriteriaMet", "status": "True"}])
            )),
            None,
            "interim conditions wait for the final one"
        );
        assert_eq!(
            job_outcome(&job(json!([{"type": "Complete", "status": "True"}]))),
            Some((AnalysisPhase::Successful, String::new()))
        );
        assert_eq!(
            job_outcome(&job(json!([{"type": "Failed", "status": "True",
                "reason": "DeadlineExceeded", "message": "Job was active longer than specified deadline"}]))),
            Some((
                AnalysisPhase::Failed,
                "Job j failed: DeadlineExceeded: Job was active longer than specified deadline"
                    .to_owned()
            ))
        );
    }
}
