//! Workflow definitions: create, list, show, update (full replace), batch delete by URN.

use std::borrow::Cow;
use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::{all_workflows, int_param, workflow};
use crate::dialects::huawei::errors::VendorError;
use crate::dialects::huawei::flow;
use crate::dialects::huawei::rest::{api, Reply, Req};
use crate::dialects::huawei::wire;
use crate::model::execution::FlowKey;
use crate::model::time::now;
use crate::model::ApiError;
use crate::store::FlowRecord;

/// Compiles a `WorkflowCreateBody` into a flow record (a new id; the caller may keep an old one).
fn compile(r: &Req<'_>, body: &Value) -> Result<FlowRecord, VendorError> {
    let compiled = flow::compile(&r.project, body).map_err(|issues| {
        api(ApiError::InvalidDefinition {
            issues: issues.iter().map(|i| i.to_string()).collect(),
        })
    })?;
    let name = compiled.definition.name.clone();
    let definition = serde_json::to_value(&compiled.definition).unwrap_or(Value::Null);
    let at = now();
    Ok(FlowRecord {
        id: uuid::Uuid::new_v4().to_string().into(),
        key: FlowKey::new(r.namespace(), name.clone()),
        dialect: "huawei".into(),
        definition: Arc::from(String::from_utf8_lossy(r.body).as_ref()),
        flow: Arc::new(compiled.flow),
        created: at,
        modified: at,
        metadata: json!({
            "workflow_urn": flow::workflow_urn(&r.app.config.flows.huawei_region, &r.project, &name),
            "definition": wire::stored_definition(definition),
        }),
    })
}

/// `POST /v2/{project_id}/fgs/workflows` with a `WorkflowCreateBody`: 201 `WorkflowSimpleInfo`.
pub async fn create(r: &Req<'_>) -> Reply {
    let body = r.json()?;
    let rec = compile(r, &body)?;
    let rec = r.app.engine.create_flow(rec).await.map_err(api)?;
    Ok((StatusCode::CREATED, Some(wire::simple_info(&rec))))
}

/// `GET /v2/{project_id}/fgs/workflows?workflow_name=&limit=&offset=&enterprise_project=&mode=`.
pub async fn list(r: &Req<'_>) -> Reply {
    let limit = int_param(r, "limit")?.unwrap_or(200).clamp(1, 200) as usize;
    let offset = int_param(r, "offset")?.unwrap_or(0).max(0) as usize;
    let name = r.query("workflow_name");
    let mode = match r.query("mode") {
        None => None,
        Some(m @ ("NORMAL" | "EXPRESS")) => Some(m),
        Some(other) => {
            return Err(VendorError::invalid(format!(
                "Invalid parameters: mode must be NORMAL or EXPRESS, not '{other}'."
            )))
        }
    };
    let all: Vec<FlowRecord> = all_workflows(r)
        .await?
        .into_iter()
        .filter(|f| name.is_none_or(|n| f.key.name.contains(n)))
        .filter(|f| {
            mode.is_none_or(|m| {
                let express = f.flow.mode == crate::model::ExecutionMode::Express;
                (m == "EXPRESS") == express
            })
        })
        .collect();
    let page: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(wire::simple_info)
        .collect();
    Ok((
        StatusCode::OK,
        Some(json!({"total": all.len(), "size": page.len(), "workflows": page})),
    ))
}

/// `GET /v2/{project_id}/fgs/workflows/{workflow_id}`: `WorkflowInfo` with the stored
/// definition.
pub async fn show(r: &Req<'_>, id: &str) -> Reply {
    let f = workflow(r, id).await?;
    Ok((
        StatusCode::OK,
        Some(json!({
            "id": f.id,
            "workflow_urn": wire::urn(&f),
            "created_time": wire::time(&f.created),
            "updated_time": wire::time(&f.modified),
            "created_by": wire::CREATED_BY,
            "definition": wire::definition(&f.metadata).map(Cow::into_owned).unwrap_or(Value::Null),
        })),
    ))
}

/// `PUT /v2/{project_id}/fgs/workflows/{workflow_id}` with a full `WorkflowCreateBody`.
/// The name cannot change (it is part of the workflow URN).
pub async fn update(r: &Req<'_>, id: &str) -> Reply {
    let old = workflow(r, id).await?;
    let body = r.json()?;
    let mut rec = compile(r, &body)?;
    if rec.key != old.key {
        return Err(VendorError::invalid(format!(
            "Invalid parameters: name cannot change from '{}' to '{}'.",
            old.key.name, rec.key.name
        )));
    }
    rec.id = old.id.clone();
    rec.created = old.created;
    let rec = r.app.engine.replace_flow(rec).await.map_err(api)?;
    Ok((StatusCode::OK, Some(wire::simple_info(&rec))))
}

/// `DELETE /v2/{project_id}/fgs/workflows` with `{"workflow_urns": [...]}`:
/// `{"success": [urn], "fail": [{"workflow_urn", "error_detail"}]}`.
pub async fn batch_delete(r: &Req<'_>) -> Reply {
    let body = r.json()?;
    let urns = match body.get("workflow_urns") {
        Some(Value::Array(a)) => a.clone(),
        None | Some(Value::Null) => {
            return Err(VendorError::invalid(
                "Invalid parameters: workflow_urns is required.",
            ))
        }
        Some(_) => {
            return Err(VendorError::invalid(
                "Invalid parameters: workflow_urns must be an array of URNs.",
            ))
        }
    };
    if urns.len() > 200 {
        return Err(VendorError::invalid(
            "Invalid parameters: workflow_urns holds at most 200 URNs.",
        ));
    }
    let flows = all_workflows(r).await?;
    let mut success = Vec::new();
    let mut fail = Vec::new();
    for urn in urns {
        let urn = urn.as_str().unwrap_or_default().to_string();
        match flows.iter().find(|f| wire::urn(f) == urn) {
            Some(f) => match r.app.engine.delete_flow(&f.key).await {
                Ok(()) => success.push(json!(urn)),
                Err(e) => fail.push(json!({"workflow_urn": urn, "error_detail": e.to_string()})),
            },
            None => fail.push(
                json!({"workflow_urn": urn, "error_detail": format!("graph not found:{urn}")}),
            ),
        }
    }
    Ok((
        StatusCode::OK,
        Some(json!({"success": success, "fail": fail})),
    ))
}
