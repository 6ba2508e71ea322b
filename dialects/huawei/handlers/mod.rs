//! The route handlers, one file per resource. Each handler quotes the vendor request it
//! serves.

pub mod executions;
pub mod iam;
pub mod metrics;
pub mod workflows;

use std::sync::Arc;

use super::errors::VendorError;
use super::rest::{api, Req};
use crate::store::FlowRecord;

/// A workflow of the request's project by id (`FGS.5002` otherwise): the store's shared,
/// read-only record.
pub async fn workflow(r: &Req<'_>, id: &str) -> Result<Arc<FlowRecord>, VendorError> {
    let found = r.app.engine.store().get_flow_by_id(id).await.map_err(|e| {
        api(crate::model::ApiError::Internal {
            message: e.to_string(),
        })
    })?;
    match found {
        Some(f) if f.key.namespace == r.namespace() => Ok(f),
        _ => Err(api(crate::model::ApiError::FlowNotFound {
            flow: id.to_string(),
        })),
    }
}

/// Every workflow of the request's project, in name order.
pub async fn all_workflows(r: &Req<'_>) -> Result<Vec<FlowRecord>, VendorError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = r
            .app
            .engine
            .list_flows(&r.namespace(), after.as_deref(), 1000)
            .await
            .map_err(api)?;
        out.extend(page.items);
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// Every execution of a workflow the store still holds, oldest first.
pub async fn all_executions(
    r: &Req<'_>,
    flow: &FlowRecord,
) -> Result<Vec<crate::model::ExecutionRecord>, VendorError> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    let filter = crate::store::ExecutionFilter::default();
    loop {
        let page = r
            .app
            .engine
            .list_executions(flow, &filter, after.as_deref(), 1000)
            .await
            .map_err(api)?;
        out.extend(page.items);
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// Parses a non-negative integer query parameter.
pub fn int_param(r: &Req<'_>, name: &str) -> Result<Option<i64>, VendorError> {
    match r.query(name) {
        None => Ok(None),
        Some(v) => v.trim().parse::<i64>().map(Some).map_err(|_| {
            VendorError::invalid(format!(
                "Invalid parameters: {name} must be an integer, not '{v}'."
            ))
        }),
    }
}
