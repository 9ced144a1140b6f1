//! The `PromotionPolicy` spec: which repository, which environments in which order, where
//! each keeps its version, who must approve, and what happens when a check fails.
//!
//! The same types back the YAML file the CLI reads and, later, the `PromotionPolicy` CRD
//! (`rollgate.dev/v1alpha1`), so they carry serde with the Kubernetes field names
//! (camelCase) and a JSON schema, and nothing Kubernetes-specific.
//!
//! ```yaml
//! apiVersion: rollgate.dev/v1alpha1
//! kind: PromotionPolicy
//! metadata: {name: application-x}
//! spec:
//!   repository: {url: https://git.example.com/deploys.git, branch: main}
//!   environments:
//!     - {name: dev,     file: application-x/values-dev.yaml,     field: image.tag}
//!     - {name: staging, file: application-x/values-staging.yaml, field: image.tag}
//!     - {name: prod,    file: application-x/values-prod.yaml,    field: image.tag, approval: manual}
//!   onFailure: revert
//! ```
//!
//! Values are checked while they are read, so a bad value is reported by serde_yaml
//! with the field path and the line and column where it stands.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::core::names::is_dns_label;

/// The `apiVersion` a policy document must carry.
pub const API_VERSION: &str = "rollgate.dev/v1alpha1";

/// One `PromotionPolicy` document: the promotion pipeline of one application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromotionPolicy {
    /// Always `rollgate.dev/v1alpha1`.
    pub api_version: ApiVersion,
    /// Always `PromotionPolicy`.
    pub kind: PolicyKind,
    /// The policy's name, which is the application's name (`--app`).
    pub metadata: PolicyMetadata,
    /// What the policy says.
    pub spec: PromotionPolicySpec,
}

/// The `apiVersion` of a policy; only [`API_VERSION`] exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ApiVersion {
    /// `rollgate.dev/v1alpha1`.
    #[serde(rename = "rollgate.dev/v1alpha1")]
    V1Alpha1,
}

/// The `kind` of a policy document; only `PromotionPolicy` exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PolicyKind {
    /// `PromotionPolicy`.
    PromotionPolicy,
}

/// The part of Kubernetes object metadata a policy uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyMetadata {
    /// The application's name: a DNS-1123 label (`application-x`).
    pub name: AppName,
    /// Namespace of the object when it is a custom resource; unused by the CLI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// The spec of a `PromotionPolicy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PromotionPolicySpec {
    /// The GitOps repository the environments' files live in.
    pub repository: RepositorySpec,
    /// The environments in promotion order (the first is where versions enter).
    pub environments: Environments,
    /// What to do with Git when a check in an environment fails (default `revert`).
    #[serde(default)]
    pub on_failure: OnFailure,
}

/// Where the GitOps repository is and which branch describes what runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RepositorySpec {
    /// Clone URL: `https://…`, `ssh://…`, `git@host:path`, or `file://…`. Must not carry
    /// credentials; those come from a Secret (controller) or files/environment (CLI).
    pub url: String,
    /// The branch every environment syncs from (default `main`).
    #[serde(default = "default_branch")]
    pub branch: String,
    /// The Secret holding the credentials, for the controller. The CLI reads
    /// credentials from files or the environment instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,
}

fn default_branch() -> String {
    "main".to_owned()
}

/// A reference to a Secret in the policy's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretRef {
    /// The Secret's name.
    pub name: String,
}

/// One environment: the file and field that hold its version, and its gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentSpec {
    /// The environment's name: a DNS-1123 label (`staging`).
    pub name: EnvName,
    /// The file, relative to the repository root (`application-x/values-staging.yaml`).
    pub file: RepoPath,
    /// Where in the file the version is: see [`VersionField`] for the syntax.
    pub field: VersionField,
    /// Whether entering this environment needs a person's approval (default `none`).
    #[serde(default)]
    pub approval: Approval,
}

/// Whether entering an environment needs a person's approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Approval {
    /// The promotion commit goes straight onto the branch.
    #[default]
    None,
    /// The promotion commit goes onto `rollgate/promote/<app>/<env>/<version>` and waits
    /// for `rollgate approve` or a merge in the forge.
    Manual,
}

/// What to do with Git when a check in an environment fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OnFailure {
    /// Revert the commit that brought the version into the environment.
    #[default]
    Revert,
    /// Only abort traffic; leave Git as it is.
    Abort,
}

/// Errors of loading or querying policies. Every message names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The YAML is malformed, a field is missing or has a bad value or type; `message`
    /// names the field path and `line`/`column` where serde_yaml found it.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The policy file.
        file: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// What is wrong, starting with the field path.
        message: String,
    },
    /// The file holds no policy document.
    #[error("{file}: no PromotionPolicy document in the file")]
    Empty {
        /// The policy file.
        file: String,
    },
    /// Two documents in the file have the same `metadata.name`.
    #[error("{file}: metadata.name: two PromotionPolicy documents are named {app:?}")]
    DuplicateApp {
        /// The policy file.
        file: String,
        /// The repeated name.
        app: String,
    },
    /// No document of the file is named like the requested application.
    #[error("{file}: no PromotionPolicy with metadata.name {app:?} (the file has: {available})")]
    UnknownApp {
        /// The policy file.
        file: String,
        /// The requested application.
        app: String,
        /// The names in the file, comma-separated.
        available: String,
    },
    /// The application's policy has no environment of that name.
    #[error(
        "{file}: PromotionPolicy {app:?}: spec.environments has no environment {env:?} (it has: {available})"
    )]
    UnknownEnvironment {
        /// The policy file.
        file: String,
        /// The application.
        app: String,
        /// The requested environment.
        env: String,
        /// The environment names, comma-separated.
        available: String,
    },
}

/// A file of one or more `PromotionPolicy` documents (separated by `---`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFile {
    /// The file's name as given, used in every error.
    pub file: String,
    /// The documents in file order.
    pub policies: Vec<PromotionPolicy>,
}

impl PolicyFile {
    /// Parse the text of a policy file; `file` is its name for error messages.
    ///
    /// # Errors
    /// [`PolicyError::Syntax`] with file, line, column and field path for malformed YAML
    /// and bad values; [`PolicyError::Empty`] or [`PolicyError::DuplicateApp`].
    pub fn parse(file: &str, text: &str) -> Result<Self, PolicyError> {
        let mut policies: Vec<PromotionPolicy> = Vec::new();
        for document in serde_yaml::Deserializer::from_str(text) {
            let policy = PromotionPolicy::deserialize(document).map_err(|e| syntax(file, &e))?;
            if policies
                .iter()
                .any(|p| p.metadata.name == policy.metadata.name)
            {
                return Err(PolicyError::DuplicateApp {
                    file: file.to_owned(),
                    app: policy.metadata.name.to_string(),
                });
            }
            policies.push(policy);
        }
        if policies.is_empty() {
            return Err(PolicyError::Empty {
                file: file.to_owned(),
            });
        }
        Ok(Self {
            file: file.to_owned(),
            policies,
        })
    }

    /// The policy of `app`.
    ///
    /// # Errors
    /// [`PolicyError::UnknownApp`] naming the file and the applications it has.
    pub fn app(&self, app: &str) -> Result<&PromotionPolicy, PolicyError> {
        self.policies
            .iter()
            .find(|p| p.metadata.name.as_str() == app)
            .ok_or_else(|| PolicyError::UnknownApp {
                file: self.file.clone(),
                app: app.to_owned(),
                available: self
                    .policies
                    .iter()
                    .map(|p| p.metadata.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The environment `env` of the policy of `app`.
    ///
    /// # Errors
    /// [`PolicyError::UnknownApp`] or [`PolicyError::UnknownEnvironment`].
    pub fn environment(&self, app: &str, env: &str) -> Result<&EnvironmentSpec, PolicyError> {
        let policy = self.app(app)?;
        policy
            .environment(env)
            .ok_or_else(|| PolicyError::UnknownEnvironment {
                file: self.file.clone(),
                app: app.to_owned(),
                env: env.to_owned(),
                available: policy.spec.environments.names().join(", "),
            })
    }
}

impl PromotionPolicy {
    /// The application's name.
    pub fn app(&self) -> &str {
        self.metadata.name.as_str()
    }

    /// The environment named `env`, if the policy has it.
    pub fn environment(&self, env: &str) -> Option<&EnvironmentSpec> {
        self.spec
            .environments
            .iter()
            .find(|e| e.name.as_str() == env)
    }

    /// The environment before `env` in promotion order (where versions come from).
    pub fn previous(&self, env: &str) -> Option<&EnvironmentSpec> {
        let all = self.spec.environments.as_slice();
        let at = all.iter().position(|e| e.name.as_str() == env)?;
        at.checked_sub(1).and_then(|i| all.get(i))
    }
}

fn syntax(file: &str, err: &serde_yaml::Error) -> PolicyError {
    let (line, column) = err.location().map_or((0, 0), |l| (l.line(), l.column()));
    // serde_yaml appends " at line L column C"; the prefix already says where.
    let mut message = err.to_string();
    if let Some(at) = message.rfind(" at line ") {
        message.truncate(at);
    }
    PolicyError::Syntax {
        file: file.to_owned(),
        line,
        column,
        message,
    }
}

/// The ordered, non-empty list of environments with unique names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<EnvironmentSpec>", into = "Vec<EnvironmentSpec>")]
pub struct Environments(Vec<EnvironmentSpec>);

impl Environments {
    /// The environments in promotion order.
    pub fn as_slice(&self) -> &[EnvironmentSpec] {
        &self.0
    }

    /// Iterate in promotion order.
    pub fn iter(&self) -> std::slice::Iter<'_, EnvironmentSpec> {
        self.0.iter()
    }

    /// The names in promotion order.
    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|e| e.name.as_str()).collect()
    }
}

impl TryFrom<Vec<EnvironmentSpec>> for Environments {
    type Error = String;
    fn try_from(list: Vec<EnvironmentSpec>) -> Result<Self, String> {
        if list.is_empty() {
            return Err("must list at least one environment".to_owned());
        }
        for (i, env) in list.iter().enumerate() {
            if let Some(j) = list[..i].iter().position(|e| e.name == env.name) {
                return Err(format!(
                    "environment {:?} appears twice (entries {j} and {i})",
                    env.name.as_str()
                ));
            }
        }
        Ok(Self(list))
    }
}

impl From<Environments> for Vec<EnvironmentSpec> {
    fn from(e: Environments) -> Self {
        e.0
    }
}

impl JsonSchema for Environments {
    fn schema_name() -> Cow<'static, str> {
        "Environments".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let item = generator.subschema_for::<EnvironmentSpec>();
        json_schema!({
            "type": "array",
            "minItems": 1,
            "items": item,
            "description": "The environments in promotion order; names are unique."
        })
    }
}

/// Deserialise a string and check it inside the visitor, so that serde_yaml reports the
/// error at the field itself (with its path, line and column), not at the parent.
fn deserialize_checked<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<String, Error = String>,
{
    struct Checked<T>(std::marker::PhantomData<T>);
    impl<T: TryFrom<String, Error = String>> serde::de::Visitor<'_> for Checked<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
            T::try_from(v.to_owned()).map_err(E::custom)
        }
    }
    d.deserialize_str(Checked(std::marker::PhantomData))
}

/// Defines a validated string newtype with serde (via `TryFrom<String>`) and a schema.
macro_rules! checked_string {
    ($(#[$doc:meta])* $name:ident, $pattern:expr, $what:expr, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(into = "String")]
        pub struct $name(String);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                deserialize_checked(d)
            }
        }

        impl $name {
            /// The value as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                let check: fn(&str) -> bool = $check;
                if check(&s) {
                    Ok(Self(s))
                } else {
                    Err(format!("{:?} is not {}", s, $what))
                }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                Self::try_from(s.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "pattern": $pattern, "description": $what })
            }
        }
    };
}

checked_string!(
    /// An application name: a DNS-1123 label, used in trailers and branch names.
    AppName,
    "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
    "a DNS-1123 label (lowercase letters, digits and '-', at most 63)",
    is_dns_label
);

checked_string!(
    /// An environment name: a DNS-1123 label, used in trailers and branch names.
    EnvName,
    "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
    "a DNS-1123 label (lowercase letters, digits and '-', at most 63)",
    is_dns_label
);

checked_string!(
    /// A file path inside the repository: relative, `/`-separated, no `.` or `..` parts.
    RepoPath,
    "^[^/\\\\].*$",
    "a relative path inside the repository ('/'-separated, without '.' or '..' parts)",
    |s| !s.is_empty()
        && !s.contains('\\')
        && !s.contains('\0')
        && s.split('/').all(|part| !part.is_empty() && part != "." && part != "..")
);

checked_string!(
    /// A version as promoted: an image tag, a digest (`sha256:…`) or `tag@sha256:…`.
    Version,
    "^[A-Za-z0-9_][A-Za-z0-9._+@:-]{0,127}$",
    "a version (letters, digits and . _ + @ : -, at most 128, not starting with . - + @ or :)",
    |s| {
        let b = s.as_bytes();
        !b.is_empty()
            && b.len() <= 128
            && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"._+@:-".contains(c))
            && !s.contains("..")
    }
);

/// Where in an environment's file the version is: the `field` of an environment.
///
/// Three syntaxes, told apart by their prefix:
///
/// | `field` | kind | what is rewritten |
/// |---|---|---|
/// | `image.tag` | Helm values key path: mapping keys joined by `.` | the scalar at that path |
/// | `images:<image name>` | kustomize `images:` entry whose `name` is the image name | that entry's `newTag` |
/// | `marker:<id>` | any YAML line carrying the marker comment `# {"$rollgate": "<id>"}` (or Flux's `"$imagepolicy"`) | the scalar on that line; with the comment value `<id>:tag`, only the tag of an image reference |
///
/// Examples: `image.tag`, `global.app.version`, `images:ghcr.io/acme/application-x`,
/// `marker:application-x`. A key containing `.` or `:` cannot be named by a key path;
/// use a marker for it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub enum VersionField {
    /// A Helm values key path, e.g. `image.tag` (`["image", "tag"]`).
    HelmValue(Vec<String>),
    /// A kustomize `images:` entry, by its `name`; the version goes into `newTag`.
    KustomizeImage(String),
    /// A line carrying the marker comment with this id.
    Marker(String),
}

/// Prefix of the kustomize image syntax.
pub const KUSTOMIZE_PREFIX: &str = "images:";
/// Prefix of the marker syntax.
pub const MARKER_PREFIX: &str = "marker:";

impl FromStr for VersionField {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            Err(format!(
                "{s:?} is not a field: {why} (expected a key path like `image.tag`, \
                 `images:<image name>` or `marker:<id>`)"
            ))
        };
        if let Some(name) = s.strip_prefix(KUSTOMIZE_PREFIX) {
            if name.is_empty() || name.chars().any(char::is_whitespace) {
                return bad("the image name is empty or has spaces");
            }
            return Ok(Self::KustomizeImage(name.to_owned()));
        }
        if let Some(id) = s.strip_prefix(MARKER_PREFIX) {
            if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c == '"') {
                return bad("the marker id is empty or has spaces or quotes");
            }
            return Ok(Self::Marker(id.to_owned()));
        }
        let parts: Vec<String> = s.split('.').map(str::to_owned).collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || p.chars().any(|c| c.is_whitespace() || c == ':' || c == '#'))
        {
            return bad("a key path part is empty or has spaces, ':' or '#'");
        }
        Ok(Self::HelmValue(parts))
    }
}

impl<'de> Deserialize<'de> for VersionField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_checked(d)
    }
}

impl TryFrom<String> for VersionField {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl fmt::Display for VersionField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HelmValue(parts) => f.write_str(&parts.join(".")),
            Self::KustomizeImage(name) => write!(f, "{KUSTOMIZE_PREFIX}{name}"),
            Self::Marker(id) => write!(f, "{MARKER_PREFIX}{id}"),
        }
    }
}

impl From<VersionField> for String {
    fn from(v: VersionField) -> String {
        v.to_string()
    }
}

impl JsonSchema for VersionField {
    fn schema_name() -> Cow<'static, str> {
        "VersionField".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^(images:\\S+|marker:[^\\s\"]+|[^.\\s:#]+(\\.[^.\\s:#]+)*)$",
            "description": "Where the version is: a Helm values key path (`image.tag`), a kustomize images entry (`images:<image name>`, sets newTag), or a marker comment (`marker:<id>`, the line carrying `# {\"$rollgate\": \"<id>\"}`)."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = "\
apiVersion: rollgate.dev/v1alpha1
kind: PromotionPolicy
metadata: {name: application-x}
spec:
  repository: {url: file:///tmp/deploys.git, branch: main}
  environments:
    - {name: dev,     file: application-x/values-dev.yaml,     field: image.tag}
    - {name: staging, file: application-x/values-staging.yaml, field: image.tag}
    - {name: prod,    file: application-x/values-prod.yaml,    field: image.tag, approval: manual}
  onFailure: revert
";

    #[test]
    fn parses_the_seed_policy() {
        let file = PolicyFile::parse("policy.yaml", SEED).expect("valid");
        let p = file.app("application-x").expect("present");
        assert_eq!(p.spec.repository.branch, "main");
        assert_eq!(p.spec.environments.names(), vec!["dev", "staging", "prod"]);
        let prod = file.environment("application-x", "prod").expect("prod");
        assert_eq!(prod.approval, Approval::Manual);
        assert_eq!(
            prod.field,
            VersionField::HelmValue(vec!["image".into(), "tag".into()])
        );
        assert_eq!(p.spec.on_failure, OnFailure::Revert);
        assert_eq!(p.previous("prod").map(|e| e.name.as_str()), Some("staging"));
        assert!(p.previous("dev").is_none());
    }

    #[test]
    fn round_trips_through_serde() {
        let file = PolicyFile::parse("p.yaml", SEED).expect("valid");
        let text = serde_yaml::to_string(&file.policies[0]).expect("serialises");
        assert!(text.contains("apiVersion: rollgate.dev/v1alpha1"), "{text}");
        assert!(text.contains("onFailure: revert"), "{text}");
        let again = PolicyFile::parse("p.yaml", &text).expect("re-parses");
        assert_eq!(again.policies, file.policies);
    }

    #[test]
    fn field_syntaxes() {
        assert_eq!(
            "images:ghcr.io/acme/app".parse::<VersionField>(),
            Ok(VersionField::KustomizeImage("ghcr.io/acme/app".into()))
        );
        assert_eq!(
            "marker:flux-system:app".parse::<VersionField>(),
            Ok(VersionField::Marker("flux-system:app".into()))
        );
        for bad in ["", "image..tag", "images:", "marker:", "a b", ".tag"] {
            assert!(bad.parse::<VersionField>().is_err(), "{bad:?} accepted");
        }
        for s in ["image.tag", "images:nginx", "marker:x"] {
            assert_eq!(s.parse::<VersionField>().expect("ok").to_string(), s);
        }
    }

    #[test]
    fn bad_values_name_file_line_and_field() {
        let text = SEED.replace("approval: manual", "approval: sometimes");
        let err = PolicyFile::parse("policies/app.yaml", &text).expect_err("bad enum");
        let msg = err.to_string();
        assert!(msg.starts_with("policies/app.yaml:9:"), "{msg}");
        assert!(msg.contains("spec.environments[2].approval"), "{msg}");

        let text = SEED.replace("field: image.tag}", "field: \"image tag\"}");
        let msg = PolicyFile::parse("p.yaml", &text)
            .expect_err("bad")
            .to_string();
        assert!(msg.starts_with("p.yaml:7:"), "{msg}");
        assert!(msg.contains("spec.environments[0].field"), "{msg}");

        let text = SEED.replace("onFailure: revert", "onFailure: retry");
        let msg = PolicyFile::parse("p.yaml", &text)
            .expect_err("bad")
            .to_string();
        assert!(msg.contains("spec.onFailure"), "{msg}");
        assert!(msg.starts_with("p.yaml:10:"), "{msg}");

        let text = SEED.replace("name: staging", "name: dev");
        let msg = PolicyFile::parse("p.yaml", &text)
            .expect_err("dup")
            .to_string();
        assert!(msg.contains("appears twice"), "{msg}");

        let text = SEED.replace("file: application-x/values-dev.yaml", "file: ../x.yaml");
        let msg = PolicyFile::parse("p.yaml", &text)
            .expect_err("bad")
            .to_string();
        assert!(msg.contains("spec.environments[0].file"), "{msg}");

        let msg = PolicyFile::parse("p.yaml", "spec: [")
            .expect_err("malformed")
            .to_string();
        assert!(msg.starts_with("p.yaml:"), "{msg}");

        let text = SEED.replace("  onFailure: revert\n", "  onFailur: revert\n");
        let msg = PolicyFile::parse("p.yaml", &text)
            .expect_err("typo")
            .to_string();
        assert!(msg.contains("onFailur"), "{msg}");
    }

    #[test]
    fn unknown_app_and_environment_are_named() {
        let file = PolicyFile::parse("p.yaml", SEED).expect("valid");
        let msg = file.app("nope").expect_err("unknown").to_string();
        assert!(
            msg.contains("\"nope\"") && msg.contains("application-x"),
            "{msg}"
        );
        let msg = file
            .environment("application-x", "qa")
            .expect_err("unknown")
            .to_string();
        assert!(
            msg.contains("\"qa\"") && msg.contains("dev, staging, prod"),
            "{msg}"
        );
    }

    #[test]
    fn several_documents_in_one_file() {
        let two = format!(
            "{SEED}---\n{}",
            SEED.replace("application-x}", "application-y}")
        );
        let file = PolicyFile::parse("p.yaml", &two).expect("valid");
        assert_eq!(file.policies.len(), 2);
        assert!(file.app("application-y").is_ok());
        let dup = format!("{SEED}---\n{SEED}");
        assert!(matches!(
            PolicyFile::parse("p.yaml", &dup),
            Err(PolicyError::DuplicateApp { .. })
        ));
    }

    #[test]
    fn versions() {
        for ok in [
            "1.2.3",
            "v1.2.3-rc.1",
            "sha256:abcd",
            "1.0@sha256:ab",
            "latest",
        ] {
            assert!(ok.parse::<Version>().is_ok(), "{ok}");
        }
        for bad in ["", "-x", "a b", "1..2", "a/b", ":x", "x\ny"] {
            assert!(bad.parse::<Version>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn schema_is_generated() {
        let schema = schemars::schema_for!(PromotionPolicySpec);
        let text = serde_json::to_string(&schema).expect("json");
        assert!(
            text.contains("onFailure") && text.contains("\"manual\""),
            "{text}"
        );
    }
}
