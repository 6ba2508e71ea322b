//! Flow actions: CreateFlow, DescribeFlow, UpdateFlow, DeleteFlow, ListFlows.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::dialects::alibaba::params::{check_name, invalid};
use crate::dialects::alibaba::rpc::{ActionResult, Ctx};
use crate::dialects::alibaba::{compile, flow_key, records, wire};
use crate::model::time::now;
use crate::model::ExecutionMode;
use crate::store::FlowRecord;

fn mode(value: Option<&str>) -> Result<ExecutionMode, crate::model::ApiError> {
    match value {
        None | Some("Standard") => Ok(ExecutionMode::Standard),
        Some("Express") => Ok(ExecutionMode::Express),
        Some(other) => Err(invalid(format!(
            "The parameter 'ExecutionMode' must be Standard or Express, not '{other}'."
        ))),
    }
}

fn flow_type(value: Option<&str>) -> Result<&str, crate::model::ApiError> {
    match value {
        None => Ok("FDL"),
        Some(t @ ("FDL" | "DEFAULT")) => Ok(t),
        Some(other) => Err(invalid(format!(
            "The parameter 'Type' must be FDL or DEFAULT, not '{other}'."
        ))),
    }
}

fn environment(ctx: &Ctx<'_>) -> Result<Option<Value>, crate::model::ApiError> {
    ctx.params.json_object("Environment")
}

/// `POST /?Action=CreateFlow` with form `Name, Definition, Description, Type, RoleArn,
/// ExecutionMode, ExternalStorageLocation, Environment, ResourceGroupId`.
pub async fn create(ctx: &Ctx<'_>) -> ActionResult {
    let p = ctx.params;
    let name = p.required("Name")?;
    check_name("Name", name)?;
    let definition = p.required("Definition")?;
    let typ = flow_type(p.optional("Type"))?;
    let mode = mode(p.optional("ExecutionMode"))?;
    let env = environment(ctx)?;
    let mut flow = compile(name, definition)?;
    flow.mode = mode;
    let at = now();
    let rec = FlowRecord {
        id: uuid::Uuid::new_v4().to_string().into(),
        key: flow_key(ctx, name),
        dialect: "alibaba".into(),
        definition: Arc::from(definition),
        flow: Arc::new(flow),
        created: at,
        modified: at,
        metadata: json!({
            "Description": p.get("Description").unwrap_or(""),
            "Type": typ,
            "RoleArn": p.get("RoleArn").unwrap_or(""),
            "Environment": env,
            "ExternalStorageLocation": p.get("ExternalStorageLocation").unwrap_or(""),
            "ResourceGroupId": p.get("ResourceGroupId").unwrap_or(""),
        }),
    };
    let rec = ctx.app.engine.create_flow(rec).await?;
    Ok(wire::flow(&rec))
}

/// `GET /?Action=DescribeFlow&Name=...[&FlowVersion=...]`.
pub async fn describe(ctx: &Ctx<'_>) -> ActionResult {
    let name = ctx.params.required("Name")?;
    let flow = ctx.app.engine.flow(&flow_key(ctx, name)).await?;
    match ctx.params.optional("FlowVersion") {
        None => Ok(wire::flow(&flow)),
        Some(v) => {
            let version = records::version(ctx, &flow, v).await?;
            let mut m = wire::flow(&flow);
            if let Some(d) = version.get("Definition") {
                m.insert("Definition".into(), d.clone());
            }
            Ok(m)
        }
    }
}

/// `POST /?Action=UpdateFlow` with form `Name, Definition, Description, Type, RoleArn,
/// Environment`. Running executions keep the definition they started with.
pub async fn update(ctx: &Ctx<'_>) -> ActionResult {
    let p = ctx.params;
    let name = p.required("Name")?;
    // The store's record is shared and read-only: change a copy, then replace it.
    let mut rec = Arc::unwrap_or_clone(ctx.app.engine.flow(&flow_key(ctx, name)).await?);
    if let Some(t) = p.optional("Type") {
        flow_type(Some(t))?;
    }
    let env = environment(ctx)?;
    if let Some(definition) = p.optional("Definition") {
        let mut flow = compile(name, definition)?;
        flow.mode = rec.flow.mode;
        rec.flow = Arc::new(flow);
        rec.definition = Arc::from(definition);
    }
    if let Value::Object(meta) = &mut rec.metadata {
        for key in ["Description", "Type", "RoleArn"] {
            if let Some(v) = p.get(key) {
                meta.insert(key.into(), json!(v));
            }
        }
        if env.is_some() {
            meta.insert("Environment".into(), json!(env));
        }
    }
    rec.modified = now();
    let rec = ctx.app.engine.replace_flow(rec).await?;
    Ok(wire::flow(&rec))
}

/// `POST /?Action=DeleteFlow` with form `Name`. Executions become invisible, running ones
/// stop; the flow's schedules, versions and aliases go with it.
pub async fn delete(ctx: &Ctx<'_>) -> ActionResult {
    let name = ctx.params.required("Name")?;
    let key = flow_key(ctx, name);
    let flow = ctx.app.engine.flow(&key).await?;
    ctx.app.engine.delete_flow(&key).await?;
    records::delete_all(ctx, &flow).await?;
    Ok(Map::new())
}

/// `GET /?Action=ListFlows&Limit=...&NextToken=...`.
pub async fn list(ctx: &Ctx<'_>) -> ActionResult {
    let limit = ctx.params.int("Limit", 1, 999)?.unwrap_or(60) as usize;
    let after = ctx.params.optional("NextToken");
    let page = ctx
        .app
        .engine
        .list_flows(ctx.namespace(), after, limit)
        .await?;
    let mut m = Map::new();
    m.insert(
        "Flows".into(),
        Value::Array(
            page.items
                .iter()
                .map(|f| Value::Object(wire::flow(f)))
                .collect(),
        ),
    );
    if let Some(n) = page.next {
        m.insert("NextToken".into(), json!(n));
    }
    Ok(m)
}
