//! Task tokens: the waiters of callback tasks, and the reports that complete them.

use base64::Engine as _;
use dashmap::DashMap;
use rand::RngCore;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::model::ExecError;

/// How a reported task ended.
#[derive(Debug)]
pub(crate) enum CallbackOutcome {
    /// ReportTaskSucceeded / a `success` callback, with the output.
    Succeeded(Value),
    /// ReportTaskFailed / a `fail` callback, with the error.
    Failed(ExecError),
}

/// A report delivered to the waiting task; the task answers with the id of the event it
/// recorded for it.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) outcome: CallbackOutcome,
    pub(crate) reply: oneshot::Sender<u64>,
}

/// The tasks of this process that wait for a report, by token.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    map: DashMap<String, oneshot::Sender<Report>, ahash::RandomState>,
    /// (execution id, state name) to token, for callbacks addressed by state (Huawei).
    by_state: DashMap<(String, String), String, ahash::RandomState>,
}

impl Waiters {
    /// Registers a waiter for `token` (before the callee can possibly report).
    pub(crate) fn register(
        &self,
        token: &str,
        execution_id: &str,
        state: &str,
    ) -> oneshot::Receiver<Report> {
        let (tx, rx) = oneshot::channel();
        self.map.insert(token.to_string(), tx);
        self.by_state.insert(
            (execution_id.to_string(), state.to_string()),
            token.to_string(),
        );
        rx
    }

    /// Takes the waiter of `token`, if it still waits here.
    pub(crate) fn take(&self, token: &str) -> Option<oneshot::Sender<Report>> {
        self.by_state.retain(|_, t| t != token);
        self.map.remove(token).map(|(_, tx)| tx)
    }

    /// The token a state of an execution waits with.
    pub(crate) fn token_for(&self, execution_id: &str, state: &str) -> Option<String> {
        self.by_state
            .get(&(execution_id.to_string(), state.to_string()))
            .map(|t| t.clone())
    }
}

/// A new opaque task token. Standard base64, so tokens contain `+`, `/` and `=` as the clouds'
/// do, which exercises clients' URL encoding.
pub(crate) fn new_token() -> String {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    let mut s = base64::engine::general_purpose::STANDARD.encode(bytes);
    s.push_str("==");
    s
}
