//! Shared by the integration tests: where the helper is, and its report.
//! [`maximal`] holds the child contract test's option list, one entry per area;
//! [`landlock`] what the landlock tests share.
//! [`tripwire`] its allocator, which aborts in a child; [`census`] what a
//! test counts (threads, fds, allocations) and the fd limit it raises.
#![allow(dead_code)]

pub mod census;
pub mod cgroup;
pub mod landlock;
pub mod maximal;
pub mod tripwire;

use std::collections::BTreeMap;
use std::io::Read;

use safespawn::{Command, Direct, Prepared, Stdio};

/// The path of the `safespawn-testhelper` binary cargo built for the tests.
pub const HELPER: &str = env!("CARGO_BIN_EXE_safespawn-testhelper");

/// A command running the helper with an action list (`"report"`, `"echo"`, ...).
pub fn helper(actions: &str) -> Command<Direct> {
    Command::new(HELPER).arg(format!("::{actions}"))
}

/// A copy of the helper that every user can run (see [`copy_for_any_user`]).
pub fn helper_path_for_any_user() -> &'static std::path::Path {
    static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        copy_for_any_user(
            std::path::Path::new(HELPER),
            "safespawn-testhelper",
            "helper",
            false,
        )
    })
}

/// Copies `from` to `to` with cp(1), a separate process: a file this
/// process had open for writing would be inherited by the children other
/// tests spawn meanwhile, and exec of the copy would fail with ETXTBSY
/// until those children exec.
pub fn copy_by_another_process(from: &std::path::Path, to: &std::path::Path) {
    let copied = std::process::Command::new("cp")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(
        copied.success(),
        "cp {} {}: {copied}",
        from.display(),
        to.display()
    );
}

/// A copy of the program `from` that every user can run. Tests that drop
/// to another uid cannot count on the build directory being reachable by
/// that uid (a checkout under a private 0700 directory, say); `/tmp` always
/// is. The copies live in `/tmp/<dir>-<uid>` (a directory another user, root
/// in an earlier run, created cannot be written or chmod-ed by this one),
/// one per build of `from` (named `<prefix>-<size>-<mtime>`), shared by
/// every test process and replaced atomically. With `remove_old`, copies
/// of other builds are removed (a run that still uses its copy keeps it
/// until it exits, but a run of another checkout started later would miss
/// it: only for copies too big to keep).
pub fn copy_for_any_user(
    from: &std::path::Path,
    dir: &str,
    prefix: &str,
    remove_old: bool,
) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(from).unwrap();
    let stamp = meta
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let uid = rustix::process::getuid().as_raw();
    let dir = std::env::temp_dir().join(format!("{dir}-{uid}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.join(format!("{prefix}-{}-{stamp}", meta.len()));
    if !path.exists() {
        let part = dir.join(format!("part-{}", std::process::id()));
        copy_by_another_process(from, &part);
        std::fs::set_permissions(&part, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&part, &path).unwrap();
        let old_prefix = format!("{prefix}-");
        let old_copies = std::fs::read_dir(&dir).unwrap().flatten();
        for old in old_copies.filter(|_| remove_old) {
            if old.path() != path && old.file_name().to_string_lossy().starts_with(&old_prefix) {
                let _ = std::fs::remove_file(old.path());
            }
        }
    }
    path
}

/// A fresh directory for one test, removed with everything in it when the
/// value is dropped.
pub struct Scratch(std::path::PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("safespawn-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl std::ops::Deref for Scratch {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for Scratch {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for Scratch {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A pseudo-terminal: the master, the slave (opened with `O_NOCTTY`, so it
/// never becomes this process's controlling terminal), the slave's path
/// and device number.
pub struct Pty {
    pub master: std::os::fd::OwnedFd,
    pub slave: std::fs::File,
    pub name: std::path::PathBuf,
    pub rdev: u64,
}

/// Opens a new pseudo-terminal ([`Pty`]).
pub fn pty() -> Pty {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let name = std::path::PathBuf::from(name.to_str().unwrap());
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&name)
        .unwrap();
    let rdev = slave.metadata().unwrap().rdev();
    Pty {
        master,
        slave,
        name,
        rdev,
    }
}

impl Pty {
    /// The slave, duplicated, for one of the child's streams.
    pub fn slave_dup(&self) -> Stdio {
        Stdio::dup(std::os::fd::AsFd::as_fd(&self.slave))
    }

    /// The slave, duplicated, for `map_fd` or a stream.
    pub fn slave_owned(&self) -> std::os::fd::OwnedFd {
        self.slave.try_clone().unwrap().into()
    }
}

/// Like [`helper`], for commands that run under another uid.
pub fn helper_for_any_user(actions: &str) -> Command<Direct> {
    Command::new(helper_path_for_any_user()).arg(format!("::{actions}"))
}

/// Undoes the helper's `%XX` escaping.
pub fn unesc(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// The helper's report, parsed.
#[derive(Debug, Default)]
pub struct Report {
    pub args: Vec<Vec<u8>>,
    pub env: Vec<Vec<u8>>,
    /// fd number -> link target
    pub fds: BTreeMap<i32, String>,
    pub fields: BTreeMap<String, String>,
    pub rlimits: BTreeMap<String, (String, String)>,
    /// The `mount` lines, in mountinfo's order.
    pub mounts: Vec<MountLine>,
    /// The containment probes' lines (`probe-write=PATH RESULT`, `ls=...`),
    /// in order: (action, path, result).
    pub probes: Vec<(String, Vec<u8>, String)>,
}

/// One `mount` line of the helper's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountLine {
    pub point: Vec<u8>,
    /// The per-mount options (`ro,nosuid,relatime`).
    pub options: Vec<String>,
    pub fstype: String,
    /// The filesystem's own options (`rw,size=1024k,mode=755`).
    pub super_options: Vec<String>,
}

impl MountLine {
    pub fn has(&self, option: &str) -> bool {
        self.options.iter().any(|o| o == option)
    }
    pub fn has_super(&self, option: &str) -> bool {
        self.super_options.iter().any(|o| o == option)
    }
}

/// The helper's probe actions, whose lines are `ACTION=PATH RESULT`.
pub const PROBES: [&str; 8] = [
    "probe-read",
    "probe-write",
    "probe-mkdir",
    "probe-remount-rw",
    "probe-mount-tmpfs",
    "ls",
    "readlink",
    "stat",
];

impl Report {
    /// The child's supplementary groups (the `groups` line), sorted.
    pub fn groups(&self) -> Vec<u32> {
        let mut g: Vec<u32> = self
            .field("groups")
            .split_whitespace()
            .map(|g| g.parse().unwrap())
            .collect();
        g.sort_unstable();
        g
    }

    pub fn parse(text: &str) -> Report {
        let mut r = Report::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            match k {
                "arg" => r.args.push(unesc(v)),
                "env" => r.env.push(unesc(v)),
                "fd" => {
                    let (n, t) = v.split_once(' ').unwrap_or((v, ""));
                    r.fds.insert(
                        n.parse().unwrap(),
                        String::from_utf8_lossy(&unesc(t)).into_owned(),
                    );
                }
                "mount" => {
                    let parts: Vec<&str> = v.split(' ').collect();
                    let list = |i: usize| {
                        parts
                            .get(i)
                            .map(|o| o.split(',').map(str::to_owned).collect())
                            .unwrap_or_default()
                    };
                    r.mounts.push(MountLine {
                        point: unesc(parts[0]),
                        options: list(1),
                        fstype: parts.get(2).unwrap_or(&"").to_string(),
                        super_options: list(3),
                    });
                }
                probe if PROBES.contains(&probe) => {
                    let (path, result) = v.split_once(' ').unwrap_or((v, ""));
                    r.probes
                        .push((probe.to_owned(), unesc(path), result.to_owned()));
                }
                "rlimit" => {
                    let parts: Vec<&str> = v.split(' ').collect();
                    r.rlimits.insert(
                        parts[0].to_owned(),
                        (parts[1].to_owned(), parts[2].to_owned()),
                    );
                }
                _ => {
                    r.fields.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        r
    }

    /// The result of the probe `action` on `path` (`ok`, `EROFS`, `ok a b`
    /// for `ls`); the last one when it ran more than once.
    pub fn probe(&self, action: &str, path: &str) -> &str {
        self.probes
            .iter()
            .rev()
            .find(|(a, p, _)| a == action && p == path.as_bytes())
            .map(|(_, _, r)| r.as_str())
            .unwrap_or_else(|| panic!("no {action}={path} line in the report: {:?}", self.probes))
    }

    /// The topmost mount at `point` (the last mountinfo line for it).
    pub fn mount_at(&self, point: &str) -> Option<&MountLine> {
        self.mounts
            .iter()
            .rev()
            .find(|m| m.point == point.as_bytes())
    }

    /// The entries of an `ls` probe's result (which must be `ok`).
    pub fn ls(&self, path: &str) -> Vec<String> {
        let r = self.probe("ls", path);
        let rest = r
            .strip_prefix("ok")
            .unwrap_or_else(|| panic!("ls={path} failed: {r}"));
        rest.split_whitespace()
            .map(|e| String::from_utf8_lossy(&unesc(e)).into_owned())
            .collect()
    }

    pub fn field(&self, k: &str) -> &str {
        self.fields.get(k).map(String::as_str).unwrap_or("")
    }

    pub fn fd_numbers(&self) -> Vec<i32> {
        self.fds.keys().copied().collect()
    }

    pub fn env_str(&self) -> Vec<String> {
        self.env
            .iter()
            .map(|e| String::from_utf8_lossy(e).into_owned())
            .collect()
    }
}

/// Runs `cmd` (whose stdout must not be set) and parses the helper's report.
pub fn report_of(cmd: Command<Direct>) -> Report {
    report_from(
        &cmd.stdout(Stdio::piped())
            .build()
            .expect("build helper command"),
    )
}

/// Spawns `prepared` (whose stdout must be piped) and parses the report.
pub fn report_from(prepared: &Prepared<Direct>) -> Report {
    let child = prepared.spawn().expect("spawn helper");
    Report::parse(&output_of(child))
}

/// Reads a child's piped stdout to the end, waits for it, checks that it
/// succeeded, and returns what it wrote.
pub fn output_of(mut child: safespawn::Running) -> String {
    let mut out = String::new();
    child
        .take_stdout()
        .expect("stdout is piped")
        .read_to_string(&mut out)
        .unwrap();
    let fin = child.wait().unwrap();
    assert!(fin.success(), "child failed: {:?}\n{out}", fin.status());
    out
}

/// The fields of `/proc/PID/stat` after the command name (state first, then
/// ppid, pgrp, session, ...), or none when the process is gone.
pub fn stat_fields(pid: i32) -> Vec<String> {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Vec::new();
    };
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    after.split_whitespace().map(str::to_owned).collect()
}

/// This process's session id as the kernel reports it in our pid namespace.
///
/// 0 when the session leader lives outside our pid namespace (as under some
/// CI runners): `getsid` returns 0 then too, which `rustix::process::getsid`
/// cannot represent, so the tests read `/proc/self/stat` like the helper does.
pub fn own_session() -> String {
    stat_fields(std::process::id() as i32)
        .get(3)
        .cloned()
        .expect("/proc/self/stat has a session field")
}

/// This process's zombie children (state Z), by scanning /proc.
pub fn zombie_children() -> Vec<i32> {
    let me = std::process::id().to_string();
    let mut z = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let f = stat_fields(pid);
        if f.first().map(String::as_str) == Some("Z") && f.get(1) == Some(&me) {
            z.push(pid);
        }
    }
    z
}

/// Whether this process may create a user namespace (root, or a system
/// that allows unprivileged ones), asked once by trying.
pub fn user_namespaces_allowed() -> bool {
    static ALLOWED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ALLOWED.get_or_init(|| can_unshare(safespawn::Namespaces::USER))
}

/// Whether a child may start in new namespaces `ns` here (asked by trying:
/// a container profile or an old kernel may refuse a kind, `TIME` needs
/// `clone3`); says on stderr when not.
pub fn can_unshare(ns: safespawn::Namespaces) -> bool {
    match Command::new("true").unshare(ns).status() {
        Ok(s) => s.success(),
        Err(e) => {
            eprintln!("new namespaces {ns:?} refused here: {e}");
            false
        }
    }
}

/// Whether this process runs as root (capability and uid tests need it).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Whether `test` can run: true as root; otherwise says on stderr that it
/// is skipped and why (`needs`: what it needs root for).
pub fn root_or_skip(test: &str, needs: &str) -> bool {
    if !is_root() {
        eprintln!("skipping {test}: it needs root ({needs}), and this is not root");
    }
    is_root()
}

/// Waits (up to 10 s) until process `pid` sleeps in `nanosleep`, as the
/// helper does for `sleep=SECS`: before that it is still starting up (the
/// dynamic loader opens files), so its fd table is not yet the one it
/// sleeps with. Returns whether it got there.
pub fn wait_until_asleep(pid: i32) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        match std::fs::read_to_string(format!("/proc/{pid}/wchan")) {
            Ok(w) if w.contains("nanosleep") => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    false
}

/// Every child of this process (all threads).
pub fn our_children() -> Vec<i32> {
    let mut pids = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            pids.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    pids
}

/// Starts a daemon whose pidfile is a FIFO in `dir`, so that it blocks in
/// its pidfile step while still running on the spawning frame, SIGKILLs the
/// intermediate meanwhile, and checks that `run()` reports that and stopped
/// the daemon before returning: nothing of ours is left but, at most, its
/// zombie (reaped here). The caller made this process a child subreaper,
/// so the daemon is re-parented to it and can be seen.
pub fn kill_the_intermediate_while_the_daemon_blocks(dir: &std::path::Path) {
    use rustix::process::{Pid, Signal, WaitOptions};
    let pid = |raw: i32| Pid::from_raw(raw).unwrap();
    // Opening a FIFO for writing blocks until a reader comes.
    let fifo = dir.join("pidfile.fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let before = our_children();
    let killer = std::thread::spawn(move || {
        // The intermediate is our new child, in a session of its own.
        for _ in 0..2000 {
            for p in our_children() {
                if !before.contains(&p) && stat_fields(p).get(3) == Some(&p.to_string()) {
                    rustix::process::kill_process(pid(p), Signal::KILL).unwrap();
                    return Some(p);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        None
    });
    let err = helper("sleep=30")
        .daemonize()
        .pidfile(&fifo)
        .run()
        .unwrap_err();
    let intermediate = killer
        .join()
        .unwrap()
        .expect("the intermediate was never seen");
    assert!(
        err.to_string().contains("killed by signal 9"),
        "{err} (intermediate {intermediate})"
    );
    for p in our_children() {
        assert!(
            zombie_children().contains(&p),
            "process {p} still running after run() returned"
        );
        let _ = rustix::process::waitpid(Some(pid(p)), WaitOptions::empty());
    }
}

/// The system calls the helper makes for its `report` (and `exit=`,
/// `sleep=`, `syscall=getppid`), with some to spare: a realistic
/// allow-list for [`safespawn::Seccomp::allow`]. Found with strace; the
/// spares are what glibc and std may make on other paths (another glibc,
/// another kernel's answers).
pub const HELPER_SYSCALLS: &[&str] = &[
    "access",
    "arch_prctl",
    "brk",
    "clock_gettime",
    "clock_nanosleep",
    "close",
    "dup",
    "dup2",
    "dup3",
    "execve",
    "exit",
    "exit_group",
    "fcntl",
    "fstat",
    "futex",
    "getcwd",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getpid",
    "getppid",
    "getrandom",
    "gettid",
    "getuid",
    "ioctl",
    "lseek",
    "madvise",
    "mmap",
    "mprotect",
    "mremap",
    "munmap",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "poll",
    "ppoll",
    "pread64",
    "prlimit64",
    "read",
    "readlink",
    "readlinkat",
    "rseq",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sched_getaffinity",
    "set_robust_list",
    "set_tid_address",
    "sigaltstack",
    "stat",
    "statx",
    "write",
];

/// One field of this process's `/proc/self/status` (empty when missing).
pub fn own_status_field(key: &str) -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// An fd of this process at `min` or above: `/dev/null`, not
/// close-on-exec (one a child would inherit if it kept it), with the soft
/// `RLIMIT_NOFILE` raised to make room when needed.
pub fn open_at_or_above(min: std::os::fd::RawFd) -> std::os::fd::OwnedFd {
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    let want = (min as u64) + 100;
    if lim.current.is_some_and(|c| c < want) {
        lim.current = Some(lim.maximum.map_or(want, |hard| hard.min(want)));
        rustix::process::setrlimit(rustix::process::Resource::Nofile, lim).unwrap();
    }
    let null = std::fs::File::open("/dev/null").unwrap();
    // SAFETY: F_DUPFD returns a new fd that this function owns.
    let fd = unsafe { libc::fcntl(null.as_raw_fd(), libc::F_DUPFD, min) };
    assert!(fd >= min, "F_DUPFD: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` was just opened and is owned by nobody else.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

/// The identity of an open fd of this process: (device, inode).
pub fn fd_identity(fd: std::os::fd::RawFd) -> (u64, u64) {
    // SAFETY: only borrowed for the fstat.
    let st = rustix::fs::fstat(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }).unwrap();
    (st.st_dev, st.st_ino)
}

/// Whether this process runs on Linux `major.minor` or later and under no
/// seccomp filter: then what the kernel offers is what a test sees.
pub fn unfiltered_kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let have_major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let have_minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let unfiltered = status
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Seccomp:", "0"]);
    (have_major, have_minor) >= (major, minor) && unfiltered
}
