//! The push path over SSH (Debian's OpenSSH server on loopback) with a key file.

#[path = "support/git.rs"]
mod support;

use support::{Fixture, SshGit, policy_text, rollgate_with, show, values};

#[test]
fn promote_over_ssh_with_a_key_file() {
    let f = Fixture::new(&[("app/values.yaml", &values("1.0.0"))]);
    let server = SshGit::start();
    let policy = f.root().join("policy.yaml");
    std::fs::write(
        &policy,
        policy_text(
            "app",
            &server.url(&f.remote()),
            &[("dev", "app/values.yaml", "image.tag", false)],
        ),
    )
    .expect("policy");
    let key = server.key().display().to_string();
    let home = server.home().display().to_string();
    let run = |version: &str, extra: &[(&str, &str)]| {
        let mut env = vec![("HOME", home.as_str()), ("SSH_AUTH_SOCK", "")];
        env.extend_from_slice(extra);
        rollgate_with(
            &[
                "promote",
                "--policy",
                &policy.display().to_string(),
                "--app",
                "app",
                "--to",
                "dev",
                "--version",
                version,
                "--output",
                "json",
                "--timeout",
                "20",
            ],
            &f.cache(),
            &env,
        )
    };
    let out = run("1.1.0", &[("ROLLGATE_GIT_SSH_KEY", &key)]);
    assert!(
        out.status.success(),
        "{}\nsshd:\n{}",
        show(&out),
        server.log()
    );
    assert_eq!(f.remote_file("app/values.yaml"), values("1.1.0"));
    assert_eq!(f.commit_count(), 2);

    // a key the server does not know: a clear authentication error, nothing pushed
    let stranger = server.dir.path().join("stranger");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .output()
        .expect("ssh-keygen");
    assert!(keygen.status.success());
    let out = run(
        "1.2.0",
        &[("ROLLGATE_GIT_SSH_KEY", &stranger.display().to_string())],
    );
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert!(show(&out).to_lowercase().contains("auth"), "{}", show(&out));
    assert_eq!(f.commit_count(), 2);
}
