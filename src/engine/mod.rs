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
//! - `clock`: scaled sleeps backed by timer records;
//! - `park`: executions asleep in a long Wait, without a task of their own;
//! - `resume`, `nodes`: carrying executions on from their history (restarts, other nodes).

mod api;
mod callbacks;
mod clock;
pub mod config;
mod exec;
mod nodes;
mod park;
mod resume;
mod runner;
mod scope;
mod states;

use std::sync::Arc;

use dashmap::DashMap;

pub use api::{StartRequest, Started};
pub use config::EngineConfig;
pub use nodes::Recompile;

use crate::invoke::FunctionRegistry;
use crate::store::Store;

/// How long a node shutting down gracefully waits for its task calls in flight to finish and
/// be recorded before it hands its executions over anyway (see [`Engine::release`]). Within
/// the 30 s a process supervisor (systemd, Kubernetes) usually allows between its stop signal
/// and a kill.
pub const RELEASE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

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
    pub(crate) live: DashMap<Arc<str>, runner::LiveExecution, ahash::RandomState>,
    /// Executions parked in a long Wait (see `park`), by id.
    pub(crate) parked: DashMap<String, Arc<park::Parked>, ahash::RandomState>,
    /// When the parked executions wake up.
    pub(crate) alarms: park::Alarms,
    pub(crate) callbacks: callbacks::Waiters,
    pub(crate) test_cases: crate::invoke::testcases::TestCases,
    pub(crate) nodes: nodes::Nodes,
    pub(crate) recompile: Option<Arc<Recompile>>,
}

impl Engine {
    /// An engine over a store, with the configured function bindings.
    pub fn new(config: EngineConfig, store: Arc<dyn Store>, functions: FunctionRegistry) -> Self {
        let nodes = nodes::Nodes::new(&*store);
        Engine {
            inner: Arc::new(Inner {
                nodes,
                recompile: None,
                store,
                functions,
                config,
                live: DashMap::default(),
                parked: DashMap::default(),
                alarms: park::Alarms::default(),
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

    /// The same engine able to compile a definition again with its dialect, so an execution
    /// resumed after its flow was replaced carries on with the definition it started with
    /// (call before the engine is shared).
    pub fn with_recompiler(mut self, recompile: Arc<Recompile>) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("the recompiler is set before the engine is shared")
            .recompile = Some(recompile);
        self
    }

    /// Starts the durability work: resumes the running executions a durable store hands this
    /// node (every running one after a restart) before returning how many, then keeps this
    /// node's leases alive, takes over the executions of dead nodes and listens to the other
    /// nodes' notices in the background. Nothing to do with the memory store.
    pub async fn start_background(&self, lease: std::time::Duration) -> usize {
        if !self.inner.store.is_durable() {
            return 0;
        }
        let resumed = nodes::claim_round(&self.inner, lease).await;
        tokio::spawn(nodes::lease_loop(self.inner.clone(), lease));
        if self.inner.nodes.shared {
            tokio::spawn(nodes::notice_loop(self.inner.clone()));
        }
        resumed
    }

    /// Lets other nodes take this node's running executions over at once (graceful
    /// shutdown of a node of a shared store); they stop running here. Task calls in flight
    /// finish and are recorded first (for at most [`RELEASE_GRACE`]), so the node that takes
    /// over does not call again.
    pub async fn release(&self) {
        if !self.inner.nodes.shared {
            return;
        }
        let (held, running): (Vec<String>, Vec<Arc<runner::Completion>>) = self
            .inner
            .live
            .iter()
            .map(|l| {
                l.ctx.abort(exec::Abort::Release);
                (l.key().to_string(), l.done.clone())
            })
            .unzip();
        let all_stopped = async {
            for done in &running {
                done.wait().await;
            }
        };
        if tokio::time::timeout(RELEASE_GRACE, all_stopped)
            .await
            .is_err()
        {
            tracing::warn!(
                grace_seconds = RELEASE_GRACE.as_secs(),
                "task calls still in flight at shutdown are handed over unrecorded: the node that takes over calls again"
            );
        }
        if let Err(e) = self.inner.store.release_leases(&held).await {
            tracing::warn!(error = %e, "could not release this node's leases");
        }
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
        self.inner.live.len() + self.inner.parked.len()
    }

    /// How many of the running executions are parked in a long Wait right now, holding no
    /// task (see `park`): for metrics, benchmarks and tests.
    pub fn parked_count(&self) -> usize {
        self.inner.parked.len()
    }

    /// The messages MNS tasks sent to the built-in outbox (see `crate::invoke::services`).
    pub fn outbox(&self) -> &Arc<crate::invoke::services::Outbox> {
        self.inner.functions.outbox()
    }
}
