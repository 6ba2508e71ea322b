//! Executions: async and sync start, list, executions-history, show with node details,
//! terminate, retry, callback.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{HeaderName, StatusCode};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{json, Map, Value};

use super::{all_executions, int_param, workflow};
use crate::dialects::huawei::errors::VendorError;
use crate::dialects::huawei::rest::{api, Reply, Req};
use crate::dialects::huawei::wire;
use crate::dialects::JsonObject;
use crate::engine::StartRequest;
use crate::model::{ApiError, EventKind, ExecutionMode, ExecutionRecord, ExecutionStatus, Flow};
use crate::store::FlowRecord;

/// The start headers kept with an execution (its metadata), as the console shows them.
const KEPT_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-create-time"),
    HeaderName::from_static("x-workflowrun-id"),
    HeaderName::from_static("x-workflowrun-mergefnparameters"),
];

/// The `FlowExecuteBody` of a start: `input` (an object) and optional `headers`.
fn start_request(r: &Req<'_>, flow: Arc<FlowRecord>) -> Result<StartRequest, VendorError> {
    let mut body = r.json()?;
    // The body is ours: its fields move into the request rather than being copied.
    let mut fields = body.as_object_mut();
    let mut take = |name: &str| fields.as_deref_mut().and_then(|m| m.remove(name));
    let input = match take("input") {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v,
        Some(_) => {
            return Err(VendorError::invalid(
                "Invalid parameters: input must be a JSON object.",
            ))
        }
    };
    let headers = match take("headers") {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v,
        Some(_) => {
            return Err(VendorError::invalid(
                "Invalid parameters: headers must be a JSON object.",
            ))
        }
    };
    let mut metadata = Map::new();
    metadata.insert("headers".into(), headers);
    for h in &KEPT_HEADERS {
        if let Some(v) = r.headers.get(h).and_then(|v| v.to_str().ok()) {
            metadata.insert(h.as_str().into(), json!(v));
        }
    }
    Ok(StartRequest {
        flow,
        // FunctionGraph executions have no names: the engine names each one with a new UUID.
        name: None,
        input,
        metadata: Value::Object(metadata),
        callback_token: None,
    })
}

/// `POST /v2/{project_id}/fgs/workflows/{workflow_id}/executions` with `{input, headers}`:
/// `{"execution_id"}`. NORMAL and EXPRESS flows both start asynchronously.
pub async fn start(r: &Req<'_>, id: &str) -> Reply {
    let flow = workflow(r, id).await?;
    let req = start_request(r, flow)?;
    let started = r.app.engine.start(req).await.map_err(api)?;
    Ok((
        StatusCode::OK,
        Some(json!({"execution_id": started.record.id})),
    ))
}

/// `POST /v2/{project_id}/fgs/workflows/{workflow_id}/sync-executions` with `{input, headers}`:
/// `SyncExecuteResponse`. EXPRESS flows only; a failed run is `status: fail` with `errors[]`
/// in a 200 answer. The answer comes back as JSON text (it is on the hot path).
pub async fn start_sync(r: &Req<'_>, id: &str) -> Result<(StatusCode, Vec<u8>), VendorError> {
    let flow = workflow(r, id).await?;
    if flow.flow.mode != ExecutionMode::Express {
        return Err(VendorError::invalid(format!(
            "Invalid parameters: synchronous execution is only supported for EXPRESS workflows; workflow {} is NORMAL, start it with POST .../executions.",
            flow.key.name
        )));
    }
    // The record is shared: the request takes a reference, and the workflow document (the
    // record's metadata) stays readable here for the error details.
    let req = start_request(r, flow.clone())?;
    let rec = r.app.engine.start_sync(req, false).await.map_err(api)?;
    // Written straight into the body, members in the order the answer always had:
    // execution_id, status, begin_time, end_time, then output and errors once it ended.
    let mut body = JsonObject::with_capacity(256);
    body.string("execution_id", &rec.id);
    body.string("status", sync_status(rec.status));
    body.string("begin_time", &wire::time(&rec.started));
    body.string(
        "end_time",
        &rec.stopped.as_ref().map(wire::time).unwrap_or_default(),
    );
    match rec.status {
        ExecutionStatus::Succeeded => {
            match rec.output.as_deref() {
                Some(output) => body.value("output", output),
                None => body.value("output", &json!({})),
            }
            body.value("errors", &json!([]));
        }
        ExecutionStatus::Starting | ExecutionStatus::Running => {}
        ExecutionStatus::Failed | ExecutionStatus::TimedOut | ExecutionStatus::Stopped => {
            body.value("output", &json!({}));
            let errors = node_errors(r, &flow.metadata, &flow.flow, &rec).await?;
            body.value("errors", &Value::Array(errors));
        }
    }
    Ok((StatusCode::OK, body.into_bytes()))
}

/// The sync answer knows `success`, `fail` and `timeout`; a stopped run reads `cancel`.
fn sync_status(s: ExecutionStatus) -> &'static str {
    wire::status(s)
}

/// `SyncExecutionNodeErrorDetail` entries: every top-level node that failed, with its message.
async fn node_errors(
    r: &Req<'_>,
    metadata: &Value,
    compiled: &Flow,
    rec: &ExecutionRecord,
) -> Result<Vec<Value>, VendorError> {
    let nodes = node_details(r, metadata, compiled, rec).await?;
    let mut out = Vec::new();
    for n in nodes {
        for attempt in n["executions"].as_array().into_iter().flatten() {
            if attempt["status"] == "fail" || attempt["status"] == "timeout" {
                let ms = |k: &str| {
                    attempt[k]
                        .as_i64()
                        .and_then(DateTime::from_timestamp_millis)
                        .map(|t| wire::time(&t))
                        .unwrap_or_default()
                };
                out.push(json!({
                    "node_id": n["node_id"],
                    "error_message": attempt["error_message"]["error_msg"],
                    "begin_time": ms("begin_time"),
                    "end_time": ms("end_time"),
                }));
            }
        }
    }
    if out.is_empty() {
        if let Some(e) = &rec.error {
            out.push(json!({
                "node_id": "",
                "error_message": format!("{e}: {}", rec.cause.clone().unwrap_or_default()),
                "begin_time": wire::time(&rec.started),
                "end_time": rec.stopped.as_ref().map(wire::time).unwrap_or_default(),
            }));
        }
    }
    Ok(out)
}

/// Parses a time filter in any of the formats clients send.
fn parse_time(name: &str, v: &str) -> Result<DateTime<Utc>, VendorError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%SZ",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, f) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(ms) = v.parse::<i64>() {
        if let Some(t) = DateTime::from_timestamp_millis(ms) {
            return Ok(t);
        }
    }
    Err(VendorError::invalid(format!(
        "Invalid parameters: {name} must be a UTC time such as 2024-01-01T00:00:00Z or 2024-01-01 00:00:00, not '{v}'."
    )))
}

/// The `[start_time, end_time]` window: one bound given, the other is 3 days away; none,
/// the last 3 days.
fn window(r: &Req<'_>) -> Result<(DateTime<Utc>, DateTime<Utc>), VendorError> {
    let three_days = chrono::Duration::days(3);
    let start = r
        .query("start_time")
        .map(|v| parse_time("start_time", v))
        .transpose()?;
    let end = r
        .query("end_time")
        .map(|v| parse_time("end_time", v))
        .transpose()?;
    Ok(match (start, end) {
        (Some(s), Some(e)) => (s, e),
        (Some(s), None) => (s, s + three_days),
        (None, Some(e)) => (e - three_days, e),
        (None, None) => {
            let now = Utc::now();
            (now - three_days, now + chrono::Duration::minutes(1))
        }
    })
}

/// `GET /v2/{project_id}/fgs/workflows/{workflow_id}/executions?limit=&offset=&status=
/// &start_time=&end_time=`: `{"executions": [FlowExecutionBrief]}`, newest first.
pub async fn list(r: &Req<'_>, id: &str) -> Reply {
    let flow = workflow(r, id).await?;
    let limit = match int_param(r, "limit")? {
        None | Some(0) => 200,
        Some(n) if (1..=500).contains(&n) => n.min(200) as usize,
        Some(n) => {
            return Err(VendorError::invalid(format!(
                "Invalid parameters: limit must be from 0 to 500, not {n}."
            )))
        }
    };
    let offset = int_param(r, "offset")?.unwrap_or(0).max(0) as usize;
    let status = match r.query("status") {
        None => None,
        Some(s) => Some(wire::parse_status(s).ok_or_else(|| {
            VendorError::invalid(format!(
                "Invalid parameters: status must be one of success, fail, running, timeout, cancel, not '{s}'."
            ))
        })?),
    };
    let (from, to) = window(r)?;
    let mut all = all_executions(r, &flow).await?;
    all.retain(|e| {
        status.is_none_or(|s| wire::status(e.status) == wire::status(s))
            && e.started >= from
            && e.started <= to
    });
    all.reverse();
    let items: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|e| wire::brief(e, &flow, false))
        .collect();
    Ok((StatusCode::OK, Some(json!({"executions": items}))))
}

/// `GET /v2/{project_id}/fgs/workflows/{workflow_id}/executions-history?offset=&limit=
/// &start_time=&end_time=`: `{total, size, executions: [FlowExecutionBriefV2]}`.
pub async fn history_page(r: &Req<'_>, id: &str) -> Reply {
    let flow = workflow(r, id).await?;
    let offset = int_param(r, "offset")?
        .ok_or_else(|| VendorError::invalid("Invalid parameters: offset is required."))?;
    let limit = int_param(r, "limit")?
        .ok_or_else(|| VendorError::invalid("Invalid parameters: limit is required."))?;
    if offset < 0 || !(1..=100).contains(&limit) {
        return Err(VendorError::invalid(
            "Invalid parameters: offset must be >= 0 and limit from 1 to 100.",
        ));
    }
    let (from, to) = window(r)?;
    let mut all = all_executions(r, &flow).await?;
    all.retain(|e| e.started >= from && e.started <= to);
    all.reverse();
    let items: Vec<Value> = all
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|e| wire::brief(e, &flow, true))
        .collect();
    Ok((
        StatusCode::OK,
        Some(json!({"total": all.len(), "size": items.len(), "executions": items})),
    ))
}

async fn execution_of(
    r: &Req<'_>,
    flow: &FlowRecord,
    ex: &str,
) -> Result<ExecutionRecord, VendorError> {
    let not_found = || {
        api(ApiError::ExecutionNotFound {
            flow: flow.key.name.clone(),
            execution: ex.to_string(),
        })
    };
    let rec = r.app.engine.execution(ex).await.map_err(|_| not_found())?;
    if rec.flow_id != flow.id {
        return Err(not_found());
    }
    Ok(rec)
}

/// `GET /v2/{project_id}/fgs/workflows/{workflow_id}/executions/{execution_id}` (header
/// `X-Get-Workflow-Full-History-Data`; flowgate always returns full data): `ExecutionDetails`.
pub async fn show(r: &Req<'_>, id: &str, ex: &str) -> Reply {
    let flow = workflow(r, id).await?;
    let rec = execution_of(r, &flow, ex).await?;
    let nodes = node_details(r, &flow.metadata, &flow.flow, &rec).await?;
    let body = json!({
        "workflow_id": flow.id,
        "workflow_urn": wire::urn(&flow),
        "execution_id": rec.id,
        "status": wire::status(rec.status),
        "headers": rec.metadata.get("headers").cloned().unwrap_or(json!({})),
        "input": *rec.input,
        "output": rec.output.as_deref().cloned().unwrap_or(json!({})),
        "begin_time": wire::time(&rec.started),
        "end_time": rec.stopped.as_ref().map(wire::time).unwrap_or_default(),
        "last_update_time": wire::time(&rec.updated),
        "created_by": wire::CREATED_BY,
        "node_execution_details": nodes,
    });
    Ok((StatusCode::OK, Some(body)))
}

/// `NodeExecutionDetail` per top-level node, one `NodeExecution` per attempt, from history.
/// `metadata` is the workflow record's (its `definition` names the nodes), `compiled` the
/// compiled flow.
async fn node_details(
    r: &Req<'_>,
    metadata: &Value,
    compiled: &Flow,
    rec: &ExecutionRecord,
) -> Result<Vec<Value>, VendorError> {
    let events = r
        .app
        .engine
        .history(rec, 0, usize::MAX)
        .await
        .map_err(api)?
        .items;
    let definition = wire::definition(metadata);
    let names: HashMap<String, String> = definition
        .as_deref()
        .and_then(|d| d.get("states"))
        .and_then(Value::as_array)
        .map(|states| {
            states
                .iter()
                .filter_map(|s| {
                    Some((
                        s.get("id")?.as_str()?.to_string(),
                        s.get("name")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let root = &compiled.root;
    let mut order: Vec<String> = Vec::new();
    let mut nodes: HashMap<String, (u64, Vec<Value>)> = HashMap::new();
    let mut open: HashMap<String, usize> = HashMap::new();
    for e in &events {
        if e.kind == EventKind::ExecutionResumed {
            // The gateway restarted while these attempts ran: they end here, and the node
            // that was running starts a new attempt.
            for (state, i) in open.drain() {
                if let Some(a) = nodes.get_mut(&state).and_then(|n| n.1.get_mut(i)) {
                    a["status"] = json!("fail");
                    a["end_time"] = json!(wire::millis(&e.time));
                    a["error_message"] = json!({
                        "error_code": "FSS.Interrupted",
                        "error_msg": "the gateway restarted during this attempt; it runs again",
                    });
                }
            }
            continue;
        }
        if root.state(&e.state).is_none() {
            continue;
        }
        match e.kind {
            EventKind::StateStarted => {
                let entry = nodes.entry(e.state.to_string()).or_insert_with(|| {
                    order.push(e.state.to_string());
                    (e.id, Vec::new())
                });
                entry.1.push(json!({
                    "status": "running",
                    "input": e.detail.input.as_deref().cloned().unwrap_or(json!({})),
                    "output": {},
                    "begin_time": wire::millis(&e.time),
                    "end_time": null,
                    "error_message": {},
                    "request_id": format!("{}-{}", rec.id, e.id),
                }));
                open.insert(e.state.to_string(), entry.1.len() - 1);
            }
            EventKind::StateSucceeded | EventKind::StateFailed => {
                let (Some(i), Some(entry)) = (open.remove(&*e.state), nodes.get_mut(&*e.state))
                else {
                    continue;
                };
                let a = &mut entry.1[i];
                a["end_time"] = json!(wire::millis(&e.time));
                if e.kind == EventKind::StateSucceeded {
                    a["status"] = json!("success");
                    a["output"] = e.detail.output.as_deref().cloned().unwrap_or(json!({}));
                } else {
                    let more = e.detail.extra();
                    a["status"] = json!("fail");
                    a["error_message"] = json!({
                        "error_code": more.error.clone().unwrap_or_default(),
                        "error_msg": more.cause.clone().unwrap_or_default(),
                    });
                }
            }
            _ => {}
        }
    }
    // Attempts still open when the execution ended (stopped or timed out) end with it.
    if let (true, Some(stopped)) = (rec.is_terminal(), rec.stopped.as_ref()) {
        for (state, i) in open {
            if let Some(a) = nodes.get_mut(&state).and_then(|n| n.1.get_mut(i)) {
                a["status"] = json!(wire::status(rec.status));
                a["end_time"] = json!(wire::millis(stopped));
                if let Some(e) = &rec.error {
                    a["error_message"] = json!({
                        "error_code": e,
                        "error_msg": rec.cause.clone().unwrap_or_default(),
                    });
                }
            }
        }
    }
    Ok(order
        .iter()
        .map(|state| {
            let (first, attempts) = &nodes[state];
            json!({
                "node_id": state,
                "node_name": names.get(state).cloned().unwrap_or_else(|| state.clone()),
                "execution_id": format!("{}-{first}", rec.id),
                "executions": attempts,
            })
        })
        .collect())
}

/// `POST .../executions/{execution_id}/terminate` (no body): the execution ends `cancel`.
pub async fn terminate(r: &Req<'_>, id: &str, ex: &str) -> Reply {
    let flow = workflow(r, id).await?;
    let rec = execution_of(r, &flow, ex).await?;
    // Checked here so the message names the execution id and the Huawei status.
    if rec.is_terminal() {
        return Err(VendorError::invalid(format!(
            "Invalid parameters: execution {} has already finished with status {}.",
            rec.id,
            wire::status(rec.status)
        )));
    }
    r.app.engine.stop(&rec.id, None, None).await.map_err(api)?;
    Ok((StatusCode::OK, Some(json!({}))))
}

/// `POST .../executions/{execution_id}/retry` (no body): runs a failed NORMAL execution again
/// from the node that failed.
pub async fn retry(r: &Req<'_>, id: &str, ex: &str) -> Reply {
    let flow = workflow(r, id).await?;
    if flow.flow.mode == ExecutionMode::Express {
        return Err(VendorError::invalid(
            "Invalid parameters: EXPRESS workflows do not support retry.",
        ));
    }
    let rec = execution_of(r, &flow, ex).await?;
    if rec.status != ExecutionStatus::Failed {
        return Err(VendorError::invalid(format!(
            "Invalid parameters: only a failed execution can be retried; execution {} is {}.",
            rec.id,
            wire::status(rec.status)
        )));
    }
    r.app.engine.retry(&rec.id).await.map_err(api)?;
    Ok((StatusCode::OK, Some(json!({}))))
}

/// `POST .../workflows/{workflow_id}/callback` with headers `X-Workflow-Run-Id`,
/// `X-Workflow-State-Id` and body `{"result": "success"|"fail", "error", "output"}`:
/// completes the node that waits for it; answers `{"execution_id"}`.
pub async fn callback(r: &Req<'_>, id: &str) -> Reply {
    let flow = workflow(r, id).await?;
    let run = r
        .header("x-workflow-run-id")
        .ok_or_else(|| {
            VendorError::invalid("Invalid parameters: header X-Workflow-Run-Id is required.")
        })?
        .to_string();
    let state = r
        .header("x-workflow-state-id")
        .ok_or_else(|| {
            VendorError::invalid("Invalid parameters: header X-Workflow-State-Id is required.")
        })?
        .to_string();
    let body = r.json()?;
    let result = match body.get("result").and_then(Value::as_str) {
        Some(res @ ("success" | "fail")) => res,
        _ => {
            return Err(VendorError::invalid(
                "Invalid parameters: result must be success or fail.",
            ))
        }
    };
    let rec = execution_of(r, &flow, &run).await?;
    let token = r.app.engine.waiting_token(&rec.id, &state).ok_or_else(|| {
        api(ApiError::TaskNotFound {
            token: format!("{run}/{state}"),
        })
    })?;
    let output = match body.get("output") {
        None | Some(Value::Null) => json!({}),
        Some(v) => v.clone(),
    };
    match result {
        "success" => {
            r.app
                .engine
                .report_success(&token, output)
                .await
                .map_err(api)?;
        }
        _ => {
            let error = body
                .get("error")
                .and_then(Value::as_str)
                .filter(|e| !e.is_empty())
                .unwrap_or("FGS.CallbackFailed")
                .to_string();
            let cause = serde_json::to_string(&output).unwrap_or_default();
            r.app
                .engine
                .report_failure(&token, error, cause)
                .await
                .map_err(api)?;
        }
    }
    Ok((StatusCode::OK, Some(json!({"execution_id": rec.id}))))
}
