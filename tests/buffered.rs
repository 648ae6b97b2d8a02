//! Buffered mode: input, captures, send buffers and the poll loop's rules
//! (no deadlock, EPIPE, SIGPIPE, EINTR, grandchildren, timeouts, no zombie).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use common::census::{assert_same, pattern};
use common::{helper, zombie_children, Report};
use safespawn::{BuildErrorKind, Command, Error};

const MIB: usize = 1024 * 1024;

/// Counts the allocations (and reallocations) each thread makes, so a test
/// can see how many a run makes without other tests' threads mixing in.
struct CountingAlloc;

thread_local! {
    static ALLOCS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn count_one() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

fn allocs_so_far() -> u64 {
    ALLOCS.with(|c| c.get())
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is a const-initialised thread-local Cell, which never allocates.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        count_one();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { std::alloc::System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Every test runs with SIGPIPE at its default action (death), as in a C
/// program: Rust's runtime ignores it, which would hide a library that lets
/// a write to a closed pipe raise it.
fn sigpipe_default() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: sets a standard signal to SIG_DFL; no handler is involved.
        let old = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        assert_ne!(old, libc::SIG_ERR);
    });
}

/// A leaked zombie stays; one of a concurrent test is reaped in a moment.
fn assert_no_lasting_zombies() {
    let before = our_zombies();
    if before.is_empty() {
        return;
    }
    std::thread::sleep(Duration::from_millis(500));
    let lasting: Vec<i32> = our_zombies()
        .into_iter()
        .filter(|p| before.contains(p))
        .collect();
    assert!(lasting.is_empty(), "zombie children left: {lasting:?}");
}

/// Zombie children the tests themselves spawned. As pid 1 of a pid
/// namespace (or a subreaper) this process also adopts every orphan the
/// other tests' shells leave (`sh -c 'sleep 5 & ...'`), which is not ours
/// to reap: then only the helper processes count.
fn our_zombies() -> Vec<i32> {
    let adopts_orphans =
        std::process::id() == 1 || rustix::process::child_subreaper().ok().flatten().is_some();
    zombie_children()
        .into_iter()
        .filter(|pid| {
            !adopts_orphans
                || std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.starts_with("safespawn-test"))
        })
        .collect()
}

/// Whether SIGPIPE is pending for this thread or process, and whether it is
/// blocked in this thread.
fn sigpipe_state() -> (bool, bool) {
    // SAFETY: the sets are initialised by sigemptyset before use; a null
    // new-set pointer only queries the mask.
    unsafe {
        let mut pending: libc::sigset_t = std::mem::zeroed();
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pending);
        libc::sigemptyset(&mut mask);
        libc::sigpending(&mut pending);
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut mask);
        (
            libc::sigismember(&pending, libc::SIGPIPE) == 1,
            libc::sigismember(&mask, libc::SIGPIPE) == 1,
        )
    }
}

#[test]
fn hello_world_into_separate_buffers() {
    sigpipe_default();
    const HELLO: &[u8] = b"Hello World\n";
    // action, what stdout and stderr must hold
    let cases: [(&str, &[u8], &[u8]); 3] = [
        ("echo", HELLO, b""),
        ("echo-err", b"", HELLO),
        ("echo-both", HELLO, HELLO),
    ];
    for (action, stdout, stderr) in cases {
        let out = helper(action)
            .input(HELLO)
            .capture_stdout()
            .capture_stderr()
            .run()
            .unwrap();
        assert_eq!(out.stdout, stdout, "{action}: stdout");
        assert_eq!(out.stderr, stderr, "{action}: stderr");
        assert!(out.status.success(), "{action}");
    }
}

#[test]
fn hello_world_into_one_interleaved_buffer_in_write_order() {
    sigpipe_default();
    let out = helper("echo-both")
        .input("Hello World\n")
        .capture_interleaved()
        .run()
        .unwrap();
    assert_eq!(out.stdout, b"Hello World\nHello World\n");
    assert_eq!(out.stderr, b"");

    let out = helper("out=Hello,err= World,out=\\n,err=Hello,out= World\\n")
        .capture_interleaved()
        .run()
        .unwrap();
    assert_eq!(out.stdout, b"Hello World\nHello World\n");
}

#[test]
fn streams_not_captured_are_dev_null() {
    sigpipe_default();
    let out = helper("report").capture_stdout().run().unwrap();
    let report = Report::parse(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(report.fds.get(&0).map(String::as_str), Some("/dev/null"));
    assert!(report.fds[&1].starts_with("pipe:"), "{:?}", report.fds);
    assert_eq!(report.fds.get(&2).map(String::as_str), Some("/dev/null"));
    // Interleaved: one pipe on both 1 and 2; no other fd leaks in.
    let out = helper("report")
        .capture_interleaved()
        .input("")
        .run()
        .unwrap();
    let report = Report::parse(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(report.fds[&1], report.fds[&2]);
    assert!(report.fds[&0].starts_with("pipe:"));
    assert_eq!(report.fd_numbers(), vec![0, 1, 2]);
}

#[test]
fn binary_input_with_nul_bytes_round_trips() {
    sigpipe_default();
    let mut input: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    input.extend_from_slice(b"\0\0end\0");
    let out = helper("echo")
        .input(input.clone())
        .capture_stdout()
        .run()
        .unwrap();
    assert_same("stdout", &out.stdout, &input);
}

#[test]
fn sixty_four_mib_in_out_and_err_at_once() {
    sigpipe_default();
    let input = pattern(64 * MIB, 0x5eed);
    let out = helper("tee")
        .input(input.clone())
        .capture_stdout()
        .capture_stderr()
        .run()
        .unwrap();
    assert_same("stdout", &out.stdout, &input);
    assert_same("stderr", &out.stderr, &input);
}

#[test]
fn child_closing_stdin_at_once_while_100_mib_wait() {
    sigpipe_default();
    let (pending_before, blocked_before) = sigpipe_state();
    let input = vec![0x5a; 100 * MIB];
    let out = helper("close-stdin,sleep=0.05,out=closed")
        .input(input)
        .capture_stdout()
        .run()
        .unwrap();
    assert_eq!(out.stdout, b"closed");
    // The SIGPIPE the failed write raised was taken off; the mask is back.
    assert_eq!(sigpipe_state(), (pending_before, blocked_before));
    assert_no_lasting_zombies();
}

#[test]
fn child_exiting_without_reading() {
    sigpipe_default();
    // A long wait_delay: the call must end because the pipes report EPIPE
    // and end-of-file, which they only do if the parent closed its copies
    // of the child's ends before writing.
    let start = Instant::now();
    let out = helper("exit=0")
        .input(vec![1u8; 8 * MIB])
        .capture_stdout()
        .wait_delay(Duration::from_secs(60))
        .run()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_secs(30),
        "took {elapsed:?}: waited out wait_delay"
    );
    let out = helper("exit=3").input(vec![1u8; 8 * MIB]).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    // A send buffer nobody reads is the same: EPIPE, not an error.
    let out = helper("exit=0")
        .capture_stdout()
        .send_buffer(3, vec![2u8; 4 * MIB])
        .run()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn parent_survives_sigpipe_at_default_action() {
    sigpipe_default();
    // SAFETY: only queries the disposition (a null new action).
    let disposition = unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old);
        old.sa_sigaction
    };
    assert_eq!(
        disposition,
        libc::SIG_DFL,
        "the test must run with SIGPIPE at default"
    );
    for _ in 0..20 {
        let out = helper("close-stdin")
            .input(vec![7u8; 4 * MIB])
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    // Still alive, and no SIGPIPE left to kill us once unblocked.
    assert!(!sigpipe_state().0, "a SIGPIPE was left pending");
}

#[test]
fn grandchild_holding_the_pipe_does_not_hang_the_call() {
    sigpipe_default();
    let start = Instant::now();
    let out = Command::new("sh")
        .args(["-c", "sleep 30 & echo hi; echo $!"])
        .capture_stdout()
        .wait_delay(Duration::from_millis(300))
        .run()
        .unwrap();
    let elapsed = start.elapsed();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("hi"));
    let grandchild: i32 = lines.next().unwrap().parse().unwrap();
    // SAFETY: kill(2) on the sleep the shell started for this test.
    unsafe { libc::kill(grandchild, libc::SIGKILL) };
    assert!(
        elapsed < Duration::from_secs(10),
        "took {elapsed:?} (sleep 30 held the pipe)"
    );
}

#[test]
fn default_wait_delay_is_bounded() {
    sigpipe_default();
    let start = Instant::now();
    let out = Command::new("sh")
        .args(["-c", "sleep 30 & echo $!"])
        .capture_stdout()
        .run()
        .unwrap();
    let elapsed = start.elapsed();
    let grandchild: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    // SAFETY: kill(2) on the sleep the shell started for this test.
    unsafe { libc::kill(grandchild, libc::SIGKILL) };
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
}

#[test]
fn two_send_buffers_on_fds_3_and_5() {
    sigpipe_default();
    let three = pattern(128 * 1024, 3);
    let five = pattern(128 * 1024, 5);
    // fd 5 first: fd 3's writer must not block the loop meanwhile.
    let out = helper("cat-fd=5,cat-fd=3")
        .send_buffer(3, three.clone())
        .send_buffer(5, five.clone())
        .capture_stdout()
        .run()
        .unwrap();
    let mut want = five;
    want.extend_from_slice(&three);
    assert_same("stdout", &out.stdout, &want);
}

#[test]
fn send_buffer_collisions_are_build_errors() {
    let err = helper("exit=0").send_buffer(1, "x").build().unwrap_err();
    assert!(
        err.to_string().contains("child fd 1 (send_buffer)"),
        "{err}"
    );
    assert_eq!(err.build_kind(), Some(BuildErrorKind::Collision), "{err}");
    let err = helper("exit=0")
        .send_buffer(4, "x")
        .send_buffer(4, "y")
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("child fd 4 (send_buffer)"),
        "{err}"
    );
    assert_eq!(err.build_kind(), Some(BuildErrorKind::Collision), "{err}");
    let file = std::fs::File::open("/dev/null").unwrap();
    let err = helper("exit=0")
        .map_fd(file, 6)
        .send_buffer(6, "x")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("child fd 6"), "{err}");
    assert_eq!(err.build_kind(), Some(BuildErrorKind::Collision), "{err}");
    let err = helper("exit=0").send_buffer(-1, "x").build().unwrap_err();
    assert!(matches!(err, Error::Build { .. }));
    assert_eq!(err.build_kind(), Some(BuildErrorKind::Invalid), "{err}");
}

static ALARMS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_alarm(_: libc::c_int) {
    ALARMS.fetch_add(1, Ordering::Relaxed);
}

#[test]
fn sigalrm_every_100_microseconds_loses_nothing() {
    sigpipe_default();
    // SAFETY: a handler that only bumps an atomic is async-signal-safe; no
    // SA_RESTART, so every interrupted system call fails with EINTR. The
    // timer signals this thread only (SIGEV_THREAD_ID), where the loop runs.
    let timer = unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = count_alarm as extern "C" fn(libc::c_int) as usize;
        libc::sigemptyset(&mut act.sa_mask);
        act.sa_flags = 0;
        assert_eq!(
            libc::sigaction(libc::SIGALRM, &act, std::ptr::null_mut()),
            0
        );

        let mut sev: libc::sigevent = std::mem::zeroed();
        sev.sigev_notify = libc::SIGEV_THREAD_ID;
        sev.sigev_signo = libc::SIGALRM;
        sev.sigev_notify_thread_id = libc::gettid();
        let mut timer: libc::timer_t = std::mem::zeroed();
        assert_eq!(
            libc::timer_create(libc::CLOCK_MONOTONIC, &mut sev, &mut timer),
            0
        );
        let every = libc::timespec {
            tv_sec: 0,
            tv_nsec: 100_000,
        };
        let spec = libc::itimerspec {
            it_interval: every,
            it_value: every,
        };
        assert_eq!(
            libc::timer_settime(timer, 0, &spec, std::ptr::null_mut()),
            0
        );
        timer
    };
    let input = pattern(16 * MIB, 16);
    let before = ALARMS.load(Ordering::Relaxed);
    let result = helper("tee")
        .input(input.clone())
        .capture_stdout()
        .capture_stderr()
        .run();
    let alarms = ALARMS.load(Ordering::Relaxed) - before;
    // SAFETY: deletes the timer created above (which stops it).
    unsafe { libc::timer_delete(timer) };
    let out = result.unwrap();
    assert_same("stdout", &out.stdout, &input);
    assert_same("stderr", &out.stderr, &input);
    assert!(
        alarms > 10,
        "only {alarms} SIGALRMs arrived: the test proved nothing"
    );
}

#[test]
fn run_error_carries_the_captured_stderr() {
    sigpipe_default();
    let err = helper("out=fine,err=disk full\\n,exit=3")
        .capture_stdout()
        .capture_stderr()
        .run()
        .unwrap_err();
    let Error::Exit {
        status,
        stderr,
        command,
    } = &err
    else {
        panic!("not an exit error: {err}");
    };
    assert_eq!(status.code(), Some(3));
    assert_eq!(stderr, "disk full\n");
    assert!(command.contains("::out=fine,err="), "{command}");
    let msg = err.to_string();
    assert!(
        msg.contains("exited with status 3; stderr:\ndisk full"),
        "{msg}"
    );

    // Interleaved: the message shows the shared buffer's end.
    let err = helper("err=bad input\\n,exit=1")
        .capture_interleaved()
        .run()
        .unwrap_err();
    assert!(err.to_string().contains("bad input"), "{err}");

    // A long stderr is cut to its end.
    let long = "x".repeat(10_000);
    let err = Command::new("sh")
        .args(["-c", &format!("printf %s {long} >&2; echo END >&2; exit 1")])
        .capture_stderr()
        .run()
        .unwrap_err();
    let Error::Exit { stderr, .. } = &err else {
        panic!("{err}");
    };
    assert!(
        stderr.len() <= 4096 && stderr.ends_with("END\n"),
        "{} bytes",
        stderr.len()
    );

    // `output` does not check.
    let out = helper("err=e,exit=4").capture_stderr().output().unwrap();
    assert_eq!(
        (out.status.code(), out.stderr.as_slice()),
        (Some(4), &b"e"[..])
    );
}

#[test]
fn timeout_aborts_and_reaps() {
    sigpipe_default();
    let start = Instant::now();
    let err = helper("out=partial,sleep=30")
        .capture_stdout()
        .input(vec![0u8; 1024])
        .timeout(Duration::from_millis(200))
        .run()
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_no_lasting_zombies();
}

#[test]
fn spawn_failure_is_reported() {
    sigpipe_default();
    let err = Command::new("/nonexistent/program")
        .input("x")
        .capture_stdout()
        .run()
        .unwrap_err();
    assert!(matches!(err, Error::Spawn { .. }), "{err}");
    let err = helper("report")
        .capture_stdout()
        .current_dir("/nonexistent/dir")
        .run()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Spawn {
                stage: safespawn::Stage::Chdir,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn prepared_runs_again_with_fresh_buffers() {
    sigpipe_default();
    let p = helper("echo")
        .input("again\n")
        .capture_stdout()
        .build()
        .unwrap();
    for _ in 0..5 {
        assert_eq!(p.run().unwrap().stdout, b"again\n");
    }
}

#[test]
fn allocations_do_not_grow_with_the_data() {
    sigpipe_default();
    let count = |len: usize| {
        let p = helper("echo")
            .input(vec![9u8; len])
            .capture_stdout()
            .build()
            .unwrap();
        let before = allocs_so_far();
        let out = p.run().unwrap();
        let n = allocs_so_far() - before;
        assert_eq!(out.stdout.len(), len);
        n
    };
    let small = count(MIB);
    let big = count(64 * MIB);
    // 64 times the data: only the output buffer's doublings (6 more) may be
    // added; a loop that grew per chunk would make about a thousand more.
    assert!(
        big <= small + 8,
        "1 MiB: {small} allocations, 64 MiB: {big}"
    );
}

/// Like `map_fd`, a send buffer's child fd must be below RLIMIT_NOFILE: the
/// child could not place it (it used to fail only at spawn, at stage Fds).
#[test]
fn a_send_buffer_above_the_fd_limit_is_a_build_error() {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    let Ok(fd) = i32::try_from(limit) else {
        eprintln!("skipped: RLIMIT_NOFILE is unlimited here");
        return;
    };
    let err = helper("exit=0").send_buffer(fd, "x").build().unwrap_err();
    assert_eq!(err.build_kind(), Some(BuildErrorKind::Invalid), "{err}");
    assert!(err.to_string().contains("RLIMIT_NOFILE"), "{err}");
}

/// CPython's `TimeoutExpired` and Go's killed command keep what the child
/// wrote before the timeout; so does `Error::Timeout`.
#[test]
fn a_timeout_carries_the_output_captured_so_far() {
    sigpipe_default();
    let err = helper("out=partial,err=oops,sleep=30")
        .capture_stdout()
        .capture_stderr()
        .timeout(Duration::from_millis(300))
        .run()
        .unwrap_err();
    match err {
        Error::Timeout { stdout, stderr, .. } => {
            assert_eq!(stdout, b"partial");
            assert_eq!(stderr, b"oops");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_no_lasting_zombies();
}
