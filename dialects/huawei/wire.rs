//! FunctionGraph response shapes: snake_case keys, top-level times `yyyy-MM-ddTHH:mm:ssZ`,
//! node attempt times as integer epoch milliseconds, lowercase statuses.

use serde_json::{json, Value};

use crate::model::time::Timestamp;
use crate::model::{ExecutionRecord, ExecutionStatus};
use crate::store::FlowRecord;

/// `2021-01-01T00:00:00Z` (no fraction).
pub fn time(t: &Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Epoch milliseconds.
pub fn millis(t: &Timestamp) -> i64 {
    t.timestamp_millis()
}

/// The status of an execution (show, list, node attempts).
pub fn status(s: ExecutionStatus) -> &'static str {
    match s {
        ExecutionStatus::Starting | ExecutionStatus::Running => "running",
        ExecutionStatus::Succeeded => "success",
        ExecutionStatus::Failed => "fail",
        ExecutionStatus::TimedOut => "timeout",
        ExecutionStatus::Stopped => "cancel",
    }
}

/// The status in the executions-history list, which also knows `scheduled`.
pub fn history_status(s: ExecutionStatus) -> &'static str {
    match s {
        ExecutionStatus::Starting => "scheduled",
        ExecutionStatus::Running => "running",
        ExecutionStatus::Succeeded => "success",
        ExecutionStatus::Failed => "fail",
        ExecutionStatus::TimedOut => "timeout",
        ExecutionStatus::Stopped => "cancel",
    }
}

/// Parses a status filter.
pub fn parse_status(s: &str) -> Option<ExecutionStatus> {
    Some(match s {
        "running" => ExecutionStatus::Running,
        "success" => ExecutionStatus::Succeeded,
        "fail" => ExecutionStatus::Failed,
        "timeout" => ExecutionStatus::TimedOut,
        "cancel" => ExecutionStatus::Stopped,
        _ => return None,
    })
}

/// Who created resources (the clouds show the IAM user name).
pub const CREATED_BY: &str = "admin";

/// The workflow URN stored with a flow.
pub fn urn(f: &FlowRecord) -> String {
    f.metadata
        .get("workflow_urn")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// `WorkflowSimpleInfo` (create, update, list items).
pub fn simple_info(f: &FlowRecord) -> Value {
    let def = f.metadata.get("definition");
    json!({
        "id": f.id,
        "workflow_urn": urn(f),
        "name": f.key.name,
        "description": def.and_then(|d| d.get("description")).cloned().unwrap_or(json!("")),
        "created_time": time(&f.created),
        "updated_time": time(&f.modified),
        "created_by": CREATED_BY,
        "enable_stream_response": def
            .and_then(|d| d.get("enable_stream_response"))
            .cloned()
            .unwrap_or(json!(false)),
    })
}

/// `FlowExecutionBrief` (list executions) and `FlowExecutionBriefV2` (executions-history).
pub fn brief(r: &ExecutionRecord, f: &FlowRecord, history: bool) -> Value {
    json!({
        "workflow_id": f.id,
        "workflow_urn": urn(f),
        "execution_id": r.id,
        "status": if history { history_status(r.status) } else { status(r.status) },
        "begin_time": time(&r.started),
        "end_time": r.stopped.as_ref().map(time).unwrap_or_default(),
        "last_update_time": time(&r.updated),
        "created_by": CREATED_BY,
    })
}
