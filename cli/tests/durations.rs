//! `--timeout` with a huge duration means "no timeout in practice", never
//! zero and never a refusal: it saturates, as timeout(1) does.

use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_safespawn");

#[test]
fn a_huge_timeout_lets_the_program_finish() {
    for huge in [
        "1e300h",
        "1e400",
        "inf",
        "18446744073709551616s",
        "9999999999999999h",
    ] {
        let started = Instant::now();
        let out = Command::new(BIN)
            .args(["--timeout", huge, "--", "sh", "-c", "sleep 0.2; echo done"])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "--timeout {huge}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"done\n", "--timeout {huge}");
        assert!(started.elapsed() >= Duration::from_millis(200));
    }
}

#[test]
fn a_timeout_that_is_not_a_number_is_still_refused() {
    for bad in ["nan", "NaN", "-inf", "0", "-1s"] {
        let out = Command::new(BIN)
            .args(["--timeout", bad, "--", "true"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(125), "--timeout {bad}");
    }
}
