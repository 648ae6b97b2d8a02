//! The confinement options (Namespaces and Mounts in `--help`), run for
//! real: a sandbox as bubblewrap makes one, the order of interleaved
//! mounts, --size and --perms, --join-ns into a running program's
//! namespaces, and the errors for bad values.
//!
//! Each sandbox runs as this process's user and, when that is root, also
//! as uid 65534 (through setpriv, from a copy of the tool that user can
//! reach), always with --unshare-user --map-root so that both can. The
//! sandboxes need /proc (the id maps are written there) and a system that
//! allows user namespaces; without either they skip with a message.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_safespawn");

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A folder for one test, world-readable, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("safespawn-cli-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Who runs the tool: this process's user, or uid 65534 through setpriv.
struct As {
    label: String,
    tool: PathBuf,
    setpriv: bool,
}

impl As {
    fn command(&self) -> Command {
        let mut c = if self.setpriv {
            let mut c = Command::new("/usr/bin/setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&self.tool);
            c
        } else {
            Command::new(&self.tool)
        };
        c.current_dir("/");
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }
}

/// The users to run the sandboxes as (see the module doc), or none, with
/// the reason said, where they cannot run. `scratch` holds the copy of the
/// tool for uid 65534.
fn users(test: &str, scratch: &Scratch) -> Vec<As> {
    if !Path::new("/proc/self/ns").exists() {
        eprintln!("skipping {test}: no /proc here");
        return Vec::new();
    }
    let me = As {
        label: format!("uid {}", rustix::process::geteuid().as_raw()),
        tool: PathBuf::from(BIN),
        setpriv: false,
    };
    let probe = me.run(&["--unshare-user", "--map-root", "--", "/bin/true"]);
    if probe.status.code() != Some(0) {
        eprintln!(
            "skipping {test}: user namespaces are refused here: {}",
            stderr(&probe)
        );
        return Vec::new();
    }
    let mut users = vec![me];
    if is_root() {
        if !Path::new("/usr/bin/setpriv").exists() {
            eprintln!("{test}: no setpriv to become uid 65534; run as root only");
            return users;
        }
        // The checkout may sit in a directory only root can enter: a copy,
        // made by another process (a file this one had open for writing
        // could be inherited by a concurrent spawn: ETXTBSY).
        let tool = scratch.0.join("safespawn");
        let copied = Command::new("cp").arg(BIN).arg(&tool).status().unwrap();
        assert!(copied.success());
        users.push(As {
            label: "uid 65534".into(),
            tool,
            setpriv: true,
        });
    }
    users
}

/// A new root of a tmpfs with the system's programs in it, read-only, and
/// a /dev.
const SYSTEM: &[&str] = &[
    "--unshare-user",
    "--map-root",
    "--root-tmpfs",
    "--ro-bind",
    "/usr",
    "/usr",
    "--ro-bind-try",
    "/lib",
    "/lib",
    "--ro-bind-try",
    "/lib64",
    "/lib64",
    "--ro-bind-try",
    "/bin",
    "/bin",
    "--dev",
    "/dev",
];

fn sandboxed(user: &As, options: &[&str], script: &str) -> Output {
    let mut args: Vec<&str> = SYSTEM.to_vec();
    args.extend_from_slice(options);
    args.extend_from_slice(&["--", "/bin/sh", "-c", script]);
    user.run(&args)
}

#[test]
fn a_sandbox_as_bubblewrap_makes_it() {
    let scratch = Scratch::new("bwrap");
    for user in users("a_sandbox_as_bubblewrap_makes_it", &scratch) {
        let o = user.run(&[
            "--unshare-all",
            "--map-root",
            "--root-tmpfs",
            "--ro-bind",
            "/usr",
            "/usr",
            "--ro-bind-try",
            "/lib",
            "/lib",
            "--ro-bind-try",
            "/lib64",
            "/lib64",
            "--ro-bind-try",
            "/bin",
            "/bin",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
            "--hostname",
            "box",
            "--",
            "/bin/sh",
            "-c",
            "id -u; uname -n; echo $$; ls /; \
             touch /usr/x 2>/dev/null && echo /usr writable || echo /usr read-only; \
             touch /tmp/x && echo /tmp writable; \
             tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; \
             ls /proc | grep -c '^[0-9]'",
        ]);
        let label = &user.label;
        assert_eq!(o.status.code(), Some(0), "{label}: {}", stderr(&o));
        // Only what was bound is in /: the -try sources that exist here.
        let mut root: Vec<&str> = ["/bin", "/lib", "/lib64"]
            .into_iter()
            .filter(|p| Path::new(p).exists())
            .map(|p| &p[1..])
            .chain(["dev", "proc", "tmp", "usr"])
            .collect();
        root.sort();
        let expected = format!(
            "0\nbox\n1\n{}\n/usr read-only\n/tmp writable\nlo\n",
            root.join("\n")
        );
        let out = stdout(&o);
        // The last line: the processes in the new /proc (sh and the
        // pipeline's; none of the host's).
        let (seen, processes) = out.trim_end().rsplit_once('\n').unwrap();
        assert_eq!(format!("{seen}\n"), expected, "{label}");
        let processes: u32 = processes.parse().unwrap();
        assert!((1..=4).contains(&processes), "{label}: {out}");
    }
}

#[test]
fn mounts_keep_their_command_line_order_across_option_kinds() {
    let scratch = Scratch::new("order");
    let src = scratch.0.join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(src.join("marker"), "from the bind\n").unwrap();
    let src = src.to_str().unwrap();
    let show = "cat /a/b/marker 2>/dev/null || echo hidden";
    for user in users("mounts_keep_their_command_line_order", &scratch) {
        let label = &user.label;
        // A tmpfs, then a bind inside it: the bind shows.
        let o = sandboxed(&user, &["--tmpfs", "/a", "--ro-bind", src, "/a/b"], show);
        assert_eq!(stdout(&o), "from the bind\n", "{label}: {}", stderr(&o));
        // The bind, then a tmpfs over its parent: the tmpfs hides it.
        let o = sandboxed(&user, &["--ro-bind", src, "/a/b", "--tmpfs", "/a"], show);
        assert_eq!(stdout(&o), "hidden\n", "{label}: {}", stderr(&o));
        // --remount-ro freezes the mount as it is at its place in the
        // order: a tmpfs mounted below it before stays writable, and one
        // after it cannot get its mount point made.
        let o = sandboxed(
            &user,
            &["--tmpfs", "/w", "--tmpfs", "/w/sub", "--remount-ro", "/w"],
            "touch /w/f 2>/dev/null && echo /w writable || echo /w read-only; \
             touch /w/sub/f && echo /w/sub writable",
        );
        assert_eq!(
            stdout(&o),
            "/w read-only\n/w/sub writable\n",
            "{label}: {}",
            stderr(&o)
        );
        // The one exception: --remount-ro / of a new root is made last.
        let o = sandboxed(
            &user,
            &["--remount-ro", "/", "--tmpfs", "/w"],
            "mkdir /x 2>/dev/null && echo / writable || echo / read-only; \
             touch /w/f && echo /w writable",
        );
        assert_eq!(
            stdout(&o),
            "/ read-only\n/w writable\n",
            "{label}: {}",
            stderr(&o)
        );
        let o = sandboxed(
            &user,
            &["--tmpfs", "/w", "--remount-ro", "/w", "--tmpfs", "/w/sub"],
            "true",
        );
        assert_eq!(o.status.code(), Some(125), "{label}");
        let err = stderr(&o);
        assert!(
            err.contains("mounting /w/sub failed: Read-only file system"),
            "{label}: {err}"
        );
    }
}

#[test]
fn size_and_perms_apply_to_the_next_tmpfs_only() {
    let scratch = Scratch::new("size");
    for user in users("size_and_perms_apply_to_the_next_tmpfs_only", &scratch) {
        let label = &user.label;
        let o = sandboxed(
            &user,
            &[
                "--perms", "1777", "--size", "64k", "--tmpfs", "/t", "--tmpfs", "/u",
            ],
            "stat -c '%a %n' /t /u; head -c 1000000 /dev/zero > /t/big 2>/dev/null; wc -c < /t/big",
        );
        assert_eq!(
            stdout(&o),
            "1777 /t\n755 /u\n65536\n",
            "{label}: {}",
            stderr(&o)
        );
        // bubblewrap's order, the other way round, and the `=` forms.
        let o = sandboxed(
            &user,
            &["--size=1m", "--perms=700", "--tmpfs=/t"],
            "stat -c '%a' /t",
        );
        assert_eq!(stdout(&o), "700\n", "{label}: {}", stderr(&o));
    }
}

/// A running program with a hostname of its own, started by `tool` (the
/// tool, its options given); killed when dropped.
struct Helper {
    tool: std::process::Child,
    pid: i32,
}

impl Helper {
    fn start(mut tool: Command, hostname: &str) -> Helper {
        use std::io::BufRead;
        let mut tool = tool
            .args(["--unshare-uts", "--hostname", hostname, "--"])
            .args(["/bin/sh", "-c", "echo $$; exec sleep 30"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(tool.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let pid = line.trim().parse().expect("the helper's pid");
        Helper { tool, pid }
    }

    fn ns(&self, kind: &str) -> String {
        format!("/proc/{}/ns/{kind}", self.pid)
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let pid = rustix::process::Pid::from_raw(self.pid).unwrap();
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        let _ = self.tool.wait();
    }
}

#[test]
fn join_ns_enters_the_namespaces_of_a_running_program() {
    let scratch = Scratch::new("join");
    for user in users("join_ns_enters_the_namespaces", &scratch) {
        let label = &user.label;
        // In a user namespace of its own, so that any user can join it.
        let mut tool = user.command();
        tool.args(["--unshare-user", "--map-root"]);
        let helper = Helper::start(tool, "joined");
        let (user_ns, uts_ns) = (helper.ns("user"), helper.ns("uts"));
        // The kinds read from the files, and given.
        let (user_kind, uts_kind) = (format!("{user_ns}:user"), format!("{uts_ns}:uts"));
        for [user_ns, uts_ns] in [[&user_ns, &uts_ns], [&user_kind, &uts_kind]] {
            let o = user.run(&[
                "--join-ns",
                user_ns,
                "--join-ns",
                uts_ns,
                "--",
                "uname",
                "-n",
            ]);
            assert_eq!(stdout(&o), "joined\n", "{label} {uts_ns}: {}", stderr(&o));
        }
        // A kind that is not the file's.
        let wrong = format!("{uts_ns}:net");
        let o = user.run(&["--join-ns", &wrong, "--", "true"]);
        assert_eq!(o.status.code(), Some(125), "{label}");
        assert_eq!(
            stderr(&o),
            format!("safespawn: --join-ns {wrong}: {uts_ns} is a uts namespace, not net\n"),
            "{label}"
        );
    }
    if is_root() && Path::new("/proc/self/ns").exists() {
        // Root joins a UTS namespace of root's without a user namespace.
        let helper = Helper::start(Command::new(BIN), "root-joined");
        let o = Command::new(BIN)
            .args(["--join-ns", &helper.ns("uts"), "--", "uname", "-n"])
            .output()
            .unwrap();
        assert_eq!(stdout(&o), "root-joined\n", "{}", stderr(&o));
    }
}

#[test]
fn bad_values_are_errors_naming_the_option() {
    let cases: &[(&[&str], &str)] = &[
        (&["--size", "big", "--tmpfs", "/t"], "'big' for '--size <BYTES>'"),
        (&["--size", "0", "--tmpfs", "/t"], "'0' for '--size <BYTES>'"),
        (&["--perms", "8", "--tmpfs", "/t"], "'8' for '--perms <OCTAL>'"),
        (&["--perms", "17777", "--tmpfs", "/t"], "'17777' for '--perms <OCTAL>'"),
        (
            &["--size", "1m", "--ro-bind", "/usr", "/usr", "--tmpfs", "/t"],
            "--size 1m: must be followed by --tmpfs, not --ro-bind /usr /usr",
        ),
        (&["--perms", "700"], "--perms 700: must be followed by --tmpfs"),
        (
            &["--size", "1k", "--size", "2k", "--tmpfs", "/t"],
            "--size 2k: --size 1k already sets the size of the next --tmpfs",
        ),
        (&["--bind", "/usr"], "'--bind <SRC> <DST>'"),
        (&["--root", "/tmp", "--root-tmpfs"], "'--root <DIR>' cannot be used with '--root-tmpfs'"),
        (
            &["--join-ns", "/dev/null"],
            "--join-ns /dev/null: /dev/null is not a namespace file",
        ),
        (&["--join-ns", "/nonexistent"], "--join-ns /nonexistent: cannot open /nonexistent"),
        (
            &["--join-ns", "/dev/null:bogus"],
            "--join-ns /dev/null:bogus: unknown namespace kind 'bogus'",
        ),
        // The library's build errors, told with the option.
        (
            &["--ro-bind", "/nonexistent", "/x"],
            "--ro-bind /nonexistent /x: the source \"/nonexistent\" does not exist (--ro-bind-try skips",
        ),
        (&["--root", "/nonexistent"], "--root /nonexistent: the directory \"/nonexistent\" does not exist"),
        (&["--tmpfs", "tmp"], "--tmpfs tmp: the destination \"tmp\" is not an absolute path"),
        (&["--tmpfs", "/a/../b"], "--tmpfs /a/../b: the destination"),
        (&["--proc", "/proc"], "--proc /proc: needs --unshare-pid"),
        (&["--dev", "/dev"], "--dev /dev: needs --root or --root-tmpfs"),
        (&["--hostname", "box"], "needs --unshare-uts"),
        (&["--unshare-all", "--daemonize"], "--unshare-all: with --daemonize"),
        (&["--unshare-user", "--uid-map", "0:1"], "--uid-map 0:1: expected INSIDE:OUTSIDE:COUNT"),
        (&["--unshare-user", "--gid-map", "a:0:1"], "--gid-map a:0:1: expected INSIDE:OUTSIDE:COUNT"),
        (&["--uid-map", "0:0:1"], "--uid-map 0:0:1: needs --unshare-user"),
        (&["--unshare-user", "--uid-map", "0:0:0"], "--uid-map 0:0:0:"),
        (
            &["--unshare-user", "--map-root", "--gid-map", "0:0:1"],
            "--gid-map 0:0:1:",
        ),
    ];
    for (args, expected) in cases {
        let o = Command::new(BIN)
            .args(*args)
            .args(["--", "/bin/true"])
            .output()
            .unwrap();
        let err = stderr(&o);
        // 125, not 127: a missing bind source is not a missing program.
        assert_eq!(o.status.code(), Some(125), "{args:?}: {err}");
        assert!(err.starts_with("safespawn: "), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
}

#[test]
fn uid_map_and_gid_map_write_the_ranges_asked_for() {
    // Ranges of other ids need root (a plain user may only map its own).
    if !is_root() || !std::path::Path::new("/proc/self/uid_map").exists() {
        eprintln!("skipping uid_map_and_gid_map_write_the_ranges_asked_for: needs root and /proc");
        return;
    }
    let o = Command::new(BIN)
        .args([
            "--unshare-user",
            "--uid-map",
            "0:0:1",
            "--uid-map",
            "1:100000:1000",
        ])
        .args(["--gid-map", "0:0:1", "--uid", "0", "--gid", "0"])
        .args([
            "--",
            "/bin/sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; id -u",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let words: Vec<Vec<String>> = stdout(&o)
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect();
    assert_eq!(
        words,
        [
            vec!["0", "0", "1"],
            vec!["1", "100000", "1000"],
            vec!["0", "0", "1"],
            vec!["0"],
        ]
    );
}

#[test]
fn a_mount_option_gives_the_program_a_mount_namespace_of_its_own() {
    let scratch = Scratch::new("implied");
    for user in users("a_mount_option_gives_a_mount_namespace", &scratch) {
        // Without --unshare-mount, and without a new root: /tmp in place.
        let o = user.run(&[
            "--unshare-user",
            "--map-root",
            "--tmpfs",
            "/tmp",
            "--",
            "/bin/sh",
            "-c",
            "ls -A /tmp | wc -l; readlink /proc/self/ns/mnt",
        ]);
        let label = &user.label;
        assert_eq!(o.status.code(), Some(0), "{label}: {}", stderr(&o));
        let own = std::fs::read_link("/proc/self/ns/mnt").unwrap();
        assert_eq!(
            stdout(&o).lines().collect::<Vec<_>>()[..1],
            ["0"],
            "{label}"
        );
        assert!(
            !stdout(&o).contains(own.to_str().unwrap()),
            "{label}: {}",
            stdout(&o)
        );
    }
}
