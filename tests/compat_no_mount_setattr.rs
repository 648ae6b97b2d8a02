//! Mounts on a system without `mount_setattr(2)` (before Linux 5.12, or a
//! seccomp profile that refuses it; `safespawn::__compat::NO_MOUNT_SETATTR`):
//! a `bind_ro` is a recursive bind made read-only by `MS_REMOUNT | MS_BIND
//! | MS_RDONLY` mount by mount (the bind and each submount `build()` finds
//! below its source), and a `remount_ro` by one such remount. The mounts area of the
//! child contract runs on that path under the tripwire allocator, and the
//! view is as read-only and as locked as with `mount_setattr`. Alone in its
//! binary: the flag is process-wide.

mod common;

use common::maximal::{self, run_entry, PATHS};
use common::tripwire::ParentOnly;
use common::{helper, is_root, Report, Scratch};
use safespawn::{Command, Direct, Error, Mount, Namespaces, Stdio};

#[global_allocator]
static GLOBAL: ParentOnly = ParentOnly;

fn setup() {
    safespawn::__force_compat(safespawn::__compat::NO_MOUNT_SETATTR);
}

/// Whether a map_root sandbox can run here; says why not.
fn can_or_skip(test: &str) -> bool {
    let ok = maximal::map_root_sandboxes_work();
    if !ok {
        eprintln!("skipping {test}: no /proc, or user, mount and pid namespaces refused here");
    }
    ok
}

/// The sandbox of the maximal entries running the helper with `actions`.
fn sandbox(actions: &str) -> Command<Direct> {
    maximal::with_system_binds(
        helper(actions)
            .unshare(Namespaces::USER | Namespaces::MOUNT | Namespaces::PID)
            .map_root()
            .root_tmpfs(),
    )
    .mount(Mount::proc("/proc"))
}

fn report(cmd: Command<Direct>) -> Result<Report, Error> {
    let child = cmd.stdout(Stdio::piped()).build().unwrap().spawn()?;
    Ok(Report::parse(&common::output_of(child)))
}

#[test]
fn the_mount_steps_run_without_allocating_on_the_remount_path() {
    setup();
    if !can_or_skip("the_mount_steps_run_without_allocating_...") {
        return;
    }
    for path in PATHS {
        for m in maximal::mount_commands() {
            run_entry(m, path);
        }
    }
}

#[test]
fn read_only_binds_and_remounts_are_read_only_and_locked() {
    setup();
    if !can_or_skip("read_only_binds_and_remounts_...") {
        return;
    }
    let dir = Scratch::new("no-setattr-ro");
    let r = report(
        sandbox(
            "probe-write=/data/f,probe-remount-rw=/data,probe-write=/data/f,probe-mkdir=/new,\
             probe-remount-rw=/,probe-write=/tmp/f,mounts",
        )
        .mount(Mount::bind_ro(&*dir, "/data"))
        .mount(Mount::tmpfs("/tmp"))
        .mount(Mount::remount_ro("/")),
    )
    .unwrap();
    let results = |action: &str, path: &str| -> Vec<String> {
        r.probes
            .iter()
            .filter(|(a, p, _)| a == action && p == path.as_bytes())
            .map(|(_, _, res)| res.clone())
            .collect()
    };
    assert_eq!(results("probe-write", "/data/f"), ["EROFS", "EROFS"]);
    assert_eq!(r.probe("probe-remount-rw", "/data"), "EPERM");
    assert_eq!(r.probe("probe-mkdir", "/new"), "EROFS");
    assert_eq!(r.probe("probe-remount-rw", "/"), "EPERM");
    assert_eq!(r.probe("probe-write", "/tmp/f"), "ok");
    assert!(r.mount_at("/data").unwrap().has("ro"));
    assert!(r.mount_at("/").unwrap().has("ro"));
    assert!(r.mount_at("/usr").unwrap().has("ro"));
    assert!(std::fs::read_dir(&*dir).unwrap().next().is_none());
}

/// Without `mount_setattr` a read-only bind is still recursive: the
/// mounts below its source come along, each remounted read-only by
/// itself (found at `build()` in the calling thread's mount table), in a
/// user namespace as for root's own child.
#[test]
fn a_source_with_submounts_is_carried_read_only() {
    setup();
    if !can_or_skip("a_source_with_submounts_is_carried_read_only") {
        return;
    }
    if !is_root() {
        // /dev's submounts (/dev/shm, /dev/pts) do, where /dev has any.
        let shm = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some("/dev/shm"));
        if !shm {
            eprintln!("skipping the submount part: not root, and no /dev/shm mount here");
            return;
        }
        let r = report(
            sandbox("probe-write=/hostdev/shm/f,mounts").mount(Mount::bind_ro("/dev", "/hostdev")),
        )
        .unwrap();
        assert!(
            r.mount_at("/hostdev/shm").unwrap().has("ro"),
            "{:?}",
            r.mounts
        );
        assert_eq!(r.probe("probe-write", "/hostdev/shm/f"), "EROFS");
        return;
    }
    let dir = Scratch::new("no-setattr-sub");
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: NEWNS (with the FS it implies) is this thread's own
            // business; no other thread looks at its root or mounts.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }.unwrap();
            use rustix::mount::MountPropagationFlags as P;
            rustix::mount::mount_change(c"/", P::PRIVATE | P::REC).unwrap();
            rustix::mount::mount(
                c"tmpfs",
                &sub,
                c"tmpfs",
                rustix::mount::MountFlags::empty(),
                c"mode=0777",
            )
            .unwrap();
            std::fs::write(sub.join("inner"), b"inner").unwrap();
            let probes = "probe-read=/data/sub/inner,probe-write=/data/sub/f,mounts";
            // In a user namespace (map_root), and root's own child without one.
            for r in [
                report(sandbox(probes).mount(Mount::bind_ro(&*dir, "/data"))).unwrap(),
                report(
                    maximal::with_system_binds(
                        helper(probes)
                            .unshare(Namespaces::MOUNT | Namespaces::PID)
                            .root_tmpfs(),
                    )
                    .mount(Mount::proc("/proc"))
                    .mount(Mount::bind_ro(&*dir, "/data")),
                )
                .unwrap(),
            ] {
                assert!(r.mount_at("/data").unwrap().has("ro"), "{:?}", r.mounts);
                assert!(r.mount_at("/data/sub").unwrap().has("ro"), "{:?}", r.mounts);
                assert!(r.probe("probe-read", "/data/sub/inner").starts_with("ok"));
                assert_eq!(r.probe("probe-write", "/data/sub/f"), "EROFS");
            }
        })
        .join()
        .unwrap()
    });
    assert!(!sub.join("inner").exists());
}
