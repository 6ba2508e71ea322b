//! Old FDL → canonical flow. The data model (spec §6.3) lowers onto scopes that accumulate a
//! local object: every step's output is shallow-merged into `$scope_local`, a step's input is
//! built from `$scope_input` and `$scope_local`, and a scope's output is its local (or its
//! `outputMappings`).

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use super::common::{
    apply_segments, at, describe, join, map_paths, object_node, retry_policies, subflow_arn,
    template_node, var_path, vendor_error_node, Cx, Fields, PathFn, RetryVocabulary,
};
use crate::dialects::alibaba::error_names;
use crate::model::expr::{parse, Expr, Node, Root, Segment, Syntax, Template, Var};
use crate::model::flow::{
    Amount, CatchPolicy, ChoiceRule, ChoiceSpec, ChoiceTarget, DefinitionIssue, FailSpec, Flow,
    MapSpec, ParallelSpec, RetryPolicy, Scope, State, StateKind, TaskMode, TaskSpec, WaitSpec,
    SUBFLOW_RESOURCE,
};

/// Accepted `version` values.
const VERSIONS: [&str; 3] = ["v1", "v1beta1", "v1.0"];

const TOP_FIELDS: &[&str] = &[
    "version",
    "type",
    "name",
    "description",
    "steps",
    "inputMappings",
    "outputMappings",
    "timeoutSeconds",
];

const PASS_FIELDS: &[&str] = &[
    "type",
    "name",
    "description",
    "end",
    "inputMappings",
    "outputMappings",
];
const TASK_FIELDS: &[&str] = &[
    "type",
    "name",
    "description",
    "end",
    "inputMappings",
    "outputMappings",
    "resourceArn",
    "action",
    "serviceParams",
    "pattern",
    "timeoutSeconds",
    "errorMappings",
    "retry",
    "catch",
];
const CHOICE_FIELDS: &[&str] = &[
    "type",
    "name",
    "description",
    "end",
    "inputMappings",
    "outputMappings",
    "choices",
    "default",
];
const PARALLEL_FIELDS: &[&str] = &[
    "type",
    "name",
    "description",
    "end",
    "inputMappings",
    "outputMappings",
    "branches",
    "errorMappings",
    "retry",
    "catch",
];
const FOREACH_FIELDS: &[&str] = &[
    "type",
    "name",
    "description",
    "end",
    "inputMappings",
    "outputMappings",
    "iterationMapping",
    "steps",
    "maxConcurrency",
    "errorMappings",
    "retry",
    "catch",
];
const WAIT_FIELDS: &[&str] = &[
    "type",
    "name",
    "description",
    "end",
    "inputMappings",
    "outputMappings",
    "duration",
    "timestamp",
];
const FAIL_FIELDS: &[&str] = &[
    "type",
    "name",
    "description",
    "end",
    "inputMappings",
    "outputMappings",
    "error",
    "cause",
];

/// Most branches of a parallel step (spec §8).
const MAX_BRANCHES: usize = 100;
/// Longest wait, in seconds (2 days, spec §8).
const MAX_WAIT_SECONDS: f64 = 172_800.0;
/// Most concurrent foreach iterations (the service's cap).
const MAX_FOREACH_CONCURRENCY: u32 = 100;

/// The member under which an inline choice branch hands its local to the choice step, so
/// that the choice can tell "a branch ran" (its local is the branch's output) from "a `goto`
/// was taken" (its local is `{}`).
pub(crate) const CHOICE_LOCAL: &str = "__fdl_choice_local";

/// Step `inputMappings`: `$input` = the parent scope's input, `$local` = the parent's local.
const IN_MAP: Syntax = Syntax {
    roots: &[
        ("input", Var::ScopeInput),
        ("local", Var::ScopeLocal),
        ("context", Var::Context),
    ],
    bare_dollar: Some(Var::ScopeInput),
};

/// Step `outputMappings`: `$input` = the step's input, `$local` = the step's local.
const OUT_MAP: Syntax = Syntax {
    roots: &[
        ("input", Var::Input),
        ("local", Var::Result),
        ("context", Var::Context),
    ],
    bare_dollar: Some(Var::Input),
};

/// Flow and branch `outputMappings`: `$input` = the scope's input, `$local` = its local.
const SCOPE_OUT: Syntax = Syntax {
    roots: &[
        ("input", Var::Input),
        ("local", Var::ScopeLocal),
        ("context", Var::Context),
    ],
    bare_dollar: Some(Var::Input),
};

/// Flow `inputMappings`: `$input` = the execution input.
const FLOW_IN: Syntax = Syntax {
    roots: &[("input", Var::Input), ("context", Var::Context)],
    bare_dollar: Some(Var::Input),
};

/// Paths into a step's own input: choice conditions, foreach collections, wait durations and
/// timestamps, `serviceParams` values (`$.a`, `$`, also `$input.a`).
const STEP_PATH: Syntax = Syntax {
    roots: &[("input", Var::Input), ("context", Var::Context)],
    bare_dollar: Some(Var::Input),
};

/// `errorMappings`: `$input` = the step's input, `$local` = the caught error `{error, cause}`.
const ERROR_MAP: Syntax = Syntax {
    roots: &[
        ("input", Var::Input),
        ("local", Var::Result),
        ("context", Var::Context),
    ],
    bare_dollar: Some(Var::Input),
};

/// What `$local` means in a step's `outputMappings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Local {
    /// The kind's result (task, parallel, foreach).
    Result,
    /// Always `{}` (pass, wait, succeed, fail, a choice without inline branches).
    Empty,
    /// The output of the inline branch that ran, `{}` after a `goto` (choice).
    ChoiceBranch,
}

pub(super) fn compile(name: &str, doc: &Value) -> Result<Flow, Vec<DefinitionIssue>> {
    let mut cx = Cx::default();
    let Some(top) = Fields::of(&mut cx, doc, "", "an FDL definition") else {
        return Err(cx.issues);
    };
    top.only(&mut cx, TOP_FIELDS, "an FDL flow");
    match top.get("type") {
        None => cx.issue("type", "is required (type: flow)"),
        Some(Value::String(s)) if s == "flow" => {}
        Some(other) => cx.issue("type", format!("must be 'flow', not {}", describe(other))),
    }
    match top.get("version") {
        None => cx.issue("version", "is required (v1, v1beta1 or v1.0)"),
        Some(Value::String(s)) if VERSIONS.contains(&s.as_str()) => {}
        Some(other) => cx.issue(
            "version",
            format!("must be one of v1, v1beta1, v1.0, not {}", describe(other)),
        ),
    }
    let doc_name = top.str(&mut cx, "name").unwrap_or("");
    let flow_name = if name.is_empty() { doc_name } else { name };
    if flow_name.is_empty() {
        cx.issue(
            "name",
            "the flow needs a name: none was given to the API and the definition has none",
        );
    }
    let input = top
        .get("inputMappings")
        .map(|v| mappings(&mut cx, v, "inputMappings", &FLOW_IN, &mut base_rewrite));
    let mut root = match top.get("steps") {
        Some(v) => steps(&mut cx, v, "steps"),
        None => {
            cx.issue("steps", "is required");
            empty_scope()
        }
    };
    if let Some(v) = top.get("outputMappings") {
        root.output = Some(mappings(
            &mut cx,
            v,
            "outputMappings",
            &SCOPE_OUT,
            &mut base_rewrite,
        ));
    }
    let timeout_seconds = top.number(&mut cx, "timeoutSeconds");
    if let Some(t) = timeout_seconds {
        if t <= 0.0 {
            cx.issue("timeoutSeconds", "must be a positive number of seconds");
        }
    }
    let flow = Flow {
        name: flow_name.to_string(),
        mode: Default::default(),
        input,
        root,
        timeout_seconds,
        constants: Value::Null,
    };
    cx.finish(flow)
}

fn empty_scope() -> Scope {
    Scope {
        start_at: String::new(),
        states: Vec::new(),
        accumulate_local: true,
        output: Some(local_template()),
        index: Default::default(),
    }
}

/// `$scope_local`: the default output of a flow, branch or iteration.
fn local_template() -> Template {
    Template::Expr(Expr::from_node(var_path(Var::ScopeLocal, &[])))
}

/// `$scope_input` merged with `$scope_local`: the default input of a step.
fn default_input() -> Template {
    Template::merge([
        Template::Expr(Expr::from_node(var_path(Var::ScopeInput, &[]))),
        Template::Expr(Expr::from_node(var_path(Var::ScopeLocal, &[]))),
    ])
}

/// `$result.__fdl_choice_local | {}`: a choice's local.
fn choice_local_node() -> Node {
    Node::Coalesce(
        Box::new(var_path(Var::Result, &[CHOICE_LOCAL])),
        Box::new(Node::Literal(json!({}))),
    )
}

/// The vendor view of `$context` in old FDL, over the canonical context.
fn context_node() -> Node {
    object_node(vec![
        ("execution", var_path(Var::Context, &["execution"])),
        ("flow", var_path(Var::Context, &["flow"])),
        (
            "task",
            object_node(vec![(
                "token",
                var_path(Var::Context, &["state", "task_token"]),
            )]),
        ),
        (
            "step",
            object_node(vec![
                ("eventId", var_path(Var::Context, &["state", "event_id"])),
                ("name", var_path(Var::Context, &["state", "name"])),
            ]),
        ),
    ])
}

/// The caught error as old FDL shows it (`$local` in `errorMappings`), with its Alibaba name.
fn error_object_node() -> Node {
    object_node(vec![
        (
            "error",
            vendor_error_node(var_path(Var::Result, &["error"])),
        ),
        ("cause", var_path(Var::Result, &["cause"])),
    ])
}

/// Rewrites `$context` paths to the canonical context; other paths stay.
fn base_rewrite(var: Var, segs: Vec<Segment>) -> Result<Node, String> {
    match var {
        Var::Context => apply_segments(context_node(), segs, true).map_err(|e| {
            format!(
                "$context: {e} (known: $context.execution.*, $context.flow.*, \
                 $context.task.token, $context.step.eventId, $context.step.name)"
            )
        }),
        v => Ok(Node::Path {
            root: Root::Var(v),
            segments: segs,
        }),
    }
}

/// `$local` in a step's `outputMappings`.
fn out_rewrite(local: Local, var: Var, segs: Vec<Segment>) -> Result<Node, String> {
    match (var, local) {
        (Var::Result, Local::Result) => Ok(Node::Path {
            root: Root::Var(Var::Result),
            segments: segs,
        }),
        (Var::Result, Local::Empty) => apply_segments(Node::Literal(json!({})), segs, false),
        (Var::Result, Local::ChoiceBranch) if segs.is_empty() => Ok(choice_local_node()),
        (Var::Result, Local::ChoiceBranch) => {
            let mut segments = vec![Segment::Field(CHOICE_LOCAL.to_string())];
            segments.extend(segs);
            Ok(Node::Path {
                root: Root::Var(Var::Result),
                segments,
            })
        }
        (other, _) => base_rewrite(other, segs),
    }
}

/// Parses a vendor expression and rewrites its paths.
fn expression(text: &str, syntax: &Syntax, rw: &mut PathFn<'_>) -> Result<Expr, String> {
    let e = parse(text, syntax).map_err(|e| format!("invalid expression {text:?}: {e}"))?;
    let node =
        map_paths(e.node().clone(), rw).map_err(|m| format!("invalid expression {text:?}: {m}"))?;
    Ok(Expr::from_node(node))
}

/// One mapping `source`: a `$` expression, or a constant (any other string, number, boolean,
/// object, list).
fn source(cx: &mut Cx, v: &Value, path: &str, syntax: &Syntax, rw: &mut PathFn<'_>) -> Template {
    match v {
        Value::String(s) if s.trim_start().starts_with('$') => match expression(s, syntax, rw) {
            Ok(e) => Template::Expr(e),
            Err(m) => {
                cx.issue(path, m);
                Template::Value(Value::Null)
            }
        },
        other => Template::Value(other.clone()),
    }
}

/// A list of `{target, source}` mappings → an object template (later targets win).
fn mappings(cx: &mut Cx, v: &Value, path: &str, syntax: &Syntax, rw: &mut PathFn<'_>) -> Template {
    let Value::Array(items) = v else {
        cx.issue(path, "must be a list of {target, source} mappings");
        return Template::Value(json!({}));
    };
    let mut members = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let p = at(path, i);
        let Some(f) = Fields::of(cx, item, &p, "a mapping") else {
            continue;
        };
        f.only(cx, &["target", "source"], "a mapping");
        let target = f.req_str(cx, "target");
        let src = match f.get("source") {
            Some(s) => source(cx, s, &f.path_of("source"), syntax, rw),
            None => {
                cx.issue(f.path_of("source"), "is required");
                continue;
            }
        };
        if let Some(t) = target {
            members.retain(|(k, _): &(String, Template)| k != t);
            members.push((t.to_string(), src));
        }
    }
    Template::object(members)
}

/// A steps list → a scope whose output is its local.
fn steps(cx: &mut Cx, v: &Value, path: &str) -> Scope {
    let Value::Array(list) = v else {
        cx.issue(path, "must be a list of steps");
        return empty_scope();
    };
    if list.is_empty() {
        cx.issue(path, "must contain at least one step");
    }
    let names: Vec<Option<String>> = list
        .iter()
        .map(|s| {
            s.get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.trim().is_empty())
                .map(str::to_string)
        })
        .collect();
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, n) in names.iter().enumerate() {
        if let Some(n) = n {
            if let Some(j) = first.get(n.as_str()) {
                cx.issue(
                    format!("{}.name", at(path, i)),
                    format!(
                        "duplicate step name '{n}' ({} has the same name); names must be \
                         unique within a steps list",
                        at(path, *j)
                    ),
                );
            } else {
                first.insert(n, i);
            }
        }
    }
    let siblings: HashSet<String> = names.iter().flatten().cloned().collect();
    let mut states = Vec::with_capacity(list.len());
    for (i, s) in list.iter().enumerate() {
        let following = names.get(i + 1).cloned().flatten();
        let last = i + 1 == list.len();
        if let Some(state) = step(cx, s, &at(path, i), &siblings, following, last) {
            states.push(state);
        }
    }
    Scope {
        start_at: names.first().cloned().flatten().unwrap_or_default(),
        states,
        accumulate_local: true,
        output: Some(local_template()),
        index: Default::default(),
    }
}

fn check_sibling(cx: &mut Cx, siblings: &HashSet<String>, target: &str, path: String) {
    if !siblings.contains(target) {
        cx.issue(
            path,
            format!(
                "'{target}' is not a step of the same steps list (goto can only jump to a \
                 sibling step)"
            ),
        );
    }
}

fn step(
    cx: &mut Cx,
    v: &Value,
    path: &str,
    siblings: &HashSet<String>,
    following: Option<String>,
    last: bool,
) -> Option<State> {
    let f = Fields::of(cx, v, path, "a step")?;
    let ty = f.req_str(cx, "type");
    let name = f.req_str(cx, "name").map(str::to_string);
    let ty = ty?;
    let allowed = match ty {
        "pass" | "succeed" => PASS_FIELDS,
        "task" => TASK_FIELDS,
        "choice" => CHOICE_FIELDS,
        "parallel" => PARALLEL_FIELDS,
        "foreach" => FOREACH_FIELDS,
        "wait" => WAIT_FIELDS,
        "fail" => FAIL_FIELDS,
        other => {
            cx.issue(
                f.path_of("type"),
                format!(
                    "unknown step type '{other}' (expected one of pass, task, choice, \
                     parallel, foreach, wait, succeed, fail)"
                ),
            );
            return None;
        }
    };
    f.only(cx, allowed, &format!("a {ty} step"));
    let end = f.bool(cx, "end");
    let input = match f.get("inputMappings") {
        Some(v) => mappings(
            cx,
            v,
            &f.path_of("inputMappings"),
            &IN_MAP,
            &mut base_rewrite,
        ),
        None => default_input(),
    };
    let input_node = template_node(&input);
    let mut has_inline_branch = false;
    let kind = match ty {
        "pass" => StateKind::Pass,
        "succeed" => StateKind::Succeed,
        "fail" => StateKind::Fail(FailSpec {
            error: f
                .str(cx, "error")
                .map(|e| error_names::to_canonical(e).into_owned()),
            cause: f.str(cx, "cause").map(str::to_string),
        }),
        "wait" => StateKind::Wait(wait(cx, &f)),
        "task" => StateKind::Task(task(cx, &f, &input, &input_node)),
        "choice" => {
            let (spec, inline) = choice(cx, &f, siblings);
            has_inline_branch = inline;
            StateKind::Choice(spec)
        }
        "parallel" => StateKind::Parallel(parallel(cx, &f)),
        "foreach" => StateKind::Map(foreach(cx, &f)),
        _ => unreachable!("checked above"),
    };
    let handles_errors = matches!(ty, "task" | "parallel" | "foreach");
    let retry = if handles_errors {
        retries(cx, &f)
    } else {
        Vec::new()
    };
    let catch = if handles_errors {
        catches(cx, &f, siblings, &input_node)
    } else {
        Vec::new()
    };
    let local = match ty {
        "task" | "parallel" | "foreach" => Local::Result,
        "choice" if has_inline_branch => Local::ChoiceBranch,
        _ => Local::Empty,
    };
    let output = match f.get("outputMappings") {
        Some(v) => Some(mappings(
            cx,
            v,
            &f.path_of("outputMappings"),
            &OUT_MAP,
            &mut |var, segs| out_rewrite(local, var, segs),
        )),
        None => match (ty, local) {
            ("task", _) | ("fail", _) => None,
            (_, Local::ChoiceBranch) => Some(Template::Expr(Expr::from_node(choice_local_node()))),
            _ => Some(Template::Value(json!({}))),
        },
    };
    let terminal = matches!(ty, "succeed" | "fail");
    let (next, end) = if terminal {
        (None, false)
    } else if end || last || following.is_none() {
        (None, true)
    } else {
        (following, false)
    };
    Some(State {
        label: Default::default(),
        name: name?,
        kind,
        input: Some(input),
        output,
        global: None,
        next,
        end,
        retry,
        catch,
    })
}

fn task(cx: &mut Cx, f: &Fields<'_>, input: &Template, input_node: &Node) -> TaskSpec {
    let arn = f.str(cx, "resourceArn");
    let action = f.str(cx, "action");
    let resource = match (arn, action) {
        (Some(r), None) | (None, Some(r)) if !r.trim().is_empty() => r.trim().to_string(),
        (Some(_), Some(_)) => {
            cx.issue(
                f.path_of("action"),
                "give either resourceArn or action, not both",
            );
            String::new()
        }
        (None, None) if !f.has("resourceArn") && !f.has("action") => {
            cx.issue(
                f.path_of("resourceArn"),
                "a task step needs resourceArn (or action)",
            );
            String::new()
        }
        (Some(_), None) => {
            cx.issue(f.path_of("resourceArn"), "must not be empty");
            String::new()
        }
        (None, Some(_)) => {
            cx.issue(f.path_of("action"), "must not be empty");
            String::new()
        }
        // A wrongly typed field, already reported.
        (None, None) => String::new(),
    };
    let mode = match f.str(cx, "pattern") {
        None | Some("requestResponse") => TaskMode::RequestResponse,
        Some("sync") => TaskMode::Sync,
        Some("waitForCallback") => TaskMode::WaitForCallback,
        Some(other) => {
            cx.issue(
                f.path_of("pattern"),
                format!(
                    "unknown pattern '{other}' (expected requestResponse, sync or \
                     waitForCallback)"
                ),
            );
            TaskMode::RequestResponse
        }
    };
    // The engine binds the task token only while it builds the event sent to the function,
    // so mappings that read `$context` are evaluated again there.
    let reads_context = input.references(Var::Context);
    let subst = reads_context.then_some(input_node);
    let target = if arn.is_some() {
        subflow_arn(&resource).map(SubFlow::Arn)
    } else if resource.eq_ignore_ascii_case(START_EXECUTION) {
        Some(SubFlow::Action)
    } else {
        None
    };
    if let Some(target) = target {
        let parameters = subflow_parameters(cx, f, target, subst);
        let result_selector = (mode == TaskMode::RequestResponse).then(start_answer);
        return TaskSpec {
            resource: SUBFLOW_RESOURCE.into(),
            parameters: Some(parameters),
            mode,
            result_selector,
            timeout_seconds: timeout(cx, f),
            fail_when: None,
            fail_error: None,
            result_must_be_object: true,
        };
    }
    let parameters = match f.get("serviceParams") {
        Some(v @ Value::Object(_)) => {
            Some(service_params(cx, v, &f.path_of("serviceParams"), subst))
        }
        Some(other) => {
            cx.issue(
                f.path_of("serviceParams"),
                format!("must be a mapping, not {}", describe(other)),
            );
            None
        }
        None if reads_context => Some(input.clone()),
        None => None,
    };
    TaskSpec {
        resource: resource.into(),
        parameters,
        mode,
        result_selector: None,
        timeout_seconds: timeout(cx, f),
        fail_when: None,
        fail_error: None,
        result_must_be_object: true,
    }
}

/// A task's `timeoutSeconds` (0 = none).
fn timeout(cx: &mut Cx, f: &Fields<'_>) -> Option<Amount> {
    f.number(cx, "timeoutSeconds").and_then(|t| {
        if t < 0.0 {
            cx.issue(f.path_of("timeoutSeconds"), "must not be negative");
            None
        } else {
            (t > 0.0).then_some(Amount::Fixed(t))
        }
    })
}

/// The service action that starts a sub-flow (`action: fnf:StartExecution`).
const START_EXECUTION: &str = "fnf:StartExecution";

/// How a task names the flow it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum SubFlow {
    /// `resourceArn: acs:fnf:{region}:{account}:flow/{name}`.
    Arn(String),
    /// `action: fnf:StartExecution` with `serviceParams.FlowName`.
    Action,
}

/// The start answer of a request/response sub-flow task as `fnf:StartExecution` returns it:
/// `{FlowName, ExecutionName, RequestId}` over the canonical `{flow, execution_name,
/// execution_id}` (the execution id stands in for the request id).
fn start_answer() -> Template {
    Template::object(vec![
        ("FlowName".to_string(), result_member("flow")),
        ("ExecutionName".to_string(), result_member("execution_name")),
        ("RequestId".to_string(), result_member("execution_id")),
    ])
}

fn result_member(m: &str) -> Template {
    Template::Expr(Expr::from_node(var_path(Var::Result, &[m])))
}

/// The canonical sub-flow event `{"flow", "input", "execution_name"?}` of a sub-flow task:
/// `FlowName` (only with `action`), `ExecutionName` and `Input` from `serviceParams` (constants
/// or `$`/`$.path` into the step input); without `Input` the child gets the step input.
fn subflow_parameters(
    cx: &mut Cx,
    f: &Fields<'_>,
    target: SubFlow,
    subst: Option<&Node>,
) -> Template {
    let path = f.path_of("serviceParams");
    let params = match f.get("serviceParams") {
        None => None,
        Some(v) => Fields::of(cx, v, &path, "serviceParams"),
    };
    let allowed: &[&str] = match target {
        SubFlow::Arn(_) => &["Input", "ExecutionName"],
        SubFlow::Action => &["FlowName", "ExecutionName", "Input"],
    };
    let what = match target {
        SubFlow::Arn(_) => {
            "the serviceParams of a sub-flow task (the flow is named by resourceArn)"
        }
        SubFlow::Action => "the serviceParams of fnf:StartExecution",
    };
    let param = |cx: &mut Cx, key: &str| -> Option<Template> {
        let p = params.as_ref()?;
        let v = p.get(key)?;
        Some(service_params(cx, v, &p.path_of(key), subst))
    };
    let flow = match &target {
        SubFlow::Arn(name) => Template::Value(json!(name)),
        SubFlow::Action => {
            if params.as_ref().is_none_or(|p| !p.has("FlowName")) {
                cx.issue(
                    join(&path, "FlowName"),
                    "is required: fnf:StartExecution needs the name of the flow to start",
                );
            }
            param(cx, "FlowName").unwrap_or(Template::Value(Value::Null))
        }
    };
    let execution_name = param(cx, "ExecutionName");
    let child_input = param(cx, "Input").unwrap_or_else(|| match subst {
        Some(n) => Template::Expr(Expr::from_node(n.clone())),
        None => Template::Expr(Expr::from_node(var_path(Var::Input, &[]))),
    });
    if let Some(p) = &params {
        p.only(cx, allowed, what);
    }
    let mut members = vec![
        ("flow".to_string(), flow),
        ("input".to_string(), child_input),
    ];
    if let Some(n) = execution_name {
        members.push(("execution_name".to_string(), n));
    }
    Template::object(members)
}

/// `serviceParams`: constants, with `$` / `$.path` strings read from the step input.
fn service_params(cx: &mut Cx, v: &Value, path: &str, subst: Option<&Node>) -> Template {
    match v {
        Value::Object(m) => Template::object(
            m.iter()
                .map(|(k, c)| {
                    (
                        k.clone(),
                        service_params(cx, c, &super::common::join(path, k), subst),
                    )
                })
                .collect(),
        ),
        Value::Array(items) => Template::array(
            items
                .iter()
                .enumerate()
                .map(|(i, c)| service_params(cx, c, &at(path, i), subst))
                .collect(),
        ),
        Value::String(s) if s.trim_start().starts_with('$') => {
            let mut rw = |var: Var, segs: Vec<Segment>| match (var, subst) {
                (Var::Input, Some(n)) => apply_segments(n.clone(), segs, false),
                (other, _) => base_rewrite(other, segs),
            };
            match expression(s, &STEP_PATH, &mut rw) {
                Ok(e) => Template::Expr(e),
                Err(m) => {
                    cx.issue(path, m);
                    Template::Value(Value::Null)
                }
            }
        }
        other => Template::Value(other.clone()),
    }
}

fn wait(cx: &mut Cx, f: &Fields<'_>) -> WaitSpec {
    let mut spec = WaitSpec::default();
    match (f.get("duration"), f.get("timestamp")) {
        (Some(_), Some(_)) | (None, None) => cx.issue(
            f.path.clone(),
            "a wait step needs exactly one of duration and timestamp",
        ),
        (Some(v), None) => {
            let p = f.path_of("duration");
            match v {
                Value::String(s) if s.trim_start().starts_with('$') => {
                    match expression(s, &STEP_PATH, &mut base_rewrite) {
                        Ok(e) => spec.seconds = Some(Amount::Expr(e)),
                        Err(m) => cx.issue(p, m),
                    }
                }
                _ => {
                    if let Some(n) = f.number_in(cx, "duration", 0.0, MAX_WAIT_SECONDS) {
                        spec.seconds = Some(Amount::Fixed(n));
                    }
                }
            }
        }
        (None, Some(v)) => {
            let p = f.path_of("timestamp");
            match v {
                Value::String(s) if s.trim_start().starts_with('$') => {
                    match expression(s, &STEP_PATH, &mut base_rewrite) {
                        Ok(e) => spec.until_expr = Some(e),
                        Err(m) => cx.issue(p, m),
                    }
                }
                Value::String(s) => {
                    if chrono::DateTime::parse_from_rfc3339(s.trim()).is_err() {
                        cx.issue(
                            p,
                            format!("'{s}' is not an RFC 3339 timestamp (or a $.path)"),
                        );
                    } else {
                        spec.until = Some(s.trim().to_string());
                    }
                }
                other => cx.issue(
                    p,
                    format!(
                        "must be an RFC 3339 timestamp or a $.path, not {}",
                        describe(other)
                    ),
                ),
            }
        }
    }
    spec
}

/// A choice target: `goto` a sibling or inline `steps`. Sets `inline` for inline steps.
fn target(
    cx: &mut Cx,
    f: &Fields<'_>,
    siblings: &HashSet<String>,
    inline: &mut bool,
) -> Option<ChoiceTarget> {
    match (f.get("goto"), f.get("steps")) {
        (Some(_), Some(_)) => {
            cx.issue(f.path.clone(), "give either goto or steps, not both");
            None
        }
        (None, None) => {
            cx.issue(
                f.path_of("goto"),
                "is required (or steps): where control goes when this entry is chosen",
            );
            None
        }
        (Some(_), None) => {
            let g = f.req_str(cx, "goto")?;
            check_sibling(cx, siblings, g, f.path_of("goto"));
            Some(ChoiceTarget::Next(g.to_string()))
        }
        (None, Some(v)) => {
            let mut scope = steps(cx, v, &f.path_of("steps"));
            scope.output = Some(Template::object(vec![(
                CHOICE_LOCAL.to_string(),
                local_template(),
            )]));
            *inline = true;
            Some(ChoiceTarget::Steps(Box::new(scope)))
        }
    }
}

fn choice(cx: &mut Cx, f: &Fields<'_>, siblings: &HashSet<String>) -> (ChoiceSpec, bool) {
    let mut inline = false;
    let mut rules = Vec::new();
    let list = f.list(cx, "choices");
    if let Some(list) = list {
        for (j, c) in list.iter().enumerate() {
            let p = at(&f.path_of("choices"), j);
            let Some(cf) = Fields::of(cx, c, &p, "a choice") else {
                continue;
            };
            cf.only(cx, &["condition", "goto", "steps"], "a choice");
            let condition = match cf.get("condition") {
                None => {
                    cx.issue(cf.path_of("condition"), "is required");
                    None
                }
                Some(Value::String(s)) => match expression(s, &STEP_PATH, &mut base_rewrite) {
                    Ok(e) => Some(e),
                    Err(m) => {
                        cx.issue(cf.path_of("condition"), m);
                        None
                    }
                },
                Some(Value::Bool(b)) => Some(Expr::from_node(Node::Literal(Value::Bool(*b)))),
                Some(other) => {
                    cx.issue(
                        cf.path_of("condition"),
                        format!("must be a condition expression, not {}", describe(other)),
                    );
                    None
                }
            };
            let t = target(cx, &cf, siblings, &mut inline);
            if let (Some(condition), Some(target)) = (condition, t) {
                rules.push(ChoiceRule { condition, target });
            }
        }
    }
    let default = f.get("default").and_then(|d| {
        let df = Fields::of(cx, d, &f.path_of("default"), "default")?;
        df.only(cx, &["goto", "steps"], "a choice default");
        target(cx, &df, siblings, &mut inline)
    });
    if list.is_none_or(|l| l.is_empty()) && !f.has("default") {
        cx.issue(
            f.path_of("choices"),
            "a choice step needs at least one entry in choices (or a default)",
        );
    }
    (ChoiceSpec { rules, default }, inline)
}

fn parallel(cx: &mut Cx, f: &Fields<'_>) -> ParallelSpec {
    let mut branches = Vec::new();
    if !f.has("branches") {
        cx.issue(f.path_of("branches"), "is required");
    }
    if let Some(list) = f.list(cx, "branches") {
        if list.is_empty() {
            cx.issue(f.path_of("branches"), "must contain at least one branch");
        }
        if list.len() > MAX_BRANCHES {
            cx.issue(
                f.path_of("branches"),
                format!(
                    "has {} branches; at most {MAX_BRANCHES} are allowed",
                    list.len()
                ),
            );
        }
        for (j, b) in list.iter().enumerate() {
            let p = at(&f.path_of("branches"), j);
            let Some(bf) = Fields::of(cx, b, &p, "a branch") else {
                continue;
            };
            bf.only(cx, &["steps", "outputMappings"], "a parallel branch");
            let mut scope = match bf.get("steps") {
                Some(v) => steps(cx, v, &bf.path_of("steps")),
                None => {
                    cx.issue(bf.path_of("steps"), "is required");
                    empty_scope()
                }
            };
            if let Some(v) = bf.get("outputMappings") {
                scope.output = Some(mappings(
                    cx,
                    v,
                    &bf.path_of("outputMappings"),
                    &SCOPE_OUT,
                    &mut base_rewrite,
                ));
            }
            branches.push(scope);
        }
    }
    ParallelSpec {
        branches,
        max_concurrency: None,
    }
}

fn foreach(cx: &mut Cx, f: &Fields<'_>) -> MapSpec {
    let mut items = Expr::from_node(Node::Literal(json!([])));
    let mut item_key = "item".to_string();
    let mut index_key = None;
    match f.get("iterationMapping") {
        None => cx.issue(f.path_of("iterationMapping"), "is required"),
        Some(v) => {
            if let Some(im) = Fields::of(cx, v, &f.path_of("iterationMapping"), "iterationMapping")
            {
                im.only(cx, &["collection", "item", "index"], "an iterationMapping");
                if let Some(c) = im.req_str(cx, "collection") {
                    if !c.trim_start().starts_with('$') {
                        cx.issue(
                            im.path_of("collection"),
                            format!("'{c}' is not a path into the step input such as $.items"),
                        );
                    } else {
                        match expression(c, &STEP_PATH, &mut base_rewrite) {
                            Ok(e) => items = e,
                            Err(m) => cx.issue(im.path_of("collection"), m),
                        }
                    }
                }
                if let Some(i) = im.req_str(cx, "item") {
                    item_key = i.to_string();
                }
                index_key = im.str(cx, "index").map(str::to_string);
            }
        }
    }
    let processor = match f.get("steps") {
        Some(v) => steps(cx, v, &f.path_of("steps")),
        None => {
            cx.issue(f.path_of("steps"), "is required");
            empty_scope()
        }
    };
    let mut added = vec![(
        item_key,
        Template::Expr(Expr::from_node(var_path(Var::Item, &[]))),
    )];
    if let Some(k) = index_key {
        added.push((
            k,
            Template::Expr(Expr::from_node(var_path(Var::Index, &[]))),
        ));
    }
    let item = Template::merge([
        Template::Expr(Expr::from_node(var_path(Var::Input, &[]))),
        Template::object(added),
    ]);
    MapSpec {
        items,
        item: Some(item),
        processor: Box::new(processor),
        max_concurrency: f.count(cx, "maxConcurrency", MAX_FOREACH_CONCURRENCY),
    }
}

fn retries(cx: &mut Cx, f: &Fields<'_>) -> Vec<RetryPolicy> {
    retry_policies(
        cx,
        f,
        &RetryVocabulary {
            list: "retry",
            what: "a retry policy",
            allowed: &[
                "errors",
                "intervalSeconds",
                "maxAttempts",
                "multiplier",
                "maxIntervalSeconds",
            ],
            errors: "errors",
            interval: "intervalSeconds",
            max_attempts: "maxAttempts",
            backoff: "multiplier",
            max_interval: "maxIntervalSeconds",
            default_backoff: 2.0,
        },
    )
}

fn catches(
    cx: &mut Cx,
    f: &Fields<'_>,
    siblings: &HashSet<String>,
    input_node: &Node,
) -> Vec<CatchPolicy> {
    let output = match f.get("errorMappings") {
        Some(v) => {
            if !f.has("catch") {
                cx.issue(
                    f.path_of("errorMappings"),
                    "is only used together with catch",
                );
            }
            let mut rw = |var: Var, segs: Vec<Segment>| match var {
                Var::Input => apply_segments(input_node.clone(), segs, false),
                Var::Result => apply_segments(error_object_node(), segs, false),
                other => base_rewrite(other, segs),
            };
            mappings(cx, v, &f.path_of("errorMappings"), &ERROR_MAP, &mut rw)
        }
        None => Template::object(vec![
            (
                "error".to_string(),
                Template::Expr(Expr::from_node(vendor_error_node(var_path(
                    Var::Result,
                    &["error"],
                )))),
            ),
            (
                "cause".to_string(),
                Template::Expr(Expr::from_node(var_path(Var::Result, &["cause"]))),
            ),
        ]),
    };
    let Some(list) = f.list(cx, "catch") else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(list.len());
    for (j, c) in list.iter().enumerate() {
        let p = at(&f.path_of("catch"), j);
        let Some(cf) = Fields::of(cx, c, &p, "a catch policy") else {
            continue;
        };
        cf.only(cx, &["errors", "goto"], "a catch policy");
        let errors = cf.error_list(cx, "errors");
        let Some(goto) = cf.req_str(cx, "goto") else {
            continue;
        };
        check_sibling(cx, siblings, goto, cf.path_of("goto"));
        out.push(CatchPolicy {
            errors,
            condition: None,
            next: goto.to_string(),
            output: Some(output.clone()),
        });
    }
    out
}
