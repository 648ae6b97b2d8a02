//! A panicking `pre_exec` hook (issue "Hardening", item 2): it breaks the
//! hook contract, and still the child must not unwind past the hook call
//! (that would run the caller's destructors in a fork of this process) and
//! the parent must get a hook failure, not the exit status of a copy of the
//! test harness.
//!
//! The tests run one at a time (`SERIAL`): the daemon test makes this
//! process a child subreaper and counts its zombies.

mod common;

use std::ffi::c_void;
use std::io::{PipeWriter, Read, Write};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::Duration;

use common::{helper, zombie_children};
use safespawn::{Errno, Error, Stage};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes one byte to its pipe when dropped: the pipe then holds one byte
/// per process that ran this destructor.
struct DropWitness(Option<PipeWriter>);

impl Drop for DropWitness {
    fn drop(&mut self) {
        if let Some(mut w) = self.0.take() {
            let _ = w.write_all(b"d");
        }
    }
}

/// The hook under test: breaks the contract by panicking.
fn panicking_hook() -> Result<(), Errno> {
    panic!("a pre_exec hook panics on purpose")
}

/// What a spawn with the panicking hook must return.
fn assert_hook_failure<T: std::fmt::Debug>(result: Result<T, Error>) {
    match result {
        Err(Error::Spawn { stage, errno, .. }) => {
            assert_eq!((stage, errno), (Stage::Hook, Errno::NOTRECOVERABLE))
        }
        other => panic!("a panicking hook must be a hook failure, got {other:?}"),
    }
}

#[test]
fn a_panicking_hook_is_a_hook_failure_and_unwinds_nothing_of_the_caller() {
    let _g = serial();
    let (mut drops, w) = std::io::pipe().unwrap();
    let witness = DropWitness(Some(w));
    // SAFETY: the hook breaks the contract (it panics) on purpose: that is
    // what is tested; the child is discarded.
    let cmd = unsafe { helper("report").pre_exec(panicking_hook) };
    let result = cmd.timeout(Duration::from_secs(20)).status();
    // The parent drops the witness once; a child that unwound into this
    // frame dropped its copy too (its pipe fd is only marked close-on-exec
    // at that point, and nothing exec'd).
    drop(witness);
    let mut bytes = Vec::new();
    drops.read_to_end(&mut bytes).unwrap();
    assert_hook_failure(result);
    assert_eq!(
        bytes, b"d",
        "the test frame's value must be dropped exactly once, by the parent"
    );
}

#[test]
fn a_panicking_hook_after_a_good_one_on_a_paused_spawn_is_a_hook_failure() {
    let _g = serial();
    // SAFETY: the first hook does nothing; the second breaks the contract on
    // purpose.
    let cmd = unsafe {
        helper("report")
            .pre_exec(|| Ok(()))
            .pre_exec(panicking_hook)
    };
    assert_hook_failure(cmd.spawn_paused().map(drop));
}

/// A daemon's hooks run in the daemon, a `clone` on a second stack whose
/// outermost frame is an `extern "C"` entry point: no catch frame of the
/// caller's above it. The panic must still become a hook failure, and the
/// failed daemon be reaped by its intermediate like any failed daemon.
#[test]
fn a_panicking_hook_in_a_daemon_is_a_hook_failure_and_leaves_no_zombie() {
    static SUBREAPER: Once = Once::new();
    let _g = serial();
    SUBREAPER.call_once(|| {
        rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    });
    // SAFETY: the hook breaks the contract on purpose; the daemon is discarded.
    let cmd = unsafe { helper("sleep=30").daemonize().pre_exec(panicking_hook) };
    let result = cmd.run();
    if let Ok(d) = &result {
        let pid = rustix::process::Pid::from_raw(d.daemon).unwrap();
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
    std::thread::sleep(Duration::from_millis(50));
    let zombies = zombie_children();
    for z in &zombies {
        let _ = rustix::process::waitpid(
            rustix::process::Pid::from_raw(*z),
            rustix::process::WaitOptions::NOHANG,
        );
    }
    assert_hook_failure(result);
    assert!(zombies.is_empty(), "left as zombies: {zombies:?}");
}

/// Where the spawn of [`a_panicking_hook_on_a_thread_std_did_not_start_is_a_hook_failure`]
/// leaves its result.
type Slot = Option<Result<std::process::ExitStatus, Error>>;

extern "C" fn spawn_from_foreign_thread(slot: *mut c_void) -> *mut c_void {
    // SAFETY: the hook breaks the contract on purpose; the child is discarded.
    let cmd = unsafe { helper("report").pre_exec(panicking_hook) };
    let result = cmd.timeout(Duration::from_secs(20)).status();
    // SAFETY: `slot` points to the joining thread's Slot, which outlives this
    // thread (pthread_join) and is not touched until the join returns.
    unsafe { *slot.cast::<Slot>() = Some(result) };
    std::ptr::null_mut()
}

/// A thread created by C code has no `catch_unwind` of std's at its base: a
/// panic that found no catch frame above the hook would abort the child
/// (SIGABRT, no report) instead of reaching the parent as a hook failure.
#[test]
fn a_panicking_hook_on_a_thread_std_did_not_start_is_a_hook_failure() {
    let _g = serial();
    let mut slot: Slot = None;
    let mut thread: libc::pthread_t = 0;
    // SAFETY: default attributes; the entry point takes the pointer to
    // `slot`, which lives until after the join below.
    let rc = unsafe {
        libc::pthread_create(
            &mut thread,
            std::ptr::null(),
            spawn_from_foreign_thread,
            (&mut slot as *mut Slot).cast::<c_void>(),
        )
    };
    assert_eq!(rc, 0, "pthread_create");
    // SAFETY: `thread` was created above and is joined exactly once.
    let rc = unsafe { libc::pthread_join(thread, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "pthread_join");
    assert_hook_failure(slot.expect("the thread stored its result"));
}
