//! A dry run of one planning call, for preset authors: the preset's answer, validated exactly as
//! a job's would be, and the ffmpeg command lines the host would run for it. Nothing runs.
//!
//! Paths in the command lines are relative to a job's scratch directory: inputs are `in/<name>`,
//! intermediates `work/...` and deliverables `out/...`.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::pipeline::{decision, report_json, shell_quote};
use crate::error::{ErrorCode, JobError};
use crate::ffmpeg::render;
use crate::model;
use crate::plan::validate::{self, MediaLookup};
use crate::preset::params;
use crate::preset::registry::Preset;
use crate::preset::runtime::{Lane, Runtime};

/// What the preset is asked: the same fields a job's planning round gets.
pub struct DryRun {
    pub round: u32,
    pub inputs: BTreeMap<String, model::MediaInfo>,
    pub produced: BTreeMap<String, model::MediaInfo>,
    pub analyses: Vec<model::AnalysisResult>,
    /// Params already checked against the preset's schema, defaults filled in.
    pub params: Map<String, Value>,
}

struct Known<'a> {
    inputs: &'a BTreeMap<String, model::MediaInfo>,
    produced: &'a BTreeMap<String, model::MediaInfo>,
}

impl MediaLookup for Known<'_> {
    fn info(&self, source: &model::MediaRef) -> Option<&model::MediaInfo> {
        match source {
            model::MediaRef::Input(n) => self.inputs.get(n),
            model::MediaRef::Produced(n) => self.produced.get(n),
        }
    }
}

fn named(
    map: &BTreeMap<String, model::MediaInfo>,
    wrap: fn(String) -> model::MediaRef,
) -> Vec<model::NamedMedia> {
    map.iter()
        .map(|(name, info)| model::NamedMedia {
            source: wrap(name.clone()),
            info: info.clone(),
        })
        .collect()
}

/// Calls `plan` once and describes what a job would do with the answer.
pub async fn plan(
    runtime: Arc<Runtime>,
    preset: Arc<Preset>,
    req: DryRun,
) -> Result<Value, JobError> {
    let request = model::PlanRequest {
        round: req.round,
        inputs: named(&req.inputs, model::MediaRef::Input),
        params: params::typed(&preset.descriptor.params, &req.params),
        produced: named(&req.produced, model::MediaRef::Produced),
        analyses: req.analyses,
    };
    let called = preset.clone();
    let (answer, logs) =
        tokio::task::spawn_blocking(move || runtime.plan(Lane::DryRun, &called.compiled, &request))
            .await
            .map_err(|e| JobError::new(ErrorCode::Internal, "plan", e.to_string()))?;
    let (kind, steps, analyses, report) = match decision(answer, req.round)? {
        model::Decision::Next(work) => ("next", work.steps, work.analyses, None),
        model::Decision::Finish(finish) => (
            "finish",
            finish.steps,
            Vec::new(),
            Some(report_json(&finish.report)),
        ),
    };
    let known = Known {
        inputs: &req.inputs,
        produced: &req.produced,
    };
    let taken: HashSet<String> = req.produced.keys().cloned().collect();
    let steps = validate::validate_steps(steps, &known, &taken)
        .map_err(|r| JobError::new(ErrorCode::PlanRejected, "validate", r.to_string()))?;

    let out_dir = Path::new(if kind == "finish" { "out" } else { "work" });
    let commands: Vec<Value> = steps
        .iter()
        .map(|step| {
            let rendered = render::render(
                step,
                |source| match source {
                    model::MediaRef::Input(n) => PathBuf::from("in").join(n),
                    model::MediaRef::Produced(n) => PathBuf::from("work").join(n),
                },
                out_dir,
            );
            let argv: Vec<String> = rendered
                .argv
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let shown: Vec<String> = argv.iter().map(|a| shell_quote(a)).collect();
            json!({
                "step": step.step().name,
                "argv": argv,
                "command": format!("ffmpeg {}", shown.join(" ")),
                "outputs": rendered.outputs.iter().map(|o| json!({
                    "name": o.name,
                    "container": o.container,
                    "path": o.path.display().to_string(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let steps: Vec<&model::Step> = steps.iter().map(|s| s.step()).collect();
    Ok(json!({
        "preset": {"name": preset.name, "version": preset.version.to_string(), "sha256": preset.sha256},
        "round": req.round,
        "decision": kind,
        "inputs": req.inputs,
        "steps": steps,
        "commands": commands,
        "analyses": analyses,
        "report": report,
        "logs": logs,
    }))
}
