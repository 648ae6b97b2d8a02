//! Process knobs: the nice value ([`Command::nice`]), the CPU affinity
//! ([`Command::cpu_affinity`]), core scheduling ([`Command::sched_core_new`],
//! [`Command::sched_core_share_from`]), the OOM score adjustment
//! ([`Command::oom_score_adj`]) and the execution domain
//! ([`Command::personality`] with [`Personality`]). The order the child sets
//! them in, and why, is in the child's `knobs` room.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};
use std::os::fd::OwnedFd;

use rustix::process::Pid;
use rustix::thread::CpuSet;

use super::Command;
use crate::child::knobs::{KnobsPlan, SchedCore};
use crate::command::namespaces::Namespaces;
use crate::error::{BuildErrorKind, Error};
use crate::mode::Mode;

/// An execution domain for [`Command::personality`]: a domain in the low
/// byte ([`LINUX`](Personality::LINUX), [`LINUX32`](Personality::LINUX32))
/// and flags above it, combined with `|`. The values are the kernel's
/// (`<linux/personality.h>`); [`from_raw`](Personality::from_raw) takes any
/// other.
///
/// ```
/// use safespawn::Personality;
/// let p = Personality::LINUX32 | Personality::ADDR_NO_RANDOMIZE;
/// assert_eq!(p.raw(), 0x0004_0008);
/// assert!(p.contains(Personality::ADDR_NO_RANDOMIZE));
/// assert_eq!(format!("{p:?}"), "LINUX32 | ADDR_NO_RANDOMIZE");
/// assert_eq!(format!("{:?}", Personality::LINUX), "LINUX");
/// ```
///
/// # Errors
///
/// None here: [`Command::personality`] checks the value at `build()`.
///
/// # References
///
/// [`personality(2)`](https://man7.org/linux/man-pages/man2/personality.2.html);
/// any Linux (`UNAME26` 3.1).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Personality(u32);

impl Personality {
    /// The Linux domain (`PER_LINUX`, 0): what every process has.
    pub const LINUX: Personality = Personality(0);
    /// 32-bit Linux (`PER_LINUX32`): `uname` reports a 32-bit machine
    /// (`i686` on x86_64), as linux32(1) / setarch(8) do.
    pub const LINUX32: Personality = Personality(0x0008);
    /// `UNAME26`: `uname` reports a 2.6 kernel version.
    pub const UNAME26: Personality = Personality(0x0002_0000);
    /// `ADDR_NO_RANDOMIZE`: no address-space layout randomisation for the
    /// program (setarch's `-R`).
    pub const ADDR_NO_RANDOMIZE: Personality = Personality(0x0004_0000);
    /// `FDPIC_FUNCPTRS`: function pointers point to descriptors (FDPIC
    /// binaries).
    pub const FDPIC_FUNCPTRS: Personality = Personality(0x0008_0000);
    /// `MMAP_PAGE_ZERO`: page 0 is mapped read-only at exec (SVr4).
    pub const MMAP_PAGE_ZERO: Personality = Personality(0x0010_0000);
    /// `ADDR_COMPAT_LAYOUT`: the legacy virtual address-space layout.
    pub const ADDR_COMPAT_LAYOUT: Personality = Personality(0x0020_0000);
    /// `READ_IMPLIES_EXEC`: readable mappings are executable too. x86_64
    /// clears it when it loads a 64-bit program (unless the program's ELF
    /// headers ask for it), so it reaches 32-bit programs only there.
    pub const READ_IMPLIES_EXEC: Personality = Personality(0x0040_0000);
    /// `ADDR_LIMIT_32BIT`: addresses stay below 4 GiB.
    pub const ADDR_LIMIT_32BIT: Personality = Personality(0x0080_0000);
    /// `SHORT_INODE`: no effect on Linux.
    pub const SHORT_INODE: Personality = Personality(0x0100_0000);
    /// `WHOLE_SECONDS`: no effect on Linux.
    pub const WHOLE_SECONDS: Personality = Personality(0x0200_0000);
    /// `STICKY_TIMEOUTS`: `select` and friends do not update their timeout.
    pub const STICKY_TIMEOUTS: Personality = Personality(0x0400_0000);
    /// `ADDR_LIMIT_3GB`: the stack starts below 3 GiB (32-bit programs).
    pub const ADDR_LIMIT_3GB: Personality = Personality(0x0800_0000);

    /// The flags with their names, in bit order.
    const FLAGS: [(Personality, &'static str); 12] = [
        (Personality::UNAME26, "UNAME26"),
        (Personality::ADDR_NO_RANDOMIZE, "ADDR_NO_RANDOMIZE"),
        (Personality::FDPIC_FUNCPTRS, "FDPIC_FUNCPTRS"),
        (Personality::MMAP_PAGE_ZERO, "MMAP_PAGE_ZERO"),
        (Personality::ADDR_COMPAT_LAYOUT, "ADDR_COMPAT_LAYOUT"),
        (Personality::READ_IMPLIES_EXEC, "READ_IMPLIES_EXEC"),
        (Personality::ADDR_LIMIT_32BIT, "ADDR_LIMIT_32BIT"),
        (Personality::SHORT_INODE, "SHORT_INODE"),
        (Personality::WHOLE_SECONDS, "WHOLE_SECONDS"),
        (Personality::STICKY_TIMEOUTS, "STICKY_TIMEOUTS"),
        (Personality::ADDR_LIMIT_3GB, "ADDR_LIMIT_3GB"),
        (Personality(0), ""),
    ];

    /// A persona from its number, as `personality(2)` takes it (another
    /// domain, say). `0xffffffff` is the kernel's query, not a persona:
    /// [`Command::personality`] refuses it at `build()`.
    ///
    /// ```
    /// use safespawn::Personality;
    /// assert_eq!(Personality::from_raw(0x0040000), Personality::ADDR_NO_RANDOMIZE);
    /// ```
    pub const fn from_raw(raw: u32) -> Personality {
        Personality(raw)
    }

    /// The number `personality(2)` takes.
    ///
    /// ```
    /// assert_eq!(safespawn::Personality::LINUX32.raw(), 8);
    /// ```
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// Whether every flag (and the domain) of `other` is in `self`.
    ///
    /// ```
    /// use safespawn::Personality;
    /// let p = Personality::READ_IMPLIES_EXEC | Personality::ADDR_NO_RANDOMIZE;
    /// assert!(p.contains(Personality::READ_IMPLIES_EXEC));
    /// assert!(!p.contains(Personality::LINUX32));
    /// ```
    pub const fn contains(self, other: Personality) -> bool {
        self.0 & other.0 == other.0
    }
}

impl Default for Personality {
    fn default() -> Self {
        Personality::LINUX
    }
}

impl BitOr for Personality {
    type Output = Personality;
    fn bitor(self, rhs: Personality) -> Personality {
        Personality(self.0 | rhs.0)
    }
}

impl BitOrAssign for Personality {
    fn bitor_assign(&mut self, rhs: Personality) {
        self.0 |= rhs.0;
    }
}

/// The domain, then the flags: `LINUX32 | ADDR_NO_RANDOMIZE`; `LINUX` alone
/// for 0; what has no name in hex.
impl fmt::Debug for Personality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        let domain = self.0 & 0xff;
        match domain {
            0 => {}
            0x08 => parts.push("LINUX32".into()),
            d => parts.push(format!("domain {d:#x}")),
        }
        let mut rest = self.0 & !0xff;
        for (flag, name) in Personality::FLAGS {
            if flag.0 != 0 && rest & flag.0 != 0 {
                parts.push(name.into());
                rest &= !flag.0;
            }
        }
        if rest != 0 {
            parts.push(format!("{rest:#x}"));
        }
        if parts.is_empty() {
            return f.write_str("LINUX");
        }
        f.write_str(&parts.join(" | "))
    }
}

/// What a command records about its process knobs.
#[derive(Debug, Default)]
pub(crate) struct KnobsConfig {
    pub nice: Option<i32>,
    pub cpus: Option<Vec<usize>>,
    /// Every `sched_core_*` call, in order.
    pub sched_core: Vec<SchedCoreCall>,
    pub oom_score_adj: Option<i32>,
    pub personality: Option<Personality>,
}

/// One call of `sched_core_new` / `sched_core_share_from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SchedCoreCall {
    New,
    ShareFrom(i32),
}

impl fmt::Display for SchedCoreCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchedCoreCall::New => f.write_str("sched_core_new()"),
            SchedCoreCall::ShareFrom(pid) => write!(f, "sched_core_share_from({pid})"),
        }
    }
}

impl<M: Mode> Command<M> {
    /// The child's nice value, -20 (most favourable) to 19, set with
    /// `setpriority(PRIO_PROCESS, 0, n)` before the uid change. A value
    /// below the one the child inherits needs `CAP_SYS_NICE` (in the
    /// initial user namespace: [`map_root`](Command::map_root) does not
    /// give it), or an `RLIMIT_NICE` that allows it (the command's own
    /// [`rlimit`](Command::rlimit)`(Resource::Nice, ..)` counts: the limits
    /// are set just before); any user may raise it.
    ///
    /// # Errors
    ///
    /// `build()` refuses a value outside -20..=19
    /// ([`BuildErrorKind::Invalid`]). The kernel's refusal (`EACCES` for a
    /// lower value without the privilege) is [`Error::Spawn`] at stage
    /// [`Sched`](crate::Stage::Sched).
    ///
    /// # References
    ///
    /// [`setpriority(2)`](https://man7.org/linux/man-pages/man2/setpriority.2.html),
    /// [`sched(7)`](https://man7.org/linux/man-pages/man7/sched.7.html);
    /// any Linux (`RLIMIT_NICE` 2.6.12).
    ///
    /// ```
    /// let cmd = safespawn::Command::new("sh").args(["-c", "test $(nice) = 19"]).nice(19);
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn nice(mut self, n: i32) -> Self {
        self.cfg.knobs.nice = Some(n);
        self
    }

    /// The CPUs the child may run on (`sched_setaffinity(0, ..)`), numbered
    /// as in `/sys/devices/system/cpu`; repeated numbers are fine. The
    /// kernel keeps of the set what the child's cpuset allows: CPUs outside
    /// it, or not online, are left out, and a set with none of the allowed
    /// CPUs is refused (`EINVAL`). That is decided at the spawn, not at
    /// `build()`: a container's cpuset, and which CPUs are online, may
    /// change in between, and the kernel's answer is the one that counts.
    /// Any user may restrict a child of their own.
    ///
    /// # Errors
    ///
    /// `build()` refuses an empty set and a CPU number not below
    /// `CPU_SETSIZE` (1024) ([`BuildErrorKind::Invalid`]). The kernel's
    /// refusal (`EINVAL`: no CPU of the set is usable by the child) is
    /// [`Error::Spawn`] at stage [`Sched`](crate::Stage::Sched).
    ///
    /// # References
    ///
    /// [`sched_setaffinity(2)`](https://man7.org/linux/man-pages/man2/sched_setaffinity.2.html),
    /// [`cpuset(7)`](https://man7.org/linux/man-pages/man7/cpuset.7.html);
    /// Linux 2.5.8.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("grep")
    ///     .args(["-q", "^Cpus_allowed_list:\t0$", "/proc/self/status"])
    ///     .cpu_affinity(&[0]);
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn cpu_affinity(mut self, cpus: &[usize]) -> Self {
        self.cfg.knobs.cpus = Some(cpus.to_vec());
        self
    }

    /// Gives the child a core-scheduling cookie of its own (libvirt's
    /// SetRunAlone): from its start, no task without that cookie runs on a
    /// sibling hyperthread of the CPU core it runs on, so no other process
    /// shares a core's caches and buffers with it (a defence against
    /// side channels between SMT siblings). Its children inherit the
    /// cookie. `PR_SCHED_CORE_CREATE` on the child's thread group, before
    /// the uid change. Any user may do it for a child of their own.
    ///
    /// # Errors
    ///
    /// `build()` refuses ([`BuildErrorKind::Conflict`]) it where this
    /// system has no core scheduling (before Linux 5.14, a kernel built
    /// without `CONFIG_SCHED_CORE`, a CPU without SMT, or a seccomp filter
    /// refusing the call; asked once per process, the kernel's errno in the
    /// message), and together with
    /// [`sched_core_share_from`](Command::sched_core_share_from). The
    /// kernel's refusal at the spawn is [`Error::Spawn`] at stage
    /// [`Sched`](crate::Stage::Sched).
    ///
    /// # References
    ///
    /// `PR_SCHED_CORE` in [`prctl(2)`](https://man7.org/linux/man-pages/man2/prctl.2.html),
    /// the kernel's
    /// [core scheduling](https://docs.kernel.org/admin-guide/hw-vuln/core-scheduling.html)
    /// documentation; Linux 5.14.
    ///
    /// ```
    /// use safespawn::{BuildErrorKind, Command};
    /// match Command::new("true").sched_core_new().build() {
    ///     Ok(prepared) => assert!(prepared.status()?.success()),
    ///     // No core scheduling on this system.
    ///     Err(e) => assert_eq!(e.build_kind(), Some(BuildErrorKind::Conflict)),
    /// }
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn sched_core_new(mut self) -> Self {
        self.cfg.knobs.sched_core.push(SchedCoreCall::New);
        self
    }

    /// Puts the child in the core-scheduling group of process `pid`
    /// (libvirt's SetRunAmong): it takes that process's cookie, so the two
    /// may share a CPU core's hyperthreads, and nothing else may (see
    /// [`sched_core_new`](Command::sched_core_new)).
    /// `PR_SCHED_CORE_SHARE_FROM`, before the uid change: it needs ptrace
    /// access (`PTRACE_MODE_READ_REALCREDS`) to `pid`. The pid is looked up
    /// in the child's pid namespace, so it cannot be combined with
    /// [`unshare`](Command::unshare)`(Namespaces::PID)`.
    ///
    /// # Errors
    ///
    /// `build()` refuses a `pid` that is not positive
    /// ([`BuildErrorKind::Invalid`]), and ([`BuildErrorKind::Conflict`]) a
    /// system without core scheduling (as for `sched_core_new`), a new pid
    /// namespace, and `sched_core_new` on the same command. The kernel's
    /// refusal (`ESRCH`: no such process; `EPERM`: no ptrace access to it)
    /// is [`Error::Spawn`] at stage [`Sched`](crate::Stage::Sched).
    ///
    /// # References
    ///
    /// As [`sched_core_new`](Command::sched_core_new);
    /// [`ptrace(2)`](https://man7.org/linux/man-pages/man2/ptrace.2.html)
    /// for the access check. Linux 5.14.
    ///
    /// ```
    /// use safespawn::{BuildErrorKind, Command};
    /// let me = std::process::id() as i32;
    /// match Command::new("true").sched_core_share_from(me).build() {
    ///     Ok(prepared) => assert!(prepared.status()?.success()),
    ///     Err(e) => assert_eq!(e.build_kind(), Some(BuildErrorKind::Conflict)),
    /// }
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn sched_core_share_from(mut self, pid: i32) -> Self {
        self.cfg
            .knobs
            .sched_core
            .push(SchedCoreCall::ShareFrom(pid));
        self
    }

    /// The child's OOM score adjustment, -1000 (never chosen by the OOM
    /// killer) to 1000 (chosen first), written to
    /// `/proc/self/oom_score_adj` before the uid change. A value below the
    /// one the child inherits needs `CAP_SYS_RESOURCE` (in the initial user
    /// namespace); any user may raise it.
    ///
    /// `build()` opens `/proc` (an `O_PATH` fd the [`Prepared`](crate::Prepared)
    /// keeps), and the child writes through it: the file is found even
    /// when the child's own view has no `/proc` after its mounts (a
    /// [`root_tmpfs`](Command::root_tmpfs) without `Mount::proc`), and in a
    /// new pid namespace (`self` in the caller's `/proc` is the child
    /// there too). It is the child's alone: the kernel carries a new value
    /// to every process sharing the writer's memory, except from a vfork
    /// child, which the child sharing the caller's memory always is.
    ///
    /// # Errors
    ///
    /// `build()` refuses a value outside -1000..=1000
    /// ([`BuildErrorKind::Invalid`]), and a caller without a proc file
    /// system at `/proc` ([`BuildErrorKind::Conflict`]). The kernel's
    /// refusal (`EACCES` for a lower value without the privilege) is
    /// [`Error::Spawn`] at stage [`OomScoreAdj`](crate::Stage::OomScoreAdj).
    ///
    /// # References
    ///
    /// `/proc/pid/oom_score_adj` in [`proc_pid_oom_score_adj(5)`](https://man7.org/linux/man-pages/man5/proc_pid_oom_score_adj.5.html);
    /// Linux 2.6.36.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("sh")
    ///     .args(["-c", "test $(cat /proc/self/oom_score_adj) = 500"])
    ///     .oom_score_adj(500);
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn oom_score_adj(mut self, n: i32) -> Self {
        self.cfg.knobs.oom_score_adj = Some(n);
        self
    }

    /// The child's execution domain (`personality(2)`), set after the other
    /// knobs and before the security label and the credentials; any user
    /// may set it. The flags that shape the program's address space
    /// (`ADDR_NO_RANDOMIZE`, `MMAP_PAGE_ZERO`, ...) take effect at its
    /// exec; the domain (`LINUX32`) at once; the program's loader may
    /// adjust some (see [`Personality::READ_IMPLIES_EXEC`]). The kernel
    /// clears `ADDR_NO_RANDOMIZE`, `ADDR_COMPAT_LAYOUT` and
    /// `MMAP_PAGE_ZERO` when the exec gains privilege (a set-user-ID
    /// program, file capabilities, an SELinux transition that asks for it).
    ///
    /// # Errors
    ///
    /// `build()` refuses `0xffffffff`, which the kernel reads as a query
    /// ([`BuildErrorKind::Invalid`]). The kernel itself refuses nothing; a
    /// seccomp filter's refusal (Docker's default profile allows only a few
    /// personas) is [`Error::Spawn`] at stage
    /// [`Personality`](crate::Stage::Personality).
    ///
    /// # References
    ///
    /// [`personality(2)`](https://man7.org/linux/man-pages/man2/personality.2.html),
    /// [`setarch(8)`](https://man7.org/linux/man-pages/man8/setarch.8.html);
    /// any Linux.
    ///
    /// ```
    /// use safespawn::{Command, Personality};
    /// let cmd = Command::new("sh")
    ///     .args(["-c", "test $(cat /proc/self/personality) = 00040000"])
    ///     .personality(Personality::ADDR_NO_RANDOMIZE);
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn personality(mut self, persona: Personality) -> Self {
        self.cfg.knobs.personality = Some(persona);
        self
    }
}

impl KnobsConfig {
    /// Checks the values and prepares the child's part. `unshared`: the
    /// kinds of namespace the child gets new.
    pub(crate) fn freeze(&self, unshared: Namespaces) -> Result<KnobsPlan, Error> {
        let invalid = |item: String, problem: String| {
            Err(Error::build(BuildErrorKind::Invalid, item, problem))
        };
        if let Some(n) = self.nice.filter(|n| !(-20..=19).contains(n)) {
            return invalid(format!("nice {n}"), "is outside -20..=19".into());
        }
        let affinity = match &self.cpus {
            None => None,
            Some(cpus) if cpus.is_empty() => {
                return invalid(
                    "cpu_affinity []".into(),
                    "names no CPU: a child must be allowed at least one".into(),
                )
            }
            Some(cpus) => {
                let mut set = CpuSet::new();
                for &cpu in cpus {
                    if cpu >= CpuSet::MAX_CPU {
                        return invalid(
                            format!("cpu_affinity CPU {cpu}"),
                            format!("is not below CPU_SETSIZE ({})", CpuSet::MAX_CPU),
                        );
                    }
                    set.set(cpu);
                }
                Some(set)
            }
        };
        let sched_core = self.sched_core(unshared)?;
        if let Some(n) = self.oom_score_adj.filter(|n| !(-1000..=1000).contains(n)) {
            return invalid(
                format!("oom_score_adj {n}"),
                "is outside -1000..=1000".into(),
            );
        }
        if let Some(p) = self.personality.filter(|p| p.0 == u32::MAX) {
            return invalid(
                format!("personality {:#x}", p.0),
                "is the kernel's query value (0xffffffff), not a persona".into(),
            );
        }
        Ok(KnobsPlan {
            nice: self.nice,
            affinity,
            sched_core,
            oom_score_adj: self
                .oom_score_adj
                .map(|n| n.to_string().into_bytes().into()),
            personality: self.personality.map(Personality::raw),
        })
    }

    /// The core-scheduling request: the last call, checked against the
    /// others, the namespaces and this system.
    fn sched_core(&self, unshared: Namespaces) -> Result<Option<SchedCore>, Error> {
        let Some(&last) = self.sched_core.last() else {
            return Ok(None);
        };
        if let Some(other) = self.sched_core.iter().find(|c| **c != last) {
            return Err(Error::build(
                BuildErrorKind::Conflict,
                format!("{last}"),
                format!("{other} asks for another core-scheduling group: choose one"),
            ));
        }
        let ask = match last {
            SchedCoreCall::New => SchedCore::New,
            SchedCoreCall::ShareFrom(raw) => {
                let Some(pid) = Pid::from_raw(raw).filter(|_| raw > 0) else {
                    return Err(Error::build(
                        BuildErrorKind::Invalid,
                        format!("{last}"),
                        "is not a process id (it must be positive)",
                    ));
                };
                if unshared.contains(Namespaces::PID) {
                    return Err(Error::build(
                        BuildErrorKind::Conflict,
                        format!("{last}"),
                        "with unshare(PID) the child would look the pid up in its new pid namespace, where it does not exist",
                    ));
                }
                SchedCore::ShareFrom(pid)
            }
        };
        if let Err(e) = crate::sys::knobs::core_scheduling() {
            return Err(Error::build(
                BuildErrorKind::Conflict,
                format!("{last}"),
                format!(
                    "this system has no core scheduling (PR_SCHED_CORE needs Linux 5.14 built with CONFIG_SCHED_CORE, on a CPU with SMT): prctl answers {e}"
                ),
            ));
        }
        Ok(Some(ask))
    }
}

/// Opens `/proc` for the plan, for `item` (the option that needs it).
pub(crate) fn open_proc(item: &str) -> Result<OwnedFd, Error> {
    crate::sys::knobs::open_procfs().map_err(|e| {
        Error::build(
            BuildErrorKind::Conflict,
            item,
            format!(
                "needs a proc file system at /proc at build(), to write through it in the child: {}",
                if e == rustix::io::Errno::NODEV {
                    "/proc is not one".to_owned()
                } else {
                    e.to_string()
                }
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personality_debug_names_domain_flags_and_the_rest() {
        assert_eq!(
            format!("{:?}", Personality::from_raw(0x0800_0008 | 0x1000_0000)),
            "LINUX32 | ADDR_LIMIT_3GB | 0x10000000"
        );
        assert_eq!(format!("{:?}", Personality::from_raw(0x10)), "domain 0x10");
    }
}
