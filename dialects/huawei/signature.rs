//! Huawei Cloud APIG AK/SK request signatures (`SDK-HMAC-SHA256`), verified exactly as the
//! official SDKs (Python, Go, Java) compute them.
//!
//! The client sends
//! `Authorization: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<a;b;c>, Signature=<hex>` and
//! `X-Sdk-Date: YYYYMMDDTHHMMSSZ`. The signature covers the method, a canonical form of the
//! path and query, the headers named in `SignedHeaders` and the SHA-256 of the body (see
//! `shared/vectors/README.md` §3.3 and the FunctionGraph spec §6). The key is the raw SK:
//! there is no key derivation and **no nonce**, so two identical requests within a second
//! carry identical signatures and are both legitimate.
//!
//! Server side: [`authenticate`]. Client side: [`sign`]. The pure steps ([`canonical_uri`],
//! [`canonical_query`], [`canonical_headers`], [`canonical_request`], [`string_to_sign`],
//! [`signature`]) are public for debugging and for the tests that pin them to the SDKs.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use percent_encoding::{
    percent_decode_str, percent_encode as pct_encode_bytes, AsciiSet, NON_ALPHANUMERIC,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::dialects::RawRequest;
use crate::model::AuthFailure;

/// The algorithm token of the only scheme supported (`V11-HMAC-SHA256`, `SDK-HMAC-SM3`,
/// `SDK-ECDSA-P256-SHA256` and `SDK-SM2-SM3` are rejected as unsupported).
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// The `X-Sdk-Date` format: basic ISO 8601 UTC, e.g. `20261121T141900Z`.
pub const DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";
/// The header carrying the request time; its literal value is part of the StringToSign.
pub const DATE_HEADER: &str = "x-sdk-date";
/// The optional header whose literal value replaces the body hash (the SDKs send
/// `UNSIGNED-PAYLOAD` for bodies that are neither JSON nor BSON).
pub const CONTENT_SHA256_HEADER: &str = "x-sdk-content-sha256";
/// Hex SHA-256 of an empty body.
pub const EMPTY_BODY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// The skew Huawei's API gateway allows between `X-Sdk-Date` and its clock: 15 minutes.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Bytes that RFC 3986 leaves unescaped: `A-Z a-z 0-9 - _ . ~`. Everything else is escaped.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

type HmacSha256 = Hmac<Sha256>;

/// A request that passed [`authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The access key id (`Access=`) that signed it.
    pub access_key_id: String,
}

/// A parsed `Authorization: SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkAuthorization {
    /// The access key id (`Access=`).
    pub access: String,
    /// The signed header names in the order listed (lower-case and sorted by the SDKs).
    pub signed_headers: Vec<String>,
    /// The hex signature as sent.
    pub signature: String,
}

/// Parses an `SDK-HMAC-SHA256` `Authorization` value. Fields are separated by `,` with or
/// without spaces. Another algorithm or a missing field gives `Missing` with a message
/// saying what is wrong.
pub fn parse_authorization(value: &str) -> Result<SdkAuthorization, AuthFailure> {
    let value = value.trim();
    let (algorithm, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(AuthFailure::Missing(format!(
            "signing algorithm '{algorithm}' is not supported; sign with {ALGORITHM} \
             (AK/SK, no derived key)"
        )));
    }
    let (mut access, mut signed, mut signature) = (None, None, None);
    for item in rest.split(',') {
        let Some((k, v)) = item.trim().split_once('=') else {
            continue;
        };
        match k.trim() {
            "Access" => access = Some(v.trim().to_owned()),
            "SignedHeaders" => signed = Some(v.trim().to_owned()),
            "Signature" => signature = Some(v.trim().to_owned()),
            _ => {}
        }
    }
    let missing = |what: &str| {
        AuthFailure::Missing(format!(
            "malformed {ALGORITHM} Authorization header: no {what}"
        ))
    };
    let access = access
        .filter(|a| !a.is_empty())
        .ok_or_else(|| missing("Access"))?;
    let signed = signed.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("Signature"))?;
    Ok(SdkAuthorization {
        access,
        signed_headers: signed
            .split(';')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect(),
        signature,
    })
}

/// RFC 3986 percent-encoding of the UTF-8 bytes of `s`: `A-Z a-z 0-9 - _ . ~` stay, every
/// other byte becomes `%XX` with upper-case hex (space → `%20`, `+` → `%2B`, `/` → `%2F`).
pub fn percent_encode(s: &str) -> String {
    pct_encode_bytes(s.as_bytes(), ESCAPED).to_string()
}

/// Decodes `%XX` escapes to bytes. Unlike form decoding, `+` stays a `+` (the SDKs never
/// send `+` for a space). Malformed escapes are kept literally.
fn decode_bytes(s: &str) -> Vec<u8> {
    percent_decode_str(s).collect()
}

/// Re-encodes decoded bytes with the RFC 3986 rule.
fn encode_bytes(b: &[u8]) -> String {
    pct_encode_bytes(b, ESCAPED).to_string()
}

/// The canonical URI: the raw path split on `/`, each segment percent-decoded (`+` is not a
/// space) and re-encoded with [`percent_encode`]'s rule, joined with `/`, with a `/`
/// appended when the result does not already end with one (`/v2/p/fgs/workflows` →
/// `/v2/p/fgs/workflows/`; the SDKs never send that trailing slash on the wire). Decoding
/// works on bytes, so even invalid UTF-8 round-trips.
pub fn canonical_uri(path: &str) -> String {
    let mut uri = path
        .split('/')
        .map(|seg| encode_bytes(&decode_bytes(seg)))
        .collect::<Vec<_>>()
        .join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// The canonical query: the raw query's `&`-separated pairs (empty ones skipped, a pair
/// without `=` has an empty value) percent-decoded (`+` is **not** a space here), sorted by
/// name then value (byte order of the decoded text, as the SDKs sort), re-encoded with
/// [`percent_encode`]'s rule and joined as `name=value&...`; empty when there is no query.
pub fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = raw_query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (decode_bytes(k), decode_bytes(v))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode_bytes(k), encode_bytes(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The value of one header for signing: every occurrence trimmed and joined with `,` (one
/// occurrence in practice), empty when absent. Looked up case-insensitively.
fn header_value(headers: &HeaderMap, name: &str) -> String {
    let Ok(name) = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()) else {
        return String::new();
    };
    headers
        .get_all(&name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
        .collect::<Vec<_>>()
        .join(",")
}

/// The canonical headers block: for each signed name in the given order,
/// `name:trimmed value\n` (the block ends with `\n`).
pub fn canonical_headers<S: AsRef<str>>(headers: &HeaderMap, signed_headers: &[S]) -> String {
    let mut out = String::new();
    for name in signed_headers {
        let name = name.as_ref();
        out.push_str(name);
        out.push(':');
        out.push_str(&header_value(headers, name));
        out.push('\n');
    }
    out
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

/// The payload hash line of the canonical request: the literal `X-Sdk-Content-Sha256`
/// value when the request carries one (e.g. `UNSIGNED-PAYLOAD`), otherwise the hex SHA-256
/// of the raw body bytes (exactly as received: never re-serialise a JSON body first).
pub fn payload_hash(headers: &HeaderMap, body: &[u8]) -> String {
    match headers.get(CONTENT_SHA256_HEADER) {
        Some(v) => String::from_utf8_lossy(v.as_bytes()).trim().to_owned(),
        None => sha256_hex(body),
    }
}

/// The canonical request:
/// `METHOD\nCanonicalURI\nCanonicalQuery\nCanonicalHeaders\nSignedHeaders\nPayloadHash`
/// (the headers block ends in `\n`, so an empty line precedes SignedHeaders, which is the
/// names joined with `;`). `payload_hash` is usually [`payload_hash`]`(headers, body)`.
pub fn canonical_request<S: AsRef<str>>(
    method: &str,
    path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    signed_headers: &[S],
    payload_hash: &str,
) -> String {
    let signed: Vec<&str> = signed_headers.iter().map(AsRef::as_ref).collect();
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        canonical_uri(path),
        canonical_query(raw_query),
        canonical_headers(headers, &signed),
        signed.join(";"),
        payload_hash
    )
}

/// The StringToSign: `SDK-HMAC-SHA256\n<X-Sdk-Date as sent>\n<hex SHA-256 of the canonical
/// request>`.
pub fn string_to_sign(x_sdk_date: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{x_sdk_date}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The signature: lower-case hex `HMAC-SHA256(key = SK, string_to_sign)` (the raw SK, no
/// date/region key derivation).
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// Formats a time as an `X-Sdk-Date` value ([`DATE_FORMAT`]).
pub fn format_date(t: DateTime<Utc>) -> String {
    t.format(DATE_FORMAT).to_string()
}

/// Parses an `X-Sdk-Date` value ([`DATE_FORMAT`]).
pub fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s.trim(), DATE_FORMAT)
        .ok()
        .map(|n| n.and_utc())
}

/// Constant-time equality of two strings (the length is not secret).
fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Authenticates one request signed with `SDK-HMAC-SHA256`.
///
/// * `req`: the request as received (raw path, raw query, headers, raw body).
/// * `secret_for`: the SK of an access key id, `None` when unknown.
/// * `now`: the server's clock (injected for tests); `window`: the allowed skew of
///   `X-Sdk-Date` either way (15 minutes on the cloud, [`DEFAULT_WINDOW`]).
///
/// Checks in order: the `Authorization` header (absent, another algorithm or malformed →
/// `Missing`), the access key (`UnknownKey`), `X-Sdk-Date` (absent or not
/// `YYYYMMDDTHHMMSSZ` → `Missing`; too far from `now` → `ClockSkew`), then the signature
/// (`BadSignature` carrying the server's StringToSign; constant-time comparison). When the
/// request carries an `X-Sdk-Content-Sha256` that is a hex digest, it must also match the
/// body, or the body could be swapped under a valid signature. There is no nonce: replays
/// within the window are indistinguishable from legitimate retries and are accepted.
pub fn authenticate(
    req: &RawRequest<'_>,
    secret_for: &dyn Fn(&str) -> Option<String>,
    now: DateTime<Utc>,
    window: Duration,
) -> Result<Authenticated, AuthFailure> {
    let Some(value) = req.headers.get(axum::http::header::AUTHORIZATION) else {
        let msg = if req.headers.contains_key("x-auth-token") {
            format!("token authentication (X-Auth-Token) is not supported; sign with {ALGORITHM}")
        } else {
            format!("the request is not signed: expected an Authorization: {ALGORITHM} header")
        };
        return Err(AuthFailure::Missing(msg));
    };
    let auth = parse_authorization(&String::from_utf8_lossy(value.as_bytes()))?;
    let secret =
        secret_for(&auth.access).ok_or_else(|| AuthFailure::UnknownKey(auth.access.clone()))?;
    let date = req
        .headers
        .get(DATE_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
        .ok_or_else(|| {
            AuthFailure::Missing("the X-Sdk-Date header must be specified".to_owned())
        })?;
    let request_time = parse_date(&date).ok_or_else(|| {
        AuthFailure::Missing(format!(
            "the X-Sdk-Date header '{date}' is not a UTC time like 20240101T000000Z"
        ))
    })?;
    let skew = if request_time > now {
        request_time - now
    } else {
        now - request_time
    };
    if skew > TimeDelta::from_std(window).unwrap_or(TimeDelta::MAX) {
        return Err(AuthFailure::ClockSkew {
            request_time: date,
            server_time: format_date(now),
        });
    }
    let hash = payload_hash(req.headers, req.body);
    let payload_ok = !(hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        || hash.eq_ignore_ascii_case(&sha256_hex(req.body));
    let creq = canonical_request(
        req.method,
        req.path,
        req.raw_query,
        req.headers,
        &auth.signed_headers,
        &hash,
    );
    let string_to_sign = string_to_sign(&date, &creq);
    let expected = signature(&secret, &string_to_sign);
    let sig_ok = ct_eq(&expected, &auth.signature.to_ascii_lowercase());
    if !(sig_ok && payload_ok) {
        return Err(AuthFailure::BadSignature { string_to_sign });
    }
    Ok(Authenticated {
        access_key_id: auth.access,
    })
}

/// Client side: signs a request as the SDKs do. Sets `X-Sdk-Date` (from `now`), signs the
/// headers named in `signed_header_names` plus `x-sdk-date` (lower-cased, sorted,
/// de-duplicated; names absent from `headers` are left out rather than signed empty), sets
/// `Authorization` and returns its value. Put every header to be signed (notably `host`,
/// with its port, if it should be covered) into `headers` first, exactly as it will be sent.
/// The body hash follows [`payload_hash`], so an `X-Sdk-Content-Sha256` already in `headers`
/// is honoured.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    method: &str,
    path: &str,
    raw_query: &str,
    headers: &mut HeaderMap,
    body: &[u8],
    access_key_id: &str,
    secret: &str,
    now: DateTime<Utc>,
    signed_header_names: &[&str],
) -> String {
    let date = format_date(now);
    headers.insert(
        HeaderName::from_static(DATE_HEADER),
        HeaderValue::from_str(&date).expect("ASCII date"),
    );
    let mut signed: Vec<String> = signed_header_names
        .iter()
        .map(|n| n.trim().to_ascii_lowercase())
        .chain(std::iter::once(DATE_HEADER.to_owned()))
        .filter(|n| {
            HeaderName::from_bytes(n.as_bytes()).is_ok_and(|name| headers.contains_key(name))
        })
        .collect();
    signed.sort();
    signed.dedup();
    let hash = payload_hash(headers, body);
    let creq = canonical_request(method, path, raw_query, headers, &signed, &hash);
    let sig = signature(secret, &string_to_sign(&date, &creq));
    let value = format!(
        "{ALGORITHM} Access={access_key_id}, SignedHeaders={}, Signature={sig}",
        signed.join(";")
    );
    headers.insert(
        axum::http::header::AUTHORIZATION,
        HeaderValue::from_str(&value).expect("ASCII Authorization value"),
    );
    value
}
