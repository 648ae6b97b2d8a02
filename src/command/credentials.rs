//! Credentials: securebits, capabilities, groups, gid, uid and
//! `no_new_privs`.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

use rustix::fs::{Gid, Uid};

use super::Command;
use crate::child::credentials::Credentials;
use crate::error::{BuildErrorKind, Error};
use crate::mode::Mode;
use crate::Capability;

/// A set of securebits for [`Command::securebits`] (bit flags; `|`
/// combines them). The values are the kernel's `SECBIT_*`; each `*_LOCKED`
/// bit makes its flag irreversible for the child and every descendant.
///
/// ```
/// use safespawn::Securebits;
/// let locked_down = Securebits::NOROOT | Securebits::NOROOT_LOCKED
///     | Securebits::NO_SETUID_FIXUP | Securebits::NO_SETUID_FIXUP_LOCKED;
/// assert!(locked_down.contains(Securebits::NOROOT));
/// assert_eq!(locked_down.bits(), 0x0f);
/// assert_eq!(format!("{:?}", Securebits::KEEP_CAPS | Securebits::NOROOT), "NOROOT | KEEP_CAPS");
/// assert_eq!(format!("{:?}", Securebits::empty()), "empty()");
/// ```
///
/// # Errors
///
/// None here: [`Command::securebits`] checks a set against the command at
/// `build()`.
///
/// # References
///
/// [`capabilities(7)`](https://man7.org/linux/man-pages/man7/capabilities.7.html)
/// ("The securebits flags"); Linux 2.6.26, `NO_CAP_AMBIENT_RAISE` 4.3,
/// `EXEC_RESTRICT_FILE` and `EXEC_DENY_INTERACTIVE` 6.14.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Securebits(u32);

impl Securebits {
    /// `SECBIT_NOROOT`: uid 0 gets no capabilities from exec (nor does a
    /// set-user-ID-root program), so root is an ordinary user but for what
    /// it already holds.
    pub const NOROOT: Securebits = Securebits(1 << 0);
    /// `SECBIT_NOROOT_LOCKED`.
    pub const NOROOT_LOCKED: Securebits = Securebits(1 << 1);
    /// `SECBIT_NO_SETUID_FIXUP`: changing uids between 0 and non-zero does
    /// not adjust the capability sets.
    pub const NO_SETUID_FIXUP: Securebits = Securebits(1 << 2);
    /// `SECBIT_NO_SETUID_FIXUP_LOCKED`.
    pub const NO_SETUID_FIXUP_LOCKED: Securebits = Securebits(1 << 3);
    /// `SECBIT_KEEP_CAPS`: the permitted set survives a change away from
    /// uid 0 (what `PR_SET_KEEPCAPS` sets). The kernel clears it at exec.
    pub const KEEP_CAPS: Securebits = Securebits(1 << 4);
    /// `SECBIT_KEEP_CAPS_LOCKED`.
    pub const KEEP_CAPS_LOCKED: Securebits = Securebits(1 << 5);
    /// `SECBIT_NO_CAP_AMBIENT_RAISE`: no capability can be raised into the
    /// ambient set.
    pub const NO_CAP_AMBIENT_RAISE: Securebits = Securebits(1 << 6);
    /// `SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED`.
    pub const NO_CAP_AMBIENT_RAISE_LOCKED: Securebits = Securebits(1 << 7);
    /// `SECBIT_EXEC_RESTRICT_FILE` (Linux 6.14): interpreters that honour
    /// it run only files that `execveat(AT_EXECVE_CHECK)` allows.
    pub const EXEC_RESTRICT_FILE: Securebits = Securebits(1 << 8);
    /// `SECBIT_EXEC_RESTRICT_FILE_LOCKED` (Linux 6.14).
    pub const EXEC_RESTRICT_FILE_LOCKED: Securebits = Securebits(1 << 9);
    /// `SECBIT_EXEC_DENY_INTERACTIVE` (Linux 6.14): interpreters that
    /// honour it refuse interactive input.
    pub const EXEC_DENY_INTERACTIVE: Securebits = Securebits(1 << 10);
    /// `SECBIT_EXEC_DENY_INTERACTIVE_LOCKED` (Linux 6.14).
    pub const EXEC_DENY_INTERACTIVE_LOCKED: Securebits = Securebits(1 << 11);

    const NAMED: [(Securebits, &'static str); 12] = [
        (Securebits::NOROOT, "NOROOT"),
        (Securebits::NOROOT_LOCKED, "NOROOT_LOCKED"),
        (Securebits::NO_SETUID_FIXUP, "NO_SETUID_FIXUP"),
        (Securebits::NO_SETUID_FIXUP_LOCKED, "NO_SETUID_FIXUP_LOCKED"),
        (Securebits::KEEP_CAPS, "KEEP_CAPS"),
        (Securebits::KEEP_CAPS_LOCKED, "KEEP_CAPS_LOCKED"),
        (Securebits::NO_CAP_AMBIENT_RAISE, "NO_CAP_AMBIENT_RAISE"),
        (
            Securebits::NO_CAP_AMBIENT_RAISE_LOCKED,
            "NO_CAP_AMBIENT_RAISE_LOCKED",
        ),
        (Securebits::EXEC_RESTRICT_FILE, "EXEC_RESTRICT_FILE"),
        (
            Securebits::EXEC_RESTRICT_FILE_LOCKED,
            "EXEC_RESTRICT_FILE_LOCKED",
        ),
        (Securebits::EXEC_DENY_INTERACTIVE, "EXEC_DENY_INTERACTIVE"),
        (
            Securebits::EXEC_DENY_INTERACTIVE_LOCKED,
            "EXEC_DENY_INTERACTIVE_LOCKED",
        ),
    ];

    /// No bit: [`Command::securebits`] with it clears every securebit that
    /// is not locked.
    ///
    /// ```
    /// assert!(safespawn::Securebits::empty().is_empty());
    /// ```
    pub const fn empty() -> Securebits {
        Securebits(0)
    }

    /// Every bit, each flag with its lock: the set minijail locks down to.
    ///
    /// ```
    /// use safespawn::Securebits;
    /// assert!(Securebits::all().contains(Securebits::KEEP_CAPS_LOCKED));
    /// ```
    pub const fn all() -> Securebits {
        Securebits(0x0fff)
    }

    /// Whether every bit of `other` is in `self`.
    ///
    /// ```
    /// use safespawn::Securebits;
    /// assert!(!Securebits::NOROOT.contains(Securebits::NOROOT_LOCKED));
    /// ```
    pub const fn contains(self, other: Securebits) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set has no bit.
    ///
    /// ```
    /// assert!(!safespawn::Securebits::NOROOT.is_empty());
    /// ```
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The `SECBIT_*` bits, as `prctl(PR_SET_SECUREBITS)` takes them.
    ///
    /// ```
    /// assert_eq!(safespawn::Securebits::KEEP_CAPS.bits(), 0x10);
    /// ```
    pub const fn bits(self) -> u32 {
        self.0
    }
}

impl BitOr for Securebits {
    type Output = Securebits;
    fn bitor(self, rhs: Securebits) -> Securebits {
        Securebits(self.0 | rhs.0)
    }
}

impl BitOrAssign for Securebits {
    fn bitor_assign(&mut self, rhs: Securebits) {
        self.0 |= rhs.0;
    }
}

/// `NOROOT | KEEP_CAPS`; `empty()` for the empty set.
impl fmt::Debug for Securebits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("empty()");
        }
        let names = Securebits::NAMED
            .iter()
            .filter(|(bit, _)| self.contains(*bit))
            .map(|(_, name)| *name);
        for (i, name) in names.enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

/// What a command records about credentials.
#[derive(Debug, Default)]
pub(crate) struct CredentialsConfig {
    pub securebits: Option<Securebits>,
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

    /// Sets the child's securebits to exactly `bits`
    /// (`prctl(PR_SET_SECUREBITS)`), first among the credential steps:
    /// before the bounding set, the uid change and the capability sets,
    /// which may take away the `CAP_SETPCAP` it needs (over the child's
    /// user namespace: with [`map_root`](Command::map_root) any user may
    /// set them). A bit the child inherited locked cannot be cleared, and
    /// a locked flag not changed.
    ///
    /// How the bits meet the other credential steps:
    /// * **`KEEP_CAPS`** is the flag `PR_SET_KEEPCAPS` sets. Without it the
    ///   child sets KEEPCAPS itself around a uid change when capabilities
    ///   are [allowed](Command::allow_cap), and clears it after. When
    ///   `bits` has `KEEP_CAPS` or `KEEP_CAPS_LOCKED`, the securebits own
    ///   the flag and the child does not touch it (with the lock the kernel
    ///   would refuse); the kernel clears `KEEP_CAPS` at exec either way,
    ///   so the program sees it off (and `KEEP_CAPS_LOCKED` on);
    /// * **`NO_SETUID_FIXUP`**: the uid change keeps every capability the
    ///   child has; only [`clear_caps`](Command::clear_caps) /
    ///   [`allow_cap`](Command::allow_cap) then say what remains;
    /// * **`NOROOT`**: a child that stays uid 0 gets no capabilities from
    ///   exec; those [allowed](Command::allow_cap) still reach the program,
    ///   through the ambient set;
    /// * **`NO_CAP_AMBIENT_RAISE`** forbids the ambient raise that
    ///   `allow_cap` relies on (refused at `build()`).
    ///
    /// # Errors
    ///
    /// `build()` refuses ([`BuildErrorKind::Conflict`]) `NO_CAP_AMBIENT_RAISE`
    /// with [`allow_cap`](Command::allow_cap), and `KEEP_CAPS_LOCKED`
    /// without `KEEP_CAPS` or `NO_SETUID_FIXUP` with `allow_cap` and a
    /// [`uid`](Command::uid) other than 0 (the uid change would empty the
    /// permitted set, and KEEPCAPS could not prevent it). The kernel's
    /// refusal (`EPERM`: no `CAP_SETPCAP`, a locked bit, or a bit this
    /// kernel does not know) is [`Error::Spawn`] at stage
    /// [`Securebits`](crate::Stage::Securebits).
    ///
    /// # References
    ///
    /// [`capabilities(7)`](https://man7.org/linux/man-pages/man7/capabilities.7.html),
    /// `PR_SET_SECUREBITS` in [`prctl(2)`](https://man7.org/linux/man-pages/man2/prctl.2.html);
    /// Linux 2.6.26 (the bits: see [`Securebits`]).
    ///
    /// ```
    /// use safespawn::{Command, Securebits};
    /// // Root of a new user namespace may set them; no privilege needed.
    /// let cmd = Command::new("true")
    ///     .map_root()
    ///     .securebits(Securebits::NOROOT | Securebits::NOROOT_LOCKED);
    /// # drop(cmd);
    /// ```
    pub fn securebits(mut self, bits: Securebits) -> Self {
        self.cfg.creds.securebits = Some(bits);
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
        if let Some(bits) = self.securebits {
            self.check_securebits(bits)?;
        }
        Ok(Credentials {
            securebits: self.securebits.map(Securebits::bits),
            keepcaps_by_securebits: self.securebits.is_some_and(|b| {
                b.contains(Securebits::KEEP_CAPS) || b.contains(Securebits::KEEP_CAPS_LOCKED)
            }),
            groups,
            gid: self.gid.map(Gid::from_raw),
            uid: self.uid.map(Uid::from_raw),
            caps,
            no_new_privs: self.no_new_privs,
        })
    }
}

impl CredentialsConfig {
    /// The securebits against the other credential options: what the
    /// child's steps would have the kernel refuse.
    fn check_securebits(&self, bits: Securebits) -> Result<(), Error> {
        let conflict = |problem: &str| {
            Err(Error::build(
                BuildErrorKind::Conflict,
                format!("securebits({bits:?})"),
                problem,
            ))
        };
        if self.allowed_caps != 0 && bits.contains(Securebits::NO_CAP_AMBIENT_RAISE) {
            return conflict(
                "allow_cap raises the allowed capabilities into the ambient set, which NO_CAP_AMBIENT_RAISE forbids",
            );
        }
        let uid_drops_caps = self.uid.is_some_and(|u| u != 0);
        if self.allowed_caps != 0
            && uid_drops_caps
            && bits.contains(Securebits::KEEP_CAPS_LOCKED)
            && !bits.contains(Securebits::KEEP_CAPS)
            && !bits.contains(Securebits::NO_SETUID_FIXUP)
        {
            return conflict(
                "the uid change would empty the permitted set that allow_cap keeps: KEEP_CAPS_LOCKED without KEEP_CAPS (or NO_SETUID_FIXUP) forbids the KEEPCAPS that prevents it",
            );
        }
        Ok(())
    }
}
