//! The records a store keeps, besides the model's executions and events.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::execution::FlowKey;
use crate::model::time::Timestamp;
use crate::model::{ExecutionRecord, ExecutionStatus, Flow};

/// A deployed flow: its definition as submitted, the compiled flow and dialect extras.
#[derive(Debug, Clone)]
pub struct FlowRecord {
    /// Unique id (a UUID), new for each create. Shared with every execution of the flow.
    pub id: Arc<str>,
    /// Namespace and name.
    pub key: FlowKey,
    /// The dialect that owns the definition (`canonical`, `alibaba`, `huawei`).
    pub dialect: String,
    /// The definition text exactly as submitted.
    pub definition: Arc<str>,
    /// The compiled flow.
    pub flow: Arc<Flow>,
    /// When it was created.
    pub created: Timestamp,
    /// When it last changed.
    pub modified: Timestamp,
    /// Dialect extras (description, role, environment, triggers, ...).
    pub metadata: Value,
}

/// Result of [`super::Store::insert_execution`].
#[derive(Debug, Clone)]
pub enum InsertOutcome {
    /// The execution was inserted.
    Inserted,
    /// An execution with that name already exists; nothing was written.
    Existing(Box<ExecutionRecord>),
}

/// Changes to an execution record applied with a commit.
#[derive(Debug, Clone, Default)]
pub struct ExecutionUpdate {
    /// New status.
    pub status: Option<ExecutionStatus>,
    /// Output (on success).
    pub output: Option<Arc<Value>>,
    /// Error name.
    pub error: Option<String>,
    /// Error cause.
    pub cause: Option<String>,
    /// End time.
    pub stopped: Option<Timestamp>,
    /// Where a failed execution can be retried from.
    pub retry_point: Option<crate::model::RetryPoint>,
    /// Running again after a retry: clears output, error, cause, end time and retry point
    /// before the fields above apply.
    pub reopen: bool,
}

impl ExecutionUpdate {
    /// Applies the update to a record, as every store does when it commits one.
    pub fn apply_to(self, r: &mut ExecutionRecord) {
        if self.reopen {
            r.output = None;
            r.error = None;
            r.cause = None;
            r.stopped = None;
            r.retry_point = None;
        }
        if self.retry_point.is_some() {
            r.retry_point = self.retry_point;
        }
        if let Some(s) = self.status {
            r.status = s;
        }
        if self.output.is_some() {
            r.output = self.output;
        }
        if self.error.is_some() {
            r.error = self.error;
        }
        if self.cause.is_some() {
            r.cause = self.cause;
        }
        if self.stopped.is_some() {
            r.stopped = self.stopped;
        }
    }
}

/// One page of a listing and the cursor of the next page.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Cursor for the next page; `None` on the last page.
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// A page from a listing asked for one row more than `limit` (the extra row only tells
    /// that there is a next page): keeps `limit` rows, converts them, and takes the next
    /// page's cursor from the last one kept.
    pub fn from_overfetch<R, E>(
        mut rows: Vec<R>,
        limit: usize,
        convert: impl FnMut(R) -> Result<T, E>,
        cursor: impl Fn(&T) -> String,
    ) -> Result<Page<T>, E> {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let items = rows
            .into_iter()
            .map(convert)
            .collect::<Result<Vec<T>, E>>()?;
        let next = if more { items.last().map(cursor) } else { None };
        Ok(Page { items, next })
    }
}

/// Filters of an execution listing.
#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    /// Only executions in this status.
    pub status: Option<ExecutionStatus>,
    /// Only executions whose name starts with this.
    pub name_prefix: Option<String>,
    /// Only executions started at or after this time.
    pub started_after: Option<Timestamp>,
    /// Only executions started at or before this time.
    pub started_before: Option<Timestamp>,
}

impl ExecutionFilter {
    /// Whether a record passes the filter.
    pub fn accepts(&self, r: &ExecutionRecord) -> bool {
        self.status.is_none_or(|s| r.status == s)
            && self
                .name_prefix
                .as_deref()
                .is_none_or(|p| r.name.starts_with(p))
            && self.started_after.is_none_or(|t| r.started >= t)
            && self.started_before.is_none_or(|t| r.started <= t)
    }
}

/// A pending deadline: a Wait or a retry back-off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimerRecord {
    /// Unique id.
    pub id: String,
    /// The execution it belongs to.
    pub execution_id: String,
    /// The state that waits.
    pub state: String,
    /// When it fires.
    pub due: Timestamp,
}

/// Whether a task token still waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenState {
    /// The task waits for a report.
    Waiting,
    /// A report (or a timeout, or the end of the execution) completed it.
    Completed,
}

/// A task token handed out by a callback task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskTokenRecord {
    /// The opaque token.
    pub token: String,
    /// The execution that waits.
    pub execution_id: String,
    /// The flow of that execution.
    pub flow: FlowKey,
    /// The execution's name.
    pub execution_name: String,
    /// The waiting state.
    pub state: String,
    /// Waiting or completed.
    pub status: TokenState,
    /// When it was handed out.
    pub created: Timestamp,
    /// The report that completed it, kept until the waiting task records it:
    /// `{"output": ...}` or `{"error": ..., "cause": ...}`. `None` while waiting, and when a
    /// timeout or the end of the execution completed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Value>,
}
