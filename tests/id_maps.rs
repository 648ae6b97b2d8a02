//! `uid_map` / `gid_map`: ranges the parent writes into the child's new
//! user namespace (the fork path), read back from the child's own
//! `/proc/self/{uid,gid}_map` and `/proc/self/status` through the test
//! helper, and from outside through `/proc/PID/status`.
//!
//! Ranges other than one's own id need root; the unprivileged cases run in
//! a thread that became uid and gid 65534. The tests take one lock: the
//! unprivileged one counts this process's fds and zombie children, which
//! other tests spawning beside it would change. Without `/proc` or user
//! namespaces the spawning tests skip with a message (they are listed in
//! tests/needs-proc.txt); the build errors run everywhere.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use common::{helper_for_any_user, output_of, report_of, zombie_children, Report};
use safespawn::{BuildErrorKind, Command, Direct, Errno, Error, Namespaces, Stage, Stdio};

/// One test at a time (see the module comment).
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether `test` can spawn into a new user namespace here; says why not.
fn userns_or_skip(test: &str) -> bool {
    if !Path::new("/proc/self/ns").exists() {
        eprintln!("skipping {test}: no /proc here");
        return false;
    }
    if !common::can_unshare(Namespaces::USER) {
        eprintln!("skipping {test}: no user namespace for this user here");
        return false;
    }
    true
}

/// Root, and a user namespace: for ranges that only a privileged writer
/// may map.
fn root_userns_or_skip(test: &str) -> bool {
    common::root_or_skip(test, "to map ranges other than its own id") && userns_or_skip(test)
}

/// The report of `make()`'s command, spawned directly and through a pause
/// (both take the fork path; the pause comes after the maps).
fn reports_both_ways(make: impl Fn() -> Command<Direct>) -> [Report; 2] {
    let direct = report_of(make());
    let paused = make().stdout(Stdio::piped()).spawn_paused().unwrap();
    let resumed = Report::parse(&output_of(paused.resume().unwrap()));
    [direct, resumed]
}

/// A field of `/proc/PID/status` (whitespace collapsed), read from here.
fn status_field(pid: i32, key: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// What `cat FILE` prints when started with `cmd`'s namespace options.
fn cat_inside(file: &str, cmd: impl Fn(Command<Direct>) -> Command<Direct>) -> String {
    let running = cmd(Command::new("cat").arg(file))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    output_of(running)
}

const NOBODY: u32 = 65534;
const FOUR_NOBODY: &str = "65534 65534 65534 65534";

#[test]
fn root_maps_a_range_and_the_child_sees_exactly_that_map() {
    let _serial = serial();
    if !root_userns_or_skip("root_maps_a_range_...") {
        return;
    }
    let ranges = || {
        helper_for_any_user("report")
            .unshare(Namespaces::USER)
            .uid_map(0, 100000, 65536)
            .gid_map(0, 100000, 65536)
    };
    for r in reports_both_ways(ranges) {
        assert_eq!(r.field("uid_map"), "0 100000 65536");
        assert_eq!(r.field("gid_map"), "0 100000 65536");
        // A map changes no credentials: root's own ids (0) are not in it,
        // so inside they are the overflow id.
        assert_eq!(r.field("uid"), FOUR_NOBODY);
        assert_eq!(r.field("gid"), FOUR_NOBODY);
        // Nothing of the gate (or the report pipe) reaches the program.
        assert_eq!(r.fd_numbers(), [0, 1, 2], "{:?}", r.fds);
    }
    // Switched to inside root: uid 0 inside, 100000 outside.
    for r in reports_both_ways(|| ranges().uid(0).gid(0)) {
        assert_eq!(r.field("uid_map"), "0 100000 65536");
        assert_eq!(r.field("uid"), "0 0 0 0");
        assert_eq!(r.field("gid"), "0 0 0 0");
        assert_eq!(r.groups(), Vec::<u32>::new());
    }
    let child = helper_for_any_user("sleep=20")
        .unshare(Namespaces::USER)
        .uid_map(0, 100000, 65536)
        .gid_map(0, 100000, 65536)
        .uid(0)
        .gid(0)
        .spawn()
        .unwrap();
    // spawn() returned after the exec: the credentials are the final ones.
    assert_eq!(
        status_field(child.pid(), "Uid"),
        "100000 100000 100000 100000"
    );
    assert_eq!(
        status_field(child.pid(), "Gid"),
        "100000 100000 100000 100000"
    );
    child.abort().unwrap();
}

/// The pitfall of writing `setgroups` "deny" unconditionally: a privileged
/// writer leaves it at "allow", so root inside can set groups (the
/// credentials step's `setgroups`, below, and the program's).
#[test]
fn a_privileged_writer_leaves_setgroups_allowed() {
    let _serial = serial();
    if !root_userns_or_skip("a_privileged_writer_leaves_setgroups_allowed") {
        return;
    }
    let maps = |c: Command<Direct>| {
        c.unshare(Namespaces::USER)
            .uid_map(0, 100000, 65536)
            .gid_map(0, 100000, 65536)
    };
    assert_eq!(cat_inside("/proc/self/setgroups", maps), "allow\n");
    let r = report_of(
        maps(helper_for_any_user("report"))
            .uid(0)
            .gid(0)
            .groups(&[10, 20]),
    );
    assert_eq!(r.groups(), [10, 20]);
}

#[test]
fn several_ranges_make_one_map_in_call_order() {
    let _serial = serial();
    if !root_userns_or_skip("several_ranges_make_one_map_in_call_order") {
        return;
    }
    let make = || {
        helper_for_any_user("report")
            .unshare(Namespaces::USER)
            .uid_map(0, 100000, 1000)
            .uid_map(5000, 300000, 1)
            .uid_map(1000, 200000, 10)
            .gid_map(0, 100000, 1000)
            .gid_map(1000, 400000, 10)
            .uid(1005)
            .gid(1001)
    };
    for r in reports_both_ways(make) {
        assert_eq!(
            r.field("uid_map"),
            "0 100000 1000,5000 300000 1,1000 200000 10"
        );
        assert_eq!(r.field("gid_map"), "0 100000 1000,1000 400000 10");
        assert_eq!(r.field("uid"), "1005 1005 1005 1005");
        assert_eq!(r.field("gid"), "1001 1001 1001 1001");
    }
    let child = make().stdout(Stdio::null()).spawn().unwrap();
    assert_eq!(
        status_field(child.pid(), "Uid"),
        "200005 200005 200005 200005"
    );
    assert_eq!(
        status_field(child.pid(), "Gid"),
        "400001 400001 400001 400001"
    );
    child.abort().unwrap();
}

/// `.uid` / `.gid` / `.groups` with a map: the credential step runs inside
/// the namespace, after the maps, where the child has every capability.
#[test]
fn credentials_are_set_inside_the_namespace() {
    let _serial = serial();
    if !root_userns_or_skip("credentials_are_set_inside_the_namespace") {
        return;
    }
    let make = || {
        helper_for_any_user("report")
            .unshare(Namespaces::USER | Namespaces::PID)
            .uid_map(0, 100000, 65536)
            .gid_map(0, 100000, 65536)
            .uid(1000)
            .gid(1000)
            .groups(&[1000, 2000])
    };
    for r in reports_both_ways(make) {
        assert_eq!(r.field("uid"), "1000 1000 1000 1000");
        assert_eq!(r.field("gid"), "1000 1000 1000 1000");
        assert_eq!(r.groups(), [1000, 2000]);
        assert_eq!(r.field("pid"), "1");
    }
    // An id outside every range cannot be taken: the kernel's EINVAL.
    match helper_for_any_user("report")
        .unshare(Namespaces::USER)
        .uid_map(0, 100000, 65536)
        .gid_map(0, 100000, 65536)
        .uid(70000)
        .status()
    {
        Err(Error::Spawn { stage, errno, .. }) => {
            assert_eq!((stage, errno), (Stage::Uid, Errno::INVAL))
        }
        other => panic!("uid 70000 outside the map: {other:?}"),
    }
}

/// One map without the other: the unmapped side is the overflow id.
#[test]
fn a_gid_map_without_a_uid_map_and_the_reverse() {
    let _serial = serial();
    if !root_userns_or_skip("a_gid_map_without_a_uid_map_and_the_reverse") {
        return;
    }
    let r = report_of(
        helper_for_any_user("report")
            .unshare(Namespaces::USER)
            .gid_map(0, 0, 1)
            .gid_map(1, 100000, 1000),
    );
    assert_eq!(r.field("uid_map"), "");
    assert_eq!(r.field("gid_map"), "0 0 1,1 100000 1000");
    assert_eq!(r.field("uid"), FOUR_NOBODY);
    assert_eq!(r.field("gid"), "0 0 0 0");
    let r = report_of(
        helper_for_any_user("report")
            .unshare(Namespaces::USER)
            .uid_map(0, 0, 1),
    );
    assert_eq!(r.field("uid_map"), "0 0 1");
    assert_eq!(r.field("gid_map"), "");
    assert_eq!(r.field("uid"), "0 0 0 0");
    assert_eq!(r.field("gid"), FOUR_NOBODY);
}

/// A daemon's intermediate is forked with the maps written; the daemon it
/// starts shares its user namespace.
#[test]
fn a_daemon_gets_the_maps() {
    let _serial = serial();
    if !userns_or_skip("a_daemon_gets_the_maps") {
        return;
    }
    let (uid, gid) = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    let d = helper_for_any_user("sleep=20")
        .unshare(Namespaces::USER)
        .uid_map(7, uid, 1)
        .gid_map(7, gid, 1)
        .daemonize()
        .run()
        .unwrap();
    let map = std::fs::read_to_string(format!("/proc/{}/uid_map", d.daemon)).unwrap();
    let pid = rustix::process::Pid::from_raw(d.daemon).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    let fields: Vec<&str> = map.split_whitespace().collect();
    assert_eq!(fields, ["7", &uid.to_string(), "1"], "{map:?}");
}

/// The fd numbers this process has open.
fn open_fds() -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    fds
}

/// The pid in a `/proc/<pid>/...` path.
fn pid_in(path: &Path) -> i32 {
    let mut parts = path.components().skip(2);
    let pid = parts.next().unwrap().as_os_str().to_str().unwrap();
    pid.parse().unwrap()
}

/// Spawns `cmd`, which must fail at the parent's map write with `errno` on
/// `file`; checks that the child is gone (killed and reaped, no zombie)
/// and that no fd was left behind.
#[track_caller]
fn refused_write(cmd: Command<Direct>, errno: Errno, file: &str) {
    let prepared = cmd.build().unwrap();
    let before = open_fds();
    let path: PathBuf = match prepared.spawn() {
        Err(Error::Spawn {
            stage,
            errno: e,
            path,
            ..
        }) => {
            assert_eq!((stage, e), (Stage::IdMap, errno));
            path.expect("the refused map file")
        }
        other => panic!("expected a refused {file} write, got {other:?}"),
    };
    assert_eq!(path.file_name().unwrap(), file, "{}", path.display());
    let pid = pid_in(&path);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "child {pid} still there (running or a zombie)"
    );
    let z = zombie_children();
    assert!(z.is_empty(), "zombies: {z:?}");
    assert_eq!(open_fds(), before, "fds left behind");
}

/// As uid and gid 65534: a foreign range is the kernel's EPERM at the
/// parent's write (and leaves nothing behind); one's own id, one line,
/// works, with `setgroups` denied as the kernel requires then.
#[test]
fn a_plain_user_maps_its_own_id_and_no_other() {
    let _serial = serial();
    if !common::root_or_skip(
        "a_plain_user_maps_its_own_id_and_no_other",
        "to become uid 65534",
    ) {
        return;
    }
    if !Path::new("/proc/self/ns").exists() {
        eprintln!("skipping a_plain_user_maps_its_own_id_and_no_other: no /proc here");
        return;
    }
    // Made while still root: the checkout may be unreachable for 65534.
    common::helper_path_for_any_user();
    std::thread::spawn(|| {
        rustix::thread::set_thread_groups(&[]).unwrap();
        rustix::thread::set_thread_gid(rustix::fs::Gid::from_raw(NOBODY)).unwrap();
        rustix::thread::set_thread_uid(rustix::fs::Uid::from_raw(NOBODY)).unwrap();
        // The uid change made the process non-dumpable: its /proc files,
        // and those of the child it forks, are root's, so the parent cannot
        // open the child's maps.
        if common::can_unshare(Namespaces::USER) {
            let own = helper_for_any_user("report")
                .unshare(Namespaces::USER)
                .uid_map(0, NOBODY, 1);
            refused_write(own, Errno::ACCESS, "uid_map");
        }
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable)
            .unwrap();
        if !userns_or_skip("a_plain_user_maps_its_own_id_and_no_other") {
            return;
        }
        let user = || helper_for_any_user("report").unshare(Namespaces::USER);
        refused_write(user().uid_map(0, 100000, 65536), Errno::PERM, "uid_map");
        // One line, but not its own uid.
        refused_write(user().uid_map(0, 0, 1), Errno::PERM, "uid_map");
        // Its own uid, but two ranges.
        refused_write(
            user().uid_map(0, NOBODY, 1).uid_map(1, 100000, 1),
            Errno::PERM,
            "uid_map",
        );
        refused_write(
            user().uid_map(0, NOBODY, 1).gid_map(0, 100000, 1),
            Errno::PERM,
            "gid_map",
        );

        for r in reports_both_ways(|| user().uid_map(0, NOBODY, 1).gid_map(0, NOBODY, 1)) {
            assert_eq!(r.field("uid_map"), "0 65534 1");
            assert_eq!(r.field("gid_map"), "0 65534 1");
            assert_eq!(r.field("uid"), "0 0 0 0");
            assert_eq!(r.field("gid"), "0 0 0 0");
        }
        let r = report_of(user().uid_map(1000, NOBODY, 1).gid_map(1000, NOBODY, 1));
        assert_eq!(r.field("uid"), "1000 1000 1000 1000");
        assert_eq!(r.field("gid"), "1000 1000 1000 1000");
        let maps = |c: Command<Direct>| {
            c.unshare(Namespaces::USER)
                .uid_map(0, NOBODY, 1)
                .gid_map(0, NOBODY, 1)
        };
        assert_eq!(cat_inside("/proc/self/setgroups", maps), "deny\n");
        let z = zombie_children();
        assert!(z.is_empty(), "zombies: {z:?}");
    })
    .join()
    .unwrap();
}

fn build_error(cmd: Command<Direct>) -> (BuildErrorKind, String) {
    match cmd.build() {
        Err(e @ Error::Build { .. }) => (e.build_kind().unwrap(), e.to_string()),
        Err(other) => panic!("expected a build error, got {other}"),
        Ok(_) => panic!("expected a build error, but it built"),
    }
}

#[track_caller]
fn assert_build_error(cmd: Command<Direct>, kind: BuildErrorKind, mentions: &[&str]) {
    let (k, e) = build_error(cmd);
    assert_eq!(k, kind, "{e}");
    for m in mentions {
        assert!(e.contains(m), "{m:?} not in: {e}");
    }
}

fn user() -> Command<Direct> {
    Command::new("true").unshare(Namespaces::USER)
}

#[test]
fn prerequisites_and_conflicts_are_build_errors_naming_both_items() {
    use BuildErrorKind::Conflict;
    let t = || Command::new("true");
    assert_build_error(
        t().uid_map(0, 100000, 65536),
        Conflict,
        &["uid_map(0, 100000, 65536)", "unshare(USER)"],
    );
    assert_build_error(
        t().unshare(Namespaces::NET).gid_map(0, 100000, 65536),
        Conflict,
        &["gid_map(0, 100000, 65536)", "unshare(USER)"],
    );
    assert_build_error(
        t().map_root().uid_map(0, 100000, 65536),
        Conflict,
        &["uid_map(0, 100000, 65536)", "map_root"],
    );
    assert_build_error(
        user().map_root().gid_map(1, 100000, 5),
        Conflict,
        &["gid_map(1, 100000, 5)", "map_root"],
    );
    assert_build_error(
        user().uid_map(0, 100000, 65536).forbid_fork(),
        Conflict,
        &["uid_map(0, 100000, 65536)", "forbid_fork"],
    );
    // One map without the other is fine, on every mode.
    assert!(user().gid_map(0, 100000, 65536).build().is_ok());
    assert!(user().uid_map(0, 100000, 65536).build().is_ok());
    assert!(user()
        .uid_map(0, 100000, 1)
        .capture_stdout()
        .build()
        .is_ok());
    assert!(user().gid_map(0, 100000, 1).daemonize().build().is_ok());
}

#[test]
fn bad_ranges_are_build_errors_naming_the_range() {
    use BuildErrorKind::Invalid;
    assert_build_error(
        user().uid_map(0, 100000, 0),
        Invalid,
        &["uid_map(0, 100000, 0)", "count 0"],
    );
    assert_build_error(
        user().gid_map(5, 6, 0),
        Invalid,
        &["gid_map(5, 6, 0)", "count 0"],
    );
    // inside + count past u32::MAX (the kernel refuses a wrapping range).
    assert_build_error(
        user().uid_map(u32::MAX - 5, 100000, 10),
        Invalid,
        &["uid_map(4294967290, 100000, 10)", "inside"],
    );
    assert_build_error(
        user().gid_map(0, u32::MAX - 5, 10),
        Invalid,
        &["gid_map(0, 4294967290, 10)", "outside"],
    );
    // Up to u32::MAX exclusive is fine: the last id is u32::MAX - 1.
    assert!(user()
        .uid_map(u32::MAX - 10, u32::MAX - 10, 10)
        .build()
        .is_ok());
    assert_build_error(
        user().uid_map(u32::MAX - 10, 0, 11),
        Invalid,
        &["uid_map(4294967285, 0, 11)"],
    );
}

#[test]
fn overlapping_ranges_are_build_errors_naming_both() {
    use BuildErrorKind::Invalid;
    assert_build_error(
        user().uid_map(0, 100000, 10).uid_map(9, 200000, 1),
        Invalid,
        &["uid_map(9, 200000, 1)", "uid_map(0, 100000, 10)", "inside"],
    );
    assert_build_error(
        user()
            .gid_map(0, 100000, 10)
            .gid_map(50, 300000, 5)
            .gid_map(100, 100009, 5),
        Invalid,
        &[
            "gid_map(100, 100009, 5)",
            "gid_map(0, 100000, 10)",
            "outside",
        ],
    );
    // The second range wholly inside the first.
    assert_build_error(
        user().uid_map(0, 100000, 65536).uid_map(10, 10, 1),
        Invalid,
        &["uid_map(10, 10, 1)", "uid_map(0, 100000, 65536)"],
    );
    // Adjacent ranges do not overlap; neither do a uid and a gid range.
    assert!(user()
        .uid_map(0, 100000, 10)
        .uid_map(10, 100010, 10)
        .gid_map(0, 100000, 10)
        .build()
        .is_ok());
}

#[test]
fn too_many_ranges_or_too_much_text_is_too_long() {
    let many = |n: u32| (0..n).fold(user(), |c, i| c.uid_map(i, i, 1));
    assert!(many(340).build().is_ok());
    assert_build_error(
        many(341),
        BuildErrorKind::TooLong,
        &["uid_map (341 ranges)", "340"],
    );
    // Fewer ranges, but long lines: the kernel takes a map in one write of
    // less than a page.
    let long =
        |c: Command<Direct>, i: u32| c.gid_map(1_000_000_000 + i * 10, 3_000_000_000 + i * 10, 10);
    let cmd = (0..200).fold(user(), long);
    let text_len = 200 * "1000000000 3000000000 10\n".len();
    let page = rustix::param::page_size();
    if text_len >= page {
        assert_build_error(
            cmd,
            BuildErrorKind::TooLong,
            &["gid_map (200 ranges)", &format!("{page} bytes")],
        );
    } else {
        assert!(cmd.build().is_ok());
    }
}

/// Without `/proc` (the no-proc profile) the parent cannot open the
/// child's map files: `ENOENT` at the write, the child killed at its gate.
/// Elsewhere there is nothing to check.
#[test]
fn without_proc_a_range_is_enoent_at_the_parents_write() {
    let _serial = serial();
    if Path::new("/proc/self").exists() {
        eprintln!("skipping without_proc_a_range_is_enoent_...: /proc is mounted");
        return;
    }
    if !common::can_unshare(Namespaces::USER) {
        eprintln!("skipping without_proc_a_range_is_enoent_...: no user namespace here");
        return;
    }
    let uid = rustix::process::geteuid().as_raw();
    match user().uid_map(0, uid, 1).status() {
        Err(Error::Spawn {
            stage, errno, path, ..
        }) => {
            assert_eq!((stage, errno), (Stage::IdMap, Errno::NOENT));
            let path = path.expect("the map file");
            assert_eq!(path.file_name().unwrap(), "uid_map", "{}", path.display());
        }
        other => panic!("a range without /proc: {other:?}"),
    }
}
