//! `workflow-statistic`: execution counts, failures, running executions and average
//! duration per period, computed from the executions the store holds.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{all_executions, all_workflows};
use crate::dialects::huawei::errors::VendorError;
use crate::dialects::huawei::rest::{Reply, Req};
use crate::dialects::huawei::wire;
use crate::model::ExecutionStatus;
use crate::store::FlowRecord;

/// `GET /v2/{project_id}/fgs/workflow-statistic?period=&start_time=&end_time=&metric_type=`.
pub async fn tenant(r: &Req<'_>) -> Reply {
    let flows = all_workflows(r).await?;
    statistics(r, &flows).await
}

/// `GET /v2/{project_id}/fgs/workflow-statistic/{workflow_urn}?period=&start_time=&end_time=`.
pub async fn workflow(r: &Req<'_>, urn: &str) -> Reply {
    let flows: Vec<FlowRecord> = all_workflows(r)
        .await?
        .into_iter()
        .filter(|f| wire::urn(f) == urn)
        .collect();
    if flows.is_empty() {
        return Err(crate::dialects::huawei::rest::api(
            crate::model::ApiError::FlowNotFound {
                flow: urn.to_string(),
            },
        ));
    }
    statistics(r, &flows).await
}

fn ms_param(r: &Req<'_>, name: &str, default: i64) -> Result<i64, VendorError> {
    match r.query(name) {
        None => Ok(default),
        Some(v) => v.trim().parse::<i64>().map_err(|_| {
            VendorError::invalid(format!(
                "Invalid parameters: {name} must be epoch milliseconds, not '{v}'."
            ))
        }),
    }
}

async fn statistics(r: &Req<'_>, flows: &[FlowRecord]) -> Reply {
    let now = Utc::now().timestamp_millis();
    let period_min = ms_param(r, "period", 5)?;
    if !(1..=1440).contains(&period_min) {
        return Err(VendorError::invalid(
            "Invalid parameters: period must be from 1 to 1440 minutes.",
        ));
    }
    let period = period_min * 60_000;
    let end = ms_param(r, "end_time", now)?;
    let start = ms_param(r, "start_time", end - 3_600_000)?;
    if start > end {
        return Err(VendorError::invalid(
            "Invalid parameters: start_time must not be after end_time.",
        ));
    }
    let buckets = (((end - start) / period) + 1).min(2000) as usize;
    let mut count = vec![0f64; buckets];
    let mut fail = vec![0f64; buckets];
    let mut running = vec![0f64; buckets];
    let mut duration = vec![(0f64, 0f64); buckets];
    for f in flows {
        for e in all_executions(r, f).await? {
            let t = e.started.timestamp_millis();
            if t < start || t > end {
                continue;
            }
            let b = ((t - start) / period) as usize;
            if b >= buckets {
                continue;
            }
            count[b] += 1.0;
            match e.status {
                ExecutionStatus::Failed | ExecutionStatus::TimedOut => fail[b] += 1.0,
                ExecutionStatus::Starting | ExecutionStatus::Running => running[b] += 1.0,
                ExecutionStatus::Succeeded | ExecutionStatus::Stopped => {}
            }
            if let Some(stop) = e.stopped {
                let d: DateTime<Utc> = stop;
                duration[b].0 += (d - e.started).num_milliseconds() as f64;
                duration[b].1 += 1.0;
            }
        }
    }
    let series = |values: Vec<f64>| -> Value {
        Value::Array(
            values
                .into_iter()
                .enumerate()
                .map(|(i, v)| json!({"timestamp": start + i as i64 * period, "value": v}))
                .collect(),
        )
    };
    let avg: Vec<f64> = duration
        .iter()
        .map(|(sum, n)| if *n > 0.0 { sum / n } else { 0.0 })
        .collect();
    // An unknown metric_type (or none) means every series.
    let wanted = r.query("metric_type").filter(|w| {
        [
            "totalCount",
            "errorCount",
            "averageDuration",
            "running",
            "rejectCount",
        ]
        .contains(w)
    });
    let pick = |name: &str, v: Value| -> Value {
        if wanted.is_none_or(|w| w == name) {
            v
        } else {
            json!([])
        }
    };
    Ok((
        StatusCode::OK,
        Some(json!({
            "count": pick("totalCount", series(count)),
            "fail_count": pick("errorCount", series(fail)),
            "running_count": pick("running", series(running)),
            "duration": pick("averageDuration", series(avg)),
        })),
    ))
}
