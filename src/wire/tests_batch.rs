//! Unit and property tests of batches, server frames, and of `decode` on arbitrary input.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::tests::{now, one_rejection, run};
use super::*;

fn fix_item(seq: u64) -> Value {
    json!({"type":"fix","seq":seq,"ts":"2026-11-25T09:00:00Z","lat":33.6 + seq as f64 * 1e-5,"lon":114.6,"acc":8.0})
}

fn batch(items: Vec<Value>) -> String {
    json!({"type":"batch","items":items}).to_string()
}

#[test]
fn a_batch_of_1000_good_fixes_decodes_in_order() {
    let d = run(&batch((1..=1000).map(fix_item).collect()));
    assert!(d.rejections.is_empty(), "{:?}", d.rejections.first());
    let seqs: Vec<u64> = d.reports.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=1000).collect::<Vec<_>>());
}

#[test]
fn a_batch_mixing_fixes_and_statuses_keeps_their_order() {
    let status = json!({"type":"status","seq":2,"ts":"2026-11-25T09:00:00Z","bat":40});
    let d = run(&batch(vec![fix_item(1), status, fix_item(3)]));
    let kinds: Vec<(u64, bool)> = d
        .reports
        .iter()
        .map(|r| (r.seq, r.position.is_some()))
        .collect();
    assert_eq!(kinds, [(1, true), (2, false), (3, true)]);
}

#[test]
fn a_batch_with_bad_items_passes_the_good_ones_and_rejects_each_bad_one_with_its_seq() {
    let mut items: Vec<Value> = (1..=6).map(fix_item).collect();
    items[1]["lat"] = json!(91.2);
    items[3]["bat"] = json!("full");
    items[4]["ts"] = json!("2020-01-01T00:00:00Z");
    let d = run(&batch(items));
    let good: Vec<u64> = d.reports.iter().map(|r| r.seq).collect();
    assert_eq!(good, [1, 3, 6]);
    let bad: Vec<(Option<u64>, ErrorCode)> = d.rejections.iter().map(|r| (r.seq, r.code)).collect();
    assert_eq!(
        bad,
        [
            (Some(2), ErrorCode::InvalidFix),
            (Some(4), ErrorCode::InvalidField),
            (Some(5), ErrorCode::InvalidTs)
        ]
    );
    assert_eq!(d.rejections[0].message, "lat 91.2 out of range");
}

#[test]
fn a_batch_item_without_a_readable_seq_is_named_by_its_index() {
    let d = run(&batch(vec![
        fix_item(1),
        json!(42),
        json!({"type":"fix","seq":-4}),
    ]));
    assert_eq!(d.reports.len(), 1);
    let r: Vec<(Option<u64>, ErrorCode, &str)> = d
        .rejections
        .iter()
        .map(|r| (r.seq, r.code, r.message.as_str()))
        .collect();
    assert_eq!(
        r[0],
        (
            None,
            ErrorCode::MalformedJson,
            "items[1]: item is a number, not a JSON object"
        )
    );
    assert_eq!((r[1].0, r[1].1), (None, ErrorCode::InvalidSeq));
    assert!(r[1].2.starts_with("items[2]: seq -4"), "{}", r[1].2);
}

#[test]
fn a_batch_of_1001_items_is_rejected_whole_with_seq_null() {
    let r = one_rejection(&batch((1..=1001).map(fix_item).collect()));
    assert_eq!((r.seq, r.code), (None, ErrorCode::BatchTooLarge));
    assert!(
        r.message.contains("1001") && r.message.contains("1000"),
        "{}",
        r.message
    );
}

#[test]
fn the_batch_limit_comes_from_the_limits() {
    let limits = Limits {
        max_batch: 2,
        ..Limits::default()
    };
    let d = decode(&batch((1..=3).map(fix_item).collect()), now(), &limits);
    assert_eq!(d.rejections[0].code, ErrorCode::BatchTooLarge);
    let d = decode(&batch((1..=2).map(fix_item).collect()), now(), &limits);
    assert_eq!(d.reports.len(), 2);
}

#[test]
fn an_empty_batch_is_empty_batch() {
    let r = one_rejection(r#"{"type":"batch","items":[]}"#);
    assert_eq!((r.seq, r.code), (None, ErrorCode::EmptyBatch));
}

#[test]
fn a_batch_without_items_or_with_items_not_a_list_is_rejected() {
    let r = one_rejection(r#"{"type":"batch"}"#);
    assert_eq!(
        (r.code, r.message.as_str()),
        (ErrorCode::MissingField, "missing items")
    );
    let r = one_rejection(r#"{"type":"batch","items":{"0":{}}}"#);
    assert_eq!((r.seq, r.code), (None, ErrorCode::InvalidField));
}

#[test]
fn a_batch_nested_in_a_batch_is_rejected_as_unknown_type() {
    let inner = json!({"type":"batch","seq":9,"items":[fix_item(2)]});
    let d = run(&batch(vec![fix_item(1), inner]));
    assert_eq!(d.reports.len(), 1);
    let r = &d.rejections[0];
    assert_eq!((r.seq, r.code), (Some(9), ErrorCode::UnknownType));
    assert!(r.message.contains("nested"), "{}", r.message);
}

#[test]
fn an_ack_and_an_error_render_as_documented() {
    assert_eq!(
        Outbound::Ack { seqs: vec![17, 18] }.to_json(),
        r#"{"type":"ack","seqs":[17,18]}"#
    );
    assert_eq!(
        Outbound::Ack { seqs: vec![] }.to_json(),
        r#"{"type":"ack","seqs":[]}"#
    );
    let e = Outbound::Error(Rejection {
        seq: Some(19),
        code: ErrorCode::InvalidFix,
        message: "lat 91.2 out of range".into(),
    });
    assert_eq!(
        e.to_json(),
        r#"{"type":"error","seq":19,"code":"invalid_fix","message":"lat 91.2 out of range"}"#
    );
    let e = Outbound::Error(Rejection {
        seq: None,
        code: ErrorCode::MalformedJson,
        message: "q\"\\\n\u{1}".into(),
    });
    assert_eq!(
        e.to_json(),
        r#"{"type":"error","seq":null,"code":"malformed_json","message":"q\"\\\n\u0001"}"#
    );
    assert_eq!(parse_outbound(&e.to_json()), Some(e));
}

#[test]
fn parse_outbound_refuses_unknown_frames_and_codes() {
    assert_eq!(
        parse_outbound(r#"{"type":"error","seq":1,"code":"oops","message":""}"#),
        None
    );
    assert_eq!(parse_outbound(r#"{"type":"fix"}"#), None);
    assert_eq!(parse_outbound("nope"), None);
    assert_eq!(parse_outbound(r#"{"type":"ack"}"#), None);
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        prop_oneof![
            Just("fix"),
            Just("status"),
            Just("batch"),
            Just("gps"),
            Just("open")
        ]
        .prop_map(|s| json!(s)),
        "[a-z0-9:.+ -]{0,24}".prop_map(Value::String),
        ".{0,12}".prop_map(Value::String),
    ];
    let keys = prop_oneof![
        Just("type".to_string()),
        Just("seq".to_string()),
        Just("ts".to_string()),
        Just("lat".to_string()),
        Just("lon".to_string()),
        Just("acc".to_string()),
        Just("src".to_string()),
        Just("bat".to_string()),
        Just("strap".to_string()),
        Just("speed".to_string()),
        Just("items".to_string()),
        "[a-z]{1,6}",
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..10)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Near-valid reports: each field valid, wrong or absent, to exercise every rule.
fn arb_report() -> impl Strategy<Value = Value> {
    let ts = prop_oneof![
        Just(json!("2026-11-25T09:30:00Z")),
        Just(json!("2026-11-25T17:30:00+08:00")),
        Just(json!("2026-12-25T09:30:00Z")),
        Just(json!("2026-11-25T09:30:00")),
        Just(json!(5)),
    ];
    let opt = |s: BoxedStrategy<Value>| prop::option::of(s);
    (
        opt(prop_oneof![
            Just(json!("fix")),
            Just(json!("status")),
            Just(json!("batch")),
            Just(json!(1))
        ]
        .boxed()),
        opt(prop_oneof![
            any::<u64>().prop_map(|n| json!(n)),
            any::<i64>().prop_map(|n| json!(n)),
            Just(json!("1"))
        ]
        .boxed()),
        opt(ts.boxed()),
        opt((-200.0..200.0f64).prop_map(|f| json!(f)).boxed()),
        opt((-200.0..200.0f64).prop_map(|f| json!(f)).boxed()),
        opt(prop_oneof![
            (-10.0..200_000.0f64).prop_map(|f| json!(f)),
            Just(json!("w\u{69}fi"))
        ]
        .boxed()),
        opt(prop_oneof![Just(json!("gps")), Just(json!("cell")), Just(json!("x"))].boxed()),
        opt(prop_oneof![(-5i64..300).prop_map(|n| json!(n)), Just(json!(5.5))].boxed()),
        opt(prop_oneof![
            Just(json!("open")),
            Just(json!("closed")),
            Just(json!(true))
        ]
        .boxed()),
        opt((-10.0..1100.0f64).prop_map(|f| json!(f)).boxed()),
    )
        .prop_map(|(ty, seq, ts, lat, lon, acc, src, bat, strap, speed)| {
            let names = [
                "type", "seq", "ts", "lat", "lon", "acc", "src", "bat", "strap", "speed",
            ];
            let vals = [ty, seq, ts, lat, lon, acc, src, bat, strap, speed];
            let map = names
                .iter()
                .zip(vals)
                .filter_map(|(k, v)| Some((k.to_string(), v?)));
            Value::Object(map.collect())
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decode_never_panics_on_arbitrary_strings(text in ".{0,200}") {
        let d = run(&text);
        prop_assert!(!d.reports.is_empty() || !d.rejections.is_empty());
    }

    #[test]
    fn decode_never_panics_on_arbitrary_json_values(v in arb_json()) {
        let d = run(&v.to_string());
        prop_assert!(!d.reports.is_empty() || !d.rejections.is_empty());
        let d = run(&batch(vec![v]));
        prop_assert_eq!(d.reports.len() + d.rejections.len(), 1);
    }

    #[test]
    fn the_fast_and_the_slow_path_give_the_same_verdict(v in arb_report()) {
        let text = v.to_string();
        prop_assert_eq!(run(&text), slow::decode(&text, now(), &Limits::default()));
        let text = batch(vec![v.clone(), fix_item(1), v]);
        prop_assert_eq!(run(&text), slow::decode(&text, now(), &Limits::default()));
    }

    #[test]
    fn every_batch_item_yields_exactly_one_report_or_rejection(items in prop::collection::vec(arb_report(), 1..20)) {
        let n = items.len();
        let d = run(&batch(items));
        prop_assert_eq!(d.reports.len() + d.rejections.len(), n);
    }

    #[test]
    fn an_outbound_frame_parses_back_to_itself(seq in prop::option::of(0..=i64::MAX as u64), msg in ".{0,40}", code in 0..ErrorCode::ALL.len(), seqs in prop::collection::vec(any::<u64>(), 0..5)) {
        let e = Outbound::Error(Rejection { seq, code: ErrorCode::ALL[code], message: msg });
        prop_assert_eq!(parse_outbound(&e.to_json()), Some(e));
        let a = Outbound::Ack { seqs };
        prop_assert_eq!(parse_outbound(&a.to_json()), Some(a));
    }
}
