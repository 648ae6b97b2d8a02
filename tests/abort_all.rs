//! `Running::abort_all` on a mix of exited and running children.

mod common;

use std::time::Duration;

use safespawn::Running;

// Twenty TERM-ignoring children aborting after one shared grace is
// `abort_all_shares_one_grace` in tests/compat_suite, run on this system
// (compat_host) and through every fallback.

#[test]
fn abort_all_of_exited_and_running_children_returns_each_status() {
    let mut exited = common::helper("exit=7").spawn().unwrap();
    while exited.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let waiting = common::helper("exit=8").spawn().unwrap();
    let sleeping = common::helper("sleep=30").spawn().unwrap();
    let results = Running::abort_all([exited, waiting, sleeping]);
    let codes: Vec<(Option<i32>, Option<i32>)> = results
        .into_iter()
        .map(|r| r.map(|f| (f.code(), f.signal())).unwrap())
        .collect();
    assert_eq!(codes[0], (Some(7), None));
    // Exited by itself, or was TERMed before it could: either is an end.
    assert!(
        codes[1] == (Some(8), None) || codes[1] == (None, Some(libc::SIGTERM)),
        "{:?}",
        codes[1]
    );
    assert_eq!(codes[2], (None, Some(libc::SIGTERM)));
    assert!(Running::abort_all(Vec::new()).is_empty());
}
