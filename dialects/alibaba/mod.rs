//! The Alibaba Cloud Serverless Workflow / CloudFlow dialect (fnf RPC API 2019-03-15).
//!
//! - `rpc`: the handler on `/` (parameters, signature, action, version, envelope);
//! - `params`: query ∪ form parameters with typed getters;
//! - `signature`: RPC V1 (HMAC-SHA1) and ACS3-HMAC-SHA256;
//! - `actions/`: one file per resource (flows, executions, tasks, schedules, versions);
//! - `records`: versions, aliases and schedules in the store's record table;
//! - `fdl/`, `cloudflow/`: the two flow languages, compiled into the canonical model;
//! - `error_names`: vendor error names to and from canonical ones;
//! - `errors`, `wire`: the error envelope and the response shapes.

pub mod actions;
pub mod cloudflow;
pub mod error_names;
pub mod errors;
pub mod fdl;
pub mod params;
pub mod records;
pub mod rpc;
pub mod signature;
pub mod wire;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::routing::any;
use dashmap::DashMap;

use crate::dialects::Dialect;
use crate::model::execution::FlowKey;
use crate::model::flow::{DefinitionIssue, Flow};
use crate::model::ApiError;
use crate::server::AppState;

/// State shared by the dialect's handlers.
pub struct Shared {
    /// Signature verification with its nonce replay cache.
    pub verifier: signature::Verifier,
    /// Compiled published versions, by (flow id, version).
    pub versions: DashMap<(Arc<str>, String), Arc<Flow>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("versions", &self.versions.len())
            .finish_non_exhaustive()
    }
}

/// The dialect as a registry entry.
#[derive(Debug, Clone)]
pub struct AlibabaDialect {
    shared: Arc<Shared>,
}

impl AlibabaDialect {
    /// A dialect whose signatures may be `clock_skew` away from the server clock and whose
    /// nonces are remembered for `nonce_window`, at most `nonce_capacity` of them (see
    /// [`signature::Verifier`]).
    pub fn new(clock_skew: Duration, nonce_window: Duration, nonce_capacity: usize) -> Self {
        AlibabaDialect {
            shared: Arc::new(Shared {
                verifier: signature::Verifier::with_limits(
                    clock_skew,
                    nonce_window,
                    nonce_capacity,
                ),
                versions: DashMap::new(),
            }),
        }
    }
}

/// Compiles a definition in either language (old FDL or CloudFlow).
pub fn compile(name: &str, text: &str) -> Result<Flow, ApiError> {
    fdl::compile_definition(name, text).map_err(|issues| ApiError::InvalidDefinition {
        issues: issues.iter().map(|i| i.to_string()).collect(),
    })
}

/// The key of an Alibaba flow.
pub fn flow_key(ctx: &rpc::Ctx<'_>, name: &str) -> FlowKey {
    FlowKey::new(ctx.namespace(), name)
}

impl Dialect for AlibabaDialect {
    fn name(&self) -> &'static str {
        "alibaba"
    }

    fn default_namespace(&self) -> String {
        "alibaba".to_string()
    }

    fn recognizes(&self, path: &Path, text: &str) -> bool {
        let yaml_like = path
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json");
        yaml_like
            && crate::yaml::parse(text).is_ok_and(|v| {
                v.get("Type").and_then(|t| t.as_str()) == Some("StateMachine")
                    || v.get("type").and_then(|t| t.as_str()) == Some("flow")
            })
    }

    fn compile(&self, name: &str, text: &str) -> Result<Flow, Vec<DefinitionIssue>> {
        fdl::compile_definition(name, text)
    }

    fn metadata(&self, _name: &str, _text: &str) -> serde_json::Value {
        serde_json::json!({"Type": "FDL", "Description": "", "RoleArn": ""})
    }

    fn routes(&self, router: axum::Router<AppState>) -> axum::Router<AppState> {
        let shared = self.shared.clone();
        router.route(
            "/",
            any(move |State(app): State<AppState>, req: Request| {
                let shared = shared.clone();
                async move { rpc::handle(app, shared, req).await }
            }),
        )
    }

    fn start_background(&self, state: &AppState) {
        let app = state.clone();
        tokio::spawn(async move {
            let mut last = chrono::Utc::now();
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let now = chrono::Utc::now();
                actions::fire_due_schedules(&app, last, now).await;
                last = now;
            }
        });
    }
}
