//! The engine's public operations. Dialects call these with canonical values and render the
//! results; every failure is an [`ApiError`].

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::callbacks::{CallbackOutcome, Report};
use super::exec::{serialized_len, Abort};
use super::Engine;
use super::{park, runner};
use crate::model::execution::FlowKey;
use crate::model::time::now;
use crate::model::{
    error_names, ApiError, Event, EventDetail, EventKind, ExecError, ExecutionRecord,
    ExecutionStatus,
};
use crate::store::{ExecutionFilter, FlowRecord, InsertOutcome, Page, StoreError, TokenState};

/// What to start.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// The flow to run (as looked up by the dialect, possibly a published version). Shared
    /// with the store's copy: flows are read-only once deployed and looked up on every start,
    /// so a start takes a reference instead of copying the record.
    pub flow: Arc<FlowRecord>,
    /// Execution name; `None` generates a UUID.
    pub name: Option<String>,
    /// Execution input.
    pub input: Value,
    /// Dialect extras stored with the execution.
    pub metadata: Value,
    /// A task token of another execution that this one reports its result to when it ends
    /// (Alibaba `CallbackFnFTaskToken`): success with its output, or failure with its error.
    pub callback_token: Option<String>,
}

/// Result of an asynchronous start.
#[derive(Debug, Clone)]
pub struct Started {
    /// The execution.
    pub record: ExecutionRecord,
    /// True when a running execution of that name already existed and was returned instead.
    pub existing: bool,
}

/// How long a report answered here waits to learn the event id a task on another node (or
/// one still resuming) records it as; the report is kept either way.
const REPORT_RECORD_WAIT: Duration = Duration::from_secs(10);

/// How long a stop answered here waits for the node running the execution to end it.
const REMOTE_STOP_WAIT: Duration = Duration::from_secs(30);

fn internal(e: StoreError) -> ApiError {
    ApiError::Internal {
        message: e.to_string(),
    }
}

impl Engine {
    // ----- flows -----

    /// Deploys a new flow; `FlowAlreadyExists` when the key is taken.
    pub async fn create_flow(&self, flow: FlowRecord) -> Result<FlowRecord, ApiError> {
        match self.inner.store.create_flow(flow.clone()).await {
            Ok(()) => Ok(flow),
            Err(StoreError::AlreadyExists(_)) => Err(ApiError::FlowAlreadyExists {
                flow: flow.key.name.clone(),
            }),
            Err(e) => Err(internal(e)),
        }
    }

    /// Replaces a flow's definition; running executions keep the definition they started with.
    pub async fn replace_flow(&self, flow: FlowRecord) -> Result<FlowRecord, ApiError> {
        match self.inner.store.replace_flow(flow.clone()).await {
            Ok(()) => Ok(flow),
            Err(StoreError::NotFound(_)) => Err(ApiError::FlowNotFound {
                flow: flow.key.name.clone(),
            }),
            Err(e) => Err(internal(e)),
        }
    }

    /// A flow by namespace and name; `FlowNotFound` when absent. The store's shared,
    /// read-only record (see [`crate::store::Store::get_flow`]): clone it to change it, then
    /// replace the flow.
    pub async fn flow_named(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<FlowRecord>, ApiError> {
        self.inner
            .store
            .get_flow_named(namespace, name)
            .await
            .map_err(internal)?
            .ok_or_else(|| ApiError::FlowNotFound {
                flow: name.to_string(),
            })
    }

    /// A flow by key, like [`Engine::flow_named`].
    pub async fn flow(&self, key: &FlowKey) -> Result<Arc<FlowRecord>, ApiError> {
        self.flow_named(&key.namespace, &key.name).await
    }

    /// Deletes a flow; its executions become invisible and running ones are stopped.
    pub async fn delete_flow(&self, key: &FlowKey) -> Result<(), ApiError> {
        let flow = self.flow(key).await?;
        let parked: Vec<String> = self.inner.parked.iter().map(|p| p.key().clone()).collect();
        let mut parked_here = Vec::new();
        for id in parked {
            if let Ok(Some(r)) = self.inner.store.get_execution(&id).await {
                if r.flow == flow.key {
                    parked_here.push(id);
                }
            }
        }
        self.inner.store.delete_flow(key).await.map_err(internal)?;
        for id in parked_here {
            let deleted = ExecError::new(error_names::STOPPED, "the flow was deleted");
            park::stop(&self.inner, &id, deleted);
        }
        let running: Vec<Arc<str>> = self
            .inner
            .live
            .iter()
            .filter(|l| l.ctx.flow_key == flow.key)
            .map(|l| l.key().clone())
            .collect();
        for id in running {
            if let Some(l) = self.inner.live.get(&id) {
                l.ctx.abort(Abort::Stop(ExecError::new(
                    error_names::STOPPED,
                    "the flow was deleted",
                )));
            }
        }
        Ok(())
    }

    /// Flows of a namespace in name order.
    pub async fn list_flows(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<FlowRecord>, ApiError> {
        self.inner
            .store
            .list_flows(namespace, after, limit)
            .await
            .map_err(internal)
    }

    // ----- executions -----

    /// Takes the test-case field out of the input and checks the case exists for the flow.
    fn test_case(&self, req: &mut StartRequest) -> Result<Option<String>, ApiError> {
        let Some(case) = crate::invoke::testcases::take_test_case(&mut req.input) else {
            return Ok(None);
        };
        if !self.inner.test_cases.has_case(&req.flow.key.name, &case) {
            return Err(ApiError::InvalidArgument {
                message: format!(
                    "the mock file has no test case '{case}' for flow '{}'",
                    req.flow.key.name
                ),
            });
        }
        Ok(Some(case))
    }

    fn check_payload(&self, v: &Value) -> Result<(), ApiError> {
        let limit = self.inner.config.max_payload_bytes;
        let size = serialized_len(v);
        if size > limit {
            return Err(ApiError::PayloadTooLarge {
                limit,
                actual: size,
            });
        }
        Ok(())
    }

    /// The record and first event of a new execution; takes the request's input and metadata.
    /// Ids and generated names are time-ordered UUIDs (v7): a durable store appends their
    /// index entries instead of touching a random page of its indexes for every start.
    fn new_record(&self, req: &mut StartRequest, name: Arc<str>) -> (ExecutionRecord, Event) {
        let started = now();
        let record = ExecutionRecord {
            id: new_execution_id(),
            name,
            flow: req.flow.key.clone(),
            flow_id: req.flow.id.clone(),
            mode: req.flow.flow.mode,
            status: ExecutionStatus::Running,
            input: Arc::new(std::mem::take(&mut req.input)),
            output: None,
            error: None,
            cause: None,
            started,
            stopped: None,
            updated: started,
            definition: req.flow.definition.clone(),
            event_count: 1,
            metadata: Arc::new(std::mem::take(&mut req.metadata)),
            retry_point: None,
            callback_token: req.callback_token.take(),
            test_case: None,
        };
        let first = Event {
            id: 1,
            cause_id: 0,
            time: started,
            kind: EventKind::ExecutionStarted,
            state: Event::no_state(),
            detail: EventDetail::input(record.input.clone()),
        };
        (record, first)
    }

    /// Starts an execution asynchronously. A running execution of the same name is returned
    /// as it is (`existing`); a finished one is `ExecutionAlreadyExists`.
    pub async fn start(&self, mut req: StartRequest) -> Result<Started, ApiError> {
        self.check_payload(&req.input)?;
        let case = self.test_case(&mut req)?;
        let name = req.name.take().map_or_else(new_execution_id, Arc::from);
        let (mut record, first) = self.new_record(&mut req, name);
        record.test_case = case;
        match self
            .inner
            .store
            .insert_execution(record.clone(), first)
            .await
            .map_err(internal)?
        {
            InsertOutcome::Inserted => {
                runner::launch(&self.inner, &record, req.flow.flow.clone(), None);
                Ok(Started {
                    record,
                    existing: false,
                })
            }
            InsertOutcome::Existing(r) if r.is_terminal() => {
                Err(ApiError::ExecutionAlreadyExists {
                    flow: r.flow.name.clone(),
                    execution: r.name.to_string(),
                })
            }
            InsertOutcome::Existing(r) => Ok(Started {
                record: *r,
                existing: true,
            }),
        }
    }

    /// Starts an execution and waits for its end. With `unique_suffix`, the name becomes
    /// `{name}:{uuid}` so the same name can be used for every call.
    pub async fn start_sync(
        &self,
        mut req: StartRequest,
        unique_suffix: bool,
    ) -> Result<ExecutionRecord, ApiError> {
        self.check_payload(&req.input)?;
        let case = self.test_case(&mut req)?;
        let name = match (req.name.take(), unique_suffix) {
            (Some(n), true) => suffixed_name(&n),
            (Some(n), false) => Arc::from(n),
            (None, _) => new_execution_id(),
        };
        let (mut record, first) = self.new_record(&mut req, name);
        record.test_case = case;
        let launch = runner::prepare(&self.inner, &record, req.flow.flow.clone(), None);
        // The answer is this record as the end leaves it (see `runner::Ended`).
        let mut answer = record.clone();
        match self
            .inner
            .store
            .insert_execution(record, first)
            .await
            .map_err(internal)?
        {
            InsertOutcome::Inserted => {}
            InsertOutcome::Existing(r) => {
                return Err(ApiError::ExecutionAlreadyExists {
                    flow: r.flow.name.clone(),
                    execution: r.name.to_string(),
                })
            }
        }
        match launch.run_here(&self.inner).await {
            Some(ended) => {
                ended.apply_to(&mut answer);
                Ok(answer)
            }
            // Another node ended it: its record is the answer.
            None => self.execution(&answer.id).await,
        }
    }

    /// An execution by id.
    pub async fn execution(&self, id: &str) -> Result<ExecutionRecord, ApiError> {
        self.inner
            .store
            .get_execution(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| ApiError::ExecutionNotFound {
                flow: String::new(),
                execution: id.to_string(),
            })
    }

    /// An execution of a flow by name.
    pub async fn find_execution(
        &self,
        flow: &FlowRecord,
        name: &str,
    ) -> Result<ExecutionRecord, ApiError> {
        self.inner
            .store
            .find_execution(&flow.id, name)
            .await
            .map_err(internal)?
            .ok_or_else(|| ApiError::ExecutionNotFound {
                flow: flow.key.name.clone(),
                execution: name.to_string(),
            })
    }

    /// Waits until the execution ends or `max` passes, then returns its current record.
    /// Wakes on completion; never polls.
    pub async fn wait_execution(
        &self,
        id: &str,
        max: Duration,
    ) -> Result<ExecutionRecord, ApiError> {
        let deadline = tokio::time::Instant::now() + max;
        let done = park::completion(&self.inner, id);
        if let Some(done) = done {
            let _ = tokio::time::timeout(max, done.wait()).await;
            if self.inner.nodes.shared {
                // The run here may have been handed to another node: wait on there.
                let rec = self.execution(id).await?;
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if rec.is_terminal() || left.is_zero() {
                    return Ok(rec);
                }
                self.wait_remote(id, left).await?;
            }
        } else if self.inner.nodes.shared {
            self.wait_remote(id, max).await?;
        }
        self.execution(id).await
    }

    /// Waits (at most `max`) for an execution running on another node to end.
    async fn wait_remote(&self, id: &str, max: Duration) -> Result<(), ApiError> {
        let done = self.inner.nodes.remote_completion(id);
        let rec = self.execution(id).await;
        if matches!(&rec, Ok(r) if !r.is_terminal()) {
            let _ = tokio::time::timeout(max, done.wait()).await;
        }
        drop(done);
        self.inner.nodes.forget_remote(id);
        rec.map(|_| ())
    }

    /// Stops a running execution with an optional error and cause; returns its final record.
    /// Stopping a finished execution is `InvalidState`.
    pub async fn stop(
        &self,
        id: &str,
        error: Option<String>,
        cause: Option<String>,
    ) -> Result<ExecutionRecord, ApiError> {
        let error = error.unwrap_or_else(|| error_names::STOPPED.to_string());
        let cause = cause.unwrap_or_default();
        let stop = ExecError::new(error.clone(), cause.clone());
        if let Some(done) = park::stop(&self.inner, id, stop.clone()) {
            done.wait().await;
            return self.execution(id).await;
        }
        let live = self
            .inner
            .live
            .get(id)
            .map(|l| (l.ctx.clone(), l.done.clone()));
        let Some((ctx, done)) = live else {
            let r = self.execution(id).await?;
            if r.is_terminal() {
                return Err(ApiError::InvalidState {
                    message: format!(
                        "execution '{}' has already finished with status {:?}",
                        r.name, r.status
                    ),
                });
            }
            if self.inner.store.is_durable() {
                // It runs on another node (or is about to resume here): the stop is kept
                // until that node ends it.
                self.inner
                    .store
                    .put_record(
                        crate::store::STOP_REQUEST,
                        id,
                        serde_json::json!({"error": error, "cause": cause}),
                        crate::store::PutMode::Upsert,
                    )
                    .await
                    .map_err(internal)?;
                self.inner
                    .store
                    .publish(crate::store::Notice::Stop {
                        execution_id: id.to_string(),
                    })
                    .await
                    .map_err(internal)?;
                if self.inner.nodes.shared {
                    self.wait_remote(id, REMOTE_STOP_WAIT).await?;
                }
            }
            return self.execution(id).await;
        };
        if !ctx.abort(Abort::Stop(stop.clone())) && ctx.is_parking() {
            // It was parking just now: it is registered as parked already.
            if let Some(parked) = park::stop(&self.inner, id, stop) {
                parked.wait().await;
                return self.execution(id).await;
            }
        }
        done.wait().await;
        self.execution(id).await
    }

    /// Executions of a flow in start order, filtered and paged.
    pub async fn list_executions(
        &self,
        flow: &FlowRecord,
        filter: &ExecutionFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<ExecutionRecord>, ApiError> {
        self.inner
            .store
            .list_executions(&flow.id, filter, cursor, limit)
            .await
            .map_err(|e| match e {
                StoreError::NotFound(c) => ApiError::InvalidArgument {
                    message: format!("the paging token '{c}' is not valid"),
                },
                other => internal(other),
            })
    }

    /// History events after `after`, at most `limit`.
    pub async fn history(
        &self,
        execution: &ExecutionRecord,
        after: u64,
        limit: usize,
    ) -> Result<Page<Event>, ApiError> {
        self.inner
            .store
            .history(&execution.id, after, limit)
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => ApiError::ExecutionNotFound {
                    flow: execution.flow.name.clone(),
                    execution: execution.name.to_string(),
                },
                other => internal(other),
            })
    }

    /// Runs a failed execution again from the top-level state that failed, with the input that
    /// state had; the history continues. Only a failed execution with a retry point (it failed
    /// in a state, not by timeout or stop) can be retried.
    pub async fn retry(&self, id: &str) -> Result<ExecutionRecord, ApiError> {
        let rec = self.execution(id).await?;
        if self.inner.live.contains_key(id)
            || self.inner.parked.contains_key(id)
            || rec.status != ExecutionStatus::Failed
        {
            return Err(ApiError::InvalidState {
                message: format!(
                    "execution '{}' is {:?}; only a failed execution can be retried",
                    rec.name, rec.status
                ),
            });
        }
        let Some(point) = rec.retry_point.clone() else {
            return Err(ApiError::InvalidState {
                message: format!(
                    "execution '{}' did not fail in a state, so there is nothing to retry",
                    rec.name
                ),
            });
        };
        let flow = self
            .inner
            .store
            .get_flow_by_id(&rec.flow_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| ApiError::FlowNotFound {
                flow: rec.flow.name.clone(),
            })?;
        if flow.flow.root.state(&point.state).is_none() {
            return Err(ApiError::InvalidState {
                message: format!(
                    "state '{}' no longer exists in flow '{}'",
                    point.state, flow.key.name
                ),
            });
        }
        let update = crate::store::ExecutionUpdate {
            status: Some(ExecutionStatus::Running),
            reopen: true,
            ..Default::default()
        };
        self.inner
            .store
            .commit(id, Vec::new(), Some(update))
            .await
            .map_err(internal)?;
        let rec = self.execution(id).await?;
        runner::launch(&self.inner, &rec, flow.flow.clone(), Some(point));
        Ok(rec)
    }

    /// The token of the callback task that `state` of an execution is waiting in, if any.
    pub fn waiting_token(&self, execution_id: &str, state: &str) -> Option<String> {
        self.inner.callbacks.token_for(execution_id, state)
    }

    /// Completes a callback task with an output; returns the id of the event recorded.
    pub async fn report_success(&self, token: &str, output: Value) -> Result<u64, ApiError> {
        self.check_payload(&output)?;
        self.report(token, CallbackOutcome::Succeeded(output)).await
    }

    /// Fails a callback task with an error and cause; returns the id of the event recorded.
    pub async fn report_failure(
        &self,
        token: &str,
        error: String,
        cause: String,
    ) -> Result<u64, ApiError> {
        self.report(token, CallbackOutcome::Failed(ExecError::new(error, cause)))
            .await
    }

    async fn report(&self, token: &str, outcome: CallbackOutcome) -> Result<u64, ApiError> {
        let rec = self
            .inner
            .store
            .get_token(token)
            .await
            .map_err(internal)?
            .ok_or_else(|| ApiError::TaskNotFound {
                token: token.to_string(),
            })?;
        if rec.status == TokenState::Completed {
            return Err(ApiError::TaskAlreadyCompleted {
                token: token.to_string(),
            });
        }
        let waiter = self.inner.callbacks.take(token);
        if waiter.is_none() && !self.inner.store.is_durable() {
            // Nothing resumes in memory: a token nobody waits on is finished.
            return Err(ApiError::TaskAlreadyCompleted {
                token: token.to_string(),
            });
        }
        // The report is kept with the token before it is answered, so it survives a crash
        // until the task records it.
        let kept = super::nodes::outcome_to_json(&outcome);
        match self.inner.store.complete_token(token, Some(kept)).await {
            Ok(_) => {}
            Err(StoreError::AlreadyCompleted(_)) => {
                return Err(ApiError::TaskAlreadyCompleted {
                    token: token.to_string(),
                })
            }
            Err(StoreError::NotFound(_)) => {
                return Err(ApiError::TaskNotFound {
                    token: token.to_string(),
                })
            }
            Err(e) => return Err(internal(e)),
        }
        let Some(waiter) = waiter else {
            // The task waits on another node, or has not resumed yet after a restart: it
            // takes the report from the token. Listen for the event id it answers with before
            // telling it, so the answer cannot come before anyone listens.
            let rx = self.inner.nodes.expect_recorded(token);
            let published = self
                .inner
                .store
                .publish(crate::store::Notice::Reported {
                    token: token.to_string(),
                })
                .await;
            if let Err(e) = published {
                self.inner.nodes.forget_recorded(token);
                return Err(internal(e));
            }
            let id = self
                .inner
                .nodes
                .await_recorded(token, rx, REPORT_RECORD_WAIT)
                .await;
            return Ok(id.unwrap_or(0));
        };
        if self.inner.nodes.shared {
            // This node may have lost the execution's lease without noticing yet: the node
            // that holds it now hears of the kept report too (its waiter, if any, takes it).
            let notice = crate::store::Notice::Reported {
                token: token.to_string(),
            };
            if let Err(e) = self.inner.store.publish(notice).await {
                tracing::warn!(error = %e, "could not announce a report to the other nodes");
            }
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        if waiter.send(Report { outcome, reply: tx }).is_err() {
            return Err(ApiError::TaskAlreadyCompleted {
                token: token.to_string(),
            });
        }
        rx.await.map_err(|_| ApiError::TaskAlreadyCompleted {
            token: token.to_string(),
        })
    }
}

/// `{base}:{a new UUID}`, the name of an Express execution started under a name (fnf makes
/// them unique this way), formatted on the stack straight into its shared string.
fn suffixed_name(base: &str) -> Arc<str> {
    let mut id_buf = uuid::Uuid::encode_buffer();
    let id = uuid::Uuid::now_v7().hyphenated().encode_lower(&mut id_buf);
    let len = base.len() + 1 + id.len();
    let mut buf = [0u8; 256];
    if len > buf.len() {
        return Arc::from(format!("{base}:{id}"));
    }
    buf[..base.len()].copy_from_slice(base.as_bytes());
    buf[base.len()] = b':';
    buf[base.len() + 1..len].copy_from_slice(id.as_bytes());
    Arc::from(std::str::from_utf8(&buf[..len]).expect("joined from two strings and a colon"))
}

/// A new execution id: a time-ordered UUID (v7), formatted straight into its shared string.
fn new_execution_id() -> Arc<str> {
    let mut buf = uuid::Uuid::encode_buffer();
    Arc::from(&*uuid::Uuid::now_v7().hyphenated().encode_lower(&mut buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixed_names_are_the_base_a_colon_and_a_uuid() {
        for base in ["run", "", &"x".repeat(300)] {
            let name = suffixed_name(base);
            let (head, id) = name.rsplit_once(':').expect("a colon");
            assert_eq!(head, base);
            assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
            assert_eq!(id.len(), 36);
        }
        assert_ne!(suffixed_name("run"), suffixed_name("run"));
        assert_eq!(new_execution_id().len(), 36);
    }
}
