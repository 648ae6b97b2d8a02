//! The `--landlock-*` options, with the real binary: the program reads,
//! writes and runs what the rules allow and nothing else; a system without
//! landlock is a set-up failure (125), best effort or not.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_safespawn");

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The landlock ABI, asked the kernel directly.
fn kernel_abi() -> Option<i64> {
    // SAFETY: the version query reads no memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32,
        )
    };
    (rc > 0).then_some(rc)
}

/// A scratch directory, removed when dropped.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `--landlock-read` and `--landlock-exec` for the system's directories.
fn system_rules() -> Vec<String> {
    let mut args = Vec::new();
    for dir in ["/usr", "/bin", "/lib", "/lib64", "/etc"] {
        if Path::new(dir).exists() {
            args.extend(["--landlock-read".to_string(), dir.to_string()]);
            if dir != "/etc" {
                args.extend(["--landlock-exec".to_string(), dir.to_string()]);
            }
        }
    }
    args
}

#[test]
fn landlock_options_confine_the_program() {
    let dir = Dir(std::env::temp_dir().join(format!("safespawn-cli-ll-{}", std::process::id())));
    for sub in ["ro", "rw", "none"] {
        std::fs::create_dir_all(dir.0.join(sub)).unwrap();
        std::fs::write(dir.0.join(sub).join("f"), "f\n").unwrap();
    }
    let script = "cat ro/f && echo w > rw/new && { cat none/f || echo none: denied; } \
                  && { (echo w > ro/new) || echo ro: denied; }";
    let mut args = system_rules();
    // Relative paths are the working directory's.
    args.extend(
        [
            "--landlock-read",
            "ro",
            "--landlock-write",
            "rw",
            "--",
            "/bin/sh",
            "-c",
            script,
        ]
        .map(String::from),
    );
    let run = |args: &[String]| {
        Command::new(BIN)
            .args(args)
            .current_dir(&dir.0)
            .output()
            .unwrap()
    };
    if kernel_abi().is_none() {
        let o = run(&args);
        assert_eq!(o.status.code(), Some(125), "{o:?}");
        assert!(stderr(&o).contains("landlock"), "{}", stderr(&o));
        let mut best = args.clone();
        best.insert(0, "--landlock-best-effort".into());
        let o = run(&best);
        assert_eq!(o.status.code(), Some(125), "{o:?}");
        eprintln!("no landlock here: only the refusal is checked");
        return;
    }
    if kernel_abi() < Some(3) {
        args.insert(0, "--landlock-best-effort".into());
    }
    let o = run(&args);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert_eq!(out, "f\nnone: denied\nro: denied\n", "{}", stderr(&o));
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dir.0.join("rw/new")).unwrap(),
        "w\n"
    );
    assert!(!dir.0.join("ro/new").exists());

    // A path that does not exist is named.
    let o = Command::new(BIN)
        .args(["--landlock-read", "/no/such/dir", "--", "/bin/true"])
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("/no/such/dir"), "{}", stderr(&o));
}

#[test]
fn tcp_rules_and_best_effort_alone() {
    // --landlock-best-effort needs a rule.
    let o = Command::new(BIN)
        .args(["--landlock-best-effort", "--", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(125), "{o:?}");
    if kernel_abi() < Some(4) {
        eprintln!("no landlock ABI 4 here: TCP rules not checked");
        return;
    }
    // bash opens TCP connections itself (/dev/tcp/HOST/PORT).
    if !Path::new("/bin/bash").exists() && !Path::new("/usr/bin/bash").exists() {
        eprintln!("no bash here: TCP rules not checked");
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let connect = |allowed: &str| {
        let o = Command::new(BIN)
            .args(["--landlock-tcp-connect", allowed, "--", "bash", "-c"])
            .arg(format!(
                "exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected || echo refused"
            ))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned() + &stderr(&o)
    };
    let yes = connect(&port);
    assert!(yes.starts_with("connected"), "{yes}");
    let no = connect("1");
    assert!(
        no.contains("refused") && no.contains("Permission denied"),
        "{no}"
    );
}
