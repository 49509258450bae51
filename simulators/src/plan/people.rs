//! Drawing the run's supervisees: the shared zones, which person carries which scenario, each
//! person's day, zones, tag and checks, with deterministic retries.
//!
//! Invariants:
//! - every draw comes from an rng seeded by `settings.seed` mixed (splitmix64) with what it is
//!   for (the schools; person `i`'s attempt `a`; …), so the plan is a function of the settings
//!   and the start time, and one person's retries never shift another's draws;
//! - a person is only kept once the plan's validation ([`super::check`]) passes for them;
//!   scenario placements that fail it are retried (other moments, other people); a scenario
//!   that cannot be placed leaves its person compliant and is named in `Plan::skipped`;
//! - people with a scenario are never barred from schools, except the pass-through one.

use chrono::Duration;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::{json, Value};

use super::check::Checker;
use super::clock::{self, add_secs_ceil, DayClock, Ticks};
use super::scenarios::{self, Kind};
use super::zones::{self, Shape};
use super::{
    LeaveSpec, PersonPlan, Plan, PlanError, PlannedScenario, Settings, ZoneRef, ZoneSpec,
    HOME_RADIUS_M, JURISDICTION_RADIUS_M, JURISDICTION_VERTICES, SCHOOL_RADIUS_M,
    SETTLE_ALLOWANCE_S, SWEEP_S, VICTIM_RADIUS_M,
};
use crate::geo::LatLon;
use crate::ledger::Scenario;
use crate::movement::{Area, Person, TravelMode};
use crate::script::DevicePlan;
use chrono::{DateTime, Utc};

/// Person seeds tried for a compliant person barred from schools.
const BARRED_ATTEMPTS: u64 = 50;
/// Person seeds tried for a scenario.
const SCENARIO_ATTEMPTS: u64 = 12;
/// Person seeds tried for a compliant person (not barred).
const COMPLIANT_ATTEMPTS: u64 = 32;

/// What every placement needs to know about the run.
pub(crate) struct Ctx<'a> {
    pub s: &'a Settings,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub clock: DayClock,
    /// The supervisees' area with this run's offset.
    pub area: Area,
    /// The same without cell fixes, for scenarios whose movement matters.
    pub driving: Area,
    pub jurisdiction: Shape,
    pub schools: Vec<LatLon>,
    pub confirm: u64,
    pub interval_ms: i64,
    pub lag_ms: i64,
    pub checker: Checker,
    /// The latest `settle_until` the plan may get: the silent supervisee's lost contact must
    /// arrive by then, and nobody else may lose contact before it.
    pub settle_cap: DateTime<Utc>,
}

impl Ctx<'_> {
    pub fn ticks(&self, index: usize) -> Ticks {
        Ticks::of(self.s, self.start, index)
    }

    /// `start + f × duration`, to the millisecond.
    pub fn at_fraction(&self, f: f64) -> DateTime<Utc> {
        add_secs_ceil(
            self.start,
            f * self.s.duration.num_milliseconds() as f64 / 1000.0,
        )
    }
}

/// A person drawn for a scenario, before it is placed.
pub(crate) struct Input {
    pub index: usize,
    pub person: Person,
    /// The victim's home, when the scenario goes there.
    pub victim: Option<LatLon>,
    pub device: DevicePlan,
}

/// A scenario placed on a person, before the victim's home (if not yet chosen) and checks.
pub(crate) struct Placed {
    pub person: Person,
    pub device: DevicePlan,
    pub scenario: PlannedScenario,
    pub lost_contact_after_s: u32,
    /// Replaces the home's curfew.
    pub home_schedule: Option<Value>,
    pub leave: Option<LeaveSpec>,
    /// Attached to every school.
    pub barred: bool,
}

/// splitmix64 of `x`.
pub(crate) fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A seed for `parts` under the run's seed.
pub(crate) fn mix(seed: u64, parts: &[u64]) -> u64 {
    parts
        .iter()
        .fold(splitmix(seed), |h, p| splitmix(h ^ splitmix(*p)))
}

const SALT_SCHOOLS: u64 = 0x5343_484f_4f4c;
const SALT_PERSON: u64 = 0x5045_5253_4f4e;
const SALT_SCENARIO: u64 = 0x5343_454e;
const SALT_DEVICE: u64 = 0x4445_5649_4345;

pub(super) fn build(settings: &Settings, start: DateTime<Utc>) -> Result<Plan, PlanError> {
    let end = start + settings.duration;
    let clock = DayClock::new(settings.local_start_s, start);
    no_curfew_in_run(settings, &clock, start, end)?;
    let centre = settings.area.centre;
    let area = Area {
        utc_offset: clock.movement_offset(),
        ..settings.area
    };
    let ring = zones::regular_polygon(centre, JURISDICTION_RADIUS_M, JURISDICTION_VERTICES);
    let jurisdiction = Shape::polygon(ring.clone())
        .ok_or_else(|| PlanError::InvalidSettings("jurisdiction polygon".into()))?;
    let mut rng = StdRng::seed_from_u64(mix(settings.seed, &[SALT_SCHOOLS]));
    let schools = zones::place_schools(&mut rng, centre, settings.schools);
    let confirm = settings.confirm();
    let mut shared = vec![ZoneSpec {
        zone: ZoneRef::Jurisdiction,
        name: "County".into(),
        kind: "inclusion".into(),
        geometry: zones::polygon_geojson(&ring),
        schedule: None,
        confirm_fixes: confirm,
        shared: true,
    }];
    shared.extend(schools.iter().enumerate().map(|(k, c)| ZoneSpec {
        zone: ZoneRef::School(k),
        name: format!("School {k}"),
        kind: "exclusion".into(),
        geometry: Shape::circle(*c, SCHOOL_RADIUS_M).geometry(),
        schedule: None,
        confirm_fixes: confirm,
        shared: true,
    }));
    let checker = Checker::new(settings, start, &shared).map_err(PlanError::CheckFailed)?;
    let ctx = Ctx {
        s: settings,
        start,
        end,
        driving: Area {
            poor_fix_share: 0.0,
            ..area
        },
        area,
        clock,
        jurisdiction,
        schools,
        confirm: u64::from(confirm),
        interval_ms: settings.interval.num_milliseconds().max(1),
        lag_ms: settings.lag.num_milliseconds().max(0),
        checker,
        settle_cap: settle_cap(settings, end),
    };

    let kinds = deal(settings);
    let mut people = Vec::with_capacity(settings.devices);
    let mut zones_out = shared;
    let mut skipped: Vec<String> = Vec::new();
    let mut compliant = 0usize;
    for (i, kind) in kinds.into_iter().enumerate() {
        // A kind that could not be placed once does not fit this run: not tried again.
        let placed = if kind == Kind::Compliant || skipped.iter().any(|s| s == kind.name()) {
            None
        } else {
            let p = place_scenario(&ctx, i, kind);
            if p.is_none() {
                skipped.push(kind.name().to_owned());
            }
            p
        };
        let (person, specs) = match placed {
            Some(x) => x,
            None => {
                let barred = !ctx.schools.is_empty() && compliant % 4 == 0;
                compliant += 1;
                place_compliant(&ctx, i, barred)?
            }
        };
        people.push(person);
        zones_out.extend(specs);
    }

    let mut settle = end + settings.lag + Duration::seconds(2);
    for p in &people {
        if let Scenario::GoSilent { window } = p.scenario.scenario {
            settle =
                settle.max(window.to + settings.lost_contact_grace + Duration::seconds(SWEEP_S));
        }
    }
    Ok(Plan {
        settings: settings.clone(),
        start,
        local_offset_s: ctx.clock.movement_offset_s,
        timezone: ctx.clock.timezone.clone(),
        zones: zones_out,
        people,
        order_starts: start,
        order_ends: start + Duration::days(30),
        skipped,
        settle_until: settle,
    })
}

/// `end + lag + 2 s` plus up to [`SETTLE_ALLOWANCE_S`], but early enough that an ordinary
/// supervisee whose last report was the last tick (at most an interval before the end) keeps
/// contact until then.
fn settle_cap(s: &Settings, end: DateTime<Utc>) -> DateTime<Utc> {
    let least = end + s.lag + Duration::seconds(2);
    let allowed = Duration::seconds(i64::from(s.lost_contact_after_s)) + s.lost_contact_grace;
    let keeps = end - s.interval + allowed - Duration::seconds(2);
    (least + Duration::seconds(SETTLE_ALLOWANCE_S))
        .min(keeps)
        .max(least)
}

/// Refuses a run during which the curfew (22:00–06:00 geoward-local) could be in force, with an
/// hour to spare before it opens.
fn no_curfew_in_run(
    s: &Settings,
    clock: &DayClock,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<(), PlanError> {
    let latest = end + s.lag + Duration::seconds(2 + SETTLE_ALLOWANCE_S);
    let night = json!([{"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "start": "21:00", "end": "06:00"}]);
    let hits = clock::schedule_intervals(Some(&night), clock.geoward_offset_h, start, latest)
        .map_err(PlanError::InvalidSettings)?;
    if hits.is_empty() {
        Ok(())
    } else {
        Err(PlanError::InvalidSettings(format!(
            "the run would be in geoward's night (21:00–06:00 {}; the curfew opens at 22:00): \
             local start {} and end {}; shorten the duration or move local_start_s",
            clock.timezone,
            clock.local(start).format("%H:%M:%S"),
            clock.local(latest).format("%H:%M:%S"),
        )))
    }
}

/// The kind of each person: `n = round(share × devices)`, at least one of each kind when
/// there are devices enough, dealt in a cycle over persons spread evenly through the indices.
fn deal(s: &Settings) -> Vec<Kind> {
    let mut kinds = vec![Kind::Compliant; s.devices];
    if s.scenario_share <= 0.0 {
        return kinds;
    }
    let want = (s.scenario_share * s.devices as f64).round() as usize;
    let n = want
        .max(Kind::SCENARIOS.len().min(s.devices))
        .min(s.devices);
    for j in 0..n {
        let idx = (j as u128 * s.devices as u128 / n as u128) as usize;
        kinds[idx] = Kind::SCENARIOS[j % Kind::SCENARIOS.len()];
    }
    kinds
}

fn battery(ctx: &Ctx, rng: &mut StdRng) -> u8 {
    let lo = (ctx.s.low_battery_pct.saturating_add(10)).clamp(60, 100);
    rng.gen_range(lo..=100)
}

/// A compliant person: an ordinary day, far from every zone; every fourth one barred from the
/// schools when a route keeping clear of them is found (else not barred). A person who fails
/// the checks (too close to the county's border, a long run of cell fixes) is drawn again.
fn place_compliant(
    ctx: &Ctx,
    i: usize,
    barred: bool,
) -> Result<(PersonPlan, Vec<ZoneSpec>), PlanError> {
    let mut last = String::from("no person found");
    let tries = if barred {
        BARRED_ATTEMPTS
    } else {
        COMPLIANT_ATTEMPTS
    };
    for (barred, tries) in [(barred, tries), (false, COMPLIANT_ATTEMPTS)] {
        for a in 0..tries {
            let seed = mix(ctx.s.seed, &[SALT_PERSON, i as u64, a]);
            let person = Person::generate(seed, &ctx.area);
            if barred && !zones::route_clear_of(&person, &ctx.schools) {
                continue;
            }
            let mut rng = StdRng::seed_from_u64(mix(seed, &[SALT_DEVICE]));
            let track = zones::track_segments(&person);
            let Some(victim) = zones::place_victim(&mut rng, &person, &track, &ctx.jurisdiction)
            else {
                continue;
            };
            let placed = Placed {
                person,
                device: DevicePlan::ordinary(rng.gen(), battery(ctx, &mut rng)),
                scenario: PlannedScenario::compliant(),
                lost_contact_after_s: ctx.s.lost_contact_after_s,
                home_schedule: None,
                leave: None,
                barred,
            };
            let (plan, specs) = assemble(ctx, i, seed, placed, victim);
            let mut errors = ctx.checker.person(&plan, &specs);
            errors.extend(ctx.checker.contact(&plan, ctx.settle_cap));
            if errors.is_empty() {
                return Ok((plan, specs));
            }
            last = errors.join("; ");
        }
    }
    Err(PlanError::Unplaceable {
        index: i,
        reason: last,
    })
}

/// A person with scenario `kind`, or `None` if it could not be placed.
fn place_scenario(ctx: &Ctx, i: usize, kind: Kind) -> Option<(PersonPlan, Vec<ZoneSpec>)> {
    if !scenarios::fits(ctx, kind) {
        return None;
    }
    for a in 0..SCENARIO_ATTEMPTS {
        let seed = mix(ctx.s.seed, &[SALT_SCENARIO, i as u64, a]);
        let mut rng = StdRng::seed_from_u64(mix(seed, &[SALT_SCENARIO]));
        let person = if kind.moves() {
            Person::generate_with(seed, &ctx.driving, Some(TravelMode::Driving))
        } else {
            Person::generate(seed, &ctx.area)
        };
        if kind == Kind::PassThroughSchoolZone && !zones::route_clear_of(&person, &ctx.schools) {
            continue;
        }
        let victim = if kind.victim_first() {
            let route = zones::route_segments(&person);
            match zones::place_victim(&mut rng, &person, &route, &ctx.jurisdiction) {
                Some(v) => Some(v),
                None => continue,
            }
        } else {
            None
        };
        let device = DevicePlan::ordinary(rng.gen(), battery(ctx, &mut rng));
        let input = Input {
            index: i,
            person,
            victim,
            device,
        };
        let mut vrng = StdRng::seed_from_u64(mix(seed, &[SALT_DEVICE]));
        let mut accept = |placed: Placed| {
            let victim = match victim {
                Some(v) => v,
                None => zones::place_victim(
                    &mut vrng,
                    &placed.person,
                    &zones::track_segments(&placed.person),
                    &ctx.jurisdiction,
                )?,
            };
            let (plan, specs) = assemble(ctx, i, seed, placed, victim);
            let sound = ctx.checker.person(&plan, &specs).is_empty()
                && ctx.checker.contact(&plan, ctx.settle_cap).is_empty();
            sound.then_some((plan, specs))
        };
        if let Some(x) = scenarios::place(ctx, kind, &input, &mut rng, &mut accept) {
            return Some(x);
        }
    }
    None
}

/// The person's plan and their personal zones.
fn assemble(
    ctx: &Ctx,
    i: usize,
    seed: u64,
    placed: Placed,
    victim: LatLon,
) -> (PersonPlan, Vec<ZoneSpec>) {
    let confirm = ctx.s.confirm();
    let home = ZoneSpec {
        zone: ZoneRef::Home(i),
        name: format!("Home of supervisee {i}"),
        kind: "inclusion".into(),
        geometry: Shape::circle(placed.person.home(), HOME_RADIUS_M).geometry(),
        schedule: Some(placed.home_schedule.unwrap_or_else(clock::curfew_schedule)),
        confirm_fixes: confirm,
        shared: false,
    };
    let victim_zone = ZoneSpec {
        zone: ZoneRef::Victim(i),
        name: format!("Victim's home, supervisee {i}"),
        kind: "exclusion".into(),
        geometry: Shape::circle(victim, VICTIM_RADIUS_M).geometry(),
        schedule: None,
        confirm_fixes: confirm,
        shared: false,
    };
    let mut zones = vec![ZoneRef::Jurisdiction, ZoneRef::Home(i), ZoneRef::Victim(i)];
    if placed.barred {
        zones.extend((0..ctx.schools.len()).map(ZoneRef::School));
    }
    let plan = PersonPlan {
        index: i,
        seed,
        officer: i % ctx.s.officers.max(1),
        person: placed.person,
        timezone: ctx.clock.timezone.clone(),
        lost_contact_after_s: placed.lost_contact_after_s,
        zones,
        leave: placed.leave,
        scenario: placed.scenario,
        device: placed.device,
    };
    (plan, vec![home, victim_zone])
}
