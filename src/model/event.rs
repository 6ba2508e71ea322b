//! Canonical history events.

use std::sync::Arc;

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
    /// The gateway restarted (or another node took the execution over) and the execution
    /// carries on from its last committed transition: the state it was in runs again.
    /// Detail: `next` (that state, absent when it starts over from the beginning).
    ExecutionResumed,
    /// Control reached a state. Detail: `input` (raw input).
    StateEntered,
    /// The state began its work. Detail: `input` (effective input).
    StateStarted,
    /// The state's work succeeded. Detail: `output`.
    StateSucceeded,
    /// The state's work failed. Detail: `error`, `cause`.
    StateFailed,
    /// Control left the state. Detail: `output`, or `error` and `cause` when it failed.
    StateExited,
    /// A task call was scheduled. Detail: `resource`, `input`, `attempt`, `task_token`.
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
    /// A catch policy handled an error. Detail: `error`, `cause`, `next`.
    ErrorCaught,
    /// A Parallel branch started. Detail: `index`, `input`.
    BranchEntered,
    /// A Parallel branch ended. Detail: `index`, `output` or `error` and `cause`.
    BranchExited,
    /// A Map iteration started. Detail: `index`, `input`.
    IterationEntered,
    /// A Map iteration ended. Detail: `index`, `output` or `error` and `cause`.
    IterationExited,
    /// A Wait began. Detail: `seconds`, `until`.
    WaitStarted,
    /// A Wait's deadline passed.
    WaitEnded,
}

/// The data of an event. Payloads are shared (`Arc`) with the execution's running state, so
/// recording them costs no copy; the rarer fields live behind one box to keep events small.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "EventDetailRepr")]
pub struct EventDetail {
    /// Input of the execution, state, branch, iteration or task call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Arc<Value>>,
    /// Output of the execution, state, branch, iteration or task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Arc<Value>>,
    /// Everything else (errors, task and timing data).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub more: Option<Box<DetailMore>>,
}

/// The serde form of an [`EventDetail`]: a flattened `Option` always reads back as `Some`, so
/// reading normalises an empty `more` to `None` (what was written).
#[derive(Deserialize)]
struct EventDetailRepr {
    #[serde(default)]
    input: Option<Arc<Value>>,
    #[serde(default)]
    output: Option<Arc<Value>>,
    #[serde(flatten)]
    more: DetailMore,
}

impl From<EventDetailRepr> for EventDetail {
    fn from(r: EventDetailRepr) -> Self {
        EventDetail {
            input: r.input,
            output: r.output,
            more: (r.more != DetailMore::default()).then(|| Box::new(r.more)),
        }
    }
}

/// The less common parts of an [`EventDetail`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DetailMore {
    /// Error name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Error cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The task's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Arc<str>>,
    /// 0-based attempt of a task (retries count up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// The task token of a callback task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_token: Option<String>,
    /// Branch or iteration index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// Back-off before a retry, in flow seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_seconds: Option<f64>,
    /// Length of a wait, in flow seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// When a wait ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    /// The state a catch policy continues at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// The object a state merged into `$global` when it succeeded (kept in the history so a
    /// resumed execution rebuilds `$global`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<Value>,
}

impl EventDetail {
    /// A detail with an input.
    pub fn input(v: Arc<Value>) -> Self {
        EventDetail {
            input: Some(v),
            ..Default::default()
        }
    }

    /// A detail with an output.
    pub fn output(v: Arc<Value>) -> Self {
        EventDetail {
            output: Some(v),
            ..Default::default()
        }
    }

    /// A detail with only the less common parts.
    pub fn more(more: DetailMore) -> Self {
        EventDetail {
            more: Some(Box::new(more)),
            ..Default::default()
        }
    }

    /// A detail with an error and cause.
    pub fn error(error: &str, cause: &str) -> Self {
        Self::more(DetailMore {
            error: Some(error.to_string()),
            cause: Some(cause.to_string()),
            ..Default::default()
        })
    }

    /// The less common parts (empty when absent).
    pub fn extra(&self) -> &DetailMore {
        static EMPTY: DetailMore = DetailMore {
            error: None,
            cause: None,
            resource: None,
            attempt: None,
            task_token: None,
            index: None,
            delay_seconds: None,
            seconds: None,
            until: None,
            next: None,
            global: None,
        };
        self.more.as_deref().unwrap_or(&EMPTY)
    }

    /// The detail as a JSON object (the canonical rendering).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
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
    pub state: StateLabel,
    /// What it carried.
    pub detail: EventDetail,
}

/// A state's name as events carry it: held inline (no allocation, no reference count) up to
/// 23 bytes, shared behind an `Arc` past that. A shared `Arc<str>` per state was cheap to clone
/// but its count was written by every event of every execution of the flow, from both
/// workers: incrementing it at each event and decrementing it when a finished execution was
/// dropped missed the cache every time (`perf`: ~6% of the server in a two-task sync run).
pub type StateLabel = smol_str::SmolStr;

impl Event {
    /// The `state` of execution-level events (empty).
    pub fn no_state() -> StateLabel {
        StateLabel::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_labels_read_and_write_as_plain_strings_of_any_length() {
        for name in ["", "Pass1", "a state name longer than twenty-three bytes é"] {
            let event = Event {
                id: 2,
                cause_id: 1,
                time: crate::model::time::now(),
                kind: EventKind::StateEntered,
                state: StateLabel::from(name),
                detail: EventDetail::default(),
            };
            let text = serde_json::to_string(&event).unwrap();
            assert!(text.contains(&format!(
                "\"state\":{}",
                serde_json::to_string(name).unwrap()
            )));
            let back: Event = serde_json::from_str(&text).unwrap();
            assert_eq!(&*back.state, name);
            assert_eq!(back, event);
        }
    }

    #[test]
    fn details_read_back_exactly_as_written() {
        for d in [
            EventDetail::input(Arc::new(serde_json::json!({"a": 1}))),
            EventDetail::error("E", "c"),
            EventDetail::default(),
        ] {
            let text = serde_json::to_string(&d).unwrap();
            let back: EventDetail = serde_json::from_str(&text).unwrap();
            assert_eq!(back, d, "{text}");
        }
    }
}
