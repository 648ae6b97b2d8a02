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

/// The option each of the library's items came from. The library names
/// what is wrong in its own terms (`mount(Mount::bind_ro("/usr", "/usr"))`,
/// "needs unshare(PID)"), the tool in its user's (`--ro-bind /usr /usr`,
/// "needs --unshare-pid").
#[derive(Debug, Default)]
pub struct Items(Vec<Item>);

#[derive(Debug)]
struct Item {
    library: String,
    option: String,
    /// The library's words for this item's options, and the tool's.
    words: &'static [(&'static str, &'static str)],
}

/// The library's words for the tool's options, in any build error.
const WORDS: &[(&str, &str)] = &[
    ("unshare(USER)", "--unshare-user"),
    ("unshare(MOUNT)", "--unshare-mount"),
    ("unshare(PID)", "--unshare-pid"),
    ("unshare(NET)", "--unshare-net"),
    ("unshare(UTS)", "--unshare-uts"),
    ("unshare(IPC)", "--unshare-ipc"),
    ("unshare(CGROUP)", "--unshare-cgroup"),
    ("unshare(TIME)", "--unshare-time"),
    ("map_root (which implies --unshare-user)", "--map-root"),
    ("root(dir) or root_tmpfs()", "--root DIR or --root-tmpfs"),
    ("root() or root_tmpfs()", "--root or --root-tmpfs"),
    ("daemonize()", "--daemonize"),
];

impl Items {
    /// `option` is what the library calls `item`.
    pub fn add(&mut self, item: impl Into<String>, option: impl Into<String>) {
        self.add_with(item, option, &[]);
    }

    /// As [`add`](Items::add), with `words` of the library's to replace in
    /// its problems with this item.
    pub fn add_with(
        &mut self,
        item: impl Into<String>,
        option: impl Into<String>,
        words: &'static [(&'static str, &'static str)],
    ) {
        self.0.push(Item {
            library: item.into(),
            option: option.into(),
            words,
        });
    }

    /// The failure for `err`. A build error is told in the tool's words;
    /// one about an item of these options names the option, and is a set-up
    /// failure (125: a missing bind source is not a missing program).
    pub fn failure(&self, err: Error) -> Failure {
        let Error::Build {
            kind,
            item,
            problem,
        } = err
        else {
            return Failure::from(err);
        };
        let known = self.0.iter().find(|i| i.library == item);
        let words = known.map_or(&[][..], |i| i.words).iter().chain(WORDS);
        let problem = words.fold(problem, |p, (library, tool)| p.replace(library, tool));
        match known {
            Some(known) => Failure::setup(format!("invalid command: {}: {problem}", known.option)),
            None => Failure::from(Error::Build {
                kind,
                item,
                problem,
            }),
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
    fn build_errors_about_an_option_name_it_in_the_tools_words() {
        let mut items = Items::default();
        items.add_with(
            r#"mount(Mount::bind_ro("/a", "/b"))"#,
            "--ro-bind /a /b",
            &[(".optional() skips", "--ro-bind-try skips")],
        );
        let build = |kind, item: &str, problem: &str| Error::Build {
            kind,
            item: item.into(),
            problem: problem.into(),
        };
        let f = items.failure(build(
            BuildErrorKind::NotFound,
            r#"mount(Mount::bind_ro("/a", "/b"))"#,
            r#"the source "/a" does not exist (.optional() skips a mount whose source is missing)"#,
        ));
        assert_eq!(f.code, SETUP_FAILED);
        assert_eq!(
            f.message,
            r#"invalid command: --ro-bind /a /b: the source "/a" does not exist (--ro-bind-try skips a mount whose source is missing)"#
        );
        // Another item keeps its name and its code, in the tool's words.
        let f = items.failure(build(
            BuildErrorKind::Conflict,
            r#"hostname "box""#,
            "needs unshare(UTS): without a new UTS namespace it would rename the host",
        ));
        assert_eq!(f.code, SETUP_FAILED);
        assert_eq!(
            f.message,
            r#"invalid command: hostname "box": needs --unshare-uts: without a new UTS namespace it would rename the host"#
        );
        let f = items.failure(build(
            BuildErrorKind::NotFound,
            "program \"x\"",
            "not found",
        ));
        assert_eq!(f.code, NOT_FOUND);
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
