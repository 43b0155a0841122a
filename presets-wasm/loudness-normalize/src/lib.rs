//! loudness-normalize 1.2.0 (interface 2.0; 1.1.0 and 1.0.0 run from their released 1.0
//! artifacts): EBU R128 loudness normalization in measured rounds.
//!
//! 1.1.0 keeps 1.0.0's algorithm (now the shared `measured-loudness` passes and codec choices;
//! 1.0.0 keeps its own copy, as published) and adds named targets (`target`), `lower_only`, a
//! measure-only `mode` that writes no audio, and `stream`: one audio stream of a file with
//! several normalized while every other stream is copied as it is.
//!
//! Round 1 measures the input. If plain gain reaches the target without crossing the true-peak
//! ceiling, that is the whole job: one `volume` step. Otherwise each round renders a limited
//! pass (gain, 4x oversampled `alimiter`, optional `acompressor` for a loudness-range limit)
//! to a lossless intermediate and measures it, correcting the gain from what the limiter really
//! did, until the pass lands within 0.2 LU of the target under the ceiling. Never loudnorm's
//! dynamic mode: the gain is static, the limiter only touches peaks.
//!
//! The preset keeps no state: each round replays the earlier passes from the measurements in
//! the request (`input`, `pass1`, `pass2`, ... by analysis id), so the same request always
//! yields the same plan.
//!
//! `lower_only` makes the target the lower of the asked one and the input's own loudness, so a
//! quieter input keeps its loudness (gain 0). The true-peak ceiling still holds: when such an
//! input peaks above it, the limited passes run with the input's loudness as their target, so
//! peaks come down and the integrated loudness stays where it was.

mod streams;

use measured_loudness::{
    Delivery, OutputFormat, Progress, SILENCE_LUFS, Source, Target, Unreachable, db_to_linear,
    normalize_with, round_to, volume,
};
use preset_sdk::*;

/// acompressor ratio bounds when a loudness-range limit asks for compression.
const MAX_COMPRESSOR_RATIO: f64 = 4.0;
/// acompressor's lowest threshold (2^-10).
const COMPRESSOR_THRESHOLD_FLOOR: f64 = 0.000_976_563;

/// The preset this crate builds, as [package.metadata.preset] in Cargo.toml says (a test checks).
const NAME: &str = "loudness-normalize";
const VERSION: &str = "1.2.0";

/// The `target` param's named targets and their integrated loudness (LUFS, LKFS for A/85).
const NAMED_TARGETS: [(&str, f64); 4] = [
    // EBU R 128 (broadcast, Europe).
    ("ebu-r128", -23.0),
    // ATSC A/85 (broadcast, US).
    ("atsc-a85", -24.0),
    // What podcast platforms ask for.
    ("podcast", -16.0),
    // What music streaming services normalize to.
    ("streaming", -14.0),
];

struct LoudnessNormalize;

impl Preset for LoudnessNormalize {
    fn describe() -> Descriptor {
        Descriptor::new(
            NAME,
            VERSION,
            "Normalizes integrated loudness (EBU R128) to a named or numeric target with a true-peak ceiling, limiting peaks only when gain alone cannot reach it; can measure only, lower only, or normalize one stream of several and keep the rest.",
        )
        .input("main", "The media whose best (or chosen) audio stream is normalized.")
        .param(
            ParamSpec::choice(
                "target",
                "Named target: ebu-r128 (-23 LUFS), atsc-a85 (-24 LKFS), podcast (-16), streaming (-14); custom uses target_lufs.",
                ["custom", "ebu-r128", "atsc-a85", "podcast", "streaming"],
            )
            .default("custom"),
        )
        .param(
            ParamSpec::number("target_lufs", "Integrated loudness to reach, in LUFS, when target is custom.")
                .range(-70.0, -5.0)
                .default(-16.0),
        )
        .param(
            ParamSpec::number("true_peak_db", "True-peak ceiling, in dBTP.")
                .range(-9.0, 0.0)
                .default(-1.5),
        )
        .param(
            ParamSpec::number(
                "lra",
                "Loudness range limit, in LU: a wider input is gently compressed. Unset: range untouched.",
            )
            .range(1.0, 50.0),
        )
        .param(
            ParamSpec::choice(
                "codec",
                "Output codec; auto keeps the input's format (PCM WAV, FLAC, MP3, AAC, Opus; FLAC otherwise).",
                ["auto", "wav", "flac", "mp3", "aac", "opus"],
            )
            .default("auto"),
        )
        .param(
            ParamSpec::boolean(
                "lower_only",
                "Never raise loudness: an input quieter than the target keeps its loudness (gain 0); the true-peak ceiling still holds.",
            )
            .default(false),
        )
        .param(
            ParamSpec::choice(
                "mode",
                "correct writes the normalized audio; measure only reports the input's loudness and the gain it would apply, and writes nothing.",
                ["correct", "measure"],
            )
            .default("correct"),
        )
        .param(
            ParamSpec::integer(
                "stream",
                "Absolute index of the audio stream to normalize. Set, every other audio, video and subtitle stream is copied into the output as it is (Matroska; MP4/M4A when the input is one and the audio stays AAC). Unset: only the best audio stream is written.",
            )
            .range(0, 1023),
        )
    }

    fn plan(request: &PlanRequest) -> Result<Decision, Refusal> {
        let mut settings = Settings::read(request)?;
        let info = request.input("main")?;
        let audio = streams::audio_stream(info, settings.stream)?;
        let mut format = OutputFormat::for_audio(settings.codec, &audio)?;
        let kept = match settings.stream {
            Some(_) => {
                let kept = streams::Kept::choose(info, audio.index(), &format);
                format.container = kept.container;
                Some(kept)
            }
            None => None,
        };

        let Some(input) = request.loudness("input") else {
            log::info(format!("measuring stream {} of 'main'", audio.index()));
            let measure =
                AnalysisRequest::loudness("input", MediaRef::input("main"), audio.index());
            return Ok(RoundWork::new().analyze(measure).into());
        };
        if settings.lower_only && input.integrated_lufs < settings.target_lufs {
            log::info(format!(
                "lower_only: the input ({:.2} LUFS) is below the target ({}); keeping its loudness",
                input.integrated_lufs, settings.target_lufs
            ));
            settings.target_lufs = input.integrated_lufs;
        }
        if settings.measure_only {
            return Ok(measurement(&settings, input, audio.index()).into());
        }
        if input.integrated_lufs < SILENCE_LUFS {
            return Err(refuse(
                "SILENT_INPUT",
                format!(
                    "input 'main' measures {:.1} LUFS: silence has no loudness to normalize",
                    input.integrated_lufs
                ),
            ));
        }

        let job = Job {
            settings,
            format,
            source: Source {
                media: MediaRef::input("main"),
                stream: audio.index(),
                sample_rate: audio.sample_rate(),
                loudness: *input,
            },
            language: audio.stream.language.clone(),
            kept,
        };
        let target = Target {
            target_lufs: job.settings.target_lufs,
            ceiling_db: job.settings.ceiling_db,
            headroom_db: job.format.headroom_db(),
        };
        let compressor = job.compressor();
        let pre_gain = compressor.map(|c| c.node());
        match normalize_with(request, &target, &job.source, pre_gain.as_ref()) {
            Ok(Progress::Next(work)) => Ok(work.into()),
            Ok(Progress::Deliver(delivery)) => Ok(job.finish(&delivery, compressor).into()),
            Err(unreachable) => Err(job.unreachable(&unreachable)),
        }
    }
}

export_preset!(LoudnessNormalize);

/// The job's params, read once.
struct Settings<'a> {
    /// The loudness the passes aim at: the asked target, or the input's own loudness when
    /// `lower_only` keeps a quieter input where it is.
    target_lufs: f64,
    /// The target as asked (named or numeric).
    requested_target_lufs: f64,
    target_name: &'a str,
    ceiling_db: f64,
    lra_lu: Option<f64>,
    codec: &'a str,
    lower_only: bool,
    measure_only: bool,
    stream: Option<i64>,
}

impl<'a> Settings<'a> {
    fn read(request: &'a PlanRequest) -> Result<Self, Refusal> {
        let params = request.params();
        let target_name = params.text("target")?;
        let target_lufs = match target_name {
            "custom" => params.number("target_lufs")?,
            named => NAMED_TARGETS
                .iter()
                .find(|(name, _)| *name == named)
                .map(|(_, lufs)| *lufs)
                .ok_or_else(|| {
                    refuse(
                        "TARGET_UNKNOWN",
                        format!("target '{named}' is not custom, ebu-r128, atsc-a85, podcast or streaming"),
                    )
                })?,
        };
        let measure_only = match params.text("mode")? {
            "correct" => false,
            "measure" => true,
            other => {
                return Err(refuse(
                    "MODE_UNKNOWN",
                    format!("mode '{other}' is not correct or measure"),
                ));
            }
        };
        Ok(Settings {
            target_lufs,
            requested_target_lufs: target_lufs,
            target_name,
            ceiling_db: params.number("true_peak_db")?,
            lra_lu: params.optional_number("lra")?,
            codec: params.text("codec")?,
            lower_only: params.boolean("lower_only")?,
            measure_only,
            stream: params.optional_integer("stream")?,
        })
    }
}

/// mode=measure: the input's measurements and what `correct` would do, and no steps at all.
fn measurement(settings: &Settings, input: &Loudness, stream: u32) -> Finish {
    let gain_db = settings.target_lufs - input.integrated_lufs;
    let peak_after_gain = input.true_peak_dbtp + gain_db;
    log::info(format!(
        "measure only: {:.2} LUFS, {:.2} dBTP, LRA {:.2} LU",
        input.integrated_lufs, input.true_peak_dbtp, input.lra_lu
    ));
    Finish::new()
        .report("mode", "measure")
        .report("stream", stream)
        .report("input_integrated_lufs", input.integrated_lufs)
        .report("input_true_peak_dbtp", input.true_peak_dbtp)
        .report("input_lra_lu", input.lra_lu)
        .report("input_threshold_lufs", input.threshold_lufs)
        .report("target", settings.target_name)
        .report("target_lufs", settings.requested_target_lufs)
        .report("effective_target_lufs", settings.target_lufs)
        .report("true_peak_ceiling_db", settings.ceiling_db)
        .report("lower_only", settings.lower_only)
        .report("gain_db", round_to(gain_db, 2))
        .report("would_limit", peak_after_gain > settings.ceiling_db)
}

/// Compression applied before the gain when the input's loudness range exceeds `lra`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Compressor {
    ratio: f64,
    /// Linear amplitude at the input's integrated loudness.
    threshold: f64,
}

impl Compressor {
    fn node(&self) -> FilterNode {
        FilterNode::new("acompressor")
            .arg("threshold", round_to(self.threshold, 6))
            .arg("ratio", round_to(self.ratio, 2))
    }
}

/// Everything a round needs to plan, once the input is measured.
struct Job<'a> {
    settings: Settings<'a>,
    format: OutputFormat,
    /// The normalized stream of `main` and its measurement.
    source: Source,
    /// The normalized stream's language tag.
    language: Option<String>,
    /// With `stream` set: the other streams copied beside the normalized one.
    kept: Option<streams::Kept>,
}

impl Job<'_> {
    fn compressor(&self) -> Option<Compressor> {
        let limit = self.settings.lra_lu?;
        (self.source.loudness.lra_lu > limit).then(|| Compressor {
            ratio: (self.source.loudness.lra_lu / limit).clamp(1.0, MAX_COMPRESSOR_RATIO),
            threshold: db_to_linear(self.source.loudness.integrated_lufs)
                .clamp(COMPRESSOR_THRESHOLD_FLOOR, 1.0),
        })
    }

    /// The step that writes `delivery` (plain gain on `main`, or the landed pass encoded) and
    /// the report.
    fn finish(&self, delivery: &Delivery, compressor: Option<Compressor>) -> Finish {
        let (pass, stream, limit_db, measured) = match *delivery {
            Delivery::Linear { gain_db } => {
                let chain = Chain::new(Pad::stream(0, self.source.stream)).then(volume(gain_db));
                let step = Step::new("normalize")
                    .input(MediaRef::input("main"))
                    .chain("normalized", chain)
                    .output(self.final_output(Pad::link("normalized"), 0));
                return self.report(Finish::new().step(step), gain_db, false);
            }
            Delivery::Limited {
                pass,
                stream,
                limit_db,
                measured,
                ..
            } => (pass, stream, limit_db, measured),
        };
        // The pass holds only the normalized audio; copied streams come from `main` (input 1).
        let mut step = Step::new("encode").input(MediaRef::produced(format!("pass{pass}")));
        if self.kept.is_some() {
            step = step.input(MediaRef::input("main"));
        }
        let step = step.output(self.final_output(Pad::stream(0, stream), 1));
        let finish = self
            .report(Finish::new().step(step), delivery.gain_db(), true)
            .report("passes", pass)
            .report("limiter_limit_db", round_to(limit_db, 2))
            .report("output_integrated_lufs", measured.integrated_lufs)
            .report("output_true_peak_dbtp", measured.true_peak_dbtp)
            .report("output_lra_lu", measured.lra_lu);
        match compressor {
            Some(c) => finish.report("compressor_ratio", round_to(c.ratio, 2)),
            None => finish,
        }
    }

    /// The delivery: the normalized audio from `source`, and with `stream` set every kept
    /// stream of `main` (step input `main_input`) copied, all in the input's order.
    fn final_output(&self, source: Pad, main_input: u32) -> Output {
        let output = Output::new("main", self.format.container);
        // A filtered stream does not inherit its input's tags: carry the language over.
        let mut normalized = OutputStream::new(source, self.format.encoder.clone());
        if let Some(language) = &self.language {
            normalized = normalized.metadata("language", language.as_str());
        }
        let Some(kept) = &self.kept else {
            return output.stream(normalized);
        };
        let mut normalized = Some(normalized);
        kept.order.iter().fold(output, |output, &index| {
            if index == self.source.stream {
                output.stream(normalized.take().expect("the normalized stream once"))
            } else {
                output.stream(OutputStream::new(
                    Pad::stream(main_input, index),
                    Codec::Copy,
                ))
            }
        })
    }

    fn report(&self, finish: Finish, gain_db: f64, limited: bool) -> Finish {
        let finish = finish
            .report("gain_db", round_to(gain_db, 2))
            .report("limited", limited)
            .report(
                "input_integrated_lufs",
                self.source.loudness.integrated_lufs,
            )
            .report("input_true_peak_dbtp", self.source.loudness.true_peak_dbtp)
            .report("input_lra_lu", self.source.loudness.lra_lu)
            .report("target", self.settings.target_name)
            .report("target_lufs", self.settings.requested_target_lufs)
            .report("effective_target_lufs", self.settings.target_lufs)
            .report("lower_only", self.settings.lower_only)
            .report("true_peak_ceiling_db", self.settings.ceiling_db)
            .report("codec", self.format.codec)
            .report("stream", self.source.stream)
            .report("mode", "correct");
        match &self.kept {
            Some(kept) => finish
                .report("container", kept.container)
                .report("kept_streams", kept.copied_list(self.source.stream)),
            None => finish,
        }
    }

    fn unreachable(&self, unreachable: &Unreachable) -> Refusal {
        let input = &self.source.loudness;
        refuse(
            "TARGET_UNREACHABLE",
            format!(
                "{} LUFS under a {} dBTP ceiling is out of reach for this input ({:.2} LUFS, {:.2} dBTP): {} limiter passes gave {}; lower the target or raise the ceiling",
                self.settings.target_lufs,
                self.settings.ceiling_db,
                input.integrated_lufs,
                input.true_peak_dbtp,
                unreachable.passes.len(),
                unreachable.passes_gave()
            ),
        )
    }
}

#[cfg(test)]
mod tests;
