//! `compat-run`: runs a program as if on an older kernel, or inside a
//! container whose seccomp profile refuses newer system calls.
//!
//! ```text
//! compat-run PROFILE -- PROGRAM [ARGS...]
//! compat-run --list
//! ```
//!
//! The launcher installs a seccomp filter for the profile (a classic BPF
//! program built by hand, see [`filter`]) and `execvp`s the program. The
//! filter is inherited by every descendant and can never be removed, so a
//! whole test binary, and everything it spawns, sees the profile. It exists to run safespawn's test suite against the fallbacks
//! the library needs on such systems (`.ci/compat-profiles` does that for
//! every profile; see TESTING.md).
//!
//! This crate does not use the safespawn library: it has to keep working,
//! and keep telling the truth, while the library is broken.
//!
//! # Profiles
//!
//! Each rule makes one system call fail with an errno *before* the kernel
//! looks at it; every other call, and every call from another architecture
//! (the filter checks `seccomp_data.arch` first), is allowed. `5.3` and
//! `4.18` add to `5.4`; the others stand alone.
//!
//! | profile | rules |
//! |---|---|
//! | `none` | no filter, no `no_new_privs`: a control run through the same `execvp` |
//! | `5.4` | `clone3` → `ENOSYS`; `close_range` → `ENOSYS`; `mount_setattr` → `ENOSYS`; `landlock_create_ruleset`, `landlock_add_rule`, `landlock_restrict_self` → `ENOSYS` |
//! | `5.3` | as `5.4`, and `waitid` whose first argument (idtype) is `P_PIDFD` (3) → `EINVAL` |
//! | `4.18` | as `5.3`, and `pidfd_open`, `pidfd_send_signal`, `pidfd_getfd` → `ENOSYS`; `clone` whose flags (first argument) contain `CLONE_PIDFD` (`0x1000`) → `EINVAL` |
//! | `docker-eperm` | `clone3` → `EPERM`; `close_range` → `EPERM`; `mount_setattr` → `EPERM`; the three landlock calls → `EPERM` |
//! | `docker-eperm-old-glibc` | `clone3` whose size argument is glibc's (88) → `ENOSYS`, every other `clone3` → `EPERM`; `close_range` → `EPERM`; `mount_setattr` → `EPERM`; the three landlock calls → `EPERM` |
//! | `no-proc` | `close_range` → `ENOSYS`; `/proc` is not mounted (below) |
//!
//! ## What each profile stands for, and where it differs from the real thing
//!
//! The profile names say what the *library* must cope with; a few rules are
//! simplified on purpose. For reference, the kernel versions that added each
//! call: `pidfd_send_signal` 5.1; `CLONE_PIDFD` 5.2; `clone3` and
//! `pidfd_open` 5.3; `waitid(P_PIDFD)` 5.4; `CLONE_CLEAR_SIGHAND` 5.5;
//! `pidfd_getfd` 5.6; `close_range` 5.9; `CLOSE_RANGE_CLOEXEC` 5.11;
//! `mount_setattr` 5.12 (without it read-only binds take the remount path);
//! the landlock calls 5.13 (without them a `Landlock` is refused at
//! `build()`, best effort or not).
//!
//! * **`5.4`**: a kernel before `close_range` (5.9) on which `clone3` is
//!   refused. A real 5.4 has `clone3` but not `CLONE_CLEAR_SIGHAND` (5.5),
//!   so it answers safespawn's `clone3` with `EINVAL` rather than `ENOSYS`;
//!   either way no child is made and the caller must fall back to `clone`.
//!   A real 5.4 also lacks `pidfd_getfd` (5.6), which safespawn does not use.
//! * **`5.3`**: additionally no `waitid(P_PIDFD)` (5.4). A real 5.3 answers
//!   an unknown idtype with `EINVAL`, which is what the filter returns, after
//!   looking at `waitid`'s first argument only (`waitid(P_PID, ...)` and
//!   `waitid(P_ALL, ...)` still work).
//! * **`4.18`**: no pidfds at all (RHEL 8's kernel). On a real 4.18
//!   `CLONE_PIDFD` (`0x1000`, the old, unused `CLONE_PID` bit) is *ignored*:
//!   `clone` succeeds, no pidfd is made and the parent's pidfd slot is left
//!   untouched, so a caller that initialised it to -1 still reads -1 after a
//!   successful clone. A seccomp filter cannot make the kernel ignore a flag:
//!   it can only let the call through (and the pidfd be made) or fail it.
//!   The profile therefore fails `clone` with `CLONE_PIDFD` in its flags
//!   with `EINVAL` (what 5.1-era kernels effectively did for some flag
//!   combinations), plus `clone3` with `ENOSYS`, which is the practical
//!   stand-in: it drives the library onto its pidfd-less path (a plain
//!   `clone`/`fork`, reaping by pid) the same way. The "-1 after a successful
//!   clone" branch itself is not exercised by any profile; it needs a real
//!   old kernel.
//! * **`docker-eperm`**: Docker's default seccomp profile before 20.10.10
//!   (and other allow-list profiles) refused every call it did not know
//!   with `EPERM`, `clone3` and `close_range` included. glibc 2.34 and later
//!   try `clone3` first in `pthread_create` and `posix_spawn` and fall back
//!   to `clone` only on `ENOSYS`, so under this profile, with such a glibc,
//!   *new threads and `std::process::Command` fail with `EPERM`* too, just
//!   as they did in those containers. A test harness that runs each test on
//!   a thread of its own (Rust's libtest does) cannot run at all then; the
//!   profile is what such a container looks like, not a bug of this tool.
//! * **`docker-eperm-old-glibc`**: the same container with a C library
//!   older than 2.34, which never calls `clone3`: the case in which a
//!   program's *own* `clone3` meets `EPERM` while threads and
//!   `posix_spawn` work, so the one in which safespawn's `EPERM` fallback
//!   matters. A filter cannot tell glibc's `clone3` from safespawn's by
//!   their (in-memory) flags, but it can by the size argument: glibc 2.34
//!   to 2.4x passes its 88-byte `struct clone_args`, safespawn the 64-byte
//!   version 0. glibc's calls get `ENOSYS` (so glibc falls back to `clone`
//!   as an older glibc would have used from the start), all others `EPERM`.
//!   Should a future glibc pass another size, threads fail with `EPERM`
//!   again (loudly: the test harness cannot start). safespawn passes 88
//!   bytes only to place a child in a cgroup (`CLONE_INTO_CGROUP`), after
//!   a probe of the same size, which sees `ENOSYS` here: the child then
//!   places itself.
//! * **`no-proc`**: a container or chroot without `/proc`, on a kernel
//!   before `close_range`: the library's `/proc/self/fd` walk and anything
//!   else that reads `/proc` must do without. The launcher unshares a mount
//!   namespace (`unshare(CLONE_NEWNS)`), makes `/` recursively private
//!   (`mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)`, so that nothing
//!   leaks back to the host), and detaches `/proc`
//!   (`umount2("/proc", MNT_DETACH)`, repeated while something is still
//!   mounted there). That needs `CAP_SYS_ADMIN`: without it the launcher
//!   stops with an error naming the call, before running anything.
//!
//! `no_new_privs`: the kernel lets a process install a filter only if it has
//! `CAP_SYS_ADMIN` or has set `PR_SET_NO_NEW_PRIVS`. The launcher tries
//! without first and sets the flag only when the kernel insists (`EACCES`):
//! run as root, the program keeps the `no_new_privs` it had (safespawn's
//! tests check that a child has it off unless asked for); run unprivileged,
//! the program and its children have it set, so a set-user-ID program does
//! not gain privileges under the launcher.
//!
//! Only x86_64 (and, untested, aarch64) are supported: system call numbers
//! are the native ones, and a call made through another ABI (x86_64's i386
//! compatibility entry, for one) passes unfiltered. x32 calls (numbers with
//! bit 30 set) pass too.

use std::ffi::CStr;
use std::fmt;
use std::mem::offset_of;

/// The audit architecture of the native system call ABI, which the filter
/// compares `seccomp_data.arch` against (`<linux/audit.h>`: the ELF machine
/// with `__AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE`).
#[cfg(target_arch = "x86_64")]
pub const AUDIT_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64: EM_X86_64 (62)
#[cfg(target_arch = "aarch64")]
pub const AUDIT_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64: EM_AARCH64 (183)
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("compat-run knows the audit architecture of x86_64 and aarch64 only");

/// `CLONE_PIDFD` (Linux 5.2), as `clone`'s flags carry it.
pub const CLONE_PIDFD: u32 = 0x1000;
/// `waitid`'s idtype for a pidfd (Linux 5.4).
pub const P_PIDFD: u32 = 3;

/// The size glibc 2.34 and later pass to `clone3` (their `struct
/// clone_args` up to `cgroup`, `CLONE_ARGS_SIZE_VER2`).
pub const GLIBC_CLONE_ARGS_SIZE: u32 = 88;

/// A compat profile: what a kernel or container of one kind refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// No filter: a control run.
    None,
    /// Before `close_range`, with `clone3` refused.
    Linux5_4,
    /// As `5.4`, and no `waitid(P_PIDFD)`.
    Linux5_3,
    /// No pidfds at all.
    Linux4_18,
    /// An allow-list container profile that answers unknown calls with `EPERM`.
    DockerEperm,
    /// As `DockerEperm`, with a C library that never calls `clone3`.
    DockerEpermOldGlibc,
    /// No `close_range`, and `/proc` not mounted.
    NoProc,
}

/// Which calls of one system call number a [`Rule`] fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgTest {
    /// Every call.
    Any,
    /// Calls whose argument `arg` (0-based), taken as a 32-bit integer,
    /// equals `value`.
    Equals { arg: u8, value: u32 },
    /// Calls whose argument `arg` has any of the bits of `bits` set in its
    /// low 32 bits.
    HasBits { arg: u8, bits: u32 },
}

/// One rule of a profile: calls of `nr` that pass `test` fail with `errno`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The system call's name, for listings.
    pub name: &'static str,
    /// The native system call number.
    pub nr: u32,
    /// Which of its calls fail.
    pub test: ArgTest,
    /// The errno they fail with.
    pub errno: i32,
}

const fn nr(n: libc::c_long) -> u32 {
    n as u32
}

const fn always(name: &'static str, n: libc::c_long, errno: i32) -> Rule {
    Rule {
        name,
        nr: nr(n),
        test: ArgTest::Any,
        errno,
    }
}

const CLONE3_ENOSYS: Rule = always("clone3", libc::SYS_clone3, libc::ENOSYS);
const CLOSE_RANGE_ENOSYS: Rule = always("close_range", libc::SYS_close_range, libc::ENOSYS);
const MOUNT_SETATTR_ENOSYS: Rule = always("mount_setattr", libc::SYS_mount_setattr, libc::ENOSYS);

/// The three landlock calls (Linux 5.13), failing with `errno`.
fn landlock(errno: i32) -> [Rule; 3] {
    [
        always(
            "landlock_create_ruleset",
            libc::SYS_landlock_create_ruleset,
            errno,
        ),
        always("landlock_add_rule", libc::SYS_landlock_add_rule, errno),
        always(
            "landlock_restrict_self",
            libc::SYS_landlock_restrict_self,
            errno,
        ),
    ]
}
const WAITID_PIDFD_EINVAL: Rule = Rule {
    name: "waitid",
    nr: nr(libc::SYS_waitid),
    test: ArgTest::Equals {
        arg: 0,
        value: P_PIDFD,
    },
    errno: libc::EINVAL,
};
const CLONE_PIDFD_EINVAL: Rule = Rule {
    name: "clone",
    nr: nr(libc::SYS_clone),
    test: ArgTest::HasBits {
        arg: 0,
        bits: CLONE_PIDFD,
    },
    errno: libc::EINVAL,
};

impl Profile {
    /// Every profile, in the order `--list` shows them.
    pub const ALL: [Profile; 7] = [
        Profile::None,
        Profile::Linux5_4,
        Profile::Linux5_3,
        Profile::Linux4_18,
        Profile::DockerEperm,
        Profile::DockerEpermOldGlibc,
        Profile::NoProc,
    ];

    /// The name given on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Profile::None => "none",
            Profile::Linux5_4 => "5.4",
            Profile::Linux5_3 => "5.3",
            Profile::Linux4_18 => "4.18",
            Profile::DockerEperm => "docker-eperm",
            Profile::DockerEpermOldGlibc => "docker-eperm-old-glibc",
            Profile::NoProc => "no-proc",
        }
    }

    /// The profile of that name.
    pub fn from_name(name: &str) -> Option<Profile> {
        Profile::ALL.into_iter().find(|p| p.name() == name)
    }

    /// One line about what the profile stands for.
    pub fn summary(self) -> &'static str {
        match self {
            Profile::None => "no filter (a control run)",
            Profile::Linux5_4 => "a kernel before close_range (5.9), clone3 refused",
            Profile::Linux5_3 => "as 5.4, and no waitid(P_PIDFD) (5.4)",
            Profile::Linux4_18 => "no pidfds at all (as 5.3, no pidfd_* calls, no CLONE_PIDFD)",
            Profile::DockerEperm => "old Docker default seccomp profile: unknown calls get EPERM",
            Profile::DockerEpermOldGlibc => {
                "docker-eperm with a glibc before 2.34: glibc's own clone3 gets ENOSYS"
            }
            Profile::NoProc => "no close_range, and /proc not mounted (needs root)",
        }
    }

    /// The filter's rules, in the order the filter checks them.
    pub fn rules(self) -> Vec<Rule> {
        match self {
            Profile::None => Vec::new(),
            Profile::Linux5_4 => {
                let mut rules = vec![CLONE3_ENOSYS, CLOSE_RANGE_ENOSYS, MOUNT_SETATTR_ENOSYS];
                rules.extend(landlock(libc::ENOSYS));
                rules
            }
            Profile::Linux5_3 => {
                let mut rules = Profile::Linux5_4.rules();
                rules.push(WAITID_PIDFD_EINVAL);
                rules
            }
            Profile::Linux4_18 => {
                let mut rules = Profile::Linux5_3.rules();
                rules.extend([
                    always("pidfd_open", libc::SYS_pidfd_open, libc::ENOSYS),
                    always(
                        "pidfd_send_signal",
                        libc::SYS_pidfd_send_signal,
                        libc::ENOSYS,
                    ),
                    always("pidfd_getfd", libc::SYS_pidfd_getfd, libc::ENOSYS),
                    CLONE_PIDFD_EINVAL,
                ]);
                rules
            }
            Profile::DockerEperm => {
                let mut rules = vec![
                    always("clone3", libc::SYS_clone3, libc::EPERM),
                    always("close_range", libc::SYS_close_range, libc::EPERM),
                    always("mount_setattr", libc::SYS_mount_setattr, libc::EPERM),
                ];
                rules.extend(landlock(libc::EPERM));
                rules
            }
            Profile::DockerEpermOldGlibc => vec![
                Rule {
                    name: "clone3",
                    nr: nr(libc::SYS_clone3),
                    test: ArgTest::Equals {
                        arg: 1,
                        value: GLIBC_CLONE_ARGS_SIZE,
                    },
                    errno: libc::ENOSYS,
                },
                always("clone3", libc::SYS_clone3, libc::EPERM),
                always("close_range", libc::SYS_close_range, libc::EPERM),
                always("mount_setattr", libc::SYS_mount_setattr, libc::EPERM),
            ]
            .into_iter()
            .chain(landlock(libc::EPERM))
            .collect(),
            Profile::NoProc => vec![CLOSE_RANGE_ENOSYS],
        }
    }

    /// Whether the profile runs the program without `/proc`.
    pub fn hides_proc(self) -> bool {
        self == Profile::NoProc
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errno = errno_name(self.errno);
        match self.test {
            ArgTest::Any => write!(f, "{} -> {errno}", self.name),
            ArgTest::Equals { arg, value } => {
                write!(
                    f,
                    "{} with argument {arg} == {value:#x} -> {errno}",
                    self.name
                )
            }
            ArgTest::HasBits { arg, bits } => {
                write!(
                    f,
                    "{} with argument {arg} & {bits:#x} -> {errno}",
                    self.name
                )
            }
        }
    }
}

// Classic BPF as seccomp reads it (<linux/filter.h>, <linux/bpf_common.h>).
// libc has the load, return and jset codes; the jump class and jeq are here.
const BPF_JMP: u32 = 0x05;
const BPF_JEQ: u32 = 0x10;
const LOAD_WORD: u32 = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;

/// Where the filter finds the system call number and the architecture.
const NR_OFFSET: u32 = offset_of!(libc::seccomp_data, nr) as u32;
const ARCH_OFFSET: u32 = offset_of!(libc::seccomp_data, arch) as u32;
const ARGS_OFFSET: u32 = offset_of!(libc::seccomp_data, args) as u32;

// Arguments are 64-bit; the filter loads 32 bits at a time, and on a
// little-endian machine the low half comes first.
const _: () = assert!(cfg!(target_endian = "little"));

/// The offset of the low 32 bits of argument `arg` in `seccomp_data`.
const fn arg_low_offset(arg: u8) -> u32 {
    ARGS_OFFSET + 8 * arg as u32
}

fn insn(code: u32, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        // Every code used here fits in 16 bits (they are below 0x100).
        code: code as u16,
        jt,
        jf,
        k,
    }
}

fn load(offset: u32) -> libc::sock_filter {
    insn(LOAD_WORD, 0, 0, offset)
}

fn ret(action: u32) -> libc::sock_filter {
    insn(libc::BPF_RET | libc::BPF_K, 0, 0, action)
}

/// `SECCOMP_RET_ERRNO` with `errno` as its data.
pub fn ret_errno(errno: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | (errno as u32 & libc::SECCOMP_RET_DATA)
}

/// The seccomp program for `rules`:
///
/// ```text
///     ld  [arch]
///     jeq #AUDIT_ARCH, native, 0
///     ret #ALLOW                      ; another ABI: not ours to judge
/// native:
///     ld  [nr]                        ; for each rule:
///     jeq #NR, 0, next                ;   another call
///     ld  [args[ARG] low 32 bits]     ;   (only for a rule on an argument)
///     jeq #VALUE, 0, next             ;   (or jset #BITS)
///     ret #ERRNO | errno
/// next:
///     ...
///     ret #ALLOW
/// ```
///
/// Each rule reloads the number, so rules are independent and their jumps
/// short (a classic BPF jump reaches at most 255 instructions ahead).
pub fn filter(rules: &[Rule]) -> Vec<libc::sock_filter> {
    let mut prog = vec![
        load(ARCH_OFFSET),
        insn(BPF_JMP | BPF_JEQ | libc::BPF_K, 1, 0, AUDIT_ARCH),
        ret(libc::SECCOMP_RET_ALLOW),
    ];
    for rule in rules {
        prog.push(load(NR_OFFSET));
        let (test, arg, k) = match rule.test {
            ArgTest::Any => {
                prog.push(insn(BPF_JMP | BPF_JEQ | libc::BPF_K, 0, 1, rule.nr));
                prog.push(ret(ret_errno(rule.errno)));
                continue;
            }
            ArgTest::Equals { arg, value } => (BPF_JEQ, arg, value),
            ArgTest::HasBits { arg, bits } => (libc::BPF_JSET, arg, bits),
        };
        prog.push(insn(BPF_JMP | BPF_JEQ | libc::BPF_K, 0, 3, rule.nr));
        prog.push(load(arg_low_offset(arg)));
        prog.push(insn(BPF_JMP | test | libc::BPF_K, 0, 1, k));
        prog.push(ret(ret_errno(rule.errno)));
    }
    prog.push(ret(libc::SECCOMP_RET_ALLOW));
    prog
}

/// A step of setting up a profile that failed.
#[derive(Debug)]
pub struct Error {
    /// The call that failed, as the user would look it up.
    pub call: String,
    /// Its errno (0 when the failure is not a system call's).
    pub errno: i32,
    /// What to do about it, where that is known.
    pub hint: Option<&'static str>,
}

impl Error {
    fn last(call: impl Into<String>) -> Error {
        Error {
            call: call.into(),
            errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
            hint: None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.call)?;
        if self.errno != 0 {
            write!(
                f,
                ": {} ({})",
                std::io::Error::from_raw_os_error(self.errno),
                errno_name(self.errno)
            )?;
        }
        if let Some(hint) = self.hint {
            write!(f, "; {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Installs `prog` as a seccomp filter of this thread (the launcher has one
/// thread; it then execs), setting `PR_SET_NO_NEW_PRIVS` first only if the
/// kernel refuses the filter without it (no `CAP_SYS_ADMIN`). Returns
/// whether it set `no_new_privs`.
pub fn install_filter(prog: &[libc::sock_filter]) -> Result<bool, Error> {
    let len = u16::try_from(prog.len()).map_err(|_| Error {
        call: format!("a seccomp program of {} instructions", prog.len()),
        errno: libc::E2BIG,
        hint: None,
    })?;
    let fprog = libc::sock_fprog {
        len,
        // The kernel only reads the program.
        filter: prog.as_ptr().cast_mut(),
    };
    let install = || {
        // SAFETY: `fprog` points at `len` valid instructions for the whole
        // call; the kernel copies them before returning.
        let rc = unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &fprog as *const libc::sock_fprog,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let mut e = Error::last("prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)");
        if e.errno == libc::EINVAL {
            e.hint = Some("this kernel has no seccomp filters (CONFIG_SECCOMP_FILTER)");
        }
        Err(e)
    };
    match install() {
        Ok(()) => Ok(false),
        Err(e) if e.errno == libc::EACCES => {
            // SAFETY: PR_SET_NO_NEW_PRIVS takes integers only.
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                return Err(Error::last("prctl(PR_SET_NO_NEW_PRIVS)"));
            }
            install().map(|()| true)
        }
        Err(e) => Err(e),
    }
}

/// Whether `/proc` shows this process (`/proc/self` resolves).
pub fn proc_is_mounted() -> bool {
    std::fs::symlink_metadata("/proc/self").is_ok()
}

/// Leaves `/proc` unmounted for this process and its descendants: a new
/// mount namespace, `/` recursively private, then every mount on `/proc`
/// detached. Needs `CAP_SYS_ADMIN`.
pub fn hide_proc() -> Result<(), Error> {
    const NEEDS_ROOT: &str = "the no-proc profile needs root (CAP_SYS_ADMIN) to unmount /proc in a private mount namespace";
    // SAFETY: unshare takes flags only.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        let mut e = Error::last("unshare(CLONE_NEWNS)");
        if e.errno == libc::EPERM {
            e.hint = Some(NEEDS_ROOT);
        }
        return Err(e);
    }
    let root: &CStr = c"/";
    let proc: &CStr = c"/proc";
    // SAFETY: a NUL-terminated target; the other pointers may be null for a
    // propagation change.
    let rc = unsafe {
        libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(Error::last("mount(NULL, \"/\", NULL, MS_REC | MS_PRIVATE)"));
    }
    // /proc may be mounted more than once (one on top of the other); detach
    // until it is no mount point any more (EINVAL).
    for _ in 0..16 {
        // SAFETY: a NUL-terminated path and flags.
        if unsafe { libc::umount2(proc.as_ptr(), libc::MNT_DETACH) } != 0 {
            let e = Error::last("umount2(\"/proc\", MNT_DETACH)");
            if e.errno == libc::EINVAL {
                break;
            }
            return Err(Error {
                hint: (e.errno == libc::EPERM).then_some(NEEDS_ROOT),
                ..e
            });
        }
    }
    if proc_is_mounted() {
        return Err(Error {
            call: "/proc/self still exists after unmounting /proc".into(),
            errno: 0,
            hint: None,
        });
    }
    Ok(())
}

/// Sets up `profile` for this process: `/proc` hidden if the profile says
/// so, then its filter. Call it right before exec.
pub fn apply(profile: Profile) -> Result<(), Error> {
    if profile.hides_proc() {
        hide_proc()?;
    }
    if profile != Profile::None {
        install_filter(&filter(&profile.rules()))?;
    }
    Ok(())
}

/// The symbolic name of an errno (`"ENOSYS"`), or `E<number>` for one not
/// listed here.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::ECHILD => "ECHILD",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENOSYS => "ENOSYS",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        _ => return format!("E{errno}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The classic BPF subset [`filter`] emits, run on one `seccomp_data`.
    fn run(prog: &[libc::sock_filter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        let mut data = [0u8; std::mem::size_of::<libc::seccomp_data>()];
        let mut put = |offset: u32, bytes: &[u8]| {
            let at = offset as usize;
            data[at..at + bytes.len()].copy_from_slice(bytes);
        };
        put(NR_OFFSET, &nr.to_ne_bytes());
        put(ARCH_OFFSET, &arch.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            put(ARGS_OFFSET + 8 * i as u32, &a.to_ne_bytes());
        }
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let code = u32::from(i.code);
            pc += 1;
            if code == LOAD_WORD {
                let at = i.k as usize;
                acc = u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
            } else if code == libc::BPF_RET | libc::BPF_K {
                return i.k;
            } else {
                let taken = match code {
                    c if c == BPF_JMP | BPF_JEQ | libc::BPF_K => acc == i.k,
                    c if c == BPF_JMP | libc::BPF_JSET | libc::BPF_K => acc & i.k != 0,
                    c => panic!("instruction {c:#x} not expected"),
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
        }
    }

    fn nr(n: libc::c_long) -> u32 {
        n as u32
    }

    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;

    #[test]
    fn names_round_trip() {
        for p in Profile::ALL {
            assert_eq!(Profile::from_name(p.name()), Some(p));
        }
        assert_eq!(Profile::from_name("5.5"), None);
        assert_eq!(Profile::from_name(""), None);
    }

    #[test]
    fn every_jump_lands_inside_and_the_program_ends_in_a_return() {
        for p in Profile::ALL {
            let prog = filter(&p.rules());
            for (pc, i) in prog.iter().enumerate() {
                if u32::from(i.code) & 0x07 == BPF_JMP {
                    assert!(
                        pc + 1 + usize::from(i.jt.max(i.jf)) < prog.len(),
                        "{p:?} at {pc}"
                    );
                }
            }
            let last = prog.last().unwrap();
            assert_eq!(
                (u32::from(last.code), last.k),
                (libc::BPF_RET | libc::BPF_K, ALLOW)
            );
        }
    }

    #[test]
    fn each_profile_fails_its_calls_with_its_errno_and_allows_the_rest() {
        let calls = [
            libc::SYS_clone3,
            libc::SYS_close_range,
            libc::SYS_mount_setattr,
            libc::SYS_pidfd_open,
            libc::SYS_pidfd_send_signal,
            libc::SYS_pidfd_getfd,
            libc::SYS_read,
            libc::SYS_openat,
            libc::SYS_execve,
            libc::SYS_wait4,
        ];
        let expect = |p: Profile, n: libc::c_long| -> u32 {
            let e = match (p, n) {
                (Profile::None, _) => return ALLOW,
                (
                    Profile::DockerEperm | Profile::DockerEpermOldGlibc,
                    libc::SYS_clone3 | libc::SYS_close_range | libc::SYS_mount_setattr,
                ) => libc::EPERM,
                (Profile::DockerEperm | Profile::DockerEpermOldGlibc, _) => return ALLOW,
                (_, libc::SYS_close_range) => libc::ENOSYS,
                (Profile::NoProc, _) => return ALLOW,
                (_, libc::SYS_clone3 | libc::SYS_mount_setattr) => libc::ENOSYS,
                (
                    Profile::Linux4_18,
                    libc::SYS_pidfd_open | libc::SYS_pidfd_send_signal | libc::SYS_pidfd_getfd,
                ) => libc::ENOSYS,
                _ => return ALLOW,
            };
            ret_errno(e)
        };
        for p in Profile::ALL {
            let prog = filter(&p.rules());
            for n in calls {
                assert_eq!(
                    run(&prog, nr(n), AUDIT_ARCH, [0; 6]),
                    expect(p, n),
                    "{p:?} nr {n}"
                );
            }
        }
    }

    #[test]
    fn waitid_is_judged_by_its_idtype() {
        let w = nr(libc::SYS_waitid);
        for p in Profile::ALL {
            let prog = filter(&p.rules());
            let pidfd = if matches!(p, Profile::Linux5_3 | Profile::Linux4_18) {
                ret_errno(libc::EINVAL)
            } else {
                ALLOW
            };
            assert_eq!(
                run(&prog, w, AUDIT_ARCH, [3, 5, 0, 4, 0, 0]),
                pidfd,
                "{p:?}"
            );
            // The kernel reads idtype as an int: the upper half is ignored.
            let high = [0xffff_ffff_0000_0003, 5, 0, 4, 0, 0];
            assert_eq!(run(&prog, w, AUDIT_ARCH, high), pidfd, "{p:?}");
            for idtype in [0, 1, 2] {
                // P_ALL, P_PID, P_PGID
                assert_eq!(
                    run(&prog, w, AUDIT_ARCH, [idtype, 3, 0, 4, 0, 0]),
                    ALLOW,
                    "{p:?}"
                );
            }
            // A 3 in another argument is no P_PIDFD.
            assert_eq!(
                run(&prog, w, AUDIT_ARCH, [1, 3, 0, 4, 0, 0]),
                ALLOW,
                "{p:?}"
            );
        }
    }

    #[test]
    fn clone_is_refused_only_with_clone_pidfd_and_only_under_4_18() {
        let c = nr(libc::SYS_clone);
        let vfork_pidfd =
            (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD) as u64;
        let thread = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_SETTLS
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID) as u64;
        let fork = (libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID | libc::SIGCHLD) as u64;
        for p in Profile::ALL {
            let prog = filter(&p.rules());
            let refused = if p == Profile::Linux4_18 {
                ret_errno(libc::EINVAL)
            } else {
                ALLOW
            };
            assert_eq!(
                run(&prog, c, AUDIT_ARCH, [vfork_pidfd, 0, 0, 0, 0, 0]),
                refused
            );
            assert_eq!(
                run(&prog, c, AUDIT_ARCH, [CLONE_PIDFD as u64, 0, 0, 0, 0, 0]),
                refused
            );
            for flags in [thread, fork, libc::SIGCHLD as u64] {
                assert_eq!(
                    run(&prog, c, AUDIT_ARCH, [flags, 0, 0x1000, 0, 0, 0]),
                    ALLOW
                );
            }
        }
    }

    #[test]
    fn old_glibc_profile_tells_clone3_callers_by_size() {
        let c3 = nr(libc::SYS_clone3);
        let prog = filter(&Profile::DockerEpermOldGlibc.rules());
        assert_eq!(
            run(&prog, c3, AUDIT_ARCH, [0, 88, 0, 0, 0, 0]),
            ret_errno(libc::ENOSYS)
        );
        for size in [64, 80, 96] {
            assert_eq!(
                run(&prog, c3, AUDIT_ARCH, [0, size, 0, 0, 0, 0]),
                ret_errno(libc::EPERM)
            );
        }
        let prog = filter(&Profile::DockerEperm.rules());
        assert_eq!(
            run(&prog, c3, AUDIT_ARCH, [0, 88, 0, 0, 0, 0]),
            ret_errno(libc::EPERM)
        );
    }

    #[test]
    fn another_architecture_passes_untouched() {
        // i386's clone3 and close_range have the same numbers as x86_64's.
        const AUDIT_ARCH_I386: u32 = 0x4000_0003;
        for p in Profile::ALL {
            let prog = filter(&p.rules());
            for n in [
                libc::SYS_clone3,
                libc::SYS_close_range,
                libc::SYS_pidfd_open,
            ] {
                assert_eq!(run(&prog, nr(n), AUDIT_ARCH_I386, [0; 6]), ALLOW);
            }
        }
    }

    #[test]
    fn rules_read_as_a_list() {
        let lines: Vec<String> = Profile::Linux4_18
            .rules()
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(
            lines,
            [
                "clone3 -> ENOSYS",
                "close_range -> ENOSYS",
                "mount_setattr -> ENOSYS",
                "landlock_create_ruleset -> ENOSYS",
                "landlock_add_rule -> ENOSYS",
                "landlock_restrict_self -> ENOSYS",
                "waitid with argument 0 == 0x3 -> EINVAL",
                "pidfd_open -> ENOSYS",
                "pidfd_send_signal -> ENOSYS",
                "pidfd_getfd -> ENOSYS",
                "clone with argument 0 & 0x1000 -> EINVAL",
            ]
        );
    }
}
