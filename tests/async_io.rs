//! The async API on async-io (feature `async-io`, for smol and async-std):
//! the scenarios of tests/async_suite, on one thread (`block_on`) and on
//! several threads at once, each with its own `block_on`.
#![cfg(feature = "async-io")]

mod common;
#[path = "async_suite/mod.rs"]
mod suite;

use std::process::ExitStatus;
use std::time::Duration;

use common::census::{allocs_so_far, CountingAlloc};
use common::helper;
use safespawn::Error;
use suite::{serial, BoxFuture};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    async_io::block_on(f)
}

/// Splits the futures over four threads, each driving its share with
/// `async_io::block_on` (async-io's reactor is shared by all of them).
async fn on_four_threads<T: Send + 'static>(futures: Vec<BoxFuture<'static, T>>) -> Vec<T> {
    let mut shares: Vec<Vec<BoxFuture<'static, T>>> = (0..4).map(|_| Vec::new()).collect();
    let n = futures.len();
    for (i, f) in futures.into_iter().enumerate() {
        shares[i * 4 / n.max(1)].push(f);
    }
    let threads: Vec<_> = shares
        .into_iter()
        .map(|share| std::thread::spawn(move || block_on(suite::join_all(share))))
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect()
}

fn cut(
    f: BoxFuture<'_, Result<ExitStatus, Error>>,
) -> BoxFuture<'_, Option<Result<ExitStatus, Error>>> {
    Box::pin(async move {
        futures_lite::future::or(async { Some(f.await) }, async {
            async_io::Timer::after(Duration::from_millis(30)).await;
            None
        })
        .await
    })
}

#[test]
fn a_thousand_children_on_one_thread() {
    let _serial = serial();
    // async-io's reactor thread, started once, is not a thread per child.
    block_on(helper("exit=0").spawn().unwrap().wait_async()).unwrap();
    let c = block_on(suite::many_children(1000, suite::join_all));
    assert!(
        c.threads_max <= c.threads_before + 1 && c.threads_after <= c.threads_before + 1,
        "threads before {}, at most {} during, {} after",
        c.threads_before,
        c.threads_max,
        c.threads_after
    );
}

#[test]
fn a_thousand_children_on_four_threads() {
    let _serial = serial();
    let c = block_on(suite::many_children(1000, on_four_threads));
    // The four driving threads themselves, and nothing per child.
    assert!(
        c.threads_after <= c.threads_before + 1,
        "{} then {}",
        c.threads_before,
        c.threads_after
    );
}

#[test]
fn a_thousand_status_async_calls_at_once() {
    let _serial = serial();
    common::census::raise_nofile(8192);
    suite::check_statuses(block_on(suite::join_all(suite::status_calls(1000))));
    suite::assert_no_zombies("status_async");
}

#[test]
fn a_cancelled_wait_loses_nothing() {
    let _serial = serial();
    block_on(suite::cancelled_waits(cut));
}

#[test]
fn abort_async_kills_a_child_that_ignores_sigterm() {
    let _serial = serial();
    block_on(suite::abort_async_kills_a_term_ignoring_child());
}

#[test]
fn direct_run_methods() {
    let _serial = serial();
    block_on(suite::direct_runs());
}

#[test]
fn buffered_async_gives_what_sync_gives() {
    let _serial = serial();
    block_on(suite::buffered_matches_sync());
}

#[test]
fn sixty_four_mib_each_way() {
    let _serial = serial();
    let (input, p) = suite::sixty_four_mib_setup();
    let (took, out) = block_on(suite::sixty_four_mib_each_way(&p));
    suite::check_sixty_four_mib(&input, &out);
    eprintln!("3 x 64 MiB in {took:?}");
}

#[test]
fn a_direct_childs_send_buffers_are_written_by_wait_async() {
    let _serial = serial();
    block_on(suite::direct_send_buffers());
}

#[test]
fn a_child_that_never_reads_its_input() {
    let _serial = serial();
    block_on(suite::child_that_never_reads());
}

#[test]
fn a_grandchild_holding_the_pipe_is_bounded_by_wait_delay() {
    let _serial = serial();
    block_on(suite::grandchild_bounded_by_wait_delay());
}

#[test]
fn a_buffered_timeout_keeps_the_output_and_reaps() {
    let _serial = serial();
    block_on(suite::buffered_timeout());
}

/// A `Direct` child's stdout as an `Async<PipeReader>`.
#[test]
fn direct_pipes_as_async_io_pipes() {
    use futures_lite::AsyncReadExt;
    let _serial = serial();
    block_on(async {
        let mut child = helper("out=hello")
            .stdout(safespawn::Stdio::piped())
            .nonblocking_pipes()
            .spawn()
            .unwrap();
        let mut stdout = async_io::Async::new(child.take_stdout().unwrap()).unwrap();
        let mut got = String::new();
        stdout.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "hello");
        assert!(child.wait_async().await.unwrap().success());
    });
}

/// As on tokio: a wait that registers the pidfd with async-io's reactor.
#[test]
fn allocations_of_an_async_wait() {
    let _serial = serial();
    let sleeper = helper("sleep=0.05").build().unwrap();
    block_on(async {
        for _ in 0..3 {
            sleeper.spawn().unwrap().wait_async().await.unwrap();
        }
        const ROUNDS: u64 = 20;
        let mut registering = 0;
        for _ in 0..ROUNDS {
            let mut child = sleeper.spawn().unwrap();
            let before = allocs_so_far();
            child.wait_async().await.unwrap();
            drop(child);
            registering += allocs_so_far() - before;
        }
        eprintln!(
            "allocations per wait_async that registers the pidfd with async-io: {:.1}",
            registering as f64 / ROUNDS as f64
        );
        assert!(
            registering <= 4 * ROUNDS,
            "{registering} allocations in {ROUNDS} waits"
        );
    });
}
