//! The adapter for `mediahost:preset@2.x`: bindings generated from the frozen `wit/2.0.0`, and
//! conversions between them and [`crate::model`], which 2.0 matches case for case.
//!
//! Not here: what a 2.0 plan may contain (that is `plan::validate`); the runtime picks this
//! adapter by the interface major a component exports.

use wasmtime::AsContextMut;
use wasmtime::component::{HasSelf, InstancePre, Linker};

use super::convert::{Conv, shared};
use super::runtime::Sandbox;

wasmtime::component::bindgen!({
    path: "../wit/2.0.0",
    world: "preset-world",
});

use self::mediahost::preset::types as w;

pub use self::{PresetWorld as World, PresetWorldPre as WorldPre};

shared!(w);

records! {
    w::BlackSpec, model::BlackSpec { min_duration_s, picture_threshold, pixel_threshold }
    w::SceneSpec, model::SceneSpec { threshold }
    w::TimeWindow, model::TimeWindow { start_s, duration_s }
    w::AnalysisRequest, model::AnalysisRequest { id, source, stream, kind, window }
    w::Interval, model::Interval { start_s, end_s }
    w::SceneChange, model::SceneChange { time_s, score }
    w::CropBox, model::CropBox { width, height, x, y }
    w::Interlacing, model::Interlacing {
        verdict, progressive_frames, top_field_first_frames, bottom_field_first_frames,
        undetermined_frames,
    }
    w::AnalysisResult, model::AnalysisResult { id, value }
    w::ImageSpec, model::ImageSpec { format, quality, metadata }
    w::ImageSequenceSpec, model::ImageSequenceSpec { image, max_frames }
    w::HlsRenditionSpec, model::HlsRenditionSpec { segment_format, segment_duration_s }
    w::HlsAudio, model::HlsAudio { output, label, language }
    w::HlsPackage, model::HlsPackage { name, variants, audio }
    w::Document, model::Document { name, format, body, optional }
}
variants_both! {
    w::AnalysisKind, model::AnalysisKind {
        Loudness, BlackIntervals(x), SceneChanges(x), Crop, Interlacing,
    }
    w::ScanType, model::ScanType { Progressive, TopFieldFirst, BottomFieldFirst, Undetermined }
    w::AnalysisValue, model::AnalysisValue {
        Loudness(x), BlackIntervals(x), SceneChanges(x), Crop(x), Interlacing(x),
    }
    w::ImageFormat, model::ImageFormat { Jpeg, Png, Webp, Avif }
    w::ImageMetadata, model::ImageMetadata { Keep, Strip }
    w::SegmentFormat, model::SegmentFormat { Fmp4, Mpegts }
    w::DocumentFormat, model::DocumentFormat { Webvtt, Json }
}
variants!(w::OutputKind => model::OutputKind {
    File(x), Still(x), ImageSequence(x), HlsRendition(x),
});
record!(w::Output => model::Output {
    name, kind, streams, metadata, muxer_options, duration_s, optional,
});
record!(w::Finish => model::Finish { steps, packages, documents, report });
record!(model::PlanRequest => w::PlanRequest { round, inputs, params, produced, analyses });

/// Links the host interface a 2.0 preset imports.
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
        .call_plan(store, &req.clone().conv())?;
    Ok(answer.map(Conv::conv).map_err(Conv::conv))
}

impl mediahost::preset::host::Host for Sandbox {
    fn log(&mut self, level: w::LogLevel, message: String) {
        self.record_log(level.conv(), message);
    }
}

impl w::Host for Sandbox {}
