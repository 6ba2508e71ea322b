//! Dialect records: JSON values under `(kind, key)`, listed in key (byte) order.

use super::pool::col;
use super::PostgresStore;
use crate::store::sqlite::{from_json, limit_i64, to_json};
use crate::store::{Page, PutMode, StoreError};

const CREATE: &str = "INSERT INTO records (kind, key, value) VALUES ($1, $2, $3)
    ON CONFLICT (kind, key) DO NOTHING";

const REPLACE: &str = "UPDATE records SET value = $3 WHERE kind = $1 AND key = $2";

const UPSERT: &str = "INSERT INTO records (kind, key, value) VALUES ($1, $2, $3)
    ON CONFLICT (kind, key) DO UPDATE SET value = EXCLUDED.value";

const GET: &str = "SELECT value FROM records WHERE kind = $1 AND key = $2";

const DELETE: &str = "DELETE FROM records WHERE kind = $1 AND key = $2";

/// Keys of kind `$1` starting with `$2`, after `$3` (or from the prefix), in key order.
const LIST: &str = "SELECT key, value FROM records
    WHERE kind = $1 AND key >= $2 AND starts_with(key, $2)
      AND ($3::TEXT IS NULL OR key > $3)
    ORDER BY key LIMIT $4";

/// See [`crate::store::Store::put_record`]: each mode is one statement, so concurrent writers
/// on several nodes get the same answers as on one.
pub(super) async fn put(
    store: &PostgresStore,
    kind: &str,
    key: &str,
    value: serde_json::Value,
    mode: PutMode,
) -> Result<(), StoreError> {
    let text = to_json(&value)?;
    let sql = match mode {
        PutMode::Create => CREATE,
        PutMode::Replace => REPLACE,
        PutMode::Upsert => UPSERT,
    };
    let mut conn = store.pool.get().await?;
    let n = conn.execute(sql, &[&kind, &key, &text]).await?;
    match (mode, n) {
        (PutMode::Create, 0) => Err(StoreError::AlreadyExists(format!("{kind}/{key}"))),
        (PutMode::Replace, 0) => Err(StoreError::NotFound(format!("{kind}/{key}"))),
        _ => Ok(()),
    }
}

/// See [`crate::store::Store::get_record`].
pub(super) async fn get(
    store: &PostgresStore,
    kind: &str,
    key: &str,
) -> Result<Option<serde_json::Value>, StoreError> {
    let mut conn = store.pool.get().await?;
    let row = conn.query_opt(GET, &[&kind, &key]).await?;
    row.map(|r| from_json(col(&r, 0)?)).transpose()
}

/// See [`crate::store::Store::delete_record`].
pub(super) async fn delete(
    store: &PostgresStore,
    kind: &str,
    key: &str,
) -> Result<bool, StoreError> {
    let mut conn = store.pool.get().await?;
    Ok(conn.execute(DELETE, &[&kind, &key]).await? > 0)
}

/// See [`crate::store::Store::list_records`].
pub(super) async fn list(
    store: &PostgresStore,
    kind: &str,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Page<(String, serde_json::Value)>, StoreError> {
    let mut conn = store.pool.get().await?;
    let rows = conn
        .query(LIST, &[&kind, &prefix, &after, &limit_i64(limit)])
        .await?;
    Page::from_overfetch(
        rows,
        limit,
        |r| Ok::<_, StoreError>((col::<String>(&r, 0)?, from_json(col(&r, 1)?)?)),
        |(k, _)| k.clone(),
    )
}
