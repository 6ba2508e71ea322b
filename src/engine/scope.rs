//! The scope loop and the state envelope: data transforms, events, retry and catch.

use futures::future::BoxFuture;
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use super::clock;
use super::exec::{ExecCtx, Interrupt, StateInfo};
use super::states;
use crate::model::error_names;
use crate::model::expr::{Template, Var, Vars};
use crate::model::flow::{RetryPolicy, Scope, State, StateKind};
use crate::model::{EventKind, ExecError};

/// Where the scope goes after a state.
pub(crate) enum Next<'a> {
    /// Continue with this state of the same scope.
    Goto(&'a str),
    /// The scope ends.
    End,
}

/// What a state kind produced.
pub(crate) struct KindOutcome<'a> {
    pub(crate) result: Value,
    /// A jump chosen by the kind itself (Choice); `None` uses the state's next/end.
    pub(crate) jump: Option<&'a str>,
    /// The kind ends the scope (Succeed).
    pub(crate) ends_scope: bool,
}

impl<'a> KindOutcome<'a> {
    pub(crate) fn value(result: Value) -> Self {
        KindOutcome {
            result,
            jump: None,
            ends_scope: false,
        }
    }
}

/// The data a state sees from its enclosing scope.
#[derive(Clone, Copy)]
pub(crate) struct Frame<'a> {
    pub(crate) scope_input: &'a Value,
    pub(crate) scope_local: Option<&'a Value>,
}

/// Runs a scope to its end; returns its output and the id of its last event.
pub(crate) fn run_scope<'a>(
    ctx: &'a ExecCtx,
    scope: &'a Scope,
    input: Value,
    cause: u64,
    cancel: &'a CancellationToken,
) -> BoxFuture<'a, Result<(Value, u64), Interrupt>> {
    Box::pin(async move {
        let mut local = scope.accumulate_local.then(|| Value::Object(Map::new()));
        let mut current: &str = &scope.start_at;
        let mut raw = input.clone();
        let mut cause = cause;
        let last = loop {
            let state = scope
                .state(current)
                .ok_or_else(|| Interrupt::runtime(format!("state '{current}' does not exist")))?;
            let frame = Frame {
                scope_input: &input,
                scope_local: local.as_ref(),
            };
            let (output, next, last_event) = run_state(ctx, state, raw, frame, cause, cancel).await?;
            cause = last_event;
            if let (Some(Value::Object(l)), Value::Object(o)) = (local.as_mut(), &output) {
                for (k, v) in o {
                    l.insert(k.clone(), v.clone());
                }
            }
            match next {
                Next::Goto(n) => {
                    raw = output;
                    current = n;
                }
                Next::End => break output,
            }
        };
        let output = match &scope.output {
            None => last,
            Some(t) => {
                let mut vars = Vars::new(&input);
                vars.result = Some(&last);
                vars.scope_input = Some(&input);
                vars.scope_local = local.as_ref();
                vars.consts = Some(&ctx.flow.constants);
                eval_template(ctx, t, vars, None)?
            }
        };
        Ok((output, cause))
    })
}

/// Evaluates a template, binding `$context` and `$global` only when the template reads them.
pub(crate) fn eval_template(
    ctx: &ExecCtx,
    t: &Template,
    vars: Vars<'_>,
    info: Option<&StateInfo<'_>>,
) -> Result<Value, Interrupt> {
    let context = if t.references(Var::Context) {
        let fallback = StateInfo {
            name: "",
            input: vars.input,
            retry_count: 0,
            task_token: None,
            event_id: 0,
            error: None,
        };
        Some(ctx.context_value(info.unwrap_or(&fallback)))
    } else {
        None
    };
    let global = t
        .references(Var::Global)
        .then(|| ctx.global.lock().expect("global lock").clone());
    let vars = Vars {
        context: context.as_ref(),
        global: global.as_ref(),
        ..vars
    };
    t.eval(&vars).map_err(|e| Interrupt::runtime(e.to_string()))
}

/// Runs one state: entered, started, the kind's work (with retries), succeeded or failed,
/// exited. Returns the output, where to go next and the last event id.
async fn run_state<'a>(
    ctx: &'a ExecCtx,
    state: &'a State,
    raw: Value,
    frame: Frame<'_>,
    cause: u64,
    cancel: &'a CancellationToken,
) -> Result<(Value, Next<'a>, u64), Interrupt> {
    if cancel.is_cancelled() {
        return Err(Interrupt::Cancelled);
    }
    let name = state.name.as_str();
    let mut cause = ctx
        .emit(EventKind::StateEntered, name, cause, json!({ "input": raw }))
        .await?;
    let mut retries = vec![0u32; state.retry.len()];
    let mut attempt: u32 = 0;
    loop {
        let info = StateInfo {
            name,
            input: &raw,
            retry_count: attempt,
            task_token: None,
            event_id: cause,
            error: None,
        };
        let outcome = attempt_state(ctx, state, &raw, frame, &info, &mut cause, cancel).await;
        match outcome {
            Ok((output, kind_next)) => {
                let id = ctx
                    .emit(EventKind::StateSucceeded, name, cause, json!({ "output": output }))
                    .await?;
                let id = ctx
                    .emit(EventKind::StateExited, name, id, json!({ "output": output }))
                    .await?;
                let next = match kind_next {
                    Some(next) => next,
                    None => match (&state.next, state.end) {
                        (Some(n), false) => Next::Goto(n.as_str()),
                        _ => Next::End,
                    },
                };
                return Ok((output, next, id));
            }
            Err(Interrupt::Cancelled) => return Err(Interrupt::Cancelled),
            Err(Interrupt::Error(err)) => {
                cause = ctx
                    .emit(
                        EventKind::StateFailed,
                        name,
                        cause,
                        json!({ "error": err.name, "cause": err.cause }),
                    )
                    .await?;
                let err_value = err.to_value();
                if let Some(i) = first_match(&state.retry, &err, &err_value) {
                    let policy = &state.retry[i];
                    if retries[i] < policy.max_attempts {
                        let delay = backoff(policy, retries[i]);
                        retries[i] += 1;
                        attempt += 1;
                        cause = ctx
                            .emit(
                                EventKind::RetryScheduled,
                                name,
                                cause,
                                json!({ "error": err.name, "attempt": attempt, "delay_seconds": delay }),
                            )
                            .await?;
                        let real = clock::scaled(delay, ctx.engine.config.time_scale);
                        clock::sleep_recorded(ctx, name, real, cancel).await?;
                        continue;
                    }
                }
                let catcher = state.catch.iter().find(|c| {
                    error_names::matches(&c.errors, &err.name)
                        && condition_holds(c.condition.as_ref(), &err_value)
                });
                let Some(catcher) = catcher else {
                    ctx.emit(EventKind::StateExited, name, cause, json!({ "error": err.name, "cause": err.cause }))
                        .await?;
                    return Err(Interrupt::Error(err));
                };
                let output = match &catcher.output {
                    None => err_value,
                    Some(t) => {
                        let mut vars = Vars::new(&raw);
                        vars.result = Some(&err_value);
                        vars.scope_input = Some(frame.scope_input);
                        vars.scope_local = frame.scope_local;
                        vars.consts = Some(&ctx.flow.constants);
                        let info = StateInfo {
                            error: Some(&err),
                            retry_count: attempt,
                            ..info_base(name, &raw, cause)
                        };
                        eval_template(ctx, t, vars, Some(&info))?
                    }
                };
                let id = ctx
                    .emit(
                        EventKind::ErrorCaught,
                        name,
                        cause,
                        json!({ "error": err.name, "cause": err.cause, "next": catcher.next }),
                    )
                    .await?;
                let id = ctx
                    .emit(EventKind::StateExited, name, id, json!({ "output": output }))
                    .await?;
                return Ok((output, Next::Goto(catcher.next.as_str()), id));
            }
        }
    }
}

fn info_base<'a>(name: &'a str, input: &'a Value, event_id: u64) -> StateInfo<'a> {
    StateInfo {
        name,
        input,
        retry_count: 0,
        task_token: None,
        event_id,
        error: None,
    }
}

/// One attempt: input transform, the kind's work, global and output transforms.
async fn attempt_state<'a>(
    ctx: &'a ExecCtx,
    state: &'a State,
    raw: &Value,
    frame: Frame<'_>,
    info: &StateInfo<'_>,
    cause: &mut u64,
    cancel: &'a CancellationToken,
) -> Result<(Value, Option<Next<'a>>), Interrupt> {
    let effective = match &state.input {
        None => raw.clone(),
        Some(t) => {
            let mut vars = Vars::new(raw);
            vars.scope_input = Some(frame.scope_input);
            vars.scope_local = frame.scope_local;
            vars.consts = Some(&ctx.flow.constants);
            eval_template(ctx, t, vars, Some(info))?
        }
    };
    ctx.check_size(&format!("the input of state '{}'", state.name), &effective)?;
    *cause = ctx
        .emit(EventKind::StateStarted, &state.name, *cause, json!({ "input": effective }))
        .await?;
    let info = StateInfo {
        input: &effective,
        event_id: *cause,
        ..*info
    };
    let outcome = run_kind(ctx, state, &effective, frame, &info, cause, cancel).await?;
    let kind_next = match (outcome.jump, outcome.ends_scope) {
        (Some(n), _) => Some(Next::Goto(n)),
        (None, true) => Some(Next::End),
        (None, false) => None,
    };
    if let Some(g) = &state.global {
        let mut vars = Vars::new(&effective);
        vars.result = Some(&outcome.result);
        vars.consts = Some(&ctx.flow.constants);
        vars.scope_input = Some(frame.scope_input);
        vars.scope_local = frame.scope_local;
        let update = eval_template(ctx, g, vars, Some(&info))?;
        merge_global(ctx, update, &state.name)?;
    }
    let output = match &state.output {
        None => outcome.result,
        Some(t) => {
            let mut vars = Vars::new(&effective);
            vars.result = Some(&outcome.result);
            vars.consts = Some(&ctx.flow.constants);
            vars.scope_input = Some(frame.scope_input);
            vars.scope_local = frame.scope_local;
            eval_template(ctx, t, vars, Some(&info))?
        }
    };
    ctx.check_size(&format!("the output of state '{}'", state.name), &output)?;
    Ok((output, kind_next))
}

fn merge_global(ctx: &ExecCtx, update: Value, state: &str) -> Result<(), Interrupt> {
    let Value::Object(update) = update else {
        return Err(Interrupt::runtime(format!(
            "the global update of state '{state}' must be an object"
        )));
    };
    let mut g = ctx.global.lock().expect("global lock");
    if let Value::Object(g) = &mut *g {
        for (k, v) in update {
            g.insert(k, v);
        }
    }
    Ok(())
}

/// Dispatches to the state kind.
async fn run_kind<'a>(
    ctx: &'a ExecCtx,
    state: &'a State,
    input: &Value,
    frame: Frame<'_>,
    info: &StateInfo<'_>,
    cause: &mut u64,
    cancel: &'a CancellationToken,
) -> Result<KindOutcome<'a>, Interrupt> {
    match &state.kind {
        StateKind::Pass => Ok(KindOutcome::value(input.clone())),
        StateKind::Succeed => Ok(KindOutcome {
            result: input.clone(),
            jump: None,
            ends_scope: true,
        }),
        StateKind::Fail(f) => Err(Interrupt::Error(ExecError::new(
            f.error.clone().unwrap_or_else(|| error_names::FAIL.to_string()),
            f.cause.clone().unwrap_or_default(),
        ))),
        StateKind::Choice(c) => states::choice::run(ctx, state, c, input, frame, info, cause, cancel).await,
        StateKind::Wait(w) => states::wait::run(ctx, state, w, input, info, cause, cancel).await,
        StateKind::Task(t) => states::task::run(ctx, state, t, input, frame, info, cause, cancel).await,
        StateKind::Parallel(p) => states::fanout::parallel(ctx, state, p, input, cause, cancel).await,
        StateKind::Map(m) => states::fanout::map(ctx, state, m, input, frame, info, cause, cancel).await,
    }
}

/// The first retry policy that matches the error (by name, then its optional condition).
fn first_match(policies: &[RetryPolicy], err: &ExecError, err_value: &Value) -> Option<usize> {
    policies.iter().position(|p| {
        error_names::matches(&p.errors, &err.name) && condition_holds(p.condition.as_ref(), err_value)
    })
}

fn condition_holds(cond: Option<&crate::model::expr::Expr>, err_value: &Value) -> bool {
    match cond {
        None => true,
        Some(c) => {
            let mut vars = Vars::new(err_value);
            vars.result = Some(err_value);
            c.eval_bool(&vars).unwrap_or(false)
        }
    }
}

/// Delay before retry number `n` (0-based) of a policy, in flow seconds.
pub(crate) fn backoff(p: &RetryPolicy, n: u32) -> f64 {
    let d = p.interval_seconds * p.backoff_rate.powi(n as i32);
    match p.max_interval_seconds {
        Some(m) => d.min(m),
        None => d,
    }
}
