//! [`MockInvoker`]: a function whose answers are scripted per attempt in the configuration, in
//! the spirit of AWS Step Functions Local's MockConfigFile. It lets flows with retries, catches
//! and timeouts be exercised without deploying any function.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

pub use super::binding::{MockResponse, MockThrow};
use super::{Invocation, InvokeError, Invoker};

/// Which 0-based attempts a [`MockResponse`] answers, parsed from its `attempts` string by
/// [`parse_attempts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptSpec {
    /// `"n"`: only attempt `n` (`"0"` is the first call, before any retry).
    Exact(u32),
    /// `"a-b"`: attempts `a` through `b`, inclusive.
    Range(u32, u32),
    /// `"a-"`: attempt `a` and every later one.
    From(u32),
    /// `"*"`: any attempt.
    Any,
}

impl AttemptSpec {
    /// Whether this spec covers the 0-based `attempt`.
    pub fn matches(&self, attempt: u32) -> bool {
        match *self {
            AttemptSpec::Exact(n) => attempt == n,
            AttemptSpec::Range(a, b) => (a..=b).contains(&attempt),
            AttemptSpec::From(a) => attempt >= a,
            AttemptSpec::Any => true,
        }
    }
}

fn attempt_number(s: &str, spec: &str) -> Result<u32, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "invalid attempts \"{spec}\": expected \"N\", \"N-M\", \"N-\" or \"*\" with 0-based attempt numbers"
        ));
    }
    s.parse()
        .map_err(|_| format!("invalid attempts \"{spec}\": attempt number {s} is too large"))
}

/// Parses an attempts spec: `"0"` (first attempt), `"1-2"` (second and third), `"3-"` (fourth
/// onward), `"*"` (any). Surrounding whitespace is ignored; anything else (including a range
/// whose end is before its start) is an error message suitable for configuration problems.
pub fn parse_attempts(spec: &str) -> Result<AttemptSpec, String> {
    let s = spec.trim();
    if s == "*" {
        return Ok(AttemptSpec::Any);
    }
    match s.split_once('-') {
        None => attempt_number(s, spec).map(AttemptSpec::Exact),
        Some((a, "")) => attempt_number(a, spec).map(AttemptSpec::From),
        Some((a, b)) => {
            let (a, b) = (attempt_number(a, spec)?, attempt_number(b, spec)?);
            if a > b {
                return Err(format!(
                    "invalid attempts \"{spec}\": range ends before it starts"
                ));
            }
            Ok(AttemptSpec::Range(a, b))
        }
    }
}

/// A mock function: answers each call with the first scripted [`MockResponse`] whose attempts
/// cover the call's attempt, after its optional delay.
///
/// * `return` → `Ok(value)`, returned as-is;
/// * `throw` → [`InvokeError::Function`] with the `error` as type and `cause` as message;
/// * no matching response → [`InvokeError::Invocation`] with code `MockNotFound`.
///
/// The mock does not enforce the task timeout itself: the engine does, around the call.
#[derive(Debug, Clone)]
pub struct MockInvoker {
    name: String,
    responses: Vec<Scripted>,
}

/// One scripted response as the mock uses it: the attempts it answers, its delay and its
/// answer.
#[derive(Debug, Clone)]
struct Scripted {
    attempts: AttemptSpec,
    delay_ms: Option<u64>,
    answer: Answer,
}

/// What a scripted response answers with: exactly one of `return` and `throw`.
#[derive(Debug, Clone)]
enum Answer {
    /// The value, shared: every call hands out the same value instead of a copy.
    Return(Arc<Value>),
    /// The error the function raises.
    Throw(MockThrow),
}

impl MockInvoker {
    /// Creates a mock named `name` (used in error messages) with scripted responses.
    ///
    /// # Panics
    /// If a response is invalid (bad attempts spec, not exactly one of return/throw); this is
    /// the shorthand for tests, configuration goes through [`MockInvoker::try_new`].
    pub fn new(name: impl Into<String>, responses: Vec<MockResponse>) -> Self {
        match Self::try_new(name, responses) {
            Ok(m) => m,
            Err(e) => panic!("invalid mock response: {e}"),
        }
    }

    /// Creates a mock, rejecting an invalid response with a message.
    pub fn try_new(name: impl Into<String>, responses: Vec<MockResponse>) -> Result<Self, String> {
        let name = name.into();
        let mut compiled = Vec::with_capacity(responses.len());
        for (k, r) in responses.into_iter().enumerate() {
            let spec = parse_attempts(&r.attempts).map_err(|e| format!("response {k}: {e}"))?;
            let answer = match (r.ret, r.throw) {
                (Some(v), None) => Answer::Return(Arc::new(v)),
                (None, Some(t)) => Answer::Throw(t),
                (Some(_), Some(_)) | (None, None) => {
                    return Err(format!(
                        "response {k}: give exactly one of `return` and `throw`"
                    ))
                }
            };
            compiled.push(Scripted {
                attempts: spec,
                delay_ms: r.delay_ms,
                answer,
            });
        }
        Ok(MockInvoker {
            name,
            responses: compiled,
        })
    }

    /// The mock's function name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The scripted response that answers the 0-based `attempt`, if any.
    fn scripted_for(&self, attempt: u32) -> Option<&Scripted> {
        self.responses.iter().find(|s| s.attempts.matches(attempt))
    }
}

#[async_trait]
impl Invoker for MockInvoker {
    async fn invoke(&self, call: &Invocation<'_>) -> Result<Value, InvokeError> {
        self.invoke_shared(call).await.map(Arc::unwrap_or_clone)
    }

    async fn invoke_shared(&self, call: &Invocation<'_>) -> Result<Arc<Value>, InvokeError> {
        let Some(s) = self.scripted_for(call.attempt) else {
            return Err(InvokeError::Invocation {
                code: "MockNotFound".to_string(),
                message: format!(
                    "no mock response for attempt {} of function {}",
                    call.attempt, self.name
                ),
            });
        };
        if let Some(ms) = s.delay_ms.filter(|ms| *ms > 0) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        match &s.answer {
            Answer::Return(v) => Ok(v.clone()),
            Answer::Throw(t) => Err(InvokeError::Function {
                error_type: t.error.clone(),
                message: t.cause.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_attempt_specs() {
        assert_eq!(parse_attempts("0"), Ok(AttemptSpec::Exact(0)));
        assert_eq!(parse_attempts(" 7 "), Ok(AttemptSpec::Exact(7)));
        assert_eq!(parse_attempts("1-2"), Ok(AttemptSpec::Range(1, 2)));
        assert_eq!(parse_attempts("2-2"), Ok(AttemptSpec::Range(2, 2)));
        assert_eq!(parse_attempts("3-"), Ok(AttemptSpec::From(3)));
        assert_eq!(parse_attempts("*"), Ok(AttemptSpec::Any));
        for bad in [
            "",
            "-",
            "-3",
            "a",
            "2-1",
            "1-2-3",
            "+1",
            "1 - 2",
            "**",
            "99999999999",
        ] {
            assert!(parse_attempts(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn attempt_specs_match() {
        assert!(AttemptSpec::Exact(0).matches(0));
        assert!(!AttemptSpec::Exact(0).matches(1));
        assert!(AttemptSpec::Range(1, 2).matches(1) && AttemptSpec::Range(1, 2).matches(2));
        assert!(!AttemptSpec::Range(1, 2).matches(0) && !AttemptSpec::Range(1, 2).matches(3));
        assert!(AttemptSpec::From(3).matches(3) && AttemptSpec::From(3).matches(u32::MAX));
        assert!(!AttemptSpec::From(3).matches(2));
        assert!(AttemptSpec::Any.matches(0));
    }

    #[test]
    fn try_new_rejects_invalid_responses() {
        assert!(
            MockInvoker::try_new("f", vec![MockResponse::returning("x", Value::Null)]).is_err()
        );
        let mut both = MockResponse::returning("0", Value::Null);
        both.throw = Some(MockThrow {
            error: "E".into(),
            cause: String::new(),
        });
        assert!(MockInvoker::try_new("f", vec![both]).is_err());
        let mut neither = MockResponse::returning("0", Value::Null);
        neither.ret = None;
        assert!(MockInvoker::try_new("f", vec![neither]).is_err());
    }
}
