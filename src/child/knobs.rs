//! Process knobs: the nice value, the CPU affinity, core scheduling, the
//! OOM score adjustment and the execution domain (personality).
//!
//! # The order
//!
//! 1. **nice** (`setpriority(PRIO_PROCESS, 0, n)`), **CPU affinity**
//!    (`sched_setaffinity(0, ..)`), **core scheduling** (`PR_SCHED_CORE`),
//!    each reported as [`Stage::Sched`]. They depend on nothing but the
//!    caller's privilege: a nice value below the inherited one needs
//!    `CAP_SYS_NICE` (or the command's own `RLIMIT_NICE`, set by the
//!    process step just before), and sharing another process's
//!    core-scheduling cookie needs ptrace access to it, which a uid change
//!    could take away;
//! 2. **OOM score adjustment**: the decimal text `build()` made, written to
//!    `self/oom_score_adj` of the `/proc` fd the plan holds (the child's own
//!    `/proc` may be gone after its mounts). A value below the one inherited
//!    needs `CAP_SYS_RESOURCE`, hence before the credentials;
//! 3. **personality** (`personality(2)`), last: an execution domain can
//!    change how the calls after it behave (`PER_LINUX32` changes what
//!    `uname` answers, `ADDR_LIMIT_3GB` where `mmap` may map); none of the
//!    steps here depends on it, and the flags that matter to the program
//!    (`ADDR_NO_RANDOMIZE`, `READ_IMPLIES_EXEC`, ...) take effect at exec.
//!
//! All of it after the mounts and the process step (rlimits), and before
//! the security label and the credentials, which may take the privilege
//! away.

use std::os::fd::{BorrowedFd, RawFd};

use rustix::io::Errno;
use rustix::process::Pid;
use rustix::thread::{CoreSchedulingScope, CpuSet};

use super::report::{At, Failure};
use crate::error::Stage;
use crate::frozen::Frozen;
use crate::sys;

/// What the child does about its process knobs.
#[derive(Default)]
pub(crate) struct KnobsPlan {
    /// The nice value, -20..=19.
    pub nice: Option<i32>,
    /// The CPUs the child may run on (at least one).
    pub affinity: Option<CpuSet>,
    pub sched_core: Option<SchedCore>,
    /// The OOM score adjustment as decimal text (`"-500"`).
    pub oom_score_adj: Option<Frozen<[u8]>>,
    /// The execution domain (never `0xffffffff`, the query).
    pub personality: Option<u32>,
}

impl std::fmt::Debug for KnobsPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnobsPlan")
            .field("nice", &self.nice)
            .field("affinity", &self.affinity.as_ref().map(CpuSet::count))
            .field("sched_core", &self.sched_core)
            .field("oom_score_adj", &self.oom_score_adj)
            .field("personality", &self.personality)
            .finish()
    }
}

/// Core scheduling: libvirt's SetRunAlone and SetRunAmong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SchedCore {
    /// A new cookie for the child's thread group (`PR_SCHED_CORE_CREATE`).
    New,
    /// The cookie of this process (`PR_SCHED_CORE_SHARE_FROM`).
    ShareFrom(Pid),
}

/// The file `oom_score_adj` is written to, below the plan's `/proc` fd.
pub(crate) const OOM_SCORE_ADJ: &std::ffi::CStr = c"self/oom_score_adj";

/// Sets the knobs (see the module docs for the order and its reasons).
/// `proc`: the plan's `/proc` fd as the fd steps left it, or -1.
pub(crate) fn apply(plan: &KnobsPlan, proc: RawFd) -> Result<(), Failure> {
    if let Some(nice) = plan.nice {
        rustix::process::setpriority_process(None, nice).at(Stage::Sched)?;
    }
    if let Some(cpus) = &plan.affinity {
        rustix::thread::sched_setaffinity(None, cpus).at(Stage::Sched)?;
    }
    match plan.sched_core {
        None => {}
        Some(SchedCore::New) => {
            // This process by its pid in its own pid namespace (1 in a new
            // one): rustix takes no 0 for "myself".
            let me = rustix::process::getpid();
            rustix::thread::create_core_scheduling_cookie(me, CoreSchedulingScope::ThreadGroup)
                .at(Stage::Sched)?;
        }
        Some(SchedCore::ShareFrom(pid)) => {
            // The kernel takes only a thread's scope for SHARE_FROM; the
            // child has one thread.
            rustix::thread::pull_core_scheduling_cookie(pid, CoreSchedulingScope::Thread)
                .at(Stage::Sched)?;
        }
    }
    if let Some(text) = &plan.oom_score_adj {
        write_once(proc, OOM_SCORE_ADJ, text).at(Stage::OomScoreAdj)?;
    }
    if let Some(persona) = plan.personality {
        sys::knobs::personality(persona).at(Stage::Personality)?;
    }
    Ok(())
}

/// [`super::write_once`] below the plan's directory fd `dir` (the `/proc`
/// fd, carried through the fd steps; -1 when there is none: `EBADF`).
/// Child-safe.
pub(crate) fn write_once(dir: RawFd, path: &std::ffi::CStr, text: &[u8]) -> Result<(), Errno> {
    if dir < 0 {
        return Err(Errno::BADF);
    }
    // SAFETY: `dir` is the plan's /proc fd, open in this process until exec
    // (the fd steps kept it, or moved it and said where).
    let dir = unsafe { BorrowedFd::borrow_raw(dir) };
    super::write_once(dir, path, text)
}
