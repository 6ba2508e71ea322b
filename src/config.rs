//! The gateway's configuration: what it listens on, which credentials it accepts, engine
//! limits, function bindings, the flows deployed at start, and logging.
//!
//! Values are layered with [figment], later layers winning key by key:
//!
//! 1. built-in defaults ([`Config::default()`]);
//! 2. a TOML file: an explicit `--config PATH` (which must exist), otherwise
//!    [`DEFAULT_CONFIG_FILE`] when it exists in the working directory;
//! 3. environment variables prefixed [`ENV_PREFIX`] with `__` between nesting levels:
//!    `FLOWGATE_LISTEN=127.0.0.1:9000`, `FLOWGATE_ENGINE__TIME_SCALE=0`,
//!    `FLOWGATE_AUTH__MODE=off`. `FLOWGATE_CONFIG` and `FLOWGATE_LOG` are not configuration
//!    keys (they are left to the command line: a config path and a tracing filter).
//!
//! Lists (`[[credentials]]`, `[[functions]]`) are replaced as a whole by a later layer, never
//! concatenated. Unknown keys are errors everywhere, so a typo never silently keeps a default.
//! [`Config::load`] reports every validation problem at once, each with its field path.
//! `docs/configuration.md` is the user reference; `config/flowgate.toml` documents every key
//! with its default value (a test keeps it equal to [`Config::default()`]).

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Deserializer, Serialize};

use crate::engine::EngineConfig;
use crate::invoke::binding::FunctionConfig;

/// The configuration file read when no path is given (relative to the working directory).
/// It is optional: without it the built-in defaults apply.
pub const DEFAULT_CONFIG_FILE: &str = "config/flowgate.toml";

/// Prefix of the environment variables that override configuration keys.
pub const ENV_PREFIX: &str = "FLOWGATE_";

/// Default listen address: loopback only, so a development gateway with the well-known
/// development credentials is never reachable from the network unless asked for.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Default flows directory. Unlike an explicitly configured directory, it may be missing.
pub const DEFAULT_FLOWS_DIR: &str = "config/flows";

/// Default Alibaba namespace of the flows deployed from the flows directory.
pub const DEFAULT_ALIBABA_NAMESPACE: &str = "alibaba";

/// Default Huawei project id (32 hex digits, like a real one) of the flows deployed from the
/// flows directory; it is the `{project_id}` of the `/v2/{project_id}/fgs/...` routes.
pub const DEFAULT_HUAWEI_PROJECT: &str = "0123456789abcdef0123456789abcdef";
/// Default Huawei region (`flows.huawei_region`).
pub const DEFAULT_HUAWEI_REGION: &str = "cn-north-4";

/// Access key id of the development credential pair shipped in the default configuration:
/// the one the official SDK captures in the shared test vectors use.
pub const DEV_ACCESS_KEY_ID: &str = "testAccessKeyId";

/// Secret of the development credential pair (see [`DEV_ACCESS_KEY_ID`]). Public knowledge:
/// replace it before exposing the gateway beyond loopback.
pub const DEV_ACCESS_KEY_SECRET: &str = "testAccessKeySecret";

/// The accepted values of `log.level`.
pub const LOG_LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];

/// The accepted values of `log.format`.
pub const LOG_FORMATS: [&str; 2] = ["text", "json"];

/// Environment keys (after the prefix) that are not configuration keys: `FLOWGATE_CONFIG`
/// (a config file path for the command line) and `FLOWGATE_LOG` (a tracing filter directive).
const ENV_RESERVED: [&str; 2] = ["config", "log"];

/// The whole configuration. Key names are a public contract (files and environment variables
/// in the wild use them): rename nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The socket address (IP and port) the single listener binds; every dialect shares it.
    /// Defaults to [`DEFAULT_LISTEN`], loopback only.
    pub listen: String,
    /// Request signature checking (`[auth]`).
    pub auth: AuthConfig,
    /// The access key pairs requests may be signed with (`[[credentials]]`), shared by every
    /// dialect. Defaults to the one development pair ([`DEV_ACCESS_KEY_ID`]).
    pub credentials: Vec<Credential>,
    /// Engine tunables and limits (`[engine]`).
    pub engine: EngineConfig,
    /// Where executions and flows are kept (`[store]`).
    pub store: StoreConfig,
    /// Function bindings (`[[functions]]`): how Task states reach functions.
    pub functions: Vec<FunctionConfig>,
    /// Flows deployed at start and the namespaces they land in (`[flows]`).
    pub flows: FlowsConfig,
    /// Logging (`[log]`).
    pub log: LogConfig,
    /// API rate limits (`[[rate_limits]]`), none by default: token buckets per dialect and
    /// action; a tripped one answers the dialect's throttling error.
    #[serde(default)]
    pub rate_limits: Vec<crate::ratelimit::RateLimitConfig>,
    /// A mock file of test cases (JSON or YAML, docs/functions.md "Mock test cases"); an
    /// execution whose input has `flowgate_test_case` answers its tasks from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN.to_string(),
            auth: AuthConfig::default(),
            credentials: vec![Credential {
                access_key_id: DEV_ACCESS_KEY_ID.to_string(),
                secret: DEV_ACCESS_KEY_SECRET.to_string(),
            }],
            engine: EngineConfig::default(),
            store: StoreConfig::default(),
            functions: Vec::new(),
            flows: FlowsConfig::default(),
            log: LogConfig::default(),
            rate_limits: Vec::new(),
            mock_file: None,
        }
    }
}

/// Whether request signatures are checked (`auth.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Every request must carry a valid signature by one of `[[credentials]]`, as on the clouds.
    #[default]
    Verify,
    /// Signatures are not checked (any or no signature is accepted): for quick local experiments.
    Off,
}

/// Request authentication settings (`[auth]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `verify` (default) checks signatures like the clouds do; `off` accepts any request.
    pub mode: AuthMode,
    /// How far a request's timestamp may be from the gateway's clock, in seconds, before it
    /// is rejected as expired (the clouds allow 15 minutes). Must be > 0.
    pub clock_skew_seconds: u64,
    /// How long a signature nonce is remembered, in seconds, to reject replayed requests.
    pub nonce_window_seconds: u64,
    /// Most signature nonces the replay cache remembers (Alibaba). When more signed requests
    /// arrive within the window, the nonces of the oldest request times are forgotten and
    /// requests that old are refused (`RequestTimeTooSkewed`), so replay protection stays
    /// exact and memory bounded (~16 bytes a nonce). Must be > 0.
    pub nonce_cache_capacity: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Verify,
            clock_skew_seconds: 900,
            nonce_window_seconds: 900,
            nonce_cache_capacity: crate::dialects::alibaba::signature::DEFAULT_NONCE_CAPACITY,
        }
    }
}

/// One access key pair (`[[credentials]]`): a request signed with `secret` under
/// `access_key_id` is accepted by every dialect. `Debug` hides the secret so that
/// configurations can be logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    /// The public key id the client sends (Alibaba `AccessKeyId`, Huawei `Access` in the
    /// `Authorization` header).
    pub access_key_id: String,
    /// The signing secret shared with the client.
    pub secret: String,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("access_key_id", &self.access_key_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The kinds of store (`store.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// One SQLite database file (WAL, batched commits): survives restarts and `kill -9`;
    /// running executions resume at start-up. The default.
    #[default]
    Sqlite,
    /// Everything in memory, lost on exit, with bounded retention (see `[engine]`): for tests.
    Memory,
    /// A PostgreSQL database shared by several `flowgate serve` nodes (`store.url`).
    Postgres,
}

/// Where Express executions are kept (`store.express`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpressPlacement {
    /// In memory with bounded retention, as the clouds keep no history for them: a durable
    /// store is not slowed down by them, and they are lost on restart.
    #[default]
    Memory,
    /// In the configured store, like Standard executions.
    Store,
}

/// How hard an SQLite commit waits for the disk (`store.synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// A commit survives a crash of the process (`kill -9`); a power loss may roll back the
    /// last commits.
    #[default]
    Normal,
    /// A commit survives a power loss too (one `fsync` per batch of commits).
    Full,
}

/// The SQLite database file used when `store.path` is unset.
pub const DEFAULT_SQLITE_PATH: &str = "flowgate-data/flowgate.db";

/// Persistence settings (`[store]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Which store keeps flows and executions (default `sqlite`).
    pub kind: StoreKind,
    /// The SQLite database file (default [`DEFAULT_SQLITE_PATH`], relative to the working
    /// directory; its directory is created). Rejected with the other kinds, which would not
    /// use it.
    #[serde(
        deserialize_with = "empty_path_is_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub path: Option<PathBuf>,
    /// SQLite commit durability (`normal` or `full`).
    pub synchronous: SyncMode,
    /// The PostgreSQL connection URL (`postgres://user:password@host:port/database`),
    /// required with `kind = "postgres"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Where Express executions are kept (`memory` or `store`).
    pub express: ExpressPlacement,
    /// This node's name in a shared store (default: host name, process id and a random
    /// suffix, new at each start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
    /// How long a node's claim on a running execution lasts without renewal (PostgreSQL):
    /// after a node dies, another resumes its executions within this many seconds.
    pub lease_seconds: f64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: StoreKind::default(),
            path: None,
            synchronous: SyncMode::default(),
            url: None,
            express: ExpressPlacement::default(),
            node_id: None,
            lease_seconds: 15.0,
        }
    }
}

impl StoreConfig {
    /// The SQLite file this configuration uses.
    pub fn sqlite_path(&self) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SQLITE_PATH))
    }

    /// The store for tests and benchmarks: memory, nothing on disk.
    pub fn memory() -> Self {
        StoreConfig {
            kind: StoreKind::Memory,
            ..StoreConfig::default()
        }
    }
}

impl StoreConfig {
    /// Every problem of the `[store]` section, with its field.
    fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let kind = match self.kind {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Memory => "memory",
            StoreKind::Postgres => "postgres",
        };
        if let (StoreKind::Memory | StoreKind::Postgres, Some(p)) = (self.kind, &self.path) {
            out.push(Problem::new(
                "store.path",
                format!(
                    "not used by the {kind} store, only by sqlite (got {:?}); remove it",
                    p.display().to_string()
                ),
            ));
        }
        match (self.kind, &self.url) {
            (StoreKind::Postgres, None) => out.push(Problem::new(
                "store.url",
                "required with kind = \"postgres\" (postgres://user:password@host:port/database)",
            )),
            (StoreKind::Postgres, Some(u))
                if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) =>
            {
                out.push(Problem::new(
                    "store.url",
                    format!("{u:?} is not a postgres:// or postgresql:// URL"),
                ))
            }
            (StoreKind::Sqlite | StoreKind::Memory, Some(_)) => out.push(Problem::new(
                "store.url",
                format!("not used by the {kind} store, only by postgres; remove it"),
            )),
            (StoreKind::Postgres, Some(_)) | (StoreKind::Sqlite | StoreKind::Memory, None) => {}
        }
        if !(self.lease_seconds.is_finite() && self.lease_seconds >= 1.0) {
            out.push(Problem::new(
                "store.lease_seconds",
                format!("must be at least 1 second (got {})", self.lease_seconds),
            ));
        }
        if let Some(n) = &self.node_id {
            if n.is_empty() || n.len() > 200 {
                out.push(Problem::new("store.node_id", "must be 1 to 200 characters"));
            }
        }
        out
    }
}

/// Flows deployed at start-up and the namespaces they are deployed into (`[flows]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowsConfig {
    /// The directory whose definition files are compiled and deployed at start (relative
    /// paths are relative to the working directory). Defaults to [`DEFAULT_FLOWS_DIR`], which
    /// may be missing; any other directory must exist. An empty string (`dir = ""`) deploys
    /// nothing.
    #[serde(
        deserialize_with = "empty_path_is_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub dir: Option<PathBuf>,
    /// The Alibaba namespace the directory's Alibaba flows are deployed into.
    pub alibaba_namespace: String,
    /// The Huawei project id the directory's Huawei flows are deployed under (the
    /// `{project_id}` clients put in `/v2/{project_id}/fgs/...`).
    pub huawei_project: String,
    /// The Huawei region flowgate answers as: it appears in workflow URNs
    /// (`urn:fss:{region}:{project}:workflow:...`) and in the IAM project lookup.
    pub huawei_region: String,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        FlowsConfig {
            dir: Some(PathBuf::from(DEFAULT_FLOWS_DIR)),
            alibaba_namespace: DEFAULT_ALIBABA_NAMESPACE.to_string(),
            huawei_project: DEFAULT_HUAWEI_PROJECT.to_string(),
            huawei_region: DEFAULT_HUAWEI_REGION.to_string(),
        }
    }
}

/// Logging settings (`[log]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// The most verbose level logged: one of [`LOG_LEVELS`] (default `info`). The
    /// `FLOWGATE_LOG` environment variable, a full tracing filter, takes precedence.
    pub level: String,
    /// `text` (default, human-readable lines) or `json` (one object per line, for collectors).
    pub format: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_string(),
            format: "text".to_string(),
        }
    }
}

/// Reads a path where an empty string means "none", so that TOML (which has no null) and the
/// environment can unset a path whose default is set.
fn empty_path_is_none<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    Ok(Option::<PathBuf>::deserialize(d)?.filter(|p| !p.as_os_str().is_empty()))
}

/// The environment layer: figment's [`Env`] with `__` as the nesting separator and the
/// reserved names skipped, whose errors name the variable to fix
/// (`for key "FLOWGATE_ENGINE__TIME_SCALE"`) rather than figment's `ENGINE.TIME_SCALE`.
struct PrefixedEnv {
    env: Env,
    prefix: String,
}

impl PrefixedEnv {
    fn new(prefix: &str) -> Self {
        PrefixedEnv {
            env: Env::prefixed(prefix).split("__").ignore(&ENV_RESERVED),
            prefix: prefix.to_ascii_uppercase(),
        }
    }
}

impl Provider for PrefixedEnv {
    fn metadata(&self) -> Metadata {
        let prefix = self.prefix.clone();
        Metadata::named(format!("environment variable(s) {prefix}*")).interpolater(
            move |_: &Profile, keys: &[&str]| {
                let path: Vec<String> = keys.iter().map(|k| k.to_ascii_uppercase()).collect();
                format!("{prefix}{}", path.join("__"))
            },
        )
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.env.data()
    }
}

/// One thing wrong with a configuration: the key's path (`credentials[1].secret`,
/// `functions[0].url`) and what is wrong with it. Displays as `field: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The path of the offending key, as written in the file (`engine.time_scale`).
    pub field: String,
    /// What is wrong and, where it helps, what is expected.
    pub message: String,
}

impl Problem {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<(String, String)> for Problem {
    fn from((field, message): (String, String)) -> Self {
        Problem { field, message }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file given explicitly does not exist.
    #[error("configuration file {} does not exist", .0.display())]
    Missing(PathBuf),
    /// A layer could not be read or a value has the wrong type or an unknown key. The message
    /// is figment's: it names the key and the layer (file or environment) it came from.
    #[error("invalid configuration: {0}")]
    Parse(String),
    /// The values were read but some are invalid: every problem, one per line.
    #[error("{}", problems_text(.0))]
    Invalid(Vec<Problem>),
}

fn problems_text(problems: &[Problem]) -> String {
    let n = problems.len();
    let mut out = format!(
        "invalid configuration ({n} problem{}):",
        if n == 1 { "" } else { "s" }
    );
    for p in problems {
        out.push_str("\n  ");
        out.push_str(&p.to_string());
    }
    out
}

impl Config {
    /// Loads the configuration: defaults, then the file (`path`, which must exist, or
    /// [`DEFAULT_CONFIG_FILE`] if present), then `FLOWGATE_*` environment variables; then
    /// validates it, reporting every problem at once.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        Self::from_figment(Self::figment(path)?)
    }

    /// Extracts and validates a configuration from any figment (the layers of
    /// [`Config::figment`], or a test's own). Type errors become [`ConfigError::Parse`];
    /// invalid values become [`ConfigError::Invalid`] listing every problem.
    pub fn from_figment(f: Figment) -> Result<Config, ConfigError> {
        let config: Config = f.extract().map_err(|e| ConfigError::Parse(e.to_string()))?;
        let problems = config.validate();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// The layers [`Config::load`] reads, with the [`ENV_PREFIX`] environment variables on
    /// top; fails only when an explicit `path` does not exist (nothing is read yet).
    pub fn figment(path: Option<&Path>) -> Result<Figment, ConfigError> {
        Self::figment_with_env_prefix(path, ENV_PREFIX)
    }

    /// [`Config::figment`] with another environment prefix (e.g. `MYAPP_`, with `__` still
    /// the nesting separator): for embedders, and for tests that must not see or disturb
    /// each other's variables.
    pub fn figment_with_env_prefix(
        path: Option<&Path>,
        prefix: &str,
    ) -> Result<Figment, ConfigError> {
        let mut f = Figment::from(Serialized::defaults(Config::default()));
        match path {
            Some(p) => {
                if !p.exists() {
                    return Err(ConfigError::Missing(p.to_path_buf()));
                }
                f = f.merge(Toml::file_exact(p));
            }
            None => {
                // `file_exact`: figment's `file` would also search parent directories.
                let default = Path::new(DEFAULT_CONFIG_FILE);
                if default.is_file() {
                    f = f.merge(Toml::file_exact(default));
                }
            }
        }
        Ok(f.merge(PrefixedEnv::new(prefix)))
    }

    /// Every problem with this configuration, each with its field path; empty when valid.
    pub fn validate(&self) -> Vec<Problem> {
        let mut out = Vec::new();

        if let Err(e) = self.listen.parse::<SocketAddr>() {
            out.push(Problem::new(
                "listen",
                format!(
                    "must be an IP address and port such as 127.0.0.1:8080 (got {:?}: {e})",
                    self.listen
                ),
            ));
        }

        // Credentials.
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, c) in self.credentials.iter().enumerate() {
            let at = |k: &str| format!("credentials[{i}].{k}");
            if c.access_key_id.is_empty() {
                out.push(Problem::new(at("access_key_id"), "must not be empty"));
            } else if c.access_key_id.trim() != c.access_key_id {
                out.push(Problem::new(
                    at("access_key_id"),
                    "must not start or end with whitespace",
                ));
            } else if let Some(first) = seen.get(c.access_key_id.as_str()) {
                out.push(Problem::new(
                    at("access_key_id"),
                    format!(
                        "duplicate access key id {:?} (first defined by credentials[{first}])",
                        c.access_key_id
                    ),
                ));
            } else {
                seen.insert(&c.access_key_id, i);
            }
            if c.secret.is_empty() {
                out.push(Problem::new(at("secret"), "must not be empty"));
            }
        }

        // Auth.
        if self.auth.mode == AuthMode::Verify && self.credentials.is_empty() {
            out.push(Problem::new(
                "credentials",
                "auth.mode = \"verify\" needs at least one [[credentials]] entry (or set auth.mode = \"off\")",
            ));
        }
        if self.auth.clock_skew_seconds == 0 {
            out.push(Problem::new("auth.clock_skew_seconds", "must be > 0"));
        }
        if self.auth.nonce_cache_capacity == 0 {
            out.push(Problem::new("auth.nonce_cache_capacity", "must be > 0"));
        }

        // Engine and functions: their own modules know their rules.
        out.extend(self.engine.problems().into_iter().map(Problem::from));
        out.extend(
            crate::invoke::binding::validate(&self.functions)
                .into_iter()
                .map(Problem::from),
        );
        out.extend(
            crate::ratelimit::validate(&self.rate_limits)
                .into_iter()
                .map(Problem::from),
        );
        if let Some(p) = &self.mock_file {
            if !p.is_file() {
                out.push(Problem::new(
                    "mock_file",
                    format!("{} is not a readable file", p.display()),
                ));
            }
        }

        // Store.
        out.extend(self.store.problems());

        // Flows.
        if let Some(dir) = &self.flows.dir {
            let is_default = dir == Path::new(DEFAULT_FLOWS_DIR);
            if dir.exists() {
                if !dir.is_dir() {
                    out.push(Problem::new(
                        "flows.dir",
                        format!("{} is not a directory", dir.display()),
                    ));
                }
            } else if !is_default {
                out.push(Problem::new(
                    "flows.dir",
                    format!(
                        "directory {} does not exist (set dir = \"\" to deploy no flows)",
                        dir.display()
                    ),
                ));
            }
        }
        if self.flows.alibaba_namespace.trim().is_empty() {
            out.push(Problem::new("flows.alibaba_namespace", "must not be empty"));
        }
        if self.flows.huawei_region.trim().is_empty() {
            out.push(Problem::new("flows.huawei_region", "must not be empty"));
        }
        let project = &self.flows.huawei_project;
        if project.is_empty() {
            out.push(Problem::new("flows.huawei_project", "must not be empty"));
        } else if project.contains(|c: char| c == '/' || c.is_whitespace()) {
            out.push(Problem::new(
                "flows.huawei_project",
                format!("must not contain `/` or whitespace: it is a URL path segment (got {project:?})"),
            ));
        }

        // Log.
        if !LOG_LEVELS.contains(&self.log.level.as_str()) {
            out.push(Problem::new(
                "log.level",
                format!(
                    "must be one of {} (got {:?})",
                    LOG_LEVELS.join(", "),
                    self.log.level
                ),
            ));
        }
        if !LOG_FORMATS.contains(&self.log.format.as_str()) {
            out.push(Problem::new(
                "log.format",
                format!(
                    "must be one of {} (got {:?})",
                    LOG_FORMATS.join(", "),
                    self.log.format
                ),
            ));
        }

        out
    }

    /// The `listen` address as a socket address.
    pub fn listen_addr(&self) -> Result<SocketAddr, std::net::AddrParseError> {
        self.listen.parse()
    }

    /// The secret of a configured access key id, if any; what signature verifiers call.
    pub fn secret_for(&self, access_key_id: &str) -> Option<&str> {
        self.credentials
            .iter()
            .find(|c| c.access_key_id == access_key_id)
            .map(|c| c.secret.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(Config::default().validate(), Vec::<Problem>::new());
    }

    #[test]
    fn credential_debug_hides_the_secret() {
        let c = Config::default();
        let s = format!("{c:?}");
        assert!(s.contains(DEV_ACCESS_KEY_ID));
        assert!(!s.contains(DEV_ACCESS_KEY_SECRET));
    }
}
