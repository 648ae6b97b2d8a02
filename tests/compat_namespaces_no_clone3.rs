//! Namespaces on a system without `clone3` (`safespawn::__compat::NO_CLONE3`,
//! and with `REFUSE_WITH_EPERM` as a container profile refuses it): every
//! kind but `TIME` is a flag of the plain `clone`; `TIME` fails at the
//! spawn with clone3's errno until the process has learned that `clone3`
//! is missing, and at `build()` from then on. Alone in its binary: the
//! flags and what the library learns are process-wide.

mod common;

use safespawn::{BuildErrorKind, Command, Errno, Error, Namespaces, Stage};

fn our_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn without_clone3_time_is_refused_and_the_other_kinds_work() {
    safespawn::__force_compat(
        safespawn::__compat::NO_CLONE3 | safespawn::__compat::REFUSE_WITH_EPERM,
    );
    let user_time = Namespaces::USER | Namespaces::TIME;
    // First: nothing learned yet, so build() cannot know; the spawn can.
    // The EPERM of a refused clone3 with namespace flags is not taken for
    // clone3's absence (it may be the namespaces'), so TIME reports it.
    match Command::new("true").unshare(user_time).status() {
        Err(Error::Spawn { stage, errno, .. }) => {
            assert_eq!((stage, errno), (Stage::Namespace, Errno::PERM))
        }
        other => panic!("TIME without clone3: {other:?}"),
    }
    // The other kinds work through the plain clone (where this user may
    // create a user namespace), on both paths; that also teaches the
    // process that clone3 is refused.
    if std::path::Path::new("/proc/self/ns").exists() && common::can_unshare(Namespaces::USER) {
        let r = common::report_of(
            common::helper_for_any_user("report").unshare(Namespaces::USER | Namespaces::NET),
        );
        assert_ne!(r.field("ns_net"), our_ns("net"));
        assert_ne!(r.field("ns_user"), our_ns("user"));
    } else {
        eprintln!("user namespaces refused here: only the plain spawn runs");
    }
    assert!(Command::new("true").status().unwrap().success());
    // Now build() knows.
    match Command::new("true").unshare(user_time).build() {
        Err(e) => {
            assert_eq!(e.build_kind(), Some(BuildErrorKind::Conflict), "{e}");
            let text = e.to_string();
            assert!(
                text.contains("unshare(TIME)") && text.contains("clone3"),
                "{text}"
            );
        }
        Ok(_) => panic!("TIME was built where clone3 is known to be missing"),
    }
}
