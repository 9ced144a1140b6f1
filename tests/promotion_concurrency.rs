//! Twenty `rollgate promote` processes of different applications push into one remote
//! at once: every promotion lands exactly once, nothing is lost or duplicated.

#[path = "support/git.rs"]
mod support;

use std::process::Command;

use support::{Fixture, git, policy_text, show, values};

#[test]
fn twenty_concurrent_promoters_each_land_exactly_once() {
    const N: usize = 20;
    let files: Vec<(String, String)> = (0..N)
        .map(|i| (format!("app-{i}/values-prod.yaml"), values("1.0.0")))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let f = Fixture::new(&refs);
    let policy = f.root().join("policies.yaml");
    let text: Vec<String> = (0..N)
        .map(|i| {
            let file = format!("app-{i}/values-prod.yaml");
            policy_text(
                &format!("app-{i}"),
                &f.url(),
                &[("prod", &file, "image.tag", false)],
            )
        })
        .collect();
    std::fs::write(&policy, text.join("---\n")).expect("policy");
    let before = f.commit_count();

    let children: Vec<_> = (0..N)
        .map(|i| {
            // half the promoters have a cache of their own (separate machines), half share
            // one (one machine, serialised by the cache lock)
            let cache = if i % 2 == 0 {
                f.root().join(format!("cache-{i}"))
            } else {
                f.root().join("cache-shared")
            };
            Command::new(env!("CARGO_BIN_EXE_rollgate"))
                .args(["promote", "--policy"])
                .arg(&policy)
                .args(["--app", &format!("app-{i}"), "--to", "prod"])
                .args(["--version", &format!("2.0.{i}"), "--output", "json"])
                .env("ROLLGATE_CACHE_DIR", cache)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn rollgate")
        })
        .collect();
    let mut retried = 0;
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "promoter {i}: {}", show(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v["result"], "committed", "promoter {i}: {v}");
        if v["attempts"].as_u64().unwrap_or(0) > 1 {
            retried += 1;
        }
    }
    assert_eq!(f.commit_count(), before + N, "one commit per promotion");
    let log = git(&f.remote(), &["log", "--format=%B", "main"]);
    for i in 0..N {
        let id = format!("Rollgate-Promotion: app-{i}/prod/2.0.{i}");
        assert_eq!(log.matches(&id).count(), 1, "{id} appears once");
        assert_eq!(
            f.remote_file(&format!("app-{i}/values-prod.yaml")),
            values(&format!("2.0.{i}")),
            "app-{i} has its version"
        );
    }
    // history is linear: every promotion was re-applied on the tip, never merged
    let merges = git(&f.remote(), &["rev-list", "--merges", "--count", "main"]);
    assert_eq!(merges.trim(), "0");
    eprintln!("{retried} of {N} promoters lost at least one race and retried");
}
