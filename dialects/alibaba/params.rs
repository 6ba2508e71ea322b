//! Request parameters: the union of the query and the form body (body wins), decoded with
//! form rules (`+` and `%20` are both a space), with typed getters that fail with the
//! dialect's own errors.

use std::ops::Range;

use serde_json::Value;

use crate::model::ApiError;

/// All parameters of one RPC request, decoded once: every name and value lives in one
/// buffer, in wire order (the query's pairs, then the form body's), so reading a request
/// costs two allocations however many parameters it has. A later pair of the same name
/// replaces an earlier one (the body wins over the query).
#[derive(Debug, Clone, Default)]
pub struct Params {
    /// The decoded names and values back to back.
    text: String,
    /// (name, value) ranges in `text`, in wire order.
    pairs: Vec<(Range<u32>, Range<u32>)>,
    /// Index in `pairs` of the first form-body pair (`pairs.len()` when there is none).
    form_from: usize,
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

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Appends the form decoding of `raw` to `out` (`+` is a space, `%XX` a byte, a malformed
/// escape stays as it is, invalid UTF-8 becomes U+FFFD): exactly what `form_urlencoded`
/// yields for one name or value. Returns its range in `out`.
fn push_decoded(out: &mut Vec<u8>, raw: &[u8]) -> Range<u32> {
    let start = out.len();
    // Copy runs of plain bytes whole; only `+` and `%` need a look.
    let mut run = 0;
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != b'+' && b != b'%' {
            i += 1;
            continue;
        }
        out.extend_from_slice(&raw[run..i]);
        if b == b'+' {
            out.push(b' ');
            i += 1;
        } else {
            match (
                raw.get(i + 1).copied().and_then(hex_value),
                raw.get(i + 2).copied().and_then(hex_value),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            }
        }
        run = i;
    }
    out.extend_from_slice(&raw[run..]);
    // ASCII (nearly every name and value) is valid UTF-8 without the full check.
    if !out[start..].is_ascii() && std::str::from_utf8(&out[start..]).is_err() {
        let fixed = String::from_utf8_lossy(&out[start..]).into_owned();
        out.truncate(start);
        out.extend_from_slice(fixed.as_bytes());
    }
    start as u32..out.len() as u32
}

/// Splits a form-encoded input into decoded pairs appended to `text` and `pairs`: empty
/// segments are skipped and a segment without `=` has an empty value.
fn parse_into(input: &[u8], text: &mut Vec<u8>, pairs: &mut Vec<(Range<u32>, Range<u32>)>) {
    for segment in input.split(|&b| b == b'&') {
        if segment.is_empty() {
            continue;
        }
        let (name, value) = match segment.iter().position(|&b| b == b'=') {
            Some(i) => (&segment[..i], &segment[i + 1..]),
            None => (segment, &[][..]),
        };
        let name = push_decoded(text, name);
        let value = push_decoded(text, value);
        pairs.push((name, value));
    }
}

impl Params {
    /// Parses the raw query and, for form bodies, the body. A body without a content type
    /// that looks like a form (`a=b&c=d`) is read as one too: some tools omit the header.
    pub fn parse(raw_query: &str, content_type: Option<&str>, body: &[u8]) -> Params {
        let form_body = !body.is_empty() && (is_form(content_type) || content_type.is_none());
        let capacity = raw_query.len() + if form_body { body.len() } else { 0 };
        let mut text = Vec::with_capacity(capacity);
        let mut pairs = Vec::with_capacity(16);
        parse_into(raw_query.as_bytes(), &mut text, &mut pairs);
        let form_from = pairs.len();
        if form_body {
            parse_into(body, &mut text, &mut pairs);
        }
        let text = String::from_utf8(text).unwrap_or_else(|e| {
            // Unreachable: every decoded piece was checked (and repaired) on the way.
            String::from_utf8_lossy(e.as_bytes()).into_owned()
        });
        Params {
            text,
            pairs,
            form_from,
        }
    }

    fn str_at(&self, r: &Range<u32>) -> &str {
        &self.text[r.start as usize..r.end as usize]
    }

    /// Every `(name, value)` in wire order: the query's, then the form body's.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.pairs
            .iter()
            .map(|(k, v)| (self.str_at(k), self.str_at(v)))
    }

    /// The query's `(name, value)` pairs in wire order.
    pub fn query_pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.pairs().take(self.form_from)
    }

    /// The form body's `(name, value)` pairs in wire order (none unless the body was read
    /// as a form).
    pub fn form_pairs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.pairs().skip(self.form_from)
    }

    /// A parameter's value (an empty value counts as given).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| self.str_at(k) == name)
            .map(|(_, v)| self.str_at(v))
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

    /// The one-buffer decoder agrees with `form_urlencoded` (the definition the dialect
    /// followed before) on every awkward input: escapes, `+`, malformed escapes, invalid
    /// UTF-8, empty segments, repeated names.
    #[test]
    fn decoding_matches_form_urlencoded() {
        let inputs: [&[u8]; 9] = [
            b"a=1&b=2",
            b"&&a=&=b&c&d=%zz&e=%4&f=%41%42+c%2B",
            b"x=%E2%98%83&y=%FF%FE&z=\xff",
            b"Input=%7B%22i%22%3A1%7D&Input=2",
            b"k=a=b=c&%3D=%26",
            b"",
            b"&",
            b"n%C3%A9=v%C3",
            b"a+b=c+d&%=%%",
        ];
        for input in inputs {
            let ours = Params::parse("", None, input);
            let theirs: Vec<(String, String)> = form_urlencoded::parse(input)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let ours: Vec<(String, String)> = ours
                .pairs()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(input));
        }
        let mixed = Params::parse("a=1&b=2", Some("text/plain"), b"a=3");
        assert_eq!(mixed.get("a"), Some("1"));
        assert_eq!(mixed.form_pairs().count(), 0);
        let merged = Params::parse("a=1&a=2", None, b"b=3&a=4&b=5");
        assert_eq!(merged.get("a"), Some("4"));
        assert_eq!(merged.get("b"), Some("5"));
        assert_eq!(merged.get("c"), None);
    }

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
        assert_eq!(p.form_pairs().count(), 2);
        assert_eq!(p.query_pairs().count(), 3);
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
