//! Time helpers shared by the model and the engine.

use chrono::{DateTime, Utc};

/// A point in time as the engine records it (UTC, millisecond precision in renderings).
pub type Timestamp = DateTime<Utc>;

/// The current wall-clock time.
pub fn now() -> Timestamp {
    Utc::now()
}
