//! Runs the probe under each profile through the real launcher and checks
//! every call's outcome: the profile's calls fail with its errno, every
//! other call gives what it gives without the launcher.

use std::collections::BTreeMap;
use std::process::{Command, Output};

const LAUNCHER: &str = env!("CARGO_BIN_EXE_compat-run");
const PROBE: &str = env!("CARGO_BIN_EXE_compat-probe");

fn parse(out: &Output) -> BTreeMap<String, String> {
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        out.status.success(),
        "probe failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| {
            let (name, result) = l.split_once(' ').unwrap();
            (name.to_string(), result.to_string())
        })
        .collect()
}

/// The probe's results without any launcher.
fn host() -> BTreeMap<String, String> {
    parse(&Command::new(PROBE).output().unwrap())
}

fn under(profile: &str) -> BTreeMap<String, String> {
    parse(
        &Command::new(LAUNCHER)
            .args([profile, "--", PROBE])
            .output()
            .unwrap(),
    )
}

fn is_root() -> bool {
    // SAFETY: geteuid has no failure and no arguments.
    unsafe { libc::geteuid() == 0 }
}

/// What the profile changes: call -> result; everything else must be as on
/// the host.
fn changes(profile: &str) -> Vec<(&'static str, &'static str)> {
    let v54 = [
        ("clone3", "ENOSYS"),
        ("close_range", "ENOSYS"),
        ("landlock", "ENOSYS"),
    ];
    match profile {
        "none" => vec![],
        "5.4" => v54.to_vec(),
        "5.3" => [&v54[..], &[("waitid_pidfd", "EINVAL")]].concat(),
        "4.18" => [
            &v54[..],
            &[
                ("waitid_pidfd", "EINVAL"),
                ("pidfd_open", "ENOSYS"),
                ("pidfd_send_signal", "ENOSYS"),
                ("pidfd_getfd", "ENOSYS"),
                ("clone_pidfd", "EINVAL"),
            ],
        ]
        .concat(),
        // glibc >= 2.34 makes threads and posix_spawn with clone3 and falls
        // back to clone on ENOSYS only.
        "docker-eperm" => vec![
            ("clone3", "EPERM"),
            ("close_range", "EPERM"),
            ("landlock", "EPERM"),
            ("thread", "EPERM"),
            ("std_spawn", "EPERM"),
        ],
        // glibc's clone3 (88 bytes) falls back; the probe's (64) sees EPERM.
        "docker-eperm-old-glibc" => vec![
            ("clone3", "EPERM"),
            ("close_range", "EPERM"),
            ("landlock", "EPERM"),
        ],
        "no-proc" => vec![("close_range", "ENOSYS"), ("proc_self_fd", "ENOENT")],
        _ => unreachable!(),
    }
}

fn check(profile: &str) {
    let mut host = host();
    // A kernel without landlock (or one that did not enable it at boot)
    // answers the query itself: that call then tells nothing here.
    if host.get("landlock").is_some_and(|r| r != "ok") {
        eprintln!(
            "no landlock on this host ({}): not checked",
            host["landlock"]
        );
        host.remove("landlock");
    }
    // The probe's calls all work here without a filter; otherwise this
    // machine cannot tell the filter's errno from the kernel's.
    for (call, result) in &host {
        assert_eq!(result, "ok", "{call} fails without any filter: {result}");
    }
    let mut expected = host.clone();
    if profile != "none" && !is_root() {
        // Without CAP_SYS_ADMIN a filter needs no_new_privs.
        expected.insert("no_new_privs".into(), "set".into());
    }
    let landlock_checked = expected.contains_key("landlock");
    for (call, result) in changes(profile) {
        if call == "landlock" && !landlock_checked {
            continue;
        }
        assert!(expected.contains_key(call), "the probe has no {call}");
        expected.insert(call.to_string(), result.to_string());
    }
    let mut got = under(profile);
    if !landlock_checked {
        got.remove("landlock");
    }
    assert_eq!(got, expected, "under profile {profile}");
}

#[test]
fn none_changes_nothing() {
    check("none");
}

#[test]
fn linux_5_4() {
    check("5.4");
}

#[test]
fn linux_5_3() {
    check("5.3");
}

#[test]
fn linux_4_18() {
    check("4.18");
}

#[test]
fn docker_eperm() {
    check("docker-eperm");
}

#[test]
fn docker_eperm_old_glibc() {
    check("docker-eperm-old-glibc");
}

#[test]
fn no_proc_as_root_or_a_clear_error_otherwise() {
    if is_root() {
        check("no-proc");
        // The host's /proc is untouched.
        assert!(std::fs::metadata("/proc/self/fd").is_ok());
    } else {
        let out = Command::new(LAUNCHER)
            .args(["no-proc", "--", PROBE])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(125));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("needs root"), "{stderr}");
        assert!(out.stdout.is_empty(), "the program ran: {out:?}");
    }
}

#[test]
fn the_filter_is_inherited_through_exec() {
    let out = Command::new(LAUNCHER)
        .args(["4.18", "--", "sh", "-c", "exec \"$0\"", PROBE])
        .output()
        .unwrap();
    let results = parse(&out);
    assert_eq!(results["clone3"], "ENOSYS");
    assert_eq!(results["pidfd_open"], "ENOSYS");
    assert_eq!(results["waitid_pid"], "ok");
}

#[test]
fn usage_errors_exit_125_and_a_missing_program_127() {
    for args in [
        &[][..],
        &["5.4"],
        &["5.4", "--"],
        &["5.4", "true"],
        &["5.5", "--", "true"],
    ] {
        let out = Command::new(LAUNCHER).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(125), "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
    let out = Command::new(LAUNCHER)
        .args(["5.4", "--", "/nonexistent/program"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/program"), "{stderr}");
}

#[test]
fn the_program_status_and_arguments_pass_through() {
    let status = Command::new(LAUNCHER)
        .args(["5.3", "--", "sh", "-c", "exit $#", "sh", "a", "b", "c"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(3));
}

#[test]
fn list_names_every_profile() {
    let out = Command::new(LAUNCHER).arg("--list").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for p in compat_run::Profile::ALL {
        assert!(
            text.lines().any(|l| l.starts_with(p.name())),
            "{}",
            p.name()
        );
    }
}
