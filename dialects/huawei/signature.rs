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

use std::borrow::Cow;
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
use crate::text::split_ascii;

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

/// [`DATE_HEADER`] as a header name, looked up without parsing the name again.
const DATE_HEADER_NAME: HeaderName = HeaderName::from_static(DATE_HEADER);

/// [`CONTENT_SHA256_HEADER`] as a header name.
const CONTENT_SHA256_HEADER_NAME: HeaderName = HeaderName::from_static(CONTENT_SHA256_HEADER);
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
    let auth = parse_authorization_ref(value)?;
    Ok(SdkAuthorization {
        access: auth.access.to_owned(),
        signed_headers: auth.signed_headers().map(str::to_owned).collect(),
        signature: auth.signature.to_owned(),
    })
}

/// [`SdkAuthorization`] borrowed from the header value (what the server needs per request).
struct AuthorizationRef<'a> {
    access: &'a str,
    signed: &'a str,
    signature: &'a str,
}

impl<'a> AuthorizationRef<'a> {
    /// The signed header names in the order listed.
    fn signed_headers(&self) -> impl Iterator<Item = &'a str> {
        split_ascii(self.signed, b';')
            .map(str::trim)
            .filter(|h| !h.is_empty())
    }
}

fn parse_authorization_ref(value: &str) -> Result<AuthorizationRef<'_>, AuthFailure> {
    let value = value.trim();
    let (algorithm, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(AuthFailure::Missing(format!(
            "signing algorithm '{algorithm}' is not supported; sign with {ALGORITHM} \
             (AK/SK, no derived key)"
        )));
    }
    let (mut access, mut signed, mut signature) = (None, None, None);
    for item in split_ascii(rest, b',') {
        let Some((k, v)) = item.trim().split_once('=') else {
            continue;
        };
        match k.trim() {
            "Access" => access = Some(v.trim()),
            "SignedHeaders" => signed = Some(v.trim()),
            "Signature" => signature = Some(v.trim()),
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
    Ok(AuthorizationRef {
        access,
        signed,
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
    let mut uri = String::with_capacity(path.len() + 1);
    write_canonical_uri(&mut uri, path);
    uri
}

/// Whether a byte stays as it is under RFC 3986 percent-encoding.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Appends `%XX` (upper-case hex) for one byte.
fn push_escape(out: &mut String, b: u8) {
    const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(HEX_UPPER[(b >> 4) as usize] as char);
    out.push(HEX_UPPER[(b & 0xf) as usize] as char);
}

/// Appends one path segment decoded and re-encoded ([`canonical_uri`]'s rule); a segment of
/// unreserved bytes only is its own canonical form.
fn push_reencoded(out: &mut String, raw: &str) {
    if raw.bytes().all(unreserved) {
        out.push_str(raw);
        return;
    }
    for b in percent_decode_str(raw) {
        if unreserved(b) {
            out.push(b as char);
        } else {
            push_escape(out, b);
        }
    }
}

/// Appends [`canonical_uri`]`(path)`.
fn write_canonical_uri(out: &mut String, path: &str) {
    let start = out.len();
    for (i, segment) in split_ascii(path, b'/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        push_reencoded(out, segment);
    }
    if !out[start..].ends_with('/') {
        out.push('/');
    }
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

/// Appends the value of one header for signing: every occurrence trimmed and joined with
/// `,` (one occurrence in practice), nothing when absent. Looked up case-insensitively.
fn push_header_value(out: &mut String, headers: &HeaderMap, name: &str) {
    let lowered;
    let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
        lowered = name.to_ascii_lowercase();
        lowered.as_str()
    } else {
        name
    };
    // Found by comparing names (stored lower-case): a lookup by `&str` validates and
    // lower-cases the name through a table first, several times the cost for the handful of
    // headers a request carries, and a `HeaderName` for a custom header would allocate.
    let values = headers
        .iter()
        .filter(|(k, _)| k.as_str() == name)
        .map(|(_, v)| v);
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(header_text(v).trim());
    }
}

/// The canonical headers block: for each signed name in the given order,
/// `name:trimmed value\n` (the block ends with `\n`).
pub fn canonical_headers<S: AsRef<str>>(headers: &HeaderMap, signed_headers: &[S]) -> String {
    let mut out = String::new();
    write_canonical_headers(&mut out, headers, signed_headers);
    out
}

fn write_canonical_headers<S: AsRef<str>>(
    out: &mut String,
    headers: &HeaderMap,
    signed_headers: &[S],
) {
    for name in signed_headers {
        let name = name.as_ref();
        out.push_str(name);
        out.push(':');
        push_header_value(out, headers, name);
        out.push('\n');
    }
}

/// Hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    HexDigest::sha256(bytes).as_str().to_owned()
}

/// A 32-byte digest as 64 lower-case hex digits, on the stack: the verifier formats three
/// per request and needs none of them as a `String`.
struct HexDigest([u8; 64]);

impl HexDigest {
    fn of(digest: &[u8]) -> Self {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (pair, b) in out.chunks_exact_mut(2).zip(digest) {
            pair[0] = DIGITS[(b >> 4) as usize];
            pair[1] = DIGITS[(b & 0xf) as usize];
        }
        HexDigest(out)
    }

    fn sha256(bytes: &[u8]) -> Self {
        Self::of(&Sha256::digest(bytes))
    }

    fn hmac_sha256(secret: &str, message: &str) -> Self {
        let mut mac =
            HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
        mac.update(message.as_bytes());
        Self::of(&mac.finalize().into_bytes())
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("hex digits are ASCII")
    }
}

/// The payload hash line of the canonical request: the literal `X-Sdk-Content-Sha256`
/// value when the request carries one (e.g. `UNSIGNED-PAYLOAD`), otherwise the hex SHA-256
/// of the raw body bytes (exactly as received: never re-serialise a JSON body first).
pub fn payload_hash(headers: &HeaderMap, body: &[u8]) -> String {
    match headers.get(CONTENT_SHA256_HEADER_NAME) {
        Some(v) => header_text(v).trim().to_owned(),
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
    let mut out = String::with_capacity(256 + path.len() + raw_query.len());
    write_canonical_request(
        &mut out,
        method,
        path,
        raw_query,
        headers,
        signed_headers,
        payload_hash,
    );
    out
}

/// Appends [`canonical_request`] to `out` (one buffer, no intermediate strings).
fn write_canonical_request<S: AsRef<str>>(
    out: &mut String,
    method: &str,
    path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    signed_headers: &[S],
    payload_hash: &str,
) {
    for b in method.bytes() {
        out.push(b.to_ascii_uppercase() as char);
    }
    out.push('\n');
    write_canonical_uri(out, path);
    out.push('\n');
    if !raw_query.is_empty() {
        out.push_str(&canonical_query(raw_query));
    }
    out.push('\n');
    write_canonical_headers(out, headers, signed_headers);
    out.push('\n');
    for (i, name) in signed_headers.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str(name.as_ref());
    }
    out.push('\n');
    out.push_str(payload_hash);
}

/// The StringToSign: `SDK-HMAC-SHA256\n<X-Sdk-Date as sent>\n<hex SHA-256 of the canonical
/// request>`.
pub fn string_to_sign(x_sdk_date: &str, canonical_request: &str) -> String {
    let digest = HexDigest::sha256(canonical_request.as_bytes());
    let mut out = String::with_capacity(ALGORITHM.len() + x_sdk_date.len() + 66);
    out.push_str(ALGORITHM);
    out.push('\n');
    out.push_str(x_sdk_date);
    out.push('\n');
    out.push_str(digest.as_str());
    out
}

/// The signature: lower-case hex `HMAC-SHA256(key = SK, string_to_sign)` (the raw SK, no
/// date/region key derivation).
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    HexDigest::hmac_sha256(secret, string_to_sign)
        .as_str()
        .to_owned()
}

/// Formats a time as an `X-Sdk-Date` value ([`DATE_FORMAT`]).
pub fn format_date(t: DateTime<Utc>) -> String {
    match crate::model::time::format_utc(&t, false) {
        Some(iso) => iso.replace(['-', ':'], ""),
        None => t.format(DATE_FORMAT).to_string(),
    }
}

/// Parses an `X-Sdk-Date` value ([`DATE_FORMAT`]).
pub fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    parse_sdk_date(s.as_bytes()).or_else(|| {
        NaiveDateTime::parse_from_str(s, DATE_FORMAT)
            .ok()
            .map(|n| n.and_utc())
    })
}

/// The exact `YYYYMMDDTHHMMSSZ` shape the SDKs send, read without a format string; anything
/// else (or what chrono reads differently, such as a leap second) is `None` and takes the
/// general parser.
fn parse_sdk_date(s: &[u8]) -> Option<DateTime<Utc>> {
    if s.len() != 16 || s[8] != b'T' || s[15] != b'Z' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        s[from..to].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let second = num(13, 15)?;
    if second >= 60 {
        return None;
    }
    chrono::NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(4, 6)?, num(6, 8)?)?
        .and_hms_opt(num(9, 11)?, num(11, 13)?, second)
        .map(|n| n.and_utc())
}

/// Constant-time equality of two strings (the length is not secret).
#[cfg(test)]
fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Constant-time equality of a lower-case hex `expected` and `provided` lower-cased (the
/// length is not secret): `ct_eq(expected, &provided.to_ascii_lowercase())` without the copy.
/// A header value as text: borrowed when it is visible ASCII (every value the SDKs send),
/// otherwise decoded as UTF-8 with replacement characters.
fn header_text(v: &HeaderValue) -> Cow<'_, str> {
    match v.to_str() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(v.as_bytes()),
    }
}

fn ct_eq_lowercased(expected: &str, provided: &str) -> bool {
    expected.len() == provided.len()
        && expected
            .bytes()
            .zip(provided.bytes())
            .fold(subtle::Choice::from(1), |acc, (e, p)| {
                acc & e.ct_eq(&p.to_ascii_lowercase())
            })
            .into()
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
    authenticate_with(req, secret_for, now, window)
}

/// [`authenticate`] with a secret lookup that may lend the secret (`Option<&str>`) instead of
/// copying it: the same checks in the same order with the same failures.
pub fn authenticate_with<S: AsRef<str>>(
    req: &RawRequest<'_>,
    secret_for: impl Fn(&str) -> Option<S>,
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
    let value = header_text(value);
    let auth = parse_authorization_ref(&value)?;
    let secret =
        secret_for(auth.access).ok_or_else(|| AuthFailure::UnknownKey(auth.access.to_owned()))?;
    let date = req
        .headers
        .get(DATE_HEADER_NAME)
        .map(header_text)
        .ok_or_else(|| {
            AuthFailure::Missing("the X-Sdk-Date header must be specified".to_owned())
        })?;
    let date = date.trim();
    let request_time = parse_date(date).ok_or_else(|| {
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
            request_time: date.to_owned(),
            server_time: format_date(now),
        });
    }
    // Without an X-Sdk-Content-Sha256 the hash is the body's own: nothing to cross-check.
    let declared = req.headers.get(CONTENT_SHA256_HEADER_NAME).map(header_text);
    let body_hash;
    let (hash, payload_ok) = match declared.as_deref().map(str::trim) {
        None => {
            body_hash = HexDigest::sha256(req.body);
            (body_hash.as_str(), true)
        }
        Some(hash) => {
            let ok = !(hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
                || hash.eq_ignore_ascii_case(HexDigest::sha256(req.body).as_str());
            (hash, ok)
        }
    };
    let signed_headers: Vec<&str> = auth.signed_headers().collect();
    let mut creq = String::with_capacity(256 + req.path.len() + req.raw_query.len());
    write_canonical_request(
        &mut creq,
        req.method,
        req.path,
        req.raw_query,
        req.headers,
        &signed_headers,
        hash,
    );
    let string_to_sign = string_to_sign(date, &creq);
    let expected = HexDigest::hmac_sha256(secret.as_ref(), &string_to_sign);
    let sig_ok = ct_eq_lowercased(expected.as_str(), auth.signature);
    if !(sig_ok && payload_ok) {
        return Err(AuthFailure::BadSignature { string_to_sign });
    }
    Ok(Authenticated {
        access_key_id: auth.access.to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-buffer canonical URI is the definition's: every segment decoded and
    /// re-encoded, joined with `/`, a trailing `/` added.
    #[test]
    fn canonical_uri_matches_decoding_and_reencoding_each_segment() {
        let slow = |path: &str| {
            let mut uri = path
                .split('/')
                .map(|seg| encode_bytes(&decode_bytes(seg)))
                .collect::<Vec<_>>()
                .join("/");
            if !uri.ends_with('/') {
                uri.push('/');
            }
            uri
        };
        for path in [
            "",
            "/",
            "/v2/p/fgs/workflows",
            "/v2/p/fgs/workflows/",
            "/v2/%7Bproject_id%7D/fgs/a%2Fb/c d/%E2%98%83/%zz/+~",
            "//x//",
            "/%FF%FE/\u{e9}",
        ] {
            assert_eq!(canonical_uri(path), slow(path), "{path}");
        }
    }

    #[test]
    fn lower_casing_comparison_is_ct_eq_of_the_lowered_copy() {
        for (e, p) in [
            ("ab09", "AB09"),
            ("ab09", "ab09"),
            ("ab09", "ab0"),
            ("ab09", "ab0A"),
        ] {
            assert_eq!(
                ct_eq_lowercased(e, p),
                ct_eq(e, &p.to_ascii_lowercase()),
                "{p}"
            );
        }
    }

    #[test]
    fn sdk_dates_parse_as_chrono_reads_them() {
        for s in [
            "20261121T141900Z",
            "20240229T235959Z",
            "20230229T000000Z",
            "20261121T235960Z",
            "2026-11-21T14:19:00Z",
            "20261121T1419Z",
            " 20261121T141900Z ",
        ] {
            let slow = NaiveDateTime::parse_from_str(s.trim(), DATE_FORMAT)
                .ok()
                .map(|n| n.and_utc());
            assert_eq!(parse_date(s), slow, "{s}");
        }
        let t = DateTime::parse_from_rfc3339("2026-11-21T14:19:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(format_date(t), t.format(DATE_FORMAT).to_string());
    }
}
