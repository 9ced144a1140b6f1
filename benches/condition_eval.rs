//! Condition evaluation speed: `result[0] >= 0.95` compiled once (target: at least one
//! million evaluations per second on one core), and a whole measurement's evaluation.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rollgate::core::analysis::condition::{Condition, ConditionEnv};
use rollgate::core::analysis::model::Metric;
use rollgate::core::analysis::run::{PreparedMetric, evaluate_conditions};
use rollgate::core::analysis::value::Value;

fn conditions(c: &mut Criterion) {
    let mut group = c.benchmark_group("condition");
    group.throughput(Throughput::Elements(1));
    let cond = Condition::compile("result[0] >= 0.95").expect("compiles");
    let env = ConditionEnv::new(&Value::List(vec![Value::Float(0.97)]));
    group.bench_function("result[0] >= 0.95", |b| {
        b.iter(|| cond.evaluate(std::hint::black_box(&env)))
    });
    let guarded =
        Condition::compile("len(result) > 0 && all(result, # >= 0.95)").expect("compiles");
    let many = ConditionEnv::new(&Value::List(
        (0..10)
            .map(|i| Value::Float(0.95 + f64::from(i) / 1000.0))
            .collect(),
    ));
    group.bench_function(
        "len(result) > 0 && all(result, # >= 0.95), 10 values",
        |b| b.iter(|| guarded.evaluate(std::hint::black_box(&many))),
    );
    let metric = PreparedMetric::new(&Metric {
        name: "m".into(),
        success_condition: Some("result[0] >= 0.95".into()),
        failure_condition: Some("result[0] < 0.5".into()),
        ..Metric::default()
    })
    .expect("compiles");
    let result = Value::List(vec![Value::Float(0.97)]);
    group.bench_function("measurement phase (both conditions, env built)", |b| {
        b.iter(|| evaluate_conditions(&metric, std::hint::black_box(&result)))
    });
    group.finish();
}

criterion_group!(benches, conditions);
criterion_main!(benches);
