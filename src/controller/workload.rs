//! Deployments of a Rollout: the revision of the target's pod template, readiness, the
//! primary copy (`<name>-primary`, selecting `<label>-primary`) and scaling.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use super::{Error, FIELD_MANAGER, call};
use crate::core::strategy::Readiness;

/// Label keys tried, in order, to find the value the Services select on.
const SELECTOR_KEYS: &[&str] = &["app", "app.kubernetes.io/name", "name"];

/// The revision of a pod template: a stable hash of its JSON (FNV-1a, 16 hex digits).
pub fn revision(target: &Deployment) -> String {
    let text = target
        .spec
        .as_ref()
        .and_then(|s| serde_json::to_string(&s.template).ok())
        .unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The selector label (key, value) the Services and the primary use.
pub fn selector_label(target: &Deployment) -> Option<(String, String)> {
    let labels = target.spec.as_ref()?.selector.match_labels.as_ref()?;
    SELECTOR_KEYS
        .iter()
        .find_map(|k| labels.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .or_else(|| labels.iter().next().map(|(k, v)| (k.clone(), v.clone())))
}

/// The version a Deployment runs: the tag of its first container's image.
pub fn image_tag(target: &Deployment) -> Option<String> {
    let image = target
        .spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .first()?
        .image
        .clone()?;
    let image = image.split('@').next().unwrap_or_default();
    let last = image.rsplit('/').next().unwrap_or_default();
    last.split_once(':').map(|(_, tag)| tag.to_owned())
}

/// Readiness as the strategy sees it: all updated replicas available, the newest
/// generation observed; `ProgressDeadlineExceeded` is Stalled.
pub fn readiness(d: &Deployment) -> Readiness {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(st) = &d.status else {
        return Readiness::NotReady;
    };
    if st.observed_generation.unwrap_or(0) < d.metadata.generation.unwrap_or(0) {
        return Readiness::NotReady;
    }
    let stalled = st.conditions.iter().flatten().any(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    });
    if stalled {
        return Readiness::Stalled;
    }
    if st.updated_replicas.unwrap_or(0) >= want && st.available_replicas.unwrap_or(0) >= want {
        Readiness::Ready
    } else {
        Readiness::NotReady
    }
}

/// The replicas the target asks for when scaled up (the primary's, at least one).
pub fn desired_replicas(primary: Option<&Deployment>, target: &Deployment) -> i32 {
    primary
        .and_then(|p| p.spec.as_ref())
        .and_then(|s| s.replicas)
        .or_else(|| target.spec.as_ref().and_then(|s| s.replicas))
        .unwrap_or(1)
        .max(1)
}

/// Apply `<name>-primary` with the target's pod template, relabelled to select
/// `<value>-primary`.
///
/// # Errors
/// API errors, or [`Error::Decode`] when the target has no template.
pub async fn apply_primary(
    api: &Api<Deployment>,
    target: &Deployment,
    primary_name: &str,
    label: &(String, String),
    replicas: i32,
    owner: OwnerReference,
) -> Result<(), Error> {
    let object = format!("Deployment {primary_name}");
    let spec = target.spec.as_ref().ok_or_else(|| Error::Decode {
        object: object.clone(),
        message: "the target Deployment has no spec".to_owned(),
    })?;
    let mut template = serde_json::to_value(&spec.template).map_err(|e| Error::Decode {
        object: object.clone(),
        message: e.to_string(),
    })?;
    let primary_value = format!("{}-primary", label.1);
    if let Some(meta) = template
        .as_object_mut()
        .map(|t| t.entry("metadata").or_insert_with(|| json!({})))
        && let Some(m) = meta.as_object_mut()
    {
        let labels = m.entry("labels").or_insert_with(|| json!({}));
        if let Some(l) = labels.as_object_mut() {
            l.insert(label.0.clone(), Value::String(primary_value.clone()));
        }
    }
    let body = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": primary_name,
            "labels": { label.0.clone(): primary_value.clone() },
            "ownerReferences": [owner],
        },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { label.0.clone(): primary_value } },
            "template": template,
        },
    });
    call(
        "apply",
        &object,
        api.patch(
            primary_name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(body),
        ),
    )
    .await?;
    Ok(())
}

/// Set a Deployment's replicas (skipped when they already hold).
///
/// # Errors
/// API errors.
pub async fn scale(api: &Api<Deployment>, d: &Deployment, replicas: i32) -> Result<(), Error> {
    if d.spec.as_ref().and_then(|s| s.replicas) == Some(replicas) {
        return Ok(());
    }
    let name = d.metadata.name.clone().unwrap_or_default();
    call(
        "scale",
        &format!("Deployment {name}"),
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        ),
    )
    .await?;
    Ok(())
}
