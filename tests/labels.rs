//! Security labels: `selinux_exec_label` and `apparmor_profile`. What the
//! child writes is checked against the kernel itself: the test makes the
//! same write from a thread of its own and the child must get the same
//! answer (a write through a wrong or closed fd would answer `EBADF` or
//! `ENOENT` instead). Where SELinux does not enforce a refused label is
//! ignored (libvirt's semantics); the enforcing branch is
//! `tests/compat_selinux_enforcing.rs`.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{helper, report_of};
use safespawn::{BuildErrorKind, Command, Direct, Errno, Error, Mount, Namespaces, Stage};

/// What the kernel answers to writing `text` to this thread's
/// `/proc/thread-self/attr/<attr>`, asked from a thread that ends right
/// after (the exec attribute is per thread: a write that succeeds changes
/// nothing for the rest of the test).
pub fn kernel_answer(attr: &str, text: &[u8]) -> Result<(), Errno> {
    let path = format!("/proc/thread-self/attr/{attr}");
    let text = text.to_vec();
    std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|e| Errno::from_io_error(&e).unwrap())?;
        f.write(&text)
            .map(drop)
            .map_err(|e| Errno::from_io_error(&e).unwrap())
    })
    .join()
    .unwrap()
}

/// What the child's AppArmor step will meet: the attribute it writes and
/// the kernel's answer there.
fn apparmor_answer(name: &str) -> (PathBuf, Result<(), Errno>) {
    let text = format!("exec {name}");
    match kernel_answer("apparmor/exec", text.as_bytes()) {
        Err(Errno::NOENT) if !Path::new("/proc/self/attr/apparmor").exists() => (
            PathBuf::from("/proc/thread-self/attr/exec"),
            kernel_answer("exec", text.as_bytes()),
        ),
        other => (PathBuf::from("/proc/thread-self/attr/apparmor/exec"), other),
    }
}

/// Whether SELinux enforces here (libselinux's test: its `enforce` file).
fn selinux_enforcing() -> bool {
    std::fs::read("/sys/fs/selinux/enforce").is_ok_and(|e| e.first() != Some(&b'0'))
}

fn label_error(cmd: Command<Direct>) -> (Stage, Errno, Option<PathBuf>) {
    match cmd.status() {
        Err(Error::Spawn {
            stage, errno, path, ..
        }) => (stage, errno, path),
        other => panic!("expected a spawn error, got {other:?}"),
    }
}

const LABEL: &str = "system_u:system_r:safespawn_test_t:s0";

#[test]
fn a_refused_selinux_label_is_ignored_where_selinux_does_not_enforce() {
    if selinux_enforcing() {
        eprintln!("skipping: SELinux enforces here");
        return;
    }
    let mut with_nul = LABEL.as_bytes().to_vec();
    with_nul.push(0);
    if kernel_answer("exec", &with_nul).is_ok() {
        eprintln!("skipping: this kernel accepts the test label (a permissive SELinux)");
        return;
    }
    // The child's write is refused as ours was, and the program runs.
    let r = report_of(helper("report").selinux_exec_label(LABEL));
    assert!(!r.field("pid").is_empty());
    // On the fork path too.
    let paused = helper("exit=0").selinux_exec_label(LABEL).spawn_paused();
    assert!(paused.unwrap().resume().unwrap().wait().unwrap().success());
}

#[test]
fn a_refused_apparmor_profile_fails_at_stage_label_with_the_kernels_errno() {
    let name = "safespawn-test-profile";
    let (path, answer) = apparmor_answer(name);
    let Err(want) = answer else {
        eprintln!("skipping: this kernel accepts the profile {name:?}");
        return;
    };
    let got = label_error(Command::new("true").apparmor_profile(name));
    assert_eq!(got, (Stage::Label, want, Some(path.clone())));
    // The fork path writes it too.
    let paused = Command::new("true").apparmor_profile(name).spawn_paused();
    match paused.map(|p| p.resume()) {
        Err(Error::Spawn { stage, errno, .. }) | Ok(Err(Error::Spawn { stage, errno, .. })) => {
            assert_eq!((stage, errno), (Stage::Label, want))
        }
        Ok(Ok(child)) => panic!("ran: {:?}", child.wait()),
        Ok(Err(e)) | Err(e) => panic!("{e}"),
    }
    let msg = Command::new("true")
        .apparmor_profile(name)
        .status()
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains(&format!("setting the security label {}", path.display())),
        "{msg}"
    );
}

#[test]
fn labels_are_written_through_the_plans_proc_in_a_view_without_one() {
    if !common::user_namespaces_allowed() {
        eprintln!("skipping: needs a user namespace, refused here");
        return;
    }
    let name = "safespawn-test-profile";
    let (path, answer) = apparmor_answer(name);
    let Err(want) = answer else {
        eprintln!("skipping: this kernel accepts the profile {name:?}");
        return;
    };
    // A new root with nothing in it, in new pid and mount namespaces: the
    // child's own view has no /proc; "thread-self" in the caller's is the
    // child. A write that missed would be ENOENT.
    let cmd = Command::new("/nothing/here")
        .unshare(Namespaces::USER | Namespaces::MOUNT | Namespaces::PID)
        .map_root()
        .root_tmpfs()
        .mount(Mount::tmpfs("/tmp"))
        .apparmor_profile(name);
    assert_eq!(label_error(cmd), (Stage::Label, want, Some(path)));
}

#[test]
fn labels_are_checked_at_build() {
    let long = "x".repeat(rustix::param::page_size());
    let cases: Vec<(Command<Direct>, BuildErrorKind, String)> = vec![
        (
            Command::new("true").selinux_exec_label(""),
            BuildErrorKind::Invalid,
            "selinux_exec_label \"\": is empty".into(),
        ),
        (
            Command::new("true").selinux_exec_label("a\0b"),
            BuildErrorKind::Nul,
            "selinux_exec_label \"a\\0b\": contains a NUL byte at offset 1".into(),
        ),
        // With its NUL it is a byte too long.
        (
            Command::new("true").selinux_exec_label(&long),
            BuildErrorKind::TooLong,
            format!(
                "selinux_exec_label \"{}\" ({} bytes)",
                &long[..40],
                long.len()
            ),
        ),
        (
            Command::new("true").apparmor_profile(""),
            BuildErrorKind::Invalid,
            "apparmor_profile \"\": is empty".into(),
        ),
        (
            Command::new("true").apparmor_profile("p\0"),
            BuildErrorKind::Nul,
            "apparmor_profile \"p\\0\": contains a NUL byte at offset 1".into(),
        ),
        (
            Command::new("true").apparmor_profile(&long[4..]),
            BuildErrorKind::TooLong,
            format!("is {} bytes as written", long.len() + 1),
        ),
    ];
    for (cmd, kind, text) in cases {
        let e = cmd.build().unwrap_err();
        assert_eq!(e.build_kind(), Some(kind), "{e}");
        assert!(e.to_string().contains(&text), "{e}");
    }
    // At the limit: "exec " and the name fill a page exactly; a label and
    // its NUL likewise.
    assert!(Command::new("true")
        .apparmor_profile(&long[5..])
        .build()
        .is_ok());
    assert!(Command::new("true")
        .selinux_exec_label(&long[1..])
        .build()
        .is_ok());
}
