//! Pure parts of provisioning: names, checks, who draws which zone, and the request bodies.

use chrono::{TimeZone, Utc};
use serde_json::json;

use super::requests::*;
use super::*;
use crate::plan::LeaveSpec;

// `Plan` and `PersonPlan` are built by the planner; the checks and bodies are tested on the
// parts they read, so these tests do not depend on the planner's other fields.

fn zone(zone: ZoneRef, kind: &str, shared: bool, schedule: Option<Value>) -> ZoneSpec {
    ZoneSpec {
        zone,
        name: format!("{zone:?}"),
        kind: kind.into(),
        geometry: json!({ "type": "Circle", "coordinates": [114.65, 33.62], "radius_m": 150.0 }),
        schedule,
        confirm_fixes: 2,
        shared,
    }
}

fn leave(destination: Option<Value>) -> LeaveSpec {
    LeaveSpec {
        starts_at: Utc.with_ymd_and_hms(2030, 5, 1, 8, 0, 0).unwrap(),
        ends_at: Utc.with_ymd_and_hms(2030, 5, 3, 20, 0, 0).unwrap(),
        destination,
        reason: "family visit".into(),
    }
}

/// The jurisdiction and a school shared, homes for 0 and 1, a victim's home for 2, and 1's
/// leave destination.
fn zones() -> Vec<ZoneSpec> {
    let curfew = json!([{ "days": ["mon"], "start": "22:00", "end": "06:00" }]);
    vec![
        zone(ZoneRef::Jurisdiction, "inclusion", true, None),
        zone(ZoneRef::School(0), "exclusion", true, None),
        zone(ZoneRef::Home(0), "inclusion", false, Some(curfew.clone())),
        zone(ZoneRef::Home(1), "inclusion", false, Some(curfew)),
        zone(ZoneRef::Victim(2), "exclusion", false, None),
        zone(ZoneRef::LeaveDestination(1), "inclusion", false, None),
    ]
}

/// Three people in two caseloads.
fn people() -> Vec<(usize, usize, Vec<ZoneRef>)> {
    use ZoneRef::*;
    vec![
        (0, 0, vec![Jurisdiction, Home(0), School(0)]),
        (1, 1, vec![Jurisdiction, Home(1)]),
        (2, 0, vec![Jurisdiction, Victim(2)]),
    ]
}

fn check(
    officers: usize,
    zones: &[ZoneSpec],
    people: &[(usize, usize, Vec<ZoneRef>)],
) -> Result<(), ProvisionError> {
    let refs: Vec<PersonRef<'_>> = people
        .iter()
        .map(|(index, officer, zones)| PersonRef {
            index: *index,
            officer: *officer,
            zones,
        })
        .collect();
    check_people(officers, zones, &refs)
}

#[test]
fn names_are_unique_to_the_run() {
    assert_eq!(username("r1", None), "sim-r1-supervisor");
    assert_eq!(username("r1", Some(3)), "sim-r1-officer-3");
    assert_eq!(serial("r1", 12, 0), "sim-r1-12");
    assert_eq!(serial("r1", 12, 2), "sim-r1-12-r2");
}

#[test]
fn run_ids_must_fit_usernames_and_serials() {
    assert!(check_run_id("20300501-0800.ab_c", 100).is_ok());
    for bad in ["", "a b", "a/b", "ü", "a:b"] {
        assert!(check_run_id(bad, 1).is_err(), "{bad:?}");
    }
    // Usernames have at most 64 characters: "sim-{id}-supervisor" and "sim-{id}-officer-{k}".
    let id = "x".repeat(64 - "sim--supervisor".len());
    assert!(
        check_run_id(&id, 100).is_ok(),
        "officer-99 is as long as supervisor"
    );
    assert!(
        check_run_id(&id, 101).is_err(),
        "officer-100 is one character longer"
    );
    assert!(
        check_run_id(&format!("{id}x"), 1).is_err(),
        "the supervisor's is too long"
    );
    let err = check_run_id("a b", 1).unwrap_err().to_string();
    assert!(err.starts_with("run id \"a b\":"), "{err}");
}

#[test]
fn personal_zones_are_drawn_by_their_persons_officer_and_the_rest_by_the_supervisor() {
    let drawers: Vec<Option<usize>> = zones().iter().map(|z| drawer(z, 3)).collect();
    assert_eq!(drawers, [None, None, Some(0), Some(1), Some(2), Some(1)]);
    // A personal ref beyond the people, or marked shared, is the supervisor's.
    assert_eq!(
        drawer(&zone(ZoneRef::Home(3), "inclusion", false, None), 3),
        None
    );
    assert_eq!(
        drawer(&zone(ZoneRef::Home(0), "inclusion", true, None), 3),
        None
    );
    assert_eq!(
        drawer(&zone(ZoneRef::Jurisdiction, "inclusion", false, None), 3),
        None
    );
}

#[test]
fn a_consistent_plan_passes_its_check() {
    check(2, &zones(), &people()).unwrap();
    check(0, &[], &[]).unwrap();
}

#[test]
fn inconsistent_plans_are_refused_before_any_call() {
    type Change = fn(&mut usize, &mut Vec<ZoneSpec>, &mut Vec<(usize, usize, Vec<ZoneRef>)>);
    let refused = |change: Change, why: &str| {
        let (mut officers, mut z, mut p) = (2, zones(), people());
        change(&mut officers, &mut z, &mut p);
        let err = check(officers, &z, &p).unwrap_err().to_string();
        assert!(err.contains(why), "{why:?} not in {err:?}");
        assert!(err.starts_with("the plan cannot be provisioned: "), "{err}");
    };
    refused(|_, _, p| p[1].0 = 5, "position 1 has index 5");
    refused(|_, _, p| p[2].1 = 2, "person 2: caseload 2 of 2");
    refused(
        |_, _, p| p[0].2.push(ZoneRef::School(9)),
        "School(9) is not in the plan",
    );
    refused(
        |_, _, p| p[0].2.push(ZoneRef::Victim(2)),
        "Victim(2) is person 2's",
    );
    refused(|_, z, _| z.push(z[1].clone()), "School(0) appears twice");
    refused(|o, _, _| *o = 0, "no officers");
}

#[test]
fn zone_bodies_carry_the_spec_named_for_the_run() {
    let z = zones();
    let school = zone_body(&z[1], "r1");
    assert_eq!(
        school,
        json!({
            "name": "sim-r1 School(0)", "kind": "exclusion", "geometry": z[1].geometry,
            "datum": "wgs84", "confirm_fixes": 2, "shared": true,
        }),
        "no schedule key when always in force"
    );
    let home = zone_body(&z[2], "r1");
    assert_eq!(home["shared"], false);
    assert_eq!(home["schedule"], z[2].schedule.clone().unwrap());
    let mut long = z[0].clone();
    long.name = "n".repeat(300);
    let name = zone_body(&long, "r1")["name"].as_str().unwrap().to_owned();
    assert_eq!(name.chars().count(), 200);
}

#[test]
fn supervisee_and_order_bodies() {
    let officer = Uuid::from_u128(7);
    assert_eq!(
        supervisee_body(2, "Etc/GMT-8", 600, officer, "r1"),
        json!({
            "name": "sim-r1 person 2", "officer_id": officer.to_string(),
            "timezone": "Etc/GMT-8", "lost_contact_after_s": 600,
        })
    );
    let starts = Utc.with_ymd_and_hms(2030, 4, 30, 23, 0, 0).unwrap();
    let ends = starts + chrono::Duration::days(30) + chrono::Duration::milliseconds(250);
    let order = order_body(starts, ends, "r1");
    assert_eq!(order["basis"], "prohibition_order_violation");
    assert_eq!(order["approved_by"], "geoward-sim run r1");
    let at = |key: &str| {
        chrono::DateTime::parse_from_rfc3339(order[key].as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    assert_eq!(
        (at("starts_at"), at("ends_at")),
        (starts, ends),
        "exact, to the millisecond"
    );
    assert_eq!(
        order.as_object().unwrap().len(),
        4,
        "deny_unknown_fields on the server"
    );
}

#[test]
fn leave_bodies_give_a_datum_only_with_a_destination() {
    let circle = json!({ "type": "Circle", "coordinates": [116.4, 39.9], "radius_m": 20000.0 });
    let with = leave_body(&leave(Some(circle.clone())));
    assert_eq!(with["destination"], circle);
    assert_eq!(with["datum"], "wgs84");
    assert_eq!(with["reason"], "family visit");
    assert_eq!(with["starts_at"], "2030-05-01T08:00:00Z");
    assert_eq!(with["ends_at"], "2030-05-03T20:00:00Z");
    let without = leave_body(&leave(None));
    let mut keys: Vec<&String> = without.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["ends_at", "reason", "starts_at"]);
}

#[test]
fn account_bodies_name_the_role() {
    let body = account_body("sim-r1-officer-0", "secretsecret", true, "r1");
    assert_eq!(body["role"], "officer");
    assert_eq!(body["username"], "sim-r1-officer-0");
    assert_eq!(body["password"], "secretsecret");
    assert_eq!(account_body("u", "p", false, "r1")["role"], "supervisor");
    assert_eq!(body.as_object().unwrap().len(), 4);
}

#[test]
fn errors_name_the_person_and_the_call_and_keep_the_cause() {
    let err = ProvisionError::Person {
        person: 3,
        call: "assign device".into(),
        source: Box::new(ApiError::Status {
            method: Method::PUT,
            path: "/v1/supervisees/s/device".into(),
            expected: 200,
            status: 409,
            body: "{}".into(),
        }),
    };
    assert_eq!(err.to_string(), "person 3: assign device");
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert_eq!(
        cause,
        "PUT /v1/supervisees/s/device: expected 200, got 409: {}"
    );
}
