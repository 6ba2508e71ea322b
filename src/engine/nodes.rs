//! Durability and several nodes: resuming the executions a durable store hands this node
//! (every running one after a restart; those of a dead node on a shared store), keeping this
//! node's leases alive, and acting on the notices other nodes send (an execution finished, a
//! stop, a report for a task waiting here, the event a report became).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use serde_json::{json, Value};
use tokio::sync::{broadcast, oneshot};

use super::callbacks::{CallbackOutcome, Report};
use super::exec::Abort;
use super::resume::ResumePlan;
use super::runner::{self, Completion};
use super::Inner;
use crate::model::time::now;
use crate::model::{
    error_names, Event, EventDetail, EventKind, ExecError, ExecutionRecord, ExecutionStatus, Flow,
};
use crate::store::{ExecutionUpdate, Notice, StoreError, STOP_REQUEST};

/// Most executions claimed in one round.
const CLAIM_BATCH: usize = 128;

/// Recompiles a definition with its dialect: `(dialect, flow name, definition text)`. Used
/// when a resumed execution's flow was replaced since it started, so it carries on with the
/// definition it started with.
pub struct Recompile(pub Box<RecompileFn>);

/// The function inside [`Recompile`].
pub type RecompileFn = dyn Fn(&str, &str, &str) -> Option<Flow> + Send + Sync;

impl std::fmt::Debug for Recompile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recompile")
    }
}

/// This node's side of the coordination.
pub(crate) struct Nodes {
    /// Whether the store is shared with other nodes (it delivers notices).
    pub(crate) shared: bool,
    notices: Mutex<Option<broadcast::Receiver<Notice>>>,
    /// Long polls here on executions running on another node, by execution id.
    remote_done: DashMap<String, Arc<Completion>, ahash::RandomState>,
    /// Reports made here for tasks waiting elsewhere (or not resumed yet), by token: the
    /// event id the task recorded them as.
    recorded: DashMap<String, oneshot::Sender<u64>, ahash::RandomState>,
}

impl std::fmt::Debug for Nodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nodes")
            .field("shared", &self.shared)
            .finish()
    }
}

impl Nodes {
    /// Subscribes to the store's notices (a shared store has them).
    pub(crate) fn new(store: &dyn crate::store::Store) -> Self {
        let rx = store.subscribe();
        Nodes {
            shared: rx.is_some(),
            notices: Mutex::new(rx),
            remote_done: DashMap::default(),
            recorded: DashMap::default(),
        }
    }

    /// Called once an execution's end is committed: other nodes' long polls wake.
    pub(crate) async fn finished(&self, inner: &Inner, id: &str) {
        if self.shared {
            let notice = Notice::Finished {
                execution_id: id.to_string(),
            };
            if let Err(e) = inner.store.publish(notice).await {
                tracing::warn!(execution = %id, error = %e, "could not announce the end of an execution");
            }
        }
    }

    /// The completion a long poll here waits on for an execution running on another node.
    pub(crate) fn remote_completion(&self, id: &str) -> Arc<Completion> {
        self.remote_done
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(Completion::default()))
            .clone()
    }

    /// Forgets a remote completion nobody waits on any more.
    pub(crate) fn forget_remote(&self, id: &str) {
        self.remote_done
            .remove_if(id, |_, c| Arc::strong_count(c) <= 1);
    }

    /// Listens for the event id a report kept here becomes, recorded by a task waiting
    /// elsewhere or not resumed yet; call before announcing the report, so the id cannot
    /// arrive before anyone listens. Then [`Nodes::await_recorded`], or
    /// [`Nodes::forget_recorded`] when the announcement fails.
    pub(crate) fn expect_recorded(&self, token: &str) -> oneshot::Receiver<u64> {
        let (tx, rx) = oneshot::channel();
        self.recorded.insert(token.to_string(), tx);
        rx
    }

    /// Waits (at most `max`) for the event id of a report registered with
    /// [`Nodes::expect_recorded`].
    pub(crate) async fn await_recorded(
        &self,
        token: &str,
        rx: oneshot::Receiver<u64>,
        max: Duration,
    ) -> Option<u64> {
        let out = tokio::time::timeout(max, rx)
            .await
            .ok()
            .and_then(Result::ok);
        self.forget_recorded(token);
        out
    }

    /// Stops listening for the event id of a report made here.
    pub(crate) fn forget_recorded(&self, token: &str) {
        self.recorded.remove(token);
    }

    /// A task recorded a report that was kept with its token as event `event_id`: the caller
    /// that made the report (here or on another node) learns the id.
    pub(crate) async fn recorded(&self, inner: &Inner, token: &str, event_id: u64) {
        if let Some((_, tx)) = self.recorded.remove(token) {
            let _ = tx.send(event_id);
        } else if self.shared {
            let notice = Notice::Recorded {
                token: token.to_string(),
                event_id,
            };
            if let Err(e) = inner.store.publish(notice).await {
                tracing::warn!(error = %e, "could not announce a recorded report");
            }
        }
    }
}

/// A report as kept with its token (`TaskTokenRecord::outcome`).
pub(crate) fn outcome_to_json(o: &CallbackOutcome) -> Value {
    match o {
        CallbackOutcome::Succeeded(v) => json!({ "output": v }),
        CallbackOutcome::Failed(e) => json!({ "error": e.name, "cause": e.cause }),
    }
}

/// A report read back from its token.
pub(crate) fn outcome_from_json(v: &Value) -> CallbackOutcome {
    match v.get("output") {
        Some(out) => CallbackOutcome::Succeeded(out.clone()),
        None => CallbackOutcome::Failed(ExecError::new(
            v.get("error")
                .and_then(Value::as_str)
                .unwrap_or(error_names::RUNTIME),
            v.get("cause").and_then(Value::as_str).unwrap_or_default(),
        )),
    }
}

/// Resumes every execution the store hands this node now; returns how many.
pub(crate) async fn claim_round(inner: &Arc<Inner>, lease: Duration) -> usize {
    let mut total = 0;
    loop {
        let batch = match inner.store.claim_orphans(lease, CLAIM_BATCH).await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "could not claim executions to resume");
                return total;
            }
        };
        let n = batch.len();
        if n == 0 {
            return total;
        }
        let stale = stale_timers(inner).await;
        for record in batch {
            let id = record.id.clone();
            if let Err(e) = resume(inner, record, stale.get(&*id)).await {
                tracing::error!(execution = %id, error = %e, "could not resume an execution");
            } else {
                total += 1;
            }
        }
        if n < CLAIM_BATCH {
            return total;
        }
    }
}

/// Pending timer records by execution: a resumed execution records its waits anew.
async fn stale_timers(inner: &Inner) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    if let Ok(timers) = inner.store.timers().await {
        for t in timers {
            out.entry(t.execution_id).or_default().push(t.id);
        }
    }
    out
}

/// Every committed event of an execution.
pub(crate) async fn full_history(inner: &Inner, id: &str) -> Result<Vec<Event>, StoreError> {
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = inner.store.history(id, after, 1000).await?;
        let Some(last) = page.items.last() else {
            break;
        };
        after = last.id;
        let more = page.next.is_some();
        events.extend(page.items);
        if !more {
            break;
        }
    }
    Ok(events)
}

/// The flow an execution started with: the current flow when its definition is unchanged,
/// else its own definition compiled again.
pub(crate) async fn flow_of(
    inner: &Inner,
    record: &ExecutionRecord,
) -> Result<Option<Arc<Flow>>, StoreError> {
    let Some(current) = inner.store.get_flow_by_id(&record.flow_id).await? else {
        return Ok(None);
    };
    if current.definition == record.definition {
        return Ok(Some(current.flow.clone()));
    }
    let recompiled = inner
        .recompile
        .as_ref()
        .and_then(|f| (f.0)(&current.dialect, &current.key.name, &record.definition));
    Ok(Some(
        recompiled
            .map(Arc::new)
            .unwrap_or_else(|| current.flow.clone()),
    ))
}

/// Carries one execution on from its committed history.
async fn resume(
    inner: &Arc<Inner>,
    record: ExecutionRecord,
    stale: Option<&Vec<String>>,
) -> Result<(), StoreError> {
    // A run of it still going here lost its lease before this claim: it must not write.
    let old = inner
        .live
        .get(&*record.id)
        .map(|l| (l.ctx.clone(), l.done.clone()));
    if let Some((ctx, done)) = old {
        ctx.abort(Abort::Fenced);
        done.wait().await;
    }
    let Some(flow) = flow_of(inner, &record).await? else {
        return end_without_flow(inner, &record).await;
    };
    let events = full_history(inner, &record.id).await?;
    let record = ExecutionRecord {
        event_count: events.last().map_or(record.event_count, |e| e.id),
        ..record
    };
    let plan = ResumePlan::from_history(&flow, &events, inner.config.time_scale);
    for timer in stale.into_iter().flatten() {
        inner.store.delete_timer(timer).await?;
    }
    let stop = inner.store.get_record(STOP_REQUEST, &record.id).await?;
    tracing::info!(
        execution = %record.id,
        state = plan.point.as_ref().map(|p| p.state.as_str()).unwrap_or(""),
        "resuming an execution"
    );
    let launch = runner::prepare_resumed(inner, &record, flow, plan);
    let ctx = launch.ctx();
    let done = launch.spawn(inner);
    if let Some(req) = stop {
        ctx.abort(Abort::Stop(stop_error(&req)));
        let inner = inner.clone();
        let id = record.id.clone();
        tokio::spawn(async move {
            done.wait().await;
            let _ = inner.store.delete_record(STOP_REQUEST, &id).await;
        });
    }
    Ok(())
}

/// The error of a stored stop request.
pub(crate) fn stop_error(req: &Value) -> ExecError {
    ExecError::new(
        req.get("error")
            .and_then(Value::as_str)
            .unwrap_or(error_names::STOPPED),
        req.get("cause").and_then(Value::as_str).unwrap_or_default(),
    )
}

/// A running execution whose flow was deleted while nobody ran it ends as stopped, as it
/// would have when the flow was deleted.
pub(crate) async fn end_without_flow(
    inner: &Inner,
    record: &ExecutionRecord,
) -> Result<(), StoreError> {
    let e = ExecError::new(error_names::STOPPED, "the flow was deleted");
    let t = now();
    let event = Event {
        id: record.event_count + 1,
        cause_id: record.event_count,
        time: t,
        kind: EventKind::ExecutionStopped,
        state: Event::no_state(),
        detail: EventDetail::error(&e.name, &e.cause),
    };
    let update = ExecutionUpdate {
        status: Some(ExecutionStatus::Stopped),
        error: Some(e.name),
        cause: Some(e.cause),
        stopped: Some(t),
        ..Default::default()
    };
    inner
        .store
        .commit(&record.id, vec![event], Some(update))
        .await?;
    inner.nodes.finished(inner, &record.id).await;
    Ok(())
}

/// Keeps this node's leases alive and takes over executions whose node died, forever.
pub(crate) async fn lease_loop(inner: Arc<Inner>, lease: Duration) {
    let period = (lease / 3).max(Duration::from_millis(200));
    loop {
        tokio::time::sleep(period).await;
        let held: Vec<String> = inner.live.iter().map(|l| l.key().to_string()).collect();
        if !held.is_empty() {
            match inner.store.renew_leases(&held, lease).await {
                Ok(lost) => {
                    for id in lost {
                        if let Some(l) = inner.live.get(id.as_str()) {
                            l.ctx.abort(Abort::Fenced);
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not renew this node's leases"),
            }
        }
        claim_round(&inner, lease).await;
    }
}

/// Acts on the other nodes' notices, forever.
pub(crate) async fn notice_loop(inner: Arc<Inner>) {
    let rx = inner.nodes.notices.lock().expect("notices lock").take();
    let Some(mut rx) = rx else {
        return;
    };
    loop {
        let notice = match rx.recv().await {
            Ok(n) => n,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "missed notices from other nodes");
                // Wake every remote long poll: each re-reads its execution.
                let all: Vec<String> = inner
                    .nodes
                    .remote_done
                    .iter()
                    .map(|e| e.key().clone())
                    .collect();
                for id in all {
                    if let Some((_, c)) = inner.nodes.remote_done.remove(&id) {
                        c.finish();
                    }
                }
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        match notice {
            Notice::Finished { execution_id } => {
                if let Some((_, c)) = inner.nodes.remote_done.remove(&execution_id) {
                    c.finish();
                }
            }
            Notice::Stop { execution_id } => {
                let live = inner
                    .live
                    .get(execution_id.as_str())
                    .map(|l| (l.ctx.clone(), l.done.clone()));
                if let Some((ctx, done)) = live {
                    let inner = inner.clone();
                    tokio::spawn(async move {
                        let req = inner
                            .store
                            .get_record(STOP_REQUEST, &execution_id)
                            .await
                            .ok()
                            .flatten()
                            .unwrap_or_default();
                        ctx.abort(Abort::Stop(stop_error(&req)));
                        done.wait().await;
                        let _ = inner.store.delete_record(STOP_REQUEST, &execution_id).await;
                    });
                }
            }
            Notice::Reported { token } => {
                if let Some(waiter) = inner.callbacks.take(&token) {
                    let inner = inner.clone();
                    tokio::spawn(async move { deliver_kept_report(&inner, &token, waiter).await });
                }
            }
            Notice::Recorded { token, event_id } => {
                if let Some((_, tx)) = inner.nodes.recorded.remove(&token) {
                    let _ = tx.send(event_id);
                }
            }
        }
    }
}

/// Hands a report kept with its token to the task waiting here, then tells the node that
/// took the report which event it became.
async fn deliver_kept_report(inner: &Inner, token: &str, waiter: oneshot::Sender<Report>) {
    let outcome = match inner.store.get_token(token).await {
        Ok(Some(rec)) => rec.outcome,
        Ok(None) | Err(_) => None,
    };
    let Some(outcome) = outcome else {
        tracing::warn!("a report notice named a token without a kept report");
        return;
    };
    let (tx, rx) = oneshot::channel();
    if waiter
        .send(Report {
            outcome: outcome_from_json(&outcome),
            reply: tx,
        })
        .is_err()
    {
        return;
    }
    if let Ok(id) = rx.await {
        inner.nodes.recorded(inner, token, id).await;
    }
}
