//! Contract tests as data: every `dialects/*/fixtures/contract/*.json` file is a sequence of
//! requests and the responses the vendor's API gives, run against the app without a socket.
//!
//! A case file: `{"description", "config": {"auth": "off"|"verify", "auth_settings": {...},
//! "functions": [...], "engine": {...}, "rate_limits": [...]}, "steps": [{"name",
//! "request": {...}, "expect": {...}, "save": {...}}]}`; `auth_settings` overrides keys of
//! `[auth]` other than the mode (e.g. `nonce_cache_capacity`).
//! A request has `method` (default GET), `path` (default `/`), `query`, `form`, `json` or
//! `body`, `headers`, and `sign` (`"rpc_v1"` or `"huawei"`: signed with the development
//! credentials; `sign_time`, `sign_nonce` and `sign_secret` override the time, the nonce and
//! the secret to provoke signature errors). `sign_time` is an RFC 3339 time, or `now-Ns` /
//! `now+Ns`: N seconds before or after the moment the case started (the same instant for
//! every step, so two steps can send the very same request). An expectation has `status`,
//! `body` and `headers`. Saved values (`"save": {"id": "/execution_id"}`, JSON pointers into
//! the body) replace `${id}` in later steps. Expected bodies match as subsets, with
//! placeholders: `<any>`, `<absent>`, `<string>`, `<int>`, `<number>`, `<bool>`, `<uuid>`,
//! `<time>`, `<millis>`, `<hex32>`, `<contains:TEXT>`, and `{"$json": X}` for a string holding
//! JSON that matches X.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request};
use flowgate::config::{AuthMode, Config};
use flowgate::server::{app, prepare};
use http_body_util::BodyExt;
use serde_json::{Map, Value};
use tower::ServiceExt;

const AK: &str = "testAccessKeyId";
const SK: &str = "testAccessKeySecret";

fn case_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("dialects");
    let mut out = Vec::new();
    for dialect in std::fs::read_dir(&root).unwrap().flatten() {
        let dir = dialect.path().join("fixtures/contract");
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                if e.path().extension().is_some_and(|x| x == "json") {
                    out.push(e.path());
                }
            }
        }
    }
    out.sort();
    out
}

fn substitute(v: &Value, vars: &Map<String, Value>) -> Value {
    match v {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
                if let Some(val) = vars.get(name) {
                    return val.clone();
                }
            }
            let mut out = s.clone();
            for (k, val) in vars {
                let text = match val {
                    Value::String(t) => t.clone(),
                    other => other.to_string(),
                };
                out = out.replace(&format!("${{{k}}}"), &text);
            }
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| substitute(x, vars)).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), substitute(x, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn pairs(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A `sign_time`: RFC 3339, or `now`, `now-Ns`, `now+Ns` relative to `case_start`.
fn sign_time(
    text: &str,
    case_start: chrono::DateTime<chrono::Utc>,
) -> chrono::DateTime<chrono::Utc> {
    if let Some(offset) = text.strip_prefix("now") {
        if offset.is_empty() {
            return case_start;
        }
        let seconds: i64 = offset
            .strip_suffix('s')
            .and_then(|n| n.strip_prefix('+').unwrap_or(n).parse().ok())
            .unwrap_or_else(|| panic!("sign_time {text:?}: expected now-Ns or now+Ns"));
        return case_start + chrono::TimeDelta::seconds(seconds);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .expect("sign_time is RFC 3339 or now±Ns")
        .with_timezone(&chrono::Utc)
}

fn build(req: &Value, case_start: chrono::DateTime<chrono::Utc>) -> Request<Body> {
    let method = req.get("method").and_then(Value::as_str).unwrap_or("GET");
    let path = req.get("path").and_then(Value::as_str).unwrap_or("/");
    let mut query = pairs(req.get("query"));
    let form = pairs(req.get("form"));
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("127.0.0.1:8080"));
    for (k, v) in pairs(req.get("headers")) {
        headers.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(&v).unwrap(),
        );
    }
    let mut body: Vec<u8> = Vec::new();
    if !form.is_empty() {
        body = flowgate::dialects::alibaba::signature::encode_form(&form).into_bytes();
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
    } else if let Some(j) = req.get("json") {
        body = serde_json::to_vec(j).unwrap();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
    } else if let Some(Value::String(b)) = req.get("body") {
        body = b.clone().into_bytes();
    }
    let now = match req.get("sign_time").and_then(Value::as_str) {
        Some(t) => sign_time(t, case_start),
        None => chrono::Utc::now(),
    };
    let secret = req.get("sign_secret").and_then(Value::as_str).unwrap_or(SK);
    match req.get("sign").and_then(Value::as_str) {
        Some("rpc_v1") => {
            let nonce = match req.get("sign_nonce").and_then(Value::as_str) {
                Some(n) => n.to_string(),
                None => uuid::Uuid::new_v4().simple().to_string(),
            };
            flowgate::dialects::alibaba::signature::sign_rpc_v1_split(
                method, &mut query, &form, AK, secret, now, &nonce,
            );
        }
        Some("huawei") => {
            let raw_query = flowgate::dialects::alibaba::signature::encode_form(&query);
            flowgate::dialects::huawei::signature::sign(
                method,
                path,
                &raw_query,
                &mut headers,
                &body,
                AK,
                secret,
                now,
                &["content-type", "host", "x-sdk-date"],
            );
        }
        Some(other) => panic!("unknown signing scheme {other}"),
        None => {}
    }
    let uri = if query.is_empty() {
        path.to_string()
    } else {
        format!(
            "{path}?{}",
            flowgate::dialects::alibaba::signature::encode_form(&query)
        )
    };
    let mut builder = Request::builder().method(method).uri(uri);
    for (k, v) in &headers {
        builder = builder.header(k, v);
    }
    builder.body(Body::from(body)).unwrap()
}

fn is_time(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

/// Checks `actual` against `expected`; returns the mismatches with their JSON paths.
fn check(expected: &Value, actual: Option<&Value>, path: &str, out: &mut Vec<String>) {
    if let Value::String(p) = expected {
        if let Some(rule) = p.strip_prefix('<').and_then(|r| r.strip_suffix('>')) {
            let ok = match (rule, actual) {
                ("absent", a) => a.is_none(),
                (_, None) => false,
                ("any", Some(_)) => true,
                ("string", Some(a)) => a.is_string(),
                ("int", Some(a)) => a.is_i64() || a.is_u64(),
                ("number", Some(a)) => a.is_number(),
                ("bool", Some(a)) => a.is_boolean(),
                ("uuid", Some(a)) => a.as_str().is_some_and(|s| uuid::Uuid::parse_str(s).is_ok()),
                ("time", Some(a)) => a.as_str().is_some_and(is_time),
                ("millis", Some(a)) => a.as_i64().is_some_and(|n| n > 1_500_000_000_000),
                ("hex32", Some(a)) => a
                    .as_str()
                    .is_some_and(|s| s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit())),
                (r, Some(a)) if r.starts_with("contains:") => a
                    .as_str()
                    .is_some_and(|s| s.contains(&r["contains:".len()..])),
                (_, Some(a)) => a == expected,
            };
            if !ok {
                out.push(format!("{path}: expected {p}, got {actual:?}"));
            }
            return;
        }
    }
    let Some(actual) = actual else {
        out.push(format!("{path}: missing, expected {expected}"));
        return;
    };
    match expected {
        Value::Object(m) if m.len() == 1 && m.contains_key("$json") => {
            match actual.as_str().map(serde_json::from_str::<Value>) {
                Some(Ok(parsed)) => check(&m["$json"], Some(&parsed), path, out),
                _ => out.push(format!(
                    "{path}: expected a string holding JSON, got {actual}"
                )),
            }
        }
        Value::Object(m) => {
            let Some(a) = actual.as_object() else {
                out.push(format!("{path}: expected an object, got {actual}"));
                return;
            };
            for (k, v) in m {
                check(v, a.get(k), &format!("{path}.{k}"), out);
            }
        }
        Value::Array(items) => {
            let Some(a) = actual.as_array() else {
                out.push(format!("{path}: expected an array, got {actual}"));
                return;
            };
            if a.len() != items.len() {
                out.push(format!(
                    "{path}: expected {} items, got {}: {actual}",
                    items.len(),
                    a.len()
                ));
                return;
            }
            for (i, v) in items.iter().enumerate() {
                check(v, a.get(i), &format!("{path}[{i}]"), out);
            }
        }
        Value::Number(n) => {
            if actual.as_f64() != n.as_f64() {
                out.push(format!("{path}: expected {expected}, got {actual}"));
            }
        }
        other => {
            if other != actual {
                out.push(format!("{path}: expected {other}, got {actual}"));
            }
        }
    }
}

async fn run_case(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let case: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not valid JSON: {e}", file.display()));
    let mut config = Config::default();
    config.store = flowgate::config::StoreConfig::memory();
    config.flows.dir = None;
    config.engine.time_scale = 0.0;
    let cfg = case.get("config").cloned().unwrap_or(Value::Null);
    config.auth.mode = match cfg.get("auth").and_then(Value::as_str) {
        Some("verify") => AuthMode::Verify,
        _ => AuthMode::Off,
    };
    if let Some(Value::Object(a)) = cfg.get("auth_settings") {
        let mut current = serde_json::to_value(&config.auth).unwrap();
        for (k, v) in a {
            current[k] = v.clone();
        }
        config.auth = serde_json::from_value(current).expect("auth settings");
    }
    if let Some(r) = cfg.get("rate_limits") {
        config.rate_limits = serde_json::from_value(r.clone()).expect("rate_limits");
    }
    if let Some(f) = cfg.get("functions") {
        config.functions = serde_json::from_value(f.clone()).expect("functions");
    }
    if let Some(Value::Object(e)) = cfg.get("engine") {
        let mut current = serde_json::to_value(&config.engine).unwrap();
        for (k, v) in e {
            current[k] = v.clone();
        }
        config.engine = serde_json::from_value(current).expect("engine settings");
    }
    let (state, dialects) = prepare(config).await.expect("app state");
    let router = app(state, &dialects);
    let mut vars = Map::new();
    let mut failures = Vec::new();
    let case_start = chrono::Utc::now();
    let steps = case["steps"].as_array().expect("steps");
    for (i, step) in steps.iter().enumerate() {
        let name = step
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("step {i}"));
        let req = substitute(&step["request"], &vars);
        let resp = router
            .clone()
            .oneshot(build(&req, case_start))
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                Value::String(format!("<not JSON> {}", String::from_utf8_lossy(&bytes)))
            })
        };
        let expect = substitute(&step["expect"], &vars);
        let mut out = Vec::new();
        if let Some(s) = expect.get("status").and_then(Value::as_u64) {
            if s != status as u64 {
                out.push(format!("status: expected {s}, got {status}"));
            }
        }
        if let Some(b) = expect.get("body") {
            check(b, Some(&body), "body", &mut out);
        }
        if let Some(Value::Object(h)) = expect.get("headers") {
            for (k, v) in h {
                let actual = headers
                    .get(k.as_str())
                    .and_then(|x| x.to_str().ok())
                    .map(|s| Value::String(s.to_string()));
                check(v, actual.as_ref(), &format!("header {k}"), &mut out);
            }
        }
        if let Some(Value::Object(save)) = step.get("save") {
            for (var, pointer) in save {
                let p = pointer.as_str().unwrap_or_default();
                match body.pointer(p) {
                    Some(v) => {
                        vars.insert(var.clone(), v.clone());
                    }
                    None => out.push(format!("save {var}: nothing at {p}")),
                }
            }
        }
        for o in out {
            failures.push(format!(
                "{} / {name}: {o}\n    response {status} {body}",
                file.display()
            ));
        }
    }
    failures
}

#[tokio::test]
async fn every_contract_case_gives_the_vendors_answers() {
    let files = case_files();
    assert!(
        !files.is_empty(),
        "no contract cases found under dialects/*/fixtures/contract"
    );
    let mut failures = Vec::new();
    let mut steps = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        steps += serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v["steps"].as_array().map(Vec::len))
            .unwrap_or(0);
        failures.extend(run_case(f).await);
    }
    assert!(
        failures.is_empty(),
        "{} of {steps} contract steps in {} files failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
