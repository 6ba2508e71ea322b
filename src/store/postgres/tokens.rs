//! Task tokens of callback tasks; completing one is a compare-and-set on its stored body, so
//! of two nodes completing the same token at once exactly one succeeds.

use super::pool::col;
use super::PostgresStore;
use crate::store::sqlite::{from_json, to_json, token_status_name};
use crate::store::{StoreError, TaskTokenRecord, TokenState};

const PUT: &str = "INSERT INTO tokens (token, execution_id, status, body) VALUES ($1, $2, $3, $4)
    ON CONFLICT (token) DO UPDATE
    SET execution_id = EXCLUDED.execution_id, status = EXCLUDED.status, body = EXCLUDED.body";

const GET: &str = "SELECT body FROM tokens WHERE token = $1";

/// Completes the token if its body is still `$4` (as read); the number of rows written.
const COMPLETE: &str = "UPDATE tokens SET status = $2, body = $3 WHERE token = $1 AND body = $4";

/// How often completing re-reads a token that changed under it before giving up.
const ATTEMPTS: usize = 16;

/// See [`crate::store::Store::put_token`].
pub(super) async fn put(store: &PostgresStore, token: TaskTokenRecord) -> Result<(), StoreError> {
    let body = to_json(&token)?;
    let mut conn = store.pool.get().await?;
    conn.execute(
        PUT,
        &[
            &token.token,
            &token.execution_id,
            &token_status_name(token.status),
            &body,
        ],
    )
    .await?;
    Ok(())
}

/// See [`crate::store::Store::get_token`].
pub(super) async fn get(
    store: &PostgresStore,
    token: &str,
) -> Result<Option<TaskTokenRecord>, StoreError> {
    let mut conn = store.pool.get().await?;
    let row = conn.query_opt(GET, &[&token]).await?;
    row.map(|r| from_json(col(&r, 0)?)).transpose()
}

/// See [`crate::store::Store::complete_token`].
pub(super) async fn complete(
    store: &PostgresStore,
    token: &str,
    outcome: Option<serde_json::Value>,
) -> Result<TaskTokenRecord, StoreError> {
    let mut conn = store.pool.get().await?;
    for _ in 0..ATTEMPTS {
        let row = conn
            .query_opt(GET, &[&token])
            .await?
            .ok_or_else(|| StoreError::NotFound(token.to_string()))?;
        let old: String = col(&row, 0)?;
        let mut rec: TaskTokenRecord = from_json(&old)?;
        if rec.status == TokenState::Completed {
            return Err(StoreError::AlreadyCompleted(token.to_string()));
        }
        rec.status = TokenState::Completed;
        rec.outcome = outcome.clone();
        let body = to_json(&rec)?;
        let status = token_status_name(rec.status);
        if conn
            .execute(COMPLETE, &[&token, &status, &body, &old])
            .await?
            == 1
        {
            return Ok(rec);
        }
    }
    Err(StoreError::Backend(format!(
        "task token {token} kept changing while being completed"
    )))
}
