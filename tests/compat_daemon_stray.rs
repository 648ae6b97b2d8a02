//! A killed intermediate does not leave the daemon running on our stack,
//! on a system without `pidfd_open` (`safespawn::__compat::LINUX_5_1`),
//! where the stray daemon is stopped by pid. One test in a binary of its
//! own: it makes the process a child subreaper, so the daemon is re-parented
//! to it and can be seen.

mod common;

#[test]
fn a_killed_intermediate_does_not_leave_the_daemon_on_our_stack_without_pidfds() {
    safespawn::__force_compat(safespawn::__compat::LINUX_5_1);
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    let dir = common::Scratch::new("stray-daemon");
    common::kill_the_intermediate_while_the_daemon_blocks(&dir);
}
