//! Express executions in memory, everything else in a durable store.
//!
//! The clouds keep no history for Express executions, and they are short and many: writing
//! them to disk would cost the durable store most of its throughput for nothing. Flows,
//! records, Standard executions and their timers and tokens go to the durable store; an
//! Express execution (and its timers and tokens) lives in the memory store with its bounded
//! retention and is lost on restart.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{
    ExecutionFilter, ExecutionUpdate, FlowRecord, InsertOutcome, MemoryStore, Notice, Page,
    PutMode, Store, StoreError, TaskTokenRecord, TimerRecord,
};
use crate::model::execution::FlowKey;
use crate::model::{Event, ExecutionMode, ExecutionRecord};

/// A durable store with Express executions kept in memory.
#[derive(Debug)]
pub struct TieredStore {
    durable: Arc<dyn Store>,
    express: MemoryStore,
}

impl TieredStore {
    /// Routes Express executions to `express` and everything else to `durable`.
    pub fn new(durable: Arc<dyn Store>, express: MemoryStore) -> Self {
        TieredStore { durable, express }
    }

    /// Whether an execution lives in the memory tier.
    fn in_memory(&self, execution_id: &str) -> bool {
        self.express.holds(execution_id)
    }

    /// The store holding an execution's timers and tokens.
    fn tier_of(&self, execution_id: &str) -> &dyn Store {
        if self.in_memory(execution_id) {
            &self.express
        } else {
            &*self.durable
        }
    }
}

#[async_trait]
impl Store for TieredStore {
    fn durable(&self, mode: ExecutionMode) -> bool {
        match mode {
            ExecutionMode::Express => false,
            ExecutionMode::Standard => self.durable.durable(mode),
        }
    }

    async fn create_flow(&self, flow: FlowRecord) -> Result<(), StoreError> {
        self.durable.create_flow(flow).await
    }
    async fn replace_flow(&self, flow: FlowRecord) -> Result<(), StoreError> {
        self.durable.replace_flow(flow).await
    }
    async fn get_flow(&self, key: &FlowKey) -> Result<Option<Arc<FlowRecord>>, StoreError> {
        self.durable.get_flow(key).await
    }
    async fn get_flow_named(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<FlowRecord>>, StoreError> {
        self.durable.get_flow_named(namespace, name).await
    }
    async fn get_flow_by_id(&self, id: &str) -> Result<Option<Arc<FlowRecord>>, StoreError> {
        self.durable.get_flow_by_id(id).await
    }
    async fn delete_flow(&self, key: &FlowKey) -> Result<bool, StoreError> {
        self.durable.delete_flow(key).await
    }
    async fn list_flows(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<FlowRecord>, StoreError> {
        self.durable.list_flows(namespace, after, limit).await
    }

    async fn insert_execution(
        &self,
        record: ExecutionRecord,
        first: Event,
    ) -> Result<InsertOutcome, StoreError> {
        match record.mode {
            ExecutionMode::Express => self.express.insert_execution(record, first).await,
            ExecutionMode::Standard => self.durable.insert_execution(record, first).await,
        }
    }
    async fn get_execution(&self, id: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        match self.express.get_execution(id).await? {
            Some(r) => Ok(Some(r)),
            None => self.durable.get_execution(id).await,
        }
    }
    async fn find_execution(
        &self,
        flow_id: &str,
        name: &str,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        match self.express.find_execution(flow_id, name).await? {
            Some(r) => Ok(Some(r)),
            None => self.durable.find_execution(flow_id, name).await,
        }
    }
    async fn commit(
        &self,
        execution_id: &str,
        events: Vec<Event>,
        update: Option<ExecutionUpdate>,
    ) -> Result<(), StoreError> {
        self.tier_of(execution_id)
            .commit(execution_id, events, update)
            .await
    }
    async fn history(
        &self,
        execution_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Page<Event>, StoreError> {
        self.tier_of(execution_id)
            .history(execution_id, after, limit)
            .await
    }
    async fn list_executions(
        &self,
        flow_id: &str,
        filter: &ExecutionFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<ExecutionRecord>, StoreError> {
        let express = match self.durable.get_flow_by_id(flow_id).await? {
            Some(f) => f.flow.mode == ExecutionMode::Express,
            None => false,
        };
        if express {
            self.express
                .list_executions(flow_id, filter, after, limit)
                .await
        } else {
            self.durable
                .list_executions(flow_id, filter, after, limit)
                .await
        }
    }

    async fn put_timer(&self, timer: TimerRecord) -> Result<(), StoreError> {
        self.tier_of(&timer.execution_id).put_timer(timer).await
    }
    async fn delete_timer(&self, id: &str) -> Result<(), StoreError> {
        // Timer ids are unique across tiers; deleting an unknown id is a no-op in both.
        if self.express.holds_timer(id) {
            self.express.delete_timer(id).await
        } else {
            self.durable.delete_timer(id).await
        }
    }
    async fn timers(&self) -> Result<Vec<TimerRecord>, StoreError> {
        let mut all = self.durable.timers().await?;
        all.extend(self.express.timers().await?);
        Ok(all)
    }

    async fn put_token(&self, token: TaskTokenRecord) -> Result<(), StoreError> {
        self.tier_of(&token.execution_id).put_token(token).await
    }
    async fn get_token(&self, token: &str) -> Result<Option<TaskTokenRecord>, StoreError> {
        match self.express.get_token(token).await? {
            Some(t) => Ok(Some(t)),
            None => self.durable.get_token(token).await,
        }
    }
    async fn complete_token(
        &self,
        token: &str,
        outcome: Option<serde_json::Value>,
    ) -> Result<TaskTokenRecord, StoreError> {
        if self.express.get_token(token).await?.is_some() {
            self.express.complete_token(token, outcome).await
        } else {
            self.durable.complete_token(token, outcome).await
        }
    }

    async fn put_record(
        &self,
        kind: &str,
        key: &str,
        value: serde_json::Value,
        mode: PutMode,
    ) -> Result<(), StoreError> {
        self.durable.put_record(kind, key, value, mode).await
    }
    async fn get_record(
        &self,
        kind: &str,
        key: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        self.durable.get_record(kind, key).await
    }
    async fn delete_record(&self, kind: &str, key: &str) -> Result<bool, StoreError> {
        self.durable.delete_record(kind, key).await
    }
    async fn list_records(
        &self,
        kind: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<(String, serde_json::Value)>, StoreError> {
        self.durable.list_records(kind, prefix, after, limit).await
    }

    fn is_durable(&self) -> bool {
        self.durable.is_durable()
    }
    async fn claim_orphans(
        &self,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ExecutionRecord>, StoreError> {
        self.durable.claim_orphans(lease, limit).await
    }
    async fn renew_leases(
        &self,
        held: &[String],
        lease: Duration,
    ) -> Result<Vec<String>, StoreError> {
        let durable: Vec<String> = held
            .iter()
            .filter(|id| !self.in_memory(id))
            .cloned()
            .collect();
        self.durable.renew_leases(&durable, lease).await
    }
    async fn release_leases(&self, ids: &[String]) -> Result<(), StoreError> {
        let durable: Vec<String> = ids
            .iter()
            .filter(|id| !self.in_memory(id))
            .cloned()
            .collect();
        self.durable.release_leases(&durable).await
    }
    async fn publish(&self, notice: Notice) -> Result<(), StoreError> {
        self.durable.publish(notice).await
    }
    fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<Notice>> {
        self.durable.subscribe()
    }
}
