//! Resuming an execution from its committed history, after a restart or when this node takes
//! over an execution whose node died.
//!
//! The history is the source of truth. Reading it gives:
//! - the top-level state the execution was in (entered, not exited) and its raw input: it
//!   runs again from there, after an `ExecutionResumed` event (an invocation in flight at the
//!   crash runs again: at least once);
//! - that state's retry count and, when it was backing off, the back-off deadline;
//! - the deadlines of the Waits in progress (`WaitStarted.until`): they keep them, and one that
//!   passed while the gateway was down fires at once;
//! - the tokens of the callback tasks in progress: they keep their token (a report made with
//!   it still lands), and a task whose call had already returned (`TaskSubmitted`) is not
//!   called again;
//! - the accumulated `$scope_local` of an old-FDL top-level scope.
//!
//! A Parallel or Map in progress at the top level runs again as a whole; the Waits and
//! callback tasks inside it still find their deadlines and tokens by state name.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde_json::{Map, Value};

use crate::model::flow::{Flow, StateKind};
use crate::model::time::Timestamp;
use crate::model::{Event, EventKind, RetryPoint};

/// Where and how a resumed execution carries on.
#[derive(Debug, Default)]
pub(crate) struct ResumePlan {
    /// The top-level state to run again with its raw input; `None` starts from the beginning.
    pub(crate) point: Option<RetryPoint>,
    /// The retry state of that state, used once when it runs again.
    pub(crate) carry: Mutex<Option<RetryCarry>>,
    /// The top-level `$scope_local` accumulated before that state (old FDL).
    pub(crate) local: Option<Value>,
    /// `$global` as the recorded state successes left it.
    pub(crate) global: Value,
    /// Deadlines of Waits in progress, by state label, oldest first.
    waits: Mutex<HashMap<String, VecDeque<Timestamp>>>,
    /// Callback tasks in progress, by state label, oldest first.
    tokens: Mutex<HashMap<String, VecDeque<ResumedToken>>>,
    /// Tokens handed to a task that runs again, by token: the task reads how far it got.
    claimed_tokens: Mutex<HashMap<String, ResumedToken>>,
    /// For a parked execution woken up ([`ResumePlan::for_parked`]): the events its
    /// top-level state had recorded before it parked, oldest first. Running that state again
    /// meets them in the same order, and [`ResumePlan::replayed`] hands back their ids
    /// instead of recording them twice, so the history reads as if the run never stopped.
    replay: Mutex<VecDeque<(EventKind, u64)>>,
    /// Whether the execution carries on unseen (a parked execution woken up): no
    /// `ExecutionResumed` event is recorded.
    pub(crate) silent: bool,
}

/// The retry state of the top-level state that runs again.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RetryCarry {
    /// Retries already made.
    pub(crate) attempt: u32,
    /// The error of the last retry (selects the policy whose count continues).
    pub(crate) error: Option<String>,
    /// When the back-off in progress ends.
    pub(crate) backoff_until: Option<Timestamp>,
}

/// A callback task that was waiting when the execution was interrupted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResumedToken {
    /// The token it handed out.
    pub(crate) token: String,
    /// Whether its call had returned (the callee has the token): it is not called again.
    pub(crate) submitted: bool,
    /// When the task was scheduled (its timeout counts from there).
    pub(crate) scheduled: Timestamp,
}

impl ResumePlan {
    /// Reads the plan off a committed history.
    pub(crate) fn from_history(flow: &Flow, events: &[Event], time_scale: f64) -> ResumePlan {
        let root = &flow.root;
        let mut current: Option<(RetryPoint, RetryCarry)> = None;
        // A top-level Parallel or Map in progress: events of other labels are nested.
        let mut fanout: Option<String> = None;
        let mut local = root.accumulate_local.then(|| Value::Object(Map::new()));
        let mut waits: HashMap<String, VecDeque<Timestamp>> = HashMap::new();
        let mut tokens: HashMap<String, VecDeque<ResumedToken>> = HashMap::new();
        let mut global = Map::new();
        for e in events {
            if let (EventKind::StateSucceeded, Some(Value::Object(update))) =
                (e.kind, &e.detail.extra().global)
            {
                for (k, v) in update {
                    global.insert(k.clone(), v.clone());
                }
            }
            let label = &*e.state;
            let is_root_state = root.state(label).is_some();
            let nested = fanout.as_deref().is_some_and(|f| f != label);
            if is_root_state && !nested {
                match e.kind {
                    EventKind::StateEntered => {
                        let input = e.detail.input.clone().unwrap_or_default();
                        current = Some((
                            RetryPoint {
                                state: label.to_string(),
                                input,
                            },
                            RetryCarry::default(),
                        ));
                        if matches!(
                            root.state(label).map(|s| &s.kind),
                            Some(StateKind::Parallel(_) | StateKind::Map(_))
                        ) {
                            fanout = Some(label.to_string());
                        }
                        waits.clear();
                        tokens.clear();
                    }
                    EventKind::StateExited => {
                        if let (Some(Value::Object(l)), Some(Value::Object(o))) =
                            (local.as_mut(), e.detail.output.as_deref())
                        {
                            for (k, v) in o {
                                l.insert(k.clone(), v.clone());
                            }
                        }
                        current = None;
                        fanout = None;
                    }
                    EventKind::RetryScheduled => {
                        if let Some((_, carry)) = current.as_mut() {
                            let more = e.detail.extra();
                            carry.attempt = more.attempt.unwrap_or(carry.attempt + 1);
                            carry.error = more.error.clone();
                            let delay = more.delay_seconds.unwrap_or(0.0);
                            carry.backoff_until = Some(e.time + real_delay(delay, time_scale));
                        }
                    }
                    EventKind::StateStarted => {
                        if let Some((_, carry)) = current.as_mut() {
                            carry.backoff_until = None;
                        }
                    }
                    _ => track(e, &mut waits, &mut tokens),
                }
            } else {
                track(e, &mut waits, &mut tokens);
            }
        }
        let (point, carry) = match current {
            Some((p, c)) => (Some(p), Some(c)),
            None => (None, None),
        };
        ResumePlan {
            point,
            carry: Mutex::new(carry),
            local,
            global: Value::Object(global),
            waits: Mutex::new(waits),
            tokens: Mutex::new(tokens),
            claimed_tokens: Mutex::new(HashMap::new()),
            replay: Mutex::new(VecDeque::new()),
            silent: false,
        }
    }

    /// The plan of a parked execution that wakes up: it parked in a top-level Wait during the
    /// first attempt of that state, so the state's recorded events since it was entered are
    /// exactly `StateEntered`, `StateStarted`, `WaitStarted`. Running the state again replays
    /// them (same ids, nothing recorded) and the Wait sleeps to its recorded deadline.
    /// `None` when the history does not end that way (then the execution resumes the usual,
    /// visible way).
    pub(crate) fn for_parked(flow: &Flow, events: &[Event], time_scale: f64) -> Option<Self> {
        let mut plan = ResumePlan::from_history(flow, events, time_scale);
        let state = plan.point.as_ref()?.state.clone();
        let entered = events
            .iter()
            .rposition(|e| e.kind == EventKind::StateEntered && *e.state == *state)?;
        let tail: VecDeque<(EventKind, u64)> =
            events[entered..].iter().map(|e| (e.kind, e.id)).collect();
        let kinds: Vec<EventKind> = tail.iter().map(|(k, _)| *k).collect();
        if kinds
            != [
                EventKind::StateEntered,
                EventKind::StateStarted,
                EventKind::WaitStarted,
            ]
        {
            return None;
        }
        plan.replay = Mutex::new(tail);
        plan.silent = true;
        Some(plan)
    }

    /// The id of an event already recorded before the execution parked, when `kind` is the
    /// next one of them: the caller records nothing. A different kind ends the replay (the
    /// run went another way; from then on every event is recorded).
    pub(crate) fn replayed(&self, kind: EventKind) -> Option<u64> {
        let mut replay = self.replay.lock().expect("resume lock");
        match replay.front() {
            Some((k, id)) if *k == kind => {
                let id = *id;
                replay.pop_front();
                Some(id)
            }
            Some(_) => {
                replay.clear();
                None
            }
            None => None,
        }
    }

    /// The retry state of the top-level state that runs again, the first time it is asked.
    pub(crate) fn take_carry(&self, state: &str) -> Option<RetryCarry> {
        if self.point.as_ref().is_some_and(|p| p.state == state) {
            self.carry.lock().expect("resume lock").take()
        } else {
            None
        }
    }

    /// The deadline of a Wait of this state that was in progress.
    pub(crate) fn take_wait(&self, label: &str) -> Option<Timestamp> {
        self.waits
            .lock()
            .expect("resume lock")
            .get_mut(label)
            .and_then(VecDeque::pop_front)
    }

    /// The token of a callback task of this state that was waiting; the task then reads the
    /// rest with [`ResumePlan::take_token_state`].
    pub(crate) fn take_token(&self, label: &str) -> Option<String> {
        let t = self
            .tokens
            .lock()
            .expect("resume lock")
            .get_mut(label)
            .and_then(VecDeque::pop_front)?;
        let token = t.token.clone();
        self.claimed_tokens
            .lock()
            .expect("resume lock")
            .insert(token.clone(), t);
        Some(token)
    }

    /// How far the callback task holding `token` had got, if it is a resumed one.
    pub(crate) fn take_token_state(&self, token: &str) -> Option<ResumedToken> {
        self.claimed_tokens
            .lock()
            .expect("resume lock")
            .remove(token)
    }
}

/// The real time a back-off of `flow_seconds` (as recorded) took, with the engine's time scale.
fn real_delay(flow_seconds: f64, time_scale: f64) -> chrono::Duration {
    let real = super::clock::scaled(flow_seconds, time_scale);
    chrono::Duration::from_std(real).unwrap_or(chrono::Duration::MAX)
}

/// Follows the Waits and callback tasks in progress.
fn track(
    e: &Event,
    waits: &mut HashMap<String, VecDeque<Timestamp>>,
    tokens: &mut HashMap<String, VecDeque<ResumedToken>>,
) {
    let label = &*e.state;
    match e.kind {
        EventKind::WaitStarted => {
            if let Some(until) = e.detail.extra().until {
                waits.entry(label.to_string()).or_default().push_back(until);
            }
        }
        EventKind::WaitEnded => {
            if let Some(q) = waits.get_mut(label) {
                q.pop_front();
            }
        }
        EventKind::TaskScheduled => {
            if let Some(token) = &e.detail.extra().task_token {
                tokens
                    .entry(label.to_string())
                    .or_default()
                    .push_back(ResumedToken {
                        token: token.clone(),
                        submitted: false,
                        scheduled: e.time,
                    });
            }
        }
        EventKind::TaskSubmitted => {
            if let (Some(q), Some(token)) = (tokens.get_mut(label), &e.detail.extra().task_token) {
                if let Some(t) = q.iter_mut().find(|t| &t.token == token) {
                    t.submitted = true;
                }
            }
        }
        EventKind::TaskSucceeded | EventKind::TaskFailed | EventKind::TaskTimedOut => {
            if let Some(q) = tokens.get_mut(label) {
                q.pop_front();
            }
        }
        EventKind::ExecutionStarted
        | EventKind::ExecutionSucceeded
        | EventKind::ExecutionFailed
        | EventKind::ExecutionTimedOut
        | EventKind::ExecutionStopped
        | EventKind::ExecutionResumed
        | EventKind::StateEntered
        | EventKind::StateStarted
        | EventKind::StateSucceeded
        | EventKind::StateFailed
        | EventKind::StateExited
        | EventKind::TaskStarted
        | EventKind::RetryScheduled
        | EventKind::ErrorCaught
        | EventKind::BranchEntered
        | EventKind::BranchExited
        | EventKind::IterationEntered
        | EventKind::IterationExited => {}
    }
}
