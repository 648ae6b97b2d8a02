//! Mounts: the child's filesystem view ([`Command::mount`] with [`Mount`],
//! [`Command::root`], [`Command::root_tmpfs`]), checked and turned into the
//! child's operations at `build()`. The order the child applies them in, and
//! why, is in the child's `mounts` room.

use std::collections::HashSet;
use std::ffi::{CString, OsStr};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::mount::MountFlags;

use super::Command;
use crate::child::mounts::{MountOps, MountPlan, NewRoot, Op, NEW_ROOT, OLD_ROOT};
use crate::command::namespaces::Namespaces;
use crate::error::{BuildErrorKind, Error};
use crate::frozen::Frozen;
use crate::mode::Mode;

/// One mount of the child's filesystem view, for [`Command::mount`].
///
/// Paths are absolute. A *source* is a path of the caller's filesystem,
/// resolved (symbolic links followed) at `build()`; a *destination* is a
/// path in the child's final view: with [`root`](Command::root) or
/// [`root_tmpfs`](Command::root_tmpfs) it lies inside the new root, and
/// missing directories on the way to it are created there (in the new
/// root's tmpfs, or in the directory given to `root`); without a new root
/// it must already exist, since the child never creates anything in the
/// caller's filesystem.
///
/// ```
/// use safespawn::Mount;
/// let usr = Mount::bind_ro("/usr", "/usr");
/// assert_eq!(usr.to_string(), r#"Mount::bind_ro("/usr", "/usr")"#);
/// let lib64 = Mount::bind_ro("/lib64", "/lib64").optional();
/// assert_eq!(lib64.to_string(), r#"Mount::bind_ro("/lib64", "/lib64").optional()"#);
/// let tmp = Mount::tmpfs("/tmp").size(64 << 20).mode(0o1777);
/// assert_eq!(tmp.to_string(), r#"Mount::tmpfs("/tmp").size(67108864).mode(0o1777)"#);
/// ```
///
/// # Errors
///
/// None here: `build()` checks every mount (see [`Command::mount`]).
///
/// # References
///
/// [`mount(2)`](https://man7.org/linux/man-pages/man2/mount.2.html),
/// [`mount_namespaces(7)`](https://man7.org/linux/man-pages/man7/mount_namespaces.7.html).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    kind: Kind,
    optional: bool,
    size: Option<u64>,
    mode: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Bind {
        src: PathBuf,
        dst: PathBuf,
        read_only: bool,
    },
    Tmpfs(PathBuf),
    Proc(PathBuf),
    Dev(PathBuf),
    RemountRo(PathBuf),
}

impl Mount {
    fn of(kind: Kind) -> Mount {
        Mount {
            kind,
            optional: false,
            size: None,
            mode: None,
        }
    }

    /// `src` appears at `dst`, writable as far as `src` is, with every
    /// mount below `src` (`MS_BIND | MS_REC`).
    ///
    /// ```
    /// let m = safespawn::Mount::bind("/srv/data", "/data");
    /// assert_eq!(m.to_string(), r#"Mount::bind("/srv/data", "/data")"#);
    /// ```
    pub fn bind(src: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> Mount {
        Mount::of(Kind::Bind {
            src: src.into(),
            dst: dst.into(),
            read_only: false,
        })
    }

    /// As [`bind`](Mount::bind), read-only, recursively: every mount below
    /// `dst` is read-only too (`mount_setattr(2)` with `AT_RECURSIVE`,
    /// Linux 5.12), and the flags the kernel locks on a mount inherited
    /// from a more privileged namespace (`nosuid`, `nodev`, `noexec`, the
    /// atime flags) stay as they were. Before 5.12 (or where a seccomp
    /// profile refuses `mount_setattr`) each mount is remounted by itself
    /// (`MS_REMOUNT | MS_BIND | MS_RDONLY`, the locked flags restated): the
    /// bind, and the mounts below the source as `build()` finds them in
    /// `/proc/self/mountinfo`; where that cannot be read, the bind is not
    /// recursive, so no submount comes along to stay writable.
    ///
    /// With [`map_root`](Command::map_root) the child's root cannot make it
    /// writable again (a remount or `mount_setattr` is `EPERM`, and so is
    /// one on a new bind of it): the child locks its view once it is built
    /// (see [`Command::mount`]). Without `map_root` nothing locks it: a
    /// child in a user namespace without maps, or a root caller's child
    /// without a user namespace, has `CAP_SYS_ADMIN` over the mount
    /// namespace it built, and can remount the bind writable; take the
    /// capability away ([`clear_caps`](Command::clear_caps), a uid change)
    /// where the program must not.
    ///
    /// ```
    /// let m = safespawn::Mount::bind_ro("/usr", "/usr");
    /// assert_eq!(m.to_string(), r#"Mount::bind_ro("/usr", "/usr")"#);
    /// ```
    pub fn bind_ro(src: impl Into<PathBuf>, dst: impl Into<PathBuf>) -> Mount {
        Mount::of(Kind::Bind {
            src: src.into(),
            dst: dst.into(),
            read_only: true,
        })
    }

    /// A fresh tmpfs at `dst` (`nosuid`, `nodev`; mode 0755 unless
    /// [`mode`](Mount::mode) says otherwise; the kernel's size limit, half
    /// the RAM, unless [`size`](Mount::size) says otherwise).
    ///
    /// ```
    /// let m = safespawn::Mount::tmpfs("/tmp");
    /// assert_eq!(m.to_string(), r#"Mount::tmpfs("/tmp")"#);
    /// ```
    pub fn tmpfs(dst: impl Into<PathBuf>) -> Mount {
        Mount::of(Kind::Tmpfs(dst.into()))
    }

    /// A proc filesystem at `dst` (`nosuid`, `nodev`, `noexec`): the
    /// processes of the child's pid namespace, so it needs
    /// [`unshare`](Command::unshare)`(Namespaces::PID)`.
    ///
    /// ```
    /// let m = safespawn::Mount::proc("/proc");
    /// assert_eq!(m.to_string(), r#"Mount::proc("/proc")"#);
    /// ```
    pub fn proc(dst: impl Into<PathBuf>) -> Mount {
        Mount::of(Kind::Proc(dst.into()))
    }

    /// A minimal `/dev` at `dst`: a tmpfs holding `null`, `zero`, `full`,
    /// `random`, `urandom` and `tty` bound from the caller's `/dev`, a new
    /// `devpts` instance at `pts` with `ptmx` linking to it, a tmpfs at
    /// `shm`, and the links `fd`, `stdin`, `stdout`, `stderr` and `core`
    /// into `/proc`. It needs a new root ([`root`](Command::root) or
    /// [`root_tmpfs`](Command::root_tmpfs)): the devices are bound from the
    /// old root, which a `/dev` mounted in place would hide.
    ///
    /// ```
    /// let m = safespawn::Mount::dev("/dev");
    /// assert_eq!(m.to_string(), r#"Mount::dev("/dev")"#);
    /// ```
    pub fn dev(dst: impl Into<PathBuf>) -> Mount {
        Mount::of(Kind::Dev(dst.into()))
    }

    /// Makes the mount at `path` read-only (that mount only, not the ones
    /// below it; locked flags kept as for [`bind_ro`](Mount::bind_ro), and
    /// locked against the child's root as there).
    /// Applied in call order, except `remount_ro("/")` with a new root,
    /// which is made after every mount (and after the old root is
    /// detached): it freezes the new root itself (the tmpfs of
    /// [`root_tmpfs`](Command::root_tmpfs), the directory of
    /// [`root`](Command::root)) while the mounts below it, a tmpfs `/tmp`
    /// say, stay as they are.
    ///
    /// ```
    /// let m = safespawn::Mount::remount_ro("/");
    /// assert_eq!(m.to_string(), r#"Mount::remount_ro("/")"#);
    /// ```
    pub fn remount_ro(path: impl Into<PathBuf>) -> Mount {
        Mount::of(Kind::RemountRo(path.into()))
    }

    /// Skips the mount when its source (for [`remount_ro`](Mount::remount_ro)
    /// its path) does not exist, at `build()` or at spawn, instead of
    /// failing; nothing is created for it then. Has no effect on `tmpfs`,
    /// `proc` and `dev`, which have no source.
    ///
    /// ```
    /// use safespawn::{Command, Mount, Namespaces};
    /// let prepared = Command::new("/bin/true")
    ///     .unshare(Namespaces::USER | Namespaces::MOUNT)
    ///     .map_root()
    ///     .root_tmpfs()
    ///     .mount(Mount::bind_ro("/no/such/dir", "/x").optional())
    ///     .build();
    /// assert!(prepared.is_ok());
    /// ```
    pub fn optional(mut self) -> Mount {
        self.optional = true;
        self
    }

    /// The tmpfs's size limit in bytes (`size=`; 0, which tmpfs reads as
    /// no limit, is refused). Only for [`tmpfs`](Mount::tmpfs).
    ///
    /// ```
    /// let m = safespawn::Mount::tmpfs("/tmp").size(1 << 20);
    /// assert_eq!(m.to_string(), r#"Mount::tmpfs("/tmp").size(1048576)"#);
    /// ```
    pub fn size(mut self, bytes: u64) -> Mount {
        self.size = Some(bytes);
        self
    }

    /// The mode of the tmpfs's root directory (`mode=`, e.g. `0o1777` for a
    /// shared `/tmp`; at most `0o7777`). Only for [`tmpfs`](Mount::tmpfs).
    ///
    /// ```
    /// let m = safespawn::Mount::tmpfs("/tmp").mode(0o1777);
    /// assert_eq!(m.to_string(), r#"Mount::tmpfs("/tmp").mode(0o1777)"#);
    /// ```
    pub fn mode(mut self, mode: u32) -> Mount {
        self.mode = Some(mode);
        self
    }
}

/// The mount as Rust that would make it: `Mount::bind_ro("/usr", "/usr")`.
impl fmt::Display for Mount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Bind {
                src,
                dst,
                read_only,
            } => write!(
                f,
                "Mount::{}({src:?}, {dst:?})",
                if *read_only { "bind_ro" } else { "bind" }
            )?,
            Kind::Tmpfs(p) => write!(f, "Mount::tmpfs({p:?})")?,
            Kind::Proc(p) => write!(f, "Mount::proc({p:?})")?,
            Kind::Dev(p) => write!(f, "Mount::dev({p:?})")?,
            Kind::RemountRo(p) => write!(f, "Mount::remount_ro({p:?})")?,
        }
        if self.optional {
            f.write_str(".optional()")?;
        }
        if let Some(size) = self.size {
            write!(f, ".size({size})")?;
        }
        if let Some(mode) = self.mode {
            write!(f, ".mode({mode:#o})")?;
        }
        Ok(())
    }
}

/// What a command records about mounts.
#[derive(Debug, Default)]
pub(crate) struct MountsConfig {
    pub mounts: Vec<Mount>,
    /// Every `root`/`root_tmpfs` call (more than one is a build error).
    pub roots: Vec<Root>,
}

/// A new root: `root(dir)` or `root_tmpfs()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Root {
    Dir(PathBuf),
    Tmpfs,
}

impl fmt::Display for Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Root::Dir(d) => write!(f, "root({d:?})"),
            Root::Tmpfs => f.write_str("root_tmpfs()"),
        }
    }
}

impl<M: Mode> Command<M> {
    /// Adds a mount to the child's filesystem view; repeatable, applied in
    /// call order (a later mount may sit on an earlier one). Needs
    /// [`unshare`](Command::unshare)`(Namespaces::MOUNT)`, and without
    /// privilege a user namespace too ([`map_root`](Command::map_root)).
    ///
    /// The child builds the view in its own mount namespace, after the fd
    /// steps (files the caller redirected stdio to are opened in the
    /// caller's view) and before every privilege step, the working
    /// directory and the hooks (which see the new view): first `/` is made
    /// a recursive slave, so nothing mounted inside ever appears outside;
    /// then the new root, if any; then the mounts; then the old root is
    /// detached. None of it outlives the child's namespace, on any path.
    ///
    /// With [`map_root`](Command::map_root), the view is then locked: the
    /// child enters a nested user namespace (root mapped to root, so the
    /// program still runs as uid 0) and a mount namespace owned by it,
    /// where the kernel locks every mount: none can be unmounted to show
    /// what it covers, and none of a mount's `ro`, `nosuid`, `nodev`,
    /// `noexec` and atime flags can be cleared, by the program's root or
    /// anyone in its namespaces. The program's capabilities are then those
    /// of the nested user namespace, which does not own the command's other
    /// new namespaces: it cannot change the hostname of its UTS namespace
    /// or configure its network namespace (the child sets the
    /// [`hostname`](Command::hostname) before). Without `map_root` the
    /// child's root keeps `CAP_SYS_ADMIN` over the view it built and can
    /// undo it (remount a read-only bind writable, unmount a tmpfs); a
    /// program that must not needs its capabilities taken away.
    ///
    /// # Errors
    ///
    /// `build()` refuses, naming the mount: a relative path
    /// ([`BuildErrorKind::Invalid`]), one with a NUL byte
    /// ([`BuildErrorKind::Nul`]), a destination with `.` or `..`
    /// components (which could lead outside the new root) or `/` itself
    /// for anything but `remount_ro` ([`BuildErrorKind::Invalid`]), a
    /// source that does not exist without [`Mount::optional`]
    /// ([`BuildErrorKind::NotFound`]), [`size`](Mount::size) or
    /// [`mode`](Mount::mode) on a mount that is not a tmpfs, `size(0)` and
    /// a mode above `0o7777` ([`BuildErrorKind::Invalid`]), and, naming both items
    /// ([`BuildErrorKind::Conflict`]): any mount without `unshare(MOUNT)`, a
    /// `proc` without `unshare(PID)`, a `dev` without a new root. The
    /// kernel's refusal of a step (`EPERM` without privilege over the mount
    /// namespace, `ENOENT` for a destination missing from a view without a
    /// new root, `EROFS` for one that would have to be created under a
    /// read-only mount) is [`Error::Spawn`] at [`Stage::Mount`](crate::Stage::Mount)
    /// with the mount's destination as its `path`.
    ///
    /// # References
    ///
    /// [`mount(2)`](https://man7.org/linux/man-pages/man2/mount.2.html),
    /// [`mount_namespaces(7)`](https://man7.org/linux/man-pages/man7/mount_namespaces.7.html),
    /// [`mount_setattr(2)`](https://man7.org/linux/man-pages/man2/mount_setattr.2.html)
    /// (5.12, with a fallback). Mount namespaces: Linux 2.4.19; owned by an
    /// unprivileged user namespace: 3.8; `devpts` in one: 4.7.
    ///
    /// ```no_run
    /// use safespawn::{Command, Mount, Namespaces};
    /// // Any user, where unprivileged user namespaces are allowed.
    /// let out = Command::new("/bin/ls")
    ///     .arg("/")
    ///     .unshare(Namespaces::USER | Namespaces::MOUNT | Namespaces::PID)
    ///     .map_root()
    ///     .root_tmpfs()
    ///     .mount(Mount::bind_ro("/usr", "/usr"))
    ///     .mount(Mount::bind_ro("/bin", "/bin"))
    ///     .mount(Mount::bind_ro("/lib", "/lib"))
    ///     .mount(Mount::bind_ro("/lib64", "/lib64").optional())
    ///     .mount(Mount::tmpfs("/tmp"))
    ///     .mount(Mount::proc("/proc"))
    ///     .mount(Mount::dev("/dev"))
    ///     .capture_stdout()
    ///     .run()?;
    /// println!("{}", String::from_utf8_lossy(&out.stdout)); // bin dev lib lib64 proc tmp usr
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn mount(mut self, mount: Mount) -> Self {
        self.cfg.mounts.mounts.push(mount);
        self
    }

    /// `dir` becomes the child's `/`: the directory is bound (recursively)
    /// into a fresh tmpfs, the mounts are applied inside it, the child
    /// `pivot_root`s into it and the old root is detached, so nothing of
    /// the caller's filesystem is reachable but what `dir` and the mounts
    /// show. Needs [`unshare`](Command::unshare)`(Namespaces::MOUNT)`.
    ///
    /// Without [`current_dir`](Command::current_dir) the child runs in the
    /// new `/`; with it, the directory is a path in the new view. A program
    /// name without `/` is looked up at `build()` on PATH *in the new
    /// view* (through the mounts and `dir`); the exec itself happens there
    /// too.
    ///
    /// # Errors
    ///
    /// `build()` refuses a relative `dir` ([`BuildErrorKind::Invalid`]), a
    /// missing one ([`BuildErrorKind::NotFound`]), one that is not a
    /// directory ([`BuildErrorKind::Invalid`]), `root` without
    /// `unshare(MOUNT)`, and `root` together with another `root` or
    /// [`root_tmpfs`](Command::root_tmpfs) ([`BuildErrorKind::Conflict`]).
    /// The kernel's refusal is [`Error::Spawn`] at
    /// [`Stage::Root`](crate::Stage::Root) (`ENOENT` for a directory gone
    /// by the spawn, `EINVAL` from `pivot_root` where `/` is the initial
    /// ramfs). A caller in a `chroot` whose root is not a mount point fails
    /// earlier, at [`Stage::Mount`](crate::Stage::Mount) with `EINVAL`: `/`
    /// cannot be made a slave there, and without that every mount of the
    /// child could reach the caller's namespace.
    ///
    /// # References
    ///
    /// [`pivot_root(2)`](https://man7.org/linux/man-pages/man2/pivot_root.2.html)
    /// (Linux 2.3.41), [`mount_namespaces(7)`](https://man7.org/linux/man-pages/man7/mount_namespaces.7.html).
    ///
    /// ```no_run
    /// use safespawn::{Command, Namespaces};
    /// let status = Command::new("/bin/sh")
    ///     .args(["-c", "test -d /etc"])
    ///     .unshare(Namespaces::USER | Namespaces::MOUNT)
    ///     .map_root()
    ///     .root("/srv/rootfs")
    ///     .status()?;
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cfg.mounts.roots.push(Root::Dir(dir.into()));
        self
    }

    /// The child's `/` is a fresh, empty tmpfs (mode 0755) that the mounts
    /// populate: bubblewrap's model. The old root is detached once the
    /// mounts are made, so only what they show is reachable. Needs
    /// [`unshare`](Command::unshare)`(Namespaces::MOUNT)`. The working
    /// directory and PATH look-up are as for [`root`](Command::root).
    ///
    /// # Errors
    ///
    /// `build()` refuses `root_tmpfs` without `unshare(MOUNT)` or together
    /// with [`root`](Command::root) ([`BuildErrorKind::Conflict`]), and a
    /// system without `/tmp`, `/mnt` or `/dev` to stage the tmpfs on
    /// ([`BuildErrorKind::NotFound`]). The kernel's refusal is
    /// [`Error::Spawn`] at [`Stage::Root`](crate::Stage::Root).
    ///
    /// # References
    ///
    /// [`pivot_root(2)`](https://man7.org/linux/man-pages/man2/pivot_root.2.html),
    /// [`tmpfs(5)`](https://man7.org/linux/man-pages/man5/tmpfs.5.html);
    /// Linux 2.6 (3.8 without privilege, in a user namespace).
    ///
    /// ```no_run
    /// use safespawn::{Command, Mount, Namespaces};
    /// let out = Command::new("/usr/bin/ls")
    ///     .arg("/")
    ///     .unshare(Namespaces::USER | Namespaces::MOUNT)
    ///     .map_root()
    ///     .root_tmpfs()
    ///     .mount(Mount::bind_ro("/usr", "/usr"))
    ///     .mount(Mount::bind_ro("/lib", "/lib"))
    ///     .mount(Mount::bind_ro("/lib64", "/lib64").optional())
    ///     .capture_stdout()
    ///     .run()?;
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn root_tmpfs(mut self) -> Self {
        self.cfg.mounts.roots.push(Root::Tmpfs);
        self
    }
}

/// Where the base tmpfs of a new root may be staged, in order of
/// preference: any existing directory will do, since the pivot follows at
/// once and only the child's namespace sees it.
const STAGES: [&str; 3] = ["/tmp", "/mnt", "/dev"];

/// The devices a [`Mount::dev`] binds from the caller's `/dev`.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// The links a [`Mount::dev`] makes: (name, target).
const DEV_LINKS: [(&str, &std::ffi::CStr); 6] = [
    ("ptmx", c"pts/ptmx"),
    ("fd", c"/proc/self/fd"),
    ("stdin", c"/proc/self/fd/0"),
    ("stdout", c"/proc/self/fd/1"),
    ("stderr", c"/proc/self/fd/2"),
    ("core", c"/proc/kcore"),
];

/// The child's view of paths, for finding the program at `build()`: which
/// caller's path a path of the new view shows.
#[derive(Debug, Default)]
pub(crate) struct View {
    /// The root changes: paths not under a bind are not the caller's.
    changed: bool,
    /// `root(dir)`, resolved.
    dir: Option<PathBuf>,
    /// (destination, the caller's source), in call order; `None` for a
    /// mount that shows nothing of the caller's (tmpfs, proc, dev).
    binds: Vec<(PathBuf, Option<PathBuf>)>,
}

impl View {
    /// Whether the child has a new root.
    pub(crate) fn changes_root(&self) -> bool {
        self.changed
    }

    /// The caller's path that `path` (absolute, in the child's view) shows,
    /// if any.
    pub(crate) fn host_path(&self, path: &Path) -> Option<PathBuf> {
        for (dst, src) in self.binds.iter().rev() {
            if let Ok(rest) = path.strip_prefix(dst) {
                return src.as_ref().map(|s| join(s, rest));
            }
        }
        if !self.changed {
            return Some(path.to_owned());
        }
        let rest = path.strip_prefix("/").ok()?;
        self.dir.as_ref().map(|d| join(d, rest))
    }
}

/// `base` + `rest`, where an empty `rest` is `base` itself.
fn join(base: &Path, rest: &Path) -> PathBuf {
    if rest.as_os_str().is_empty() {
        base.to_owned()
    } else {
        base.join(rest)
    }
}

/// `bytes` as a `Frozen<CStr>`; callers checked for NUL bytes before.
fn cstr(bytes: impl Into<Vec<u8>>) -> Frozen<std::ffi::CStr> {
    Frozen::from(CString::new(bytes).unwrap_or_default())
}

/// `prefix` + `path` (absolute) as a `Frozen<CStr>`.
fn under(prefix: &[u8], path: &Path) -> Frozen<std::ffi::CStr> {
    let mut b = prefix.to_vec();
    b.extend_from_slice(path.as_os_str().as_bytes());
    cstr(b)
}

/// Checks that `path` (a part of `item`, called `what`) is absolute and
/// has no NUL byte.
fn absolute(item: &dyn Fn() -> String, what: &str, path: &Path) -> Result<(), Error> {
    let b = path.as_os_str().as_bytes();
    if let Some(at) = b.iter().position(|&c| c == 0) {
        return Err(Error::build(
            BuildErrorKind::Nul,
            item(),
            format!("the {what} contains a NUL byte at offset {at}"),
        ));
    }
    if b.first() != Some(&b'/') {
        return Err(Error::build(
            BuildErrorKind::Invalid,
            item(),
            format!("the {what} {path:?} is not an absolute path"),
        ));
    }
    Ok(())
}

/// A destination: absolute, no NUL, no `.` or `..` component (which could
/// resolve outside the new root); returned without repeated or trailing
/// slashes.
fn destination(item: &dyn Fn() -> String, what: &str, path: &Path) -> Result<PathBuf, Error> {
    absolute(item, what, path)?;
    let mut clean = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::RootDir => {}
            Component::Normal(name) => clean.push(name),
            Component::CurDir | Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::build(
                    BuildErrorKind::Invalid,
                    item(),
                    format!(
                        "the {what} {path:?} has a `.` or `..` component: destinations are plain paths in the child's view and may not lead outside it"
                    ),
                ))
            }
        }
    }
    // `Path::components` drops a "." anywhere but at the start: look at the
    // bytes too.
    if path
        .as_os_str()
        .as_bytes()
        .split(|&b| b == b'/')
        .any(|part| part == b".")
    {
        return Err(Error::build(
            BuildErrorKind::Invalid,
            item(),
            format!("the {what} {path:?} has a `.` component: destinations are plain paths in the child's view"),
        ));
    }
    Ok(clean)
}

/// A source: absolute, no NUL, resolved in the caller's view. `None` when
/// it does not exist and the mount is optional. Returns the resolved path
/// and whether it is a directory.
fn source(
    item: &dyn Fn() -> String,
    what: &str,
    path: &Path,
    optional: bool,
) -> Result<Option<(PathBuf, bool)>, Error> {
    absolute(item, what, path)?;
    match std::fs::canonicalize(path) {
        Ok(resolved) => {
            let is_dir = std::fs::metadata(&resolved).is_ok_and(|m| m.is_dir());
            Ok(Some((resolved, is_dir)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && optional => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::build(
            BuildErrorKind::NotFound,
            item(),
            if what == "source" {
                format!("the {what} {path:?} does not exist (.optional() skips a mount whose source is missing)")
            } else {
                format!("the {what} {path:?} does not exist")
            },
        )),
        Err(e) => Err(Error::build(
            BuildErrorKind::NotFound,
            item(),
            format!("the {what} {path:?} cannot be resolved: {e}"),
        )),
    }
}

/// The operations of one mount being built, and the directories of the new
/// root known to exist so far.
struct Ops<'a> {
    ops: Vec<Op>,
    /// The new root is changed: missing directories are created.
    create: bool,
    /// The prefix of every destination (`/.newroot` with `root(dir)`).
    dst_prefix: &'a [u8],
    made: &'a mut HashSet<PathBuf>,
}

impl Ops<'_> {
    /// Creates (with a new root) the directories leading to `dst`, and
    /// `dst` itself as a directory or, with `file`, an empty file.
    fn make_destination(&mut self, dst: &Path, file: bool) {
        if !self.create {
            return;
        }
        let mut at = PathBuf::from("/");
        let parts: Vec<_> = dst.components().skip(1).collect();
        for (i, part) in parts.iter().enumerate() {
            at.push(part);
            let last = i + 1 == parts.len();
            if last && file {
                self.ops.push(Op::Touch(under(self.dst_prefix, &at)));
            } else if self.made.insert(at.clone()) {
                self.ops.push(Op::Mkdir(under(self.dst_prefix, &at)));
            }
        }
    }

    fn dst(&self, dst: &Path) -> Frozen<std::ffi::CStr> {
        under(self.dst_prefix, dst)
    }
}

impl MountsConfig {
    /// Checks every mount and prepares the child's operations, in call
    /// order; also returns the view for the PATH look-up and each mount's
    /// destination (for errors). `unshare`: the command's new namespaces.
    pub(crate) fn freeze(
        &self,
        unshare: Namespaces,
        map_root: bool,
    ) -> Result<(MountPlan, View, Vec<PathBuf>), Error> {
        let private = unshare.contains(Namespaces::MOUNT);
        let root = match self.roots.as_slice() {
            [] => None,
            [one] => Some(one),
            [first, second, ..] => {
                return Err(Error::build(
                    BuildErrorKind::Conflict,
                    second.to_string(),
                    format!("the command already has {first}: a child has one root"),
                ))
            }
        };
        if !private {
            let item = match (root, self.mounts.first()) {
                (Some(root), _) => Some(root.to_string()),
                (None, Some(m)) => Some(format!("mount({m})")),
                (None, None) => None,
            };
            if let Some(item) = item {
                return Err(Error::build(
                    BuildErrorKind::Conflict,
                    item,
                    "needs unshare(MOUNT): without a mount namespace of its own the child would change the caller's mounts",
                ));
            }
        }
        if self.mounts.len() >= usize::from(u16::MAX) {
            return Err(Error::build(
                BuildErrorKind::TooLong,
                "mount",
                format!(
                    "{} mounts; a child takes at most {}",
                    self.mounts.len(),
                    u16::MAX - 1
                ),
            ));
        }
        let setattr = crate::sys::mount::have_mount_setattr();
        let mut view = View {
            changed: root.is_some(),
            ..View::default()
        };
        let new_root = match root {
            None => None,
            Some(root) => {
                let item = || root.to_string();
                let dir = match root {
                    Root::Tmpfs => None,
                    Root::Dir(dir) => {
                        let (resolved, is_dir) = source(&item, "directory", dir, false)?
                            .ok_or_else(|| {
                                Error::build(BuildErrorKind::NotFound, item(), "does not exist")
                            })?;
                        if !is_dir {
                            return Err(Error::build(
                                BuildErrorKind::Invalid,
                                item(),
                                format!("{dir:?} is not a directory"),
                            ));
                        }
                        view.dir = Some(resolved.clone());
                        Some(under(OLD_ROOT.to_bytes(), &resolved))
                    }
                };
                let Some(stage) = STAGES
                    .iter()
                    .find(|s| std::fs::metadata(s).is_ok_and(|m| m.is_dir()))
                else {
                    return Err(Error::build(
                        BuildErrorKind::NotFound,
                        item(),
                        "needs an existing directory to stage the new root on (/tmp, /mnt or /dev)",
                    ));
                };
                Some(NewRoot {
                    stage: cstr(*stage),
                    put_old: under(
                        stage.as_bytes(),
                        Path::new(OsStr::from_bytes(OLD_ROOT.to_bytes())),
                    ),
                    dir,
                })
            }
        };
        let src_prefix: &[u8] = if root.is_some() {
            OLD_ROOT.to_bytes()
        } else {
            b""
        };
        let dst_prefix: &[u8] = match root {
            Some(Root::Dir(_)) => NEW_ROOT.to_bytes(),
            _ => b"",
        };
        let mut made: HashSet<PathBuf> = HashSet::from([PathBuf::from("/")]);
        let mut mounts = Vec::with_capacity(self.mounts.len());
        let mut shown = Vec::with_capacity(self.mounts.len());
        let mut root_read_only = None;
        for m in &self.mounts {
            let item = || format!("mount({m})");
            if (m.size.is_some() || m.mode.is_some()) && !matches!(m.kind, Kind::Tmpfs(_)) {
                return Err(Error::build(
                    BuildErrorKind::Invalid,
                    item(),
                    "size() and mode() apply to Mount::tmpfs only",
                ));
            }
            if m.size == Some(0) {
                return Err(Error::build(
                    BuildErrorKind::Invalid,
                    item(),
                    "size(0) would be read by tmpfs as no limit at all; leave size() out for the kernel's default",
                ));
            }
            if let Some(mode) = m.mode.filter(|&mode| mode > 0o7777) {
                return Err(Error::build(
                    BuildErrorKind::Invalid,
                    item(),
                    format!("mode({mode:#o}) has bits beyond the permission bits (0o7777)"),
                ));
            }
            let mut ops = Ops {
                ops: Vec::new(),
                create: root.is_some(),
                dst_prefix,
                made: &mut made,
            };
            let mut unless_missing = None;
            match &m.kind {
                Kind::Bind {
                    src,
                    dst,
                    read_only,
                } => {
                    let dst = not_root(&item, destination(&item, "destination", dst)?)?;
                    let (src, is_dir) = match source(&item, "source", src, m.optional)? {
                        Some(found) => found,
                        // Missing now, maybe not at spawn: a directory is the
                        // likelier kind.
                        None => (src.clone(), true),
                    };
                    let from = under(src_prefix, &src);
                    if m.optional {
                        unless_missing = Some(under(src_prefix, &src));
                    }
                    ops.make_destination(&dst, !is_dir);
                    let to = ops.dst(&dst);
                    // Without mount_setattr each mount of a read-only bind
                    // is remounted by itself: the ones below the source are
                    // found now, in the caller's mount table (the child's
                    // namespace is a copy of it). Where that table cannot
                    // be read, the bind is not recursive, so no submount
                    // is carried over to stay writable.
                    let below = if *read_only && !setattr {
                        submounts(&src)
                    } else {
                        Some(Vec::new())
                    };
                    ops.ops.push(Op::Bind {
                        src: from,
                        dst: to,
                        recursive: below.is_some(),
                    });
                    if *read_only {
                        ops.ops.push(read_only_op(ops.dst(&dst), true, setattr));
                        for sub in below.iter().flatten() {
                            ops.ops.push(Op::RemountReadOnly(ops.dst(&join(&dst, sub))));
                        }
                    }
                    view.binds.push((dst.clone(), Some(src)));
                    shown.push(dst);
                }
                Kind::Tmpfs(dst) => {
                    let dst = not_root(&item, destination(&item, "destination", dst)?)?;
                    ops.make_destination(&dst, false);
                    let mut data = format!("mode={:04o}", m.mode.unwrap_or(0o755));
                    if let Some(size) = m.size {
                        data.push_str(&format!(",size={size}"));
                    }
                    ops.ops.push(Op::Fs {
                        fstype: c"tmpfs",
                        dst: ops.dst(&dst),
                        flags: MountFlags::NOSUID | MountFlags::NODEV,
                        data: Some(cstr(data)),
                    });
                    view.binds.push((dst.clone(), None));
                    shown.push(dst);
                }
                Kind::Proc(dst) => {
                    let dst = not_root(&item, destination(&item, "destination", dst)?)?;
                    if !unshare.contains(Namespaces::PID) {
                        return Err(Error::build(
                            BuildErrorKind::Conflict,
                            item(),
                            "needs unshare(PID): a proc filesystem shows the processes of the child's pid namespace, and without one of its own it would show the caller's",
                        ));
                    }
                    ops.make_destination(&dst, false);
                    ops.ops.push(Op::Fs {
                        fstype: c"proc",
                        dst: ops.dst(&dst),
                        flags: MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
                        data: None,
                    });
                    view.binds.push((dst.clone(), None));
                    shown.push(dst);
                }
                Kind::Dev(dst) => {
                    let dst = not_root(&item, destination(&item, "destination", dst)?)?;
                    if root.is_none() {
                        return Err(Error::build(
                            BuildErrorKind::Conflict,
                            item(),
                            "needs root() or root_tmpfs(): the devices are bound from the old root, which a /dev mounted in place would hide",
                        ));
                    }
                    dev_ops(&mut ops, &dst);
                    view.binds.push((dst.clone(), None));
                    shown.push(dst);
                }
                Kind::RemountRo(path) => {
                    let path = destination(&item, "path", path)?;
                    if root.is_some() && path == Path::new("/") {
                        // Made last, after the old root's directory is gone
                        // from the new "/" (see the child's mounts room).
                        let number = u16::try_from(shown.len() + 1).unwrap_or(u16::MAX);
                        root_read_only = Some((number, read_only_op(cstr("/"), false, setattr)));
                    } else {
                        if m.optional {
                            unless_missing = Some(ops.dst(&path));
                        }
                        ops.ops.push(read_only_op(ops.dst(&path), false, setattr));
                    }
                    shown.push(path);
                }
            }
            mounts.push(MountOps {
                unless_missing,
                ops: Frozen::from(ops.ops),
            });
        }
        Ok((
            MountPlan {
                private,
                // A view of the child's own making is only protected from
                // its root in a nested user namespace, whose maps need ids
                // mapped in the first one: map_root's.
                lock: private && map_root && (new_root.is_some() || !self.mounts.is_empty()),
                root: new_root,
                mounts: Frozen::from(mounts),
                root_read_only,
            },
            view,
            shown,
        ))
    }
}

/// The mount points below `src` (relative to it, parents first) in the
/// calling thread's mount table (`/proc/thread-self/mountinfo`, Linux 3.17:
/// a thread may have a mount namespace of its own, and the child is made
/// from this thread; `/proc/self/mountinfo` before); `None` when it cannot
/// be read.
fn submounts(src: &Path) -> Option<Vec<PathBuf>> {
    let table = std::fs::read("/proc/thread-self/mountinfo")
        .or_else(|_| std::fs::read("/proc/self/mountinfo"))
        .ok()?;
    let mut below = Vec::new();
    for line in table.split(|&b| b == b'\n') {
        // The fifth field is the mount point, with space, tab, newline and
        // backslash written as octal escapes.
        let Some(field) = line.split(|&b| b == b' ').nth(4) else {
            continue;
        };
        let point = PathBuf::from(OsStr::from_bytes(&unescape(field)));
        if let Ok(rest) = point.strip_prefix(src) {
            if !rest.as_os_str().is_empty() {
                below.push(rest.to_owned());
            }
        }
    }
    Some(below)
}

/// Decodes the `\NNN` octal escapes of a mountinfo field.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field.get(i + 1..i + 4).and_then(|d| {
            d.iter()
                .all(|c| (b'0'..=b'7').contains(c))
                .then(|| d.iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0')))
        });
        match (field[i], octal) {
            (b'\\', Some(n)) if n <= 0xff => {
                out.push(n as u8);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Refuses `/` as the destination of a mount that would hide the root
/// under itself.
fn not_root(item: &dyn Fn() -> String, dst: PathBuf) -> Result<PathBuf, Error> {
    if dst == Path::new("/") {
        return Err(Error::build(
            BuildErrorKind::Invalid,
            item(),
            "cannot mount on `/` itself: use root(dir) or root_tmpfs() for a new root",
        ));
    }
    Ok(dst)
}

/// The read-only step for `path`: `mount_setattr` where the system has it,
/// else the remount (one mount).
fn read_only_op(path: Frozen<std::ffi::CStr>, recursive: bool, setattr: bool) -> Op {
    if setattr {
        Op::ReadOnly { path, recursive }
    } else {
        Op::RemountReadOnly(path)
    }
}

/// The operations of a minimal `/dev` at `dst` (a new root exists).
fn dev_ops(ops: &mut Ops<'_>, dst: &Path) {
    ops.make_destination(dst, false);
    ops.ops.push(Op::Fs {
        fstype: c"tmpfs",
        dst: ops.dst(dst),
        flags: MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        data: Some(cstr("mode=0755")),
    });
    for dev in DEVICES {
        let at = dst.join(dev);
        ops.ops.push(Op::Touch(ops.dst(&at)));
        ops.ops.push(Op::Bind {
            src: under(OLD_ROOT.to_bytes(), &Path::new("/dev").join(dev)),
            dst: ops.dst(&at),
            recursive: false,
        });
    }
    let pts = dst.join("pts");
    ops.ops.push(Op::Mkdir(ops.dst(&pts)));
    ops.ops.push(Op::Fs {
        fstype: c"devpts",
        dst: ops.dst(&pts),
        flags: MountFlags::NOSUID | MountFlags::NOEXEC,
        data: Some(cstr("newinstance,ptmxmode=0666,mode=620")),
    });
    let shm = dst.join("shm");
    ops.ops.push(Op::Mkdir(ops.dst(&shm)));
    ops.ops.push(Op::Fs {
        fstype: c"tmpfs",
        dst: ops.dst(&shm),
        flags: MountFlags::NOSUID | MountFlags::NODEV,
        data: Some(cstr("mode=1777")),
    });
    for (name, target) in DEV_LINKS {
        ops.ops.push(Op::Symlink {
            target,
            link: ops.dst(&dst.join(name)),
        });
    }
    // Everything under the new /dev is its own: later mounts need not
    // create these directories again.
    ops.made.insert(pts);
    ops.made.insert(shm);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(changed: bool, dir: Option<&str>, binds: &[(&str, Option<&str>)]) -> View {
        View {
            changed,
            dir: dir.map(PathBuf::from),
            binds: binds
                .iter()
                .map(|(d, s)| (PathBuf::from(d), s.map(PathBuf::from)))
                .collect(),
        }
    }

    #[test]
    fn the_view_maps_paths_through_the_binds_last_first() {
        let v = view(
            true,
            None,
            &[
                ("/usr", Some("/usr")),
                ("/usr/local", None),
                ("/bin", Some("/usr/bin")),
            ],
        );
        assert_eq!(
            v.host_path(Path::new("/bin/sh")),
            Some("/usr/bin/sh".into())
        );
        assert_eq!(
            v.host_path(Path::new("/usr/lib/x")),
            Some("/usr/lib/x".into())
        );
        assert_eq!(v.host_path(Path::new("/usr/local/bin/y")), None);
        assert_eq!(v.host_path(Path::new("/etc/passwd")), None);
        let d = view(true, Some("/srv/root"), &[("/opt", Some("/data"))]);
        assert_eq!(
            d.host_path(Path::new("/etc/passwd")),
            Some("/srv/root/etc/passwd".into())
        );
        assert_eq!(d.host_path(Path::new("/opt")), Some("/data".into()));
        let same = view(false, None, &[]);
        assert_eq!(same.host_path(Path::new("/bin/sh")), Some("/bin/sh".into()));
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape(br"/mnt/a\040b\134c"), b"/mnt/a b\\c".to_vec());
        assert_eq!(unescape(br"/plain"), b"/plain".to_vec());
        assert_eq!(unescape(br"/odd\9"), br"/odd\9".to_vec());
    }

    #[test]
    fn submounts_of_the_root_include_proc() {
        // This process's table: /proc is below "/" wherever tests run
        // with /proc; without it there is no table to read.
        if let Some(below) = submounts(Path::new("/")) {
            assert!(below.contains(&PathBuf::from("proc")), "{below:?}");
        }
    }

    #[test]
    fn destinations_are_cleaned_and_dot_dot_is_refused() {
        let item = || "m".to_owned();
        assert_eq!(
            destination(&item, "d", Path::new("//usr//lib/")).unwrap(),
            PathBuf::from("/usr/lib")
        );
        for bad in ["/a/../etc", "/a/./b", "usr", "./x", "/.."] {
            assert!(destination(&item, "d", Path::new(bad)).is_err(), "{bad}");
        }
    }
}
