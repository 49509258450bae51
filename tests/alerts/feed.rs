//! The officers' feed: resuming after a disconnect misses nothing and repeats nothing; tickets
//! are single use; acting on an alert is caseload-scoped, ordered and reaches the feed; a feed
//! ends when its session does.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::support::device::Device;
use crate::support::monitored::Monitored;
use crate::support::officer::{cursor_of, frame_type, is_alert, FeedAuth, OfficerFeed};
use crate::{alert_config, enter, kinds, leave, Rig, QUIET, SOON};

/// A feed cursor as a number, to compare order (cursors are decimal strings).
fn cursor_num(cursor: &str) -> u64 {
    cursor
        .parse()
        .unwrap_or_else(|_| panic!("cursor {cursor:?} is not a decimal number"))
}

/// (cursor, change, alert id) of an alert frame: what identifies one change.
fn change_of(frame: &Value) -> (String, String, String) {
    (
        cursor_of(frame),
        frame["change"].as_str().unwrap_or("?").to_owned(),
        frame["alert"]["id"].as_str().unwrap_or("?").to_owned(),
    )
}

/// Raises the entry alert of `person` and returns its `opened` frame from `feed`.
async fn raise(rig: &Rig, person: &Monitored, feed: &mut OfficerFeed) -> (Device, Value) {
    let mut device = person.device(&rig.app.ws_base()).await;
    enter(&mut device, 1).await;
    let supervisee = json!(person.supervisee_id);
    let opened = feed
        .expect_alert(SOON, "the entry alert opened", |f| {
            f["change"] == "opened" && f["alert"]["supervisee_id"] == supervisee
        })
        .await;
    assert_eq!(opened["alert"]["kind"], "exclusion_zone_entered");
    assert_eq!(opened["alert"]["severity"], "critical");
    (device, opened)
}

/// The frames a fresh connection sends before `ready`, and the `ready` cursor.
async fn replay_then_ready(feed: &mut OfficerFeed) -> (Vec<Value>, String) {
    let mut replayed = Vec::new();
    loop {
        let frame = feed
            .next(SOON)
            .await
            .unwrap_or_else(|| panic!("no `ready` after the replay; {}", feed.describe()));
        match frame_type(&frame) {
            "ready" => return (replayed, cursor_of(&frame)),
            "alert" => replayed.push(frame),
            other => panic!("unexpected {other:?} frame before `ready`: {frame}"),
        }
    }
}

#[tokio::test]
async fn feed_resume_after_a_disconnect_misses_nothing() {
    let rig = Rig::start().await;
    let first = rig.person(None).await;
    let second = rig.person(None).await;
    // The supervisor stays connected throughout: the record of what was stored, and when.
    let mut supervisor = rig.feed(&rig.supervisor).await;
    let mut own = rig.feed(&rig.officer_a.1).await;

    let (mut device, opened) = raise(&rig, &first, &mut own).await;
    let id = opened["alert"]["id"].as_str().unwrap().to_owned();
    let remembered = cursor_of(&opened);
    assert_eq!(own.last_cursor().as_deref(), Some(remembered.as_str()));
    let seen = supervisor
        .expect_alert(SOON, "the opened alert on the supervisor's feed", |f| {
            f["alert"]["id"] == json!(id)
        })
        .await;
    assert_eq!(
        change_of(&seen),
        change_of(&opened),
        "one cursor per change, on every feed"
    );
    own.close().await;

    // While officer A is away: the alert clears, the supervisor acknowledges it, and another
    // supervisee of A raises an alert. Each is waited for on the supervisor's feed, so the
    // order of the changes is the order of the test.
    let mut expected = Vec::new();
    leave(&mut device, 4).await;
    let cleared = supervisor
        .expect_alert(SOON, "the alert cleared", |f| {
            f["alert"]["id"] == json!(id) && f["change"] == "cleared"
        })
        .await;
    expected.push(cleared);
    let acked = rig
        .app
        .post(
            &format!("/v1/alerts/{id}/acknowledge"),
            &rig.supervisor,
            json!({ "note": "seen by the duty supervisor" }),
        )
        .await
        .expect(200);
    assert_eq!(acked.body["status"], "acknowledged");
    let acknowledged = supervisor
        .expect_alert(SOON, "the acknowledgement", |f| {
            f["alert"]["id"] == json!(id) && f["change"] == "acknowledged"
        })
        .await;
    expected.push(acknowledged);
    let (_second_device, other) = raise(&rig, &second, &mut supervisor).await;
    let other_id = other["alert"]["id"].as_str().unwrap().to_owned();
    assert_ne!(other_id, id);
    expected.push(other);
    let stray = supervisor.alerts_for(QUIET).await;
    assert!(stray.is_empty(), "unexpected changes: {:?}", kinds(&stray));

    // Back: exactly the changes missed, in cursor order, once each, then ready.
    let mut again = rig
        .app
        .officer_feed(&rig.officer_a.1, Some(&remembered))
        .await;
    let (replayed, ready) = replay_then_ready(&mut again).await;
    let got: Vec<_> = replayed.iter().map(change_of).collect();
    let want: Vec<_> = expected.iter().map(change_of).collect();
    assert_eq!(got, want, "the replay after cursor {remembered}");
    let mut previous = cursor_num(&remembered);
    for frame in &replayed {
        let cursor = cursor_num(&cursor_of(frame));
        assert!(cursor > previous, "cursors not increasing: {:?}", got);
        previous = cursor;
    }
    assert!(
        cursor_num(&ready) >= previous,
        "ready cursor {ready} is behind the replay ({previous})"
    );
    let last = &replayed[2]["alert"];
    assert_eq!(last["supervisee_id"], json!(second.supervisee_id));
    assert_eq!(last["kind"], "exclusion_zone_entered");
    assert_eq!(last["status"], "open");
    // The replay shows each alert as it is now: the first one cleared and acknowledged.
    assert!(
        replayed[0]["alert"]["cleared_at"].is_string(),
        "{}",
        replayed[0]
    );
    assert_eq!(replayed[1]["alert"]["status"], "acknowledged");
    assert!(acked.body["acknowledged_by"].is_string(), "{}", acked.text);
    assert_eq!(
        replayed[1]["alert"]["acknowledged_by"],
        acked.body["acknowledged_by"]
    );

    // Then live: a later change arrives once, after the replay.
    rig.app
        .post(
            &format!("/v1/alerts/{id}/resolve"),
            &rig.officer_a.1,
            json!({ "note": "visited; he had left" }),
        )
        .await
        .expect(200);
    let resolved = again
        .next_alert(SOON)
        .await
        .unwrap_or_else(|| panic!("no live change after the replay; {}", again.describe()));
    assert_eq!(resolved["change"], "resolved", "{resolved}");
    assert_eq!(resolved["alert"]["id"], json!(id));
    assert_eq!(resolved["alert"]["status"], "resolved");
    assert!(cursor_num(&cursor_of(&resolved)) > cursor_num(&ready));
    let more = again.alerts_for(QUIET).await;
    assert!(
        more.is_empty(),
        "duplicates after the replay: {:?}",
        kinds(&more)
    );
    let every: Vec<_> = again.received_alerts().iter().map(change_of).collect();
    let unique: BTreeSet<_> = every.iter().cloned().collect();
    assert_eq!(unique.len(), every.len(), "a change came twice: {every:?}");
}

#[tokio::test]
async fn a_feed_ticket_works_once() {
    let rig = Rig::start().await;
    let person = rig.person(None).await;
    let mut supervisor = rig.feed(&rig.supervisor).await;
    let (_device, opened) = raise(&rig, &person, &mut supervisor).await;

    // A ticket stands for its officer's session: replaying from the start shows A's alert.
    let ticket = rig.app.ws_ticket(&rig.officer_a.1).await;
    assert!(ticket.len() >= 16, "a guessable ticket: {ticket:?}");
    let mut by_ticket =
        OfficerFeed::open_status(&rig.app.base, FeedAuth::Ticket(&ticket), Some("0"))
            .await
            .unwrap_or_else(|status| panic!("a fresh ticket was refused with {status}"));
    let (replayed, _) = replay_then_ready(&mut by_ticket).await;
    let got: Vec<_> = replayed.iter().map(change_of).collect();
    assert_eq!(got, vec![change_of(&opened)]);

    // Used once, it is spent.
    let reused = OfficerFeed::open_status(&rig.app.base, FeedAuth::Ticket(&ticket), None).await;
    assert_eq!(reused.err(), Some(401), "a ticket was accepted twice");
    // The first connection is not affected.
    assert!(!by_ticket.is_closed());

    // Another officer's ticket replays only their own caseload: nothing here.
    let ticket_b = rig.app.ws_ticket(&rig.officer_b.1).await;
    let mut other = OfficerFeed::open_status(&rig.app.base, FeedAuth::Ticket(&ticket_b), Some("0"))
        .await
        .unwrap_or_else(|status| panic!("officer B's ticket was refused with {status}"));
    let (foreign, _) = replay_then_ready(&mut other).await;
    assert!(
        foreign.is_empty(),
        "another caseload replayed: {:?}",
        kinds(&foreign)
    );

    // Without credentials, or with a made-up ticket: 401.
    let none = OfficerFeed::open_status(&rig.app.base, FeedAuth::None, None).await;
    assert_eq!(none.err(), Some(401));
    let forged =
        OfficerFeed::open_status(&rig.app.base, FeedAuth::Ticket("gwt_forged"), None).await;
    assert_eq!(forged.err(), Some(401));
}

#[tokio::test]
async fn a_feed_is_closed_with_4002_once_its_officer_logged_out() {
    let (mut config, database) = alert_config().await;
    config.alerts.feed_session_check = std::time::Duration::from_millis(200);
    let rig = Rig::with(config, database).await;
    let person = rig.person(None).await;
    // Only the feed of the session that logs out ends; the supervisor's goes on.
    let mut ending = rig.feed(&rig.officer_a.1).await;
    let mut staying = rig.feed(&rig.supervisor).await;

    rig.app
        .call(
            reqwest::Method::POST,
            "/v1/auth/logout",
            Some(&rig.officer_a.1),
            None,
        )
        .await
        .expect(204);

    let deadline = tokio::time::Instant::now() + SOON;
    while !ending.is_closed() && tokio::time::Instant::now() < deadline {
        ending.next(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        ending.close_code(),
        Some(4002),
        "the logged-out feed: {:?}",
        ending.close_reason()
    );
    // The other feed keeps going, and still delivers.
    let (_device, opened) = raise(&rig, &person, &mut staying).await;
    assert_eq!(frame_type(&opened), "alert");
    assert!(!staying.is_closed(), "{:?}", staying.close_reason());
}

#[tokio::test]
async fn acknowledge_and_resolve_by_a_foreign_officer_is_a_404() {
    let rig = Rig::start().await;
    let person = rig.person(None).await;
    let (a_id, a) = (&rig.officer_a.0, &rig.officer_a.1);
    let b = &rig.officer_b.1;
    let mut own = rig.feed(a).await;
    let mut foreign_feed = rig.feed(b).await;
    let (_device, opened) = raise(&rig, &person, &mut own).await;
    let id = opened["alert"]["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/alerts/{id}");

    // Officer B: as if it did not exist, for reading and for acting.
    let read = rig.app.get(&path, b).await.expect(404);
    assert_eq!(read.body["error"], "not_found", "{}", read.text);
    assert!(read.body["message"].is_string(), "{}", read.text);
    for step in ["acknowledge", "resolve"] {
        let reply = rig
            .app
            .post(&format!("{path}/{step}"), b, json!({ "note": "not mine" }))
            .await
            .expect(404);
        assert_eq!(reply.body["error"], "not_found", "{step}: {}", reply.text);
        assert!(reply.body["message"].is_string(), "{step}: {}", reply.text);
    }
    let listed = rig.app.get("/v1/alerts", b).await.expect(200);
    assert_eq!(listed.body["alerts"], json!([]));
    assert!(
        rig.app.audit_rows("alert.read").await.is_empty(),
        "a refused read left a data audit row"
    );

    // Bad input, from the officer who may see it: nothing changes either.
    let bad_id = rig.app.get("/v1/alerts/abc", a).await.expect(404);
    assert_eq!(bad_id.body["error"], "not_found", "{}", bad_id.text);
    let bad_step = rig
        .app
        .post("/v1/alerts/abc/acknowledge", a, json!({}))
        .await
        .expect(404);
    assert_eq!(bad_step.body["error"], "not_found", "{}", bad_step.text);
    rig.app
        .post("/v1/alerts/999999999/acknowledge", a, json!({}))
        .await
        .expect(404);
    let unknown_field = rig
        .app
        .post(
            &format!("{path}/acknowledge"),
            a,
            json!({ "note": "x", "urgent": true }),
        )
        .await
        .expect(400);
    assert!(
        unknown_field.body["error"].is_string(),
        "{}",
        unknown_field.text
    );
    let bad_query = rig.app.get("/v1/alerts?status=bogus", a).await.expect(400);
    assert_eq!(
        bad_query.body["error"], "invalid_query",
        "{}",
        bad_query.text
    );
    assert!(bad_query.body["message"].is_string(), "{}", bad_query.text);
    for query in [
        "kind=nonsense",
        "limit=0",
        "supervisee_id=42",
        "after=x",
        "colour=red",
    ] {
        let reply = rig
            .app
            .get(&format!("/v1/alerts?{query}"), a)
            .await
            .expect(400);
        assert_eq!(
            reply.body["error"], "invalid_query",
            "{query}: {}",
            reply.text
        );
    }

    let unchanged = rig.app.get(&path, a).await.expect(200);
    assert_eq!(unchanged.body["status"], "open");
    assert_eq!(unchanged.body["acknowledged_at"], json!(null));
    assert_eq!(unchanged.body["acknowledged_by"], json!(null));
    assert_eq!(unchanged.body["resolved_at"], json!(null));
    let actions: Vec<&Value> = unchanged.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["action"])
        .collect();
    assert_eq!(actions, vec!["opened"], "{}", unchanged.text);

    // Officer A: acknowledge once.
    let acked = rig
        .app
        .post(
            &format!("{path}/acknowledge"),
            a,
            json!({ "note": "calling him now" }),
        )
        .await
        .expect(200);
    assert_eq!(acked.body["id"], json!(id));
    assert_eq!(acked.body["status"], "acknowledged");
    assert_eq!(acked.body["acknowledged_by"], json!(a_id));
    assert!(acked.body["acknowledged_at"].is_string());
    assert_eq!(acked.body["resolved_at"], json!(null));
    let twice = rig
        .app
        .post(&format!("{path}/acknowledge"), a, json!({}))
        .await
        .expect(409);
    assert_eq!(twice.body["error"], "conflict", "{}", twice.text);

    // Resolving a critical alert needs a note saying what was done.
    for body in [json!({}), json!({ "note": null }), json!({ "note": "   " })] {
        let refused = rig
            .app
            .post(&format!("{path}/resolve"), a, body.clone())
            .await
            .expect(422);
        assert_eq!(
            refused.body["error"], "note_required",
            "{body}: {}",
            refused.text
        );
    }
    let resolved = rig
        .app
        .post(
            &format!("{path}/resolve"),
            a,
            json!({ "note": "visited; he left the area" }),
        )
        .await
        .expect(200);
    assert_eq!(resolved.body["status"], "resolved");
    assert!(resolved.body["resolved_at"].is_string());
    assert_eq!(resolved.body["resolved_by"], json!(a_id));
    assert_eq!(resolved.body["acknowledged_by"], json!(a_id));
    assert_eq!(
        resolved.body["acknowledged_at"],
        acked.body["acknowledged_at"]
    );
    let again = rig
        .app
        .post(&format!("{path}/resolve"), a, json!({ "note": "again" }))
        .await
        .expect(409);
    assert_eq!(again.body["error"], "conflict", "{}", again.text);
    // Already resolved is the answer, not "add a note": a note could never help.
    rig.app
        .post(&format!("{path}/resolve"), a, json!({}))
        .await
        .expect(409);
    rig.app
        .post(&format!("{path}/acknowledge"), a, json!({}))
        .await
        .expect(409);
    // B still cannot touch it, now that it is resolved.
    rig.app.get(&path, b).await.expect(404);
    rig.app
        .post(&format!("{path}/resolve"), b, json!({ "note": "x" }))
        .await
        .expect(404);

    // The story, step by step.
    let detail = rig.app.get(&path, a).await.expect(200);
    assert_eq!(detail.body["status"], "resolved");
    let events = detail.body["events"].as_array().unwrap();
    let story: Vec<(&str, &Value, &Value)> = events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("?"),
                &e["officer_id"],
                &e["note"],
            )
        })
        .collect();
    assert_eq!(
        story,
        vec![
            ("opened", &json!(null), &json!(null)),
            ("acknowledged", &json!(a_id), &json!("calling him now")),
            (
                "resolved",
                &json!(a_id),
                &json!("visited; he left the area")
            ),
        ],
        "{}",
        detail.text
    );
    let cursors: Vec<u64> = events
        .iter()
        .map(|e| cursor_num(e["cursor"].as_str().expect("event cursor is a string")))
        .collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
    assert_eq!(events[0]["cursor"], opened["cursor"]);
    for e in events {
        assert!(e["at"].is_string(), "{e}");
    }

    // A's feed saw both steps, with the cursors of the events; B's saw nothing.
    let ack_frame = own
        .expect_alert(SOON, "the acknowledgement", |f| {
            f["alert"]["id"] == json!(id) && f["change"] == "acknowledged"
        })
        .await;
    assert_eq!(ack_frame["cursor"], events[1]["cursor"]);
    assert_eq!(ack_frame["alert"]["acknowledged_by"], json!(a_id));
    let resolve_frame = own
        .expect_alert(SOON, "the resolution", |f| {
            f["alert"]["id"] == json!(id) && f["change"] == "resolved"
        })
        .await;
    assert_eq!(resolve_frame["cursor"], events[2]["cursor"]);
    assert_eq!(resolve_frame["alert"]["status"], "resolved");
    let rest = own.alerts_for(QUIET).await;
    assert!(rest.is_empty(), "unexpected changes: {:?}", kinds(&rest));
    let foreign = foreign_feed.alerts_for(QUIET).await;
    assert!(
        foreign.is_empty(),
        "another caseload's officer was told: {:?}",
        kinds(&foreign)
    );
    assert!(foreign_feed.received().iter().all(|f| !is_alert(f)));

    // Audited: each step once, by A, for this supervisee; A's reads too.
    let who = Some(a_id.parse::<uuid::Uuid>().unwrap());
    let whom = Some(person.supervisee_id.parse::<uuid::Uuid>().unwrap());
    for action in ["alert.acknowledge", "alert.resolve"] {
        let rows = rig.app.audit_rows(action).await;
        assert_eq!(rows.len(), 1, "{action}: {rows:?}");
        assert_eq!((rows[0].0, rows[0].2), (who, whom), "{action}");
    }
    let reads = rig.app.audit_rows("alert.read").await;
    assert_eq!(reads.len(), 2, "{reads:?}");
    assert!(reads.iter().all(|r| (r.0, r.2) == (who, whom)), "{reads:?}");
}
