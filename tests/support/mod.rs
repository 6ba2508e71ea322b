//! Shared helpers for the integration tests: an engine over a memory store, canonical flow
//! deployment, and small accessors; the real binary (`gateway`), throwaway PostgreSQL
//! databases (`postgres`) and the checks every store passes (`store_checks`).
#![allow(dead_code)]

pub mod gateway;
pub mod postgres;
pub mod store_checks;

use std::sync::Arc;

use flowgate::engine::{Engine, EngineConfig, StartRequest};
use flowgate::invoke::binding::FunctionConfig;
use flowgate::invoke::{FunctionBinding, FunctionRegistry};
use flowgate::model::execution::FlowKey;
use flowgate::model::{Event, EventKind, ExecutionRecord};
use flowgate::store::memory::{MemoryStore, Retention};
use flowgate::store::FlowRecord;
use serde_json::Value;

/// An engine, with direct access to its memory store.
pub struct TestEngine {
    pub engine: Engine,
    pub store: Arc<MemoryStore>,
}

/// Engine config for tests: waits and back-offs skipped.
pub fn fast_config() -> EngineConfig {
    EngineConfig {
        time_scale: 0.0,
        ..EngineConfig::default()
    }
}

/// An engine whose functions are given as `[[functions]]` entries in JSON form.
pub fn engine(functions: Value, config: EngineConfig) -> TestEngine {
    let functions: Vec<FunctionConfig> =
        serde_json::from_value(functions).expect("function configs");
    let registry = FunctionRegistry::from_config(&functions).expect("valid functions");
    with_registry(registry, config)
}

/// An engine with a hand-built registry (custom invokers).
pub fn with_bindings(bindings: Vec<FunctionBinding>, config: EngineConfig) -> TestEngine {
    with_registry(FunctionRegistry::with(bindings), config)
}

fn with_registry(registry: FunctionRegistry, config: EngineConfig) -> TestEngine {
    let store = Arc::new(MemoryStore::new(Retention {
        express: config.express_retention,
        standard: config.standard_retention,
    }));
    let engine = Engine::new(config, store.clone(), registry);
    TestEngine { engine, store }
}

impl TestEngine {
    /// Compiles a canonical flow (JSON value) and deploys it.
    pub async fn deploy(&self, flow: Value) -> Arc<FlowRecord> {
        deploy_canonical(&self.engine, flow).await
    }

    /// Deploys a flow some dialect compiled from `text`.
    pub async fn deploy_compiled(
        &self,
        flow: flowgate::model::Flow,
        text: &str,
        namespace: &str,
        dialect: &str,
    ) -> Arc<FlowRecord> {
        deploy_on(&self.engine, flow, text, namespace, dialect).await
    }

    /// Runs an execution to its end.
    pub async fn run(&self, flow: &Arc<FlowRecord>, input: Value) -> ExecutionRecord {
        self.engine
            .start_sync(request(flow, None, input), true)
            .await
            .expect("start_sync")
    }

    /// The token a callback task of the execution handed out (waits for it, bounded).
    pub async fn token_of(&self, rec: &ExecutionRecord) -> String {
        for _ in 0..400 {
            let h = self.history(rec).await;
            if let Some(e) = h.iter().find(|e| e.kind == EventKind::TaskSubmitted) {
                return e.detail.extra().task_token.clone().unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        panic!("the task never handed its token out");
    }

    /// The inputs recorded by the `kind` events (StateEntered, StateStarted) of a state.
    pub async fn state_inputs(
        &self,
        rec: &ExecutionRecord,
        kind: EventKind,
        state: &str,
    ) -> Vec<Value> {
        self.history(rec)
            .await
            .iter()
            .filter(|e| e.kind == kind && &*e.state == state)
            .map(|e| e.detail.input.as_deref().cloned().unwrap_or(Value::Null))
            .collect()
    }

    /// All history events of an execution.
    pub async fn history(&self, rec: &ExecutionRecord) -> Vec<Event> {
        self.engine
            .history(rec, 0, 100_000)
            .await
            .expect("history")
            .items
    }
}

/// Compiles a canonical flow (JSON value) and deploys it on `engine` (any store).
pub async fn deploy_canonical(engine: &Engine, flow: Value) -> Arc<FlowRecord> {
    let text = flow.to_string();
    let compiled = flowgate::canonical::compile(&text)
        .unwrap_or_else(|issues| panic!("flow does not compile: {issues:?}"));
    deploy_on(engine, compiled, &text, "test", "canonical").await
}

/// Deploys on `engine` a flow some dialect compiled from `text`.
pub async fn deploy_on(
    engine: &Engine,
    flow: flowgate::model::Flow,
    text: &str,
    namespace: &str,
    dialect: &str,
) -> Arc<FlowRecord> {
    let now = chrono::Utc::now();
    let rec = FlowRecord {
        id: uuid::Uuid::new_v4().to_string().into(),
        key: FlowKey::new(namespace, flow.name.clone()),
        dialect: dialect.into(),
        definition: Arc::from(text),
        flow: Arc::new(flow),
        created: now,
        modified: now,
        metadata: Value::Null,
    };
    Arc::new(engine.create_flow(rec).await.expect("create flow"))
}

/// A start request.
pub fn request(flow: &Arc<FlowRecord>, name: Option<&str>, input: Value) -> StartRequest {
    StartRequest {
        flow: flow.clone(),
        name: name.map(str::to_string),
        input,
        metadata: Value::Null,
        callback_token: None,
    }
}

/// The kinds of a history, in order.
pub fn kinds(events: &[Event]) -> Vec<EventKind> {
    events.iter().map(|e| e.kind).collect()
}

/// The output of a finished execution.
pub fn output(rec: &ExecutionRecord) -> Value {
    rec.output.as_deref().cloned().unwrap_or(Value::Null)
}

// ----- scripted functions and definition-issue helpers shared by the dialect tests -----

use std::sync::Mutex;

use async_trait::async_trait;
use flowgate::invoke::{Invocation, InvokeError, Invoker};
use flowgate::model::flow::DefinitionIssue;

/// A function scripted in Rust: answers call number `n` (per binding) with `f(call, n)` and
/// records the event of every call.
#[derive(Debug)]
pub struct Scripted {
    events: Mutex<Vec<Value>>,
    f: fn(&Invocation<'_>, usize) -> Result<Value, InvokeError>,
}

#[async_trait]
impl Invoker for Scripted {
    async fn invoke(&self, call: &Invocation<'_>) -> Result<Value, InvokeError> {
        let n = {
            let mut events = self.events.lock().unwrap();
            events.push(call.event.clone());
            events.len() - 1
        };
        (self.f)(call, n)
    }
}

impl Scripted {
    /// The events of every call so far.
    pub fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }
    /// How many calls so far.
    pub fn count(&self) -> usize {
        self.events.lock().unwrap().len()
    }
}

pub fn scripted(
    name: &str,
    f: fn(&Invocation<'_>, usize) -> Result<Value, InvokeError>,
) -> (Arc<Scripted>, FunctionBinding) {
    let s = Arc::new(Scripted {
        events: Mutex::new(Vec::new()),
        f,
    });
    let b = FunctionBinding {
        name: name.to_string(),
        patterns: vec![],
        invoker: s.clone(),
    };
    (s, b)
}

/// A function error of a type with a message.
pub fn function_error(t: &str, m: &str) -> Result<Value, InvokeError> {
    Err(InvokeError::Function {
        error_type: t.to_string(),
        message: m.to_string(),
    })
}

/// Whether an issue at `path` mentions `needle`.
pub fn has_issue(issues: &[DefinitionIssue], path: &str, needle: &str) -> bool {
    issues
        .iter()
        .any(|i| i.path == path && i.message.contains(needle))
}

/// Asserts an issue at `path` mentioning `needle`.
#[track_caller]
pub fn assert_issue(issues: &[DefinitionIssue], path: &str, needle: &str) {
    assert!(
        has_issue(issues, path, needle),
        "expected an issue at {path} mentioning {needle:?}, got {issues:#?}"
    );
}
