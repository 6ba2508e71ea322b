//! Execution actions: StartExecution, StartSyncExecution, StopExecution, DescribeExecution,
//! ListExecutions, GetExecutionHistory.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::dialects::alibaba::params::{check_name, invalid};
use crate::dialects::alibaba::rpc::{ActionResult, Answer, Ctx};
use crate::dialects::alibaba::{error_names, records, wire};
use crate::dialects::JsonObject;
use crate::engine::{Engine, StartRequest};
use crate::model::error_names as model_error_names;
use crate::model::time::now;
use crate::model::{ApiError, ExecutionMode, ExecutionRecord, ExecutionStatus};
use crate::store::{ExecutionFilter, FlowRecord};

async fn flow(ctx: &Ctx<'_>) -> Result<Arc<FlowRecord>, ApiError> {
    let name = ctx.params.required("FlowName")?;
    ctx.app.engine.flow_named(ctx.namespace(), name).await
}

async fn execution(ctx: &Ctx<'_>, flow: &FlowRecord) -> Result<ExecutionRecord, ApiError> {
    let name = ctx.params.required("ExecutionName")?;
    ctx.app.engine.find_execution(flow, name).await
}

/// The start request common to both kinds of start.
fn request(ctx: &Ctx<'_>, flow: Arc<FlowRecord>) -> Result<StartRequest, ApiError> {
    let p = ctx.params;
    let name = p.optional("ExecutionName");
    if let Some(n) = name {
        check_name("ExecutionName", n)?;
    }
    let input = p.json_object("Input")?.unwrap_or_else(|| json!({}));
    let mut metadata = Map::new();
    // The input as sent, for answers that echo it; not kept when it is the input's own
    // compact JSON (what they would write anyway).
    if let Some(text) = p
        .optional("Input")
        .filter(|t| !wire::is_json_text_of(t, &input))
    {
        metadata.insert("InputText".into(), json!(text));
    }
    if let Some(env) = flow.metadata.get("Environment").filter(|v| !v.is_null()) {
        metadata.insert("Environment".into(), env.clone());
    }
    for key in ["Qualifier", "CallbackFnFTaskToken"] {
        if let Some(v) = p.optional(key) {
            metadata.insert(key.into(), json!(v));
        }
    }
    Ok(StartRequest {
        flow,
        name: name.map(str::to_string),
        input,
        metadata: Value::Object(metadata),
        callback_token: p.optional("CallbackFnFTaskToken").map(str::to_string),
    })
}

/// `POST /?Action=StartExecution` with form `FlowName, ExecutionName, Input,
/// CallbackFnFTaskToken, Qualifier`. Standard flows only; a running execution of the same
/// name is returned as it is; a finished one is `ExecutionAlreadyExists`.
pub async fn start(ctx: &Ctx<'_>) -> ActionResult {
    let flow = flow(ctx).await?;
    let flow = records::qualified(ctx, flow, ctx.params.optional("Qualifier")).await?;
    if flow.flow.mode == ExecutionMode::Express {
        return Err(ApiError::WrongMode {
            message: format!(
                "Express execution is not supported by StartExecution: flow {} runs in Express mode; use StartSyncExecution.",
                flow.key.name
            ),
        });
    }
    let req = request(ctx, flow)?;
    let started = ctx.app.engine.start(req).await?;
    if let (false, Some(token)) = (
        started.existing,
        ctx.params.optional("CallbackFnFTaskToken"),
    ) {
        report_to_parent(
            ctx.app.engine.clone(),
            started.record.id.to_string(),
            token.to_string(),
        );
    }
    Ok(wire::execution(&started.record, false))
}

/// `CallbackFnFTaskToken`: when the execution ends, its result completes the parent's task
/// that handed out the token (success with its output, failure with its error and cause).
fn report_to_parent(engine: Engine, id: String, token: String) {
    tokio::spawn(async move {
        let rec = loop {
            match engine.wait_execution(&id, Duration::from_secs(3600)).await {
                Ok(r) if r.is_terminal() => break r,
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(_) => return,
            }
        };
        let reported = match rec.status {
            ExecutionStatus::Succeeded => {
                let output = rec.output.as_deref().cloned().unwrap_or_else(|| json!({}));
                engine.report_success(&token, output).await
            }
            status => {
                let fallback = match status {
                    ExecutionStatus::TimedOut => model_error_names::EXECUTION_TIMEOUT,
                    ExecutionStatus::Stopped => model_error_names::STOPPED,
                    _ => model_error_names::FAIL,
                };
                let error = rec.error.clone().unwrap_or_else(|| fallback.to_string());
                let cause = rec.cause.clone().unwrap_or_default();
                engine.report_failure(&token, error, cause).await
            }
        };
        if let Err(e) = reported {
            tracing::warn!(execution = %id, error = %e, "CallbackFnFTaskToken report failed");
        }
    });
}

/// `POST /?Action=StartSyncExecution` with form `FlowName, ExecutionName, Input, Qualifier`.
/// Express flows only; the name becomes `{ExecutionName}:{UUID}`; how the execution ended is
/// reported in the 200 answer (`Status`, `ErrorCode`, `ErrorMessage`).
pub async fn start_sync(ctx: &Ctx<'_>) -> Result<Answer, ApiError> {
    let flow = flow(ctx).await?;
    let flow = records::qualified(ctx, flow, ctx.params.optional("Qualifier")).await?;
    let req = request(ctx, flow)?;
    if req.flow.flow.mode == ExecutionMode::Standard {
        let mut m = Map::new();
        let at = wire::time(&now());
        let base = req
            .name
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        m.insert(
            "Name".into(),
            json!(format!("{base}:{}", uuid::Uuid::new_v4())),
        );
        m.insert("FlowName".into(), json!(req.flow.key.name));
        m.insert(
            "Status".into(),
            json!(wire::status(ExecutionStatus::Failed)),
        );
        m.insert("ErrorCode".into(), json!("ActionNotSupported"));
        m.insert(
            "ErrorMessage".into(),
            json!("Standard execution is not supported"),
        );
        m.insert("StartedTime".into(), json!(at));
        m.insert("StoppedTime".into(), json!(at));
        return Ok(Answer::Fields(m));
    }
    let rec = ctx.app.engine.start_sync(req, true).await?;
    // Written straight into the body: Name, FlowName, Status, Output, ErrorCode,
    // ErrorMessage, StartedTime, StoppedTime (then RequestId), as the field map had them.
    let output = rec.output.as_deref().map(wire::json_text);
    let mut m = JsonObject::with_capacity(
        160 + rec.name.len() + rec.flow.name.len() + output.as_ref().map_or(0, |o| 2 * o.len()),
    );
    m.string("Name", &rec.name);
    m.string("FlowName", &rec.flow.name);
    m.string("Status", wire::status(rec.status));
    if let Some(o) = &output {
        m.string("Output", o);
    }
    if let Some(e) = &rec.error {
        m.string("ErrorCode", &error_names::to_vendor(e));
        m.string("ErrorMessage", rec.cause.as_deref().unwrap_or_default());
    }
    m.string("StartedTime", &wire::time(&rec.started));
    if let Some(t) = &rec.stopped {
        m.string("StoppedTime", &wire::time(t));
    }
    Ok(Answer::Object(m))
}

/// `POST /?Action=StopExecution` with form `FlowName, ExecutionName, Error, Cause`.
pub async fn stop(ctx: &Ctx<'_>) -> ActionResult {
    let p = ctx.params;
    let flow = flow(ctx).await?;
    let error = p.optional("Error");
    if error.is_some_and(|e| e.chars().count() > 128) {
        return Err(invalid(
            "The parameter 'Error' must be 1 to 128 characters long.",
        ));
    }
    let cause = p.optional("Cause");
    if cause.is_some_and(|c| c.chars().count() > 4096) {
        return Err(invalid(
            "The parameter 'Cause' must be 1 to 4096 characters long.",
        ));
    }
    let rec = execution(ctx, &flow).await?;
    let rec = ctx
        .app
        .engine
        .stop(
            &rec.id,
            error.map(str::to_string),
            cause.map(str::to_string),
        )
        .await?;
    let mut m = wire::execution(&rec, false);
    m.insert(
        "RoleArn".into(),
        flow.metadata.get("RoleArn").cloned().unwrap_or(json!("")),
    );
    Ok(m)
}

/// `GET /?Action=DescribeExecution&FlowName=...&ExecutionName=...&WaitTimeSeconds=...`.
/// With `WaitTimeSeconds` (0 to 60) the answer waits until the execution ends or the time is
/// up, and comes the moment it ends.
pub async fn describe(ctx: &Ctx<'_>) -> ActionResult {
    let wait = ctx.params.int("WaitTimeSeconds", 0, 60)?.unwrap_or(0);
    let flow = flow(ctx).await?;
    let mut rec = execution(ctx, &flow).await?;
    if wait > 0 && !rec.is_terminal() {
        rec = ctx
            .app
            .engine
            .wait_execution(&rec.id, Duration::from_secs(wait as u64))
            .await?;
    }
    Ok(wire::execution(&rec, false))
}

fn time_param(
    ctx: &Ctx<'_>,
    name: &str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    match ctx.params.optional(name) {
        None => Ok(None),
        Some(t) => chrono::DateTime::parse_from_rfc3339(t)
            .map(|d| Some(d.with_timezone(&chrono::Utc)))
            .map_err(|_| {
                invalid(format!(
                    "The parameter '{name}' must be an RFC 3339 time, not '{t}'."
                ))
            }),
    }
}

/// `GET /?Action=ListExecutions&FlowName=...&Limit=...&NextToken=...&Status=...
/// &ExecutionNamePrefix=...&StartedTimeBegin=...&StartedTimeEnd=...&MetadataOnly=...`.
pub async fn list(ctx: &Ctx<'_>) -> ActionResult {
    let p = ctx.params;
    let limit = p.int("Limit", 1, 100)?.unwrap_or(60) as usize;
    let status = match p.optional("Status") {
        None => None,
        Some(s) => Some(wire::parse_status(s).ok_or_else(|| {
            invalid(format!(
                "The parameter 'Status' must be one of Starting, Running, Stopped, Succeeded, Failed, TimedOut, not '{s}'."
            ))
        })?),
    };
    let filter = ExecutionFilter {
        status,
        name_prefix: p.optional("ExecutionNamePrefix").map(str::to_string),
        started_after: time_param(ctx, "StartedTimeBegin")?,
        started_before: time_param(ctx, "StartedTimeEnd")?,
    };
    let metadata_only = p.bool("MetadataOnly")?.unwrap_or(false);
    let flow = flow(ctx).await?;
    let page = ctx
        .app
        .engine
        .list_executions(&flow, &filter, p.optional("NextToken"), limit)
        .await?;
    let qualifier = p.optional("Qualifier");
    let items: Vec<Value> = page
        .items
        .iter()
        .filter(|r| {
            qualifier.is_none_or(|q| r.metadata.get("Qualifier").and_then(Value::as_str) == Some(q))
        })
        .map(|r| Value::Object(wire::execution(r, metadata_only)))
        .collect();
    let mut m = Map::new();
    m.insert("Executions".into(), Value::Array(items));
    if let Some(n) = page.next {
        m.insert("NextToken".into(), json!(n));
    }
    Ok(m)
}

/// `GET /?Action=GetExecutionHistory&FlowName=...&ExecutionName=...&Limit=...&NextToken=...`.
/// `NextToken` is the id of the last event returned; events fnf has no type for are left out.
pub async fn history(ctx: &Ctx<'_>) -> ActionResult {
    let limit = ctx.params.int("Limit", 1, 1000)?.unwrap_or(60) as usize;
    let mut after: u64 = match ctx.params.optional("NextToken") {
        None => 0,
        Some(t) => t
            .parse()
            .map_err(|_| invalid(format!("The parameter 'NextToken' is invalid: '{t}'.")))?,
    };
    let flow = flow(ctx).await?;
    let rec = execution(ctx, &flow).await?;
    let mut events = Vec::new();
    let mut more = false;
    'pages: loop {
        let page = ctx.app.engine.history(&rec, after, limit.max(60)).await?;
        for e in &page.items {
            if let Some(t) = wire::event_type(e.kind) {
                if events.len() == limit {
                    more = true;
                    break 'pages;
                }
                events.push(wire::event(e, t));
            }
            after = e.id;
        }
        if page.next.is_none() {
            break;
        }
    }
    let mut m = Map::new();
    m.insert("Events".into(), Value::Array(events));
    if more {
        m.insert("NextToken".into(), json!(after.to_string()));
    }
    Ok(m)
}
