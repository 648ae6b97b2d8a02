//! `groups_of(user)`: the supplementary groups of a user, looked up at
//! `build()` (getgrouplist semantics, as `id -G USER` shows them), reach the
//! child. Only users that exist on every Debian system (`root`, `nobody`,
//! `daemon`), plus any user this system's /etc/group lists as a member (a
//! user with groups beyond its primary one, where there is one); nothing is
//! created.

mod common;

use common::{helper_for_any_user, report_of, root_or_skip};
use safespawn::{BuildErrorKind, Command, Error, UserSpec};

/// `id -G NAME`, sorted and deduplicated; `None` for an unknown user.
fn id_groups(name: &str) -> Option<Vec<u32>> {
    let out = std::process::Command::new("id")
        .args(["-G", name])
        .output()
        .unwrap();
    if !out.status.success() {
        return None;
    }
    let mut g: Vec<u32> = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    g.sort_unstable();
    g.dedup();
    Some(g)
}

/// `id -u NAME` and `id -g NAME`.
fn ids(name: &str) -> (u32, u32) {
    let num = |flag: &str| -> u32 {
        let out = std::process::Command::new("id")
            .args([flag, name])
            .output()
            .unwrap();
        assert!(out.status.success(), "id {flag} {name}");
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    (num("-u"), num("-g"))
}

/// The users to check: the Debian ones, and the members /etc/group lists.
fn users() -> Vec<String> {
    let mut users: Vec<String> = ["root", "nobody", "daemon"].map(String::from).to_vec();
    if let Ok(group) = std::fs::read_to_string("/etc/group") {
        for line in group.lines() {
            for member in line.rsplit(':').next().unwrap_or("").split(',') {
                if !member.is_empty()
                    && !users.iter().any(|u| u == member)
                    && id_groups(member).is_some()
                {
                    users.push(member.to_string());
                }
            }
        }
    }
    users
}

fn child_groups(cmd: Command) -> Vec<u32> {
    let mut g = report_of(cmd).groups();
    g.dedup();
    g
}

#[test]
fn the_child_gets_the_users_groups_by_name_and_by_uid() {
    if !root_or_skip(
        "the_child_gets_the_users_groups_by_name_and_by_uid",
        "setgroups",
    ) {
        return;
    }
    for user in users() {
        let want = id_groups(&user).unwrap();
        let (uid, gid) = ids(&user);
        // By name, with the user's own uid and gid.
        let got = child_groups(
            helper_for_any_user("report")
                .uid(uid)
                .gid(gid)
                .groups_of(user.as_str()),
        );
        assert_eq!(got, want, "groups_of({user:?})");
        // By uid: the same lookup.
        let got = child_groups(
            helper_for_any_user("report")
                .uid(uid)
                .gid(gid)
                .groups_of(uid),
        );
        assert_eq!(got, want, "groups_of({uid}) ({user})");
    }
}

#[test]
fn groups_of_sets_only_the_groups_and_replaces_groups() {
    if !root_or_skip(
        "groups_of_sets_only_the_groups_and_replaces_groups",
        "setgroups",
    ) {
        return;
    }
    let want = id_groups("daemon").unwrap();
    // With another uid and gid: those stay the command's.
    let r = report_of(
        helper_for_any_user("report")
            .uid(65534)
            .gid(65534)
            .groups(&[7, 8, 9])
            .groups_of("daemon"),
    );
    assert_eq!(r.field("uid").split_whitespace().next(), Some("65534"));
    assert_eq!(r.field("gid").split_whitespace().next(), Some("65534"));
    assert_eq!(r.groups(), want);
    // Without uid() and gid(): the groups alone change.
    let me = rustix::process::getuid().as_raw().to_string();
    let r = report_of(helper_for_any_user("report").groups_of("nobody"));
    assert_eq!(r.field("uid").split_whitespace().next(), Some(me.as_str()));
    assert_eq!(r.groups(), id_groups("nobody").unwrap());
    // A later groups() replaces it.
    let r = report_of(
        helper_for_any_user("report")
            .uid(65534)
            .gid(65534)
            .groups_of("root")
            .groups(&[65534]),
    );
    assert_eq!(r.groups(), [65534]);
}

#[test]
fn an_unknown_user_is_a_build_error_naming_it() {
    for (user, named) in [
        (
            UserSpec::from("no-such-user-safespawn"),
            "user no-such-user-safespawn",
        ),
        (UserSpec::from(3_999_999_u32), "uid 3999999"),
    ] {
        match Command::new("true").groups_of(user).build() {
            Err(Error::Build { kind, item, .. }) => {
                assert_eq!(kind, BuildErrorKind::NotFound);
                assert_eq!(item, named);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    match Command::new("true").groups_of("a\0b").build() {
        Err(Error::Build { kind, .. }) => assert_eq!(kind, BuildErrorKind::Nul),
        other => panic!("unexpected {other:?}"),
    }
}
