//! Schedules: CreateSchedule, DescribeSchedule, UpdateSchedule, DeleteSchedule,
//! ListSchedules, and the firing of enabled schedules (6-field cron, seconds first).

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::dialects::alibaba::params::{check_name, invalid};
use crate::dialects::alibaba::records::{internal, list_named, named_key, SCHEDULE};
use crate::dialects::alibaba::rpc::{ActionResult, Ctx};
use crate::dialects::alibaba::{flow_key, wire};
use crate::engine::StartRequest;
use crate::model::time::now;
use crate::model::{ApiError, ExecutionMode, ResourceKind};
use crate::server::AppState;
use crate::store::{FlowRecord, PutMode, StoreError};

async fn flow(ctx: &Ctx<'_>) -> Result<Arc<FlowRecord>, ApiError> {
    let name = ctx.params.required("FlowName")?;
    ctx.app.engine.flow(&flow_key(ctx, name)).await
}

/// Parses a cron expression: 6 fields with seconds first (7 with a year also accepted).
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, ApiError> {
    let fields = expr.split_whitespace().count();
    if !(6..=7).contains(&fields) {
        return Err(invalid(format!(
            "The parameter 'CronExpression' must have 6 fields with seconds first (e.g. '0 * * * * *'), not '{expr}'."
        )));
    }
    cron::Schedule::from_str(expr).map_err(|e| {
        invalid(format!(
            "The parameter 'CronExpression' '{expr}' is invalid: {e}."
        ))
    })
}

fn payload(ctx: &Ctx<'_>) -> Result<Option<String>, ApiError> {
    ctx.params.json_object("Payload")?;
    Ok(ctx.params.optional("Payload").map(str::to_string))
}

fn view(s: &Value) -> Map<String, Value> {
    let mut m = Map::new();
    for k in [
        "ScheduleId",
        "ScheduleName",
        "CronExpression",
        "Description",
        "Enable",
        "Payload",
        "CreatedTime",
        "LastModifiedTime",
    ] {
        if let Some(v) = s.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    m
}

/// `POST /?Action=CreateSchedule` with form `FlowName, ScheduleName, CronExpression,
/// Description, Enable, Payload`.
pub async fn create(ctx: &Ctx<'_>) -> ActionResult {
    let p = ctx.params;
    let flow = flow(ctx).await?;
    let name = p.required("ScheduleName")?;
    check_name("ScheduleName", name)?;
    let cron_expr = p.required("CronExpression")?;
    parse_cron(cron_expr)?;
    let payload = payload(ctx)?;
    let enable = p.bool("Enable")?.unwrap_or(false);
    let at = wire::time(&now());
    let rec = json!({
        "ScheduleId": uuid::Uuid::new_v4().to_string(),
        "ScheduleName": name,
        "CronExpression": cron_expr,
        "Description": p.get("Description").unwrap_or(""),
        "Enable": enable,
        "Payload": payload.unwrap_or_default(),
        "CreatedTime": at,
        "LastModifiedTime": at,
        "FlowId": flow.id,
        "FlowName": flow.key.name,
        "Namespace": flow.key.namespace,
    });
    match ctx
        .app
        .engine
        .store()
        .put_record(
            SCHEDULE,
            &named_key(&flow, name),
            rec.clone(),
            PutMode::Create,
        )
        .await
    {
        Ok(()) => Ok(view(&rec)),
        Err(StoreError::AlreadyExists(_)) => Err(ApiError::ResourceAlreadyExists {
            kind: ResourceKind::Schedule,
            name: name.to_string(),
        }),
        Err(e) => Err(internal(e)),
    }
}

async fn schedule(ctx: &Ctx<'_>, flow: &FlowRecord) -> Result<(String, Value), ApiError> {
    let name = ctx.params.required("ScheduleName")?;
    let rec = ctx
        .app
        .engine
        .store()
        .get_record(SCHEDULE, &named_key(flow, name))
        .await
        .map_err(internal)?
        .ok_or_else(|| ApiError::ResourceNotFound {
            kind: ResourceKind::Schedule,
            name: name.to_string(),
        })?;
    Ok((name.to_string(), rec))
}

/// `GET /?Action=DescribeSchedule&FlowName=...&ScheduleName=...`.
pub async fn describe(ctx: &Ctx<'_>) -> ActionResult {
    let flow = flow(ctx).await?;
    let (_, rec) = schedule(ctx, &flow).await?;
    Ok(view(&rec))
}

/// `POST /?Action=UpdateSchedule` with form `FlowName, ScheduleName, CronExpression,
/// Description, Enable, Payload`.
pub async fn update(ctx: &Ctx<'_>) -> ActionResult {
    let p = ctx.params;
    let flow = flow(ctx).await?;
    let (name, mut rec) = schedule(ctx, &flow).await?;
    if let Some(c) = p.optional("CronExpression") {
        parse_cron(c)?;
        rec["CronExpression"] = json!(c);
    }
    if let Some(d) = p.get("Description") {
        rec["Description"] = json!(d);
    }
    if let Some(e) = p.bool("Enable")? {
        rec["Enable"] = json!(e);
    }
    if let Some(pl) = payload(ctx)? {
        rec["Payload"] = json!(pl);
    }
    rec["LastModifiedTime"] = json!(wire::time(&now()));
    ctx.app
        .engine
        .store()
        .put_record(
            SCHEDULE,
            &named_key(&flow, &name),
            rec.clone(),
            PutMode::Replace,
        )
        .await
        .map_err(internal)?;
    Ok(view(&rec))
}

/// `POST /?Action=DeleteSchedule` with form `FlowName, ScheduleName`.
pub async fn delete(ctx: &Ctx<'_>) -> ActionResult {
    let flow = flow(ctx).await?;
    let (name, _) = schedule(ctx, &flow).await?;
    ctx.app
        .engine
        .store()
        .delete_record(SCHEDULE, &named_key(&flow, &name))
        .await
        .map_err(internal)?;
    Ok(Map::new())
}

/// `GET /?Action=ListSchedules&FlowName=...&Limit=...&NextToken=...`.
pub async fn list(ctx: &Ctx<'_>) -> ActionResult {
    let flow = flow(ctx).await?;
    list_named(ctx, &flow, SCHEDULE, "Schedules", "ScheduleName", view).await
}

/// Record kind of a fired schedule occurrence, keyed `{schedule key}@{unix seconds}`.
const FIRED: &str = "flowgate.schedule_fired";

/// Whether this node fires the occurrence `slot` of a schedule. With a durable store (which
/// several nodes may share) the occurrence is claimed by creating its record, so exactly one
/// node starts its execution; older claims of the schedule are removed.
async fn claim_slot(app: &AppState, schedule: &str, slot: DateTime<Utc>) -> bool {
    let store = app.engine.store();
    if !store.is_durable() {
        return true;
    }
    let prefix = format!("{schedule}@");
    let key = format!("{prefix}{:012}", slot.timestamp());
    match store
        .put_record(FIRED, &key, json!({}), crate::store::PutMode::Create)
        .await
    {
        Ok(()) => {}
        Err(StoreError::AlreadyExists(_)) => return false,
        Err(e) => {
            tracing::warn!(error = %e, "could not claim a schedule occurrence");
            return false;
        }
    }
    if let Ok(old) = store.list_records(FIRED, &prefix, None, 100).await {
        for (k, _) in old.items.iter().filter(|(k, _)| *k < key) {
            let _ = store.delete_record(FIRED, k).await;
        }
    }
    true
}

/// Starts an execution for every enabled schedule with a cron occurrence in `(since, until]`,
/// with its `Payload` as the input. Errors are logged: a schedule never stops the gateway.
pub(crate) async fn fire_due_schedules(app: &AppState, since: DateTime<Utc>, until: DateTime<Utc>) {
    let store = app.engine.store();
    let mut after: Option<String> = None;
    loop {
        let page = match store
            .list_records(SCHEDULE, "", after.as_deref(), 200)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "could not list schedules");
                return;
            }
        };
        for (key, s) in &page.items {
            if s.get("Enable") != Some(&Value::Bool(true)) {
                continue;
            }
            let Some(expr) = s.get("CronExpression").and_then(Value::as_str) else {
                continue;
            };
            let Ok(schedule) = parse_cron(expr) else {
                continue;
            };
            let Some(slot) = schedule.after(&since).next().filter(|t| *t <= until) else {
                continue;
            };
            if !claim_slot(app, key, slot).await {
                continue;
            }
            let flow_id = s.get("FlowId").and_then(Value::as_str).unwrap_or_default();
            let flow = match store.get_flow_by_id(flow_id).await {
                Ok(Some(f)) => f,
                _ => continue,
            };
            if flow.flow.mode != ExecutionMode::Standard {
                continue;
            }
            let input = s
                .get("Payload")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
                .and_then(|p| serde_json::from_str(p).ok())
                .unwrap_or_else(|| json!({}));
            let req = StartRequest {
                flow,
                name: None,
                input,
                metadata: json!({"ScheduleName": s.get("ScheduleName")}),
                callback_token: None,
            };
            if let Err(e) = app.engine.start(req).await {
                tracing::warn!(schedule = ?s.get("ScheduleName"), error = %e, "a schedule could not start its execution");
            }
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return,
        }
    }
}
