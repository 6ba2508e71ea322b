//! Persistence behind one trait. The engine commits every transition through a [`Store`]
//! before acting on it, so durable stores plug in without touching the engine.

pub mod memory;
pub mod postgres;
mod records;
pub mod sqlite;
pub mod tiered;

use std::sync::Arc;

use async_trait::async_trait;

pub use memory::MemoryStore;
pub use postgres::{PostgresOptions, PostgresStore};
pub use records::{
    ExecutionFilter, ExecutionUpdate, FlowRecord, InsertOutcome, Page, TaskTokenRecord,
    TimerRecord, TokenState,
};
pub use sqlite::SqliteStore;
pub use tiered::TieredStore;

use crate::model::execution::FlowKey;
use crate::model::{Event, ExecutionRecord};

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The record already exists.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The record does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A task token was already completed.
    #[error("task token already completed: {0}")]
    AlreadyCompleted(String),
    /// The backend failed.
    #[error("store backend failure: {0}")]
    Backend(String),
    /// This node no longer holds the execution's lease (another node claimed it): the write
    /// was refused, and the node must stop running the execution.
    #[error("execution {0} is held by another node")]
    Fenced(String),
}

/// A message between the gateway nodes that share one store (see [`Store::publish`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// An execution ended and its final state is committed: long polls anywhere wake.
    Finished {
        /// The execution.
        execution_id: String,
    },
    /// Someone asked to stop an execution (the request is also stored as a
    /// [`STOP_REQUEST`] record): the node running it stops it.
    Stop {
        /// The execution.
        execution_id: String,
    },
    /// A task token was completed with an outcome ([`TaskTokenRecord::outcome`]): the node
    /// whose task waits on it delivers the outcome.
    Reported {
        /// The token.
        token: String,
    },
    /// The task that waited on a token recorded its report as this event.
    Recorded {
        /// The token.
        token: String,
        /// The id of the event the task recorded.
        event_id: u64,
    },
}

/// Record kind ([`Store::put_record`]) of a pending stop request, keyed by execution id, value
/// `{"error": ..., "cause": ...}`: a stop answered on one node survives until the node that
/// runs (or next claims) the execution acts on it.
pub const STOP_REQUEST: &str = "flowgate.stop_request";

/// Flows, executions, history, timers and task tokens.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Whether executions of this mode outlive the process here. The engine commits what
    /// leads to a task call before making it only where that can matter: in a durable store
    /// (a restart resumes from it) or for Standard executions (whose history is read while
    /// they run).
    fn durable(&self, _mode: crate::model::ExecutionMode) -> bool {
        true
    }
    /// Adds a flow; `AlreadyExists` when its key is taken.
    async fn create_flow(&self, flow: FlowRecord) -> Result<(), StoreError>;
    /// Replaces an existing flow (same key); `NotFound` when absent.
    async fn replace_flow(&self, flow: FlowRecord) -> Result<(), StoreError>;
    /// A flow by key. Shared and read-only (every execution start looks its flow up, so a
    /// store hands out the record it keeps rather than a copy); change it with
    /// [`Store::replace_flow`].
    async fn get_flow(&self, key: &FlowKey) -> Result<Option<Arc<FlowRecord>>, StoreError>;
    /// A flow by namespace and name: [`Store::get_flow`] without a [`FlowKey`] to hand (a
    /// store with an in-memory index looks it up without building one).
    async fn get_flow_named(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<FlowRecord>>, StoreError> {
        self.get_flow(&FlowKey::new(namespace, name)).await
    }
    /// A flow by its id; shared like [`Store::get_flow`].
    async fn get_flow_by_id(&self, id: &str) -> Result<Option<Arc<FlowRecord>>, StoreError>;
    /// Removes a flow; returns whether it existed. Its executions become invisible.
    async fn delete_flow(&self, key: &FlowKey) -> Result<bool, StoreError>;
    /// Flows of a namespace in name order, starting after the name `after`.
    async fn list_flows(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<FlowRecord>, StoreError>;

    /// Inserts a new execution with its first event, unless the flow already has an execution
    /// of that name: then nothing is written and the existing record is returned.
    async fn insert_execution(
        &self,
        record: ExecutionRecord,
        first: Event,
    ) -> Result<InsertOutcome, StoreError>;
    /// An execution by id.
    async fn get_execution(&self, id: &str) -> Result<Option<ExecutionRecord>, StoreError>;
    /// An execution by flow id and execution name.
    async fn find_execution(
        &self,
        flow_id: &str,
        name: &str,
    ) -> Result<Option<ExecutionRecord>, StoreError>;
    /// Appends events and applies an update to the execution record in one step.
    async fn commit(
        &self,
        execution_id: &str,
        events: Vec<Event>,
        update: Option<ExecutionUpdate>,
    ) -> Result<(), StoreError>;
    /// Events with id greater than `after`, at most `limit`.
    async fn history(
        &self,
        execution_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Page<Event>, StoreError>;
    /// Executions of a flow in start order, filtered, starting after the cursor.
    async fn list_executions(
        &self,
        flow_id: &str,
        filter: &ExecutionFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<ExecutionRecord>, StoreError>;

    /// Records a timer (a Wait or a retry back-off deadline).
    async fn put_timer(&self, timer: TimerRecord) -> Result<(), StoreError>;
    /// Removes a timer that fired or was cancelled.
    async fn delete_timer(&self, id: &str) -> Result<(), StoreError>;
    /// Every pending timer.
    async fn timers(&self) -> Result<Vec<TimerRecord>, StoreError>;

    /// Records a task token handed out by a callback task.
    async fn put_token(&self, token: TaskTokenRecord) -> Result<(), StoreError>;
    /// A task token's record.
    async fn get_token(&self, token: &str) -> Result<Option<TaskTokenRecord>, StoreError>;
    /// Marks a waiting token completed, keeping the report's `outcome` with it (so a report
    /// survives until the waiting task records it); `AlreadyCompleted` if it was, `NotFound`
    /// if unknown.
    async fn complete_token(
        &self,
        token: &str,
        outcome: Option<serde_json::Value>,
    ) -> Result<TaskTokenRecord, StoreError>;

    /// Writes a dialect record (a schedule, a flow version, an alias, ...): a JSON value
    /// under `(kind, key)`. `Create` fails with `AlreadyExists` when the key is taken,
    /// `Replace` fails with `NotFound` when it is not, `Upsert` always writes.
    async fn put_record(
        &self,
        kind: &str,
        key: &str,
        value: serde_json::Value,
        mode: PutMode,
    ) -> Result<(), StoreError>;
    /// A dialect record.
    async fn get_record(
        &self,
        kind: &str,
        key: &str,
    ) -> Result<Option<serde_json::Value>, StoreError>;
    /// Removes a dialect record; returns whether it existed.
    async fn delete_record(&self, kind: &str, key: &str) -> Result<bool, StoreError>;
    /// Records of a kind whose keys start with `prefix`, in key order, after the key `after`.
    async fn list_records(
        &self,
        kind: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<(String, serde_json::Value)>, StoreError>;

    // ----- durability and several nodes -----

    /// Whether executions survive a restart. The engine resumes the running executions a
    /// durable store hands it from [`Store::claim_orphans`].
    fn is_durable(&self) -> bool {
        false
    }

    /// Claims up to `limit` running executions that no live node holds, for this node, for
    /// `lease`: after a restart of a single-node store, every running execution (once); on a
    /// shared store, those whose lease expired. Each claim bumps the execution's fencing
    /// epoch, so the node that held it before can no longer commit to it.
    async fn claim_orphans(
        &self,
        lease: std::time::Duration,
        limit: usize,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        let _ = (lease, limit);
        Ok(Vec::new())
    }

    /// Extends the leases of the running executions this node holds by `lease`; returns the
    /// ids among `held` it no longer holds (claimed by another node), which the engine stops
    /// running here without writing.
    async fn renew_leases(
        &self,
        held: &[String],
        lease: std::time::Duration,
    ) -> Result<Vec<String>, StoreError> {
        let _ = (held, lease);
        Ok(Vec::new())
    }

    /// Gives up this node's leases on `ids` (graceful shutdown) so another node claims them at
    /// once.
    async fn release_leases(&self, ids: &[String]) -> Result<(), StoreError> {
        let _ = ids;
        Ok(())
    }

    /// Sends a notice to every node that shares the store, this one included. Single-node
    /// stores drop it (the engine acts on local events directly).
    async fn publish(&self, notice: Notice) -> Result<(), StoreError> {
        let _ = notice;
        Ok(())
    }

    /// The notices of every node (see [`Store::publish`]); `None` for single-node stores.
    fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<Notice>> {
        None
    }
}

/// How [`Store::put_record`] treats an existing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// Only a new key.
    Create,
    /// Only an existing key.
    Replace,
    /// Either.
    Upsert,
}
