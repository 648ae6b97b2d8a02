//! The command-line options, one group per area of the library, each in its
//! own module with its own `--help` heading and its own `apply`.
//!
//! The groups are applied in the order of `Cli`'s fields (main.rs). Calls
//! of different groups do not depend on each other's order; calls within a
//! group can (see env.rs). The stdio files are opened last, once the mode is
//! known (see fds.rs). The mounts are the exception to "within a group":
//! their order is the command line's, across option kinds (see mounts.rs).

pub mod cgroup;
pub mod credentials;
pub mod daemon;
pub mod env;
pub mod fds;
pub mod knobs;
pub mod landlock;
pub mod mounts;
pub mod namespaces;
pub mod process;
pub mod run;
pub mod session;
