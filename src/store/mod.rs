//! Persistence behind one trait. The engine commits every transition through a [`Store`]
//! before acting on it, so durable stores plug in without touching the engine.

pub mod memory;
mod records;
pub mod sqlite;

use async_trait::async_trait;

pub use memory::MemoryStore;
pub use records::{
    ExecutionFilter, ExecutionUpdate, FlowRecord, InsertOutcome, Page, TaskTokenRecord,
    TimerRecord, TokenState,
};
pub use sqlite::SqliteStore;

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
}

/// Flows, executions, history, timers and task tokens.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Adds a flow; `AlreadyExists` when its key is taken.
    async fn create_flow(&self, flow: FlowRecord) -> Result<(), StoreError>;
    /// Replaces an existing flow (same key); `NotFound` when absent.
    async fn replace_flow(&self, flow: FlowRecord) -> Result<(), StoreError>;
    /// A flow by key.
    async fn get_flow(&self, key: &FlowKey) -> Result<Option<FlowRecord>, StoreError>;
    /// A flow by its id.
    async fn get_flow_by_id(&self, id: &str) -> Result<Option<FlowRecord>, StoreError>;
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
    /// Marks a waiting token completed; `AlreadyCompleted` if it was, `NotFound` if unknown.
    async fn complete_token(&self, token: &str) -> Result<TaskTokenRecord, StoreError>;

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
