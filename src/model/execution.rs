//! Canonical executions: status, record and in-execution errors.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

use super::time::Timestamp;

/// How a flow's executions run.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub enum ExecutionMode {
    /// Asynchronous, durable, long-running (up to a year), full history kept.
    #[default]
    Standard,
    /// Synchronous, short (capped, 5 minutes by default), kept in memory with bounded retention.
    Express,
}

/// Canonical execution status; each dialect renders these with its own names.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub enum ExecutionStatus {
    /// Accepted but not yet running.
    Starting,
    /// In progress, including waits and callback waits.
    Running,
    /// Finished with an output.
    Succeeded,
    /// An error reached the top level, or a Fail state ran.
    Failed,
    /// The execution ran past its timeout.
    TimedOut,
    /// Stopped through the API.
    Stopped,
}

impl ExecutionStatus {
    /// Whether the execution has ended.
    pub fn is_terminal(self) -> bool {
        match self {
            ExecutionStatus::Starting | ExecutionStatus::Running => false,
            ExecutionStatus::Succeeded
            | ExecutionStatus::Failed
            | ExecutionStatus::TimedOut
            | ExecutionStatus::Stopped => true,
        }
    }
}

/// An error raised inside an execution: matched by retry/catch policies by `name`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecError {
    /// The error name (a user error type, a Fail code, or one of [`super::error_names`]).
    pub name: String,
    /// Human-readable cause.
    pub cause: String,
    /// Extra data (for example the function output that a `fail_when` condition matched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl ExecError {
    /// An error with a name and cause.
    pub fn new(name: impl Into<String>, cause: impl Into<String>) -> Self {
        ExecError {
            name: name.into(),
            cause: cause.into(),
            data: None,
        }
    }

    /// The error as data: `{"error": name, "cause": cause}` plus the keys of `data`.
    pub fn to_value(&self) -> Value {
        let mut m = serde_json::Map::new();
        if let Some(Value::Object(d)) = &self.data {
            for (k, v) in d {
                m.insert(k.clone(), v.clone());
            }
        }
        m.insert("error".into(), Value::String(self.name.clone()));
        m.insert("cause".into(), Value::String(self.cause.clone()));
        Value::Object(m)
    }
}

impl std::fmt::Display for ExecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.cause)
    }
}

/// Identifies a flow: its namespace (a dialect's tenant: an Alibaba account, a Huawei project)
/// and its name. A shared handle: every execution record and running execution carries its
/// flow's key, and cloning it is a reference count, not two string copies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub struct FlowKey(Arc<FlowKeyParts>);

/// The parts of a [`FlowKey`], read through it (`key.namespace`, `key.name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub struct FlowKeyParts {
    /// The tenant namespace, for example `alibaba` or `huawei/<project_id>`.
    pub namespace: String,
    /// The flow name, unique in its namespace.
    pub name: String,
}

impl FlowKey {
    /// A key from its parts.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        FlowKey(Arc::new(FlowKeyParts {
            namespace: namespace.into(),
            name: name.into(),
        }))
    }
}

/// A flow key's two parts, however they are held: a map keyed by [`FlowKey`] can be searched
/// with `&(namespace, name) as &dyn FlowKeyView` without building a key (two strings and a
/// shared block) per lookup. Hashes and compares exactly as [`FlowKey`] does.
pub trait FlowKeyView {
    /// The namespace.
    fn namespace(&self) -> &str;
    /// The flow name.
    fn name(&self) -> &str;
}

impl FlowKeyView for FlowKey {
    fn namespace(&self) -> &str {
        &self.0.namespace
    }
    fn name(&self) -> &str {
        &self.0.name
    }
}

impl FlowKeyView for (&str, &str) {
    fn namespace(&self) -> &str {
        self.0
    }
    fn name(&self) -> &str {
        self.1
    }
}

impl<'a> std::borrow::Borrow<dyn FlowKeyView + 'a> for FlowKey {
    fn borrow(&self) -> &(dyn FlowKeyView + 'a) {
        self
    }
}

/// The same hash as the derived one of [`FlowKey`] (its parts' fields, in order).
impl std::hash::Hash for dyn FlowKeyView + '_ {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.namespace().hash(state);
        self.name().hash(state);
    }
}

impl PartialEq for dyn FlowKeyView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.namespace() == other.namespace() && self.name() == other.name()
    }
}

impl Eq for dyn FlowKeyView + '_ {}

impl std::ops::Deref for FlowKey {
    type Target = FlowKeyParts;

    fn deref(&self) -> &FlowKeyParts {
        &self.0
    }
}

impl std::fmt::Display for FlowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The stored state of one execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    /// Globally unique id (a UUID). Shared (`Arc`): the store's indexes, the running
    /// execution and a sync start's answer all hold it.
    pub id: Arc<str>,
    /// Name, unique per flow for Standard executions.
    pub name: Arc<str>,
    /// The flow it runs.
    pub flow: FlowKey,
    /// Id of the flow record at start (so a re-created flow does not see old executions).
    pub flow_id: Arc<str>,
    /// Standard or Express.
    pub mode: ExecutionMode,
    /// Current status.
    pub status: ExecutionStatus,
    /// Execution input.
    pub input: Arc<Value>,
    /// Output, once succeeded.
    pub output: Option<Arc<Value>>,
    /// Error name, once failed, timed out or stopped.
    pub error: Option<String>,
    /// Error cause.
    pub cause: Option<String>,
    /// When it started.
    pub started: Timestamp,
    /// When it ended.
    pub stopped: Option<Timestamp>,
    /// Last change to the record.
    pub updated: Timestamp,
    /// The definition text the execution runs (a snapshot taken at start).
    pub definition: Arc<str>,
    /// Number of history events so far.
    pub event_count: u64,
    /// Dialect-specific extras stored with the execution (request headers, qualifier, ...).
    /// Shared: written once at the start, read by every answer about the execution.
    #[serde(default)]
    pub metadata: Arc<Value>,
    /// Where a failed execution can be retried from: the top-level state that failed and the
    /// input it had. Set when an execution fails, cleared when it is retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_point: Option<RetryPoint>,
    /// A task token of another execution that gets this one's result when it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_token: Option<String>,
    /// The mock test case the execution runs under (its tasks answer from the mock file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_case: Option<String>,
}

/// A top-level state and its raw input, from which a failed execution can run again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPoint {
    /// The state's name in the top-level scope.
    pub state: String,
    /// The raw input it was entered with.
    pub input: Arc<Value>,
}

impl ExecutionRecord {
    /// Whether the execution has ended.
    pub fn is_terminal(&self) -> bool {
        self.status.is_terminal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn a_map_keyed_by_flow_key_is_searched_by_its_parts() {
        let keys: HashSet<FlowKey> = [FlowKey::new("ns", "a"), FlowKey::new("n", "sa")]
            .into_iter()
            .collect();
        let found = |ns: &str, name: &str| {
            let view: &dyn FlowKeyView = &(ns, name);
            keys.get(view)
                .map(|k| (k.namespace.clone(), k.name.clone()))
        };
        assert_eq!(found("ns", "a"), Some(("ns".into(), "a".into())));
        assert_eq!(found("n", "sa"), Some(("n".into(), "sa".into())));
        assert_eq!(found("nsa", ""), None);
        assert_eq!(found("ns", "b"), None);
    }
}
