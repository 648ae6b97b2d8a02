//! Really spawns the test helper with fuzzed argv, environment and fd plan
//! (bounded sizes) and compares its report with the plan: argv and env byte
//! for byte, and the fd table exactly (which numbers are open, and which file
//! each one is). A colliding plan must be a build error instead. No zombie
//! and no fd may be left behind.
//!
//! Needs `SAFESPAWN_TESTHELPER`, the path of the `safespawn-testhelper`
//! binary (`fuzz/run.sh` builds it and sets it).
#![no_main]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use safespawn::{Command, Error, Stdio};

const FILES: usize = 5;

struct Setup {
    helper: PathBuf,
    /// A scratch directory of this process, removed when it exits.
    dir: PathBuf,
    files: Vec<PathBuf>,
}

static SETUP: OnceLock<Setup> = OnceLock::new();

extern "C" {
    /// The C library's `atexit(3)`: libFuzzer ends a campaign with `exit`,
    /// which runs no Rust destructors of statics.
    fn atexit(f: extern "C" fn()) -> std::ffi::c_int;
}

extern "C" fn remove_scratch() {
    if let Some(s) = SETUP.get() {
        let _ = std::fs::remove_dir_all(&s.dir);
    }
}

fn setup() -> &'static Setup {
    SETUP.get_or_init(|| {
        let helper = std::env::var_os("SAFESPAWN_TESTHELPER")
            .expect("set SAFESPAWN_TESTHELPER to the safespawn-testhelper binary (see fuzz/run.sh)")
            .into();
        let dir = std::env::temp_dir().join(format!("safespawn-fuzz-spawn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // SAFETY: registers a plain function that only removes a directory.
        unsafe { atexit(remove_scratch) };
        let files = (0..FILES)
            .map(|i| {
                let p = dir.join(format!("f{i}"));
                std::fs::write(&p, b"").unwrap();
                p
            })
            .collect();
        Setup { helper, dir, files }
    })
}

fn unesc(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn no_nul(b: &[u8]) -> Vec<u8> {
    b.iter().map(|&c| if c == 0 { 1 } else { c }).collect()
}

fn bytes<'a>(u: &mut Unstructured<'a>) -> Result<&'a [u8]> {
    let len = u.int_in_range(0..=32)?;
    u.bytes(len.min(u.len()))
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let s = setup();
    let mut argv: Vec<Vec<u8>> = Vec::new();
    let mut env: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    // child fd -> file index
    let mut want: BTreeMap<RawFd, usize> = BTreeMap::new();
    let mut collides = false;
    let mut cmd = Command::new(&s.helper).arg("::report").env_clear();
    for _ in 0..u.int_in_range(0..=6)? {
        let a = no_nul(bytes(u)?);
        cmd = cmd.arg(OsStr::from_bytes(&a));
        argv.push(a);
    }
    for _ in 0..u.int_in_range(0..=4)? {
        let k: Vec<u8> = bytes(u)?
            .iter()
            .copied()
            .filter(|&c| c != 0 && c != b'=')
            .collect();
        let v = no_nul(bytes(u)?);
        if k.is_empty() {
            continue;
        }
        cmd = cmd.env(OsStr::from_bytes(&k), OsStr::from_bytes(&v));
        env.insert(k, v);
    }
    let mut owned_numbers: Vec<RawFd> = Vec::new();
    for _ in 0..u.int_in_range(0..=5)? {
        let file = u.choose_index(FILES)?;
        let fd: OwnedFd = std::fs::File::open(&s.files[file]).unwrap().into();
        let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
        owned_numbers.push(raw);
        let dst = if u.arbitrary()? {
            cmd = cmd.pass_fd(fd);
            raw
        } else {
            // Targets among the low numbers, where the sources also live:
            // swaps and chains happen.
            let dst = u.int_in_range(0..=14)?;
            cmd = cmd.map_fd(fd, dst);
            dst
        };
        if dst < 3 || want.insert(dst, file).is_some() {
            collides = true;
        }
    }
    let cmd = cmd.stdout(Stdio::piped());
    let prepared = match cmd.build() {
        Ok(p) => {
            assert!(!collides, "a colliding fd plan was accepted");
            p
        }
        Err(Error::Build { item, .. }) => {
            assert!(collides, "refused a valid plan: {item}");
            assert!(
                item.contains("fd"),
                "the error does not name the fd: {item}"
            );
            return Ok(());
        }
        Err(e) => panic!("unexpected error {e}"),
    };
    let mut child = prepared.spawn().expect("spawn");
    let mut out = String::new();
    child
        .take_stdout()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let fin = child.wait().unwrap();
    assert!(fin.success(), "helper failed: {:?}", fin.status());
    drop(prepared);

    let mut got_args = Vec::new();
    let mut got_env = BTreeMap::new();
    let mut got_fds: BTreeMap<RawFd, Vec<u8>> = BTreeMap::new();
    for line in out.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "arg" => got_args.push(unesc(v)),
            "env" => {
                let e = unesc(v);
                let eq = e.iter().position(|&c| c == b'=').unwrap();
                got_env.insert(e[..eq].to_vec(), e[eq + 1..].to_vec());
            }
            "fd" => {
                let (n, t) = v.split_once(' ').unwrap_or((v, ""));
                got_fds.insert(n.parse().unwrap(), unesc(t));
            }
            _ => {}
        }
    }
    assert_eq!(got_args, argv, "argv differs");
    assert_eq!(got_env, env, "env differs");
    let numbers: Vec<RawFd> = got_fds.keys().copied().collect();
    let mut expected: Vec<RawFd> = vec![0, 1, 2];
    expected.extend(want.keys());
    assert_eq!(
        numbers, expected,
        "fd table differs (sources {owned_numbers:?})"
    );
    assert_eq!(got_fds[&0], b"/dev/null");
    assert!(got_fds[&1].starts_with(b"pipe:"));
    assert_eq!(got_fds[&2], b"/dev/null");
    for (dst, file) in &want {
        assert_eq!(
            got_fds[dst],
            s.files[*file].as_os_str().as_bytes(),
            "fd {dst} points to the wrong file"
        );
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    static BASELINE: OnceLock<usize> = OnceLock::new();
    let _ = run(&mut Unstructured::new(data));
    if RUNS
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        .is_multiple_of(256)
    {
        let open = std::fs::read_dir("/proc/self/fd").unwrap().count();
        let base = *BASELINE.get_or_init(|| open);
        assert!(open <= base + 2, "fd leak: {open} open, {base} at start");
        // No zombie: every child was reaped.
        let me = std::process::id().to_string();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            let f: Vec<&str> = stat
                .rsplit_once(')')
                .map(|(_, r)| r)
                .unwrap_or("")
                .split_whitespace()
                .collect();
            assert!(
                !(f.first() == Some(&"Z") && f.get(1) == Some(&me.as_str())),
                "zombie child"
            );
        }
    }
});
