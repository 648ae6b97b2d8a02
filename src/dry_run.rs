//! Dry runs: record commands instead of running them (libvirt's
//! virCommandSetDryRun). **This is the way to unit-test code that runs
//! commands**: the code under test builds and runs its commands as usual;
//! the test wraps it in [`capture`] (or [`capture_with`] to simulate
//! failures, [`capture_with_details`] to fake outputs from each command's
//! arguments, environment and input: a [`Call`]) and checks the exact command lines it would have run, without
//! starting any process.
//!
//! Inside a scope, every synchronous run (`run`, `status`, `output`, and a
//! daemon's `run`) records the command's shell-quoted line (its `Display`
//! form, so env entries first) and returns a fake outcome instead of
//! spawning: by default exit status 0 and no output. `run`'s checks apply to
//! a fake status exactly as to a real one, so a failing [`Outcome`] makes
//! `run` return [`Error::Exit`]. `spawn` and `spawn_paused` are refused
//! with an [`Error::Build`]: a dry run cannot fake a live child.
//!
//! Every other check of `build()` still applies, with two exceptions: a
//! program that cannot be found on PATH (or is found there only as a file
//! that cannot be executed) is accepted, so that tests do not depend on what
//! the machine running them has installed; and the terminals of
//! [`controlling_tty`](crate::Command::controlling_tty) and
//! [`foreground`](crate::Command::foreground) are not asked whether they
//! are terminals (or the caller's controlling terminal), so that tests do
//! not depend on whether they run in one. Which fd numbers are planned,
//! and which options conflict, is still checked.
//!
//! The scope belongs to the calling thread (commands run by other threads
//! are not intercepted), scopes nest (an inner scope records to itself and
//! then gives the outer one back), and the outer state is restored even when
//! the closure panics.
//!
//! # Example
//!
//! ```
//! use safespawn::{dry_run, Command, Error};
//!
//! /// The code under test: restarts a service, falling back to `start` when
//! /// `restart` fails.
//! fn restart(service: &str) -> Result<(), Error> {
//!     let restarted = Command::new("systemctl")
//!         .args(["restart", service])
//!         .env_clear()
//!         .status()?;
//!     if !restarted.success() {
//!         Command::new("systemctl").args(["start", service]).env_clear().run()?;
//!     }
//!     Ok(())
//! }
//!
//! // Nothing runs, whether or not systemctl exists on this machine.
//! let (lines, result) = dry_run::capture(|| restart("my web"));
//! assert!(result.is_ok());
//! assert_eq!(lines, ["systemctl restart 'my web'"]);
//!
//! // Simulate a failing restart and check the fallback.
//! let (lines, result) = dry_run::capture_with(
//!     |line| {
//!         if line.contains(" restart ") {
//!             dry_run::Outcome::exit(1)
//!         } else {
//!             dry_run::Outcome::success()
//!         }
//!     },
//!     || restart("db"),
//! );
//! assert!(result.is_ok());
//! assert_eq!(lines, ["systemctl restart db", "systemctl start db"]);
//!
//! // A failure of the fallback reaches the caller as a real one would.
//! let (_, result) = dry_run::capture_with(|_| dry_run::Outcome::exit(5), || restart("db"));
//! assert_eq!(result.unwrap_err().to_string(), "systemctl start db exited with status 5");
//! ```

use std::cell::RefCell;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use crate::error::Error;
use crate::plan::Plan;

/// The fake outcome of a command run inside a dry-run scope, chosen by the
/// handler given to [`capture_with`].
///
/// ```
/// use safespawn::dry_run::Outcome;
/// let o = Outcome::exit(3).with_stdout("out\n").with_stderr("oops\n");
/// assert_eq!(o.status.code(), Some(3));
/// assert_eq!(o.stdout, b"out\n");
/// assert!(Outcome::success().status.success());
/// assert_eq!(Outcome::killed(9).status.code(), None);
/// ```
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The exit status to report.
    pub status: ExitStatus,
    /// What the command "wrote" to stdout (returned by buffered runs).
    pub stdout: Vec<u8>,
    /// What the command "wrote" to stderr (returned by buffered runs, and
    /// carried by the [`Error::Exit`] of a buffered `run`).
    pub stderr: Vec<u8>,
}

impl Outcome {
    /// Exit status 0, no output: what [`capture`] reports for every command.
    ///
    /// ```
    /// assert!(safespawn::dry_run::Outcome::success().status.success());
    /// ```
    pub fn success() -> Outcome {
        Outcome::exit(0)
    }

    /// Exited with `code` (only its low 8 bits reach a parent, as for a real
    /// process), no output.
    ///
    /// ```
    /// assert_eq!(safespawn::dry_run::Outcome::exit(2).status.code(), Some(2));
    /// ```
    pub fn exit(code: u8) -> Outcome {
        Outcome {
            status: ExitStatus::from_raw(i32::from(code) << 8),
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }

    /// Killed by signal number `signal` (1..=127), no output.
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// assert_eq!(safespawn::dry_run::Outcome::killed(9).status.signal(), Some(9));
    /// ```
    pub fn killed(signal: u8) -> Outcome {
        Outcome {
            status: ExitStatus::from_raw(i32::from(signal & 0x7f)),
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }

    /// The same outcome with `bytes` as its standard output.
    ///
    /// ```
    /// let o = safespawn::dry_run::Outcome::success().with_stdout("v1.2\n");
    /// assert_eq!(o.stdout, b"v1.2\n");
    /// ```
    pub fn with_stdout(mut self, bytes: impl Into<Vec<u8>>) -> Outcome {
        self.stdout = bytes.into();
        self
    }

    /// The same outcome with `bytes` as its standard error.
    ///
    /// ```
    /// let o = safespawn::dry_run::Outcome::exit(1).with_stderr("no such unit\n");
    /// assert_eq!(o.stderr, b"no such unit\n");
    /// ```
    pub fn with_stderr(mut self, bytes: impl Into<Vec<u8>>) -> Outcome {
        self.stderr = bytes.into();
        self
    }
}

impl Default for Outcome {
    /// [`Outcome::success`].
    fn default() -> Outcome {
        Outcome::success()
    }
}

/// One command run inside a dry-run scope, as a
/// [`capture_with_details`] handler sees it: the recorded line, and what
/// the command would have run with — its argv, its environment and its
/// standard input (libvirt's dry-run callback gets the same, so tests can
/// fake an output from the arguments and the input).
///
/// ```
/// use safespawn::dry_run::{self, Outcome};
/// use safespawn::Command;
/// let (_, out) = dry_run::capture_with_details(
///     |call| {
///         assert_eq!(call.line(), "FOO=1 tr a-z A-Z");
///         assert_eq!(call.argv(), ["tr", "a-z", "A-Z"]);
///         assert!(call.env().iter().any(|e| *e == "FOO=1"));
///         assert_eq!(call.env_var("FOO").unwrap(), "1");
///         // tr's work, faked from the input.
///         Outcome::success().with_stdout(call.input().unwrap_or_default().to_ascii_uppercase())
///     },
///     || Command::new("tr").args(["a-z", "A-Z"]).env("FOO", "1").input("abc").output(),
/// );
/// assert_eq!(out?.stdout, b"ABC");
/// # Ok::<(), safespawn::Error>(())
/// ```
#[derive(Debug)]
pub struct Call<'a> {
    line: &'a str,
    argv: Vec<&'a OsStr>,
    env: Vec<&'a OsStr>,
    input: Option<&'a [u8]>,
}

impl<'a> Call<'a> {
    fn of(plan: &'a Plan) -> Call<'a> {
        Call {
            line: &plan.line,
            argv: plan.child.exec.argv.items().collect(),
            env: plan.child.exec.envp.items().collect(),
            input: plan.buffered.input.as_deref(),
        }
    }

    /// The shell-quoted command line, as recorded (the `Display` form).
    ///
    /// ```
    /// let (_, _) = safespawn::dry_run::capture_with_details(
    ///     |call| {
    ///         assert_eq!(call.line(), "echo 'a b'");
    ///         safespawn::dry_run::Outcome::success()
    ///     },
    ///     || safespawn::Command::new("echo").arg("a b").status(),
    /// );
    /// ```
    pub fn line(&self) -> &'a str {
        self.line
    }

    /// The argument vector, `argv[0]` (the program as given) first.
    ///
    /// ```
    /// let (_, _) = safespawn::dry_run::capture_with_details(
    ///     |call| {
    ///         assert_eq!(call.argv(), ["ls", "-l"]);
    ///         safespawn::dry_run::Outcome::success()
    ///     },
    ///     || safespawn::Command::new("ls").arg("-l").status(),
    /// );
    /// ```
    pub fn argv(&self) -> &[&'a OsStr] {
        &self.argv
    }

    /// The whole environment the program would get, as `NAME=VALUE`
    /// entries in the order of its `envp` (the inherited variables
    /// included, unless the command clears them).
    ///
    /// ```
    /// let (_, _) = safespawn::dry_run::capture_with_details(
    ///     |call| {
    ///         assert_eq!(call.env(), ["A=1"]);
    ///         safespawn::dry_run::Outcome::success()
    ///     },
    ///     || safespawn::Command::new("env").env_clear().env("A", "1").status(),
    /// );
    /// ```
    pub fn env(&self) -> &[&'a OsStr] {
        &self.env
    }

    /// The value of the variable `name` in [`env`](Call::env), if set.
    ///
    /// ```
    /// let (_, _) = safespawn::dry_run::capture_with_details(
    ///     |call| {
    ///         assert_eq!(call.env_var("LANG").unwrap(), "C");
    ///         assert_eq!(call.env_var("LAN"), None);
    ///         safespawn::dry_run::Outcome::success()
    ///     },
    ///     || safespawn::Command::new("env").env("LANG", "C").status(),
    /// );
    /// ```
    pub fn env_var(&self, name: impl AsRef<OsStr>) -> Option<&'a OsStr> {
        let name = name.as_ref().as_bytes();
        self.env.iter().find_map(|e| {
            let rest = e.as_bytes().strip_prefix(name)?;
            rest.strip_prefix(b"=").map(OsStr::from_bytes)
        })
    }

    /// The bytes given with [`Command::input`](crate::Command::input), which
    /// the program would read on its standard input; `None` without.
    ///
    /// ```
    /// let (_, _) = safespawn::dry_run::capture_with_details(
    ///     |call| {
    ///         assert_eq!(call.input(), Some(&b"data"[..]));
    ///         safespawn::dry_run::Outcome::success()
    ///     },
    ///     || safespawn::Command::new("cat").input("data").output(),
    /// );
    /// ```
    pub fn input(&self) -> Option<&'a [u8]> {
        self.input
    }
}

type Handler = Box<dyn FnMut(&Call<'_>) -> Outcome>;

/// The active scope of this thread.
struct Scope {
    lines: Vec<String>,
    /// `None` while the handler runs (it is taken out so that it may itself
    /// run commands without a re-entrant borrow), or for [`capture`].
    handler: Option<Handler>,
}

thread_local! {
    static SCOPE: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

/// Puts the enclosing scope (or none) back when dropped, also on unwinding.
struct Restore {
    outer: Option<Scope>,
}

impl Drop for Restore {
    fn drop(&mut self) {
        let outer = self.outer.take();
        // try_with: during thread teardown there is nothing left to restore.
        let _ = SCOPE.try_with(|s| *s.borrow_mut() = outer);
    }
}

fn scoped<R>(handler: Option<Handler>, f: impl FnOnce() -> R) -> (Vec<String>, R) {
    let scope = Scope {
        lines: Vec::new(),
        handler,
    };
    let restore = Restore {
        outer: SCOPE.with(|s| s.borrow_mut().replace(scope)),
    };
    let result = f();
    let lines = SCOPE.with(|s| {
        s.borrow_mut()
            .as_mut()
            .map(|scope| std::mem::take(&mut scope.lines))
            .unwrap_or_default()
    });
    drop(restore);
    (lines, result)
}

/// Runs `f` in a dry-run scope and returns the quoted line of every command
/// it ran, in order, with `f`'s result. Every run succeeds with exit status 0
/// and no output; nothing is spawned. See the [module docs](self).
///
/// ```
/// use safespawn::{dry_run, Command};
/// let (lines, status) = dry_run::capture(|| {
///     Command::new("rm").args(["-rf", "/very important"]).status()
/// });
/// assert!(status?.success());
/// assert_eq!(lines, ["rm -rf '/very important'"]);
/// # Ok::<(), safespawn::Error>(())
/// ```
pub fn capture<R>(f: impl FnOnce() -> R) -> (Vec<String>, R) {
    scoped(None, f)
}

/// Like [`capture`], but `handler(&line)` chooses each command's fake
/// [`Outcome`] (status, stdout, stderr), so tests can simulate failures.
/// `run` checks the fake status as it would a real one.
///
/// ```
/// use safespawn::{dry_run, Command, Error};
/// let (lines, err) = dry_run::capture_with(
///     |_line| dry_run::Outcome::exit(4),
///     || Command::new("make").arg("install").run(),
/// );
/// assert_eq!(lines, ["make install"]);
/// assert!(matches!(err, Err(Error::Exit { .. })));
/// ```
pub fn capture_with<R>(
    mut handler: impl FnMut(&str) -> Outcome + 'static,
    f: impl FnOnce() -> R,
) -> (Vec<String>, R) {
    scoped(
        Some(Box::new(move |call: &Call<'_>| handler(call.line()))),
        f,
    )
}

/// Like [`capture_with`], but the handler sees the whole [`Call`]: the
/// line, the argv, the environment and the standard input, so a test can
/// fake a command's output from its arguments and its input.
///
/// ```
/// use safespawn::dry_run::{self, Outcome};
/// use safespawn::Command;
/// // A fake `wc -c` that counts its input.
/// let (lines, out) = dry_run::capture_with_details(
///     |call| match call.argv().get(1).and_then(|a| a.to_str()) {
///         Some("-c") => Outcome::success()
///             .with_stdout(format!("{}\n", call.input().map_or(0, <[u8]>::len))),
///         _ => Outcome::exit(1),
///     },
///     || Command::new("wc").arg("-c").input("hello").output(),
/// );
/// assert_eq!(lines, ["wc -c"]);
/// assert_eq!(out?.stdout, b"5\n");
/// # Ok::<(), safespawn::Error>(())
/// ```
pub fn capture_with_details<R>(
    handler: impl FnMut(&Call<'_>) -> Outcome + 'static,
    f: impl FnOnce() -> R,
) -> (Vec<String>, R) {
    scoped(Some(Box::new(handler)), f)
}

/// Called by every synchronous run path (`run`, `status`, `output`, daemon
/// `run`) with the command's plan: `Some(outcome)` when a dry-run scope is
/// active on this thread (the quoted line has then been recorded), `None`
/// to run for real.
pub(crate) fn intercept(plan: &Plan) -> Option<Outcome> {
    let line: &str = &plan.line;
    let handler = SCOPE
        .try_with(|s| {
            let mut s = s.borrow_mut();
            let scope = s.as_mut()?;
            scope.lines.push(line.to_owned());
            Some(scope.handler.take())
        })
        .ok()
        .flatten()?;
    let Some(mut handler) = handler else {
        return Some(Outcome::success());
    };
    // Called with no borrow held: the handler may run commands itself
    // (recorded in this scope, with the default outcome).
    let outcome = handler(&Call::of(plan));
    let _ = SCOPE.try_with(|s| {
        if let Some(scope) = s.borrow_mut().as_mut() {
            scope.handler = Some(handler);
        }
    });
    Some(outcome)
}

/// Whether a dry-run scope is active on this thread. `build()` then accepts
/// a program it cannot find on PATH, since nothing will be executed.
pub(crate) fn active() -> bool {
    SCOPE.try_with(|s| s.borrow().is_some()).unwrap_or(false)
}

/// Called by `spawn` and `spawn_paused`: an error when a dry-run scope is
/// active, since a dry run cannot fake a live child.
pub(crate) fn refuse_spawn(line: &str) -> Result<(), Error> {
    if active() {
        return Err(Error::build(
            crate::error::BuildErrorKind::Conflict,
            format!("command {line}"),
            "cannot be spawned inside a dry run: a dry run cannot fake a live child \
             (use run(), status() or output() there)",
        ));
    }
    Ok(())
}
