//! Mounts: `mount_setattr(2)` (Linux 5.12), which rustix does not offer,
//! and whether this system has it.

use std::ffi::CStr;
use std::sync::atomic::AtomicU8;

use rustix::io::Errno;

use super::fd::Probe;
use super::last_errno;

/// `MOUNT_ATTR_RDONLY`: the mount is read-only.
const MOUNT_ATTR_RDONLY: u64 = 0x1;

/// `struct mount_attr` (`MOUNT_ATTR_SIZE_VER0`, 32 bytes).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `mount_setattr(AT_FDCWD, path, recursive ? AT_RECURSIVE : 0,
/// {attr_set = MOUNT_ATTR_RDONLY})`: makes the mount at `path` (and with
/// `recursive` every mount below it) read-only, keeping every other flag,
/// the kernel-locked ones included. Child-safe.
pub(crate) fn make_read_only(path: &CStr, recursive: bool) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: `path` is NUL-terminated and `attr` a live struct of the size
    // passed; the kernel only reads both.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            flags as libc::c_uint,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(last_errno())
    }
}

/// Whether this system offers `mount_setattr(2)` (Linux 5.12; a seccomp
/// profile may refuse it): probed once, with a size the kernel rejects
/// (`EINVAL`) before looking at anything else, and cached. Parent-only.
pub(crate) fn have_mount_setattr() -> bool {
    static STATE: AtomicU8 = AtomicU8::new(Probe::Unknown as u8);
    match Probe::load(&STATE) {
        Probe::Yes => true,
        Probe::No => false,
        Probe::Unknown if super::compat::forced(super::compat::NO_MOUNT_SETATTR) => false,
        Probe::Unknown => {
            // SAFETY: a null path and attr with size 0: the kernel refuses
            // the size before it reads either.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_mount_setattr,
                    libc::AT_FDCWD,
                    std::ptr::null::<libc::c_char>(),
                    0 as libc::c_uint,
                    std::ptr::null::<MountAttr>(),
                    0usize,
                )
            };
            let ok = rc != 0 && last_errno() == Errno::INVAL;
            (if ok { Probe::Yes } else { Probe::No }).store(&STATE);
            ok
        }
    }
}
