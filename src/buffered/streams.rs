//! The pipes of one buffered run, from the parent's side, and servicing
//! one of them when it may be ready: the read and write logic both drivers
//! share (the poll loop and the reactor's), which differ only in how they
//! wait.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use rustix::io::Errno;
use rustix::pipe::PipeFlags;

use crate::child::fds::{SLOT_SEND_BUFFERS, SLOT_STDERR, SLOT_STDIN, SLOT_STDOUT};
use crate::error::Error;
use crate::plan::Plan;
use crate::sys;

/// The least free space offered to one `read`: a default pipe's capacity.
const READ_CHUNK: usize = 64 * 1024;

/// At most this many reads per stream per wake-up, so one busy stream cannot
/// starve the others.
const READS_PER_WAKE: usize = 8;

/// One pipe the loop services, from the parent's side: `F` is the fd
/// itself for the poll loop, the fd registered with a reactor for the
/// async driver.
pub(crate) struct Stream<'d, F = OwnedFd> {
    /// `None` once closed.
    pub fd: Option<F>,
    pub role: Role<'d>,
}

/// What one [`Stream::service`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Serviced {
    /// The pipe is empty (a read) or full (a write): wait for it.
    Blocked,
    /// The stream's share of this wake-up is used up; it may have more.
    More,
    /// The stream is closed: end-of-file read, or everything written.
    Closed,
    /// A write found the child's end closed (`EPIPE`): writing stopped and
    /// the stream is closed.
    Epipe,
}

pub(crate) enum Role<'d> {
    /// Writes `data[done..]` to the child.
    Write { data: &'d [u8], done: usize },
    /// Reads what the child writes.
    Read { buf: Vec<u8>, slot: usize },
}

/// The pipe buffer size asked for (the default is 64 KiB).
const PIPE_SIZE: usize = 1 << 20;

/// The per-spawn pipes: the parent's ends (with their roles) and the raw
/// child ends handed to `spawn` as the slot fds.
pub(super) struct Pipes<'d> {
    pub streams: Vec<Stream<'d>>,
    /// Indexed by `Src::Slot` number; -1 where there is no pipe.
    pub child_fds: Vec<RawFd>,
    /// Keeps the child ends open until the `Pipes` is taken apart.
    pub child_ends: Vec<OwnedFd>,
}

impl<'d> Pipes<'d> {
    pub(super) fn new(plan: &'d Plan) -> Result<Pipes<'d>, Error> {
        let sends = &plan.send_buffers;
        let mut pipes = Pipes {
            streams: Vec::with_capacity(3 + sends.len()),
            child_fds: vec![-1; SLOT_SEND_BUFFERS + sends.len()],
            child_ends: Vec::with_capacity(3 + sends.len()),
        };
        if plan.stdio_pipes[SLOT_STDIN] {
            let data = plan.buffered.input.as_deref().unwrap_or_default();
            pipes.add_writer(SLOT_STDIN, data)?;
        }
        for slot in [SLOT_STDOUT, SLOT_STDERR] {
            if plan.stdio_pipes[slot] {
                let (parent, child) = sys::fd::pipe(PipeFlags::empty())?;
                pipes.add(
                    slot,
                    parent,
                    child,
                    Role::Read {
                        buf: Vec::new(),
                        slot,
                    },
                )?;
            }
        }
        for (i, (_, data)) in sends.iter().enumerate() {
            pipes.add_writer(SLOT_SEND_BUFFERS + i, data)?;
        }
        Ok(pipes)
    }

    fn add_writer(&mut self, slot: usize, data: &'d [u8]) -> Result<(), Error> {
        let (child, parent) = sys::fd::pipe(PipeFlags::empty())?;
        self.add(slot, parent, child, Role::Write { data, done: 0 })
    }

    fn add(
        &mut self,
        slot: usize,
        parent: OwnedFd,
        child: OwnedFd,
        role: Role<'d>,
    ) -> Result<(), Error> {
        // Bulk transfers ping-pong between two processes one pipe buffer at
        // a time; a larger buffer means fewer wake-ups. Best effort: the
        // kernel caps it (/proc/sys/fs/pipe-max-size) and may refuse.
        let _ = rustix::pipe::fcntl_setpipe_size(&parent, PIPE_SIZE);
        // Only the parent's end: the child's must block as usual.
        rustix::io::ioctl_fionbio(&parent, true)
            .map_err(|e| Error::io("making a pipe non-blocking", e))?;
        self.child_fds[slot] = child.as_raw_fd();
        self.child_ends.push(child);
        // Nothing to write: close at once, the child sees end-of-file.
        let empty = matches!(role, Role::Write { data, .. } if data.is_empty());
        self.streams.push(Stream {
            fd: (!empty).then_some(parent),
            role,
        });
        Ok(())
    }
}

impl<F: AsFd> Stream<'_, F> {
    /// Whether the stream is still open.
    pub(crate) fn is_open(&self) -> bool {
        self.fd.is_some()
    }

    /// Whether it reads from the child.
    pub(crate) fn is_reader(&self) -> bool {
        matches!(self.role, Role::Read { .. })
    }

    /// Does the reads or writes the stream may be ready for, until the
    /// pipe would block, the stream closes, or its share of the wake-up is
    /// used up; `EINTR` is retried. A closed stream does nothing.
    pub(crate) fn service(&mut self) -> Result<Serviced, Error> {
        let Some(fd) = &self.fd else {
            return Ok(Serviced::Closed);
        };
        let fd = fd.as_fd();
        match &mut self.role {
            Role::Write { data, done } => {
                let serviced = write_some(fd, data, done)?;
                if matches!(serviced, Serviced::Closed | Serviced::Epipe) {
                    // All written (end-of-file for the child), or the
                    // child stopped reading.
                    self.fd = None;
                }
                Ok(serviced)
            }
            Role::Read { buf, .. } => {
                let mut reads = 0;
                while reads < READS_PER_WAKE {
                    if buf.capacity() - buf.len() < READ_CHUNK {
                        // Amortised doubling: the copies add up to O(total).
                        buf.reserve(READ_CHUNK);
                    }
                    let offered = buf.capacity() - buf.len();
                    match rustix::io::read(fd, rustix::buffer::spare_capacity(buf)) {
                        Ok(0) => {
                            self.fd = None;
                            return Ok(Serviced::Closed);
                        }
                        // A short read emptied the pipe: back to waiting.
                        Ok(n) if n < offered => return Ok(Serviced::Blocked),
                        Ok(_) => reads += 1,
                        Err(Errno::AGAIN) => return Ok(Serviced::Blocked),
                        Err(Errno::INTR) => {}
                        Err(e) => return Err(Error::io("reading from the child", e)),
                    }
                }
                Ok(Serviced::More)
            }
        }
    }
}

/// Writes `data[*done..]` to the non-blocking `fd` until it is all written
/// (`Closed`: the caller closes `fd`, the child sees end-of-file), the pipe
/// is full (`Blocked`) or the reader is gone (`Epipe`: the caller closes
/// `fd`; not an error). `EINTR` is retried. Straight from the slice: the
/// bytes (maybe a secret) are never copied. The caller keeps SIGPIPE
/// blocked (`poll::SigpipeGuard`).
pub(crate) fn write_some(
    fd: BorrowedFd<'_>,
    data: &[u8],
    done: &mut usize,
) -> Result<Serviced, Error> {
    loop {
        if *done >= data.len() {
            return Ok(Serviced::Closed);
        }
        match rustix::io::write(fd, &data[*done..]) {
            Ok(0) => return Ok(Serviced::Blocked),
            Ok(n) => *done += n,
            Err(Errno::AGAIN) => return Ok(Serviced::Blocked),
            Err(Errno::INTR) => {}
            Err(Errno::PIPE) => return Ok(Serviced::Epipe),
            Err(e) => return Err(Error::io("writing to the child", e)),
        }
    }
}

impl<'d> Stream<'d> {
    /// The same stream with its fd (if open) turned into `G`, for the
    /// async driver's registrations.
    #[cfg(any(feature = "tokio", feature = "async-io"))]
    pub(super) fn map_fd<G>(
        self,
        f: impl FnOnce(OwnedFd, &Role<'d>) -> Result<G, Error>,
    ) -> Result<Stream<'d, G>, Error> {
        let fd = match self.fd {
            Some(fd) => Some(f(fd, &self.role)?),
            None => None,
        };
        Ok(Stream {
            fd,
            role: self.role,
        })
    }
}
