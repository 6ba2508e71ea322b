//! Reading a request body whole, within a size limit.

use axum::body::{Body, Bytes};
use futures::StreamExt;

/// The whole body, or `None` when it is longer than `limit` bytes or cannot be read. A body
/// that arrives as one chunk (a small request, the usual case) is returned as that chunk:
/// unlike `axum::body::to_bytes`, nothing is allocated or copied for it.
pub async fn read_limited(body: Body, limit: usize) -> Option<Bytes> {
    let mut chunks = body.into_data_stream();
    let mut first: Option<Bytes> = None;
    let mut joined: Option<Vec<u8>> = None;
    let mut total = 0usize;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.ok()?;
        if chunk.is_empty() {
            continue;
        }
        total += chunk.len();
        if total > limit {
            return None;
        }
        match (&mut joined, first.take()) {
            (Some(all), _) => all.extend_from_slice(&chunk),
            (None, None) => first = Some(chunk),
            (None, Some(head)) => {
                let mut all = Vec::with_capacity(total);
                all.extend_from_slice(&head);
                all.extend_from_slice(&chunk);
                joined = Some(all);
            }
        }
    }
    Some(match joined {
        Some(all) => Bytes::from(all),
        None => first.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(parts: &[&'static str]) -> Body {
        let stream = futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok::<_, std::io::Error>(Bytes::from_static(p.as_bytes())))
                .collect::<Vec<_>>(),
        );
        Body::from_stream(stream)
    }

    #[tokio::test]
    async fn reads_one_or_many_chunks_within_the_limit() {
        let one = read_limited(Body::from("abc"), 3).await;
        assert_eq!(one.as_deref(), Some(&b"abc"[..]));
        let many = read_limited(chunked(&["ab", "", "cd", "e"]), 5).await;
        assert_eq!(many.as_deref(), Some(&b"abcde"[..]));
        let empty = read_limited(Body::empty(), 0).await;
        assert_eq!(empty.as_deref(), Some(&b""[..]));
    }

    #[tokio::test]
    async fn refuses_a_body_past_the_limit_or_broken() {
        assert_eq!(read_limited(Body::from("abcd"), 3).await, None);
        assert_eq!(read_limited(chunked(&["ab", "cd"]), 3).await, None);
        let broken = Body::from_stream(futures::stream::iter(vec![
            Ok(Bytes::from_static(b"ab")),
            Err(std::io::Error::other("reset")),
        ]));
        assert_eq!(read_limited(broken, 10).await, None);
    }
}
