//! Parked executions: an execution waiting in a long top-level Wait gives its memory back.
//!
//! A running execution costs its tokio task, the futures of its scope and state, and its
//! context: several KiB while it does nothing but sleep. When a Wait at the top level of a
//! flow (not inside a Parallel or Map) is longer than `engine.park_waits_after_seconds` and
//! starts on the state's first attempt, the execution *parks*: the `WaitStarted` event and a
//! timer record are committed, the run ends without writing anything else, and only a small
//! [`Parked`] entry and a place in the engine's one [`Alarms`] queue are kept. At the deadline
//! (or when the execution is stopped, or its execution timeout passes) the execution is read back
//! from its history with [`ResumePlan::for_parked`]: the Wait state runs again, meets the
//! events it had recorded (they are not recorded twice), sleeps what is left and carries on.
//! Nothing of this shows: the history, the answers and the timing are those of a run that
//! never stopped.
//!
//! Executions on a store shared by several nodes never park (their leases follow the running
//! executions of a node).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

use super::exec::{Abort, ExecCtx};
use super::resume::ResumePlan;
use super::runner::{self, Completion};
use super::Inner;
use crate::model::time::{now, Timestamp};
use crate::model::ExecError;
use crate::store::TimerRecord;

/// An execution asleep in a long Wait, with no task of its own running.
#[derive(Debug)]
pub(crate) struct Parked {
    /// Signalled when the execution ends (long polls and sync starts wait on it); the run
    /// that wakes the execution up signals the same one.
    pub(crate) done: Arc<Completion>,
    /// The Wait's deadline.
    until: Timestamp,
    /// Whether it is still asleep, how it must end when it wakes up, and when its alarm rings.
    state: Mutex<Sleep>,
}

/// A parked execution's state.
#[derive(Debug)]
enum Sleep {
    /// The run is letting go; no alarm is set yet.
    Parking,
    /// Asleep; the alarm rings at this time (the Wait's deadline, or the execution timeout
    /// when that comes first: `times_out`).
    Asleep { alarm: Timestamp, times_out: bool },
    /// Stopped while parked: it wakes up (at once) and ends with this error.
    Stop(Box<ExecError>),
    /// Being woken up, or running again (its live entry exists).
    Woken,
}

/// The alarm clock of every parked execution: one queue by alarm time and one task that
/// sleeps until the earliest. Cheaper than a task per parked execution.
#[derive(Debug, Default)]
pub(crate) struct Alarms {
    queue: Mutex<BTreeSet<(Timestamp, String)>>,
    /// Rung when an alarm earlier than every other is set.
    earlier: Arc<Notify>,
    /// Whether the alarm task runs.
    started: std::sync::atomic::AtomicBool,
}

/// The timer record of a parked Wait (one per execution: it parks in one Wait at a time).
fn timer_id(execution: &str) -> String {
    format!("{execution}:parked")
}

/// Whether a Wait of `real` (scaled) seconds in `state` may park the execution.
pub(crate) fn may_park(
    ctx: &ExecCtx,
    state: &crate::model::flow::State,
    real: std::time::Duration,
) -> bool {
    let threshold = ctx.engine.config.park_waits_after_seconds;
    threshold.is_finite()
        && !real.is_zero()
        && real.as_secs_f64() >= threshold.max(0.0)
        && !ctx.engine.nodes.shared
        && ctx
            .flow
            .root
            .state(&state.name)
            .is_some_and(|s| std::ptr::eq(s, state))
}

/// Parks the execution whose Wait in `state` has just been recorded (its `WaitStarted` is
/// pending), until `until`. Returns `false` when it cannot park (the execution is being
/// stopped or ended for another reason): the caller then waits as usual, or unwinds.
pub(crate) async fn park(
    ctx: &ExecCtx,
    state: &str,
    until: Timestamp,
) -> Result<bool, super::exec::Interrupt> {
    ctx.flush().await?;
    let Some(done) = ctx.engine.live.get(&ctx.id).map(|l| l.done.clone()) else {
        return Ok(false);
    };
    ctx.engine
        .store
        .put_timer(TimerRecord {
            id: timer_id(&ctx.id),
            execution_id: ctx.id.to_string(),
            state: state.to_string(),
            due: until,
        })
        .await
        .map_err(super::exec::Interrupt::store)?;
    // Registered before the run lets go, so a stop that finds the run parking finds this.
    ctx.engine.parked.insert(
        ctx.id.to_string(),
        Arc::new(Parked {
            done,
            until,
            state: Mutex::new(Sleep::Parking),
        }),
    );
    if ctx.abort(Abort::Park) {
        return Ok(true);
    }
    // Something else ended the execution first: it ends as that says.
    ctx.engine.parked.remove(&*ctx.id);
    let _ = ctx.engine.store.delete_timer(&timer_id(&ctx.id)).await;
    Ok(false)
}

/// Called by the run once it has let go of a parked execution: sets its alarm for the
/// Wait's deadline, or `timeout_at` when the execution timeout passes first. One stopped
/// meanwhile wakes up at once.
pub(crate) fn sleep(inner: &Arc<Inner>, id: String, timeout_at: Timestamp) {
    let Some(parked) = inner.parked.get(&id).map(|p| p.clone()) else {
        return;
    };
    let mut state = parked.state.lock().expect("park lock");
    match &*state {
        Sleep::Parking => {
            let times_out = timeout_at < parked.until;
            let alarm = parked.until.min(timeout_at);
            *state = Sleep::Asleep { alarm, times_out };
            drop(state);
            inner.alarms.set(inner, alarm, id);
        }
        Sleep::Stop(_) => {
            drop(state);
            spawn_wake(inner.clone(), id, parked);
        }
        Sleep::Asleep { .. } | Sleep::Woken => {}
    }
}

impl Alarms {
    /// Sets an alarm; starts the alarm task the first time.
    fn set(&self, inner: &Arc<Inner>, at: Timestamp, id: String) {
        let mut queue = self.queue.lock().expect("alarm lock");
        let earliest = queue.first().is_none_or(|(first, _)| at < *first);
        queue.insert((at, id));
        drop(queue);
        if !self.started.swap(true, std::sync::atomic::Ordering::AcqRel) {
            tokio::spawn(ring(Arc::downgrade(inner)));
        } else if earliest {
            self.earlier.notify_one();
        }
    }

    /// Takes an alarm out of the queue; `false` when it was not there (it rang already).
    fn cancel(&self, at: Timestamp, id: &str) -> bool {
        self.queue
            .lock()
            .expect("alarm lock")
            .remove(&(at, id.to_string()))
    }

    /// The alarms due at `now`, taken out of the queue, and the next alarm time.
    fn due(&self, now: Timestamp) -> (Vec<String>, Option<Timestamp>) {
        let mut queue = self.queue.lock().expect("alarm lock");
        let mut due = Vec::new();
        while queue.first().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, id)) = queue.pop_first() {
                due.push(id);
            }
        }
        (due, queue.first().map(|(at, _)| *at))
    }
}

/// The alarm task: wakes parked executions as their alarms come due, for as long as the
/// engine exists.
async fn ring(inner: Weak<Inner>) {
    loop {
        let Some(engine) = inner.upgrade() else {
            return;
        };
        let earlier = engine.alarms.earlier.clone();
        let notified = earlier.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let (due, next) = engine.alarms.due(now());
        for id in due {
            if let Some(parked) = engine.parked.get(&id).map(|p| p.clone()) {
                spawn_wake(engine.clone(), id, parked);
            }
        }
        let wait = next.map(|at| (at - now()).to_std().unwrap_or_default());
        drop(engine);
        match wait {
            Some(wait) => {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = &mut notified => {}
                }
            }
            None => notified.await,
        }
    }
}

/// Stops a parked execution: it wakes up and ends as stopped. Returns its completion, or
/// `None` when it is not parked (any more: then it is live).
pub(crate) fn stop(inner: &Arc<Inner>, id: &str, error: ExecError) -> Option<Arc<Completion>> {
    // The map's guard is dropped before the lock: waking up removes the entry under it.
    let parked = inner.parked.get(id).map(|p| p.clone())?;
    let mut state = parked.state.lock().expect("park lock");
    let wake_now = match &*state {
        Sleep::Woken => return None,
        Sleep::Stop(_) => false,
        Sleep::Parking => {
            // `sleep` finds the stop and wakes it up.
            *state = Sleep::Stop(Box::new(error));
            false
        }
        Sleep::Asleep { alarm, .. } => {
            // When the alarm rang already, the waking run finds the stop.
            let taken = inner.alarms.cancel(*alarm, id);
            *state = Sleep::Stop(Box::new(error));
            taken
        }
    };
    drop(state);
    let done = parked.done.clone();
    if wake_now {
        spawn_wake(inner.clone(), id.to_string(), parked);
    }
    Some(done)
}

/// The completion of an execution running or parked in this process. Looks at the live
/// executions again after the parked ones, so an execution that wakes up meanwhile is found.
pub(crate) fn completion(inner: &Inner, id: &str) -> Option<Arc<Completion>> {
    let live = |id: &str| inner.live.get(id).map(|l| l.done.clone());
    live(id)
        .or_else(|| inner.parked.get(id).map(|p| p.done.clone()))
        .or_else(|| live(id))
}

/// Wakes a parked execution up on a task of its own.
fn spawn_wake(inner: Arc<Inner>, id: String, parked: Arc<Parked>) {
    tokio::spawn(async move {
        if let Err(e) = relaunch(&inner, &id, &parked).await {
            tracing::error!(execution = %id, error = %e, "could not wake up a parked execution");
            inner.parked.remove(&id);
            parked.done.finish();
        }
    });
}

/// Runs a parked execution again from its history.
async fn relaunch(
    inner: &Arc<Inner>,
    id: &str,
    parked: &Parked,
) -> Result<(), crate::store::StoreError> {
    let _ = inner.store.delete_timer(&timer_id(id)).await;
    let Some(record) = inner.store.get_execution(id).await? else {
        inner.parked.remove(id);
        parked.done.finish();
        return Ok(());
    };
    if record.is_terminal() {
        inner.parked.remove(id);
        parked.done.finish();
        return Ok(());
    }
    let Some(flow) = super::nodes::flow_of(inner, &record).await? else {
        inner.parked.remove(id);
        super::nodes::end_without_flow(inner, &record).await?;
        parked.done.finish();
        return Ok(());
    };
    let events = super::nodes::full_history(inner, id).await?;
    let record = crate::model::ExecutionRecord {
        event_count: events.last().map_or(record.event_count, |e| e.id),
        ..record
    };
    let time_scale = inner.config.time_scale;
    let plan = match ResumePlan::for_parked(&flow, &events, time_scale) {
        Some(plan) => plan,
        None => {
            tracing::warn!(execution = %id, "a parked execution's history changed; it resumes visibly");
            ResumePlan::from_history(&flow, &events, time_scale)
        }
    };
    let launch = runner::prepare_resumed(inner, &record, flow, plan);
    let ctx = launch.ctx();
    {
        // Under the lock a stop either came before (the run starts stopped) or finds the
        // live entry (its `stop` sees `Woken` and stops the run).
        let mut state = parked.state.lock().expect("park lock");
        match std::mem::replace(&mut *state, Sleep::Woken) {
            Sleep::Stop(error) => {
                ctx.abort(Abort::Stop(*error));
            }
            Sleep::Asleep {
                times_out: true, ..
            } => {
                ctx.abort(Abort::TimedOut);
            }
            Sleep::Asleep { .. } | Sleep::Parking | Sleep::Woken => {}
        }
        launch.spawn_with(inner, parked.done.clone());
    }
    inner.parked.remove(id);
    Ok(())
}
