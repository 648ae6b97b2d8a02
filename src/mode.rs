//! The zero-sized mode markers of the typestate.

mod sealed {
    pub trait Sealed {}
}

/// A command's mode: what it can do once built. Sealed: the three markers
/// [`Direct`], [`Buffered`] and [`Daemon`] are the only modes.
///
/// ```
/// use safespawn::{Command, Direct, Prepared};
/// let p: Prepared<Direct> = Command::new("/bin/true").build().unwrap();
/// # drop(p);
/// ```
pub trait Mode: sealed::Sealed + Send + Sync + 'static {}

/// The default mode: caller-managed stdio, `spawn`, `run` and `status`.
///
/// ```
/// let cmd: safespawn::Command<safespawn::Direct> = safespawn::Command::new("true");
/// # drop(cmd);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Direct;

/// In-memory stdin, captured stdout/stderr, driven by one poll loop; only a
/// synchronous `run` or `output`, never `spawn`.
///
/// ```
/// # fn f(_: safespawn::Command<safespawn::Buffered>) {}
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Buffered;

/// A daemon: double fork, new session, working directory `/`, optional
/// pidfile; `run` waits for the intermediate process and returns both pids.
///
/// ```
/// # fn f(_: safespawn::Command<safespawn::Daemon>) {}
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Daemon;

impl sealed::Sealed for Direct {}
impl sealed::Sealed for Buffered {}
impl sealed::Sealed for Daemon {}
impl Mode for Direct {}
impl Mode for Buffered {}
impl Mode for Daemon {}
