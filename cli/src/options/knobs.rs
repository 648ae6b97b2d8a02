//! Process knobs and security labels: scheduling, OOM score, execution
//! domain, securebits, the SELinux context and the AppArmor profile the
//! program starts with.

use clap::Args;
use safespawn::{Command, Personality, Securebits};

#[derive(Debug, Args)]
#[command(next_help_heading = "Process knobs & security labels")]
pub struct Knobs {
    /// Nice value of the program, -20 to 19 (below the current one needs
    /// CAP_SYS_NICE).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    nice: Option<i32>,
    /// CPUs the program may run on: numbers and ranges, e.g. 0-3,6.
    #[arg(long, value_name = "LIST", value_parser = cpu_list)]
    cpus: Option<CpuList>,
    /// OOM score adjustment, -1000 to 1000 (below the current one needs
    /// CAP_SYS_RESOURCE).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    oom_score_adj: Option<i32>,
    /// Give the program a core-scheduling group of its own (no other task
    /// shares its CPU core's hyperthreads; Linux 5.14 with SMT).
    #[arg(long, conflicts_with = "sched_core_share_from")]
    sched_core_new: bool,
    /// Put the program in the core-scheduling group of process PID.
    #[arg(long, value_name = "PID")]
    sched_core_share_from: Option<i32>,
    /// Execution domain and flags, comma-separated: linux, linux32,
    /// uname26, addr-no-randomize, read-implies-exec, addr-compat-layout,
    /// mmap-page-zero, addr-limit-32bit, addr-limit-3gb, short-inode,
    /// whole-seconds, sticky-timeouts, fdpic-funcptrs, or a number (0x...).
    #[arg(long, value_name = "NAME,...", value_parser = personality)]
    personality: Option<Personality>,
    /// Set the securebits to exactly these, comma-separated: noroot,
    /// no-setuid-fixup, keep-caps, no-cap-ambient-raise, exec-restrict-file,
    /// exec-deny-interactive, each also as NAME-locked ('' for none).
    #[arg(long, value_name = "NAME,...", value_parser = securebits)]
    securebits: Option<Securebits>,
    /// SELinux context to run the program in (written to the exec
    /// attribute; ignored where SELinux does not enforce).
    #[arg(long, value_name = "LABEL")]
    selinux_label: Option<String>,
    /// AppArmor profile to run the program under, from its exec on.
    #[arg(long, value_name = "NAME")]
    apparmor_profile: Option<String>,
}

/// A parsed `--cpus` list.
#[derive(Debug, Clone)]
pub struct CpuList(Vec<usize>);

/// `0-3,6`: numbers and inclusive ranges.
fn cpu_list(s: &str) -> Result<CpuList, String> {
    let mut cpus = Vec::new();
    for part in s.split(',') {
        let num = |t: &str| {
            t.trim()
                .parse::<usize>()
                .map_err(|_| format!("{t:?} is not a CPU number"))
        };
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(format!("the range {part} is empty"));
                }
                // The library refuses the first CPU at or past CPU_SETSIZE
                // (1024): a longer range need not be listed whole.
                cpus.extend(a..=b.min(a.saturating_add(1024)));
            }
            None => cpus.push(num(part)?),
        }
    }
    Ok(CpuList(cpus))
}

/// Names (or a number) joined by `,`, each looked up in `names`.
fn flags<T: Copy>(
    s: &str,
    what: &str,
    names: &[(&str, T)],
    or: impl Fn(T, T) -> T,
    empty: T,
) -> Result<T, String> {
    let mut acc = empty;
    for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let Some(&(_, v)) = names.iter().find(|(n, _)| n.eq_ignore_ascii_case(word)) else {
            let known: Vec<&str> = names.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "unknown {what} {word:?} (known: {})",
                known.join(", ")
            ));
        };
        acc = or(acc, v);
    }
    Ok(acc)
}

fn personality(s: &str) -> Result<Personality, String> {
    if let Some(hex) = s.strip_prefix("0x") {
        return u32::from_str_radix(hex, 16)
            .map(Personality::from_raw)
            .map_err(|_| format!("{s:?} is not a number"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
        return s
            .parse()
            .map(Personality::from_raw)
            .map_err(|_| format!("{s:?} is not a number"));
    }
    let names = [
        ("linux", Personality::LINUX),
        ("linux32", Personality::LINUX32),
        ("uname26", Personality::UNAME26),
        ("addr-no-randomize", Personality::ADDR_NO_RANDOMIZE),
        ("fdpic-funcptrs", Personality::FDPIC_FUNCPTRS),
        ("mmap-page-zero", Personality::MMAP_PAGE_ZERO),
        ("addr-compat-layout", Personality::ADDR_COMPAT_LAYOUT),
        ("read-implies-exec", Personality::READ_IMPLIES_EXEC),
        ("addr-limit-32bit", Personality::ADDR_LIMIT_32BIT),
        ("short-inode", Personality::SHORT_INODE),
        ("whole-seconds", Personality::WHOLE_SECONDS),
        ("sticky-timeouts", Personality::STICKY_TIMEOUTS),
        ("addr-limit-3gb", Personality::ADDR_LIMIT_3GB),
    ];
    flags(s, "persona", &names, |a, b| a | b, Personality::LINUX)
}

fn securebits(s: &str) -> Result<Securebits, String> {
    let names = [
        ("noroot", Securebits::NOROOT),
        ("noroot-locked", Securebits::NOROOT_LOCKED),
        ("no-setuid-fixup", Securebits::NO_SETUID_FIXUP),
        ("no-setuid-fixup-locked", Securebits::NO_SETUID_FIXUP_LOCKED),
        ("keep-caps", Securebits::KEEP_CAPS),
        ("keep-caps-locked", Securebits::KEEP_CAPS_LOCKED),
        ("no-cap-ambient-raise", Securebits::NO_CAP_AMBIENT_RAISE),
        (
            "no-cap-ambient-raise-locked",
            Securebits::NO_CAP_AMBIENT_RAISE_LOCKED,
        ),
        ("exec-restrict-file", Securebits::EXEC_RESTRICT_FILE),
        (
            "exec-restrict-file-locked",
            Securebits::EXEC_RESTRICT_FILE_LOCKED,
        ),
        ("exec-deny-interactive", Securebits::EXEC_DENY_INTERACTIVE),
        (
            "exec-deny-interactive-locked",
            Securebits::EXEC_DENY_INTERACTIVE_LOCKED,
        ),
    ];
    flags(s, "securebit", &names, |a, b| a | b, Securebits::empty())
}

impl Knobs {
    /// The values are checked by the library's `build()`, which names the
    /// offending one.
    pub fn apply(self, mut cmd: Command) -> Command {
        if let Some(n) = self.nice {
            cmd = cmd.nice(n);
        }
        if let Some(cpus) = &self.cpus {
            cmd = cmd.cpu_affinity(&cpus.0);
        }
        if let Some(n) = self.oom_score_adj {
            cmd = cmd.oom_score_adj(n);
        }
        if self.sched_core_new {
            cmd = cmd.sched_core_new();
        }
        if let Some(pid) = self.sched_core_share_from {
            cmd = cmd.sched_core_share_from(pid);
        }
        if let Some(p) = self.personality {
            cmd = cmd.personality(p);
        }
        if let Some(bits) = self.securebits {
            cmd = cmd.securebits(bits);
        }
        if let Some(label) = self.selinux_label {
            cmd = cmd.selinux_exec_label(label);
        }
        if let Some(name) = self.apparmor_profile {
            cmd = cmd.apparmor_profile(name);
        }
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list("0-3,6").unwrap().0, [0, 1, 2, 3, 6]);
        assert_eq!(cpu_list("5").unwrap().0, [5]);
        assert!(cpu_list("3-1").is_err());
        assert!(cpu_list("x").is_err());
        assert!(cpu_list("").is_err());
    }

    #[test]
    fn personas_and_securebits() {
        assert_eq!(
            personality("linux32,addr-no-randomize").unwrap(),
            Personality::LINUX32 | Personality::ADDR_NO_RANDOMIZE
        );
        assert_eq!(
            personality("0x40000").unwrap(),
            Personality::ADDR_NO_RANDOMIZE
        );
        assert_eq!(personality("8").unwrap(), Personality::LINUX32);
        assert!(personality("bsd").unwrap_err().contains("unknown persona"));
        assert_eq!(
            securebits("noroot,noroot-locked").unwrap(),
            Securebits::NOROOT | Securebits::NOROOT_LOCKED
        );
        assert_eq!(securebits("").unwrap(), Securebits::empty());
        assert!(securebits("keepcaps").is_err());
    }
}
