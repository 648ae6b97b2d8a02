//! The caller's `pre_exec` hooks.

use super::report::{At, Failure};
use crate::error::Stage;
use crate::frozen::{Frozen, Hook};

/// Runs every hook in order; the first `Err` stops the child.
pub(crate) fn run(hooks: &Frozen<[Hook]>) -> Result<(), Failure> {
    for hook in hooks.iter() {
        hook().at(Stage::Hook)?;
    }
    Ok(())
}
