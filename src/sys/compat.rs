//! Test-only emulation of older kernels and seccomp profiles: a process-wide
//! set of flags that makes some system call wrappers (the pidfd-related
//! ones, `mount_setattr`, `seccomp`) answer as
//! such a kernel would (an ignored `CLONE_PIDFD`, `ENOSYS` from a missing
//! call, `EINVAL` from an unknown `waitid` id type, `EPERM` from a filter),
//! without making the call. The library's fallbacks then run exactly as
//! they would on that system, probes and all; only the kernel's answer is
//! made up. Nothing sets the flags but [`force`] (`safespawn::__force_compat`),
//! which only tests call; with no flag set every check is one relaxed
//! atomic load.
//!
//! The flags are process-wide and the probes they lead to are cached, so a
//! test binary that uses them should set the same flags at the start of
//! every test, and keep to one set of flags. (The landlock flags are the
//! exception: they are applied to the cached answer of the ABI probe, so one
//! test may go through several, one after the other.)

use std::sync::atomic::{AtomicU32, Ordering};

use rustix::io::Errno;

/// `clone` ignores `CLONE_PIDFD` (the pidfd slot stays -1), as before
/// Linux 5.2.
pub const CLONE_IGNORES_PIDFD: u32 = 1 << 0;
/// `clone` with `CLONE_PIDFD` fails with `EINVAL` and creates nothing (an
/// emulator or sandbox that does not know the flag).
pub const CLONE_REFUSES_PIDFD: u32 = 1 << 1;
/// `clone3` is missing (`ENOSYS`), as before Linux 5.3.
pub const NO_CLONE3: u32 = 1 << 2;
/// `pidfd_open` is missing (`ENOSYS`), as before Linux 5.3; a pidfd from
/// `CLONE_PIDFD` cannot be polled there either.
pub const NO_PIDFD_OPEN: u32 = 1 << 3;
/// `waitid(P_PIDFD, ..)` fails with `EINVAL`, as before Linux 5.4.
pub const NO_WAITID_PIDFD: u32 = 1 << 4;
/// `pidfd_send_signal` is missing (`ENOSYS`), as before Linux 5.1.
pub const NO_PIDFD_SEND_SIGNAL: u32 = 1 << 5;
/// Every refusal above is `EPERM` instead (a seccomp profile that answers
/// unknown system calls with `EPERM`, as container runtimes' default
/// profiles did before they knew the pidfd calls).
pub const REFUSE_WITH_EPERM: u32 = 1 << 6;
/// `mount_setattr` is missing, as before Linux 5.12: read-only binds take
/// the `MS_REMOUNT` path.
pub const NO_MOUNT_SETATTR: u32 = 1 << 8;
/// The parent waits [`SLOW_ID_MAP_WRITER_DELAY`] before it writes a
/// child's id maps (`uid_map`, `gid_map`), as a parent descheduled at that
/// moment would: a child that did not wait at its gate would run ahead
/// into its later steps, or exec, with its maps unwritten.
pub const SLOW_ID_MAP_WRITER: u32 = 1 << 7;
/// How long [`SLOW_ID_MAP_WRITER`] waits.
pub const SLOW_ID_MAP_WRITER_DELAY: std::time::Duration = std::time::Duration::from_millis(500);
/// The landlock system calls are missing (`ENOSYS`, or `EPERM` under
/// [`REFUSE_WITH_EPERM`]), as before Linux 5.13: the ABI probe answers so.
pub const NO_LANDLOCK: u32 = 1 << 9;
/// SELinux enforces: a refused
/// [`selinux_exec_label`](crate::Command::selinux_exec_label) fails the
/// spawn, as on a system whose `/sys/fs/selinux/enforce` reads `1`.
pub const SELINUX_ENFORCING: u32 = 1 << 10;
/// Where the landlock ABI cap lives in the flags (4 bits; 0: no cap).
const LANDLOCK_ABI_SHIFT: u32 = 12;
const LANDLOCK_ABI_MASK: u32 = 0xf << LANDLOCK_ABI_SHIFT;
/// The landlock ABI probe answers at most 1 (Linux 5.13 to 5.18): no
/// `REFER`, no truncation, no network rules.
pub const LANDLOCK_ABI_1: u32 = 1 << LANDLOCK_ABI_SHIFT;
/// The landlock ABI probe answers at most 2 (Linux 5.19 to 6.1): no
/// truncation, no network rules.
pub const LANDLOCK_ABI_2: u32 = 2 << LANDLOCK_ABI_SHIFT;
/// The landlock ABI probe answers at most 3 (Linux 6.2 to 6.6): no network
/// rules.
pub const LANDLOCK_ABI_3: u32 = 3 << LANDLOCK_ABI_SHIFT;
/// `clone3` does not know `CLONE_INTO_CGROUP` (`EINVAL`), as before Linux
/// 5.7: the child places itself in its cgroup. Unlike the other flags it is
/// read at each `build()` of a command with a cgroup, not cached, so a test
/// or benchmark can build one plan of each kind in one process.
pub const NO_CLONE_INTO_CGROUP: u32 = 1 << 11;

/// `seccomp(2)` is missing (`ENOSYS`), as before Linux 3.17 or under a
/// profile that refuses it: seccomp filters are installed with
/// `prctl(PR_SET_SECCOMP)` instead. The child's `seccomp(2)` answers
/// `ENOSYS` too, so a build that chose it anyway fails at the spawn. (Bit
/// 16: above the landlock ABI cap's bits.)
pub const NO_SECCOMP_SYSCALL: u32 = 1 << 16;
/// `clone3` with `CLONE_FILES` next to `CLONE_VM | CLONE_VFORK` fails with
/// `EINVAL` and creates nothing (an emulator or sandbox that does not take
/// the flag there): children start on a copy of the fd table.
pub const CLONE_REFUSES_SHARED_FILES: u32 = 1 << 20;
/// `close_range(.., CLOSE_RANGE_UNSHARE)` fails in the child (a seccomp
/// filter that looks at the flags): the child takes its own fd table with
/// `unshare(CLONE_FILES)` instead, a copy of the whole table.
pub const NO_CLOSE_RANGE_UNSHARE: u32 = 1 << 21;

/// Linux 5.1 and older: no pidfd from `clone`, no `clone3`, no
/// `pidfd_open`, no `waitid(P_PIDFD)`: children are owned by pid. No
/// landlock.
pub const LINUX_5_1: u32 =
    CLONE_IGNORES_PIDFD | NO_CLONE3 | NO_PIDFD_OPEN | NO_WAITID_PIDFD | NO_LANDLOCK;
/// Linux 5.2: `CLONE_PIDFD` (signals through the pidfd), but no `clone3`,
/// no `pidfd_open` (so the fork path owns children by pid), no polling of
/// pidfds and no `waitid(P_PIDFD)`; no landlock.
pub const LINUX_5_2: u32 = NO_CLONE3 | NO_PIDFD_OPEN | NO_WAITID_PIDFD | NO_LANDLOCK;
/// Linux 5.3: pidfds everywhere but `waitid(P_PIDFD)`; `clone3` without
/// `CLONE_INTO_CGROUP`; no landlock.
pub const LINUX_5_3: u32 = NO_WAITID_PIDFD | NO_CLONE_INTO_CGROUP | NO_LANDLOCK;
/// A seccomp profile from before the pidfd calls were known: `clone3`,
/// `pidfd_open`, `pidfd_send_signal` and the landlock calls refused with
/// `EPERM`, on a kernel that has everything else.
pub const OLD_CONTAINER_PROFILE: u32 =
    NO_CLONE3 | NO_PIDFD_OPEN | NO_PIDFD_SEND_SIGNAL | NO_LANDLOCK | REFUSE_WITH_EPERM;
/// An emulator that refuses `clone` with `CLONE_PIDFD` (`EINVAL`) and has
/// no `clone3`, on a kernel that has `pidfd_open`.
pub const CLONE_PIDFD_REFUSED: u32 = CLONE_REFUSES_PIDFD | NO_CLONE3;

static FORCED: AtomicU32 = AtomicU32::new(0);

/// Makes the wrappers answer as the system described by `flags` would (see
/// the constants). For tests of the fallbacks only.
pub fn force(flags: u32) {
    FORCED.store(flags, Ordering::Relaxed);
}

/// The flags forced now (for a test that adds one for a moment and puts
/// the others back).
pub fn forced_flags() -> u32 {
    FORCED.load(Ordering::Relaxed)
}

/// Whether `flag` is forced. Child-safe (one atomic load).
#[inline]
pub(crate) fn forced(flag: u32) -> bool {
    FORCED.load(Ordering::Relaxed) & flag != 0
}

/// The landlock ABI the probe may answer at most, if capped. Parent-only.
pub(crate) fn forced_landlock_abi() -> Option<u32> {
    let cap = (FORCED.load(Ordering::Relaxed) & LANDLOCK_ABI_MASK) >> LANDLOCK_ABI_SHIFT;
    (cap != 0).then_some(cap)
}

/// The made-up answer of a call that does not exist: `ENOSYS`, or `EPERM`
/// under [`REFUSE_WITH_EPERM`]. Child-safe.
#[inline]
pub(crate) fn missing() -> Errno {
    if forced(REFUSE_WITH_EPERM) {
        Errno::PERM
    } else {
        Errno::NOSYS
    }
}

/// The made-up answer of a call that does not know an argument: `EINVAL`,
/// or `EPERM` under [`REFUSE_WITH_EPERM`]. Child-safe.
#[inline]
pub(crate) fn unknown_argument() -> Errno {
    if forced(REFUSE_WITH_EPERM) {
        Errno::PERM
    } else {
        Errno::INVAL
    }
}
