//! No zombie is ever left: run alone in its own test binary so no other test's
//! children are in flight while /proc is scanned.

mod common;

use std::time::Duration;

use common::{helper, zombie_children};
use safespawn::Command;

fn assert_no_zombies(after: &str) {
    let z = zombie_children();
    assert!(z.is_empty(), "zombies {z:?} left after {after}");
}

#[test]
fn no_zombie_after_any_ending() {
    let _ = Command::new("/nonexistent").status().unwrap_err();
    assert_no_zombies("an exec failure");
    let _ = Command::new("true")
        .current_dir("/nonexistent")
        .status()
        .unwrap_err();
    assert_no_zombies("a chdir failure");
    drop(helper("sleep=30").spawn().unwrap());
    assert_no_zombies("drop");
    helper("sleep=30").spawn().unwrap().abort().unwrap();
    assert_no_zombies("abort");
    let _ = helper("sleep=30")
        .timeout(Duration::from_millis(20))
        .status()
        .unwrap_err();
    assert_no_zombies("a timeout");
    helper("exit=1").spawn().unwrap().wait().unwrap();
    assert_no_zombies("wait");
    let r = std::panic::catch_unwind(|| {
        let _child = helper("sleep=30").spawn().unwrap();
        panic!("unwinding through a live Running");
    });
    assert!(r.is_err());
    assert_no_zombies("a panic");
    let mut c = helper("exit=0").spawn().unwrap();
    while c.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(c);
    assert_no_zombies("try_wait");
}
