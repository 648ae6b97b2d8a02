//! Daemon mode: pidfile, lock, session, working directory, fds, failures.
//!
//! This test binary makes itself a child subreaper, so the daemons (whose
//! intermediate parent exits) are re-parented to it: each test kills and
//! reaps its daemons, and a daemon nobody reaped would show up as a zombie
//! of this process. The tests run one at a time (a lock) so such a zombie
//! check sees only its own test's processes.

mod common;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, Once};

use common::{helper, own_session, stat_fields, zombie_children, Report};
use rustix::process::{Pid, Signal, WaitOptions};
use safespawn::{Command, Daemonized, Errno, Error, Stage, Stdio};

static SERIAL: Mutex<()> = Mutex::new(());
static SUBREAPER: Once = Once::new();

fn setup() -> MutexGuard<'static, ()> {
    SUBREAPER.call_once(|| {
        rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    });
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn temp_dir(name: &str) -> common::Scratch {
    common::Scratch::new(name)
}

fn pid(raw: i32) -> Pid {
    Pid::from_raw(raw).unwrap()
}

/// Kills a daemon and reaps it (it is ours through the subreaper).
fn stop(d: &Daemonized) {
    let _ = rustix::process::kill_process(pid(d.daemon), Signal::KILL);
    let _ = rustix::process::waitpid(Some(pid(d.daemon)), WaitOptions::empty());
}

/// Waits for a daemon that exits by itself; returns its exit code.
fn reap(d: &Daemonized) -> Option<i32> {
    let (_, status) = rustix::process::waitpid(Some(pid(d.daemon)), WaitOptions::empty())
        .unwrap()
        .unwrap();
    status.exit_status()
}

/// Who holds a conflicting lock on `path` (`F_GETLK`), if anyone.
fn lock_holder(path: &PathBuf) -> Option<i32> {
    let file = File::options().read(true).write(true).open(path).unwrap();
    // SAFETY: a zeroed flock is valid; fcntl(F_GETLK) only fills it in.
    let mut lk: libc::flock = unsafe { std::mem::zeroed() };
    lk.l_type = libc::F_WRLCK as _;
    lk.l_whence = libc::SEEK_SET as _;
    // SAFETY: the fd is open and `lk` is a valid flock.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut lk) };
    assert_eq!(rc, 0, "F_GETLK: {}", std::io::Error::last_os_error());
    (lk.l_type != libc::F_UNLCK as _).then_some(lk.l_pid)
}

fn is_zombie_child(p: i32) -> bool {
    zombie_children().contains(&p)
}

#[test]
fn pidfile_holds_the_daemon_pid_and_is_locked_while_it_lives() {
    let _serial = setup();
    let dir = temp_dir("lock");
    let pidfile = dir.join("d.pid");
    let d = helper("sleep=30")
        .daemonize()
        .pidfile(&pidfile)
        .run()
        .unwrap();
    // Written before run returned.
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        format!("{}\n", d.daemon)
    );
    assert_ne!(d.daemon, d.intermediate);
    // Locked by the daemon itself.
    assert_eq!(lock_holder(&pidfile), Some(d.daemon));
    // The intermediate is gone and reaped.
    assert!(!is_zombie_child(d.intermediate), "zombie intermediate");
    assert!(std::fs::metadata(format!("/proc/{}", d.intermediate)).is_err());

    // A second daemon on the same pidfile is refused, and leaves it alone.
    match helper("sleep=30").daemonize().pidfile(&pidfile).run() {
        Err(Error::Spawn { stage, errno, .. }) => {
            assert_eq!(stage, Stage::Pidfile);
            assert!(errno == Errno::AGAIN || errno == Errno::ACCESS, "{errno}");
        }
        other => {
            if let Ok(second) = &other {
                stop(second);
            }
            stop(&d);
            panic!("second daemon: {other:?}");
        }
    }
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        format!("{}\n", d.daemon)
    );
    assert!(zombie_children().is_empty(), "{:?}", zombie_children());

    // The lock ends with the daemon; then the pidfile can be taken again.
    stop(&d);
    assert_eq!(lock_holder(&pidfile), None);
    let again = helper("sleep=30")
        .daemonize()
        .pidfile(&pidfile)
        .run()
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        format!("{}\n", again.daemon)
    );
    stop(&again);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn daemon_runs_in_root_in_its_own_session_with_only_stdio_and_the_pidfile() {
    let _serial = setup();
    let dir = temp_dir("session");
    let pidfile = dir.join("d.pid");
    let d = helper("sleep=30")
        .daemonize()
        .pidfile(&pidfile)
        .run()
        .unwrap();
    assert!(
        common::wait_until_asleep(d.daemon),
        "the daemon never slept"
    );
    let cwd = std::fs::read_link(format!("/proc/{}/cwd", d.daemon));
    let mut fds: Vec<(i32, PathBuf)> = std::fs::read_dir(format!("/proc/{}/fd", d.daemon))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let n = e.file_name().to_string_lossy().parse().unwrap();
            (n, std::fs::read_link(e.path()).unwrap())
        })
        .collect();
    fds.sort();
    let f = stat_fields(d.daemon);
    let (ppid, pgrp, sid): (i32, i32, i32) = (
        f[1].parse().unwrap(),
        f[2].parse().unwrap(),
        f[3].parse().unwrap(),
    );
    let ours: i32 = own_session().parse().unwrap();
    stop(&d);

    assert_eq!(cwd.unwrap(), PathBuf::from("/"));
    let numbers: Vec<i32> = fds.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers.len(), 4, "{fds:?}");
    assert_eq!(&numbers[..3], &[0, 1, 2], "{fds:?}");
    for (_, target) in &fds[..3] {
        assert_eq!(target, &PathBuf::from("/dev/null"));
    }
    assert_eq!(fds[3].1, pidfile, "the fourth fd is the locked pidfile");
    // The intermediate called setsid: it leads the session and the group.
    assert_eq!(sid, d.intermediate);
    assert_eq!(pgrp, d.intermediate);
    assert_ne!(sid, ours);
    assert_ne!(pgrp, ppid);
    assert_ne!(ppid, d.intermediate, "the intermediate has exited");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn daemon_without_pidfile_has_only_stdio() {
    let _serial = setup();
    let d = helper("sleep=30").daemonize().run().unwrap();
    assert!(
        common::wait_until_asleep(d.daemon),
        "the daemon never slept"
    );
    let fds = std::fs::read_dir(format!("/proc/{}/fd", d.daemon))
        .unwrap()
        .count();
    let cwd = std::fs::read_link(format!("/proc/{}/cwd", d.daemon)).unwrap();
    stop(&d);
    assert_eq!(fds, 3);
    assert_eq!(cwd, PathBuf::from("/"));
}

#[test]
fn exec_failure_of_the_daemon_is_reported_and_nothing_is_left() {
    let _serial = setup();
    let dir = temp_dir("exec");
    let not_executable = dir.join("script");
    std::fs::write(&not_executable, "#!/bin/sh\n").unwrap();
    let pidfile = dir.join("d.pid");
    match Command::new(&not_executable)
        .daemonize()
        .pidfile(&pidfile)
        .run()
    {
        Err(Error::Spawn { stage, errno, .. }) => {
            assert_eq!((stage, errno), (Stage::Exec, Errno::ACCESS))
        }
        other => panic!("{other:?}"),
    }
    match Command::new(dir.join("missing")).daemonize().run() {
        Err(Error::Spawn { stage, errno, .. }) => {
            assert_eq!((stage, errno), (Stage::Exec, Errno::NOENT))
        }
        other => panic!("{other:?}"),
    }
    // Neither the intermediates nor the failed daemons are left as zombies
    // (a failed daemon is reaped by its intermediate; had it not been, it
    // would have been re-parented here).
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert!(zombie_children().is_empty(), "{:?}", zombie_children());
    // The failed daemon's lock died with it.
    assert_eq!(lock_holder(&pidfile), None);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A hook makes the intermediate a fork; the daemon still gets everything,
/// and the hook runs in the daemon (its umask is the daemon's).
#[test]
fn daemon_with_a_hook_takes_the_fork_path() {
    let _serial = setup();
    let dir = temp_dir("hook");
    let out = dir.join("report");
    let pidfile = dir.join("d.pid");
    // SAFETY: the hook makes one raw system call.
    let cmd = unsafe {
        helper("report")
            .stdout(File::create(&out).unwrap())
            .pre_exec(|| {
                rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
                Ok(())
            })
    };
    let d = cmd.daemonize().pidfile(&pidfile).run().unwrap();
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        format!("{}\n", d.daemon)
    );
    assert_eq!(reap(&d), Some(0));
    let r = Report::parse(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(r.field("pid"), d.daemon.to_string());
    assert_eq!(r.field("umask"), "0077");
    assert_eq!(
        r.field("sigblk"),
        "0000000000000000",
        "the daemon's mask is emptied"
    );
    assert_eq!(r.field("cwd"), "/");
    assert_eq!(r.field("sid"), d.intermediate.to_string());
    assert_eq!(r.fd_numbers().len(), 4, "{:?}", r.fds);
    assert!(zombie_children().is_empty(), "{:?}", zombie_children());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn daemon_privileges_apply_to_the_daemon() {
    let _serial = setup();
    if !common::is_root() {
        eprintln!(
            "skipping daemon_privileges_apply_to_the_daemon: it needs root, and this is not root"
        );
        return;
    }
    let dir = temp_dir("privs");
    let out = dir.join("report");
    let d = common::helper_for_any_user("report")
        .stdout(File::create(&out).unwrap())
        .uid(65534)
        .gid(65534)
        .no_new_privs()
        .umask(0o002)
        .daemonize()
        .run()
        .unwrap();
    assert_eq!(reap(&d), Some(0));
    let r = Report::parse(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(r.field("uid"), "65534 65534 65534 65534");
    assert_eq!(r.field("groups"), "");
    assert_eq!(r.field("nonewprivs"), "1");
    assert_eq!(r.field("umask"), "0002");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn daemon_misconfigurations_are_build_errors() {
    let item = |e: Error| match e {
        Error::Build { item, .. } => item,
        other => panic!("{other:?}"),
    };
    let e = helper("report")
        .current_dir("/tmp")
        .daemonize()
        .build()
        .unwrap_err();
    assert!(item(e).starts_with("working directory"));
    let e = helper("report")
        .stdout(Stdio::piped())
        .daemonize()
        .build()
        .unwrap_err();
    assert_eq!(item(e), "stdout");
    let e = helper("report")
        .parent_death_signal(Signal::KILL)
        .daemonize()
        .build()
        .unwrap_err();
    assert_eq!(item(e), "parent_death_signal");
    let e = helper("report")
        .daemonize()
        .pidfile("")
        .build()
        .unwrap_err();
    assert!(item(e).starts_with("pidfile"));
}

#[test]
fn a_killed_intermediate_does_not_leave_the_daemon_on_our_stack() {
    let _serial = setup();
    let dir = temp_dir("killed-intermediate");
    common::kill_the_intermediate_while_the_daemon_blocks(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A daemon is not waited for: a timeout on it would be silently ignored,
/// so `build()` refuses the combination.
#[test]
fn a_timeout_on_a_daemon_is_a_build_conflict() {
    let err = helper("sleep=30")
        .timeout(std::time::Duration::from_secs(1))
        .daemonize()
        .build()
        .unwrap_err();
    assert_eq!(err.build_kind(), Some(safespawn::BuildErrorKind::Conflict));
    assert!(err.to_string().contains("timeout"), "{err}");
}
