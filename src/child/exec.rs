//! The last steps: the working directory, and `execve` itself.

use std::convert::Infallible;
use std::ffi::CStr;

use super::report::{At, Failure};
use crate::error::Stage;
use crate::frozen::{CStrArray, Frozen};
use crate::sys;

/// What `execve` gets, and where it runs.
pub(crate) struct Exec {
    /// The resolved program path.
    pub path: Frozen<CStr>,
    pub argv: CStrArray,
    pub envp: CStrArray,
    pub cwd: Option<Frozen<CStr>>,
}

/// `chdir(2)` into `dir`, if there is one.
pub(crate) fn chdir(dir: Option<&CStr>) -> Result<(), Failure> {
    match dir {
        Some(dir) => rustix::process::chdir(dir).at(Stage::Chdir),
        None => Ok(()),
    }
}

/// `execve(2)`: returns only on failure.
pub(crate) fn exec(exec: &Exec) -> Result<Infallible, Failure> {
    // SAFETY: argv and envp are the null-terminated pointer arrays of the
    // plan, which outlives this call.
    let errno = unsafe { sys::clone::execve(&exec.path, exec.argv.as_ptr(), exec.envp.as_ptr()) };
    Err(errno).at(Stage::Exec)
}
