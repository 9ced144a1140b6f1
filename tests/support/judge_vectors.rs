//! Loading the shared judge vectors (`../shared/vectors`) for the judge tests.
#![allow(dead_code)] // each test file uses a different subset of these helpers

use std::path::PathBuf;

/// Path of a vector file in the shared folder beside the repository (as CI lays it out),
/// or under `/work/shared` (the developers' machines).
pub fn vector_path(name: &str) -> PathBuf {
    let beside = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("shared")
        .join("vectors")
        .join(name);
    if beside.exists() {
        return beside;
    }
    let fallback = PathBuf::from("/work/shared/vectors").join(name);
    assert!(
        fallback.exists(),
        "vector file {name} not found beside the repository nor in /work/shared/vectors"
    );
    fallback
}

/// Parse a vector file as JSON.
pub fn load(name: &str) -> serde_json::Value {
    let path = vector_path(name);
    let text = std::fs::read_to_string(&path).expect("read the vector file");
    serde_json::from_str(&text).expect("vector file is JSON")
}

/// A JSON number, or the strings "NaN"/"Infinity"/"-Infinity".
pub fn num(v: &serde_json::Value) -> f64 {
    match v {
        serde_json::Value::Number(n) => n.as_f64().expect("finite number"),
        serde_json::Value::String(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            other => panic!("not a number: {other}"),
        },
        other => panic!("not a number: {other}"),
    }
}

/// A JSON array of numbers.
pub fn nums(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(num).collect()
}

/// Relative closeness with NaN equal to NaN.
pub fn close_rel(actual: f64, expected: f64, rel: f64) -> bool {
    if expected.is_nan() {
        return actual.is_nan();
    }
    if expected == 0.0 {
        return actual.abs() <= 1e-300;
    }
    ((actual - expected) / expected).abs() <= rel
}
