//! The Alibaba CloudFlow flow language (`Type: StateMachine`, `SpecVersion: v1`), compiled
//! into the canonical model. See `dialects/alibaba/FLOWS.md` for the mapping.

mod lower;

use serde_json::Value;

use crate::model::expr::{Syntax, Var};
use crate::model::flow::{DefinitionIssue, Flow};

/// How CloudFlow spells expression roots: `$Input`, `$Output`, `$Context`, `$Global`, and
/// `$Item` (Map `ItemConstructor`). A bare `$` is not a variable.
pub const CLOUDFLOW: Syntax = Syntax {
    roots: &[
        ("Input", Var::Input),
        ("Output", Var::Result),
        ("Context", Var::Context),
        ("Global", Var::Global),
        ("Item", Var::Item),
    ],
    bare_dollar: None,
};

/// Compiles a parsed CloudFlow definition. `name` is the API flow name, which the
/// definition's `Name` must equal; when it is empty the definition's `Name` is used.
pub fn compile(name: &str, doc: &Value) -> Result<Flow, Vec<DefinitionIssue>> {
    lower::compile(name, doc)
}

/// Parses CloudFlow text (YAML or JSON) and compiles it.
pub fn compile_text(name: &str, text: &str) -> Result<Flow, Vec<DefinitionIssue>> {
    let doc = super::fdl::common::parse_text(text)?;
    compile(name, &doc)
}
