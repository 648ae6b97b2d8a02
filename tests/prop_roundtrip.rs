//! argv and env survive the trip into a child byte for byte: random byte
//! strings without NUL, empty and long ones included, read back from the
//! helper's report.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use common::{helper, report_of};
use proptest::prelude::*;

fn no_nul(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => proptest::collection::vec(1u8..=255, 0..24),
        1 => Just(Vec::new()),
        1 => proptest::collection::vec(1u8..=255, 1000..max),
    ]
}

/// A valid variable name: non-empty, no '=', no NUL.
fn env_name() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec((1u8..=255).prop_filter("no =", |b| *b != b'='), 1..16)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn argv_round_trips(args in proptest::collection::vec(no_nul(20_000), 0..12)) {
        let cmd = helper("report").args(args.iter().map(|a| OsStr::from_bytes(a)));
        let r = report_of(cmd);
        prop_assert_eq!(r.args, args);
    }

    #[test]
    fn env_round_trips(vars in proptest::collection::vec((env_name(), no_nul(8_000)), 0..10)) {
        let mut cmd = helper("report").env_clear();
        let mut want: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for (k, v) in &vars {
            cmd = cmd.env(OsStr::from_bytes(k), OsStr::from_bytes(v));
            want.insert(k.clone(), v.clone());
        }
        let r = report_of(cmd);
        let mut want: Vec<Vec<u8>> = want
            .into_iter()
            .map(|(mut k, v)| { k.push(b'='); k.extend(v); k })
            .collect();
        // The helper sorts whole `K=V` entries: a key that is a prefix of
        // another ("\x89" and "\x89\x01") may sort after it once '=' follows.
        want.sort();
        prop_assert_eq!(r.env, want);
    }
}

/// Found by proptest: one key a prefix of another, with a byte below '='.
#[test]
fn env_keys_that_prefix_each_other_round_trip() {
    let r = report_of(
        helper("report")
            .env_clear()
            .env(OsStr::from_bytes(b"\x89"), "")
            .env(OsStr::from_bytes(b"\x89\x01"), ""),
    );
    assert_eq!(r.env, vec![b"\x89\x01=".to_vec(), b"\x89=".to_vec()]);
}
