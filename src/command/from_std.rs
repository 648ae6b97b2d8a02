//! [`Command::from_std`]: what a `std::process::Command` says that std
//! lets a caller read, as a safespawn command.

use super::Command;
use crate::error::{BuildErrorKind, Error};
use crate::mode::Direct;

/// Whether a std command clears the environment, as far as std tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clear {
    Yes,
    No,
    /// Neither known form of std's output: refuse rather than guess.
    Unknown,
}

/// Reads `env_clear()` off a std command. Stable std (1.87 and later) has
/// no getter for it (`Command::get_env_clear` is unstable, feature
/// `command_resolved_envs`); its alternate `Debug` form on Unix prints the
/// environment record as `env: CommandEnv { clear: <bool>, vars: .. }`,
/// and leaves the field out when the environment is unchanged. Strings in
/// that output are `Debug`-escaped (a newline is `\n`), so the patterns
/// below, which contain real newlines, cannot come from a program name,
/// an argument or a value.
fn env_clear_of(std_cmd: &std::process::Command) -> Clear {
    let text = format!("{std_cmd:#?}");
    let record = "\n    env: CommandEnv {\n        clear: ";
    match text.find(record).map(|at| &text[at + record.len()..]) {
        Some(rest) if rest.starts_with("true,") => Clear::Yes,
        Some(rest) if rest.starts_with("false,") => Clear::No,
        Some(_) => Clear::Unknown,
        // No record: std prints it whenever the environment was touched
        // (a variable set or removed, or a clear); without one, nothing
        // was, which the getter confirms.
        None if std_cmd.get_envs().next().is_none() && text.starts_with("Command {\n") => Clear::No,
        None => Clear::Unknown,
    }
}

impl Command<Direct> {
    /// The program, arguments, environment changes and working directory
    /// of a `std::process::Command`, so a caller can move one call site at
    /// a time.
    ///
    /// What is carried over:
    ///
    /// * the program ([`get_program`](std::process::Command::get_program))
    ///   and the arguments ([`get_args`](std::process::Command::get_args));
    /// * the environment with std's meaning: the variables std sets are
    ///   added to the inherited environment (or replace the parent's
    ///   values), the ones it removes are left out of it
    ///   ([`get_envs`](std::process::Command::get_envs)); after
    ///   `env_clear()` the child gets exactly the variables set after it.
    ///   Stable std has no getter for `env_clear()`: it is read from std's
    ///   alternate `Debug` output (its `CommandEnv { clear: .. }` record).
    ///   Where that output has neither known form, `build()` refuses the
    ///   command instead of guessing (an environment that was meant to be
    ///   cleared must never be inherited). A later environment call on
    ///   the returned command follows safespawn's own model (the listed
    ///   variables only, see [`env`](Command::env));
    /// * the working directory
    ///   ([`get_current_dir`](std::process::Command::get_current_dir)).
    ///
    /// What is not, because std offers no way to read it: the standard
    /// streams (they stay at safespawn's default, [`Stdio::null`](crate::Stdio::null),
    /// where std's `spawn` and `status` inherit: set them again), and the
    /// Unix extensions (`arg0`, `uid`, `gid`, `groups`, `process_group`,
    /// `pre_exec`). std's own `Command` is left as it is.
    ///
    /// # Errors
    ///
    /// None here; `build()` checks the result as for any command, and
    /// refuses one whose `env_clear()` could not be read with
    /// [`BuildErrorKind::Invalid`] naming the std command's environment.
    ///
    /// ```
    /// use safespawn::Command;
    ///
    /// let mut std_cmd = std::process::Command::new("sh");
    /// std_cmd.args(["-c", "test \"$GREETING\" = hi && test -z \"$HOME\" && test \"$(pwd)\" = /tmp"])
    ///     .env_clear()
    ///     .env("GREETING", "hi")
    ///     .current_dir("/tmp");
    /// let cmd = Command::from_std(&std_cmd);
    /// assert_eq!(cmd.to_string(), "GREETING=hi sh -c 'test \"$GREETING\" = hi && test -z \"$HOME\" && test \"$(pwd)\" = /tmp'");
    /// assert!(cmd.status()?.success());
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn from_std(std_cmd: &std::process::Command) -> Command<Direct> {
        let mut cmd = Command::new(std_cmd.get_program()).args(std_cmd.get_args());
        let clear = env_clear_of(std_cmd);
        match clear {
            Clear::Yes => cmd = cmd.env_clear(),
            Clear::No => {}
            Clear::Unknown => {
                // Stop inheriting, so nothing of the parent's environment
                // can leak even if the error were ignored, and refuse.
                cmd.cfg.env.make_explicit();
                cmd.defer(Error::build(
                    BuildErrorKind::Invalid,
                    "the environment of the std command",
                    "cannot tell whether env_clear() was called (std's Debug output has an unknown form)",
                ));
            }
        }
        for (key, value) in std_cmd.get_envs() {
            match value {
                Some(value) if clear == Clear::No => cmd
                    .cfg
                    .env
                    .set_keep_inheriting(key.to_owned(), value.to_owned()),
                Some(value) => cmd = cmd.env(key, value),
                None => cmd = cmd.env_remove(key),
            }
        }
        if let Some(dir) = std_cmd.get_current_dir() {
            cmd = cmd.current_dir(dir);
        }
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_clear_is_read() {
        let mut c = std::process::Command::new("ls");
        assert_eq!(env_clear_of(&c), Clear::No);
        c.env("A", "1");
        assert_eq!(env_clear_of(&c), Clear::No);
        c.env_remove("B");
        assert_eq!(env_clear_of(&c), Clear::No);
        c.env_clear();
        assert_eq!(env_clear_of(&c), Clear::Yes);
        // A program or value spelling the record does not fool it.
        let mut c = std::process::Command::new("\n    env: CommandEnv {\n        clear: true,");
        c.env("X", "\n    env: CommandEnv {\n        clear: true,");
        assert_eq!(env_clear_of(&c), Clear::No);
    }
}
