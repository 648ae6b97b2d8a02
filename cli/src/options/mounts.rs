//! Mounts: the program's filesystem view, with bubblewrap's option names.
//! The mounts are applied in the order given on the command line, across
//! the option kinds (a `--tmpfs` then a `--bind` below it is not the
//! reverse), so their positions are read from clap's matches.

use std::path::{Path, PathBuf};

use clap::{ArgMatches, Args};
use safespawn::{Command, Mount, Namespaces};

use crate::exit::{Failure, Items};
use crate::parse;

#[derive(Debug, Args)]
#[command(next_help_heading = "Mounts")]
pub struct Mounts {
    /// DIR becomes the program's / (pivot_root; the old root is detached),
    /// with the mounts inside it.
    #[arg(long, value_name = "DIR", conflicts_with = "root_tmpfs")]
    root: Option<PathBuf>,
    /// The program's / is a fresh, empty tmpfs that the mounts populate
    /// (bubblewrap's model); missing directories on the way to a mount are
    /// created in it.
    #[arg(long)]
    root_tmpfs: bool,
    /// Bind SRC (a path of this system) on DST (a path in the program's
    /// view), writable as far as SRC is, with the mounts below SRC.
    /// Repeatable, as are all mounts.
    #[arg(long, num_args = 2, value_names = ["SRC", "DST"])]
    bind: Vec<PathBuf>,
    /// As --bind, read-only, the mounts below SRC included.
    #[arg(long, num_args = 2, value_names = ["SRC", "DST"])]
    ro_bind: Vec<PathBuf>,
    /// As --bind, skipped when SRC does not exist.
    #[arg(long, num_args = 2, value_names = ["SRC", "DST"])]
    bind_try: Vec<PathBuf>,
    /// As --ro-bind, skipped when SRC does not exist.
    #[arg(long, num_args = 2, value_names = ["SRC", "DST"])]
    ro_bind_try: Vec<PathBuf>,
    /// A fresh tmpfs on DST (nosuid, nodev; mode 0755 and half the RAM at
    /// most, unless --perms and --size come right before it).
    #[arg(long, value_name = "DST")]
    tmpfs: Vec<PathBuf>,
    /// The size limit of the next --tmpfs, in bytes, or with a k, m or g
    /// suffix (KiB, MiB, GiB). Must be followed by --tmpfs (no other mount
    /// option between); applies to that one only.
    #[arg(long, value_name = "BYTES", value_parser = parse::size)]
    size: Vec<u64>,
    /// The mode of the next --tmpfs's root, in octal (e.g. 1777). Must be
    /// followed by --tmpfs (no other mount option between); applies to
    /// that one only.
    #[arg(long, value_name = "OCTAL", value_parser = parse::perms)]
    perms: Vec<u32>,
    /// A proc filesystem on DST, showing the processes of the program's pid
    /// namespace (needs --unshare-pid).
    #[arg(long, value_name = "DST")]
    proc: Vec<PathBuf>,
    /// A minimal /dev on DST: null, zero, full, random, urandom and tty from
    /// this system's /dev, a new devpts, a tmpfs on shm (needs --root or
    /// --root-tmpfs).
    #[arg(long, value_name = "DST")]
    dev: Vec<PathBuf>,
    /// Make the mount at DST read-only (that mount only, not those below
    /// it), at its place in the order: --tmpfs /w --tmpfs /w/sub
    /// --remount-ro /w leaves /w/sub writable. --remount-ro / with a new
    /// root is made last, wherever it stands, and freezes the root itself.
    #[arg(long, value_name = "DST")]
    remount_ro: Vec<PathBuf>,
}

/// A mount of one path.
type MakeAt = fn(&Path) -> Mount;

/// The library's words for an option, and the tool's (see `Items`).
type Words = &'static [(&'static str, &'static str)];

/// One mount option, or a --size / --perms waiting for its --tmpfs; each
/// with the option as given, for messages.
enum Step {
    Mount(Mount, String, Words),
    Tmpfs(PathBuf, String),
    Size(u64, String),
    Perms(u32, String),
}

impl Mounts {
    /// Applies the options in command-line order (positions from
    /// `matches`); any of them gives the program a mount namespace of its
    /// own. `items` learns which option each mount came from.
    pub fn apply(
        self,
        mut cmd: Command,
        matches: &ArgMatches,
        items: &mut Items,
    ) -> Result<Command, Failure> {
        let steps = self.steps(matches);
        if steps.is_empty() && self.root.is_none() && !self.root_tmpfs {
            return Ok(cmd);
        }
        // bubblewrap's users expect it; the library asks for it explicitly.
        cmd = cmd.unshare(Namespaces::MOUNT);
        if let Some(dir) = self.root {
            items.add_with(
                format!("root({dir:?})"),
                format!("--root {}", dir.display()),
                // The library's hint for a missing bind source, which a
                // root has no -try form for.
                &[(" (.optional() skips a mount whose source is missing)", "")],
            );
            cmd = cmd.root(dir);
        }
        if self.root_tmpfs {
            items.add("root_tmpfs()", "--root-tmpfs");
            cmd = cmd.root_tmpfs();
        }
        // bubblewrap's rule: --size and --perms set the next --tmpfs only,
        // and nothing else may come between.
        let mut size: Option<(u64, String)> = None;
        let mut perms: Option<(u32, String)> = None;
        for step in steps {
            let (mount, option, words) = match step {
                Step::Size(bytes, option) => {
                    if let Some((_, first)) = &size {
                        return Err(Failure::setup(format!(
                            "{option}: {first} already sets the size of the next --tmpfs"
                        )));
                    }
                    size = Some((bytes, option));
                    continue;
                }
                Step::Perms(mode, option) => {
                    if let Some((_, first)) = &perms {
                        return Err(Failure::setup(format!(
                            "{option}: {first} already sets the mode of the next --tmpfs"
                        )));
                    }
                    perms = Some((mode, option));
                    continue;
                }
                Step::Tmpfs(dst, option) => {
                    let mut mount = Mount::tmpfs(dst);
                    if let Some((bytes, _)) = size.take() {
                        mount = mount.size(bytes);
                    }
                    if let Some((mode, _)) = perms.take() {
                        mount = mount.mode(mode);
                    }
                    (mount, option, &[][..])
                }
                Step::Mount(mount, option, words) => {
                    if let Some(modifier) = pending(&size, &perms) {
                        return Err(Failure::setup(format!(
                            "{modifier}: must be followed by --tmpfs, not {option}"
                        )));
                    }
                    (mount, option, words)
                }
            };
            items.add_with(format!("mount({mount})"), option, words);
            cmd = cmd.mount(mount);
        }
        if let Some(modifier) = pending(&size, &perms) {
            return Err(Failure::setup(format!(
                "{modifier}: must be followed by --tmpfs"
            )));
        }
        Ok(cmd)
    }

    /// Every mount option with its position on the command line, sorted.
    fn steps(&self, matches: &ArgMatches) -> Vec<Step> {
        let mut steps: Vec<(usize, Step)> = Vec::new();
        // The library's hint for a missing source names its -try form.
        const TRY: Words = &[(".optional() skips", "--bind-try skips")];
        const RO_TRY: Words = &[(".optional() skips", "--ro-bind-try skips")];
        // clap id, values, read-only, -try.
        let binds: [(&str, &Vec<PathBuf>, bool, bool); 4] = [
            ("bind", &self.bind, false, false),
            ("ro_bind", &self.ro_bind, true, false),
            ("bind_try", &self.bind_try, false, true),
            ("ro_bind_try", &self.ro_bind_try, true, true),
        ];
        for (id, values, read_only, optional) in binds {
            // clap takes exactly two values, so two positions, per
            // occurrence; the first stands for the pair.
            let at = positions(matches, id).into_iter().step_by(2);
            for (at, pair) in at.zip(values.chunks_exact(2)) {
                let (src, dst) = (&pair[0], &pair[1]);
                let option = format!("{} {} {}", flag(id), src.display(), dst.display());
                let (mount, words) = match (read_only, optional) {
                    (false, false) => (Mount::bind(src, dst), TRY),
                    (true, false) => (Mount::bind_ro(src, dst), RO_TRY),
                    (false, true) => (Mount::bind(src, dst).optional(), &[][..]),
                    (true, true) => (Mount::bind_ro(src, dst).optional(), &[][..]),
                };
                steps.push((at, Step::Mount(mount, option, words)));
            }
        }
        for (at, dst) in positions(matches, "tmpfs").into_iter().zip(&self.tmpfs) {
            let option = format!("--tmpfs {}", dst.display());
            steps.push((at, Step::Tmpfs(dst.clone(), option)));
        }
        let paths: [(&str, &Vec<PathBuf>, MakeAt); 3] = [
            ("proc", &self.proc, |p| Mount::proc(p)),
            ("dev", &self.dev, |p| Mount::dev(p)),
            ("remount_ro", &self.remount_ro, |p| Mount::remount_ro(p)),
        ];
        for (id, dsts, make) in paths {
            for (at, dst) in positions(matches, id).into_iter().zip(dsts) {
                let option = format!("{} {}", flag(id), dst.display());
                steps.push((at, Step::Mount(make(dst), option, &[])));
            }
        }
        // The values as given ("64m"), for messages.
        let given = |id| -> Vec<String> {
            matches
                .get_raw(id)
                .map(|raw| raw.map(|v| v.to_string_lossy().into_owned()).collect())
                .unwrap_or_default()
        };
        let at = positions(matches, "size").into_iter();
        for ((at, &bytes), text) in at.zip(&self.size).zip(given("size")) {
            steps.push((at, Step::Size(bytes, format!("--size {text}"))));
        }
        let at = positions(matches, "perms").into_iter();
        for ((at, &mode), text) in at.zip(&self.perms).zip(given("perms")) {
            steps.push((at, Step::Perms(mode, format!("--perms {text}"))));
        }
        steps.sort_by_key(|(at, _)| *at);
        steps.into_iter().map(|(_, step)| step).collect()
    }
}

/// The --size or --perms still waiting for a --tmpfs, if any.
fn pending<'a>(
    size: &'a Option<(u64, String)>,
    perms: &'a Option<(u32, String)>,
) -> Option<&'a str> {
    size.as_ref()
        .map(|(_, o)| o.as_str())
        .or(perms.as_ref().map(|(_, o)| o.as_str()))
}

/// The option of clap id `id`: `ro_bind` is `--ro-bind`.
fn flag(id: &str) -> String {
    format!("--{}", id.replace('_', "-"))
}

/// The positions of the values of option `id`, in order.
fn positions(matches: &ArgMatches, id: &str) -> Vec<usize> {
    matches
        .indices_of(id)
        .map(|at| at.collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{FromArgMatches, Parser};

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        mounts: Mounts,
        // Options of other groups may come between mount options.
        #[arg(long)]
        env: Vec<String>,
    }

    /// The options of `args` as the steps give them, in order.
    fn order(args: &[&str]) -> Vec<String> {
        let matches = <Cli as clap::CommandFactory>::command()
            .try_get_matches_from(std::iter::once("safespawn").chain(args.iter().copied()))
            .unwrap();
        let cli = Cli::from_arg_matches(&matches).unwrap();
        cli.mounts
            .steps(&matches)
            .into_iter()
            .map(|step| match step {
                Step::Mount(_, option, _)
                | Step::Tmpfs(_, option)
                | Step::Size(_, option)
                | Step::Perms(_, option) => option,
            })
            .collect()
    }

    #[test]
    fn steps_come_in_command_line_order_across_option_kinds() {
        let args = [
            "--ro-bind",
            "/usr",
            "/usr",
            "--tmpfs",
            "/a",
            "--env",
            "A=b",
            "--bind",
            "/s",
            "/a/b",
            "--size=1k",
            "--perms",
            "700",
            "--tmpfs",
            "/c",
            "--ro-bind-try",
            "/x",
            "/y",
            "--remount-ro",
            "/a",
            "--proc",
            "/proc",
            "--bind-try",
            "/p",
            "/q",
            "--dev",
            "/dev",
            "--ro-bind",
            "/lib",
            "/lib",
        ];
        assert_eq!(
            order(&args),
            [
                "--ro-bind /usr /usr",
                "--tmpfs /a",
                "--bind /s /a/b",
                "--size 1k",
                "--perms 700",
                "--tmpfs /c",
                "--ro-bind-try /x /y",
                "--remount-ro /a",
                "--proc /proc",
                "--bind-try /p /q",
                "--dev /dev",
                "--ro-bind /lib /lib",
            ]
        );
    }
}
