//! The session: a new session (`new_session`), a process group
//! (`process_group`) and the parent-death signal, read back from the
//! child's /proc/self/stat through the test helper.

mod common;

use common::{helper_for_any_user, own_session, report_of};
use safespawn::{BuildErrorKind, Error, Signal};

#[test]
fn new_session_makes_the_child_session_and_group_leader() {
    let r = report_of(helper_for_any_user("report").new_session());
    assert_eq!(r.field("sid"), r.field("pid"));
    assert_eq!(r.field("pgid"), r.field("pid"));
}

#[test]
fn process_group_zero_makes_the_child_group_leader_in_our_session() {
    let ours = own_session();
    let control = report_of(helper_for_any_user("report"));
    assert_ne!(control.field("pgid"), control.field("pid"));
    let r = report_of(helper_for_any_user("report").process_group(0));
    assert_eq!(r.field("pgid"), r.field("pid"));
    assert_eq!(r.field("sid"), ours);
}

#[test]
fn bad_process_group_requests_are_build_errors() {
    let e = helper_for_any_user("report")
        .process_group(-3)
        .build()
        .unwrap_err();
    assert!(
        matches!(&e, Error::Build { item, .. } if item == "process_group -3"),
        "{e}"
    );
    assert_eq!(e.build_kind(), Some(BuildErrorKind::Invalid), "{e}");
    let e = helper_for_any_user("report")
        .new_session()
        .process_group(0)
        .build()
        .unwrap_err();
    assert!(
        matches!(&e, Error::Build { item, .. } if item == "process_group 0"),
        "{e}"
    );
    assert_eq!(e.build_kind(), Some(BuildErrorKind::Conflict), "{e}");
}

/// The parent-death signal fires when the spawning *thread* exits: spawn
/// from a short-lived thread, keep the child (detached), let the thread end.
#[test]
fn parent_death_signal_fires_when_the_spawning_thread_exits() {
    let detached = std::thread::spawn(|| {
        helper_for_any_user("sleep=20")
            .parent_death_signal(Signal::USR2)
            .spawn()
            .unwrap()
            .detach()
    })
    .join()
    .unwrap();
    let finished = detached.wait().unwrap();
    assert_eq!(
        finished.signal(),
        Some(libc::SIGUSR2),
        "{:?}",
        finished.status()
    );
}
