//! Who is calling, and may they: the bearer token checked with a `TokenReview`, the
//! permission with a `SubjectAccessReview`, both against the cluster's API server.
//!
//! The token is only ever passed to the API server. It is not logged, not echoed in
//! responses, not part of any error, and its `Debug` is redacted.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, RandomState};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Accepted tokens for a short time, so a client polling the API does not cost a
/// `TokenReview` per request (the API server's own webhook authenticator caches likewise).
/// Keyed by a keyed hash of the token (a random key per process): the token itself is not
/// kept. Only acceptances are cached; a refused token is reviewed again every time.
#[derive(Debug)]
struct TokenCache {
    ttl: Duration,
    hasher: RandomState,
    entries: Mutex<HashMap<u64, (Caller, Instant)>>,
}

/// At most this many cached acceptances; when full, expired ones go, then all.
const TOKEN_CACHE_CAPACITY: usize = 4096;

impl TokenCache {
    fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            hasher: RandomState::new(),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn key(&self, token: &BearerToken) -> u64 {
        self.hasher.hash_one(token.0.as_bytes())
    }

    fn get(&self, token: &BearerToken, now: Instant) -> Option<Caller> {
        if self.ttl.is_zero() {
            return None;
        }
        let key = self.key(token);
        let mut map = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get(&key) {
            Some((caller, until)) if *until > now => Some(caller.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    fn put(&self, token: &BearerToken, caller: &Caller, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let key = self.key(token);
        let mut map = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= TOKEN_CACHE_CAPACITY {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= TOKEN_CACHE_CAPACITY {
                map.clear();
            }
        }
        map.insert(key, (caller.clone(), now + self.ttl));
    }
}

/// Checks tokens and permissions against the API server, every call bounded by a timeout.
/// Clones share one token cache.
#[derive(Clone)]
pub struct KubeAuth {
    client: kube::Client,
    audiences: Vec<String>,
    timeout: Duration,
    cache: Arc<TokenCache>,
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
            cache: Arc::new(TokenCache::new(Duration::from_secs(10))),
        }
    }

    /// Remember an accepted token for `ttl` (default 10 s; zero reviews every request). A
    /// token revoked meanwhile stays accepted until its entry expires.
    #[must_use]
    pub fn with_token_cache(mut self, ttl: Duration) -> Self {
        self.cache = Arc::new(TokenCache::new(ttl));
        self
    }

    /// Accept only tokens issued for one of `audiences` (empty: the API server's own).
    /// Starts a new token cache (acceptances were for the old audiences).
    #[must_use]
    pub fn with_audiences(mut self, audiences: Vec<String>) -> Self {
        self.audiences = audiences;
        self.cache = Arc::new(TokenCache::new(self.cache.ttl));
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
        if let Some(caller) = self.cache.get(token, Instant::now()) {
            return Ok(caller);
        }
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
        let caller = Caller {
            username,
            uid: user.uid,
            groups: user.groups.unwrap_or_default(),
        };
        self.cache.put(token, &caller, Instant::now());
        Ok(caller)
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

    fn caller(name: &str) -> Caller {
        Caller {
            username: name.to_owned(),
            uid: None,
            groups: vec![],
        }
    }

    #[test]
    fn the_token_cache_expires_and_keys_by_token() {
        let c = TokenCache::new(Duration::from_secs(10));
        let (a, b) = (BearerToken("a".to_owned()), BearerToken("b".to_owned()));
        let t0 = Instant::now();
        assert_eq!(c.get(&a, t0), None);
        c.put(&a, &caller("alice"), t0);
        assert_eq!(
            c.get(&a, t0 + Duration::from_secs(9)),
            Some(caller("alice"))
        );
        assert_eq!(
            c.get(&b, t0),
            None,
            "another token is not the cached caller"
        );
        assert_eq!(c.get(&a, t0 + Duration::from_secs(10)), None, "expired");
        assert_eq!(c.get(&a, t0), None, "an expired entry is removed");
        let off = TokenCache::new(Duration::ZERO);
        off.put(&a, &caller("alice"), t0);
        assert_eq!(off.get(&a, t0), None, "ttl zero caches nothing");
        assert!(
            !format!("{c:?}").contains("\"a\""),
            "the cache does not keep tokens"
        );
    }

    #[test]
    fn a_full_token_cache_drops_expired_entries_first() {
        let c = TokenCache::new(Duration::from_secs(10));
        let t0 = Instant::now();
        for i in 0..TOKEN_CACHE_CAPACITY {
            c.put(&BearerToken(format!("old{i}")), &caller("old"), t0);
        }
        let later = t0 + Duration::from_secs(11);
        c.put(&BearerToken("new".to_owned()), &caller("new"), later);
        let len = c.entries.lock().expect("lock").len();
        assert_eq!(len, 1, "expired entries were dropped");
        assert_eq!(
            c.get(&BearerToken("new".to_owned()), later),
            Some(caller("new"))
        );
    }
}
