//! Evaluation of expressions over bound [`Vars`].
//!
//! Semantics (see `docs/expressions.md`):
//! * a definite path (only `.name` / `[n]` steps) that misses yields `null`;
//! * an indefinite path (wildcard, slice, union, filter, recursive descent) yields the array of
//!   all matches, flattened across several indefinite steps (Jayway JSONPath semantics);
//! * `null` and `false` are falsy, every other value is truthy;
//! * `==` is deep JSON equality with `1 == 1.0`; ordering compares number with number or
//!   string with string and is `false` otherwise;
//! * `a | b` is `b` when `a` is `null` or an empty indefinite-path result.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Number, Value};

use super::ast::{BinaryOp, Node, Root, Segment, Selector, UnaryOp};
use super::functions::{self, type_name, Func};
use super::vars::Vars;
use super::Expr;

/// Why an expression could not be evaluated (type mismatch, division by zero, bad regex...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalError {
    /// What went wrong, for humans.
    pub message: String,
}

impl EvalError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        EvalError {
            message: message.into(),
        }
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EvalError {}

/// Truthiness used by conditions, `!`, `&&`, `||` and filters: `null` and `false` are falsy,
/// every other value (including `0`, `""`, `[]` and `{}`) is truthy.
pub fn is_truthy(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Bool(false))
}

/// Deep JSON equality where numbers compare by value across integer and float (`1 == 1.0`)
/// and object member order does not matter.
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y) == Some(Ordering::Equal),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn compare_numbers(x: &Number, y: &Number) -> Option<Ordering> {
    if let (Some(a), Some(b)) = (x.as_i64(), y.as_i64()) {
        return Some(a.cmp(&b));
    }
    if let (Some(a), Some(b)) = (x.as_u64(), y.as_u64()) {
        return Some(a.cmp(&b));
    }
    x.as_f64()?.partial_cmp(&y.as_f64()?)
}

impl Expr {
    /// Evaluates the expression.
    pub fn eval(&self, vars: &Vars) -> Result<Value, EvalError> {
        let env = Env {
            vars: *vars,
            current: None,
        };
        eval_node(self.node(), &env).map(Cow::into_owned)
    }

    /// Evaluates the expression as a condition: its value's truthiness ([`is_truthy`]).
    pub fn eval_bool(&self, vars: &Vars) -> Result<bool, EvalError> {
        let env = Env {
            vars: *vars,
            current: None,
        };
        eval_node(self.node(), &env).map(|v| is_truthy(&v))
    }
}

/// Everything a node can read: the variables and, inside a filter, the node under test.
struct Env<'a> {
    vars: Vars<'a>,
    current: Option<&'a Value>,
}

static NULL: Value = Value::Null;

/// The truthiness of a node's value.
fn truth<'a>(node: &'a Node, env: &Env<'a>) -> Result<bool, EvalError> {
    Ok(is_truthy(eval_node(node, env)?.as_ref()))
}

fn eval_node<'a>(node: &'a Node, env: &Env<'a>) -> Result<Cow<'a, Value>, EvalError> {
    Ok(match node {
        Node::Literal(v) => Cow::Borrowed(v),
        Node::Regex(r) => Cow::Owned(Value::String(r.pattern().to_string())),
        Node::Path { root, segments } => {
            let start = match root {
                Root::Var(v) => env.vars.get(*v),
                Root::Current => env.current.unwrap_or(&NULL),
            };
            if segments.iter().all(Segment::is_definite) {
                Cow::Borrowed(definite(start, segments).unwrap_or(&NULL))
            } else {
                let mut out = Vec::new();
                walk(start, segments, env, &mut out)?;
                Cow::Owned(Value::Array(out.into_iter().cloned().collect()))
            }
        }
        Node::Unary(UnaryOp::Not, n) => Cow::Owned(Value::Bool(!truth(n, env)?)),
        Node::Unary(UnaryOp::Neg, n) => Cow::Owned(negate(eval_node(n, env)?.as_ref())?),
        Node::Binary { op, left, right } => Cow::Owned(binary(*op, left, right, env)?),
        Node::Coalesce(left, right) => {
            let l = eval_node(left, env)?;
            let missing = match l.as_ref() {
                Value::Null => true,
                Value::Array(a) => a.is_empty() && left.is_indefinite_path(),
                _ => false,
            };
            if missing {
                eval_node(right, env)?
            } else {
                l
            }
        }
        Node::Call(Func::RegexMatchString, args)
            if matches!(args.first(), Some(Node::Regex(_))) =>
        {
            let Some(Node::Regex(r)) = args.first() else {
                unreachable!("guarded by the match arm")
            };
            let s = eval_node(&args[1], env)?;
            let s = s.as_str().ok_or_else(|| {
                EvalError::new(format!(
                    "regexMatchString: argument 2 must be a string, got {}",
                    type_name(&s)
                ))
            })?;
            Cow::Owned(Value::Bool(r.regex().is_match(s)))
        }
        Node::Call(func, args) => {
            let values = args
                .iter()
                .map(|a| eval_node(a, env))
                .collect::<Result<Vec<_>, _>>()?;
            Cow::Owned(func.call(&values)?)
        }
        Node::Array(items) => Cow::Owned(Value::Array(
            items
                .iter()
                .map(|n| eval_node(n, env).map(Cow::into_owned))
                .collect::<Result<_, _>>()?,
        )),
        Node::Object(members) => {
            let mut map = Map::with_capacity(members.len());
            for (k, n) in members {
                map.insert(k.clone(), eval_node(n, env)?.into_owned());
            }
            Cow::Owned(Value::Object(map))
        }
    })
}

/// Follows `.name` / `[n]` steps only.
fn definite<'a>(mut v: &'a Value, segments: &[Segment]) -> Option<&'a Value> {
    for s in segments {
        v = match (s, v) {
            (Segment::Field(name), Value::Object(o)) => o.get(name)?,
            (Segment::Index(i), Value::Array(a)) => functions::index(a, *i)?,
            _ => return None,
        };
    }
    Some(v)
}

/// Applies `segments` to `v`, pushing every match to `out`.
fn walk<'a>(
    v: &'a Value,
    segments: &'a [Segment],
    env: &Env<'a>,
    out: &mut Vec<&'a Value>,
) -> Result<(), EvalError> {
    let Some((seg, rest)) = segments.split_first() else {
        out.push(v);
        return Ok(());
    };
    match seg {
        Segment::Field(name) => {
            if let Some(c) = v.as_object().and_then(|o| o.get(name)) {
                walk(c, rest, env, out)?;
            }
        }
        Segment::Index(i) => {
            if let Some(c) = v.as_array().and_then(|a| functions::index(a, *i)) {
                walk(c, rest, env, out)?;
            }
        }
        Segment::Wildcard => match v {
            Value::Array(a) => {
                for c in a {
                    walk(c, rest, env, out)?;
                }
            }
            Value::Object(o) => {
                for c in o.values() {
                    walk(c, rest, env, out)?;
                }
            }
            _ => {}
        },
        Segment::Slice(start, end, step) => {
            if let Some(a) = v.as_array() {
                for i in slice_indices(a.len(), *start, *end, *step) {
                    walk(&a[i], rest, env, out)?;
                }
            }
        }
        Segment::Union(items) => {
            for item in items {
                let c = match (item, v) {
                    (Selector::Index(i), Value::Array(a)) => functions::index(a, *i),
                    (Selector::Name(n), Value::Object(o)) => o.get(n),
                    _ => None,
                };
                if let Some(c) = c {
                    walk(c, rest, env, out)?;
                }
            }
        }
        Segment::Filter(cond) => {
            let test = |c: &'a Value| -> Result<bool, EvalError> {
                let inner = Env {
                    vars: env.vars,
                    current: Some(c),
                };
                truth(cond, &inner)
            };
            match v {
                Value::Array(a) => {
                    for c in a {
                        if test(c)? {
                            walk(c, rest, env, out)?;
                        }
                    }
                }
                // Jayway: a filter on an object tests the object itself.
                Value::Object(_) if test(v)? => walk(v, rest, env, out)?,
                _ => {}
            }
        }
        Segment::Recursive(name) => {
            let mut found = Vec::new();
            descend(v, name.as_deref(), &mut found);
            for c in found {
                walk(c, rest, env, out)?;
            }
        }
    }
    Ok(())
}

/// Collects the members called `name` at any depth (each object's own member before its
/// descendants'), or every descendant in document order when `name` is `None`.
fn descend<'a>(v: &'a Value, name: Option<&str>, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(o) => {
            if let Some(n) = name {
                if let Some(c) = o.get(n) {
                    out.push(c);
                }
            }
            for c in o.values() {
                if name.is_none() {
                    out.push(c);
                }
                descend(c, name, out);
            }
        }
        Value::Array(a) => {
            for c in a {
                if name.is_none() {
                    out.push(c);
                }
                descend(c, name, out);
            }
        }
        _ => {}
    }
}

/// Python slice semantics over an array of `len` elements.
fn slice_indices(
    len: usize,
    start: Option<i64>,
    end: Option<i64>,
    step: Option<i64>,
) -> Vec<usize> {
    let len = len as i64;
    let step = step.unwrap_or(1);
    let norm = |i: i64| if i < 0 { i + len } else { i };
    let mut out = Vec::new();
    if step > 0 {
        let mut i = start.map_or(0, norm).clamp(0, len);
        let end = end.map_or(len, norm).clamp(0, len);
        while i < end {
            out.push(i as usize);
            let Some(n) = i.checked_add(step) else { break };
            i = n;
        }
    } else if step < 0 {
        let mut i = start.map_or(len - 1, norm).clamp(-1, len - 1);
        let end = end.map_or(-1, norm).clamp(-1, len - 1);
        while i > end {
            out.push(i as usize);
            let Some(n) = i.checked_add(step) else { break };
            i = n;
        }
    }
    out
}

fn negate(v: &Value) -> Result<Value, EvalError> {
    let Value::Number(n) = v else {
        return Err(EvalError::new(format!("cannot negate {}", type_name(v))));
    };
    if let Some(i) = n.as_i64() {
        if let Some(r) = i.checked_neg() {
            return Ok(Value::from(r));
        }
    }
    float(-n.as_f64().unwrap_or(0.0))
}

fn float(f: f64) -> Result<Value, EvalError> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| EvalError::new("arithmetic result is not a finite number"))
}

fn binary<'a>(
    op: BinaryOp,
    left: &'a Node,
    right: &'a Node,
    env: &Env<'a>,
) -> Result<Value, EvalError> {
    match op {
        BinaryOp::And => return Ok(Value::Bool(truth(left, env)? && truth(right, env)?)),
        BinaryOp::Or => return Ok(Value::Bool(truth(left, env)? || truth(right, env)?)),
        BinaryOp::RegexMatch => {
            let l = eval_node(left, env)?;
            let Value::String(s) = l.as_ref() else {
                return Ok(Value::Bool(false));
            };
            return Ok(Value::Bool(match right {
                Node::Regex(r) => r.regex().is_match(s),
                other => match eval_node(other, env)?.as_ref() {
                    Value::String(p) => functions::compile(p)?.is_match(s),
                    v => {
                        return Err(EvalError::new(format!(
                            "the right side of '=~' must be a regex or a string, got {}",
                            type_name(v)
                        )))
                    }
                },
            }));
        }
        _ => {}
    }
    let l = eval_node(left, env)?;
    let r = eval_node(right, env)?;
    let (l, r) = (l.as_ref(), r.as_ref());
    Ok(match op {
        BinaryOp::Eq => Value::Bool(json_equal(l, r)),
        BinaryOp::Ne => Value::Bool(!json_equal(l, r)),
        BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            let ord = match (l, r) {
                (Value::Number(a), Value::Number(b)) => compare_numbers(a, b),
                (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
                _ => None,
            };
            Value::Bool(ord.is_some_and(|o| match op {
                BinaryOp::Lt => o == Ordering::Less,
                BinaryOp::Le => o != Ordering::Greater,
                BinaryOp::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            }))
        }
        BinaryOp::In => Value::Bool(contains(r, l)),
        BinaryOp::NotIn => Value::Bool(!contains(r, l)),
        BinaryOp::Add => match (l, r) {
            (Value::String(a), Value::String(b)) => {
                let mut s = String::with_capacity(a.len() + b.len());
                s.push_str(a);
                s.push_str(b);
                Value::String(s)
            }
            (Value::Number(a), Value::Number(b)) => arith(op, a, b)?,
            _ => {
                return Err(EvalError::new(format!(
                    "cannot add {} and {} (use two numbers or two strings)",
                    type_name(l),
                    type_name(r)
                )))
            }
        },
        _ => match (l, r) {
            (Value::Number(a), Value::Number(b)) => arith(op, a, b)?,
            _ => {
                return Err(EvalError::new(format!(
                    "'{}' needs two numbers, got {} and {}",
                    op.symbol(),
                    type_name(l),
                    type_name(r)
                )))
            }
        },
    })
}

/// `needle in haystack`.
fn contains(haystack: &Value, needle: &Value) -> bool {
    match (haystack, needle) {
        (Value::Array(a), n) => a.iter().any(|e| json_equal(e, n)),
        (Value::Object(o), Value::String(k)) => o.contains_key(k),
        (Value::String(s), Value::String(sub)) => s.contains(sub.as_str()),
        _ => false,
    }
}

/// `+ - * / %` on two numbers: integers stay integers unless the result overflows or a
/// division is inexact; division or remainder by zero is an error.
fn arith(op: BinaryOp, a: &Number, b: &Number) -> Result<Value, EvalError> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        if matches!(op, BinaryOp::Div | BinaryOp::Mod) && y == 0 {
            return Err(EvalError::new(if op == BinaryOp::Div {
                "division by zero"
            } else {
                "remainder by zero"
            }));
        }
        let exact = match op {
            BinaryOp::Add => x.checked_add(y),
            BinaryOp::Sub => x.checked_sub(y),
            BinaryOp::Mul => x.checked_mul(y),
            BinaryOp::Div if x.checked_rem(y) == Some(0) => x.checked_div(y),
            BinaryOp::Mod => x.checked_rem(y),
            _ => None,
        };
        if let Some(r) = exact {
            return Ok(Value::from(r));
        }
    }
    let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
    float(match op {
        BinaryOp::Add => x + y,
        BinaryOp::Sub => x - y,
        BinaryOp::Mul => x * y,
        BinaryOp::Div | BinaryOp::Mod if y == 0.0 => {
            return Err(EvalError::new(if op == BinaryOp::Div {
                "division by zero"
            } else {
                "remainder by zero"
            }))
        }
        BinaryOp::Div => x / y,
        _ => x % y,
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse::{parse, Syntax, CANONICAL};
    use super::super::vars::Var;
    use super::*;
    use serde_json::json;

    const FDL: Syntax = Syntax {
        roots: &[
            ("input", Var::Input),
            ("local", Var::ScopeLocal),
            ("context", Var::Context),
        ],
        bare_dollar: Some(Var::Input),
    };
    const HUAWEI: Syntax = Syntax {
        roots: &[("CONST", Var::Const)],
        bare_dollar: Some(Var::Input),
    };

    fn ev(text: &str, input: Value) -> Value {
        let e = parse(text, &CANONICAL).unwrap_or_else(|e| panic!("{text}: {e}"));
        e.eval(&Vars::new(&input))
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn ev_err(text: &str, input: Value) -> String {
        let e = parse(text, &CANONICAL).unwrap_or_else(|e| panic!("{text}: {e}"));
        e.eval(&Vars::new(&input)).expect_err(text).message
    }

    fn store() -> Value {
        json!({"store": {
            "book": [
                {"title": "A", "price": 8.95, "tag": "x", "isbn": "1"},
                {"title": "B", "price": 12.99, "tag": "y"},
                {"title": "C", "price": 8.99, "tag": "x", "isbn": "2"},
                {"title": "D", "price": 22.99, "tag": "z"}
            ],
            "bicycle": {"color": "red", "price": 19.95}
        }, "limit": 10})
    }

    #[test]
    fn definite_paths_and_missing_members() {
        let input = json!({"a": {"b": [1, 2, {"c": "x"}]}, "k s": 5});
        assert_eq!(ev("$input.a.b[2].c", input.clone()), json!("x"));
        assert_eq!(ev("$.a.b[-1].c", input.clone()), json!("x"));
        assert_eq!(ev("$.a.b[-3]", input.clone()), json!(1));
        assert_eq!(ev("$.a.b[-4]", input.clone()), json!(null));
        assert_eq!(ev("$.a.b[3]", input.clone()), json!(null));
        assert_eq!(ev("$.a.x.y.z", input.clone()), json!(null));
        assert_eq!(ev("$.a.b.c", input.clone()), json!(null));
        assert_eq!(ev(r#"$["k s"]"#, input.clone()), json!(5));
        assert_eq!(ev("$['k s']", input.clone()), json!(5));
        assert_eq!(ev("$", input.clone()), input);
        assert_eq!(ev("$result.a", input), json!(null));
    }

    #[test]
    fn indefinite_paths_project_and_flatten() {
        let local = json!([
            {"status": "ok", "parts": [1, 2]},
            {"parts": [3]},
            {"status": "bad", "parts": []}
        ]);
        let input = json!({});
        let mut vars = Vars::new(&input);
        vars.scope_local = Some(&local);
        let e = parse("$local[*].status", &FDL).unwrap();
        assert_eq!(e.eval(&vars).unwrap(), json!(["ok", "bad"]));
        let e = parse("$local[*].parts[*]", &FDL).unwrap();
        assert_eq!(e.eval(&vars).unwrap(), json!([1, 2, 3]));
        let e = parse("$local[*].parts", &FDL).unwrap();
        assert_eq!(e.eval(&vars).unwrap(), json!([[1, 2], [3], []]));
        let e = parse("$local[*].nothing", &FDL).unwrap();
        assert_eq!(e.eval(&vars).unwrap(), json!([]));
        assert_eq!(ev("$.o.*", json!({"o": {"a": 1, "b": 2}})), json!([1, 2]));
        assert_eq!(ev("$.n[*]", json!({"n": 5})), json!([]));
    }

    #[test]
    fn slices_unions() {
        let input = json!({"a": [0, 1, 2, 3, 4, 5], "o": {"x": 1, "y": 2, "z": 3}});
        assert_eq!(ev("$.a[1:3]", input.clone()), json!([1, 2]));
        assert_eq!(ev("$.a[:2]", input.clone()), json!([0, 1]));
        assert_eq!(ev("$.a[-2:]", input.clone()), json!([4, 5]));
        assert_eq!(ev("$.a[::2]", input.clone()), json!([0, 2, 4]));
        assert_eq!(ev("$.a[::-2]", input.clone()), json!([5, 3, 1]));
        assert_eq!(ev("$.a[4:100]", input.clone()), json!([4, 5]));
        assert_eq!(ev("$.a[3:1]", input.clone()), json!([]));
        assert_eq!(ev("$.a[0,-1,9]", input.clone()), json!([0, 5]));
        assert_eq!(ev("$.o['z','x','q']", input.clone()), json!([3, 1]));
        assert_eq!(ev("$.o[1:2]", input.clone()), json!([]));
        let huge = "$.a[1:9223372036854775807:9223372036854775807]";
        assert_eq!(ev(huge, input.clone()), json!([1]));
        let huge_neg = "$.a[-1:-9223372036854775808:-9223372036854775808]";
        assert_eq!(ev(huge_neg, input), json!([5]));
    }

    #[test]
    fn filters() {
        assert_eq!(
            ev(
                "$.store.book[?(@.price < 10 && @.tag == \"x\")].title",
                store()
            ),
            json!(["A", "C"])
        );
        assert_eq!(
            ev("$.store.book[?(@.isbn)].title", store()),
            json!(["A", "C"])
        );
        assert_eq!(
            ev("$.store.book[?(@.price > $.limit)].title", store()),
            json!(["B", "D"])
        );
        assert_eq!(
            ev("$.store.book[?(@.tag in ['y', 'z'])].title", store()),
            json!(["B", "D"])
        );
        assert_eq!(
            ev("$.store.book[?(@.title =~ /^[a-b]$/i)].price", store()),
            json!([8.95, 12.99])
        );
        assert_eq!(
            ev("$.store.bicycle[?(@.color == 'red')].price", store()),
            json!([19.95])
        );
        assert_eq!(
            ev("$.store.bicycle[?(@.color == 'blue')]", store()),
            json!([])
        );
        assert_eq!(ev("$.n[?(@ > 1)]", json!({"n": [1, 2, 3]})), json!([2, 3]));
    }

    #[test]
    fn recursive_descent() {
        assert_eq!(
            ev("$..price", store()),
            json!([8.95, 12.99, 8.99, 22.99, 19.95])
        );
        assert_eq!(ev("$.store..title", store()), json!(["A", "B", "C", "D"]));
        assert_eq!(ev("$..book[0].title", store()), json!(["A"]));
        assert_eq!(
            ev("$.a..*", json!({"a": {"b": [1, {"c": 2}]}})),
            json!([[1, {"c": 2}], 1, {"c": 2}, 2])
        );
        assert_eq!(ev("$..missing", store()), json!([]));
    }

    #[test]
    fn truthiness_and_logic() {
        for (v, t) in [
            (json!(null), false),
            (json!(false), false),
            (json!(true), true),
            (json!(0), true),
            (json!(""), true),
            (json!([]), true),
            (json!({}), true),
        ] {
            assert_eq!(is_truthy(&v), t, "{v}");
            assert_eq!(ev("!$.v", json!({ "v": v })), json!(!t));
        }
        assert_eq!(ev("$.a && $.b", json!({"a": 1, "b": "x"})), json!(true));
        assert_eq!(ev("$.a && $.b", json!({"a": 1})), json!(false));
        assert_eq!(ev("$.a || $.b", json!({"b": 0})), json!(true));
        assert_eq!(ev("$.a || $.b", json!({})), json!(false));
        // Short-circuit: the right side would fail.
        assert_eq!(ev("false && 1 / 0 == 1", json!({})), json!(false));
        assert_eq!(ev("true || 1 / 0 == 1", json!({})), json!(true));
        let e = parse("$.n > 3", &CANONICAL).unwrap();
        assert!(e.eval_bool(&Vars::new(&json!({"n": 4}))).unwrap());
        assert!(!e.eval_bool(&Vars::new(&json!({"n": 3}))).unwrap());
    }

    #[test]
    fn equality_and_ordering() {
        assert_eq!(ev("1 == 1.0", json!({})), json!(true));
        assert_eq!(
            ev(
                "$.a == $.b",
                json!({"a": {"x": [1, 2.0], "y": null}, "b": {"y": null, "x": [1.0, 2]}})
            ),
            json!(true)
        );
        assert_eq!(
            ev("$.a != $.b", json!({"a": [1], "b": [1, 2]})),
            json!(true)
        );
        assert_eq!(ev("$.missing == null", json!({})), json!(true));
        assert_eq!(ev("\"1\" == 1", json!({})), json!(false));
        assert_eq!(ev("2 < 10", json!({})), json!(true));
        assert_eq!(ev("\"2\" < \"10\"", json!({})), json!(false));
        assert_eq!(ev("1.5 <= 1.5", json!({})), json!(true));
        assert_eq!(ev("3 > 2.5", json!({})), json!(true));
        assert_eq!(ev("3 >= 4", json!({})), json!(false));
        assert_eq!(ev("\"b\" >= \"a\"", json!({})), json!(true));
        assert_eq!(ev("1 < \"2\"", json!({})), json!(false));
        assert_eq!(ev("$.x > 0", json!({})), json!(false));
        assert_eq!(ev("$.x <= 0", json!({})), json!(false));
        assert_eq!(
            ev("9223372036854775807 > 9223372036854775806", json!({})),
            json!(true)
        );
        assert_eq!(ev("18446744073709551615 > 1", json!({})), json!(true));
    }

    #[test]
    fn membership() {
        let input = json!({"kind": "b", "o": {"k": 1}, "arr": [1, {"x": 2}]});
        assert_eq!(ev("$.kind in [\"a\", \"b\"]", input.clone()), json!(true));
        assert_eq!(ev("$.kind in [\"a\", $.o.k]", input.clone()), json!(false));
        assert_eq!(ev("1.0 in $.arr", input.clone()), json!(true));
        assert_eq!(ev("{\"x\": 2} in $.arr", input.clone()), json!(true));
        assert_eq!(ev("\"k\" in $.o", input.clone()), json!(true));
        assert_eq!(ev("\"z\" in $.o", input.clone()), json!(false));
        assert_eq!(ev("1 in $.o", input.clone()), json!(false));
        assert_eq!(ev("\"ell\" in \"hello\"", input.clone()), json!(true));
        assert_eq!(ev("\"z\" nin \"hello\"", input.clone()), json!(true));
        assert_eq!(ev("\"k\" nin $.o", input.clone()), json!(false));
        assert_eq!(ev("1 in $.missing", input.clone()), json!(false));
        assert_eq!(ev("$.kind not in [\"a\"]", input), json!(true));
    }

    #[test]
    fn arithmetic() {
        assert_eq!(ev("1 + 2", json!({})), json!(3));
        assert_eq!(ev("1 + 2.5", json!({})), json!(3.5));
        assert_eq!(ev("\"a\" + \"b\"", json!({})), json!("ab"));
        assert_eq!(ev("7 - 10", json!({})), json!(-3));
        assert_eq!(ev("6 * 7", json!({})), json!(42));
        assert_eq!(ev("6 / 3", json!({})), json!(2));
        assert_eq!(ev("7 / 2", json!({})), json!(3.5));
        assert_eq!(ev("7 % 4", json!({})), json!(3));
        assert_eq!(ev("7.5 % 2", json!({})), json!(1.5));
        assert_eq!(ev("-$.n", json!({"n": 4})), json!(-4));
        assert_eq!(
            ev("9223372036854775807 + 1", json!({})),
            json!(9223372036854775808.0)
        );
        assert_eq!(ev("$.n * 2 + 1", json!({"n": 4})), json!(9));
        assert_eq!(ev_err("1 / 0", json!({})), "division by zero");
        assert_eq!(ev_err("1.5 / 0", json!({})), "division by zero");
        assert_eq!(ev_err("1 % 0", json!({})), "remainder by zero");
        assert!(ev_err("\"a\" + 1", json!({})).contains("cannot add a string and a number"));
        assert!(ev_err("\"a\" * 2", json!({})).contains("'*' needs two numbers"));
        assert!(ev_err("-$.s", json!({"s": "x"})).contains("cannot negate a string"));
        assert!(ev_err("$.a - 1", json!({})).contains("null"));
    }

    #[test]
    fn regex_match() {
        assert_eq!(ev("$.s =~ /^ab+c$/", json!({"s": "abbc"})), json!(true));
        assert_eq!(ev("$.s =~ \"^ab+c$\"", json!({"s": "abd"})), json!(false));
        assert_eq!(ev("$.s =~ $.p", json!({"s": "xyz", "p": "y"})), json!(true));
        assert_eq!(ev("$.n =~ /1/", json!({"n": 1})), json!(false));
        assert!(ev_err("$.s =~ $.p", json!({"s": "x", "p": "("})).contains("invalid regular"));
        assert!(ev_err("$.s =~ 3", json!({"s": "x"})).contains("regex or a string"));
        assert_eq!(
            ev("regexMatchString(\"^a\", $.s)", json!({"s": "ab"})),
            json!(true)
        );
        assert!(ev_err("regexMatchString(/a/, $.n)", json!({"n": 1})).contains("argument 2"));
    }

    #[test]
    fn coalesce_with_huawei_fallbacks() {
        let consts = json!({"b": "from-const"});
        let input = json!({"a": null, "z": 0, "list": []});
        let mut vars = Vars::new(&input);
        vars.consts = Some(&consts);
        let h = |t: &str| parse(t, &HUAWEI).unwrap().eval(&vars).unwrap();
        assert_eq!(h("$.a | 'x'"), json!("x"));
        assert_eq!(h("$.missing | 3"), json!(3));
        assert_eq!(h("$.a | $CONST.b"), json!("from-const"));
        assert_eq!(h("$.a | true"), json!(true));
        assert_eq!(h("$.z | 3"), json!(0));
        assert_eq!(h("$.list | 3"), json!([]));
        assert_eq!(h("$.list[*] | 3"), json!(3));
        assert_eq!(h("$.a | $.b | 'last'"), json!("last"));
        assert_eq!(h("$.a == null | false"), json!(true));
    }

    #[test]
    fn literals_arrays_objects_and_calls() {
        assert_eq!(
            ev("{\"a\": $.x, b: [1, $.y]}", json!({"x": 1, "y": "z"})),
            json!({"a": 1, "b": [1, "z"]})
        );
        assert_eq!(
            ev("format(\"hello {}\", $.id)", json!({"id": 7})),
            json!("hello 7")
        );
        assert_eq!(
            ev("length(split($.s, \",\"))", json!({"s": "a,b,c"})),
            json!(3)
        );
        assert!(ev_err("length($.missing)", json!({})).contains("length"));
        assert_eq!(ev("/ab/", json!({})), json!("ab"));
    }

    #[test]
    fn variables_resolve_through_vars() {
        let input = json!({"i": 1});
        let result = json!({"r": 2});
        let ctx = json!({"Execution": {"Name": "e1"}});
        let item = json!("it");
        let index = json!(3);
        let mut vars = Vars::new(&input);
        vars.result = Some(&result);
        vars.context = Some(&ctx);
        vars.item = Some(&item);
        vars.index = Some(&index);
        let e = parse(
            "[$input.i, $result.r, $context.Execution.Name, $item, $index, $global.g]",
            &CANONICAL,
        )
        .unwrap();
        assert_eq!(e.eval(&vars).unwrap(), json!([1, 2, "e1", "it", 3, null]));
        assert!(e.references(Var::Item));
        assert!(!e.references(Var::Const));
    }
}
