//! The child's one error shape, [`Failure`], and the wire format of its
//! reports (both directions: the child encodes, the parent decodes).
//!
//! A message is 12 bytes, written into the spawning frame (a child of
//! `clone3`, see `spawn::report::Channel`) or to the report pipe with one
//! `write` (below `PIPE_BUF`, so it is atomic): a tag ([`Msg`]), a stage code ([`Stage::code`]) in the low
//! 16 bits of the second word with the failing item (below) in the high 16,
//! and a value (an errno, or the daemon's pid).

use std::os::fd::{BorrowedFd, RawFd};

use rustix::io::Errno;

use crate::error::Stage;
use crate::sys;

/// Message tags on the report pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Msg {
    /// A step failed: the stage and the errno follow.
    Error = 1,
    /// Daemon mode: the intermediate started the daemon; the value is its pid.
    Daemon = 2,
    /// The child reached the pause point of `spawn_paused`.
    Paused = 3,
}

impl Msg {
    fn from_code(code: u32) -> Option<Msg> {
        [Msg::Error, Msg::Daemon, Msg::Paused]
            .into_iter()
            .find(|m| *m as u32 == code)
    }
}

/// The length of one report message.
pub(crate) const MSG_LEN: usize = 12;

/// A step of the child failed: where, and the errno of the failing call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Failure {
    pub stage: Stage,
    pub errno: Errno,
    /// Which item of a repeated step failed, counted from 1 (the mount of a
    /// [`Stage::Mount`] failure, in call order); 0 when the stage has one.
    pub item: u16,
}

/// Tags the error of a raw system call with the step it belongs to:
/// `rustix::process::chdir(dir).at(Stage::Chdir)?`.
pub(crate) trait At<T> {
    fn at(self, stage: Stage) -> Result<T, Failure>;
}

impl<T> At<T> for Result<T, Errno> {
    #[inline]
    fn at(self, stage: Stage) -> Result<T, Failure> {
        self.map_err(|errno| Failure {
            stage,
            errno,
            item: 0,
        })
    }
}

/// Like [`At`], also naming the item (counted from 1) of a repeated step.
pub(crate) trait AtItem<T> {
    fn at_item(self, stage: Stage, item: u16) -> Result<T, Failure>;
}

impl<T> AtItem<T> for Result<T, Errno> {
    #[inline]
    fn at_item(self, stage: Stage, item: u16) -> Result<T, Failure> {
        self.map_err(|errno| Failure { stage, errno, item })
    }
}

/// Encodes a report message. Child-safe.
pub(crate) fn encode(tag: Msg, stage: Stage, item: u16, value: i32) -> [u8; MSG_LEN] {
    let mut m = [0u8; MSG_LEN];
    let (a, rest) = m.split_at_mut(4);
    let (b, c) = rest.split_at_mut(4);
    a.copy_from_slice(&(tag as u32).to_ne_bytes());
    let where_ = stage.code() | (u32::from(item) << 16);
    b.copy_from_slice(&where_.to_ne_bytes());
    c.copy_from_slice(&value.to_ne_bytes());
    m
}

/// A decoded report message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    Failed(Failure),
    /// Daemon mode: the daemon's pid.
    Daemon(i32),
    Paused,
}

/// Decodes a report message; `None` for bytes no child of ours can have
/// written. Parent-side.
pub(crate) fn decode(m: &[u8; MSG_LEN]) -> Option<Report> {
    let (tag, rest) = m.split_first_chunk::<4>()?;
    let (stage, value) = rest.split_first_chunk::<4>()?;
    let value = i32::from_ne_bytes(*value.first_chunk::<4>()?);
    let where_ = u32::from_ne_bytes(*stage);
    let item = (where_ >> 16) as u16;
    let stage = Stage::from_code(where_ & 0xffff);
    match (Msg::from_code(u32::from_ne_bytes(*tag))?, stage) {
        (Msg::Error, Some(stage)) => Some(Report::Failed(Failure {
            stage,
            errno: sys::errno_from_raw(value),
            item,
        })),
        (Msg::Daemon, Some(Stage::Daemon)) if value > 0 && item == 0 => Some(Report::Daemon(value)),
        (Msg::Paused, Some(Stage::Handshake)) if item == 0 => Some(Report::Paused),
        _ => None,
    }
}

/// Writes one message to the report pipe `report`. Child-safe.
pub(crate) fn send(report: RawFd, msg: &[u8; MSG_LEN]) -> Result<(), Errno> {
    // SAFETY: `report` is open in this process until it execs or exits.
    let fd = unsafe { BorrowedFd::borrow_raw(report) };
    rustix::io::retry_on_intr(|| rustix::io::write(fd, msg)).map(drop)
}

/// Reports `failure` to the parent and exits with env(1)'s convention: 127
/// when the program was not found, 126 when it cannot be executed, 125 when
/// set-up failed before exec. The message goes to `in_frame` where that is
/// not null (a child of `clone3`, which shares the suspended parent's
/// memory: see `spawn::clone::Channel`), otherwise to the report pipe
/// `report`. Child-safe.
pub(crate) fn fail(report: RawFd, in_frame: *mut [u8; MSG_LEN], failure: Failure) -> ! {
    let msg = encode(
        Msg::Error,
        failure.stage,
        failure.item,
        failure.errno.raw_os_error(),
    );
    if in_frame.is_null() {
        // Nothing can be done if this fails: the exit status still says
        // 125-127.
        let _ = send(report, &msg);
    } else {
        // SAFETY: the message lives in the spawning frame, which is
        // suspended until this process exits (CLONE_VFORK) and reads it
        // only then; nothing else writes it.
        unsafe { in_frame.write_volatile(msg) };
    }
    let code = match (failure.stage, failure.errno) {
        (Stage::Exec, Errno::NOENT) => 127,
        (Stage::Exec, _) => 126,
        _ => 125,
    };
    sys::clone::exit_now(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let failure = Failure {
            stage: Stage::Chdir,
            errno: Errno::NOENT,
            item: 0,
        };
        let m = encode(Msg::Error, failure.stage, 0, libc::ENOENT);
        assert_eq!(decode(&m), Some(Report::Failed(failure)));
        let mount = Failure {
            stage: Stage::Mount,
            errno: Errno::ROFS,
            item: 7,
        };
        let m = encode(Msg::Error, mount.stage, 7, libc::EROFS);
        assert_eq!(decode(&m), Some(Report::Failed(mount)));
        let m = encode(Msg::Daemon, Stage::Daemon, 0, 4321);
        assert_eq!(decode(&m), Some(Report::Daemon(4321)));
        let m = encode(Msg::Paused, Stage::Handshake, 0, 0);
        assert_eq!(decode(&m), Some(Report::Paused));
    }

    #[test]
    fn foreign_bytes_are_refused() {
        assert_eq!(decode(&[0xff; MSG_LEN]), None);
        // A daemon pid must be positive.
        assert_eq!(decode(&encode(Msg::Daemon, Stage::Daemon, 0, 0)), None);
    }
}
