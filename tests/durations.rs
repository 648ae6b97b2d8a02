//! Every Duration the library takes means "effectively forever" when it is
//! huge, never zero: `.timeout(d)`, `wait_delay(d)` and `wait_timeout(d)`
//! with `Duration::MAX` (whose deadline does not fit an `Instant`) and with
//! a huge duration that still fits.

mod common;

use std::time::{Duration, Instant};

use common::helper;
use safespawn::Command;

const HUGE: [Duration; 3] = [
    Duration::MAX,
    Duration::from_secs(u64::MAX / 2),
    Duration::from_secs(1 << 40),
];

#[test]
fn wait_delay_huge_keeps_reading_what_a_grandchild_writes_later() {
    for huge in HUGE {
        let out = Command::new("sh")
            .args(["-c", "(sleep 0.3; echo late) & echo early"])
            .capture_stdout()
            .wait_delay(huge)
            .run()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "early\nlate\n",
            "wait_delay({huge:?})"
        );
    }
}

#[test]
fn timeout_huge_is_no_timeout() {
    for huge in HUGE {
        let started = Instant::now();
        let st = helper("sleep=0.2").timeout(huge).status();
        assert!(st.as_ref().is_ok_and(|s| s.success()), "{huge:?}: {st:?}");
        assert!(started.elapsed() >= Duration::from_millis(200));
        let out = helper("sleep=0.2,out=done")
            .capture_stdout()
            .timeout(huge)
            .run()
            .unwrap();
        assert_eq!(out.stdout, b"done", "{huge:?}");
    }
}

#[test]
fn wait_timeout_huge_waits_for_the_exit() {
    for huge in HUGE {
        let mut child = helper("sleep=0.2").spawn().unwrap();
        let started = Instant::now();
        let st = child.wait_timeout(huge).unwrap();
        assert!(st.is_some_and(|s| s.success()), "{huge:?}: {st:?}");
        assert!(started.elapsed() >= Duration::from_millis(200));
        let mut d = helper("sleep=0.1").spawn().unwrap();
        assert!(d.wait_timeout(huge).unwrap().is_some());
    }
}

#[test]
fn abort_after_a_huge_wait_timeout_still_ends_the_child() {
    // The grace of abort is fixed (100 ms), whatever came before.
    let mut child = helper("sleep=30").spawn().unwrap();
    assert!(child
        .wait_timeout(Duration::from_millis(10))
        .unwrap()
        .is_none());
    let started = Instant::now();
    assert_eq!(child.abort().unwrap().signal(), Some(libc::SIGTERM));
    assert!(started.elapsed() < Duration::from_secs(5));
}
