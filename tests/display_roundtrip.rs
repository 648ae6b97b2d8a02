//! The quoted command line is exact: a POSIX shell running
//! `exec env -i <line>` starts the program with exactly the argv and
//! environment of the command (property-tested through /bin/sh, with the
//! shell itself started by safespawn). Also the libvirt line-broken form and
//! the unquoted argument log.

mod common;

use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;

use proptest::prelude::*;
use safespawn::Command;

use common::{report_of, HELPER};

/// Pieces that exercise the quoting: shell syntax, blanks, quotes, never
/// quoted punctuation, non-ASCII text and bytes that are not UTF-8.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => prop::sample::select(
            b" \t\n\r!\"#$&'()*;<>?[\\]^`{|}~=%,:/-.@+".to_vec()
        )
        .prop_map(|b| vec![b]),
        1 => "[a-zA-Z0-9_]{1,4}".prop_map(String::into_bytes),
        1 => prop::sample::select(vec!["é", "日本", "\u{a0}", "ß", "😀"])
            .prop_map(|s| s.as_bytes().to_vec()),
        2 => prop::sample::select(vec![
            "$HOME", "$1", "$$", "${x:-y}", "$(id)", "`id`", "*", "/*", "?", "[ab]", "~",
            "~root", "'\\''", "\\n", "a=b", "--", "&&", ";", "#", "!", "{a,b}", "<x", ">x"
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        1 => (1u8..=255).prop_map(|b| vec![b]),
        1 => (0x80u8..=0xff).prop_map(|b| vec![b]),
    ]
}

/// A byte string without NUL, possibly empty.
fn word() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(piece(), 0..6).prop_map(|v| v.concat())
}

fn env_name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,6}"
}

fn helper_command(args: &[Vec<u8>], env: &[(String, Vec<u8>)]) -> Command {
    let mut cmd = Command::new(HELPER)
        .arg("::report")
        .args(args.iter().map(|a| OsStr::from_bytes(a)))
        .env_clear();
    for (k, v) in env {
        cmd = cmd.env(k, OsStr::from_bytes(v));
    }
    cmd
}

/// Runs `exec env -i <text>` with /bin/sh and checks the helper's report.
fn check_through_shell(text: &str, args: &[Vec<u8>], env: &[(String, Vec<u8>)]) {
    let script = format!("exec env -i {text}");
    let report = report_of(Command::new("/bin/sh").arg("-c").arg(&script));
    assert_eq!(report.args, args, "argv differs for script:\n{script}");
    let mut expected: Vec<Vec<u8>> = env
        .iter()
        .map(|(k, v)| [k.as_bytes(), b"=", v].concat())
        .collect();
    expected.sort();
    assert_eq!(report.env, expected, "env differs for script:\n{script}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn shell_runs_exactly_the_command(
        args in prop::collection::vec(word(), 0..6),
        env in prop::collection::btree_map(env_name(), word(), 0..4),
    ) {
        let env: Vec<(String, Vec<u8>)> = env.into_iter().collect();
        let cmd = helper_command(&args, &env);
        let line = cmd.to_string();
        let multiline = cmd.display_multiline();
        let prepared = cmd.build().unwrap();
        prop_assert_eq!(&prepared.to_string(), &line);
        prop_assert_eq!(&prepared.display_multiline(), &multiline);
        check_through_shell(&line, &args, &env);
        check_through_shell(&multiline, &args, &env);
    }
}

#[test]
fn libvirt_test26_multiline() {
    let cmd = Command::new("true").env("A", "B").env("C", "D  E").args([
        "--foo",
        "bar",
        "--oooh",
        "-f",
        "--wizz",
        "eek eek",
        "--m-m-m-multiarg",
        "arg",
        "arg2",
        "-w",
        "-z",
        "-l",
        "--mmm",
        "flash",
        "bang",
        "wallop",
    ]);
    let expected = "A=B \\\n\
                    C='D  E' \\\n\
                    true \\\n\
                    --foo bar \\\n\
                    --oooh \\\n\
                    -f \\\n\
                    --wizz 'eek eek' \\\n\
                    --m-m-m-multiarg arg arg2 \\\n\
                    -w \\\n\
                    -z \\\n\
                    -l \\\n\
                    --mmm flash \\\n\
                    bang \\\n\
                    wallop";
    assert_eq!(cmd.display_multiline(), expected);
    assert_eq!(cmd.build().unwrap().display_multiline(), expected);
}

#[test]
fn inherited_environment_is_never_shown() {
    let cmd = Command::new("true").arg("x");
    assert_eq!(cmd.display_multiline(), "true \\\nx");
    let p = cmd.build().unwrap();
    assert_eq!(p.display_multiline(), "true \\\nx");
    assert_eq!(p.to_string(), "true x");
}

fn arg_log_of(write: impl FnOnce(&std::io::PipeWriter)) -> Vec<u8> {
    let (mut r, w) = std::io::pipe().unwrap();
    write(&w);
    drop(w);
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

#[test]
fn arg_log_is_unquoted_and_byte_exact() {
    let cmd = Command::new("prog").env("A", "b c").env("E", "").args([
        OsStr::new("x y"),
        OsStr::new(""),
        OsStr::from_bytes(b"\xff'"),
    ]);
    let expected = b"A=b c E= prog x y  \xff'\n".to_vec();
    assert_eq!(arg_log_of(|w| cmd.write_arg_log(w).unwrap()), expected);
    let p = cmd.build_unchecked_for_test();
    assert_eq!(arg_log_of(|w| p.write_arg_log(w).unwrap()), expected);
}

#[test]
fn arg_log_to_a_closed_pipe_is_an_error() {
    let (r, w) = std::io::pipe().unwrap();
    drop(r);
    // SIGPIPE is ignored by the test harness's Rust runtime: the write fails with EPIPE.
    let err = Command::new("true").write_arg_log(&w).unwrap_err();
    assert!(
        err.to_string().contains("writing the argument log"),
        "{err}"
    );
}

trait BuildForTest {
    fn build_unchecked_for_test(self) -> safespawn::Prepared;
}

impl BuildForTest for Command {
    /// `prog` is not installed: build inside a dry-run scope, which accepts it.
    fn build_unchecked_for_test(self) -> safespawn::Prepared {
        let (_, p) = safespawn::dry_run::capture(|| self.build());
        p.unwrap()
    }
}

#[test]
fn tricky_words_round_trip() {
    let args: Vec<Vec<u8>> = [
        "~", "~root/x", "*", "/*", "$HOME", "", "a b", "x=y", "-", "--", "it's", "\\", "\n", "!",
        "#", "a#", "{a,b}", "\u{a0}",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .chain([b"\xff\xfe".to_vec(), b"a\x80 b".to_vec()])
    .collect();
    let env = vec![
        ("A".to_string(), b"~".to_vec()),
        ("B".to_string(), b"x:~".to_vec()),
        ("C".to_string(), Vec::new()),
        ("D".to_string(), b"$HOME".to_vec()),
    ];
    let cmd = helper_command(&args, &env);
    check_through_shell(&cmd.to_string(), &args, &env);
    check_through_shell(&cmd.display_multiline(), &args, &env);
}

/// A variable whose name a shell cannot assign (`A-B`) used to be written
/// as a quoted `'A-B=x'` word in command position, so the line, run as it
/// is, ran a program called `A-B=x`. It now starts with `env`, which sets
/// the variable, both in the one-line and the multi-line form.
#[test]
fn a_line_with_a_name_a_shell_cannot_assign_runs_as_given() {
    let args = vec![b"x y".to_vec()];
    let env = vec![
        ("A-B".to_string(), b"1 2".to_vec()),
        ("C".to_string(), b"3".to_vec()),
    ];
    let cmd = helper_command(&args, &env);
    for text in [cmd.to_string(), cmd.display_multiline()] {
        assert!(text.starts_with("env "), "{text}");
        // No `env -i` prefix of the test's own: the line runs as it is, in
        // an empty environment so that only its own variables are seen.
        let report = report_of(
            Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("exec {text}"))
                .env_clear(),
        );
        assert_eq!(report.args, args, "argv differs for:\n{text}");
        let mut expected: Vec<Vec<u8>> = vec![b"A-B=1 2".to_vec(), b"C=3".to_vec()];
        expected.sort();
        let mut got = report.env.clone();
        // The shell may export variables of its own (PWD): keep only ours.
        got.retain(|e| e.starts_with(b"A-B=") || e.starts_with(b"C="));
        assert_eq!(got, expected, "env differs for:\n{text}");
    }
}
