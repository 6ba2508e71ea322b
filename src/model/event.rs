//! Canonical history events.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::time::Timestamp;

/// What happened. Each dialect renders these with its vendor's event type names.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The execution began. Detail: `input`.
    ExecutionStarted,
    /// The execution ended with an output. Detail: `output`.
    ExecutionSucceeded,
    /// The execution ended with an error. Detail: `error`, `cause`.
    ExecutionFailed,
    /// The execution ran past its timeout. Detail: `error`, `cause`.
    ExecutionTimedOut,
    /// The execution was stopped. Detail: `error`, `cause`.
    ExecutionStopped,
    /// Control reached a state. Detail: `input` (raw input).
    StateEntered,
    /// The state began its work. Detail: `input` (effective input).
    StateStarted,
    /// The state's work succeeded. Detail: `output`.
    StateSucceeded,
    /// The state's work failed. Detail: `error`, `cause`.
    StateFailed,
    /// Control left the state. Detail: `output`.
    StateExited,
    /// A task call was scheduled. Detail: `resource`, `input`, `attempt`, `task_token`?.
    TaskScheduled,
    /// A task call began. Detail: `resource`, `attempt`.
    TaskStarted,
    /// A callback task handed its token out and now waits. Detail: `task_token`.
    TaskSubmitted,
    /// A task returned a result. Detail: `output`.
    TaskSucceeded,
    /// A task call failed. Detail: `error`, `cause`.
    TaskFailed,
    /// A task ran past its timeout. Detail: `error`, `cause`.
    TaskTimedOut,
    /// A retry was scheduled after a back-off. Detail: `error`, `attempt`, `delay_seconds`.
    RetryScheduled,
    /// A catch policy handled an error. Detail: `error`, `next`.
    ErrorCaught,
    /// A Parallel branch started. Detail: `index`, `input`.
    BranchEntered,
    /// A Parallel branch ended. Detail: `index`, `output` or `error`.
    BranchExited,
    /// A Map iteration started. Detail: `index`, `input`.
    IterationEntered,
    /// A Map iteration ended. Detail: `index`, `output` or `error`.
    IterationExited,
    /// A Wait began. Detail: `until` (RFC 3339).
    WaitStarted,
    /// A Wait's deadline passed.
    WaitEnded,
}

/// One numbered history event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// 1-based, increasing within the execution.
    pub id: u64,
    /// Id of the event that caused this one (0 for the first event).
    pub cause_id: u64,
    /// When it happened.
    pub time: Timestamp,
    /// What happened.
    pub kind: EventKind,
    /// The state it concerns (empty for execution-level events).
    pub state: String,
    /// Canonical detail object (lower-case keys, see [`EventKind`]).
    pub detail: Value,
}
