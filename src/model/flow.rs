//! Canonical flows: the state machine every dialect's flow language compiles into.
//!
//! A [`Flow`] is a tree of [`Scope`]s (the top level, each Parallel branch, each Map processor,
//! each inline Choice branch). A scope is a list of named [`State`]s with a start state; control
//! moves by `next` inside one scope only. Data moves through [`Template`]s evaluated over the
//! variables described in [`crate::model::expr::Vars`].
//!
//! Canonical JSON (what `flowgate validate` prints and engine tests are written in) is the serde
//! form of these types.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::execution::ExecutionMode;
use super::expr::{Expr, Template};

/// A compiled flow definition, shared behind an `Arc` once compiled.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// The flow's name as the API knows it.
    pub name: String,
    /// Standard (asynchronous, durable) or Express (synchronous, short, in memory).
    #[serde(default)]
    pub mode: ExecutionMode,
    /// Transform applied to the execution input before the top-level scope starts
    /// (`$input` = execution input). `None` passes the input through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Template>,
    /// The top-level scope; its output is the execution output.
    pub root: Scope,
    /// Whole-execution timeout in seconds; `None` uses the mode's default cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
    /// Named constants visible to expressions as `$const` (Huawei `constants`).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub constants: Value,
}

/// A list of states with a start state: the top level, a Parallel branch, a Map processor or
/// an inline Choice branch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// Name of the first state to run.
    pub start_at: String,
    /// The states of this scope, in definition order.
    pub states: Vec<State>,
    /// When true, each state's output is shallow-merged into the scope's `$scope_local`
    /// (the old Alibaba FDL data model).
    #[serde(default, skip_serializing_if = "is_false")]
    pub accumulate_local: bool,
    /// Computes the scope's output when it ends. Variables: `$input` = scope input,
    /// `$result` = output of the last state that ran, `$scope_local` = accumulated local.
    /// `None` = the last state's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Template>,
    /// Position of each state by name, built by [`Flow::prepare`]. Hashed with ahash: every
    /// transition looks its next state up here.
    #[serde(skip)]
    pub index: HashMap<String, usize, ahash::RandomState>,
}

/// One state of a scope: what it does, how its data is shaped and where control goes next.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct State {
    /// Unique name inside its scope; history events carry it.
    pub name: String,
    /// The name as events carry it, built by [`Flow::prepare`].
    #[serde(skip)]
    pub label: crate::model::event::StateLabel,
    /// What the state does.
    #[serde(flatten)]
    pub kind: StateKind,
    /// Raw input (`$input`: previous state's output, or the scope input) to effective input.
    /// Also sees `$scope_input`, `$scope_local`, `$context`, `$global`, `$const`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Template>,
    /// (`$input` = effective input, `$result` = the kind's result) to the state's output.
    /// `None` = the kind's result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Template>,
    /// Evaluated like `output` (before it); its object is shallow-merged into `$global`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<Template>,
    /// The next state in the same scope; with neither `next` nor `end`, the scope ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Ends the scope after this state.
    #[serde(default, skip_serializing_if = "is_false")]
    pub end: bool,
    /// Retry policies, consulted in order before catch policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retry: Vec<RetryPolicy>,
    /// Catch policies, consulted in order once retries are exhausted or none matched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub catch: Vec<CatchPolicy>,
}

/// The eight canonical state kinds. (Variants differ in size; flows are compiled once and
/// shared, so boxing the large ones would buy nothing.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StateKind {
    /// Result = effective input.
    Pass,
    /// Calls a function (or waits for a callback); result = the call's result.
    Task(TaskSpec),
    /// Picks a branch by condition; result = effective input, or the inline branch's output.
    Choice(ChoiceSpec),
    /// Waits for a duration or until a timestamp; result = effective input.
    Wait(WaitSpec),
    /// Runs every branch on the effective input; result = array of branch outputs.
    Parallel(ParallelSpec),
    /// Runs the processor once per item; result = array of iteration outputs in item order.
    Map(MapSpec),
    /// Ends the enclosing scope successfully; result = effective input.
    Succeed,
    /// Raises an error that fails the enclosing scope unless a policy above catches it.
    Fail(FailSpec),
}

/// The reserved task target that starts an execution of another flow. Its event is
/// `{"flow": "<name>" | "<namespace>/<name>", "execution_name"?: "<name>", "input"?: {...}}`.
pub const SUBFLOW_RESOURCE: &str = "flow";

/// A Task state: what to call and how to wait for it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// The function to call: matched against the `[[functions]]` bindings.
    pub resource: std::sync::Arc<str>,
    /// Builds the event sent to the function (`$input` = effective input). `None` = input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Template>,
    /// How the task completes.
    #[serde(default)]
    pub mode: TaskMode,
    /// Reshapes the raw result (`$result`) before the state's output transform sees it, for
    /// integrations that wrap results (for example `{"Body": <function result>}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_selector: Option<Template>,
    /// Task timeout in seconds (number or expression); covers callback waits too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<Amount>,
    /// When this condition is true of the result (`$result`), the call counts as failed with
    /// the error named in `error_name` (Huawei business error codes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_when: Option<Expr>,
    /// Error name raised by `fail_when`; defaults to `sys.Runtime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_error: Option<String>,
    /// Require the result to be a JSON object (else `sys.InvalidOutput`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub result_must_be_object: bool,
}

/// How a Task completes.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TaskMode {
    /// Call and use the response.
    #[default]
    RequestResponse,
    /// Call with a task token, then wait until the token is reported succeeded or failed.
    WaitForCallback,
    /// Start the work and wait until it finishes (a sub-flow run to its end).
    Sync,
}

/// A number given either literally or as an expression over the state's effective input.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Amount {
    /// A literal number.
    Fixed(f64),
    /// An expression evaluated when the state runs.
    Expr(Expr),
}

/// A Choice state: ordered rules, first match wins.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ChoiceSpec {
    /// Rules evaluated in order against the effective input (`$input`).
    pub rules: Vec<ChoiceRule>,
    /// Where to go when no rule matches; `None` continues with the state's own next/end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<ChoiceTarget>,
}

/// One condition and its target.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChoiceRule {
    /// The condition (truthy = match).
    pub condition: Expr,
    /// Where control goes when it matches.
    #[serde(flatten)]
    pub target: ChoiceTarget,
}

/// Where a Choice sends control.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum ChoiceTarget {
    /// Jump to a state of the same scope.
    Next(String),
    /// Run an inline scope on the effective input, then continue with the Choice's next/end.
    Steps(Box<Scope>),
}

/// A Wait state: exactly one of `seconds`, `until` or `until_expr`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WaitSpec {
    /// Wait this many seconds (a number or an expression), scaled by the engine's time scale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<Amount>,
    /// Wait until this RFC 3339 timestamp; a past one continues at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Wait until the RFC 3339 timestamp this expression yields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_expr: Option<Expr>,
}

/// A Parallel state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParallelSpec {
    /// The branches; each gets the effective input.
    pub branches: Vec<Scope>,
    /// At most this many branches run at once (`None` = all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
}

/// A Map state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MapSpec {
    /// Expression yielding the items array (`$input` = effective input).
    pub items: Expr,
    /// Builds each iteration's input (`$input` = effective input, `$item`, `$index`).
    /// `None` = the item itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<Template>,
    /// The scope run once per item.
    pub processor: Box<Scope>,
    /// At most this many iterations run at once (`None` or 0 = the engine default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
}

/// A Fail state.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FailSpec {
    /// Error name (defaults to `sys.Fail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Human-readable cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// Retry an errored state after a back-off.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Error names this policy applies to (`*` = all).
    pub errors: Vec<String>,
    /// Optional extra condition over the error object (`$result` = `{"error","cause",...}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Expr>,
    /// First delay in seconds.
    #[serde(default = "default_interval")]
    pub interval_seconds: f64,
    /// Retries after the first attempt (0 = never retry).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Each delay is the previous one times this rate.
    #[serde(default = "default_backoff")]
    pub backoff_rate: f64,
    /// Cap on a single delay, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_interval_seconds: Option<f64>,
}

/// Catch an errored state and continue at another state of the same scope.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CatchPolicy {
    /// Error names this policy applies to (`*` = all).
    pub errors: Vec<String>,
    /// Optional extra condition over the error object (`$result`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Expr>,
    /// The state to continue at.
    pub next: String,
    /// Builds the next state's input (`$input` = effective input, `$result` = error object).
    /// `None` = the error object `{"error": name, "cause": cause}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Template>,
}

fn default_interval() -> f64 {
    1.0
}
fn default_max_attempts() -> u32 {
    3
}
fn default_backoff() -> f64 {
    2.0
}
fn is_false(b: &bool) -> bool {
    !*b
}

/// A problem found while checking a flow, with the path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DefinitionIssue {
    /// Field path, for example `root.states[2].next`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for DefinitionIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl Flow {
    /// Builds the name indexes and checks the structure (unique names, existing targets,
    /// non-empty scopes). Returns every problem found, each with its field path.
    pub fn prepare(&mut self) -> Result<(), Vec<DefinitionIssue>> {
        let mut issues = Vec::new();
        if self.name.is_empty() {
            issues.push(issue("name", "must not be empty"));
        }
        if let Some(t) = self.timeout_seconds {
            if !(t.is_finite() && t > 0.0) {
                issues.push(issue("timeout_seconds", "must be a positive number"));
            }
        }
        self.root.prepare("root", &mut issues);
        if issues.is_empty() {
            Ok(())
        } else {
            Err(issues)
        }
    }
}

fn issue(path: &str, message: impl Into<String>) -> DefinitionIssue {
    DefinitionIssue {
        path: path.to_string(),
        message: message.into(),
    }
}

impl Scope {
    /// Looks a state up by name.
    pub fn state(&self, name: &str) -> Option<&State> {
        self.index.get(name).map(|&i| &self.states[i])
    }

    fn prepare(&mut self, path: &str, issues: &mut Vec<DefinitionIssue>) {
        self.index.clear();
        if self.states.is_empty() {
            issues.push(issue(
                &format!("{path}.states"),
                "must contain at least one state",
            ));
        }
        for s in self.states.iter_mut() {
            s.label = crate::model::event::StateLabel::from(s.name.as_str());
        }
        for (i, s) in self.states.iter().enumerate() {
            if s.name.is_empty() {
                issues.push(issue(
                    &format!("{path}.states[{i}].name"),
                    "must not be empty",
                ));
            } else if self.index.insert(s.name.clone(), i).is_some() {
                issues.push(issue(
                    &format!("{path}.states[{i}].name"),
                    format!("duplicate state name '{}' in this scope", s.name),
                ));
            }
        }
        if !self.states.is_empty() && !self.index.contains_key(&self.start_at) {
            issues.push(issue(
                &format!("{path}.start_at"),
                format!("state '{}' does not exist in this scope", self.start_at),
            ));
        }
        let index = self.index.clone();
        let known = |name: &str| index.contains_key(name);
        for (i, s) in self.states.iter_mut().enumerate() {
            let sp = format!("{path}.states[{i}]");
            if let Some(n) = &s.next {
                if !known(n) {
                    issues.push(issue(
                        &format!("{sp}.next"),
                        format!("state '{n}' does not exist in this scope"),
                    ));
                }
                if s.end {
                    issues.push(issue(
                        &format!("{sp}.end"),
                        "a state cannot have both next and end",
                    ));
                }
            }
            for (j, c) in s.catch.iter().enumerate() {
                if !known(&c.next) {
                    issues.push(issue(
                        &format!("{sp}.catch[{j}].next"),
                        format!("state '{}' does not exist in this scope", c.next),
                    ));
                }
                if c.errors.is_empty() {
                    issues.push(issue(
                        &format!("{sp}.catch[{j}].errors"),
                        "must name at least one error",
                    ));
                }
            }
            for (j, r) in s.retry.iter().enumerate() {
                let rp = format!("{sp}.retry[{j}]");
                if r.errors.is_empty() {
                    issues.push(issue(
                        &format!("{rp}.errors"),
                        "must name at least one error",
                    ));
                }
                if !(r.interval_seconds.is_finite() && r.interval_seconds >= 0.0) {
                    issues.push(issue(
                        &format!("{rp}.interval_seconds"),
                        "must be a non-negative number",
                    ));
                }
                if !(r.backoff_rate.is_finite() && r.backoff_rate >= 1.0) {
                    issues.push(issue(&format!("{rp}.backoff_rate"), "must be at least 1.0"));
                }
                if let Some(m) = r.max_interval_seconds {
                    if !(m.is_finite() && m >= 0.0) {
                        issues.push(issue(
                            &format!("{rp}.max_interval_seconds"),
                            "must be a non-negative number",
                        ));
                    }
                }
            }
            match &mut s.kind {
                StateKind::Choice(c) => {
                    if c.rules.is_empty() && c.default.is_none() {
                        issues.push(issue(
                            &format!("{sp}.rules"),
                            "a choice needs at least one rule or a default",
                        ));
                    }
                    for (j, r) in c.rules.iter_mut().enumerate() {
                        prepare_target(&mut r.target, &format!("{sp}.rules[{j}]"), &known, issues);
                    }
                    if let Some(d) = &mut c.default {
                        prepare_target(d, &format!("{sp}.default"), &known, issues);
                    }
                }
                StateKind::Parallel(p) => {
                    if p.branches.is_empty() {
                        issues.push(issue(
                            &format!("{sp}.branches"),
                            "must contain at least one branch",
                        ));
                    }
                    for (j, b) in p.branches.iter_mut().enumerate() {
                        b.prepare(&format!("{sp}.branches[{j}]"), issues);
                    }
                }
                StateKind::Map(m) => m.processor.prepare(&format!("{sp}.processor"), issues),
                StateKind::Task(t) => {
                    if t.resource.is_empty() {
                        issues.push(issue(&format!("{sp}.resource"), "must not be empty"));
                    }
                    if let Some(Amount::Fixed(v)) = t.timeout_seconds {
                        if !(v.is_finite() && v >= 0.0) {
                            issues.push(issue(
                                &format!("{sp}.timeout_seconds"),
                                "must be a non-negative number",
                            ));
                        }
                    }
                }
                StateKind::Wait(w) => {
                    let set = [
                        w.seconds.is_some(),
                        w.until.is_some(),
                        w.until_expr.is_some(),
                    ]
                    .iter()
                    .filter(|b| **b)
                    .count();
                    if set != 1 {
                        issues.push(issue(
                            &sp,
                            "a wait needs exactly one of seconds, until, until_expr",
                        ));
                    }
                    if let Some(Amount::Fixed(v)) = w.seconds {
                        if !(v.is_finite() && v >= 0.0) {
                            issues.push(issue(
                                &format!("{sp}.seconds"),
                                "must be a non-negative number",
                            ));
                        }
                    }
                    if let Some(ts) = &w.until {
                        if chrono::DateTime::parse_from_rfc3339(ts).is_err() {
                            issues.push(issue(
                                &format!("{sp}.until"),
                                format!("'{ts}' is not an RFC 3339 timestamp"),
                            ));
                        }
                    }
                }
                StateKind::Pass | StateKind::Succeed | StateKind::Fail(_) => {}
            }
        }
    }
}

fn prepare_target(
    target: &mut ChoiceTarget,
    path: &str,
    known: &dyn Fn(&str) -> bool,
    issues: &mut Vec<DefinitionIssue>,
) {
    match target {
        ChoiceTarget::Next(n) => {
            if !known(n) {
                issues.push(issue(
                    &format!("{path}.next"),
                    format!("state '{n}' does not exist in this scope"),
                ));
            }
        }
        ChoiceTarget::Steps(scope) => scope.prepare(&format!("{path}.steps"), issues),
    }
}
