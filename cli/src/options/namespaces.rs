//! Namespaces: the kinds the program starts in new, its identity in a new
//! user namespace, its hostname, and the existing namespaces it joins. The
//! names are bubblewrap's.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use clap::Args;
use safespawn::{Command, Namespaces as Kinds};

use crate::exit::{Failure, Items};

#[derive(Debug, Args)]
#[command(next_help_heading = "Namespaces")]
pub struct Namespaces {
    /// New user namespace. Without privilege every other --unshare-* needs
    /// it; without --map-root the program's ids are unmapped there (they
    /// show as 65534).
    #[arg(long)]
    unshare_user: bool,
    /// New mount namespace. Every option under Mounts implies it here (the
    /// library's Command::mount asks for it explicitly).
    #[arg(long)]
    unshare_mount: bool,
    /// New pid namespace: the program is its pid 1 (it reaps orphans, and
    /// signals it has no handler for are not delivered to it).
    #[arg(long)]
    unshare_pid: bool,
    /// New network namespace: only a loopback interface, down.
    #[arg(long)]
    unshare_net: bool,
    /// New UTS namespace: its own hostname (see --hostname).
    #[arg(long)]
    unshare_uts: bool,
    /// New IPC namespace.
    #[arg(long)]
    unshare_ipc: bool,
    /// New cgroup namespace.
    #[arg(long)]
    unshare_cgroup: bool,
    /// New time namespace (needs clone3: Linux 5.3; time namespaces 5.6).
    #[arg(long)]
    unshare_time: bool,
    /// All of user, mount, pid, net, uts, ipc and cgroup. Not time: a time
    /// namespace needs clone3 and is rarely wanted (add --unshare-time).
    #[arg(long)]
    unshare_all: bool,
    /// Appear as root (uid and gid 0) in the new user namespace: a map of
    /// safespawn's own ids, no privilege needed. Implies --unshare-user.
    #[arg(long)]
    map_root: bool,
    /// Map the uids INSIDE..INSIDE+COUNT of the new user namespace to
    /// OUTSIDE..OUTSIDE+COUNT (repeatable, one range each). Needs
    /// --unshare-user and a writer allowed to map them (root, or only one's
    /// own uid); safespawn writes the map itself while the program waits,
    /// which takes the fork path. The program keeps its ids: add --uid to
    /// become an id inside.
    #[arg(long, value_name = "INSIDE:OUTSIDE:COUNT")]
    uid_map: Vec<String>,
    /// As --uid-map, for gids.
    #[arg(long, value_name = "INSIDE:OUTSIDE:COUNT")]
    gid_map: Vec<String>,
    /// The hostname in the new UTS namespace (needs --unshare-uts).
    #[arg(long, value_name = "NAME")]
    hostname: Option<OsString>,
    /// Join the namespace FILE refers to (/proc/PID/ns/net, ...), its kind
    /// read from the file (NS_GET_NSTYPE, Linux 4.11) or given as KIND:
    /// user, mnt, pid, net, uts, ipc, cgroup or time. Repeatable; joined in
    /// order (a user namespace first gives the privilege for the others),
    /// after the new namespaces exist: with a new user namespace no join
    /// can succeed.
    #[arg(long, value_name = "FILE[:KIND]")]
    join_ns: Vec<PathBuf>,
}

/// The kinds by the names of their `/proc/PID/ns` files (and `mount`), with
/// the `CLONE_NEW*` value `NS_GET_NSTYPE` reports for them.
const KINDS: &[(&str, Kinds, i32)] = &[
    ("user", Kinds::USER, libc::CLONE_NEWUSER),
    ("mnt", Kinds::MOUNT, libc::CLONE_NEWNS),
    ("mount", Kinds::MOUNT, libc::CLONE_NEWNS),
    ("pid", Kinds::PID, libc::CLONE_NEWPID),
    ("net", Kinds::NET, libc::CLONE_NEWNET),
    ("uts", Kinds::UTS, libc::CLONE_NEWUTS),
    ("ipc", Kinds::IPC, libc::CLONE_NEWIPC),
    ("cgroup", Kinds::CGROUP, libc::CLONE_NEWCGROUP),
    // CLONE_NEWTIME (not in libc for every C library).
    ("time", Kinds::TIME, 0x80),
];

/// What --unshare-all gives: every kind but TIME.
fn all() -> Kinds {
    Kinds::USER | Kinds::MOUNT | Kinds::PID | Kinds::NET | Kinds::UTS | Kinds::IPC | Kinds::CGROUP
}

impl Namespaces {
    /// Applies the options; `items` learns which option each of the
    /// library's items came from, for its error messages.
    pub fn apply(self, mut cmd: Command, items: &mut Items) -> Result<Command, Failure> {
        let mut joins = Vec::with_capacity(self.join_ns.len());
        for spec in &self.join_ns {
            joins.push(join(spec)?);
        }
        let flags = [
            (self.unshare_user, Kinds::USER, "--unshare-user"),
            (self.unshare_mount, Kinds::MOUNT, "--unshare-mount"),
            (self.unshare_pid, Kinds::PID, "--unshare-pid"),
            (self.unshare_net, Kinds::NET, "--unshare-net"),
            (self.unshare_uts, Kinds::UTS, "--unshare-uts"),
            (self.unshare_ipc, Kinds::IPC, "--unshare-ipc"),
            (self.unshare_cgroup, Kinds::CGROUP, "--unshare-cgroup"),
            (self.unshare_time, Kinds::TIME, "--unshare-time"),
        ];
        let mut unshare = Kinds::empty();
        for (given, kind, option) in flags {
            let from_all = self.unshare_all && all().contains(kind);
            if given || from_all {
                unshare |= kind;
                items.add(
                    format!("unshare({kind:?})"),
                    if given { option } else { "--unshare-all" },
                );
            }
        }
        if !unshare.is_empty() {
            cmd = cmd.unshare(unshare);
        }
        if self.map_root {
            cmd = cmd.map_root();
        }
        for spec in &self.uid_map {
            let (inside, outside, count) = range("--uid-map", spec)?;
            items.add(
                format!("uid_map({inside}, {outside}, {count})"),
                format!("--uid-map {spec}"),
            );
            cmd = cmd.uid_map(inside, outside, count);
        }
        for spec in &self.gid_map {
            let (inside, outside, count) = range("--gid-map", spec)?;
            items.add(
                format!("gid_map({inside}, {outside}, {count})"),
                format!("--gid-map {spec}"),
            );
            cmd = cmd.gid_map(inside, outside, count);
        }
        if let Some(name) = self.hostname {
            cmd = cmd.hostname(name);
        }
        for (spec, file, kind) in joins {
            items.add(
                format!("join_namespace(fd {}, {kind:?})", file.as_raw_fd()),
                format!("--join-ns {}", spec.display()),
            );
            cmd = cmd.join_namespace(file, kind);
        }
        Ok(cmd)
    }
}

/// Parses an `INSIDE:OUTSIDE:COUNT` range of `option`.
fn range(option: &str, spec: &str) -> Result<(u32, u32, u32), Failure> {
    let fail = || {
        Failure::setup(format!(
            "{option} {spec}: expected INSIDE:OUTSIDE:COUNT, three decimal ids (0 to 4294967294)"
        ))
    };
    let mut parts = spec
        .split(':')
        .map(|p| p.parse::<u32>().map_err(|_| fail()));
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(inside), Some(outside), Some(count), None) => Ok((inside?, outside?, count?)),
        _ => Err(fail()),
    }
}

/// Opens the namespace file of a `--join-ns FILE[:KIND]` and finds its
/// kind.
fn join(spec: &Path) -> Result<(&Path, File, Kinds), Failure> {
    let fail = |what: String| Failure::setup(format!("--join-ns {}: {what}", spec.display()));
    let (path, given) = split_kind(spec);
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) => {
            // "FILE:KIND" with an unknown KIND reads as a missing file;
            // say what is more likely wrong.
            if let Some((prefix, kind)) = spec.to_str().and_then(|s| s.rsplit_once(':')) {
                if given.is_none() && !prefix.is_empty() && Path::new(prefix).exists() {
                    return Err(fail(format!(
                        "unknown namespace kind '{kind}' (one of: {})",
                        kind_names()
                    )));
                }
            }
            return Err(fail(format!("cannot open {}: {e}", path.display())));
        }
    };
    let kind = match (ns_type(&file), given) {
        (Ok(found), None) => found,
        (Ok(found), Some(given)) if found == given => given,
        (Ok(found), Some(given)) => {
            return Err(fail(format!(
                "{} is a {} namespace, not {}",
                path.display(),
                name_of(found),
                name_of(given)
            )))
        }
        // Not a namespace, or a kernel that cannot tell (before 4.11):
        // with the kind given, setns decides.
        (Err(_), Some(given)) => given,
        (Err(e), None) => {
            return Err(fail(format!(
                "{} is not a namespace file (NS_GET_NSTYPE: {e}; before Linux 4.11 give the kind as FILE:KIND)",
                path.display()
            )))
        }
    };
    Ok((spec, file, kind))
}

/// `FILE:KIND` when the text after the last colon names a kind; else the
/// whole path, kind unknown.
fn split_kind(spec: &Path) -> (&Path, Option<Kinds>) {
    if let Some((path, suffix)) = spec.to_str().and_then(|s| s.rsplit_once(':')) {
        if let Some(&(_, kind, _)) = KINDS.iter().find(|(name, _, _)| *name == suffix) {
            if !path.is_empty() {
                return (Path::new(path), Some(kind));
            }
        }
    }
    (spec, None)
}

/// The kind of the namespace `file` refers to (`ioctl(NS_GET_NSTYPE)`).
fn ns_type(file: &File) -> std::io::Result<Kinds> {
    // SAFETY: NS_GET_NSTYPE takes no argument and only returns a value; the
    // fd is open for the duration of the call.
    let ty = unsafe { libc::ioctl(file.as_fd().as_raw_fd(), libc::NS_GET_NSTYPE) };
    if ty < 0 {
        return Err(std::io::Error::last_os_error());
    }
    KINDS
        .iter()
        .find(|(_, _, flag)| *flag == ty)
        .map(|&(_, kind, _)| kind)
        .ok_or_else(|| std::io::Error::other(format!("unknown namespace type {ty:#x}")))
}

/// The `/proc/PID/ns` name of a kind.
fn name_of(kind: Kinds) -> &'static str {
    KINDS
        .iter()
        .find(|(_, k, _)| *k == kind)
        .map_or("?", |(name, _, _)| name)
}

fn kind_names() -> String {
    KINDS
        .iter()
        .map(|(name, _, _)| *name)
        .filter(|name| *name != "mount")
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_three_ids() {
        assert_eq!(
            range("--uid-map", "0:100000:65536").ok(),
            Some((0, 100000, 65536))
        );
        for bad in ["", "0:1", "0:1:2:3", "a:1:2", "-1:0:1", "0:0:4294967296"] {
            assert!(range("--uid-map", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_kind_suffix_is_split_off_only_when_it_names_a_kind() {
        let split = |s: &str| {
            let (p, k) = split_kind(Path::new(s));
            (p.to_str().unwrap().to_owned(), k)
        };
        assert_eq!(split("/proc/1/ns/net"), ("/proc/1/ns/net".into(), None));
        assert_eq!(
            split("/run/netns/blue:net"),
            ("/run/netns/blue".into(), Some(Kinds::NET))
        );
        assert_eq!(split("/x:mnt"), ("/x".into(), Some(Kinds::MOUNT)));
        assert_eq!(split("/x:mount"), ("/x".into(), Some(Kinds::MOUNT)));
        assert_eq!(split("/a:b"), ("/a:b".into(), None));
        assert_eq!(split(":net"), (":net".into(), None));
    }

    #[test]
    fn the_own_namespaces_are_recognised() {
        for (name, kind, _) in KINDS {
            let path = format!("/proc/self/ns/{name}");
            let Ok(file) = File::open(&path) else {
                continue; // "mount", or a kind this kernel lacks
            };
            assert_eq!(ns_type(&file).unwrap(), *kind, "{path}");
        }
        let not_ns = File::open("/dev/null").unwrap();
        assert!(ns_type(&not_ns).is_err());
    }
}
