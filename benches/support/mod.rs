//! Shared by the spawn benchmarks: the targets, the raw clone baseline, the
//! parent conditions (touched memory, busy threads, open fds), a counting
//! allocator, and (in `sandbox`) the sandbox floor and bwrap. Benchmark
//! code, not library code: it may panic on set-up failures.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::{c_char, c_int, c_void, CString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

pub mod sandbox;

// ---------------------------------------------------------------------------
// Targets

/// A statically linked x86_64 ELF whose `_start` is `exit_group(0)`: the
/// smallest program the kernel can exec (3 user instructions, no loader, no
/// libc). 64-byte ELF header, one 56-byte PT_LOAD header, 9 bytes of code.
#[cfg(target_arch = "x86_64")]
fn noop_elf() -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    const CODE_AT: u64 = 64 + 56;
    // xor edi, edi; mov eax, 231 (exit_group); syscall
    let code: [u8; 9] = [0x31, 0xff, 0xb8, 0xe7, 0x00, 0x00, 0x00, 0x0f, 0x05];
    let total = CODE_AT + code.len() as u64;
    let mut f = Vec::with_capacity(total as usize);
    // e_ident: magic, ELFCLASS64, little-endian, version 1, System V ABI.
    f.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&2u16.to_le_bytes()); // e_type = ET_EXEC
    f.extend_from_slice(&62u16.to_le_bytes()); // e_machine = EM_X86_64
    f.extend_from_slice(&1u32.to_le_bytes()); // e_version
    f.extend_from_slice(&(BASE + CODE_AT).to_le_bytes()); // e_entry
    f.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
    f.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
    f.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    f.extend_from_slice(&64u16.to_le_bytes()); // e_ehsize
    f.extend_from_slice(&56u16.to_le_bytes()); // e_phentsize
    f.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    f.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
    f.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    f.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    assert_eq!(f.len(), 64);
    f.extend_from_slice(&1u32.to_le_bytes()); // p_type = PT_LOAD
    f.extend_from_slice(&5u32.to_le_bytes()); // p_flags = R | X
    f.extend_from_slice(&0u64.to_le_bytes()); // p_offset
    f.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    f.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    f.extend_from_slice(&total.to_le_bytes()); // p_filesz
    f.extend_from_slice(&total.to_le_bytes()); // p_memsz
    f.extend_from_slice(&0x1000u64.to_le_bytes()); // p_align
    assert_eq!(f.len() as u64, CODE_AT);
    f.extend_from_slice(&code);
    f
}

/// The static no-op target, written to a temporary file with mode 0755.
/// Elsewhere than x86_64 the benchmark falls back to `/bin/true` (and says
/// so), since the hand-assembled program is x86_64 code.
pub struct Targets {
    pub noop: PathBuf,
    pub noop_is_static: bool,
    pub bin_true: PathBuf,
    dir: Option<PathBuf>,
}

impl Targets {
    pub fn new() -> Targets {
        let bin_true = PathBuf::from("/bin/true");
        #[cfg(target_arch = "x86_64")]
        {
            let dir = std::env::temp_dir().join(format!("safespawn-bench-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let noop = dir.join("noop_static");
            std::fs::write(&noop, noop_elf()).expect("writing the no-op ELF");
            std::fs::set_permissions(&noop, std::fs::Permissions::from_mode(0o755))
                .expect("chmod 0755");
            let ok = std::process::Command::new(&noop)
                .status()
                .expect("running the no-op ELF");
            assert!(ok.success(), "the no-op ELF must exit 0");
            Targets {
                noop,
                noop_is_static: true,
                bin_true,
                dir: Some(dir),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            eprintln!("note: not x86_64, the static no-op target falls back to /bin/true");
            Targets {
                noop: bin_true.clone(),
                noop_is_static: false,
                bin_true,
                dir: None,
            }
        }
    }
}

impl Drop for Targets {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

// ---------------------------------------------------------------------------
// The raw baseline: clone(CLONE_VM | CLONE_VFORK | SIGCHLD) + execve + waitpid

/// What the baseline child needs, prepared once.
pub struct RawClone {
    path: CString,
    argv: [*const c_char; 2],
    envp: *const *const c_char,
    stack: Box<[u8]>,
}

const RAW_STACK: usize = 64 * 1024;

struct RawArgs {
    close_fds: bool,
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
}

extern "C" fn raw_child(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` points to a RawArgs in the suspended parent's frame
    // (CLONE_VFORK); execve's arguments are valid C strings / arrays.
    unsafe {
        let a = &*(arg as *const RawArgs);
        if a.close_fds {
            libc::syscall(
                libc::SYS_close_range,
                3 as libc::c_uint,
                !0 as libc::c_uint,
                0 as libc::c_uint,
            );
        }
        libc::execve(a.path, a.argv, a.envp);
        libc::_exit(127)
    }
}

impl RawClone {
    pub fn new(path: &Path) -> RawClone {
        let path = CString::new(path.as_os_str().as_bytes()).unwrap();
        extern "C" {
            static environ: *const *const c_char;
        }
        RawClone {
            argv: [path.as_ptr(), std::ptr::null()],
            path,
            // SAFETY: reading the C library's environ pointer.
            envp: unsafe { environ },
            stack: vec![0u8; RAW_STACK].into_boxed_slice(),
        }
    }

    /// One spawn + reap; returns the raw wait status. What a C program
    /// would do: no signal handling, no fd hygiene, no error channel.
    pub fn run(&mut self) -> c_int {
        self.spawn_wait(false)
    }

    /// The same with `close_range(3, ~0U, 0)` in the child: the cost of fd
    /// hygiene done the cheapest way.
    pub fn run_closing_fds(&mut self) -> c_int {
        self.spawn_wait(true)
    }

    fn spawn_wait(&mut self, close_fds: bool) -> c_int {
        let args = RawArgs {
            close_fds,
            path: self.path.as_ptr(),
            argv: self.argv.as_ptr(),
            envp: self.envp,
        };
        let top = (self.stack.as_mut_ptr() as usize + RAW_STACK) & !15;
        // SAFETY: the stack is ours and unused until clone returns; the
        // child only calls execve/_exit; `args` outlives the call (VFORK).
        let pid = unsafe {
            libc::clone(
                raw_child,
                top as *mut c_void,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                &args as *const RawArgs as *mut c_void,
            )
        };
        assert!(pid > 0, "clone failed");
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(r, pid);
        status
    }
}

// ---------------------------------------------------------------------------
// Parent conditions

/// `mib` MiB of private anonymous memory with 4 KiB pages, every page
/// written, unmapped on drop.
pub struct Ballast {
    ptr: *mut c_void,
    len: usize,
}

impl Ballast {
    pub fn new(mib: usize) -> Ballast {
        if mib == 0 {
            return Ballast {
                ptr: std::ptr::null_mut(),
                len: 0,
            };
        }
        let len = mib << 20;
        // SAFETY: a fresh anonymous mapping; written only through `ptr`.
        unsafe {
            let ptr = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(ptr, libc::MAP_FAILED, "mmap of {mib} MiB");
            libc::madvise(ptr, len, libc::MADV_NOHUGEPAGE);
            std::ptr::write_bytes(ptr as *mut u8, 0x5a, len);
            Ballast { ptr, len }
        }
    }
}

impl Drop for Ballast {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmapping our own mapping.
            unsafe { libc::munmap(self.ptr, self.len) };
        }
    }
}

/// `n` threads spinning until dropped.
pub struct BusyThreads {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl BusyThreads {
    pub fn new(n: usize) -> BusyThreads {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        BusyThreads { stop, threads }
    }
}

impl Drop for BusyThreads {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// `n` open fds on /dev/null *without* close-on-exec (what a careless
/// library leaves behind); closed on drop.
pub struct OpenFds(Vec<c_int>);

impl OpenFds {
    pub fn new(n: usize) -> OpenFds {
        let fds = (0..n)
            .map(|_| {
                // SAFETY: opening a path with a valid C string.
                let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
                assert!(fd >= 0, "open /dev/null");
                fd
            })
            .collect();
        OpenFds(fds)
    }
}

impl Drop for OpenFds {
    fn drop(&mut self) {
        for &fd in &self.0 {
            // SAFETY: closing fds this struct opened.
            unsafe { libc::close(fd) };
        }
    }
}

// ---------------------------------------------------------------------------
// Counting allocator

/// Counts every allocation (and reallocation) made through it.
pub struct CountingAlloc;

pub static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations made by `f`.
pub fn allocations_in(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    f();
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

/// Heap allocations of one spawn, wait, abort and `status()` of a
/// `Prepared` (all must be 0), printed as one line. The first spawn of the
/// process is a warm-up: lazily initialised statics (the close_range probe
/// and the like) belong to it.
pub fn spawn_path_allocations(targets: &Targets) -> [u64; 4] {
    let p = methods::prepared(&targets.noop);
    let sleeper = safespawn::Command::new("sleep")
        .arg("10")
        .build()
        .expect("build sleep");
    methods::safespawn_prepared(&p);
    let mut child = None;
    let spawn = allocations_in(|| child = Some(p.spawn().expect("spawn")));
    let mut finished = None;
    let wait = allocations_in(|| finished = Some(child.take().unwrap().wait().expect("wait")));
    assert!(finished.unwrap().success());
    let running = sleeper.spawn().expect("spawn sleep");
    let abort = allocations_in(|| {
        running.abort().expect("abort");
    });
    let mut status = None;
    let status_n = allocations_in(|| status = Some(p.status().expect("status")));
    assert!(status.unwrap().success());
    println!(
        "heap allocations per spawn: {spawn}, per wait: {wait}, per abort: {abort}, per status(): {status_n}"
    );
    [spawn, wait, abort, status_n]
}

// ---------------------------------------------------------------------------
// The methods

/// The spawn methods every section compares.
pub mod methods {
    use super::*;
    use safespawn::{Command, Prepared, Stdio};
    use std::os::unix::process::CommandExt;

    /// Inherit stdio, like std's `status()` and the raw baseline, so every
    /// method does the same fd work.
    pub fn command(path: &Path) -> Command {
        Command::new(path)
            .stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
    }

    pub fn prepared(path: &Path) -> Prepared {
        command(path).build().expect("build")
    }

    /// A new user namespace with the caller's ids as 0 inside, written by
    /// the child itself (`map_root`: the vfork-style path).
    pub fn prepared_map_root(path: &Path) -> Prepared {
        command(path)
            .unshare(safespawn::Namespaces::USER)
            .map_root()
            .build()
            .expect("build map_root")
    }

    /// The same maps as ranges (`uid_map(0, euid, 1)`, `gid_map(0, egid,
    /// 1)`), written by the parent while the child waits: the fork path.
    pub fn prepared_uid_map(path: &Path) -> Prepared {
        let uid = rustix::process::geteuid().as_raw();
        let gid = rustix::process::getegid().as_raw();
        command(path)
            .unshare(safespawn::Namespaces::USER)
            .uid_map(0, uid, 1)
            .gid_map(0, gid, 1)
            .build()
            .expect("build uid_map")
    }

    /// `map_root` forced onto the fork path by an empty hook: the child
    /// writes its self map there, so this minus [`prepared_uid_map`] is the
    /// parent's writes and the gate alone.
    pub fn prepared_map_root_fork(path: &Path) -> Prepared {
        // SAFETY: the hook does nothing in the child.
        let cmd = unsafe {
            command(path)
                .unshare(safespawn::Namespaces::USER)
                .map_root()
                .pre_exec(|| Ok(()))
        };
        cmd.build().expect("build map_root with a hook")
    }

    /// `path` landlocked as a confined program would be: the system read
    /// only, its own directory executable, `/tmp` writable, TCP to 443
    /// only (best effort: TCP where the ABI has it). `Err`: why this
    /// system cannot build it (no landlock).
    pub fn prepared_landlock(path: &Path) -> Result<Prepared, String> {
        let dir = path.parent().unwrap_or(Path::new("/"));
        let mut l = safespawn::Landlock::new();
        for sys in ["/usr", "/etc", "/lib", "/lib64", "/bin"] {
            if Path::new(sys).exists() {
                l = l.allow_read(sys).allow_exec(sys);
            }
        }
        let l = l
            .allow_exec(dir)
            .allow_write("/tmp")
            .allow_tcp_connect(443)
            .best_effort();
        command(path).landlock(l).build().map_err(|e| e.to_string())
    }

    pub fn safespawn_prepared(p: &Prepared) {
        assert!(p.status().expect("status").success());
    }

    pub fn safespawn_command(path: &Path) {
        assert!(command(path).status().expect("status").success());
    }

    pub fn std_status(path: &Path) {
        assert!(std::process::Command::new(path)
            .status()
            .expect("std status")
            .success());
    }

    pub fn std_pre_exec(path: &Path) {
        let mut c = std::process::Command::new(path);
        // SAFETY: the empty hook does nothing in the child.
        unsafe { c.pre_exec(|| Ok(())) };
        assert!(c.status().expect("std pre_exec status").success());
    }
}
