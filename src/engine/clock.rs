//! Scaled sleeps. A Wait or a back-off is first written to the store as a timer record
//! (timers are data), then slept; the record is removed when it fires or is cancelled.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::exec::{ExecCtx, Interrupt};
use crate::store::TimerRecord;

/// Applies the engine's time scale to a flow-time duration in seconds.
pub(crate) fn scaled(seconds: f64, scale: f64) -> Duration {
    let s = (seconds * scale).max(0.0);
    if s.is_finite() {
        Duration::from_secs_f64(s.min(1e9))
    } else {
        Duration::from_secs(1_000_000_000)
    }
}

/// Sleeps `real` (already scaled) for `state`, recording a timer for it in the store.
pub(crate) async fn sleep_recorded(
    ctx: &ExecCtx,
    state: &str,
    real: Duration,
    cancel: &CancellationToken,
) -> Result<(), Interrupt> {
    if real.is_zero() {
        return if cancel.is_cancelled() {
            Err(Interrupt::Cancelled)
        } else {
            Ok(())
        };
    }
    ctx.flush().await?;
    let id = uuid::Uuid::new_v4().to_string();
    let due = Utc::now() + chrono::Duration::from_std(real).unwrap_or(chrono::Duration::MAX);
    let store = &ctx.engine.store;
    store
        .put_timer(TimerRecord {
            id: id.clone(),
            execution_id: ctx.id.to_string(),
            state: state.to_string(),
            due,
        })
        .await
        .map_err(Interrupt::store)?;
    let outcome = tokio::select! {
        _ = tokio::time::sleep(real) => Ok(()),
        _ = cancel.cancelled() => Err(Interrupt::Cancelled),
    };
    ctx.tick();
    store.delete_timer(&id).await.map_err(Interrupt::store)?;
    outcome
}
