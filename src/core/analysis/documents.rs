//! Reading analysis objects from multi-document YAML text (`AnalysisTemplate`,
//! `ClusterAnalysisTemplate`, `AnalysisRun`, in `argoproj.io/v1alpha1` or
//! `rollgate.dev/v1alpha1`) and composing them into one run spec, with errors that name the
//! file, the line, the object and the field.
//!
//! The caller reads the files (this module does no I/O) and passes each file's name and
//! text to [`parse_documents`].
//!
//! Extension point: other kinds (Flagger's `MetricTemplate`) are recognised in
//! [`parse_document`], which dispatches on `kind`; a new kind is converted there into an
//! [`AnalysisTemplateSpec`] and joins composition like any template.

use serde::Deserialize;

use super::args::{flatten_templates, merge_args};
use super::model::{API_VERSIONS, AnalysisRunSpec, AnalysisTemplateSpec, Argument};

/// A document or composition that cannot be used, with where it happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct LoadError {
    /// File name (as given by the caller).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The object (`AnalysisTemplate "success-rate"`), when known.
    pub object: Option<String>,
    /// What is wrong, naming the field (`spec.metrics[0].provider: unknown field ...`).
    pub message: String,
}

impl LoadError {
    fn render(&self) -> String {
        let mut s = self.file.clone();
        if let Some(l) = self.line {
            s.push_str(&format!(":{l}"));
            if let Some(c) = self.column {
                s.push_str(&format!(":{c}"));
            }
        }
        if let Some(o) = &self.object {
            s.push_str(&format!(": {o}"));
        }
        s.push_str(&format!(": {}", self.message));
        s
    }
}

/// The kinds of analysis objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// Namespaced template.
    AnalysisTemplate,
    /// Cluster-scoped template.
    ClusterAnalysisTemplate,
    /// A run (its spec holds the metrics directly).
    AnalysisRun,
}

impl ObjectKind {
    /// The kind as YAML spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::AnalysisTemplate => "AnalysisTemplate",
            ObjectKind::ClusterAnalysisTemplate => "ClusterAnalysisTemplate",
            ObjectKind::AnalysisRun => "AnalysisRun",
        }
    }
}

/// The spec of an object.
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectBody {
    /// A template's spec.
    Template(AnalysisTemplateSpec),
    /// A run's spec.
    Run(AnalysisRunSpec),
}

/// One object read from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisObject {
    /// File name.
    pub source: String,
    /// Line where the document starts.
    pub line: usize,
    /// Kind.
    pub kind: ObjectKind,
    /// `apiVersion` as written.
    pub api_version: String,
    /// `metadata.name`.
    pub name: String,
    /// The spec.
    pub body: ObjectBody,
    /// Line of each metric's `name:` (best effort; the document start when not found).
    pub metric_lines: Vec<usize>,
}

impl AnalysisObject {
    /// `AnalysisTemplate "name"`, for messages.
    #[must_use]
    pub fn label(&self) -> String {
        format!("{} \"{}\"", self.kind.as_str(), self.name)
    }
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc<S> {
    #[serde(default)]
    metadata: Meta,
    #[serde(default)]
    spec: S,
}

/// Splits text into YAML documents as libyaml does, returning each document's first line
/// and its text.
fn document_spans(text: &str) -> Vec<(usize, String)> {
    let mut spans: Vec<(usize, Vec<&str>)> = vec![(1, Vec::new())];
    for (i, line) in text.lines().enumerate() {
        let is_sep = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if !is_sep {
            if let Some(last) = spans.last_mut() {
                last.1.push(line);
            }
        } else if spans.len() == 1 && is_blank(&spans[0].1) {
            // Only comments before the first separator: no document there.
            spans[0] = (i + 2, Vec::new());
        } else {
            spans.push((i + 2, Vec::new()));
        }
    }
    spans
        .into_iter()
        .map(|(l, lines)| (l, lines.join("\n")))
        .collect()
}

fn is_blank(lines: &[&str]) -> bool {
    lines.iter().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#')
    })
}

fn yaml_error(
    source: &str,
    object: Option<String>,
    e: &serde_yaml::Error,
    line_offset: usize,
) -> LoadError {
    let loc = e.location();
    // serde_yaml appends " at line X column Y"; the location is reported separately.
    let text = e.to_string();
    let message = match text.rfind(" at line ") {
        Some(i) if loc.is_some() => text[..i].to_owned(),
        _ => text,
    };
    LoadError {
        file: source.to_owned(),
        line: loc.as_ref().map(|l| l.line() + line_offset),
        column: loc.as_ref().map(serde_yaml::Location::column),
        object,
        message,
    }
}

fn metric_lines(doc: &str, first_line: usize, names: &[&str]) -> Vec<usize> {
    let lines: Vec<&str> = doc.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim_start().starts_with("metrics:"))
        .unwrap_or(0);
    let mut from = start;
    names
        .iter()
        .map(|name| {
            let found = lines.iter().enumerate().skip(from).find(|(_, l)| {
                let t = l.trim_start().trim_start_matches("- ").trim_start();
                t.strip_prefix("name:").is_some_and(|v| {
                    let v = v.split(" #").next().unwrap_or("").trim();
                    v.trim_matches(|c| c == '"' || c == '\'') == *name
                })
            });
            match found {
                Some((i, _)) => {
                    from = i + 1;
                    first_line + i
                }
                None => first_line,
            }
        })
        .collect()
}

/// Parses every document of one file.
///
/// # Errors
/// [`LoadError`] with the file, line and column for malformed YAML, a missing or
/// unsupported `apiVersion` or `kind`, an unknown provider or field, a value of the wrong
/// type.
pub fn parse_documents(source: &str, text: &str) -> Result<Vec<AnalysisObject>, LoadError> {
    let mut objects = Vec::new();
    for (first_line, doc) in document_spans(text) {
        if let Some(o) = parse_document(source, first_line, &doc)? {
            objects.push(o);
        }
    }
    if objects.is_empty() {
        return Err(LoadError {
            file: source.to_owned(),
            line: None,
            column: None,
            object: None,
            message: "no AnalysisTemplate, ClusterAnalysisTemplate or AnalysisRun found".into(),
        });
    }
    Ok(objects)
}

/// Parses one document starting at `first_line`; `None` for an empty document.
///
/// # Errors
/// As [`parse_documents`].
pub fn parse_document(
    source: &str,
    first_line: usize,
    doc: &str,
) -> Result<Option<AnalysisObject>, LoadError> {
    let offset = first_line - 1;
    let value: serde_yaml::Value =
        serde_yaml::from_str(doc).map_err(|e| yaml_error(source, None, &e, offset))?;
    if value.is_null() {
        return Ok(None);
    }
    let err = |object: Option<String>, message: String| LoadError {
        file: source.to_owned(),
        line: Some(first_line),
        column: None,
        object,
        message,
    };
    let field = |k: &str| {
        value
            .get(k)
            .and_then(serde_yaml::Value::as_str)
            .map(str::to_owned)
    };
    let kind = field("kind").ok_or_else(|| err(None, "missing field `kind`".into()))?;
    let api_version =
        field("apiVersion").ok_or_else(|| err(None, "missing field `apiVersion`".into()))?;
    let name = value
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(serde_yaml::Value::as_str)
        .unwrap_or("")
        .to_owned();
    let kind = match kind.as_str() {
        "AnalysisTemplate" => ObjectKind::AnalysisTemplate,
        "ClusterAnalysisTemplate" => ObjectKind::ClusterAnalysisTemplate,
        "AnalysisRun" => ObjectKind::AnalysisRun,
        // Extension point: Flagger's `MetricTemplate` (flagger.app/v1beta1) is converted to
        // an AnalysisTemplateSpec here.
        other => {
            return Err(err(
                None,
                format!(
                    "unsupported kind `{other}` (expected AnalysisTemplate, ClusterAnalysisTemplate or AnalysisRun)"
                ),
            ));
        }
    };
    let label = format!("{} \"{name}\"", kind.as_str());
    if !API_VERSIONS.contains(&api_version.as_str()) {
        return Err(err(
            Some(label),
            format!(
                "unsupported apiVersion `{api_version}` (expected {})",
                API_VERSIONS.join(" or ")
            ),
        ));
    }
    let typed = |e: serde_yaml::Error| yaml_error(source, Some(label.clone()), &e, offset);
    let (body, names) = if kind == ObjectKind::AnalysisRun {
        let d: Doc<AnalysisRunSpec> = serde_yaml::from_str(doc).map_err(typed)?;
        let names: Vec<String> = d.spec.metrics.iter().map(|m| m.name.clone()).collect();
        let _ = d.metadata.name;
        (ObjectBody::Run(d.spec), names)
    } else {
        let d: Doc<AnalysisTemplateSpec> = serde_yaml::from_str(doc).map_err(typed)?;
        let names: Vec<String> = d.spec.metrics.iter().map(|m| m.name.clone()).collect();
        (ObjectBody::Template(d.spec), names)
    };
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    Ok(Some(AnalysisObject {
        source: source.to_owned(),
        line: first_line,
        kind,
        api_version,
        name,
        metric_lines: metric_lines(doc, first_line, &refs),
        body,
    }))
}

/// Where a metric of a composed run came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricOrigin {
    /// File name.
    pub source: String,
    /// Line of the metric's name.
    pub line: usize,
    /// The object (`AnalysisTemplate "x"`).
    pub object: String,
    /// Metric name.
    pub metric: String,
}

/// A run spec composed from objects, with where each metric came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Composition {
    /// The run spec: metrics, merged args, dry-run and retention rules.
    pub spec: AnalysisRunSpec,
    /// One origin per metric of `spec.metrics`.
    pub origins: Vec<MetricOrigin>,
}

fn origins_of(o: &AnalysisObject, metrics: &[super::model::Metric]) -> Vec<MetricOrigin> {
    metrics
        .iter()
        .enumerate()
        .map(|(i, m)| MetricOrigin {
            source: o.source.clone(),
            line: o.metric_lines.get(i).copied().unwrap_or(o.line),
            object: o.label(),
            metric: m.name.clone(),
        })
        .collect()
}

/// Composes the objects of one invocation into a run: a single `AnalysisRun` as it is, or
/// every template (plus the templates they reference by `templates[]`, each once) merged
/// as Argo merges a Rollout's templates. `incoming` args override the objects' args.
///
/// # Errors
/// [`LoadError`] naming the objects for: runs mixed with templates or several runs, a
/// referenced template that was not given, duplicate metric names across templates
/// (`two metrics have the same name 'x'`), conflicting arg values, duplicate dry-run or
/// retention rules, an arg left without a value (`args.x was not resolved`).
pub fn compose(
    objects: &[AnalysisObject],
    incoming: &[Argument],
) -> Result<Composition, LoadError> {
    let whole = |o: Option<&AnalysisObject>, message: String| LoadError {
        file: o.map_or_else(String::new, |o| o.source.clone()),
        line: o.map(|o| o.line),
        column: None,
        object: o.map(AnalysisObject::label),
        message,
    };
    let runs: Vec<&AnalysisObject> = objects
        .iter()
        .filter(|o| o.kind == ObjectKind::AnalysisRun)
        .collect();
    if let Some(run) = runs.first() {
        if objects.len() > 1 {
            return Err(whole(
                Some(run),
                "an AnalysisRun must be given alone, not with other runs or templates".into(),
            ));
        }
        let ObjectBody::Run(spec) = &run.body else {
            return Err(whole(Some(run), "not a run".into()));
        };
        let mut spec = spec.clone();
        spec.args = merge_args(incoming, &spec.args).map_err(|m| whole(Some(run), m))?;
        let origins = origins_of(run, &spec.metrics);
        return Ok(Composition { spec, origins });
    }
    // Depth-first: each template, then the templates it references; each once.
    let mut order: Vec<&AnalysisObject> = Vec::new();
    let mut stack: Vec<&AnalysisObject> = objects.iter().rev().collect();
    while let Some(o) = stack.pop() {
        if order.iter().any(|p| p.kind == o.kind && p.name == o.name) {
            continue;
        }
        order.push(o);
        if let ObjectBody::Template(t) = &o.body {
            for r in t.templates.iter().rev() {
                let kind = if r.cluster_scope {
                    ObjectKind::ClusterAnalysisTemplate
                } else {
                    ObjectKind::AnalysisTemplate
                };
                let Some(target) = objects
                    .iter()
                    .find(|x| x.kind == kind && x.name == r.template_name)
                else {
                    return Err(whole(
                        Some(o),
                        format!(
                            "templates[]: {} \"{}\" is referenced but not among the given files",
                            kind.as_str(),
                            r.template_name
                        ),
                    ));
                };
                stack.push(target);
            }
        }
    }
    // Argo merges namespaced templates before cluster templates.
    order.sort_by_key(|o| o.kind == ObjectKind::ClusterAnalysisTemplate);
    let specs: Vec<&AnalysisTemplateSpec> = order
        .iter()
        .filter_map(|o| match &o.body {
            ObjectBody::Template(t) => Some(t),
            ObjectBody::Run(_) => None,
        })
        .collect();
    let flat = flatten_templates(&specs).map_err(|m| {
        // Name the objects holding a duplicate metric, when that is the problem.
        let holders: Vec<String> = order
            .iter()
            .filter(|o| match &o.body {
                ObjectBody::Template(t) => t
                    .metrics
                    .iter()
                    .any(|mm| m.contains(&format!("'{}'", mm.name))),
                ObjectBody::Run(_) => false,
            })
            .map(|o| format!("{} ({}:{})", o.label(), o.source, o.line))
            .collect();
        let mut e = whole(order.first().copied(), m);
        if holders.len() > 1 {
            e.message.push_str(&format!(" (in {})", holders.join(", ")));
        }
        e
    })?;
    let args = merge_args(incoming, &flat.args).map_err(|m| {
        let holder = order.iter().copied().find(|o| match &o.body {
            ObjectBody::Template(t) => t
                .args
                .iter()
                .any(|a| m == format!("args.{} was not resolved", a.name)),
            ObjectBody::Run(_) => false,
        });
        whole(holder, m)
    })?;
    let mut origins = Vec::new();
    for o in &order {
        if let ObjectBody::Template(t) = &o.body {
            origins.extend(origins_of(o, &t.metrics));
        }
    }
    Ok(Composition {
        spec: AnalysisRunSpec {
            metrics: flat.metrics,
            args,
            terminate: false,
            dry_run: flat.dry_run,
            measurement_retention: flat.measurement_retention,
            ttl_strategy: None,
        },
        origins,
    })
}
