//! Spawning a `Prepared`, waiting for it and aborting it allocate nothing.
//!
//! A counting global allocator counts, per thread, every allocation,
//! reallocation and free. (A `CLONE_VM` child shares the parent thread's
//! memory and thread-locals, so an allocation in the child would show up in
//! the same counter.)

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Read;

use safespawn::{Command, Namespaces, Stdio};

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
fn spawns_into_a_cgroup_allocate_nothing() {
    let Some(mount) = common::cgroup::cgroup_or_skip("spawns_into_a_cgroup_allocate_nothing")
    else {
        return;
    };
    let target = common::cgroup::ScratchCgroup::new(&mount, "zero-alloc");
    // Placed by the kernel (CLONE_INTO_CGROUP where this kernel has it),
    // and by the child's own write, with the new cgroup namespace the
    // child then makes (the compat flag is read at build() only).
    let by_clone = Command::new("true").cgroup(&target.path).build().unwrap();
    safespawn::__force_compat(safespawn::__compat::NO_CLONE_INTO_CGROUP);
    let by_write = Command::new("true")
        .cgroup(&target.path)
        .unshare(Namespaces::CGROUP)
        .build();
    safespawn::__force_compat(0);
    let by_write = by_write.unwrap();
    let sleeper = Command::new("sleep")
        .arg("30")
        .cgroup(&target.path)
        .build()
        .unwrap();
    let run = |n: usize| {
        for _ in 0..n {
            for p in [&by_clone, &by_write] {
                assert!(p.spawn().unwrap().wait().unwrap().success());
                assert!(p.status().unwrap().success());
                p.run().unwrap();
            }
            sleeper.spawn().unwrap().abort().unwrap();
        }
    };
    run(2);
    for round in 0..20 {
        let n = allocations_during(|| run(1));
        assert_eq!(
            n, 0,
            "round {round}: {n} heap allocations spawning into a cgroup"
        );
    }
}

#[test]
fn the_counter_does_count() {
    // The test above could not fail if counting were broken.
    let n = allocations_during(|| drop(std::hint::black_box(vec![1u8; 10])));
    assert_eq!(n, 2);
}
