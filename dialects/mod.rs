//! The dialect registry: one line per vendor front end.
//!
//! A dialect owns its wire format, signature scheme, flow language, status names and error
//! envelope. It mounts its routes on the shared server and compiles its flow definitions into
//! the canonical model. Vendor words never leave a dialect's folder.

pub mod alibaba;
pub mod huawei;

use std::path::Path;

use crate::config::Config;
use crate::model::flow::{DefinitionIssue, Flow};
use crate::server::AppState;

/// A request as it arrived on the wire, for signature verification: nothing decoded, nothing
/// normalised, so each scheme can canonicalise it exactly as its vendor does.
#[derive(Debug, Clone, Copy)]
pub struct RawRequest<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// The path as sent (still percent-encoded).
    pub path: &'a str,
    /// The query string as sent (after `?`, still encoded), empty when none.
    pub raw_query: &'a str,
    /// The request headers.
    pub headers: &'a axum::http::HeaderMap,
    /// The body bytes as received.
    pub body: &'a [u8],
}

/// A JSON object written straight into a response body, members in the order added: the
/// bytes `serde_json` writes for the same members in a `Map` (with `preserve_order`; keys and
/// values serialised by `serde_json` itself), without building the map, its keys and its
/// values first. For the answers on the hot path.
#[derive(Debug)]
pub struct JsonObject {
    buf: Vec<u8>,
}

impl JsonObject {
    /// An empty object with room for about `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity);
        buf.push(b'{');
        JsonObject { buf }
    }

    fn key(&mut self, key: &str) {
        if self.buf.len() > 1 {
            self.buf.push(b',');
        }
        write_json(&mut self.buf, key);
        self.buf.push(b':');
    }

    /// Adds a string member.
    pub fn string(&mut self, key: &str, value: &str) {
        self.key(key);
        write_json(&mut self.buf, value);
    }

    /// Adds a member holding any JSON value.
    pub fn value(&mut self, key: &str, value: &serde_json::Value) {
        self.key(key);
        write_json(&mut self.buf, value);
    }

    /// The object's text.
    pub fn into_bytes(mut self) -> Vec<u8> {
        self.buf.push(b'}');
        self.buf
    }
}

/// Appends a value's compact JSON text.
fn write_json<T: serde::Serialize + ?Sized>(buf: &mut Vec<u8>, value: &T) {
    serde_json::to_writer(buf, value).expect("JSON values always serialise into a Vec");
}

/// The future a [`PrefixRoute`] handler returns.
pub type PrefixFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = axum::response::Response> + Send + 'static>>;

/// Every request whose path starts with `prefix` goes to `handle` (see
/// [`Dialect::prefix_routes`]).
#[derive(Debug, Clone, Copy)]
pub struct PrefixRoute {
    /// The path prefix, e.g. `/v2/`.
    pub prefix: &'static str,
    /// Serves one request.
    pub handle: fn(AppState, axum::extract::Request) -> PrefixFuture,
}

/// A vendor front end.
pub trait Dialect: Send + Sync + std::fmt::Debug {
    /// Short name (`alibaba`, `huawei`): the name of its folder under the flows directory.
    fn name(&self) -> &'static str;
    /// The namespace its flows live in when deployed from the flows directory.
    fn default_namespace(&self) -> String;
    /// Whether a definition text (from a file without a dialect folder) is written in this
    /// dialect's flow language.
    fn recognizes(&self, path: &Path, text: &str) -> bool;
    /// Compiles a definition into the canonical model; every problem with its field path.
    fn compile(&self, name: &str, text: &str) -> Result<Flow, Vec<DefinitionIssue>>;
    /// Dialect extras stored with a flow deployed from the flows directory (the API would
    /// have recorded them at create time).
    fn metadata(&self, _name: &str, _text: &str) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// Adds this dialect's routes to the app.
    fn routes(&self, router: axum::Router<AppState>) -> axum::Router<AppState>;
    /// Path prefixes under which this dialect matches every path itself (and answers unknown
    /// ones in its own envelope). The server serves them from its fallback, after the routes:
    /// a wildcard route would have its capture percent-decoded and stored with each request
    /// only for the handler to ignore it.
    fn prefix_routes(&self) -> Vec<PrefixRoute> {
        Vec::new()
    }
    /// Starts the dialect's background work (schedules, ...) once the server state exists.
    fn start_background(&self, _state: &AppState) {}
}

/// Every registered dialect. Add one line here to plug a dialect in.
pub fn registry(config: &Config) -> Vec<Box<dyn Dialect>> {
    let skew = std::time::Duration::from_secs(config.auth.clock_skew_seconds);
    let nonces = std::time::Duration::from_secs(config.auth.nonce_window_seconds);
    vec![
        Box::new(crate::canonical::CanonicalDialect),
        Box::new(alibaba::AlibabaDialect::new(
            skew,
            nonces,
            config.auth.nonce_cache_capacity,
        )),
        Box::new(huawei::HuaweiDialect {
            project: config.flows.huawei_project.clone(),
            region: config.flows.huawei_region.clone(),
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_object_is_what_serde_json_writes_for_the_same_map() {
        let texts = [
            "",
            "plain",
            "exec:0b7e0e3c-1d4f-4a3e-9a51-2f6c1b7d9e00",
            "quote \" and backslash \\",
            "new\nline\ttab\u{1}\u{1f}",
            "del \u{7f}, é, 日本, 🎉",
            "{\"i\":1}",
        ];
        let mut ours = JsonObject::with_capacity(16);
        let mut map = serde_json::Map::new();
        for (i, t) in texts.iter().enumerate() {
            let key = format!("{t}{i}");
            ours.string(&key, t);
            map.insert(key, serde_json::Value::String(t.to_string()));
        }
        ours.value("nested", &serde_json::json!({"a": [1, "b\"c"]}));
        map.insert("nested".into(), serde_json::json!({"a": [1, "b\"c"]}));
        assert_eq!(
            String::from_utf8(ours.into_bytes()).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
    }
}
