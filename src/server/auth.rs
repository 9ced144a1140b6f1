//! Who is calling, and may they: the bearer token checked with a `TokenReview`, the
//! permission with a `SubjectAccessReview`, both against the cluster's API server.
//!
//! The token is only ever passed to the API server. It is not logged, not echoed in
//! responses, not part of any error, and its `Debug` is redacted.

use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;

/// A bearer token taken from a request. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    /// The token from an `Authorization` header value (`Bearer <token>`, scheme
    /// case-insensitive); `None` when the header is not a non-empty bearer token.
    #[must_use]
    pub fn from_header(value: &str) -> Option<Self> {
        let (scheme, token) = value.trim().split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' '))
            .then(|| Self(token.to_owned()))
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// An authenticated caller, as the `TokenReview` described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user name (`system:serviceaccount:<ns>:<name>` for a ServiceAccount).
    pub username: String,
    /// The user's uid, when the authenticator gives one.
    pub uid: Option<String>,
    /// The user's groups.
    pub groups: Vec<String>,
}

/// What a caller wants to do, checked with a `SubjectAccessReview`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    /// The verb (`get`, or the custom verb `approve`).
    pub verb: &'static str,
    /// The API group (`rollgate.dev`).
    pub group: &'static str,
    /// The resource (`rollouts`, `promotionpolicies`).
    pub resource: &'static str,
    /// The namespace of the object.
    pub namespace: String,
    /// The object's name.
    pub name: String,
}

/// Why a caller could not be authenticated or authorized.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The API server did not authenticate the token (unknown, expired, wrong audience).
    #[error("the bearer token was not accepted")]
    Unauthenticated,
    /// The review could not be made: the API server failed or refused the review itself
    /// (the controller's ServiceAccount lacks `create` on `tokenreviews` or
    /// `subjectaccessreviews`).
    #[error("{review} failed: {message}")]
    ReviewFailed {
        /// `TokenReview` or `SubjectAccessReview`.
        review: &'static str,
        /// The API server's message (never contains the token).
        message: String,
    },
    /// The review did not finish within the timeout.
    #[error("{review} timed out after {after:?}")]
    Timeout {
        /// `TokenReview` or `SubjectAccessReview`.
        review: &'static str,
        /// The timeout.
        after: Duration,
    },
}

/// Checks tokens and permissions against the API server, every call bounded by a timeout.
#[derive(Clone)]
pub struct KubeAuth {
    client: kube::Client,
    audiences: Vec<String>,
    timeout: Duration,
}

impl std::fmt::Debug for KubeAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeAuth")
            .field("audiences", &self.audiences)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl KubeAuth {
    /// Reviews through `client` (the controller's identity), accepting tokens for the API
    /// server's default audiences, each review bounded by 5 s.
    #[must_use]
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            audiences: Vec::new(),
            timeout: Duration::from_secs(5),
        }
    }

    /// Accept only tokens issued for one of `audiences` (empty: the API server's own).
    #[must_use]
    pub fn with_audiences(mut self, audiences: Vec<String>) -> Self {
        self.audiences = audiences;
        self
    }

    /// Bound each review by `timeout`.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Who the token belongs to.
    ///
    /// # Errors
    /// [`AuthError::Unauthenticated`] when the API server does not accept the token;
    /// [`AuthError::ReviewFailed`] / [`AuthError::Timeout`] when it could not say.
    pub async fn authenticate(&self, token: &BearerToken) -> Result<Caller, AuthError> {
        const REVIEW: &str = "TokenReview";
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.0.clone(),
                audiences: (!self.audiences.is_empty()).then(|| self.audiences.clone()),
            },
            ..TokenReview::default()
        };
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let done = tokio::time::timeout(self.timeout, api.create(&PostParams::default(), &review))
            .await
            .map_err(|_| AuthError::Timeout {
                review: REVIEW,
                after: self.timeout,
            })?
            .map_err(|e| AuthError::ReviewFailed {
                review: REVIEW,
                message: kube_message(&e),
            })?;
        let status = done.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            return Err(AuthError::Unauthenticated);
        }
        let user = status.user.unwrap_or_default();
        let username = user.username.unwrap_or_default();
        if username.is_empty() {
            return Err(AuthError::Unauthenticated);
        }
        Ok(Caller {
            username,
            uid: user.uid,
            groups: user.groups.unwrap_or_default(),
        })
    }

    /// Whether `caller` may do `permission`.
    ///
    /// # Errors
    /// [`AuthError::ReviewFailed`] / [`AuthError::Timeout`] when the API server could not
    /// answer.
    pub async fn authorize(
        &self,
        caller: &Caller,
        permission: &Permission,
    ) -> Result<bool, AuthError> {
        const REVIEW: &str = "SubjectAccessReview";
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(caller.username.clone()),
                uid: caller.uid.clone(),
                groups: Some(caller.groups.clone()),
                resource_attributes: Some(ResourceAttributes {
                    verb: Some(permission.verb.to_owned()),
                    group: Some(permission.group.to_owned()),
                    resource: Some(permission.resource.to_owned()),
                    namespace: Some(permission.namespace.clone()),
                    name: Some(permission.name.clone()),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let done = tokio::time::timeout(self.timeout, api.create(&PostParams::default(), &review))
            .await
            .map_err(|_| AuthError::Timeout {
                review: REVIEW,
                after: self.timeout,
            })?
            .map_err(|e| AuthError::ReviewFailed {
                review: REVIEW,
                message: kube_message(&e),
            })?;
        Ok(done
            .status
            .is_some_and(|s| s.allowed && s.denied != Some(true)))
    }
}

/// The message of a kube error without request details.
pub(crate) fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_parsed_strictly_and_never_shown() {
        let t = BearerToken::from_header("Bearer abc.def").expect("a token");
        assert_eq!(t, BearerToken("abc.def".to_owned()));
        assert!(BearerToken::from_header("bearer   xyz ").is_some());
        for bad in ["", "Bearer", "Bearer ", "Basic abc", "abc", "Bearer a b"] {
            assert!(BearerToken::from_header(bad).is_none(), "{bad:?}");
        }
        assert!(!format!("{t:?}").contains("abc"));
    }
}
