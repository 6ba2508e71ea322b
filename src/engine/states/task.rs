//! Task: resolve the target through the function bindings, call it with a timeout, or hand a
//! task token out and wait for its report.

use std::time::Duration;

use std::sync::Arc;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::engine::callbacks::{self, CallbackOutcome, Report};
use crate::engine::exec::{ExecCtx, Interrupt, StateInfo};
use crate::engine::scope::{eval_template, Frame, KindOutcome};
use crate::engine::states::subflow;
use crate::engine::states::wait::amount;
use crate::invoke::{Invocation, InvokeError};
use crate::model::error_names;
use crate::model::expr::Vars;
use crate::model::flow::{State, TaskMode, TaskSpec, SUBFLOW_RESOURCE};
use crate::model::{DetailMore, EventDetail, EventKind, ExecError, ExecutionMode, StateLabel};
use crate::store::{TaskTokenRecord, TokenState};

#[allow(clippy::too_many_arguments)]
pub(crate) async fn run<'a>(
    ctx: &'a ExecCtx,
    state: &'a State,
    spec: &'a TaskSpec,
    input: &Arc<Value>,
    frame: Frame<'_>,
    info: &StateInfo<'_>,
    cause: &mut u64,
    cancel: &'a CancellationToken,
) -> Result<KindOutcome<'a>, Interrupt> {
    let name = state.name.as_str();
    let label = &state.label;
    // The state envelope made the token for the whole attempt (see scope::attempt_state).
    let token = match spec.mode {
        TaskMode::WaitForCallback => Some(
            info.task_token
                .map(str::to_string)
                .unwrap_or_else(callbacks::new_token),
        ),
        TaskMode::RequestResponse | TaskMode::Sync => None,
    };
    let info = StateInfo {
        task_token: token.as_deref(),
        ..*info
    };
    // A callback task that was waiting when the execution was interrupted keeps its token.
    let resumed = match (&ctx.resume, &token) {
        (Some(plan), Some(t)) => plan.take_token_state(t),
        _ => None,
    };
    let event = match &spec.parameters {
        None => input.clone(),
        Some(t) => {
            let v = Arc::new(eval_template(ctx, t, frame.vars(ctx, input), Some(&info))?);
            ctx.check_size(format_args!("the event of task '{name}'"), &v)?;
            v
        }
    };
    let timeout = match &spec.timeout_seconds {
        None => None,
        Some(a) => {
            let s = amount(ctx, a, frame, input, &info)?;
            if !(s.is_finite() && s >= 0.0) {
                return Err(Interrupt::runtime(format!("task timeout {s} is not valid")));
            }
            (s > 0.0).then(|| Duration::from_secs_f64(s))
        }
    };
    // A resumed task's timeout counts from when it was first scheduled.
    let elapsed = resumed
        .as_ref()
        .and_then(|r| (chrono::Utc::now() - r.scheduled).to_std().ok())
        .unwrap_or_default();
    *cause = ctx
        .emit(
            EventKind::TaskScheduled,
            label,
            *cause,
            EventDetail {
                input: Some(event.clone()),
                ..EventDetail::more(DetailMore {
                    resource: Some(spec.resource.clone()),
                    attempt: Some(info.retry_count),
                    task_token: token.clone(),
                    ..Default::default()
                })
            },
        )
        .await?;
    let is_subflow = &*spec.resource == SUBFLOW_RESOURCE;
    let mocked = !is_subflow && ctx.test_case.is_some();
    let binding = if is_subflow || mocked {
        None
    } else {
        match ctx.engine.functions.resolve(&spec.resource) {
            Some(b) => Some(b),
            None => {
                let err = ExecError::new(
                    error_names::FUNCTION_NOT_FOUND,
                    format!("no [[functions]] binding matches '{}'", spec.resource),
                );
                return fail(ctx, &state.label, cause, err).await;
            }
        }
    };
    // Where a callback task's report comes from: a channel, or the report already kept with a
    // resumed task's token (made while nobody waited here).
    let report = match &token {
        None => None,
        Some(t) => {
            let record = TaskTokenRecord {
                token: t.clone(),
                execution_id: ctx.id.to_string(),
                flow: ctx.flow_key.clone(),
                execution_name: ctx.name.to_string(),
                state: name.to_string(),
                status: TokenState::Waiting,
                created: chrono::Utc::now(),
                outcome: None,
            };
            if resumed.is_none() {
                ctx.engine
                    .store
                    .put_token(record)
                    .await
                    .map_err(Interrupt::store)?;
                Some(ReportSource::Channel(
                    ctx.engine.callbacks.register(t, &ctx.id, name),
                ))
            } else {
                // Register first, then look: a report made in between finds the waiter.
                let rx = ctx.engine.callbacks.register(t, &ctx.id, name);
                match ctx
                    .engine
                    .store
                    .get_token(t)
                    .await
                    .map_err(Interrupt::store)?
                {
                    None => {
                        ctx.engine
                            .store
                            .put_token(record)
                            .await
                            .map_err(Interrupt::store)?;
                        Some(ReportSource::Channel(rx))
                    }
                    Some(rec) if rec.status == TokenState::Completed => {
                        if ctx.engine.callbacks.take(t).is_some() {
                            Some(ReportSource::Kept(match rec.outcome {
                                Some(o) => crate::engine::nodes::outcome_from_json(&o),
                                None => CallbackOutcome::Failed(ExecError::new(
                                    error_names::TASK_TIMEOUT,
                                    format!("task '{name}' stopped waiting before the gateway restarted"),
                                )),
                            }))
                        } else {
                            Some(ReportSource::Channel(rx))
                        }
                    }
                    Some(_) => Some(ReportSource::Channel(rx)),
                }
            }
        }
    };
    let already_called = matches!(report, Some(ReportSource::Kept(_)))
        || resumed.as_ref().is_some_and(|r| r.submitted);
    *cause = ctx
        .emit(
            EventKind::TaskStarted,
            label,
            *cause,
            EventDetail::more(DetailMore {
                resource: Some(spec.resource.clone()),
                attempt: Some(info.retry_count),
                ..Default::default()
            }),
        )
        .await?;
    // What led to a call is stored before the call: a restart resumes from it, and a
    // Standard execution's history is read while it runs. An Express execution in memory has
    // neither (it is lost on restart, and the clouds keep no history for Express runs): its
    // events are committed together at its end.
    let mode = ctx.flow.mode;
    if mode == ExecutionMode::Standard || ctx.engine.store.durable(mode) {
        ctx.flush().await?;
    }
    let deadline = timeout.map(|d| tokio::time::Instant::now() + d.saturating_sub(elapsed));
    let call = Invocation {
        resource: &spec.resource,
        event: &event,
        attempt: info.retry_count,
        execution_id: &ctx.id,
        execution_name: &ctx.name,
        flow_name: &ctx.flow_key.name,
        state_name: name,
        task_token: token.as_deref(),
        timeout,
    };
    let work = async {
        if already_called {
            // The callee has the token already: do not call it again.
            return Ok(Arc::new(Value::Null));
        }
        match (binding, &ctx.test_case) {
            (Some(b), _) => b.invoker.invoke_shared(&call).await.map_err(invoke_error),
            // The rarer calls are boxed: their futures would otherwise be part of every
            // task state's future, which `scope::run_kind` boxes (and so copies) per task.
            (None, Some(case)) if mocked => Box::pin(ctx.engine.test_cases.answer(
                &ctx.flow_key.name,
                case,
                name,
                call.attempt,
            ))
            .await
            .map(Arc::new)
            .map_err(invoke_error),
            (None, _) => Box::pin(subflow::call(ctx, spec.mode, call.event, token.as_deref()))
                .await
                .map(Arc::new),
        }
    };
    // No call starts once the execution is cancelled (or handed over at shutdown).
    if cancel.is_cancelled() {
        release(ctx, token.as_deref()).await;
        return Err(Interrupt::Cancelled);
    }
    tokio::pin!(work);
    // The call is polled first: a call that answers at once (a mock, a test case) then never
    // sets up the timer or the cancellation waiter, and an answer ready at the same moment as
    // the deadline counts as the answer.
    let called = tokio::select! {
        biased;
        r = &mut work => Some(r),
        _ = sleep_until(deadline) => None,
        _ = cancel.cancelled() => {
            if is_subflow || !ctx.is_releasing() {
                release(ctx, token.as_deref()).await;
                return Err(Interrupt::Cancelled);
            }
            // The node hands the execution over at shutdown: the callee has the request (and
            // a callback task's token) already, so the call finishes and is recorded, and
            // the node that takes over does not call again. A sub-flow is handed over with
            // its parent instead.
            tokio::select! {
                r = work => Some(r),
                _ = sleep_until(deadline) => None,
            }
        }
    };
    ctx.tick();
    let result = match called {
        None => {
            release(ctx, token.as_deref()).await;
            return timed_out(ctx, &state.label, cause, timeout).await;
        }
        Some(Err(e)) => {
            release(ctx, token.as_deref()).await;
            return fail(ctx, &state.label, cause, e).await;
        }
        Some(Ok(v)) => v,
    };
    // A callback task waits for its report (in a future of its own: boxed only for
    // callback tasks, it does not weigh on every task state's future).
    if let (Some(report), Some(t)) = (report, &token) {
        let wait = CallbackWait {
            report,
            token: t,
            deadline,
            timeout,
        };
        return Box::pin(finish_callback(
            ctx, state, spec, input, frame, &info, cause, cancel, wait,
        ))
        .await;
    }
    if let Err(e) = check_result(ctx, spec, name, &result) {
        return fail(ctx, &state.label, cause, e).await;
    }
    *cause = ctx
        .emit(
            EventKind::TaskSucceeded,
            label,
            *cause,
            EventDetail::output(result.clone()),
        )
        .await?;
    select(ctx, spec, frame, input, &info, result)
}

/// How a callback task learns its outcome once its callee has the token.
enum ReportSource {
    /// The report arrives on this channel.
    Channel(tokio::sync::oneshot::Receiver<Report>),
    /// The report was kept with a resumed task's token (made while nobody waited here).
    Kept(CallbackOutcome),
}

/// What a callback task waits with once its callee has the token.
struct CallbackWait<'t> {
    report: ReportSource,
    token: &'t str,
    /// When the task times out (its `timeout`, counted from its first scheduling).
    deadline: Option<tokio::time::Instant>,
    timeout: Option<Duration>,
}

/// Records a callback task's submission and waits for its report (or takes the kept one).
#[allow(clippy::too_many_arguments)]
async fn finish_callback<'a>(
    ctx: &'a ExecCtx,
    state: &'a State,
    spec: &'a TaskSpec,
    input: &Arc<Value>,
    frame: Frame<'_>,
    info: &StateInfo<'_>,
    cause: &mut u64,
    cancel: &'a CancellationToken,
    wait: CallbackWait<'_>,
) -> Result<KindOutcome<'a>, Interrupt> {
    let name = state.name.as_str();
    let label = &state.label;
    let CallbackWait {
        report,
        token: t,
        deadline,
        timeout,
    } = wait;
    let info = *info;
    match report {
        ReportSource::Kept(outcome) => {
            // The report was kept with the token: record it as if it had just arrived.
            *cause = ctx
                .emit(
                    EventKind::TaskSubmitted,
                    label,
                    *cause,
                    EventDetail::more(DetailMore {
                        task_token: Some(t.to_string()),
                        ..Default::default()
                    }),
                )
                .await?;
            let recorded = match outcome {
                CallbackOutcome::Succeeded(v) => {
                    let v = Arc::new(v);
                    if let Err(e) = check_result(ctx, spec, name, &v) {
                        let id = record_failure(ctx, &state.label, cause, &e).await?;
                        ctx.flush().await?;
                        ctx.engine.nodes.recorded(&ctx.engine, t, id).await;
                        return Err(Interrupt::Error(e));
                    }
                    *cause = ctx
                        .emit(
                            EventKind::TaskSucceeded,
                            label,
                            *cause,
                            EventDetail::output(v.clone()),
                        )
                        .await?;
                    Ok(v)
                }
                CallbackOutcome::Failed(e) => {
                    record_failure(ctx, &state.label, cause, &e).await?;
                    Err(e)
                }
            };
            ctx.flush().await?;
            ctx.engine.nodes.recorded(&ctx.engine, t, *cause).await;
            match recorded {
                Ok(v) => select(ctx, spec, frame, input, &info, v),
                Err(e) => Err(Interrupt::Error(e)),
            }
        }
        ReportSource::Channel(rx) => {
            *cause = ctx
                .emit(
                    EventKind::TaskSubmitted,
                    label,
                    *cause,
                    EventDetail::more(DetailMore {
                        task_token: Some(t.to_string()),
                        ..Default::default()
                    }),
                )
                .await?;
            ctx.flush().await?;
            let report: Option<Report> = tokio::select! {
                r = rx => r.ok(),
                _ = sleep_until(deadline) => None,
                _ = cancel.cancelled() => {
                    release(ctx, Some(t)).await;
                    return Err(Interrupt::Cancelled);
                }
            };
            ctx.tick();
            let Some(report) = report else {
                release(ctx, Some(t)).await;
                return timed_out(ctx, &state.label, cause, timeout).await;
            };
            match report.outcome {
                CallbackOutcome::Succeeded(v) => {
                    let v = Arc::new(v);
                    if let Err(e) = check_result(ctx, spec, name, &v) {
                        let id = record_failure(ctx, &state.label, cause, &e).await?;
                        let _ = report.reply.send(id);
                        return Err(Interrupt::Error(e));
                    }
                    *cause = ctx
                        .emit(
                            EventKind::TaskSucceeded,
                            label,
                            *cause,
                            EventDetail::output(v.clone()),
                        )
                        .await?;
                    let _ = report.reply.send(*cause);
                    select(ctx, spec, frame, input, &info, v)
                }
                CallbackOutcome::Failed(e) => {
                    let id = record_failure(ctx, &state.label, cause, &e).await?;
                    let _ = report.reply.send(id);
                    Err(Interrupt::Error(e))
                }
            }
        }
    }
}

/// Applies the task's result selector, if any.
fn select<'a>(
    ctx: &ExecCtx,
    spec: &TaskSpec,
    frame: Frame<'_>,
    input: &Value,
    info: &StateInfo<'_>,
    result: Arc<Value>,
) -> Result<KindOutcome<'a>, Interrupt> {
    match &spec.result_selector {
        None => Ok(KindOutcome::value(result)),
        Some(t) => {
            let mut vars = frame.vars(ctx, input);
            vars.result = Some(&result);
            Ok(KindOutcome::value(Arc::new(eval_template(
                ctx,
                t,
                vars,
                Some(info),
            )?)))
        }
    }
}

/// Applies the size limit, the object requirement and the `fail_when` condition.
fn check_result(ctx: &ExecCtx, spec: &TaskSpec, name: &str, v: &Value) -> Result<(), ExecError> {
    if let Err(Interrupt::Error(e)) = ctx.check_size(format_args!("the result of task '{name}'"), v)
    {
        return Err(e);
    }
    if spec.result_must_be_object && !v.is_object() {
        return Err(ExecError::new(
            error_names::INVALID_OUTPUT,
            format!("task '{name}' returned {v}, which is not a JSON object"),
        ));
    }
    if let Some(cond) = &spec.fail_when {
        let mut vars = Vars::new(v);
        vars.result = Some(v);
        vars.consts = Some(&ctx.flow.constants);
        let hit = cond.eval_bool(&vars).map_err(|e| {
            ExecError::new(
                error_names::RUNTIME,
                format!("condition '{}': {e}", cond.text()),
            )
        })?;
        if hit {
            let mut e = ExecError::new(
                spec.fail_error
                    .clone()
                    .unwrap_or_else(|| error_names::RUNTIME.to_string()),
                format!("task '{name}' result matched '{}'", cond.text()),
            );
            e.data = Some(v.clone());
            return Err(e);
        }
    }
    Ok(())
}

fn invoke_error(e: InvokeError) -> ExecError {
    match e {
        InvokeError::Function {
            error_type,
            message,
        } => ExecError::new(error_type, message),
        InvokeError::Invocation { code, message } => {
            ExecError::new(format!("{}{code}", error_names::INVOKE_PREFIX), message)
        }
    }
}

async fn record_failure(
    ctx: &ExecCtx,
    label: &StateLabel,
    cause: &mut u64,
    err: &ExecError,
) -> Result<u64, Interrupt> {
    *cause = ctx
        .emit(
            EventKind::TaskFailed,
            label,
            *cause,
            EventDetail::error(&err.name, &err.cause),
        )
        .await?;
    Ok(*cause)
}

async fn fail<'a>(
    ctx: &ExecCtx,
    label: &StateLabel,
    cause: &mut u64,
    err: ExecError,
) -> Result<KindOutcome<'a>, Interrupt> {
    record_failure(ctx, label, cause, &err).await?;
    Err(Interrupt::Error(err))
}

async fn timed_out<'a>(
    ctx: &ExecCtx,
    label: &StateLabel,
    cause: &mut u64,
    timeout: Option<Duration>,
) -> Result<KindOutcome<'a>, Interrupt> {
    let secs = timeout.map(|d| d.as_secs_f64()).unwrap_or_default();
    let err = ExecError::new(
        error_names::TASK_TIMEOUT,
        format!("task '{label}' did not complete within {secs} seconds"),
    );
    *cause = ctx
        .emit(
            EventKind::TaskTimedOut,
            label,
            *cause,
            EventDetail::error(&err.name, &err.cause),
        )
        .await?;
    Err(Interrupt::Error(err))
}

/// Marks a token completed when its task stops waiting, so a late report is refused. Not
/// when the execution was fenced off (this node lost it or let it go): the run that carries
/// it on, here or on another node, still waits with the same token.
async fn release(ctx: &ExecCtx, token: Option<&str>) {
    if let Some(t) = token {
        ctx.engine.callbacks.take(t);
        if !ctx.is_handed_over() {
            let _ = ctx.engine.store.complete_token(t, None).await;
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
