//! The IAM project lookup the SDK makes when it is given a region but no project id.

use axum::http::StatusCode;
use serde_json::json;

use crate::dialects::huawei::rest::{Reply, Req};

/// `GET /v3/projects?name={region}` (KeystoneListProjects): one project for the configured
/// region, none for any other.
pub async fn list_projects(r: &Req<'_>) -> Reply {
    let flows = &r.app.config.flows;
    let region = &flows.huawei_region;
    let projects = if r.query("name").is_none_or(|n| n == region) {
        vec![json!({
            "id": flows.huawei_project,
            "name": region,
            "domain_id": "00000000000000000000000000000000",
            "enabled": true,
            "is_domain": false,
            "parent_id": "00000000000000000000000000000000",
            "description": "",
            "links": {"self": format!("/v3/projects/{}", flows.huawei_project)},
        })]
    } else {
        Vec::new()
    };
    Ok((
        StatusCode::OK,
        Some(
            json!({"projects": projects, "links": {"self": "/v3/projects", "previous": null, "next": null}}),
        ),
    ))
}
