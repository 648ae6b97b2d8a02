//! Shell quoting of command lines (libvirt's virCommandToString rules).
//!
//! A word is quoted only when it contains a character a POSIX shell would
//! interpret; it is then wrapped in `'..'` with each `'` written `'\''`. An
//! empty word is `''`. Bytes that are not UTF-8 cannot appear in a `String`;
//! each is written as `"$(printf '\ooo')"`, which a POSIX shell turns back
//! into the very byte.

use std::ffi::OsStr;
use std::fmt::{self, Write};
use std::os::unix::ffi::OsStrExt;

/// The characters that make a word need quotes.
const SPECIAL: &[u8] = b"\r\t\n !\"#$&'()*;<>?[\\]^`{|}~";

fn needs_quotes(word: &str) -> bool {
    word.is_empty() || word.bytes().any(|b| SPECIAL.contains(&b))
}

fn quote_str(word: &str, out: &mut impl Write) -> fmt::Result {
    if !needs_quotes(word) {
        return out.write_str(word);
    }
    out.write_char('\'')?;
    let mut parts = word.split('\'');
    if let Some(first) = parts.next() {
        out.write_str(first)?;
    }
    for part in parts {
        out.write_str("'\\''")?;
        out.write_str(part)?;
    }
    out.write_char('\'')
}

/// Writes `word` shell-quoted where needed.
pub(crate) fn quote(word: &OsStr, out: &mut impl Write) -> fmt::Result {
    let mut rest = word.as_bytes();
    if let Ok(s) = std::str::from_utf8(rest) {
        return quote_str(s, out);
    }
    // Mixed: quote the valid runs, spell out the invalid bytes.
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                return quote_nonempty(s, out);
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // `valid` is UTF-8 by construction; from_utf8 cannot fail here.
                if let Ok(s) = std::str::from_utf8(valid) {
                    quote_nonempty(s, out)?;
                }
                let bad = e.error_len().unwrap_or(after.len());
                for b in &after[..bad] {
                    write!(out, "\"$(printf '\\{b:03o}')\"")?;
                }
                rest = &after[bad..];
            }
        }
    }
    Ok(())
}

/// Like `quote_str`, but writes nothing for an empty piece of a longer word.
fn quote_nonempty(s: &str, out: &mut impl Write) -> fmt::Result {
    if s.is_empty() {
        Ok(())
    } else {
        quote_str(s, out)
    }
}

/// Writes `env... argv...` as one shell-quoted line.
pub(crate) fn write_line<'a>(
    env: impl IntoIterator<Item = (&'a OsStr, &'a OsStr)>,
    argv: impl IntoIterator<Item = &'a OsStr>,
    out: &mut impl Write,
) -> fmt::Result {
    let mut first = true;
    for (k, v) in env {
        if !first {
            out.write_char(' ')?;
        }
        first = false;
        // The name is written raw: `A='b c'` and `'A=b c'` differ to a shell.
        out.write_str(&k.to_string_lossy())?;
        out.write_char('=')?;
        quote(v, out)?;
    }
    for a in argv {
        if !first {
            out.write_char(' ')?;
        }
        first = false;
        quote(a, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &[u8]) -> String {
        let mut out = String::new();
        quote(OsStr::from_bytes(s), &mut out).unwrap();
        out
    }

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(q(b"plain-word_1.2,a=b:c/d%"), "plain-word_1.2,a=b:c/d%");
        assert_eq!(q(b""), "''");
        assert_eq!(q(b"a b"), "'a b'");
        assert_eq!(q(b"it's"), "'it'\\''s'");
        assert_eq!(q(b"$HOME"), "'$HOME'");
        assert_eq!(q(b"'"), "''\\'''");
    }

    #[test]
    fn non_utf8_bytes_are_spelled_out() {
        assert_eq!(q(b"a\xffb"), "a\"$(printf '\\377')\"b");
        assert_eq!(q(b"\xff"), "\"$(printf '\\377')\"");
    }

    #[test]
    fn env_first_names_raw() {
        let mut s = String::new();
        write_line(
            [(OsStr::new("A"), OsStr::new("b c"))],
            [OsStr::new("prog"), OsStr::new("x y")],
            &mut s,
        )
        .unwrap();
        assert_eq!(s, "A='b c' prog 'x y'");
    }
}
