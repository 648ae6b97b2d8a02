//! The parent side of one spawn: which path, the child's report, the pause.
//!
//! The default path is `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)` with the
//! child on a stack buffer in this frame ([`clone`]): no page tables are
//! copied (the cost is flat in the parent's memory size) and nothing is
//! allocated. Because the parent is suspended until the child has exec'd or
//! exited, whatever the child had to say is already there when the clone
//! returns: in this frame, where the child of `clone3` writes its failure
//! (no pipe at all), or in a pipe read once, non-blocking, behind a plain
//! `clone` ([`report::Channel`]). The fork path (for `pre_exec` hooks, paused
//! spawns and id ranges, whose maps the parent writes: [`id_maps`]) reads
//! it until end-of-file instead. Daemon mode is in [`daemon`].

use std::os::fd::{OwnedFd, RawFd};

use rustix::io::Errno;

use self::clone::{clone_on, fork_child, ChildStack, Forked};
use self::report::{child_failed, read_message, Channel};
use crate::child::report::{decode, Report};
use crate::child::DaemonSlots;
use crate::error::Error;
use crate::pidfd::ChildPid;
use crate::plan::Plan;

pub(crate) mod clone;
pub(crate) mod daemon;
pub(crate) mod id_maps;
pub(crate) mod report;

/// A child stopped before exec by `spawn_paused`.
#[derive(Debug)]
pub(crate) struct PausedChild {
    pub child: ChildPid,
    pub report: OwnedFd,
    pub resume: OwnedFd,
}

/// Starts `plan` with the per-spawn fds `slots` and waits until it has
/// exec'd (or failed, which is returned as `Error::Spawn`).
pub(crate) fn spawn(plan: &Plan, slots: &[RawFd]) -> Result<ChildPid, Error> {
    if plan.needs_fork() {
        let forked = fork_child(plan, slots, false, DaemonSlots::NONE)?;
        finish_fork(plan, forked.child, forked.report)
    } else {
        clone_child_on(plan, slots, &mut ChildStack::new())
    }
}

/// Starts `plan` and stops it just before exec.
pub(crate) fn spawn_paused(plan: &Plan, slots: &[RawFd]) -> Result<PausedChild, Error> {
    let Forked {
        child,
        report,
        resume: Some(resume),
    } = fork_child(plan, slots, true, DaemonSlots::NONE)?
    else {
        return Err(Error::io("spawn_paused", Errno::INVAL));
    };
    // Wait for the child to reach the pause point (or fail before it).
    match read_message(&report) {
        Ok(Some(msg)) if decode(&msg) == Some(Report::Paused) => Ok(PausedChild {
            child,
            report,
            resume,
        }),
        Ok(Some(msg)) => Err(child_failed(plan, child, &msg)),
        // It died without a word (killed by a signal, say); dropping the
        // child reaps it.
        Ok(None) => Err(Error::io("waiting for the paused child", Errno::CHILD)),
        Err(e) => Err(Error::io("reading the child's report", e)),
    }
}

/// Lets a paused child exec; returns once it has (or has failed).
pub(crate) fn resume(plan: &Plan, paused: PausedChild) -> Result<ChildPid, Error> {
    let PausedChild {
        child,
        report,
        resume,
    } = paused;
    let written = rustix::io::retry_on_intr(|| rustix::io::write(&resume, b"1"));
    drop(resume);
    if let Err(e) = written {
        // Dropping the child kills and reaps it.
        return Err(Error::io("resuming the child", e));
    }
    finish_fork(plan, child, report)
}

/// The vfork-style spawn on `stack`.
#[inline(always)]
fn clone_child_on(plan: &Plan, slots: &[RawFd], stack: &mut ChildStack) -> Result<ChildPid, Error> {
    let mut report = Channel::frame();
    let child = clone_on(plan, slots, stack, DaemonSlots::NONE, &mut report)?;
    // The child has exec'd or exited: what it said, if anything, is there.
    match report.message() {
        Ok(None) => Ok(child),
        Ok(Some(msg)) => Err(child_failed(plan, child, &msg)),
        // Dropping the child kills and reaps it.
        Err(e) => Err(Error::io("reading the child's report", e)),
    }
}

/// Reads the fork child's report until end-of-file (exec succeeded) or an
/// error message.
fn finish_fork(plan: &Plan, child: ChildPid, report: OwnedFd) -> Result<ChildPid, Error> {
    match read_message(&report) {
        Ok(None) => Ok(child),
        Ok(Some(msg)) => Err(child_failed(plan, child, &msg)),
        // Dropping the child kills and reaps it.
        Err(e) => Err(Error::io("reading the child's report", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Stage;
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
            .freeze()
            .unwrap();
        let mut stack = ChildStack::new();
        let bytes = stack.base();
        // SAFETY: writing the whole buffer, which we own, before the child uses it.
        unsafe { std::ptr::write_bytes(bytes, 0xA5, clone::CHILD_STACK_SIZE) };
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
        let buf = unsafe { std::slice::from_raw_parts(bytes, clone::CHILD_STACK_SIZE) };
        let untouched = buf.iter().take_while(|&&b| b == 0xA5).count();
        let used = clone::CHILD_STACK_SIZE - untouched;
        assert!(
            used > 256,
            "the child did not run on this stack ({used} bytes)"
        );
        assert!(
            used < clone::CHILD_STACK_SIZE / 2,
            "the child used {used} of {} bytes",
            clone::CHILD_STACK_SIZE
        );
        eprintln!("child stack use: {used} bytes");
    }
}
