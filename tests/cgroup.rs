//! `.cgroup(dir)`: the child starts in a cgroup v2 directory, placed by the
//! kernel (`CLONE_INTO_CGROUP`) on this machine's kernel; the kernel's
//! refusals are `Stage::Cgroup`; `Cgroup` creates a cgroup with limits.
//! The path where the child places itself runs in `compat_cgroup_*.rs`.
//!
//! The tests of this binary run one at a time (they count this process's
//! fds and change the root cgroup's controllers).

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::cgroup::{self as cg, cgroup_or_skip, ScratchCgroup};
use common::helper;
use safespawn::{BuildErrorKind, Cgroup, Command, Errno, Error, Stage};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn the_child_starts_in_the_cgroup_on_every_path() {
    let _one = serial();
    let Some(mount) = cgroup_or_skip("the_child_starts_in_the_cgroup_on_every_path") else {
        return;
    };
    let target = ScratchCgroup::new(&mount, "placed");
    cg::check_placement(&target);
    // A nested target, and an O_PATH-able path with a trailing slash.
    let nested = ScratchCgroup::under(&mount, &target.path, "nested");
    cg::check_placement(&nested);
    let mut slash = nested.path.clone().into_os_string();
    slash.push("/");
    let r = common::report_of(helper("report").cgroup(slash));
    assert_eq!(cg::reported(&r), nested.shown());
}

#[test]
fn a_daemon_runs_in_the_cgroup() {
    let _one = serial();
    let Some(mount) = cgroup_or_skip("a_daemon_runs_in_the_cgroup") else {
        return;
    };
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    cg::check_daemon(&ScratchCgroup::new(&mount, "daemon"));
}

#[test]
fn a_new_cgroup_namespace_is_rooted_at_the_target() {
    let _one = serial();
    let Some(mount) = cgroup_or_skip("a_new_cgroup_namespace_is_rooted_at_the_target") else {
        return;
    };
    cg::check_namespace_root(&ScratchCgroup::new(&mount, "ns-root"));
}

#[test]
fn a_removed_cgroup_is_enoent_at_stage_cgroup_without_a_child() {
    let _one = serial();
    let Some(mount) = cgroup_or_skip("a_removed_cgroup_is_enoent_at_stage_cgroup_without_a_child")
    else {
        return;
    };
    // Under a seccomp profile refusing clone3 the child places itself,
    // and its write finds the cgroup gone: ENODEV.
    let errnos: &[Errno] = if cg::filtered() {
        &[Errno::NOENT, Errno::NODEV]
    } else {
        &[Errno::NOENT]
    };
    cg::check_removed(&mount, errnos);
}

/// A domain controller the cgroup v2 root offers (`hugetlb`, `memory`,
/// `io`, `rdma`, `misc`: the ones that obey the no-internal-process rule;
/// `cpu` and `pids` are threaded controllers, which do not).
fn a_domain_controller(mount: &std::path::Path) -> Option<String> {
    let offered = std::fs::read_to_string(mount.join("cgroup.controllers")).ok()?;
    ["hugetlb", "memory", "io", "rdma", "misc"]
        .into_iter()
        .find(|c| offered.split_whitespace().any(|o| o == *c))
        .map(str::to_owned)
}

/// The root cgroup's `cgroup.subtree_control` enables `controller` while
/// this lives; it is disabled again if it was not enabled before.
struct Enabled {
    file: std::path::PathBuf,
    controller: String,
    was: bool,
}

impl Enabled {
    fn new(mount: &std::path::Path, controller: &str) -> Enabled {
        let file = mount.join("cgroup.subtree_control");
        let was = std::fs::read_to_string(&file)
            .unwrap()
            .split_whitespace()
            .any(|c| c == controller);
        if !was {
            std::fs::write(&file, format!("+{controller}")).unwrap();
        }
        Enabled {
            file,
            controller: controller.to_owned(),
            was,
        }
    }
}

impl Drop for Enabled {
    fn drop(&mut self) {
        if !self.was {
            let _ = std::fs::write(&self.file, format!("-{}", self.controller));
        }
    }
}

#[test]
fn a_target_with_a_domain_controller_enabled_for_its_children_is_ebusy() {
    let _one = serial();
    let test = "a_target_with_a_domain_controller_enabled_for_its_children_is_ebusy";
    let Some(mount) = cgroup_or_skip(test) else {
        return;
    };
    let Some(controller) = a_domain_controller(&mount) else {
        eprintln!("skipping {test}: the cgroup v2 root offers no domain controller here");
        return;
    };
    let _enabled = Enabled::new(&mount, &controller);
    let busy = ScratchCgroup::new(&mount, "busy");
    std::fs::write(
        busy.path.join("cgroup.subtree_control"),
        format!("+{controller}"),
    )
    .unwrap();
    let prepared = helper("report").cgroup(&busy.path).build().unwrap();
    for result in [
        prepared.status().map(drop),
        prepared.spawn_paused().map(drop),
    ] {
        match result {
            Err(Error::Spawn { stage, errno, .. }) => {
                assert_eq!((stage, errno), (Stage::Cgroup, Errno::BUSY))
            }
            other => panic!("{other:?}"),
        }
    }
    // Its leaf takes processes.
    let leaf = ScratchCgroup::under(&mount, &busy.path, "leaf");
    let r = common::report_of(helper("report").cgroup(&leaf.path));
    assert_eq!(cg::reported(&r), leaf.shown());
    let z = common::zombie_children();
    assert!(z.is_empty(), "zombies: {z:?}");
}

#[test]
fn build_refuses_a_missing_directory_and_one_not_on_cgroup2() {
    let _one = serial();
    let e = Command::new("true")
        .cgroup("/no/such/cgroup")
        .build()
        .unwrap_err();
    assert_eq!(e.build_kind(), Some(BuildErrorKind::NotFound), "{e}");
    assert!(e.to_string().contains("cgroup(\"/no/such/cgroup\")"), "{e}");
    let e = Command::new("true").cgroup("/tmp").build().unwrap_err();
    assert_eq!(e.build_kind(), Some(BuildErrorKind::Invalid), "{e}");
    assert!(e.to_string().contains("not a cgroup v2 directory"), "{e}");
    let e = Command::new("true")
        .cgroup("/dev/null")
        .build()
        .unwrap_err();
    assert_eq!(e.build_kind(), Some(BuildErrorKind::Invalid), "{e}");
    assert!(e.to_string().contains("not a directory"), "{e}");
    let e = Command::new("true").cgroup("/a\0b").build().unwrap_err();
    assert_eq!(e.build_kind(), Some(BuildErrorKind::Nul), "{e}");
    // A cgroup v1 hierarchy, where there is one (and /proc to find it).
    let v1 = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let (before, after) = l.split_once(" - ")?;
            (after.split(' ').next()? == "cgroup")
                .then(|| before.split(' ').nth(4).unwrap().to_owned())
        });
    if let Some(v1) = v1 {
        let e = Command::new("true").cgroup(&v1).build().unwrap_err();
        assert!(e.to_string().contains("a cgroup v1 hierarchy"), "{v1}: {e}");
    }
}

#[test]
fn cgroup_create_makes_and_removes_the_directory() {
    let _one = serial();
    let Some(mount) = cgroup_or_skip("cgroup_create_makes_and_removes_the_directory") else {
        return;
    };
    let name = format!("safespawn-{}-create", std::process::id());
    let job = Cgroup::create(&mount, &name).unwrap();
    assert_eq!(job.path(), mount.join(&name));
    assert!(job.path().join("cgroup.procs").exists());
    // Twice is EEXIST.
    match Cgroup::create(&mount, &name) {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists, "{e}"),
        other => panic!("{other:?}"),
    }
    let r = common::report_of(helper("report").cgroup(job.path()));
    assert_eq!(cg::reported(&r), format!("/{name}"));
    let path = job.path().to_owned();
    drop(job);
    assert!(!path.exists(), "dropping removes the directory");
    // remove() reports EBUSY while a process is in it, and keeps the
    // directory for the next try.
    let mut job = Cgroup::create(&mount, &name).unwrap();
    let child = helper("sleep=30").cgroup(job.path()).spawn().unwrap();
    match job.remove() {
        Err(Error::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::ResourceBusy, "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(job.path(), path);
    child.abort().unwrap();
    job.remove().unwrap();
    assert!(!path.exists());
    assert_eq!(job.path(), std::path::Path::new(""));
    drop(job);
    // into_path keeps it.
    let kept = Cgroup::create(&mount, &name).unwrap().into_path();
    assert!(kept.exists());
    std::fs::remove_dir(&kept).unwrap();
    // Names.
    for bad in ["", ".", "..", "a/b"] {
        let e = Cgroup::create(&mount, bad).unwrap_err();
        assert_eq!(
            e.build_kind(),
            Some(BuildErrorKind::Invalid),
            "{bad:?}: {e}"
        );
    }
    let e = Cgroup::create("/tmp", "x").unwrap_err();
    assert_eq!(e.build_kind(), Some(BuildErrorKind::Invalid), "{e}");
    let e = Cgroup::create("/no/such", "x").unwrap_err();
    assert_eq!(e.build_kind(), Some(BuildErrorKind::NotFound), "{e}");
}

#[test]
fn a_limit_whose_controller_is_not_enabled_is_refused_naming_it() {
    let _one = serial();
    let Some(mount) =
        cgroup_or_skip("a_limit_whose_controller_is_not_enabled_is_refused_naming_it")
    else {
        return;
    };
    // A fresh parent enables nothing for its children.
    let parent = ScratchCgroup::new(&mount, "no-controllers");
    let name = "leaf";
    type Limit = fn(Cgroup) -> Result<Cgroup, Error>;
    let refusals: [(&str, Limit); 3] = [
        ("memory", |c| c.memory_max(1 << 30)),
        ("pids", |c| c.pids_max(10)),
        ("cpu", |c| {
            c.cpu_max(Duration::from_millis(10), Duration::from_millis(100))
        }),
    ];
    for (controller, limit) in refusals {
        let job = Cgroup::create(&parent.path, name).unwrap();
        let e = limit(job).unwrap_err();
        assert_eq!(e.build_kind(), Some(BuildErrorKind::Conflict), "{e}");
        let text = e.to_string();
        assert!(
            text.contains(&format!("the {controller} controller is not enabled"))
                && text.contains("cgroup.subtree_control"),
            "{text}"
        );
        // The refused cgroup was removed (dropped).
        assert!(!parent.path.join(name).exists(), "{controller}");
    }
    let job = Cgroup::create(&parent.path, name).unwrap();
    let e = job
        .cpu_max(Duration::from_micros(10), Duration::from_millis(100))
        .unwrap_err();
    assert_eq!(e.build_kind(), Some(BuildErrorKind::Invalid), "{e}");
}

#[test]
fn limits_are_written_where_their_controller_exists() {
    let _one = serial();
    let test = "limits_are_written_where_their_controller_exists";
    let Some(mount) = cgroup_or_skip(test) else {
        return;
    };
    let enabled = std::fs::read_to_string(mount.join("cgroup.subtree_control")).unwrap();
    let has = |c: &str| enabled.split_whitespace().any(|e| e == c);
    let name = format!("safespawn-{}-limits", std::process::id());
    let mut ran = 0;
    if has("memory") {
        let job = Cgroup::create(&mount, &name)
            .unwrap()
            .memory_max(64 << 20)
            .unwrap();
        let max = std::fs::read_to_string(job.path().join("memory.max")).unwrap();
        assert_eq!(max.trim(), (64u64 << 20).to_string());
        ran += 1;
    }
    if has("pids") {
        // One process may be in it; it cannot start another.
        let job = Cgroup::create(&mount, &name).unwrap().pids_max(1).unwrap();
        let max = std::fs::read_to_string(job.path().join("pids.max")).unwrap();
        assert_eq!(max.trim(), "1");
        let st = Command::new("sh")
            .args(["-c", "true & wait $! || exit 7"])
            .cgroup(job.path())
            .status()
            .unwrap();
        assert_ne!(st.code(), Some(0), "a second process in pids.max 1");
        ran += 1;
    }
    if has("cpu") {
        let job = Cgroup::create(&mount, &name)
            .unwrap()
            .cpu_max(Duration::from_millis(20), Duration::from_millis(100))
            .unwrap();
        let max = std::fs::read_to_string(job.path().join("cpu.max")).unwrap();
        assert_eq!(max.trim(), "20000 100000");
        ran += 1;
    }
    if ran < 3 {
        eprintln!(
            "{test}: {} of 3 limits tested: the cgroup v2 root enables only {:?} here",
            ran,
            enabled.trim()
        );
    }
}

#[test]
fn an_invalid_domain_is_eopnotsupp() {
    let _one = serial();
    let Some(mount) = cgroup_or_skip("an_invalid_domain_is_eopnotsupp") else {
        return;
    };
    cg::check_invalid_domain(&mount);
}
