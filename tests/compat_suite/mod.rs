//! The core tests, run through the fallbacks of older kernels and seccomp
//! profiles. Each `compat_*` test binary instantiates [`compat_suite!`] with
//! one set of `safespawn::__compat` flags; every test forces those flags
//! first, so the whole binary runs as on that system (the flags and the
//! probes they lead to are process-wide).
//!
//! The same tests must pass on a real old kernel or under a real seccomp
//! profile, without the flags: nothing here depends on the emulation.

/// Defines the suite's tests for the `safespawn::__compat` flags `$flags`.
/// `$clone_pidfd` / `$fork_pidfd`: whether a child of the clone path / the
/// fork path has a pidfd on that system.
macro_rules! compat_suite {
    ($flags:expr, clone_pidfd: $clone_pidfd:expr, fork_pidfd: $fork_pidfd:expr) => {
        use std::io::Read;
        use std::time::{Duration, Instant};

        use common::helper;
        use safespawn::{Command, Error, Running, Signal, Stage};

        fn setup() {
            safespawn::__force_compat($flags);
        }

        /// Whether `pid` is gone: reaped (no /proc entry), or its number
        /// already reused by a process that is not our child.
        fn gone(pid: i32) -> bool {
            let f = common::stat_fields(pid);
            f.is_empty() || f.get(1) != Some(&std::process::id().to_string())
        }

        /// A fork-path command: the hook does nothing.
        fn forked(cmd: Command) -> Command {
            // SAFETY: the hook makes no call at all.
            unsafe { cmd.pre_exec(|| Ok(())) }
        }

        /// A child that ignores SIGTERM, once it has said so.
        fn term_ignoring() -> Running {
            let mut child = Command::new("sh")
                .args(["-c", "trap '' TERM; echo ready; exec sleep 30"])
                .stdout(safespawn::Stdio::piped())
                .spawn()
                .unwrap();
            let mut out = child.take_stdout().unwrap();
            let mut buf = [0u8; 6];
            out.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"ready\n");
            child
        }

        #[test]
        fn spawn_wait_run_and_status() {
            setup();
            for cmd in [helper("exit=3"), forked(helper("exit=3"))] {
                let child = cmd.spawn().unwrap();
                let pid = child.pid();
                assert_eq!(child.wait().unwrap().code(), Some(3));
                assert!(gone(pid));
            }
            assert!(Command::new("true").status().unwrap().success());
            assert!(forked(Command::new("true")).run().unwrap().success());
            let err = helper("exit=4").run().unwrap_err();
            assert!(err.to_string().ends_with("exited with status 4"), "{err}");
        }

        #[test]
        fn spawn_failures_are_reported_and_reaped() {
            setup();
            for cmd in [
                Command::new("/nonexistent/program"),
                forked(Command::new("/nonexistent/program")),
            ] {
                match cmd.status().unwrap_err() {
                    Error::Spawn { stage, errno, .. } => {
                        assert_eq!(stage, Stage::Exec);
                        assert_eq!(errno, safespawn::Errno::NOENT);
                    }
                    other => panic!("{other:?}"),
                }
            }
        }

        /// Whether this process runs on a kernel with every pidfd call
        /// (Linux 5.4) and under no seccomp filter: then the emulated
        /// system is exactly what the tests see.
        fn unfiltered_modern_kernel() -> bool {
            common::unfiltered_kernel_at_least(5, 4)
        }

        #[test]
        fn pidfd_is_there_where_the_system_has_one() {
            setup();
            // Never more pidfds than the emulated system has; exactly as
            // many where the real system has everything (under a real old
            // kernel or filter there may be fewer).
            let check = |has: bool, emulated: bool, path: &str| {
                if unfiltered_modern_kernel() {
                    assert_eq!(has, emulated, "{path} path");
                } else {
                    assert!(!has || emulated, "{path} path");
                }
            };
            let child = helper("exit=0").spawn().unwrap();
            check(child.pidfd().is_some(), $clone_pidfd, "clone");
            child.wait().unwrap();
            let child = forked(helper("exit=0")).spawn().unwrap();
            check(child.pidfd().is_some(), $fork_pidfd, "fork");
            child.wait().unwrap();
        }

        #[test]
        fn try_wait_wait_timeout_and_signal() {
            setup();
            for cmd in [helper("sleep=30"), forked(helper("sleep=30"))] {
                let mut child = cmd.spawn().unwrap();
                assert!(child.try_wait().unwrap().is_none());
                let started = Instant::now();
                assert!(child
                    .wait_timeout(Duration::from_millis(50))
                    .unwrap()
                    .is_none());
                assert!(started.elapsed() >= Duration::from_millis(50));
                child.signal(Signal::KILL).unwrap();
                let st = child
                    .wait_timeout(Duration::from_secs(10))
                    .unwrap()
                    .expect("killed child not reaped within 10 s");
                assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), Some(9));
                // Reaped: the status stays, signalling is refused.
                assert_eq!(child.try_wait().unwrap(), Some(st));
                assert!(child.signal(Signal::TERM).is_err());
                let pid = child.pid();
                assert_eq!(child.wait().unwrap().status(), st);
                assert!(gone(pid));
            }
        }

        #[test]
        fn wait_timeout_returns_soon_after_the_exit() {
            setup();
            let mut child = helper("sleep=0.1").spawn().unwrap();
            let started = Instant::now();
            let st = child.wait_timeout(Duration::from_secs(20)).unwrap();
            assert!(st.is_some_and(|s| s.success()), "{st:?}");
            assert!(started.elapsed() < Duration::from_secs(5));
        }

        #[test]
        fn abort_is_term_then_kill() {
            setup();
            let started = Instant::now();
            let f = helper("sleep=30").spawn().unwrap().abort().unwrap();
            assert_eq!(f.signal(), Some(libc::SIGTERM));
            let f = forked(helper("sleep=30")).spawn().unwrap().abort().unwrap();
            assert_eq!(f.signal(), Some(libc::SIGTERM));
            let f = term_ignoring().abort().unwrap();
            assert_eq!(f.signal(), Some(libc::SIGKILL));
            let f = helper("sleep=30")
                .spawn()
                .unwrap()
                .detach()
                .abort()
                .unwrap();
            assert_eq!(f.signal(), Some(libc::SIGTERM));
            assert!(started.elapsed() < Duration::from_secs(10));
        }

        #[test]
        fn abort_all_shares_one_grace() {
            setup();
            let children: Vec<Running> = (0..20).map(|_| term_ignoring()).collect();
            let pids: Vec<i32> = children.iter().map(Running::pid).collect();
            let started = Instant::now();
            let results = Running::abort_all(children);
            let took = started.elapsed();
            assert_eq!(results.len(), 20);
            for r in results {
                assert_eq!(r.unwrap().signal(), Some(libc::SIGKILL));
            }
            assert!(took < Duration::from_secs(1), "took {took:?}");
            assert!(pids.into_iter().all(gone));
        }

        #[test]
        fn drop_kills_and_reaps() {
            setup();
            for cmd in [helper("sleep=30"), forked(helper("sleep=30"))] {
                let child = cmd.spawn().unwrap();
                let pid = child.pid();
                drop(child);
                assert!(gone(pid), "{:?}", common::stat_fields(pid));
            }
            let child = term_ignoring();
            let pid = child.pid();
            drop(child);
            assert!(gone(pid), "{:?}", common::stat_fields(pid));
        }

        #[test]
        fn timeout_aborts_and_reaps() {
            setup();
            let started = Instant::now();
            let err = helper("sleep=30")
                .timeout(Duration::from_millis(100))
                .status()
                .unwrap_err();
            assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
            let err = helper("sleep=30")
                .capture_stdout()
                .timeout(Duration::from_millis(100))
                .output()
                .unwrap_err();
            assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
            assert!(started.elapsed() < Duration::from_secs(10));
        }

        #[test]
        fn buffered_output_without_polling_a_pidfd() {
            setup();
            let out = Command::new("sh")
                .args(["-c", "echo out; echo err >&2; exit 3"])
                .capture_stdout()
                .capture_stderr()
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(3));
            assert_eq!(out.stdout, b"out\n");
            assert_eq!(out.stderr, b"err\n");
            let out = helper("echo")
                .input(vec![b'x'; 1 << 20])
                .capture_stdout()
                .run()
                .unwrap();
            assert_eq!(out.stdout.len(), 1 << 20);
            // The exit is noticed even while nothing is written.
            let started = Instant::now();
            let out = helper("sleep=0.2,out=late").capture_stdout().run().unwrap();
            assert_eq!(out.stdout, b"late");
            assert!(started.elapsed() < Duration::from_secs(5));
            // A grandchild holding the pipe: the drain ends after wait_delay.
            let started = Instant::now();
            let out = Command::new("sh")
                .args(["-c", "sleep 30 & echo hi"])
                .capture_stdout()
                .wait_delay(Duration::from_millis(100))
                .run()
                .unwrap();
            assert_eq!(out.stdout, b"hi\n");
            assert!(started.elapsed() < Duration::from_secs(10));
        }

        /// A `Direct` child's send buffer, larger than its pipe: `wait`
        /// writes the rest, watching the child by pid where its pidfd
        /// cannot be polled; a child that exits (a grandchild holding the
        /// read end, reading nothing) ends the writing; the fork path too.
        #[test]
        fn send_buffers_written_by_wait() {
            setup();
            let big: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
            for cmd in [helper("cat-fd=3"), forked(helper("cat-fd=3"))] {
                let mut child = cmd
                    .send_buffer(3, big.clone())
                    .stdout(safespawn::Stdio::piped())
                    .spawn()
                    .unwrap();
                let reader = common::census::read_in_thread(child.take_stdout().unwrap());
                assert!(child.wait().unwrap().success());
                assert!(reader.join().unwrap() == big, "the bytes differ");
            }
            let started = Instant::now();
            let status = Command::new("sh")
                .args(["-c", "sleep 3 & exit 0"])
                .send_buffer(3, big)
                .status()
                .unwrap();
            assert!(status.success());
            assert!(started.elapsed() < Duration::from_secs(2));
        }

        #[test]
        fn spawn_paused_resume_and_drop() {
            setup();
            let p = helper("exit=6").build().unwrap();
            let paused = p.spawn_paused().unwrap();
            assert_eq!(paused.resume().unwrap().wait().unwrap().code(), Some(6));
            let paused = p.spawn_paused().unwrap();
            let pid = paused.pid();
            drop(paused);
            assert!(gone(pid));
        }

        #[test]
        fn daemon_starts_and_reports() {
            setup();
            let d = Command::new("sleep").arg("0.1").daemonize().run().unwrap();
            assert!(d.daemon > 0 && d.intermediate > 0);
            assert!(gone(d.intermediate));
            let d = forked(Command::new("sleep").arg("0.1"))
                .daemonize()
                .run()
                .unwrap();
            assert!(d.daemon > 0);
            let err = Command::new("/nonexistent/daemon")
                .daemonize()
                .run()
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Spawn {
                        stage: Stage::Exec,
                        ..
                    }
                ),
                "{err:?}"
            );
        }

        #[test]
        fn huge_durations_mean_forever() {
            setup();
            for huge in [Duration::MAX, Duration::from_secs(1 << 62)] {
                let mut child = helper("sleep=0.1").spawn().unwrap();
                let st = child.wait_timeout(huge).unwrap();
                assert!(st.is_some_and(|s| s.success()), "{huge:?}: {st:?}");
                assert!(helper("sleep=0.1")
                    .timeout(huge)
                    .status()
                    .unwrap()
                    .success());
                let out = Command::new("sh")
                    .args(["-c", "(sleep 0.3; echo late) & echo early"])
                    .capture_stdout()
                    .timeout(huge)
                    .wait_delay(huge)
                    .run()
                    .unwrap();
                assert_eq!(out.stdout, b"early\nlate\n", "{huge:?}");
            }
        }

        #[test]
        fn many_spawns_leak_nothing() {
            setup();
            let fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
            let p = helper("exit=0").build().unwrap();
            let q = forked(helper("exit=0")).build().unwrap();
            // Warm up: kept report pipes, probes.
            p.status().unwrap();
            q.status().unwrap();
            let before = fds();
            for _ in 0..100 {
                assert!(p.status().unwrap().success());
                assert!(q.status().unwrap().success());
                drop(p.spawn().unwrap());
            }
            // Other tests of this binary open fds meanwhile: allow a few.
            assert!(fds() <= before + 8, "{} fds, {before} before", fds());
        }
    };
}
