//! Configuration loading: layering (defaults < file < environment), errors that name the
//! offending key, validation that reports every problem at once, and the shipped
//! `config/flowgate.toml` staying equal to the built-in defaults.
//!
//! Environment variables are process-wide and tests run in parallel, so each test that sets
//! variables uses its own prefix (`FGTEST_<NAME>_`) through `Config::figment_with_env_prefix`.
//! The prefixes deliberately do not start with `FLOWGATE_`: a `FLOWGATE_T1_...` variable
//! would be an unknown key for every figment built with the real prefix.

use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml};
use flowgate::config::{
    AuthMode, Config, ConfigError, Credential, Problem, StoreKind, DEFAULT_CONFIG_FILE,
    DEV_ACCESS_KEY_ID, DEV_ACCESS_KEY_SECRET,
};

/// Writes `text` as a TOML file in a fresh temporary directory (kept alive by the guard).
fn toml_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("flowgate.toml");
    std::fs::write(&path, text).expect("write config");
    (dir, path)
}

/// Loads `path` with a prefix no test sets, so the result does not depend on the environment.
fn load_isolated(path: &Path) -> Result<Config, ConfigError> {
    Config::from_figment(Config::figment_with_env_prefix(
        Some(path),
        "FGTEST_NOTHING_SET_",
    )?)
}

fn problems_of(r: Result<Config, ConfigError>) -> Vec<Problem> {
    match r {
        Err(ConfigError::Invalid(p)) => p,
        other => panic!("expected ConfigError::Invalid, got {other:?}"),
    }
}

fn parse_message(r: Result<Config, ConfigError>) -> String {
    match r {
        Err(ConfigError::Parse(m)) => m,
        other => panic!("expected ConfigError::Parse, got {other:?}"),
    }
}

#[test]
fn shipped_file_equals_the_defaults() {
    let path = Path::new(DEFAULT_CONFIG_FILE);
    let loaded = load_isolated(path).expect("config/flowgate.toml loads");
    assert_eq!(
        loaded,
        Config::default(),
        "config/flowgate.toml must document exactly the defaults"
    );

    // Also through the real entry point, unless the machine running the tests sets FLOWGATE_*.
    if !std::env::vars_os().any(|(k, _)| {
        k.to_string_lossy()
            .to_ascii_uppercase()
            .starts_with("FLOWGATE_")
    }) {
        assert_eq!(
            Config::load(Some(path)).expect("Config::load"),
            Config::default()
        );
    }
}

#[test]
fn shipped_file_sets_every_key_explicitly() {
    // Every section of the defaults appears in the file, so it really documents them.
    let text = std::fs::read_to_string(DEFAULT_CONFIG_FILE).unwrap();
    let file: figment::value::Dict = figment::Figment::from(Toml::string(&text))
        .extract()
        .unwrap();
    for key in [
        "listen",
        "auth",
        "credentials",
        "engine",
        "store",
        "flows",
        "log",
    ] {
        assert!(
            file.contains_key(key),
            "config/flowgate.toml does not set `{key}`"
        );
    }
    let engine = file["engine"].as_dict().unwrap();
    let defaults =
        figment::Figment::from(figment::providers::Serialized::defaults(Config::default()));
    let default_engine: figment::value::Dict = defaults.extract_inner("engine").unwrap();
    for key in default_engine.keys() {
        assert!(
            engine.contains_key(key),
            "config/flowgate.toml does not set `engine.{key}`"
        );
    }
    for (section, keys) in [
        (
            "auth",
            &[
                "mode",
                "clock_skew_seconds",
                "nonce_window_seconds",
                "nonce_cache_capacity",
            ][..],
        ),
        ("flows", &["dir", "alibaba_namespace", "huawei_project"][..]),
        ("log", &["level", "format"][..]),
        (
            "store",
            &["kind", "synchronous", "express", "lease_seconds"][..],
        ),
    ] {
        let d = file[section].as_dict().unwrap();
        for k in keys {
            assert!(
                d.contains_key(*k),
                "config/flowgate.toml does not set `{section}.{k}`"
            );
        }
    }
}

#[test]
fn shipped_function_examples_are_valid_when_uncommented() {
    let text = std::fs::read_to_string(DEFAULT_CONFIG_FILE).unwrap();
    let block: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("# ---- example"))
        .skip(1)
        .take_while(|l| !l.starts_with("# ---- end of example"))
        .map(|l| {
            l.strip_prefix("# ")
                .or_else(|| l.strip_prefix('#'))
                .unwrap_or(l)
        })
        .collect();
    assert!(
        block.len() > 5,
        "the commented [[functions]] example is missing"
    );
    let figment = Config::figment_with_env_prefix(
        Some(Path::new(DEFAULT_CONFIG_FILE)),
        "FGTEST_NOTHING_SET_",
    )
    .unwrap()
    .merge(Toml::string(&block.join("\n")));
    let config =
        Config::from_figment(figment).expect("the uncommented example is a valid configuration");
    let names: Vec<&str> = config.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["bookFlight", "validate"]);
    assert_eq!(config.functions[0].responses.len(), 2);
    assert_eq!(
        config.functions[1].url.as_deref(),
        Some("http://127.0.0.1:9001/validate")
    );
}

#[test]
fn defaults_ship_one_development_credential() {
    let c = Config::default();
    assert_eq!(c.listen, "127.0.0.1:8080");
    assert!(c.listen_addr().unwrap().ip().is_loopback());
    assert_eq!(c.auth.mode, AuthMode::Verify);
    assert_eq!(c.credentials.len(), 1);
    assert_eq!(c.secret_for(DEV_ACCESS_KEY_ID), Some(DEV_ACCESS_KEY_SECRET));
    assert_eq!(
        (DEV_ACCESS_KEY_ID, DEV_ACCESS_KEY_SECRET),
        ("testAccessKeyId", "testAccessKeySecret")
    );
    assert_eq!(c.secret_for("someoneElse"), None);
    assert_eq!(c.store.kind, StoreKind::Sqlite, "durable by default");
    assert_eq!(
        c.store.sqlite_path(),
        Path::new(flowgate::config::DEFAULT_SQLITE_PATH)
    );
    assert_eq!(c.store.lease_seconds, 15.0);
    assert_eq!(c.flows.dir.as_deref(), Some(Path::new("config/flows")));
    assert_eq!(c.flows.alibaba_namespace, "alibaba");
    assert_eq!(c.flows.huawei_project, "0123456789abcdef0123456789abcdef");
    assert_eq!(
        (c.log.level.as_str(), c.log.format.as_str()),
        ("info", "text")
    );
    assert_eq!(
        (c.auth.clock_skew_seconds, c.auth.nonce_window_seconds),
        (900, 900)
    );
    assert_eq!(c.auth.nonce_cache_capacity, 262_144);
    assert!(c.functions.is_empty());
    assert_eq!(c.validate(), Vec::<Problem>::new());
}

#[test]
fn layers_defaults_then_file_then_environment() {
    let (_d, path) = toml_file(
        r#"
listen = "127.0.0.1:9100"
[engine]
time_scale = 0.5
max_history_events = 99
[log]
level = "debug"
"#,
    );
    std::env::set_var("FGTEST_LAYER_LISTEN", "127.0.0.1:9200");
    std::env::set_var("FGTEST_LAYER_ENGINE__TIME_SCALE", "0");
    let c = Config::from_figment(
        Config::figment_with_env_prefix(Some(&path), "FGTEST_LAYER_").unwrap(),
    )
    .unwrap();
    assert_eq!(c.listen, "127.0.0.1:9200", "environment beats file");
    assert_eq!(c.listen_addr().unwrap().port(), 9200);
    assert_eq!(
        c.engine.time_scale, 0.0,
        "environment beats file for a nested key"
    );
    assert_eq!(c.engine.max_history_events, 99, "file beats defaults");
    assert_eq!(c.log.level, "debug", "file beats defaults");
    assert_eq!(c.log.format, "text", "untouched keys keep their defaults");
    assert_eq!(
        c.engine.default_map_concurrency, 40,
        "untouched keys in a touched section keep their defaults"
    );
    assert_eq!(c.secret_for(DEV_ACCESS_KEY_ID), Some(DEV_ACCESS_KEY_SECRET));
}

#[test]
fn environment_overrides_a_nested_key() {
    std::env::set_var("FGTEST_NESTED_ENGINE__TIME_SCALE", "0");
    std::env::set_var(
        "FGTEST_NESTED_FLOWS__HUAWEI_PROJECT",
        "fedcba9876543210fedcba9876543210",
    );
    let f = Config::figment_with_env_prefix(Some(Path::new(DEFAULT_CONFIG_FILE)), "FGTEST_NESTED_")
        .unwrap();
    let c = Config::from_figment(f).unwrap();
    assert_eq!(c.engine.time_scale, 0.0);
    assert_eq!(c.flows.huawei_project, "fedcba9876543210fedcba9876543210");
    assert_eq!(c.engine.express_timeout_seconds, 300.0);
}

#[test]
fn auth_off_needs_no_credentials() {
    let (_d, path) = toml_file("credentials = []\n");
    // With verification on, an empty credential list is a problem...
    let problems = problems_of(load_isolated(&path));
    assert!(
        problems.iter().any(|p| p.field == "credentials"),
        "{problems:?}"
    );
    // ...but not with auth off (set here through the environment).
    std::env::set_var("FGTEST_AUTHOFF_AUTH__MODE", "off");
    let c = Config::from_figment(
        Config::figment_with_env_prefix(Some(&path), "FGTEST_AUTHOFF_").unwrap(),
    )
    .unwrap();
    assert_eq!(c.auth.mode, AuthMode::Off);
    assert!(c.credentials.is_empty());
    assert_eq!(c.secret_for(DEV_ACCESS_KEY_ID), None);
}

#[test]
fn a_file_list_replaces_the_default_list() {
    let (_d, path) = toml_file(
        r#"
[[credentials]]
access_key_id = "ak1"
secret = "s1"

[[credentials]]
access_key_id = "ak2"
secret = "s2"
"#,
    );
    let c = load_isolated(&path).unwrap();
    assert_eq!(
        c.credentials,
        vec![
            Credential {
                access_key_id: "ak1".into(),
                secret: "s1".into()
            },
            Credential {
                access_key_id: "ak2".into(),
                secret: "s2".into()
            },
        ]
    );
    assert_eq!(c.secret_for("ak2"), Some("s2"));
    assert_eq!(
        c.secret_for(DEV_ACCESS_KEY_ID),
        None,
        "the development pair is replaced, not kept"
    );
    assert!(
        !format!("{c:?}").contains("s2\""),
        "Debug must not print secrets"
    );
}

#[test]
fn explicit_missing_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    match Config::load(Some(&missing)) {
        Err(ConfigError::Missing(p)) => assert_eq!(p, missing),
        other => panic!("expected Missing, got {other:?}"),
    }
    let err = Config::figment(Some(&missing)).unwrap_err();
    assert!(err.to_string().contains("nope.toml"), "{err}");
}

#[test]
fn a_wrong_type_names_the_key_and_the_file() {
    let (_d, path) = toml_file("[engine]\ntime_scale = \"abc\"\n");
    let msg = parse_message(load_isolated(&path));
    assert!(msg.contains("engine.time_scale"), "{msg}");
    assert!(msg.contains("flowgate.toml"), "{msg}");
    assert!(msg.contains("abc"), "{msg}");
}

#[test]
fn an_unknown_key_is_an_error_naming_it() {
    let (_d, path) = toml_file("[engine]\ntime_scal = 0\n");
    let msg = parse_message(load_isolated(&path));
    assert!(msg.contains("time_scal"), "{msg}");

    let (_d, path) =
        toml_file("[[credentials]]\naccess_key_id = \"a\"\nsecret = \"b\"\nregion = \"x\"\n");
    let msg = parse_message(load_isolated(&path));
    assert!(msg.contains("region"), "{msg}");
}

#[test]
fn a_bad_environment_value_names_the_variable_source() {
    std::env::set_var("FGTEST_ENVBAD_ENGINE__MAX_PAYLOAD_BYTES", "lots");
    std::env::set_var("FGTEST_ENVBAD_AUTH__MODE", "sometimes");
    let f = Config::figment_with_env_prefix(Some(Path::new(DEFAULT_CONFIG_FILE)), "FGTEST_ENVBAD_")
        .unwrap();
    let msg = parse_message(Config::from_figment(f));
    // The message names the variable to fix, whichever of the two serde meets first.
    assert!(
        msg.contains("\"FGTEST_ENVBAD_ENGINE__MAX_PAYLOAD_BYTES\"")
            || msg.contains("\"FGTEST_ENVBAD_AUTH__MODE\""),
        "{msg}"
    );
    assert!(msg.contains("environment variable"), "{msg}");
}

#[test]
fn reserved_environment_variables_are_not_keys() {
    // FLOWGATE_CONFIG and FLOWGATE_LOG belong to the command line (a path, a tracing filter).
    std::env::set_var("FGTEST_RESERVED_LOG", "flowgate=debug");
    std::env::set_var("FGTEST_RESERVED_CONFIG", "/somewhere/else.toml");
    std::env::set_var("FGTEST_RESERVED_LOG__LEVEL", "warn");
    let f =
        Config::figment_with_env_prefix(Some(Path::new(DEFAULT_CONFIG_FILE)), "FGTEST_RESERVED_")
            .unwrap();
    let c = Config::from_figment(f).unwrap();
    assert_eq!(c.log.level, "warn");
}

#[test]
fn validation_reports_every_problem_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing_flows = dir.path().join("no-such-flows");
    let text = format!(
        r#"
listen = "localhost"

[auth]
clock_skew_seconds = 0
nonce_cache_capacity = 0

[[credentials]]
access_key_id = "ak"
secret = "s"

[[credentials]]
access_key_id = "ak"
secret = ""

[[credentials]]
access_key_id = ""
secret = "x"

[engine]
time_scale = -1.0

[store]
kind = "memory"
path = "data/flowgate.db"
lease_seconds = 0.0

[flows]
dir = {missing:?}
huawei_project = ""

[log]
level = "loud"
format = "xml"

[[functions]]
name = "ok"
invoker = "mock"
responses = [{{ attempts = "*", return = 1 }}]

[[functions]]
name = "fetch"
invoker = "http"
"#,
        missing = missing_flows.display().to_string()
    );
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let result = load_isolated(&path);
    let display = match &result {
        Err(e) => e.to_string(),
        Ok(_) => panic!("an invalid configuration loaded"),
    };
    let problems = problems_of(result);
    let expected = [
        "listen",
        "auth.clock_skew_seconds",
        "auth.nonce_cache_capacity",
        "credentials[1].access_key_id",
        "credentials[1].secret",
        "credentials[2].access_key_id",
        "engine.time_scale",
        "functions[1].url",
        "store.path",
        "store.lease_seconds",
        "flows.dir",
        "flows.huawei_project",
        "log.level",
        "log.format",
    ];
    for field in expected {
        assert!(
            problems.iter().any(|p| p.field == field),
            "no problem for {field}: {problems:#?}"
        );
        assert!(
            display
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{field}: "))),
            "{display}"
        );
    }
    assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    // One line per problem, after the heading.
    assert_eq!(display.lines().count(), problems.len() + 1, "{display}");
    assert!(
        display.contains("duplicate access key id \"ak\""),
        "{display}"
    );
}

#[test]
fn an_existing_flows_dir_is_fine_and_empty_disables_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_d, path) = toml_file(&format!(
        "[flows]\ndir = {:?}\n",
        dir.path().display().to_string()
    ));
    assert_eq!(
        load_isolated(&path).unwrap().flows.dir.as_deref(),
        Some(dir.path())
    );

    let (_d, path) = toml_file("[flows]\ndir = \"\"\n");
    assert_eq!(load_isolated(&path).unwrap().flows.dir, None);
}

#[test]
fn problems_display_as_field_and_message() {
    let p = Problem::new("engine.time_scale", "must be a number >= 0");
    assert_eq!(p.to_string(), "engine.time_scale: must be a number >= 0");
    let e = ConfigError::Invalid(vec![p.clone(), Problem::new("listen", "bad")]);
    let text = e.to_string();
    assert!(
        text.contains("\n  engine.time_scale: must be a number >= 0\n  listen: bad"),
        "{text}"
    );
}

#[test]
fn listen_addr_rejects_host_names() {
    let c = Config {
        listen: "localhost:8080".into(),
        ..Config::default()
    };
    assert!(c.listen_addr().is_err());
    assert!(c.validate().iter().any(|p| p.field == "listen"));
    let c = Config {
        listen: "[::1]:8081".into(),
        ..Config::default()
    };
    assert_eq!(c.listen_addr().unwrap().port(), 8081);
    assert!(c.validate().is_empty());
}

#[test]
fn store_settings_are_checked_together() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str]); 4] = [
        ("[store]\nkind = \"postgres\"\n", &["store.url"]),
        (
            "[store]\nkind = \"postgres\"\nurl = \"mysql://x\"\npath = \"a.db\"\n",
            &["store.url", "store.path"],
        ),
        ("[store]\nurl = \"postgres://x/y\"\n", &["store.url"]),
        ("[store]\nnode_id = \"\"\n", &["store.node_id"]),
    ];
    for (text, fields) in cases {
        let path = dir.path().join("store.toml");
        std::fs::write(&path, text).unwrap();
        let problems = problems_of(load_isolated(&path));
        for f in fields {
            assert!(
                problems.iter().any(|p| p.field == *f),
                "{text}: no problem for {f}: {problems:#?}"
            );
        }
        assert_eq!(problems.len(), fields.len(), "{text}: {problems:#?}");
    }
    let path = dir.path().join("ok.toml");
    std::fs::write(
        &path,
        "[store]\nkind = \"postgres\"\nurl = \"postgres://a:b@127.0.0.1:5432/db\"\nnode_id = \"n1\"\nexpress = \"store\"\n",
    )
    .unwrap();
    let c = load_isolated(&path).expect("a postgres store configuration loads");
    assert_eq!(c.store.kind, StoreKind::Postgres);
    assert_eq!(c.store.express, flowgate::config::ExpressPlacement::Store);
}
