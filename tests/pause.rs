//! Paused spawns (`spawn_paused`, `Paused::resume`): the child waits before
//! exec until resumed, can be acted on meanwhile, is killed and reaped when
//! dropped, and reports set-up and exec failures.

mod common;

use std::path::PathBuf;

use common::{helper, zombie_children, HELPER};
use safespawn::{BuildErrorKind, Command, Errno, Error, Stage};

fn exe_of(pid: i32) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/exe")).unwrap()
}

fn cmdline_of(pid: i32) -> Vec<u8> {
    std::fs::read(format!("/proc/{pid}/cmdline")).unwrap()
}

#[test]
fn a_paused_child_has_not_exec_d_until_resume() {
    let paused = helper("sleep=5").arg("marker").spawn_paused().unwrap();
    let pid = paused.pid();
    // Still a copy of this test process.
    assert_eq!(exe_of(pid), std::fs::read_link("/proc/self/exe").unwrap());
    assert_eq!(
        cmdline_of(pid),
        std::fs::read("/proc/self/cmdline").unwrap()
    );
    let running = paused.resume().unwrap();
    assert_eq!(running.pid(), pid);
    // resume returns once the exec happened.
    assert_eq!(exe_of(pid), std::fs::canonicalize(HELPER).unwrap());
    assert!(cmdline_of(pid).ends_with(b"marker\0"));
    let finished = running.abort().unwrap();
    assert_eq!(finished.signal(), Some(libc::SIGTERM));
}

#[test]
fn dropping_a_paused_child_kills_and_reaps_it() {
    let paused = helper("report").spawn_paused().unwrap();
    let pid = paused.pid();
    assert!(std::fs::metadata(format!("/proc/{pid}")).is_ok());
    drop(paused);
    assert!(
        std::fs::metadata(format!("/proc/{pid}")).is_err(),
        "pid {pid} still exists"
    );
    assert!(!zombie_children().contains(&pid));
}

#[test]
fn resume_reports_the_exec_error() {
    let paused = Command::new("/etc/passwd").spawn_paused().unwrap();
    match paused.resume() {
        Err(Error::Spawn { stage, errno, .. }) => {
            assert_eq!((stage, errno), (Stage::Exec, Errno::ACCESS))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_setup_failure_before_the_pause_is_reported_by_spawn_paused() {
    match helper("report")
        .rlimit(safespawn::Resource::Nofile, 1, 0)
        .spawn_paused()
    {
        Err(Error::Build { kind, .. }) => assert_eq!(kind, BuildErrorKind::Invalid),
        other => panic!("soft above hard: {other:?}"),
    }
    match helper("report")
        .current_dir("/nonexistent-safespawn-dir")
        .spawn_paused()
    {
        Err(Error::Spawn { stage, errno, .. }) => {
            assert_eq!((stage, errno), (Stage::Chdir, Errno::NOENT))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_paused_child_can_be_moved_before_it_runs() {
    // What the pause is for: act on the pid before the program runs. Here,
    // lower its RLIMIT_NOFILE from outside with prlimit.
    let paused = helper("report")
        .stdout(safespawn::Stdio::piped())
        .spawn_paused()
        .unwrap();
    let pid = rustix::process::Pid::from_raw(paused.pid()).unwrap();
    rustix::process::prlimit(
        Some(pid),
        safespawn::Resource::Nofile,
        rustix::process::Rlimit {
            current: Some(99),
            maximum: Some(99),
        },
    )
    .unwrap();
    let mut running = paused.resume().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(
        &mut running.take_stdout().unwrap_or_else(|| panic!("no pipe")),
        &mut out,
    )
    .unwrap();
    running.wait().unwrap();
    let r = common::Report::parse(&out);
    assert_eq!(
        r.rlimits.get("Max_open_files"),
        Some(&("99".into(), "99".into()))
    );
}
