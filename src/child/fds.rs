//! Placing the planned fds and closing every other one.

use std::mem::{ManuallyDrop, MaybeUninit};
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

use rustix::io::{DupFlags, Errno, FdFlags};

use super::report::{At, Failure};
use super::Carried;
use crate::error::Stage;
use crate::frozen::Frozen;
use crate::sys;

/// Where a planned fd comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Src {
    /// An fd open in the parent (owned by the plan, or borrowed).
    Fd(RawFd),
    /// The `i`-th per-spawn fd (pipe ends made by the spawning call): see
    /// the `SLOT_*` numbers.
    Slot(usize),
}

/// Per-spawn slots: the child ends of stdin, stdout and stderr pipes; then
/// send buffers (buffered mode).
pub(crate) const SLOT_STDIN: usize = 0;
pub(crate) const SLOT_STDOUT: usize = 1;
pub(crate) const SLOT_STDERR: usize = 2;
pub(crate) const SLOT_SEND_BUFFERS: usize = 3;

/// How the child closes the fds it does not keep (see [`close_others`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseFds {
    /// `close_range(CLOSE_RANGE_CLOEXEC)` over the gaps between targets.
    Cloexec,
    /// Plain `close_range` over the gaps between every kept fd.
    Close,
    /// A walk of `/proc/self/fd`.
    Walk,
    /// A scan of the fd numbers with `poll(2)` (see [`close_by_polling`]):
    /// needs neither `close_range` nor `/proc`.
    Poll,
}

/// One planned fd: `src` becomes `dst` in the child.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FdMap {
    pub src: Src,
    pub dst: RawFd,
    /// The stage reported when placing it fails.
    pub stage: Stage,
    /// An inherited stream: the parent may not have it, and then neither
    /// does the child.
    pub optional: bool,
}

/// The fd plan the child reads.
#[derive(Debug)]
pub(crate) struct Fds {
    pub maps: Frozen<[FdMap]>,
    /// Every target fd, sorted.
    pub targets: Frozen<[RawFd]>,
    /// The highest fd the plan names (sources and targets).
    pub max_static_fd: RawFd,
    /// How the child closes inherited fds.
    pub close: CloseFds,
    /// The soft `RLIMIT_NOFILE` when the plan was built (clamped to
    /// `RawFd`): polling scans at least the fd numbers below it.
    pub nofile: RawFd,
}

impl Fds {
    /// Whether `fd` is some planned target. Child-safe.
    #[inline]
    fn is_target(&self, fd: RawFd) -> bool {
        self.targets.binary_search(&fd).is_ok()
    }
}

/// `dup3(src, dst, flags)` onto a raw target number.
fn dup_onto(src: RawFd, dst: RawFd, flags: DupFlags) -> Result<(), Errno> {
    // SAFETY: the caller checked src != dst; `src` is only borrowed for the
    // call.
    let source = unsafe { BorrowedFd::borrow_raw(src) };
    // SAFETY: the target number is wrapped without ever being closed by us
    // (ManuallyDrop): dup3 replaces whatever is there.
    let mut target = ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(dst) });
    rustix::io::dup3(source, &mut target, flags)
}

/// The fd number a source stands for in this spawn.
fn source_fd(slots: &[RawFd], src: Src) -> Result<RawFd, Errno> {
    match src {
        Src::Fd(fd) => Ok(fd),
        Src::Slot(i) => slots.get(i).copied().ok_or(Errno::BADF),
    }
}

/// A child started on its parent's fd table (`end` ≥ 0; see
/// `spawn::clone`) takes one of its own, holding the fds below `end` (every
/// fd the plan, the spawn's pipes and the carried fds use is below it) and
/// nothing above: the parent's other fds are never copied, and need no
/// closing. A child started on a copy (`end` < 0) has nothing to do. The
/// fds below `end` that it does not keep are closed by [`close_others`],
/// as in any child.
///
/// One fd of the table is not the parent's: the pidfd the clone made for
/// this very child, which the kernel put into the shared table at the
/// lowest free number, and whose number it stored at `pidfd_slot` before
/// the child ran. Where the parent's standard streams are closed that is
/// 0, 1 or 2, which the child would take for an inherited stream (the
/// parent moves its own copy above them afterwards): the child closes its
/// copy at once.
pub(crate) fn own_table(end: RawFd, pidfd_slot: *const std::ffi::c_int) -> Result<(), Errno> {
    let Ok(end) = u32::try_from(end) else {
        return Ok(());
    };
    sys::fd::unshare_table_below(end)?;
    if !pidfd_slot.is_null() {
        // SAFETY: the slot lives in the spawning frame, suspended until this
        // process execs or exits (CLONE_VFORK); the kernel wrote it before
        // this process ran, and nothing writes it while this one runs.
        let pidfd = unsafe { pidfd_slot.read_volatile() };
        if let Ok(pidfd) = u32::try_from(pidfd) {
            if pidfd < end {
                // SAFETY: the number is this process's copy of the pidfd,
                // which nothing in this process owns or uses.
                unsafe { rustix::io::close(pidfd as RawFd) };
            }
        }
    }
    Ok(())
}

/// Places every planned fd, `FD_CLOEXEC` cleared only on the kept ones.
///
/// A source that is also some mapping's target could be overwritten before it
/// is read, so such sources are first copied to `base + i`, where `base` is
/// above every fd this child knows of: the relocation needs no memory, and
/// pass 2 recomputes where mapping `i` went. The carried fds, which the
/// child uses after this step (the report and pause pipes, the landlock
/// ruleset, the plan's `/proc` and selinuxfs fds), are moved the same way
/// when they sit on a target, to `base + maps.len() + k`, and `carried`
/// says where they went: a planned fd must never be `dup`ed over them.
pub(crate) fn place(fds: &Fds, slots: &[RawFd], carried: &mut Carried) -> Result<(), Failure> {
    let maps = &*fds.maps;
    let mut base = fds.max_static_fd;
    for fd in carried.all().iter().chain(slots) {
        base = base.max(*fd);
    }
    let base = base.saturating_add(1);
    let slot = |i: usize| base.saturating_add(i.min(i32::MAX as usize) as RawFd);

    for (k, fd) in carried.all_mut().into_iter().enumerate() {
        if *fd >= 0 && fds.is_target(*fd) {
            let moved = slot(maps.len().saturating_add(k));
            dup_onto(*fd, moved, DupFlags::CLOEXEC).at(Stage::Fds)?;
            *fd = moved;
        }
    }
    for (i, m) in maps.iter().enumerate() {
        let src = source_fd(slots, m.src).at(m.stage)?;
        if src != m.dst && fds.is_target(src) {
            match dup_onto(src, slot(i), DupFlags::CLOEXEC) {
                Ok(()) => {}
                // The parent lacks this inherited stream: make sure the slot
                // holds nothing, so pass 2 fails the same way and closes dst.
                Err(Errno::BADF) if m.optional => {
                    let n = slot(i) as u32;
                    let _ = sys::fd::close_range(n, n, 0);
                }
                Err(e) => return Err(e).at(m.stage),
            }
        }
    }
    for (i, m) in maps.iter().enumerate() {
        let mut src = source_fd(slots, m.src).at(m.stage)?;
        if src != m.dst && fds.is_target(src) {
            src = slot(i);
        }
        let result = if src == m.dst {
            // SAFETY: the fd number is only borrowed for one fcntl call.
            rustix::io::fcntl_setfd(unsafe { BorrowedFd::borrow_raw(src) }, FdFlags::empty())
        } else {
            // dup3 without flags: the copy is not close-on-exec.
            dup_onto(src, m.dst, DupFlags::empty())
        };
        match result {
            Ok(()) => {}
            // An inherited stream the parent does not have: the child does
            // not get it either.
            Err(Errno::BADF) if m.optional => {
                let _ = sys::fd::close_range(m.dst as u32, m.dst as u32, 0);
            }
            Err(e) => return Err(e).at(m.stage),
        }
    }
    Ok(())
}

/// Closes everything but the planned targets and the carried fds (report
/// and pause pipes, the landlock ruleset, the plan's `/proc` and selinuxfs
/// fds), in the cheapest way this kernel allows:
///
/// * `CLOSE_RANGE_CLOEXEC` over the gaps between targets: one system call
///   for a child with only stdio. The fds are then closed by the exec
///   itself; the carried fds, close-on-exec already, need no gap of their
///   own, and the steps after this one (and a `pre_exec` hook, as GLib does
///   for its `child_setup`) can still use them;
/// * plain `close_range` over the gaps between targets and carried fds
///   (Linux 5.9, 5.10);
/// * a `/proc/self/fd` walk without `close_range`;
/// * without `/proc` either (or when the walk fails in any way, `EMFILE`
///   included: it needs an fd of its own), a scan of every fd number below
///   the soft `RLIMIT_NOFILE` with `poll(2)`, which needs neither.
///
/// Each method falls through to the next when this system refuses it, so a
/// seccomp filter installed after `build()` chose a method still ends in one
/// that works.
pub(crate) fn close_others(fds: &Fds, carried: &Carried) -> Result<(), Failure> {
    let mut extra = carried.all();
    extra.sort_unstable();
    let keep = Merged {
        a: &fds.targets,
        b: &extra,
    };
    if fds.close == CloseFds::Cloexec {
        let targets = Merged {
            a: &fds.targets,
            b: &[],
        };
        match close_gaps(targets, sys::fd::CLOSE_RANGE_CLOEXEC) {
            Ok(()) => return Ok(()),
            Err(Errno::NOSYS) | Err(Errno::PERM) | Err(Errno::INVAL) => {}
            Err(e) => return Err(e).at(Stage::CloseFds),
        }
    }
    if matches!(fds.close, CloseFds::Cloexec | CloseFds::Close) {
        match close_gaps(keep, 0) {
            Ok(()) => return Ok(()),
            Err(Errno::NOSYS) | Err(Errno::PERM) => {}
            Err(e) => return Err(e).at(Stage::CloseFds),
        }
    }
    // Whatever the walk closed before failing, polling finishes the job.
    if fds.close != CloseFds::Poll && close_by_walking(|fd| keep.contains(fd)).is_ok() {
        return Ok(());
    }
    close_by_polling(|fd| keep.contains(fd), scan_end(fds, keep)).at(Stage::CloseFds)
}

/// Two sorted fd lists seen as one sorted set; negative entries are ignored.
#[derive(Clone, Copy)]
struct Merged<'a> {
    a: &'a [RawFd],
    b: &'a [RawFd],
}

impl Merged<'_> {
    fn contains(&self, fd: RawFd) -> bool {
        // A negative entry stands for "no such fd" (no pause pipe, say).
        fd >= 0 && (self.a.binary_search(&fd).is_ok() || self.b.contains(&fd))
    }

    /// The highest kept fd, or -1.
    fn highest(&self) -> RawFd {
        let a = self.a.last().copied().unwrap_or(-1);
        self.b.iter().copied().fold(a, RawFd::max)
    }

    /// Calls `f` for each kept fd in increasing order (duplicates possible).
    fn for_each(&self, mut f: impl FnMut(RawFd) -> Result<(), Errno>) -> Result<(), Errno> {
        let (mut a, mut b) = (self.a.iter().peekable(), self.b.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (None, None) => return Ok(()),
                (Some(x), Some(y)) if y < x => b.next(),
                (Some(_), _) => a.next(),
                (None, Some(_)) => b.next(),
            };
            if let Some(&fd) = next {
                if fd >= 0 {
                    f(fd)?;
                }
            }
        }
    }
}

/// `close_range(.., flags)` over every gap between kept fds, then above the
/// last one.
fn close_gaps(keep: Merged<'_>, flags: u32) -> Result<(), Errno> {
    let mut low: u32 = 0;
    keep.for_each(|fd| {
        let fd = fd as u32;
        if fd > low {
            // `fd > low >= 0`, so `fd - 1` does not wrap.
            sys::fd::close_range(low, fd.saturating_sub(1), flags)?;
        }
        low = low.max(fd.saturating_add(1));
        Ok(())
    })?;
    if low < u32::MAX {
        sys::fd::close_range(low, u32::MAX, flags)?;
    }
    Ok(())
}

/// The fallback: walk `/proc/self/fd` with getdents64 into a stack buffer and
/// close what is not kept. Never a loop up to RLIMIT_NOFILE.
fn close_by_walking(keep: impl Fn(RawFd) -> bool) -> Result<(), Errno> {
    use rustix::fs::{Mode, OFlags, RawDir, CWD};
    let dir = rustix::fs::openat(
        CWD,
        c"/proc/self/fd",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let dir_fd = std::os::fd::AsRawFd::as_raw_fd(&dir);
    let mut buf = [MaybeUninit::<u8>::uninit(); 1024];
    let mut entries = RawDir::new(&dir, &mut buf);
    while let Some(entry) = entries.next() {
        let entry = entry?;
        let Some(fd) = parse_fd(entry.file_name().to_bytes()) else {
            continue; // "." and ".."
        };
        if fd != dir_fd && !keep(fd) {
            // SAFETY: the fd is open in this process and owned by nobody
            // that will use it again here: it is being closed before exec.
            unsafe { rustix::io::close(fd) };
        }
    }
    Ok(())
}

/// Fd numbers per `poll` call in [`close_by_polling`]: 2 KiB of stack.
const POLL_CHUNK: usize = 256;

/// Where [`close_by_polling`] stops: above every fd that can be open.
///
/// An fd can only be opened below the soft `RLIMIT_NOFILE` in force at that
/// moment, so the scan covers the numbers below the larger of the limit
/// `build()` saw and the one in force now (read here, in the child: a
/// limit raised between `build()` and `spawn()` counts), and every kept
/// fd. What it cannot see is an fd opened above a limit that was lowered
/// afterwards, by the parent itself (a child's own `rlimit` is set later,
/// after this step): a process that lowers its own limit below its open
/// fds is on its own here, as with every fd-closing loop bounded by the
/// limit.
fn scan_end(fds: &Fds, keep: Merged<'_>) -> RawFd {
    let now = sys::fd::nofile_soft_limit().map_or(0, |n| RawFd::try_from(n).unwrap_or(RawFd::MAX));
    fds.nofile.max(now).max(keep.highest().saturating_add(1))
}

/// The last fallback: asks `poll(2)` about the fd numbers below `end`,
/// [`POLL_CHUNK`] at a time in a stack array, and closes each open one
/// (every entry but those answered `POLLNVAL`) that is not kept.
///
/// One system call per 256 numbers, plus one `close` per fd actually open:
/// never a blind `close` loop. Below the usual limits (1024 to 65536) that
/// is 4 to 256 calls; at 2^20, a container's usual limit, about 4096 calls,
/// some 20 ms. It runs only where neither `close_range` nor `/proc` is
/// there, where every spawn used to fail.
fn close_by_polling(keep: impl Fn(RawFd) -> bool, end: RawFd) -> Result<(), Errno> {
    let mut set = [sys::fd::pollfd(-1); POLL_CHUNK];
    let mut chunk = POLL_CHUNK;
    let mut base: RawFd = 0;
    while base < end {
        let left = usize::try_from(end.saturating_sub(base)).unwrap_or(0);
        let Some(part) = set.get_mut(..chunk.min(left)) else {
            return Err(Errno::INVAL);
        };
        let mut next = base;
        for entry in part.iter_mut() {
            *entry = sys::fd::pollfd(next);
            next = next.saturating_add(1);
        }
        match sys::fd::poll_now(part) {
            Ok(()) => {}
            Err(Errno::INTR) => continue,
            // poll refuses more entries than RLIMIT_NOFILE: ask fewer.
            Err(Errno::INVAL) if part.len() > 1 => {
                chunk = part.len().div_euclid(2);
                continue;
            }
            Err(e) => return Err(e),
        }
        for entry in part.iter() {
            if entry.revents & sys::fd::POLLNVAL == 0 && !keep(entry.fd) {
                // SAFETY: poll just found this fd open; nobody in this
                // process will use it again: it is being closed before exec.
                unsafe { rustix::io::close(entry.fd) };
            }
        }
        base = next;
    }
    Ok(())
}

/// Parses a decimal fd number without allocating or panicking.
fn parse_fd(name: &[u8]) -> Option<RawFd> {
    if name.is_empty() {
        return None;
    }
    let mut n: RawFd = 0;
    for &b in name {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n = n.checked_mul(10)?.checked_add(RawFd::from(digit))?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_names_parse_strictly() {
        assert_eq!(parse_fd(b"0"), Some(0));
        assert_eq!(parse_fd(b"1234"), Some(1234));
        assert_eq!(parse_fd(b"."), None);
        assert_eq!(parse_fd(b""), None);
        assert_eq!(parse_fd(b"1a"), None);
        assert_eq!(parse_fd(b"99999999999"), None);
    }

    #[test]
    fn merged_keeps_order_and_ignores_negatives() {
        let a = [0, 1, 2, 7];
        let b = [-1, 4];
        let m = Merged { a: &a, b: &b };
        let mut seen = [0; 8];
        let mut n = 0;
        m.for_each(|fd| {
            seen[n] = fd;
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(&seen[..n], &[0, 1, 2, 4, 7]);
        assert!(m.contains(4) && m.contains(7) && !m.contains(3) && !m.contains(-1));
        assert_eq!(m.highest(), 7);
        let b = [-1, 9];
        assert_eq!(Merged { a: &a, b: &b }.highest(), 9);
        assert_eq!(
            Merged {
                a: &[],
                b: &[-1, -1]
            }
            .highest(),
            -1
        );
    }
}
