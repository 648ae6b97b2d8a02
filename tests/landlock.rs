//! Landlock: what the child may and may not do under `Command::landlock`,
//! seen from inside through the helper's `try-*` actions, on the clone
//! path and on the fork path.
//!
//! On a system without landlock (a kernel before 5.13, one that did not
//! enable it, or the `5.4` and `docker-eperm` compat profiles) the tests
//! check that `build()` refuses, strict or best effort, and skip the rest
//! with a message. Kernels with an ABI below what a test needs skip that
//! test the same way; `tests/compat_landlock.rs` emulates them.

mod common;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use common::landlock::{
    abi_or_skip, base, helper_path, kernel_abi, without_landlock_build_fails, Tree,
};
use common::{helper, helper_for_any_user, is_root, output_of, report_of, Report, Scratch};
use safespawn::{
    BuildErrorKind, Command, Direct, Errno, Error, Landlock, Mount, Namespaces, Stage, Stdio,
};

/// The helper running `tries` (`try-read=...,try-write=...`).
fn attempts(tries: &[(&str, PathBuf)]) -> String {
    tries
        .iter()
        .map(|(action, path)| format!("try-{action}={}", path.display()))
        .collect::<Vec<_>>()
        .join(",")
}

/// The report of `cmd` on the clone path and on the fork path (paused,
/// then resumed).
fn both_paths(make: impl Fn() -> Command<Direct>) -> [Report; 2] {
    let clone = report_of(make());
    let paused = make().stdout(Stdio::piped()).spawn_paused().unwrap();
    let fork = Report::parse(&output_of(paused.resume().unwrap()));
    [clone, fork]
}

fn result<'a>(r: &'a Report, action: &str, path: &Path) -> &'a str {
    r.field(&format!("try-{action} {}", path.display()))
}

#[test]
fn reading_writing_and_executing_are_exactly_what_the_rules_allow() {
    if !abi_or_skip("reading_writing_and_executing_...", 3) {
        return;
    }
    let t = Tree::new("ll-rwx");
    let expect: Vec<(&str, PathBuf, &str)> = vec![
        // Reading: where any rule allows it, and nowhere else.
        ("read", t.p("ro/f"), "ok"),
        ("read", t.p("ro"), "ok"),
        ("read", t.p("rw/f"), "ok"),
        ("read", t.p("none/f"), "EACCES"),
        ("read", t.p("none"), "EACCES"),
        ("read", t.p(""), "EACCES"),
        // Writing: beneath allow_write only.
        ("write", t.p("ro/f"), "EACCES"),
        ("write", t.p("ro/new"), "EACCES"),
        ("write", t.p("none/f"), "EACCES"),
        ("write", t.p("rw/f"), "ok"),
        ("write", t.p("rw/new"), "ok"),
        ("mkdir", t.p("ro/d"), "EACCES"),
        ("mkdir", t.p("rw/d"), "ok"),
        ("truncate", t.p("ro/f"), "EACCES"),
        ("truncate", t.p("rw/f"), "ok"),
        // Renames between directories beneath allow_write (REFER), and
        // none out of a read-only one.
        (
            "rename",
            PathBuf::from(format!(
                "{}:{}",
                t.p("rw/a").display(),
                t.p("rw/sub/a").display()
            )),
            "ok",
        ),
        (
            "rename",
            PathBuf::from(format!(
                "{}:{}",
                t.p("ro/f").display(),
                t.p("rw/g").display()
            )),
            "EACCES",
        ),
        // Executing: beneath allow_exec only; allow_read is not enough.
        ("exec", t.p("x/prog"), "ok"),
        ("exec", t.p("ro/prog"), "EACCES"),
    ];
    let tries: Vec<(&str, PathBuf)> = expect.iter().map(|(a, p, _)| (*a, p.clone())).collect();
    let actions = attempts(&tries);
    for (i, r) in both_paths(|| helper(&actions).landlock(t.landlock()))
        .iter()
        .enumerate()
    {
        for (action, path, want) in &expect {
            // The first run changed the tree: the second finds the rename
            // done, the directory made.
            let want = match (i, *action) {
                (1, "rename") if *want == "ok" => "ENOENT",
                (1, "mkdir") if *want == "ok" => "EEXIST",
                _ => want,
            };
            assert_eq!(
                result(r, action, path),
                want,
                "try-{action} {} (run {i})",
                path.display()
            );
        }
    }
    // Nothing changed where no rule allowed it.
    assert_eq!(std::fs::read_to_string(t.p("ro/f")).unwrap(), "content");
    assert!(!t.p("ro/new").exists() && !t.p("ro/d").exists());
}

#[test]
fn a_program_outside_allow_exec_fails_to_start_with_eacces() {
    if !abi_or_skip("a_program_outside_allow_exec_...", 3) {
        return;
    }
    let t = Tree::new("ll-exec");
    let err = Command::new(t.p("ro/prog"))
        .landlock(t.landlock())
        .status()
        .unwrap_err();
    match err {
        Error::Spawn { stage, errno, .. } => {
            assert_eq!((stage, errno), (Stage::Exec, Errno::ACCESS))
        }
        other => panic!("{other}"),
    }
    assert!(Command::new(t.p("x/prog"))
        .landlock(t.landlock())
        .status()
        .unwrap()
        .success());
}

#[test]
fn tcp_bind_and_connect_only_to_the_ports_allowed() {
    if !abi_or_skip("tcp_bind_and_connect_...", 4) {
        return;
    }
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (p_open, p_closed) = (
        open.local_addr().unwrap().port(),
        closed.local_addr().unwrap().port(),
    );
    // Two ports free for binding: taken and released here (another
    // process could take them in between; the test says so if it does).
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (b_yes, b_no) = (free(), free());
    let actions =
        format!("try-connect={p_open},try-connect={p_closed},try-bind={b_yes},try-bind={b_no}");
    // TCP rules alone: the filesystem stays as it is.
    let l = Landlock::new()
        .allow_tcp_connect(p_open)
        .allow_tcp_bind(b_yes);
    for r in both_paths(|| helper(&actions).landlock(l.clone())) {
        assert_eq!(r.field(&format!("try-connect {p_open}")), "ok");
        assert_eq!(r.field(&format!("try-connect {p_closed}")), "EACCES");
        let bound = r.field(&format!("try-bind {b_yes}"));
        assert!(
            bound == "ok" || bound == "EADDRINUSE",
            "bind {b_yes}: {bound}"
        );
        assert_eq!(r.field(&format!("try-bind {b_no}")), "EACCES");
    }
    // Without landlock both connect.
    let r = report_of(helper(&format!("try-connect={p_closed}")));
    assert_eq!(r.field(&format!("try-connect {p_closed}")), "ok");
}

#[test]
fn one_prepared_confines_every_one_of_a_hundred_children() {
    if !abi_or_skip("one_prepared_confines_...", 3) {
        return;
    }
    let t = Tree::new("ll-hundred");
    let actions = attempts(&[("read", t.p("ro/f")), ("read", t.p("none/f"))]);
    let prepared = helper(&actions)
        .landlock(t.landlock())
        .stdout(Stdio::piped())
        .build()
        .unwrap();
    for i in 0..100 {
        let r = Report::parse(&output_of(prepared.spawn().unwrap()));
        assert_eq!(result(&r, "read", &t.p("ro/f")), "ok", "spawn {i}");
        assert_eq!(result(&r, "read", &t.p("none/f")), "EACCES", "spawn {i}");
    }
    // The parent is not confined by any of it.
    std::fs::read(t.p("none/f")).unwrap();
}

#[test]
fn no_new_privs_is_implied_unless_the_child_keeps_cap_sys_admin() {
    if !abi_or_skip("no_new_privs_is_implied_...", 1) {
        return;
    }
    let l = || base(helper_path()).best_effort();
    let r = report_of(helper("report").landlock(l()));
    // A plain user's child gets no_new_privs; root's keeps CAP_SYS_ADMIN
    // and needs none.
    assert_eq!(r.field("nonewprivs"), if is_root() { "0" } else { "1" });
    if is_root() {
        let any = || base(common::helper_path_for_any_user()).best_effort();
        let r = report_of(
            helper_for_any_user("report")
                .uid(65534)
                .gid(65534)
                .landlock(any()),
        );
        assert_eq!(r.field("nonewprivs"), "1", "root's child as uid 65534");
        let r = report_of(helper("report").clear_caps().landlock(l()));
        assert_eq!(r.field("nonewprivs"), "1", "root's child without caps");
    }
    // uid 0 in a new user namespace keeps CAP_SYS_ADMIN there.
    if common::user_namespaces_allowed() {
        let r = report_of(helper("report").map_root().landlock(l()));
        assert_eq!(r.field("nonewprivs"), "0", "map_root");
    }
}

/// The landlock ruleset fds this process has open.
fn ruleset_fds() -> Vec<i32> {
    let mut fds = Vec::new();
    for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Ok(n) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if std::fs::read_link(e.path())
            .is_ok_and(|t| t.to_string_lossy().contains("landlock-ruleset"))
        {
            fds.push(n);
        }
    }
    fds
}

/// An fd of /dev/null at `at` or above.
fn null_at_or_above(at: i32) -> OwnedFd {
    let f = std::fs::File::open("/dev/null").unwrap();
    rustix::io::fcntl_dupfd_cloexec(&f, at).unwrap()
}

#[test]
fn the_ruleset_survives_fds_mapped_onto_its_number_with_every_close_method() {
    if !abi_or_skip("the_ruleset_survives_fds_mapped_...", 3) {
        return;
    }
    let t = Tree::new("ll-fds");
    let targets = 3..=100;
    let actions = format!(
        "fds,{}",
        attempts(&[("read", t.p("ro/f")), ("read", t.p("none/f"))])
    );
    type Close = fn(Command<Direct>) -> Command<Direct>;
    let methods: [(&str, Close); 4] = [
        ("default", |c| c),
        ("close_range", Command::close_fds_without_cloexec),
        ("proc walk", Command::close_fds_by_proc_walk),
        ("polling", Command::close_fds_by_polling),
    ];
    for (method, close) in methods {
        // Every number from 3 to 100 is a target; the sources sit above.
        let mut cmd = helper(&actions).landlock(t.landlock());
        for n in targets.clone() {
            cmd = cmd.map_fd(null_at_or_above(500), n);
        }
        let before = ruleset_fds();
        let prepared = close(cmd).stdout(Stdio::piped()).build().unwrap();
        let ours: Vec<i32> = ruleset_fds()
            .into_iter()
            .filter(|fd| !before.contains(fd))
            .collect();
        assert!(!ours.is_empty(), "no ruleset fd after build()");
        assert!(
            ours.iter().all(|fd| targets.contains(fd)),
            "the ruleset fd {ours:?} is not among the targets: the test proves nothing"
        );
        for paused in [false, true] {
            let child = if paused {
                prepared.spawn_paused().and_then(|p| p.resume())
            } else {
                prepared.spawn()
            }
            .unwrap_or_else(|e| panic!("{method} (paused: {paused}): {e}"));
            let r = Report::parse(&output_of(child));
            assert_eq!(result(&r, "read", &t.p("ro/f")), "ok", "{method}");
            assert_eq!(result(&r, "read", &t.p("none/f")), "EACCES", "{method}");
            // Exactly the planned fds: the ruleset did not reach the program.
            let want: Vec<i32> = (0..=2).chain(targets.clone()).collect();
            assert_eq!(r.fd_numbers(), want, "{method} (paused: {paused})");
            for n in targets.clone() {
                assert_eq!(r.fds[&n], "/dev/null", "{method}: fd {n}");
            }
        }
    }
}

#[test]
fn rules_follow_the_inodes_into_a_new_root() {
    if !abi_or_skip("rules_follow_the_inodes_into_a_new_root", 3) {
        return;
    }
    if !common::can_unshare(Namespaces::USER | Namespaces::MOUNT) {
        eprintln!("skipping rules_follow_the_inodes_into_a_new_root: no user namespaces here");
        return;
    }
    let t = Tree::new("ll-root");
    let helper_file = helper_path();
    // Paths in the child's view; the rules name the caller's.
    let expect = [
        ("read", "/usr/bin", "ok"),
        ("exec", "/usr/bin/true", "ok"),
        ("read", "/data/f", "ok"),
        ("write", "/data/f", "EACCES"),
        // The tree is readable, and so is none/ within it; but none/
        // bound alone at /other is beneath no rule in the child's view.
        ("read", "/tree/none/f", "ok"),
        ("read", "/other/f", "EACCES"),
        // A tmpfs the child mounts is beneath no rule, not even one on the
        // caller's /tmp, where it is mounted.
        ("write", "/tmp/new", "EACCES"),
        ("read", "/tmp", "EACCES"),
    ];
    let tries: Vec<(&str, PathBuf)> = expect
        .iter()
        .map(|(a, p, _)| (*a, PathBuf::from(p)))
        .collect();
    // No /proc in this root, so no report: the try lines alone.
    let actions = attempts(&tries);
    let make = || {
        helper(&actions)
            .unshare(Namespaces::USER | Namespaces::MOUNT)
            .map_root()
            .root_tmpfs()
            .mount(Mount::bind_ro("/usr", "/usr"))
            .mount(Mount::bind_ro("/lib", "/lib").optional())
            .mount(Mount::bind_ro("/lib64", "/lib64").optional())
            .mount(Mount::bind_ro(helper_file, helper_file))
            .mount(Mount::bind(t.p("ro"), "/data"))
            .mount(Mount::bind(t.p("none"), "/other"))
            .mount(Mount::bind_ro(t.p(""), "/tree"))
            .mount(Mount::tmpfs("/tmp"))
            .landlock(
                base(helper_file)
                    .allow_read(t.p("ro"))
                    .allow_read(t.p(""))
                    .allow_write("/tmp"),
            )
    };
    for r in both_paths(make) {
        for (action, path, want) in expect {
            assert_eq!(
                result(&r, action, Path::new(path)),
                want,
                "try-{action} {path}"
            );
        }
    }
}

#[test]
fn a_hook_that_drops_cap_sys_admin_fails_the_step() {
    if !abi_or_skip("a_hook_that_drops_cap_sys_admin_...", 1) {
        return;
    }
    if !common::root_or_skip(
        "a_hook_that_drops_cap_sys_admin_fails_the_step",
        "a child that keeps CAP_SYS_ADMIN, so no_new_privs is not implied",
    ) {
        return;
    }
    // SAFETY: the hook makes one raw system call.
    let cmd = unsafe {
        Command::new("/bin/true")
            .landlock(base(helper_path()).best_effort())
            .pre_exec(|| {
                rustix::thread::set_capabilities(
                    None,
                    rustix::thread::CapabilitySets {
                        effective: rustix::thread::CapabilitySet::empty(),
                        permitted: rustix::thread::CapabilitySet::empty(),
                        inheritable: rustix::thread::CapabilitySet::empty(),
                    },
                )
            })
    };
    match cmd.status().unwrap_err() {
        Error::Spawn { stage, errno, .. } => {
            assert_eq!((stage, errno), (Stage::Landlock, Errno::PERM))
        }
        other => panic!("{other}"),
    }
}

#[test]
fn build_names_what_it_refuses() {
    let t = Scratch::new("ll-build");
    let refused = |l: Landlock| Command::new("/bin/true").landlock(l).build().unwrap_err();
    let e = refused(Landlock::new());
    assert_eq!(e.build_kind(), Some(BuildErrorKind::Invalid), "{e}");
    assert!(e.to_string().contains("no rule"), "{e}");
    let e = refused(Landlock::new().allow_read("relative/dir"));
    assert_eq!(e.build_kind(), Some(BuildErrorKind::Invalid), "{e}");
    assert!(
        e.to_string()
            .contains(r#"Landlock::allow_read("relative/dir")"#),
        "{e}"
    );
    let e = refused(Landlock::new().allow_write("/a\0b"));
    assert_eq!(e.build_kind(), Some(BuildErrorKind::Nul), "{e}");
    let twice = Command::new("/bin/true")
        .landlock(Landlock::new().allow_read("/"))
        .landlock(Landlock::new().allow_read("/usr"))
        .build()
        .unwrap_err();
    assert_eq!(
        twice.build_kind(),
        Some(BuildErrorKind::Conflict),
        "{twice}"
    );
    // Paths are opened before the kernel is asked: the same errors on
    // every kernel.
    let missing = t.join("missing");
    let e = refused(Landlock::new().allow_exec(&missing).best_effort());
    assert_eq!(e.build_kind(), Some(BuildErrorKind::NotFound), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("Landlock::allow_exec({missing:?})")),
        "{e}"
    );
    std::fs::write(t.join("file"), "").unwrap();
    let under_a_file = t.join("file/x");
    let e = refused(Landlock::new().allow_read(&under_a_file).best_effort());
    assert_eq!(e.build_kind(), Some(BuildErrorKind::Invalid), "{e}");
    assert!(e.to_string().contains("cannot be opened"), "{e}");
    if kernel_abi().is_err() {
        return without_landlock_build_fails();
    }
    // Best effort on this kernel: the ABI is there to read.
    let p = Command::new("/bin/true")
        .landlock(Landlock::new().allow_read("/").best_effort())
        .build()
        .unwrap();
    assert_eq!(p.landlock_abi(), kernel_abi().ok());
    assert_eq!(
        Command::new("/bin/true").build().unwrap().landlock_abi(),
        None
    );
}

#[test]
fn a_daemon_is_confined_after_its_pidfile() {
    if !abi_or_skip("a_daemon_is_confined_after_its_pidfile", 3) {
        return;
    }
    // The daemon is re-parented to this process, which reaps it.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    let t = Tree::new("ll-daemon");
    // The pidfile is written before the step, where no rule allows it.
    let pidfile = t.p("none/daemon.pid");
    let d = helper(&attempts(&[
        ("write", t.p("rw/from-daemon")),
        ("write", t.p("none/from-daemon")),
    ]))
    .landlock(t.landlock())
    .daemonize()
    .pidfile(&pidfile)
    .run()
    .unwrap();
    let pid = rustix::process::Pid::from_raw(d.daemon).unwrap();
    let (_, status) = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())
        .unwrap()
        .unwrap();
    assert_eq!(status.exit_status(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        d.daemon.to_string()
    );
    assert!(t.p("rw/from-daemon").exists(), "allowed write");
    assert!(!t.p("none/from-daemon").exists(), "denied write happened");
}
