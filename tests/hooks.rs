//! `pre_exec` hooks: their order after the privilege steps, a failing
//! hook, and the fork path they need.

mod common;

use common::{helper, report_of};
use rustix::fs::Mode;
use safespawn::{BuildErrorKind, Errno, Error, Stage};

/// A hook whose effect depends on the hooks before it: it shifts the umask
/// left by one octal digit and adds `digit`.
fn shift_in(digit: u32) -> impl Fn() -> Result<(), Errno> + Send + Sync + 'static {
    move || {
        let old = rustix::process::umask(Mode::empty()).as_raw_mode();
        rustix::process::umask(Mode::from_raw_mode(((old << 3) | digit) & 0o777));
        Ok(())
    }
}

#[test]
fn hooks_run_in_order_after_the_privilege_steps() {
    // SAFETY: the hooks only make raw system calls.
    let cmd = unsafe {
        helper("report")
            .umask(0)
            .pre_exec(shift_in(1))
            .pre_exec(shift_in(2))
            .pre_exec(shift_in(3))
    };
    // umask(0) first (a privilege step), then 1, 2, 3 in order: 0123.
    // Any other order, or the umask step after the hooks, gives another mask.
    assert_eq!(report_of(cmd).field("umask"), "0123");
}

#[test]
fn a_failing_hook_reports_its_errno_and_stops_the_child() {
    let dir = std::env::temp_dir().join(format!("safespawn-hook-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let marker: &'static std::ffi::CStr = Box::leak(
        std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
            .unwrap()
            .into_boxed_c_str(),
    );
    // SAFETY: the hooks only make raw system calls.
    let cmd = unsafe {
        helper("report")
            .pre_exec(|| Err(Errno::DOM))
            // Never reached: it would create the directory.
            .pre_exec(move || rustix::fs::mkdir(marker, Mode::from_raw_mode(0o700)))
    };
    match cmd.status() {
        Err(Error::Spawn { stage, errno, .. }) => {
            assert_eq!((stage, errno), (Stage::Hook, Errno::DOM))
        }
        other => panic!("{other:?}"),
    }
    assert!(!dir.exists(), "a hook after the failing one ran");
}

#[test]
fn forbid_fork_with_a_hook_is_a_build_error() {
    // SAFETY: the hook does nothing.
    let cmd = unsafe { helper("report").forbid_fork().pre_exec(|| Ok(())) };
    match cmd.build() {
        Err(Error::Build { item, kind, .. }) => {
            assert_eq!(item, "pre_exec");
            assert_eq!(kind, BuildErrorKind::Conflict);
        }
        other => panic!("{other:?}"),
    }
}
