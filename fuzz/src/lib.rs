//! Support for the fuzz targets: a strict POSIX-shell word parser that reads
//! back the `Display` line of a `Command`, and the check that compares it with
//! what the command was given.
//!
//! The parser accepts exactly the shell syntax the quoting may produce (plain
//! words, `'..'`, `\x`, and `"$(printf '\ooo')"` for bytes that are not
//! UTF-8) and refuses everything a shell would interpret differently from a
//! literal: an unquoted `$`, glob character, operator, tab or newline is an
//! error, because a line containing one would not mean what it shows.

/// One word of a parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word's bytes after quote removal.
    pub bytes: Vec<u8>,
    /// Whether a shell sees this word as a variable assignment: it is among
    /// the leading words, and starts with an unquoted name followed by an
    /// unquoted `=`.
    pub assignment: bool,
}

/// Bytes a shell interprets when they appear unquoted.
const UNQUOTED_SPECIAL: &[u8] = b"\t\n\r!\"#$&()*;<>?[]^`{|}~";

fn is_name_start(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphabetic()
}

fn is_name_byte(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphanumeric()
}

/// Whether `name` is a shell variable name (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn is_shell_name(name: &[u8]) -> bool {
    matches!(name.first(), Some(&b) if is_name_start(b)) && name.iter().all(|&b| is_name_byte(b))
}

/// Splits `line` into words the way a POSIX shell would, refusing any
/// construct a shell would expand or interpret.
pub fn shell_words(line: &str) -> Result<Vec<Word>, String> {
    let b = line.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    let mut leading = true;
    while i < b.len() {
        if b[i] == b' ' {
            i += 1;
            continue;
        }
        // One word: up to an unquoted space.
        let mut word = Vec::new();
        // Unquoted prefix so far is a name: candidate assignment.
        let mut prefix_is_name = true;
        let mut assignment = false;
        let mut first_byte = true;
        while i < b.len() && b[i] != b' ' {
            let c = b[i];
            match c {
                b'\'' => {
                    prefix_is_name = false;
                    let end = b[i + 1..]
                        .iter()
                        .position(|&x| x == b'\'')
                        .ok_or_else(|| format!("unterminated single quote at {i}"))?;
                    word.extend_from_slice(&b[i + 1..i + 1 + end]);
                    i += end + 2;
                }
                b'\\' => {
                    prefix_is_name = false;
                    match b.get(i + 1) {
                        None => return Err("backslash at end of line".into()),
                        Some(b'\n') => return Err("backslash-newline".into()),
                        Some(&x) => word.push(x),
                    }
                    i += 2;
                }
                b'"' => {
                    prefix_is_name = false;
                    i = double_quoted(b, i, &mut word)?;
                }
                _ if UNQUOTED_SPECIAL.contains(&c) => {
                    return Err(format!("unquoted {:?} at byte {i} in {line:?}", c as char));
                }
                b'=' if prefix_is_name && !word.is_empty() && leading => {
                    assignment = true;
                    prefix_is_name = false;
                    word.push(c);
                    i += 1;
                }
                _ => {
                    if first_byte && c == b'~' {
                        return Err("unquoted ~ at word start".into());
                    }
                    if prefix_is_name
                        && !(if word.is_empty() {
                            is_name_start(c)
                        } else {
                            is_name_byte(c)
                        })
                    {
                        prefix_is_name = false;
                    }
                    word.push(c);
                    i += 1;
                }
            }
            first_byte = false;
        }
        if !assignment {
            leading = false;
        }
        words.push(Word {
            bytes: word,
            assignment,
        });
    }
    Ok(words)
}

/// Parses a `"..."` starting at `b[start]`; returns the index after it.
/// Inside, only `\` escapes of `$ ` " \` and the exact form
/// `$(printf '\ooo')` are accepted.
fn double_quoted(b: &[u8], start: usize, word: &mut Vec<u8>) -> Result<usize, String> {
    let mut i = start + 1;
    loop {
        match b.get(i) {
            None => return Err(format!("unterminated double quote at {start}")),
            Some(b'"') => return Ok(i + 1),
            Some(b'\\') => match b.get(i + 1) {
                Some(&x @ (b'$' | b'`' | b'"' | b'\\')) => {
                    word.push(x);
                    i += 2;
                }
                Some(b'\n') => return Err("backslash-newline in double quotes".into()),
                _ => {
                    word.push(b'\\');
                    i += 1;
                }
            },
            Some(b'$') => {
                // $(printf '\ooo')
                let rest = &b[i..];
                let pre = b"$(printf '\\";
                if rest.len() >= pre.len() + 5
                    && &rest[..pre.len()] == pre
                    && &rest[pre.len() + 3..pre.len() + 5] == b"')"
                {
                    let digits = &rest[pre.len()..pre.len() + 3];
                    if !digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                        return Err("bad octal escape in printf".into());
                    }
                    let v = digits
                        .iter()
                        .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                    if v > 255 {
                        return Err("octal escape above 255".into());
                    }
                    if v == 0 || v == b'\n' as u32 {
                        // $(..) drops a NUL and trailing newlines.
                        return Err(format!("printf of byte {v} does not survive $(..)"));
                    }
                    word.push(v as u8);
                    i += pre.len() + 5;
                } else {
                    return Err("expansion inside double quotes".into());
                }
            }
            Some(b'`') => return Err("backquote inside double quotes".into()),
            Some(&x) => {
                word.push(x);
                i += 1;
            }
        }
    }
}

/// Checks that `line` (a command's `Display`) reads back, word for word, as
/// the given environment entries followed by argv. The leading environment
/// entries whose names are shell names must be seen by a shell as
/// assignments; the first argv word must not be.
pub fn check_line(line: &str, env: &[(Vec<u8>, Vec<u8>)], argv: &[Vec<u8>]) -> Result<(), String> {
    let words = shell_words(line).map_err(|e| format!("{e}\nline: {line:?}"))?;
    // A name a shell cannot assign makes the line start with `env`, which
    // takes every entry as an argument.
    let env_word = env.iter().any(|(k, _)| !is_shell_name(k));
    let mut expected: Vec<Vec<u8>> = Vec::new();
    if env_word {
        expected.push(b"env".to_vec());
    }
    for (k, v) in env {
        let mut e = k.clone();
        e.push(b'=');
        e.extend_from_slice(v);
        expected.push(e);
    }
    expected.extend(argv.iter().cloned());
    let got: Vec<Vec<u8>> = words.iter().map(|w| w.bytes.clone()).collect();
    if got != expected {
        return Err(format!(
            "words differ\nline:     {line:?}\ngot:      {:?}\nexpected: {:?}",
            show(&got),
            show(&expected)
        ));
    }
    if env_word {
        // env(1) sets the entries and runs the program word; a shell
        // assigns nothing here.
        return Ok(());
    }
    // Every entry is a shell name: a shell must read each as an assignment.
    for (i, (k, _)) in env.iter().enumerate() {
        if !words[i].assignment {
            return Err(format!(
                "env entry {i} ({:?}) is not an assignment to a shell\nline: {line:?}",
                String::from_utf8_lossy(k)
            ));
        }
    }
    if let Some(w) = words.get(env.len()) {
        if w.assignment {
            return Err(format!(
                "the program word {:?} reads as an assignment\nline: {line:?}",
                String::from_utf8_lossy(&w.bytes)
            ));
        }
    }
    Ok(())
}

fn show(v: &[Vec<u8>]) -> Vec<String> {
    v.iter()
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<Vec<u8>> {
        shell_words(s)
            .unwrap()
            .into_iter()
            .map(|w| w.bytes)
            .collect()
    }

    #[test]
    fn parses_the_quoting_forms() {
        assert_eq!(
            words("a 'b c' ''"),
            vec![b"a".to_vec(), b"b c".to_vec(), vec![]]
        );
        assert_eq!(words("'it'\\''s'"), vec![b"it's".to_vec()]);
        assert_eq!(words("a\"$(printf '\\377')\"b"), vec![b"a\xffb".to_vec()]);
    }

    #[test]
    fn refuses_what_a_shell_interprets() {
        for bad in [
            "$HOME",
            "a*",
            "a;b",
            "`x`",
            "a|b",
            "'open",
            "\"$(ls)\"",
            "~root",
            "a\tb",
        ] {
            assert!(shell_words(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn classifies_assignments() {
        let w = shell_words("A=1 B='x y' prog C=2").unwrap();
        let a: Vec<bool> = w.iter().map(|w| w.assignment).collect();
        assert_eq!(a, vec![true, true, false, false]);
        assert!(!shell_words("'A=1'").unwrap()[0].assignment);
        assert!(!shell_words("1A=1").unwrap()[0].assignment);
    }

    #[test]
    fn check_line_catches_a_program_word_that_assigns() {
        assert!(check_line("A=b", &[], &[b"A=b".to_vec()]).is_err());
        assert!(check_line("'A=b'", &[], &[b"A=b".to_vec()]).is_ok());
    }
}
