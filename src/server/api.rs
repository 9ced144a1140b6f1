//! The authenticated API: rollout status and manual approvals.
//!
//! - `GET /api/v1/rollouts/{namespace}/{name}`: the Rollout's status. Allowed when the
//!   caller may `get` `rollouts.rollgate.dev` of that name in that namespace.
//! - `POST /api/v1/approvals` with `{"app", "env", "version"}`: lands the promotion that
//!   waits for approval (as `rollgate approve`), with the PromotionPolicy registered for
//!   the app in [`Approvals`]. Allowed when the caller may `approve`
//!   `promotionpolicies.rollgate.dev` of the policy's object.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kube::Api;
use serde::{Deserialize, Serialize};

use super::ServerState;
use super::auth::{AuthError, BearerToken, Caller, Permission, kube_message};
use crate::core::promotion::policy::{PromotionPolicy, Version};
use crate::core::strategy::RolloutStatus;
use crate::gitops::{GitError, Promoter};
use crate::k8s::Rollout;
use crate::telemetry::{PromotionAction, PromotionEffect, PromotionFailure};

/// A policy the approvals endpoint can act on.
#[derive(Debug, Clone)]
pub struct ApprovalTarget {
    /// The policy (its `app()` is the key).
    pub policy: PromotionPolicy,
    /// The promoter for the policy's repository.
    pub promoter: Arc<Promoter>,
    /// Namespace of the `PromotionPolicy` object, for the permission check.
    pub namespace: String,
    /// Name of the `PromotionPolicy` object, for the permission check.
    pub object: String,
}

/// The policies approvals may be made for, by application. Cheap to clone (shared); the
/// controller keeps it current as PromotionPolicies come and go.
#[derive(Debug, Clone, Default)]
pub struct Approvals {
    by_app: Arc<RwLock<HashMap<String, Arc<ApprovalTarget>>>>,
}

impl Approvals {
    /// No policies: every approval is 404.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Register (or replace) the policy of `target.policy.app()`.
    pub fn insert(&self, target: ApprovalTarget) {
        let app = target.policy.app().to_owned();
        self.by_app
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(app, Arc::new(target));
    }

    /// Forget the policy of `app`.
    pub fn remove(&self, app: &str) {
        self.by_app
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(app);
    }

    /// The registered policy of `app`, if any.
    #[must_use]
    pub fn get(&self, app: &str) -> Option<Arc<ApprovalTarget>> {
        self.by_app
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(app)
            .cloned()
    }
}

/// The body of `POST /api/v1/approvals`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRequest {
    /// The application (the PromotionPolicy's app).
    pub app: String,
    /// The environment the promotion enters.
    pub env: String,
    /// The version waiting for approval.
    pub version: String,
}

/// The body of `GET /api/v1/rollouts/{namespace}/{name}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatusResponse {
    /// The Rollout's namespace.
    pub namespace: String,
    /// The Rollout's name.
    pub name: String,
    /// Its `metadata.generation`.
    pub generation: Option<i64>,
    /// Its status; `null` before the controller first wrote one.
    pub status: Option<RolloutStatus>,
}

/// The JSON body of every error response: `{"error": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong (never contains a token or a credential).
    pub error: String,
}

/// An error response.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated => ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()),
            AuthError::ReviewFailed { .. } | AuthError::Timeout { .. } => {
                tracing::warn!(error = %e, "cannot authenticate or authorize a request");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "authentication is unavailable: the API server could not review the request",
                )
            }
        }
    }
}

/// The caller of a request, authenticated with a `TokenReview`.
async fn caller(state: &ServerState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(BearerToken::from_header)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "a bearer token is required (Authorization: Bearer <token>)",
            )
        })?;
    Ok(state.auth.authenticate(&token).await?)
}

async fn require(
    state: &ServerState,
    caller: &Caller,
    permission: &Permission,
) -> Result<(), ApiError> {
    if state.auth.authorize(caller, permission).await? {
        Ok(())
    } else {
        tracing::info!(
            user = %caller.username,
            verb = permission.verb,
            resource = permission.resource,
            namespace = %permission.namespace,
            name = %permission.name,
            "request forbidden"
        );
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "{} may not {} {}.{} {}/{}",
                caller.username,
                permission.verb,
                permission.resource,
                permission.group,
                permission.namespace,
                permission.name
            ),
        ))
    }
}

/// `GET /api/v1/rollouts/{namespace}/{name}`.
pub(crate) async fn get_rollout(
    State(state): State<ServerState>,
    Path((namespace, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<RolloutStatusResponse>, ApiError> {
    let caller = caller(&state, &headers).await?;
    require(
        &state,
        &caller,
        &Permission {
            verb: "get",
            group: crate::k8s::GROUP,
            resource: "rollouts",
            namespace: namespace.clone(),
            name: name.clone(),
        },
    )
    .await?;
    let api: Api<Rollout> = Api::namespaced(state.client.clone(), &namespace);
    let timeout = state.config.api_timeout;
    let found = tokio::time::timeout(timeout, api.get_opt(&name))
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!("reading Rollout {namespace}/{name} timed out after {timeout:?}"),
            )
        })?
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("reading Rollout {namespace}/{name}: {}", kube_message(&e)),
            )
        })?;
    let Some(rollout) = found else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Rollout {namespace}/{name} not found"),
        ));
    };
    Ok(Json(RolloutStatusResponse {
        namespace,
        name,
        generation: rollout.metadata.generation,
        status: rollout.status.map(|s| s.status),
    }))
}

/// `POST /api/v1/approvals`.
pub(crate) async fn approve(
    State(state): State<ServerState>,
    headers: HeaderMap,
    body: Result<Json<ApprovalRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers).await?;
    let Json(req) = body.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("approval body: {}", e.body_text()),
        )
    })?;
    let version: Version = req.version.parse().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("approval body: version {:?}: {e}", req.version),
        )
    })?;
    let target = state.approvals.get(&req.app).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no PromotionPolicy for app {:?}", req.app),
        )
    })?;
    require(
        &state,
        &caller,
        &Permission {
            verb: "approve",
            group: crate::k8s::GROUP,
            resource: "promotionpolicies",
            namespace: target.namespace.clone(),
            name: target.object.clone(),
        },
    )
    .await?;
    let env = target.policy.environment(&req.env).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "PromotionPolicy {}/{} has no environment {:?}",
                target.namespace, target.object, req.env
            ),
        )
    })?;
    let started = Instant::now();
    let result = target.promoter.approve(&target.policy, env, &version).await;
    match result {
        Ok(outcome) => {
            state.telemetry.promotion_succeeded(
                PromotionAction::Approve,
                PromotionEffect::from(outcome.result),
                started.elapsed(),
            );
            tracing::info!(
                user = %caller.username,
                app = %req.app,
                env = %req.env,
                version = %version,
                result = ?outcome.result,
                "approval"
            );
            Ok((StatusCode::OK, Json(outcome)).into_response())
        }
        Err(e) => {
            state.telemetry.promotion_failed(
                PromotionAction::Approve,
                PromotionFailure::from(&e),
                started.elapsed(),
            );
            tracing::warn!(user = %caller.username, app = %req.app, env = %req.env, version = %version, error = %e, "approval failed");
            Err(git_error(&e))
        }
    }
}

fn git_error(e: &GitError) -> ApiError {
    let status = match e {
        GitError::NoPendingPromotion { .. } | GitError::ApprovalBranchTaken { .. } => {
            StatusCode::CONFLICT
        }
        GitError::Plan(_) | GitError::BadSourceVersion { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        GitError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        GitError::Remote { .. }
        | GitError::BranchMissing { .. }
        | GitError::PushRefused { .. }
        | GitError::Contention { .. } => StatusCode::BAD_GATEWAY,
        GitError::Cache { .. } | GitError::Local { .. } | GitError::Task(_) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    // GitError messages mask the remote's user-info and carry no credentials.
    ApiError::new(status, e.to_string())
}
