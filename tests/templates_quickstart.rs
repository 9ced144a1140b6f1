//! `scripts/quickstart`, the README's main-job command: a real Prometheus with a healthy
//! and a bad canary, judged by the shipped Istio templates through `rollgate analyze`.

use std::path::Path;
use std::process::Command;

#[test]
fn quickstart_passes_the_healthy_canary_and_fails_the_bad_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("scripts/quickstart"))
        .env("ROLLGATE_BIN", env!("CARGO_BIN_EXE_rollgate"))
        .output()
        .expect("run scripts/quickstart");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("healthy canary: exit 0 (0 = Successful); bad canary: exit 1 (1 = Failed)"),
        "{stdout}"
    );
    // The verdict tables of `rollgate analyze` for both canaries.
    assert!(stdout.contains("Successful"), "{stdout}");
    assert!(stdout.contains("Failed"), "{stdout}");
    // It cleans up after itself: no temporary directory left behind.
    let tmp = std::env::var_os("TMPDIR").unwrap_or_else(|| "/tmp".into());
    let leftovers = std::fs::read_dir(&tmp)
        .expect("tmp dir")
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("rollgate-quickstart.")
        })
        .count();
    assert_eq!(
        leftovers, 0,
        "quickstart left its work directory in {tmp:?}"
    );
}
