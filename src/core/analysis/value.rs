//! What providers observe and what conditions see: the `result` value, the phase enum
//! shared by measurements, metrics and runs, and one provider observation.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Phase of a measurement, a metric result or a whole run (Argo's `AnalysisPhase`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum AnalysisPhase {
    /// Not started.
    #[default]
    Pending,
    /// In progress.
    Running,
    /// Completed: the condition held / no limit tripped.
    Successful,
    /// Completed: the failure condition held or the failure limit was exceeded.
    Failed,
    /// Completed: the provider or the evaluation failed.
    Error,
    /// Completed: neither condition held.
    Inconclusive,
}

impl AnalysisPhase {
    /// Successful, Failed, Error and Inconclusive are completed phases.
    #[must_use]
    pub fn is_completed(self) -> bool {
        !matches!(self, AnalysisPhase::Pending | AnalysisPhase::Running)
    }

    /// The phase as Argo spells it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AnalysisPhase::Pending => "Pending",
            AnalysisPhase::Running => "Running",
            AnalysisPhase::Successful => "Successful",
            AnalysisPhase::Failed => "Failed",
            AnalysisPhase::Error => "Error",
            AnalysisPhase::Inconclusive => "Inconclusive",
        }
    }
}

impl std::fmt::Display for AnalysisPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The value a provider returns, as the condition language sees `result`.
///
/// Prometheus gives `Float` for a scalar and `List` of `Float` for a vector or a
/// (flattened) matrix; the web provider gives whatever JSON sits at its `jsonPath`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// No value (Go `nil`): `isNil(result)` is true.
    #[default]
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float, including NaN and the infinities.
    Float(f64),
    /// A string.
    String(String),
    /// A list (an empty Prometheus vector is an empty, non-nil list).
    List(Vec<Value>),
    /// A JSON object.
    Map(BTreeMap<String, Value>),
}

impl From<&serde_json::Value> for Value {
    fn from(v: &serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(a) => Value::List(a.iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => {
                Value::Map(o.iter().map(|(k, v)| (k.clone(), Value::from(v))).collect())
            }
        }
    }
}

/// What a provider observed in one successful measurement.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observation {
    /// The value conditions see as `result`.
    pub result: Value,
    /// The measurement's `value` text as Argo renders it (`10`, `NaN`, `[10,11]`).
    pub value: String,
    /// Metadata kept with the measurement (e.g. Prometheus `warnings`).
    pub measurement_metadata: BTreeMap<String, String>,
    /// Metadata kept with the metric result (e.g. `ResolvedPrometheusQuery`).
    pub metric_metadata: BTreeMap<String, String>,
    /// A phase the provider decided itself, bypassing the conditions. Flagger's
    /// built-in metrics use it: no data, or a value outside `thresholdRange`, fails the
    /// check. `None` lets the metric's conditions decide.
    pub phase: Option<AnalysisPhase>,
    /// A message for the measurement when the provider decided the phase.
    pub message: Option<String>,
}
