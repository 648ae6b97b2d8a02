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

use safespawn::{Command, Landlock, Mount, Namespaces, Seccomp, Stdio};

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
    // Landlocked, where the system has it: the child's one more step.
    let landlocked = Command::new("true")
        .landlock(
            Landlock::new()
                .allow_read("/")
                .allow_exec("/")
                .allow_tcp_connect(443)
                .best_effort(),
        )
        .build()
        .map_err(|e| eprintln!("no landlocked case: {e}"))
        .ok();
    // Filters: a deny-list, then one that blocks write(2), so the child
    // also moves its report fd. (A failed spawn allocates its error; the
    // child contract test covers the failure path with filters.)
    let filtered = Command::new("true")
        .seccomp(Seccomp::deny(["ptrace", "bpf"], libc::EPERM))
        .seccomp(Seccomp::deny(["write"], libc::EPERM))
        .build()
        .unwrap();
    // A new session with a pseudo-terminal as its controlling terminal
    // (free again once each child is gone).
    let pty = common::pty();
    let with_tty = Command::new("true")
        .stdin(pty.slave_dup())
        .controlling_tty(0)
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

            assert!(with_tty.status().unwrap().success());

            if let Some(p) = &landlocked {
                assert!(p.status().unwrap().success());
                assert!(p.spawn().unwrap().wait().unwrap().success());
            }
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

/// The fork path of id ranges: the parent writes the child's maps with
/// texts made at `build()` and `/proc/<pid>/...` paths formatted on its
/// stack, so spawning allocates nothing there either. (The forked child
/// has memory of its own, so its allocations would not be counted here:
/// tests/child_contract.rs covers it.) Without privilege the map is the
/// caller's own ids; skipped where no user namespace may be made.
#[test]
fn spawning_with_id_ranges_allocates_nothing() {
    let (uid, gid) = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    let ranged = Command::new("true")
        .unshare(safespawn::Namespaces::USER)
        .uid_map(0, uid, 1)
        .gid_map(0, gid, 1)
        .build()
        .unwrap();
    match ranged.status() {
        Ok(s) if s.success() => {}
        other => {
            eprintln!("skipping spawning_with_id_ranges_allocates_nothing: {other:?}");
            return;
        }
    }
    let run = || {
        let child = ranged.spawn().unwrap();
        assert!(child.wait().unwrap().success());
        assert!(ranged.status().unwrap().success());
    };
    run(); // warm-up
    for round in 0..10 {
        let n = allocations_during(run);
        assert_eq!(n, 0, "round {round}: {n} heap allocations with id ranges");
    }
}

/// A sandbox: new user, mount and pid namespaces, `map_root`, a tmpfs
/// root with the system directories bound read-only, proc, dev, a sized
/// `/tmp` and `/` read-only after it (the lock step included). Its spawns
/// and waits allocate nothing either: every path and option was made at
/// `build()`.
#[test]
fn a_confined_spawn_allocates_nothing() {
    let ns = Namespaces::USER | Namespaces::MOUNT | Namespaces::PID;
    if !std::path::Path::new("/proc/self/ns").exists() {
        eprintln!("skipping a_confined_spawn_allocates_nothing: no /proc here (map_root needs it)");
        return;
    }
    if let Err(e) = Command::new("true").unshare(ns).map_root().status() {
        eprintln!("skipping a_confined_spawn_allocates_nothing: namespaces refused here: {e}");
        return;
    }
    let mut cmd = Command::new("true").unshare(ns).map_root().root_tmpfs();
    for d in ["/usr", "/bin", "/lib", "/lib64"] {
        cmd = cmd.mount(Mount::bind_ro(d, d).optional());
    }
    let sandbox = cmd
        .mount(Mount::proc("/proc"))
        .mount(Mount::dev("/dev"))
        .mount(Mount::tmpfs("/tmp").size(1 << 20))
        .mount(Mount::bind_ro("/no/such/safespawn-dir", "/x").optional())
        .mount(Mount::remount_ro("/"))
        .build()
        .unwrap();
    let run = |n: usize| {
        for _ in 0..n {
            let fin = sandbox.spawn().unwrap().wait().unwrap();
            assert!(fin.success(), "{:?}", fin.status());
            let paused = sandbox.spawn_paused().unwrap();
            assert!(paused.resume().unwrap().wait().unwrap().success());
        }
    };
    run(2);
    for round in 0..10 {
        let n = allocations_during(|| run(1));
        assert_eq!(
            n, 0,
            "round {round}: {n} heap allocations in a confined spawn"
        );
    }
}

#[test]
fn spawning_with_every_knob_and_label_allocates_nothing() {
    // Every knob any user may set, an SELinux label (refused and ignored
    // where SELinux does not enforce; where it does, left out), and as root
    // the securebits: the child writes through the plan's /proc fd and
    // prepared texts.
    if !std::path::Path::new("/proc/self").exists() {
        eprintln!("skipping: the knobs' /proc fd needs /proc");
        return;
    }
    let oom = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
    let oom = (oom.trim().parse::<i32>().unwrap() + 1).min(1000);
    // Every CPU number: whichever this process may use are among them.
    let every_cpu: Vec<usize> = (0..1024).collect();
    let mut cmd = Command::new("true")
        .nice(19)
        .cpu_affinity(&every_cpu)
        .oom_score_adj(oom)
        .personality(safespawn::Personality::ADDR_NO_RANDOMIZE);
    if std::fs::read("/sys/fs/selinux/enforce").map_or(true, |e| e.first() == Some(&b'0')) {
        cmd = cmd.selinux_exec_label("system_u:system_r:safespawn_alloc_t:s0");
    }
    if rustix::process::geteuid().is_root() {
        cmd = cmd.securebits(safespawn::Securebits::NOROOT);
    }
    if Command::new("true").sched_core_new().build().is_ok() {
        cmd = cmd.sched_core_new();
    }
    let knobs = cmd.build().unwrap();
    let run = || {
        let child = knobs.spawn().unwrap();
        assert!(child.wait().unwrap().success());
        assert!(knobs.status().unwrap().success());
    };
    run(); // warm-up
    for round in 0..20 {
        let n = allocations_during(run);
        assert_eq!(
            n, 0,
            "round {round}: {n} heap allocations spawning with knobs"
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

/// A prepared pipeline spawns with no allocation: the stages are built,
/// the pipes between them live on the stack, and the vector of running
/// stages comes back to the prepared pipeline's pool when the running
/// pipeline (or the status made from it) is dropped. Waiting, reading the
/// last stdout, aborting and dropping allocate nothing either.
#[test]
fn spawning_a_prepared_pipeline_allocates_nothing() {
    let plain = (Command::new("true") | Command::new("true") | Command::new("true"))
        .build()
        .unwrap();
    let piped = (Command::new("cat").stdin(Stdio::piped())
        | Command::new("cat")
        | Command::new("cat").stdout(Stdio::piped()))
    .build()
    .unwrap();
    let sleepers = (Command::new("sleep").arg("30") | Command::new("sleep").arg("30"))
        .build()
        .unwrap();
    let run = |n: usize| {
        for _ in 0..n {
            let st = plain.spawn().unwrap().wait().unwrap();
            assert!(st.success());
            assert_eq!(st.iter().filter(|f| f.success()).count(), 3);
            drop(st);

            let mut running = piped.spawn().unwrap();
            drop(running.take_stdin());
            let mut buf = [0u8; 16];
            assert_eq!(running.take_stdout().unwrap().read(&mut buf).unwrap(), 0);
            assert!(running.wait().unwrap().success());

            drop(sleepers.spawn().unwrap()); // drop aborts and reaps
            let st = sleepers.spawn().unwrap().abort().unwrap();
            assert!(!st.success());
        }
    };
    run(2); // warm-up: the pool's vectors, one-time probes
    for round in 0..10 {
        let n = allocations_during(|| run(1));
        assert_eq!(
            n, 0,
            "round {round}: {n} heap allocations in a pipeline spawn"
        );
    }
    // The spawn alone, counted by itself.
    let n = allocations_during(|| {
        let running = plain.spawn().unwrap();
        std::hint::black_box(&running);
        drop(running.wait().unwrap());
    });
    assert_eq!(n, 0, "{n} heap allocations in spawn + wait");
}

/// Direct send buffers: the pipes, the slot list, the first write at the
/// spawn and the rest written by `wait` (a buffer larger than its pipe),
/// up to the four buffers a spawn keeps in place; a `Running` dropped
/// with data pending; `try_wait`'s writes.
#[test]
fn spawning_with_send_buffers_allocates_nothing() {
    let small = Command::new("true").send_buffer(3, "key").build().unwrap();
    let big = vec![7u8; 3 * 1024 * 1024];
    let read_by_wait = Command::new("sh")
        .args([
            "-c",
            "cat <&3 >/dev/null; cat <&4 >/dev/null; cat <&5 >/dev/null; cat <&6 >/dev/null",
        ])
        .send_buffer(3, big.clone())
        .send_buffer(4, big.clone())
        .send_buffer(5, "five")
        .send_buffer(6, big.clone())
        .build()
        .unwrap();
    let never_read = Command::new("sleep")
        .arg("30")
        .send_buffer(3, big)
        .build()
        .unwrap();
    let run = |n: usize| {
        for _ in 0..n {
            assert!(small.spawn().unwrap().wait().unwrap().success());
            assert!(small.status().unwrap().success());
            assert!(read_by_wait.spawn().unwrap().wait().unwrap().success());
            let mut child = never_read.spawn().unwrap();
            assert!(child.try_wait().unwrap().is_none());
            drop(child);
        }
    };
    run(2);
    for round in 0..5 {
        let n = allocations_during(|| run(1));
        assert_eq!(
            n, 0,
            "round {round}: {n} heap allocations with send buffers"
        );
    }
}

/// Every confinement at once, as far as this system allows: new user,
/// mount, pid, net, uts and ipc namespaces with `map_root` and a hostname,
/// a tmpfs root with read-only system binds, proc, dev and `/tmp`, the
/// process knobs, a landlock ruleset on the bound directories, a seccomp
/// deny-list, and as root a cgroup. Still nothing allocated per spawn.
#[test]
fn a_spawn_with_every_confinement_at_once_allocates_nothing() {
    let ns = Namespaces::USER
        | Namespaces::MOUNT
        | Namespaces::PID
        | Namespaces::NET
        | Namespaces::UTS
        | Namespaces::IPC;
    let test = "a_spawn_with_every_confinement_at_once_allocates_nothing";
    if !std::path::Path::new("/proc/self/ns").exists() {
        eprintln!("skipping {test}: no /proc here (map_root needs it)");
        return;
    }
    if let Err(e) = Command::new("true").unshare(ns).map_root().status() {
        eprintln!("skipping {test}: namespaces refused here: {e}");
        return;
    }
    let dirs = ["/usr", "/bin", "/lib", "/lib64"];
    let mut cmd = Command::new("/usr/bin/true")
        .unshare(ns)
        .map_root()
        .hostname("everything")
        .root_tmpfs();
    // Landlock rules follow inodes: one per bound directory (its resolved
    // source), since the new root itself is beneath no rule.
    let mut rules = Landlock::new().best_effort();
    for d in dirs {
        cmd = cmd.mount(Mount::bind_ro(d, d).optional());
        if let Ok(src) = std::fs::canonicalize(d) {
            rules = rules.allow_read(&src).allow_exec(&src);
        }
    }
    cmd = cmd
        .mount(Mount::proc("/proc"))
        .mount(Mount::dev("/dev"))
        .mount(Mount::tmpfs("/tmp"))
        // The lowest priority: allowed whatever this process's own nice
        // value (a higher one than the caller's needs CAP_SYS_NICE).
        .nice(19)
        .personality(safespawn::Personality::ADDR_NO_RANDOMIZE)
        .seccomp(Seccomp::deny(["uname", "swapon"], libc::EPERM));
    if common::landlock::kernel_abi().is_ok() {
        cmd = cmd.landlock(rules);
    }
    let cgroup = common::cgroup::cgroup_or_skip(test)
        .map(|mount| common::cgroup::ScratchCgroup::new(&mount, "everything"));
    if let Some(target) = &cgroup {
        cmd = cmd.cgroup(&target.path);
    }
    // A send buffer too (the child does not read it: it goes in whole at
    // the spawn).
    let everything = cmd.send_buffer(3, "everything").build().unwrap();
    let run = |n: usize| {
        for _ in 0..n {
            let fin = everything.spawn().unwrap().wait().unwrap();
            assert!(fin.success(), "{:?}", fin.status());
            assert!(everything.status().unwrap().success());
        }
    };
    run(2);
    for round in 0..10 {
        let n = allocations_during(|| run(1));
        assert_eq!(
            n, 0,
            "round {round}: {n} heap allocations with every confinement"
        );
    }
    drop(everything);
    drop(cgroup);
}
