//! Random confinement options (namespaces and id ranges, mounts, seccomp,
//! landlock, cgroups, the process knobs and labels) in random combinations:
//! `build()` never panics, and whatever it refuses is an `Error::Build`
//! that names an item and says what is wrong with it. What is accepted
//! depends on this system (landlock's ABI, cgroup v2, core scheduling), so
//! the property is about the shape of the answer, not which one; the
//! per-feature test files check the answers themselves.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use proptest::prelude::*;
use safespawn::{Command, Error, Landlock, Mount, Namespaces, Personality, Seccomp, Securebits};

#[derive(Debug, Clone)]
enum Op {
    Unshare(u8),
    MapRoot,
    UidMap(u32, u32, u32),
    GidMap(u32, u32, u32),
    Hostname(Vec<u8>),
    Mount(u8, Vec<u8>, Vec<u8>),
    RootTmpfs,
    Nice(i32),
    Cpus(Vec<usize>),
    Oom(i32),
    Personality(u32),
    Securebits(u32),
    SchedCore,
    Selinux(Vec<u8>),
    AppArmor(Vec<u8>),
    SeccompDeny(Vec<String>, i32),
    SeccompAllow(Vec<String>, i32),
    SeccompBpf(Vec<u8>),
    Landlock(Vec<(u8, Vec<u8>)>, bool),
    Cgroup(Vec<u8>),
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..10),
        2 => prop_oneof![
            Just(b"/usr".to_vec()),
            Just(b"/tmp".to_vec()),
            Just(b"/".to_vec()),
            Just(b"relative".to_vec()),
            Just(b"/a/../b".to_vec()),
            Just(b"/no/such/dir".to_vec()),
            Just(b"/sys/fs/cgroup/unified".to_vec()),
            Just(b"/proc".to_vec()),
            Just(b"/dev/null".to_vec()),
        ],
    ]
}

fn names() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(
        prop_oneof![
            Just("read".to_owned()),
            Just("write".to_owned()),
            Just("execve".to_owned()),
            Just("exit_group".to_owned()),
            Just("uname".to_owned()),
            Just("no_such_call".to_owned()),
            Just(String::new()),
            "[a-z_0-9]{0,12}",
        ],
        0..5,
    )
}

fn errno() -> impl Strategy<Value = i32> {
    prop_oneof![
        Just(1),
        Just(13),
        Just(0),
        Just(4095),
        Just(4096),
        Just(-1),
        any::<i32>()
    ]
}

fn range() -> impl Strategy<Value = (u32, u32, u32)> {
    (
        prop_oneof![Just(0u32), Just(1000), any::<u32>()],
        prop_oneof![Just(0u32), Just(100_000), any::<u32>()],
        prop_oneof![Just(0u32), Just(1), Just(65536), any::<u32>()],
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..8).prop_map(Op::Unshare),
        Just(Op::MapRoot),
        range().prop_map(|(a, b, c)| Op::UidMap(a, b, c)),
        range().prop_map(|(a, b, c)| Op::GidMap(a, b, c)),
        bytes().prop_map(Op::Hostname),
        (0u8..6, bytes(), bytes()).prop_map(|(k, s, d)| Op::Mount(k, s, d)),
        Just(Op::RootTmpfs),
        prop_oneof![
            Just(-21),
            Just(-20),
            Just(0),
            Just(19),
            Just(20),
            any::<i32>()
        ]
        .prop_map(Op::Nice),
        proptest::collection::vec(
            prop_oneof![
                Just(0usize),
                Just(1),
                Just(1023),
                Just(1024),
                any::<usize>()
            ],
            0..3
        )
        .prop_map(Op::Cpus),
        prop_oneof![
            Just(-1001),
            Just(-1000),
            Just(0),
            Just(1000),
            Just(1001),
            any::<i32>()
        ]
        .prop_map(Op::Oom),
        prop_oneof![Just(0u32), Just(0x0004_0000), Just(u32::MAX), any::<u32>()]
            .prop_map(Op::Personality),
        (0u32..0x1000).prop_map(Op::Securebits),
        Just(Op::SchedCore),
        bytes().prop_map(Op::Selinux),
        bytes().prop_map(Op::AppArmor),
        (names(), errno()).prop_map(|(n, e)| Op::SeccompDeny(n, e)),
        (names(), errno()).prop_map(|(n, e)| Op::SeccompAllow(n, e)),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Op::SeccompBpf),
        (
            proptest::collection::vec((0u8..5, bytes()), 0..3),
            any::<bool>()
        )
            .prop_map(|(r, b)| Op::Landlock(r, b)),
        bytes().prop_map(Op::Cgroup),
    ]
}

const KINDS: [Namespaces; 8] = [
    Namespaces::USER,
    Namespaces::MOUNT,
    Namespaces::PID,
    Namespaces::NET,
    Namespaces::UTS,
    Namespaces::IPC,
    Namespaces::CGROUP,
    Namespaces::TIME,
];

fn path(b: &[u8]) -> &std::path::Path {
    std::path::Path::new(OsStr::from_bytes(b))
}

fn apply(cmd: Command, op: &Op) -> Command {
    match op {
        Op::Unshare(k) => cmd.unshare(KINDS[usize::from(*k) % KINDS.len()]),
        Op::MapRoot => cmd.map_root(),
        Op::UidMap(a, b, c) => cmd.uid_map(*a, *b, *c),
        Op::GidMap(a, b, c) => cmd.gid_map(*a, *b, *c),
        Op::Hostname(h) => cmd.hostname(OsStr::from_bytes(h)),
        Op::Mount(k, s, d) => cmd.mount(match k {
            0 => Mount::bind(path(s), path(d)),
            1 => Mount::bind_ro(path(s), path(d)).optional(),
            2 => Mount::tmpfs(path(d)).size(u64::from(s.len() as u32)),
            3 => Mount::proc(path(d)),
            4 => Mount::dev(path(d)),
            _ => Mount::remount_ro(path(d)),
        }),
        Op::RootTmpfs => cmd.root_tmpfs(),
        Op::Nice(n) => cmd.nice(*n),
        Op::Cpus(c) => cmd.cpu_affinity(c),
        Op::Oom(n) => cmd.oom_score_adj(*n),
        Op::Personality(p) => cmd.personality(Personality::from_raw(*p)),
        Op::Securebits(bits) => {
            let mut s = Securebits::NOROOT;
            for (i, b) in [
                Securebits::NOROOT_LOCKED,
                Securebits::NO_SETUID_FIXUP,
                Securebits::NO_SETUID_FIXUP_LOCKED,
                Securebits::KEEP_CAPS,
                Securebits::KEEP_CAPS_LOCKED,
                Securebits::NO_CAP_AMBIENT_RAISE,
                Securebits::NO_CAP_AMBIENT_RAISE_LOCKED,
            ]
            .into_iter()
            .enumerate()
            {
                if bits & (1 << i) != 0 {
                    s |= b;
                }
            }
            cmd.securebits(s)
        }
        Op::SchedCore => cmd.sched_core_new(),
        Op::Selinux(l) => cmd.selinux_exec_label(OsStr::from_bytes(l)),
        Op::AppArmor(p) => cmd.apparmor_profile(OsStr::from_bytes(p)),
        Op::SeccompDeny(n, e) => cmd.seccomp(Seccomp::deny(n.clone(), *e)),
        Op::SeccompAllow(n, e) => cmd.seccomp(Seccomp::allow(n.clone(), *e)),
        Op::SeccompBpf(b) => cmd.seccomp(Seccomp::from_bpf(b.clone())),
        Op::Landlock(rules, best) => {
            let mut l = Landlock::new();
            for (k, p) in rules {
                l = match k {
                    0 => l.allow_read(path(p)),
                    1 => l.allow_write(path(p)),
                    2 => l.allow_exec(path(p)),
                    3 => l.allow_tcp_bind(p.len() as u16),
                    _ => l.allow_tcp_connect(p.first().copied().unwrap_or(0).into()),
                };
            }
            if *best {
                l = l.best_effort();
            }
            cmd.landlock(l)
        }
        Op::Cgroup(d) => cmd.cgroup(path(d)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn random_confinement_never_panics_and_every_refusal_names_an_item(
        ops in proptest::collection::vec(op(), 0..8)
    ) {
        let mut cmd = Command::new("/bin/true");
        for op in &ops {
            cmd = apply(cmd, op);
        }
        let _ = format!("{cmd:?} {cmd}");
        match cmd.build() {
            Ok(p) => {
                let _ = format!("{p:?}");
            }
            Err(e @ Error::Build { .. }) => {
                let Error::Build { item, problem, .. } = &e else { unreachable!() };
                prop_assert!(!item.is_empty(), "no item: {e} ({ops:?})");
                prop_assert!(!problem.is_empty(), "no problem: {e} ({ops:?})");
                prop_assert!(e.build_kind().is_some());
                let shown = e.to_string();
                prop_assert!(shown.contains(item.as_str()), "{shown}");
            }
            Err(other) => {
                return Err(TestCaseError::fail(format!("not a build error: {other} ({ops:?})")));
            }
        }
    }
}
