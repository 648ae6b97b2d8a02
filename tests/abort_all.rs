//! `Running::abort_all`: many TERM-ignoring children end after one shared
//! grace, not one grace each.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use safespawn::{Command, Running, Stdio};

/// A child that ignores SIGTERM, once it has said so.
fn term_ignoring() -> Running {
    let mut child = Command::new("sh")
        .args(["-c", "trap '' TERM; echo ready; exec sleep 30"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 6];
    child.take_stdout().unwrap().read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ready\n");
    child
}

#[test]
fn twenty_term_ignoring_children_abort_after_one_grace() {
    let children: Vec<Running> = (0..20).map(|_| term_ignoring()).collect();
    let pids: Vec<i32> = children.iter().map(Running::pid).collect();
    let started = Instant::now();
    let results = Running::abort_all(children);
    let took = started.elapsed();
    assert_eq!(results.len(), 20);
    for r in results {
        assert_eq!(r.unwrap().signal(), Some(libc::SIGKILL));
    }
    // One grace of 100 ms for all, not 20 × 100 ms.
    assert!(took < Duration::from_secs(1), "took {took:?}");
    let zombies = common::zombie_children();
    assert!(pids.iter().all(|p| !zombies.contains(p)), "{zombies:?}");
}

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
