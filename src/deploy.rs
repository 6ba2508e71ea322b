//! Config-driven deployment: every definition file under the flows directory is compiled by
//! the dialect that owns it and deployed at start-up.
//!
//! A file's dialect comes from its folder (`flows/alibaba/x.yaml`, `flows/huawei/y.json`,
//! `flows/canonical/z.json`) or, for files directly in the flows directory, from its content.
//! The flow's name is the file name without its extension.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::dialects::Dialect;
use crate::engine::Engine;
use crate::model::execution::FlowKey;
use crate::model::time::now;
use crate::store::FlowRecord;

/// One file that could not be deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployProblem {
    /// The file.
    pub file: PathBuf,
    /// What is wrong (with the field path for definition errors).
    pub message: String,
}

impl std::fmt::Display for DeployProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)
    }
}

/// Definition files we read.
fn is_definition(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("json" | "yaml" | "yml")
    )
}

/// Compiles every definition file under `dir` and deploys it (replacing a flow of the same
/// name). Returns the deployed keys, or every problem found (nothing is half-reported).
pub async fn deploy_dir(
    engine: &Engine,
    dialects: &[Box<dyn Dialect>],
    dir: &Path,
    namespace_of: &dyn Fn(&dyn Dialect) -> String,
) -> Result<Vec<FlowKey>, Vec<DeployProblem>> {
    let mut files = Vec::new();
    collect(dir, 0, &mut files).map_err(|e| {
        vec![DeployProblem {
            file: dir.to_path_buf(),
            message: e.to_string(),
        }]
    })?;
    files.sort();
    let mut problems = Vec::new();
    let mut records = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                problems.push(DeployProblem {
                    file,
                    message: e.to_string(),
                });
                continue;
            }
        };
        let folder = file
            .parent()
            .filter(|p| *p != dir)
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str());
        let dialect = match folder {
            Some(f) => dialects.iter().find(|d| d.name() == f),
            None => dialects.iter().find(|d| d.recognizes(&file, &text)),
        };
        let Some(dialect) = dialect else {
            let message = match folder {
                Some(f) => format!("no dialect is named '{f}'"),
                None => "no dialect recognizes this definition; put it in a folder named after its dialect".to_string(),
            };
            problems.push(DeployProblem { file, message });
            continue;
        };
        let name = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        match dialect.compile(&name, &text) {
            Ok(flow) => {
                let at = now();
                let metadata = dialect.metadata(&name, &text);
                records.push(FlowRecord {
                    id: uuid::Uuid::new_v4().to_string().into(),
                    key: FlowKey::new(namespace_of(dialect.as_ref()), name),
                    dialect: dialect.name().to_string(),
                    definition: Arc::from(text.as_str()),
                    flow: Arc::new(flow),
                    created: at,
                    modified: at,
                    metadata,
                });
            }
            Err(issues) => {
                for i in issues {
                    problems.push(DeployProblem {
                        file: file.clone(),
                        message: i.to_string(),
                    });
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut keys = Vec::new();
    for rec in records {
        let key = rec.key.clone();
        let result = match engine.create_flow(rec.clone()).await {
            // Deployed before (a durable store keeps flows across restarts): an unchanged
            // file keeps the flow as it is, a changed one replaces it under the same id, so
            // the flow's executions stay its own and resume.
            Err(crate::model::ApiError::FlowAlreadyExists { .. }) => {
                match engine.flow(&key).await {
                    Ok(old) if old.definition == rec.definition && old.dialect == rec.dialect => {
                        Ok(())
                    }
                    Ok(old) => engine
                        .replace_flow(FlowRecord {
                            id: old.id.clone(),
                            created: old.created,
                            ..rec
                        })
                        .await
                        .map(|_| ()),
                    Err(e) => Err(e),
                }
            }
            other => other.map(|_| ()),
        };
        if let Err(e) = result {
            problems.push(DeployProblem {
                file: PathBuf::from(key.to_string()),
                message: e.to_string(),
            });
        } else {
            keys.push(key);
        }
    }
    if problems.is_empty() {
        Ok(keys)
    } else {
        Err(problems)
    }
}

fn collect(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            if depth == 0 {
                collect(&path, depth + 1, out)?;
            }
        } else if is_definition(&path) {
            out.push(path);
        }
    }
    Ok(())
}
