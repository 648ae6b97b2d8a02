//! The async API on tokio (feature `tokio`): the scenarios of
//! tests/async_suite on current-thread and multi-threaded runtimes, a
//! ticker that must keep ticking through a 3 × 64 MiB buffered run,
//! tokio::process side by side, async pipes of a `Direct` child, and the
//! allocations of an async wait.
#![cfg(feature = "tokio")]

mod common;
#[path = "async_suite/mod.rs"]
mod suite;

use std::future::Future;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::census::{allocs_so_far, CountingAlloc};
use common::helper;
use safespawn::{Command, Error, Stdio};
use suite::{serial, BoxFuture};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs each future as a task of the current (multi-threaded) runtime.
async fn as_tasks<T: Send + 'static>(futures: Vec<BoxFuture<'static, T>>) -> Vec<T> {
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

fn cut(
    f: BoxFuture<'_, Result<ExitStatus, Error>>,
) -> BoxFuture<'_, Option<Result<ExitStatus, Error>>> {
    Box::pin(async move {
        tokio::time::timeout(Duration::from_millis(30), f)
            .await
            .ok()
    })
}

fn no_thread_per_child(c: &suite::Census) {
    // Nothing but the runtime's own threads, which exist already.
    assert!(
        c.threads_max <= c.threads_before + 2 && c.threads_after <= c.threads_before + 2,
        "threads before {}, at most {} during, {} after",
        c.threads_before,
        c.threads_max,
        c.threads_after
    );
}

#[test]
fn a_thousand_children_on_a_current_thread_runtime() {
    let _serial = serial();
    let census = current_thread().block_on(suite::many_children(1000, suite::join_all));
    no_thread_per_child(&census);
}

#[test]
fn a_thousand_children_on_a_multi_threaded_runtime() {
    let _serial = serial();
    let census = multi_thread().block_on(suite::many_children(1000, as_tasks));
    no_thread_per_child(&census);
}

#[test]
fn a_thousand_status_async_calls_at_once() {
    let _serial = serial();
    common::census::raise_nofile(8192);
    let results = multi_thread().block_on(as_tasks(suite::status_calls(1000)));
    suite::check_statuses(results);
    suite::assert_no_zombies("status_async");
    let results = current_thread().block_on(suite::join_all(suite::status_calls(300)));
    suite::check_statuses(results);
}

#[test]
fn a_cancelled_wait_loses_nothing() {
    let _serial = serial();
    current_thread().block_on(suite::cancelled_waits(cut));
    multi_thread().block_on(suite::cancelled_waits(cut));
}

#[test]
fn abort_async_kills_a_child_that_ignores_sigterm() {
    let _serial = serial();
    current_thread().block_on(suite::abort_async_kills_a_term_ignoring_child());
}

#[test]
fn direct_run_methods() {
    let _serial = serial();
    current_thread().block_on(suite::direct_runs());
}

#[test]
fn buffered_async_gives_what_sync_gives() {
    let _serial = serial();
    current_thread().block_on(suite::buffered_matches_sync());
    multi_thread().block_on(suite::buffered_matches_sync());
}

/// A task on the same current-thread runtime ticks every millisecond; the
/// run must let it: count the ticks and the longest gap between two.
async fn with_ticker<F: Future>(f: F) -> (F::Output, usize, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = tokio::spawn({
        let stop = stop.clone();
        async move {
            let (mut ticks, mut gap, mut last) = (0usize, Duration::ZERO, Instant::now());
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(1)).await;
                ticks += 1;
                gap = gap.max(last.elapsed());
                last = Instant::now();
            }
            (ticks, gap)
        }
    });
    // Let the ticker start.
    tokio::task::yield_now().await;
    let out = f.await;
    stop.store(true, Ordering::Relaxed);
    let (ticks, gap) = ticker.await.unwrap();
    (out, ticks, gap)
}

#[test]
fn sixty_four_mib_each_way_while_another_task_ticks() {
    let _serial = serial();
    let (input, p) = suite::sixty_four_mib_setup();
    let ((took, out), ticks, gap) =
        current_thread().block_on(with_ticker(suite::sixty_four_mib_each_way(&p)));
    suite::check_sixty_four_mib(&input, &out);
    eprintln!("3 x 64 MiB in {took:?}; {ticks} ticks, longest gap {gap:?}");
    // A driver that held the thread for the whole run would leave the
    // ticker at a tick or two, with one gap as long as the run; how many
    // ticks a loaded machine grants is not the point, the gaps are.
    assert!(ticks >= 5, "{ticks} ticks in {took:?}");
    assert!(
        gap < Duration::from_millis(500),
        "the ticker stalled for {gap:?}"
    );
}

#[test]
fn a_direct_childs_send_buffers_are_written_by_wait_async() {
    let _serial = serial();
    current_thread().block_on(suite::direct_send_buffers());
}

#[test]
fn a_child_that_never_reads_its_input() {
    let _serial = serial();
    current_thread().block_on(suite::child_that_never_reads());
}

#[test]
fn a_grandchild_holding_the_pipe_is_bounded_by_wait_delay() {
    let _serial = serial();
    let (_, ticks, _) =
        current_thread().block_on(with_ticker(suite::grandchild_bounded_by_wait_delay()));
    // The drain waits on the reactor, not on the thread.
    assert!(ticks >= 10, "{ticks} ticks during a 300 ms drain");
}

#[test]
fn a_buffered_timeout_keeps_the_output_and_reaps() {
    let _serial = serial();
    current_thread().block_on(suite::buffered_timeout());
}

/// tokio::process (its pidfd reaper, and the SIGCHLD-driven orphan queue a
/// dropped child goes to) in the same process: neither side reaps the
/// other's children, and both get the right statuses.
#[test]
fn tokio_process_side_by_side() {
    let _serial = serial();
    multi_thread().block_on(async {
        // A SIGCHLD listener is installed, as tokio's orphan reaper does.
        let mut sigchld =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child()).unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..100i32 {
            let code = i % 100 + 1;
            tasks.spawn(async move {
                let st = tokio::process::Command::new("sh")
                    .args(["-c", &format!("sleep 0.0{}; exit {code}", i % 10)])
                    .status()
                    .await
                    .unwrap();
                assert_eq!(st.code(), Some(code), "tokio child {i}");
            });
            tasks.spawn(async move {
                let st = helper(&format!("sleep=0.0{},exit={}", i % 10, code + 100))
                    .status_async()
                    .await
                    .unwrap();
                assert_eq!(st.code(), Some(code + 100), "safespawn child {i}");
            });
            if i % 10 == 0 {
                // Dropped unfinished with kill_on_drop: tokio reaps it later.
                let c = tokio::process::Command::new("sleep")
                    .arg("5")
                    .kill_on_drop(true)
                    .spawn()
                    .unwrap();
                drop(c);
            }
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        let _ = tokio::time::timeout(Duration::from_millis(10), sigchld.recv()).await;
    });
    suite::assert_no_zombies("tokio::process side by side");
}

/// A `Direct` child's pipes as tokio's pipe types.
#[test]
fn direct_pipes_as_tokio_pipes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::unix::pipe;
    let _serial = serial();
    current_thread().block_on(async {
        let mut child = helper("echo")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .nonblocking_pipes()
            .spawn()
            .unwrap();
        let mut stdin = pipe::Sender::from_owned_fd(child.take_stdin().unwrap().into()).unwrap();
        let mut stdout =
            pipe::Receiver::from_owned_fd(child.take_stdout().unwrap().into()).unwrap();
        let data = common::census::pattern(4 * suite::MIB, 9);
        let (written, read) = tokio::join!(
            async {
                stdin.write_all(&data).await.unwrap();
                drop(stdin);
            },
            async {
                let mut got = Vec::new();
                stdout.read_to_end(&mut got).await.unwrap();
                got
            }
        );
        let () = written;
        common::census::assert_same("stdout", &read, &data);
        assert!(child.wait_async().await.unwrap().success());
    });
}

/// Allocations of the async paths (the counter is per thread, and a
/// current-thread runtime polls everything on this one): the sync spawn
/// still allocates nothing; waiting for a child that has already exited
/// allocates nothing either; a wait that has to register the pidfd costs
/// the reactor's registration.
#[test]
fn allocations_of_an_async_wait() {
    let _serial = serial();
    let rt = current_thread();
    let plain = Command::new("true").build().unwrap();
    let sleeper = helper("sleep=0.05").build().unwrap();
    rt.block_on(async {
        // Warm-up: probes, the reactor's first registration pages.
        for _ in 0..3 {
            sleeper.spawn().unwrap().wait_async().await.unwrap();
            plain.status_async().await.unwrap();
        }
        let mut spawn = 0;
        let mut exited = 0;
        let mut registering = 0;
        let mut status_async = 0;
        const ROUNDS: u64 = 20;
        for _ in 0..ROUNDS {
            let before = allocs_so_far();
            let mut child = plain.spawn().unwrap();
            spawn += allocs_so_far() - before;
            // Exited by then, not reaped.
            std::thread::sleep(Duration::from_millis(20));
            let before = allocs_so_far();
            child.wait_async().await.unwrap();
            exited += allocs_so_far() - before;
            drop(child);

            let mut child = sleeper.spawn().unwrap();
            let before = allocs_so_far();
            child.wait_async().await.unwrap();
            drop(child);
            registering += allocs_so_far() - before;

            let before = allocs_so_far();
            plain.status_async().await.unwrap();
            status_async += allocs_so_far() - before;
        }
        eprintln!(
            "allocations per call, mean of {ROUNDS}: spawn {}, wait_async of an exited child {}, \
             wait_async that registers the pidfd {:.1}, status_async {:.1}",
            spawn / ROUNDS,
            exited / ROUNDS,
            registering as f64 / ROUNDS as f64,
            status_async as f64 / ROUNDS as f64,
        );
        assert_eq!(spawn, 0, "the spawn allocates");
        assert_eq!(exited, 0, "waiting for an exited child allocates");
        assert!(
            registering <= 2 * ROUNDS,
            "{registering} allocations in {ROUNDS} waits"
        );
        assert!(
            status_async <= 2 * ROUNDS,
            "{status_async} allocations in {ROUNDS} calls"
        );
    });
}

/// With both features, a call outside any tokio runtime runs on async-io;
/// with tokio alone it is an error, not a panic.
#[test]
fn outside_a_tokio_runtime() {
    let _serial = serial();
    let mut child = helper("sleep=0.2,exit=5").spawn().unwrap();
    let got = futures_lite::future::block_on(child.wait_async());
    if cfg!(feature = "async-io") {
        assert_eq!(got.unwrap().code(), Some(5));
    } else {
        let err = got.unwrap_err();
        assert!(err.to_string().contains("tokio runtime"), "{err}");
        assert_eq!(child.wait().unwrap().code(), Some(5));
    }
}

/// A child whose wait began on one runtime, which then shut down, is
/// waited on another: the registration is made anew.
#[test]
fn a_wait_moves_to_another_runtime() {
    let _serial = serial();
    let mut child = helper("sleep=0.3,exit=4").spawn().unwrap();
    let first = current_thread();
    let cut_short = first.block_on(async {
        tokio::time::timeout(Duration::from_millis(20), child.wait_async())
            .await
            .is_err()
    });
    assert!(cut_short);
    drop(first);
    let status = multi_thread().block_on(child.wait_async()).unwrap();
    assert_eq!(status.code(), Some(4));
}
