//! `compat-probe`: makes each system call a compat profile touches (and a
//! few it must not touch) with raw `syscall(2)`, and prints one line per
//! call: its name and `ok`, or the errno it failed with. Run under
//! `compat-run PROFILE --` by the crate's tests.
//!
//! Every call is one that succeeds on a current kernel without a filter;
//! the calls that make a child (`fork`, `clone`, `clone3`) make one that
//! exits at once, and each child is reaped.

use std::ffi::c_long;
use std::mem::size_of;

use compat_run::errno_name;

/// `struct clone_args`, version 0, as `clone3(2)` reads it.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

type Outcome = Result<c_long, i32>;

fn check(rc: c_long) -> Outcome {
    if rc < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(rc)
    }
}

/// Ends a child made by a fork-like call: it runs on a copy of this
/// process's memory and must not return into it.
fn child_exits() -> ! {
    // SAFETY: _exit ends the process at once; it is what a forked child of
    // a Rust program may call.
    unsafe { libc::_exit(0) }
}

fn reap(pid: c_long) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: waitpid with a null status pointer.
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
}

/// A fork-like call's outcome: the parent reaps the child; the child exits.
fn forked(rc: Outcome) -> Outcome {
    match rc {
        Ok(0) => child_exits(),
        Ok(pid) => {
            reap(pid);
            Ok(pid)
        }
        Err(e) => Err(e),
    }
}

fn clone3() -> Outcome {
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without CLONE_VM is a fork: the child gets a copy of
    // this memory and `forked` makes it exit at once.
    forked(check(unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            size_of::<CloneArgs>(),
        )
    }))
}

fn clone(flags: c_long, pidfd: &mut libc::c_int) -> Outcome {
    // SAFETY: clone without CLONE_VM and with no new stack is a fork (see
    // clone3); with CLONE_PIDFD the kernel writes the pidfd through the
    // parent_tid argument, which points at a live c_int.
    forked(check(unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            0 as c_long,
            pidfd as *mut libc::c_int,
            0 as c_long,
            0 as c_long,
        )
    }))
}

fn fork() -> Outcome {
    // SAFETY: the child only calls _exit (in `forked`).
    forked(check(unsafe { libc::fork() }.into()))
}

/// A child that exits at once, not yet reaped.
fn zombie() -> c_long {
    // SAFETY: the child only calls _exit.
    match unsafe { libc::fork() } {
        0 => child_exits(),
        pid => pid.into(),
    }
}

fn pidfd_open(pid: c_long) -> Outcome {
    // SAFETY: integers only.
    check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as c_long) })
}

fn close(fd: Outcome) {
    if let Ok(fd) = fd {
        // SAFETY: an fd this probe opened and uses no more.
        unsafe { libc::close(fd as libc::c_int) };
    }
}

fn waitid(idtype: libc::idtype_t, id: c_long) -> Outcome {
    // SAFETY: `info` is a writable siginfo_t; the rusage pointer is null.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    check(unsafe {
        libc::syscall(
            libc::SYS_waitid,
            idtype as c_long,
            id,
            &mut info as *mut libc::siginfo_t,
            libc::WEXITED as c_long,
            0 as c_long,
        )
    })
}

fn io(r: std::io::Result<()>) -> Outcome {
    r.map(|()| 0)
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))
}

fn main() {
    let mut results: Vec<(&str, Outcome)> = Vec::new();

    results.push(("clone3", clone3()));
    let mut pidfd: libc::c_int = -1;
    let with_pidfd = clone((libc::CLONE_PIDFD | libc::SIGCHLD).into(), &mut pidfd);
    results.push(("clone_pidfd", with_pidfd));
    if pidfd >= 0 {
        close(Ok(pidfd.into()));
    }
    results.push(("clone", clone(libc::SIGCHLD.into(), &mut pidfd)));
    results.push(("fork", fork()));

    // SAFETY: an empty range above every possible fd: closes nothing.
    results.push((
        "close_range",
        check(unsafe {
            libc::syscall(libc::SYS_close_range, u32::MAX, u32::MAX, 0 as libc::c_uint)
        }),
    ));

    // SAFETY: getpid has no failure.
    let me = c_long::from(unsafe { libc::getpid() });
    let own = pidfd_open(me);
    results.push(("pidfd_open", own));
    let own_fd = own.unwrap_or(-1);
    // SAFETY: integers and a null siginfo; signal 0 only checks the target.
    results.push((
        "pidfd_send_signal",
        check(unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                own_fd,
                0 as c_long,
                0 as c_long,
                0 as c_long,
            )
        }),
    ));
    // SAFETY: integers only; a duplicate of our own stdin is taken.
    let dup =
        check(unsafe { libc::syscall(libc::SYS_pidfd_getfd, own_fd, 0 as c_long, 0 as c_long) });
    results.push(("pidfd_getfd", dup));
    close(dup);
    close(own);

    // waitid(P_PIDFD) on a child that has exited (-1 when there is no pidfd:
    // the kernel would say EBADF, a filter on the idtype says EINVAL).
    let child = zombie();
    let child_fd = pidfd_open(child);
    let by_pidfd = waitid(libc::P_PIDFD, child_fd.unwrap_or(-1));
    results.push(("waitid_pidfd", by_pidfd));
    if by_pidfd.is_err() {
        reap(child);
    }
    close(child_fd);
    let child = zombie();
    results.push(("waitid_pid", waitid(libc::P_PID, child)));

    // What glibc and std make of the profile.
    results.push((
        "thread",
        std::thread::Builder::new()
            .spawn(|| ())
            .map(|h| {
                let _ = h.join();
            })
            .map(|()| 0)
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO)),
    ));
    results.push((
        "std_spawn",
        match std::process::Command::new("true").status() {
            Ok(s) if s.success() => Ok(0),
            Ok(_) => Err(libc::ECHILD),
            Err(e) => Err(e.raw_os_error().unwrap_or(libc::EIO)),
        },
    ));
    results.push((
        "proc_self_fd",
        io(std::fs::read_dir("/proc/self/fd").map(|_| ())),
    ));
    results.push(("open", io(std::fs::File::open("/dev/null").map(|_| ()))));
    // The landlock ABI version (Linux 5.13): a query, no ruleset made.
    // SAFETY: a null attribute of size 0 with the version flag.
    results.push((
        "landlock",
        check(unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<libc::c_void>(),
                0usize,
                1u32,
            )
        }),
    ));

    for (name, outcome) in results {
        match outcome {
            Ok(_) => println!("{name} ok"),
            Err(e) => println!("{name} {}", errno_name(e)),
        }
    }
    // Not a call that fails: whether the launcher left no_new_privs as it
    // was ("ok": not set) or had to set it ("set").
    // SAFETY: PR_GET_NO_NEW_PRIVS takes integers only.
    let nnp = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
    println!("no_new_privs {}", if nnp == 0 { "ok" } else { "set" });
}
