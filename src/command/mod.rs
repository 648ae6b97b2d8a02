//! `Command<M>`: the builder. It only records; every check happens in
//! [`Command::build`], which freezes the record into a [`Plan`].
//!
//! One file per area, each with its builder methods, its record (`*Config`)
//! and its `freeze` into the part of the plan the child's room of the same
//! name reads: [`argv`], [`env`], [`fds`], [`signals`], [`cgroup`],
//! [`namespaces`], [`mounts`], [`process`], [`knobs`], [`label`],
//! [`credentials`], [`session`], [`landlock`], [`daemon`], [`buffered`].
//! This file holds
//! what spans them: the command itself, the working directory, hooks,
//! timeouts, and `build()`, which freezes the areas in step order.

use std::ffi::OsString;
use std::fmt;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use rustix::io::Errno;

use crate::child;
use crate::command::namespaces::Namespaces;
use crate::error::{BuildErrorKind, Error};
use crate::frozen::{CStrArray, Hook};
use crate::mode::{Direct, Mode};
use crate::plan::{BufferedPlan, Plan};
use crate::prepared::Prepared;
use crate::process::{Finished, Paused, Running};
use crate::quote::{self, shown};

pub(crate) mod argv;
pub(crate) mod buffered;
pub(crate) mod cgroup;
pub(crate) mod credentials;
pub(crate) mod daemon;
pub(crate) mod env;
pub(crate) mod fds;
pub(crate) mod from_std;
pub(crate) mod knobs;
pub(crate) mod label;
pub(crate) mod landlock;
pub(crate) mod mounts;
pub(crate) mod namespaces;
pub(crate) mod process;
pub(crate) mod seccomp;
pub(crate) mod send_buffers;
pub(crate) mod session;
pub(crate) mod signals;

/// Everything a command records, whatever its mode: one field per area.
#[derive(Default)]
pub(crate) struct Config {
    pub argv: Vec<OsString>,
    pub env: env::EnvConfig,
    pub fds: fds::FdConfig,
    pub signals: signals::SignalConfig,
    pub cgroup: cgroup::CgroupConfig,
    pub ns: namespaces::NamespacesConfig,
    pub mounts: mounts::MountsConfig,
    pub process: process::ProcessConfig,
    pub knobs: knobs::KnobsConfig,
    pub label: label::LabelConfig,
    pub creds: credentials::CredentialsConfig,
    pub session: session::SessionConfig,
    pub cwd: Option<PathBuf>,
    pub hooks: Vec<Hook>,
    /// The hooks of `pre_exec_privileged`, run before the credentials.
    pub privileged_hooks: Vec<Hook>,
    pub landlock: landlock::LandlockConfig,
    pub seccomp: Vec<seccomp::Seccomp>,
    pub forbid_fork: bool,
    pub timeout: Option<Duration>,
    pub buffered: BufferedPlan,
    /// [`Command::send_buffer`], every mode: (child fd, bytes).
    pub send_buffers: Vec<(std::os::fd::RawFd, crate::secret::Secret)>,
    /// Daemon mode: `Some`.
    pub daemon: Option<daemon::DaemonConfig>,
    /// The first problem found by a builder call, reported by `build()`.
    pub deferred: Option<Error>,
}

/// A command to run: program, arguments, environment, fds, privileges.
///
/// Every builder method takes `self` and returns `Self`; nothing is checked
/// until [`build`](Command::build), which returns a reusable
/// [`Prepared`] or an [`Error::Build`] that names the offending item. The
/// mode `M` ([`Direct`], [`Buffered`](crate::Buffered),
/// [`Daemon`](crate::Daemon)) decides which methods exist.
///
/// ```
/// use safespawn::Command;
///
/// let finished = Command::new("sh")
///     .args(["-c", "test \"$GREETING\" = hello"])
///     .env("GREETING", "hello")
///     .run()?;
/// assert!(finished.success());
/// # Ok::<(), safespawn::Error>(())
/// ```
pub struct Command<M: Mode = Direct> {
    pub(crate) cfg: Config,
    pub(crate) mode: PhantomData<M>,
}

impl Command<Direct> {
    /// A command with nothing recorded yet (no argv).
    fn empty() -> Command<Direct> {
        Command {
            cfg: Config::default(),
            mode: PhantomData,
        }
    }

    /// The child's working directory (libvirt's virCommandSetWorkingDirectory).
    /// The child changes to it after its credentials, so a directory the
    /// program could not enter fails as it would for the program.
    ///
    /// # Errors
    ///
    /// `build()` refuses a path with a NUL byte ([`BuildErrorKind::Nul`]),
    /// and any working directory on a command later
    /// [`daemonize`](Command::daemonize)d ([`BuildErrorKind::Conflict`]); a
    /// missing directory, or one the child may not enter, is
    /// [`Error::Spawn`] at stage [`Chdir`](crate::Stage::Chdir).
    ///
    /// # References
    ///
    /// [`chdir(2)`](https://man7.org/linux/man-pages/man2/chdir.2.html); any Linux.
    ///
    /// ```
    /// use safespawn::{Command, Stdio};
    /// use std::io::Read;
    /// let mut child = Command::new("pwd").current_dir("/tmp").stdout(Stdio::piped()).spawn().unwrap();
    /// let mut s = String::new();
    /// child.take_stdout().unwrap().read_to_string(&mut s).unwrap();
    /// assert_eq!(s, "/tmp\n");
    /// # child.wait().unwrap();
    /// ```
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cfg.cwd = Some(dir.into());
        self
    }

    /// `build()?` then [`Prepared::spawn`]; fds passed with `pass_fd` are
    /// closed in the parent once the child has them.
    ///
    /// # Errors
    ///
    /// As [`build`](Command::build) and [`Prepared::spawn`].
    ///
    /// # References
    ///
    /// As [`Prepared::spawn`].
    ///
    /// ```
    /// let child = safespawn::Command::new("true").spawn()?;
    /// assert!(child.wait()?.success());
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn spawn(self) -> Result<Running, Error> {
        self.build()?.spawn()
    }

    /// `build()?` then [`Prepared::spawn_paused`].
    ///
    /// # Errors
    ///
    /// As [`build`](Command::build) and [`Prepared::spawn_paused`].
    ///
    /// # References
    ///
    /// As [`Prepared::spawn_paused`].
    ///
    /// ```
    /// let paused = safespawn::Command::new("true").spawn_paused()?;
    /// assert!(paused.resume()?.wait()?.success());
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn spawn_paused(self) -> Result<Paused, Error> {
        self.build()?.spawn_paused()
    }

    /// `build()?` then [`Prepared::run`].
    ///
    /// # Errors
    ///
    /// As [`build`](Command::build) and [`Prepared::run`].
    ///
    /// # References
    ///
    /// As [`Prepared::run`].
    ///
    /// ```
    /// assert!(safespawn::Command::new("true").run()?.success());
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn run(self) -> Result<Finished, Error> {
        self.build()?.run()
    }

    /// `build()?` then [`Prepared::status`].
    ///
    /// # Errors
    ///
    /// As [`build`](Command::build) and [`Prepared::status`].
    ///
    /// # References
    ///
    /// As [`Prepared::status`].
    ///
    /// ```
    /// assert_eq!(safespawn::Command::new("false").status()?.code(), Some(1));
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn status(self) -> Result<ExitStatus, Error> {
        self.build()?.status()
    }
}

impl<M: Mode> Command<M> {
    pub(crate) fn into_mode<N: Mode>(self) -> Command<N> {
        Command {
            cfg: self.cfg,
            mode: PhantomData,
        }
    }

    fn defer(&mut self, err: Error) {
        self.cfg.deferred.get_or_insert(err);
    }

    /// For `run`, `status` and `output`: past `timeout` the child is aborted
    /// (TERM, a short grace, KILL, reap) and the call returns
    /// [`Error::Timeout`]. The clock starts once the child has exec'd.
    /// `spawn` does not use it. A timeout too large for a deadline
    /// (`Duration::MAX`) is no timeout.
    ///
    /// # Errors
    ///
    /// `run`, `status` and `output` return [`Error::Timeout`] once
    /// `timeout` has passed and the child is reaped; a failure to abort or
    /// reap it is [`Error::Io`] instead. A daemon is never waited for, so
    /// `build()` refuses a timeout together with
    /// [`daemonize`](Command::daemonize) ([`BuildErrorKind::Conflict`]).
    ///
    /// # References
    ///
    /// [`poll(2)`](https://man7.org/linux/man-pages/man2/poll.2.html) on the
    /// pidfd (Linux 5.3), else `waitid(WNOHANG)` at short intervals;
    /// [`pidfd_send_signal(2)`](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html)
    /// (Linux 5.1), else [`kill(2)`](https://man7.org/linux/man-pages/man2/kill.2.html);
    /// [`waitid(2)`](https://man7.org/linux/man-pages/man2/waitid.2.html) with
    /// `P_PIDFD` (Linux 5.4), else `P_PID`; any Linux from 4.18.
    ///
    /// ```
    /// use std::time::Duration;
    /// let err = safespawn::Command::new("sleep").arg("10")
    ///     .timeout(Duration::from_millis(50)).status().unwrap_err();
    /// assert!(matches!(err, safespawn::Error::Timeout { .. }));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.cfg.timeout = Some(timeout);
        self
    }

    /// Refuses the slower fork path (which a [`pre_exec`](Command::pre_exec)
    /// hook, [`uid_map`](Command::uid_map) / [`gid_map`](Command::gid_map)
    /// ranges and [`Prepared::spawn_paused`] need): spawn cost then never
    /// grows with the parent's memory.
    ///
    /// # Errors
    ///
    /// With a `pre_exec` hook or a `uid_map` / `gid_map` range, `build()`
    /// fails with [`BuildErrorKind::Conflict`]. [`Prepared::spawn_paused`] (and
    /// [`spawn_paused`](Command::spawn_paused)) of such a command fails with
    /// the same [`Error::Build`], at the spawn: `build()` cannot know it will
    /// be called.
    ///
    /// # References
    ///
    /// [`fork(2)`](https://man7.org/linux/man-pages/man2/fork.2.html), the path
    /// refused;
    /// [`clone(2)`](https://man7.org/linux/man-pages/man2/clone.2.html), the
    /// path kept (see [`Prepared::spawn`]).
    ///
    /// ```
    /// let p = safespawn::Command::new("true").forbid_fork().build();
    /// assert!(p.is_ok());
    /// ```
    pub fn forbid_fork(mut self) -> Self {
        self.cfg.forbid_fork = true;
        self
    }

    /// Runs `hook` in the child after its fds, privileges and working
    /// directory are set up, just before exec. Hooks run in the order
    /// given, after every [`pre_exec_privileged`](Command::pre_exec_privileged)
    /// hook. libvirt's SetPreExecHook runs earlier, as root: that is
    /// [`pre_exec_privileged`](Command::pre_exec_privileged). A hook makes the spawn take the fork
    /// path (for a daemon, the intermediate process is forked).
    ///
    /// # Errors
    ///
    /// With [`forbid_fork`](Command::forbid_fork), `build()` fails with
    /// [`BuildErrorKind::Conflict`]. A hook's `Err(errno)` stops the child
    /// and reaches the parent as [`Error::Spawn`] at stage
    /// [`Hook`](crate::Stage::Hook) with that `errno`; later hooks do not run.
    ///
    /// # References
    ///
    /// [`fork(2)`](https://man7.org/linux/man-pages/man2/fork.2.html), then
    /// [`pidfd_open(2)`](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)
    /// for the child's pidfd; Linux 5.3.
    ///
    /// # Errors
    ///
    /// The first hook that returns `Err(errno)` stops the child: the spawn
    /// fails with [`Error::Spawn`] at stage [`Hook`](crate::Stage::Hook) with
    /// that errno. A hook that **panics** stops it too, with errno
    /// `ENOTRECOVERABLE` ([`Errno::NOTRECOVERABLE`]): the panic is caught at
    /// the hook call, so it never unwinds into the frames above the hook
    /// (the caller's, copied into the child), and the payload is leaked.
    ///
    /// # Safety
    ///
    /// The hook runs in a copy of a possibly multi-threaded process: it must
    /// be async-signal-safe. It must not allocate, lock (no `println!`, no
    /// `std::env`), or panic; raw system calls (rustix) are fine.
    ///
    /// Catching a panic limits the damage of a broken hook; it does not make
    /// panicking safe. Before the catch, std's panic runtime runs in the
    /// child: the panic hook (by default it formats the message and writes it
    /// to the child's standard error under std's stderr lock), the payload
    /// allocation and the unwinder. If another thread of the parent held one
    /// of those locks when the child was forked, the child blocks there
    /// instead of reporting. Built with `panic = "abort"` nothing is caught:
    /// the child is killed by `SIGABRT` after the message, and the parent
    /// sees that signal, not a hook failure.
    ///
    /// ```
    /// use safespawn::{Command, Errno};
    /// // SAFETY: the hook only makes one raw system call.
    /// let cmd = unsafe {
    ///     Command::new("true").pre_exec(|| rustix::process::setsid().map(drop))
    /// };
    /// # let _ = cmd;
    /// ```
    pub unsafe fn pre_exec<F>(mut self, hook: F) -> Self
    where
        F: Fn() -> Result<(), Errno> + Send + Sync + 'static,
    {
        self.cfg.hooks.push(std::sync::Arc::new(hook));
        self
    }

    /// Runs `hook` in the child **before the privilege steps**, with the
    /// caller's credentials (libvirt's SetPreExecHook, which runs as root:
    /// QEMU's hook unshares a mount namespace and takes locks there). It
    /// runs after the fds, the daemon split and pidfile, the mounts, the
    /// umask and rlimits, the knobs and the exec label, right before the
    /// securebits, groups, gid, uid, capabilities and `no_new_privs`; the
    /// session, the working directory and the [`pre_exec`](Command::pre_exec)
    /// hooks come after it. These hooks run in the order given, all of them
    /// before any `pre_exec` hook. What a hook changes of its own
    /// credentials is overridden by the credential steps that follow, as
    /// far as the command asks for them.
    ///
    /// A hook makes the spawn take the fork path (for a daemon, the
    /// intermediate process is forked).
    ///
    /// # Errors
    ///
    /// With [`forbid_fork`](Command::forbid_fork), `build()` fails with
    /// [`BuildErrorKind::Conflict`] naming `pre_exec_privileged`. The first
    /// hook that returns `Err(errno)` stops the child: the spawn fails with
    /// [`Error::Spawn`] at stage [`Hook`](crate::Stage::Hook) with that
    /// errno (the same stage as a `pre_exec` hook's: both are the caller's
    /// code, whose errnos only the caller can read); a panic is
    /// `ENOTRECOVERABLE`, as for [`pre_exec`](Command::pre_exec).
    ///
    /// # References
    ///
    /// [`fork(2)`](https://man7.org/linux/man-pages/man2/fork.2.html), then
    /// [`pidfd_open(2)`](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)
    /// for the child's pidfd; Linux 5.3.
    ///
    /// # Safety
    ///
    /// As for [`pre_exec`](Command::pre_exec): the hook runs in a copy of a
    /// possibly multi-threaded process and must be async-signal-safe (no
    /// allocation, no lock, no panic; raw system calls are fine). It runs
    /// with the caller's privileges: it must not leave the child with
    /// access the program must not have (an fd opened here reaches the
    /// program unless it is close-on-exec).
    ///
    /// ```
    /// use safespawn::{Command, Errno};
    /// // As root: the privileged hook still is root, the plain one is not.
    /// # if rustix::process::geteuid().is_root() {
    /// // SAFETY: each hook makes one raw system call.
    /// let cmd = unsafe {
    ///     Command::new("true")
    ///         .uid(65534)
    ///         .gid(65534)
    ///         .pre_exec_privileged(|| match rustix::process::geteuid().is_root() {
    ///             true => Ok(()),
    ///             false => Err(Errno::PERM),
    ///         })
    ///         .pre_exec(|| match rustix::process::geteuid().as_raw() {
    ///             65534 => Ok(()),
    ///             _ => Err(Errno::PERM),
    ///         })
    /// };
    /// assert!(cmd.status()?.success());
    /// # }
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub unsafe fn pre_exec_privileged<F>(mut self, hook: F) -> Self
    where
        F: Fn() -> Result<(), Errno> + Send + Sync + 'static,
    {
        self.cfg.privileged_hooks.push(std::sync::Arc::new(hook));
        self
    }

    /// Checks everything and freezes the command into a reusable
    /// [`Prepared`]: argv, envp, program path and fd plan serialised, PATH
    /// resolved, `/dev/null` opened.
    ///
    /// # Errors
    ///
    /// The first problem found, as [`Error::Build`] naming the item:
    ///
    /// * [`BuildErrorKind::Invalid`]: an empty program (or argv); an
    ///   [`env_string`](Command::env_string) without `=`; an environment
    ///   variable whose name is empty or contains `=`; a
    ///   [`umask`](Command::umask) above `0o777`; an
    ///   [`rlimit`](Command::rlimit) whose soft limit is above its hard one;
    ///   a [`uid`](Command::uid), [`gid`](Command::gid) or
    ///   [`groups`](Command::groups) entry of `u32::MAX`; a negative
    ///   [`process_group`](Command::process_group); a
    ///   [`Stdio::dup`](crate::Stdio::dup) that failed; a
    ///   [`pass_fd_shared`](Command::pass_fd_shared) fd that is not open; a
    ///   [`map_fd`](Command::map_fd) child fd that is negative or not below
    ///   the parent's `RLIMIT_NOFILE` (a passed fd's number likewise); a
    ///   negative [`send_buffer`](Command::send_buffer) fd; an empty
    ///   [`pidfile`](Command::pidfile), or a relative one when the working
    ///   directory is unknown;
    /// * [`BuildErrorKind::Nul`]: a NUL byte in the program or an argument,
    ///   an environment variable's name or value, the working directory or
    ///   the pidfile;
    /// * [`BuildErrorKind::TooLong`]: an argument or a `NAME=value` entry
    ///   longer than the kernel takes (128 KiB with its NUL), or argv and
    ///   envp together above execve's limit (a quarter of the child's stack
    ///   limit, the command's own [`Resource::Stack`](crate::Resource::Stack)
    ///   if it sets one, between 128 KiB and 6 MiB);
    /// * [`BuildErrorKind::NotFound`]: a program name without `/` that is on
    ///   no absolute directory of the PATH searched (the child's PATH if
    ///   the command sets one, else the parent's, else `/bin:/usr/bin`);
    /// * [`BuildErrorKind::NotExecutable`]: such a name found only as a file
    ///   the caller cannot execute (`access(2)`, with the caller's real uid).
    ///   In a [dry run](crate::dry_run) neither lookup failure is reported;
    /// * [`BuildErrorKind::Collision`]: a [`pass_fd`](Command::pass_fd),
    ///   [`map_fd`](Command::map_fd) or
    ///   [`send_buffer`](Command::send_buffer) at 0-2 or at a child fd
    ///   already planned;
    /// * [`BuildErrorKind::Conflict`]: options that exclude each other:
    ///   [`process_group`](Command::process_group) with
    ///   [`new_session`](Command::new_session) or
    ///   [`controlling_tty`](Command::controlling_tty);
    ///   [`foreground`](Command::foreground) with `new_session`,
    ///   `controlling_tty` or without a standard stream that is the
    ///   caller's controlling terminal; a
    ///   [`pre_exec`](Command::pre_exec) hook with
    ///   [`forbid_fork`](Command::forbid_fork) (or a
    ///   [`uid_map`](Command::uid_map) / [`gid_map`](Command::gid_map)
    ///   range with it); for a
    ///   [`daemonize`](Command::daemonize)d command, a working directory,
    ///   [`Stdio::piped`](crate::Stdio::piped), a
    ///   [`parent_death_signal`](Command::parent_death_signal),
    ///   `controlling_tty`, `foreground`, a
    ///   [`timeout`](Command::timeout) or
    ///   [`unshare`](Command::unshare)`(PID)`; a
    ///   [`hostname`](Command::hostname) without `unshare(UTS)`; a
    ///   [`join_namespace`](Command::join_namespace) of a kind also
    ///   unshared (or `USER` with [`map_root`](Command::map_root)); `TIME`
    ///   where `clone3` is known to be missing; a `uid_map` / `gid_map`
    ///   without `unshare(USER)` or with `map_root`. Also
    ///   [`BuildErrorKind::Invalid`] for a `controlling_tty` whose fd is
    ///   not planned, not a terminal, write-only or the caller's own
    ///   controlling terminal, for a `join_namespace` that is not
    ///   exactly one kind and for a bad id range (count 0, past
    ///   `u32::MAX`, overlapping another), and `Nul` / `TooLong` (above 64
    ///   bytes) for a hostname, `TooLong` for a map of more than 340 ranges
    ///   or a page of text;
    /// * the process knobs and labels: a [`nice`](Command::nice),
    ///   [`oom_score_adj`](Command::oom_score_adj) or
    ///   [`cpu_affinity`](Command::cpu_affinity) out of range, the
    ///   [`personality`](Command::personality) query value, an empty label
    ///   ([`BuildErrorKind::Invalid`]); a label with a NUL byte or longer
    ///   than a page (`Nul`, `TooLong`); core scheduling where the system
    ///   has none, [`sched_core_share_from`](Command::sched_core_share_from)
    ///   with `unshare(PID)`, a [`securebits`](Command::securebits) set the
    ///   capability steps could not work with, and the OOM score or a label
    ///   without a proc file system at `/proc` ([`BuildErrorKind::Conflict`]);
    /// * for a [`cgroup`](Command::cgroup): `NotFound` (no such
    ///   directory), `Invalid` (not a directory, or not on a cgroup v2
    ///   filesystem), `Nul`.
    ///
    /// A [`landlock`](Command::landlock) adds its own refusals (a missing
    /// rule path, a kernel that cannot enforce it; see there), and
    /// creating its ruleset is a second source of [`Error::Io`].
    ///
    /// Without an environment call, the parent's environment is checked
    /// as it is at `build()`. Opening `/dev/null` (for every stream left at
    /// [`Stdio::null`](crate::Stdio::null), the default) is the one system
    /// call whose failure is [`Error::Io`].
    ///
    /// # References
    ///
    /// The limits are those of
    /// [`execve(2)`](https://man7.org/linux/man-pages/man2/execve.2.html)
    /// (`E2BIG`); the PATH search uses
    /// [`access(2)`](https://man7.org/linux/man-pages/man2/access.2.html).
    ///
    /// ```
    /// use safespawn::{Command, Error};
    /// let prepared = Command::new("true").build()?;
    /// for _ in 0..3 {
    ///     assert!(prepared.status()?.success());
    /// }
    /// // Every problem is named:
    /// let err = Command::new("echo").arg("a\0b").build().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid command: argument 1 \"a\\0b\": contains a NUL byte at offset 1");
    /// # Ok::<(), Error>(())
    /// ```
    pub fn build(self) -> Result<Prepared<M>, Error> {
        Ok(Prepared::from_plan(self.cfg.freeze()?))
    }
}

impl Config {
    /// Validates everything and freezes the plan, area by area: argv, the
    /// environment, the program path and the kernel's size limit first
    /// (what every command has), then the working directory, the process
    /// attributes, credentials, session, hooks, fds and daemon mode. The
    /// first problem found is the one reported.
    pub(crate) fn freeze(mut self) -> Result<Plan, Error> {
        if let Some(e) = self.deferred.take() {
            return Err(e);
        }
        let line: Arc<str> = self.display_line().into();
        let program = argv::check(&self.argv)?.to_owned();
        let (env_entries, child_path) = self.env.freeze()?;
        // The cgroup, namespaces and mounts before the program: with a new
        // root, the program is looked up in the child's view.
        let cgroup = self.cgroup.freeze(self.ns.unshared())?;
        let (mut ns, id_ranges) = self.ns.freeze(self.daemon.is_some(), self.forbid_fork)?;
        if cgroup.child_unshares_ns {
            // Made by the child after its placement (see the child's cgroup
            // room), so that the namespace's root is the target.
            ns.clone_flags &= !namespaces::Namespaces::CGROUP.bits();
        }
        let (mounts, view, mount_paths) =
            self.mounts.freeze(self.ns.unshared(), self.ns.map_root)?;
        let path = match argv::program_path(&program, child_path, &view) {
            Ok(path) => path,
            // A dry run records lines; it must not depend on what this
            // machine has installed.
            Err(_) if crate::dry_run::active() => PathBuf::from(&program),
            Err(e) => return Err(e),
        };
        let path = argv::cstring(|| format!("program {}", shown(&program)), path.as_os_str())?;
        argv::check_total_size(
            &self.argv,
            &env_entries,
            path.as_bytes().len(),
            &self.process.rlimits,
        )?;
        let cwd = match &self.cwd {
            Some(dir) => Some(argv::cstring(
                || format!("working directory {}", shown(dir.as_os_str())),
                dir.as_os_str(),
            )?),
            None => None,
        };
        let process = self.process.freeze()?;
        let knobs = self.knobs.freeze(self.ns.unshared())?;
        let (label, enforce) = self.label.freeze()?;
        // One /proc fd for the child's writes there, opened only when a
        // step needs it.
        let proc = if knobs.oom_score_adj.is_some() {
            Some(knobs::open_proc("oom_score_adj")?)
        } else if self.label.any() {
            Some(knobs::open_proc(self.label.item())?)
        } else {
            None
        };
        let mut creds = self.creds.freeze()?;
        // landlock_restrict_self needs no_new_privs unless the child keeps
        // CAP_SYS_ADMIN (see Command::landlock).
        if self.landlock.wanted()
            && !self
                .creds
                .child_keeps_sys_admin(self.ns.unshared().contains(Namespaces::USER))
        {
            creds.no_new_privs = true;
        }
        let mut session = self.session.freeze(self.daemon.is_some())?;
        if self.forbid_fork && !self.privileged_hooks.is_empty() {
            return Err(Error::build(
                BuildErrorKind::Conflict,
                "pre_exec_privileged",
                "a pre_exec_privileged hook needs the fork path, which forbid_fork() refuses",
            ));
        }
        if self.forbid_fork && !self.hooks.is_empty() {
            return Err(Error::build(
                BuildErrorKind::Conflict,
                "pre_exec",
                "a pre_exec hook needs the fork path, which forbid_fork() refuses",
            ));
        }
        // After every check that needs no kernel object: the ruleset is one.
        let landlock = self.landlock.freeze()?;
        let buffered = std::mem::take(&mut self.buffered);
        // Moved, never copied: the plan holds the one copy, erased with it.
        let send_buffers = std::mem::take(&mut self.send_buffers);
        let send_fds: Vec<_> = send_buffers.iter().map(|(fd, _)| *fd).collect();
        let env_shown = !self.env.inherits();
        let nonblocking_pipes = self.fds.nonblocking_pipes;
        let fds = std::mem::take(&mut self.fds).freeze(&send_fds)?;
        // The terminals are fds of the plan: checked once it is made.
        self.session.check_terminals(&mut session, &fds.fds.maps)?;
        let seccomp = seccomp::freeze(&self.seccomp, &fds.fds.targets)?;
        if seccomp.is_some() {
            // The kernel installs a filter only with no_new_privs or
            // CAP_SYS_ADMIN (see Command::seccomp).
            let new_user_ns =
                self.ns.unshared().contains(crate::Namespaces::USER) || self.ns.joins_user();
            creds.no_new_privs |= !self.creds.child_keeps_sys_admin(new_user_ns);
        }
        let daemon = match self.daemon.take() {
            Some(d) => Some(d.freeze(
                self.cwd.as_deref(),
                fds.pipes,
                session.parent_death_signal.is_some(),
                self.timeout,
            )?),
            None => None,
        };
        let max_static_fd = fds.fds.max_static_fd;
        let proc_fd = proc.as_ref().map_or(-1, |fd| fd.as_raw_fd());
        let mut owned = fds.owned;
        owned.extend(self.ns.take_fds());
        owned.extend(cgroup.owned);
        owned.extend(landlock.ruleset);
        owned.extend(proc);
        owned.extend(enforce);
        Ok(Plan {
            child: child::Plan {
                signals: self.signals.freeze(),
                cgroup: cgroup.placement,
                ns,
                mounts,
                fds: fds.fds,
                daemon,
                process,
                knobs,
                label,
                proc: proc_fd,
                creds,
                session,
                exec: child::exec::Exec {
                    path: path.into(),
                    argv: CStrArray::new(self.argv.iter().map(|a| a.as_bytes())),
                    envp: CStrArray::new(env_entries.iter().map(|e| e.as_slice())),
                    cwd: cwd.map(Into::into),
                },
                hooks: std::mem::take(&mut self.hooks).into(),
                privileged_hooks: std::mem::take(&mut self.privileged_hooks).into(),
                landlock: landlock.plan,
                seccomp,
            },
            landlock_abi: landlock.abi,
            program: program.to_string_lossy().into(),
            mount_paths,
            cgroup_path: cgroup.path,
            line,
            env_shown,
            stdio_pipes: fds.pipes,
            nonblocking_pipes,
            forbid_fork: self.forbid_fork,
            id_ranges,
            timeout: self.timeout,
            buffered,
            send_buffers,
            highest_child_fd: owned
                .iter()
                .map(AsRawFd::as_raw_fd)
                .fold(max_static_fd, std::os::fd::RawFd::max),
            _owned: owned,
        })
    }

    /// The unquoted one-line form plus a newline.
    pub(crate) fn arg_log(&self) -> Vec<u8> {
        quote::arg_log(self.shown_env(), self.argv.iter().map(OsString::as_os_str))
    }

    /// The variables the command sets, in order.
    pub(crate) fn shown_env(
        &self,
    ) -> impl Iterator<Item = (&std::ffi::OsStr, &std::ffi::OsStr)> + Clone {
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
        let argv: Vec<&std::ffi::OsStr> = self.argv.iter().map(OsString::as_os_str).collect();
        let mut s = String::new();
        let _ = quote::write_multiline(self.shown_env(), &argv, &mut s);
        s
    }
}

impl<M: Mode> Command<M> {
    /// The command line broken over lines the way libvirt logs it: one
    /// environment entry per line, then the program, then one line per
    /// option together with its values, each line but the last ending in
    /// ` \`, so the text can be pasted into a shell. Quoting is as in
    /// `Display`.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("iptables")
    ///     .env("LC_ALL", "C")
    ///     .args(["-A", "INPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"]);
    /// assert_eq!(
    ///     cmd.display_multiline(),
    ///     "LC_ALL=C \\\niptables \\\n-A INPUT \\\n-p tcp \\\n--dport 22 \\\n-j ACCEPT"
    /// );
    /// ```
    pub fn display_multiline(&self) -> String {
        self.cfg.display_multiline()
    }

    /// Writes the command line unquoted on one line, plus a newline, to `fd`
    /// (libvirt's WriteArgLog): the variables the command sets as `K=V`,
    /// then argv, separated by spaces, bytes as they are. Meant for log
    /// files read by people; use `Display` for a line a shell can run.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a write to `fd` fails or writes nothing (`EIO`);
    /// `EINTR` and short writes are retried. What was written before stays
    /// written.
    ///
    /// # References
    ///
    /// [`write(2)`](https://man7.org/linux/man-pages/man2/write.2.html); any Linux.
    ///
    /// ```
    /// use std::io::Read;
    /// let (mut r, w) = std::io::pipe()?;
    /// safespawn::Command::new("echo").env("A", "b c").arg("x y").write_arg_log(&w)?;
    /// drop(w);
    /// let mut log = String::new();
    /// r.read_to_string(&mut log)?;
    /// assert_eq!(log, "A=b c echo x y\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_arg_log(&self, fd: impl AsFd) -> Result<(), Error> {
        quote::write_all(fd.as_fd(), &self.cfg.arg_log())
    }
}

/// The shell-quoted command line: the variables the command sets (never an
/// inherited environment), then argv, quoted only where a shell needs it.
///
/// ```
/// let cmd = safespawn::Command::new("echo").env("A", "b c").arg("it's").arg("");
/// assert_eq!(cmd.to_string(), "A='b c' echo 'it'\\''s' ''");
/// ```
impl<M: Mode> fmt::Display for Command<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.cfg.display_line())
    }
}

impl<M: Mode> fmt::Debug for Command<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.cfg;
        f.debug_struct("Command")
            .field("mode", &std::any::type_name::<M>())
            .field("line", &c.display_line())
            .field("stdin", &c.fds.stdin)
            .field("stdout", &c.fds.stdout)
            .field("stderr", &c.fds.stderr)
            .field("fds", &c.fds.extra)
            .field("cwd", &c.cwd)
            .field("hooks", &c.hooks.len())
            .field("privileged_hooks", &c.privileged_hooks.len())
            .field("seccomp", &c.seccomp)
            .finish_non_exhaustive()
    }
}
