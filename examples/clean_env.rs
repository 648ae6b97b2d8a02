//! Runs a real program the way safespawn does by default: a clean, explicit
//! environment, /dev/null stdin, nothing inherited but stdout/stderr.
//!
//! `cargo run --example clean_env -- [PROGRAM [ARGS...]]` (default: `env`).

use safespawn::{Command, Stdio};

fn main() -> Result<(), safespawn::Error> {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.is_empty() {
        argv = vec!["env".into()];
    }
    let prepared = Command::from_argv(&argv)
        .env_pass_common()
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .build()?;
    eprintln!("+ {prepared}");
    let finished = prepared.status()?;
    eprintln!("{finished}");
    std::process::exit(finished.code().unwrap_or(1));
}
