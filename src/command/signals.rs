//! What the child does with the parent's signal dispositions and mask.

use super::Command;
use crate::child::signals::SignalPolicy;
use crate::mode::Mode;
use crate::sys;

/// What a command records about signals.
#[derive(Debug, Default)]
pub(crate) struct SignalConfig {
    pub keep_mask: bool,
    pub keep_ignored: bool,
}

impl<M: Mode> Command<M> {
    /// Keeps the parent's signal mask in the child instead of emptying it
    /// (for nohup-style callers).
    ///
    /// # References
    ///
    /// [`sigprocmask(2)`](https://man7.org/linux/man-pages/man2/sigprocmask.2.html);
    /// any Linux.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("true").keep_signal_mask();
    /// # drop(cmd);
    /// ```
    pub fn keep_signal_mask(mut self) -> Self {
        self.cfg.signals.keep_mask = true;
        self
    }

    /// Keeps signals the parent ignores ignored in the child instead of
    /// resetting them to their default action. Without it, the signals
    /// ignored when `build()` runs are reset (see the crate's safety model).
    ///
    /// # References
    ///
    /// [`sigaction(2)`](https://man7.org/linux/man-pages/man2/sigaction.2.html);
    /// any Linux (the kernel's own reset of handlers, `CLONE_CLEAR_SIGHAND`,
    /// is used from Linux 5.5).
    ///
    /// ```
    /// let cmd = safespawn::Command::new("true").keep_ignored_signals();
    /// # drop(cmd);
    /// ```
    pub fn keep_ignored_signals(mut self) -> Self {
        self.cfg.signals.keep_ignored = true;
        self
    }
}

impl SignalConfig {
    /// The policy, with the signals this process ignores now.
    pub(crate) fn freeze(&self) -> SignalPolicy {
        SignalPolicy {
            keep_mask: self.keep_mask,
            keep_ignored: self.keep_ignored,
            ignored_at_build: if self.keep_ignored {
                0
            } else {
                sys::signal::ignored_signals()
            },
        }
    }
}
