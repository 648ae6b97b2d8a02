//! The pause of `spawn_paused` (libvirt's handshake): the child tells the
//! parent it is ready, then blocks until the parent resumes it.

use std::os::fd::BorrowedFd;

use rustix::io::Errno;

use super::report::{self, At, Failure, Msg};
use super::Carried;
use crate::error::Stage;

/// Waits for `resume()`, if this spawn is a paused one (it has a pause
/// pipe); a parent that dropped the `Paused` without resuming is
/// `ECANCELED`.
pub(crate) fn wait(carried: &Carried) -> Result<(), Failure> {
    if carried.pause < 0 {
        return Ok(());
    }
    let msg = report::encode(Msg::Paused, Stage::Handshake, 0, 0);
    report::send(carried.report, &msg).at(Stage::Handshake)?;
    // SAFETY: the pause pipe's read end is open in this process.
    let pause = unsafe { BorrowedFd::borrow_raw(carried.pause) };
    let mut byte = [0u8; 1];
    match rustix::io::retry_on_intr(|| rustix::io::read(pause, &mut byte)).at(Stage::Handshake)? {
        1 => Ok(()),
        _ => Err(Errno::CANCELED).at(Stage::Handshake),
    }
}
