//! The cgroup the child starts in ([`Command::cgroup`]): the directory is
//! opened and checked at `build()`, and the way the child gets there
//! (`CLONE_INTO_CGROUP`, or its own write to `cgroup.procs`) is decided
//! then. The child's part is in the child's `cgroup` room.

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode as FileMode, OFlags};
use rustix::io::Errno;

use super::Command;
use crate::child::cgroup::Placement;
use crate::command::namespaces::Namespaces;
use crate::error::{BuildErrorKind, Error};
use crate::mode::Mode;
use crate::sys;

/// `CGROUP2_SUPER_MAGIC`: `statfs(2)`'s `f_type` of a cgroup v2 filesystem.
pub(crate) const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;
/// `CGROUP_SUPER_MAGIC`: a cgroup v1 hierarchy.
const CGROUP_SUPER_MAGIC: u64 = 0x0027_e0eb;

/// What a command records about its cgroup.
#[derive(Debug, Default)]
pub(crate) struct CgroupConfig {
    pub dir: Option<PathBuf>,
}

/// The frozen cgroup: the child's placement, the fds the plan owns for it,
/// the directory (for errors), and whether the clone must leave
/// `CLONE_NEWCGROUP` to the child.
#[derive(Debug, Default)]
pub(crate) struct FrozenCgroup {
    pub placement: Placement,
    pub owned: Vec<OwnedFd>,
    pub path: Option<PathBuf>,
    pub child_unshares_ns: bool,
}

impl<M: Mode> Command<M> {
    /// The child starts inside the cgroup v2 directory `dir`: it never runs
    /// in the caller's cgroup. A later call replaces an earlier one.
    ///
    /// `build()` opens `dir` (`O_PATH | O_DIRECTORY`; the plan keeps the fd
    /// until the `Prepared` is dropped, the program does not inherit it) and
    /// checks that it is on a cgroup v2 filesystem. Where the kernel has
    /// `CLONE_INTO_CGROUP` (Linux 5.7, on the `clone3` paths: x86_64, no
    /// seccomp profile refusing `clone3`) the kernel starts the child there,
    /// on every spawn path (the fork path of hooks and `spawn_paused` too):
    /// a paused child is already in the cgroup, and a daemon's intermediate
    /// is, so the daemon it starts is too (children inherit the cgroup).
    /// Elsewhere `build()` also opens the cgroup's `cgroup.procs` for
    /// writing, and the child writes itself there as its first step after
    /// the signal reset: it runs in the caller's cgroup for the clone and
    /// that step only. On both paths the permission is the caller's: the
    /// kernel checks `CLONE_INTO_CGROUP` against the spawning process, and a
    /// write to `cgroup.procs` against the process that opened it (at
    /// `build()`).
    ///
    /// With [`unshare`](Command::unshare)`(Namespaces::CGROUP)` the new
    /// cgroup namespace's root is `dir` (the child's `/proc/self/cgroup`
    /// shows `0::/`): `CLONE_INTO_CGROUP` roots it at the target, and where
    /// the child places itself it makes the namespace itself, right after
    /// the placement, instead of with the clone.
    ///
    /// Creating a cgroup and writing its limits is [`Cgroup`](crate::Cgroup)'s job.
    ///
    /// # Errors
    ///
    /// `build()` refuses a path with a NUL byte ([`BuildErrorKind::Nul`]),
    /// a directory that does not exist ([`BuildErrorKind::NotFound`]), and
    /// one that is not a directory, cannot be opened, or is not on a cgroup
    /// v2 filesystem (a cgroup v1 hierarchy, say) ([`BuildErrorKind::Invalid`]).
    /// The kernel's refusal of the placement is [`Error::Spawn`] at
    /// [`Stage::Cgroup`](crate::Stage::Cgroup), with `dir` as its `path`:
    /// `EBUSY` when `dir` has domain controllers enabled in its
    /// `cgroup.subtree_control` (the no-internal-process rule: processes
    /// live in the leaves), `EACCES` when the caller may not write the
    /// cgroup's `cgroup.procs` or that of the common ancestor of its own
    /// cgroup and `dir` (delegation), `ENOENT` when `dir` has been removed
    /// since `build()` (`ENODEV` where the child places itself),
    /// `EOPNOTSUPP` for a cgroup that cannot hold processes (an invalid
    /// domain of a threaded subtree). A full `pids.max` is `EAGAIN` from
    /// the clone, as for any fork ([`Error::Io`]); where the child places
    /// itself the kernel does not apply `pids.max` to the move.
    ///
    /// # References
    ///
    /// [`clone3(2)`](https://man7.org/linux/man-pages/man2/clone3.2.html)
    /// (`CLONE_INTO_CGROUP`, Linux 5.7; elsewhere a write to
    /// `cgroup.procs`),
    /// [`cgroups(7)`](https://man7.org/linux/man-pages/man7/cgroups.7.html),
    /// [`cgroup_namespaces(7)`](https://man7.org/linux/man-pages/man7/cgroup_namespaces.7.html),
    /// the kernel's `Documentation/admin-guide/cgroup-v2.rst` ("No Internal
    /// Process Constraint", "Delegation"). cgroup v2: Linux 4.5.
    ///
    /// ```no_run
    /// use safespawn::{Cgroup, Command};
    /// // Root, or a user the cgroup is delegated to.
    /// let job = Cgroup::create("/sys/fs/cgroup", "job")?.memory_max(256 << 20)?;
    /// let status = Command::new("make").cgroup(job.path()).status()?;
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn cgroup(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cfg.cgroup.dir = Some(dir.into());
        self
    }
}

impl CgroupConfig {
    /// Opens and checks the directory and decides the placement.
    /// `unshare`: the command's new namespaces.
    pub(crate) fn freeze(&self, unshare: Namespaces) -> Result<FrozenCgroup, Error> {
        let Some(dir) = &self.dir else {
            return Ok(FrozenCgroup::default());
        };
        let item = || format!("cgroup({dir:?})");
        let fd = open_cgroup_dir(dir, &item)?;
        let new_ns = unshare.contains(Namespaces::CGROUP);
        let (placement, owned, child_unshares_ns) = if sys::clone::have_clone_into_cgroup() {
            (Placement::ByClone(fd.as_raw_fd()), vec![fd], false)
        } else {
            match open_procs(&fd) {
                Ok(procs) => (
                    Placement::ByWrite {
                        procs: procs.as_raw_fd(),
                        new_namespace: new_ns,
                    },
                    vec![procs],
                    new_ns,
                ),
                // The kernel's answer to the placement: at the spawn, as
                // CLONE_INTO_CGROUP's refusal would be.
                Err(e) => (Placement::Refused(e), Vec::new(), false),
            }
        };
        Ok(FrozenCgroup {
            placement,
            owned,
            path: Some(dir.clone()),
            child_unshares_ns,
        })
    }
}

/// Opens `dir` (`O_PATH | O_DIRECTORY | O_CLOEXEC`, above the standard
/// streams) and checks that it is on a cgroup v2 filesystem; `item` names
/// it in errors.
pub(crate) fn open_cgroup_dir(dir: &Path, item: &dyn Fn() -> String) -> Result<OwnedFd, Error> {
    let bytes = dir.as_os_str().as_bytes();
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(Error::build(
            BuildErrorKind::Nul,
            item(),
            format!("the path contains a NUL byte at offset {at}"),
        ));
    }
    let fd = match rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        FileMode::empty(),
    )
    .and_then(sys::fd::above_stdio)
    {
        Ok(fd) => fd,
        Err(Errno::NOENT) => {
            return Err(Error::build(
                BuildErrorKind::NotFound,
                item(),
                format!("{dir:?} does not exist"),
            ))
        }
        Err(Errno::NOTDIR) => {
            return Err(Error::build(
                BuildErrorKind::Invalid,
                item(),
                format!("{dir:?} is not a directory"),
            ))
        }
        Err(e) => {
            return Err(Error::build(
                BuildErrorKind::Invalid,
                item(),
                format!("{dir:?} cannot be opened: {}", std::io::Error::from(e)),
            ))
        }
    };
    let fs = rustix::fs::fstatfs(&fd).map_err(|e| {
        Error::build(
            BuildErrorKind::Invalid,
            item(),
            format!("statfs of {dir:?}: {}", std::io::Error::from(e)),
        )
    })?;
    let kind = fs.f_type as u64;
    if kind != CGROUP2_SUPER_MAGIC {
        let what = if kind == CGROUP_SUPER_MAGIC {
            "a cgroup v1 hierarchy".to_owned()
        } else {
            format!("a filesystem of type {kind:#x}")
        };
        return Err(Error::build(
            BuildErrorKind::Invalid,
            item(),
            format!(
                "{dir:?} is not a cgroup v2 directory (it is on {what}; cgroup v2 is the filesystem of type cgroup2 in /proc/self/mountinfo)"
            ),
        ));
    }
    Ok(fd)
}

/// The cgroup's `cgroup.procs`, opened for writing (close-on-exec).
fn open_procs(dir: &OwnedFd) -> Result<OwnedFd, Errno> {
    const PROCS: &CStr = c"cgroup.procs";
    let fd = rustix::fs::openat(
        dir.as_fd(),
        PROCS,
        OFlags::WRONLY | OFlags::CLOEXEC,
        FileMode::empty(),
    )?;
    sys::fd::above_stdio(fd)
}
