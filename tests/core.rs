//! The parent side of the core engine: running and waiting (`run`,
//! `status`, exit errors), timeouts, drop, abort, `wait_timeout`,
//! `try_wait`, `signal`, `detach`, and one `Prepared` spawned again and
//! again, from many threads at once. The child's areas have their own files
//! (exec, fds, signals, process, credentials, session, hooks, pause,
//! daemon).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{helper, HELPER};
use safespawn::{Command, Errno, Error, Signal, Stage};

/// Whether `pid` is still a zombie child of this process.
fn is_our_zombie(pid: i32) -> bool {
    common::zombie_children().contains(&pid)
}

fn tempdir() -> common::Scratch {
    common::Scratch::new("core")
}

// ---------------------------------------------------------------- life cycle

#[test]
fn run_status_and_exit_errors() {
    assert!(Command::new("true").run().unwrap().success());
    let err = helper("exit=3").arg("it's").run().unwrap_err();
    match &err {
        Error::Exit {
            status, command, ..
        } => {
            assert_eq!(status.code(), Some(3));
            assert_eq!(command, &format!("{HELPER} ::exit=3 'it'\\''s'"));
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().ends_with("exited with status 3"), "{err}");
    let err = helper("kill=9").run().unwrap_err();
    assert!(err.to_string().ends_with("was killed by signal 9"), "{err}");
    assert_eq!(helper("exit=4").status().unwrap().code(), Some(4));
}

#[test]
fn timeout_aborts_and_reaps() {
    let started = Instant::now();
    let err = helper("sleep=30")
        .timeout(Duration::from_millis(100))
        .status()
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(err.to_string().contains("timed out after 100ms"), "{err}");
}

#[test]
fn drop_kills_and_reaps() {
    let child = helper("sleep=30").spawn().unwrap();
    let pid = child.pid();
    drop(child);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists() || !is_our_zombie(pid));
    assert!(!is_our_zombie(pid));
}

#[test]
fn abort_is_term_then_kill() {
    let started = Instant::now();
    let f = helper("sleep=30").spawn().unwrap().abort().unwrap();
    assert_eq!(f.signal(), Some(libc::SIGTERM));
    assert!(started.elapsed() < Duration::from_secs(5));
    // A child that ignores TERM gets KILL after the grace.
    let f = Command::new("sh")
        .args(["-c", "trap '' TERM; sleep 30"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(50)); // let the trap be set
    let f2 = f.abort().unwrap();
    assert_eq!(f2.signal(), Some(libc::SIGKILL));
}

#[test]
fn wait_timeout_try_wait_and_signal() {
    let mut child = helper("sleep=30").spawn().unwrap();
    assert!(child.try_wait().unwrap().is_none());
    assert!(child
        .wait_timeout(Duration::from_millis(30))
        .unwrap()
        .is_none());
    child.signal(Signal::KILL).unwrap();
    let st = child
        .wait_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap();
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), Some(9));
    // Reaped: the status stays, signalling is refused, wait returns it.
    assert_eq!(child.try_wait().unwrap(), Some(st));
    assert!(child.signal(Signal::TERM).is_err());
    let pid = child.pid();
    assert_eq!(child.wait().unwrap().status(), st);
    assert!(!is_our_zombie(pid));
}

#[test]
fn detach_hands_the_child_over() {
    let child = helper("sleep=0.05").spawn().unwrap();
    let d = child.detach();
    let pid = d.pid();
    assert!(d.wait().unwrap().success());
    assert!(!is_our_zombie(pid));
    // Dropping a Detached leaves the child running.
    let d = helper("sleep=30").spawn().unwrap().detach();
    let pid = d.pid();
    drop(d);
    std::thread::sleep(Duration::from_millis(20));
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert!(!stat.contains(") Z "), "{stat}");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    rustix::process::waitpid(
        rustix::process::Pid::from_raw(pid),
        rustix::process::WaitOptions::empty(),
    )
    .unwrap();
}

// ---------------------------------------------------------------- reuse

#[test]
fn one_prepared_spawned_1000_times() {
    let prepared = Command::new("true").build().unwrap();
    for i in 0..1000 {
        let st = prepared.status().unwrap();
        assert!(st.success(), "spawn {i}: {st:?}");
    }
}

/// A `Prepared` keeps its report pipe between spawns: a failure report must
/// reach exactly the spawn that failed, and a success after a failure must
/// not see an old message.
#[test]
fn one_prepared_reports_each_spawns_own_outcome() {
    let scratch = tempdir();
    let dir = scratch.join("cwd");
    let prepared = helper("exit=0").current_dir(&dir).build().unwrap();
    for round in 0..20 {
        std::fs::create_dir(&dir).unwrap();
        for _ in 0..3 {
            assert!(prepared.status().unwrap().success(), "round {round}");
        }
        std::fs::remove_dir(&dir).unwrap();
        for _ in 0..3 {
            match prepared.status() {
                Err(Error::Spawn { stage, errno, .. }) => {
                    assert_eq!(
                        (stage, errno),
                        (Stage::Chdir, Errno::NOENT),
                        "round {round}"
                    )
                }
                other => panic!("round {round}: expected a chdir error, got {other:?}"),
            }
        }
    }
}

#[test]
fn one_prepared_from_8_threads_at_once() {
    let prepared = Arc::new(helper("exit=0").build().unwrap());
    let barrier = Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (p, b) = (prepared.clone(), barrier.clone());
            std::thread::spawn(move || {
                b.wait();
                (0..50).filter(|_| p.status().unwrap().success()).count()
            })
        })
        .collect();
    let ok: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(ok, 400);
}
