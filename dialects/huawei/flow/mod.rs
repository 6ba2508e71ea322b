//! The Huawei FunctionGraph workflow definition (`WorkflowCreateBody`, REST API v2) and its
//! compiler into the canonical model.
//!
//! * [`definition`]: the typed, validated body ([`WorkflowDefinition`]) and its reader, which
//!   reports every problem at once with its field path;
//! * `expr`: Huawei JSONPath arguments, filters and error conditions in canonical form;
//! * `lower`: the definition as a canonical [`Flow`].
//!
//! The mapping and every choice the documentation leaves open are described in
//! `dialects/huawei/FLOWS.md`.

pub mod definition;
mod expr;
mod lower;

pub use definition::{
    Action, ActionMode, ExpressConfig, Function, FunctionRef, InvokeMode, LogLevel, OnError,
    OperationState, Retry, StateDataFilter, StateType, Trigger, TriggerConfig, TriggerType,
    WorkflowDefinition, WorkflowMode,
};
pub use expr::{INPUT_SYNTAX, RESULT_SYNTAX};

use serde_json::Value;

use crate::model::flow::{DefinitionIssue, Flow};

/// The error a function call raises when its output matches an `on_errors` condition that
/// reads output fields (a returned business error code such as `{"errorCode": 500}`).
pub const BUSINESS_ERROR: &str = "FGS.BusinessError";

/// Timeout of one synchronous function call (the documented 15-minute cap of a function node).
pub const FUNCTION_TIMEOUT_SECONDS: f64 = 900.0;

/// A compiled workflow: the canonical flow the engine runs and the definition the API renders
/// back.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledWorkflow {
    /// The canonical flow, prepared (indexes built, structure checked).
    pub flow: Flow,
    /// The checked and normalised definition.
    pub definition: WorkflowDefinition,
}

/// Compiles a `WorkflowCreateBody` for the project `project_id` (which fills an empty or
/// `{placeholder}` project segment of a function URN). Every problem is reported, each with
/// its field path (`states[0].actions[1].function_ref.ref_name`).
pub fn compile(project_id: &str, body: &Value) -> Result<CompiledWorkflow, Vec<DefinitionIssue>> {
    let (definition, mut issues) = definition::read(body);
    let mut flow = lower::lower(&definition, project_id, &mut issues);
    if !issues.is_empty() {
        return Err(issues);
    }
    flow.prepare()?;
    Ok(CompiledWorkflow { flow, definition })
}

/// Parses definition text (JSON only; a syntax error is one issue at `$` with its line and
/// column) and compiles it.
pub fn compile_text(
    project_id: &str,
    text: &str,
) -> Result<CompiledWorkflow, Vec<DefinitionIssue>> {
    let body: Value = serde_json::from_str(text).map_err(|e| {
        let full = e.to_string();
        let suffix = format!(" at line {} column {}", e.line(), e.column());
        let what = full.strip_suffix(&suffix).unwrap_or(&full);
        vec![DefinitionIssue {
            path: "$".to_string(),
            message: format!(
                "invalid JSON at line {} column {}: {what}",
                e.line(),
                e.column()
            ),
        }]
    })?;
    compile(project_id, &body)
}

/// The URN of a workflow: `urn:fss:{region}:{project_id}:workflow:default:{name}:latest`
/// (workflows have no versions or packages).
pub fn workflow_urn(region: &str, project_id: &str, name: &str) -> String {
    format!("urn:fss:{region}:{project_id}:workflow:default:{name}:latest")
}
