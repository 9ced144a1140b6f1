//! `rollgate promote`, `revert`, `approve` and `history` on real repositories: a bare
//! remote over `file://`, inspected with the git CLI, driven through the binary.

#[path = "support/git.rs"]
mod support;

use support::{Fixture, git, json, show, values};

const APP: &str = "application-x";

fn seed_story() -> (Fixture, std::path::PathBuf) {
    let f = Fixture::new(&[
        ("application-x/values-dev.yaml", &values("1.2.3")),
        ("application-x/values-staging.yaml", &values("1.2.2")),
        ("application-x/values-prod.yaml", &values("1.2.1")),
        ("README.md", "deploys\n"),
    ]);
    let policy = f.policy(
        "policy.yaml",
        APP,
        &[
            ("dev", "application-x/values-dev.yaml", "image.tag", false),
            (
                "staging",
                "application-x/values-staging.yaml",
                "image.tag",
                false,
            ),
            ("prod", "application-x/values-prod.yaml", "image.tag", true),
        ],
    );
    (f, policy)
}

fn p(policy: &std::path::Path) -> String {
    policy.display().to_string()
}

#[test]
fn promote_commits_only_the_token_with_trailers() {
    let (f, policy) = seed_story();
    let before = f.commit_count();
    let out = f.rollgate(&[
        "promote",
        "--policy",
        &p(&policy),
        "--app",
        APP,
        "--to",
        "staging",
        "--from",
        "dev",
        "--evidence",
        "analysis success-rate: Successful",
        "--output",
        "json",
    ]);
    let v = json(&out);
    assert_eq!(v["result"], "committed", "{v}");
    assert_eq!(v["previous"], "1.2.2");
    assert_eq!(f.commit_count(), before + 1);
    assert_eq!(
        f.remote_file("application-x/values-staging.yaml"),
        values("1.2.2").replace("1.2.2", "1.2.3"),
        "only the version token changes"
    );
    let msg = f.message("main");
    for line in [
        "Rollgate-Promotion: application-x/staging/1.2.3",
        "Rollgate-App: application-x",
        "Rollgate-From: dev",
        "Rollgate-To: staging",
        "Rollgate-Version: 1.2.3",
        "Rollgate-Evidence: analysis success-rate: Successful",
    ] {
        assert!(msg.lines().any(|l| l == line), "missing {line:?} in\n{msg}");
    }
    // git itself reads them as trailers
    let trailers = git(
        &f.remote(),
        &[
            "log",
            "-1",
            "--format=%(trailers:key=Rollgate-Version,valueonly)",
            "main",
        ],
    );
    assert_eq!(trailers.trim(), "1.2.3");
    // only that file changed
    let changed = git(&f.remote(), &["diff", "--name-only", "main~1", "main"]);
    assert_eq!(changed.trim(), "application-x/values-staging.yaml");
}

#[test]
fn promoting_twice_commits_once_and_a_landed_id_is_not_repeated() {
    let (f, policy) = seed_story();
    let args = [
        "promote",
        "--policy",
        &p(&policy),
        "--app",
        APP,
        "--to",
        "dev",
        "--version",
        "1.3.0",
        "--output",
        "json",
    ];
    assert_eq!(json(&f.rollgate(&args))["result"], "committed");
    let count = f.commit_count();
    let again = json(&f.rollgate(&args));
    assert_eq!(again["result"], "alreadyAtVersion", "{again}");
    assert_eq!(f.commit_count(), count, "no second commit");

    // Someone moves dev on; a late retry of the 1.3.0 promotion must not roll it back.
    f.person_commits(
        "application-x/values-dev.yaml",
        &values("1.4.0"),
        "hotfix dev",
    );
    let late = json(&f.rollgate(&args));
    assert_eq!(late["result"], "alreadyLanded", "{late}");
    assert!(
        f.remote_file("application-x/values-dev.yaml")
            .contains("\"1.4.0\"")
    );

    let text = f.rollgate(&[
        "promote",
        "--policy",
        &p(&policy),
        "--app",
        APP,
        "--to",
        "dev",
        "--version",
        "1.4.0",
    ]);
    assert!(text.status.success(), "{}", show(&text));
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("nothing to commit"),
        "{}",
        show(&text)
    );
}

#[test]
fn input_errors_name_the_file_and_path() {
    let f = Fixture::new(&[
        ("a/values.yaml", &values("1")),
        ("b/broken.yaml", "image:\n  tag: [1\n"),
        ("c/values.yaml", "image:\n  repository: x\n"),
    ]);
    let policy = f.policy(
        "policy.yaml",
        "app",
        &[
            ("ok", "a/values.yaml", "image.tag", false),
            ("gone", "a/missing.yaml", "image.tag", false),
            ("broken", "b/broken.yaml", "image.tag", false),
            ("nofield", "c/values.yaml", "image.tag", false),
        ],
    );
    let run = |env: &str| {
        f.rollgate(&[
            "promote",
            "--policy",
            &p(&policy),
            "--app",
            "app",
            "--to",
            env,
            "--version",
            "2",
        ])
    };
    let cases = [
        ("gone", "a/missing.yaml: no such file"),
        ("broken", "b/broken.yaml:"),
        (
            "nofield",
            "c/values.yaml: field image.tag: image.tag not found",
        ),
        ("qa", "spec.environments has no environment \"qa\""),
    ];
    for (env, expected) in cases {
        let out = run(env);
        assert_eq!(out.status.code(), Some(64), "{env}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(expected),
            "{env}: expected {expected:?} in {err}"
        );
    }
    let out = run("broken");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("malformed YAML"),
        "{}",
        show(&out)
    );
    // a bad policy names the file, line and field
    let bad = f.root().join("bad.yaml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&policy).expect("policy").replacen(
            "field: \"image.tag\"",
            "field: \"image tag\"",
            1,
        ),
    )
    .expect("write");
    let out = f.rollgate(&[
        "promote",
        "--policy",
        &p(&bad),
        "--app",
        "app",
        "--to",
        "ok",
        "--version",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(64), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:7:", bad.display())), "{err}");
    assert!(err.contains("spec.environments[0].field"), "{err}");
    assert_eq!(f.commit_count(), 1, "nothing committed");
}

#[test]
fn revert_whole_change_then_idempotent() {
    let (f, policy) = seed_story();
    let promote = f.rollgate(&[
        "promote",
        "--policy",
        &p(&policy),
        "--app",
        APP,
        "--to",
        "staging",
        "--version",
        "1.2.3",
        "--evidence",
        "canary passed",
    ]);
    assert!(promote.status.success(), "{}", show(&promote));
    let promoted = git(&f.remote(), &["rev-parse", "main"]);
    let args = [
        "revert",
        "--policy",
        &p(&policy),
        "--app",
        APP,
        "--env",
        "staging",
        "--version",
        "1.2.3",
        "--reason",
        "error rate 7% > 1%",
        "--output",
        "json",
    ];
    let v = json(&f.rollgate(&args));
    assert_eq!(v["result"], "reverted", "{v}");
    assert_eq!(v["mode"], "wholeChange");
    assert_eq!(v["restored"], "1.2.2");
    assert_eq!(v["reverted"], promoted.trim());
    assert_eq!(
        f.remote_file("application-x/values-staging.yaml"),
        values("1.2.2")
    );
    let msg = f.message("main");
    assert!(
        msg.contains(&format!("This reverts commit {}", promoted.trim())),
        "{msg}"
    );
    assert!(
        msg.contains("Rollgate-Revert: application-x/staging/1.2.3"),
        "{msg}"
    );
    assert!(msg.contains("Rollgate-Reason: error rate 7% > 1%"), "{msg}");
    assert!(msg.contains("Rollgate-Evidence: canary passed"), "{msg}");
    let count = f.commit_count();
    let again = json(&f.rollgate(&args));
    assert_eq!(again["result"], "notCurrent", "{again}");
    assert_eq!(f.commit_count(), count);

    // the reverted promotion may be promoted again
    let re = json(&f.rollgate(&[
        "promote",
        "--policy",
        &p(&policy),
        "--app",
        APP,
        "--to",
        "staging",
        "--version",
        "1.2.3",
        "--output",
        "json",
    ]));
    assert_eq!(re["result"], "committed", "{re}");
}

#[test]
fn revert_after_later_commits_touched_the_file_restores_only_the_field() {
    let (f, policy) = seed_story();
    let promote = f.rollgate(&[
        "promote",
        "--policy",
        &p(&policy),
        "--app",
        APP,
        "--to",
        "staging",
        "--version",
        "1.2.3",
    ]);
    assert!(promote.status.success(), "{}", show(&promote));
    let later = f.remote_file("application-x/values-staging.yaml").replace(
        "replicaCount: 2  # two is enough",
        "replicaCount: 4  # more for the sale",
    );
    f.person_commits("application-x/values-staging.yaml", &later, "scale staging");
    let v = json(&f.rollgate(&[
        "revert",
        "--policy",
        &p(&policy),
        "--app",
        APP,
        "--env",
        "staging",
        "--version",
        "1.2.3",
        "--reason",
        "p99 latency",
        "--output",
        "json",
    ]));
    assert_eq!(v["mode"], "fieldOnly", "{v}");
    assert_eq!(
        f.remote_file("application-x/values-staging.yaml"),
        later.replace("\"1.2.3\"", "\"1.2.2\""),
        "the later change stays, only the field goes back"
    );
    let msg = f.message("main");
    assert!(
        msg.contains("Only the field goes back to 1.2.2: later commits touched the file"),
        "{msg}"
    );
}

#[test]
fn revert_without_trailers_uses_the_history_of_the_field() {
    let (f, policy) = seed_story();
    f.person_commits(
        "application-x/values-dev.yaml",
        &values("1.2.9"),
        "bump dev by hand",
    );
    let by_hand = git(&f.remote(), &["rev-parse", "main"]);
    let v = json(&f.rollgate(&[
        "revert",
        "--policy",
        &p(&policy),
        "--app",
        APP,
        "--env",
        "dev",
        "--version",
        "1.2.9",
        "--output",
        "json",
    ]));
    assert_eq!(v["result"], "reverted", "{v}");
    assert_eq!(v["reverted"], by_hand.trim());
    assert_eq!(
        f.remote_file("application-x/values-dev.yaml"),
        values("1.2.3")
    );
    assert!(
        f.message("main")
            .contains("found in the history of the field")
    );
}

#[test]
fn manual_approval_via_cli_lands_on_main() {
    let (f, policy) = seed_story();
    let args = [
        "promote",
        "--policy",
        &p(&policy),
        "--app",
        APP,
        "--to",
        "prod",
        "--version",
        "1.2.3",
        "--evidence",
        "staging soaked 1h",
        "--output",
        "json",
    ];
    let v = json(&f.rollgate(&args));
    assert_eq!(v["result"], "pendingApproval", "{v}");
    assert_eq!(v["branch"], "rollgate/promote/application-x/prod/1.2.3");
    assert!(
        f.remote_file("application-x/values-prod.yaml")
            .contains("1.2.1"),
        "main untouched"
    );
    assert!(
        f.branches()
            .contains(&"rollgate/promote/application-x/prod/1.2.3".to_owned())
    );
    assert_eq!(json(&f.rollgate(&args))["result"], "alreadyPending");

    let h = json(&f.rollgate(&[
        "history",
        "--policy",
        &p(&policy),
        "--app",
        APP,
        "--output",
        "json",
    ]));
    let prod = &h[2];
    assert_eq!(prod["env"], "prod");
    assert_eq!(prod["pending"][0]["version"], "1.2.3", "{h}");

    // main moves on meanwhile: approve re-applies on the new tip
    f.person_commits("README.md", "deploys, documented\n", "docs");
    let a = json(&f.rollgate(&[
        "approve",
        "--policy",
        &p(&policy),
        "--app",
        APP,
        "--env",
        "prod",
        "--version",
        "1.2.3",
        "--output",
        "json",
    ]));
    assert_eq!(a["result"], "landed", "{a}");
    assert_eq!(a["branchDeleted"], true);
    assert!(
        f.remote_file("application-x/values-prod.yaml")
            .contains("\"1.2.3\"")
    );
    assert_eq!(f.remote_file("README.md"), "deploys, documented\n");
    let msg = f.message("main");
    assert!(
        msg.contains("Rollgate-Promotion: application-x/prod/1.2.3"),
        "{msg}"
    );
    assert!(
        msg.contains("Rollgate-Approved: rollgate/promote/application-x/prod/1.2.3"),
        "{msg}"
    );
    assert!(!f.branches().iter().any(|b| b.starts_with("rollgate/")));
    let again = json(&f.rollgate(&[
        "approve",
        "--policy",
        &p(&policy),
        "--app",
        APP,
        "--env",
        "prod",
        "--version",
        "1.2.3",
        "--output",
        "json",
    ]));
    assert_eq!(again["result"], "alreadyLanded", "{again}");
    let h = json(&f.rollgate(&[
        "history",
        "--policy",
        &p(&policy),
        "--app",
        APP,
        "--output",
        "json",
    ]));
    assert_eq!(h[2]["current"], "1.2.3");
    assert_eq!(
        h[2]["setBy"]["promotion"], "application-x/prod/1.2.3",
        "{h}"
    );
    assert_eq!(h[2]["setBy"]["evidence"], "staging soaked 1h");
    assert_eq!(h[2]["pending"].as_array().map(Vec::len), Some(0));
}

#[test]
fn a_merge_done_with_the_git_cli_is_the_approval() {
    let (f, policy) = seed_story();
    let v = json(&f.rollgate(&[
        "promote",
        "--policy",
        &p(&policy),
        "--app",
        APP,
        "--to",
        "prod",
        "--version",
        "1.2.3",
        "--output",
        "json",
    ]));
    assert_eq!(v["result"], "pendingApproval", "{v}");
    // a person merges the branch as a forge would (a merge commit)
    let seed = f.seed();
    git(&seed, &["fetch", "-q", "origin"]);
    git(&seed, &["pull", "-q", "--rebase", "origin", "main"]);
    git(
        &seed,
        &[
            "merge",
            "-q",
            "--no-ff",
            "-m",
            "Merge pull request #7",
            "origin/rollgate/promote/application-x/prod/1.2.3",
        ],
    );
    git(&seed, &["push", "-q", "origin", "main"]);

    let h = json(&f.rollgate(&[
        "history",
        "--policy",
        &p(&policy),
        "--app",
        APP,
        "--output",
        "json",
    ]));
    assert_eq!(h[2]["current"], "1.2.3", "{h}");
    assert_eq!(
        h[2]["setBy"]["promotion"], "application-x/prod/1.2.3",
        "{h}"
    );
    assert_eq!(
        h[2]["pending"].as_array().map(Vec::len),
        Some(0),
        "merged is not pending"
    );

    let count = f.commit_count();
    let a = json(&f.rollgate(&[
        "approve",
        "--policy",
        &p(&policy),
        "--app",
        APP,
        "--env",
        "prod",
        "--version",
        "1.2.3",
        "--output",
        "json",
    ]));
    assert_eq!(a["result"], "alreadyLanded", "{a}");
    assert_eq!(f.commit_count(), count, "nothing committed");
    let again = json(&f.rollgate(&[
        "promote",
        "--policy",
        &p(&policy),
        "--app",
        APP,
        "--to",
        "prod",
        "--version",
        "1.2.3",
        "--output",
        "json",
    ]));
    assert_eq!(again["result"], "alreadyAtVersion", "{again}");
}

#[test]
fn history_says_who_set_each_version() {
    let (f, policy) = seed_story();
    let out = f.rollgate(&[
        "promote",
        "--policy",
        &p(&policy),
        "--app",
        APP,
        "--to",
        "staging",
        "--from",
        "dev",
        "--evidence",
        "smoke tests green",
    ]);
    assert!(out.status.success(), "{}", show(&out));
    let h = json(&f.rollgate(&[
        "history",
        "--policy",
        &p(&policy),
        "--app",
        APP,
        "--output",
        "json",
    ]));
    assert_eq!(h[0]["current"], "1.2.3");
    assert_eq!(h[0]["setBy"]["subject"], "seed the environments", "{h}");
    assert_eq!(h[1]["current"], "1.2.3");
    assert_eq!(h[1]["setBy"]["promotion"], "application-x/staging/1.2.3");
    assert_eq!(h[1]["setBy"]["from"], "dev");
    assert_eq!(h[1]["setBy"]["evidence"], "smoke tests green");
    assert!(
        h[1]["setBy"]["since"]
            .as_i64()
            .is_some_and(|t| t > 1_700_000_000)
    );
    let text = f.rollgate(&["history", "--policy", &p(&policy), "--app", APP]);
    let s = String::from_utf8_lossy(&text.stdout);
    assert!(
        s.contains("staging: 1.2.3") && s.contains("promotion application-x/staging/1.2.3"),
        "{s}"
    );
}
