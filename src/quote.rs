//! Shell quoting of command lines (libvirt's virCommandToString rules).
//!
//! A word is quoted only when it contains a character a POSIX shell would
//! interpret (``\r \t \n space ! " # $ & ' ( ) * ; < > ? [ \ ] ^ ` { | } ~``);
//! it is then wrapped in `'..'` with each `'` written `'\''`. An empty word is
//! `''`. Bytes that are not UTF-8 cannot appear in a `String`; each is written
//! as `"$(printf '\ooo')"`, which a POSIX shell turns back into the very byte.
//!
//! Beyond libvirt, three cases a shell would otherwise misread are quoted:
//! a command word (`argv[0]`) containing `=` (a shell would take it for an
//! assignment), a command word that is a reserved word (`if`, `done`, ...),
//! and an environment entry whose name is not a shell name
//! (`[A-Za-z_][A-Za-z0-9_]*`): such an entry is written as one quoted word
//! `'NAME=value'`, and the line starts with `env`, which sets it (a shell
//! cannot express it, and would run the quoted word as a command).

use std::ffi::OsStr;
use std::fmt::{self, Write};
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;

use rustix::io::Errno;

use crate::error::Error;

/// A short, printable rendering of a possibly long, possibly binary value,
/// for error messages: at most 40 bytes, then the total length.
pub(crate) fn shown(s: &OsStr) -> String {
    let b = s.as_bytes();
    let cut = &b[..b.len().min(40)];
    let mut out = format!("{:?}", String::from_utf8_lossy(cut));
    if b.len() > cut.len() {
        out.push_str(&format!(" ({} bytes)", b.len()));
    }
    out
}

/// The characters that make a word need quotes.
const SPECIAL: &[u8] = b"\r\t\n !\"#$&'()*;<>?[\\]^`{|}~";

/// Words a shell reads as syntax in command position (POSIX, plus bash's).
const RESERVED: &[&str] = &[
    "case", "do", "done", "elif", "else", "esac", "fi", "for", "if", "in", "then", "until",
    "while", "function", "select", "time", "coproc",
];

fn needs_quotes(word: &str) -> bool {
    word.is_empty() || word.bytes().any(|b| SPECIAL.contains(&b))
}

/// Writes `word` inside single quotes, `'` as `'\''`.
fn single_quoted(word: &str, out: &mut impl Write) -> fmt::Result {
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

fn quote_str(word: &str, force: bool, out: &mut impl Write) -> fmt::Result {
    if force || needs_quotes(word) {
        single_quoted(word, out)
    } else {
        out.write_str(word)
    }
}

/// Writes `word` shell-quoted where needed.
pub(crate) fn quote(word: &OsStr, out: &mut impl Write) -> fmt::Result {
    quote_bytes(word.as_bytes(), false, out)
}

/// Like [`quote`], quoting every UTF-8 run when `force` is set.
fn quote_bytes(word: &[u8], force: bool, out: &mut impl Write) -> fmt::Result {
    let mut rest = word;
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

/// Writes the command word: also quoted when a shell would read it as an
/// assignment or a reserved word.
fn quote_command(word: &OsStr, out: &mut impl Write) -> fmt::Result {
    let b = word.as_bytes();
    let force = b.contains(&b'=') || RESERVED.iter().any(|r| r.as_bytes() == b);
    quote_bytes(b, force, out)
}

/// Whether `name` is a name a shell accepts in an assignment.
fn is_shell_name(name: &[u8]) -> bool {
    match name.split_first() {
        Some((first, rest)) => {
            (first.is_ascii_alphabetic() || *first == b'_')
                && rest.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        }
        None => false,
    }
}

/// Writes one environment entry: `NAME=` raw and the value quoted (a shell
/// reads `A='b c'` and `'A=b c'` differently), or the whole entry as one
/// quoted word when `NAME` is no shell name.
fn write_env(key: &OsStr, value: &OsStr, out: &mut impl Write) -> fmt::Result {
    let k = key.as_bytes();
    if is_shell_name(k) {
        // A shell name is ASCII: writing it raw is exact.
        out.write_str(&key.to_string_lossy())?;
        out.write_char('=')?;
        quote(value, out)
    } else {
        let mut entry = Vec::with_capacity(k.len() + 1 + value.len());
        entry.extend_from_slice(k);
        entry.push(b'=');
        entry.extend_from_slice(value.as_bytes());
        quote_bytes(&entry, true, out)
    }
}

/// Whether a line setting these variables must start with `env`: a name
/// that is not a shell name cannot be assigned by a shell, and its quoted
/// `'name=value'` word in command position would be run as a program.
fn needs_env_word<'a>(env: impl IntoIterator<Item = (&'a OsStr, &'a OsStr)>) -> bool {
    env.into_iter().any(|(k, _)| !is_shell_name(k.as_bytes()))
}

/// Writes `env... argv...` as one shell-quoted line.
///
/// A variable whose name is a shell name is written `NAME=value` with only
/// the value quoted, so a shell reads it as an assignment. Any other name
/// (`A-B`, `a b`, bytes that are not UTF-8) cannot be assigned by a shell at
/// all; the whole `name=value` word is then quoted like an argument, and the
/// line starts with `env`, which sets such variables (without it the first
/// such word would be run as a command). The program word is quoted when it
/// would otherwise read as an assignment (`A=b`); after `env`, a program
/// word containing `=` cannot be told from a variable at all (env(1) has no
/// way to end the list), which is the one line that does not run as given.
pub(crate) fn write_line<'a>(
    env: impl IntoIterator<Item = (&'a OsStr, &'a OsStr)> + Clone,
    argv: impl IntoIterator<Item = &'a OsStr>,
    out: &mut impl Write,
) -> fmt::Result {
    let mut first = true;
    if needs_env_word(env.clone()) {
        out.write_str("env")?;
        first = false;
    }
    for (k, v) in env {
        if !first {
            out.write_char(' ')?;
        }
        first = false;
        write_env(k, v, out)?;
    }
    for (i, a) in argv.into_iter().enumerate() {
        if !first {
            out.write_char(' ')?;
        }
        first = false;
        if i == 0 {
            quote_command(a, out)?;
        } else {
            quote(a, out)?;
        }
    }
    Ok(())
}

fn is_option(word: &OsStr) -> bool {
    word.as_bytes().first() == Some(&b'-')
}

/// Writes `env... argv...` broken over lines the way libvirt does for logs
/// and test files: one environment entry per line, then the program, then
/// one line per option with its values. A line break goes before every
/// argument except a non-option that follows an option (`--name value`), or
/// that follows an earlier option while another option still comes later (so `--opt a b -x` keeps `a b` with `--opt`); trailing
/// positional arguments after the last option get a line each.
pub(crate) fn write_multiline<'a>(
    env: impl IntoIterator<Item = (&'a OsStr, &'a OsStr)> + Clone,
    argv: &[&'a OsStr],
    out: &mut impl Write,
) -> fmt::Result {
    if needs_env_word(env.clone()) {
        out.write_str("env \\\n")?;
    }
    for (k, v) in env {
        write_env(k, v, out)?;
        out.write_str(" \\\n")?;
    }
    let Some((program, args)) = argv.split_first() else {
        return Ok(());
    };
    quote_command(program, out)?;
    let mut seen_option = false;
    for (i, arg) in args.iter().enumerate() {
        out.write_char(' ')?;
        // An option always starts a line; a value stays with its option.
        let keep_on_line = !is_option(arg)
            && ((i > 0 && is_option(args[i - 1]))
                || (seen_option && args[i.saturating_sub(1)..].iter().any(|a| is_option(a))));
        if !keep_on_line {
            out.write_str("\\\n")?;
        }
        quote(arg, out)?;
        seen_option |= is_option(arg);
    }
    Ok(())
}

/// The unquoted one-line form (libvirt's WriteArgLog): `K=V` entries and
/// the arguments separated by spaces, then a newline; bytes as they are.
pub(crate) fn arg_log<'a>(
    env: impl IntoIterator<Item = (&'a OsStr, &'a OsStr)>,
    argv: impl IntoIterator<Item = &'a OsStr>,
) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in env {
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
        out.push(b' ');
    }
    for a in argv {
        out.extend_from_slice(a.as_bytes());
        out.push(b' ');
    }
    if out.last() == Some(&b' ') {
        out.pop();
    }
    out.push(b'\n');
    out
}

/// Writes all of `bytes` to `fd`, retrying on `EINTR` and short writes.
pub(crate) fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) -> Result<(), Error> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(Error::io("writing the argument log", Errno::IO)),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(Error::io("writing the argument log", e)),
        }
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

    fn line(env: &[(&str, &str)], argv: &[&str]) -> String {
        let mut s = String::new();
        write_line(
            env.iter().map(|(k, v)| (OsStr::new(k), OsStr::new(v))),
            argv.iter().map(OsStr::new),
            &mut s,
        )
        .unwrap();
        s
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
    fn every_special_character_and_only_those_quote() {
        for b in 0x01u8..0x80 {
            let quoted = q(&[b'a', b]);
            let special = b"\r\t\n !\"#$&'()*;<>?[\\]^`{|}~".contains(&b);
            assert_eq!(quoted.starts_with('\''), special, "byte {b:#x}: {quoted}");
        }
    }

    #[test]
    fn non_utf8_bytes_are_spelled_out() {
        assert_eq!(q(b"a\xffb"), "a\"$(printf '\\377')\"b");
        assert_eq!(q(b"\xff"), "\"$(printf '\\377')\"");
        assert_eq!(q(b"a b\xff"), "'a b'\"$(printf '\\377')\"");
    }

    #[test]
    fn env_first_names_raw() {
        assert_eq!(
            line(&[("A", "b c")], &["prog", "x y"]),
            "A='b c' prog 'x y'"
        );
        assert_eq!(line(&[("A", "")], &["prog"]), "A='' prog");
    }

    #[test]
    fn odd_env_names_are_one_quoted_word() {
        assert_eq!(line(&[("a-b", "1")], &["prog"]), "env 'a-b=1' prog");
        assert_eq!(line(&[("1X", "v w")], &["prog"]), "env '1X=v w' prog");
        assert_eq!(line(&[("_ok9", "1")], &["prog"]), "_ok9=1 prog");
    }

    #[test]
    fn command_word_is_never_an_assignment_or_keyword() {
        assert_eq!(line(&[], &["x=y", "a=b"]), "'x=y' a=b");
        assert_eq!(line(&[], &["if", "then"]), "'if' then");
        assert_eq!(line(&[], &["./done"]), "./done");
    }

    #[test]
    fn arg_log_is_unquoted() {
        let log = arg_log(
            [(OsStr::new("A"), OsStr::new("b c"))],
            [OsStr::new("prog"), OsStr::new("x y"), OsStr::new("")],
        );
        assert_eq!(log, b"A=b c prog x y \n");
        assert_eq!(arg_log([], [OsStr::new("true")]), b"true\n");
    }

    #[test]
    fn multiline_libvirt_test26() {
        let env = [("A", "B"), ("C", "D  E")];
        let argv = [
            "true",
            "--foo",
            "bar",
            "--oooh",
            "-f",
            "--wizz",
            "eek eek",
            "--m-m-m-multiarg",
            "arg",
            "arg2",
            "-w",
            "-z",
            "-l",
            "--mmm",
            "flash",
            "bang",
            "wallop",
        ];
        let argv: Vec<&OsStr> = argv.iter().map(OsStr::new).collect();
        let mut s = String::new();
        write_multiline(
            env.iter().map(|(k, v)| (OsStr::new(k), OsStr::new(v))),
            &argv,
            &mut s,
        )
        .unwrap();
        let expected = "A=B \\\n\
                        C='D  E' \\\n\
                        true \\\n\
                        --foo bar \\\n\
                        --oooh \\\n\
                        -f \\\n\
                        --wizz 'eek eek' \\\n\
                        --m-m-m-multiarg arg arg2 \\\n\
                        -w \\\n\
                        -z \\\n\
                        -l \\\n\
                        --mmm flash \\\n\
                        bang \\\n\
                        wallop";
        assert_eq!(s, expected);
    }

    #[test]
    fn multiline_positional_only() {
        let argv: Vec<&OsStr> = ["ls", "a", "b c"].iter().map(OsStr::new).collect();
        let mut s = String::new();
        write_multiline([], &argv, &mut s).unwrap();
        assert_eq!(s, "ls \\\na \\\n'b c'");
    }

    fn line_bytes(env: &[(&[u8], &[u8])], argv: &[&[u8]]) -> String {
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
        // The line starts with `env`, which sets them: without it the
        // first such word would run as a command.
        assert_eq!(line_bytes(&[(b"a b", b"1")], &[b"p"]), "env 'a b=1' p");
        assert_eq!(line_bytes(&[(b"!\n", b"")], &[b"p"]), "env '!\n=' p");
        assert_eq!(
            line_bytes(&[(b"\xff", b"v")], &[b"p"]),
            "env \"$(printf '\\377')\"=v p"
        );
        assert_eq!(line_bytes(&[(b"A-B", b"x")], &[b"p"]), "env 'A-B=x' p");
        assert_eq!(
            line_bytes(&[(b"A", b"1"), (b"A-B", b"x")], &[b"p"]),
            "env A=1 'A-B=x' p"
        );
    }

    #[test]
    fn a_program_word_that_reads_as_an_assignment_is_quoted() {
        assert_eq!(line_bytes(&[], &[b"A=b", b"C=d"]), "'A=b' C=d");
        assert_eq!(
            line_bytes(&[(b"X", b"1")], &[b"A=\xff"]),
            "X=1 'A='\"$(printf '\\377')\""
        );
        // Any `=` in the command word is quoted: never read as an assignment.
        assert_eq!(line_bytes(&[], &[b"/bin/A=b"]), "'/bin/A=b'");
        assert_eq!(line_bytes(&[], &[b"1A=b"]), "'1A=b'");
    }
}
