//! DescribeRegions: the regions fnf serves, for clients that list them.

use serde_json::{json, Map};

use crate::dialects::alibaba::rpc::{ActionResult, Ctx};

const REGIONS: &[(&str, &str, &str)] = &[
    (
        "cn-hangzhou",
        "华东1（杭州）",
        "cn-hangzhou.fnf.aliyuncs.com",
    ),
    (
        "cn-shanghai",
        "华东2（上海）",
        "cn-shanghai.fnf.aliyuncs.com",
    ),
    ("cn-beijing", "华北2（北京）", "cn-beijing.fnf.aliyuncs.com"),
    (
        "cn-shenzhen",
        "华南1（深圳）",
        "cn-shenzhen.fnf.aliyuncs.com",
    ),
    (
        "cn-zhangjiakou",
        "华北3（张家口）",
        "fnf.cn-zhangjiakou.aliyuncs.com",
    ),
    (
        "ap-southeast-1",
        "新加坡",
        "fnf.ap-southeast-1.aliyuncs.com",
    ),
    ("us-west-1", "美国（硅谷）", "fnf.us-west-1.aliyuncs.com"),
];

/// `POST /?Action=DescribeRegions` with form `AcceptLanguage`.
/// Answers `{"Regions": {"Region": [{RegionId, LocalName, RegionEndpoint}]}}`.
pub async fn describe(_ctx: &Ctx<'_>) -> ActionResult {
    let regions: Vec<_> = REGIONS
        .iter()
        .map(|(id, local, endpoint)| {
            json!({"RegionId": id, "LocalName": local, "RegionEndpoint": endpoint})
        })
        .collect();
    let mut m = Map::new();
    m.insert("Regions".into(), json!({ "Region": regions }));
    Ok(m)
}
