use super::*;
use chrono::{Duration, TimeZone};
use proptest::prelude::*;
use serde_json::{json, Value};

fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 3, 12, 0, 0).unwrap() + Duration::minutes(minute)
}

fn w(from: i64, to: i64) -> Window {
    Window::new(t(from), t(to))
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

const OFFICER_A: u128 = 0xA;
const OFFICER_B: u128 = 0xB;
const SUPERVISOR: u128 = 0x5;
const ZONE: u128 = 0x100;
const OTHER_ZONE: u128 = 0x101;

fn person(n: u128, officer: u128) -> Person {
    Person {
        supervisee_id: id(0x1000 + n),
        officer_id: id(officer),
    }
}

fn officer_feed(officer: u128) -> Feed {
    Feed {
        officer_id: id(officer),
        supervisor: false,
    }
}

fn supervisor_feed() -> Feed {
    Feed {
        officer_id: id(SUPERVISOR),
        supervisor: true,
    }
}

/// A feed frame as geoward sends it.
fn frame(
    alert_id: u64,
    who: &Person,
    kind: &str,
    zone: Option<u128>,
    minute: i64,
    late: bool,
) -> Value {
    json!({
        "type": "alert",
        "cursor": format!("c{alert_id}"),
        "change": "opened",
        "alert": {
            "id": alert_id.to_string(),
            "supervisee_id": who.supervisee_id,
            "officer_id": who.officer_id,
            "kind": kind,
            "severity": "critical",
            "status": "open",
            "zone_id": zone.map(id),
            "event_at": t(minute),
            "opened_at": t(minute),
            "cleared_at": null,
            "late": late,
            "position": {"lat": 33.62, "lon": 114.74, "acc": 8.0},
            "device_id": null,
            "seq": 4711
        }
    })
}

/// The alert `who`'s own officer received.
fn got(
    alert_id: u64,
    who: &Person,
    kind: &str,
    zone: Option<u128>,
    minute: i64,
    late: bool,
) -> Received {
    let feed = Feed {
        officer_id: who.officer_id,
        supervisor: false,
    };
    Received::from_feed_frame(
        &frame(alert_id, who, kind, zone, minute, late),
        feed,
        t(minute + 1),
    )
    .expect("a well-formed opened frame")
}

fn enter_zone() -> Scenario {
    Scenario::EnterExclusionZone {
        zone_id: id(ZONE),
        window: w(10, 14),
    }
}

fn every_scenario() -> Vec<Scenario> {
    let z = id(ZONE);
    vec![
        Scenario::Compliant,
        enter_zone(),
        Scenario::LeaveJurisdiction {
            zone_id: z,
            window: w(0, 5),
        },
        Scenario::BreakCurfew {
            zone_id: z,
            window: w(0, 5),
        },
        Scenario::PassThroughSchoolZone {
            zone_id: z,
            window: w(0, 5),
        },
        Scenario::GoSilent { window: w(0, 5) },
        Scenario::StrapTamper { window: w(0, 5) },
        Scenario::LowBattery { window: w(0, 5) },
        Scenario::LocationJump { window: w(0, 5) },
        Scenario::OfflineThenBufferedUpload {
            zone_id: z,
            window: w(0, 5),
        },
        Scenario::ApprovedLeave {
            destination_zone_id: Some(z),
            window: w(0, 5),
        },
        Scenario::BorderJitter {
            zone_id: z,
            window: w(0, 5),
        },
    ]
}

// --- the ledger ---------------------------------------------------------------------------

#[test]
fn each_violating_scenario_expects_exactly_one_alert_of_its_kind_and_zone() {
    use AlertKind as K;
    let who = person(1, OFFICER_A);
    let z = Some(id(ZONE));
    let (short, enter) = (w(0, 5), w(10, 14));
    type Want = Option<(AlertKind, Option<Uuid>, Option<bool>, Window)>;
    let table: Vec<(&str, Want)> = vec![
        ("compliant", None),
        (
            "enter_exclusion_zone",
            Some((K::ExclusionZoneEntered, z, None, enter)),
        ),
        (
            "leave_jurisdiction",
            Some((K::InclusionZoneLeft, z, None, short)),
        ),
        ("break_curfew", Some((K::CurfewViolation, z, None, short))),
        (
            "pass_through_school_zone",
            Some((K::ExclusionZoneCrossed, z, None, short)),
        ),
        ("go_silent", Some((K::LostContact, None, None, short))),
        ("strap_tamper", Some((K::StrapTamper, None, None, short))),
        ("low_battery", Some((K::LowBattery, None, None, short))),
        ("location_jump", Some((K::LocationJump, None, None, short))),
        (
            "offline_then_buffered_upload",
            Some((K::ExclusionZoneEntered, z, Some(true), short)),
        ),
        ("approved_leave", None),
        ("border_jitter", None),
    ];
    let scenarios = every_scenario();
    assert_eq!(scenarios.len(), table.len());
    for (scenario, (name, want)) in scenarios.iter().zip(table) {
        assert_eq!(scenario.name(), name);
        let want: Vec<Expectation> = want
            .into_iter()
            .map(|(kind, zone_id, late, window)| Expectation {
                supervisee_id: who.supervisee_id,
                officer_id: who.officer_id,
                kind,
                zone_id,
                late,
                window,
                count: Count::Exactly(1),
            })
            .collect();
        assert_eq!(scenario.expected(&who), want, "{name}");
    }
}

#[test]
fn scenario_names_are_unique() {
    let names: HashSet<&str> = every_scenario().iter().map(Scenario::name).collect();
    assert_eq!(names.len(), every_scenario().len());
}

#[test]
fn every_alert_kind_has_its_wire_name_in_serde_too() {
    for kind in [
        AlertKind::ExclusionZoneEntered,
        AlertKind::InclusionZoneLeft,
        AlertKind::CurfewViolation,
        AlertKind::ExclusionZoneCrossed,
        AlertKind::LocationJump,
        AlertKind::NoLocation,
        AlertKind::StrapTamper,
        AlertKind::LowBattery,
        AlertKind::LostContact,
    ] {
        assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
    }
}

// --- parsing feed frames --------------------------------------------------------------------

#[test]
fn an_opened_frame_is_parsed_with_the_feed_that_received_it() {
    let who = person(1, OFFICER_A);
    let r = Received::from_feed_frame(
        &frame(42, &who, "exclusion_zone_entered", Some(ZONE), 12, true),
        supervisor_feed(),
        t(20),
    )
    .unwrap();
    assert_eq!(r.alert_id, "42");
    assert_eq!(r.cursor, "c42");
    assert_eq!(r.supervisee_id, who.supervisee_id);
    assert_eq!(r.officer_id, who.officer_id);
    assert_eq!(r.kind, "exclusion_zone_entered");
    assert_eq!(r.zone_id, Some(id(ZONE)));
    assert_eq!(r.event_at, t(12));
    assert!(r.late);
    assert_eq!(r.feed, supervisor_feed());
    assert_eq!(r.received_at, t(20));
}

#[test]
fn a_null_or_absent_zone_reads_as_none() {
    let who = person(1, OFFICER_A);
    let mut f = frame(1, &who, "lost_contact", None, 3, false);
    assert_eq!(
        Received::from_feed_frame(&f, officer_feed(OFFICER_A), t(4))
            .unwrap()
            .zone_id,
        None
    );
    f["alert"].as_object_mut().unwrap().remove("zone_id");
    assert_eq!(
        Received::from_feed_frame(&f, officer_feed(OFFICER_A), t(4))
            .unwrap()
            .zone_id,
        None
    );
}

#[test]
fn changes_other_than_opened_and_other_frames_are_ignored() {
    let who = person(1, OFFICER_A);
    for change in [
        "cleared",
        "acknowledged",
        "resolved",
        "escalated",
        "repeated",
    ] {
        let mut f = frame(1, &who, "strap_tamper", None, 3, false);
        f["change"] = json!(change);
        assert_eq!(
            Received::from_feed_frame(&f, officer_feed(OFFICER_A), t(4)),
            None,
            "{change}"
        );
    }
    for f in [
        json!({"type": "ready", "cursor": "7"}),
        json!({"type": "subscribed", "positions": true}),
        json!({"type": "position", "supervisee_id": who.supervisee_id, "fix": {}}),
        json!({"type": "error", "code": "bad_frame", "message": "…"}),
        json!("not an object"),
    ] {
        assert_eq!(
            Received::from_feed_frame(&f, officer_feed(OFFICER_A), t(4)),
            None
        );
    }
}

#[test]
fn a_malformed_opened_frame_is_rejected_rather_than_guessed() {
    let who = person(1, OFFICER_A);
    let broken: [(&str, Value); 5] = [
        ("supervisee_id", json!("not-a-uuid")),
        ("zone_id", json!(17)),
        ("event_at", json!("yesterday")),
        ("late", json!("no")),
        ("id", json!(null)),
    ];
    for (field, value) in broken {
        let mut f = frame(1, &who, "exclusion_zone_entered", Some(ZONE), 3, false);
        f["alert"][field] = value;
        assert_eq!(
            Received::from_feed_frame(&f, officer_feed(OFFICER_A), t(4)),
            None,
            "{field}"
        );
    }
}

// --- verification ---------------------------------------------------------------------------

#[test]
fn an_exact_match_passes() {
    let who = person(1, OFFICER_A);
    let expected = enter_zone().expected(&who);
    let received = [got(
        1,
        &who,
        "exclusion_zone_entered",
        Some(ZONE),
        12,
        false,
    )];
    let verdict = verify(&expected, &received);
    assert!(verdict.passed(), "{verdict:?}");
    assert_eq!(
        verdict.summary(),
        Summary {
            alerts_expected: 1,
            alerts_received: 1,
            ..Summary::default()
        }
    );
}

#[test]
fn nothing_expected_and_nothing_received_passes() {
    let verdict = verify(&[], &[]);
    assert!(verdict.passed());
    assert_eq!(verdict.summary(), Summary::default());
}

#[test]
fn a_missing_alert_fails_as_missing() {
    let who = person(1, OFFICER_A);
    let expected = Scenario::GoSilent { window: w(10, 12) }.expected(&who);
    let verdict = verify(&expected, &[]);
    assert!(!verdict.passed());
    assert_eq!(verdict.missing, expected);
    assert_eq!(verdict.summary().alerts_missing, 1);
    assert_eq!(verdict.summary().alerts_expected, 1);
}

#[test]
fn an_extra_alert_for_a_compliant_person_is_unexpected() {
    let who = person(1, OFFICER_A);
    let expected = Scenario::Compliant.expected(&who);
    let extra = got(9, &who, "no_location", None, 30, false);
    let verdict = verify(&expected, std::slice::from_ref(&extra));
    assert!(!verdict.passed());
    assert_eq!(verdict.unexpected, vec![extra]);
    assert!(
        verdict.wrong_officer.is_empty(),
        "its officer is the one on the alert"
    );
    assert_eq!(verdict.summary().alerts_unexpected, 1);
}

#[test]
fn a_side_effect_next_to_an_expected_alert_is_unexpected() {
    let who = person(1, OFFICER_A);
    let expected = Scenario::LocationJump { window: w(0, 2) }.expected(&who);
    let received = [
        got(1, &who, "location_jump", None, 1, false),
        got(2, &who, "exclusion_zone_crossed", Some(ZONE), 1, false),
    ];
    let verdict = verify(&expected, &received);
    assert!(verdict.missing.is_empty());
    assert_eq!(verdict.unexpected, vec![received[1].clone()]);
}

#[test]
fn a_second_alert_for_one_condition_is_a_duplicate() {
    let who = person(1, OFFICER_A);
    let expected = enter_zone().expected(&who);
    let received = [
        got(1, &who, "exclusion_zone_entered", Some(ZONE), 11, false),
        got(2, &who, "exclusion_zone_entered", Some(ZONE), 13, false),
    ];
    let verdict = verify(&expected, &received);
    assert!(!verdict.passed());
    assert!(verdict.missing.is_empty() && verdict.unexpected.is_empty());
    assert_eq!(
        verdict.duplicated,
        vec![(expected[0].clone(), received.to_vec())]
    );
    let summary = verdict.summary();
    assert_eq!((summary.alerts_received, summary.alerts_duplicated), (2, 1));
}

#[test]
fn the_same_alert_replayed_on_a_feed_counts_once() {
    let who = person(1, OFFICER_A);
    let expected = enter_zone().expected(&who);
    let first = got(1, &who, "exclusion_zone_entered", Some(ZONE), 12, false);
    let mut replay = first.clone();
    replay.received_at = t(40);
    let verdict = verify(&expected, &[replay, first.clone()]);
    assert!(verdict.passed(), "{verdict:?}");
    assert_eq!(verdict.summary().alerts_received, 1);
}

#[test]
fn an_alert_for_another_zone_is_missing_and_unexpected() {
    let who = person(1, OFFICER_A);
    let expected = enter_zone().expected(&who);
    let wrong = got(
        1,
        &who,
        "exclusion_zone_entered",
        Some(OTHER_ZONE),
        12,
        false,
    );
    let verdict = verify(&expected, std::slice::from_ref(&wrong));
    assert_eq!(verdict.missing, expected);
    assert_eq!(verdict.unexpected, vec![wrong]);
}

#[test]
fn a_zone_alert_without_a_zone_does_not_match() {
    let who = person(1, OFFICER_A);
    let expected = enter_zone().expected(&who);
    let verdict = verify(
        &expected,
        &[got(1, &who, "exclusion_zone_entered", None, 12, false)],
    );
    assert_eq!((verdict.missing.len(), verdict.unexpected.len()), (1, 1));
}

#[test]
fn a_buffered_upload_alert_not_marked_late_does_not_match() {
    let who = person(1, OFFICER_A);
    let scenario = Scenario::OfflineThenBufferedUpload {
        zone_id: id(ZONE),
        window: w(0, 6),
    };
    let expected = scenario.expected(&who);
    let on_time = got(1, &who, "exclusion_zone_entered", Some(ZONE), 3, false);
    let verdict = verify(&expected, std::slice::from_ref(&on_time));
    assert_eq!(verdict.missing, expected);
    assert_eq!(verdict.unexpected, vec![on_time]);

    let late = got(1, &who, "exclusion_zone_entered", Some(ZONE), 3, true);
    assert!(verify(&expected, &[late]).passed());
}

#[test]
fn a_real_time_scenario_accepts_either_late_flag() {
    let who = person(1, OFFICER_A);
    let expected = enter_zone().expected(&who);
    for late in [false, true] {
        let received = [got(1, &who, "exclusion_zone_entered", Some(ZONE), 12, late)];
        assert!(verify(&expected, &received).passed(), "late = {late}");
    }
}

#[test]
fn an_event_outside_the_window_does_not_count() {
    let who = person(1, OFFICER_A);
    let expected = enter_zone().expected(&who); // window 10..=14
    for minute in [9, 15] {
        let received = [got(
            1,
            &who,
            "exclusion_zone_entered",
            Some(ZONE),
            minute,
            false,
        )];
        let verdict = verify(&expected, &received);
        assert_eq!(
            (verdict.missing.len(), verdict.unexpected.len()),
            (1, 1),
            "minute {minute}"
        );
    }
}

#[test]
fn both_ends_of_the_window_count() {
    let who = person(1, OFFICER_A);
    let expected = enter_zone().expected(&who);
    for minute in [10, 14] {
        let received = [got(
            1,
            &who,
            "exclusion_zone_entered",
            Some(ZONE),
            minute,
            false,
        )];
        assert!(verify(&expected, &received).passed(), "minute {minute}");
    }
}

#[test]
fn an_inverted_window_contains_nothing() {
    let window = w(5, 1);
    assert!(!window.contains(t(1)) && !window.contains(t(3)) && !window.contains(t(5)));
}

#[test]
fn an_alert_on_another_officers_feed_is_wrong_officer() {
    let who = person(1, OFFICER_A);
    let expected = enter_zone().expected(&who);
    let mut leaked = got(1, &who, "exclusion_zone_entered", Some(ZONE), 12, false);
    leaked.feed = officer_feed(OFFICER_B);
    let verdict = verify(&expected, std::slice::from_ref(&leaked));
    assert_eq!(verdict.wrong_officer, vec![leaked.clone()]);
    assert_eq!(
        verdict.missing, expected,
        "a leak does not reach the right officer"
    );

    // Delivered to the right officer too: only the leak is wrong.
    let right = got(1, &who, "exclusion_zone_entered", Some(ZONE), 12, false);
    let verdict = verify(&expected, &[right, leaked.clone()]);
    assert!(verdict.missing.is_empty());
    assert_eq!(verdict.wrong_officer, vec![leaked]);
    assert!(!verdict.passed());
    assert_eq!(verdict.summary().alerts_wrong_officer, 1);
    assert_eq!(verdict.summary().alerts_received, 1);
}

#[test]
fn an_alert_attributed_to_another_caseload_is_wrong_officer_for_a_known_person() {
    // geoward says officer B holds the person, and sends it to B; the ledger says A.
    let who = person(1, OFFICER_A);
    let expected = enter_zone().expected(&who);
    let misfiled = got(
        1,
        &person(1, OFFICER_B),
        "exclusion_zone_entered",
        Some(ZONE),
        12,
        false,
    );
    let verdict = verify(&expected, std::slice::from_ref(&misfiled));
    assert_eq!(verdict.wrong_officer, vec![misfiled]);
    assert_eq!(verdict.missing, expected);
}

#[test]
fn without_expectations_the_alerts_own_officer_decides_the_right_feed() {
    let who = person(1, OFFICER_A);
    let mut leaked = got(1, &who, "low_battery", None, 12, false);
    leaked.feed = officer_feed(OFFICER_B);
    let verdict = verify(&[], std::slice::from_ref(&leaked));
    assert_eq!(verdict.wrong_officer, vec![leaked]);
    assert!(verdict.unexpected.is_empty());
}

#[test]
fn a_leak_replayed_to_the_same_wrong_officer_is_reported_once() {
    let who = person(1, OFFICER_A);
    let mut leaked = got(1, &who, "low_battery", None, 12, false);
    leaked.feed = officer_feed(OFFICER_B);
    let verdict = verify(&[], &[leaked.clone(), leaked]);
    assert_eq!(verdict.wrong_officer.len(), 1);
}

#[test]
fn supervisors_feeds_do_not_count_as_wrong_officer() {
    let who = person(1, OFFICER_A);
    let expected = enter_zone().expected(&who);
    let mut at_supervisor = got(1, &who, "exclusion_zone_entered", Some(ZONE), 12, false);
    at_supervisor.feed = supervisor_feed();
    // Seen only by the supervisor: it was raised, and the supervisor may see it.
    assert!(verify(&expected, std::slice::from_ref(&at_supervisor)).passed());
    // Seen by both: one alert, not a duplicate.
    let at_officer = got(1, &who, "exclusion_zone_entered", Some(ZONE), 12, false);
    let verdict = verify(&expected, &[at_supervisor, at_officer]);
    assert!(verdict.passed(), "{verdict:?}");
    assert_eq!(verdict.summary().alerts_received, 1);
}

#[test]
fn the_earliest_delivery_of_an_alert_is_the_one_kept() {
    let who = person(1, OFFICER_A);
    let late_copy = got(1, &who, "no_location", None, 12, false);
    let mut early_copy = late_copy.clone();
    early_copy.feed = supervisor_feed();
    early_copy.received_at = t(12);
    let verdict = verify(&[], &[late_copy, early_copy.clone()]);
    assert_eq!(verdict.unexpected, vec![early_copy]);
}

#[test]
fn an_unknown_kind_is_unexpected() {
    let who = person(1, OFFICER_A);
    let verdict = verify(
        &[],
        &[got(1, &who, "person_device_separation", None, 1, false)],
    );
    assert_eq!(verdict.unexpected.len(), 1);
}

#[test]
fn a_tolerated_side_effect_may_appear_once_or_not_at_all() {
    let who = person(1, OFFICER_A);
    let tolerated = Expectation {
        supervisee_id: who.supervisee_id,
        officer_id: who.officer_id,
        kind: AlertKind::NoLocation,
        zone_id: None,
        late: None,
        window: w(0, 30),
        count: Count::AtMost(1),
    };
    let expected = [tolerated.clone()];
    assert!(verify(&expected, &[]).passed());
    let one = got(1, &who, "no_location", None, 5, false);
    assert!(verify(&expected, std::slice::from_ref(&one)).passed());
    let two = [one, got(2, &who, "no_location", None, 20, false)];
    let verdict = verify(&expected, &two);
    assert_eq!(verdict.duplicated, vec![(tolerated, two.to_vec())]);
    assert_eq!(verdict.summary().alerts_expected, 0);
    assert_eq!(verdict.summary().alerts_duplicated, 1);
}

#[test]
fn an_expectation_of_two_with_one_received_misses_one() {
    let who = person(1, OFFICER_A);
    let mut twice = enter_zone().expected(&who);
    twice[0].count = Count::Exactly(2);
    let verdict = verify(
        &twice,
        &[got(
            1,
            &who,
            "exclusion_zone_entered",
            Some(ZONE),
            12,
            false,
        )],
    );
    assert_eq!(verdict.missing, twice);
    let summary = verdict.summary();
    assert_eq!((summary.alerts_expected, summary.alerts_missing), (2, 1));
}

#[test]
fn two_equal_expectations_are_each_filled_before_either_is_duplicated() {
    // Two entries into the same zone by one person in overlapping windows.
    let who = person(1, OFFICER_A);
    let mut expected = enter_zone().expected(&who);
    expected.extend(
        Scenario::EnterExclusionZone {
            zone_id: id(ZONE),
            window: w(12, 20),
        }
        .expected(&who),
    );
    let received = [
        got(1, &who, "exclusion_zone_entered", Some(ZONE), 13, false),
        got(2, &who, "exclusion_zone_entered", Some(ZONE), 14, false),
    ];
    assert!(verify(&expected, &received).passed());
}

#[test]
fn multiple_scenarios_for_multiple_people_are_judged_per_person() {
    let people: Vec<Person> = (0..12)
        .map(|n| person(n, [OFFICER_A, OFFICER_B][n as usize % 2]))
        .collect();
    let plan: Vec<(Person, Scenario)> = people.iter().copied().zip(every_scenario()).collect();
    let expected: Vec<Expectation> = plan.iter().flat_map(|(p, s)| s.expected(p)).collect();
    assert_eq!(expected.len(), 9);

    // Everyone gets exactly their alert, on their officer's feed and on the supervisor's.
    let mut received = Vec::new();
    for (n, e) in expected.iter().enumerate() {
        let who = Person {
            supervisee_id: e.supervisee_id,
            officer_id: e.officer_id,
        };
        let minute = if e.window == w(10, 14) { 12 } else { 3 };
        let late = e.late.unwrap_or(false);
        let r = got(
            n as u64,
            &who,
            e.kind.as_str(),
            e.zone_id.map(|z| z.as_u128()),
            minute,
            late,
        );
        let mut copy = r.clone();
        copy.feed = supervisor_feed();
        received.push(r);
        received.push(copy);
    }
    let verdict = verify(&expected, &received);
    assert!(verdict.passed(), "{verdict:?}");
    assert_eq!(verdict.summary().alerts_received, 9);

    // The curfew breaker's alert attributed to the jurisdiction leaver instead: one missing
    // (the curfew), one unexpected (a curfew for someone who did not break it).
    let (leaver, breaker) = (plan[2].0, plan[3].0);
    assert_eq!(
        (plan[2].1.name(), plan[3].1.name()),
        ("leave_jurisdiction", "break_curfew")
    );
    received.retain(|r| r.kind != "curfew_violation");
    let misplaced = got(100, &leaver, "curfew_violation", Some(ZONE), 3, false);
    received.push(misplaced.clone());
    let verdict = verify(&expected, &received);
    assert_eq!(verdict.missing.len(), 1);
    assert_eq!(verdict.missing[0].kind, AlertKind::CurfewViolation);
    assert_eq!(verdict.missing[0].supervisee_id, breaker.supervisee_id);
    assert_eq!(verdict.unexpected, vec![misplaced]);
    assert!(verdict.duplicated.is_empty() && verdict.wrong_officer.is_empty());
}

proptest! {
    /// Whatever the order of deliveries and however many feeds carry them, delivering each
    /// expected alert once passes, and dropping one makes exactly one missing.
    #[test]
    fn delivering_each_expected_alert_passes_in_any_order(
        order in Just((0..18usize).collect::<Vec<_>>()).prop_shuffle(),
        drop in proptest::option::of(0..9usize),
    ) {
        let people: Vec<Person> = (0..12).map(|n| person(n, [OFFICER_A, OFFICER_B][n as usize % 2])).collect();
        let expected: Vec<Expectation> = people
            .iter()
            .zip(every_scenario())
            .flat_map(|(p, s)| s.expected(p))
            .collect();
        let mut deliveries = Vec::new();
        for (n, e) in expected.iter().enumerate() {
            let who = Person { supervisee_id: e.supervisee_id, officer_id: e.officer_id };
            let minute = if e.window == w(10, 14) { 12 } else { 3 };
            let r = got(n as u64, &who, e.kind.as_str(), e.zone_id.map(|z| z.as_u128()), minute, e.late.unwrap_or(false));
            let mut copy = r.clone();
            copy.feed = supervisor_feed();
            deliveries.push(Some(r));
            deliveries.push(Some(copy));
        }
        if let Some(d) = drop {
            deliveries[2 * d] = None;
            deliveries[2 * d + 1] = None;
        }
        let received: Vec<Received> = order.iter().filter_map(|&i| deliveries[i].clone()).collect();
        let verdict = verify(&expected, &received);
        prop_assert_eq!(verdict.passed(), drop.is_none());
        prop_assert_eq!(verdict.summary().alerts_missing, usize::from(drop.is_some()));
        prop_assert_eq!(verdict.summary().alerts_received, 9 - usize::from(drop.is_some()));
        prop_assert!(verdict.unexpected.is_empty() && verdict.duplicated.is_empty());
    }
}
