//! Pure parts of the watchers: reading frames, cursors, and which alerts get acknowledged.

use chrono::{DateTime, TimeZone};
use serde_json::{json, Value};

use super::*;

const OURS: Uuid = Uuid::from_u128(1);
const THEIRS: Uuid = Uuid::from_u128(2);
const OFFICER: Uuid = Uuid::from_u128(9);

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 5, 1, 8, 0, 0).unwrap()
}

fn feed(supervisor: bool) -> Feed {
    Feed {
        officer_id: OFFICER,
        supervisor,
    }
}

fn state(supervisor: bool, every: u32) -> FeedState {
    let run = Arc::new(HashSet::from([OURS]));
    FeedState::new(feed(supervisor), run, if supervisor { 0 } else { every })
}

fn alert(cursor: i64, change: &str, id: u64, supervisee: Uuid) -> String {
    json!({
        "type": "alert", "cursor": cursor.to_string(), "change": change,
        "alert": {
            "id": id.to_string(), "supervisee_id": supervisee, "officer_id": OFFICER,
            "kind": "strap_tamper", "severity": "critical", "status": "open", "zone_id": null,
            "event_at": "2030-05-01T07:59:58.250Z", "late": false,
        },
    })
    .to_string()
}

#[test]
fn an_opened_alert_of_the_run_is_recorded_with_its_feed_and_receipt_time() {
    let mut s = state(false, 0);
    let seen = s.on_text(&alert(41, "opened", 7, OURS), at());
    let r = seen.received.expect("recorded");
    assert_eq!((r.alert_id.as_str(), r.cursor.as_str()), ("7", "41"));
    assert_eq!(
        (r.supervisee_id, r.feed, r.received_at),
        (OURS, feed(false), at())
    );
    assert_eq!((seen.ready, seen.ack, seen.problem), (false, None, None));
    assert_eq!(s.cursor, Some(41));
}

#[test]
fn other_changes_and_other_peoples_alerts_move_the_cursor_only() {
    let mut s = state(true, 0);
    for (cursor, text) in [
        (5, alert(5, "opened", 1, THEIRS)),
        (6, alert(6, "cleared", 2, OURS)),
        (7, alert(7, "acknowledged", 2, OURS)),
    ] {
        assert_eq!(s.on_text(&text, at()), Seen::default(), "{text}");
        assert_eq!(s.cursor, Some(cursor));
    }
}

#[test]
fn the_resume_cursor_is_the_newest_of_alert_and_ready_frames() {
    let mut s = state(false, 0);
    assert_eq!(s.cursor, None);
    let ready = s.on_text(r#"{"type":"ready","cursor":"100"}"#, at());
    assert!(ready.ready && ready.problem.is_none());
    assert_eq!(s.cursor, Some(100));
    s.on_text(&alert(101, "opened", 3, OURS), at());
    // A replay of older changes never moves it back.
    s.on_text(&alert(90, "opened", 1, OURS), at());
    assert_eq!(s.cursor, Some(101));
    assert_eq!(
        resume_url("ws://h:1/v1/officer/ws", s.cursor),
        "ws://h:1/v1/officer/ws?after=101"
    );
    assert_eq!(
        resume_url("ws://h:1/v1/officer/ws", None),
        "ws://h:1/v1/officer/ws"
    );
}

#[test]
fn every_nth_distinct_alert_is_picked_and_replays_do_not_count() {
    let mut p = AckPicker::new(3);
    let picked: Vec<bool> = ["1", "2", "2", "3", "1", "4", "5", "6", "3"]
        .iter()
        .map(|id| p.pick(id))
        .collect();
    assert_eq!(
        picked,
        [false, false, false, true, false, false, false, true, false]
    );
    let mut never = AckPicker::new(0);
    assert!((0..10).all(|i| !never.pick(&i.to_string())));
    let mut all = AckPicker::new(1);
    assert!((0..10).all(|i| all.pick(&i.to_string())));
    assert!(!all.pick("3"), "a replay is not picked again");
}

#[test]
fn officers_acknowledge_their_nth_alert_and_supervisors_never() {
    let mut officer = state(false, 2);
    let acks: Vec<Option<String>> = (1..=4)
        .map(|i| {
            officer
                .on_text(&alert(i, "opened", i as u64, OURS), at())
                .ack
        })
        .collect();
    assert_eq!(acks, [None, Some("2".into()), None, Some("4".into())]);
    // Another supervisee's alert is neither recorded nor counted.
    let theirs = officer.on_text(&alert(5, "opened", 5, THEIRS), at());
    assert_eq!((theirs.received, theirs.ack), (None, None));
    let mut supervisor = state(true, 1);
    assert!((1..=4).all(|i| supervisor
        .on_text(&alert(i, "opened", i as u64, OURS), at())
        .ack
        .is_none()));
}

#[test]
fn odd_frames_are_counted_not_fatal() {
    let mut s = state(false, 1);
    let problem = |s: &mut FeedState, text: &str| s.on_text(text, at()).problem;
    assert_eq!(
        problem(&mut s, "not json"),
        Some("unparseable_frame".into())
    );
    assert_eq!(problem(&mut s, "[]"), Some("untyped_frame".into()));
    assert_eq!(
        problem(&mut s, r#"{"type":7}"#),
        Some("untyped_frame".into())
    );
    assert_eq!(
        problem(
            &mut s,
            r#"{"type":"error","code":"malformed_json","message":"x"}"#
        ),
        Some("error_frame_malformed_json".into())
    );
    assert_eq!(
        problem(&mut s, r#"{"type":"ready","cursor":"x"}"#),
        Some("bad_cursor".into())
    );
    assert_eq!(
        problem(&mut s, r#"{"type":"alert","change":"opened","cursor":"3"}"#),
        Some("malformed_opened_frame".into())
    );
    assert_eq!(
        problem(&mut s, r#"{"type":"position","supervisee_id":"x"}"#),
        None
    );
    assert_eq!(s.cursor, Some(3));
}

#[test]
fn no_prefix_or_mangling_of_a_frame_panics() {
    let mut s = state(false, 1);
    let frame = alert(12, "opened", 12, OURS);
    for end in 0..=frame.len() {
        let _ = s.on_text(&frame[..end], at());
    }
    for field in ["id", "supervisee_id", "event_at", "late", "kind", "zone_id"] {
        let mut v: Value = serde_json::from_str(&frame).unwrap();
        v["alert"][field] = json!([1, {"a": null}]);
        let seen = s.on_text(&v.to_string(), at());
        assert!(seen.received.is_none(), "{field}");
        assert_eq!(
            seen.problem.as_deref(),
            Some("malformed_opened_frame"),
            "{field}"
        );
    }
}

#[test]
fn watch_errors_name_the_officer() {
    let err = WatchError::NotReady {
        officer_id: OFFICER,
        detail: "HTTP 401: {}".into(),
    };
    assert_eq!(
        err.to_string(),
        format!("officer {OFFICER}: the feed did not become ready: HTTP 401: {{}}")
    );
}

#[test]
fn the_report_starts_empty() {
    let report = WatchReport::default();
    assert!(report.received.is_empty() && report.errors.is_empty());
    assert!(report.acknowledge_errors.is_empty());
    assert_eq!(
        (report.frames, report.acknowledged, report.reconnects),
        (0, 0, 0)
    );
}

#[test]
fn failed_acknowledgements_are_counted_by_kind_apart_from_feed_errors() {
    let shared = Shared::default();
    shared.ack_failed("queue_full");
    shared.ack_failed_n("unfinished", 0);
    shared.ack_failed_n("unfinished", 3);
    shared.problem("closed_4001");
    assert_eq!(shared.ack_failures.load(Ordering::Relaxed), 4);
    let kinds = lock(&shared.ack_errors).clone();
    assert_eq!(
        kinds,
        BTreeMap::from([("queue_full".into(), 1), ("unfinished".into(), 3)])
    );
    assert_eq!(
        lock(&shared.errors).clone(),
        BTreeMap::from([("closed_4001".into(), 1)])
    );
}
