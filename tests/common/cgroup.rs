//! cgroup v2 test helpers: where cgroup v2 is mounted, scratch cgroups,
//! and the placement checks that `tests/cgroup.rs` and the
//! `compat_cgroup_*` binaries (which run them with the child placing
//! itself) share.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use safespawn::{Command, Direct, Errno, Error, Namespaces, Stage, Stdio};

use super::{helper, output_of, report_of, zombie_children, Report};

/// The mount point of the cgroup v2 filesystem in this process's view
/// (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on a hybrid system),
/// from `/proc/self/mountinfo`.
pub fn cgroup2_mount() -> Option<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    table.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        (after.split(' ').next()? == "cgroup2")
            .then(|| PathBuf::from(before.split(' ').nth(4).unwrap_or("")))
    })
}

/// The cgroup v2 mount when `test` can run here (root, to create cgroups;
/// a cgroup v2 mount); says on stderr why not otherwise.
pub fn cgroup_or_skip(test: &str) -> Option<PathBuf> {
    if !super::is_root() {
        eprintln!("skipping {test}: creating cgroups needs root");
        return None;
    }
    let mount = cgroup2_mount();
    if mount.is_none() {
        eprintln!("skipping {test}: no cgroup v2 filesystem is mounted here");
    }
    mount
}

/// A fresh cgroup under the cgroup v2 mount, emptied (`cgroup.kill`, or
/// SIGKILL to each process) and removed on drop.
pub struct ScratchCgroup {
    pub mount: PathBuf,
    pub path: PathBuf,
}

impl ScratchCgroup {
    pub fn new(mount: &Path, name: &str) -> ScratchCgroup {
        ScratchCgroup::under(mount, mount, name)
    }

    /// A cgroup under `parent` (itself under `mount`).
    pub fn under(mount: &Path, parent: &Path, name: &str) -> ScratchCgroup {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = parent.join(format!("safespawn-{}-{name}-{n}", std::process::id()));
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {path:?}: {e}"));
        ScratchCgroup {
            mount: mount.to_owned(),
            path,
        }
    }

    /// The path `/proc/PID/cgroup` shows for a process in this cgroup
    /// (relative to the mount: this process's cgroup namespace root).
    pub fn shown(&self) -> String {
        format!(
            "/{}",
            self.path.strip_prefix(&self.mount).unwrap().display()
        )
    }

    /// The pids in the cgroup.
    pub fn procs(&self) -> Vec<i32> {
        std::fs::read_to_string(self.path.join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for ScratchCgroup {
    fn drop(&mut self) {
        empty_and_remove(&self.path);
    }
}

/// Kills whatever is left in `dir` (and below), then removes it.
pub fn empty_and_remove(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                empty_and_remove(&e.path());
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < deadline {
        if std::fs::write(dir.join("cgroup.kill"), "1").is_err() {
            for pid in std::fs::read_to_string(dir.join("cgroup.procs"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok())
            {
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The cgroup v2 path of process `pid` (the `0::` line of its
/// `/proc/PID/cgroup`).
pub fn cgroup_of(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
        .unwrap_or_default()
}

/// The cgroup the helper's report names.
pub fn reported(r: &Report) -> String {
    String::from_utf8(super::unesc(r.field("cgroup"))).unwrap()
}

/// The helper's report, on the clone path and on the fork path (a hook).
fn reports_both_paths(make: impl Fn() -> Command<Direct>) -> [Report; 2] {
    let clone = report_of(make());
    // SAFETY: the hook makes no call at all.
    let forked = report_of(unsafe { make().pre_exec(|| Ok(())) });
    [clone, forked]
}

/// The child runs in `cg` on every path: the clone path, the fork path of
/// hooks, and a paused child, which is there before it execs (read from
/// here) and runs there once resumed.
pub fn check_placement(cg: &ScratchCgroup) {
    let ours = cgroup_of(std::process::id() as i32);
    assert_ne!(ours, cg.shown(), "this process is in the target already");
    for r in reports_both_paths(|| helper("report").cgroup(&cg.path)) {
        assert_eq!(reported(&r), cg.shown());
    }
    let paused = helper("report")
        .cgroup(&cg.path)
        .stdout(Stdio::piped())
        .spawn_paused()
        .unwrap();
    let pid = paused.pid();
    assert_eq!(cgroup_of(pid), cg.shown(), "the paused child, before exec");
    assert!(cg.procs().contains(&pid), "{:?} has no {pid}", cg.procs());
    let r = Report::parse(&output_of(paused.resume().unwrap()));
    assert_eq!(reported(&r), cg.shown());
    // This process stayed where it was.
    assert_eq!(cgroup_of(std::process::id() as i32), ours);
}

/// A daemon runs in `cg`: its intermediate was placed there and the daemon
/// inherits it, on the clone path and on the fork path. This process must
/// be a child subreaper (the daemon is re-parented to it, then killed and
/// reaped here).
pub fn check_daemon(cg: &ScratchCgroup) {
    use rustix::process::{Pid, Signal, WaitOptions};
    let dir = super::Scratch::new("cgroup-daemon");
    for forked in [false, true] {
        let pidfile = dir.join(format!("d-{forked}.pid"));
        let mut cmd = helper("sleep=30")
            .cgroup(&cg.path)
            .daemonize()
            .pidfile(&pidfile);
        if forked {
            // SAFETY: the hook makes no call at all.
            cmd = unsafe { cmd.pre_exec(|| Ok(())) };
        }
        let d = cmd.run().unwrap_or_else(|e| panic!("forked {forked}: {e}"));
        let seen = cgroup_of(d.daemon);
        let pid = Pid::from_raw(d.daemon).unwrap();
        rustix::process::kill_process(pid, Signal::KILL).unwrap();
        let _ = rustix::process::waitpid(Some(pid), WaitOptions::empty());
        assert_eq!(seen, cg.shown(), "the daemon (forked {forked})");
    }
}

/// With `unshare(CGROUP)` the new cgroup namespace's root is `cg`: the
/// child sees itself at `/`, and the namespace is its own.
pub fn check_namespace_root(cg: &ScratchCgroup) {
    let own_ns = std::fs::read_link("/proc/self/ns/cgroup").unwrap();
    for r in reports_both_paths(|| {
        helper("report")
            .cgroup(&cg.path)
            .unshare(Namespaces::CGROUP)
    }) {
        assert_eq!(reported(&r), "/", "the namespace's root is the target");
        assert_ne!(r.field("ns_cgroup"), own_ns.to_string_lossy());
    }
    // Where the system allows user namespaces, in a new user namespace too.
    if super::can_unshare(Namespaces::USER | Namespaces::CGROUP) {
        let r = report_of(
            super::helper_for_any_user("report")
                .cgroup(&cg.path)
                .map_root()
                .unshare(Namespaces::CGROUP),
        );
        assert_eq!(reported(&r), "/");
        assert_eq!(r.field("uid"), "0 0 0 0");
    }
    // The target, seen from outside, holds the child: it was not rooted
    // at our cgroup and then moved.
    let paused = helper("report")
        .cgroup(&cg.path)
        .unshare(Namespaces::CGROUP)
        .stdout(Stdio::piped())
        .spawn_paused()
        .unwrap();
    assert_eq!(cgroup_of(paused.pid()), cg.shown());
    let r = Report::parse(&output_of(paused.resume().unwrap()));
    assert_eq!(reported(&r), "/");
}

/// The open fds of this process.
pub fn open_fds() -> Vec<i32> {
    let mut v: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
        .collect();
    v.sort_unstable();
    v
}

/// Whether this process runs under a seccomp filter (a container profile,
/// `tools/compat-run`), which may refuse `clone3` on any kernel.
pub fn filtered() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Seccomp:") && l.trim_end() != "Seccomp:\t0")
        })
        .unwrap_or(false)
}

/// A cgroup removed after `build()`: every spawn path fails at
/// `Stage::Cgroup` with one of `errnos` (`ENOENT` from `CLONE_INTO_CGROUP`,
/// `ENODEV` from the child's write), the same every time, naming the
/// directory, and leaves no zombie and no fd; the `Prepared` leaves none
/// once dropped either.
pub fn check_removed(mount: &Path, errnos: &[Errno]) {
    let cg = ScratchCgroup::new(mount, "removed");
    let before = open_fds();
    let prepared = helper("report").cgroup(&cg.path).build().unwrap();
    let daemon = helper("report")
        .cgroup(&cg.path)
        .daemonize()
        .build()
        .unwrap();
    std::fs::remove_dir(&cg.path).unwrap();
    let seen = std::cell::Cell::new(None);
    let check = |what: &str, result: Result<(), Error>| match result {
        Err(Error::Spawn {
            stage,
            errno: e,
            path,
            ..
        }) => {
            assert_eq!(stage, Stage::Cgroup, "{what}");
            assert!(errnos.contains(&e), "{what}: {e:?}, not one of {errnos:?}");
            assert_eq!(seen.replace(Some(e)).unwrap_or(e), e, "{what}");
            assert_eq!(path.as_deref(), Some(cg.path.as_path()), "{what}");
        }
        other => panic!("{what}: {other:?}"),
    };
    for _ in 0..3 {
        check("spawn", prepared.spawn().map(drop));
        check("status", prepared.status().map(drop));
        check("spawn_paused", prepared.spawn_paused().map(drop));
        check("daemon", daemon.run().map(drop));
    }
    let e = prepared.status().unwrap_err().to_string();
    assert!(
        e.contains("placing the child in its cgroup") && e.contains(&cg.path.display().to_string()),
        "{e}"
    );
    let z = zombie_children();
    assert!(z.is_empty(), "zombies: {z:?}");
    drop(prepared);
    drop(daemon);
    assert_eq!(open_fds(), before, "fds left after the failures");
}

/// A cgroup that cannot hold processes (an "invalid domain": a domain
/// child of a threaded root, made here by turning its sibling threaded) is
/// `EOPNOTSUPP` at `Stage::Cgroup`, on the clone path and the fork path.
pub fn check_invalid_domain(mount: &Path) {
    let root = ScratchCgroup::new(mount, "threaded-root");
    let threaded = ScratchCgroup::under(mount, &root.path, "threaded");
    std::fs::write(threaded.path.join("cgroup.type"), "threaded").unwrap();
    let invalid = ScratchCgroup::under(mount, &root.path, "invalid");
    let kind = std::fs::read_to_string(invalid.path.join("cgroup.type")).unwrap();
    assert_eq!(kind.trim(), "domain invalid");
    let prepared = helper("report").cgroup(&invalid.path).build().unwrap();
    for result in [
        prepared.status().map(drop),
        prepared.spawn_paused().map(drop),
    ] {
        match result {
            Err(Error::Spawn { stage, errno, .. }) => {
                assert_eq!((stage, errno), (Stage::Cgroup, Errno::OPNOTSUPP))
            }
            other => panic!("{other:?}"),
        }
    }
    drop(prepared);
    drop(invalid);
    drop(threaded);
}
