//! Configured API rate limits (`[[rate_limits]]`): token buckets per dialect and action, as
//! the clouds apply them. Off unless configured; a tripped limit is a `Throttled` API error,
//! which each dialect renders in its own envelope (fnf: 429 `ResourceThrottled`).

use std::time::Instant;

use dashmap::DashMap;
use serde::{Deserialize, Serialize};

/// One `[[rate_limits]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// The dialect (`alibaba`, `huawei`).
    pub dialect: String,
    /// The action or operation name (`StartExecution`, `StartSyncWorkflowExecution`), or `*`
    /// for every action of the dialect without an entry of its own.
    pub action: String,
    /// Bucket size: how many requests may come at once.
    pub burst: u32,
    /// Tokens added per second.
    pub per_second: f64,
}

/// Problems with the entries, each as `(field, message)`.
pub fn validate(limits: &[RateLimitConfig]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, l) in limits.iter().enumerate() {
        if l.dialect.trim().is_empty() {
            out.push((
                format!("rate_limits[{i}].dialect"),
                "must not be empty".into(),
            ));
        }
        if l.action.trim().is_empty() {
            out.push((
                format!("rate_limits[{i}].action"),
                "must not be empty (use * for all)".into(),
            ));
        }
        if l.burst == 0 {
            out.push((
                format!("rate_limits[{i}].burst"),
                "must be at least 1".into(),
            ));
        }
        if !(l.per_second.is_finite() && l.per_second > 0.0) {
            out.push((
                format!("rate_limits[{i}].per_second"),
                "must be a number > 0".into(),
            ));
        }
    }
    out
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The token buckets of the configured limits.
#[derive(Debug, Default)]
pub struct RateLimiter {
    limits: Vec<RateLimitConfig>,
    buckets: DashMap<(String, String), Bucket, ahash::RandomState>,
}

impl RateLimiter {
    /// Buckets for these limits (none: every request passes).
    pub fn new(limits: Vec<RateLimitConfig>) -> Self {
        RateLimiter {
            limits,
            buckets: DashMap::default(),
        }
    }

    /// Takes a token for `action` of `dialect`; false when its bucket is empty.
    pub fn allow(&self, dialect: &str, action: &str) -> bool {
        if self.limits.is_empty() {
            return true;
        }
        let limit = self
            .limits
            .iter()
            .find(|l| l.dialect == dialect && l.action == action)
            .or_else(|| {
                self.limits
                    .iter()
                    .find(|l| l.dialect == dialect && l.action == "*")
            });
        let Some(limit) = limit else {
            return true;
        };
        // An action without an entry of its own shares the dialect's `*` bucket.
        let key = (dialect.to_string(), limit.action.clone());
        let now = Instant::now();
        let mut bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: limit.burst as f64,
            at: now,
        });
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * limit.per_second).min(limit.burst as f64);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(action: &str, burst: u32, per_second: f64) -> RateLimitConfig {
        RateLimitConfig {
            dialect: "alibaba".into(),
            action: action.into(),
            burst,
            per_second,
        }
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_and_other_actions_are_free() {
        let r = RateLimiter::new(vec![limit("StartExecution", 2, 0.001)]);
        assert!(r.allow("alibaba", "StartExecution"));
        assert!(r.allow("alibaba", "StartExecution"));
        assert!(!r.allow("alibaba", "StartExecution"));
        assert!(
            r.allow("alibaba", "DescribeExecution"),
            "no limit on other actions"
        );
        assert!(
            r.allow("huawei", "StartExecution"),
            "no limit on other dialects"
        );
    }

    #[test]
    fn the_wildcard_covers_actions_without_their_own_entry_and_tokens_refill() {
        let r = RateLimiter::new(vec![
            limit("*", 1, 1_000_000.0),
            limit("ListFlows", 1, 0.001),
        ]);
        assert!(r.allow("alibaba", "ListFlows"));
        assert!(!r.allow("alibaba", "ListFlows"));
        assert!(r.allow("alibaba", "DescribeFlow"));
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(r.allow("alibaba", "DescribeFlow"), "a fast bucket refills");
    }

    #[test]
    fn bad_entries_are_reported_with_their_field() {
        let problems = validate(&[limit("", 0, 0.0)]);
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "rate_limits[0].action",
                "rate_limits[0].burst",
                "rate_limits[0].per_second"
            ]
        );
    }
}
