//! `pre_exec_privileged`: hooks that run before the privilege steps, with
//! the caller's credentials (libvirt's hook order), next to `pre_exec`
//! hooks, which run with the program's. The hooks write what they see to a
//! pipe passed to the child at a fixed number.

mod common;

use std::io::Read;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use common::root_or_skip;
use safespawn::{BuildErrorKind, Command, Errno, Error, Stage};

/// The child's fd of the pipe the hooks write to.
const OUT: i32 = 60;

/// Writes `bytes` to the child's `OUT`. Child-safe: one raw write.
fn say(bytes: &[u8]) -> Result<(), Errno> {
    // SAFETY: `OUT` is mapped into the child by `map_fd` before the hooks run.
    let fd = unsafe { BorrowedFd::borrow_raw(OUT) };
    rustix::io::write(fd, bytes).map(drop)
}

/// A tag byte and the effective uid (4 bytes), written by a hook.
fn say_euid(tag: u8) -> Result<(), Errno> {
    let e = rustix::process::geteuid().as_raw().to_ne_bytes();
    say(&[tag, e[0], e[1], e[2], e[3]])
}

/// `unshare(CLONE_NEWNS)`: one raw system call, and `errno` read back
/// (a thread-local of the C library, no allocation).
fn unshare_mount_namespace() -> Result<(), Errno> {
    // SAFETY: unshare takes a flag word and touches no memory of ours.
    match unsafe { libc::unshare(libc::CLONE_NEWNS) } {
        0 => Ok(()),
        _ => Err(Errno::from_raw_os_error(
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        )),
    }
}

/// A pipe: the read end, and the write end to map into the child.
fn pipe() -> (std::fs::File, OwnedFd) {
    let (r, w) = std::io::pipe().unwrap();
    (std::fs::File::from(OwnedFd::from(r)), OwnedFd::from(w))
}

/// Runs `cmd` (consumed, so the write end closes with it), then reads
/// what the hooks wrote.
fn run_and_read(cmd: Command, mut r: std::fs::File) -> (Result<(), Error>, Vec<u8>) {
    let result = cmd.run().map(drop);
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    (result, out)
}

fn euid_after(out: &[u8], tag: u8) -> u32 {
    let at = out.iter().position(|&b| b == tag).expect("tag written");
    u32::from_ne_bytes(out[at + 1..at + 5].try_into().unwrap())
}

#[test]
fn a_privileged_hook_is_root_and_a_plain_one_is_the_target_user() {
    if !root_or_skip(
        "a_privileged_hook_is_root_and_a_plain_one_is_the_target_user",
        "a uid change",
    ) {
        return;
    }
    let (r, w) = pipe();
    // SAFETY: each hook makes raw system calls only.
    let cmd = unsafe {
        Command::new("true")
            .uid(65534)
            .gid(65534)
            .map_fd(w, OUT)
            .pre_exec(|| say_euid(b'H'))
            .pre_exec_privileged(|| say_euid(b'P'))
            // What libvirt's QEMU hook does first: a mount namespace of its
            // own, which needs CAP_SYS_ADMIN.
            .pre_exec_privileged(|| unshare_mount_namespace().and_then(|()| say(b"N")))
    };
    let (result, out) = run_and_read(cmd, r);
    result.unwrap();
    assert_eq!(euid_after(&out, b'P'), 0, "{out:?}");
    assert_eq!(euid_after(&out, b'H'), 65534, "{out:?}");
    assert!(out.contains(&b'N'));
    // The same unshare in a plain hook, after the uid change, is refused.
    let (r, w) = pipe();
    // SAFETY: raw system calls only.
    let cmd = unsafe {
        Command::new("true")
            .uid(65534)
            .gid(65534)
            .map_fd(w, OUT)
            .pre_exec(unshare_mount_namespace)
    };
    match run_and_read(cmd, r).0 {
        Err(Error::Spawn { stage, errno, .. }) => {
            assert_eq!(stage, Stage::Hook);
            assert_eq!(errno, Errno::PERM);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn privileged_hooks_run_first_each_kind_in_its_order() {
    let (r, w) = pipe();
    // Registered interleaved: every privileged hook runs before every
    // plain one, each kind in the order given.
    // SAFETY: each hook makes one raw write.
    let cmd = unsafe {
        Command::new("true")
            .map_fd(w, OUT)
            .pre_exec(|| say(b"h1 "))
            .pre_exec_privileged(|| say(b"p1 "))
            .pre_exec(|| say(b"h2 "))
            .pre_exec_privileged(|| say(b"p2 "))
            .pre_exec_privileged(|| say(b"p3 "))
    };
    let (result, out) = run_and_read(cmd, r);
    result.unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), "p1 p2 p3 h1 h2 ");
}

#[test]
fn a_failing_privileged_hook_stops_the_child_at_the_hook_stage() {
    let (r, w) = pipe();
    let marker = common::Scratch::new("hooks-privileged-fail");
    let ran = marker.join("ran");
    // SAFETY: each hook makes one raw write, or none.
    let cmd = unsafe {
        Command::new("touch")
            .arg(&ran)
            .map_fd(w, OUT)
            .pre_exec_privileged(|| say(b"p1 "))
            .pre_exec_privileged(|| Err(Errno::NOTSUP))
            .pre_exec_privileged(|| say(b"p3 "))
            .pre_exec(|| say(b"h1 "))
    };
    let (result, out) = run_and_read(cmd, r);
    match result {
        Err(Error::Spawn {
            stage,
            errno,
            program,
            ..
        }) => {
            assert_eq!(stage, Stage::Hook);
            assert_eq!(errno, Errno::NOTSUP);
            assert!(program.ends_with("touch"), "{program}");
        }
        other => panic!("unexpected {other:?}"),
    }
    // No later hook of either kind ran, nor the program.
    assert_eq!(String::from_utf8(out).unwrap(), "p1 ");
    assert!(!ran.exists());
}

/// Set by a hook: in a forked child, the parent's copy stays false.
static TOUCHED: AtomicBool = AtomicBool::new(false);

#[test]
fn a_privileged_hook_takes_the_fork_path() {
    // SAFETY: the hook stores to an atomic (its own copy in a forked child).
    let cmd = unsafe {
        Command::new("true").pre_exec_privileged(|| {
            TOUCHED.store(true, Ordering::SeqCst);
            Ok(())
        })
    };
    cmd.run().unwrap();
    // A child sharing this memory (the clone path) would have set it here.
    assert!(!TOUCHED.load(Ordering::SeqCst));
    // SAFETY: the hook does nothing.
    let refused = unsafe {
        Command::new("true")
            .forbid_fork()
            .pre_exec_privileged(|| Ok(()))
    }
    .build()
    .unwrap_err();
    match refused {
        Error::Build { kind, ref item, .. } => {
            assert_eq!(kind, BuildErrorKind::Conflict);
            assert_eq!(item, "pre_exec_privileged");
        }
        ref other => panic!("unexpected {other:?}"),
    }
    // And in daemon mode (the intermediate is forked).
    // SAFETY: as above.
    let d = unsafe {
        Command::new("true").pre_exec_privileged(|| {
            TOUCHED.store(true, Ordering::SeqCst);
            Ok(())
        })
    }
    .daemonize()
    .run()
    .unwrap();
    assert!(d.daemon > 0);
    assert!(!TOUCHED.load(Ordering::SeqCst));
}
