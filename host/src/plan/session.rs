//! One planning session: the round protocol between a preset and the host, the same for a job
//! and a dry run.
//!
//! Each round the preset is called (on its [`Lane`]) with everything measured and produced so
//! far; its answer is classified (a fault of the preset or of the host, a refusal, or a
//! decision), logged, and validated into a [`ValidatedRound`]. Work of a `next` round runs
//! through an [`Executor`] (steps, then analyses) and the session feeds what it measured into
//! the next round, within [`MAX_ROUNDS`] rounds and [`MAX_ANALYSES`] analyses.
//!
//! Not here: running ffmpeg or rendering commands (the executor's), publishing outputs (the
//! worker's), or what a plan may contain (`plan::validate`).

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::validate::{
    self, MediaLookup, ValidatedAnalysis, ValidatedFinish, ValidatedRound, ValidatedStep,
};
use crate::error::{ErrorCode, JobError};
use crate::model;
use crate::preset::registry::Preset;
use crate::preset::runtime::{Lane, PresetFault, PresetLog, Runtime};

/// The most planning rounds a preset gets before the job fails.
pub const MAX_ROUNDS: u32 = 8;
/// The most analyses a job may request in all.
pub const MAX_ANALYSES: usize = 64;

/// Where a step's outputs go: intermediates for a later round, or the job's deliverables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Work,
    Deliver,
}

/// A line of a session's log: what the preset logged during a call, or the host's own note.
#[derive(Debug, Clone)]
pub enum LogLine {
    Preset(PresetLog),
    Host(String),
}

/// An intermediate a step wrote, measured, for later rounds to read as `produced(name)`.
#[derive(Debug, Clone)]
pub struct Written {
    pub name: String,
    pub info: model::MediaInfo,
}

/// What a session needs done outside itself: running validated work, and keeping a log.
pub trait Executor: Send {
    /// Runs one validated step. Returns the intermediates it wrote and measured (for
    /// [`Stage::Work`]); an executor that only renders measures nothing and returns none.
    fn run_step(
        &mut self,
        step: &ValidatedStep,
        stage: Stage,
    ) -> impl Future<Output = Result<Vec<Written>, JobError>> + Send;

    /// Runs one validated analysis.
    fn analyze(
        &mut self,
        analysis: &ValidatedAnalysis,
    ) -> impl Future<Output = Result<model::AnalysisValue, JobError>> + Send;

    /// Keeps a line of the session's log.
    fn log(&mut self, line: LogLine) -> impl Future<Output = ()> + Send;
}

/// One call into a preset: its answer, or the fault that kept it from answering, and its log.
pub trait PresetCall: Send + Sync {
    fn plan(
        &self,
        request: model::PlanRequest,
    ) -> impl Future<Output = (Result<model::Answer, PresetFault>, Vec<PresetLog>)> + Send;
}

/// A loaded preset called through the sandbox, on one lane of the instance pool.
pub struct Sandboxed {
    pub runtime: Arc<Runtime>,
    pub preset: Arc<Preset>,
    pub lane: Lane,
}

impl PresetCall for Sandboxed {
    async fn plan(
        &self,
        request: model::PlanRequest,
    ) -> (Result<model::Answer, PresetFault>, Vec<PresetLog>) {
        let runtime = self.runtime.clone();
        let preset = self.preset.clone();
        let lane = self.lane;
        tokio::task::spawn_blocking(move || runtime.plan(lane, &preset.compiled, &request))
            .await
            // The call ran on a blocking thread that panicked: nothing the preset did.
            .unwrap_or_else(|e| {
                (
                    Err(PresetFault::Overloaded(format!(
                        "the call's thread failed: {e}"
                    ))),
                    Vec::new(),
                )
            })
    }
}

/// The state of one planning session: what the preset is told each round.
pub struct Session<'a, P, E> {
    preset: &'a P,
    executor: &'a mut E,
    request: model::PlanRequest,
    /// Output names used by earlier rounds.
    taken: HashSet<String>,
}

/// The media a session's rounds may read: the request's inputs and produced intermediates.
struct Known<'a>(&'a model::PlanRequest);

impl MediaLookup for Known<'_> {
    fn info(&self, source: &model::MediaRef) -> Option<&model::MediaInfo> {
        let list = match source {
            model::MediaRef::Input(_) => &self.0.inputs,
            model::MediaRef::Produced(_) => &self.0.produced,
        };
        list.iter().find(|m| &m.source == source).map(|m| &m.info)
    }
}

impl<'a, P: PresetCall, E: Executor> Session<'a, P, E> {
    /// A session whose first round is `request.round`, told what `request` holds (a job starts
    /// at round 1 with its inputs and params; a dry run may start anywhere).
    pub fn new(preset: &'a P, executor: &'a mut E, request: model::PlanRequest) -> Self {
        let taken = request
            .produced
            .iter()
            .filter_map(|m| match &m.source {
                model::MediaRef::Produced(n) => Some(n.clone()),
                model::MediaRef::Input(_) => None,
            })
            .collect();
        Self {
            preset,
            executor,
            request,
            taken,
        }
    }

    /// Runs rounds until the preset finishes: runs each `next` round's work, then the finish
    /// steps as deliverables. Returns the validated finish.
    pub async fn run(mut self) -> Result<ValidatedFinish, JobError> {
        let first = self.request.round;
        for round in first..first + MAX_ROUNDS {
            self.request.round = round;
            match self.plan().await? {
                ValidatedRound::Next(work) => {
                    self.run_steps(&work.steps, Stage::Work).await?;
                    // Analyses may measure what the steps just produced.
                    let analyses =
                        validate::validate_analyses(work.analyses, &Known(&self.request)).map_err(
                            |r| JobError::new(ErrorCode::PlanRejected, "validate", r.to_string()),
                        )?;
                    for analysis in &analyses {
                        let value = self.executor.analyze(analysis).await?;
                        self.request.analyses.push(model::AnalysisResult {
                            id: analysis.request().id.clone(),
                            value,
                        });
                    }
                }
                ValidatedRound::Finish(finish) => {
                    self.run_steps(&finish.steps, Stage::Deliver).await?;
                    return Ok(finish);
                }
            }
        }
        Err(JobError::new(
            ErrorCode::PresetFailed,
            "plan",
            format!("the preset did not finish planning within {MAX_ROUNDS} rounds"),
        ))
    }

    /// One round: calls the preset, logs what it said and validates its decision.
    pub async fn plan(&mut self) -> Result<ValidatedRound, JobError> {
        let round = self.request.round;
        let (answer, logs) = self.preset.plan(self.request.clone()).await;
        for line in logs {
            self.executor.log(LogLine::Preset(line)).await;
        }
        let decision = decision(answer, round)?;
        let shown = serde_json::to_string(&decision).unwrap_or_default();
        self.executor
            .log(LogLine::Host(format!(
                "round {round} plan: {}",
                clip(&shown, 16 << 10)
            )))
            .await;
        if let model::Decision::Next(work) = &decision
            && self.request.analyses.len() + work.analyses.len() > MAX_ANALYSES
        {
            return Err(JobError::new(
                ErrorCode::PlanRejected,
                "validate",
                format!("more than {MAX_ANALYSES} analyses requested"),
            ));
        }
        validate::validate_round(decision, &Known(&self.request), &self.taken)
            .map_err(|r| JobError::new(ErrorCode::PlanRejected, "validate", r.to_string()))
    }

    /// Runs validated steps through the executor; intermediates join what later rounds read.
    pub async fn run_steps(
        &mut self,
        steps: &[ValidatedStep],
        stage: Stage,
    ) -> Result<(), JobError> {
        for step in steps {
            for output in &step.step().outputs {
                self.taken.insert(output.name.clone());
            }
            for written in self.executor.run_step(step, stage).await? {
                self.request.produced.push(model::NamedMedia {
                    source: model::MediaRef::Produced(written.name),
                    info: written.info,
                });
            }
        }
        Ok(())
    }
}

/// What a preset's answer to a plan call means: its decision, or why planning failed (the
/// preset's fault, the host's, or the preset's reasoned refusal).
fn decision(
    answer: Result<model::Answer, PresetFault>,
    round: u32,
) -> Result<model::Decision, JobError> {
    match answer {
        Err(fault) => Err(JobError::new(
            fault.code(),
            "plan",
            format!("round {round}: {fault}"),
        )),
        Ok(Err(refusal)) => Err(JobError::new(
            ErrorCode::PresetRefused,
            "plan",
            format!(
                "{}: {}",
                clip(&refusal.code, 64),
                clip(&refusal.message, 1024)
            ),
        )),
        Ok(Ok(decision)) => Ok(decision),
    }
}

/// A finish's report as the job record keeps it: at most 64 entries, names and texts clipped.
pub fn report_json(report: &[model::OptionValue]) -> Map<String, Value> {
    report
        .iter()
        .take(64)
        .map(|o| {
            let v = match &o.value {
                model::Value::Integer(i) => json!(i),
                model::Value::Number(n) => json!(n),
                model::Value::Boolean(b) => json!(b),
                model::Value::Text(t) => json!(clip(t, 1024)),
            };
            (clip(&o.name, 64), v)
        })
        .collect()
}

/// `s` cut to at most `max` bytes (at a character boundary), marked when cut.
pub fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// A preset whose answer is computed from the request; counts its calls.
    struct Scripted<F> {
        answer: F,
        calls: Mutex<Vec<model::PlanRequest>>,
    }

    impl<F> Scripted<F>
    where
        F: Fn(&model::PlanRequest) -> Result<model::Answer, PresetFault> + Send + Sync,
    {
        fn new(answer: F) -> Self {
            Self {
                answer,
                calls: Mutex::new(Vec::new()),
            }
        }

        fn calls(&self) -> usize {
            self.calls.lock().unwrap().len()
        }
    }

    impl<F> PresetCall for Scripted<F>
    where
        F: Fn(&model::PlanRequest) -> Result<model::Answer, PresetFault> + Send + Sync,
    {
        async fn plan(
            &self,
            request: model::PlanRequest,
        ) -> (Result<model::Answer, PresetFault>, Vec<PresetLog>) {
            let answer = (self.answer)(&request);
            self.calls.lock().unwrap().push(request);
            (
                answer,
                vec![PresetLog {
                    level: "info",
                    message: "planning".into(),
                }],
            )
        }
    }

    /// Records what it is asked to run; every intermediate "measures" as the job's input.
    #[derive(Default)]
    struct Fake {
        steps: Vec<(String, Stage)>,
        analyses: Vec<String>,
        logs: Vec<String>,
    }

    impl Executor for Fake {
        async fn run_step(
            &mut self,
            step: &ValidatedStep,
            stage: Stage,
        ) -> Result<Vec<Written>, JobError> {
            self.steps.push((step.step().name.clone(), stage));
            Ok(match stage {
                Stage::Work => step
                    .step()
                    .outputs
                    .iter()
                    .map(|o| Written {
                        name: o.name.clone(),
                        info: media(),
                    })
                    .collect(),
                Stage::Deliver => Vec::new(),
            })
        }

        async fn analyze(
            &mut self,
            analysis: &ValidatedAnalysis,
        ) -> Result<model::AnalysisValue, JobError> {
            self.analyses.push(analysis.request().id.clone());
            Ok(model::AnalysisValue::Loudness(model::Loudness {
                integrated_lufs: -20.0,
                true_peak_dbtp: -1.0,
                lra_lu: 4.0,
                threshold_lufs: -30.0,
            }))
        }

        async fn log(&mut self, line: LogLine) {
            self.logs.push(format!("{line:?}"));
        }
    }

    /// 10 s of media with an audio stream (0) and a video stream (1).
    fn media() -> model::MediaInfo {
        crate::media::probe::from_json(&serde_json::json!({
            "format": {"format_name": "matroska", "duration": "10", "size": "1000"},
            "streams": [
                {"index": 0, "codec_type": "audio", "codec_name": "flac",
                 "sample_rate": "48000", "channels": 2},
                {"index": 1, "codec_type": "video", "codec_name": "h264",
                 "width": 640, "height": 360}
            ]
        }))
    }

    fn request() -> model::PlanRequest {
        model::PlanRequest {
            round: 1,
            inputs: vec![model::NamedMedia {
                source: model::MediaRef::Input("main".into()),
                info: media(),
            }],
            params: vec![],
            produced: vec![],
            analyses: vec![],
        }
    }

    fn step(name: &str, source: model::MediaRef, output: &str) -> model::Step {
        model::Step {
            name: name.into(),
            inputs: vec![model::StepInput {
                source,
                seek_s: None,
                duration_s: None,
            }],
            graph: vec![],
            outputs: vec![model::Output {
                name: output.into(),
                kind: model::OutputKind::File("flac".into()),
                streams: vec![model::OutputStream {
                    source: model::Pad::Stream(model::StreamRef {
                        input: 0,
                        stream: 0,
                    }),
                    codec: model::Codec::Copy,
                    metadata: vec![],
                }],
                metadata: vec![],
                muxer_options: vec![],
                duration_s: None,
                optional: false,
            }],
        }
    }

    fn loudness(id: &str, source: model::MediaRef, stream: u32) -> model::AnalysisRequest {
        model::AnalysisRequest {
            id: id.into(),
            source,
            stream,
            kind: model::AnalysisKind::Loudness,
            window: None,
        }
    }

    fn next(steps: Vec<model::Step>, analyses: Vec<model::AnalysisRequest>) -> model::Answer {
        Ok(model::Decision::Next(model::RoundWork { steps, analyses }))
    }

    fn finish(steps: Vec<model::Step>) -> model::Answer {
        Ok(model::Decision::Finish(model::Finish {
            steps,
            packages: vec![],
            documents: vec![],
            report: vec![model::OptionValue {
                name: "gain_db".into(),
                value: model::Value::Number(1.5),
            }],
        }))
    }

    async fn run_with<F>(preset: &Scripted<F>) -> (Result<ValidatedFinish, JobError>, Fake)
    where
        F: Fn(&model::PlanRequest) -> Result<model::Answer, PresetFault> + Send + Sync,
    {
        let mut fake = Fake::default();
        let result = Session::new(preset, &mut fake, request()).run().await;
        (result, fake)
    }

    #[tokio::test]
    async fn work_runs_between_rounds_and_the_next_round_sees_what_it_produced() {
        let preset = Scripted::new(|r: &model::PlanRequest| {
            Ok(match r.round {
                1 => next(
                    vec![step("cut", model::MediaRef::Input("main".into()), "mid")],
                    vec![loudness("l", model::MediaRef::Input("main".into()), 0)],
                ),
                _ => {
                    assert_eq!(r.produced.len(), 1, "round 2 reads the intermediate");
                    assert_eq!(r.analyses[0].id, "l");
                    finish(vec![step(
                        "out",
                        model::MediaRef::Produced("mid".into()),
                        "main",
                    )])
                }
            })
        });
        let (result, fake) = run_with(&preset).await;
        let finished = result.expect("the session finishes");
        assert_eq!(preset.calls(), 2);
        assert_eq!(
            fake.steps,
            [("cut".into(), Stage::Work), ("out".into(), Stage::Deliver)]
        );
        assert_eq!(fake.analyses, ["l"]);
        assert_eq!(report_json(&finished.report)["gain_db"], 1.5);
        assert!(fake.logs.iter().any(|l| l.contains("round 1 plan")));
        assert!(fake.logs.iter().any(|l| l.contains("planning")));
    }

    /// What a preset wrote before it failed (a Python traceback on stderr, say) is in the job's
    /// log beside the failure.
    #[tokio::test]
    async fn a_failing_call_keeps_what_the_preset_logged() {
        let preset = Scripted::new(|_: &model::PlanRequest| {
            Err(PresetFault::Trap(
                "wasm `unreachable` instruction executed".into(),
            ))
        });
        let (result, fake) = run_with(&preset).await;
        let error = result.expect_err("a trap fails the session");
        assert_eq!(error.code, ErrorCode::PresetFailed);
        assert!(
            fake.logs.iter().any(|l| l.contains("planning")),
            "{:?}",
            fake.logs
        );
    }

    #[tokio::test]
    async fn a_round_may_analyse_what_its_own_steps_produce() {
        let preset = Scripted::new(|r: &model::PlanRequest| {
            Ok(match r.round {
                1 => next(
                    vec![step(
                        "pass1",
                        model::MediaRef::Input("main".into()),
                        "pass1",
                    )],
                    vec![loudness("l", model::MediaRef::Produced("pass1".into()), 0)],
                ),
                _ => finish(vec![]),
            })
        });
        let (result, fake) = run_with(&preset).await;
        result.expect("the analysis reads the intermediate");
        assert_eq!(fake.analyses, ["l"]);
    }

    #[tokio::test]
    async fn a_preset_that_never_finishes_fails_after_the_round_cap() {
        let preset = Scripted::new(|_: &model::PlanRequest| Ok(next(vec![], vec![])));
        let (result, _) = run_with(&preset).await;
        let err = result.expect_err("no finish");
        assert_eq!(err.code, ErrorCode::PresetFailed);
        assert!(err.message.contains("within 8 rounds"), "{}", err.message);
        assert_eq!(preset.calls(), MAX_ROUNDS as usize);
    }

    #[tokio::test]
    async fn more_analyses_than_the_cap_are_rejected_before_any_runs() {
        let preset = Scripted::new(|_: &model::PlanRequest| {
            let many = (0..=MAX_ANALYSES)
                .map(|i| loudness(&format!("l{i}"), model::MediaRef::Input("main".into()), 0))
                .collect();
            Ok(next(vec![], many))
        });
        let (result, fake) = run_with(&preset).await;
        let err = result.expect_err("rejected");
        assert_eq!(err.code, ErrorCode::PlanRejected);
        assert_eq!(err.step, "validate");
        assert!(fake.analyses.is_empty());
    }

    #[tokio::test]
    async fn refusals_and_faults_get_their_codes() {
        let cases: [(Result<model::Answer, PresetFault>, ErrorCode); 4] = [
            (
                Ok(Err(model::Refusal {
                    code: "NO_AUDIO".into(),
                    message: "nothing to hear".into(),
                })),
                ErrorCode::PresetRefused,
            ),
            (
                Err(PresetFault::Deadline(Duration::from_millis(100))),
                ErrorCode::PresetFailed,
            ),
            (
                Err(PresetFault::Trap("unreachable".into())),
                ErrorCode::PresetFailed,
            ),
            (
                Err(PresetFault::Overloaded("waited 10s".into())),
                ErrorCode::HostOverloaded,
            ),
        ];
        for (answer, code) in cases {
            let answer = Mutex::new(Some(answer));
            let preset = Scripted::new(move |_: &model::PlanRequest| {
                answer.lock().unwrap().take().expect("one call")
            });
            let (result, _) = run_with(&preset).await;
            let err = result.expect_err("fails");
            assert_eq!(err.code, code, "{}", err.message);
            assert_eq!(err.step, "plan");
        }
    }

    #[tokio::test]
    async fn analyses_of_missing_sources_or_the_wrong_stream_kind_are_rejected() {
        let video = |id: &str, stream: u32| model::AnalysisRequest {
            id: id.into(),
            source: model::MediaRef::Input("main".into()),
            stream,
            kind: model::AnalysisKind::Crop,
            window: None,
        };
        let cases = [
            (
                loudness("a", model::MediaRef::Produced("nope".into()), 0),
                "does not exist",
            ),
            (
                loudness("b", model::MediaRef::Input("main".into()), 1),
                "is video",
            ),
            (video("c", 0), "is audio"),
            (video("d", 7), "stream 7 does not exist"),
        ];
        for (request, why) in cases {
            let request = Mutex::new(Some(request));
            let preset = Scripted::new(move |_: &model::PlanRequest| {
                Ok(next(vec![], vec![request.lock().unwrap().take().unwrap()]))
            });
            let (result, fake) = run_with(&preset).await;
            let err = result.expect_err("rejected");
            assert_eq!(err.code, ErrorCode::PlanRejected);
            assert_eq!(err.step, "validate");
            assert!(err.message.contains(why), "{why}: {}", err.message);
            assert!(fake.analyses.is_empty());
        }
    }
}
