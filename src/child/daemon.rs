//! Daemon mode: the intermediate process and the daemon's own first steps.
//!
//! The child of the spawning call becomes the *intermediate*: it calls
//! `setsid`, starts the daemon with a second `clone(CLONE_VM | CLONE_VFORK)`
//! on a second stack region of the spawning frame, sends the daemon's pid to
//! the parent and exits. The daemon changes to "/", acquires the pidfile
//! (create, lock, truncate, write its pid, keep the fd across exec) and goes
//! on with the rest of the step list like any child.
//!
//! A paused daemon (`Prepared<Daemon>::spawn_paused`) is started with a
//! fork-style `clone` instead ([`split_paused`]): it waits for the parent
//! before exec, which a daemon sharing the intermediate's memory could not.

use std::convert::Infallible;
use std::ffi::{c_int, c_void, CStr};
use std::os::fd::IntoRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::io::{Errno, FdFlags};

use super::report::{self, At, Failure, Msg};
use super::Carried;
use crate::error::Stage;
use crate::frozen::Frozen;
use crate::sys;

/// Daemon mode's data.
#[derive(Debug, Default)]
pub(crate) struct DaemonPlan {
    /// Absolute: the daemon opens it after changing to "/".
    pub pidfile: Option<Frozen<CStr>>,
}

/// Daemon mode's two places in the spawning frame.
#[derive(Clone, Copy)]
pub(crate) struct DaemonSlots {
    /// The 16-byte aligned top of the second stack region the intermediate
    /// starts the daemon on.
    pub stack: *mut u8,
    /// Where the kernel stores the daemon's pid (`CLONE_PARENT_SETTID`)
    /// before the daemon runs: if the intermediate is killed while the daemon
    /// still runs on the spawning frame's memory, the parent finds the
    /// daemon there and stops it before that memory is reused.
    pub pid: *mut c_int,
}

impl DaemonSlots {
    /// Not a daemon.
    pub(crate) const NONE: DaemonSlots = DaemonSlots {
        stack: std::ptr::null_mut(),
        pid: std::ptr::null_mut(),
    };
}

/// The daemon's steps, as the step list gives them to [`split`].
pub(crate) type DaemonMain<'a> = &'a dyn Fn(&mut Carried) -> Result<Infallible, Failure>;

/// What the intermediate hands the daemon it starts.
struct DaemonCtx<'a> {
    carried: Carried,
    main: DaemonMain<'a>,
    /// Set by the daemon just before it exits on a failure, so that the
    /// intermediate knows to reap it. The only memory outside its own stack
    /// the daemon writes: it lives in the intermediate's frame, and the
    /// intermediate is suspended (`CLONE_VFORK`) until the daemon is done.
    failed: AtomicBool,
}

/// In the intermediate process: a new session, then the daemon (running
/// `daemon_main`) on the second stack, then the daemon's pid to the parent
/// and `_exit(0)`. Returns only on failure.
///
/// The daemon is started with `clone(CLONE_VM | CLONE_VFORK)` like the
/// intermediate itself, so no page table is copied at either level.
pub(crate) fn split(
    slots: DaemonSlots,
    carried: Carried,
    daemon_main: DaemonMain<'_>,
) -> Result<Infallible, Failure> {
    rustix::process::setsid().at(Stage::Daemon)?;
    if slots.stack.is_null() || slots.pid.is_null() {
        return Err(Errno::INVAL).at(Stage::Daemon);
    }
    // The daemon runs on memory of the spawning frame, which is released
    // when this process ends: a signal that killed it early would let the
    // parent return while the daemon still runs there. So everything that
    // can be blocked is, until this process exits (the daemon restores the
    // mask first thing). SIGKILL cannot be blocked: for that case the kernel
    // records the daemon's pid in the spawning frame (`slots.pid`), where the
    // parent finds it and stops the daemon before returning.
    sys::signal::set_signal_mask(&sys::signal::full_sigset()).at(Stage::Signals)?;
    if carried.pause >= 0 {
        return split_paused(carried, daemon_main);
    }
    let dctx = DaemonCtx {
        carried,
        main: daemon_main,
        failed: AtomicBool::new(false),
    };
    // SAFETY: `slots.stack` is the top of a second child stack provided by
    // the spawning frame, used by nothing else (this process runs on the
    // first one); `slots.pid` is a writable int in that frame;
    // `daemon_entry` keeps the child contract and ends in execve or _exit;
    // every signal that can be is blocked, and no handler is installed
    // anyway (the signal step reset them all); `dctx` lives in this frame
    // until clone returns, which is after the daemon exec'd or exited.
    let pid = unsafe {
        sys::clone::clone_vfork_settid(
            daemon_entry,
            slots.stack,
            &dctx as *const DaemonCtx<'_> as *mut c_void,
            slots.pid,
        )
    }
    .at(Stage::Daemon)?;
    if dctx.failed.load(Ordering::SeqCst) {
        // The daemon reported its failure and is exiting: reap it here, or
        // it would become a zombie of whoever inherits it. It is this
        // process's unreaped child, so its pid cannot have been reused.
        let _ = rustix::io::retry_on_intr(|| {
            rustix::process::waitpid(
                rustix::process::Pid::from_raw(pid),
                rustix::process::WaitOptions::empty(),
            )
        });
    }
    let msg = report::encode(Msg::Daemon, Stage::Daemon, 0, pid);
    match report::send(carried.report, &msg) {
        Ok(()) => sys::clone::exit_now(0),
        Err(_) => sys::clone::exit_now(125),
    }
}

/// The split of a paused daemon (`Prepared<Daemon>::spawn_paused`): the
/// daemon will stop before exec and wait for the parent, so it cannot run
/// on this process's memory with this process suspended until it execs, as
/// a `CLONE_VFORK` daemon does. It gets memory of its own instead: a
/// fork-style `clone` (no `CLONE_VM`; this process is itself a forked copy,
/// as every paused spawn is). This process then reports the daemon's pid
/// and exits at once; the daemon reports its own failures, and, once this
/// process is gone, whoever inherits it reaps it.
fn split_paused(mut carried: Carried, daemon_main: DaemonMain<'_>) -> Result<Infallible, Failure> {
    // SAFETY: the new process runs only the daemon's steps, which keep the
    // child contract (raw system calls on the frozen plan) until execve or
    // _exit; it is a copy of this single-threaded process, on a copy of
    // this stack. Every signal that can be is blocked (the daemon restores
    // the mask first thing).
    let pid = unsafe { sys::clone::fork_raw() }.at(Stage::Daemon)?;
    if pid == 0 {
        let failure = match daemon_main(&mut carried) {
            Err(failure) => failure,
            Ok(never) => match never {},
        };
        report::fail(carried.report, std::ptr::null_mut(), failure)
    }
    let msg = report::encode(Msg::Daemon, Stage::Daemon, 0, pid);
    match report::send(carried.report, &msg) {
        Ok(()) => sys::clone::exit_now(0),
        Err(_) => sys::clone::exit_now(125),
    }
}

/// The daemon's `clone` entry point: runs the daemon's steps.
extern "C" fn daemon_entry(arg: *mut c_void) -> c_int {
    // SAFETY: the intermediate passes a pointer to a live DaemonCtx and is
    // suspended (CLONE_VFORK) until this process execs or exits.
    let d = unsafe { &*(arg as *const DaemonCtx<'_>) };
    let mut carried = d.carried;
    let failure = match (d.main)(&mut carried) {
        Err(failure) => failure,
        Ok(never) => match never {},
    };
    d.failed.store(true, Ordering::SeqCst);
    report::fail(carried.report, std::ptr::null_mut(), failure)
}

/// The daemon's own steps: "/" (a daemon must not keep a mount point busy),
/// then the pidfile.
pub(crate) fn enter(plan: &DaemonPlan) -> Result<(), Failure> {
    rustix::process::chdir(c"/").at(Stage::Chdir)?;
    if let Some(path) = plan.pidfile.as_deref() {
        acquire_pidfile(path).at(Stage::Pidfile)?;
    }
    Ok(())
}

/// How often a pidfile replaced between open and lock is tried again.
const PIDFILE_ATTEMPTS: u32 = 8;

/// Creates `path`, takes a POSIX write lock on the whole file (`F_SETLK`,
/// `F_WRLCK`, start 0, length 0: rustix's `fcntl_lock`), truncates it,
/// writes this process's pid and a newline, and clears close-on-exec on the
/// fd so the lock lives exactly as long as this process, across exec.
///
/// A POSIX lock belongs to the process (here the daemon, which does not
/// share its fd table) and is released when the process ends or closes any
/// fd of that file. If another live process holds the lock, `F_SETLK`
/// fails at once with `EAGAIN` (or `EACCES`). A file unlinked or replaced
/// between open and lock (a previous daemon cleaning up) is detected by
/// comparing device and inode with the path's, and opened again.
fn acquire_pidfile(path: &CStr) -> Result<(), Errno> {
    use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags, CWD};
    let mut attempts = 0u32;
    let fd = loop {
        let fd = rustix::fs::openat(
            CWD,
            path,
            OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::from_raw_mode(0o644),
        )?;
        rustix::fs::fcntl_lock(&fd, FlockOperation::NonBlockingLockExclusive)?;
        let held = rustix::fs::fstat(&fd)?;
        match rustix::fs::statat(CWD, path, AtFlags::empty()) {
            Ok(now) if now.st_dev == held.st_dev && now.st_ino == held.st_ino => break fd,
            Ok(_) | Err(Errno::NOENT) => {}
            Err(e) => return Err(e),
        }
        attempts = attempts.saturating_add(1);
        if attempts >= PIDFILE_ATTEMPTS {
            return Err(Errno::AGAIN);
        }
        // `fd` is closed here, which drops the lock on the stale file.
    };
    rustix::fs::ftruncate(&fd, 0)?;
    let mut buf = [0u8; PID_TEXT_LEN];
    let text = pid_text(rustix::process::getpid().as_raw_nonzero().get(), &mut buf);
    let mut rest = text;
    while !rest.is_empty() {
        let n = rustix::io::retry_on_intr(|| rustix::io::write(&fd, rest))?;
        if n == 0 {
            return Err(Errno::IO);
        }
        rest = rest.get(n..).unwrap_or(&[]);
    }
    rustix::io::fcntl_setfd(&fd, FdFlags::empty())?;
    // Kept open on purpose: closing it would release the lock.
    let _ = fd.into_raw_fd();
    Ok(())
}

/// Enough for any `i32` and a newline.
const PID_TEXT_LEN: usize = 12;

/// Formats `pid` and a newline into `buf` without allocating; returns the
/// used tail of `buf`. Child-safe.
fn pid_text(pid: i32, buf: &mut [u8; PID_TEXT_LEN]) -> &[u8] {
    let mut n = pid.unsigned_abs();
    let mut start = PID_TEXT_LEN;
    let mut push = |b: u8| {
        if let Some(i) = start.checked_sub(1) {
            if let Some(slot) = buf.get_mut(i) {
                *slot = b;
                start = i;
            }
        }
    };
    push(b'\n');
    loop {
        // A decimal digit: below 10, so the cast keeps it and `b'0' |` adds it.
        push(b'0' | (n % 10) as u8);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if pid < 0 {
        push(b'-');
    }
    buf.get(start..).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_text_formats_without_allocating() {
        let mut buf = [0u8; PID_TEXT_LEN];
        assert_eq!(pid_text(1, &mut buf), b"1\n");
        assert_eq!(pid_text(4_194_304, &mut buf), b"4194304\n");
        assert_eq!(pid_text(i32::MAX, &mut buf), b"2147483647\n");
        assert_eq!(pid_text(i32::MIN, &mut buf), b"-2147483648\n");
        assert_eq!(pid_text(0, &mut buf), b"0\n");
    }
}
