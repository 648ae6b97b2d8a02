//! The tool through the library's fallbacks for older kernels (the hidden
//! `--force-compat` option): `--timeout` still kills the program, and a
//! signal sent to safespawn still reaches it, when there are no pidfds or
//! `waitid(P_PIDFD)` is refused.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_safespawn");
const PROFILES: [&str; 5] = [
    "linux-5.1",
    "linux-5.2",
    "linux-5.3",
    "old-container",
    "clone-pidfd-refused",
];

/// Whether `pid` is gone (no /proc entry, or a process that is not the one
/// we started: not a `sleep`).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/comm")) {
        Err(_) => true,
        Ok(comm) => comm.trim() != "sleep",
    }
}

#[test]
fn timeout_kills_the_program_on_every_profile() {
    for profile in PROFILES {
        let started = Instant::now();
        let mut wrapper = Command::new(BIN)
            .args(["--force-compat", profile, "--timeout", "300ms", "--"])
            .args(["/bin/sh", "-c", "echo $$; exec sleep 10"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(wrapper.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let pid: i32 = line.trim().parse().expect("the program's pid");
        let status = wrapper.wait().unwrap();
        assert_eq!(status.code(), Some(124), "{profile}");
        assert!(started.elapsed() < Duration::from_secs(5), "{profile}");
        assert!(gone(pid), "{profile}: the program {pid} is still running");
    }
}

#[test]
fn a_signal_sent_to_safespawn_reaches_the_program_on_every_profile() {
    for profile in PROFILES {
        let mut wrapper = Command::new(BIN)
            .args(["--force-compat", profile, "--"])
            .args([
                "/bin/sh",
                "-c",
                "trap 'exit 7' TERM; echo ready; i=0; while [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; exit 3",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(wrapper.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n", "{profile}");
        let pid = rustix::process::Pid::from_raw(wrapper.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let status = wrapper.wait().unwrap();
        assert_eq!(status.code(), Some(7), "{profile}: {status:?}");
    }
}

#[test]
fn a_program_that_exits_is_waited_for_on_every_profile() {
    for profile in PROFILES {
        let out = Command::new(BIN)
            .args(["--force-compat", profile, "--timeout", "5s", "--"])
            .args(["/bin/sh", "-c", "echo hi; exit 2"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{profile}");
        assert_eq!(out.stdout, b"hi\n", "{profile}");
    }
}
