//! Seccomp: installing a filter with `seccomp(2)` (Linux 3.17) or, where
//! that call is missing, `prctl(PR_SET_SECCOMP)` (Linux 3.5), and whether
//! this system has `seccomp(2)`. rustix offers neither.

use std::sync::atomic::AtomicU8;

use rustix::io::Errno;

use super::compat;
use super::fd::Probe;
use super::last_errno;

/// One classic BPF instruction (`struct sock_filter`, 8 bytes).
pub(crate) type Insn = libc::sock_filter;

/// Installs `prog` as a seccomp filter of the calling thread (flags 0: no
/// thread synchronisation, the child has one thread), with `seccomp(2)` or,
/// with `via_prctl`, `prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)`. The
/// kernel copies the program before the call returns. Child-safe.
pub(crate) fn set_filter(prog: &[Insn], via_prctl: bool) -> Result<(), Errno> {
    // `build()` refused longer programs; the kernel would refuse them too.
    let len = u16::try_from(prog.len()).map_err(|_| Errno::INVAL)?;
    let fprog = libc::sock_fprog {
        len,
        // The kernel only reads the program.
        filter: prog.as_ptr().cast_mut(),
    };
    let rc = if via_prctl {
        // SAFETY: `fprog` points at `len` instructions alive for the call;
        // the kernel only reads them (and the struct).
        unsafe {
            libc::syscall(
                libc::SYS_prctl,
                libc::PR_SET_SECCOMP as libc::c_long,
                libc::SECCOMP_MODE_FILTER as libc::c_long,
                &fprog as *const libc::sock_fprog,
                0 as libc::c_long,
                0 as libc::c_long,
            )
        }
    } else {
        if compat::forced(compat::NO_SECCOMP_SYSCALL) {
            // A build that chose seccomp(2) on such a system fails here.
            return Err(compat::missing());
        }
        // SAFETY: as above.
        unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER as libc::c_uint,
                0 as libc::c_uint,
                &fprog as *const libc::sock_fprog,
            )
        }
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(last_errno())
    }
}

/// Whether this system offers `seccomp(2)` (Linux 3.17; a seccomp profile
/// may refuse it): probed once with an operation no kernel knows, which the
/// system call answers with `EINVAL` before anything else and which
/// changes nothing; any other answer (`ENOSYS`, a profile's `EPERM`) means
/// the child must use `prctl(PR_SET_SECCOMP)`. Parent-only.
pub(crate) fn have_seccomp_syscall() -> bool {
    static STATE: AtomicU8 = AtomicU8::new(Probe::Unknown as u8);
    match Probe::load(&STATE) {
        Probe::Yes => true,
        Probe::No => false,
        Probe::Unknown if compat::forced(compat::NO_SECCOMP_SYSCALL) => false,
        Probe::Unknown => {
            // SAFETY: an unknown operation with a null argument: the kernel
            // refuses the operation before it reads anything.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    u32::MAX as libc::c_uint,
                    0 as libc::c_uint,
                    std::ptr::null::<libc::c_void>(),
                )
            };
            let ok = rc != 0 && last_errno() == Errno::INVAL;
            (if ok { Probe::Yes } else { Probe::No }).store(&STATE);
            ok
        }
    }
}
