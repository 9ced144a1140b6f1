//! Credentials for the GitOps remote: an SSH key (file or agent), an HTTPS token, or
//! basic auth, read from files or the environment.
//!
//! Secrets live in [`Secret`], whose `Debug` and `Display` print `***`, so they cannot
//! reach a log line, an error or a commit message by accident.
//!
//! | variable | meaning |
//! |---|---|
//! | `ROLLGATE_GIT_TOKEN` / `ROLLGATE_GIT_TOKEN_FILE` | HTTPS token (sent as the password of basic auth) |
//! | `ROLLGATE_GIT_USERNAME` | user name for the token or password (default for a token: `x-access-token`) |
//! | `ROLLGATE_GIT_PASSWORD` / `ROLLGATE_GIT_PASSWORD_FILE` | HTTPS basic-auth password |
//! | `ROLLGATE_GIT_SSH_KEY` | private key file for SSH (without it: the SSH agent) |
//! | `ROLLGATE_GIT_SSH_PASSPHRASE` / `ROLLGATE_GIT_SSH_PASSPHRASE_FILE` | passphrase of that key |

use std::fmt;
use std::path::{Path, PathBuf};

/// A secret string that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself, for handing to libgit2 only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How rollgate authenticates to the remote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// User name for HTTPS basic auth or SSH (default: the URL's, else `git` for SSH).
    pub username: Option<String>,
    /// HTTPS password (basic auth).
    pub password: Option<Secret>,
    /// HTTPS token (sent as the basic-auth password).
    pub token: Option<Secret>,
    /// SSH private key file; without it the SSH agent is asked.
    pub ssh_key: Option<PathBuf>,
    /// Passphrase of the SSH key.
    pub ssh_passphrase: Option<Secret>,
}

/// Errors of reading credentials.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// A credentials file named in a variable or flag could not be read.
    #[error("cannot read the {what} file {path}: {source}")]
    File {
        /// Which credential (`token`, `password`, `SSH passphrase`).
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

fn read_secret_file(what: &'static str, path: &Path) -> Result<Secret, CredentialsError> {
    std::fs::read_to_string(path)
        .map(|s| Secret::new(s.trim_end_matches(['\n', '\r'])))
        .map_err(|source| CredentialsError::File {
            what,
            path: path.display().to_string(),
            source,
        })
}

impl Credentials {
    /// Read credentials from the `ROLLGATE_GIT_*` environment variables (see the module
    /// documentation); a `*_FILE` variable names a file holding the secret.
    ///
    /// # Errors
    /// [`CredentialsError::File`] when a named file cannot be read.
    pub fn from_env() -> Result<Self, CredentialsError> {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// Like [`Credentials::from_env`], with variables from `lookup` (for tests).
    ///
    /// # Errors
    /// [`CredentialsError::File`] when a named file cannot be read.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, CredentialsError> {
        let secret =
            |var: &str, file_var: &str, what| -> Result<Option<Secret>, CredentialsError> {
                if let Some(v) = lookup(var) {
                    return Ok(Some(Secret::new(v)));
                }
                lookup(file_var)
                    .map(|p| read_secret_file(what, Path::new(&p)))
                    .transpose()
            };
        Ok(Self {
            username: lookup("ROLLGATE_GIT_USERNAME"),
            password: secret(
                "ROLLGATE_GIT_PASSWORD",
                "ROLLGATE_GIT_PASSWORD_FILE",
                "password",
            )?,
            token: secret("ROLLGATE_GIT_TOKEN", "ROLLGATE_GIT_TOKEN_FILE", "token")?,
            ssh_key: lookup("ROLLGATE_GIT_SSH_KEY").map(PathBuf::from),
            ssh_passphrase: secret(
                "ROLLGATE_GIT_SSH_PASSPHRASE",
                "ROLLGATE_GIT_SSH_PASSPHRASE_FILE",
                "SSH passphrase",
            )?,
        })
    }

    /// Set the token from a file (a CLI flag).
    ///
    /// # Errors
    /// [`CredentialsError::File`] when the file cannot be read.
    pub fn with_token_file(mut self, path: &Path) -> Result<Self, CredentialsError> {
        self.token = Some(read_secret_file("token", path)?);
        Ok(self)
    }

    /// Set the password from a file (a CLI flag).
    ///
    /// # Errors
    /// [`CredentialsError::File`] when the file cannot be read.
    pub fn with_password_file(mut self, path: &Path) -> Result<Self, CredentialsError> {
        self.password = Some(read_secret_file("password", path)?);
        Ok(self)
    }

    /// A libgit2 credentials callback. It offers each kind of credential once, so a
    /// refused credential ends in an authentication error instead of a loop.
    pub(crate) fn callback(
        &self,
    ) -> impl FnMut(&str, Option<&str>, git2::CredentialType) -> Result<git2::Cred, git2::Error> + '_
    {
        let mut tried = git2::CredentialType::empty();
        move |_url, url_user, allowed| {
            let user = self.username.as_deref().or(url_user);
            if allowed.contains(git2::CredentialType::USERNAME)
                && !tried.contains(git2::CredentialType::USERNAME)
            {
                tried |= git2::CredentialType::USERNAME;
                return git2::Cred::username(user.unwrap_or("git"));
            }
            if allowed.contains(git2::CredentialType::SSH_KEY)
                && !tried.contains(git2::CredentialType::SSH_KEY)
            {
                tried |= git2::CredentialType::SSH_KEY;
                let user = user.unwrap_or("git");
                return match &self.ssh_key {
                    Some(key) => git2::Cred::ssh_key(
                        user,
                        None,
                        key,
                        self.ssh_passphrase.as_ref().map(Secret::expose),
                    ),
                    None => git2::Cred::ssh_key_from_agent(user),
                };
            }
            if allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT)
                && !tried.contains(git2::CredentialType::USER_PASS_PLAINTEXT)
            {
                tried |= git2::CredentialType::USER_PASS_PLAINTEXT;
                if let Some(token) = &self.token {
                    return git2::Cred::userpass_plaintext(
                        user.unwrap_or("x-access-token"),
                        token.expose(),
                    );
                }
                if let Some(password) = &self.password {
                    return git2::Cred::userpass_plaintext(
                        user.unwrap_or("git"),
                        password.expose(),
                    );
                }
            }
            Err(git2::Error::new(
                git2::ErrorCode::Auth,
                git2::ErrorClass::Net,
                "authentication failed: no (more) credentials to offer; set ROLLGATE_GIT_TOKEN(_FILE), \
                 ROLLGATE_GIT_USERNAME and ROLLGATE_GIT_PASSWORD(_FILE), or ROLLGATE_GIT_SSH_KEY",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let c = Credentials {
            token: Some(Secret::new("tok-123")),
            password: Some(Secret::new("pw-456")),
            ..Default::default()
        };
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("tok-123") && !shown.contains("pw-456"),
            "{shown}"
        );
    }

    #[test]
    fn reads_files_and_variables() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("token");
        std::fs::write(&f, "abc\n").expect("write");
        let path = f.display().to_string();
        let c = Credentials::from_lookup(|k| match k {
            "ROLLGATE_GIT_TOKEN_FILE" => Some(path.clone()),
            "ROLLGATE_GIT_USERNAME" => Some("bot".into()),
            _ => None,
        })
        .expect("creds");
        assert_eq!(c.token.as_ref().map(Secret::expose), Some("abc"));
        assert_eq!(c.username.as_deref(), Some("bot"));
        let err = Credentials::from_lookup(|k| {
            (k == "ROLLGATE_GIT_PASSWORD_FILE").then(|| "/nonexistent/pw".to_owned())
        })
        .expect_err("missing file");
        assert!(err.to_string().contains("/nonexistent/pw"), "{err}");
    }
}
