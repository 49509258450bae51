//! A small typed client for geoward's HTTP API (`src/api/routes.rs`), as provisioning and the
//! officers' watchers use it.
//!
//! # Invariants
//! - Every call is tried at most [`MAX_ATTEMPTS`] times: again after a transport error, a 5xx or
//!   a 429 (waiting 100 ms, doubling, with jitter; a `Retry-After` is honoured up to 5 s), never
//!   after any other status.
//! - A 409 is an error unless the call says otherwise ([`Conflict`]): `Done` for steps whose 409
//!   means "already in that state" (acknowledging an alert), `ExistsIfRetried` for creates whose
//!   409 means "exists", accepted only when an earlier attempt of the same call may have reached
//!   the server (no reply, or a 5xx), i.e. the conflict is with our own first attempt.
//! - Errors name the method and path; an unexpected status carries the reply's body (cut to
//!   [`BODY_LIMIT`] characters). Transport errors keep their cause as `source`.

use std::time::Duration;

use rand::Rng as _;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

/// Attempts per call (the first one included).
pub const MAX_ATTEMPTS: u32 = 5;
/// Wait before the second attempt; doubled before each later one.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);
/// Characters of a reply body kept in an error.
pub const BODY_LIMIT: usize = 1000;
/// Timeout of a whole request (connect, send, reply).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept by [`Api::new`].
pub const DEFAULT_POOL: usize = 1024;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("{url:?} is not a base URL like http://127.0.0.1:8080: {reason}")]
    BadUrl { url: String, reason: String },
    /// No usable reply (refused, reset, timed out), after `attempts` attempts.
    #[error("{method} {path}: no reply after {attempts} attempt(s)")]
    Transport {
        method: Method,
        path: String,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    /// A reply with a status other than the expected one (after any retries).
    #[error("{method} {path}: expected {expected}, got {status}: {body}")]
    Status {
        method: Method,
        path: String,
        expected: u16,
        status: u16,
        body: String,
    },
    /// The expected status, but a body that is not what the call reads.
    #[error("{method} {path}: unreadable {status} reply ({detail}): {body}")]
    Decode {
        method: Method,
        path: String,
        status: u16,
        detail: String,
        body: String,
    },
}

impl ApiError {
    /// The HTTP status of a reply, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Status { status, .. } | ApiError::Decode { status, .. } => Some(*status),
            ApiError::Client(_) | ApiError::BadUrl { .. } | ApiError::Transport { .. } => None,
        }
    }
}

/// What a 409 means for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// An error.
    Fail,
    /// The thing exists: done, if an earlier attempt of this call may have made it.
    ExistsIfRetried,
    /// Already in the state asked for: done.
    Done,
}

/// A successful reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply<T> {
    /// The expected status, with its body.
    Ok(T),
    /// A 409 the call's [`Conflict`] accepts (there is no body to read).
    Conflict,
}

/// One call: method, path (from the base URL), bearer token, JSON body, expected status.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub method: Method,
    pub path: String,
    pub token: Option<&'a str>,
    pub body: Option<Value>,
    pub expect: StatusCode,
    pub conflict: Conflict,
}

impl<'a> Call<'a> {
    pub fn new(method: Method, path: impl Into<String>, expect: StatusCode) -> Call<'a> {
        Call {
            method,
            path: path.into(),
            token: None,
            body: None,
            expect,
            conflict: Conflict::Fail,
        }
    }

    pub fn bearer(mut self, token: &'a str) -> Self {
        self.token = Some(token);
        self
    }

    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    pub fn conflict(mut self, conflict: Conflict) -> Self {
        self.conflict = conflict;
        self
    }
}

/// A logged-in account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token: String,
    pub officer_id: Uuid,
}

/// geoward's API at `base` (`http://host:port`, no trailing slash needed).
#[derive(Debug, Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

impl Api {
    /// A client for geoward at `base` (`http://host:port`), keeping up to [`DEFAULT_POOL`]
    /// idle connections.
    pub fn new(base: &str) -> Result<Api, ApiError> {
        Api::with_pool(base, DEFAULT_POOL)
    }

    /// A client keeping up to `concurrency` idle connections (as many as calls run at once),
    /// each call limited to [`REQUEST_TIMEOUT`].
    pub fn with_pool(base: &str, concurrency: usize) -> Result<Api, ApiError> {
        let base = check_base(base)?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency.max(1))
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .map_err(ApiError::Client)?;
        Ok(Api { http, base })
    }

    /// `POST /v1/auth/login`: the bearer token.
    pub async fn login(&self, username: &str, password: &str) -> Result<String, ApiError> {
        Ok(self.session(username, password).await?.token)
    }

    /// `POST /v1/auth/login`: the token and the account's id.
    pub async fn session(&self, username: &str, password: &str) -> Result<Session, ApiError> {
        #[derive(Deserialize)]
        struct Officer {
            id: Uuid,
        }
        #[derive(Deserialize)]
        struct LoginReply {
            token: String,
            officer: Officer,
        }
        let body = json!({ "username": username, "password": password });
        let reply: LoginReply = self
            .call(Method::POST, "/v1/auth/login", None, Some(body), 201)
            .await?;
        Ok(Session {
            token: reply.token,
            officer_id: reply.officer.id,
        })
    }

    /// One call expecting `expect` (a 409 is an error); the reply read as `T` (`()` or
    /// [`Value`] for an empty body).
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        expect: u16,
    ) -> Result<T, ApiError> {
        let expect = StatusCode::from_u16(expect).unwrap_or(StatusCode::OK);
        let mut call = Call::new(method, path, expect);
        call.token = token;
        call.body = body;
        match self.send(&call).await? {
            Reply::Ok(value) => Ok(value),
            // Conflict::Fail accepts no 409; kept total rather than asserted.
            Reply::Conflict => Err(ApiError::Status {
                method: call.method,
                path: call.path,
                expected: expect.as_u16(),
                status: 409,
                body: String::new(),
            }),
        }
    }

    /// One call, retried as the module doc says.
    pub async fn send<T: DeserializeOwned>(&self, call: &Call<'_>) -> Result<Reply<T>, ApiError> {
        let url = format!("{}{}", self.base, call.path);
        // Whether an earlier attempt may have been carried out by the server.
        let mut maybe_done = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self.http.request(call.method.clone(), &url);
            if let Some(token) = call.token {
                request = request.bearer_auth(token);
            }
            if let Some(body) = &call.body {
                request = request.json(body);
            }
            let reply = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(response.headers());
                    response
                        .text()
                        .await
                        .map(|text| (status, text, retry_after))
                }
                Err(err) => Err(err),
            };
            let (status, text, retry_after) = match reply {
                Ok(reply) => reply,
                Err(source) => {
                    maybe_done |= !source.is_connect();
                    if attempt >= MAX_ATTEMPTS {
                        return Err(ApiError::Transport {
                            method: call.method.clone(),
                            path: call.path.clone(),
                            attempts: attempt,
                            source,
                        });
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
            };
            if status == call.expect {
                return decode(call, status, &text).map(Reply::Ok);
            }
            if status == StatusCode::CONFLICT && accepts_conflict(call.conflict, maybe_done) {
                return Ok(Reply::Conflict);
            }
            if retryable(status) && attempt < MAX_ATTEMPTS {
                maybe_done |= status.is_server_error();
                let wait = backoff(attempt).max(retry_after.unwrap_or_default());
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(ApiError::Status {
                method: call.method.clone(),
                path: call.path.clone(),
                expected: call.expect.as_u16(),
                status: status.as_u16(),
                body: cut(&text),
            });
        }
    }

    /// The WebSocket URL of `path`: `http://host:port` → `ws://host:port` + `path`.
    pub fn ws_url(&self, path: &str) -> String {
        ws_url(&self.base, path)
    }
}

/// `base` without a trailing slash, if it is an http(s) URL with a host and no path or query.
pub fn check_base(base: &str) -> Result<String, ApiError> {
    let bad = |reason: &str| ApiError::BadUrl {
        url: base.to_owned(),
        reason: reason.to_owned(),
    };
    let url = reqwest::Url::parse(base).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("the scheme must be http or https"));
    }
    if !url.host_str().is_some_and(|h| !h.is_empty()) {
        return Err(bad("no host"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            "geoward's routes start at the root: no path, query or fragment",
        ));
    }
    Ok(base.trim_end_matches('/').to_owned())
}

/// `http://h:p` → `ws://h:p{path}`, `https://` → `wss://`; other schemes are kept.
pub fn ws_url(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else {
        base.to_owned()
    };
    format!("{base}{path}")
}

/// Whether a status is worth another attempt: overload or a failure of the server's.
pub fn retryable(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// Whether a 409 counts as done under `conflict`, given whether an earlier attempt may have
/// been carried out.
pub fn accepts_conflict(conflict: Conflict, maybe_done: bool) -> bool {
    match conflict {
        Conflict::Fail => false,
        Conflict::ExistsIfRetried => maybe_done,
        Conflict::Done => true,
    }
}

/// The wait after failed attempt `attempt` (1-based): 100 ms doubling, plus up to half again.
pub fn backoff(attempt: u32) -> Duration {
    let base = FIRST_BACKOFF * 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
    let jitter_ms = rand::thread_rng().gen_range(0..=base.as_millis() as u64 / 2);
    base + Duration::from_millis(jitter_ms)
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

fn decode<T: DeserializeOwned>(
    call: &Call<'_>,
    status: StatusCode,
    text: &str,
) -> Result<T, ApiError> {
    let source = if text.trim().is_empty() { "null" } else { text };
    serde_json::from_str(source).map_err(|e| ApiError::Decode {
        method: call.method.clone(),
        path: call.path.clone(),
        status: status.as_u16(),
        detail: e.to_string(),
        body: cut(text),
    })
}

/// `text` cut to [`BODY_LIMIT`] characters (marked with `…`).
pub fn cut(text: &str) -> String {
    match text.char_indices().nth(BODY_LIMIT) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
