//! The program and its arguments: the builder methods, the checks
//! `build()` makes on them (NUL bytes, the kernel's size limits), and
//! finding a bare program name on PATH, in the parent, at `build()`.
//!
//! The PATH searched is the child's if the command sets one, else the
//! parent's (Go's issue 53996 and std's `resolve_in_parent_path` show why it
//! must be said which). Empty and relative PATH entries are skipped: a
//! program found through them would depend on the working directory (Go's
//! `ErrDot`); name it `./prog` to run it from there.

use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use rustix::process::Resource;

use super::Command;
use crate::error::{BuildErrorKind, Error};
use crate::mode::{Direct, Mode};
use crate::quote::shown;

impl Command<Direct> {
    /// A command running `program` (libvirt's virCommandNew).
    ///
    /// A name without `/` is looked up on PATH at `build()`: the child's
    /// PATH if the command sets one, else the parent's. `argv[0]` is
    /// `program` as given.
    ///
    /// # Errors
    ///
    /// `build()` refuses an empty `program` ([`BuildErrorKind::Invalid`]),
    /// one with a NUL byte ([`BuildErrorKind::Nul`]) or longer than the
    /// kernel takes ([`BuildErrorKind::TooLong`]), and a name without `/`
    /// that is on no PATH directory ([`BuildErrorKind::NotFound`]) or only
    /// as a file the caller cannot execute
    /// ([`BuildErrorKind::NotExecutable`]); a [dry run](crate::dry_run)
    /// accepts both. A path with `/` is not looked at: that it is missing or
    /// cannot be executed, like any failure of the exec itself, is
    /// [`Error::Spawn`] at stage [`Exec`](crate::Stage::Exec) (`ENOENT`,
    /// `EACCES`, `ENOEXEC`, ...).
    ///
    /// # References
    ///
    /// [`execve(2)`](https://man7.org/linux/man-pages/man2/execve.2.html);
    /// the PATH search uses
    /// [`access(2)`](https://man7.org/linux/man-pages/man2/access.2.html);
    /// any Linux.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("true");
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn new(program: impl AsRef<OsStr>) -> Command<Direct> {
        Command::from_argv([program])
    }

    /// A command from a whole argv; `argv[0]` is the program (libvirt's
    /// virCommandNewArgs).
    ///
    /// # Errors
    ///
    /// `build()` refuses an empty argv ([`BuildErrorKind::Invalid`]);
    /// otherwise `argv[0]` fails as for [`new`](Command::new) and the rest
    /// as for [`arg`](Command::arg).
    ///
    /// # References
    ///
    /// As [`new`](Command::new).
    ///
    /// ```
    /// let cmd = safespawn::Command::from_argv(["sh", "-c", "exit 3"]);
    /// assert_eq!(cmd.status().unwrap().code(), Some(3));
    /// ```
    pub fn from_argv<I, S>(argv: I) -> Command<Direct>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::empty();
        cmd.cfg.argv = argv.into_iter().map(|a| a.as_ref().to_owned()).collect();
        cmd
    }
}

impl<M: Mode> Command<M> {
    /// Adds one argument; empty arguments are kept (libvirt's AddArg).
    ///
    /// # Errors
    ///
    /// `build()` refuses an argument with a NUL byte
    /// ([`BuildErrorKind::Nul`]), one longer than the kernel takes for a
    /// single string (128 KiB with its NUL), and an argv that with the
    /// environment exceeds execve's limit (see [`build`](Command::build));
    /// both with [`BuildErrorKind::TooLong`].
    ///
    /// ```
    /// let cmd = safespawn::Command::new("printf").arg("%s|").arg("");
    /// assert_eq!(cmd.to_string(), "printf '%s|' ''");
    /// ```
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.cfg.argv.push(arg.as_ref().to_owned());
        self
    }

    /// Adds several arguments (libvirt's AddArgSet / AddArgList).
    ///
    /// # Errors
    ///
    /// As [`arg`](Command::arg), for each argument.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("ls").args(["-l", "-a"]);
    /// assert_eq!(cmd.to_string(), "ls -l -a");
    /// ```
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cfg
            .argv
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Adds one argument `name=value` (libvirt's AddArgPair).
    ///
    /// # Errors
    ///
    /// As [`arg`](Command::arg), for the joined argument.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("dd").arg_pair("if", "/dev/zero");
    /// assert_eq!(cmd.to_string(), "dd if=/dev/zero");
    /// ```
    pub fn arg_pair(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        let mut a = name.as_ref().to_owned();
        a.push("=");
        a.push(value);
        self.cfg.argv.push(a);
        self
    }

    /// Adds one formatted argument (libvirt's AddArgFormat).
    ///
    /// # Errors
    ///
    /// As [`arg`](Command::arg), for the formatted argument.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("head").arg_fmt(format_args!("-n{}", 5));
    /// assert_eq!(cmd.to_string(), "head -n5");
    /// ```
    pub fn arg_fmt(mut self, args: fmt::Arguments<'_>) -> Self {
        self.cfg.argv.push(fmt::format(args).into());
        self
    }
}

/// The kernel's limit for one argument or environment string, NUL included.
const MAX_ARG_STRLEN: usize = 32 * 4096;

/// Where a NUL byte is, as a problem text.
pub(crate) fn nul_problem(bytes: &[u8]) -> Option<String> {
    bytes
        .iter()
        .position(|&b| b == 0)
        .map(|at| format!("contains a NUL byte at offset {at}"))
}

/// Why a string of `len` bytes is too long for execve, if it is.
pub(crate) fn too_long(len: usize, what: &str) -> Option<String> {
    (len + 1 > MAX_ARG_STRLEN).then(|| {
        format!(
            "is {len} bytes; the kernel refuses a single {what} over {} bytes (E2BIG)",
            MAX_ARG_STRLEN - 1
        )
    })
}

/// `s` as a C string, or a build error naming `item()` at its NUL byte.
pub(crate) fn cstring(item: impl FnOnce() -> String, s: &OsStr) -> Result<CString, Error> {
    CString::new(s.as_bytes()).map_err(|e| {
        Error::build(
            BuildErrorKind::Nul,
            item(),
            format!("contains a NUL byte at offset {}", e.nul_position()),
        )
    })
}

/// Checks every argument (NUL bytes, the per-string limit) and returns the
/// program, `argv[0]`.
pub(crate) fn check(argv: &[OsString]) -> Result<&OsStr, Error> {
    let program = argv.first().map(OsString::as_os_str).unwrap_or_default();
    if program.is_empty() {
        return Err(Error::build(BuildErrorKind::Invalid, "program", "is empty"));
    }
    for (i, a) in argv.iter().enumerate() {
        let item = || {
            if i == 0 {
                format!("program {}", shown(a))
            } else {
                format!("argument {i} {}", shown(a))
            }
        };
        if let Some(p) = nul_problem(a.as_bytes()) {
            return Err(Error::build(BuildErrorKind::Nul, item(), p));
        }
        if let Some(p) = too_long(a.len(), "argument") {
            return Err(Error::build(BuildErrorKind::TooLong, item(), p));
        }
    }
    Ok(program)
}

/// The argv+envp size check of execve(2) (`E2BIG`): argv, the environment
/// entries, the program path, and their pointers must fit in a quarter of
/// the child's stack limit (at most 6 MiB, at least `ARG_MAX`).
pub(crate) fn check_total_size(
    argv: &[OsString],
    env: &[Vec<u8>],
    path_len: usize,
    rlimits: &[(Resource, u64, u64)],
) -> Result<(), Error> {
    const ARG_MAX: u64 = 32 * 4096;
    const STK_LIM_3_4: u64 = 6 * 1024 * 1024; // 3/4 of the 8 MiB _STK_LIM
    let stack = rlimits
        .iter()
        .rev()
        .find(|(r, _, _)| *r == Resource::Stack)
        .map(|(_, soft, _)| *soft)
        .unwrap_or_else(|| {
            rustix::process::getrlimit(Resource::Stack)
                .current
                .unwrap_or(u64::MAX)
        });
    let limit = STK_LIM_3_4.min(stack / 4).max(ARG_MAX);
    let pointers = ((argv.len().max(1) + env.len()) * std::mem::size_of::<usize>()) as u64;
    let strings: u64 = argv.iter().map(|a| a.len() as u64 + 1).sum::<u64>()
        + env.iter().map(|e| e.len() as u64 + 1).sum::<u64>()
        + path_len as u64
        + 1;
    if pointers + strings > limit {
        return Err(Error::build(
            BuildErrorKind::TooLong,
            "argument list and environment",
            format!(
                "{} arguments and {} variables take {} bytes; execve refuses more than {} here (E2BIG)",
                argv.len(),
                env.len(),
                pointers + strings,
                limit
            ),
        ));
    }
    Ok(())
}

/// The search path when neither the child nor the parent has PATH (glibc's).
const DEFAULT_PATH: &str = "/bin:/usr/bin";

/// The path to execute for `program`. `view` maps a path of the child's
/// filesystem view to the caller's (the same path, unless the command has
/// a new root), so the look-up finds what the child will see.
pub(crate) fn program_path(
    program: &OsStr,
    child_path: Option<OsString>,
    view: &super::mounts::View,
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
        let Some(seen) = view.host_path(&candidate) else {
            continue;
        };
        match std::fs::metadata(&seen) {
            Ok(meta) if meta.is_file() => {
                if rustix::fs::access(&seen, rustix::fs::Access::EXEC_OK).is_ok() {
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
            format!(
                "not found in PATH={}{}",
                search.to_string_lossy(),
                if view.changes_root() {
                    " in the child's filesystem view (its new root and mounts)"
                } else {
                    ""
                }
            ),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slash_means_as_is() {
        assert_eq!(
            program_path(OsStr::new("./x"), None, &Default::default()).unwrap(),
            PathBuf::from("./x")
        );
    }

    #[test]
    fn searches_the_given_path_and_skips_relative_entries() {
        let p = program_path(
            OsStr::new("sh"),
            Some(":.:rel:/bin".into()),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(p, PathBuf::from("/bin/sh"));
    }

    #[test]
    fn not_found_names_the_program_and_path() {
        let e = program_path(
            OsStr::new("no-such-prog-xyz"),
            Some("/nonexistent".into()),
            &Default::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("no-such-prog-xyz") && e.contains("PATH=/nonexistent"),
            "{e}"
        );
    }
}
