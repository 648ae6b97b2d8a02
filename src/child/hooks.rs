//! The caller's hooks: `pre_exec_privileged` (before the credentials) and
//! `pre_exec` (after every set-up step); both lists run here.
//!
//! # A hook that panics
//!
//! A hook must not panic (see `Command::pre_exec`), but a bug in one must
//! not turn into something worse: unwinding out of the hook would run the
//! destructors of every frame above it, which in a `fork` child are the
//! caller's frames (the spawning call, the test or server loop around it),
//! in a copy of a possibly multi-threaded process, and finally return into
//! the caller's code as if the spawn had happened there. So each hook runs
//! inside [`std::panic::catch_unwind`], and a caught panic is the hook
//! failure `ENOTRECOVERABLE`: it takes the same path as a hook's own `Err`
//! (reported on the report pipe, exit 125, the daemon's intermediate reaps a
//! failed daemon), and the payload is leaked, not dropped.
//!
//! `catch_unwind` rather than a guard whose `Drop` reports and `_exit`s
//! during the unwinding: the unwinder's first phase looks for a *catch*
//! frame before it runs any cleanup, and a guard is only a cleanup. With no
//! catch frame above, the unwinder gives up and std aborts the child
//! (SIGABRT, no report): that is the case on a thread C code created, and in
//! a daemon, whose outermost frame is the `extern "C"` entry of its `clone`.
//! Catching here needs no frame above the hook at all, and the search ends
//! at this frame instead of walking the copy of the caller's stack.
//!
//! What still runs in the child, from the `panic!` to the catch, is std's
//! panic runtime, which the child contract otherwise forbids: the panic
//! count (thread-locals), the process's panic hook (by default it formats
//! the message, takes std's stderr lock and writes to the child's fd 2 as
//! placed by then, and with `RUST_BACKTRACE` captures a backtrace), the
//! payload and exception allocations, the unwinder reading the unwind
//! tables (glibc's `_dl_find_object`, or `dl_iterate_phdr` and the loader
//! lock on older systems), the destructors of the hook's own locals, and
//! the exception's deallocation at the catch. On stable Rust there is no
//! way to stop the runtime before the panic hook (`panic::always_abort` is
//! unstable, and replacing the process-wide panic hook is not a library's
//! call to make and takes a lock itself). So this is damage limitation for
//! a hook that broke its contract: if another thread of the parent held one
//! of those locks at the fork, the child can block instead of reporting,
//! as it could before. What is guaranteed is that no frame above the hook
//! unwinds. Under `panic = "abort"` nothing unwinds at all: the child dies
//! of SIGABRT after the panic message, before any catch.

use std::panic::{catch_unwind, AssertUnwindSafe};

use rustix::io::Errno;

use super::report::{At, Failure};
use crate::error::Stage;
use crate::frozen::{Frozen, Hook};

/// The errno of a hook that panicked ("state not recoverable"); documented
/// on `Command::pre_exec` and `Stage::Hook`.
pub(crate) const PANICKED: Errno = Errno::NOTRECOVERABLE;

/// Runs every hook in order; the first `Err`, or the first panic (as
/// [`PANICKED`]), stops the child.
pub(crate) fn run(hooks: &Frozen<[Hook]>) -> Result<(), Failure> {
    for hook in hooks.iter() {
        // AssertUnwindSafe: after a panic nothing reads the state the hook
        // may have left half-changed; the child reports and exits.
        match catch_unwind(AssertUnwindSafe(|| hook())) {
            Ok(result) => result.at(Stage::Hook)?,
            Err(payload) => {
                // Dropping the payload would run arbitrary code and free
                // memory; the process is about to exit anyway.
                std::mem::forget(payload);
                return Err(PANICKED).at(Stage::Hook);
            }
        }
    }
    Ok(())
}
