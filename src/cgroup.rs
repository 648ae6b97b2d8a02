//! [`Cgroup`]: a child cgroup of the caller's making, with limits, for
//! [`Command::cgroup`](crate::Command::cgroup).

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::command::cgroup::open_cgroup_dir;
use crate::error::{BuildErrorKind, Error};

/// A cgroup v2 directory this value created, removed again when it is
/// dropped (or by [`remove`](Cgroup::remove), which reports a failure;
/// [`into_path`](Cgroup::into_path) keeps it). Its limits are written at
/// once, each to its controller's file.
///
/// A limit needs its controller enabled in the parent's
/// `cgroup.subtree_control` (a cgroup only has the interface files of the
/// controllers its parent enables for its children); this type never
/// enables one itself, since enabling a domain controller in a cgroup
/// forbids processes in it (the no-internal-process rule) and races with
/// anything moving processes there. The controllers a parent may enable
/// are listed in its `cgroup.controllers`.
///
/// The directory can be removed only once no process is in it: drop the
/// `Cgroup` after its children have been reaped (a failed removal on drop
/// leaves the directory).
///
/// ```no_run
/// use std::time::Duration;
/// use safespawn::{Cgroup, Command};
/// // Root, or a user the parent cgroup is delegated to.
/// let job = Cgroup::create("/sys/fs/cgroup", "build-42")?
///     .memory_max(512 << 20)?
///     .pids_max(64)?
///     .cpu_max(Duration::from_millis(50), Duration::from_millis(100))?;
/// let status = Command::new("make").cgroup(job.path()).status()?;
/// let mut job = job;
/// job.remove()?;
/// # Ok::<(), safespawn::Error>(())
/// ```
///
/// # Errors
///
/// See [`create`](Cgroup::create) and each limit.
///
/// # References
///
/// [`cgroups(7)`](https://man7.org/linux/man-pages/man7/cgroups.7.html),
/// the kernel's `Documentation/admin-guide/cgroup-v2.rst` (the interface
/// files `memory.max`, `pids.max`, `cpu.max`); cgroup v2: Linux 4.5, its
/// cpu controller 4.15.
#[derive(Debug)]
pub struct Cgroup {
    /// `None` once removed or kept.
    path: Option<PathBuf>,
}

impl Cgroup {
    /// Creates the cgroup `name` under the cgroup v2 directory `parent`
    /// (`mkdir`, mode 0755).
    ///
    /// ```no_run
    /// let cg = safespawn::Cgroup::create("/sys/fs/cgroup", "job")?;
    /// assert_eq!(cg.path(), std::path::Path::new("/sys/fs/cgroup/job"));
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Build`]: a `name` that is empty, `.` or `..`, or contains a
    /// `/` ([`BuildErrorKind::Invalid`]) or a NUL byte
    /// ([`BuildErrorKind::Nul`]); a `parent` that does not exist
    /// ([`BuildErrorKind::NotFound`]) or is not a cgroup v2 directory
    /// ([`BuildErrorKind::Invalid`]). [`Error::Io`] when `mkdir` fails
    /// (`EEXIST`: the cgroup exists already; `EACCES`: the parent is not
    /// delegated to the caller).
    ///
    /// # References
    ///
    /// [`mkdir(2)`](https://man7.org/linux/man-pages/man2/mkdir.2.html) in
    /// the cgroup v2 filesystem; Linux 4.5.
    pub fn create(parent: impl AsRef<Path>, name: impl AsRef<OsStr>) -> Result<Cgroup, Error> {
        let parent = parent.as_ref();
        let name = name.as_ref();
        let item = || format!("Cgroup::create({parent:?}, {name:?})");
        let bytes = name.as_bytes();
        if let Some(at) = bytes.iter().position(|&b| b == 0) {
            return Err(Error::build(
                BuildErrorKind::Nul,
                item(),
                format!("the name contains a NUL byte at offset {at}"),
            ));
        }
        if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
            return Err(Error::build(
                BuildErrorKind::Invalid,
                item(),
                "the name must be one path component (not empty, `.` or `..`, no `/`)",
            ));
        }
        drop(open_cgroup_dir(parent, &item)?);
        let path = parent.join(name);
        std::fs::create_dir(&path).map_err(|e| io_error(&format!("creating {path:?}"), e))?;
        Ok(Cgroup { path: Some(path) })
    }

    /// The cgroup's directory, for [`Command::cgroup`](crate::Command::cgroup).
    ///
    /// ```no_run
    /// let cg = safespawn::Cgroup::create("/sys/fs/cgroup", "job")?;
    /// safespawn::Command::new("true").cgroup(cg.path()).status()?;
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    /// The memory limit: `bytes` to `memory.max` (above it the kernel
    /// reclaims, then the OOM killer ends a process of the cgroup).
    ///
    /// ```no_run
    /// let cg = safespawn::Cgroup::create("/sys/fs/cgroup", "job")?.memory_max(256 << 20)?;
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Build`] ([`BuildErrorKind::Conflict`]) when the parent's
    /// `cgroup.subtree_control` does not enable the `memory` controller;
    /// [`Error::Io`] when the write fails. Either way the cgroup is removed
    /// (it is dropped).
    ///
    /// # References
    ///
    /// `memory.max` in the kernel's `Documentation/admin-guide/cgroup-v2.rst`;
    /// Linux 4.5.
    pub fn memory_max(self, bytes: u64) -> Result<Cgroup, Error> {
        self.limit("memory", "memory.max", &bytes.to_string(), || {
            format!("memory_max({bytes})")
        })
    }

    /// The process limit: `n` to `pids.max` (a fork or clone past it fails
    /// with `EAGAIN`).
    ///
    /// ```no_run
    /// let cg = safespawn::Cgroup::create("/sys/fs/cgroup", "job")?.pids_max(64)?;
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`memory_max`](Cgroup::memory_max), for the `pids` controller.
    ///
    /// # References
    ///
    /// `pids.max` in the kernel's `Documentation/admin-guide/cgroup-v2.rst`;
    /// Linux 4.5.
    pub fn pids_max(self, n: u64) -> Result<Cgroup, Error> {
        self.limit("pids", "pids.max", &n.to_string(), || {
            format!("pids_max({n})")
        })
    }

    /// The CPU bandwidth limit: at most `quota` of CPU time in each
    /// `period`, over all the cgroup's processes (`cpu.max`, in
    /// microseconds; `quota` above `period` allows more than one CPU).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// // Half a CPU.
    /// let cg = safespawn::Cgroup::create("/sys/fs/cgroup", "job")?
    ///     .cpu_max(Duration::from_millis(50), Duration::from_millis(100))?;
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Build`] ([`BuildErrorKind::Invalid`]) for a `period` outside
    /// 1 ms to 1 s or a `quota` below 1 ms (the kernel's bounds); otherwise
    /// as [`memory_max`](Cgroup::memory_max), for the `cpu` controller.
    ///
    /// # References
    ///
    /// `cpu.max` in the kernel's `Documentation/admin-guide/cgroup-v2.rst`;
    /// Linux 4.15.
    pub fn cpu_max(self, quota: Duration, period: Duration) -> Result<Cgroup, Error> {
        let item = || format!("cpu_max({quota:?}, {period:?})");
        let ms = Duration::from_millis(1);
        if period < ms || period > Duration::from_secs(1) || quota < ms {
            return Err(Error::build(
                BuildErrorKind::Invalid,
                item(),
                "the period must be between 1 ms and 1 s and the quota at least 1 ms",
            ));
        }
        let value = format!("{} {}", quota.as_micros(), period.as_micros());
        self.limit("cpu", "cpu.max", &value, item)
    }

    /// Removes the directory now, reporting a failure (a drop ignores it).
    /// On a failure the `Cgroup` still owns the directory: a later
    /// `remove` or the drop tries again. Once removed, [`path`](Cgroup::path)
    /// is empty and the drop does nothing.
    ///
    /// ```no_run
    /// let mut cg = safespawn::Cgroup::create("/sys/fs/cgroup", "job")?;
    /// safespawn::Command::new("true").cgroup(cg.path()).status()?;
    /// cg.remove()?;
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when `rmdir` fails: `EBUSY` while a process (or a
    /// child cgroup) is still in it.
    ///
    /// # References
    ///
    /// [`rmdir(2)`](https://man7.org/linux/man-pages/man2/rmdir.2.html);
    /// Linux 4.5.
    pub fn remove(&mut self) -> Result<(), Error> {
        if let Some(path) = &self.path {
            std::fs::remove_dir(path)
                .map_err(|e| io_error(&format!("removing the cgroup {path:?}"), e))?;
        }
        self.path = None;
        Ok(())
    }

    /// Keeps the directory (it is not removed on drop) and returns its path.
    ///
    /// ```no_run
    /// let dir = safespawn::Cgroup::create("/sys/fs/cgroup", "service")?.into_path();
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn into_path(mut self) -> PathBuf {
        self.path.take().unwrap_or_default()
    }

    /// Writes `value` to the interface file `file` of `controller`, after
    /// checking that the parent enables it.
    fn limit(
        self,
        controller: &str,
        file: &str,
        value: &str,
        item: impl Fn() -> String,
    ) -> Result<Cgroup, Error> {
        let path = self.path().to_owned();
        let parent = path.parent().unwrap_or(Path::new("/"));
        let control = parent.join("cgroup.subtree_control");
        let enabled = std::fs::read_to_string(&control)
            .map_err(|e| io_error(&format!("reading {control:?}"), e))?;
        if !enabled.split_whitespace().any(|c| c == controller) {
            let listed = enabled.split_whitespace().collect::<Vec<_>>().join(" ");
            return Err(Error::build(
                BuildErrorKind::Conflict,
                format!("{} on {path:?}", item()),
                format!(
                    "the {controller} controller is not enabled in {control:?} (enabled: {}); writing \"+{controller}\" there enables it, if {:?} lists it",
                    if listed.is_empty() { "none" } else { &listed },
                    parent.join("cgroup.controllers"),
                ),
            ));
        }
        let target = path.join(file);
        std::fs::write(&target, value)
            .map_err(|e| io_error(&format!("writing {value:?} to {target:?}"), e))?;
        Ok(self)
    }
}

impl AsRef<Path> for Cgroup {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_dir(path);
        }
    }
}

/// An [`Error::Io`] saying what was being done.
fn io_error(what: &str, e: io::Error) -> Error {
    Error::Io(io::Error::new(e.kind(), format!("{what}: {e}")))
}
