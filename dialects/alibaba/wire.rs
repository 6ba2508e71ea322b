//! fnf response shapes: PascalCase keys, RFC 3339 times with milliseconds, JSON documents
//! (`Input`, `Output`, `EventDetail`) as strings, and the vendor's status and event names.

use serde_json::{json, Map, Value};

use crate::model::time::Timestamp;
use crate::model::{Event, EventKind, ExecutionRecord, ExecutionStatus};
use crate::store::FlowRecord;

use super::error_names;

/// `2019-01-01T01:01:01.001Z`.
pub fn time(t: &Timestamp) -> String {
    crate::model::time::format_utc(t, true)
        .unwrap_or_else(|| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// The vendor's status name.
pub fn status(s: ExecutionStatus) -> &'static str {
    match s {
        ExecutionStatus::Starting => "Starting",
        ExecutionStatus::Running => "Running",
        ExecutionStatus::Succeeded => "Succeeded",
        ExecutionStatus::Failed => "Failed",
        ExecutionStatus::TimedOut => "TimedOut",
        ExecutionStatus::Stopped => "Stopped",
    }
}

/// Parses a status filter (exact vendor names).
pub fn parse_status(s: &str) -> Option<ExecutionStatus> {
    [
        ExecutionStatus::Starting,
        ExecutionStatus::Running,
        ExecutionStatus::Succeeded,
        ExecutionStatus::Failed,
        ExecutionStatus::TimedOut,
        ExecutionStatus::Stopped,
    ]
    .into_iter()
    .find(|st| status(*st) == s)
}

/// The vendor's event type, or `None` for canonical events fnf has no type for (they are left
/// out of GetExecutionHistory).
pub fn event_type(k: EventKind) -> Option<&'static str> {
    Some(match k {
        EventKind::ExecutionStarted => "ExecutionStarted",
        EventKind::ExecutionSucceeded => "ExecutionSucceeded",
        EventKind::ExecutionFailed => "ExecutionFailed",
        EventKind::ExecutionTimedOut => "ExecutionTimedOut",
        EventKind::ExecutionStopped => "ExecutionStopped",
        EventKind::StateEntered => "StepEntered",
        EventKind::StateStarted => "StepStarted",
        EventKind::StateSucceeded => "StepSucceeded",
        EventKind::StateFailed => "StepFailed",
        EventKind::StateExited => "StepExited",
        EventKind::TaskScheduled => "TaskScheduled",
        EventKind::TaskStarted => "TaskStarted",
        EventKind::TaskSubmitted => "TaskSubmitted",
        EventKind::TaskSucceeded => "TaskSucceeded",
        EventKind::TaskFailed => "TaskFailed",
        EventKind::TaskTimedOut => "TaskTimedOut",
        EventKind::BranchEntered => "BranchEntered",
        EventKind::BranchExited => "BranchExited",
        EventKind::IterationEntered => "IterationEntered",
        EventKind::IterationExited => "IterationExited",
        EventKind::RetryScheduled
        | EventKind::ErrorCaught
        | EventKind::WaitStarted
        | EventKind::WaitEnded
        | EventKind::ExecutionResumed => return None,
    })
}

/// A JSON value as the compact text fnf puts in string fields.
pub fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Whether `text` is exactly [`json_text`]`(v)`, checked while serialising `v` (nothing is
/// built).
pub fn is_json_text_of(text: &str, v: &Value) -> bool {
    struct Compare<'a> {
        rest: &'a [u8],
        same: bool,
    }
    impl std::io::Write for Compare<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            match self.rest.strip_prefix(buf) {
                Some(rest) if self.same => self.rest = rest,
                _ => self.same = false,
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Compare {
        rest: text.as_bytes(),
        same: true,
    };
    serde_json::to_writer(&mut c, v).is_ok() && c.same && c.rest.is_empty()
}

/// One history event (`Events[]` item).
pub fn event(e: &Event, type_name: &str) -> Value {
    let mut detail = e.detail.to_value();
    if let Value::Object(m) = &mut detail {
        if let Some(Value::String(err)) = m.get_mut("error") {
            *err = error_names::to_vendor(err).into_owned();
        }
        if e.kind == EventKind::StateEntered && !m.contains_key("local") {
            m.insert("local".into(), json!({}));
        }
    }
    json!({
        "EventId": e.id,
        "ScheduleEventId": e.cause_id,
        "StepName": e.state,
        "Type": type_name,
        "Time": time(&e.time),
        "EventDetail": json_text(&detail),
    })
}

/// The flow object (CreateFlow, DescribeFlow, UpdateFlow, ListFlows items).
pub fn flow(f: &FlowRecord) -> Map<String, Value> {
    let meta = |k: &str| {
        f.metadata
            .get(k)
            .cloned()
            .unwrap_or(Value::String(String::new()))
    };
    let mut m = Map::new();
    m.insert("Id".into(), json!(f.id));
    m.insert("Name".into(), json!(f.key.name));
    m.insert("Definition".into(), json!(&*f.definition));
    m.insert("Description".into(), meta("Description"));
    m.insert(
        "Type".into(),
        f.metadata.get("Type").cloned().unwrap_or(json!("FDL")),
    );
    m.insert("RoleArn".into(), meta("RoleArn"));
    m.insert(
        "ExecutionMode".into(),
        json!(match f.flow.mode {
            crate::model::ExecutionMode::Standard => "Standard",
            crate::model::ExecutionMode::Express => "Express",
        }),
    );
    if let Some(env) = f.metadata.get("Environment").filter(|v| !v.is_null()) {
        m.insert("Environment".into(), env.clone());
    }
    m.insert(
        "ExternalStorageLocation".into(),
        meta("ExternalStorageLocation"),
    );
    m.insert("ResourceGroupId".into(), meta("ResourceGroupId"));
    m.insert("CreatedTime".into(), json!(time(&f.created)));
    m.insert("LastModifiedTime".into(), json!(time(&f.modified)));
    m
}

/// The execution object (StartExecution, DescribeExecution, StopExecution, ListExecutions
/// items). `metadata_only` leaves out the definition, input and output.
pub fn execution(r: &ExecutionRecord, metadata_only: bool) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("Name".into(), json!(r.name));
    m.insert("FlowName".into(), json!(r.flow.name));
    if !metadata_only {
        m.insert("FlowDefinition".into(), json!(&*r.definition));
        m.insert("Input".into(), json!(input_text(r)));
        if let Some(o) = &r.output {
            m.insert("Output".into(), json!(json_text(o)));
        }
    }
    m.insert("Status".into(), json!(status(r.status)));
    m.insert("StartedTime".into(), json!(time(&r.started)));
    if let Some(t) = &r.stopped {
        m.insert("StoppedTime".into(), json!(time(t)));
    }
    if let Some(env) = r.metadata.get("Environment").filter(|v| !v.is_null()) {
        m.insert("Environment".into(), env.clone());
    }
    m
}

/// The execution input as the client sent it when known, else its compact JSON.
pub fn input_text(r: &ExecutionRecord) -> String {
    match r.metadata.get("InputText").and_then(Value::as_str) {
        Some(t) => t.to_string(),
        None => json_text(&r.input),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_text_is_recognised_only_when_it_is_the_compact_json() {
        let v = json!({"i": 1, "s": "a\"b", "n": [1, 2.5]});
        assert!(is_json_text_of(&json_text(&v), &v));
        for other in [
            r#"{"i": 1, "s": "a\"b", "n": [1, 2.5]}"#,
            r#"{"s":"a\"b","i":1,"n":[1,2.5]}"#,
            r#"{"i":1,"s":"a\"b","n":[1,2.5]} "#,
            r#"{"i":1,"s":"a\"b","n":[1,2.5"#,
            r#"{"i":1.0,"s":"a\"b","n":[1,2.5]}"#,
            "",
        ] {
            assert!(!is_json_text_of(other, &v), "{other}");
        }
    }
}
