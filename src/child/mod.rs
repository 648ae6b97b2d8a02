//! The child side: everything that runs between clone/fork and exec.
//!
//! # Contract
//!
//! Code in this module runs in a process that shares the parent's memory
//! (`CLONE_VM | CLONE_VFORK`, on a stack buffer in the spawning frame) or
//! in a copy of a multi-threaded parent (`fork`). Other parent threads may
//! hold any lock at that moment, and in the `CLONE_VM` case they keep
//! running in the same address space. On the vfork path the child also
//! starts on the parent's fd table (`CLONE_FILES`) until its first step
//! gives it one of its own ([`fds::own_table`]): before that step it opens,
//! moves and closes nothing. Therefore this module and every room
//! below it:
//!
//! * **never allocates or frees** heap memory (no `Vec`, `String`, `format!`,
//!   `Box`, no `std::io::Error` with a message);
//! * **takes no lock** and calls nothing that might (no stdio, no `println!`,
//!   no `std::env`, no logging);
//! * **never panics**: no indexing that can fail (only `get` and iterators),
//!   no `unwrap`, no arithmetic that can overflow, no `Errno` built from an
//!   unchecked value;
//! * **touches no thread-local** except the C library's `errno`, which the
//!   suspended parent thread does not read until the child is gone;
//! * **writes no parent memory** except its own stack (and, for a daemon,
//!   one flag in the frame of its intermediate, which is suspended while the
//!   daemon runs);
//! * makes only **raw system calls**: rustix's public API, and from the
//!   `libc` crate only `sigaction`, the signal mask, `close_range`, `ppoll`,
//!   `prlimit64`, `getgroups`, `mount_setattr`, `personality`,
//!   `landlock_restrict_self`, `seccomp` and `prctl(PR_SET_SECCOMP)` (by
//!   `syscall`), `execve` and `_exit` (see
//!   [`crate::sys`]).
//!
//! The compiler checks what it can: the lints denied below forbid indexing,
//! unchecked arithmetic, `unwrap`/`expect`/`panic!`, and the allocating
//! types and macros listed in `clippy.toml`, in this module and every file
//! under it. The plan the child reads holds no allocating type either: its
//! buffers are [`Frozen`](crate::frozen::Frozen) slices and `CStr`s, built
//! in the parent. The tests in `tests/child_contract.rs` run every option
//! under a global allocator that aborts when called from any process but the
//! test itself.
//!
//! Everything the child reads was prepared by `build()` (the [`Plan`], one
//! part per room) or by the spawning call (the [`Ctx`]). A failure is one
//! [`Failure`] (stage + errno), sent to the parent as a 12-byte message on a
//! close-on-exec pipe ([`report`]); the child then exits with 125 (set-up
//! failed), 126 (the program cannot be executed) or 127 (it was not found),
//! env(1)'s convention.
//!
//! # The steps
//!
//! [`run`] and [`rest`] *are* the step list: one line per step, with the
//! reason it stands where it does. Each step lives in the room named after
//! it (`signals`, `cgroup`, `namespaces`, `fds`, `daemon`, `mounts`,
//! `process`, `knobs`, `label`, `credentials`, `session`, `exec`, `hooks`,
//! `landlock`, `pause`, `seccomp`) and
//! receives only its own part of the plan.

#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::unimplemented,
    clippy::unreachable,
    clippy::disallowed_macros,
    clippy::disallowed_types,
    clippy::disallowed_methods
)]
// The unit tests in these files run in the test process, not in a child:
// the fence does not apply to them. It is checked on the library itself
// (`cargo clippy` builds it without cfg(test) too).
#![cfg_attr(
    test,
    allow(
        clippy::disallowed_macros,
        clippy::unwrap_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

use std::convert::Infallible;
use std::ffi::c_int;
use std::os::fd::RawFd;

pub(crate) mod cgroup;
pub(crate) mod credentials;
pub(crate) mod daemon;
pub(crate) mod exec;
pub(crate) mod fds;
pub(crate) mod hooks;
pub(crate) mod knobs;
pub(crate) mod label;
pub(crate) mod landlock;
pub(crate) mod mounts;
pub(crate) mod namespaces;
pub(crate) mod pause;
pub(crate) mod process;
pub(crate) mod report;
pub(crate) mod seccomp;
pub(crate) mod session;
pub(crate) mod signals;

use self::report::{At, Failure};
use crate::error::Stage;
use crate::frozen::{Frozen, Hook};
use crate::sys::signal::SigSet;

pub(crate) use self::daemon::DaemonSlots;

/// Opens `path` (relative to `dir`, or absolute) for writing and writes
/// `text` with one `write`, as the files of `/proc` want it: an id map is
/// taken in one piece or refused, and each write to a knob is one value. A
/// short write is `EIO`. Shared by the namespaces, mounts, knobs and label
/// rooms.
pub(crate) fn write_once(
    dir: std::os::fd::BorrowedFd<'_>,
    path: &std::ffi::CStr,
    text: &[u8],
) -> Result<(), rustix::io::Errno> {
    use rustix::fs::{Mode, OFlags};
    let file = rustix::fs::openat(dir, path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
    let written = rustix::io::retry_on_intr(|| rustix::io::write(&file, text))?;
    if written == text.len() {
        Ok(())
    } else {
        Err(rustix::io::Errno::IO)
    }
}

/// What the child reads of the frozen plan: one part per room.
pub(crate) struct Plan {
    pub signals: signals::SignalPolicy,
    pub cgroup: cgroup::Placement,
    pub ns: namespaces::NsPlan,
    pub mounts: mounts::MountPlan,
    pub fds: fds::Fds,
    /// Daemon mode: `Some`.
    pub daemon: Option<daemon::DaemonPlan>,
    pub process: process::ProcessAttrs,
    pub knobs: knobs::KnobsPlan,
    pub label: label::LabelPlan,
    /// `/proc`, opened by `build()` for the knobs and the label (`O_PATH`,
    /// close-on-exec), or -1: the child's own view may have no `/proc`
    /// after its mounts. Carried through the fd steps ([`Carried::proc`]).
    pub proc: RawFd,
    pub creds: credentials::Credentials,
    pub session: session::Session,
    pub exec: exec::Exec,
    pub hooks: Frozen<[Hook]>,
    /// The hooks of `pre_exec_privileged`.
    pub privileged_hooks: Frozen<[Hook]>,
    pub landlock: landlock::LandlockPlan,
    /// With [`Command::seccomp`](crate::Command::seccomp): `Some`.
    pub seccomp: Option<seccomp::SeccompPlan>,
}

/// What the spawning call adds to the frozen [`Plan`] for one child.
pub(crate) struct Ctx<'a> {
    pub plan: &'a Plan,
    /// Per-spawn fds (pipe ends), referenced by `fds::Src::Slot(i)`.
    pub slots: &'a [RawFd],
    /// The write end of the report pipe (close-on-exec).
    pub report: RawFd,
    /// The read end of the pause pipe of `spawn_paused`, or -1.
    pub pause: RawFd,
    /// The gate the child waits at while the parent writes its id maps
    /// (`uid_map`, `gid_map`; the fork path only), or [`Gate::NONE`].
    pub gate: namespaces::Gate,
    /// The spawning thread's signal mask before it blocked everything.
    pub parent_mask: SigSet,
    /// The parent's pid, to notice its death when a parent-death signal is
    /// set; 0 for no such check (none set, or a new pid namespace, where
    /// `getppid()` is 0).
    pub parent_pid: i32,
    /// Daemon mode's places in the spawning frame; null pointers otherwise.
    pub daemon: DaemonSlots,
    /// A child started on the parent's fd table (`CLONE_FILES`): the number
    /// above every fd it uses, below which its own table keeps the fds (see
    /// [`fds::own_table`]); -1 for a child started on a copy of the table.
    /// A `Cell`: the spawning frame clears it before a second clone without
    /// the flag, while no child runs.
    pub shared_table_end: std::cell::Cell<RawFd>,
    /// Where the kernel stored the child's pidfd (-1 for none) before the
    /// child ran, in the spawning frame; null on the fork path. A child on
    /// the parent's table finds that pidfd in its table too.
    pub pidfd_slot: *const c_int,
}

/// The fds the child carries through its steps; they may move (see
/// [`fds::place`]), and the fd steps keep them open (all are close-on-exec,
/// so none reaches the program). -1 stands for none.
#[derive(Clone, Copy)]
pub(crate) struct Carried {
    pub report: RawFd,
    /// -1 without a pause pipe.
    pub pause: RawFd,
    /// The landlock ruleset (close-on-exec, owned by the plan), used after
    /// the fd steps; -1 without one.
    pub landlock: RawFd,
    /// The plan's `/proc` fd ([`Plan::proc`]).
    pub proc: RawFd,
    /// The plan's SELinux `enforce` fd ([`label::LabelPlan::enforce`]).
    pub enforce: RawFd,
}

impl Carried {
    /// How many fds are carried.
    pub(crate) const COUNT: usize = 5;

    /// Every carried fd, -1 for none.
    pub(crate) fn all(&self) -> [RawFd; Carried::COUNT] {
        [
            self.report,
            self.pause,
            self.landlock,
            self.proc,
            self.enforce,
        ]
    }

    /// Every carried fd, to be moved.
    pub(crate) fn all_mut(&mut self) -> [&mut RawFd; Carried::COUNT] {
        [
            &mut self.report,
            &mut self.pause,
            &mut self.landlock,
            &mut self.proc,
            &mut self.enforce,
        ]
    }
}

/// The `clone` entry point: runs [`child_main`] on the child stack.
pub(crate) extern "C" fn vfork_entry(arg: *mut std::ffi::c_void) -> c_int {
    // SAFETY: the spawning frame passes a pointer to a live Ctx and is
    // suspended (CLONE_VFORK) until this process execs or exits.
    let cx = unsafe { &*(arg as *const Ctx<'_>) };
    child_main(cx)
}

/// The `clone3` entry point: like [`vfork_entry`], in a child whose signal
/// handlers the kernel has already reset (`CLONE_CLEAR_SIGHAND`).
pub(crate) extern "C" fn clear_sighand_entry(arg: *mut std::ffi::c_void) -> c_int {
    // SAFETY: as in `vfork_entry`: a live Ctx in the suspended frame.
    let cx = unsafe { &*(arg as *const Ctx<'_>) };
    steps_then_fail(cx, true)
}

/// Runs every step of the child and execs; never returns.
pub(crate) fn child_main(cx: &Ctx<'_>) -> ! {
    steps_then_fail(cx, false)
}

/// Runs the step list; on a failure, reports it on the report pipe (where it
/// is after the fd steps) and exits.
fn steps_then_fail(cx: &Ctx<'_>, handlers_cleared: bool) -> ! {
    let mut carried = Carried {
        report: cx.report,
        pause: cx.pause,
        landlock: cx.plan.landlock.ruleset,
        proc: cx.plan.proc,
        enforce: cx.plan.label.enforce,
    };
    let failure = match run(cx, &mut carried, handlers_cleared) {
        Err(failure) => failure,
        Ok(never) => match never {},
    };
    report::fail(carried.report, failure)
}

/// The step list, up to the daemon split. `handlers_cleared`: the kernel has
/// reset every signal handler (`clone3` with `CLONE_CLEAR_SIGHAND`).
fn run(cx: &Ctx<'_>, carried: &mut Carried, handlers_cleared: bool) -> Result<Infallible, Failure> {
    let plan = cx.plan;
    // Before anything else, so that no step opens, moves or closes an fd
    // in the caller's table: a child started on the parent's table (the
    // vfork path, which then neither copies the parent's fds at the clone
    // nor closes them one by one) takes a table of its own, with only the
    // fds below every one it uses. Every signal is still blocked (see
    // below), so no handler can run first.
    fds::own_table(cx.shared_table_end.get(), cx.pidfd_slot).at(Stage::Fds)?;
    // First of the rest: until the handlers are reset, a signal would run the parent's
    // handler in this process (every signal is blocked until the mask is set
    // at the end of this step).
    signals::reset(&plan.signals, &cx.parent_mask, handlers_cleared).at(Stage::Signals)?;
    // Where the kernel could not place the child at the clone: first thing
    // after the signals, so that the child spends no more than the clone
    // and the signal step in the caller's cgroup. A new cgroup namespace,
    // left out of that clone, is made right after the placement, so that
    // its root is the target, and before the joins, so that it belongs to
    // the user namespace the clone's other new namespaces belong to.
    cgroup::apply(&plan.cgroup)?;
    // After the signals and the placement (the new namespaces came with the
    // clone): until the id maps are written the child's ids are unmapped,
    // so every later step needs them (with ranges, the child waits here at
    // the gate while the parent writes them); and the join fds are used
    // here, before the fd steps can move or close them.
    namespaces::apply(&plan.ns, cx.gate)?;
    // Before any close: a source may sit on another mapping's target, so the
    // placement is collision-safe and needs every source still open.
    fds::place(&plan.fds, cx.slots, carried)?;
    // After placement: what survives is exactly the planned fds (and the
    // report and pause pipes, which are close-on-exec).
    fds::close_others(&plan.fds, carried)?;
    // Where a seccomp filter lets write(2) through on one fd only: the
    // report pipe moves there now, before any later step could open a
    // file on that number.
    seccomp::place_report(plan.seccomp.as_ref(), carried)?;
    if let Some(daemon) = &plan.daemon {
        // The intermediate ends here (setsid, the daemon started on the
        // second stack, its pid reported); the daemon goes on below, after
        // the fd steps it shares with the intermediate.
        return daemon::split(cx.daemon, *carried, &|carried: &mut Carried| {
            // The intermediate blocked every signal for the daemon's start.
            signals::set_final_mask(&plan.signals, &cx.parent_mask).at(Stage::Signals)?;
            // "/" and the pidfile, before the privilege steps: the pidfile
            // may live where only the caller's credentials can write.
            daemon::enter(daemon)?;
            rest(cx, carried, None)
        });
    }
    rest(cx, carried, plan.exec.cwd.as_deref())
}

/// The step list after the fds (and, for a daemon, in the daemon).
fn rest(
    cx: &Ctx<'_>,
    carried: &Carried,
    cwd: Option<&std::ffi::CStr>,
) -> Result<Infallible, Failure> {
    let plan = cx.plan;
    // After the fds (a file the caller redirected a stream to was opened in
    // the caller's view) and the pidfile; before the privilege steps, since
    // mounting needs CAP_SYS_ADMIN over the mount namespace; before the
    // working directory and the hooks, which belong to the new view.
    mounts::apply(&plan.mounts)?;
    // Before the uid change: raising a hard limit needs the caller's
    // privilege.
    process::apply(&plan.process)?;
    // After the rlimits (RLIMIT_NICE counts for the nice value), before
    // the label and the credentials: a lower nice value needs
    // CAP_SYS_NICE, a lower OOM score CAP_SYS_RESOURCE; personality last
    // among them, since a persona may change how later calls behave.
    knobs::apply(&plan.knobs, carried.proc)?;
    // Before the credentials: the exec attribute is this thread's to
    // write, and a policy may refuse a transition after a uid change. It
    // takes effect at exec.
    label::apply(&plan.label, carried)?;
    // The caller's privileged hooks (libvirt's hook order: as root, before
    // the privilege drop): right before the credentials, so a hook keeps
    // every privilege the caller has (a mount namespace to unshare, a lock
    // to take) and the credential steps after it still apply in full,
    // whatever the hook did; after the mounts, rlimits, knobs and label,
    // so it sees the child's view and limits as set up, and cannot get in
    // the way of a label write, which a policy may refuse once a hook has
    // changed the process. Before the session and the working directory,
    // which belong to the program's credentials.
    hooks::run(&plan.privileged_hooks)?;
    // Securebits first, while CAP_SETPCAP is there; the bounding set while
    // it still is; groups and gid while CAP_SETGID is; uid; the capability
    // sets; no_new_privs last.
    credentials::apply(&plan.creds)?;
    // After the credentials: a uid change clears the parent-death signal.
    // After the fd steps: the terminals of the controlling terminal and
    // the foreground are named by their child numbers.
    session::apply(&plan.session, cx.parent_pid)?;
    // With the program's own credentials, so a directory it may not enter
    // fails here as it would for the program.
    exec::chdir(cwd)?;
    // After every set-up step but the confinement that is the program's
    // alone (landlock, seccomp), so a hook sees the child as the program
    // will (the privileged hooks ran before the credentials).
    hooks::run(&plan.hooks)?;
    // After the mounts (a landlocked process cannot change its mount
    // topology), no_new_privs and the caller's own set-up (working
    // directory, hooks), which the ruleset is not meant for; before the
    // pause, so a paused child is already confined.
    landlock::restrict(carried.landlock)?;
    // The last moment the parent can act on a fully prepared child.
    pause::wait(carried)?;
    // Last: the filter applies to every later system call of this process,
    // so nothing but exec (and, when it fails, the report) may come after
    // it; the pause's read and every set-up step come before. After the
    // credentials, which set no_new_privs when the filter needs it.
    seccomp::install(plan.seccomp.as_ref())?;
    exec::exec(&plan.exec)
}
