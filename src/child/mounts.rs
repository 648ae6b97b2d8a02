//! Mounts: the child's filesystem view, built in its new mount namespace
//! from operations `build()` prepared (every path a `CStr` of the plan).
//!
//! # The order
//!
//! 1. **`/` becomes a recursive slave** (`mount(NULL, "/", NULL, MS_REC |
//!    MS_SLAVE)`), whenever the child has a new mount namespace, mounts or
//!    not: from here on nothing mounted or unmounted in the child (by these
//!    steps or later by the program) reaches the caller's namespace, while
//!    the host's own unmounts still reach the child. It comes first because
//!    the namespace starts as a copy that shares propagation with the
//!    caller's.
//! 2. **The new root** ([`root`](crate::Command::root),
//!    [`root_tmpfs`](crate::Command::root_tmpfs)), the bubblewrap model: a
//!    tmpfs (the *base*) is mounted on an existing directory (`stage`,
//!    chosen at `build()`), the old root is put under it with
//!    `pivot_root(stage, stage/.oldroot)`, and the child changes to the new
//!    `/`. From here on the host's tree is `/.oldroot`: every source path
//!    was prefixed with it at `build()`. With `root(dir)` the directory is
//!    then bound (recursively) onto `/.newroot` of the base, and every
//!    destination is under `/.newroot`; with `root_tmpfs` the base itself is
//!    the new root. Pivoting first is what lets a source lie anywhere,
//!    even where the base was staged.
//! 3. **The mounts**, in call order, each as a short list of operations
//!    (create the destination in the new root, mount, make it read-only).
//!    An [`optional`](crate::Mount::optional) mount whose source does not
//!    exist is skipped whole, before its destination is created.
//! 4. **The old root is detached** (`umount2("/.oldroot", MNT_DETACH)`, then
//!    the empty directory removed); with `root(dir)` the child then pivots
//!    into `/.newroot` (`pivot_root(".", ".")`, which stacks the base on
//!    top, detached in turn) and changes to `/`. What remains is exactly the
//!    planned view: nothing of the old root is reachable, through `..` or
//!    `/proc/self/root` (which shows the new root).
//! 5. **`remount_ro("/")`** of a new root, then: the directory of the old
//!    root could not be removed from a read-only `/`.
//! 6. **The view is locked** (with [`map_root`](crate::Command::map_root)
//!    and at least one mount or a new root): the child enters a nested user
//!    namespace and a mount namespace owned by it (`unshare(CLONE_NEWUSER |
//!    CLONE_NEWNS)`) and maps its root to the root it was (`"0 0 1"`, with
//!    `setgroups` denied, written through the caller's `/proc`, opened
//!    before the pivot). A mount namespace copied into a less privileged
//!    user namespace has every mount locked by the kernel: a read-only
//!    mount stays read-only (`MNT_LOCK_READONLY`), `nosuid`, `nodev`,
//!    `noexec` and the atime flags stay, and no mount can be unmounted to
//!    show what it covers (`MNT_LOCKED`). Without this step the child's
//!    root, which has `CAP_SYS_ADMIN` over the mount namespace it built,
//!    could remount a read-only bind writable (`MS_REMOUNT | MS_BIND`) or
//!    unmount a tmpfs to reveal the directory below. The price: the
//!    program's capabilities are those of the nested user namespace, so it
//!    has none over the command's other new namespaces (network, UTS, IPC,
//!    ...), which the first user namespace owns: it cannot, say, set the
//!    hostname or configure the network namespace itself.
//!
//! The step runs after the fd steps (a file the caller redirected a stream
//! to was opened in the caller's view) and, for a daemon, after the pidfile
//! (written where the caller named it); before every privilege step, since
//! mounting needs `CAP_SYS_ADMIN` over the mount namespace, which a uid
//! change or a capability drop would take away; and before the working
//! directory, which is a path in the new view.

use std::ffi::CStr;
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{FileType, Mode, OFlags, StatVfsMountFlags, CWD};
use rustix::io::Errno;
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::thread::UnshareFlags;

use super::report::{At, AtItem, Failure};
use super::write_once;
use crate::error::Stage;
use crate::frozen::Frozen;

/// The old root's place after the first pivot (a directory of the base).
pub(crate) const OLD_ROOT: &CStr = c"/.oldroot";
/// With `root(dir)`: where `dir` is bound in the base before the mounts.
pub(crate) const NEW_ROOT: &CStr = c"/.newroot";

/// What the child does about mounts.
#[derive(Debug, Default)]
pub(crate) struct MountPlan {
    /// The child has a new mount namespace: `/` is made a recursive slave
    /// first.
    pub private: bool,
    /// `map_root` and a view to protect: once it is built, the child locks
    /// it by entering a nested user and mount namespace (step 6).
    pub lock: bool,
    /// `root(dir)` or `root_tmpfs()`.
    pub root: Option<NewRoot>,
    /// The mounts, in call order.
    pub mounts: Frozen<[MountOps]>,
    /// With a new root, `remount_ro("/")`: made last, once the old root is
    /// detached (its directory is removed from the new `/`), with its item
    /// number.
    pub root_read_only: Option<(u16, Op)>,
}

/// The new root: where the base tmpfs is staged, and the directory of
/// `root(dir)`.
#[derive(Debug)]
pub(crate) struct NewRoot {
    /// An existing directory of the caller's view the base is mounted on;
    /// hidden only until the pivot, a moment later.
    pub stage: Frozen<CStr>,
    /// `stage` + `/.oldroot`.
    pub put_old: Frozen<CStr>,
    /// `root(dir)`: `/.oldroot` + the directory, resolved at `build()`.
    pub dir: Option<Frozen<CStr>>,
}

/// One mount's operations.
#[derive(Debug)]
pub(crate) struct MountOps {
    /// An optional mount's source (in the view of the moment): when it
    /// does not exist, the mount is skipped.
    pub unless_missing: Option<Frozen<CStr>>,
    pub ops: Frozen<[Op]>,
}

/// One operation of a mount. Destinations are paths in the new root.
#[derive(Debug)]
pub(crate) enum Op {
    /// `mkdir(path, 0755)`; `EEXIST` is fine.
    Mkdir(Frozen<CStr>),
    /// An empty regular file to bind a non-directory onto; `EEXIST` is fine.
    Touch(Frozen<CStr>),
    /// `symlink(target, link)`; `EEXIST` is fine.
    Symlink {
        target: &'static CStr,
        link: Frozen<CStr>,
    },
    /// `mount(src, dst, NULL, MS_BIND [| MS_REC])`.
    Bind {
        src: Frozen<CStr>,
        dst: Frozen<CStr>,
        recursive: bool,
    },
    /// `mount(fstype, dst, fstype, flags, data)`: tmpfs, proc, devpts.
    Fs {
        fstype: &'static CStr,
        dst: Frozen<CStr>,
        flags: MountFlags,
        data: Option<Frozen<CStr>>,
    },
    /// `mount_setattr(path, [AT_RECURSIVE], MOUNT_ATTR_RDONLY)` (5.12):
    /// read-only, every other flag kept.
    ReadOnly { path: Frozen<CStr>, recursive: bool },
    /// Without `mount_setattr`: `MS_REMOUNT | MS_BIND | MS_RDONLY` with the
    /// mount's current `nosuid`, `nodev`, `noexec` and atime flags restated
    /// (read with `statvfs`), since a mount inherited from a more privileged
    /// namespace has them locked and the kernel refuses a remount that would
    /// clear them. One mount only.
    RemountReadOnly(Frozen<CStr>),
}

/// Builds the view (see the module docs for the order and its reasons).
pub(crate) fn apply(plan: &MountPlan) -> Result<(), Failure> {
    if !plan.private {
        return Ok(());
    }
    rustix::mount::mount_change(
        c"/",
        MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
    )
    .at(Stage::Mount)?;
    // The caller's /proc, for the nested namespace's maps: once the old
    // root is detached the view may have no /proc.
    let proc = if plan.lock {
        Some(
            rustix::fs::open(
                c"/proc",
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .at(Stage::Mount)?,
        )
    } else {
        None
    };
    if let Some(root) = &plan.root {
        enter_base(root).at(Stage::Root)?;
    }
    let mut item: u16 = 0;
    for mount in plan.mounts.iter() {
        item = item.saturating_add(1);
        if let Some(src) = &mount.unless_missing {
            match rustix::fs::access(&**src, rustix::fs::Access::EXISTS) {
                Ok(()) => {}
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(e).at_item(Stage::Mount, item),
            }
        }
        for op in mount.ops.iter() {
            run(op).at_item(Stage::Mount, item)?;
        }
    }
    if let Some(root) = &plan.root {
        leave_old(root).at(Stage::Root)?;
    }
    if let Some((item, op)) = &plan.root_read_only {
        run(op).at_item(Stage::Mount, *item)?;
    }
    if let Some(proc) = proc {
        lock(&proc).at(Stage::Mount)?;
    }
    Ok(())
}

/// Step 6: a nested user namespace, and a mount namespace owned by it, so
/// the kernel locks every mount of the view; root stays root (`proc`: the
/// caller's `/proc`).
fn lock(proc: &OwnedFd) -> Result<(), Errno> {
    // SAFETY: NEWUSER and NEWNS touch no memory and no fd table; the child
    // is a process of its own (its own thread group, its own fs_struct, as
    // the kernel requires of NEWUSER), whose memory, if shared with the
    // parent, is not changed by them.
    unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWUSER | UnshareFlags::NEWNS) }?;
    // Already denied in the first user namespace (map_root), which the
    // nested one inherits; written anyway, as the kernel wants before an
    // unprivileged gid_map. ENOENT: a kernel before 3.19.
    match write_once(proc.as_fd(), c"self/setgroups", b"deny") {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(e),
    }
    write_once(proc.as_fd(), c"self/gid_map", b"0 0 1\n")?;
    write_once(proc.as_fd(), c"self/uid_map", b"0 0 1\n")
}

/// The base tmpfs on the stage, the pivot under it, and with `root(dir)`
/// the directory bound onto [`NEW_ROOT`].
fn enter_base(root: &NewRoot) -> Result<(), Errno> {
    rustix::mount::mount(
        c"tmpfs",
        &*root.stage,
        c"tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        c"mode=0755",
    )?;
    mkdir(&root.put_old, 0o700)?;
    rustix::process::pivot_root(&*root.stage, &*root.put_old)?;
    rustix::process::chdir(c"/")?;
    if let Some(dir) = &root.dir {
        mkdir(NEW_ROOT, 0o755)?;
        rustix::mount::mount_bind_recursive(&**dir, NEW_ROOT)?;
    }
    Ok(())
}

/// Detaches the old root; with `root(dir)`, pivots into [`NEW_ROOT`] and
/// detaches the base.
fn leave_old(root: &NewRoot) -> Result<(), Errno> {
    rustix::mount::unmount(OLD_ROOT, UnmountFlags::DETACH)?;
    rustix::fs::rmdir(OLD_ROOT)?;
    if root.dir.is_some() {
        rustix::process::chdir(NEW_ROOT)?;
        // put_old == new_root: the base ends up stacked on the new root,
        // where the unmount of "." finds it.
        rustix::process::pivot_root(c".", c".")?;
        rustix::mount::unmount(c".", UnmountFlags::DETACH)?;
        rustix::process::chdir(c"/")?;
    }
    Ok(())
}

/// One operation.
fn run(op: &Op) -> Result<(), Errno> {
    match op {
        Op::Mkdir(path) => mkdir(path, 0o755),
        Op::Touch(path) => {
            match rustix::fs::mknodat(
                CWD,
                &**path,
                FileType::RegularFile,
                Mode::from_raw_mode(0o444),
                0,
            ) {
                Ok(()) | Err(Errno::EXIST) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Op::Symlink { target, link } => match rustix::fs::symlink(*target, &**link) {
            Ok(()) | Err(Errno::EXIST) => Ok(()),
            Err(e) => Err(e),
        },
        Op::Bind {
            src,
            dst,
            recursive: true,
        } => rustix::mount::mount_bind_recursive(&**src, &**dst),
        Op::Bind {
            src,
            dst,
            recursive: false,
        } => rustix::mount::mount_bind(&**src, &**dst),
        Op::Fs {
            fstype,
            dst,
            flags,
            data,
        } => rustix::mount::mount(*fstype, &**dst, *fstype, *flags, data.as_deref()),
        Op::ReadOnly { path, recursive } => crate::sys::mount::make_read_only(path, *recursive),
        Op::RemountReadOnly(path) => {
            let kept = rustix::fs::statvfs(&**path)?.f_flag;
            let mut flags = MountFlags::BIND | MountFlags::RDONLY;
            for (st, ms) in [
                (StatVfsMountFlags::NOSUID, MountFlags::NOSUID),
                (StatVfsMountFlags::NODEV, MountFlags::NODEV),
                (StatVfsMountFlags::NOEXEC, MountFlags::NOEXEC),
                (StatVfsMountFlags::NOATIME, MountFlags::NOATIME),
                (StatVfsMountFlags::NODIRATIME, MountFlags::NODIRATIME),
                (StatVfsMountFlags::RELATIME, MountFlags::RELATIME),
            ] {
                if kept.contains(st) {
                    flags |= ms;
                }
            }
            rustix::mount::mount_remount(&**path, flags, c"")
        }
    }
}

/// `mkdir(path, mode)`; an existing entry is fine (the mount on it says
/// whether it was the right kind).
fn mkdir(path: &CStr, mode: u32) -> Result<(), Errno> {
    match rustix::fs::mkdir(path, Mode::from_raw_mode(mode)) {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(e),
    }
}
