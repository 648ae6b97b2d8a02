//! Interleaved spawn benchmark: every method runs once per round, in
//! alternating order (A B C, C B A, ...), so the drift of a shared machine
//! hits every method alike. Each section runs in its own process (fork-based
//! methods apart from the others, see BENCHMARKS.md), three repetitions; a
//! figure is the minimum over repetitions of the per-repetition median.
//!
//! ```text
//! cargo bench --bench interleaved              # full run (~4 minutes)
//! cargo bench --bench interleaved -- --quick   # smoke run (seconds); or SAFESPAWN_BENCH_QUICK=1
//! cargo bench --bench interleaved -- --loop prepared 20000   # one method in a loop (strace, callgrind)
//! cargo bench --bench interleaved -- --section sandbox        # one section (here: the sandbox)
//! cargo bench --bench interleaved -- --section landlock       # the cost of a landlocked spawn
//! cargo bench --bench interleaved -- --section seccomp        # the cost of a seccomp filter
//! cargo bench --bench interleaved -- --sandbox-phases 200     # where the sandbox floor's time goes
//! cargo bench --bench interleaved -- --section knobs          # every process knob and label at once
//! ```
//!
//! The `sandbox` section compares bubblewrap (`apt-get install bubblewrap`;
//! without `bwrap` on PATH the section says it skipped it) and needs
//! unprivileged user namespaces (without them it skips its sandbox methods).
//!
//! The `cgroup` section spawns into a cgroup v2 directory it creates (root
//! only; without root or a cgroup v2 mount it skips its cgroup methods):
//! `prepared_cgroup` is placed by the kernel (`CLONE_INTO_CGROUP`),
//! `prepared_cgroup_write` by the child's own write to `cgroup.procs` (the
//! path of kernels before 5.7, built with the test-only compat flag), next
//! to the unconfined `prepared`.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use support::methods;

#[global_allocator]
static ALLOC: support::CountingAlloc = support::CountingAlloc;

/// One section: the parent's condition and the methods it compares.
struct Section {
    name: &'static str,
    mem_mib: usize,
    threads: usize,
    fds: usize,
    methods: &'static [&'static str],
    /// Samples per repetition (full run).
    rounds: usize,
}

const V_STATIC: &[&str] = &["raw", "prepared", "command", "std"];
const F_STATIC: &[&str] = &["std_pre_exec"];
/// The sandbox (see `support::sandbox`): the raw floor, the unconfined
/// safespawn spawn, bwrap, and safespawn's sandbox.
const SANDBOX: &[&str] = &[
    "raw_sandbox",
    "prepared",
    "bwrap",
    "prepared_sandbox",
    "command_sandbox",
];
/// Every process knob and label at once, next to the unconfined spawn.
const KNOBS: &[&str] = &["prepared", "prepared_knobs"];
/// Landlock: the unconfined spawn and the same one landlocked (see
/// `support::methods::prepared_landlock`).
const LANDLOCK: &[&str] = &["prepared", "prepared_landlock"];
/// Placement in a cgroup: by clone3, by the child's write, and unconfined.
const CGROUP: &[&str] = &["prepared", "prepared_cgroup", "prepared_cgroup_write"];
/// Every confinement at once: the unconfined spawn, the sandbox alone, and
/// the sandbox with seccomp, landlock, the knobs and (as root) a cgroup.
const EVERYTHING: &[&str] = &["prepared", "prepared_sandbox", "prepared_everything"];
/// Seccomp filters (`support::methods::DENY` and `ALLOW`) next to the
/// unconfined spawn: the cost of compiling nothing (done at build) and
/// installing the filter in the child, and of the filtered exec.
const SECCOMP: &[&str] = &["prepared", "prepared_seccomp", "prepared_seccomp_allow"];

fn sections(quick: bool) -> Vec<Section> {
    // The quick run keeps the shape with small parents and few samples.
    let (m2, m8) = if quick { (64, 256) } else { (2048, 8192) };
    let s = |name, mem_mib, threads, fds, methods, rounds| Section {
        name,
        mem_mib,
        threads,
        fds,
        methods,
        rounds,
    };
    vec![
        s("mem0", 0, 0, 0, V_STATIC, 2000),
        s("mem0-fork", 0, 0, 0, F_STATIC, 1000),
        s(
            "true",
            0,
            0,
            0,
            &["raw_true", "prepared_true", "std_true"],
            300,
        ),
        s("mem2g", m2, 0, 0, V_STATIC, 2000),
        s("mem2g-fork", m2, 0, 0, F_STATIC, 20),
        s("mem8g", m8, 0, 0, V_STATIC, 2000),
        s("mem8g-fork", m8, 0, 0, F_STATIC, 8),
        s(
            "busy8",
            0,
            8,
            0,
            &["raw", "prepared", "std", "std_pre_exec"],
            500,
        ),
        s(
            "fd0",
            0,
            0,
            0,
            &["raw", "raw_close_range", "prepared"],
            2000,
        ),
        s(
            "fd1000",
            0,
            0,
            1000,
            &["raw", "raw_close_range", "prepared", "std"],
            2000,
        ),
        s("sandbox", 0, 0, 0, SANDBOX, 300),
        s("knobs", 0, 0, 0, KNOBS, 2000),
        // A new user namespace with the self map the child writes itself
        // (vfork-style path) and with the same map as ranges the parent
        // writes (fork path), next to no namespace at all; and, to tell the
        // fork path's cost from the parent's writes, the self map on the
        // fork path (an empty hook forces it).
        s(
            "userns",
            0,
            0,
            0,
            &[
                "prepared",
                "prepared_map_root",
                "prepared_uid_map",
                "prepared_map_root_fork",
            ],
            2000,
        ),
        s("landlock", 0, 0, 0, LANDLOCK, 2000),
        s("cgroup", 0, 0, 0, CGROUP, 2000),
        s("seccomp", 0, 0, 0, SECCOMP, 2000),
        s("everything", 0, 0, 0, EVERYTHING, 300),
    ]
}

fn main() {
    if std::env::var_os("SAFESPAWN_BENCH_CLEANUP").is_some() {
        return measure_cleanup();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick")
        || std::env::var_os("SAFESPAWN_BENCH_QUICK").is_some_and(|v| v != "0");
    if let Some(i) = args.iter().position(|a| a == "--loop") {
        let method = args.get(i + 1).expect("--loop METHOD N");
        let n: usize = args
            .get(i + 2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000);
        return run_loop(method, n);
    }
    if let Some(i) = args.iter().position(|a| a == "--sandbox-phases") {
        let n: usize = args.get(i + 1).and_then(|n| n.parse().ok()).unwrap_or(200);
        return support::sandbox::phase_report(&support::Targets::new(), n);
    }
    if let Some(i) = args.iter().position(|a| a == "--section") {
        let name = args.get(i + 1).expect("--section NAME");
        let section = sections(quick)
            .into_iter()
            .find(|s| s.name == name)
            .expect("unknown section");
        return run_section(&section, quick);
    }
    // `cargo bench` passes `--bench`; anything else is ignored.
    run_all(quick);
}

/// Runs one method `n` times, for strace/callgrind/perf.
fn run_loop(method: &str, n: usize) {
    let targets = support::Targets::new();
    let mut runner = Runner::new(&targets, &[method]);
    if let Err(why) = runner.available(method) {
        panic!("{why}");
    }
    for _ in 0..n {
        runner.run(method);
    }
}

/// Every prepared thing a method needs, built once per process.
struct Runner<'a> {
    targets: &'a support::Targets,
    raw: support::RawClone,
    raw_true: support::RawClone,
    prepared: safespawn::Prepared,
    prepared_true: safespawn::Prepared,
    /// The noop target under a deny-list and under an allow-list.
    prepared_seccomp: safespawn::Prepared,
    prepared_seccomp_allow: safespawn::Prepared,
    /// The sandbox methods, made only for a section that has them.
    raw_sandbox: Option<support::sandbox::RawSandbox>,
    bwrap: Option<safespawn::Prepared>,
    prepared_sandbox: Option<safespawn::Prepared>,
    /// The sandbox's description, for the method that builds it each time.
    command_sandbox: Option<support::sandbox::SandboxSpec>,
    /// The knobs method, made only for a section that has it.
    prepared_knobs: Option<safespawn::Prepared>,
    /// Built on first use: a system without user namespaces for this user
    /// can still run every other section.
    prepared_map_root: Option<safespawn::Prepared>,
    prepared_uid_map: Option<safespawn::Prepared>,
    prepared_map_root_fork: Option<safespawn::Prepared>,
    /// Made only for a section that has it; `Err`: why it cannot be.
    prepared_landlock: Result<safespawn::Prepared, String>,
    /// The cgroup methods' plans, made only for a section that has them;
    /// declared before `cgroup`, so they are dropped first.
    prepared_cgroup: Option<safespawn::Prepared>,
    prepared_everything: Option<safespawn::Prepared>,
    prepared_cgroup_write: Option<safespawn::Prepared>,
    /// The cgroup they spawn into (removed on drop), or why there is none.
    cgroup: Result<safespawn::Cgroup, String>,
}

/// The cgroup v2 mount point, from /proc/self/mountinfo.
fn cgroup2_mount() -> Option<std::path::PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    table.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        (after.split(' ').next()? == "cgroup2")
            .then(|| std::path::PathBuf::from(before.split(' ').nth(4).unwrap_or("")))
    })
}

/// A cgroup for the cgroup section, or why there is none.
fn bench_cgroup() -> Result<safespawn::Cgroup, String> {
    let mount = cgroup2_mount().ok_or("no cgroup v2 filesystem is mounted")?;
    safespawn::Cgroup::create(&mount, format!("safespawn-bench-{}", std::process::id()))
        .map_err(|e| format!("cannot create a cgroup (root needed): {e}"))
}

impl<'a> Runner<'a> {
    fn new(targets: &'a support::Targets, methods: &[&str]) -> Runner<'a> {
        use support::sandbox;
        let spec = methods
            .iter()
            .any(|m| m.ends_with("sandbox") || *m == "bwrap" || *m == "prepared_everything")
            .then(|| sandbox::SandboxSpec::new(targets));
        let wants = |m: &str| methods.contains(&m).then_some(spec.as_ref()).flatten();
        let cgroup = if methods
            .iter()
            .any(|m| m.starts_with("prepared_cgroup") || *m == "prepared_everything")
        {
            bench_cgroup()
        } else {
            Err("not in this section".into())
        };
        let (prepared_cgroup, prepared_cgroup_write) = match &cgroup {
            Ok(cg) => {
                let by_clone = methods::command(&targets.noop).cgroup(cg.path()).build();
                // The plan of a kernel without CLONE_INTO_CGROUP: the flag
                // is read at build() only.
                let forced = safespawn::__forced_compat();
                safespawn::__force_compat(forced | safespawn::__compat::NO_CLONE_INTO_CGROUP);
                let by_write = methods::command(&targets.noop).cgroup(cg.path()).build();
                safespawn::__force_compat(forced);
                (by_clone.ok(), by_write.ok())
            }
            Err(_) => (None, None),
        };
        let prepared_everything = wants("prepared_everything").and_then(|spec| {
            sandbox::prepared_everything(spec, cgroup.as_ref().ok().map(|c| c.path()))
        });
        Runner {
            prepared_everything,
            prepared_cgroup,
            prepared_cgroup_write,
            cgroup,
            raw_sandbox: wants("raw_sandbox").map(sandbox::RawSandbox::new),
            bwrap: wants("bwrap").and_then(sandbox::bwrap_prepared),
            prepared_sandbox: wants("prepared_sandbox").and_then(sandbox::prepared_sandbox),
            command_sandbox: spec.filter(|_| methods.contains(&"command_sandbox")),
            prepared_knobs: methods
                .contains(&"prepared_knobs")
                .then(|| knobs_prepared(&targets.noop)),
            prepared_landlock: if methods.contains(&"prepared_landlock") {
                methods::prepared_landlock(&targets.noop)
            } else {
                Err("not wanted".into())
            },
            targets,
            raw: support::RawClone::new(&targets.noop),
            raw_true: support::RawClone::new(&targets.bin_true),
            prepared: methods::prepared(&targets.noop),
            prepared_true: methods::prepared(&targets.bin_true),
            prepared_map_root: None,
            prepared_uid_map: None,
            prepared_map_root_fork: None,
            prepared_seccomp: methods::prepared_seccomp(
                &targets.noop,
                safespawn::Seccomp::deny(methods::known(methods::DENY), libc::EPERM),
            ),
            prepared_seccomp_allow: methods::prepared_seccomp(
                &targets.noop,
                safespawn::Seccomp::allow(methods::known(methods::ALLOW), libc::EPERM),
            ),
        }
    }

    fn run(&mut self, method: &str) {
        let noop: &Path = &self.targets.noop;
        match method {
            "raw" => assert_eq!(self.raw.run(), 0),
            "raw_close_range" => assert_eq!(self.raw.run_closing_fds(), 0),
            "raw_true" => assert_eq!(self.raw_true.run(), 0),
            "prepared" => methods::safespawn_prepared(&self.prepared),
            "prepared_true" => methods::safespawn_prepared(&self.prepared_true),
            "prepared_seccomp" => methods::safespawn_prepared(&self.prepared_seccomp),
            "prepared_seccomp_allow" => methods::safespawn_prepared(&self.prepared_seccomp_allow),
            "command" => methods::safespawn_command(noop),
            "std" => methods::std_status(noop),
            "std_true" => methods::std_status(&self.targets.bin_true),
            "std_pre_exec" => methods::std_pre_exec(noop),
            "raw_sandbox" => {
                let raw = self.raw_sandbox.as_mut().expect("raw_sandbox");
                match raw.run() {
                    Ok(status) => assert_eq!(status, 0),
                    Err(f) => panic!("raw_sandbox: {}", raw.describe(f)),
                }
            }
            "bwrap" => methods::safespawn_prepared(self.bwrap.as_ref().expect("bwrap")),
            "prepared_sandbox" => methods::safespawn_prepared(
                self.prepared_sandbox.as_ref().expect("prepared_sandbox"),
            ),
            "command_sandbox" => {
                let spec = self.command_sandbox.as_ref().expect("command_sandbox");
                let status = support::sandbox::command_sandbox(spec).expect("command_sandbox");
                assert!(status.success(), "command_sandbox: {status:?}");
            }
            "prepared_knobs" => {
                methods::safespawn_prepared(self.prepared_knobs.as_ref().expect("prepared_knobs"))
            }
            "prepared_cgroup" => {
                methods::safespawn_prepared(self.prepared_cgroup.as_ref().expect("prepared_cgroup"))
            }
            "prepared_everything" => methods::safespawn_prepared(
                self.prepared_everything
                    .as_ref()
                    .expect("prepared_everything"),
            ),
            "prepared_cgroup_write" => methods::safespawn_prepared(
                self.prepared_cgroup_write
                    .as_ref()
                    .expect("prepared_cgroup_write"),
            ),
            "prepared_map_root" => methods::safespawn_prepared(
                self.prepared_map_root
                    .get_or_insert_with(|| methods::prepared_map_root(noop)),
            ),
            "prepared_map_root_fork" => methods::safespawn_prepared(
                self.prepared_map_root_fork
                    .get_or_insert_with(|| methods::prepared_map_root_fork(noop)),
            ),
            "prepared_uid_map" => methods::safespawn_prepared(
                self.prepared_uid_map
                    .get_or_insert_with(|| methods::prepared_uid_map(noop)),
            ),
            "prepared_landlock" => methods::safespawn_prepared(
                self.prepared_landlock.as_ref().expect("prepared_landlock"),
            ),
            other => panic!("unknown method {other}"),
        }
    }

    /// Whether `method` can run here: the sandbox methods need `bwrap`, the
    /// mount API, or a system that allows the sandbox (tried once).
    fn available(&mut self, method: &str) -> Result<(), String> {
        match method {
            "raw_sandbox" => {
                let raw = self.raw_sandbox.as_mut().expect("raw_sandbox");
                match raw.run() {
                    Ok(0) => Ok(()),
                    Ok(s) => Err(format!("skipped raw_sandbox: wait status {s:#x}")),
                    Err(f) => Err(format!(
                        "skipped raw_sandbox: this system refuses the sandbox ({})",
                        raw.describe(f)
                    )),
                }
            }
            "bwrap" => match &self.bwrap {
                None => Err(
                    "skipped bwrap: not on PATH (Debian/Ubuntu: apt-get install bubblewrap)".into(),
                ),
                Some(p) => match p.status() {
                    Ok(s) if s.success() => Ok(()),
                    Ok(s) => Err(format!("skipped bwrap: the sandbox failed ({s:?})")),
                    Err(e) => Err(format!("skipped bwrap: {e}")),
                },
            },
            "prepared_sandbox" => match &self.prepared_sandbox {
                None => Err("skipped prepared_sandbox: the sandbox cannot be built here".into()),
                Some(p) => match p.status() {
                    Ok(s) if s.success() => Ok(()),
                    Ok(s) => Err(format!(
                        "skipped prepared_sandbox: the sandbox failed ({s:?})"
                    )),
                    Err(e) => Err(format!("skipped prepared_sandbox: {e}")),
                },
            },
            "command_sandbox" => match &self.command_sandbox {
                None => Err("skipped command_sandbox: no sandbox here".into()),
                Some(spec) => match support::sandbox::command_sandbox(spec) {
                    Ok(s) if s.success() => Ok(()),
                    Ok(s) => Err(format!(
                        "skipped command_sandbox: the sandbox failed ({s:?})"
                    )),
                    Err(e) => Err(format!("skipped command_sandbox: {e}")),
                },
            },
            "prepared_everything" => match &self.prepared_everything {
                None => Err("skipped prepared_everything: it cannot be built here".into()),
                Some(p) => match p.status() {
                    Ok(s) if s.success() => Ok(()),
                    Ok(s) => Err(format!("skipped prepared_everything: it failed ({s:?})")),
                    Err(e) => Err(format!("skipped prepared_everything: {e}")),
                },
            },
            "prepared_landlock" => match &self.prepared_landlock {
                Err(why) => Err(format!("skipped prepared_landlock: {why}")),
                Ok(p) => match p.status() {
                    Ok(s) if s.success() => Ok(()),
                    Ok(s) => Err(format!("skipped prepared_landlock: it failed ({s:?})")),
                    Err(e) => Err(format!("skipped prepared_landlock: {e}")),
                },
            },
            "prepared_cgroup" | "prepared_cgroup_write" => {
                let p = match method {
                    "prepared_cgroup" => &self.prepared_cgroup,
                    _ => &self.prepared_cgroup_write,
                };
                match (&self.cgroup, p) {
                    (Err(why), _) => Err(format!("skipped {method}: {why}")),
                    (Ok(_), None) => Err(format!("skipped {method}: it does not build here")),
                    (Ok(_), Some(p)) => match p.status() {
                        Ok(s) if s.success() => Ok(()),
                        Ok(s) => Err(format!("skipped {method}: {s:?}")),
                        Err(e) => Err(format!("skipped {method}: {e}")),
                    },
                }
            }
            _ => Ok(()),
        }
    }
}

/// The unconfined command with every process knob and label this system
/// takes: nice, affinity (every CPU), OOM score (raised by one), a persona,
/// an SELinux label (refused and ignored where SELinux does not enforce:
/// the write is still made), and as root the securebits; core scheduling
/// where the system has it. (Not an AppArmor profile: refused without
/// AppArmor, which fails the spawn.)
fn knobs_prepared(path: &Path) -> safespawn::Prepared {
    use safespawn::{Personality, Securebits};
    let oom = std::fs::read_to_string("/proc/self/oom_score_adj")
        .map_or(0, |s| s.trim().parse::<i32>().unwrap_or(0));
    let every_cpu: Vec<usize> = (0..1024).collect();
    let mut cmd = methods::command(path)
        .nice(19)
        .cpu_affinity(&every_cpu)
        .oom_score_adj((oom + 1).min(1000))
        .personality(Personality::ADDR_NO_RANDOMIZE);
    if std::fs::read("/sys/fs/selinux/enforce").map_or(true, |e| e.first() == Some(&b'0')) {
        cmd = cmd.selinux_exec_label("system_u:system_r:safespawn_bench_t:s0");
    }
    if rustix::process::geteuid().is_root() {
        cmd = cmd.securebits(Securebits::empty());
    }
    if safespawn::Command::new("true")
        .sched_core_new()
        .build()
        .is_ok()
    {
        cmd = cmd.sched_core_new();
    }
    cmd.build().expect("build the knobs command")
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn percentile(v: &[f64], p: f64) -> f64 {
    // `v` is sorted by `median`.
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Runs one section in this process: prints one line per method and rep:
/// `RESULT section method rep n median_us p99_us`.
fn run_section(s: &Section, quick: bool) {
    let targets = support::Targets::new();
    let mut runner = Runner::new(&targets, s.methods);
    // Methods this system cannot run are left out, each with a NOTE line
    // (run_all prints them).
    let methods: Vec<&str> = s
        .methods
        .iter()
        .copied()
        .filter(|m| match runner.available(m) {
            Ok(()) => true,
            Err(why) => {
                println!("NOTE {}: {why}", s.name);
                false
            }
        })
        .collect();
    let s = &Section {
        methods: methods.leak(),
        ..*s
    };
    let _ballast = support::Ballast::new(s.mem_mib);
    let _fds = support::OpenFds::new(s.fds);
    let _threads = support::BusyThreads::new(s.threads);
    let reps = if quick { 1 } else { 3 };
    let rounds = if quick {
        (s.rounds / 20).max(3)
    } else {
        s.rounds
    };
    let warmup = if s.mem_mib >= 1024 && s.methods == F_STATIC {
        2
    } else if quick {
        3
    } else {
        20
    };
    for rep in 1..=reps {
        let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); s.methods.len()];
        for round in 0..warmup + rounds {
            let order: Vec<usize> = if round % 2 == 0 {
                (0..s.methods.len()).collect()
            } else {
                (0..s.methods.len()).rev().collect()
            };
            for i in order {
                let t = Instant::now();
                runner.run(s.methods[i]);
                let us = t.elapsed().as_secs_f64() * 1e6;
                if round >= warmup {
                    samples[i].push(us);
                }
            }
        }
        for (i, m) in s.methods.iter().enumerate() {
            let v = &mut samples[i];
            let med = median(v);
            let p99 = percentile(v, 0.99);
            println!(
                "RESULT {} {} {} {} {:.2} {:.1}",
                s.name,
                m,
                rep,
                v.len(),
                med,
                p99
            );
        }
    }
}

/// Heap allocations of spawn, wait and abort of a `Prepared`: all must be 0.
fn allocation_check(targets: &support::Targets) -> bool {
    support::spawn_path_allocations(targets) == [0; 4]
}

fn run_all(quick: bool) {
    let targets = support::Targets::new();
    println!(
        "safespawn interleaved spawn benchmark ({} run); static no-op target: {}",
        if quick { "quick smoke" } else { "full" },
        if targets.noop_is_static {
            "hand-assembled x86_64 ELF"
        } else {
            "/bin/true (not x86_64)"
        }
    );
    let allocations_ok = allocation_check(&targets);
    drop(targets);

    let exe = std::env::current_exe().expect("current_exe");
    // (section, method) -> min over reps of the median; and median p99.
    let mut best: BTreeMap<(String, String), (f64, Vec<f64>)> = BTreeMap::new();
    let mut notes: Vec<String> = Vec::new();
    for s in sections(quick) {
        eprintln!("section {} ...", s.name);
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["--section", s.name]);
        if quick {
            cmd.arg("--quick");
        }
        let out = cmd.output().expect("running a section");
        assert!(
            out.status.success(),
            "section {} failed: {}",
            s.name,
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(note) = line.strip_prefix("NOTE ") {
                eprintln!("  {note}");
                notes.push(note.to_string());
                continue;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() != 7 || f[0] != "RESULT" {
                continue;
            }
            let med: f64 = f[5].parse().unwrap();
            let p99: f64 = f[6].parse().unwrap();
            let e = best
                .entry((f[1].to_string(), f[2].to_string()))
                .or_insert((f64::INFINITY, Vec::new()));
            e.0 = e.0.min(med);
            e.1.push(p99);
        }
    }

    println!();
    println!("| section | method | min of medians (µs) | median p99 (µs) |");
    println!("|---|---|---|---|");
    for ((sec, m), (med, p99s)) in &best {
        let mut p = p99s.clone();
        println!("| {sec} | {m} | {med:.1} | {:.0} |", median(&mut p));
    }
    let get = |sec: &str, m: &str| {
        best.get(&(sec.to_string(), m.to_string()))
            .map(|e| e.0)
            .unwrap_or(f64::NAN)
    };
    let (m8, m8fork) = if quick {
        ("mem8g (256 MiB in --quick)", "")
    } else {
        ("mem8g", "")
    };
    let _ = m8fork;
    println!();
    println!("| ratio | value | goal | met |");
    println!("|---|---|---|---|");
    let row = |name: &str, v: f64, goal: &str, ok: bool| {
        println!(
            "| {name} | {v:.2} | {goal} | {} |",
            if ok { "yes" } else { "NO" }
        );
    };
    let measured = |sec: &str, m: &str| best.contains_key(&(sec.to_string(), m.to_string()));
    // An information row from methods `a` and `b` of section `sec`, when
    // both were measured there (a section may skip a method it cannot run).
    let info = |name: &str, sec: &str, a: &str, b: &str, combine: fn(f64, f64) -> f64| {
        if measured(sec, a) && measured(sec, b) {
            row(name, combine(get(sec, a), get(sec, b)), "(info)", true);
        }
    };
    let ratio: fn(f64, f64) -> f64 = |a, b| a / b;
    let minus: fn(f64, f64) -> f64 = |a, b| a - b;
    let r1 = get("mem0", "prepared") / get("mem0", "raw");
    row(
        "safespawn Prepared / raw clone (static, 0 MiB)",
        r1,
        "≤ 1.10",
        r1 <= 1.10,
    );
    let r2 = get("mem0", "prepared") / get("mem0", "std");
    row(
        "safespawn Prepared / std status() (static, 0 MiB)",
        r2,
        "≈ 0.70",
        r2 <= 0.75,
    );
    let r2b = get("mem0", "command") / get("mem0", "std");
    row("safespawn Command each time / std", r2b, "(info)", true);
    let r2c = get("true", "prepared_true") / get("true", "std_true");
    row("safespawn / std, /bin/true", r2c, "(info)", true);
    let r3 = get("mem8g", "prepared") / get("mem0", "prepared");
    row(
        &format!("{m8} parent / empty parent, safespawn"),
        r3,
        "≤ 1.10",
        r3 <= 1.10,
    );
    // Sections run minutes apart and this kind of machine drifts between
    // them (the raw clone moves too); dividing by the raw clone of the same
    // section takes the drift out.
    let r3n = (get("mem8g", "prepared") / get("mem8g", "raw"))
        / (get("mem0", "prepared") / get("mem0", "raw"));
    row(
        &format!("{m8} / empty parent, safespawn relative to the raw clone of its section"),
        r3n,
        "≤ 1.10",
        r3n <= 1.10,
    );
    let r3b = get("mem8g-fork", "std_pre_exec") / get("mem0-fork", "std_pre_exec");
    row(
        &format!("{m8} parent / empty parent, std pre_exec (fork)"),
        r3b,
        "(info)",
        true,
    );
    let r4 = get("busy8", "prepared") / get("busy8", "std");
    row("8 busy threads: safespawn / std", r4, "≤ 0.60", r4 <= 0.60);
    let r4b = get("busy8", "raw") / get("busy8", "std");
    row(
        "8 busy threads: raw clone / std (the practical limit)",
        r4b,
        "(info)",
        true,
    );
    let r4c = get("busy8", "prepared") / get("busy8", "raw");
    row("8 busy threads: safespawn / raw clone", r4c, "(info)", true);
    let ns_self = get("userns", "prepared_map_root") / get("userns", "prepared");
    row(
        "user namespace, map_root (self map, vfork-style) / no namespace",
        ns_self,
        "(info)",
        true,
    );
    let ns_ranges = get("userns", "prepared_uid_map") / get("userns", "prepared");
    row(
        "user namespace, uid_map/gid_map (parent writes, fork path) / no namespace",
        ns_ranges,
        "(info)",
        true,
    );
    let ns_fork = get("userns", "prepared_uid_map") / get("userns", "prepared_map_root");
    row(
        "user namespace: uid_map/gid_map / map_root (the same one-line maps)",
        ns_fork,
        "(info)",
        true,
    );
    let ns_writes = get("userns", "prepared_uid_map") - get("userns", "prepared_map_root_fork");
    row(
        "user namespace, both on the fork path: uid_map/gid_map − map_root (the parent's writes and the gate), µs",
        ns_writes,
        "(info)",
        true,
    );
    let cleanup = cleanup_cost_us();
    row(
        "fd cleanup, 0 extra fds: the child's close_range(CLOSE_RANGE_CLOEXEC), µs",
        cleanup,
        "≤ 2 µs",
        cleanup <= 2.0,
    );
    let fd_extra = get("fd0", "raw_close_range") - get("fd0", "raw");
    row(
        "close_range(3, ~0) in the raw child, 0 extra fds: extra µs (difference of two noisy medians)",
        fd_extra,
        "(info)",
        true,
    );
    let fd_ss = get("fd0", "prepared") - get("fd0", "raw");
    row(
        "safespawn − raw clone (all its extra work), 0 extra fds: µs",
        fd_ss,
        "(info)",
        true,
    );
    let fd1000 = get("fd1000", "prepared") - get("fd1000", "raw");
    row(
        "safespawn − raw clone, 1000 inherited fds: µs",
        fd1000,
        "(info)",
        true,
    );
    // The sandbox: a goal row whose method is missing (no bwrap, a system
    // refusing the sandbox) says why instead of a number.
    let have = |m: &str| measured("sandbox", m);
    let pending = |name: &str, goal: &str, missing: &str| {
        println!("| {name} | – | {goal} | pending: {missing} |");
    };
    let why_missing = |ms: &[&str]| {
        ms.iter()
            .filter(|m| !have(m))
            .map(|m| match *m {
                "bwrap" => "no bwrap (apt-get install bubblewrap)",
                _ => "the sandbox refused here",
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (name, a, b, goal, limit) in [
        (
            "sandbox: safespawn sandboxed / bwrap",
            "prepared_sandbox",
            "bwrap",
            "≤ 0.30",
            0.30,
        ),
        (
            "sandbox: safespawn sandboxed / the raw floor",
            "prepared_sandbox",
            "raw_sandbox",
            "≤ 1.20",
            1.20,
        ),
    ] {
        if have(a) && have(b) {
            let r = get("sandbox", a) / get("sandbox", b);
            row(name, r, goal, r <= limit);
        } else {
            pending(name, goal, &why_missing(&[a, b]));
        }
    }
    info(
        "sandbox: safespawn sandboxed, a Command built each time / bwrap",
        "sandbox",
        "command_sandbox",
        "bwrap",
        ratio,
    );
    info(
        "sandbox: the sandbox's build() (Command − Prepared): µs",
        "sandbox",
        "command_sandbox",
        "prepared_sandbox",
        minus,
    );
    info(
        "sandbox: the raw floor / bwrap",
        "sandbox",
        "raw_sandbox",
        "bwrap",
        ratio,
    );
    info(
        "sandbox: the raw floor − unconfined safespawn (the sandbox's kernel work): µs",
        "sandbox",
        "raw_sandbox",
        "prepared",
        minus,
    );
    info(
        "knobs: every process knob and label − unconfined safespawn: µs",
        "knobs",
        "prepared_knobs",
        "prepared",
        minus,
    );
    info(
        "landlock: landlocked − unconfined safespawn (restrict_self, no_new_privs for a plain user, the exec's checks): µs",
        "landlock",
        "prepared_landlock",
        "prepared",
        minus,
    );
    // The cgroup: what each way of placing the child adds to a spawn.
    for (name, m) in [
        (
            "cgroup: placed by clone3 (CLONE_INTO_CGROUP) − unconfined: µs",
            "prepared_cgroup",
        ),
        (
            "cgroup: placed by the child's write to cgroup.procs − unconfined: µs",
            "prepared_cgroup_write",
        ),
    ] {
        if measured("cgroup", m) && measured("cgroup", "prepared") {
            let d = get("cgroup", m) - get("cgroup", "prepared");
            row(name, d, "(info)", true);
        } else {
            pending(name, "(info)", "no cgroup here (root and cgroup v2 needed)");
        }
    }
    let deny = get("seccomp", "prepared_seccomp") - get("seccomp", "prepared");
    row(
        &format!(
            "seccomp: a deny-list of {} calls − unconfined, µs per spawn",
            methods::known(methods::DENY).len()
        ),
        deny,
        "(info)",
        true,
    );
    info(
        "everything (sandbox + seccomp + landlock + knobs + cgroup) / the sandbox alone",
        "everything",
        "prepared_everything",
        "prepared_sandbox",
        ratio,
    );
    let allow = get("seccomp", "prepared_seccomp_allow") - get("seccomp", "prepared");
    row(
        &format!(
            "seccomp: an allow-list of {} calls − unconfined, µs per spawn",
            methods::known(methods::ALLOW).len() + 2
        ),
        allow,
        "(info)",
        true,
    );
    for note in &notes {
        println!();
        println!("note: {note}");
    }
    println!();
    println!(
        "allocations: {}",
        if allocations_ok {
            "0 per spawn, wait and abort (goal met)"
        } else {
            "NON-ZERO (goal missed)"
        }
    );
    if !allocations_ok {
        std::process::exit(1);
    }
}

/// The child's whole fd cleanup when no extra fd is open: the one
/// `close_range(first, ~0U, CLOSE_RANGE_CLOEXEC)` a stdio-only child makes,
/// timed by [`measure_cleanup`] in a process holding only its standard
/// streams (a spawned copy of this benchmark with every other fd closed by
/// std). In µs per call.
fn cleanup_cost_us() -> f64 {
    let out = std::process::Command::new(std::env::current_exe().expect("current_exe"))
        .env("SAFESPAWN_BENCH_CLEANUP", "1")
        .output()
        .expect("running the cleanup measurement");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("CLEANUP ")?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The copy's side of [`cleanup_cost_us`]: the median of 9 batches of
/// 20,000 calls, printed as `CLEANUP <µs>`.
fn measure_cleanup() {
    let mut batches: Vec<f64> = (0..9)
        .map(|_| {
            let t = std::time::Instant::now();
            for _ in 0..20_000 {
                // SAFETY: marks fds >= 3 close-on-exec; this process execs
                // nothing afterwards.
                unsafe {
                    libc::syscall(
                        libc::SYS_close_range,
                        3 as libc::c_uint,
                        !0 as libc::c_uint,
                        libc::CLOSE_RANGE_CLOEXEC,
                    )
                };
            }
            t.elapsed().as_secs_f64() * 1e6 / 20_000.0
        })
        .collect();
    println!("CLEANUP {}", median(&mut batches));
}
