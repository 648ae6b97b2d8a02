//! Random builder call sequences never panic, and `build()` either succeeds
//! or names the bad item, with the kind of problem the input determines
//! (checked against a model of the sequence, not against the message);
//! mounts and new roots among them, and in a test of their own.
//! Also the regression cases the fuzz targets found.

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use safespawn::BuildErrorKind::{
    self, Collision, Conflict, Invalid, NotExecutable, NotFound, Nul, TooLong,
};
use safespawn::{Command, Error, Mount, Namespaces, Resource, Stdio};

/// One builder call, with arbitrary data.
#[derive(Debug, Clone)]
enum Op {
    Arg(Vec<u8>),
    ArgPair(Vec<u8>, Vec<u8>),
    Env(Vec<u8>, Vec<u8>),
    EnvString(Vec<u8>),
    EnvRemove(Vec<u8>),
    EnvClear,
    EnvPass(Vec<u8>),
    EnvPassCommon,
    Umask(u32),
    Rlimit(u8, u64, u64),
    Uid(u32),
    Gid(u32),
    Groups(Vec<u32>),
    Cwd(Vec<u8>),
    Stdio(u8, u8),
    MapDevNull(i32),
    PassDevNull,
    Flag(u8),
    /// `unshare` of MOUNT (0), PID (1), USER (2) or MOUNT | PID (3).
    Unshare(u8),
    Mount(MountCall),
    /// `root(dir)`, or `root_tmpfs()` for `None`.
    Root(Option<Vec<u8>>),
}

/// One `mount` call: the kind (bind, bind_ro, tmpfs, proc, dev,
/// remount_ro), its paths (the source only for binds) and modifiers.
#[derive(Debug, Clone)]
struct MountCall {
    kind: u8,
    src: Vec<u8>,
    dst: Vec<u8>,
    optional: bool,
    size: bool,
    mode: bool,
}

/// Paths for mounts: existing ones (a directory, a file), missing ones,
/// and every kind of wrong one, plus random bytes.
fn mount_path() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => proptest::sample::select(MOUNT_PATHS)
        .prop_map(<[u8]>::to_vec),
        1 => bytes(),
        1 => bytes().prop_map(|b| [&b"/"[..], &b].concat()),
    ]
}

/// The named paths of [`mount_path`].
const MOUNT_PATHS: &[&[u8]] = &[
    b"/usr",
    b"/tmp",
    b"/dev/null",
    b"/no/such/safespawn-path",
    b"/dev/null/below-a-file",
    b"/opt/x",
    b"/x/y/",
    b"/",
    b"//",
    b"",
    b"usr",
    b"./x",
    b"/a/../b",
    b"/a/./b",
    b"/x/.",
    b"/..",
    b"/x\0y",
];

fn mount_call() -> impl Strategy<Value = MountCall> {
    (0u8..6, mount_path(), mount_path(), any::<bool>(), 0u8..8).prop_map(
        |(kind, src, dst, optional, extra)| MountCall {
            kind,
            src,
            dst,
            optional,
            size: extra == 1 || (kind == 2 && extra >= 5),
            mode: extra == 2 || (kind == 2 && extra >= 6),
        },
    )
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..12),
        1 => proptest::collection::vec(prop_oneof![Just(0u8), Just(b'='), Just(b' '), Just(b'\''), any::<u8>()], 0..6),
    ]
}

fn id() -> impl Strategy<Value = u32> {
    prop_oneof![Just(u32::MAX), Just(0u32), Just(65534u32), any::<u32>()]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        bytes().prop_map(Op::Arg),
        (bytes(), bytes()).prop_map(|(a, b)| Op::ArgPair(a, b)),
        (bytes(), bytes()).prop_map(|(a, b)| Op::Env(a, b)),
        bytes().prop_map(Op::EnvString),
        bytes().prop_map(Op::EnvRemove),
        Just(Op::EnvClear),
        bytes().prop_map(Op::EnvPass),
        Just(Op::EnvPassCommon),
        (0u32..0o2000).prop_map(Op::Umask),
        (
            0u8..4,
            prop_oneof![Just(0u64), Just(10), Just(u64::MAX)],
            prop_oneof![Just(0u64), Just(10), Just(u64::MAX)]
        )
            .prop_map(|(r, s, h)| Op::Rlimit(r, s, h)),
        id().prop_map(Op::Uid),
        id().prop_map(Op::Gid),
        proptest::collection::vec(id(), 0..3).prop_map(Op::Groups),
        bytes().prop_map(Op::Cwd),
        (0u8..4, 0u8..3).prop_map(|(w, k)| Op::Stdio(w, k)),
        (-3i32..20).prop_map(Op::MapDevNull),
        Just(Op::PassDevNull),
        (0u8..7).prop_map(Op::Flag),
        (0u8..4).prop_map(Op::Unshare),
        mount_call().prop_map(Op::Mount),
        prop_oneof![Just(None), mount_path().prop_map(Some)].prop_map(Op::Root),
    ]
}

/// What `build()` must answer for a call sequence, kept beside the calls:
/// every item the sequence gets wrong, each as the word its error's item
/// starts with (one of [`ITEM_KINDS`]) and the [`BuildErrorKind`] the input
/// determines (a NUL in an argument is `Nul`, a second fd for one child
/// number is `Collision`, ...). `build()` reports one of them: which one
/// depends on the order the library checks in, which is not part of the
/// property. It fails exactly when there is one, except that a bare program
/// name may also be missing from PATH (what is installed is not input).
#[derive(Default)]
struct Model {
    /// The items known to be wrong: set as soon as the call is made for
    /// what a later call cannot undo (an rlimit, an fd, an env string
    /// without '='), at the end for what a later call replaces.
    bad: Vec<(&'static str, BuildErrorKind)>,
    program: Vec<u8>,
    args: Vec<Vec<u8>>,
    /// Whether an environment call ended inheritance, and the variables.
    env_explicit: bool,
    env: Vec<(Vec<u8>, Vec<u8>)>,
    umask: Option<u32>,
    cwd: Option<Vec<u8>>,
    uid: Option<u32>,
    gid: Option<u32>,
    groups: Option<Vec<u32>>,
    /// Child fd numbers planned so far: stdio is always planned.
    targets: Vec<RawFd>,
    /// `unshare(MOUNT)`, `unshare(PID)` so far.
    mount_ns: bool,
    pid_ns: bool,
    mounts: Vec<MountCall>,
    /// The `root`/`root_tmpfs` calls (`None`: `root_tmpfs`).
    roots: Vec<Option<Vec<u8>>>,
}

/// What is wrong with a destination `d` of the child's view (`remount_ro`
/// may name `/` itself).
fn destination_problem(d: &[u8], may_be_root: bool) -> Option<BuildErrorKind> {
    let relative = d.first() != Some(&b'/');
    let dots = d.split(|&b| b == b'/').any(|p| p == b"." || p == b"..");
    let root = d.iter().all(|&b| b == b'/');
    if d.contains(&0) {
        Some(Nul)
    } else if relative || dots || (root && !may_be_root) {
        Some(Invalid)
    } else {
        None
    }
}

/// What is wrong with a source `p` of the caller's view, resolved as the
/// library resolves it (`optional`: a missing one is fine). Returns the
/// problem, or whether it is a directory.
fn source_problem(p: &[u8], optional: bool) -> Result<bool, BuildErrorKind> {
    if p.contains(&0) {
        return Err(Nul);
    }
    if p.first() != Some(&b'/') {
        return Err(Invalid);
    }
    match std::fs::canonicalize(OsStr::from_bytes(p)) {
        Ok(resolved) => Ok(resolved.is_dir()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && optional => Ok(true),
        Err(_) => Err(NotFound),
    }
}

impl Model {
    fn new(program: &[u8]) -> Model {
        Model {
            program: program.to_vec(),
            targets: vec![0, 1, 2],
            ..Model::default()
        }
    }

    fn set(&mut self, k: &[u8], v: &[u8]) {
        self.env_explicit = true;
        match self.env.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = v.to_vec(),
            None => self.env.push((k.to_vec(), v.to_vec())),
        }
    }

    /// `env_pass`: the parent's value, if it has one, read as the library does.
    fn pass(&mut self, k: &[u8]) {
        self.env_explicit = true;
        if let Some(v) = std::env::var_os(OsStr::from_bytes(k)) {
            self.set(k, v.as_bytes());
        }
    }

    /// `pass_fd` (target = the fd's own number) or `map_fd` to `dst`.
    fn fd(&mut self, dst: RawFd) {
        let nofile = rustix::process::getrlimit(Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        if dst < 0 || dst as u64 >= nofile {
            self.bad.push(("child fd", Invalid));
        } else if self.targets.contains(&dst) {
            self.bad.push(("child fd", Collision));
        } else {
            self.targets.push(dst);
        }
    }

    /// Every wrong item, once the sequence is complete.
    fn finish(mut self) -> Finished {
        let p = &self.program;
        if p.is_empty() {
            self.bad.push(("program", Invalid));
        } else if p.contains(&0) {
            self.bad.push(("program", Nul));
        }
        let bare_name = !p.is_empty() && !p.contains(&0) && !p.contains(&b'/');
        for a in &self.args {
            if a.contains(&0) {
                self.bad.push(("argument", Nul));
            }
        }
        if self.env_explicit {
            for (k, v) in &self.env {
                let kind = if k.is_empty() {
                    Some(Invalid)
                } else if k.contains(&0) {
                    Some(Nul)
                } else if k.contains(&b'=') {
                    Some(Invalid)
                } else if v.contains(&0) {
                    Some(Nul)
                } else {
                    None
                };
                if let Some(kind) = kind {
                    self.bad.push(("environment", kind));
                }
            }
        }
        if self.cwd.as_ref().is_some_and(|d| d.contains(&0)) {
            self.bad.push(("working directory", Nul));
        }
        if self.umask.is_some_and(|m| m > 0o777) {
            self.bad.push(("umask", Invalid));
        }
        // -1 means "unchanged" to the kernel, so it is no id.
        if self.uid == Some(u32::MAX) {
            self.bad.push(("uid", Invalid));
        }
        if self.gid == Some(u32::MAX) {
            self.bad.push(("gid", Invalid));
        }
        if self.groups.as_ref().is_some_and(|g| g.contains(&u32::MAX)) {
            self.bad.push(("supplementary group", Invalid));
        }
        self.finish_mounts();
        Finished {
            bad: self.bad,
            bare_name,
        }
    }
}

impl Model {
    /// The mounts' and roots' problems (src/command/mounts.rs's rules).
    fn finish_mounts(&mut self) {
        if self.roots.len() > 1 {
            self.bad.push(("root", Conflict));
        }
        if !self.mount_ns {
            if !self.roots.is_empty() {
                self.bad.push(("root", Conflict));
            } else if !self.mounts.is_empty() {
                self.bad.push(("mount", Conflict));
            }
        }
        if let Some(Some(dir)) = self.roots.first() {
            match source_problem(dir, false) {
                Err(kind) => self.bad.push(("root", kind)),
                Ok(false) => self.bad.push(("root", Invalid)),
                Ok(true) => {}
            }
        }
        let has_root = !self.roots.is_empty();
        for m in &self.mounts {
            let mut bad = |kind| self.bad.push(("mount", kind));
            if (m.size || m.mode) && m.kind != 2 {
                bad(Invalid);
            }
            if let Some(kind) = destination_problem(&m.dst, m.kind == 5) {
                bad(kind);
            }
            match m.kind {
                0 | 1 => {
                    if let Err(kind) = source_problem(&m.src, m.optional) {
                        bad(kind);
                    }
                }
                3 if !self.pid_ns => bad(Conflict),
                4 if !has_root => bad(Conflict),
                _ => {}
            }
        }
    }
}

/// The model's verdict on a complete sequence.
struct Finished {
    bad: Vec<(&'static str, BuildErrorKind)>,
    bare_name: bool,
}

impl Finished {
    /// Whether `build()` may fail naming an item of kind `what` with `kind`.
    fn allows(&self, what: &str, kind: BuildErrorKind) -> bool {
        self.bad.contains(&(what, kind))
            || (self.bare_name && what == "program" && matches!(kind, NotFound | NotExecutable))
            || (what == "argument" && kind == TooLong && big_parent_environment())
    }
}

/// argv and envp must fit in execve's limit, at least 128 KiB whatever the
/// stack rlimit (which the sequence may lower). The generated strings are
/// tiny; an inherited environment above 64 KiB could still reach it.
fn big_parent_environment() -> bool {
    let bytes: usize = std::env::vars_os()
        .map(|(k, v)| k.len() + v.len() + 2 + std::mem::size_of::<usize>())
        .sum();
    bytes > 64 * 1024
}

fn apply(cmd: Command, op: &Op, m: &mut Model) -> Command {
    let os = |b: &Vec<u8>| OsStr::from_bytes(b).to_owned();
    let devnull = || std::fs::File::open("/dev/null").unwrap();
    match op {
        Op::Arg(a) => {
            m.args.push(a.clone());
            cmd.arg(os(a))
        }
        Op::ArgPair(a, b) => {
            m.args.push([&a[..], b"=", &b[..]].concat());
            cmd.arg_pair(os(a), os(b))
        }
        Op::Env(k, v) => {
            m.set(k, v);
            cmd.env(os(k), os(v))
        }
        Op::EnvString(s) => {
            match s.iter().position(|&b| b == b'=') {
                Some(eq) => m.set(&s[..eq], &s[eq + 1..]),
                None => {
                    m.env_explicit = true;
                    m.bad.push(("environment", Invalid));
                }
            }
            cmd.env_string(os(s))
        }
        Op::EnvRemove(k) => {
            // While inheriting, it filters the parent's (valid) variables.
            m.env.retain(|(key, _)| key != k);
            cmd.env_remove(os(k))
        }
        Op::EnvClear => {
            m.env_explicit = true;
            m.env.clear();
            cmd.env_clear()
        }
        // env_pass reads the parent's environment: a NUL or '=' in the name
        // must not make it panic.
        Op::EnvPass(k) => {
            m.pass(k);
            cmd.env_pass(os(k))
        }
        Op::EnvPassCommon => {
            m.set(b"LC_ALL", b"C");
            for name in [
                "PATH",
                "LD_PRELOAD",
                "LD_LIBRARY_PATH",
                "HOME",
                "USER",
                "LOGNAME",
                "TMPDIR",
            ] {
                m.pass(name.as_bytes());
            }
            cmd.env_pass_common()
        }
        Op::Umask(mode) => {
            m.umask = Some(*mode);
            cmd.umask(*mode)
        }
        Op::Rlimit(r, soft, hard) => {
            let r = [
                Resource::Nofile,
                Resource::Core,
                Resource::Stack,
                Resource::Cpu,
            ][*r as usize];
            if soft > hard {
                m.bad.push(("rlimit", Invalid));
            }
            cmd.rlimit(r, *soft, *hard)
        }
        Op::Uid(u) => {
            m.uid = Some(*u);
            cmd.uid(*u)
        }
        Op::Gid(g) => {
            m.gid = Some(*g);
            cmd.gid(*g)
        }
        Op::Groups(g) => {
            m.groups = Some(g.clone());
            cmd.groups(g)
        }
        Op::Cwd(d) => {
            m.cwd = Some(d.clone());
            cmd.current_dir(os(d))
        }
        Op::Stdio(w, k) => {
            let s = match k {
                0 => Stdio::null(),
                1 => Stdio::inherit(),
                _ => Stdio::piped(),
            };
            match w {
                0 => cmd.stdin(s),
                1 => cmd.stdout(s),
                2 => cmd.stderr(s),
                _ => cmd.stderr_to_stdout(),
            }
        }
        Op::MapDevNull(dst) => {
            m.fd(*dst);
            cmd.map_fd(devnull(), *dst)
        }
        Op::PassDevNull => {
            // The command holds the fd, so its number stays taken.
            let fd: OwnedFd = devnull().into();
            m.fd(fd.as_raw_fd());
            cmd.pass_fd(fd)
        }
        Op::Flag(f) => match f {
            0 => cmd.forbid_fork(),
            1 => cmd.keep_signal_mask(),
            2 => cmd.keep_ignored_signals(),
            3 => cmd.new_session(),
            4 => cmd.no_new_privs(),
            5 => cmd.clear_caps(),
            _ => cmd.timeout(std::time::Duration::from_millis(5)),
        },
        Op::Unshare(k) => {
            let ns = match k {
                0 => Namespaces::MOUNT,
                1 => Namespaces::PID,
                2 => Namespaces::USER,
                _ => Namespaces::MOUNT | Namespaces::PID,
            };
            m.mount_ns |= ns.contains(Namespaces::MOUNT);
            m.pid_ns |= ns.contains(Namespaces::PID);
            cmd.unshare(ns)
        }
        Op::Mount(call) => {
            m.mounts.push(call.clone());
            let (src, dst) = (os(&call.src), os(&call.dst));
            let mut mount = match call.kind {
                0 => Mount::bind(src, dst),
                1 => Mount::bind_ro(src, dst),
                2 => Mount::tmpfs(dst),
                3 => Mount::proc(dst),
                4 => Mount::dev(dst),
                _ => Mount::remount_ro(dst),
            };
            if call.optional {
                mount = mount.optional();
            }
            if call.size {
                mount = mount.size(1 << 20);
            }
            if call.mode {
                mount = mount.mode(0o700);
            }
            cmd.mount(mount)
        }
        Op::Root(dir) => {
            m.roots.push(dir.clone());
            match dir {
                Some(d) => cmd.root(os(d)),
                None => cmd.root_tmpfs(),
            }
        }
    }
}

/// Words an error's item may start with: each names one kind of thing.
const ITEM_KINDS: &[&str] = &[
    "program",
    "argument",
    "environment",
    "working directory",
    "umask",
    "rlimit",
    "uid",
    "gid",
    "supplementary group",
    "child fd",
    "fd ",
    "stdin",
    "stdout",
    "stderr",
    "mount",
    "root",
];

/// Builds `program` with `ops` and checks the answer against the model.
fn check_sequence(program: &[u8], ops: &[Op]) -> Result<(), TestCaseError> {
    let mut cmd = Command::new(OsStr::from_bytes(program));
    let mut model = Model::new(program);
    for op in ops {
        cmd = apply(cmd, op, &mut model);
    }
    let model = model.finish();
    let line = cmd.to_string();
    let _ = format!("{cmd:?}");
    match cmd.build() {
        Ok(p) => {
            prop_assert!(
                model.bad.is_empty(),
                "accepted although {:?} ({line:?}, {ops:?})",
                model.bad
            );
            let _ = format!("{p:?}");
        }
        Err(e) => {
            let Error::Build {
                kind,
                item,
                problem,
            } = &e
            else {
                return Err(TestCaseError::fail(format!("not a build error: {e}")));
            };
            prop_assert_eq!(e.build_kind(), Some(*kind));
            let what = ITEM_KINDS.iter().find(|k| item.starts_with(*k));
            prop_assert!(
                what.is_some(),
                "the error does not name a known item: {item:?}: {problem} ({line:?})"
            );
            prop_assert!(!problem.is_empty());
            let what = what.unwrap();
            prop_assert!(
                model.allows(what, *kind),
                "{item:?} reported as {kind:?} ({problem}), but the input makes {:?} wrong \
                 (bare program name: {}) ({line:?}, {ops:?})",
                model.bad,
                model.bare_name
            );
        }
    }
    Ok(())
}

/// The calls of a mount sequence: mounts, roots, a pid namespace.
fn mount_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => mount_call().prop_map(Op::Mount),
        1 => prop_oneof![Just(None), mount_path().prop_map(Some)].prop_map(Op::Root),
        1 => Just(Op::Unshare(1)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_builder_sequences_never_panic(program in prop_oneof![Just(b"/bin/true".to_vec()), Just(b"true".to_vec()), bytes()],
                                            ops in proptest::collection::vec(op(), 0..16)) {
        check_sequence(&program, &ops)?;
    }

    /// Mounts and roots only, on a command with a mount namespace (mostly):
    /// where the first test rarely gets past a problem of another item.
    #[test]
    fn random_mount_sequences_never_panic(with_mount_ns in proptest::bool::weighted(0.9),
                                          ops in proptest::collection::vec(mount_op(), 0..6)) {
        let mut all = Vec::new();
        if with_mount_ns {
            all.push(Op::Unshare(0));
        }
        all.extend(ops);
        check_sequence(b"/bin/true", &all)?;
    }
}

/// Fuzz finding (target `builder`): `.gid(u32::MAX)` panicked in `build()`
/// (rustix's `Gid::from_raw` asserts against -1) in debug builds, and in
/// release builds would have asked the kernel to "leave unchanged".
#[test]
fn id_minus_one_is_a_build_error() {
    for cmd in [
        Command::new("/bin/true").uid(u32::MAX),
        Command::new("/bin/true").gid(u32::MAX),
        Command::new("/bin/true").groups(&[1, u32::MAX]),
    ] {
        match cmd.build() {
            Err(Error::Build {
                kind,
                item,
                problem,
            }) => {
                assert!(item.ends_with("4294967295"), "{item}");
                assert!(problem.contains("-1"), "{problem}");
                assert_eq!(kind, BuildErrorKind::Invalid, "{item}");
            }
            other => panic!("expected a build error, got {other:?}"),
        }
    }
}
