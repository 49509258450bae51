//! Test harness: a real geoward on port 0 with a fresh PostgreSQL database and a unique Redis
//! key prefix per test, torn down (database dropped, keys deleted) when the test ends.
//!
//! Stores come from `GEOWARD_TEST_DATABASE_URL` (a superuser URL that may CREATE DATABASE;
//! default `postgres://postgres@127.0.0.1:5432/postgres`) and `GEOWARD_TEST_REDIS_URL`
//! (default `redis://127.0.0.1:6379`). `scripts/test` sets both, starting private stores when
//! none run. A test that cannot reach them fails and says so; it never skips.
#![allow(dead_code)]

pub mod browser;
pub mod device;
pub mod monitored;
pub mod officer;
pub mod private_stores;
pub mod server_process;

use std::net::SocketAddr;
use std::time::Duration;

use geoward::app::Application;
use geoward::clock::Clock;
use geoward::config::Config;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password-1";
pub const PASSWORD: &str = "officer-password-1";

pub fn admin_database_url() -> String {
    std::env::var("GEOWARD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("GEOWARD_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

const HOW_TO_START: &str = "run the suite with scripts/test, which starts private PostgreSQL and \
    Redis when none run, or point GEOWARD_TEST_DATABASE_URL / GEOWARD_TEST_REDIS_URL at running ones";

/// `url` with its database name replaced.
pub fn with_database(url: &str, database: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{database}{query}", &base[..host_end])
}

/// A fresh, empty database; returns its name and URL.
pub async fn fresh_database() -> (String, String) {
    let admin_url = admin_database_url();
    let mut conn = tokio::time::timeout(Duration::from_secs(10), PgConnection::connect(&admin_url))
        .await
        .unwrap_or_else(|_| {
            panic!("timed out connecting to PostgreSQL at {admin_url}: {HOW_TO_START}")
        })
        .unwrap_or_else(|e| {
            panic!("cannot connect to PostgreSQL at {admin_url} ({e}): {HOW_TO_START}")
        });
    let name = format!("gw_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("create database {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let _ = conn.close().await;
    let url = with_database(&admin_url, &name);
    (name, url)
}

/// Checks Redis answers, with a clear failure when it does not.
pub async fn require_redis(url: &str) {
    let client = redis::Client::open(url).unwrap_or_else(|e| panic!("bad Redis URL {url}: {e}"));
    let mut conn = tokio::time::timeout(
        Duration::from_secs(5),
        client.get_multiplexed_async_connection(),
    )
    .await
    .unwrap_or_else(|_| panic!("timed out connecting to Redis at {url}: {HOW_TO_START}"))
    .unwrap_or_else(|e| panic!("cannot connect to Redis at {url} ({e}): {HOW_TO_START}"));
    let _: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("Redis at {url} does not answer PING ({e}): {HOW_TO_START}"));
}

/// Drops a test database and deletes a Redis prefix, from a plain thread (usable in Drop).
fn teardown(database: String, redis_url: String, prefix: String) {
    let work = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("teardown runtime");
        runtime.block_on(async move {
            if let Ok(mut conn) = PgConnection::connect(&admin_database_url()).await {
                let _ = sqlx::query(&format!("drop database if exists {database} with (force)"))
                    .execute(&mut conn)
                    .await;
            }
            if let Ok(client) = redis::Client::open(redis_url.as_str()) {
                if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                    let keys: Vec<String> = redis::cmd("KEYS")
                        .arg(format!("{prefix}:*"))
                        .query_async(&mut conn)
                        .await
                        .unwrap_or_default();
                    if !keys.is_empty() {
                        let _: Result<(), _> =
                            redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
                    }
                }
            }
        });
    });
    let _ = work.join();
}

/// A running geoward with private stores, and a client speaking to it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub http: reqwest::Client,
    pub db: PgPool,
    pub config: Config,
    pub database: String,
    pub redis_prefix: String,
    /// This node's clock: advancing it moves the node's alert timing (escalation, lost
    /// contact) forward without waiting.
    pub clock: Clock,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// The defaults adjusted for a test: port 0, fresh database, unique Redis prefix.
pub async fn test_config() -> (Config, String) {
    let (database, url) = fresh_database().await;
    let redis = redis_url();
    require_redis(&redis).await;
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".into();
    config.database.url = url;
    config.database.max_connections = 8;
    config.redis.url = redis;
    config.redis.key_prefix = format!("gwtest-{}", uuid::Uuid::new_v4().simple());
    config.bootstrap_admin = format!("{ADMIN_USER}:{ADMIN_PASSWORD}");
    (config, database)
}

pub async fn spawn_app() -> TestApp {
    let (config, database) = test_config().await;
    spawn_app_with(config, database).await
}

pub async fn spawn_app_with(config: Config, database: String) -> TestApp {
    let app = Application::build(config.clone())
        .await
        .expect("geoward starts");
    let addr = app.local_addr();
    let clock = app.clock();
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let server = tokio::spawn(async move {
        app.run(token).await.expect("geoward serves");
    });
    let db = PgPool::connect(&config.database.url)
        .await
        .expect("test pool");
    TestApp {
        addr,
        base: format!("http://{addr}"),
        http: http_client(),
        db,
        redis_prefix: config.redis.key_prefix.clone(),
        config,
        database,
        clock,
        shutdown,
        server: Some(server),
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Another geoward node of the same system as a [`TestApp`]: same database, same Redis
/// prefix, its own port and its own clock. Dropping it stops the node but leaves the stores
/// to the `TestApp` (declare the node after the app, so it is dropped first).
pub struct TestNode {
    pub addr: SocketAddr,
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Clock,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl TestApp {
    /// Starts a second node on the same stores (configuration as this app's, on port 0).
    pub async fn second_node(&self) -> TestNode {
        let mut config = self.config.clone();
        config.listen = "127.0.0.1:0".into();
        self.node_with(config).await
    }

    /// Starts another node with `config` (which should name this app's stores).
    pub async fn node_with(&self, config: Config) -> TestNode {
        let app = Application::build(config)
            .await
            .expect("second geoward node starts");
        let addr = app.local_addr();
        let clock = app.clock();
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let server = tokio::spawn(async move {
            app.run(token).await.expect("second geoward node serves");
        });
        TestNode {
            addr,
            base: format!("http://{addr}"),
            http: http_client(),
            clock,
            shutdown,
            server: Some(server),
        }
    }

    /// `ws://host:port` of this app.
    pub fn ws_base(&self) -> String {
        format!("ws://{}", self.addr)
    }
}

impl TestNode {
    /// Asks the node to shut down and waits (bounded) until it has drained.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(30), server)
                .await
                .expect("geoward node drains within 30 s")
                .expect("geoward node exits cleanly");
        }
    }

    /// `ws://host:port` of this node.
    pub fn ws_base(&self) -> String {
        format!("ws://{}", self.addr)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        send(&self.http, &self.base, method, path, token, body).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Option<Value>) -> Reply {
        self.call(Method::PUT, path, Some(token), body).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    pub async fn token(&self, username: &str, password: &str) -> String {
        let reply = self
            .call(
                Method::POST,
                "/v1/auth/login",
                None,
                Some(json!({ "username": username, "password": password })),
            )
            .await
            .expect(201);
        reply.body["token"].as_str().expect("token").to_owned()
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

impl TestApp {
    /// Asks the server to shut down and waits (bounded) until it has drained.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(30), server)
                .await
                .expect("geoward drains within 30 s")
                .expect("geoward exits cleanly");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.abort();
        }
        teardown(
            self.database.clone(),
            self.config.redis.url.clone(),
            self.redis_prefix.clone(),
        );
    }
}

/// A reply: status and JSON body (Null when there is none or it is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub fn id(&self) -> String {
        self.body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {:?} {}", self.status, self.text))
            .to_owned()
    }

    pub fn expect(self, status: u16) -> Reply {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected reply: {}",
            self.text
        );
        self
    }
}

/// One request to `base`: the reply's status and body.
async fn send(
    http: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut request = http.request(method, format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let text = response.text().await.expect("body read");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply { status, body, text }
}

impl TestApp {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        send(&self.http, &self.base, method, path, token, body).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Option<Value>) -> Reply {
        self.call(Method::PUT, path, Some(token), body).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    pub async fn login(&self, username: &str, password: &str) -> Reply {
        self.call(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({ "username": username, "password": password })),
        )
        .await
    }

    pub async fn token(&self, username: &str, password: &str) -> String {
        let reply = self.login(username, password).await.expect(201);
        reply.body["token"].as_str().expect("token").to_owned()
    }

    pub async fn admin_token(&self) -> String {
        self.token(ADMIN_USER, ADMIN_PASSWORD).await
    }

    /// Creates an account with `role` and logs it in: (officer id, token).
    pub async fn account(&self, admin: &str, role: &str) -> (String, String) {
        let username = format!("{role}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let id = self
            .post(
                "/v1/officers",
                admin,
                json!({ "username": username, "password": PASSWORD, "role": role, "name": format!("Test {role}") }),
            )
            .await
            .expect(201)
            .id();
        (id, self.token(&username, PASSWORD).await)
    }

    /// Creates a supervisee in `officer_id`'s caseload.
    pub async fn supervisee(&self, token: &str, officer_id: &str) -> String {
        self.post(
            "/v1/supervisees",
            token,
            json!({ "name": "Zhang San", "officer_id": officer_id, "timezone": "Asia/Shanghai", "lost_contact_after_s": 600 }),
        )
        .await
        .expect(201)
        .id()
    }

    /// A square zone of about 200 m around a point near Zhoukou.
    pub fn square(lon: f64, lat: f64, half_deg: f64) -> Value {
        json!({
            "type": "Polygon",
            "coordinates": [[
                [lon - half_deg, lat - half_deg], [lon + half_deg, lat - half_deg],
                [lon + half_deg, lat + half_deg], [lon - half_deg, lat + half_deg],
                [lon - half_deg, lat - half_deg]
            ]]
        })
    }

    /// Audit rows with this action.
    pub async fn audit_rows(
        &self,
        action: &str,
    ) -> Vec<(Option<uuid::Uuid>, Option<String>, Option<uuid::Uuid>)> {
        sqlx::query_as("select actor_id, remote_addr, supervisee_id from audit_log where action = $1 order by id")
            .bind(action)
            .fetch_all(&self.db)
            .await
            .expect("audit query")
    }
}
