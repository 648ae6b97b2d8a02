//! `Command::from_std` and the conversion of errors to `std::io::Error`.

mod common;

use std::io::ErrorKind;

use common::{report_of, HELPER};
use safespawn::{Command, Error, Stage};

fn std_helper() -> std::process::Command {
    let mut c = std::process::Command::new(HELPER);
    c.arg("::report");
    c
}

#[test]
fn program_args_and_cwd_are_carried() {
    let mut std_cmd = std_helper();
    std_cmd.args(["a b", "", "--x=1"]).current_dir("/tmp");
    let r = report_of(Command::from_std(&std_cmd));
    assert_eq!(r.args, vec![b"a b".to_vec(), Vec::new(), b"--x=1".to_vec()]);
    assert_eq!(r.field("cwd"), "/tmp");
}

#[test]
fn env_changes_keep_std_meaning() {
    // SAFETY: no other thread of this test binary reads or writes these
    // variables (they are this test's own names).
    unsafe {
        std::env::set_var("SAFESPAWN_FROM_STD_KEPT", "parent");
        std::env::set_var("SAFESPAWN_FROM_STD_GONE", "parent");
        std::env::set_var("SAFESPAWN_FROM_STD_REPLACED", "parent");
    }
    let mut std_cmd = std_helper();
    std_cmd
        .env("SAFESPAWN_FROM_STD_SET", "1")
        .env("SAFESPAWN_FROM_STD_REPLACED", "child")
        .env_remove("SAFESPAWN_FROM_STD_GONE");
    let cmd = Command::from_std(&std_cmd);
    // Only what the command sets is shown, never the inherited rest.
    assert!(!cmd.to_string().contains("KEPT"), "{cmd}");
    let env = report_of(cmd).env_str();
    assert!(env.contains(&"SAFESPAWN_FROM_STD_KEPT=parent".to_owned()));
    assert!(env.contains(&"SAFESPAWN_FROM_STD_SET=1".to_owned()));
    assert!(env.contains(&"SAFESPAWN_FROM_STD_REPLACED=child".to_owned()));
    assert!(!env
        .iter()
        .any(|e| e.starts_with("SAFESPAWN_FROM_STD_GONE=")));
    assert_eq!(
        env.iter()
            .filter(|e| e.starts_with("SAFESPAWN_FROM_STD_REPLACED="))
            .count(),
        1
    );
    // The same std command, run by std, sees the same variables.
    let out = std_cmd.output().unwrap();
    let std_env: Vec<String> = common::Report::parse(&String::from_utf8_lossy(&out.stdout))
        .env_str()
        .into_iter()
        .filter(|e| e.starts_with("SAFESPAWN_FROM_STD_"))
        .collect();
    let ours: Vec<String> = env
        .into_iter()
        .filter(|e| e.starts_with("SAFESPAWN_FROM_STD_"))
        .collect();
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(sorted(std_env), sorted(ours));
}

#[test]
fn env_clear_is_carried() {
    let mut std_cmd = std_helper();
    std_cmd.env_clear().env("ONLY", "this");
    let env = report_of(Command::from_std(&std_cmd)).env_str();
    assert_eq!(env, vec!["ONLY=this".to_owned()]);
    // A clear with nothing after it: an empty environment.
    let mut std_cmd = std_helper();
    std_cmd.env("DROPPED", "x").env_clear();
    assert!(report_of(Command::from_std(&std_cmd)).env_str().is_empty());
}

#[test]
fn an_unchanged_environment_is_inherited() {
    let env = report_of(Command::from_std(&std_helper())).env_str();
    assert!(env.iter().any(|e| e.starts_with("PATH=")), "{env:?}");
}

#[test]
fn stdio_stays_at_the_safespawn_default() {
    let mut std_cmd = std_helper();
    std_cmd.stdin(std::process::Stdio::inherit());
    // std's stdio settings cannot be read: stdin and stderr are /dev/null.
    let r = report_of(Command::from_std(&std_cmd));
    assert_eq!(r.fds.get(&0).map(String::as_str), Some("/dev/null"));
    assert_eq!(r.fds.get(&2).map(String::as_str), Some("/dev/null"));
}

#[test]
fn a_bare_name_is_looked_up_on_the_path_as_std_does() {
    let mut std_cmd = std::process::Command::new("true");
    std_cmd.arg("ignored");
    let cmd = Command::from_std(&std_cmd);
    assert_eq!(cmd.to_string(), "true ignored");
    assert!(cmd.run().unwrap().success());
}

#[test]
fn spawn_errors_keep_the_errno_through_io_error() {
    let err = Command::new("/nonexistent/safespawn-from-std")
        .status()
        .unwrap_err();
    let Error::Spawn {
        stage,
        errno,
        program,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*stage, Stage::Exec);
    assert_eq!(program, "/nonexistent/safespawn-from-std");
    let errno = errno.raw_os_error();
    assert_eq!(errno, libc::ENOENT);
    // The safespawn error has both: the code and a message naming the
    // stage and the program.
    assert_eq!(err.raw_os_error(), Some(errno));
    let message = err.to_string();
    assert!(
        message.contains("/nonexistent/safespawn-from-std") && message.contains("exec failed"),
        "{message}"
    );
    // The plain conversion is std's: the errno, no message of ours.
    let kind = err.io_kind();
    let io: std::io::Error = err.into();
    assert_eq!(io.raw_os_error(), Some(errno));
    assert_eq!(io.kind(), ErrorKind::NotFound);
    assert_eq!(kind, ErrorKind::NotFound);
    // std's own failed spawn of the same path reports the same way.
    let std_err = std::process::Command::new("/nonexistent/safespawn-from-std")
        .status()
        .unwrap_err();
    assert_eq!(std_err.raw_os_error(), io.raw_os_error());
    assert_eq!(std_err.kind(), io.kind());
    assert_eq!(std_err.to_string(), io.to_string());

    // The other conversion keeps the message and the kind, not the code:
    // one io::Error cannot hold both (see the docs of the conversion).
    let err = Command::new("/nonexistent/safespawn-from-std")
        .status()
        .unwrap_err();
    let io = std::io::Error::new(err.io_kind(), err);
    assert_eq!(io.raw_os_error(), None);
    assert_eq!(io.kind(), ErrorKind::NotFound);
    assert!(io.to_string().contains("exec failed"), "{io}");
    let inner = io.get_ref().unwrap().downcast_ref::<Error>().unwrap();
    assert_eq!(inner.raw_os_error(), Some(libc::ENOENT));
}

#[test]
fn a_stage_before_exec_keeps_its_errno_too() {
    let err = Command::new("true")
        .current_dir("/nonexistent/safespawn-dir")
        .status()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Spawn {
                stage: Stage::Chdir,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("working directory"), "{err}");
    let io: std::io::Error = err.into();
    assert_eq!(io.raw_os_error(), Some(libc::ENOENT));
}

#[test]
fn a_std_command_runs_the_same_through_from_std() {
    let mut std_cmd = std::process::Command::new("sh");
    std_cmd.args(["-c", "exit 7"]);
    assert_eq!(std_cmd.status().unwrap().code(), Some(7));
    assert_eq!(
        Command::from_std(&std_cmd).status().unwrap().code(),
        Some(7)
    );
    let err = Command::from_std(&std_cmd).run().unwrap_err();
    assert_eq!(err.to_string(), "sh -c 'exit 7' exited with status 7");
    assert_eq!(err.raw_os_error(), None);
}
