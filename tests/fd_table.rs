//! The child's fd table. On the vfork path, where the kernel has
//! `close_range(2)`, a child starts on its parent's table (`CLONE_FILES`)
//! and, as its first step, takes a table of its own holding only the fds
//! below every fd it uses: the parent's other fds are neither copied nor
//! closed one by one, so a parent with thousands of fds open spawns as
//! fast as one with ten. What a test can see of that: the program's fd
//! table is small (`FDSize` in `/proc/self/status`, the table's capacity,
//! which exec keeps), the parent's fds never reach it, and the parent's own
//! table is untouched by the child's placements. The fallbacks (a refused
//! `CLONE_FILES`, a refused `CLOSE_RANGE_UNSHARE`) are in
//! tests/compat_shared_table_*.rs.

mod common;

use std::os::fd::{AsRawFd, RawFd};

use common::{helper, report_of};
use safespawn::{Command, Stdio};

/// The fd number the parent holds open far above the usual ones.
const HIGH: RawFd = 5000;

/// Whether this system offers `close_range(2)` (Linux 5.9, and no seccomp
/// profile refusing it): an empty range at the top closes nothing.
fn have_close_range() -> bool {
    // SAFETY: close_range takes three integers; this range holds no fd.
    unsafe { libc::syscall(libc::SYS_close_range, u32::MAX, u32::MAX, 0) == 0 }
}

fn fdsize(report: &common::Report) -> usize {
    report.field("fdsize").parse().expect("FDSize")
}

/// A fork-path command: the hook does nothing.
fn forked(cmd: Command) -> Command {
    // SAFETY: the hook makes no call at all.
    unsafe { cmd.pre_exec(|| Ok(())) }
}

#[test]
fn the_program_gets_a_small_table_and_none_of_the_parents_fds() {
    let high = common::open_at_or_above(HIGH);
    let report = report_of(helper("report"));
    assert_eq!(report.fd_numbers(), vec![0, 1, 2]);
    let small = fdsize(&report);
    // The fork path copies the table as every fork does: the control that
    // shows FDSize tells the two apart.
    let copied = fdsize(&report_of(forked(helper("report"))));
    assert!(copied > HIGH as usize, "fork path: FDSize {copied}");
    if have_close_range() {
        assert!(small < HIGH as usize, "vfork path: FDSize {small}");
    } else {
        // Without close_range the child starts on a copy, as the fork
        // path's does.
        assert!(small > HIGH as usize, "vfork path: FDSize {small}");
    }
    // A planned fd far above the parent's: kept, and the table sized for it.
    let report = report_of(helper("report").map_fd(high.try_clone().unwrap(), HIGH + 50));
    assert_eq!(report.fd_numbers(), vec![0, 1, 2, HIGH + 50]);
}

#[test]
fn the_childs_placements_never_touch_the_parents_table() {
    // Two files at numbers the child places other fds onto.
    let a = tempfile_at("a");
    let b = tempfile_at("b");
    let (a_fd, b_fd) = (a.as_raw_fd(), b.as_raw_fd());
    let before = [0, 1, 2, a_fd, b_fd].map(common::fd_identity);
    let null = std::fs::File::open("/dev/null").unwrap();
    for _ in 0..20 {
        let mut child = helper("exit=0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // b onto a's number, null onto b's: both numbers are the
            // parent's own.
            .map_fd(b.try_clone().unwrap(), a_fd)
            .map_fd(null.try_clone().unwrap(), b_fd)
            .spawn()
            .unwrap();
        drop(child.take_stdin());
        assert!(child.wait().unwrap().success());
    }
    assert_eq!([0, 1, 2, a_fd, b_fd].map(common::fd_identity), before);
}

fn tempfile_at(name: &str) -> std::fs::File {
    let dir = std::env::temp_dir().join(format!("safespawn-fd-table-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    let f = std::fs::File::create(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let _ = std::fs::remove_dir(&dir);
    f
}
