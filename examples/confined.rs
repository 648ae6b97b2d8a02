//! A program in new namespaces, without privilege: a user namespace in
//! which the caller is root (`map_root`), its own network (only a loopback
//! that is down), hostname and pid namespace (the program is pid 1).
//!
//! `cargo run --example confined -- [PROGRAM [ARGS...]]`
//! (default: a shell printing what it sees).

use safespawn::{Command, Namespaces, Stdio};

fn main() -> Result<(), safespawn::Error> {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.is_empty() {
        argv = [
            "/bin/sh",
            "-c",
            "id -u; hostname; echo pid $$; tail -n +3 /proc/net/dev | cut -d: -f1",
        ]
        .map(String::from)
        .to_vec();
    }
    let finished = Command::from_argv(&argv)
        .map_root()
        .unshare(Namespaces::NET | Namespaces::UTS | Namespaces::PID)
        .hostname("sandbox")
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()?;
    std::process::exit(finished.code().unwrap_or(1));
}
