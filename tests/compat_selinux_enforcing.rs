//! `selinux_exec_label` where SELinux enforces
//! (`safespawn::__compat::SELINUX_ENFORCING`, as a system whose
//! `/sys/fs/selinux/enforce` reads `1`): a refused label fails the spawn at
//! `Stage::Label` with the kernel's own answer to the write (which the test
//! asks the kernel for itself, from a thread of its own), also for a child
//! whose view has no `/proc`. Alone in its binary: the flag is
//! process-wide.

mod common;

use std::io::Write;
use std::path::PathBuf;

use safespawn::{Command, Errno, Error, Mount, Namespaces, Stage};

const LABEL: &str = "system_u:system_r:safespawn_test_t:s0";

/// The kernel's answer to writing `text` to this thread's exec attribute,
/// from a thread that ends right after.
fn kernel_answer(text: &[u8]) -> Result<(), Errno> {
    let text = text.to_vec();
    std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open("/proc/thread-self/attr/exec")
            .map_err(|e| Errno::from_io_error(&e).unwrap())?;
        f.write(&text)
            .map(drop)
            .map_err(|e| Errno::from_io_error(&e).unwrap())
    })
    .join()
    .unwrap()
}

#[test]
fn where_selinux_enforces_a_refused_label_fails_at_stage_label() {
    safespawn::__force_compat(safespawn::__compat::SELINUX_ENFORCING);
    let mut with_nul = LABEL.as_bytes().to_vec();
    with_nul.push(0);
    let Err(want) = kernel_answer(&with_nul) else {
        eprintln!("skipping: this kernel accepts the test label");
        return;
    };
    let attr = Some(PathBuf::from("/proc/thread-self/attr/exec"));
    let fails = |cmd: Command| match cmd.status() {
        Err(Error::Spawn {
            stage, errno, path, ..
        }) => assert_eq!((stage, errno, path), (Stage::Label, want, attr.clone())),
        other => panic!("expected a label failure, got {other:?}"),
    };
    fails(Command::new("true").selinux_exec_label(LABEL));
    // On the fork path (a hook) too.
    // SAFETY: the hook makes no call.
    fails(unsafe {
        Command::new("true")
            .selinux_exec_label(LABEL)
            .pre_exec(|| Ok(()))
    });
    // In a view without /proc, in a new pid namespace: written through the
    // plan's /proc fd (a write that missed would answer ENOENT).
    if common::user_namespaces_allowed() {
        fails(
            Command::new("/nothing/here")
                .unshare(Namespaces::USER | Namespaces::MOUNT | Namespaces::PID)
                .map_root()
                .root_tmpfs()
                .mount(Mount::tmpfs("/tmp"))
                .selinux_exec_label(LABEL),
        );
    }
    // Without a label nothing changes.
    assert!(Command::new("true").status().unwrap().success());
}
