//! `--cgroup DIR`, with the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_safespawn");

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The cgroup v2 mount point, from /proc/self/mountinfo.
fn cgroup2_mount() -> Option<PathBuf> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    table.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        (after.split(' ').next()? == "cgroup2")
            .then(|| PathBuf::from(before.split(' ').nth(4).unwrap_or("")))
    })
}

/// The mount when `test` can run (root, a cgroup v2 mount); says why not.
fn mount_or_skip(test: &str) -> Option<PathBuf> {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipping {test}: creating a cgroup needs root");
        return None;
    }
    let m = cgroup2_mount();
    if m.is_none() {
        eprintln!("skipping {test}: no cgroup v2 filesystem is mounted here");
    }
    m
}

/// A cgroup directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(mount: &Path, name: &str) -> Scratch {
        let p = mount.join(format!("safespawn-cli-{}-{name}", std::process::id()));
        std::fs::create_dir(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for _ in 0..200 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

fn run(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

#[test]
fn cgroup_places_the_program() {
    let Some(mount) = mount_or_skip("cgroup_places_the_program") else {
        return;
    };
    let cg = Scratch::new(&mount, "placed");
    let o = run(&[
        "--cgroup".as_ref(),
        cg.0.as_os_str(),
        "--".as_ref(),
        "cat".as_ref(),
        "/proc/self/cgroup".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let want = format!("0::/{}\n", cg.0.strip_prefix(&mount).unwrap().display());
    assert!(text(&o.stdout).contains(&want), "{}", text(&o.stdout));
}

#[test]
fn a_missing_cgroup_is_a_setup_failure() {
    let o = run(&[
        "--cgroup".as_ref(),
        "/no/such/cgroup".as_ref(),
        "--".as_ref(),
        "true".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("cgroup(\"/no/such/cgroup\")") && err.contains("does not exist"),
        "{err}"
    );
    let o = run(&[
        "--cgroup".as_ref(),
        "/tmp".as_ref(),
        "--".as_ref(),
        "true".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        text(&o.stderr).contains("not a cgroup v2 directory"),
        "{}",
        text(&o.stderr)
    );
}

/// A plain user may not move a process into root's cgroup: the kernel's
/// EACCES, at the placement.
#[test]
fn a_cgroup_the_user_may_not_write_is_refused_at_the_placement() {
    let test = "a_cgroup_the_user_may_not_write_is_refused_at_the_placement";
    let Some(mount) = mount_or_skip(test) else {
        return;
    };
    if !Path::new("/usr/bin/setpriv").exists() {
        eprintln!("skipping {test}: no setpriv to become a plain user");
        return;
    }
    let cg = Scratch::new(&mount, "not-yours");
    // The checkout may be in a directory only root can enter: a copy in /tmp.
    let dir = std::env::temp_dir().join(format!("safespawn-cli-cgroup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("safespawn");
    assert!(Command::new("cp")
        .arg(BIN)
        .arg(&copy)
        .status()
        .unwrap()
        .success());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = Command::new("/usr/bin/setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&copy)
        .arg("--cgroup")
        .arg(&cg.0)
        .args(["--", "true"])
        .current_dir("/")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(
        err.contains("placing the child in its cgroup")
            && err.contains(&cg.0.display().to_string())
            && err.contains("Permission denied"),
        "{err}"
    );
}
