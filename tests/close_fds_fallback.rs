//! The last way of closing inherited fds (issue "Hardening", item 5): with
//! neither `close_range(2)` (before Linux 5.9, or refused by a seccomp
//! filter with `ENOSYS` or `EPERM`) nor `/proc` (a container or chroot
//! without it), the child finds its open fds with `poll(2)` and closes the
//! ones not planned.
//!
//! Each test takes `SERIAL`: they open stray fds in this process.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard};

use common::{helper, is_root, report_of};
use safespawn::{Command, Direct, Stdio};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens `/dev/zero` without `O_CLOEXEC`, as careless code does.
fn leaky_open() -> OwnedFd {
    rustix::fs::open(
        c"/dev/zero",
        rustix::fs::OFlags::RDONLY,
        rustix::fs::Mode::empty(),
    )
    .unwrap()
}

/// A leaky copy of `fd` at exactly `at` (dup2 leaves it inheritable).
fn leaky_at(fd: &OwnedFd, at: RawFd) -> OwnedFd {
    // SAFETY: dup2 onto a number this test owns from now on; the result is
    // wrapped at once.
    let rc = unsafe { libc::dup2(fd.as_raw_fd(), at) };
    assert_eq!(rc, at, "dup2 to {at}: {}", std::io::Error::last_os_error());
    // SAFETY: dup2 just made `at` an fd of ours.
    unsafe { std::os::fd::FromRawFd::from_raw_fd(at) }
}

/// The highest fd the soft RLIMIT_NOFILE lets this process have (kept
/// within 2^20, the kernel's default `fs.nr_open`).
fn highest_allowed_fd() -> RawFd {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1 << 20)
        .min(1 << 20);
    soft as RawFd - 1
}

/// Stray fds no child may get: a few low ones, one between the planned
/// targets, one at the very top of what RLIMIT_NOFILE allows.
fn strays() -> Vec<OwnedFd> {
    let mut v: Vec<OwnedFd> = (0..20).map(|_| leaky_open()).collect();
    v.push(leaky_at(&v[0], 700));
    v.push(leaky_at(&v[0], highest_allowed_fd()));
    v
}

/// The command every test spawns: piped stdin, a passed fd and a mapped
/// one; with a (no-op) hook on the fork path. Returns the fd numbers the
/// child must have, sorted.
fn planned(cmd: Command<Direct>, fork_path: bool) -> (Command<Direct>, Vec<RawFd>) {
    let passed: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    let mut want = vec![0, 1, 2, 40, passed.as_raw_fd()];
    want.sort_unstable();
    let mut cmd = cmd
        .pass_fd(passed)
        .map_fd(std::fs::File::open("/dev/urandom").unwrap(), 40)
        .stdin(Stdio::piped());
    if fork_path {
        // SAFETY: the hook makes no call at all.
        cmd = unsafe { cmd.pre_exec(|| Ok(())) };
    }
    (cmd, want)
}

/// Forced with the hidden knob, polling leaves exactly the planned table,
/// on both spawn paths, with strays up to the RLIMIT_NOFILE limit.
#[test]
fn closing_by_polling_leaves_exactly_the_planned_fds() {
    let _g = serial();
    let strays = strays();
    for fork_path in [false, true] {
        let (cmd, want) = planned(helper("report").close_fds_by_polling(), fork_path);
        let r = report_of(cmd);
        assert_eq!(r.fd_numbers(), want, "fork path: {fork_path}: {:?}", r.fds);
        assert!(r.fds[&0].starts_with("pipe:"), "{:?}", r.fds);
        assert_eq!(r.fds[&40], "/dev/urandom");
    }
    drop(strays);
}

/// The child scans up to the soft RLIMIT_NOFILE in force when it closes,
/// not only the one `build()` saw: a stray opened after the limit was
/// raised between `build()` and `spawn()` is found too.
#[test]
fn polling_reaches_a_limit_raised_after_build() {
    let _g = serial();
    let nofile = rustix::process::Resource::Nofile;
    let old = rustix::process::getrlimit(nofile);
    let soft = old.current.unwrap_or(1 << 20).min(1 << 20);
    if soft <= 512 {
        eprintln!("skipping: the soft RLIMIT_NOFILE ({soft}) is too low to lower for build()");
        return;
    }
    // Lowered for build(), back up for the spawn.
    let low = rustix::process::Rlimit {
        current: Some(256),
        maximum: old.maximum,
    };
    rustix::process::setrlimit(nofile, low).unwrap();
    let (cmd, want) = planned(helper("report").close_fds_by_polling(), false);
    let prepared = cmd.stdout(Stdio::piped()).build().unwrap();
    rustix::process::setrlimit(nofile, old).unwrap();
    let high = leaky_at(&leaky_open(), (soft - 1) as RawFd);
    let r = common::report_from(&prepared);
    drop(high);
    assert_eq!(r.fd_numbers(), want, "{:?}", r.fds);
}

// ---------------------------------------------------------------------------
// The real fallback: no close_range, no /proc.

/// Set in the copy of this test binary that runs without /proc and
/// close_range; its value is the errno the seccomp filter answers with.
const INNER: &str = "SAFESPAWN_TEST_NO_PROC_NO_CLOSE_RANGE";
const REAL_FALLBACK: &str = "without_close_range_and_proc_children_get_exactly_the_planned_fds";

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// Makes `close_range(2)` fail with `errno` in this thread and the
/// processes it starts: a seccomp filter, as a container runtime's profile
/// or an old kernel would.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn refuse_close_range(errno: i32) {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let mut prog = [
        op(LD_W_ABS, 0, 0, 4), // seccomp_data.arch
        op(JEQ_K, 1, 0, AUDIT_ARCH),
        op(RET_K, 0, 0, RET_ALLOW),
        op(LD_W_ABS, 0, 0, 0), // seccomp_data.nr
        op(JEQ_K, 0, 1, libc::SYS_close_range as u32),
        op(RET_K, 0, 0, RET_ERRNO | errno as u32),
        op(RET_K, 0, 0, RET_ALLOW),
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: a valid filter program that outlives the call (the kernel
    // copies it); PR_SET_SECCOMP touches nothing else.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const libc::sock_fprog,
        )
    };
    assert_eq!(rc, 0, "seccomp: {}", std::io::Error::last_os_error());
    assert_eq!(
        // SAFETY: close_range on an empty range at the top touches nothing.
        unsafe { libc::syscall(libc::SYS_close_range, u32::MAX, u32::MAX, 0) },
        -1
    );
}

/// Gives this thread a mount namespace of its own without `/proc`.
fn unmount_proc() {
    // SAFETY: unshare and mount take no pointers but C strings that live
    // for the calls.
    unsafe {
        assert_eq!(
            libc::unshare(libc::CLONE_NEWNS),
            0,
            "unshare: {}",
            std::io::Error::last_os_error()
        );
        // Private first, so that the unmount cannot propagate to the
        // namespace this test was started in.
        let rc = libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        );
        assert_eq!(rc, 0, "make / private: {}", std::io::Error::last_os_error());
        let rc = libc::umount2(c"/proc".as_ptr(), libc::MNT_DETACH);
        assert_eq!(rc, 0, "umount /proc: {}", std::io::Error::last_os_error());
        // A /proc mounted over another (`unshare --pid --mount-proc`, some
        // container set-ups) uncovers the one below: those go too.
        while libc::umount2(c"/proc".as_ptr(), libc::MNT_DETACH) == 0 {}
    }
    assert!(
        std::fs::metadata("/proc/self/fd").is_err(),
        "/proc is still there"
    );
}

/// In the inner copy: no /proc, close_range refused; spawns on both paths,
/// with the close method chosen before the filter (close_range looked
/// usable) and after it, and prints `pid=N want=A,B,..` for each, then
/// `ready`, and waits for end-of-file on stdin before stopping them.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn inner(errno: &str) {
    let errno = match errno {
        "NOSYS" => libc::ENOSYS,
        "PERM" => libc::EPERM,
        other => panic!("{INNER}={other}"),
    };
    unmount_proc();
    let strays = strays();
    // The helper says "ready" once it runs its own code: before that, the
    // dynamic loader may briefly hold an fd of its own.
    let sleeper = || helper(r"out=ready\n,sleep=30").stdout(Stdio::piped());
    // Built while close_range still works: the child meets the refusal only
    // when it tries, and falls through every method.
    let early: Vec<_> = [false, true]
        .into_iter()
        .map(|fork| planned(sleeper(), fork))
        .map(|(cmd, want)| (cmd.build().unwrap(), want))
        .collect();
    refuse_close_range(errno);
    let late: Vec<_> = [false, true]
        .into_iter()
        .map(|fork| planned(sleeper(), fork))
        .map(|(cmd, want)| (cmd.build().unwrap(), want))
        .collect();
    let mut children = Vec::new();
    for (i, (prepared, want)) in early.iter().chain(&late).enumerate() {
        let mut child = prepared
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {i} without close_range and /proc: {e:?}"));
        let mut ready = String::new();
        BufReader::new(child.take_stdout().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready, "ready\n", "child {i}");
        let want: Vec<String> = want.iter().map(|n| n.to_string()).collect();
        println!("pid={} want={}", child.pid(), want.join(","));
        children.push(child);
    }
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut rest);
    for child in children {
        let _ = child.abort();
    }
    drop(strays);
}

/// The fallback where it is needed. Needs root: a mount namespace in which
/// to unmount `/proc` (in a copy of this test binary, so nothing else runs
/// without it), and a seccomp filter refusing close_range.
#[test]
fn without_close_range_and_proc_children_get_exactly_the_planned_fds() {
    if let Ok(errno) = std::env::var(INNER) {
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        inner(&errno);
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        let _ = errno;
        return;
    }
    if !cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        eprintln!("skipping {REAL_FALLBACK}: the seccomp filter is written for x86_64 and aarch64");
        return;
    }
    if !is_root() {
        eprintln!(
            "skipping {REAL_FALLBACK}: it needs root (a mount namespace without /proc, a seccomp filter)"
        );
        return;
    }
    let _g = serial();
    for errno in ["NOSYS", "PERM"] {
        let mut copy = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", REAL_FALLBACK, "--nocapture", "--test-threads=1"])
            .env(INNER, errno)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut seen = Vec::new();
        let mut checked = 0;
        // The harness of the copy may start a line before ours ("test ... ").
        for line in BufReader::new(copy.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            seen.push(line.clone());
            if line == "ready" {
                // The children are checked: let the copy stop them and end.
                drop(copy.stdin.take());
                continue;
            }
            let Some((pid, want)) = line
                .find("pid=")
                .and_then(|at| line[at + 4..].split_once(" want="))
            else {
                continue;
            };
            // Read from here, where /proc is mounted.
            let mut got: Vec<RawFd> = std::fs::read_dir(format!("/proc/{pid}/fd"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
                .collect();
            got.sort_unstable();
            let want: Vec<RawFd> = want.split(',').map(|n| n.parse().unwrap()).collect();
            assert_eq!(
                got, want,
                "close_range refused with E{errno}, child {checked}"
            );
            checked += 1;
        }
        let status = copy.wait().unwrap();
        assert!(
            status.success() && checked == 4,
            "E{errno}: the copy without /proc and close_range: {status}, {checked} children checked; it said:\n{}",
            seen.join("\n")
        );
    }
}
