//! The PostgreSQL store: one database shared by several gateway processes ("nodes").
//!
//! # Layout
//!
//! As in the SQLite store ([`super::sqlite`], whose JSON helpers this store shares), records
//! travel as JSON text next to the indexed columns the queries need; a flow's compiled form is
//! its canonical JSON, compiled again when read. Times that are filtered or ordered are
//! integer nanoseconds (start order of [`Store::list_executions`] is an insertion sequence;
//! timers list in due order), so every listing matches the other stores. See [`MIGRATIONS`].
//!
//! # Several nodes: leases and fencing
//!
//! Each execution row has an `owner` (a node id), a fencing `epoch` and a `lease_until`
//! deadline (database clock). The node that inserts an unfinished execution holds it (epoch
//! 1, lease [`PostgresOptions::lease`]) and remembers the epoch in memory. [`Store::commit`]
//! writes only while the row still names this node at the remembered epoch, else it fails
//! with [`StoreError::Fenced`] and writes nothing; a retry (`reopen`) of a finished execution
//! takes it for the retrying node (epoch + 1), and a commit that ends an execution gives up
//! its lease. [`Store::claim_orphans`] takes unfinished executions whose lease expired (their
//! node died or stalled) with `FOR UPDATE SKIP LOCKED`, bumping the epoch, so the node that
//! held them before is fenced off as soon as it writes or renews. [`Store::renew_leases`] and
//! [`Store::release_leases`] are one statement each.
//!
//! A commit is optimistic: it reads the row, computes the new record, and writes it together
//! with the events in one statement that applies only if the row's revision did not move
//! (claims and releases move it too); otherwise it reads again. Each trait call is atomic.
//!
//! # Notices
//!
//! [`Store::publish`] is `pg_notify('flowgate_notices', <json>)`; one dedicated connection per
//! node `LISTEN`s and feeds [`Store::subscribe`]'s broadcast channel, reconnecting with
//! back-off when it drops. A node receives its own notices too.
//!
//! # Connections
//!
//! A small pool of at most [`PostgresOptions::pool_size`] connections (opened on demand,
//! prepared statements cached per connection) plus the listening connection. No TLS: run it
//! on a trusted network or through a local proxy.
//!
//! # Differences from the other stores
//!
//! Unlike [`super::MemoryStore`], nothing is evicted (as with SQLite). An execution id already
//! stored under another name is refused (`Backend`), as with SQLite. A commit to an execution
//! this node does not hold is `Fenced` even on a single node: after a restart, a node writes
//! only to what it inserted, claimed or retried since. Listing in start order follows the
//! insertion sequence; with several nodes inserting at once, an execution may get its place
//! in that order a moment before it is committed (and so appear behind a cursor handed out
//! meanwhile). Notices sent while a node's listening connection is down are lost to it.
//! Needs PostgreSQL 11 or newer.
//!
//! # Migrations
//!
//! [`PostgresStore::connect`] applies the missing steps of [`MIGRATIONS`] in one transaction
//! under `pg_advisory_xact_lock`, so nodes starting at once do not race, and refuses a
//! database written by a newer flowgate.

mod executions;
mod flows;
mod leases;
mod notices;
mod pool;
mod records;
mod schema;
mod timers;
mod tokens;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;

pub use schema::MIGRATIONS;

use super::{
    ExecutionFilter, ExecutionUpdate, FlowRecord, InsertOutcome, Notice, Page, PutMode, Store,
    StoreError, TaskTokenRecord, TimerRecord,
};
use crate::model::execution::FlowKey;
use crate::model::{Event, ExecutionRecord};

/// How many notices a slow subscriber may fall behind before it misses some.
const NOTICE_BUFFER: usize = 1024;

/// How long opening a connection may take, unless the URL says (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the database is and who this node is; see [`PostgresStore::connect`].
#[derive(Clone)]
pub struct PostgresOptions {
    /// The database, as a `postgres://user:password@host:port/database` URL or a
    /// `host=... user=... dbname=...` string.
    pub url: String,
    /// This node's id, unique among the nodes that share the database: the owner of the
    /// executions it runs.
    pub node_id: String,
    /// How long a node's claim on an execution lasts unless renewed; another node takes over
    /// the executions of a node that stopped renewing once this much time has passed.
    pub lease: Duration,
    /// The most database connections open at once (besides the one that listens for
    /// notices).
    pub pool_size: usize,
}

impl PostgresOptions {
    /// Options for a database and a node id, with a 15 s lease and 16 connections.
    pub fn new(url: impl Into<String>, node_id: impl Into<String>) -> Self {
        PostgresOptions {
            url: url.into(),
            node_id: node_id.into(),
            ..PostgresOptions::default()
        }
    }
}

impl std::fmt::Debug for PostgresOptions {
    /// The URL without its password, so options can be logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &redacted(&self.url))
            .field("node_id", &self.node_id)
            .field("lease", &self.lease)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// A connection URL with the password (`user:password@`, or `password=...`) masked.
fn redacted(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
        if let Some(at) = authority.rfind('@') {
            if let Some(colon) = authority[..at].find(':') {
                let start = scheme_end + 3 + colon + 1;
                return format!("{}***{}", &url[..start], &url[scheme_end + 3 + at..]);
            }
        }
        return url.to_string();
    }
    url.split_whitespace()
        .map(|kv| match kv.split_once('=') {
            Some(("password", _)) => "password=***".to_string(),
            _ => kv.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Default for PostgresOptions {
    /// The local database `flowgate`, a node id new for this process (two processes never
    /// share one by accident), a 15 s lease and 16 connections.
    fn default() -> Self {
        PostgresOptions {
            url: "postgres://localhost/flowgate".into(),
            node_id: format!("node-{}", uuid::Uuid::new_v4()),
            lease: Duration::from_secs(15),
            pool_size: 16,
        }
    }
}

/// Flows, executions, history, timers, tokens and dialect records in a PostgreSQL database
/// that several nodes share; see the module documentation.
pub struct PostgresStore {
    pool: pool::Pool,
    node: String,
    lease: Duration,
    /// The executions this node holds, at which epoch.
    held: leases::Held,
    notices: broadcast::Sender<Notice>,
    /// Stops listening when the store is dropped.
    _listener: notices::Listener,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("node", &self.node)
            .field("lease", &self.lease)
            .field("pool_size", &self.pool.size())
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects, applies pending migrations and starts listening for notices. Fails when the
    /// database cannot be reached, the node id is empty, or the database was written by a
    /// newer flowgate.
    pub async fn connect(options: PostgresOptions) -> Result<Self, StoreError> {
        if options.node_id.is_empty() {
            return Err(StoreError::Backend("postgres store: empty node id".into()));
        }
        if options.lease.is_zero() {
            return Err(StoreError::Backend("postgres store: zero lease".into()));
        }
        let mut config: tokio_postgres::Config = options
            .url
            .parse()
            .map_err(|e| StoreError::Backend(format!("postgres store: bad url: {e}")))?;
        if config.get_application_name().is_none() {
            config.application_name(format!("flowgate {}", options.node_id));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        schema::migrate(&config).await?;
        let (sender, _) = broadcast::channel(NOTICE_BUFFER);
        let listener = notices::Listener::start(config.clone(), sender.clone()).await?;
        Ok(PostgresStore {
            pool: pool::Pool::new(config, options.pool_size),
            node: options.node_id,
            lease: options.lease,
            held: leases::Held::default(),
            notices: sender,
            _listener: listener,
        })
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node
    }

    /// The schema version of the database ([`MIGRATIONS`]`.len()` once connected).
    pub async fn schema_version(&self) -> Result<usize, StoreError> {
        let conn = self.pool.get().await?;
        schema::version_of(conn.client()).await
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_flow(&self, flow: FlowRecord) -> Result<(), StoreError> {
        flows::create(self, flow).await
    }

    async fn replace_flow(&self, flow: FlowRecord) -> Result<(), StoreError> {
        flows::replace(self, flow).await
    }

    async fn get_flow(&self, key: &FlowKey) -> Result<Option<Arc<FlowRecord>>, StoreError> {
        flows::get(self, key).await
    }

    async fn get_flow_by_id(&self, id: &str) -> Result<Option<Arc<FlowRecord>>, StoreError> {
        flows::get_by_id(self, id).await
    }

    async fn delete_flow(&self, key: &FlowKey) -> Result<bool, StoreError> {
        flows::delete(self, key).await
    }

    async fn list_flows(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<FlowRecord>, StoreError> {
        flows::list(self, namespace, after, limit).await
    }

    async fn insert_execution(
        &self,
        record: ExecutionRecord,
        first: Event,
    ) -> Result<InsertOutcome, StoreError> {
        executions::insert(self, record, first).await
    }

    async fn get_execution(&self, id: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        executions::get(self, id).await
    }

    async fn find_execution(
        &self,
        flow_id: &str,
        name: &str,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        executions::find(self, flow_id, name).await
    }

    async fn commit(
        &self,
        execution_id: &str,
        events: Vec<Event>,
        update: Option<ExecutionUpdate>,
    ) -> Result<(), StoreError> {
        executions::commit(self, execution_id, events, update).await
    }

    async fn history(
        &self,
        execution_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Page<Event>, StoreError> {
        executions::history(self, execution_id, after, limit).await
    }

    async fn list_executions(
        &self,
        flow_id: &str,
        filter: &ExecutionFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<ExecutionRecord>, StoreError> {
        executions::list(self, flow_id, filter, after, limit).await
    }

    async fn put_timer(&self, timer: TimerRecord) -> Result<(), StoreError> {
        timers::put(self, timer).await
    }

    async fn delete_timer(&self, id: &str) -> Result<(), StoreError> {
        timers::delete(self, id).await
    }

    async fn timers(&self) -> Result<Vec<TimerRecord>, StoreError> {
        timers::all(self).await
    }

    async fn put_token(&self, token: TaskTokenRecord) -> Result<(), StoreError> {
        tokens::put(self, token).await
    }

    async fn get_token(&self, token: &str) -> Result<Option<TaskTokenRecord>, StoreError> {
        tokens::get(self, token).await
    }

    async fn complete_token(
        &self,
        token: &str,
        outcome: Option<serde_json::Value>,
    ) -> Result<TaskTokenRecord, StoreError> {
        tokens::complete(self, token, outcome).await
    }

    async fn put_record(
        &self,
        kind: &str,
        key: &str,
        value: serde_json::Value,
        mode: PutMode,
    ) -> Result<(), StoreError> {
        records::put(self, kind, key, value, mode).await
    }

    async fn get_record(
        &self,
        kind: &str,
        key: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        records::get(self, kind, key).await
    }

    async fn delete_record(&self, kind: &str, key: &str) -> Result<bool, StoreError> {
        records::delete(self, kind, key).await
    }

    async fn list_records(
        &self,
        kind: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<(String, serde_json::Value)>, StoreError> {
        records::list(self, kind, prefix, after, limit).await
    }

    fn is_durable(&self) -> bool {
        true
    }

    async fn claim_orphans(
        &self,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        leases::claim_orphans(self, lease, limit).await
    }

    async fn renew_leases(
        &self,
        held: &[String],
        lease: Duration,
    ) -> Result<Vec<String>, StoreError> {
        leases::renew_leases(self, held, lease).await
    }

    async fn release_leases(&self, ids: &[String]) -> Result<(), StoreError> {
        leases::release_leases(self, ids).await
    }

    async fn publish(&self, notice: Notice) -> Result<(), StoreError> {
        notices::publish(self, &notice).await
    }

    fn subscribe(&self) -> Option<broadcast::Receiver<Notice>> {
        Some(self.notices.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;
    use crate::model::ExecutionStatus;
    use crate::store::sqlite::status_name;

    #[test]
    fn passwords_stay_out_of_debug_output() {
        assert_eq!(
            redacted("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(redacted("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redacted("postgres://h/db"), "postgres://h/db");
        assert_eq!(
            redacted("host=h password=secret user=u"),
            "host=h password=*** user=u"
        );
        let o = super::PostgresOptions::new("postgres://u:secret@h/db", "n");
        assert!(!format!("{o:?}").contains("secret"));
    }

    /// The SQL of the leases and the schema's partial index name the unfinished statuses.
    #[test]
    fn unfinished_status_names_match_the_sql() {
        assert_eq!(status_name(ExecutionStatus::Running).unwrap(), "Running");
        assert_eq!(status_name(ExecutionStatus::Starting).unwrap(), "Starting");
    }
}
