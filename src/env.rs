//! The child's environment: libvirt's model (inherit everything until the
//! first environment call, then exactly the listed variables), with std's
//! `env_remove` for the inheriting case.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use crate::error::BuildErrorKind;

/// The variables [`Command::env_pass_common`](crate::Command::env_pass_common)
/// copies from the parent when they are set.
pub(crate) const PASS_COMMON: [&str; 7] = [
    "PATH",
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "TMPDIR",
];

/// The environment a command asks for.
#[derive(Debug, Clone)]
pub(crate) struct EnvPlan {
    /// No environment call yet: inherit the parent's environment at `build()`.
    inherit: bool,
    /// The explicit variables, in the order first set.
    entries: Vec<(OsString, OsString)>,
    /// Names removed while still inheriting.
    removed: Vec<OsString>,
}

impl Default for EnvPlan {
    fn default() -> Self {
        EnvPlan {
            inherit: true,
            entries: Vec::new(),
            removed: Vec::new(),
        }
    }
}

impl EnvPlan {
    /// Sets `key` (replacing an earlier value in place) and stops inheriting.
    pub(crate) fn set(&mut self, key: OsString, value: OsString) {
        self.inherit = false;
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Stops inheriting without adding anything.
    pub(crate) fn make_explicit(&mut self) {
        self.inherit = false;
    }

    /// Copies the parent's value of `key` now, if it has one.
    pub(crate) fn pass(&mut self, key: &OsStr) {
        self.inherit = false;
        if let Some(value) = std::env::var_os(key) {
            self.set(key.to_owned(), value);
        }
    }

    pub(crate) fn remove(&mut self, key: &OsStr) {
        self.entries.retain(|(k, _)| k != key);
        if self.inherit && !self.removed.iter().any(|k| k == key) {
            self.removed.push(key.to_owned());
        }
    }

    pub(crate) fn clear(&mut self) {
        self.inherit = false;
        self.entries.clear();
        self.removed.clear();
    }

    /// Whether no environment call was made (the parent's is inherited).
    pub(crate) fn inherits(&self) -> bool {
        self.inherit
    }

    /// The variables the command sets itself (what `Display` shows).
    pub(crate) fn explicit(&self) -> &[(OsString, OsString)] {
        &self.entries
    }

    /// The final environment, resolving inheritance now.
    pub(crate) fn resolve(&self) -> Vec<(OsString, OsString)> {
        if self.inherit {
            std::env::vars_os()
                .filter(|(k, _)| !self.removed.contains(k))
                .collect()
        } else {
            self.entries.clone()
        }
    }
}

/// Splits `"K=V"` at the first `=`; `None` when there is no `=`.
pub(crate) fn split_env_string(s: &OsStr) -> Option<(OsString, OsString)> {
    let bytes = s.as_bytes();
    let eq = bytes.iter().position(|&b| b == b'=')?;
    Some((
        OsStr::from_bytes(&bytes[..eq]).to_owned(),
        OsStr::from_bytes(&bytes[eq + 1..]).to_owned(),
    ))
}

/// Why `key` cannot be an environment variable name, if it cannot.
pub(crate) fn name_problem(key: &OsStr) -> Option<(BuildErrorKind, &'static str)> {
    let b = key.as_bytes();
    if b.is_empty() {
        Some((BuildErrorKind::Invalid, "the name is empty"))
    } else if b.contains(&0) {
        Some((BuildErrorKind::Nul, "the name contains a NUL byte"))
    } else if b.contains(&b'=') {
        Some((BuildErrorKind::Invalid, "the name contains '='"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> OsString {
        s.into()
    }

    #[test]
    fn set_twice_replaces_in_place() {
        let mut e = EnvPlan::default();
        e.set(os("A"), os("1"));
        e.set(os("B"), os("2"));
        e.set(os("A"), os("3"));
        assert_eq!(e.resolve(), vec![(os("A"), os("3")), (os("B"), os("2"))]);
    }

    #[test]
    fn split_at_first_equals() {
        assert_eq!(
            split_env_string(OsStr::new("K=V=W")),
            Some((os("K"), os("V=W")))
        );
        assert_eq!(split_env_string(OsStr::new("K=")), Some((os("K"), os(""))));
        assert_eq!(split_env_string(OsStr::new("=V")), Some((os(""), os("V"))));
        assert_eq!(split_env_string(OsStr::new("KV")), None);
    }

    #[test]
    fn names_are_checked() {
        assert!(name_problem(OsStr::new("")).is_some());
        assert!(name_problem(OsStr::new("A=B")).is_some());
        assert!(name_problem(OsStr::from_bytes(b"A\0")).is_some());
        assert!(name_problem(OsStr::new("PATH")).is_none());
    }

    #[test]
    fn remove_while_inheriting_filters_the_snapshot() {
        let mut e = EnvPlan::default();
        e.remove(OsStr::new("PATH"));
        assert!(e.resolve().iter().all(|(k, _)| k != "PATH"));
        assert!(e.explicit().is_empty());
    }
}
