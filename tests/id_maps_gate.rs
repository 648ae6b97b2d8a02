//! The gate of `uid_map` / `gid_map` spawns: the child waits, right after
//! its signal reset, until the parent has written its maps, and never
//! execs without them. The parent is made slow to write
//! (`__compat::SLOW_ID_MAP_WRITER`: half a second before the writes), so a
//! child that did not wait would deterministically run ahead: into a
//! credential step that needs the maps, into the exec of a program that
//! leaves a mark, or on past a parent that died meanwhile.
//!
//! Alone in its binary: the flag is process-wide, and one test makes this
//! process a child subreaper to adopt the child of a parent it kills.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitOptions};
use safespawn::{Command, Direct, Errno, Error, Namespaces, Stage};

/// Set in the copy of this binary that plays the parent killed while it
/// writes the maps: the mark file its child must never create.
const INNER: &str = "SAFESPAWN_TEST_GATE_INNER";
const KILLED_PARENT: &str = "a_child_whose_parent_dies_at_the_gate_exits_without_exec";

fn slow_writer() {
    safespawn::__force_compat(safespawn::__compat::SLOW_ID_MAP_WRITER);
}

fn userns_or_skip(test: &str) -> bool {
    if !Path::new("/proc/self/ns").exists() {
        eprintln!("skipping {test}: no /proc here");
        return false;
    }
    if !common::can_unshare(Namespaces::USER) {
        eprintln!("skipping {test}: no user namespace for this user here");
        return false;
    }
    true
}

fn own_ids() -> (u32, u32) {
    (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    )
}

/// `sh -c ': > mark'` in a new user namespace with the caller's own ids
/// mapped to 0 (allowed to every user): a program whose exec shows.
fn marking(mark: &Path) -> Command<Direct> {
    let (uid, gid) = own_ids();
    Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(": > '{}'", mark.display()))
        .unshare(Namespaces::USER)
        .uid_map(0, uid, 1)
        .gid_map(0, gid, 1)
}

/// The credential step comes after the gate: `.uid(0)` / `.gid(0)` are ids
/// of the map, which a child running ahead of the writer would not have
/// (`EINVAL` at `Stage::Gid`).
#[test]
fn the_child_waits_for_its_maps_before_its_later_steps() {
    slow_writer();
    if !userns_or_skip("the_child_waits_for_its_maps_...") {
        return;
    }
    let (uid, gid) = own_ids();
    let started = Instant::now();
    let r = common::report_of(
        common::helper_for_any_user("report")
            .unshare(Namespaces::USER)
            .uid_map(0, uid, 1)
            .gid_map(0, gid, 1)
            .uid(0)
            .gid(0),
    );
    assert!(started.elapsed() >= safespawn::__compat::SLOW_ID_MAP_WRITER_DELAY);
    assert_eq!(r.field("uid"), "0 0 0 0");
    assert_eq!(r.field("gid"), "0 0 0 0");
}

/// A refused write: the child is killed at the gate; the program never
/// ran.
#[test]
fn a_refused_write_never_lets_the_program_run() {
    slow_writer();
    if !userns_or_skip("a_refused_write_never_lets_the_program_run") {
        return;
    }
    let dir = common::Scratch::new("gate-refused");
    let mark = dir.join("ran");
    std::thread::scope(|s| {
        s.spawn(|| {
            if common::is_root() {
                // This thread only: root without CAP_SETUID may map its own
                // uid and no other.
                use rustix::thread::CapabilitySet;
                let mut sets = rustix::thread::capabilities(None).unwrap();
                sets.effective.remove(CapabilitySet::SETUID);
                rustix::thread::set_capabilities(None, sets).unwrap();
            }
            let (uid, _) = own_ids();
            let foreign = if uid == 100000 { 100001 } else { 100000 };
            match marking(&mark).uid_map(1, foreign, 1).status() {
                Err(Error::Spawn { stage, errno, .. }) => {
                    assert_eq!((stage, errno), (Stage::IdMap, Errno::PERM))
                }
                other => panic!("a foreign range without CAP_SETUID: {other:?}"),
            }
        });
    });
    assert!(!mark.exists(), "the program ran though its map was refused");
    // The same command without the foreign range runs: the mark can appear.
    assert!(marking(&mark).status().unwrap().success());
    assert!(mark.exists());
}

/// Waits up to `within` for process `parent` to have a child; returns it.
fn first_child_of(parent: i32, within: Duration) -> Option<i32> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) {
            for task in tasks.flatten() {
                let list =
                    std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
                if let Some(pid) = list.split_whitespace().find_map(|p| p.parse().ok()) {
                    return Some(pid);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    None
}

/// The parent dies while it would write the maps: the child sees the gate
/// close without a release and exits (125) without exec. This process is
/// a child subreaper, so it adopts and reaps the orphan.
#[test]
fn a_child_whose_parent_dies_at_the_gate_exits_without_exec() {
    slow_writer();
    if let Some(mark) = std::env::var_os(INNER) {
        // The copy: spawn and be killed while the writer waits.
        let _ = marking(Path::new(&mark)).status();
        eprintln!("the inner parent was not killed in time");
        std::process::exit(3);
    }
    if !userns_or_skip(KILLED_PARENT) {
        return;
    }
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    let dir = common::Scratch::new("gate-parent-dies");
    let mark = dir.join("ran");
    let mut inner = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", KILLED_PARENT, "--nocapture", "--test-threads=1"])
        .env(INNER, &mark)
        .spawn()
        .unwrap();
    let orphan = first_child_of(inner.id() as i32, Duration::from_secs(10));
    inner.kill().unwrap();
    let inner_status = inner.wait().unwrap();
    let orphan = orphan.expect("the inner parent never started its child");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&inner_status),
        Some(libc::SIGKILL),
        "the inner parent ended before it was killed: {inner_status:?}"
    );
    // Adopted by this subreaper: reap it (it must end by itself).
    let pid = Pid::from_raw(orphan).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        match rustix::process::waitpid(Some(pid), WaitOptions::NOHANG).unwrap() {
            Some((_, status)) => break status,
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            None => {
                let _ = rustix::process::kill_process(pid, Signal::KILL);
                panic!("the orphan kept waiting at its gate");
            }
        }
    };
    assert_eq!(status.exit_status(), Some(125), "{status:?}");
    assert!(!mark.exists(), "the orphan exec'd without its maps");
}
