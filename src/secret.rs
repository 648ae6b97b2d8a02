//! Bytes that may be secret (send buffers, a buffered stdin): kept in one
//! allocation, never copied by the crate, and erased when dropped.
//!
//! Secrets travel to children through these buffers (keys for
//! `cryptsetup --key-file=/dev/fd/3`, passwords on stdin), so the memory
//! they lived in is overwritten before it goes back to the allocator, where
//! the next allocation, a core dump or a swapped-out page would show it.
//! The erase uses volatile writes followed by a compiler fence: a plain
//! `memset` right before a `free` is a dead store the optimiser may remove.
//!
//! What this cannot erase: the caller's own copy (a `&[u8]` or `&str` is
//! copied once into the `Secret`; a `Vec<u8>` or `String` is moved in, so
//! there is no second copy), the kernel's pipe buffer (freed by the kernel
//! once the child has read it or the pipe is closed), and whatever the
//! child does with the bytes.

use std::fmt;
use std::sync::atomic::{compiler_fence, Ordering};

/// Bytes erased (the whole allocation, capacity and not only length) when
/// dropped. Not `Clone`: one copy, the one erased.
pub(crate) struct Secret(Vec<u8>);

impl Secret {
    /// Takes `bytes` over: a `Vec<u8>` (or `String`) is moved, not copied.
    pub(crate) fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(bytes.into())
    }
}

/// The bytes, borrowed: the one way to read them, never a copy.
impl std::ops::Deref for Secret {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// Only the length: the bytes are never shown.
impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        erase(&mut self.0);
    }
}

/// Overwrites every byte of `v`'s allocation (its capacity) with zeros,
/// in a way the optimiser keeps although the memory is freed right after.
fn erase(v: &mut Vec<u8>) {
    let cap = v.capacity();
    let base = v.as_mut_ptr();
    // Word stores where the address allows, bytes around them: a 4 MiB
    // buffer is erased in half a million stores, not four million.
    let head = base.align_offset(std::mem::align_of::<u64>()).min(cap);
    let words = (cap - head) / std::mem::size_of::<u64>();
    let tail = head + words * std::mem::size_of::<u64>();
    for i in 0..head {
        // SAFETY: `i < cap`: inside the allocation, which `v` owns; spare
        // capacity may be written (not read) though uninitialised.
        unsafe { base.add(i).write_volatile(0) };
    }
    for w in 0..words {
        // SAFETY: `base + head` is aligned for `u64` (`align_offset`), and
        // word `w` ends at `head + 8 * (w + 1) <= cap`: inside the
        // allocation.
        unsafe { base.add(head).cast::<u64>().add(w).write_volatile(0) };
    }
    for i in tail..cap {
        // SAFETY: `i < cap`, as above.
        unsafe { base.add(i).write_volatile(0) };
    }
    // The stores above happen before the deallocation that follows.
    compiler_fence(Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erase_zeroes_the_whole_capacity() {
        for (len, cap) in [(0, 0), (1, 1), (3, 17), (100, 1000), (8, 8), (0, 33)] {
            let mut v = Vec::with_capacity(cap);
            v.resize(len, 0xA5u8);
            // The spare capacity too: fill it through the raw pointer.
            let cap = v.capacity();
            // SAFETY: the whole allocation is ours; written, then read back
            // as initialised bytes below.
            unsafe { std::ptr::write_bytes(v.as_mut_ptr(), 0xA5, cap) };
            erase(&mut v);
            // SAFETY: every byte of the allocation was written above.
            let all = unsafe { std::slice::from_raw_parts(v.as_ptr(), cap) };
            assert!(all.iter().all(|&b| b == 0), "len {len} cap {cap}: {all:?}");
        }
    }

    #[test]
    fn a_vec_is_moved_in_not_copied() {
        let v = b"key".to_vec();
        let ptr = v.as_ptr();
        let s = Secret::new(v);
        assert_eq!(s.as_ptr(), ptr);
        assert_eq!(format!("{s:?}"), "Secret(3 bytes)");
    }
}
