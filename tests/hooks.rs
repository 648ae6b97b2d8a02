//! `pre_exec` hooks and paused spawns.

mod common;

use std::path::PathBuf;

use common::{helper, report_of, zombie_children, HELPER};
use rustix::fs::Mode;
use safespawn::{Command, Errno, Error, Stage};

/// A hook whose effect depends on the hooks before it: it shifts the umask
/// left by one octal digit and adds `digit`.
fn shift_in(digit: u32) -> impl Fn() -> Result<(), Errno> + Send + Sync + 'static {
    move || {
        let old = rustix::process::umask(Mode::empty()).as_raw_mode();
        rustix::process::umask(Mode::from_raw_mode(((old << 3) | digit) & 0o777));
        Ok(())
    }
}

#[test]
fn hooks_run_in_order_after_the_privilege_steps() {
    // SAFETY: the hooks only make raw system calls.
    let cmd = unsafe {
        helper("report")
            .umask(0)
            .pre_exec(shift_in(1))
            .pre_exec(shift_in(2))
            .pre_exec(shift_in(3))
    };
    // umask(0) first (a privilege step), then 1, 2, 3 in order: 0123.
    // Any other order, or the umask step after the hooks, gives another mask.
    assert_eq!(report_of(cmd).field("umask"), "0123");
}

#[test]
fn a_failing_hook_reports_its_errno_and_stops_the_child() {
    let dir = std::env::temp_dir().join(format!("safespawn-hook-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let marker: &'static std::ffi::CStr = Box::leak(
        std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
            .unwrap()
            .into_boxed_c_str(),
    );
    // SAFETY: the hooks only make raw system calls.
    let cmd = unsafe {
        helper("report")
            .pre_exec(|| Err(Errno::DOM))
            // Never reached: it would create the directory.
            .pre_exec(move || rustix::fs::mkdir(marker, Mode::from_raw_mode(0o700)))
    };
    match cmd.status() {
        Err(Error::Spawn { stage, errno, .. }) => {
            assert_eq!((stage, errno), (Stage::Hook, Errno::DOM))
        }
        other => panic!("{other:?}"),
    }
    assert!(!dir.exists(), "a hook after the failing one ran");
}

#[test]
fn forbid_fork_with_a_hook_is_a_build_error() {
    // SAFETY: the hook does nothing.
    let cmd = unsafe { helper("report").forbid_fork().pre_exec(|| Ok(())) };
    match cmd.build() {
        Err(Error::Build { item, .. }) => assert_eq!(item, "pre_exec"),
        other => panic!("{other:?}"),
    }
}

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
        Err(Error::Build { .. }) => {}
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
