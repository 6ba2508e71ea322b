//! The in-memory store (DashMap): the default for tests and for Express executions.
//! Finished executions are kept with bounded retention so memory stays flat under load.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap as RawDashMap;

/// DashMap with a fast hasher (SipHash showed up in profiles; ahash keeps DoS resistance).
type DashMap<K, V> = RawDashMap<K, V, ahash::RandomState>;

use super::{
    ExecutionFilter, ExecutionUpdate, FlowRecord, InsertOutcome, Page, PutMode, Store, StoreError,
    TaskTokenRecord, TimerRecord, TokenState,
};
use crate::model::execution::{FlowKey, FlowKeyView};
use crate::model::{Event, ExecutionMode, ExecutionRecord};

/// How many finished executions the memory store keeps per mode.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Finished Express executions kept.
    pub express: usize,
    /// Finished Standard executions kept.
    pub standard: usize,
}

#[derive(Debug)]
struct ExecEntry {
    seq: u64,
    record: ExecutionRecord,
    events: Vec<Event>,
}

#[derive(Debug, Default)]
struct Finished {
    express: VecDeque<Arc<str>>,
    standard: VecDeque<Arc<str>>,
}

/// Everything in process memory.
#[derive(Debug)]
pub struct MemoryStore {
    /// Flows by key, shared: a lookup (one per execution start) is an `Arc` clone.
    flows: DashMap<FlowKey, Arc<FlowRecord>>,
    /// The same flows by id, kept in step with `flows`.
    flow_ids: DashMap<Arc<str>, Arc<FlowRecord>>,
    /// Boxed: a map slot holds a pointer, not the whole entry, so the map's spare capacity
    /// costs little (DHAT: 936 bytes a slot unboxed).
    /// Ids, names and flow ids are the records' own shared strings: indexing an execution
    /// copies no string.
    execs: DashMap<Arc<str>, Box<ExecEntry>>,
    names: DashMap<(Arc<str>, Arc<str>), Arc<str>>,
    by_flow: DashMap<Arc<str>, BTreeMap<u64, Arc<str>>>,
    seq: AtomicU64,
    finished: Mutex<Finished>,
    retention: Retention,
    timers: DashMap<String, TimerRecord>,
    tokens: DashMap<String, TaskTokenRecord>,
    records: Mutex<BTreeMap<(String, String), serde_json::Value>>,
}

impl MemoryStore {
    /// An empty store keeping at most this many finished executions.
    pub fn new(retention: Retention) -> Self {
        MemoryStore {
            flows: DashMap::default(),
            flow_ids: DashMap::default(),
            execs: DashMap::default(),
            names: DashMap::default(),
            by_flow: DashMap::default(),
            seq: AtomicU64::new(0),
            finished: Mutex::new(Finished::default()),
            retention,
            timers: DashMap::default(),
            tokens: DashMap::default(),
            records: Mutex::new(BTreeMap::new()),
        }
    }

    /// Number of executions currently held (running and retained).
    pub fn execution_count(&self) -> usize {
        self.execs.len()
    }

    /// Whether the store holds this execution.
    pub fn holds(&self, execution_id: &str) -> bool {
        self.execs.contains_key(execution_id)
    }

    /// Whether the store holds this timer.
    pub fn holds_timer(&self, id: &str) -> bool {
        self.timers.contains_key(id)
    }

    /// Number of pending timer records.
    pub fn timers_len(&self) -> usize {
        self.timers.len()
    }

    /// Takes a reopened (retried) execution out of the retention queue.
    fn unretire(&self, id: &str, mode: ExecutionMode) {
        let mut f = self.finished.lock().expect("retention lock");
        let queue = match mode {
            ExecutionMode::Express => &mut f.express,
            ExecutionMode::Standard => &mut f.standard,
        };
        if let Some(pos) = queue.iter().rposition(|x| **x == *id) {
            queue.remove(pos);
        }
    }

    /// Queues a finished execution and drops the oldest ones past the retention. In the
    /// steady state that is one per call: each round pops at most one under the lock and
    /// drops it outside (no list of evicted ids is built).
    fn retire(&self, id: Arc<str>, mode: ExecutionMode) {
        let mut arriving = Some(id);
        loop {
            let (evicted, more) = {
                let mut f = self.finished.lock().expect("retention lock");
                let (queue, cap) = match mode {
                    ExecutionMode::Express => (&mut f.express, self.retention.express),
                    ExecutionMode::Standard => (&mut f.standard, self.retention.standard),
                };
                if let Some(id) = arriving.take() {
                    queue.push_back(id);
                }
                let evicted = if queue.len() > cap {
                    queue.pop_front()
                } else {
                    None
                };
                (evicted, queue.len() > cap)
            };
            if let Some(id) = evicted {
                self.evict(&id);
            }
            if !more {
                break;
            }
        }
    }

    /// Drops a retired execution and its index entries.
    fn evict(&self, id: &Arc<str>) {
        if let Some((_, entry)) = self.execs.remove(&**id) {
            if let Some(mut m) = self.by_flow.get_mut(&*entry.record.flow_id) {
                m.remove(&entry.seq);
            }
            // The key is moved out of the record, not cloned: the flow id is shared by every
            // execution of the flow, and a clone writes its count from both workers.
            let entry = *entry;
            let key = (entry.record.flow_id, entry.record.name);
            self.names.remove_if(&key, |_, v| v == id);
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(Retention {
            express: 1_000,
            standard: 100_000,
        })
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn durable(&self, _mode: ExecutionMode) -> bool {
        false
    }

    async fn create_flow(&self, flow: FlowRecord) -> Result<(), StoreError> {
        match self.flows.entry(flow.key.clone()) {
            Entry::Occupied(_) => Err(StoreError::AlreadyExists(flow.key.to_string())),
            Entry::Vacant(v) => {
                let flow = Arc::new(flow);
                self.flow_ids.insert(flow.id.clone(), flow.clone());
                v.insert(flow);
                Ok(())
            }
        }
    }

    async fn replace_flow(&self, flow: FlowRecord) -> Result<(), StoreError> {
        match self.flows.get_mut(&flow.key) {
            None => Err(StoreError::NotFound(flow.key.to_string())),
            Some(mut existing) => {
                let flow = Arc::new(flow);
                if existing.id != flow.id {
                    self.flow_ids.remove(&existing.id);
                }
                self.flow_ids.insert(flow.id.clone(), flow.clone());
                *existing = flow;
                Ok(())
            }
        }
    }

    async fn get_flow(&self, key: &FlowKey) -> Result<Option<Arc<FlowRecord>>, StoreError> {
        Ok(self.flows.get(key).map(|f| f.clone()))
    }

    async fn get_flow_named(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Arc<FlowRecord>>, StoreError> {
        let key: &dyn FlowKeyView = &(namespace, name);
        Ok(self.flows.get(key).map(|f| f.clone()))
    }

    async fn get_flow_by_id(&self, id: &str) -> Result<Option<Arc<FlowRecord>>, StoreError> {
        Ok(self.flow_ids.get(id).map(|f| f.clone()))
    }

    async fn delete_flow(&self, key: &FlowKey) -> Result<bool, StoreError> {
        match self.flows.remove(key) {
            Some((_, f)) => {
                self.flow_ids.remove(&f.id);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn list_flows(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<FlowRecord>, StoreError> {
        let mut all: Vec<FlowRecord> = self
            .flows
            .iter()
            .filter(|f| f.key.namespace == namespace)
            .filter(|f| after.is_none_or(|a| f.key.name.as_str() > a))
            .map(|f| FlowRecord::clone(&f))
            .collect();
        all.sort_by(|a, b| a.key.name.cmp(&b.key.name));
        Page::from_overfetch(all, limit, Ok, |f| f.key.name.clone())
    }

    async fn insert_execution(
        &self,
        record: ExecutionRecord,
        first: Event,
    ) -> Result<InsertOutcome, StoreError> {
        let key = (record.flow_id.clone(), record.name.clone());
        match self.names.entry(key) {
            Entry::Occupied(o) => {
                let id = o.get().clone();
                drop(o);
                match self.execs.get(&*id) {
                    Some(e) => Ok(InsertOutcome::Existing(Box::new(e.record.clone()))),
                    None => Err(StoreError::Backend(format!(
                        "dangling execution index {id}"
                    ))),
                }
            }
            Entry::Vacant(v) => {
                let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
                let id = record.id.clone();
                let mode = record.mode;
                self.execs.insert(
                    id.clone(),
                    Box::new(ExecEntry {
                        seq,
                        record,
                        events: {
                            // An Express run commits the rest of its history at its end, and
                            // `commit` then keeps that batch's buffer (see there); a Standard
                            // one often sits in a Wait after a few events (and grows as
                            // needed), so it starts small.
                            let capacity = match mode {
                                ExecutionMode::Express => 1,
                                ExecutionMode::Standard => 4,
                            };
                            let mut v = Vec::with_capacity(capacity);
                            v.push(first);
                            v
                        },
                    }),
                );
                // The flow id is borrowed from the name index's key: a clone of it (shared by
                // every execution of the flow) is only stored for the flow's first execution.
                let flow_id = &v.key().0;
                match self.by_flow.get_mut(&**flow_id) {
                    Some(mut m) => {
                        m.insert(seq, id.clone());
                    }
                    None => {
                        self.by_flow
                            .entry(flow_id.clone())
                            .or_default()
                            .insert(seq, id.clone());
                    }
                }
                v.insert(id);
                Ok(InsertOutcome::Inserted)
            }
        }
    }

    async fn get_execution(&self, id: &str) -> Result<Option<ExecutionRecord>, StoreError> {
        Ok(self.execs.get(id).map(|e| e.record.clone()))
    }

    async fn find_execution(
        &self,
        flow_id: &str,
        name: &str,
    ) -> Result<Option<ExecutionRecord>, StoreError> {
        let id = match self.names.get(&(Arc::from(flow_id), Arc::from(name))) {
            Some(id) => id.clone(),
            None => return Ok(None),
        };
        Ok(self.execs.get(&*id).map(|e| e.record.clone()))
    }

    async fn commit(
        &self,
        execution_id: &str,
        events: Vec<Event>,
        update: Option<ExecutionUpdate>,
    ) -> Result<(), StoreError> {
        let retire = {
            let mut entry = self
                .execs
                .get_mut(execution_id)
                .ok_or_else(|| StoreError::NotFound(execution_id.to_string()))?;
            let e = &mut *entry;
            e.record.event_count += events.len() as u64;
            if let Some(last) = events.last() {
                e.record.updated = last.time;
            }
            if e.events.len() == 1
                && e.record.mode == ExecutionMode::Express
                && events.capacity() > events.len()
            {
                // The first batch after the start event (for an Express run, usually its whole
                // history): keep the batch's own buffer, which has room for the start event,
                // instead of growing this one and copying the batch into it.
                let mut all = events;
                all.insert(0, e.events.remove(0));
                e.events = all;
            } else {
                e.events.extend(events);
            }
            let mut retire = None;
            if let Some(u) = update {
                let was_terminal = e.record.is_terminal();
                u.apply_to(&mut e.record);
                if !was_terminal && e.record.is_terminal() {
                    retire = Some((e.record.mode, Some(e.record.id.clone())));
                } else if was_terminal && !e.record.is_terminal() {
                    retire = Some((e.record.mode, None));
                }
            }
            retire
        };
        match retire {
            Some((mode, Some(id))) => self.retire(id, mode),
            Some((mode, None)) => self.unretire(execution_id, mode),
            None => {}
        }
        Ok(())
    }

    async fn history(
        &self,
        execution_id: &str,
        after: u64,
        limit: usize,
    ) -> Result<Page<Event>, StoreError> {
        let entry = self
            .execs
            .get(execution_id)
            .ok_or_else(|| StoreError::NotFound(execution_id.to_string()))?;
        let start = entry.events.partition_point(|e| e.id <= after);
        let end = (start + limit).min(entry.events.len());
        let items: Vec<Event> = entry.events[start..end].to_vec();
        let next = if end < entry.events.len() {
            items.last().map(|e| e.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn list_executions(
        &self,
        flow_id: &str,
        filter: &ExecutionFilter,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<ExecutionRecord>, StoreError> {
        let after_seq: u64 = match after {
            None => 0,
            Some(c) => c.parse().map_err(|_| StoreError::NotFound(c.to_string()))?,
        };
        let ids: Vec<(u64, Arc<str>)> = match self.by_flow.get(flow_id) {
            None => Vec::new(),
            Some(m) => m
                .range(after_seq + 1..)
                .map(|(s, id)| (*s, id.clone()))
                .collect(),
        };
        let mut items = Vec::new();
        let mut last_seq = 0;
        let mut more = false;
        for (seq, id) in ids {
            let rec = match self.execs.get(&*id) {
                Some(e) => e.record.clone(),
                None => continue,
            };
            if !filter.accepts(&rec) {
                continue;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            last_seq = seq;
            items.push(rec);
        }
        Ok(Page {
            items,
            next: more.then(|| last_seq.to_string()),
        })
    }

    async fn put_timer(&self, timer: TimerRecord) -> Result<(), StoreError> {
        self.timers.insert(timer.id.clone(), timer);
        Ok(())
    }

    async fn delete_timer(&self, id: &str) -> Result<(), StoreError> {
        self.timers.remove(id);
        Ok(())
    }

    async fn timers(&self) -> Result<Vec<TimerRecord>, StoreError> {
        Ok(self.timers.iter().map(|t| t.clone()).collect())
    }

    async fn put_token(&self, token: TaskTokenRecord) -> Result<(), StoreError> {
        self.tokens.insert(token.token.clone(), token);
        Ok(())
    }

    async fn get_token(&self, token: &str) -> Result<Option<TaskTokenRecord>, StoreError> {
        Ok(self.tokens.get(token).map(|t| t.clone()))
    }

    async fn complete_token(
        &self,
        token: &str,
        outcome: Option<serde_json::Value>,
    ) -> Result<TaskTokenRecord, StoreError> {
        let mut t = self
            .tokens
            .get_mut(token)
            .ok_or_else(|| StoreError::NotFound(token.to_string()))?;
        if t.status == TokenState::Completed {
            return Err(StoreError::AlreadyCompleted(token.to_string()));
        }
        t.status = TokenState::Completed;
        t.outcome = outcome;
        Ok(t.clone())
    }

    async fn put_record(
        &self,
        kind: &str,
        key: &str,
        value: serde_json::Value,
        mode: PutMode,
    ) -> Result<(), StoreError> {
        let mut records = self.records.lock().expect("records lock");
        let k = (kind.to_string(), key.to_string());
        let exists = records.contains_key(&k);
        match (mode, exists) {
            (PutMode::Create, true) => Err(StoreError::AlreadyExists(format!("{kind}/{key}"))),
            (PutMode::Replace, false) => Err(StoreError::NotFound(format!("{kind}/{key}"))),
            _ => {
                records.insert(k, value);
                Ok(())
            }
        }
    }

    async fn get_record(
        &self,
        kind: &str,
        key: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let records = self.records.lock().expect("records lock");
        Ok(records.get(&(kind.to_string(), key.to_string())).cloned())
    }

    async fn delete_record(&self, kind: &str, key: &str) -> Result<bool, StoreError> {
        let mut records = self.records.lock().expect("records lock");
        Ok(records
            .remove(&(kind.to_string(), key.to_string()))
            .is_some())
    }

    async fn list_records(
        &self,
        kind: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<(String, serde_json::Value)>, StoreError> {
        let records = self.records.lock().expect("records lock");
        let start = (kind.to_string(), after.unwrap_or(prefix).to_string());
        let mut items = Vec::new();
        let mut more = false;
        for ((k, key), v) in records.range(start..) {
            if k != kind || !key.starts_with(prefix) {
                break;
            }
            if after == Some(key.as_str()) {
                continue;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            items.push((key.clone(), v.clone()));
        }
        let next = if more {
            items.last().map(|(k, _)| k.clone())
        } else {
            None
        };
        Ok(Page { items, next })
    }
}
