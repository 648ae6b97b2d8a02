//! Landlock on older kernels, emulated with the compat knobs: the ABI probe
//! answers 1 or 3 (`safespawn::__compat::LANDLOCK_ABI_*`), or there is no
//! landlock at all (`NO_LANDLOCK`, `ENOSYS`; with `REFUSE_WITH_EPERM`, a
//! container profile's `EPERM`). Strict `Landlock`s are refused naming the
//! rule and the right; best-effort ones run with what the ABI has, and are
//! refused where nothing would be enforced. Alone in its binary, one test:
//! the knobs are process-wide.

mod common;

use std::path::Path;

use common::landlock::{base, helper_path, kernel_abi, Tree};
use common::{helper, report_of, Report};
use safespawn::__compat::{LANDLOCK_ABI_1, LANDLOCK_ABI_3, NO_LANDLOCK, REFUSE_WITH_EPERM};
use safespawn::{BuildErrorKind, Command, Landlock};

fn refused(l: Landlock) -> String {
    let err = Command::new("/bin/true").landlock(l).build().unwrap_err();
    assert_eq!(err.build_kind(), Some(BuildErrorKind::Conflict), "{err}");
    err.to_string()
}

fn result<'a>(r: &'a Report, action: &str, path: &Path) -> &'a str {
    r.field(&format!("try-{action} {}", path.display()))
}

#[test]
fn older_abis_and_no_landlock_as_documented() {
    // No landlock: refused strict or best effort, saying why.
    for (flags, errno) in [
        (NO_LANDLOCK, "ENOSYS"),
        (NO_LANDLOCK | REFUSE_WITH_EPERM, "EPERM"),
    ] {
        safespawn::__force_compat(flags);
        for l in [
            Landlock::new().allow_read("/"),
            Landlock::new().allow_read("/").best_effort(),
            Landlock::new().allow_tcp_connect(443).best_effort(),
        ] {
            let e = refused(l);
            assert!(e.contains(errno) && e.contains("nothing"), "{e}");
        }
    }
    safespawn::__force_compat(0);
    let real = match kernel_abi() {
        Ok(abi) => abi,
        Err(errno) => {
            eprintln!("skipping the emulated ABIs: no landlock here (errno {errno})");
            return;
        }
    };

    if real >= 3 {
        // ABI 1 (Linux 5.13 to 5.18).
        safespawn::__force_compat(LANDLOCK_ABI_1);
        let t = Tree::new("compat-ll-abi1");
        let e = refused(t.landlock());
        assert!(e.contains("TRUNCATE") && e.contains("ABI 1"), "{e}");
        let e = refused(Landlock::new().allow_write(t.p("rw")));
        assert!(e.contains("REFER") && e.contains("TRUNCATE"), "{e}");
        assert!(e.contains(&format!("allow_write({:?})", t.p("rw"))), "{e}");
        // TCP alone on ABI 1 enforces nothing: refused even so.
        let e = refused(Landlock::new().allow_tcp_bind(8080).best_effort());
        assert!(e.contains("nothing") && e.contains("ABI 1"), "{e}");
        // Best effort: what ABI 1 has is enforced, what it lacks is not.
        let p = helper(&format!(
            "try-read={},try-write={},try-rename={}:{},try-truncate={}",
            t.p("none/f").display(),
            t.p("ro/f").display(),
            t.p("rw/a").display(),
            t.p("rw/sub/a").display(),
            t.p("ro/f").display(),
        ))
        .landlock(t.landlock().allow_tcp_connect(1).best_effort())
        .stdout(safespawn::Stdio::piped())
        .build()
        .unwrap();
        assert_eq!(p.landlock_abi(), Some(1));
        let r = common::report_from(&p);
        assert_eq!(result(&r, "read", &t.p("none/f")), "EACCES");
        assert_eq!(result(&r, "write", &t.p("ro/f")), "EACCES");
        // No REFER: a rename between directories is never allowed.
        let rename = format!("{}:{}", t.p("rw/a").display(), t.p("rw/sub/a").display());
        assert_eq!(r.field(&format!("try-rename {rename}")), "EXDEV");
        // No truncation rights: a read-only file can be truncated.
        assert_eq!(result(&r, "truncate", &t.p("ro/f")), "ok");
        assert_eq!(std::fs::read(t.p("ro/f")).unwrap(), b"");
    }

    if real >= 4 {
        // ABI 3 (Linux 6.2 to 6.6): files, but no TCP.
        safespawn::__force_compat(LANDLOCK_ABI_3);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let e = refused(Landlock::new().allow_tcp_connect(port));
        assert!(e.contains("CONNECT_TCP") && e.contains("ABI 3"), "{e}");
        let e = refused(base(helper_path()).allow_tcp_connect(port));
        assert!(e.contains(&format!("allow_tcp_connect({port})")), "{e}");
        // Strict files work; best effort with TCP leaves TCP open.
        let strict = Command::new("/bin/true")
            .landlock(base(helper_path()))
            .build()
            .unwrap();
        assert_eq!(strict.landlock_abi(), Some(3));
        let t = Tree::new("compat-ll-abi3");
        let r = report_of(
            helper(&format!(
                "try-connect={port},try-read={}",
                t.p("none/f").display()
            ))
            .landlock(t.landlock().allow_tcp_connect(1).best_effort()),
        );
        assert_eq!(r.field(&format!("try-connect {port}")), "ok");
        assert_eq!(result(&r, "read", &t.p("none/f")), "EACCES");
    }

    // The knobs off: the kernel's own ABI again (the probe was cached, the
    // cap is applied after it).
    safespawn::__force_compat(0);
    let p = Command::new("/bin/true")
        .landlock(Landlock::new().allow_read("/").best_effort())
        .build()
        .unwrap();
    assert_eq!(p.landlock_abi(), Some(real));
}
