//! The child's fd table: only stdio and the planned fds (`pass_fd`,
//! `pass_fd_shared`, `map_fd`, swaps placed without clobbering), fd
//! collisions as build errors, the stdio variants, and every way of closing
//! the rest, checked through the test helper's report.

mod common;

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, IntoRawFd, OwnedFd};

use common::{helper, report_of};
use safespawn::{BuildErrorKind, Command, Stdio};

fn tempdir() -> common::Scratch {
    common::Scratch::new("fds")
}

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
    // Through /proc/self/fd/N rather than `>&N`: dash refuses fd numbers
    // above 9, and the other tests here keep up to 200 fds open meanwhile.
    let cmd = Command::new("sh")
        .arg("-c")
        .arg(format!("printf child >/proc/self/fd/{n}"))
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
    assert_eq!(err.build_kind(), Some(BuildErrorKind::Collision), "{err}");
    let err = Command::new("true").map_fd(f(), 1).build().unwrap_err();
    assert!(err.to_string().contains("stdout"), "{err}");
    assert_eq!(err.build_kind(), Some(BuildErrorKind::Collision), "{err}");
    let err = Command::new("true").map_fd(f(), -3).build().unwrap_err();
    assert!(err.to_string().contains("negative"), "{err}");
    assert_eq!(err.build_kind(), Some(BuildErrorKind::Invalid), "{err}");
    let err = Command::new("true")
        .map_fd(f(), 1 << 30)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("RLIMIT_NOFILE"), "{err}");
    assert_eq!(err.build_kind(), Some(BuildErrorKind::Invalid), "{err}");
    // pass_fd_shared of a closed fd is named at build.
    let closed = f().into_raw_fd();
    // SAFETY: the fd was just opened and is owned by nobody else.
    drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(closed) });
    // SAFETY: only borrowed to record its number; build() reports it closed.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(closed) };
    let err = Command::new("true").pass_fd_shared(borrowed).build();
    if let Err(err) = err {
        assert!(err.to_string().contains(&format!("fd {closed}")), "{err}");
        assert_eq!(err.build_kind(), Some(BuildErrorKind::Invalid), "{err}");
    } // (another test may have reused the number meanwhile: then it is open)
}

// ---------------------------------------------------------------- stdio

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

// ---------------------------------------------------------------- closing the rest

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
