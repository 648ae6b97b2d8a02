//! The core engine's promises, checked through the test helper's report.

mod common;

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{helper, report_of, HELPER};
use safespawn::{Command, Errno, Error, Signal, Stage, Stdio};

/// Whether `pid` is still a zombie child of this process.
fn is_our_zombie(pid: i32) -> bool {
    common::zombie_children().contains(&pid)
}

// ---------------------------------------------------------------- argv

#[test]
fn argv_round_trips_exactly() {
    let args: Vec<&[u8]> = vec![
        b"",
        b"plain",
        b"with space",
        b"  leading and trailing  ",
        b"'single'",
        b"\"double\"",
        b"back\\slash",
        b"$HOME;|&<>*?",
        b"new\nline\ttab",
        b"\xff\xfe not utf-8 \x80",
        b"",
        "ünïcödé ✓".as_bytes(),
    ];
    let cmd = helper("report").args(args.iter().map(|a| OsStr::from_bytes(a)));
    let r = report_of(cmd);
    assert_eq!(r.args.len(), args.len());
    for (got, want) in r.args.iter().zip(&args) {
        assert_eq!(got.as_slice(), *want);
    }
}

#[test]
fn arg_pair_fmt_and_from_argv() {
    let r = report_of(
        Command::from_argv([HELPER, "::report", "x"])
            .arg_pair("name", "va lue")
            .arg_fmt(format_args!("-n{}", 42)),
    );
    assert_eq!(
        r.args,
        vec![b"x".to_vec(), b"name=va lue".to_vec(), b"-n42".to_vec()]
    );
}

// ---------------------------------------------------------------- environment

#[test]
fn no_env_call_inherits_the_parent_environment_at_build() {
    let prepared = helper("report").stdout(Stdio::piped()).build().unwrap();
    // The snapshot is taken at build(): a variable set afterwards is not seen.
    std::env::set_var("SAFESPAWN_TEST_AFTER_BUILD", "1");
    let r = common::report_from(&prepared);
    let ours = |e: &String| !e.starts_with("SAFESPAWN_TEST_");
    let mut parent: Vec<String> = std::env::vars()
        .map(|(k, v)| format!("{k}={v}"))
        .filter(ours)
        .collect();
    parent.sort();
    let child: Vec<String> = r.env_str().into_iter().filter(ours).collect();
    assert_eq!(child, parent);
    assert!(!r
        .env_str()
        .iter()
        .any(|e| e.starts_with("SAFESPAWN_TEST_AFTER_BUILD")));
}

#[test]
fn any_env_call_means_exactly_the_listed_variables() {
    let r = report_of(helper("report").env("A", "1").env("B", "two words"));
    assert_eq!(r.env_str(), vec!["A=1", "B=two words"]);
}

#[test]
fn a_key_set_twice_is_replaced_in_place() {
    let cmd = helper("report")
        .env("A", "1")
        .env("B", "2")
        .env_string("A=3");
    assert_eq!(cmd.to_string(), format!("A=3 B=2 {HELPER} ::report"));
    let r = report_of(cmd);
    assert_eq!(r.env_str(), vec!["A=3", "B=2"]);
}

#[test]
fn env_pass_copies_only_set_variables() {
    std::env::set_var("SAFESPAWN_TEST_PASS", "passed value");
    std::env::remove_var("SAFESPAWN_TEST_UNSET");
    let r = report_of(
        helper("report")
            .env_pass("SAFESPAWN_TEST_PASS")
            .env_pass("SAFESPAWN_TEST_UNSET"),
    );
    assert_eq!(r.env_str(), vec!["SAFESPAWN_TEST_PASS=passed value"]);
}

#[test]
fn env_pass_common_is_lc_all_plus_the_parents_values() {
    let r = report_of(helper("report").env_pass_common());
    let mut want = vec!["LC_ALL=C".to_string()];
    for k in [
        "PATH",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "TMPDIR",
    ] {
        if let Some(v) = std::env::var_os(k) {
            want.push(format!("{k}={}", v.to_string_lossy()));
        }
    }
    want.sort();
    assert_eq!(r.env_str(), want);
}

#[test]
fn env_remove_and_env_clear() {
    // Removing while inheriting filters the inherited environment.
    let r = report_of(helper("report").env_remove("PATH"));
    assert!(r.env_str().iter().all(|e| !e.starts_with("PATH=")));
    assert!(r.env_str().iter().any(|e| e.starts_with("HOME=")));
    // Clearing gives an empty environment to which later calls add.
    let r = report_of(
        helper("report")
            .env("GONE", "1")
            .env_clear()
            .env("KEPT", "1"),
    );
    assert_eq!(r.env_str(), vec!["KEPT=1"]);
    let r = report_of(helper("report").env_clear());
    assert!(r.env.is_empty());
}

#[test]
fn env_values_may_hold_any_bytes_but_nul() {
    let v = OsStr::from_bytes(b"\xff=x y\n");
    let r = report_of(helper("report").env("K", v));
    assert_eq!(r.env, vec![b"K=\xff=x y\n".to_vec()]);
}

#[test]
fn bad_environment_entries_are_named_by_build() {
    let cases: Vec<(Command, &str)> = vec![
        (Command::new("true").env("", "x"), "the name is empty"),
        (Command::new("true").env("A=B", "x"), "contains '='"),
        (Command::new("true").env("A\0", "x"), "NUL"),
        (Command::new("true").env("OK", "a\0b"), "NUL"),
        (Command::new("true").env_string("NOEQUALS"), "no '='"),
    ];
    for (cmd, want) in cases {
        let err = cmd.build().unwrap_err();
        assert!(matches!(err, Error::Build { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(want), "{msg:?} should mention {want:?}");
        assert!(
            msg.contains("environment"),
            "{msg:?} should name the variable"
        );
    }
}

// ---------------------------------------------------------------- build checks

#[test]
fn build_names_the_offending_argument() {
    let err = Command::new("true")
        .arg("ok")
        .arg("b\0ad")
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid command: argument 2 \"b\\0ad\": contains a NUL byte at offset 1"
    );
    let err = Command::new("").build().unwrap_err();
    assert_eq!(err.to_string(), "invalid command: program: is empty");
    let err = Command::from_argv(Vec::<&str>::new()).build().unwrap_err();
    assert_eq!(err.to_string(), "invalid command: program: is empty");
    let err = Command::new("true")
        .current_dir("/tm\0p")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("working directory"), "{err}");
}

#[test]
fn a_bare_name_is_resolved_on_path() {
    // The parent's PATH...
    assert!(Command::new("sh")
        .args(["-c", "exit 0"])
        .status()
        .unwrap()
        .success());
    // ...or the child's, when the command sets one.
    let err = Command::new("sh")
        .env("PATH", "/nonexistent")
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("not found in PATH=/nonexistent"),
        "{err}"
    );
    let dir = tempdir();
    let prog = dir.join("only-here");
    std::fs::copy("/bin/true", &prog).unwrap();
    let st = Command::new("only-here")
        .env("PATH", dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    // Found but not executable: said so.
    let noexec = dir.join("noexec-prog");
    std::fs::write(&noexec, "#!/bin/sh\n").unwrap();
    let err = Command::new("noexec-prog")
        .env("PATH", dir.path())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("not executable"), "{err}");
}

#[test]
fn e2big_is_a_build_error() {
    let huge = "x".repeat(200_000);
    let err = Command::new("true").arg(&huge).build().unwrap_err();
    assert!(
        err.to_string().contains("argument 1") && err.to_string().contains("E2BIG"),
        "{err}"
    );
    let many: Vec<String> = (0..100_000).map(|i| format!("argument-{i:08}")).collect();
    let err = Command::new("true").args(&many).build().unwrap_err();
    assert!(err.to_string().contains("E2BIG"), "{err}");
    // Just under the single-string limit is fine.
    let ok = "y".repeat(100_000);
    assert!(Command::new("true").arg(&ok).status().unwrap().success());
}

fn tempdir() -> common::Scratch {
    common::Scratch::new("core")
}

// ---------------------------------------------------------------- fds

/// Opens `n` fds on /dev/null WITHOUT close-on-exec, as careless code does.
fn leaky_fds(n: usize) -> Vec<OwnedFd> {
    (0..n)
        .map(|_| {
            rustix::fs::open(
                c"/dev/null",
                rustix::fs::OFlags::RDONLY,
                rustix::fs::Mode::empty(),
            )
            .unwrap()
        })
        .collect()
}

#[test]
fn the_child_sees_only_stdio_and_planned_fds() {
    let leaks = leaky_fds(200);
    let r = report_of(helper("report"));
    assert_eq!(r.fd_numbers(), vec![0, 1, 2]);
    assert_eq!(r.fds[&0], "/dev/null");
    assert!(r.fds[&1].starts_with("pipe:"), "{:?}", r.fds);
    assert_eq!(r.fds[&2], "/dev/null");

    let passed: OwnedFd = std::fs::File::open("/dev/zero").unwrap().into();
    let passed_no = passed.as_raw_fd();
    let mapped = std::fs::File::open("/dev/urandom").unwrap();
    let r = report_of(helper("report").pass_fd(passed).map_fd(mapped, 9));
    let mut want = vec![0, 1, 2, 9, passed_no];
    want.sort();
    assert_eq!(r.fd_numbers(), want);
    assert_eq!(r.fds[&passed_no], "/dev/zero");
    assert_eq!(r.fds[&9], "/dev/urandom");
    drop(leaks);
}

#[test]
fn pass_fd_closes_the_parents_copy_with_the_prepared() {
    // The write end goes to the child; once the Prepared (and the child) are
    // gone, the read end sees end-of-file only if no copy is left anywhere.
    let (mut r, w) = std::io::pipe().unwrap();
    let prepared = Command::new("true").pass_fd(w.into()).build().unwrap();
    assert!(prepared.status().unwrap().success());
    drop(prepared);
    let mut buf = Vec::new();
    r.read_to_end(&mut buf).unwrap(); // would block forever if a copy leaked
    assert!(buf.is_empty());
}

#[test]
fn pass_fd_shared_leaves_the_fd_with_the_caller() {
    let (mut r, mut w) = std::io::pipe().unwrap();
    let n = w.as_raw_fd();
    let cmd = Command::new("sh")
        .arg("-c")
        .arg(format!("printf child >&{n}"))
        .pass_fd_shared(w.as_fd());
    assert!(cmd.status().unwrap().success());
    std::io::Write::write_all(&mut w, b"+parent").unwrap();
    drop(w);
    let mut s = String::new();
    r.read_to_string(&mut s).unwrap();
    assert_eq!(s, "child+parent");
}

#[test]
fn map_fd_places_and_swaps_without_clobbering() {
    let dir = tempdir();
    let (pa, pb) = (dir.join("swap-a"), dir.join("swap-b"));
    std::fs::write(&pa, "a").unwrap();
    std::fs::write(&pb, "b").unwrap();
    let a = std::fs::File::open(&pa).unwrap();
    let b = std::fs::File::open(&pb).unwrap();
    let (na, nb) = (a.as_raw_fd(), b.as_raw_fd());
    // a goes where b is, and b where a is: each source is the other's target.
    let r = report_of(helper("report").map_fd(a, nb).map_fd(b, na));
    assert_eq!(r.fds[&nb], pa.to_str().unwrap());
    assert_eq!(r.fds[&na], pb.to_str().unwrap());
    // A source that is a stdio target: stdin from the fd that is to become 1.
    let c = std::fs::File::open(&pa).unwrap();
    let r = report_of(
        helper("report")
            .stdin(c)
            .map_fd(std::fs::File::open(&pb).unwrap(), 5),
    );
    assert_eq!(r.fds[&0], pa.to_str().unwrap());
    assert_eq!(r.fds[&5], pb.to_str().unwrap());
}

#[test]
fn fd_collisions_are_build_errors_naming_the_fd() {
    let f = || std::fs::File::open("/dev/null").unwrap();
    let err = Command::new("true")
        .map_fd(f(), 7)
        .map_fd(f(), 7)
        .build()
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("child fd 7") && msg.contains("collides"),
        "{msg}"
    );
    let err = Command::new("true").map_fd(f(), 1).build().unwrap_err();
    assert!(err.to_string().contains("stdout"), "{err}");
    let err = Command::new("true").map_fd(f(), -3).build().unwrap_err();
    assert!(err.to_string().contains("negative"), "{err}");
    let err = Command::new("true")
        .map_fd(f(), 1 << 30)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("RLIMIT_NOFILE"), "{err}");
    // pass_fd_shared of a closed fd is named at build.
    let closed = f().into_raw_fd();
    // SAFETY: the fd was just opened and is owned by nobody else.
    drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(closed) });
    // SAFETY: only borrowed to record its number; build() reports it closed.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(closed) };
    let err = Command::new("true").pass_fd_shared(borrowed).build();
    if let Err(err) = err {
        assert!(err.to_string().contains(&format!("fd {closed}")), "{err}");
    } // (another test may have reused the number meanwhile: then it is open)
}

#[test]
fn stdio_variants() {
    let dir = tempdir();
    let out_path = dir.join("stdio-out");
    let out = std::fs::File::create(&out_path).unwrap();
    let st = helper("out=to-file\\n,err=to-err\\n")
        .stdout(out)
        .stderr_to_stdout()
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(
        std::fs::read_to_string(&out_path).unwrap(),
        "to-file\nto-err\n"
    );

    // Stdio::dup keeps the caller's fd.
    let file = std::fs::File::create(&out_path).unwrap();
    let st = helper("out=dup")
        .stdout(Stdio::dup(file.as_fd()))
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(std::fs::read_to_string(&out_path).unwrap(), "dup");
    assert!(rustix::io::fcntl_getfd(&file).is_ok());

    // A pipe end converts too.
    let (mut r, w) = std::io::pipe().unwrap();
    assert!(helper("out=piped").stdout(w).status().unwrap().success());
    let mut s = String::new();
    r.read_to_string(&mut s).unwrap();
    assert_eq!(s, "piped");

    // stdin piped, echoed back.
    let mut child = helper("echo")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.take_stdin().unwrap(), b"round trip").unwrap();
    let mut s = String::new();
    child.take_stdout().unwrap().read_to_string(&mut s).unwrap();
    assert_eq!(s, "round trip");
    assert!(child.wait().unwrap().success());
}

// ---------------------------------------------------------------- cwd and errors

#[test]
fn current_dir_is_applied() {
    let r = report_of(helper("report").current_dir("/usr"));
    assert_eq!(r.field("cwd"), "/usr");
}

fn spawn_error(cmd: Command) -> (Stage, Errno) {
    match cmd.spawn() {
        Err(Error::Spawn { stage, errno, .. }) => (stage, errno),
        other => panic!("expected a spawn error, got {other:?}"),
    }
}

#[test]
fn exec_and_chdir_errors_carry_stage_and_errno() {
    assert_eq!(
        spawn_error(Command::new("/nonexistent/program")),
        (Stage::Exec, Errno::NOENT)
    );
    let dir = tempdir();
    let noexec = dir.join("no-exec-bit");
    std::fs::write(&noexec, "#!/bin/sh\nexit 0\n").unwrap();
    assert_eq!(
        spawn_error(Command::new(&noexec)),
        (Stage::Exec, Errno::ACCESS)
    );
    assert_eq!(
        spawn_error(Command::new("true").current_dir("/nonexistent-dir")),
        (Stage::Chdir, Errno::NOENT)
    );
    // The error says what and where, and maps to io::Error.
    let err = Command::new("true")
        .current_dir("/nonexistent-dir")
        .status()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not start true: changing the working directory /nonexistent-dir failed: No such file or directory (os error 2)"
    );
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::NotFound
    );
}

// ---------------------------------------------------------------- life cycle

#[test]
fn run_status_and_exit_errors() {
    assert!(Command::new("true").run().unwrap().success());
    let err = helper("exit=3").arg("it's").run().unwrap_err();
    match &err {
        Error::Exit {
            status, command, ..
        } => {
            assert_eq!(status.code(), Some(3));
            assert_eq!(command, &format!("{HELPER} ::exit=3 'it'\\''s'"));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().ends_with("exited with status 3"), "{err}");
    let err = helper("kill=9").run().unwrap_err();
    assert!(err.to_string().ends_with("was killed by signal 9"), "{err}");
    assert_eq!(helper("exit=4").status().unwrap().code(), Some(4));
}

#[test]
fn timeout_aborts_and_reaps() {
    let started = Instant::now();
    let err = helper("sleep=30")
        .timeout(Duration::from_millis(100))
        .status()
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.to_string().contains("timed out after 100ms"), "{err}");
}

#[test]
fn drop_kills_and_reaps() {
    let child = helper("sleep=30").spawn().unwrap();
    let pid = child.pid();
    drop(child);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists() || !is_our_zombie(pid));
    assert!(!is_our_zombie(pid));
}

#[test]
fn abort_is_term_then_kill() {
    let started = Instant::now();
    let f = helper("sleep=30").spawn().unwrap().abort().unwrap();
    assert_eq!(f.signal(), Some(libc::SIGTERM));
    assert!(started.elapsed() < Duration::from_secs(5));
    // A child that ignores TERM gets KILL after the grace.
    let f = Command::new("sh")
        .args(["-c", "trap '' TERM; sleep 30"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(50)); // let the trap be set
    let f2 = f.abort().unwrap();
    assert_eq!(f2.signal(), Some(libc::SIGKILL));
}

#[test]
fn wait_timeout_try_wait_and_signal() {
    let mut child = helper("sleep=30").spawn().unwrap();
    assert!(child.try_wait().unwrap().is_none());
    assert!(child
        .wait_timeout(Duration::from_millis(30))
        .unwrap()
        .is_none());
    child.signal(Signal::KILL).unwrap();
    let st = child
        .wait_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), Some(9));
    // Reaped: the status stays, signalling is refused, wait returns it.
    assert_eq!(child.try_wait().unwrap(), Some(st));
    assert!(child.signal(Signal::TERM).is_err());
    let pid = child.pid();
    assert_eq!(child.wait().unwrap().status(), st);
    assert!(!is_our_zombie(pid));
}

#[test]
fn detach_hands_the_child_over() {
    let child = helper("sleep=0.05").spawn().unwrap();
    let d = child.detach();
    let pid = d.pid();
    assert!(d.wait().unwrap().success());
    assert!(!is_our_zombie(pid));
    // Dropping a Detached leaves the child running.
    let d = helper("sleep=30").spawn().unwrap().detach();
    let pid = d.pid();
    drop(d);
    std::thread::sleep(Duration::from_millis(20));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert!(!stat.contains(") Z "), "{stat}");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    rustix::process::waitpid(
        rustix::process::Pid::from_raw(pid),
        rustix::process::WaitOptions::empty(),
    )
    .unwrap();
}

// ---------------------------------------------------------------- reuse

#[test]
fn one_prepared_spawned_1000_times() {
    let prepared = Command::new("true").build().unwrap();
    for i in 0..1000 {
        let st = prepared.status().unwrap();
        assert!(st.success(), "spawn {i}: {st:?}");
    }
}

/// A `Prepared` keeps its report pipe between spawns: a failure report must
/// reach exactly the spawn that failed, and a success after a failure must
/// not see an old message.
#[test]
fn one_prepared_reports_each_spawns_own_outcome() {
    let scratch = tempdir();
    let dir = scratch.join("cwd");
    let prepared = helper("exit=0").current_dir(&dir).build().unwrap();
    for round in 0..20 {
        std::fs::create_dir(&dir).unwrap();
        for _ in 0..3 {
            assert!(prepared.status().unwrap().success(), "round {round}");
        }
        std::fs::remove_dir(&dir).unwrap();
        for _ in 0..3 {
            match prepared.status() {
                Err(Error::Spawn { stage, errno, .. }) => {
                    assert_eq!(
                        (stage, errno),
                        (Stage::Chdir, Errno::NOENT),
                        "round {round}"
                    )
                }
                other => panic!("round {round}: expected a chdir error, got {other:?}"),
            }
        }
    }
}

#[test]
fn one_prepared_from_8_threads_at_once() {
    let prepared = Arc::new(helper("exit=0").build().unwrap());
    let barrier = Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (p, b) = (prepared.clone(), barrier.clone());
            std::thread::spawn(move || {
                b.wait();
                (0..50).filter(|_| p.status().unwrap().success()).count()
            })
        })
        .collect();
    let ok: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(ok, 400);
}

#[test]
fn every_close_method_leaves_exactly_the_planned_table() {
    let leaks = leaky_fds(200);
    type Method = fn(Command) -> Command;
    let methods: [(&str, Method); 3] = [
        ("default (close_range with CLOSE_RANGE_CLOEXEC here)", |c| c),
        ("plain close_range", |c| c.close_fds_without_cloexec()),
        ("/proc/self/fd walk", |c| c.close_fds_by_proc_walk()),
    ];
    for (name, method) in methods {
        for fork_path in [false, true] {
            let passed: OwnedFd = std::fs::File::open("/dev/zero").unwrap().into();
            let passed_no = passed.as_raw_fd();
            let mut cmd = method(helper("report"))
                .pass_fd(passed)
                .map_fd(std::fs::File::open("/dev/urandom").unwrap(), 40)
                .stdin(Stdio::piped());
            if fork_path {
                // SAFETY: the hook makes no call at all.
                cmd = unsafe { cmd.pre_exec(|| Ok(())) };
            }
            let r = report_of(cmd);
            let mut want = vec![0, 1, 2, 40, passed_no];
            want.sort();
            assert_eq!(r.fd_numbers(), want, "{name}, fork path: {fork_path}");
            assert!(r.fds[&0].starts_with("pipe:"), "{name}: {:?}", r.fds);
            assert_eq!(r.fds[&40], "/dev/urandom", "{name}");
        }
    }
    drop(leaks);
}
