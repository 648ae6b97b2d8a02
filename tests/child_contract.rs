//! The child contract: between clone/fork and exec the child never allocates.
//!
//! This test binary's global allocator (`tests/common/tripwire.rs`) aborts
//! when called from any process but the test itself. Every option of every area is spawned, from the
//! per-area list in `tests/common/maximal.rs`, on the clone path and on the
//! fork path (paused, then resumed); a child that allocated would die of
//! SIGABRT, which every check below would see (a wrong exit status, or a
//! spawn error that did not arrive).

mod common;

use std::time::Duration;

use common::helper;
use common::maximal::{self, run_entry, start, PATHS};
use common::tripwire::ParentOnly;
use safespawn::{Command, Error, Stdio};

#[global_allocator]
static GLOBAL: ParentOnly = ParentOnly;

#[test]
fn the_tripwire_fires_in_a_child_that_allocates() {
    // A hook that allocates in the (forked) child must be caught: proves the
    // allocator really aborts outside the parent.
    // SAFETY: deliberately breaks the hook contract, in a child we discard.
    let cmd = unsafe {
        Command::new("true").pre_exec(|| {
            std::hint::black_box(vec![0u8; 64]);
            Ok(())
        })
    };
    let st = cmd.status().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&st),
        Some(libc::SIGABRT)
    );
}

#[test]
fn every_area_runs_without_allocating() {
    // Each area has its entries (pause: every entry goes through it;
    // daemon: its own test below).
    let areas: Vec<&str> = maximal::maximal_commands().iter().map(|m| m.area).collect();
    for area in maximal::CHILD_AREAS {
        assert!(
            areas.contains(&area) || ["pause", "daemon", "cgroup"].contains(&area),
            "no maximal command for the {area} area"
        );
    }
    for path in PATHS {
        for m in maximal::maximal_commands() {
            run_entry(m, path);
        }
    }
}

#[test]
fn failures_and_endings_run_without_allocating() {
    // Failure paths report instead of allocating.
    for path in PATHS {
        let failing = maximal::failing_commands()
            .into_iter()
            .chain(maximal::failing_commands_with_proc());
        for (area, cmd, stage, errno) in failing {
            let prepared = cmd.build().unwrap();
            match start(&prepared, path) {
                Err(Error::Spawn {
                    stage: s, errno: e, ..
                }) => assert_eq!((s, e), (stage, errno), "{area} ({path:?} path)"),
                Err(other) => panic!("{area} ({path:?} path): {other:?}"),
                Ok(child) => panic!("{area} ({path:?} path): ran: {:?}", child.wait()),
            }
        }
    }

    // Timeout, abort, drop, the fork path and a paused spawn, each through
    // its own call.
    let e = helper("sleep=30")
        .timeout(Duration::from_millis(20))
        .status()
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }));
    helper("sleep=30").spawn().unwrap().abort().unwrap();
    drop(helper("sleep=30").spawn().unwrap());
    assert!(helper("exit=0")
        .stderr(Stdio::inherit())
        .status()
        .unwrap()
        .success());
    // SAFETY: the hook makes no call at all.
    let hooked = unsafe { helper("exit=0").pre_exec(|| Ok(())) };
    assert!(hooked.status().unwrap().success());
    let paused = helper("exit=0").spawn_paused().unwrap();
    assert!(paused.resume().unwrap().wait().unwrap().success());
    drop(helper("sleep=30").spawn_paused().unwrap());
}

#[test]
fn root_only_areas_run_without_allocating() {
    if !common::root_or_skip(
        "root_only_areas_run_without_allocating",
        "uid, gid, groups and capabilities",
    ) {
        return;
    }
    let areas: Vec<&str> = maximal::root_maximal_commands()
        .iter()
        .map(|m| m.area)
        .collect();
    assert!(
        areas.contains(&"cgroup") || common::cgroup::cgroup2_mount().is_none(),
        "no maximal command for the cgroup area"
    );
    for path in PATHS {
        for m in maximal::root_maximal_commands() {
            run_entry(m, path);
        }
    }
}

#[test]
fn daemons_run_without_allocating() {
    // A daemon with a pidfile: both processes of the double clone obey the
    // contract, and so does a forked intermediate (a hook makes the fork).
    // This process adopts the daemon so it can reap it.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    let dir = common::Scratch::new("contract-daemon");
    for forked in [false, true] {
        let pidfile = dir.join(format!("daemon-{forked}.pid"));
        let mut cmd = maximal::maximal_daemon(&pidfile);
        if forked {
            // SAFETY: the hook makes no call at all.
            cmd = unsafe { cmd.pre_exec(|| Ok(())) };
        }
        let d = cmd
            .run()
            .unwrap_or_else(|e| panic!("forked: {forked}: {e}"));
        let text = std::fs::read_to_string(&pidfile).unwrap();
        assert_eq!(text.trim(), d.daemon.to_string());
        let pid = rustix::process::Pid::from_raw(d.daemon).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
        let (_, status) =
            rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())
                .unwrap()
                .unwrap();
        assert_eq!(
            status.terminating_signal(),
            Some(libc::SIGKILL),
            "forked: {forked}"
        );
    }
}

#[test]
fn buffered_mode_runs_without_allocating() {
    // Input, a send buffer and both captures: the child's fds come from
    // the spawn-time slots.
    let out = helper("cat-fd=3,echo,err=e")
        .input("in")
        .send_buffer(3, "fd3 ")
        .capture_stdout()
        .capture_stderr()
        .run()
        .unwrap();
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice()),
        (&b"fd3 in"[..], &b"e"[..])
    );
    let out = helper("out=o,err=e").capture_interleaved().run().unwrap();
    assert_eq!(out.stdout, b"oe");
}
