//! Deployed flows: the definition as submitted, the compiled flow as its canonical JSON (read
//! back through the same steps as `canonical::compile`, as in the SQLite store) and extras.

use std::sync::Arc;

use tokio_postgres::Row;

use super::pool::col;
use super::PostgresStore;
use crate::model::execution::FlowKey;
use crate::store::sqlite::{compile_flow, from_json, limit_i64, to_json};
use crate::store::{FlowRecord, Page, StoreError};

const CREATE: &str = "INSERT INTO flows
        (namespace, name, id, dialect, definition, flow, created, modified, metadata)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (namespace, name) DO NOTHING";

const REPLACE: &str = "UPDATE flows SET id = $3, dialect = $4, definition = $5, flow = $6,
        created = $7, modified = $8, metadata = $9
    WHERE namespace = $1 AND name = $2";

const BY_KEY: &str = "SELECT namespace, name, id, dialect, definition, flow, created, modified,
        metadata
    FROM flows WHERE namespace = $1 AND name = $2";

const BY_ID: &str = "SELECT namespace, name, id, dialect, definition, flow, created, modified,
        metadata
    FROM flows WHERE id = $1";

const DELETE: &str = "DELETE FROM flows WHERE namespace = $1 AND name = $2";

const LIST: &str = "SELECT namespace, name, id, dialect, definition, flow, created, modified,
        metadata
    FROM flows WHERE namespace = $1 AND ($2::TEXT IS NULL OR name > $2)
    ORDER BY name LIMIT $3";

/// The stored columns of a flow record.
struct Columns {
    definition: String,
    flow: String,
    created: String,
    modified: String,
    metadata: String,
}

impl Columns {
    fn new(f: &FlowRecord) -> Result<Self, StoreError> {
        Ok(Columns {
            definition: f.definition.to_string(),
            flow: to_json(&*f.flow)?,
            created: to_json(&f.created)?,
            modified: to_json(&f.modified)?,
            metadata: to_json(&f.metadata)?,
        })
    }
}

/// Writes [`CREATE`] or [`REPLACE`] (same parameters); the number of rows written.
async fn write(
    store: &PostgresStore,
    sql: &'static str,
    f: &FlowRecord,
) -> Result<u64, StoreError> {
    let c = Columns::new(f)?;
    let mut conn = store.pool.get().await?;
    conn.execute(
        sql,
        &[
            &f.key.namespace,
            &f.key.name,
            &&*f.id,
            &f.dialect,
            &c.definition,
            &c.flow,
            &c.created,
            &c.modified,
            &c.metadata,
        ],
    )
    .await
}

fn from_row(row: &Row) -> Result<FlowRecord, StoreError> {
    Ok(FlowRecord {
        key: FlowKey::new(col::<String>(row, 0)?, col::<String>(row, 1)?),
        id: Arc::from(col::<&str>(row, 2)?),
        dialect: col(row, 3)?,
        definition: Arc::from(col::<&str>(row, 4)?),
        flow: Arc::new(compile_flow(col(row, 5)?)?),
        created: from_json(col(row, 6)?)?,
        modified: from_json(col(row, 7)?)?,
        metadata: from_json(col(row, 8)?)?,
    })
}

/// See [`crate::store::Store::create_flow`].
pub(super) async fn create(store: &PostgresStore, flow: FlowRecord) -> Result<(), StoreError> {
    if write(store, CREATE, &flow).await? == 0 {
        return Err(StoreError::AlreadyExists(flow.key.to_string()));
    }
    Ok(())
}

/// See [`crate::store::Store::replace_flow`].
pub(super) async fn replace(store: &PostgresStore, flow: FlowRecord) -> Result<(), StoreError> {
    if write(store, REPLACE, &flow).await? == 0 {
        return Err(StoreError::NotFound(flow.key.to_string()));
    }
    Ok(())
}

/// See [`crate::store::Store::get_flow`].
pub(super) async fn get(
    store: &PostgresStore,
    key: &FlowKey,
) -> Result<Option<Arc<FlowRecord>>, StoreError> {
    let mut conn = store.pool.get().await?;
    let row = conn.query_opt(BY_KEY, &[&key.namespace, &key.name]).await?;
    Ok(row.as_ref().map(from_row).transpose()?.map(Arc::new))
}

/// See [`crate::store::Store::get_flow_by_id`].
pub(super) async fn get_by_id(
    store: &PostgresStore,
    id: &str,
) -> Result<Option<Arc<FlowRecord>>, StoreError> {
    let mut conn = store.pool.get().await?;
    let row = conn.query_opt(BY_ID, &[&id]).await?;
    Ok(row.as_ref().map(from_row).transpose()?.map(Arc::new))
}

/// See [`crate::store::Store::delete_flow`].
pub(super) async fn delete(store: &PostgresStore, key: &FlowKey) -> Result<bool, StoreError> {
    let mut conn = store.pool.get().await?;
    Ok(conn.execute(DELETE, &[&key.namespace, &key.name]).await? > 0)
}

/// See [`crate::store::Store::list_flows`].
pub(super) async fn list(
    store: &PostgresStore,
    namespace: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Page<FlowRecord>, StoreError> {
    let mut conn = store.pool.get().await?;
    let rows = conn
        .query(LIST, &[&namespace, &after, &limit_i64(limit)])
        .await?;
    Page::from_overfetch(rows, limit, |r| from_row(&r), |f| f.key.name.clone())
}
