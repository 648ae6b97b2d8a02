//! Builder operations decoded from arbitrary bytes, against a model of what
//! the command should hold: `build()` never panics, fails exactly when the
//! model says some item is bad (and then with `Error::Build`), and the
//! `Display` line reads back through a strict shell parser as the model's
//! environment followed by argv. File descriptors given to a command are
//! never leaked, whether the build succeeds or not.
#![no_main]

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use safespawn::{Command, Error, Resource, Stdio};
use safespawn_fuzz::check_line;

/// A file the commands borrow with `pass_fd_shared`.
fn shared() -> &'static std::fs::File {
    static F: OnceLock<std::fs::File> = OnceLock::new();
    F.get_or_init(|| std::fs::File::open("/dev/null").unwrap())
}

fn devnull() -> OwnedFd {
    std::fs::File::open("/dev/null").unwrap().into()
}

#[derive(Default)]
struct Model {
    env_explicit: bool,
    env: Vec<(Vec<u8>, Vec<u8>)>,
    argv: Vec<Vec<u8>>,
    /// Child fd numbers planned by pass/map (stdio is 0-2).
    targets: Vec<RawFd>,
    /// Why the build must fail, if it must.
    bad: Option<String>,
    /// A bare program name: PATH lookup may fail.
    lookup: bool,
    /// The last umask and working directory set (a later call replaces).
    umask: Option<u32>,
    cwd: Option<Vec<u8>>,
    uid: Option<u32>,
    gid: Option<u32>,
    groups: Vec<u32>,
}

impl Model {
    fn set(&mut self, k: Vec<u8>, v: Vec<u8>) {
        self.env_explicit = true;
        match self.env.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => self.env.push((k, v)),
        }
    }
    fn fail(&mut self, why: impl Into<String>) {
        self.bad.get_or_insert(why.into());
    }
    fn fd(&mut self, dst: RawFd) {
        if dst < 3 || self.targets.contains(&dst) {
            self.fail(format!("fd {dst}"));
        }
        self.targets.push(dst);
    }
}

fn bytes<'a>(u: &mut Unstructured<'a>) -> Result<&'a [u8]> {
    let len = u.int_in_range(0..=24)?;
    let len = if u.ratio(1, 16)? { len * 40 } else { len };
    u.bytes(len.min(u.len()))
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let mut m = Model::default();
    let program: &[u8] = match u.int_in_range(0..=3)? {
        0 => b"/nonexistent/prog",
        1 => b"",
        2 => b"true",
        _ => bytes(u)?,
    };
    if !program.contains(&b'/') {
        m.lookup = true;
    }
    if program.is_empty() {
        m.fail("empty program");
    }
    m.argv.push(program.to_vec());
    let mut cmd = Command::new(OsStr::from_bytes(program));
    let mut kept_fds = 0;
    while !u.is_empty() {
        let op = u.int_in_range(0..=21)?;
        cmd = match op {
            0 => {
                let a = bytes(u)?;
                m.argv.push(a.to_vec());
                cmd.arg(OsStr::from_bytes(a))
            }
            1 => {
                let (a, b) = (bytes(u)?, bytes(u)?);
                m.argv.push(a.to_vec());
                m.argv.push(b.to_vec());
                cmd.args([OsStr::from_bytes(a), OsStr::from_bytes(b)])
            }
            2 => {
                let (a, b) = (bytes(u)?, bytes(u)?);
                let mut p = a.to_vec();
                p.push(b'=');
                p.extend_from_slice(b);
                m.argv.push(p);
                cmd.arg_pair(OsStr::from_bytes(a), OsStr::from_bytes(b))
            }
            3 => {
                let n: i64 = u.arbitrary()?;
                m.argv.push(format!("-n{n}").into_bytes());
                cmd.arg_fmt(format_args!("-n{n}"))
            }
            4 | 5 => {
                let (k, v) = (bytes(u)?, bytes(u)?);
                m.set(k.to_vec(), v.to_vec());
                cmd.env(OsStr::from_bytes(k), OsStr::from_bytes(v))
            }
            6 => {
                let s = bytes(u)?;
                match s.iter().position(|&b| b == b'=') {
                    Some(eq) => m.set(s[..eq].to_vec(), s[eq + 1..].to_vec()),
                    None => {
                        m.env_explicit = true;
                        m.fail("env string without =");
                    }
                }
                cmd.env_string(OsStr::from_bytes(s))
            }
            7 => {
                // Remove one of the set names, or an arbitrary one.
                let k = if !m.env.is_empty() && u.arbitrary()? {
                    let i = u.choose_index(m.env.len())?;
                    m.env[i].0.clone()
                } else {
                    bytes(u)?.to_vec()
                };
                m.env.retain(|(key, _)| *key != k);
                cmd.env_remove(OsStr::from_bytes(&k))
            }
            8 => {
                m.env_explicit = true;
                m.env.clear();
                cmd.env_clear()
            }
            9 => {
                let name: &str = u.choose(&["PATH", "HOME", "SAFESPAWN_FUZZ_UNSET", "A=B", ""])?;
                m.env_explicit = true;
                if let Some(v) = std::env::var_os(name) {
                    m.set(name.as_bytes().to_vec(), v.as_bytes().to_vec());
                }
                cmd.env_pass(name)
            }
            10 => {
                let mode: u32 = u.int_in_range(0..=0o1777)?;
                m.umask = Some(mode);
                cmd.umask(mode)
            }
            11 => {
                let r = *u.choose(&[
                    Resource::Nofile,
                    Resource::Core,
                    Resource::Cpu,
                    Resource::Fsize,
                ])?;
                let soft = *u.choose(&[0u64, 1, 4096, u64::MAX])?;
                let hard = *u.choose(&[0u64, 1, 4096, u64::MAX])?;
                if soft > hard {
                    m.fail("rlimit");
                }
                cmd.rlimit(r, soft, hard)
            }
            12 => {
                let any: u32 = u.arbitrary()?;
                let id = *u.choose(&[0, 65534, u32::MAX, any])?;
                m.uid = Some(id);
                cmd.uid(id)
            }
            13 => {
                let any: u32 = u.arbitrary()?;
                let id = *u.choose(&[0, 65534, u32::MAX, any])?;
                m.gid = Some(id);
                cmd.gid(id)
            }
            14 => {
                let n = u.int_in_range(0..=4)?;
                let g: Vec<u32> = (0..n).map(|_| u.arbitrary()).collect::<Result<_>>()?;
                m.groups = g.clone();
                cmd.groups(&g)
            }
            15 => {
                let dir = bytes(u)?;
                m.cwd = Some(dir.to_vec());
                cmd.current_dir(OsStr::from_bytes(dir))
            }
            16 => {
                let which = u.int_in_range(0..=2)?;
                let s = || match which {
                    0 => Stdio::null(),
                    1 => Stdio::inherit(),
                    _ => Stdio::piped(),
                };
                match u.int_in_range(0..=3)? {
                    0 => cmd.stdin(s()),
                    1 => cmd.stdout(s()),
                    2 => cmd.stderr(s()),
                    _ => cmd.stderr_to_stdout(),
                }
            }
            17 if kept_fds < 6 => {
                kept_fds += 1;
                let dst: RawFd = u.int_in_range(-2..=24)?;
                if dst < 0 {
                    m.fail("negative fd");
                }
                m.fd(dst);
                cmd.map_fd(devnull(), dst)
            }
            18 if kept_fds < 6 => {
                kept_fds += 1;
                let fd = devnull();
                m.fd(fd.as_raw_fd());
                cmd.pass_fd(fd)
            }
            19 if kept_fds < 6 => {
                kept_fds += 1;
                m.fd(shared().as_raw_fd());
                cmd.pass_fd_shared(shared().as_fd())
            }
            20 => cmd.timeout(Duration::from_millis(u.arbitrary::<u32>()?.into())),
            _ => match u.int_in_range(0..=5)? {
                0 => cmd.forbid_fork(),
                1 => cmd.keep_signal_mask(),
                2 => cmd.keep_ignored_signals(),
                3 => cmd.new_session(),
                4 => cmd.no_new_privs(),
                _ => cmd.clear_caps(),
            },
        };
    }
    if m.uid == Some(u32::MAX) || m.gid == Some(u32::MAX) || m.groups.contains(&u32::MAX) {
        m.fail("id -1");
    }
    if m.umask.is_some_and(|u| u > 0o777) {
        m.fail("umask");
    }
    if m.cwd.as_ref().is_some_and(|d| d.contains(&0)) {
        m.fail("cwd");
    }
    if let Some(i) = m.argv.iter().position(|a| a.contains(&0)) {
        m.fail(format!("argument {i}"));
    }
    let bad_env = |(k, v): &(Vec<u8>, Vec<u8>)| {
        k.is_empty() || k.contains(&0) || k.contains(&b'=') || v.contains(&0)
    };
    if m.env_explicit && m.env.iter().any(bad_env) {
        m.fail("env");
    }

    let line = cmd.to_string();
    if let Err(e) = check_line(&line, &m.env, &m.argv) {
        panic!("{e}");
    }
    let debug = format!("{cmd:?}");
    assert!(!debug.is_empty());
    match cmd.build() {
        Ok(p) => {
            assert!(m.bad.is_none(), "accepted: {:?}; line {line:?}", m.bad);
            let _ = format!("{p:?}");
        }
        Err(Error::Build { item, problem, .. }) => {
            assert!(!item.is_empty() && !problem.is_empty());
            assert!(
                m.bad.is_some() || m.lookup,
                "refused a valid command: {item}: {problem}; line {line:?}"
            );
        }
        Err(other) => panic!("not a build error: {other}"),
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    static BASELINE: OnceLock<usize> = OnceLock::new();
    let _ = shared();
    let _ = run(&mut Unstructured::new(data));
    // Every 4096 runs: no fd leaked by a command, built or not.
    if RUNS
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        .is_multiple_of(4096)
    {
        let open = std::fs::read_dir("/proc/self/fd").unwrap().count();
        let base = *BASELINE.get_or_init(|| open);
        assert!(open <= base + 2, "fd leak: {open} open, {base} at start");
    }
});
