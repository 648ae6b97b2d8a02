//! Credentials: the securebits, the capability bounding set, groups, gid,
//! uid, the capability sets and `no_new_privs`.

use rustix::fs::{Gid, Uid};
use rustix::io::Errno;
use rustix::thread::{self as t, CapabilitiesSecureBits, CapabilitySet, CapabilitySets};

use super::report::{At, Failure};
use crate::error::Stage;
use crate::frozen::Frozen;
use crate::sys;

/// The credentials the child takes on.
#[derive(Debug, Default)]
pub(crate) struct Credentials {
    /// The securebits to set, exactly (`PR_SET_SECUREBITS`).
    pub securebits: Option<u32>,
    /// The securebits hold `KEEP_CAPS` or `KEEP_CAPS_LOCKED`: the child
    /// leaves `PR_SET_KEEPCAPS` (the same flag) alone.
    pub keepcaps_by_securebits: bool,
    /// The supplementary groups, sorted (the kernel keeps them sorted too).
    pub groups: Option<Frozen<[Gid]>>,
    pub gid: Option<Gid>,
    pub uid: Option<Uid>,
    /// The capabilities to keep when capabilities are to be cleared.
    pub caps: Option<u64>,
    pub no_new_privs: bool,
}

/// In this order, each with a raw system call:
///
/// 1. **securebits** (`PR_SET_SECUREBITS`), first: setting them needs
///    `CAP_SETPCAP`, which the capability sets below may remove, and
///    `NO_SETUID_FIXUP` or `KEEP_CAPS` must be in force before the uid
///    changes to mean anything;
/// 2. **bounding set**: every capability not allowed is dropped with
///    `PR_CAPBSET_DROP`. This needs `CAP_SETPCAP`, so it comes before the
///    uid change; a capability that cannot be dropped is an `EPERM` (one
///    already absent is fine);
/// 3. **KEEPCAPS** (`PR_SET_KEEPCAPS`), only when capabilities are allowed
///    and the uid changes: otherwise `setuid` away from root empties the
///    permitted set. `PR_SET_KEEPCAPS` is the securebit `KEEP_CAPS`: when
///    the command's securebits name `KEEP_CAPS` or `KEEP_CAPS_LOCKED`, they
///    own the flag and the child neither sets nor clears it (with the lock
///    the kernel would refuse either);
/// 4. **supplementary groups** (`setgroups(2)`; cleared when the uid or gid
///    changes without `.groups`, see CPython's CVE-2023-6507), then the
///    **gid**, then the **uid**: groups and gid first, while the child still
///    has `CAP_SETGID`. These are rustix's per-thread raw calls, never the C
///    library's set*id broadcast to threads the child does not have.
///    `setgroups` is skipped when the child's groups already are exactly the
///    planned ones ([`groups_already`]): it is the one call of the three
///    that needs `CAP_SETGID` even when it changes nothing, so without the
///    check a plain user's `.uid(own).gid(own)`, or root's in a user
///    namespace where `setgroups` is denied, failed with `EPERM`. `setgid`
///    and `setuid` are always made: for the caller's own id they succeed
///    without privilege, and with privilege they also set the saved id;
///    skipping them would save one system call each;
/// 5. **capability sets**: effective, permitted and inheritable set to
///    exactly the allowed ones (`capset(2)`), the ambient set cleared and the
///    allowed ones raised into it, so they survive exec under a non-root
///    uid; KEEPCAPS cleared again (unless the securebits own it);
/// 6. **no_new_privs** (`PR_SET_NO_NEW_PRIVS`), last: nothing after it in
///    this list needs to gain a privilege.
pub(crate) fn apply(creds: &Credentials) -> Result<(), Failure> {
    if let Some(bits) = creds.securebits {
        t::set_capabilities_secure_bits(CapabilitiesSecureBits::from_bits_retain(bits))
            .at(Stage::Securebits)?;
    }
    let toggle_keepcaps = !creds.keepcaps_by_securebits;
    if let Some(allowed) = creds.caps {
        drop_bounding_set(allowed, bounding_set_is_moot(creds, allowed)).at(Stage::Caps)?;
        if creds.uid.is_some() && allowed != 0 && toggle_keepcaps {
            t::set_keep_capabilities(true).at(Stage::Caps)?;
        }
    }
    if let Some(groups) = &creds.groups {
        if !groups_already(groups) {
            t::set_thread_groups(groups).at(Stage::Groups)?;
        }
    }
    if let Some(gid) = creds.gid {
        t::set_thread_gid(gid).at(Stage::Gid)?;
    }
    if let Some(uid) = creds.uid {
        t::set_thread_uid(uid).at(Stage::Uid)?;
    }
    if let Some(allowed) = creds.caps {
        set_capability_sets(allowed, toggle_keepcaps).at(Stage::Caps)?;
    }
    if creds.no_new_privs {
        t::set_no_new_privs(true).at(Stage::NoNewPrivs)?;
    }
    Ok(())
}

/// The most supplementary groups [`groups_already`] compares: 512 bytes of
/// stack. A longer list (the kernel allows 65536) is simply set.
const GROUPS_COMPARED: usize = 128;

/// Whether this process's supplementary groups are exactly `sorted`
/// already, so that `setgroups` would change nothing.
///
/// Asked here, in the child, not at `build()`: credentials belong to a
/// thread, a `Prepared` may be spawned from any thread, and a thread's
/// groups may change between the two; what counts is what the child
/// inherited. Compared as sorted lists, duplicates included. Any doubt (a
/// failed call, more than [`GROUPS_COMPARED`] groups) answers no, and the
/// groups are set.
fn groups_already(sorted: &[Gid]) -> bool {
    match sys::creds::getgroups(&mut []) {
        Ok(0) => return sorted.is_empty(),
        Ok(n) if n == sorted.len() => {}
        _ => return false,
    }
    let mut buf = [0u32; GROUPS_COMPARED];
    let Some(have) = buf.get_mut(..sorted.len()) else {
        return false;
    };
    if sys::creds::getgroups(have) != Ok(sorted.len()) {
        return false;
    }
    have.sort_unstable();
    have.iter().zip(sorted).all(|(h, want)| *h == want.as_raw())
}

/// The capabilities in `bits`, one at a time, lowest first.
fn each_capability(bits: u64) -> impl Iterator<Item = CapabilitySet> {
    (0..64u32)
        .filter_map(|bit| 1u64.checked_shl(bit))
        .filter(move |cap| bits & cap != 0)
        .map(CapabilitySet::from_bits_retain)
}

/// Removes every capability not in `allowed` from the bounding set. A
/// capability already absent is fine; one we cannot drop is an error.
///
/// `moot`: the child can never gain a capability the bounding set would
/// withhold (see [`bounding_set_is_moot`]); a capability that cannot be
/// dropped for want of `CAP_SETPCAP` is then left in place instead of
/// failing the spawn.
fn drop_bounding_set(allowed: u64, moot: bool) -> Result<(), Errno> {
    for cap in each_capability(!allowed) {
        match t::remove_capability_from_bounding_set(cap) {
            Ok(()) => {}
            // Past the last capability this kernel knows.
            Err(Errno::INVAL) => return Ok(()),
            Err(Errno::PERM) => {
                if t::capability_is_in_bounding_set(cap)? {
                    if moot {
                        // Without CAP_SETPCAP no other capability can be
                        // dropped either: leave the set as it is.
                        return Ok(());
                    }
                    return Err(Errno::PERM);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether the bounding set can no longer matter for this child: it only
/// limits what an exec grants through file capabilities or a set-user-ID
/// root program, and what may be added to the inheritable set. With
/// `no_new_privs`, exec grants neither; with no capability allowed the
/// permitted set ends empty, so nothing can be added; and with a non-root
/// uid (the planned one, or the real and effective ones the child has) exec
/// does not hand root's full set back. That is the plain user's
/// `clear_caps().no_new_privs()`, which cannot drop the bounding set
/// (`CAP_SETPCAP`) and need not.
fn bounding_set_is_moot(creds: &Credentials, allowed: u64) -> bool {
    let non_root = match creds.uid {
        Some(uid) => !uid.is_root(),
        None => !rustix::process::getuid().is_root() && !rustix::process::geteuid().is_root(),
    };
    creds.no_new_privs && allowed == 0 && non_root
}

/// Sets effective, permitted and inheritable to exactly `allowed`, and the
/// ambient set to `allowed` so the capabilities survive exec under a
/// non-root uid; then clears KEEPCAPS where `toggle_keepcaps` (the child
/// set it).
fn set_capability_sets(allowed: u64, toggle_keepcaps: bool) -> Result<(), Errno> {
    let set = CapabilitySet::from_bits_retain(allowed);
    t::set_capabilities(
        None,
        CapabilitySets {
            effective: set,
            permitted: set,
            inheritable: set,
        },
    )?;
    match t::clear_ambient_capability_set() {
        Ok(()) | Err(Errno::INVAL) => {} // EINVAL: a kernel without ambient sets
        Err(e) => return Err(e),
    }
    for cap in each_capability(allowed) {
        t::configure_capability_in_ambient_set(cap, true)?;
    }
    if allowed != 0 && toggle_keepcaps {
        t::set_keep_capabilities(false)?;
    }
    Ok(())
}
