//! [`Template`]: a JSON value with expressions inside, the canonical form of every vendor
//! constructor, mapping list and argument object.
//!
//! JSON form (serde): constants are themselves, except that an object with exactly one key
//! `$expr` (canonical expression text), `$merge` (array of templates) or `$literal` (any JSON,
//! taken verbatim) is special, and inside objects a key ending in `.$` holds expression text
//! for the key without the suffix (the CloudFlow convention).

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::ast::Node;
use super::eval::EvalError;
use super::functions::{type_name, Func};
use super::parse::{parse, Syntax, CANONICAL};
use super::vars::{Var, Vars};
use super::Expr;

/// Keys that make a one-key object special in the JSON form.
const SPECIAL_KEYS: [&str; 3] = ["$expr", "$merge", "$literal"];

/// A JSON-producing transform. Equality is structural: build templates with
/// [`Template::object`] / [`Template::array`] (which fold constant parts into
/// [`Template::Value`]) to get the normal form that deserialization also produces.
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    /// A constant, produced as is.
    Value(Value),
    /// An expression's value.
    Expr(Expr),
    /// An object whose members are templates; members keep their order.
    Object(Vec<(String, Template)>),
    /// An array whose elements are templates.
    Array(Vec<Template>),
    /// Shallow merge of objects, left to right (later keys win; every part must be an object).
    Merge(Vec<Template>),
}

/// A problem in a vendor constructor, with the path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateIssue {
    /// Field path such as `States[0].InputConstructor.msg.$`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TemplateIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl From<Value> for Template {
    fn from(v: Value) -> Self {
        Template::Value(v)
    }
}

impl From<Expr> for Template {
    fn from(e: Expr) -> Self {
        Template::Expr(e)
    }
}

impl Template {
    /// A template yielding the expression's value.
    pub fn expr(e: Expr) -> Template {
        Template::Expr(e)
    }

    /// A shallow merge of the parts, left to right.
    pub fn merge(parts: impl IntoIterator<Item = Template>) -> Template {
        Template::Merge(parts.into_iter().collect())
    }

    /// An object template; folds into [`Template::Value`] when every member is constant.
    pub fn object(members: Vec<(String, Template)>) -> Template {
        if members.iter().all(|(_, t)| matches!(t, Template::Value(_))) {
            let mut map = Map::with_capacity(members.len());
            for (k, t) in members {
                if let Template::Value(v) = t {
                    map.insert(k, v);
                }
            }
            Template::Value(Value::Object(map))
        } else {
            Template::Object(members)
        }
    }

    /// An array template; folds into [`Template::Value`] when every element is constant.
    pub fn array(items: Vec<Template>) -> Template {
        if items.iter().all(|t| matches!(t, Template::Value(_))) {
            Template::Value(Value::Array(
                items
                    .into_iter()
                    .map(|t| match t {
                        Template::Value(v) => v,
                        _ => unreachable!("checked above"),
                    })
                    .collect(),
            ))
        } else {
            Template::Array(items)
        }
    }

    /// Produces the JSON value.
    pub fn eval(&self, vars: &Vars) -> Result<Value, EvalError> {
        match self {
            Template::Value(v) => Ok(v.clone()),
            Template::Expr(e) => e.eval(vars),
            Template::Object(members) => {
                let mut map = Map::with_capacity(members.len());
                for (k, t) in members {
                    map.insert(k.clone(), t.eval(vars)?);
                }
                Ok(Value::Object(map))
            }
            Template::Array(items) => items
                .iter()
                .map(|t| t.eval(vars))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Template::Merge(parts) => {
                let mut acc: Option<Map<String, Value>> = None;
                for (i, part) in parts.iter().enumerate() {
                    match part.eval(vars)? {
                        Value::Object(m) => match &mut acc {
                            None => acc = Some(m),
                            Some(a) => a.extend(m),
                        },
                        other => {
                            let what = match part {
                                Template::Expr(e) => format!(" ({})", e.text()),
                                _ => String::new(),
                            };
                            return Err(EvalError::new(format!(
                                "merge part {i}{what} is {}, not an object",
                                type_name(&other)
                            )));
                        }
                    }
                }
                Ok(Value::Object(acc.unwrap_or_default()))
            }
        }
    }

    /// The variable whose value this template produces unchanged under `vars`, if any: a
    /// bare `$var`, or a merge whose other parts are all empty objects (the FDL default
    /// input, `$scope_input` merged with a still-empty `$scope_local`). The engine then shares
    /// the value it already holds instead of building an equal copy; `None` means evaluate.
    pub fn passes_through(&self, vars: &Vars) -> Option<Var> {
        match self {
            Template::Expr(e) => e.bare_var(),
            Template::Merge(parts) => {
                let mut whole = None;
                for part in parts {
                    let value = match part {
                        Template::Value(v) => v,
                        Template::Expr(e) => vars.get(e.bare_var()?),
                        Template::Object(_) | Template::Array(_) | Template::Merge(_) => {
                            return None
                        }
                    };
                    match value {
                        Value::Object(m) if m.is_empty() => {}
                        Value::Object(_) => {
                            let Template::Expr(e) = part else { return None };
                            if whole.replace(e.bare_var()?).is_some() {
                                return None;
                            }
                        }
                        _ => return None,
                    }
                }
                whole
            }
            Template::Value(_) | Template::Object(_) | Template::Array(_) => None,
        }
    }

    /// True when some expression inside reads `var`.
    pub fn references(&self, var: Var) -> bool {
        match self {
            Template::Value(_) => false,
            Template::Expr(e) => e.references(var),
            Template::Object(members) => members.iter().any(|(_, t)| t.references(var)),
            Template::Array(items) | Template::Merge(items) => {
                items.iter().any(|t| t.references(var))
            }
        }
    }

    /// True when the template contains no expression (its value never changes).
    pub fn is_constant(&self) -> bool {
        match self {
            Template::Value(_) => true,
            Template::Expr(_) => false,
            Template::Object(members) => members.iter().all(|(_, t)| t.is_constant()),
            Template::Array(items) | Template::Merge(items) => {
                items.iter().all(Template::is_constant)
            }
        }
    }

    /// Builds a template from a vendor constructor (CloudFlow `InputConstructor`,
    /// `Parameters`...): inside objects a key ending in `.$` holds an expression in `syntax`
    /// for the key without the suffix; everything else is constant, nested objects and arrays
    /// included. `path` prefixes the field paths of the issues (every bad field is reported).
    pub fn from_constructor(
        value: &Value,
        syntax: &Syntax,
        path: &str,
    ) -> Result<Template, Vec<TemplateIssue>> {
        let mut issues = Vec::new();
        let t = build(value, syntax, false, path, &mut issues);
        if issues.is_empty() {
            Ok(t)
        } else {
            Err(issues)
        }
    }

    /// Reads the canonical JSON form (what `Deserialize` accepts), reporting every problem.
    pub fn from_json(value: &Value) -> Result<Template, Vec<TemplateIssue>> {
        let mut issues = Vec::new();
        let t = build(value, &CANONICAL, true, "", &mut issues);
        if issues.is_empty() {
            Ok(t)
        } else {
            Err(issues)
        }
    }

    /// Writes the canonical JSON form (what `Serialize` produces).
    pub fn to_json(&self) -> Value {
        match self {
            Template::Value(v) if needs_literal(v) => single("$literal", v.clone()),
            Template::Value(v) => v.clone(),
            Template::Expr(e) => single("$expr", Value::String(e.text().to_string())),
            Template::Merge(parts) => single(
                "$merge",
                Value::Array(parts.iter().map(Template::to_json).collect()),
            ),
            Template::Array(items) => Value::Array(items.iter().map(Template::to_json).collect()),
            Template::Object(members) => {
                let lone_special =
                    members.len() == 1 && SPECIAL_KEYS.contains(&members[0].0.as_str());
                let mut map = Map::with_capacity(members.len());
                for (k, t) in members {
                    match t {
                        Template::Expr(e) => {
                            map.insert(format!("{k}.$"), Value::String(e.text().to_string()));
                        }
                        // A plain key that would read as special: write the member as an
                        // (equivalent) expression instead.
                        other if lone_special || k.ends_with(".$") => {
                            let text = Expr::from_node(other.to_node()).text().to_string();
                            map.insert(format!("{k}.$"), Value::String(text));
                        }
                        other => {
                            map.insert(k.clone(), other.to_json());
                        }
                    }
                }
                Value::Object(map)
            }
        }
    }

    /// An expression computing the same value (merges become `jsonMerge` calls).
    fn to_node(&self) -> Node {
        match self {
            Template::Value(v) => Node::Literal(v.clone()),
            Template::Expr(e) => e.node().clone(),
            Template::Object(members) => Node::Object(
                members
                    .iter()
                    .map(|(k, t)| (k.clone(), t.to_node()))
                    .collect(),
            ),
            Template::Array(items) => Node::Array(items.iter().map(Template::to_node).collect()),
            Template::Merge(parts) => {
                let empty = Node::Literal(Value::Object(Map::new()));
                let mut nodes = parts.iter().map(Template::to_node);
                match (nodes.next(), nodes.next()) {
                    (None, _) => empty,
                    (Some(a), None) => Node::Call(Func::JsonMerge, vec![a, empty]),
                    (Some(a), Some(b)) => nodes
                        .fold(Node::Call(Func::JsonMerge, vec![a, b]), |acc, n| {
                            Node::Call(Func::JsonMerge, vec![acc, n])
                        }),
                }
            }
        }
    }
}

fn single(key: &str, v: Value) -> Value {
    let mut m = Map::with_capacity(1);
    m.insert(key.to_string(), v);
    Value::Object(m)
}

/// True when a constant would not read back as itself from the JSON form.
fn needs_literal(v: &Value) -> bool {
    match v {
        Value::Object(o) => {
            (o.len() == 1 && o.keys().all(|k| SPECIAL_KEYS.contains(&k.as_str())))
                || o.iter().any(|(k, c)| k.ends_with(".$") || needs_literal(c))
        }
        Value::Array(a) => a.iter().any(needs_literal),
        _ => false,
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn issue(issues: &mut Vec<TemplateIssue>, path: String, message: impl Into<String>) -> Template {
    issues.push(TemplateIssue {
        path,
        message: message.into(),
    });
    Template::Value(Value::Null)
}

fn expression(
    v: &Value,
    syntax: &Syntax,
    path: String,
    issues: &mut Vec<TemplateIssue>,
) -> Template {
    match v {
        Value::String(s) => match parse(s, syntax) {
            Ok(e) => Template::Expr(e),
            Err(e) => issue(issues, path, format!("invalid expression {s:?}: {e}")),
        },
        other => issue(
            issues,
            path,
            format!("must be an expression string, not {}", type_name(other)),
        ),
    }
}

/// Shared builder: `specials` enables the canonical `$expr` / `$merge` / `$literal` forms.
fn build(
    v: &Value,
    syntax: &Syntax,
    specials: bool,
    path: &str,
    issues: &mut Vec<TemplateIssue>,
) -> Template {
    match v {
        Value::Object(o) => {
            if specials && o.len() == 1 {
                let (k, inner) = o.iter().next().expect("one member");
                match k.as_str() {
                    "$expr" => return expression(inner, syntax, join(path, k), issues),
                    "$literal" => return Template::Value(inner.clone()),
                    "$merge" => {
                        let p = join(path, k);
                        let Value::Array(parts) = inner else {
                            return issue(issues, p, "must be an array of templates");
                        };
                        return Template::Merge(
                            parts
                                .iter()
                                .enumerate()
                                .map(|(i, t)| {
                                    build(t, syntax, specials, &format!("{p}[{i}]"), issues)
                                })
                                .collect(),
                        );
                    }
                    _ => {}
                }
            }
            let mut seen = HashSet::with_capacity(o.len());
            let mut members = Vec::with_capacity(o.len());
            for (k, child) in o {
                let child_path = join(path, k);
                let (key, t) = match k.strip_suffix(".$") {
                    Some(base) => (base, expression(child, syntax, child_path.clone(), issues)),
                    None => (
                        k.as_str(),
                        build(child, syntax, specials, &child_path, issues),
                    ),
                };
                if !seen.insert(key) {
                    issue(
                        issues,
                        child_path,
                        format!("key {key:?} is given both with and without '.$'"),
                    );
                }
                members.push((key.to_string(), t));
            }
            Template::object(members)
        }
        Value::Array(items) => Template::array(
            items
                .iter()
                .enumerate()
                .map(|(i, t)| build(t, syntax, specials, &format!("{path}[{i}]"), issues))
                .collect(),
        ),
        other => Template::Value(other.clone()),
    }
}

impl Serialize for Template {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(deserializer)?;
        Template::from_json(&v).map_err(|issues| {
            let text: Vec<String> = issues.iter().map(ToString::to_string).collect();
            serde::de::Error::custom(format!("invalid template: {}", text.join("; ")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn var(v: Var) -> Template {
        Template::Expr(Expr::canonical(&format!("${}", v.canonical_name())).unwrap())
    }

    #[test]
    fn a_template_passes_a_value_through_only_when_it_copies_it_whole() {
        let input = json!({"a": 1});
        let empty = json!({});
        let full = json!({"b": 2});
        let mut vars = Vars::new(&input);
        vars.scope_input = Some(&input);
        vars.scope_local = Some(&empty);
        let fdl_input = Template::merge([var(Var::ScopeInput), var(Var::ScopeLocal)]);
        assert_eq!(var(Var::Input).passes_through(&vars), Some(Var::Input));
        assert_eq!(fdl_input.passes_through(&vars), Some(Var::ScopeInput));
        // Whatever passes through is what evaluation builds.
        assert_eq!(fdl_input.eval(&vars).unwrap(), input);
        let with_empty_constant = Template::merge([Template::Value(json!({})), var(Var::Input)]);
        assert_eq!(with_empty_constant.passes_through(&vars), Some(Var::Input));

        vars.scope_local = Some(&full);
        assert_eq!(fdl_input.passes_through(&vars), None, "two non-empty parts");
        let with_constant = Template::merge([var(Var::Input), Template::Value(json!({"c": 3}))]);
        assert_eq!(
            with_constant.passes_through(&vars),
            None,
            "a constant part adds keys"
        );
        let path = Template::Expr(Expr::canonical("$input.a").unwrap());
        assert_eq!(
            path.passes_through(&vars),
            None,
            "a path is not the whole value"
        );
        let scalar = json!(5);
        let vars = Vars::new(&scalar);
        let merge_scalar = Template::merge([var(Var::Input)]);
        assert_eq!(
            merge_scalar.passes_through(&vars),
            None,
            "merging a non-object fails"
        );
        assert!(merge_scalar.eval(&vars).is_err());
    }

    const CLOUDFLOW: Syntax = Syntax {
        roots: &[
            ("Input", Var::Input),
            ("Output", Var::Result),
            ("Context", Var::Context),
            ("Global", Var::Global),
        ],
        bare_dollar: None,
    };

    fn e(text: &str) -> Template {
        Template::Expr(Expr::canonical(text).unwrap())
    }

    fn round_trip(t: &Template) -> Value {
        let v = serde_json::to_value(t).unwrap();
        let back: Template = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(&back, t, "{v}");
        v
    }

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn is_send_and_sync() {
        assert_send_sync::<Template>();
    }

    #[test]
    fn from_constructor_with_nested_expression_keys() {
        let ctor = json!({
            "msg.$": "format(\"hi {}\", $Input.name)",
            "fixed": "$Input.not_an_expression",
            "nested": {"n.$": "$Input.n + 1", "k": [1, {"deep.$": "$Context.Execution.Name"}]},
            "plain": {"a": [1, 2]}
        });
        let t =
            Template::from_constructor(&ctor, &CLOUDFLOW, "States[0].InputConstructor").unwrap();
        assert!(t.references(Var::Input));
        assert!(t.references(Var::Context));
        assert!(!t.references(Var::Global));
        assert!(!t.is_constant());
        let input = json!({"name": "bob", "n": 41});
        let ctx = json!({"Execution": {"Name": "run-1"}});
        let mut vars = Vars::new(&input);
        vars.context = Some(&ctx);
        assert_eq!(
            t.eval(&vars).unwrap(),
            json!({
                "msg": "hi bob",
                "fixed": "$Input.not_an_expression",
                "nested": {"n": 42, "k": [1, {"deep": "run-1"}]},
                "plain": {"a": [1, 2]}
            })
        );
        // Constant parts fold into values.
        let Template::Object(members) = &t else {
            panic!("{t:?}")
        };
        assert_eq!(
            members[1],
            (
                "fixed".into(),
                Template::Value(json!("$Input.not_an_expression"))
            )
        );
        assert_eq!(
            members[3],
            ("plain".into(), Template::Value(json!({"a": [1, 2]})))
        );
        // The canonical form round-trips.
        let v = round_trip(&t);
        assert_eq!(v["msg.$"], json!("format(\"hi {}\", $input.name)"));
        assert_eq!(
            v["nested"]["k"][1]["deep.$"],
            json!("$context.Execution.Name")
        );
    }

    #[test]
    fn from_constructor_reports_every_bad_field_with_its_path() {
        let ctor = json!({
            "ok.$": "$Input.a",
            "msg.$": "$Input.a ==",
            "list": [{"x.$": 5}],
            "dup": 1,
            "dup.$": "$Input.b",
            "$expr": "not special in vendor constructors"
        });
        let issues = Template::from_constructor(&ctor, &CLOUDFLOW, "States[0].InputConstructor")
            .unwrap_err();
        let paths: Vec<&str> = issues.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "States[0].InputConstructor.msg.$",
                "States[0].InputConstructor.list[0].x.$",
                "States[0].InputConstructor.dup.$",
            ]
        );
        assert!(issues[0].message.contains("at offset 11"), "{}", issues[0]);
        assert!(issues[1].message.contains("not a number"));
        assert!(issues[2].message.contains("both with and without"));
        assert!(issues[0]
            .to_string()
            .starts_with("States[0].InputConstructor.msg.$: "));
        // A vendor expression that is not valid in this syntax.
        let issues =
            Template::from_constructor(&json!({"a.$": "$.x"}), &CLOUDFLOW, "").unwrap_err();
        assert_eq!(issues[0].path, "a.$");
        assert!(issues[0].message.contains("bare '$'"));
    }

    #[test]
    fn constants_stay_constants() {
        let t =
            Template::from_constructor(&json!({"a": [1, {"b": null}]}), &CLOUDFLOW, "").unwrap();
        assert_eq!(t, Template::Value(json!({"a": [1, {"b": null}]})));
        assert!(t.is_constant());
        assert!(!t.references(Var::Input));
        let s = Template::from_constructor(&json!("$Input.x"), &CLOUDFLOW, "").unwrap();
        assert_eq!(s, Template::Value(json!("$Input.x")));
    }

    #[test]
    fn eval_object_array_and_key_order() {
        let t = Template::object(vec![
            ("z".into(), e("$.a")),
            ("a".into(), Template::Value(json!(1))),
            (
                "m".into(),
                Template::array(vec![e("$.a + 1"), Template::Value(json!("k"))]),
            ),
        ]);
        let input = json!({"a": 5});
        let v = t.eval(&Vars::new(&input)).unwrap();
        assert_eq!(v, json!({"z": 5, "a": 1, "m": [6, "k"]}));
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["z", "a", "m"]);
        assert!(e("1 / 0").eval(&Vars::new(&input)).is_err());
    }

    #[test]
    fn merge_is_shallow_left_to_right() {
        let t = Template::merge([
            e("$input"),
            Template::Value(json!({"b": {"x": 1}, "c": 3})),
            e("$scope_local"),
        ]);
        let input = json!({"a": 1, "b": {"y": 2}});
        let local = json!({"c": 30, "d": 4});
        let mut vars = Vars::new(&input);
        vars.scope_local = Some(&local);
        let v = t.eval(&vars).unwrap();
        assert_eq!(v, json!({"a": 1, "b": {"x": 1}, "c": 30, "d": 4}));
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["a", "b", "c", "d"]);
        assert!(t.references(Var::ScopeLocal));
        let bad = Template::merge([e("$input"), e("$input.a")]);
        let err = bad.eval(&vars).unwrap_err();
        assert_eq!(
            err.message,
            "merge part 1 ($input.a) is a number, not an object"
        );
        assert_eq!(Template::merge([]).eval(&vars).unwrap(), json!({}));
        assert!(Template::merge([Template::Value(json!({}))]).is_constant());
    }

    #[test]
    fn serde_round_trips() {
        round_trip(&Template::Value(
            json!({"a": [1, "x", null], "b": {"c": true}}),
        ));
        round_trip(&Template::Value(json!("$input.not_expr")));
        round_trip(&e("$.a | 'x'"));
        assert_eq!(round_trip(&e("$.a")), json!({"$expr": "$.a"}));
        let merge = Template::merge([e("$input"), Template::Value(json!({"k": 1}))]);
        assert_eq!(
            round_trip(&merge),
            json!({"$merge": [{"$expr": "$input"}, {"k": 1}]})
        );
        let nested = Template::object(vec![
            ("x".into(), e("$input.x")),
            (
                "arr".into(),
                Template::array(vec![e("$item"), Template::Value(json!(2))]),
            ),
            ("m".into(), merge.clone()),
            (
                "c".into(),
                Template::Value(json!({"$expr": "constant, not an expression"})),
            ),
        ]);
        let v = round_trip(&nested);
        assert_eq!(
            v,
            json!({
                "x.$": "$input.x",
                "arr": [{"$expr": "$item"}, 2],
                "m": {"$merge": [{"$expr": "$input"}, {"k": 1}]},
                "c": {"$literal": {"$expr": "constant, not an expression"}}
            })
        );
    }

    #[test]
    fn literals_that_look_special_are_escaped() {
        for v in [
            json!({"$merge": [1]}),
            json!({"$literal": 1}),
            json!({"a.$": "not an expression"}),
            json!([{"deep": {"k.$": 1}}]),
        ] {
            let t = Template::Value(v.clone());
            let out = round_trip(&t);
            assert_eq!(out, json!({"$literal": v}));
        }
        // Plain constants are not wrapped.
        assert_eq!(
            round_trip(&Template::Value(json!({"$expr": 1, "b": 2}))),
            json!({"$expr": 1, "b": 2})
        );
    }

    #[test]
    fn awkward_object_keys_serialize_as_equivalent_expressions() {
        let t = Template::Object(vec![
            (
                "a.$".into(),
                Template::Array(vec![e("$.x"), Template::Value(json!(1))]),
            ),
            ("b".into(), e("$.y")),
        ]);
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v, json!({"a.$.$": "[$input.x, 1]", "b.$": "$.y"}));
        let back: Template = serde_json::from_value(v).unwrap();
        let input = json!({"x": 7, "y": 8});
        assert_eq!(
            back.eval(&Vars::new(&input)).unwrap(),
            t.eval(&Vars::new(&input)).unwrap()
        );
        let lone = Template::Object(vec![(
            "$merge".into(),
            Template::Merge(vec![e("$.o"), Template::Value(json!({"k": 1}))]),
        )]);
        let v = serde_json::to_value(&lone).unwrap();
        assert_eq!(v, json!({"$merge.$": "jsonMerge($input.o, {\"k\":1})"}));
        let back: Template = serde_json::from_value(v).unwrap();
        let input = json!({"o": {"j": 0}});
        assert_eq!(
            back.eval(&Vars::new(&input)).unwrap(),
            json!({"$merge": {"j": 0, "k": 1}})
        );
    }

    #[test]
    fn both_object_forms_deserialize_alike() {
        let a: Template = serde_json::from_value(json!({"k.$": "$.a", "c": 1})).unwrap();
        let b: Template = serde_json::from_value(json!({"k": {"$expr": "$.a"}, "c": 1})).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            serde_json::to_value(&b).unwrap(),
            json!({"k.$": "$.a", "c": 1})
        );
    }

    #[test]
    fn documented_example_evaluates() {
        let t: Template = serde_json::from_value(json!({"$merge": [
            {"$expr": "$input"},
            {"greeting.$": "format(\"hello {}\", $input.name)",
             "tags": ["fixed", {"$expr": "$context.execution.name"}],
             "raw": {"$literal": {"not.$": "evaluated"}}}
        ]}))
        .unwrap();
        let input = json!({"name": "ann", "greeting": "old"});
        let ctx = json!({"execution": {"name": "run-9"}});
        let mut vars = Vars::new(&input);
        vars.context = Some(&ctx);
        assert_eq!(
            t.eval(&vars).unwrap(),
            json!({"name": "ann", "greeting": "hello ann", "tags": ["fixed", "run-9"],
                   "raw": {"not.$": "evaluated"}})
        );
        round_trip(&t);
    }

    #[test]
    fn deserialize_errors_carry_paths() {
        let err = serde_json::from_value::<Template>(json!({"a": {"b.$": "$.x +"}})).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("invalid template: a.b.$: invalid expression"),
            "{msg}"
        );
        let err = serde_json::from_value::<Template>(json!({"$merge": 3})).unwrap_err();
        assert!(
            err.to_string().contains("$merge: must be an array"),
            "{err}"
        );
        let err = serde_json::from_value::<Template>(json!({"$expr": 3})).unwrap_err();
        assert!(
            err.to_string()
                .contains("$expr: must be an expression string"),
            "{err}"
        );
        let err = serde_json::from_value::<Template>(json!({"$merge": [{"$expr": "$Input"}]}))
            .unwrap_err();
        assert!(err.to_string().contains("$merge[0].$expr"), "{err}");
        let t: Template = serde_json::from_value(json!({"$literal": {"$expr": "x"}})).unwrap();
        assert_eq!(t, Template::Value(json!({"$expr": "x"})));
    }
}
