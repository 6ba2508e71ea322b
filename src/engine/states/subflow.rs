//! The sub-flow target: a Task whose resource is [`SUBFLOW_RESOURCE`] starts an execution of
//! another flow (of any dialect: one engine runs them all) and, by mode, answers at once, waits
//! for the child to end, or hands the child its task token so the child's end completes it.

use std::time::Duration;

use serde_json::{json, Value};

use crate::engine::exec::ExecCtx;
use crate::engine::{Engine, StartRequest};
use crate::model::error_names;
use crate::model::execution::FlowKey;
use crate::model::flow::{TaskMode, SUBFLOW_RESOURCE};
use crate::model::{ApiError, ExecError, ExecutionStatus};

fn flow_error(code: &str, cause: impl Into<String>) -> ExecError {
    ExecError::new(format!("{}{code}", error_names::FLOW_PREFIX), cause)
}

/// Stops the child when the waiting task is dropped (parent stopped, task timed out), but not
/// when another node took the parent over or this node hands it over at shutdown: the
/// parent's task runs again there and waits.
struct StopChildOnDrop<'a> {
    engine: Engine,
    parent: &'a ExecCtx,
    id: Option<String>,
}

impl Drop for StopChildOnDrop<'_> {
    fn drop(&mut self) {
        if self.parent.is_handed_over() {
            return;
        }
        if let Some(id) = self.id.take() {
            let engine = self.engine.clone();
            tokio::spawn(async move {
                let _ = engine
                    .stop(
                        &id,
                        Some(error_names::STOPPED.to_string()),
                        Some("the parent task stopped waiting".to_string()),
                    )
                    .await;
            });
        }
    }
}

/// Starts the child described by `event` and, for [`TaskMode::Sync`], waits for its end.
pub(crate) async fn call(
    ctx: &ExecCtx,
    mode: TaskMode,
    event: &Value,
    token: Option<&str>,
) -> Result<Value, ExecError> {
    let flow = event
        .get("flow")
        .and_then(Value::as_str)
        .filter(|f| !f.is_empty())
        .ok_or_else(|| {
            ExecError::new(
                error_names::RUNTIME,
                format!("a '{SUBFLOW_RESOURCE}' task needs a 'flow' name in its parameters, got {event}"),
            )
        })?;
    let key = match flow.rsplit_once('/') {
        Some((namespace, name)) => FlowKey::new(namespace, name),
        None => FlowKey::new(ctx.flow_key.namespace.clone(), flow),
    };
    let input = match event.get("input") {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(other) => {
            return Err(ExecError::new(
                error_names::RUNTIME,
                format!("the input of sub-flow '{flow}' must be a JSON object, got {other}"),
            ))
        }
    };
    let name = event
        .get("execution_name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let engine = Engine {
        inner: ctx.engine.clone(),
    };
    let record = engine.flow(&key).await.map_err(|e| match e {
        ApiError::FlowNotFound { .. } => {
            flow_error("FlowNotExists", format!("flow '{flow}' does not exist"))
        }
        other => flow_error("InternalServerError", other.to_string()),
    })?;
    let started = engine
        .start(StartRequest {
            flow: record,
            name,
            input,
            metadata: json!({"ParentExecutionId": ctx.id, "ParentExecutionName": ctx.name}),
            callback_token: match mode {
                TaskMode::WaitForCallback => token.map(str::to_string),
                TaskMode::RequestResponse | TaskMode::Sync => None,
            },
        })
        .await
        .map_err(|e| match e {
            ApiError::ExecutionAlreadyExists { execution, .. } => flow_error(
                "ExecutionAlreadyExists",
                format!("execution {execution} of flow {flow} already exists"),
            ),
            ApiError::PayloadTooLarge { .. } => flow_error("EntityTooLarge", e.to_string()),
            other => flow_error("InvalidArgument", other.to_string()),
        })?;
    let child = started.record;
    let answer = json!({
        "flow": child.flow.name,
        "execution_name": child.name,
        "execution_id": child.id,
    });
    match mode {
        TaskMode::RequestResponse | TaskMode::WaitForCallback => Ok(answer),
        TaskMode::Sync => {
            let mut guard = StopChildOnDrop {
                engine: engine.clone(),
                parent: ctx,
                id: Some(child.id.to_string()),
            };
            let end = loop {
                let rec = engine
                    .wait_execution(&child.id, Duration::from_secs(3600))
                    .await
                    .map_err(|e| flow_error("InternalServerError", e.to_string()))?;
                if rec.is_terminal() {
                    break rec;
                }
            };
            guard.id = None;
            match end.status {
                ExecutionStatus::Succeeded => {
                    Ok(end.output.as_deref().cloned().unwrap_or_else(|| json!({})))
                }
                ExecutionStatus::Failed
                | ExecutionStatus::TimedOut
                | ExecutionStatus::Stopped
                | ExecutionStatus::Starting
                | ExecutionStatus::Running => Err(ExecError::new(
                    end.error
                        .unwrap_or_else(|| error_names::RUNTIME.to_string()),
                    end.cause.unwrap_or_default(),
                )),
            }
        }
    }
}
