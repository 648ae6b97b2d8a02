//! Seccomp filters (`Command::seccomp`): deny- and allow-lists, raw BPF
//! programs, what `build()` refuses, `no_new_privs` implied, the pause, and
//! the report of an exec that fails after the filter.

mod common;

use common::{helper, helper_for_any_user, output_of, report_of, Report, HELPER_SYSCALLS};
use safespawn::{BuildErrorKind, Capability, Command, Errno, Error, Seccomp, Stage, Stdio};

const EPERM: i32 = libc::EPERM;

/// The helper's `syscall=` lines: name -> errno.
fn errnos(out: &str) -> Vec<(String, i32)> {
    out.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("syscall=")?;
            let (name, rest) = rest.split_once(' ')?;
            let errno = rest.rsplit_once("errno=")?.1.parse().ok()?;
            Some((name.to_string(), errno))
        })
        .collect()
}

fn run_helper(cmd: Command) -> String {
    output_of(cmd.stdout(Stdio::piped()).spawn().expect("spawn helper"))
}

/// The `Seccomp_filters` count this process has (0 when the kernel does
/// not show it, before 5.9), so a child's count can be compared with it:
/// under the compat profiles the tests themselves run filtered.
fn own_filters() -> Option<u32> {
    common::own_status_field("Seccomp_filters").parse().ok()
}

/// Checks that the child runs under `added` filters of ours.
fn assert_filtered(r: &Report, added: u32) {
    assert_eq!(r.field("seccomp"), "2", "Seccomp: in the child's status");
    if let Some(mine) = own_filters() {
        assert_eq!(
            r.field("seccomp_filters"),
            (mine + added).to_string(),
            "Seccomp_filters: the caller's {mine} and ours"
        );
    }
}

#[test]
fn a_denied_call_fails_with_the_chosen_errno() {
    let out = run_helper(
        helper("syscall=sched_yield,syscall=getppid")
            .seccomp(Seccomp::deny(["sched_yield"], libc::EXDEV)),
    );
    assert_eq!(
        errnos(&out),
        [
            ("sched_yield".to_string(), libc::EXDEV),
            ("getppid".to_string(), 0)
        ],
        "{out}"
    );
    // Denying write(2) leaves the program without stdout: the helper's
    // write fails, and so does the message about it (std panics: 101).
    let st = helper("out=x")
        .seccomp(Seccomp::deny(["write"], EPERM))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(101), "the helper's write failed");
}

#[test]
fn the_child_runs_in_seccomp_filter_mode() {
    let r = report_of(helper("report").seccomp(Seccomp::deny(["sched_yield"], EPERM)));
    assert_filtered(&r, 1);
    // Without a filter of ours, the child has the caller's.
    let r = report_of(helper("report"));
    assert_eq!(r.field("seccomp"), common::own_status_field("Seccomp"));
}

#[test]
fn an_allow_list_kills_nothing_it_allowed() {
    let cmd = helper("report,syscall=getppid,syscall=sched_yield")
        .seccomp(Seccomp::allow(HELPER_SYSCALLS, libc::ENOSYS));
    let out = run_helper(cmd);
    let r = Report::parse(&out);
    assert_filtered(&r, 1);
    assert_eq!(
        errnos(&out),
        [
            ("getppid".to_string(), 0),
            ("sched_yield".to_string(), libc::ENOSYS)
        ],
        "{out}"
    );
}

#[test]
fn filters_stack_in_call_order() {
    // The allow-list lacks seccomp(2): as it is not the last, it lets the
    // next filter's installation through.
    let out = run_helper(
        helper("report,syscall=sched_yield,syscall=getcpu,syscall=seccomp")
            .seccomp(Seccomp::allow(
                HELPER_SYSCALLS.iter().chain(&["sched_yield", "getcpu"]),
                libc::ENOSYS,
            ))
            .seccomp(Seccomp::deny(["sched_yield"], libc::EXDEV))
            .seccomp(Seccomp::deny(["getcpu"], libc::EDOM)),
    );
    assert_filtered(&Report::parse(&out), 3);
    assert_eq!(
        errnos(&out),
        [
            ("sched_yield".to_string(), libc::EXDEV),
            ("getcpu".to_string(), libc::EDOM),
            // Only SECCOMP_SET_MODE_FILTER (1) gets through, not op 0.
            ("seccomp".to_string(), libc::ENOSYS),
        ],
        "{out}"
    );
}

fn build_error(filter: Seccomp) -> (BuildErrorKind, String) {
    match Command::new("true").seccomp(filter).build() {
        Err(e) => (e.build_kind().unwrap(), e.to_string()),
        Ok(_) => panic!("built"),
    }
}

#[test]
fn a_filter_that_would_block_exec_is_refused_or_still_execs() {
    for name in ["execve", "execveat", "exit", "exit_group"] {
        let (kind, text) = build_error(Seccomp::deny(["getpid", name], EPERM));
        assert_eq!(kind, BuildErrorKind::Conflict, "{text}");
        assert!(
            text.contains(&format!("{name:?} cannot be denied")),
            "{text}"
        );
    }
    // An allow-list without exec and exit gets them: the program runs and
    // exits with its own status.
    let without: Vec<&str> = HELPER_SYSCALLS
        .iter()
        .copied()
        .filter(|n| !["execve", "execveat", "exit", "exit_group"].contains(n))
        .collect();
    let st = helper("exit=3")
        .seccomp(Seccomp::allow(&without, EPERM))
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(3));
    // Even an empty one: exec happens, and the program dies of what it
    // may not do (the dynamic loader's first mmap), not the spawn.
    let st = helper("exit=0")
        .seccomp(Seccomp::allow(Vec::<&str>::new(), EPERM))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!st.success(), "{st:?}");
}

#[test]
fn names_and_errno_values_are_checked_at_build() {
    let (kind, text) = build_error(Seccomp::deny(["getpid", "no_such_call"], EPERM));
    assert_eq!(kind, BuildErrorKind::Invalid);
    assert!(
        text.contains("\"no_such_call\" is not a system call on"),
        "{text}"
    );
    let (kind, _) = build_error(Seccomp::allow(["getpid", ""], EPERM));
    assert_eq!(kind, BuildErrorKind::Invalid);
    for errno in [0, -1, 4096, i32::MAX] {
        let (kind, text) = build_error(Seccomp::deny(["getpid"], errno));
        assert_eq!(kind, BuildErrorKind::Invalid, "{errno}");
        assert!(text.contains("1 to 4095"), "{text}");
    }
    assert!(Command::new("true")
        .seccomp(Seccomp::deny(["getpid"], 4095))
        .build()
        .is_ok());
}

/// A classic BPF instruction as the kernel takes it.
fn insn(code: u16, jt: u8, jf: u8, k: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..2].copy_from_slice(&code.to_ne_bytes());
    b[2] = jt;
    b[3] = jf;
    b[4..].copy_from_slice(&k.to_ne_bytes());
    b
}

const LD_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const RET: u16 = 0x06; // BPF_RET | BPF_K

/// By hand: allow everything but `nr`, which fails with `errno`; any other
/// architecture is killed.
fn all_but(nr: i64, errno: i32) -> Vec<u8> {
    #[cfg(target_arch = "x86_64")]
    let arch = 0xC000_003Eu32;
    #[cfg(target_arch = "aarch64")]
    let arch = 0xC000_00B7u32;
    [
        insn(LD_ABS, 0, 0, 4), // seccomp_data.arch
        insn(JEQ, 1, 0, arch),
        insn(RET, 0, 0, libc::SECCOMP_RET_KILL_PROCESS),
        insn(LD_ABS, 0, 0, 0), // seccomp_data.nr
        insn(JEQ, 0, 1, nr as u32),
        insn(RET, 0, 0, libc::SECCOMP_RET_ERRNO | errno as u32),
        insn(RET, 0, 0, libc::SECCOMP_RET_ALLOW),
    ]
    .concat()
}

#[test]
fn a_raw_program_of_the_wrong_length_is_a_build_error() {
    let good = all_but(libc::SYS_sched_yield, libc::EXDEV);
    let (kind, text) = build_error(Seccomp::from_bpf(&good[..good.len() - 1]));
    assert_eq!(kind, BuildErrorKind::Invalid);
    assert!(text.contains("not a whole number of 8-byte"), "{text}");
    let (kind, text) = build_error(Seccomp::from_bpf(Vec::new()));
    assert_eq!(kind, BuildErrorKind::Invalid);
    assert!(text.contains("is empty"), "{text}");
    let long = insn(RET, 0, 0, libc::SECCOMP_RET_ALLOW).repeat(4097);
    let (kind, text) = build_error(Seccomp::from_bpf(long));
    assert_eq!(kind, BuildErrorKind::TooLong);
    assert!(text.contains("4096"), "{text}");
    // What the kernel would refuse: a jump past the end, no return last.
    let (kind, text) = build_error(Seccomp::from_bpf(good[..good.len() - 8].to_vec()));
    assert_eq!(kind, BuildErrorKind::Invalid);
    assert!(text.contains("instruction 4: jumps 1 ahead"), "{text}");
    let (kind, _) = build_error(Seccomp::from_bpf(insn(LD_ABS, 0, 0, 0)));
    assert_eq!(kind, BuildErrorKind::Invalid);
    // Together, filters may not pass the kernel's limit per process.
    let most = insn(RET, 0, 0, libc::SECCOMP_RET_ALLOW).repeat(4096);
    let mut cmd = Command::new("true");
    for _ in 0..8 {
        cmd = cmd.seccomp(Seccomp::from_bpf(most.clone()));
    }
    let err = cmd.build().unwrap_err();
    assert_eq!(err.build_kind(), Some(BuildErrorKind::TooLong), "{err}");
}

#[test]
fn a_raw_program_built_by_hand_works() {
    let out = run_helper(
        helper("report,syscall=sched_yield,syscall=getppid").seccomp(Seccomp::from_bpf(all_but(
            libc::SYS_sched_yield,
            libc::EXDEV,
        ))),
    );
    assert_filtered(&Report::parse(&out), 1);
    assert_eq!(
        errnos(&out),
        [
            ("sched_yield".to_string(), libc::EXDEV),
            ("getppid".to_string(), 0)
        ],
        "{out}"
    );
}

#[test]
fn root_with_a_uid_change_and_capabilities_gets_no_new_privs() {
    if !common::root_or_skip(
        "root_with_a_uid_change_and_capabilities_gets_no_new_privs",
        "uid change and capabilities",
    ) {
        return;
    }
    // The documented order: credentials (uid, capabilities, then the
    // implied no_new_privs), and the filter last, before exec.
    let out = run_helper(
        helper_for_any_user("report,syscall=sched_yield")
            .uid(65534)
            .gid(65534)
            .allow_cap(Capability::NetBindService)
            .seccomp(Seccomp::deny(["sched_yield"], libc::EXDEV)),
    );
    let r = Report::parse(&out);
    assert_eq!(r.field("uid"), "65534 65534 65534 65534");
    assert_eq!(r.field("nonewprivs"), "1", "implied by the filter");
    assert_eq!(
        u64::from_str_radix(r.field("capeff"), 16).unwrap(),
        1 << Capability::NetBindService as u8
    );
    assert_filtered(&r, 1);
    assert_eq!(
        errnos(&out),
        [("sched_yield".to_string(), libc::EXDEV)],
        "{out}"
    );
    // clear_caps drops CAP_SYS_ADMIN too, so the same holds without a uid
    // change.
    let r = report_of(
        helper("report")
            .clear_caps()
            .seccomp(Seccomp::deny(["sched_yield"], EPERM)),
    );
    assert_eq!(r.field("nonewprivs"), "1");
    assert_filtered(&r, 1);
    // Root that keeps CAP_SYS_ADMIN needs no no_new_privs, and gets none
    // it did not ask for (unless this process has it already).
    let r = report_of(helper("report").seccomp(Seccomp::deny(["sched_yield"], EPERM)));
    assert_eq!(
        r.field("nonewprivs"),
        common::own_status_field("NoNewPrivs")
    );
    assert_filtered(&r, 1);
}

#[test]
fn a_plain_user_gets_no_new_privs_implied() {
    // As root, the child becomes the plain user (the nonroot run of
    // .ci/compat-profiles runs this whole binary as one).
    let cmd = if common::is_root() {
        helper_for_any_user("report,syscall=sched_yield")
            .uid(65534)
            .gid(65534)
    } else {
        helper("report,syscall=sched_yield")
    };
    let out = run_helper(cmd.seccomp(Seccomp::deny(["sched_yield"], libc::EXDEV)));
    let r = Report::parse(&out);
    assert_eq!(r.field("nonewprivs"), "1");
    assert_filtered(&r, 1);
    assert_eq!(
        errnos(&out),
        [("sched_yield".to_string(), libc::EXDEV)],
        "{out}"
    );
    // A plain user's clear_caps needs no_new_privs, which the filter brings.
    let cmd = if common::is_root() {
        helper_for_any_user("report").uid(65534).gid(65534)
    } else {
        helper("report")
    };
    let r = report_of(
        cmd.clear_caps()
            .seccomp(Seccomp::deny(["sched_yield"], EPERM)),
    );
    assert_eq!(r.field("capeff"), "0000000000000000");
    assert_eq!(r.field("nonewprivs"), "1");
}

#[test]
fn a_paused_child_is_filtered_after_resume() {
    let prepared = helper("report,syscall=sched_yield")
        .seccomp(Seccomp::deny(
            ["sched_yield", "write"].map(String::from),
            libc::EXDEV,
        ))
        .seccomp(Seccomp::deny(["getcpu"], EPERM))
        .stdout(Stdio::piped())
        .build()
        .unwrap();
    // write is denied: the helper cannot print, but it runs after the
    // resume (and exits 101, as its message about the failed write fails).
    let paused = prepared.spawn_paused().unwrap();
    let child = paused.resume().unwrap();
    let fin = child.wait().unwrap();
    assert_eq!(fin.status().code(), Some(101));
    let prepared = helper("report,syscall=sched_yield")
        .seccomp(Seccomp::deny(["sched_yield"], libc::EXDEV))
        .stdout(Stdio::piped())
        .build()
        .unwrap();
    let child = prepared.spawn_paused().unwrap().resume().unwrap();
    let out = output_of(child);
    assert_filtered(&Report::parse(&out), 1);
    assert_eq!(
        errnos(&out),
        [("sched_yield".to_string(), libc::EXDEV)],
        "{out}"
    );
}

#[test]
fn hooks_run_before_the_filter() {
    // SAFETY: the hook makes one raw system call, which takes no argument.
    let cmd = unsafe {
        helper("syscall=sched_yield").pre_exec(|| {
            if libc::syscall(libc::SYS_sched_yield) == 0 {
                Ok(())
            } else {
                Err(Errno::XDEV)
            }
        })
    };
    let out = run_helper(cmd.seccomp(Seccomp::deny(["sched_yield"], libc::EXDEV)));
    assert_eq!(
        errnos(&out),
        [("sched_yield".to_string(), libc::EXDEV)],
        "{out}"
    );
}

fn spawn_error(cmd: Command) -> (Stage, Errno) {
    match cmd.status() {
        Err(Error::Spawn { stage, errno, .. }) => (stage, errno),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failed_exec_after_the_filter_still_reports() {
    let missing = || Command::new("/nonexistent/program");
    // write allowed: the report goes where it is.
    let cmd = missing().seccomp(Seccomp::deny(["sched_yield"], EPERM));
    assert_eq!(spawn_error(cmd), (Stage::Exec, Errno::NOENT));
    // write blocked: the report moves to the one fd the filter lets write
    // to, on both paths (clone, and fork through the pause).
    for filter in [
        Seccomp::deny(["write"], EPERM),
        Seccomp::allow(["getpid"], EPERM),
    ] {
        let cmd = missing().seccomp(filter.clone());
        assert_eq!(spawn_error(cmd), (Stage::Exec, Errno::NOENT), "{filter}");
        let prepared = missing().seccomp(filter.clone()).build().unwrap();
        match prepared.spawn_paused().unwrap().resume() {
            Err(Error::Spawn { stage, errno, .. }) => {
                assert_eq!((stage, errno), (Stage::Exec, Errno::NOENT), "{filter}")
            }
            other => panic!("{filter}: {other:?}"),
        }
        // With fds planned at the low numbers, the report fd is above them.
        let (_r, w) = std::io::pipe().unwrap();
        let cmd = missing().map_fd(w, 3).seccomp(filter.clone());
        assert_eq!(spawn_error(cmd), (Stage::Exec, Errno::NOENT), "{filter}");
        // The report fd (3) moves before the child's limit leaves no room
        // for a new fd there.
        let cmd = missing()
            .rlimit(safespawn::Resource::Nofile, 3, 3)
            .seccomp(filter.clone());
        assert_eq!(spawn_error(cmd), (Stage::Exec, Errno::NOENT), "{filter}");
        // A daemon's failed exec, reported by the daemon through it.
        match missing().seccomp(filter.clone()).daemonize().run() {
            Err(Error::Spawn { stage, errno, .. }) => {
                assert_eq!((stage, errno), (Stage::Exec, Errno::NOENT), "{filter}")
            }
            other => panic!("{filter}: {other:?}"),
        }
    }
    // A file that is not executable: EACCES, from the same step.
    let dir = common::Scratch::new("seccomp-exec");
    let file = dir.join("not-executable");
    std::fs::write(&file, "#!/bin/sh\n").unwrap();
    let cmd = Command::new(&file).seccomp(Seccomp::deny(["write"], EPERM));
    assert_eq!(spawn_error(cmd), (Stage::Exec, Errno::ACCESS));
    // A raw program that blocks write(2): a child of clone3 reports in the
    // parent's memory all the same; one that reports on a pipe (the fork
    // path here; the plain clone where clone3 is refused) leaves the exit
    // status only (127: not found), as documented.
    let raw = || missing().seccomp(Seccomp::from_bpf(all_but(libc::SYS_write, EPERM)));
    match raw().status() {
        Err(Error::Spawn { stage, errno, .. }) => {
            assert_eq!((stage, errno), (Stage::Exec, Errno::NOENT))
        }
        Ok(st) => {
            // clone3 (Linux 5.3) reports in the frame: where it is there
            // unfiltered, the exit status alone is a failure.
            assert!(
                !common::unfiltered_kernel_at_least(5, 3),
                "clone3 child, exit status only"
            );
            assert_eq!(st.code(), Some(127));
        }
        Err(other) => panic!("{other:?}"),
    }
    // SAFETY: the hook makes no call at all; it only makes the spawn fork.
    let st = unsafe { raw().pre_exec(|| Ok(())) }.status().unwrap();
    assert_eq!(st.code(), Some(127));
}

#[test]
fn a_daemons_pidfile_is_not_where_the_report_fd_goes() {
    // The pidfile is opened after the fd steps, on the lowest free number,
    // which is the report fd's when a filter blocks write(2): the report
    // moved there first, so the pidfile's fd (and its lock) is another.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    let dir = common::Scratch::new("seccomp-pidfile");
    let pidfile = dir.join("d.pid");
    // Closing by the /proc walk (as without close_range) leaves the low
    // numbers free; CLOSE_RANGE_CLOEXEC would leave them taken until exec.
    let daemon = || {
        helper("sleep=30")
            .close_fds_by_proc_walk()
            .seccomp(Seccomp::deny(["write"], EPERM))
            .daemonize()
            .pidfile(&pidfile)
    };
    let d = daemon().run().unwrap();
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        d.daemon.to_string()
    );
    // The lock is held: a second daemon on the same pidfile is refused.
    match daemon().run() {
        Err(Error::Spawn { stage, .. }) => assert_eq!(stage, Stage::Pidfile),
        other => panic!("a second daemon: {other:?}"),
    }
    let pid = rustix::process::Pid::from_raw(d.daemon).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
}

#[test]
fn a_daemon_runs_filtered() {
    let dir = common::Scratch::new("seccomp-daemon");
    let out = dir.join("out");
    let d = helper("report,syscall=sched_yield")
        .seccomp(Seccomp::deny(["sched_yield"], libc::EXDEV))
        .stdout(std::fs::File::create(&out).unwrap())
        .daemonize()
        .run()
        .unwrap();
    // The daemon is not our child: wait for its report to be complete.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let text = std::fs::read_to_string(&out).unwrap();
        if text.contains("syscall=") || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert!(d.daemon > 0);
    assert_filtered(&Report::parse(&text), 1);
    assert_eq!(
        errnos(&text),
        [("sched_yield".to_string(), libc::EXDEV)],
        "{text}"
    );
}

#[test]
fn landlock_and_a_filter_go_together() {
    use safespawn::Landlock;
    // The ruleset is another fd the child carries: where it sits on the
    // report fd's number, it moves out of the way first.
    let ruleset = || {
        Landlock::new()
            .allow_read("/")
            .allow_exec("/")
            .allow_write("/dev/null")
            .best_effort()
    };
    if let Err(e) = Command::new("true").landlock(ruleset()).build() {
        eprintln!("skipped: no landlock here: {e}");
        return;
    }
    let cmd = Command::new("/nonexistent/program")
        .landlock(ruleset())
        .seccomp(Seccomp::deny(["write"], EPERM));
    assert_eq!(spawn_error(cmd), (Stage::Exec, Errno::NOENT));
    let out = run_helper(
        helper("syscall=sched_yield")
            .landlock(ruleset())
            .seccomp(Seccomp::deny(["sched_yield"], libc::EXDEV)),
    );
    assert_eq!(
        errnos(&out),
        [("sched_yield".to_string(), libc::EXDEV)],
        "{out}"
    );
}
