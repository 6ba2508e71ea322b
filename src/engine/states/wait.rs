//! Wait: by a duration or until a timestamp, scaled by the engine's time scale.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::engine::clock;
use crate::engine::exec::{ExecCtx, Interrupt, StateInfo};
use crate::engine::park;
use crate::engine::scope::{eval_expr, Frame, KindOutcome};
use crate::model::flow::{Amount, State, WaitSpec};
use crate::model::{DetailMore, EventDetail, EventKind};

#[allow(clippy::too_many_arguments)]
pub(crate) async fn run<'a>(
    ctx: &'a ExecCtx,
    state: &'a State,
    spec: &'a WaitSpec,
    input: &Arc<Value>,
    frame: Frame<'_>,
    info: &StateInfo<'_>,
    cause: &mut u64,
    cancel: &'a CancellationToken,
) -> Result<KindOutcome<'a>, Interrupt> {
    let timing = match ctx.resume.as_ref().and_then(|p| p.take_wait(&state.label)) {
        Some(until) => resumed(ctx, until),
        None => fresh(ctx, spec, input, frame, info)?,
    };
    let first_attempt = info.retry_count == 0;
    wait_until(ctx, state, input, timing, first_attempt, cause, cancel).await
}

/// A Wait's length in flow seconds, its deadline and its real (scaled) length.
type Timing = (f64, DateTime<Utc>, std::time::Duration);

/// A resumed Wait keeps its deadline; one that passed while the gateway was down fires at once.
fn resumed(ctx: &ExecCtx, until: DateTime<Utc>) -> Timing {
    let real = (until - Utc::now()).to_std().unwrap_or_default();
    let scale = ctx.engine.config.time_scale;
    let seconds = if scale > 0.0 {
        real.as_secs_f64() / scale
    } else {
        0.0
    };
    (seconds, until, real)
}

/// A Wait starting now: by its duration (fixed or an expression) or until a timestamp.
fn fresh(
    ctx: &ExecCtx,
    spec: &WaitSpec,
    input: &Value,
    frame: Frame<'_>,
    info: &StateInfo<'_>,
) -> Result<Timing, Interrupt> {
    let until_text = match (&spec.until, &spec.until_expr) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(e)) => match eval_expr(ctx, e, frame.vars(ctx, input), Some(info))? {
            Value::String(s) => Some(s),
            other => {
                return Err(Interrupt::runtime(format!(
                    "wait timestamp '{}' is not a string: {other}",
                    e.text()
                )))
            }
        },
        (None, None) => None,
    };
    let seconds = match (until_text, &spec.seconds) {
        (None, None) => return Err(Interrupt::runtime("the wait has no duration")),
        (None, Some(a)) => amount(ctx, a, frame, input, info)?,
        (Some(text), _) => {
            let until: DateTime<Utc> = DateTime::parse_from_rfc3339(&text)
                .map_err(|_| Interrupt::runtime(format!("'{text}' is not an RFC 3339 timestamp")))?
                .with_timezone(&Utc);
            ((until - Utc::now()).num_milliseconds() as f64 / 1000.0).max(0.0)
        }
    };
    if seconds < 0.0 || !seconds.is_finite() {
        return Err(Interrupt::runtime(format!(
            "a wait of {seconds} seconds is not valid"
        )));
    }
    let real = clock::scaled(seconds, ctx.engine.config.time_scale);
    let until = Utc::now() + chrono::Duration::from_std(real).unwrap_or(chrono::Duration::MAX);
    Ok((seconds, until, real))
}

/// Records the Wait (its flow-time seconds and deadline), sleeps `real` and records its end.
/// A long Wait at the top level, in the state's first attempt, parks the execution instead of
/// sleeping here (see `engine::park`): the run unwinds and the execution wakes up at `until`.
async fn wait_until<'a>(
    ctx: &'a ExecCtx,
    state: &'a State,
    input: &Arc<Value>,
    (seconds, until, real): Timing,
    first_attempt: bool,
    cause: &mut u64,
    cancel: &'a CancellationToken,
) -> Result<KindOutcome<'a>, Interrupt> {
    *cause = ctx
        .emit(
            EventKind::WaitStarted,
            &state.label,
            *cause,
            EventDetail::more(DetailMore {
                seconds: Some(seconds),
                until: Some(until),
                ..Default::default()
            }),
        )
        .await?;
    if first_attempt
        && !cancel.is_cancelled()
        && park::may_park(ctx, state, real)
        && park::park(ctx, &state.name, until).await?
    {
        return Err(Interrupt::Cancelled);
    }
    clock::sleep_recorded(ctx, &state.name, real, cancel).await?;
    *cause = ctx
        .emit(
            EventKind::WaitEnded,
            &state.label,
            *cause,
            EventDetail::default(),
        )
        .await?;
    Ok(KindOutcome::value(input.clone()))
}

/// Evaluates an [`Amount`] to a number of seconds.
pub(crate) fn amount(
    ctx: &ExecCtx,
    a: &Amount,
    frame: Frame<'_>,
    input: &Value,
    info: &StateInfo<'_>,
) -> Result<f64, Interrupt> {
    match a {
        Amount::Fixed(v) => Ok(*v),
        Amount::Expr(e) => match eval_expr(ctx, e, frame.vars(ctx, input), Some(info))? {
            Value::Number(n) => n
                .as_f64()
                .ok_or_else(|| Interrupt::runtime(format!("'{}' is not a number", e.text()))),
            Value::String(s) => s.trim().parse::<f64>().map_err(|_| {
                Interrupt::runtime(format!("'{}' gave '{s}', not a number", e.text()))
            }),
            other => Err(Interrupt::runtime(format!(
                "'{}' gave {other}, not a number",
                e.text()
            ))),
        },
    }
}
