//! The variables an expression can read, and where the engine binds them.

use serde_json::Value;

/// A root variable of a path expression. Canonical text spells them `$input`, `$result`,
/// `$scope_input`, `$scope_local`, `$context`, `$global`, `$const`, `$item`, `$index`;
/// `$` alone means `$input` and `@` is the current node inside a JSONPath filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Var {
    /// The value being transformed: a state's raw or effective input.
    Input,
    /// What the state produced: a task's result, the array of branch outputs, an error object.
    Result,
    /// The input of the enclosing scope.
    ScopeInput,
    /// The accumulated local object of the enclosing scope (old Alibaba FDL).
    ScopeLocal,
    /// Execution and state metadata (see `docs/expressions.md` for its canonical shape).
    Context,
    /// Execution-wide variables (Alibaba CloudFlow `$Global`).
    Global,
    /// Flow constants (Huawei `constants`).
    Const,
    /// The current Map item.
    Item,
    /// The current Map index.
    Index,
}

impl Var {
    /// Every variable, in a fixed order.
    pub const ALL: [Var; 9] = [
        Var::Input,
        Var::Result,
        Var::ScopeInput,
        Var::ScopeLocal,
        Var::Context,
        Var::Global,
        Var::Const,
        Var::Item,
        Var::Index,
    ];

    /// The canonical spelling without the `$`.
    pub fn canonical_name(self) -> &'static str {
        match self {
            Var::Input => "input",
            Var::Result => "result",
            Var::ScopeInput => "scope_input",
            Var::ScopeLocal => "scope_local",
            Var::Context => "context",
            Var::Global => "global",
            Var::Const => "const",
            Var::Item => "item",
            Var::Index => "index",
        }
    }
}

/// The values bound to each variable for one evaluation. Unbound variables read as `null`.
#[derive(Debug, Clone, Copy)]
pub struct Vars<'a> {
    /// `$input`.
    pub input: &'a Value,
    /// `$result`.
    pub result: Option<&'a Value>,
    /// `$scope_input`.
    pub scope_input: Option<&'a Value>,
    /// `$scope_local`.
    pub scope_local: Option<&'a Value>,
    /// `$context`.
    pub context: Option<&'a Value>,
    /// `$global`.
    pub global: Option<&'a Value>,
    /// `$const`.
    pub consts: Option<&'a Value>,
    /// `$item`.
    pub item: Option<&'a Value>,
    /// `$index`.
    pub index: Option<&'a Value>,
}

static NULL: Value = Value::Null;

impl<'a> Vars<'a> {
    /// Variables with only `$input` bound.
    pub fn new(input: &'a Value) -> Self {
        Vars {
            input,
            result: None,
            scope_input: None,
            scope_local: None,
            context: None,
            global: None,
            consts: None,
            item: None,
            index: None,
        }
    }

    /// The value bound to `var` (`null` when unbound).
    pub fn get(&self, var: Var) -> &'a Value {
        let v = match var {
            Var::Input => Some(self.input),
            Var::Result => self.result,
            Var::ScopeInput => self.scope_input,
            Var::ScopeLocal => self.scope_local,
            Var::Context => self.context,
            Var::Global => self.global,
            Var::Const => self.consts,
            Var::Item => self.item,
            Var::Index => self.index,
        };
        v.unwrap_or(&NULL)
    }
}
