//! Helpers shared by the two Alibaba flow compilers (old FDL here, CloudFlow in
//! `../cloudflow`): the issue collector, typed field access with vendor field paths, YAML
//! parsing, and rewrites of parsed expression trees (vendor paths → canonical paths).

use serde_json::{json, Map, Value};

use crate::dialects::alibaba::error_names;
use crate::model::expr::{parse, Expr, Func, Node, Root, Segment, Template, Var, Vars, CANONICAL};
use crate::model::flow::{DefinitionIssue, Flow, RetryPolicy};

/// Collects every problem of a definition, each with its vendor field path.
#[derive(Debug, Default)]
pub(crate) struct Cx {
    pub(crate) issues: Vec<DefinitionIssue>,
}

impl Cx {
    /// Records a problem at `path`.
    pub(crate) fn issue(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        self.issues.push(DefinitionIssue {
            path: if path.is_empty() {
                "$".to_string()
            } else {
                path
            },
            message: message.into(),
        });
    }

    /// The flow, checked by the canonical model, or every problem found.
    pub(crate) fn finish(self, mut flow: Flow) -> Result<Flow, Vec<DefinitionIssue>> {
        if !self.issues.is_empty() {
            return Err(self.issues);
        }
        flow.prepare()?;
        Ok(flow)
    }
}

/// `path.key` (or `key` at the top).
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// `path[i]`.
pub(crate) fn at(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// The JSON type of a value, for messages.
pub(crate) fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Parses definition text (YAML or JSON, CRLF or LF, optional BOM) once.
pub(crate) fn parse_text(text: &str) -> Result<Value, Vec<DefinitionIssue>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    crate::yaml::parse(text).map_err(|e| {
        vec![DefinitionIssue {
            path: "$".to_string(),
            message: format!("the definition is not valid YAML or JSON: {e}"),
        }]
    })
}

/// Typed access to the fields of one mapping of a definition.
pub(crate) struct Fields<'a> {
    pub(crate) map: &'a Map<String, Value>,
    pub(crate) path: String,
}

impl<'a> Fields<'a> {
    /// The mapping at `path`, or an issue when `v` is not one.
    pub(crate) fn of(cx: &mut Cx, v: &'a Value, path: &str, what: &str) -> Option<Fields<'a>> {
        match v {
            Value::Object(map) => Some(Fields {
                map,
                path: path.to_string(),
            }),
            other => {
                cx.issue(
                    path,
                    format!("{what} must be a mapping, not {}", type_of(other)),
                );
                None
            }
        }
    }

    /// Path of one field.
    pub(crate) fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// Reports every field not in `allowed`.
    pub(crate) fn only(&self, cx: &mut Cx, allowed: &[&str], what: &str) {
        for k in self.map.keys() {
            if !allowed.contains(&k.as_str()) {
                cx.issue(
                    self.path_of(k),
                    format!(
                        "unknown field '{k}' for {what} (allowed: {})",
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    pub(crate) fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    /// An optional string field.
    pub(crate) fn str(&self, cx: &mut Cx, key: &str) -> Option<&'a str> {
        match self.map.get(key)? {
            Value::String(s) => Some(s),
            other => {
                cx.issue(
                    self.path_of(key),
                    format!("must be a string, not {}", type_of(other)),
                );
                None
            }
        }
    }

    /// A required, non-empty string field.
    pub(crate) fn req_str(&self, cx: &mut Cx, key: &str) -> Option<&'a str> {
        if !self.has(key) {
            cx.issue(self.path_of(key), "is required");
            return None;
        }
        let s = self.str(cx, key)?;
        if s.trim().is_empty() {
            cx.issue(self.path_of(key), "must not be empty");
            return None;
        }
        Some(s)
    }

    /// An optional boolean field (default false).
    pub(crate) fn bool(&self, cx: &mut Cx, key: &str) -> bool {
        match self.map.get(key) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                cx.issue(
                    self.path_of(key),
                    format!("must be true or false, not {}", type_of(other)),
                );
                false
            }
        }
    }

    /// An optional number field; numeric strings (`"30"`) are accepted.
    pub(crate) fn number(&self, cx: &mut Cx, key: &str) -> Option<f64> {
        let v = self.map.get(key)?;
        let n = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n.is_finite() => Some(n),
            _ => {
                cx.issue(
                    self.path_of(key),
                    format!("must be a number, not {}", describe(v)),
                );
                None
            }
        }
    }

    /// An optional number field within `[min, max]`.
    pub(crate) fn number_in(&self, cx: &mut Cx, key: &str, min: f64, max: f64) -> Option<f64> {
        let n = self.number(cx, key)?;
        if n < min || n > max {
            cx.issue(
                self.path_of(key),
                format!("must be between {min} and {max}, not {n}"),
            );
            return None;
        }
        Some(n)
    }

    /// An optional non-negative integer field, at most `max`.
    pub(crate) fn count(&self, cx: &mut Cx, key: &str, max: u32) -> Option<u32> {
        let n = self.number(cx, key)?;
        if n < 0.0 || n.fract() != 0.0 || n > f64::from(max) {
            cx.issue(
                self.path_of(key),
                format!("must be a whole number between 0 and {max}, not {n}"),
            );
            return None;
        }
        Some(n as u32)
    }

    /// An optional list field.
    pub(crate) fn list(&self, cx: &mut Cx, key: &str) -> Option<&'a Vec<Value>> {
        match self.map.get(key)? {
            Value::Array(a) => Some(a),
            other => {
                cx.issue(
                    self.path_of(key),
                    format!("must be a list, not {}", type_of(other)),
                );
                None
            }
        }
    }

    /// A required list of error names (non-empty strings), translated to canonical names.
    pub(crate) fn error_list(&self, cx: &mut Cx, key: &str) -> Vec<String> {
        if !self.has(key) {
            cx.issue(self.path_of(key), "is required");
            return Vec::new();
        }
        let Some(items) = self.list(cx, key) else {
            return Vec::new();
        };
        if items.is_empty() {
            cx.issue(self.path_of(key), "must name at least one error");
        }
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) if !s.trim().is_empty() => {
                    out.extend(error_names::list_to_canonical([s.trim()]))
                }
                other => cx.issue(
                    at(&self.path_of(key), i),
                    format!("must be an error name, not {}", describe(other)),
                ),
            }
        }
        out
    }
}

/// A short description of a value for messages (`"abc"`, a list, ...).
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        other => type_of(other).to_string(),
    }
}

// ----- expression trees -----

/// A path from a variable through plain member names.
pub(crate) fn var_path(var: Var, members: &[&str]) -> Node {
    Node::Path {
        root: Root::Var(var),
        segments: members
            .iter()
            .map(|m| Segment::Field((*m).to_string()))
            .collect(),
    }
}

/// An object node from (key, node) pairs.
pub(crate) fn object_node(members: Vec<(&str, Node)>) -> Node {
    Node::Object(
        members
            .into_iter()
            .map(|(k, n)| (k.to_string(), n))
            .collect(),
    )
}

/// A callback that rewrites one path: it receives the root variable and the (already
/// rewritten) steps and returns the replacement, or a message saying what is wrong.
pub(crate) type PathFn<'a> = dyn FnMut(Var, Vec<Segment>) -> Result<Node, String> + 'a;

/// Rewrites every variable-rooted path of a tree with `f` (paths inside filters included;
/// `@` paths are kept).
pub(crate) fn map_paths(node: Node, f: &mut PathFn<'_>) -> Result<Node, String> {
    Ok(match node {
        Node::Literal(_) | Node::Regex(_) => node,
        Node::Path { root, segments } => {
            let segments = segments
                .into_iter()
                .map(|s| match s {
                    Segment::Filter(n) => Ok(Segment::Filter(Box::new(map_paths(*n, f)?))),
                    other => Ok(other),
                })
                .collect::<Result<Vec<_>, String>>()?;
            match root {
                Root::Var(v) => f(v, segments)?,
                Root::Current => Node::Path { root, segments },
            }
        }
        Node::Unary(op, n) => Node::Unary(op, Box::new(map_paths(*n, f)?)),
        Node::Binary { op, left, right } => Node::Binary {
            op,
            left: Box::new(map_paths(*left, f)?),
            right: Box::new(map_paths(*right, f)?),
        },
        Node::Coalesce(a, b) => {
            Node::Coalesce(Box::new(map_paths(*a, f)?), Box::new(map_paths(*b, f)?))
        }
        Node::Call(func, args) => Node::Call(
            func,
            args.into_iter()
                .map(|a| map_paths(a, f))
                .collect::<Result<_, _>>()?,
        ),
        Node::Array(items) => Node::Array(
            items
                .into_iter()
                .map(|a| map_paths(a, f))
                .collect::<Result<_, _>>()?,
        ),
        Node::Object(members) => Node::Object(
            members
                .into_iter()
                .map(|(k, n)| Ok((k, map_paths(n, f)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

/// Applies path steps to an arbitrary node: appended to a path, resolved statically through
/// object nodes and constants, or as `get(...)` calls for other nodes (definite steps only).
/// `strict` makes a member missing from an object node an error (vendor `$context` shapes)
/// instead of `null` (data objects).
pub(crate) fn apply_segments(node: Node, segs: Vec<Segment>, strict: bool) -> Result<Node, String> {
    if segs.is_empty() {
        return Ok(node);
    }
    match node {
        Node::Path { root, mut segments } => {
            segments.extend(segs);
            Ok(Node::Path { root, segments })
        }
        Node::Object(members) => {
            let mut rest = segs.into_iter();
            let first = rest.next().expect("not empty");
            let Segment::Field(k) = first else {
                return Err(format!("the step '{first}' is not supported here"));
            };
            match members.into_iter().find(|(m, _)| *m == k) {
                Some((_, n)) => apply_segments(n, rest.collect(), strict),
                None if strict => Err(format!("unknown field '{k}'")),
                None => Ok(Node::Literal(Value::Null)),
            }
        }
        Node::Literal(v) => {
            let e = Expr::from_node(Node::Path {
                root: Root::Var(Var::Input),
                segments: segs,
            });
            e.eval(&Vars::new(&v))
                .map(Node::Literal)
                .map_err(|e| e.to_string())
        }
        other => {
            let mut n = other;
            for s in segs {
                let key = match s {
                    Segment::Field(k) => Value::String(k),
                    Segment::Index(i) => Value::from(i),
                    s => return Err(format!("the step '{s}' is not supported here")),
                };
                n = Node::Call(Func::Get, vec![n, Node::Literal(key)]);
            }
            Ok(n)
        }
    }
}

/// An expression computing the same value as a template (merges become `jsonMerge` calls).
pub(crate) fn template_node(t: &Template) -> Node {
    match t {
        Template::Value(v) => Node::Literal(v.clone()),
        Template::Expr(e) => e.node().clone(),
        Template::Object(members) => Node::Object(
            members
                .iter()
                .map(|(k, t)| (k.clone(), template_node(t)))
                .collect(),
        ),
        Template::Array(items) => Node::Array(items.iter().map(template_node).collect()),
        Template::Merge(parts) => {
            let mut nodes = parts.iter().map(template_node);
            let empty = || Node::Literal(Value::Object(Map::new()));
            let first = nodes.next().unwrap_or_else(empty);
            let mut acc = Node::Call(
                Func::JsonMerge,
                vec![first, nodes.next().unwrap_or_else(empty)],
            );
            for n in nodes {
                acc = Node::Call(Func::JsonMerge, vec![acc, n]);
            }
            acc
        }
    }
}

/// An expression turning the canonical error name that `name` yields into its Alibaba name
/// at run time (the same table as [`error_names::to_vendor`]): `sys.TaskTimeout` →
/// `FnF.TaskTimeout`, `sys.Invoke.X` → `FC.X`, `sys.Flow.X` → `fnf.X`, anything else unchanged
/// (`null` stays `null`).
pub(crate) fn vendor_error_node(name: Node) -> Node {
    let table: Map<String, Value> = error_names::FIXED
        .iter()
        .filter(|(_, c)| *c != "*")
        .map(|(v, c)| (c.to_string(), json!(v)))
        .collect();
    let table = Value::Object(table);
    let e = name.to_string();
    // `<prefix>X` → `<vendor>X`, else `otherwise`.
    let by_prefix = |prefix: &str, vendor: &str, otherwise: String| {
        format!(
            "get({{\"true\": format(\"{vendor}{{}}\", get(split(({e}) | \"\", \"{prefix}\"), 1)), \"false\": {otherwise}}}, jsonToString((({e}) | \"\") =~ /^{re}/))",
            re = prefix.replace('.', "\\."),
        )
    };
    let flow = by_prefix(
        crate::model::error_names::FLOW_PREFIX,
        error_names::FNF_PREFIX,
        e.clone(),
    );
    let invoke = by_prefix(
        crate::model::error_names::INVOKE_PREFIX,
        error_names::FC_PREFIX,
        flow,
    );
    let text = format!("get({table}, ({e}) | \"\") | {invoke}");
    parse(&text, &CANONICAL)
        .expect("the vendor error expression parses")
        .node()
        .clone()
}

/// The flow name of a sub-flow ARN `acs:fnf:{region}:{account}:flow/{name}` (region and account
/// may be empty; the flow always runs in the caller's namespace), or `None` for other ARNs.
pub(crate) fn subflow_arn(arn: &str) -> Option<String> {
    let rest = arn.trim().strip_prefix("acs:fnf:")?;
    let mut parts = rest.splitn(3, ':');
    let (_region, _account, resource) = (parts.next()?, parts.next()?, parts.next()?);
    let name = resource.strip_prefix("flow/")?.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// Longest retry interval either language accepts, in seconds.
pub(crate) const MAX_INTERVAL_SECONDS: f64 = 86_400.0;

/// How one flow language spells a list of retry policies: the same policy under two
/// vocabularies (old FDL `retry` / CloudFlow `Retry`).
pub(crate) struct RetryVocabulary {
    /// The list's field (`retry`, `Retry`).
    pub list: &'static str,
    /// What one entry is called in messages.
    pub what: &'static str,
    /// Every field an entry may have.
    pub allowed: &'static [&'static str],
    /// The error names field.
    pub errors: &'static str,
    /// The first interval field.
    pub interval: &'static str,
    /// The retries field.
    pub max_attempts: &'static str,
    /// The back-off multiplier field.
    pub backoff: &'static str,
    /// The interval cap field.
    pub max_interval: &'static str,
    /// Back-off rate when absent (or invalid).
    pub default_backoff: f64,
}

/// Reads the retry policies of a state in either language.
pub(crate) fn retry_policies(cx: &mut Cx, f: &Fields<'_>, v: &RetryVocabulary) -> Vec<RetryPolicy> {
    let Some(list) = f.list(cx, v.list) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(list.len());
    for (j, r) in list.iter().enumerate() {
        let p = at(&f.path_of(v.list), j);
        let Some(rf) = Fields::of(cx, r, &p, v.what) else {
            continue;
        };
        rf.only(cx, v.allowed, v.what);
        let errors = rf.error_list(cx, v.errors);
        let max_attempts = rf.count(cx, v.max_attempts, 1_000_000).unwrap_or(3);
        let interval = rf
            .number_in(cx, v.interval, 0.0, MAX_INTERVAL_SECONDS)
            .unwrap_or(1.0);
        let backoff = match rf.number(cx, v.backoff) {
            Some(b) if b < 1.0 => {
                cx.issue(rf.path_of(v.backoff), "must be at least 1.0");
                v.default_backoff
            }
            Some(b) => b,
            None => v.default_backoff,
        };
        let max_interval = rf.number_in(cx, v.max_interval, 0.0, MAX_INTERVAL_SECONDS);
        out.push(RetryPolicy {
            errors,
            condition: None,
            interval_seconds: interval,
            max_attempts,
            backoff_rate: backoff,
            max_interval_seconds: max_interval,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(n: &Node, input: Value) -> Value {
        Expr::from_node(n.clone()).eval(&Vars::new(&input)).unwrap()
    }

    #[test]
    fn vendor_error_names_at_run_time() {
        let n = vendor_error_node(var_path(Var::Input, &["e"]));
        assert_eq!(
            eval(&n, json!({"e": "sys.TaskTimeout"})),
            json!("FnF.TaskTimeout")
        );
        assert_eq!(
            eval(&n, json!({"e": "sys.Invoke.ResourceThrottled"})),
            json!("FC.ResourceThrottled")
        );
        assert_eq!(
            eval(&n, json!({"e": "sys.FunctionNotFound"})),
            json!("FC.FunctionNotFound")
        );
        assert_eq!(eval(&n, json!({"e": "MyError"})), json!("MyError"));
        assert_eq!(eval(&n, json!({"e": "sys.Fail"})), json!("FnF.Failed"));
        assert_eq!(
            eval(&n, json!({"e": "sys.Flow.ExecutionAlreadyExists"})),
            json!("fnf.ExecutionAlreadyExists")
        );
        assert_eq!(
            eval(&n, json!({"e": "sys.Flow.FlowNotExists"})),
            json!("fnf.FlowNotExists")
        );
        assert_eq!(eval(&n, json!({})), json!(null));
        // Canonical text re-parses to the same tree.
        let e = Expr::from_node(n.clone());
        assert_eq!(Expr::canonical(e.text()).unwrap(), e);
    }

    #[test]
    fn segments_apply_to_paths_objects_literals_and_calls() {
        let p = apply_segments(
            var_path(Var::Context, &["state"]),
            vec![Segment::Field("name".into())],
            true,
        )
        .unwrap();
        assert_eq!(p.to_string(), "$context.state.name");
        let obj = object_node(vec![("a", var_path(Var::Input, &["x"]))]);
        assert_eq!(
            apply_segments(
                obj.clone(),
                vec![Segment::Field("a".into()), Segment::Index(0)],
                true
            )
            .unwrap()
            .to_string(),
            "$input.x[0]"
        );
        assert!(apply_segments(obj.clone(), vec![Segment::Field("b".into())], true).is_err());
        assert_eq!(
            apply_segments(obj, vec![Segment::Field("b".into())], false).unwrap(),
            Node::Literal(Value::Null)
        );
        assert_eq!(
            apply_segments(
                Node::Literal(json!({"a": [1, 2]})),
                vec![Segment::Field("a".into()), Segment::Wildcard],
                true
            )
            .unwrap(),
            Node::Literal(json!([1, 2]))
        );
        let call = Node::Call(Func::Uuid, vec![]);
        assert_eq!(
            apply_segments(call, vec![Segment::Field("k".into())], false)
                .unwrap()
                .to_string(),
            "get(uuid(), \"k\")"
        );
    }
}
