use serde_json::json;

use crate::support::{spawn_app, ADMIN_PASSWORD, ADMIN_USER};

#[tokio::test]
async fn the_bootstrap_admin_logs_in_and_gets_a_token_and_its_account() {
    let app = spawn_app().await;
    let reply = app.login(ADMIN_USER, ADMIN_PASSWORD).await.expect(201);
    assert!(reply.body["token"].as_str().unwrap().starts_with("gwo_"));
    assert_eq!(reply.body["officer"]["username"], ADMIN_USER);
    assert_eq!(reply.body["officer"]["role"], "admin");
    let token = reply.body["token"].as_str().unwrap();
    let me = app.get("/v1/auth/me", token).await.expect(200);
    assert_eq!(me.body["username"], ADMIN_USER);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_401() {
    let app = spawn_app().await;
    let wrong = app.login(ADMIN_USER, "not-the-password").await.expect(401);
    let unknown = app
        .login("nobody-here", "not-the-password")
        .await
        .expect(401);
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.body["error"], "bad_credentials");
}

#[tokio::test]
async fn the_token_is_stored_hashed_not_in_clear() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let (hashes,): (i64,) =
        sqlx::query_as("select count(*) from officer_sessions where token_hash = $1")
            .bind(token.as_bytes())
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(hashes, 0, "the clear token must not be stored");
    let (sessions,): (i64,) = sqlx::query_as("select count(*) from officer_sessions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(sessions, 1);
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled_even_with_the_right_password() {
    let app = spawn_app().await;
    let limit = app.config.auth.login_max_failures;
    for _ in 0..limit {
        app.login(ADMIN_USER, "wrong-password-x").await.expect(401);
    }
    let throttled = app.login(ADMIN_USER, ADMIN_PASSWORD).await.expect(429);
    assert_eq!(throttled.body["error"], "too_many_attempts");
    // Case does not buy extra attempts.
    app.login(&ADMIN_USER.to_uppercase(), ADMIN_PASSWORD)
        .await
        .expect(429);
    let metrics = app
        .call(reqwest::Method::GET, "/metrics", None, None)
        .await
        .expect(200);
    assert!(metrics
        .text
        .contains("geoward_officer_logins_total{outcome=\"throttled\"} 2"));
}

#[tokio::test]
async fn throttling_one_username_leaves_other_officers_able_to_log_in() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let (_, _) = app.account(&admin, "officer").await;
    for _ in 0..app.config.auth.login_max_failures {
        app.login("someone-else", "wrong-password-x")
            .await
            .expect(401);
    }
    app.login("someone-else", "wrong-password-x")
        .await
        .expect(429);
    app.login(ADMIN_USER, ADMIN_PASSWORD).await.expect(201);
}

#[tokio::test]
async fn logout_revokes_exactly_the_token_used() {
    let app = spawn_app().await;
    let first = app.admin_token().await;
    let second = app.admin_token().await;
    app.call(reqwest::Method::POST, "/v1/auth/logout", Some(&first), None)
        .await
        .expect(204);
    app.get("/v1/auth/me", &first).await.expect(401);
    app.get("/v1/auth/me", &second).await.expect(200);
}

#[tokio::test]
async fn an_expired_session_is_refused() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    sqlx::query("update officer_sessions set expires_at = now() - interval '1 second'")
        .execute(&app.db)
        .await
        .unwrap();
    let reply = app.get("/v1/auth/me", &token).await.expect(401);
    assert_eq!(reply.body["error"], "unauthenticated");
}

#[tokio::test]
async fn requests_without_or_with_a_bogus_token_get_401_json() {
    let app = spawn_app().await;
    let none = app
        .call(reqwest::Method::GET, "/v1/supervisees", None, None)
        .await
        .expect(401);
    assert_eq!(none.body["error"], "unauthenticated");
    app.get("/v1/supervisees", "gwo_bogus").await.expect(401);
}

#[tokio::test]
async fn the_bootstrap_admin_is_not_recreated_once_officers_exist() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let _ = app.account(&admin, "officer").await;
    let mut config = app.config.clone();
    config.bootstrap_admin = "second-admin:another-password".into();
    let _again = geoward::app::Application::build(config).await.unwrap();
    app.login("second-admin", "another-password")
        .await
        .expect(401);
    let reply = app
        .post(
            "/v1/officers",
            &admin,
            json!({"username": "x-y", "password": "short", "role": "officer", "name": "X"}),
        )
        .await
        .expect(422);
    assert_eq!(reply.body["error"], "weak_password");
}
