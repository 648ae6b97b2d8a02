//! `Command<M>`: the builder. It only records; every check happens in
//! [`Command::build`].

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::time::Duration;

use rustix::io::Errno;
use rustix::process::{Resource, Signal};

use crate::env::EnvPlan;
use crate::error::{BuildErrorKind, Error};
use crate::mode::{Direct, Mode};
use crate::plan::{BufferedPlan, Hook};
use crate::prepared::Prepared;
use crate::{Capability, Stdio};

/// An fd the child gets besides stdio.
#[derive(Debug)]
pub(crate) enum FdRequest {
    /// `pass_fd`: same number, owned (closed in the parent with the `Prepared`).
    Pass(OwnedFd),
    /// `pass_fd_shared`: same number, the caller keeps it.
    Shared(RawFd),
    /// `map_fd`: owned, placed at the given child number.
    Map(OwnedFd, RawFd),
}

/// Everything a command records, whatever its mode.
pub(crate) struct Config {
    pub argv: Vec<OsString>,
    pub env: EnvPlan,
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
    pub stderr_to_stdout: bool,
    pub nonblocking_pipes: bool,
    pub fds: Vec<FdRequest>,
    pub cwd: Option<PathBuf>,
    pub timeout: Option<Duration>,
    pub forbid_fork: bool,
    pub keep_signal_mask: bool,
    pub keep_ignored_signals: bool,
    pub umask: Option<u32>,
    pub rlimits: Vec<(Resource, u64, u64)>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub groups: Option<Vec<u32>>,
    pub clear_caps: bool,
    pub allowed_caps: u64,
    pub no_new_privs: bool,
    pub parent_death_signal: Option<Signal>,
    pub new_session: bool,
    pub process_group: Option<i32>,
    pub hooks: Vec<Hook>,
    pub buffered: BufferedPlan,
    /// Daemon mode: `Some(pidfile)`.
    pub daemon: Option<Option<PathBuf>>,
    /// A close method forced by a test (see the hidden builder methods).
    pub close_fds: Option<crate::plan::CloseFds>,
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
    /// A command running `program` (libvirt's virCommandNew).
    ///
    /// A name without `/` is looked up on PATH at `build()`: the child's
    /// PATH if the command sets one, else the parent's. `argv[0]` is
    /// `program` as given.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("true");
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn new(program: impl AsRef<OsStr>) -> Command<Direct> {
        Command::from_argv([program])
    }

    /// A command from a whole argv; `argv[0]` is the program (libvirt's
    /// virCommandNewArgs). An empty argv is reported by `build()`.
    ///
    /// ```
    /// let cmd = safespawn::Command::from_argv(["sh", "-c", "exit 3"]);
    /// assert_eq!(cmd.status().unwrap().code(), Some(3));
    /// ```
    pub fn from_argv<I, S>(argv: I) -> Command<Direct>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Command {
            cfg: Config {
                argv: argv.into_iter().map(|a| a.as_ref().to_owned()).collect(),
                env: EnvPlan::default(),
                stdin: Stdio::null(),
                stdout: Stdio::null(),
                stderr: Stdio::null(),
                stderr_to_stdout: false,
                nonblocking_pipes: false,
                fds: Vec::new(),
                cwd: None,
                timeout: None,
                forbid_fork: false,
                keep_signal_mask: false,
                keep_ignored_signals: false,
                umask: None,
                rlimits: Vec::new(),
                uid: None,
                gid: None,
                groups: None,
                clear_caps: false,
                allowed_caps: 0,
                no_new_privs: false,
                parent_death_signal: None,
                new_session: false,
                process_group: None,
                hooks: Vec::new(),
                buffered: BufferedPlan::default(),
                daemon: None,
                close_fds: None,
                deferred: None,
            },
            mode: PhantomData,
        }
    }

    /// The child's standard input (default: [`Stdio::null`]).
    ///
    /// ```
    /// use safespawn::{Command, Stdio};
    /// let st = Command::new("cat").stdin(Stdio::null()).status().unwrap();
    /// assert!(st.success());
    /// ```
    pub fn stdin(mut self, stdio: impl Into<Stdio>) -> Self {
        self.cfg.stdin = stdio.into();
        self
    }

    /// The child's standard output (default: [`Stdio::null`]).
    ///
    /// ```
    /// use safespawn::{Command, Stdio};
    /// let child = Command::new("echo").stdout(Stdio::piped()).spawn().unwrap();
    /// # child.wait().unwrap();
    /// ```
    pub fn stdout(mut self, stdio: impl Into<Stdio>) -> Self {
        self.cfg.stdout = stdio.into();
        self
    }

    /// The child's standard error (default: [`Stdio::null`]).
    ///
    /// ```
    /// use safespawn::{Command, Stdio};
    /// let st = Command::new("true").stderr(Stdio::inherit()).status().unwrap();
    /// # assert!(st.success());
    /// ```
    pub fn stderr(mut self, stdio: impl Into<Stdio>) -> Self {
        self.cfg.stderr = stdio.into();
        self
    }

    /// Sends standard error wherever standard output goes (`2>&1`); with a
    /// piped stdout both share the one pipe.
    ///
    /// ```
    /// use safespawn::{Command, Stdio};
    /// use std::io::Read;
    /// let mut child = Command::new("sh").args(["-c", "echo out; echo err >&2"])
    ///     .stdout(Stdio::piped()).stderr_to_stdout().spawn().unwrap();
    /// let mut s = String::new();
    /// child.take_stdout().unwrap().read_to_string(&mut s).unwrap();
    /// assert_eq!(s, "out\nerr\n");
    /// # child.wait().unwrap();
    /// ```
    pub fn stderr_to_stdout(mut self) -> Self {
        self.cfg.stderr_to_stdout = true;
        self
    }

    /// Makes the parent's ends of the pipes this command creates
    /// non-blocking (libvirt's virCommandNonblockingFDs).
    ///
    /// ```
    /// use safespawn::{Command, Stdio};
    /// let mut child = Command::new("sleep").arg("1").stdout(Stdio::piped())
    ///     .nonblocking_pipes().spawn().unwrap();
    /// let mut out = child.take_stdout().unwrap();
    /// let err = std::io::Read::read(&mut out, &mut [0u8; 8]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// # child.abort().unwrap();
    /// ```
    pub fn nonblocking_pipes(mut self) -> Self {
        self.cfg.nonblocking_pipes = true;
        self
    }

    /// The child's working directory (libvirt's virCommandSetWorkingDirectory).
    /// A missing directory is reported as [`Error::Spawn`] at stage
    /// [`Chdir`](crate::Stage::Chdir).
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

    /// Adds one argument; empty arguments are kept (libvirt's AddArg).
    ///
    /// ```
    /// let cmd = safespawn::Command::new("printf").arg("%s|").arg("");
    /// assert_eq!(cmd.to_string(), "printf '%s|' ''");
    /// ```
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.cfg.argv.push(arg.as_ref().to_owned());
        self
    }

    /// Adds several arguments (libvirt's AddArgSet / AddArgList).
    ///
    /// ```
    /// let cmd = safespawn::Command::new("ls").args(["-l", "-a"]);
    /// assert_eq!(cmd.to_string(), "ls -l -a");
    /// ```
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cfg
            .argv
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Adds one argument `name=value` (libvirt's AddArgPair).
    ///
    /// ```
    /// let cmd = safespawn::Command::new("dd").arg_pair("if", "/dev/zero");
    /// assert_eq!(cmd.to_string(), "dd if=/dev/zero");
    /// ```
    pub fn arg_pair(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        let mut a = name.as_ref().to_owned();
        a.push("=");
        a.push(value);
        self.cfg.argv.push(a);
        self
    }

    /// Adds one formatted argument (libvirt's AddArgFormat).
    ///
    /// ```
    /// let cmd = safespawn::Command::new("head").arg_fmt(format_args!("-n{}", 5));
    /// assert_eq!(cmd.to_string(), "head -n5");
    /// ```
    pub fn arg_fmt(mut self, args: fmt::Arguments<'_>) -> Self {
        self.cfg.argv.push(fmt::format(args).into());
        self
    }

    /// Sets a variable; a key set twice is replaced in place. Any environment
    /// call means the child gets exactly the listed variables (libvirt's
    /// AddEnvPair).
    ///
    /// ```
    /// let cmd = safespawn::Command::new("env").env("A", "1").env("B", "x y").env("A", "2");
    /// assert_eq!(cmd.to_string(), "A=2 B='x y' env");
    /// ```
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.cfg
            .env
            .set(key.as_ref().to_owned(), value.as_ref().to_owned());
        self
    }

    /// Sets a variable from `"NAME=VALUE"` (libvirt's AddEnvString); a string
    /// without `=` is reported by `build()`.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("env").env_string("LANG=C");
    /// assert_eq!(cmd.to_string(), "LANG=C env");
    /// assert!(safespawn::Command::new("env").env_string("LANG").build().is_err());
    /// ```
    pub fn env_string(mut self, entry: impl AsRef<OsStr>) -> Self {
        let entry = entry.as_ref();
        match crate::env::split_env_string(entry) {
            Some((k, v)) => self.cfg.env.set(k, v),
            None => {
                self.cfg.env.make_explicit();
                let item = format!("environment string {}", crate::plan::shown(entry));
                self.defer(Error::build(
                    BuildErrorKind::Invalid,
                    item,
                    "has no '=' between name and value",
                ));
            }
        }
        self
    }

    /// Copies the parent's value of `name`, if it is set (libvirt's
    /// AddEnvPass). Like every environment call, it ends inheritance.
    ///
    /// ```
    /// std::env::set_var("SAFESPAWN_DOC_PASS", "1");
    /// let cmd = safespawn::Command::new("env").env_pass("SAFESPAWN_DOC_PASS").env_pass("SAFESPAWN_UNSET");
    /// assert_eq!(cmd.to_string(), "SAFESPAWN_DOC_PASS=1 env");
    /// ```
    pub fn env_pass(mut self, name: impl AsRef<OsStr>) -> Self {
        self.cfg.env.pass(name.as_ref());
        self
    }

    /// `LC_ALL=C` plus the parent's PATH, LD_PRELOAD, LD_LIBRARY_PATH, HOME,
    /// USER, LOGNAME and TMPDIR where set (libvirt's AddEnvPassCommon).
    ///
    /// ```
    /// let cmd = safespawn::Command::new("env").env_pass_common();
    /// assert!(cmd.to_string().starts_with("LC_ALL=C "));
    /// ```
    pub fn env_pass_common(mut self) -> Self {
        self.cfg.env.set("LC_ALL".into(), "C".into());
        for name in crate::env::PASS_COMMON {
            self.cfg.env.pass(OsStr::new(name));
        }
        self
    }

    /// Removes a variable: from the listed ones, or, while still inheriting,
    /// from the inherited environment (as in std).
    ///
    /// ```
    /// let cmd = safespawn::Command::new("env").env("A", "1").env("B", "2").env_remove("A");
    /// assert_eq!(cmd.to_string(), "B=2 env");
    /// ```
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.cfg.env.remove(key.as_ref());
        self
    }

    /// An empty environment, to which later calls add.
    ///
    /// ```
    /// let st = safespawn::Command::new("sh").args(["-c", "test -z \"$HOME\""]).env_clear().status().unwrap();
    /// assert!(st.success());
    /// ```
    pub fn env_clear(mut self) -> Self {
        self.cfg.env.clear();
        self
    }

    /// Gives the child `fd` under the same number; the parent's copy is
    /// closed when the [`Prepared`] is dropped (libvirt's PassFD with
    /// CLOSE_PARENT). Numbers 0-2 collide with stdio and are refused by
    /// `build()`.
    ///
    /// ```
    /// use std::os::fd::{AsRawFd, OwnedFd};
    /// let fd: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    /// let n = fd.as_raw_fd();
    /// let st = safespawn::Command::new("sh").arg("-c").arg(format!("test -e /proc/self/fd/{n}"))
    ///     .pass_fd(fd).status().unwrap();
    /// assert!(st.success());
    /// ```
    pub fn pass_fd(mut self, fd: OwnedFd) -> Self {
        self.cfg.fds.push(FdRequest::Pass(fd));
        self
    }

    /// Gives the child `fd` under the same number; the caller keeps its fd
    /// and must keep it open while the command is spawned (libvirt's PassFD
    /// without flags).
    ///
    /// ```
    /// use std::os::fd::{AsFd, AsRawFd};
    /// let file = std::fs::File::open("/dev/null").unwrap();
    /// let n = file.as_raw_fd();
    /// let st = safespawn::Command::new("sh").arg("-c").arg(format!("test -e /proc/self/fd/{n}"))
    ///     .pass_fd_shared(file.as_fd()).status().unwrap();
    /// assert!(st.success());
    /// drop(file); // still ours
    /// ```
    pub fn pass_fd_shared(mut self, fd: BorrowedFd<'_>) -> Self {
        self.cfg.fds.push(FdRequest::Shared(fd.as_raw_fd()));
        self
    }

    /// Places `fd` at number `child_fd` in the child (like
    /// `sd_listen_fds`'s fd 3). The parent's copy is closed when the
    /// [`Prepared`] is dropped. Two fds for one child number, or a number
    /// 0-2 (use [`stdin`](Command::stdin) and friends), is a build error.
    ///
    /// ```
    /// let file = std::fs::File::open("/dev/null").unwrap();
    /// let st = safespawn::Command::new("sh").args(["-c", "test -e /proc/self/fd/7"])
    ///     .map_fd(file, 7).status().unwrap();
    /// assert!(st.success());
    /// ```
    pub fn map_fd(mut self, fd: impl Into<OwnedFd>, child_fd: RawFd) -> Self {
        self.cfg.fds.push(FdRequest::Map(fd.into(), child_fd));
        self
    }

    /// Clears every capability set and the bounding set in the child, except
    /// capabilities allowed with [`allow_cap`](Command::allow_cap) (libvirt's
    /// ClearCaps).
    ///
    /// Dropping from the bounding set needs `CAP_SETPCAP`: a caller without
    /// it gets [`Error::Spawn`] at stage [`Caps`](crate::Stage::Caps) with
    /// `EPERM` rather than a child that silently kept its bounding set.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("true").clear_caps();
    /// # drop(cmd);
    /// ```
    pub fn clear_caps(mut self) -> Self {
        self.cfg.clear_caps = true;
        self
    }

    /// Keeps `cap` when capabilities are cleared (it implies
    /// [`clear_caps`](Command::clear_caps)), and raises it into the ambient
    /// set so it survives exec under a non-root uid (libvirt's AllowCap).
    ///
    /// ```
    /// use safespawn::{Capability, Command};
    /// let cmd = Command::new("true").allow_cap(Capability::NetBindService);
    /// # drop(cmd);
    /// ```
    pub fn allow_cap(mut self, cap: Capability) -> Self {
        self.cfg.allowed_caps |= cap.bit();
        self
    }

    /// Runs the child as user `uid` (libvirt's SetUID). Without
    /// [`groups`](Command::groups) the supplementary groups are cleared.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("id").uid(65534).gid(65534);
    /// # drop(cmd);
    /// ```
    pub fn uid(mut self, uid: u32) -> Self {
        self.cfg.uid = Some(uid);
        self
    }

    /// Runs the child as group `gid` (libvirt's SetGID).
    ///
    /// ```
    /// let cmd = safespawn::Command::new("id").gid(65534);
    /// # drop(cmd);
    /// ```
    pub fn gid(mut self, gid: u32) -> Self {
        self.cfg.gid = Some(gid);
        self
    }

    /// The child's supplementary groups (an empty slice clears them).
    ///
    /// ```
    /// let cmd = safespawn::Command::new("id").uid(65534).groups(&[65534, 100]);
    /// # drop(cmd);
    /// ```
    pub fn groups(mut self, groups: &[u32]) -> Self {
        self.cfg.groups = Some(groups.to_vec());
        self
    }

    /// The child's umask; 0 is a valid mask (libvirt's SetUmask cannot say so).
    ///
    /// ```
    /// let cmd = safespawn::Command::new("sh").args(["-c", "test $(umask) = 0027"]).umask(0o027);
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn umask(mut self, mode: u32) -> Self {
        self.cfg.umask = Some(mode);
        self
    }

    /// A resource limit for the child; `u64::MAX` means unlimited
    /// (libvirt's SetMaxFiles, SetMaxProcesses, ...).
    ///
    /// ```
    /// use safespawn::{Command, Resource};
    /// let cmd = Command::new("sh").args(["-c", "test $(ulimit -n) = 256"])
    ///     .rlimit(Resource::Nofile, 256, 512);
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn rlimit(mut self, resource: Resource, soft: u64, hard: u64) -> Self {
        self.cfg.rlimits.push((resource, soft, hard));
        self
    }

    /// Sets `PR_SET_NO_NEW_PRIVS`: the child and its descendants can never
    /// gain privileges through setuid binaries or file capabilities.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("true").no_new_privs();
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn no_new_privs(mut self) -> Self {
        self.cfg.no_new_privs = true;
        self
    }

    /// The signal the child gets when the parent dies. The kernel sends it
    /// when the spawning *thread* exits, so spawn from a long-lived thread.
    ///
    /// ```
    /// use safespawn::{Command, Signal};
    /// let cmd = Command::new("true").parent_death_signal(Signal::KILL);
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn parent_death_signal(mut self, signal: Signal) -> Self {
        self.cfg.parent_death_signal = Some(signal);
        self
    }

    /// Starts the child in a new session (`setsid`), detached from the
    /// controlling terminal.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("true").new_session();
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn new_session(mut self) -> Self {
        self.cfg.new_session = true;
        self
    }

    /// Puts the child in process group `pgid`; 0 makes a new group led by
    /// the child (as std's `process_group`).
    ///
    /// ```
    /// let cmd = safespawn::Command::new("true").process_group(0);
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn process_group(mut self, pgid: i32) -> Self {
        self.cfg.process_group = Some(pgid);
        self
    }

    /// For `run`, `status` and `output`: past `timeout` the child is aborted
    /// (TERM, a short grace, KILL, reap) and the call returns
    /// [`Error::Timeout`].
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

    /// Makes `build()` fail rather than take the slower fork path (which only
    /// a `pre_exec` hook needs): spawn cost then never grows with the
    /// parent's memory.
    ///
    /// ```
    /// let p = safespawn::Command::new("true").forbid_fork().build();
    /// assert!(p.is_ok());
    /// ```
    pub fn forbid_fork(mut self) -> Self {
        self.cfg.forbid_fork = true;
        self
    }

    /// Keeps the parent's signal mask in the child instead of emptying it
    /// (for nohup-style callers).
    ///
    /// ```
    /// let cmd = safespawn::Command::new("true").keep_signal_mask();
    /// # drop(cmd);
    /// ```
    pub fn keep_signal_mask(mut self) -> Self {
        self.cfg.keep_signal_mask = true;
        self
    }

    /// Keeps signals the parent ignores ignored in the child instead of
    /// resetting them to their default action.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("true").keep_ignored_signals();
    /// # drop(cmd);
    /// ```
    pub fn keep_ignored_signals(mut self) -> Self {
        self.cfg.keep_ignored_signals = true;
        self
    }

    /// Runs `hook` in the child after its fds, privileges and working
    /// directory are set up, just before exec (libvirt's SetPreExecHook).
    /// Hooks run in the order given; an `Err` stops the child and reaches the
    /// parent as [`Error::Spawn`] at stage [`Hook`](crate::Stage::Hook). A
    /// hook makes the spawn take the fork path; with
    /// [`forbid_fork`](Command::forbid_fork) that is a build error.
    ///
    /// # Safety
    ///
    /// The hook runs in a copy of a possibly multi-threaded process: it must
    /// be async-signal-safe. It must not allocate, lock (no `println!`, no
    /// `std::env`), or panic; raw system calls (rustix) are fine.
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

    /// Closes inherited fds by walking `/proc/self/fd`, as on kernels without
    /// `close_range`. For tests of that fallback.
    #[doc(hidden)]
    pub fn close_fds_by_proc_walk(mut self) -> Self {
        self.cfg.close_fds = Some(crate::plan::CloseFds::Walk);
        self
    }

    /// Closes inherited fds with plain `close_range` calls, as on kernels
    /// without `CLOSE_RANGE_CLOEXEC`. For tests of that path.
    #[doc(hidden)]
    pub fn close_fds_without_cloexec(mut self) -> Self {
        self.cfg.close_fds = Some(crate::plan::CloseFds::Close);
        self
    }

    /// Checks everything and freezes the command into a reusable
    /// [`Prepared`]: argv, envp, program path and fd plan serialised, PATH
    /// resolved, `/dev/null` opened.
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
        Ok(Prepared::from_plan(self.cfg.into_plan()?))
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
        crate::quote::write_all(fd.as_fd(), &self.cfg.arg_log())
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
            .field("stdin", &c.stdin)
            .field("stdout", &c.stdout)
            .field("stderr", &c.stderr)
            .field("fds", &c.fds)
            .field("cwd", &c.cwd)
            .field("hooks", &c.hooks.len())
            .finish_non_exhaustive()
    }
}
