//! The parent side of spawning: pipes, the clone or fork, and the report.
//!
//! The default path is `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)` with the
//! child on a stack buffer in this frame: no page tables are copied (the cost
//! is flat in the parent's memory size) and nothing is allocated. Because the
//! parent is suspended until the child has exec'd or exited, the report pipe
//! is read once, non-blocking: whatever the child had to say is already
//! there (and the pipe is kept for the next spawn: `crate::report_pipe`).
//! The fork path (for `pre_exec` hooks and paused spawns) reads it
//! until end-of-file instead.

use std::ffi::{c_int, c_void};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::ExitStatus;

use rustix::io::Errno;
use rustix::pipe::PipeFlags;

use crate::child::{self, ChildCtx, DaemonSlots, MSG_DAEMON, MSG_ERROR, MSG_LEN, MSG_PAUSED};
use crate::error::{Error, Stage};
use crate::plan::Plan;
use crate::sys;

/// The child stack for the vfork-style path, in the spawning frame. The
/// child's steps are shallow: `tests::child_stack_use_is_small` measures the
/// deepest use (a few KiB) and fails if it ever reaches half of this.
pub(crate) const CHILD_STACK_SIZE: usize = 32 * 1024;
// clone3 takes the stack as base + size: both ends must be 16-byte aligned.
static_assertions::const_assert_eq!(CHILD_STACK_SIZE % 16, 0);

#[repr(C, align(16))]
pub(crate) struct ChildStack(MaybeUninit<[u8; CHILD_STACK_SIZE]>);

impl ChildStack {
    pub(crate) fn new() -> Self {
        ChildStack(MaybeUninit::uninit())
    }

    /// The 16-byte aligned start of the buffer.
    pub(crate) fn base(&mut self) -> *mut u8 {
        self.0.as_mut_ptr().cast::<u8>()
    }

    /// The 16-byte aligned end of the buffer (stacks grow down).
    pub(crate) fn top(&mut self) -> *mut u8 {
        self.0
            .as_mut_ptr()
            .cast::<u8>()
            .wrapping_add(CHILD_STACK_SIZE)
    }
}

/// A started child: its pid and pidfd.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub pid: i32,
    pub pidfd: OwnedFd,
}

/// A child stopped before exec by `spawn_paused`.
#[derive(Debug)]
pub(crate) struct PausedChild {
    pub child: Spawned,
    pub report: OwnedFd,
    pub resume: OwnedFd,
}

/// A new close-on-exec pipe whose ends are both above the standard streams.
pub(crate) fn pipe(flags: PipeFlags) -> Result<(OwnedFd, OwnedFd), Error> {
    let (r, w) = rustix::pipe::pipe_with(flags | PipeFlags::CLOEXEC)
        .map_err(|e| Error::io("creating a pipe", e))?;
    let r = crate::plan::above_stdio(r).map_err(|e| Error::io("moving a pipe fd", e))?;
    let w = crate::plan::above_stdio(w).map_err(|e| Error::io("moving a pipe fd", e))?;
    Ok((r, w))
}

/// Starts `plan` with the per-spawn fds `dynamic` and waits until it has
/// exec'd (or failed, which is returned as `Error::Spawn`).
pub(crate) fn spawn(plan: &Plan, dynamic: &[RawFd]) -> Result<Spawned, Error> {
    if plan.needs_fork() {
        let forked = fork_child(plan, dynamic, false, DaemonSlots::NONE)?;
        finish_fork(plan, forked.child, forked.report)
    } else {
        clone_child(plan, dynamic)
    }
}

/// Starts `plan` and stops it just before exec.
pub(crate) fn spawn_paused(plan: &Plan, dynamic: &[RawFd]) -> Result<PausedChild, Error> {
    let Forked {
        child,
        report,
        resume: Some(resume),
    } = fork_child(plan, dynamic, true, DaemonSlots::NONE)?
    else {
        return Err(Error::io("spawn_paused", Errno::INVAL));
    };
    // Wait for the child to reach the pause point (or fail before it).
    let mut msg = [0u8; MSG_LEN];
    match read_full(&report, &mut msg) {
        Ok(true) if child::decode(&msg).0 == MSG_PAUSED => Ok(PausedChild {
            child,
            report,
            resume,
        }),
        Ok(true) => Err(child_failed(plan, &child, &msg)),
        Ok(false) => {
            // It died without a word (killed by a signal, say).
            let _ = reap(&child.pidfd);
            Err(Error::io("waiting for the paused child", Errno::CHILD))
        }
        Err(e) => {
            kill_and_reap(&child);
            Err(Error::io("reading the child's report", e))
        }
    }
}

/// Lets a paused child exec; returns once it has (or has failed).
pub(crate) fn resume(plan: &Plan, paused: PausedChild) -> Result<Spawned, Error> {
    let PausedChild {
        child,
        report,
        resume,
    } = paused;
    let written = rustix::io::retry_on_intr(|| rustix::io::write(&resume, b"1"));
    drop(resume);
    if let Err(e) = written {
        kill_and_reap(&child);
        return Err(Error::io("resuming the child", e));
    }
    finish_fork(plan, child, report)
}

fn clone_child(plan: &Plan, dynamic: &[RawFd]) -> Result<Spawned, Error> {
    clone_child_on(plan, dynamic, &mut ChildStack::new())
}

#[inline(always)]
fn clone_child_on(
    plan: &Plan,
    dynamic: &[RawFd],
    stack: &mut ChildStack,
) -> Result<Spawned, Error> {
    let report = plan.report_pipes.take()?;
    let child = clone_on(plan, dynamic, stack, DaemonSlots::NONE, &report.write)?;
    // The child has exec'd or exited: its report, if any, is in the pipe.
    let mut msg = [0u8; MSG_LEN];
    match rustix::io::retry_on_intr(|| rustix::io::read(&report.read, &mut msg)) {
        Err(Errno::AGAIN) => {
            // Nothing said, nothing left: the pipe can serve the next spawn.
            plan.report_pipes.put_back(report);
            Ok(child)
        }
        Ok(MSG_LEN) => Err(child_failed(plan, &child, &msg)),
        // A short message cannot happen (one write of MSG_LEN bytes, below
        // PIPE_BUF, is atomic); the pipe is not reused after it.
        Ok(_) => Ok(child),
        Err(e) => {
            kill_and_reap(&child);
            Err(Error::io("reading the child's report", e))
        }
    }
}

/// `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)` of `child_main` on `stack`;
/// returns once the child has exec'd or exited. The child reports failures
/// on `report`, the write end of a report pipe; the parent keeps it open.
/// `daemon` holds daemon mode's places in the caller's frame, or null
/// pointers.
fn clone_on(
    plan: &Plan,
    dynamic: &[RawFd],
    stack: &mut ChildStack,
    daemon: DaemonSlots,
    report: &OwnedFd,
) -> Result<Spawned, Error> {
    let old_mask = sys::block_all_signals();
    let ctx = ChildCtx {
        plan,
        dynamic,
        report: report.as_raw_fd(),
        pause: -1,
        parent_mask: old_mask,
        parent_pid: parent_pid(plan),
        daemon,
    };
    let arg = &ctx as *const ChildCtx<'_> as *mut c_void;
    // Preferably clone3 with CLONE_CLEAR_SIGHAND: the kernel resets the
    // child's signal handlers, which saves it ~62 system calls; where
    // clone3 is refused (old kernel, seccomp, valgrind) no child was made
    // and the plain clone path runs instead, from then on.
    let mut cloned = Err(Errno::NOSYS);
    if sys::clone3_usable() {
        // SAFETY: the stack is a fresh 16-byte aligned buffer in this frame
        // (both ends aligned: CHILD_STACK_SIZE is a multiple of 16), used by
        // nothing else until clone3 returns; `clear_sighand_entry` runs the
        // child steps, which keep the child contract (see crate::child) and
        // end in execve or _exit; every signal is blocked; `ctx` lives in
        // this frame until clone3 returns.
        cloned = unsafe {
            sys::clone3_vfork(
                child::clear_sighand_entry,
                stack.base(),
                CHILD_STACK_SIZE,
                arg,
            )
        };
    }
    if matches!(cloned, Err(e) if sys::clone3_refused(e)) {
        // SAFETY: as above, with `vfork_entry`, which resets the handlers
        // itself; the stack is unused again (no child was created).
        cloned = unsafe { sys::clone_vfork(child::vfork_entry, stack.top(), arg) };
    }
    // Restoring the mask cannot fail with a valid set.
    let _ = sys::set_signal_mask(&old_mask);
    let (pid, pidfd) = cloned.map_err(|e| Error::io("clone", e))?;
    // SAFETY: with CLONE_PIDFD the kernel returned a new fd that we own.
    Ok(Spawned {
        pid,
        pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
    })
}

/// The pids of a started daemon: the intermediate (already reaped) and the
/// daemon itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DaemonPids {
    pub intermediate: i32,
    pub daemon: i32,
}

/// Daemon mode: starts the intermediate, which starts the daemon, and
/// returns once the intermediate has exited (and is reaped) and the daemon
/// has exec'd, its pidfile written.
///
/// Both processes are `clone(CLONE_VM | CLONE_VFORK)` children on two stack
/// regions of this frame, so the cost stays flat in the parent's memory
/// size; only `pre_exec` hooks make the intermediate a `fork`.
pub(crate) fn spawn_daemon(plan: &Plan, dynamic: &[RawFd]) -> Result<DaemonPids, Error> {
    // Where the kernel records the daemon's pid (see `DaemonSlots::pid`).
    let mut daemon_pid: c_int = 0;
    let (intermediate, report) = if plan.needs_fork() {
        // The forked intermediate has its own copy of this frame, so the
        // daemon's stack can be a buffer here (and the pid lands in the copy).
        let mut daemon_stack = ChildStack::new();
        let slots = DaemonSlots {
            stack: daemon_stack.top(),
            pid: &mut daemon_pid,
        };
        let forked = fork_child(plan, dynamic, false, slots)?;
        (forked.child, forked.report)
    } else {
        let mut stacks = [ChildStack::new(), ChildStack::new()];
        let [first, second] = &mut stacks;
        let slots = DaemonSlots {
            stack: second.top(),
            pid: &mut daemon_pid,
        };
        // A pipe of its own, read until nothing is left: both the
        // intermediate and the daemon report on it.
        let report = crate::report_pipe::ReportPipe::new()?;
        let child = clone_on(plan, dynamic, first, slots, &report.write)?;
        drop(report.write);
        (child, report.read)
    };
    let mut daemon = None;
    let mut failure = None;
    let mut msg = [0u8; MSG_LEN];
    loop {
        match read_full(&report, &mut msg) {
            Ok(true) => match child::decode(&msg) {
                (MSG_DAEMON, _, pid) if pid > 0 => daemon = Some(pid),
                (MSG_ERROR, stage, errno) => {
                    failure.get_or_insert((stage, errno));
                }
                _ => failure = Some((u32::MAX, 0)),
            },
            // End of file, or (clone path) nothing more: both processes
            // have exec'd or exited by now.
            Ok(false) | Err(Errno::AGAIN) => break,
            Err(e) => {
                kill_and_reap(&intermediate);
                return Err(Error::io("reading the daemon's report", e));
            }
        }
    }
    let status = reap(&intermediate.pidfd)
        .map_err(|e| Error::io("waiting for the intermediate process", e))?;
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        // Killed before it could see the daemon through (only SIGKILL can:
        // it blocks everything else). On the clone path the daemon may still
        // run on the second stack of this frame: stop it before returning.
        // SAFETY: the kernel wrote the slot, if at all, before the daemon
        // ran; nothing writes it any more (the intermediate is gone).
        let pid = unsafe { std::ptr::read_volatile(&daemon_pid) };
        if pid > 0 && !plan.needs_fork() {
            stop_stray_daemon(pid);
        }
        return Err(Error::io(
            &format!(
                "the intermediate process was killed by signal {signal} before the daemon started"
            ),
            Errno::CHILD,
        ));
    }
    if let Some((stage, errno)) = failure {
        return Err(match Stage::from_code(stage) {
            Some(stage) => Error::Spawn {
                stage,
                errno: sys::errno_from_raw(errno),
                program: plan.program.to_string(),
            },
            None => Error::io("reading the daemon's report", Errno::PROTO),
        });
    }
    match daemon {
        Some(daemon) if status.success() => Ok(DaemonPids {
            intermediate: intermediate.pid,
            daemon,
        }),
        _ => Err(Error::io(
            "the intermediate process ended without starting the daemon",
            Errno::CHILD,
        )),
    }
}

/// A forked child, its report pipe and, when paused, the resume pipe.
struct Forked {
    child: Spawned,
    report: OwnedFd,
    resume: Option<OwnedFd>,
}

/// Kills a daemon whose intermediate was killed, and waits until it has
/// exited, so that the memory it may still run on can be reused. A pidfd
/// of a process that is not our child becomes readable when it exits.
fn stop_stray_daemon(pid: i32) {
    let Ok(pidfd) = rustix::process::pidfd_open(pid_of(pid), rustix::process::PidfdFlags::empty())
    else {
        return; // already gone
    };
    let _ = rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::KILL);
    // SIGKILL cannot be caught or blocked: the wait ends, whatever the daemon did.
    while let Ok(false) = crate::process::wait_readable(&pidfd, std::time::Duration::from_secs(1)) {
    }
}

/// Forks the child; `daemon` holds daemon mode's places (in the caller's
/// frame, which the child gets a copy of), or null pointers.
fn fork_child(
    plan: &Plan,
    dynamic: &[RawFd],
    paused: bool,
    daemon: DaemonSlots,
) -> Result<Forked, Error> {
    if plan.forbid_fork {
        return Err(Error::build(
            crate::error::BuildErrorKind::Conflict,
            "forbid_fork",
            "this spawn needs the fork path (spawn_paused), which forbid_fork() refuses",
        ));
    }
    let (report_r, report_w) = pipe(PipeFlags::empty())?;
    let (resume_r, resume_w) = if paused {
        let (r, w) = pipe(PipeFlags::empty())?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    let old_mask = sys::block_all_signals();
    let ctx = ChildCtx {
        plan,
        dynamic,
        report: report_w.as_raw_fd(),
        pause: resume_r.as_ref().map_or(-1, |fd| fd.as_raw_fd()),
        parent_mask: old_mask,
        parent_pid: parent_pid(plan),
        daemon,
    };
    // SAFETY: the child only runs `child_main`, which keeps the child
    // contract (async-signal-safe raw calls, no allocation) until exec/_exit.
    let forked = unsafe { sys::fork() };
    if let Ok(0) = forked {
        child::child_main(&ctx);
    }
    let _ = sys::set_signal_mask(&old_mask);
    drop(report_w);
    drop(resume_r);
    let pid = forked.map_err(|e| Error::io("fork", e))?;
    // Race-free: the child is not reaped until we have its pidfd.
    let pidfd = match rustix::process::pidfd_open(pid_of(pid), rustix::process::PidfdFlags::empty())
    {
        Ok(fd) => fd,
        Err(e) => {
            let _ = rustix::process::kill_process(pid_of(pid), rustix::process::Signal::KILL);
            let _ =
                rustix::process::waitpid(Some(pid_of(pid)), rustix::process::WaitOptions::empty());
            return Err(Error::io("pidfd_open", e));
        }
    };
    Ok(Forked {
        child: Spawned { pid, pidfd },
        report: report_r,
        resume: resume_w,
    })
}

/// Reads the fork child's report until end-of-file (exec succeeded) or an
/// error message.
fn finish_fork(plan: &Plan, child: Spawned, report: OwnedFd) -> Result<Spawned, Error> {
    let mut msg = [0u8; MSG_LEN];
    match read_full(&report, &mut msg) {
        Ok(false) => Ok(child),
        Ok(true) => Err(child_failed(plan, &child, &msg)),
        Err(e) => {
            kill_and_reap(&child);
            Err(Error::io("reading the child's report", e))
        }
    }
}

/// Reads one whole message; `Ok(false)` at end-of-file.
fn read_full(fd: &OwnedFd, msg: &mut [u8; MSG_LEN]) -> Result<bool, Errno> {
    let mut got = 0;
    while got < MSG_LEN {
        let n = rustix::io::retry_on_intr(|| rustix::io::read(fd, &mut msg[got..]))?;
        if n == 0 {
            return Ok(false);
        }
        got += n;
    }
    Ok(true)
}

/// Turns a child's error message into `Error::Spawn`, reaping the child.
fn child_failed(plan: &Plan, child: &Spawned, msg: &[u8; MSG_LEN]) -> Error {
    let (tag, stage, errno) = child::decode(msg);
    // The child exits right after writing; reap it so no zombie is left.
    let _ = reap(&child.pidfd);
    match (tag, Stage::from_code(stage)) {
        (MSG_ERROR, Some(stage)) => Error::Spawn {
            stage,
            errno: sys::errno_from_raw(errno),
            program: plan.program.to_string(),
        },
        _ => Error::io("reading the child's report", Errno::PROTO),
    }
}

fn parent_pid(plan: &Plan) -> i32 {
    if plan.privileges.parent_death_signal.is_some() {
        rustix::process::getpid().as_raw_nonzero().get()
    } else {
        0
    }
}

pub(crate) fn pid_of(pid: i32) -> rustix::process::Pid {
    // A pid from clone/fork is always positive; fall back to init's pid
    // rather than panic (it is never signalled: every caller has a pidfd).
    rustix::process::Pid::from_raw(pid).unwrap_or(rustix::process::Pid::INIT)
}

/// Waits for the child to end and reaps it, through its pidfd.
pub(crate) fn reap(pidfd: &OwnedFd) -> Result<ExitStatus, Errno> {
    wait_pidfd(pidfd, rustix::process::WaitIdOptions::EXITED)
        .map(|s| s.unwrap_or_else(unknown_status))
}

/// Reaps the child if it has ended.
pub(crate) fn try_reap(pidfd: &OwnedFd) -> Result<Option<ExitStatus>, Errno> {
    wait_pidfd(
        pidfd,
        rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOHANG,
    )
}

fn wait_pidfd(
    pidfd: &OwnedFd,
    options: rustix::process::WaitIdOptions,
) -> Result<Option<ExitStatus>, Errno> {
    use std::os::unix::process::ExitStatusExt;
    let status = rustix::io::retry_on_intr(|| {
        rustix::process::waitid(rustix::process::WaitId::PidFd(pidfd.as_fd()), options)
    })?;
    Ok(status.map(|s| {
        let raw = if let Some(code) = s.exit_status() {
            (code & 0xff) << 8
        } else if let Some(sig) = s.terminating_signal() {
            sig | if s.dumped() { 0x80 } else { 0 }
        } else {
            0
        };
        ExitStatus::from_raw(raw)
    }))
}

fn unknown_status() -> ExitStatus {
    use std::os::unix::process::ExitStatusExt;
    ExitStatus::from_raw(0)
}

/// Kills and reaps a child we give up on. Errors are ignored: there is
/// nothing more to do, and the pidfd keeps the pid from being reused.
pub(crate) fn kill_and_reap(child: &Spawned) {
    let _ = rustix::process::pidfd_send_signal(&child.pidfd, rustix::process::Signal::KILL);
    let _ = reap(&child.pidfd);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Command;

    /// Fills the stack with a pattern, spawns, and counts how far down the
    /// child wrote. Uses the deepest options: every privilege-free step, the
    /// /proc walk with its buffer, and an exec failure report.
    #[test]
    fn child_stack_use_is_small() {
        let plan = Command::new("/nonexistent/program")
            .args(["a", "b"])
            .env("A", "1")
            .map_fd(std::fs::File::open("/dev/null").unwrap(), 9)
            .current_dir("/")
            .keep_ignored_signals()
            .close_fds_by_proc_walk()
            .cfg
            .into_plan()
            .unwrap();
        let mut stack = ChildStack::new();
        let bytes = stack.0.as_mut_ptr().cast::<u8>();
        // SAFETY: writing the whole buffer, which we own, before the child uses it.
        unsafe { std::ptr::write_bytes(bytes, 0xA5, CHILD_STACK_SIZE) };
        let err = clone_child_on(&plan, &[], &mut stack).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Spawn {
                    stage: Stage::Exec,
                    ..
                }
            ),
            "{err:?}"
        );
        // SAFETY: the child is gone; the buffer is initialised (pattern or child data).
        let buf = unsafe { std::slice::from_raw_parts(bytes, CHILD_STACK_SIZE) };
        let untouched = buf.iter().take_while(|&&b| b == 0xA5).count();
        let used = CHILD_STACK_SIZE - untouched;
        assert!(
            used > 256,
            "the child did not run on this stack ({used} bytes)"
        );
        assert!(
            used < CHILD_STACK_SIZE / 2,
            "the child used {used} of {CHILD_STACK_SIZE} bytes"
        );
        eprintln!("child stack use: {used} bytes");
    }
}
