//! Byte-level text helpers for the per-request path (request paths, header lists, function
//! resource names).

/// `s` split at every `sep`, exactly as `s.split(sep as char)` splits it, for an ASCII `sep`.
///
/// A byte scan: `str::split` sets up a general search for each separator, which costs several
/// times more on the short paths, header lists and resource names split for every request.
pub fn split_ascii(s: &str, sep: u8) -> impl Iterator<Item = &str> + '_ {
    debug_assert!(sep.is_ascii(), "split_ascii needs an ASCII separator");
    let base = s.as_ptr() as usize;
    s.as_bytes().split(move |&b| b == sep).map(move |part| {
        // An ASCII separator only sits between characters, so both ends are boundaries.
        let start = part.as_ptr() as usize - base;
        &s[start..start + part.len()]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_as_str_split_does() {
        for s in [
            "",
            "/",
            "a",
            "/v2/p/fgs/workflows/wf-1/sync-executions",
            "a//b/",
            "//",
            "é/ü/日本",
            "urn:fss:cn-north-4:p:function:default:f:latest",
        ] {
            for sep in [b'/', b':', b';'] {
                let ours: Vec<&str> = split_ascii(s, sep).collect();
                let std: Vec<&str> = s.split(sep as char).collect();
                assert_eq!(ours, std, "{s:?} split at {:?}", sep as char);
            }
        }
    }
}
