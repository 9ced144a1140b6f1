//! The README's command list cannot drift from the CLI.

use clap::CommandFactory;
use rollgate::cli::Cli;

fn readme_section(start: &str, end: &str) -> String {
    let readme = include_str!("../README.md");
    let from = readme.find(start).expect("README has the start marker");
    let to = readme[from..].find(end).expect("README has the end marker") + from;
    readme[from..to].to_owned()
}

#[test]
fn readme_lists_exactly_the_cli_commands() {
    let section = readme_section("<!-- commands:", "<!-- end commands -->");
    let mut listed: Vec<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("- `rollgate "))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect();
    let mut actual: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    listed.sort();
    actual.sort();
    assert_eq!(listed, actual, "README command list vs `rollgate --help`");
}
