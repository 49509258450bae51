//! The officers' live feed, `GET /v1/officer/ws`, and its browser ticket,
//! `POST /v1/auth/ws-ticket`.
//!
//! Authentication is checked before the upgrade: a bearer header, or a single-use ticket
//! (browsers cannot set headers on a WebSocket) that stands for the session it was issued to,
//! so logging out also ends the ticket's power. Officers and supervisors only (admins see no
//! location data).
//!
//! Protocol (server → officer, JSON text frames):
//! - `{"type":"alert","cursor","change","alert":{...}}` for every stored change of an alert in
//!   the officer's caseload (supervisors: every caseload), in cursor order;
//! - `{"type":"ready","cursor"}` once, after the replay of `?after=<cursor>` (if given);
//! - `{"type":"position","supervisee_id","fix":{...}}` after `{"type":"subscribe","positions":true}`
//!   (answered by `{"type":"subscribed","positions":true}`);
//! - `{"type":"error","code","message"}` for a bad frame from the officer.
//!
//! Close codes: 1001 shutdown, 1008 too many bad frames, 4001 fell behind (reconnect with
//! `?after=` the last cursor received: nothing is lost), 1011 the replay could not be read.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::OwnedSemaphorePermit;
use utoipa::ToSchema;

use super::access::{audit, Audit, Purpose, LOCATION};
use super::error::{ApiError, ApiResult};
use super::extract::{ApiQuery, ClientAddr, Principal};
use super::AppState;
use crate::alerts::feed::{FeedItem, Scope, Subscription};
use crate::alerts::view::feed_frame;
use crate::credentials::{hash_token, new_token};
use crate::store;

/// Largest frame an officer may send.
const MAX_FRAME: usize = 64 * 1024;
const PING_EVERY: Duration = Duration::from_secs(30);
/// Consecutive bad frames before the connection is closed.
const BAD_FRAME_LIMIT: u32 = 10;
/// Changes read per replay query.
const REPLAY_PAGE: i64 = 500;

#[derive(Serialize, ToSchema)]
pub struct TicketResponse {
    /// Pass as `?ticket=` to `GET /v1/officer/ws` once, before `expires_at`.
    pub ticket: String,
    pub expires_at: DateTime<Utc>,
}

fn ticket_key(state: &AppState, ticket_hash: &[u8]) -> String {
    state.live.key(&format!("ticket:{}", hex(ticket_hash)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    (text.len() % 2 == 0)
        .then(|| {
            (0..text.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
                .collect()
        })
        .flatten()
}

/// `POST /v1/auth/ws-ticket`: a single-use, short-lived ticket for the caller's session.
pub async fn ticket(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<(StatusCode, Json<TicketResponse>)> {
    let (ticket, hash) = new_token("gwt_");
    let ttl = state.config.alerts.ticket_ttl;
    let _: () = state
        .live
        .query(
            redis::cmd("SET")
                .arg(ticket_key(&state, &hash))
                .arg(hex(&principal.token_hash))
                .arg("PX")
                .arg(ttl.as_millis() as u64),
        )
        .await?;
    let expires_at = Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_default();
    Ok((
        StatusCode::CREATED,
        Json(TicketResponse { ticket, expires_at }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    pub ticket: Option<String>,
    /// Replay every change after this cursor before going live.
    pub after: Option<String>,
}

/// The session token hash the request authenticates with (bearer header or ticket).
async fn session_of(
    state: &AppState,
    headers: &HeaderMap,
    ticket: Option<&str>,
) -> ApiResult<Vec<u8>> {
    if let Some(token) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        return Ok(hash_token(token));
    }
    let ticket = ticket.ok_or(ApiError::Unauthenticated)?;
    let session: Option<String> = state
        .live
        .query(redis::cmd("GETDEL").arg(ticket_key(state, &hash_token(ticket))))
        .await?;
    session
        .as_deref()
        .and_then(unhex)
        .ok_or(ApiError::Unauthenticated)
}

/// `GET /v1/officer/ws`.
pub async fn officer_ws(
    State(state): State<AppState>,
    headers: HeaderMap,
    from: ClientAddr,
    ApiQuery(query): ApiQuery<FeedQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match prepare(&state, &headers, &from, &query).await {
        Ok((principal, after)) => {
            let ws = match ws {
                Ok(ws) => ws,
                Err(rejection) => {
                    return ApiError::BadRequest {
                        code: "not_websocket",
                        message: rejection.body_text(),
                    }
                    .into_response()
                }
            };
            let Ok(permit) = state.alerts.feed_connections.clone().try_acquire_owned() else {
                return ApiError::Unavailable("officer feed connection limit reached".into())
                    .into_response();
            };
            ws.max_message_size(MAX_FRAME)
                .max_frame_size(MAX_FRAME)
                .on_upgrade(move |socket| serve(socket, state, principal, after, permit))
        }
        Err(err) => err.into_response(),
    }
}

async fn prepare(
    state: &AppState,
    headers: &HeaderMap,
    from: &ClientAddr,
    query: &FeedQuery,
) -> ApiResult<(Principal, Option<i64>)> {
    // Checked before the ticket is spent: a bad request does not cost the officer their ticket.
    let after = query
        .after
        .as_deref()
        .map(|a| {
            a.parse::<i64>()
                .ok()
                .filter(|c| *c >= 0)
                .ok_or(ApiError::BadRequest {
                    code: "invalid_query",
                    message: "after: not a cursor received from this feed".into(),
                })
        })
        .transpose()?;
    let token_hash = session_of(state, headers, query.ticket.as_deref()).await?;
    let officer = store::officers::session_officer(&state.db, &token_hash, Utc::now())
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    if !LOCATION.admits(officer.roles) {
        return Err(ApiError::Forbidden);
    }
    let principal = Principal {
        officer_id: officer.id,
        username: officer.username,
        roles: officer.roles,
        token_hash,
    };
    audit(
        state,
        Some(&principal),
        from,
        Audit {
            action: "feed.open",
            target_type: "officer_feed",
            target_id: None,
            supervisee_id: None,
            detail: serde_json::json!({ "after": after }),
        },
    )
    .await?;
    Ok((principal, after))
}

/// Why a feed connection ends (beyond the officer closing it).
enum End {
    Closed,
    Close(u16, &'static str),
}

struct Feed {
    socket: WebSocket,
    state: AppState,
    /// The session the feed was opened with: it is checked again every
    /// `alerts.feed_session_check`, so a logged-out officer stops receiving.
    token_hash: Vec<u8>,
    subscription: Subscription,
    /// The newest cursor sent: queued changes at or below it were sent by the replay.
    sent: i64,
    watching_positions: bool,
    bad_frames: u32,
}

async fn serve(
    socket: WebSocket,
    state: AppState,
    principal: Principal,
    after: Option<i64>,
    _permit: OwnedSemaphorePermit,
) {
    let gauge = state.metrics.connections.with_label_values(&["officer"]);
    gauge.inc();
    let scope = Scope {
        officer_id: principal.officer_id,
        sees_all: principal.sees_all(Purpose::Location),
    };
    let subscription = state.alerts.hub.subscribe(scope).await;
    let sent = subscription.cursor;
    let mut feed = Feed {
        socket,
        state,
        token_hash: principal.token_hash.clone(),
        subscription,
        sent,
        watching_positions: false,
        bad_frames: 0,
    };
    let end = match feed
        .start(after, principal.caseload_filter(Purpose::Location))
        .await
    {
        Ok(()) => feed.run().await,
        Err(end) => end,
    };
    if let End::Close(code, reason) = end {
        let _ = feed
            .socket
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
    }
    if feed.watching_positions {
        feed.state.alerts.hub.watch_positions(false);
    }
    gauge.dec();
}

impl Feed {
    async fn send(&mut self, text: &str) -> Result<(), End> {
        self.socket
            .send(Message::Text(text.into()))
            .await
            .map_err(|_| End::Closed)
    }

    /// Replays changes after `after` (if given), then says `ready`.
    async fn start(&mut self, after: Option<i64>, caseload: Option<uuid::Uuid>) -> Result<(), End> {
        if let Some(after) = after {
            let mut cursor = after;
            loop {
                let changes = match store::alerts::changes_after(
                    &self.state.db,
                    cursor,
                    caseload,
                    REPLAY_PAGE,
                )
                .await
                {
                    Ok(changes) => changes,
                    Err(err) => {
                        tracing::warn!(error = %crate::api::error::chain(&err), "cannot replay the officer feed");
                        return Err(End::Close(1011, "cannot read alerts now; reconnect"));
                    }
                };
                for change in &changes {
                    let text = feed_frame(change.cursor, &change.action, &change.alert);
                    self.send(&text).await?;
                    cursor = change.cursor;
                    // Only what was really sent counts: a cursor from the future (a client
                    // bug) must not swallow the changes that will get those numbers.
                    self.sent = self.sent.max(cursor);
                }
                if changes.len() < REPLAY_PAGE as usize {
                    break;
                }
            }
        }
        let ready = serde_json::json!({ "type": "ready", "cursor": self.sent.to_string() });
        self.send(&ready.to_string()).await
    }

    async fn run(&mut self) -> End {
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        let mut session_check = tokio::time::interval(self.state.config.alerts.feed_session_check);
        session_check.tick().await;
        let shutdown = self.state.alerts.shutdown.clone();
        let overflow = self.subscription.overflow.clone();
        loop {
            let result = tokio::select! {
                _ = shutdown.cancelled() => return End::Close(1001, "geoward is shutting down"),
                _ = overflow.cancelled() => {
                    return End::Close(4001, "fell behind; reconnect with after=<last cursor>")
                }
                item = self.subscription.rx.recv() => match item {
                    Some(item) => self.deliver(item).await,
                    None => return End::Close(1011, "feed stopped"),
                },
                message = self.socket.recv() => match message {
                    Some(Ok(message)) => self.handle(message).await,
                    _ => return End::Closed,
                },
                _ = ping.tick() => self.socket.send(Message::Ping(Default::default())).await.map_err(|_| End::Closed),
                _ = session_check.tick() => self.session_stands().await,
            };
            if let Err(end) = result {
                return end;
            }
        }
    }

    /// Ends the feed (4002) once its session is gone: logged out, expired or ended by an
    /// admin. A failed check keeps the feed open (the next check decides): PostgreSQL being
    /// briefly unreachable must not cut every officer off.
    async fn session_stands(&mut self) -> Result<(), End> {
        match store::officers::session_officer(&self.state.db, &self.token_hash, Utc::now()).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(End::Close(4002, "session ended; log in again")),
            Err(err) => {
                tracing::warn!(error = %crate::api::error::chain(&err), "cannot check an officer feed's session; keeping it open");
                Ok(())
            }
        }
    }

    async fn deliver(&mut self, item: FeedItem) -> Result<(), End> {
        match item {
            FeedItem::Alert {
                cursor,
                text,
                fix_received_at,
            } => {
                if cursor <= self.sent {
                    return Ok(());
                }
                self.send(&text).await?;
                self.sent = cursor;
                if let Some(received) = fix_received_at {
                    let seconds = (Utc::now() - received).num_microseconds().unwrap_or(0) as f64
                        / 1_000_000.0;
                    self.state
                        .metrics
                        .fix_feed_duration
                        .observe(seconds.max(0.0));
                }
                Ok(())
            }
            FeedItem::Position(text) => self.send(&text).await,
        }
    }

    async fn handle(&mut self, message: Message) -> Result<(), End> {
        let reply = match message {
            Message::Text(text) => self.command(text.as_str()).await,
            Message::Binary(_) => Err(("binary_frame", "send JSON text frames".to_owned())),
            Message::Close(_) => return Err(End::Closed),
            Message::Ping(_) | Message::Pong(_) => return Ok(()),
        };
        match reply {
            Ok(text) => {
                self.bad_frames = 0;
                self.send(&text).await
            }
            Err((code, message)) => {
                self.bad_frames += 1;
                let frame =
                    serde_json::json!({ "type": "error", "code": code, "message": message });
                self.send(&frame.to_string()).await?;
                if self.bad_frames >= BAD_FRAME_LIMIT {
                    return Err(End::Close(1008, "too many bad frames"));
                }
                Ok(())
            }
        }
    }

    /// One command from the officer; the reply, or an error code and message.
    async fn command(&mut self, text: &str) -> Result<String, (&'static str, String)> {
        #[derive(Deserialize)]
        struct Command {
            #[serde(rename = "type")]
            kind: String,
            positions: Option<bool>,
        }
        let command: Command = serde_json::from_str(text)
            .map_err(|e| ("malformed_json", format!("not a command: {e}")))?;
        if command.kind != "subscribe" {
            return Err((
                "unknown_type",
                format!("unknown type {:?}; expected \"subscribe\"", command.kind),
            ));
        }
        let on = command.positions.ok_or((
            "missing_field",
            "subscribe needs \"positions\": true or false".to_owned(),
        ))?;
        if on != self.watching_positions {
            self.watching_positions = on;
            self.subscription.positions.store(on, Ordering::Relaxed);
            let hub = &self.state.alerts.hub;
            hub.watch_positions(on);
            if on {
                // Evaluators publish positions only while someone watches; say so at once.
                let key = self.state.alerts.states.positions_wanted_key();
                let _: Result<(), _> = self
                    .state
                    .live
                    .query(redis::cmd("SET").arg(key).arg("1").arg("PX").arg(10_000))
                    .await;
            }
        }
        Ok(serde_json::json!({ "type": "subscribed", "positions": on }).to_string())
    }
}
