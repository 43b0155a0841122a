//! channel-normalize: the best audio stream of `main` as mono or stereo PCM (WAV or FLAC), at the
//! sample rate and bit depth asked for, with every channel conversion an explicit `pan` matrix
//! that the job report states.
//!
//! One round, no analyses. The conversions (see [`mix`]):
//!
//! - mono to stereo: the channel on both sides, unchanged in level;
//! - stereo to mono, the "phase-safe choice" (`downmix`): `average` sums the two channels at
//!   -6 dB each, which is right for ordinary stereo but cancels whatever is out of phase between
//!   the channels (a mis-wired microphone, phase-inverted stereo effects); `left` or `right`
//!   keeps one channel only, which cannot cancel anything;
//! - 5.1 (back or side surrounds) to stereo: ITU-R BS.775 coefficients, LFE dropped;
//! - 5.1 to mono: the stereo downmix first, then `downmix` as above.
//!
//! Other layouts with more than two channels are left to ffmpeg's own downmix matrix.

mod mix;

use mix::Mix;
use preset_sdk::*;

struct ChannelNormalize;

impl Preset for ChannelNormalize {
    fn describe() -> Descriptor {
        Descriptor::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
            "Converts the best audio stream to mono or stereo PCM (WAV or FLAC) at a given sample rate and bit depth: mono to stereo, stereo to mono (average, left or right), 5.1 to stereo with ITU coefficients.",
        )
        .input("main", "The media whose best audio stream is converted.")
        .param(ParamSpec::integer("channels", "Output channels: 1 (mono) or 2 (stereo).").range(1, 2).default(2))
        .param(
            ParamSpec::choice(
                "downmix",
                "How stereo becomes mono: average (both channels at -6 dB; out-of-phase content cancels), left or right (one channel only: safe when the channels are out of phase).",
                mix::DOWNMIXES,
            )
            .default("average"),
        )
        .param(
            ParamSpec::integer("sample_rate", "Output sample rate, in Hz. Unset: the input's.")
                .range(8000, 192_000),
        )
        .param(
            ParamSpec::choice(
                "bit_depth",
                "Output sample format: 16 or 24-bit integer, or 32-bit float (WAV only).",
                BIT_DEPTHS,
            )
            .default("16"),
        )
        .param(ParamSpec::choice("codec", "Output codec and container.", ["wav", "flac"]).default("wav"))
    }

    fn plan(request: &PlanRequest) -> Result<Decision, Refusal> {
        let params = request.params();
        let channels = match params.integer("channels")? {
            1 => 1,
            2 => 2,
            other => {
                return Err(refuse(
                    "UNSUPPORTED_CHANNELS",
                    format!("channels must be 1 or 2, not {other}"),
                ));
            }
        };
        let downmix = params.text("downmix")?;
        let codec = params.text("codec")?;
        let bit_depth = params.text("bit_depth")?;
        let encoder = encoder(codec, bit_depth)?;
        let audio = request
            .input("main")?
            .best_audio()
            .ok_or_else(|| refuse("NO_AUDIO", "input 'main' has no audio stream"))?;
        let sample_rate = match params.optional_integer("sample_rate")? {
            Some(rate) => u32::try_from(rate).map_err(|_| {
                refuse(
                    "UNSUPPORTED_SAMPLE_RATE",
                    format!("{rate} Hz is not a sample rate"),
                )
            })?,
            None => audio.sample_rate(),
        };

        let mix = mix::plan(
            audio.channels(),
            audio.audio.channel_layout.as_deref(),
            channels,
            downmix,
        )?;
        let layout = if channels == 1 { "mono" } else { "stereo" };
        let pan = match &mix {
            Mix::Pan(matrix) => Some(matrix.to_pan()),
            Mix::Unchanged | Mix::Default => None,
        };
        let chain = Chain::new(Pad::stream(0, audio.index()))
            // Mix in float so sums above full scale are not clipped before the final format.
            .then_maybe(
                pan.is_some()
                    .then(|| FilterNode::new("aformat").arg("sample_fmts", "flt")),
            )
            .then_maybe(
                pan.as_ref()
                    .map(|p| FilterNode::new("pan").arg("args", p.as_str())),
            )
            .then_maybe(
                (sample_rate != audio.sample_rate())
                    .then(|| FilterNode::new("aresample").arg("sample_rate", sample_rate)),
            )
            // Names the layout; for `Mix::Default` this is where ffmpeg downmixes.
            .then(FilterNode::new("aformat").arg("channel_layouts", layout));
        let step = Step::new("convert")
            .input(MediaRef::input("main"))
            .chain("out", chain)
            .output(Output::new("main", codec).audio(Pad::link("out"), encoder));

        let formula = match (&mix, &pan) {
            (_, Some(pan)) => pan.clone(),
            (Mix::Default, None) => "ffmpeg default downmix".to_owned(),
            _ => "none".to_owned(),
        };
        log::info(format!(
            "stream {} ({} ch, {}, {} Hz) -> {layout}, {sample_rate} Hz, {bit_depth}; pan: {formula}",
            audio.index(),
            audio.channels(),
            audio.audio.channel_layout.as_deref().unwrap_or("no layout"),
            audio.sample_rate(),
        ));
        let mut finish = Finish::new()
            .step(step)
            .report("stream", audio.index())
            .report("channels", channels)
            .report("layout", layout)
            .report("sample_rate", sample_rate)
            .report("bit_depth", bit_depth)
            .report("codec", codec)
            .report("pan_formula", formula)
            .report("source_channels", audio.channels());
        if let Some(source_layout) = &audio.audio.channel_layout {
            finish = finish.report("source_layout", source_layout.as_str());
        }
        if mix.uses_downmix_choice(audio.channels(), channels) {
            finish = finish.report("downmix", downmix);
        }
        Ok(finish.into())
    }
}

export_preset!(ChannelNormalize);

const BIT_DEPTHS: [&str; 3] = ["16", "24", "32f"];

/// The PCM encoder for `codec` at `bit_depth`.
fn encoder(codec: &str, bit_depth: &str) -> Result<Encoder, Refusal> {
    Ok(match (codec, bit_depth) {
        ("wav", "16") => Encoder::new("pcm_s16le"),
        ("wav", "24") => Encoder::new("pcm_s24le"),
        ("wav", "32f") => Encoder::new("pcm_f32le"),
        ("flac", "16") => Encoder::new("flac").sample_format("s16"),
        // FLAC stores s32 input as 24-bit samples.
        ("flac", "24") => Encoder::new("flac").sample_format("s32"),
        ("flac", "32f") => {
            return Err(refuse(
                "UNSUPPORTED_BIT_DEPTH",
                "FLAC has no floating-point samples: ask for bit_depth 16 or 24, or codec wav",
            ));
        }
        (codec, depth) => {
            return Err(refuse(
                "UNSUPPORTED_FORMAT",
                format!(
                    "codec '{codec}' at bit_depth '{depth}' is not one of wav or flac at 16, 24 or 32f"
                ),
            ));
        }
    })
}

#[cfg(test)]
mod tests;
