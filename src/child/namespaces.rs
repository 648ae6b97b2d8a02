//! Namespaces: the id maps of the child's new user namespace, the
//! namespaces it joins and its hostname. (The new namespaces themselves
//! are clone flags: see `clone_flags`, read by the spawning side.)

use std::ffi::CStr;
use std::os::fd::{BorrowedFd, RawFd};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::thread::LinkNameSpaceType;

use super::report::{At, Failure};
use crate::error::Stage;
use crate::frozen::Frozen;

/// What the child does about namespaces.
#[derive(Debug, Default)]
pub(crate) struct NsPlan {
    /// The `CLONE_NEW*` flags of the clone that makes the child (0: none).
    pub clone_flags: u64,
    /// `map_root`: the map texts.
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

/// One `setns`: an fd the plan owns (close-on-exec) and its kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Join {
    pub fd: RawFd,
    pub kind: LinkNameSpaceType,
}

/// In this order:
///
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
pub(crate) fn apply(ns: &NsPlan) -> Result<(), Failure> {
    if let Some(maps) = &ns.id_maps {
        match write_file(c"/proc/self/setgroups", b"deny") {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(e).at(Stage::IdMap),
        }
        write_file(c"/proc/self/gid_map", &maps.gid_map).at(Stage::IdMap)?;
        write_file(c"/proc/self/uid_map", &maps.uid_map).at(Stage::IdMap)?;
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

/// Writes `text` to the file at `path` with one `write`; a short write is
/// `EIO` (the kernel takes a map in one piece or refuses it).
fn write_file(path: &CStr, text: &[u8]) -> Result<(), Errno> {
    let fd = rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
    let n = rustix::io::retry_on_intr(|| rustix::io::write(&fd, text))?;
    drop(fd);
    if n == text.len() {
        Ok(())
    } else {
        Err(Errno::IO)
    }
}
