//! Promotion throughput and latency against a local bare remote, next to a shell script
//! doing the same with the git CLI (pull, sed, add, commit, push) in the same run.
//!
//! A repository of 1,000 applications × 3 environments (`app-N/values-{dev,staging,prod}.yaml`)
//! is pushed to a bare remote. Then, each on fresh versions:
//! - rollgate (library, as the controller calls it): serial promotions, and 8 concurrent
//!   promoters each with its own cache clone (8 machines);
//! - rollgate (CLI process per promotion): serial;
//! - the script: serial, and 8 concurrent scripts each in its own clone.
//!
//! Run: `cargo bench --bench promotion` (`ROLLGATE_BENCH_N` scales the counts).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rollgate::core::promotion::plan::Source;
use rollgate::core::promotion::policy::{PolicyFile, Version};
use rollgate::gitops::{Promoter, PromoterConfig, PromotionResult};

const APPS: usize = 1000;
const ENVS: [&str; 3] = ["dev", "staging", "prod"];
const WORKERS: usize = 8;

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn values(tag: &str) -> String {
    format!(
        "# values\nreplicaCount: 2  # two\n\nimage:\n  repository: ghcr.io/acme/app\n  tag: \"{tag}\"   # promoted\n  pullPolicy: IfNotPresent\n"
    )
}

fn setup(root: &Path) -> (String, PolicyFile) {
    git(root, &["init", "-q", "--bare", "-b", "main", "remote.git"]);
    let seed = root.join("seed");
    git(root, &["init", "-q", "-b", "main", "seed"]);
    let mut policies = Vec::new();
    let url = format!("file://{}", root.join("remote.git").display());
    for a in 0..APPS {
        let dir = seed.join(format!("app-{a}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let mut text = format!(
            "apiVersion: rollgate.dev/v1alpha1\nkind: PromotionPolicy\nmetadata: {{name: app-{a}}}\nspec:\n  repository: {{url: \"{url}\"}}\n  environments:\n"
        );
        for env in ENVS {
            std::fs::write(dir.join(format!("values-{env}.yaml")), values("1.0.0")).expect("write");
            text.push_str(&format!(
                "    - {{name: {env}, file: app-{a}/values-{env}.yaml, field: image.tag}}\n"
            ));
        }
        policies.push(text);
    }
    git(&seed, &["add", "-A"]);
    git(&seed, &["commit", "-q", "-m", "seed"]);
    git(&seed, &["push", "-q", &url, "main"]);
    let text = policies.join("---\n");
    std::fs::write(root.join("policies.yaml"), &text).expect("policy");
    (
        url,
        PolicyFile::parse("policies.yaml", &text).expect("policy"),
    )
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn rollgate_run(
    url: &str,
    cache: PathBuf,
    policies: Arc<PolicyFile>,
    jobs: Vec<(usize, usize, String)>,
) -> Vec<Duration> {
    let mut config = PromoterConfig::new(url, "main");
    config.cache_dir = cache;
    let promoter = Promoter::open(config).await.expect("open");
    // warm the cache clone, as a running controller has it
    let first = policies.app("app-0").expect("app");
    promoter
        .current_version(first.environment("dev").expect("env"))
        .await
        .expect("warm");
    let mut latencies = Vec::with_capacity(jobs.len());
    for (a, e, version) in jobs {
        let policy = policies.app(&format!("app-{a}")).expect("app");
        let env = policy.environment(ENVS[e]).expect("env");
        let v: Version = version.parse().expect("version");
        let t = Instant::now();
        let o = promoter
            .promote(policy, env, &v, Source::Direct, Some("bench"))
            .await
            .expect("promote");
        latencies.push(t.elapsed());
        assert_eq!(o.result, PromotionResult::Committed);
    }
    latencies
}

const SCRIPT: &str = r#"#!/bin/sh
# The committer workflow of a PostSync job / CI step: pull, sed, add, commit, push,
# pulling again when another committer pushed first.
# usage: promote.sh CLONE APP ENV VERSION
cd "$1" || exit 1
file="$2/values-$3.yaml"
attempt=0
while :; do
  attempt=$((attempt + 1))
  if [ "$attempt" -gt 1000 ]; then echo "gave up after 1000 attempts" >&2; exit 1; fi
  if ! git pull -q --rebase origin main >&2; then
    git rebase --abort 2>/dev/null; git reset -q --hard origin/main; continue
  fi
  sed -i "s/^  tag: \".*\"/  tag: \"$4\"/" "$file"
  git add "$file"
  git commit -q -m "promote $2 $4 to $3" >&2 || { echo "commit failed" >&2; exit 1; }
  if git push -q origin main 2>/dev/null; then exit 0; fi
  git reset -q --hard origin/main
done
"#;

fn script_run(root: &Path, clone: &Path, jobs: &[(usize, usize, String)]) {
    let script = root.join("promote.sh");
    for (a, e, v) in jobs {
        let out = Command::new("sh")
            .arg(&script)
            .arg(clone)
            .arg(format!("app-{a}"))
            .arg(ENVS[*e])
            .arg(v)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "bench")
            .env("GIT_AUTHOR_EMAIL", "bench@example.com")
            .env("GIT_COMMITTER_NAME", "bench")
            .env("GIT_COMMITTER_EMAIL", "bench@example.com")
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "script: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would run us too: only run on --bench.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let scale: usize = std::env::var("ROLLGATE_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let serial_n = 200 * scale;
    let per_worker = 40 * scale;
    let script_serial_n = 40 * scale;
    let script_per_worker = 8 * scale;
    let cli_n = 40 * scale;

    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path();
    let t = Instant::now();
    let (url, policies) = setup(root);
    eprintln!(
        "setup: {APPS} apps x {} envs in {:?}",
        ENVS.len(),
        t.elapsed()
    );
    let policies = Arc::new(policies);
    std::fs::write(root.join("promote.sh"), SCRIPT).expect("script");
    let mut next_version = 0usize;
    let mut job = |a: usize, e: usize| {
        next_version += 1;
        (a % APPS, e % ENVS.len(), format!("2.0.{next_version}"))
    };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    // rollgate, serial
    let jobs: Vec<_> = (0..serial_n).map(|i| job(i * 7, i)).collect();
    let t = Instant::now();
    let mut serial_lat = rt.block_on(rollgate_run(
        &url,
        root.join("cache-serial"),
        Arc::clone(&policies),
        jobs,
    ));
    let serial_total: Duration = serial_lat.iter().sum();
    eprintln!(
        "rollgate serial: {serial_n} in {:?} (wall {:?})",
        serial_total,
        t.elapsed()
    );
    // rollgate, 8 concurrent promoters
    let worker_jobs: Vec<Vec<_>> = (0..WORKERS)
        .map(|w| (0..per_worker).map(|i| job(w * 125 + i, i + w)).collect())
        .collect();
    let (conc_elapsed, mut conc_lat) = rt.block_on(async {
        // open and warm every promoter first, then start them together
        let t = Instant::now();
        let handles: Vec<_> = worker_jobs
            .into_iter()
            .enumerate()
            .map(|(w, jobs)| {
                let p = Arc::clone(&policies);
                let url = url.clone();
                let cache = root.join(format!("cache-{w}"));
                tokio::spawn(async move { rollgate_run(&url, cache, p, jobs).await })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.expect("join"));
        }
        (t.elapsed(), all)
    });
    let conc_n = WORKERS * per_worker;
    eprintln!("rollgate 8 concurrent: {conc_n} in {conc_elapsed:?}");

    // rollgate CLI, one process per promotion
    let cli_jobs: Vec<_> = (0..cli_n).map(|i| job(i * 13 + 3, i)).collect();
    let policy_path = root.join("policies.yaml");
    let cli_cache = root.join("cache-cli");
    let t = Instant::now();
    for (a, e, v) in &cli_jobs {
        let out = Command::new(env!("CARGO_BIN_EXE_rollgate"))
            .args(["promote", "--policy"])
            .arg(&policy_path)
            .args([
                "--app",
                &format!("app-{a}"),
                "--to",
                ENVS[*e],
                "--version",
                v,
            ])
            .env("ROLLGATE_CACHE_DIR", &cli_cache)
            .output()
            .expect("rollgate");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let cli_elapsed = t.elapsed();
    eprintln!("rollgate CLI serial: {cli_n} in {cli_elapsed:?}");

    // the script, serial
    git(root, &["clone", "-q", &url, "clone-serial"]);
    let jobs: Vec<_> = (0..script_serial_n).map(|i| job(i * 11 + 5, i)).collect();
    let t = Instant::now();
    script_run(root, &root.join("clone-serial"), &jobs);
    let script_serial = t.elapsed();
    eprintln!("script serial: {script_serial_n} in {script_serial:?}");
    // the script, 8 concurrent clones
    for w in 0..WORKERS {
        git(root, &["clone", "-q", &url, &format!("clone-{w}")]);
    }
    let worker_jobs: Vec<Vec<_>> = (0..WORKERS)
        .map(|w| {
            (0..script_per_worker)
                .map(|i| job(w * 125 + 60 + i, i))
                .collect()
        })
        .collect();
    let t = Instant::now();
    std::thread::scope(|s| {
        for (w, jobs) in worker_jobs.iter().enumerate() {
            let clone = root.join(format!("clone-{w}"));
            s.spawn(move || script_run(root, &clone, jobs));
        }
    });
    let script_conc = t.elapsed();
    let script_conc_n = WORKERS * script_per_worker;

    // every promotion landed once
    let out = Command::new("git")
        .args(["rev-list", "--count", "main"])
        .current_dir(root.join("remote.git"))
        .output()
        .expect("git");
    let commits: usize = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("count");
    let expected = 1 + serial_n + conc_n + cli_n + script_serial_n + script_conc_n;
    assert_eq!(commits, expected, "every promotion landed exactly once");

    serial_lat.sort();
    conc_lat.sort();
    let r_serial = rate(serial_n, serial_total);
    let r_conc = rate(conc_n, conc_elapsed);
    let r_cli = rate(cli_n, cli_elapsed);
    let s_serial = rate(script_serial_n, script_serial);
    let s_conc = rate(script_conc_n, script_conc);
    println!("promotion benchmark: {APPS} apps x 3 envs, local bare remote over file://");
    println!("| | promotions | promotions/s | vs script |");
    println!("|---|---:|---:|---:|");
    println!(
        "| rollgate library, serial | {serial_n} | {r_serial:.1} | {:.1}x |",
        r_serial / s_serial
    );
    println!(
        "| rollgate library, 8 concurrent promoters | {conc_n} | {r_conc:.1} | {:.1}x |",
        r_conc / s_conc
    );
    println!(
        "| rollgate CLI (process per promotion), serial | {cli_n} | {r_cli:.1} | {:.1}x |",
        r_cli / s_serial
    );
    println!(
        "| git CLI script (pull, sed, add, commit, push), serial | {script_serial_n} | {s_serial:.1} | 1.0x |"
    );
    println!("| git CLI script, 8 concurrent clones | {script_conc_n} | {s_conc:.1} | 1.0x |");
    println!(
        "rollgate latency: serial p50 {:.1} ms, p99 {:.1} ms; 8 concurrent p50 {:.1} ms, p99 {:.1} ms (includes lost races and retries)",
        percentile(&serial_lat, 0.5).as_secs_f64() * 1e3,
        percentile(&serial_lat, 0.99).as_secs_f64() * 1e3,
        percentile(&conc_lat, 0.5).as_secs_f64() * 1e3,
        percentile(&conc_lat, 0.99).as_secs_f64() * 1e3,
    );
    println!("final history: {commits} commits, each promotion exactly once");
}
