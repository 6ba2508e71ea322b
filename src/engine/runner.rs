//! The execution envelope: spawn, execution timeout, the final status and event, and the
//! completion notice that wakes long polls and sync starts.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Notify;

use std::sync::atomic::{AtomicBool, Ordering};

use super::exec::{Abort, ExecCtx, Interrupt};
use super::scope::{eval_template, run_scope_from};
use super::Inner;
use crate::model::expr::Vars;
use crate::model::time::{now, Timestamp};
use crate::model::{
    error_names, EventDetail, EventKind, ExecError, ExecutionMode, ExecutionRecord,
    ExecutionStatus, Flow, RetryPoint,
};
use crate::store::ExecutionUpdate;

/// An execution running in this process.
#[derive(Debug)]
pub(crate) struct LiveExecution {
    pub(crate) ctx: Arc<ExecCtx>,
    pub(crate) done: Arc<Completion>,
}

/// Signals that an execution has ended and its final state is committed. Wakes long polls
/// and sync starts; cheaper than a watch channel on the hot path.
#[derive(Debug, Default)]
pub(crate) struct Completion {
    done: AtomicBool,
    notify: Notify,
    /// Whether a sync start waits for [`Completion::take_ended`] (others skip the copy).
    keep_end: bool,
    /// What the end wrote to the record, when `keep_end` (not set when another node took
    /// the execution over).
    ended: Mutex<Option<Ended>>,
}

/// What the end of an execution wrote to its record: a sync start answers from the record it
/// inserted plus this, instead of reading the record back, which a store with a small Express
/// retention may already have dropped when many executions end at once.
#[derive(Debug, Clone)]
pub(crate) struct Ended {
    /// The final status, output or error and end time.
    pub(crate) update: ExecutionUpdate,
    /// Events in the history, the final one included.
    pub(crate) event_count: u64,
    /// Time of the final event.
    pub(crate) updated: Timestamp,
}

impl Ended {
    /// `record` (as inserted) as the store holds it after the end.
    pub(crate) fn apply_to(self, record: &mut ExecutionRecord) {
        self.update.apply_to(record);
        record.event_count = self.event_count;
        record.updated = self.updated;
    }
}

impl Completion {
    /// A completion that keeps what the end wrote, for [`Completion::take_ended`].
    fn keeping_end() -> Self {
        Completion {
            keep_end: true,
            ..Completion::default()
        }
    }

    /// Waits until the execution has ended.
    pub(crate) async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.done.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    pub(crate) fn finish(&self) {
        self.done.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// Takes what the end wrote, once the execution has ended.
    pub(crate) fn take_ended(&self) -> Option<Ended> {
        self.ended.lock().expect("ended lock").take()
    }
}

/// An execution ready to run: its context is built from the record before the record is
/// handed to the store, so starting costs no extra copy of the record.
pub(crate) struct Launch {
    ctx: Arc<ExecCtx>,
    start: Option<RetryPoint>,
    /// What is left of the execution timeout, for a resumed execution.
    remaining: Option<Duration>,
}

impl Launch {
    /// The execution's context.
    pub(crate) fn ctx(&self) -> Arc<ExecCtx> {
        self.ctx.clone()
    }

    /// Starts running (call once the record is committed); the completion is signalled
    /// when the execution has ended and its final state is committed.
    pub(crate) fn spawn(self, inner: &Arc<Inner>) -> Arc<Completion> {
        self.spawn_with(inner, Arc::new(Completion::default()))
    }

    /// [`Launch::spawn`] signalling `done` (a parked execution's, which its waiters hold).
    pub(crate) fn spawn_with(self, inner: &Arc<Inner>, done: Arc<Completion>) -> Arc<Completion> {
        tokio::spawn(self.register(inner, done.clone()));
        done
    }

    /// Runs the execution on the caller's task (call once the record is committed) and
    /// returns when it has ended and its final state is committed. A sync start waits for
    /// the end anyway, so this saves the task, the wake-up across workers and the frees on
    /// another thread that [`Launch::spawn`] costs. Nothing is lost if the caller goes away
    /// (a client that disconnects drops its request handler): the rest of the run is then
    /// spawned, and the execution ends as it would have.
    pub(crate) async fn run_here(self, inner: &Arc<Inner>) -> Option<Ended> {
        let done = Arc::new(Completion::keeping_end());
        let run = self.register(inner, done.clone());
        InlineRun(Some(Box::pin(run))).await;
        // A run that parked in a long Wait ends before the execution does.
        done.wait().await;
        done.take_ended()
    }

    /// Registers the execution as live in this process and builds its run.
    fn register(
        self,
        inner: &Arc<Inner>,
        done: Arc<Completion>,
    ) -> impl Future<Output = ()> + Send + 'static {
        inner.live.insert(
            self.ctx.id.clone(),
            LiveExecution {
                ctx: self.ctx.clone(),
                done: done.clone(),
            },
        );
        let full = timeout_of(&inner.config, &self.ctx.flow);
        let timeout = self.remaining.map_or(full, |r| r.min(full));
        run(self.ctx, done, timeout, full, self.start)
    }
}

/// An execution run polled by the task that awaits it; dropped unfinished, it spawns what is
/// left of the run so the execution still ends.
struct InlineRun(Option<Pin<Box<dyn Future<Output = ()> + Send + 'static>>>);

impl Future for InlineRun {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(run) = self.0.as_mut() else {
            return Poll::Ready(());
        };
        match run.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.0 = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for InlineRun {
    fn drop(&mut self) {
        if let Some(rest) = self.0.take() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(rest);
            }
        }
    }
}

/// Prepares an execution of `record` (from its start, or from a retry point).
pub(crate) fn prepare(
    inner: &Arc<Inner>,
    record: &ExecutionRecord,
    flow: Arc<Flow>,
    start: Option<RetryPoint>,
) -> Launch {
    let ctx = Arc::new(ExecCtx::new(
        inner.clone(),
        record.id.clone(),
        record.name.clone(),
        flow,
        record.flow.clone(),
        record.input.clone(),
        record.started,
        record.event_count,
        record.callback_token.clone(),
        record.test_case.clone(),
    ));
    Launch {
        ctx,
        start,
        remaining: None,
    }
}

/// Prepares an execution that carries on after a restart or a takeover: it runs again from
/// the plan's top-level state, within what is left of its execution timeout.
pub(crate) fn prepare_resumed(
    inner: &Arc<Inner>,
    record: &ExecutionRecord,
    flow: Arc<Flow>,
    plan: super::resume::ResumePlan,
) -> Launch {
    let mut ctx = ExecCtx::new(
        inner.clone(),
        record.id.clone(),
        record.name.clone(),
        flow.clone(),
        record.flow.clone(),
        record.input.clone(),
        record.started,
        record.event_count,
        record.callback_token.clone(),
        record.test_case.clone(),
    );
    let start = plan.point.clone();
    *ctx.global.lock().expect("global lock") = plan.global.clone();
    ctx.resume = Some(Box::new(plan));
    let elapsed = (now() - record.started).to_std().unwrap_or_default();
    let remaining = timeout_of(&inner.config, &flow).saturating_sub(elapsed);
    Launch {
        ctx: Arc::new(ctx),
        start,
        remaining: Some(remaining),
    }
}

/// Starts running an execution whose record is already committed.
pub(crate) fn launch(
    inner: &Arc<Inner>,
    record: &ExecutionRecord,
    flow: Arc<Flow>,
    start: Option<RetryPoint>,
) -> Arc<Completion> {
    prepare(inner, record, flow, start).spawn(inner)
}

fn timeout_of(config: &super::EngineConfig, flow: &Flow) -> Duration {
    let cap = match flow.mode {
        ExecutionMode::Express => config.express_timeout_seconds,
        ExecutionMode::Standard => config.standard_timeout_seconds,
    };
    let secs = flow.timeout_seconds.map_or(cap, |t| t.min(cap));
    Duration::from_secs_f64(secs.max(0.0))
}

async fn run(
    ctx: Arc<ExecCtx>,
    done: Arc<Completion>,
    timeout: Duration,
    full_timeout: Duration,
    start: Option<RetryPoint>,
) {
    let cancel = ctx.root_cancel.clone();
    let timeout_at = now() + chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
    let body = async {
        let input = match &ctx.flow.input {
            None => ctx.input.clone(),
            Some(t) => {
                let mut vars = Vars::new(&ctx.input);
                vars.consts = Some(&ctx.flow.constants);
                Arc::new(eval_template(&ctx, t, vars, None)?)
            }
        };
        let from = start.as_ref().map(|p| (p.state.as_str(), p.input.clone()));
        if ctx.resume.as_ref().is_some_and(|plan| !plan.silent) {
            ctx.tick();
            let detail = EventDetail::more(crate::model::DetailMore {
                next: start.as_ref().map(|p| p.state.clone()),
                ..Default::default()
            });
            let cause = ctx.last_event_id();
            ctx.emit(
                EventKind::ExecutionResumed,
                &crate::model::Event::no_state(),
                cause,
                detail,
            )
            .await?;
        }
        let cause = ctx.last_event_id();
        run_scope_from(&ctx, &ctx.flow.root, input, from, cause, &cancel).await
    };
    tokio::pin!(body);
    let outcome = tokio::select! {
        r = &mut body => r,
        _ = tokio::time::sleep(timeout) => {
            ctx.abort(Abort::TimedOut);
            body.await
        }
    };
    let outcome = match outcome {
        Ok((output, last)) if Arc::ptr_eq(&output, &ctx.input) => Ok((output, last)),
        Ok((output, last)) => match ctx.check_size("the execution output", &output) {
            Ok(()) => Ok((output, last)),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let last = ctx.last_event_id();
    ctx.tick();
    let stopped = now();
    let (kind, detail, update) = match outcome {
        Ok((output, _)) => (
            EventKind::ExecutionSucceeded,
            EventDetail::output(output.clone()),
            ExecutionUpdate {
                status: Some(ExecutionStatus::Succeeded),
                output: Some(output),
                stopped: Some(stopped),
                ..Default::default()
            },
        ),
        Err(Interrupt::Error(e)) => {
            let mut f = failed(
                EventKind::ExecutionFailed,
                ExecutionStatus::Failed,
                e,
                stopped,
            );
            f.2.retry_point = ctx.failed_at.lock().expect("failed_at lock").take();
            f
        }
        Err(Interrupt::Cancelled) => {
            let reason = ctx.abort.lock().expect("abort lock").clone();
            match reason {
                Some(Abort::Stop(e)) => failed(
                    EventKind::ExecutionStopped,
                    ExecutionStatus::Stopped,
                    e,
                    stopped,
                ),
                Some(Abort::Fail(e)) => failed(
                    EventKind::ExecutionFailed,
                    ExecutionStatus::Failed,
                    e,
                    stopped,
                ),
                Some(Abort::TimedOut) => failed(
                    EventKind::ExecutionTimedOut,
                    ExecutionStatus::TimedOut,
                    ExecError::new(
                        error_names::EXECUTION_TIMEOUT,
                        format!(
                            "the execution did not finish within {} seconds",
                            full_timeout.as_secs_f64()
                        ),
                    ),
                    stopped,
                ),
                Some(Abort::Park) => {
                    // Parked in a long Wait: nothing to write; the sleeper wakes it up.
                    ctx.engine.live.remove(&ctx.id);
                    super::park::sleep(&ctx.engine, ctx.id.to_string(), timeout_at);
                    return;
                }
                Some(Abort::Release) => {
                    // Handed over at shutdown: commit what was recorded (a call that finished
                    // meanwhile) while the lease is still this node's, then let go of it.
                    if let Err(e) = ctx.flush().await {
                        tracing::warn!(execution = %ctx.id, error = ?e, "could not commit the last events before handing the execution over");
                    }
                    ctx.engine.live.remove(&ctx.id);
                    done.finish();
                    return;
                }
                Some(Abort::Fenced) => {
                    // Another node runs it now: write nothing, just let go of it here.
                    tracing::warn!(execution = %ctx.id, "another node took this execution over; it stops running here");
                    ctx.engine.live.remove(&ctx.id);
                    done.finish();
                    return;
                }
                None => failed(
                    EventKind::ExecutionFailed,
                    ExecutionStatus::Failed,
                    ExecError::new(error_names::RUNTIME, "the execution was cancelled"),
                    stopped,
                ),
            }
        }
    };
    let report = ctx.callback_token.as_ref().map(|token| {
        let outcome = match (&update.output, &update.error) {
            (Some(output), _) => Ok((**output).clone()),
            (None, error) => Err((
                error
                    .clone()
                    .unwrap_or_else(|| error_names::RUNTIME.to_string()),
                update.cause.clone().unwrap_or_default(),
            )),
        };
        (token.clone(), outcome)
    });
    let mut events = ctx.take_pending();
    let end = ctx.event(kind, &crate::model::Event::no_state(), last, detail);
    let ended = done.keep_end.then(|| Ended {
        update: update.clone(),
        event_count: ctx.committed_with(events.len() + 1),
        updated: end.time,
    });
    events.push(end);
    match ctx.engine.store.commit(&ctx.id, events, Some(update)).await {
        Ok(()) => {
            if ended.is_some() {
                *done.ended.lock().expect("ended lock") = ended;
            }
            ctx.engine.nodes.finished(&ctx.engine, &ctx.id).await
        }
        Err(crate::store::StoreError::Fenced(_)) => {
            tracing::warn!(execution = %ctx.id, "another node took this execution over before it ended here")
        }
        Err(e) => {
            tracing::error!(execution = %ctx.id, error = %e, "could not commit the end of an execution")
        }
    }
    ctx.engine.live.remove(&ctx.id);
    done.finish();
    if let Some((token, outcome)) = report {
        report_to_parent(&ctx, &token, outcome).await;
    }
}

/// Reports a finished execution's result to the callback task that started it.
async fn report_to_parent(
    ctx: &ExecCtx,
    token: &str,
    outcome: Result<serde_json::Value, (String, String)>,
) {
    let engine = super::Engine {
        inner: ctx.engine.clone(),
    };
    let result = match outcome {
        Ok(output) => engine.report_success(token, output).await,
        Err((error, cause)) => engine.report_failure(token, error, cause).await,
    };
    if let Err(e) = result {
        tracing::warn!(execution = %ctx.id, error = %e, "could not report the result to the parent task");
    }
}

fn failed(
    kind: EventKind,
    status: ExecutionStatus,
    e: ExecError,
    stopped: crate::model::time::Timestamp,
) -> (EventKind, EventDetail, ExecutionUpdate) {
    (
        kind,
        EventDetail::error(&e.name, &e.cause),
        ExecutionUpdate {
            status: Some(status),
            error: Some(e.name),
            cause: Some(e.cause),
            stopped: Some(stopped),
            ..Default::default()
        },
    )
}
