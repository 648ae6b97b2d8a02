//! `env_string(s)` then `build()`: never panics; accepted iff `s` has an `=`
//! after a non-empty name and no NUL byte; the line shows it exactly.
#![no_main]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use libfuzzer_sys::fuzz_target;
use safespawn::{Command, Error};
use safespawn_fuzz::check_line;

fuzz_target!(|data: &[u8]| {
    let cmd = Command::new("/nonexistent/x").env_string(OsStr::from_bytes(data));
    let line = cmd.to_string();
    let split = data.iter().position(|&b| b == b'=');
    let env: Vec<(Vec<u8>, Vec<u8>)> = match split {
        Some(eq) => vec![(data[..eq].to_vec(), data[eq + 1..].to_vec())],
        None => vec![],
    };
    if let Err(e) = check_line(&line, &env, &[b"/nonexistent/x".to_vec()]) {
        panic!("{e}");
    }
    let valid = matches!(split, Some(eq) if eq > 0) && !data.contains(&0);
    match cmd.build() {
        Ok(_) => assert!(valid, "accepted an invalid env string {data:?}"),
        Err(Error::Build { item, problem, .. }) => {
            assert!(
                !valid,
                "refused a valid env string {data:?}: {item}: {problem}"
            );
            assert!(
                item.starts_with("environment"),
                "item {item:?} does not name the variable"
            );
        }
        Err(other) => panic!("not a build error: {other}"),
    }
});
