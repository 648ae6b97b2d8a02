//! A killed intermediate does not leave the daemon running on our stack,
//! on a system without `pidfd_open` (`safespawn::__compat::LINUX_5_1`),
//! where the stray daemon is stopped by pid. One test in a binary of its
//! own: it makes the process a child subreaper, so the daemon is re-parented
//! to it and can be seen.

mod common;

use common::{helper, stat_fields};
use rustix::process::{Pid, Signal, WaitOptions};

fn pid(raw: i32) -> Pid {
    Pid::from_raw(raw).unwrap()
}

/// Every child of this process (all threads).
fn our_children() -> Vec<i32> {
    let mut pids = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            pids.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    pids
}

#[test]
fn a_killed_intermediate_does_not_leave_the_daemon_on_our_stack_without_pidfds() {
    safespawn::__force_compat(safespawn::__compat::LINUX_5_1);
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    let dir = common::Scratch::new("stray-daemon");
    // Opening a FIFO for writing blocks until a reader comes: the daemon
    // stops inside its pidfile step, still running on the spawning frame.
    let fifo = dir.join("pidfile.fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let before = our_children();
    let killer = std::thread::spawn(move || {
        // The intermediate is our new child, in a session of its own.
        for _ in 0..2000 {
            for p in our_children() {
                if !before.contains(&p) && stat_fields(p).get(3) == Some(&p.to_string()) {
                    rustix::process::kill_process(pid(p), Signal::KILL).unwrap();
                    return Some(p);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        None
    });
    let err = helper("sleep=30")
        .daemonize()
        .pidfile(&fifo)
        .run()
        .unwrap_err();
    let intermediate = killer
        .join()
        .unwrap()
        .expect("the intermediate was never seen");
    assert!(
        err.to_string().contains("killed by signal 9"),
        "{err} (intermediate {intermediate})"
    );
    // Stopped before run() returned: nothing of ours is left but, at most,
    // its zombie (this process is its subreaper).
    for p in our_children() {
        assert_eq!(
            stat_fields(p).first().map(String::as_str),
            Some("Z"),
            "process {p} still running after run() returned"
        );
        let _ = rustix::process::waitpid(Some(pid(p)), WaitOptions::empty());
    }
}
