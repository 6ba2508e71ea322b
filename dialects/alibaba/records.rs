//! The dialect's secondary resources, kept in the store's record table: flow versions,
//! aliases and schedules, each keyed `{flow id}/{name}` so they vanish with their flow.

use std::sync::Arc;

use rand::Rng;
use serde_json::Value;

use super::compile;
use super::rpc::Ctx;
use crate::model::{ApiError, ResourceKind};
use crate::store::{FlowRecord, StoreError};

/// Record kind of published flow versions.
pub const VERSION: &str = "alibaba.flow_version";
/// Record kind of the last version number handed out per flow (keyed by flow id).
pub const VERSION_COUNTER: &str = "alibaba.flow_version_counter";
/// Record kind of flow aliases.
pub const ALIAS: &str = "alibaba.flow_alias";
/// Record kind of schedules.
pub const SCHEDULE: &str = "alibaba.schedule";

/// Maps a store failure to an API error.
pub fn internal(e: StoreError) -> ApiError {
    ApiError::Internal {
        message: e.to_string(),
    }
}

/// The record key of a version: zero-padded so keys sort by number.
pub fn version_key(flow: &FlowRecord, version: u64) -> String {
    format!("{}/{version:010}", flow.id)
}

/// The record key of a named resource of a flow.
pub fn named_key(flow: &FlowRecord, name: &str) -> String {
    format!("{}/{name}", flow.id)
}

/// A published version's record (`Version`, `Description`, `CreatedTime`, `Definition`).
pub async fn version(ctx: &Ctx<'_>, flow: &FlowRecord, version: &str) -> Result<Value, ApiError> {
    let not_found = || ApiError::ResourceNotFound {
        kind: ResourceKind::FlowVersion,
        name: version.to_string(),
    };
    let n: u64 = version.parse().map_err(|_| not_found())?;
    ctx.app
        .engine
        .store()
        .get_record(VERSION, &version_key(flow, n))
        .await
        .map_err(internal)?
        .ok_or_else(not_found)
}

/// One page of a flow's named records (schedules, aliases) for a List action: the items
/// rendered by `view` under `list_key`, and `NextToken` = the last item's `name_field` when
/// more remain. Reads `Limit` (1–1000, default 60) and `NextToken` from the request.
pub async fn list_named(
    ctx: &Ctx<'_>,
    flow: &FlowRecord,
    kind: &str,
    list_key: &str,
    name_field: &str,
    view: fn(&Value) -> serde_json::Map<String, Value>,
) -> super::rpc::ActionResult {
    let limit = ctx.params.int("Limit", 1, 1000)?.unwrap_or(60) as usize;
    let after = ctx.params.optional("NextToken").map(|n| named_key(flow, n));
    let page = ctx
        .app
        .engine
        .store()
        .list_records(kind, &format!("{}/", flow.id), after.as_deref(), limit)
        .await
        .map_err(internal)?;
    let mut m = serde_json::Map::new();
    m.insert(
        list_key.into(),
        Value::Array(
            page.items
                .iter()
                .map(|(_, r)| Value::Object(view(r)))
                .collect(),
        ),
    );
    if page.next.is_some() {
        if let Some((_, r)) = page.items.last() {
            m.insert("NextToken".into(), r[name_field].clone());
        }
    }
    Ok(m)
}

/// Removes every version, alias and schedule of a flow.
pub async fn delete_all(ctx: &Ctx<'_>, flow: &FlowRecord) -> Result<(), ApiError> {
    let store = ctx.app.engine.store();
    let prefix = format!("{}/", flow.id);
    store
        .delete_record(VERSION_COUNTER, &flow.id)
        .await
        .map_err(internal)?;
    for kind in [VERSION, ALIAS, SCHEDULE] {
        loop {
            let page = store
                .list_records(kind, &prefix, None, 500)
                .await
                .map_err(internal)?;
            if page.items.is_empty() {
                break;
            }
            for (key, _) in page.items {
                store.delete_record(kind, &key).await.map_err(internal)?;
            }
        }
    }
    Ok(())
}

/// The flow a start runs, given its `Qualifier`: none or `LATEST` = the current definition (the
/// store's shared record, as it is), a number = that published version, anything else = an
/// alias, routed by weight.
pub async fn qualified(
    ctx: &Ctx<'_>,
    flow: Arc<FlowRecord>,
    qualifier: Option<&str>,
) -> Result<Arc<FlowRecord>, ApiError> {
    let Some(q) = qualifier.filter(|q| !q.eq_ignore_ascii_case("LATEST")) else {
        return Ok(flow);
    };
    let number = if q.chars().all(|c| c.is_ascii_digit()) {
        q.to_string()
    } else {
        let alias = ctx
            .app
            .engine
            .store()
            .get_record(ALIAS, &named_key(&flow, q))
            .await
            .map_err(internal)?
            .ok_or_else(|| ApiError::ResourceNotFound {
                kind: ResourceKind::FlowAlias,
                name: q.to_string(),
            })?;
        pick_version(&alias)?
    };
    let rec = version(ctx, &flow, &number).await?;
    let key = (flow.id.clone(), number.clone());
    let compiled = match ctx.shared.versions.get(&key) {
        Some(f) => f.clone(),
        None => {
            let text = rec
                .get("Definition")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let mut f = compile(&flow.key.name, text)?;
            f.mode = flow.flow.mode;
            let f = Arc::new(f);
            ctx.shared.versions.insert(key, f.clone());
            f
        }
    };
    let definition = rec
        .get("Definition")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // A version is a copy of the shared record with its own definition.
    let mut flow = Arc::unwrap_or_clone(flow);
    flow.definition = Arc::from(definition);
    flow.flow = compiled;
    Ok(Arc::new(flow))
}

/// Picks a version from an alias's `RoutingConfigurations` by weight.
fn pick_version(alias: &Value) -> Result<String, ApiError> {
    let routes: Vec<(String, u64)> = alias
        .get("RoutingConfigurations")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| {
                    let v = r.get("Version").map(value_string)?;
                    let w = r.get("Weight").and_then(value_u64).unwrap_or(0);
                    Some((v, w))
                })
                .collect()
        })
        .unwrap_or_default();
    let total: u64 = routes.iter().map(|(_, w)| w).sum();
    if total == 0 {
        return routes
            .first()
            .map(|(v, _)| v.clone())
            .ok_or_else(|| ApiError::InvalidArgument {
                message: "The alias routes to no version.".into(),
            });
    }
    let mut roll = rand::thread_rng().gen_range(0..total);
    for (v, w) in &routes {
        if roll < *w {
            return Ok(v.clone());
        }
        roll -= w;
    }
    Ok(routes[routes.len() - 1].0.clone())
}

/// A JSON string or number as a string.
pub fn value_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A JSON number or numeric string as an integer.
pub fn value_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}
