//! Credentials: capabilities, groups, gid, uid and `no_new_privs`.

use rustix::fs::{Gid, Uid};

use super::Command;
use crate::child::credentials::Credentials;
use crate::error::{BuildErrorKind, Error};
use crate::mode::Mode;
use crate::Capability;

/// What a command records about credentials.
#[derive(Debug, Default)]
pub(crate) struct CredentialsConfig {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub groups: Option<Vec<u32>>,
    pub clear_caps: bool,
    pub allowed_caps: u64,
    pub no_new_privs: bool,
}

impl<M: Mode> Command<M> {
    /// Clears every capability set and the bounding set in the child, except
    /// capabilities allowed with [`allow_cap`](Command::allow_cap) (libvirt's
    /// ClearCaps).
    ///
    /// # Errors
    ///
    /// Dropping from the bounding set needs `CAP_SETPCAP`: a caller without
    /// it gets [`Error::Spawn`] at stage [`Caps`](crate::Stage::Caps) with
    /// `EPERM` rather than a child that silently kept its bounding set —
    /// except where the bounding set can no longer matter: with
    /// [`no_new_privs`](Command::no_new_privs), no
    /// [`allow_cap`](Command::allow_cap) and a non-root uid, exec grants no
    /// capability whatever the bounding set says, so a plain user's
    /// `clear_caps().no_new_privs()` succeeds and leaves the bounding set as
    /// it was (the effective, permitted, inheritable and ambient sets are
    /// empty, as they already are for a plain user).
    ///
    /// # References
    ///
    /// [`capabilities(7)`](https://man7.org/linux/man-pages/man7/capabilities.7.html),
    /// `PR_CAPBSET_DROP` in [`prctl(2)`](https://man7.org/linux/man-pages/man2/prctl.2.html),
    /// [`capset(2)`](https://man7.org/linux/man-pages/man2/capset.2.html);
    /// Linux 2.6.25 (the ambient set, cleared when the kernel has it: 4.3).
    ///
    /// ```
    /// let cmd = safespawn::Command::new("true").clear_caps();
    /// # drop(cmd);
    /// ```
    pub fn clear_caps(mut self) -> Self {
        self.cfg.creds.clear_caps = true;
        self
    }

    /// Keeps `cap` when capabilities are cleared (it implies
    /// [`clear_caps`](Command::clear_caps)), and raises it into the ambient
    /// set so it survives exec under a non-root uid (libvirt's AllowCap).
    ///
    /// # Errors
    ///
    /// As [`clear_caps`](Command::clear_caps); raising into the ambient set
    /// a capability the caller does not hold is [`Error::Spawn`] at stage
    /// [`Caps`](crate::Stage::Caps).
    ///
    /// # References
    ///
    /// `PR_CAP_AMBIENT` in [`prctl(2)`](https://man7.org/linux/man-pages/man2/prctl.2.html);
    /// Linux 4.3.
    ///
    /// ```
    /// use safespawn::{Capability, Command};
    /// let cmd = Command::new("true").allow_cap(Capability::NetBindService);
    /// # drop(cmd);
    /// ```
    pub fn allow_cap(mut self, cap: Capability) -> Self {
        self.cfg.creds.allowed_caps |= cap.bit();
        self
    }

    /// Runs the child as user `uid` (libvirt's SetUID). Without
    /// [`groups`](Command::groups) the supplementary groups are cleared.
    ///
    /// Only what changes needs privilege: `setgroups(2)` is skipped when the
    /// child's supplementary groups already are the planned ones (clearing
    /// groups that are empty), and `setuid(2)` to the caller's own uid needs
    /// none. So a plain user, or root in a user namespace where `setgroups`
    /// is denied (a rootless container), can ask for its own ids.
    ///
    /// # Errors
    ///
    /// `build()` refuses `u32::MAX` (-1, "unchanged" to the kernel) with
    /// [`BuildErrorKind::Invalid`]; the kernel's refusal is
    /// [`Error::Spawn`] at stage [`Uid`](crate::Stage::Uid) (or
    /// [`Groups`](crate::Stage::Groups) for the groups it clears: a caller
    /// without `CAP_SETGID` that has supplementary groups gets `EPERM` there
    /// rather than a child that kept them; pass them to
    /// [`groups`](Command::groups) to keep them).
    ///
    /// # References
    ///
    /// [`setuid(2)`](https://man7.org/linux/man-pages/man2/setuid.2.html) (the
    /// per-thread system call, not the C library's broadcast),
    /// [`setgroups(2)`](https://man7.org/linux/man-pages/man2/setgroups.2.html);
    /// any Linux.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("id").uid(65534).gid(65534);
    /// # drop(cmd);
    /// // One's own ids, with one's own groups, need no privilege:
    /// let groups: Vec<u32> = rustix::process::getgroups()?.iter().map(|g| g.as_raw()).collect();
    /// let st = safespawn::Command::new("true")
    ///     .uid(rustix::process::getuid().as_raw())
    ///     .gid(rustix::process::getgid().as_raw())
    ///     .groups(&groups)
    ///     .status()?;
    /// assert!(st.success());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn uid(mut self, uid: u32) -> Self {
        self.cfg.creds.uid = Some(uid);
        self
    }

    /// Runs the child as group `gid` (libvirt's SetGID). Without
    /// [`groups`](Command::groups) the supplementary groups are cleared. As
    /// for [`uid`](Command::uid), only a change needs privilege: one's own
    /// gid, with no supplementary groups to clear, needs none.
    ///
    /// # Errors
    ///
    /// As [`uid`](Command::uid), at stage [`Gid`](crate::Stage::Gid).
    ///
    /// # References
    ///
    /// [`setgid(2)`](https://man7.org/linux/man-pages/man2/setgid.2.html); any Linux.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("id").gid(65534);
    /// # drop(cmd);
    /// ```
    pub fn gid(mut self, gid: u32) -> Self {
        self.cfg.creds.gid = Some(gid);
        self
    }

    /// The child's supplementary groups (an empty slice clears them). The
    /// order does not matter. When the child already has exactly these
    /// groups, `setgroups(2)` is not called, so keeping one's own groups
    /// needs no privilege.
    ///
    /// # Errors
    ///
    /// `build()` refuses `u32::MAX` in the list ([`BuildErrorKind::Invalid`]);
    /// the kernel's refusal of a change (no `CAP_SETGID`, or `setgroups`
    /// denied in a user namespace) is [`Error::Spawn`] at stage
    /// [`Groups`](crate::Stage::Groups) with `EPERM`.
    ///
    /// # References
    ///
    /// [`setgroups(2)`](https://man7.org/linux/man-pages/man2/setgroups.2.html);
    /// any Linux.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("id").uid(65534).groups(&[65534, 100]);
    /// # drop(cmd);
    /// ```
    pub fn groups(mut self, groups: &[u32]) -> Self {
        self.cfg.creds.groups = Some(groups.to_vec());
        self
    }

    /// Sets `PR_SET_NO_NEW_PRIVS`: the child and its descendants can never
    /// gain privileges through setuid binaries or file capabilities.
    ///
    /// # Errors
    ///
    /// A kernel refusal is [`Error::Spawn`] at stage
    /// [`NoNewPrivs`](crate::Stage::NoNewPrivs).
    ///
    /// # References
    ///
    /// `PR_SET_NO_NEW_PRIVS` in [`prctl(2)`](https://man7.org/linux/man-pages/man2/prctl.2.html);
    /// Linux 3.5.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("true").no_new_privs();
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn no_new_privs(mut self) -> Self {
        self.cfg.creds.no_new_privs = true;
        self
    }
}

impl CredentialsConfig {
    /// Whether the child still has `CAP_SYS_ADMIN` in its effective set
    /// (over its own user namespace) after the credential steps: the one
    /// privilege that lets seccomp filters and landlock rulesets be
    /// installed without `no_new_privs`. `new_user_ns`: the child starts in
    /// a user namespace of its own, where it has every capability (for
    /// uid 0 inside, which `map_root` and a range mapping 0 give).
    ///
    /// The steps that need that privilege call this at `build()` and set
    /// `no_new_privs` when it is `false` (the kernel would refuse them
    /// with `EACCES` otherwise).
    pub(crate) fn child_keeps_sys_admin(&self, new_user_ns: bool) -> bool {
        let has_now = new_user_ns
            || rustix::thread::capabilities(None).is_ok_and(|c| {
                c.effective
                    .contains(rustix::thread::CapabilitySet::SYS_ADMIN)
            });
        let uid_keeps = self.uid.is_none_or(|u| u == 0);
        let caps_keep = !self.clear_caps && self.allowed_caps == 0
            || self.allowed_caps & Capability::SysAdmin.bit() != 0;
        has_now && uid_keeps && caps_keep
    }

    pub(crate) fn freeze(&self) -> Result<Credentials, Error> {
        // -1 is not an id: to the kernel it means "leave unchanged", and
        // rustix's constructors assert against it.
        let invalid = |what: &str, id: u32| {
            Error::build(
                BuildErrorKind::Invalid,
                format!("{what} {id}"),
                "is -1 as a signed id, which the kernel reads as \"unchanged\"",
            )
        };
        if let Some(uid) = self.uid.filter(|&u| u == u32::MAX) {
            return Err(invalid("uid", uid));
        }
        if let Some(gid) = self.gid.filter(|&g| g == u32::MAX) {
            return Err(invalid("gid", gid));
        }
        if let Some(&g) = self.groups.iter().flatten().find(|&&g| g == u32::MAX) {
            return Err(invalid("supplementary group", g));
        }
        // A uid or gid change without explicit groups clears the
        // supplementary groups (CPython's CVE-2023-6507). Sorted: the child
        // compares them with the groups it has (and skips setgroups when
        // they are the same), which the kernel keeps sorted.
        let groups = match &self.groups {
            Some(g) => {
                let mut sorted: Vec<_> = g.iter().map(|&g| Gid::from_raw(g)).collect();
                sorted.sort_unstable_by_key(|g| g.as_raw());
                Some(sorted.into())
            }
            None if self.uid.is_some() || self.gid.is_some() => Some(Vec::new().into()),
            None => None,
        };
        let caps = (self.clear_caps || self.allowed_caps != 0).then_some(self.allowed_caps);
        Ok(Credentials {
            groups,
            gid: self.gid.map(Gid::from_raw),
            uid: self.uid.map(Uid::from_raw),
            caps,
            no_new_privs: self.no_new_privs,
        })
    }
}
