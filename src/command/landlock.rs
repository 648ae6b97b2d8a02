//! Landlock: the filesystem and TCP rights the program keeps
//! ([`Command::landlock`] with a [`Landlock`]). `build()` negotiates the
//! ABI with the kernel, creates the ruleset and adds its rules; the child
//! only enforces it (the child's `landlock` room).

use std::ffi::CString;
use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use rustix::fs::{FileType, Mode, OFlags, CWD};
use rustix::io::Errno;

use super::Command;
use crate::child::landlock::LandlockPlan;
use crate::error::{BuildErrorKind, Error};
use crate::mode::Mode as CommandMode;
use crate::sys::landlock::{self as ll, fs_rights, net_rights};

/// The rights the program keeps under Landlock, for [`Command::landlock`]:
/// which paths it may read, write or execute beneath, and which TCP ports
/// it may bind or connect to. Everything of a kind a `Landlock` names
/// (files, TCP) that no rule allows is denied, with `EACCES`.
///
/// Path rules are made at `build()`, on the inodes the paths lead to then
/// (symbolic links followed), and cover everything beneath them (see
/// [`Command::landlock`] for what that means with mounts and a new root).
///
/// ```
/// use safespawn::Landlock;
/// let l = Landlock::new()
///     .allow_read("/usr")
///     .allow_exec("/usr")
///     .allow_write("/tmp")
///     .allow_tcp_connect(443);
/// assert_eq!(
///     l.to_string(),
///     r#"Landlock::new().allow_read("/usr").allow_exec("/usr").allow_write("/tmp").allow_tcp_connect(443)"#
/// );
/// ```
///
/// # Errors
///
/// None here: `build()` checks every rule (see [`Command::landlock`]).
///
/// # References
///
/// [`landlock(7)`](https://man7.org/linux/man-pages/man7/landlock.7.html),
/// [`landlock_create_ruleset(2)`](https://man7.org/linux/man-pages/man2/landlock_create_ruleset.2.html),
/// [`landlock_add_rule(2)`](https://man7.org/linux/man-pages/man2/landlock_add_rule.2.html),
/// [`landlock_restrict_self(2)`](https://man7.org/linux/man-pages/man2/landlock_restrict_self.2.html).
/// Linux 5.13 (ABI 1); the ABI each right needs is in
/// [`Command::landlock`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Landlock {
    rules: Vec<Rule>,
    best_effort: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Rule {
    Path(PathBuf, PathAccess),
    Port(u16, PortAccess),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PathAccess {
    Read,
    Write,
    Exec,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PortAccess {
    Bind,
    Connect,
}

/// What `allow_read` grants: read files, list directories.
const READ: u64 = ll::FS_READ_FILE | ll::FS_READ_DIR;
/// What `allow_write` grants: reading too, and every change to what lies
/// beneath but making devices.
const WRITE: u64 = READ
    | ll::FS_WRITE_FILE
    | ll::FS_REMOVE_DIR
    | ll::FS_REMOVE_FILE
    | ll::FS_MAKE_DIR
    | ll::FS_MAKE_REG
    | ll::FS_MAKE_SOCK
    | ll::FS_MAKE_FIFO
    | ll::FS_MAKE_SYM
    | ll::FS_REFER
    | ll::FS_TRUNCATE
    | ll::FS_IOCTL_DEV;
/// What `allow_exec` grants: executing a file, which also reads it (the
/// kernel checks both when it opens the file for execution).
const EXEC: u64 = ll::FS_EXECUTE | ll::FS_READ_FILE;

/// The ABI that lets every path rule's promise be kept: truncation (ABI
/// 3) is denied outside `allow_write` and allowed beneath it.
const FS_ABI: u32 = 3;
/// The ABI of TCP rules.
const NET_ABI: u32 = 4;

impl Landlock {
    /// A `Landlock` without rules: add them with the `allow_*` methods
    /// (`build()` refuses one that has none).
    ///
    /// ```
    /// let l = safespawn::Landlock::new();
    /// assert_eq!(l.to_string(), "Landlock::new()");
    /// ```
    pub fn new() -> Landlock {
        Landlock::default()
    }

    fn rule(mut self, rule: Rule) -> Landlock {
        self.rules.push(rule);
        self
    }

    /// The program may read files and list directories beneath `path` (or
    /// read the file `path`), and nothing else there: no writing, creating,
    /// removing, renaming, truncating or executing.
    ///
    /// ```
    /// let l = safespawn::Landlock::new().allow_read("/etc");
    /// assert_eq!(l.to_string(), r#"Landlock::new().allow_read("/etc")"#);
    /// ```
    pub fn allow_read(self, path: impl Into<PathBuf>) -> Landlock {
        self.rule(Rule::Path(path.into(), PathAccess::Read))
    }

    /// The program may read and change what lies beneath `path`: read,
    /// write and truncate files; list directories; create regular files,
    /// directories, symbolic links, named pipes and sockets; remove, rename
    /// and link files and directories, into and out of other directories
    /// where a rule allows the same (`LANDLOCK_ACCESS_FS_REFER`: without
    /// it, from ABI 1 alone, a rename or link between directories fails
    /// with `EXDEV`); `ioctl` on devices opened beneath (from ABI 5).
    /// Device nodes cannot be created. On a file, the file rights alone
    /// apply (read, write, truncate, device `ioctl`).
    ///
    /// ```
    /// let l = safespawn::Landlock::new().allow_write("/tmp");
    /// assert_eq!(l.to_string(), r#"Landlock::new().allow_write("/tmp")"#);
    /// ```
    pub fn allow_write(self, path: impl Into<PathBuf>) -> Landlock {
        self.rule(Rule::Path(path.into(), PathAccess::Write))
    }

    /// The program may execute files beneath `path` (or the file `path`):
    /// `execve(2)`, which also reads the file, so this allows reading files
    /// there too, but not listing directories. A dynamically linked program
    /// also needs its interpreter (`/lib64/ld-linux-x86-64.so.2`, say)
    /// executable and its libraries readable, and the program itself must
    /// be executable under the rules, or the spawn fails at
    /// [`Stage::Exec`](crate::Stage::Exec) with `EACCES`.
    ///
    /// ```
    /// let l = safespawn::Landlock::new().allow_exec("/usr/bin");
    /// assert_eq!(l.to_string(), r#"Landlock::new().allow_exec("/usr/bin")"#);
    /// ```
    pub fn allow_exec(self, path: impl Into<PathBuf>) -> Landlock {
        self.rule(Rule::Path(path.into(), PathAccess::Exec))
    }

    /// The program may bind TCP sockets to `port` (ABI 4, Linux 6.7). A
    /// `Landlock` with any TCP rule denies binding and connecting to every
    /// port no rule names. UDP, UNIX domain and other sockets are not
    /// restricted.
    ///
    /// ```
    /// let l = safespawn::Landlock::new().allow_tcp_bind(8080);
    /// assert_eq!(l.to_string(), "Landlock::new().allow_tcp_bind(8080)");
    /// ```
    pub fn allow_tcp_bind(self, port: u16) -> Landlock {
        self.rule(Rule::Port(port, PortAccess::Bind))
    }

    /// The program may connect TCP sockets to `port` (ABI 4, Linux 6.7), on
    /// any address; as for [`allow_tcp_bind`](Landlock::allow_tcp_bind),
    /// every other port is denied.
    ///
    /// ```
    /// let l = safespawn::Landlock::new().allow_tcp_connect(443);
    /// assert_eq!(l.to_string(), "Landlock::new().allow_tcp_connect(443)");
    /// ```
    pub fn allow_tcp_connect(self, port: u16) -> Landlock {
        self.rule(Rule::Port(port, PortAccess::Connect))
    }

    /// Accepts a kernel that enforces only part of the rules: what its ABI
    /// lacks is left out (truncation before ABI 3, TCP rules before ABI 4;
    /// see [`Command::landlock`]). Without it, `build()` refuses such a
    /// kernel. Even with it, `build()` refuses a kernel that would enforce
    /// *nothing* of the `Landlock` (no landlock at all, or only TCP rules
    /// before ABI 4): a confinement that silently confines nothing is not
    /// an effort. [`Prepared::landlock_abi`](crate::Prepared::landlock_abi)
    /// tells what the kernel offered.
    ///
    /// ```
    /// let l = safespawn::Landlock::new().allow_read("/").best_effort();
    /// assert_eq!(l.to_string(), r#"Landlock::new().allow_read("/").best_effort()"#);
    /// ```
    pub fn best_effort(mut self) -> Landlock {
        self.best_effort = true;
        self
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Path(p, PathAccess::Read) => write!(f, "allow_read({p:?})"),
            Rule::Path(p, PathAccess::Write) => write!(f, "allow_write({p:?})"),
            Rule::Path(p, PathAccess::Exec) => write!(f, "allow_exec({p:?})"),
            Rule::Port(n, PortAccess::Bind) => write!(f, "allow_tcp_bind({n})"),
            Rule::Port(n, PortAccess::Connect) => write!(f, "allow_tcp_connect({n})"),
        }
    }
}

/// The `Landlock` as Rust that would make it.
impl fmt::Display for Landlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Landlock::new()")?;
        for rule in &self.rules {
            write!(f, ".{rule}")?;
        }
        if self.best_effort {
            f.write_str(".best_effort()")?;
        }
        Ok(())
    }
}

/// What a command records about landlock.
#[derive(Debug, Default)]
pub(crate) struct LandlockConfig {
    pub landlock: Option<Landlock>,
}

/// The frozen result: the child's part, the ruleset for the plan to own,
/// and the ABI the kernel offered.
#[derive(Debug, Default)]
pub(crate) struct FrozenLandlock {
    pub plan: LandlockPlan,
    pub ruleset: Option<OwnedFd>,
    pub abi: Option<u32>,
}

impl<M: CommandMode> Command<M> {
    /// Confines the program with Landlock: it keeps the filesystem and TCP
    /// rights the [`Landlock`]'s rules allow, and loses every other right
    /// of the kinds it names (a `Landlock` with path rules restricts the
    /// filesystem, one with TCP rules restricts TCP, one with both, both).
    /// Denied accesses fail with `EACCES`. The confinement is inherited by
    /// everything the program starts and cannot be undone.
    ///
    /// `build()` asks the kernel for its landlock ABI, creates the ruleset
    /// with every right of the kinds named that the ABI knows as *handled*
    /// (denied unless a rule allows it), and adds one rule per path (opened
    /// `O_PATH | O_CLOEXEC` and closed again) and per port. The `Prepared`
    /// owns the ruleset (one close-on-exec fd) and every spawn uses it: the
    /// child calls `landlock_restrict_self` on it, and the kernel builds
    /// the child's domain from a copy of the rules, so the ruleset stays
    /// valid for the next one. The child's step comes after the mounts (a
    /// landlocked process cannot change its mount topology), the
    /// credentials, the working directory and the hooks (which are the
    /// caller's set-up and keep every right), and before the pause of
    /// [`spawn_paused`](crate::Prepared::spawn_paused) and seccomp. The
    /// fd steps never place a planned fd over the ruleset's number, nor
    /// close it before its use.
    ///
    /// `landlock_restrict_self` needs `no_new_privs` or `CAP_SYS_ADMIN`:
    /// unless the child keeps `CAP_SYS_ADMIN` through its credential steps
    /// (root, or uid 0 in a new user namespace, not dropping it), this sets
    /// [`no_new_privs`](Command::no_new_privs) too. So a set-user-ID
    /// program (`sudo`, `pkexec`) gains nothing under Landlock.
    ///
    /// # The ABI and what it enforces
    ///
    /// | ABI | Linux | brings |
    /// |---|---|---|
    /// | 1 | 5.13 | files: execute, read, write, list, create, remove |
    /// | 2 | 5.19 | renames and links between directories (`REFER`): before it they always fail with `EXDEV` |
    /// | 3 | 6.2 | truncation (`truncate(2)`, `O_TRUNC`): before it never denied |
    /// | 4 | 6.7 | TCP bind and connect |
    /// | 5 | 6.10 | `ioctl` on devices (allowed by `allow_write`), handled where the kernel has it, never required |
    ///
    /// Without [`best_effort`](Landlock::best_effort), path rules need ABI
    /// 3 (before it, a file under a read-only rule could still be
    /// truncated) and TCP rules ABI 4; `build()` refuses a kernel with
    /// less, naming the rule and the right. With it, whatever the ABI
    /// lacks is left out, as long as something is enforced.
    /// [`Prepared::landlock_abi`](crate::Prepared::landlock_abi) returns
    /// the ABI found.
    ///
    /// # Paths, mounts and a new root
    ///
    /// Rules name paths as the caller sees them at `build()`, and hold on
    /// to the inodes found there: a file replaced at that path later is
    /// not covered. Whether a file lies *beneath* a rule is decided at each
    /// access, walking up from the file through the child's own mounts. So
    /// with [`root`](Command::root) or [`root_tmpfs`](Command::root_tmpfs),
    /// a rule on `/usr` covers `/usr` bound anywhere in the child's view
    /// (the bind's root is the rule's inode), and one on the caller's
    /// `/dev/null` covers the `null` of [`Mount::dev`](crate::Mount::dev);
    /// but not `/usr/bin` bound alone at `/bin` (give that directory its
    /// own rule), and nothing the child mounts afresh (the new root's
    /// tmpfs, [`Mount::tmpfs`](crate::Mount::tmpfs), `proc`) is beneath
    /// any rule. Files the child has open before the step (its standard
    /// streams, passed fds) stay usable as they were opened.
    ///
    /// # Errors
    ///
    /// `build()` refuses, naming the rule where there is one: a second
    /// `landlock` call ([`BuildErrorKind::Conflict`]: put every rule in one
    /// `Landlock`); a `Landlock` without rules
    /// ([`BuildErrorKind::Invalid`]); a relative path
    /// ([`BuildErrorKind::Invalid`]) or one with a NUL byte
    /// ([`BuildErrorKind::Nul`]); a path that does not exist
    /// ([`BuildErrorKind::NotFound`]), cannot be opened, or is one the
    /// kernel will not hold a rule for, on an internal filesystem
    /// ([`BuildErrorKind::Invalid`], with the errno) — all of these before
    /// the kernel is asked about landlock, so they read the same on every
    /// system; a system without
    /// landlock (`ENOSYS` before 5.13, `EOPNOTSUPP` when not enabled at
    /// boot, `EPERM` from a container's seccomp profile), even with
    /// `best_effort`, and a kernel whose ABI lacks a right the rules need
    /// ([`BuildErrorKind::Conflict`]). A failing system call of the
    /// ruleset's creation is [`Error::Io`]. The child's
    /// `landlock_restrict_self` failing is [`Error::Spawn`] at
    /// [`Stage::Landlock`](crate::Stage::Landlock) (`EPERM` when a hook
    /// dropped `CAP_SYS_ADMIN` the plan counted on).
    ///
    /// # References
    ///
    /// [`landlock(7)`](https://man7.org/linux/man-pages/man7/landlock.7.html),
    /// [`landlock_create_ruleset(2)`](https://man7.org/linux/man-pages/man2/landlock_create_ruleset.2.html),
    /// [`landlock_add_rule(2)`](https://man7.org/linux/man-pages/man2/landlock_add_rule.2.html),
    /// [`landlock_restrict_self(2)`](https://man7.org/linux/man-pages/man2/landlock_restrict_self.2.html);
    /// Linux 5.13, ABI 3 (Linux 6.2) for path rules and ABI 4 (Linux 6.7)
    /// for TCP rules without `best_effort`.
    ///
    /// ```no_run
    /// use safespawn::{Command, Landlock};
    /// // Reads /etc and the system, writes only /tmp, runs programs of /usr.
    /// let out = Command::new("/usr/bin/cat")
    ///     .arg("/etc/hostname")
    ///     .landlock(
    ///         Landlock::new()
    ///             .allow_read("/etc")
    ///             .allow_read("/usr")
    ///             .allow_exec("/usr")
    ///             .allow_write("/tmp"),
    ///     )
    ///     .capture_stdout()
    ///     .run()?;
    /// // The same, where /home is off limits:
    /// let err = Command::new("/usr/bin/cat")
    ///     .arg("/home")
    ///     .landlock(Landlock::new().allow_read("/usr").allow_exec("/usr"))
    ///     .capture_stderr()
    ///     .run();
    /// assert!(err.is_err()); // cat: /home: Permission denied
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn landlock(mut self, landlock: Landlock) -> Self {
        if self.cfg.landlock.landlock.is_some() {
            self.defer(Error::build(
                BuildErrorKind::Conflict,
                format!("landlock({landlock})"),
                "landlock() is given twice: put every rule in one Landlock",
            ));
        } else {
            self.cfg.landlock.landlock = Some(landlock);
        }
        self
    }
}

/// The item of a rule in errors.
fn item(rule: &Rule) -> String {
    format!("Landlock::{rule}")
}

/// What a system without landlock answered, in words.
fn why_none(errno: Errno) -> String {
    let text: &str = match errno {
        Errno::NOSYS => {
            "the kernel has no landlock (ENOSYS: before Linux 5.13, or built without it)"
        }
        Errno::OPNOTSUPP => {
            "landlock is built in but not enabled (EOPNOTSUPP: add it to the lsm= boot parameter)"
        }
        Errno::PERM => "landlock is refused here (EPERM, as a container's seccomp profile does)",
        e => {
            return format!(
                "asking for the landlock ABI failed: {}",
                std::io::Error::from(e)
            )
        }
    };
    text.to_owned()
}

impl LandlockConfig {
    /// Whether the command asks for landlock.
    pub(crate) fn wanted(&self) -> bool {
        self.landlock.is_some()
    }

    /// Checks the rules, negotiates the ABI and builds the ruleset.
    pub(crate) fn freeze(&self) -> Result<FrozenLandlock, Error> {
        let Some(l) = &self.landlock else {
            return Ok(FrozenLandlock::default());
        };
        if l.rules.is_empty() {
            return Err(Error::build(
                BuildErrorKind::Invalid,
                l.to_string(),
                "has no rule: add allow_read, allow_write, allow_exec, allow_tcp_bind or allow_tcp_connect",
            ));
        }
        // Every path checked and opened first, so that a bad one is named
        // the same way on every kernel.
        let mut checked = Vec::new();
        for rule in &l.rules {
            if let Rule::Path(path, access) = rule {
                checked.push((rule, path_cstring(rule, path)?, *access));
            }
        }
        let mut paths = Vec::with_capacity(checked.len());
        for (rule, path, access) in checked {
            let (fd, is_dir) = open_path(rule, &path)?;
            paths.push((rule, fd, is_dir, access));
        }
        let port_rules = l.rules.iter().any(|r| matches!(r, Rule::Port(..)));
        let abi = ll::abi().map_err(|e| {
            Error::build(
                BuildErrorKind::Conflict,
                l.to_string(),
                format!(
                    "{}: nothing of it would be enforced, which not even best_effort() accepts",
                    why_none(e)
                ),
            )
        })?;
        if !l.best_effort {
            strict_check(l, abi)?;
        }
        let handled_fs = if paths.is_empty() { 0 } else { fs_rights(abi) };
        let handled_net = if port_rules { net_rights(abi) } else { 0 };
        if handled_fs == 0 && handled_net == 0 {
            return Err(Error::build(
                BuildErrorKind::Conflict,
                l.to_string(),
                format!(
                    "TCP rules need landlock ABI {NET_ABI} (Linux 6.7) and this kernel has ABI {abi}: nothing would be enforced, which best_effort() does not accept"
                ),
            ));
        }
        let ruleset = ll::create_ruleset(handled_fs, handled_net).map_err(|e| match e {
            Errno::INVAL => Error::build(
                BuildErrorKind::Conflict,
                l.to_string(),
                format!("the kernel reports landlock ABI {abi} but refuses the rights it brings (EINVAL)"),
            ),
            e => Error::io("creating the landlock ruleset", e),
        })?;
        for (rule, fd, is_dir, access) in &paths {
            let mut allowed = match access {
                PathAccess::Read => READ,
                PathAccess::Write => WRITE,
                PathAccess::Exec => EXEC,
            } & handled_fs;
            if !is_dir {
                allowed &= ll::FS_FILE_RIGHTS;
            }
            ll::add_path_rule(ruleset.as_fd(), allowed, fd.as_fd()).map_err(|e| match e {
                // Paths landlock cannot hold a rule for (an internal
                // filesystem, a disconnected path).
                Errno::BADFD | Errno::INVAL => Error::build(
                    BuildErrorKind::Invalid,
                    item(rule),
                    format!(
                        "the kernel refuses a landlock rule there: {}",
                        std::io::Error::from(e)
                    ),
                ),
                e => Error::io(&format!("adding the landlock rule {}", item(rule)), e),
            })?;
        }
        // The O_PATH fds are closed here; the rules hold the inodes.
        drop(paths);
        if handled_net != 0 {
            for rule in &l.rules {
                if let Rule::Port(port, access) = rule {
                    let right = match access {
                        PortAccess::Bind => ll::NET_BIND_TCP,
                        PortAccess::Connect => ll::NET_CONNECT_TCP,
                    };
                    ll::add_port_rule(ruleset.as_fd(), right, *port).map_err(|e| {
                        Error::io(&format!("adding the landlock rule {}", item(rule)), e)
                    })?;
                }
            }
        }
        Ok(FrozenLandlock {
            plan: LandlockPlan {
                ruleset: std::os::fd::AsRawFd::as_raw_fd(&ruleset),
            },
            ruleset: Some(ruleset),
            abi: Some(abi),
        })
    }
}

/// The path of a rule as a C string: absolute, without NUL.
fn path_cstring(rule: &Rule, path: &std::path::Path) -> Result<CString, Error> {
    let b = path.as_os_str().as_bytes();
    if let Some(at) = b.iter().position(|&c| c == 0) {
        return Err(Error::build(
            BuildErrorKind::Nul,
            item(rule),
            format!("the path contains a NUL byte at offset {at}"),
        ));
    }
    if b.first() != Some(&b'/') {
        return Err(Error::build(
            BuildErrorKind::Invalid,
            item(rule),
            format!("{path:?} is not an absolute path"),
        ));
    }
    Ok(CString::new(b).unwrap_or_default())
}

/// Refuses a kernel whose ABI cannot keep every rule's promise, naming the
/// first rule it fails and the rights it lacks.
fn strict_check(l: &Landlock, abi: u32) -> Result<(), Error> {
    for rule in &l.rules {
        let mut lacks = Vec::new();
        match rule {
            Rule::Path(_, access) => {
                if abi < FS_ABI {
                    lacks.push(match access {
                        PathAccess::Write => "LANDLOCK_ACCESS_FS_TRUNCATE (ABI 3, Linux 6.2: truncation allowed beneath this path and denied elsewhere)",
                        _ => "LANDLOCK_ACCESS_FS_TRUNCATE (ABI 3, Linux 6.2: without it a file beneath a path without allow_write can still be truncated)",
                    });
                }
                if abi < 2 && *access == PathAccess::Write {
                    lacks.push("LANDLOCK_ACCESS_FS_REFER (ABI 2, Linux 5.19: without it renames and links between directories fail with EXDEV)");
                }
            }
            Rule::Port(_, access) => {
                if abi < NET_ABI {
                    lacks.push(match access {
                        PortAccess::Bind => "LANDLOCK_ACCESS_NET_BIND_TCP (ABI 4, Linux 6.7)",
                        PortAccess::Connect => "LANDLOCK_ACCESS_NET_CONNECT_TCP (ABI 4, Linux 6.7)",
                    });
                }
            }
        }
        if !lacks.is_empty() {
            return Err(Error::build(
                BuildErrorKind::Conflict,
                item(rule),
                format!(
                    "needs {}; this kernel has landlock ABI {abi} (best_effort() accepts a kernel that enforces less)",
                    lacks.join(" and ")
                ),
            ));
        }
    }
    Ok(())
}

/// Opens the rule's path (`O_PATH | O_CLOEXEC`, following symbolic links):
/// the fd, and whether it is a directory.
fn open_path(rule: &Rule, path: &CString) -> Result<(OwnedFd, bool), Error> {
    let fd = rustix::fs::openat(
        CWD,
        path.as_c_str(),
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::NOENT => Error::build(BuildErrorKind::NotFound, item(rule), "does not exist"),
        Errno::MFILE | Errno::NFILE | Errno::NOMEM => {
            Error::io(&format!("opening the path of {}", item(rule)), e)
        }
        e => Error::build(
            BuildErrorKind::Invalid,
            item(rule),
            format!("cannot be opened: {}", std::io::Error::from(e)),
        ),
    })?;
    let is_dir = rustix::fs::fstat(&fd)
        .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
        .map_err(|e| Error::io(&format!("looking at the path of {}", item(rule)), e))?;
    Ok((fd, is_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kinds_of_rights_are_what_their_names_say() {
        assert_eq!(WRITE & READ, READ, "writing includes reading");
        assert_eq!(WRITE & ll::FS_EXECUTE, 0, "writing is not executing");
        assert_eq!(
            WRITE & (ll::FS_MAKE_CHAR | ll::FS_MAKE_BLOCK),
            0,
            "no devices"
        );
        assert_eq!(EXEC & ll::FS_READ_DIR, 0);
        assert_eq!(READ & ll::FS_FILE_RIGHTS, ll::FS_READ_FILE);
        assert_eq!(WRITE & !fs_rights(7), 0);
    }

    #[test]
    fn strictness_names_the_rule_and_the_right() {
        let l = Landlock::new().allow_read("/").allow_write("/tmp");
        assert!(strict_check(&l, 3).is_ok());
        let e = strict_check(&l, 2).unwrap_err().to_string();
        assert!(e.contains(r#"Landlock::allow_read("/")"#), "{e}");
        assert!(e.contains("TRUNCATE") && e.contains("ABI 2"), "{e}");
        let w = Landlock::new().allow_write("/tmp");
        let e = strict_check(&w, 1).unwrap_err().to_string();
        assert!(e.contains("REFER") && e.contains("TRUNCATE"), "{e}");
        let t = Landlock::new().allow_tcp_connect(443);
        assert!(strict_check(&t, 4).is_ok());
        let e = strict_check(&t, 3).unwrap_err().to_string();
        assert!(
            e.contains("allow_tcp_connect(443)") && e.contains("CONNECT_TCP"),
            "{e}"
        );
    }
}
