//! Arguments: merging template args with incoming ones, composing templates, and Argo's
//! textual `{{args.NAME}}` substitution over the JSON-serialised metric.

use super::model::{AnalysisTemplateSpec, Argument, Metric};

/// The value secret arguments take while a spec is resolved for validation and
/// assessment; the real value is only used for the measurement itself.
pub const SECRET_PLACEHOLDER: &str = "temp-for-secret";

/// Replaces every secret value in `text` by `*****`.
#[must_use]
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        if !s.is_empty() {
            out = out.replace(s.as_str(), "*****");
        }
    }
    out
}

/// Merges incoming args into the template's (Argo's `MergeArgs`): the template's list is the
/// base, an incoming arg of the same name replaces its `value` (or else its `valueFrom`).
///
/// # Errors
/// `args.<name> was not resolved` for an arg left with neither value nor valueFrom.
pub fn merge_args(incoming: &[Argument], template: &[Argument]) -> Result<Vec<Argument>, String> {
    let mut merged = template.to_vec();
    for arg in incoming {
        if let Some(existing) = merged.iter_mut().find(|a| a.name == arg.name) {
            if arg.value.is_some() {
                existing.value.clone_from(&arg.value);
            } else if arg.value_from.is_some() {
                existing.value_from.clone_from(&arg.value_from);
            }
        }
    }
    for arg in &merged {
        if arg.value.is_none() && arg.value_from.is_none() {
            return Err(format!("args.{} was not resolved", arg.name));
        }
    }
    Ok(merged)
}

/// Args as validation and assessment see them: secrets replaced by a placeholder.
#[must_use]
pub fn args_without_secrets(args: &[Argument]) -> Vec<Argument> {
    args.iter()
        .map(|a| {
            let mut a = a.clone();
            if a.value_from
                .as_ref()
                .is_some_and(|v| v.secret_key_ref.is_some())
            {
                a.value_from = None;
                a.value = Some(SECRET_PLACEHOLDER.to_owned());
            }
            a
        })
        .collect()
}

/// Composes several templates into one (Argo's `FlattenTemplates`): metrics, dry-run and
/// retention rules concatenated in order, args merged by name.
///
/// # Errors
/// Argo's messages: ``Argument `x` specified multiple times with different values: 'a', 'b'``,
/// `two metrics have the same name 'n'`, `two Dry-Run metric rules have the same name 'n'`,
/// `two Measurement Retention metric rules have the same name 'n'`.
pub fn flatten_templates(
    templates: &[&AnalysisTemplateSpec],
) -> Result<AnalysisTemplateSpec, String> {
    let mut out = AnalysisTemplateSpec::default();
    for t in templates {
        out.metrics.extend(t.metrics.iter().cloned());
        out.dry_run.extend(t.dry_run.iter().cloned());
        out.measurement_retention
            .extend(t.measurement_retention.iter().cloned());
    }
    // Argo's order: metric names, dry-run rules, retention rules, then args.
    let mut seen = std::collections::HashSet::new();
    for m in &out.metrics {
        if !seen.insert(m.name.as_str()) {
            return Err(format!("two metrics have the same name '{}'", m.name));
        }
    }
    check_unique_rules(&out)?;
    for t in templates {
        for arg in &t.args {
            if let Some(prev) = out.args.iter_mut().find(|a| a.name == arg.name) {
                if let (Some(p), Some(n)) = (&prev.value, &arg.value)
                    && p != n
                {
                    return Err(format!(
                        "Argument `{}` specified multiple times with different values: '{p}', '{n}'",
                        prev.name
                    ));
                }
                if prev.value.is_none() {
                    *prev = arg.clone();
                }
            } else {
                out.args.push(arg.clone());
            }
        }
    }
    Ok(out)
}

/// Dry-run and retention rules must not repeat a `metricName`.
///
/// # Errors
/// Argo's `two Dry-Run metric rules have the same name 'n'` (or `Measurement Retention`).
pub fn check_unique_rules(spec: &AnalysisTemplateSpec) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for r in &spec.dry_run {
        if !seen.insert(r.metric_name.as_str()) {
            return Err(format!(
                "two Dry-Run metric rules have the same name '{}'",
                r.metric_name
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for r in &spec.measurement_retention {
        if !seen.insert(r.metric_name.as_str()) {
            return Err(format!(
                "two Measurement Retention metric rules have the same name '{}'",
                r.metric_name
            ));
        }
    }
    Ok(())
}

/// Escapes a value for insertion inside a JSON string (Go's `strconv.Quote` without its
/// quotes, for the characters JSON can hold).
fn json_escape(value: &str) -> String {
    let quoted = serde_json::to_string(value).unwrap_or_default();
    quoted
        .get(1..quoted.len().saturating_sub(1))
        .unwrap_or_default()
        .to_owned()
}

/// Replaces every `{{ tag }}` in `template` (tags trimmed) by `lookup(tag)`; Argo's
/// fasttemplate semantics: the last unresolved tag is the one reported.
fn substitute(template: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    let mut unresolved = None;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!(
                "cannot find end tag=\"}}}}\" in the template=\"{template}\" starting from \"{}\"",
                &rest[start + 2..]
            ));
        };
        let tag = &after[..end];
        match lookup(tag.trim()) {
            Some(v) => out.push_str(&v),
            None => unresolved = Some(format!("failed to resolve {{{{{tag}}}}}")),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    match unresolved {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Substitutes args in a metric, textually over its JSON form (Argo's `ResolveMetricArgs`).
/// Args carry their final values (secrets resolved or replaced by a placeholder).
///
/// # Errors
/// `argument "x" was not supplied` for an arg without a value, `failed to resolve
/// {{args.y}}` for a tag that names no arg, or the JSON error if substitution broke the
/// metric's shape.
pub fn resolve_metric_args(metric: &Metric, args: &[Argument]) -> Result<Metric, String> {
    let mut values = std::collections::HashMap::new();
    for arg in args {
        let Some(v) = &arg.value else {
            return Err(format!("argument \"{}\" was not supplied", arg.name));
        };
        values.insert(format!("args.{}", arg.name), json_escape(v));
    }
    let json = serde_json::to_string(metric).map_err(|e| e.to_string())?;
    if !json.contains("{{") {
        return Ok(metric.clone());
    }
    let resolved = substitute(&json, |tag| values.get(tag).cloned())?;
    serde_json::from_str(&resolved).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arg(name: &str, value: Option<&str>) -> Argument {
        Argument {
            name: name.into(),
            value: value.map(Into::into),
            value_from: None,
        }
    }

    #[test]
    fn substitution_trims_tags_and_escapes_json() {
        let m = Metric {
            name: "m".into(),
            success_condition: Some("result[0] >= {{ args.t }}".into()),
            failure_limit: Some(super::super::model::IntOrString::String(
                "{{args.n}}".into(),
            )),
            ..Metric::default()
        };
        let r = resolve_metric_args(&m, &[arg("t", Some("0.9")), arg("n", Some("2"))]).unwrap();
        assert_eq!(r.success_condition.as_deref(), Some("result[0] >= 0.9"));
        assert_eq!(r.failure_limit.unwrap().int_value(), 2);
        let q = resolve_metric_args(&m, &[arg("t", Some("\"x\"\n")), arg("n", Some("1"))]).unwrap();
        assert_eq!(q.success_condition.as_deref(), Some("result[0] >= \"x\"\n"));
    }

    #[test]
    fn argo_messages() {
        let m = Metric {
            name: "m".into(),
            success_condition: Some("{{args.metric-name}}".into()),
            ..Metric::default()
        };
        assert_eq!(
            resolve_metric_args(&m, &[]).unwrap_err(),
            "failed to resolve {{args.metric-name}}"
        );
        assert_eq!(
            resolve_metric_args(&m, &[arg("x", None)]).unwrap_err(),
            "argument \"x\" was not supplied"
        );
        assert_eq!(
            merge_args(&[], &[arg("x", None)]).unwrap_err(),
            "args.x was not resolved"
        );
        let a = AnalysisTemplateSpec {
            args: vec![arg("x", Some("a"))],
            ..Default::default()
        };
        let b = AnalysisTemplateSpec {
            args: vec![arg("x", Some("b"))],
            ..Default::default()
        };
        assert_eq!(
            flatten_templates(&[&a, &b]).unwrap_err(),
            "Argument `x` specified multiple times with different values: 'a', 'b'"
        );
        assert_eq!(
            redact("token abc in abc", &["abc".into()]),
            "token ***** in *****"
        );
    }
}
