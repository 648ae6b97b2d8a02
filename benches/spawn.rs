//! Criterion benchmarks of spawn + reap: safespawn (`Prepared::status`, a
//! `Command` built each time) against `std::process` (posix_spawn path and
//! the fork path of `pre_exec`) and a raw `clone(CLONE_VM | CLONE_VFORK)` +
//! execve, under several parent conditions. Criterion runs groups one after
//! another; for ratios on a drifting machine use `benches/interleaved.rs`.
//!
//! ```text
//! cargo bench --bench spawn                # everything (8 GiB section included)
//! cargo bench --bench spawn -- empty       # one group
//! ```

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use support::methods;

#[global_allocator]
static ALLOC: support::CountingAlloc = support::CountingAlloc;

/// The non-fork methods on the static no-op target, in group `name`.
fn non_fork(c: &mut Criterion, name: &str, targets: &support::Targets, samples: usize) {
    let mut g = c.benchmark_group(name);
    g.sample_size(samples.max(10));
    g.measurement_time(Duration::from_secs(3));
    let noop = &targets.noop;
    let prepared = methods::prepared(noop);
    let mut raw = support::RawClone::new(noop);
    g.bench_function("raw_clone", |b| b.iter(|| assert_eq!(raw.run(), 0)));
    g.bench_function("safespawn_prepared", |b| {
        b.iter(|| methods::safespawn_prepared(&prepared))
    });
    g.bench_function("safespawn_command", |b| {
        b.iter(|| methods::safespawn_command(noop))
    });
    g.bench_function("std_status", |b| b.iter(|| methods::std_status(noop)));
    g.finish();
}

fn fork_path(c: &mut Criterion, name: &str, targets: &support::Targets, seconds: u64) {
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(seconds));
    let noop = &targets.noop;
    g.bench_function("std_pre_exec", |b| b.iter(|| methods::std_pre_exec(noop)));
    g.finish();
}

fn empty_parent(c: &mut Criterion) {
    let targets = support::Targets::new();
    non_fork(c, "empty", &targets, 100);
    fork_path(c, "empty", &targets, 3);
    let mut g = c.benchmark_group("bin_true");
    let bt = &targets.bin_true;
    let prepared = methods::prepared(bt);
    let mut raw = support::RawClone::new(bt);
    g.bench_function("raw_clone", |b| b.iter(|| assert_eq!(raw.run(), 0)));
    g.bench_function("safespawn_prepared", |b| {
        b.iter(|| methods::safespawn_prepared(&prepared))
    });
    g.bench_function("std_status", |b| b.iter(|| methods::std_status(bt)));
    g.finish();
}

/// Touched parent memory: the vfork-style methods stay flat, fork grows.
/// Fork samples are capped (154 ms each at 8 GiB) and the memory is freed
/// before the next section.
fn big_parent(c: &mut Criterion) {
    let targets = support::Targets::new();
    for (mib, fork_secs) in [(2048usize, 5u64), (8192, 20)] {
        let ballast = support::Ballast::new(mib);
        non_fork(c, &format!("parent_{mib}MiB"), &targets, 100);
        fork_path(c, &format!("parent_{mib}MiB"), &targets, fork_secs);
        drop(ballast);
    }
}

fn busy_threads(c: &mut Criterion) {
    let targets = support::Targets::new();
    let busy = support::BusyThreads::new(8);
    non_fork(c, "busy_8_threads", &targets, 50);
    drop(busy);
}

/// Inherited fds: the child closes them all (close_range); the raw
/// baseline with and without `close_range(3, ~0)` shows what cleanup costs.
fn open_fds(c: &mut Criterion) {
    let targets = support::Targets::new();
    for n in [0usize, 1000] {
        let fds = support::OpenFds::new(n);
        let mut g = c.benchmark_group("open_fds");
        let noop = &targets.noop;
        let prepared = methods::prepared(noop);
        let mut raw = support::RawClone::new(noop);
        g.bench_with_input(BenchmarkId::new("raw_clone", n), &n, |b, _| {
            b.iter(|| assert_eq!(raw.run(), 0))
        });
        g.bench_with_input(BenchmarkId::new("raw_clone_close_range", n), &n, |b, _| {
            b.iter(|| assert_eq!(raw.run_closing_fds(), 0))
        });
        g.bench_with_input(BenchmarkId::new("safespawn_prepared", n), &n, |b, _| {
            b.iter(|| methods::safespawn_prepared(&prepared))
        });
        g.bench_with_input(BenchmarkId::new("std_status", n), &n, |b, _| {
            b.iter(|| methods::std_status(noop))
        });
        g.finish();
        drop(fds);
    }
}

/// Not a timing: heap allocations per spawn, wait and abort, printed (must
/// be 0) before the timed groups.
fn allocations(_: &mut Criterion) {
    let targets = support::Targets::new();
    assert_eq!(
        support::spawn_path_allocations(&targets),
        [0; 4],
        "the spawn path must not allocate"
    );
}

criterion_group!(
    benches,
    allocations,
    empty_parent,
    open_fds,
    busy_threads,
    big_parent
);
criterion_main!(benches);
