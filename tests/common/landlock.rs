//! Landlock in the tests: the kernel's ABI asked directly, the rules any
//! program needs, and a scratch tree with one directory per kind of rule.

use std::path::{Path, PathBuf};

use safespawn::{BuildErrorKind, Command, Landlock};

use super::Scratch;

/// The landlock ABI this process gets, asked the kernel directly, or the
/// errno that says there is none.
pub fn kernel_abi() -> Result<u32, i32> {
    // SAFETY: the version query reads no memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32,
        )
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    } else {
        Ok(rc as u32)
    }
}

/// Whether a test needing `abi` can run here; says why not on stderr. On a
/// system without landlock, also checks that `build()` refuses it.
pub fn abi_or_skip(test: &str, abi: u32) -> bool {
    match kernel_abi() {
        Ok(have) if have >= abi => true,
        Ok(have) => {
            eprintln!("skipping {test}: it needs landlock ABI {abi}, this kernel has {have}");
            false
        }
        Err(errno) => {
            eprintln!("skipping {test}: no landlock here (errno {errno})");
            without_landlock_build_fails();
            false
        }
    }
}

/// Where there is no landlock, `build()` refuses every `Landlock`, strict
/// or best effort: nothing would be enforced.
pub fn without_landlock_build_fails() {
    for l in [
        Landlock::new().allow_read("/"),
        Landlock::new().allow_read("/").best_effort(),
    ] {
        let shown = l.to_string();
        let err = Command::new("/bin/true").landlock(l).build().unwrap_err();
        assert_eq!(err.build_kind(), Some(BuildErrorKind::Conflict), "{err}");
        assert!(err.to_string().contains(&shown), "{err}");
        assert!(err.to_string().contains("landlock"), "{err}");
    }
}

/// What any program needs to run: the system's directories readable and
/// executable (a dynamically linked program needs its interpreter and
/// libraries), `/etc` readable, the helper itself and `/proc` readable.
pub fn base(helper_path: &Path) -> Landlock {
    let mut l = Landlock::new();
    for dir in ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin"] {
        if Path::new(dir).exists() {
            l = l.allow_read(dir).allow_exec(dir);
        }
    }
    for dir in ["/etc", "/proc"] {
        if Path::new(dir).exists() {
            l = l.allow_read(dir);
        }
    }
    l.allow_exec(helper_path).allow_read(helper_path)
}

pub fn helper_path() -> &'static Path {
    Path::new(super::HELPER)
}

/// A scratch tree: `ro/` (allow_read), `rw/` (allow_write), `x/`
/// (allow_exec, holding a copy of `true`), `none/` (no rule), each with a
/// file `f`.
pub struct Tree {
    pub dir: Scratch,
}

impl Tree {
    pub fn new(name: &str) -> Tree {
        let dir = Scratch::new(name);
        for sub in ["ro", "rw", "x", "none"] {
            std::fs::create_dir(dir.join(sub)).unwrap();
            std::fs::write(dir.join(sub).join("f"), "content").unwrap();
        }
        std::fs::create_dir(dir.join("rw/sub")).unwrap();
        std::fs::write(dir.join("rw/a"), "a").unwrap();
        let tru = ["/usr/bin/true", "/bin/true"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("a true(1)");
        super::copy_by_another_process(Path::new(tru), &dir.join("x/prog"));
        super::copy_by_another_process(Path::new(tru), &dir.join("ro/prog"));
        Tree { dir }
    }

    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    pub fn landlock(&self) -> Landlock {
        base(helper_path())
            .allow_read(self.p("ro"))
            .allow_write(self.p("rw"))
            .allow_exec(self.p("x"))
    }
}
