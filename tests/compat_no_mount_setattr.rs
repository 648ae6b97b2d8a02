//! Mounts on a system without `mount_setattr(2)` (before Linux 5.12, or a
//! seccomp profile that refuses it; `safespawn::__compat::NO_MOUNT_SETATTR`):
//! a `bind_ro` is a bind without `MS_REC` made read-only by `MS_REMOUNT |
//! MS_BIND | MS_RDONLY`, and so is a `remount_ro`. The mounts area of the
//! child contract runs on that path under the tripwire allocator, and the
//! view is as read-only and as locked as with `mount_setattr`. Alone in its
//! binary: the flag is process-wide.

mod common;

use std::path::Path;

use common::maximal::{self, run_entry, PATHS};
use common::tripwire::ParentOnly;
use common::{helper, is_root, Report, Scratch};
use safespawn::{Command, Direct, Errno, Error, Mount, Namespaces, Stage, Stdio};

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
            "try-write=/data/f,try-remount-rw=/data,try-write=/data/f,try-mkdir=/new,\
             try-remount-rw=/,try-write=/tmp/f,mounts",
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
    assert_eq!(results("try-write", "/data/f"), ["EROFS", "EROFS"]);
    assert_eq!(r.probe("try-remount-rw", "/data"), "EPERM");
    assert_eq!(r.probe("try-mkdir", "/new"), "EROFS");
    assert_eq!(r.probe("try-remount-rw", "/"), "EPERM");
    assert_eq!(r.probe("try-write", "/tmp/f"), "ok");
    assert!(r.mount_at("/data").unwrap().has("ro"));
    assert!(r.mount_at("/").unwrap().has("ro"));
    assert!(r.mount_at("/usr").unwrap().has("ro"));
    assert!(std::fs::read_dir(&*dir).unwrap().next().is_none());
}

/// Without MS_REC a bind of a source with a mount below it would show
/// what that mount covers: in a user namespace, where the mount is
/// locked, the kernel refuses it (EINVAL); a root caller without a user
/// namespace gets the bind without the submount.
#[test]
fn a_source_with_submounts_is_refused_in_a_user_namespace_and_not_carried_without() {
    setup();
    if !can_or_skip("a_source_with_submounts_...") {
        return;
    }
    if !is_root() {
        // /dev's submounts (/dev/shm, /dev/pts) do, where /dev has any.
        let has_submount = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4).is_some_and(|p| p.starts_with("/dev/")));
        if !has_submount {
            eprintln!("skipping the submount part: not root, and /dev has no submount here");
            return;
        }
        match report(sandbox("mounts").mount(Mount::bind_ro("/dev", "/hostdev"))) {
            Err(Error::Spawn {
                stage, errno, path, ..
            }) => {
                assert_eq!((stage, errno), (Stage::Mount, Errno::INVAL));
                assert_eq!(path.as_deref(), Some(Path::new("/hostdev")));
            }
            other => panic!("a non-recursive bind of /dev: {other:?}"),
        }
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
            match report(sandbox("mounts").mount(Mount::bind_ro(&*dir, "/data"))) {
                Err(Error::Spawn {
                    stage, errno, path, ..
                }) => {
                    assert_eq!((stage, errno), (Stage::Mount, Errno::INVAL));
                    assert_eq!(path.as_deref(), Some(Path::new("/data")));
                }
                other => panic!("a non-recursive bind in a user namespace: {other:?}"),
            }
            // Root's own child, without a user namespace: the submount is
            // not carried, and the directory below it is read-only.
            let r = report(
                maximal::with_system_binds(
                    helper("try-read=/data/sub/inner,try-write=/data/sub/f,mounts")
                        .unshare(Namespaces::MOUNT | Namespaces::PID)
                        .root_tmpfs(),
                )
                .mount(Mount::proc("/proc"))
                .mount(Mount::bind_ro(&*dir, "/data")),
            )
            .unwrap();
            assert!(r.mount_at("/data/sub").is_none(), "{:?}", r.mounts);
            assert!(r.mount_at("/data").unwrap().has("ro"));
            assert_eq!(r.probe("try-read", "/data/sub/inner"), "ENOENT");
            assert_eq!(r.probe("try-write", "/data/sub/f"), "EROFS");
        })
        .join()
        .unwrap()
    });
    assert!(!sub.join("inner").exists());
}
