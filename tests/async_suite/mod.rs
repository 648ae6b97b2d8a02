//! The async API's scenarios, written once and run on each runtime by
//! tests/async_tokio.rs and tests/async_io.rs (and, through the fallbacks of
//! old kernels, by tests/compat_async_linux_5_2.rs). A scenario is an
//! `async fn` that only uses safespawn's async methods; the runtime is the
//! caller's. Each test takes [`serial`] first: the scenarios count this
//! process's threads, fds and zombies, which another test running beside
//! them would change.
#![allow(dead_code)]

use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, Instant};

use crate::common::census::{
    assert_same, open_fds, pattern, raise_nofile, read_in_thread, threads,
};
use crate::common::{helper, zombie_children};
use safespawn::{Command, Error, Running};

pub const MIB: usize = 1024 * 1024;

/// One scenario at a time in this process.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs every future concurrently in the calling task; their outputs in
/// order.
pub async fn join_all<T>(futures: Vec<BoxFuture<'_, T>>) -> Vec<T> {
    let mut futures: Vec<Option<BoxFuture<'_, T>>> = futures.into_iter().map(Some).collect();
    let mut outputs: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in futures.iter_mut().zip(outputs.iter_mut()) {
            if let Some(fut) = f {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *out = Some(v);
                        *f = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|o| o.unwrap()).collect()
}

/// Asserts that no zombie child is left, giving a concurrent reap (another
/// runtime's reaper) a moment.
pub fn assert_no_zombies(after: &str) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let z = zombie_children();
        if z.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "zombies {z:?} left after {after}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What [`many_children`] saw.
pub struct Census {
    pub threads_before: usize,
    pub threads_max: usize,
    pub threads_after: usize,
}

/// `n` children (the helper, sleeping 0.2 s then exiting with `i % 256`)
/// spawned, then awaited all at once with `wait_async`, each wait a future
/// handed to `join` (which runs them in one task, or spawns them as tasks
/// of a multi-threaded runtime). Checks every status, that no zombie and no
/// fd is left, and returns the thread counts: the caller's runtime is
/// running already, so a thread per child would show.
pub async fn many_children<J, F>(n: usize, join: J) -> Census
where
    J: FnOnce(Vec<BoxFuture<'static, (usize, Result<std::process::ExitStatus, Error>)>>) -> F,
    F: Future<Output = Vec<(usize, Result<std::process::ExitStatus, Error>)>>,
{
    assert!(raise_nofile(4 * n as u64 + 256) > 2 * n as u64 + 64);
    // A spawn opens what it keeps open for the process (/dev/null) once.
    let _ = helper("exit=0").spawn().unwrap().wait_async().await;
    let fds_before = open_fds();
    let threads_before = threads();
    let max = std::sync::Arc::new(AtomicUsize::new(threads_before));
    let children: Vec<Running> = (0..n)
        .map(|i| {
            helper(&format!("sleep=0.2,exit={}", i % 256))
                .spawn()
                .unwrap()
        })
        .collect();
    max.fetch_max(threads(), Ordering::Relaxed);
    let waits: Vec<BoxFuture<'static, _>> = children
        .into_iter()
        .enumerate()
        .map(|(i, mut child)| {
            let max = max.clone();
            Box::pin(async move {
                let status = child.wait_async().await;
                // Every other wait is registered by now.
                if i % 50 == 0 {
                    max.fetch_max(threads(), Ordering::Relaxed);
                }
                (i, status)
            }) as BoxFuture<'static, _>
        })
        .collect();
    let results = join(waits).await;
    assert_eq!(results.len(), n);
    for (i, status) in results {
        let status = status.unwrap();
        assert_eq!(
            status.code(),
            Some((i % 256) as i32),
            "child {i}: {status:?}"
        );
    }
    assert_no_zombies("many children");
    assert_eq!(open_fds(), fds_before, "fds left after {n} children");
    Census {
        threads_before,
        threads_max: max.load(Ordering::Relaxed),
        threads_after: threads(),
    }
}

/// `n` `status_async` calls at once (spawn and wait each), statuses right.
pub fn status_calls(
    n: usize,
) -> Vec<BoxFuture<'static, (usize, Result<std::process::ExitStatus, Error>)>> {
    (0..n)
        .map(|i| {
            Box::pin(async move {
                let cmd = helper(&format!("exit={}", i % 256));
                (i, cmd.status_async().await)
            }) as BoxFuture<'static, _>
        })
        .collect()
}

/// Checks what [`status_calls`] returned.
pub fn check_statuses(results: Vec<(usize, Result<std::process::ExitStatus, Error>)>) {
    for (i, status) in results {
        assert_eq!(status.unwrap().code(), Some((i % 256) as i32), "call {i}");
    }
}

/// A `wait_async` cut short (by `cut`, a timeout around the wait) loses
/// nothing: waited again async, waited sync, or dropped, no zombie either
/// way.
pub async fn cancelled_waits<C>(cut: C)
where
    C: for<'a> Fn(
        BoxFuture<'a, Result<std::process::ExitStatus, Error>>,
    ) -> BoxFuture<'a, Option<Result<std::process::ExitStatus, Error>>>,
{
    // Again async.
    let mut child = helper("sleep=0.3,exit=7").spawn().unwrap();
    assert!(cut(Box::pin(child.wait_async())).await.is_none());
    assert!(cut(Box::pin(child.wait_async())).await.is_none());
    assert_eq!(child.wait_async().await.unwrap().code(), Some(7));
    // The same status again, and the sync wait agrees.
    assert_eq!(child.wait_async().await.unwrap().code(), Some(7));
    assert_eq!(child.wait().unwrap().code(), Some(7));
    // Then sync.
    let mut child = helper("sleep=0.3,exit=8").spawn().unwrap();
    assert!(cut(Box::pin(child.wait_async())).await.is_none());
    assert_eq!(child.wait().unwrap().code(), Some(8));
    // Then try_wait and wait_timeout.
    let mut child = helper("sleep=0.3,exit=9").spawn().unwrap();
    assert!(cut(Box::pin(child.wait_async())).await.is_none());
    let st = child
        .wait_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap();
    assert_eq!(st.code(), Some(9));
    // Then dropped: killed and reaped.
    let mut child = helper("sleep=30").spawn().unwrap();
    let pid = child.pid();
    assert!(cut(Box::pin(child.wait_async())).await.is_none());
    drop(child);
    assert!(
        crate::common::stat_fields(pid).is_empty(),
        "child {pid} still there"
    );
    assert_no_zombies("a cancelled wait, then drop");
    // Then aborted async.
    let mut child = helper("sleep=30").spawn().unwrap();
    assert!(cut(Box::pin(child.wait_async())).await.is_none());
    assert_eq!(child.abort_async().await.unwrap().signal(), Some(15));
    assert_no_zombies("a cancelled wait, then abort_async");
}

/// `abort_async` on a child that ignores SIGTERM: the grace, then KILL.
pub async fn abort_async_kills_a_term_ignoring_child() {
    let child = Command::new("sh")
        .args(["-c", "trap '' TERM; while :; do sleep 0.01; done"])
        .spawn()
        .unwrap();
    // Let the shell set its trap.
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    let f = child.abort_async().await.unwrap();
    assert_eq!(f.signal(), Some(9));
    assert!(
        start.elapsed() >= Duration::from_millis(90),
        "{:?}",
        start.elapsed()
    );
    assert_no_zombies("abort_async");
}

/// The async run methods of `Direct`: status, run's check, timeout.
pub async fn direct_runs() {
    let p = helper("exit=3").build().unwrap();
    assert_eq!(p.status_async().await.unwrap().code(), Some(3));
    let err = p.run_async().await.unwrap_err();
    assert!(err.to_string().ends_with("exited with status 3"), "{err}");
    assert!(Command::new("true").run_async().await.unwrap().success());
    let start = Instant::now();
    let err = helper("sleep=30")
        .timeout(Duration::from_millis(100))
        .status_async()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_no_zombies("a timeout");
    let err = Command::new("/nonexistent/program")
        .status_async()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Spawn { .. }), "{err}");
    // A killed child.
    let child = helper("sleep=30").spawn().unwrap();
    child.signal(safespawn::Signal::KILL).unwrap();
    let mut child = child;
    assert_eq!(child.wait_async().await.unwrap().signal(), Some(9));
}

/// Buffered mode async gives what sync gives, for a set of commands that
/// cover each stream kind and ending.
pub async fn buffered_matches_sync() {
    let three = pattern(128 * 1024, 3);
    let five = pattern(128 * 1024, 5);
    let cases: Vec<(&str, safespawn::Prepared<safespawn::Buffered>)> = vec![
        (
            "separate buffers",
            helper("echo-both")
                .input("Hello World\n")
                .capture_stdout()
                .capture_stderr()
                .build()
                .unwrap(),
        ),
        (
            "interleaved",
            helper("out=Hello,err= World,out=\\n,err=Hello,out= World\\n")
                .capture_interleaved()
                .build()
                .unwrap(),
        ),
        (
            "nul bytes",
            helper("echo")
                .input(&b"a\0b\0\0"[..])
                .capture_stdout()
                .build()
                .unwrap(),
        ),
        (
            "stdin only",
            helper("drain,exit=4")
                .input(vec![1u8; 300_000])
                .build()
                .unwrap(),
        ),
        (
            "send buffers",
            helper("cat-fd=5,cat-fd=3")
                .send_buffer(3, three)
                .send_buffer(5, five)
                .capture_stdout()
                .build()
                .unwrap(),
        ),
        (
            "closed stdin",
            helper("close-stdin,sleep=0.05,out=closed")
                .input(vec![0x5a; 8 * MIB])
                .capture_stdout()
                .build()
                .unwrap(),
        ),
        (
            "failure",
            helper("out=fine,err=disk full\\n,exit=3")
                .capture_stdout()
                .capture_stderr()
                .build()
                .unwrap(),
        ),
        (
            "empty input",
            helper("echo").input("").capture_stdout().build().unwrap(),
        ),
    ];
    for (what, p) in &cases {
        let sync = p.output().unwrap();
        let asy = p.output_async().await.unwrap();
        assert_eq!(asy.status, sync.status, "{what}: status");
        assert_same(&format!("{what}: stdout"), &asy.stdout, &sync.stdout);
        assert_same(&format!("{what}: stderr"), &asy.stderr, &sync.stderr);
        let (s, a) = (
            p.run().map_err(|e| e.to_string()),
            p.run_async().await.map_err(|e| e.to_string()),
        );
        assert_eq!(a.map(|o| o.stdout), s.map(|o| o.stdout), "{what}: run");
    }
    let err = Command::new("/nonexistent/program")
        .input("x")
        .capture_stdout()
        .output_async()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Spawn { .. }), "{err}");
    assert_no_zombies("buffered runs");
}

/// The input and the command of [`sixty_four_mib_each_way`], made before
/// anything is timed (a debug build takes a while to make 64 MiB).
pub fn sixty_four_mib_setup() -> (Vec<u8>, safespawn::Prepared<safespawn::Buffered>) {
    let input = pattern(64 * MIB, 0x5eed);
    let p = helper("tee")
        .input(input.clone())
        .capture_stdout()
        .capture_stderr()
        .build()
        .unwrap();
    (input, p)
}

/// 64 MiB in, 64 MiB out and 64 MiB err at once; returns how long the run
/// took and its output.
pub async fn sixty_four_mib_each_way(
    p: &safespawn::Prepared<safespawn::Buffered>,
) -> (Duration, safespawn::Output) {
    let start = Instant::now();
    let out = p.run_async().await.unwrap();
    (start.elapsed(), out)
}

/// Checks what [`sixty_four_mib_each_way`] returned.
pub fn check_sixty_four_mib(input: &[u8], out: &safespawn::Output) {
    assert_same("stdout", &out.stdout, input);
    assert_same("stderr", &out.stderr, input);
}

/// A child that exits without reading its input: EPIPE ends the writing,
/// the long `wait_delay` is not waited out.
pub async fn child_that_never_reads() {
    let start = Instant::now();
    let out = helper("exit=0")
        .input(vec![1u8; 8 * MIB])
        .capture_stdout()
        .wait_delay(Duration::from_secs(60))
        .run_async()
        .await
        .unwrap();
    assert!(out.status.success() && out.stdout.is_empty());
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    let out = helper("exit=0")
        .capture_stdout()
        .send_buffer(3, vec![2u8; 4 * MIB])
        .run_async()
        .await
        .unwrap();
    assert!(out.status.success());
    // Direct mode: the rest of the buffer, for `wait_async`, ends with the
    // child, not an error (nor a SIGPIPE for this process).
    let finished = helper("exit=0")
        .send_buffer(3, vec![2u8; 4 * MIB])
        .run_async()
        .await
        .unwrap();
    assert!(finished.success());
}

/// A `Direct` child's send buffers, larger than their pipes: `spawn`
/// writes what fits, `wait_async` the rest on the reactor (a thread reads
/// the child's stdout meanwhile). Every byte arrives, and no fd is left
/// behind.
pub async fn direct_send_buffers() {
    let fds_before = open_fds();
    let three = pattern(3 * MIB, 3);
    let five = pattern(5 * MIB + 7, 5);
    let mut child = helper("cat-fd=5,cat-fd=3")
        .send_buffer(3, three.clone())
        .send_buffer(5, five.clone())
        .stdout(safespawn::Stdio::piped())
        .spawn()
        .unwrap();
    let reader = read_in_thread(child.take_stdout().unwrap());
    assert!(child.wait_async().await.unwrap().success());
    let got = reader.join().unwrap();
    let mut want = five;
    want.extend_from_slice(&three);
    assert_same("stdout", &got, &want);
    drop(child);
    assert_eq!(open_fds(), fds_before, "an fd was left behind");
}

/// A grandchild holding the pipe: bounded by `wait_delay`.
pub async fn grandchild_bounded_by_wait_delay() {
    let start = Instant::now();
    let out = Command::new("sh")
        .args(["-c", "sleep 30 & echo hi; echo $!"])
        .capture_stdout()
        .wait_delay(Duration::from_millis(300))
        .run_async()
        .await
        .unwrap();
    let elapsed = start.elapsed();
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("hi"));
    let grandchild: i32 = lines.next().unwrap().parse().unwrap();
    // SAFETY: kill(2) on the sleep the shell started for this test.
    unsafe { libc::kill(grandchild, libc::SIGKILL) };
    assert!(
        elapsed >= Duration::from_millis(250),
        "{elapsed:?}: wait_delay not waited"
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "{elapsed:?}: sleep 30 held the pipe"
    );
}

/// `.timeout` on a buffered async run: `Error::Timeout` with what was
/// captured, the child reaped.
pub async fn buffered_timeout() {
    let start = Instant::now();
    let err = helper("out=partial,err=oops,sleep=30")
        .capture_stdout()
        .capture_stderr()
        .input(vec![0u8; 1024])
        .timeout(Duration::from_millis(300))
        .run_async()
        .await
        .unwrap_err();
    match err {
        Error::Timeout {
            stdout,
            stderr,
            timeout,
            ..
        } => {
            assert_eq!(stdout, b"partial");
            assert_eq!(stderr, b"oops");
            assert_eq!(timeout, Duration::from_millis(300));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_no_zombies("a buffered timeout");
}
