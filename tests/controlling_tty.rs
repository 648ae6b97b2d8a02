//! The controlling terminal (`controlling_tty`) and the terminal's
//! foreground (`foreground`), on pseudo-terminals this test opens: the
//! helper's `tty` action reports the child's session, group, controlling
//! terminal (`/proc/self/stat`) and the terminal's foreground group.
//!
//! Whether this process has a controlling terminal depends on where the
//! tests run (CI: none), and a test must not take a developer's terminal
//! from them, so `foreground` is tested one level down: the outer test
//! re-executes this binary as a child with a pseudo-terminal as its
//! controlling terminal, running only [`inner_foreground`], which brings
//! the helper to the foreground of that terminal and prints
//! [`INNER_PASSED`] when every check held.
//!
//! The allocator is the child contract's tripwire, so the new steps also
//! run here, in both processes, under the rule that a child allocates
//! nothing.

mod common;

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use common::maximal::{read_all, start, PATHS};
use common::tripwire::ParentOnly;
use common::{helper, pty, report_of, Pty, Report};
use safespawn::{BuildErrorKind, Command, Direct, Errno, Error, Namespaces, Stage, Stdio};

#[global_allocator]
static GLOBAL: ParentOnly = ParentOnly;

/// Set in the environment of the re-executed test binary.
const INNER: &str = "SAFESPAWN_TEST_TTY_INNER";
/// What [`inner_foreground`] prints once every check held.
const INNER_PASSED: &str = "controlling_tty: inner foreground checks passed";
/// What [`inner_led_from_outside`] prints once every check held.
const OUTSIDE_PASSED: &str = "controlling_tty: checks passed in a session led from outside";

/// Runs `cmd` (whose report goes to a pipe) on every way into a child and
/// returns the reports.
fn reports(cmd: Command<Direct>) -> Vec<Report> {
    let prepared = cmd.stdout(Stdio::piped()).build().unwrap();
    PATHS
        .iter()
        .map(|&way| {
            let mut child = start(&prepared, way).unwrap_or_else(|e| panic!("{way:?}: {e}"));
            let out = read_all(child.take_stdout().unwrap());
            let fin = child.wait().unwrap();
            assert!(fin.success(), "{way:?}: {:?}\n{out}", fin.status());
            let r = Report::parse(&out);
            assert!(!r.field("tty_pid").is_empty(), "{way:?}: no report: {out}");
            r
        })
        .collect()
}

fn build_error(cmd: Command<Direct>) -> (BuildErrorKind, String, String) {
    match cmd.build() {
        Err(Error::Build {
            kind,
            item,
            problem,
        }) => (kind, item, problem),
        Err(e) => panic!("not a build error: {e}"),
        Ok(_) => panic!("built"),
    }
}

fn spawn_error(cmd: Command<Direct>) -> (Stage, Errno) {
    match cmd.status() {
        Err(Error::Spawn { stage, errno, .. }) => (stage, errno),
        other => panic!("not a spawn error: {other:?}"),
    }
}

#[test]
fn a_new_session_alone_has_no_controlling_terminal() {
    // The control: a new session (which has no controlling terminal,
    // whatever this process has) with the slave as stdin is not enough:
    // TIOCSCTTY is what makes it the terminal.
    let p = pty();
    for r in reports(helper("tty").stdin(p.slave_dup()).new_session()) {
        assert_eq!(r.field("tty_sid"), r.field("tty_pid"));
        assert_eq!(r.field("tty_nr"), "0");
        assert_eq!(
            r.field("tty_dev_tty"),
            "E6",
            "ENXIO: no controlling terminal"
        );
        assert_eq!(r.field("tty_fg"), format!("errno {}", libc::ENOTTY));
    }
}

#[test]
fn controlling_tty_makes_the_pty_the_child_s_terminal_and_its_group_the_foreground() {
    let p = pty();
    for r in reports(helper("tty").stdin(p.slave_dup()).controlling_tty(0)) {
        let pid = r.field("tty_pid");
        assert_eq!(r.field("tty_sid"), pid, "a session of its own");
        assert_eq!(r.field("tty_pgid"), pid);
        assert_eq!(
            r.field("tty_nr"),
            p.rdev.to_string(),
            "the pty is its terminal"
        );
        assert_eq!(r.field("tty_rdev"), p.rdev.to_string());
        assert_eq!(r.field("tty_fg"), pid, "its group is the foreground");
        assert_eq!(r.field("tty_fg_sid"), pid);
        assert_eq!(r.field("tty_dev_tty"), "ok");
        assert_eq!(r.field("tty_sigblk"), "0000000000000000");
    }
    // The terminal is free again once the child is gone: through the
    // master, the kernel tells any process the slave's session.
    assert_eq!(
        rustix::termios::tcgetsid(&p.master).map_err(|e| e.raw_os_error()),
        Err(libc::ENOTTY)
    );
}

/// The interactive set-up: the slave as all three streams, the report read
/// from the master (where the terminal's output processing has made each
/// "\n" a "\r\n").
#[test]
fn a_program_on_the_terminal_writes_through_the_master() {
    let p = pty();
    let prepared = helper("tty")
        .stdin(p.slave_owned())
        .stdout(p.slave_dup())
        .stderr(p.slave_dup())
        .controlling_tty(0)
        .build()
        .unwrap();
    let fin = prepared.spawn().unwrap().wait().unwrap();
    assert!(fin.success(), "{:?}", fin.status());
    // Every slave fd closed (ours too): the master reads what was written,
    // then EIO.
    drop(prepared);
    let Pty {
        master,
        slave,
        rdev,
        ..
    } = p;
    drop(slave);
    let mut master = File::from(master);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading the master: {e}"),
        }
    }
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("\r\n"), "{text:?}");
    let r = Report::parse(&text.replace("\r\n", "\n"));
    assert_eq!(r.field("tty_nr"), rdev.to_string());
    assert_eq!(r.field("tty_fg"), r.field("tty_pid"));
}

#[test]
fn a_mapped_fd_can_be_the_terminal_and_new_session_is_allowed_with_it() {
    let p = pty();
    let cmd = helper("tty=7")
        .map_fd(p.slave_owned(), 7)
        .new_session()
        .controlling_tty(7);
    for r in reports(cmd) {
        assert_eq!(r.field("tty_nr"), p.rdev.to_string());
        assert_eq!(r.field("tty_sid"), r.field("tty_pid"));
        assert_eq!(r.field("tty_fg"), r.field("tty_pid"));
    }
}

#[test]
fn another_session_s_terminal_is_eperm_at_stage_controlling_tty() {
    let p = pty();
    // The first child holds the terminal while it waits at the pause,
    // which comes after the session step.
    let holder = helper("sleep=30")
        .stdin(p.slave_dup())
        .controlling_tty(0)
        .build()
        .unwrap();
    let paused = holder.spawn_paused().unwrap();
    let sid = rustix::termios::tcgetsid(&p.master).unwrap();
    assert_eq!(sid.as_raw_nonzero().get(), paused.pid());
    let second = helper("tty").stdin(p.slave_dup()).controlling_tty(0);
    assert_eq!(spawn_error(second), (Stage::ControllingTty, Errno::PERM));
    drop(paused); // killed and reaped
                  // Free again, so the same command works now.
    let again = helper("tty").stdin(p.slave_dup()).controlling_tty(0);
    assert!(again.status().unwrap().success());
}

#[test]
fn what_is_not_a_usable_terminal_is_a_build_error_naming_the_option() {
    let p = pty();
    let invalid = |cmd: Command<Direct>, item: &str, says: &str| {
        let (kind, got, problem) = build_error(cmd);
        assert_eq!(kind, BuildErrorKind::Invalid, "{got}: {problem}");
        assert_eq!(got, item, "{problem}");
        assert!(problem.contains(says), "{item}: {problem}");
    };
    // stdin left at /dev/null.
    invalid(
        helper("tty").controlling_tty(0),
        "controlling_tty(0)",
        "is not a terminal",
    );
    invalid(
        helper("tty").stdin(Stdio::piped()).controlling_tty(0),
        "controlling_tty(0)",
        "pipe",
    );
    invalid(
        helper("tty").stdin(p.slave_dup()).controlling_tty(5),
        "controlling_tty(5)",
        "not planned",
    );
    invalid(
        helper("tty")
            .map_fd(File::open("/dev/null").unwrap(), 5)
            .controlling_tty(5),
        "controlling_tty(5)",
        "is not a terminal",
    );
    let write_only = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&p.name)
        .unwrap();
    invalid(
        helper("tty").stdin(write_only).controlling_tty(0),
        "controlling_tty(0)",
        "writing only",
    );
    invalid(
        helper("tty").stdin(p.slave_dup()).controlling_tty(-1),
        "controlling_tty(-1)",
        "negative",
    );
}

#[test]
fn contradicting_options_are_build_errors() {
    let p = pty();
    let conflict = |cmd: Command<Direct>, item: &str| {
        let (kind, got, problem) = build_error(cmd);
        assert_eq!(kind, BuildErrorKind::Conflict, "{got}: {problem}");
        assert_eq!(got, item, "{problem}");
    };
    let with_tty = || helper("tty").stdin(p.slave_dup()).controlling_tty(0);
    conflict(with_tty().process_group(0), "controlling_tty(0)");
    conflict(with_tty().foreground(), "controlling_tty(0)");
    let daemon = with_tty().daemonize().build().unwrap_err();
    assert_eq!(
        daemon.build_kind(),
        Some(BuildErrorKind::Conflict),
        "{daemon}"
    );
    assert!(
        daemon.to_string().contains("controlling_tty(0)"),
        "{daemon}"
    );
    // foreground: no stream is this process's controlling terminal (it
    // has none, and the pty is not it), a new session, a daemon.
    conflict(helper("tty").foreground(), "foreground()");
    conflict(
        helper("tty").stdin(p.slave_dup()).foreground(),
        "foreground()",
    );
    conflict(
        helper("tty")
            .stdin(p.slave_dup())
            .new_session()
            .foreground(),
        "foreground()",
    );
    let daemon = helper("tty").foreground().daemonize().build().unwrap_err();
    assert!(daemon.to_string().contains("foreground()"), "{daemon}");
}

/// This test binary again, running only the test `name` (which does its
/// work only when `INNER` is set to `stage`), its output piped.
fn this_binary(name: &str, stage: &str) -> Command<Direct> {
    Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INNER, stage)
        .env_pass("PATH")
        .stdout(Stdio::piped())
        .stderr_to_stdout()
}

/// Spawns a re-executed test binary and returns its output once it
/// succeeded. Its output fits in the pipe: waited for first, with a
/// deadline (a helper stopped by SIGTTOU before its exec would hang the
/// inner test in its spawn), then read.
fn inner_output(cmd: Command<Direct>) -> String {
    let mut child = cmd.spawn().unwrap();
    let status = child.wait_timeout(Duration::from_secs(120)).unwrap();
    let stdout = child.take_stdout().unwrap();
    if status.is_none() {
        child.abort().unwrap();
    }
    let out = read_all(stdout);
    let status = status.unwrap_or_else(|| panic!("the inner test did not end in 120 s:\n{out}"));
    assert!(status.success(), "{status:?}\n{out}");
    assert!(out.contains("1 passed"), "{out}");
    out
}

/// Runs the test `name` of this binary (at `stage`) as a child in a session
/// of its own whose controlling terminal is a new pty, and checks that it
/// printed `passed`.
fn on_a_new_terminal(name: &str, stage: &str, passed: &str) {
    let p = pty();
    let cmd = this_binary(name, stage)
        .stdin(p.slave_dup())
        .controlling_tty(0);
    let out = inner_output(cmd);
    assert!(out.contains(passed), "{out}");
}

/// Runs this test binary again, as a child in a session of its own whose
/// controlling terminal is a new pty, with only [`inner_foreground`]
/// (which does the work) selected.
#[test]
fn foreground_makes_the_child_s_group_the_foreground_of_the_caller_s_terminal() {
    on_a_new_terminal("inner_foreground", "foreground", INNER_PASSED);
}

/// The caller's side of the test above, in the re-executed binary (a
/// no-op in an ordinary run): this process leads a session whose
/// controlling terminal is its stdin.
#[test]
fn inner_foreground() {
    if std::env::var_os(INNER).as_deref() != Some("foreground".as_ref()) {
        return;
    }
    let tty = std::io::stdin();
    let tty = tty.as_fd();
    let own_group = rustix::process::getpgrp();
    let own_sid = rustix::process::getsid(None).unwrap();
    assert_eq!(rustix::termios::tcgetsid(tty).unwrap(), own_sid);
    assert_eq!(rustix::termios::tcgetpgrp(tty).unwrap(), own_group);
    // Taking the terminal back from the background: tcsetpgrp would stop
    // this process with SIGTTOU; it is blocked for the call, as the child
    // does it.
    let take_back = |tty: BorrowedFd<'_>| {
        // SAFETY: a signal mask change on this thread; the sets live on
        // the stack for the calls.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTTOU);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            let r = rustix::termios::tcsetpgrp(tty, own_group);
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            r.unwrap();
        }
        assert_eq!(rustix::termios::tcgetpgrp(tty).unwrap(), own_group);
    };

    // A new group, brought to the foreground; the program's mask is the
    // one it would have had (empty), SIGTTOU not left blocked. (A child
    // stopped by SIGTTOU before its exec would keep this spawn from
    // returning: the outer test's deadline ends the run then; the timeout
    // is for a program stopped after.)
    let cmd = helper("tty")
        .stdin(Stdio::inherit())
        .foreground()
        .timeout(Duration::from_secs(30));
    for r in reports(cmd) {
        let pid = r.field("tty_pid");
        assert_eq!(r.field("tty_pgid"), pid, "a group of its own");
        assert_ne!(r.field("tty_pgid"), own_group.as_raw_nonzero().to_string());
        assert_eq!(r.field("tty_sid"), own_sid.as_raw_nonzero().to_string());
        assert_eq!(r.field("tty_fg"), pid, "its group is the foreground");
        assert_eq!(r.field("tty_dev_tty"), "ok");
        assert_eq!(r.field("tty_sigblk"), "0000000000000000");
        take_back(tty);
    }

    // The terminal is the first stream that is it: here stderr (stdin is
    // /dev/null, stdout the report's pipe).
    let cmd = helper("tty=2")
        .stderr(Stdio::dup(tty))
        .foreground()
        .timeout(Duration::from_secs(30));
    for r in reports(cmd) {
        assert_eq!(r.field("tty_fg"), r.field("tty_pid"));
        take_back(tty);
    }

    // Another member of a job: the group of the job's first process.
    let first = helper("sleep=30").process_group(0).spawn().unwrap();
    let job = first.pid();
    let cmd = helper("tty")
        .stdin(Stdio::inherit())
        .process_group(job)
        .foreground()
        .timeout(Duration::from_secs(30));
    for r in reports(cmd) {
        assert_eq!(r.field("tty_pgid"), job.to_string());
        assert_eq!(r.field("tty_fg"), job.to_string());
        take_back(tty);
    }
    drop(first);

    // This process's own terminal cannot be a new session's.
    let (kind, item, problem) =
        build_error(helper("tty").stdin(Stdio::inherit()).controlling_tty(0));
    assert_eq!(kind, BuildErrorKind::Invalid, "{problem}");
    assert_eq!(item, "controlling_tty(0)");
    assert!(problem.contains("own controlling terminal"), "{problem}");

    println!("{INNER_PASSED}");
}

/// A process whose session leader is outside its pid namespace (a
/// container's processes, a CI runner's, anything under `unshare --pid`)
/// is told 0 for its session and for its terminal's: the terminal checks
/// of `build()` must still know the terminal as its own, and must not
/// fail on the 0. Two levels down: [`inner_session_leader`] leads a
/// session on a new pty and starts [`inner_led_from_outside`] in a new pid
/// namespace, where the checks run.
#[test]
fn a_session_led_from_outside_the_pid_namespace_keeps_its_terminal() {
    let ns = pid_namespace();
    if !common::can_unshare(ns) {
        return;
    }
    on_a_new_terminal("inner_session_leader", "leader", OUTSIDE_PASSED);
}

/// A new pid namespace, in a new user namespace unless this is root.
fn pid_namespace() -> Namespaces {
    if common::is_root() {
        Namespaces::PID
    } else {
        Namespaces::USER | Namespaces::PID
    }
}

/// The session leader of the test above (a no-op in an ordinary run).
#[test]
fn inner_session_leader() {
    if std::env::var_os(INNER).as_deref() != Some("leader".as_ref()) {
        return;
    }
    let cmd = this_binary("inner_led_from_outside", "outside")
        .stdin(Stdio::inherit())
        .unshare(pid_namespace());
    print!("{}", inner_output(cmd));
}

/// The checks of the test above, in a pid namespace its session leader is
/// outside of (a no-op in an ordinary run).
#[test]
fn inner_led_from_outside() {
    if std::env::var_os(INNER).as_deref() != Some("outside".as_ref()) {
        return;
    }
    // SAFETY: getsid reads no memory of ours.
    assert_eq!(unsafe { libc::getsid(0) }, 0, "the leader is outside");
    // SAFETY: tcgetsid only asks the kernel about fd 0.
    assert_eq!(unsafe { libc::tcgetsid(0) }, 0, "stdin is the terminal");

    // Known as this process's terminal: foreground() builds and works.
    let r = report_of(
        helper("tty")
            .stdin(Stdio::inherit())
            .foreground()
            .timeout(Duration::from_secs(30)),
    );
    let pid = r.field("tty_pid");
    assert_eq!(r.field("tty_pgid"), pid, "a group of its own");
    assert_eq!(r.field("tty_sid"), "0", "in the session led from outside");
    assert_eq!(r.field("tty_fg"), pid, "its group is the foreground");

    // And so it cannot be a new session's.
    let (kind, item, problem) =
        build_error(helper("tty").stdin(Stdio::inherit()).controlling_tty(0));
    assert_eq!(kind, BuildErrorKind::Invalid, "{problem}");
    assert_eq!(item, "controlling_tty(0)");
    assert!(problem.contains("own controlling terminal"), "{problem}");

    // Another terminal, nobody's yet, can.
    let q = pty();
    let r = report_of(helper("tty").stdin(q.slave_dup()).controlling_tty(0));
    assert_eq!(r.field("tty_sid"), r.field("tty_pid"));
    assert_eq!(r.field("tty_fg"), r.field("tty_pid"));

    println!("{OUTSIDE_PASSED}");
}
