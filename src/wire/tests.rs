//! Unit tests of single valid frames (every field and default), the error-code spellings,
//! the documented limits, and helpers shared by the other test modules.

use chrono::{DateTime, TimeZone, Utc};

use super::*;

pub(super) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 9, 31, 0)
        .single()
        .unwrap_or_default()
}

pub(super) fn run(text: &str) -> Decoded {
    decode(text, now(), &Limits::default())
}

pub(super) fn one_report(text: &str) -> Report {
    let d = run(text);
    assert!(
        d.rejections.is_empty(),
        "unexpected rejections {:?} for {text}",
        d.rejections
    );
    assert_eq!(d.reports.len(), 1, "{text}");
    d.reports[0].clone()
}

pub(super) fn one_rejection(text: &str) -> Rejection {
    let d = run(text);
    assert!(
        d.reports.is_empty(),
        "unexpected reports {:?} for {text}",
        d.reports
    );
    assert_eq!(d.rejections.len(), 1, "{text}");
    d.rejections[0].clone()
}

pub(super) const FIX: &str = r#"{"type":"fix","seq":17,"ts":"2026-11-25T09:30:00Z","lat":33.6251,"lon":114.6512,"acc":6.5,"src":"gps","bat":87,"strap":"closed","speed":1.2}"#;

pub(super) fn fix_with(extra: &str) -> String {
    format!(
        r#"{{"type":"fix","seq":19,"ts":"2026-11-25T09:30:00Z","lat":33.6,"lon":114.6,{extra}}}"#
    )
}

pub(super) fn status_with(extra: &str) -> String {
    format!(r#"{{"type":"status","seq":20,"ts":"2026-11-25T09:30:00Z"{extra}}}"#)
}

pub(super) fn assert_rejected(text: &str, seq: Option<u64>, code: ErrorCode, needle: &str) {
    let r = one_rejection(text);
    assert_eq!((r.seq, r.code), (seq, code), "{text}: {r:?}");
    assert!(
        r.message.contains(needle),
        "message {:?} lacks {needle:?}",
        r.message
    );
}

#[test]
fn the_example_fix_from_the_contract_decodes_with_every_field() {
    let r = one_report(FIX);
    assert_eq!(r.seq, 17);
    assert_eq!(r.ts, Utc.with_ymd_and_hms(2026, 11, 25, 9, 30, 0).unwrap());
    let p = r.position.expect("a fix has a position");
    assert_eq!(
        (p.lat, p.lon, p.acc_m, p.src),
        (33.6251, 114.6512, 6.5, Source::Gps)
    );
    assert_eq!(p.speed_mps, Some(1.2));
    assert_eq!((r.bat, r.strap), (Some(87), Some(Strap::Closed)));
}

#[test]
fn a_fix_without_optional_fields_gets_the_default_accuracy_and_gps_source() {
    let p = one_report(&fix_with(r#""x":0"#)).position.unwrap();
    assert_eq!((p.acc_m, p.src, p.speed_mps), (50.0, Source::Gps, None));
    let r = one_report(&fix_with(r#""x":0"#));
    assert_eq!((r.bat, r.strap), (None, None));
}

#[test]
fn the_default_accuracy_comes_from_the_limits() {
    let limits = Limits {
        default_acc_m: 120.0,
        ..Limits::default()
    };
    let d = decode(&fix_with(r#""x":0"#), now(), &limits);
    assert_eq!(d.reports[0].position.unwrap().acc_m, 120.0);
}

#[test]
fn wifi_and_cell_sources_and_an_open_strap_are_read() {
    let p = one_report(&fix_with(r#""src":"wifi""#)).position.unwrap();
    assert_eq!(p.src, Source::Wifi);
    let r = one_report(&fix_with(r#""src":"cell","strap":"open""#));
    assert_eq!(
        (r.position.unwrap().src, r.strap),
        (Source::Cell, Some(Strap::Open))
    );
    assert_eq!(
        (Source::Cell.as_str(), Strap::Open.as_str()),
        ("cell", "open")
    );
}

#[test]
fn a_status_carries_battery_and_strap_and_no_position() {
    let r = one_report(&status_with(r#","bat":86,"strap":"open""#));
    assert_eq!(
        (r.seq, r.position, r.bat, r.strap),
        (20, None, Some(86), Some(Strap::Open))
    );
}

#[test]
fn a_status_with_neither_battery_nor_strap_is_a_heartbeat() {
    let r = one_report(&status_with(""));
    assert_eq!((r.position, r.bat, r.strap), (None, None, None));
}

#[test]
fn a_status_ignores_position_fields_like_unknown_ones() {
    let r = one_report(&status_with(r#","lat":999,"src":"gnss","acc":-1"#));
    assert_eq!(r.position, None);
}

#[test]
fn unknown_extra_fields_of_any_shape_are_ignored() {
    let text = fix_with(r#""vendor":{"cells":[1,2,{"a":null}]},"hdop":0.9,"note":"ok\n""#);
    assert_eq!(one_report(&text).seq, 19);
}

#[test]
fn null_optional_fields_count_as_absent() {
    let r = one_report(&fix_with(
        r#""acc":null,"src":null,"bat":null,"strap":null,"speed":null"#,
    ));
    assert_eq!(r.position.unwrap().acc_m, 50.0);
    assert_eq!((r.bat, r.strap), (None, None));
}

#[test]
fn strings_with_escapes_are_read_like_plain_ones() {
    let r = one_report(&fix_with(r#""src":"w\u0069fi","strap":"\u006fpen""#));
    assert_eq!(
        (r.position.unwrap().src, r.strap),
        (Source::Wifi, Some(Strap::Open))
    );
}

#[test]
fn every_error_code_has_its_documented_spelling_and_parses_back() {
    let spelled: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        spelled,
        [
            "malformed_json",
            "unknown_type",
            "missing_field",
            "invalid_field",
            "invalid_fix",
            "invalid_ts",
            "invalid_seq",
            "batch_too_large",
            "empty_batch",
            "binary_frame",
            "frame_too_large"
        ]
    );
    for c in ErrorCode::ALL {
        assert_eq!(ErrorCode::from_wire(c.as_str()), Some(c));
        assert_eq!(c.to_string(), c.as_str());
    }
    assert_eq!(ErrorCode::from_wire("nope"), None);
}

#[test]
fn the_device_protocol_doc_names_every_error_code_and_close_code() {
    let doc = include_str!("../../docs/device-protocol.md");
    for c in ErrorCode::ALL {
        assert!(
            doc.contains(&format!("`{}`", c.as_str())),
            "doc lacks {}",
            c.as_str()
        );
    }
    for code in [
        CLOSE_OVERSIZED,
        CLOSE_POLICY,
        CLOSE_SHUTDOWN,
        CLOSE_REPLACED,
    ] {
        assert!(
            doc.contains(&code.to_string()),
            "doc lacks close code {code}"
        );
    }
}

#[test]
fn the_default_limits_are_the_documented_ones() {
    let l = Limits::default();
    assert_eq!(l.max_batch, 1000);
    assert_eq!(l.max_future_skew, chrono::Duration::minutes(5));
    assert_eq!(l.max_age, chrono::Duration::days(30));
    assert_eq!(l.default_acc_m, 50.0);
    assert_eq!(
        (
            CLOSE_OVERSIZED,
            CLOSE_POLICY,
            CLOSE_SHUTDOWN,
            CLOSE_REPLACED
        ),
        (1009, 1008, 1001, 4000)
    );
}
