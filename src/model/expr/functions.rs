//! Built-in functions, named as Alibaba CloudFlow spells them (case-sensitive).
//!
//! Names and arities are checked at parse time ([`Func::lookup`], [`Func::arity`]), so a
//! flow with a misspelt call is rejected when it is defined, not when it runs.

use std::borrow::Cow;

use base64::Engine as _;
use rand::Rng as _;
use serde_json::{Map, Value};

use super::eval::{json_equal, EvalError};

/// A built-in function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Func {
    /// `format(fmt, args...)`: each `{}` in `fmt` replaced by the next argument.
    Format,
    /// `length(x)`: characters of a string, elements of an array, members of an object.
    Length,
    /// `split(s, sep)`: array of the pieces (an empty `sep` splits into characters).
    Split,
    /// `join(arr, sep)`: the elements joined by `sep`.
    Join,
    /// `regexMatchString(pattern, s)`: true when `pattern` matches somewhere in `s`.
    RegexMatchString,
    /// `get(obj, key)` / `get(arr, index)`: a member or element, `null` when absent.
    Get,
    /// `intAdd(a, b)`: integer addition (error on overflow or non-integers).
    IntAdd,
    /// `randomInt(min, max)`: a random integer, `min` inclusive, `max` exclusive.
    RandomInt,
    /// `arrayContains(arr, v)`: true when an element equals `v`.
    ArrayContains,
    /// `arrayUnique(arr)`: the array without repeated elements (first occurrences kept).
    ArrayUnique,
    /// `toArray(v...)`: one array argument as is, one other value wrapped, several gathered.
    ToArray,
    /// `mapKeys(obj)`: the member names.
    MapKeys,
    /// `mapValues(obj)`: the member values.
    MapValues,
    /// `jsonMerge(a, b)`: shallow merge of two objects, `b` wins.
    JsonMerge,
    /// `stringToJson(s)` (alias `fromJSON`): parses JSON text.
    StringToJson,
    /// `jsonToString(v)` (alias `toJSON`): compact JSON text.
    JsonToString,
    /// `toBase64(s)`: standard Base64 of the UTF-8 bytes.
    ToBase64,
    /// `fromBase64(s)`: decodes standard Base64 into a UTF-8 string.
    FromBase64,
    /// `hash(s, alg)`: lowercase hex digest; `alg` is `MD5`, `SHA-1`, `SHA-256` or `SHA-512`.
    Hash,
    /// `uuid()`: a random (v4) UUID string.
    Uuid,
    /// `lower(s)`.
    Lower,
    /// `upper(s)`.
    Upper,
    /// `trim(s)`: without leading and trailing whitespace.
    Trim,
    /// `contains(s, sub)` / `contains(arr, v)` / `contains(obj, key)`.
    Contains,
    /// `now()`: the current UTC time, RFC 3339 with milliseconds.
    Now,
}

/// Accepted spellings, aliases included.
const NAMES: &[(&str, Func)] = &[
    ("format", Func::Format),
    ("length", Func::Length),
    ("split", Func::Split),
    ("join", Func::Join),
    ("regexMatchString", Func::RegexMatchString),
    ("get", Func::Get),
    ("intAdd", Func::IntAdd),
    ("randomInt", Func::RandomInt),
    ("arrayContains", Func::ArrayContains),
    ("arrayUnique", Func::ArrayUnique),
    ("toArray", Func::ToArray),
    ("mapKeys", Func::MapKeys),
    ("mapValues", Func::MapValues),
    ("jsonMerge", Func::JsonMerge),
    ("stringToJson", Func::StringToJson),
    ("fromJSON", Func::StringToJson),
    ("jsonToString", Func::JsonToString),
    ("toJSON", Func::JsonToString),
    ("toBase64", Func::ToBase64),
    ("fromBase64", Func::FromBase64),
    ("hash", Func::Hash),
    ("uuid", Func::Uuid),
    ("lower", Func::Lower),
    ("upper", Func::Upper),
    ("trim", Func::Trim),
    ("contains", Func::Contains),
    ("now", Func::Now),
];

impl Func {
    /// Finds a function by name (case-sensitive; aliases accepted).
    pub fn lookup(name: &str) -> Option<Func> {
        NAMES.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    /// The canonical name (aliases print as their primary name).
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// Minimum and maximum argument count (`None` = any number).
    pub fn arity(self) -> (usize, Option<usize>) {
        use Func::*;
        match self {
            Uuid | Now => (0, Some(0)),
            Length | ArrayUnique | MapKeys | MapValues | StringToJson | JsonToString | ToBase64
            | FromBase64 | Lower | Upper | Trim => (1, Some(1)),
            Split | Join | RegexMatchString | Get | IntAdd | RandomInt | ArrayContains
            | JsonMerge | Hash | Contains => (2, Some(2)),
            Format => (1, None),
            ToArray => (0, None),
        }
    }

    /// Applies the function to evaluated arguments (the arity is already checked).
    pub(crate) fn call(self, args: &[Cow<'_, Value>]) -> Result<Value, EvalError> {
        let name = self.name();
        let arg = |i: usize| -> &Value { args.get(i).map(|c| c.as_ref()).unwrap_or(&Value::Null) };
        let string = |i: usize| -> Result<&str, EvalError> {
            arg(i)
                .as_str()
                .ok_or_else(|| type_error(name, i, "a string", arg(i)))
        };
        let array = |i: usize| -> Result<&Vec<Value>, EvalError> {
            arg(i)
                .as_array()
                .ok_or_else(|| type_error(name, i, "an array", arg(i)))
        };
        let object = |i: usize| -> Result<&Map<String, Value>, EvalError> {
            arg(i)
                .as_object()
                .ok_or_else(|| type_error(name, i, "an object", arg(i)))
        };
        let integer = |i: usize| -> Result<i64, EvalError> {
            arg(i)
                .as_i64()
                .ok_or_else(|| type_error(name, i, "an integer", arg(i)))
        };
        Ok(match self {
            Func::Format => {
                let fmt = string(0)?;
                let mut out = String::with_capacity(fmt.len());
                let mut rest = args[1..].iter();
                let mut pieces = fmt.split("{}");
                out.push_str(pieces.next().unwrap_or(""));
                for piece in pieces {
                    let v = rest.next().ok_or_else(|| {
                        EvalError::new(format!(
                            "format: the format string has more '{{}}' than the {} argument(s) given",
                            args.len() - 1
                        ))
                    })?;
                    push_plain(&mut out, v);
                    out.push_str(piece);
                }
                if rest.next().is_some() {
                    return Err(EvalError::new(format!(
                        "format: {} argument(s) given but the format string has only {} '{{}}'",
                        args.len() - 1,
                        fmt.matches("{}").count()
                    )));
                }
                Value::String(out)
            }
            Func::Length => match arg(0) {
                Value::String(s) => Value::from(s.chars().count()),
                Value::Array(a) => Value::from(a.len()),
                Value::Object(o) => Value::from(o.len()),
                other => return Err(type_error(name, 0, "a string, array or object", other)),
            },
            Func::Split => {
                let (s, sep) = (string(0)?, string(1)?);
                if sep.is_empty() {
                    s.chars().map(|c| Value::String(c.to_string())).collect()
                } else {
                    s.split(sep).map(|p| Value::String(p.to_string())).collect()
                }
            }
            Func::Join => {
                let (items, sep) = (array(0)?, string(1)?);
                let mut out = String::new();
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(sep);
                    }
                    push_plain(&mut out, v);
                }
                Value::String(out)
            }
            Func::RegexMatchString => {
                let re = compile(string(0)?)?;
                Value::Bool(re.is_match(string(1)?))
            }
            Func::Get => match (arg(0), arg(1)) {
                (Value::Null, _) => Value::Null,
                (Value::Object(o), Value::String(k)) => o.get(k).cloned().unwrap_or(Value::Null),
                (Value::Object(_), other) => {
                    return Err(type_error(name, 1, "a string key", other))
                }
                (Value::Array(a), i) => {
                    let i = i
                        .as_i64()
                        .ok_or_else(|| type_error(name, 1, "an integer index", i))?;
                    index(a, i).cloned().unwrap_or(Value::Null)
                }
                (other, _) => return Err(type_error(name, 0, "an object or array", other)),
            },
            Func::IntAdd => {
                let (a, b) = (integer(0)?, integer(1)?);
                Value::from(
                    a.checked_add(b)
                        .ok_or_else(|| EvalError::new(format!("intAdd: {a} + {b} overflows")))?,
                )
            }
            Func::RandomInt => {
                let (min, max) = (integer(0)?, integer(1)?);
                if min >= max {
                    return Err(EvalError::new(format!(
                        "randomInt: min ({min}) must be less than max ({max})"
                    )));
                }
                Value::from(rand::thread_rng().gen_range(min..max))
            }
            Func::ArrayContains => {
                let items = array(0)?;
                Value::Bool(items.iter().any(|v| json_equal(v, arg(1))))
            }
            Func::ArrayUnique => {
                let items = array(0)?;
                let mut out: Vec<Value> = Vec::with_capacity(items.len());
                for v in items {
                    if !out.iter().any(|o| json_equal(o, v)) {
                        out.push(v.clone());
                    }
                }
                Value::Array(out)
            }
            Func::ToArray => match args {
                [one] => match one.as_ref() {
                    Value::Array(_) => one.as_ref().clone(),
                    other => Value::Array(vec![other.clone()]),
                },
                many => many.iter().map(|c| c.as_ref().clone()).collect(),
            },
            Func::MapKeys => object(0)?
                .keys()
                .map(|k| Value::String(k.clone()))
                .collect(),
            Func::MapValues => object(0)?.values().cloned().collect(),
            Func::JsonMerge => {
                let (a, b) = (object(0)?, object(1)?);
                let mut out = a.clone();
                for (k, v) in b {
                    out.insert(k.clone(), v.clone());
                }
                Value::Object(out)
            }
            Func::StringToJson => serde_json::from_str(string(0)?)
                .map_err(|e| EvalError::new(format!("{name}: invalid JSON text: {e}")))?,
            Func::JsonToString => Value::String(arg(0).to_string()),
            Func::ToBase64 => {
                Value::String(base64::engine::general_purpose::STANDARD.encode(string(0)?))
            }
            Func::FromBase64 => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(string(0)?)
                    .map_err(|e| EvalError::new(format!("{name}: invalid Base64: {e}")))?;
                Value::String(String::from_utf8(bytes).map_err(|_| {
                    EvalError::new(format!("{name}: the decoded bytes are not UTF-8 text"))
                })?)
            }
            Func::Hash => Value::String(digest(string(0)?, string(1)?)?),
            Func::Uuid => Value::String(uuid::Uuid::new_v4().to_string()),
            Func::Lower => Value::String(string(0)?.to_lowercase()),
            Func::Upper => Value::String(string(0)?.to_uppercase()),
            Func::Trim => Value::String(string(0)?.trim().to_string()),
            Func::Contains => Value::Bool(match (arg(0), arg(1)) {
                (Value::String(s), Value::String(sub)) => s.contains(sub.as_str()),
                (Value::String(_), other) => return Err(type_error(name, 1, "a string", other)),
                (Value::Array(a), v) => a.iter().any(|e| json_equal(e, v)),
                (Value::Object(o), Value::String(k)) => o.contains_key(k),
                (Value::Object(_), other) => {
                    return Err(type_error(name, 1, "a string key", other))
                }
                (other, _) => return Err(type_error(name, 0, "a string, array or object", other)),
            }),
            Func::Now => Value::String(
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ),
        })
    }
}

/// `arr[i]` with negative `i` counting from the end.
pub(crate) fn index(items: &[Value], i: i64) -> Option<&Value> {
    let len = items.len() as i64;
    let i = if i < 0 { i + len } else { i };
    if (0..len).contains(&i) {
        items.get(i as usize)
    } else {
        None
    }
}

/// Appends a value as text: strings raw, everything else as compact JSON.
fn push_plain(out: &mut String, v: &Value) {
    match v {
        Value::String(s) => out.push_str(s),
        other => out.push_str(&other.to_string()),
    }
}

/// Compiles a run-time regex pattern.
pub(crate) fn compile(pattern: &str) -> Result<regex::Regex, EvalError> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| EvalError::new(format!("invalid regular expression '{pattern}': {e}")))
}

/// A JSON type name for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn type_error(func: &str, i: usize, expected: &str, got: &Value) -> EvalError {
    EvalError::new(format!(
        "{func}: argument {} must be {expected}, got {}",
        i + 1,
        type_name(got)
    ))
}

fn digest(s: &str, alg: &str) -> Result<String, EvalError> {
    use sha2::Digest as _;
    let bytes: Vec<u8> = match alg {
        "MD5" => md5::Md5::digest(s.as_bytes()).to_vec(),
        "SHA-1" => sha1::Sha1::digest(s.as_bytes()).to_vec(),
        "SHA-256" => sha2::Sha256::digest(s.as_bytes()).to_vec(),
        "SHA-512" => sha2::Sha512::digest(s.as_bytes()).to_vec(),
        other => {
            return Err(EvalError::new(format!(
                "hash: unknown algorithm '{other}' (use MD5, SHA-1, SHA-256 or SHA-512)"
            )))
        }
    };
    let mut hex = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        hex.push_str(&format!("{b:02x}"));
    }
    Ok(hex)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(f: &str, args: Vec<Value>) -> Result<Value, EvalError> {
        let func = Func::lookup(f).expect("known function");
        let args: Vec<Cow<'_, Value>> = args.into_iter().map(Cow::Owned).collect();
        func.call(&args)
    }

    fn ok(f: &str, args: Vec<Value>) -> Value {
        call(f, args).unwrap_or_else(|e| panic!("{f}: {e}"))
    }

    fn err(f: &str, args: Vec<Value>) -> String {
        call(f, args).expect_err("should fail").message
    }

    #[test]
    fn lookup_names_aliases_and_arity() {
        assert_eq!(Func::lookup("fromJSON"), Some(Func::StringToJson));
        assert_eq!(Func::lookup("toJSON"), Some(Func::JsonToString));
        assert_eq!(Func::StringToJson.name(), "stringToJson");
        assert_eq!(Func::lookup("Format"), None);
        assert_eq!(Func::Format.arity(), (1, None));
        assert_eq!(Func::Uuid.arity(), (0, Some(0)));
        for (n, f) in NAMES {
            assert_eq!(Func::lookup(n), Some(*f));
        }
    }

    #[test]
    fn format() {
        assert_eq!(
            ok(
                "format",
                vec![json!("hello {} {}!"), json!("bob"), json!({"a": [1]})]
            ),
            json!("hello bob {\"a\":[1]}!")
        );
        assert_eq!(ok("format", vec![json!("plain")]), json!("plain"));
        assert!(err("format", vec![json!("{} {}"), json!(1)]).contains("more '{}'"));
        assert!(err("format", vec![json!("{}"), json!(1), json!(2)]).contains("only 1"));
        assert!(err("format", vec![json!(1)]).contains("argument 1 must be a string"));
    }

    #[test]
    fn length_split_join() {
        assert_eq!(ok("length", vec![json!("héllo")]), json!(5));
        assert_eq!(ok("length", vec![json!([1, 2])]), json!(2));
        assert_eq!(ok("length", vec![json!({"a": 1})]), json!(1));
        assert!(err("length", vec![json!(null)]).contains("got null"));
        assert_eq!(
            ok("split", vec![json!("a,b,,c"), json!(",")]),
            json!(["a", "b", "", "c"])
        );
        assert_eq!(ok("split", vec![json!("ab"), json!("")]), json!(["a", "b"]));
        assert!(err("split", vec![json!("a"), json!(1)]).contains("argument 2"));
        assert_eq!(
            ok("join", vec![json!(["a", 1, null]), json!("-")]),
            json!("a-1-null")
        );
        assert!(err("join", vec![json!("a"), json!("-")]).contains("an array"));
    }

    #[test]
    fn regex_and_get() {
        assert_eq!(
            ok("regexMatchString", vec![json!("^a\\d+$"), json!("a12")]),
            json!(true)
        );
        assert_eq!(
            ok("regexMatchString", vec![json!("^a\\d+$"), json!("b12")]),
            json!(false)
        );
        assert!(err("regexMatchString", vec![json!("("), json!("x")]).contains("invalid regular"));
        assert_eq!(ok("get", vec![json!({"a": 1}), json!("a")]), json!(1));
        assert_eq!(ok("get", vec![json!({"a": 1}), json!("b")]), json!(null));
        assert_eq!(ok("get", vec![json!([1, 2, 3]), json!(-1)]), json!(3));
        assert_eq!(ok("get", vec![json!([1]), json!(5)]), json!(null));
        assert_eq!(ok("get", vec![json!(null), json!("a")]), json!(null));
        assert!(err("get", vec![json!([1]), json!("a")]).contains("integer index"));
        assert!(err("get", vec![json!(3), json!("a")]).contains("object or array"));
    }

    #[test]
    fn integers() {
        assert_eq!(ok("intAdd", vec![json!(2), json!(-5)]), json!(-3));
        assert!(err("intAdd", vec![json!(i64::MAX), json!(1)]).contains("overflows"));
        assert!(err("intAdd", vec![json!(1.5), json!(1)]).contains("an integer"));
        for _ in 0..50 {
            let v = ok("randomInt", vec![json!(3), json!(5)]).as_i64().unwrap();
            assert!((3..5).contains(&v));
        }
        assert!(err("randomInt", vec![json!(5), json!(5)]).contains("less than"));
    }

    #[test]
    fn arrays_and_maps() {
        assert_eq!(
            ok("arrayContains", vec![json!([1, "a"]), json!(1.0)]),
            json!(true)
        );
        assert_eq!(
            ok("arrayContains", vec![json!([1, "a"]), json!("b")]),
            json!(false)
        );
        assert!(err("arrayContains", vec![json!({}), json!(1)]).contains("an array"));
        assert_eq!(
            ok("arrayUnique", vec![json!([2, 1, 2, 1.0, "x"])]),
            json!([2, 1, "x"])
        );
        assert!(err("arrayUnique", vec![json!("x")]).contains("an array"));
        assert_eq!(ok("toArray", vec![json!([1])]), json!([1]));
        assert_eq!(ok("toArray", vec![json!(1)]), json!([1]));
        assert_eq!(ok("toArray", vec![json!(1), json!([2])]), json!([1, [2]]));
        assert_eq!(ok("toArray", vec![]), json!([]));
        assert_eq!(
            ok("mapKeys", vec![json!({"b": 1, "a": 2})]),
            json!(["b", "a"])
        );
        assert_eq!(
            ok("mapValues", vec![json!({"b": 1, "a": 2})]),
            json!([1, 2])
        );
        assert!(err("mapKeys", vec![json!([])]).contains("an object"));
        assert!(err("mapValues", vec![json!(1)]).contains("an object"));
        assert_eq!(
            ok(
                "jsonMerge",
                vec![json!({"a": 1, "b": {"x": 1}}), json!({"b": 2, "c": 3})]
            ),
            json!({"a": 1, "b": 2, "c": 3})
        );
        assert!(err("jsonMerge", vec![json!({}), json!(1)]).contains("argument 2"));
    }

    #[test]
    fn json_and_base64() {
        assert_eq!(
            ok("stringToJson", vec![json!("{\"a\":[1]}")]),
            json!({"a": [1]})
        );
        assert_eq!(ok("fromJSON", vec![json!("2")]), json!(2));
        assert!(err("stringToJson", vec![json!("{")]).contains("invalid JSON"));
        assert_eq!(
            ok("jsonToString", vec![json!({"a": "x"})]),
            json!("{\"a\":\"x\"}")
        );
        assert_eq!(ok("toJSON", vec![json!("x")]), json!("\"x\""));
        assert_eq!(ok("toBase64", vec![json!("hello")]), json!("aGVsbG8="));
        assert_eq!(ok("fromBase64", vec![json!("aGVsbG8=")]), json!("hello"));
        assert!(err("fromBase64", vec![json!("***")]).contains("invalid Base64"));
        assert!(err("toBase64", vec![json!(1)]).contains("a string"));
    }

    #[test]
    fn hashes() {
        let h = |alg: &str| ok("hash", vec![json!("abc"), json!(alg)]);
        assert_eq!(h("MD5"), json!("900150983cd24fb0d6963f7d28e17f72"));
        assert_eq!(
            h("SHA-1"),
            json!("a9993e364706816aba3e25717850c26c9cd0d89d")
        );
        assert_eq!(
            h("SHA-256"),
            json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(h("SHA-512").as_str().unwrap().len(), 128);
        assert!(h("SHA-512")
            .as_str()
            .unwrap()
            .starts_with("ddaf35a193617aba"));
        assert!(err("hash", vec![json!("abc"), json!("sha256")]).contains("unknown algorithm"));
    }

    #[test]
    fn strings_uuid_now() {
        assert_eq!(ok("lower", vec![json!("AbC")]), json!("abc"));
        assert_eq!(ok("upper", vec![json!("AbC")]), json!("ABC"));
        assert_eq!(ok("trim", vec![json!("  a b \n")]), json!("a b"));
        assert!(err("lower", vec![json!(1)]).contains("a string"));
        assert!(err("upper", vec![json!(null)]).contains("got null"));
        assert!(err("trim", vec![json!([])]).contains("an array"));
        assert_eq!(
            ok("contains", vec![json!("hello"), json!("ell")]),
            json!(true)
        );
        assert_eq!(ok("contains", vec![json!([1, 2]), json!(3)]), json!(false));
        assert_eq!(
            ok("contains", vec![json!({"k": 1}), json!("k")]),
            json!(true)
        );
        assert!(err("contains", vec![json!(1), json!(1)]).contains("argument 1"));
        let u = ok("uuid", vec![]);
        let u = u.as_str().unwrap();
        assert!(uuid::Uuid::parse_str(u).is_ok());
        assert_ne!(ok("uuid", vec![]), json!(u));
        let now = ok("now", vec![]);
        let now = now.as_str().unwrap();
        assert!(now.ends_with('Z'));
        assert_eq!(now.len(), "2024-01-01T00:00:00.000Z".len());
        assert!(chrono::DateTime::parse_from_rfc3339(now).is_ok());
    }
}
