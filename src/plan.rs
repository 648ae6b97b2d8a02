//! `build()`: every check, and the frozen plan the spawn path reads.
//!
//! After `build()` nothing is left to decide or allocate: argv, envp, the
//! program path and the working directory are contiguous NUL-terminated
//! buffers with their pointer arrays; the fd plan says which fd lands where,
//! in which order; `/dev/null` is open.

use std::ffi::{c_char, CString, OsStr, OsString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustix::fs::{Gid, Mode as FileMode, Uid};
use rustix::io::Errno;
use rustix::process::{Resource, Rlimit, Signal};

use crate::command::{Config, FdRequest};
use crate::error::{BuildErrorKind, Error, Stage};
use crate::stdio::StdioKind;
use crate::{quote, sys};

/// A `pre_exec` hook as stored in a plan.
pub(crate) type Hook = Arc<dyn Fn() -> Result<(), Errno> + Send + Sync + 'static>;

/// NUL-terminated strings in one buffer, with a null-terminated pointer array
/// into it: exactly what `execve` takes.
pub(crate) struct CStrArray {
    /// The strings, each followed by a NUL; `ptrs` points into it, so it
    /// must live as long.
    buf: Box<[u8]>,
    ptrs: Box<[*const c_char]>,
}

// SAFETY: the pointers point into `buf`, a heap allocation owned by the same
// value and never written after construction; moving the value does not move
// the heap data, and sharing it only ever reads it.
unsafe impl Send for CStrArray {}
// SAFETY: as above: the data is immutable after construction.
unsafe impl Sync for CStrArray {}

impl CStrArray {
    /// `items` must not contain NUL bytes (checked by `build()` before).
    fn new<'a>(items: impl Iterator<Item = &'a [u8]> + Clone) -> CStrArray {
        let total: usize = items.clone().map(|s| s.len() + 1).sum();
        let mut buf = Vec::with_capacity(total);
        let mut starts = Vec::new();
        for s in items {
            starts.push(buf.len());
            buf.extend_from_slice(s);
            buf.push(0);
        }
        let buf = buf.into_boxed_slice();
        let base = buf.as_ptr();
        let ptrs: Box<[*const c_char]> = starts
            .iter()
            .map(|&off| base.wrapping_add(off).cast::<c_char>())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        CStrArray { buf, ptrs }
    }

    pub(crate) fn as_ptr(&self) -> *const *const c_char {
        self.ptrs.as_ptr()
    }

    /// The strings, without their NULs (for display; never in the child).
    pub(crate) fn items(&self) -> impl Iterator<Item = &OsStr> {
        let count = self.ptrs.len() - 1;
        let body = &self.buf[..self.buf.len().saturating_sub(1)];
        body.split(|&b| b == 0).take(count).map(OsStr::from_bytes)
    }
}

/// Where a planned fd comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Src {
    /// An fd open in the parent (owned by the plan, or borrowed).
    Fd(RawFd),
    /// The `i`-th per-spawn fd (pipe ends made by the spawning call).
    Dynamic(usize),
}

/// How the child closes the fds it does not keep (see `child::close_other_fds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseFds {
    /// `close_range(CLOSE_RANGE_CLOEXEC)` over the gaps between targets.
    Cloexec,
    /// Plain `close_range` over the gaps between every kept fd.
    Close,
    /// A walk of `/proc/self/fd`.
    Walk,
}

impl CloseFds {
    /// The best method this kernel has, or `forced` (for tests) where the
    /// kernel has that one.
    fn choose(forced: Option<CloseFds>) -> CloseFds {
        let best = if !sys::have_close_range() {
            CloseFds::Walk
        } else if sys::have_close_range_cloexec() {
            CloseFds::Cloexec
        } else {
            CloseFds::Close
        };
        match (forced, best) {
            (Some(CloseFds::Walk), _) | (_, CloseFds::Walk) => CloseFds::Walk,
            (Some(CloseFds::Close), _) => CloseFds::Close,
            _ => best,
        }
    }
}

/// Per-spawn slots: the child ends of stdin, stdout and stderr pipes; then
/// send buffers (buffered mode).
pub(crate) const SLOT_STDIN: usize = 0;
pub(crate) const SLOT_STDOUT: usize = 1;
pub(crate) const SLOT_STDERR: usize = 2;
pub(crate) const SLOT_SEND_BUFFERS: usize = 3;
const STDIO_SLOTS: [usize; 3] = [SLOT_STDIN, SLOT_STDOUT, SLOT_STDERR];

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

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SignalPolicy {
    pub keep_mask: bool,
    pub keep_ignored: bool,
    /// The signals the parent ignored when `build()` ran (bit `n - 1` for
    /// signal `n`); empty with `keep_ignored`. On the `clone3` path the
    /// kernel resets every handler, so these are the only dispositions the
    /// child still sets (see `child::reset_signals`).
    pub ignored_at_build: u64,
}

/// Process attributes and privileges, applied in this order by the child.
#[derive(Debug, Default)]
pub(crate) struct Privileges {
    pub umask: Option<FileMode>,
    pub rlimits: Box<[(Resource, Rlimit)]>,
    pub groups: Option<Box<[Gid]>>,
    pub gid: Option<Gid>,
    pub uid: Option<Uid>,
    /// The capabilities to keep when capabilities are to be cleared.
    pub caps: Option<u64>,
    pub no_new_privs: bool,
    pub parent_death_signal: Option<Signal>,
    pub new_session: bool,
    pub process_group: Option<i32>,
}

/// Buffered mode's data.
#[derive(Debug, Default)]
pub(crate) struct BufferedPlan {
    pub input: Option<Vec<u8>>,
    pub capture_stdout: bool,
    pub capture_stderr: bool,
    pub interleaved: bool,
    /// (child fd, bytes), in `Src::Dynamic(SLOT_SEND_BUFFERS + i)` order.
    pub send_buffers: Vec<(RawFd, Vec<u8>)>,
    pub wait_delay: Duration,
}

/// Daemon mode's data.
#[derive(Debug, Default)]
pub(crate) struct DaemonPlan {
    pub pidfile: Option<CString>,
}

/// The frozen result of `build()`.
pub(crate) struct Plan {
    /// The program as given, for error messages.
    pub program: Arc<str>,
    /// The shell-quoted command line.
    pub line: Arc<str>,
    /// Whether `envp` is the command's own list (shown in its line), not an
    /// inherited environment (never shown).
    pub env_shown: bool,
    /// The resolved program path passed to execve.
    pub path: CString,
    pub argv: CStrArray,
    pub envp: CStrArray,
    pub cwd: Option<CString>,
    pub maps: Box<[FdMap]>,
    /// Every target fd, sorted.
    pub targets: Box<[RawFd]>,
    /// The highest fd the plan names (sources and targets).
    pub max_static_fd: RawFd,
    /// Which standard streams get a new pipe per spawn.
    pub stdio_pipes: [bool; 3],
    pub nonblocking_pipes: bool,
    /// How the child closes inherited fds.
    pub close_fds: CloseFds,
    pub signals: SignalPolicy,
    pub privileges: Privileges,
    pub hooks: Box<[Hook]>,
    pub forbid_fork: bool,
    pub timeout: Option<Duration>,
    pub buffered: BufferedPlan,
    pub daemon: Option<DaemonPlan>,
    /// Fds the plan owns, kept open for the child to copy; closed when the
    /// plan is dropped.
    pub _owned: Vec<OwnedFd>,
    /// The report pipe kept between vfork-style spawns.
    pub report_pipes: crate::report_pipe::ReportPipes,
}

impl Plan {
    /// Whether `fd` is some planned target. Child-safe.
    #[inline]
    pub(crate) fn is_target(&self, fd: RawFd) -> bool {
        self.targets.binary_search(&fd).is_ok()
    }

    /// Whether spawning needs the fork path (vfork-style is unsound for hooks).
    pub(crate) fn needs_fork(&self) -> bool {
        !self.hooks.is_empty()
    }
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("line", &self.line)
            .field("path", &self.path)
            .field("cwd", &self.cwd)
            .field("maps", &self.maps)
            .field("hooks", &self.hooks.len())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The kernel's limit for one argument or environment string, NUL included.
const MAX_ARG_STRLEN: usize = 32 * 4096;

/// A short, printable rendering of a possibly long, possibly binary value.
pub(crate) fn shown(s: &OsStr) -> String {
    let b = s.as_bytes();
    let cut = &b[..b.len().min(40)];
    let mut out = format!("{:?}", String::from_utf8_lossy(cut));
    if b.len() > cut.len() {
        out.push_str(&format!(" ({} bytes)", b.len()));
    }
    out
}

fn nul_problem(bytes: &[u8]) -> Option<String> {
    bytes
        .iter()
        .position(|&b| b == 0)
        .map(|at| format!("contains a NUL byte at offset {at}"))
}

/// Why a string of `len` bytes is too long for execve, if it is.
fn too_long(len: usize, what: &str) -> Option<String> {
    (len + 1 > MAX_ARG_STRLEN).then(|| {
        format!(
            "is {len} bytes; the kernel refuses a single {what} over {} bytes (E2BIG)",
            MAX_ARG_STRLEN - 1
        )
    })
}

fn cstring(item: impl FnOnce() -> String, s: &OsStr) -> Result<CString, Error> {
    CString::new(s.as_bytes()).map_err(|e| {
        Error::build(
            BuildErrorKind::Nul,
            item(),
            format!("contains a NUL byte at offset {}", e.nul_position()),
        )
    })
}

/// Moves `fd` to a number above the standard streams, so that a parent whose
/// stdio is closed cannot see its own pipes chosen as a child's stdio.
pub(crate) fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, Errno> {
    if fd.as_raw_fd() > 2 {
        Ok(fd)
    } else {
        rustix::io::fcntl_dupfd_cloexec(&fd, 3)
    }
}

impl Config {
    /// Validates everything and freezes the plan.
    pub(crate) fn into_plan(mut self) -> Result<Plan, Error> {
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        let line: Arc<str> = self.display_line().into();
        let program = self.argv.first().cloned().unwrap_or_default();
        if program.is_empty() {
            return Err(Error::build(BuildErrorKind::Invalid, "program", "is empty"));
        }
        let program_shown: Arc<str> = program.to_string_lossy().into();

        // argv
        for (i, a) in self.argv.iter().enumerate() {
            let item = || {
                if i == 0 {
                    format!("program {}", shown(a))
                } else {
                    format!("argument {i} {}", shown(a))
                }
            };
            if let Some(p) = nul_problem(a.as_bytes()) {
                return Err(Error::build(BuildErrorKind::Nul, item(), p));
            }
            if let Some(p) = too_long(a.len(), "argument") {
                return Err(Error::build(BuildErrorKind::TooLong, item(), p));
            }
        }

        // environment
        let env = self.env.resolve();
        let mut env_bytes: Vec<Vec<u8>> = Vec::with_capacity(env.len());
        for (k, v) in &env {
            let item = || format!("environment variable {}", shown(k));
            if let Some(p) = crate::env::name_problem(k) {
                return Err(Error::build(p.0, item(), p.1));
            }
            if let Some(p) = nul_problem(v.as_bytes()) {
                return Err(Error::build(
                    BuildErrorKind::Nul,
                    item(),
                    format!("the value {p}"),
                ));
            }
            let mut entry = Vec::with_capacity(k.len() + v.len() + 1);
            entry.extend_from_slice(k.as_bytes());
            entry.push(b'=');
            entry.extend_from_slice(v.as_bytes());
            if let Some(p) = too_long(entry.len(), "variable") {
                return Err(Error::build(BuildErrorKind::TooLong, item(), p));
            }
            env_bytes.push(entry);
        }

        // program path
        let child_path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone());
        let path = match crate::resolve::program_path(&program, child_path) {
            Ok(path) => path,
            // A dry run records lines; it must not depend on what this
            // machine has installed.
            Err(_) if crate::dry_run::active() => std::path::PathBuf::from(&program),
            Err(e) => return Err(e),
        };
        let path = cstring(|| format!("program {}", shown(&program)), path.as_os_str())?;

        // the kernel's total limit
        self.check_total_size(&env_bytes, path.as_bytes().len())?;

        let cwd = match &self.cwd {
            Some(dir) => Some(cstring(
                || format!("working directory {}", shown(dir.as_os_str())),
                dir.as_os_str(),
            )?),
            None => None,
        };

        let privileges = self.privileges()?;
        let hooks: Box<[Hook]> = std::mem::take(&mut self.hooks).into_boxed_slice();
        if self.forbid_fork && !hooks.is_empty() {
            return Err(Error::build(
                BuildErrorKind::Conflict,
                "pre_exec",
                "a pre_exec hook needs the fork path, which forbid_fork() refuses",
            ));
        }

        let mut owned = Vec::new();
        let fds = self.fd_plan(&mut owned)?;

        let daemon = match self.daemon.take() {
            Some(pidfile) => Some(self.daemon_plan(pidfile, &fds)?),
            None => None,
        };

        Ok(Plan {
            program: program_shown,
            line,
            env_shown: !self.env.inherits(),
            path,
            argv: CStrArray::new(self.argv.iter().map(|a| a.as_bytes())),
            envp: CStrArray::new(env_bytes.iter().map(|e| e.as_slice())),
            cwd,
            maps: fds.maps.into_boxed_slice(),
            targets: fds.targets.into_boxed_slice(),
            max_static_fd: fds.max_fd,
            stdio_pipes: fds.pipes,
            nonblocking_pipes: self.nonblocking_pipes,
            close_fds: CloseFds::choose(self.close_fds),
            signals: SignalPolicy {
                keep_mask: self.keep_signal_mask,
                keep_ignored: self.keep_ignored_signals,
                ignored_at_build: if self.keep_ignored_signals {
                    0
                } else {
                    crate::sys::ignored_signals()
                },
            },
            privileges,
            hooks,
            forbid_fork: self.forbid_fork,
            timeout: self.timeout,
            buffered: std::mem::take(&mut self.buffered),
            daemon,
            _owned: owned,
            report_pipes: crate::report_pipe::ReportPipes::new(),
        })
    }

    /// Daemon mode's checks, and the pidfile path made absolute: the daemon
    /// opens it after changing to "/", so a relative path is resolved here,
    /// against the caller's working directory.
    fn daemon_plan(&self, pidfile: Option<PathBuf>, fds: &FdPlan) -> Result<DaemonPlan, Error> {
        if let Some(dir) = &self.cwd {
            return Err(Error::build(
                BuildErrorKind::Conflict,
                format!("working directory {}", shown(dir.as_os_str())),
                "a daemon always runs in \"/\"; current_dir cannot be combined with daemonize",
            ));
        }
        for (n, name) in ["stdin", "stdout", "stderr"].iter().enumerate() {
            if fds.pipes[n] {
                return Err(Error::build(
                    BuildErrorKind::Conflict,
                    *name,
                    "a daemon cannot use Stdio::piped(): nothing would service the pipe",
                ));
            }
        }
        if self.parent_death_signal.is_some() {
            return Err(Error::build(
                BuildErrorKind::Conflict,
                "parent_death_signal",
                "a daemon's parent is the intermediate process, which exits at once",
            ));
        }
        let pidfile = match pidfile {
            Some(p) => {
                let item = || format!("pidfile {}", shown(p.as_os_str()));
                if p.as_os_str().is_empty() {
                    return Err(Error::build(BuildErrorKind::Invalid, item(), "is empty"));
                }
                let absolute = if p.is_absolute() {
                    p.clone()
                } else {
                    std::env::current_dir()
                        .map_err(|e| {
                            Error::build(
                                BuildErrorKind::Invalid,
                                item(),
                                format!("is relative and the working directory is unknown: {e}"),
                            )
                        })?
                        .join(&p)
                };
                Some(cstring(item, absolute.as_os_str())?)
            }
            None => None,
        };
        Ok(DaemonPlan { pidfile })
    }

    /// The argv+envp size check of execve(2) (`E2BIG`).
    fn check_total_size(&self, env: &[Vec<u8>], path_len: usize) -> Result<(), Error> {
        const ARG_MAX: u64 = 32 * 4096;
        const STK_LIM_3_4: u64 = 6 * 1024 * 1024; // 3/4 of the 8 MiB _STK_LIM
        let stack = self
            .rlimits
            .iter()
            .rev()
            .find(|(r, _, _)| *r == Resource::Stack)
            .map(|(_, soft, _)| *soft)
            .unwrap_or_else(|| {
                rustix::process::getrlimit(Resource::Stack)
                    .current
                    .unwrap_or(u64::MAX)
            });
        let limit = STK_LIM_3_4.min(stack / 4).max(ARG_MAX);
        let pointers = ((self.argv.len().max(1) + env.len()) * std::mem::size_of::<usize>()) as u64;
        let strings: u64 = self.argv.iter().map(|a| a.len() as u64 + 1).sum::<u64>()
            + env.iter().map(|e| e.len() as u64 + 1).sum::<u64>()
            + path_len as u64
            + 1;
        if pointers + strings > limit {
            return Err(Error::build(
                BuildErrorKind::TooLong,
                "argument list and environment",
                format!(
                    "{} arguments and {} variables take {} bytes; execve refuses more than {} here (E2BIG)",
                    self.argv.len(),
                    env.len(),
                    pointers + strings,
                    limit
                ),
            ));
        }
        Ok(())
    }

    fn privileges(&self) -> Result<Privileges, Error> {
        let umask = match self.umask {
            Some(m) if m > 0o777 => {
                return Err(Error::build(
                    BuildErrorKind::Invalid,
                    "umask",
                    format!("{m:#o} has bits outside 0o777"),
                ))
            }
            Some(m) => Some(FileMode::from_raw_mode(m)),
            None => None,
        };
        let mut rlimits = Vec::with_capacity(self.rlimits.len());
        for &(resource, soft, hard) in &self.rlimits {
            if soft > hard {
                return Err(Error::build(
                    BuildErrorKind::Invalid,
                    format!("rlimit {resource:?}"),
                    format!("the soft limit {soft} is above the hard limit {hard}"),
                ));
            }
            let lim = |v: u64| (v != u64::MAX).then_some(v);
            rlimits.push((
                resource,
                Rlimit {
                    current: lim(soft),
                    maximum: lim(hard),
                },
            ));
        }
        // -1 is not an id: to the kernel it means "leave unchanged", and
        // rustix's constructors assert against it.
        let invalid = |what: &str, id: u32| {
            Error::build(
                BuildErrorKind::Invalid,
                format!("{what} {id}"),
                "is -1 as a signed id, which the kernel reads as \"unchanged\"",
            )
        };
        if let Some(uid) = self.uid.filter(|&u| u == u32::MAX) {
            return Err(invalid("uid", uid));
        }
        if let Some(gid) = self.gid.filter(|&g| g == u32::MAX) {
            return Err(invalid("gid", gid));
        }
        if let Some(&g) = self.groups.iter().flatten().find(|&&g| g == u32::MAX) {
            return Err(invalid("supplementary group", g));
        }
        // A uid or gid change without explicit groups clears the
        // supplementary groups (CPython's CVE-2023-6507).
        let groups = match &self.groups {
            Some(g) => Some(g.iter().map(|&g| Gid::from_raw(g)).collect()),
            None if self.uid.is_some() || self.gid.is_some() => Some(Box::default()),
            None => None,
        };
        match self.process_group {
            Some(pgid) if pgid < 0 => {
                return Err(Error::build(
                    BuildErrorKind::Invalid,
                    format!("process_group {pgid}"),
                    "is negative; use 0 for a new group led by the child",
                ))
            }
            Some(pgid) if self.new_session => {
                return Err(Error::build(
                    BuildErrorKind::Conflict,
                    format!("process_group {pgid}"),
                    "new_session already makes the child lead a new process group; a session leader cannot change it",
                ))
            }
            _ => {}
        }
        let caps = (self.clear_caps || self.allowed_caps != 0).then_some(self.allowed_caps);
        Ok(Privileges {
            umask,
            rlimits: rlimits.into_boxed_slice(),
            groups,
            gid: self.gid.map(Gid::from_raw),
            uid: self.uid.map(Uid::from_raw),
            caps,
            no_new_privs: self.no_new_privs,
            parent_death_signal: self.parent_death_signal,
            new_session: self.new_session,
            process_group: self.process_group,
        })
    }

    /// Plans which fd lands where; fds given to the command move into `owned`.
    fn fd_plan(&mut self, owned: &mut Vec<OwnedFd>) -> Result<FdPlan, Error> {
        let mut plan = FdPlan::default();
        let nofile = rustix::process::getrlimit(Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        let mut devnull: Option<RawFd> = None;

        let stdio = [
            std::mem::take(&mut self.stdin),
            std::mem::take(&mut self.stdout),
            std::mem::take(&mut self.stderr),
        ];
        let names = ["stdin", "stdout", "stderr"];
        let mut stdout_src = None;
        for (n, s) in stdio.into_iter().enumerate() {
            let dst = n as RawFd;
            if n == 2 && self.stderr_to_stdout {
                if let Some((src, optional)) = stdout_src {
                    plan.push(src, dst, Stage::Stdio, optional);
                    continue;
                }
            }
            let (src, optional) = match s.0 {
                StdioKind::Null => {
                    let fd = match devnull {
                        Some(fd) => fd,
                        None => {
                            let f = rustix::fs::open(
                                c"/dev/null",
                                rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
                                FileMode::empty(),
                            )
                            .and_then(above_stdio)
                            .map_err(|e| Error::io("opening /dev/null", e))?;
                            let fd = f.as_raw_fd();
                            owned.push(f);
                            devnull = Some(fd);
                            fd
                        }
                    };
                    (Src::Fd(fd), false)
                }
                StdioKind::Inherit => (Src::Fd(dst), true),
                StdioKind::Piped => {
                    plan.pipes[n] = true;
                    (Src::Dynamic(STDIO_SLOTS[n]), false)
                }
                StdioKind::Fd(fd) => {
                    let raw = fd.as_raw_fd();
                    owned.push(fd);
                    (Src::Fd(raw), false)
                }
                StdioKind::DupFailed { fd, errno } => {
                    return Err(Error::build(
                        BuildErrorKind::Invalid,
                        format!("{} (Stdio::dup of fd {fd})", names[n]),
                        format!("could not duplicate it: {errno}"),
                    ))
                }
            };
            if n == 1 {
                stdout_src = Some((src, optional));
            }
            plan.push(src, dst, Stage::Stdio, optional);
        }

        for req in std::mem::take(&mut self.fds) {
            let (src, dst, what) = match req {
                FdRequest::Pass(fd) => {
                    let raw = fd.as_raw_fd();
                    owned.push(fd);
                    (raw, raw, "pass_fd")
                }
                FdRequest::Shared(raw) => {
                    // SAFETY: only queried: an fcntl on a closed number is EBADF.
                    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(raw) };
                    if let Err(e) = rustix::io::fcntl_getfd(fd) {
                        return Err(Error::build(
                            BuildErrorKind::Invalid,
                            format!("fd {raw} (pass_fd_shared)"),
                            format!("is not open: {e}"),
                        ));
                    }
                    (raw, raw, "pass_fd_shared")
                }
                FdRequest::Map(fd, child) => {
                    let raw = fd.as_raw_fd();
                    owned.push(fd);
                    (raw, child, "map_fd")
                }
            };
            if dst < 0 {
                return Err(Error::build(
                    BuildErrorKind::Invalid,
                    format!("child fd {dst} ({what})"),
                    "is negative",
                ));
            }
            if dst as u64 >= nofile {
                return Err(Error::build(
                    BuildErrorKind::Invalid,
                    format!("child fd {dst} ({what})"),
                    format!("is not below RLIMIT_NOFILE ({nofile})"),
                ));
            }
            if let Some(prev) = plan.maps.iter().find(|m| m.dst == dst) {
                let used_by = match prev.dst {
                    0 => "the child's stdin; use .stdin(..) to set it".to_string(),
                    1 => "the child's stdout; use .stdout(..) to set it".to_string(),
                    2 => "the child's stderr; use .stderr(..) to set it".to_string(),
                    _ => "already planned by an earlier pass_fd/map_fd".to_string(),
                };
                return Err(Error::build(
                    BuildErrorKind::Collision,
                    format!("child fd {dst} ({what} of fd {src})"),
                    format!("collides: fd {dst} is {used_by}"),
                ));
            }
            plan.push(Src::Fd(src), dst, Stage::Fds, false);
        }

        for (i, (child_fd, _)) in self.buffered.send_buffers.iter().enumerate() {
            let dst = *child_fd;
            if dst < 0 {
                return Err(Error::build(
                    BuildErrorKind::Invalid,
                    format!("child fd {dst} (send_buffer)"),
                    "is negative",
                ));
            }
            if plan.maps.iter().any(|m| m.dst == dst) {
                return Err(Error::build(
                    BuildErrorKind::Collision,
                    format!("child fd {dst} (send_buffer)"),
                    "collides with another planned fd",
                ));
            }
            plan.push(Src::Dynamic(SLOT_SEND_BUFFERS + i), dst, Stage::Fds, false);
        }

        plan.targets = plan.maps.iter().map(|m| m.dst).collect();
        plan.targets.sort_unstable();
        Ok(plan)
    }
}

#[derive(Default)]
struct FdPlan {
    maps: Vec<FdMap>,
    targets: Vec<RawFd>,
    max_fd: RawFd,
    pipes: [bool; 3],
}

impl FdPlan {
    fn push(&mut self, src: Src, dst: RawFd, stage: Stage, optional: bool) {
        if let Src::Fd(fd) = src {
            self.max_fd = self.max_fd.max(fd);
        }
        self.max_fd = self.max_fd.max(dst);
        self.maps.push(FdMap {
            src,
            dst,
            stage,
            optional,
        });
    }
}

impl Plan {
    /// The variables shown in the command line: the command's own list, in
    /// order, or nothing when it inherits.
    pub(crate) fn shown_env(&self) -> Vec<(&OsStr, &OsStr)> {
        if !self.env_shown {
            return Vec::new();
        }
        self.envp
            .items()
            .filter_map(|entry| {
                let b = entry.as_bytes();
                // `build()` checked that every name is non-empty and has no '='.
                let eq = b.iter().position(|&c| c == b'=')?;
                Some((OsStr::from_bytes(&b[..eq]), OsStr::from_bytes(&b[eq + 1..])))
            })
            .collect()
    }

    /// The line-broken form (see [`quote::write_multiline`]).
    pub(crate) fn display_multiline(&self) -> String {
        let argv: Vec<&OsStr> = self.argv.items().collect();
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = quote::write_multiline(self.shown_env(), &argv, &mut s);
        s
    }

    /// The unquoted one-line form plus a newline.
    pub(crate) fn arg_log(&self) -> Vec<u8> {
        quote::arg_log(self.shown_env(), self.argv.items())
    }
}

impl Config {
    /// The unquoted one-line form plus a newline.
    pub(crate) fn arg_log(&self) -> Vec<u8> {
        quote::arg_log(self.shown_env(), self.argv.iter().map(OsString::as_os_str))
    }

    /// The variables the command sets, in order.
    pub(crate) fn shown_env(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        self.env
            .explicit()
            .iter()
            .map(|(k, v)| (k.as_os_str(), v.as_os_str()))
    }

    /// The shell-quoted line: the variables the command sets, then argv.
    pub(crate) fn display_line(&self) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = quote::write_line(
            self.shown_env(),
            self.argv.iter().map(OsString::as_os_str),
            &mut s,
        );
        s
    }

    /// The line-broken form (see [`quote::write_multiline`]).
    pub(crate) fn display_multiline(&self) -> String {
        let argv: Vec<&OsStr> = self.argv.iter().map(OsString::as_os_str).collect();
        let mut s = String::new();
        let _ = quote::write_multiline(self.shown_env(), &argv, &mut s);
        s
    }
}
