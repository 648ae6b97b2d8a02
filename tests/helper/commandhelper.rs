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
//! * `try-read=PATH` (read a file, or list a directory), `try-write=PATH`
//!   (open for writing, created if missing, and write a byte),
//!   `try-exec=PATH` (run it without arguments, with the helper's
//!   streams), `try-mkdir=PATH`,
//!   `try-truncate=PATH` (`truncate(2)` to 0 bytes), `try-rename=FROM:TO`,
//!   `try-bind=PORT`, `try-connect=PORT` (TCP on 127.0.0.1): print
//!   `ACTION VALUE=RESULT`, RESULT `ok` or the errno's name (`EACCES`).
//!
//! Filesystem views (each prints `mount=` lines, or one `NAME=` line):
//! * `mounts`: only the report's `mount` lines (no other /proc file needed);
//! * `ns`: only the report's `ns_KIND` lines.
//!
//! Containment probes: each prints one line `ACTION=PATH RESULT`, PATH
//! escaped like a report value (and spaces as `%20`), RESULT `ok` or the
//! errno's name (`EROFS`, `EPERM`, ..., `E<number>` for others), and never
//! fails the helper:
//! * `probe-read=PATH`: open PATH and read up to 64 KiB (`ok N`, N the bytes
//!   read, and ` zero` when all of them are 0);
//! * `probe-write=PATH`: open PATH for appending (created with mode 0644 if
//!   missing) and write one line;
//! * `probe-mkdir=PATH`: `mkdir(PATH, 0755)`;
//! * `probe-remount-rw=PATH`: `mount(NULL, PATH, NULL, MS_REMOUNT | MS_BIND,
//!   NULL)`: the remount that would make a read-only bind writable again;
//! * `probe-mount-tmpfs=PATH`: `mount("tmpfs", PATH, "tmpfs", 0, NULL)`;
//! * `ls=PATH`: `ok` and the entries of directory PATH, sorted, each
//!   escaped, separated by spaces;
//! * `readlink=PATH`: `ok` and the link's target, escaped;
//! * `stat=PATH`: `ok`, the file's type (`dir`, `file`, `link`, `char`,
//!   `block`, `fifo`, `socket`), its permission bits in octal (`1777`),
//!   its uid and its gid (`lstat`: a link is not followed);
//! * `stat-root`: where `/` leads: `root_id=DEV:INO` of `/`,
//!   `root_dotdot_id=DEV:INO` of `/..`, `root_ls` and `root_dotdot_ls` (the
//!   `ls` results of `/` and `/..`), `root_climb_ls` (of the directory
//!   reached by `chdir("..")` eight times from `/`), `root_link` (the
//!   `readlink` result of `/proc/self/root`), `root_proc_ls` (the `ls`
//!   result of `/proc/self/root/`);
//! * `procs`: `procs=` and the numeric entries of `/proc`, sorted.
//!
//! The terminal: `tty` (of fd 0) or `tty=N` (of fd N) prints `tty_pid`,
//! `tty_pgid`, `tty_sid` (`getpid`, `getpgrp`, `getsid(0)`: no `/proc`
//! needed), `tty_nr` (the controlling terminal's device number, field 7 of
//! `/proc/self/stat`, 0 for none; empty without `/proc`), `tty_rdev` (the
//! device number of fd N, `errno N` if it has none), `tty_fg` and
//! `tty_fg_sid` (`tcgetpgrp` and `tcgetsid` of fd N, or `errno N`),
//! `tty_dev_tty` (`ok`, or the errno's name, of opening `/dev/tty`, which
//! only a process with a controlling terminal can) and `tty_sigblk` (the
//! blocked signals, `SigBlk` of `/proc/self/status`).
//!
//! The report is one `key=value` per line; values are escaped so any byte
//! string survives: bytes outside printable ASCII, `\` and `%` become `%XX`.
//! Keys: `argc`, `arg` (once per argument, in order), `env` (sorted), `fd`
//! (`N target`), `cwd`, `umask`, `pid`, `ppid`, `pgid`, `sid`, `sigblk`,
//! `sigign`, `sigcgt`, `capinh`, `capprm`, `capeff`, `capbnd`, `capamb`,
//! `uid`, `gid`, `groups`, `nonewprivs`, `seccomp` (the mode: 2 under a
//! filter), `seccomp_filters` (how many; empty before Linux 5.9), `rlimit`
//! (`NAME SOFT HARD`),
//! `ns_KIND` (`cgroup`, `ipc`, `mnt`, `net`, `pid`, `time`, `user`, `uts`:
//! the target of `/proc/self/ns/KIND`, e.g. `mnt:[4026531841]`, whose
//! inode tells namespaces apart), `hostname`, `mount` (one per line of
//! `/proc/self/mountinfo`: `POINT OPTIONS FSTYPE SUPER_OPTIONS`, the mount
//! point escaped like a value and spaces as `%20`, the per-mount options
//! such as `ro,nosuid,relatime`, the filesystem type and its own options),
//! `uid_map` and `gid_map` (the lines of `/proc/self/uid_map` and
//! `gid_map`, each `INSIDE OUTSIDE COUNT`, joined by `,`), then `nice`
//! (the 19th field of `/proc/self/stat`), `cpus` (`Cpus_allowed_list`),
//! `oom_score_adj`, `securebits` (hex, from `PR_GET_SECUREBITS`),
//! `personality` (hex, from `personality(0xffffffff)`) and `sched_core`
//! (the core-scheduling cookie, or `errno N`), `cgroup` (the
//! cgroup v2 path, as the `0::` line of `/proc/self/cgroup` shows it).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

extern "C" {
    fn getpgrp() -> i32;
    fn getsid(pid: i32) -> i32;
    fn tcgetpgrp(fd: i32) -> i32;
    fn tcgetsid(fd: i32) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
    fn close(fd: i32) -> i32;
    fn mount(
        source: *const std::ffi::c_char,
        target: *const std::ffi::c_char,
        fstype: *const std::ffi::c_char,
        flags: std::ffi::c_ulong,
        data: *const std::ffi::c_void,
    ) -> i32;
    fn prctl(option: i32, ...) -> i32;
    fn personality(persona: u64) -> i32;
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

/// `PR_GET_SECUREBITS`.
const PR_GET_SECUREBITS: i32 = 27;
/// `PR_SCHED_CORE`, and its `PR_SCHED_CORE_GET`.
const PR_SCHED_CORE: i32 = 62;

/// The knobs' keys of the report.
fn write_knobs(out: &mut impl Write, status: &str, stat_fields: &[&str]) -> std::io::Result<()> {
    // After "pid (comm)": field 3 (state) is index 0, so field 19 is 16.
    writeln!(out, "nice={}", stat_fields.get(16).unwrap_or(&""))?;
    writeln!(out, "cpus={}", status_field(status, "Cpus_allowed_list"))?;
    let oom = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap_or_default();
    writeln!(out, "oom_score_adj={}", oom.trim())?;
    // SAFETY: PR_GET_SECUREBITS reads no argument.
    let bits = unsafe { prctl(PR_GET_SECUREBITS, 0u64, 0u64, 0u64, 0u64) };
    writeln!(out, "securebits={bits:x}")?;
    // SAFETY: 0xffffffff only asks for the persona.
    let persona = unsafe { personality(0xffff_ffff) };
    writeln!(out, "personality={persona:x}")?;
    let mut cookie: u64 = 0;
    // SAFETY: PR_SCHED_CORE_GET of this thread (pid 0, PIDTYPE_PID) writes
    // one u64 to the address given.
    let rc = unsafe { prctl(PR_SCHED_CORE, 0u64, 0u64, 0u64, &mut cookie as *mut u64) };
    if rc == 0 {
        writeln!(out, "sched_core={cookie}")?;
    } else {
        let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        writeln!(out, "sched_core=errno {e}")?;
    }
    Ok(())
}

/// One `try-*` action: what the attempt gave.
fn attempt(name: &str, value: &str) -> std::io::Result<String> {
    use std::io::Write as _;
    let result: std::io::Result<()> = match name {
        "try-read" => {
            if std::path::Path::new(value).is_dir() {
                std::fs::read_dir(value).and_then(|mut d| d.try_for_each(|e| e.map(drop)))
            } else {
                std::fs::read(value).map(drop)
            }
        }
        "try-write" => std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(value)
            .and_then(|mut f| f.write_all(b"w")),
        // The streams inherited: /dev/null may not be there to open.
        "try-exec" => std::process::Command::new(value).status().map(drop),
        "try-mkdir" => std::fs::create_dir(value),
        "try-truncate" => std::fs::OpenOptions::new()
            .write(true)
            .open(value)
            .and_then(|f| f.set_len(0))
            .or_else(|e| {
                // Opening for writing may be what is denied; truncate(2)
                // by path is the other way in.
                if e.raw_os_error() == Some(13) {
                    truncate_path(value)
                } else {
                    Err(e)
                }
            }),
        "try-rename" => {
            let (from, to) = value
                .split_once(':')
                .ok_or_else(|| std::io::Error::other("try-rename=FROM:TO"))?;
            std::fs::rename(from, to)
        }
        "try-bind" => {
            let port: u16 = value.parse().map_err(std::io::Error::other)?;
            std::net::TcpListener::bind(("127.0.0.1", port)).map(drop)
        }
        "try-connect" => {
            let port: u16 = value.parse().map_err(std::io::Error::other)?;
            std::net::TcpStream::connect(("127.0.0.1", port)).map(drop)
        }
        _ => return Err(std::io::Error::other("not a try action")),
    };
    Ok(match result {
        Ok(()) => "ok".to_owned(),
        Err(e) => errno_name(&e),
    })
}

/// `truncate(2)` to 0 bytes.
fn truncate_path(path: &str) -> std::io::Result<()> {
    extern "C" {
        fn truncate(path: *const std::ffi::c_char, len: i64) -> i32;
    }
    let c = std::ffi::CString::new(path).map_err(std::io::Error::other)?;
    // SAFETY: a NUL-terminated path and a length.
    if unsafe { truncate(c.as_ptr(), 0) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
/// `MS_REMOUNT` and `MS_BIND` of mount(2).
const MS_REMOUNT: std::ffi::c_ulong = 32;
const MS_BIND: std::ffi::c_ulong = 4096;

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

/// [`esc`], with spaces escaped too: for words of a space-separated value.
fn esc_word(bytes: &[u8]) -> String {
    esc(bytes).replace(' ', "%20")
}

/// The name of an errno, as the probes print it.
fn errno_name(e: &std::io::Error) -> String {
    let Some(n) = e.raw_os_error() else {
        return "EOTHER".to_owned();
    };
    let name = match n {
        1 => "EPERM",
        2 => "ENOENT",
        5 => "EIO",
        9 => "EBADF",
        12 => "ENOMEM",
        13 => "EACCES",
        14 => "EFAULT",
        16 => "EBUSY",
        17 => "EEXIST",
        18 => "EXDEV",
        19 => "ENODEV",
        20 => "ENOTDIR",
        21 => "EISDIR",
        22 => "EINVAL",
        24 => "EMFILE",
        26 => "ETXTBSY",
        28 => "ENOSPC",
        30 => "EROFS",
        36 => "ENAMETOOLONG",
        38 => "ENOSYS",
        40 => "ELOOP",
        75 => "EOVERFLOW",
        98 => "EADDRINUSE",
        111 => "ECONNREFUSED",
        _ => return format!("E{n}"),
    };
    name.to_owned()
}

/// `ok` or the errno's name.
fn outcome(r: std::io::Result<()>) -> String {
    match r {
        Ok(()) => "ok".to_owned(),
        Err(e) => errno_name(&e),
    }
}

/// The `ls` result of `path`: `ok` and the sorted entries, or the errno.
fn ls(path: &std::path::Path) -> String {
    match std::fs::read_dir(path) {
        Ok(dir) => {
            let mut names: Vec<Vec<u8>> = dir.flatten().map(|e| e.file_name().into_vec()).collect();
            names.sort();
            let mut s = "ok".to_owned();
            for n in names {
                s.push(' ');
                s.push_str(&esc_word(&n));
            }
            s
        }
        Err(e) => errno_name(&e),
    }
}

/// The `readlink` result of `path`.
fn readlink(path: &std::path::Path) -> String {
    match std::fs::read_link(path) {
        Ok(t) => format!("ok {}", esc_word(t.as_os_str().as_bytes())),
        Err(e) => errno_name(&e),
    }
}

/// `DEV:INO` of `path`, or the errno.
fn file_id(path: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(m) => format!("{}:{}", m.dev(), m.ino()),
        Err(e) => errno_name(&e),
    }
}

/// A mount(2) call on C strings made from the arguments.
fn mount_call(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: std::ffi::c_ulong,
) -> std::io::Result<()> {
    let c = |s: &str| std::ffi::CString::new(s).map_err(std::io::Error::other);
    let source = source.map(c).transpose()?;
    let target = c(target)?;
    let fstype = fstype.map(c).transpose()?;
    let ptr = |s: &Option<std::ffi::CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: NUL-terminated strings (or null) that outlive the call; no data.
    let rc = unsafe {
        mount(
            ptr(&source),
            target.as_ptr(),
            ptr(&fstype),
            flags,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// One containment probe: its result line's value after `ACTION=PATH `.
fn probe(name: &str, path: &str) -> String {
    use std::io::Seek;
    match name {
        "probe-read" => match std::fs::File::open(path) {
            Ok(f) => {
                let mut buf = Vec::new();
                match f.take(64 * 1024).read_to_end(&mut buf) {
                    Ok(n) => {
                        let zero = if n > 0 && buf.iter().all(|&b| b == 0) {
                            " zero"
                        } else {
                            ""
                        };
                        format!("ok {n}{zero}")
                    }
                    Err(e) => errno_name(&e),
                }
            }
            Err(e) => errno_name(&e),
        },
        "probe-write" => outcome((|| {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o644)
                .open(path)?;
            // A character device (/dev/null, /dev/full) cannot seek.
            let _ = f.seek(std::io::SeekFrom::End(0));
            f.write_all(b"written by safespawn-testhelper\n")?;
            f.flush()
        })()),
        "probe-mkdir" => outcome(std::fs::create_dir(path)),
        "probe-remount-rw" => outcome(mount_call(None, path, None, MS_REMOUNT | MS_BIND)),
        "probe-mount-tmpfs" => outcome(mount_call(Some("tmpfs"), path, Some("tmpfs"), 0)),
        "ls" => ls(std::path::Path::new(path)),
        "readlink" => readlink(std::path::Path::new(path)),
        "stat" => match std::fs::symlink_metadata(path) {
            Ok(m) => {
                use std::os::unix::fs::{FileTypeExt, MetadataExt};
                let t = m.file_type();
                let kind = if t.is_dir() {
                    "dir"
                } else if t.is_file() {
                    "file"
                } else if t.is_symlink() {
                    "link"
                } else if t.is_char_device() {
                    "char"
                } else if t.is_block_device() {
                    "block"
                } else if t.is_fifo() {
                    "fifo"
                } else {
                    "socket"
                };
                format!("ok {kind} {:o} {} {}", m.mode() & 0o7777, m.uid(), m.gid())
            }
            Err(e) => errno_name(&e),
        },
        _ => unreachable!("not a probe: {name}"),
    }
}

/// The probes' names.
const PROBES: [&str; 8] = [
    "probe-read",
    "probe-write",
    "probe-mkdir",
    "probe-remount-rw",
    "probe-mount-tmpfs",
    "ls",
    "readlink",
    "stat",
];

/// The `stat-root` lines.
fn stat_root(out: &mut impl Write) -> std::io::Result<()> {
    writeln!(out, "root_id={}", file_id("/"))?;
    writeln!(out, "root_dotdot_id={}", file_id("/.."))?;
    writeln!(out, "root_ls={}", ls(std::path::Path::new("/")))?;
    writeln!(out, "root_dotdot_ls={}", ls(std::path::Path::new("/..")))?;
    let climbed = (|| {
        std::env::set_current_dir("/")?;
        for _ in 0..8 {
            std::env::set_current_dir("..")?;
        }
        Ok(ls(std::path::Path::new(".")))
    })()
    .unwrap_or_else(|e: std::io::Error| errno_name(&e));
    writeln!(out, "root_climb_ls={climbed}")?;
    writeln!(
        out,
        "root_link={}",
        readlink(std::path::Path::new("/proc/self/root"))
    )?;
    writeln!(
        out,
        "root_proc_ls={}",
        ls(std::path::Path::new("/proc/self/root/"))
    )?;
    Ok(())
}

/// A libc call's result, or `errno N` when it returned -1.
fn result_or_errno(rc: i32) -> String {
    if rc == -1 {
        let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        format!("errno {e}")
    } else {
        rc.to_string()
    }
}

/// The `tty` lines, about fd `fd`.
fn write_tty(out: &mut impl Write, fd: i32) -> std::io::Result<()> {
    use std::os::fd::FromRawFd;
    use std::os::unix::fs::MetadataExt;
    writeln!(out, "tty_pid={}", std::process::id())?;
    // SAFETY: getpgrp and getsid(0) read nothing of this program's memory.
    let (pgid, sid) = unsafe { (getpgrp(), getsid(0)) };
    writeln!(out, "tty_pgid={pgid}")?;
    writeln!(out, "tty_sid={}", result_or_errno(sid))?;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    // After "pid (comm)": field 3 (state) is index 0, so field 7 is 4.
    let tty_nr = after.split_whitespace().nth(4).unwrap_or("");
    writeln!(out, "tty_nr={tty_nr}")?;
    // SAFETY: the File is never dropped (ManuallyDrop): fd stays open and
    // ours to use after.
    let file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
    let rdev = match file.metadata() {
        Ok(m) => m.rdev().to_string(),
        Err(e) => format!("errno {}", e.raw_os_error().unwrap_or(0)),
    };
    writeln!(out, "tty_rdev={rdev}")?;
    // SAFETY: both read the terminal's state, nothing of our memory.
    let (fg, fg_sid) = unsafe { (tcgetpgrp(fd), tcgetsid(fd)) };
    writeln!(out, "tty_fg={}", result_or_errno(fg))?;
    writeln!(out, "tty_fg_sid={}", result_or_errno(fg_sid))?;
    let dev_tty = std::fs::File::open("/dev/tty").map(drop);
    writeln!(out, "tty_dev_tty={}", outcome(dev_tty))?;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    writeln!(out, "tty_sigblk={}", status_field(&status, "SigBlk"))?;
    Ok(())
}

/// The numeric entries of /proc, sorted.
fn procs() -> std::io::Result<Vec<u32>> {
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unoctal(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// The `mount=POINT OPTIONS FSTYPE SUPER_OPTIONS` lines of mountinfo.
fn write_mounts(out: &mut impl Write) -> std::io::Result<()> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    for line in info.lines() {
        // ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        let (Some(point), Some(opts)) = (l.get(4), l.get(5)) else {
            continue;
        };
        writeln!(
            out,
            "mount={} {opts} {} {}",
            esc_word(&unoctal(point)),
            r.first().unwrap_or(&""),
            r.get(2).unwrap_or(&"")
        )?;
    }
    Ok(())
}

/// The `ns_KIND` lines.
fn write_ns(out: &mut impl Write) -> std::io::Result<()> {
    for kind in ["cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"] {
        let link = std::fs::read_link(format!("/proc/self/ns/{kind}"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        writeln!(out, "ns_{kind}={link}")?;
    }
    Ok(())
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
        ("fdsize", "FDSize"),
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
    write_ns(out)?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    writeln!(out, "hostname={}", host.trim_end())?;
    write_mounts(out)?;
    for kind in ["uid_map", "gid_map"] {
        let map = std::fs::read_to_string(format!("/proc/self/{kind}")).unwrap_or_default();
        let lines: Vec<String> = map
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        writeln!(out, "{kind}={}", lines.join(","))?;
    }
    write_knobs(out, &status, &f)?;
    // The cgroup v2 path, as /proc/self/cgroup's "0::" line shows it
    // (relative to the root of the helper's cgroup namespace).
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let v2 = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("");
    writeln!(out, "cgroup={}", esc(v2.as_bytes()))?;
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
                "mounts" => {
                    let mut buf = Vec::new();
                    write_mounts(&mut buf)?;
                    stdout.write_all(&buf)?;
                    stdout.flush()
                }
                "ns" => {
                    let mut buf = Vec::new();
                    write_ns(&mut buf)?;
                    stdout.write_all(&buf)?;
                    stdout.flush()
                }
                probe_name if PROBES.contains(&probe_name) => {
                    let result = probe(probe_name, value);
                    writeln!(
                        stdout,
                        "{probe_name}={} {result}",
                        esc_word(value.as_bytes())
                    )?;
                    stdout.flush()
                }
                "stat-root" => {
                    let mut buf = Vec::new();
                    stat_root(&mut buf)?;
                    stdout.write_all(&buf)?;
                    stdout.flush()
                }
                "tty" => {
                    let fd: i32 = if value.is_empty() {
                        0
                    } else {
                        value.parse().map_err(std::io::Error::other)?
                    };
                    let mut buf = Vec::new();
                    write_tty(&mut buf, fd)?;
                    stdout.write_all(&buf)?;
                    stdout.flush()
                }
                "procs" => {
                    let pids: Vec<String> = procs()?.iter().map(u32::to_string).collect();
                    writeln!(stdout, "procs={}", pids.join(" "))?;
                    stdout.flush()
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
                n if n.starts_with("try-") => {
                    let result = attempt(n, value)?;
                    writeln!(stdout, "{n} {value}={result}")?;
                    stdout.flush()
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
