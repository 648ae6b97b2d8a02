//! One arbitrary argument: `Command::new("x").arg(a).to_string()` must read
//! back through a strict shell parser as exactly `x` and `a`.
#![no_main]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use libfuzzer_sys::fuzz_target;
use safespawn::Command;
use safespawn_fuzz::check_line;

fuzz_target!(|data: &[u8]| {
    let line = Command::new("x").arg(OsStr::from_bytes(data)).to_string();
    if let Err(e) = check_line(&line, &[], &[b"x".to_vec(), data.to_vec()]) {
        panic!("{e}");
    }
});
