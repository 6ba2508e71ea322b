//! The canonical flow format: the serde JSON form of [`crate::model::Flow`]. Engine tests are
//! written in it, `flowgate validate` prints it, and flow files under `flows/canonical/` use it.
//! Registered as a dialect without routes so the flows directory and the CLI treat it alike.

use std::path::Path;

use crate::dialects::Dialect;
use crate::model::flow::{DefinitionIssue, Flow};
use crate::server::AppState;

/// Parses canonical JSON and checks the flow; every problem with its field path.
pub fn compile(text: &str) -> Result<Flow, Vec<DefinitionIssue>> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let mut flow: Flow = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        vec![DefinitionIssue {
            path: if path == "." { "$".to_string() } else { path },
            message: e.into_inner().to_string(),
        }]
    })?;
    flow.prepare()?;
    Ok(flow)
}

/// The canonical format as a registry entry.
#[derive(Debug, Clone, Copy)]
pub struct CanonicalDialect;

impl Dialect for CanonicalDialect {
    fn name(&self) -> &'static str {
        "canonical"
    }

    fn default_namespace(&self) -> String {
        "canonical".to_string()
    }

    fn recognizes(&self, path: &Path, text: &str) -> bool {
        path.extension().is_some_and(|e| e == "json")
            && serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("root").map(|r| r.is_object()))
                .unwrap_or(false)
    }

    fn compile(&self, name: &str, text: &str) -> Result<Flow, Vec<DefinitionIssue>> {
        let mut flow = compile(text)?;
        if !name.is_empty() {
            flow.name = name.to_string();
        }
        Ok(flow)
    }

    fn routes(&self, router: axum::Router<AppState>) -> axum::Router<AppState> {
        router
    }
}
