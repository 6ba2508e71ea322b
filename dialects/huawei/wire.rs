//! FunctionGraph response shapes: snake_case keys, top-level times `yyyy-MM-ddTHH:mm:ssZ`,
//! node attempt times as integer epoch milliseconds, lowercase statuses.

use std::borrow::Cow;

use serde_json::{json, Value};

use crate::model::time::Timestamp;
use crate::model::{ExecutionRecord, ExecutionStatus};
use crate::store::FlowRecord;

/// `2021-01-01T00:00:00Z` (no fraction).
pub fn time(t: &Timestamp) -> String {
    crate::model::time::format_utc(t, false)
        .unwrap_or_else(|| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
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

/// How a workflow document is kept in a flow record's `metadata.definition`: as its JSON
/// text, so that reading the record (every request that runs the workflow) copies one string
/// rather than the whole document tree. A document that would not come back identical from
/// its text (a float that best-effort parsing would read a bit differently) stays a tree.
pub fn stored_definition(definition: Value) -> Value {
    let Ok(text) = serde_json::to_string(&definition) else {
        return definition;
    };
    match serde_json::from_str::<Value>(&text) {
        Ok(back) if back == definition => Value::String(text),
        _ => definition,
    }
}

/// The workflow document of a flow record's metadata ([`stored_definition`]'s text, or a
/// document tree as older records hold it).
pub fn definition(metadata: &Value) -> Option<Cow<'_, Value>> {
    match metadata.get("definition")? {
        Value::String(text) => serde_json::from_str(text).ok().map(Cow::Owned),
        tree => Some(Cow::Borrowed(tree)),
    }
}

/// `WorkflowSimpleInfo` (create, update, list items).
pub fn simple_info(f: &FlowRecord) -> Value {
    let def = definition(&f.metadata);
    let def = def.as_deref();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_definition_reads_back_as_the_document() {
        let doc = json!({"name": "w", "states": [{"id": "a", "name": "A"}], "n": 3, "x": 0.5});
        let stored = stored_definition(doc.clone());
        assert!(stored.is_string(), "kept as text");
        let metadata = json!({"definition": stored});
        assert_eq!(definition(&metadata).as_deref(), Some(&doc));
        // Records written before keep their tree.
        let old = json!({"definition": doc.clone()});
        assert!(matches!(definition(&old), Some(Cow::Borrowed(d)) if *d == doc));
        assert_eq!(definition(&json!({})), None);
    }
}
