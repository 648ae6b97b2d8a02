//! Deny- and allow-lists of system call names, compiled into the
//! program the parent module's docs draw: the names looked up in the
//! `syscalls` crate's table for this architecture, the numbers sorted and
//! searched in a tree of short jumps. Only on the architectures with a
//! table (the parent module gates this one).

use super::*;

/// The `AUDIT_ARCH_*` value of this build's system call ABI
/// (`<linux/audit.h>`: the ELF machine, with `__AUDIT_ARCH_64BIT` and
/// `__AUDIT_ARCH_LE` as they apply), for the architectures with a name
/// table.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E; // EM_X86_64 (62)
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7; // EM_AARCH64 (183)
#[cfg(target_arch = "x86")]
const AUDIT_ARCH: u32 = 0x4000_0003; // EM_386 (3)
#[cfg(target_arch = "arm")]
const AUDIT_ARCH: u32 = 0x4000_0028; // EM_ARM (40)
#[cfg(target_arch = "riscv64")]
const AUDIT_ARCH: u32 = 0xC000_00F3; // EM_RISCV (243)
#[cfg(target_arch = "loongarch64")]
const AUDIT_ARCH: u32 = 0xC000_0102; // EM_LOONGARCH (258)

/// The system call number of `name` on this architecture.
fn number(name: &str) -> Option<u32> {
    name.parse::<syscalls::Sysno>()
        .ok()
        .and_then(|s| u32::try_from(s.id()).ok())
}

/// Generates the program of a deny- or allow-list (see the module docs).
pub(super) fn generate(
    allow: bool,
    names: &[String],
    errno: i32,
    through: &Through,
) -> Result<Compiled, Problem> {
    let invalid = |problem: String| (BuildErrorKind::Invalid, problem);
    if !(1..=4095).contains(&errno) {
        return Err(invalid(format!(
            "errno {errno} is out of range: SECCOMP_RET_ERRNO takes 1 to 4095"
        )));
    }
    let arch = std::env::consts::ARCH;
    let mut listed = std::collections::BTreeSet::new();
    for name in names {
        let nr = number(name)
            .ok_or_else(|| invalid(format!("{name:?} is not a system call on {arch}")))?;
        if !allow && EXEC_AND_EXIT.contains(&name.as_str()) {
            return Err((
                BuildErrorKind::Conflict,
                format!(
                    "{name:?} cannot be denied: the child needs execve, execveat, exit and exit_group to exec the program or exit"
                ),
            ));
        }
        listed.insert(nr);
    }
    if allow {
        listed.extend(EXEC_AND_EXIT.iter().filter_map(|n| number(n)));
    }
    let blocked = |name: &str| {
        number(name)
            .map(|nr| (nr, listed.contains(&nr) != allow))
            .ok_or_else(|| invalid(format!("no {name}(2) on {arch}")))
    };
    // Whether the list blocks write(2), and with it the child's report.
    let (write, needs_report_fd) = blocked("write")?;
    let mut exceptions = Vec::new();
    if needs_report_fd {
        exceptions.push((write, through.report_fd));
    }
    if let Some((name, op)) = through.install {
        if let (nr, true) = blocked(name)? {
            exceptions.push((nr, op));
        }
    }
    let errno_action = SECCOMP_RET_ERRNO | errno as u32;
    let (listed_action, default_action) = if allow {
        (SECCOMP_RET_ALLOW, errno_action)
    } else {
        (errno_action, SECCOMP_RET_ALLOW)
    };
    let mut prog = vec![
        stmt(BPF_LD | BPF_W | BPF_ABS, ARCH_OFFSET),
        jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH, 1, 0),
        stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        stmt(BPF_LD | BPF_W | BPF_ABS, NR_OFFSET),
    ];
    if cfg!(target_arch = "x86_64") {
        // __X32_SYSCALL_BIT: the x32 ABI shares x86_64's AUDIT_ARCH.
        prog.push(jump(BPF_JMP | BPF_JGE | BPF_K, 0x4000_0000, 0, 1));
        prog.push(stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
    }
    for (nr, arg0) in exceptions {
        prog.extend([
            jump(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 3),
            // The kernel reads an fd, an operation or an option as an
            // int: the low half of the 64-bit argument.
            stmt(BPF_LD | BPF_W | BPF_ABS, ARG0_LOW_OFFSET),
            jump(BPF_JMP | BPF_JEQ | BPF_K, arg0, 0, 1),
            stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
            stmt(BPF_LD | BPF_W | BPF_ABS, NR_OFFSET),
        ]);
    }
    let listed: Vec<u32> = listed.into_iter().collect();
    search(&listed, listed_action, default_action, &mut prog);
    Ok(Compiled {
        program: prog,
        needs_report_fd,
    })
}

/// The most numbers a leaf of [`search`] compares one by one.
const LEAF: usize = 4;

/// Appends a binary search for the number in the accumulator among the
/// sorted `nrs`: `hit` when it is one of them, else `miss`. A node splits
/// at its middle number (`jge`), a leaf of at most [`LEAF`] numbers
/// compares each (`jeq`). The two returns come once, at the end, for
/// every leaf they are within reach of (a classic BPF jump reaches 255
/// instructions); a leaf farther away has its own, and a node whose left
/// half is longer than 255 instructions jumps over it with `ja` (32-bit
/// offset). The code is generated back to front, so each jump's distance
/// is known when it is made.
///
/// Why not one `jeq` per number in a row: since Linux 5.11 the kernel runs
/// a new program once per system call number of the architecture (some
/// 450) at install time, to learn which calls it allows whatever their
/// arguments (the action cache), and converts and compiles every
/// instruction. A row of N comparisons costs N steps per number, some
/// 3 ns each; the search takes about log2(N) + 4, in fewer instructions
/// (see BENCHMARKS.md's `seccomp` section).
fn search(nrs: &[u32], hit: u32, miss: u32, prog: &mut Vec<Insn>) {
    if nrs.is_empty() {
        prog.push(stmt(BPF_RET | BPF_K, miss));
        return;
    }
    // Back to front: `rev[0]` is the last instruction.
    let mut rev = vec![stmt(BPF_RET | BPF_K, hit), stmt(BPF_RET | BPF_K, miss)];
    search_back(nrs, hit, miss, &mut rev);
    prog.extend(rev.into_iter().rev());
}

/// The offset of a jump at back-to-front index `from` to index `to`.
fn back_offset(from: usize, to: usize) -> usize {
    from - to - 1
}

/// [`search`]'s code for `nrs`, prepended to `rev` (back to front), with
/// the shared `ret hit` at `rev[0]` and `ret miss` at `rev[1]`.
fn search_back(nrs: &[u32], hit: u32, miss: u32, rev: &mut Vec<Insn>) {
    if nrs.len() <= LEAF {
        let n = nrs.len();
        // The first comparison is the farthest from the returns.
        let (hit_at, miss_at) = if rev.len() + n - 2 <= 255 {
            (0, 1)
        } else {
            rev.push(stmt(BPF_RET | BPF_K, miss));
            rev.push(stmt(BPF_RET | BPF_K, hit));
            (rev.len() - 1, rev.len() - 2)
        };
        for (i, &nr) in nrs.iter().enumerate().rev() {
            let at = rev.len();
            let jt = back_offset(at, hit_at) as u8;
            // The last comparison goes to miss; the others fall through.
            let jf = if i == n - 1 {
                back_offset(at, miss_at) as u8
            } else {
                0
            };
            rev.push(jump(BPF_JMP | BPF_JEQ | BPF_K, nr, jt, jf));
        }
        return;
    }
    let (left, right) = nrs.split_at(nrs.len() / 2);
    search_back(right, hit, miss, rev);
    let right_at = rev.len() - 1;
    search_back(left, hit, miss, rev);
    let over = back_offset(rev.len(), right_at);
    match u8::try_from(over) {
        Ok(over) => rev.push(jump(BPF_JMP | BPF_JGE | BPF_K, right[0], over, 0)),
        Err(_) => {
            // jge: on to the ja, which jumps over the left half; else skip it.
            rev.push(stmt(BPF_JMP | BPF_JA, over as u32));
            rev.push(jump(BPF_JMP | BPF_JGE | BPF_K, right[0], 0, 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    const LAST: Through = Through {
        report_fd: 3,
        install: None,
    };
    const NOT_LAST: Through = Through {
        report_fd: 3,
        install: Some(("seccomp", 1)),
    };

    #[test]
    fn generated_programs_pass_the_kernels_checks() {
        for allow in [false, true] {
            for list in [&[][..], &["write"][..], &["read", "write", "getpid"][..]] {
                for through in [&LAST, &NOT_LAST] {
                    let c = generate(allow, &names(list), 1, through).unwrap();
                    check(&c.program).unwrap();
                }
            }
        }
    }

    /// Runs `prog` as seccomp would on a call `nr` of `arch` whose first
    /// argument is `arg0`: its return value.
    fn run(prog: &[Insn], nr: u32, arch: u32, arg0: u32) -> u32 {
        let (mut a, mut pc, mut steps) = (0u32, 0usize, 0);
        loop {
            steps += 1;
            assert!(steps < 10_000);
            let i = prog[pc];
            pc += 1;
            match i.code {
                c if c == BPF_LD | BPF_W | BPF_ABS => {
                    a = match i.k {
                        k if k == NR_OFFSET => nr,
                        k if k == ARCH_OFFSET => arch,
                        k if k == ARG0_LOW_OFFSET => arg0,
                        k => panic!("load of {k}"),
                    }
                }
                c if c == BPF_JMP | BPF_JA => pc += i.k as usize,
                c if c == BPF_JMP | BPF_JEQ | BPF_K || c == BPF_JMP | BPF_JGE | BPF_K => {
                    let taken = if c & 0xf0 == BPF_JEQ {
                        a == i.k
                    } else {
                        a >= i.k
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                c if c == BPF_RET | BPF_K => return i.k,
                c => panic!("code {c:#x}"),
            }
        }
    }

    #[test]
    fn generated_programs_answer_every_number_as_listed() {
        let all: Vec<u32> = syscalls::Sysno::iter()
            .map(|s| s.id() as u32)
            .filter(|nr| !EXEC_AND_EXIT.iter().any(|n| number(n) == Some(*nr)))
            .collect();
        let write = number("write").unwrap();
        let errno = SECCOMP_RET_ERRNO | 7;
        // Lists of every size up to the whole table, and sparse ones.
        let mut lists: Vec<Vec<u32>> = (0..40).map(|n| all[..n].to_vec()).collect();
        lists.push(all.clone());
        lists.push(all.iter().copied().step_by(3).collect());
        lists.push(all.iter().copied().step_by(17).collect());
        for list in lists {
            let listed: Vec<String> = list
                .iter()
                .map(|nr| syscalls::Sysno::from(*nr).name().to_string())
                .collect();
            for allow in [false, true] {
                let c = generate(allow, &listed, 7, &NOT_LAST).unwrap();
                check(&c.program).unwrap();
                for nr in 0..1000u32 {
                    let mut want_listed = list.contains(&nr);
                    if allow && EXEC_AND_EXIT.iter().any(|n| number(n) == Some(nr)) {
                        want_listed = true;
                    }
                    let want = if want_listed == allow {
                        SECCOMP_RET_ALLOW
                    } else {
                        errno
                    };
                    // An fd that is not the report fd, an op that is not
                    // the filter's: the list decides.
                    assert_eq!(
                        run(&c.program, nr, AUDIT_ARCH, 9),
                        want,
                        "nr {nr}, allow {allow}, {} listed",
                        list.len()
                    );
                }
                // The exceptions, where the list blocks them.
                if c.needs_report_fd {
                    assert_eq!(run(&c.program, write, AUDIT_ARCH, 3), SECCOMP_RET_ALLOW);
                }
                let seccomp = number("seccomp").unwrap();
                assert_eq!(run(&c.program, seccomp, AUDIT_ARCH, 1), SECCOMP_RET_ALLOW);
                // Another ABI, and x32, are killed.
                assert_eq!(run(&c.program, 0, 0x4000_0003, 0), SECCOMP_RET_KILL_PROCESS);
                if cfg!(target_arch = "x86_64") {
                    assert_eq!(
                        run(&c.program, 0x4000_0000, AUDIT_ARCH, 0),
                        SECCOMP_RET_KILL_PROCESS
                    );
                }
            }
        }
    }

    #[test]
    fn the_report_rule_is_there_only_when_write_is_blocked() {
        let c = |allow, list: &[&str]| {
            generate(allow, &names(list), 1, &LAST)
                .unwrap()
                .needs_report_fd
        };
        assert!(!c(false, &["getpid"]));
        assert!(c(false, &["write"]));
        assert!(c(true, &["getpid"]));
        assert!(!c(true, &["write"]));
    }

    #[test]
    fn every_system_call_fits_in_one_program() {
        let all: Vec<String> = syscalls::Sysno::iter()
            .map(|s| s.name().to_string())
            .filter(|n| !EXEC_AND_EXIT.contains(&n.as_str()))
            .collect();
        for allow in [false, true] {
            let c = generate(allow, &all, 1, &NOT_LAST).unwrap();
            check(&c.program).unwrap();
        }
    }
}
