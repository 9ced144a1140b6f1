//! The core decides, the edges do I/O: nothing under `src/core/` may name an async
//! runtime, a Kubernetes client, git, an HTTP server or client.

use std::path::Path;

const FORBIDDEN: &[&str] = &["tokio", "kube", "git2", "axum", "hyper", "reqwest"];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/core is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// One pattern per forbidden crate, compiled once: the crate name used as a path root
/// (`tokio::`, `use kube;`, `git2 as g`, `use axum::{..}`).
fn patterns() -> Vec<(&'static str, regex::Regex)> {
    FORBIDDEN
        .iter()
        .map(|krate| {
            let pattern = format!(r"(^|[^A-Za-z0-9_]){krate}(_[a-z_]+)?(::|\s*;|\s*\{{|\s+as\s)");
            (*krate, regex::Regex::new(&pattern).expect("valid pattern"))
        })
        .collect()
}

/// Finds crate names used as a path root (`tokio::`, `use kube`, `extern crate git2`),
/// ignoring comments.
fn violations(source: &str, patterns: &[(&str, regex::Regex)]) -> Vec<String> {
    let mut found = Vec::new();
    for (no, line) in source.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for (krate, re) in patterns {
            let used = re.is_match(code)
                || code.trim_start().starts_with(&format!("use {krate}"))
                || code.contains(&format!("extern crate {krate}"));
            if used {
                found.push(format!("line {}: {}", no + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn core_uses_no_io_crates() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/core"),
        &mut files,
    );
    assert!(!files.is_empty(), "src/core has Rust files");
    let patterns = patterns();
    let mut report = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable source");
        for v in violations(&text, &patterns) {
            report.push(format!("{}: {v}", file.display()));
        }
    }
    assert!(
        report.is_empty(),
        "src/core must stay pure:\n{}",
        report.join("\n")
    );
}

#[test]
fn the_check_catches_each_forbidden_crate() {
    let patterns = patterns();
    for krate in FORBIDDEN {
        for line in [
            format!("use {krate}::x;"),
            format!("let a = {krate}::spawn(f);"),
            format!("    use {krate};"),
        ] {
            assert!(
                !violations(&line, &patterns).is_empty(),
                "not caught: {line}"
            );
        }
    }
    assert!(violations("// tokio::spawn is forbidden here", &patterns).is_empty());
    assert!(violations("let tokens = 3; // not a crate", &patterns).is_empty());
}
