//! Namespaces: the kinds the child starts in new ([`Command::unshare`]),
//! the id maps of its new user namespace ([`Command::map_root`],
//! [`Command::uid_map`], [`Command::gid_map`]), the namespaces it joins
//! ([`Command::join_namespace`]) and its hostname ([`Command::hostname`]).
//!
//! # Who writes the id maps
//!
//! The kernel takes a map written from inside the new user namespace only
//! if it is one line mapping the writer's own effective id (for `gid_map`,
//! with `setgroups` denied first). Every other map needs a writer outside
//! it with `CAP_SETUID` / `CAP_SETGID` over the caller's namespace, in the
//! writer and in the opener of the file (user_namespaces(7); the kernel's
//! `new_idmap_permitted`). Hence two mechanisms:
//!
//! * [`map_root`](Command::map_root) is such a self map, and the child
//!   writes it itself, as its first step after the signal reset: the spawn
//!   stays on the vfork-style path (`CLONE_VM | CLONE_VFORK`, no copy of
//!   the parent's page tables);
//! * [`uid_map`](Command::uid_map) / [`gid_map`](Command::gid_map) ranges
//!   are written by the parent (Go's rule): the command takes the fork path
//!   (a `clone` without `CLONE_VM`, with the same namespace flags,
//!   `CLONE_NEWUSER` among them), the child waits at a gate (a
//!   close-on-exec pipe) right after its signal reset, and the parent
//!   writes `/proc/<pid>/uid_map`, then `setgroups` (`"deny"` only when the
//!   spawning thread lacks `CAP_SETGID`, as the kernel requires of an
//!   unprivileged writer) and `gid_map`, each with one write of a text
//!   made at `build()`, then releases it. A refused write kills and reaps
//!   the child, which never execs.

use std::ffi::OsString;
use std::fmt;
use std::ops::{BitOr, BitOrAssign};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::thread::LinkNameSpaceType;

use super::Command;
use crate::child::namespaces::{IdMaps, Join, NsPlan};
use crate::error::{BuildErrorKind, Error};
use crate::frozen::Frozen;
use crate::mode::Mode;
use crate::spawn::id_maps::IdRanges;
use crate::sys::clone::CLONE_NEWTIME;

/// A set of namespace kinds (bit flags; `|` combines them).
///
/// The values are the kernel's `CLONE_NEW*` flags.
///
/// ```
/// use safespawn::Namespaces;
/// let ns = Namespaces::USER | Namespaces::NET;
/// assert!(ns.contains(Namespaces::NET));
/// assert!(!ns.contains(Namespaces::PID));
/// assert!(Namespaces::all().contains(ns));
/// assert_eq!(Namespaces::empty() | Namespaces::UTS, Namespaces::UTS);
/// assert_eq!(format!("{ns:?}"), "USER | NET");
/// ```
///
/// # Errors
///
/// None here: a set is only checked when a command uses it (see
/// [`Command::unshare`] and [`Command::join_namespace`]).
///
/// # References
///
/// [`namespaces(7)`](https://man7.org/linux/man-pages/man7/namespaces.7.html),
/// [`clone(2)`](https://man7.org/linux/man-pages/man2/clone.2.html),
/// [`user_namespaces(7)`](https://man7.org/linux/man-pages/man7/user_namespaces.7.html).
/// Minimum kernels: user namespaces 3.8 (unprivileged), cgroup 4.6, time
/// 5.6.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Namespaces(u64);

impl Namespaces {
    /// A user namespace (`CLONE_NEWUSER`; unprivileged since Linux 3.8,
    /// where the system allows it).
    pub const USER: Namespaces = Namespaces(libc::CLONE_NEWUSER as u64);
    /// A mount namespace (`CLONE_NEWNS`; Linux 2.4.19).
    pub const MOUNT: Namespaces = Namespaces(libc::CLONE_NEWNS as u64);
    /// A pid namespace (`CLONE_NEWPID`; Linux 2.6.24): the child is its
    /// pid 1 (see [`Command::unshare`]).
    pub const PID: Namespaces = Namespaces(libc::CLONE_NEWPID as u64);
    /// A network namespace (`CLONE_NEWNET`; Linux 2.6.29): only a loopback
    /// interface, down.
    pub const NET: Namespaces = Namespaces(libc::CLONE_NEWNET as u64);
    /// A UTS namespace (`CLONE_NEWUTS`; Linux 2.6.19): its own hostname.
    pub const UTS: Namespaces = Namespaces(libc::CLONE_NEWUTS as u64);
    /// An IPC namespace (`CLONE_NEWIPC`; Linux 2.6.19).
    pub const IPC: Namespaces = Namespaces(libc::CLONE_NEWIPC as u64);
    /// A cgroup namespace (`CLONE_NEWCGROUP`; Linux 4.6).
    pub const CGROUP: Namespaces = Namespaces(libc::CLONE_NEWCGROUP as u64);
    /// A time namespace (`CLONE_NEWTIME`, 0x80; Linux 5.6). Only `clone3`
    /// takes it (in the old `clone` that bit is part of the exit signal).
    pub const TIME: Namespaces = Namespaces(CLONE_NEWTIME);

    /// Every kind, with its name, in the order they are listed.
    const NAMED: [(Namespaces, &'static str); 8] = [
        (Namespaces::USER, "USER"),
        (Namespaces::MOUNT, "MOUNT"),
        (Namespaces::PID, "PID"),
        (Namespaces::NET, "NET"),
        (Namespaces::UTS, "UTS"),
        (Namespaces::IPC, "IPC"),
        (Namespaces::CGROUP, "CGROUP"),
        (Namespaces::TIME, "TIME"),
    ];

    /// No kind.
    ///
    /// ```
    /// assert!(safespawn::Namespaces::empty().is_empty());
    /// ```
    pub const fn empty() -> Namespaces {
        Namespaces(0)
    }

    /// Every kind.
    ///
    /// ```
    /// use safespawn::Namespaces;
    /// assert!(Namespaces::all().contains(Namespaces::TIME | Namespaces::USER));
    /// ```
    pub const fn all() -> Namespaces {
        Namespaces(
            Namespaces::USER.0
                | Namespaces::MOUNT.0
                | Namespaces::PID.0
                | Namespaces::NET.0
                | Namespaces::UTS.0
                | Namespaces::IPC.0
                | Namespaces::CGROUP.0
                | Namespaces::TIME.0,
        )
    }

    /// Whether every kind in `other` is in `self`.
    ///
    /// ```
    /// use safespawn::Namespaces;
    /// assert!((Namespaces::PID | Namespaces::NET).contains(Namespaces::PID));
    /// ```
    pub const fn contains(self, other: Namespaces) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set has no kind.
    ///
    /// ```
    /// assert!(!safespawn::Namespaces::NET.is_empty());
    /// ```
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The `CLONE_NEW*` bits.
    pub(crate) const fn bits(self) -> u64 {
        self.0
    }

    /// The kinds in the set, one at a time, with their names.
    fn each(self) -> impl Iterator<Item = (Namespaces, &'static str)> {
        Namespaces::NAMED
            .into_iter()
            .filter(move |(k, _)| self.contains(*k))
    }
}

impl Default for Namespaces {
    fn default() -> Self {
        Namespaces::empty()
    }
}

impl BitOr for Namespaces {
    type Output = Namespaces;
    fn bitor(self, rhs: Namespaces) -> Namespaces {
        Namespaces(self.0 | rhs.0)
    }
}

impl BitOrAssign for Namespaces {
    fn bitor_assign(&mut self, rhs: Namespaces) {
        self.0 |= rhs.0;
    }
}

/// `USER | NET`; `empty()` for the empty set.
impl fmt::Debug for Namespaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("empty()");
        }
        for (i, (_, name)) in self.each().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

/// One range of a `uid_map` / `gid_map` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

impl IdRange {
    /// The call, as errors name it: `uid_map(0, 100000, 65536)`.
    fn shown(&self, kind: &str) -> String {
        format!("{kind}({}, {}, {})", self.inside, self.outside, self.count)
    }
}

/// What a command records about namespaces.
#[derive(Debug, Default)]
pub(crate) struct NamespacesConfig {
    pub unshare: Namespaces,
    pub map_root: bool,
    /// `uid_map` calls, in order.
    pub uid_ranges: Vec<IdRange>,
    /// `gid_map` calls, in order.
    pub gid_ranges: Vec<IdRange>,
    pub joins: Vec<(OwnedFd, Namespaces)>,
    pub hostname: Option<OsString>,
}

impl<M: Mode> Command<M> {
    /// The child starts in new namespaces of the kinds in `ns` (repeated
    /// calls add kinds). They are created by the `clone` that makes the
    /// child, on every spawn path (the fork path of hooks and
    /// `spawn_paused` uses a `clone` without `CLONE_VM` instead of `fork`),
    /// so nothing of the child ever runs in the caller's namespaces of
    /// those kinds.
    ///
    /// Without privilege (`CAP_SYS_ADMIN`) every kind but `USER` needs
    /// `USER` too: the kernel creates the user namespace first and the
    /// others owned by it. [`map_root`](Command::map_root) gives the child
    /// an identity in it.
    ///
    /// **`PID`**: the child is pid 1 of its namespace, which means:
    /// * the kernel delivers it no signal for which the program has not
    ///   installed a handler, except `SIGKILL` and `SIGSTOP` sent from
    ///   outside: a `SIGTERM`, or a
    ///   [`parent_death_signal`](Command::parent_death_signal) other than
    ///   `SIGKILL`, is ignored by a program that does not handle it
    ///   (dropping a [`Running`](crate::Running) still ends it: its last
    ///   resort is `SIGKILL`);
    /// * orphans in the namespace are reparented to it, so it has to reap
    ///   them;
    /// * when it exits, the kernel kills every other process of the
    ///   namespace;
    /// * its `getppid()` is 0 (the parent is outside the namespace), so the
    ///   child's check that its parent is still alive once the parent-death
    ///   signal is armed cannot be made: it is skipped. What is lost: a
    ///   parent that dies in the moment between the clone and arming the
    ///   signal goes unnoticed (on the default path the spawning thread is
    ///   suspended in that moment, so only the whole process being killed
    ///   can do it).
    ///
    /// safespawn starts no init of its own in a new pid namespace: the
    /// program is pid 1 (as with Go's `Cloneflags` and bubblewrap's
    /// `--as-pid-1`). An init would be a process that never execs, which
    /// the vfork-style path cannot host (the spawning thread waits for the
    /// exec), it would put a process of ours between the caller and the
    /// program's status, and it would make signals to the pid reach the
    /// init instead of the program. A program that starts children which
    /// may outlive their parents should run under a small init (`tini`,
    /// `dumb-init`, `catatonit`) given as the command's program.
    ///
    /// A daemon cannot have `PID`: its intermediate would be pid 1, and its
    /// exit would kill the daemon.
    ///
    /// **`TIME`** is only taken by `clone3` (Linux 5.3; time namespaces are
    /// 5.6); the child enters it at exec (until then it shares the caller's
    /// memory, and with it the clock pages).
    ///
    /// # Errors
    ///
    /// `build()` refuses ([`BuildErrorKind::Conflict`]) `PID` on a
    /// [`daemonize`](Command::daemonize)d command, `TIME` where this process
    /// cannot use `clone3` (an architecture without the `clone3` path, or a
    /// system that has refused it before), and a kind also given to
    /// [`join_namespace`](Command::join_namespace). The kernel's refusal
    /// (`EPERM` without privilege, `ENOSPC` past a namespace limit,
    /// `EINVAL` for a kind this kernel lacks, `ENOSYS` for `TIME` where
    /// `clone3` turns out to be missing) is [`Error::Spawn`] at stage
    /// [`Namespace`](crate::Stage::Namespace).
    ///
    /// # References
    ///
    /// [`clone(2)`](https://man7.org/linux/man-pages/man2/clone.2.html),
    /// [`namespaces(7)`](https://man7.org/linux/man-pages/man7/namespaces.7.html),
    /// [`pid_namespaces(7)`](https://man7.org/linux/man-pages/man7/pid_namespaces.7.html),
    /// [`user_namespaces(7)`](https://man7.org/linux/man-pages/man7/user_namespaces.7.html).
    /// Minimum kernels: user namespaces 3.8 (unprivileged), cgroup 4.6,
    /// time 5.6.
    ///
    /// ```no_run
    /// use safespawn::{Command, Namespaces};
    /// // No network inside; any user, where unprivileged user namespaces are allowed.
    /// let status = Command::new("true")
    ///     .unshare(Namespaces::USER | Namespaces::NET)
    ///     .status()?;
    /// assert!(status.success());
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn unshare(mut self, ns: Namespaces) -> Self {
        self.cfg.ns.unshare |= ns;
        self
    }

    /// Makes the caller's effective uid and gid appear as 0 in the child's
    /// new user namespace (one-line self maps, `"0 <euid> 1"` and
    /// `"0 <egid> 1"`, with `setgroups` denied first, as the kernel requires
    /// of an unprivileged writer). This needs no privilege. It implies
    /// [`unshare`](Command::unshare)`(Namespaces::USER)`.
    ///
    /// The child writes the maps itself, as its first step after the
    /// signal reset: until they are written its ids are unmapped (they show
    /// as the overflow id 65534 and it cannot create files), so every later
    /// step needs them. The map texts are made at `build()` from the
    /// caller's effective ids then. Because the child writes them itself,
    /// `map_root` keeps the spawn on the vfork-style path (no copy of the
    /// parent's page tables); maps of other ranges need a writer outside
    /// the namespace and the fork path: see [`uid_map`](Command::uid_map).
    ///
    /// Root inside is not root outside: the child has every capability
    /// over its own namespaces and none over the caller's. (With mounts,
    /// the program ends up in a nested user namespace that locks its
    /// filesystem view, and with it loses its capabilities over the other
    /// new namespaces: see [`mount`](Command::mount).)
    ///
    /// # Errors
    ///
    /// `build()` refuses it together with [`uid_map`](Command::uid_map) or
    /// [`gid_map`](Command::gid_map) ([`BuildErrorKind::Conflict`]: a map
    /// is written once). A refused write is [`Error::Spawn`] at stage
    /// [`IdMap`](crate::Stage::IdMap): `EPERM` where the system allows no
    /// unprivileged map, and `EACCES` when the calling process is not
    /// dumpable (after an in-process uid change, say, which makes its
    /// `/proc` files root's: the child shares or copies its memory until
    /// exec, and with it that flag; `PR_SET_DUMPABLE` restores it),
    /// `ENOENT` where `/proc` is not mounted. A kernel without
    /// `/proc/self/setgroups` (before 3.19) is fine.
    ///
    /// # References
    ///
    /// [`user_namespaces(7)`](https://man7.org/linux/man-pages/man7/user_namespaces.7.html)
    /// ("User and group ID mappings", "The /proc/pid/setgroups file");
    /// Linux 3.8.
    ///
    /// ```no_run
    /// use safespawn::Command;
    /// let out = Command::new("id").arg("-u").map_root().capture_stdout().run()?;
    /// assert_eq!(out.stdout, b"0\n");
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn map_root(mut self) -> Self {
        self.cfg.ns.map_root = true;
        self
    }

    /// Maps `count` user ids of the child's new user namespace, from
    /// `inside` on, to the caller's ids from `outside` on: one line
    /// `inside outside count` of the child's `uid_map`. One range per call;
    /// repeated calls add ranges, in call order, to one map. Needs
    /// [`unshare`](Command::unshare)`(Namespaces::USER)`.
    ///
    /// **Who writes it.** The kernel takes a map other than the writer's
    /// own single id only from a process outside the new namespace with
    /// `CAP_SETUID` over the caller's namespace (for `gid_map`,
    /// `CAP_SETGID`); the child has capabilities only inside its new
    /// namespace. So the parent writes the maps (Go's rule): the spawn
    /// takes the fork path (a `clone` without `CLONE_VM`, with the same
    /// namespace flags, as for [`pre_exec`](Command::pre_exec) hooks), and
    /// the child, right after its signal reset, waits at a close-on-exec
    /// pipe while the parent writes `/proc/<pid>/uid_map`, then
    /// `/proc/<pid>/setgroups` and `/proc/<pid>/gid_map` (see
    /// [`gid_map`](Command::gid_map)), each with one write of a text made
    /// at `build()`; then one byte releases it. The child never execs with
    /// its maps unwritten: when a write is refused the parent kills and
    /// reaps it, and when the parent dies meanwhile it exits.
    ///
    /// **Without privilege** the only range a caller may map is its own
    /// effective uid, `count` 1: `uid_map(0, euid, 1)` is the self map of
    /// [`map_root`](Command::map_root), which needs no fork path; a range
    /// at another inside id (`uid_map(1000, euid, 1)`) works too.
    ///
    /// **What it costs.** The fork path copies the parent's page tables
    /// into the child (a cost that grows with the parent's memory, like
    /// std's `pre_exec` path), and the parent's writes add three opens and
    /// writes in `/proc` per spawn; nothing is allocated.
    /// [`map_root`](Command::map_root) stays on the fast vfork-style path.
    /// BENCHMARKS.md ("User namespaces: self map vs ranges") has figures.
    ///
    /// **The child's ids.** A map changes no credentials: the child keeps
    /// the caller's ids, which show inside through the map or, where the
    /// map does not cover them, as the overflow id (65534,
    /// `/proc/sys/kernel/overflowuid`). Root's child with
    /// `uid_map(0, 100000, 65536)` is uid 65534 inside (root's own uid 0 is
    /// not in the map) until [`uid`](Command::uid)`(0)` (or `uid(1000)`)
    /// switches it to an id of the map, which it may: it has every
    /// capability inside its new namespace (and is uid 100000, or 101000,
    /// outside). A caller whose own uid is in the map needs no switch.
    ///
    /// A `uid_map` without a [`gid_map`](Command::gid_map) is allowed: the
    /// child's groups are then unmapped (the overflow gid) and no
    /// `setgid` to a group inside can succeed.
    ///
    /// # Errors
    ///
    /// `build()` refuses, naming the range (`uid_map(0, 100000, 65536)`):
    ///
    /// * [`BuildErrorKind::Conflict`]: no `unshare(USER)`; together with
    ///   [`map_root`](Command::map_root), which writes a self map of its
    ///   own; together with [`forbid_fork`](Command::forbid_fork);
    /// * [`BuildErrorKind::Invalid`]: `count` 0; `inside + count` or
    ///   `outside + count` above `u32::MAX` (the kernel refuses a range
    ///   that wraps); two ranges of the map whose inside ids or outside ids
    ///   overlap (the message names both);
    /// * [`BuildErrorKind::TooLong`]: more than 340 ranges (the kernel's
    ///   limit since 4.15), or a map text (one `inside outside count\n`
    ///   line per range) of a page (4096 bytes) or more, which the kernel
    ///   does not take in one write.
    ///
    /// A refused write is [`Error::Spawn`] at stage
    /// [`IdMap`](crate::Stage::IdMap) with the kernel's errno and the file
    /// as its `path` (`/proc/<pid>/uid_map`): `EPERM` for a range this
    /// caller may not map (a plain user asking for ids other than its own,
    /// outside ids not mapped in the caller's own namespace, outside uid 0
    /// without `CAP_SETFCAP` on Linux 5.12 and later) or where the system
    /// forbids unprivileged maps (Ubuntu's
    /// `apparmor_restrict_unprivileged_userns`); `EACCES` when the calling
    /// process is not dumpable (its `/proc` files, and its child's, are
    /// then root's); `EINVAL` for more than 5 ranges before Linux 4.15;
    /// `ENOENT` without `/proc`.
    ///
    /// # References
    ///
    /// [`user_namespaces(7)`](https://man7.org/linux/man-pages/man7/user_namespaces.7.html)
    /// ("User and group ID mappings: uid_map and gid_map"); Linux 3.8, 340
    /// ranges since 4.15 (5 before).
    ///
    /// ```no_run
    /// use safespawn::{Command, Namespaces};
    /// // As root: 65536 ids from 100000 on, and the child root inside
    /// // (uid 100000 outside).
    /// let out = Command::new("id")
    ///     .unshare(Namespaces::USER)
    ///     .uid_map(0, 100000, 65536)
    ///     .gid_map(0, 100000, 65536)
    ///     .uid(0)
    ///     .gid(0)
    ///     .capture_stdout()
    ///     .run()?;
    /// assert!(out.stdout.starts_with(b"uid=0(root) gid=0(root)"));
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    ///
    /// ```
    /// use safespawn::{BuildErrorKind, Command, Namespaces};
    /// let err = Command::new("true").uid_map(0, 100000, 65536).build().unwrap_err();
    /// assert_eq!(err.build_kind(), Some(BuildErrorKind::Conflict)); // no unshare(USER)
    /// let err = Command::new("true")
    ///     .unshare(Namespaces::USER)
    ///     .uid_map(0, 100000, 10)
    ///     .uid_map(5, 200000, 10)
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.build_kind(), Some(BuildErrorKind::Invalid)); // inside 5..9 twice
    /// ```
    pub fn uid_map(mut self, inside: u32, outside: u32, count: u32) -> Self {
        self.cfg.ns.uid_ranges.push(IdRange {
            inside,
            outside,
            count,
        });
        self
    }

    /// Maps `count` group ids of the child's new user namespace, from
    /// `inside` on, to the caller's groups from `outside` on: one line of
    /// the child's `gid_map`, as [`uid_map`](Command::uid_map) does for
    /// user ids (one range per call, repeatable; needs `unshare(USER)`;
    /// written by the parent, on the fork path).
    ///
    /// **`setgroups`.** Before `gid_map` the parent writes `"deny"` to
    /// `/proc/<pid>/setgroups` only when the spawning thread lacks
    /// `CAP_SETGID`, which the kernel requires of an unprivileged writer
    /// (and which is then permanent: nobody in the namespace can call
    /// `setgroups(2)`). A privileged writer leaves it at `"allow"`, so the
    /// child's own [`groups`](Command::groups) / [`uid`](Command::uid)
    /// steps and the program (`sudo`, a container's init) can still set
    /// supplementary groups inside; writing `"deny"` unconditionally, as Go
    /// does by default, broke exactly that (containerd#10742). The check is
    /// made at each spawn: capabilities belong to a thread.
    ///
    /// A `gid_map` without a `uid_map` is allowed: the child's uid is then
    /// unmapped inside (the overflow uid, 65534), and no `setuid` to an
    /// inside uid can succeed.
    ///
    /// # Errors
    ///
    /// As [`uid_map`](Command::uid_map), naming `gid_map(..)`; without
    /// privilege the one range allowed is the caller's own effective gid,
    /// `count` 1. A refused `setgroups` write is [`Error::Spawn`] at stage
    /// [`IdMap`](crate::Stage::IdMap) too, with `/proc/<pid>/setgroups` as
    /// its path (a kernel without the file, before 3.19, is fine).
    ///
    /// # References
    ///
    /// [`user_namespaces(7)`](https://man7.org/linux/man-pages/man7/user_namespaces.7.html)
    /// ("User and group ID mappings: uid_map and gid_map", "The
    /// /proc/pid/setgroups file"); Linux 3.8, 340 ranges since 4.15 (5
    /// before), `setgroups` 3.19.
    ///
    /// ```no_run
    /// use safespawn::{Command, Namespaces};
    /// // A plain user: its own uid and gid as 0 inside, through the fork
    /// // path (map_root does the same on the fast path).
    /// let (uid, gid) = (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw());
    /// let out = Command::new("cat")
    ///     .arg("/proc/self/setgroups")
    ///     .unshare(Namespaces::USER)
    ///     .uid_map(0, uid, 1)
    ///     .gid_map(0, gid, 1)
    ///     .capture_stdout()
    ///     .run()?;
    /// assert_eq!(out.stdout, b"deny\n"); // unprivileged: setgroups denied
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    ///
    /// ```
    /// use safespawn::{BuildErrorKind, Command, Namespaces};
    /// let err = Command::new("true")
    ///     .unshare(Namespaces::USER)
    ///     .gid_map(0, 100000, 0)
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.build_kind(), Some(BuildErrorKind::Invalid)); // count 0
    /// assert!(err.to_string().contains("gid_map(0, 100000, 0)"), "{err}");
    /// ```
    pub fn gid_map(mut self, inside: u32, outside: u32, count: u32) -> Self {
        self.cfg.ns.gid_ranges.push(IdRange {
            inside,
            outside,
            count,
        });
        self
    }

    /// The child joins the existing namespace `fd` refers to, of the one
    /// kind `ns` (`setns(fd, ns)`): an fd of `/proc/PID/ns/KIND`, or a
    /// pidfd (Linux 5.8). Repeatable; the joins are made in call order,
    /// after the child's own new namespaces exist and its maps are written,
    /// and before its fd steps, so the fd is used before anything can move
    /// or close it. Joining a user namespace first lets later joins use the
    /// privilege it gives.
    ///
    /// The plan keeps `fd` open (close-on-exec) until the `Prepared` is
    /// dropped; the program does not inherit it.
    ///
    /// Joining `PID` only moves the program's children into that namespace
    /// (the program itself keeps its pid).
    ///
    /// # Errors
    ///
    /// `build()` refuses ([`BuildErrorKind::Invalid`]) an `ns` that is not
    /// exactly one kind, and ([`BuildErrorKind::Conflict`]) a kind that is
    /// also [`unshare`](Command::unshare)d, and any join in a child that
    /// gets a new user namespace (`unshare(USER)`, `map_root`): that
    /// namespace has no privilege over any existing one, so the join could
    /// only fail (join a user namespace instead). The kernel's refusal (`EINVAL`:
    /// the fd is not a namespace of that kind; `EPERM`: no privilege over
    /// it) is [`Error::Spawn`] at stage [`Namespace`](crate::Stage::Namespace).
    ///
    /// # References
    ///
    /// [`setns(2)`](https://man7.org/linux/man-pages/man2/setns.2.html):
    /// Linux 3.0 (3.8 for mount, pid and user namespaces), by pidfd 5.8;
    /// [`namespaces(7)`](https://man7.org/linux/man-pages/man7/namespaces.7.html).
    ///
    /// ```no_run
    /// use safespawn::{Command, Namespaces};
    /// let net = std::fs::File::open("/run/netns/blue")?;
    /// Command::new("ip").arg("link").join_namespace(net, Namespaces::NET).status()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_namespace(mut self, fd: impl Into<OwnedFd>, ns: Namespaces) -> Self {
        self.cfg.ns.joins.push((fd.into(), ns));
        self
    }

    /// The hostname in the child's new UTS namespace (`sethostname`); needs
    /// [`unshare`](Command::unshare)`(Namespaces::UTS)`. Set after the maps
    /// and joins, before the fds.
    ///
    /// # Errors
    ///
    /// `build()` refuses a name with a NUL byte ([`BuildErrorKind::Nul`]),
    /// one longer than 64 bytes ([`BuildErrorKind::TooLong`]), and a
    /// hostname without `UTS` in `unshare` ([`BuildErrorKind::Conflict`],
    /// naming both). The kernel's refusal is [`Error::Spawn`] at stage
    /// [`Hostname`](crate::Stage::Hostname).
    ///
    /// # References
    ///
    /// [`sethostname(2)`](https://man7.org/linux/man-pages/man2/sethostname.2.html),
    /// [`uts_namespaces(7)`](https://man7.org/linux/man-pages/man7/uts_namespaces.7.html);
    /// Linux 2.6.19.
    ///
    /// ```no_run
    /// use safespawn::{Command, Namespaces};
    /// let out = Command::new("hostname")
    ///     .unshare(Namespaces::USER | Namespaces::UTS)
    ///     .hostname("sandbox")
    ///     .capture_stdout()
    ///     .run()?;
    /// assert_eq!(out.stdout, b"sandbox\n");
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn hostname(mut self, name: impl Into<OsString>) -> Self {
        self.cfg.ns.hostname = Some(name.into());
        self
    }
}

/// The longest hostname (`HOST_NAME_MAX`).
const HOSTNAME_MAX: usize = 64;

/// The most lines a map may have (`UID_GID_MAP_MAX_EXTENTS`, Linux 4.15;
/// 5 before).
const MAP_LINES_MAX: usize = 340;

/// Checks the ranges of one map (`kind`: `uid_map` or `gid_map`) and makes
/// its text, one `inside outside count\n` line per range; `None` for no
/// range.
fn freeze_map(kind: &str, ranges: &[IdRange]) -> Result<Option<Box<[u8]>>, Error> {
    if ranges.is_empty() {
        return Ok(None);
    }
    for r in ranges {
        let invalid = |problem: String| {
            Err(Error::build(
                BuildErrorKind::Invalid,
                r.shown(kind),
                problem,
            ))
        };
        if r.count == 0 {
            return invalid("maps no id (count 0)".into());
        }
        for (side, first) in [("inside", r.inside), ("outside", r.outside)] {
            if first.checked_add(r.count).is_none() {
                return invalid(format!(
                    "{side} + count is above {}: the kernel refuses a range that wraps",
                    u32::MAX
                ));
            }
        }
    }
    if ranges.len() > MAP_LINES_MAX {
        return Err(Error::build(
            BuildErrorKind::TooLong,
            format!("{kind} ({} ranges)", ranges.len()),
            format!(
                "the kernel takes at most {MAP_LINES_MAX} ranges per map (Linux 4.15; 5 before)"
            ),
        ));
    }
    let overlap = |a: u32, n: u32, b: u32, m: u32| {
        let (a, n, b, m) = (u64::from(a), u64::from(n), u64::from(b), u64::from(m));
        a < b + m && b < a + n
    };
    for (j, r) in ranges.iter().enumerate() {
        for earlier in &ranges[..j] {
            for (side, clash) in [
                (
                    "inside",
                    overlap(r.inside, r.count, earlier.inside, earlier.count),
                ),
                (
                    "outside",
                    overlap(r.outside, r.count, earlier.outside, earlier.count),
                ),
            ] {
                if clash {
                    return Err(Error::build(
                        BuildErrorKind::Invalid,
                        r.shown(kind),
                        format!(
                            "its {side} ids overlap those of {}: the kernel maps each id once",
                            earlier.shown(kind)
                        ),
                    ));
                }
            }
        }
    }
    let mut text = String::new();
    for r in ranges {
        text.push_str(&format!("{} {} {}\n", r.inside, r.outside, r.count));
    }
    let page = rustix::param::page_size();
    if text.len() >= page {
        return Err(Error::build(
            BuildErrorKind::TooLong,
            format!("{kind} ({} ranges)", ranges.len()),
            format!(
                "its text is {} bytes; the kernel takes a map in one write of less than a page ({page} bytes)",
                text.len()
            ),
        ));
    }
    Ok(Some(text.into_bytes().into_boxed_slice()))
}

impl NamespacesConfig {
    /// The kinds the child gets new: `unshare`'s, plus `USER` for
    /// `map_root`.
    pub(crate) fn unshared(&self) -> Namespaces {
        if self.map_root {
            self.unshare | Namespaces::USER
        } else {
            self.unshare
        }
    }

    /// Checks the prerequisites and prepares the child's part: the clone
    /// flags, the self-map texts, the joins and the hostname; and the
    /// parent's: the texts of the id ranges. `daemon`: the command is
    /// daemonized; `forbid_fork`: it refuses the fork path.
    pub(crate) fn freeze(
        &self,
        daemon: bool,
        forbid_fork: bool,
    ) -> Result<(NsPlan, Option<IdRanges>), Error> {
        // map_root implies USER: a self map only exists in a new user
        // namespace, and asking for both would only be ceremony.
        let unshare = self.unshared();
        if daemon && unshare.contains(Namespaces::PID) {
            return Err(Error::build(
                BuildErrorKind::Conflict,
                "unshare(PID)",
                "with daemonize() the intermediate would be pid 1 of the namespace, and its exit would kill the daemon",
            ));
        }
        if unshare.contains(Namespaces::TIME) && !crate::sys::clone::clone3_usable() {
            return Err(Error::build(
                BuildErrorKind::Conflict,
                "unshare(TIME)",
                "a time namespace needs clone3 (Linux 5.3), which this system does not offer to this process",
            ));
        }
        let id_ranges = self.freeze_ranges(unshare, forbid_fork)?;
        if let (true, Some((fd, ns))) = (unshare.contains(Namespaces::USER), self.joins.first()) {
            return Err(Error::build(
                BuildErrorKind::Conflict,
                format!("join_namespace(fd {}, {ns:?})", fd.as_raw_fd()),
                format!(
                    "{} gives the child a new user namespace, which has no privilege over any existing namespace, so the join would always fail (EPERM); join a user namespace instead",
                    if self.unshare.contains(Namespaces::USER) { "unshare(USER)" } else { "map_root" }
                ),
            ));
        }
        let mut joins = Vec::with_capacity(self.joins.len());
        for (fd, ns) in &self.joins {
            let item = || format!("join_namespace(fd {}, {ns:?})", fd.as_raw_fd());
            let Some(kind) = one_kind(*ns) else {
                return Err(Error::build(
                    BuildErrorKind::Invalid,
                    item(),
                    "names exactly one namespace kind per call",
                ));
            };
            if unshare.contains(*ns) {
                let implied = *ns == Namespaces::USER && !self.unshare.contains(*ns);
                return Err(Error::build(
                    BuildErrorKind::Conflict,
                    item(),
                    format!(
                        "{} already gives the child a new namespace of that kind",
                        if implied {
                            "map_root (which implies unshare(USER))".to_owned()
                        } else {
                            format!("unshare({ns:?})")
                        }
                    ),
                ));
            }
            joins.push(Join {
                fd: fd.as_raw_fd(),
                kind,
            });
        }
        let hostname = match &self.hostname {
            None => None,
            Some(name) => {
                let b = name.as_bytes();
                let item = || format!("hostname {}", crate::quote::shown(name));
                if let Some(at) = b.iter().position(|&c| c == 0) {
                    return Err(Error::build(
                        BuildErrorKind::Nul,
                        item(),
                        format!("contains a NUL byte at offset {at}"),
                    ));
                }
                if b.len() > HOSTNAME_MAX {
                    return Err(Error::build(
                        BuildErrorKind::TooLong,
                        item(),
                        format!(
                            "is {} bytes long; the kernel takes at most {HOSTNAME_MAX}",
                            b.len()
                        ),
                    ));
                }
                if !unshare.contains(Namespaces::UTS) {
                    return Err(Error::build(
                        BuildErrorKind::Conflict,
                        item(),
                        "needs unshare(UTS): without a new UTS namespace it would rename the host",
                    ));
                }
                Some(Frozen::from(b.to_vec()))
            }
        };
        let id_maps = if self.map_root {
            let uid = rustix::process::geteuid().as_raw();
            let gid = rustix::process::getegid().as_raw();
            Some(IdMaps {
                uid_map: Frozen::from(format!("0 {uid} 1\n").into_bytes()),
                gid_map: Frozen::from(format!("0 {gid} 1\n").into_bytes()),
            })
        } else {
            None
        };
        let plan = NsPlan {
            clone_flags: unshare.bits(),
            id_maps,
            joins: joins.into(),
            hostname,
        };
        Ok((plan, id_ranges))
    }

    /// Checks the `uid_map` / `gid_map` ranges and makes their texts;
    /// `None` without any. `unshare`: the kinds the child gets, `map_root`'s
    /// `USER` included.
    fn freeze_ranges(
        &self,
        unshare: Namespaces,
        forbid_fork: bool,
    ) -> Result<Option<IdRanges>, Error> {
        let maps = [
            ("uid_map", "uid", &self.uid_ranges),
            ("gid_map", "gid", &self.gid_ranges),
        ];
        for (kind, ids, ranges) in maps {
            let Some(first) = ranges.first() else {
                continue;
            };
            let item = first.shown(kind);
            if self.map_root {
                return Err(Error::build(
                    BuildErrorKind::Conflict,
                    item,
                    format!(
                        "map_root() writes the child's {ids} map already (a self map), and a map is written once: use one or the other"
                    ),
                ));
            }
            if !unshare.contains(Namespaces::USER) {
                return Err(Error::build(
                    BuildErrorKind::Conflict,
                    item,
                    "needs unshare(USER): the map belongs to the child's new user namespace",
                ));
            }
            if forbid_fork {
                return Err(Error::build(
                    BuildErrorKind::Conflict,
                    item,
                    "the parent writes these maps while the child waits, on the fork path, which forbid_fork() refuses",
                ));
            }
        }
        let uid_map = freeze_map("uid_map", &self.uid_ranges)?;
        let gid_map = freeze_map("gid_map", &self.gid_ranges)?;
        if uid_map.is_none() && gid_map.is_none() {
            return Ok(None);
        }
        Ok(Some(IdRanges { uid_map, gid_map }))
    }

    /// The fds of the joins, for the plan to own from now on.
    pub(crate) fn take_fds(&mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.joins)
            .into_iter()
            .map(|(fd, _)| fd)
            .collect()
    }
}

/// The `setns` type of a set with exactly one kind.
fn one_kind(ns: Namespaces) -> Option<LinkNameSpaceType> {
    Some(match ns {
        Namespaces::USER => LinkNameSpaceType::User,
        Namespaces::MOUNT => LinkNameSpaceType::Mount,
        Namespaces::PID => LinkNameSpaceType::ProcessID,
        Namespaces::NET => LinkNameSpaceType::Network,
        Namespaces::UTS => LinkNameSpaceType::HostNameAndNISDomainName,
        Namespaces::IPC => LinkNameSpaceType::InterProcessCommunication,
        Namespaces::CGROUP => LinkNameSpaceType::ControlGroup,
        Namespaces::TIME => LinkNameSpaceType::Time,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_the_kinds() {
        assert_eq!(
            format!("{:?}", Namespaces::USER | Namespaces::TIME),
            "USER | TIME"
        );
        assert_eq!(format!("{:?}", Namespaces::empty()), "empty()");
        assert_eq!(Namespaces::all().each().count(), 8);
    }
}
