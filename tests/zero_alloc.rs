//! Spawning a `Prepared`, waiting for it and aborting it allocate nothing.
//!
//! A counting global allocator counts, per thread, every allocation,
//! reallocation and free. (A `CLONE_VM` child shares the parent thread's
//! memory and thread-locals, so an allocation in the child would show up in
//! the same counter.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Read;

use safespawn::{Command, Seccomp, Stdio};

struct Counting;

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn bump() {
    COUNT.with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards to the system allocator; counting has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        bump();
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        bump();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = COUNT.with(Cell::get);
    f();
    COUNT.with(Cell::get) - before
}

#[test]
fn spawn_wait_and_abort_allocate_nothing() {
    let plain = Command::new("true").build().unwrap();
    let piped = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .build()
        .unwrap();
    let sleeper = Command::new("sleep").arg("30").build().unwrap();
    // Filters: a deny-list, then one that blocks write(2), so the child
    // also moves its report fd. (A failed spawn allocates its error; the
    // child contract test covers the failure path with filters.)
    let filtered = Command::new("true")
        .seccomp(Seccomp::deny(["ptrace", "bpf"], libc::EPERM))
        .seccomp(Seccomp::deny(["write"], libc::EPERM))
        .build()
        .unwrap();
    let run = |n: usize| {
        for _ in 0..n {
            let child = plain.spawn().unwrap();
            assert!(child.wait().unwrap().success());
            assert!(plain.status().unwrap().success());
            plain.run().unwrap();

            let mut child = piped.spawn().unwrap();
            drop(child.take_stdin());
            let mut buf = [0u8; 16];
            assert_eq!(child.take_stdout().unwrap().read(&mut buf).unwrap(), 0);
            child.wait().unwrap();

            assert!(filtered.status().unwrap().success());
            let child = filtered.spawn().unwrap();
            assert!(child.wait().unwrap().success());

            let mut child = sleeper.spawn().unwrap();
            assert!(child.try_wait().unwrap().is_none());
            child.abort().unwrap();
            drop(sleeper.spawn().unwrap()); // drop aborts too
        }
    };
    run(2); // warm-up: one-time probes and lazy statics
    for round in 0..20 {
        let n = allocations_during(|| run(1));
        assert_eq!(
            n, 0,
            "round {round}: {n} heap allocations in spawn/wait/abort"
        );
    }
}

#[test]
fn the_counter_does_count() {
    // The test above could not fail if counting were broken.
    let n = allocations_during(|| drop(std::hint::black_box(vec![1u8; 10])));
    assert_eq!(n, 2);
}
