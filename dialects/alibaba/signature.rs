//! Alibaba Cloud POP request signatures, verified exactly as the fnf SDKs compute them.
//!
//! Two schemes reach the gateway (see `shared/vectors/README.md` §3.1–3.2):
//!
//! * **RPC signature v1** (HMAC-SHA1, `SignatureVersion=1.0`): the generated
//!   `alibabacloud_fnf20190315` client and the legacy `aliyunsdkcore` client. The signature
//!   travels as the `Signature` query parameter and covers every query and form-body
//!   parameter, nothing else.
//! * **ACS3-HMAC-SHA256**: the generic Darabonba client (and possibly other languages' SDKs).
//!   The signature travels in `Authorization` and covers the method, path, query, the headers
//!   listed in `SignedHeaders` and the SHA-256 of the body.
//!
//! The server side is [`Verifier::authenticate`]; it checks, in order: scheme, access key,
//! timestamp, clock skew, signature (constant time), then nonce replay. Client-side helpers
//! ([`sign_rpc_v1`], [`sign_rpc_v1_split`], [`sign_acs3`], [`encode_form`]) produce requests
//! the verifier accepts, so the load generator and tests sign with the same code. The pure
//! building blocks (percent-encoding, canonical forms, strings-to-sign) are public as well,
//! for debugging and for the tests that pin them to the captured SDK traffic.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::dialects::RawRequest;
use crate::model::AuthFailure;

/// The only `SignatureMethod` RPC v1 supports here (and the only one the fnf SDKs send).
pub const RPC_V1_SIGNATURE_METHOD: &str = "HMAC-SHA1";
/// The only `SignatureVersion` RPC v1 supports.
pub const RPC_V1_SIGNATURE_VERSION: &str = "1.0";
/// The ACS3 algorithm token accepted in `Authorization` (`ACS3-HMAC-SM3` and
/// `ACS3-RSA-SHA256` are rejected as unsupported).
pub const ACS3_ALGORITHM: &str = "ACS3-HMAC-SHA256";
/// Format of RPC v1 `Timestamp` and ACS3 `x-acs-date` (UTC, no fraction), for example
/// `2026-11-21T14:18:38Z`.
pub const TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";
/// The window Alibaba's POP gateway allows between request time and server time, and the
/// default for how long a nonce is remembered: 15 minutes.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Bytes that RFC 3986 leaves unescaped: `A-Z a-z 0-9 - _ . ~`. Everything else is escaped.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

type HmacSha1 = Hmac<Sha1>;
type HmacSha256 = Hmac<Sha256>;

// ------------------------------------------------------------------------------------------
// Percent-encoding and form parsing
// ------------------------------------------------------------------------------------------

/// RFC 3986 percent-encoding of the UTF-8 bytes of `s`, as both Alibaba schemes use it:
/// `A-Z a-z 0-9 - _ . ~` stay, every other byte becomes `%XX` with upper-case hex. So a space
/// is `%20` (never `+`), `*` is `%2A`, `/` is `%2F` and `~` stays.
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, ESCAPED).to_string()
}

/// Decodes one `application/x-www-form-urlencoded` component (query or body): `+` becomes a
/// space and `%XX` a byte; malformed escapes are kept literally and invalid UTF-8 is replaced
/// by U+FFFD. Both SDK families send query and body in this form.
pub fn form_decode(s: &str) -> String {
    if s.contains('+') {
        let spaced = s.replace('+', " ");
        percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
    } else {
        percent_decode_str(s).decode_utf8_lossy().into_owned()
    }
}

/// Splits a form-encoded string (a raw query or a form body) into decoded `(name, value)`
/// pairs in wire order. Empty segments are skipped; a segment without `=` has an empty value;
/// empty values are kept (the legacy SDK signs `SignatureType=`).
pub fn parse_form(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

/// Encodes parameters as `name=value&...` with [`percent_encode`] on both sides, in the
/// given order: usable as a query string or as an `application/x-www-form-urlencoded` body.
/// Spaces come out as `%20`, which every form decoder (and [`form_decode`]) accepts.
pub fn encode_form(params: &[(String, String)]) -> String {
    let mut out = String::with_capacity(
        params
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum::<usize>()
            * 2,
    );
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        push_encoded(&mut out, k, false);
        out.push('=');
        push_encoded(&mut out, v, false);
    }
    out
}

/// Whether the request's `Content-Type` is `application/x-www-form-urlencoded` (any
/// parameters such as `; charset=UTF-8` allowed, case-insensitive). Only then do body
/// parameters take part in an RPC v1 signature.
pub fn is_form_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .map(|v| {
            let ct = String::from_utf8_lossy(v.as_bytes());
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
        .unwrap_or(false)
}

/// The decoded form-body parameters of a request, or none when its content type is not
/// form-urlencoded: what the server should pass as `form_params` to
/// [`Verifier::authenticate`] (and merge over the query for the business parameters).
pub fn form_params(req: &RawRequest<'_>) -> Vec<(String, String)> {
    if !is_form_content_type(req.headers) || req.body.is_empty() {
        return Vec::new();
    }
    parse_form(&String::from_utf8_lossy(req.body))
}

/// Hex SHA-256 of some bytes: the ACS3 `HashedPayload` and `x-acs-content-sha256` value.
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

/// Constant-time equality of two strings (the length is not secret).
fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

// ------------------------------------------------------------------------------------------
// RPC signature v1 (HMAC-SHA1)
// ------------------------------------------------------------------------------------------

/// The parameter set an RPC v1 signature covers: every query parameter except `Signature`,
/// then every form parameter, a later value replacing an earlier one of the same name (so the
/// body wins over the query, as in the SDKs, which sign one merged map). Sorted by name.
///
/// `form_params` must be empty unless the body is form-urlencoded (see [`form_params`]).
pub fn rpc_v1_signed_params(
    raw_query: &str,
    form_params: &[(String, String)],
) -> Vec<(String, String)> {
    merge_params(&parse_form(raw_query), form_params)
}

fn merge_params(query: &[(String, String)], form: &[(String, String)]) -> Vec<(String, String)> {
    let mut merged: BTreeMap<&str, &str> = BTreeMap::new();
    for (k, v) in query.iter().chain(form) {
        if k != "Signature" {
            merged.insert(k, v);
        }
    }
    merged
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// The RPC v1 canonicalized query string: every `(name, value)` except `Signature` is
/// [`percent_encode`]d, the pairs are sorted by encoded name (then encoded value) in byte
/// order, and joined as `name=value&...`. For the alphanumeric names every SDK sends this is
/// the same order as sorting the raw names.
pub fn rpc_v1_canonical_query(params: &[(String, String)]) -> String {
    canonical_pairs(params.iter().filter(|(k, _)| k != "Signature"))
}

/// Encodes, sorts (by encoded name, then encoded value) and joins pairs as `k=v&...`.
fn canonical_pairs<'a>(params: impl Iterator<Item = &'a (String, String)>) -> String {
    let mut out = String::new();
    for (i, (k, v)) in sorted_by_encoding(params).into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        push_encoded(&mut out, k, false);
        out.push('=');
        push_encoded(&mut out, v, false);
    }
    out
}

/// Which bytes RFC 3986 leaves unescaped: `A-Z a-z 0-9 - _ . ~`.
static UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~');
        b += 1;
    }
    table
};

/// Whether a byte stays as it is under RFC 3986 percent-encoding.
fn unreserved(b: u8) -> bool {
    UNRESERVED[b as usize]
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// The RFC 3986 encoding of `s` as a byte stream, without allocating it (for sorting).
fn encoded_bytes(s: &str) -> impl Iterator<Item = u8> + '_ {
    s.bytes().flat_map(|b| {
        let (len, bytes) = if unreserved(b) {
            (1, [b, 0, 0])
        } else {
            (
                3,
                [
                    b'%',
                    HEX_UPPER[(b >> 4) as usize],
                    HEX_UPPER[(b & 0xf) as usize],
                ],
            )
        };
        bytes.into_iter().take(len)
    })
}

/// Pairs sorted by encoded name, then encoded value (byte order), without encoding them.
fn sorted_by_encoding<'a>(
    params: impl Iterator<Item = &'a (String, String)>,
) -> Vec<&'a (String, String)> {
    let mut v: Vec<&(String, String)> = params.collect();
    v.sort_by(|a, b| {
        encoded_bytes(&a.0)
            .cmp(encoded_bytes(&b.0))
            .then_with(|| encoded_bytes(&a.1).cmp(encoded_bytes(&b.1)))
    });
    v
}

/// Appends the percent-encoding of `s`; `twice` appends the encoding of the encoding (what
/// the RPC v1 StringToSign holds for each name and value), in one pass. Runs of unreserved
/// bytes are copied as they are.
fn push_encoded(out: &mut String, s: &str, twice: bool) {
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if unreserved(b) {
            continue;
        }
        // A run of unreserved bytes is ASCII, so both ends are character boundaries.
        if run < i {
            out.push_str(&s[run..i]);
        }
        let hex = [HEX_UPPER[(b >> 4) as usize], HEX_UPPER[(b & 0xf) as usize]];
        out.push_str(if twice { "%25" } else { "%" });
        out.push_str(std::str::from_utf8(&hex).expect("hex digits are ASCII"));
        run = i + 1;
    }
    if run < bytes.len() {
        out.push_str(&s[run..]);
    }
}

/// A borrowed `(name, value)` parameter.
pub type ParamRef<'a> = (&'a str, &'a str);

/// The RPC v1 signed set of decoded parameters given in wire order (query first, then form
/// body): `Signature` left out, a later pair replacing an earlier one of the same name, sorted
/// by encoded name (the order [`rpc_v1_string_to_sign`] uses; names are unique here). Also
/// returns the `Signature` value (the last one sent). Allocates one small vector.
fn signed_set<'a>(
    pairs: impl Iterator<Item = ParamRef<'a>>,
) -> (Vec<ParamRef<'a>>, Option<&'a str>) {
    let mut signature = None;
    let mut set: Vec<ParamRef<'a>> = Vec::with_capacity(16);
    for (k, v) in pairs {
        if k == "Signature" {
            signature = Some(v);
        } else {
            set.push((k, v));
        }
    }
    // Stable, so pairs of one name keep their wire order; the last of a run wins.
    set.sort_by(|a, b| a.0.cmp(b.0));
    set.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 = later.1;
        }
        same
    });
    // Raw byte order equals encoded order unless a name holds a byte that gets escaped.
    if !set.iter().all(|(k, _)| k.bytes().all(unreserved)) {
        set.sort_by(|a, b| encoded_bytes(a.0).cmp(encoded_bytes(b.0)));
    }
    (set, signature)
}

/// Writes the RPC v1 StringToSign of pairs already in signing order (see
/// [`rpc_v1_string_to_sign`]).
fn write_string_to_sign(out: &mut String, method: &str, pairs: &[ParamRef<'_>]) {
    for b in method.bytes() {
        out.push(b.to_ascii_uppercase() as char);
    }
    out.push_str("&%2F&");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push_str("%26");
        }
        push_encoded(out, k, true);
        out.push_str("%3D");
        push_encoded(out, v, true);
    }
}

/// Room for the StringToSign of these pairs without growing (every byte may triple).
fn string_to_sign_capacity(pairs: &[ParamRef<'_>]) -> usize {
    16 + pairs
        .iter()
        .map(|(k, v)| 3 * (k.len() + v.len()) + 6)
        .sum::<usize>()
}

/// The RPC v1 StringToSign: `METHOD&%2F&` + [`percent_encode`]`(canonical query)`, where the
/// canonical query is [`rpc_v1_canonical_query`] of `params`. The method is upper-cased. This
/// is also the text the legacy SDK expects after `server string to sign is:` in a
/// `SignatureDoesNotMatch` message. Built in one buffer: encoding the canonical query again
/// turns each pair's `=` into `%3D`, each `&` into `%26` and each `%XX` into `%25XX`.
pub fn rpc_v1_string_to_sign(method: &str, params: &[(String, String)]) -> String {
    let pairs: Vec<ParamRef<'_>> =
        sorted_by_encoding(params.iter().filter(|(k, _)| k != "Signature"))
            .into_iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
    let mut out = String::with_capacity(string_to_sign_capacity(&pairs));
    write_string_to_sign(&mut out, method, &pairs);
    out
}

/// The RPC v1 signature: `Base64(HMAC-SHA1(key = secret + "&", string_to_sign))`.
pub fn rpc_v1_signature(secret: &str, string_to_sign: &str) -> String {
    let sig = rpc_v1_signature_bytes(secret, string_to_sign.as_bytes());
    String::from_utf8_lossy(&sig).into_owned()
}

/// Length of an RPC v1 signature: Base64 of the 20 bytes of a SHA-1 MAC.
const RPC_V1_SIGNATURE_LEN: usize = 28;

/// [`rpc_v1_signature`] as Base64 bytes on the stack.
fn rpc_v1_signature_bytes(secret: &str, string_to_sign: &[u8]) -> [u8; RPC_V1_SIGNATURE_LEN] {
    // The key is `secret + "&"`; built on the stack when it fits one SHA-1 block.
    let mut key = [0u8; 64];
    let mut mac = if secret.len() < key.len() {
        key[..secret.len()].copy_from_slice(secret.as_bytes());
        key[secret.len()] = b'&';
        HmacSha1::new_from_slice(&key[..=secret.len()])
    } else {
        HmacSha1::new_from_slice(format!("{secret}&").as_bytes())
    }
    .expect("HMAC accepts keys of any length");
    mac.update(string_to_sign);
    let mut out = [0u8; RPC_V1_SIGNATURE_LEN];
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(mac.finalize().into_bytes(), &mut out)
        .expect("28 bytes hold the Base64 of 20");
    debug_assert_eq!(n, RPC_V1_SIGNATURE_LEN);
    out
}

/// Formats a time as an RPC v1 `Timestamp` / ACS3 `x-acs-date` ([`TIMESTAMP_FORMAT`]).
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    crate::model::time::format_utc(&t, false)
        .unwrap_or_else(|| t.format(TIMESTAMP_FORMAT).to_string())
}

/// The exact `YYYY-MM-DDTHH:MM:SSZ` shape every SDK sends, without going through a format
/// string; anything else (or a value chrono would read differently, such as a leap second)
/// is `None` and takes the general parser.
fn parse_sdk_timestamp(s: &[u8]) -> Option<DateTime<Utc>> {
    if s.len() != 20
        || s[4] != b'-'
        || s[7] != b'-'
        || s[10] != b'T'
        || s[13] != b':'
        || s[16] != b':'
        || s[19] != b'Z'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        s[from..to].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let second = num(17, 19)?;
    if second >= 60 {
        return None;
    }
    chrono::NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(5, 7)?, num(8, 10)?)?
        .and_hms_opt(num(11, 13)?, num(14, 16)?, second)
        .map(|n| n.and_utc())
}

/// Parses an RPC v1 `Timestamp` / ACS3 `x-acs-date`: [`TIMESTAMP_FORMAT`] as the SDKs send
/// it, or any RFC 3339 time (fractional seconds, offsets) for hand-written clients.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Some(t) = parse_sdk_timestamp(s.as_bytes()) {
        return Some(t);
    }
    NaiveDateTime::parse_from_str(s, TIMESTAMP_FORMAT)
        .map(|n| n.and_utc())
        .ok()
        .or_else(|| {
            DateTime::parse_from_rfc3339(s)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        })
}

/// Client side: signs an RPC v1 request whose parameters all travel in the query (or all
/// together in one list). Sets `AccessKeyId`, `SignatureMethod`, `SignatureVersion`,
/// `SignatureNonce` and `Timestamp` (replacing any present; the caller adds `Action`,
/// `Version`, `Format` and the business parameters), signs every parameter, appends
/// `Signature` and returns it. Send the result with [`encode_form`] as the query string.
pub fn sign_rpc_v1(
    method: &str,
    params: &mut Vec<(String, String)>,
    access_key_id: &str,
    secret: &str,
    now: DateTime<Utc>,
    nonce: &str,
) -> String {
    sign_rpc_v1_split(method, params, &[], access_key_id, secret, now, nonce)
}

/// Client side: like [`sign_rpc_v1`] for a request that keeps its business parameters in a
/// form body (as the SDKs do for POST actions). The common parameters and `Signature` are
/// added to `query`; the signature covers `query` and `form` merged (form wins on a clash),
/// which is what [`Verifier::authenticate`] checks when the body is sent as
/// `application/x-www-form-urlencoded` (e.g. [`encode_form`]`(form)`). Returns the signature.
pub fn sign_rpc_v1_split(
    method: &str,
    query: &mut Vec<(String, String)>,
    form: &[(String, String)],
    access_key_id: &str,
    secret: &str,
    now: DateTime<Utc>,
    nonce: &str,
) -> String {
    let common = [
        ("AccessKeyId", access_key_id.to_owned()),
        ("SignatureMethod", RPC_V1_SIGNATURE_METHOD.to_owned()),
        ("SignatureVersion", RPC_V1_SIGNATURE_VERSION.to_owned()),
        ("SignatureNonce", nonce.to_owned()),
        ("Timestamp", format_timestamp(now)),
    ];
    query.retain(|(k, _)| k != "Signature" && !common.iter().any(|(c, _)| k == c));
    query.extend(common.into_iter().map(|(k, v)| (k.to_owned(), v)));
    let (pairs, _) = signed_set(
        query
            .iter()
            .chain(form)
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let mut sts = String::with_capacity(string_to_sign_capacity(&pairs));
    write_string_to_sign(&mut sts, method, &pairs);
    let signature = rpc_v1_signature(secret, &sts);
    query.push(("Signature".to_owned(), signature.clone()));
    signature
}

// ------------------------------------------------------------------------------------------
// ACS3-HMAC-SHA256
// ------------------------------------------------------------------------------------------

/// A parsed `Authorization: ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=a;b,Signature=hex`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acs3Authorization {
    /// The algorithm token (always [`ACS3_ALGORITHM`] once parsed successfully).
    pub algorithm: String,
    /// The access key id (`Credential=`).
    pub credential: String,
    /// The signed header names, in the order listed (the SDK lists them lower-case, sorted).
    pub signed_headers: Vec<String>,
    /// The hex signature as sent.
    pub signature: String,
}

/// Parses an ACS3 `Authorization` value. The fields are comma-separated (spaces around them
/// tolerated). Another `ACS3-*` algorithm (`ACS3-HMAC-SM3`, `ACS3-RSA-SHA256`) or a missing
/// field gives `Missing` with a message saying what is wrong.
pub fn parse_acs3_authorization(value: &str) -> Result<Acs3Authorization, AuthFailure> {
    let value = value.trim();
    let (algorithm, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
    if algorithm != ACS3_ALGORITHM {
        return Err(AuthFailure::Missing(format!(
            "signature algorithm '{algorithm}' is not supported; sign with {ACS3_ALGORITHM} \
             or RPC signature v1 (HMAC-SHA1)"
        )));
    }
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for item in rest.split(',') {
        let Some((k, v)) = item.trim().split_once('=') else {
            continue;
        };
        match k.trim() {
            "Credential" => credential = Some(v.trim().to_owned()),
            "SignedHeaders" => signed = Some(v.trim().to_owned()),
            "Signature" => signature = Some(v.trim().to_owned()),
            _ => {}
        }
    }
    let missing = |what: &str| {
        AuthFailure::Missing(format!(
            "malformed {ACS3_ALGORITHM} Authorization header: no {what}"
        ))
    };
    let credential = credential
        .filter(|c| !c.is_empty())
        .ok_or_else(|| missing("Credential"))?;
    let signed = signed.ok_or_else(|| missing("SignedHeaders"))?;
    let signature = signature
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("Signature"))?;
    Ok(Acs3Authorization {
        algorithm: algorithm.to_owned(),
        credential,
        signed_headers: signed
            .split(';')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect(),
        signature,
    })
}

/// The ACS3 canonical query: the raw query decoded with form rules (`+` is a space), every
/// name and value [`percent_encode`]d, sorted by encoded name then value, joined as
/// `name=value&...`; empty when there is no query. On the wire a space is `+`; here it is
/// `%20`.
pub fn acs3_canonical_query(raw_query: &str) -> String {
    canonical_pairs(parse_form(raw_query).iter())
}

/// The trimmed values of one header (all occurrences), sorted and joined with `,`; empty
/// when absent.
fn joined_header(headers: &HeaderMap, name: &str) -> String {
    let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
        return String::new();
    };
    let mut values: Vec<String> = headers
        .get_all(&name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
        .collect();
    values.sort();
    values.join(",")
}

/// The ACS3 canonical headers block: for each signed name in the given order,
/// `name:value\n`, where value is every occurrence of that header trimmed, sorted and joined
/// with `,` (empty when absent). Names are looked up case-insensitively.
pub fn acs3_canonical_headers<S: AsRef<str>>(headers: &HeaderMap, signed_headers: &[S]) -> String {
    let mut out = String::new();
    for name in signed_headers {
        let name = name.as_ref();
        out.push_str(name);
        out.push(':');
        out.push_str(&joined_header(headers, &name.to_ascii_lowercase()));
        out.push('\n');
    }
    out
}

/// The ACS3 canonical request:
/// `METHOD\nURI\nCanonicalQuery\nCanonicalHeaders\nSignedHeaders\nHashedPayload`, where URI is
/// the raw path (`/` when empty: every RPC-style call uses `/`), the query is
/// [`acs3_canonical_query`], the headers block is [`acs3_canonical_headers`] (it ends in `\n`,
/// so an empty line precedes SignedHeaders) and SignedHeaders is the names joined with `;`.
pub fn acs3_canonical_request<S: AsRef<str>>(
    method: &str,
    path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    signed_headers: &[S],
    hashed_payload: &str,
) -> String {
    let signed: Vec<&str> = signed_headers.iter().map(AsRef::as_ref).collect();
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        if path.is_empty() { "/" } else { path },
        acs3_canonical_query(raw_query),
        acs3_canonical_headers(headers, &signed),
        signed.join(";"),
        hashed_payload
    )
}

/// The ACS3 StringToSign: `ACS3-HMAC-SHA256\n` + hex SHA-256 of the canonical request.
pub fn acs3_string_to_sign(canonical_request: &str) -> String {
    format!(
        "{ACS3_ALGORITHM}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The ACS3 signature: lower-case hex `HMAC-SHA256(key = secret, string_to_sign)` (the plain
/// secret, no `&`).
pub fn acs3_signature(secret: &str, string_to_sign: &str) -> String {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// Client side: signs a request with ACS3-HMAC-SHA256 as the Darabonba SDK does. Sets
/// `x-acs-date` (from `now`), `x-acs-signature-nonce` and `x-acs-content-sha256` (of `body`),
/// signs **every header present in `headers`** (except `authorization`), sets
/// `Authorization` and returns its value. Put `host`, `x-acs-action`, `x-acs-version` and
/// `content-type` into `headers` first, exactly as they will be sent; headers the HTTP
/// library adds later (`accept-encoding`, `content-length`) are then simply not signed.
#[allow(clippy::too_many_arguments)]
pub fn sign_acs3(
    method: &str,
    path: &str,
    raw_query: &str,
    headers: &mut HeaderMap,
    body: &[u8],
    access_key_id: &str,
    secret: &str,
    now: DateTime<Utc>,
    nonce: &str,
) -> String {
    let hashed_payload = sha256_hex(body);
    let set = |headers: &mut HeaderMap, name: &'static str, value: &str| {
        let value = HeaderValue::from_str(value).expect("ASCII header value");
        headers.insert(HeaderName::from_static(name), value);
    };
    set(headers, "x-acs-date", &format_timestamp(now));
    set(headers, "x-acs-signature-nonce", nonce);
    set(headers, "x-acs-content-sha256", &hashed_payload);
    headers.remove(axum::http::header::AUTHORIZATION);
    let mut signed: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
    signed.sort_unstable();
    signed.dedup();
    let creq = acs3_canonical_request(method, path, raw_query, headers, &signed, &hashed_payload);
    let signature = acs3_signature(secret, &acs3_string_to_sign(&creq));
    let value = format!(
        "{ACS3_ALGORITHM} Credential={access_key_id},SignedHeaders={},Signature={signature}",
        signed.join(";")
    );
    headers.insert(
        axum::http::header::AUTHORIZATION,
        HeaderValue::from_str(&value).expect("ASCII Authorization value"),
    );
    value
}

// ------------------------------------------------------------------------------------------
// Server side
// ------------------------------------------------------------------------------------------

/// Which Alibaba scheme a request was signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// RPC signature v1: HMAC-SHA1, `Signature` query parameter.
    RpcV1,
    /// ACS3-HMAC-SHA256 in the `Authorization` header.
    Acs3,
}

/// A request that passed [`Verifier::authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The access key id that signed it.
    pub access_key_id: String,
    /// The scheme it was signed with (RPC v1 carries Action/Version in the query, ACS3 only
    /// in the `x-acs-action` / `x-acs-version` headers).
    pub scheme: Scheme,
}

/// Verifies Alibaba request signatures and remembers nonces to reject replays. One instance
/// is shared by the whole server (it is `Send + Sync`).
///
/// # The replay cache
///
/// A replay carries the same signed request time (`Timestamp` / `x-acs-date`) as the original
/// along with the same nonce, so nonces are remembered by request time: one bucket per whole
/// second of request time (the SDKs' resolution; the floor of the Unix seconds), holding a
/// 64-bit keyed hash of each nonce. The cache is one `BTreeMap` of buckets behind one mutex
/// (the critical section is a map lookup and a hash-set insert), so recording a nonce is
/// atomic: two concurrent copies of one request cannot both pass.
///
/// * **Expiry.** A bucket is kept until its request times are more than the clock skew in the
///   past (the clock check refuses them from then on) and, in any case, for the nonce window
///   after its latest nonce was recorded. The oldest buckets are checked on every insert and
///   all of them by [`Verifier::prune`]. Expiry is judged against the verifier's clock, the
///   latest `now` it has seen; a request time more than the skew before that clock is refused
///   as `ClockSkew` when its nonce is recorded, so a request that read the clock just before
///   another thread forgot its bucket cannot slip through. Forgetting expired buckets never
///   raises the floor (below): it refuses nothing the clock check does not.
/// * **Capacity.** When recording a nonce would take the cache past its capacity
///   (`auth.nonce_cache_capacity`, [`DEFAULT_NONCE_CAPACITY`]), whole buckets are evicted
///   from the oldest request time upward and the *floor* rises to the end of the newest
///   evicted one. From then on a request whose time is before the floor is refused
///   (`ReplayWindowFull`), so a replay of an evicted nonce can never pass: protection stays
///   exact, and old requests are refused instead. The bucket of the request being recorded
///   (and any later one) is never evicted, nor any bucket of the last few seconds by the
///   server's clock (`FLOOR_LAG_SECONDS`), so requests signed just now are never refused for
///   room, and a flood of requests dated ahead (as far as the clock skew allows) cannot push
///   the floor past them: when every remembered nonce is that recent, the cache grows past the
///   capacity (a soft cap) until time moves on and it can evict again.
/// * **Memory.** About 16 bytes a nonce (a `u64` and a control byte per hash-set slot, the
///   sets between 7/16 and 7/8 full, so 10 to 21 bytes), plus about 150 bytes per second of
///   request time remembered (its map entry and smallest set): about 4 MiB at the default
///   capacity, whatever the request rate.
/// * **False replays.** Two different nonces are confused only when they have the same
///   request second and the same 64-bit hash: a fresh request is refused as `NonceReused`
///   with probability about (nonces in its second) / 2^64. The hash is keyed with random keys
///   per process, so nobody can aim for a collision; a real replay always matches.
#[derive(Debug)]
pub struct Verifier {
    /// How far a request's time may be from the server's clock, either way.
    skew: TimeDelta,
    /// How long a nonce is remembered at least after it was recorded.
    nonce_ttl: TimeDelta,
    /// How many nonces the cache holds before it evicts (see the type's documentation).
    capacity: usize,
    /// The keyed hash a nonce is remembered as.
    nonce_hasher: ahash::RandomState,
    /// The replay cache.
    nonces: Mutex<NonceCache>,
}

/// The default of `auth.nonce_cache_capacity`: how many nonces a [`Verifier`]'s replay cache
/// holds before it evicts the oldest request times (about 4 MiB).
pub const DEFAULT_NONCE_CAPACITY: usize = 262_144;

/// A `Hasher` for values that already are keyed hashes (`u64`s): passes them through, so the
/// hash set spends no time re-hashing.
#[derive(Debug, Default, Clone, Copy)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64`s are hashed here (`write_u64`); fold anything else rather than drop it.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The nonces of one request second, as keyed 64-bit hashes.
type NonceSet = HashSet<u64, BuildHasherDefault<PassThrough>>;

/// The nonces recorded for one second of request time.
struct Bucket {
    /// Keyed hashes of the nonces.
    nonces: NonceSet,
    /// When the bucket may be forgotten, in Unix nanoseconds: the later of its last second's
    /// end plus the clock skew and its latest insert plus the nonce window.
    expires: i64,
}

/// The replay cache behind the [`Verifier`]'s mutex.
struct NonceCache {
    /// Request second (Unix seconds, floored) → its bucket.
    buckets: BTreeMap<i64, Bucket>,
    /// How many nonces the buckets hold together.
    len: usize,
    /// Request times before this Unix second are refused (`i64::MIN` until a bucket has
    /// been evicted for room).
    floor: i64,
    /// The latest `now` seen, in Unix nanoseconds: what expiry is judged against.
    clock: i64,
}

impl std::fmt::Debug for NonceCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceCache")
            .field("len", &self.len)
            .field("buckets", &self.buckets.len())
            .field("floor", &self.floor)
            .field("clock", &self.clock)
            .finish()
    }
}

impl NonceCache {
    /// Forgets the oldest buckets (by request time) while they have expired. Amortised: a
    /// later bucket that expired behind a live one waits for [`Verifier::prune`].
    fn drop_expired_front(&mut self) {
        while let Some(entry) = self.buckets.first_entry() {
            if entry.get().expires > self.clock {
                break;
            }
            self.len -= entry.remove().nonces.len();
        }
    }

    /// Evicts buckets older than `second` (the request's, or a few seconds before the
    /// clock when that is earlier), oldest first, until the cache holds at most
    /// `capacity` nonces, raising the floor past every live bucket evicted.
    fn evict_for_room(&mut self, second: i64, capacity: usize) {
        while self.len > capacity {
            let Some(entry) = self.buckets.first_entry() else {
                break;
            };
            let evicted = *entry.key();
            if evicted >= second {
                break; // Soft cap: never the bucket just written to (or a later one).
            }
            let bucket = entry.remove();
            self.len -= bucket.nonces.len();
            if bucket.expires > self.clock {
                self.floor = self.floor.max(evicted.saturating_add(1));
            }
        }
    }
}

/// How far behind the server's clock (in seconds) the replay cache's floor may rise at most.
const FLOOR_LAG_SECONDS: i64 = 5;

/// A time as Unix nanoseconds, saturating outside 1677..2262 (far beyond any window).
fn unix_nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// A `TimeDelta` in nanoseconds, saturating.
fn delta_nanos(d: TimeDelta) -> i64 {
    d.num_nanoseconds().unwrap_or(if d < TimeDelta::zero() {
        i64::MIN
    } else {
        i64::MAX
    })
}

impl Default for Verifier {
    /// A verifier with the clouds' 15-minute window ([`DEFAULT_WINDOW`]).
    fn default() -> Self {
        Verifier::new(DEFAULT_WINDOW)
    }
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

impl Verifier {
    /// A verifier that rejects requests whose time is more than `window` from the server's
    /// clock and remembers each nonce for as long as its request could still be accepted, up
    /// to [`DEFAULT_NONCE_CAPACITY`] nonces.
    pub fn new(window: Duration) -> Self {
        Verifier::with_windows(window, window)
    }

    /// A verifier with separate limits (`auth.clock_skew_seconds`,
    /// `auth.nonce_window_seconds`) and the default capacity ([`DEFAULT_NONCE_CAPACITY`]):
    /// a nonce is remembered for `nonce_window` after it was seen, and in any case until its
    /// request time is more than `clock_skew` in the past, so no replay can ever pass the
    /// clock check with a forgotten nonce.
    pub fn with_windows(clock_skew: Duration, nonce_window: Duration) -> Self {
        Verifier::with_limits(clock_skew, nonce_window, DEFAULT_NONCE_CAPACITY)
    }

    /// [`Verifier::with_windows`] whose replay cache holds at most `nonce_capacity` nonces
    /// (`auth.nonce_cache_capacity`; 0 is taken as 1). Beyond that the nonces of the oldest
    /// request times are evicted and requests that old are refused (see the type's
    /// documentation).
    pub fn with_limits(
        clock_skew: Duration,
        nonce_window: Duration,
        nonce_capacity: usize,
    ) -> Self {
        Verifier {
            skew: delta(clock_skew),
            nonce_ttl: delta(nonce_window),
            capacity: nonce_capacity.max(1),
            nonce_hasher: ahash::RandomState::new(),
            nonces: Mutex::new(NonceCache {
                buckets: BTreeMap::new(),
                len: 0,
                floor: i64::MIN,
                clock: i64::MIN,
            }),
        }
    }

    /// The replay cache, locked (nothing panics while it is held, so poisoning is ignored).
    fn cache(&self) -> MutexGuard<'_, NonceCache> {
        self.nonces.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many nonces are currently remembered (an expired bucket counts until it is
    /// dropped: the oldest are checked on every insert, all of them by [`Verifier::prune`]);
    /// at most the capacity except in the soft-cap case of the type's documentation. For
    /// metrics and tests.
    pub fn nonce_count(&self) -> usize {
        self.cache().len
    }

    /// Forgets every bucket of nonces that expired at `now` (and advances the verifier's
    /// clock to `now` if it is later). Expired buckets are also dropped as nonces are
    /// recorded; a server may call this from a periodic task to release memory sooner. It
    /// never raises the floor: nothing is refused that the clock check would not refuse.
    pub fn prune(&self, now: DateTime<Utc>) {
        let mut cache = self.cache();
        cache.clock = cache.clock.max(unix_nanos(now));
        let clock = cache.clock;
        cache.buckets.retain(|_, b| b.expires > clock);
        cache.len = cache.buckets.values().map(|b| b.nonces.len()).sum();
    }

    /// Authenticates one request.
    ///
    /// * `req`: the request as received (raw query, headers, body).
    /// * `form_params`: its decoded form-body parameters ([`form_params`]); they are signed
    ///   only when the content type is `application/x-www-form-urlencoded`, and ignored
    ///   otherwise.
    /// * `secret_for`: the secret of an access key id, `None` when unknown.
    /// * `now`: the server's clock (injected for tests).
    ///
    /// Checks in order: the scheme (`Authorization: ACS3-…` → ACS3, a `Signature` parameter →
    /// RPC v1, anything else → `Missing`), the access key (`UnknownKey`), the timestamp
    /// (missing or unparseable → `Missing`; more than the window either way → `ClockSkew`),
    /// the nonce's presence (`Missing`), the signature (`BadSignature` with the server's
    /// StringToSign; constant-time comparison), and finally nonce replay (`NonceReused`; or
    /// `ReplayWindowFull` when the request time is older than the replay cache still covers,
    /// see [`Verifier`]). A nonce is recorded only when everything else passed.
    pub fn authenticate(
        &self,
        req: &RawRequest<'_>,
        form_params: &[(String, String)],
        secret_for: &dyn Fn(&str) -> Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Authenticated, AuthFailure> {
        let form: &[(String, String)] = if is_form_content_type(req.headers) {
            form_params
        } else {
            &[]
        };
        let query = parse_form(req.raw_query);
        let pairs = query
            .iter()
            .chain(form)
            .map(|(k, v)| (k.as_str(), v.as_str()));
        self.authenticate_decoded(req, pairs, secret_for, now)
    }

    /// [`Verifier::authenticate`] for a server that has decoded the parameters already (the
    /// RPC handler reads them once for both purposes). `pairs` are the query's decoded
    /// `(name, value)` pairs in wire order followed, **only when the content type is
    /// form-urlencoded** ([`is_form_content_type`]), by the form body's: exactly the pairs
    /// [`Verifier::authenticate`] decodes itself, with the same form rules ([`parse_form`]).
    /// The checks, their order and every failure are those of [`Verifier::authenticate`].
    pub fn authenticate_decoded<'a, S: AsRef<str>>(
        &self,
        req: &RawRequest<'_>,
        pairs: impl Iterator<Item = ParamRef<'a>>,
        secret_for: impl Fn(&str) -> Option<S>,
        now: DateTime<Utc>,
    ) -> Result<Authenticated, AuthFailure> {
        let authorization = req
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()));
        let authorization = authorization.as_deref().map(str::trim);
        if let Some(auth) = authorization {
            if auth.starts_with("ACS3-") {
                let owned = |ak: &str| secret_for(ak).map(|s| s.as_ref().to_owned());
                return self.authenticate_acs3(req, auth, &owned, now);
            }
        }
        let (params, signature) = signed_set(pairs);
        if let Some(signature) = signature {
            return self.authenticate_rpc_v1(req.method, &params, signature, &secret_for, now);
        }
        Err(AuthFailure::Missing(missing_message(
            authorization,
            &parse_form(req.raw_query),
            req.headers,
        )))
    }

    /// `params`: the signed set in signing order ([`signed_set`]).
    fn authenticate_rpc_v1<S: AsRef<str>>(
        &self,
        method: &str,
        params: &[ParamRef<'_>],
        signature: &str,
        secret_for: &impl Fn(&str) -> Option<S>,
        now: DateTime<Utc>,
    ) -> Result<Authenticated, AuthFailure> {
        let get = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        if let Some(m) = get("SignatureMethod") {
            if m != RPC_V1_SIGNATURE_METHOD {
                return Err(AuthFailure::Missing(format!(
                    "SignatureMethod '{m}' is not supported; use {RPC_V1_SIGNATURE_METHOD}"
                )));
            }
        }
        if let Some(v) = get("SignatureVersion") {
            if v != RPC_V1_SIGNATURE_VERSION {
                return Err(AuthFailure::Missing(format!(
                    "SignatureVersion '{v}' is not supported; use {RPC_V1_SIGNATURE_VERSION}"
                )));
            }
        }
        if let Some(t) = get("SignatureType").filter(|t| !t.is_empty()) {
            return Err(AuthFailure::Missing(format!(
                "SignatureType '{t}' is not supported; sign with an AccessKey (RPC signature v1 \
                 or {ACS3_ALGORITHM})"
            )));
        }
        let access_key_id = get("AccessKeyId")
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                AuthFailure::Missing("the AccessKeyId parameter must be specified".to_owned())
            })?;
        let secret = secret_for(access_key_id)
            .ok_or_else(|| AuthFailure::UnknownKey(access_key_id.to_owned()))?;
        let timestamp = get("Timestamp").ok_or_else(|| {
            AuthFailure::Missing("the Timestamp parameter must be specified".to_owned())
        })?;
        let request_time = self.check_time(timestamp, "Timestamp parameter", now)?;
        let nonce = get("SignatureNonce")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                AuthFailure::Missing("the SignatureNonce parameter must be specified".to_owned())
            })?;
        let mut string_to_sign = String::with_capacity(string_to_sign_capacity(params));
        write_string_to_sign(&mut string_to_sign, method, params);
        let expected = rpc_v1_signature_bytes(secret.as_ref(), string_to_sign.as_bytes());
        // Base64 has no spaces: a raw `+` sent unescaped was decoded as a space; undo that.
        let mut provided = [0u8; RPC_V1_SIGNATURE_LEN];
        let matches = signature.len() == RPC_V1_SIGNATURE_LEN && {
            for (p, b) in provided.iter_mut().zip(signature.bytes()) {
                *p = if b == b' ' { b'+' } else { b };
            }
            bool::from(expected.ct_eq(&provided))
        };
        if !matches {
            return Err(AuthFailure::BadSignature { string_to_sign });
        }
        self.record_nonce(nonce, timestamp, request_time, now)?;
        Ok(Authenticated {
            access_key_id: access_key_id.to_owned(),
            scheme: Scheme::RpcV1,
        })
    }

    fn authenticate_acs3(
        &self,
        req: &RawRequest<'_>,
        authorization: &str,
        secret_for: &dyn Fn(&str) -> Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Authenticated, AuthFailure> {
        let auth = parse_acs3_authorization(authorization)?;
        let secret = secret_for(&auth.credential)
            .ok_or_else(|| AuthFailure::UnknownKey(auth.credential.clone()))?;
        let header = |name: &str| {
            req.headers
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
        };
        let date = header("x-acs-date").ok_or_else(|| {
            AuthFailure::Missing("the x-acs-date header must be specified".to_owned())
        })?;
        let request_time = self.check_time(&date, "x-acs-date header", now)?;
        let nonce = header("x-acs-signature-nonce")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                AuthFailure::Missing(
                    "the x-acs-signature-nonce header must be specified".to_owned(),
                )
            })?;
        let hashed_payload = sha256_hex(req.body);
        let content_ok =
            header("x-acs-content-sha256").is_none_or(|h| h.eq_ignore_ascii_case(&hashed_payload));
        let creq = acs3_canonical_request(
            req.method,
            req.path,
            req.raw_query,
            req.headers,
            &auth.signed_headers,
            &hashed_payload,
        );
        let string_to_sign = acs3_string_to_sign(&creq);
        let expected = acs3_signature(&secret, &string_to_sign);
        let sig_ok = ct_eq(&expected, &auth.signature.to_ascii_lowercase());
        if !(sig_ok && content_ok) {
            return Err(AuthFailure::BadSignature { string_to_sign });
        }
        self.record_nonce(&nonce, &date, request_time, now)?;
        Ok(Authenticated {
            access_key_id: auth.credential,
            scheme: Scheme::Acs3,
        })
    }

    /// Parses a request time and checks it against the window.
    fn check_time(
        &self,
        raw: &str,
        what: &str,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, AuthFailure> {
        let t = parse_timestamp(raw).ok_or_else(|| {
            AuthFailure::Missing(format!(
                "the {what} '{raw}' is not a UTC time like 2024-01-01T00:00:00Z"
            ))
        })?;
        let diff = if t > now { t - now } else { now - t };
        if diff > self.skew {
            return Err(AuthFailure::ClockSkew {
                request_time: raw.to_owned(),
                server_time: format_timestamp(now),
            });
        }
        Ok(t)
    }

    /// Records a nonce, or fails when it is still remembered (`NonceReused`) or its request
    /// time is before the cache's floor (`ReplayWindowFull`) or more than the skew before the
    /// verifier's clock (`ClockSkew`, see the type's documentation). Atomic per nonce, so two
    /// concurrent copies of one request cannot both pass. `raw_time`: the request time as
    /// sent, for the error.
    fn record_nonce(
        &self,
        nonce: &str,
        raw_time: &str,
        request_time: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), AuthFailure> {
        let second = request_time.timestamp();
        let skew = delta_nanos(self.skew);
        let expires = unix_nanos(now)
            .saturating_add(delta_nanos(self.nonce_ttl))
            .max(
                second
                    .saturating_add(1)
                    .saturating_mul(1_000_000_000)
                    .saturating_add(skew),
            );
        let hash = self.nonce_hasher.hash_one(nonce);
        let mut cache = self.cache();
        cache.clock = cache.clock.max(unix_nanos(now));
        if second < cache.floor {
            return Err(AuthFailure::ReplayWindowFull {
                request_time: raw_time.to_owned(),
                oldest_accepted: format_timestamp(
                    DateTime::from_timestamp(cache.floor, 0).unwrap_or(DateTime::<Utc>::MAX_UTC),
                ),
                capacity: self.capacity,
            });
        }
        // The clock check again, against the latest time any request (or prune) has seen:
        // buckets forgotten as expired hold only request times this refuses.
        if unix_nanos(request_time).saturating_add(skew) < cache.clock {
            return Err(AuthFailure::ClockSkew {
                request_time: raw_time.to_owned(),
                server_time: format_timestamp(DateTime::from_timestamp_nanos(cache.clock)),
            });
        }
        cache.drop_expired_front();
        // A new second's set starts at the size of the latest one: under a steady rate each
        // second then allocates one table of the size the evicted one frees, instead of a
        // chain of doublings (17 tables to reach 20 000 nonces) left for the allocator.
        let hint = cache
            .buckets
            .last_key_value()
            .map_or(0, |(_, b)| b.nonces.len().min(self.capacity));
        let bucket = cache.buckets.entry(second).or_insert_with(|| Bucket {
            nonces: NonceSet::with_capacity_and_hasher(hint, Default::default()),
            expires,
        });
        if !bucket.nonces.insert(hash) {
            return Err(AuthFailure::NonceReused(nonce.to_owned()));
        }
        bucket.expires = bucket.expires.max(expires);
        cache.len += 1;
        // The floor never passes the server's clock less a few seconds: a flood of requests
        // dated ahead (the clock check lets them be up to the skew ahead) cannot push out
        // everyone's current ones; such requests stay over the capacity until they expire.
        let clock_second = cache.clock.div_euclid(1_000_000_000);
        let limit = second.min(clock_second.saturating_sub(FLOOR_LAG_SECONDS));
        cache.evict_for_room(limit, self.capacity);
        Ok(())
    }
}

/// Why a request without a recognisable signature was rejected, as specifically as possible.
fn missing_message(
    authorization: Option<&str>,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> String {
    let bearer_param = query
        .iter()
        .any(|(k, v)| k == "BearerToken" || (k == "SignatureType" && v == "BEARERTOKEN"));
    let bearer_header =
        headers.contains_key("x-acs-bearer-token") || headers.contains_key("x-acs-signature-type");
    if let Some(auth) = authorization {
        let scheme = auth.split_whitespace().next().unwrap_or("");
        if scheme.eq_ignore_ascii_case("bearer") {
            return "bearer-token authentication is not supported; sign with an AccessKey \
                    (RPC signature v1 or ACS3-HMAC-SHA256)"
                .to_owned();
        }
        return format!(
            "Authorization scheme '{scheme}' is not supported; sign with RPC signature v1 \
             (HMAC-SHA1) or {ACS3_ALGORITHM}"
        );
    }
    if bearer_param || bearer_header {
        return "bearer-token authentication is not supported; sign with an AccessKey \
                (RPC signature v1 or ACS3-HMAC-SHA256)"
            .to_owned();
    }
    "the request is not signed: expected a Signature parameter (RPC signature v1) or an \
     Authorization: ACS3-HMAC-SHA256 header"
        .to_owned()
}

#[cfg(test)]
mod one_pass_tests {
    use super::*;

    #[test]
    fn the_one_pass_string_to_sign_equals_encoding_the_canonical_query_again() {
        let cases: Vec<Vec<(String, String)>> = vec![
            vec![("b".into(), "x y".into()), ("a".into(), "*~%=&".into())],
            vec![
                ("Input".into(), "{\"msg\": \"h\u{e9}llo \u{2603}\"}".into()),
                ("A-b".into(), "".into()),
            ],
            vec![
                ("k".into(), "2".into()),
                ("k".into(), "10".into()),
                ("K".into(), "1".into()),
            ],
            vec![
                ("Signature".into(), "ignored".into()),
                ("z".into(), "+/=".into()),
            ],
        ];
        for params in cases {
            let slow = format!(
                "POST&{}&{}",
                percent_encode("/"),
                percent_encode(&rpc_v1_canonical_query(&params))
            );
            assert_eq!(rpc_v1_string_to_sign("post", &params), slow, "{params:?}");
        }
    }

    /// The verifier's signed set (decoded pairs merged in place, sorted once) signs the same
    /// text as the definition: merge query and form (the form wins, `Signature` left out),
    /// then [`rpc_v1_string_to_sign`].
    #[test]
    fn the_signed_set_signs_what_merging_and_sorting_signs() {
        let p = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let cases = [
            (p(&[("b", "1"), ("a", "2"), ("Signature", "x")]), p(&[])),
            (p(&[("k", "1"), ("k", "2")]), p(&[("k", "3"), ("j", " ")])),
            (
                p(&[("a b", "1"), ("a*", "2"), ("a-", "3"), ("aé", "4")]),
                p(&[("a~", "5")]),
            ),
            (
                p(&[("Z", "1"), ("a", "2")]),
                p(&[("Signature", "y"), ("_", "3")]),
            ),
        ];
        for (query, form) in cases {
            let slow = rpc_v1_string_to_sign("GET", &merge_params(&query, &form));
            let (set, signature) = signed_set(
                query
                    .iter()
                    .chain(&form)
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            );
            let mut fast = String::new();
            write_string_to_sign(&mut fast, "get", &set);
            assert_eq!(fast, slow, "{query:?} {form:?}");
            let last = query
                .iter()
                .chain(&form)
                .rev()
                .find(|(k, _)| k == "Signature")
                .map(|(_, v)| v.as_str());
            assert_eq!(signature, last);
        }
    }

    #[test]
    fn sdk_timestamps_parse_as_chrono_reads_them() {
        for s in [
            "2026-11-21T14:18:38Z",
            "2024-02-29T23:59:59Z",
            "2023-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-21T24:00:00Z",
            "2026-11-21T23:59:60Z",
            "2026-11-21 14:18:38Z",
            "2026-11-21T14:18:38+08:00",
            "2026-11-21T14:18:38.5Z",
            "+2026-1-21T14:18:38Z",
        ] {
            let slow = NaiveDateTime::parse_from_str(s, TIMESTAMP_FORMAT)
                .map(|n| n.and_utc())
                .ok()
                .or_else(|| {
                    DateTime::parse_from_rfc3339(s)
                        .ok()
                        .map(|t| t.with_timezone(&Utc))
                });
            assert_eq!(parse_timestamp(s), slow, "{s}");
        }
    }
}
