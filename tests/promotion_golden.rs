//! Golden files: promoting a version changes only the version token; comments, blank
//! lines, key order, quoting, anchors, flow mappings and line endings stay byte-identical.
//! Checked through the library and end to end through `rollgate promote` on a real repo.

#[path = "support/git.rs"]
mod support;

use std::path::PathBuf;

use rollgate::core::promotion::edit;
use rollgate::core::promotion::policy::VersionField;
use support::{Fixture, json};

fn golden(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/promotion-golden")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const CASES: &[(&str, &str)] = &[
    ("helm-values", "image.tag"),
    ("helm-values-crlf", "image.tag"),
    ("kustomization", "images:ghcr.io/acme/application-x"),
    ("markers", "marker:flux-system:application-x"),
];

#[test]
fn edits_match_the_golden_files_byte_for_byte() {
    for (name, field) in CASES {
        let input = golden(&format!("{name}.yaml"));
        let expected = golden(&format!("{name}.expected.yaml"));
        assert_ne!(input, expected, "{name}: the golden pair differs");
        let field: VersionField = field.parse().expect("field");
        assert_eq!(
            edit::read_field(name, &input, &field).as_deref(),
            Ok("1.2.3"),
            "{name}: reads the current version"
        );
        let out = edit::set_field(name, &input, &field, "1.3.0").expect("edit");
        assert_eq!(out.previous, "1.2.3");
        assert!(
            out.text == expected,
            "{name}: edit differs from the golden file\n--- got\n{}\n--- expected\n{}",
            out.text,
            expected
        );
        // and back again restores the original bytes
        let back = edit::set_field(name, &out.text, &field, "1.2.3").expect("edit back");
        assert_eq!(back.text, input, "{name}: round trip");
    }
}

#[test]
fn promote_through_the_cli_matches_the_golden_files() {
    let files: Vec<(String, String)> = CASES
        .iter()
        .map(|(name, _)| {
            (
                format!("deploy/{name}.yaml"),
                golden(&format!("{name}.yaml")),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let f = Fixture::new(&refs);
    let envs: Vec<(String, String, String)> = CASES
        .iter()
        .map(|(name, field)| {
            (
                name.to_string(),
                format!("deploy/{name}.yaml"),
                field.to_string(),
            )
        })
        .collect();
    let env_refs: Vec<(&str, &str, &str, bool)> = envs
        .iter()
        .map(|(n, p, fi)| (n.as_str(), p.as_str(), fi.as_str(), false))
        .collect();
    let policy = f.policy("policy.yaml", "application-x", &env_refs);
    for (name, _) in CASES {
        let v = json(&f.rollgate(&[
            "promote",
            "--policy",
            &policy.display().to_string(),
            "--app",
            "application-x",
            "--to",
            name,
            "--version",
            "1.3.0",
            "--output",
            "json",
        ]));
        assert_eq!(v["result"], "committed", "{name}: {v}");
        assert!(
            f.remote_file(&format!("deploy/{name}.yaml"))
                == golden(&format!("{name}.expected.yaml")),
            "{name}: committed file differs from the golden file"
        );
    }
}
