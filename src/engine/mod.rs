//! The engine: one async interpreter for every dialect's flows.
//!
//! The API here is vendor-neutral: dialects parse and verify a request, call one of these
//! methods with canonical values, and render the canonical result or [`ApiError`].
//!
//! Map of the module:
//! - `config`: `[engine]` settings;
//! - `api`: the public operations (start, describe, wait, stop, list, history, report);
//! - `exec`: the per-execution context (event numbering, commits, cancellation, `$context`);
//! - `runner`: the execution envelope (timeout, final status, completion notice);
//! - `scope`: the scope loop and the state envelope (transforms, retry, catch);
//! - `states/`: one file per state kind that needs more than a line;
//! - `callbacks`: task tokens and their waiters;
//! - `clock`: scaled sleeps backed by timer records.

mod api;
mod callbacks;
mod clock;
pub mod config;
mod exec;
mod runner;
mod scope;
mod states;

use std::sync::Arc;

use dashmap::DashMap;

pub use api::{StartRequest, Started};
pub use config::EngineConfig;

use crate::invoke::FunctionRegistry;
use crate::store::Store;

/// The shared workflow engine. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) functions: FunctionRegistry,
    pub(crate) config: EngineConfig,
    pub(crate) live: DashMap<String, runner::LiveExecution, ahash::RandomState>,
    pub(crate) callbacks: callbacks::Waiters,
    pub(crate) test_cases: crate::invoke::testcases::TestCases,
}

impl Engine {
    /// An engine over a store, with the configured function bindings.
    pub fn new(config: EngineConfig, store: Arc<dyn Store>, functions: FunctionRegistry) -> Self {
        Engine {
            inner: Arc::new(Inner {
                store,
                functions,
                config,
                live: DashMap::default(),
                callbacks: callbacks::Waiters::default(),
                test_cases: Default::default(),
            }),
        }
    }

    /// The same engine with mock test cases loaded (call before the engine is shared).
    pub fn with_test_cases(mut self, cases: crate::invoke::testcases::TestCases) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("test cases are set before the engine is shared")
            .test_cases = cases;
        self
    }

    /// The store the engine commits to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Number of executions running in this process right now.
    pub fn running_count(&self) -> usize {
        self.inner.live.len()
    }

    /// The messages MNS tasks sent to the built-in outbox (see `crate::invoke::services`).
    pub fn outbox(&self) -> &Arc<crate::invoke::services::Outbox> {
        self.inner.functions.outbox()
    }
}
