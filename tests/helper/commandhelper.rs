//! `safespawn-testhelper`: reports what a child sees, like libvirt's
//! commandhelper. Uses std only (and the `syscalls` crate's name table for
//! `syscall=NAME`).
//!
//! Usage: `safespawn-testhelper [ACTIONS] [ARGS...]`. `ACTIONS` is argv[1]
//! when it starts with `::`, a comma-separated list run in order; without it
//! the helper runs `report`. The remaining arguments are never interpreted,
//! so tests can pass arbitrary bytes and read them back.
//!
//! Actions:
//! * `report`: print the report (below) on stdout;
//! * `fds`: print only the report's `fd` lines (cheap, for mass spawns);
//! * `echo`: copy stdin to stdout; `echo-err`: copy stdin to stderr;
//! * `echo-both`: copy stdin to stdout, then the same bytes to stderr;
//! * `tee`: copy stdin to stdout and to stderr chunk by chunk while reading
//!   (all three streams busy at once);
//! * `out=TEXT`, `err=TEXT`: write TEXT (`\n` and `\\` escapes) to stdout/stderr;
//! * `drain`: read stdin to end-of-file and print `drained=N`;
//! * `close-stdin`: close fd 0;
//! * `cat-fd=N`: copy fd N to stdout until end-of-file;
//! * `sleep=SECS`: sleep (fractions allowed);
//! * `exit=CODE`: exit with CODE; `kill=SIG`: send itself signal SIG;
//! * `syscall=NAME[/ARG...]`: make the raw system call NAME (a name of this
//!   architecture, or a number) with the integer arguments given (missing
//!   ones are 0) and print `syscall=NAME ret=R errno=E` (E is 0 on success).
//!
//! The report is one `key=value` per line; values are escaped so any byte
//! string survives: bytes outside printable ASCII, `\` and `%` become `%XX`.
//! Keys: `argc`, `arg` (once per argument, in order), `env` (sorted), `fd`
//! (`N target`), `cwd`, `umask`, `pid`, `ppid`, `pgid`, `sid`, `sigblk`,
//! `sigign`, `sigcgt`, `capinh`, `capprm`, `capeff`, `capbnd`, `capamb`,
//! `uid`, `gid`, `groups`, `nonewprivs`, `seccomp` (the mode: 2 under a
//! filter), `seccomp_filters` (how many; empty before Linux 5.9), `rlimit`
//! (`NAME SOFT HARD`).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
    fn close(fd: i32) -> i32;
    fn syscall(number: i64, ...) -> i64;
}

/// The number of system call `name` (or `name` itself, when a number).
fn syscall_number(name: &str) -> Option<i64> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    #[cfg(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "x86",
        target_arch = "arm",
        target_arch = "riscv64",
        target_arch = "loongarch64"
    ))]
    if let Ok(s) = name.parse::<syscalls::Sysno>() {
        return Some(i64::from(s.id()));
    }
    None
}

/// The `syscall=` action: makes the call, prints its result and errno.
fn raw_syscall(spec: &str, out: &mut impl Write) -> std::io::Result<()> {
    let mut parts = spec.split('/');
    let name = parts.next().unwrap_or("");
    let nr = syscall_number(name)
        .ok_or_else(|| std::io::Error::other(format!("no system call {name:?}")))?;
    let mut args = [0i64; 6];
    for (slot, arg) in args.iter_mut().zip(parts) {
        *slot = arg.parse().map_err(std::io::Error::other)?;
    }
    // SAFETY: the test asked for this exact call; with integer arguments a
    // call can fail, not touch this program's memory (the tests pass none
    // that a call reads as a pointer into it).
    let ret = unsafe { syscall(nr, args[0], args[1], args[2], args[3], args[4], args[5]) };
    let errno = if ret == -1 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    } else {
        0
    };
    writeln!(out, "syscall={name} ret={ret} errno={errno}")?;
    out.flush()
}

fn esc(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'%' && b != b'\\' {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The `fd=N target` lines: every open fd but the directory being read.
fn write_fds(out: &mut impl Write) -> std::io::Result<()> {
    let mut fds: Vec<(i32, Vec<u8>)> = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let entry = entry?;
        let Ok(n) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let target = std::fs::read_link(entry.path())
            .map(|p| p.into_os_string().into_vec())
            .unwrap_or_default();
        fds.push((n, target));
    }
    // The directory being read shows up as one more fd: leave it out.
    let me = format!("/proc/{}/fd", std::process::id());
    fds.retain(|(_, t)| t != me.as_bytes());
    fds.sort();
    for (n, t) in fds {
        writeln!(out, "fd={n} {}", esc(&t))?;
    }
    Ok(())
}

fn report(out: &mut impl Write) -> std::io::Result<()> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let skip = if args.get(1).is_some_and(|a| a.as_bytes().starts_with(b"::")) {
        2
    } else {
        1
    };
    let args = &args[skip.min(args.len())..];
    writeln!(out, "argc={}", args.len())?;
    for a in args {
        writeln!(out, "arg={}", esc(a.as_bytes()))?;
    }
    let mut env: Vec<Vec<u8>> = std::env::vars_os()
        .map(|(k, v)| {
            let mut e = k.into_vec();
            e.push(b'=');
            e.extend(v.into_vec());
            e
        })
        .collect();
    env.sort();
    for e in env {
        writeln!(out, "env={}", esc(&e))?;
    }
    write_fds(out)?;
    let cwd = std::env::current_dir()
        .map(|p| p.into_os_string().into_vec())
        .unwrap_or_default();
    writeln!(out, "cwd={}", esc(&cwd))?;
    let status = std::fs::read_to_string("/proc/self/status")?;
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    writeln!(out, "umask={}", status_field(&status, "Umask"))?;
    writeln!(out, "pid={}", std::process::id())?;
    // getppid(), in the helper's own pid namespace (0 when the parent is
    // outside it); `ppid` is what /proc, mounted outside, shows.
    writeln!(out, "getppid={}", std::os::unix::process::parent_id())?;
    writeln!(out, "ppid={}", f.get(1).unwrap_or(&""))?;
    writeln!(out, "pgid={}", f.get(2).unwrap_or(&""))?;
    writeln!(out, "sid={}", f.get(3).unwrap_or(&""))?;
    for (key, field) in [
        ("sigblk", "SigBlk"),
        ("sigign", "SigIgn"),
        ("sigcgt", "SigCgt"),
        ("capinh", "CapInh"),
        ("capprm", "CapPrm"),
        ("capeff", "CapEff"),
        ("capbnd", "CapBnd"),
        ("capamb", "CapAmb"),
        ("uid", "Uid"),
        ("gid", "Gid"),
        ("groups", "Groups"),
        ("nonewprivs", "NoNewPrivs"),
        ("seccomp", "Seccomp"),
        ("seccomp_filters", "Seccomp_filters"),
    ] {
        writeln!(out, "{key}={}", status_field(&status, field))?;
    }
    let limits = std::fs::read_to_string("/proc/self/limits")?;
    for line in limits.lines().skip(1) {
        // "Max open files            1024                 4096                 files"
        let name = line.get(..26).unwrap_or("").trim();
        let rest: Vec<&str> = line.get(26..).unwrap_or("").split_whitespace().collect();
        if let (Some(soft), Some(hard)) = (rest.first(), rest.get(1)) {
            writeln!(out, "rlimit={} {soft} {hard}", name.replace(' ', "_"))?;
        }
    }
    // The namespaces (their inode numbers tell them apart) and the hostname.
    for kind in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
        let link = std::fs::read_link(format!("/proc/self/ns/{kind}"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        writeln!(out, "ns_{kind}={link}")?;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    writeln!(out, "hostname={}", host.trim_end())?;
    Ok(())
}

fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = s.bytes();
    while let Some(b) = chars.next() {
        if b == b'\\' {
            match chars.next() {
                Some(b'n') => out.push(b'\n'),
                Some(b't') => out.push(b'\t'),
                Some(other) => out.push(other),
                None => out.push(b'\\'),
            }
        } else {
            out.push(b);
        }
    }
    out
}

fn copy(from: &mut impl Read, to: &mut impl Write) -> std::io::Result<u64> {
    let n = std::io::copy(from, to)?;
    to.flush()?;
    Ok(n)
}

fn main() {
    let first = std::env::args_os().nth(1);
    let actions: Vec<String> = match &first {
        Some(a) if a.as_bytes().starts_with(b"::") => String::from_utf8_lossy(&a.as_bytes()[2..])
            .split(',')
            .map(str::to_owned)
            .collect(),
        _ => vec!["report".to_owned()],
    };
    let mut stdout = std::io::stdout().lock();
    for action in actions.iter().filter(|a| !a.is_empty()) {
        let (name, value) = action.split_once('=').unwrap_or((action.as_str(), ""));
        let result: std::io::Result<()> = (|| {
            match name {
                "report" => {
                    let mut buf = Vec::new();
                    report(&mut buf)?;
                    stdout.write_all(&buf)?;
                    stdout.flush()
                }
                "fds" => {
                    let mut buf = Vec::new();
                    write_fds(&mut buf)?;
                    stdout.write_all(&buf)?;
                    stdout.flush()
                }
                "echo" => copy(&mut std::io::stdin().lock(), &mut stdout).map(drop),
                "echo-err" => copy(&mut std::io::stdin().lock(), &mut std::io::stderr()).map(drop),
                "echo-both" => {
                    let mut buf = Vec::new();
                    std::io::stdin().read_to_end(&mut buf)?;
                    stdout.write_all(&buf)?;
                    stdout.flush()?;
                    std::io::stderr().write_all(&buf)
                }
                "tee" => {
                    let mut stdin = std::io::stdin().lock();
                    let mut stderr = std::io::stderr().lock();
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match stdin.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => n,
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                            Err(e) => return Err(e),
                        };
                        stdout.write_all(&buf[..n])?;
                        stdout.flush()?;
                        stderr.write_all(&buf[..n])?;
                    }
                    Ok(())
                }
                "out" => {
                    stdout.write_all(&unescape(value))?;
                    stdout.flush()
                }
                "err" => std::io::stderr().write_all(&unescape(value)),
                "drain" => {
                    let n = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink())?;
                    writeln!(stdout, "drained={n}")?;
                    stdout.flush()
                }
                "close-stdin" => {
                    // SAFETY: closing fd 0, which nothing in this program uses after.
                    unsafe { close(0) };
                    Ok(())
                }
                "cat-fd" => {
                    use std::os::fd::FromRawFd;
                    let fd: i32 = value.parse().map_err(std::io::Error::other)?;
                    // SAFETY: the fd was passed to us; we own it from here on.
                    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
                    copy(&mut f, &mut stdout).map(drop)
                }
                "sleep" => {
                    let secs: f64 = value.parse().map_err(std::io::Error::other)?;
                    std::thread::sleep(std::time::Duration::from_secs_f64(secs));
                    Ok(())
                }
                "exit" => std::process::exit(value.parse().unwrap_or(1)),
                "syscall" => raw_syscall(value, &mut stdout),
                "kill" => {
                    let sig: i32 = value.parse().map_err(std::io::Error::other)?;
                    // SAFETY: kill(2) on our own pid.
                    unsafe { kill(std::process::id() as i32, sig) };
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    Ok(())
                }
                other => Err(std::io::Error::other(format!("unknown action {other:?}"))),
            }
        })();
        if let Err(e) = result {
            eprintln!("safespawn-testhelper: {action}: {e}");
            std::process::exit(99);
        }
    }
}
