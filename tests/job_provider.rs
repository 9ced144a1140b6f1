//! Argo's `job` metric provider run by the real controller against a real kube-apiserver.
//!
//! With no kube-controller-manager, nothing runs the Jobs: the tests play the Job
//! controller by writing the terminal status the API server accepts (startTime,
//! completionTime, SuccessCriteriaMet before Complete, FailureTarget before Failed). One
//! test starts its own control plane WITH the Job controller and the garbage collector, so
//! `activeDeadlineSeconds` and the run's owner reference are enforced by Kubernetes itself.

#[path = "support/controller.rs"]
mod controller;
#[path = "support/k8s.rs"]
mod k8s;

use std::time::Duration;

use controller::{Running, apply, install_crds};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ResourceQuota;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use rollgate::core::analysis::status::AnalysisRunStatus;
use rollgate::core::analysis::value::AnalysisPhase;
use rollgate::k8s::AnalysisRun;
use rollgate::providers::job::{
    JOB_NAME_KEY, METRIC_ANNOTATION, RUN_NAME_ANNOTATION, RUN_NAME_LABEL, RUN_UID_LABEL,
};
use serde_json::json;

/// A job metric `smoke` whose pod would run `command`; `extra` adds metric fields.
fn run_yaml(name: &str, job_spec: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: rollgate.dev/v1alpha1
kind: AnalysisRun
metadata: {{name: {name}}}
spec:
{extra}
  metrics:
    - name: smoke
      consecutiveErrorLimit: 0
      provider:
        job:
          metadata:
            labels: {{team: web}}
            annotations: {{runbook: "https://runbooks.example/smoke"}}
          spec:
{job_spec}
"#
    )
}

const GOOD_SPEC: &str = r#"            backoffLimit: 0
            activeDeadlineSeconds: 120
            template:
              spec:
                restartPolicy: Never
                containers:
                  - name: smoke
                    image: example.invalid/smoke:1
                    command: [sh, -c, "wget -qO- http://podinfo-canary/healthz"]"#;

struct Scene {
    client: kube::Client,
    ns: String,
    cache: tempfile::TempDir,
    controller: Option<Running>,
}

impl Scene {
    /// A namespace on the shared control plane with a controller running in it.
    async fn new(prefix: &str) -> Scene {
        let mut s = Scene::stopped(prefix).await;
        s.start();
        s
    }

    /// A namespace on the shared control plane, no controller yet.
    async fn stopped(prefix: &str) -> Scene {
        let cp = k8s::shared();
        install_crds(cp);
        let client = cp.client().await;
        let ns = cp.namespace(prefix);
        Scene {
            client,
            ns,
            cache: tempfile::tempdir().expect("temp dir"),
            controller: None,
        }
    }

    fn with(client: kube::Client, ns: String) -> Scene {
        let mut s = Scene {
            client,
            ns,
            cache: tempfile::tempdir().expect("temp dir"),
            controller: None,
        };
        s.start();
        s
    }

    /// Start a controller for the namespace.
    fn start(&mut self) {
        // No metric here reads Prometheus: an address nothing listens on.
        self.controller = Some(Running::start(
            self.client.clone(),
            &self.ns,
            "dev",
            "http://127.0.0.1:1",
            self.cache.path(),
        ));
    }

    /// Abort the controller at once, as SIGKILL would.
    async fn kill(&mut self) {
        if let Some(c) = self.controller.take() {
            c.kill().await;
        }
    }

    fn runs(&self) -> Api<AnalysisRun> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    fn jobs(&self) -> Api<Job> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    async fn run(&self, name: &str) -> AnalysisRun {
        self.runs().get(name).await.expect("get run")
    }

    /// Wait until the run's status satisfies `pred`.
    async fn wait_run(
        &self,
        name: &str,
        secs: u64,
        what: &str,
        pred: impl Fn(&AnalysisRunStatus) -> bool,
    ) -> AnalysisRunStatus {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let st = self.run(name).await.status.unwrap_or_default();
            if pred(&st) {
                return st;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {secs}s waiting for {what}; status:\n{}",
                serde_json::to_string_pretty(&st).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The Jobs of run `uid`, oldest measurement first.
    async fn jobs_of(&self, uid: &str) -> Vec<Job> {
        let mut jobs = self
            .jobs()
            .list(&ListParams::default().labels(&format!("{RUN_UID_LABEL}={uid}")))
            .await
            .expect("list jobs")
            .items;
        jobs.sort_by_key(|j| {
            j.metadata
                .name
                .as_deref()
                .and_then(|n| n.rsplit('.').next())
                .and_then(|n| n.parse::<i64>().ok())
                .unwrap_or(0)
        });
        jobs
    }

    /// Wait until run `uid` has a Job named `<uid>.smoke.<n>`.
    async fn wait_job(&self, uid: &str, n: i64) -> Job {
        let name = format!("{uid}.smoke.{n}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(j) = self.jobs().get_opt(&name).await.expect("get job") {
                return j;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Job {name} was not created; jobs: {:?}",
                names(&self.jobs_of(uid).await)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What the Job controller writes when the Job's pod succeeded.
    async fn succeed(&self, job: &str) {
        let t = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let status = json!({"status": {
            "startTime": t, "completionTime": t, "succeeded": 1,
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": t, "lastProbeTime": t},
                {"type": "Complete", "status": "True", "lastTransitionTime": t, "lastProbeTime": t},
            ],
        }});
        self.jobs()
            .patch_status(job, &PatchParams::default(), &Patch::Merge(status))
            .await
            .expect("mark the job complete");
    }

    /// What the Job controller writes when the Job's pod failed past its backoff limit.
    async fn fail(&self, job: &str) {
        let t = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let cond = |type_: &str| {
            json!({"type": type_, "status": "True", "reason": "BackoffLimitExceeded",
                   "message": "Job has reached the specified backoff limit",
                   "lastTransitionTime": t, "lastProbeTime": t})
        };
        let status = json!({"status": {
            "startTime": t, "failed": 1,
            "conditions": [cond("FailureTarget"), cond("Failed")],
        }});
        self.jobs()
            .patch_status(job, &PatchParams::default(), &Patch::Merge(status))
            .await
            .expect("mark the job failed");
    }
}

fn names(jobs: &[Job]) -> Vec<String> {
    jobs.iter()
        .map(|j| j.metadata.name.clone().unwrap_or_default())
        .collect()
}

fn uid(run: &AnalysisRun) -> String {
    run.metadata.uid.clone().expect("the server set a uid")
}

fn last_measurement(st: &AnalysisRunStatus) -> rollgate::core::analysis::status::Measurement {
    st.result("smoke")
        .and_then(|r| r.measurements.last())
        .cloned()
        .expect("a measurement of smoke")
}

#[tokio::test]
async fn the_measurement_follows_the_job_to_success() {
    let s = Scene::new("job-ok").await;
    apply(k8s::shared(), &s.ns, &run_yaml("smoke-ok", GOOD_SPEC, ""));
    let run = s.run("smoke-ok").await;
    let uid = uid(&run);
    let job = s.wait_job(&uid, 1).await;
    let name = job.metadata.name.clone().expect("name");
    assert_eq!(name, format!("{uid}.smoke.1"), "Argo's <uid>.<metric>.<n>");

    // The Job links back to its run: labels, annotations, controller owner reference.
    let labels = job.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get(RUN_UID_LABEL), Some(&uid));
    assert_eq!(
        labels.get(RUN_NAME_LABEL).map(String::as_str),
        Some("smoke-ok")
    );
    assert_eq!(labels.get("team").map(String::as_str), Some("web"));
    let annotations = job.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get(RUN_NAME_ANNOTATION).map(String::as_str),
        Some("smoke-ok")
    );
    assert_eq!(
        annotations.get(METRIC_ANNOTATION).map(String::as_str),
        Some("smoke")
    );
    assert_eq!(
        annotations.get("runbook").map(String::as_str),
        Some("https://runbooks.example/smoke")
    );
    let owners = job.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(
        (
            owners[0].api_version.as_str(),
            owners[0].kind.as_str(),
            owners[0].name.as_str(),
            owners[0].uid.as_str(),
            owners[0].controller
        ),
        (
            "rollgate.dev/v1alpha1",
            "AnalysisRun",
            "smoke-ok",
            uid.as_str(),
            Some(true)
        )
    );
    // The template's spec reaches the Job unchanged, deadline included.
    let spec = job.spec.clone().expect("spec");
    assert_eq!(spec.active_deadline_seconds, Some(120));
    assert_eq!(spec.backoff_limit, Some(0));

    // While the Job runs, the measurement is Running and counts nothing.
    let st = s
        .wait_run("smoke-ok", 30, "a running measurement", |st| {
            st.result("smoke").is_some()
        })
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let st2 = s.run("smoke-ok").await.status.unwrap_or_default();
    for st in [&st, &st2] {
        let m = last_measurement(st);
        assert_eq!(m.phase, AnalysisPhase::Running, "{st:?}");
        assert_eq!(m.metadata.get(JOB_NAME_KEY), Some(&name));
        assert!(m.finished_at.is_none());
        assert_eq!(st.phase, AnalysisPhase::Running);
        assert_eq!(st.result("smoke").map(|r| r.count), Some(0));
    }

    s.succeed(&name).await;
    let st = s
        .wait_run("smoke-ok", 30, "the run to succeed", |st| {
            st.phase.is_completed()
        })
        .await;
    assert_eq!(st.phase, AnalysisPhase::Successful, "{st:?}");
    let r = st.result("smoke").expect("result");
    assert_eq!((r.count, r.successful, r.measurements.len()), (1, 1, 1));
    assert_eq!(r.measurements[0].phase, AnalysisPhase::Successful);
    assert!(r.measurements[0].finished_at.is_some());
    // A finished Job within the history limit is kept for inspection.
    assert_eq!(names(&s.jobs_of(&uid).await), [name]);
}

#[tokio::test]
async fn the_measurement_follows_the_job_to_failure() {
    let s = Scene::new("job-fail").await;
    apply(k8s::shared(), &s.ns, &run_yaml("smoke-fail", GOOD_SPEC, ""));
    let uid = uid(&s.run("smoke-fail").await);
    let job = s.wait_job(&uid, 1).await;
    let name = job.metadata.name.expect("name");
    s.wait_run("smoke-fail", 30, "a running measurement", |st| {
        st.result("smoke").is_some()
    })
    .await;
    s.fail(&name).await;
    let st = s
        .wait_run("smoke-fail", 30, "the run to fail", |st| {
            st.phase.is_completed()
        })
        .await;
    assert_eq!(st.phase, AnalysisPhase::Failed, "{st:?}");
    let m = last_measurement(&st);
    assert_eq!(m.phase, AnalysisPhase::Failed);
    let why = format!(
        "Job {name} failed: BackoffLimitExceeded: Job has reached the specified backoff limit"
    );
    assert_eq!(m.message, why);
    assert_eq!(
        st.message,
        format!(
            "Metric \"smoke\" assessed Failed due to failed (1) > failureLimit (0): \"Error Message: {why}\""
        )
    );
}

#[tokio::test]
async fn terminating_the_run_deletes_its_running_job() {
    let s = Scene::new("job-term").await;
    apply(k8s::shared(), &s.ns, &run_yaml("smoke-term", GOOD_SPEC, ""));
    let uid = uid(&s.run("smoke-term").await);
    let name = s.wait_job(&uid, 1).await.metadata.name.expect("name");
    s.wait_run("smoke-term", 30, "a running measurement", |st| {
        st.result("smoke").is_some()
    })
    .await;
    s.runs()
        .patch(
            "smoke-term",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"terminate": true}})),
        )
        .await
        .expect("terminate the run");
    let st = s
        .wait_run("smoke-term", 30, "the run to terminate", |st| {
            st.phase.is_completed()
        })
        .await;
    assert_eq!(st.phase, AnalysisPhase::Successful, "{st:?}");
    assert_eq!(st.message, "Run Terminated");
    let m = last_measurement(&st);
    assert_eq!(
        (m.phase, m.message.as_str()),
        (AnalysisPhase::Successful, "Metric Terminated")
    );
    // The Job object is gone (background propagation: no finalizer keeps it).
    assert!(
        s.jobs().get_opt(&name).await.expect("get job").is_none(),
        "the running Job {name} was not deleted"
    );
}

#[tokio::test]
async fn finished_jobs_beyond_the_history_limit_are_deleted() {
    let s = Scene::new("job-gc").await;
    let yaml = run_yaml(
        "smoke-gc",
        GOOD_SPEC,
        "  measurementRetention: [{metricName: smoke, limit: 2}]",
    )
    .replacen(
        "    - name: smoke\n",
        "    - name: smoke\n      interval: 1s\n      count: 3\n",
        1,
    );
    apply(k8s::shared(), &s.ns, &yaml);
    let uid = uid(&s.run("smoke-gc").await);
    for n in 1..=3 {
        let name = s.wait_job(&uid, n).await.metadata.name.expect("name");
        s.wait_run("smoke-gc", 30, "the measurement to run", |st| {
            st.result("smoke")
                .and_then(|r| r.measurements.last())
                .is_some_and(|m| m.metadata.get(JOB_NAME_KEY) == Some(&name))
        })
        .await;
        if n == 2 {
            // Two Jobs, both within the limit: none deleted yet.
            assert_eq!(s.jobs_of(&uid).await.len(), 2);
        }
        s.succeed(&name).await;
    }
    let st = s
        .wait_run("smoke-gc", 30, "the run to succeed", |st| {
            st.phase.is_completed()
        })
        .await;
    assert_eq!(st.phase, AnalysisPhase::Successful, "{st:?}");
    let r = st.result("smoke").expect("result");
    assert_eq!((r.count, r.measurements.len()), (3, 2));
    assert_eq!(
        names(&s.jobs_of(&uid).await),
        [format!("{uid}.smoke.2"), format!("{uid}.smoke.3")],
        "the oldest finished Job beyond the limit of 2 is deleted"
    );
}

#[tokio::test]
async fn a_malformed_job_spec_is_an_error_naming_the_run_and_metric() {
    let s = Scene::new("job-bad").await;
    // No restartPolicy: a Job's pods may not restart Always, and the server says so.
    let spec = GOOD_SPEC.replace("                restartPolicy: Never\n", "");
    apply(k8s::shared(), &s.ns, &run_yaml("smoke-bad", &spec, ""));
    let uid = uid(&s.run("smoke-bad").await);
    let st = s
        .wait_run("smoke-bad", 30, "the run to end", |st| {
            st.phase.is_completed()
        })
        .await;
    assert_eq!(st.phase, AnalysisPhase::Error, "{st:?}");
    let m = last_measurement(&st);
    assert_eq!(m.phase, AnalysisPhase::Error);
    let job = format!("{uid}.smoke.1");
    let want = format!(
        "AnalysisRun {}/smoke-bad metric \"smoke\": cannot create Job {job}: Job.batch \"{job}\" is invalid: spec.template.spec.restartPolicy: Required value",
        s.ns
    );
    assert!(m.message.starts_with(&want), "{}\nvs\n{want}", m.message);
    assert!(
        st.message.starts_with(
            "Metric \"smoke\" assessed Error due to consecutiveErrors (1) > consecutiveErrorLimit (0)"
        ) && st.message.contains(&want),
        "{}",
        st.message
    );
    assert!(s.jobs_of(&uid).await.is_empty());
}

#[tokio::test]
async fn a_refused_create_is_an_error_naming_the_run_and_metric() {
    let s = Scene::new("job-quota").await;
    // A quota of zero Jobs; its status is what the quota controller would write.
    let quotas: Api<ResourceQuota> = Api::namespaced(s.client.clone(), &s.ns);
    apply(
        k8s::shared(),
        &s.ns,
        "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: no-jobs}\nspec: {hard: {count/jobs.batch: \"0\"}}\n",
    );
    quotas
        .patch_status(
            "no-jobs",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "hard": {"count/jobs.batch": "0"}, "used": {"count/jobs.batch": "0"}}})),
        )
        .await
        .expect("quota status");
    apply(
        k8s::shared(),
        &s.ns,
        &run_yaml("smoke-quota", GOOD_SPEC, ""),
    );
    let uid = uid(&s.run("smoke-quota").await);
    let st = s
        .wait_run("smoke-quota", 30, "the run to end", |st| {
            st.phase.is_completed()
        })
        .await;
    assert_eq!(st.phase, AnalysisPhase::Error, "{st:?}");
    let m = last_measurement(&st);
    let job = format!("{uid}.smoke.1");
    let want = format!(
        "AnalysisRun {}/smoke-quota metric \"smoke\": cannot create Job {job}: jobs.batch \"{job}\" is forbidden: exceeded quota: no-jobs",
        s.ns
    );
    assert!(m.message.starts_with(&want), "{}\nvs\n{want}", m.message);
}

#[tokio::test]
async fn a_restarted_controller_resumes_the_running_job_without_a_second_one() {
    let mut s = Scene::new("job-restart").await;
    apply(
        k8s::shared(),
        &s.ns,
        &run_yaml("smoke-restart", GOOD_SPEC, ""),
    );
    let uid = uid(&s.run("smoke-restart").await);
    let name = s.wait_job(&uid, 1).await.metadata.name.expect("name");
    s.wait_run("smoke-restart", 30, "a running measurement", |st| {
        st.result("smoke").is_some()
    })
    .await;
    s.kill().await;
    // The Job finishes while no controller runs; the next one reads it from the status.
    s.succeed(&name).await;
    s.start();
    let st = s
        .wait_run("smoke-restart", 30, "the run to succeed", |st| {
            st.phase.is_completed()
        })
        .await;
    assert_eq!(st.phase, AnalysisPhase::Successful, "{st:?}");
    assert_eq!(st.result("smoke").map(|r| r.count), Some(1));
    assert_eq!(names(&s.jobs_of(&uid).await), [name]);
}

/// A Job of the name the next measurement will use already exists: one this run owns
/// (created by a step whose status write was lost) is adopted, anyone else's is an Error.
#[tokio::test]
async fn an_existing_job_is_adopted_only_when_the_run_owns_it() {
    let mut s = Scene::stopped("job-adopt").await;
    for (run, owned) in [("smoke-mine", true), ("smoke-theirs", false)] {
        apply(k8s::shared(), &s.ns, &run_yaml(run, GOOD_SPEC, ""));
        let uid = uid(&s.run(run).await);
        let owner = if owned {
            json!([{"apiVersion": "rollgate.dev/v1alpha1", "kind": "AnalysisRun",
                    "name": run, "uid": uid, "controller": true}])
        } else {
            json!([])
        };
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": format!("{uid}.smoke.1"), "ownerReferences": owner},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "example.invalid/other:1"}]}}},
        }))
        .expect("job");
        s.jobs()
            .create(&Default::default(), &job)
            .await
            .expect("create the job");
    }
    s.start();
    let mine = s
        .wait_run("smoke-mine", 30, "a running measurement", |st| {
            st.result("smoke").is_some()
        })
        .await;
    let m = last_measurement(&mine);
    assert_eq!(m.phase, AnalysisPhase::Running, "{mine:?}");
    let theirs = s
        .wait_run("smoke-theirs", 30, "the run to end", |st| {
            st.phase.is_completed()
        })
        .await;
    assert_eq!(theirs.phase, AnalysisPhase::Error);
    let uid = uid(&s.run("smoke-theirs").await);
    assert_eq!(
        last_measurement(&theirs).message,
        format!(
            "AnalysisRun {}/smoke-theirs metric \"smoke\": Job {uid}.smoke.1 already exists and is not owned by this AnalysisRun",
            s.ns
        )
    );
}

/// The seed story's smoke test: a Rollout's analysis step runs a job metric from an
/// AnalysisTemplate (args substituted into the Job), holds the canary at its weight while
/// the Job runs, promotes when it succeeds and aborts when the next release's Job fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_step_waits_for_its_smoke_job() {
    use controller::{deployment_yaml, initialized, kubelet, route_yaml, set_image, wait_for};
    use rollgate::core::strategy::Phase;
    let s = Scene::new("job-rollout").await;
    let cp = k8s::shared();
    apply(
        cp,
        &s.ns,
        &deployment_yaml("podinfo", "ghcr.io/acme/app:1.0.0"),
    );
    apply(cp, &s.ns, &route_yaml("podinfo"));
    let (_, _kubelet) = kubelet(s.client.clone(), &s.ns);
    apply(
        cp,
        &s.ns,
        r#"apiVersion: rollgate.dev/v1alpha1
kind: AnalysisTemplate
metadata: {name: smoke}
spec:
  args: [{name: service}]
  metrics:
    - name: smoke
      provider:
        job:
          spec:
            backoffLimit: 0
            template:
              spec:
                restartPolicy: Never
                containers:
                  - name: smoke
                    image: example.invalid/curl:8
                    command: [curl, -fsS, "http://{{args.service}}/healthz"]
"#,
    );
    apply(
        cp,
        &s.ns,
        r#"apiVersion: rollgate.dev/v1alpha1
kind: Rollout
metadata: {name: podinfo}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 80}
  trafficRouting: {gatewayAPI: {httpRoute: {name: podinfo}}}
  strategy:
    canary:
      steps:
        - setWeight: 20
        - analysis:
            templates: [{templateName: smoke}]
            args: [{name: service, value: podinfo-canary}]
        - setWeight: 50
"#,
    );
    wait_for(&s.client, &s.ns, "podinfo", 60, "Initialized", initialized).await;

    let mut seen = Vec::new();
    for (version, passes) in [("1.1.0", true), ("1.2.0", false)] {
        set_image(
            &s.client,
            &s.ns,
            "podinfo",
            &format!("ghcr.io/acme/app:{version}"),
        )
        .await;
        // The step's Job, one per release.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let job = loop {
            let jobs = s
                .jobs()
                .list(&ListParams::default().labels(RUN_UID_LABEL))
                .await
                .expect("list jobs")
                .items;
            if let Some(j) = jobs
                .into_iter()
                .find(|j| !seen.contains(&j.metadata.name.clone().unwrap_or_default()))
            {
                break j;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "release {version}: no Job was created"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let name = job.metadata.name.clone().expect("name");
        seen.push(name.clone());
        let command = serde_json::to_string(&job.spec.expect("spec").template).expect("json");
        assert!(
            command.contains("http://podinfo-canary/healthz"),
            "args reach the Job: {command}"
        );
        // While the Job runs the rollout holds the canary at 20%.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let st = controller::status(&s.client, &s.ns, "podinfo").await;
        assert_eq!(
            (st.phase, st.canary_weight),
            (Phase::Progressing, 20),
            "release {version} while its smoke Job runs"
        );
        if passes {
            s.succeed(&name).await;
            wait_for(&s.client, &s.ns, "podinfo", 60, "Succeeded", |st| {
                st.phase == Phase::Succeeded
            })
            .await;
        } else {
            s.fail(&name).await;
            let st = wait_for(&s.client, &s.ns, "podinfo", 60, "Failed", |st| {
                st.phase == Phase::Failed
            })
            .await;
            assert_eq!(st.canary_weight, 0, "traffic back on the primary");
        }
    }
}

/// With kube-controller-manager's Job controller and garbage collector: the Job's own
/// `activeDeadlineSeconds` fails it (no kubelet runs its pod), which fails the
/// measurement; deleting the run deletes its Jobs through the owner reference.
#[tokio::test]
async fn kubernetes_enforces_the_deadline_and_the_owner_reference() {
    let cp = k8s::ControlPlane::start_with_controller_manager();
    let yaml = rollgate::k8s::crds_yaml().expect("crds");
    let (ok, _, err) = cp.kubectl(&["apply", "--server-side", "-f", "-"], Some(&yaml));
    assert!(ok, "apply rollgate CRDs: {err}");
    let (ok, _, err) = cp.kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/analysisruns.rollgate.dev",
        ],
        None,
    );
    assert!(ok, "{err}");
    let ns = cp.namespace("job-kcm");
    let s = Scene::with(cp.client().await, ns);
    let spec = GOOD_SPEC.replace("activeDeadlineSeconds: 120", "activeDeadlineSeconds: 2");
    apply(&cp, &s.ns, &run_yaml("smoke-deadline", &spec, ""));
    let uid = uid(&s.run("smoke-deadline").await);
    let name = s.wait_job(&uid, 1).await.metadata.name.expect("name");
    let st = s
        .wait_run("smoke-deadline", 90, "the deadline to fail the run", |st| {
            st.phase.is_completed()
        })
        .await;
    assert_eq!(st.phase, AnalysisPhase::Failed, "{st:?}");
    let m = last_measurement(&st);
    assert_eq!(
        m.message,
        format!(
            "Job {name} failed: DeadlineExceeded: Job was active longer than specified deadline"
        )
    );
    // The run's deletion takes its Jobs with it.
    s.runs()
        .delete("smoke-deadline", &DeleteParams::default())
        .await
        .expect("delete the run");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while s.jobs().get_opt(&name).await.expect("get job").is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the garbage collector did not delete Job {name} after its run"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
