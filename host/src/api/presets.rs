//! `GET /v1/presets`: names, versions, summaries, declared inputs and param schemas.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::SharedState;
use crate::preset::params;

pub async fn list(State(state): State<SharedState>) -> Json<Value> {
    let presets: Vec<Value> = state
        .registry
        .all()
        .into_iter()
        .map(|(name, versions)| {
            let summary = versions
                .last()
                .map(|p| p.descriptor.summary.clone())
                .unwrap_or_default();
            let versions: Vec<Value> = versions
                .iter()
                .rev()
                .map(|p| {
                    json!({
                        "version": p.version.to_string(),
                        "summary": p.descriptor.summary,
                        "sha256": p.sha256,
                        "inputs": p.descriptor.inputs.iter().map(|i| json!({
                            "name": i.name,
                            "description": i.description,
                            "required": i.required,
                        })).collect::<Vec<_>>(),
                        "params": p.descriptor.params.iter().map(params::schema_json).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({"name": name, "summary": summary, "versions": versions})
        })
        .collect();
    Json(json!({ "presets": presets }))
}
