//! A program in a sandbox, without privilege: a user namespace in which
//! the caller is root (`map_root`), its own network (only a loopback that
//! is down), hostname and pid namespace (the program is pid 1), and its own
//! filesystem view: a fresh tmpfs as `/` holding read-only binds of the
//! system directories, a `/tmp`, a `/proc` of its pid namespace and a
//! minimal `/dev` (bubblewrap's model).
//!
//! `cargo run --example confined -- [PROGRAM [ARGS...]]`
//! (default: a shell printing what it sees).

use safespawn::{Command, Mount, Namespaces, Stdio};

fn main() -> Result<(), safespawn::Error> {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.is_empty() {
        argv = [
            "/bin/sh",
            "-c",
            "id -u; hostname; echo pid $$; ls /; ls /proc | grep -c '^[0-9]'; \
             touch /usr/x 2>&1; touch /tmp/x && echo /tmp is writable; \
             tail -n +3 /proc/net/dev | cut -d: -f1",
        ]
        .map(String::from)
        .to_vec();
    }
    let mut cmd = Command::from_argv(&argv)
        .map_root()
        .unshare(Namespaces::MOUNT | Namespaces::NET | Namespaces::UTS | Namespaces::PID)
        .hostname("sandbox")
        .root_tmpfs();
    for dir in ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc"] {
        // Where the system has them (and with what the symlinks of a
        // merged /usr point to).
        cmd = cmd.mount(Mount::bind_ro(dir, dir).optional());
    }
    let finished = cmd
        .mount(Mount::tmpfs("/tmp"))
        .mount(Mount::proc("/proc"))
        .mount(Mount::dev("/dev"))
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()?;
    std::process::exit(finished.code().unwrap_or(1));
}
