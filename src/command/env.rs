//! The child's environment: libvirt's model (inherit everything until the
//! first environment call, then exactly the listed variables), with std's
//! `env_remove` for the inheriting case.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use super::argv::{nul_problem, too_long};
use super::Command;
use crate::error::{BuildErrorKind, Error};
use crate::mode::Mode;
use crate::quote::shown;

impl<M: Mode> Command<M> {
    /// Sets a variable; a key set twice is replaced in place. Any environment
    /// call means the child gets exactly the listed variables (libvirt's
    /// AddEnvPair).
    ///
    /// # Errors
    ///
    /// `build()` refuses an empty `key` or one containing `=`
    /// ([`BuildErrorKind::Invalid`](crate::BuildErrorKind::Invalid)), a NUL
    /// byte in `key` or `value`
    /// ([`BuildErrorKind::Nul`](crate::BuildErrorKind::Nul)), and an entry
    /// `key=value` longer than the kernel takes (128 KiB with its NUL) or an
    /// environment that with argv exceeds execve's limit (see
    /// [`build`](Command::build)), both with
    /// [`BuildErrorKind::TooLong`](crate::BuildErrorKind::TooLong).
    ///
    /// ```
    /// let cmd = safespawn::Command::new("env").env("A", "1").env("B", "x y").env("A", "2");
    /// assert_eq!(cmd.to_string(), "A=2 B='x y' env");
    /// ```
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.cfg
            .env
            .set(key.as_ref().to_owned(), value.as_ref().to_owned());
        self
    }

    /// Sets a variable from `"NAME=VALUE"` (libvirt's AddEnvString).
    ///
    /// # Errors
    ///
    /// A string without `=` makes `build()` fail with
    /// [`BuildErrorKind::Invalid`](crate::BuildErrorKind::Invalid); the name
    /// and value split at the first `=` are checked as for
    /// [`env`](Command::env) (so `"=x"`, an empty name, is refused too).
    ///
    /// ```
    /// let cmd = safespawn::Command::new("env").env_string("LANG=C");
    /// assert_eq!(cmd.to_string(), "LANG=C env");
    /// assert!(safespawn::Command::new("env").env_string("LANG").build().is_err());
    /// ```
    pub fn env_string(mut self, entry: impl AsRef<OsStr>) -> Self {
        let entry = entry.as_ref();
        match split_env_string(entry) {
            Some((k, v)) => self.cfg.env.set(k, v),
            None => {
                self.cfg.env.make_explicit();
                let item = format!("environment string {}", shown(entry));
                self.defer(Error::build(
                    BuildErrorKind::Invalid,
                    item,
                    "has no '=' between name and value",
                ));
            }
        }
        self
    }

    /// Copies the parent's value of `name`, if it is set (libvirt's
    /// AddEnvPass). The value is read now, not at `build()`. Like every
    /// environment call, it ends inheritance.
    ///
    /// # Errors
    ///
    /// The copied value is checked as for [`env`](Command::env); a value the
    /// parent holds can only be too long
    /// ([`BuildErrorKind::TooLong`](crate::BuildErrorKind::TooLong)).
    ///
    /// ```
    /// std::env::set_var("SAFESPAWN_DOC_PASS", "1");
    /// let cmd = safespawn::Command::new("env").env_pass("SAFESPAWN_DOC_PASS").env_pass("SAFESPAWN_UNSET");
    /// assert_eq!(cmd.to_string(), "SAFESPAWN_DOC_PASS=1 env");
    /// ```
    pub fn env_pass(mut self, name: impl AsRef<OsStr>) -> Self {
        self.cfg.env.pass(name.as_ref());
        self
    }

    /// `LC_ALL=C` plus the parent's PATH, LD_PRELOAD, LD_LIBRARY_PATH, HOME,
    /// USER, LOGNAME and TMPDIR where set (libvirt's AddEnvPassCommon).
    ///
    /// # Errors
    ///
    /// As [`env_pass`](Command::env_pass), for each copied variable.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("env").env_pass_common();
    /// assert!(cmd.to_string().starts_with("LC_ALL=C "));
    /// ```
    pub fn env_pass_common(mut self) -> Self {
        self.cfg.env.set("LC_ALL".into(), "C".into());
        for name in PASS_COMMON {
            self.cfg.env.pass(OsStr::new(name));
        }
        self
    }

    /// Removes a variable: from the listed ones, or, while still inheriting,
    /// from the inherited environment (as in std).
    ///
    /// ```
    /// let cmd = safespawn::Command::new("env").env("A", "1").env("B", "2").env_remove("A");
    /// assert_eq!(cmd.to_string(), "B=2 env");
    /// ```
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.cfg.env.remove(key.as_ref());
        self
    }

    /// An empty environment, to which later calls add.
    ///
    /// ```
    /// let st = safespawn::Command::new("sh").args(["-c", "test -z \"$HOME\""]).env_clear().status().unwrap();
    /// assert!(st.success());
    /// ```
    pub fn env_clear(mut self) -> Self {
        self.cfg.env.clear();
        self
    }
}

/// The variables [`Command::env_pass_common`](crate::Command::env_pass_common)
/// copies from the parent when they are set.
const PASS_COMMON: [&str; 7] = [
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
pub(crate) struct EnvConfig {
    /// No environment call yet: inherit the parent's environment at `build()`.
    inherit: bool,
    /// The explicit variables, in the order first set.
    entries: Vec<(OsString, OsString)>,
    /// Names removed while still inheriting.
    removed: Vec<OsString>,
}

impl Default for EnvConfig {
    fn default() -> Self {
        EnvConfig {
            inherit: true,
            entries: Vec::new(),
            removed: Vec::new(),
        }
    }
}

impl EnvConfig {
    /// Sets `key` (replacing an earlier value in place) and stops inheriting.
    pub(crate) fn set(&mut self, key: OsString, value: OsString) {
        self.inherit = false;
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Sets `key` on top of the inherited environment (std's model, for
    /// [`Command::from_std`](crate::Command::from_std)): while the command
    /// still inherits, the value replaces the parent's or is added to it;
    /// once it does not, this is [`set`](EnvConfig::set).
    pub(crate) fn set_keep_inheriting(&mut self, key: OsString, value: OsString) {
        let inherit = self.inherit;
        self.removed.retain(|k| *k != key);
        self.set(key, value);
        self.inherit = inherit;
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
            // The parent's variables, less the removed ones, with the
            // command's own (std-style overrides) replacing or added.
            let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
                .filter(|(k, _)| !self.removed.contains(k))
                .filter(|(k, _)| !self.entries.iter().any(|(e, _)| e == k))
                .collect();
            env.extend(self.entries.iter().cloned());
            env
        } else {
            self.entries.clone()
        }
    }
}

impl EnvConfig {
    /// The final environment, checked: each entry as the `NAME=value` bytes
    /// envp gets, plus the child's PATH if it has one (for the PATH lookup).
    pub(crate) fn freeze(&self) -> Result<(Vec<Vec<u8>>, Option<OsString>), Error> {
        let env = self.resolve();
        let mut entries: Vec<Vec<u8>> = Vec::with_capacity(env.len());
        for (k, v) in &env {
            let item = || format!("environment variable {}", shown(k));
            if let Some((kind, p)) = name_problem(k) {
                return Err(Error::build(kind, item(), p));
            }
            if let Some(p) = nul_problem(v.as_bytes()) {
                return Err(Error::build(
                    BuildErrorKind::Nul,
                    item(),
                    format!("the value {p}"),
                ));
            }
            let mut entry = Vec::with_capacity(k.len() + v.len() + 1);
            entry.extend_from_slice(k.as_bytes());
            entry.push(b'=');
            entry.extend_from_slice(v.as_bytes());
            if let Some(p) = too_long(entry.len(), "variable") {
                return Err(Error::build(BuildErrorKind::TooLong, item(), p));
            }
            entries.push(entry);
        }
        let path = env.into_iter().find(|(k, _)| k == "PATH").map(|(_, v)| v);
        Ok((entries, path))
    }
}

/// Splits `"K=V"` at the first `=`; `None` when there is no `=`.
fn split_env_string(s: &OsStr) -> Option<(OsString, OsString)> {
    let bytes = s.as_bytes();
    let eq = bytes.iter().position(|&b| b == b'=')?;
    Some((
        OsStr::from_bytes(&bytes[..eq]).to_owned(),
        OsStr::from_bytes(&bytes[eq + 1..]).to_owned(),
    ))
}

/// Why `key` cannot be an environment variable name, if it cannot.
fn name_problem(key: &OsStr) -> Option<(BuildErrorKind, &'static str)> {
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
        let mut e = EnvConfig::default();
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
    fn std_style_overrides_keep_inheriting() {
        let mut e = EnvConfig::default();
        e.remove(OsStr::new("SAFESPAWN_ENV_UNIT_GONE"));
        e.set_keep_inheriting(os("SAFESPAWN_ENV_UNIT_GONE"), os("back"));
        e.set_keep_inheriting(os("SAFESPAWN_ENV_UNIT_NEW"), os("1"));
        assert!(e.inherits());
        let env = e.resolve();
        assert!(env.contains(&(os("SAFESPAWN_ENV_UNIT_NEW"), os("1"))));
        assert!(env.contains(&(os("SAFESPAWN_ENV_UNIT_GONE"), os("back"))));
        // The parent's environment is still there (the test runner has PATH).
        assert!(env.iter().any(|(k, _)| k == "PATH"));
        assert_eq!(e.explicit().len(), 2);
    }

    #[test]
    fn remove_while_inheriting_filters_the_snapshot() {
        let mut e = EnvConfig::default();
        e.remove(OsStr::new("PATH"));
        assert!(e.resolve().iter().all(|(k, _)| k != "PATH"));
        assert!(e.explicit().is_empty());
    }
}
