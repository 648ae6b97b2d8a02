//! `.uid()`, `.gid()` and `.groups()` without privilege (issue "Hardening",
//! item 6): asking for the credentials the caller already has must not need
//! `CAP_SETGID` (a plain user's own ids; root inside a user namespace where
//! `setgroups(2)` is denied, as in rootless containers), while a uid or gid
//! request without `.groups()` still clears supplementary groups when there
//! are any (CPython's CVE-2023-6507), or fails rather than keep them.
//!
//! The unprivileged cases run in a copy of this test binary started by the
//! library itself as uid 65534, optionally in a new user namespace.

mod common;

use std::path::{Path, PathBuf};

use common::{helper_path_for_any_user, is_root, output_of, Report};
use safespawn::{Command, Direct, Errno, Error, Stage, Stdio};

/// Set in the copy of this binary: which unprivileged situation it is in.
const INNER: &str = "SAFESPAWN_TEST_OWN_IDS";
/// The helper every user can run, passed to the copy (which may not be able
/// to read the build directory).
const HELPER_ENV: &str = "SAFESPAWN_TEST_HELPER_COPY";
const NAME: &str = "own_ids_need_no_privilege";

const NOBODY: u32 = 65534;

fn report(cmd: Command<Direct>) -> Result<Report, Error> {
    let child = cmd.stdout(Stdio::piped()).spawn()?;
    Ok(Report::parse(&output_of(child)))
}

fn assert_refused(result: Result<Report, Error>, want: Stage, what: &str) {
    match result {
        Err(Error::Spawn { stage, errno, .. }) => {
            assert_eq!((stage, errno), (want, Errno::PERM), "{what}")
        }
        other => panic!("{what}: must fail at {want:?} with EPERM, got {other:?}"),
    }
}

/// Asking for exactly the supplementary groups this process has (in any
/// order) needs no privilege: nothing changes, so nothing is called.
#[test]
fn explicit_current_groups_need_no_privilege() {
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    let mut groups: Vec<u32> = rustix::process::getgroups()
        .unwrap()
        .iter()
        .map(|g| g.as_raw())
        .collect();
    groups.reverse();
    let r = report(
        Command::new(helper_path_for_any_user())
            .arg("::report")
            .uid(uid)
            .gid(gid)
            .groups(&groups),
    )
    .unwrap();
    groups.sort_unstable();
    assert_eq!(r.groups(), groups);
    assert_eq!(r.field("uid"), format!("{uid} {uid} {uid} {uid}"));
}

/// A copy of this test binary every user can run.
fn copy_of_this_test_for_any_user() -> PathBuf {
    let me = std::env::current_exe().unwrap();
    // Some 14 MB per build: copies of earlier builds are removed.
    common::copy_for_any_user(&me, "safespawn-own-credentials", "test", true)
}

/// The copy of this test, as `situation`, under uid and gid 65534.
fn copy_as_nobody(copy: &Path, situation: &str) -> Command<Direct> {
    Command::new(copy)
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env_clear()
        .env(INNER, situation)
        .env(HELPER_ENV, helper_path_for_any_user())
        .current_dir("/")
        .uid(NOBODY)
        .gid(NOBODY)
        .stdout(Stdio::piped())
        .stderr_to_stdout()
}

/// In the copy: the checks for one situation.
fn inner(situation: &str) {
    let helper = || Command::new(std::env::var_os(HELPER_ENV).unwrap()).arg("::report");
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    match situation {
        // uid and gid 65534, no supplementary groups, no capabilities.
        "plain" => {
            let r = report(helper().uid(uid).gid(gid)).unwrap();
            assert_eq!(r.field("uid"), "65534 65534 65534 65534");
            assert_eq!(r.field("gid"), "65534 65534 65534 65534");
            assert_eq!(r.field("groups"), "");
            // Clearing groups that are already empty changes nothing.
            report(helper().groups(&[])).unwrap();
            report(helper().gid(gid)).unwrap();
            // What would change something is still asked, and refused.
            assert_refused(
                report(helper().groups(&[NOBODY])),
                Stage::Groups,
                "a new group",
            );
            assert_refused(report(helper().uid(0)), Stage::Uid, "uid 0");
        }
        // uid and gid 65534 with supplementary groups 100 and 4242.
        "with-groups" => {
            // The CVE-2023-6507 rule: a uid/gid request without .groups()
            // clears them; without CAP_SETGID that fails, never leaks them.
            assert_refused(
                report(helper().uid(uid).gid(gid)),
                Stage::Groups,
                "own ids with supplementary groups to clear",
            );
            assert_refused(report(helper().groups(&[])), Stage::Groups, "clearing");
            // The same groups asked for explicitly (another order) are kept.
            let r = report(helper().uid(uid).gid(gid).groups(&[4242, 100])).unwrap();
            assert_eq!(r.groups(), vec![100, 4242]);
        }
        // Root in a user namespace of uid 65534, setgroups denied.
        "userns" => {
            assert_eq!((uid, gid), (0, 0), "root in the namespace");
            let r = report(helper().uid(0).gid(0)).unwrap();
            assert_eq!(r.field("uid"), "0 0 0 0");
            assert_eq!(r.field("gid"), "0 0 0 0");
            assert_refused(
                report(helper().groups(&[0])),
                Stage::Groups,
                "setgroups denied",
            );
        }
        other => panic!("{INNER}={other}"),
    }
}

/// The hook that puts the copy into a user namespace of its own, mapping
/// root there to uid and gid 65534, with setgroups denied (what `unshare -r`
/// and rootless container runtimes do). Runs after the child became 65534.
fn enter_user_namespace() -> Result<(), Errno> {
    use rustix::fs::{Mode, OFlags};
    // Changing the uid made the process non-dumpable, which makes its /proc
    // files root's: it could not write its own maps.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable)?;
    // SAFETY: a new user namespace only; no fd table is unshared.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWUSER) }?;
    for (file, line) in [
        (c"/proc/self/setgroups", &b"deny"[..]),
        (c"/proc/self/uid_map", &b"0 65534 1\n"[..]),
        (c"/proc/self/gid_map", &b"0 65534 1\n"[..]),
    ] {
        let fd = rustix::fs::open(file, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())?;
        rustix::io::write(&fd, line)?;
    }
    Ok(())
}

#[test]
fn own_ids_need_no_privilege() {
    if let Ok(situation) = std::env::var(INNER) {
        return inner(&situation);
    }
    if !is_root() {
        eprintln!("skipping {NAME}: it needs root, to drop to uid 65534 first");
        return;
    }
    let copy = copy_of_this_test_for_any_user();
    let run = |what: &str, cmd: Command<Direct>| {
        let child = cmd.spawn().unwrap_or_else(|e| panic!("{what}: {e}"));
        let out = output_of(child);
        assert!(out.contains("test result: ok. 1 passed"), "{what}:\n{out}");
    };
    run("plain", copy_as_nobody(&copy, "plain"));
    run(
        "with-groups",
        copy_as_nobody(&copy, "with-groups").groups(&[100, 4242]),
    );
    // SAFETY: the hook makes raw system calls only, on static data.
    let userns = unsafe { copy_as_nobody(&copy, "userns").pre_exec(enter_user_namespace) };
    match userns.spawn() {
        Ok(child) => {
            let out = output_of(child);
            assert!(out.contains("test result: ok. 1 passed"), "userns:\n{out}");
        }
        Err(Error::Spawn {
            stage: Stage::Hook,
            errno,
            ..
        }) => eprintln!(
            "skipping the user namespace part of {NAME}: this system refuses unprivileged \
             user namespaces ({errno})"
        ),
        Err(e) => panic!("userns: {e}"),
    }
}
