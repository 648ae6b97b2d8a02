//! The async API next to tokio::process on the same runtime, in one run
//! (plain binary, `harness = false`; needs `--features tokio`):
//!
//! * spawn: rounds of 1000 concurrent spawn + await of the static no-op,
//!   each in its own task: a `Prepared`'s `status_async`, a `Command`
//!   built and run each time (`Command::status_async`), and
//!   `tokio::process::Command::status()`;
//! * buffered: 256 MiB through `cat`, `Prepared<Buffered>::output_async`
//!   next to tokio's `output()` fed by a writer task.
//!
//! Rounds are interleaved (odd rounds in reverse order), on a current-thread
//! and on a two-worker runtime; a figure is the minimum over 3 repetitions
//! of the median round. Prints the table of BENCHMARKS.md's "Async"
//! section.
//!
//! `cargo bench --features tokio --bench async [-- --quick]`

mod support;

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

const CHILDREN: usize = 1000;
const SIZE: usize = 256 * 1024 * 1024;

type Method = (
    &'static str,
    Box<dyn Fn(&tokio::runtime::Runtime) -> Duration>,
);

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// `reps` repetitions of [`interleaved_once`]: per method the minimum over
/// repetitions of the median round (the interleaved benchmark's statistic).
fn interleaved(
    rt: &tokio::runtime::Runtime,
    methods: &[Method],
    rounds: usize,
    reps: usize,
) -> Vec<Duration> {
    let mut best = vec![Duration::MAX; methods.len()];
    for _ in 0..reps {
        for (b, t) in best.iter_mut().zip(interleaved_once(rt, methods, rounds)) {
            *b = (*b).min(t);
        }
    }
    best
}

/// Each method once per round, odd rounds reversed; the median per method.
fn interleaved_once(
    rt: &tokio::runtime::Runtime,
    methods: &[Method],
    rounds: usize,
) -> Vec<Duration> {
    let mut times: Vec<Vec<Duration>> = methods.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..methods.len()).collect()
        } else {
            (0..methods.len()).rev().collect()
        };
        for i in order {
            times[i].push((methods[i].1)(rt));
        }
    }
    times.into_iter().map(median).collect()
}

fn spawn_methods(noop: &std::path::Path) -> Vec<Method> {
    let prepared = Arc::new(safespawn::Command::new(noop).build().expect("build"));
    let path = Arc::new(noop.to_path_buf());
    let p2 = path.clone();
    vec![
        (
            "safespawn Prepared::status_async",
            Box::new(move |rt| {
                let p = prepared.clone();
                rt.block_on(async move {
                    let t = Instant::now();
                    let tasks: Vec<_> = (0..CHILDREN)
                        .map(|_| {
                            let p = p.clone();
                            tokio::spawn(async move { p.status_async().await })
                        })
                        .collect();
                    for task in tasks {
                        assert!(task.await.unwrap().unwrap().success());
                    }
                    t.elapsed()
                })
            }),
        ),
        (
            "safespawn Command::status_async",
            Box::new(move |rt| {
                let path = path.clone();
                rt.block_on(async move {
                    let t = Instant::now();
                    let tasks: Vec<_> = (0..CHILDREN)
                        .map(|_| {
                            let path = path.clone();
                            tokio::spawn(async move {
                                safespawn::Command::new(&*path).status_async().await
                            })
                        })
                        .collect();
                    for task in tasks {
                        assert!(task.await.unwrap().unwrap().success());
                    }
                    t.elapsed()
                })
            }),
        ),
        (
            "tokio::process status()",
            Box::new(move |rt| {
                let path = p2.clone();
                rt.block_on(async move {
                    let t = Instant::now();
                    let tasks: Vec<_> = (0..CHILDREN)
                        .map(|_| {
                            let path = path.clone();
                            tokio::spawn(async move {
                                tokio::process::Command::new(&*path).status().await
                            })
                        })
                        .collect();
                    for task in tasks {
                        assert!(task.await.unwrap().unwrap().success());
                    }
                    t.elapsed()
                })
            }),
        ),
    ]
}

async fn tokio_cat(data: Arc<Vec<u8>>) -> Vec<u8> {
    let mut child = tokio::process::Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn cat");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = tokio::spawn(async move {
        stdin.write_all(&data).await.expect("write");
    });
    let out = child.wait_with_output().await.expect("wait");
    writer.await.expect("writer task");
    assert!(out.status.success());
    out.stdout
}

fn buffered_methods(data: Arc<Vec<u8>>) -> Vec<Method> {
    let prepared = Arc::new(
        safespawn::Command::new("cat")
            .input(data.as_slice())
            .capture_stdout()
            .build()
            .expect("build"),
    );
    vec![
        (
            "safespawn output_async",
            Box::new(move |rt| {
                let p = prepared.clone();
                rt.block_on(async move {
                    let t = Instant::now();
                    let out = tokio::spawn(async move { p.output_async().await })
                        .await
                        .unwrap()
                        .unwrap();
                    let took = t.elapsed();
                    assert_eq!(out.stdout.len(), SIZE);
                    took
                })
            }),
        ),
        (
            "tokio output() + writer task",
            Box::new(move |rt| {
                let data = data.clone();
                rt.block_on(async move {
                    let t = Instant::now();
                    let out = tokio::spawn(tokio_cat(data)).await.unwrap();
                    let took = t.elapsed();
                    assert_eq!(out.len(), SIZE);
                    took
                })
            }),
        ),
    ]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var_os("SAFESPAWN_BENCH_QUICK").is_some();
    let (spawn_rounds, cat_rounds, reps) = if quick { (3, 1, 1) } else { (11, 5, 3) };
    // 1000 children at once hold 1000 pidfds (and tokio's, as many).
    let mut lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    if let Some(hard) = lim.maximum {
        lim.current = Some(hard.min(16384));
        let _ = rustix::process::setrlimit(rustix::process::Resource::Nofile, lim);
    }
    let targets = support::Targets::new();
    // `--loop N ROUNDS`: only spawn method N (0, 1, 2 as in the table) on
    // the current-thread runtime, for strace or perf; `--loop-cat N ROUNDS`
    // the same for the buffered methods (0, 1).
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--loop-cat") {
        let n: usize = args.get(i + 1).and_then(|a| a.parse().ok()).unwrap_or(0);
        let rounds: usize = args.get(i + 2).and_then(|a| a.parse().ok()).unwrap_or(3);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let data: Arc<Vec<u8>> = Arc::new((0..SIZE).map(|i| (i % 251) as u8).collect());
        let methods = buffered_methods(data);
        for _ in 0..rounds {
            let t = (methods[n].1)(&rt);
            println!("{}: {:.1} ms", methods[n].0, t.as_secs_f64() * 1e3);
        }
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--loop") {
        let n: usize = args.get(i + 1).and_then(|a| a.parse().ok()).unwrap_or(0);
        let rounds: usize = args.get(i + 2).and_then(|a| a.parse().ok()).unwrap_or(5);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let methods = spawn_methods(&targets.noop);
        for _ in 0..rounds {
            let t = (methods[n].1)(&rt);
            println!("{}: {:.1} ms", methods[n].0, t.as_secs_f64() * 1e3);
        }
        return;
    }
    if !targets.noop_is_static {
        println!("note: the static no-op is x86_64 only; spawning /bin/true instead");
    }
    let data: Arc<Vec<u8>> = Arc::new((0..SIZE).map(|i| (i % 251) as u8).collect());
    let runtimes: [(&str, tokio::runtime::Runtime); 2] = [
        (
            "current-thread",
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        ),
        (
            "multi-thread (2 workers)",
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
        ),
    ];
    println!("| runtime | what | method | median | per second | tokio time / this time |");
    println!("|---|---|---|---|---|---|");
    for (name, rt) in &runtimes {
        let methods = spawn_methods(&targets.noop);
        // Warm-up: one round each (probes, the reactor's pages, tokio's reaper).
        for m in &methods {
            (m.1)(rt);
        }
        let times = interleaved(rt, &methods, spawn_rounds, reps);
        let tokio_time = times[times.len() - 1];
        for ((label, _), t) in methods.iter().zip(&times) {
            println!(
                "| {name} | {CHILDREN} × spawn + await, static no-op | {label} | {:.1} ms | {:.0} spawns/s | {:.2} |",
                t.as_secs_f64() * 1e3,
                CHILDREN as f64 / t.as_secs_f64(),
                tokio_time.as_secs_f64() / t.as_secs_f64()
            );
        }
        let methods = buffered_methods(data.clone());
        for m in &methods {
            (m.1)(rt);
        }
        let times = interleaved(rt, &methods, cat_rounds, reps);
        let tokio_time = times[times.len() - 1];
        for ((label, _), t) in methods.iter().zip(&times) {
            println!(
                "| {name} | 256 MiB through cat | {label} | {:.1} ms | {:.0} MiB/s | {:.2} |",
                t.as_secs_f64() * 1e3,
                SIZE as f64 / (1024.0 * 1024.0) / t.as_secs_f64(),
                tokio_time.as_secs_f64() / t.as_secs_f64()
            );
        }
    }
}
