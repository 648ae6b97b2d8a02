//! Landlock (Linux 5.13): the three system calls, which rustix does not
//! offer, their structures and access rights (`<linux/landlock.h>`), and
//! the ABI version this system offers, asked once.
//!
//! The parent creates the ruleset and adds its rules at `build()`
//! ([`create_ruleset`], [`add_path_rule`], [`add_port_rule`]); the child
//! only enforces it ([`restrict_self`]).

use std::ffi::c_void;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use rustix::io::Errno;

use super::compat;
use super::last_errno;

/// `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`
/// returns the ABI version instead of a ruleset.
const CREATE_RULESET_VERSION: u32 = 1 << 0;
/// `landlock_add_rule`'s rule types.
const RULE_PATH_BENEATH: u32 = 1;
const RULE_NET_PORT: u32 = 2;

// Filesystem access rights (`LANDLOCK_ACCESS_FS_*`), with the ABI that
// brought each.
/// Execute a file (ABI 1).
pub(crate) const FS_EXECUTE: u64 = 1 << 0;
/// Open a file for writing (ABI 1).
pub(crate) const FS_WRITE_FILE: u64 = 1 << 1;
/// Open a file for reading (ABI 1).
pub(crate) const FS_READ_FILE: u64 = 1 << 2;
/// Open a directory or list its content (ABI 1).
pub(crate) const FS_READ_DIR: u64 = 1 << 3;
/// Remove an empty directory or rename one (ABI 1).
pub(crate) const FS_REMOVE_DIR: u64 = 1 << 4;
/// Unlink or rename a file (ABI 1).
pub(crate) const FS_REMOVE_FILE: u64 = 1 << 5;
/// Create a character device (ABI 1).
pub(crate) const FS_MAKE_CHAR: u64 = 1 << 6;
/// Create (or rename or link) a directory (ABI 1).
pub(crate) const FS_MAKE_DIR: u64 = 1 << 7;
/// Create (or rename or link) a regular file (ABI 1).
pub(crate) const FS_MAKE_REG: u64 = 1 << 8;
/// Create a UNIX domain socket (ABI 1).
pub(crate) const FS_MAKE_SOCK: u64 = 1 << 9;
/// Create a named pipe (ABI 1).
pub(crate) const FS_MAKE_FIFO: u64 = 1 << 10;
/// Create a block device (ABI 1).
pub(crate) const FS_MAKE_BLOCK: u64 = 1 << 11;
/// Create a symbolic link (ABI 1).
pub(crate) const FS_MAKE_SYM: u64 = 1 << 12;
/// Link or rename a file into another directory (ABI 2, Linux 5.19).
/// Without it, a landlocked process can never do so (`EXDEV`).
pub(crate) const FS_REFER: u64 = 1 << 13;
/// Truncate a file: `truncate(2)`, `ftruncate(2)`, `O_TRUNC` (ABI 3,
/// Linux 6.2).
pub(crate) const FS_TRUNCATE: u64 = 1 << 14;
/// `ioctl(2)` on a character or block device (ABI 5, Linux 6.10).
pub(crate) const FS_IOCTL_DEV: u64 = 1 << 15;

/// The rights a rule on a file (not a directory) may carry: the kernel
/// refuses the others there (`EINVAL`).
pub(crate) const FS_FILE_RIGHTS: u64 =
    FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV;

// Network access rights (`LANDLOCK_ACCESS_NET_*`, ABI 4, Linux 6.7).
/// Bind a TCP socket to a port.
pub(crate) const NET_BIND_TCP: u64 = 1 << 0;
/// Connect a TCP socket to a port.
pub(crate) const NET_CONNECT_TCP: u64 = 1 << 1;

/// The filesystem rights of ABI 1.
const FS_ABI_1: u64 = FS_EXECUTE
    | FS_WRITE_FILE
    | FS_READ_FILE
    | FS_READ_DIR
    | FS_REMOVE_DIR
    | FS_REMOVE_FILE
    | FS_MAKE_CHAR
    | FS_MAKE_DIR
    | FS_MAKE_REG
    | FS_MAKE_SOCK
    | FS_MAKE_FIFO
    | FS_MAKE_BLOCK
    | FS_MAKE_SYM;

/// The filesystem rights ABI `abi` knows.
pub(crate) const fn fs_rights(abi: u32) -> u64 {
    match abi {
        0 => 0,
        1 => FS_ABI_1,
        2 => FS_ABI_1 | FS_REFER,
        3 | 4 => FS_ABI_1 | FS_REFER | FS_TRUNCATE,
        _ => FS_ABI_1 | FS_REFER | FS_TRUNCATE | FS_IOCTL_DEV,
    }
}

/// The network rights ABI `abi` knows.
pub(crate) const fn net_rights(abi: u32) -> u64 {
    if abi >= 4 {
        NET_BIND_TCP | NET_CONNECT_TCP
    } else {
        0
    }
}

/// `struct landlock_ruleset_attr` up to `handled_access_net` (ABI 4); a
/// kernel before ABI 4 takes the first field alone (see [`create_ruleset`]).
#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
}

/// `struct landlock_path_beneath_attr` (packed: 12 bytes).
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// `struct landlock_net_port_attr`.
#[repr(C)]
struct NetPortAttr {
    allowed_access: u64,
    port: u64,
}

/// The raw `syscall` result as a `Result`.
fn check(rc: libc::c_long) -> Result<libc::c_long, Errno> {
    if rc < 0 {
        Err(last_errno())
    } else {
        Ok(rc)
    }
}

/// The ABI version the kernel reports, asked now. Parent-only.
fn ask_abi() -> Result<u32, Errno> {
    // SAFETY: a null attribute with size 0 and the VERSION flag: the kernel
    // reads no memory and returns a number.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<c_void>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    let abi = check(rc)?;
    Ok(u32::try_from(abi).unwrap_or(u32::MAX))
}

/// The landlock ABI version this system offers to this process, or why
/// there is none: `ENOSYS` (a kernel before 5.13, or built without it),
/// `EOPNOTSUPP` (built in but not enabled at boot: `lsm=`), `EPERM` (a
/// seccomp profile refusing the call). Asked once and cached; the
/// test-only compat knobs then answer as an older system would (a lower
/// ABI, or none), applied after the cache so that a test binary may try
/// several. Parent-only.
pub(crate) fn abi() -> Result<u32, Errno> {
    // 0: not asked yet; > 0: the ABI; < 0: the errno, negated.
    static STATE: AtomicI32 = AtomicI32::new(0);
    let real = match STATE.load(Ordering::Relaxed) {
        0 => {
            let answer = ask_abi();
            let code = match answer {
                Ok(abi) => i32::try_from(abi.max(1)).unwrap_or(i32::MAX),
                Err(e) => -e.raw_os_error(),
            };
            STATE.store(code, Ordering::Relaxed);
            answer
        }
        n if n > 0 => Ok(n as u32),
        n => Err(super::errno_from_raw(-n)),
    };
    if compat::forced(compat::NO_LANDLOCK) {
        return Err(compat::missing());
    }
    let cap = compat::forced_landlock_abi();
    match (real, cap) {
        (Ok(abi), Some(cap)) => Ok(abi.min(cap)),
        (answer, _) => answer,
    }
}

/// `landlock_create_ruleset` for the handled rights given: the ruleset's
/// fd, close-on-exec (the kernel always makes it so). `handled_net` 0
/// passes the ABI 1 structure alone, which every landlock kernel takes.
/// Parent-only.
pub(crate) fn create_ruleset(handled_fs: u64, handled_net: u64) -> Result<OwnedFd, Errno> {
    let attr = RulesetAttr {
        handled_access_fs: handled_fs,
        handled_access_net: handled_net,
    };
    let size = if handled_net == 0 {
        std::mem::size_of::<u64>()
    } else {
        std::mem::size_of::<RulesetAttr>()
    };
    // SAFETY: `attr` is a live struct at least `size` bytes long, which the
    // kernel only reads.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            size,
            0u32,
        )
    };
    let fd = check(rc)?;
    let fd = RawFd::try_from(fd).map_err(|_| Errno::BADF)?;
    // SAFETY: the kernel just returned this new fd, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `landlock_add_rule(ruleset, LANDLOCK_RULE_PATH_BENEATH, {allowed,
/// parent})`: `allowed` beneath the file or directory `parent` (an
/// `O_PATH` fd). Parent-only.
pub(crate) fn add_path_rule(
    ruleset: BorrowedFd<'_>,
    allowed: u64,
    parent: BorrowedFd<'_>,
) -> Result<(), Errno> {
    let attr = PathBeneathAttr {
        allowed_access: allowed,
        parent_fd: parent.as_raw_fd(),
    };
    // SAFETY: `attr` is a live struct of the layout the rule type names,
    // which the kernel only reads; both fds are open for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            RULE_PATH_BENEATH,
            &attr as *const PathBeneathAttr,
            0u32,
        )
    };
    check(rc).map(drop)
}

/// `landlock_add_rule(ruleset, LANDLOCK_RULE_NET_PORT, {allowed, port})`
/// (ABI 4). Parent-only.
pub(crate) fn add_port_rule(ruleset: BorrowedFd<'_>, allowed: u64, port: u16) -> Result<(), Errno> {
    let attr = NetPortAttr {
        allowed_access: allowed,
        port: u64::from(port),
    };
    // SAFETY: as in `add_path_rule`.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            RULE_NET_PORT,
            &attr as *const NetPortAttr,
            0u32,
        )
    };
    check(rc).map(drop)
}

/// `landlock_restrict_self(ruleset, 0)`: the calling thread (the child's
/// only one) enters a new domain made from a copy of the ruleset's rules;
/// the ruleset itself stays as it is, for the next child. Needs
/// `no_new_privs` or `CAP_SYS_ADMIN` in the current user namespace
/// (`EPERM` otherwise). Child-safe.
pub(crate) fn restrict_self(ruleset: RawFd) -> Result<(), Errno> {
    // SAFETY: two integers; the kernel checks the fd.
    let rc = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32) };
    if rc == 0 {
        Ok(())
    } else {
        Err(last_errno())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_grow_with_the_abi() {
        assert_eq!(fs_rights(1), 0x1fff);
        assert_eq!(fs_rights(2) & FS_REFER, FS_REFER);
        assert_eq!(fs_rights(2) & FS_TRUNCATE, 0);
        assert_eq!(fs_rights(3) & FS_TRUNCATE, FS_TRUNCATE);
        assert_eq!(fs_rights(4) & FS_IOCTL_DEV, 0);
        assert_eq!(fs_rights(5) & FS_IOCTL_DEV, FS_IOCTL_DEV);
        assert_eq!(fs_rights(7), fs_rights(5));
        assert_eq!(net_rights(3), 0);
        assert_eq!(net_rights(4), NET_BIND_TCP | NET_CONNECT_TCP);
        assert_eq!(std::mem::size_of::<PathBeneathAttr>(), 12);
        assert_eq!(std::mem::size_of::<NetPortAttr>(), 16);
    }
}
