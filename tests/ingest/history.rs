//! Reading history back: the track endpoint.

use std::time::Duration;

use serde_json::json;

use crate::streaming::{assign, register, seqs, urlencode, ws};
use crate::support::device::{fix_json, Device};
use crate::support::spawn_app;

#[tokio::test]
async fn a_track_comes_back_in_device_time_order_in_pages_caseload_scoped_and_audited() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (officer_id, officer) = app.account(&admin, "officer").await;
    let (_, stranger) = app.account(&admin, "officer").await;
    let supervisee = app.supervisee(&admin, &officer_id).await;
    let tag = register(&app, &admin).await;
    assign(&app, &admin, &supervisee, &tag).await;
    let base = chrono::Utc::now() - chrono::Duration::minutes(30);
    let mut device = Device::connect(&ws(&app), &tag.token).await.unwrap();
    // Sent out of order (a buffered upload after live fixes); the track is in device time.
    for (seq, minute) in [(3u64, 3i64), (1, 1), (5, 5), (2, 2), (4, 4)] {
        let ts = (base + chrono::Duration::minutes(minute)).to_rfc3339();
        device
            .send_json(&fix_json(seq, &ts, 33.62, 114.65, 6.0))
            .await
            .unwrap();
    }
    device
        .wait_acks(&seqs(1..=5), Duration::from_secs(10))
        .await;
    let from = urlencode(&base.to_rfc3339());
    let first = app
        .get(
            &format!("/v1/supervisees/{supervisee}/track?from={from}&limit=2"),
            &officer,
        )
        .await
        .expect(200);
    assert_eq!(first.body["type"], "FeatureCollection");
    let page_seqs = |body: &serde_json::Value| -> Vec<i64> {
        body["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["properties"]["seq"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(page_seqs(&first.body), vec![1, 2]);
    let feature = &first.body["features"][0];
    assert_eq!(feature["geometry"]["type"], "Point");
    assert_eq!(feature["geometry"]["coordinates"], json!([114.65, 33.62]));
    for key in ["seq", "ts", "acc", "src", "bat", "strap"] {
        assert!(!feature["properties"][key].is_null(), "property {key}");
    }
    let mut all = page_seqs(&first.body);
    let mut next = first.body["next"].as_str().map(str::to_owned);
    while let Some(cursor) = next {
        let page = app
            .get(
                &format!("/v1/supervisees/{supervisee}/track?from={from}&limit=2&after={cursor}"),
                &officer,
            )
            .await
            .expect(200);
        all.extend(page_seqs(&page.body));
        next = page.body["next"].as_str().map(str::to_owned);
    }
    assert_eq!(all, vec![1, 2, 3, 4, 5]);
    app.get(&format!("/v1/supervisees/{supervisee}/track"), &stranger)
        .await
        .expect(404);
    app.get(
        &format!("/v1/supervisees/{supervisee}/track?limit=10001"),
        &officer,
    )
    .await
    .expect(400);
    app.get(
        &format!("/v1/supervisees/{supervisee}/track?after=nonsense"),
        &officer,
    )
    .await
    .expect(400);
    assert!(app.audit_rows("supervisee.track_read").await.len() >= 3);
}

#[tokio::test]
async fn partitions_are_made_ahead_and_months_past_retention_are_dropped() {
    use chrono::TimeZone;
    use geoward::store::fixes;
    let app = spawn_app().await;
    let partitions = || async {
        let rows: Vec<(String,)> = sqlx::query_as(
            "select c.relname::text from pg_inherits i join pg_class c on c.oid = i.inhrelid
             join pg_class p on p.oid = i.inhparent where p.relname = 'fixes' order by 1",
        )
        .fetch_all(&app.db)
        .await
        .unwrap();
        rows.into_iter().map(|r| r.0).collect::<Vec<_>>()
    };
    // Start-up made this month's partition and the ones around it.
    let this_month = chrono::Utc::now().format("fixes_y%Ym%m").to_string();
    assert!(partitions().await.contains(&this_month));
    // History from two years ago, past a 400-day retention.
    let old = chrono::Utc.with_ymd_and_hms(2024, 5, 10, 12, 0, 0).unwrap();
    fixes::ensure_partitions(&app.db, old, 0, 0).await.unwrap();
    sqlx::query("insert into fixes (device_id, seq, ts, kind, lat, lon, acc, src) values (gen_random_uuid(), 1, $1, 'fix', 33.6, 114.6, 5, 'gps')")
        .bind(old)
        .execute(&app.db)
        .await
        .unwrap();
    assert!(partitions().await.contains(&"fixes_y2024m05".to_owned()));
    let dropped =
        fixes::drop_partitions_before(&app.db, chrono::Utc::now() - chrono::Duration::days(400))
            .await
            .unwrap();
    assert_eq!(dropped, vec!["fixes_y2024m05".to_owned()]);
    assert!(
        partitions().await.contains(&this_month),
        "recent months are kept"
    );
    let (left,): (i64,) = sqlx::query_as("select count(*) from fixes")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(left, 0);
}
