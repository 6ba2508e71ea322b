//! Canonical names of the errors the engine itself raises inside an execution.
//!
//! Retry and catch policies match error names. User errors (a function's error type, a Fail
//! state's code) keep their own names; errors raised by the engine use the names below, and
//! each dialect translates between these and its vendor's names (`FnF.TaskTimeout`, ...) both
//! when it compiles a policy and when it renders an execution.

/// Matches every error in a retry or catch policy.
pub const ALL: &str = "*";
/// A task ran longer than its timeout (also while waiting for a callback).
pub const TASK_TIMEOUT: &str = "sys.TaskTimeout";
/// A data transform or expression failed at run time (bad path type, bad function argument).
pub const RUNTIME: &str = "sys.Runtime";
/// A state produced data of the wrong shape (for example a task result that must be an object).
pub const INVALID_OUTPUT: &str = "sys.InvalidOutput";
/// A state's input or output exceeded the configured payload limit.
pub const PAYLOAD_TOO_LARGE: &str = "sys.PayloadTooLarge";
/// No `[[functions]]` binding matches the task's target.
pub const FUNCTION_NOT_FOUND: &str = "sys.FunctionNotFound";
/// Prefix of invocation failures that are not the function's own error: `sys.Invoke.<Code>`
/// (for example `sys.Invoke.Throttled`, `sys.Invoke.Unknown`).
pub const INVOKE_PREFIX: &str = "sys.Invoke.";
/// Prefix of failures to start a sub-flow: `sys.Flow.<Code>` (`sys.Flow.FlowNotExists`,
/// `sys.Flow.ExecutionAlreadyExists`, ...).
pub const FLOW_PREFIX: &str = "sys.Flow.";
/// A Fail state that names no error.
pub const FAIL: &str = "sys.Fail";
/// The whole execution ran past its timeout.
pub const EXECUTION_TIMEOUT: &str = "sys.ExecutionTimeout";
/// The execution was stopped by an API call and no error name was given.
pub const STOPPED: &str = "sys.Stopped";
/// The execution exceeded the configured number of history events.
pub const HISTORY_LIMIT: &str = "sys.HistoryLimitExceeded";

/// Whether a policy's error list matches `name` (an entry of [`ALL`] matches everything).
pub fn matches(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| p == ALL || p == name)
}
