//! Seccomp filters: [`Command::seccomp`] with [`Seccomp`], compiled into
//! classic BPF and checked at `build()`; the child only hands the finished
//! programs to the kernel (the child's `seccomp` room).
//!
//! # The compiler
//!
//! The programs are generated here, by a small generator of our own, from
//! system call names looked up in the [`syscalls`] crate's table. Why not
//! the others:
//!
//! * **libseccomp** needs the C library at build and run time.
//! * **seccompiler** (rust-vmm) compiles rules with argument conditions,
//!   but takes system call *numbers*: names come only with its JSON front
//!   end (`serde`, `serde_json`); it knows three architectures, and its
//!   programs do not refuse x32 system calls on x86_64. What a deny- or
//!   allow-list needs is a dozen instructions of fixed shape (below), so
//!   the dependency would bring more than it saves.
//! * **The name table**: `syscalls` is generated from the kernel's own
//!   tables, one per architecture, of which only the target's is compiled;
//!   without default features it has no dependency. A table of our own
//!   built from libc's `SYS_*` constants would need its own list of names
//!   per architecture, kept up by hand as the kernel adds calls; with
//!   `syscalls` a new call is a version bump. The crate does not build
//!   on stable Rust for mips, powerpc and s390x (it enables an unstable
//!   feature there), so it is a dependency only on the architectures named
//!   in `Cargo.toml`; elsewhere [`Seccomp::deny`] and [`Seccomp::allow`]
//!   are a build error and [`Seccomp::from_bpf`] still works.
//!
//! # The generated program
//!
//! ```text
//!     ld  [arch]
//!     jeq #AUDIT_ARCH, 1, 0          ; this build's ABI only
//!     ret #KILL_PROCESS
//!     ld  [nr]
//!     jge #0x40000000, 0, 1          ; x86_64: x32 system calls
//!     ret #KILL_PROCESS
//!     jeq #write, 0, 3               ; only when the list blocks write(2):
//!     ld  [args[0] low 32 bits]      ;   the report fd, so that a failed
//!     jeq #REPORT_FD, 0, 1           ;   exec is still reported (and the
//!     ret #ALLOW                     ;   same for seccomp(2) or prctl on
//!     ld  [nr]                       ;   the next filter's installation)
//!     jge #PIVOT, right, 0           ; a binary search of the sorted list:
//!     ...                            ;   at most 4 numbers per leaf,
//!     jeq #NR, hit, 0                ;   each leaf with both returns
//!     ret #ALLOW (deny) / #ERRNO|e (allow)
//!     ret #ERRNO|e (deny) / #ALLOW (allow)
//! ```
//!
//! The kernel runs the program on every system call of the child and of
//! the program; since Linux 5.11 it also runs it once per system call
//! number at install time, to remember which calls the program allows
//! whatever their arguments. That install-time run is what a filter costs
//! per spawn, and it grows with the path through the program: a row of
//! one comparison per listed call cost 150 µs per spawn for a 50-call list
//! here, the search (see `lists::search`) 20 µs. Every jump is short (a classic
//! BPF jump reaches 255 instructions) but the one over a long left half,
//! which takes `ja`.

use std::fmt;

use super::Command;
use crate::child::seccomp::SeccompPlan;
use crate::error::{BuildErrorKind, Error};
use crate::frozen::Frozen;
use crate::mode::Mode;
use crate::sys::seccomp::Insn;

/// A seccomp filter for [`Command::seccomp`]: a list of system calls that
/// fail, a list of the only ones that succeed, or a classic BPF program of
/// the caller's.
///
/// System call names are the kernel's (`openat`, `newfstatat`,
/// `rt_sigaction`, as in `/usr/include/asm/unistd_64.h` without `__NR_`),
/// looked up for the architecture of this build when the command is
/// built; errno values are the raw numbers (`libc::EPERM`, or
/// [`Errno::PERM.raw_os_error()`](crate::Errno::raw_os_error)).
///
/// ```
/// use safespawn::{Command, Errno, Seccomp};
/// // ptrace(2) and bpf(2) fail with EPERM; everything else is allowed.
/// let f = Seccomp::deny(["ptrace", "bpf"], Errno::PERM.raw_os_error());
/// assert_eq!(f.to_string(), r#"Seccomp::deny(["ptrace", "bpf"], 1)"#);
/// let st = Command::new("true").seccomp(f).status()?;
/// assert!(st.success());
/// # Ok::<(), safespawn::Error>(())
/// ```
///
/// # Errors
///
/// None here: `build()` checks every filter (see [`Command::seccomp`]).
///
/// # References
///
/// [`seccomp(2)`](https://man7.org/linux/man-pages/man2/seccomp.2.html),
/// the kernel's
/// [seccomp filter](https://docs.kernel.org/userspace-api/seccomp_filter.html)
/// documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seccomp(Kind);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    List {
        allow: bool,
        names: Vec<String>,
        errno: i32,
    },
    Bpf(Vec<u8>),
}

/// The calls the generated programs always let through: exec itself, and
/// the child's exit when exec fails.
const EXEC_AND_EXIT: [&str; 4] = ["execve", "execveat", "exit", "exit_group"];

impl Seccomp {
    /// The listed system calls fail with `errno`; every other one is
    /// allowed.
    ///
    /// `execve`, `execveat`, `exit` and `exit_group` cannot be listed
    /// (`build()` refuses them): the child needs them to exec the program,
    /// or to exit when that fails. Listing `write` keeps one exception:
    /// `write(2)` on the fd the child moves its report pipe to (see
    /// [`Command::seccomp`]).
    ///
    /// ```
    /// use safespawn::Seccomp;
    /// let f = Seccomp::deny(["mount", "umount2"], libc::EPERM);
    /// # drop(f);
    /// ```
    pub fn deny<I, S>(names: I, errno: i32) -> Seccomp
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Seccomp::list(false, names, errno)
    }

    /// Only the listed system calls succeed; every other one fails with
    /// `errno`.
    ///
    /// `execve`, `execveat`, `exit` and `exit_group` are always added to
    /// the list, and `write(2)` on the fd the child moves its report pipe
    /// to when the list lacks `write` (see [`Command::seccomp`]). The list
    /// must hold everything the program needs, its dynamic loader and C
    /// library included; a missing call fails with `errno`, which a program
    /// may not survive.
    ///
    /// ```
    /// use safespawn::Seccomp;
    /// let f = Seccomp::allow(["read", "write", "close", "brk", "mmap"], libc::ENOSYS);
    /// # drop(f);
    /// ```
    pub fn allow<I, S>(names: I, errno: i32) -> Seccomp
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Seccomp::list(true, names, errno)
    }

    fn list<I, S>(allow: bool, names: I, errno: i32) -> Seccomp
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Seccomp(Kind::List {
            allow,
            names: names.into_iter().map(|n| n.as_ref().to_owned()).collect(),
            errno,
        })
    }

    /// A compiled classic BPF program of the caller's: `struct
    /// sock_filter` instructions of 8 bytes each (`code` as a native-endian
    /// `u16`, `jt`, `jf`, `k` as a native-endian `u32`), as `seccomp(2)`
    /// takes them.
    ///
    /// The program is installed as given. It must check the architecture
    /// itself, and it must allow `execve` (or `execveat`, for nothing else
    /// runs the program) and `exit_group`; where it blocks `write(2)`, an
    /// exec that fails after it is reported by the exit status only (126,
    /// or 127 when the program was not found), not as an
    /// [`Error::Spawn`](crate::Error::Spawn).
    ///
    /// ```
    /// use safespawn::Seccomp;
    /// // One instruction: ret #SECCOMP_RET_ALLOW.
    /// let mut allow_all = Vec::new();
    /// allow_all.extend_from_slice(&0x06u16.to_ne_bytes()); // BPF_RET | BPF_K
    /// allow_all.extend_from_slice(&[0, 0]);
    /// allow_all.extend_from_slice(&0x7fff_0000u32.to_ne_bytes());
    /// let f = Seccomp::from_bpf(allow_all);
    /// assert_eq!(f.to_string(), "Seccomp::from_bpf(<8 bytes>)");
    /// ```
    pub fn from_bpf(program: impl Into<Vec<u8>>) -> Seccomp {
        Seccomp(Kind::Bpf(program.into()))
    }
}

impl fmt::Display for Seccomp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::List {
                allow,
                names,
                errno,
            } => write!(
                f,
                "Seccomp::{}({names:?}, {errno})",
                if *allow { "allow" } else { "deny" }
            ),
            Kind::Bpf(bytes) => write!(f, "Seccomp::from_bpf(<{} bytes>)", bytes.len()),
        }
    }
}

impl<M: Mode> Command<M> {
    /// Installs the seccomp filter `filter` in the child, as the very last
    /// step before exec. The filter holds for the program and all its
    /// descendants and cannot be removed.
    ///
    /// Repeatable: the filters are installed in call order, and the kernel
    /// runs every one of them on each system call (the strictest answer
    /// wins; between two errno answers, the later filter's). Each install
    /// is itself a system call that the filters already installed see: a
    /// generated list that is not the last lets that one call through
    /// (`seccomp` with `SECCOMP_SET_MODE_FILTER`, or `prctl` with
    /// `PR_SET_SECCOMP` where the child uses it), which lets the program
    /// install more filters too, and a filter can only add restrictions.
    /// A raw program that is not the last must allow it itself.
    ///
    /// Everything is decided at `build()`: the names are looked up, the
    /// programs compiled (see [`Seccomp`]) and checked as the kernel will
    /// check them, and whether this system has `seccomp(2)` is probed once
    /// (where it does not, before Linux 3.17 or under a profile refusing
    /// it, the child uses `prctl(PR_SET_SECCOMP)`). The child only moves
    /// its report pipe (below) and hands the programs to the kernel.
    ///
    /// **Order.** The filter comes after every other step, the
    /// [`pre_exec`](Command::pre_exec) hooks, the
    /// [`landlock`](Command::landlock) ruleset and the pause of
    /// [`spawn_paused`](crate::Prepared::spawn_paused) included, so none of
    /// them is filtered, and right before `execve`.
    ///
    /// **`no_new_privs`.** The kernel installs a filter only for a process
    /// that has `no_new_privs` set or `CAP_SYS_ADMIN` in its user
    /// namespace. Unless the child keeps `CAP_SYS_ADMIN` after its
    /// credential steps (root, or a new user namespace, without a
    /// [`uid`](Command::uid) change to a non-root uid and without
    /// [`clear_caps`](Command::clear_caps) or
    /// [`allow_cap`](Command::allow_cap) dropping it), `build()` sets
    /// [`no_new_privs`](Command::no_new_privs) for it, as the last
    /// credential step. So a plain user's filter, or root's with
    /// `.uid(65534)`, runs with `NoNewPrivs: 1`; root's own keeps
    /// `no_new_privs` as asked. The check uses the capabilities of the
    /// thread that calls `build()`; a hook that drops `CAP_SYS_ADMIN` meets
    /// `EACCES` at [`Stage::Seccomp`](crate::Stage::Seccomp) (ask for
    /// `no_new_privs` then).
    ///
    /// **The failure report.** When exec fails after the filter, the child
    /// still reports and exits. A child of `clone3` (the default path, Linux
    /// 5.3) writes its report into the suspended parent's memory, which no
    /// filter can block; the children that write it to a pipe (the fork
    /// path of hooks and id ranges, daemons, and the plain `clone` where
    /// `clone3` is refused) need `write(2)`. [`Seccomp::deny`] never blocks
    /// that unless `write` is listed, and [`Seccomp::allow`] unless `write`
    /// is missing; in those two cases the program lets `write(2)` through
    /// on one fd number only, chosen at `build()` as the lowest number that
    /// is none of the child's planned fds, and the child moves its report
    /// pipe there (`dup3`, close-on-exec) right after its fd steps, before
    /// any later step (a daemon's pidfile, a hook) could open a file on
    /// that number, and before its own [`rlimit`](Command::rlimit)s.
    /// Exec closes it, so after exec that number is free; the program can
    /// write to it only to an fd it put there itself (with `dup2` or
    /// `fcntl`, where the filter allows them). A raw program
    /// ([`Seccomp::from_bpf`]) is used as given: where it blocks `write`,
    /// a failed exec of a child that reports on a pipe shows in the exit
    /// status only (127 or 126).
    ///
    /// Architectures: the generated programs kill the process (as
    /// libseccomp, Docker and systemd do) for a system call made through
    /// another ABI than this build's (x86_64's i386 entry, for one) and,
    /// on x86_64, for x32 system calls.
    ///
    /// # Errors
    ///
    /// `build()` refuses, as [`Error::Build`](crate::Error::Build) naming
    /// the filter:
    ///
    /// * [`BuildErrorKind::Invalid`]: a name that is no system call of this
    ///   architecture; an errno outside 1..=4095 (the data field of
    ///   `SECCOMP_RET_ERRNO`); a raw program that is empty, not a whole
    ///   number of 8-byte instructions, or one the kernel would refuse (an
    ///   instruction seccomp does not allow, a jump out of the program, a
    ///   load outside `struct seccomp_data`, a scratch cell read before it
    ///   is written, a last instruction that is not a return); a list on an
    ///   architecture without a name table;
    /// * [`BuildErrorKind::Conflict`]: a deny-list naming `execve`,
    ///   `execveat`, `exit` or `exit_group`;
    /// * [`BuildErrorKind::TooLong`]: a program of more than 4096
    ///   instructions (`BPF_MAXINSNS`), or filters longer together than
    ///   the kernel allows on one process (32768 instructions, counting 4
    ///   for each filter).
    ///
    /// The kernel's refusal is [`Error::Spawn`](crate::Error::Spawn) at
    /// [`Stage::Seccomp`](crate::Stage::Seccomp): `ENOMEM` when the filters
    /// inherited from the caller and ours together are too long, `EACCES`
    /// without `no_new_privs` and `CAP_SYS_ADMIN`, `EINVAL` from a kernel
    /// built without seccomp filters, or `EBADF` when the caller's
    /// `RLIMIT_NOFILE` leaves no room for the report fd above the planned
    /// ones.
    ///
    /// # References
    ///
    /// [`seccomp(2)`](https://man7.org/linux/man-pages/man2/seccomp.2.html)
    /// (`SECCOMP_SET_MODE_FILTER`, Linux 3.17), `PR_SET_SECCOMP` in
    /// [`prctl(2)`](https://man7.org/linux/man-pages/man2/prctl.2.html)
    /// (Linux 3.5); `SECCOMP_RET_KILL_PROCESS` needs Linux 4.14.
    ///
    /// ```
    /// use safespawn::{BuildErrorKind, Command, Errno, Error, Seccomp};
    /// let err = Command::new("true")
    ///     .seccomp(Seccomp::deny(["execve"], Errno::PERM.raw_os_error()))
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.build_kind(), Some(BuildErrorKind::Conflict));
    /// ```
    pub fn seccomp(mut self, filter: Seccomp) -> Self {
        self.cfg.seccomp.push(filter);
        self
    }
}

/// Compiles every filter of a command into the child's plan (`None`
/// without filters). `targets`: the child's planned fds, sorted; the report
/// fd is the lowest number that is none of them.
pub(crate) fn freeze(
    filters: &[Seccomp],
    targets: &[std::os::fd::RawFd],
) -> Result<Option<SeccompPlan>, Error> {
    if filters.is_empty() {
        return Ok(None);
    }
    let report_fd = (0..)
        .find(|fd| targets.binary_search(fd).is_err())
        .unwrap_or(0);
    let via_prctl = !crate::sys::seccomp::have_seccomp_syscall();
    // The call that installs the next filter, and its first argument.
    let install = if via_prctl {
        ("prctl", libc::PR_SET_SECCOMP as u32)
    } else {
        ("seccomp", libc::SECCOMP_SET_MODE_FILTER)
    };
    let mut programs = Vec::with_capacity(filters.len());
    let mut needs_report_fd = false;
    let mut total = 0usize;
    for (i, filter) in filters.iter().enumerate() {
        let through = Through {
            report_fd: report_fd as u32,
            install: (i + 1 < filters.len()).then_some(install),
        };
        let compiled = compile(filter, &through)?;
        needs_report_fd |= compiled.needs_report_fd;
        total += compiled.program.len() + 4;
        if total > MAX_INSNS_PER_PATH {
            return Err(Error::build(
                BuildErrorKind::TooLong,
                filter.to_string(),
                format!(
                    "brings the command's filters to {total} instructions (4 more for each filter); the kernel takes at most {MAX_INSNS_PER_PATH} on one process"
                ),
            ));
        }
        programs.push(Frozen::from(compiled.program));
    }
    Ok(Some(SeccompPlan {
        filters: programs.into(),
        report_fd: if needs_report_fd { report_fd } else { -1 },
        via_prctl,
    }))
}

/// The calls a generated program lets through on one value of their first
/// argument, whatever its list says, where the list would block them.
pub(crate) struct Through {
    /// `write(2)` on this fd: the child's report.
    pub report_fd: u32,
    /// The call that installs the next filter, when another follows
    /// (`seccomp` with `SECCOMP_SET_MODE_FILTER`, or `prctl` with
    /// `PR_SET_SECCOMP`): a filter can only add restrictions, so letting
    /// the program install more costs nothing.
    pub install: Option<(&'static str, u32)>,
}

/// One compiled filter.
pub(crate) struct Compiled {
    pub program: Vec<Insn>,
    /// The program allows `write(2)` on the report fd only: the child must
    /// move its report pipe there.
    pub needs_report_fd: bool,
}

/// The most instructions of one program (`BPF_MAXINSNS`).
pub(crate) const MAX_INSNS: usize = 4096;
/// The most instructions of every filter of a process together
/// (`MAX_INSNS_PER_PATH`), each filter counting 4 more.
pub(crate) const MAX_INSNS_PER_PATH: usize = 32768;

/// Compiles and checks `filter`, with the calls a generated program must
/// let through.
pub(crate) fn compile(filter: &Seccomp, through: &Through) -> Result<Compiled, Error> {
    let item = || filter.to_string();
    let compiled = match &filter.0 {
        Kind::Bpf(bytes) => Compiled {
            program: from_bytes(bytes)
                .map_err(|(kind, problem)| Error::build(kind, item(), problem))?,
            needs_report_fd: false,
        },
        Kind::List {
            allow,
            names,
            errno,
        } => generate(*allow, names, *errno, through)
            .map_err(|(kind, problem)| Error::build(kind, item(), problem))?,
    };
    check(&compiled.program).map_err(|problem| {
        let kind = if compiled.program.len() > MAX_INSNS {
            BuildErrorKind::TooLong
        } else {
            BuildErrorKind::Invalid
        };
        Error::build(kind, item(), problem)
    })?;
    Ok(compiled)
}

type Problem = (BuildErrorKind, String);

/// A caller's program as instructions.
fn from_bytes(bytes: &[u8]) -> Result<Vec<Insn>, Problem> {
    const SIZE: usize = std::mem::size_of::<Insn>();
    if bytes.is_empty() {
        return Err((
            BuildErrorKind::Invalid,
            "is empty: a program has at least one instruction".into(),
        ));
    }
    if !bytes.len().is_multiple_of(SIZE) {
        return Err((
            BuildErrorKind::Invalid,
            format!(
                "is {} bytes, not a whole number of {SIZE}-byte instructions (struct sock_filter)",
                bytes.len()
            ),
        ));
    }
    Ok(bytes
        .chunks_exact(SIZE)
        .map(|b| Insn {
            code: u16::from_ne_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        })
        .collect())
}

// Classic BPF, as <linux/bpf_common.h> and <linux/filter.h> define it.
const BPF_LD: u16 = 0x00;
const BPF_LDX: u16 = 0x01;
const BPF_ST: u16 = 0x02;
const BPF_STX: u16 = 0x03;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_MISC: u16 = 0x07;
const BPF_W: u16 = 0x00;
const BPF_IMM: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_MEM: u16 = 0x60;
const BPF_LEN: u16 = 0x80;
const BPF_ADD: u16 = 0x00;
const BPF_SUB: u16 = 0x10;
const BPF_MUL: u16 = 0x20;
const BPF_DIV: u16 = 0x30;
const BPF_OR: u16 = 0x40;
const BPF_AND: u16 = 0x50;
const BPF_LSH: u16 = 0x60;
const BPF_RSH: u16 = 0x70;
const BPF_NEG: u16 = 0x80;
const BPF_XOR: u16 = 0xa0;
const BPF_JA: u16 = 0x00;
const BPF_JEQ: u16 = 0x10;
const BPF_JGT: u16 = 0x20;
const BPF_JGE: u16 = 0x30;
const BPF_JSET: u16 = 0x40;
const BPF_K: u16 = 0x00;
const BPF_X: u16 = 0x08;
const BPF_A: u16 = 0x10;
const BPF_TAX: u16 = 0x00;
const BPF_TXA: u16 = 0x80;
/// Scratch memory cells (`BPF_MEMWORDS`).
const BPF_MEMWORDS: u32 = 16;

const SECCOMP_RET_KILL_PROCESS: u32 = libc::SECCOMP_RET_KILL_PROCESS;
const SECCOMP_RET_ERRNO: u32 = libc::SECCOMP_RET_ERRNO;
const SECCOMP_RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;

/// `sizeof(struct seccomp_data)`: loads must stay below it.
const SECCOMP_DATA_SIZE: u32 = std::mem::size_of::<libc::seccomp_data>() as u32;
const NR_OFFSET: u32 = std::mem::offset_of!(libc::seccomp_data, nr) as u32;
const ARCH_OFFSET: u32 = std::mem::offset_of!(libc::seccomp_data, arch) as u32;
/// The low 32 bits of `args[0]`, a 64-bit field.
const ARG0_LOW_OFFSET: u32 = std::mem::offset_of!(libc::seccomp_data, args) as u32
    + if cfg!(target_endian = "little") { 0 } else { 4 };

fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

/// Whether a classic BPF instruction is one seccomp accepts, with the
/// kernel's per-instruction checks (`bpf_check_classic`,
/// `seccomp_check_filter`); `pc` is its index, `len` the program's length.
fn check_insn(insn: &Insn, pc: usize, len: usize) -> Result<(), String> {
    let code = insn.code;
    let k = insn.k;
    let alu = |op: u16| [BPF_ALU | op | BPF_K, BPF_ALU | op | BPF_X].contains(&code);
    let ok = match code {
        c if c == BPF_LD | BPF_W | BPF_ABS => {
            if k >= SECCOMP_DATA_SIZE || !k.is_multiple_of(4) {
                return Err(format!(
                    "loads offset {k}, not an aligned word of struct seccomp_data ({SECCOMP_DATA_SIZE} bytes)"
                ));
            }
            true
        }
        c if c == BPF_LD | BPF_W | BPF_LEN || c == BPF_LDX | BPF_W | BPF_LEN => true,
        c if c == BPF_RET | BPF_K || c == BPF_RET | BPF_A => true,
        c if c == BPF_ALU | BPF_NEG => true,
        c if c == BPF_LD | BPF_IMM || c == BPF_LDX | BPF_IMM => true,
        c if c == BPF_MISC | BPF_TAX || c == BPF_MISC | BPF_TXA => true,
        c if c == BPF_LD | BPF_MEM || c == BPF_LDX | BPF_MEM || c == BPF_ST || c == BPF_STX => {
            if k >= BPF_MEMWORDS {
                return Err(format!("uses scratch cell {k}; there are {BPF_MEMWORDS}"));
            }
            true
        }
        c if c == BPF_JMP | BPF_JA => {
            // The kernel: k >= flen - pc - 1 is out of the program.
            if u64::from(k) >= (len - pc - 1) as u64 {
                return Err(format!("jumps {k} ahead, past the end of the program"));
            }
            true
        }
        c if [BPF_JEQ, BPF_JGE, BPF_JGT, BPF_JSET]
            .iter()
            .any(|op| c == BPF_JMP | op | BPF_K || c == BPF_JMP | op | BPF_X) =>
        {
            let far = usize::from(insn.jt.max(insn.jf));
            if pc + far + 1 >= len {
                return Err(format!("jumps {far} ahead, past the end of the program"));
            }
            true
        }
        _ if alu(BPF_DIV) => {
            if code & BPF_X == 0 && k == 0 {
                return Err("divides by the constant 0".into());
            }
            true
        }
        _ if alu(BPF_LSH) || alu(BPF_RSH) => {
            if code & BPF_X == 0 && k >= 32 {
                return Err(format!("shifts by {k}, not below 32"));
            }
            true
        }
        _ => [BPF_ADD, BPF_SUB, BPF_MUL, BPF_AND, BPF_OR, BPF_XOR]
            .iter()
            .any(|&op| alu(op)),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "code {code:#06x} is not an instruction seccomp accepts"
        ))
    }
}

/// Checks `prog` as the kernel will when it is installed: its length, each
/// instruction, a return last, and no scratch cell read before every path
/// to the read has written it (the kernel's `check_load_and_stores`).
pub(crate) fn check(prog: &[Insn]) -> Result<(), String> {
    let len = prog.len();
    if len == 0 {
        return Err("is empty".into());
    }
    if len > MAX_INSNS {
        return Err(format!(
            "has {len} instructions; the kernel takes at most {MAX_INSNS} (BPF_MAXINSNS)"
        ));
    }
    for (pc, insn) in prog.iter().enumerate() {
        check_insn(insn, pc, len).map_err(|why| format!("instruction {pc}: {why}"))?;
    }
    let last = prog[len - 1].code;
    if last != BPF_RET | BPF_K && last != BPF_RET | BPF_A {
        return Err(format!(
            "ends with code {last:#06x}: the last instruction must be a return"
        ));
    }
    // One bit per scratch cell: written on every path so far.
    let mut masks = vec![u16::MAX; len];
    let mut valid: u16 = 0;
    for (pc, insn) in prog.iter().enumerate() {
        valid &= masks[pc];
        let code = insn.code;
        if code == BPF_ST || code == BPF_STX {
            valid |= 1 << insn.k;
        } else if code == BPF_LD | BPF_MEM || code == BPF_LDX | BPF_MEM {
            if valid & (1 << insn.k) == 0 {
                return Err(format!(
                    "instruction {pc}: reads scratch cell {} before it is written",
                    insn.k
                ));
            }
        } else if code == BPF_JMP | BPF_JA {
            masks[pc + 1 + insn.k as usize] &= valid;
            valid = u16::MAX;
        } else if code & 0x07 == BPF_JMP {
            masks[pc + 1 + usize::from(insn.jt)] &= valid;
            masks[pc + 1 + usize::from(insn.jf)] &= valid;
            valid = u16::MAX;
        }
    }
    Ok(())
}

// The architectures with a name table: those `Cargo.toml` takes the
// `syscalls` crate for. Elsewhere only programs of the caller's own.
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "x86",
    target_arch = "arm",
    target_arch = "riscv64",
    target_arch = "loongarch64"
))]
mod lists;

/// Without a name table, lists cannot be compiled.
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "x86",
    target_arch = "arm",
    target_arch = "riscv64",
    target_arch = "loongarch64"
)))]
mod lists {
    use super::{BuildErrorKind, Compiled, Problem, Through};

    pub(super) fn generate(
        _: bool,
        _: &[String],
        _: i32,
        _: &Through,
    ) -> Result<Compiled, Problem> {
        Err((
            BuildErrorKind::Invalid,
            format!(
                "no system call names on {}: use Seccomp::from_bpf",
                std::env::consts::ARCH
            ),
        ))
    }
}

use lists::generate;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checker_refuses_what_the_kernel_refuses() {
        let ret = stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        assert!(check(&[ret]).is_ok());
        assert!(check(&[]).is_err());
        // Not ending in a return.
        assert!(check(&[stmt(BPF_LD | BPF_W | BPF_ABS, 0)]).is_err());
        // A load past seccomp_data, a misaligned one, a byte load.
        assert!(check(&[stmt(BPF_LD | BPF_W | BPF_ABS, 64), ret]).is_err());
        assert!(check(&[stmt(BPF_LD | BPF_W | BPF_ABS, 2), ret]).is_err());
        assert!(check(&[stmt(BPF_LD | 0x10 | BPF_ABS, 0), ret]).is_err());
        // Jumps out of the program.
        assert!(check(&[jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0), ret]).is_err());
        assert!(check(&[stmt(BPF_JMP | BPF_JA, 1), ret]).is_err());
        assert!(check(&[stmt(BPF_JMP | BPF_JA, 0), ret]).is_ok());
        // A scratch cell read before it is written, on one path.
        let read = stmt(BPF_LD | BPF_MEM, 2);
        assert!(check(&[read, ret]).is_err());
        assert!(check(&[stmt(BPF_ST, 2), read, ret]).is_ok());
        assert!(check(&[
            jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
            stmt(BPF_ST, 2),
            read,
            ret
        ])
        .is_err());
        // Division by zero, a wide shift, an unknown code.
        assert!(check(&[stmt(BPF_ALU | BPF_DIV | BPF_K, 0), ret]).is_err());
        assert!(check(&[stmt(BPF_ALU | BPF_LSH | BPF_K, 32), ret]).is_err());
        assert!(check(&[stmt(0xff, 0), ret]).is_err());
        assert!(check(&vec![ret; MAX_INSNS + 1]).is_err());
        assert!(check(&vec![ret; MAX_INSNS]).is_ok());
    }

    #[test]
    fn raw_programs_are_whole_instructions() {
        assert!(from_bytes(&[]).is_err());
        assert!(from_bytes(&[0; 12]).is_err());
        let p = from_bytes(&[6, 0, 1, 2, 0, 0, 0xff, 0x7f]).unwrap();
        assert_eq!((p[0].jt, p[0].jf), (1, 2));
        if cfg!(target_endian = "little") {
            assert_eq!((p[0].code, p[0].k), (6, 0x7fff_0000));
        }
    }
}
