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

/// Whether `name` is a shell variable name (`[A-Za-z_][A-Za-z0-9_]*`): only
/// then does a shell read a leading `name=value` word as an assignment.
fn is_shell_name(name: &[u8]) -> bool {
    matches!(name.first(), Some(b) if *b == b'_' || b.is_ascii_alphabetic())
        && name.iter().all(|b| *b == b'_' || b.is_ascii_alphanumeric())
}

/// Whether a shell would read `word`, in command position, as an assignment
/// (`NAME=...`) instead of the command name.
fn looks_like_assignment(word: &[u8]) -> bool {
    match word.iter().position(|&b| b == b'=') {
        Some(eq) => is_shell_name(&word[..eq]),
        None => false,
    }
}

/// `force`: quote even a word that needs no quotes (a program word that
/// would otherwise read as an assignment).
fn quote_str(word: &str, force: bool, out: &mut impl Write) -> fmt::Result {
    if !force && !needs_quotes(word) {
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
    quote_word(word, false, out)
}

/// Writes `word` shell-quoted where needed; with `force`, its first piece is
/// quoted in any case.
fn quote_word(word: &OsStr, force: bool, out: &mut impl Write) -> fmt::Result {
    let mut rest = word.as_bytes();
    if let Ok(s) = std::str::from_utf8(rest) {
        return quote_str(s, force, out);
    }
    let mut force = force;
    // Mixed: quote the valid runs, spell out the invalid bytes.
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                return quote_nonempty(s, force, out);
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // `valid` is UTF-8 by construction; from_utf8 cannot fail here.
                if let Ok(s) = std::str::from_utf8(valid) {
                    quote_nonempty(s, force, out)?;
                }
                force = false;
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
fn quote_nonempty(s: &str, force: bool, out: &mut impl Write) -> fmt::Result {
    if s.is_empty() {
        Ok(())
    } else {
        quote_str(s, force, out)
    }
}

/// Writes `env... argv...` as one shell-quoted line.
///
/// A variable whose name is a shell name is written `NAME=value` with only
/// the value quoted, so a shell reads it as an assignment. Any other name
/// (`A-B`, `a b`, bytes that are not UTF-8) cannot be assigned by a shell at
/// all; the whole `name=value` word is then quoted like an argument, so at
/// least its bytes read back exactly. The program word is quoted when it
/// would otherwise read as an assignment (`A=b`).
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
        if is_shell_name(k.as_bytes()) {
            // The name unquoted: `A='b c'` and `'A=b c'` differ to a shell.
            out.write_str(&k.to_string_lossy())?;
            out.write_char('=')?;
            quote(v, out)?;
        } else {
            let mut word = k.to_owned();
            word.push("=");
            word.push(v);
            quote(&word, out)?;
        }
    }
    for (i, a) in argv.into_iter().enumerate() {
        if !first {
            out.write_char(' ')?;
        }
        first = false;
        quote_word(a, i == 0 && looks_like_assignment(a.as_bytes()), out)?;
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

    fn line(env: &[(&[u8], &[u8])], argv: &[&[u8]]) -> String {
        let mut s = String::new();
        write_line(
            env.iter()
                .map(|(k, v)| (OsStr::from_bytes(k), OsStr::from_bytes(v))),
            argv.iter().map(|a| OsStr::from_bytes(a)),
            &mut s,
        )
        .unwrap();
        s
    }

    #[test]
    fn names_a_shell_cannot_assign_are_quoted_whole() {
        // Found by the `builder` and `env_string` fuzz targets: such names
        // were written raw, so the line split differently or lost bytes.
        assert_eq!(line(&[(b"a b", b"1")], &[b"p"]), "'a b=1' p");
        assert_eq!(line(&[(b"!\n", b"")], &[b"p"]), "'!\n=' p");
        assert_eq!(
            line(&[(b"\xff", b"v")], &[b"p"]),
            "\"$(printf '\\377')\"=v p"
        );
        assert_eq!(line(&[(b"A-B", b"x")], &[b"p"]), "A-B=x p");
    }

    #[test]
    fn a_program_word_that_reads_as_an_assignment_is_quoted() {
        assert_eq!(line(&[], &[b"A=b", b"C=d"]), "'A=b' C=d");
        assert_eq!(
            line(&[(b"X", b"1")], &[b"A=\xff"]),
            "X=1 'A='\"$(printf '\\377')\""
        );
        assert_eq!(line(&[], &[b"/bin/A=b"]), "/bin/A=b");
        assert_eq!(line(&[], &[b"1A=b"]), "1A=b");
    }
}
