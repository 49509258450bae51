//! The CI-sized simulator run (issue 5/6): a few hundred simulated supervisees against a real
//! geoward (in this process, with real PostgreSQL and Redis), every scenario injected, for a
//! minute, and not one alert missing, unexpected, duplicated or delivered to the wrong officer.
//!
//! The server's alert timings are shortened so that every scenario fits the minute: a
//! supervisee may be allowed 5 s of silence, buffered reports count as late after 10 s.
//! The simulator is told the same values, as an operator would tell it theirs.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use geoward_sim::plan::Settings;
use geoward_sim::run::{Session, Target};

use support::{spawn_app_with, test_config, ADMIN_PASSWORD, ADMIN_USER};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ci_sized_run_raises_every_expected_alert_once_and_nothing_else() {
    let (mut config, database) = test_config().await;
    config.database.max_connections = 16;
    config.supervision.min_lost_contact_after_s = 5;
    config.alerts.lost_contact_grace = Duration::from_secs(2);
    config.alerts.late_after = Duration::from_secs(10);
    config.alerts.sweep_interval = Duration::from_millis(250);
    let app = spawn_app_with(config, database).await;

    let settings = Settings {
        seed: 20261125,
        devices: 300,
        officers: 3,
        schools: 20,
        interval: chrono::Duration::seconds(1),
        duration: chrono::Duration::seconds(60),
        scenario_share: 0.2,
        silent_lost_contact_after_s: 5,
        lost_contact_grace: chrono::Duration::seconds(2),
        late_after: chrono::Duration::seconds(10),
        lag: chrono::Duration::seconds(3),
        ..Settings::default()
    };
    let target = Target {
        url: app.base.clone(),
        admin_user: ADMIN_USER.into(),
        admin_password: ADMIN_PASSWORD.into(),
        workers: 0,
        source_ips: Vec::new(),
        pids: Vec::new(),
        concurrency: 16,
        ack_every: 3,
        // Provisioning 300 supervisees through a debug build takes about half a minute.
        lead: Some(Duration::from_secs(40)),
        progress: true,
    };
    let mut session = Session::prepare(&target, &settings)
        .await
        .expect("the run is provisioned and connected");
    session.drive().await;
    let report = session.finish(Duration::from_secs(10)).await;
    println!("{}", report.table());
    // The whole report, for reading after a failure (CI keeps target/).
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/target/simulator-ci-report.json"
    );
    if let Ok(json) = serde_json::to_string_pretty(&report) {
        let _ = std::fs::write(path, json);
    }

    assert!(
        report.scenarios_skipped.is_empty(),
        "every scenario fits the CI run: {:?}",
        report.scenarios_skipped
    );
    assert_eq!(
        report.scenarios.len(),
        12,
        "all eleven scenarios and compliant people: {:?}",
        report.scenarios
    );
    assert!(report.alerts_expected >= 8, "{}", report.table());
    assert_eq!(
        (
            report.alerts_missing,
            report.alerts_unexpected,
            report.alerts_duplicated,
            report.alerts_wrong_officer
        ),
        (0, 0, 0, 0),
        "{}\n{}",
        report.table(),
        serde_json::to_string_pretty(&report.verdict).unwrap_or_default()
    );
    assert_eq!(report.errors, 0, "{:?}", report.error_kinds);
    assert_eq!(report.fixes_acked, report.fixes_sent);
    assert!(
        report.alerts_acknowledged > 0,
        "officers acknowledged some alerts"
    );
}
