//! What provisioning asks of geoward, worked out without I/O: the run's names, the check of
//! the plan, who draws which zone, and the request bodies (field for field as `src/api` takes
//! them: the server refuses unknown fields).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{ProvisionError, ORDER_BASIS};
use crate::plan::{LeaveSpec, Plan, ZoneRef, ZoneSpec};

/// Longest username geoward accepts.
const MAX_USERNAME: usize = 64;

/// Who draws a zone: `Some(i)` person i's officer (a personal zone), `None` the supervisor.
pub fn drawer(spec: &ZoneSpec, people: usize) -> Option<usize> {
    if spec.shared {
        return None;
    }
    match spec.zone {
        ZoneRef::Home(i) | ZoneRef::Victim(i) | ZoneRef::LeaveDestination(i) if i < people => {
            Some(i)
        }
        _ => None,
    }
}

/// `sim-{run_id}-supervisor` or `sim-{run_id}-officer-{k}`.
pub fn username(run_id: &str, officer: Option<usize>) -> String {
    match officer {
        None => format!("sim-{run_id}-supervisor"),
        Some(k) => format!("sim-{run_id}-officer-{k}"),
    }
}

/// `sim-{run_id}-{i}`, then `…-r{n}` for the n-th re-registration.
pub fn serial(run_id: &str, i: usize, reregistration: usize) -> String {
    match reregistration {
        0 => format!("sim-{run_id}-{i}"),
        n => format!("sim-{run_id}-{i}-r{n}"),
    }
}

/// A run id works in usernames, serials and names.
pub fn check_run_id(run_id: &str, officers: usize) -> Result<(), ProvisionError> {
    let longest = username(run_id, Some(officers.saturating_sub(1)))
        .len()
        .max(username(run_id, None).len());
    let ok = !run_id.is_empty()
        && longest <= MAX_USERNAME
        && run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ProvisionError::RunId(run_id.to_owned()))
    }
}

/// The plan's people are indexed by position, their caseloads exist, and every zone attached
/// to someone is drawn before it is attached: a shared one, or the person's own.
pub fn check_plan(plan: &Plan) -> Result<(), ProvisionError> {
    let people: Vec<PersonRef<'_>> = plan
        .people
        .iter()
        .map(|p| PersonRef {
            index: p.index,
            officer: p.officer,
            zones: &p.zones,
        })
        .collect();
    check_people(plan.settings.officers, &plan.zones, &people)
}

/// What [`check_plan`] reads of a person.
pub(super) struct PersonRef<'a> {
    pub index: usize,
    pub officer: usize,
    pub zones: &'a [ZoneRef],
}

pub(super) fn check_people(
    officers: usize,
    zones: &[ZoneSpec],
    people: &[PersonRef<'_>],
) -> Result<(), ProvisionError> {
    let bad = |m: String| Err(ProvisionError::Plan(m));
    if officers == 0 && !people.is_empty() {
        return bad("no officers for the caseloads".into());
    }
    let mut specs: HashMap<ZoneRef, &ZoneSpec> = HashMap::new();
    for spec in zones {
        if specs.insert(spec.zone, spec).is_some() {
            return bad(format!("zone {:?} appears twice", spec.zone));
        }
    }
    for (k, p) in people.iter().enumerate() {
        if p.index != k {
            return bad(format!("person at position {k} has index {}", p.index));
        }
        if p.officer >= officers {
            return bad(format!("person {k}: caseload {} of {officers}", p.officer));
        }
        for zone in p.zones {
            match specs.get(zone).map(|s| drawer(s, people.len())) {
                None => return bad(format!("person {k}: zone {zone:?} is not in the plan")),
                Some(Some(owner)) if owner != k => {
                    return bad(format!("person {k}: zone {zone:?} is person {owner}'s"))
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// `POST /v1/officers`.
pub(super) fn account_body(username: &str, password: &str, officer: bool, run_id: &str) -> Value {
    let role = if officer { "officer" } else { "supervisor" };
    json!({
        "username": username,
        "password": password,
        "role": role,
        "name": format!("sim-{run_id} {role} {username}"),
    })
}

/// `POST /v1/zones`: the spec as drawn, named for the run, in WGS-84.
pub(super) fn zone_body(spec: &ZoneSpec, run_id: &str) -> Value {
    let name: String = format!("sim-{run_id} {}", spec.name)
        .chars()
        .take(200)
        .collect();
    let mut body = json!({
        "name": name,
        "kind": spec.kind,
        "geometry": spec.geometry,
        "datum": "wgs84",
        "confirm_fixes": spec.confirm_fixes,
        "shared": spec.shared,
    });
    if let Some(schedule) = &spec.schedule {
        body["schedule"] = schedule.clone();
    }
    body
}

/// `POST /v1/supervisees`.
pub(super) fn supervisee_body(
    index: usize,
    timezone: &str,
    lost_contact_after_s: u32,
    officer_id: Uuid,
    run_id: &str,
) -> Value {
    json!({
        "name": format!("sim-{run_id} person {index}"),
        "officer_id": officer_id,
        "timezone": timezone,
        "lost_contact_after_s": lost_contact_after_s,
    })
}

/// `POST /v1/supervisees/{id}/orders`.
pub(super) fn order_body(starts_at: DateTime<Utc>, ends_at: DateTime<Utc>, run_id: &str) -> Value {
    json!({
        "basis": ORDER_BASIS,
        "starts_at": starts_at,
        "ends_at": ends_at,
        "approved_by": format!("geoward-sim run {run_id}"),
    })
}

/// `POST /v1/supervisees/{id}/leaves`.
pub(super) fn leave_body(leave: &LeaveSpec) -> Value {
    let mut body = json!({
        "starts_at": leave.starts_at,
        "ends_at": leave.ends_at,
        "reason": leave.reason,
    });
    if let Some(destination) = &leave.destination {
        body["destination"] = destination.clone();
        body["datum"] = json!("wgs84");
    }
    body
}
