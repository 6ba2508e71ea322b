//! The versioned schema and its migration at start-up.

use tokio_postgres::Config;

use super::pool::{open, pg};
use crate::store::StoreError;

/// The schema, one step per version: step `i` brings the database from version `i` to `i + 1`.
///
/// Records are JSON text (the model's serde form, read back exactly as written) next to the
/// columns the queries need. Times that are compared or ordered are integer nanoseconds since
/// the epoch (as in the SQLite store: `TIMESTAMPTZ` keeps microseconds only); the lease
/// deadline is a `TIMESTAMPTZ` of the database's clock, the one clock every node shares.
/// Keys that are ordered use the "C" collation, so listings follow byte order like the
/// other stores, whatever the database's locale.
pub const MIGRATIONS: &[&str] = &[
    // Version 1.
    r#"CREATE TABLE flows (
        namespace TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        id TEXT COLLATE "C" NOT NULL UNIQUE,
        dialect TEXT NOT NULL,
        definition TEXT NOT NULL,
        flow TEXT NOT NULL,
        created TEXT NOT NULL,
        modified TEXT NOT NULL,
        metadata TEXT NOT NULL,
        PRIMARY KEY (namespace, name)
    );
    CREATE TABLE executions (
        id TEXT COLLATE "C" PRIMARY KEY,
        seq BIGINT GENERATED ALWAYS AS IDENTITY,
        flow_id TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        status TEXT NOT NULL,
        started BIGINT NOT NULL,
        record TEXT NOT NULL,
        next_pos BIGINT NOT NULL,
        rev BIGINT NOT NULL DEFAULT 0,
        owner TEXT NULL,
        epoch BIGINT NOT NULL DEFAULT 0,
        lease_until TIMESTAMPTZ NULL,
        UNIQUE (flow_id, name)
    );
    CREATE UNIQUE INDEX executions_flow_seq ON executions (flow_id, seq);
    CREATE INDEX executions_active ON executions (seq)
        WHERE status IN ('Starting', 'Running');
    CREATE TABLE events (
        execution_id TEXT COLLATE "C" NOT NULL,
        pos BIGINT NOT NULL,
        event_id BIGINT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (execution_id, pos)
    );
    CREATE INDEX events_id ON events (execution_id, event_id);
    CREATE TABLE timers (
        id TEXT COLLATE "C" PRIMARY KEY,
        execution_id TEXT NOT NULL,
        due BIGINT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX timers_due ON timers (due, id);
    CREATE TABLE tokens (
        token TEXT COLLATE "C" PRIMARY KEY,
        execution_id TEXT NOT NULL,
        status TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX tokens_execution ON tokens (execution_id);
    CREATE TABLE records (
        kind TEXT COLLATE "C" NOT NULL,
        key TEXT COLLATE "C" NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (kind, key)
    );"#,
];

/// The advisory lock that serializes migrations of nodes starting at once ("flowgate").
const MIGRATION_LOCK: i64 = 0x666c_6f77_6761_7465;

/// Applies the missing steps of [`MIGRATIONS`] in one transaction, under a transaction-level
/// advisory lock (a second node waits, then finds nothing to do); refuses a database written
/// by a newer flowgate. Returns the number of steps applied.
pub(super) async fn migrate(config: &Config) -> Result<usize, StoreError> {
    let mut client = open(config).await?;
    let tx = client.transaction().await.map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .await
        .map_err(pg)?;
    let current = version_of(&tx).await?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "database schema version {current} is newer than this flowgate ({})",
            MIGRATIONS.len()
        )));
    }
    let pending = &MIGRATIONS[current..];
    for step in pending {
        tx.batch_execute(step).await.map_err(pg)?;
    }
    if !pending.is_empty() {
        let version =
            i32::try_from(MIGRATIONS.len()).map_err(|e| StoreError::Backend(e.to_string()))?;
        tx.execute("DELETE FROM schema_version", &[])
            .await
            .map_err(pg)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&version],
        )
        .await
        .map_err(pg)?;
    }
    tx.commit().await.map_err(pg)?;
    Ok(pending.len())
}

/// The schema version recorded in the database (0 before the first migration).
pub(super) async fn version_of(
    client: &(impl tokio_postgres::GenericClient + Sync),
) -> Result<usize, StoreError> {
    let row = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_version",
            &[],
        )
        .await
        .map_err(pg)?;
    let v: i64 = row.try_get(0).map_err(pg)?;
    usize::try_from(v).map_err(|e| StoreError::Backend(e.to_string()))
}
