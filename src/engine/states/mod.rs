//! One file per state kind that needs more than a line (Pass, Succeed and Fail live in the
//! scope dispatcher).

pub(crate) mod choice;
pub(crate) mod fanout;
pub(crate) mod subflow;
pub(crate) mod task;
pub(crate) mod wait;
