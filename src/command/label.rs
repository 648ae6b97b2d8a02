//! Security labels: the SELinux context ([`Command::selinux_exec_label`])
//! and the AppArmor profile ([`Command::apparmor_profile`]) the program is
//! started with. What the child writes, when, and which refusals it
//! tolerates, is in the child's `label` room.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use super::Command;
use crate::child::label::LabelPlan;
use crate::error::{BuildErrorKind, Error};
use crate::mode::Mode;
use crate::quote::shown;

/// What a command records about its security labels.
#[derive(Debug, Default)]
pub(crate) struct LabelConfig {
    pub selinux: Option<OsString>,
    pub apparmor: Option<OsString>,
}

impl<M: Mode> Command<M> {
    /// The SELinux security context the program runs in (libvirt's
    /// SetSELinuxLabel, libselinux's `setexeccon_raw`): the child writes
    /// `label` to its `/proc/thread-self/attr/exec` after the knobs and
    /// before the credentials, and the kernel applies it at exec, where
    /// the policy decides whether the transition is allowed (a refusal
    /// then is [`Error::Spawn`] at [`Stage::Exec`](crate::Stage::Exec)
    /// with `EACCES`; under [`no_new_privs`](Command::no_new_privs) only a
    /// bounded transition is, else `EPERM`). The label is written as
    /// given, in the raw form (no translation of MCS/MLS names).
    ///
    /// `build()` opens `/proc` (kept by the [`Prepared`](crate::Prepared))
    /// so the write does not depend on the child's own view after its
    /// mounts, and SELinux's `enforce` file when it has one.
    ///
    /// **Where SELinux does not enforce, a refused write is ignored**, as
    /// libvirt does: with SELinux disabled or not built in there is no
    /// exec attribute to accept a context (the kernel answers `EINVAL`),
    /// and in permissive mode nothing is denied by label either, so the
    /// program runs exactly as confined as it would with the label. The
    /// child decides when the write is refused, by reading the `enforce`
    /// file then (so a system switched to enforcing after `build()` makes
    /// the refusal fatal); where `build()` found no `/sys/fs/selinux/enforce`
    /// it takes SELinux for not enabled, and where that file exists but
    /// cannot be read, for enforcing. Nothing is logged: the child has no
    /// channel but its failure report.
    ///
    /// # Errors
    ///
    /// `build()` refuses an empty label ([`BuildErrorKind::Invalid`]), a
    /// NUL byte in it ([`BuildErrorKind::Nul`]), one longer than the kernel
    /// takes in one write (a page, with its NUL: [`BuildErrorKind::TooLong`]),
    /// and a caller without a proc file system at `/proc`
    /// ([`BuildErrorKind::Conflict`]). Where SELinux enforces, the kernel's
    /// refusal (`EINVAL`: a context the policy does not know; `EACCES`: the
    /// `setexec` permission denied) is [`Error::Spawn`] at stage
    /// [`Label`](crate::Stage::Label) with the attribute's path.
    ///
    /// # References
    ///
    /// `/proc/pid/attr/exec` in [`proc_pid_attr(5)`](https://man7.org/linux/man-pages/man5/proc_pid_attr.5.html),
    /// [`setexeccon(3)`](https://man7.org/linux/man-pages/man3/setexeccon.3.html),
    /// [`selinux(8)`](https://man7.org/linux/man-pages/man8/selinux.8.html);
    /// `/proc/thread-self`: Linux 3.17.
    ///
    /// ```
    /// use safespawn::Command;
    /// // Runs unlabelled where SELinux does not enforce (this machine, say).
    /// let cmd = Command::new("true").selinux_exec_label("system_u:system_r:svirt_t:s0:c1,c2");
    /// # if std::fs::read("/sys/fs/selinux/enforce").map_or(true, |e| e.first() != Some(&b'1')) {
    /// assert!(cmd.status()?.success());
    /// # }
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn selinux_exec_label(mut self, label: impl Into<OsString>) -> Self {
        self.cfg.label.selinux = Some(label.into());
        self
    }

    /// The AppArmor profile the program runs under (libvirt's
    /// SetAppArmorProfile): the child writes `exec NAME` to its
    /// `/proc/thread-self/attr/apparmor/exec` (Linux 5.1; before that, or
    /// where that file is missing, to `attr/exec`), libapparmor's
    /// `aa_change_onexec`, after the knobs and before the credentials, and
    /// the kernel confines the program with that profile from its exec on.
    ///
    /// libvirt calls `aa_change_profile` instead, which confines the child
    /// at once: the remaining set-up (credentials, working directory,
    /// hooks, the exec itself) would then need the profile's permission,
    /// so a profile written for the program could fail the set-up. The
    /// `exec` form changes only the program, as SELinux's exec label does.
    ///
    /// Unlike an SELinux label, a refused profile always fails the spawn
    /// (as in libvirt): AppArmor has no permissive mode for the whole
    /// system, and a caller that asks for a profile on a system without
    /// AppArmor gets an error, not an unconfined program.
    ///
    /// # Errors
    ///
    /// `build()` refuses an empty name ([`BuildErrorKind::Invalid`]), a NUL
    /// byte in it ([`BuildErrorKind::Nul`]), one longer than a page with
    /// `exec ` ([`BuildErrorKind::TooLong`]), and a caller without a proc
    /// file system at `/proc` ([`BuildErrorKind::Conflict`]). The kernel's
    /// refusal is [`Error::Spawn`] at stage [`Label`](crate::Stage::Label),
    /// with the attribute's path: `ENOENT` for a profile that is not
    /// loaded, `EACCES`/`EPERM` where the current profile may not change to
    /// it, and on a system without AppArmor whatever the other LSM, or
    /// none, answers on `attr/exec` (`EINVAL` without any).
    ///
    /// # References
    ///
    /// [`aa_change_profile(2)`](https://man7.org/linux/man-pages/man2/aa_change_profile.2.html)
    /// (`aa_change_onexec`), `/proc/pid/attr/exec` in
    /// [`proc_pid_attr(5)`](https://man7.org/linux/man-pages/man5/proc_pid_attr.5.html),
    /// [`apparmor(7)`](https://man7.org/linux/man-pages/man7/apparmor.7.html);
    /// `attr/apparmor/`: Linux 5.1.
    ///
    /// ```
    /// use safespawn::{Command, Error, Stage};
    /// let result = Command::new("true").apparmor_profile("unconfined").status();
    /// if !std::path::Path::new("/sys/module/apparmor").exists() {
    ///     // No AppArmor here: the spawn fails rather than run unconfined.
    ///     assert!(matches!(result, Err(Error::Spawn { stage: Stage::Label, .. })));
    /// }
    /// ```
    pub fn apparmor_profile(mut self, name: impl Into<OsString>) -> Self {
        self.cfg.label.apparmor = Some(name.into());
        self
    }
}

/// The longest text the kernel takes in one write to a `/proc/pid/attr`
/// file: a page.
fn attr_max() -> usize {
    rustix::param::page_size()
}

/// Checks one label's text and returns it as written: `prefix`, the text,
/// then a NUL when `nul`.
fn text(item: &str, value: &OsString, prefix: &[u8], nul: bool) -> Result<Vec<u8>, Error> {
    let b = value.as_bytes();
    let item = || format!("{item} {}", shown(value));
    if b.is_empty() {
        return Err(Error::build(BuildErrorKind::Invalid, item(), "is empty"));
    }
    if let Some(at) = b.iter().position(|&c| c == 0) {
        return Err(Error::build(
            BuildErrorKind::Nul,
            item(),
            format!("contains a NUL byte at offset {at}"),
        ));
    }
    let mut out = Vec::with_capacity(prefix.len() + b.len() + 1);
    out.extend_from_slice(prefix);
    out.extend_from_slice(b);
    if nul {
        out.push(0);
    }
    if out.len() > attr_max() {
        return Err(Error::build(
            BuildErrorKind::TooLong,
            item(),
            format!(
                "is {} bytes as written; the kernel takes at most {} in one write",
                out.len(),
                attr_max()
            ),
        ));
    }
    Ok(out)
}

impl LabelConfig {
    /// Whether the child writes a label (and so needs the `/proc` fd).
    pub(crate) fn any(&self) -> bool {
        self.selinux.is_some() || self.apparmor.is_some()
    }

    /// The item to name when `/proc` is missing.
    pub(crate) fn item(&self) -> &'static str {
        if self.selinux.is_some() {
            "selinux_exec_label"
        } else {
            "apparmor_profile"
        }
    }

    /// Checks the labels and prepares the child's part, with SELinux's
    /// `enforce` file when there is a SELinux label and the system has one
    /// (the plan owns it from then on).
    pub(crate) fn freeze(&self) -> Result<(LabelPlan, Option<OwnedFd>), Error> {
        let selinux = match &self.selinux {
            Some(label) => Some(text("selinux_exec_label", label, b"", true)?),
            None => None,
        };
        let apparmor = match &self.apparmor {
            Some(name) => Some(text("apparmor_profile", name, b"exec ", false)?),
            None => None,
        };
        let (enforce, enforce_unknown) = if selinux.is_some() {
            match crate::sys::knobs::open_selinux_enforce() {
                Ok(fd) => (fd, false),
                Err(_) => (None, true),
            }
        } else {
            (None, false)
        };
        Ok((
            LabelPlan {
                selinux: selinux.map(Into::into),
                apparmor: apparmor.map(Into::into),
                enforce: enforce.as_ref().map_or(-1, |fd| fd.as_raw_fd()),
                enforce_unknown,
            },
            enforce,
        ))
    }
}
