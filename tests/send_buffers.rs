//! Send buffers in every mode, with real processes: what arrives, who
//! writes when, what a child that does not read does to the parent, that
//! no fd is left behind, and that the buffers' memory is zero once the
//! crate is done with it (the erasure test's allocator scans every block
//! freed in this process for a marker the secrets carry).
//!
//! Every test takes [`serial`]: they count this process's fds, and the
//! erasure test counts every block freed.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use common::census::{assert_same, open_fds, pattern, read_in_thread};
use common::{helper, zombie_children, Scratch};
use safespawn::{BuildErrorKind, Command, Stdio};

const MIB: usize = 1024 * 1024;

/// One test at a time; and the crate's shared /dev/null, which the first
/// `build` opens (once per process), is open before any test counts fds.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    drop(Command::new("true").build().unwrap());
    guard
}

/// SIGPIPE at its default action (death), as in a C program: Rust's
/// runtime ignores it, which would hide a parent that lets a write to a
/// pipe whose reader is gone raise it.
fn sigpipe_default() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: sets a standard signal to SIG_DFL; no handler is involved.
        let old = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
        assert_ne!(old, libc::SIG_ERR);
    });
}

/// The fds one running child costs this process without send buffers
/// (its pidfd), measured rather than assumed.
fn fds_of_a_plain_child() -> usize {
    let before = open_fds();
    let child = Command::new("sleep").arg("5").spawn().unwrap();
    let n = open_fds() - before;
    child.abort().unwrap();
    n
}

/// A small buffer goes in whole at the spawn: its pipe is closed before
/// `spawn` returns, so the child sees end-of-file although nobody waits.
#[test]
fn a_small_buffer_is_written_and_closed_by_spawn() {
    let _serial = serial();
    sigpipe_default();
    let per_child = fds_of_a_plain_child();
    let before = open_fds();
    let mut child = helper("cat-fd=3")
        .send_buffer(3, "a key\0with a NUL")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.take_stdout().unwrap();
    // The pidfd and the stdout pipe: no write end left.
    assert_eq!(open_fds(), before + per_child + 1);
    let mut got = Vec::new();
    stdout.read_to_end(&mut got).unwrap(); // ends: the write end is closed
    assert_eq!(got, b"a key\0with a NUL");
    assert!(child.wait().unwrap().success());
    drop(stdout);
    assert_eq!(open_fds(), before);
}

/// A buffer larger than its pipe: `spawn` writes what fits, `wait` the
/// rest; every byte arrives, in order, and then end-of-file.
#[test]
fn a_large_buffer_is_finished_by_wait() {
    let _serial = serial();
    sigpipe_default();
    let per_child = fds_of_a_plain_child();
    let before = open_fds();
    let big = pattern(4 * MIB + 3, 7);
    let mut child = helper("cat-fd=4,cat-fd=3")
        .send_buffer(3, "small")
        .send_buffer(4, big.clone())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // The pidfd, the stdout pipe and the one write end still pending.
    assert_eq!(open_fds(), before + per_child + 2);
    let reader = read_in_thread(child.take_stdout().unwrap());
    assert!(child.wait().unwrap().success());
    let mut want = big;
    want.extend_from_slice(b"small");
    assert_same("stdout", &reader.join().unwrap(), &want);
    assert_eq!(open_fds(), before);
}

/// `wait_timeout` writes too, and what is left at its timeout stays for
/// the next wait.
#[test]
fn wait_timeout_writes_and_keeps_the_rest() {
    let _serial = serial();
    let big = pattern(3 * MIB, 9);
    // Reads nothing for a while, then everything.
    let mut child = Command::new("sh")
        .args(["-c", "sleep 0.3; cat <&3"])
        .send_buffer(3, big.clone())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = read_in_thread(child.take_stdout().unwrap());
    let start = Instant::now();
    assert!(child
        .wait_timeout(Duration::from_millis(50))
        .unwrap()
        .is_none());
    assert!(start.elapsed() < Duration::from_secs(5));
    let status = child.wait_timeout(Duration::from_secs(60)).unwrap();
    assert!(status.unwrap().success());
    assert_same("stdout", &reader.join().unwrap(), &big);
}

/// A child that never reads its buffer and exits: the writing ends without
/// an error, without a hang and without a SIGPIPE for this process (whose
/// SIGPIPE would kill it here), through `wait`, `status` and `run`.
#[test]
fn a_child_that_never_reads_ends_the_writing() {
    let _serial = serial();
    sigpipe_default();
    let before = open_fds();
    let p = helper("exit=0")
        .send_buffer(3, vec![1u8; 4 * MIB])
        .build()
        .unwrap();
    let start = Instant::now();
    assert!(p.spawn().unwrap().wait().unwrap().success());
    assert!(p.status().unwrap().success());
    p.run().unwrap();
    // Closing its end while it runs on: EPIPE, then the wait for the exit.
    let closer = Command::new("sh")
        .args(["-c", "exec 3<&-; sleep 0.2"])
        .send_buffer(3, vec![2u8; 4 * MIB])
        .build()
        .unwrap();
    assert!(closer.status().unwrap().success());
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    drop((p, closer));
    assert_eq!(open_fds(), before);
    assert!(zombie_children().is_empty());
}

/// A child that exits while a grandchild keeps the read end open (and
/// never reads): the child's exit ends the writing; `wait` does not wait
/// for the grandchild.
#[test]
fn the_childs_exit_ends_the_writing() {
    let _serial = serial();
    sigpipe_default();
    let start = Instant::now();
    let status = Command::new("sh")
        .args(["-c", "sleep 3 & exit 0"])
        .send_buffer(3, vec![3u8; 4 * MIB])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

/// Dropping a `Running` whose buffer is not written whole closes its
/// write end (and kills and reaps the child): no fd, no zombie.
#[test]
fn dropping_a_running_with_pending_data_leaks_nothing() {
    let _serial = serial();
    let per_child = fds_of_a_plain_child();
    let before = open_fds();
    let child = Command::new("sleep")
        .arg("30")
        .send_buffer(3, vec![4u8; 4 * MIB])
        .send_buffer(4, "")
        .spawn()
        .unwrap();
    assert_eq!(open_fds(), before + per_child + 1, "the pending write end");
    let pid = child.pid();
    drop(child);
    assert_eq!(open_fds(), before);
    assert!(!zombie_children().contains(&pid));
    // Aborting and detaching close them too.
    let child = Command::new("sleep")
        .arg("30")
        .send_buffer(3, vec![4u8; 4 * MIB])
        .spawn()
        .unwrap();
    child.abort().unwrap();
    let detached = Command::new("sleep")
        .arg("30")
        .send_buffer(3, vec![4u8; 4 * MIB])
        .spawn()
        .unwrap()
        .detach();
    assert_eq!(open_fds(), before + per_child);
    detached.abort().unwrap();
    assert_eq!(open_fds(), before);
}

/// More buffers than a spawn keeps in place: the spill path.
#[test]
fn many_buffers_arrive() {
    let _serial = serial();
    let bufs: Vec<Vec<u8>> = (0..7).map(|i| pattern(300 * 1024 + i, i as u64)).collect();
    let actions: Vec<String> = (0..7).map(|i| format!("cat-fd={}", 3 + i)).collect();
    let mut cmd = helper(&actions.join(",")).stdout(Stdio::piped());
    for (i, b) in bufs.iter().enumerate() {
        cmd = cmd.send_buffer(3 + i as i32, b.clone());
    }
    let mut child = cmd.spawn().unwrap();
    let reader = read_in_thread(child.take_stdout().unwrap());
    assert!(child.wait().unwrap().success());
    assert_same("stdout", &reader.join().unwrap(), &bufs.concat());
}

/// A paused child gets what fits before `spawn_paused` returns, the rest
/// after the resume.
#[test]
fn a_paused_child_gets_its_buffer() {
    let _serial = serial();
    let big = pattern(2 * MIB + 1, 11);
    let paused = helper("cat-fd=3")
        .send_buffer(3, big.clone())
        .stdout(Stdio::piped())
        .spawn_paused()
        .unwrap();
    let mut child = paused.resume().unwrap();
    let reader = read_in_thread(child.take_stdout().unwrap());
    assert!(child.wait().unwrap().success());
    assert_same("stdout", &reader.join().unwrap(), &big);
}

/// Waits until `path` holds `len` bytes (a daemon writes it on its own
/// time).
fn wait_for_file(path: &std::path::Path, len: usize) -> Vec<u8> {
    let start = Instant::now();
    loop {
        if let Ok(got) = std::fs::read(path) {
            if got.len() >= len || start.elapsed() > Duration::from_secs(30) {
                return got;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no {path:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A daemon gets the read end; `run` returns once the whole buffer (larger
/// than the pipe) is written, and no write end reaches the daemon.
#[test]
fn a_daemon_copies_its_buffer_to_a_file() {
    let _serial = serial();
    sigpipe_default();
    let dir = Scratch::new("send-daemon");
    let out = dir.join("copy");
    let fds = dir.join("fds");
    let big = pattern(3 * MIB + 5, 13);
    let script = "ls -l /proc/self/fd/ > \"$1\"; cat <&3 > \"$0.tmp\"; mv \"$0.tmp\" \"$0\"";
    let p = Command::new("sh")
        .args(["-c", script])
        .arg(&out)
        .arg(&fds)
        .daemonize()
        .send_buffer(3, big.clone())
        .build()
        .unwrap();
    let before = open_fds();
    p.run().unwrap();
    assert_eq!(open_fds(), before);
    assert_same("the daemon's copy", &wait_for_file(&out, big.len()), &big);
    // One pipe among its fds: the read end at 3 (no write end).
    let listed = std::fs::read_to_string(&fds).unwrap();
    let pipes: Vec<&str> = listed.lines().filter(|l| l.contains("pipe:")).collect();
    assert_eq!(pipes.len(), 1, "{listed}");
    assert!(pipes[0].contains(" 3 -> "), "{listed}");
}

/// A daemon that never reads: `run` returns once it has exited (its end of
/// the pipe closed with it), without an error or a SIGPIPE.
#[test]
fn a_daemon_that_never_reads_ends_the_writing() {
    let _serial = serial();
    sigpipe_default();
    let start = Instant::now();
    // Given before `daemonize`: the buffer follows the command into Daemon
    // mode.
    Command::new("sleep")
        .arg("0.2")
        .send_buffer(3, vec![5u8; 4 * MIB])
        .daemonize()
        .run()
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}

/// A paused daemon: what fits before `spawn_paused` returns, the rest by
/// `resume`; dropped unresumed, its write end is closed.
#[test]
fn a_paused_daemon_gets_its_buffer() {
    let _serial = serial();
    let dir = Scratch::new("send-paused-daemon");
    let out = dir.join("copy");
    let big = pattern(2 * MIB + 9, 17);
    let p = Command::new("sh")
        .args(["-c", "cat <&3 > \"$0.tmp\"; mv \"$0.tmp\" \"$0\""])
        .arg(&out)
        .daemonize()
        .send_buffer(3, big.clone())
        .build()
        .unwrap();
    let before = open_fds();
    let paused = p.spawn_paused().unwrap();
    paused.resume().unwrap();
    assert_same("the daemon's copy", &wait_for_file(&out, big.len()), &big);
    let paused = p.spawn_paused().unwrap();
    drop(paused);
    assert_eq!(open_fds(), before);
}

/// Buffered mode keeps them, and a pipeline stage refuses one (its slots
/// are its stdio pipes).
#[test]
fn buffered_mode_and_pipelines() {
    let _serial = serial();
    let out = helper("cat-fd=3")
        .send_buffer(3, "kept")
        .capture_stdout()
        .run()
        .unwrap();
    assert_eq!(out.stdout, b"kept");
    let err = (Command::new("true") | Command::new("cat").send_buffer(3, "x"))
        .build()
        .unwrap_err();
    assert_eq!(err.build_kind(), Some(BuildErrorKind::Conflict), "{err}");
    assert!(
        err.to_string().contains("child fd 3 (send_buffer)"),
        "{err}"
    );
}

// ---------------------------------------------------------------------
// Erasure.

/// 32 bytes no program here writes by chance: the scanner's needle, and
/// the stuff of every secret below. A constant, so the needle itself is
/// never on the heap.
const MARKER: [u8; 32] = marker();

const fn marker() -> [u8; 32] {
    let mut m = [0u8; 32];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut i = 0;
    while i < 32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        m[i] = (x >> 24) as u8;
        i += 1;
    }
    m
}

/// Whether the scanner is on, and how many freed blocks held the marker.
static ARMED: AtomicBool = AtomicBool::new(false);
static FOUND: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, handing out zeroed blocks (so every byte the scan
/// reads is initialised) and, while armed, counting the blocks freed with
/// the marker still in them. `realloc` is a new block, a copy and a free:
/// a moved block's old copy is scanned too.
struct Scanning;

fn holds_marker(block: &[u8]) -> bool {
    let mut i = 0;
    while i + MARKER.len() <= block.len() {
        if block[i] == MARKER[0] && block[i..i + MARKER.len()] == MARKER {
            return true;
        }
        i += 1;
    }
    false
}

// SAFETY: every block comes from the system allocator with the layout
// asked for; the scan reads a block only before it is freed, within its
// size, and every byte of it was written (zeroed at allocation).
unsafe impl GlobalAlloc for Scanning {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARMED.load(Ordering::Relaxed) {
            // SAFETY: the block is live until the call below, `size`
            // bytes long, and initialised (see above).
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            if holds_marker(block) {
                FOUND.fetch_add(1, Ordering::Relaxed);
            }
        }
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        // SAFETY: `new` is non-zero and does not overflow with the
        // alignment (the caller's guarantees for `realloc`).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new, layout.align()) };
        // SAFETY: a non-zero size, as above.
        let fresh = unsafe { self.alloc(new_layout) };
        if !fresh.is_null() {
            // SAFETY: both blocks are live and at least this long; they
            // are distinct allocations.
            unsafe { std::ptr::copy_nonoverlapping(ptr, fresh, layout.size().min(new)) };
            // SAFETY: the old block, with its layout, freed once.
            unsafe { self.dealloc(ptr, layout) };
        }
        fresh
    }
}

#[global_allocator]
static GLOBAL: Scanning = Scanning;

/// A secret of `len` bytes, the marker over and over: built in a block of
/// its exact size (never grown, so no copy is freed on the way) and handed
/// over by value, so the crate's copy is the only one.
fn secret(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    while v.len() + MARKER.len() <= len {
        v.extend_from_slice(&MARKER);
    }
    v.resize(len, 0);
    assert_eq!(v.capacity(), len);
    v
}

/// How many blocks freed during `f` still held the marker.
fn found_during(f: impl FnOnce()) -> usize {
    let before = FOUND.load(Ordering::Relaxed);
    ARMED.store(true, Ordering::Relaxed);
    f();
    ARMED.store(false, Ordering::Relaxed);
    FOUND.load(Ordering::Relaxed) - before
}

/// The children below check the length they got (`wc -c`) and never echo
/// the bytes back, which would put copies of the marker in this process.
fn counts(fd: i32, len: usize) -> Command {
    Command::new("sh").args([
        "-c".to_string(),
        format!("test \"$(wc -c <&{fd})\" -eq {len}"),
    ])
}

#[test]
fn the_buffers_memory_is_zero_after_the_run() {
    let _serial = serial();
    sigpipe_default();
    // The control: a plain Vec with the marker, dropped, is seen.
    let control = found_during(|| drop(std::hint::black_box(secret(64))));
    assert!(control >= 1, "the scanner does not see a dropped marker");

    let big = 3 * MIB + 1; // larger than a pipe: the waits write the rest
    let found = found_during(|| {
        // Buffered: input and send buffer, run once (a Prepared of its own).
        let out = Command::new("sh")
            .args(["-c", "wc -c; wc -c <&3"])
            .input(secret(1000))
            .send_buffer(3, secret(big))
            .capture_stdout()
            .run()
            .unwrap();
        let out = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(out, format!("1000 {big}"));
        // Direct: spawn and wait, one-shot.
        let child = counts(3, big).send_buffer(3, secret(big)).spawn().unwrap();
        assert!(child.wait().unwrap().success());
        assert!(counts(3, 77)
            .send_buffer(3, secret(77))
            .run()
            .unwrap()
            .success());
        // A daemon.
        let dir = Scratch::new("send-erase");
        let done = dir.join("done");
        Command::new("sh")
            .args(["-c", "wc -c <&3 > \"$0\""])
            .arg(&done)
            .daemonize()
            .send_buffer(3, secret(big))
            .run()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&wait_for_file(&done, 1)).trim(),
            big.to_string()
        );
        // Paused, then resumed (Direct).
        let paused = counts(3, big)
            .send_buffer(3, secret(big))
            .spawn_paused()
            .unwrap();
        assert!(paused.resume().unwrap().wait().unwrap().success());
        // Dropped unbuilt, or failing to build.
        drop(
            Command::new("true")
                .send_buffer(3, secret(500))
                .capture_stdout()
                .input(secret(500)),
        );
        assert!(Command::new("true")
            .send_buffer(1, secret(500))
            .build()
            .is_err());
        // A Prepared run several times, then dropped; a Running dropped
        // with data pending.
        let p = counts(3, big).send_buffer(3, secret(big)).build().unwrap();
        for _ in 0..3 {
            assert!(p.spawn().unwrap().wait().unwrap().success());
        }
        assert!(p.status().unwrap().success());
        p.run().unwrap();
        drop(
            Command::new("sleep")
                .arg("5")
                .send_buffer(3, secret(big))
                .spawn()
                .unwrap(),
        );
        drop(p);
        // A pipeline's input.
        let out = (Command::new("cat") | Command::new("wc").arg("-c"))
            .input(secret(4096))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "4096");
    });
    assert_eq!(found, 0, "{found} freed blocks still held a secret");
}
