//! voice-music-mix: a voice over a music bed that ducks under it, at a loudness target.
//!
//! Round 1 conforms both inputs to float stereo WAVs at the output rate (the music padded with
//! silence or cut to the output's length: the voice plus `tail_s`) and measures them, so the
//! balance is set on what is actually mixed. Round 2 mixes: the music gets
//! `(voice_I - music_I) + music_db` of gain, is ducked by a `sidechaincompress` keyed by the
//! voice (split with `asplit`: one copy keys, one is mixed), faded in and out, and summed with
//! the voice (`amix`, no normalization); the mix is measured. From round 3 on the mix is
//! normalized the way loudness-normalize does it (`measured-loudness`): plain gain when the
//! true-peak ceiling allows, else gain + 4x-oversampled limiter passes, each measured, until
//! one lands within 0.2 LU of the target under the ceiling.
//!
//! Ducking depth (`duck_db`) maps onto the compressor like this: the key is the voice brought
//! to -20 LUFS (`level_sc`), the threshold sits 32 dB under it (-55 dBFS) and the ratio is 20:1,
//! so whenever the voice speaks the compressor's own gain falls far (about 28 dB at the voice's
//! average level), and `mix` (wet/dry) sets the depth: the music becomes
//! `(1 - mix) + mix * g` of itself, so `mix = (1 - 10^(-duck_db/20)) / (1 - g)` reduces it by
//! `duck_db` while speech is present and leaves it untouched in gaps. Louder syllables duck a
//! little deeper, the quietest a little less; makeup stays 1.
//!
//! A music bed shorter than the voice is padded with silence (ffmpeg's `aloop` is not
//! allowed); the fades apply to the music only.

use measured_loudness::{
    Delivery, OutputFormat, Progress, SILENCE_LUFS, Source, Target, db_to_linear, normalize,
    round_to, volume,
};
use preset_sdk::*;

/// The loudness the voice key is brought to before the ducking compressor sees it.
const KEY_LUFS: f64 = -20.0;
/// How far under the key's level the ducking threshold sits, in dB.
const DUCK_THRESHOLD_BELOW_DB: f64 = 32.0;
const DUCK_RATIO: f64 = 20.0;
/// A stereo key of dual-mono speech at `KEY_LUFS` has about this RMS per channel, dBFS.
const KEY_CHANNEL_RMS_DB: f64 = KEY_LUFS - 3.0;
/// sidechaincompress's `level_sc` bounds.
const LEVEL_SC_RANGE: (f64, f64) = (0.015625, 64.0);
/// Rates kept from the voice; anything else mixes at 48 kHz.
const KEPT_RATES: [u32; 2] = [44_100, 48_000];
const DEFAULT_RATE: u32 = 48_000;

struct VoiceMusicMix;

impl Preset for VoiceMusicMix {
    fn describe() -> Descriptor {
        Descriptor::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
            "Mixes a voice over a music bed that ducks while the voice speaks, with fades, a tail, and a loudness target under a true-peak ceiling; stereo out.",
        )
        .input("voice", "The speech; its length plus tail_s is the output's length.")
        .input("music", "The music bed; cut to length, or padded with silence when shorter.")
        .param(
            ParamSpec::number("music_db", "Music level relative to the voice, in dB, once both are matched by measured loudness (before ducking).")
                .range(-40.0, 0.0)
                .default(-12.0),
        )
        .param(
            ParamSpec::number("duck_db", "How far the music goes down while the voice speaks, in dB; 0: no ducking.")
                .range(0.0, 30.0)
                .default(12.0),
        )
        .param(ParamSpec::number("attack_ms", "Ducking attack, in ms.").range(1.0, 1000.0).default(20.0))
        .param(ParamSpec::number("release_ms", "Ducking release, in ms.").range(10.0, 5000.0).default(400.0))
        .param(ParamSpec::number("fade_in_s", "Music fade-in at the start, in s.").range(0.0, 30.0).default(1.0))
        .param(ParamSpec::number("fade_out_s", "Music fade-out at the end, in s.").range(0.0, 30.0).default(2.0))
        .param(ParamSpec::number("tail_s", "Music after the voice ends, in s.").range(0.0, 30.0).default(2.0))
        .param(
            ParamSpec::number("target_lufs", "Integrated loudness of the mix, in LUFS.")
                .range(-40.0, -10.0)
                .default(-16.0),
        )
        .param(
            ParamSpec::number("true_peak_db", "True-peak ceiling, in dBTP.")
                .range(-9.0, 0.0)
                .default(-1.5),
        )
        .param(
            ParamSpec::choice("codec", "Output codec: WAV (24-bit), FLAC, MP3 320k, AAC 256k (M4A), Opus 192k.", measured_loudness::format::CODECS)
                .default("wav"),
        )
    }

    fn plan(request: &PlanRequest) -> Result<Decision, Refusal> {
        let settings = Settings::read(request)?;
        let voice_info = request.input("voice")?;
        let voice = voice_info
            .best_audio()
            .ok_or_else(|| refuse("NO_AUDIO", "input 'voice' has no audio stream"))?;
        let music = request
            .input("music")?
            .best_audio()
            .ok_or_else(|| refuse("NO_AUDIO", "input 'music' has no audio stream"))?;
        let voice_s = voice_info
            .stream(voice.index())
            .and_then(|s| s.duration_s)
            .or(voice_info.container.duration_s)
            .filter(|d| d.is_finite() && *d > 0.0)
            .ok_or_else(|| {
                refuse(
                    "DURATION_UNKNOWN",
                    "input 'voice' has no known duration to follow",
                )
            })?;
        let sample_rate = if KEPT_RATES.contains(&voice.sample_rate()) {
            voice.sample_rate()
        } else {
            DEFAULT_RATE
        };
        let format = OutputFormat::for_codec(settings.codec, sample_rate)?;
        let job = Job {
            settings,
            duration_s: voice_s + settings.tail_s,
            sample_rate,
        };

        let (Some(voice_l), Some(music_l)) = (request.loudness("voice"), request.loudness("music"))
        else {
            log::info(format!(
                "conforming voice (stream {}) and music (stream {}) to {sample_rate} Hz stereo, {:.2} s",
                voice.index(),
                music.index(),
                job.duration_s
            ));
            return Ok(job
                .conform(
                    voice.index(),
                    voice.channels(),
                    music.index(),
                    music.channels(),
                )
                .into());
        };
        for (name, l) in [("voice", voice_l), ("music", music_l)] {
            if l.integrated_lufs < SILENCE_LUFS {
                return Err(refuse(
                    "SILENT_INPUT",
                    format!(
                        "input '{name}' measures {:.1} LUFS: silence cannot be balanced",
                        l.integrated_lufs
                    ),
                ));
            }
        }
        let music_gain_db =
            voice_l.integrated_lufs - music_l.integrated_lufs + job.settings.music_db;
        let duck = job.settings.ducking(voice_l.integrated_lufs);

        let Some(mix) = request.loudness("mix") else {
            log::info(format!("mixing: music {music_gain_db:+.2} dB, {duck:?}"));
            let measure = AnalysisRequest::loudness("mix", MediaRef::produced("mix"), 0);
            return Ok(RoundWork::new()
                .step(job.mix_step(music_gain_db, duck.as_ref()))
                .analyze(measure)
                .into());
        };

        let source = Source {
            media: MediaRef::produced("mix"),
            stream: request
                .intermediate("mix")
                .and_then(MediaInfo::best_audio)
                .map_or(0, |a| a.index()),
            sample_rate,
            loudness: *mix,
        };
        let target = Target {
            target_lufs: job.settings.target_lufs,
            ceiling_db: job.settings.ceiling_db,
            headroom_db: format.headroom_db(),
        };
        let delivery = match normalize(request, &target, &source)? {
            Progress::Next(work) => return Ok(work.into()),
            Progress::Deliver(delivery) => delivery,
        };
        let step = delivery.step("encode", &source, |pad| {
            Output::new("main", format.container).audio(pad, format.encoder.clone())
        });
        let finish = job.report(Finish::new().step(step), &delivery, &source, duck.as_ref());
        Ok(finish
            .report("voice_integrated_lufs", voice_l.integrated_lufs)
            .report("music_integrated_lufs", music_l.integrated_lufs)
            .report("music_gain_db", round_to(music_gain_db, 2))
            .report("codec", format.codec)
            .into())
    }
}

export_preset!(VoiceMusicMix);

/// The job's params, read once.
#[derive(Clone, Copy, Debug)]
struct Settings<'a> {
    music_db: f64,
    duck_db: f64,
    attack_ms: f64,
    release_ms: f64,
    fade_in_s: f64,
    fade_out_s: f64,
    tail_s: f64,
    target_lufs: f64,
    ceiling_db: f64,
    codec: &'a str,
}

impl<'a> Settings<'a> {
    fn read(request: &'a PlanRequest) -> Result<Self, Refusal> {
        let params = request.params();
        Ok(Settings {
            music_db: params.number("music_db")?,
            duck_db: params.number("duck_db")?,
            attack_ms: params.number("attack_ms")?,
            release_ms: params.number("release_ms")?,
            fade_in_s: params.number("fade_in_s")?,
            fade_out_s: params.number("fade_out_s")?,
            tail_s: params.number("tail_s")?,
            target_lufs: params.number("target_lufs")?,
            ceiling_db: params.number("true_peak_db")?,
            codec: params.text("codec")?,
        })
    }

    /// The ducking compressor for a voice measuring `voice_lufs` (see the module's docs), or
    /// none when `duck_db` is 0.
    fn ducking(&self, voice_lufs: f64) -> Option<Ducking> {
        if self.duck_db <= 0.0 {
            return None;
        }
        let (lo, hi) = LEVEL_SC_RANGE;
        let level_sc = db_to_linear(KEY_LUFS - voice_lufs).clamp(lo, hi);
        let threshold_db = KEY_CHANNEL_RMS_DB - DUCK_THRESHOLD_BELOW_DB;
        // The compressor's own gain at the key's average level, and the wet share that turns
        // it into `duck_db`.
        let own_gain = db_to_linear(-DUCK_THRESHOLD_BELOW_DB * (1.0 - 1.0 / DUCK_RATIO));
        let depth = db_to_linear(-self.duck_db);
        let mix = ((1.0 - depth) / (1.0 - own_gain)).clamp(0.0, 1.0);
        Some(Ducking {
            level_sc: round_to(level_sc, 4),
            threshold_db,
            mix: round_to(mix, 4),
            attack_ms: self.attack_ms,
            release_ms: self.release_ms,
        })
    }
}

/// sidechaincompress settings.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Ducking {
    level_sc: f64,
    threshold_db: f64,
    mix: f64,
    attack_ms: f64,
    release_ms: f64,
}

impl Ducking {
    fn node(&self) -> FilterNode {
        FilterNode::new("sidechaincompress")
            .arg("threshold", round_to(db_to_linear(self.threshold_db), 6))
            .arg("ratio", DUCK_RATIO)
            .arg("attack", self.attack_ms)
            .arg("release", self.release_ms)
            .arg("makeup", 1.0)
            .arg("detection", "rms")
            .arg("link", "maximum")
            .arg("level_sc", self.level_sc)
            .arg("mix", self.mix)
    }
}

struct Job<'a> {
    settings: Settings<'a>,
    /// The output's length: the voice's plus the tail.
    duration_s: f64,
    sample_rate: u32,
}

impl Job<'_> {
    /// Both inputs as float stereo WAVs at the mix rate (the music at the output's length),
    /// and their measurements.
    fn conform(
        &self,
        voice: u32,
        voice_channels: u32,
        music: u32,
        music_channels: u32,
    ) -> RoundWork {
        let length = round_to(self.duration_s, 3);
        let voice_chain = Chain::new(Pad::stream(0, voice))
            .then(FilterNode::new("aresample").arg("sample_rate", self.sample_rate))
            .then_maybe(to_stereo(voice_channels));
        let music_chain = Chain::new(Pad::stream(0, music))
            .then(FilterNode::new("aresample").arg("sample_rate", self.sample_rate))
            .then_maybe(to_stereo(music_channels))
            .then(FilterNode::new("apad").arg("whole_dur", length))
            .then(FilterNode::new("atrim").arg("duration", length));
        let float = |name: &str, label: &str| {
            Output::new(name, "wav").audio(Pad::link(label), Encoder::new("pcm_f32le"))
        };
        RoundWork::new()
            .step(
                Step::new("voice-stereo")
                    .input(MediaRef::input("voice"))
                    .chain("v", voice_chain)
                    .output(float("voice-stereo", "v")),
            )
            .step(
                Step::new("music-stereo")
                    .input(MediaRef::input("music"))
                    .chain("m", music_chain)
                    .output(float("music-stereo", "m")),
            )
            .analyze(AnalysisRequest::loudness(
                "voice",
                MediaRef::produced("voice-stereo"),
                0,
            ))
            .analyze(AnalysisRequest::loudness(
                "music",
                MediaRef::produced("music-stereo"),
                0,
            ))
    }

    /// voice (split: key + mix) and music (gain -> duck -> fades), summed and cut to length.
    fn mix_step(&self, music_gain_db: f64, duck: Option<&Ducking>) -> Step {
        let length = round_to(self.duration_s, 3);
        let mut step = Step::new("mix")
            .input(MediaRef::produced("voice-stereo"))
            .input(MediaRef::produced("music-stereo"));
        let voice_pad = match duck {
            Some(_) => {
                step = step
                    .filter(
                        FilterNode::new("asplit")
                            .arg("outputs", 2)
                            .input(Pad::stream(0, 0))
                            .output("vmix")
                            .output("vkey"),
                    )
                    .chain(
                        "key",
                        Chain::new(Pad::link("vkey"))
                            .then(FilterNode::new("apad").arg("whole_dur", length)),
                    );
                Pad::link("vmix")
            }
            None => Pad::stream(0, 0),
        };
        step = step.chain(
            "mgain",
            Chain::new(Pad::stream(1, 0)).then(volume(music_gain_db)),
        );
        let bed_input = match duck {
            Some(duck) => {
                step = step.filter(
                    duck.node()
                        .input(Pad::link("mgain"))
                        .input(Pad::link("key"))
                        .output("ducked"),
                );
                Pad::link("ducked")
            }
            None => Pad::link("mgain"),
        };
        let fade_in = self.settings.fade_in_s.min(self.duration_s);
        let fade_out = self.settings.fade_out_s.min(self.duration_s);
        let bed = Chain::new(bed_input)
            .then_maybe((fade_in > 0.0).then(|| {
                FilterNode::new("afade")
                    .arg("type", "in")
                    .arg("start_time", 0.0)
                    .arg("duration", fade_in)
            }))
            .then_maybe((fade_out > 0.0).then(|| {
                FilterNode::new("afade")
                    .arg("type", "out")
                    .arg("start_time", round_to(self.duration_s - fade_out, 3))
                    .arg("duration", fade_out)
            }));
        step.chain("bed", bed)
            .chain(
                "vpad",
                Chain::new(voice_pad).then(FilterNode::new("apad").arg("whole_dur", length)),
            )
            .filter(
                FilterNode::new("amix")
                    .arg("inputs", 2)
                    .arg("duration", "longest")
                    .arg("normalize", false)
                    .input(Pad::link("vpad"))
                    .input(Pad::link("bed"))
                    .output("summed"),
            )
            .chain(
                "mixed",
                Chain::new(Pad::link("summed"))
                    .then(FilterNode::new("atrim").arg("duration", length)),
            )
            .output(Output::new("mix", "wav").audio(Pad::link("mixed"), Encoder::new("pcm_f32le")))
    }

    fn report(
        &self,
        finish: Finish,
        delivery: &Delivery,
        source: &Source,
        duck: Option<&Ducking>,
    ) -> Finish {
        let mut finish = delivery
            .report(finish, source)
            .report("mix_integrated_lufs", source.loudness.integrated_lufs)
            .report("target_lufs", self.settings.target_lufs)
            .report("true_peak_ceiling_db", self.settings.ceiling_db)
            .report("duration_s", round_to(self.duration_s, 3))
            .report("sample_rate", self.sample_rate)
            .report("duck_db", self.settings.duck_db);
        if let Some(d) = duck {
            finish = finish
                .report("duck_threshold_dbfs", d.threshold_db)
                .report("duck_ratio", DUCK_RATIO)
                .report("duck_mix", d.mix)
                .report("duck_key_gain", d.level_sc)
                .report("duck_attack_ms", d.attack_ms)
                .report("duck_release_ms", d.release_ms);
        }
        finish
    }
}

/// The node that makes `channels` stereo: mono duplicated, more channels through ffmpeg's
/// standard downmix; none for stereo.
fn to_stereo(channels: u32) -> Option<FilterNode> {
    match channels {
        1 => Some(FilterNode::new("pan").arg("args", "stereo|c0=c0|c1=c0")),
        2 => None,
        _ => Some(FilterNode::new("aformat").arg("channel_layouts", "stereo")),
    }
}

#[cfg(test)]
mod tests;
