//! Pending timers (Wait states and retry back-offs), listed in due order like the SQLite store.

use super::pool::col;
use super::PostgresStore;
use crate::store::sqlite::{from_json, time_key, to_json};
use crate::store::{StoreError, TimerRecord};

const PUT: &str = "INSERT INTO timers (id, execution_id, due, body) VALUES ($1, $2, $3, $4)
    ON CONFLICT (id) DO UPDATE
    SET execution_id = EXCLUDED.execution_id, due = EXCLUDED.due, body = EXCLUDED.body";

const DELETE: &str = "DELETE FROM timers WHERE id = $1";

const ALL: &str = "SELECT body FROM timers ORDER BY due, id";

/// See [`crate::store::Store::put_timer`].
pub(super) async fn put(store: &PostgresStore, timer: TimerRecord) -> Result<(), StoreError> {
    let body = to_json(&timer)?;
    let mut conn = store.pool.get().await?;
    conn.execute(
        PUT,
        &[&timer.id, &timer.execution_id, &time_key(timer.due), &body],
    )
    .await?;
    Ok(())
}

/// See [`crate::store::Store::delete_timer`].
pub(super) async fn delete(store: &PostgresStore, id: &str) -> Result<(), StoreError> {
    let mut conn = store.pool.get().await?;
    conn.execute(DELETE, &[&id]).await?;
    Ok(())
}

/// See [`crate::store::Store::timers`].
pub(super) async fn all(store: &PostgresStore) -> Result<Vec<TimerRecord>, StoreError> {
    let mut conn = store.pool.get().await?;
    conn.query(ALL, &[])
        .await?
        .iter()
        .map(|r| from_json(col(r, 0)?))
        .collect()
}
