//! Pipelines: `cmd_a | cmd_b | cmd_c`.

mod common;

use std::io::Read;
use std::time::Duration;

use common::{helper, stat_fields};
use proptest::prelude::*;
use safespawn::{dry_run, BuildErrorKind, Command, Error, Pipeline, Stdio};

#[test]
fn yes_into_head_ends_early_without_failing() {
    let p = (Command::new("yes") | Command::new("head").args(["-n", "3"]))
        .build()
        .unwrap();
    for _ in 0..3 {
        let out = (Command::new("yes") | Command::new("head").args(["-n", "3"]))
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"y\ny\ny\n");
        // yes was killed by SIGPIPE: no failure by default.
        assert_eq!(out.status.get(0).unwrap().signal(), Some(libc::SIGPIPE));
        assert!(out.status.get(1).unwrap().success());
        assert!(out.status.success());
        out.status.check().unwrap();
        p.run().unwrap();
    }
    // Asked for, it is one, and names stage 0.
    let err = (Command::new("yes") | Command::new("head").args(["-n", "3"]))
        .sigpipe_is_failure()
        .run()
        .unwrap_err();
    match &err {
        Error::Pipeline {
            stage,
            program,
            status,
            ..
        } => {
            assert_eq!(*stage, 0);
            assert_eq!(program, "yes");
            assert_eq!(
                std::os::unix::process::ExitStatusExt::signal(status),
                Some(libc::SIGPIPE)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "pipeline stage 0 (yes) was killed by signal 13"
    );
}

#[test]
fn the_last_stage_dying_of_sigpipe_is_a_failure() {
    let st = (Command::new("true") | Command::new("sh").args(["-c", "kill -PIPE $$"]))
        .status()
        .unwrap();
    assert_eq!(st.failed_stage(), Some(1));
}

#[test]
fn a_failing_middle_stage_is_named_with_its_status() {
    let p = helper("out=data\\n")
        | Command::new("sh").args(["-c", "cat >/dev/null; exit 3"])
        | Command::new("cat");
    let err = p.run().unwrap_err();
    let Error::Pipeline {
        stage,
        program,
        command,
        status,
        stderr,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*stage, 1);
    assert_eq!(program, "sh");
    assert_eq!(command, "sh -c 'cat >/dev/null; exit 3'");
    assert_eq!(status.code(), Some(3));
    assert!(stderr.is_empty());
    assert_eq!(
        err.to_string(),
        "pipeline stage 1 (sh -c 'cat >/dev/null; exit 3') exited with status 3"
    );
    // As an io::Error it is Other, with the message.
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::ErrorKind::Other);
    assert!(io.to_string().contains("stage 1"), "{io}");
}

#[test]
fn the_rightmost_failure_is_reported_and_its_stderr_carried() {
    let p = (Command::new("sh")
        .args(["-c", "echo first >&2; exit 2"])
        .stderr(Stdio::piped())
        | Command::new("sh")
            .args(["-c", "cat >/dev/null; echo second >&2; exit 5"])
            .stderr(Stdio::piped())
        | Command::new("cat"))
    .build()
    .unwrap();
    let err = p.run().unwrap_err();
    let Error::Pipeline {
        stage,
        status,
        stderr,
        ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!((*stage, status.code()), (1, Some(5)));
    assert_eq!(stderr, "second\n");
    assert!(
        err.to_string()
            .ends_with("exited with status 5; stderr:\nsecond"),
        "{err}"
    );
    let out = p.output().unwrap();
    assert_eq!(
        out.stderr,
        vec![b"first\n".to_vec(), b"second\n".to_vec(), Vec::new()]
    );
}

#[test]
fn status_gives_every_stage_in_order() {
    let p = (Command::new("sh").args(["-c", "exit 0"])
        | Command::new("sh").args(["-c", "cat >/dev/null; exit 2"])
        | Command::new("sh").args(["-c", "cat >/dev/null; exit 5"])
        | Command::new("true"))
    .build()
    .unwrap();
    for st in [p.status().unwrap(), p.spawn().unwrap().wait().unwrap()] {
        let codes: Vec<Option<i32>> = st.iter().map(|f| f.code()).collect();
        assert_eq!(codes, [Some(0), Some(2), Some(5), Some(0)]);
        let by_ref: Vec<Option<i32>> = (&st).into_iter().map(|f| f.code()).collect();
        assert_eq!(by_ref, codes);
        assert_eq!(st.iter().next_back().unwrap().code(), Some(0));
        assert_eq!(st.len(), 4);
        assert_eq!(st.failed_stage(), Some(2));
        assert!(!st.success());
        assert!(st.last().success());
        assert!(matches!(st.check(), Err(Error::Pipeline { stage: 2, .. })));
    }
}

#[test]
fn sixty_four_mib_through_three_stages() {
    let data: Vec<u8> = (0..64u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let out = (helper("echo") | helper("echo") | helper("echo"))
        .input(data.clone())
        .output()
        .unwrap();
    out.status.check().unwrap();
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data, "the bytes differ");
    // The same through cat, spawned, read by the caller.
    let mut running = (Command::new("cat").stdin(Stdio::piped())
        | Command::new("cat")
        | Command::new("cat").stdout(Stdio::piped()))
    .spawn()
    .unwrap();
    let mut input = running.take_stdin().unwrap();
    let mut output = running.take_stdout().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        input.write_all(&data).unwrap();
        data
    });
    let mut got = Vec::new();
    output.read_to_end(&mut got).unwrap();
    let data = writer.join().unwrap();
    assert!(got == data, "the bytes differ ({} read)", got.len());
    assert!(running.wait().unwrap().success());
}

/// The fd numbers of `pid` and what they link to.
fn fds_of(pid: i32) -> Vec<(i32, String)> {
    let mut fds: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .map(|e| {
            let n = e.file_name().to_string_lossy().parse().unwrap();
            let t = std::fs::read_link(e.path()).unwrap_or_default();
            (n, t.to_string_lossy().into_owned())
        })
        .collect();
    fds.sort();
    fds
}

#[test]
fn no_fd_of_the_pipeline_leaks_into_any_stage() {
    // Running stages: only 0, 1 and 2 each, linked stage to stage.
    let running = (Command::new("sleep").arg("30")
        | Command::new("sleep").arg("30")
        | Command::new("sleep").arg("30"))
    .spawn()
    .unwrap();
    let pids: Vec<i32> = running.pids().collect();
    // Each stage past its exec and its own start-up (sleep opens locale
    // files, which would show here as its fds for a moment).
    for &p in &pids {
        assert!(common::wait_until_asleep(p), "stage {p} never slept");
    }
    let fds: Vec<Vec<(i32, String)>> = pids.iter().map(|&p| fds_of(p)).collect();
    for f in &fds {
        assert_eq!(
            f.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            [0, 1, 2],
            "{fds:?}"
        );
    }
    assert_eq!(fds[0][0].1, "/dev/null");
    assert!(fds[0][1].1.starts_with("pipe:"), "{fds:?}");
    assert_eq!(
        fds[1][0].1, fds[0][1].1,
        "stage 1 reads what stage 0 writes"
    );
    assert!(fds[1][1].1.starts_with("pipe:"));
    assert_ne!(fds[1][1].1, fds[0][1].1);
    assert_eq!(
        fds[2][0].1, fds[1][1].1,
        "stage 2 reads what stage 1 writes"
    );
    assert_eq!(fds[2][1].1, "/dev/null");
    // The parent holds neither pipe.
    let ours = fds_of(std::process::id() as i32);
    for pipe in [&fds[0][1].1, &fds[1][1].1] {
        assert!(
            !ours.iter().any(|(_, t)| t == pipe),
            "the parent holds {pipe}"
        );
    }
    drop(running);

    // The helper's own report, in the middle and as the last stage: the
    // first stage writes nothing, the middle one reads to end-of-file and
    // reports, the last one passes that report on and adds its own (each
    // reads its stdin to the end first, so no write races a reader's exit).
    let out = (helper("exit=0") | helper("drain,fds") | helper("echo,fds"))
        .output()
        .unwrap();
    out.status.check().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let numbers: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("fd="))
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(numbers, ["0", "1", "2", "0", "1", "2"], "{text}");
}

#[test]
fn dropping_a_running_pipeline_reaps_every_stage() {
    let running = (Command::new("sleep").arg("30")
        | Command::new("sh").args(["-c", "trap '' TERM; sleep 30"])
        | Command::new("sleep").arg("30"))
    .spawn()
    .unwrap();
    let pids: Vec<i32> = running.pids().collect();
    assert_eq!(pids.len(), 3);
    // Let sh set its trap.
    std::thread::sleep(Duration::from_millis(100));
    let start = std::time::Instant::now();
    drop(running);
    // One shared grace, not one per stage.
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    for pid in pids {
        let f = stat_fields(pid);
        // Gone (reaped), not a zombie (unless the number was reused at once
        // by another process, which would not be our zombie child).
        assert!(
            f.is_empty()
                || f.first().map(String::as_str) != Some("Z")
                || f.get(1) != Some(&std::process::id().to_string()),
            "stage {pid} left as {f:?}"
        );
    }
    // abort() too.
    let st = (Command::new("sleep").arg("30") | Command::new("sleep").arg("30"))
        .spawn()
        .unwrap()
        .abort()
        .unwrap();
    assert!(st.iter().all(|f| f.signal() == Some(libc::SIGTERM)));
}

/// Our children whose command line is exactly `argv`.
fn children_running(argv: &[&str]) -> Vec<i32> {
    let me = std::process::id().to_string();
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|&pid| stat_fields(pid).get(1) == Some(&me))
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .ok()
                .as_deref()
                == Some(&want[..])
        })
        .collect()
}

#[test]
fn a_failed_spawn_reaps_the_stages_already_started() {
    let err = (Command::new("sleep").arg("31.25")
        | Command::new("true").current_dir("/nonexistent/safespawn-dir"))
    .spawn()
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Spawn {
                stage: safespawn::Stage::Chdir,
                ..
            }
        ),
        "{err:?}"
    );
    // The first stage was killed and reaped (no process, no zombie).
    assert_eq!(children_running(&["sleep", "31.25"]), Vec::<i32>::new());
}

#[test]
fn buffered_input_feeds_the_first_stage() {
    let p = (Command::new("sort")
        | Command::new("tr")
            .args(["a-z", "A-Z"])
            .stdout(Stdio::piped()))
    .input("b\na\nc\n")
    .build()
    .unwrap();
    for _ in 0..2 {
        let out = p.output().unwrap();
        assert_eq!(out.stdout, b"A\nB\nC\n");
        assert!(out.status.success());
    }
    // A first stage that stops reading ends the writing, without failing.
    let out = (Command::new("head").args(["-c", "1"]) | Command::new("cat"))
        .input(vec![b'x'; 8 << 20])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"x");
    out.status.check().unwrap();
    // Empty input: end-of-file at once.
    let out = (Command::new("wc").arg("-c") | Command::new("cat"))
        .input("")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
}

#[test]
fn spawn_hands_over_the_first_stdin_and_the_last_stdout() {
    let mut running = (Command::new("cat") | Command::new("tr").args(["a-z", "A-Z"]))
        .input("unused by spawn")
        .pipe(Command::new("cat").stdout(Stdio::piped()))
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        running.take_stdin().unwrap().write_all(b"spawned").unwrap();
    }
    let mut s = String::new();
    running
        .take_stdout()
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "SPAWNED");
    assert!(running.wait().unwrap().success());
}

#[test]
fn stages_may_not_set_the_streams_the_pipeline_owns() {
    let err = (Command::new("true").stdout(Stdio::inherit()) | Command::new("cat"))
        .build()
        .unwrap_err();
    assert_eq!(err.build_kind(), Some(BuildErrorKind::Conflict));
    assert_eq!(
        err.to_string(),
        "invalid command: stage 0 (true): stdout: is the pipe to the next stage; a stage may not set it"
    );
    let err = Pipeline::new(Command::new("cat").stdin(Stdio::inherit()))
        .input("x")
        .build()
        .unwrap_err();
    assert_eq!(err.build_kind(), Some(BuildErrorKind::Conflict));
    // A stage's own build error names the stage.
    let err = (Command::new("true") | Command::new("echo").arg("a\0b"))
        .build()
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid command: stage 1 (echo "),
        "{err}"
    );
    // The input of a pipeline joined on the right has no first stage to feed.
    let err = (Command::new("true") | (Command::new("cat") | Command::new("cat")).input("x"))
        .build()
        .unwrap_err();
    assert_eq!(err.build_kind(), Some(BuildErrorKind::Conflict));
}

#[test]
fn stderr_to_stdout_sends_a_stage_s_stderr_down_the_pipe() {
    let out = (Command::new("sh")
        .args(["-c", "echo out; echo err >&2"])
        .stderr_to_stdout()
        | Command::new("sort"))
    .output()
    .unwrap();
    assert_eq!(out.stdout, b"err\nout\n");
}

#[test]
fn a_timeout_aborts_every_stage() {
    let start = std::time::Instant::now();
    let err = (helper("out=early\\n,sleep=30") | Command::new("cat").stdout(Stdio::piped()))
        .timeout(Duration::from_millis(300))
        .status()
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5));
    match err {
        Error::Timeout {
            command, stdout, ..
        } => {
            assert!(command.contains(" | cat"), "{command}");
            assert_eq!(stdout, b"early\n");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn display_joins_the_stages() {
    let p = Command::new("echo").env("A", "1").arg("a b") | Command::new("grep").arg("x y");
    assert_eq!(p.to_string(), "A=1 echo 'a b' | grep 'x y'");
    assert_eq!(
        p.build().unwrap().to_string(),
        "A=1 echo 'a b' | grep 'x y'"
    );
}

#[test]
fn dry_runs_record_every_stage() {
    let (lines, out) = dry_run::capture_with(
        |line| {
            if line.starts_with("grep") {
                dry_run::Outcome::exit(1)
            } else {
                dry_run::Outcome::success().with_stdout("faked")
            }
        },
        || {
            (Command::new("echo").arg("x") | Command::new("grep").arg("y") | Command::new("cat"))
                .output()
        },
    );
    assert_eq!(lines, ["echo x", "grep y", "cat"]);
    let out = out.unwrap();
    assert_eq!(out.stdout, b"faked");
    assert_eq!(out.status.failed_stage(), Some(1));
    let (_, spawned) = dry_run::capture(|| (Command::new("true") | Command::new("true")).spawn());
    assert!(spawned.is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Any bytes come out of any number of `cat` stages as they went in,
    /// and every stage succeeds.
    #[test]
    fn bytes_pass_unchanged(data in proptest::collection::vec(any::<u8>(), 0..200_000), stages in 1usize..5) {
        let mut p = Pipeline::new(Command::new("cat"));
        for _ in 1..stages {
            p = p | Command::new("cat");
        }
        let out = p.input(data.clone()).output().unwrap();
        prop_assert_eq!(out.status.len(), stages);
        prop_assert!(out.status.success());
        prop_assert_eq!(out.stdout, data);
    }
}
