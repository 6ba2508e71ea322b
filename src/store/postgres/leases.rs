//! Which executions this node runs: the fencing epochs it holds, and the lease statements
//! (claim the orphans, renew, release).
//!
//! An execution row carries `owner` (a node id or NULL), `epoch` (bumped by every claim and
//! every retry) and `lease_until`. A node may write to an execution only while the row still
//! names it as owner at the epoch it remembers here; a claim by another node bumps the epoch,
//! so the node that held the execution before is fenced off even if it still believes it
//! holds it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::pool::col;
use super::PostgresStore;
use crate::model::ExecutionRecord;
use crate::store::sqlite::from_json;
use crate::store::StoreError;

/// The executions this node holds, with the epoch it holds each at.
#[derive(Debug, Default)]
pub(super) struct Held(Mutex<HashMap<String, i64>>);

impl Held {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.0.lock().expect("held leases lock")
    }

    /// The epoch this node holds `id` at.
    pub(super) fn epoch(&self, id: &str) -> Option<i64> {
        self.map().get(id).copied()
    }

    /// Remembers that this node holds `id` at `epoch`.
    pub(super) fn hold(&self, id: &str, epoch: i64) {
        self.map().insert(id.to_string(), epoch);
    }

    /// Forgets `id`.
    pub(super) fn forget(&self, id: &str) {
        self.map().remove(id);
    }

    /// Forgets `id` if it is still held at `epoch` (a newer hold, taken meanwhile, stays).
    /// Returns whether `id` is not held at a newer epoch now.
    pub(super) fn forget_at(&self, id: &str, epoch: i64) -> bool {
        let mut map = self.map();
        match map.get(id) {
            Some(e) if *e == epoch => {
                map.remove(id);
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    /// The ids among `ids` held now and their epochs.
    fn snapshot(&self, ids: &[String]) -> (Vec<String>, Vec<i64>) {
        let map = self.map();
        ids.iter()
            .filter_map(|id| map.get(id).map(|e| (id.clone(), *e)))
            .unzip()
    }
}

/// A duration as whole microseconds for SQL (`$n * interval '1 microsecond'`), saturating.
pub(super) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Takes up to `$2` unfinished executions that nobody holds (no owner, or an expired lease)
/// for node `$3` until `now() + $1 µs`, skipping rows another node is claiming right now.
const CLAIM: &str = "WITH c AS (
        SELECT id FROM executions
        WHERE status IN ('Starting', 'Running')
          AND (owner IS NULL OR lease_until IS NULL OR lease_until < now())
        ORDER BY seq
        LIMIT $2
        FOR UPDATE SKIP LOCKED
    )
    UPDATE executions x
    SET owner = $3, epoch = x.epoch + 1, rev = x.rev + 1,
        lease_until = now() + $1::BIGINT * interval '1 microsecond'
    FROM c WHERE x.id = c.id
    RETURNING x.seq, x.id, x.epoch, x.record";

/// Extends the leases of the executions (ids `$1`, epochs `$2`) node `$4` still holds.
const RENEW: &str = "UPDATE executions x
    SET lease_until = now() + $3::BIGINT * interval '1 microsecond'
    FROM unnest($1::TEXT[], $2::BIGINT[]) AS h(id, epoch)
    WHERE x.id = h.id AND x.epoch = h.epoch AND x.owner = $4
    RETURNING x.id";

/// Gives up node `$3`'s leases on the executions (ids `$1`, epochs `$2`).
const RELEASE: &str = "UPDATE executions x
    SET owner = NULL, lease_until = now(), rev = x.rev + 1
    FROM unnest($1::TEXT[], $2::BIGINT[]) AS h(id, epoch)
    WHERE x.id = h.id AND x.epoch = h.epoch AND x.owner = $3";

/// See [`crate::store::Store::claim_orphans`].
pub(super) async fn claim_orphans(
    store: &PostgresStore,
    lease: Duration,
    limit: usize,
) -> Result<Vec<ExecutionRecord>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut conn = store.pool.get().await?;
    let rows = conn
        .query(CLAIM, &[&micros(lease), &limit, &store.node])
        .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in &rows {
        let seq: i64 = col(row, 0)?;
        let id: String = col(row, 1)?;
        let epoch: i64 = col(row, 2)?;
        store.held.hold(&id, epoch);
        claimed.push((seq, col::<&str>(row, 3)?));
    }
    claimed.sort_by_key(|(seq, _)| *seq);
    claimed
        .into_iter()
        .map(|(_, text)| from_json(text))
        .collect()
}

/// See [`crate::store::Store::renew_leases`].
pub(super) async fn renew_leases(
    store: &PostgresStore,
    held: &[String],
    lease: Duration,
) -> Result<Vec<String>, StoreError> {
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let (ids, epochs) = store.held.snapshot(held);
    let renewed: std::collections::HashSet<String> = if ids.is_empty() {
        Default::default()
    } else {
        let mut conn = store.pool.get().await?;
        conn.query(RENEW, &[&ids, &epochs, &micros(lease), &store.node])
            .await?
            .iter()
            .map(|r| col(r, 0))
            .collect::<Result<_, _>>()?
    };
    let epoch_of: HashMap<&str, i64> = ids.iter().map(String::as_str).zip(epochs).collect();
    Ok(held
        .iter()
        .filter(|id| !renewed.contains(id.as_str()))
        .filter(|id| match epoch_of.get(id.as_str()) {
            // Not held at that epoch any more; unless a newer hold was taken meanwhile (a
            // retry or a claim by this node), it is lost.
            Some(epoch) => store.held.forget_at(id, *epoch),
            None => true,
        })
        .cloned()
        .collect())
}

/// See [`crate::store::Store::release_leases`].
pub(super) async fn release_leases(
    store: &PostgresStore,
    ids: &[String],
) -> Result<(), StoreError> {
    let (held, epochs) = store.held.snapshot(ids);
    if !held.is_empty() {
        let mut conn = store.pool.get().await?;
        conn.execute(RELEASE, &[&held, &epochs, &store.node])
            .await?;
    }
    for (id, epoch) in held.iter().zip(epochs) {
        store.held.forget_at(id, epoch);
    }
    Ok(())
}
