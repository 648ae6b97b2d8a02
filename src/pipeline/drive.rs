//! The poll loop of a synchronous pipeline run: the input into the first
//! stage, the piped stdout of the last and the piped stderr of any stage,
//! serviced together while the stages' exits are watched through their
//! pidfds (the loop of [`Buffered`](crate::Buffered) mode, for many
//! children; see `src/buffered` for the reasons behind each rule).

use std::os::fd::OwnedFd;
use std::time::Instant;

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;

use super::{PipelineOutput, PreparedPipeline, RunningPipeline, Slot};
use crate::buffered::poll::{earliest, poll_timeout, SigpipeGuard};
use crate::buffered::streams::{Role, Serviced, Stream};
use crate::child::fds::{SLOT_STDERR, SLOT_STDOUT};
use crate::command::buffered::DEFAULT_WAIT_DELAY;
use crate::error::Error;
use crate::pidfd::{PID_POLL_FIRST, PID_POLL_MAX};

/// What a poll entry stands for.
#[derive(Clone, Copy)]
enum Entry {
    /// `streams[i]`.
    Stream(usize),
    /// A stage's pidfd.
    Exit,
}

/// One stream of the run and the stage it belongs to.
struct Piped<'d> {
    stage: usize,
    stream: Stream<'d>,
}

/// Makes `fd` non-blocking for the loop.
fn nonblocking(fd: OwnedFd) -> Result<OwnedFd, Error> {
    rustix::io::ioctl_fionbio(&fd, true).map_err(|e| Error::io("making a pipe non-blocking", e))?;
    Ok(fd)
}

/// Runs `running` (just spawned from `prepared`) to its end; on every
/// early return the stages are aborted and reaped (dropping `running`).
pub(super) fn drive(
    prepared: &PreparedPipeline,
    mut running: RunningPipeline,
) -> Result<PipelineOutput, Error> {
    let n = running.stages.len();
    let mut streams: Vec<Piped<'_>> = Vec::with_capacity(n + 2);
    if let Some(w) = running.take_stdin() {
        let data = prepared.input.as_deref().unwrap_or_default();
        // Nothing to write: closed at once, the stage sees end-of-file.
        let fd = if data.is_empty() {
            None
        } else {
            Some(nonblocking(w.into())?)
        };
        streams.push(Piped {
            stage: 0,
            stream: Stream {
                fd,
                role: Role::Write { data, done: 0 },
            },
        });
    }
    if let Some(r) = running.take_stdout() {
        streams.push(Piped {
            stage: n - 1,
            stream: Stream {
                fd: Some(nonblocking(r.into())?),
                role: Role::Read {
                    buf: Vec::new(),
                    slot: SLOT_STDOUT,
                },
            },
        });
    }
    for k in 0..n {
        if let Some(r) = running.stage_mut(k).and_then(|s| s.take_stderr()) {
            streams.push(Piped {
                stage: k,
                stream: Stream {
                    fd: Some(nonblocking(r.into())?),
                    role: Role::Read {
                        buf: Vec::new(),
                        slot: SLOT_STDERR,
                    },
                },
            });
        }
    }
    let writes = streams.iter().any(|p| {
        p.stream.fd.is_some() && p.stage == 0 && matches!(p.stream.role, Role::Write { .. })
    });
    let mut sigpipe = writes.then(SigpipeGuard::new);

    let start = Instant::now();
    let timeout_at = prepared.timeout.and_then(|t| start.checked_add(t));
    let mut exited = vec![false; n];
    let mut all_exited = false;
    let mut drain_until: Option<Instant> = None;
    let mut pid_poll = PID_POLL_FIRST;
    let mut ready: Vec<(Entry, PollFlags)> = Vec::with_capacity(streams.len() + n);

    loop {
        let now = Instant::now();
        let open = streams.iter().any(|p| p.stream.fd.is_some());
        if all_exited {
            if !open {
                break;
            }
            if drain_until.is_some_and(|until| now >= until) {
                read_what_is_there(&mut streams)?;
                break;
            }
        } else if timeout_at.is_some_and(|at| now >= at) {
            read_what_is_there(&mut streams)?;
            let (stdout, stderr) = collect(streams, n);
            drop(sigpipe);
            running.abort()?;
            return Err(Error::Timeout {
                command: prepared.line.to_string(),
                timeout: prepared.timeout.unwrap_or_default(),
                stdout,
                stderr: stderr.concat(),
            });
        }
        let mut wake = if all_exited { drain_until } else { timeout_at };

        ready.clear();
        let mut watch_by_pid = false;
        let polled = {
            let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(streams.len() + n);
            for (i, p) in streams.iter().enumerate() {
                if let Some(fd) = &p.stream.fd {
                    let events = match p.stream.role {
                        Role::Write { .. } => PollFlags::OUT,
                        Role::Read { .. } => PollFlags::IN,
                    };
                    fds.push(PollFd::new(fd, events));
                    ready.push((Entry::Stream(i), PollFlags::empty()));
                }
            }
            for (k, slot) in running.stages.iter().enumerate() {
                if exited[k] {
                    continue;
                }
                let Slot::Running(r) = slot else { continue };
                match r.pollable_pidfd() {
                    Some(pidfd) => {
                        fds.push(PollFd::from_borrowed_fd(pidfd, PollFlags::IN));
                        ready.push((Entry::Exit, PollFlags::empty()));
                    }
                    None => watch_by_pid = true,
                }
            }
            if watch_by_pid {
                wake = earliest(wake, now.checked_add(pid_poll));
                pid_poll = pid_poll.saturating_mul(2).min(PID_POLL_MAX);
            }
            let polled = rustix::event::poll(&mut fds, poll_timeout(wake, now).as_ref());
            for (r, fd) in ready.iter_mut().zip(fds.iter()) {
                r.1 = fd.revents();
            }
            polled
        };
        match polled {
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::io("polling the pipeline's pipes", e)),
        }

        let mut check_exits = watch_by_pid;
        for &(entry, revents) in &ready {
            if revents.is_empty() {
                continue;
            }
            match entry {
                Entry::Exit => check_exits = true,
                Entry::Stream(i) => {
                    if streams[i].stream.service()? == Serviced::Epipe {
                        if let Some(g) = sigpipe.as_mut() {
                            g.saw_epipe = true;
                        }
                    }
                }
            }
        }
        if check_exits {
            for (k, slot) in running.stages.iter_mut().enumerate() {
                if let (false, Slot::Running(r)) = (exited[k], slot) {
                    exited[k] = r.try_wait()?.is_some();
                }
            }
            if exited.iter().all(|&e| e) {
                all_exited = true;
                drain_until = Instant::now().checked_add(DEFAULT_WAIT_DELAY);
            }
        }
    }

    let status = running.wait()?;
    let (stdout, stderr) = collect(streams, n);
    drop(sigpipe);
    Ok(PipelineOutput {
        status,
        stdout,
        stderr,
    })
}

/// One last read of every read stream (what the pipes hold already).
fn read_what_is_there(streams: &mut [Piped<'_>]) -> Result<(), Error> {
    for p in streams.iter_mut() {
        if matches!(p.stream.role, Role::Read { .. }) {
            while p.stream.service()? == Serviced::More {}
        }
    }
    Ok(())
}

/// The captured last stdout and each stage's stderr; closes every stream.
fn collect(streams: Vec<Piped<'_>>, n: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut stdout = Vec::new();
    let mut stderr = vec![Vec::new(); n];
    for p in streams {
        if let Role::Read { buf, slot } = p.stream.role {
            if slot == SLOT_STDOUT {
                stdout = buf;
            } else if let Some(e) = stderr.get_mut(p.stage) {
                *e = buf;
            }
        }
    }
    (stdout, stderr)
}
