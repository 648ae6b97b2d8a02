//! The child's signal policy on every spawn path: handlers at `SIG_DFL`,
//! ignored signals reset unless `keep_ignored_signals`, an empty mask unless
//! `keep_signal_mask`.
//!
//! Signal dispositions belong to the whole process, so this file holds one
//! test that changes them and checks everything in sequence.

mod common;

use common::{helper, report_of, Report};
use safespawn::{Command, Stdio};

extern "C" fn handler(_: libc::c_int) {}

fn set_disposition(sig: libc::c_int, action: libc::sighandler_t) {
    // SAFETY: a zeroed sigaction with a valid handler value and no flags.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = action;
        assert_eq!(libc::sigaction(sig, &sa, std::ptr::null_mut()), 0);
    }
}

fn block(sig: libc::c_int) {
    // SAFETY: building a set and changing this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        assert_eq!(
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()),
            0
        );
    }
}

/// Whether signal `sig` is in a `/proc/PID/status` hex mask.
fn has(mask: &str, sig: libc::c_int) -> bool {
    let bits = u64::from_str_radix(mask.trim(), 16).expect("hex mask");
    bits & (1u64 << (sig - 1)) != 0
}

/// The Sig* lines of /proc/self/status as seen by `cat`, a program that
/// installs no handler and ignores nothing itself (unlike the Rust helper,
/// whose runtime ignores SIGPIPE and handles SIGSEGV/SIGBUS).
fn masks_of(cmd: Command) -> (u64, u64, u64) {
    masks_in(&common::output_of(
        cmd.stdout(Stdio::piped()).spawn().expect("spawn cat"),
    ))
}

/// SigCgt, SigIgn and SigBlk from /proc/self/status text.
fn masks_in(status: &str) -> (u64, u64, u64) {
    let r = Report::parse(&status.replace(":\t", "="));
    let hex = |k: &str| u64::from_str_radix(r.field(k), 16).expect(k);
    (hex("SigCgt"), hex("SigIgn"), hex("SigBlk"))
}

fn cat_status() -> Command {
    Command::new("cat").arg("/proc/self/status")
}

/// Spawns through the fork path (spawn_paused), which resets dispositions
/// one by one, and returns the masks `cat` saw.
fn masks_paused(cmd: Command) -> (u64, u64, u64) {
    let paused = cmd
        .stdout(Stdio::piped())
        .spawn_paused()
        .expect("spawn_paused");
    masks_in(&common::output_of(paused.resume().expect("resume")))
}

#[test]
fn signal_policy_holds_on_every_path() {
    // The parent: a handler on SIGUSR1, SIGUSR2 and SIGHUP ignored (SIGPIPE
    // is ignored already by the Rust runtime), SIGTERM blocked in this
    // thread. Commands are built after this, as the policy documents.
    set_disposition(libc::SIGUSR1, handler as *const () as libc::sighandler_t);
    set_disposition(libc::SIGUSR2, libc::SIG_IGN);
    set_disposition(libc::SIGHUP, libc::SIG_IGN);
    block(libc::SIGTERM);

    // Default policy, default (clone) path: nothing caught, nothing
    // ignored, nothing blocked, exactly.
    assert_eq!(masks_of(cat_status()), (0, 0, 0), "clone path");
    // The same on the fork path.
    assert_eq!(masks_paused(cat_status()), (0, 0, 0), "fork path");

    // keep_ignored_signals: exactly the parent's ignored set survives
    // (ours, plus whatever this process inherited ignored).
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let mine = Report::parse(&status.replace(":\t", "="));
    let ign = u64::from_str_radix(mine.field("SigIgn"), 16).unwrap();
    for sig in [libc::SIGUSR2, libc::SIGHUP, libc::SIGPIPE] {
        assert_ne!(ign & (1u64 << (sig - 1)), 0, "signal {sig} ignored here");
    }
    assert_eq!(
        masks_of(cat_status().keep_ignored_signals()),
        (0, ign, 0),
        "clone path, keep_ignored_signals"
    );
    assert_eq!(
        masks_paused(cat_status().keep_ignored_signals()),
        (0, ign, 0),
        "fork path, keep_ignored_signals"
    );

    // keep_signal_mask: the spawning thread's mask survives.
    let blk = 1u64 << (libc::SIGTERM - 1);
    assert_eq!(
        masks_of(cat_status().keep_signal_mask()),
        (0, 0, blk),
        "clone path, keep_signal_mask"
    );
    assert_eq!(
        masks_paused(cat_status().keep_signal_mask()),
        (0, 0, blk),
        "fork path, keep_signal_mask"
    );

    // The helper's report agrees on the signals the parent touched (its own
    // runtime ignores SIGPIPE and handles SIGSEGV/SIGBUS, so only these bits
    // say something about what it inherited).
    let r = report_of(helper("report"));
    assert!(!has(r.field("sigcgt"), libc::SIGUSR1));
    assert!(!has(r.field("sigign"), libc::SIGUSR2));
    assert!(!has(r.field("sigign"), libc::SIGHUP));
    assert!(!has(r.field("sigblk"), libc::SIGTERM));
    let r = report_of(helper("report").keep_ignored_signals().keep_signal_mask());
    assert!(has(r.field("sigign"), libc::SIGUSR2));
    assert!(has(r.field("sigblk"), libc::SIGTERM));
}
