//! The acknowledger: serves the queue the feeds fill, [`ACK_CONCURRENCY`] calls at a time, on
//! the caller's runtime; each call as the officer who received the alert.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

use super::{Shared, ACK_CONCURRENCY, ACK_NOTE};
use crate::api::{Api, Call, Conflict};

/// One alert to acknowledge, and the token of the officer who received it.
pub(super) struct AckJob {
    pub alert_id: String,
    pub token: Arc<str>,
}

/// Serves the acknowledgement queue until every sender is gone, then finishes what it started.
pub(super) async fn acknowledge_all(
    api: Api,
    mut jobs: mpsc::Receiver<AckJob>,
    shared: Arc<Shared>,
) {
    let limit = Arc::new(Semaphore::new(ACK_CONCURRENCY));
    let mut running = JoinSet::new();
    while let Some(job) = jobs.recv().await {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        while running.try_join_next().is_some() {}
        let (api, shared) = (api.clone(), shared.clone());
        running.spawn(async move {
            let _permit = permit;
            acknowledge(&api, &job, &shared).await;
        });
    }
    while running.join_next().await.is_some() {}
}

/// `POST /v1/alerts/{id}/acknowledge` as the receiving officer; 409 counts as done.
async fn acknowledge(api: &Api, job: &AckJob, shared: &Shared) {
    match try_acknowledge(api, job).await {
        Ok(()) => {
            shared.acknowledged.fetch_add(1, Ordering::Relaxed);
        }
        Err(kind) => shared.ack_failed(kind),
    }
    // Saturating: `stop` may have zeroed it after a timeout.
    let _ = shared
        .ack_pending
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
}

async fn try_acknowledge(api: &Api, job: &AckJob) -> Result<(), String> {
    if job.alert_id.is_empty() || !job.alert_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err("bad_alert_id".into());
    }
    let path = format!("/v1/alerts/{}/acknowledge", job.alert_id);
    let call = Call::new(Method::POST, path, StatusCode::OK)
        .bearer(&job.token)
        .json(json!({ "note": ACK_NOTE }))
        .conflict(Conflict::Done);
    match api.send::<Value>(&call).await {
        Ok(_) => Ok(()),
        Err(err) => Err(match err.status() {
            Some(status) => format!("http_{status}"),
            None => "no_reply".into(),
        }),
    }
}
