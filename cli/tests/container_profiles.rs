//! The tool inside containers whose seccomp profile refuses newer system
//! calls, through the repository's launcher (`tools/compat-run`).
//!
//! Under `docker-eperm` (old Docker: `clone3` → EPERM) a C library from 2.34
//! on cannot create threads at all, so the tool's signal forwarder cannot
//! start. That must fail set-up before the program is exec'd, never exec
//! the program and then kill it. Under `docker-eperm-old-glibc` (threads
//! work, only the program's own `clone3` is refused) the program runs.
//!
//! Whether the program was exec'd at all is read from its file's access
//! time: exec reads the file, and with `relatime` an access time older
//! than the modification time is always updated. (A program killed right
//! after exec does no work one could observe; its exec still shows.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

fn tool() -> &'static str {
    env!("CARGO_BIN_EXE_safespawn")
}

/// The launcher, built next to the tool by `cargo test --workspace`.
fn launcher() -> Option<PathBuf> {
    let path = Path::new(tool()).with_file_name("compat-run");
    path.exists().then_some(path)
}

/// A copy of `true` whose access time lies far before its modification
/// time, so that an exec of it moves the access time.
struct Probe(PathBuf);

impl Probe {
    fn new(name: &str) -> Probe {
        let p =
            std::env::temp_dir().join(format!("safespawn-cli-{}-{name}-probe", std::process::id()));
        // Copied by another process: a file this one had open for writing
        // would be inherited by what the other test spawns meanwhile, and
        // exec of the copy would fail with ETXTBSY.
        let copied = Command::new("cp")
            .arg("/bin/true")
            .arg(&p)
            .status()
            .unwrap();
        assert!(copied.success());
        let old = SystemTime::now() - Duration::from_secs(365 * 24 * 3600);
        std::fs::File::open(&p)
            .unwrap()
            .set_times(std::fs::FileTimes::new().set_accessed(old))
            .unwrap();
        Probe(p)
    }

    fn exec_d(&self) -> bool {
        let m = std::fs::metadata(&self.0).unwrap();
        m.accessed().unwrap() >= m.modified().unwrap()
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn under(profile: &str, probe: &Probe) -> Option<Output> {
    let Some(launcher) = launcher() else {
        eprintln!("skipped: compat-run is not built (cargo build -p compat-run)");
        return None;
    };
    Some(
        Command::new(launcher)
            .args([profile, "--", tool(), "--"])
            .arg(&probe.0)
            .output()
            .unwrap(),
    )
}

#[test]
fn without_threads_setup_fails_before_the_program_is_exec_d() {
    // The control: this file system shows an exec in the access time.
    let control = Probe::new("control");
    assert!(Command::new(&control.0).status().unwrap().success());
    if !control.exec_d() {
        eprintln!("skipped: this file system does not record access times (noatime)");
        return;
    }
    let probe = Probe::new("eperm");
    let Some(o) = under("docker-eperm", &probe) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{stderr}");
    assert!(stderr.contains("signal forwarder"), "{stderr}");
    assert!(
        !probe.exec_d(),
        "the program was exec'd although set-up failed: {stderr}"
    );
}

#[test]
fn with_threads_the_program_runs_despite_clone3_eperm() {
    let probe = Probe::new("old-glibc");
    let Some(o) = under("docker-eperm-old-glibc", &probe) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
}
