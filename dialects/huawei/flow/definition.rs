//! The typed `WorkflowCreateBody` (spec §3.1–3.6) and the lenient, exhaustive reader that
//! builds it from JSON.
//!
//! The reader never stops at the first problem: every field is checked and every problem is
//! reported with its field path (`states[2].transition`). It is lenient where the real service
//! and its SDKs are: `null` means absent (the Go SDK sends nulls), unknown keys are ignored (the
//! official example puts `invoke_mode` beside `function_ref`), `End` and `Sleep` states may
//! carry `actions: []` and `action_mode: ""`, and empty strings mean "not set" for the optional
//! enums and filters. Expression syntax (arguments, filters, conditions) is checked by the
//! lowering, which parses it.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::flow::DefinitionIssue;

/// Most states in a workflow.
pub const MAX_STATES: usize = 100;
/// Most functions in a workflow.
pub const MAX_FUNCTIONS: usize = 100;
/// Most actions in an Operation state.
pub const MAX_ACTIONS: usize = 10;
/// Most entries of `retries`, `triggers` and a state's `on_errors`.
pub const MAX_LIST: usize = 200;
/// Longest Sleep, in seconds.
pub const MAX_SLEEP_SECONDS: u64 = 86_400;

/// The workflow name rule (also used for state and retry names, with other lengths).
static NAME_CHARS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:[_a-zA-Z0-9().-]|[\x{4e00}-\x{9fa5}])+$").expect("regex"));

/// Defines a string enum of the wire format with its exact spellings.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in documentation order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses the exact (case-sensitive) wire spelling.
            pub fn from_wire(s: &str) -> Option<$name> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            fn expected() -> String {
                let all: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                all.join(", ")
            }
        }
    };
}

wire_enum!(
    /// `mode`: how the workflow runs.
    #[derive(Default)]
    WorkflowMode {
        /// Standard: asynchronous, durable (the default).
        #[default]
        Normal = "NORMAL",
        /// Express: short, synchronous or asynchronous, not persisted.
        Express = "EXPRESS",
    }
);

wire_enum!(
    /// `states[].type`.
    StateType {
        /// Calls one or more functions.
        Operation = "Operation",
        /// Waits `duration` seconds.
        Sleep = "Sleep",
        /// Ends the workflow.
        End = "End",
    }
);

wire_enum!(
    /// `states[].action_mode`: how the actions of an Operation state run.
    ActionMode {
        /// One after another, in order (the default).
        Sequential = "sequential",
        /// All at once.
        Parallel = "parallel",
    }
);

wire_enum!(
    /// `function_ref.invoke_mode`.
    InvokeMode {
        /// Synchronous invocation (the only documented value).
        Synchronize = "synchronize",
    }
);

wire_enum!(
    /// `express_config.log_level`.
    LogLevel {
        /// Log everything.
        All = "ALL",
        /// Log errors only.
        Error = "ERROR",
        /// No logs.
        None = "NONE",
    }
);

wire_enum!(
    /// `triggers[].trigger_type`.
    TriggerType {
        /// Timer.
        FlowTimer = "FLOWTIMER",
        /// Simple Message Notification.
        Smn = "SMN",
        /// Shared API Gateway.
        Apig = "APIG",
        /// Dedicated API Gateway.
        ApigDe = "APIG_DE",
        /// Object storage events.
        Obs = "OBS",
    }
);

/// A workflow definition: the `WorkflowCreateBody` of CreateWorkflow / UpdateWorkFlow, checked
/// and normalised (`null` and `""` optional values become absent, defaults are filled in).
/// Its serde form is what ShowWorkFlow renders back as `definition`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowDefinition {
    /// 1–64 characters: letters, digits, `_ ( ) . -` and CJK.
    pub name: String,
    /// Free text, up to 512 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Id of the first state.
    pub start: String,
    /// The functions the states call.
    #[serde(default)]
    pub functions: Vec<Function>,
    /// The states (1–100).
    pub states: Vec<OperationState>,
    /// Constants, read as `$CONST.x` in arguments and filters.
    #[serde(default)]
    pub constants: Map<String, Value>,
    /// Named retry policies referenced by `on_errors[].retry_ref`.
    #[serde(default)]
    pub retries: Vec<Retry>,
    /// Triggers (stored only, never fired).
    #[serde(default)]
    pub triggers: Vec<Trigger>,
    /// `NORMAL` (default) or `EXPRESS`.
    #[serde(default)]
    pub mode: WorkflowMode,
    /// Logging of express workflows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub express_config: Option<ExpressConfig>,
    /// Enterprise project, up to 64 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise_project_id: Option<String>,
    /// Whether an express workflow may stream function output.
    #[serde(default)]
    pub enable_stream_response: bool,
}

/// `functions[]`: a function the workflow calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Function {
    /// The name `function_ref.ref_name` uses; unique in the workflow.
    pub name: String,
    /// The function URN `urn:fss:{region}:{project}:function:{package}:{name}:{version}`.
    pub operation: String,
    /// Free-form metadata (the console keeps template information here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

/// `states[]`: one node of the workflow (every node type uses this shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationState {
    /// Unique id; `start` and transitions refer to it.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `Operation`, `Sleep` or `End`.
    #[serde(rename = "type")]
    pub kind: StateType,
    /// Whether the workflow ends after this state.
    #[serde(default)]
    pub end: bool,
    /// Id of the next state (empty for terminal states).
    #[serde(default)]
    pub transition: String,
    /// The functions an Operation state calls (1–10; empty for other types).
    #[serde(default)]
    pub actions: Vec<Action>,
    /// How the actions run (absent = sequential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_mode: Option<ActionMode>,
    /// Error handling, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_errors: Vec<OnError>,
    /// JSONPath input and output filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_data_filter: Option<StateDataFilter>,
    /// Seconds to wait (Sleep states).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
}

/// `actions[]`: one function call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// The call.
    pub function_ref: FunctionRef,
    /// `invoke_mode` written beside `function_ref` (as the official example does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoke_mode: Option<InvokeMode>,
}

/// `function_ref`: which function and with which event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionRef {
    /// A `functions[].name`.
    pub ref_name: String,
    /// Always `synchronize` when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoke_mode: Option<InvokeMode>,
    /// The event template: strings starting with `$` are JSONPath expressions.
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

/// `on_errors[]`: a condition and what to do when a call fails and it holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OnError {
    /// Condition over the error (e.g. `$.errorCode == 500`); empty matches every error.
    #[serde(default)]
    pub error: String,
    /// State to continue at (after the retries, if any); empty = none.
    #[serde(default)]
    pub transition: String,
    /// A `retries[].name`; empty = no retry.
    #[serde(default)]
    pub retry_ref: String,
}

/// `state_data_filter`: JSONPath filters; empty or `$` means no filter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateDataFilter {
    /// Selects the state's input from the previous state's output.
    #[serde(default)]
    pub input: String,
    /// Selects what the state passes on from its result.
    #[serde(default)]
    pub output: String,
}

/// `retries[]`: a fixed-interval retry policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retry {
    /// Unique name.
    pub name: String,
    /// Seconds between attempts (1–30, default 1).
    #[serde(default = "default_delay")]
    pub delay: u32,
    /// Retries after the first call (1–8, default 3).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

fn default_delay() -> u32 {
    1
}
fn default_max_attempts() -> u32 {
    3
}
fn default_true() -> bool {
    true
}

/// `triggers[]` (stored and rendered back only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    /// Name.
    pub trigger_name: String,
    /// Kind of trigger.
    pub trigger_type: TriggerType,
    /// Whether it is enabled (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// OBS settings (OBS triggers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_config: Option<TriggerConfig>,
}

/// `trigger_config` of an OBS trigger.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TriggerConfig {
    /// Bucket name.
    #[serde(default)]
    pub bucket: String,
    /// Event names such as `ObjectCreated:Put`.
    #[serde(default)]
    pub events: Vec<String>,
    /// Object name prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Object name suffix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
}

/// `express_config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExpressConfig {
    /// `ALL`, `ERROR` or `NONE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<LogLevel>,
}

impl WorkflowDefinition {
    /// The function called `name`.
    pub fn function(&self, name: &str) -> Option<&Function> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// The retry policy called `name`.
    pub fn retry(&self, name: &str) -> Option<&Retry> {
        self.retries.iter().find(|r| r.name == name)
    }

    /// The state with id `id`.
    pub fn state(&self, id: &str) -> Option<&OperationState> {
        self.states.iter().find(|s| s.id == id)
    }
}

/// Reads a `WorkflowCreateBody`. Always returns a definition (with placeholders where fields
/// are broken) together with every structural problem found.
pub fn read(body: &Value) -> (WorkflowDefinition, Vec<DefinitionIssue>) {
    let mut r = Reader { issues: Vec::new() };
    let empty = Map::new();
    let obj = match body {
        Value::Object(o) => o,
        other => {
            r.issue(
                "$",
                format!("the definition must be a JSON object, not {}", kind(other)),
            );
            &empty
        }
    };
    let def = r.definition(obj);
    (def, r.issues)
}

/// A JSON type name for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `base.key` (or `key` at the top level).
fn at(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_string()
    } else {
        format!("{base}.{key}")
    }
}

/// A member, with `null` read as absent.
fn member<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

struct Reader {
    issues: Vec<DefinitionIssue>,
}

impl Reader {
    fn issue(&mut self, path: &str, message: impl Into<String>) {
        self.issues.push(DefinitionIssue {
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// A string member; `""` when absent (reported when `required`) or of the wrong type.
    fn string(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        base: &str,
        required: bool,
    ) -> String {
        let path = at(base, key);
        match member(obj, key) {
            None => {
                if required {
                    self.issue(&path, "is required");
                }
                String::new()
            }
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                self.issue(&path, format!("must be a string, not {}", kind(other)));
                String::new()
            }
        }
    }

    /// An optional string member; `None` when absent or empty.
    fn opt_string(&mut self, obj: &Map<String, Value>, key: &str, base: &str) -> Option<String> {
        Some(self.string(obj, key, base, false)).filter(|s| !s.is_empty())
    }

    fn boolean(&mut self, obj: &Map<String, Value>, key: &str, base: &str, default: bool) -> bool {
        match member(obj, key) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.issue(
                    &at(base, key),
                    format!("must be a boolean, not {}", kind(other)),
                );
                default
            }
        }
    }

    /// A non-negative integer member within `min..=max`; `None` when absent or invalid.
    fn integer(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        base: &str,
        min: u64,
        max: u64,
    ) -> Option<u64> {
        let path = at(base, key);
        let v = member(obj, key)?;
        let n = match v {
            Value::Number(n) => n.as_u64().or_else(|| {
                n.as_f64()
                    .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f <= u64::MAX as f64)
                    .map(|f| f as u64)
            }),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                let what = match v {
                    Value::Number(_) => format!("{v}"),
                    other => kind(other).to_string(),
                };
                self.issue(
                    &path,
                    format!("must be an integer from {min} to {max}, not {what}"),
                );
                None
            }
        }
    }

    /// An array member; empty when absent (reported when `required`) or of the wrong type.
    fn array<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        key: &str,
        base: &str,
        required: bool,
    ) -> &'a [Value] {
        match member(obj, key) {
            None => {
                if required {
                    self.issue(&at(base, key), "is required");
                }
                &[]
            }
            Some(Value::Array(a)) => a,
            Some(other) => {
                self.issue(
                    &at(base, key),
                    format!("must be an array, not {}", kind(other)),
                );
                &[]
            }
        }
    }

    /// An object member; `None` when absent or of the wrong type (reported).
    fn object<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        key: &str,
        base: &str,
    ) -> Option<&'a Map<String, Value>> {
        match member(obj, key)? {
            Value::Object(o) => Some(o),
            other => {
                self.issue(
                    &at(base, key),
                    format!("must be an object, not {}", kind(other)),
                );
                None
            }
        }
    }

    /// An array element that must be an object; an empty map (reported) otherwise.
    fn element<'a>(&mut self, v: &'a Value, path: &str) -> Option<&'a Map<String, Value>> {
        match v {
            Value::Object(o) => Some(o),
            other => {
                self.issue(path, format!("must be an object, not {}", kind(other)));
                None
            }
        }
    }

    /// An enum member: `None` when absent or `""` (reported when `required`) or unknown.
    fn enumeration<E>(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        base: &str,
        required: bool,
        parse: fn(&str) -> Option<E>,
        expected: fn() -> String,
    ) -> Option<E> {
        let path = at(base, key);
        let s = self.string(obj, key, base, false);
        if s.is_empty() {
            let wrong_type = member(obj, key).is_some_and(|v| !v.is_string());
            if required && !wrong_type {
                self.issue(&path, format!("is required (one of {})", expected()));
            }
            return None;
        }
        let v = parse(&s);
        if v.is_none() {
            self.issue(
                &path,
                format!("'{s}' is not valid (expected one of {})", expected()),
            );
        }
        v
    }

    /// Whether a problem was already reported at exactly `path`.
    fn reported(&self, path: &str) -> bool {
        self.issues.iter().any(|i| i.path == path)
    }

    fn length(&mut self, path: &str, s: &str, min: usize, max: usize) {
        let n = s.chars().count();
        if n < min || n > max {
            let msg = if min == 0 {
                format!("must be at most {max} characters long (it has {n})")
            } else if n == 0 {
                "must not be empty".to_string()
            } else {
                format!("must be {min} to {max} characters long (it has {n})")
            };
            self.issue(path, msg);
        }
    }

    /// A name following the documented rule: 1–`max` of letters, digits, `_ ( ) . -`, CJK.
    fn name_rule(&mut self, path: &str, s: &str, max: usize) {
        let n = s.chars().count();
        if n == 0 {
            self.issue(path, "must not be empty");
        } else if n > max {
            self.issue(
                path,
                format!("must be at most {max} characters long (it has {n})"),
            );
        } else if !NAME_CHARS.is_match(s) {
            self.issue(
                path,
                format!(
                    "'{s}' must match ^([_a-zA-Z0-9().-]|[\\u4e00-\\u9fa5]){{1,{max}}}$ \
                     (letters, digits, '_', '(', ')', '.', '-' and Chinese characters)"
                ),
            );
        }
    }

    fn count(&mut self, path: &str, n: usize, min: usize, max: usize) {
        if n < min {
            self.issue(path, format!("must contain at least {min} item(s)"));
        } else if n > max {
            self.issue(
                path,
                format!("must contain at most {max} items (it has {n})"),
            );
        }
    }

    fn definition(&mut self, obj: &Map<String, Value>) -> WorkflowDefinition {
        let name = self.string(obj, "name", "", true);
        if member(obj, "name").is_some_and(Value::is_string) {
            self.name_rule("name", &name, 64);
        }
        let description = self.opt_string(obj, "description", "");
        if let Some(d) = &description {
            self.length("description", d, 0, 512);
        }
        let start = self.string(obj, "start", "", true);
        if member(obj, "start").is_some_and(Value::is_string) {
            self.length("start", &start, 1, 256);
        }

        let raw_functions = self.array(obj, "functions", "", false);
        self.count("functions", raw_functions.len(), 0, MAX_FUNCTIONS);
        let functions: Vec<Function> = raw_functions
            .iter()
            .enumerate()
            .map(|(i, v)| self.function(v, &format!("functions[{i}]")))
            .collect();
        let mut seen = HashSet::new();
        for (i, f) in functions.iter().enumerate() {
            if !seen.insert(f.name.as_str()) {
                self.issue(
                    &format!("functions[{i}].name"),
                    format!("duplicate function name '{}'", f.name),
                );
            }
        }

        let raw_retries = self.array(obj, "retries", "", false);
        self.count("retries", raw_retries.len(), 0, MAX_LIST);
        let retries: Vec<Retry> = raw_retries
            .iter()
            .enumerate()
            .map(|(i, v)| self.retry(v, &format!("retries[{i}]")))
            .collect();
        let mut seen = HashSet::new();
        for (i, r) in retries.iter().enumerate() {
            if !r.name.is_empty() && !seen.insert(r.name.as_str()) {
                self.issue(
                    &format!("retries[{i}].name"),
                    format!("duplicate retry name '{}'", r.name),
                );
            }
        }

        let raw_states = self.array(obj, "states", "", true);
        if member(obj, "states").is_some_and(Value::is_array) {
            self.count("states", raw_states.len(), 1, MAX_STATES);
        }
        let states: Vec<(OperationState, Option<StateType>)> = raw_states
            .iter()
            .enumerate()
            .map(|(i, v)| self.state(v, &format!("states[{i}]")))
            .collect();
        let mut ids = HashSet::new();
        for (i, (s, _)) in states.iter().enumerate() {
            if !s.id.is_empty() && !ids.insert(s.id.as_str()) {
                self.issue(
                    &format!("states[{i}].id"),
                    format!("duplicate state id '{}'", s.id),
                );
            }
        }
        if !start.is_empty() && !raw_states.is_empty() && !ids.contains(start.as_str()) {
            self.issue("start", format!("state '{start}' does not exist"));
        }
        let function_names: HashSet<&str> = functions.iter().map(|f| f.name.as_str()).collect();
        let retry_names: HashSet<&str> = retries.iter().map(|r| r.name.as_str()).collect();
        for (i, (s, ty)) in states.iter().enumerate() {
            let sp = format!("states[{i}]");
            let terminal = s.end || *ty == Some(StateType::End);
            if !terminal && ty.is_some() {
                if s.transition.is_empty() {
                    if !self.reported(&at(&sp, "transition")) {
                        self.issue(
                            &at(&sp, "transition"),
                            "must name the next state when end is false",
                        );
                    }
                } else if !ids.contains(s.transition.as_str()) {
                    self.issue(
                        &at(&sp, "transition"),
                        format!("state '{}' does not exist", s.transition),
                    );
                }
            }
            for (j, a) in s.actions.iter().enumerate() {
                let name = &a.function_ref.ref_name;
                let fp = format!("{sp}.actions[{j}]");
                let broken = [
                    fp.clone(),
                    format!("{fp}.function_ref"),
                    format!("{fp}.function_ref.ref_name"),
                ]
                .iter()
                .any(|p| self.reported(p));
                if !broken && !function_names.contains(name.as_str()) {
                    self.issue(
                        &format!("{fp}.function_ref.ref_name"),
                        format!("function '{name}' is not declared in functions"),
                    );
                }
            }
            for (j, e) in s.on_errors.iter().enumerate() {
                let ep = format!("{sp}.on_errors[{j}]");
                if !e.transition.is_empty() && !ids.contains(e.transition.as_str()) {
                    self.issue(
                        &at(&ep, "transition"),
                        format!("state '{}' does not exist", e.transition),
                    );
                }
                if !e.retry_ref.is_empty() && !retry_names.contains(e.retry_ref.as_str()) {
                    self.issue(
                        &at(&ep, "retry_ref"),
                        format!("retry '{}' is not declared in retries", e.retry_ref),
                    );
                }
            }
        }

        let constants = self
            .object(obj, "constants", "")
            .cloned()
            .unwrap_or_default();

        let raw_triggers = self.array(obj, "triggers", "", false);
        self.count("triggers", raw_triggers.len(), 0, MAX_LIST);
        let triggers = raw_triggers
            .iter()
            .enumerate()
            .filter_map(|(i, v)| self.trigger(v, &format!("triggers[{i}]")))
            .collect();

        let mode = self
            .enumeration(
                obj,
                "mode",
                "",
                false,
                WorkflowMode::from_wire,
                WorkflowMode::expected,
            )
            .unwrap_or_default();
        let express_config = self
            .object(obj, "express_config", "")
            .map(|c| ExpressConfig {
                log_level: self.enumeration(
                    c,
                    "log_level",
                    "express_config",
                    false,
                    LogLevel::from_wire,
                    LogLevel::expected,
                ),
            });
        let enterprise_project_id = self.opt_string(obj, "enterprise_project_id", "");
        if let Some(e) = &enterprise_project_id {
            self.length("enterprise_project_id", e, 0, 64);
        }
        let enable_stream_response = self.boolean(obj, "enable_stream_response", "", false);

        WorkflowDefinition {
            name,
            description,
            start,
            functions,
            states: states.into_iter().map(|(s, _)| s).collect(),
            constants,
            retries,
            triggers,
            mode,
            express_config,
            enterprise_project_id,
            enable_stream_response,
        }
    }

    fn function(&mut self, v: &Value, path: &str) -> Function {
        let empty = Map::new();
        let obj = self.element(v, path).unwrap_or(&empty);
        let name = self.string(obj, "name", path, true);
        self.length(&at(path, "name"), &name, 0, 256);
        let operation = self.string(obj, "operation", path, true);
        if member(obj, "operation").is_some_and(Value::is_string) {
            self.length(&at(path, "operation"), &operation, 1, 256);
        }
        let metadata = self.object(obj, "metadata", path).cloned();
        Function {
            name,
            operation,
            metadata,
        }
    }

    fn retry(&mut self, v: &Value, path: &str) -> Retry {
        let empty = Map::new();
        let obj = self.element(v, path).unwrap_or(&empty);
        let name = self.string(obj, "name", path, true);
        if member(obj, "name").is_some_and(Value::is_string) {
            self.name_rule(&at(path, "name"), &name, 256);
        }
        let delay = self
            .integer(obj, "delay", path, 1, 30)
            .map_or(default_delay(), |n| n as u32);
        let max_attempts = self
            .integer(obj, "max_attempts", path, 1, 8)
            .map_or(default_max_attempts(), |n| n as u32);
        Retry {
            name,
            delay,
            max_attempts,
        }
    }

    fn state(&mut self, v: &Value, path: &str) -> (OperationState, Option<StateType>) {
        let empty = Map::new();
        let obj = self.element(v, path).unwrap_or(&empty);
        let id = self.string(obj, "id", path, true);
        if member(obj, "id").is_some_and(Value::is_string) {
            self.length(&at(path, "id"), &id, 1, 64);
        }
        let name = self.string(obj, "name", path, true);
        if member(obj, "name").is_some_and(Value::is_string) {
            self.name_rule(&at(path, "name"), &name, 256);
        }
        let kind = self.enumeration(
            obj,
            "type",
            path,
            true,
            StateType::from_wire,
            StateType::expected,
        );
        let end = self.boolean(obj, "end", path, false);
        let transition = self.string(obj, "transition", path, false);
        self.length(&at(path, "transition"), &transition, 0, 256);

        let raw_actions = self.array(obj, "actions", path, false);
        let actions: Vec<Action> = raw_actions
            .iter()
            .enumerate()
            .map(|(j, v)| self.action(v, &format!("{path}.actions[{j}]")))
            .collect();
        match kind {
            Some(StateType::Operation) => {
                self.count(&at(path, "actions"), actions.len(), 1, MAX_ACTIONS)
            }
            Some(k) if !actions.is_empty() => self.issue(
                &at(path, "actions"),
                format!(
                    "only Operation states call functions; a {} state must have no actions",
                    k.as_str()
                ),
            ),
            _ => {}
        }
        let action_mode = self.enumeration(
            obj,
            "action_mode",
            path,
            false,
            ActionMode::from_wire,
            ActionMode::expected,
        );

        let raw_errors = self.array(obj, "on_errors", path, false);
        self.count(&at(path, "on_errors"), raw_errors.len(), 0, MAX_LIST);
        let on_errors = raw_errors
            .iter()
            .enumerate()
            .map(|(j, v)| {
                let ep = format!("{path}.on_errors[{j}]");
                let empty = Map::new();
                let o = self.element(v, &ep).unwrap_or(&empty);
                let e = OnError {
                    error: self.string(o, "error", &ep, false),
                    transition: self.string(o, "transition", &ep, false),
                    retry_ref: self.string(o, "retry_ref", &ep, false),
                };
                for (key, s) in [
                    ("error", &e.error),
                    ("transition", &e.transition),
                    ("retry_ref", &e.retry_ref),
                ] {
                    self.length(&at(&ep, key), s, 0, 256);
                }
                e
            })
            .collect();

        let state_data_filter = self.object(obj, "state_data_filter", path).map(|f| {
            let fp = at(path, "state_data_filter");
            let filter = StateDataFilter {
                input: self.string(f, "input", &fp, false),
                output: self.string(f, "output", &fp, false),
            };
            self.length(&at(&fp, "input"), &filter.input, 0, 256);
            self.length(&at(&fp, "output"), &filter.output, 0, 256);
            filter
        });

        let duration = self.integer(obj, "duration", path, 0, MAX_SLEEP_SECONDS);
        if kind == Some(StateType::Sleep) && duration.is_none() && member(obj, "duration").is_none()
        {
            self.issue(
                &at(path, "duration"),
                "is required for a Sleep state (whole seconds, 0 to 86400)",
            );
        }

        let state = OperationState {
            id,
            name,
            kind: kind.unwrap_or(StateType::Operation),
            end,
            transition,
            actions,
            action_mode,
            on_errors,
            state_data_filter,
            duration,
        };
        (state, kind)
    }

    fn action(&mut self, v: &Value, path: &str) -> Action {
        let empty = Map::new();
        let obj = self.element(v, path).unwrap_or(&empty);
        let invoke_mode = self.enumeration(
            obj,
            "invoke_mode",
            path,
            false,
            InvokeMode::from_wire,
            InvokeMode::expected,
        );
        let fp = at(path, "function_ref");
        let fr = match member(obj, "function_ref") {
            None if v.is_object() => {
                self.issue(&fp, "is required");
                None
            }
            None => None,
            Some(_) => self.object(obj, "function_ref", path),
        };
        let has_ref = fr.is_some();
        let fr = fr.unwrap_or(&empty);
        let ref_name = self.string(fr, "ref_name", &fp, has_ref);
        self.length(&at(&fp, "ref_name"), &ref_name, 0, 256);
        let fn_invoke_mode = self.enumeration(
            fr,
            "invoke_mode",
            &fp,
            false,
            InvokeMode::from_wire,
            InvokeMode::expected,
        );
        let arguments = self
            .object(fr, "arguments", &fp)
            .cloned()
            .unwrap_or_default();
        Action {
            function_ref: FunctionRef {
                ref_name,
                invoke_mode: fn_invoke_mode,
                arguments,
            },
            invoke_mode,
        }
    }

    fn trigger(&mut self, v: &Value, path: &str) -> Option<Trigger> {
        let obj = self.element(v, path)?;
        let trigger_name = self.string(obj, "trigger_name", path, true);
        if member(obj, "trigger_name").is_some_and(Value::is_string) {
            self.length(&at(path, "trigger_name"), &trigger_name, 1, 256);
        }
        let trigger_type = self.enumeration(
            obj,
            "trigger_type",
            path,
            true,
            TriggerType::from_wire,
            TriggerType::expected,
        );
        let enabled = self.boolean(obj, "enabled", path, true);
        let cp = at(path, "trigger_config");
        let trigger_config = self.object(obj, "trigger_config", path).map(|c| {
            let bucket = self.string(c, "bucket", &cp, false);
            let events = self
                .array(c, "events", &cp, false)
                .iter()
                .enumerate()
                .filter_map(|(k, e)| match e {
                    Value::String(s) => Some(s.clone()),
                    other => {
                        self.issue(
                            &format!("{cp}.events[{k}]"),
                            format!("must be a string, not {}", kind(other)),
                        );
                        None
                    }
                })
                .collect();
            TriggerConfig {
                bucket,
                events,
                prefix: self.opt_string(c, "prefix", &cp),
                suffix: self.opt_string(c, "suffix", &cp),
            }
        });
        if trigger_type == Some(TriggerType::Obs) {
            match &trigger_config {
                None => self.issue(&cp, "is required for an OBS trigger"),
                Some(c) => {
                    self.length(&at(&cp, "bucket"), &c.bucket, 1, 64);
                    self.count(&at(&cp, "events"), c.events.len(), 1, 64);
                }
            }
        }
        Some(Trigger {
            trigger_name,
            trigger_type: trigger_type?,
            enabled,
            trigger_config,
        })
    }
}
