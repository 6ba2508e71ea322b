//! Function bindings: the `[[functions]]` entries of the configuration, their validation, and
//! the [`FunctionRegistry`] that maps a task's target (an Alibaba FC ARN, a Huawei function
//! URN, a plain name) to the [`Invoker`] that calls it.
//!
//! Flows name their functions by cloud identifiers (`acs:fc:::services/trip/functions/bookFlight`,
//! `urn:fss:cn-north-4:p:function:default:validate:latest`) that mean nothing on the machine the
//! gateway runs on, so each binding says which targets it answers for and how to call them
//! (a scripted mock, an HTTP endpoint or a local command). See `docs/functions.md` for the user
//! documentation.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::command::CommandInvoker;
use super::http::HttpInvoker;
use super::mock::{parse_attempts, MockInvoker};
use super::Invoker;

/// Timeout of an HTTP binding that sets no `timeout_seconds`: one minute, FC's default
/// function timeout.
pub const DEFAULT_HTTP_TIMEOUT_SECONDS: f64 = 60.0;

/// Timeout of a command binding that sets no `timeout_seconds`: one minute, as for HTTP.
pub const DEFAULT_COMMAND_TIMEOUT_SECONDS: f64 = 60.0;

/// How a binding calls its function (`invoker = "mock"`, `"http"` or `"command"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvokerKind {
    /// Scripted per-attempt answers ([`MockInvoker`]): for tests and demos without functions.
    Mock,
    /// A JSON POST to an HTTP endpoint ([`HttpInvoker`]): the real function runs elsewhere.
    Http,
    /// A local program run per call ([`CommandInvoker`]): event on stdin, result on stdout.
    Command,
}

/// One `[[functions]]` entry of the configuration: which task targets it answers for and how
/// they are called. Unknown keys are rejected so that typos do not silently change behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionConfig {
    /// The function name this binding answers for, compared with the function name extracted
    /// from a task target (see [`function_name`]); may be a `*` glob such as `book*`.
    pub name: String,
    /// Extra patterns matched against the whole target: an exact target string, or a `*` glob
    /// such as `acs:fc:*:*:services/demo/functions/*`. These take precedence over `name`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<String>,
    /// How the function is called.
    pub invoker: InvokerKind,
    /// The endpoint of an `http` binding (`http://` or `https://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The longest an `http` or `command` call may take, in seconds (default
    /// [`DEFAULT_HTTP_TIMEOUT_SECONDS`], [`DEFAULT_COMMAND_TIMEOUT_SECONDS`]); a shorter task
    /// timeout wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
    /// Extra request headers of an `http` binding (authorization, routing).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The scripted answers of a `mock` binding, first match wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responses: Vec<MockResponse>,
    /// The program of a `command` binding: a name looked up in `PATH`, or a path (relative
    /// paths with a `/` are resolved against the gateway's current directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// The arguments of a `command` binding's program.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Extra environment variables of a `command` binding's program.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// The directory a `command` binding's program runs in (default: the gateway's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
}

/// One scripted answer of a mock function, in the spirit of AWS Step Functions Local's
/// MockConfigFile: which attempts it answers and what it answers (exactly one of `return` and
/// `throw`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockResponse {
    /// The 0-based attempts this answer applies to: `"0"`, `"1-2"` (inclusive), `"3-"` (and
    /// later), `"*"` (any); see [`parse_attempts`]. Defaults to `"*"`.
    #[serde(default = "any_attempt")]
    pub attempts: String,
    /// The function's result, returned as-is (`null` is a valid result).
    #[serde(
        rename = "return",
        default,
        deserialize_with = "present_value",
        skip_serializing_if = "Option::is_none"
    )]
    pub ret: Option<Value>,
    /// The error the function raises instead of returning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throw: Option<MockThrow>,
    /// How long to wait before answering, in milliseconds, so that task timeouts can be tested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

/// The error raised by a mock answer: becomes [`super::InvokeError::Function`], which retry and
/// catch rules match by `error`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockThrow {
    /// The error type (e.g. `BookFlightError`, `FC.ResourceThrottled`).
    pub error: String,
    /// The error message.
    #[serde(default)]
    pub cause: String,
}

impl MockResponse {
    /// An answer returning `value` on the given attempts; a shorthand for tests.
    pub fn returning(attempts: &str, value: Value) -> Self {
        MockResponse {
            attempts: attempts.to_string(),
            ret: Some(value),
            throw: None,
            delay_ms: None,
        }
    }

    /// An answer raising `error` with message `cause` on the given attempts; a shorthand for tests.
    pub fn throwing(attempts: &str, error: &str, cause: &str) -> Self {
        MockResponse {
            attempts: attempts.to_string(),
            ret: None,
            throw: Some(MockThrow {
                error: error.to_string(),
                cause: cause.to_string(),
            }),
            delay_ms: None,
        }
    }

    /// The same answer, given only after `ms` milliseconds.
    pub fn delayed(mut self, ms: u64) -> Self {
        self.delay_ms = Some(ms);
        self
    }
}

fn any_attempt() -> String {
    "*".to_string()
}

/// Deserializes a present field as `Some` even when it is `null`, so that `return = null`
/// (JSON) is a mock answer returning `null` rather than a missing `return`.
fn present_value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Checks a binding pattern (a `matches` entry or a glob `name`): only `*` is a wildcard.
fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("must not be empty".to_string());
    }
    if pattern.trim() != pattern {
        return Err("must not start or end with whitespace".to_string());
    }
    if pattern.contains("**") {
        return Err("`**` is not supported: a single `*` already matches any characters, including `/` and `:`"
            .to_string());
    }
    if let Some(c) = pattern
        .chars()
        .find(|c| matches!(c, '?' | '[' | ']' | '{' | '}'))
    {
        return Err(format!("`{c}` is not supported: `*` is the only wildcard"));
    }
    Ok(())
}

/// Lists every problem of the `[[functions]]` section as (field path, message), e.g.
/// `("functions[2].url", "...")`, so that the configuration loader can report them all at once
/// instead of failing on the first. An empty list means the section is valid.
pub fn validate(functions: &[FunctionConfig]) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, f) in functions.iter().enumerate() {
        let at = |field: &str| format!("functions[{i}].{field}");
        if f.name.is_empty() {
            problems.push((at("name"), "must not be empty".to_string()));
        } else {
            if let Some(first) = seen.get(f.name.as_str()) {
                problems.push((
                    at("name"),
                    format!(
                        "duplicate function name \"{}\" (first defined by functions[{first}])",
                        f.name
                    ),
                ));
            } else {
                seen.insert(&f.name, i);
            }
            if f.name.contains('*') {
                if let Err(m) = check_pattern(&f.name) {
                    problems.push((at("name"), format!("invalid glob: {m}")));
                }
            } else if f.name.trim() != f.name {
                problems.push((
                    at("name"),
                    "must not start or end with whitespace".to_string(),
                ));
            }
        }
        for (k, p) in f.matches.iter().enumerate() {
            if let Err(m) = check_pattern(p) {
                problems.push((
                    at(&format!("matches[{k}]")),
                    format!("invalid pattern: {m}"),
                ));
            }
        }
        match f.invoker {
            InvokerKind::Http => {
                match &f.url {
                    None => problems.push((at("url"), "required by an http invoker".to_string())),
                    Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => problems
                        .push((
                            at("url"),
                            format!("must start with http:// or https:// (got \"{u}\")"),
                        )),
                    Some(u) => {
                        if let Err(e) = reqwest::Url::parse(u) {
                            problems.push((at("url"), format!("not a valid URL: {e}")));
                        }
                    }
                }
                check_timeout(f, &at, &mut problems);
                for (name, value) in &f.headers {
                    if let Err(m) = super::http::check_header(name, value) {
                        problems.push((at(&format!("headers.{name}")), m));
                    }
                }
                if !f.responses.is_empty() {
                    problems.push((at("responses"), "only used by a mock invoker".to_string()));
                }
                reject_command_keys(f, &at, &mut problems);
            }
            InvokerKind::Command => {
                match &f.command {
                    None => {
                        problems.push((at("command"), "required by a command invoker".to_string()))
                    }
                    Some(c) => {
                        if let Err(m) = super::command::check_text("the command", c, false) {
                            problems.push((at("command"), m));
                        }
                    }
                }
                for (k, a) in f.args.iter().enumerate() {
                    if let Err(m) = super::command::check_text("an argument", a, true) {
                        problems.push((at(&format!("args[{k}]")), m));
                    }
                }
                for (name, value) in &f.env {
                    if let Err(m) = super::command::check_env(name, value) {
                        problems.push((at(&format!("env.{name}")), m));
                    }
                }
                if let Some(d) = &f.working_dir {
                    if let Err(m) = super::command::check_text("the working directory", d, false) {
                        problems.push((at("working_dir"), m));
                    }
                }
                check_timeout(f, &at, &mut problems);
                if f.url.is_some() {
                    problems.push((at("url"), "only used by an http invoker".to_string()));
                }
                if !f.headers.is_empty() {
                    problems.push((at("headers"), "only used by an http invoker".to_string()));
                }
                if !f.responses.is_empty() {
                    problems.push((at("responses"), "only used by a mock invoker".to_string()));
                }
            }
            InvokerKind::Mock => {
                if f.responses.is_empty() {
                    problems.push((
                        at("responses"),
                        "a mock invoker needs at least one response".to_string(),
                    ));
                }
                for (k, r) in f.responses.iter().enumerate() {
                    if let Err(m) = parse_attempts(&r.attempts) {
                        problems.push((at(&format!("responses[{k}].attempts")), m));
                    }
                    match (&r.ret, &r.throw) {
                        (Some(_), Some(_)) => problems.push((
                            at(&format!("responses[{k}]")),
                            "has both `return` and `throw`: give exactly one".to_string(),
                        )),
                        (None, None) => problems.push((
                            at(&format!("responses[{k}]")),
                            "has neither `return` nor `throw`: give exactly one".to_string(),
                        )),
                        (None, Some(t)) if t.error.is_empty() => problems.push((
                            at(&format!("responses[{k}].throw.error")),
                            "must not be empty".to_string(),
                        )),
                        _ => {}
                    }
                }
                if f.url.is_some() {
                    problems.push((at("url"), "only used by an http invoker".to_string()));
                }
                if f.timeout_seconds.is_some() {
                    problems.push((
                        at("timeout_seconds"),
                        "only used by an http or command invoker".to_string(),
                    ));
                }
                if !f.headers.is_empty() {
                    problems.push((at("headers"), "only used by an http invoker".to_string()));
                }
                reject_command_keys(f, &at, &mut problems);
            }
        }
    }
    problems
}

/// Checks `timeout_seconds` of an http or command binding.
fn check_timeout(
    f: &FunctionConfig,
    at: &dyn Fn(&str) -> String,
    problems: &mut Vec<(String, String)>,
) {
    if let Some(t) = f.timeout_seconds {
        if t.is_nan() || t <= 0.0 || Duration::try_from_secs_f64(t).is_err() {
            problems.push((
                at("timeout_seconds"),
                format!("must be a positive number of seconds (got {t})"),
            ));
        }
    }
}

/// Reports the keys of a command binding set on another kind of binding.
fn reject_command_keys(
    f: &FunctionConfig,
    at: &dyn Fn(&str) -> String,
    problems: &mut Vec<(String, String)>,
) {
    let set = [
        ("command", f.command.is_some()),
        ("args", !f.args.is_empty()),
        ("env", !f.env.is_empty()),
        ("working_dir", f.working_dir.is_some()),
    ];
    for (field, set) in set {
        if set {
            problems.push((at(field), "only used by a command invoker".to_string()));
        }
    }
}

/// Extracts the function name from a task target, so that one binding named `bookFlight`
/// answers for the function whatever region, account or qualifier a flow writes:
///
/// * Alibaba FC 2.0 `acs:fc:{region}:{uid}:services/{svc}[.{qualifier}]/functions/{fn}` → `fn`
/// * Alibaba FC 3.0 `acs:fc:{region}:{uid}:functions/{fn}[/{qualifier}]` → `fn`
/// * Huawei `urn:fss:{region}:{project}:function:{package}:{name}[:{version}]` → `name`
/// * anything else (a plain name, another ARN) → the whole string.
///
/// Region, account and project may be empty. Never allocates.
pub fn function_name(target: &str) -> &str {
    if let Some(rest) = target.strip_prefix("acs:fc:") {
        // {region}:{uid}:{resource}
        let mut it = rest.splitn(3, ':');
        if let (Some(_region), Some(_uid), Some(resource)) = (it.next(), it.next(), it.next()) {
            if let Some(r) = resource.strip_prefix("services/") {
                if let Some((svc, f)) = r.split_once("/functions/") {
                    if !svc.is_empty() && !svc.contains('/') && !f.is_empty() && !f.contains('/') {
                        return f;
                    }
                }
            } else if let Some(r) = resource.strip_prefix("functions/") {
                let (f, qualifier) = match r.split_once('/') {
                    Some((f, q)) => (f, Some(q)),
                    None => (r, None),
                };
                if !f.is_empty() && qualifier.is_none_or(|q| !q.is_empty() && !q.contains('/')) {
                    return f;
                }
            }
        }
    } else if let Some(rest) = target.strip_prefix("urn:fss:") {
        // {region}:{project}:function:{package}:{name}[:{version}]
        // Split without collecting (this runs for every task call): up to 6 parts fit.
        let mut parts = [""; 6];
        let mut n = 0;
        for part in crate::text::split_ascii(rest, b':') {
            if n == parts.len() {
                n += 1;
                break;
            }
            parts[n] = part;
            n += 1;
        }
        if (n == 5 || n == 6) && parts[2] == "function" && !parts[4].is_empty() {
            return parts[4];
        }
    }
    target
}

/// A `*` glob compiled once: the literal pieces between the stars. `*` matches any run of
/// characters (including none, `/` and `:`).
#[derive(Debug, Clone)]
struct Glob {
    parts: Vec<String>,
}

impl Glob {
    fn new(pattern: &str) -> Self {
        Glob {
            parts: pattern.split('*').map(str::to_string).collect(),
        }
    }

    fn matches(&self, s: &str) -> bool {
        let n = self.parts.len();
        if n == 1 {
            return s == self.parts[0];
        }
        let (first, last) = (&self.parts[0], &self.parts[n - 1]);
        if s.len() < first.len() + last.len()
            || !s.starts_with(first.as_str())
            || !s.ends_with(last.as_str())
        {
            return false;
        }
        // Leftmost matching of each middle piece is optimal for `*`-only globs.
        let mut rest = &s[first.len()..s.len() - last.len()];
        for mid in &self.parts[1..n - 1] {
            match rest.find(mid.as_str()) {
                Some(at) => rest = &rest[at + mid.len()..],
                None => return false,
            }
        }
        true
    }
}

/// A resolved binding: the function name, the extra target patterns, and the invoker that
/// calls the function. Built from a [`FunctionConfig`], or directly by tests through
/// [`FunctionRegistry::with`].
#[derive(Debug, Clone)]
pub struct FunctionBinding {
    /// The function name (or `*` glob) compared with the name extracted from a target.
    pub name: String,
    /// Exact targets or `*` globs compared with the whole target.
    pub patterns: Vec<String>,
    /// What calls the function.
    pub invoker: Arc<dyn Invoker>,
}

/// Maps task targets to bindings. Everything is precomputed at construction (hash maps of the
/// exact names and patterns, globs compiled once) because [`FunctionRegistry::resolve`] runs
/// for every task.
#[derive(Default)]
pub struct FunctionRegistry {
    bindings: Vec<FunctionBinding>,
    /// Hashed with ahash: SipHash showed up per task call (the keys are the operator's own
    /// configuration, not attacker-chosen).
    exact_patterns: HashMap<String, usize, ahash::RandomState>,
    glob_patterns: Vec<(Glob, usize)>,
    exact_names: HashMap<String, usize, ahash::RandomState>,
    glob_names: Vec<(Glob, usize)>,
    /// Built-in service targets (`HTTP:Request`, MNS), consulted when no binding matches.
    services: super::services::Services,
}

impl std::fmt::Debug for FunctionRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionRegistry")
            .field("bindings", &self.bindings)
            .finish()
    }
}

impl FunctionRegistry {
    /// A registry without bindings: every target is unresolved.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Builds the registry of the `[[functions]]` section: validates it (returning every
    /// problem, as [`validate`] does) and creates the invokers; HTTP bindings share one
    /// `reqwest::Client` (one connection pool).
    pub fn from_config(functions: &[FunctionConfig]) -> Result<Self, Vec<(String, String)>> {
        let problems = validate(functions);
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut client: Option<reqwest::Client> = None;
        let mut bindings = Vec::with_capacity(functions.len());
        let mut problems = Vec::new();
        for (i, f) in functions.iter().enumerate() {
            let invoker: Arc<dyn Invoker> = match f.invoker {
                InvokerKind::Mock => {
                    match MockInvoker::try_new(f.name.clone(), f.responses.clone()) {
                        Ok(m) => Arc::new(m),
                        Err(m) => {
                            problems.push((format!("functions[{i}].responses"), m));
                            continue;
                        }
                    }
                }
                InvokerKind::Command => {
                    let program = f.command.as_deref().unwrap_or_default();
                    let built = CommandInvoker::new(f.name.clone(), program).and_then(|c| {
                        let secs = f.timeout_seconds.unwrap_or(DEFAULT_COMMAND_TIMEOUT_SECONDS);
                        let mut c = c
                            .with_args(f.args.iter().cloned())?
                            .with_timeout(Duration::from_secs_f64(secs));
                        for (k, v) in &f.env {
                            c = c.with_env(k, v)?;
                        }
                        if let Some(d) = &f.working_dir {
                            c = c.with_working_dir(d);
                        }
                        Ok(c)
                    });
                    match built {
                        Ok(c) => Arc::new(c),
                        Err(m) => {
                            problems.push((format!("functions[{i}].command"), m));
                            continue;
                        }
                    }
                }
                InvokerKind::Http => {
                    let client = match &client {
                        Some(c) => c.clone(),
                        None => match reqwest::Client::builder().build() {
                            Ok(c) => client.insert(c).clone(),
                            Err(e) => {
                                problems.push((
                                    "functions".to_string(),
                                    format!("cannot create the HTTP client: {e}"),
                                ));
                                return Err(problems);
                            }
                        },
                    };
                    let url = f.url.as_deref().unwrap_or_default();
                    let built = HttpInvoker::new(f.name.clone(), url, client).and_then(|h| {
                        let secs = f.timeout_seconds.unwrap_or(DEFAULT_HTTP_TIMEOUT_SECONDS);
                        let mut h = h.with_timeout(Duration::from_secs_f64(secs));
                        for (k, v) in &f.headers {
                            h = h.with_header(k, v)?;
                        }
                        Ok(h)
                    });
                    match built {
                        Ok(h) => Arc::new(h),
                        Err(m) => {
                            problems.push((format!("functions[{i}].url"), m));
                            continue;
                        }
                    }
                }
            };
            bindings.push(FunctionBinding {
                name: f.name.clone(),
                patterns: f.matches.clone(),
                invoker,
            });
        }
        if problems.is_empty() {
            Ok(Self::with(bindings))
        } else {
            Err(problems)
        }
    }

    /// Builds a registry from ready-made bindings (config order = list order); for tests and
    /// embedders that bring their own invokers.
    pub fn with(bindings: Vec<FunctionBinding>) -> Self {
        let mut reg = Self::default();
        for (idx, b) in bindings.iter().enumerate() {
            for p in &b.patterns {
                if p.contains('*') {
                    reg.glob_patterns.push((Glob::new(p), idx));
                } else {
                    reg.exact_patterns.entry(p.clone()).or_insert(idx);
                }
            }
            if b.name.contains('*') {
                reg.glob_names.push((Glob::new(&b.name), idx));
            } else {
                reg.exact_names.entry(b.name.clone()).or_insert(idx);
            }
        }
        reg.bindings = bindings;
        reg
    }

    /// Finds the binding for a task target. Precedence, first hit wins:
    /// 1. a binding with a `matches` entry equal to the whole target;
    /// 2. a binding with a `matches` glob matching the whole target (first in config order);
    /// 3. a binding whose `name` equals the function name extracted by [`function_name`];
    /// 4. a binding whose `name` is a glob matching that function name (first in config order);
    /// 5. a built-in service target: `HTTP:Request`, `MNS:SendMessage` or an MNS queue/topic
    ///    ARN (see [`super::services`]), so a binding always wins over a built-in.
    ///
    /// `None` when nothing matches (the engine reports the task's function as not found).
    pub fn resolve(&self, resource: &str) -> Option<&FunctionBinding> {
        if let Some(&i) = self.exact_patterns.get(resource) {
            return Some(&self.bindings[i]);
        }
        if let Some((_, i)) = self.glob_patterns.iter().find(|(g, _)| g.matches(resource)) {
            return Some(&self.bindings[*i]);
        }
        let name = function_name(resource);
        if let Some(&i) = self.exact_names.get(name) {
            return Some(&self.bindings[i]);
        }
        self.glob_names
            .iter()
            .find(|(g, _)| g.matches(name))
            .map(|(_, i)| &self.bindings[*i])
            .or_else(|| self.services.resolve(resource))
    }

    /// The outbox of the built-in MNS target: messages sent by MNS tasks that no binding
    /// matched (see [`super::services`]).
    pub fn outbox(&self) -> &Arc<super::services::Outbox> {
        self.services.outbox()
    }

    /// The bindings in config order, e.g. to list them in diagnostics.
    pub fn bindings(&self) -> &[FunctionBinding] {
        &self.bindings
    }

    /// How many bindings there are.
    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    /// Whether there are no bindings at all.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_function_names() {
        assert_eq!(
            function_name("acs:fc:::services/trip/functions/bookFlight"),
            "bookFlight"
        );
        assert_eq!(
            function_name("acs:fc:cn-hangzhou:123:services/trip.LATEST/functions/bookFlight"),
            "bookFlight"
        );
        assert_eq!(
            function_name("acs:fc:cn-hangzhou:123456789:functions/myfn/LATEST"),
            "myfn"
        );
        assert_eq!(function_name("acs:fc:::functions/myfn"), "myfn");
        assert_eq!(
            function_name("urn:fss:cn-north-4:p:function:default:validate:latest"),
            "validate"
        );
        assert_eq!(
            function_name("urn:fss:::function:default:validate"),
            "validate"
        );
        assert_eq!(function_name("plain"), "plain");
        assert_eq!(
            function_name("acs:fc:::functions/a/b/c"),
            "acs:fc:::functions/a/b/c"
        );
        assert_eq!(function_name("acs:fnf:::flow/sub"), "acs:fnf:::flow/sub");
        // MNS targets are not functions: bind them by the whole ARN (`matches` or `name`).
        assert_eq!(
            function_name("acs:mns:::/queues/orders/messages"),
            "acs:mns:::/queues/orders/messages"
        );
        assert_eq!(
            function_name("urn:fss:r:p:workflow:default:wf:latest"),
            "urn:fss:r:p:workflow:default:wf:latest"
        );
        assert_eq!(
            function_name("urn:fss:r:p:function:default:f:latest:extra"),
            "urn:fss:r:p:function:default:f:latest:extra"
        );
        assert_eq!(
            function_name("urn:fss:r:p:function:d"),
            "urn:fss:r:p:function:d"
        );
    }

    #[test]
    fn globs_match() {
        let g = Glob::new("acs:fc:*:*:services/demo/functions/*");
        assert!(g.matches("acs:fc:::services/demo/functions/f"));
        assert!(g.matches("acs:fc:cn:1:services/demo/functions/f"));
        assert!(!g.matches("acs:fc:::services/other/functions/f"));
        assert!(Glob::new("a*a").matches("aa"));
        assert!(!Glob::new("a*a").matches("a"));
        assert!(Glob::new("*").matches(""));
        assert!(Glob::new("x*y*z").matches("x__y__z"));
        assert!(!Glob::new("x*y*z").matches("x__z__y"));
    }

    #[test]
    fn checks_patterns() {
        assert!(check_pattern("a*b").is_ok());
        assert!(check_pattern("").is_err());
        assert!(check_pattern("a**").is_err());
        assert!(check_pattern("a?").is_err());
        assert!(check_pattern(" a").is_err());
    }
}
