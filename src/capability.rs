//! The Linux capabilities, as the crate's own enum.

use std::fmt;
use std::str::FromStr;

/// One Linux capability (see [capabilities(7)]), for
/// [`Command::allow_cap`](crate::Command::allow_cap).
///
/// The discriminant is the kernel's capability number. Names parse from the
/// forms `NET_BIND_SERVICE`, `CAP_NET_BIND_SERVICE` and `net_bind_service`.
///
/// ```
/// use safespawn::Capability;
/// assert_eq!(Capability::NetBindService as u8, 10);
/// assert_eq!("cap_net_bind_service".parse::<Capability>(), Ok(Capability::NetBindService));
/// assert_eq!(Capability::NetBindService.to_string(), "CAP_NET_BIND_SERVICE");
/// ```
///
/// [capabilities(7)]: https://man7.org/linux/man-pages/man7/capabilities.7.html
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
#[non_exhaustive]
pub enum Capability {
    /// `CAP_CHOWN`.
    Chown = 0,
    /// `CAP_DAC_OVERRIDE`.
    DacOverride = 1,
    /// `CAP_DAC_READ_SEARCH`.
    DacReadSearch = 2,
    /// `CAP_FOWNER`.
    Fowner = 3,
    /// `CAP_FSETID`.
    Fsetid = 4,
    /// `CAP_KILL`.
    Kill = 5,
    /// `CAP_SETGID`.
    Setgid = 6,
    /// `CAP_SETUID`.
    Setuid = 7,
    /// `CAP_SETPCAP`.
    Setpcap = 8,
    /// `CAP_LINUX_IMMUTABLE`.
    LinuxImmutable = 9,
    /// `CAP_NET_BIND_SERVICE`.
    NetBindService = 10,
    /// `CAP_NET_BROADCAST`.
    NetBroadcast = 11,
    /// `CAP_NET_ADMIN`.
    NetAdmin = 12,
    /// `CAP_NET_RAW`.
    NetRaw = 13,
    /// `CAP_IPC_LOCK`.
    IpcLock = 14,
    /// `CAP_IPC_OWNER`.
    IpcOwner = 15,
    /// `CAP_SYS_MODULE`.
    SysModule = 16,
    /// `CAP_SYS_RAWIO`.
    SysRawio = 17,
    /// `CAP_SYS_CHROOT`.
    SysChroot = 18,
    /// `CAP_SYS_PTRACE`.
    SysPtrace = 19,
    /// `CAP_SYS_PACCT`.
    SysPacct = 20,
    /// `CAP_SYS_ADMIN`.
    SysAdmin = 21,
    /// `CAP_SYS_BOOT`.
    SysBoot = 22,
    /// `CAP_SYS_NICE`.
    SysNice = 23,
    /// `CAP_SYS_RESOURCE`.
    SysResource = 24,
    /// `CAP_SYS_TIME`.
    SysTime = 25,
    /// `CAP_SYS_TTY_CONFIG`.
    SysTtyConfig = 26,
    /// `CAP_MKNOD`.
    Mknod = 27,
    /// `CAP_LEASE`.
    Lease = 28,
    /// `CAP_AUDIT_WRITE`.
    AuditWrite = 29,
    /// `CAP_AUDIT_CONTROL`.
    AuditControl = 30,
    /// `CAP_SETFCAP`.
    Setfcap = 31,
    /// `CAP_MAC_OVERRIDE`.
    MacOverride = 32,
    /// `CAP_MAC_ADMIN`.
    MacAdmin = 33,
    /// `CAP_SYSLOG`.
    Syslog = 34,
    /// `CAP_WAKE_ALARM`.
    WakeAlarm = 35,
    /// `CAP_BLOCK_SUSPEND`.
    BlockSuspend = 36,
    /// `CAP_AUDIT_READ`.
    AuditRead = 37,
    /// `CAP_PERFMON`.
    Perfmon = 38,
    /// `CAP_BPF`.
    Bpf = 39,
    /// `CAP_CHECKPOINT_RESTORE`.
    CheckpointRestore = 40,
}

impl Capability {
    /// Every capability, in kernel order.
    pub const ALL: [Capability; 41] = [
        Capability::Chown,
        Capability::DacOverride,
        Capability::DacReadSearch,
        Capability::Fowner,
        Capability::Fsetid,
        Capability::Kill,
        Capability::Setgid,
        Capability::Setuid,
        Capability::Setpcap,
        Capability::LinuxImmutable,
        Capability::NetBindService,
        Capability::NetBroadcast,
        Capability::NetAdmin,
        Capability::NetRaw,
        Capability::IpcLock,
        Capability::IpcOwner,
        Capability::SysModule,
        Capability::SysRawio,
        Capability::SysChroot,
        Capability::SysPtrace,
        Capability::SysPacct,
        Capability::SysAdmin,
        Capability::SysBoot,
        Capability::SysNice,
        Capability::SysResource,
        Capability::SysTime,
        Capability::SysTtyConfig,
        Capability::Mknod,
        Capability::Lease,
        Capability::AuditWrite,
        Capability::AuditControl,
        Capability::Setfcap,
        Capability::MacOverride,
        Capability::MacAdmin,
        Capability::Syslog,
        Capability::WakeAlarm,
        Capability::BlockSuspend,
        Capability::AuditRead,
        Capability::Perfmon,
        Capability::Bpf,
        Capability::CheckpointRestore,
    ];

    /// The kernel name without the `CAP_` prefix, e.g. `NET_BIND_SERVICE`.
    ///
    /// ```
    /// assert_eq!(safespawn::Capability::SysAdmin.name(), "SYS_ADMIN");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Capability::Chown => "CHOWN",
            Capability::DacOverride => "DAC_OVERRIDE",
            Capability::DacReadSearch => "DAC_READ_SEARCH",
            Capability::Fowner => "FOWNER",
            Capability::Fsetid => "FSETID",
            Capability::Kill => "KILL",
            Capability::Setgid => "SETGID",
            Capability::Setuid => "SETUID",
            Capability::Setpcap => "SETPCAP",
            Capability::LinuxImmutable => "LINUX_IMMUTABLE",
            Capability::NetBindService => "NET_BIND_SERVICE",
            Capability::NetBroadcast => "NET_BROADCAST",
            Capability::NetAdmin => "NET_ADMIN",
            Capability::NetRaw => "NET_RAW",
            Capability::IpcLock => "IPC_LOCK",
            Capability::IpcOwner => "IPC_OWNER",
            Capability::SysModule => "SYS_MODULE",
            Capability::SysRawio => "SYS_RAWIO",
            Capability::SysChroot => "SYS_CHROOT",
            Capability::SysPtrace => "SYS_PTRACE",
            Capability::SysPacct => "SYS_PACCT",
            Capability::SysAdmin => "SYS_ADMIN",
            Capability::SysBoot => "SYS_BOOT",
            Capability::SysNice => "SYS_NICE",
            Capability::SysResource => "SYS_RESOURCE",
            Capability::SysTime => "SYS_TIME",
            Capability::SysTtyConfig => "SYS_TTY_CONFIG",
            Capability::Mknod => "MKNOD",
            Capability::Lease => "LEASE",
            Capability::AuditWrite => "AUDIT_WRITE",
            Capability::AuditControl => "AUDIT_CONTROL",
            Capability::Setfcap => "SETFCAP",
            Capability::MacOverride => "MAC_OVERRIDE",
            Capability::MacAdmin => "MAC_ADMIN",
            Capability::Syslog => "SYSLOG",
            Capability::WakeAlarm => "WAKE_ALARM",
            Capability::BlockSuspend => "BLOCK_SUSPEND",
            Capability::AuditRead => "AUDIT_READ",
            Capability::Perfmon => "PERFMON",
            Capability::Bpf => "BPF",
            Capability::CheckpointRestore => "CHECKPOINT_RESTORE",
        }
    }

    /// The capability's bit in a capability set.
    pub(crate) const fn bit(self) -> u64 {
        1u64 << (self as u8)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CAP_{}", self.name())
    }
}

/// The error of parsing an unknown capability name.
///
/// ```
/// assert!("CAP_FLY".parse::<safespawn::Capability>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCapability(pub String);

impl fmt::Display for UnknownCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown capability {:?}", self.0)
    }
}

impl std::error::Error for UnknownCapability {}

impl FromStr for Capability {
    type Err = UnknownCapability;

    /// Parses `NET_BIND_SERVICE`, `CAP_NET_BIND_SERVICE` or
    /// `net_bind_service` (any case).
    ///
    /// # Errors
    ///
    /// [`UnknownCapability`], holding `s`, for a name that is none of the
    /// capabilities in [`Capability::ALL`].
    ///
    /// ```
    /// use safespawn::{Capability, UnknownCapability};
    /// assert_eq!("Cap_Kill".parse::<Capability>(), Ok(Capability::Kill));
    /// assert_eq!("fly".parse::<Capability>(), Err(UnknownCapability("fly".into())));
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        Capability::ALL
            .iter()
            .copied()
            .find(|c| c.name() == bare)
            .ok_or_else(|| UnknownCapability(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_match_the_kernel() {
        for (i, c) in Capability::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
            assert_eq!(c.name().parse::<Capability>(), Ok(*c));
        }
        assert_eq!(Capability::ALL.len(), 41);
        assert_eq!(Capability::CheckpointRestore as u8, 40);
    }
}
