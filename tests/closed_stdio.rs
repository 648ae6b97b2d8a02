//! Every fd the library creates is above the standard streams: in a parent
//! whose fd 0 and 1 are closed, no pidfd (from `CLONE_PIDFD` on the clone
//! path, from `pidfd_open` on the fork path) and no pipe may take those
//! numbers, or a later child with `Stdio::inherit()` would get another
//! child's pidfd as its stdin or stdout.
//!
//! One test in a binary of its own: it closes the test process's own stdin
//! and stdout (saved with dup and restored afterwards, so the harness can
//! still print), which no other test may see.

mod common;

use std::io::Read;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use common::{helper, Report};
use safespawn::{Command, Stdio};

/// Closes fd 0 and 1 of this process; dropping it puts them back.
struct ClosedStdio {
    saved: [OwnedFd; 2],
}

impl ClosedStdio {
    fn new() -> ClosedStdio {
        let save = |fd: i32| {
            // SAFETY: fd 0 and 1 are open in the test process and stay open
            // for this call.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            rustix::io::fcntl_dupfd_cloexec(fd, 10).expect("save a standard stream")
        };
        let saved = [save(0), save(1)];
        for fd in [0, 1] {
            // SAFETY: closing a standard stream of our own; its open file is
            // kept alive by `saved` and put back by `drop`.
            assert_eq!(unsafe { libc::close(fd) }, 0);
        }
        ClosedStdio { saved }
    }
}

impl Drop for ClosedStdio {
    fn drop(&mut self) {
        for (fd, saved) in [0, 1].into_iter().zip(&self.saved) {
            // SAFETY: dup2 onto a standard stream number; whatever is there
            // (nothing, if the library behaved) is replaced.
            unsafe { libc::dup2(saved.as_raw_fd(), fd) };
        }
    }
}

/// What fd `fd` of this process is: `None` when closed.
fn own_fd(fd: i32) -> Option<String> {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// What a later child with inherited stdin and stdout finds there: its
/// fd 0 from the helper's report, its fd 1 from a shell that reads its own
/// `/proc/PID/fd/1` in a command substitution (whose own stdout is the
/// substitution's pipe, not the fd read) and reports it on stderr.
fn inherited_stdin_and_stdout() -> (Option<String>, String) {
    let mut child = helper("report")
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut text = String::new();
    child
        .take_stdout()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    child.wait().unwrap();
    let stdin = Report::parse(&text).fds.get(&0).cloned();
    let mut sh = Command::new("sh")
        .args(["-c", "fd1=$(readlink /proc/$$/fd/1); echo \"$fd1\" >&2"])
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = String::new();
    sh.take_stderr()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    sh.wait().unwrap();
    (stdin, stdout.trim().to_owned())
}

#[test]
fn no_pidfd_takes_the_place_of_a_closed_standard_stream() {
    let mut problems: Vec<String> = Vec::new();
    {
        let _closed = ClosedStdio::new();
        let clone_path = helper("sleep=30");
        // SAFETY: the hook does nothing; it only makes the spawn fork.
        let fork_path = unsafe { helper("sleep=30").pre_exec(|| Ok(())) };
        for (path, cmd) in [("clone", clone_path), ("fork", fork_path)] {
            let prepared = cmd.build().unwrap();
            // The first two fds a careless spawn creates would be 0 and 1.
            let first = prepared.spawn().unwrap();
            let second = prepared.spawn().unwrap();
            for fd in [0, 1] {
                if let Some(what) = own_fd(fd) {
                    problems.push(format!("{path} path: our fd {fd} is now {what}"));
                }
            }
            let (stdin, stdout) = inherited_stdin_and_stdout();
            if let Some(what) = stdin.filter(|w| w.contains("pidfd")) {
                problems.push(format!("{path} path: a later child's stdin is {what}"));
            }
            if stdout.contains("pidfd") {
                problems.push(format!("{path} path: a later child's stdout is {stdout}"));
            }
            drop(first.abort());
            drop(second.abort());
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
