//! The chart and `rollgate controller` agree on configuration: every environment variable
//! the controller reads is one the chart's Deployment sets, so an install configures what
//! the values say (a name mismatch would leave `--env` unset and the pod crash-looping).

use clap::CommandFactory;
use rollgate::cli::Cli;

fn chart_env_names() -> Vec<String> {
    let deployment = include_str!("../charts/rollgate/templates/deployment.yaml");
    deployment
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- name: "))
        .map(|n| n.trim().to_owned())
        .filter(|n| n.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect()
}

fn controller_env_names() -> Vec<String> {
    let cli = Cli::command();
    let controller = cli
        .find_subcommand("controller")
        .expect("rollgate controller exists");
    controller
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_variable_the_controller_reads_is_set_by_the_chart() {
    let set = chart_env_names();
    let read = controller_env_names();
    assert!(
        read.iter().any(|n| n == "ROLLGATE_ENVIRONMENT"),
        "the controller's --env must come from the chart: {read:?}"
    );
    let missing: Vec<_> = read.iter().filter(|n| !set.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "read by `rollgate controller` but never set by the chart: {missing:?} (chart sets {set:?})"
    );
}
