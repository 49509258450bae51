//! Unit tests of single rejected frames: one or more per error code, each with its seq rule.

use chrono::{TimeZone, Utc};

use super::tests::{assert_rejected, fix_with, one_rejection, one_report, status_with, FIX};
use super::*;

#[test]
fn a_fix_with_lat_91_is_rejected_with_its_seq() {
    let text = FIX.replace("33.6251", "91.2");
    let r = one_rejection(&text);
    assert_eq!(
        (r.seq, r.code, r.message.as_str()),
        (Some(17), ErrorCode::InvalidFix, "lat 91.2 out of range")
    );
}

#[test]
fn a_lon_beyond_180_or_a_non_numeric_lat_is_an_invalid_fix() {
    assert_rejected(
        &FIX.replace("114.6512", "-180.5"),
        Some(17),
        ErrorCode::InvalidFix,
        "lon -180.5",
    );
    assert_rejected(
        &FIX.replace("33.6251", r#""33.6""#),
        Some(17),
        ErrorCode::InvalidFix,
        "lat \"33.6\"",
    );
    assert_rejected(
        &FIX.replace("33.6251", "1e300"),
        Some(17),
        ErrorCode::InvalidFix,
        "lat 1e300",
    );
}

#[test]
fn extreme_but_valid_coordinates_are_accepted() {
    let text = FIX.replace("33.6251", "-90").replace("114.6512", "180");
    let p = one_report(&text).position.unwrap();
    assert_eq!((p.lat, p.lon), (-90.0, 180.0));
}

#[test]
fn missing_required_fields_are_named() {
    let no_lat = FIX.replace(r#""lat":33.6251,"#, "");
    assert_rejected(&no_lat, Some(17), ErrorCode::MissingField, "missing lat");
    let no_lon = FIX.replace(r#""lon":114.6512,"#, "");
    assert_rejected(&no_lon, Some(17), ErrorCode::MissingField, "missing lon");
    let no_ts = FIX.replace(r#""ts":"2026-11-25T09:30:00Z","#, "");
    assert_rejected(&no_ts, Some(17), ErrorCode::MissingField, "missing ts");
    let no_seq = FIX.replace(r#""seq":17,"#, "");
    assert_rejected(&no_seq, None, ErrorCode::MissingField, "missing seq");
}

#[test]
fn a_missing_wrong_or_unknown_type_is_unknown_type_with_the_seq() {
    assert_rejected(
        &FIX.replace(r#""type":"fix","#, ""),
        Some(17),
        ErrorCode::UnknownType,
        "missing type",
    );
    assert_rejected(
        &FIX.replace(r#""fix""#, r#""position""#),
        Some(17),
        ErrorCode::UnknownType,
        "\"position\"",
    );
    assert_rejected(
        &FIX.replace(r#""fix""#, "7"),
        Some(17),
        ErrorCode::UnknownType,
        "type 7",
    );
}

#[test]
fn text_that_is_not_a_json_object_is_malformed_json_with_seq_null() {
    for text in [
        "",
        "not json",
        "{\"type\":\"fix\"",
        "[1,2]",
        "17",
        "null",
        "\"fix\"",
        "{} x",
    ] {
        assert_rejected(text, None, ErrorCode::MalformedJson, "");
    }
}

#[test]
fn a_fix_written_as_a_json_array_is_not_accepted() {
    let text = r#"["fix",17,"2026-11-25T09:30:00Z",33.6,114.6]"#;
    assert_rejected(text, None, ErrorCode::MalformedJson, "not a JSON object");
}

#[test]
fn a_seq_that_is_negative_fractional_or_a_string_is_invalid_seq_with_seq_null() {
    for (bad, shown) in [
        ("-1", "-1"),
        ("17.5", "17.5"),
        ("\"17\"", "\"17\""),
        ("1e3", "1000.0"),
        ("true", "true"),
    ] {
        let text = FIX.replace("\"seq\":17", &format!("\"seq\":{bad}"));
        assert_rejected(&text, None, ErrorCode::InvalidSeq, &format!("seq {shown}"));
    }
}

#[test]
fn a_u64_seq_above_i64_max_is_rejected_and_echoed() {
    let big = i64::MAX as u64 + 1;
    let text = FIX.replace("\"seq\":17", &format!("\"seq\":{big}"));
    assert_rejected(&text, Some(big), ErrorCode::InvalidSeq, &big.to_string());
    let max = FIX.replace("\"seq\":17", &format!("\"seq\":{}", i64::MAX));
    assert_eq!(one_report(&max).seq, i64::MAX as u64);
    let zero = FIX.replace("\"seq\":17", "\"seq\":0");
    assert_eq!(one_report(&zero).seq, 0);
}

#[test]
fn a_ts_more_than_five_minutes_ahead_is_rejected_and_less_is_accepted() {
    let ahead = FIX.replace("2026-11-25T09:30:00Z", "2026-11-25T09:36:01Z");
    assert_rejected(&ahead, Some(17), ErrorCode::InvalidTs, "ahead");
    let edge = FIX.replace("2026-11-25T09:30:00Z", "2026-11-25T09:36:00Z");
    assert_eq!(one_report(&edge).seq, 17);
}

#[test]
fn a_ts_older_than_thirty_days_is_rejected_and_younger_is_accepted() {
    let old = FIX.replace("2026-11-25T09:30:00Z", "2026-10-26T09:30:59Z");
    assert_rejected(&old, Some(17), ErrorCode::InvalidTs, "older than 30 days");
    let fine = FIX.replace("2026-11-25T09:30:00Z", "2026-10-26T09:31:00Z");
    assert_eq!(one_report(&fine).seq, 17);
}

#[test]
fn a_ts_with_a_plus_eight_offset_is_normalised_to_utc() {
    let text = FIX.replace("2026-11-25T09:30:00Z", "2026-11-25T17:30:00.250+08:00");
    let expected =
        Utc.with_ymd_and_hms(2026, 11, 25, 9, 30, 0).unwrap() + chrono::Duration::milliseconds(250);
    assert_eq!(one_report(&text).ts, expected);
}

#[test]
fn a_ts_without_an_offset_or_not_a_string_is_invalid_ts() {
    let naive = FIX.replace("2026-11-25T09:30:00Z", "2026-11-25T09:30:00");
    assert_rejected(&naive, Some(17), ErrorCode::InvalidTs, "not RFC 3339");
    let epoch = FIX.replace("\"2026-11-25T09:30:00Z\"", "1795685400");
    assert_rejected(&epoch, Some(17), ErrorCode::InvalidTs, "ts 1795685400");
}

#[test]
fn an_accuracy_out_of_range_or_not_a_number_is_invalid_field() {
    for (bad, shown) in [
        ("0", "acc 0"),
        ("-3", "acc -3"),
        ("100000.5", "acc 100000.5"),
        ("\"6\"", "acc \"6\""),
        ("1e-300", "acc 1e-300"),
    ] {
        assert_rejected(
            &fix_with(&format!("\"acc\":{bad}")),
            Some(19),
            ErrorCode::InvalidField,
            shown,
        );
    }
    assert_eq!(
        one_report(&fix_with(r#""acc":100000"#))
            .position
            .unwrap()
            .acc_m,
        100000.0
    );
}

#[test]
fn a_battery_outside_0_to_100_or_not_an_integer_is_invalid_field() {
    for (bad, shown) in [
        ("101", "bat 101"),
        ("-1", "bat -1"),
        ("87.5", "bat 87.5"),
        ("\"full\"", "bat \"full\""),
        ("256", "bat 256"),
    ] {
        assert_rejected(
            &status_with(&format!(",\"bat\":{bad}")),
            Some(20),
            ErrorCode::InvalidField,
            shown,
        );
    }
    assert_eq!(one_report(&status_with(r#","bat":0"#)).bat, Some(0));
    assert_eq!(one_report(&status_with(r#","bat":100"#)).bat, Some(100));
}

#[test]
fn an_unknown_strap_or_source_is_invalid_field() {
    assert_rejected(
        &status_with(r#","strap":"cut""#),
        Some(20),
        ErrorCode::InvalidField,
        "strap \"cut\"",
    );
    assert_rejected(
        &status_with(r#","strap":false"#),
        Some(20),
        ErrorCode::InvalidField,
        "strap false",
    );
    assert_rejected(
        &fix_with(r#""src":"gnss""#),
        Some(19),
        ErrorCode::InvalidField,
        "src \"gnss\"",
    );
    assert_rejected(
        &fix_with(r#""src":["gps"]"#),
        Some(19),
        ErrorCode::InvalidField,
        "src [\"gps\"]",
    );
}

#[test]
fn a_speed_outside_0_to_1000_is_invalid_field_and_inside_is_kept() {
    assert_rejected(
        &fix_with(r#""speed":-0.1"#),
        Some(19),
        ErrorCode::InvalidField,
        "speed -0.1",
    );
    assert_rejected(
        &fix_with(r#""speed":1000.5"#),
        Some(19),
        ErrorCode::InvalidField,
        "speed 1000.5",
    );
    assert_rejected(
        &fix_with(r#""speed":"fast""#),
        Some(19),
        ErrorCode::InvalidField,
        "speed \"fast\"",
    );
    assert_eq!(
        one_report(&fix_with(r#""speed":0"#))
            .position
            .unwrap()
            .speed_mps,
        Some(0.0)
    );
}

#[test]
fn rules_are_checked_in_a_fixed_order_so_the_first_bad_field_is_reported() {
    let text = r#"{"type":"fix","seq":5,"ts":"yesterday","lat":200,"bat":"x"}"#;
    assert_rejected(text, Some(5), ErrorCode::InvalidTs, "yesterday");
}

#[test]
fn a_huge_value_is_quoted_back_cut_short() {
    let long = "x".repeat(100_000);
    let r = one_rejection(&fix_with(&format!("\"src\":\"{long}\"")));
    assert!(r.message.len() < 120, "{}", r.message.len());
    let r = one_rejection(&fix_with(&format!("\"src\":[\"{long}\"]")));
    assert!(r.message.len() < 120, "{}", r.message.len());
}
