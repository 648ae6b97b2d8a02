//! Namespaces: the id maps of the child's new user namespace (the gate
//! where it waits while the parent writes ranges, or the self maps it
//! writes itself), the namespaces it joins and its hostname. (The new
//! namespaces themselves are clone flags: see `clone_flags`, read by the
//! spawning side.)

use std::os::fd::{BorrowedFd, RawFd};

use rustix::fs::CWD;
use rustix::io::Errno;
use rustix::thread::LinkNameSpaceType;

use super::report::{At, Failure};
use super::write_once;
use crate::error::Stage;
use crate::frozen::Frozen;

/// What the child does about namespaces.
#[derive(Debug, Default)]
pub(crate) struct NsPlan {
    /// The `CLONE_NEW*` flags of the clone that makes the child (0: none).
    pub clone_flags: u64,
    /// `map_root`: the self-map texts the child writes. (The ranges of
    /// `uid_map`/`gid_map` are the parent's to write: see
    /// `crate::spawn::id_maps`; the child only waits at its [`Gate`].)
    pub id_maps: Option<IdMaps>,
    /// The namespaces to join, in call order.
    pub joins: Frozen<[Join]>,
    /// The hostname, checked at `build()` (at most 64 bytes, no NUL).
    pub hostname: Option<Frozen<[u8]>>,
}

impl NsPlan {
    /// Whether the child is in a new pid namespace (pid 1, `getppid()` 0).
    pub(crate) fn new_pid_namespace(&self) -> bool {
        self.clone_flags & libc::CLONE_NEWPID as u64 != 0
    }
}

/// The self maps of `map_root`, made at `build()`.
#[derive(Debug)]
pub(crate) struct IdMaps {
    /// `"0 <euid> 1\n"`
    pub uid_map: Frozen<[u8]>,
    /// `"0 <egid> 1\n"`
    pub gid_map: Frozen<[u8]>,
}

/// The gate of a spawn whose id maps the parent writes (`uid_map`,
/// `gid_map`): a pipe made per spawn, both ends close-on-exec. The child
/// inherited both ends with its copy of the fd table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gate {
    /// The end the child reads the release from; -1 without a gate.
    pub read: RawFd,
    /// The parent's end, which the child closes first: its own copy would
    /// keep the pipe from ever reaching end-of-file.
    pub write: RawFd,
}

impl Gate {
    /// No gate: the child does not wait.
    pub(crate) const NONE: Gate = Gate {
        read: -1,
        write: -1,
    };
}

/// One `setns`: an fd the plan owns (close-on-exec) and its kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Join {
    pub fd: RawFd,
    pub kind: LinkNameSpaceType,
}

/// In this order:
///
/// 0. **the gate** (`uid_map`, `gid_map`): the child closes its copy of the
///    gate's write end and blocks reading the read end while the parent
///    writes `/proc/<pid>/uid_map`, `setgroups` and `gid_map` (a writer
///    outside the new user namespace, with privilege over the caller's).
///    One byte releases it (and the child closes the read end too).
///    End-of-file without it means the parent gave
///    up (a write was refused: it kills and reaps this process next; or
///    it died): the child `_exit`s at once, without a report and without
///    exec, so nothing of the program ever runs with unwritten maps;
/// 1. **id maps** (`map_root`): `/proc/self/setgroups` gets `"deny"`
///    (`ENOENT`, a kernel before 3.19, is fine) *before* `gid_map`, which
///    the kernel requires of a writer without `CAP_SETGID` in the parent
///    namespace; then `uid_map`. Each file is opened, written with one
///    `write` and closed; a map must be written in one call;
/// 2. **joins**: `setns(fd, kind)` for each, in call order;
/// 3. **hostname**: `sethostname`.
///
/// All of it before the fd steps: the map and join fds are used (and the
/// map fds closed) before the placement could move or close anything, and
/// every later step (files opened for fds, credentials) needs the ids
/// mapped.
pub(crate) fn apply(ns: &NsPlan, gate: Gate) -> Result<(), Failure> {
    wait_at_gate(gate)?;
    if let Some(maps) = &ns.id_maps {
        match write_once(CWD, c"/proc/self/setgroups", b"deny") {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(e).at(Stage::IdMap),
        }
        write_once(CWD, c"/proc/self/gid_map", &maps.gid_map).at(Stage::IdMap)?;
        write_once(CWD, c"/proc/self/uid_map", &maps.uid_map).at(Stage::IdMap)?;
    }
    for join in ns.joins.iter() {
        // SAFETY: the plan owns the fd (close-on-exec) for as long as the
        // child can run, and nothing before this step closes or moves fds.
        let fd = unsafe { BorrowedFd::borrow_raw(join.fd) };
        rustix::thread::move_into_link_name_space(fd, Some(join.kind)).at(Stage::Namespace)?;
    }
    if let Some(name) = &ns.hostname {
        rustix::system::sethostname(name).at(Stage::Hostname)?;
    }
    Ok(())
}

/// The gate step (see [`apply`]): returns once the parent has written the
/// maps and released the child; exits when it gave up instead.
fn wait_at_gate(gate: Gate) -> Result<(), Failure> {
    if gate.read < 0 {
        return Ok(());
    }
    // SAFETY: the write end is this process's own copy of the parent's
    // fd (inherited with the fd table); nothing in the child uses that
    // number, and it is closed once, here.
    unsafe { rustix::io::close(gate.write) };
    // SAFETY: the read end is open in this process; it is only borrowed
    // for the read.
    let fd = unsafe { BorrowedFd::borrow_raw(gate.read) };
    let mut byte = [0u8; 1];
    match rustix::io::retry_on_intr(|| rustix::io::read(fd, &mut byte)) {
        Ok(1) => {
            // Done with the gate: nothing of it reaches the fd steps.
            // SAFETY: the read end is ours, no longer borrowed, closed once.
            unsafe { rustix::io::close(gate.read) };
            Ok(())
        }
        // The parent gave up (and kills this process) or died: no report
        // (nobody reads it), no exec.
        Ok(_) => crate::sys::clone::exit_now(GATE_CLOSED_EXIT),
        Err(e) => Err(e).at(Stage::IdMap),
    }
}

/// The exit status of a child whose gate closed without a release (125,
/// env(1)'s "set-up failed"; normally nobody sees it: the parent kills the
/// child first, or is gone).
const GATE_CLOSED_EXIT: i32 = 125;
