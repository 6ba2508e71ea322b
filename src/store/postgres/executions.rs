//! Executions and their history, with the fencing of [`super::leases`] on every write.

use super::leases::micros;
use super::pool::col;
use super::PostgresStore;
use crate::model::{Event, ExecutionRecord};
use crate::store::sqlite::{from_json, limit_i64, sequence_cursor, status_name, time_key, to_json};
use crate::store::{ExecutionFilter, ExecutionUpdate, InsertOutcome, Page, StoreError};

/// Inserts an execution (`$7` owner, or NULL; lease `$8` µs) and its first event (`$9` id,
/// `$10` body) unless the flow has an execution of that name; the number inserted (0 or 1).
const INSERT: &str = "WITH x AS (
        INSERT INTO executions
            (id, flow_id, name, status, started, record, owner, epoch, lease_until, next_pos)
        VALUES ($1, $2, $3, $4, $5, $6, $7::TEXT,
            CASE WHEN $7::TEXT IS NULL THEN 0 ELSE 1 END,
            CASE WHEN $7::TEXT IS NULL THEN NULL
                 ELSE now() + $8::BIGINT * interval '1 microsecond' END,
            1)
        ON CONFLICT (flow_id, name) DO NOTHING
        RETURNING id
    ), e AS (
        INSERT INTO events (execution_id, pos, event_id, body)
        SELECT x.id, 0, $9::BIGINT, $10::TEXT FROM x
    )
    SELECT count(*) FROM x";

const BY_NAME: &str = "SELECT record FROM executions WHERE flow_id = $1 AND name = $2";

const BY_ID: &str = "SELECT record FROM executions WHERE id = $1";

/// What a commit reads first: the record and the lease columns, with the row's revision.
const FOR_COMMIT: &str = "SELECT record, owner, epoch, rev FROM executions WHERE id = $1";

/// Writes the updated record and appends the events (ids `$9`, bodies `$10`) if the row is
/// still at revision `$2` (nobody claimed, released or changed it since it was read) and still
/// has the owner `$11` and epoch `$12` the fencing decision saw (this node at the epoch it
/// holds, or no owner for a retry of a finished execution); the number of rows written (0 or
/// 1). Lease `$7`: 0 keeps it, 1 sets `now() + $8 µs`, 2 clears it.
const COMMIT: &str = "WITH x AS (
        UPDATE executions
        SET status = $3, record = $4, owner = $5::TEXT, epoch = $6::BIGINT,
            lease_until = CASE $7::INT
                WHEN 1 THEN now() + $8::BIGINT * interval '1 microsecond'
                WHEN 2 THEN NULL
                ELSE lease_until END,
            next_pos = next_pos + cardinality($9::BIGINT[]),
            rev = rev + 1
        WHERE id = $1 AND rev = $2::BIGINT
          AND owner IS NOT DISTINCT FROM $11::TEXT AND epoch = $12::BIGINT
        RETURNING id, next_pos - cardinality($9::BIGINT[]) AS base
    ), e AS (
        INSERT INTO events (execution_id, pos, event_id, body)
        SELECT x.id, x.base + t.ord - 1, t.event_id, t.body
        FROM x, unnest($9::BIGINT[], $10::TEXT[]) WITH ORDINALITY AS t(event_id, body, ord)
    )
    SELECT count(*) FROM x";

/// Whether the execution exists, and the bodies of its events after an event id, in order.
const HISTORY: &str = "SELECT EXISTS (SELECT 1 FROM executions WHERE id = $1),
        ARRAY(SELECT body FROM events WHERE execution_id = $1 AND event_id > $2
              ORDER BY pos LIMIT $3)";

const LIST: &str = "SELECT seq, record FROM executions
    WHERE flow_id = $1 AND seq > $2
      AND ($3::TEXT IS NULL OR status = $3)
      AND ($4::TEXT IS NULL OR starts_with(name, $4))
      AND ($5::BIGINT IS NULL OR started >= $5)
      AND ($6::BIGINT IS NULL OR started <= $6)
    ORDER BY seq LIMIT $7";

/// How often a commit re-reads a row that changed under it before giving up.
const COMMIT_ATTEMPTS: usize = 16;

/// What a commit does to the lease columns (the `$7` of [`COMMIT`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lease {
    Keep = 0,
    Take = 1,
    Clear = 2,
}

fn event_columns(events: &[Event]) -> Result<(Vec<i64>, Vec<String>), StoreError> {
    let mut ids = Vec::with_capacity(events.len());
    let mut bodies = Vec::with_capacity(events.len());
    for e in events {
        ids.push(i64::try_from(e.id).map_err(|e| StoreError::Backend(e.to_string()))?);
        bodies.push(to_json(e)?);
    }
    Ok((ids, bodies))
}

/// See [`crate::store::Store::insert_execution`]. An unfinished execution is held by this node
/// from the start (epoch 1, a fresh lease).
pub(super) async fn insert(
    store: &PostgresStore,
    record: ExecutionRecord,
    first: Event,
) -> Result<InsertOutcome, StoreError> {
    let body = to_json(&record)?;
    let status = status_name(record.status)?;
    let owner = (!record.is_terminal()).then_some(store.node.as_str());
    let (event_ids, bodies) = event_columns(std::slice::from_ref(&first))?;
    let mut conn = store.pool.get().await?;
    let row = conn
        .query_one(
            INSERT,
            &[
                &&*record.id,
                &&*record.flow_id,
                &&*record.name,
                &status,
                &time_key(record.started),
                &body,
                &owner,
                &micros(store.lease),
                &event_ids[0],
                &bodies[0],
            ],
        )
        .await?;
    if col::<i64>(&row, 0)? == 1 {
        if owner.is_some() {
            store.held.hold(&record.id, 1);
        }
        return Ok(InsertOutcome::Inserted);
    }
    let existing = conn
        .query_opt(BY_NAME, &[&&*record.flow_id, &&*record.name])
        .await?
        .ok_or_else(|| {
            StoreError::Backend(format!(
                "execution {} neither inserted nor found",
                record.name
            ))
        })?;
    Ok(InsertOutcome::Existing(Box::new(from_json(col(
        &existing, 0,
    )?)?)))
}

/// See [`crate::store::Store::get_execution`].
pub(super) async fn get(
    store: &PostgresStore,
    id: &str,
) -> Result<Option<ExecutionRecord>, StoreError> {
    let mut conn = store.pool.get().await?;
    let row = conn.query_opt(BY_ID, &[&id]).await?;
    row.map(|r| from_json(col(&r, 0)?)).transpose()
}

/// See [`crate::store::Store::find_execution`].
pub(super) async fn find(
    store: &PostgresStore,
    flow_id: &str,
    name: &str,
) -> Result<Option<ExecutionRecord>, StoreError> {
    let mut conn = store.pool.get().await?;
    let row = conn.query_opt(BY_NAME, &[&flow_id, &name]).await?;
    row.map(|r| from_json(col(&r, 0)?)).transpose()
}

/// See [`crate::store::Store::commit`]: written only while this node holds the execution at
/// the epoch it remembers (else `Fenced`), except that a retry (`reopen`) of a finished
/// execution takes it for this node. Optimistic: the row is read, the new record computed,
/// and the write applies only if the row's revision did not move meanwhile (else again).
pub(super) async fn commit(
    store: &PostgresStore,
    id: &str,
    events: Vec<Event>,
    update: Option<ExecutionUpdate>,
) -> Result<(), StoreError> {
    let (event_ids, bodies) = event_columns(&events)?;
    let reopen = update.as_ref().is_some_and(|u| u.reopen);
    let mut conn = store.pool.get().await?;
    for _ in 0..COMMIT_ATTEMPTS {
        let row = conn
            .query_opt(FOR_COMMIT, &[&id])
            .await?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let mut record: ExecutionRecord = from_json(col(&row, 0)?)?;
        let owner: Option<String> = col(&row, 1)?;
        let epoch: i64 = col(&row, 2)?;
        let rev: i64 = col(&row, 3)?;
        let holds =
            owner.as_deref() == Some(store.node.as_str()) && store.held.epoch(id) == Some(epoch);
        let retakes = reopen && record.is_terminal();
        if !(holds || retakes) {
            if let Some(mine) = store.held.epoch(id) {
                store.held.forget_at(id, mine);
            }
            return Err(StoreError::Fenced(id.to_string()));
        }
        record.event_count += events.len() as u64;
        if let Some(last) = events.last() {
            record.updated = last.time;
        }
        if let Some(u) = update.clone() {
            u.apply_to(&mut record);
        }
        let (seen_owner, seen_epoch) = (owner.clone(), epoch);
        let (owner, epoch, lease) = if record.is_terminal() {
            (None, epoch, Lease::Clear)
        } else if reopen {
            (Some(store.node.clone()), epoch + 1, Lease::Take)
        } else {
            (owner, epoch, Lease::Keep)
        };
        let status = status_name(record.status)?;
        let body = to_json(&record)?;
        let written = conn
            .query_one(
                COMMIT,
                &[
                    &id,
                    &rev,
                    &status,
                    &body,
                    &owner,
                    &epoch,
                    &(lease as i32),
                    &micros(store.lease),
                    &event_ids,
                    &bodies,
                    &seen_owner,
                    &seen_epoch,
                ],
            )
            .await?;
        if col::<i64>(&written, 0)? == 1 {
            match lease {
                Lease::Clear => store.held.forget(id),
                Lease::Take => store.held.hold(id, epoch),
                Lease::Keep => {}
            }
            return Ok(());
        }
    }
    Err(StoreError::Backend(format!(
        "execution {id} kept changing during a commit ({COMMIT_ATTEMPTS} attempts)"
    )))
}

/// See [`crate::store::Store::history`].
pub(super) async fn history(
    store: &PostgresStore,
    id: &str,
    after: u64,
    limit: usize,
) -> Result<Page<Event>, StoreError> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let mut conn = store.pool.get().await?;
    let row = conn
        .query_one(HISTORY, &[&id, &after, &limit_i64(limit)])
        .await?;
    if !col::<bool>(&row, 0)? {
        return Err(StoreError::NotFound(id.to_string()));
    }
    let bodies: Vec<String> = col(&row, 1)?;
    Page::from_overfetch(
        bodies,
        limit,
        |t| from_json::<Event>(&t),
        |e| e.id.to_string(),
    )
}

/// See [`crate::store::Store::list_executions`]: start (insertion) order, the cursor being
/// the insertion sequence number of the last item, as in the other stores.
pub(super) async fn list(
    store: &PostgresStore,
    flow_id: &str,
    filter: &ExecutionFilter,
    after: Option<&str>,
    limit: usize,
) -> Result<Page<ExecutionRecord>, StoreError> {
    let after_seq = sequence_cursor(after)?;
    let status = filter.status.map(status_name).transpose()?;
    let mut conn = store.pool.get().await?;
    let rows = conn
        .query(
            LIST,
            &[
                &flow_id,
                &after_seq,
                &status,
                &filter.name_prefix,
                &filter.started_after.map(time_key),
                &filter.started_before.map(time_key),
                &limit_i64(limit),
            ],
        )
        .await?;
    let mut items = Vec::new();
    let mut last_seq: i64 = 0;
    let mut more = false;
    for row in &rows {
        let rec: ExecutionRecord = from_json(col(row, 1)?)?;
        if !filter.accepts(&rec) {
            continue;
        }
        if items.len() == limit {
            more = true;
            break;
        }
        last_seq = col(row, 0)?;
        items.push(rec);
    }
    Ok(Page {
        items,
        next: more.then(|| last_seq.to_string()),
    })
}
