//! The Huawei Cloud FunctionGraph workflow dialect (REST API v2).
//!
//! - `rest`: route matching, SDK-HMAC-SHA256 authentication, the envelope and `X-Request-Id`;
//! - `handlers/`: workflows, executions, metrics and the IAM project lookup;
//! - `flow/`: the `WorkflowCreateBody` definition language, compiled into the canonical model;
//! - `signature`: SDK-HMAC-SHA256;
//! - `errors`, `wire`: error codes and response shapes.

pub mod errors;
pub mod flow;
pub mod handlers;
pub mod rest;
pub mod signature;
pub mod wire;

use std::path::Path;

use axum::extract::Request;

use crate::dialects::{Dialect, PrefixFuture, PrefixRoute};
use crate::model::flow::{DefinitionIssue, Flow};
use crate::server::AppState;

/// The dialect as a registry entry.
#[derive(Debug, Clone, Default)]
pub struct HuaweiDialect {
    /// The project flows from the flows directory are compiled for.
    pub project: String,
    /// The region in their URNs.
    pub region: String,
}

impl Dialect for HuaweiDialect {
    fn name(&self) -> &'static str {
        "huawei"
    }

    fn default_namespace(&self) -> String {
        format!("huawei/{}", self.project)
    }

    fn recognizes(&self, path: &Path, text: &str) -> bool {
        path.extension().is_some_and(|e| e == "json")
            && serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| {
                v.get("states").is_some_and(|s| s.is_array()) && v.get("start").is_some()
            })
    }

    fn compile(&self, name: &str, text: &str) -> Result<Flow, Vec<DefinitionIssue>> {
        let mut flow = flow::compile_text(&self.project, text)?.flow;
        if !name.is_empty() {
            flow.name = name.to_string();
        }
        Ok(flow)
    }

    fn metadata(&self, name: &str, text: &str) -> serde_json::Value {
        let definition = flow::compile_text(&self.project, text)
            .ok()
            .and_then(|c| serde_json::to_value(&c.definition).ok())
            .unwrap_or(serde_json::Value::Null);
        serde_json::json!({
            "workflow_urn": flow::workflow_urn(&self.region, &self.project, name),
            "definition": wire::stored_definition(definition),
        })
    }

    fn routes(&self, router: axum::Router<AppState>) -> axum::Router<AppState> {
        router
    }

    /// `/v2/{project_id}/fgs/...` and the IAM lookup `/v3/projects`, matched in `rest`.
    fn prefix_routes(&self) -> Vec<PrefixRoute> {
        fn handle(app: AppState, req: Request) -> PrefixFuture {
            Box::pin(rest::handle(app, req))
        }
        vec![
            PrefixRoute {
                prefix: "/v2/",
                handle,
            },
            PrefixRoute {
                prefix: "/v3/projects",
                handle,
            },
        ]
    }
}
