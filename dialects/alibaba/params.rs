//! Request parameters: the union of the query and the form body (body wins), decoded with
//! form rules (`+` and `%20` are both a space), with typed getters that fail with the
//! dialect's own errors.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::ApiError;

/// All parameters of one RPC request.
#[derive(Debug, Clone, Default)]
pub struct Params {
    map: BTreeMap<String, String>,
    /// The form-body pairs as decoded, for RPC V1 signatures (which sign them too).
    pub form: Vec<(String, String)>,
}

/// Whether a content type is a form body.
pub fn is_form(content_type: Option<&str>) -> bool {
    content_type
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
        .unwrap_or(false)
}

impl Params {
    /// Parses the raw query and, for form bodies, the body. A body without a content type
    /// that looks like a form (`a=b&c=d`) is read as one too: some tools omit the header.
    pub fn parse(raw_query: &str, content_type: Option<&str>, body: &[u8]) -> Params {
        let mut map = BTreeMap::new();
        for (k, v) in form_urlencoded::parse(raw_query.as_bytes()) {
            map.insert(k.into_owned(), v.into_owned());
        }
        let mut form = Vec::new();
        if !body.is_empty() && (is_form(content_type) || content_type.is_none()) {
            for (k, v) in form_urlencoded::parse(body) {
                form.push((k.clone().into_owned(), v.clone().into_owned()));
                map.insert(k.into_owned(), v.into_owned());
            }
        }
        Params { map, form }
    }

    /// A parameter's value (an empty value counts as given).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// A parameter that must be present and non-empty.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        match self.get(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ApiError::MissingParameter {
                name: name.to_string(),
            }),
        }
    }

    /// A parameter whose empty value means absent.
    pub fn optional(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// A boolean in any case (`True`, `true`, `FALSE`).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.optional(name) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(invalid(format!(
                "The parameter '{name}' must be true or false, not '{v}'."
            ))),
        }
    }

    /// An integer within `min..=max`.
    pub fn int(&self, name: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        match self.optional(name) {
            None => Ok(None),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(invalid(format!(
                    "The parameter '{name}' must be an integer from {min} to {max}, not '{v}'."
                ))),
            },
        }
    }

    /// A JSON object given as text (`Input`, `Output`, `Payload`); absent or empty = `None`.
    pub fn json_object(&self, name: &str) -> Result<Option<Value>, ApiError> {
        match self.optional(name) {
            None => Ok(None),
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(v @ Value::Object(_)) => Ok(Some(v)),
                Ok(_) => Err(invalid(format!(
                    "The parameter '{name}' must be a JSON object."
                ))),
                Err(e) => Err(invalid(format!(
                    "The parameter '{name}' is not valid JSON: {e}."
                ))),
            },
        }
    }
}

/// An `InvalidArgument` error with a message.
pub fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::InvalidArgument {
        message: message.into(),
    }
}

/// Checks a flow, execution or schedule name: `^[A-Za-z_][A-Za-z0-9_-]{0,127}$`.
pub fn check_name(param: &str, value: &str) -> Result<(), ApiError> {
    let mut chars = value.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if first_ok && rest_ok && value.len() <= 128 {
        Ok(())
    } else {
        Err(invalid(format!(
            "The parameter '{param}' is invalid: '{value}' must start with a letter or '_', contain only letters, digits, '_' and '-', and be 1 to 128 characters long."
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_form_body_merge_with_the_body_winning_and_spaces_decoded() {
        let p = Params::parse(
            "Action=X&FlowName=q&Note=a+b%20c",
            Some("application/x-www-form-urlencoded; charset=UTF-8"),
            b"FlowName=from+body&Input=%7B%22a%22%3A+1%7D",
        );
        assert_eq!(p.get("FlowName"), Some("from body"));
        assert_eq!(p.get("Note"), Some("a b c"));
        assert_eq!(
            p.json_object("Input").unwrap(),
            Some(serde_json::json!({"a": 1}))
        );
        assert_eq!(p.form.len(), 2);
    }

    #[test]
    fn typed_getters_fail_with_invalid_argument_or_missing_params() {
        let p = Params::parse("B=True&b=FALSE&N=61&E=&J=%5B1%5D", None, b"");
        assert_eq!(p.bool("B").unwrap(), Some(true));
        assert_eq!(p.bool("b").unwrap(), Some(false));
        assert!(matches!(
            p.int("N", 0, 60),
            Err(ApiError::InvalidArgument { .. })
        ));
        assert!(matches!(
            p.required("E"),
            Err(ApiError::MissingParameter { .. })
        ));
        assert!(matches!(
            p.json_object("J"),
            Err(ApiError::InvalidArgument { .. })
        ));
        assert!(check_name("Name", "_ok-1").is_ok());
        assert!(check_name("Name", "1bad").is_err());
        assert!(check_name("Name", "has space").is_err());
    }
}
