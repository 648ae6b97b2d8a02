//! Every way a spawn can fail before exec is reported with the right stage
//! and the real errno (or, for what `build()` can see, a build error naming
//! the item).
//!
//! Privilege failures need an unprivileged context. As root, the test runs
//! the spawn from a dedicated thread that first removes the needed
//! capability from its own effective and permitted sets: Linux credentials
//! are per thread, and the child inherits those of the thread that spawns
//! it. The rest of the test process keeps its capabilities.

mod common;

use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;

use common::{helper, is_root, zombie_children};
use rustix::thread::CapabilitySet;
use safespawn::{Command, Errno, Error, Resource, Stage};

/// A fresh scratch directory for one test, removed when dropped.
fn scratch(name: &str) -> common::Scratch {
    common::Scratch::new(name)
}

/// Spawns `cmd` and returns the stage and errno of the `Error::Spawn`.
#[track_caller]
fn spawn_failure(cmd: Command) -> (Stage, i32) {
    match cmd.status() {
        Err(Error::Spawn {
            stage,
            errno,
            program,
            ..
        }) => {
            assert!(!program.is_empty());
            (stage, errno.raw_os_error())
        }
        Err(other) => panic!("expected Error::Spawn, got {other}"),
        Ok(st) => panic!("expected Error::Spawn, but the command ran: {st:?}"),
    }
}

/// Runs `f` in a thread whose effective and permitted sets lack `caps`
/// (when root; an unprivileged process lacks them already).
fn without_caps<R: Send>(caps: CapabilitySet, f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| {
        s.spawn(|| {
            if is_root() {
                let mut sets = rustix::thread::capabilities(None).unwrap();
                sets.effective.remove(caps);
                sets.permitted.remove(caps);
                rustix::thread::set_capabilities(None, sets).unwrap();
            }
            f()
        })
        .join()
        .unwrap()
    })
}

#[test]
fn missing_program_is_exec_enoent() {
    let r = spawn_failure(Command::new("/nonexistent/safespawn-program"));
    assert_eq!(r, (Stage::Exec, libc::ENOENT));
}

#[test]
fn no_exec_bit_is_exec_eacces() {
    let dir = scratch("noexec");
    let prog = dir.join("prog");
    std::fs::write(&prog, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Even root needs one exec bit.
    assert_eq!(
        spawn_failure(Command::new(&prog)),
        (Stage::Exec, libc::EACCES)
    );
}

#[test]
fn garbage_executable_is_exec_enoexec() {
    let dir = scratch("garbage");
    let prog = dir.join("prog");
    // Neither ELF nor a `#!` script.
    std::fs::write(&prog, b"\x01\x02\x03 this is not a program\n").unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        spawn_failure(Command::new(&prog)),
        (Stage::Exec, libc::ENOEXEC)
    );
}

#[test]
fn a_directory_as_program_is_exec_eacces() {
    let dir = scratch("dirprog");
    assert_eq!(
        spawn_failure(Command::new(&dir)),
        (Stage::Exec, libc::EACCES)
    );
}

#[test]
fn too_long_a_program_path_is_exec_enametoolong() {
    let long = format!("/{}", "a".repeat(5000));
    assert_eq!(
        spawn_failure(Command::new(long)),
        (Stage::Exec, libc::ENAMETOOLONG)
    );
}

#[test]
fn missing_cwd_is_chdir_enoent() {
    let scratch_dir = scratch("nocwd");
    let dir = scratch_dir.join("missing");
    let r = spawn_failure(helper("exit=0").current_dir(&dir));
    assert_eq!(r, (Stage::Chdir, libc::ENOENT));
}

#[test]
fn cwd_not_a_directory_is_chdir_enotdir() {
    let scratch_dir = scratch("cwdfile");
    let file = scratch_dir.join("file");
    std::fs::write(&file, b"").unwrap();
    let r = spawn_failure(helper("exit=0").current_dir(&file));
    assert_eq!(r, (Stage::Chdir, libc::ENOTDIR));
}

#[test]
fn cwd_forbidden_after_dropping_uid_is_chdir_eacces() {
    if !is_root() {
        eprintln!("skipped: needs root to change uid");
        return;
    }
    // Privileges are applied before chdir: uid 65534 may not enter a 0700
    // directory of root.
    let dir = scratch("private");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let r = spawn_failure(
        Command::new("/bin/true")
            .uid(65534)
            .gid(65534)
            .current_dir(dir.path()),
    );
    assert_eq!(r, (Stage::Chdir, libc::EACCES));
}

#[test]
fn e2big_is_a_build_error_naming_it() {
    // One argument over MAX_ARG_STRLEN.
    let big = "x".repeat(32 * 4096);
    match Command::new("/bin/true").arg("ok").arg(&big).build() {
        Err(Error::Build { item, problem, .. }) => {
            assert!(item.starts_with("argument 2"), "{item}");
            assert!(problem.contains("E2BIG"), "{problem}");
        }
        other => panic!("expected a build error, got {other:?}"),
    }
    // Many arguments under the single limit, over the total.
    let arg = "y".repeat(100 * 1024);
    let args = vec![arg.as_str(); 100];
    match Command::new("/bin/true").args(&args).build() {
        Err(Error::Build { item, problem, .. }) => {
            assert_eq!(item, "argument list and environment");
            assert!(problem.contains("E2BIG"), "{problem}");
        }
        other => panic!("expected a build error, got {other:?}"),
    }
    // A variable over the single limit.
    match Command::new("/bin/true").env("BIG", &big).build() {
        Err(Error::Build { item, problem, .. }) => {
            assert!(item.contains("BIG"), "{item}");
            assert!(problem.contains("E2BIG"), "{problem}");
        }
        other => panic!("expected a build error, got {other:?}"),
    }
}

#[test]
fn rlimit_above_the_hard_limit_unprivileged_is_rlimit_eperm() {
    let hard = rustix::process::getrlimit(Resource::Nofile)
        .maximum
        .expect("a finite RLIMIT_NOFILE hard limit");
    let r = without_caps(CapabilitySet::SYS_RESOURCE, || {
        spawn_failure(Command::new("/bin/true").rlimit(Resource::Nofile, hard + 1, hard + 1))
    });
    assert_eq!(r, (Stage::Rlimit, libc::EPERM));
}

#[test]
fn setuid_without_privilege_is_uid_eperm() {
    // Groups are cleared first (CAP_SETGID is kept), then setuid fails.
    let r = without_caps(CapabilitySet::SETUID, || {
        spawn_failure(Command::new("/bin/true").uid(12345))
    });
    assert_eq!(r, (Stage::Uid, libc::EPERM));
}

#[test]
fn setgroups_without_privilege_is_groups_eperm() {
    let r = without_caps(CapabilitySet::SETGID, || {
        spawn_failure(Command::new("/bin/true").groups(&[12345]).gid(12345))
    });
    assert_eq!(r, (Stage::Groups, libc::EPERM));
}

#[test]
fn clearing_caps_without_setpcap_is_caps_eperm() {
    let r = without_caps(CapabilitySet::SETPCAP, || {
        spawn_failure(Command::new("/bin/true").clear_caps())
    });
    assert_eq!(r, (Stage::Caps, libc::EPERM));
}

#[test]
fn joining_a_foreign_process_group_is_process_group_eperm() {
    // init's group is in another session.
    let r = spawn_failure(Command::new("/bin/true").process_group(1));
    assert_eq!(r, (Stage::ProcessGroup, libc::EPERM));
}

#[test]
fn hook_error_is_hook_with_its_errno() {
    // SAFETY: the hook only returns a value: async-signal-safe.
    let cmd = unsafe { Command::new("/bin/true").pre_exec(|| Err(Errno::XDEV)) };
    assert_eq!(spawn_failure(cmd), (Stage::Hook, libc::EXDEV));
}

#[test]
fn a_filter_without_no_new_privs_or_cap_sys_admin_is_seccomp_eacces() {
    // Built where CAP_SYS_ADMIN is there (no no_new_privs implied),
    // spawned where it is not: the kernel refuses the filter. Only root
    // can be in the first place; a plain user's build implies the flag.
    if !common::root_or_skip(
        "a_filter_without_no_new_privs_or_cap_sys_admin_is_seccomp_eacces",
        "a build with CAP_SYS_ADMIN",
    ) {
        return;
    }
    if common::own_status_field("NoNewPrivs") == "1" {
        eprintln!("skipped: this process has no_new_privs, which its children inherit");
        return;
    }
    let prepared = Command::new("/bin/true")
        .seccomp(safespawn::Seccomp::deny(["ptrace"], libc::EPERM))
        .build()
        .unwrap();
    let r = without_caps(CapabilitySet::SYS_ADMIN, || match prepared.status() {
        Err(Error::Spawn { stage, errno, .. }) => (stage, errno.raw_os_error()),
        other => panic!("{other:?}"),
    });
    assert_eq!(r, (Stage::Seccomp, libc::EACCES));
}

#[test]
fn a_shared_fd_closed_after_build_is_fds_ebadf() {
    let file = std::fs::File::open("/dev/null").unwrap();
    // A high number, so no other test thread reopens it before the spawn.
    let fd = rustix::io::fcntl_dupfd_cloexec(&file, 900).unwrap();
    let raw = fd.as_raw_fd();
    let prepared = Command::new("/bin/true")
        .pass_fd_shared(std::os::fd::AsFd::as_fd(&fd))
        .build()
        .unwrap();
    drop(fd);
    match prepared.status() {
        Err(Error::Spawn { stage, errno, .. }) => {
            assert_eq!(
                (stage, errno.raw_os_error()),
                (Stage::Fds, libc::EBADF),
                "fd {raw}"
            );
        }
        other => panic!("expected Error::Spawn at Fds, got {other:?}"),
    }
}

#[test]
fn a_shared_fd_closed_before_build_is_a_build_error() {
    let fd =
        rustix::io::fcntl_dupfd_cloexec(std::fs::File::open("/dev/null").unwrap(), 910).unwrap();
    let cmd = Command::new("/bin/true").pass_fd_shared(std::os::fd::AsFd::as_fd(&fd));
    drop(fd);
    match cmd.build() {
        Err(Error::Build { item, problem, .. }) => {
            assert!(item.starts_with("fd 910"), "{item}");
            assert!(problem.contains("not open"), "{problem}");
        }
        other => panic!("expected a build error, got {other:?}"),
    }
}

#[test]
fn paused_exec_failure_is_reported_on_resume() {
    let paused = Command::new("/nonexistent/paused").spawn_paused().unwrap();
    match paused.resume() {
        Err(Error::Spawn { stage, errno, .. }) => {
            assert_eq!((stage, errno.raw_os_error()), (Stage::Exec, libc::ENOENT));
        }
        other => panic!("expected Error::Spawn, got {other:?}"),
    }
}

#[test]
fn failed_spawns_leave_no_zombie() {
    for _ in 0..20 {
        let _ = Command::new("/nonexistent/prog").status();
        let _ = helper("exit=0").current_dir("/nonexistent").status();
    }
    let z = zombie_children();
    assert!(z.is_empty(), "zombies: {z:?}");
}

/// Runs a daemon command and returns the stage and errno of its failure.
#[track_caller]
fn daemon_failure(cmd: safespawn::Command<safespawn::Daemon>) -> (Stage, i32) {
    match cmd.run() {
        Err(Error::Spawn { stage, errno, .. }) => (stage, errno.raw_os_error()),
        Err(other) => panic!("expected Error::Spawn, got {other}"),
        Ok(d) => {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(d.daemon).unwrap(),
                rustix::process::Signal::KILL,
            );
            panic!("expected Error::Spawn, but the daemon started: {d:?}")
        }
    }
}

#[test]
fn unwritable_pidfile_is_pidfile_errors() {
    let dir = scratch("pidfile-unwritable");
    // A missing directory, and a path that is a directory.
    let missing = dir.join("no-such-dir").join("d.pid");
    assert_eq!(
        daemon_failure(helper("exit=0").daemonize().pidfile(&missing)),
        (Stage::Pidfile, libc::ENOENT)
    );
    assert_eq!(
        daemon_failure(helper("exit=0").daemonize().pidfile(dir.path())),
        (Stage::Pidfile, libc::EISDIR)
    );
}

#[test]
fn locked_pidfile_is_pidfile_eagain() {
    let dir = scratch("pidfile-locked");
    let path = dir.join("d.pid");
    // This process holds a POSIX write lock: the daemon's F_SETLK fails.
    let file = std::fs::File::create(&path).unwrap();
    // SAFETY: a zeroed flock is valid; F_SETLK only reads it.
    let mut lk: libc::flock = unsafe { std::mem::zeroed() };
    lk.l_type = libc::F_WRLCK as _;
    lk.l_whence = libc::SEEK_SET as _;
    // SAFETY: the fd is open and `lk` is a valid flock.
    let locked = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &lk) };
    assert_eq!(locked, 0);
    let (stage, errno) = daemon_failure(helper("sleep=30").daemonize().pidfile(&path));
    assert_eq!(stage, Stage::Pidfile);
    assert!(
        errno == libc::EAGAIN || errno == libc::EACCES,
        "errno {errno}"
    );
    // The refused daemon did not touch the file.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    drop(file);
}

#[test]
fn a_pidfile_failure_names_the_pidfile() {
    let dir = scratch("pidfile-named");
    // The daemon cannot create a file in a directory that does not exist.
    let path = dir.join("missing-dir").join("d.pid");
    let err = helper("sleep=30")
        .daemonize()
        .pidfile(&path)
        .run()
        .unwrap_err();
    match &err {
        Error::Spawn {
            stage: Stage::Pidfile,
            path: Some(p),
            ..
        } => assert_eq!(p, &path),
        other => panic!("expected a pidfile failure, got {other:?}"),
    }
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_namespace_without_privilege_is_namespace_eperm() {
    // The clone itself is refused: no child ran, reported as the step.
    let r = without_caps(CapabilitySet::SYS_ADMIN, || {
        spawn_failure(Command::new("/bin/true").unshare(safespawn::Namespaces::NET))
    });
    assert_eq!(r, (Stage::Namespace, libc::EPERM));
    // And on the fork path.
    let r = without_caps(CapabilitySet::SYS_ADMIN, || {
        // SAFETY: the hook only returns a value.
        let cmd = unsafe {
            Command::new("/bin/true")
                .unshare(safespawn::Namespaces::NET)
                .pre_exec(|| Ok(()))
        };
        spawn_failure(cmd)
    });
    assert_eq!(r, (Stage::Namespace, libc::EPERM));
}

#[test]
fn joining_what_is_no_namespace_is_namespace_einval() {
    let devnull = std::fs::File::open("/dev/null").unwrap();
    let r = spawn_failure(
        Command::new("/bin/true").join_namespace(devnull, safespawn::Namespaces::UTS),
    );
    assert_eq!(r, (Stage::Namespace, libc::EINVAL));
}
