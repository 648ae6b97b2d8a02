//! The parent's side of `uid_map` / `gid_map`: writing the ranges into a
//! forked child's new user namespace while the child waits at its gate.
//!
//! The kernel takes a map that is not the writer's own one id (a "self
//! map", which `map_root` has the child write itself) only from a writer
//! with `CAP_SETUID` / `CAP_SETGID` over the *parent* user namespace, in
//! the writer and in the opener of the file (`new_idmap_permitted` in
//! kernel/user_namespace.c). After `clone(CLONE_NEWUSER)` the child has
//! capabilities only inside its new namespace, so the writer is the
//! parent: Go's rule (`exec_linux.go`, `writeUidGidMappings`). That needs a
//! child with its own memory, which waits while the parent writes: the
//! fork path (see `crate::spawn::clone::fork_child`).
//!
//! Per spawn this allocates nothing: the texts were made at `build()`, the
//! `/proc/<pid>/...` paths are formatted into a stack buffer, and each file
//! is opened, written with one `write` and closed.

use std::ffi::CStr;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::thread::CapabilitySet;

/// The map texts of `uid_map` / `gid_map` calls, made at `build()`: one
/// `inside outside count\n` line per range, in call order. Only the parent
/// reads them.
#[derive(Debug, Default)]
pub(crate) struct IdRanges {
    /// `None`: no `uid_map` call (the caller's uid stays unmapped inside).
    pub uid_map: Option<Box<[u8]>>,
    /// `None`: no `gid_map` call.
    pub gid_map: Option<Box<[u8]>>,
}

/// A map file that could not be written: which one, and the errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    pub file: MapFile,
    pub errno: Errno,
}

/// The three files of `/proc/<pid>/` the parent writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MapFile {
    UidMap,
    Setgroups,
    GidMap,
}

impl MapFile {
    fn name(self) -> &'static [u8] {
        match self {
            MapFile::UidMap => b"uid_map",
            MapFile::Setgroups => b"setgroups",
            MapFile::GidMap => b"gid_map",
        }
    }

    /// `/proc/<pid>/<name>`, for the error the caller sees.
    pub(crate) fn path(self, pid: i32) -> std::path::PathBuf {
        let mut buf = [0u8; PATH_MAX];
        let path = proc_path(&mut buf, pid, self.name());
        std::path::PathBuf::from(std::ffi::OsStr::from_bytes(path.to_bytes()))
    }
}

/// `/proc/` + 10 digits + `/` + `setgroups` + NUL is 27 bytes.
const PATH_MAX: usize = 32;

/// Formats `/proc/<pid>/<name>` into `buf`. `pid` is positive (a pid clone
/// returned) and `name` one of [`MapFile::name`]'s.
fn proc_path<'a>(buf: &'a mut [u8; PATH_MAX], pid: i32, name: &[u8]) -> &'a CStr {
    let mut digits = [0u8; 10];
    let mut n = pid.unsigned_abs();
    let mut first = digits.len();
    loop {
        first -= 1;
        digits[first] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let parts: [&[u8]; 4] = [b"/proc/", &digits[first..], b"/", name];
    let mut len = 0;
    for part in parts {
        buf[len..len + part.len()].copy_from_slice(part);
        len += part.len();
    }
    buf[len] = 0;
    // One NUL, at the end: the parts have none.
    CStr::from_bytes_with_nul(&buf[..=len]).unwrap_or(c"/proc")
}

/// Whether the calling thread (the writer and opener of the map files) has
/// `CAP_SETGID` in its effective set. Asked at each spawn, not at
/// `build()`: capabilities belong to a thread, and a `Prepared` may be
/// spawned from any. Where `capget` is refused, root is taken to have it.
fn has_cap_setgid() -> bool {
    match rustix::thread::capabilities(None) {
        Ok(sets) => sets.effective.contains(CapabilitySet::SETGID),
        Err(_) => rustix::process::geteuid().is_root(),
    }
}

/// Writes the maps of child `pid`, which waits at its gate: `uid_map`,
/// then (with a `gid_map`) `setgroups` and `gid_map`, Go's order.
///
/// `setgroups` gets `"deny"` only when this thread lacks `CAP_SETGID`:
/// the kernel requires it before an unprivileged writer's `gid_map` (the
/// one-line self map, the only one such a writer may write), and it is
/// permanent. A privileged writer leaves it at `"allow"`, so that root
/// inside can still call `setgroups(2)` (the child's own `.groups()` and
/// `.uid()` steps, and the program's: containerd#10742 is what writing
/// `"deny"` unconditionally broke). `ENOENT` for `setgroups` is a kernel
/// before 3.19, which has no such file: fine.
pub(crate) fn write(ranges: &IdRanges, pid: i32) -> Result<(), Refused> {
    if crate::sys::compat::forced(crate::sys::compat::SLOW_ID_MAP_WRITER) {
        std::thread::sleep(crate::sys::compat::SLOW_ID_MAP_WRITER_DELAY);
    }
    let at = |file| move |errno| Refused { file, errno };
    if let Some(text) = &ranges.uid_map {
        write_file(pid, MapFile::UidMap, text).map_err(at(MapFile::UidMap))?;
    }
    if let Some(text) = &ranges.gid_map {
        if !has_cap_setgid() {
            match write_file(pid, MapFile::Setgroups, b"deny") {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(at(MapFile::Setgroups)(e)),
            }
        }
        write_file(pid, MapFile::GidMap, text).map_err(at(MapFile::GidMap))?;
    }
    Ok(())
}

/// Opens `/proc/<pid>/<file>`, writes `text` with one `write` (the kernel
/// takes a map in one piece or refuses it) and closes it; a short write is
/// `EIO`.
fn write_file(pid: i32, file: MapFile, text: &[u8]) -> Result<(), Errno> {
    let mut buf = [0u8; PATH_MAX];
    let path = proc_path(&mut buf, pid, file.name());
    let fd: OwnedFd = rustix::fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
    let n = rustix::io::retry_on_intr(|| rustix::io::write(&fd, text))?;
    if n == text.len() {
        Ok(())
    } else {
        Err(Errno::IO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_paths_are_formatted_in_place() {
        let mut buf = [0u8; PATH_MAX];
        assert_eq!(
            proc_path(&mut buf, 1, b"uid_map").to_bytes(),
            b"/proc/1/uid_map"
        );
        assert_eq!(
            proc_path(&mut buf, i32::MAX, b"setgroups").to_bytes(),
            b"/proc/2147483647/setgroups"
        );
        assert_eq!(
            MapFile::GidMap.path(4321),
            std::path::Path::new("/proc/4321/gid_map")
        );
    }
}
