//! Mock test cases for contract tests, in the spirit of AWS Step Functions Local's
//! MockConfigFile: named responses with per-attempt `Return` or `Throw`, and test cases that
//! map a flow's task states to responses.
//!
//! ```json
//! {
//!   "StateMachines": {
//!     "trip": {"TestCases": {"FlightFull": {"BookFlight": "NoSeats", "CancelTrain": "Ok"}}}
//!   },
//!   "MockedResponses": {
//!     "NoSeats": {"0": {"Throw": {"Error": "BookFlightError", "Cause": "no seats"}}},
//!     "Ok": {"*": {"Return": {"ok": true}}}
//!   }
//! }
//! ```
//!
//! A test case is chosen per execution by the reserved input field `flowgate_test_case`
//! (removed from the input before the flow sees it), so the official SDKs select one without
//! new parameters. In an execution with a test case, every Task answers from the case: a task
//! state the case does not map fails with `sys.Invoke.MockNotFound`, never calls a function.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::mock::{parse_attempts, AttemptSpec};
use super::InvokeError;

/// The reserved input field that selects a test case.
pub const TEST_CASE_FIELD: &str = "flowgate_test_case";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    #[serde(rename = "StateMachines", default)]
    state_machines: HashMap<String, FlowCases>,
    #[serde(rename = "MockedResponses", default)]
    mocked_responses: HashMap<String, HashMap<String, AnswerFormat>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlowCases {
    #[serde(rename = "TestCases", default)]
    test_cases: HashMap<String, HashMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerFormat {
    #[serde(rename = "Return", default)]
    ret: Option<Value>,
    #[serde(rename = "Throw", default)]
    throw: Option<ThrowFormat>,
    #[serde(rename = "DelayMs", default)]
    delay_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThrowFormat {
    #[serde(rename = "Error")]
    error: String,
    #[serde(rename = "Cause", default)]
    cause: String,
}

/// One scripted answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The task result.
    Return(Value),
    /// A function error of this type with this message.
    Throw {
        /// The error type.
        error: String,
        /// The message.
        cause: String,
    },
}

#[derive(Debug, Clone)]
struct Response {
    answers: Vec<(AttemptSpec, Answer, Option<u64>)>,
}

/// A loaded mock file.
#[derive(Debug, Clone, Default)]
pub struct TestCases {
    /// flow name → test case → state → response name.
    cases: HashMap<String, HashMap<String, HashMap<String, String>>>,
    responses: HashMap<String, Response>,
}

impl TestCases {
    /// Reads a mock file (JSON or YAML); every problem with its path.
    pub fn load(path: &Path) -> Result<TestCases, Vec<String>> {
        let text =
            std::fs::read_to_string(path).map_err(|e| vec![format!("{}: {e}", path.display())])?;
        let doc =
            crate::yaml::parse(&text).map_err(|e| vec![format!("{}: {e}", path.display())])?;
        Self::from_value(doc).map_err(|problems| {
            problems
                .into_iter()
                .map(|p| format!("{}: {p}", path.display()))
                .collect()
        })
    }

    /// Builds test cases from the file's JSON form; every problem with its field path.
    pub fn from_value(doc: Value) -> Result<TestCases, Vec<String>> {
        let file: FileFormat = serde_json::from_value(doc).map_err(|e| vec![e.to_string()])?;
        let mut problems = Vec::new();
        let mut responses = HashMap::new();
        for (name, answers) in file.mocked_responses {
            let mut list = Vec::new();
            let mut keys: Vec<_> = answers.into_iter().collect();
            keys.sort_by(|a, b| a.0.cmp(&b.0));
            for (attempts, a) in keys {
                let path = format!("MockedResponses.{name}.{attempts}");
                let spec = match parse_attempts(&attempts) {
                    Ok(s) => s,
                    Err(e) => {
                        problems.push(format!("{path}: {e}"));
                        continue;
                    }
                };
                let answer = match (a.ret, a.throw) {
                    (Some(v), None) => Answer::Return(v),
                    (None, Some(t)) => Answer::Throw {
                        error: t.error,
                        cause: t.cause,
                    },
                    _ => {
                        problems.push(format!("{path}: needs exactly one of Return and Throw"));
                        continue;
                    }
                };
                list.push((spec, answer, a.delay_ms));
            }
            responses.insert(name, Response { answers: list });
        }
        let mut cases = HashMap::new();
        for (flow, fc) in file.state_machines {
            for (case, states) in &fc.test_cases {
                for (state, response) in states {
                    if !responses.contains_key(response) {
                        problems.push(format!(
                            "StateMachines.{flow}.TestCases.{case}.{state}: no MockedResponses entry named '{response}'"
                        ));
                    }
                }
            }
            cases.insert(flow, fc.test_cases);
        }
        if problems.is_empty() {
            Ok(TestCases { cases, responses })
        } else {
            problems.sort();
            Err(problems)
        }
    }

    /// Whether `flow` has a test case of that name.
    pub fn has_case(&self, flow: &str, case: &str) -> bool {
        self.cases.get(flow).is_some_and(|c| c.contains_key(case))
    }

    /// Whether any test case is loaded.
    pub fn is_empty(&self) -> bool {
        self.cases.is_empty()
    }

    /// The answer of `state` in test case `case` of `flow` for attempt `attempt`.
    pub async fn answer(
        &self,
        flow: &str,
        case: &str,
        state: &str,
        attempt: u32,
    ) -> Result<Value, InvokeError> {
        let not_found = |what: String| InvokeError::Invocation {
            code: "MockNotFound".into(),
            message: what,
        };
        let response = self
            .cases
            .get(flow)
            .and_then(|c| c.get(case))
            .and_then(|states| states.get(state))
            .ok_or_else(|| {
                not_found(format!(
                    "test case '{case}' of flow '{flow}' has no mock for state '{state}'"
                ))
            })?;
        let r = self
            .responses
            .get(response)
            .ok_or_else(|| not_found(format!("no mocked response named '{response}'")))?;
        let (_, answer, delay) = r
            .answers
            .iter()
            .find(|(spec, _, _)| spec.matches(attempt))
            .ok_or_else(|| {
                not_found(format!(
                    "mocked response '{response}' has no answer for attempt {attempt}"
                ))
            })?;
        if let Some(ms) = delay {
            tokio::time::sleep(std::time::Duration::from_millis(*ms)).await;
        }
        match answer {
            Answer::Return(v) => Ok(v.clone()),
            Answer::Throw { error, cause } => Err(InvokeError::Function {
                error_type: error.clone(),
                message: cause.clone(),
            }),
        }
    }
}

/// Removes the test-case field from an execution input and returns its value.
pub fn take_test_case(input: &mut Value) -> Option<String> {
    match input {
        Value::Object(m) => match m.remove(TEST_CASE_FIELD) {
            Some(Value::String(s)) => Some(s),
            Some(other) => Some(other.to_string()),
            None => None,
        },
        _ => None,
    }
}
