//! What `exec` receives: argv, the environment and the program path
//! (PATH lookup, NUL and E2BIG checks at build), the working directory, and
//! the exec and chdir failures, checked through the test helper's report.
//! Also the property that argv and env survive the trip byte for byte
//! (random byte strings without NUL, empty and long ones included).

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use common::{helper, report_of, HELPER};
use proptest::prelude::*;
use safespawn::{BuildErrorKind, Command, Errno, Error, Stage, Stdio};

fn tempdir() -> common::Scratch {
    common::Scratch::new("exec")
}

// ---------------------------------------------------------------- argv

#[test]
fn argv_round_trips_exactly() {
    let args: Vec<&[u8]> = vec![
        b"",
        b"plain",
        b"with space",
        b"  leading and trailing  ",
        b"'single'",
        b"\"double\"",
        b"back\\slash",
        b"$HOME;|&<>*?",
        b"new\nline\ttab",
        b"\xff\xfe not utf-8 \x80",
        b"",
        "ünïcödé ✓".as_bytes(),
    ];
    let cmd = helper("report").args(args.iter().map(|a| OsStr::from_bytes(a)));
    let r = report_of(cmd);
    assert_eq!(r.args.len(), args.len());
    for (got, want) in r.args.iter().zip(&args) {
        assert_eq!(got.as_slice(), *want);
    }
}

#[test]
fn arg_pair_fmt_and_from_argv() {
    let r = report_of(
        Command::from_argv([HELPER, "::report", "x"])
            .arg_pair("name", "va lue")
            .arg_fmt(format_args!("-n{}", 42)),
    );
    assert_eq!(
        r.args,
        vec![b"x".to_vec(), b"name=va lue".to_vec(), b"-n42".to_vec()]
    );
}

// ---------------------------------------------------------------- environment

#[test]
fn no_env_call_inherits_the_parent_environment_at_build() {
    let prepared = helper("report").stdout(Stdio::piped()).build().unwrap();
    // The snapshot is taken at build(): a variable set afterwards is not seen.
    std::env::set_var("SAFESPAWN_TEST_AFTER_BUILD", "1");
    let r = common::report_from(&prepared);
    let ours = |e: &String| !e.starts_with("SAFESPAWN_TEST_");
    let mut parent: Vec<String> = std::env::vars()
        .map(|(k, v)| format!("{k}={v}"))
        .filter(ours)
        .collect();
    parent.sort();
    let child: Vec<String> = r.env_str().into_iter().filter(ours).collect();
    assert_eq!(child, parent);
    assert!(!r
        .env_str()
        .iter()
        .any(|e| e.starts_with("SAFESPAWN_TEST_AFTER_BUILD")));
}

#[test]
fn any_env_call_means_exactly_the_listed_variables() {
    let r = report_of(helper("report").env("A", "1").env("B", "two words"));
    assert_eq!(r.env_str(), vec!["A=1", "B=two words"]);
}

#[test]
fn a_key_set_twice_is_replaced_in_place() {
    let cmd = helper("report")
        .env("A", "1")
        .env("B", "2")
        .env_string("A=3");
    assert_eq!(cmd.to_string(), format!("A=3 B=2 {HELPER} ::report"));
    let r = report_of(cmd);
    assert_eq!(r.env_str(), vec!["A=3", "B=2"]);
}

#[test]
fn env_pass_copies_only_set_variables() {
    std::env::set_var("SAFESPAWN_TEST_PASS", "passed value");
    std::env::remove_var("SAFESPAWN_TEST_UNSET");
    let r = report_of(
        helper("report")
            .env_pass("SAFESPAWN_TEST_PASS")
            .env_pass("SAFESPAWN_TEST_UNSET"),
    );
    assert_eq!(r.env_str(), vec!["SAFESPAWN_TEST_PASS=passed value"]);
}

#[test]
fn env_pass_common_is_lc_all_plus_the_parents_values() {
    let r = report_of(helper("report").env_pass_common());
    let mut want = vec!["LC_ALL=C".to_string()];
    for k in [
        "PATH",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "TMPDIR",
    ] {
        if let Some(v) = std::env::var_os(k) {
            want.push(format!("{k}={}", v.to_string_lossy()));
        }
    }
    want.sort();
    assert_eq!(r.env_str(), want);
}

#[test]
fn env_remove_and_env_clear() {
    // Removing while inheriting filters the inherited environment.
    let r = report_of(helper("report").env_remove("PATH"));
    assert!(r.env_str().iter().all(|e| !e.starts_with("PATH=")));
    assert!(r.env_str().iter().any(|e| e.starts_with("HOME=")));
    // Clearing gives an empty environment to which later calls add.
    let r = report_of(
        helper("report")
            .env("GONE", "1")
            .env_clear()
            .env("KEPT", "1"),
    );
    assert_eq!(r.env_str(), vec!["KEPT=1"]);
    let r = report_of(helper("report").env_clear());
    assert!(r.env.is_empty());
}

#[test]
fn env_values_may_hold_any_bytes_but_nul() {
    let v = OsStr::from_bytes(b"\xff=x y\n");
    let r = report_of(helper("report").env("K", v));
    assert_eq!(r.env, vec![b"K=\xff=x y\n".to_vec()]);
}

#[test]
fn bad_environment_entries_are_named_by_build() {
    use BuildErrorKind::{Invalid, Nul};
    let cases: Vec<(Command, &str, BuildErrorKind)> = vec![
        (
            Command::new("true").env("", "x"),
            "the name is empty",
            Invalid,
        ),
        (
            Command::new("true").env("A=B", "x"),
            "contains '='",
            Invalid,
        ),
        (Command::new("true").env("A\0", "x"), "NUL", Nul),
        (Command::new("true").env("OK", "a\0b"), "NUL", Nul),
        (
            Command::new("true").env_string("NOEQUALS"),
            "no '='",
            Invalid,
        ),
    ];
    for (cmd, want, kind) in cases {
        let err = cmd.build().unwrap_err();
        assert!(matches!(err, Error::Build { .. }), "{err:?}");
        assert_eq!(err.build_kind(), Some(kind), "{err}");
        let msg = err.to_string();
        assert!(msg.contains(want), "{msg:?} should mention {want:?}");
        assert!(
            msg.contains("environment"),
            "{msg:?} should name the variable"
        );
    }
}

// ---------------------------------------------------------------- build checks

#[test]
fn build_names_the_offending_argument() {
    let err = Command::new("true")
        .arg("ok")
        .arg("b\0ad")
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid command: argument 2 \"b\\0ad\": contains a NUL byte at offset 1"
    );
    assert_eq!(err.build_kind(), Some(BuildErrorKind::Nul));
    let err = Command::new("").build().unwrap_err();
    assert_eq!(err.to_string(), "invalid command: program: is empty");
    assert_eq!(err.build_kind(), Some(BuildErrorKind::Invalid));
    let err = Command::from_argv(Vec::<&str>::new()).build().unwrap_err();
    assert_eq!(err.to_string(), "invalid command: program: is empty");
    assert_eq!(err.build_kind(), Some(BuildErrorKind::Invalid));
    let err = Command::new("true")
        .current_dir("/tm\0p")
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("working directory"), "{err}");
    assert_eq!(err.build_kind(), Some(BuildErrorKind::Nul), "{err}");
}

#[test]
fn a_bare_name_is_resolved_on_path() {
    // The parent's PATH...
    assert!(Command::new("sh")
        .args(["-c", "exit 0"])
        .status()
        .unwrap()
        .success());
    // ...or the child's, when the command sets one.
    let err = Command::new("sh")
        .env("PATH", "/nonexistent")
        .build()
        .unwrap_err();
    assert!(
        err.to_string().contains("not found in PATH=/nonexistent"),
        "{err}"
    );
    assert_eq!(err.build_kind(), Some(BuildErrorKind::NotFound), "{err}");
    let dir = tempdir();
    let prog = dir.join("only-here");
    common::copy_by_another_process(std::path::Path::new("/bin/true"), &prog);
    let st = Command::new("only-here")
        .env("PATH", dir.path())
        .status()
        .unwrap();
    assert!(st.success());
    // Found but not executable: said so.
    let noexec = dir.join("noexec-prog");
    std::fs::write(&noexec, "#!/bin/sh\n").unwrap();
    let err = Command::new("noexec-prog")
        .env("PATH", dir.path())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("not executable"), "{err}");
    assert_eq!(
        err.build_kind(),
        Some(BuildErrorKind::NotExecutable),
        "{err}"
    );
}

#[test]
fn e2big_is_a_build_error() {
    let huge = "x".repeat(200_000);
    let err = Command::new("true").arg(&huge).build().unwrap_err();
    assert!(
        err.to_string().contains("argument 1") && err.to_string().contains("E2BIG"),
        "{err}"
    );
    assert_eq!(err.build_kind(), Some(BuildErrorKind::TooLong), "{err}");
    let many: Vec<String> = (0..100_000).map(|i| format!("argument-{i:08}")).collect();
    let err = Command::new("true").args(&many).build().unwrap_err();
    assert!(err.to_string().contains("E2BIG"), "{err}");
    assert_eq!(err.build_kind(), Some(BuildErrorKind::TooLong), "{err}");
    // Just under the single-string limit is fine.
    let ok = "y".repeat(100_000);
    assert!(Command::new("true").arg(&ok).status().unwrap().success());
}

// ---------------------------------------------------------------- cwd and errors

#[test]
fn current_dir_is_applied() {
    let r = report_of(helper("report").current_dir("/usr"));
    assert_eq!(r.field("cwd"), "/usr");
}

fn spawn_error(cmd: Command) -> (Stage, Errno) {
    match cmd.spawn() {
        Err(Error::Spawn { stage, errno, .. }) => (stage, errno),
        other => panic!("expected a spawn error, got {other:?}"),
    }
}

#[test]
fn exec_and_chdir_errors_carry_stage_and_errno() {
    assert_eq!(
        spawn_error(Command::new("/nonexistent/program")),
        (Stage::Exec, Errno::NOENT)
    );
    let dir = tempdir();
    let noexec = dir.join("no-exec-bit");
    std::fs::write(&noexec, "#!/bin/sh\nexit 0\n").unwrap();
    assert_eq!(
        spawn_error(Command::new(&noexec)),
        (Stage::Exec, Errno::ACCESS)
    );
    assert_eq!(
        spawn_error(Command::new("true").current_dir("/nonexistent-dir")),
        (Stage::Chdir, Errno::NOENT)
    );
    // The error says what and where, and maps to io::Error.
    let err = Command::new("true")
        .current_dir("/nonexistent-dir")
        .status()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not start true: changing the working directory /nonexistent-dir failed: No such file or directory (os error 2)"
    );
    assert_eq!(
        std::io::Error::from(err).kind(),
        std::io::ErrorKind::NotFound
    );
}

// ---------------------------------------------------------------- byte-exact round trip (property)

fn no_nul(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => proptest::collection::vec(1u8..=255, 0..24),
        1 => Just(Vec::new()),
        1 => proptest::collection::vec(1u8..=255, 1000..max),
    ]
}

/// A valid variable name: non-empty, no '=', no NUL.
fn env_name() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec((1u8..=255).prop_filter("no =", |b| *b != b'='), 1..16)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn argv_round_trips(args in proptest::collection::vec(no_nul(20_000), 0..12)) {
        let cmd = helper("report").args(args.iter().map(|a| OsStr::from_bytes(a)));
        let r = report_of(cmd);
        prop_assert_eq!(r.args, args);
    }

    #[test]
    fn env_round_trips(vars in proptest::collection::vec((env_name(), no_nul(8_000)), 0..10)) {
        let mut cmd = helper("report").env_clear();
        let mut want: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for (k, v) in &vars {
            cmd = cmd.env(OsStr::from_bytes(k), OsStr::from_bytes(v));
            want.insert(k.clone(), v.clone());
        }
        let r = report_of(cmd);
        let mut want: Vec<Vec<u8>> = want
            .into_iter()
            .map(|(mut k, v)| { k.push(b'='); k.extend(v); k })
            .collect();
        // The helper sorts whole `K=V` entries: a key that is a prefix of
        // another ("\x89" and "\x89\x01") may sort after it once '=' follows.
        want.sort();
        prop_assert_eq!(r.env, want);
    }
}

/// Found by proptest: one key a prefix of another, with a byte below '='.
#[test]
fn env_keys_that_prefix_each_other_round_trip() {
    let r = report_of(
        helper("report")
            .env_clear()
            .env(OsStr::from_bytes(b"\x89"), "")
            .env(OsStr::from_bytes(b"\x89\x01"), ""),
    );
    assert_eq!(r.env, vec![b"\x89\x01=".to_vec(), b"\x89=".to_vec()]);
}
