//! Spread scenarios (`plan/pace.rs`, what `scripts/demo` runs): every kind is placed, the first
//! alert is due within a minute of the start, alerts keep coming until near the end, scenarios
//! follow supervisee order, and the plan, replayed, raises exactly what it expects.

use super::*;

/// The run `scripts/demo` asks for by default (its server's short alert timings included).
fn demo() -> Settings {
    Settings {
        devices: 80,
        officers: 1,
        interval: Duration::seconds(5),
        duration: Duration::minutes(30),
        scenario_share: 0.75,
        lost_contact_after_s: 3600,
        silent_lost_contact_after_s: 10,
        lost_contact_grace: Duration::seconds(5),
        late_after: Duration::seconds(20),
        spread_scenarios: true,
        ..Settings::default()
    }
}

fn demo_plan() -> &'static Plan {
    static PLAN: std::sync::OnceLock<Plan> = std::sync::OnceLock::new();
    PLAN.get_or_init(|| build(&demo(), start()).expect("the demo plan builds"))
}

/// Every expected alert: (person index, when it is decided at the latest).
fn due(plan: &Plan) -> Vec<(usize, DateTime<Utc>)> {
    let mut due: Vec<(usize, DateTime<Utc>)> = plan
        .expectations(
            |i| uuid::Uuid::from_u128(i as u128),
            |_| uuid::Uuid::nil(),
            |_| uuid::Uuid::nil(),
        )
        .iter()
        .map(|e| (e.supervisee_id.as_u128() as usize, e.window.to))
        .collect();
    due.sort_by_key(|d| d.1);
    due
}

#[test]
fn a_demo_run_has_an_alert_in_its_first_minute_and_no_quiet_spell_of_two_minutes() {
    let plan = demo_plan();
    assert!(plan.skipped.is_empty(), "skipped {:?}", plan.skipped);
    assert_eq!(kinds(plan).len(), 11);
    let due = due(plan);
    assert!(due.len() >= 40, "{} alerts expected", due.len());
    let first = due[0].1 - plan.start;
    assert!(
        first <= Duration::seconds(60),
        "first alert due after {first}"
    );
    let mut last = plan.start;
    for (i, t) in &due {
        assert!(
            *t - last <= Duration::minutes(2),
            "nothing due between {last} and {t} (supervisee {i})"
        );
        last = *t;
    }
    let tail = plan.end() - last;
    assert!(
        tail <= Duration::minutes(4),
        "last alert due {tail} before the end"
    );
}

#[test]
fn spread_scenarios_happen_in_supervisee_order_near_their_own_moment() {
    let plan = demo_plan();
    let span = plan.settings.duration.num_milliseconds() as f64;
    let due = due(plan);
    let near = due
        .iter()
        .filter(|(i, t)| {
            let own = pace::SPREAD_END * (*i as f64 + 0.5) / plan.people.len() as f64;
            let at = (*t - plan.start).num_milliseconds() as f64 / span;
            (at - own).abs() <= 0.1
        })
        .count();
    assert!(
        near * 10 >= due.len() * 9,
        "only {near} of {} alerts due within a tenth of the run of their person's moment",
        due.len()
    );
}

#[test]
fn without_spreading_the_same_run_has_a_long_quiet_spell() {
    let plan = build(
        &Settings {
            spread_scenarios: false,
            ..demo()
        },
        start(),
    )
    .expect("the plan builds");
    assert!(
        longest_quiet(&plan) >= Duration::minutes(5),
        "{}",
        longest_quiet(&plan)
    );
    assert!(longest_quiet(demo_plan()) <= Duration::minutes(3));
    assert!(longest_quiet(&plan) >= longest_quiet(demo_plan()) * 2);
}

/// The longest time from the start, between two alerts due, or from the last to the end.
fn longest_quiet(plan: &Plan) -> Duration {
    let mut times: Vec<DateTime<Utc>> = vec![plan.start];
    times.extend(due(plan).into_iter().map(|d| d.1));
    times.push(plan.end());
    times
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default()
}

#[test]
fn a_spread_plan_raises_exactly_what_it_expects() {
    // Scenario people and every tenth compliant one: replaying everyone is slow in debug.
    let mut small = demo_plan().clone();
    small
        .people
        .retain(|p| p.scenario.scenario != ledger::Scenario::Compliant || p.index % 10 == 0);
    assert_plan_raises_exactly_what_it_expects(&small);
}

#[test]
fn a_late_curfew_window_opens_on_a_whole_minute_at_its_persons_moment() {
    let plan = demo_plan();
    let curfews: Vec<&PersonPlan> = plan
        .people
        .iter()
        .filter(|p| Kind::of(&p.scenario.scenario) == Kind::BreakCurfew)
        .collect();
    assert!(curfews.len() >= 4, "{} curfew breakers", curfews.len());
    for p in curfews {
        let ledger::Scenario::BreakCurfew { window, .. } = p.scenario.scenario else {
            unreachable!()
        };
        let own = pace::SPREAD_END * (p.index as f64 + 0.5) / plan.people.len() as f64;
        let span = plan.settings.duration.num_milliseconds() as f64;
        let own = plan.start + Duration::milliseconds((own * span) as i64);
        assert_eq!(window.from.timestamp() % 60, 0, "supervisee {}", p.index);
        assert!(
            window.from >= own && window.from - own < Duration::seconds(60),
            "supervisee {}: opens {} for a moment at {own}",
            p.index,
            window.from
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]
    #[test]
    fn small_random_spread_runs_pass_their_checks_and_raise_exactly_what_they_expect(
        seed in any::<u64>(), devices in 11usize..40, interval in 1i64..=10,
        ticks in 30i64..400, confirm in 1u32..4, lag in 0i64..=6, offset_s in 0i64..86_400,
    ) {
        let s = Settings {
            seed, devices, confirm_fixes: confirm, scenario_share: 1.0,
            interval: Duration::seconds(interval),
            duration: Duration::seconds(interval * ticks),
            lag: Duration::seconds(lag),
            spread_scenarios: true,
            ..demo()
        };
        if let Ok(plan) = build(&s, start() + Duration::seconds(offset_s)) {
            prop_assert!(check(&plan).is_ok());
            assert_plan_raises_exactly_what_it_expects(&plan);
        }
    }
}
