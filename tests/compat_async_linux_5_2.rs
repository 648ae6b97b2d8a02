//! The async API through the fallback of kernels whose pidfds cannot be
//! polled (Linux 5.2, emulated with `safespawn::__compat::LINUX_5_2`): the
//! waits sleep on the runtime's timer (1 ms doubling to 10 ms) between
//! non-blocking `waitid` calls. A test binary of its own: the emulation is
//! process-wide.
#![cfg(feature = "tokio")]

mod common;
#[path = "async_suite/mod.rs"]
mod suite;

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use common::helper;
use safespawn::Error;
use suite::{serial, BoxFuture};

fn setup() -> tokio::runtime::Runtime {
    safespawn::__force_compat(safespawn::__compat::LINUX_5_2);
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
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

#[test]
fn wait_async_backs_off_on_the_timer() {
    let _serial = serial();
    let rt = setup();
    rt.block_on(async {
        let mut child = helper("sleep=0.1,exit=6").spawn().unwrap();
        let start = Instant::now();
        assert_eq!(child.wait_async().await.unwrap().code(), Some(6));
        let took = start.elapsed();
        // Seen within a backoff step (10 ms) or so of the exit.
        assert!(took < Duration::from_secs(2), "{took:?}");
        // Many at once.
        let census = suite::many_children(200, suite::join_all).await;
        assert!(census.threads_max <= census.threads_before + 1);
    });
}

#[test]
fn a_cancelled_wait_loses_nothing() {
    let _serial = serial();
    setup().block_on(suite::cancelled_waits(cut));
}

#[test]
fn direct_and_buffered_runs() {
    let _serial = serial();
    let rt = setup();
    rt.block_on(suite::direct_runs());
    rt.block_on(suite::direct_send_buffers());
    rt.block_on(suite::buffered_matches_sync());
    rt.block_on(suite::buffered_timeout());
    rt.block_on(suite::grandchild_bounded_by_wait_delay());
    rt.block_on(suite::abort_async_kills_a_term_ignoring_child());
}
