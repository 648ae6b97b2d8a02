//! Parsers for option values: each returns a message naming what is wrong.

use std::time::Duration;

use safespawn::{Resource, Signal};

/// `300ms`, `5s`, `2m`, `1h`, `1.5s`; a bare number is seconds (as timeout(1)).
/// A duration too large for a `Duration` (`1e300h`, `inf`) saturates at
/// `Duration::MAX`, which the library treats as no deadline: a huge timeout
/// means "never", not a refusal (timeout(1) does the same).
pub fn duration(s: &str) -> Result<Duration, String> {
    let (number, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (examples: 300ms, 5s, 2m, 1h)"))?;
    if value.is_nan() {
        return Err(format!(
            "'{s}' is not a duration (examples: 300ms, 5s, 2m, 1h)"
        ));
    }
    if value <= 0.0 {
        return Err(format!("'{s}' is not a positive duration"));
    }
    // Positive and not NaN: the only failure left is overflow.
    Ok(Duration::try_from_secs_f64(value * scale).unwrap_or(Duration::MAX))
}

/// An octal mode such as `077` or `0022`.
pub fn umask(s: &str) -> Result<u32, String> {
    let mode = u32::from_str_radix(s, 8).map_err(|_| format!("'{s}' is not an octal mode"))?;
    if mode > 0o777 {
        return Err(format!("'{s}' is larger than 0777"));
    }
    Ok(mode)
}

/// A tmpfs size for `--size`: bytes, or with a `k`, `m` or `g` suffix
/// (KiB, MiB, GiB). Zero is refused: the kernel reads `size=0` as no limit.
pub fn size(s: &str) -> Result<u64, String> {
    let (number, scale) = match s.char_indices().last() {
        Some((at, 'k' | 'K')) => (&s[..at], 1u64 << 10),
        Some((at, 'm' | 'M')) => (&s[..at], 1 << 20),
        Some((at, 'g' | 'G')) => (&s[..at], 1 << 30),
        _ => (s, 1),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("'{s}' is not a size (examples: 1048576, 512k, 64m, 1g)"))?;
    if n == 0 {
        return Err(format!(
            "'{s}' is not a positive size (a tmpfs of size 0 would have no limit)"
        ));
    }
    n.checked_mul(scale)
        .ok_or_else(|| format!("'{s}' is too large"))
}

/// A file mode for `--perms`, in octal, up to `07777`.
pub fn perms(s: &str) -> Result<u32, String> {
    let mode = u32::from_str_radix(s, 8).map_err(|_| format!("'{s}' is not an octal mode"))?;
    if mode > 0o7777 {
        return Err(format!("'{s}' is larger than 07777"));
    }
    Ok(mode)
}

/// Supplementary group ids (one option value, not a repeated option).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Groups(pub Vec<u32>);

/// A comma-separated list of numeric group ids; empty means none.
pub fn groups(s: &str) -> Result<Groups, String> {
    if s.is_empty() {
        return Ok(Groups(Vec::new()));
    }
    s.split(',')
        .map(|g| {
            g.trim()
                .parse()
                .map_err(|_| format!("'{g}' is not a numeric group id"))
        })
        .collect::<Result<_, _>>()
        .map(Groups)
}

/// A resource limit: the resource and its soft and hard values
/// (`u64::MAX` = unlimited).
#[derive(Debug, Clone, Copy)]
pub struct Rlimit {
    pub resource: Resource,
    pub soft: u64,
    pub hard: u64,
}

const RESOURCES: &[(&str, Resource)] = &[
    ("as", Resource::As),
    ("core", Resource::Core),
    ("cpu", Resource::Cpu),
    ("data", Resource::Data),
    ("fsize", Resource::Fsize),
    ("locks", Resource::Locks),
    ("memlock", Resource::Memlock),
    ("msgqueue", Resource::Msgqueue),
    ("nice", Resource::Nice),
    ("nofile", Resource::Nofile),
    ("nproc", Resource::Nproc),
    ("rss", Resource::Rss),
    ("rtprio", Resource::Rtprio),
    ("rttime", Resource::Rttime),
    ("sigpending", Resource::Sigpending),
    ("stack", Resource::Stack),
];

fn limit_value(s: &str) -> Result<u64, String> {
    if s == "unlimited" || s == "infinity" {
        return Ok(u64::MAX);
    }
    s.parse()
        .map_err(|_| format!("'{s}' is not a number or 'unlimited'"))
}

/// `NAME=SOFT[:HARD]`; without `:HARD` both limits are set to SOFT (as
/// prlimit(1) does).
pub fn rlimit(s: &str) -> Result<Rlimit, String> {
    let (name, values) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not NAME=SOFT[:HARD]"))?;
    let lower = name.to_ascii_lowercase();
    let bare = lower.strip_prefix("rlimit_").unwrap_or(&lower);
    let resource = RESOURCES
        .iter()
        .find(|(n, _)| *n == bare)
        .map(|(_, r)| *r)
        .ok_or_else(|| {
            let names: Vec<&str> = RESOURCES.iter().map(|(n, _)| *n).collect();
            format!("unknown resource '{name}' (one of: {})", names.join(", "))
        })?;
    let (soft, hard) = match values.split_once(':') {
        Some((soft, hard)) => (limit_value(soft)?, limit_value(hard)?),
        None => {
            let v = limit_value(values)?;
            (v, v)
        }
    };
    if soft > hard {
        return Err(format!("'{s}': the soft limit is above the hard limit"));
    }
    Ok(Rlimit {
        resource,
        soft,
        hard,
    })
}

const SIGNALS: &[(&str, Signal)] = &[
    ("HUP", Signal::HUP),
    ("INT", Signal::INT),
    ("QUIT", Signal::QUIT),
    ("ILL", Signal::ILL),
    ("TRAP", Signal::TRAP),
    ("ABRT", Signal::ABORT),
    ("BUS", Signal::BUS),
    ("FPE", Signal::FPE),
    ("KILL", Signal::KILL),
    ("USR1", Signal::USR1),
    ("SEGV", Signal::SEGV),
    ("USR2", Signal::USR2),
    ("PIPE", Signal::PIPE),
    ("ALRM", Signal::ALARM),
    ("TERM", Signal::TERM),
    ("CHLD", Signal::CHILD),
    ("CONT", Signal::CONT),
    ("STOP", Signal::STOP),
    ("TSTP", Signal::TSTP),
    ("TTIN", Signal::TTIN),
    ("TTOU", Signal::TTOU),
    ("URG", Signal::URG),
    ("XCPU", Signal::XCPU),
    ("XFSZ", Signal::XFSZ),
    ("VTALRM", Signal::VTALARM),
    ("PROF", Signal::PROF),
    ("WINCH", Signal::WINCH),
    ("IO", Signal::IO),
    ("PWR", Signal::POWER),
    ("SYS", Signal::SYS),
];

/// A signal by name (`TERM`, `SIGTERM`, `term`) or number (`15`).
pub fn signal(s: &str) -> Result<Signal, String> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::from_named_raw(n).ok_or_else(|| format!("'{s}' is not a signal number"));
    }
    let upper = s.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS
        .iter()
        .find(|(n, _)| *n == bare)
        .map(|(_, sig)| *sig)
        .ok_or_else(|| format!("'{s}' is not a signal name (examples: TERM, KILL, HUP)"))
}

/// `K=V` for `--env`: the name must be non-empty.
pub fn env_entry(s: &str) -> Result<String, String> {
    match s.split_once('=') {
        Some((k, _)) if !k.is_empty() => Ok(s.to_owned()),
        _ => Err(format!("'{s}' is not NAME=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(duration("0s").is_err());
        assert!(duration("-1s").is_err());
        assert!(duration("5x").is_err());
        assert!(duration("").is_err());
        // Too long for a Duration: saturated, never refused or zero.
        assert_eq!(duration("1e300h"), Ok(Duration::MAX));
        assert_eq!(duration("inf"), Ok(Duration::MAX));
        assert!(duration("nan").is_err());
        assert!(duration("-inf").is_err());
    }

    #[test]
    fn umasks() {
        assert_eq!(umask("077"), Ok(0o77));
        assert_eq!(umask("0022"), Ok(0o22));
        assert!(umask("8").is_err());
        assert!(umask("1000").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(size("1048576"), Ok(1 << 20));
        assert_eq!(size("512k"), Ok(512 << 10));
        assert_eq!(size("64M"), Ok(64 << 20));
        assert_eq!(size("1g"), Ok(1 << 30));
        for bad in ["0", "0m", "", "m", "-1", "1.5m", "1t", "big"] {
            assert!(size(bad).is_err(), "{bad}");
        }
        assert!(size("18446744073709551615g")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn perms_are_octal_up_to_07777() {
        assert_eq!(perms("1777"), Ok(0o1777));
        assert_eq!(perms("0700"), Ok(0o700));
        assert!(perms("10000").is_err());
        assert!(perms("999").is_err());
        assert!(perms("").is_err());
    }

    #[test]
    fn group_lists() {
        assert_eq!(groups("1,2, 3"), Ok(Groups(vec![1, 2, 3])));
        assert_eq!(groups(""), Ok(Groups(vec![])));
        assert!(groups("wheel").is_err());
    }

    #[test]
    fn rlimits() {
        let r = rlimit("nofile=64").unwrap();
        assert_eq!((r.resource, r.soft, r.hard), (Resource::Nofile, 64, 64));
        let r = rlimit("CORE=0:unlimited").unwrap();
        assert_eq!((r.resource, r.soft, r.hard), (Resource::Core, 0, u64::MAX));
        let r = rlimit("RLIMIT_AS=unlimited").unwrap();
        assert_eq!(
            (r.resource, r.soft, r.hard),
            (Resource::As, u64::MAX, u64::MAX)
        );
        assert!(rlimit("nofile").is_err());
        assert!(rlimit("bogus=1")
            .unwrap_err()
            .contains("unknown resource 'bogus'"));
        assert!(rlimit("nofile=10:5").is_err());
        assert!(rlimit("nofile=x").is_err());
    }

    #[test]
    fn signals() {
        assert_eq!(signal("TERM"), Ok(Signal::TERM));
        assert_eq!(signal("sigkill"), Ok(Signal::KILL));
        assert_eq!(signal("9"), Ok(Signal::KILL));
        assert!(signal("0").is_err());
        assert!(signal("NOPE").is_err());
        for (name, sig) in SIGNALS {
            assert_eq!(signal(&sig.as_raw().to_string()), Ok(*sig), "{name}");
        }
    }

    #[test]
    fn env_entries() {
        assert_eq!(env_entry("A=b=c"), Ok("A=b=c".into()));
        assert_eq!(env_entry("A="), Ok("A=".into()));
        assert!(env_entry("=x").is_err());
        assert!(env_entry("A").is_err());
    }
}
