//! Exit statuses, following env(1) and timeout(1).

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use safespawn::{BuildErrorKind, Error, Stage};

/// `--timeout` expired (timeout(1)'s status).
pub const TIMED_OUT: u8 = 124;
/// safespawn itself, or the child's set-up before exec, failed.
pub const SETUP_FAILED: u8 = 125;
/// The program was found but cannot be executed.
pub const CANNOT_EXECUTE: u8 = 126;
/// The program was not found.
pub const NOT_FOUND: u8 = 127;

/// A failure to report: one line on stderr, and the exit status.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn setup(message: String) -> Failure {
        Failure {
            code: SETUP_FAILED,
            message,
        }
    }
}

/// The exit status for a finished program: its code, or 128+N for signal N.
pub fn code_of(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        // Only the low 8 bits of an exit code exist.
        (Some(code), _) => (code & 0xff) as u8,
        (None, Some(sig)) => 128u8.saturating_add((sig & 0x7f) as u8),
        _ => SETUP_FAILED,
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Failure {
        let code = match &err {
            Error::Spawn { stage, errno, .. } if *stage == Stage::Exec => {
                if errno.raw_os_error() == rustix::io::Errno::NOENT.raw_os_error() {
                    NOT_FOUND
                } else {
                    CANNOT_EXECUTE
                }
            }
            // The program; a missing file or directory an option names (a
            // cgroup, a mount source) is a set-up failure.
            Error::Build {
                kind: BuildErrorKind::NotFound,
                item,
                ..
            } if item.starts_with("program ") => NOT_FOUND,
            Error::Build {
                kind: BuildErrorKind::NotExecutable,
                ..
            } => CANNOT_EXECUTE,
            Error::Timeout { .. } => TIMED_OUT,
            _ => SETUP_FAILED,
        };
        // Errors are one line: a multi-line message (captured stderr) is cut.
        let message = err.to_string();
        let message = message.lines().next().unwrap_or("").to_string();
        Failure { code, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(code_of(ExitStatus::from_raw(0)), 0);
        assert_eq!(code_of(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(code_of(ExitStatus::from_raw(9)), 137);
        assert_eq!(code_of(ExitStatus::from_raw(15 | 0x80)), 143);
    }

    #[test]
    fn errors() {
        let spawn = |stage, errno| Error::Spawn {
            stage,
            errno,
            program: "p".into(),
            path: None,
        };
        use rustix::io::Errno;
        assert_eq!(
            Failure::from(spawn(Stage::Exec, Errno::NOENT)).code,
            NOT_FOUND
        );
        assert_eq!(
            Failure::from(spawn(Stage::Exec, Errno::ACCESS)).code,
            CANNOT_EXECUTE
        );
        assert_eq!(
            Failure::from(spawn(Stage::Exec, Errno::NOEXEC)).code,
            CANNOT_EXECUTE
        );
        assert_eq!(
            Failure::from(spawn(Stage::Chdir, Errno::NOENT)).code,
            SETUP_FAILED
        );
        assert_eq!(
            Failure::from(spawn(Stage::Uid, Errno::PERM)).code,
            SETUP_FAILED
        );
        let missing = |item: &str| Error::Build {
            kind: BuildErrorKind::NotFound,
            item: item.into(),
            problem: "does not exist".into(),
        };
        assert_eq!(Failure::from(missing("program \"x\"")).code, NOT_FOUND);
        assert_eq!(
            Failure::from(missing("cgroup(\"/sys/fs/cgroup/x\")")).code,
            SETUP_FAILED
        );
    }
}
