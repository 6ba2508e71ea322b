//! The old Alibaba flow language ("Serverless Workflow" FDL: `type: flow`, `version: v1`),
//! compiled into the canonical model. See `dialects/alibaba/FLOWS.md` for the mapping.
//!
//! Also the entry point for definition text in either Alibaba language:
//! [`compile_definition`] parses once and dispatches to this module or to
//! [`super::cloudflow`].

pub(crate) mod common;
mod lower;

use serde_json::Value;

use crate::model::flow::{DefinitionIssue, Flow};

/// The two flow languages the fnf API accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// Old FDL: `type: flow`.
    Fdl,
    /// CloudFlow: `Type: StateMachine`.
    CloudFlow,
}

/// Which language a parsed definition is written in, if either.
pub fn language(doc: &Value) -> Option<Language> {
    let obj = doc.as_object()?;
    if obj.get("Type").and_then(Value::as_str) == Some("StateMachine") {
        Some(Language::CloudFlow)
    } else if obj.get("type").and_then(Value::as_str) == Some("flow") {
        Some(Language::Fdl)
    } else {
        None
    }
}

/// Compiles definition text in either Alibaba language (YAML or JSON; CRLF accepted).
/// `name` is the flow name given to the API.
pub fn compile_definition(name: &str, text: &str) -> Result<Flow, Vec<DefinitionIssue>> {
    let doc = common::parse_text(text)?;
    match language(&doc) {
        Some(Language::CloudFlow) => super::cloudflow::compile(name, &doc),
        Some(Language::Fdl) => compile(name, &doc),
        None => Err(vec![DefinitionIssue {
            path: "$".to_string(),
            message: "neither Alibaba flow language was recognised: expected `Type: StateMachine` \
                      (CloudFlow) or `type: flow` (old FDL) at the top level"
                .to_string(),
        }]),
    }
}

/// Compiles a parsed old-FDL definition. `name` is the API flow name (authoritative); when
/// it is empty the definition's `name` is used.
pub fn compile(name: &str, doc: &Value) -> Result<Flow, Vec<DefinitionIssue>> {
    lower::compile(name, doc)
}

/// Parses old-FDL text (YAML or JSON) and compiles it.
pub fn compile_text(name: &str, text: &str) -> Result<Flow, Vec<DefinitionIssue>> {
    let doc = common::parse_text(text)?;
    compile(name, &doc)
}
