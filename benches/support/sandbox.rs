//! The sandbox section's methods: the raw floor (`RawSandbox`: one clone
//! with the namespace flags, then the mount calls the library's child will
//! make, written here with libc), `bwrap` with the same sandbox, and the
//! safespawn sandbox (`prepared_sandbox`).
//!
//! The sandbox, the same for every method: new user, mount, pid, net, uts
//! and ipc namespaces, uid and gid 0 inside (a self map), `/` a fresh tmpfs,
//! read-only binds of those of `/usr`, `/bin`, `/lib`, `/lib64` that exist,
//! a tmpfs on `/tmp`, `/proc`, a minimal `/dev`, and the static no-op's
//! directory bound read-only so that exec finds it.
//!
//! **Symlinked `/bin`, `/lib`, `/lib64`** (a merged-/usr host, like this
//! one): every method binds the *resolved* source onto a directory of the
//! same name, as `bwrap --ro-bind /bin /bin` does (its mountinfo shows
//! `/usr/bin` mounted on `/bin`) and as `Mount::bind_ro("/bin", "/bin")`
//! must, the API having no symlink kind. A symlink (`bwrap --symlink usr/bin
//! /bin`) would replace a mkdir, a bind and a `mount_setattr` by one
//! `symlink` each; BENCHMARKS.md has what that saves (≈ 7 µs each).

use std::ffi::{c_char, c_int, c_ulong, c_void, CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::Targets;

/// The namespaces of the sandbox, as clone flags.
pub const SANDBOX_NAMESPACES: c_int = libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC;

/// The host directories bound read-only (those that exist).
pub const RO_BINDS: [&str; 4] = ["/usr", "/bin", "/lib", "/lib64"];

/// The host devices `Mount::dev` / `bwrap --dev` bind into the new /dev.
pub const DEV_NODES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// What the sandbox contains, resolved once on the host.
pub struct SandboxSpec {
    /// `(source as given, its resolved path)` for each of [`RO_BINDS`] that
    /// exists; the destination is the path as given.
    pub ro_binds: Vec<(PathBuf, PathBuf)>,
    /// The no-op's directory (bound at the same path), unless a bind above
    /// already shows it.
    pub noop_dir: Option<PathBuf>,
    pub noop: PathBuf,
}

impl SandboxSpec {
    pub fn new(targets: &Targets) -> SandboxSpec {
        let ro_binds: Vec<(PathBuf, PathBuf)> = RO_BINDS
            .iter()
            .map(Path::new)
            .filter_map(|p| Some((p.to_path_buf(), std::fs::canonicalize(p).ok()?)))
            .collect();
        let dir = targets.noop.parent().expect("the no-op has a directory");
        let dir = std::fs::canonicalize(dir).expect("the no-op's directory");
        let shown = ro_binds.iter().any(|(dst, _)| dir.starts_with(dst));
        SandboxSpec {
            ro_binds,
            noop_dir: (!shown).then_some(dir.clone()),
            noop: dir.join(targets.noop.file_name().expect("file name")),
        }
    }

    /// bwrap's arguments for the same sandbox, the program last.
    pub fn bwrap_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = [
            "--unshare-user",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-uts",
            "--unshare-ipc",
            "--uid",
            "0",
            "--gid",
            "0",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        for (dst, _) in &self.ro_binds {
            a.extend(["--ro-bind".into(), dst.into(), dst.into()]);
        }
        a.extend(["--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev"].map(OsString::from));
        if let Some(d) = &self.noop_dir {
            a.extend(["--ro-bind".into(), d.into(), d.into()]);
        }
        a.push(self.noop.clone().into());
        a
    }
}

/// `bwrap` on PATH, if any.
pub fn find_bwrap() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("bwrap"))
        .find(|p| {
            let c = CString::new(p.as_os_str().as_bytes()).unwrap();
            // SAFETY: a valid C string.
            unsafe { libc::access(c.as_ptr(), libc::X_OK) == 0 }
        })
}

// ---------------------------------------------------------------------------
// The floor

/// One step of the child, with every argument prepared before the clone.
enum Step {
    /// open(O_WRONLY) + one write + close: the id map files.
    Write(CString, Vec<u8>),
    Mount {
        src: Option<CString>,
        dst: CString,
        fstype: Option<CString>,
        flags: c_ulong,
        data: Option<CString>,
    },
    /// `mount_setattr(dst, AT_RECURSIVE, { attr_set = MOUNT_ATTR_RDONLY })`.
    ReadOnly(CString),
    Mkdir(CString),
    /// An empty file (a bind target for a device): open(O_CREAT) + close.
    Create(CString),
    /// `symlink(target, link)`.
    Symlink(CString, CString),
    PivotRoot(CString, CString),
    Chdir(CString),
    Umount(CString),
    Rmdir(CString),
}

/// `struct mount_attr` (linux/mount.h), `MOUNT_ATTR_SIZE_VER0`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
#[cfg(target_arch = "x86_64")]
const SYS_MOUNT_SETATTR: libc::c_long = 442;
#[cfg(not(target_arch = "x86_64"))]
const SYS_MOUNT_SETATTR: libc::c_long = libc::SYS_mount_setattr;

fn cs(s: impl AsRef<[u8]>) -> CString {
    CString::new(s.as_ref()).expect("no NUL in a sandbox path")
}

fn cpath(p: &Path) -> CString {
    cs(p.as_os_str().as_bytes())
}

/// Builds the step list.
struct Plan {
    steps: Vec<Step>,
    labels: Vec<String>,
    /// The kind of work of each step, for the phase report.
    groups: Vec<&'static str>,
    group: &'static str,
    /// Directories known to exist in the new root (it starts empty).
    made: Vec<PathBuf>,
}

impl Plan {
    fn push(&mut self, label: String, step: Step) {
        self.labels.push(label);
        self.groups.push(self.group);
        self.steps.push(step);
    }

    /// `mkdir` of `dir` and of every ancestor not made yet.
    fn mkdir_p(&mut self, dir: &Path) {
        if dir == Path::new("/") || self.made.iter().any(|m| m == dir) {
            return;
        }
        if let Some(parent) = dir.parent() {
            self.mkdir_p(parent);
        }
        self.made.push(dir.to_path_buf());
        self.push(format!("mkdir {}", dir.display()), Step::Mkdir(cpath(dir)));
    }

    fn mount(
        &mut self,
        label: String,
        src: Option<&str>,
        dst: &str,
        fstype: Option<&str>,
        flags: c_ulong,
        data: Option<&str>,
    ) {
        self.push(
            label,
            Step::Mount {
                src: src.map(cs),
                dst: cs(dst),
                fstype: fstype.map(cs),
                flags,
                data: data.map(cs),
            },
        );
    }

    /// mkdir, bind of the host's `src` (seen under /oldroot), read-only.
    fn bind_ro(&mut self, src: &Path, dst: &Path) {
        self.mkdir_p(dst);
        let old = format!("/oldroot{}", src.display());
        let d = dst.display().to_string();
        self.mount(
            format!("bind {old} -> {d}"),
            Some(&old),
            &d,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        );
        self.push(format!("mount_setattr ro {d}"), Step::ReadOnly(cs(&d)));
    }
}

/// The step list of the sandbox: exactly what the library's child will do.
fn plan(spec: &SandboxSpec) -> Plan {
    let mut p = Plan {
        steps: Vec::new(),
        labels: Vec::new(),
        groups: Vec::new(),
        group: "id maps (3 writes)",
        made: Vec::new(),
    };
    // SAFETY: getters without preconditions.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    p.push(
        "write setgroups".into(),
        Step::Write(cs("/proc/self/setgroups"), b"deny".to_vec()),
    );
    p.push(
        "write gid_map".into(),
        Step::Write(
            cs("/proc/self/gid_map"),
            format!("0 {egid} 1\n").into_bytes(),
        ),
    );
    p.push(
        "write uid_map".into(),
        Step::Write(
            cs("/proc/self/uid_map"),
            format!("0 {euid} 1\n").into_bytes(),
        ),
    );
    let nosuid_nodev = libc::MS_NOSUID | libc::MS_NODEV;
    p.group = "rslave, staging tmpfs, pivot_root, chdir";
    p.mount(
        "mount / rslave".into(),
        None,
        "/",
        None,
        libc::MS_REC | libc::MS_SLAVE,
        None,
    );
    p.mount(
        "mount tmpfs /tmp (staging root)".into(),
        Some("tmpfs"),
        "/tmp",
        Some("tmpfs"),
        nosuid_nodev,
        Some("mode=0755"),
    );
    p.push("mkdir /tmp/oldroot".into(), Step::Mkdir(cs("/tmp/oldroot")));
    p.push(
        "pivot_root".into(),
        Step::PivotRoot(cs("/tmp"), cs("/tmp/oldroot")),
    );
    p.push("chdir /".into(), Step::Chdir(cs("/")));
    p.made.push("/oldroot".into());
    p.group = "ro binds of /usr /bin /lib /lib64 (mkdir, bind, mount_setattr)";
    for (dst, src) in &spec.ro_binds {
        p.bind_ro(src, dst);
    }
    p.group = "tmpfs /tmp (mkdir, mount)";
    p.mkdir_p(Path::new("/tmp"));
    p.mount(
        "mount tmpfs /tmp".into(),
        Some("tmpfs"),
        "/tmp",
        Some("tmpfs"),
        nosuid_nodev,
        Some("mode=0755"),
    );
    p.group = "proc (mkdir, mount)";
    p.mkdir_p(Path::new("/proc"));
    p.mount(
        "mount proc /proc".into(),
        Some("proc"),
        "/proc",
        Some("proc"),
        nosuid_nodev | libc::MS_NOEXEC,
        None,
    );
    p.group = "/dev (tmpfs, 6 device binds, devpts, ptmx, shm)";
    p.mkdir_p(Path::new("/dev"));
    p.mount(
        "mount tmpfs /dev".into(),
        Some("tmpfs"),
        "/dev",
        Some("tmpfs"),
        nosuid_nodev,
        Some("mode=0755"),
    );
    for node in DEV_NODES {
        let d = format!("/dev/{node}");
        p.push(format!("create {d}"), Step::Create(cs(&d)));
        p.mount(
            format!("bind /oldroot{d}"),
            Some(&format!("/oldroot{d}")),
            &d,
            None,
            libc::MS_BIND,
            None,
        );
    }
    p.mkdir_p(Path::new("/dev/pts"));
    p.mount(
        "mount devpts /dev/pts".into(),
        Some("devpts"),
        "/dev/pts",
        Some("devpts"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=620"),
    );
    p.push(
        "symlink /dev/ptmx".into(),
        Step::Symlink(cs("pts/ptmx"), cs("/dev/ptmx")),
    );
    p.mkdir_p(Path::new("/dev/shm"));
    p.mount(
        "mount tmpfs /dev/shm".into(),
        Some("tmpfs"),
        "/dev/shm",
        Some("tmpfs"),
        nosuid_nodev,
        None,
    );
    p.group = "ro bind of the no-op's directory";
    if let Some(d) = &spec.noop_dir {
        p.bind_ro(d, d);
    }
    p.group = "umount2 /oldroot (MNT_DETACH), rmdir";
    p.push(
        "umount2 /oldroot MNT_DETACH".into(),
        Step::Umount(cs("/oldroot")),
    );
    p.push("rmdir /oldroot".into(), Step::Rmdir(cs("/oldroot")));
    p
}

/// The floor: `clone(CLONE_VM | CLONE_VFORK | SIGCHLD | SANDBOX_NAMESPACES)`
/// on a reused stack, the steps of [`plan`] with libc (no allocation in the
/// child), `execve` of the no-op, `waitpid`.
pub struct RawSandbox {
    steps: Vec<Step>,
    labels: Vec<String>,
    groups: Vec<&'static str>,
    path: CString,
    argv: [*const c_char; 2],
    envp: *const *const c_char,
    stack: Box<[u8]>,
}

const STACK: usize = 64 * 1024;

/// A failed step, as the child left it in the shared memory.
#[derive(Debug, Clone, Copy)]
pub struct StepFailure {
    /// Index into the steps; `steps.len()` is the execve.
    pub step: usize,
    pub errno: c_int,
}

/// The child's view, in the suspended parent's frame (CLONE_VM).
struct Args {
    steps: *const Step,
    n: usize,
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    /// Where the child writes a failure (step index, errno).
    failed: *mut Option<StepFailure>,
    /// Null, or `n + 2` timestamps: child entry, after each step, before
    /// execve.
    times: *mut libc::timespec,
}

/// # Safety
///
/// Called on the child's stack only; `s` and its strings are the parent's,
/// alive and unchanged while it is suspended.
unsafe fn do_step(s: &Step) -> c_int {
    // SAFETY: every pointer is a NUL-terminated string or null where the
    // call allows it; see the function's contract.
    unsafe {
        let opt = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
        match s {
            Step::Write(path, text) => {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return -1;
                }
                let n = libc::write(fd, text.as_ptr() as *const c_void, text.len());
                libc::close(fd);
                if n == text.len() as isize {
                    0
                } else {
                    -1
                }
            }
            Step::Mount {
                src,
                dst,
                fstype,
                flags,
                data,
            } => libc::mount(
                opt(src),
                dst.as_ptr(),
                opt(fstype),
                *flags,
                opt(data) as *const c_void,
            ),
            Step::ReadOnly(dst) => {
                let attr = MountAttr {
                    attr_set: MOUNT_ATTR_RDONLY,
                    attr_clr: 0,
                    propagation: 0,
                    userns_fd: 0,
                };
                libc::syscall(
                    SYS_MOUNT_SETATTR,
                    libc::AT_FDCWD,
                    dst.as_ptr(),
                    libc::AT_RECURSIVE as c_ulong,
                    &attr as *const MountAttr,
                    std::mem::size_of::<MountAttr>(),
                ) as c_int
            }
            Step::Mkdir(p) => libc::mkdir(p.as_ptr(), 0o755),
            Step::Create(p) => {
                let fd = libc::open(
                    p.as_ptr(),
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                    0o644,
                );
                if fd < 0 {
                    return -1;
                }
                libc::close(fd)
            }
            Step::Symlink(target, link) => libc::symlink(target.as_ptr(), link.as_ptr()),
            Step::PivotRoot(new, old) => {
                libc::syscall(libc::SYS_pivot_root, new.as_ptr(), old.as_ptr()) as c_int
            }
            Step::Chdir(p) => libc::chdir(p.as_ptr()),
            Step::Umount(p) => libc::umount2(p.as_ptr(), libc::MNT_DETACH),
            Step::Rmdir(p) => libc::rmdir(p.as_ptr()),
        }
    }
}

extern "C" fn sandbox_child(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` points to an Args in the suspended parent's frame
    // (CLONE_VFORK), whose pointers stay valid until the child execs or
    // exits; the child makes system calls only (clock_gettime is the vDSO).
    unsafe {
        let a = &*(arg as *const Args);
        let stamp = |i: usize| {
            if !a.times.is_null() {
                libc::clock_gettime(libc::CLOCK_MONOTONIC, a.times.add(i));
            }
        };
        stamp(0);
        let steps = std::slice::from_raw_parts(a.steps, a.n);
        for (i, s) in steps.iter().enumerate() {
            if do_step(s) != 0 {
                *a.failed = Some(StepFailure {
                    step: i,
                    errno: *libc::__errno_location(),
                });
                libc::_exit(126);
            }
            stamp(i + 1);
        }
        stamp(a.n + 1);
        libc::execve(a.path, a.argv, a.envp);
        *a.failed = Some(StepFailure {
            step: a.n,
            errno: *libc::__errno_location(),
        });
        libc::_exit(127)
    }
}

/// Times of one diagnostic run, in µs from just before the clone.
pub struct PhaseTimes {
    /// Child entry (the clone with its namespaces), then after each step,
    /// then before execve.
    pub child: Vec<f64>,
    /// The parent again (the child has exec'd: vfork released).
    pub clone_returned: f64,
    /// waitpid returned (exit, namespace teardown, reap).
    pub reaped: f64,
}

fn us_between(a: &libc::timespec, b: &libc::timespec) -> f64 {
    (b.tv_sec - a.tv_sec) as f64 * 1e6 + (b.tv_nsec - a.tv_nsec) as f64 / 1e3
}

fn now() -> libc::timespec {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes the timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t
}

impl RawSandbox {
    pub fn new(spec: &SandboxSpec) -> RawSandbox {
        let p = plan(spec);
        let path = cpath(&spec.noop);
        extern "C" {
            static environ: *const *const c_char;
        }
        RawSandbox {
            steps: p.steps,
            labels: p.labels,
            groups: p.groups,
            argv: [path.as_ptr(), std::ptr::null()],
            path,
            // SAFETY: reading the C library's environ pointer.
            envp: unsafe { environ },
            stack: vec![0u8; STACK].into_boxed_slice(),
        }
    }

    /// What each step does, in order (the execve not included).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// One spawn + reap: the wait status, or the step that failed.
    pub fn run(&mut self) -> Result<c_int, StepFailure> {
        self.spawn_wait(std::ptr::null_mut())
            .map(|(status, _, _)| status)
    }

    /// One run with timestamps (a diagnostic: the stamps add ~50 vDSO
    /// calls).
    pub fn run_timed(&mut self) -> Result<(c_int, PhaseTimes), StepFailure> {
        let mut times = vec![
            libc::timespec {
                tv_sec: 0,
                tv_nsec: 0
            };
            self.steps.len() + 2
        ];
        let t0 = now();
        let (status, cloned, reaped) = self.spawn_wait(times.as_mut_ptr())?;
        let child = times.iter().map(|t| us_between(&t0, t)).collect();
        Ok((
            status,
            PhaseTimes {
                child,
                clone_returned: us_between(&t0, &cloned),
                reaped: us_between(&t0, &reaped),
            },
        ))
    }

    fn spawn_wait(
        &mut self,
        times: *mut libc::timespec,
    ) -> Result<(c_int, libc::timespec, libc::timespec), StepFailure> {
        let mut failed: Option<StepFailure> = None;
        let args = Args {
            steps: self.steps.as_ptr(),
            n: self.steps.len(),
            path: self.path.as_ptr(),
            argv: self.argv.as_ptr(),
            envp: self.envp,
            failed: &mut failed,
            times,
        };
        let top = (self.stack.as_mut_ptr() as usize + STACK) & !15;
        // SAFETY: the stack is ours and unused until clone returns; the
        // child makes system calls on data `args` points to, which outlives
        // the call (VFORK), then execs or exits.
        let pid = unsafe {
            libc::clone(
                sandbox_child,
                top as *mut c_void,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD | SANDBOX_NAMESPACES,
                &args as *const Args as *mut c_void,
            )
        };
        if pid < 0 {
            return Err(StepFailure {
                step: usize::MAX,
                errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
            });
        }
        let cloned = now();
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(r, pid);
        let reaped = now();
        // SAFETY: the child wrote `failed` (if at all) before it exited;
        // read through a volatile read since the write came from "another
        // thread" the compiler does not see.
        match unsafe { std::ptr::read_volatile(&failed) } {
            Some(f) => Err(f),
            None => Ok((status, cloned, reaped)),
        }
    }

    /// A failure as a sentence.
    pub fn describe(&self, f: StepFailure) -> String {
        let what = match f.step {
            usize::MAX => "clone".to_string(),
            s if s == self.steps.len() => "execve".to_string(),
            s => self.labels[s].clone(),
        };
        format!("{what}: {}", std::io::Error::from_raw_os_error(f.errno))
    }
}

/// The bare namespace cost: `clone(CLONE_VM | CLONE_VFORK | SIGCHLD |
/// flags)`, the child `_exit(0)`s at once, `waitpid`. Returns (µs until
/// the child runs, µs until reaped).
pub fn clone_exit(flags: c_int, stack: &mut [u8]) -> (f64, f64) {
    extern "C" fn child(arg: *mut c_void) -> c_int {
        // SAFETY: `arg` is the parent's timespec (CLONE_VM, parent
        // suspended); clock_gettime is the vDSO.
        unsafe {
            libc::clock_gettime(libc::CLOCK_MONOTONIC, arg as *mut libc::timespec);
            libc::_exit(0)
        }
    }
    let mut entered = now();
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    let t0 = now();
    // SAFETY: as in `RawSandbox::spawn_wait`; the child writes one
    // timespec and exits.
    let pid = unsafe {
        libc::clone(
            child,
            top as *mut c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD | flags,
            &mut entered as *mut libc::timespec as *mut c_void,
        )
    };
    assert!(pid > 0, "clone with flags {flags:#x} failed");
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid);
    let reaped = now();
    assert_eq!(status, 0);
    // SAFETY: the child wrote it before exiting.
    let entered = unsafe { std::ptr::read_volatile(&entered) };
    (us_between(&t0, &entered), us_between(&t0, &reaped))
}

fn median_of(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The one-off diagnostic (`--sandbox-phases N`): one standalone run of the
/// floor (exit status 0 required), then `n` timed runs: the median of each
/// step and phase; then the bare cost of each namespace kind
/// ([`clone_exit`], interleaved).
pub fn phase_report(targets: &Targets, n: usize) {
    let spec = SandboxSpec::new(targets);
    let mut raw = RawSandbox::new(&spec);
    match raw.run() {
        Ok(0) => println!("raw sandbox, standalone run: exit status 0 (ok)"),
        Ok(s) => panic!("raw sandbox: wait status {s:#x}"),
        Err(f) => panic!("raw sandbox failed at {}", raw.describe(f)),
    }
    let steps = raw.labels().len();
    // Column per step: the child's entry, each step, execve until the
    // vfork release, exit + teardown + reap; then the total.
    let mut cols: Vec<Vec<f64>> = vec![Vec::with_capacity(n); steps + 4];
    for i in 0..n + 5 {
        let (status, t) = raw
            .run_timed()
            .unwrap_or_else(|f| panic!("{}", raw.describe(f)));
        assert_eq!(status, 0);
        if i < 5 {
            continue;
        }
        cols[0].push(t.child[0]);
        for s in 0..steps {
            cols[s + 1].push(t.child[s + 1] - t.child[s]);
        }
        // (the stamp "before execve" follows the last step at once)
        cols[steps + 1].push(t.clone_returned - t.child[steps + 1]);
        cols[steps + 2].push(t.reaped - t.clone_returned);
        cols[steps + 3].push(t.reaped);
    }
    let med: Vec<f64> = cols.iter_mut().map(|c| median_of(c)).collect();
    let total = med[steps + 3];
    println!();
    println!("raw sandbox phases, median of {n} timed runs (µs; the stamps add ~0.05 µs each)");
    println!("| step | µs | share of the median total |");
    println!("|---|---|---|");
    let row =
        |label: &str, us: f64| println!("| {label} | {us:.1} | {:.1} % |", us / total * 100.0);
    row("clone with the 6 namespaces, until the child runs", med[0]);
    for (s, label) in raw.labels().iter().enumerate() {
        row(label, med[s + 1]);
    }
    row("execve, until the parent resumes", med[steps + 1]);
    row("exit, namespace teardown, reap", med[steps + 2]);
    println!("| **total (median of totals)** | {total:.1} | |");

    // By kind of work.
    let mut groups: Vec<(&str, f64)> = Vec::new();
    let mut add = |g: &'static str, us: f64| match groups.iter_mut().find(|(n, _)| *n == g) {
        Some(e) => e.1 += us,
        None => groups.push((g, us)),
    };
    add("clone + the namespaces' creation", med[0]);
    for s in 0..steps {
        let g = raw.groups[s];
        add(g, med[s + 1]);
    }
    add("execve", med[steps + 1]);
    add(
        "exit, teardown of the namespaces and mounts, reap",
        med[steps + 2],
    );
    println!();
    println!("| kind of work | µs (sum of step medians) | share |");
    println!("|---|---|---|");
    for (g, us) in &groups {
        println!("| {g} | {us:.1} | {:.1} % |", us / total * 100.0);
    }

    // Each namespace kind alone (with USER, which the others need without
    // privilege), the child exiting at once.
    let kinds: [(&str, c_int); 8] = [
        ("none (plain CLONE_VM|CLONE_VFORK)", 0),
        ("USER", libc::CLONE_NEWUSER),
        ("USER|MOUNT", libc::CLONE_NEWUSER | libc::CLONE_NEWNS),
        ("USER|PID", libc::CLONE_NEWUSER | libc::CLONE_NEWPID),
        ("USER|NET", libc::CLONE_NEWUSER | libc::CLONE_NEWNET),
        ("USER|UTS", libc::CLONE_NEWUSER | libc::CLONE_NEWUTS),
        ("USER|IPC", libc::CLONE_NEWUSER | libc::CLONE_NEWIPC),
        ("all six", SANDBOX_NAMESPACES),
    ];
    let mut stack = vec![0u8; STACK];
    let mut entry: Vec<Vec<f64>> = vec![Vec::with_capacity(n); kinds.len()];
    let mut reap: Vec<Vec<f64>> = vec![Vec::with_capacity(n); kinds.len()];
    for round in 0..n + 5 {
        for k in 0..kinds.len() {
            let k = if round % 2 == 0 {
                k
            } else {
                kinds.len() - 1 - k
            };
            let (e, r) = clone_exit(kinds[k].1, &mut stack);
            if round >= 5 {
                entry[k].push(e);
                reap[k].push(r);
            }
        }
    }
    println!();
    println!("namespace creation alone: clone(flags), the child _exit(0)s at once; median of {n}, interleaved (µs)");
    println!("| flags | until the child runs | until reaped |");
    println!("|---|---|---|");
    for (k, (name, _)) in kinds.iter().enumerate() {
        println!(
            "| {name} | {:.1} | {:.1} |",
            median_of(&mut entry[k]),
            median_of(&mut reap[k])
        );
    }
}

// ---------------------------------------------------------------------------
// bwrap and safespawn

/// `bwrap` with the same sandbox, run through a safespawn `Prepared` (so
/// bwrap is charged its own work, not std's spawn path); `None` without
/// `bwrap` on PATH.
pub fn bwrap_prepared(spec: &SandboxSpec) -> Option<safespawn::Prepared> {
    let bwrap = find_bwrap()?;
    Some(
        super::methods::command(&bwrap)
            .args(spec.bwrap_args())
            .build()
            .expect("build bwrap"),
    )
}

/// The sandbox as a safespawn command: new user, mount, pid, net, uts and
/// ipc namespaces with `map_root`, a tmpfs root with the read-only binds,
/// `/tmp`, `/proc`, `/dev` and the no-op's directory.
fn sandbox_command(spec: &SandboxSpec) -> safespawn::Command {
    use safespawn::{Mount, Namespaces};
    let mut c = super::methods::command(&spec.noop)
        .unshare(
            Namespaces::USER
                | Namespaces::MOUNT
                | Namespaces::PID
                | Namespaces::NET
                | Namespaces::UTS
                | Namespaces::IPC,
        )
        .map_root()
        .root_tmpfs();
    // `.optional()`: skipped where the host has no such directory,
    // as the floor and bwrap's arguments leave it out.
    for dir in RO_BINDS {
        c = c.mount(Mount::bind_ro(dir, dir).optional());
    }
    c = c
        .mount(Mount::tmpfs("/tmp"))
        .mount(Mount::proc("/proc"))
        .mount(Mount::dev("/dev"));
    if let Some(d) = &spec.noop_dir {
        c = c.mount(Mount::bind_ro(d, d));
    }
    c
}

/// safespawn with the same sandbox, as a `Command` built and run each time
/// (what a one-shot caller pays, as bwrap's caller does: `build()` with
/// its checks of every mount, then the spawn).
pub fn command_sandbox(spec: &SandboxSpec) -> Result<std::process::ExitStatus, safespawn::Error> {
    sandbox_command(spec).status()
}

/// safespawn with the same sandbox.
pub fn prepared_sandbox(spec: &SandboxSpec) -> Option<safespawn::Prepared> {
    Some(
        sandbox_command(spec)
            .build()
            .expect("build the sandboxed no-op"),
    )
}

/// The sandbox of [`prepared_sandbox`] with every other confinement on top:
/// a seccomp deny-list, a landlock ruleset on the bound directories (rules
/// follow inodes, so one per bound source), a process knob, and a cgroup
/// when one is given.
pub fn prepared_everything(
    spec: &SandboxSpec,
    cgroup: Option<&std::path::Path>,
) -> Option<safespawn::Prepared> {
    use safespawn::{Landlock, Personality, Seccomp};
    let mut rules = Landlock::new().best_effort();
    for (_, resolved) in &spec.ro_binds {
        rules = rules.allow_read(resolved).allow_exec(resolved);
    }
    if let Some(d) = &spec.noop_dir {
        rules = rules.allow_read(d).allow_exec(d);
    }
    let mut c = sandbox_command(spec)
        .personality(Personality::ADDR_NO_RANDOMIZE)
        .seccomp(Seccomp::deny(
            super::methods::known(super::methods::DENY),
            libc::EPERM,
        ))
        .landlock(rules);
    if let Some(dir) = cgroup {
        c = c.cgroup(dir);
    }
    c.build().ok()
}
