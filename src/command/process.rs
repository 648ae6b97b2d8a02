//! Process attributes: the umask and resource limits.

use rustix::fs::Mode as FileMode;
use rustix::process::{Resource, Rlimit};

use super::Command;
use crate::child::process::ProcessAttrs;
use crate::error::{BuildErrorKind, Error};
use crate::mode::Mode;

/// What a command records about process attributes.
#[derive(Debug, Default)]
pub(crate) struct ProcessConfig {
    pub umask: Option<u32>,
    /// (resource, soft, hard), in call order.
    pub rlimits: Vec<(Resource, u64, u64)>,
}

impl<M: Mode> Command<M> {
    /// The child's umask; 0 is a valid mask (libvirt's SetUmask cannot say so).
    ///
    /// # Errors
    ///
    /// `build()` refuses a mask with bits outside `0o777`
    /// ([`BuildErrorKind::Invalid`]).
    ///
    /// # References
    ///
    /// [`umask(2)`](https://man7.org/linux/man-pages/man2/umask.2.html); any Linux.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("sh").args(["-c", "test $(umask) = 0027"]).umask(0o027);
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn umask(mut self, mode: u32) -> Self {
        self.cfg.process.umask = Some(mode);
        self
    }

    /// A resource limit for the child; `u64::MAX` means unlimited
    /// (libvirt's SetMaxFiles, SetMaxProcesses, ...). Applied in call order,
    /// before the uid changes, so a hard limit can still be raised.
    ///
    /// # Errors
    ///
    /// `build()` refuses a soft limit above the hard one
    /// ([`BuildErrorKind::Invalid`]); the kernel's refusal (raising a hard
    /// limit without `CAP_SYS_RESOURCE`) is [`Error::Spawn`] at stage
    /// [`Rlimit`](crate::Stage::Rlimit).
    ///
    /// # References
    ///
    /// [`setrlimit(2)`](https://man7.org/linux/man-pages/man2/setrlimit.2.html);
    /// any Linux.
    ///
    /// ```
    /// use safespawn::{Command, Resource};
    /// let cmd = Command::new("sh").args(["-c", "test $(ulimit -n) = 256"])
    ///     .rlimit(Resource::Nofile, 256, 512);
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn rlimit(mut self, resource: Resource, soft: u64, hard: u64) -> Self {
        self.cfg.process.rlimits.push((resource, soft, hard));
        self
    }
}

impl ProcessConfig {
    pub(crate) fn freeze(&self) -> Result<ProcessAttrs, Error> {
        let umask = match self.umask {
            Some(m) if m > 0o777 => {
                return Err(Error::build(
                    BuildErrorKind::Invalid,
                    "umask",
                    format!("{m:#o} has bits outside 0o777"),
                ))
            }
            Some(m) => Some(FileMode::from_raw_mode(m)),
            None => None,
        };
        let mut rlimits = Vec::with_capacity(self.rlimits.len());
        for &(resource, soft, hard) in &self.rlimits {
            if soft > hard {
                return Err(Error::build(
                    BuildErrorKind::Invalid,
                    format!("rlimit {resource:?}"),
                    format!("the soft limit {soft} is above the hard limit {hard}"),
                ));
            }
            let lim = |v: u64| (v != u64::MAX).then_some(v);
            rlimits.push((
                resource,
                Rlimit {
                    current: lim(soft),
                    maximum: lim(hard),
                },
            ));
        }
        Ok(ProcessAttrs {
            umask,
            rlimits: rlimits.into(),
        })
    }
}
