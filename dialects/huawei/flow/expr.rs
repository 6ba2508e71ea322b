//! Huawei expressions lowered into canonical ones: JSONPath arguments with ` | ` fallbacks,
//! `state_data_filter` paths and `on_errors[].error` conditions.
//!
//! Huawei writes `$` for the value at hand and `$CONST` for the workflow constants; the two
//! syntaxes below differ only in what the bare `$` reads (the state input for arguments and
//! input filters, the state result for output filters and error conditions).

use serde_json::{Map, Value};

use crate::model::expr::{parse, BinaryOp, Expr, Node, Root, Segment, Syntax, Template, Var, Vars};
use crate::model::flow::DefinitionIssue;

/// Arguments and input filters: `$` is the state input.
pub const INPUT_SYNTAX: Syntax = Syntax {
    roots: &[("CONST", Var::Const)],
    bare_dollar: Some(Var::Input),
};

/// Output filters and error conditions: `$` is the state result (or the error object).
pub const RESULT_SYNTAX: Syntax = Syntax {
    roots: &[("CONST", Var::Const)],
    bare_dollar: Some(Var::Result),
};

/// Members of the canonical error object that are not function output.
const ERROR_FIELDS: [&str; 2] = ["error", "cause"];

fn push(issues: &mut Vec<DefinitionIssue>, path: &str, message: String) {
    issues.push(DefinitionIssue {
        path: path.to_string(),
        message,
    });
}

/// Compiles an `arguments` object (or any value inside it): strings starting with `$` are
/// expressions, everything else is constant; objects and arrays are walked recursively.
/// `path` is the field path of `value`; every bad expression is reported.
pub fn arguments(value: &Value, path: &str, issues: &mut Vec<DefinitionIssue>) -> Template {
    match value {
        Value::Object(members) => Template::object(
            members
                .iter()
                .map(|(k, v)| (k.clone(), arguments(v, &format!("{path}.{k}"), issues)))
                .collect(),
        ),
        Value::Array(items) => Template::array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| arguments(v, &format!("{path}[{i}]"), issues))
                .collect(),
        ),
        Value::String(s) if s.starts_with('$') => match value_expr(s, &INPUT_SYNTAX, true) {
            Ok(e) => Template::Expr(e),
            Err(message) => {
                push(issues, path, message);
                Template::Value(Value::Null)
            }
        },
        other => Template::Value(other.clone()),
    }
}

/// Compiles a `state_data_filter` path: `None` for `""` and `$` (no filter).
pub fn filter(
    text: &str,
    syntax: &Syntax,
    path: &str,
    issues: &mut Vec<DefinitionIssue>,
) -> Option<Template> {
    let t = text.trim();
    if t.is_empty() || t == "$" {
        return None;
    }
    match value_expr(t, syntax, false) {
        Ok(e) => Some(Template::Expr(e)),
        Err(message) => {
            push(issues, path, message);
            None
        }
    }
}

/// Parses a JSONPath with optional ` | ` fallbacks. With `constants_fallback`, a fallback
/// written `$.constants.x` (the API Explorer example's spelling) reads the constant `x`.
fn value_expr(text: &str, syntax: &Syntax, constants_fallback: bool) -> Result<Expr, String> {
    let expr =
        parse(text, syntax).map_err(|e| format!("invalid JSONPath expression {text:?}: {e}"))?;
    let node = expr.node().clone();
    check_value_shape(&node).map_err(|m| format!("{text:?}: {m}"))?;
    Ok(if constants_fallback {
        Expr::from_node(rewrite_constant_fallbacks(node))
    } else {
        expr
    })
}

/// A value expression is a path followed by any number of ` | ` fallbacks, each a literal or a
/// path.
fn check_value_shape(node: &Node) -> Result<(), String> {
    const SHAPE: &str = "expected a JSONPath such as $.a.b[0], optionally followed by ' | ' and \
                         a fallback (a number, a 'quoted string', true/false or a $CONST path)";
    match node {
        Node::Path { .. } => Ok(()),
        Node::Coalesce(left, right) => {
            check_value_shape(left)?;
            match **right {
                Node::Literal(_) | Node::Path { .. } => Ok(()),
                _ => Err(format!("the fallback after ' | ' is not a value; {SHAPE}")),
            }
        }
        _ => Err(SHAPE.to_string()),
    }
}

/// Rewrites fallbacks `$.constants.x` to `$const.x` (the primary path keeps reading the input).
fn rewrite_constant_fallbacks(node: Node) -> Node {
    match node {
        Node::Coalesce(left, right) => Node::Coalesce(
            Box::new(rewrite_constant_fallbacks(*left)),
            Box::new(constants_path(*right)),
        ),
        other => other,
    }
}

fn constants_path(node: Node) -> Node {
    match node {
        Node::Path {
            root: Root::Var(Var::Input),
            segments,
        } if matches!(segments.first(), Some(Segment::Field(f)) if f == "constants") => {
            Node::Path {
                root: Root::Var(Var::Const),
                segments: segments.into_iter().skip(1).collect(),
            }
        }
        other => other,
    }
}

/// Compiles an `on_errors[].error` condition over the error object (`$` = `$result`).
/// `None` for an empty condition (it matches every error). `$CONST` paths are replaced by
/// their values, since the engine does not bind constants for retry and catch conditions.
pub fn condition(
    text: &str,
    constants: &Map<String, Value>,
    path: &str,
    issues: &mut Vec<DefinitionIssue>,
) -> Option<Expr> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    match parse(t, &RESULT_SYNTAX) {
        Ok(e) => {
            let consts = Value::Object(constants.clone());
            Some(Expr::from_node(inline_constants(e.node().clone(), &consts)))
        }
        Err(e) => {
            push(
                issues,
                path,
                format!("invalid condition expression {t:?}: {e}"),
            );
            None
        }
    }
}

fn inline_constants(node: Node, consts: &Value) -> Node {
    let inline = |n: Node| inline_constants(n, consts);
    let boxed = |n: Box<Node>| Box::new(inline_constants(*n, consts));
    match node {
        Node::Path { root, segments } => {
            let segments = segments
                .into_iter()
                .map(|s| match s {
                    Segment::Filter(f) => Segment::Filter(boxed(f)),
                    other => other,
                })
                .collect();
            let path = Node::Path { root, segments };
            if root != Root::Var(Var::Const) {
                return path;
            }
            let null = Value::Null;
            let mut vars = Vars::new(&null);
            vars.consts = Some(consts);
            match Expr::from_node(path.clone()).eval(&vars) {
                Ok(v) => Node::Literal(v),
                Err(_) => path,
            }
        }
        Node::Unary(op, n) => Node::Unary(op, boxed(n)),
        Node::Binary { op, left, right } => Node::Binary {
            op,
            left: boxed(left),
            right: boxed(right),
        },
        Node::Coalesce(l, r) => Node::Coalesce(boxed(l), boxed(r)),
        Node::Call(f, args) => Node::Call(f, args.into_iter().map(inline).collect()),
        Node::Array(items) => Node::Array(items.into_iter().map(inline).collect()),
        Node::Object(members) => {
            Node::Object(members.into_iter().map(|(k, n)| (k, inline(n))).collect())
        }
        other @ (Node::Literal(_) | Node::Regex(_)) => other,
    }
}

/// Whether a condition reads some field of the function output (anything but the error
/// object's own `error` and `cause`), so that a returned business error can make it true.
pub fn reads_output(cond: &Expr) -> bool {
    let mut paths = Vec::new();
    result_paths(cond.node(), &mut paths);
    paths.iter().any(|p| is_output_path(p))
}

/// Builds the Task's `fail_when`: the OR of the conditions that read output fields. Each
/// predicate (an operand of `&&` / `||`) is guarded so that it only holds when the definite
/// output paths it reads are present: `$.errorCode != 0` must not fail a function that returns
/// no `errorCode` at all.
pub fn fail_when<'a>(conditions: impl IntoIterator<Item = &'a Expr>) -> Option<Expr> {
    conditions
        .into_iter()
        .filter(|c| reads_output(c))
        .map(|c| guard(c.node()))
        .reduce(|acc, n| Node::Binary {
            op: BinaryOp::Or,
            left: Box::new(acc),
            right: Box::new(n),
        })
        .map(Expr::from_node)
}

fn guard(node: &Node) -> Node {
    match node {
        Node::Binary {
            op: op @ (BinaryOp::And | BinaryOp::Or),
            left,
            right,
        } => Node::Binary {
            op: *op,
            left: Box::new(guard(left)),
            right: Box::new(guard(right)),
        },
        atom => {
            let mut paths = Vec::new();
            result_paths(atom, &mut paths);
            let mut guards: Vec<Node> = Vec::new();
            for p in paths {
                if is_output_path(p) && is_definite(p) {
                    let g = Node::Binary {
                        op: BinaryOp::Ne,
                        left: Box::new(p.clone()),
                        right: Box::new(Node::Literal(Value::Null)),
                    };
                    if !guards.contains(&g) {
                        guards.push(g);
                    }
                }
            }
            guards
                .into_iter()
                .chain(std::iter::once(atom.clone()))
                .reduce(and)
                .expect("at least the atom")
        }
    }
}

fn and(left: Node, right: Node) -> Node {
    Node::Binary {
        op: BinaryOp::And,
        left: Box::new(left),
        right: Box::new(right),
    }
}

/// Every path rooted at `$result` (the bare `$` of a condition), in reading order.
fn result_paths<'n>(node: &'n Node, out: &mut Vec<&'n Node>) {
    match node {
        Node::Path { root, segments } => {
            if *root == Root::Var(Var::Result) {
                out.push(node);
            }
            for s in segments {
                if let Segment::Filter(f) = s {
                    result_paths(f, out);
                }
            }
        }
        Node::Unary(_, n) => result_paths(n, out),
        Node::Binary { left, right, .. } | Node::Coalesce(left, right) => {
            result_paths(left, out);
            result_paths(right, out);
        }
        Node::Call(_, items) | Node::Array(items) => {
            items.iter().for_each(|n| result_paths(n, out));
        }
        Node::Object(members) => members.iter().for_each(|(_, n)| result_paths(n, out)),
        Node::Literal(_) | Node::Regex(_) => {}
    }
}

fn is_output_path(path: &Node) -> bool {
    match path {
        Node::Path { segments, .. } => match segments.first() {
            None => false,
            Some(Segment::Field(f)) => !ERROR_FIELDS.contains(&f.as_str()),
            Some(_) => true,
        },
        _ => false,
    }
}

fn is_definite(path: &Node) -> bool {
    match path {
        Node::Path { segments, .. } => segments
            .iter()
            .all(|s| matches!(s, Segment::Field(_) | Segment::Index(_))),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn arg(text: &str) -> Result<String, String> {
        let mut issues = Vec::new();
        let t = arguments(&json!(text), "a", &mut issues);
        match t {
            Template::Expr(e) if issues.is_empty() => Ok(e.text().to_string()),
            _ => Err(issues
                .iter()
                .map(|i| i.message.clone())
                .collect::<Vec<_>>()
                .join("; ")),
        }
    }

    #[test]
    fn arguments_lower_to_canonical_paths_and_fallbacks() {
        assert_eq!(arg("$.a.b[0].c").unwrap(), "$input.a.b[0].c");
        assert_eq!(arg("$").unwrap(), "$input");
        assert_eq!(arg("$.a | 3").unwrap(), "$input.a | 3");
        assert_eq!(arg("$.a | 'x y'").unwrap(), "$input.a | \"x y\"");
        assert_eq!(arg("$.a | true").unwrap(), "$input.a | true");
        assert_eq!(arg("$.a | $CONST.b.c").unwrap(), "$input.a | $const.b.c");
        assert_eq!(
            arg("$.a | $.constants.b.value").unwrap(),
            "$input.a | $const.b.value"
        );
        assert_eq!(
            arg("$.constants.a").unwrap(),
            "$input.constants.a",
            "the primary path reads the input"
        );
        assert_eq!(arg("$CONST.a").unwrap(), "$const.a");
        assert_eq!(
            arg("$.a[?(@.n > 1)].id").unwrap(),
            "$input.a[?(@.n > 1)].id"
        );
    }

    #[test]
    fn bad_arguments_are_reported() {
        assert!(arg("$.a[").unwrap_err().contains("invalid JSONPath"));
        assert!(arg("$.a + 1").unwrap_err().contains("expected a JSONPath"));
        assert!(arg("$.a | $.b + 1").unwrap_err().contains("fallback"));
        assert!(arg("$foo").unwrap_err().contains("unknown variable"));
        let mut issues = Vec::new();
        let t = arguments(&json!({"x": "plain", "n": 1}), "a", &mut issues);
        assert_eq!(t, Template::Value(json!({"x": "plain", "n": 1})));
    }

    #[test]
    fn conditions_and_fail_when() {
        let mut issues = Vec::new();
        let consts = json!({"bad": 500}).as_object().unwrap().clone();
        let c = condition("$.errorCode == $CONST.bad", &consts, "e", &mut issues).unwrap();
        assert_eq!(c.text(), "$result.errorCode == 500");
        assert!(reads_output(&c));
        let name = condition("$.error == 'Boom'", &consts, "e", &mut issues).unwrap();
        assert!(!reads_output(&name));
        assert!(condition("  ", &consts, "e", &mut issues).is_none());
        assert!(condition("$.a ==", &consts, "e", &mut issues).is_none());
        assert_eq!(issues.len(), 1);
        let f = fail_when([&c, &name]).unwrap();
        assert_eq!(
            f.text(),
            "$result.errorCode != null && $result.errorCode == 500"
        );
        let d = condition("$.status >= 400 || $.code != 0", &consts, "e", &mut issues).unwrap();
        let f = fail_when([&c, &d]).unwrap();
        assert_eq!(
            f.text(),
            "$result.errorCode != null && $result.errorCode == 500 || \
             ($result.status != null && $result.status >= 400 || \
             $result.code != null && $result.code != 0)"
        );
        assert!(fail_when([&name]).is_none());
    }
}
