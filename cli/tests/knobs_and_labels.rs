//! The `safespawn` binary's process knobs and labels, run for real: what
//! the program sees of `--nice`, `--cpus`, `--oom-score-adj`,
//! `--personality` and `--securebits`, and how a refused label or a bad
//! value ends (status 125, one line naming it).

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_safespawn");

fn safespawn(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run safespawn")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn own(path: &str) -> i32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The first CPU this process may run on.
fn first_cpu() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string();
    list.split([',', '-']).next().unwrap().to_string()
}

#[test]
fn knobs_reach_the_program() {
    let oom = (own("/proc/self/oom_score_adj") + 50).min(1000).to_string();
    let cpu = first_cpu();
    let o = safespawn(&[
        "--nice",
        "19",
        "--cpus",
        &cpu,
        "--oom-score-adj",
        &oom,
        "--personality",
        "linux32,addr-no-randomize",
        "--",
        "/bin/sh",
        "-c",
        "cut -d' ' -f19 /proc/self/stat; sed -n 's/^Cpus_allowed_list:\\t//p' /proc/self/status; \
         cat /proc/self/oom_score_adj /proc/self/personality; uname -m",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        &lines[..4],
        ["19", cpu.as_str(), oom.as_str(), "00040008"],
        "{out}"
    );
    if cfg!(target_arch = "x86_64") {
        assert_eq!(lines[4], "i686", "{out}");
    }
}

#[test]
fn securebits_reach_the_program_as_root() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipping: --securebits needs CAP_SETPCAP (root)");
        return;
    }
    // NOROOT: root's shell gets no capabilities from its exec.
    let o = safespawn(&[
        "--securebits",
        "noroot,noroot-locked",
        "--",
        "/bin/sh",
        "-c",
        "sed -n 's/^CapPrm:\\t//p' /proc/self/status",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "0000000000000000\n");
}

#[test]
fn bad_values_and_refused_labels_end_with_125_and_one_line() {
    for (args, want) in [
        (
            &["--nice", "-21"][..],
            "invalid command: nice -21: is outside -20..=19",
        ),
        (
            &["--cpus", "2000"][..],
            "invalid command: cpu_affinity CPU 2000",
        ),
        (
            &["--oom-score-adj", "1001"][..],
            "invalid command: oom_score_adj 1001",
        ),
        (
            &["--personality", "0xffffffff"][..],
            "invalid command: personality 0xffffffff",
        ),
        (&["--personality", "bsd"][..], "unknown persona \"bsd\""),
        (&["--cpus", "3-1"][..], "the range 3-1 is empty"),
        (
            &["--selinux-label", ""][..],
            "invalid command: selinux_exec_label \"\": is empty",
        ),
    ] {
        let mut all = args.to_vec();
        all.extend(["--", "true"]);
        let o = safespawn(&all);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    // No AppArmor here: the profile is refused, the program never runs.
    let attr = std::path::Path::new("/proc/self/attr");
    if attr.join("exec").exists() && !attr.join("apparmor").exists() {
        let o = safespawn(&["--apparmor-profile", "p", "--", "/bin/echo", "ran"]);
        assert_eq!(o.status.code(), Some(125), "{}", text(&o.stderr));
        assert!(o.stdout.is_empty());
        assert!(
            text(&o.stderr).contains("setting the security label /proc/thread-self/attr/"),
            "{}",
            text(&o.stderr)
        );
    }
}
