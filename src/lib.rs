//! Spawn processes the way security-sensitive code must.
//!
//! `safespawn` rebuilds libvirt's virCommand API as a typestate builder whose
//! spawn path allocates nothing and whose child makes only
//! async-signal-safe raw system calls.
//!
//! # Life cycle
//!
//! ```text
//! Command<M>  --build()-->  Prepared<M>  --spawn()-->  Running  --wait()-->  Finished
//!  (records;                 (checked, serialised;      (pid + pidfd;         (reaped:
//!   may allocate)             reusable, Send + Sync)     killed on drop)       status)
//! ```
//!
//! * [`Command`] only records. Nothing is checked until [`Command::build`],
//!   which rejects NUL bytes, bad variable names, fd collisions, an argument
//!   list the kernel would refuse (`E2BIG`) and a program not on PATH, each
//!   as an [`Error::Build`] naming the offending item.
//! * [`Prepared`] holds argv, envp, the resolved program path, the working
//!   directory and the fd plan as ready-made C buffers. Spawning it allocates
//!   nothing, and it can be spawned from many threads at once.
//! * [`Running`] owns the child through its pidfd: it is reaped exactly once,
//!   a recycled pid is never signalled, and dropping it aborts the child
//!   (SIGTERM, a short grace, SIGKILL, reap). On kernels without pidfds
//!   (before 5.2; 5.3 for the fork path) or without `waitid(P_PIDFD)`
//!   (before 5.4), or under a seccomp filter refusing them, it owns the
//!   child by pid instead, which stays the child's own until it is reaped. [`Running::detach`] hands the
//!   child over as a [`Detached`].
//! * [`Finished`] is the reaped status.
//!
//! # Daemons
//!
//! [`Command::daemonize`] turns a command into a [`Daemon`]: the child calls
//! `setsid` and starts the daemon itself (a double fork, done with two
//! `clone(CLONE_VM | CLONE_VFORK)` so the cost stays flat in the parent's
//! size); the daemon runs in "/", with `/dev/null` as stdio unless set
//! otherwise, and with [`Command::pidfile`] it creates, locks (a POSIX
//! `fcntl` write lock held across exec, for the daemon's lifetime) and writes
//! its pidfile before it execs. [`Prepared::run`] returns [`Daemonized`]
//! with both pids once the intermediate process is reaped and the pidfile
//! written; a second daemon on a locked pidfile, or a daemon that cannot
//! exec, is an [`Error::Spawn`].
//!
//! ```
//! use safespawn::Command;
//! let d = Command::new("sleep").arg("0.1").daemonize().run()?;
//! assert!(d.daemon > 0);
//! # Ok::<(), safespawn::Error>(())
//! ```
//!
//! # The child's steps
//!
//! Between clone and exec the child runs one fixed list of steps, each
//! with raw system calls on what `build()` prepared; a failed step is
//! reported as [`Error::Spawn`] with its [`Stage`]:
//!
//! | step | what | why there |
//! |---|---|---|
//! | (clone) | [`Command::unshare`]'s new namespaces, as `CLONE_NEW*` flags of the clone itself; [`Command::cgroup`]'s placement (`CLONE_INTO_CGROUP`) | nothing of the child runs outside them; a pid namespace only counts for a process it creates |
//! | own fd table | a child of the vfork path, started on the parent's fd table (`CLONE_FILES`, where the kernel has `close_range`), takes a table of its own holding only the fds below every fd it uses (`close_range(n, ~0, CLOSE_RANGE_UNSHARE)`; [`Stage::Fds`]) | first: no step may open, move or close an fd in the caller's table; the parent's other fds are never copied nor closed one by one, so a spawn costs the same with 10 or 10,000 fds open |
//! | signals | handlers to default, ignored signals reset, mask emptied | first of the rest: no parent handler may run in the child (every signal stays blocked until then) |
//! | cgroup | where the clone could not place it (no `CLONE_INTO_CGROUP`): `"0"` written to the cgroup's `cgroup.procs` (opened at `build()`), then a new cgroup namespace if asked for | right after the signals: the child spends no more than the clone and that step in the caller's cgroup; the namespace after the placement, so its root is the target |
//! | namespaces | with [`Command::uid_map`] / [`Command::gid_map`] ranges, a wait at the gate while the parent writes them (`uid_map`, `setgroups`, `gid_map`; the fork path); [`Command::map_root`]'s self maps (`setgroups` denied, then `gid_map`, then `uid_map`); [`Command::join_namespace`]'s `setns` calls, [`Command::hostname`] | right after the signals: until the maps are written the child's ids are unmapped and every later step would see them so; the join fds are used before the fd steps could move or close them |
//! | fds | stdio, passed fds and the read ends of [`Command::send_buffer`]'s pipes placed, collision-safe; every other fd closed (the parent's write ends are close-on-exec besides) | before anything that could keep an fd open |
//! | daemon | daemon mode: `setsid`, the daemon started, `/`, the pidfile | before the privilege steps, with the caller's rights |
//! | mounts | with a new mount namespace: `/` made a recursive slave; [`Command::root`] / [`Command::root_tmpfs`]'s base tmpfs and pivot; each [`Command::mount`]; the old root detached; with [`Command::map_root`], the view locked (a nested user and mount namespace) | after the fds and the pidfile (named in the caller's view); before the privilege steps, which would take `CAP_SYS_ADMIN` away, and before the working directory and the hooks, which belong to the new view |
//! | process | umask, rlimits | before the uid change, while a hard limit may still be raised |
//! | knobs | [`Command::nice`], [`Command::cpu_affinity`], [`Command::sched_core_new`] / [`Command::sched_core_share_from`] ([`Stage::Sched`]); [`Command::oom_score_adj`], written through a `/proc` fd `build()` opened; [`Command::personality`] last | after the rlimits (`RLIMIT_NICE` counts); before the credentials, since a lower nice value needs `CAP_SYS_NICE`, a lower OOM score `CAP_SYS_RESOURCE`, sharing a core-scheduling cookie ptrace access; the persona last, as it may change how later calls behave |
//! | label | [`Command::selinux_exec_label`], [`Command::apparmor_profile`]: the exec attribute of this thread, through the same `/proc` fd | after the knobs, before the credentials: the attribute is this thread's to write, and a policy may refuse a transition after a uid change; it takes effect at exec |
//! | privileged hooks | [`Command::pre_exec_privileged`] hooks, in order | with the caller's credentials, before the privilege drop (libvirt's hook order); after the mounts, limits, knobs and label, so the hook sees the child's view and cannot get in the way of the label write; the credential steps after it apply in full whatever it did |
//! | credentials | [`Command::securebits`], bounding set, `KEEPCAPS`, groups, gid, uid, capability sets, `no_new_privs` | securebits first and the bounding set while `CAP_SETPCAP` is there, groups while `CAP_SETGID` is |
//! | session | parent-death signal (then a check that the parent is still there), `setsid`, [`Command::controlling_tty`]'s `TIOCSCTTY`, process group, [`Command::foreground`]'s `tcsetpgrp` (with `SIGTTOU` blocked for the call) | after the credentials: changing them clears the parent-death signal; after the fds, so the terminal is at its child number; the terminal after `setsid` (only a session leader acquires one), the foreground after the group it gives the terminal to |
//! | exec | working directory | with the program's own credentials |
//! | hooks | [`Command::pre_exec`] hooks, in order | after every set-up step, with the program's credentials |
//! | landlock | [`Command::landlock`]'s `landlock_restrict_self` on the ruleset `build()` made | after the mounts (a landlocked process cannot change its mount topology), `no_new_privs` and the caller's own set-up (working directory, hooks); before the pause, so a paused child is already confined |
//! | pause | [`Prepared::spawn_paused`]'s stop | the last moment a prepared child can be acted on |
//! | seccomp | [`Command::seccomp`]'s filters | last: every later system call is filtered, so only exec (and a failed exec's report) comes after; after the credentials, which set `no_new_privs` for it. (Where a filter blocks `write`, a child that reports on a pipe moved it to the one fd the filter allows right after the fd steps; a child of `clone3` reports in the parent's memory.) |
//! | exec | `execve` | |
//!
//! Changing the uid or gid without [`Command::groups`] clears the
//! supplementary groups.
//!
//! The mode `M` decides what a command can do, at compile time:
//! [`Direct`] (caller-managed stdio, `spawn`/`run`/`status`),
//! [`Buffered`] (in-memory I/O, run to completion: no `spawn`) and [`Daemon`]. For
//! example, a finished child cannot be waited again:
//!
//! ```compile_fail
//! let child = safespawn::Command::new("true").spawn().unwrap();
//! let finished = child.wait().unwrap();
//! child.wait(); // error: `child` was moved by the first wait
//! ```
//!
//! nor can a [`Finished`] (it has no `wait`):
//!
//! ```compile_fail
//! let finished = safespawn::Command::new("true").spawn().unwrap().wait().unwrap();
//! finished.wait(); // error: no method named `wait` on `Finished`
//! ```
//!
//! and `abort` consumes the child too:
//!
//! ```compile_fail
//! let child = safespawn::Command::new("sleep").arg("1").spawn().unwrap();
//! child.abort().unwrap();
//! child.pid(); // error: `child` was moved by abort
//! ```
//!
//! # A quick tour
//!
//! ```
//! use safespawn::{Command, Stdio};
//! use std::io::Read;
//!
//! // Build once, run many times.
//! let prepared = Command::new("printf")
//!     .args(["%s-%s|", "a b", ""])
//!     .env_clear()
//!     .stdout(Stdio::piped())
//!     .build()?;
//! for _ in 0..3 {
//!     let mut child = prepared.spawn()?;
//!     let mut out = String::new();
//!     child.take_stdout().unwrap().read_to_string(&mut out).unwrap();
//!     assert_eq!(out, "a b-|");
//!     child.wait()?.check()?;
//! }
//! // The command line as a shell would need it.
//! assert_eq!(prepared.to_string(), "printf '%s-%s|' 'a b' ''");
//! # Ok::<(), safespawn::Error>(())
//! ```
//!
//! # Buffered I/O
//!
//! [`Buffered`] mode feeds stdin from memory and captures stdout and stderr
//! (separately, or interleaved in write order) through one deadlock-free
//! poll loop; it runs to completion (`run`/`output`, or their `_async`
//! forms: see [Async](#async)), so it has no `spawn`:
//!
//! ```
//! let out = safespawn::Command::new("tr")
//!     .args(["a-z", "A-Z"])
//!     .input("hello\n")
//!     .capture_stdout()
//!     .run()?;
//! assert_eq!(out.stdout, b"HELLO\n");
//! # Ok::<(), safespawn::Error>(())
//! ```
//!
//! Secrets travel through these buffers (a key on stdin, or on an fd of
//! its own with [`Command::send_buffer`], which every mode has): the
//! memory that holds them is zeroed before it is freed, and the crate
//! makes no copy of them.
//!
//! # Pipelines
//!
//! `cmd_a | cmd_b | cmd_c` makes a [`Pipeline`]: each stage's stdout feeds
//! the next stage's stdin through a pipe made per spawn, whose ends the
//! parent closes right after the spawns that use them. A failure is
//! pipefail's ([`Error::Pipeline`] names the stage and its status), except
//! that an upstream stage killed by `SIGPIPE` is not one unless
//! [`Pipeline::sigpipe_is_failure`] says so. A [`PreparedPipeline`]
//! spawns with no allocation, and dropping a [`RunningPipeline`] kills and
//! reaps every stage.
//!
//! ```
//! use safespawn::Command;
//! let out = (Command::new("printf").arg("b\na\nb\n") | Command::new("sort") | Command::new("uniq"))
//!     .output()?;
//! assert_eq!(out.stdout, b"a\nb\n");
//! assert_eq!(out.status.len(), 3);
//! # Ok::<(), safespawn::Error>(())
//! ```
//!
//! # Async
//!
#![cfg_attr(
    not(any(feature = "tokio", feature = "async-io")),
    doc = "With the cargo feature `tokio` (or `async-io`) a child is awaited through the
runtime's reactor (`Running::wait_async`, `Prepared::status_async`, `output_async`, ...):
this build has neither; see the documentation built with them (docs.rs has all features)."
)]
#![cfg_attr(
    any(feature = "tokio", feature = "async-io"),
    doc = r#"
With the cargo feature `tokio` (or `async-io`, for smol and async-std;
both may be enabled) a child is awaited through the runtime's reactor:
its pidfd is registered with the reactor's epoll set, once per
`Running`, and each readiness is taken as a hint, answered by a
non-blocking `waitid(P_PIDFD)`. No helper thread, no `SIGCHLD`
handler, no global queue of children: a `SIGCHLD`-based reaper
elsewhere in the process (tokio::process's, say) neither sees our
children nor has its own reaped by us.

| item | what |
|---|---|
| [`Running::wait_async`] | `&mut self`: cancel-safe (a dropped wait loses nothing; wait again, or drop the child) |
| [`Running::abort_async`] | TERM, the grace on the runtime's timer, KILL, reap |
| [`Prepared::status_async`], [`Prepared::run_async`] (`Direct`) | as `status`/`run`; [`Command::timeout`] applies |
| [`Prepared::output_async`], [`Prepared::run_async`] (`Buffered`) | buffered mode on the reactor: the same streams and decisions as the poll loop (input, captures, send buffers, `wait_delay`, `timeout`), only the waiting differs |
| the same on [`Command`] | each = `build()?` then the call |

Which runtime: with one feature, that one; with both, tokio when the
call is polled inside a tokio runtime
(`tokio::runtime::Handle::try_current`), async-io otherwise. tokio's
runtime needs its IO and time drivers (`Builder::enable_all`); with the
`tokio` feature alone, a call outside any tokio runtime is an
[`Error::Io`], not a panic. Where the kernel cannot poll pidfds (before
Linux 5.3, or a seccomp filter refusing `pidfd_open`) the waits sleep on
the runtime's timer between non-blocking waits, 1 ms doubling up to
10 ms, as the synchronous timeouts do.

Spawning itself stays synchronous: it returns once the child has
exec'd (tens to hundreds of microseconds, allocation-free). Dropping a
[`Running`] inside a runtime still kills and reaps it, synchronously:
up to the 100 ms grace for a child that ignores SIGTERM, and as long as
a child stays in uninterruptible sleep; [`Running::abort_async`] does
the same without holding the thread.

A `Direct` child's pipes become the runtime's pipe types (with
[`Command::nonblocking_pipes`]; tokio's constructors set `O_NONBLOCK`
themselves too): `tokio::net::unix::pipe::Receiver::from_owned_fd`,
`async_io::Async::new` on the `PipeReader`. With tokio:
"#
)]
#![cfg_attr(
    feature = "tokio",
    doc = r#"
```
use safespawn::{Command, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;

# tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
// Many children at once, each in its own task, none with a thread.
let prepared = std::sync::Arc::new(Command::new("sh").args(["-c", "exit 3"]).build()?);
let tasks: Vec<_> = (0..10)
    .map(|_| {
        let p = prepared.clone();
        tokio::spawn(async move { p.status_async().await })
    })
    .collect();
for t in tasks {
    assert_eq!(t.await.unwrap()?.code(), Some(3));
}

// A child's pipes on the reactor.
let mut child = Command::new("tr")
    .args(["a-z", "A-Z"])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .nonblocking_pipes()
    .spawn()?;
let mut stdin = pipe::Sender::from_owned_fd(child.take_stdin().unwrap().into())?;
let mut stdout = pipe::Receiver::from_owned_fd(child.take_stdout().unwrap().into())?;
stdin.write_all(b"hello").await?;
drop(stdin);
let mut out = String::new();
stdout.read_to_string(&mut out).await?;
assert_eq!(out, "HELLO");
assert!(child.wait_async().await?.success());

// Buffered mode, with a timeout: the reactor drives the pipes.
let out = Command::new("sh")
    .args(["-c", "cat; echo done >&2"])
    .input("data")
    .capture_stdout()
    .capture_stderr()
    .timeout(std::time::Duration::from_secs(10))
    .run_async()
    .await?;
assert_eq!((out.stdout.as_slice(), out.stderr.as_slice()), (&b"data"[..], &b"done
"[..]));
# Ok::<(), Box<dyn std::error::Error>>(())
# }).unwrap();
```
"#
)]
//!
//! # Testing code that runs commands
//!
//! [`dry_run::capture`] and [`dry_run::capture_with`] record the command
//! lines your code would run and fake their outcomes, without starting
//! anything: see the [`dry_run`] module.
//!
//! # Safety model
//!
//! The child runs between `clone`/`fork` and `exec`, where a multi-threaded
//! parent's locks may be held by threads that do not exist in the child. So
//! everything that allocates or looks things up happens in the parent, in
//! `build()` (PATH search, argv/envp, group lists, the fd plan) or in the
//! spawning call (pipes). The child only reads that plan and makes raw
//! system calls; its contract is written at the top of the `child` module
//! and tested with a global allocator that aborts when the child calls it.
//!
//! * **Default path:** `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)` with the
//!   child on a stack buffer in the spawning frame, every signal blocked in
//!   the parent around it. No page tables are copied, so the cost does not
//!   grow with the parent's memory. `vfork()` itself is never called from
//!   Rust: a function that returns twice into the same frame cannot be made
//!   sound; the child starts in its own `extern "C"` function instead.
//! * **Fork path:** only for `pre_exec` hooks and paused spawns, and
//!   refused by [`Command::forbid_fork`].
//! * **File descriptors:** every fd the library creates (pipes, pidfds,
//!   `/dev/null`) is close-on-exec and above the standard streams, so a
//!   parent that runs with fd 0, 1 or 2 closed never hands one of them to a
//!   child as its inherited stdio; the
//!   child places the planned fds (collision-safe), clears close-on-exec on
//!   those only, and closes everything else with `close_range` (or a
//!   `/proc/self/fd` walk; never a loop up to `RLIMIT_NOFILE`).
//! * **Signals:** the child starts with every handler at `SIG_DFL` and an
//!   empty mask, unless [`Command::keep_signal_mask`] or
//!   [`Command::keep_ignored_signals`] say otherwise. Ignored signals are
//!   reset as the parent had them when [`Command::build`] ran: on Linux
//!   ≥ 5.5 (x86_64) the kernel resets every handler at clone time
//!   (`CLONE_CLEAR_SIGHAND`) and the child resets only the signals that
//!   were ignored at `build()`, because asking the kernel about all 64 per
//!   spawn would cost more than the rest of the spawn. A signal the parent
//!   starts ignoring *after* `build()` may stay ignored in children of that
//!   [`Prepared`]: build again after changing dispositions. (Elsewhere, and
//!   on the fork path, every disposition is read and reset at spawn time.)
//! * **Errors:** a failure in the child travels back as stage + errno on a
//!   close-on-exec pipe ([`Error::Spawn`]); the child exits 125, 126 or 127.
//!   On the default path the parent reads that pipe once, non-blocking,
//!   after the child has exec'd or exited, so an empty pipe means success
//!   and the same pipe can serve the next spawn: a [`Prepared`] keeps one
//!   (two close-on-exec fds for its lifetime) and hands it to one spawn at
//!   a time; concurrent spawns, forked copies of the process, the fork
//!   path and daemon mode use pipes of their own.
//!
//! # Kernels and containers
//!
//! safespawn works on Linux 4.18 and later (RHEL 8, Debian 10), and inside
//! containers whose seccomp profile refuses newer system calls, with the
//! same guarantees: where a feature is missing it takes the next path,
//! learns that once per process, and costs nothing extra on kernels that
//! have it. CI runs the whole test suite under seccomp profiles that
//! emulate each row below (`tools/compat-run`, see TESTING.md).
//!
//! | feature | Linux | without it |
//! |---|---|---|
//! | `clone3` with `CLONE_CLEAR_SIGHAND` | 5.5 | `clone(CLONE_VM \| CLONE_VFORK)`; the child resets each signal handler itself (one `sigaction` per signal). `EPERM` from a container profile is treated as absent |
//! | `CLONE_PIDFD` | 5.2 | `pidfd_open` right after the clone; where that is missing too, the child is owned by its pid |
//! | `pidfd_open` | 5.3 | the fork path (hooks, paused spawns) owns its child by pid |
//! | `waitid(P_PIDFD)` | 5.4 | `waitid(P_PID)`: a child we have not reaped keeps its pid, so waiting for it by pid is race-free |
//! | `pidfd_send_signal` | 5.1 | `kill(2)` on the pid, only while the child is unreaped (the same reason) |
//! | `poll` on a pidfd | 5.3 | timeouts, `wait_timeout`, aborts and buffered mode sleep 1 ms, doubling to 10 ms, between non-blocking waits |
//! | `close_range` | 5.9 | a walk of `/proc/self/fd`; without `/proc` a `ppoll` scan of fd numbers up to `RLIMIT_NOFILE`, 256 at a time |
//! | `CLOSE_RANGE_CLOEXEC` | 5.11 | plain `close_range` over the gaps between kept fds |
//! | the ambient capability set | 4.3 | not cleared (there is none) |
//! | `CLONE_INTO_CGROUP` | 5.7 | the child writes itself to the cgroup's `cgroup.procs` (opened at `build()`, so the permission is the caller's) as its first step after the signals; [`Namespaces::CGROUP`] is then unshared by the child after that write instead of with the clone. Found at the first `build()` with a cgroup by a `clone3` that fails before it creates anything |
//! | `seccomp(2)` | 3.17 | [`Command::seccomp`]'s filters are installed with `prctl(PR_SET_SECCOMP)` (probed at `build()`, also where a profile refuses the call) |
//! | `mount_setattr` | 5.12 | read-only binds and `remount_ro` use `MS_REMOUNT \| MS_BIND \| MS_RDONLY` with the locked flags restated, once per mount: the bind and each submount `build()` finds below its source in `/proc/self/mountinfo` (without that table the bind is not recursive) |
//!
//! Namespaces ([`Command::unshare`]) have no fallback: a kind the kernel or
//! a container profile refuses (Docker's default profile refuses the
//! `CLONE_NEW*` flags without `CAP_SYS_ADMIN`; some distributions disable
//! unprivileged user namespaces) is [`Error::Spawn`] at
//! [`Stage::Namespace`] with the kernel's errno. Without `clone3` (before
//! 5.3, or refused) the namespaces are flags of the plain `clone`, except
//! `TIME`, which only `clone3` takes: once this process has learned that
//! `clone3` is missing, `build()` refuses `TIME`, and before that the spawn
//! fails at [`Stage::Namespace`] with `clone3`'s errno (`ENOSYS`). A
//! `clone3` refusal seen with namespace flags is remembered only once the
//! plain `clone` with the same flags has worked, since `EPERM` and `EINVAL`
//! can be the namespaces' own answer. Minimum kernels: unprivileged user
//! namespaces 3.8, cgroup 4.6, time 5.6, `setns` by pidfd 5.8.
//!
//! Landlock ([`Command::landlock`]) has no fallback either: where the
//! kernel has none (before 5.13, or not enabled at boot) or a container
//! profile refuses it, `build()` refuses every [`Landlock`], best effort or
//! not, since nothing of it would be enforced; path rules need ABI 3
//! (Linux 6.2: truncation) and TCP rules ABI 4 (6.7) unless
//! [`Landlock::best_effort`] accepts less, and [`Prepared::landlock_abi`]
//! says what was found.
//!
//! Where the pidfd itself is what the caller wants, it cannot be made up:
//! [`Running::pidfd`] is `None` on kernels without pidfds (before 5.2, or
//! 5.3 on the fork path), and the `safespawn` tool then passes signals on by
//! pid (a signal arriving in the instant between the program's reap and the
//! tool noticing it would go to a pid number that is free; the kernel
//! hands a number out again only after cycling through the whole pid
//! space). Owning children by pid assumes nobody else in the process reaps
//! them (`waitpid(-1)`, `SIGCHLD` ignored), as std and every other process
//! library do. On Linux 5.2 a pidfd exists but cannot be polled; safespawn
//! never polls it there.
//!
//! # From libvirt's names
//!
//! | libvirt | safespawn |
//! |---|---|
//! | `virCommandNew`, `NewArgs`, `NewArgList` | [`Command::new`], [`Command::from_argv`] |
//! | `AddArg`, `AddArgSet`, `AddArgList` | [`Command::arg`], [`Command::args`] |
//! | `AddArgPair`, `AddArgFormat` | [`Command::arg_pair`], [`Command::arg_fmt`] |
//! | `AddEnvPair`, `AddEnvString` | [`Command::env`], [`Command::env_string`] |
//! | `AddEnvPass`, `AddEnvPassCommon` | [`Command::env_pass`], [`Command::env_pass_common`] |
//! | `PassFD` (with / without `CLOSE_PARENT`) | [`Command::pass_fd`] / [`Command::pass_fd_shared`] |
//! | `SetInputFD`, `SetOutputFD`, `SetErrorFD` | [`Command::stdin`], [`Command::stdout`], [`Command::stderr`] with [`Stdio`] |
//! | `NonblockingFDs` | [`Command::nonblocking_pipes`] |
//! | `SetWorkingDirectory` | [`Command::current_dir`] |
//! | `SetUID`, `SetGID` | [`Command::uid`], [`Command::gid`], [`Command::groups`] |
//! | `virGetGroupList` (the groups `SetUID` gives the child) | [`Command::groups_of`] (looked up at `build()`, in the parent) |
//! | `SetUmask`, `SetMaxFiles`, `SetMaxProcesses`, ... | [`Command::umask`], [`Command::rlimit`] |
//! | `ClearCaps`, `AllowCap` | [`Command::clear_caps`], [`Command::allow_cap`] |
//! | `SetPreExecHook` | [`Command::pre_exec_privileged`] (libvirt's place: as root, before the label and the privilege drop); [`Command::pre_exec`] runs after every set-up step |
//! | `RequireHandshake`, `HandshakeWait`, `HandshakeNotify` | [`Prepared::spawn_paused`], [`Paused::resume`] |
//! | `SetInputBuffer`, `SetOutputBuffer`, `SetErrorBuffer` | [`Command::input`], [`Command::capture_stdout`], [`Command::capture_stderr`], [`Command::capture_interleaved`] ([`Buffered`] mode, [`Output`]) |
//! | `SetSendBuffer` | [`Command::send_buffer`], in every mode: `Direct` (written by `spawn` as far as the pipe takes, the rest by the waits), `Buffered` (the run's loop), `Daemon` (`run` returns once written); erased when the last owner of the bytes (the command, or the `Prepared` and any `Running` still writing) is dropped, as libvirt erases its send buffers; so is [`Command::input`]'s stdin |
//! | `Run` / `RunAsync` + `Wait` | [`Prepared::run`] / [`Prepared::spawn`] + [`Running::wait`] |
//! | `Abort`, `Free` of an unreaped child | [`Running::abort`], dropping a [`Running`] |
//! | `virProcessWait`, `virProcessAbort` | [`Detached::wait`], [`Detached::abort`] |
//! | `ToString` | `Display` of [`Command`] and [`Prepared`] |
//! | `Daemonize`, `SetPidFile` | [`Command::daemonize`], [`Command::pidfile`] |
//! | `Daemonize` + `SetPidFile` + `RequireHandshake`, `HandshakeWait`, `HandshakeNotify` | [`Prepared::spawn_paused`] on a [`Daemon`] command → [`PausedDaemon::pids`], [`PausedDaemon::resume`] |
//! | `SetSELinuxLabel`, `SetAppArmorProfile` | [`Command::selinux_exec_label`] (a refusal is ignored where SELinux does not enforce, as in libvirt), [`Command::apparmor_profile`] (at exec, not at once) |
//! | `virCommandSetDryRun` (and its callback of args, env and input) | [`dry_run::capture`], [`dry_run::capture_with`], [`dry_run::capture_with_details`] ([`dry_run::Call`]: line, argv, env, input), scoped to the calling thread |
//! | `SetRunAlone`, `SetRunAmong` | [`Command::sched_core_new`], [`Command::sched_core_share_from`] |
//!
//! # From std's names
//!
//! [`Command::from_std`] turns a configured `std::process::Command` into a
//! safespawn one (program, arguments, environment changes, working
//! directory), so call sites can move one at a time. Where the two differ:
//!
//! | `std::process` | safespawn | difference |
//! |---|---|---|
//! | `Command::new`, `arg`, `args` | [`Command::new`], [`Command::arg`], [`Command::args`] | the program is looked up on the PATH at `build()`, in the parent |
//! | `env`, `envs` | [`Command::env`] | std adds to the inherited environment; safespawn's first environment call ends inheritance (libvirt's model). [`Command::from_std`] keeps std's meaning for what it converts |
//! | `env_remove`, `env_clear` | [`Command::env_remove`], [`Command::env_clear`] | the same |
//! | `current_dir` | [`Command::current_dir`] | changed to after the credentials |
//! | `stdin`, `stdout`, `stderr` with `Stdio` | the same names with [`Stdio`] | the default is `/dev/null`, not the parent's streams: [`Stdio::inherit`] asks for those |
//! | `spawn() -> Child` | [`Command::spawn`] → [`Running`] | dropping a `Running` kills and reaps the child; std's `Child` leaves it running |
//! | `status()` | [`Command::status`] | |
//! | `output()` | [`Command::capture_stdout`] / [`Command::capture_stderr`] then [`Command::output`] | captured only when asked ([`Buffered`] mode) |
//! | `status()?.success()` checks | [`Command::run`] | a failure is [`Error::Exit`] with the quoted command line |
//! | `Child::wait`, `try_wait`, `kill`, `id` | [`Running::wait`], [`Running::try_wait`], [`Running::signal`] / [`Running::abort`], [`Running::pid`] | `wait` and `abort` consume the child |
//! | `Child::stdin.take()` | [`Running::take_stdin`] (and `take_stdout`, `take_stderr`) | std's `PipeReader` / `PipeWriter` |
//! | `CommandExt::uid`, `gid`, `groups`, `process_group`, `pre_exec` | [`Command::uid`], [`Command::gid`], [`Command::groups`], [`Command::process_group`], [`Command::pre_exec`] | not read by `from_std`: std has no getters for them |
//! | a `pre_exec` hook calling `setsid` and `ioctl(TIOCSCTTY)`, or `tcsetpgrp` (a pty, job control) | [`Command::controlling_tty`], [`Command::foreground`] | prepared steps of the vfork-style child, no hook (Go's `Setctty` / `Foreground`) |
//! | `child_a.stdout` → `Stdio::from` → `child_b` | [`Pipeline`]: `cmd_a \| cmd_b` | pipes the parent never holds; pipefail, with an upstream `SIGPIPE` no failure by default |
//! | the `io::Error` of a failed spawn | [`Error`] | converts to `io::Error` with the same `raw_os_error()` and kind; its own `Display` also names the stage and program |

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

// The house: arrows run one way. The builder side (`command`) freezes a
// `plan`; its child part is read by the child side (`child`), which uses
// only `sys`, `frozen` and `error::Stage`. The parent side of a spawn
// (`spawn`) starts the child; `pidfd` owns it; `process`, `prepared`,
// `daemon` and `buffered` are the public layers on top.
mod buffered;
mod capability;
mod cgroup;
mod child;
mod command;
mod daemon;
pub mod dry_run;
mod error;
mod frozen;
mod mode;
mod pidfd;
mod pipeline;
mod plan;
mod prepared;
mod process;
mod quote;
#[cfg(any(feature = "tokio", feature = "async-io"))]
mod runtime;
mod secret;
mod send;
mod spawn;
mod sys;

pub use buffered::Output;
pub use capability::{Capability, UnknownCapability};
pub use cgroup::Cgroup;
pub use command::credentials::{Securebits, UserSpec};
pub use command::fds::Stdio;
pub use command::knobs::Personality;
pub use command::landlock::Landlock;
pub use command::mounts::Mount;
pub use command::namespaces::Namespaces;
pub use command::seccomp::Seccomp;
pub use command::Command;
pub use daemon::{Daemonized, PausedDaemon};
pub use error::{BuildErrorKind, Error, Stage};
pub use mode::{Buffered, Daemon, Direct, Mode};
pub use pipeline::{
    Pipeline, PipelineOutput, PipelineStatus, PreparedPipeline, RunningPipeline, Stages,
};
pub use prepared::Prepared;
pub use process::{Detached, Finished, Paused, Running};

/// Test-only: emulation of older kernels and seccomp profiles (see
/// [`__force_compat`]).
#[doc(hidden)]
pub mod __compat {
    pub use crate::sys::compat::{
        CLONE_IGNORES_PIDFD, CLONE_PIDFD_REFUSED, CLONE_REFUSES_PIDFD, CLONE_REFUSES_SHARED_FILES,
        LANDLOCK_ABI_1, LANDLOCK_ABI_2, LANDLOCK_ABI_3, LINUX_5_1, LINUX_5_2, LINUX_5_3, NO_CLONE3,
        NO_CLONE_INTO_CGROUP, NO_CLOSE_RANGE_UNSHARE, NO_LANDLOCK, NO_MOUNT_SETATTR, NO_PIDFD_OPEN,
        NO_PIDFD_SEND_SIGNAL, NO_SECCOMP_SYSCALL, NO_WAITID_PIDFD, OLD_CONTAINER_PROFILE,
        REFUSE_WITH_EPERM, SELINUX_ENFORCING, SLOW_ID_MAP_WRITER, SLOW_ID_MAP_WRITER_DELAY,
    };
}
/// Test-only: makes the pidfd-related system calls of this process answer
/// as the system described by the [`__compat`] flags would, so tests run
/// the fallbacks on a modern kernel. Process-wide; never for production.
#[doc(hidden)]
pub use crate::sys::compat::force as __force_compat;
/// Test-only: the [`__compat`] flags forced now.
#[doc(hidden)]
pub use crate::sys::compat::forced_flags as __forced_compat;

/// An error number, as the child reports it (rustix's).
pub use rustix::io::Errno;
/// A resource for [`Command::rlimit`] (rustix's).
pub use rustix::process::Resource;
/// A signal number (rustix's), e.g. `Signal::TERM`.
pub use rustix::process::Signal;
