//! Gateway API `HTTPRoute` weights as dynamic objects (no Gateway API crate): read the
//! route, let [`set_weights`] compute the JSON patch of the two managed backendRefs, send
//! it only when a weight changes, and read the weights back.

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::Value;

use super::{TrafficError, call};
use crate::core::strategy::{Weight, read_weights, set_weights};

/// The Gateway API kind rollgate weights.
pub fn httproute_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
        "httproutes",
    )
}

/// Writes canary weights on one HTTPRoute.
#[derive(Clone)]
pub struct HttpRouteRouter {
    client: Client,
}

impl HttpRouteRouter {
    /// A router using `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The route as JSON, or `None` when it does not exist.
    ///
    /// # Errors
    /// [`TrafficError::Api`] / [`TrafficError::Timeout`].
    pub async fn get(&self, namespace: &str, name: &str) -> Result<Option<Value>, TrafficError> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &httproute_resource());
        let object = format!("HTTPRoute {namespace}/{name}");
        let route = call("get", &object, api.get_opt(name)).await?;
        route
            .map(|r| {
                serde_json::to_value(r).map_err(|e| TrafficError::Api {
                    op: "decode",
                    object: object.clone(),
                    source: kube::Error::SerdeError(e),
                })
            })
            .transpose()
    }

    /// Set the weights of backendRefs `primary` and `canary` on the route; returns
    /// whether anything was written (false: the weights already held). Every other rule
    /// and backend stays as found: the patch tests each managed backend's name and adds
    /// only its weight.
    ///
    /// # Errors
    /// [`TrafficError::RouteNotFound`], [`TrafficError::Route`] when no rule holds both
    /// Services, [`TrafficError::NotApplied`] when the read-back differs, API errors.
    pub async fn set(
        &self,
        namespace: &str,
        name: &str,
        primary: &str,
        canary: &str,
        primary_weight: Weight,
        canary_weight: Weight,
    ) -> Result<bool, TrafficError> {
        tracing::debug!(
            namespace,
            route = name,
            primary_weight = primary_weight.get(),
            canary_weight = canary_weight.get(),
            "traffic.set_weights"
        );
        let route =
            self.get(namespace, name)
                .await?
                .ok_or_else(|| TrafficError::RouteNotFound {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                })?;
        let update = set_weights(&route, primary, canary, primary_weight, canary_weight)?;
        if !update.changed {
            return Ok(false);
        }
        let object = format!("HTTPRoute {namespace}/{name}");
        let patch: json_patch::Patch =
            serde_json::from_value(Value::Array(update.patch)).map_err(|e| TrafficError::Api {
                op: "build patch",
                object: object.clone(),
                source: kube::Error::SerdeError(e),
            })?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &httproute_resource());
        let patched = call(
            "patch",
            &object,
            api.patch(name, &PatchParams::default(), &Patch::<()>::Json(patch)),
        )
        .await?;
        let back = serde_json::to_value(patched).ok();
        let found = back.as_ref().and_then(|r| read_weights(r, primary, canary));
        let want = (
            u64::from(primary_weight.get()),
            u64::from(canary_weight.get()),
        );
        if found != Some(want) {
            return Err(TrafficError::NotApplied {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                found,
                primary: primary_weight.get(),
                canary: canary_weight.get(),
            });
        }
        Ok(true)
    }
}
