//! Pipelines: `cmd_a | cmd_b | cmd_c`, each stage's stdout feeding the
//! next stage's stdin through a pipe the parent never reads or writes.
//!
//! The pipes between stages are made per spawn: the pipe from stage `i` to
//! stage `i + 1` is created just before stage `i` is spawned; its write end
//! is closed in the parent right after that spawn, its read end right
//! after the spawn of stage `i + 1`. Both are close-on-exec and the child
//! side closes every fd it was not given, so no stage holds an end that is
//! not its own stdin or stdout (a stage that kept a stray write end would
//! keep the next stage from ever seeing end-of-file).
//!
//! Spawning a [`PreparedPipeline`] allocates nothing: every stage was
//! built beforehand, the pipes live on the stack, and the vector that
//! holds the running stages comes from a pool the prepared pipeline keeps
//! (one vector per concurrent spawn, made on first use and handed back
//! when the [`RunningPipeline`] or the [`PipelineStatus`] made from it is
//! dropped).

use std::fmt;
use std::io::{PipeReader, PipeWriter};
use std::ops::BitOr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::ExitStatusExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::pipe::PipeFlags;
use rustix::process::Signal;

use crate::child::fds::{SLOT_STDERR, SLOT_STDIN, SLOT_STDOUT};
use crate::command::fds::StdioKind;
use crate::error::{BuildErrorKind, Error};
use crate::mode::Direct;
use crate::prepared::Prepared;
use crate::process::{Finished, Running};
use crate::secret::Secret;
use crate::{spawn, sys, Command, Stdio};

mod drive;

/// How long [`RunningPipeline`]'s abort waits after SIGTERM before SIGKILL,
/// shared by all stages (as [`Running::abort`]'s grace).
const ABORT_GRACE: Duration = Duration::from_millis(100);

/// Commands whose standard output feeds the next one's standard input:
/// `cmd_a | cmd_b | cmd_c` (duct's `pipe`, the `subprocess` crate's `|`).
///
/// Each stage is a [`Command<Direct>`] with everything it can have
/// (environment, credentials, namespaces, ...); the pipeline owns the
/// streams between them:
///
/// * the first stage's stdin is its own (default `/dev/null`), or the
///   pipeline's [`input`](Pipeline::input);
/// * the last stage's stdout is its own (default `/dev/null`);
///   [`output`](Pipeline::output) captures it, as does a synchronous run
///   of a last stage whose stdout is [`Stdio::piped`];
/// * each stage's stderr is its own: [`Stdio::inherit`], a file, or
///   [`Stdio::piped`], which a synchronous run captures for that stage
///   ([`PipelineOutput::stderr`], and the [`Error::Pipeline`] of a failing
///   stage carries its end); [`Command::stderr_to_stdout`] on a stage
///   sends its stderr down the pipe (`2>&1 |`).
///
/// A failure is pipefail's: [`run`](Pipeline::run) fails when any stage
/// fails, with an [`Error::Pipeline`] naming the stage (bash's choice: the
/// rightmost failing one) and its status. An upstream stage killed by
/// `SIGPIPE` because a later stage stopped reading (`yes | head -n 3`) is
/// not a failure unless [`sigpipe_is_failure`](Pipeline::sigpipe_is_failure)
/// says so; bash's `pipefail` counts it (status 141), which makes most
/// pipelines that end early fail.
///
/// ```
/// use safespawn::Command;
///
/// let out = (Command::new("yes") | Command::new("head").args(["-n", "3"])).output()?;
/// assert_eq!(out.stdout, b"y\ny\ny\n");
/// out.status.check()?; // yes's SIGPIPE is no failure
///
/// let err = (Command::new("true") | Command::new("false") | Command::new("cat")).run().unwrap_err();
/// assert_eq!(err.to_string(), "pipeline stage 1 (false) exited with status 1");
/// # Ok::<(), safespawn::Error>(())
/// ```
pub struct Pipeline {
    stages: Vec<Command<Direct>>,
    input: Option<Secret>,
    sigpipe_is_failure: bool,
    timeout: Option<Duration>,
    /// The first problem found by a builder call, reported by `build()`.
    deferred: Option<Error>,
}

impl Pipeline {
    /// A pipeline of one stage; [`pipe`](Pipeline::pipe) or `|` adds more.
    ///
    /// ```
    /// use safespawn::{Command, Pipeline};
    /// let p = Pipeline::new(Command::new("echo").arg("hi")).pipe(Command::new("cat"));
    /// assert_eq!(p.to_string(), "echo hi | cat");
    /// ```
    pub fn new(first: Command<Direct>) -> Pipeline {
        Pipeline {
            stages: vec![first],
            input: None,
            sigpipe_is_failure: false,
            timeout: None,
            deferred: None,
        }
    }

    /// Adds `next` as the last stage, reading what the current last stage
    /// writes. The same as `self | next`.
    ///
    /// ```
    /// use safespawn::{Command, Pipeline};
    /// let out = Pipeline::new(Command::new("echo").arg("b a"))
    ///     .pipe(Command::new("tr").args([" ", "\n"]))
    ///     .pipe(Command::new("sort"))
    ///     .output()?;
    /// assert_eq!(out.stdout, b"a\nb\n");
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn pipe(mut self, next: Command<Direct>) -> Pipeline {
        self.stages.push(next);
        self
    }

    /// Feeds `bytes` (binary-safe) to the first stage's stdin in
    /// [`run`](Pipeline::run), [`status`](Pipeline::status) and
    /// [`output`](Pipeline::output), closing it once all is written (or the
    /// stage stops reading). [`spawn`](Pipeline::spawn) writes nothing:
    /// the first stage's stdin is a pipe whose end
    /// [`RunningPipeline::take_stdin`] gives. The bytes are erased when the
    /// pipeline (or its [`PreparedPipeline`]) is dropped, as
    /// [`Command::send_buffer`]'s are.
    ///
    /// # Errors
    ///
    /// `build()` refuses input for a first stage whose stdin is set to
    /// anything but the default ([`BuildErrorKind::Conflict`]).
    ///
    /// ```
    /// use safespawn::Command;
    /// let out = (Command::new("sort") | Command::new("head").args(["-n", "2"]))
    ///     .input("c\nb\na\n")
    ///     .output()?;
    /// assert_eq!(out.stdout, b"a\nb\n");
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn input(mut self, bytes: impl Into<Vec<u8>>) -> Pipeline {
        self.input = Some(Secret::new(bytes));
        self
    }

    /// Counts an upstream stage killed by `SIGPIPE` as a failure, as bash's
    /// `pipefail` does. By default it is not: a stage is killed by
    /// `SIGPIPE` when it writes after a later stage stopped reading, which
    /// is how `producer | head` is meant to end. The last stage's
    /// `SIGPIPE` (its own stdout closed under it) is always a failure.
    ///
    /// ```
    /// use safespawn::{Command, Error};
    /// let p = (Command::new("yes") | Command::new("head").args(["-n", "1"])).sigpipe_is_failure();
    /// let err = p.run().unwrap_err();
    /// assert!(matches!(err, Error::Pipeline { stage: 0, .. }), "{err}");
    /// assert_eq!(err.to_string(), "pipeline stage 0 (yes) was killed by signal 13");
    /// ```
    pub fn sigpipe_is_failure(mut self) -> Pipeline {
        self.sigpipe_is_failure = true;
        self
    }

    /// For [`run`](Pipeline::run), [`status`](Pipeline::status) and
    /// [`output`](Pipeline::output): past `timeout` every stage is aborted
    /// (TERM, a short grace shared by all, KILL, reap) and the call returns
    /// [`Error::Timeout`] naming the pipeline, with what was captured of
    /// the last stdout (and of the stderr of stages that pipe it, in stage
    /// order). The stages' own [`Command::timeout`]s are not used. A
    /// timeout too large for a deadline (`Duration::MAX`) is no timeout.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] as above; a failure to abort or reap a stage is
    /// [`Error::Io`] instead.
    ///
    /// ```
    /// use safespawn::{Command, Error};
    /// use std::time::Duration;
    /// let err = (Command::new("sleep").arg("10") | Command::new("cat"))
    ///     .timeout(Duration::from_millis(50))
    ///     .status()
    ///     .unwrap_err();
    /// assert!(matches!(err, Error::Timeout { .. }));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Pipeline {
        self.timeout = Some(timeout);
        self
    }

    /// The number of stages.
    ///
    /// ```
    /// use safespawn::Command;
    /// assert_eq!((Command::new("a") | Command::new("b") | Command::new("c")).len(), 3);
    /// ```
    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// Always `false`: a pipeline has at least one stage.
    ///
    /// ```
    /// assert!(!safespawn::Pipeline::new(safespawn::Command::new("true")).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Builds every stage, in order, and freezes the pipeline into a
    /// reusable [`PreparedPipeline`]. The streams between the stages
    /// become pipes: the stdin of every stage but the first and the stdout
    /// of every stage but the last are the pipeline's.
    ///
    /// # Errors
    ///
    /// * a stage's own [`Command::build`] error; an [`Error::Build`] names
    ///   the stage in its item (`stage 1 (cat): argument 1 ...`);
    /// * [`BuildErrorKind::Conflict`] for a stream the pipeline owns that
    ///   the stage set itself (the stdin of a later stage, the stdout of
    ///   an earlier one: anything but the default [`Stdio::null`]), for
    ///   [`input`](Pipeline::input) with a first stage whose stdin is set,
    ///   for a pipeline joined after another with `|` that had input
    ///   of its own (it would feed a stage that reads the pipe instead),
    ///   and for a stage with a [`send_buffer`](Command::send_buffer)
    ///   (`stage 1 (cat): child fd 3 (send_buffer)`: a stage's per-spawn
    ///   fds are its stdio pipes).
    ///
    /// ```
    /// use safespawn::{Command, Stdio};
    /// let p = (Command::new("echo").arg("x") | Command::new("cat")).build()?;
    /// for _ in 0..3 {
    ///     assert!(p.status()?.success());
    /// }
    /// let err = (Command::new("true") | Command::new("cat").stdin(Stdio::inherit())).build().unwrap_err();
    /// assert_eq!(err.to_string(),
    ///     "invalid command: stage 1 (cat): stdin: is the pipe from the stage before; a stage may not set it");
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn build(self) -> Result<PreparedPipeline, Error> {
        if let Some(e) = self.deferred {
            return Err(e);
        }
        let n = self.stages.len();
        let mut line = String::new();
        let mut stages = Vec::with_capacity(n);
        let mut programs = Vec::with_capacity(n);
        for (i, mut cmd) in self.stages.into_iter().enumerate() {
            let name = format!("stage {i} ({})", cmd.cfg.display_line());
            if i > 0 {
                line.push_str(" | ");
            }
            line.push_str(&cmd.cfg.display_line());
            let fds = &mut cmd.cfg.fds;
            if i > 0 {
                claim(
                    &mut fds.stdin,
                    &name,
                    "stdin",
                    "is the pipe from the stage before",
                )?;
            } else if self.input.is_some() {
                claim(
                    &mut fds.stdin,
                    &name,
                    "stdin",
                    "is fed by the pipeline's input",
                )?;
            }
            if i + 1 < n {
                claim(
                    &mut fds.stdout,
                    &name,
                    "stdout",
                    "is the pipe to the next stage",
                )?;
            }
            if let Some((fd, _)) = cmd.cfg.send_buffers.first() {
                // A stage's slots are its stdio pipes only.
                return Err(Error::build(
                    BuildErrorKind::Conflict,
                    format!("{name}: child fd {fd} (send_buffer)"),
                    "a pipeline stage takes no send buffers; feed the first stage with input(), or run the command on its own",
                ));
            }
            let prepared = cmd.build().map_err(|e| match e {
                Error::Build {
                    kind,
                    item,
                    problem,
                } => Error::Build {
                    kind,
                    item: format!("{name}: {item}"),
                    problem,
                },
                other => other,
            })?;
            programs.push(prepared.plan.program.clone());
            stages.push(prepared);
        }
        Ok(PreparedPipeline {
            stages,
            input: self.input,
            sigpipe_is_failure: self.sigpipe_is_failure,
            timeout: self.timeout,
            line: line.into(),
            shared: Arc::new(Shared {
                pool: Pool::default(),
                programs,
                sigpipe_is_failure: self.sigpipe_is_failure,
            }),
        })
    }

    /// `build()?` then [`PreparedPipeline::spawn`].
    ///
    /// # Errors
    ///
    /// As [`build`](Pipeline::build) and [`PreparedPipeline::spawn`].
    ///
    /// ```
    /// use safespawn::Command;
    /// let running = (Command::new("true") | Command::new("true")).spawn()?;
    /// assert!(running.wait()?.success());
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn spawn(self) -> Result<RunningPipeline, Error> {
        self.build()?.spawn()
    }

    /// `build()?` then [`PreparedPipeline::run`].
    ///
    /// # Errors
    ///
    /// As [`build`](Pipeline::build) and [`PreparedPipeline::run`].
    ///
    /// ```
    /// use safespawn::Command;
    /// assert!((Command::new("true") | Command::new("cat")).run()?.success());
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn run(self) -> Result<PipelineStatus, Error> {
        self.build()?.run()
    }

    /// `build()?` then [`PreparedPipeline::status`].
    ///
    /// # Errors
    ///
    /// As [`build`](Pipeline::build) and [`PreparedPipeline::status`].
    ///
    /// ```
    /// use safespawn::Command;
    /// let st = (Command::new("true") | Command::new("false")).status()?;
    /// assert_eq!(st.iter().map(|s| s.code()).collect::<Vec<_>>(), [Some(0), Some(1)]);
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn status(self) -> Result<PipelineStatus, Error> {
        self.build()?.status()
    }

    /// Sets the last stage's stdout to [`Stdio::piped`] (whatever it was
    /// set to), then `build()?` and [`PreparedPipeline::output`]: the last
    /// stage's stdout is captured.
    ///
    /// # Errors
    ///
    /// As [`build`](Pipeline::build) and [`PreparedPipeline::output`].
    ///
    /// ```
    /// use safespawn::Command;
    /// let out = (Command::new("echo").arg("hello") | Command::new("tr").args(["a-z", "A-Z"])).output()?;
    /// assert_eq!(out.stdout, b"HELLO\n");
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn output(mut self) -> Result<PipelineOutput, Error> {
        if let Some(last) = self.stages.pop() {
            self.stages.push(last.stdout(Stdio::piped()));
        }
        self.build()?.output()
    }
}

/// Takes a stream for the pipeline: refuses one the stage set itself.
fn claim(stdio: &mut Stdio, stage: &str, stream: &str, what: &str) -> Result<(), Error> {
    if !matches!(stdio.0, StdioKind::Null) {
        return Err(Error::build(
            BuildErrorKind::Conflict,
            format!("{stage}: {stream}"),
            format!("{what}; a stage may not set it"),
        ));
    }
    *stdio = Stdio::piped();
    Ok(())
}

/// `cmd_a | cmd_b`: a two-stage [`Pipeline`].
///
/// ```
/// use safespawn::Command;
/// let out = (Command::new("echo").arg("x") | Command::new("cat")).output()?;
/// assert_eq!(out.stdout, b"x\n");
/// # Ok::<(), safespawn::Error>(())
/// ```
impl BitOr<Command<Direct>> for Command<Direct> {
    type Output = Pipeline;
    fn bitor(self, next: Command<Direct>) -> Pipeline {
        Pipeline::new(self).pipe(next)
    }
}

/// `pipeline | cmd`: `cmd` becomes the last stage.
///
/// ```
/// use safespawn::Command;
/// let p = Command::new("echo") | Command::new("cat") | Command::new("wc").arg("-l");
/// assert_eq!(p.len(), 3);
/// ```
impl BitOr<Command<Direct>> for Pipeline {
    type Output = Pipeline;
    fn bitor(self, next: Command<Direct>) -> Pipeline {
        self.pipe(next)
    }
}

/// `cmd | pipeline`: `cmd` becomes the first stage; the pipeline's
/// settings are kept, and its input, if any, makes `build()` fail (it
/// would feed `cmd`'s output's reader).
///
/// ```
/// use safespawn::Command;
/// let p = Command::new("echo").arg("x") | (Command::new("cat") | Command::new("cat"));
/// assert_eq!(p.output()?.stdout, b"x\n");
/// # Ok::<(), safespawn::Error>(())
/// ```
impl BitOr<Pipeline> for Command<Direct> {
    type Output = Pipeline;
    fn bitor(self, rest: Pipeline) -> Pipeline {
        Pipeline::new(self) | rest
    }
}

/// `pipeline | pipeline`: the stages of both, in order. The left one's
/// input and timeout are kept; `sigpipe_is_failure` holds if either says
/// it; input on the right one makes `build()` fail.
///
/// ```
/// use safespawn::Command;
/// let p = (Command::new("echo") | Command::new("cat")) | (Command::new("cat") | Command::new("cat"));
/// assert_eq!(p.len(), 4);
/// ```
impl BitOr<Pipeline> for Pipeline {
    type Output = Pipeline;
    fn bitor(mut self, rest: Pipeline) -> Pipeline {
        let joined_at = self.stages.len();
        let rest_line = rest.to_string();
        self.stages.extend(rest.stages);
        self.sigpipe_is_failure |= rest.sigpipe_is_failure;
        self.timeout = self.timeout.or(rest.timeout);
        if let Some(e) = rest.deferred {
            self.deferred.get_or_insert(e);
        }
        if rest.input.is_some() {
            self.deferred.get_or_insert(Error::build(
                BuildErrorKind::Conflict,
                format!("the input of the pipeline joined at stage {joined_at} ({rest_line})"),
                "that stage reads the pipe from the stage before",
            ));
        }
        self
    }
}

/// The stages' shell-quoted lines joined with ` | `.
///
/// ```
/// use safespawn::Command;
/// let p = Command::new("printf").arg("a b") | Command::new("tr").args(["a", "b"]);
/// assert_eq!(p.to_string(), "printf 'a b' | tr a b");
/// ```
impl fmt::Display for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, stage) in self.stages.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            f.write_str(&stage.cfg.display_line())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pipeline")
            .field("stages", &self.stages)
            .field("input", &self.input.as_ref().map(|i| i.len()))
            .field("sigpipe_is_failure", &self.sigpipe_is_failure)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// One stage's place in a running or finished pipeline.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "slots live in a pooled vector reused across spawns; boxing the `Running` (which keeps its send buffers' write ends in place) would allocate per spawn"
)]
enum Slot {
    Running(Running),
    Finished(Finished),
    /// Only while a stage moves from one to the other.
    Moving,
}

/// The vectors of stages handed out by [`PreparedPipeline::spawn`], kept
/// for the next spawn.
#[derive(Debug, Default)]
struct Pool(Mutex<Vec<Vec<Slot>>>);

/// What a prepared pipeline shares with its running and finished ones.
#[derive(Debug)]
struct Shared {
    pool: Pool,
    /// Each stage's program, as given, for [`Error::Pipeline`].
    programs: Vec<Arc<str>>,
    sigpipe_is_failure: bool,
}

impl Pool {
    fn take(&self, n: usize) -> Vec<Slot> {
        let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match pool.pop() {
            Some(v) => v,
            // The first spawn, or more at once than ever before.
            None => Vec::with_capacity(n),
        }
    }

    fn put(&self, mut v: Vec<Slot>) {
        v.clear();
        if v.capacity() > 0 {
            let mut pool = self.0.lock().unwrap_or_else(|e| e.into_inner());
            pool.push(v);
        }
    }
}

/// A built pipeline: every stage checked and prepared, reusable,
/// `Send + Sync`. Spawning it allocates nothing (see the module docs).
///
/// ```
/// use safespawn::Command;
/// let p = (Command::new("echo").arg("x") | Command::new("wc").arg("-c")).build()?;
/// for _ in 0..2 {
///     assert_eq!(p.output()?.stdout, b"");            // wc's stdout is not piped
/// }
/// let p = (Command::new("echo").arg("x") | Command::new("wc").arg("-c").stdout(safespawn::Stdio::piped())).build()?;
/// assert_eq!(p.output()?.stdout, b"2\n");
/// # Ok::<(), safespawn::Error>(())
/// ```
pub struct PreparedPipeline {
    stages: Vec<Prepared<Direct>>,
    input: Option<Secret>,
    sigpipe_is_failure: bool,
    timeout: Option<Duration>,
    line: Arc<str>,
    shared: Arc<Shared>,
}

static_assertions::assert_impl_all!(PreparedPipeline: Send, Sync);
static_assertions::assert_impl_all!(RunningPipeline: Send);

/// The parent's copies of one stage's fds for its spawn.
struct StageFds {
    /// The child's fd per standard stream, -1 where it has none of ours.
    slots: [RawFd; 3],
    /// The parent's ends of the stage's own piped streams (a piped first
    /// stdin, last stdout, any stderr).
    parent: [Option<OwnedFd>; 3],
    /// The child's ends of those, closed right after the spawn.
    child: [Option<OwnedFd>; 3],
}

impl PreparedPipeline {
    /// Starts every stage, first to last, and returns at once. Allocates
    /// nothing (after the first spawn, or the first of as many at once).
    /// A failing spawn aborts and reaps the stages already started.
    ///
    /// The parent holds no end of the pipes between stages. Streams the
    /// stages pipe to the caller are in the [`RunningPipeline`]: the first
    /// stage's stdin ([`take_stdin`](RunningPipeline::take_stdin), also
    /// with [`Pipeline::input`], which only synchronous runs write), the
    /// last stage's stdout ([`take_stdout`](RunningPipeline::take_stdout)),
    /// each stage's stderr ([`stage_mut`](RunningPipeline::stage_mut)).
    ///
    /// # Errors
    ///
    /// A stage's [`Prepared::spawn`] error ([`Error::Spawn`] names its
    /// program); [`Error::Io`] when a pipe cannot be created (`EMFILE`);
    /// inside a [dry run](crate::dry_run), the [`Error::Build`] of a spawn.
    ///
    /// # References
    ///
    /// [`pipe2(2)`](https://man7.org/linux/man-pages/man2/pipe2.2.html)
    /// with `O_CLOEXEC`; each stage as [`Prepared::spawn`].
    ///
    /// ```
    /// use safespawn::{Command, Stdio};
    /// use std::io::Read;
    /// let p = (Command::new("echo").arg("hi") | Command::new("cat").stdout(Stdio::piped())).build()?;
    /// let mut running = p.spawn()?;
    /// let mut s = String::new();
    /// running.take_stdout().unwrap().read_to_string(&mut s).unwrap();
    /// assert_eq!(s, "hi\n");
    /// assert!(running.wait()?.success());
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn spawn(&self) -> Result<RunningPipeline, Error> {
        crate::dry_run::refuse_spawn(&self.line)?;
        let n = self.stages.len();
        let mut running = RunningPipeline {
            stages: self.shared.pool.take(n),
            shared: self.shared.clone(),
        };
        // The read end of the pipe from the stage before.
        let mut from_before: Option<OwnedFd> = None;
        for (i, stage) in self.stages.iter().enumerate() {
            let plan = &*stage.plan;
            let to_next = if i + 1 < n {
                Some(sys::fd::pipe(PipeFlags::empty())?)
            } else {
                None
            };
            let mut fds = StageFds {
                slots: [-1; 3],
                parent: [None, None, None],
                child: [None, None, None],
            };
            match &from_before {
                Some(r) => fds.slots[SLOT_STDIN] = r.as_raw_fd(),
                None => fds.own_pipe(plan, SLOT_STDIN)?,
            }
            match &to_next {
                Some((_, w)) => fds.slots[SLOT_STDOUT] = w.as_raw_fd(),
                None => fds.own_pipe(plan, SLOT_STDOUT)?,
            }
            fds.own_pipe(plan, SLOT_STDERR)?;
            let child = spawn::spawn(plan, &fds.slots)?;
            running.stages.push(Slot::Running(Running::new(
                child,
                fds.parent,
                plan.line.clone(),
            )));
            // The stage has its copies: ours go now.
            drop(fds.child);
            from_before = to_next.map(|(r, _w)| r);
        }
        Ok(running)
    }

    /// Runs the pipeline to completion (feeding the
    /// [`input`](Pipeline::input), capturing what the stages pipe) and
    /// checks every stage (pipefail).
    ///
    /// # Errors
    ///
    /// * [`Error::Pipeline`] naming the rightmost failing stage, its
    ///   status and the end of its captured stderr;
    /// * otherwise as [`output`](PreparedPipeline::output).
    ///
    /// # References
    ///
    /// As [`output`](PreparedPipeline::output).
    ///
    /// ```
    /// use safespawn::{Command, Error, Stdio};
    /// let p = (Command::new("true")
    ///     | Command::new("sh").args(["-c", "echo broken >&2; exit 4"]).stderr(Stdio::piped())
    ///     | Command::new("cat"))
    ///     .build()?;
    /// let err = p.run().unwrap_err();
    /// let Error::Pipeline { stage, status, stderr, .. } = &err else { panic!("{err}") };
    /// assert_eq!((*stage, status.code(), stderr.as_str()), (1, Some(4), "broken\n"));
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn run(&self) -> Result<PipelineStatus, Error> {
        let out = self.output()?;
        out.check_with_stderr()?;
        Ok(out.status)
    }

    /// Runs the pipeline to completion, without checking the statuses.
    ///
    /// # Errors
    ///
    /// As [`output`](PreparedPipeline::output).
    ///
    /// # References
    ///
    /// As [`output`](PreparedPipeline::output).
    ///
    /// ```
    /// use safespawn::Command;
    /// let p = (Command::new("false") | Command::new("true")).build()?;
    /// let st = p.status()?;
    /// assert!(!st.success());
    /// assert_eq!(st.get(0).unwrap().code(), Some(1));
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn status(&self) -> Result<PipelineStatus, Error> {
        Ok(self.output()?.status)
    }

    /// Runs the pipeline to completion, writing the
    /// [`input`](Pipeline::input) to the first stage and capturing every
    /// piped stream (the last stage's stdout, each piped stderr) through
    /// one poll loop, as [`Buffered`](crate::Buffered) mode does for one
    /// child: the streams are serviced whenever ready, so no stage blocks
    /// on a full pipe; a stage that stops reading its input ends the
    /// writing (`EPIPE` is no error, and the `SIGPIPE` it raises is kept
    /// from this process); after the last stage has exited, pipes a
    /// grandchild still holds are drained for at most 3 s.
    /// Not checked: see [`PipelineStatus::check`].
    ///
    /// # Errors
    ///
    /// * [`Error::Timeout`] past the pipeline's [`timeout`](Pipeline::timeout),
    ///   once every stage is aborted and reaped;
    /// * [`Error::Io`] when creating, polling, reading or writing a pipe
    ///   fails, or waiting for a stage (the stages are aborted and reaped);
    /// * otherwise as [`spawn`](PreparedPipeline::spawn).
    ///
    /// In a [dry run](crate::dry_run) nothing is spawned: each stage's line
    /// is recorded and its fake outcome used (the last stage's fake stdout
    /// is the output's, a stage's fake stderr is its captured stderr where
    /// it pipes it).
    ///
    /// # References
    ///
    /// [`poll(2)`](https://man7.org/linux/man-pages/man2/poll.2.html) on the
    /// pipes and the stages' pidfds (Linux 5.3), then
    /// [`waitid(2)`](https://man7.org/linux/man-pages/man2/waitid.2.html);
    /// the spawn as [`spawn`](PreparedPipeline::spawn).
    ///
    /// ```
    /// use safespawn::{Command, Stdio};
    /// let p = (Command::new("sh").args(["-c", "echo to-err >&2; echo to-out"]).stderr(Stdio::piped())
    ///     | Command::new("cat").stdout(Stdio::piped()))
    ///     .build()?;
    /// let out = p.output()?;
    /// assert_eq!(out.stdout, b"to-out\n");
    /// assert_eq!(out.stderr[0], b"to-err\n");
    /// assert!(out.stderr[1].is_empty());
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn output(&self) -> Result<PipelineOutput, Error> {
        if crate::dry_run::active() {
            return Ok(self.dry_output());
        }
        drive::drive(self, self.spawn()?)
    }

    /// The outcome of a dry run: every stage's line recorded, the fake
    /// outcomes used.
    fn dry_output(&self) -> PipelineOutput {
        let mut statuses = self.shared.pool.take(self.stages.len());
        let mut stdout = Vec::new();
        let mut stderr = Vec::with_capacity(self.stages.len());
        for stage in &self.stages {
            let plan = &*stage.plan;
            let outcome =
                crate::dry_run::intercept(plan).unwrap_or_else(crate::dry_run::Outcome::success);
            statuses.push(Slot::Finished(Finished::new(
                outcome.status,
                plan.line.clone(),
            )));
            stdout = if plan.stdio_pipes[SLOT_STDOUT] {
                outcome.stdout
            } else {
                Vec::new()
            };
            stderr.push(if plan.stdio_pipes[SLOT_STDERR] {
                outcome.stderr
            } else {
                Vec::new()
            });
        }
        PipelineOutput {
            status: PipelineStatus {
                stages: statuses,
                shared: self.shared.clone(),
            },
            stdout,
            stderr,
        }
    }

    /// The number of stages.
    ///
    /// ```
    /// use safespawn::Command;
    /// assert_eq!((Command::new("true") | Command::new("true")).build()?.len(), 2);
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// Always `false`: a pipeline has at least one stage.
    ///
    /// ```
    /// use safespawn::Command;
    /// assert!(!(Command::new("true") | Command::new("true")).build()?.is_empty());
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Stage `i`, prepared.
    ///
    /// ```
    /// use safespawn::Command;
    /// let p = (Command::new("echo").arg("x") | Command::new("cat")).build()?;
    /// assert_eq!(p.stage(0).unwrap().to_string(), "echo x");
    /// assert!(p.stage(2).is_none());
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn stage(&self, i: usize) -> Option<&Prepared<Direct>> {
        self.stages.get(i)
    }
}

impl StageFds {
    /// A pipe of the stage's own for `slot`, where its plan pipes it.
    fn own_pipe(&mut self, plan: &crate::plan::Plan, slot: usize) -> Result<(), Error> {
        if !plan.stdio_pipes[slot] {
            return Ok(());
        }
        let (r, w) = sys::fd::pipe(PipeFlags::empty())?;
        let (parent, child) = if slot == SLOT_STDIN { (w, r) } else { (r, w) };
        if plan.nonblocking_pipes {
            rustix::io::ioctl_fionbio(&parent, true)
                .map_err(|e| Error::io("making a pipe non-blocking", e))?;
        }
        self.slots[slot] = child.as_raw_fd();
        self.parent[slot] = Some(parent);
        self.child[slot] = Some(child);
        Ok(())
    }
}

/// The stages' shell-quoted lines joined with ` | `.
///
/// ```
/// use safespawn::Command;
/// let p = (Command::new("echo").arg("a b") | Command::new("cat")).build()?;
/// assert_eq!(p.to_string(), "echo 'a b' | cat");
/// # Ok::<(), safespawn::Error>(())
/// ```
impl fmt::Display for PreparedPipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

impl fmt::Debug for PreparedPipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedPipeline")
            .field("stages", &self.stages)
            .field("input", &self.input.as_ref().map(|i| i.len()))
            .field("sigpipe_is_failure", &self.sigpipe_is_failure)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A running pipeline. Dropping it aborts every stage (SIGTERM to all,
/// one shared grace, SIGKILL to those still running) and reaps them all:
/// no zombie is left.
///
/// ```
/// use safespawn::Command;
/// let running = (Command::new("sleep").arg("30") | Command::new("sleep").arg("30")).spawn()?;
/// let pids: Vec<i32> = running.pids().collect();
/// assert_eq!(pids.len(), 2);
/// drop(running); // both killed and reaped
/// # Ok::<(), safespawn::Error>(())
/// ```
#[derive(Debug)]
pub struct RunningPipeline {
    stages: Vec<Slot>,
    shared: Arc<Shared>,
}

impl RunningPipeline {
    /// The stages' pids, in stage order.
    ///
    /// ```
    /// use safespawn::Command;
    /// let running = (Command::new("true") | Command::new("true")).spawn()?;
    /// assert!(running.pids().all(|pid| pid > 0));
    /// # running.wait()?;
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn pids(&self) -> impl Iterator<Item = i32> + '_ {
        self.stages.iter().filter_map(|s| match s {
            Slot::Running(r) => Some(r.pid()),
            _ => None,
        })
    }

    /// The number of stages.
    ///
    /// ```
    /// use safespawn::Command;
    /// let running = (Command::new("true") | Command::new("true")).spawn()?;
    /// assert_eq!(running.len(), 2);
    /// # running.wait()?;
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// Always `false`: a pipeline has at least one stage.
    ///
    /// ```
    /// use safespawn::Command;
    /// let running = (Command::new("true") | Command::new("true")).spawn()?;
    /// assert!(!running.is_empty());
    /// # running.wait()?;
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// Stage `i`'s child, for its pid, its pidfd, a signal or its piped
    /// stderr ([`Running::take_stderr`]). It stays the pipeline's: waited
    /// for by [`wait`](RunningPipeline::wait), aborted on drop.
    ///
    /// ```
    /// use safespawn::{Command, Stdio};
    /// use std::io::Read;
    /// let mut running = (Command::new("sh").args(["-c", "echo oops >&2"]).stderr(Stdio::piped())
    ///     | Command::new("cat")).spawn()?;
    /// let mut err = String::new();
    /// running.stage_mut(0).unwrap().take_stderr().unwrap().read_to_string(&mut err).unwrap();
    /// assert_eq!(err, "oops\n");
    /// # running.wait()?;
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn stage_mut(&mut self, i: usize) -> Option<&mut Running> {
        match self.stages.get_mut(i) {
            Some(Slot::Running(r)) => Some(r),
            _ => None,
        }
    }

    /// The parent's end of the first stage's stdin, when it is piped
    /// ([`Pipeline::input`], or [`Stdio::piped`] on the first stage), once.
    ///
    /// ```
    /// use safespawn::{Command, Stdio};
    /// use std::io::{Read, Write};
    /// let mut running = (Command::new("cat").stdin(Stdio::piped())
    ///     | Command::new("tr").args(["a-z", "A-Z"]).stdout(Stdio::piped())).spawn()?;
    /// running.take_stdin().unwrap().write_all(b"abc")?;  // dropped: end-of-file
    /// let mut s = String::new();
    /// running.take_stdout().unwrap().read_to_string(&mut s)?;
    /// assert_eq!(s, "ABC");
    /// # running.wait()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn take_stdin(&mut self) -> Option<PipeWriter> {
        self.stage_mut(0).and_then(Running::take_stdin)
    }

    /// The parent's end of the last stage's stdout, when it is piped, once.
    ///
    /// ```
    /// use safespawn::{Command, Stdio};
    /// let mut running = (Command::new("true") | Command::new("cat").stdout(Stdio::piped())).spawn()?;
    /// assert!(running.take_stdout().is_some());
    /// assert!(running.take_stdout().is_none());
    /// # running.wait()?;
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn take_stdout(&mut self) -> Option<PipeReader> {
        let last = self.stages.len().checked_sub(1)?;
        self.stage_mut(last).and_then(Running::take_stdout)
    }

    /// Waits for every stage, in order, and reaps it; no status is an
    /// error ([`PipelineStatus::check`] applies pipefail). A piped first
    /// stdin not taken is closed first, so that stage sees end-of-file.
    /// Allocates nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when waiting for a stage fails (see
    /// [`Running::wait`]); the stages not yet waited for are aborted and
    /// reaped.
    ///
    /// # References
    ///
    /// As [`Running::wait`].
    ///
    /// ```
    /// use safespawn::Command;
    /// let st = (Command::new("true") | Command::new("sh").args(["-c", "exit 3"])).spawn()?.wait()?;
    /// assert_eq!(st.last().code(), Some(3));
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn wait(mut self) -> Result<PipelineStatus, Error> {
        drop(self.take_stdin());
        for slot in self.stages.iter_mut() {
            if let Slot::Running(r) = std::mem::replace(slot, Slot::Moving) {
                *slot = Slot::Finished(r.wait()?);
            }
        }
        Ok(self.into_status())
    }

    /// Aborts every stage (SIGTERM, one grace shared by all, SIGKILL to
    /// those still running) and reaps them; a stage that had ended keeps
    /// its own status.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when a stage cannot be reaped; the others are still
    /// signalled and reaped (on drop).
    ///
    /// # References
    ///
    /// As [`Running::abort`].
    ///
    /// ```
    /// use safespawn::Command;
    /// let running = (Command::new("sleep").arg("30") | Command::new("sleep").arg("30")).spawn()?;
    /// let st = running.abort()?;
    /// assert!(st.iter().all(|s| s.signal() == Some(15)));
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn abort(mut self) -> Result<PipelineStatus, Error> {
        self.abort_stages();
        for slot in self.stages.iter_mut() {
            if let Slot::Running(r) = std::mem::replace(slot, Slot::Moving) {
                *slot = Slot::Finished(r.wait()?);
            }
        }
        Ok(self.into_status())
    }

    /// TERM to every stage still running, one shared grace, KILL to those
    /// still running; reaps what has ended. Allocates nothing.
    fn abort_stages(&mut self) {
        let mut any = false;
        for slot in self.stages.iter_mut() {
            if let Slot::Running(r) = slot {
                if matches!(r.try_wait(), Ok(None)) {
                    let _ = r.signal(Signal::TERM);
                    any = true;
                }
            }
        }
        if !any {
            return;
        }
        let deadline = Instant::now() + ABORT_GRACE;
        for slot in self.stages.iter_mut() {
            if let Slot::Running(r) = slot {
                let left = deadline.saturating_duration_since(Instant::now());
                let _ = r.wait_timeout(left);
            }
        }
        for slot in self.stages.iter_mut() {
            if let Slot::Running(r) = slot {
                if matches!(r.try_wait(), Ok(None)) {
                    let _ = r.signal(Signal::KILL);
                }
            }
        }
    }

    /// The statuses, in the same vector (all stages are `Finished`).
    fn into_status(mut self) -> PipelineStatus {
        PipelineStatus {
            stages: std::mem::take(&mut self.stages),
            shared: self.shared.clone(),
        }
    }
}

impl Drop for RunningPipeline {
    fn drop(&mut self) {
        self.abort_stages();
        // Each Running's own drop reaps it (the KILL is sent: at once).
        let stages = std::mem::take(&mut self.stages);
        self.shared.pool.put(stages);
    }
}

/// How every stage of a pipeline ended, in stage order.
///
/// ```
/// use safespawn::Command;
/// let st = (Command::new("true") | Command::new("false") | Command::new("true")).status()?;
/// let codes: Vec<Option<i32>> = st.iter().map(|s| s.code()).collect();
/// assert_eq!(codes, [Some(0), Some(1), Some(0)]);
/// assert_eq!(st.failed_stage(), Some(1));
/// for (i, stage) in st.iter().enumerate() {
///     println!("stage {i}: {:?}", stage.status());
/// }
/// # Ok::<(), safespawn::Error>(())
/// ```
#[derive(Debug)]
pub struct PipelineStatus {
    stages: Vec<Slot>,
    shared: Arc<Shared>,
}

impl PipelineStatus {
    /// Every stage's outcome, in stage order.
    ///
    /// ```
    /// use safespawn::Command;
    /// let st = (Command::new("true") | Command::new("true")).status()?;
    /// assert_eq!(st.iter().count(), 2);
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn iter(&self) -> Stages<'_> {
        Stages(self.stages.iter())
    }

    /// Stage `i`'s outcome.
    ///
    /// ```
    /// use safespawn::Command;
    /// let st = (Command::new("false") | Command::new("true")).status()?;
    /// assert_eq!(st.get(0).unwrap().code(), Some(1));
    /// assert!(st.get(2).is_none());
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn get(&self, i: usize) -> Option<&Finished> {
        self.iter().nth(i)
    }

    /// The last stage's outcome (what a shell without `pipefail` reports).
    ///
    /// ```
    /// use safespawn::Command;
    /// let st = (Command::new("false") | Command::new("true")).status()?;
    /// assert!(st.last().success());
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn last(&self) -> &Finished {
        let n = self.stages.len();
        self.iter()
            .nth(n.saturating_sub(1))
            .unwrap_or_else(|| unreachable!("a pipeline has a stage"))
    }

    /// The number of stages.
    ///
    /// ```
    /// use safespawn::Command;
    /// assert_eq!((Command::new("true") | Command::new("true")).status()?.len(), 2);
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// Always `false`: a pipeline has at least one stage.
    ///
    /// ```
    /// use safespawn::Command;
    /// assert!(!(Command::new("true") | Command::new("true")).status()?.is_empty());
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// The stage pipefail reports: the rightmost that failed (exited
    /// non-zero or was killed by a signal; an upstream stage's `SIGPIPE`
    /// only with [`Pipeline::sigpipe_is_failure`]); `None` when none did.
    ///
    /// ```
    /// use safespawn::Command;
    /// let st = (Command::new("false") | Command::new("false") | Command::new("true")).status()?;
    /// assert_eq!(st.failed_stage(), Some(1));
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn failed_stage(&self) -> Option<usize> {
        let n = self.len();
        let sigpipe_ok = !self.shared.sigpipe_is_failure;
        self.iter().enumerate().rev().find_map(|(i, f)| {
            let status = f.status();
            let sigpipe = i + 1 < n && status.signal() == Some(libc::SIGPIPE);
            let tolerated = status.success() || (sigpipe && sigpipe_ok);
            (!tolerated).then_some(i)
        })
    }

    /// Whether no stage failed ([`failed_stage`](PipelineStatus::failed_stage) is `None`).
    ///
    /// ```
    /// use safespawn::Command;
    /// assert!((Command::new("true") | Command::new("true")).status()?.success());
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn success(&self) -> bool {
        self.failed_stage().is_none()
    }

    /// `Ok` when no stage failed, else [`Error::Pipeline`] naming the
    /// stage pipefail reports.
    ///
    /// # Errors
    ///
    /// [`Error::Pipeline`] with the stage's index, program, command line
    /// and status, and an empty `stderr` (the status alone has none; a
    /// synchronous [`run`](PreparedPipeline::run) fills it).
    ///
    /// ```
    /// use safespawn::Command;
    /// let st = (Command::new("true") | Command::new("sh").args(["-c", "kill -9 $$"])).status()?;
    /// assert_eq!(st.check().unwrap_err().to_string(),
    ///     "pipeline stage 1 (sh -c 'kill -9 $$') was killed by signal 9");
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn check(&self) -> Result<(), Error> {
        self.check_with(|_| String::new())
    }

    fn check_with(&self, stderr: impl FnOnce(usize) -> String) -> Result<(), Error> {
        let Some(i) = self.failed_stage() else {
            return Ok(());
        };
        let Some(f) = self.get(i) else {
            return Ok(());
        };
        Err(Error::Pipeline {
            stage: i,
            program: self
                .shared
                .programs
                .get(i)
                .map(|p| p.to_string())
                .unwrap_or_default(),
            command: f.line().to_string(),
            status: f.status(),
            stderr: stderr(i),
        })
    }
}

/// The stages of a [`PipelineStatus`], in stage order
/// ([`PipelineStatus::iter`]).
///
/// ```
/// use safespawn::Command;
/// let st = (Command::new("true") | Command::new("false")).status()?;
/// let mut stages = st.iter();
/// assert_eq!(stages.len(), 2);
/// assert!(stages.next().unwrap().success());
/// assert!(!stages.next().unwrap().success());
/// assert!(stages.next().is_none());
/// # Ok::<(), safespawn::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Stages<'a>(std::slice::Iter<'a, Slot>);

impl<'a> Iterator for Stages<'a> {
    type Item = &'a Finished;
    fn next(&mut self) -> Option<&'a Finished> {
        self.0.next().map(finished)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for Stages<'_> {}

impl DoubleEndedIterator for Stages<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(finished)
    }
}

/// A stage of a status: a status is made only once every stage finished.
fn finished(slot: &Slot) -> &Finished {
    match slot {
        Slot::Finished(f) => f,
        Slot::Running(_) | Slot::Moving => unreachable!("every stage of a status has finished"),
    }
}

/// Every stage's outcome, in stage order.
///
/// ```
/// use safespawn::Command;
/// let st = (Command::new("true") | Command::new("true")).status()?;
/// for stage in &st {
///     assert!(stage.success());
/// }
/// # Ok::<(), safespawn::Error>(())
/// ```
impl<'a> IntoIterator for &'a PipelineStatus {
    type Item = &'a Finished;
    type IntoIter = Stages<'a>;
    fn into_iter(self) -> Stages<'a> {
        self.iter()
    }
}

impl Drop for PipelineStatus {
    fn drop(&mut self) {
        let stages = std::mem::take(&mut self.stages);
        self.shared.pool.put(stages);
    }
}

/// What a synchronous pipeline run returns: every stage's status, the last
/// stage's stdout and each stage's stderr, where they are piped.
///
/// ```
/// use safespawn::Command;
/// let out = (Command::new("printf").arg("a\\nb\\n") | Command::new("wc").arg("-l")).output()?;
/// assert!(out.status.success());
/// assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");
/// assert_eq!(out.stderr.len(), 2);
/// # Ok::<(), safespawn::Error>(())
/// ```
#[derive(Debug)]
pub struct PipelineOutput {
    /// Every stage's status.
    pub status: PipelineStatus,
    /// What the last stage wrote to stdout, when it is piped
    /// ([`Pipeline::output`] pipes it); else empty.
    pub stdout: Vec<u8>,
    /// What each stage wrote to stderr, in stage order, for the stages
    /// whose stderr is [`Stdio::piped`]; empty for the others.
    pub stderr: Vec<Vec<u8>>,
}

impl PipelineOutput {
    /// [`PipelineStatus::check`], with the failing stage's captured stderr.
    fn check_with_stderr(&self) -> Result<(), Error> {
        self.status.check_with(|i| {
            self.stderr
                .get(i)
                .map(|e| crate::buffered::tail(e, crate::buffered::STDERR_TAIL))
                .unwrap_or_default()
        })
    }
}
