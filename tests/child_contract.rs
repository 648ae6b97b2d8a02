//! The child contract: between clone/fork and exec the child never allocates.
//!
//! This test binary's global allocator aborts when called from any process
//! but the test itself. Every option of the core engine is spawned; a child
//! that allocated would die of SIGABRT, which every check below would see
//! (a wrong exit status, or a spawn error that did not arrive).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use common::{helper, report_of};
use safespawn::{Command, Errno, Error, Stage, Stdio};

struct ParentOnly;

static PARENT: AtomicI32 = AtomicI32::new(0);

fn check_caller() {
    let me = rustix::process::getpid().as_raw_nonzero().get();
    match PARENT.compare_exchange(0, me, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => {}
        Err(parent) if parent == me => {}
        Err(_) => {
            let msg = b"child_contract: the child allocated\n";
            let _ = rustix::io::write(rustix::stdio::stderr(), msg);
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

#[global_allocator]
static GLOBAL: ParentOnly = ParentOnly;

#[test]
fn the_tripwire_fires_in_a_child_that_allocates() {
    // A hook that allocates in the (forked) child must be caught: proves the
    // allocator really aborts outside the parent.
    // SAFETY: deliberately breaks the hook contract, in a child we discard.
    let cmd = unsafe {
        Command::new("true").pre_exec(|| {
            std::hint::black_box(vec![0u8; 64]);
            Ok(())
        })
    };
    let st = cmd.status().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&st),
        Some(libc::SIGABRT)
    );
}

#[test]
fn every_core_option_runs_without_allocating() {
    let (mut r, w) = std::io::pipe().unwrap();
    let file = std::fs::File::open("/dev/zero").unwrap();
    let passed: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    let shared = std::fs::File::open("/dev/urandom").unwrap();
    let rep = report_of(
        helper("report")
            .args(["a", "", "b c"])
            .arg_pair("k", "v")
            .env("A", "1")
            .env_string("B=2")
            .env_pass("PATH")
            .stdin(Stdio::dup(file.as_fd()))
            .stderr(w)
            .pass_fd(passed)
            .pass_fd_shared(shared.as_fd())
            .map_fd(std::fs::File::open("/dev/null").unwrap(), 20)
            .current_dir("/")
            .keep_ignored_signals()
            .keep_signal_mask()
            .timeout(Duration::from_secs(30))
            .close_fds_by_proc_walk(),
    );
    assert_eq!(rep.args.len(), 4);
    assert_eq!(rep.field("cwd"), "/");
    let mut err = String::new();
    r.read_to_string(&mut err).unwrap();
    assert!(err.is_empty(), "child stderr: {err}");

    // stderr_to_stdout, inherit, nonblocking pipes, piped stdin.
    let mut child = helper("echo-both")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr_to_stdout()
        .nonblocking_pipes()
        .spawn()
        .unwrap();
    drop(child.take_stdin());
    assert!(child.wait().unwrap().success());
    assert!(helper("exit=0")
        .stderr(Stdio::inherit())
        .status()
        .unwrap()
        .success());

    // Collision-safe relocation: a swap of two fds.
    let a = std::fs::File::open("/dev/null").unwrap();
    let b = std::fs::File::open("/dev/zero").unwrap();
    let (na, nb) = (
        std::os::fd::AsRawFd::as_raw_fd(&a),
        std::os::fd::AsRawFd::as_raw_fd(&b),
    );
    let rep = report_of(helper("report").map_fd(a, nb).map_fd(b, na));
    assert_eq!(rep.fds[&nb], "/dev/null");

    // Failure paths report instead of allocating.
    let e = Command::new("/nonexistent").status().unwrap_err();
    assert!(
        matches!(
            e,
            Error::Spawn {
                stage: Stage::Exec,
                errno: Errno::NOENT,
                ..
            }
        ),
        "{e:?}"
    );
    let e = Command::new("true")
        .current_dir("/nonexistent")
        .status()
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Spawn {
                stage: Stage::Chdir,
                ..
            }
        ),
        "{e:?}"
    );

    // Timeout, abort, drop, the fork path and a paused spawn.
    let e = helper("sleep=30")
        .timeout(Duration::from_millis(20))
        .status()
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }));
    helper("sleep=30").spawn().unwrap().abort().unwrap();
    // SAFETY: the hook makes no call at all.
    let hooked = unsafe { helper("exit=0").pre_exec(|| Ok(())) };
    assert!(hooked.status().unwrap().success());
    let paused = helper("exit=0").spawn_paused().unwrap();
    assert!(paused.resume().unwrap().wait().unwrap().success());
}

#[test]
fn privileges_and_daemons_run_without_allocating() {
    if !common::is_root() {
        eprintln!("skipped: privilege options need root, and this test is not running as root");
        return;
    }
    use safespawn::{Capability, Resource, Signal};
    let st = common::helper_for_any_user("exit=0")
        .umask(0)
        .rlimit(Resource::Nofile, 256, 512)
        .uid(65534)
        .gid(65534)
        .groups(&[65534])
        .allow_cap(Capability::NetBindService)
        .no_new_privs()
        .parent_death_signal(Signal::KILL)
        .new_session()
        .status()
        .unwrap();
    assert!(st.success());
    assert!(helper("exit=0")
        .clear_caps()
        .process_group(0)
        .status()
        .unwrap()
        .success());

    // A daemon with a pidfile: both processes of the double clone obey the
    // contract. This process adopts the daemon so it can reap it.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    let dir = std::env::temp_dir().join(format!("safespawn-contract-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("daemon.pid");
    let d = helper("sleep=30")
        .daemonize()
        .pidfile(&pidfile)
        .run()
        .unwrap();
    let text = std::fs::read_to_string(&pidfile).unwrap();
    assert_eq!(text.trim(), d.daemon.to_string());
    let pid = rustix::process::Pid::from_raw(d.daemon).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    let (_, status) = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())
        .unwrap()
        .unwrap();
    assert_eq!(status.terminating_signal(), Some(libc::SIGKILL));
    std::fs::remove_dir_all(&dir).unwrap();
}
