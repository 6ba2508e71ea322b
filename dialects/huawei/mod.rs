//! The Huawei Cloud FunctionGraph workflow dialect (REST API v2).
//! Being built: the signature and the flow compiler first, then the REST front end.

pub mod flow;
pub mod signature;
