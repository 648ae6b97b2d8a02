//! Process attributes: the umask and resource limits.

use rustix::fs::Mode;
use rustix::process::{Resource, Rlimit};

use super::report::{At, Failure};
use crate::error::Stage;
use crate::frozen::Frozen;

/// The process attributes the child sets.
#[derive(Debug, Default)]
pub(crate) struct ProcessAttrs {
    pub umask: Option<Mode>,
    /// Applied in the order given.
    pub rlimits: Frozen<[(Resource, Rlimit)]>,
}

/// `umask(2)` (0 is a valid mask; the call cannot fail), then each
/// `setrlimit(2)` in order.
pub(crate) fn apply(attrs: &ProcessAttrs) -> Result<(), Failure> {
    if let Some(mask) = attrs.umask {
        rustix::process::umask(mask);
    }
    for (resource, limit) in attrs.rlimits.iter() {
        rustix::process::setrlimit(*resource, *limit).at(Stage::Rlimit)?;
    }
    Ok(())
}
