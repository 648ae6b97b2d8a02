//! What a kept `Prepared` costs in file descriptors: nothing, before and
//! after it is spawned (`/dev/null` is one fd for the whole process; a
//! child reports in the spawning frame, or on a pipe made and closed by the
//! spawn where it cannot). One test only: it counts this process's fds,
//! which other tests running beside it would change.

mod common;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn a_kept_prepared_costs_no_fd_before_or_after_spawning() {
    // The process-wide /dev/null and anything lazily opened by a first
    // build are not what is measured.
    let warm = common::helper("exit=0").build().unwrap();
    warm.status().unwrap();
    let before = open_fds();
    let kept: Vec<_> = (0..100)
        .map(|_| common::helper("exit=0").build().unwrap())
        .collect();
    assert_eq!(open_fds(), before, "building costs fds");
    for p in &kept {
        assert!(p.status().unwrap().success());
    }
    assert_eq!(open_fds(), before, "a spawned Prepared keeps fds");
    drop(kept);
    assert_eq!(
        open_fds(),
        before,
        "dropping the Prepareds closes their fds"
    );
    drop(warm);
}
