//! The child contract's tripwire: a global allocator that aborts when it
//! is called from any process but the one that first called it (the test
//! process). A test binary makes it its allocator with
//! `#[global_allocator] static GLOBAL: ParentOnly = ParentOnly;`; a child
//! that allocates between clone and exec then dies (SIGABRT, or exit
//! status 134 as pid 1 of a new pid namespace).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI32, Ordering};

pub struct ParentOnly;

static PARENT: AtomicI32 = AtomicI32::new(0);

fn check_caller() {
    let me = rustix::process::getpid().as_raw_nonzero().get();
    match PARENT.compare_exchange(0, me, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => {}
        Err(parent) if parent == me => {}
        Err(_) => {
            let msg = b"tripwire: a child allocated\n";
            let _ = rustix::io::write(rustix::stdio::stderr(), msg);
            if me == 1 {
                // Pid 1 of a new pid namespace ignores its own SIGABRT:
                // abort() would go on (holding glibc's abort lock, in memory
                // a CLONE_VM child shares with this process, which every
                // later abort would wait for) until a fault ends it.
                // SAFETY: _exit never returns and touches no Rust state.
                unsafe { libc::_exit(134) }
            }
            // SAFETY: abort never returns and touches no Rust state.
            unsafe { libc::abort() }
        }
    }
}

// SAFETY: forwards to the system allocator after the check.
unsafe impl GlobalAlloc for ParentOnly {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check_caller();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        check_caller();
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        check_caller();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new) }
    }
}
