//! CloudFlow → canonical flow. States, scopes and constructors map almost one to one; the
//! work is in the expression rewrites (`$Context` to the canonical context, `$Output` to the
//! result as each state type presents it) and in the per-type default outputs.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use super::CLOUDFLOW;
use crate::dialects::alibaba::error_names;
use crate::dialects::alibaba::fdl::common::{
    apply_segments, at, describe, join, map_paths, object_node, retry_policies, subflow_arn,
    template_node, var_path, vendor_error_node, Cx, Fields, RetryVocabulary,
};
use crate::model::expr::{parse, Expr, Func, Node, Root, Segment, Template, Var};
use crate::model::flow::{
    Amount, CatchPolicy, ChoiceRule, ChoiceSpec, ChoiceTarget, DefinitionIssue, FailSpec, Flow,
    MapSpec, ParallelSpec, RetryPolicy, Scope, State, StateKind, TaskMode, TaskSpec, WaitSpec,
    SUBFLOW_RESOURCE,
};

const TOP_FIELDS: &[&str] = &[
    "Type",
    "SpecVersion",
    "Name",
    "StartAt",
    "States",
    "Description",
];
const SCOPE_FIELDS: &[&str] = &["StartAt", "States", "Description"];

const PASS_FIELDS: &[&str] = &[
    "Name",
    "Type",
    "Description",
    "InputConstructor",
    "OutputConstructor",
    "GlobalConstructor",
    "Next",
    "End",
];
const TASK_FIELDS: &[&str] = &[
    "Name",
    "Type",
    "Description",
    "InputConstructor",
    "OutputConstructor",
    "GlobalConstructor",
    "Next",
    "End",
    "Action",
    "TaskMode",
    "Parameters",
    "Timeout",
    "Timeout.$",
    "Retry",
    "Catch",
];
const CHOICE_FIELDS: &[&str] = &[
    "Name",
    "Type",
    "Description",
    "InputConstructor",
    "OutputConstructor",
    "GlobalConstructor",
    "Branches",
    "Default",
    // Reported with a dedicated message.
    "Next",
    "End",
];
const PARALLEL_FIELDS: &[&str] = &[
    "Name",
    "Type",
    "Description",
    "InputConstructor",
    "OutputConstructor",
    "GlobalConstructor",
    "Next",
    "End",
    "Branches",
    "Retry",
    "Catch",
];
const MAP_FIELDS: &[&str] = &[
    "Name",
    "Type",
    "Description",
    "InputConstructor",
    "OutputConstructor",
    "GlobalConstructor",
    "Next",
    "End",
    "ItemsPath",
    "Processor",
    "MaxConcurrency",
    "MaxConcuccency",
    "ItemConstructor",
    "ProcessorConfig",
    "Retry",
    "Catch",
    // Distributed mode, reported as unsupported.
    "ItemReader",
    "ItemBatcher",
    "ResultWriter",
    "MaxItems",
    "ToleratedFailurePercentage",
    "ToleratedFailureCount",
];
const DISTRIBUTED_ONLY: &[&str] = &[
    "ItemReader",
    "ItemBatcher",
    "ResultWriter",
    "ToleratedFailurePercentage",
    "ToleratedFailureCount",
];
const WAIT_FIELDS: &[&str] = &[
    "Name",
    "Type",
    "Description",
    "InputConstructor",
    "OutputConstructor",
    "GlobalConstructor",
    "Next",
    "End",
    "Seconds",
    "Seconds.$",
    "Timestamp",
    "Timestamp.$",
];
const SUCCEED_FIELDS: &[&str] = &[
    "Name",
    "Type",
    "Description",
    "InputConstructor",
    "OutputConstructor",
    "GlobalConstructor",
];
const FAIL_FIELDS: &[&str] = &[
    "Name",
    "Type",
    "Description",
    "InputConstructor",
    "OutputConstructor",
    "GlobalConstructor",
    "Code",
    "Detail",
];

/// Most Parallel branches (spec §8).
const MAX_BRANCHES: usize = 50;
/// Most concurrent inline Map iterations.
const MAX_INLINE_CONCURRENCY: u32 = 40;
/// Most concurrent distributed Map iterations.
const MAX_DISTRIBUTED_CONCURRENCY: u32 = 100;
/// Most items of a distributed Map.
const MAX_ITEMS: u32 = 10_000;
/// Longest task timeout (7 days).
const MAX_TASK_TIMEOUT: f64 = 604_800.0;

/// Where an expression sits: which variables it may read and what they mean there.
#[derive(Clone)]
struct ExprCtx {
    /// `$Output` (and `$Context.Current.Output`) is available.
    allow_output: bool,
    /// `$Item` is available.
    allow_item: bool,
    /// What `$Output` reads, in canonical terms.
    output: Node,
    /// What `$Context.Current.Input` reads.
    current_input: Node,
    /// A replacement for `$Input` (catch constructors, where the engine binds the raw input).
    input: Option<Node>,
}

impl ExprCtx {
    fn new() -> Self {
        ExprCtx {
            allow_output: false,
            allow_item: false,
            output: var_path(Var::Result, &[]),
            current_input: var_path(Var::Context, &["state", "input"]),
            input: None,
        }
    }

    fn with_output(output: Node) -> Self {
        ExprCtx {
            allow_output: true,
            output,
            ..ExprCtx::new()
        }
    }

    /// The vendor shape of `$Context` over the canonical context.
    fn context(&self) -> Node {
        let state = |m: &str| var_path(Var::Context, &["state", m]);
        object_node(vec![
            (
                "Execution",
                object_node(vec![
                    ("Name", var_path(Var::Context, &["execution", "name"])),
                    ("Input", var_path(Var::Context, &["execution", "input"])),
                    ("Id", var_path(Var::Context, &["execution", "id"])),
                    (
                        "StartTime",
                        var_path(Var::Context, &["execution", "start_time"]),
                    ),
                    ("RoleArn", Node::Literal(Value::Null)),
                ]),
            ),
            (
                "Flow",
                object_node(vec![("Name", var_path(Var::Context, &["flow", "name"]))]),
            ),
            (
                "Current",
                object_node(vec![
                    ("Name", state("name")),
                    ("Input", self.current_input.clone()),
                    (
                        "Output",
                        if self.allow_output {
                            self.output.clone()
                        } else {
                            Node::Literal(Value::Null)
                        },
                    ),
                    (
                        "Error",
                        object_node(vec![
                            (
                                "Code",
                                vendor_error_node(var_path(
                                    Var::Context,
                                    &["state", "error", "error"],
                                )),
                            ),
                            (
                                "Detail",
                                var_path(Var::Context, &["state", "error", "cause"]),
                            ),
                        ]),
                    ),
                    ("RetryCount", state("retry_count")),
                    ("TaskToken", state("task_token")),
                    ("EventId", state("event_id")),
                ]),
            ),
        ])
    }

    fn rewrite(&self, var: Var, segs: Vec<Segment>) -> Result<Node, String> {
        match var {
            Var::Context => apply_segments(self.context(), segs, true).map_err(|e| {
                format!(
                    "$Context: {e} (known: $Context.Execution.Name/Input/Id/StartTime/RoleArn, \
                     $Context.Flow.Name, $Context.Current.Name/Input/Output/Error.Code/\
                     Error.Detail/RetryCount/TaskToken/EventId)"
                )
            }),
            Var::Result if !self.allow_output => {
                Err("$Output is only available in OutputConstructor and GlobalConstructor".into())
            }
            Var::Result => apply_segments(self.output.clone(), segs, false),
            Var::Item if !self.allow_item => {
                Err("$Item is only available in a Map's ItemConstructor".into())
            }
            Var::Input => match &self.input {
                Some(n) => apply_segments(n.clone(), segs, false),
                None => Ok(vpath(Var::Input, segs)),
            },
            other => Ok(vpath(other, segs)),
        }
    }
}

fn vpath(var: Var, segments: Vec<Segment>) -> Node {
    Node::Path {
        root: Root::Var(var),
        segments,
    }
}

fn result_expr(segments: Vec<Segment>) -> Template {
    Template::Expr(Expr::from_node(vpath(Var::Result, segments)))
}

pub(super) fn compile(name: &str, doc: &Value) -> Result<Flow, Vec<DefinitionIssue>> {
    let mut cx = Cx::default();
    let Some(top) = Fields::of(&mut cx, doc, "", "a CloudFlow definition") else {
        return Err(cx.issues);
    };
    top.only(&mut cx, TOP_FIELDS, "a CloudFlow flow");
    match top.get("Type") {
        None => cx.issue("Type", "is required (Type: StateMachine)"),
        Some(Value::String(s)) if s == "StateMachine" => {}
        Some(other) => cx.issue(
            "Type",
            format!("must be 'StateMachine', not {}", describe(other)),
        ),
    }
    match top.get("SpecVersion") {
        None => cx.issue("SpecVersion", "is required (SpecVersion: v1)"),
        Some(Value::String(s)) if s == "v1" => {}
        Some(other) => cx.issue(
            "SpecVersion",
            format!("must be 'v1', not {}", describe(other)),
        ),
    }
    let doc_name = top.req_str(&mut cx, "Name").unwrap_or("");
    if !name.is_empty() && !doc_name.is_empty() && doc_name != name {
        cx.issue(
            "Name",
            format!("must equal the flow name given to the API ('{name}'), not '{doc_name}'"),
        );
    }
    let flow_name = if name.is_empty() { doc_name } else { name };
    let root = scope(&mut cx, &top);
    let flow = Flow {
        name: flow_name.to_string(),
        mode: Default::default(),
        input: None,
        root,
        timeout_seconds: None,
        constants: Value::Null,
    };
    cx.finish(flow)
}

/// A `{StartAt, States}` mapping (the top level, a Parallel branch, a Map processor).
fn scope(cx: &mut Cx, f: &Fields<'_>) -> Scope {
    let start_at = f.req_str(cx, "StartAt").unwrap_or("").to_string();
    let mut states = Vec::new();
    let mut names: Vec<Option<String>> = Vec::new();
    let list = match f.get("States") {
        None => {
            cx.issue(f.path_of("States"), "is required");
            None
        }
        Some(_) => f.list(cx, "States"),
    };
    if let Some(list) = list {
        if list.is_empty() {
            cx.issue(f.path_of("States"), "must contain at least one state");
        }
        names = list
            .iter()
            .map(|s| {
                s.get("Name")
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
                        format!("{}.Name", at(&f.path_of("States"), i)),
                        format!(
                            "duplicate state name '{n}' ({} has the same name); names must be \
                             unique within a scope",
                            at(&f.path_of("States"), *j)
                        ),
                    );
                } else {
                    first.insert(n, i);
                }
            }
        }
        let known: HashSet<String> = names.iter().flatten().cloned().collect();
        for (i, s) in list.iter().enumerate() {
            if let Some(st) = state(cx, s, &at(&f.path_of("States"), i), &known) {
                states.push(st);
            }
        }
    }
    if !start_at.is_empty() && !names.is_empty() && !names.iter().flatten().any(|n| *n == start_at)
    {
        cx.issue(
            f.path_of("StartAt"),
            format!("state '{start_at}' does not exist in States"),
        );
    }
    Scope {
        start_at,
        states,
        accumulate_local: false,
        output: None,
        index: Default::default(),
    }
}

fn check_target(cx: &mut Cx, known: &HashSet<String>, target: &str, path: String) {
    if !known.contains(target) {
        cx.issue(
            path,
            format!("state '{target}' does not exist in this scope"),
        );
    }
}

/// Rewrites the expressions of a template built by `Template::from_constructor`, reporting
/// problems at the field path of each expression.
fn rewrite_template(cx: &mut Cx, t: Template, path: &str, ctx: &ExprCtx) -> Template {
    match t {
        Template::Value(v) => Template::Value(v),
        Template::Expr(e) => {
            let text = e.text().to_string();
            match map_paths(e.node().clone(), &mut |v, s| ctx.rewrite(v, s)) {
                Ok(n) => Template::Expr(Expr::from_node(n)),
                Err(m) => {
                    cx.issue(path, format!("invalid expression {text:?}: {m}"));
                    Template::Value(Value::Null)
                }
            }
        }
        Template::Object(members) => Template::Object(
            members
                .into_iter()
                .map(|(k, t)| {
                    let p = match &t {
                        Template::Expr(_) => format!("{}.$", join(path, &k)),
                        _ => join(path, &k),
                    };
                    let t = rewrite_template(cx, t, &p, ctx);
                    (k, t)
                })
                .collect(),
        ),
        Template::Array(items) => Template::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, t)| rewrite_template(cx, t, &at(path, i), ctx))
                .collect(),
        ),
        Template::Merge(parts) => Template::Merge(
            parts
                .into_iter()
                .enumerate()
                .map(|(i, t)| rewrite_template(cx, t, &at(path, i), ctx))
                .collect(),
        ),
    }
}

/// A constructor (a mapping whose `.$` keys hold expressions), or with `any` any JSON value.
fn template(cx: &mut Cx, v: &Value, path: &str, ctx: &ExprCtx, any: bool) -> Option<Template> {
    if !any && !v.is_object() {
        cx.issue(
            path,
            format!(
                "must be a mapping (keys ending in .$ hold expressions), not {}",
                describe(v)
            ),
        );
        return None;
    }
    match Template::from_constructor(v, &CLOUDFLOW, path) {
        Ok(t) => Some(rewrite_template(cx, t, path, ctx)),
        Err(issues) => {
            for i in issues {
                cx.issue(i.path, i.message);
            }
            None
        }
    }
}

/// An expression field (`Condition`, `ItemsPath`, `Seconds.$`, ...).
fn expression(cx: &mut Cx, v: &Value, path: &str, ctx: &ExprCtx) -> Option<Expr> {
    let text = match v {
        Value::String(s) => s.as_str(),
        Value::Bool(b) => return Some(Expr::from_node(Node::Literal(Value::Bool(*b)))),
        other => {
            cx.issue(
                path,
                format!("must be an expression string, not {}", describe(other)),
            );
            return None;
        }
    };
    let e = match parse(text, &CLOUDFLOW) {
        Ok(e) => e,
        Err(e) => {
            cx.issue(path, format!("invalid expression {text:?}: {e}"));
            return None;
        }
    };
    match map_paths(e.node().clone(), &mut |v, s| ctx.rewrite(v, s)) {
        Ok(n) => Some(Expr::from_node(n)),
        Err(m) => {
            cx.issue(path, format!("invalid expression {text:?}: {m}"));
            None
        }
    }
}

fn state(cx: &mut Cx, v: &Value, path: &str, known: &HashSet<String>) -> Option<State> {
    let f = Fields::of(cx, v, path, "a state")?;
    let ty = f.req_str(cx, "Type");
    let name = f.req_str(cx, "Name").map(str::to_string);
    let ty = ty?;
    let allowed = match ty {
        "Pass" => PASS_FIELDS,
        "Task" => TASK_FIELDS,
        "Choice" => CHOICE_FIELDS,
        "Parallel" => PARALLEL_FIELDS,
        "Map" => MAP_FIELDS,
        "Wait" => WAIT_FIELDS,
        "Succeed" => SUCCEED_FIELDS,
        "Fail" => FAIL_FIELDS,
        other => {
            cx.issue(
                f.path_of("Type"),
                format!(
                    "unknown state type '{other}' (expected one of Pass, Task, Choice, \
                     Parallel, Map, Wait, Succeed, Fail)"
                ),
            );
            return None;
        }
    };
    f.only(cx, allowed, &format!("a {ty} state"));

    // Where control goes.
    let (next, end) = match ty {
        "Choice" => {
            for k in ["Next", "End"] {
                if f.has(k) {
                    cx.issue(
                        f.path_of(k),
                        "a Choice state has no Next or End: its Branches and Default decide",
                    );
                }
            }
            (None, false)
        }
        "Succeed" | "Fail" => (None, false),
        _ => {
            let next = f.str(cx, "Next");
            let end = f.bool(cx, "End");
            match (next, end) {
                (Some(n), false) => {
                    check_target(cx, known, n, f.path_of("Next"));
                    (Some(n.to_string()), false)
                }
                (Some(_), true) => {
                    cx.issue(f.path_of("End"), "a state cannot have both Next and End");
                    (None, true)
                }
                (None, true) => (None, true),
                (None, false) => {
                    if !f.has("Next") {
                        cx.issue(
                            f.path_of("Next"),
                            format!(
                                "is required (or End: true): a {ty} state must say where \
                                 control goes next"
                            ),
                        );
                    }
                    (None, true)
                }
            }
        }
    };

    let input = f.get("InputConstructor").and_then(|v| {
        template(
            cx,
            v,
            &f.path_of("InputConstructor"),
            &ExprCtx::new(),
            false,
        )
    });

    // What `$Output` is for this state type, and the default output.
    let branch_count = match (ty, f.get("Branches")) {
        ("Parallel", Some(Value::Array(b))) => b.len(),
        _ => 0,
    };
    let (output_view, default_output) = match ty {
        "Parallel" => {
            let view = Node::Object(
                (0..branch_count)
                    .map(|i| {
                        (
                            format!("Branch{i}"),
                            vpath(Var::Result, vec![Segment::Index(i as i64)]),
                        )
                    })
                    .collect(),
            );
            let default = Template::object(
                (0..branch_count)
                    .map(|i| {
                        (
                            format!("Branch{i}"),
                            result_expr(vec![Segment::Index(i as i64)]),
                        )
                    })
                    .collect(),
            );
            (view, Some(default))
        }
        "Map" => (
            object_node(vec![("Items", var_path(Var::Result, &[]))]),
            Some(Template::object(vec![(
                "Items".to_string(),
                result_expr(Vec::new()),
            )])),
        ),
        _ => (var_path(Var::Result, &[]), None),
    };

    let kind = match ty {
        "Pass" => StateKind::Pass,
        "Succeed" => StateKind::Succeed,
        "Fail" => {
            let code = f
                .str(cx, "Code")
                .map(|c| error_names::to_canonical(c).into_owned());
            let detail = f.req_str(cx, "Detail").map(str::to_string);
            StateKind::Fail(FailSpec {
                error: code,
                cause: detail,
            })
        }
        "Wait" => StateKind::Wait(wait(cx, &f)),
        "Task" => StateKind::Task(task(cx, &f)),
        "Choice" => StateKind::Choice(choice(cx, &f, known)),
        "Parallel" => StateKind::Parallel(parallel(cx, &f)),
        "Map" => StateKind::Map(map(cx, &f)),
        _ => unreachable!("checked above"),
    };

    let out_ctx = ExprCtx::with_output(output_view);
    let output = match f.get("OutputConstructor") {
        Some(v) => template(cx, v, &f.path_of("OutputConstructor"), &out_ctx, false),
        None => default_output,
    };
    let global = f
        .get("GlobalConstructor")
        .and_then(|v| template(cx, v, &f.path_of("GlobalConstructor"), &out_ctx, false));

    let (retry, catch) = if matches!(ty, "Task" | "Parallel" | "Map") {
        let input_node = input.as_ref().map(template_node);
        (retries(cx, &f), catches(cx, &f, known, input_node))
    } else {
        (Vec::new(), Vec::new())
    };

    Some(State {
        label: Default::default(),
        name: name?,
        kind,
        input,
        output,
        global,
        next,
        end,
        retry,
        catch,
    })
}

fn task(cx: &mut Cx, f: &Fields<'_>) -> TaskSpec {
    let action = f.req_str(cx, "Action").unwrap_or("");
    if !action.is_empty() {
        let ok = action
            .split_once(':')
            .is_some_and(|(s, a)| !s.is_empty() && !a.is_empty() && !action.contains(' '));
        if !ok {
            cx.issue(
                f.path_of("Action"),
                format!("'{action}' is not of the form <Service>:<API> (e.g. FC:InvokeFunction)"),
            );
        }
    }
    let is_fnf = action.eq_ignore_ascii_case(START_EXECUTION);
    let mode = match f.str(cx, "TaskMode") {
        None | Some("RequestComplete") => TaskMode::RequestResponse,
        // The integrated service reports completion itself: for a sub-flow, its end.
        Some("WaitForSystemCallback") if is_fnf => TaskMode::Sync,
        Some("WaitForSystemCallback") => TaskMode::RequestResponse,
        Some("WaitForCustomCallback") => TaskMode::WaitForCallback,
        Some(other) => {
            cx.issue(
                f.path_of("TaskMode"),
                format!(
                    "unknown TaskMode '{other}' (expected RequestComplete, \
                     WaitForCustomCallback or WaitForSystemCallback)"
                ),
            );
            TaskMode::RequestResponse
        }
    };
    let ctx = ExprCtx::new();
    let params_path = f.path_of("Parameters");
    let params = match f.get("Parameters") {
        Some(Value::Object(_)) | None => f.get("Parameters"),
        Some(other) => {
            cx.issue(
                &params_path,
                format!("must be a mapping, not {}", describe(other)),
            );
            None
        }
    };
    let is_fc = action.eq_ignore_ascii_case("FC:InvokeFunction");
    let (resource, parameters, result_selector) = if is_fc {
        fc_parameters(cx, params, &params_path, &ctx, mode)
    } else if is_fnf {
        fnf_parameters(cx, params, &params_path, &ctx, mode)
    } else {
        let parameters = match params {
            Some(v) => template(cx, v, &params_path, &ctx, false),
            None => Some(Template::Value(json!({}))),
        };
        (action.to_string(), parameters, None)
    };
    let timeout_seconds = match (f.get("Timeout"), f.get("Timeout.$")) {
        (Some(_), Some(_)) => {
            cx.issue(
                f.path_of("Timeout.$"),
                "give either Timeout or Timeout.$, not both",
            );
            None
        }
        (Some(_), None) => f
            .number_in(cx, "Timeout", 0.0, MAX_TASK_TIMEOUT)
            .filter(|t| *t > 0.0)
            .map(Amount::Fixed),
        (None, Some(v)) => expression(cx, v, &f.path_of("Timeout.$"), &ctx).map(Amount::Expr),
        (None, None) => None,
    };
    TaskSpec {
        resource: resource.into(),
        parameters,
        mode,
        result_selector,
        timeout_seconds,
        fail_when: None,
        fail_error: None,
        result_must_be_object: false,
    }
}

/// `FC:InvokeFunction` parameters: the function ARN becomes the task's resource, `body` the
/// event, and the function's result is presented as `{"Body": <result>}`.
fn fc_parameters(
    cx: &mut Cx,
    params: Option<&Value>,
    path: &str,
    ctx: &ExprCtx,
    mode: TaskMode,
) -> (String, Option<Template>, Option<Template>) {
    let Some(pv) = params else {
        cx.issue(
            join(path, "resourceArn"),
            "is required: FC:InvokeFunction needs Parameters.resourceArn",
        );
        return (String::new(), None, None);
    };
    let Some(p) = Fields::of(cx, pv, path, "Parameters") else {
        return (String::new(), None, None);
    };
    p.only(
        cx,
        &[
            "resourceArn",
            "resourceArn.$",
            "invocationType",
            "body",
            "body.$",
        ],
        "FC:InvokeFunction Parameters",
    );
    if p.has("resourceArn.$") {
        cx.issue(
            p.path_of("resourceArn.$"),
            "must be a constant ARN: functions are bound by ARN when the flow is deployed",
        );
    }
    let resource = if p.has("resourceArn.$") && !p.has("resourceArn") {
        String::new()
    } else {
        p.req_str(cx, "resourceArn")
            .unwrap_or("")
            .trim()
            .to_string()
    };
    match p.str(cx, "invocationType") {
        None | Some("Sync") | Some("Async") => {}
        Some(other) => cx.issue(
            p.path_of("invocationType"),
            format!("must be Sync or Async, not '{other}'"),
        ),
    }
    let body = match (p.get("body"), p.get("body.$")) {
        (Some(_), Some(_)) => {
            cx.issue(p.path_of("body.$"), "give either body or body.$, not both");
            None
        }
        (Some(v), None) => template(cx, v, &p.path_of("body"), ctx, true),
        (None, Some(v)) => expression(cx, v, &p.path_of("body.$"), ctx).map(Template::Expr),
        (None, None) => Some(Template::Value(json!({}))),
    };
    let selector = (mode != TaskMode::WaitForCallback)
        .then(|| Template::object(vec![("Body".to_string(), result_expr(Vec::new()))]));
    (resource, body, selector)
}

/// The action that starts a sub-flow.
const START_EXECUTION: &str = "FNF:StartExecution";

/// `FNF:StartExecution` parameters → the canonical sub-flow target: `resourceArn`
/// (`acs:fnf:{region}::flow/{name}`, or `resourceArn.$` whose value's part after `flow/` is the
/// name at run time), `executionName` (or `.$`), `input` (a constructor, or `input.$`; `{}` when
/// absent). With `RequestComplete` the start answer is presented as `{FlowName, ExecutionName,
/// RequestID}`; in the callback modes the result is the child's output.
fn fnf_parameters(
    cx: &mut Cx,
    params: Option<&Value>,
    path: &str,
    ctx: &ExprCtx,
    mode: TaskMode,
) -> (String, Option<Template>, Option<Template>) {
    let resource = SUBFLOW_RESOURCE.to_string();
    let Some(pv) = params else {
        cx.issue(
            join(path, "resourceArn"),
            "is required: FNF:StartExecution needs Parameters.resourceArn",
        );
        return (resource, None, None);
    };
    let Some(p) = Fields::of(cx, pv, path, "Parameters") else {
        return (resource, None, None);
    };
    p.only(
        cx,
        &[
            "resourceArn",
            "resourceArn.$",
            "executionName",
            "executionName.$",
            "input",
            "input.$",
        ],
        "FNF:StartExecution Parameters",
    );
    let flow = match (p.get("resourceArn"), p.get("resourceArn.$")) {
        (Some(_), Some(_)) => {
            cx.issue(
                p.path_of("resourceArn.$"),
                "give either resourceArn or resourceArn.$, not both",
            );
            None
        }
        (Some(_), None) => p
            .req_str(cx, "resourceArn")
            .and_then(|arn| match subflow_arn(arn) {
                Some(name) => Some(Template::Value(json!(name))),
                None => {
                    cx.issue(
                        p.path_of("resourceArn"),
                        format!(
                            "'{arn}' is not a flow ARN such as acs:fnf:cn-hangzhou::flow/<name>"
                        ),
                    );
                    None
                }
            }),
        (None, Some(v)) => expression(cx, v, &p.path_of("resourceArn.$"), ctx).map(|e| {
            // The part after `flow/`; a value without it is taken as the flow name itself.
            let arn = e.node().clone();
            let after = Node::Call(
                Func::Get,
                vec![
                    Node::Call(
                        Func::Split,
                        vec![arn.clone(), Node::Literal(json!("flow/"))],
                    ),
                    Node::Literal(json!(1)),
                ],
            );
            Template::Expr(Expr::from_node(Node::Coalesce(
                Box::new(after),
                Box::new(arn),
            )))
        }),
        (None, None) => {
            cx.issue(
                p.path_of("resourceArn"),
                "is required: the ARN of the flow to start (acs:fnf:{region}::flow/{name})",
            );
            None
        }
    };
    let execution_name = match (p.get("executionName"), p.get("executionName.$")) {
        (Some(_), Some(_)) => {
            cx.issue(
                p.path_of("executionName.$"),
                "give either executionName or executionName.$, not both",
            );
            None
        }
        (Some(_), None) => p
            .str(cx, "executionName")
            .map(|n| Template::Value(json!(n))),
        (None, Some(v)) => {
            expression(cx, v, &p.path_of("executionName.$"), ctx).map(Template::Expr)
        }
        (None, None) => None,
    };
    let input = match (p.get("input"), p.get("input.$")) {
        (Some(_), Some(_)) => {
            cx.issue(
                p.path_of("input.$"),
                "give either input or input.$, not both",
            );
            None
        }
        (Some(v), None) => template(cx, v, &p.path_of("input"), ctx, false),
        (None, Some(v)) => expression(cx, v, &p.path_of("input.$"), ctx).map(Template::Expr),
        (None, None) => Some(Template::Value(json!({}))),
    };
    let mut members = vec![
        (
            "flow".to_string(),
            flow.unwrap_or(Template::Value(Value::Null)),
        ),
        (
            "input".to_string(),
            input.unwrap_or(Template::Value(json!({}))),
        ),
    ];
    if let Some(n) = execution_name {
        members.push(("execution_name".to_string(), n));
    }
    let selector = (mode == TaskMode::RequestResponse).then(|| {
        Template::object(vec![
            (
                "FlowName".to_string(),
                result_expr(vec![Segment::Field("flow".into())]),
            ),
            (
                "ExecutionName".to_string(),
                result_expr(vec![Segment::Field("execution_name".into())]),
            ),
            (
                "RequestID".to_string(),
                result_expr(vec![Segment::Field("execution_id".into())]),
            ),
        ])
    });
    (resource, Some(Template::object(members)), selector)
}

fn wait(cx: &mut Cx, f: &Fields<'_>) -> WaitSpec {
    let mut spec = WaitSpec::default();
    let given: Vec<&str> = ["Seconds", "Seconds.$", "Timestamp", "Timestamp.$"]
        .into_iter()
        .filter(|k| f.has(k))
        .collect();
    if given.len() != 1 {
        cx.issue(
            f.path.clone(),
            "a Wait state needs exactly one of Seconds, Seconds.$, Timestamp, Timestamp.$",
        );
        return spec;
    }
    let ctx = ExprCtx::new();
    match given[0] {
        "Seconds" => spec.seconds = f.number_in(cx, "Seconds", 0.0, f64::MAX).map(Amount::Fixed),
        "Seconds.$" => {
            spec.seconds = f
                .get("Seconds.$")
                .and_then(|v| expression(cx, v, &f.path_of("Seconds.$"), &ctx))
                .map(Amount::Expr)
        }
        "Timestamp" => {
            if let Some(s) = f.req_str(cx, "Timestamp") {
                if chrono::DateTime::parse_from_rfc3339(s.trim()).is_err() {
                    cx.issue(
                        f.path_of("Timestamp"),
                        format!("'{s}' is not an RFC 3339 timestamp"),
                    );
                } else {
                    spec.until = Some(s.trim().to_string());
                }
            }
        }
        _ => {
            spec.until_expr = f
                .get("Timestamp.$")
                .and_then(|v| expression(cx, v, &f.path_of("Timestamp.$"), &ctx))
        }
    }
    spec
}

fn choice(cx: &mut Cx, f: &Fields<'_>, known: &HashSet<String>) -> ChoiceSpec {
    let ctx = ExprCtx::new();
    let mut rules = Vec::new();
    if !f.has("Branches") {
        cx.issue(f.path_of("Branches"), "is required");
    }
    if let Some(list) = f.list(cx, "Branches") {
        if list.is_empty() {
            cx.issue(f.path_of("Branches"), "must contain at least one branch");
        }
        for (j, b) in list.iter().enumerate() {
            let p = at(&f.path_of("Branches"), j);
            let Some(bf) = Fields::of(cx, b, &p, "a Choice branch") else {
                continue;
            };
            bf.only(cx, &["Condition", "Next", "Description"], "a Choice branch");
            let condition = match bf.get("Condition") {
                Some(v) => expression(cx, v, &bf.path_of("Condition"), &ctx),
                None => {
                    cx.issue(bf.path_of("Condition"), "is required");
                    None
                }
            };
            let next = bf.req_str(cx, "Next");
            if let Some(n) = next {
                check_target(cx, known, n, bf.path_of("Next"));
            }
            if let (Some(condition), Some(n)) = (condition, next) {
                rules.push(ChoiceRule {
                    condition,
                    target: ChoiceTarget::Next(n.to_string()),
                });
            }
        }
    }
    let default = if f.has("Default") {
        f.req_str(cx, "Default").map(|d| {
            check_target(cx, known, d, f.path_of("Default"));
            ChoiceTarget::Next(d.to_string())
        })
    } else {
        cx.issue(
            f.path_of("Default"),
            "is required: the state to go to when no branch matches",
        );
        None
    };
    ChoiceSpec { rules, default }
}

/// `{StartAt, States}` at `path`.
fn sub_scope(cx: &mut Cx, v: &Value, path: &str, what: &str) -> Scope {
    match Fields::of(cx, v, path, what) {
        Some(sf) => {
            sf.only(cx, SCOPE_FIELDS, what);
            scope(cx, &sf)
        }
        None => Scope {
            start_at: String::new(),
            states: Vec::new(),
            accumulate_local: false,
            output: None,
            index: Default::default(),
        },
    }
}

fn parallel(cx: &mut Cx, f: &Fields<'_>) -> ParallelSpec {
    let mut branches = Vec::new();
    if !f.has("Branches") {
        cx.issue(f.path_of("Branches"), "is required");
    }
    if let Some(list) = f.list(cx, "Branches") {
        if list.is_empty() {
            cx.issue(f.path_of("Branches"), "must contain at least one branch");
        }
        if list.len() > MAX_BRANCHES {
            cx.issue(
                f.path_of("Branches"),
                format!(
                    "has {} branches; at most {MAX_BRANCHES} are allowed",
                    list.len()
                ),
            );
        }
        for (j, b) in list.iter().enumerate() {
            branches.push(sub_scope(
                cx,
                b,
                &at(&f.path_of("Branches"), j),
                "a Parallel branch",
            ));
        }
    }
    ParallelSpec {
        branches,
        max_concurrency: None,
    }
}

fn map(cx: &mut Cx, f: &Fields<'_>) -> MapSpec {
    let ctx = ExprCtx::new();
    let items = match f.get("ItemsPath") {
        Some(v) => expression(cx, v, &f.path_of("ItemsPath"), &ctx),
        None => {
            cx.issue(f.path_of("ItemsPath"), "is required");
            None
        }
    }
    .unwrap_or_else(|| Expr::from_node(Node::Literal(json!([]))));
    // MaxItems: only the first n items are processed.
    let items = match f.count(cx, "MaxItems", MAX_ITEMS) {
        None | Some(0) => items,
        Some(n) => match items.node().clone() {
            Node::Path { root, mut segments } => {
                segments.push(Segment::Slice(None, Some(i64::from(n)), None));
                Expr::from_node(Node::Path { root, segments })
            }
            _ => {
                cx.issue(
                    f.path_of("MaxItems"),
                    "needs an ItemsPath that is a path (such as $Input.items)",
                );
                items
            }
        },
    };
    let processor = match f.get("Processor") {
        Some(v) => sub_scope(cx, v, &f.path_of("Processor"), "a Map Processor"),
        None => {
            cx.issue(f.path_of("Processor"), "is required");
            sub_scope(cx, &json!({}), &f.path_of("Processor"), "a Map Processor")
        }
    };
    let mut distributed = false;
    if let Some(pc) = f.get("ProcessorConfig") {
        if let Some(pf) = Fields::of(cx, pc, &f.path_of("ProcessorConfig"), "ProcessorConfig") {
            pf.only(cx, &["Mode", "ExecutionMode"], "ProcessorConfig");
            match pf.str(cx, "Mode") {
                None | Some("Inline") => {}
                Some("Distributed") => distributed = true,
                Some(other) => cx.issue(
                    pf.path_of("Mode"),
                    format!("must be Inline or Distributed, not '{other}'"),
                ),
            }
            match pf.str(cx, "ExecutionMode") {
                None | Some("Standard") | Some("Express") => {}
                Some(other) => cx.issue(
                    pf.path_of("ExecutionMode"),
                    format!("must be Standard or Express, not '{other}'"),
                ),
            }
        }
    }
    for k in DISTRIBUTED_ONLY {
        if f.has(k) {
            cx.issue(
                f.path_of(k),
                "is a distributed Map feature this emulator does not support yet (items come \
                 from ItemsPath; results are returned inline)",
            );
        }
    }
    let cap = if distributed {
        MAX_DISTRIBUTED_CONCURRENCY
    } else {
        MAX_INLINE_CONCURRENCY
    };
    let max_concurrency = match (f.has("MaxConcurrency"), f.has("MaxConcuccency")) {
        (true, true) => {
            cx.issue(
                f.path_of("MaxConcuccency"),
                "give either MaxConcurrency or MaxConcuccency, not both",
            );
            None
        }
        (true, false) => f.count(cx, "MaxConcurrency", cap),
        (false, true) => f.count(cx, "MaxConcuccency", cap),
        (false, false) => None,
    };
    let item = f.get("ItemConstructor").and_then(|v| {
        let ctx = ExprCtx {
            allow_item: true,
            ..ExprCtx::new()
        };
        template(cx, v, &f.path_of("ItemConstructor"), &ctx, false)
    });
    MapSpec {
        items,
        item,
        processor: Box::new(processor),
        max_concurrency,
    }
}

fn retries(cx: &mut Cx, f: &Fields<'_>) -> Vec<RetryPolicy> {
    retry_policies(
        cx,
        f,
        &RetryVocabulary {
            list: "Retry",
            what: "a Retry rule",
            allowed: &[
                "Errors",
                "Description",
                "MaxAttempts",
                "IntervalSeconds",
                "BackoffRate",
                "MaxBackoffSeconds",
            ],
            errors: "Errors",
            interval: "IntervalSeconds",
            max_attempts: "MaxAttempts",
            backoff: "BackoffRate",
            max_interval: "MaxBackoffSeconds",
            default_backoff: 1.0,
        },
    )
}

fn catches(
    cx: &mut Cx,
    f: &Fields<'_>,
    known: &HashSet<String>,
    input: Option<Node>,
) -> Vec<CatchPolicy> {
    let Some(list) = f.list(cx, "Catch") else {
        return Vec::new();
    };
    // In a catch constructor the engine binds the state's raw input; `$Input` means the state's
    // input (after its InputConstructor), so the constructor is substituted in.
    let ctx = ExprCtx {
        current_input: input
            .clone()
            .unwrap_or_else(|| var_path(Var::Context, &["state", "input"])),
        input,
        ..ExprCtx::new()
    };
    let mut out = Vec::with_capacity(list.len());
    for (j, c) in list.iter().enumerate() {
        let p = at(&f.path_of("Catch"), j);
        let Some(cf) = Fields::of(cx, c, &p, "a Catch rule") else {
            continue;
        };
        cf.only(
            cx,
            &["Errors", "Description", "OutputConstructor", "Next"],
            "a Catch rule",
        );
        let errors = cf.error_list(cx, "Errors");
        let output = match cf.get("OutputConstructor") {
            Some(v) => template(cx, v, &cf.path_of("OutputConstructor"), &ctx, false),
            None => Some(Template::object(vec![
                (
                    "Code".to_string(),
                    Template::Expr(Expr::from_node(vendor_error_node(var_path(
                        Var::Result,
                        &["error"],
                    )))),
                ),
                (
                    "Detail".to_string(),
                    result_expr(vec![Segment::Field("cause".into())]),
                ),
            ])),
        };
        let Some(next) = cf.req_str(cx, "Next") else {
            continue;
        };
        check_target(cx, known, next, cf.path_of("Next"));
        out.push(CatchPolicy {
            errors,
            condition: None,
            next: next.to_string(),
            output,
        });
    }
    out
}
