//! The parent's end of the report pipe: reading the child's messages, the
//! one decoder from a [`Failure`] to [`Error::Spawn`], and the report pipe
//! of the vfork-style path, kept by its `Prepared` between spawns.
//!
//! A child that fails before exec writes one stage + errno message to a
//! close-on-exec pipe (see `crate::child::report`). On the vfork-style path the
//! parent is suspended until the child has exec'd or exited, so it never
//! waits for end-of-file: it reads the pipe once, non-blocking, and an empty
//! pipe means the exec succeeded. The pipe is then as it was before the spawn
//! (empty, both ends open in the parent, the child's copy of the write end
//! gone with its exec or exit), so the next spawn can use it again. Creating
//! and closing a pipe costs about as much as a quarter of what a spawn adds
//! over a bare `clone` + `execve`; [`ReportPipes`] keeps one per plan.
//!
//! Rules that keep a reused pipe's messages with the spawn they belong to:
//! * one spawn at a time holds a pipe: [`ReportPipes::take`] empties the slot,
//!   so concurrent spawns of one `Prepared` create their own;
//! * only a pipe known to be empty goes back ([`ReportPipes::put_back`] is
//!   called only after a read found nothing); after a failure report or an
//!   odd read the pipe is closed;
//! * after `fork()` the slot and the pipe are shared with the other process,
//!   so only the process that built the plan uses the slot; a forked copy
//!   creates a new pipe per spawn. A copy is recognised by its pid and, for
//!   forks made through the C library, by a fork counter its `pthread_atfork`
//!   child handler advances (a copy in another pid namespace can have the
//!   builder's pid number);
//! * the fork path (hooks, paused spawns, id ranges) and daemon mode read until
//!   end-of-file and always create their own pipes.

use std::ffi::{CStr, OsStr};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

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

/// The slot's value when it holds no pipe. Two fds, each non-negative, never
/// pack to it.
const EMPTY: u64 = u64::MAX;

/// A report pipe: the parent's read end (non-blocking) and the write end
/// the child inherits (both close-on-exec, both above the standard streams).
#[derive(Debug)]
pub(crate) struct ReportPipe {
    pub read: OwnedFd,
    pub write: OwnedFd,
    /// Whether it may go back to the slot it came from: false when it was
    /// taken in a process other than the slot's owner.
    keep: bool,
}

impl ReportPipe {
    /// A new report pipe.
    pub(crate) fn new() -> Result<Self, Error> {
        let (read, write) = sys::fd::pipe(PipeFlags::NONBLOCK)?;
        Ok(ReportPipe {
            read,
            write,
            keep: false,
        })
    }

    fn pack(self) -> u64 {
        let r = self.read.into_raw_fd() as u32 as u64;
        let w = self.write.into_raw_fd() as u32 as u64;
        (r << 32) | w
    }

    /// # Safety
    /// `packed` came from [`ReportPipe::pack`] and its fds are still owned by
    /// no one else.
    unsafe fn unpack(packed: u64) -> Self {
        let (r, w) = ((packed >> 32) as u32 as i32, packed as u32 as i32);
        // SAFETY: the caller hands over the two fds `pack` took ownership of.
        unsafe {
            ReportPipe {
                read: OwnedFd::from_raw_fd(r),
                write: OwnedFd::from_raw_fd(w),
                keep: true,
            }
        }
    }
}

/// How many times this process's line of ancestors has forked through the C
/// library since the crate first built a plan: each fork's child adds one.
static FORKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn count_fork_in_child() {
    // Async-signal-safe: one atomic add.
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// Registers [`count_fork_in_child`] once per process (a forked child
/// inherits the registration).
fn count_forks() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // SAFETY: registers a child handler that only adds to an atomic;
        // no prepare or parent handler. Should registration fail (ENOMEM)
        // the pid check alone remains.
        let _ = unsafe { libc::pthread_atfork(None, None, Some(count_fork_in_child)) };
    });
}

/// One report pipe kept for the next spawn of a plan. Lock-free: a spawn
/// takes the pipe out of the slot and puts it back when it is done.
#[derive(Debug)]
pub(crate) struct ReportPipes {
    slot: AtomicU64,
    /// The process that built the plan, as its pid and the fork count it
    /// saw; in any other process (a `fork()` of it) the slot is not used.
    owner: i32,
    forks: u64,
}

impl ReportPipes {
    /// An empty slot owned by this process.
    pub(crate) fn new() -> Self {
        count_forks();
        ReportPipes {
            slot: AtomicU64::new(EMPTY),
            owner: rustix::process::getpid().as_raw_nonzero().get(),
            forks: FORKS.load(Ordering::Relaxed),
        }
    }

    fn ours(&self) -> bool {
        FORKS.load(Ordering::Relaxed) == self.forks
            && rustix::process::getpid().as_raw_nonzero().get() == self.owner
    }

    /// The kept pipe, or a new one when another spawn holds it, none was
    /// kept yet, or this process is a fork of the plan's owner.
    pub(crate) fn take(&self) -> Result<ReportPipe, Error> {
        if !self.ours() {
            return ReportPipe::new();
        }
        let packed = self.slot.swap(EMPTY, Ordering::Acquire);
        if packed != EMPTY {
            // SAFETY: the swap took the fds out of the slot, which owned
            // them; no one else can take them now.
            return Ok(unsafe { ReportPipe::unpack(packed) });
        }
        Ok(ReportPipe {
            keep: true,
            ..ReportPipe::new()?
        })
    }

    /// Keeps `pipe`, which a read has just found empty, for the next spawn;
    /// closes it if the slot is full already (another spawn put its own back
    /// first) or it was taken in a process that is not the owner.
    pub(crate) fn put_back(&self, pipe: ReportPipe) {
        if !pipe.keep {
            return;
        }
        let packed = pipe.pack();
        if self
            .slot
            .compare_exchange(EMPTY, packed, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            // SAFETY: `pack` gave up the fds and the slot did not take them.
            drop(unsafe { ReportPipe::unpack(packed) });
        }
    }

    /// Whether a pipe is kept (for tests).
    #[cfg(test)]
    fn holds_one(&self) -> bool {
        self.slot.load(Ordering::Relaxed) != EMPTY
    }
}

impl Drop for ReportPipes {
    fn drop(&mut self) {
        let packed = *self.slot.get_mut();
        if packed != EMPTY {
            // SAFETY: the slot owns the fds and is being dropped.
            drop(unsafe { ReportPipe::unpack(packed) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// A pipe's fds by number, with the pipe's identity: tests run in
    /// parallel in this process, so a closed number may be reused at once.
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Seen {
        fds: (i32, i32),
        ino: u64,
    }

    fn seen(p: &ReportPipe) -> Seen {
        Seen {
            fds: (p.read.as_raw_fd(), p.write.as_raw_fd()),
            ino: rustix::fs::fstat(&p.read).unwrap().st_ino,
        }
    }

    /// Whether both fds of `s` still name the same pipe.
    fn is_open(s: Seen) -> bool {
        let link = format!("pipe:[{}]", s.ino);
        [s.fds.0, s.fds.1].iter().all(|fd| {
            std::fs::read_link(format!("/proc/self/fd/{fd}"))
                .is_ok_and(|l| l.as_os_str() == link.as_str())
        })
    }

    #[test]
    fn a_pipe_put_back_is_taken_again_and_closed_with_the_slot() {
        let slot = ReportPipes::new();
        let first = slot.take().unwrap();
        let kept = seen(&first);
        assert!(!slot.holds_one());
        slot.put_back(first);
        assert!(slot.holds_one());
        let again = slot.take().unwrap();
        assert_eq!(seen(&again), kept);
        // A second pipe while the first is out is a new one, and only one
        // of the two is kept.
        let other = slot.take().unwrap();
        let other_seen = seen(&other);
        assert_ne!(other_seen.ino, kept.ino);
        slot.put_back(again);
        slot.put_back(other);
        assert!(!is_open(other_seen));
        assert!(is_open(kept));
        drop(slot);
        assert!(!is_open(kept));
    }

    #[test]
    fn a_fork_is_recognised_even_with_the_same_pid() {
        let slot = ReportPipes::new();
        assert!(slot.ours());
        // As if the fork's child had the builder's pid number (another pid
        // namespace): the counter alone must tell.
        let same_pid_after_fork = {
            count_fork_in_child();
            let ours = slot.ours();
            FORKS.fetch_sub(1, Ordering::Relaxed);
            ours
        };
        assert!(!same_pid_after_fork);
        // A real fork: its child runs the registered handler.
        // SAFETY: the child only reads an atomic, makes one system call
        // (getpid) and leaves with _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let counted = FORKS.load(Ordering::Relaxed) != slot.forks;
            // SAFETY: ends the forked child without running anything else.
            unsafe { libc::_exit(if counted && !slot.ours() { 0 } else { 1 }) };
        }
        assert!(pid > 0);
        let mut status = 0;
        // SAFETY: waits for the child just forked.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert_eq!(status, 0, "the forked child saw the slot as its own");
        assert!(slot.ours());
    }

    #[test]
    fn a_forked_copy_does_not_use_the_slot() {
        let mut slot = ReportPipes::new();
        slot.put_back(slot.take().unwrap());
        assert!(slot.holds_one());
        // As seen from a process that is not the owner.
        slot.owner = -1;
        let fresh = slot.take().unwrap();
        assert!(slot.holds_one(), "the owner's pipe stays in the slot");
        let fresh_seen = seen(&fresh);
        slot.put_back(fresh);
        assert!(!is_open(fresh_seen));
    }
}
