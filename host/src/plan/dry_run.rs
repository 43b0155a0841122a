//! A dry run of one planning round, for preset authors: the preset's answer, validated exactly
//! as a job's would be by the same [`Session`], and the ffmpeg command lines the host would run
//! for it. Its executor only renders; nothing runs and nothing is measured.
//!
//! Paths in the command lines are relative to a job's scratch directory: inputs are `in/<name>`,
//! intermediates `work/...` and deliverables `out/...`.
//!
//! Not here: the HTTP request and response (`api::presets`), running anything (the worker).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mediahost_api as wire;
use serde_json::{Map, Value, json};

use super::session::{self, Executor, LogLine, Sandboxed, Session, Stage, Written};
use super::validate::{ValidatedAnalysis, ValidatedRound, ValidatedStep};
use crate::error::{ErrorCode, JobError};
use crate::ffmpeg::render;
use crate::model;
use crate::preset::params;
use crate::preset::registry::Preset;
use crate::preset::runtime::{Lane, PresetLog, Runtime};

/// What the preset is asked: the same fields a job's planning round gets.
pub struct DryRun {
    pub round: u32,
    pub inputs: BTreeMap<String, model::MediaInfo>,
    pub produced: BTreeMap<String, model::MediaInfo>,
    pub analyses: Vec<model::AnalysisResult>,
    /// Params already checked against the preset's schema, defaults filled in.
    pub params: Map<String, Value>,
}

/// The dry run's executor: renders each step with relative paths and keeps the commands.
#[derive(Default)]
struct Renderer {
    commands: Vec<wire::RenderedCommand>,
    logs: Vec<PresetLog>,
}

impl Executor for Renderer {
    async fn run_step(
        &mut self,
        step: &ValidatedStep,
        stage: Stage,
    ) -> Result<Vec<Written>, JobError> {
        let out_dir = Path::new(match stage {
            Stage::Work => "work",
            Stage::Deliver => "out",
        });
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
        self.commands.push(wire::RenderedCommand {
            step: step.step().name.clone(),
            argv,
            command: render::shell_line(&rendered.argv),
            outputs: rendered
                .outputs
                .iter()
                .map(|o| wire::RenderedOutput {
                    name: o.name.clone(),
                    container: o.container.clone(),
                    path: o.path.display().to_string(),
                    objects: json!(o.layout.planned_objects()),
                })
                .collect(),
        });
        Ok(Vec::new())
    }

    async fn analyze(
        &mut self,
        analysis: &ValidatedAnalysis,
    ) -> Result<model::AnalysisValue, JobError> {
        // A dry run shows the analyses a round asks for; it never measures them.
        Err(JobError::new(
            ErrorCode::Internal,
            "analyze",
            format!(
                "a dry run does not measure analysis '{}'; pass its result in `analyses`",
                analysis.request().id
            ),
        ))
    }

    async fn log(&mut self, line: LogLine) {
        // The response carries the plan itself; only what the preset logged is shown.
        if let LogLine::Preset(line) = line {
            self.logs.push(line);
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

/// Each item as JSON, for the parts of a dry run's answer the contract leaves open.
fn values<T: serde::Serialize>(items: &[T]) -> Vec<Value> {
    items.iter().map(|i| json!(i)).collect()
}

/// Calls `plan` once and describes what a job would do with the answer.
pub async fn plan(
    runtime: Arc<Runtime>,
    preset: Arc<Preset>,
    req: DryRun,
) -> Result<wire::DryRunAnswer, JobError> {
    let request = model::PlanRequest {
        round: req.round,
        inputs: named(&req.inputs, model::MediaRef::Input),
        params: params::typed(&preset.descriptor.params, &req.params),
        produced: named(&req.produced, model::MediaRef::Produced),
        analyses: req.analyses,
    };
    let call = Sandboxed {
        runtime,
        preset: preset.clone(),
        lane: Lane::DryRun,
    };
    let mut renderer = Renderer::default();
    let mut session = Session::new(&call, &mut renderer, request);
    let round = session.plan().await?;
    let (kind, steps, analyses, finish) = match round {
        ValidatedRound::Next(work) => {
            session.run_steps(&work.steps, Stage::Work).await?;
            // Shown, not checked: they may measure what this round's steps would produce,
            // which a dry run does not.
            (wire::Decision::Next, work.steps, work.analyses, None)
        }
        ValidatedRound::Finish(finish) => {
            session.run_steps(&finish.steps, Stage::Deliver).await?;
            let steps = finish.steps.clone();
            (wire::Decision::Finish, steps, Vec::new(), Some(finish))
        }
    };
    let steps: Vec<&model::Step> = steps.iter().map(|s| s.step()).collect();
    Ok(wire::DryRunAnswer {
        preset: wire::PresetPin {
            name: preset.name.clone(),
            version: preset.version.to_string(),
            sha256: preset.sha256.clone(),
        },
        round: req.round,
        decision: kind,
        inputs: req
            .inputs
            .iter()
            .map(|(name, info)| (name.clone(), json!(info)))
            .collect(),
        steps: values(&steps),
        commands: renderer.commands,
        analyses: values(&analyses),
        report: finish.as_ref().map(|f| session::report_json(&f.report)),
        logs: values(&renderer.logs),
        packages: finish.as_ref().map(|f| values(&f.packages)),
        documents: finish.as_ref().map(|f| values(&f.documents)),
    })
}
