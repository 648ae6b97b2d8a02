//! The `safespawn` binary, run for real.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_safespawn");

fn safespawn(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run safespawn")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A path for a test file, removed when the value is dropped.
struct TempPath(PathBuf);

impl std::ops::Deref for TempPath {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl AsRef<std::path::Path> for TempPath {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for TempPath {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tmp(name: &str) -> TempPath {
    let p = std::env::temp_dir().join(format!("safespawn-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    TempPath(p)
}

#[test]
fn env_clear_gives_an_empty_environment() {
    let o = Command::new(BIN)
        .args(["--env-clear", "--env", "A=b c", "--", "/usr/bin/env"])
        .env("SECRET", "leak")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "A=b c\n");
}

#[test]
fn environment_is_inherited_without_env_options() {
    let o = Command::new(BIN)
        .args(["--", "/usr/bin/env"])
        .env("SAFESPAWN_MARK", "1")
        .output()
        .unwrap();
    assert!(stdout(&o).contains("SAFESPAWN_MARK=1\n"));
}

#[test]
fn env_pass_and_pass_common() {
    let o = Command::new(BIN)
        .args([
            "--env-pass",
            "KEEP",
            "--env-pass-common",
            "--",
            "/usr/bin/env",
        ])
        .env("KEEP", "yes")
        .env("DROP", "no")
        .env("HOME", "/somewhere")
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(out.contains("KEEP=yes\n"), "{out}");
    assert!(out.contains("HOME=/somewhere\n"), "{out}");
    assert!(out.contains("LC_ALL=C\n"), "{out}");
    assert!(!out.contains("DROP"), "{out}");
}

#[test]
fn exit_codes_are_passed_through() {
    assert_eq!(
        safespawn(&["--", "/bin/sh", "-c", "exit 0"]).status.code(),
        Some(0)
    );
    assert_eq!(
        safespawn(&["--", "/bin/sh", "-c", "exit 3"]).status.code(),
        Some(3)
    );
    // No `--` needed either: options after the program belong to it.
    assert_eq!(
        safespawn(&["/bin/sh", "-c", "exit 4"]).status.code(),
        Some(4)
    );
    let o = safespawn(&["/bin/echo", "--verbose", "-n", "x"]);
    assert_eq!(stdout(&o), "--verbose -n x\n");
}

#[test]
fn death_by_signal_is_128_plus_n() {
    let o = safespawn(&["--", "/bin/sh", "-c", "kill -9 $$"]);
    assert_eq!(o.status.code(), Some(128 + 9));
}

#[test]
fn not_found_is_127() {
    let o = safespawn(&["--", "/nonexistent/program"]);
    assert_eq!(o.status.code(), Some(127));
    let err = stderr(&o);
    assert!(err.starts_with("safespawn: "), "{err}");
    assert!(err.contains("/nonexistent/program"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let o = safespawn(&["--", "safespawn-no-such-program"]);
    assert_eq!(o.status.code(), Some(127));
    assert!(stderr(&o).contains("not found in PATH"), "{}", stderr(&o));
}

#[test]
fn not_executable_is_126() {
    let p = tmp("noexec");
    std::fs::write(&p, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = safespawn(&["--", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    assert!(stderr(&o).contains("exec"), "{}", stderr(&o));
    // A directory cannot be executed either.
    let o = safespawn(&["--", "/tmp"]);
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    std::fs::remove_file(&p).unwrap();
}

#[test]
fn setup_failure_is_125() {
    let o = safespawn(&["--cwd", "/nonexistent/dir", "--", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    let err = stderr(&o);
    assert!(err.contains("changing the working directory"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn bad_option_values_are_125_with_one_line() {
    for args in [
        &["--rlimit", "bogus=1", "--", "/bin/true"][..],
        &["--umask", "9", "--", "/bin/true"],
        &["--timeout", "soon", "--", "/bin/true"],
        &["--pdeathsig", "NOPE", "--", "/bin/true"],
        &["--env", "novalue", "--", "/bin/true"],
        &["--no-such-option", "--", "/bin/true"],
        &[][..],
    ] {
        let o = safespawn(args);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.starts_with("safespawn: "), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    let o = safespawn(&["--rlimit", "bogus=1", "--", "/bin/true"]);
    assert!(
        stderr(&o).contains("unknown resource 'bogus'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn pass_fd_that_is_not_open_is_refused() {
    let o = safespawn(&["--pass-fd", "99", "--", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("--pass-fd 99"), "{}", stderr(&o));
}

#[test]
fn pass_fd_keeps_that_fd_only() {
    // The shell opens fd 7 and 8 for safespawn; only 7 is passed on.
    let script = format!(
        "exec 7</dev/null 8</dev/null; exec {BIN} --pass-fd 7 -- /bin/sh -c 'ls /proc/self/fd'"
    );
    let o = Command::new("/bin/sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    let mut fds: Vec<i32> = stdout(&o)
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    fds.sort();
    // 0, 1, 2, 7 and the fd ls uses for reading the directory.
    assert!(fds.contains(&7), "{fds:?}");
    assert!(!fds.contains(&8), "{fds:?}");
}

#[test]
fn dry_run_prints_the_line_and_runs_nothing() {
    let marker = tmp("dry");
    let o = safespawn(&[
        "--dry-run",
        "--env-clear",
        "--env",
        "GREETING=hello world",
        "--",
        "/usr/bin/touch",
        marker.to_str().unwrap(),
        "it's",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "GREETING='hello world' /usr/bin/touch {} 'it'\\''s'\n",
            marker.display()
        )
    );
    assert!(!marker.exists());
}

#[test]
fn verbose_prints_the_line_to_stderr_first() {
    let o = safespawn(&["--verbose", "--env-clear", "--", "/bin/echo", "a b"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stderr(&o), "/bin/echo 'a b'\n");
    assert_eq!(stdout(&o), "a b\n");
}

#[test]
fn timeout_kills_and_exits_124() {
    let start = Instant::now();
    let o = safespawn(&["--timeout", "300ms", "--", "/bin/sleep", "10"]);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    assert!(stderr(&o).contains("timed out"), "{}", stderr(&o));
    // A program that finishes in time is unaffected.
    let o = safespawn(&["--timeout", "5s", "--", "/bin/sh", "-c", "exit 2"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn rlimit_is_applied() {
    let o = safespawn(&[
        "--rlimit",
        "nofile=64:128",
        "--",
        "/bin/sh",
        "-c",
        "ulimit -Sn; ulimit -Hn",
    ]);
    assert_eq!(stdout(&o), "64\n128\n", "{}", stderr(&o));
    let o = safespawn(&["--rlimit", "core=0", "--", "/bin/sh", "-c", "ulimit -c"]);
    assert_eq!(stdout(&o), "0\n");
}

#[test]
fn umask_is_applied() {
    let o = safespawn(&["--umask", "027", "--", "/bin/sh", "-c", "umask"]);
    assert_eq!(stdout(&o), "0027\n", "{}", stderr(&o));
}

#[test]
fn cwd_is_applied() {
    let o = safespawn(&["--cwd", "/tmp", "--", "/bin/pwd"]);
    assert_eq!(stdout(&o), "/tmp\n");
}

#[test]
fn stdio_files() {
    let out = tmp("out");
    let err = tmp("err");
    let input = tmp("in");
    std::fs::write(&input, "from a file\n").unwrap();
    let o = safespawn(&[
        "--stdin",
        input.to_str().unwrap(),
        "--stdout",
        out.to_str().unwrap(),
        "--stderr",
        err.to_str().unwrap(),
        "--",
        "/bin/sh",
        "-c",
        "cat; echo oops >&2",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty() && o.stderr.is_empty());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "from a file\n");
    assert_eq!(std::fs::read_to_string(&err).unwrap(), "oops\n");
    for p in [out, err, input] {
        std::fs::remove_file(p).unwrap();
    }
    let o = safespawn(&["--stdout", "/nonexistent/dir/f", "--", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        stderr(&o).contains("--stdout /nonexistent/dir/f"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn privileges() {
    let o = safespawn(&[
        "--clear-caps",
        "--allow-cap",
        "net_bind_service",
        "--no-new-privs",
        "--",
        "/bin/sh",
        "-c",
        "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status",
    ]);
    let out = stdout(&o);
    if rustix::process::geteuid().is_root() {
        assert!(out.contains("NoNewPrivs:\t1"), "{out}");
        // CAP_NET_BIND_SERVICE is bit 10.
        assert!(out.contains("CapEff:\t0000000000000400"), "{out}");
        assert!(out.contains("CapBnd:\t0000000000000400"), "{out}");
        let o = safespawn(&[
            "--uid",
            "65534",
            "--gid",
            "65534",
            "--groups",
            "1,2",
            "--",
            "/usr/bin/id",
        ]);
        let id = stdout(&o);
        assert!(id.starts_with("uid=65534"), "{id}{}", stderr(&o));
        assert!(id.contains("gid=65534"), "{id}");
        // id(1) lists the group id first, then the supplementary groups.
        assert!(id.contains(",1(") && id.contains(",2("), "{id}");
    } else {
        // A plain user cannot keep a capability it does not have.
        assert_eq!(o.status.code(), Some(125), "{out}");
        assert!(
            stderr(&o).contains("changing capabilities failed"),
            "{}",
            stderr(&o)
        );
        eprintln!("not root: capability and uid checks skipped");
    }
    let o = safespawn(&["--allow-cap", "nope", "--clear-caps", "--", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(stderr(&o).contains("--allow-cap nope"), "{}", stderr(&o));
}

#[test]
fn new_session_and_pdeathsig() {
    let o = safespawn(&[
        "--new-session",
        "--pdeathsig",
        "KILL",
        "--",
        "/bin/sh",
        "-c",
        "echo $$ $(cut -d' ' -f6 /proc/$$/stat)",
    ]);
    // pid == sid in a new session
    let out = stdout(&o);
    let f: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(f.len(), 2, "{out}");
    assert_eq!(f[0], f[1], "{out}");
}

/// The parent-death signal reaches the program when the process that
/// spawned it (here the `safespawn` tool) is killed outright.
#[test]
fn pdeathsig_fires_when_the_parent_process_is_killed() {
    use std::io::BufRead;
    // Adopt the orphan, so it can be waited for here.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    let mut tool = Command::new(BIN)
        .args([
            "--pdeathsig",
            "USR2",
            "--",
            "/bin/sh",
            "-c",
            "echo $$; exec sleep 30",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(tool.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let program: i32 = line.trim().parse().unwrap();
    tool.kill().unwrap();
    tool.wait().unwrap();
    // Without the signal, sleep would exit 0 after 30 s.
    let started = Instant::now();
    let status = rustix::process::waitpid(
        rustix::process::Pid::from_raw(program),
        rustix::process::WaitOptions::empty(),
    )
    .unwrap()
    .unwrap()
    .1;
    assert_eq!(
        status.terminating_signal(),
        Some(rustix::process::Signal::USR2.as_raw()),
        "{status:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn daemonize_writes_the_pidfile_and_prints_the_daemon_pid() {
    // Adopt orphans, so the daemon (our grandchild) can be reaped here.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    let dir = std::env::temp_dir().join(format!("safespawn-cli-daemon-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("d.pid");
    let o = safespawn(&[
        "--daemonize",
        "--pidfile",
        pidfile.to_str().unwrap(),
        "--",
        "/bin/sleep",
        "30",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let printed = stdout(&o).trim().to_string();
    let written = std::fs::read_to_string(&pidfile).unwrap();
    assert_eq!(written.trim(), printed);
    let pid = rustix::process::Pid::from_raw(printed.parse().unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    let reaped = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
    assert!(reaped.unwrap().is_some());
    std::fs::remove_dir_all(&dir).unwrap();
    let o = safespawn(&["--pidfile", "/tmp/x", "--", "/bin/true"]);
    assert_eq!(o.status.code(), Some(125), "--pidfile requires --daemonize");
}

#[test]
fn help_shows_examples() {
    let o = safespawn(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("Examples:"), "{out}");
    assert!(out.contains("--env-clear"), "{out}");
    assert!(out.contains("128+N"), "{out}");
}

/// `--help`'s sections: each heading line ("Name:") with the long options
/// listed under it, in order. An option line is indented and starts with
/// its flags ("  -v, --verbose ...", "      --env <K=V> ..."); the option is
/// the first `--` word, so options named in descriptions do not count.
fn help_sections(help: &str) -> Vec<(String, Vec<String>)> {
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in help.lines() {
        if let Some(heading) = line.strip_suffix(':').filter(|_| !line.starts_with(' ')) {
            sections.push((heading.to_string(), Vec::new()));
        } else if line.starts_with("  ") && line.trim_start().starts_with('-') {
            let option = line
                .split(|c: char| c.is_whitespace() || c == ',')
                .find(|word| word.starts_with("--"))
                .unwrap_or_else(|| panic!("no long option in {line:?}"));
            let (_, options) = sections
                .last_mut()
                .unwrap_or_else(|| panic!("{line:?} comes before any heading"));
            options.push(option.to_string());
        }
    }
    sections
}

#[test]
fn help_lists_each_option_under_its_area() {
    let o = safespawn(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    let expected: &[(&str, &[&str])] = &[
        // PROGRAM: under Arguments, not under the last group's heading.
        ("Arguments", &[]),
        ("Options", &["--help", "--version"]),
        (
            "Environment",
            &["--env-clear", "--env-pass-common", "--env-pass", "--env"],
        ),
        (
            "Working directory & process attributes",
            &["--cwd", "--umask", "--rlimit"],
        ),
        (
            "Process knobs & security labels",
            &[
                "--nice",
                "--cpus",
                "--oom-score-adj",
                "--sched-core-new",
                "--sched-core-share-from",
                "--personality",
                "--securebits",
                "--selinux-label",
                "--apparmor-profile",
            ],
        ),
        (
            "Credentials",
            &[
                "--uid",
                "--gid",
                "--groups",
                "--clear-caps",
                "--allow-cap",
                "--no-new-privs",
            ],
        ),
        (
            "Namespaces",
            &[
                "--unshare-user",
                "--unshare-mount",
                "--unshare-pid",
                "--unshare-net",
                "--unshare-uts",
                "--unshare-ipc",
                "--unshare-cgroup",
                "--unshare-time",
                "--unshare-all",
                "--map-root",
                "--uid-map",
                "--gid-map",
                "--hostname",
                "--join-ns",
            ],
        ),
        (
            "Mounts",
            &[
                "--root",
                "--root-tmpfs",
                "--bind",
                "--ro-bind",
                "--bind-try",
                "--ro-bind-try",
                "--tmpfs",
                "--size",
                "--perms",
                "--proc",
                "--dev",
                "--remount-ro",
            ],
        ),
        (
            "Landlock",
            &[
                "--landlock-read",
                "--landlock-write",
                "--landlock-exec",
                "--landlock-tcp-bind",
                "--landlock-tcp-connect",
                "--landlock-best-effort",
            ],
        ),
        ("Session", &["--pdeathsig", "--new-session"]),
        ("Cgroup", &["--cgroup"]),
        (
            "File descriptors & stdio",
            &["--pass-fd", "--stdin", "--stdout", "--stderr"],
        ),
        ("Daemon", &["--daemonize", "--pidfile"]),
        ("Running", &["--timeout", "--dry-run", "--verbose"]),
        ("Examples", &[]),
    ];
    let expected: Vec<(String, Vec<String>)> = expected
        .iter()
        .map(|(heading, options)| {
            let options = options.iter().map(|o| o.to_string()).collect();
            (heading.to_string(), options)
        })
        .collect();
    assert_eq!(help_sections(&out), expected, "{out}");
}

#[test]
fn a_signal_sent_to_safespawn_reaches_the_program() {
    // The program exits 7 on SIGTERM; without forwarding, safespawn would
    // die of the signal and leave the program running.
    let mut wrapper = std::process::Command::new(env!("CARGO_BIN_EXE_safespawn"))
        .args([
            "--",
            "/bin/sh",
            "-c",
            // Bounded, so a broken forwarder fails the test (exit 3)
            // instead of leaving a loop that holds the test's output open.
            "trap 'exit 7' TERM; i=0; while [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; exit 3",
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let pid = rustix::process::Pid::from_raw(wrapper.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = wrapper.wait().unwrap();
    assert_eq!(status.code(), Some(7), "{status:?}");
}

/// The README's main job, for the people who run it: a plain user cannot
/// drop the bounding set, and with --no-new-privs need not (exec can grant
/// nothing), so it works and prints empty capability sets. As root the test
/// runs it through setpriv as uid 65534.
#[test]
fn the_main_job_works_for_a_plain_user() {
    let tool = env!("CARGO_BIN_EXE_safespawn");
    let job = [
        "--env-clear",
        "--clear-caps",
        "--no-new-privs",
        "--",
        "/bin/sh",
        "-c",
        "env; grep -E '^(Cap|NoNewPrivs)' /proc/self/status",
    ];
    let mut scratch = None;
    let mut cmd = if rustix::process::geteuid().is_root() {
        if !std::path::Path::new("/usr/bin/setpriv").exists() {
            eprintln!("skipped: no setpriv to become a plain user");
            return;
        }
        // The checkout may sit in a directory only root can enter (CI
        // clones into a 0700 temporary directory): run a copy from /tmp.
        let dir = std::env::temp_dir().join(format!("safespawn-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let copy = dir.join("safespawn");
        let copied = std::process::Command::new("cp")
            .arg(tool)
            .arg(&copy)
            .status()
            .unwrap();
        assert!(copied.success());
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut c = std::process::Command::new("/usr/bin/setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&copy);
        scratch = Some(dir);
        c
    } else {
        std::process::Command::new(tool)
    };
    let o = cmd.args(job).current_dir("/").output().unwrap();
    if let Some(dir) = scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert!(out.contains(&format!("{set}:\t0000000000000000")), "{out}");
    }
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
}
