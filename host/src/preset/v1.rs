//! The adapter for `mediahost:preset@1.x`: bindings generated from the frozen `wit/1.0.0`, and
//! conversions between them and [`crate::model`].
//!
//! 1.0 is a subset of the model: an output is one container file (`OutputKind::File`, never
//! optional), a finish has no packages or documents, and loudness is the only analysis.
//!
//! Not here: anything a 1.0 preset cannot express; the runtime picks this adapter by the
//! interface major a component exports.

use wasmtime::AsContextMut;
use wasmtime::component::{HasSelf, InstancePre, Linker};

use super::convert::{Conv, shared};
use super::runtime::Sandbox;

wasmtime::component::bindgen!({
    path: "../wit/1.0.0",
    world: "preset-world",
});

use self::mediahost::preset::types as w;

pub use self::{PresetWorld as World, PresetWorldPre as WorldPre};

shared!(w);

impl Conv<model::Output> for w::Output {
    fn conv(self) -> model::Output {
        model::Output {
            name: self.name,
            kind: model::OutputKind::File(self.container),
            streams: self.streams.conv(),
            metadata: self.metadata.conv(),
            muxer_options: self.muxer_options.conv(),
            duration_s: self.duration_s,
            // 1.0 has no optional outputs: every output it plans is required.
            optional: false,
        }
    }
}

impl Conv<model::AnalysisRequest> for w::AnalysisRequest {
    fn conv(self) -> model::AnalysisRequest {
        let kind = match self.kind {
            w::AnalysisKind::Loudness => model::AnalysisKind::Loudness,
        };
        model::AnalysisRequest {
            id: self.id,
            source: self.source.conv(),
            stream: self.stream,
            kind,
            window: None,
        }
    }
}

impl Conv<model::Finish> for w::Finish {
    fn conv(self) -> model::Finish {
        model::Finish {
            steps: self.steps.conv(),
            packages: Vec::new(),
            documents: Vec::new(),
            report: self.report.conv(),
        }
    }
}

/// The results a 1.0 preset can read. It can only ask for loudness, so its job only ever holds
/// loudness results; a dry-run caller may still pass others, which a 1.0 preset has no type
/// for and could not have asked for, so they are left out rather than failing the call.
fn results(results: &[model::AnalysisResult]) -> Vec<w::AnalysisResult> {
    results
        .iter()
        .filter_map(|r| match &r.value {
            model::AnalysisValue::Loudness(l) => Some(w::AnalysisResult {
                id: r.id.clone(),
                value: w::AnalysisValue::Loudness(l.conv()),
            }),
            model::AnalysisValue::BlackIntervals(_)
            | model::AnalysisValue::SceneChanges(_)
            | model::AnalysisValue::Crop(_)
            | model::AnalysisValue::Interlacing(_) => None,
        })
        .collect()
}

fn request(r: &model::PlanRequest) -> w::PlanRequest {
    w::PlanRequest {
        round: r.round,
        inputs: r.inputs.clone().conv(),
        params: r.params.clone().conv(),
        produced: r.produced.clone().conv(),
        analyses: results(&r.analyses),
    }
}

/// Links the host interface a 1.0 preset imports.
pub fn link(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    World::add_to_linker::<_, HasSelf<Sandbox>>(linker, |s| s)
}

pub fn pre(instance: InstancePre<Sandbox>) -> wasmtime::Result<WorldPre<Sandbox>> {
    WorldPre::new(instance)
}

pub fn describe(world: &World, store: impl AsContextMut) -> wasmtime::Result<model::Descriptor> {
    Ok(world.mediahost_preset_preset().call_describe(store)?.conv())
}

pub fn plan(
    world: &World,
    store: impl AsContextMut,
    req: &model::PlanRequest,
) -> wasmtime::Result<model::Answer> {
    let answer = world
        .mediahost_preset_preset()
        .call_plan(store, &request(req))?;
    Ok(answer.map(Conv::conv).map_err(Conv::conv))
}

impl mediahost::preset::host::Host for Sandbox {
    fn log(&mut self, level: w::LogLevel, message: String) {
        self.record_log(level.conv(), message);
    }
}

impl w::Host for Sandbox {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_1_0_output_is_a_required_file() {
        let output = w::Output {
            name: "main".into(),
            container: "flac".into(),
            streams: vec![],
            metadata: vec![],
            muxer_options: vec![],
            duration_s: None,
        };
        let output: model::Output = output.conv();
        assert_eq!(output.kind, model::OutputKind::File("flac".into()));
        assert!(!output.optional);
    }

    #[test]
    fn a_1_0_preset_reads_only_loudness_results() {
        let loudness = model::Loudness {
            integrated_lufs: -23.0,
            true_peak_dbtp: -1.0,
            lra_lu: 5.0,
            threshold_lufs: -33.0,
        };
        let kept = results(&[
            model::AnalysisResult {
                id: "l".into(),
                value: model::AnalysisValue::Loudness(loudness),
            },
            model::AnalysisResult {
                id: "c".into(),
                value: model::AnalysisValue::Crop(None),
            },
        ]);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].id, "l");
    }
}
