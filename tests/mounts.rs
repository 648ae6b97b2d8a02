//! Mounts, a new root and what they contain: real children in a sandbox,
//! probed from inside by the test helper (its `mount` lines, `stat-root`,
//! `procs` and the `try-*` probes) and checked from outside (this process's
//! mountinfo, fds and zombies).
//!
//! The sandbox of most tests: new user, mount and pid namespaces,
//! `map_root`, `root_tmpfs`, read-only binds of `/usr`, `/bin`, `/lib` and
//! `/lib64` (those that exist), the directory of the helper's any-user copy
//! read-only at `/helper`, and a proc at `/proc`. Where this user may not
//! create those namespaces, or there is no `/proc` (which `map_root` and the
//! reports need), the tests say so on stderr and skip. A few parts need
//! root (a mount namespace of a test thread's own, a chroot, uid 65534) and
//! are skipped, with a message, otherwise.
//!
//! Each test takes `SERIAL`: they compare this process's fds, zombies and
//! mounts before and after, which a test spawning at the same time would
//! disturb.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use common::{helper_path_for_any_user, is_root, report_from, zombie_children, Report, Scratch};
use safespawn::{
    BuildErrorKind, Command, Direct, Errno, Error, Mount, Namespaces, Prepared, Stage, Stdio,
};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The sandbox's namespaces.
fn sandbox_ns() -> Namespaces {
    Namespaces::USER | Namespaces::MOUNT | Namespaces::PID
}

/// Whether this test can run here: `/proc` (for `map_root` and the
/// reports) and new user, mount and pid namespaces with `map_root`; says
/// why not.
fn can_or_skip(test: &str) -> bool {
    if !Path::new("/proc/self/ns").exists() {
        eprintln!("skipping {test}: no /proc here (map_root and the reports need it)");
        return false;
    }
    static OK: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let ok = OK.get_or_init(|| {
        match Command::new("true")
            .unshare(Namespaces::USER | Namespaces::MOUNT | Namespaces::PID)
            .map_root()
            .status()
        {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("true exited with {s:?}")),
            Err(e) => Err(e.to_string()),
        }
    });
    if let Err(why) = ok {
        eprintln!("skipping {test}: new user, mount and pid namespaces refused here: {why}");
        return false;
    }
    true
}

/// The directories the sandbox binds read-only from the caller's view.
const SYSTEM_DIRS: [&str; 4] = ["/usr", "/bin", "/lib", "/lib64"];

/// The helper's path in the sandbox's view (its directory is bound at
/// `/helper`).
fn helper_in_view() -> PathBuf {
    Path::new("/helper").join(helper_path_for_any_user().file_name().unwrap())
}

/// The directory of the helper's any-user copy in the caller's view.
fn helper_dir() -> &'static Path {
    helper_path_for_any_user().parent().unwrap()
}

/// The sandbox's mounts, up to (not including) `/proc`.
fn with_system(cmd: Command<Direct>) -> Command<Direct> {
    let mut cmd = cmd;
    for d in SYSTEM_DIRS {
        cmd = cmd.mount(Mount::bind_ro(d, d).optional());
    }
    cmd.mount(Mount::bind_ro(helper_dir(), "/helper"))
}

/// The sandbox running the helper with `actions`, before its proc: tests
/// add mounts, then [`proc`].
fn bare_sandbox(actions: &str) -> Command<Direct> {
    with_system(
        Command::new(helper_in_view())
            .arg(format!("::{actions}"))
            .unshare(sandbox_ns())
            .map_root()
            .root_tmpfs(),
    )
}

/// `cmd` with a proc at `/proc`.
fn proc(cmd: Command<Direct>) -> Command<Direct> {
    cmd.mount(Mount::proc("/proc"))
}

/// The sandbox running the helper with `actions`.
fn sandbox(actions: &str) -> Command<Direct> {
    proc(bare_sandbox(actions))
}

/// The report of `cmd` (stdout piped, stderr inherited).
fn run(cmd: Command<Direct>) -> Report {
    let prepared = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .build()
        .unwrap_or_else(|e| panic!("build: {e}"));
    report_from(&prepared)
}

/// The names of `/` in the sandbox: its mount points.
fn sandbox_root_entries(extra: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = SYSTEM_DIRS
        .iter()
        .filter(|d| Path::new(d).exists())
        .map(|d| d.trim_start_matches('/').to_owned())
        .chain(["helper", "proc"].map(str::to_owned))
        .chain(extra.iter().map(|s| s.to_string()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The entries of a report field holding an `ls` result.
fn ls_field(r: &Report, key: &str) -> Vec<String> {
    let v = r.field(key);
    let rest = v.strip_prefix("ok").unwrap_or_else(|| panic!("{key}={v}"));
    rest.split_whitespace()
        .map(|e| String::from_utf8_lossy(&common::unesc(e)).into_owned())
        .collect()
}

/// This thread's mounts (`/proc/thread-self/mountinfo`: a thread may have
/// a mount namespace of its own), as (mount point, fstype, source) lines,
/// sorted.
fn our_mounts() -> Vec<String> {
    let info = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
    let mut lines: Vec<String> = info
        .lines()
        .map(|l| {
            let (left, right) = l.split_once(" - ").unwrap();
            let point = left.split(' ').nth(4).unwrap();
            let mut r = right.split(' ');
            format!(
                "{point} {} {}",
                r.next().unwrap_or(""),
                r.next().unwrap_or("")
            )
        })
        .collect();
    lines.sort();
    lines
}

/// This process's open fds.
fn our_fds() -> BTreeSet<i32> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// What a test must find unchanged after a spawn: fds, mounts, no zombie.
struct Leftovers {
    fds: BTreeSet<i32>,
    mounts: Vec<String>,
}

impl Leftovers {
    fn now() -> Leftovers {
        Leftovers {
            fds: our_fds(),
            mounts: our_mounts(),
        }
    }

    #[track_caller]
    fn check(&self, what: &str) {
        assert_eq!(our_fds(), self.fds, "{what}: fds left open");
        assert_eq!(our_mounts(), self.mounts, "{what}: mounts changed");
        let z = zombie_children();
        assert!(z.is_empty(), "{what}: zombies {z:?}");
    }
}

/// The stage, errno and path of the `Error::Spawn` `prepared` fails with,
/// on the clone path and on the fork path (paused; the failure comes
/// before the pause); both must agree.
#[track_caller]
fn spawn_failure(prepared: &Prepared<Direct>) -> (Stage, Errno, Option<PathBuf>) {
    let one = |r: Result<safespawn::Running, Error>| match r {
        Err(Error::Spawn {
            stage, errno, path, ..
        }) => (stage, errno, path),
        Err(other) => panic!("expected Error::Spawn, got {other}"),
        Ok(child) => panic!("expected Error::Spawn, but it ran: {:?}", child.wait()),
    };
    let clone = one(prepared.spawn());
    let fork = one(prepared.spawn_paused().and_then(|p| p.resume()));
    assert_eq!(clone, fork, "clone path and fork path");
    clone
}

/// The build error of `cmd`: kind and message.
#[track_caller]
fn build_error(cmd: Command<Direct>) -> (BuildErrorKind, String) {
    match cmd.build() {
        Err(e @ Error::Build { .. }) => (e.build_kind().unwrap(), e.to_string()),
        Err(other) => panic!("expected a build error, got {other}"),
        Ok(p) => panic!("expected a build error, got {p:?}"),
    }
}

/// Runs `f` in a new thread with a mount namespace of its own (root only),
/// `/` recursively private in it (nothing it mounts reaches the rest of
/// the process or the host), then made recursively shared when `shared`
/// (so a child's mount namespace starts as its peer).
fn in_private_mount_namespace<R: Send>(shared: bool, f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: NEWNS (with the FS it implies) is this thread's own
            // business; no other thread looks at its root or mounts.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }.unwrap();
            use rustix::mount::MountPropagationFlags as P;
            rustix::mount::mount_change(c"/", P::PRIVATE | P::REC).unwrap();
            if shared {
                rustix::mount::mount_change(c"/", P::SHARED | P::REC).unwrap();
            }
            f()
        })
        .join()
        .unwrap()
    })
}

/// A tmpfs at `dir` (in the calling thread's mount namespace).
fn mount_tmpfs(dir: &Path) {
    rustix::mount::mount(
        c"tmpfs",
        dir,
        c"tmpfs",
        rustix::mount::MountFlags::empty(),
        c"mode=0777",
    )
    .unwrap();
}

#[test]
fn a_new_root_comes_with_mount_user_and_pid_namespaces_of_its_own() {
    let _g = serial();
    if !can_or_skip("a_new_root_comes_with_...") {
        return;
    }
    let ours = |kind: &str| {
        std::fs::read_link(format!("/proc/self/ns/{kind}"))
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let first = run(sandbox("report,stat-root"));
    // The second sandbox's namespaces, read while it is still alive and a
    // third one runs: namespaces that exist at the same time cannot share
    // an inode number, while a freed one's number is handed out again.
    let mut second = sandbox("ns,drain")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(second.take_stdout().unwrap());
    let mut ns_text = String::new();
    for _ in 0..8 {
        lines.read_line(&mut ns_text).unwrap();
    }
    let third = run(sandbox("report"));
    let second_ns = Report::parse(&ns_text);
    for kind in ["mnt", "user", "pid"] {
        let key = format!("ns_{kind}");
        assert_ne!(second_ns.field(&key), third.field(&key), "{kind}: shared");
    }
    drop(second.take_stdin());
    assert!(second.wait().unwrap().success());
    drop(lines);
    for kind in ["mnt", "user", "pid"] {
        let key = format!("ns_{kind}");
        assert!(first.field(&key).starts_with(kind), "{key}");
        assert_ne!(first.field(&key), ours(kind), "{kind}: not new");
    }
    // Only those: the other kinds are the caller's.
    for kind in ["net", "uts", "ipc", "cgroup"] {
        assert_eq!(first.field(&format!("ns_{kind}")), ours(kind), "{kind}");
    }
    // The root is another filesystem (the base tmpfs), and the child runs
    // in it, whatever this process's working directory.
    use std::os::unix::fs::MetadataExt;
    let host = std::fs::metadata("/").unwrap();
    assert_ne!(
        first.field("root_id"),
        format!("{}:{}", host.dev(), host.ino())
    );
    let slash = first.mount_at("/").expect("a mount at /");
    assert_eq!(slash.fstype, "tmpfs");
    assert_ne!(std::env::current_dir().unwrap(), Path::new("/"));
    assert_eq!(first.field("cwd"), "/");
    assert_eq!(first.field("uid"), "0 0 0 0");
}

#[test]
fn the_helper_is_pid_1_and_proc_shows_only_the_sandboxs_processes() {
    let _g = serial();
    if !can_or_skip("the_helper_is_pid_1_...") {
        return;
    }
    let r = run(sandbox("report,procs"));
    assert_eq!(r.field("pid"), "1");
    assert_eq!(r.field("getppid"), "0");
    assert_eq!(r.field("procs"), "1");
    // Two processes: a shell (pid 1) and the helper it starts.
    let shell = ["/bin/sh", "/usr/bin/sh"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(shell) = shell else {
        eprintln!("no /bin/sh here: the two-process part is skipped");
        return;
    };
    let r = run(proc(with_system(
        Command::new(shell)
            .arg("-c")
            .arg(format!("{} ::procs; true", helper_in_view().display()))
            .unshare(sandbox_ns())
            .map_root()
            .root_tmpfs(),
    )));
    let pids: Vec<&str> = r.field("procs").split(' ').collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert_eq!(pids[0], "1");
    // This process is not among them (its pid here is far above 2 anyway,
    // but the sandbox's /proc must not know it).
    assert!(!pids.contains(&std::process::id().to_string().as_str()));
}

#[test]
fn a_file_outside_the_binds_is_not_visible() {
    let _g = serial();
    if !can_or_skip("a_file_outside_the_binds_is_not_visible") {
        return;
    }
    let dir = Scratch::new("hidden");
    let secret = dir.join("secret");
    std::fs::write(&secret, b"secret").unwrap();
    let secret = secret.to_str().unwrap().to_owned();
    let dir_s = dir.to_str().unwrap().to_owned();
    let r = run(sandbox(&format!(
        "probe-read={secret},ls={dir_s},probe-read=/etc/passwd,ls=/"
    )));
    assert_eq!(r.probe("probe-read", &secret), "ENOENT");
    assert_eq!(r.probe("ls", &dir_s), "ENOENT");
    assert_eq!(r.probe("probe-read", "/etc/passwd"), "ENOENT");
    assert_eq!(r.ls("/"), sandbox_root_entries(&[]));
    // The same file bound in is there (the probe sees what it should).
    let r = run(sandbox(&format!("probe-read={secret}")).mount(Mount::bind_ro(&*dir, &*dir)));
    assert_eq!(r.probe("probe-read", &secret), "ok 6");
}

#[test]
fn a_bind_ro_stays_read_only_even_for_the_childs_root() {
    let _g = serial();
    if !can_or_skip("a_bind_ro_stays_read_only_...") {
        return;
    }
    let dir = Scratch::new("ro");
    let before = Leftovers::now();
    let r = run(sandbox(
        "probe-write=/data/f,probe-mkdir=/data/d,probe-remount-rw=/data,probe-write=/data/f,\
         probe-remount-rw=/usr,probe-write=/usr/safespawn-must-not-exist,mounts",
    )
    .mount(Mount::bind_ro(&*dir, "/data"))
    .mount(Mount::bind(&*dir, "/rw")));
    assert_eq!(r.probe("probe-mkdir", "/data/d"), "EROFS");
    // The remount the child's root tries is refused: the view is locked.
    assert_eq!(r.probe("probe-remount-rw", "/data"), "EPERM");
    assert_eq!(r.probe("probe-remount-rw", "/usr"), "EPERM");
    let writes: Vec<&str> = r
        .probes
        .iter()
        .filter(|(a, p, _)| a == "probe-write" && p == b"/data/f")
        .map(|(_, _, res)| res.as_str())
        .collect();
    assert_eq!(writes, ["EROFS", "EROFS"], "before and after the remount");
    assert_eq!(
        r.probe("probe-write", "/usr/safespawn-must-not-exist"),
        "EROFS"
    );
    assert!(!Path::new("/usr/safespawn-must-not-exist").exists());
    let data = r.mount_at("/data").expect("a mount at /data");
    assert!(data.has("ro"), "{data:?}");
    assert!(r.mount_at("/rw").unwrap().has("rw"));
    assert!(std::fs::read_dir(&*dir).unwrap().next().is_none());
    // The same directory bound writable is writable: the EROFS is the
    // bind's, not the directory's.
    let r = run(sandbox("probe-write=/rw/f").mount(Mount::bind(&*dir, "/rw")));
    assert_eq!(r.probe("probe-write", "/rw/f"), "ok");
    assert!(dir.join("f").exists());
    before.check("after the sandboxes");
}

#[test]
fn a_submount_below_a_bind_ro_source_is_read_only_too() {
    let _g = serial();
    if !can_or_skip("a_submount_below_a_bind_ro_source_...") {
        return;
    }
    if is_root() {
        // A tmpfs below the source, in a mount namespace of a test thread.
        let dir = Scratch::new("submount");
        let sub = dir.join("sub");
        std::fs::create_dir(&sub).unwrap();
        let r = in_private_mount_namespace(false, || {
            mount_tmpfs(&sub);
            std::fs::write(sub.join("inner"), b"inner").unwrap();
            sandbox(
                "probe-write=/data/sub/f,probe-remount-rw=/data/sub,probe-write=/data/sub/f,\
                 probe-read=/data/sub/inner,probe-write=/data/top,mounts",
            )
            .mount(Mount::bind_ro(&*dir, "/data"))
            .stdout(Stdio::piped())
            .build()
            .unwrap()
            .spawn()
            .map(|child| Report::parse(&common::output_of(child)))
        });
        // The tmpfs lived in the thread's namespace only.
        assert!(!sub.join("inner").exists());
        let Some(r) = carried_or_refused(r, "/data") else {
            return;
        };
        assert_eq!(r.probe("probe-write", "/data/top"), "EROFS");
        assert_eq!(r.probe("probe-write", "/data/sub/f"), "EROFS");
        // mount_setattr: the bind is recursive and every mount of it
        // read-only, locked.
        let m = r.mount_at("/data/sub").expect("the submount, carried over");
        assert_eq!(m.fstype, "tmpfs");
        assert!(m.has("ro"), "{m:?}");
        assert_eq!(r.probe("probe-read", "/data/sub/inner"), "ok 5");
        assert_eq!(r.probe("probe-remount-rw", "/data/sub"), "EPERM");
        return;
    }
    // Not root: /dev's submounts (/dev/shm, writable by anyone) will do.
    let shm = Path::new("/dev/shm");
    let is_mount = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some("/dev/shm"));
    if !is_mount || !shm.is_dir() {
        eprintln!("skipping the submount test: not root, and /dev/shm is no mount point here");
        return;
    }
    let name = format!("safespawn-submount-{}", std::process::id());
    let inside = format!("/hostdev/shm/{name}");
    let r = sandbox(&format!(
        "probe-write={inside},probe-remount-rw=/hostdev/shm,probe-write={inside},mounts"
    ))
    .mount(Mount::bind_ro("/dev", "/hostdev"))
    .stdout(Stdio::piped())
    .build()
    .unwrap()
    .spawn()
    .map(|child| Report::parse(&common::output_of(child)));
    assert!(!shm.join(&name).exists());
    let Some(r) = carried_or_refused(r, "/hostdev") else {
        return;
    };
    assert_eq!(r.probe("probe-write", &inside), "EROFS");
    let m = r.mount_at("/hostdev/shm").expect("/dev/shm, carried over");
    assert!(m.has("ro"), "{m:?}");
    assert_eq!(r.probe("probe-remount-rw", "/hostdev/shm"), "EPERM");
}

/// Whether this system offers `mount_setattr(2)` (5.12; a seccomp profile
/// may refuse it), asked as the library does: a size the kernel refuses
/// with `EINVAL` before it looks at anything else.
fn have_mount_setattr() -> bool {
    // SAFETY: a null path and attr with size 0: refused before either is read.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            std::ptr::null::<libc::c_char>(),
            0 as libc::c_uint,
            std::ptr::null::<u8>(),
            0usize,
        )
    };
    rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL)
}

/// The report of a sandbox whose `bind_ro` at `dst` has a source with a
/// mount below it: the bind is recursive with `mount_setattr` and without
/// it (then each submount is remounted read-only by itself), so the spawn
/// works either way.
fn carried_or_refused(spawned: Result<Report, Error>, dst: &str) -> Option<Report> {
    match spawned {
        Ok(r) => Some(r),
        Err(e) => panic!(
            "a bind_ro at {dst} of a source with submounts (mount_setattr here: {}): {e}",
            have_mount_setattr()
        ),
    }
}

/// Starts `cmd` (whose helper actions end in `drain`), reads its first
/// output line, runs `during` while the child waits for its stdin to end,
/// then lets it finish and returns that line.
fn while_it_waits(cmd: Command<Direct>, during: impl FnOnce()) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdin = child.take_stdin().unwrap();
    let mut out = BufReader::new(child.take_stdout().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    during();
    stdin.flush().unwrap();
    drop(stdin);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "{line}{rest}");
    line
}

#[test]
fn mounts_made_inside_never_reach_the_parent() {
    let _g = serial();
    if !can_or_skip("mounts_made_inside_never_reach_the_parent") {
        return;
    }
    // The sandbox: its own mounts, and one its program makes.
    let before = our_mounts();
    let line = while_it_waits(sandbox("probe-mount-tmpfs=/usr,drain"), || {
        assert_eq!(our_mounts(), before, "while the sandbox runs");
    });
    assert_eq!(line.trim_end(), "probe-mount-tmpfs=/usr ok");
    assert_eq!(our_mounts(), before, "after the sandbox");

    // Where the caller's mounts propagate (a shared /, in a test thread's
    // own namespace) and the child has no user namespace to cut that for
    // it, the recursive slave is what keeps the child's mounts inside.
    if !is_root() {
        eprintln!("the shared-propagation part needs root (a mount namespace for a test thread)");
        return;
    }
    let dir = Scratch::new("propagation");
    let dir_s = dir.to_str().unwrap().to_owned();
    in_private_mount_namespace(true, || {
        let before = our_mounts();
        // No new root: the child mounts on the caller's own directory.
        let line = while_it_waits(
            common::helper(&format!("probe-mount-tmpfs={dir_s},drain")).unshare(Namespaces::MOUNT),
            || assert_eq!(our_mounts(), before, "while the child runs"),
        );
        assert_eq!(line.trim_end(), format!("probe-mount-tmpfs={dir_s} ok"));
        assert_eq!(our_mounts(), before, "after the child");
        // A new root: the base tmpfs is staged on /tmp of the caller's
        // view, then the mounts.
        let root_child = with_system(
            Command::new(helper_in_view())
                .arg("::probe-mount-tmpfs=/usr,drain")
                .unshare(Namespaces::MOUNT | Namespaces::PID)
                .root_tmpfs(),
        )
        .mount(Mount::tmpfs("/tmp"))
        .mount(Mount::proc("/proc"));
        let line = while_it_waits(root_child, || {
            assert_eq!(our_mounts(), before, "while the root child runs")
        });
        assert_eq!(line.trim_end(), "probe-mount-tmpfs=/usr ok");
        assert_eq!(our_mounts(), before, "after the root child");
    });
}

#[test]
fn the_old_root_is_not_reachable() {
    let _g = serial();
    if !can_or_skip("the_old_root_is_not_reachable") {
        return;
    }
    let r = run(sandbox("stat-root,probe-read=/.oldroot,ls=/proc/1/root/"));
    let want = sandbox_root_entries(&[]);
    assert_eq!(ls_field(&r, "root_ls"), want);
    // `..` of / is / itself, however often it is climbed.
    assert_eq!(r.field("root_dotdot_id"), r.field("root_id"));
    assert_eq!(ls_field(&r, "root_dotdot_ls"), want);
    assert_eq!(ls_field(&r, "root_climb_ls"), want);
    // /proc/self/root is the new root, and so is pid 1's.
    assert_eq!(r.field("root_link"), "ok /");
    assert_eq!(ls_field(&r, "root_proc_ls"), want);
    assert_eq!(r.ls("/proc/1/root/"), want);
    assert_eq!(r.probe("probe-read", "/.oldroot"), "ENOENT");
}

#[test]
fn root_dir_becomes_slash_with_the_mounts_inside_it() {
    let _g = serial();
    if !can_or_skip("root_dir_becomes_slash_...") {
        return;
    }
    let dir = Scratch::new("rootdir");
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::create_dir_all(dir.join("inside-only")).unwrap();
    std::fs::write(dir.join("etc/marker"), b"from the root dir").unwrap();
    let before = Leftovers::now();
    let in_dir = |actions: &str| {
        proc(with_system(
            Command::new(helper_in_view())
                .arg(format!("::{actions}"))
                .unshare(sandbox_ns())
                .map_root()
                .root(&*dir),
        ))
    };
    let r = run(in_dir(
        "report,stat-root,probe-read=/etc/marker,probe-write=/inside-only/f",
    ));
    assert_eq!(r.field("cwd"), "/");
    assert_eq!(r.probe("probe-read", "/etc/marker"), "ok 17");
    // The directory is / (writable, as the directory is), with the mounts
    // in it.
    assert_eq!(r.probe("probe-write", "/inside-only/f"), "ok");
    assert!(dir.join("inside-only/f").exists());
    let want = sandbox_root_entries(&["etc", "inside-only"]);
    assert_eq!(ls_field(&r, "root_ls"), want);
    assert_eq!(r.field("root_dotdot_id"), r.field("root_id"));
    assert_eq!(ls_field(&r, "root_dotdot_ls"), want);
    assert_eq!(r.field("root_link"), "ok /");
    assert!(r.mount_at("/usr").unwrap().has("ro"));
    assert_eq!(r.mount_at("/proc").unwrap().fstype, "proc");
    // The directory's own filesystem is /: the base tmpfs is gone.
    let slash = r.mount_at("/").unwrap();
    assert_ne!(slash.fstype, "tmpfs", "{slash:?}");
    assert!(!r.mounts.iter().any(|m| m.point.starts_with(b"/.")));
    // The working directory is a path of the new view.
    let r = run(in_dir("report").current_dir("/inside-only"));
    assert_eq!(r.field("cwd"), "/inside-only");
    // A directory the caller has (/var, say) but the view lacks.
    let host_only = ["/var", "/boot", "/home", "/srv"]
        .into_iter()
        .find(|d| Path::new(d).is_dir())
        .expect("a directory of the host that the root dir lacks");
    let (stage, errno, path) =
        spawn_failure(&in_dir("report").current_dir(host_only).build().unwrap());
    assert_eq!((stage, errno), (Stage::Chdir, Errno::NOENT));
    assert_eq!(path.as_deref(), Some(Path::new(host_only)));
    // The mount points were made in the directory (documented), and
    // nothing is mounted on them out here.
    assert!(dir.join("usr").is_dir() && dir.join("helper").is_dir());
    before.check("after root(dir)");
}

#[test]
fn mount_dev_has_working_devices_a_fresh_devpts_and_a_tmpfs_shm() {
    let _g = serial();
    if !can_or_skip("mount_dev_...") {
        return;
    }
    let r = run(sandbox(
        "probe-write=/dev/null,probe-read=/dev/null,probe-read=/dev/zero,probe-write=/dev/full,\
         probe-read=/dev/urandom,probe-read=/dev/random,ls=/dev,ls=/dev/pts,ls=/dev/shm,\
         readlink=/dev/ptmx,readlink=/dev/fd,readlink=/dev/stdout,stat=/dev/shm,stat=/dev/null,\
         probe-write=/dev/shm/f,mounts",
    )
    .mount(Mount::dev("/dev")));
    assert_eq!(r.probe("probe-write", "/dev/null"), "ok");
    assert_eq!(r.probe("probe-read", "/dev/null"), "ok 0");
    assert_eq!(r.probe("probe-read", "/dev/zero"), "ok 65536 zero");
    assert_eq!(r.probe("probe-write", "/dev/full"), "ENOSPC");
    assert_eq!(r.probe("probe-read", "/dev/urandom"), "ok 65536");
    assert!(r.probe("probe-read", "/dev/random").starts_with("ok "));
    assert_eq!(
        r.ls("/dev"),
        [
            "core", "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin",
            "stdout", "tty", "urandom", "zero"
        ]
    );
    assert_eq!(r.probe("readlink", "/dev/ptmx"), "ok pts/ptmx");
    assert_eq!(r.probe("readlink", "/dev/fd"), "ok /proc/self/fd");
    assert_eq!(r.probe("readlink", "/dev/stdout"), "ok /proc/self/fd/1");
    let dev = r.mount_at("/dev").unwrap();
    assert_eq!(dev.fstype, "tmpfs");
    assert!(dev.has("nosuid") && dev.has("noexec"), "{dev:?}");
    // A devpts of its own: only its ptmx, and the options it was given
    // (the caller's devpts, if it is one, is another instance).
    let pts = r.mount_at("/dev/pts").unwrap();
    assert_eq!(pts.fstype, "devpts");
    assert!(
        pts.has_super("ptmxmode=666") && pts.has_super("mode=620"),
        "{pts:?}"
    );
    assert_eq!(r.ls("/dev/pts"), ["ptmx"]);
    let shm = r.mount_at("/dev/shm").unwrap();
    assert_eq!(shm.fstype, "tmpfs");
    assert!(shm.has("nosuid") && shm.has("nodev"), "{shm:?}");
    assert_eq!(r.probe("stat", "/dev/shm"), "ok dir 1777 0 0");
    // The caller's device (its owner shows as 65534 where the caller's
    // root is not mapped).
    assert!(
        r.probe("stat", "/dev/null").starts_with("ok char 666 "),
        "{}",
        r.probe("stat", "/dev/null")
    );
    assert_eq!(r.ls("/dev/shm"), Vec::<String>::new());
    assert_eq!(r.probe("probe-write", "/dev/shm/f"), "ok");
    // The devices are the caller's, bound: each its own mount.
    for d in ["null", "zero", "full", "random", "urandom", "tty"] {
        assert!(
            r.mount_at(&format!("/dev/{d}")).is_some(),
            "/dev/{d} is not bound"
        );
    }
}

#[test]
fn tmpfs_size_and_mode_are_as_asked() {
    let _g = serial();
    if !can_or_skip("tmpfs_size_and_mode_are_as_asked") {
        return;
    }
    let r = run(sandbox(
        "mounts,stat=/sized,stat=/private,stat=/plain,probe-write=/sized/f,probe-mkdir=/plain/d",
    )
    .mount(Mount::tmpfs("/sized").size(1 << 20).mode(0o1777))
    .mount(Mount::tmpfs("/private").mode(0o700))
    .mount(Mount::tmpfs("/plain")));
    let sized = r.mount_at("/sized").unwrap();
    assert_eq!(sized.fstype, "tmpfs");
    assert!(sized.has_super("size=1024k"), "{sized:?}");
    assert!(sized.has("nosuid") && sized.has("nodev") && sized.has("rw"));
    // 1777 is tmpfs's own default, which mountinfo leaves out: the
    // directory shows it.
    assert_eq!(r.probe("stat", "/sized"), "ok dir 1777 0 0");
    let private = r.mount_at("/private").unwrap();
    assert!(private.has_super("mode=700"), "{private:?}");
    assert_eq!(r.probe("stat", "/private"), "ok dir 700 0 0");
    // Without size() and mode(): the kernel's size, mode 0755.
    let plain = r.mount_at("/plain").unwrap();
    assert!(plain.has_super("mode=755"), "{plain:?}");
    assert_eq!(r.probe("stat", "/plain"), "ok dir 755 0 0");
    assert!(
        !plain.super_options.iter().any(|o| o.starts_with("size=")),
        "{plain:?}"
    );
    assert_eq!(r.probe("probe-write", "/sized/f"), "ok");
    assert_eq!(r.probe("probe-mkdir", "/plain/d"), "ok");
}

#[test]
fn optional_skips_a_missing_source_and_creates_nothing_for_it() {
    let _g = serial();
    if !can_or_skip("optional_skips_a_missing_source_...") {
        return;
    }
    let missing = "/no/such/safespawn-source";
    assert!(!Path::new(missing).exists());
    // Missing at build().
    let r =
        run(sandbox("ls=/,probe-read=/opt").mount(Mount::bind_ro(missing, "/opt/x").optional()));
    assert_eq!(r.ls("/"), sandbox_root_entries(&[]));
    assert_eq!(r.probe("probe-read", "/opt"), "ENOENT");
    // Without optional() it is a build error naming the mount.
    let (kind, e) = build_error(sandbox("ls=/").mount(Mount::bind_ro(missing, "/opt/x")));
    assert_eq!(kind, BuildErrorKind::NotFound, "{e}");
    assert!(
        e.contains(r#"mount(Mount::bind_ro("/no/such/safespawn-source", "/opt/x"))"#),
        "{e}"
    );
    // Present at build(), gone at the spawn: skipped then, at the spawn.
    let dir = Scratch::new("late");
    let src = dir.join("src");
    std::fs::create_dir(&src).unwrap();
    let optional = sandbox("ls=/")
        .mount(Mount::bind(&src, "/late/x").optional())
        .stdout(Stdio::piped())
        .build()
        .unwrap();
    let required = sandbox("ls=/")
        .mount(Mount::bind(&src, "/late/x"))
        .build()
        .unwrap();
    std::fs::remove_dir(&src).unwrap();
    let before = Leftovers::now();
    let r = report_from(&optional);
    assert_eq!(r.ls("/"), sandbox_root_entries(&[]));
    // And without optional() the kernel's ENOENT, naming the destination.
    let (stage, errno, path) = spawn_failure(&required);
    assert_eq!((stage, errno), (Stage::Mount, Errno::NOENT));
    assert_eq!(path.as_deref(), Some(Path::new("/late/x")));
    // A Prepared keeps the fds of its spawn machinery once it has spawned
    // (tests/fd_budget.rs): dropped, they are gone too.
    drop((optional, required));
    before.check("after the late sources");
}

#[test]
fn remount_ro_of_slash_after_the_mounts_leaves_tmp_writable() {
    let _g = serial();
    if !can_or_skip("remount_ro_of_slash_...") {
        return;
    }
    let r = run(sandbox(
        "probe-mkdir=/new,probe-write=/tmp/f,probe-remount-rw=/,probe-mkdir=/new,probe-mkdir=/tmp/d",
    )
    .mount(Mount::tmpfs("/tmp"))
    .mount(Mount::remount_ro("/")));
    let mkdirs: Vec<&str> = r
        .probes
        .iter()
        .filter(|(a, p, _)| a == "probe-mkdir" && p == b"/new")
        .map(|(_, _, res)| res.as_str())
        .collect();
    assert_eq!(mkdirs, ["EROFS", "EROFS"], "before and after the remount");
    assert_eq!(r.probe("probe-remount-rw", "/"), "EPERM");
    assert_eq!(r.probe("probe-write", "/tmp/f"), "ok");
    assert_eq!(r.probe("probe-mkdir", "/tmp/d"), "ok");
    // Without the remount_ro, / is writable (the EROFS is its doing).
    let r = run(sandbox("probe-mkdir=/new").mount(Mount::tmpfs("/tmp")));
    assert_eq!(r.probe("probe-mkdir", "/new"), "ok");
}

/// Runs `f` as uid and gid 65534 (a thread of this process, dumpable
/// again), or as this process is when it is not root.
fn as_plain_user<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if !is_root() {
        return f();
    }
    std::thread::scope(|s| {
        s.spawn(|| {
            rustix::thread::set_thread_groups(&[]).unwrap();
            rustix::thread::set_thread_gid(rustix::fs::Gid::from_raw(65534)).unwrap();
            rustix::thread::set_thread_uid(rustix::fs::Uid::from_raw(65534)).unwrap();
            // The uid change made the process non-dumpable, which map_root
            // cannot work with (see tests/namespaces.rs).
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable)
                .unwrap();
            f()
        })
        .join()
        .unwrap()
    })
}

#[test]
fn an_unprivileged_caller_with_map_root_gets_the_same_sandbox() {
    let _g = serial();
    if !can_or_skip("an_unprivileged_caller_...") {
        return;
    }
    // Made while still root: the copy, a directory 65534 may write, and a
    // file of it that must stay hidden.
    let _ = helper_path_for_any_user();
    let dir = Scratch::new("plain-user");
    let secret = Scratch::new("plain-user-secret");
    std::fs::write(secret.join("secret"), b"x").unwrap();
    let nobody = rustix::fs::Uid::from_raw(65534);
    if is_root() {
        rustix::fs::chown(&*dir, Some(nobody), Some(rustix::fs::Gid::from_raw(65534))).unwrap();
    }
    let secret_s = secret.join("secret").to_str().unwrap().to_owned();
    let ran = as_plain_user(|| {
        let euid = rustix::process::geteuid().as_raw();
        if !common::can_unshare(Namespaces::USER) {
            eprintln!("skipping an_unprivileged_caller_...: no user namespace for uid {euid}");
            return None;
        }
        let r = run(sandbox(&format!(
            "report,procs,stat-root,probe-read={secret_s},probe-write=/data/f,\
             probe-remount-rw=/data,probe-write=/data/f,probe-write=/rw/f"
        ))
        .mount(Mount::bind_ro(&*dir, "/data"))
        .mount(Mount::bind(&*dir, "/rw")));
        // The maps as this caller sees them, from outside.
        let sleeper = sandbox("sleep=20").spawn().unwrap();
        assert!(common::wait_until_asleep(sleeper.pid()));
        let map = std::fs::read_to_string(format!("/proc/{}/uid_map", sleeper.pid())).unwrap();
        sleeper.abort().unwrap();
        let map = map.split_whitespace().collect::<Vec<_>>().join(" ");
        Some((r, euid, map))
    });
    let Some((r, ids, uid_map)) = ran else {
        return;
    };
    assert_ne!(ids, 0);
    assert_eq!(uid_map, format!("0 {ids} 1"));
    assert_eq!(r.field("uid"), "0 0 0 0");
    assert_eq!(r.field("gid"), "0 0 0 0");
    assert_eq!(r.field("pid"), "1");
    assert_eq!(r.field("procs"), "1");
    assert_eq!(r.field("root_dotdot_id"), r.field("root_id"));
    assert_eq!(r.field("root_link"), "ok /");
    assert_eq!(
        ls_field(&r, "root_ls"),
        sandbox_root_entries(&["data", "rw"])
    );
    assert_eq!(r.probe("probe-read", &secret_s), "ENOENT");
    assert_eq!(r.probe("probe-remount-rw", "/data"), "EPERM");
    let writes: Vec<&str> = r
        .probes
        .iter()
        .filter(|(a, p, _)| a == "probe-write" && p == b"/data/f")
        .map(|(_, _, res)| res.as_str())
        .collect();
    assert_eq!(writes, ["EROFS", "EROFS"]);
    // The directory is this user's: writable through the plain bind.
    assert_eq!(r.probe("probe-write", "/rw/f"), "ok");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(dir.join("f")).unwrap().uid(), ids);
}

#[test]
fn kernel_refusals_are_stage_mount_or_root_and_leave_nothing_behind() {
    let _g = serial();
    if !can_or_skip("kernel_refusals_...") {
        return;
    }
    let before = Leftovers::now();
    // Without a new root a destination must exist: the kernel's ENOENT,
    // naming it.
    let missing_dst = Command::new("/bin/true")
        .unshare(Namespaces::USER | Namespaces::MOUNT)
        .map_root()
        .mount(Mount::bind("/usr", "/no/such/safespawn-dest"))
        .build()
        .unwrap();
    let (stage, errno, path) = spawn_failure(&missing_dst);
    assert_eq!((stage, errno), (Stage::Mount, Errno::NOENT));
    assert_eq!(path.as_deref(), Some(Path::new("/no/such/safespawn-dest")));
    before.check("a missing destination");
    // A destination that would have to be made under a read-only bind.
    let dir = Scratch::new("ro-parent");
    let under_ro = sandbox("report")
        .mount(Mount::bind_ro(&*dir, "/ro"))
        .mount(Mount::tmpfs("/ro/sub"))
        .build()
        .unwrap();
    let (stage, errno, path) = spawn_failure(&under_ro);
    assert_eq!((stage, errno), (Stage::Mount, Errno::ROFS));
    assert_eq!(path.as_deref(), Some(Path::new("/ro/sub")));
    assert!(!dir.join("sub").exists());
    before.check("a destination under a read-only bind");
    // root(dir) whose directory is gone by the spawn: the bind of the new
    // root fails, at Stage::Root.
    let root_dir = Scratch::new("gone-root");
    let gone = root_dir.join("root");
    std::fs::create_dir(&gone).unwrap();
    let gone_root = Command::new("/bin/true")
        .unshare(Namespaces::USER | Namespaces::MOUNT)
        .map_root()
        .root(&gone)
        .build()
        .unwrap();
    std::fs::remove_dir(&gone).unwrap();
    let (stage, errno, path) = spawn_failure(&gone_root);
    assert_eq!((stage, errno, path), (Stage::Root, Errno::NOENT, None));
    before.check("a root directory gone by the spawn");
    // A pivot the kernel refuses: a caller in a chroot (a test thread's
    // own; root only), whose root is no mount point. The first step
    // already needs "/" to be one: making it a slave is refused.
    if !is_root() {
        eprintln!("the chroot part needs root");
        return;
    }
    let jail = Scratch::new("chroot");
    std::fs::create_dir(jail.join("tmp")).unwrap();
    let jail_path = jail.to_path_buf();
    let (slave_only, with_root) = std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: FS only: this thread's root and cwd become its own.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FS) }.unwrap();
            rustix::process::chroot(&jail_path).unwrap();
            rustix::process::chdir(c"/").unwrap();
            let slave_only = Command::new("/bin/true")
                .unshare(Namespaces::MOUNT)
                .build()
                .unwrap();
            let with_root = Command::new("/bin/true")
                .unshare(Namespaces::MOUNT)
                .root_tmpfs()
                .build()
                .unwrap();
            (spawn_failure(&slave_only), spawn_failure(&with_root))
        })
        .join()
        .unwrap()
    });
    assert_eq!(slave_only, (Stage::Mount, Errno::INVAL, None));
    assert_eq!(with_root, (Stage::Mount, Errno::INVAL, None));
    before.check("a chroot");
}

#[test]
fn the_program_is_looked_up_on_path_in_the_childs_view() {
    let _g = serial();
    if !can_or_skip("the_program_is_looked_up_...") {
        return;
    }
    let name = helper_path_for_any_user().file_name().unwrap().to_owned();
    // Found through the bind at /helper.
    let r = run(sandbox_named(&name, "/helper"));
    assert_eq!(r.field("pid"), "1");
    // The caller has it in its own directory of it, which the view lacks.
    let host_dir = helper_dir().to_str().unwrap().to_owned();
    assert!(helper_dir().join(&name).exists());
    let (kind, e) = build_error(sandbox_named(&name, &host_dir));
    assert_eq!(kind, BuildErrorKind::NotFound, "{e}");
    assert!(e.contains(&*name.to_string_lossy()), "{e}");
    // A bare system program: there with the binds, missing without them.
    let true_dirs = "/usr/bin:/bin";
    let with = proc(with_system(
        Command::new("true")
            .env("PATH", true_dirs)
            .unshare(sandbox_ns())
            .map_root()
            .root_tmpfs(),
    ));
    assert!(with.status().unwrap().success());
    assert!(Path::new("/usr/bin/true").exists() || Path::new("/bin/true").exists());
    let (kind, e) = build_error(
        Command::new("true")
            .env("PATH", true_dirs)
            .unshare(sandbox_ns())
            .map_root()
            .root_tmpfs()
            .mount(Mount::tmpfs("/usr")),
    );
    assert_eq!(kind, BuildErrorKind::NotFound, "{e}");
    assert!(e.contains(r#"program "true""#), "{e}");
}

/// The sandbox running the helper by its bare `name`, with PATH=`path`.
fn sandbox_named(name: &std::ffi::OsStr, path: &str) -> Command<Direct> {
    proc(with_system(
        Command::new(name)
            .arg("::report")
            .env("PATH", path)
            .unshare(sandbox_ns())
            .map_root()
            .root_tmpfs(),
    ))
}

#[test]
fn hostile_mount_input_is_a_build_error_naming_the_item() {
    let ns = Namespaces::USER | Namespaces::MOUNT;
    let base = || Command::new("/bin/true").unshare(ns).map_root();
    let with_root = || base().root_tmpfs();
    // (command, kind, what the message must contain)
    let cases: Vec<(Command<Direct>, BuildErrorKind, &str)> = vec![
        (
            base().mount(Mount::bind("usr", "/usr")),
            BuildErrorKind::Invalid,
            r#""usr""#,
        ),
        (
            with_root().mount(Mount::bind("/usr", "usr")),
            BuildErrorKind::Invalid,
            r#""usr""#,
        ),
        (
            with_root().mount(Mount::tmpfs("")),
            BuildErrorKind::Invalid,
            r#"Mount::tmpfs("")"#,
        ),
        (
            with_root().mount(Mount::bind("/us\0r", "/usr")),
            BuildErrorKind::Nul,
            r#"/us\0r"#,
        ),
        (
            with_root().mount(Mount::tmpfs("/tm\0p")),
            BuildErrorKind::Nul,
            r#"/tm\0p"#,
        ),
        (
            with_root().mount(Mount::bind_ro("/usr", "/a/../etc")),
            BuildErrorKind::Invalid,
            "/a/../etc",
        ),
        (
            with_root().mount(Mount::tmpfs("/..")),
            BuildErrorKind::Invalid,
            r#""/..""#,
        ),
        (
            with_root().mount(Mount::tmpfs("/a/./b")),
            BuildErrorKind::Invalid,
            "/a/./b",
        ),
        (
            with_root().mount(Mount::remount_ro("/x/../..")),
            BuildErrorKind::Invalid,
            "/x/../..",
        ),
        (
            with_root().mount(Mount::bind("/usr", "/")),
            BuildErrorKind::Invalid,
            r#"Mount::bind("/usr", "/")"#,
        ),
        (
            with_root().mount(Mount::tmpfs("//")),
            BuildErrorKind::Invalid,
            r#"Mount::tmpfs("//")"#,
        ),
        (
            with_root().mount(Mount::bind("/usr", "/u").size(1)),
            BuildErrorKind::Invalid,
            r#"Mount::bind("/usr", "/u").size(1)"#,
        ),
        (
            with_root().mount(Mount::remount_ro("/").mode(0o700)),
            BuildErrorKind::Invalid,
            r#"Mount::remount_ro("/").mode(0o700)"#,
        ),
        (
            with_root().mount(Mount::proc("/proc")),
            BuildErrorKind::Conflict,
            r#"mount(Mount::proc("/proc")): needs unshare(PID)"#,
        ),
        (
            base().mount(Mount::dev("/dev")),
            BuildErrorKind::Conflict,
            r#"Mount::dev("/dev")"#,
        ),
        (
            Command::new("/bin/true").mount(Mount::tmpfs("/tmp")),
            BuildErrorKind::Conflict,
            r#"mount(Mount::tmpfs("/tmp")): needs unshare(MOUNT)"#,
        ),
        (
            Command::new("/bin/true")
                .unshare(Namespaces::USER)
                .root_tmpfs(),
            BuildErrorKind::Conflict,
            "root_tmpfs()",
        ),
        (
            Command::new("/bin/true").root("/"),
            BuildErrorKind::Conflict,
            r#"root("/")"#,
        ),
        (
            with_root().root("/"),
            BuildErrorKind::Conflict,
            r#"root("/")"#,
        ),
        (
            base().root("/").root("/usr"),
            BuildErrorKind::Conflict,
            r#"root("/usr")"#,
        ),
        (
            base().root("relative/dir"),
            BuildErrorKind::Invalid,
            "relative/dir",
        ),
        (
            base().root("/no/such/safespawn-root"),
            BuildErrorKind::NotFound,
            "/no/such/safespawn-root",
        ),
        (
            base().root("/dev/null"),
            BuildErrorKind::Invalid,
            "/dev/null",
        ),
        (base().root("/a\0b"), BuildErrorKind::Nul, r#"/a\0b"#),
        (
            with_root().mount(Mount::bind_ro("/no/such/safespawn-src", "/x")),
            BuildErrorKind::NotFound,
            "/no/such/safespawn-src",
        ),
    ];
    for (cmd, kind, needle) in cases {
        let shown = format!("{cmd:?}");
        let (got, e) = build_error(cmd);
        assert_eq!(got, kind, "{e} ({shown})");
        assert!(e.contains(needle), "{e:?} does not name {needle:?}");
    }
}
