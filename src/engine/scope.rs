//! The scope loop and the state envelope: data transforms, events, retry and catch.
//!
//! State data travels as `Arc<Value>`: a state that passes its input through, and every event
//! that records a payload, shares it instead of copying it.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::clock;
use super::exec::{ExecCtx, Interrupt, StateInfo};
use super::states;
use crate::model::error_names;
use crate::model::expr::{Expr, Template, Var, Vars};
use crate::model::flow::{RetryPolicy, Scope, State, StateKind, TaskMode};
use crate::model::{DetailMore, EventDetail, EventKind, ExecError};

/// Where the scope goes after a state.
pub(crate) enum Next<'a> {
    /// Continue with this state of the same scope.
    Goto(&'a str),
    /// The scope ends.
    End,
}

/// What a state kind produced.
pub(crate) struct KindOutcome<'a> {
    pub(crate) result: Arc<Value>,
    /// A jump chosen by the kind itself (Choice); `None` uses the state's next/end.
    pub(crate) jump: Option<&'a str>,
    /// The kind ends the scope (Succeed).
    pub(crate) ends_scope: bool,
}

impl<'a> KindOutcome<'a> {
    pub(crate) fn value(result: Arc<Value>) -> Self {
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
    pub(crate) scope_input: &'a Arc<Value>,
    pub(crate) scope_local: Option<&'a Value>,
}

impl<'a> Frame<'a> {
    /// Variables over `input` with the scope's variables and the flow constants bound.
    pub(crate) fn vars(&self, ctx: &'a ExecCtx, input: &'a Value) -> Vars<'a> {
        let mut vars = Vars::new(input);
        vars.scope_input = Some(self.scope_input.as_ref());
        vars.scope_local = self.scope_local;
        vars.consts = Some(&ctx.flow.constants);
        vars
    }

    /// A state's input or output template applied to `input` (the state's raw or effective
    /// input) and, for an output, the kind's `result`: the value it produces, shared without a
    /// copy when the template passes a value the engine holds through unchanged (see
    /// [`Template::passes_through`]).
    fn transform(
        &self,
        ctx: &'a ExecCtx,
        t: &Template,
        vars: Vars<'_>,
        input: &Arc<Value>,
        result: Option<&Arc<Value>>,
        info: &StateInfo<'_>,
    ) -> Result<Arc<Value>, Interrupt> {
        let shared = match t.passes_through(&vars) {
            Some(Var::Input) => Some(input.clone()),
            Some(Var::ScopeInput) => Some(self.scope_input.clone()),
            Some(Var::Result) => result.cloned(),
            _ => None,
        };
        match shared {
            Some(v) => Ok(v),
            None => Ok(Arc::new(eval_template(ctx, t, vars, Some(info))?)),
        }
    }
}

/// Runs a scope to its end; returns its output and the id of its last event.
pub(crate) fn run_scope<'a>(
    ctx: &'a ExecCtx,
    scope: &'a Scope,
    input: Arc<Value>,
    cause: u64,
    cancel: &'a CancellationToken,
) -> BoxFuture<'a, Result<(Arc<Value>, u64), Interrupt>> {
    run_scope_from(ctx, scope, input, None, cause, cancel)
}

/// Runs a scope from `start` (a state and its raw input) instead of its start state; used
/// to retry a failed execution from the state that failed.
pub(crate) fn run_scope_from<'a>(
    ctx: &'a ExecCtx,
    scope: &'a Scope,
    input: Arc<Value>,
    start: Option<(&'a str, Arc<Value>)>,
    cause: u64,
    cancel: &'a CancellationToken,
) -> BoxFuture<'a, Result<(Arc<Value>, u64), Interrupt>> {
    Box::pin(async move {
        let is_root = std::ptr::eq(scope, &ctx.flow.root);
        // A resumed execution carries on with the top-level local accumulated before.
        let resumed_local = match (&ctx.resume, is_root && start.is_some()) {
            (Some(plan), true) => plan.local.clone(),
            _ => None,
        };
        let mut local = scope
            .accumulate_local
            .then(|| resumed_local.unwrap_or_else(|| Value::Object(Map::new())));
        let (mut current, mut raw): (&str, Arc<Value>) = match start {
            Some((state, raw)) => (state, raw),
            None => (&scope.start_at, input.clone()),
        };
        let mut cause = cause;
        let last = loop {
            let state = scope
                .state(current)
                .ok_or_else(|| Interrupt::runtime(format!("state '{current}' does not exist")))?;
            let frame = Frame {
                scope_input: &input,
                scope_local: local.as_ref(),
            };
            let carry = match (&ctx.resume, is_root) {
                (Some(plan), true) => plan.take_carry(&state.name),
                _ => None,
            };
            let outcome = run_state(ctx, state, raw.clone(), frame, cause, carry, cancel).await;
            if is_root {
                if let Err(Interrupt::Error(_)) = &outcome {
                    *ctx.failed_at.lock().expect("failed_at lock") =
                        Some(crate::model::RetryPoint {
                            state: state.name.clone(),
                            input: raw.clone(),
                        });
                }
            }
            let (output, next, last_event) = outcome?;
            cause = last_event;
            if let (Some(Value::Object(l)), Value::Object(o)) = (local.as_mut(), &*output) {
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
                match t.passes_through(&vars) {
                    // The FDL scope output: the local object itself, no longer needed here.
                    Some(Var::ScopeLocal) if local.is_some() => {
                        Arc::new(local.take().unwrap_or_default())
                    }
                    Some(Var::Result) => last,
                    _ => Arc::new(eval_template(ctx, t, vars, None)?),
                }
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
    let reads = |v| t.references(v);
    with_bound(ctx, &reads, vars, info, |vars| t.eval(vars))
        .map_err(|e| Interrupt::runtime(e.to_string()))
}

/// Evaluates an expression, binding `$context` and `$global` only when it reads them.
pub(crate) fn eval_expr(
    ctx: &ExecCtx,
    e: &Expr,
    vars: Vars<'_>,
    info: Option<&StateInfo<'_>>,
) -> Result<Value, Interrupt> {
    let reads = |v| e.references(v);
    with_bound(ctx, &reads, vars, info, |vars| e.eval(vars))
        .map_err(|err| Interrupt::runtime(format!("'{}': {err}", e.text())))
}

/// Runs `eval` with `$context` and `$global` bound when `reads` says they are read: both are
/// built on demand, so transforms that do not use them cost nothing extra.
fn with_bound<T>(
    ctx: &ExecCtx,
    reads: &dyn Fn(Var) -> bool,
    vars: Vars<'_>,
    info: Option<&StateInfo<'_>>,
    eval: impl FnOnce(&Vars<'_>) -> T,
) -> T {
    let (context, global) = context_and_global(
        ctx,
        reads(Var::Context),
        reads(Var::Global),
        vars.input,
        info,
    );
    let vars = Vars {
        context: context.as_ref(),
        global: global.as_ref(),
        ..vars
    };
    eval(&vars)
}

fn context_and_global(
    ctx: &ExecCtx,
    wants_context: bool,
    wants_global: bool,
    input: &Value,
    info: Option<&StateInfo<'_>>,
) -> (Option<Value>, Option<Value>) {
    let context = wants_context.then(|| {
        let fallback = StateInfo {
            name: "",
            input,
            retry_count: 0,
            task_token: None,
            event_id: 0,
            error: None,
        };
        ctx.context_value(info.unwrap_or(&fallback))
    });
    let global = wants_global.then(|| ctx.global.lock().expect("global lock").clone());
    (context, global)
}

/// Runs one state: entered, started, the kind's work (with retries), succeeded or failed,
/// exited. Returns the output, where to go next and the last event id.
async fn run_state<'a>(
    ctx: &'a ExecCtx,
    state: &'a State,
    raw: Arc<Value>,
    frame: Frame<'_>,
    cause: u64,
    carry: Option<super::resume::RetryCarry>,
    cancel: &'a CancellationToken,
) -> Result<(Arc<Value>, Next<'a>, u64), Interrupt> {
    if cancel.is_cancelled() {
        return Err(Interrupt::Cancelled);
    }
    let name = state.name.as_str();
    ctx.tick();
    let mut cause = ctx
        .emit(
            EventKind::StateEntered,
            &state.label,
            cause,
            EventDetail::input(raw.clone()),
        )
        .await?;
    let mut retries = vec![0u32; state.retry.len()];
    let mut attempt: u32 = 0;
    if let Some(carry) = carry {
        // A resumed state keeps its retry count and sits out the rest of its back-off.
        attempt = carry.attempt;
        if let Some(error) = &carry.error {
            let err = ExecError::new(error.clone(), "");
            if let Some(i) = first_match(&state.retry, &err, &err.to_value(), &ctx.flow.constants) {
                retries[i] = carry.attempt.min(state.retry[i].max_attempts);
            }
        }
        if let Some(until) = carry.backoff_until {
            let real = (until - chrono::Utc::now()).to_std().unwrap_or_default();
            clock::sleep_recorded(ctx, name, real, cancel).await?;
        }
    }
    loop {
        let info = StateInfo {
            name,
            input: &raw,
            retry_count: attempt,
            task_token: None,
            event_id: cause,
            error: None,
        };
        let mut effective: Option<Arc<Value>> = None;
        let outcome = attempt_state(
            ctx,
            state,
            &raw,
            frame,
            &info,
            &mut effective,
            &mut cause,
            cancel,
        )
        .await;
        match outcome {
            Ok((output, kind_next, global)) => {
                let detail = match global {
                    None => EventDetail::output(output.clone()),
                    Some(update) => EventDetail {
                        output: Some(output.clone()),
                        ..EventDetail::more(DetailMore {
                            global: Some(update),
                            ..Default::default()
                        })
                    },
                };
                let id = ctx
                    .emit(EventKind::StateSucceeded, &state.label, cause, detail)
                    .await?;
                let id = ctx
                    .emit(
                        EventKind::StateExited,
                        &state.label,
                        id,
                        EventDetail::output(output.clone()),
                    )
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
                        &state.label,
                        cause,
                        EventDetail::error(&err.name, &err.cause),
                    )
                    .await?;
                let err_value = err.to_value();
                if let Some(i) = first_match(&state.retry, &err, &err_value, &ctx.flow.constants) {
                    let policy = &state.retry[i];
                    if retries[i] < policy.max_attempts {
                        let delay = backoff(policy, retries[i]);
                        retries[i] += 1;
                        attempt += 1;
                        cause = ctx
                            .emit(
                                EventKind::RetryScheduled,
                                &state.label,
                                cause,
                                EventDetail::more(DetailMore {
                                    error: Some(err.name.clone()),
                                    attempt: Some(attempt),
                                    delay_seconds: Some(delay),
                                    ..Default::default()
                                }),
                            )
                            .await?;
                        let real = clock::scaled(delay, ctx.engine.config.time_scale);
                        clock::sleep_recorded(ctx, name, real, cancel).await?;
                        continue;
                    }
                }
                let catcher = state.catch.iter().find(|c| {
                    error_names::matches(&c.errors, &err.name)
                        && condition_holds(c.condition.as_ref(), &err_value, &ctx.flow.constants)
                });
                let Some(catcher) = catcher else {
                    ctx.emit(
                        EventKind::StateExited,
                        &state.label,
                        cause,
                        EventDetail::error(&err.name, &err.cause),
                    )
                    .await?;
                    return Err(Interrupt::Error(err));
                };
                let output = match &catcher.output {
                    None => Arc::new(err_value),
                    Some(t) => {
                        // `$input` is the effective input when the failure came after the
                        // input transform, else the raw input.
                        let input = effective.clone().unwrap_or_else(|| raw.clone());
                        let mut vars = frame.vars(ctx, &input);
                        vars.result = Some(&err_value);
                        let info = StateInfo {
                            input: &input,
                            error: Some(&err),
                            retry_count: attempt,
                            event_id: cause,
                            ..info
                        };
                        Arc::new(eval_template(ctx, t, vars, Some(&info))?)
                    }
                };
                let id = ctx
                    .emit(
                        EventKind::ErrorCaught,
                        &state.label,
                        cause,
                        EventDetail::more(DetailMore {
                            error: Some(err.name.clone()),
                            cause: Some(err.cause.clone()),
                            next: Some(catcher.next.clone()),
                            ..Default::default()
                        }),
                    )
                    .await?;
                let id = ctx
                    .emit(
                        EventKind::StateExited,
                        &state.label,
                        id,
                        EventDetail::output(output.clone()),
                    )
                    .await?;
                return Ok((output, Next::Goto(catcher.next.as_str()), id));
            }
        }
    }
}

/// One attempt: input transform, the kind's work, global and output transforms.
#[allow(clippy::too_many_arguments)]
async fn attempt_state<'a>(
    ctx: &'a ExecCtx,
    state: &'a State,
    raw: &Arc<Value>,
    frame: Frame<'_>,
    info: &StateInfo<'_>,
    effective_out: &mut Option<Arc<Value>>,
    cause: &mut u64,
    cancel: &'a CancellationToken,
) -> Result<(Arc<Value>, Option<Next<'a>>, Option<Value>), Interrupt> {
    // A callback task's token exists for the whole attempt, so the state's input, output
    // and global templates can read it as well as the task's parameters.
    let token = match &state.kind {
        StateKind::Task(t) if t.mode == TaskMode::WaitForCallback => Some(
            ctx.resume
                .as_ref()
                .and_then(|p| p.take_token(&state.label))
                .unwrap_or_else(super::callbacks::new_token),
        ),
        _ => None,
    };
    let info = StateInfo {
        task_token: token.as_deref(),
        ..*info
    };
    let effective = match &state.input {
        None => raw.clone(),
        Some(t) => {
            let v = frame.transform(ctx, t, frame.vars(ctx, raw), raw, None, &info)?;
            ctx.check_size(format_args!("the input of state '{}'", state.name), &v)?;
            v
        }
    };
    *effective_out = Some(effective.clone());
    *cause = ctx
        .emit(
            EventKind::StateStarted,
            &state.label,
            *cause,
            EventDetail::input(effective.clone()),
        )
        .await?;
    let info = StateInfo {
        input: &effective,
        event_id: *cause,
        ..info
    };
    let outcome = run_kind(ctx, state, &effective, frame, &info, cause, cancel).await?;
    let kind_next = match (outcome.jump, outcome.ends_scope) {
        (Some(n), _) => Some(Next::Goto(n)),
        (None, true) => Some(Next::End),
        (None, false) => None,
    };
    // The output sees `$global` as it was before this state's own global update.
    let output = match &state.output {
        None => outcome.result.clone(),
        Some(t) => {
            let mut vars = frame.vars(ctx, &effective);
            vars.result = Some(&outcome.result);
            let v = frame.transform(ctx, t, vars, &effective, Some(&outcome.result), &info)?;
            ctx.check_size(format_args!("the output of state '{}'", state.name), &v)?;
            v
        }
    };
    let global = match &state.global {
        None => None,
        Some(g) => {
            let mut vars = frame.vars(ctx, &effective);
            vars.result = Some(&outcome.result);
            let update = eval_template(ctx, g, vars, Some(&info))?;
            merge_global(ctx, &update, &state.name)?;
            Some(update)
        }
    };
    Ok((output, kind_next, global))
}

/// Merges a state's update into `$global`; the update is also recorded with the state's
/// success event.
fn merge_global(ctx: &ExecCtx, update: &Value, state: &str) -> Result<(), Interrupt> {
    let Value::Object(update) = update else {
        return Err(Interrupt::runtime(format!(
            "the global update of state '{state}' must be an object"
        )));
    };
    let mut g = ctx.global.lock().expect("global lock");
    if let Value::Object(g) = &mut *g {
        for (k, v) in update {
            g.insert(k.clone(), v.clone());
        }
    }
    Ok(())
}

/// Dispatches to the state kind.
async fn run_kind<'a>(
    ctx: &'a ExecCtx,
    state: &'a State,
    input: &Arc<Value>,
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
            f.error
                .clone()
                .unwrap_or_else(|| error_names::FAIL.to_string()),
            f.cause.clone().unwrap_or_default(),
        ))),
        // The kinds below are boxed so that this future (and every scope's) stays small for
        // the common Pass/Choice path: moving large futures showed up as memmove in profiles.
        StateKind::Choice(c) => {
            Box::pin(states::choice::run(
                ctx, c, input, frame, info, cause, cancel,
            ))
            .await
        }
        StateKind::Wait(w) => {
            Box::pin(states::wait::run(
                ctx, state, w, input, frame, info, cause, cancel,
            ))
            .await
        }
        StateKind::Task(t) => {
            Box::pin(states::task::run(
                ctx, state, t, input, frame, info, cause, cancel,
            ))
            .await
        }
        StateKind::Parallel(p) => {
            Box::pin(states::fanout::parallel(
                ctx, state, p, input, cause, cancel,
            ))
            .await
        }
        StateKind::Map(m) => {
            Box::pin(states::fanout::map(
                ctx, state, m, input, frame, info, cause, cancel,
            ))
            .await
        }
    }
}

/// The first retry policy that matches the error (by name, then its optional condition).
fn first_match(
    policies: &[RetryPolicy],
    err: &ExecError,
    err_value: &Value,
    consts: &Value,
) -> Option<usize> {
    policies.iter().position(|p| {
        error_names::matches(&p.errors, &err.name)
            && condition_holds(p.condition.as_ref(), err_value, consts)
    })
}

/// Evaluates a policy condition over the error object (bound to `$input` and `$result`).
fn condition_holds(cond: Option<&Expr>, err_value: &Value, consts: &Value) -> bool {
    match cond {
        None => true,
        Some(c) => {
            let mut vars = Vars::new(err_value);
            vars.result = Some(err_value);
            vars.consts = Some(consts);
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
