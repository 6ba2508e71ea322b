//! Versions and aliases: PublishFlowVersion, ListFlowVersions, DeleteFlowVersion,
//! CreateFlowAlias, UpdateFlowAlias, DescribeFlowAlias, ListFlowAliases, DeleteFlowAlias.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::dialects::alibaba::params::invalid;
use crate::dialects::alibaba::records::{
    internal, list_named, named_key, value_string, value_u64, version, version_key, ALIAS, VERSION,
    VERSION_COUNTER,
};
use crate::dialects::alibaba::rpc::{ActionResult, Ctx};
use crate::dialects::alibaba::{flow_key, wire};
use crate::model::time::now;
use crate::model::{ApiError, ResourceKind};
use crate::store::{FlowRecord, PutMode};

async fn flow(ctx: &Ctx<'_>) -> Result<Arc<FlowRecord>, ApiError> {
    let name = ctx.params.required("FlowName")?;
    ctx.app.engine.flow(&flow_key(ctx, name)).await
}

/// `POST /?Action=PublishFlowVersion` with form `FlowName, Description`: snapshots the
/// current definition as the next version number.
pub async fn publish(ctx: &Ctx<'_>) -> ActionResult {
    let flow = flow(ctx).await?;
    let store = ctx.app.engine.store();
    // Version numbers are never reused, even after the highest one is deleted: a counter
    // record per flow remembers the last number handed out.
    let last = match store
        .get_record(VERSION_COUNTER, &flow.id)
        .await
        .map_err(internal)?
    {
        Some(v) => value_u64(&v).unwrap_or(0),
        None => store
            .list_records(VERSION, &format!("{}/", flow.id), None, usize::MAX)
            .await
            .map_err(internal)?
            .items
            .last()
            .and_then(|(_, v)| v.get("Version").and_then(value_u64))
            .unwrap_or(0),
    };
    let number = last + 1;
    let created = wire::time(&now());
    let description = ctx.params.get("Description").unwrap_or("");
    let rec = json!({
        "Version": number.to_string(),
        "Description": description,
        "CreatedTime": created,
        "Definition": &*flow.definition,
    });
    store
        .put_record(VERSION, &version_key(&flow, number), rec, PutMode::Create)
        .await
        .map_err(internal)?;
    store
        .put_record(VERSION_COUNTER, &flow.id, json!(number), PutMode::Upsert)
        .await
        .map_err(internal)?;
    let mut m = Map::new();
    m.insert("FlowName".into(), json!(flow.key.name));
    m.insert("Version".into(), json!(number.to_string()));
    m.insert("Description".into(), json!(description));
    m.insert("CreatedTime".into(), json!(created));
    Ok(m)
}

/// `GET /?Action=ListFlowVersions&FlowName=...&Limit=...&NextToken=...`.
pub async fn list(ctx: &Ctx<'_>) -> ActionResult {
    let flow = flow(ctx).await?;
    let limit = ctx.params.int("Limit", 1, 1000)?.unwrap_or(60) as usize;
    let after = ctx
        .params
        .optional("NextToken")
        .map(|t| t.parse::<u64>().map(|n| version_key(&flow, n)))
        .transpose()
        .map_err(|_| invalid("The parameter 'NextToken' is invalid."))?;
    let page = ctx
        .app
        .engine
        .store()
        .list_records(VERSION, &format!("{}/", flow.id), after.as_deref(), limit)
        .await
        .map_err(internal)?;
    let versions: Vec<Value> = page
        .items
        .iter()
        .map(|(_, v)| {
            json!({"Version": v["Version"], "Description": v["Description"], "CreatedTime": v["CreatedTime"]})
        })
        .collect();
    let mut m = Map::new();
    m.insert("FlowVersions".into(), Value::Array(versions));
    if page.next.is_some() {
        if let Some((_, v)) = page.items.last() {
            m.insert("NextToken".into(), v["Version"].clone());
        }
    }
    Ok(m)
}

/// `POST /?Action=DeleteFlowVersion` with form `FlowName, FlowVersion`.
pub async fn delete(ctx: &Ctx<'_>) -> ActionResult {
    let flow = flow(ctx).await?;
    let v = ctx.params.required("FlowVersion")?;
    version(ctx, &flow, v).await?;
    let n: u64 = v.parse().unwrap_or_default();
    ctx.app
        .engine
        .store()
        .delete_record(VERSION, &version_key(&flow, n))
        .await
        .map_err(internal)?;
    ctx.shared
        .versions
        .remove(&(flow.id.clone(), v.to_string()));
    Ok(Map::new())
}

/// Parses and checks `RoutingConfigurations` (`[{"Version":"1","Weight":100}]`).
async fn routing(ctx: &Ctx<'_>, flow: &FlowRecord, text: &str) -> Result<Value, ApiError> {
    let parsed: Value = serde_json::from_str(text).map_err(|e| {
        invalid(format!(
            "The parameter 'RoutingConfigurations' is not valid JSON: {e}."
        ))
    })?;
    let Some(routes) = parsed.as_array().filter(|a| !a.is_empty()) else {
        return Err(invalid(
            "The parameter 'RoutingConfigurations' must be a non-empty JSON array.",
        ));
    };
    let mut out = Vec::new();
    for (i, r) in routes.iter().enumerate() {
        let v = r
            .get("Version")
            .map(value_string)
            .ok_or_else(|| invalid(format!("RoutingConfigurations[{i}].Version is required.")))?;
        let w = r
            .get("Weight")
            .and_then(value_u64)
            .filter(|w| *w <= 100)
            .ok_or_else(|| {
                invalid(format!(
                    "RoutingConfigurations[{i}].Weight must be an integer from 0 to 100."
                ))
            })?;
        version(ctx, flow, &v).await?;
        out.push(json!({"Version": v, "Weight": w}));
    }
    Ok(Value::Array(out))
}

fn alias_view(a: &Value) -> Map<String, Value> {
    let mut m = Map::new();
    for k in [
        "Name",
        "Description",
        "CreatedTime",
        "LastModifiedTime",
        "RoutingConfigurations",
    ] {
        if let Some(v) = a.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    m
}

/// `POST /?Action=CreateFlowAlias` with form `FlowName, Name, Description,
/// RoutingConfigurations`.
pub async fn create_alias(ctx: &Ctx<'_>) -> ActionResult {
    let flow = flow(ctx).await?;
    let name = ctx.params.required("Name")?;
    let routes = routing(ctx, &flow, ctx.params.required("RoutingConfigurations")?).await?;
    let at = wire::time(&now());
    let rec = json!({
        "Name": name, "Description": ctx.params.get("Description").unwrap_or(""),
        "CreatedTime": at, "LastModifiedTime": at, "RoutingConfigurations": routes,
    });
    match ctx
        .app
        .engine
        .store()
        .put_record(ALIAS, &named_key(&flow, name), rec.clone(), PutMode::Create)
        .await
    {
        Ok(()) => {}
        Err(crate::store::StoreError::AlreadyExists(_)) => {
            return Err(ApiError::ResourceAlreadyExists {
                kind: ResourceKind::FlowAlias,
                name: name.to_string(),
            })
        }
        Err(e) => return Err(internal(e)),
    }
    let mut m = alias_view(&rec);
    m.insert("FlowName".into(), json!(flow.key.name));
    Ok(m)
}

async fn alias(ctx: &Ctx<'_>, flow: &FlowRecord) -> Result<(String, Value), ApiError> {
    let name = ctx.params.required("Name")?;
    let rec = ctx
        .app
        .engine
        .store()
        .get_record(ALIAS, &named_key(flow, name))
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::ResourceNotFound {
            kind: ResourceKind::FlowAlias,
            name: name.to_string(),
        })?;
    Ok((name.to_string(), rec))
}

/// `POST /?Action=UpdateFlowAlias` with form `FlowName, Name, Description,
/// RoutingConfigurations`.
pub async fn update_alias(ctx: &Ctx<'_>) -> ActionResult {
    let flow = flow(ctx).await?;
    let (name, mut rec) = alias(ctx, &flow).await?;
    if let Some(d) = ctx.params.get("Description") {
        rec["Description"] = json!(d);
    }
    if let Some(r) = ctx.params.optional("RoutingConfigurations") {
        rec["RoutingConfigurations"] = routing(ctx, &flow, r).await?;
    }
    rec["LastModifiedTime"] = json!(wire::time(&now()));
    ctx.app
        .engine
        .store()
        .put_record(
            ALIAS,
            &named_key(&flow, &name),
            rec.clone(),
            PutMode::Replace,
        )
        .await
        .map_err(internal)?;
    let mut m = Map::new();
    m.insert("Alias".into(), Value::Object(alias_view(&rec)));
    Ok(m)
}

/// `GET /?Action=DescribeFlowAlias&FlowName=...&Name=...`.
pub async fn describe_alias(ctx: &Ctx<'_>) -> ActionResult {
    let flow = flow(ctx).await?;
    let (_, rec) = alias(ctx, &flow).await?;
    let mut m = Map::new();
    m.insert("Alias".into(), Value::Object(alias_view(&rec)));
    Ok(m)
}

/// `GET /?Action=ListFlowAliases&FlowName=...&Limit=...&NextToken=...`.
pub async fn list_aliases(ctx: &Ctx<'_>) -> ActionResult {
    let flow = flow(ctx).await?;
    list_named(ctx, &flow, ALIAS, "Aliases", "Name", alias_view).await
}

/// `POST /?Action=DeleteFlowAlias` with form `FlowName, Name`.
pub async fn delete_alias(ctx: &Ctx<'_>) -> ActionResult {
    let flow = flow(ctx).await?;
    let (name, _) = alias(ctx, &flow).await?;
    ctx.app
        .engine
        .store()
        .delete_record(ALIAS, &named_key(&flow, &name))
        .await
        .map_err(internal)?;
    Ok(Map::new())
}
