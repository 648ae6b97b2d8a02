//! Process knobs: `nice`, `cpu_affinity`, `sched_core_new` /
//! `sched_core_share_from`, `oom_score_adj`, `personality` and
//! `securebits`, each set and read back through the test helper (its
//! `nice`, `cpus`, `oom_score_adj`, `personality`, `securebits` and
//! `sched_core` keys), as root and without privilege (a child in a user
//! namespace of its own has no privilege over the initial namespace, which
//! `CAP_SYS_NICE` and `CAP_SYS_RESOURCE` are checked in); the build errors;
//! the OOM score of a child whose view has no `/proc`.

mod common;

use common::{helper, helper_for_any_user, report_of, Report};
use safespawn::{
    BuildErrorKind, Capability, Command, Direct, Errno, Error, Mount, Namespaces, Personality,
    Securebits, Stage,
};

fn spawn_error(cmd: Command<Direct>) -> (Stage, Errno) {
    match cmd.status() {
        Err(Error::Spawn { stage, errno, .. }) => (stage, errno),
        other => panic!("expected a spawn error, got {other:?}"),
    }
}

fn build_error(cmd: Command<Direct>) -> (BuildErrorKind, String) {
    match cmd.build() {
        Err(e @ Error::Build { .. }) => (e.build_kind().unwrap(), e.to_string()),
        Err(other) => panic!("expected a build error, got {other:?}"),
        Ok(_) => panic!("expected a build error, got a Prepared"),
    }
}

/// This process's nice value.
fn own_nice() -> i32 {
    rustix::process::getpriority_process(None).unwrap()
}

fn own_oom_score_adj() -> i32 {
    std::fs::read_to_string("/proc/self/oom_score_adj")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Whether this process has `cap` in its effective set (root may lack
/// some: a VM's or container's bounding set).
fn has_cap(cap: rustix::thread::CapabilitySet) -> bool {
    rustix::thread::capabilities(None).is_ok_and(|c| c.effective.contains(cap))
}

/// Whether a child may have a user namespace of its own here (a child
/// with one has no privilege over the initial user namespace: the
/// unprivileged case, even for a root caller). Says so when not.
fn userns(test: &str) -> bool {
    let ok = common::user_namespaces_allowed();
    if !ok {
        eprintln!("{test}: the unprivileged case needs a user namespace, refused here");
    }
    ok
}

#[test]
fn nice_is_set_and_read_back() {
    let before = own_nice();
    let up = (before + 5).min(19);
    let r = report_of(helper("report").nice(up));
    assert_eq!(r.field("nice"), up.to_string());
    let r = report_of(helper("report").nice(19));
    assert_eq!(r.field("nice"), "19");
    // The child's own: the spawning thread shares its memory, not this.
    assert_eq!(own_nice(), before);
    if common::is_root() && has_cap(rustix::thread::CapabilitySet::SYS_NICE) {
        // Below our own value: needs CAP_SYS_NICE, taken before the uid
        // change drops it.
        let r = report_of(helper_for_any_user("report").nice(-5).uid(65534).gid(65534));
        assert_eq!(r.field("nice"), "-5");
        assert_eq!(r.field("uid"), "65534 65534 65534 65534");
    }
}

#[test]
fn a_lower_nice_without_cap_sys_nice_is_refused_at_stage_sched() {
    let down = own_nice() - 5;
    if !has_cap(rustix::thread::CapabilitySet::SYS_NICE) {
        let (stage, errno) = spawn_error(Command::new("true").nice(down.max(-20)));
        assert_eq!(stage, Stage::Sched);
        assert!(matches!(errno, Errno::ACCESS | Errno::PERM), "{errno:?}");
    }
    if userns("a_lower_nice_without_cap_sys_nice_is_refused_at_stage_sched") {
        let (stage, errno) = spawn_error(Command::new("true").map_root().nice(down.max(-20)));
        assert_eq!((stage, errno), (Stage::Sched, Errno::ACCESS));
        // Raising it needs nothing.
        let r = report_of(helper_for_any_user("report").map_root().nice(19));
        assert_eq!(r.field("nice"), "19");
    }
}

/// The CPUs this process may run on, from its own status.
fn own_cpus() -> Vec<usize> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap();
    parse_cpu_list(list.trim())
}

fn parse_cpu_list(list: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => cpus.extend(a.parse::<usize>().unwrap()..=b.parse().unwrap()),
            None => cpus.push(part.parse().unwrap()),
        }
    }
    cpus
}

#[test]
fn cpu_affinity_is_set_and_read_back() {
    let mine = own_cpus();
    let last = *mine.last().unwrap();
    let r = report_of(helper("report").cpu_affinity(&[last]));
    assert_eq!(r.field("cpus"), last.to_string());
    // Every CPU we have: the child has them all.
    let r = report_of(helper("report").cpu_affinity(&mine));
    assert_eq!(parse_cpu_list(r.field("cpus")), mine);
    // A CPU this machine does not have is left out by the kernel...
    let r = report_of(helper("report").cpu_affinity(&[last, 1023, last]));
    assert_eq!(r.field("cpus"), last.to_string());
    // ...and a set of only such CPUs is refused at the spawn.
    assert_eq!(
        spawn_error(Command::new("true").cpu_affinity(&[1023])),
        (Stage::Sched, Errno::INVAL)
    );
    // Any user may restrict a child of their own.
    if userns("cpu_affinity_is_set_and_read_back") {
        let r = report_of(
            helper_for_any_user("report")
                .map_root()
                .cpu_affinity(&[last]),
        );
        assert_eq!(r.field("cpus"), last.to_string());
    }
}

#[test]
fn oom_score_adj_is_set_and_read_back() {
    let own = own_oom_score_adj();
    let up = (own + 100).min(1000);
    let r = report_of(helper("report").oom_score_adj(up));
    assert_eq!(r.field("oom_score_adj"), up.to_string());
    // The kernel changes a value shared by every process of one memory
    // (CLONE_VM) unless the writer is a vfork child: ours stays.
    assert_eq!(own_oom_score_adj(), own);
    let down = (own - 100).max(-1000);
    if has_cap(rustix::thread::CapabilitySet::SYS_RESOURCE) {
        // Below our own value: needs CAP_SYS_RESOURCE, taken before the
        // uid change drops it.
        let r = report_of(
            helper_for_any_user("report")
                .oom_score_adj(down)
                .uid(65534)
                .gid(65534),
        );
        assert_eq!(r.field("oom_score_adj"), down.to_string());
    } else {
        // Root too, where its bounding set lacks CAP_SYS_RESOURCE (as in
        // some VMs and containers).
        assert_eq!(
            spawn_error(Command::new("true").oom_score_adj(down)),
            (Stage::OomScoreAdj, Errno::ACCESS)
        );
    }
    if userns("oom_score_adj_is_set_and_read_back") {
        assert_eq!(
            spawn_error(Command::new("true").map_root().oom_score_adj(down)),
            (Stage::OomScoreAdj, Errno::ACCESS)
        );
        let r = report_of(helper_for_any_user("report").map_root().oom_score_adj(up));
        assert_eq!(r.field("oom_score_adj"), up.to_string());
    }
}

/// The helper, a sleeper, in a new root of its own with the system's
/// libraries and no `/proc`, in new user, mount and pid namespaces.
fn sleeper_without_proc() -> Command<Direct> {
    let mut cmd = helper("sleep=30")
        .unshare(Namespaces::USER | Namespaces::MOUNT | Namespaces::PID)
        .map_root()
        .root_tmpfs()
        .mount(Mount::bind_ro(common::HELPER, common::HELPER));
    for dir in ["/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin"] {
        cmd = cmd.mount(Mount::bind_ro(dir, dir).optional());
    }
    cmd
}

#[test]
fn oom_score_adj_reaches_a_child_whose_view_has_no_proc() {
    if !userns("oom_score_adj_reaches_a_child_whose_view_has_no_proc") {
        return;
    }
    let up = (own_oom_score_adj() + 123).min(1000);
    // The control: without its own /proc the helper cannot report, so it
    // sleeps and we read its /proc/PID from outside.
    let child = sleeper_without_proc().oom_score_adj(up).spawn().unwrap();
    let pid = child.pid();
    assert!(common::wait_until_asleep(pid), "the child did not start");
    let seen = std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap();
    assert_eq!(seen.trim(), up.to_string());
    // It is pid 1 of its own namespace, and has no /proc.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert!(nspid.trim_end().ends_with("\t1"), "{nspid}");
    let root_entries: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/root"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !root_entries.contains(&"proc".to_string()),
        "{root_entries:?}"
    );
    child.abort().unwrap();
}

#[test]
fn personality_is_set_and_read_back() {
    let r = report_of(helper("report").personality(Personality::ADDR_NO_RANDOMIZE));
    assert_eq!(r.field("personality"), "40000");
    // (Not READ_IMPLIES_EXEC: x86_64 clears it when it loads a 64-bit
    // program that does not ask for it.)
    let both = Personality::LINUX32 | Personality::STICKY_TIMEOUTS;
    let r = report_of(helper("report").personality(both));
    assert_eq!(r.field("personality"), "4000008");
    // The control: a child without it has the default domain.
    let r = report_of(helper("report"));
    assert_eq!(r.field("personality"), "0");
    // The domain shows in uname at once.
    if cfg!(target_arch = "x86_64") {
        let out = Command::new("uname")
            .arg("-m")
            .personality(Personality::LINUX32)
            .capture_stdout()
            .run()
            .unwrap();
        assert_eq!(out.stdout, b"i686\n");
    }
}

#[test]
fn securebits_are_set_and_read_back() {
    if !common::root_or_skip("securebits_are_set_and_read_back", "CAP_SETPCAP") {
        return;
    }
    let bits = Securebits::NOROOT | Securebits::NOROOT_LOCKED | Securebits::NO_SETUID_FIXUP;
    let r = report_of(helper("report").securebits(bits));
    assert_eq!(r.field("securebits"), "7");
    // The control.
    assert_eq!(report_of(helper("report")).field("securebits"), "0");
    // Every bit, each locked: the exec bits are Linux 6.14's; an older
    // kernel refuses bits it does not know.
    if kernel_at_least(6, 14) {
        let r = report_of(helper("report").securebits(Securebits::all()));
        // But KEEP_CAPS, which exec clears (its lock stays).
        assert_eq!(r.field("securebits"), "fef");
    } else {
        assert_eq!(
            spawn_error(Command::new("true").securebits(Securebits::all())),
            (Stage::Securebits, Errno::PERM)
        );
    }
}

/// Whether this kernel is at least `major.minor`.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let maj: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let min: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (maj, min) >= (major, minor)
}

#[test]
fn a_keep_caps_securebit_and_the_keepcaps_step_do_not_fight() {
    if !common::root_or_skip(
        "a_keep_caps_securebit_and_the_keepcaps_step_do_not_fight",
        "uid changes and capabilities",
    ) {
        return;
    }
    let bit = 1u64 << Capability::NetBindService as u8;
    let caps = |r: &Report| u64::from_str_radix(r.field("capeff"), 16).unwrap();
    // KEEP_CAPS owned by the securebits: the child does not clear it; exec
    // does.
    let r = report_of(
        helper_for_any_user("report")
            .securebits(Securebits::KEEP_CAPS)
            .uid(65534)
            .gid(65534)
            .allow_cap(Capability::NetBindService),
    );
    assert_eq!((caps(&r), r.field("securebits")), (bit, "0"));
    // Locked on: PR_SET_KEEPCAPS would be refused, so the child leaves it.
    let r = report_of(
        helper_for_any_user("report")
            .securebits(Securebits::KEEP_CAPS | Securebits::KEEP_CAPS_LOCKED)
            .uid(65534)
            .gid(65534)
            .allow_cap(Capability::NetBindService),
    );
    assert_eq!((caps(&r), r.field("securebits")), (bit, "20"));
    // Locked off, with NO_SETUID_FIXUP: the uid change keeps the sets.
    let r = report_of(
        helper_for_any_user("report")
            .securebits(
                Securebits::KEEP_CAPS_LOCKED
                    | Securebits::NO_SETUID_FIXUP
                    | Securebits::NO_SETUID_FIXUP_LOCKED,
            )
            .uid(65534)
            .gid(65534)
            .allow_cap(Capability::NetBindService),
    );
    assert_eq!((caps(&r), r.field("securebits")), (bit, "2c"));
    // Locked off without NO_SETUID_FIXUP: refused at build().
    let (kind, msg) = build_error(
        Command::new("true")
            .securebits(Securebits::KEEP_CAPS_LOCKED)
            .uid(65534)
            .allow_cap(Capability::NetBindService),
    );
    assert_eq!(kind, BuildErrorKind::Conflict, "{msg}");
    assert!(msg.contains("securebits(KEEP_CAPS_LOCKED)"), "{msg}");
}

#[test]
fn securebits_need_cap_setpcap_and_respect_locks() {
    if userns("securebits_need_cap_setpcap_and_respect_locks") {
        // Root of its own user namespace has CAP_SETPCAP there.
        let r = report_of(
            helper_for_any_user("report")
                .map_root()
                .securebits(Securebits::NOROOT | Securebits::NOROOT_LOCKED),
        );
        assert_eq!(r.field("securebits"), "3");
    }
    if !common::is_root() {
        assert_eq!(
            spawn_error(Command::new("true").securebits(Securebits::NOROOT)),
            (Stage::Securebits, Errno::PERM)
        );
        return;
    }
    // A spawning thread whose own securebits are locked: its child inherits
    // the lock and may not clear the bit. (The bits are per thread; this
    // one ends with the test.)
    let (stage, errno) = std::thread::spawn(|| {
        use rustix::thread::CapabilitiesSecureBits as B;
        rustix::thread::set_capabilities_secure_bits(B::NO_ROOT | B::NO_ROOT_LOCKED).unwrap();
        spawn_error(Command::new("true").securebits(Securebits::empty()))
    })
    .join()
    .unwrap();
    assert_eq!((stage, errno), (Stage::Securebits, Errno::PERM));
}

#[test]
fn sched_core_where_the_kernel_has_it() {
    let me = std::process::id() as i32;
    match Command::new("true").sched_core_new().build() {
        Err(e) => {
            // This system has no core scheduling: build() says so, with the
            // kernel's answer.
            assert_eq!(e.build_kind(), Some(BuildErrorKind::Conflict), "{e}");
            assert!(e.to_string().contains("sched_core_new()"), "{e}");
            let (kind, msg) = build_error(Command::new("true").sched_core_share_from(me));
            assert_eq!(kind, BuildErrorKind::Conflict, "{msg}");
            eprintln!("skipping the sched-core spawns: {e}");
        }
        Ok(_) => {
            let ours = report_of(helper("report")).field("sched_core").to_string();
            let r = report_of(helper("report").sched_core_new());
            let new = r.field("sched_core");
            assert!(
                new != "0" && new != ours && !new.starts_with("errno"),
                "{new}"
            );
            // A second child shares the first one's cookie.
            let first = helper("sleep=30").sched_core_new().spawn().unwrap();
            assert!(common::wait_until_asleep(first.pid()));
            let theirs = rustix::thread::core_scheduling_cookie(
                rustix::process::Pid::from_raw(first.pid()).unwrap(),
                rustix::thread::CoreSchedulingScope::Thread,
            )
            .unwrap();
            let r = report_of(helper("report").sched_core_share_from(first.pid()));
            assert_eq!(r.field("sched_core"), theirs.to_string());
            assert_ne!(r.field("sched_core"), ours);
            first.abort().unwrap();
            // A process that is gone.
            let gone = Command::new("true").spawn().unwrap();
            let pid = gone.pid();
            gone.wait().unwrap();
            assert_eq!(
                spawn_error(Command::new("true").sched_core_share_from(pid)),
                (Stage::Sched, Errno::SRCH)
            );
        }
    }
}

#[test]
fn sched_core_requests_are_checked_at_build() {
    let me = std::process::id() as i32;
    let (kind, msg) = build_error(Command::new("true").sched_core_share_from(0));
    assert_eq!(kind, BuildErrorKind::Invalid, "{msg}");
    assert!(msg.contains("sched_core_share_from(0)"), "{msg}");
    let (kind, msg) = build_error(
        Command::new("true")
            .unshare(Namespaces::PID)
            .sched_core_share_from(me),
    );
    assert_eq!(kind, BuildErrorKind::Conflict, "{msg}");
    assert!(msg.contains("unshare(PID)"), "{msg}");
    let (kind, msg) = build_error(
        Command::new("true")
            .sched_core_new()
            .sched_core_share_from(me),
    );
    assert_eq!(kind, BuildErrorKind::Conflict, "{msg}");
    assert!(msg.contains("sched_core_new()"), "{msg}");
}

#[test]
fn bad_values_are_build_errors_naming_the_value() {
    let cases: Vec<(Command<Direct>, BuildErrorKind, &str)> = vec![
        (
            Command::new("true").nice(-21),
            BuildErrorKind::Invalid,
            "nice -21",
        ),
        (
            Command::new("true").nice(20),
            BuildErrorKind::Invalid,
            "nice 20",
        ),
        (
            Command::new("true").cpu_affinity(&[]),
            BuildErrorKind::Invalid,
            "cpu_affinity []",
        ),
        (
            Command::new("true").cpu_affinity(&[0, 1024]),
            BuildErrorKind::Invalid,
            "cpu_affinity CPU 1024",
        ),
        (
            Command::new("true").oom_score_adj(1001),
            BuildErrorKind::Invalid,
            "oom_score_adj 1001",
        ),
        (
            Command::new("true").oom_score_adj(-1001),
            BuildErrorKind::Invalid,
            "oom_score_adj -1001",
        ),
        (
            Command::new("true").personality(Personality::from_raw(u32::MAX)),
            BuildErrorKind::Invalid,
            "personality 0xffffffff",
        ),
        (
            Command::new("true")
                .allow_cap(Capability::NetBindService)
                .securebits(Securebits::NO_CAP_AMBIENT_RAISE),
            BuildErrorKind::Conflict,
            "securebits(NO_CAP_AMBIENT_RAISE)",
        ),
    ];
    for (cmd, want_kind, want_item) in cases {
        let (kind, msg) = build_error(cmd);
        assert_eq!(kind, want_kind, "{msg}");
        assert!(
            msg.starts_with(&format!("invalid command: {want_item}: ")),
            "{msg}"
        );
    }
    // The edges are fine.
    for n in [-20, 19] {
        assert!(Command::new("true").nice(n).build().is_ok());
    }
    for n in [-1000, 1000] {
        assert!(Command::new("true").oom_score_adj(n).build().is_ok());
    }
    assert!(Command::new("true").cpu_affinity(&[1023]).build().is_ok());
}

#[test]
fn a_daemon_gets_its_knobs() {
    let dir = common::Scratch::new("knobs-daemon");
    let pidfile = dir.join("d.pid");
    let d = helper("sleep=30")
        .nice(17)
        .oom_score_adj((own_oom_score_adj() + 10).min(1000))
        .daemonize()
        .pidfile(&pidfile)
        .run()
        .unwrap();
    let stat = common::stat_fields(d.daemon);
    // After "(comm)": field 19, nice, is index 16.
    assert_eq!(stat.get(16).map(String::as_str), Some("17"), "{stat:?}");
    let oom = std::fs::read_to_string(format!("/proc/{}/oom_score_adj", d.daemon)).unwrap();
    assert_eq!(
        oom.trim(),
        ((own_oom_score_adj() + 10).min(1000)).to_string()
    );
    let pid = rustix::process::Pid::from_raw(d.daemon).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
}

#[test]
fn without_proc_the_knobs_that_write_there_are_build_errors() {
    // Runs where this process has no /proc (the no-proc profile of
    // .ci/compat-profiles); elsewhere there is nothing to see.
    if std::path::Path::new("/proc/self").exists() {
        eprintln!("skipping: /proc is mounted here");
        return;
    }
    for (cmd, item) in [
        (Command::new("true").oom_score_adj(0), "oom_score_adj"),
        (
            Command::new("true").selinux_exec_label("system_u:system_r:t:s0"),
            "selinux_exec_label",
        ),
        (
            Command::new("true").apparmor_profile("p"),
            "apparmor_profile",
        ),
    ] {
        let (kind, msg) = build_error(cmd);
        assert_eq!(kind, BuildErrorKind::Conflict, "{msg}");
        assert!(
            msg.starts_with(&format!(
                "invalid command: {item}: needs a proc file system"
            )),
            "{msg}"
        );
    }
    // The knobs that need no /proc still work.
    assert!(Command::new("true").nice(19).status().unwrap().success());
}
