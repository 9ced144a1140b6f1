//! The condition language of `successCondition` / `failureCondition`: expr-lang, as Argo
//! Rollouts evaluates it, with Argo's helpers (`isNaN`, `isInf`, `isNil`, `asInt`,
//! `asFloat`, `default`).
//!
//! # Why the `expr-lang` crate
//!
//! Evaluated against `../shared/vectors/argo-rollouts-cases.json` (`conditions`) and §10 of
//! the analysis semantics before adopting it. It parses and evaluates, with Go's
//! semantics: comparisons and arithmetic on `result` and `result[i]` with int/float mixing,
//! NaN comparisons false, `+Inf`, `&&`/`||`/`!`/`and`/`or`/`not`, `in` (int literal found in a
//! float list), `len`, `all`/`any`/`none`/`one`/`filter`/`map`/`count` with both `# > 1` and
//! `{# > 1}` predicates, ternary, `??`, member and index access on maps (`result.data.ok`,
//! `result['a']`), `matches`/`contains`/`startsWith`/`endsWith`, `now()`, `duration("1h")`,
//! and custom functions, which is where Argo's helpers are added. Method calls on values
//! (`result.Name()`) are evaluation errors, as in Argo. All 19 `conditions` vectors pass
//! (`tests/analysis_vectors.rs`).
//!
//! Speed: `result[0] >= 0.95` compiled once, evaluated against a prepared environment:
//! about 7 million evaluations per second on one core of the 2-core build machine
//! (`cargo bench --bench condition_eval`), against a target of 1 million.
//!
//! What differs from Go, and how this module covers it:
//! - Go type-checks at compile time; expr-lang does not. An unknown identifier is reported
//!   when evaluated, with its message rewritten to Go's (`unknown name a`), and the measurement
//!   is Error as in Argo. A short-circuited unknown name (`true || a`) is not an error here.
//! - A non-bool result gives Go's message (`expected bool, but got int`), produced here.
//! - Out-of-range indexing yields `nil` instead of an error, so `result[0] >= 0.95` on an
//!   empty list still fails (comparison of nil), and Argo replaces the cause by `metric result
//!   is nil or empty: ...` anyway; only `result[5] == nil` answers differently (true here).
//! - Operator type errors read `Invalid operands for operator <` rather than Go's
//!   `invalid operation: < (mismatched types float64 and string)`; both are Error.
//! - `==` between mismatched types is false in both.

use std::sync::LazyLock;

use expr::{Context, Environment, Program, Value as ExprValue};

use super::value::Value;

/// A condition that does not parse; the message says where (`1:10`) and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConditionSyntaxError(pub String);

/// A compiled condition, ready to evaluate many times.
pub struct Condition {
    source: String,
    program: Program,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Condition").field(&self.source).finish()
    }
}

impl Clone for Condition {
    fn clone(&self) -> Self {
        // The source compiled once already; compiling it again cannot fail.
        Condition::compile(&self.source).expect("a condition that compiled once compiles again")
    }
}

/// The variables a condition sees: `result`, prepared once per measurement so both
/// conditions (and benchmarks) evaluate without converting the value again.
#[derive(Debug, Clone)]
pub struct ConditionEnv {
    ctx: Context,
}

impl ConditionEnv {
    /// The environment for one provider value.
    #[must_use]
    pub fn new(result: &Value) -> Self {
        let mut ctx = Context::default();
        ctx.insert("result", to_expr(result));
        Self { ctx }
    }
}

fn to_expr(v: &Value) -> ExprValue {
    match v {
        Value::Nil => ExprValue::Nil,
        Value::Bool(b) => ExprValue::Bool(*b),
        Value::Int(i) => ExprValue::Integer(*i),
        Value::Float(f) => ExprValue::Float(*f),
        Value::String(s) => ExprValue::String(s.clone()),
        Value::List(l) => ExprValue::Array(l.iter().map(to_expr).collect()),
        Value::Map(m) => ExprValue::Map(
            m.iter()
                .map(|(k, v)| (k.clone(), to_expr(v)))
                .collect::<indexmap::IndexMap<_, _>>(),
        ),
    }
}

/// Go's `%T` of the value an expression produced, for `expected bool, but got <type>`.
fn go_type(v: &ExprValue) -> &'static str {
    match v {
        ExprValue::Integer(_) => "int",
        ExprValue::Bool(_) => "bool",
        ExprValue::Float(_) => "float64",
        ExprValue::Nil => "<nil>",
        ExprValue::String(_) => "string",
        ExprValue::Array(_) => "[]interface {}",
        ExprValue::Bytes(_) => "[]uint8",
        ExprValue::Map(_) | ExprValue::KeyedMap(_) => "map[string]interface {}",
        ExprValue::DateTime(_) => "time.Time",
        ExprValue::Duration(_) => "time.Duration",
        ExprValue::Timezone(_) => "*time.Location",
        ExprValue::Month(_) => "time.Month",
        ExprValue::Weekday(_) => "time.Weekday",
    }
}

fn go_value(v: &ExprValue) -> String {
    match v {
        ExprValue::Nil => "<nil>".to_owned(),
        ExprValue::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn arity(ident: &str, args: &[ExprValue], n: usize) -> expr::Result<()> {
    if args.len() == n {
        Ok(())
    } else {
        Err(expr::Error::ExprError(format!(
            "invalid number of arguments for {ident} (expected {n}, got {})",
            args.len()
        )))
    }
}

fn float_arg(ident: &str, args: &[ExprValue]) -> expr::Result<f64> {
    arity(ident, args, 1)?;
    match &args[0] {
        ExprValue::Float(f) => Ok(*f),
        // Go decodes JSON numbers as float64, so web results that look like integers
        // reach isNaN/isInf as floats there: accept integers the same way.
        #[allow(clippy::cast_precision_loss)]
        ExprValue::Integer(i) => Ok(*i as f64),
        other => Err(expr::Error::ExprError(format!(
            "reflect: Call using {} as type float64",
            go_type(other)
        ))),
    }
}

fn go_parse_int(s: &str) -> expr::Result<i64> {
    s.parse::<i64>().map_err(|e| {
        let why = if matches!(
            e.kind(),
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow
        ) {
            "value out of range"
        } else {
            "invalid syntax"
        };
        expr::Error::ExprError(format!("strconv.ParseInt: parsing \"{s}\": {why}"))
    })
}

fn go_parse_float(s: &str) -> expr::Result<f64> {
    let lower = s.to_ascii_lowercase();
    let t = lower.trim_start_matches(['+', '-']);
    let special = matches!(t, "inf" | "infinity" | "nan");
    if !special
        && !s
            .bytes()
            .all(|b| b.is_ascii_digit() || b".+-eE_".contains(&b))
    {
        return Err(expr::Error::ExprError(format!(
            "strconv.ParseFloat: parsing \"{s}\": invalid syntax"
        )));
    }
    s.parse::<f64>().map_err(|_| {
        expr::Error::ExprError(format!(
            "strconv.ParseFloat: parsing \"{s}\": invalid syntax"
        ))
    })
}

static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.add_function("isNaN", |c| {
        Ok(ExprValue::Bool(float_arg(&c.ident, &c.args)?.is_nan()))
    });
    env.add_function("isInf", |c| {
        Ok(ExprValue::Bool(float_arg(&c.ident, &c.args)?.is_infinite()))
    });
    // isNil and default ignore their first argument and look at the raw provider value,
    // as Argo's helpers do (they close over it).
    env.add_function("isNil", |c| {
        arity(&c.ident, &c.args, 1)?;
        Ok(ExprValue::Bool(matches!(
            c.ctx.get("result"),
            None | Some(ExprValue::Nil)
        )))
    });
    env.add_function("default", |c| {
        arity(&c.ident, &c.args, 2)?;
        match c.ctx.get("result") {
            None | Some(ExprValue::Nil) => Ok(c.args[1].clone()),
            Some(v) => Ok(v.clone()),
        }
    });
    env.add_function("asInt", |c| {
        arity(&c.ident, &c.args, 1)?;
        match &c.args[0] {
            // Go's int64(f): truncation toward zero.
            #[allow(clippy::cast_possible_truncation)]
            ExprValue::Float(f) => Ok(ExprValue::Integer(f.trunc() as i64)),
            ExprValue::Integer(i) => Ok(ExprValue::Integer(*i)),
            ExprValue::String(s) => Ok(ExprValue::Integer(go_parse_int(s)?)),
            other => Err(expr::Error::ExprError(format!(
                "asInt() not supported on {} {}",
                go_type(other),
                go_value(other)
            ))),
        }
    });
    env.add_function("asFloat", |c| {
        arity(&c.ident, &c.args, 1)?;
        match &c.args[0] {
            ExprValue::Float(f) => Ok(ExprValue::Float(*f)),
            #[allow(clippy::cast_precision_loss)]
            ExprValue::Integer(i) => Ok(ExprValue::Float(*i as f64)),
            ExprValue::String(s) => Ok(ExprValue::Float(go_parse_float(s)?)),
            other => Err(expr::Error::ExprError(format!(
                "asFloat() not supported on {} {}",
                go_type(other),
                go_value(other)
            ))),
        }
    });
    env
});

/// Rewrite expr-lang's wording where Argo users know Go's.
fn go_message(err: &expr::Error) -> String {
    let text = err.to_string();
    if let Some(name) = text
        .strip_prefix("unknown variable: ")
        .or_else(|| text.strip_prefix("Unknown function: "))
    {
        return format!("unknown name {name}");
    }
    text
}

/// Squeeze pest's multi-line report (` --> 1:10`, the source line, a caret, `= expected
/// ...`) into one line: `syntax error at 1:10: expected ...`.
fn one_line_syntax_error(report: &str) -> String {
    let position = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("-->"))
        .map(str::trim);
    let expected = report
        .lines()
        .find_map(|l| l.trim().strip_prefix('='))
        .map(str::trim);
    match (position, expected) {
        (Some(p), Some(e)) => format!("syntax error at {p}: {e}"),
        _ => report.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

impl Condition {
    /// Compile a condition.
    ///
    /// # Errors
    /// [`ConditionSyntaxError`] when the text is not an expression.
    pub fn compile(source: &str) -> Result<Self, ConditionSyntaxError> {
        match expr::compile(source) {
            Ok(program) => Ok(Self {
                source: source.to_owned(),
                program,
            }),
            Err(expr::Error::PestError(e)) => {
                Err(ConditionSyntaxError(one_line_syntax_error(&e.to_string())))
            }
            Err(e) => Err(ConditionSyntaxError(e.to_string())),
        }
    }

    /// The text the condition was compiled from.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluate against a prepared environment.
    ///
    /// # Errors
    /// The evaluation error as Argo words it: an unknown name, a type error, a helper's
    /// failure (`strconv.ParseFloat: ...`), or `expected bool, but got <type>`.
    pub fn evaluate(&self, env: &ConditionEnv) -> Result<bool, String> {
        match ENVIRONMENT.run(&self.program, &env.ctx) {
            Ok(ExprValue::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("expected bool, but got {}", go_type(&other))),
            Err(e) => Err(go_message(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(src: &str, v: &Value) -> Result<bool, String> {
        Condition::compile(src)
            .unwrap()
            .evaluate(&ConditionEnv::new(v))
    }

    #[test]
    fn helpers_follow_argo() {
        assert_eq!(eval("isNaN(result)", &Value::Float(f64::NAN)), Ok(true));
        assert_eq!(
            eval("isInf(result)", &Value::Float(f64::NEG_INFINITY)),
            Ok(true)
        );
        assert_eq!(eval("asInt(1.9) == 1", &Value::Nil), Ok(true));
        assert_eq!(eval("asInt(-1.9) == -1", &Value::Nil), Ok(true));
        assert_eq!(eval("asFloat(1) == 1", &Value::Nil), Ok(true));
        assert_eq!(
            eval("asInt(result) == 1", &Value::String("1.1".into())),
            Err(r#"strconv.ParseInt: parsing "1.1": invalid syntax"#.into())
        );
        assert_eq!(eval("isNil(1)", &Value::Nil), Ok(true));
        assert_eq!(eval("isNil(nil)", &Value::List(vec![])), Ok(false));
        assert_eq!(eval("default(result, 0) == 0", &Value::Nil), Ok(true));
        assert_eq!(
            eval("len(default(result, [1])) == 0", &Value::List(vec![])),
            Ok(true)
        );
        assert_eq!(eval("a == 1", &Value::Nil), Err("unknown name a".into()));
        assert_eq!(
            eval("result", &Value::Float(1.0)),
            Err("expected bool, but got float64".into())
        );
    }

    #[test]
    fn syntax_errors_are_one_line() {
        let e = Condition::compile("result >=").unwrap_err().to_string();
        assert!(e.starts_with("syntax error at 1:10: expected"), "{e}");
        assert!(!e.contains('\n'));
    }
}
