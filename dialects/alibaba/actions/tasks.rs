//! Callback reports: ReportTaskSucceeded, ReportTaskFailed.

use serde_json::{json, Map};

use crate::dialects::alibaba::error_names;
use crate::dialects::alibaba::params::invalid;
use crate::dialects::alibaba::rpc::{ActionResult, Ctx};

/// `POST /?Action=ReportTaskSucceeded&TaskToken=...` with form `Output` (a JSON object).
/// Answers the id of the event recorded for the report.
pub async fn report_succeeded(ctx: &Ctx<'_>) -> ActionResult {
    let token = ctx.params.required("TaskToken")?;
    ctx.params.required("Output")?;
    let output = ctx
        .params
        .json_object("Output")?
        .unwrap_or_else(|| json!({}));
    let id = ctx.app.engine.report_success(token, output).await?;
    let mut m = Map::new();
    m.insert("EventId".into(), json!(id));
    Ok(m)
}

/// `POST /?Action=ReportTaskFailed&TaskToken=...` with form `Error, Cause`.
pub async fn report_failed(ctx: &Ctx<'_>) -> ActionResult {
    let token = ctx.params.required("TaskToken")?;
    let error = ctx.params.required("Error")?;
    if error.chars().count() > 128 {
        return Err(invalid(
            "The parameter 'Error' must be 1 to 128 characters long.",
        ));
    }
    let cause = ctx.params.get("Cause").unwrap_or("");
    if cause.chars().count() > 4096 {
        return Err(invalid(
            "The parameter 'Cause' must be at most 4096 characters long.",
        ));
    }
    let id = ctx
        .app
        .engine
        .report_failure(
            token,
            error_names::to_canonical(error).into_owned(),
            cause.to_string(),
        )
        .await?;
    let mut m = Map::new();
    m.insert("EventId".into(), json!(id));
    Ok(m)
}
