//! Frozen data: what `build()` allocates once and the child only reads.
//!
//! The child side may not name an allocating type (`Box`, `Vec`, `CString`,
//! ...; see the lint fence in `child/mod.rs`). Its plan holds these
//! wrappers instead: the parent builds them from its owned values, the child
//! sees plain slices and `CStr`s through `Deref`, and the memory is freed in
//! the parent when the plan is dropped.

use std::ffi::{c_char, CStr, CString, OsStr};
use std::ops::Deref;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

use rustix::io::Errno;

/// Owned data that is never changed after `build()`: a slice or a `CStr`.
pub(crate) struct Frozen<T: ?Sized>(Box<T>);

impl<T: ?Sized> Deref for Frozen<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> From<Vec<T>> for Frozen<[T]> {
    fn from(v: Vec<T>) -> Self {
        Frozen(v.into_boxed_slice())
    }
}

impl From<CString> for Frozen<CStr> {
    fn from(s: CString) -> Self {
        Frozen(s.into_boxed_c_str())
    }
}

impl<T> Default for Frozen<[T]> {
    fn default() -> Self {
        Frozen(Box::default())
    }
}

impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for Frozen<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A `pre_exec` hook as stored in a plan.
pub(crate) type Hook = Arc<dyn Fn() -> Result<(), Errno> + Send + Sync + 'static>;

/// NUL-terminated strings in one buffer, with a null-terminated pointer array
/// into it: exactly what `execve` takes.
pub(crate) struct CStrArray {
    /// The strings, each followed by a NUL; `ptrs` points into it, so it
    /// must live as long.
    buf: Box<[u8]>,
    ptrs: Box<[*const c_char]>,
}

// SAFETY: the pointers point into `buf`, a heap allocation owned by the same
// value and never written after construction; moving the value does not move
// the heap data, and sharing it only ever reads it.
unsafe impl Send for CStrArray {}
// SAFETY: as above: the data is immutable after construction.
unsafe impl Sync for CStrArray {}

impl CStrArray {
    /// `items` must not contain NUL bytes (checked by `build()` before).
    pub(crate) fn new<'a>(items: impl Iterator<Item = &'a [u8]> + Clone) -> CStrArray {
        let total: usize = items.clone().map(|s| s.len() + 1).sum();
        let mut buf = Vec::with_capacity(total);
        let mut starts = Vec::new();
        for s in items {
            starts.push(buf.len());
            buf.extend_from_slice(s);
            buf.push(0);
        }
        let buf = buf.into_boxed_slice();
        let base = buf.as_ptr();
        let ptrs: Box<[*const c_char]> = starts
            .iter()
            .map(|&off| base.wrapping_add(off).cast::<c_char>())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        CStrArray { buf, ptrs }
    }

    /// The null-terminated pointer array. Child-safe.
    #[inline]
    pub(crate) fn as_ptr(&self) -> *const *const c_char {
        self.ptrs.as_ptr()
    }

    /// The strings, without their NULs (for display; never in the child).
    pub(crate) fn items(&self) -> impl Iterator<Item = &OsStr> {
        let count = self.ptrs.len() - 1;
        let body = &self.buf[..self.buf.len().saturating_sub(1)];
        body.split(|&b| b == 0).take(count).map(OsStr::from_bytes)
    }
}
