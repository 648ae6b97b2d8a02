//! Forwarding the signals safespawn receives to the program, as timeout(1)
//! does: `kill <safespawn>` (a supervisor stopping the service, say) must
//! reach the program, not leave it running without its wrapper.
//!
//! safespawn blocks the forwarded signals in every thread before the program
//! is spawned (the library gives the program an empty mask and default
//! dispositions regardless) and a thread waits for them with `sigwaitinfo`.
//! A signal another process sent is passed on through the program's pidfd
//! (or, on kernels without pidfds, its pid: see [`start`]). One the kernel
//! generated for the terminal (Ctrl-C, Ctrl-\, a hang-up)
//! already went to the whole foreground process group, program included, so
//! it is passed on only when the program left that group (`--new-session`).

use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use safespawn::Signal;

/// The signals passed on: the ones that ask a program to stop, reload or
/// report.
const FORWARDED: [i32; 8] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGWINCH,
];

fn forwarded_set() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset takes valid numbers.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        for sig in FORWARDED {
            libc::sigaddset(set.as_mut_ptr(), sig);
        }
        set.assume_init()
    }
}

/// Blocks the forwarded signals in the calling thread, and so in every
/// thread it starts afterwards. Call it before spawning anything.
pub fn block() {
    let set = forwarded_set();
    // SAFETY: a valid set; the old mask is not needed.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// The program the forwarder passes signals on to.
struct Target {
    pidfd: Option<OwnedFd>,
    pid: rustix::process::Pid,
}

/// The forwarder thread, started before the program exists: whatever can
/// fail in setting it up (a thread a seccomp profile refuses, say) fails
/// before anything is exec'd. Signals that arrive before it knows the
/// program stay pending (they are blocked) and are passed on once it does.
pub struct Forwarder {
    target: mpsc::Sender<Target>,
    reaped: Arc<AtomicBool>,
}

impl Forwarder {
    /// Points the forwarder at the program: its pidfd, or on kernels
    /// without pidfds (`None` before Linux 5.2) its pid.
    ///
    /// By pid: `kill(pid)` reaches the program for as long as it is not
    /// reaped, because an unreaped child keeps its pid (even as a zombie),
    /// and the main thread tells the forwarder as soon as its wait has
    /// reaped it ([`Forwarder::program_reaped`]). The residual race is a
    /// signal that arrives in the instant between that reap and the flag
    /// being set: it would go to the program's pid number after the program
    /// is gone, which could only hit another process if the kernel handed
    /// that number out again in those few instructions (it wraps through the
    /// whole pid space first). With a pidfd there is no such window: a pidfd
    /// never names another process.
    pub fn aim(&self, pidfd: Option<BorrowedFd<'_>>, pid: i32) -> std::io::Result<()> {
        let pidfd: Option<OwnedFd> = match pidfd {
            Some(fd) => Some(rustix::io::fcntl_dupfd_cloexec(fd, 3)?),
            None => None,
        };
        let pid = rustix::process::Pid::from_raw(pid)
            .ok_or_else(|| std::io::Error::other("the program has no pid"))?;
        self.target
            .send(Target { pidfd, pid })
            .map_err(|_| std::io::Error::other("the signal forwarder has stopped"))
    }

    /// The program has been reaped: from now on its pid may belong to
    /// another process, so nothing is sent by pid any more.
    pub fn program_reaped(&self) {
        self.reaped.store(true, Ordering::SeqCst);
    }
}

/// Starts the thread that will pass the forwarded signals on to the
/// program named later with [`Forwarder::aim`]. `same_group`: the program
/// stays in safespawn's process group. Call [`block`] first.
pub fn start(same_group: bool) -> std::io::Result<Forwarder> {
    let reaped = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<Target>();
    let forwarder = Forwarder {
        target: tx,
        reaped: reaped.clone(),
    };
    std::thread::Builder::new()
        .name("signal-forwarder".into())
        .spawn(move || {
            // No program (the spawn failed): nothing to forward to.
            let Ok(Target { pidfd, pid }) = rx.recv() else {
                return;
            };
            let set = forwarded_set();
            loop {
                let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
                // SAFETY: a valid set (blocked in this thread, inherited from
                // `block`) and a siginfo to fill.
                let sig = unsafe { libc::sigwaitinfo(&set, info.as_mut_ptr()) };
                if sig < 0 {
                    continue; // EINTR
                }
                // SAFETY: sigwaitinfo filled `info` on success.
                let code = unsafe { info.assume_init() }.si_code;
                // A signal the kernel generated for the terminal reached
                // the program already, if it shares our process group.
                if !from_a_process(code) && same_group {
                    continue;
                }
                let Some(signal) = Signal::from_named_raw(sig) else {
                    continue;
                };
                // The program may be gone already: nothing to do then.
                match &pidfd {
                    Some(pidfd) => {
                        if let Err(rustix::io::Errno::NOSYS | rustix::io::Errno::PERM) =
                            rustix::process::pidfd_send_signal(pidfd, signal)
                        {
                            // A filter refuses the call: by pid, as below.
                            send_by_pid(&reaped, pid, signal);
                        }
                    }
                    None => send_by_pid(&reaped, pid, signal),
                }
            }
        })?;
    Ok(forwarder)
}

/// `kill(pid, signal)`, unless the program has been reaped.
fn send_by_pid(reaped: &AtomicBool, pid: rustix::process::Pid, signal: Signal) {
    if !reaped.load(Ordering::SeqCst) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Whether a signal with this `si_code` was sent by a process (`kill`,
/// `sigqueue`, `tgkill`) rather than generated by the kernel.
fn from_a_process(code: i32) -> bool {
    code == libc::SI_USER || code == libc::SI_QUEUE || code == libc::SI_TKILL
}
