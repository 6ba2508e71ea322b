//! Engine settings (`[engine]` in the configuration file).

use serde::{Deserialize, Serialize};

/// Tunables and limits of the engine. Every limit defaults to the clouds' values.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Multiplies every Wait and retry back-off; 0 skips them (fast tests), 1 is real time.
    pub time_scale: f64,
    /// Cap on an Express execution's run time, in seconds (the clouds: 5 minutes).
    pub express_timeout_seconds: f64,
    /// Cap on a Standard execution's run time, in seconds (the clouds: one year).
    pub standard_timeout_seconds: f64,
    /// Largest execution input, state input/output or task result, in bytes.
    pub max_payload_bytes: usize,
    /// Most history events one execution may record before it fails.
    pub max_history_events: u64,
    /// Concurrency of a Map state that sets none.
    pub default_map_concurrency: u32,
    /// Finished Express executions kept in memory (oldest dropped first). The clouds keep
    /// little of Express runs (Huawei: no history; Alibaba: API history in preview); 100
    /// keeps what a client looks at right after its calls, and a set that small stays in a
    /// core's own cache (a finished execution is about 5 KiB in many small blocks). Past
    /// that, each sync start drops and reuses cold memory: on a 2-vCPU AMD EPYC (1 MiB of L2
    /// a core) 1 000 cost the server ~20% more CPU a request than 100, and 10 000 cost 10–15%
    /// of throughput on an Intel Xeon (BENCHMARKS.md §2).
    pub express_retention: usize,
    /// Finished Standard executions kept by the memory store (oldest dropped first).
    pub standard_retention: usize,
    /// A Wait at the top level of a flow that lasts at least this many (real) seconds parks
    /// its execution: the run gives its memory back and the execution wakes up at the
    /// deadline, with the same history and timing (see `engine::park`). Lets a gateway hold
    /// many waiting executions; 0 parks every top-level Wait.
    pub park_waits_after_seconds: f64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            time_scale: 1.0,
            express_timeout_seconds: 300.0,
            standard_timeout_seconds: 365.0 * 24.0 * 3600.0,
            max_payload_bytes: 256 * 1024,
            max_history_events: 5000,
            default_map_concurrency: 40,
            express_retention: 100,
            standard_retention: 100_000,
            park_waits_after_seconds: 1.0,
        }
    }
}

impl EngineConfig {
    /// Every problem with these settings, each as `(field, message)`.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut check = |ok: bool, field: &str, msg: &str| {
            if !ok {
                out.push((format!("engine.{field}"), msg.to_string()));
            }
        };
        check(
            self.time_scale.is_finite() && self.time_scale >= 0.0,
            "time_scale",
            "must be a number >= 0",
        );
        check(
            self.express_timeout_seconds.is_finite() && self.express_timeout_seconds > 0.0,
            "express_timeout_seconds",
            "must be a number > 0",
        );
        check(
            self.standard_timeout_seconds.is_finite() && self.standard_timeout_seconds > 0.0,
            "standard_timeout_seconds",
            "must be a number > 0",
        );
        check(
            self.max_payload_bytes > 0,
            "max_payload_bytes",
            "must be > 0",
        );
        check(
            self.max_history_events >= 2,
            "max_history_events",
            "must be >= 2",
        );
        check(
            self.park_waits_after_seconds.is_finite() && self.park_waits_after_seconds >= 0.0,
            "park_waits_after_seconds",
            "must be a number >= 0",
        );
        check(
            self.default_map_concurrency > 0,
            "default_map_concurrency",
            "must be > 0",
        );
        out
    }
}
