//! Daemon + handshake (`Prepared<Daemon>::spawn_paused`): the daemon stops
//! before exec with its pidfile written and locked, `resume` lets it exec
//! (or reports why it could not), and dropping a `PausedDaemon` kills it.
//!
//! This binary makes itself a child subreaper, so the daemons are
//! re-parented to it and a dead one stays visible as a zombie until the
//! test reaps it. The tests run one at a time (a lock).

mod common;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, Once};

use common::{helper, zombie_children};
use rustix::process::{Pid, Signal, WaitOptions};
use safespawn::{Errno, Error, Stage};

static SERIAL: Mutex<()> = Mutex::new(());
static SUBREAPER: Once = Once::new();

fn setup() -> MutexGuard<'static, ()> {
    SUBREAPER.call_once(|| {
        rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    });
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn pid(raw: i32) -> Pid {
    Pid::from_raw(raw).unwrap()
}

/// Tries to take a write lock on `path` with `F_SETLK`: `Err(errno)` when
/// another process holds one. The lock is released when the file closes.
fn try_lock(path: &Path) -> Result<(), i32> {
    let file = File::options().read(true).write(true).open(path).unwrap();
    // SAFETY: a zeroed flock is valid; fcntl only reads it.
    let mut lk: libc::flock = unsafe { std::mem::zeroed() };
    lk.l_type = libc::F_WRLCK as _;
    lk.l_whence = libc::SEEK_SET as _;
    // SAFETY: the fd is open and `lk` is a valid flock.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &lk) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap())
    }
}

/// The `State:` line's letter of `/proc/PID/status`.
fn state(p: i32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("State:"))
        .unwrap()
        .trim()
        .chars()
        .next()
        .unwrap()
        .to_string()
}

/// Whether `p` has exited: reaps it if it is a zombie of ours (the
/// subreaper), without waiting.
/// Whether this system lets a process open a pidfd (Linux 5.3).
fn have_pidfd_open() -> bool {
    // SAFETY: pidfd_open takes two integers; an fd it returns is closed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0) };
    if fd >= 0 {
        // SAFETY: the fd was just returned to us and is closed once.
        unsafe { libc::close(fd as i32) };
    }
    fd >= 0
}

fn reaped_now(p: i32) -> bool {
    matches!(
        rustix::process::waitpid(Some(pid(p)), WaitOptions::NOHANG),
        Ok(Some(_))
    )
}

fn stop(p: i32) {
    let _ = rustix::process::kill_process(pid(p), Signal::KILL);
    let _ = rustix::process::waitpid(Some(pid(p)), WaitOptions::empty());
}

#[test]
fn the_daemon_waits_before_exec_with_its_pidfile_locked() {
    let _serial = setup();
    let dir = common::Scratch::new("handshake-paused");
    let pidfile = dir.join("d.pid");
    let p = helper("sleep=30")
        .daemonize()
        .pidfile(&pidfile)
        .build()
        .unwrap();
    let paused = p.spawn_paused().unwrap();
    let pids = paused.pids();
    assert!(pids.daemon > 0 && pids.daemon != pids.intermediate);
    // Written and locked by the daemon before it execs.
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        format!("{}\n", pids.daemon)
    );
    let locked = try_lock(&pidfile);
    assert!(
        matches!(locked, Err(e) if e == libc::EAGAIN || e == libc::EACCES),
        "{locked:?}"
    );
    // Blocked reading the resume pipe, still a copy of this test binary:
    // not the helper yet.
    // (It reports the pause, then blocks: asleep soon after.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while state(pids.daemon) != "S" && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert_eq!(state(pids.daemon), "S");
    let wchan = std::fs::read_to_string(format!("/proc/{}/wchan", pids.daemon)).unwrap();
    assert!(wchan.contains("pipe_read"), "{wchan}");
    let exe = std::fs::read_link(format!("/proc/{}/exe", pids.daemon)).unwrap();
    assert_eq!(exe, std::env::current_exe().unwrap());
    assert_ne!(exe, Path::new(common::HELPER));
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pids.daemon)).unwrap();
    assert!(!cmdline.windows(8).any(|w| w == b"::sleep="), "{cmdline:?}");
    // The intermediate has been reaped: no zombie of it.
    assert!(!zombie_children().contains(&pids.intermediate));
    assert!(rustix::process::test_kill_process(pid(pids.intermediate)).is_err());
    // Resumed: the daemon runs the helper, with the pid of the pidfile.
    let d = paused.resume().unwrap();
    assert_eq!(d, pids);
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", d.daemon)).unwrap();
    assert!(cmdline.windows(8).any(|w| w == b"::sleep="), "{cmdline:?}");
    assert_eq!(
        std::fs::read_link(format!("/proc/{}/exe", d.daemon)).unwrap(),
        Path::new(common::HELPER).canonicalize().unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        format!("{}\n", d.daemon)
    );
    // Still locked, by the exec'd daemon.
    assert!(try_lock(&pidfile).is_err());
    stop(d.daemon);
    assert_eq!(try_lock(&pidfile), Ok(()));
}

#[test]
fn an_exec_failure_after_resume_is_reported() {
    let _serial = setup();
    let dir = common::Scratch::new("handshake-exec");
    let pidfile = dir.join("d.pid");
    // A file that exists but cannot be executed: build() accepts an
    // absolute path as it is, and the exec fails with EACCES.
    let program = dir.join("not-a-program");
    std::fs::write(&program, "data").unwrap();
    let p = safespawn::Command::new(&program)
        .daemonize()
        .pidfile(&pidfile)
        .build()
        .unwrap();
    let paused = p.spawn_paused().unwrap();
    let daemon = paused.pids().daemon;
    assert!(try_lock(&pidfile).is_err());
    match paused.resume() {
        Err(Error::Spawn { stage, errno, .. }) => {
            assert_eq!(stage, Stage::Exec);
            assert_eq!(errno, Errno::ACCESS);
        }
        other => panic!("unexpected {other:?}"),
    }
    // Gone when resume returns: a zombie of this subreaper, lock released.
    // Without pidfd_open (before 5.3, or a profile refusing it) resume
    // cannot wait for that exit: the daemon is gone a moment later.
    if have_pidfd_open() {
        assert!(reaped_now(daemon));
    } else {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !reaped_now(daemon) {
            assert!(
                std::time::Instant::now() < deadline,
                "the daemon never exited"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    assert_eq!(try_lock(&pidfile), Ok(()));
}

#[test]
fn dropping_a_paused_daemon_kills_it_and_frees_the_lock() {
    let _serial = setup();
    let dir = common::Scratch::new("handshake-drop");
    let pidfile = dir.join("d.pid");
    let marker = dir.join("ran");
    let p = safespawn::Command::new("sh")
        .args(["-c", "touch \"$0\""])
        .arg(&marker)
        .daemonize()
        .pidfile(&pidfile)
        .build()
        .unwrap();
    let paused = p.spawn_paused().unwrap();
    let pids = paused.pids();
    assert!(try_lock(&pidfile).is_err());
    drop(paused);
    // Exited by the time drop returns (a zombie of this subreaper, reaped
    // here without waiting); the lock went with it.
    assert!(reaped_now(pids.daemon), "the daemon still runs");
    assert!(rustix::process::test_kill_process(pid(pids.daemon)).is_err());
    assert_eq!(try_lock(&pidfile), Ok(()));
    // The program never ran; neither process is left as a zombie.
    assert!(!marker.exists());
    let zombies = zombie_children();
    assert!(!zombies.contains(&pids.daemon) && !zombies.contains(&pids.intermediate));
    // The pidfile can be taken again by a new daemon.
    let again = p.spawn_paused().unwrap();
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        format!("{}\n", again.pids().daemon)
    );
    drop(again);
}

#[test]
fn a_failure_before_the_pause_is_reported_by_spawn_paused() {
    let _serial = setup();
    let dir = common::Scratch::new("handshake-held");
    let pidfile = dir.join("d.pid");
    let first = helper("sleep=30")
        .daemonize()
        .pidfile(&pidfile)
        .build()
        .unwrap()
        .spawn_paused()
        .unwrap();
    // A second daemon on the same pidfile fails at the pidfile step.
    match helper("sleep=30")
        .daemonize()
        .pidfile(&pidfile)
        .build()
        .unwrap()
        .spawn_paused()
    {
        Err(Error::Spawn { stage, errno, .. }) => {
            assert_eq!(stage, Stage::Pidfile);
            assert!(matches!(errno, Errno::AGAIN | Errno::ACCESS), "{errno:?}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let daemon = first.pids().daemon;
    drop(first);
    assert!(reaped_now(daemon));
    // Reap the failed second daemon too (re-parented here).
    while let Ok(Some(_)) = rustix::process::waitpid(None, WaitOptions::NOHANG) {}
}
