//! Zone rules for one accepted fix: which zones are in force, the confirm/uncertain state
//! machine, curfew openings, pass-through and the uncertain run behind `no_location`.
//!
//! Invariants:
//! - an `Uncertain` class never changes a zone's entry;
//! - a violation starts after `confirm_fixes` consecutive confirming fixes and clears after as
//!   many the other way; a contrary fix resets the streak;
//! - a zone that is no longer in force (window closed, leave began, order ended, zone removed)
//!   has its open violation cleared and its entry dropped;
//! - zones are visited in a fixed order (personal, leave destination, shared by layer index),
//!   so the event list is deterministic.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::types::{
    EvalState, EventKind, EventPosition, KnownFix, Leave, RuleEvent, Rules, Transition, ZoneState,
};
use super::zone::{envelope, Class, PreparedZone, ZoneKind};

/// Who decided an event.
#[derive(Debug, Clone, Copy)]
pub(super) struct Decider {
    pub seq: Option<u64>,
    pub at: DateTime<Utc>,
    pub position: Option<EventPosition>,
    pub late: bool,
}

impl Decider {
    pub fn of(fix: &KnownFix, late: bool) -> Decider {
        Decider {
            seq: Some(fix.seq),
            at: fix.ts,
            position: Some(fix.position()),
            late,
        }
    }
    pub fn event(&self, kind: EventKind, t: Transition, zone_id: Option<Uuid>) -> RuleEvent {
        RuleEvent {
            kind,
            transition: t,
            zone_id,
            seq: self.seq,
            at: self.at,
            position: self.position,
            late: self.late,
        }
    }
}

/// The violation kind of a zone; `destination` marks a leave destination.
pub(super) fn violation_kind(z: &PreparedZone, destination: bool) -> EventKind {
    match z.kind() {
        ZoneKind::Exclusion => EventKind::ExclusionZoneEntered,
        ZoneKind::Inclusion if !destination && !z.schedule().is_always() => {
            EventKind::CurfewViolation
        }
        ZoneKind::Inclusion => EventKind::InclusionZoneLeft,
    }
}

/// Whether `z` is in force at `ts`.
pub(super) fn in_force(
    rules: &Rules,
    z: &PreparedZone,
    destination: bool,
    leave: Option<&Leave>,
    ts: DateTime<Utc>,
) -> bool {
    destination
        || !(z.kind() == ZoneKind::Inclusion && leave.is_some())
            && (z.schedule().is_always() || z.schedule().active_at(ts, rules.timezone))
}

/// Removes the entry of zone `id` (clearing its violation), if any.
pub(super) fn drop_entry(st: &mut EvalState, id: Uuid, d: &Decider, ev: &mut Vec<RuleEvent>) {
    if let Some(i) = st.zones.iter().position(|e| e.id == id) {
        let e = st.zones.remove(i);
        if e.violating {
            ev.push(d.event(e.kind, Transition::Cleared, Some(id)));
        }
    }
}

/// One confirming (or contrary) observation of zone `z`.
fn apply(
    st: &mut EvalState,
    z: &PreparedZone,
    kind: EventKind,
    window: Option<DateTime<Utc>>,
    class: Class,
    d: &Decider,
    ev: &mut Vec<RuleEvent>,
) {
    let bad = match (z.kind(), class) {
        (ZoneKind::Inclusion, Class::Outside) | (ZoneKind::Exclusion, Class::Inside) => true,
        (ZoneKind::Inclusion, Class::Inside) | (ZoneKind::Exclusion, Class::Outside) => false,
        (_, Class::Uncertain) => return,
    };
    let pos = st.zones.iter().position(|e| e.id == z.id());
    let mut e = pos.map_or(
        ZoneState {
            id: z.id(),
            violating: false,
            streak: 0,
            kind,
            window,
        },
        |i| st.zones[i],
    );
    if bad == e.violating {
        e.streak = 0;
    } else {
        e.streak = e.streak.saturating_add(1);
        if e.streak >= z.confirm_fixes() {
            e.violating = bad;
            e.streak = 0;
            if bad {
                e.kind = kind;
            }
            let t = if bad {
                Transition::Started
            } else {
                Transition::Cleared
            };
            ev.push(d.event(e.kind, t, Some(z.id())));
        }
    }
    match (pos, e.violating || e.streak > 0) {
        (Some(i), true) => st.zones[i] = e,
        (Some(i), false) => {
            st.zones.remove(i);
        }
        (None, true) => st.zones.push(e),
        (None, false) => {}
    }
}

/// Evaluates every zone rule for `fix`, the newest accepted fix; `st.last` is the previous one.
pub(super) fn step(
    rules: &Rules,
    st: &mut EvalState,
    fix: &KnownFix,
    late: bool,
    ev: &mut Vec<RuleEvent>,
) {
    let ts = fix.ts;
    let leave = rules.leaves.iter().find(|l| l.period.contains(ts));
    let prev = st.last.filter(|p| p.ts < ts);
    let path = prev.filter(|p| ts - p.ts <= rules.settings.crossing_max_gap);
    let d = Decider::of(fix, late);
    let mut visited: Vec<Uuid> = Vec::with_capacity(st.zones.len());
    let mut uncertain = false;
    let mut visit = |st: &mut EvalState, z: &PreparedZone, dest: bool| {
        visited.push(z.id());
        let has_entry = st.zones.iter().any(|e| e.id == z.id());
        if !in_force(rules, z, dest, leave, ts) {
            drop_entry(st, z.id(), &d, ev);
            return;
        }
        let acc = f64::from(fix.acc);
        let near_path = path.is_some_and(|p| z.path_box_meets((p.lon, p.lat), (fix.lon, fix.lat)));
        if z.kind() == ZoneKind::Exclusion
            && !has_entry
            && !near_path
            && !z.reaches(fix.lat, fix.lon, acc)
        {
            return; // at rest and out of reach: Outside changes nothing
        }
        let class = z.class_of(fix.lat, fix.lon, acc);
        uncertain |= class == Class::Uncertain;
        let kind = violation_kind(z, dest);
        let window = (kind == EventKind::CurfewViolation)
            .then(|| z.schedule().last_opening_at_or_before(ts, rules.timezone))
            .flatten();
        if st
            .zones
            .iter()
            .any(|e| e.id == z.id() && e.window != window)
        {
            drop_entry(st, z.id(), &d, ev); // an entry left over from an earlier window
        }
        if let (Some(o), Some(p)) = (window, prev) {
            let fresh = !st.zones.iter().any(|e| e.id == z.id());
            if fresh && p.ts < o && o - p.ts <= rules.settings.no_location_after {
                // The position held over the opening counts as one observation at the opening.
                let at_open = Decider {
                    at: o,
                    ..Decider::of(&p, late)
                };
                let c = z.class_of(p.lat, p.lon, f64::from(p.acc));
                apply(st, z, kind, window, c, &at_open, ev);
            }
        }
        apply(st, z, kind, window, class, &d, ev);
        let violating = st.zones.iter().any(|e| e.id == z.id() && e.violating);
        if let Some(p) = path.filter(|_| near_path && z.kind() == ZoneKind::Exclusion) {
            let pacc = f64::from(p.acc);
            if !violating
                && class != Class::Inside
                && z.class_of(p.lat, p.lon, pacc) != Class::Inside
                && z.path_reaches((p.lon, p.lat), (fix.lon, fix.lat), pacc.max(acc))
            {
                ev.push(d.event(
                    EventKind::ExclusionZoneCrossed,
                    Transition::Started,
                    Some(z.id()),
                ));
            }
        }
    };
    for z in rules.zones {
        visit(st, z, false);
    }
    if let Some(dest) = leave.and_then(|l| l.destination.as_ref()) {
        visit(st, dest, true);
    }
    if let Some(layer) = rules.shared {
        let acc = f64::from(fix.acc);
        let mut b = envelope(fix.lon, fix.lat, if acc.is_finite() { acc } else { 0.0 });
        if let Some(p) = path {
            b = [
                b[0].min(p.lon),
                b[1].min(p.lat),
                b[2].max(p.lon),
                b[3].max(p.lat),
            ];
        }
        let mut idx = Vec::new();
        if acc.is_finite() {
            layer.candidates(b, &mut idx);
        } else {
            idx.extend(0..layer.len() as u32);
        }
        idx.extend_from_slice(layer.inclusion_indices());
        idx.extend(st.zones.iter().filter_map(|e| layer.index_of(e.id)));
        idx.sort_unstable();
        idx.dedup();
        for i in idx {
            if let Some(z) = layer.zones().get(i as usize) {
                visit(st, z, false);
            }
        }
    }
    let stale: Vec<Uuid> = st
        .zones
        .iter()
        .filter(|e| !visited.contains(&e.id))
        .map(|e| e.id)
        .collect();
    for id in stale {
        drop_entry(st, id, &d, ev);
    }
    no_location(rules, st, uncertain, &d, ev);
}

/// The uncertain run: `no_location` after `no_location_after` of only-uncertain fixes.
fn no_location(
    rules: &Rules,
    st: &mut EvalState,
    uncertain: bool,
    d: &Decider,
    ev: &mut Vec<RuleEvent>,
) {
    if uncertain {
        let since = *st.uncertain_since.get_or_insert(d.at);
        if !st.no_location && d.at - since >= rules.settings.no_location_after {
            st.no_location = true;
            ev.push(d.event(EventKind::NoLocation, Transition::Started, None));
        }
    } else {
        st.uncertain_since = None;
        if st.no_location {
            st.no_location = false;
            ev.push(d.event(EventKind::NoLocation, Transition::Cleared, None));
        }
    }
}
