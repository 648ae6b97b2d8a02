//! What a kept `Prepared` costs in file descriptors: nothing until it is
//! spawned (`/dev/null` is one fd for the whole process), then the two fds
//! of the report pipe it keeps for the next spawn. One test only: it counts
//! this process's fds, which other tests running beside it would change.

mod common;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn a_kept_prepared_costs_no_fd_until_spawned_then_two() {
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
    assert_eq!(
        open_fds(),
        before + 2 * kept.len(),
        "each spawned Prepared keeps exactly its report pipe"
    );
    drop(kept);
    assert_eq!(
        open_fds(),
        before,
        "dropping the Prepareds closes their fds"
    );
    drop(warm);
}
