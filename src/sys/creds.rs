//! Credentials: `getgroups(2)` into a caller's buffer (rustix only offers
//! it into a new `Vec`).

use std::ffi::c_int;

use rustix::io::Errno;

use super::last_errno;

/// `getgroups(2)`: this process's supplementary groups into `buf`, in the
/// kernel's order; returns how many there are. With an empty `buf`, only
/// the count. Fails with `EINVAL` when `buf` is too short for them all.
/// Child-safe: the C library's wrapper is the plain system call (not a
/// cancellation point; it touches nothing but `errno`).
pub(crate) fn getgroups(buf: &mut [u32]) -> Result<usize, Errno> {
    let len = c_int::try_from(buf.len()).map_err(|_| Errno::INVAL)?;
    // SAFETY: `buf` is writable for `len` gids (gid_t is u32 on Linux);
    // with `len` 0 the kernel writes nothing.
    let rc = unsafe { libc::getgroups(len, buf.as_mut_ptr()) };
    usize::try_from(rc).map_err(|_| last_errno())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getgroups_matches_rustix() {
        let want: Vec<u32> = rustix::process::getgroups()
            .unwrap()
            .iter()
            .map(|g| g.as_raw())
            .collect();
        let n = getgroups(&mut []).unwrap();
        assert_eq!(n, want.len());
        let mut buf = vec![0u32; n + 1];
        assert_eq!(getgroups(&mut buf).unwrap(), n);
        assert_eq!(&buf[..n], &want[..]);
        if n > 0 {
            assert_eq!(getgroups(&mut buf[..n - 1]), Err(Errno::INVAL));
        }
    }
}
