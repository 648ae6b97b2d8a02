//! The async driver of a buffered run: the same streams, schedule and
//! decisions as the poll loop (`poll.rs`), waited for through the runtime's
//! reactor instead of `poll(2)`. Each pipe (non-blocking already) is
//! registered once for its direction and the child's exit is awaited as
//! [`Running::wait_async`] does; a stream is tried first and waited for
//! only when it would block, and readiness is a hint (see `crate::runtime`).
//!
//! One poll of the driver does a bounded amount of work (each stream's
//! share of a wake-up, a few rounds of them), then yields to the runtime,
//! so a child streaming at full speed cannot starve the other tasks of a
//! current-thread runtime.
//!
//! SIGPIPE: the poll loop blocks it in its thread for the whole run; here
//! the writes run on whatever thread polls the future, so it is blocked
//! around each write instead (see `poll::SigpipeGuard`): three more system
//! calls per wake-up of a writer, against writes of up to a pipe's 1 MiB.

use std::future::poll_fn;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::task::{Context, Poll};
use std::time::Instant;

use super::poll::SigpipeGuard;
use super::state::{self, Next, Schedule};
use super::streams::{Role, Serviced, Stream};
use super::Output;
use crate::error::Error;
use crate::plan::Plan;
use crate::process::Running;
use crate::runtime::{self, Dir, Reactor, Registered, Sleep};

/// Rounds over the streams per poll before yielding to the runtime.
const ROUNDS_PER_POLL: usize = 4;

/// Tries per stream per round (a retry follows each readiness).
const TRIES_PER_ROUND: usize = 3;

/// A pipe registered with the reactor, and whether its last try would
/// have blocked (then its readiness is asked before the next try, which
/// spares a system call per round for a pipe that has nothing to do).
struct Registration {
    fd: Registered<OwnedFd>,
    waiting: bool,
}

impl AsFd for Registration {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// What one stream's turn came to.
enum Turn {
    /// Blocked, with the task registered for its next event.
    Waiting,
    /// Its share is used up and it may have more: come back soon.
    More,
    /// It closed: the schedule may have changed.
    Closed,
}

fn dir(role: &Role<'_>) -> Dir {
    match role {
        Role::Write { .. } => Dir::Write,
        Role::Read { .. } => Dir::Read,
    }
}

/// Drives `streams` and `running` to the end, as `poll::drive` does.
pub(super) async fn drive(
    plan: &Plan,
    mut running: Running,
    streams: Vec<Stream<'_>>,
) -> Result<Output, Error> {
    let reactor = runtime::current()?;
    let mut streams = streams
        .into_iter()
        .map(|s| {
            s.map_fd(|fd, role| {
                Registered::owned(reactor, fd, dir(role))
                    .map(|fd| Registration { fd, waiting: false })
                    .map_err(|e| {
                        Error::Io(std::io::Error::new(
                            e.kind(),
                            format!("registering a pipe with the reactor: {e}"),
                        ))
                    })
            })
        })
        .collect::<Result<Vec<Stream<'_, Registration>>, Error>>()?;
    let mut schedule = Schedule::new(plan, Instant::now());
    let mut timer: Option<Sleep> = None;

    let end = poll_fn(|cx| {
        poll_run(
            cx,
            reactor,
            &mut running,
            &mut streams,
            &mut schedule,
            &mut timer,
        )
    })
    .await?;
    match end {
        Next::TimedOut => {
            state::last_reads(&mut streams)?;
            running.abort_async().await?;
            return Err(schedule.timeout_error(plan, streams));
        }
        Next::DrainOver => state::last_reads(&mut streams)?,
        Next::Done | Next::Wait { .. } => {}
    }
    // Reaped already: this returns the status kept.
    let status = running.wait_async().await?;
    Ok(state::output(status, streams))
}

/// One poll of the run: services what is ready and watches the child until
/// the schedule says the run is over (`Ready` with that `Next`), everything
/// waits (`Pending`, the task registered with each stream, the pidfd and the
/// timer), or the poll's share of work is used up (`Pending`, woken at once).
fn poll_run(
    cx: &mut Context<'_>,
    reactor: Reactor,
    running: &mut Running,
    streams: &mut [Stream<'_, Registration>],
    schedule: &mut Schedule,
    timer: &mut Option<Sleep>,
) -> Poll<Result<Next, Error>> {
    for _ in 0..ROUNDS_PER_POLL {
        let wake = match schedule.next(Instant::now(), streams) {
            Next::Wait { wake } => wake,
            end => return Poll::Ready(Ok(end)),
        };
        // Something changed: decide again now.
        let mut again = false;
        // A stream has more than its share: come back after the others.
        let mut more = false;
        for s in streams.iter_mut().filter(|s| s.is_open()) {
            match turn(s, cx) {
                Ok(Turn::Waiting) => {}
                Ok(Turn::More) => more = true,
                Ok(Turn::Closed) => again = true,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        if !schedule.exited() {
            match running.poll_exit(cx) {
                Poll::Ready(Ok(_)) => {
                    schedule.child_exited(Instant::now());
                    again = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        if !again && !more {
            match wake {
                Some(at) => {
                    if Sleep::arm(timer, reactor, at).poll_fired(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
                None => return Poll::Pending,
            }
        }
    }
    // The share of this poll is used up: let the runtime run other tasks.
    cx.waker().wake_by_ref();
    Poll::Pending
}

/// One stream's turn: service it, and when it would block ask its
/// registration; a readiness that came meanwhile means another try. A
/// stream left waiting is asked first.
fn turn(s: &mut Stream<'_, Registration>, cx: &mut Context<'_>) -> Result<Turn, Error> {
    let dir = dir(&s.role);
    for _ in 0..TRIES_PER_ROUND {
        if let Some(reg) = s.fd.as_mut() {
            if reg.waiting {
                match reg.fd.poll_ready(dir, cx) {
                    Poll::Pending => return Ok(Turn::Waiting),
                    Poll::Ready(Ok(())) => reg.waiting = false,
                    Poll::Ready(Err(e)) => {
                        return Err(Error::Io(std::io::Error::new(
                            e.kind(),
                            format!("waiting for the child's pipes: {e}"),
                        )))
                    }
                }
            }
        }
        let serviced = match dir {
            Dir::Read => s.service()?,
            Dir::Write => {
                let mut guard = SigpipeGuard::new();
                let serviced = s.service();
                guard.saw_epipe = matches!(serviced, Ok(Serviced::Epipe));
                drop(guard);
                serviced?
            }
        };
        match serviced {
            Serviced::Blocked => match s.fd.as_mut() {
                Some(reg) => reg.waiting = true,
                None => return Ok(Turn::Closed),
            },
            Serviced::More => return Ok(Turn::More),
            Serviced::Closed | Serviced::Epipe => return Ok(Turn::Closed),
        }
    }
    Ok(Turn::More)
}
