//! Several geoward nodes on the same stores: a condition is one alert wherever its fixes
//! arrive, and an officer sees it on whichever node their feed is connected to.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::device::{Device, ServerMessage};
use crate::support::TestNode;
use crate::{kinds, ts, Rig, AWAY, QUIET, SOON, ZONE_LAT, ZONE_LON};

/// How long a test waits for something crossing nodes (Redis pub/sub, or the feed's poll).
const ACROSS: Duration = Duration::from_secs(10);

async fn send(device: &mut Device, fixes: &[(u64, f64, (f64, f64))]) {
    for &(seq, at, (lat, lon)) in fixes {
        device.send_fix(seq, &ts(at), lat, lon, 10.0).await.unwrap();
    }
    let expected: BTreeSet<u64> = fixes.iter().map(|f| f.0).collect();
    assert_eq!(
        device.wait_acks(&expected, SOON).await,
        expected,
        "fixes acked; other messages: {:?}",
        device.other_messages
    );
}

const INSIDE: (f64, f64) = (ZONE_LAT, ZONE_LON);

/// Connects the device to `node` and checks its connection to the other node is closed with
/// 4000 (replaced).
async fn reconnect(
    old: &mut Device,
    person: &crate::support::monitored::Monitored,
    node: &TestNode,
) -> Device {
    let new = person.device(&node.ws_base()).await;
    let deadline = tokio::time::Instant::now() + ACROSS;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match old.next_message(left).await {
            Some(ServerMessage::Closed { code, reason }) => {
                assert_eq!(
                    code,
                    Some(4000),
                    "the old connection closed otherwise than replaced: {reason}"
                );
                break;
            }
            Some(_) => continue,
            None => panic!("the old connection stayed open {ACROSS:?} after the device reconnected to another node"),
        }
    }
    new
}

/// The alerts of a supervisee stored, as listed to `token` on node 1.
async fn stored(rig: &Rig, supervisee_id: &str) -> Vec<Value> {
    let listed = rig
        .app
        .get(
            &format!("/v1/alerts?supervisee_id={supervisee_id}"),
            &rig.officer_a.1,
        )
        .await
        .expect(200);
    listed.body["alerts"]
        .as_array()
        .expect("alerts array")
        .clone()
}

#[tokio::test]
async fn a_violation_across_a_device_reconnect_to_another_node_is_one_alert() {
    let rig = Rig::start().await;
    let node2 = rig.app.second_node().await;
    let person = rig.person(None).await;
    let mut feed = rig.feed(&rig.officer_a.1).await;

    // In through node 1: confirmed there.
    let mut first = person.device(&rig.app.ws_base()).await;
    send(
        &mut first,
        &[(1, -150.0, AWAY), (2, -120.0, INSIDE), (3, -90.0, INSIDE)],
    )
    .await;
    let opened = feed
        .expect_alert(SOON, "the entry alert from node 1", |f| {
            f["alert"]["kind"] == "exclusion_zone_entered"
        })
        .await;
    assert_eq!(opened["change"], "opened", "{opened}");
    assert_eq!(opened["alert"]["seq"], 3);
    let id = opened["alert"]["id"].clone();

    // The device moves to node 2 and is still inside: the same condition.
    let mut second = reconnect(&mut first, &person, &node2).await;
    send(&mut second, &[(4, -60.0, INSIDE), (5, -50.0, INSIDE)]).await;
    let more = feed.alerts_for(QUIET).await;
    assert!(
        more.is_empty(),
        "staying inside via another node raised {:?} {more:?}",
        kinds(&more)
    );

    // Leaving, reported via node 2, clears the alert node 1 opened.
    send(&mut second, &[(6, -20.0, AWAY), (7, -10.0, AWAY)]).await;
    let cleared = feed
        .expect_alert(ACROSS, "the alert cleared via node 2", |f| {
            f["change"] == "cleared"
        })
        .await;
    assert_eq!(cleared["alert"]["id"], id, "{cleared}");
    assert!(cleared["alert"]["cleared_at"].is_string());
    let rest = feed.alerts_for(QUIET).await;
    assert!(rest.is_empty(), "more than one alert: {:?}", kinds(&rest));

    let alerts = stored(&rig, &person.supervisee_id).await;
    assert_eq!(alerts.len(), 1, "stored: {alerts:?}");
    assert_eq!(alerts[0]["id"], id);
    assert!(alerts[0]["cleared_at"].is_string());
}

#[tokio::test]
async fn a_confirming_streak_split_across_two_nodes_raises_exactly_one_alert() {
    let rig = Rig::start().await;
    let node2 = rig.app.second_node().await;
    let person = rig.person(None).await;
    let mut feed = rig.feed(&rig.officer_a.1).await;
    feed.subscribe_positions().await;

    // One fix inside via node 1: not confirmed yet (the zone needs two).
    let mut first = person.device(&rig.app.ws_base()).await;
    send(&mut first, &[(1, -110.0, AWAY), (2, -80.0, INSIDE)]).await;
    // Its position on the feed: node 1 has evaluated it (and saved the streak).
    let evaluated = feed
        .take_matching(SOON, |f| f["type"] == "position" && f["fix"]["seq"] == 2)
        .await;
    assert!(
        evaluated.is_some(),
        "no position for fix 2; {}",
        feed.describe()
    );
    let early = feed.alerts_for(Duration::from_millis(300)).await;
    assert!(
        early.is_empty(),
        "one fix inside raised {:?}",
        kinds(&early)
    );

    // The second confirming fix via node 2.
    let mut second = reconnect(&mut first, &person, &node2).await;
    send(&mut second, &[(3, -50.0, (ZONE_LAT, ZONE_LON + 0.0003))]).await;
    let opened = feed
        .expect_alert(ACROSS, "the entry confirmed across nodes", |f| {
            f["alert"]["kind"] == "exclusion_zone_entered"
        })
        .await;
    assert_eq!(opened["change"], "opened", "{opened}");
    assert_eq!(opened["alert"]["seq"], 3, "decided by the fix via node 2");
    let rest = feed.alerts_for(QUIET).await;
    assert!(rest.is_empty(), "more than one alert: {:?}", kinds(&rest));

    let alerts = stored(&rig, &person.supervisee_id).await;
    assert_eq!(alerts.len(), 1, "stored: {alerts:?}");
    assert_eq!(alerts[0]["id"], opened["alert"]["id"]);
}

#[tokio::test]
async fn an_officer_on_one_node_sees_alerts_raised_on_another() {
    let rig = Rig::start().await;
    let node2 = rig.app.second_node().await;
    let person = rig.person(None).await;
    // Officer A on node 1; officer B (another caseload) and a supervisor on node 2.
    let mut own = rig.feed(&rig.officer_a.1).await;
    let mut other = node2.officer_feed(&rig.officer_b.1, None).await;
    other.wait_ready(SOON).await;
    let mut supervisor = node2.officer_feed(&rig.supervisor, None).await;
    supervisor.wait_ready(SOON).await;

    let mut device = person.device(&node2.ws_base()).await;
    send(
        &mut device,
        &[(1, -110.0, AWAY), (2, -80.0, INSIDE), (3, -50.0, INSIDE)],
    )
    .await;

    let alert = own
        .expect_alert(ACROSS, "an alert raised on node 2, on node 1's feed", |f| {
            f["alert"]["kind"] == "exclusion_zone_entered"
        })
        .await;
    assert_eq!(alert["change"], "opened");
    assert_eq!(alert["alert"]["supervisee_id"], json!(person.supervisee_id));
    assert_eq!(alert["alert"]["zone_id"], json!(person.zone_ids[0]));
    // The node 2 feeds work: the supervisor there sees it...
    supervisor
        .expect_alert(SOON, "the alert on a supervisor's feed on node 2", |f| {
            f["alert"]["id"] == alert["alert"]["id"]
        })
        .await;
    // ... and officer B, whose caseload it is not, does not.
    let foreign = other.alerts_for(QUIET).await;
    assert!(
        foreign.is_empty(),
        "another caseload's officer was told: {foreign:?}"
    );
    let rest = own.alerts_for(QUIET).await;
    assert!(rest.is_empty(), "more than one alert: {:?}", kinds(&rest));

    let hidden = node2.get("/v1/alerts", &rig.officer_b.1).await.expect(200);
    assert_eq!(hidden.body["alerts"], json!([]));
    let alerts = stored(&rig, &person.supervisee_id).await;
    assert_eq!(alerts.len(), 1, "stored: {alerts:?}");
}
