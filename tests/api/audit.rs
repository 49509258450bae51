//! Every read and change of a supervisee's data leaves an audit row: who, what, when, from where.

use serde_json::json;

use crate::support::spawn_app;

#[tokio::test]
async fn reads_and_writes_of_supervisee_data_are_audited_with_who_and_where() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (officer_id, officer) = app.account(&admin, "officer").await;
    let officer_uuid: uuid::Uuid = officer_id.parse().unwrap();
    let supervisee = app.supervisee(&admin, &officer_id).await;
    let supervisee_uuid: uuid::Uuid = supervisee.parse().unwrap();

    app.get(&format!("/v1/supervisees/{supervisee}"), &officer)
        .await
        .expect(200);
    app.get("/v1/supervisees", &officer).await.expect(200);
    app.get(&format!("/v1/supervisees/{supervisee}/zones"), &officer)
        .await
        .expect(200);
    let now = chrono::Utc::now();
    app.post(&format!("/v1/supervisees/{supervisee}/orders"), &officer, json!({
        "basis": "public_security_penalty", "starts_at": now, "ends_at": now + chrono::Duration::days(30), "approved_by": "Head"
    })).await.expect(201);

    let reads = app.audit_rows("supervisee.read").await;
    assert_eq!(
        reads,
        vec![(
            Some(officer_uuid),
            Some("127.0.0.1".to_owned()),
            Some(supervisee_uuid)
        )]
    );
    assert_eq!(app.audit_rows("supervisee.list").await.len(), 1);
    assert_eq!(app.audit_rows("supervisee.zones_read").await.len(), 1);
    assert_eq!(
        app.audit_rows("supervisee.order_create").await[0].2,
        Some(supervisee_uuid)
    );
    assert_eq!(app.audit_rows("supervisee.create").await.len(), 1);
}

#[tokio::test]
async fn a_denied_read_leaves_no_data_audit_row() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (owner, _) = app.account(&admin, "officer").await;
    let (_, stranger) = app.account(&admin, "officer").await;
    let supervisee = app.supervisee(&admin, &owner).await;
    app.get(&format!("/v1/supervisees/{supervisee}"), &stranger)
        .await
        .expect(404);
    assert!(app.audit_rows("supervisee.read").await.is_empty());
}

#[tokio::test]
async fn admins_read_the_audit_log_filtered_and_paginated() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (officer_id, officer) = app.account(&admin, "officer").await;
    let supervisee = app.supervisee(&admin, &officer_id).await;
    for _ in 0..3 {
        app.get(&format!("/v1/supervisees/{supervisee}"), &officer)
            .await
            .expect(200);
    }
    let page = app
        .get(
            &format!("/v1/audit?action=supervisee.read&supervisee_id={supervisee}&limit=2"),
            &admin,
        )
        .await
        .expect(200);
    let items = page.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["actor_id"], officer_id);
    assert_eq!(items[0]["remote_addr"], "127.0.0.1");
    let next = page.body["next"].as_str().unwrap();
    let rest = app
        .get(
            &format!(
                "/v1/audit?action=supervisee.read&supervisee_id={supervisee}&limit=2&after={next}"
            ),
            &admin,
        )
        .await
        .expect(200);
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest.body["next"], json!(null));
    app.get("/v1/audit", &officer).await.expect(403);
}
