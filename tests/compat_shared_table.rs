//! The fallbacks of a child started on its parent's fd table (see
//! tests/fd_table.rs): where the child's `close_range(CLOSE_RANGE_UNSHARE)`
//! is refused it copies the whole table with `unshare(CLONE_FILES)`, and
//! where the clone refuses `CLONE_FILES` (valgrind) children start on a
//! copy from then on. Either way the program gets only its planned fds and
//! the parent's table is untouched. One test, in order: the flags are
//! process-wide and the refusal is remembered.

mod common;

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use common::{helper, report_of};
use safespawn::__compat::{CLONE_REFUSES_SHARED_FILES, NO_CLOSE_RANGE_UNSHARE};
use safespawn::Stdio;

const HIGH: RawFd = 5000;

/// The program's table: only its planned fds, and (a copy of the whole
/// table) sized for the parent's highest fd; the parent's fds unchanged
/// by a child that places fds onto their numbers.
fn check_copied_table(what: &str, high: &OwnedFd) {
    let report = report_of(helper("report"));
    assert_eq!(report.fd_numbers(), vec![0, 1, 2], "{what}");
    let size: usize = report.field("fdsize").parse().unwrap();
    assert!(size > HIGH as usize, "{what}: FDSize {size}");
    let null = std::fs::File::open("/dev/null").unwrap();
    let before = [0, 1, 2, high.as_raw_fd()].map(common::fd_identity);
    let mut child = helper("exit=0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .map_fd(null.try_clone().unwrap(), high.as_raw_fd())
        .spawn()
        .unwrap();
    drop(child.take_stdin());
    assert!(child.wait().unwrap().success(), "{what}");
    assert_eq!(
        [0, 1, 2, high.as_raw_fd()].map(common::fd_identity),
        before,
        "{what}"
    );
}

#[test]
fn refusals_fall_back_to_a_copy_of_the_table() {
    let high = common::open_at_or_above(HIGH);
    safespawn::__force_compat(NO_CLOSE_RANGE_UNSHARE);
    check_copied_table("CLOSE_RANGE_UNSHARE refused", &high);
    safespawn::__force_compat(CLONE_REFUSES_SHARED_FILES);
    check_copied_table("CLONE_FILES refused", &high);
    // Remembered: no clone asks for the shared table again.
    safespawn::__force_compat(0);
    check_copied_table("after a refusal", &high);
}
