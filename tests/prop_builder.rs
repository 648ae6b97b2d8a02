//! Random builder call sequences never panic, and `build()` either succeeds
//! or names the bad item. Also the regression cases the fuzz targets found.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use proptest::prelude::*;
use safespawn::{Command, Error, Resource, Stdio};

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
    ]
}

fn apply(cmd: Command, op: &Op) -> Command {
    let os = |b: &Vec<u8>| OsStr::from_bytes(b).to_owned();
    let devnull = || std::fs::File::open("/dev/null").unwrap();
    match op {
        Op::Arg(a) => cmd.arg(os(a)),
        Op::ArgPair(a, b) => cmd.arg_pair(os(a), os(b)),
        Op::Env(k, v) => cmd.env(os(k), os(v)),
        Op::EnvString(s) => cmd.env_string(os(s)),
        Op::EnvRemove(k) => cmd.env_remove(os(k)),
        Op::EnvClear => cmd.env_clear(),
        // env_pass reads the parent's environment: a NUL or '=' in the name
        // must not make it panic.
        Op::EnvPass(k) => cmd.env_pass(os(k)),
        Op::EnvPassCommon => cmd.env_pass_common(),
        Op::Umask(m) => cmd.umask(*m),
        Op::Rlimit(r, s, h) => {
            let r = [
                Resource::Nofile,
                Resource::Core,
                Resource::Stack,
                Resource::Cpu,
            ][*r as usize];
            cmd.rlimit(r, *s, *h)
        }
        Op::Uid(u) => cmd.uid(*u),
        Op::Gid(g) => cmd.gid(*g),
        Op::Groups(g) => cmd.groups(g),
        Op::Cwd(d) => cmd.current_dir(os(d)),
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
        Op::MapDevNull(dst) => cmd.map_fd(devnull(), *dst),
        Op::PassDevNull => cmd.pass_fd(devnull().into()),
        Op::Flag(f) => match f {
            0 => cmd.forbid_fork(),
            1 => cmd.keep_signal_mask(),
            2 => cmd.keep_ignored_signals(),
            3 => cmd.new_session(),
            4 => cmd.no_new_privs(),
            5 => cmd.clear_caps(),
            _ => cmd.timeout(std::time::Duration::from_millis(5)),
        },
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
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_builder_sequences_never_panic(program in prop_oneof![Just(b"/bin/true".to_vec()), Just(b"true".to_vec()), bytes()],
                                            ops in proptest::collection::vec(op(), 0..16)) {
        let mut cmd = Command::new(OsStr::from_bytes(&program));
        for op in &ops {
            cmd = apply(cmd, op);
        }
        let line = cmd.to_string();
        let _ = format!("{cmd:?}");
        match cmd.build() {
            Ok(p) => { let _ = format!("{p:?}"); }
            Err(Error::Build { item, problem, .. }) => {
                prop_assert!(ITEM_KINDS.iter().any(|k| item.starts_with(k)),
                    "the error does not name a known item: {item:?}: {problem} ({line:?})");
                prop_assert!(!problem.is_empty());
            }
            Err(other) => prop_assert!(false, "not a build error: {other}"),
        }
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
            Err(Error::Build { item, problem, .. }) => {
                assert!(item.ends_with("4294967295"), "{item}");
                assert!(problem.contains("-1"), "{problem}");
            }
            other => panic!("expected a build error, got {other:?}"),
        }
    }
}
