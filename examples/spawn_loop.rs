//! Spawns and reaps `/bin/true` COUNT times (default 10,000), through one
//! `Prepared`, with a pipe on stdout and a mapped fd, then builds and drops
//! COUNT/10 commands that fail to build or to spawn. For memory checking:
//!
//! ```text
//! cargo build --example spawn_loop
//! valgrind --leak-check=full --error-exitcode=1 target/debug/examples/spawn_loop 10000
//! ```

use std::io::Read;

use safespawn::{Command, Stdio};

fn main() -> Result<(), safespawn::Error> {
    let count: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("COUNT must be a number"))
        .unwrap_or(10_000);
    let prepared = Command::new("/bin/true")
        .arg("x y")
        .env("A", "1")
        .stdout(Stdio::piped())
        .map_fd(std::fs::File::open("/dev/null")?, 5)
        .build()?;
    for _ in 0..count {
        let mut child = prepared.spawn()?;
        let mut out = Vec::new();
        child.take_stdout().expect("piped").read_to_end(&mut out)?;
        child.wait()?.check()?;
    }
    for _ in 0..count / 10 {
        assert!(Command::new("/bin/true").arg("a\0b").build().is_err());
        assert!(Command::new("/nonexistent/prog").status().is_err());
        let _ = Command::new("/bin/true")
            .current_dir("/nonexistent")
            .status();
    }
    println!("{count} spawns done");
    Ok(())
}
