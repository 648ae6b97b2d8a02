//! The frozen result of `build()`: the child's part, and what the parent
//! keeps for spawning, messages and display.
//!
//! After `build()` nothing is left to decide or allocate: argv, envp, the
//! program path and the working directory are contiguous NUL-terminated
//! buffers with their pointer arrays; the fd plan says which fd lands where,
//! in which order; `/dev/null` is open.

use std::ffi::OsStr;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::Duration;

use crate::child;
use crate::quote;
use crate::secret::Secret;

/// Buffered mode's data: only the parent reads it.
#[derive(Debug, Default)]
pub(crate) struct BufferedPlan {
    /// The stdin fed to the child; erased when the plan is dropped.
    pub input: Option<Secret>,
    pub capture_stdout: bool,
    pub capture_stderr: bool,
    pub interleaved: bool,
    pub wait_delay: Duration,
}

/// The frozen result of `build()`.
pub(crate) struct Plan {
    /// Everything the child reads, and nothing else.
    pub child: child::Plan,
    /// The program as given, for error messages.
    pub program: Arc<str>,
    /// Each mount's destination (its path in the child's view), for the
    /// errors of `Stage::Mount`.
    pub mount_paths: Vec<std::path::PathBuf>,
    /// The directory of [`Command::cgroup`](crate::Command::cgroup), for
    /// the errors of `Stage::Cgroup`.
    pub cgroup_path: Option<std::path::PathBuf>,
    /// The landlock ABI the kernel offered at `build()`, when the command
    /// is landlocked.
    pub landlock_abi: Option<u32>,
    /// The shell-quoted command line.
    pub line: Arc<str>,
    /// Whether `envp` is the command's own list (shown in its line), not an
    /// inherited environment (never shown).
    pub env_shown: bool,
    /// Which standard streams get a new pipe per spawn.
    pub stdio_pipes: [bool; 3],
    pub nonblocking_pipes: bool,
    pub forbid_fork: bool,
    /// The ranges of `uid_map` / `gid_map`, which the parent writes into
    /// the child's new user namespace (the fork path); `None` without.
    pub id_ranges: Option<crate::spawn::id_maps::IdRanges>,
    pub timeout: Option<Duration>,
    pub buffered: BufferedPlan,
    /// The send buffers, every mode: (child fd, bytes), in
    /// `Src::Slot(SLOT_SEND_BUFFERS + i)` order; erased when the plan is
    /// dropped (the last `Arc` of it: a `Prepared`, or a `Running`,
    /// `Paused` or `PausedDaemon` still writing them).
    pub send_buffers: Vec<(RawFd, Secret)>,
    /// The highest fd the child uses that the plan names (the fd plan's
    /// sources and targets) or owns (below): a child started on the
    /// parent's fd table keeps the fds up to it and the spawn's own.
    pub highest_child_fd: RawFd,
    /// Fds the plan owns, kept open for the child to copy; closed when the
    /// plan is dropped.
    pub _owned: Vec<OwnedFd>,
}

impl Plan {
    /// Whether spawning needs the fork path: vfork-style is unsound for
    /// hooks, and id ranges need a child that waits, in memory of its own,
    /// while the parent writes its maps.
    pub(crate) fn needs_fork(&self) -> bool {
        !self.child.hooks.is_empty()
            || !self.child.privileged_hooks.is_empty()
            || self.id_ranges.is_some()
    }

    /// The variables shown in the command line: the command's own list, in
    /// order, or nothing when it inherits.
    pub(crate) fn shown_env(&self) -> Vec<(&OsStr, &OsStr)> {
        if !self.env_shown {
            return Vec::new();
        }
        self.child
            .exec
            .envp
            .items()
            .filter_map(|entry| {
                let b = entry.as_bytes();
                // `build()` checked that every name is non-empty and has no '='.
                let eq = b.iter().position(|&c| c == b'=')?;
                Some((OsStr::from_bytes(&b[..eq]), OsStr::from_bytes(&b[eq + 1..])))
            })
            .collect()
    }

    /// The line-broken form (see [`quote::write_multiline`]).
    pub(crate) fn display_multiline(&self) -> String {
        let argv: Vec<&OsStr> = self.child.exec.argv.items().collect();
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = quote::write_multiline(self.shown_env(), &argv, &mut s);
        s
    }

    /// The unquoted one-line form plus a newline.
    pub(crate) fn arg_log(&self) -> Vec<u8> {
        quote::arg_log(self.shown_env(), self.child.exec.argv.items())
    }
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("line", &self.line)
            .field("path", &&*self.child.exec.path)
            .field("cwd", &self.child.exec.cwd)
            .field("maps", &self.child.fds.maps)
            .field("hooks", &self.child.hooks.len())
            .field("privileged_hooks", &self.child.privileged_hooks.len())
            .field("seccomp", &self.child.seccomp)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
