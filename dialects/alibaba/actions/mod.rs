//! The fnf actions, one file per resource. Each handler quotes the vendor request it serves.

mod executions;
mod flows;
mod regions;
mod schedules;
mod tasks;
mod versions;

pub(crate) use schedules::fire_due_schedules;

use super::rpc::{ActionResult, Answer, Ctx};
use crate::model::ApiError;

/// Runs the action, or `None` when fnf has no action of that name.
pub async fn dispatch(ctx: &Ctx<'_>, action: &str) -> Option<Result<Answer, ApiError>> {
    if action == "StartSyncExecution" {
        return Some(executions::start_sync(ctx).await);
    }
    fields(ctx, action).await.map(|r| r.map(Answer::Fields))
}

/// The actions that answer with a field map.
async fn fields(ctx: &Ctx<'_>, action: &str) -> Option<ActionResult> {
    Some(match action {
        "CreateFlow" => flows::create(ctx).await,
        "DescribeFlow" => flows::describe(ctx).await,
        "UpdateFlow" => flows::update(ctx).await,
        "DeleteFlow" => flows::delete(ctx).await,
        "ListFlows" => flows::list(ctx).await,
        "StartExecution" => executions::start(ctx).await,
        "StopExecution" => executions::stop(ctx).await,
        "DescribeExecution" => executions::describe(ctx).await,
        "ListExecutions" => executions::list(ctx).await,
        "GetExecutionHistory" => executions::history(ctx).await,
        "ReportTaskSucceeded" => tasks::report_succeeded(ctx).await,
        "ReportTaskFailed" => tasks::report_failed(ctx).await,
        "CreateSchedule" => schedules::create(ctx).await,
        "DescribeSchedule" => schedules::describe(ctx).await,
        "UpdateSchedule" => schedules::update(ctx).await,
        "DeleteSchedule" => schedules::delete(ctx).await,
        "ListSchedules" => schedules::list(ctx).await,
        "PublishFlowVersion" => versions::publish(ctx).await,
        "ListFlowVersions" => versions::list(ctx).await,
        "DeleteFlowVersion" => versions::delete(ctx).await,
        "CreateFlowAlias" => versions::create_alias(ctx).await,
        "UpdateFlowAlias" => versions::update_alias(ctx).await,
        "DescribeFlowAlias" => versions::describe_alias(ctx).await,
        "ListFlowAliases" => versions::list_aliases(ctx).await,
        "DeleteFlowAlias" => versions::delete_alias(ctx).await,
        "DescribeRegions" => regions::describe(ctx).await,
        _ => return None,
    })
}
