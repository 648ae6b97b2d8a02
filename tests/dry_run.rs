//! `safespawn::dry_run`: commands are recorded, not run; scopes are per
//! thread, nest, and survive panics.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use safespawn::dry_run::{self, Outcome};
use safespawn::{BuildErrorKind, Command, Error};

fn marker(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("safespawn-dry-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn touch(p: &Path) -> Command {
    Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("touch '{}'", p.display()))
}

#[test]
fn capture_records_and_runs_nothing() {
    let m = marker("nothing");
    let (lines, result) = dry_run::capture(|| {
        let a = touch(&m).run().map(|f| f.success());
        let b = Command::new("false")
            .env("A", "b c")
            .status()
            .map(|s| s.code());
        (a, b)
    });
    assert!(result.0.unwrap());
    assert_eq!(result.1.unwrap(), Some(0), "a dry run succeeds with exit 0");
    assert_eq!(
        lines,
        [
            format!("/bin/sh -c 'touch '\\''{}'\\'''", m.display()),
            "A='b c' false".to_string()
        ]
    );
    assert!(!m.exists(), "the command must not have run");
    // Outside the scope it runs for real.
    touch(&m).run().unwrap();
    assert!(m.exists());
    std::fs::remove_file(&m).unwrap();
}

#[test]
fn prepared_runs_are_recorded_each_time() {
    let p = Command::new("true").arg("x").build().unwrap();
    let (lines, ()) = dry_run::capture(|| {
        for _ in 0..3 {
            p.run().unwrap();
        }
    });
    assert_eq!(lines, ["true x"; 3]);
}

#[test]
fn handler_chooses_outcome_and_run_checks_it() {
    let (lines, (st, run, killed)) = dry_run::capture_with(
        |line| match line {
            "prog a" => Outcome::exit(3),
            "prog k" => Outcome::killed(9),
            _ => Outcome::success(),
        },
        || {
            let st = Command::new("prog").arg("a").status().map(|s| s.code());
            let run = Command::new("prog").arg("a").run();
            let killed = Command::new("prog").arg("k").run();
            (st, run, killed)
        },
    );
    assert_eq!(lines, ["prog a", "prog a", "prog k"]);
    assert_eq!(st.unwrap(), Some(3));
    match run {
        Err(Error::Exit {
            status, command, ..
        }) => {
            assert_eq!(status.code(), Some(3));
            assert_eq!(command, "prog a");
        }
        other => panic!("expected Error::Exit, got {other:?}"),
    }
    assert_eq!(
        killed.unwrap_err().to_string(),
        "prog k was killed by signal 9"
    );
}

#[test]
fn handler_sees_every_line_in_order() {
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let (lines, ()) = dry_run::capture_with(
        move |line| {
            s2.lock().unwrap().push(line.to_owned());
            Outcome::success()
        },
        || {
            Command::new("one").run().unwrap();
            Command::new("two").arg("2").run().unwrap();
        },
    );
    assert_eq!(lines, ["one", "two 2"]);
    assert_eq!(*seen.lock().unwrap(), lines);
}

#[test]
fn spawn_is_refused_with_a_clear_error() {
    let (lines, (spawn, paused)) = dry_run::capture(|| {
        (
            Command::new("true").spawn().map(|_| ()),
            Command::new("true").spawn_paused().map(|_| ()),
        )
    });
    assert!(
        lines.is_empty(),
        "a refused spawn records nothing: {lines:?}"
    );
    for err in [spawn.unwrap_err(), paused.unwrap_err()] {
        assert!(matches!(err, Error::Build { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("cannot fake a live child"), "{msg}");
        assert!(msg.contains("command true"), "{msg}");
    }
}

#[test]
fn scopes_nest_and_restore_the_outer_one() {
    let (outer, inner) = dry_run::capture_with(
        |_| Outcome::exit(7),
        || {
            Command::new("a").status().unwrap();
            let (inner, code) = dry_run::capture(|| Command::new("b").status().unwrap().code());
            assert_eq!(
                code,
                Some(0),
                "the inner scope uses its own (default) outcome"
            );
            let code = Command::new("c").status().unwrap().code();
            assert_eq!(code, Some(7), "the outer handler is back");
            inner
        },
    );
    assert_eq!(outer, ["a", "c"]);
    assert_eq!(inner, ["b"]);
}

#[test]
fn scope_is_restored_when_f_panics() {
    let m = marker("panic");
    let caught = catch_unwind(AssertUnwindSafe(|| {
        dry_run::capture(|| {
            Command::new("x").run().unwrap();
            panic!("boom");
        })
    }));
    assert!(caught.is_err());
    // No scope left: spawning works and commands run for real.
    let child = Command::new("true").spawn().unwrap();
    assert!(child.wait().unwrap().success());
    touch(&m).run().unwrap();
    assert!(m.exists());
    std::fs::remove_file(&m).unwrap();

    // A panicking inner scope caught inside an outer one gives the outer back.
    let (outer, ()) = dry_run::capture(|| {
        let r = catch_unwind(AssertUnwindSafe(|| {
            dry_run::capture(|| {
                Command::new("inner").run().unwrap();
                panic!("inner boom");
            })
        }));
        assert!(r.is_err());
        Command::new("after").run().unwrap();
    });
    assert_eq!(outer, ["after"]);
}

#[test]
fn scope_is_per_thread() {
    let m = marker("thread");
    let m2 = m.clone();
    let (lines, ()) = dry_run::capture(|| {
        std::thread::spawn(move || touch(&m2).run().unwrap())
            .join()
            .unwrap();
    });
    assert!(lines.is_empty(), "{lines:?}");
    assert!(m.exists(), "another thread runs for real");
    std::fs::remove_file(&m).unwrap();
}

#[test]
fn helper_runs_inside_handler_are_recorded_too() {
    let (lines, ()) = dry_run::capture_with(
        |line| {
            if line == "outer" {
                // A handler may run commands; they land in the same scope.
                Command::new("from-handler").run().unwrap();
            }
            Outcome::success()
        },
        || Command::new("outer").run().map(drop).unwrap(),
    );
    assert_eq!(lines, ["outer", "from-handler"]);
}

#[test]
fn helper_binary_not_started() {
    // The real helper would print a report; in a dry run nothing runs at all.
    let (lines, st) = dry_run::capture(|| common::helper("exit=9").status().unwrap());
    assert!(st.success());
    assert_eq!(lines, [format!("{} ::exit=9", common::HELPER)]);
}

#[test]
fn missing_program_is_accepted_only_inside_a_scope() {
    let name = "safespawn-no-such-program-xyz";
    let (lines, st) = dry_run::capture(|| Command::new(name).arg("-v").status());
    assert!(st.unwrap().success());
    assert_eq!(lines, [format!("{name} -v")]);
    let err = Command::new(name).status().unwrap_err();
    assert!(matches!(err, Error::Build { .. }), "{err:?}");
}

/// The terminals of `controlling_tty` and `foreground` are not asked what
/// they are inside a scope (a test of code that runs an interactive
/// program need not run in a terminal); what the options name is.
#[test]
fn terminal_options_are_not_checked_against_the_fds_inside_a_scope() {
    let tty = || common::helper("tty").controlling_tty(0);
    let fg = || common::helper("tty").foreground();
    // Outside a scope both are refused: stdin is /dev/null, no terminal.
    assert_eq!(
        tty().build().unwrap_err().build_kind(),
        Some(BuildErrorKind::Invalid)
    );
    assert_eq!(
        fg().build().unwrap_err().build_kind(),
        Some(BuildErrorKind::Conflict)
    );
    let (lines, result) = dry_run::capture(|| {
        tty().status()?;
        fg().status()
    });
    assert!(result.unwrap().success());
    assert_eq!(lines.len(), 2, "{lines:?}");
    // A number the plan does not give the child, and contradictions, are
    // still refused.
    let (lines, result) = dry_run::capture(|| common::helper("tty").controlling_tty(9).status());
    assert_eq!(
        result.unwrap_err().build_kind(),
        Some(BuildErrorKind::Invalid)
    );
    let (_, result) = dry_run::capture(|| fg().new_session().status());
    assert_eq!(
        result.unwrap_err().build_kind(),
        Some(BuildErrorKind::Conflict)
    );
    assert!(lines.is_empty(), "{lines:?}");
}

#[test]
fn buffered_and_daemon_runs_are_faked_too() {
    let mark = marker("buffered");
    let (lines, out) = dry_run::capture_with(
        |_| {
            Outcome::exit(0)
                .with_stdout("faked out")
                .with_stderr("faked err")
        },
        || {
            Command::new("sh")
                .args(["-c", &format!("touch {}", mark.display())])
                .input("ignored input")
                .capture_stdout()
                .capture_stderr()
                .output()
        },
    );
    let out = out.unwrap();
    assert_eq!(out.stdout, b"faked out");
    assert_eq!(out.stderr, b"faked err");
    assert_eq!(lines.len(), 1);
    assert!(!mark.exists(), "a buffered dry run ran the command");

    // run() checks the fake status and carries the fake stderr.
    let (_, err) = dry_run::capture_with(
        |_| Outcome::exit(2).with_stderr("no such table"),
        || Command::new("psql").capture_stdout().capture_stderr().run(),
    );
    let err = err.unwrap_err();
    assert!(matches!(err, Error::Exit { .. }), "{err:?}");
    assert!(err.to_string().contains("no such table"), "{err}");

    // A daemon's run is recorded, not started.
    let (lines, started) =
        dry_run::capture(|| touch(&mark).daemonize().pidfile("/run/x.pid").run());
    let started = started.unwrap();
    assert_eq!((started.intermediate, started.daemon), (0, 0));
    assert_eq!(lines.len(), 1);
    assert!(!mark.exists(), "a daemon dry run ran the command");
}

#[test]
fn a_detailed_handler_fakes_outputs_from_the_arguments_and_the_input() {
    use std::ffi::OsStr;
    // The code under test: asks `iptables-save`-like tools for state and
    // feeds a rule set through stdin, as libvirt's firewall code does.
    fn apply(rules: &str) -> Result<(String, String), Error> {
        let version = Command::new("fw")
            .arg("--version")
            .env("FW_MODE", "strict")
            .capture_stdout()
            .output()?;
        let applied = Command::new("fw-restore")
            .args(["--table", "filter"])
            .input(rules)
            .output()?;
        Ok((
            String::from_utf8(version.stdout).unwrap(),
            String::from_utf8(applied.stdout).unwrap(),
        ))
    }
    let (lines, result) = dry_run::capture_with_details(
        |call| {
            let argv: Vec<&OsStr> = call.argv().to_vec();
            match argv.first().and_then(|a| a.to_str()) {
                // From an argument and the environment.
                Some("fw") if argv.get(1) == Some(&OsStr::new("--version")) => {
                    assert_eq!(call.input(), None);
                    let mode = call.env_var("FW_MODE").unwrap().to_str().unwrap();
                    Outcome::success().with_stdout(format!("fw 1.0 ({mode})\n"))
                }
                // From the input: one "ok" per rule line, and a failure for
                // a rule the fake does not know, named by the table argument.
                Some("fw-restore") => {
                    let table = argv[2].to_str().unwrap();
                    let input = String::from_utf8(call.input().unwrap().to_vec()).unwrap();
                    let mut out = String::new();
                    for rule in input.lines() {
                        if rule.starts_with("-A ") {
                            out.push_str(&format!("{table}: ok {rule}\n"));
                        } else {
                            return Outcome::exit(2).with_stderr(format!("bad rule {rule}\n"));
                        }
                    }
                    Outcome::success().with_stdout(out)
                }
                _ => Outcome::exit(127),
            }
        },
        || {
            (
                apply("-A INPUT -j ACCEPT\n-A OUTPUT -j DROP\n"),
                apply("-X\n"),
            )
        },
    );
    let (good, bad) = result;
    let (version, applied) = good.unwrap();
    assert_eq!(version, "fw 1.0 (strict)\n");
    assert_eq!(
        applied,
        "filter: ok -A INPUT -j ACCEPT\nfilter: ok -A OUTPUT -j DROP\n"
    );
    // output() reports a failing fake status as a status, not an error:
    // the unknown rule made the fake fail before any "ok".
    assert_eq!(bad.unwrap().1, "");
    assert_eq!(
        lines,
        [
            "FW_MODE=strict fw --version",
            "fw-restore --table filter",
            "FW_MODE=strict fw --version",
            "fw-restore --table filter",
        ]
    );
    // The same handler through run(): the fake failure is Error::Exit with
    // the fake stderr.
    let (_, err) = dry_run::capture_with_details(
        |call| match call.input() {
            Some(b"-X\n") => Outcome::exit(2).with_stderr("bad rule -X\n"),
            _ => Outcome::success(),
        },
        || Command::new("fw-restore").input("-X\n").run(),
    );
    match err {
        Err(Error::Exit { status, stderr, .. }) => {
            assert_eq!(status.code(), Some(2));
            assert_eq!(stderr, "bad rule -X\n");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_detailed_handler_sees_the_whole_environment_and_argv() {
    let (_, seen) = dry_run::capture_with_details(
        |call| {
            assert_eq!(call.env(), ["A=1", "B=x y"]);
            assert_eq!(call.env_var("B").unwrap(), "x y");
            assert_eq!(call.env_var("C"), None);
            assert_eq!(call.argv(), ["prog", "a b", ""]);
            assert_eq!(call.line(), "A=1 B='x y' prog 'a b' ''");
            Outcome::exit(3)
        },
        || {
            Command::new("prog")
                .env_clear()
                .env("A", "1")
                .env("B", "x y")
                .args(["a b", ""])
                .status()
        },
    );
    assert_eq!(seen.unwrap().code(), Some(3));
    // The line handler still works, through the same scope machinery.
    let (lines, st) = dry_run::capture_with(
        |line| Outcome::exit(u8::try_from(line.len()).unwrap()),
        || Command::new("abc").status(),
    );
    assert_eq!(lines, ["abc"]);
    assert_eq!(st.unwrap().code(), Some(3));
}
