//! The one place that parses YAML. serde_yaml is archived upstream; keeping every use behind
//! this module means swapping it for a maintained fork touches one file.

use serde_json::Value;

/// A YAML document that could not be parsed, with the position of the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c}: {}", self.message),
            _ => write!(f, "{}", self.message),
        }
    }
}

/// Parses a YAML (or JSON) document into a JSON value. Mapping keys that are not strings
/// (numbers, booleans) become their string form, as a flow definition expects.
pub fn parse(text: &str) -> Result<Value, YamlError> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
        let loc = e.location();
        YamlError {
            line: loc.as_ref().map(|l| l.line()),
            column: loc.as_ref().map(|l| l.column()),
            message: e.to_string(),
        }
    })?;
    Ok(to_json(doc))
}

fn to_json(v: serde_yaml::Value) -> Value {
    match v {
        serde_yaml::Value::Null => Value::Null,
        serde_yaml::Value::Bool(b) => Value::Bool(b),
        serde_yaml::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .unwrap_or(Value::Null)
            }
        }
        serde_yaml::Value::String(s) => Value::String(s),
        serde_yaml::Value::Sequence(items) => {
            Value::Array(items.into_iter().map(to_json).collect())
        }
        serde_yaml::Value::Mapping(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (key_string(k), to_json(v)))
                .collect(),
        ),
        serde_yaml::Value::Tagged(t) => to_json(t.value),
    }
}

fn key_string(k: serde_yaml::Value) -> String {
    match k {
        serde_yaml::Value::String(s) => s,
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Null => "null".to_string(),
        other => serde_yaml::to_string(&other)
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_and_json_documents_become_json_values_in_order() {
        let v = parse("b: 1\na:\n  - x\n  - 2.5\n  - true\nc: ~\n").unwrap();
        assert_eq!(v, json!({"b": 1, "a": ["x", 2.5, true], "c": null}));
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"b":1,"a":["x",2.5,true],"c":null}"#
        );
        assert_eq!(parse(r#"{"k": [1, 2]}"#).unwrap(), json!({"k": [1, 2]}));
    }

    #[test]
    fn non_string_keys_become_strings_and_errors_carry_positions() {
        assert_eq!(
            parse("1: a\ntrue: b\n").unwrap(),
            json!({"1": "a", "true": "b"})
        );
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.line.is_some(), "{e}");
        assert!(e.to_string().starts_with("line "), "{e}");
    }
}
