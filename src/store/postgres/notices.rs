//! Notices between nodes over PostgreSQL's `LISTEN`/`NOTIFY`: a node publishes with
//! `pg_notify` on any pooled connection; one dedicated connection per node listens and feeds
//! a broadcast channel. The listener reconnects with back-off when its connection drops
//! (notices sent while it is down are lost: a notice is a wake-up, the state is in the store).

use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, oneshot};
use tokio_postgres::{AsyncMessage, Config, NoTls};

use super::pool::pg;
use super::PostgresStore;
use crate::store::{Notice, StoreError};

/// The channel every node listens on (notifications are per database).
pub(super) const CHANNEL: &str = "flowgate_notices";

const PUBLISH: &str = "SELECT pg_notify($1, $2)";

/// First and longest wait before the listener reconnects.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// A notice as JSON: `{"notice": "finished", "execution_id": "..."}` and so on. The match in
/// the conversions below is exhaustive, so a new [`Notice`] variant does not compile until it
/// has a wire form.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
enum Wire {
    Finished { execution_id: String },
    Stop { execution_id: String },
    Reported { token: String },
    Recorded { token: String, event_id: u64 },
}

/// The payload of a notice.
pub(super) fn encode(notice: &Notice) -> Result<String, StoreError> {
    let wire = match notice.clone() {
        Notice::Finished { execution_id } => Wire::Finished { execution_id },
        Notice::Stop { execution_id } => Wire::Stop { execution_id },
        Notice::Reported { token } => Wire::Reported { token },
        Notice::Recorded { token, event_id } => Wire::Recorded { token, event_id },
    };
    serde_json::to_string(&wire).map_err(|e| StoreError::Backend(e.to_string()))
}

/// A notice from its payload.
pub(super) fn decode(payload: &str) -> Result<Notice, serde_json::Error> {
    Ok(match serde_json::from_str(payload)? {
        Wire::Finished { execution_id } => Notice::Finished { execution_id },
        Wire::Stop { execution_id } => Notice::Stop { execution_id },
        Wire::Reported { token } => Notice::Reported { token },
        Wire::Recorded { token, event_id } => Notice::Recorded { token, event_id },
    })
}

/// See [`crate::store::Store::publish`].
pub(super) async fn publish(store: &PostgresStore, notice: &Notice) -> Result<(), StoreError> {
    let payload = encode(notice)?;
    let mut conn = store.pool.get().await?;
    conn.query(PUBLISH, &[&CHANNEL, &payload]).await?;
    Ok(())
}

/// The listening task; stopped when dropped (with the store).
#[derive(Debug)]
pub(super) struct Listener(tokio::task::JoinHandle<()>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Listener {
    /// Starts listening; returns once the first connection listens, so every notice
    /// published after this returns reaches `sender`.
    pub(super) async fn start(
        config: Config,
        sender: broadcast::Sender<Notice>,
    ) -> Result<Listener, StoreError> {
        let (ready, listening) = oneshot::channel();
        let task = tokio::spawn(run(config, sender, ready));
        match listening.await {
            Ok(Ok(())) => Ok(Listener(task)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StoreError::Backend(
                "postgres notice listener ended before listening".into(),
            )),
        }
    }
}

/// Listens until aborted: one session after another, waiting longer after each failure
/// (reset once a session listens). A failure before the first session listens ends the task
/// and is reported through `ready`.
async fn run(
    config: Config,
    sender: broadcast::Sender<Notice>,
    ready: oneshot::Sender<Result<(), StoreError>>,
) {
    let mut ready = Some(ready);
    let mut delay = BACKOFF.0;
    loop {
        let outcome = session(&config, &sender, &mut ready, &mut delay).await;
        if let Some(ready) = ready.take() {
            let _ = ready.send(Err(outcome.err().unwrap_or_else(|| {
                StoreError::Backend("postgres notice connection closed".into())
            })));
            return;
        }
        match outcome {
            Ok(()) => tracing::warn!("postgres store: notice connection closed; reconnecting"),
            Err(e) => {
                tracing::warn!(error = %e, "postgres store: notice connection failed; reconnecting")
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(BACKOFF.1);
    }
}

/// One connection: `LISTEN`, then forward every notification until the connection ends.
async fn session(
    config: &Config,
    sender: &broadcast::Sender<Notice>,
    ready: &mut Option<oneshot::Sender<Result<(), StoreError>>>,
    delay: &mut Duration,
) -> Result<(), StoreError> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(pg)?;
    // The connection has to be polled for the LISTEN to go out: both run in one loop.
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    let listen_sql = format!("LISTEN {CHANNEL}");
    let listen = client.batch_execute(&listen_sql);
    tokio::pin!(listen);
    let mut listening = false;
    loop {
        tokio::select! {
            done = &mut listen, if !listening => {
                done.map_err(pg)?;
                listening = true;
                *delay = BACKOFF.0;
                if let Some(ready) = ready.take() {
                    let _ = ready.send(Ok(()));
                }
            }
            message = messages.next() => match message {
                Some(Ok(AsyncMessage::Notification(n))) if n.channel() == CHANNEL => {
                    match decode(n.payload()) {
                        // No receiver is not an error: nobody subscribed yet.
                        Ok(notice) => { let _ = sender.send(notice); }
                        Err(e) => tracing::warn!(
                            error = %e, payload = n.payload(),
                            "postgres store: unreadable notice dropped"
                        ),
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(pg(e)),
                None => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_notice_survives_its_wire_form() {
        let all = [
            Notice::Finished {
                execution_id: "e\"1".into(),
            },
            Notice::Stop {
                execution_id: "é/2".into(),
            },
            Notice::Reported { token: "t".into() },
            Notice::Recorded {
                token: "t".into(),
                event_id: u64::MAX,
            },
        ];
        for n in all {
            let text = encode(&n).unwrap();
            assert_eq!(decode(&text).unwrap(), n, "{text}");
        }
        assert_eq!(
            encode(&Notice::Recorded {
                token: "k".into(),
                event_id: 7
            })
            .unwrap(),
            r#"{"notice":"recorded","token":"k","event_id":7}"#
        );
        assert!(decode(r#"{"notice":"unknown"}"#).is_err());
    }
}
