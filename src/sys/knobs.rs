//! Process knobs and security labels: `personality(2)`, which rustix does
//! not offer; whether this system has core scheduling; and the `/proc` and
//! selinuxfs fds a plan keeps for the child's writes there.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicI32, Ordering};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::last_errno;

/// `personality(persona)`: sets this process's execution domain and returns
/// the previous one. `0xffffffff` only asks (`build()` refuses it as a
/// value to set). The raw system call: the C library's wrapper is the same
/// call, but this keeps the child's `libc` use to `syscall`. Child-safe.
pub(crate) fn personality(persona: u32) -> Result<u32, Errno> {
    // SAFETY: personality takes one integer and touches no memory.
    let rc = unsafe { libc::syscall(libc::SYS_personality, persona as libc::c_ulong) };
    if rc < 0 {
        Err(last_errno())
    } else {
        Ok(rc as u32)
    }
}

/// What [`core_scheduling`] found: 0 not asked yet, -1 available, else the
/// errno of the refusal.
static SCHED_CORE: AtomicI32 = AtomicI32::new(0);

/// Whether this system has core scheduling (`PR_SCHED_CORE`, Linux 5.14
/// built with `CONFIG_SCHED_CORE`, on a CPU with SMT): `Err` with the
/// kernel's answer to `PR_SCHED_CORE_GET` on this thread where not
/// (`EINVAL` without `CONFIG_SCHED_CORE` or before 5.14, `ENODEV` without
/// SMT, `EPERM` or `ENOSYS` from a seccomp filter). Asked once and cached.
/// Parent-only.
pub(crate) fn core_scheduling() -> Result<(), Errno> {
    match SCHED_CORE.load(Ordering::Relaxed) {
        -1 => return Ok(()),
        0 => {}
        raw => return Err(super::errno_from_raw(raw)),
    }
    let me = rustix::process::getpid();
    let answer =
        rustix::thread::core_scheduling_cookie(me, rustix::thread::CoreSchedulingScope::Thread)
            .map(drop);
    SCHED_CORE.store(
        match answer {
            Ok(()) => -1,
            Err(e) => e.raw_os_error(),
        },
        Ordering::Relaxed,
    );
    answer
}

/// `PROC_SUPER_MAGIC`.
const PROC_MAGIC: i64 = 0x9fa0;
/// `SELINUX_MAGIC`.
const SELINUX_MAGIC: i64 = 0xf97c_ff8c;

/// The file system type of `fd` (`fstatfs`). `f_type`'s width differs
/// between architectures, hence the cast.
#[allow(clippy::unnecessary_cast)]
fn fs_type(fd: &OwnedFd) -> Result<i64, Errno> {
    rustix::fs::fstatfs(fd).map(|s| s.f_type as i64)
}

/// `/proc`, opened `O_PATH | O_DIRECTORY | O_CLOEXEC` above the standard
/// streams, for the child's `openat` of `self/...` and `thread-self/...`
/// after its mounts (which may leave it no `/proc` of its own). `ENOENT`
/// when `/proc` is missing, and `ENODEV` when what is there is not a proc
/// file system (a container without `/proc` mounted leaves an empty
/// directory: writes through it would reach nothing). Parent-only.
pub(crate) fn open_procfs() -> Result<OwnedFd, Errno> {
    let fd = rustix::fs::open(
        c"/proc",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    if fs_type(&fd)? != PROC_MAGIC {
        return Err(Errno::NODEV);
    }
    super::fd::above_stdio(fd)
}

/// SELinux's `enforce` file (`/sys/fs/selinux/enforce`), opened read-only
/// and close-on-exec above the standard streams, for the child to read
/// whether SELinux enforces at the moment a label is refused. `Ok(None)`
/// when it does not exist: SELinux is not enabled (or selinuxfs not
/// mounted, which libselinux takes for the same). Any other failure, or a
/// file that is not on selinuxfs, is `Err`: the caller cannot tell, and
/// treats SELinux as enforcing. Parent-only.
pub(crate) fn open_selinux_enforce() -> Result<Option<OwnedFd>, Errno> {
    let fd = match rustix::fs::open(
        c"/sys/fs/selinux/enforce",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e),
    };
    if fs_type(&fd)? != SELINUX_MAGIC {
        return Err(Errno::NODEV);
    }
    super::fd::above_stdio(fd).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personality_query_changes_nothing() {
        let now = personality(0xffff_ffff).unwrap();
        assert_eq!(personality(0xffff_ffff).unwrap(), now);
    }

    #[test]
    fn procfs_is_found_and_the_probe_is_stable() {
        if std::path::Path::new("/proc/self").exists() {
            let fd = open_procfs().unwrap();
            assert!(std::os::fd::AsRawFd::as_raw_fd(&fd) > 2);
        }
        assert_eq!(core_scheduling(), core_scheduling());
    }
}
