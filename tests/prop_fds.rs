//! Random fd plans give exactly the planned child fd table, or a build
//! error: never a wrong table.
//!
//! Sources live at fixed numbers 100..112 (placed with dup2, without
//! `O_CLOEXEC`) and targets are drawn from the same numbers, from 3..6 and
//! from the stdio numbers 0..2, so plans contain swaps (100->101, 101->100),
//! chains (100->101->102), sources that are targets, and collisions. The
//! tests of this file take `FDS`, so nothing else uses those numbers.

mod common;

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use common::helper;
use proptest::prelude::*;
use safespawn::{BuildErrorKind, Error, Stdio};

const BASE: RawFd = 100;

static FDS: std::sync::Mutex<()> = std::sync::Mutex::new(());
static SPAWNED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
const SLOTS: usize = 12;
const FILES: usize = 6;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Map(RawFd),
    Pass,
    Shared,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => prop_oneof![
            1 => 0 as RawFd..3,
            3 => 3 as RawFd..7,
            8 => BASE..BASE + SLOTS as RawFd,
        ].prop_map(Kind::Map),
        1 => Just(Kind::Pass),
        1 => Just(Kind::Shared),
    ]
}

/// `FILES` distinct files, in a scratch directory that goes away with the
/// returned `Scratch`.
fn files() -> (common::Scratch, Vec<PathBuf>) {
    let dir = common::Scratch::new("prop-fds");
    let paths = (0..FILES)
        .map(|i| {
            let p = dir.join(format!("f{i}"));
            std::fs::write(&p, b"").unwrap();
            p
        })
        .collect();
    (dir, paths)
}

/// Opens `path` at exactly `n`, not close-on-exec.
fn open_at(path: &PathBuf, n: RawFd) -> OwnedFd {
    let f = std::fs::File::open(path).unwrap();
    // SAFETY: dup2 onto a number this test owns (nothing else here uses it).
    let r = unsafe { libc::dup2(f.as_raw_fd(), n) };
    assert_eq!(r, n);
    // SAFETY: `n` is now an open fd that only this value owns.
    unsafe { OwnedFd::from_raw_fd(n) }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn fd_plans_give_exactly_the_planned_table(
        ops in proptest::collection::vec((0..SLOTS, 0..FILES, kind()), 0..8)
    ) {
        let _g = FDS.lock().unwrap_or_else(|e| e.into_inner());
        let (_dir, paths) = files();
        let mut cmd = helper("report").stdout(Stdio::piped());
        let mut used = [false; SLOTS];
        let mut shared: Vec<OwnedFd> = Vec::new();
        // child fd -> file
        let mut want: BTreeMap<RawFd, usize> = BTreeMap::new();
        let mut collides = false;
        let mut plan = Vec::new();
        for &(slot, file, kind) in &ops {
            if std::mem::replace(&mut used[slot], true) {
                continue; // one owner per source number
            }
            let n = BASE + slot as RawFd;
            let fd = open_at(&paths[file], n);
            let dst = match kind {
                Kind::Map(dst) => { cmd = cmd.map_fd(fd, dst); dst }
                Kind::Pass => { cmd = cmd.pass_fd(fd); n }
                Kind::Shared => {
                    // SAFETY: `fd` stays open (in `shared`) until after the spawn.
                    cmd = cmd.pass_fd_shared(unsafe { BorrowedFd::borrow_raw(n) });
                    shared.push(fd);
                    n
                }
            };
            plan.push((n, dst));
            if dst < 3 || want.insert(dst, file).is_some() {
                collides = true;
            }
        }
        match cmd.build() {
            Err(Error::Build { kind, item, problem }) => {
                prop_assert!(collides, "valid plan {plan:?} refused: {item}: {problem}");
                // Every target drawn is a valid number (0..BASE+SLOTS, below
                // RLIMIT_NOFILE) and every source is open: the only thing a
                // plan can get wrong is a collision.
                prop_assert_eq!(kind, BuildErrorKind::Collision, "{}: {}", item, problem);
                prop_assert!(item.starts_with("child fd"), "{item}");
                prop_assert!(problem.contains("collides"), "{problem}");
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
            Ok(prepared) => {
                prop_assert!(!collides, "colliding plan {plan:?} accepted");
                let r = common::report_from(&prepared);
                let mut expected: Vec<(RawFd, String)> = vec![
                    (0, "/dev/null".into()),
                    (1, "PIPE".into()),
                    (2, "/dev/null".into()),
                ];
                expected.extend(want.iter().map(|(d, f)| (*d, paths[*f].display().to_string())));
                let got: Vec<(RawFd, String)> = r
                    .fds
                    .iter()
                    .map(|(n, t)| (*n, if t.starts_with("pipe:") { "PIPE".into() } else { t.clone() }))
                    .collect();
                prop_assert_eq!(got, expected, "plan {:?}", plan);
                let n = SPAWNED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if std::env::var_os("SAFESPAWN_PROP_COUNT").is_some() {
                    eprintln!("spawned plan #{n}: {plan:?}");
                }
            }
        }
        drop(shared);
        // Every source number is closed again: nothing leaked.
        for slot in 0..SLOTS {
            // SAFETY: only queried.
            let open = rustix::io::fcntl_getfd(unsafe { BorrowedFd::borrow_raw(BASE + slot as RawFd) }).is_ok();
            prop_assert!(!open, "fd {} still open after the command was dropped", BASE + slot as RawFd);
        }
    }
}

/// Explicit swap and chain, and a check that the random plans above were
/// not all collisions.
#[test]
fn swap_and_chain() {
    let _g = FDS.lock().unwrap_or_else(|e| e.into_inner());
    let (_dir, paths) = files();
    // 100 <-> 101 swap; 102 -> 103 -> 104 chain; 105 stays (pass_fd).
    let cmd = helper("report")
        .stdout(Stdio::piped())
        .map_fd(open_at(&paths[0], 100), 101)
        .map_fd(open_at(&paths[1], 101), 100)
        .map_fd(open_at(&paths[2], 102), 103)
        .map_fd(open_at(&paths[3], 103), 104)
        .pass_fd(open_at(&paths[4], 105));
    let r = common::report_from(&cmd.build().unwrap());
    let t = |n: RawFd| r.fds.get(&n).cloned().unwrap_or_default();
    assert_eq!(t(101), paths[0].display().to_string());
    assert_eq!(t(100), paths[1].display().to_string());
    assert_eq!(t(103), paths[2].display().to_string());
    assert_eq!(t(104), paths[3].display().to_string());
    assert_eq!(t(105), paths[4].display().to_string());
    assert_eq!(r.fd_numbers(), vec![0, 1, 2, 100, 101, 103, 104, 105]);
}
