//! The option list of the child contract test (`tests/child_contract.rs`):
//! for each area of the child, commands that use every option of that area
//! at once. A new area adds its entry here, and the contract test runs it
//! on the clone path and on the fork path (paused, then resumed) under its
//! tripwire allocator.
//!
//! An entry runs the helper's `report` and leaves stdout alone (the runner
//! pipes it to read the report). Its `check` looks at the report, once the
//! child is reaped and the `Prepared` dropped, for a sign that the options
//! took effect, so an entry that silently lost its options would fail too.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use safespawn::{
    Capability, Command, Daemon, Direct, Errno, Namespaces, Resource, Seccomp, Signal, Stage, Stdio,
};

use super::{can_unshare, helper, helper_for_any_user, own_session, Report, HELPER_SYSCALLS};

/// A raw seccomp program allowing everything: `ret #SECCOMP_RET_ALLOW`.
fn allow_all_bpf() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0x06u16.to_ne_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&libc::SECCOMP_RET_ALLOW.to_ne_bytes());
    b
}

/// The rooms of the child (`src/child/`), which the area test files are
/// named after. Every one of them has an entry below, except `pause` (the
/// runner takes every entry through the pause) and `daemon` (a mode of its
/// own: [`maximal_daemon`]).
pub const CHILD_AREAS: [&str; 11] = [
    "signals",
    "namespaces",
    "fds",
    "daemon",
    "process",
    "credentials",
    "session",
    "pause",
    "exec",
    "hooks",
    "seccomp",
];

/// One command of the list, with what its report must show.
pub struct Maximal {
    pub area: &'static str,
    pub cmd: Command<Direct>,
    pub check: Box<dyn FnOnce(&Report)>,
}

fn entry(
    area: &'static str,
    cmd: Command<Direct>,
    check: impl FnOnce(&Report) + 'static,
) -> Maximal {
    Maximal {
        area,
        cmd,
        check: Box::new(check),
    }
}

/// The child number of the fds entry's `map_fd`: high, so that no fd this
/// process has open (the passed ones keep their numbers) collides with it.
const MAPPED: i32 = 200;

fn open(path: &str) -> std::fs::File {
    std::fs::File::open(path).unwrap()
}

/// Every area's options that any user may set.
pub fn maximal_commands() -> Vec<Maximal> {
    // fds: every way to give the child an fd, and the /proc walk that
    // closes the rest. stderr is a pipe the check reads: a child that hit
    // the tripwire would have said so there.
    let (mut stderr, stderr_w) = std::io::pipe().unwrap();
    let passed: OwnedFd = open("/dev/null").into();
    let passed_no = passed.as_raw_fd();
    let shared = open("/dev/urandom");
    let shared_no = shared.as_raw_fd();
    let fds = helper("report")
        .stdin(Stdio::dup(open("/dev/zero").as_fd()))
        .stderr(stderr_w)
        .pass_fd(passed)
        .pass_fd_shared(shared.as_fd())
        .map_fd(open("/dev/null"), MAPPED)
        .close_fds_by_proc_walk();

    // fds: a swap (each source is the other's target), stderr inherited,
    // and plain close_range.
    let (a, b) = (open("/dev/null"), open("/dev/zero"));
    let (na, nb) = (a.as_raw_fd(), b.as_raw_fd());
    let swap = helper("report")
        .map_fd(a, nb)
        .map_fd(b, na)
        .stderr(Stdio::inherit())
        .close_fds_without_cloexec();

    let own_session = own_session();
    // namespaces: every kind, the self maps, the hostname, and the
    // parent-death signal that a pid namespace makes uncheckable. Where
    // this user may not create a user namespace only the code path without
    // namespaces runs (said on stderr).
    // TIME needs clone3, which some of the compat profiles refuse.
    let mut every = Namespaces::all();
    if !can_unshare(every) {
        every = Namespaces::USER
            | Namespaces::MOUNT
            | Namespaces::PID
            | Namespaces::NET
            | Namespaces::UTS
            | Namespaces::IPC
            | Namespaces::CGROUP;
    }
    // map_root needs /proc (the no-proc profile has none).
    let map_root_works = Command::new("true")
        .map_root()
        .unshare(every)
        .status()
        .is_ok_and(|s| s.success());
    let namespaces = if map_root_works {
        entry(
            "namespaces",
            helper("report")
                .map_root()
                .unshare(every)
                .hostname("maximal")
                .parent_death_signal(Signal::KILL),
            |r| {
                assert_eq!(r.field("uid"), "0 0 0 0");
                assert_eq!(r.field("hostname"), "maximal");
                assert_eq!(r.field("pid"), "1");
            },
        )
    } else {
        eprintln!("namespaces entry without namespaces: refused here");
        entry(
            "namespaces",
            helper("report").unshare(Namespaces::empty()),
            |_| {},
        )
    };
    vec![
        namespaces,
        entry(
            "exec",
            helper("report")
                .args(["a", "", "b c"])
                .arg_pair("k", "v")
                .env("A", "1")
                .env_string("B=2")
                .env_pass("PATH")
                .current_dir("/")
                // Parent side, but part of the plan the child is spawned from.
                .timeout(Duration::from_secs(30)),
            |r| {
                let want = [&b"a"[..], b"", b"b c", b"k=v"].map(<[u8]>::to_vec);
                assert_eq!(r.args, want);
                assert_eq!(r.field("cwd"), "/");
                let env = r.env_str();
                assert_eq!(&env[..2], ["A=1", "B=2"], "{env:?}");
                assert_eq!(env.len(), 2 + std::env::var_os("PATH").is_some() as usize);
            },
        ),
        entry("fds", fds, move |r| {
            assert_eq!(r.fds[&0], "/dev/zero");
            assert_eq!(r.fds[&MAPPED], "/dev/null");
            assert_eq!(r.fds[&passed_no], "/dev/null");
            assert_eq!(r.fds[&shared_no], "/dev/urandom");
            drop(shared); // kept open until the spawn was over
            let mut err = String::new();
            stderr.read_to_string(&mut err).unwrap();
            assert!(err.is_empty(), "child stderr: {err}");
        }),
        entry(
            "fds",
            helper("report")
                .stdin(Stdio::piped())
                .stderr_to_stdout()
                .nonblocking_pipes(),
            |r| {
                assert!(r.fds[&0].starts_with("pipe:"), "{:?}", r.fds);
                assert_eq!(r.fds[&2], r.fds[&1], "stderr_to_stdout");
            },
        ),
        entry("fds", swap, move |r| {
            assert_eq!(r.fds[&nb], "/dev/null");
            assert_eq!(r.fds[&na], "/dev/zero");
        }),
        entry(
            "signals",
            // Their effect needs a parent with handlers, ignored and blocked
            // signals set up, which tests/signals.rs does (alone in its
            // binary): here only the code path counts.
            helper("report").keep_ignored_signals().keep_signal_mask(),
            |_| {},
        ),
        entry(
            "process",
            helper("report").umask(0).rlimit(Resource::Nofile, 256, 512),
            |r| {
                assert_eq!(r.field("umask"), "0000");
                assert_eq!(
                    r.rlimits.get("Max_open_files"),
                    Some(&("256".to_string(), "512".to_string()))
                );
            },
        ),
        entry("credentials", helper("report").no_new_privs(), |r| {
            assert_eq!(r.field("nonewprivs"), "1")
        }),
        entry(
            "session",
            helper("report")
                .parent_death_signal(Signal::KILL)
                .new_session(),
            |r| {
                assert_eq!(r.field("sid"), r.field("pid"));
                assert_eq!(r.field("pgid"), r.field("pid"));
            },
        ),
        entry("session", helper("report").process_group(0), move |r| {
            assert_eq!(r.field("pgid"), r.field("pid"));
            assert_eq!(r.field("sid"), own_session);
        }),
        entry(
            "seccomp",
            // Every kind of filter, stacked (the report fd's move, for
            // filters that block write, is in failing_commands: the
            // helper could not write its report under them).
            helper("report")
                .seccomp(Seccomp::deny(["sched_yield", "getcpu"], libc::EPERM))
                .seccomp(Seccomp::allow(HELPER_SYSCALLS, libc::ENOSYS))
                .seccomp(Seccomp::from_bpf(allow_all_bpf())),
            |r| assert_eq!(r.field("seccomp"), "2"),
        ),
        entry(
            "hooks",
            // SAFETY: each hook makes one raw system call.
            unsafe {
                helper("report")
                    .pre_exec(|| {
                        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o070));
                        Ok(())
                    })
                    .pre_exec(|| {
                        let old = rustix::process::umask(rustix::fs::Mode::empty());
                        rustix::process::umask(old | rustix::fs::Mode::from_raw_mode(0o007));
                        Ok(())
                    })
            },
            // Both hooks ran, in order.
            |r| assert_eq!(r.field("umask"), "0077"),
        ),
    ]
}

fn caps(r: &Report, key: &str) -> u64 {
    u64::from_str_radix(r.field(key), 16).unwrap_or_else(|_| panic!("{key}={:?}", r.field(key)))
}

/// The options only root can set (credentials). The first entry also holds
/// the process and session options, in one command: the child runs those
/// steps around the credential change (rlimits before it, the parent-death
/// signal after it, since a uid change clears it).
pub fn root_maximal_commands() -> Vec<Maximal> {
    let bit = 1u64 << Capability::NetBindService as u8;
    // namespaces without a user namespace (root's own), and a join (of our
    // own network namespace: joining it changes nothing but runs the step).
    // Without /proc (the no-proc profile) there is no namespace fd to join.
    let our_net = std::fs::read_link("/proc/self/ns/net")
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let mut kinds = Namespaces::PID
        | Namespaces::MOUNT
        | Namespaces::IPC
        | Namespaces::UTS
        | Namespaces::CGROUP;
    if can_unshare(kinds | Namespaces::TIME) {
        kinds |= Namespaces::TIME;
    }
    let mut list = Vec::new();
    if can_unshare(kinds) {
        let mut cmd = helper("report").unshare(kinds).hostname("root-maximal");
        if our_net.is_some() {
            cmd = cmd.join_namespace(open("/proc/self/ns/net"), Namespaces::NET);
        }
        list.push(entry("namespaces", cmd, move |r| {
            assert_eq!(r.field("hostname"), "root-maximal");
            assert_eq!(r.field("pid"), "1");
            if let Some(net) = our_net {
                assert_eq!(r.field("ns_net"), net);
            }
        }));
    }
    list.extend([
        entry(
            "credentials",
            helper_for_any_user("report")
                .umask(0)
                .rlimit(Resource::Nofile, 256, 512)
                .uid(65534)
                .gid(65534)
                .groups(&[65534])
                .allow_cap(Capability::NetBindService)
                .no_new_privs()
                .parent_death_signal(Signal::KILL)
                .new_session(),
            move |r| {
                assert_eq!(r.field("uid"), "65534 65534 65534 65534");
                assert_eq!(r.field("gid"), "65534 65534 65534 65534");
                assert_eq!(r.field("groups"), "65534");
                assert_eq!(caps(r, "capeff"), bit, "CapEff");
                assert_eq!(r.field("nonewprivs"), "1");
                assert_eq!(r.field("umask"), "0000");
                assert_eq!(r.field("sid"), r.field("pid"));
            },
        ),
        entry(
            "credentials",
            helper("report").clear_caps().process_group(0),
            |r| {
                for set in ["capinh", "capprm", "capeff", "capbnd", "capamb"] {
                    assert_eq!(caps(r, set), 0, "{set} after clear_caps");
                }
                assert_eq!(r.field("pgid"), r.field("pid"));
            },
        ),
    ]);
    list
}

/// Commands that fail in the child, per area, with the stage and errno
/// they must report: a failing child reports instead of allocating.
pub fn failing_commands() -> Vec<(&'static str, Command<Direct>, Stage, Errno)> {
    vec![
        (
            "exec",
            Command::new("/nonexistent"),
            Stage::Exec,
            Errno::NOENT,
        ),
        (
            "exec",
            Command::new("true").current_dir("/nonexistent"),
            Stage::Chdir,
            Errno::NOENT,
        ),
        // init's group is in another session.
        (
            "session",
            Command::new("true").process_group(1),
            Stage::ProcessGroup,
            Errno::PERM,
        ),
        // An fd that is no namespace at all.
        (
            "namespaces",
            Command::new("true").join_namespace(open("/dev/null"), Namespaces::UTS),
            Stage::Namespace,
            Errno::INVAL,
        ),
        // An exec failing after filters that block write(2): the report
        // goes through the fd they allow.
        (
            "seccomp",
            Command::new("/nonexistent")
                .seccomp(Seccomp::deny(["write"], libc::EPERM))
                .seccomp(Seccomp::allow(["getpid"], libc::EPERM)),
            Stage::Exec,
            Errno::NOENT,
        ),
        (
            "hooks",
            // SAFETY: the hook only returns a value.
            unsafe { Command::new("true").pre_exec(|| Err(Errno::DOM)) },
            Stage::Hook,
            Errno::DOM,
        ),
    ]
}

/// The daemon mode's options: a daemon writing and locking `pidfile`.
pub fn maximal_daemon(pidfile: &Path) -> Command<Daemon> {
    helper("sleep=30").umask(0o022).daemonize().pidfile(pidfile)
}
