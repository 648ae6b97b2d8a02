//! `compat-run PROFILE -- PROGRAM [ARGS...]`: runs PROGRAM under a compat
//! profile (see the crate docs, `compat_run`, or `compat-run --list`).
//!
//! Exit status: PROGRAM's own, since PROGRAM replaces the launcher; 125 when
//! the launcher itself fails (bad usage, a profile that cannot be set up),
//! 126 when PROGRAM cannot be executed, 127 when it is not found.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::process::ExitCode;

use compat_run::{apply, errno_name, Profile};

const USAGE: &str = "usage: compat-run PROFILE -- PROGRAM [ARGS...]
       compat-run --list

Runs PROGRAM under a seccomp filter that makes this system look like an
older kernel or a restrictive container (see --list for the profiles).";

fn list() {
    for p in Profile::ALL {
        println!("{:<13} {}", p.name(), p.summary());
        for rule in p.rules() {
            println!("{:<13}   {rule}", "");
        }
        if p.hides_proc() {
            println!("{:<13}   /proc unmounted in a private mount namespace", "");
        }
    }
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("compat-run: {message}");
    ExitCode::from(code)
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let first = args.first().map(|a| a.to_string_lossy().into_owned());
    match first.as_deref() {
        Some("--help" | "-h") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some("--list") => {
            list();
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let (Some(name), Some(sep)) = (first, args.get(1)) else {
        return fail(125, USAGE);
    };
    if sep.as_bytes() != b"--" || args.len() < 3 {
        return fail(125, USAGE);
    }
    let Some(profile) = Profile::from_name(&name) else {
        let known: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
        return fail(
            125,
            &format!("unknown profile {name:?} (known: {})", known.join(", ")),
        );
    };
    let mut argv = Vec::with_capacity(args.len() - 2);
    for a in &args[2..] {
        match CString::new(a.as_bytes()) {
            Ok(c) => argv.push(c),
            Err(_) => return fail(125, &format!("argument {a:?} contains a NUL byte")),
        }
    }
    let program = argv[0].clone();

    if let Err(e) = apply(profile) {
        return fail(125, &format!("profile {}: {e}", profile.name()));
    }

    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SAFETY: `program` and every element of `ptrs` are NUL-terminated
    // strings that live until the call returns; `ptrs` ends with a null.
    unsafe { libc::execvp(program.as_ptr(), ptrs.as_ptr()) };
    let err = std::io::Error::last_os_error();
    let errno = err.raw_os_error().unwrap_or(0);
    let code = if errno == libc::ENOENT { 127 } else { 126 };
    fail(
        code,
        &format!(
            "{}: {err} ({})",
            program.to_string_lossy(),
            errno_name(errno)
        ),
    )
}
