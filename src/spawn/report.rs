//! The parent's end of the child's report: reading the child's messages,
//! the one decoder from a [`Failure`] to [`Error::Spawn`], and where a
//! vfork-style child reports ([`Channel`]).
//!
//! A child that fails before exec sends one stage + errno message (see
//! `crate::child::report`): into the spawning frame on the `clone3` path,
//! whose child shares the suspended parent's memory, and otherwise on a
//! close-on-exec pipe. The fork path (hooks, paused spawns, id ranges) and
//! daemon mode read their pipe until end-of-file; on the vfork-style path
//! the parent is suspended until the child has exec'd or exited, so it
//! looks once: an empty frame message or pipe means the exec succeeded.

use std::ffi::{CStr, OsStr};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use rustix::io::Errno;
use rustix::pipe::PipeFlags;

use crate::child;
use crate::child::report::{self, Failure, Report, MSG_LEN};
use crate::error::{Error, Stage};
use crate::pidfd::ChildPid;
use crate::plan::Plan;
use crate::sys;

/// Reads one whole message; `Ok(None)` at end-of-file (or, on the kept
/// non-blocking pipe, `Err(EAGAIN)` when nothing was written).
pub(crate) fn read_message(fd: &OwnedFd) -> Result<Option<[u8; MSG_LEN]>, Errno> {
    let mut msg = [0u8; MSG_LEN];
    let mut got = 0;
    while got < MSG_LEN {
        let n = rustix::io::retry_on_intr(|| rustix::io::read(fd, &mut msg[got..]))?;
        if n == 0 {
            return Ok(None);
        }
        got += n;
    }
    Ok(Some(msg))
}

/// The child's failure as the caller sees it, with the path the failing
/// step worked on.
pub(crate) fn spawn_error(plan: &Plan, failure: Failure) -> Error {
    let shown = |p: &CStr| Some(PathBuf::from(OsStr::from_bytes(p.to_bytes())));
    let path = match failure.stage {
        // A daemon runs in "/" whatever the plan says.
        Stage::Chdir if plan.child.daemon.is_some() => Some(PathBuf::from("/")),
        Stage::Chdir => plan.child.exec.cwd.as_deref().and_then(shown),
        Stage::Pidfile => plan
            .child
            .daemon
            .as_ref()
            .and_then(|d| d.pidfile.as_deref())
            .and_then(shown),
        Stage::Cgroup => plan.cgroup_path.clone(),
        Stage::Mount => usize::from(failure.item)
            .checked_sub(1)
            .and_then(|i| plan.mount_paths.get(i))
            .cloned(),
        // The knobs and the label write through the plan's /proc fd: the
        // file is named as the caller's /proc shows it.
        Stage::OomScoreAdj => Some(proc_path(child::knobs::OOM_SCORE_ADJ)),
        Stage::Label => match failure.item {
            child::label::ITEM_APPARMOR => Some(proc_path(child::label::APPARMOR_EXEC)),
            child::label::ITEM_SELINUX | child::label::ITEM_APPARMOR_FALLBACK => {
                Some(proc_path(child::label::ATTR_EXEC))
            }
            _ => None,
        },
        _ => None,
    };
    Error::Spawn {
        stage: failure.stage,
        errno: failure.errno,
        program: plan.program.to_string(),
        path,
    }
}

/// `/proc/` + `rel`.
fn proc_path(rel: &CStr) -> PathBuf {
    PathBuf::from("/proc").join(OsStr::from_bytes(rel.to_bytes()))
}

/// Turns the message of a child that has failed into `Error::Spawn`, and
/// reaps the child (it exits right after writing), so no zombie is left.
pub(crate) fn child_failed(plan: &Plan, mut child: ChildPid, msg: &[u8; MSG_LEN]) -> Error {
    let _ = child.wait();
    match report::decode(msg) {
        Some(Report::Failed(failure)) => spawn_error(plan, failure),
        _ => Error::io("reading the child's report", Errno::PROTO),
    }
}

/// A report pipe: the parent's read end (non-blocking) and the write end
/// the child inherits (both close-on-exec, both above the standard streams).
#[derive(Debug)]
pub(crate) struct ReportPipe {
    pub read: OwnedFd,
    pub write: OwnedFd,
}

impl ReportPipe {
    /// A new report pipe.
    pub(crate) fn new() -> Result<Self, Error> {
        let (read, write) = sys::fd::pipe(PipeFlags::NONBLOCK)?;
        Ok(ReportPipe { read, write })
    }
}

/// Where a child of the vfork-style path reports a failure.
///
/// A child of `clone3` shares this process's memory (`CLONE_VM`), and the
/// spawning thread is suspended until it has exec'd or exited
/// (`CLONE_VFORK`): it writes its one message into `msg`, in the spawning
/// frame, and the parent looks there once the clone returns. No pipe is
/// made, the child carries no fd for it, and a successful exec leaves
/// nothing to read. A child of the plain `clone` runs only where `clone3`
/// is refused (a kernel before 5.3, a seccomp filter, valgrind or an
/// emulator, which may run a vfork as a fork, with memory of its own): it
/// writes to a pipe made for that spawn (`fallback`). Daemon mode passes a
/// pipe of its own, which the daemon writes after the parent has resumed.
#[derive(Debug)]
pub(crate) enum Channel<'a> {
    /// Daemon mode's pipe, read until end-of-file by its caller.
    Pipe(&'a OwnedFd),
    /// A child that reports in this frame, or in the fallback's pipe.
    Frame {
        msg: [u8; MSG_LEN],
        fallback: Option<ReportPipe>,
    },
}

impl Channel<'_> {
    /// A channel for one vfork-style child that is not a daemon's.
    pub(crate) fn frame() -> Channel<'static> {
        Channel::Frame {
            msg: [0; MSG_LEN],
            fallback: None,
        }
    }

    /// What a [`Channel::frame`] child said, once it has exec'd or exited:
    /// `Ok(None)` when nothing (its exec succeeded).
    pub(crate) fn message(&mut self) -> Result<Option<[u8; MSG_LEN]>, Errno> {
        match self {
            Channel::Pipe(_) => Ok(None),
            Channel::Frame {
                fallback: Some(pipe),
                ..
            } => {
                // The child is gone or has exec'd: one non-blocking read.
                let mut msg = [0u8; MSG_LEN];
                match rustix::io::retry_on_intr(|| rustix::io::read(&pipe.read, &mut msg)) {
                    Err(Errno::AGAIN) => Ok(None),
                    Ok(n) if n == msg.len() => Ok(Some(msg)),
                    // One write of MSG_LEN bytes (below PIPE_BUF) is atomic:
                    // a short message cannot be the child's.
                    Ok(_) => Err(Errno::PROTO),
                    Err(e) => Err(e),
                }
            }
            Channel::Frame {
                msg,
                fallback: None,
            } => {
                // SAFETY: a plain read of this frame's own array; the child
                // that may have written it is gone or has exec'd. Volatile:
                // the write came from another process, through a pointer
                // the compiler did not see used.
                let msg = unsafe { std::ptr::from_mut(msg).read_volatile() };
                Ok((msg != [0; MSG_LEN]).then_some(msg))
            }
        }
    }
}
