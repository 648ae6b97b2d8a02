//! The option list of the child contract test (`tests/child_contract.rs`):
//! for each area of the child, commands that use every option of that area
//! at once. A new area adds its entry here, and the contract test runs it
//! on the clone path and on the fork path (paused, then resumed) under its
//! tripwire allocator.
//!
//! An entry runs the helper's `report` and leaves stdout alone (the runner,
//! [`run_entry`], pipes it to read the report). Its `check` looks at the report, once the
//! child is reaped and the `Prepared` dropped, for a sign that the options
//! took effect, so an entry that silently lost its options would fail too.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use safespawn::{
    Capability, Command, Daemon, Direct, Errno, Error, Finished, Landlock, Mount, Namespaces,
    Personality, Prepared, Resource, Running, Seccomp, Securebits, Signal, Stage, Stdio,
};

use super::landlock::{base, helper_path, kernel_abi};
use super::{
    can_unshare, helper, helper_for_any_user, is_root, own_session, Report, Scratch, HELPER,
    HELPER_SYSCALLS,
};

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
/// own: [`maximal_daemon`]); `cgroup`'s are root's
/// ([`root_maximal_commands`]).
pub const CHILD_AREAS: [&str; 16] = [
    "signals",
    "cgroup",
    "namespaces",
    "fds",
    "daemon",
    "mounts",
    "process",
    "knobs",
    "label",
    "credentials",
    "session",
    "pause",
    "exec",
    "hooks",
    "landlock",
    "seccomp",
];

/// One command of the list, with what its report must show.
pub struct Maximal {
    pub area: &'static str,
    pub cmd: Command<Direct>,
    pub check: Box<dyn FnOnce(&Report)>,
    /// `safespawn::__compat` flags the runner adds while it builds the
    /// command (and takes away after), to build the plan of an older
    /// kernel (flags that are read at `build()` only); 0 for none.
    pub compat_at_build: u32,
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
        compat_at_build: 0,
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
    // namespaces: id ranges, which the parent writes while the child waits
    // at its gate (the fork path, even on the "clone" run); without
    // privilege only the caller's own ids, one line each.
    let (euid, egid) = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    let ranges = if map_root_works {
        entry(
            "namespaces",
            helper("report")
                .unshare(every)
                .uid_map(0, euid, 1)
                .gid_map(0, egid, 1)
                .hostname("ranges")
                .parent_death_signal(Signal::KILL),
            move |r| {
                assert_eq!(r.field("uid"), "0 0 0 0");
                assert_eq!(r.field("uid_map"), format!("0 {euid} 1"));
                assert_eq!(r.field("gid_map"), format!("0 {egid} 1"));
                assert_eq!(r.field("hostname"), "ranges");
                assert_eq!(r.field("pid"), "1");
            },
        )
    } else {
        entry(
            "namespaces",
            helper("report").unshare(Namespaces::empty()),
            |_| {},
        )
    };
    // landlock: every kind of rule (TCP where the ABI has it), the step
    // and the no_new_privs it implies for a plain user. Where there is no
    // landlock only the code path without it runs (said on stderr).
    let landlock = match kernel_abi() {
        Ok(abi) => {
            let mut l = base(helper_path())
                .allow_write("/dev/null")
                .allow_tcp_connect(1)
                .allow_tcp_bind(1);
            if abi < 4 {
                l = l.best_effort();
            }
            entry(
                "landlock",
                helper("report,try-read=/tmp,try-connect=2").landlock(l),
                move |r| {
                    assert_eq!(r.field("try-read /tmp"), "EACCES");
                    if abi >= 4 {
                        assert_eq!(r.field("try-connect 2"), "EACCES");
                    }
                    if !is_root() {
                        assert_eq!(r.field("nonewprivs"), "1");
                    }
                },
            )
        }
        Err(errno) => {
            eprintln!("landlock entry without landlock: none here (errno {errno})");
            entry("landlock", helper("report"), |_| {})
        }
    };
    let mut list = mount_commands();
    list.extend([
        namespaces,
        ranges,
        landlock,
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
                .nonblocking_pipes()
                // A Direct send buffer: its pipe is a slot fd of the spawn.
                .send_buffer(MAPPED + 1, "unread"),
            |r| {
                assert!(r.fds[&0].starts_with("pipe:"), "{:?}", r.fds);
                assert_eq!(r.fds[&2], r.fds[&1], "stderr_to_stdout");
                assert!(r.fds[&(MAPPED + 1)].starts_with("pipe:"), "{:?}", r.fds);
                assert_ne!(r.fds[&(MAPPED + 1)], r.fds[&0], "a pipe of its own");
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
        knobs_entry(),
        label_entry(),
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
        controlling_tty_entry(),
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
            // SAFETY: each hook makes one or two raw system calls.
            unsafe {
                helper("report")
                    .pre_exec(|| {
                        let old = rustix::process::umask(rustix::fs::Mode::empty());
                        rustix::process::umask(old | rustix::fs::Mode::from_raw_mode(0o030));
                        Ok(())
                    })
                    // Runs first, before the credentials: were it run after
                    // the plain hooks, the umask would be 0040.
                    .pre_exec_privileged(|| {
                        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o040));
                        Ok(())
                    })
                    .pre_exec(|| {
                        let old = rustix::process::umask(rustix::fs::Mode::empty());
                        rustix::process::umask(old | rustix::fs::Mode::from_raw_mode(0o007));
                        Ok(())
                    })
            },
            // Every hook ran, the privileged one first.
            |r| assert_eq!(r.field("umask"), "0077"),
        ),
    ]);
    list
}

/// Whether this user may give a child new user, mount and pid namespaces
/// with `map_root` here (which needs /proc).
pub fn map_root_sandboxes_work() -> bool {
    std::path::Path::new("/proc/self/ns").exists()
        && Command::new("true")
            .unshare(Namespaces::USER | Namespaces::MOUNT | Namespaces::PID)
            .map_root()
            .status()
            .is_ok_and(|s| s.success())
}

/// The caller's system directories, bound read-only where they exist,
/// and the helper's directory at its own path: what a new root needs to
/// run the helper.
pub fn with_system_binds(cmd: Command<Direct>) -> Command<Direct> {
    let mut cmd = cmd;
    for d in ["/usr", "/bin", "/lib", "/lib64"] {
        cmd = cmd.mount(Mount::bind_ro(d, d).optional());
    }
    let dir = Path::new(HELPER).parent().unwrap();
    cmd.mount(Mount::bind_ro(dir, dir))
}

/// The mounts area's entries: every child step of src/child/mounts.rs
/// (the slave, both new roots, every kind of mount, a file bind, an
/// optional mount skipped in the child, read-only binds and remounts, the
/// old root detached, the lock). Where this user may not have those
/// namespaces only the plain path runs (said on stderr).
pub fn mount_commands() -> Vec<Maximal> {
    if !map_root_sandboxes_work() {
        eprintln!("mounts entry without mounts: user, mount and pid namespaces refused here");
        return vec![entry("mounts", helper("report"), |_| {})];
    }
    let ns = Namespaces::USER | Namespaces::MOUNT | Namespaces::PID;
    let scratch = Scratch::new("maximal-mounts");
    std::fs::create_dir(scratch.join("rw")).unwrap();
    std::fs::write(scratch.join("file"), b"bound file").unwrap();
    let tmpfs_root = with_system_binds(helper("report").unshare(ns).map_root().root_tmpfs())
        .mount(Mount::proc("/proc"))
        .mount(Mount::dev("/dev"))
        .mount(Mount::tmpfs("/tmp").size(1 << 20).mode(0o1777))
        .mount(Mount::bind(scratch.join("rw"), "/data/rw"))
        .mount(Mount::bind_ro(scratch.join("file"), "/etc/bound-file"))
        // Missing at build() (and at the spawn): skipped by the child.
        .mount(Mount::bind_ro("/no/such/safespawn-maximal", "/skipped").optional())
        .mount(Mount::remount_ro("/data/rw").optional())
        .mount(Mount::remount_ro("/"));
    let root_dir = Scratch::new("maximal-root-dir");
    std::fs::create_dir(root_dir.join("inside")).unwrap();
    let dir_root = with_system_binds(
        helper("report")
            .unshare(ns)
            .map_root()
            .root(&*root_dir)
            .current_dir("/inside"),
    )
    .mount(Mount::proc("/proc"))
    .mount(Mount::remount_ro("/"));
    // No new root: a tmpfs over a directory of the caller's view.
    let in_place_dir = Scratch::new("maximal-in-place");
    let in_place_s = in_place_dir.to_str().unwrap().to_owned();
    let in_place = helper("report")
        .unshare(ns)
        .map_root()
        .mount(Mount::tmpfs(&*in_place_dir))
        .mount(Mount::proc("/proc"));
    vec![
        entry("mounts", tmpfs_root, move |r| {
            drop(scratch);
            assert_eq!(r.field("pid"), "1");
            assert_eq!(r.field("uid"), "0 0 0 0");
            assert!(r.mount_at("/").unwrap().has("ro"));
            assert!(r.mount_at("/data/rw").unwrap().has("ro"));
            assert!(r.mount_at("/tmp").unwrap().has_super("size=1024k"));
            assert!(r.mount_at("/etc/bound-file").unwrap().has("ro"));
            assert_eq!(r.mount_at("/dev/pts").unwrap().fstype, "devpts");
            assert!(r.mount_at("/skipped").is_none());
        }),
        entry("mounts", dir_root, move |r| {
            drop(root_dir);
            assert_eq!(r.field("cwd"), "/inside");
            assert!(r.mount_at("/").unwrap().has("ro"));
            assert!(r.mount_at("/usr").unwrap().has("ro"));
        }),
        entry("mounts", in_place, move |r| {
            let m = r.mount_at(&in_place_s).expect("the tmpfs in place");
            assert_eq!(m.fstype, "tmpfs");
            drop(in_place_dir);
        }),
    ]
}

/// This process's OOM score adjustment: the knobs entries raise it, which
/// any user may.
fn own_oom_score_adj() -> i32 {
    std::fs::read_to_string("/proc/self/oom_score_adj").map_or(0, |s| s.trim().parse().unwrap_or(0))
}

/// The first CPU this process may run on.
fn own_first_cpu() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .and_then(|l| l.trim().split([',', '-']).next()?.parse().ok())
        .unwrap_or(0)
}

/// Every knob any user may set (core scheduling where the system has it),
/// with the `/proc` fd moved by a `map_fd` collision-free plan.
fn knobs_entry() -> Maximal {
    let oom = (own_oom_score_adj() + 1).min(1000);
    let cpu = own_first_cpu();
    let mut cmd = helper("report")
        .nice(19)
        .cpu_affinity(&[cpu])
        .oom_score_adj(oom)
        .personality(Personality::ADDR_NO_RANDOMIZE);
    let core = Command::new("true").sched_core_new().build().is_ok();
    if core {
        cmd = cmd.sched_core_new();
    }
    entry("knobs", cmd, move |r| {
        assert_eq!(r.field("nice"), "19");
        assert_eq!(r.field("cpus"), cpu.to_string());
        assert_eq!(r.field("oom_score_adj"), oom.to_string());
        assert_eq!(r.field("personality"), "40000");
        if core {
            assert_ne!(r.field("sched_core"), "0");
        }
    })
}

/// session: a pseudo-terminal's slave as stdin, made the controlling
/// terminal of the child's new session. (`foreground` needs a caller with
/// a controlling terminal, which this process has not: its steps run
/// under the tripwire in tests/controlling_tty.rs, in a re-executed test
/// that has one.)
fn controlling_tty_entry() -> Maximal {
    let pty = super::pty();
    let cmd = helper("report,tty")
        .stdin(pty.slave_dup())
        .controlling_tty(0);
    entry("session", cmd, move |r| {
        assert_eq!(r.field("sid"), r.field("pid"));
        assert_eq!(r.field("tty_nr"), pty.rdev.to_string());
        assert_eq!(r.field("tty_fg"), r.field("pid"));
        drop(pty); // the master open until the child is gone
    })
}

/// The labels: an SELinux label the kernel refuses is ignored where
/// SELinux does not enforce (the step still runs); elsewhere only the
/// code path without one runs (said on stderr).
fn label_entry() -> Maximal {
    let enforcing =
        std::fs::read("/sys/fs/selinux/enforce").is_ok_and(|e| e.first() != Some(&b'0'));
    if enforcing {
        eprintln!("label entry without a label: SELinux enforces here");
        return entry("label", helper("report"), |_| {});
    }
    entry(
        "label",
        helper("report").selinux_exec_label("system_u:system_r:safespawn_maximal_t:s0"),
        |_| {},
    )
}

fn caps(r: &Report, key: &str) -> u64 {
    u64::from_str_radix(r.field(key), 16).unwrap_or_else(|_| panic!("{key}={:?}", r.field(key)))
}

/// The options only root can set (credentials). The first entry also holds
/// the process and session options, in one command: the child runs those
/// steps around the credential change (rlimits before it, the parent-death
/// signal after it, since a uid change clears it).
pub fn root_maximal_commands() -> Vec<Maximal> {
    // Below ours where root has CAP_SYS_NICE (a VM's or container's root
    // may lack it).
    let sys_nice = rustix::thread::capabilities(None).is_ok_and(|c| {
        c.effective
            .contains(rustix::thread::CapabilitySet::SYS_NICE)
    });
    let nice = if sys_nice { -3 } else { 19 };
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
    // namespaces: ranges only root may map, and credentials set inside them.
    if our_net.is_some() && can_unshare(kinds | Namespaces::USER) {
        list.push(entry(
            "namespaces",
            helper_for_any_user("report")
                .unshare(kinds | Namespaces::USER)
                .uid_map(0, 100000, 1000)
                .uid_map(1000, 200000, 1000)
                .gid_map(0, 100000, 65536)
                .uid(1005)
                .gid(1000)
                .groups(&[1000, 2000])
                .hostname("root-ranges"),
            |r| {
                assert_eq!(r.field("uid_map"), "0 100000 1000,1000 200000 1000");
                assert_eq!(r.field("gid_map"), "0 100000 65536");
                assert_eq!(r.field("uid"), "1005 1005 1005 1005");
                assert_eq!(r.field("gid"), "1000 1000 1000 1000");
                assert_eq!(r.groups(), [1000, 2000]);
                assert_eq!(r.field("hostname"), "root-ranges");
            },
        ));
    }
    // mounts as root, without a user namespace: no lock (said on stderr
    // where /proc is missing, which the report needs).
    if can_unshare(Namespaces::MOUNT | Namespaces::PID) {
        list.push(entry(
            "mounts",
            with_system_binds(
                helper("report")
                    .unshare(Namespaces::MOUNT | Namespaces::PID)
                    .root_tmpfs(),
            )
            .mount(Mount::proc("/proc"))
            .mount(Mount::tmpfs("/tmp"))
            .mount(Mount::remount_ro("/")),
            |r| {
                assert_eq!(r.field("pid"), "1");
                assert!(r.mount_at("/").unwrap().has("ro"));
                assert!(r.mount_at("/tmp").unwrap().has("rw"));
            },
        ));
    }
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
    // cgroup: placed by the kernel (CLONE_INTO_CGROUP), and by the child's
    // own write to cgroup.procs followed by its new cgroup namespace (the
    // plan of a kernel before 5.7). The scratch cgroups live in the checks,
    // which run once the child is reaped.
    if let Some(mount) = super::cgroup::cgroup2_mount() {
        let by_clone = super::cgroup::ScratchCgroup::new(&mount, "maximal");
        let want = by_clone.shown();
        list.push(entry(
            "cgroup",
            helper("report").cgroup(&by_clone.path),
            move |r| {
                assert_eq!(super::cgroup::reported(r), want);
                drop(by_clone);
            },
        ));
        let by_write = super::cgroup::ScratchCgroup::new(&mount, "maximal-write");
        let mut written = entry(
            "cgroup",
            helper("report")
                .cgroup(&by_write.path)
                .unshare(Namespaces::CGROUP),
            move |r| {
                assert_eq!(super::cgroup::reported(r), "/");
                drop(by_write);
            },
        );
        written.compat_at_build = safespawn::__compat::NO_CLONE_INTO_CGROUP;
        list.push(written);
    } else {
        eprintln!("no cgroup entries: no cgroup v2 filesystem is mounted here");
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
            "knobs",
            helper_for_any_user("report")
                .nice(nice)
                .securebits(Securebits::NOROOT | Securebits::KEEP_CAPS)
                .uid(65534)
                .gid(65534)
                .allow_cap(Capability::NetBindService),
            move |r| {
                assert_eq!(r.field("nice"), nice.to_string());
                // KEEP_CAPS is cleared by exec.
                assert_eq!(r.field("securebits"), "1");
                assert_eq!(caps(r, "capeff"), bit, "CapEff");
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
    // A landlocked child that may not execute its program reports from
    // after the step.
    let landlocked = kernel_abi().is_ok().then(|| {
        (
            "landlock",
            Command::new("/bin/true").landlock(Landlock::new().allow_read("/").best_effort()),
            Stage::Exec,
            Errno::ACCESS,
        )
    });
    landlocked
        .into_iter()
        .chain(failing_without_landlock())
        .collect()
}

fn failing_without_landlock() -> Vec<(&'static str, Command<Direct>, Stage, Errno)> {
    let mut list = vec![
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
        // A CPU no machine here has.
        (
            "knobs",
            Command::new("true").cpu_affinity(&[1023]),
            Stage::Sched,
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
    ];
    // A range a plain user may not map: the parent's write is refused and
    // the child is killed at its gate (root may map any range).
    let euid = rustix::process::geteuid().as_raw();
    if euid != 0 && std::path::Path::new("/proc/self").exists() && can_unshare(Namespaces::USER) {
        list.push((
            "namespaces",
            Command::new("true")
                .unshare(Namespaces::USER)
                .uid_map(0, euid ^ 1, 1),
            Stage::IdMap,
            Errno::PERM,
        ));
    }
    // A destination missing from a view without a new root.
    let missing_dst = || Mount::bind("/usr", "/no/such/safespawn-destination");
    if map_root_sandboxes_work() {
        list.push((
            "mounts",
            Command::new("true")
                .unshare(Namespaces::USER | Namespaces::MOUNT)
                .map_root()
                .mount(missing_dst()),
            Stage::Mount,
            Errno::NOENT,
        ));
    } else if super::is_root() && can_unshare(Namespaces::MOUNT) {
        list.push((
            "mounts",
            Command::new("true")
                .unshare(Namespaces::MOUNT)
                .mount(missing_dst()),
            Stage::Mount,
            Errno::NOENT,
        ));
    }
    list
}

/// Commands whose failure needs `/proc` at `build()` (the label writes
/// through it), where this process has one: an AppArmor profile on a
/// system without AppArmor is refused at `Stage::Label` (`EINVAL` from the
/// exec attribute no LSM takes).
pub fn failing_commands_with_proc() -> Vec<(&'static str, Command<Direct>, Stage, Errno)> {
    let no_lsm_attr = std::path::Path::new("/proc/self/attr/exec").exists()
        && !std::path::Path::new("/proc/self/attr/apparmor").exists()
        && !std::path::Path::new("/sys/fs/selinux").exists();
    if !no_lsm_attr {
        return Vec::new();
    }
    vec![(
        "label",
        Command::new("true").apparmor_profile("safespawn-maximal"),
        Stage::Label,
        Errno::INVAL,
    )]
}

/// The daemon mode's options: a daemon writing and locking `pidfile`.
pub fn maximal_daemon(pidfile: &Path) -> Command<Daemon> {
    helper("sleep=30").umask(0o022).daemonize().pidfile(pidfile)
}

/// The two ways into a child: clone (or clone3) straight to exec, and the
/// fork path, through the pause. (An entry with a hook takes the fork path
/// either way.)
#[derive(Clone, Copy, Debug)]
pub enum Way {
    Clone,
    Paused,
}

pub const PATHS: [Way; 2] = [Way::Clone, Way::Paused];

pub fn start(prepared: &Prepared<Direct>, path: Way) -> Result<Running, Error> {
    match path {
        Way::Clone => prepared.spawn(),
        Way::Paused => prepared.spawn_paused()?.resume(),
    }
}

/// Reads `pipe` to its end, also when `nonblocking_pipes` made it
/// non-blocking.
pub fn read_all(mut pipe: impl Read) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => return String::from_utf8(out).unwrap(),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("reading the report: {e}"),
        }
    }
}

/// Spawns one entry of the list on `path`, reads its report, reaps it,
/// drops the `Prepared` and runs the entry's check.
pub fn run_entry(m: Maximal, path: Way) {
    let Maximal {
        area,
        cmd,
        check,
        compat_at_build,
    } = m;
    let what = format!("{area} ({path:?} path)");
    let forced = safespawn::__forced_compat();
    safespawn::__force_compat(forced | compat_at_build);
    let prepared = cmd.stdout(Stdio::piped()).build();
    safespawn::__force_compat(forced);
    let prepared = prepared.unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut child = start(&prepared, path).unwrap_or_else(|e| panic!("{what}: {e}"));
    let out = read_all(child.take_stdout().expect("stdout is piped"));
    let fin: Finished = child.wait().unwrap();
    assert!(fin.success(), "{what}: {:?}\n{out}", fin.status());
    drop(prepared);
    let report = Report::parse(&out);
    assert!(!report.field("pid").is_empty(), "{what}: no report: {out}");
    check(&report);
}
