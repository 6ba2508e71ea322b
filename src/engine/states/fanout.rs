//! Parallel and Map: run scopes concurrently within the execution's task, with a concurrency
//! bound, failing fast (the first error cancels the siblings that are still running).

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::StreamExt;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::engine::exec::{ExecCtx, Interrupt, StateInfo};
use crate::engine::scope::eval_expr;
use crate::engine::scope::{eval_template, run_scope, Frame, KindOutcome};
use crate::model::flow::{MapSpec, ParallelSpec, Scope, State};
use crate::model::{DetailMore, EventDetail, EventKind, ExecError, StateLabel};

/// Runs every branch on the same input; result = array of branch outputs in branch order.
pub(crate) async fn parallel<'a>(
    ctx: &'a ExecCtx,
    state: &'a State,
    spec: &'a ParallelSpec,
    input: &Arc<Value>,
    cause: &mut u64,
    cancel: &'a CancellationToken,
) -> Result<KindOutcome<'a>, Interrupt> {
    let n = spec.branches.len();
    let limit = bound(spec.max_concurrency, n);
    let jobs = spec
        .branches
        .iter()
        .enumerate()
        .map(|(i, b)| (i, b, input.clone()))
        .collect::<Vec<_>>();
    let results = fan_out(
        ctx,
        &state.label,
        jobs,
        limit,
        *cause,
        cancel,
        (EventKind::BranchEntered, EventKind::BranchExited),
    )
    .await?;
    *cause = results.1;
    let result = Value::Array(results.0);
    ctx.check_size(
        format_args!("the result of state '{}'", state.name),
        &result,
    )?;
    Ok(KindOutcome::value(Arc::new(result)))
}

/// Runs the processor once per item; result = array of iteration outputs in item order.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn map<'a>(
    ctx: &'a ExecCtx,
    state: &'a State,
    spec: &'a MapSpec,
    input: &Arc<Value>,
    frame: Frame<'_>,
    info: &StateInfo<'_>,
    cause: &mut u64,
    cancel: &'a CancellationToken,
) -> Result<KindOutcome<'a>, Interrupt> {
    let items = eval_expr(ctx, &spec.items, frame.vars(ctx, input), Some(info))?;
    let Value::Array(items) = items else {
        return Err(Interrupt::runtime(format!(
            "items '{}' gave {items}, not an array",
            spec.items.text()
        )));
    };
    let mut jobs = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let iteration_input = match &spec.item {
            None => Arc::new(item),
            Some(t) => {
                let index = json!(i);
                let mut vars = frame.vars(ctx, input);
                vars.item = Some(&item);
                vars.index = Some(&index);
                Arc::new(eval_template(ctx, t, vars, Some(info))?)
            }
        };
        jobs.push((i, &*spec.processor, iteration_input));
    }
    let default = ctx.engine.config.default_map_concurrency;
    let limit = bound(
        spec.max_concurrency.filter(|&c| c > 0).or(Some(default)),
        jobs.len(),
    );
    let results = fan_out(
        ctx,
        &state.label,
        jobs,
        limit,
        *cause,
        cancel,
        (EventKind::IterationEntered, EventKind::IterationExited),
    )
    .await?;
    *cause = results.1;
    let result = Value::Array(results.0);
    ctx.check_size(
        format_args!("the result of state '{}'", state.name),
        &result,
    )?;
    Ok(KindOutcome::value(Arc::new(result)))
}

/// One branch or iteration: its index, output and last event id.
type Job<'a> = BoxFuture<'a, Result<(usize, Arc<Value>, u64), Interrupt>>;

fn bound(max: Option<u32>, n: usize) -> usize {
    match max {
        Some(c) if c > 0 => (c as usize).min(n.max(1)),
        _ => n.max(1),
    }
}

/// Runs `(index, scope, input)` jobs with at most `limit` at once. The first error cancels
/// the others and is returned; otherwise the outputs in index order and the last event id.
async fn fan_out<'a>(
    ctx: &'a ExecCtx,
    name: &'a StateLabel,
    jobs: Vec<(usize, &'a Scope, Arc<Value>)>,
    limit: usize,
    cause: u64,
    cancel: &'a CancellationToken,
    kinds: (EventKind, EventKind),
) -> Result<(Vec<Value>, u64), Interrupt> {
    let n = jobs.len();
    let child = cancel.child_token();
    let mut futures: Vec<Job<'a>> = Vec::with_capacity(n);
    for (i, scope, input) in jobs {
        futures.push(Box::pin(one(
            ctx,
            name,
            i,
            scope,
            input,
            cause,
            child.clone(),
            kinds,
        )));
    }
    let mut stream = futures::stream::iter(futures).buffer_unordered(limit);
    let mut results = vec![Value::Null; n];
    let mut first_err: Option<ExecError> = None;
    let mut last = cause;
    while let Some(r) = stream.next().await {
        match r {
            Ok((i, v, id)) => {
                results[i] = Arc::try_unwrap(v).unwrap_or_else(|shared| (*shared).clone());
                last = last.max(id);
            }
            Err(Interrupt::Error(e)) => {
                if first_err.is_none() {
                    first_err = Some(e);
                    child.cancel();
                }
            }
            Err(Interrupt::Cancelled) => {}
        }
    }
    if cancel.is_cancelled() {
        return Err(Interrupt::Cancelled);
    }
    if let Some(e) = first_err {
        return Err(Interrupt::Error(e));
    }
    Ok((results, last))
}

#[allow(clippy::too_many_arguments)]
async fn one<'a>(
    ctx: &'a ExecCtx,
    name: &'a StateLabel,
    index: usize,
    scope: &'a Scope,
    input: Arc<Value>,
    cause: u64,
    cancel: CancellationToken,
    (enter, exit): (EventKind, EventKind),
) -> Result<(usize, Arc<Value>, u64), Interrupt> {
    if cancel.is_cancelled() {
        return Err(Interrupt::Cancelled);
    }
    let entered = ctx
        .emit(
            enter,
            name,
            cause,
            EventDetail {
                input: Some(input.clone()),
                ..EventDetail::more(DetailMore {
                    index: Some(index),
                    ..Default::default()
                })
            },
        )
        .await?;
    match run_scope(ctx, scope, input, entered, &cancel).await {
        Ok((out, last)) => {
            let id = ctx
                .emit(
                    exit,
                    name,
                    last,
                    EventDetail {
                        output: Some(out.clone()),
                        ..EventDetail::more(DetailMore {
                            index: Some(index),
                            ..Default::default()
                        })
                    },
                )
                .await?;
            Ok((index, out, id))
        }
        Err(Interrupt::Error(e)) => {
            ctx.emit(
                exit,
                name,
                entered,
                EventDetail::more(DetailMore {
                    index: Some(index),
                    error: Some(e.name.clone()),
                    cause: Some(e.cause.clone()),
                    ..Default::default()
                }),
            )
            .await?;
            Err(Interrupt::Error(e))
        }
        Err(Interrupt::Cancelled) => Err(Interrupt::Cancelled),
    }
}
