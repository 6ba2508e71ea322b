//! Task invocation: the [`Invoker`] trait every kind of function target implements, and the
//! [`FunctionRegistry`] that resolves a task's target to an invoker through the
//! `[[functions]]` bindings of the configuration.

pub mod binding;
pub mod command;
pub mod http;
pub mod mock;
pub mod services;
pub mod testcases;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

pub use binding::{FunctionBinding, FunctionRegistry};

/// One call of a function by a Task state. It borrows everything from the running task (the
/// engine builds one per call, and copying the event and five strings for each was a fifth of
/// a mock call's cost).
#[derive(Debug, Clone, Copy)]
pub struct Invocation<'a> {
    /// The task's target as written in the flow (an ARN, a URN, a name).
    pub resource: &'a str,
    /// The event sent to the function.
    pub event: &'a Value,
    /// 0 for the first attempt, then 1, 2, ... for each retry of the same state visit.
    pub attempt: u32,
    /// The execution's id.
    pub execution_id: &'a str,
    /// The execution's name.
    pub execution_name: &'a str,
    /// The flow's name.
    pub flow_name: &'a str,
    /// The state's name.
    pub state_name: &'a str,
    /// The task token, for callback tasks.
    pub task_token: Option<&'a str>,
    /// How long the call may take, if the task has a timeout.
    pub timeout: Option<Duration>,
}

/// Why a call did not return a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvokeError {
    /// The function ran and reported an error: its type (an exception class, an error code)
    /// and message. Retry/catch policies match the type.
    Function {
        /// The error type.
        error_type: String,
        /// The error message.
        message: String,
    },
    /// The call itself failed (unreachable endpoint, throttled, bad response): an invocation
    /// failure code such as `Throttled`, `Unknown`, `BadResponse`, `Unreachable`, `Timeout`.
    Invocation {
        /// The failure code.
        code: String,
        /// Details.
        message: String,
    },
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvokeError::Function {
                error_type,
                message,
            } => write!(f, "{error_type}: {message}"),
            InvokeError::Invocation { code, message } => {
                write!(f, "invocation failed ({code}): {message}")
            }
        }
    }
}

/// Calls functions of one kind (HTTP endpoint, scripted mock, ...).
#[async_trait]
pub trait Invoker: Send + Sync + std::fmt::Debug {
    /// Performs one call. The engine enforces the task timeout around this future and drops
    /// it when the execution is stopped, so implementations must be cancel-safe.
    async fn invoke(&self, call: &Invocation<'_>) -> Result<Value, InvokeError>;

    /// [`Invoker::invoke`] with the result shared, as the engine keeps it. An invoker that
    /// answers with a value it holds (a mock's scripted answer) hands out that value instead
    /// of a copy per call; the others wrap what [`Invoker::invoke`] returns.
    async fn invoke_shared(&self, call: &Invocation<'_>) -> Result<Arc<Value>, InvokeError> {
        self.invoke(call).await.map(Arc::new)
    }
}
