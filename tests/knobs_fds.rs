//! The plan's `/proc` fd through the child's fd shuffle: a command whose
//! `map_fd` targets the very number the `/proc` fd has must still get its
//! OOM score and its label written (the fd steps move the `/proc` fd out
//! of the way, as they do the report pipe), with every way of closing the
//! other fds. Alone in its binary, with one test: it predicts the number
//! `build()` opens `/proc` at, which another thread opening fds would
//! spoil.

mod common;

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;

use common::{helper, report_from, Report};
use safespawn::{Command, Direct, Errno, Error, Prepared, Stage, Stdio};

/// The lowest free fd number above the standard streams.
fn next_fd() -> i32 {
    File::open("/dev/null").unwrap().as_raw_fd()
}

/// Builds `make(n, source)` where `n` is the number the build opens
/// `/proc` at (and `source` an fd to map onto it), and checks that it did.
fn build_onto_proc_fd(make: impl Fn(i32, File) -> Command<Direct>) -> (Prepared<Direct>, i32) {
    // The command's own fd is open before the number is taken.
    let source = File::open("/dev/zero").unwrap();
    let n = next_fd();
    let cmd = make(n, source);
    let prepared = cmd.stdout(Stdio::piped()).build().unwrap();
    let target = std::fs::read_link(format!("/proc/self/fd/{n}")).unwrap();
    assert_eq!(
        target.to_str(),
        Some("/proc"),
        "fd {n} is not the plan's /proc fd"
    );
    (prepared, n)
}

/// The four ways the child closes the fds it does not keep.
fn close_method(cmd: Command<Direct>, method: usize) -> Command<Direct> {
    match method {
        0 => cmd,
        1 => cmd.close_fds_without_cloexec(),
        2 => cmd.close_fds_by_proc_walk(),
        _ => cmd.close_fds_by_polling(),
    }
}

/// What the kernel answers to `exec NAME` on this thread's exec attribute.
fn kernel_answer(text: &str) -> Result<(), Errno> {
    let text = text.to_owned();
    std::thread::spawn(move || {
        let path = if std::path::Path::new("/proc/self/attr/apparmor").exists() {
            "/proc/thread-self/attr/apparmor/exec"
        } else {
            "/proc/thread-self/attr/exec"
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| Errno::from_io_error(&e).unwrap())?;
        f.write(text.as_bytes())
            .map(drop)
            .map_err(|e| Errno::from_io_error(&e).unwrap())
    })
    .join()
    .unwrap()
}

#[test]
fn a_map_fd_onto_the_proc_fds_number_leaves_the_knobs_and_labels_working() {
    // The process-wide /dev/null fd is opened by the first plan: before
    // the numbers are predicted.
    drop(helper("report").build().unwrap());
    let own = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
    let up = (own.trim().parse::<i32>().unwrap() + 77).min(1000);
    for method in 0..4 {
        let (prepared, n) = build_onto_proc_fd(|n, zero| {
            close_method(helper("report").map_fd(zero, n).oom_score_adj(up), method)
        });
        let r: Report = report_from(&prepared);
        assert_eq!(
            r.fds.get(&n).map(String::as_str),
            Some("/dev/zero"),
            "method {method}"
        );
        assert_eq!(r.field("oom_score_adj"), up.to_string(), "method {method}");
        // No /proc fd reached the program.
        assert!(!r.fds.values().any(|t| t == "/proc"), "{:?}", r.fds);
        drop(prepared);

        let name = "safespawn-test-profile";
        let Err(want) = kernel_answer(&format!("exec {name}")) else {
            eprintln!("skipping the label: this kernel accepts the profile {name:?}");
            continue;
        };
        let (prepared, _) = build_onto_proc_fd(|n, zero| {
            close_method(
                Command::new("true").map_fd(zero, n).apparmor_profile(name),
                method,
            )
        });
        match prepared.spawn() {
            Err(Error::Spawn { stage, errno, .. }) => {
                assert_eq!((stage, errno), (Stage::Label, want), "method {method}")
            }
            other => panic!("method {method}: {other:?}"),
        }
    }
}
