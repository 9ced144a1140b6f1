//! The push path over a real smart-HTTP server (Debian's lighttpd running
//! `git http-backend`) on loopback, with basic authentication and a pre-receive hook.

#[path = "support/git.rs"]
mod support;

use std::path::Path;

use support::{Fixture, HttpGit, git, policy_text, rollgate_with, show, values};

const USER: &str = "deployer";
const PASSWORD: &str = "s3cret-pw-4711";
const TOKEN: &str = "tok-abcdef-0815";

struct Setup {
    f: Fixture,
    server: HttpGit,
    policy: std::path::PathBuf,
    secrets: tempfile::TempDir,
}

fn setup() -> Setup {
    let f = Fixture::new(&[
        ("app/values-staging.yaml", &values("1.0.0")),
        ("app/values-prod.yaml", &values("1.0.0")),
    ]);
    let server = HttpGit::start(f.root(), USER, PASSWORD);
    // a second account whose password is a token
    let users = server.dir.path().join("users");
    let mut text = std::fs::read_to_string(&users).expect("users");
    text.push_str(&format!("bot:{TOKEN}\n"));
    std::fs::write(&users, text).expect("users");
    let policy = f.root().join("policy.yaml");
    std::fs::write(
        &policy,
        policy_text(
            "app",
            &server.url("remote.git"),
            &[
                ("staging", "app/values-staging.yaml", "image.tag", false),
                ("prod", "app/values-prod.yaml", "image.tag", false),
            ],
        ),
    )
    .expect("policy");
    let secrets = tempfile::tempdir().expect("tmp");
    std::fs::write(secrets.path().join("password"), format!("{PASSWORD}\n")).expect("pw");
    Setup {
        f,
        server,
        policy,
        secrets,
    }
}

fn promote(s: &Setup, env: &str, version: &str, extra: &[(&str, &str)]) -> std::process::Output {
    rollgate_with(
        &[
            "promote",
            "--policy",
            &s.policy.display().to_string(),
            "--app",
            "app",
            "--to",
            env,
            "--version",
            version,
            "--output",
            "json",
            "--timeout",
            "20",
        ],
        &s.f.cache(),
        extra,
    )
}

fn password_file(s: &Setup) -> String {
    s.secrets.path().join("password").display().to_string()
}

#[test]
fn push_over_http_with_basic_auth_and_token() {
    let s = setup();
    let pw = password_file(&s);
    let out = promote(
        &s,
        "staging",
        "1.1.0",
        &[
            ("ROLLGATE_GIT_USERNAME", USER),
            ("ROLLGATE_GIT_PASSWORD_FILE", &pw),
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(s.f.remote_file("app/values-staging.yaml"), values("1.1.0"));

    let out = promote(
        &s,
        "prod",
        "1.1.0",
        &[
            ("ROLLGATE_GIT_USERNAME", "bot"),
            ("ROLLGATE_GIT_TOKEN", TOKEN),
        ],
    );
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(s.f.remote_file("app/values-prod.yaml"), values("1.1.0"));
    assert_eq!(s.f.commit_count(), 3);
    let log = git(&s.f.remote(), &["log", "--format=%B", "main"]);
    assert!(!log.contains(PASSWORD) && !log.contains(TOKEN));
}

#[test]
fn bad_credentials_are_a_clear_error_without_the_secret() {
    let s = setup();
    let out = promote(
        &s,
        "staging",
        "1.1.0",
        &[
            ("ROLLGATE_GIT_USERNAME", USER),
            ("ROLLGATE_GIT_PASSWORD", "wrong-pw-9999"),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let all = show(&out);
    assert!(all.to_lowercase().contains("auth"), "{all}");
    assert!(
        !all.contains("wrong-pw-9999") && !all.contains(PASSWORD),
        "{all}"
    );
    let out = promote(&s, "staging", "1.1.0", &[]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert_eq!(s.f.commit_count(), 1, "nothing pushed");
}

fn cache_refs(cache: &Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(cache).expect("cache dir") {
        let repo = entry.expect("entry").path().join("repo.git");
        if repo.exists() {
            all.push_str(&git(&repo, &["for-each-ref", "--format=%(refname)"]));
        }
    }
    all
}

#[test]
fn a_rejecting_pre_receive_hook_is_a_clear_error_and_nothing_is_half_done() {
    let s = setup();
    let pw = password_file(&s);
    let creds = [
        ("ROLLGATE_GIT_USERNAME", USER),
        ("ROLLGATE_GIT_PASSWORD_FILE", pw.as_str()),
    ];
    let hook = s.f.remote().join("hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\necho 'change freeze: prod is frozen until Monday' >&2\nexit 1\n",
    )
    .expect("hook");
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&hook)
        .status()
        .expect("chmod");
    let before = git(&s.f.remote(), &["rev-parse", "main"]);

    let out = promote(&s, "staging", "1.1.0", &creds);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused"), "{err}");
    assert!(
        err.contains("change freeze: prod is frozen until Monday"),
        "{err}"
    );
    assert!(!err.contains(PASSWORD));
    assert_eq!(
        git(&s.f.remote(), &["rev-parse", "main"]),
        before,
        "remote unchanged"
    );
    let refs = cache_refs(&s.f.cache());
    assert!(
        !refs.contains("refs/rollgate/push/"),
        "no temporary push ref left: {refs}"
    );

    // lift the freeze: the same promotion lands, once
    std::fs::remove_file(&hook).expect("rm hook");
    let out = promote(&s, "staging", "1.1.0", &creds);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(s.f.commit_count(), 2);
    assert_eq!(s.f.remote_file("app/values-staging.yaml"), values("1.1.0"));
    let _ = &s.server;
}

#[test]
fn a_remote_that_never_answers_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // accept connections and never answer
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            held.push(s);
        }
    });
    let f = Fixture::new(&[("app/values.yaml", &values("1.0.0"))]);
    let policy = f.root().join("policy.yaml");
    std::fs::write(
        &policy,
        policy_text(
            "app",
            &format!("http://127.0.0.1:{port}/git/remote.git"),
            &[("dev", "app/values.yaml", "image.tag", false)],
        ),
    )
    .expect("policy");
    let started = std::time::Instant::now();
    let out = rollgate_with(
        &[
            "promote",
            "--policy",
            &policy.display().to_string(),
            "--app",
            "app",
            "--to",
            "dev",
            "--version",
            "2",
            "--timeout",
            "2",
        ],
        &f.cache(),
        &[],
    );
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("timed out"),
        "{}",
        show(&out)
    );
    assert!(took < std::time::Duration::from_secs(15), "took {took:?}");
}
