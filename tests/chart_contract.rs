//! The chart and `rollgate controller` agree on configuration, in both directions: every
//! environment variable the controller reads is one the chart's Deployment sets (a name
//! mismatch would leave `--env` unset and the pod crash-looping), and every variable the
//! chart sets is one the controller reads (a variable nobody reads is a setting that
//! silently does nothing). The HTTP listener the controller opens is the port the chart
//! probes and exposes.

use clap::CommandFactory;
use rollgate::cli::Cli;

const DEPLOYMENT: &str = include_str!("../charts/rollgate/templates/deployment.yaml");
const SERVICE: &str = include_str!("../charts/rollgate/templates/service.yaml");

fn chart_env_names() -> Vec<String> {
    DEPLOYMENT
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- name: "))
        .map(|n| n.trim().to_owned())
        .filter(|n| n.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect()
}

/// The variables `rollgate controller` reads: its own arguments' and the global ones'
/// (`--log-level`), as clap declares them.
fn controller_env_names() -> Vec<String> {
    let cli = Cli::command();
    let globals = cli
        .get_arguments()
        .filter(|a| a.is_global_set())
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned());
    let controller = cli
        .find_subcommand("controller")
        .expect("rollgate controller exists");
    controller
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .chain(globals)
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

#[test]
fn every_variable_the_chart_sets_is_read_by_the_controller() {
    let set = chart_env_names();
    let read = controller_env_names();
    assert!(set.len() >= 5, "the chart's env list was found: {set:?}");
    let unread: Vec<_> = set.iter().filter(|n| !read.contains(n)).collect();
    assert!(
        unread.is_empty(),
        "set by the chart but read by nothing in `rollgate controller`: {unread:?} (it reads {read:?})"
    );
}

/// The controller serves health, readiness, the API and `/metrics` on one listener
/// (`ROLLGATE_HTTP_ADDRESS`): the container declares only that port, and every Service
/// port sends to it.
#[test]
fn every_port_the_chart_exposes_has_a_listener() {
    let container_ports: Vec<&str> = DEPLOYMENT
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("containerPort: "))
        .collect();
    assert_eq!(
        container_ports,
        ["{{ .Values.service.httpPort }}"],
        "one container port, the HTTP listener"
    );
    assert!(
        DEPLOYMENT.contains("value: \"0.0.0.0:{{ .Values.service.httpPort }}\""),
        "ROLLGATE_HTTP_ADDRESS listens on the declared port"
    );
    let targets: Vec<&str> = SERVICE
        .lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("targetPort: "))
        .collect();
    assert!(!targets.is_empty());
    assert!(
        targets.iter().all(|t| *t == "http"),
        "every Service port targets the HTTP listener: {targets:?}"
    );
    let cli = Cli::command();
    let controller = cli.find_subcommand("controller").expect("controller");
    let http = controller
        .get_arguments()
        .find(|a| a.get_env().is_some_and(|e| e == "ROLLGATE_HTTP_ADDRESS"))
        .expect("the HTTP address is read from ROLLGATE_HTTP_ADDRESS");
    assert_eq!(http.get_long(), Some("metrics-addr"));
}

/// The values the chart renders (`"true"`/`"false"`, seconds as quoted numbers) parse
/// into the settings they document.
#[test]
fn the_charts_value_forms_parse() {
    use clap::Parser as _;
    let parse = |extra: &[&str]| {
        let mut argv = vec!["rollgate", "controller", "--env", "dev"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).expect("parses").command {
            rollgate::cli::Command::Controller(a) => a,
            other => panic!("not the controller: {other:?}"),
        }
    };
    let defaults = parse(&[]);
    assert!(defaults.leader_election, "leader election is on by default");
    assert_eq!(
        (
            defaults.lease_duration_seconds,
            defaults.lease_renew_deadline_seconds
        ),
        (15, 10),
        "the chart's defaults"
    );
    let a = parse(&[
        "--leader-election",
        "false",
        "--lease-duration-seconds",
        "30",
        "--lease-renew-deadline-seconds",
        "20",
        "--instance",
        "rollgate-abc",
    ]);
    assert!(!a.leader_election);
    assert_eq!(
        (a.lease_duration_seconds, a.lease_renew_deadline_seconds),
        (30, 20)
    );
    assert_eq!(a.instance.as_deref(), Some("rollgate-abc"));
}
