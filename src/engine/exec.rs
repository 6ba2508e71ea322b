//! The context of one running execution: event numbering and commits, cancellation, the
//! execution-wide `$global`, and the canonical `$context` object.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use super::Inner;
use crate::model::error_names;
use crate::model::execution::FlowKey;
use crate::model::time::Timestamp;
use crate::model::{Event, EventDetail, EventKind, ExecError, Flow, StateLabel};
use crate::store::StoreError;

/// Why a piece of the interpreter stopped early.
#[derive(Debug)]
pub(crate) enum Interrupt {
    /// An error that retry/catch policies may handle.
    Error(ExecError),
    /// The execution (or the enclosing Parallel/Map) was cancelled: unwind without handling.
    Cancelled,
}

impl Interrupt {
    /// A store failure, surfaced as a runtime error of the execution.
    pub(crate) fn store(e: StoreError) -> Interrupt {
        Interrupt::Error(ExecError::new(
            error_names::RUNTIME,
            format!("store failure: {e}"),
        ))
    }

    /// A runtime error with a cause.
    pub(crate) fn runtime(cause: impl Into<String>) -> Interrupt {
        Interrupt::Error(ExecError::new(error_names::RUNTIME, cause))
    }
}

impl From<ExecError> for Interrupt {
    fn from(e: ExecError) -> Self {
        Interrupt::Error(e)
    }
}

/// Why the root cancellation token was triggered.
#[derive(Debug, Clone)]
pub(crate) enum Abort {
    /// StopExecution (or terminate) with this error and cause.
    Stop(ExecError),
    /// The execution must fail with this error (history limit).
    Fail(ExecError),
    /// The execution timeout passed.
    TimedOut,
    /// Another node holds the execution now (this node lost its lease): stop running it here
    /// without writing anything.
    Fenced,
    /// This node is shutting down gracefully and hands the execution to the other nodes: a
    /// task call already in flight finishes and is recorded (so the node that takes over does
    /// not call again), then the run stops here like [`Abort::Fenced`], after committing what
    /// it has recorded.
    Release,
    /// The execution parked in a long top-level Wait (see `park`): its run ends here without
    /// writing anything, and it wakes up at the Wait's deadline.
    Park,
}

/// Everything a running execution shares across its states and branches.
#[derive(Debug)]
pub(crate) struct ExecCtx {
    pub(crate) engine: Arc<Inner>,
    /// The execution's id and name, shared with its record.
    pub(crate) id: Arc<str>,
    pub(crate) name: Arc<str>,
    pub(crate) flow: Arc<Flow>,
    pub(crate) flow_key: FlowKey,
    pub(crate) input: Arc<Value>,
    pub(crate) started: Timestamp,
    pub(crate) root_cancel: CancellationToken,
    /// A parent task's token this execution reports its result to when it ends.
    pub(crate) callback_token: Option<String>,
    /// The mock test case the execution's tasks answer from.
    pub(crate) test_case: Option<String>,
    pub(crate) abort: Mutex<Option<Abort>>,
    pub(crate) global: Mutex<Value>,
    /// The top-level state that failed, and its raw input (where a retry starts again).
    pub(crate) failed_at: Mutex<Option<crate::model::RetryPoint>>,
    /// Where a resumed execution carries on (see `resume`); `None` for a fresh run.
    pub(crate) resume: Option<Box<super::resume::ResumePlan>>,
    /// Events in the stored history: those before this run plus those it committed (ids can
    /// run ahead of it: an event numbered past the history limit is never stored).
    committed: AtomicU64,
    /// Event numbering, time and buffer, behind one lock: recording an event takes it once.
    journal: Mutex<Journal>,
}

/// The events of a run not yet committed, and what the next one is stamped with.
#[derive(Debug)]
struct Journal {
    /// Id of the next event.
    next_event: u64,
    /// The time stamped on new events. Refreshed by [`ExecCtx::tick`] when a state begins and
    /// whenever the execution resumes from a wait or a call, so a burst of pure transitions
    /// reads the clock once.
    clock: Timestamp,
    /// Events numbered but not yet committed: pure transitions are buffered and committed
    /// together before the next side effect (a call, a wait, a callback) and at the end.
    pending: Vec<Event>,
}

impl Journal {
    /// The next event: numbered and stamped with the current time.
    fn stamp(
        &mut self,
        kind: EventKind,
        state: &StateLabel,
        cause: u64,
        detail: EventDetail,
    ) -> Event {
        let id = self.next_event;
        self.next_event += 1;
        Event {
            id,
            cause_id: cause,
            time: self.clock,
            kind,
            state: state.clone(),
            detail,
        }
    }
}

impl ExecCtx {
    /// A context whose next event id follows `first_event_id`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        engine: Arc<Inner>,
        id: Arc<str>,
        name: Arc<str>,
        flow: Arc<Flow>,
        flow_key: FlowKey,
        input: Arc<Value>,
        started: Timestamp,
        first_event_id: u64,
        callback_token: Option<String>,
        test_case: Option<String>,
    ) -> Self {
        // Room for a straight run through the top level (a task state records up to six
        // events) and the end, so the buffer does not grow mid-run.
        let room = (flow.root.states.len() * 6 + 2).clamp(16, 64);
        ExecCtx {
            engine,
            id,
            name,
            flow,
            flow_key,
            input,
            started,
            root_cancel: CancellationToken::new(),
            callback_token,
            test_case,
            abort: Mutex::new(None),
            global: Mutex::new(Value::Object(Map::new())),
            failed_at: Mutex::new(None),
            resume: None,
            committed: AtomicU64::new(first_event_id),
            journal: Mutex::new(Journal {
                next_event: first_event_id + 1,
                clock: Utc::now(),
                pending: Vec::with_capacity(room),
            }),
        }
    }

    /// Cancels the whole execution for `reason` (the first reason wins; returns whether it
    /// was this one).
    pub(crate) fn abort(&self, reason: Abort) -> bool {
        let mut a = self.abort.lock().expect("abort lock");
        let first = a.is_none();
        if first {
            *a = Some(reason);
        }
        drop(a);
        self.root_cancel.cancel();
        first
    }

    /// Whether this node lets go of the execution (it lost it, or hands it over at shutdown):
    /// the run that carries it on elsewhere still waits with its task tokens and children.
    pub(crate) fn is_handed_over(&self) -> bool {
        matches!(
            *self.abort.lock().expect("abort lock"),
            Some(Abort::Fenced | Abort::Release)
        )
    }

    /// Whether the node is handing the execution over at shutdown ([`Abort::Release`]).
    pub(crate) fn is_releasing(&self) -> bool {
        matches!(
            *self.abort.lock().expect("abort lock"),
            Some(Abort::Release)
        )
    }

    /// Whether the execution is parking (its run is ending to wake up later).
    pub(crate) fn is_parking(&self) -> bool {
        matches!(*self.abort.lock().expect("abort lock"), Some(Abort::Park))
    }

    /// Reads the wall clock for the events that follow.
    pub(crate) fn tick(&self) {
        let now = Utc::now();
        self.journal().clock = now;
    }

    fn journal(&self) -> std::sync::MutexGuard<'_, Journal> {
        self.journal.lock().expect("journal lock")
    }

    /// Id of the most recently numbered event.
    pub(crate) fn last_event_id(&self) -> u64 {
        self.journal().next_event - 1
    }

    /// Events in the stored history, counting `more` about to be committed with them.
    pub(crate) fn committed_with(&self, more: usize) -> u64 {
        self.committed.load(Ordering::Relaxed) + more as u64
    }

    /// Builds an event with the next id.
    pub(crate) fn event(
        &self,
        kind: EventKind,
        state: &StateLabel,
        cause: u64,
        detail: EventDetail,
    ) -> Event {
        self.journal().stamp(kind, state, cause, detail)
    }

    /// Records one event. It is committed with the next [`ExecCtx::flush`], which runs before
    /// any side effect (except a task call of an Express execution kept in memory, see
    /// `states::task`), so an effect never happens before the events that lead to it are
    /// stored. Past the history limit, the execution is aborted as failed and the caller
    /// unwinds.
    pub(crate) async fn emit(
        &self,
        kind: EventKind,
        state: &StateLabel,
        cause: u64,
        detail: EventDetail,
    ) -> Result<u64, Interrupt> {
        if let Some(id) = self.resume.as_ref().and_then(|plan| plan.replayed(kind)) {
            return Ok(id);
        }
        let mut j = self.journal();
        let event = j.stamp(kind, state, cause, detail);
        if event.id > self.engine.config.max_history_events {
            drop(j);
            self.abort(Abort::Fail(ExecError::new(
                error_names::HISTORY_LIMIT,
                format!(
                    "the execution exceeded {} history events",
                    self.engine.config.max_history_events
                ),
            )));
            return Err(Interrupt::Cancelled);
        }
        let id = event.id;
        j.pending.push(event);
        Ok(id)
    }

    /// Commits the buffered events. Called before side effects (see [`ExecCtx::emit`]).
    pub(crate) async fn flush(&self) -> Result<(), Interrupt> {
        let events = self.take_pending();
        if events.is_empty() {
            return Ok(());
        }
        let count = events.len() as u64;
        match self.engine.store.commit(&self.id, events, None).await {
            Ok(()) => {
                self.committed.fetch_add(count, Ordering::Relaxed);
                Ok(())
            }
            Err(StoreError::Fenced(_)) => {
                self.abort(Abort::Fenced);
                Err(Interrupt::Cancelled)
            }
            Err(e) => Err(Interrupt::store(e)),
        }
    }

    /// The buffered events, leaving the buffer empty.
    pub(crate) fn take_pending(&self) -> Vec<Event> {
        std::mem::take(&mut self.journal().pending)
    }

    /// The canonical `$context` object for a state (see docs/expressions.md).
    pub(crate) fn context_value(&self, state: &StateInfo<'_>) -> Value {
        json!({
            "execution": {
                "id": self.id,
                "name": self.name,
                "input": *self.input,
                "start_time": self.started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            },
            "flow": {"name": self.flow_key.name, "namespace": self.flow_key.namespace},
            "state": {
                "name": state.name,
                "input": state.input,
                "retry_count": state.retry_count,
                "task_token": state.task_token,
                "event_id": state.event_id,
                "error": state.error.map(|e| json!({"error": e.name, "cause": e.cause})),
            },
        })
    }

    /// Checks a payload against the size limit. `what` names it in the error (formatted only
    /// then: pass `format_args!`).
    pub(crate) fn check_size(
        &self,
        what: impl std::fmt::Display,
        v: &Value,
    ) -> Result<(), Interrupt> {
        let limit = self.engine.config.max_payload_bytes;
        // Cheap upper bound first: most payloads are tiny.
        let size = serialized_len(v);
        if size > limit {
            return Err(Interrupt::Error(ExecError::new(
                error_names::PAYLOAD_TOO_LARGE,
                format!("{what} is {size} bytes, more than the limit of {limit} bytes"),
            )));
        }
        Ok(())
    }
}

/// What `$context.state` shows about the current state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StateInfo<'a> {
    pub(crate) name: &'a str,
    pub(crate) input: &'a Value,
    pub(crate) retry_count: u32,
    pub(crate) task_token: Option<&'a str>,
    pub(crate) event_id: u64,
    pub(crate) error: Option<&'a ExecError>,
}

/// Length of the compact JSON serialization of `v`, without allocating it.
pub(crate) fn serialized_len(v: &Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Counter(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}
