//! dialogue-clean: speech made clean and even, then brought to a loudness target.
//!
//! Round 1 measures the input. Round 2 renders the clean-up to a float WAV and measures it:
//! channels first (mono: the average of every channel; stereo: mono duplicated, stereo kept,
//! more channels downmixed), a gain that puts the speech near -20 LUFS so the denoiser and the
//! compressor work at the same operating point whatever the recording level, a high-pass, FFT
//! noise reduction (`afftdn`) and a gentle compressor. From round 3 on, the cleaned audio is
//! normalized the way loudness-normalize does it (`measured-loudness`): plain gain when the
//! true-peak ceiling allows, else gain + 4x-oversampled limiter passes, each measured, until
//! one lands within 0.2 LU of the target under the ceiling.
//!
//! The preset keeps no state: each round replays from the analyses in the request (`input`,
//! `clean`, `pass1`, ...), so the same request always yields the same plan.

use measured_loudness::{
    Delivery, OutputFormat, Progress, SILENCE_LUFS, Source, Target, db_to_linear, normalize,
    round_to, volume,
};
use preset_sdk::*;

/// The loudness the clean-up chain works at: its thresholds are set for speech at this level.
const WORKING_LUFS: f64 = -20.0;
/// The most the working gain moves a recording, in dB.
const MAX_WORKING_GAIN_DB: f64 = 40.0;
/// Channel counts averaged with an explicit `pan` (beyond it, ffmpeg's own downmix).
const MAX_PAN_CHANNELS: u32 = 8;

struct DialogueClean;

impl Preset for DialogueClean {
    fn describe() -> Descriptor {
        Descriptor::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
            "Cleans up speech (high-pass, noise reduction, gentle compression) and normalizes it to a loudness target under a true-peak ceiling, in mono or stereo.",
        )
        .input("main", "The recording whose best audio stream is the speech to clean.")
        .param(
            ParamSpec::number("highpass_hz", "High-pass cut-off, in Hz: rumble and handling noise below it go.")
                .range(20.0, 300.0)
                .default(80.0),
        )
        .param(
            ParamSpec::choice("denoise", "Noise reduction strength (afftdn).", Denoise::NAMES)
                .default("medium"),
        )
        .param(
            ParamSpec::choice("compression", "Dynamics: off, gentle (2:1) or strong (4:1).", Compression::NAMES)
                .default("gentle"),
        )
        .param(
            ParamSpec::number("target_lufs", "Integrated loudness to reach, in LUFS.")
                .range(-40.0, -10.0)
                .default(-16.0),
        )
        .param(
            ParamSpec::number("true_peak_db", "True-peak ceiling, in dBTP.")
                .range(-9.0, 0.0)
                .default(-1.5),
        )
        .param(
            ParamSpec::choice("channels", "mono: the average of the input's channels; stereo: mono duplicated to both sides, stereo kept.", ["mono", "stereo"])
                .default("mono"),
        )
        .param(
            ParamSpec::choice("codec", "Output codec: WAV (24-bit), FLAC, MP3 320k, AAC 256k (M4A), Opus 192k.", measured_loudness::format::CODECS)
                .default("wav"),
        )
    }

    fn plan(request: &PlanRequest) -> Result<Decision, Refusal> {
        let settings = Settings::read(request)?;
        let audio = request
            .input("main")?
            .best_audio()
            .ok_or_else(|| refuse("NO_AUDIO", "input 'main' has no audio stream"))?;
        let format = OutputFormat::for_codec(settings.codec, audio.sample_rate())?;

        let Some(input) = request.loudness("input") else {
            log::info(format!("measuring stream {} of 'main'", audio.index()));
            let measure =
                AnalysisRequest::loudness("input", MediaRef::input("main"), audio.index());
            return Ok(RoundWork::new().analyze(measure).into());
        };
        if input.integrated_lufs < SILENCE_LUFS {
            return Err(refuse(
                "SILENT_INPUT",
                format!(
                    "input 'main' measures {:.1} LUFS: silence has no speech to clean",
                    input.integrated_lufs
                ),
            ));
        }
        let working_gain_db =
            (WORKING_LUFS - input.integrated_lufs).clamp(-MAX_WORKING_GAIN_DB, MAX_WORKING_GAIN_DB);

        let Some(clean) = request.loudness("clean") else {
            let step = settings.clean_step(audio.index(), audio.channels(), working_gain_db);
            let measure = AnalysisRequest::loudness("clean", MediaRef::produced("clean"), 0);
            return Ok(RoundWork::new().step(step).analyze(measure).into());
        };
        if clean.integrated_lufs < SILENCE_LUFS {
            return Err(refuse(
                "SILENT_INPUT",
                format!(
                    "after clean-up 'main' measures {:.1} LUFS: nothing but noise was left",
                    clean.integrated_lufs
                ),
            ));
        }

        let source = Source {
            media: MediaRef::produced("clean"),
            stream: request
                .intermediate("clean")
                .and_then(MediaInfo::best_audio)
                .map_or(0, |a| a.index()),
            sample_rate: audio.sample_rate(),
            loudness: *clean,
        };
        let target = Target {
            target_lufs: settings.target_lufs,
            ceiling_db: settings.ceiling_db,
            headroom_db: format.headroom_db(),
        };
        let delivery = match normalize(request, &target, &source)? {
            Progress::Next(work) => return Ok(work.into()),
            Progress::Deliver(delivery) => delivery,
        };
        let step = delivery.step("encode", &source, |pad| {
            Output::new("main", format.container).audio(pad, format.encoder.clone())
        });
        Ok(settings
            .report(Finish::new().step(step), &delivery, &source, input)
            .report("working_gain_db", round_to(working_gain_db, 2))
            .report("codec", format.codec)
            .into())
    }
}

export_preset!(DialogueClean);

/// The `denoise` param: afftdn's noise reduction (dB) and noise floor (dBFS, at the working
/// level).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Denoise {
    Off,
    Light,
    Medium,
    Strong,
}

impl Denoise {
    const NAMES: [&str; 4] = ["off", "light", "medium", "strong"];

    fn parse(name: &str) -> Result<Self, Refusal> {
        Ok(match name {
            "off" => Denoise::Off,
            "light" => Denoise::Light,
            "medium" => Denoise::Medium,
            "strong" => Denoise::Strong,
            other => return Err(choice_refusal("denoise", other, &Self::NAMES)),
        })
    }

    /// (nr, nf) for afftdn.
    fn reduction(self) -> Option<(f64, f64)> {
        match self {
            Denoise::Off => None,
            Denoise::Light => Some((6.0, -60.0)),
            Denoise::Medium => Some((12.0, -50.0)),
            Denoise::Strong => Some((24.0, -40.0)),
        }
    }
}

/// The `compression` param: acompressor settings for speech at the working level (-20 LUFS).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Compression {
    Off,
    Gentle,
    Strong,
}

impl Compression {
    const NAMES: [&str; 3] = ["off", "gentle", "strong"];

    fn parse(name: &str) -> Result<Self, Refusal> {
        Ok(match name {
            "off" => Compression::Off,
            "gentle" => Compression::Gentle,
            "strong" => Compression::Strong,
            other => return Err(choice_refusal("compression", other, &Self::NAMES)),
        })
    }

    /// acompressor: threshold (dBFS), ratio, attack and release (ms).
    fn compressor(self) -> Option<FilterNode> {
        let (threshold_db, ratio, attack, release) = match self {
            Compression::Off => return None,
            // Only the louder syllables: 6 dB above the working level's RMS.
            Compression::Gentle => (-26.0, 2.0, 20.0, 250.0),
            Compression::Strong => (-32.0, 4.0, 10.0, 150.0),
        };
        Some(
            FilterNode::new("acompressor")
                .arg("threshold", round_to(db_to_linear(threshold_db), 6))
                .arg("ratio", ratio)
                .arg("attack", attack)
                .arg("release", release)
                .arg("detection", "rms"),
        )
    }
}

fn choice_refusal(param: &str, value: &str, options: &[&str]) -> Refusal {
    refuse(
        "PARAM_INVALID",
        format!("{param} '{value}' is not one of {}", options.join(", ")),
    )
}

/// The job's params, read once.
struct Settings<'a> {
    highpass_hz: f64,
    denoise: Denoise,
    compression: Compression,
    target_lufs: f64,
    ceiling_db: f64,
    stereo: bool,
    codec: &'a str,
}

impl<'a> Settings<'a> {
    fn read(request: &'a PlanRequest) -> Result<Self, Refusal> {
        let params = request.params();
        Ok(Settings {
            highpass_hz: params.number("highpass_hz")?,
            denoise: Denoise::parse(params.text("denoise")?)?,
            compression: Compression::parse(params.text("compression")?)?,
            target_lufs: params.number("target_lufs")?,
            ceiling_db: params.number("true_peak_db")?,
            stereo: match params.text("channels")? {
                "mono" => false,
                "stereo" => true,
                other => return Err(choice_refusal("channels", other, &["mono", "stereo"])),
            },
            codec: params.text("codec")?,
        })
    }

    /// channels -> working gain -> high-pass -> afftdn -> acompressor, to a float WAV.
    fn clean_step(&self, stream: u32, channels: u32, working_gain_db: f64) -> Step {
        let chain = Chain::new(Pad::stream(0, stream))
            .then_maybe(channel_mix(channels, self.stereo))
            .then(volume(working_gain_db))
            .then(
                FilterNode::new("highpass")
                    .arg("frequency", self.highpass_hz)
                    .arg("poles", 2),
            )
            .then_maybe(self.denoise.reduction().map(|(nr, nf)| {
                FilterNode::new("afftdn")
                    .arg("nr", nr)
                    .arg("nf", nf)
                    .arg("nt", "w")
            }))
            .then_maybe(self.compression.compressor());
        log::info(format!(
            "clean-up: {channels} ch -> {}, working gain {working_gain_db:+.2} dB, high-pass {} Hz, denoise {:?}, compression {:?}",
            if self.stereo { "stereo" } else { "mono" },
            self.highpass_hz,
            self.denoise,
            self.compression
        ));
        Step::new("clean")
            .input(MediaRef::input("main"))
            .chain("cleaned", chain)
            .output(
                Output::new("clean", "wav").audio(Pad::link("cleaned"), Encoder::new("pcm_f32le")),
            )
    }

    fn report(
        &self,
        finish: Finish,
        delivery: &Delivery,
        source: &Source,
        input: &Loudness,
    ) -> Finish {
        delivery
            .report(finish, source)
            .report("input_integrated_lufs", input.integrated_lufs)
            .report("input_true_peak_dbtp", input.true_peak_dbtp)
            .report("cleaned_integrated_lufs", source.loudness.integrated_lufs)
            .report("cleaned_true_peak_dbtp", source.loudness.true_peak_dbtp)
            .report("target_lufs", self.target_lufs)
            .report("true_peak_ceiling_db", self.ceiling_db)
            .report("channels", if self.stereo { 2 } else { 1 })
            .report("highpass_hz", self.highpass_hz)
            .report("denoise", format!("{:?}", self.denoise).to_lowercase())
            .report(
                "compression",
                format!("{:?}", self.compression).to_lowercase(),
            )
    }
}

/// The node that makes `channels` into mono (the average, phase as it is) or stereo (mono
/// duplicated; more channels through ffmpeg's standard downmix); none when already there.
fn channel_mix(channels: u32, stereo: bool) -> Option<FilterNode> {
    match (stereo, channels) {
        (false, 1) | (true, 2) => None,
        (false, n) if n <= MAX_PAN_CHANNELS => {
            let share = round_to(1.0 / f64::from(n), 6);
            let terms: Vec<String> = (0..n).map(|c| format!("{share}*c{c}")).collect();
            Some(FilterNode::new("pan").arg("args", format!("mono|c0={}", terms.join("+"))))
        }
        (false, _) => Some(FilterNode::new("aformat").arg("channel_layouts", "mono")),
        (true, 1) => Some(FilterNode::new("pan").arg("args", "stereo|c0=c0|c1=c0")),
        (true, _) => Some(FilterNode::new("aformat").arg("channel_layouts", "stereo")),
    }
}

#[cfg(test)]
mod tests;
