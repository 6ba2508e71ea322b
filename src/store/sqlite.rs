//! The embedded SQLite store: everything the [`Store`] trait keeps, in one database file.
//!
//! # Layout
//!
//! Records travel as JSON text (the model's serde form), next to the indexed columns the
//! queries need: ids, flow keys, execution names, flow id, status, start time and an insertion
//! sequence (the start order of [`Store::list_executions`]). A flow's compiled form is not
//! stored as such: its canonical JSON (`serde_json::to_string(&*flow)`) is, and reading it back
//! runs the same steps as [`crate::canonical::compile`] (deserialize, then `Flow::prepare`).
//!
//! # Durability
//!
//! The database runs in WAL mode. With [`Synchronous::Normal`] (the default) a commit is
//! atomic and survives a crash or `kill -9` of the process, but the last transactions before
//! a power loss or an operating-system crash may roll back (never corrupt). With
//! [`Synchronous::Full`] every commit is flushed to the disk before it returns: it survives a
//! power loss too, at the price of one `fsync` per commit (per batch of writes, see below).
//!
//! # Concurrency and group commit
//!
//! Writes go to one writer thread that owns the write connection. It takes every write queued
//! since its last round (at most [`MAX_BATCH`]), runs each under its own savepoint inside one
//! transaction (a write that fails undoes only itself), commits once, and only then answers
//! the callers: an answered write is committed, and `N` concurrent writes cost one commit
//! (and with [`Synchronous::Full`] one `fsync`). Each trait call is atomic: [`Store::commit`]
//! appends the events and applies the record update together ("commit the event, then act").
//! Reads use a second, read-only connection on tokio's blocking pool (`spawn_blocking`), so
//! async callers never block the runtime and readers never wait for the writer (WAL).
//!
//! # Retention
//!
//! Unlike [`super::MemoryStore`], nothing is evicted: finished executions and their history
//! stay until removed by other means (no retention limits for the durable store).
//!
//! # Differences from the memory store
//!
//! An execution id that is already stored under another name is refused (`Backend`) where
//! the memory store would overwrite it. [`Store::timers`] lists in due order. A caller that
//! abandons a write (drops its future) does not cancel it: it may still commit.
//!
//! # Migrations
//!
//! The schema is versioned in the `schema_version` table; [`SqliteStore::open`] applies the
//! missing steps of [`MIGRATIONS`] in order, each in its own transaction, and refuses a file
//! written by a newer flowgate.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use super::{
    ExecutionFilter, ExecutionUpdate, FlowRecord, InsertOutcome, Page, PutMode, Store, StoreError,
    TaskTokenRecord, TimerRecord, TokenState,
};
use crate::model::execution::FlowKey;
use crate::model::time::Timestamp;
use crate::model::{Event, ExecutionRecord, ExecutionStatus, Flow};

/// The schema, one step per version: step `i` brings the file from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // Version 1.
    "CREATE TABLE flows (
        namespace TEXT NOT NULL,
        name TEXT NOT NULL,
        id TEXT NOT NULL UNIQUE,
        dialect TEXT NOT NULL,
        definition TEXT NOT NULL,
        flow TEXT NOT NULL,
        created TEXT NOT NULL,
        modified TEXT NOT NULL,
        metadata TEXT NOT NULL,
        PRIMARY KEY (namespace, name)
    ) WITHOUT ROWID;
    CREATE TABLE executions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        flow_id TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        started INTEGER NOT NULL,
        record TEXT NOT NULL,
        UNIQUE (flow_id, name)
    );
    CREATE INDEX executions_flow_seq ON executions (flow_id, seq);
    CREATE INDEX executions_status ON executions (status);
    CREATE TABLE events (
        execution_id TEXT NOT NULL,
        pos INTEGER NOT NULL,
        event_id INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (execution_id, pos)
    ) WITHOUT ROWID;
    CREATE INDEX events_id ON events (execution_id, event_id);
    CREATE TABLE timers (
        id TEXT PRIMARY KEY,
        execution_id TEXT NOT NULL,
        due INTEGER NOT NULL,
        body TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX timers_due ON timers (due);
    CREATE TABLE tokens (
        token TEXT PRIMARY KEY,
        execution_id TEXT NOT NULL,
        status TEXT NOT NULL,
        body TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX tokens_execution ON tokens (execution_id);
    CREATE TABLE records (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (kind, key)
    ) WITHOUT ROWID;",
    // Version 2: the events of one commit are one row (a JSON array), so a commit of a dozen
    // transitions writes one row instead of a dozen.
    "CREATE TABLE event_batches (
        execution_id TEXT NOT NULL,
        first_id INTEGER NOT NULL,
        last_id INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (execution_id, first_id)
    ) WITHOUT ROWID;
    INSERT INTO event_batches (execution_id, first_id, last_id, body)
        SELECT execution_id, event_id, event_id, '[' || body || ']' FROM events;
    DROP TABLE events;
    DROP INDEX executions_status;
    CREATE INDEX executions_running ON executions (seq) WHERE status = 'Running';",
];

/// How hard a commit waits for the disk (SQLite's `synchronous` pragma, in WAL mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Survives a crash of the process; a power loss may roll back the last commits.
    #[default]
    Normal,
    /// Survives a power loss too: one `fsync` per commit.
    Full,
}

/// Options of [`SqliteStore::open_with`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SqliteOptions {
    /// The durability of a commit; see the module documentation.
    pub synchronous: Synchronous,
}

/// Flows, executions, history, timers, tokens and dialect records in one SQLite file.
pub struct SqliteStore {
    /// The read connection (WAL readers see the last commit and never wait for the writer).
    reader: Arc<Mutex<Connection>>,
    /// Jobs for the writer thread; `None` once dropped.
    writer: Option<mpsc::Sender<Job>>,
    /// The writer thread, joined on drop so the file is closed when the store is.
    thread: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
    /// Flows by key, filled on first read and kept in step with every write: this process is
    /// the file's only writer, and every request looks its flow up. Shared, so a lookup is an
    /// `Arc` clone.
    flow_cache: dashmap::DashMap<FlowKey, Arc<FlowRecord>, ahash::RandomState>,
    /// The same cached flows by id.
    flow_ids: dashmap::DashMap<Arc<str>, Arc<FlowRecord>, ahash::RandomState>,
    /// The records of the executions running in this process, kept in step with every
    /// commit: a commit then serializes on the caller's thread and the writer only writes,
    /// and a running execution is described without a read.
    hot: dashmap::DashMap<Arc<str>, ExecutionRecord, ahash::RandomState>,
    /// Copies the write-ahead log into the database file in the background, so the writer
    /// never stops for it.
    checkpoints: Option<Checkpointer>,
    /// Whether the running executions were handed out by `claim_orphans` (once per open).
    claimed: std::sync::atomic::AtomicBool,
}

/// What a write job hands back to the writer thread: whether it succeeded (else its savepoint
/// is rolled back) and how to answer once the batch's transaction is settled.
type Reply = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A write, run by the writer thread inside the batch's transaction.
type JobFn = Box<dyn FnOnce(&Connection) -> (bool, Reply) + Send>;

/// A write for the writer thread.
struct Job {
    run: JobFn,
    /// Run under its own savepoint, so its failure undoes only its own changes. An unguarded
    /// job (the hot path: execution inserts and commits) saves the savepoint's cost; if it
    /// fails, the whole batch is rolled back and every caller in it gets an error.
    guarded: bool,
}

/// Most writes gathered into one transaction.
pub const MAX_BATCH: usize = 256;

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.writer.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.checkpoints.take();
    }
}

/// The background checkpoint thread (the writer's automatic checkpoints are off: a
/// checkpoint copies pages and syncs the file, and the writer would wait for it with every
/// caller of its batch). Stops, with a last checkpoint, when dropped.
struct Checkpointer {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How often the log is copied into the database file.
const CHECKPOINT_PERIOD: std::time::Duration = std::time::Duration::from_millis(200);

impl Checkpointer {
    fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open(path).map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("flowgate-sqlite-checkpoint".into())
            .spawn(move || {
                let checkpoint = |mode: &str| {
                    if let Err(e) =
                        conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()))
                    {
                        tracing::warn!(error = %e, "sqlite store: checkpoint failed");
                    }
                };
                while !flag.load(std::sync::atomic::Ordering::Acquire) {
                    std::thread::park_timeout(CHECKPOINT_PERIOD);
                    checkpoint("PASSIVE");
                }
                checkpoint("TRUNCATE");
            })
            .map_err(backend)?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// The writer thread: takes every queued job, runs each under its own savepoint inside one
/// transaction, commits once, and only then answers the callers (group commit).
fn writer_loop(conn: Connection, jobs: mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        if let Err(e) = conn
            .prepare_cached("BEGIN IMMEDIATE")
            .and_then(|mut s| s.execute([]))
        {
            // Dropping the jobs drops their answer channels: each caller gets a backend error.
            tracing::error!(error = %e, "sqlite store: cannot begin a write transaction");
            continue;
        }
        let mut spoiled = false;
        let replies: Vec<Reply> = batch
            .into_iter()
            .filter_map(|job| {
                if job.guarded {
                    run_job(&conn, job.run)
                } else {
                    let out = run_unguarded(&conn, job.run);
                    spoiled |= !matches!(out, Some((true, _)));
                    out.map(|(_, reply)| reply)
                }
            })
            .collect();
        let outcome = if spoiled {
            Err(backend(
                "a write in the same batch failed; the batch was rolled back",
            ))
        } else {
            conn.prepare_cached("COMMIT")
                .and_then(|mut s| s.execute([]))
                .map(|_| ())
                .map_err(backend)
        };
        if outcome.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for reply in replies {
            reply(outcome.clone());
        }
    }
}

/// Runs one job under a savepoint, rolled back when the job fails or panics. `None` when the
/// job could not run or panicked: its answer channel is gone and the caller gets a backend
/// error.
/// Runs a job without a savepoint; `None` when it panicked.
fn run_unguarded(conn: &Connection, job: JobFn) -> Option<(bool, Reply)> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(conn))).ok()
}

fn run_job(conn: &Connection, job: JobFn) -> Option<Reply> {
    let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([]));
    if let Err(e) = run("SAVEPOINT job") {
        tracing::error!(error = %e, "sqlite store: cannot open a savepoint");
        return None;
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(conn))) {
        Ok((true, reply)) => {
            let _ = run("RELEASE job");
            Some(reply)
        }
        Ok((false, reply)) => {
            let _ = run("ROLLBACK TO job").and_then(|_| run("RELEASE job"));
            Some(reply)
        }
        Err(_) => {
            let _ = run("ROLLBACK TO job").and_then(|_| run("RELEASE job"));
            None
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

pub(crate) fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

pub(crate) fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(backend)
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(backend)
}

/// A timestamp as an ordered integer column (nanoseconds since the epoch, saturating).
pub(crate) fn time_key(t: Timestamp) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

pub(crate) fn status_name(s: ExecutionStatus) -> Result<String, StoreError> {
    match serde_json::to_value(s).map_err(backend)? {
        serde_json::Value::String(s) => Ok(s),
        other => Err(backend(format!("unexpected status form {other}"))),
    }
}

pub(crate) fn token_status_name(s: TokenState) -> &'static str {
    match s {
        TokenState::Waiting => "Waiting",
        TokenState::Completed => "Completed",
    }
}

/// Rebuilds a compiled flow from its stored canonical JSON, as `canonical::compile` does.
pub(crate) fn compile_flow(text: &str) -> Result<Flow, StoreError> {
    let mut flow: Flow = from_json(text)?;
    flow.prepare().map_err(|issues| {
        backend(format!(
            "stored flow no longer compiles: {}",
            issues
                .iter()
                .map(|i| format!("{}: {}", i.path, i.message))
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;
    Ok(flow)
}

const FLOW_COLUMNS: &str =
    "namespace, name, id, dialect, definition, flow, created, modified, metadata";

type FlowRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
);

fn flow_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<FlowRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
    ))
}

fn flow_from_row(r: FlowRow) -> Result<FlowRecord, StoreError> {
    let (namespace, name, id, dialect, definition, flow, created, modified, metadata) = r;
    Ok(FlowRecord {
        id: id.into(),
        key: FlowKey::new(namespace, name),
        dialect,
        definition: Arc::from(definition),
        flow: Arc::new(compile_flow(&flow)?),
        created: from_json(&created)?,
        modified: from_json(&modified)?,
        metadata: from_json(&metadata)?,
    })
}

/// The stored columns of a flow record, serialized before the write is queued.
struct FlowColumns {
    namespace: String,
    name: String,
    id: String,
    dialect: String,
    definition: String,
    flow: String,
    created: String,
    modified: String,
    metadata: String,
}

impl FlowColumns {
    fn new(f: &FlowRecord) -> Result<Self, StoreError> {
        Ok(FlowColumns {
            namespace: f.key.namespace.clone(),
            name: f.key.name.clone(),
            id: f.id.to_string(),
            dialect: f.dialect.clone(),
            definition: f.definition.to_string(),
            flow: to_json(&*f.flow)?,
            created: to_json(&f.created)?,
            modified: to_json(&f.modified)?,
            metadata: to_json(&f.metadata)?,
        })
    }
}

fn get_record_tx(conn: &Connection, id: &str) -> Result<Option<ExecutionRecord>, StoreError> {
    let text: Option<String> = conn
        .prepare_cached("SELECT record FROM executions WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
        .map_err(backend)?;
    text.map(|t| from_json(&t)).transpose()
}

fn append_events(tx: &Connection, id: &str, events: &[Event]) -> Result<(), StoreError> {
    match event_batch(events)? {
        None => Ok(()),
        Some(batch) => insert_batch(tx, id, &batch),
    }
}

/// The events of one commit as one row: first id, last id, JSON array.
type EventBatch = (i64, i64, String);

/// Serializes the events of one commit (`None` when there are none).
fn event_batch(events: &[Event]) -> Result<Option<EventBatch>, StoreError> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Ok(None);
    };
    Ok(Some((
        i64::try_from(first.id).map_err(backend)?,
        i64::try_from(last.id).map_err(backend)?,
        to_json(events)?,
    )))
}

fn insert_batch(tx: &Connection, id: &str, batch: &EventBatch) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO event_batches (execution_id, first_id, last_id, body) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut s| s.execute(params![id, batch.0, batch.1, batch.2]))
    .map_err(backend)?;
    Ok(())
}

/// The insertion sequence number a listing continues after (`None`: from the start); a
/// cursor that is not one is `NotFound`, as in the memory store.
pub(crate) fn sequence_cursor(after: Option<&str>) -> Result<i64, StoreError> {
    match after {
        None => Ok(0),
        Some(c) => c
            .parse::<u64>()
            .ok()
            .and_then(|v| i64::try_from(v).ok())
            .ok_or_else(|| StoreError::NotFound(c.to_string())),
    }
}

pub(crate) fn limit_i64(limit: usize) -> i64 {
    i64::try_from(limit)
        .unwrap_or(i64::MAX - 1)
        .saturating_add(1)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file with the default options
    /// ([`Synchronous::Normal`]) and applies pending migrations.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default())
    }

    /// Opens (creating if needed) the database file and applies pending migrations.
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let mut conn = Connection::open(&path).map_err(backend)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(backend)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(backend(format!(
                "{}: cannot enable WAL mode (journal mode is {mode})",
                path.display()
            )));
        }
        let sync = match options.synchronous {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        };
        // A 64 MiB page cache and memory-mapped reads keep the B-tree pages of a busy file in
        // memory (the default 2 MiB cache made the writer read pages back with pread); the
        // checkpoints run on their own thread (see `Checkpointer`).
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;
             PRAGMA cache_size = -16384; PRAGMA mmap_size = 268435456;
             PRAGMA wal_autocheckpoint = 0;"
        ))
        .map_err(backend)?;
        migrate(&mut conn)?;
        let reader = Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(backend)?;
        reader
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(backend)?;
        let checkpoints = Checkpointer::start(&path)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("flowgate-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(backend)?;
        Ok(SqliteStore {
            reader: Arc::new(Mutex::new(reader)),
            writer: Some(tx),
            thread: Some(thread),
            path,
            flow_cache: Default::default(),
            flow_ids: Default::default(),
            claimed: std::sync::atomic::AtomicBool::new(false),
            hot: Default::default(),
            checkpoints: Some(checkpoints),
        })
    }

    fn cache_flow(&self, flow: &Arc<FlowRecord>) {
        if let Some(old) = self.flow_cache.insert(flow.key.clone(), flow.clone()) {
            self.flow_ids.remove(&old.id);
        }
        self.flow_ids.insert(flow.id.clone(), flow.clone());
    }

    fn forget_flow(&self, key: &FlowKey) {
        if let Some((_, old)) = self.flow_cache.remove(key) {
            self.flow_ids.remove(&old.id);
        }
    }

    /// Commits to an execution running in this process from its cached record: the record
    /// and events are serialized here, and the write is queued while the cache entry is held,
    /// so commits to one execution reach the file in order. `None` when it is not cached.
    #[allow(clippy::type_complexity)]
    fn commit_hot(
        &self,
        id: &str,
        events: &[Event],
        update: Option<ExecutionUpdate>,
    ) -> Result<Option<tokio::sync::oneshot::Receiver<Result<(), StoreError>>>, StoreError> {
        let Some(mut entry) = self.hot.get_mut(id) else {
            return Ok(None);
        };
        let record = &mut *entry;
        record.event_count += events.len() as u64;
        if let Some(last) = events.last() {
            record.updated = last.time;
        }
        if let Some(u) = update {
            u.apply_to(record);
        }
        let status = status_name(record.status)?;
        let body = to_json(&*record)?;
        let batch = event_batch(events)?;
        let terminal = record.is_terminal();
        let key = id.to_string();
        let rx = self.enqueue(false, move |tx| {
            let n = tx
                .prepare_cached("UPDATE executions SET status = ?2, record = ?3 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![key, status, body]))
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound(key));
            }
            if let Some(batch) = &batch {
                insert_batch(tx, &key, batch)?;
            }
            Ok(())
        })?;
        drop(entry);
        if terminal {
            self.hot.remove(id);
        }
        Ok(Some(rx))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<usize, StoreError> {
        let conn = self.reader.lock().map_err(backend)?;
        current_version(&conn)
    }

    /// Runs a read on the read connection, on tokio's blocking pool when inside a runtime.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.reader);
        let job = move || {
            let guard = conn
                .lock()
                .map_err(|_| backend("sqlite read connection lock poisoned"))?;
            f(&guard)
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => h.spawn_blocking(job).await.map_err(backend)?,
            Err(_) => job(),
        }
    }

    /// Every row of a query with no parameters whose one column is JSON text, decoded.
    async fn read_json_rows<T: serde::de::DeserializeOwned>(
        &self,
        sql: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        let rows: Vec<String> = self
            .read(move |conn| {
                let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
                let rows = stmt
                    .query_map([], |r| r.get(0))
                    .map_err(backend)?
                    .collect::<Result<Vec<String>, _>>()
                    .map_err(backend)?;
                Ok(rows)
            })
            .await?;
        rows.iter().map(|t| from_json(t)).collect()
    }

    /// Queues a write for the writer thread and waits until the transaction that holds it is
    /// committed: `f` runs under its own savepoint, so its `Err` undoes only its own changes.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.enqueue(true, f)?
            .await
            .map_err(|_| backend("sqlite write abandoned (writer failed)"))?
    }

    /// [`SqliteStore::write`] without a savepoint, for a write that fails only before it
    /// changes anything or on an error of the file itself (see [`Job::guarded`]).
    async fn write_unguarded<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.enqueue(false, f)?
            .await
            .map_err(|_| backend("sqlite write abandoned (writer failed)"))?
    }

    /// Queues a write for the writer thread; the receiver answers once the transaction that
    /// holds it is committed. Writes run in the order they are queued.
    fn enqueue<T, F>(
        &self,
        guarded: bool,
        f: F,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<T, StoreError>>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, rx) = tokio::sync::oneshot::channel::<Result<T, StoreError>>();
        let run: JobFn = Box::new(move |conn| {
            let out = f(conn);
            let ok = out.is_ok();
            let reply: Reply = Box::new(move |committed| {
                let _ = answer.send(match (out, committed) {
                    (Err(e), _) => Err(e),
                    (Ok(_), Err(e)) => Err(e),
                    (Ok(v), Ok(())) => Ok(v),
                });
            });
            (ok, reply)
        });
        self.writer
            .as_ref()
            .ok_or_else(|| backend("sqlite store closed"))?
            .send(Job { run, guarded })
            .map_err(|_| backend("sqlite writer thread gone"))?;
        Ok(rx)
    }
}

fn current_version(conn: &Connection) -> Result<usize, StoreError> {
    let v: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )
        .map_err(backend)?;
    usize::try_from(v).map_err(backend)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(backend)?;
    let current = current_version(conn)?;
    if current > MIGRATIONS.len() {
        return Err(backend(format!(
            "database schema version {current} is newer than this flowgate ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
            .map_err(backend)?;
        tx.execute_batch(step).map_err(backend)?;
        tx.execute("DELETE FROM schema_version", [])
            .map_err(backend)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [i as i64 + 1],
        )
        .map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_flow(&self, flow: FlowRecord) -> Result<(), StoreError> {
        let c = FlowColumns::new(&flow)?;
        self.write(move |tx| {
            let exists: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM flows WHERE namespace = ?1 AND name = ?2)",
                    params![c.namespace, c.name],
                    |r| r.get(0),
                )
                .map_err(backend)?;
            if exists {
                return Err(StoreError::AlreadyExists(format!(
                    "{}/{}",
                    c.namespace, c.name
                )));
            }
            tx.execute(
                &format!("INSERT INTO flows ({FLOW_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![
                    c.namespace, c.name, c.id, c.dialect, c.definition, c.flow, c.created,
                    c.modified, c.metadata
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await?;
        self.cache_flow(&Arc::new(flow));
        Ok(())
    }

    async fn replace_flow(&self, flow: FlowRecord) -> Result<(), StoreError> {
        let c = FlowColumns::new(&flow)?;
        self.write(move |tx| {
            let n = tx
                .execute(
                    "UPDATE flows SET id = ?3, dialect = ?4, definition = ?5, flow = ?6,
                        created = ?7, modified = ?8, metadata = ?9
                     WHERE namespace = ?1 AND name = ?2",
                    params![
                        c.namespace,
                        c.name,
                        c.id,
                        c.dialect,
                        c.definition,
                        c.flow,
                        c.created,
                        c.modified,
                        c.metadata
                    ],
                )
                .map_err(backend)?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("{}/{}", c.namespace, c.name)));
            }
            Ok(())
        })
        .await?;
        self.cache_flow(&Arc::new(flow));
        Ok(())
    }

    async fn get_flow_named(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<FlowRecord>>, StoreError> {
        let cached: &dyn crate::model::execution::FlowKeyView = &(namespace, name);
        if let Some(f) = self.flow_cache.get(cached) {
            return Ok(Some(f.clone()));
        }
        self.get_flow(&FlowKey::new(namespace, name)).await
    }

    async fn get_flow(&self, key: &FlowKey) -> Result<Option<Arc<FlowRecord>>, StoreError> {
        if let Some(f) = self.flow_cache.get(key) {
            return Ok(Some(f.clone()));
        }
        let key = key.clone();
        let row = self
            .read(move |conn| {
                conn.query_row(
                    &format!("SELECT {FLOW_COLUMNS} FROM flows WHERE namespace = ?1 AND name = ?2"),
                    params![key.namespace, key.name],
                    flow_row,
                )
                .optional()
                .map_err(backend)
            })
            .await?;
        let flow = row.map(flow_from_row).transpose()?.map(Arc::new);
        if let Some(f) = &flow {
            self.cache_flow(f);
        }
        Ok(flow)
    }

    async fn get_flow_by_id(&self, id: &str) -> Result<Option<Arc<FlowRecord>>, StoreError> {
        if let Some(f) = self.flow_ids.get(id) {
            return Ok(Some(f.clone()));
        }
        let id = id.to_string();
        let row = self
            .read(move |conn| {
                conn.query_row(
                    &format!("SELECT {FLOW_COLUMNS} FROM flows WHERE id = ?1"),
                    [id],
                    flow_row,
                )
                .optional()
                .map_err(backend)
            })
            .await?;
        let flow = row.map(flow_from_row).transpose()?.map(Arc::new);
        if let Some(f) = &flow {
            self.cache_flow(f);
        }
        Ok(flow)
    }

    async fn delete_flow(&self, key: &FlowKey) -> Result<bool, StoreError> {
        self.forget_flow(key);
        let forget = key.clone();
        let key = key.clone();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "DELETE FROM flows WHERE namespace = ?1 AND name = ?2",
                    params![key.namespace, key.name],
                )
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
        .inspect(|_| self.forget_flow(&forget))
    }

    async fn list_flows(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<FlowRecord>, StoreError> {
        let namespace = namespace.to_string();
        let after = after.map(str::to_string);
        let rows = self
            .read(move |conn| {
                let mut stmt = conn
                    .prepare_cached(&format!(
                        "SELECT {FLOW_COLUMNS} FROM flows
                         WHERE namespace = ?1 AND (?2 IS NULL OR name > ?2)
                         ORDER BY name LIMIT ?3"
                    ))
                    .map_err(backend)?;
                let rows = stmt
                    .query_map(params![namespace, after, limit_i64(limit)], flow_row)
                    .map_err(backend)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(backend)?;
                Ok(rows)
            })
            .await?;
        Page::from_overfetch(rows, limit, flow_from_row, |f| f.key.name.clone())
    }

    async fn insert_execution(
        &self,
        record: ExecutionRecord,
        first: Event,
    ) -> Result<InsertOutcome, StoreError> {
        let body = to_json(&record)?;
        let status = status_name(record.status)?;
        let hot = (!record.is_terminal()).then(|| record.clone());
        // Unguarded: it reads before it writes, and only the file's own errors fail it after.
        let outcome = self
            .write_unguarded(move |tx| {
                let existing: Option<String> = tx
                    .prepare_cached(
                        "SELECT record FROM executions WHERE flow_id = ?1 AND name = ?2",
                    )
                    .and_then(|mut s| {
                        s.query_row(params![record.flow_id, record.name], |r| r.get(0))
                            .optional()
                    })
                    .map_err(backend)?;
                if let Some(text) = existing {
                    return Ok(InsertOutcome::Existing(Box::new(from_json(&text)?)));
                }
                tx.prepare_cached(
                    "INSERT INTO executions (id, flow_id, name, status, started, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        record.id,
                        record.flow_id,
                        record.name,
                        status,
                        time_key(record.started),
                        body
                    ])
                })
                .map_err(backend)?;
                append_events(tx, &record.id, std::slice::from_ref(&first))?;
                Ok(InsertOutcome::Inserted)
            })
            .await;
        if let (Ok(InsertOutcome::Inserted), Some(r)) = (&outcome, hot) {
            self.hot.insert(r.id.clone(), r);
        }
        outcome
    }

    async fn get_execution(&self, id: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        if let Some(r) = self.hot.get(id) {
            return Ok(Some(r.clone()));
        }
        let id = id.to_string();
        self.read(move |conn| get_record_tx(conn, &id)).await
    }

    async fn find_execution(
        &self,
        flow_id: &str,
        name: &str,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        let (flow_id, name) = (flow_id.to_string(), name.to_string());
        let text: Option<String> = self
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT record FROM executions WHERE flow_id = ?1 AND name = ?2",
                )
                .and_then(|mut s| s.query_row(params![flow_id, name], |r| r.get(0)).optional())
                .map_err(backend)
            })
            .await?;
        text.map(|t| from_json(&t)).transpose()
    }

    async fn commit(
        &self,
        execution_id: &str,
        events: Vec<Event>,
        update: Option<ExecutionUpdate>,
    ) -> Result<(), StoreError> {
        if let Some(rx) = self.commit_hot(execution_id, &events, update.clone())? {
            let out = rx
                .await
                .map_err(|_| backend("sqlite write abandoned (writer failed)"))
                .and_then(|r| r);
            if out.is_err() {
                // The file and the cached record may differ now: read the file from here on.
                self.hot.remove(execution_id);
            }
            return out;
        }
        let id = execution_id.to_string();
        self.write(move |tx| {
            let mut record =
                get_record_tx(tx, &id)?.ok_or_else(|| StoreError::NotFound(id.clone()))?;
            record.event_count += events.len() as u64;
            if let Some(last) = events.last() {
                record.updated = last.time;
            }
            append_events(tx, &id, &events)?;
            if let Some(u) = update {
                u.apply_to(&mut record);
            }
            let status = status_name(record.status)?;
            let body = to_json(&record)?;
            tx.prepare_cached("UPDATE executions SET status = ?2, record = ?3 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id, status, body]))
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn history(
        &self,
        execution_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Page<Event>, StoreError> {
        let id = execution_id.to_string();
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let rows: Vec<Event> = self
            .read(move |conn| {
                let exists: bool = conn
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM executions WHERE id = ?1)")
                    .and_then(|mut s| s.query_row([&id], |r| r.get(0)))
                    .map_err(backend)?;
                if !exists {
                    return Err(StoreError::NotFound(id));
                }
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT body FROM event_batches WHERE execution_id = ?1 AND last_id > ?2
                         ORDER BY first_id",
                    )
                    .map_err(backend)?;
                let mut rows = stmt.query(params![id, after]).map_err(backend)?;
                // Read batches until one more event than the page holds is in hand.
                let mut events: Vec<Event> = Vec::new();
                while let Some(row) = rows.next().map_err(backend)? {
                    let text: String = row.get(0).map_err(backend)?;
                    let batch: Vec<Event> = from_json(&text)?;
                    events.extend(batch.into_iter().filter(|e| e.id as i64 > after));
                    if events.len() > limit {
                        break;
                    }
                }
                Ok(events)
            })
            .await?;
        Page::from_overfetch(rows, limit, Ok::<Event, StoreError>, |e| e.id.to_string())
    }

    async fn list_executions(
        &self,
        flow_id: &str,
        filter: &ExecutionFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<ExecutionRecord>, StoreError> {
        let after_seq = sequence_cursor(after)?;
        let flow_id = flow_id.to_string();
        let filter = filter.clone();
        let status = filter.status.map(status_name).transpose()?;
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, record FROM executions
                     WHERE flow_id = ?1 AND seq > ?2
                       AND (?3 IS NULL OR status = ?3)
                       AND (?4 IS NULL OR substr(name, 1, length(?4)) = ?4)
                       AND (?5 IS NULL OR started >= ?5)
                       AND (?6 IS NULL OR started <= ?6)
                     ORDER BY seq",
                )
                .map_err(backend)?;
            let mut rows = stmt
                .query(params![
                    flow_id,
                    after_seq,
                    status,
                    filter.name_prefix,
                    filter.started_after.map(time_key),
                    filter.started_before.map(time_key)
                ])
                .map_err(backend)?;
            let mut items = Vec::new();
            let mut last_seq: i64 = 0;
            let mut more = false;
            while let Some(row) = rows.next().map_err(backend)? {
                let seq: i64 = row.get(0).map_err(backend)?;
                let text: String = row.get(1).map_err(backend)?;
                let rec: ExecutionRecord = from_json(&text)?;
                if !filter.accepts(&rec) {
                    continue;
                }
                if items.len() == limit {
                    more = true;
                    break;
                }
                last_seq = seq;
                items.push(rec);
            }
            Ok(Page {
                items,
                next: more.then(|| last_seq.to_string()),
            })
        })
        .await
    }

    async fn put_timer(&self, timer: TimerRecord) -> Result<(), StoreError> {
        let body = to_json(&timer)?;
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO timers (id, execution_id, due, body) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    timer.id,
                    timer.execution_id,
                    time_key(timer.due),
                    body
                ])
            })
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn delete_timer(&self, id: &str) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM timers WHERE id = ?1")
                .and_then(|mut s| s.execute([id]))
                .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn timers(&self) -> Result<Vec<TimerRecord>, StoreError> {
        self.read_json_rows("SELECT body FROM timers ORDER BY due, id")
            .await
    }

    async fn put_token(&self, token: TaskTokenRecord) -> Result<(), StoreError> {
        let body = to_json(&token)?;
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT OR REPLACE INTO tokens (token, execution_id, status, body)
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    token.token,
                    token.execution_id,
                    token_status_name(token.status),
                    body
                ])
            })
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn get_token(&self, token: &str) -> Result<Option<TaskTokenRecord>, StoreError> {
        let token = token.to_string();
        let text: Option<String> = self
            .read(move |conn| {
                conn.prepare_cached("SELECT body FROM tokens WHERE token = ?1")
                    .and_then(|mut s| s.query_row([token], |r| r.get(0)).optional())
                    .map_err(backend)
            })
            .await?;
        text.map(|t| from_json(&t)).transpose()
    }

    async fn complete_token(
        &self,
        token: &str,
        outcome: Option<serde_json::Value>,
    ) -> Result<TaskTokenRecord, StoreError> {
        let token = token.to_string();
        self.write(move |tx| {
            let text: Option<String> = tx
                .prepare_cached("SELECT body FROM tokens WHERE token = ?1")
                .and_then(|mut s| s.query_row([&token], |r| r.get(0)).optional())
                .map_err(backend)?;
            let mut rec: TaskTokenRecord = match text {
                None => return Err(StoreError::NotFound(token)),
                Some(t) => from_json(&t)?,
            };
            if rec.status == TokenState::Completed {
                return Err(StoreError::AlreadyCompleted(token));
            }
            rec.status = TokenState::Completed;
            rec.outcome = outcome;
            let body = to_json(&rec)?;
            tx.prepare_cached("UPDATE tokens SET status = ?2, body = ?3 WHERE token = ?1")
                .and_then(|mut s| s.execute(params![token, token_status_name(rec.status), body]))
                .map_err(backend)?;
            Ok(rec)
        })
        .await
    }

    async fn put_record(
        &self,
        kind: &str,
        key: &str,
        value: serde_json::Value,
        mode: PutMode,
    ) -> Result<(), StoreError> {
        let (kind, key) = (kind.to_string(), key.to_string());
        let text = to_json(&value)?;
        self.write(move |tx| {
            let exists: bool = tx
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM records WHERE kind = ?1 AND key = ?2)",
                )
                .and_then(|mut s| s.query_row(params![kind, key], |r| r.get(0)))
                .map_err(backend)?;
            match (mode, exists) {
                (PutMode::Create, true) => Err(StoreError::AlreadyExists(format!("{kind}/{key}"))),
                (PutMode::Replace, false) => Err(StoreError::NotFound(format!("{kind}/{key}"))),
                _ => {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO records (kind, key, value) VALUES (?1, ?2, ?3)",
                    )
                    .and_then(|mut s| s.execute(params![kind, key, text]))
                    .map_err(backend)?;
                    Ok(())
                }
            }
        })
        .await
    }

    async fn get_record(
        &self,
        kind: &str,
        key: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let (kind, key) = (kind.to_string(), key.to_string());
        let text: Option<String> = self
            .read(move |conn| {
                conn.prepare_cached("SELECT value FROM records WHERE kind = ?1 AND key = ?2")
                    .and_then(|mut s| s.query_row(params![kind, key], |r| r.get(0)).optional())
                    .map_err(backend)
            })
            .await?;
        text.map(|t| from_json(&t)).transpose()
    }

    async fn delete_record(&self, kind: &str, key: &str) -> Result<bool, StoreError> {
        let (kind, key) = (kind.to_string(), key.to_string());
        self.write(move |conn| {
            let n = conn
                .prepare_cached("DELETE FROM records WHERE kind = ?1 AND key = ?2")
                .and_then(|mut s| s.execute(params![kind, key]))
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn list_records(
        &self,
        kind: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<(String, serde_json::Value)>, StoreError> {
        let (kind, prefix) = (kind.to_string(), prefix.to_string());
        let after = after.map(str::to_string);
        let start = after.clone().unwrap_or_else(|| prefix.clone());
        let (rows, more) = self
            .read(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT key, value FROM records WHERE kind = ?1 AND key >= ?2 ORDER BY key",
                    )
                    .map_err(backend)?;
                let mut rows = stmt.query(params![kind, start]).map_err(backend)?;
                let mut items: Vec<(String, String)> = Vec::new();
                let mut more = false;
                while let Some(row) = rows.next().map_err(backend)? {
                    let key: String = row.get(0).map_err(backend)?;
                    if !key.starts_with(&prefix) {
                        break;
                    }
                    if after.as_deref() == Some(key.as_str()) {
                        continue;
                    }
                    if items.len() == limit {
                        more = true;
                        break;
                    }
                    items.push((key, row.get(1).map_err(backend)?));
                }
                Ok((items, more))
            })
            .await?;
        let items = rows
            .into_iter()
            .map(|(k, v)| Ok((k, from_json(&v)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let next = if more {
            items.last().map(|(k, _)| k.clone())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    fn is_durable(&self) -> bool {
        true
    }

    /// Every running execution, the first time after the file is opened (this process is the
    /// file's only user, so what runs in the file ran in a process that is gone).
    async fn claim_orphans(
        &self,
        _lease: std::time::Duration,
        _limit: usize,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        if self.claimed.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return Ok(Vec::new());
        }
        // The literal matches the partial index `executions_running`.
        debug_assert_eq!(
            status_name(ExecutionStatus::Running).ok().as_deref(),
            Some("Running")
        );
        self.read_json_rows("SELECT record FROM executions WHERE status = 'Running' ORDER BY seq")
            .await
    }
}
