//! Namespaces: `unshare`, `map_root`, `hostname`, `join_namespace`, read
//! back from the child's own /proc/self/ns/* and /proc/self/status through
//! the test helper.
//!
//! As root every kind is tested alone; as another user each kind comes
//! with `USER` (where the system allows unprivileged user namespaces; a
//! system that does not makes these tests skip with a message).

mod common;

use std::os::fd::{AsRawFd, OwnedFd};

use common::{helper_for_any_user, is_root, output_of, report_of, Report};
use safespawn::{BuildErrorKind, Command, Direct, Error, Namespaces, Signal, Stage, Stdio};

/// The helper's name for each kind (`/proc/self/ns/NAME`).
const KINDS: [(Namespaces, &str); 8] = [
    (Namespaces::USER, "user"),
    (Namespaces::MOUNT, "mnt"),
    (Namespaces::PID, "pid"),
    (Namespaces::NET, "net"),
    (Namespaces::UTS, "uts"),
    (Namespaces::IPC, "ipc"),
    (Namespaces::CGROUP, "cgroup"),
    (Namespaces::TIME, "time"),
];

fn our_ns(name: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{name}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// What a plain user adds to a kind so that it may create it: `USER`.
fn with_user(ns: Namespaces) -> Namespaces {
    if is_root() {
        ns
    } else {
        ns | Namespaces::USER
    }
}

/// Whether `test` can run: this process may create `ns` (root, or a
/// system that allows unprivileged user namespaces, and no container
/// profile refusing the kind); says why not.
fn can_or_skip(test: &str, ns: Namespaces) -> bool {
    if !std::path::Path::new("/proc/self/ns").exists() {
        // The no-proc profile: the reports and map_root need /proc.
        eprintln!("skipping {test}: no /proc here");
        return false;
    }
    let ok = common::can_unshare(ns);
    if !ok {
        eprintln!("skipping {test} ({ns:?}): refused here");
    }
    ok
}

/// The report of `cmd`, on the clone path and on the fork path (paused,
/// then resumed).
fn reports_both_paths(make: impl Fn() -> Command<Direct>) -> [Report; 2] {
    let clone = report_of(make());
    let paused = make().stdout(Stdio::piped()).spawn_paused().unwrap();
    let fork = Report::parse(&output_of(paused.resume().unwrap()));
    [clone, fork]
}

#[test]
fn each_kind_unshared_gets_a_namespace_of_its_own_and_only_that_kind() {
    for (kind, _) in KINDS {
        let ns = with_user(kind);
        if !can_or_skip("each_kind_unshared_...", ns) {
            continue;
        }
        for r in reports_both_paths(|| helper_for_any_user("report").unshare(ns)) {
            for (other, other_name) in KINDS {
                let child = r.field(&format!("ns_{other_name}"));
                assert!(!child.is_empty(), "no ns_{other_name} in the report");
                if ns.contains(other) {
                    assert_ne!(
                        child,
                        our_ns(other_name),
                        "{other_name} with unshare({ns:?})"
                    );
                } else {
                    assert_eq!(
                        child,
                        our_ns(other_name),
                        "{other_name} with unshare({ns:?})"
                    );
                }
            }
        }
    }
}

#[test]
fn every_kind_at_once() {
    if !can_or_skip("every_kind_at_once", Namespaces::all()) {
        return;
    }
    for r in reports_both_paths(|| helper_for_any_user("report").unshare(Namespaces::all())) {
        for (_, name) in KINDS {
            assert_ne!(r.field(&format!("ns_{name}")), our_ns(name), "{name}");
        }
        assert_eq!(r.field("pid"), "1");
    }
}

/// `map_root` as a plain user (a thread with uid and gid 65534): uid and
/// gid 0 inside, `setgroups` denied.
#[test]
fn map_root_makes_a_plain_user_root_inside() {
    if !common::root_or_skip(
        "map_root_makes_a_plain_user_root_inside",
        "to become uid 65534",
    ) {
        return;
    }
    if !std::path::Path::new("/proc/self/ns").exists() {
        eprintln!("skipping map_root_makes_a_plain_user_root_inside: no /proc here");
        return;
    }
    std::thread::spawn(|| {
        rustix::thread::set_thread_groups(&[]).unwrap();
        rustix::thread::set_thread_gid(rustix::fs::Gid::from_raw(65534)).unwrap();
        rustix::thread::set_thread_uid(rustix::fs::Uid::from_raw(65534)).unwrap();
        // The uid change made the process non-dumpable, and its /proc files
        // root's: the child, which shares or copies this memory until exec,
        // cannot open its own maps. A real unprivileged caller is dumpable.
        if common::can_unshare(Namespaces::USER) {
            match helper_for_any_user("report").map_root().status() {
                Err(Error::Spawn { stage, errno, .. }) => {
                    assert_eq!((stage, errno), (Stage::IdMap, rustix::io::Errno::ACCESS))
                }
                other => panic!("map_root while not dumpable: {other:?}"),
            }
        }
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable)
            .unwrap();
        if !can_or_skip("map_root_makes_a_plain_user_root_inside", Namespaces::USER) {
            return;
        }
        // Without the maps the ids are unmapped (overflow 65534).
        let r = report_of(helper_for_any_user("report").unshare(Namespaces::USER));
        assert_eq!(r.field("uid"), "65534 65534 65534 65534");
        for r in reports_both_paths(|| helper_for_any_user("report").map_root()) {
            assert_eq!(r.field("uid"), "0 0 0 0");
            assert_eq!(r.field("gid"), "0 0 0 0");
            assert_ne!(r.field("ns_user"), our_ns("user"));
        }
        // Root inside may set its hostname in a UTS namespace of its own.
        let r = report_of(
            helper_for_any_user("report")
                .map_root()
                .unshare(Namespaces::UTS)
                .hostname("plain-user-host"),
        );
        assert_eq!(r.field("hostname"), "plain-user-host");
        // And a kind without USER is refused, as the kernel's EPERM.
        match helper_for_any_user("report")
            .unshare(Namespaces::NET)
            .status()
        {
            Err(Error::Spawn { stage, errno, .. }) => {
                assert_eq!((stage, errno), (Stage::Namespace, rustix::io::Errno::PERM))
            }
            other => panic!("unshare(NET) as a plain user: {other:?}"),
        }
    })
    .join()
    .unwrap();
}

#[test]
fn map_root_inside_the_id_maps_of_the_namespace() {
    if !can_or_skip("map_root_inside_the_id_maps", Namespaces::USER) {
        return;
    }
    let out = helper_for_any_user("cat-fd=3")
        .map_fd(std::fs::File::open("/proc/self/uid_map").unwrap(), 3)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let ours = output_of(out);
    assert!(!ours.is_empty());
    let euid = rustix::process::geteuid().as_raw();
    let r = report_of(helper_for_any_user("report").map_root());
    assert_eq!(r.field("uid"), "0 0 0 0");
    // The child's own maps, read by a program started inside.
    let out = Command::new("cat")
        .arg("/proc/self/uid_map")
        .map_root()
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let map = output_of(out);
    let fields: Vec<&str> = map.split_whitespace().collect();
    assert_eq!(fields, ["0", &euid.to_string(), "1"], "{map:?}");
}

#[test]
fn hostname_is_set_inside_a_new_uts_namespace_only() {
    if !can_or_skip("hostname_is_set_...", with_user(Namespaces::UTS)) {
        return;
    }
    let ours = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for r in reports_both_paths(|| {
        helper_for_any_user("report")
            .unshare(with_user(Namespaces::UTS))
            .hostname("safespawn-uts")
    }) {
        assert_eq!(r.field("hostname"), "safespawn-uts");
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        ours
    );
}

/// A child joins the user and UTS namespaces of another child (which made
/// them with `map_root` and set their hostname). The join fd's number is
/// also a `map_fd` target: the join comes first, so the placement does not
/// get in its way.
#[test]
fn join_namespace_enters_the_namespaces_of_another_child() {
    if !can_or_skip("join_namespace_...", Namespaces::USER | Namespaces::UTS) {
        return;
    }
    let first = helper_for_any_user("sleep=20")
        .map_root()
        .unshare(Namespaces::UTS)
        .hostname("joined-host")
        .spawn()
        .unwrap();
    let pid = first.pid();
    let open = |kind: &str| -> OwnedFd {
        std::fs::File::open(format!("/proc/{pid}/ns/{kind}"))
            .unwrap()
            .into()
    };
    let their = |kind: &str| {
        std::fs::read_link(format!("/proc/{pid}/ns/{kind}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    for paused in [false, true] {
        let user = open("user");
        let uts = open("uts");
        let uts_no = uts.as_raw_fd();
        let cmd = helper_for_any_user("report")
            .join_namespace(user, Namespaces::USER)
            .join_namespace(uts, Namespaces::UTS)
            .map_fd(std::fs::File::open("/dev/null").unwrap(), uts_no)
            .stdout(Stdio::piped());
        let r = if paused {
            Report::parse(&output_of(cmd.spawn_paused().unwrap().resume().unwrap()))
        } else {
            Report::parse(&output_of(cmd.spawn().unwrap()))
        };
        assert_eq!(r.field("hostname"), "joined-host", "paused: {paused}");
        assert_eq!(r.field("ns_uts"), their("uts"));
        assert_eq!(r.field("ns_user"), their("user"));
        assert_eq!(r.fds[&uts_no], "/dev/null");
        // The join fds are the plan's, close-on-exec: the program has none.
        assert!(
            !r.fds
                .values()
                .any(|t| t.starts_with("user:[") || t.starts_with("uts:[")),
            "{:?}",
            r.fds
        );
        // Inside the first child's user namespace our uid is its root.
        assert_eq!(r.field("uid"), "0 0 0 0");
    }
    // A join of the wrong kind is the kernel's EINVAL, at the step.
    match helper_for_any_user("report")
        .join_namespace(open("net"), Namespaces::UTS)
        .status()
    {
        Err(Error::Spawn { stage, errno, .. }) => {
            assert_eq!((stage, errno), (Stage::Namespace, rustix::io::Errno::INVAL))
        }
        other => panic!("a net namespace fd joined as UTS: {other:?}"),
    }
    first.abort().unwrap();
}

fn build_error(cmd: Command<Direct>) -> (BuildErrorKind, String) {
    match cmd.build() {
        Err(e @ Error::Build { .. }) => (e.build_kind().unwrap(), e.to_string()),
        other => panic!("expected a build error, got {other:?}"),
    }
}

#[test]
fn prerequisites_are_build_errors_naming_both_items() {
    let devnull = || std::fs::File::open("/dev/null").unwrap();
    // A new user namespace has no privilege over an existing one.
    for cmd in [
        Command::new("true").unshare(Namespaces::USER),
        Command::new("true").map_root(),
    ] {
        let (kind, e) = build_error(cmd.join_namespace(devnull(), Namespaces::NET));
        assert_eq!(kind, BuildErrorKind::Conflict, "{e}");
        assert!(e.contains("join_namespace(fd ") && e.contains("NET"), "{e}");
        assert!(e.contains("unshare(USER)") || e.contains("map_root"), "{e}");
    }
    let (kind, e) = build_error(Command::new("true").hostname("h"));
    assert_eq!(kind, BuildErrorKind::Conflict, "{e}");
    assert!(e.contains("hostname") && e.contains("unshare(UTS)"), "{e}");
    // USER is not enough.
    let (kind, e) = build_error(Command::new("true").map_root().hostname("h"));
    assert_eq!(kind, BuildErrorKind::Conflict, "{e}");

    let (kind, e) = build_error(
        Command::new("true")
            .unshare(Namespaces::UTS)
            .hostname("a".repeat(65)),
    );
    assert_eq!(kind, BuildErrorKind::TooLong, "{e}");
    assert!(Command::new("true")
        .unshare(Namespaces::UTS)
        .hostname("a".repeat(64))
        .build()
        .is_ok());
    let (kind, e) = build_error(
        Command::new("true")
            .unshare(Namespaces::UTS)
            .hostname("a\0b"),
    );
    assert_eq!(kind, BuildErrorKind::Nul, "{e}");

    for two in [Namespaces::USER | Namespaces::NET, Namespaces::empty()] {
        let (kind, e) = build_error(Command::new("true").join_namespace(devnull(), two));
        assert_eq!(kind, BuildErrorKind::Invalid, "{e}");
        assert!(
            e.contains("join_namespace") && e.contains("exactly one"),
            "{e}"
        );
    }
    let (kind, e) = build_error(
        Command::new("true")
            .unshare(Namespaces::NET)
            .join_namespace(devnull(), Namespaces::NET),
    );
    assert_eq!(kind, BuildErrorKind::Conflict, "{e}");
    assert!(
        e.contains("join_namespace") && e.contains("unshare(NET)"),
        "{e}"
    );
    let (kind, e) = build_error(
        Command::new("true")
            .map_root()
            .join_namespace(devnull(), Namespaces::USER),
    );
    assert_eq!(kind, BuildErrorKind::Conflict, "{e}");
    assert!(
        e.contains("join_namespace") && e.contains("map_root"),
        "{e}"
    );

    match Command::new("true")
        .unshare(Namespaces::PID)
        .daemonize()
        .build()
    {
        Err(e) => {
            assert_eq!(e.build_kind(), Some(BuildErrorKind::Conflict), "{e}");
            assert!(e.to_string().contains("unshare(PID)"), "{e}");
        }
        Ok(_) => panic!("a daemon with unshare(PID) was built"),
    }
}

#[test]
fn a_pid_namespace_child_is_pid_1_and_its_parent_death_signal_still_works() {
    let ns = with_user(Namespaces::PID);
    if !can_or_skip("a_pid_namespace_child_...", ns) {
        return;
    }
    // No misfire: getppid() is 0 inside, which the parent-death check must
    // not take for a dead parent.
    for r in reports_both_paths(|| {
        helper_for_any_user("report")
            .unshare(ns)
            .parent_death_signal(Signal::KILL)
    }) {
        assert_eq!(r.field("pid"), "1");
        assert_eq!(r.field("getppid"), "0");
    }
    // And the signal still comes (SIGKILL: pid 1 ignores every signal from
    // outside that it has no handler for, but SIGKILL and SIGSTOP).
    for paused in [false, true] {
        let detached = std::thread::spawn(move || {
            let cmd = helper_for_any_user("sleep=20")
                .unshare(ns)
                .parent_death_signal(Signal::KILL);
            let running = if paused {
                cmd.spawn_paused().unwrap().resume().unwrap()
            } else {
                cmd.spawn().unwrap()
            };
            running.detach()
        })
        .join()
        .unwrap();
        let finished = detached.wait().unwrap();
        assert_eq!(finished.signal(), Some(libc::SIGKILL), "paused: {paused}");
    }
}

/// The fork path with namespaces is a clone that creates them: a hook
/// runs inside them already.
#[test]
fn a_hook_runs_inside_the_new_namespaces() {
    if !can_or_skip("a_hook_runs_inside_...", with_user(Namespaces::PID)) {
        return;
    }
    // SAFETY: the hook makes one raw system call.
    let cmd = unsafe {
        helper_for_any_user("report")
            .unshare(with_user(Namespaces::PID))
            .pre_exec(|| {
                if rustix::process::getpid().as_raw_nonzero().get() == 1 {
                    Ok(())
                } else {
                    Err(rustix::io::Errno::SRCH)
                }
            })
    };
    let r = report_of(cmd);
    assert_eq!(r.field("pid"), "1");
}

/// A daemon starts in the namespaces too: the intermediate is cloned into
/// them, and the daemon it starts inherits them.
#[test]
fn a_daemon_runs_in_the_new_namespaces() {
    let ns = with_user(Namespaces::NET);
    if !can_or_skip("a_daemon_runs_in_the_new_namespaces", ns) {
        return;
    }
    let d = helper_for_any_user("sleep=20")
        .unshare(ns)
        .map_root()
        .daemonize()
        .run()
        .unwrap();
    let link = |kind: &str| {
        std::fs::read_link(format!("/proc/{}/ns/{kind}", d.daemon))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let (net, user) = (link("net"), link("user"));
    let pid = rustix::process::Pid::from_raw(d.daemon).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    assert_ne!(net, our_ns("net"));
    assert_ne!(user, our_ns("user"));
}

#[test]
fn a_hostname_the_kernel_refuses_is_stage_hostname() {
    // As root: the new UTS namespace belongs to our (initial) user
    // namespace; joining another user namespace first leaves the child
    // without CAP_SYS_ADMIN over it, so sethostname fails with EPERM.
    if !is_root()
        || !can_or_skip(
            "a_hostname_the_kernel_refuses",
            Namespaces::USER | Namespaces::UTS,
        )
    {
        return;
    }
    let other = helper_for_any_user("sleep=20").map_root().spawn().unwrap();
    let user: OwnedFd = std::fs::File::open(format!("/proc/{}/ns/user", other.pid()))
        .unwrap()
        .into();
    match helper_for_any_user("report")
        .unshare(Namespaces::UTS)
        .join_namespace(user, Namespaces::USER)
        .hostname("refused")
        .status()
    {
        Err(Error::Spawn { stage, errno, .. }) => {
            assert_eq!((stage, errno), (Stage::Hostname, rustix::io::Errno::PERM))
        }
        other => panic!("sethostname without CAP_SYS_ADMIN over the UTS namespace: {other:?}"),
    }
    other.abort().unwrap();
}
