//! Seccomp filters on a system without `seccomp(2)`
//! (`safespawn::__compat::NO_SECCOMP_SYSCALL`: before Linux 3.17, or a
//! profile refusing it, answered `ENOSYS` or, with `REFUSE_WITH_EPERM`,
//! `EPERM`): `build()` probes, finds it missing, and the child installs
//! the filter with `prctl(PR_SET_SECCOMP)`. The child's `seccomp(2)`
//! answers the same, so a build that chose it would fail the spawn. Alone
//! in its binary: the flags and the probe's answer are process-wide.

mod common;

use common::{helper, output_of, Report};
use safespawn::{Command, Errno, Error, Seccomp, Stage, Stdio};

#[test]
fn without_seccomp_2_filters_are_installed_with_prctl() {
    safespawn::__force_compat(safespawn::__compat::NO_SECCOMP_SYSCALL);
    let prepared = helper("report,syscall=sched_yield")
        .seccomp(Seccomp::deny(["sched_yield"], libc::EXDEV))
        .stdout(Stdio::piped())
        .build()
        .unwrap();
    assert!(
        format!("{prepared:?}").contains("via: \"prctl\""),
        "{prepared:?}"
    );
    for paused in [false, true] {
        let child = if paused {
            prepared.spawn_paused().unwrap().resume().unwrap()
        } else {
            prepared.spawn().unwrap()
        };
        let out = output_of(child);
        let r = Report::parse(&out);
        assert_eq!(r.field("seccomp"), "2", "{out}");
        assert!(out.contains("syscall=sched_yield ret=-1 errno=18"), "{out}");
    }
    // A failed exec is still reported through the filter.
    let err = Command::new("/nonexistent/program")
        .seccomp(Seccomp::deny(["write"], libc::EPERM))
        .status()
        .unwrap_err();
    match err {
        Error::Spawn { stage, errno, .. } => {
            assert_eq!((stage, errno), (Stage::Exec, Errno::NOENT))
        }
        other => panic!("{other:?}"),
    }
}
