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
//!   (SIGTERM, a short grace, SIGKILL, reap). [`Running::detach`] hands the
//!   child over as a [`Detached`].
//! * [`Finished`] is the reaped status.
//!
//! The mode `M` decides what a command can do, at compile time:
//! [`Direct`] (caller-managed stdio, `spawn`/`run`/`status`),
//! [`Buffered`] (in-memory I/O, synchronous only) and [`Daemon`]. For
//! example, a finished child cannot be waited again:
//!
//! ```compile_fail
//! let child = safespawn::Command::new("true").spawn().unwrap();
//! let finished = child.wait().unwrap();
//! child.wait(); // error: `child` was moved by the first wait
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
//!     .args(["%s-%s\n", "a b", ""])
//!     .env_clear()
//!     .stdout(Stdio::piped())
//!     .build()?;
//! for _ in 0..3 {
//!     let mut child = prepared.spawn()?;
//!     let mut out = String::new();
//!     child.take_stdout().unwrap().read_to_string(&mut out).unwrap();
//!     assert_eq!(out, "a b-\n");
//!     child.wait()?.check()?;
//! }
//! // The command line as a shell would need it.
//! assert_eq!(prepared.to_string(), "printf '%s-%s\n' 'a b' ''");
//! # Ok::<(), safespawn::Error>(())
//! ```
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
//! * **File descriptors:** every fd the library creates is close-on-exec; the
//!   child places the planned fds (collision-safe), clears close-on-exec on
//!   those only, and closes everything else with `close_range` (or a
//!   `/proc/self/fd` walk; never a loop up to `RLIMIT_NOFILE`).
//! * **Signals:** the child starts with every handler at `SIG_DFL` and an
//!   empty mask, unless [`Command::keep_signal_mask`] or
//!   [`Command::keep_ignored_signals`] say otherwise.
//! * **Errors:** a failure in the child travels back as stage + errno on a
//!   close-on-exec pipe ([`Error::Spawn`]); the child exits 125, 126 or 127.
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
//! | `SetUmask`, `SetMaxFiles`, `SetMaxProcesses`, ... | [`Command::umask`], [`Command::rlimit`] |
//! | `ClearCaps`, `AllowCap` | [`Command::clear_caps`], [`Command::allow_cap`] |
//! | `SetPreExecHook` | [`Command::pre_exec`] |
//! | `RequireHandshake`, `HandshakeWait`, `HandshakeNotify` | [`Prepared::spawn_paused`], [`Paused::resume`] |
//! | `Run` / `RunAsync` + `Wait` | [`Prepared::run`] / [`Prepared::spawn`] + [`Running::wait`] |
//! | `Abort`, `Free` of an unreaped child | [`Running::abort`], dropping a [`Running`] |
//! | `virProcessWait`, `virProcessAbort` | [`Detached::wait`], [`Detached::abort`] |
//! | `ToString` | `Display` of [`Command`] and [`Prepared`] |

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod capability;
mod child;
mod command;
pub mod dry_run;
mod env;
mod error;
mod mode;
mod plan;
mod prepared;
mod process;
mod quote;
mod resolve;
mod spawn;
mod stdio;
mod sys;

pub use capability::{Capability, UnknownCapability};
pub use command::Command;
pub use error::{Error, Stage};
pub use mode::{Buffered, Daemon, Direct, Mode};
pub use prepared::Prepared;
pub use process::{Detached, Finished, Paused, Running};
pub use stdio::Stdio;

/// An error number, as the child reports it (rustix's).
pub use rustix::io::Errno;
/// A resource for [`Command::rlimit`] (rustix's).
pub use rustix::process::Resource;
/// A signal number (rustix's), e.g. `Signal::TERM`.
pub use rustix::process::Signal;
