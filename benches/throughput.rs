//! Throughput of a buffered run: 256 MiB through `cat` (stdin -> stdout),
//! with safespawn's `run` and with `std::process::Command::output()` plus a
//! writer thread (the usual way to feed and capture with std), in one run.
//! After criterion's report, a short interleaved timing prints the ratio.

use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};

const SIZE: usize = 256 * 1024 * 1024;

fn input() -> Arc<Vec<u8>> {
    Arc::new((0..SIZE).map(|i| (i % 251) as u8).collect())
}

/// std: spawn with piped stdin/stdout, a thread writes, `wait_with_output` reads.
fn std_cat(data: &Arc<Vec<u8>>) -> Vec<u8> {
    let mut child = std::process::Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn cat");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = Arc::clone(data);
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("wait");
    writer.join().expect("writer thread").expect("write");
    assert!(out.status.success());
    out.stdout
}

fn safespawn_cat(p: &safespawn::Prepared<safespawn::Buffered>) -> Vec<u8> {
    p.run().expect("run cat").stdout
}

fn bench(
    c: &mut Criterion,
    data: &Arc<Vec<u8>>,
    prepared: &safespawn::Prepared<safespawn::Buffered>,
) {
    let mut g = c.benchmark_group("cat_256MiB");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.bench_function(BenchmarkId::new("safespawn_run", SIZE), |b| {
        b.iter(|| assert_eq!(safespawn_cat(prepared).len(), SIZE))
    });
    g.bench_function(BenchmarkId::new("std_output_writer_thread", SIZE), |b| {
        b.iter(|| assert_eq!(std_cat(data).len(), SIZE))
    });
    g.finish();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let data = input();
    let prepared = safespawn::Command::new("cat")
        .input(data.as_slice())
        .capture_stdout()
        .build()
        .expect("build");
    // Same bytes out as in, once, before timing anything.
    assert!(safespawn_cat(&prepared) == *data);
    assert!(std_cat(&data) == *data);

    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, &data, &prepared);
    c.final_summary();

    // Interleaved rounds, so both see the same machine load.
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let t = Instant::now();
        safespawn_cat(&prepared);
        ours.push(t.elapsed());
        let t = Instant::now();
        std_cat(&data);
        theirs.push(t.elapsed());
    }
    let (ours, theirs) = (median(ours), median(theirs));
    let mibs = |d: Duration| SIZE as f64 / (1024.0 * 1024.0) / d.as_secs_f64();
    println!(
        "cat 256 MiB, median of 7: safespawn run {:?} ({:.0} MiB/s), std output+thread {:?} ({:.0} MiB/s); std/safespawn time ratio {:.2}",
        ours,
        mibs(ours),
        theirs,
        mibs(theirs),
        theirs.as_secs_f64() / ours.as_secs_f64()
    );
}
