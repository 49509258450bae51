//! Redis pub/sub between nodes for the alert side. Channels (under `{prefix}:`):
//!
//! | channel | payload | effect on every node |
//! |---|---|---|
//! | `feed:changes` | newest stored cursor | the feed hub reads new changes |
//! | `feed:positions` | JSON array of positions | sent to officers watching positions |
//! | `rules` | supervisee id | that supervisee's cached rules are dropped |
//!
//! Pub/sub may lose messages while Redis is away; nothing depends on it for correctness: the
//! hub also polls every second and cached rules expire after `alerts.rules_refresh` (and all
//! are dropped when the subscription is re-established).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Context;
use crate::live::Live;

pub const CHANGES: &str = "feed:changes";
pub const POSITIONS: &str = "feed:positions";
pub const RULES: &str = "rules";

/// How often a node watching positions renews `feed:positions_wanted`, and its lifetime.
const WANTED_RENEW: Duration = Duration::from_secs(3);
const WANTED_TTL_MS: u64 = 10_000;

/// Announces that a supervisee's rules changed (zones, orders, leave, record), on every node.
pub async fn rules_changed(live: &Live, supervisee: Uuid) {
    let result: Result<i64, _> = live
        .query(
            redis::cmd("PUBLISH")
                .arg(live.key(RULES))
                .arg(supervisee.to_string()),
        )
        .await;
    if let Err(err) = result {
        tracing::warn!(error = %err, "cannot announce a rules change; nodes pick it up within alerts.rules_refresh");
    }
}

/// Listens until `shutdown`, resubscribing with backoff; also keeps `positions_wanted` fresh.
pub async fn listen(context: Arc<Context>, shutdown: CancellationToken) {
    let live = context.states.live().clone();
    let channels = [live.key(CHANGES), live.key(POSITIONS), live.key(RULES)];
    let wanted = tokio::spawn(keep_positions_wanted(context.clone(), shutdown.clone()));
    let mut delay = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        match live.client().get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channels).await {
                Ok(()) => {
                    delay = Duration::from_millis(100);
                    // Anything announced while we were away: re-read it all.
                    context.rules.forget_all();
                    context.hub.wake();
                    let mut messages = pubsub.on_message();
                    loop {
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            message = messages.next() => match message {
                                Some(message) => {
                                    let channel = message.get_channel_name().to_owned();
                                    let Ok(payload) = message.get_payload::<String>() else { continue };
                                    handle(&context, &channels, &channel, &payload);
                                }
                                None => break,
                            },
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, "cannot subscribe to the alert bus"),
            },
            Err(err) => tracing::warn!(error = %err, retry_in = ?delay, "alert bus unavailable"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    wanted.abort();
}

fn handle(context: &Context, channels: &[String; 3], channel: &str, payload: &str) {
    if channel == channels[0] {
        context.hub.wake();
        context.gauges.changed();
    } else if channel == channels[1] {
        context.hub.positions(payload);
    } else if channel == channels[2] {
        match payload.parse::<Uuid>() {
            Ok(id) => context.rules.forget(id),
            Err(_) => tracing::warn!("ignoring a malformed rules message"),
        }
    }
}

async fn keep_positions_wanted(context: Arc<Context>, shutdown: CancellationToken) {
    let key = context.states.positions_wanted_key();
    loop {
        if context.hub.positions_watched() {
            let result: Result<(), _> = context
                .states
                .live()
                .query(
                    redis::cmd("SET")
                        .arg(&key)
                        .arg("1")
                        .arg("PX")
                        .arg(WANTED_TTL_MS),
                )
                .await;
            if let Err(err) = result {
                tracing::debug!(error = %err, "cannot mark positions as watched");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(WANTED_RENEW) => {}
        }
    }
}
