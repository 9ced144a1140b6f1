//! Test helpers for the promotion tests: real repositories in temp dirs (a bare remote
//! reached over `file://`, or over smart HTTP behind lighttpd), the `git` CLI to
//! inspect them, and the `rollgate` binary to drive them.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Run `git` with a clean, deterministic configuration; panic with its output on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = git_output(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} in {} failed:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run `git` and return its output whatever the status.
pub fn git_output(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test Person")
        .env("GIT_AUTHOR_EMAIL", "person@example.com")
        .env("GIT_COMMITTER_NAME", "Test Person")
        .env("GIT_COMMITTER_EMAIL", "person@example.com")
        .output()
        .expect("the git CLI runs (scripts/setup installs it)")
}

/// A GitOps repository: a bare remote and a seeding work tree, in a temp dir.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// A bare remote on branch `main` holding `files` (path, content).
    pub fn new(files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let f = Self { dir };
        git(
            f.root(),
            &["init", "-q", "--bare", "-b", "main", "remote.git"],
        );
        git(f.root(), &["init", "-q", "-b", "main", "seed"]);
        for (path, content) in files {
            f.write_seed(path, content);
        }
        git(&f.seed(), &["add", "-A"]);
        git(&f.seed(), &["commit", "-q", "-m", "seed the environments"]);
        let url = f.url();
        git(&f.seed(), &["remote", "add", "origin", &url]);
        git(&f.seed(), &["push", "-q", "origin", "main"]);
        f
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn remote(&self) -> PathBuf {
        self.root().join("remote.git")
    }

    pub fn seed(&self) -> PathBuf {
        self.root().join("seed")
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.remote().display())
    }

    pub fn cache(&self) -> PathBuf {
        self.root().join("cache")
    }

    fn write_seed(&self, path: &str, content: &str) {
        let p = self.seed().join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
    }

    /// Commit `content` to `path` from the seed work tree as a person would, and push.
    pub fn person_commits(&self, path: &str, content: &str, message: &str) {
        git(&self.seed(), &["pull", "-q", "--rebase", "origin", "main"]);
        self.write_seed(path, content);
        git(&self.seed(), &["add", "-A"]);
        git(&self.seed(), &["commit", "-q", "-m", message]);
        git(&self.seed(), &["push", "-q", "origin", "main"]);
    }

    /// A file on the remote's `main`.
    pub fn remote_file(&self, path: &str) -> String {
        self.remote_file_at("main", path)
    }

    /// A file at a revision of the remote.
    pub fn remote_file_at(&self, rev: &str, path: &str) -> String {
        git(&self.remote(), &["show", &format!("{rev}:{path}")])
    }

    /// Number of commits on the remote's `main`.
    pub fn commit_count(&self) -> usize {
        git(&self.remote(), &["rev-list", "--count", "main"])
            .trim()
            .parse()
            .expect("count")
    }

    /// Full message of a revision of the remote.
    pub fn message(&self, rev: &str) -> String {
        git(&self.remote(), &["log", "-1", "--format=%B", rev])
    }

    /// The remote's branches.
    pub fn branches(&self) -> Vec<String> {
        git(
            &self.remote(),
            &["for-each-ref", "--format=%(refname:short)", "refs/heads"],
        )
        .lines()
        .map(str::to_owned)
        .collect()
    }

    /// Write a policy file for `app` with environments (name, file, field, approval).
    pub fn policy(&self, name: &str, app: &str, envs: &[(&str, &str, &str, bool)]) -> PathBuf {
        let path = self.root().join(name);
        let mut text = policy_text(app, &self.url(), envs);
        if path.exists() {
            let old = std::fs::read_to_string(&path).expect("read");
            text = format!("{old}---\n{text}");
        }
        std::fs::write(&path, text).expect("write policy");
        path
    }

    /// Run the `rollgate` binary with this fixture's cache directory.
    pub fn rollgate(&self, args: &[&str]) -> Output {
        rollgate_with(args, &self.cache(), &[])
    }
}

/// The text of one PromotionPolicy document.
pub fn policy_text(app: &str, url: &str, envs: &[(&str, &str, &str, bool)]) -> String {
    let mut text = format!(
        "apiVersion: rollgate.dev/v1alpha1\nkind: PromotionPolicy\nmetadata: {{name: {app}}}\nspec:\n  repository: {{url: \"{url}\", branch: main}}\n  environments:\n"
    );
    for (name, file, field, manual) in envs {
        text.push_str(&format!(
            "    - {{name: {name}, file: \"{file}\", field: \"{field}\"{}}}\n",
            if *manual { ", approval: manual" } else { "" }
        ));
    }
    text.push_str("  onFailure: revert\n");
    text
}

/// Run the `rollgate` binary with a cache directory and extra environment.
pub fn rollgate_with(args: &[&str], cache: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rollgate"));
    cmd.args(args)
        .env("ROLLGATE_CACHE_DIR", cache)
        .env_remove("ROLLGATE_GIT_TOKEN")
        .env_remove("ROLLGATE_GIT_PASSWORD")
        .env_remove("ROLLGATE_GIT_USERNAME");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("rollgate runs")
}

/// stdout and stderr of a run, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Parse a run's stdout as JSON, asserting success.
pub fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", show(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("JSON: {e}\n{}", show(out)))
}

/// The Helm values file of the seed user story.
pub fn values(tag: &str) -> String {
    format!(
        "# application-x values\nreplicaCount: 2  # two is enough\n\nimage:\n  repository: ghcr.io/acme/application-x\n  tag: \"{tag}\"   # promoted by rollgate\n  pullPolicy: IfNotPresent\n"
    )
}

/// A smart-HTTP git server (lighttpd + `git http-backend`) on loopback with basic auth.
pub struct HttpGit {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

/// Where Debian's lighttpd lives; `scripts/setup` installs it.
pub const LIGHTTPD: &str = "/usr/sbin/lighttpd";

impl HttpGit {
    /// Serve the bare repositories under `root` at `http://127.0.0.1:<port>/git/<name>`
    /// for user `user` with password `password`.
    pub fn start(root: &Path, user: &str, password: &str) -> Self {
        assert!(
            Path::new(LIGHTTPD).exists(),
            "{LIGHTTPD} is missing: run scripts/setup (installs Debian's lighttpd for the smart-HTTP push tests)"
        );
        let backend = Command::new("git")
            .args(["--exec-path"])
            .output()
            .expect("git --exec-path");
        let backend =
            PathBuf::from(String::from_utf8_lossy(&backend.stdout).trim()).join("git-http-backend");
        assert!(backend.exists(), "{} is missing", backend.display());
        let dir = tempfile::tempdir().expect("temp dir");
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let users = dir.path().join("users");
        std::fs::write(&users, format!("{user}:{password}\n")).expect("users");
        let conf = dir.path().join("lighttpd.conf");
        std::fs::write(
            &conf,
            format!(
                r#"server.modules = ("mod_alias", "mod_auth", "mod_authn_file", "mod_cgi", "mod_setenv", "mod_accesslog")
server.document-root = "{root}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{dir}/error.log"
server.pid-file = "{dir}/lighttpd.pid"
auth.backend = "plain"
auth.backend.plain.userfile = "{users}"
alias.url = ("/git/" => "{backend}/")
$HTTP["url"] =~ "^/git/" {{
  cgi.assign = ("" => "")
  setenv.add-environment = ("GIT_PROJECT_ROOT" => "{root}", "GIT_HTTP_EXPORT_ALL" => "1")
  auth.require = ("" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
}}
"#,
                root = root.display(),
                dir = dir.path().display(),
                users = users.display(),
                backend = backend.display(),
            ),
        )
        .expect("config");
        let child = Command::new(LIGHTTPD)
            .args(["-D", "-f"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("lighttpd starts");
        let server = Self { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "lighttpd did not listen on {port}: {}",
                std::fs::read_to_string(server.dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// The URL of repository `name` (no credentials in it).
    pub fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/git/{name}", self.port)
    }
}

impl Drop for HttpGit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where Debian's OpenSSH server lives; `scripts/setup` installs it.
pub const SSHD: &str = "/usr/sbin/sshd";

/// An OpenSSH server on loopback that lets one key in (as the current user) and runs
/// `git-receive-pack`/`git-upload-pack` on the repositories, plus a client home with its
/// `known_hosts` and the key.
pub struct SshGit {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl SshGit {
    pub fn start() -> Self {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: run scripts/setup (installs Debian's openssh-server for the SSH push test)"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let keygen = |file: &Path| {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(file)
                .output()
                .expect("ssh-keygen runs");
            assert!(
                out.status.success(),
                "ssh-keygen: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys"))
            .expect("authorized_keys");
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        std::fs::create_dir_all("/run/sshd").expect("privilege separation dir");
        let conf = d.join("sshd_config");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\n\
                 PidFile {d}/sshd.pid\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n",
                d = d.display()
            ),
        )
        .expect("sshd_config");
        let home = d.join("home/.ssh");
        std::fs::create_dir_all(&home).expect("home");
        let host_pub = std::fs::read_to_string(d.join("host_key.pub")).expect("host key");
        let mut parts = host_pub.split_whitespace();
        let (kind, key) = (parts.next().expect("kind"), parts.next().expect("key"));
        std::fs::write(
            home.join("known_hosts"),
            format!("[127.0.0.1]:{port} {kind} {key}\n"),
        )
        .expect("known_hosts");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("sshd.log")).expect("log"))
            .spawn()
            .expect("sshd starts");
        let server = Self { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "sshd did not listen on {port}: {}",
                std::fs::read_to_string(server.dir.path().join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// `ssh://` URL of a repository by absolute path, as the current user.
    pub fn url(&self, repo: &Path) -> String {
        let user = std::env::var("USER").unwrap_or_else(|_| "root".to_owned());
        format!("ssh://{user}@127.0.0.1:{}{}", self.port, repo.display())
    }

    /// The client's private key.
    pub fn key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// A HOME holding `.ssh/known_hosts` with this server's host key.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for SshGit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
