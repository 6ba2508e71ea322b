//! The Alibaba Cloud Serverless Workflow / CloudFlow dialect (fnf RPC API 2019-03-15).
//! Being built: signatures and the two flow languages first, then the RPC front end.

pub mod cloudflow;
pub mod error_names;
pub mod fdl;
pub mod signature;
