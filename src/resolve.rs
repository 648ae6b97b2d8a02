//! Finding a bare program name on PATH, in the parent, at `build()`.
//!
//! The PATH searched is the child's if the command sets one, else the
//! parent's (Go's issue 53996 and std's `resolve_in_parent_path` show why it
//! must be said which). Empty and relative PATH entries are skipped: a
//! program found through them would depend on the working directory (Go's
//! `ErrDot`); name it `./prog` to run it from there.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::error::{BuildErrorKind, Error};
use crate::plan::shown;

/// The search path when neither the child nor the parent has PATH (glibc's).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// The path to execute for `program`.
pub(crate) fn program_path(
    program: &OsStr,
    child_path: Option<OsString>,
) -> Result<PathBuf, Error> {
    if program.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(program));
    }
    let search = child_path
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_else(|| DEFAULT_PATH.into());
    let mut not_executable = None;
    for dir in search.as_bytes().split(|&b| b == b':') {
        if dir.first() != Some(&b'/') {
            continue;
        }
        let candidate = PathBuf::from(OsStr::from_bytes(dir)).join(program);
        match std::fs::metadata(&candidate) {
            Ok(meta) if meta.is_file() => {
                if rustix::fs::access(&candidate, rustix::fs::Access::EXEC_OK).is_ok() {
                    return Ok(candidate);
                }
                not_executable.get_or_insert(candidate);
            }
            _ => {}
        }
    }
    let item = format!("program {}", shown(program));
    Err(match not_executable {
        Some(p) => Error::build(
            BuildErrorKind::NotExecutable,
            item,
            format!("found at {} but it is not executable", p.display()),
        ),
        None => Error::build(
            BuildErrorKind::NotFound,
            item,
            format!("not found in PATH={}", search.to_string_lossy()),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slash_means_as_is() {
        assert_eq!(
            program_path(OsStr::new("./x"), None).unwrap(),
            PathBuf::from("./x")
        );
    }

    #[test]
    fn searches_the_given_path_and_skips_relative_entries() {
        let p = program_path(OsStr::new("sh"), Some(":.:rel:/bin".into())).unwrap();
        assert_eq!(p, PathBuf::from("/bin/sh"));
    }

    #[test]
    fn not_found_names_the_program_and_path() {
        let e = program_path(OsStr::new("no-such-prog-xyz"), Some("/nonexistent".into()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no-such-prog-xyz") && e.contains("PATH=/nonexistent"),
            "{e}"
        );
    }
}
