//! audio-convert: the best audio stream of `main`, re-encoded to one codec in its usual
//! container, optionally resampled, remixed to another channel count, or at another bit rate.
//!
//! One round, no analyses: everything it needs is in ffprobe's view of the input. Requests an
//! encoder cannot honour are refused up front with a code saying which setting to change,
//! instead of failing inside ffmpeg.

use preset_sdk::*;

/// Sample rates libopus encodes.
const OPUS_RATES: [u32; 5] = [8000, 12000, 16000, 24000, 48000];
/// Sample rates MP3 (MPEG-1, -2, -2.5 layer III) has.
const MP3_RATES: [u32; 9] = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];
/// Highest sample rate ffmpeg's AAC encoder takes.
const AAC_MAX_RATE: u32 = 96_000;
/// Highest MP3 bit rate.
const MP3_MAX_KBPS: i64 = 320;

struct AudioConvert;

impl Preset for AudioConvert {
    fn describe() -> Descriptor {
        Descriptor::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
            "Converts the best audio stream to WAV, FLAC, MP3, AAC (M4A) or Opus, optionally changing sample rate, channels or bit rate.",
        )
        .input("main", "The media whose best audio stream is converted.")
        .param(ParamSpec::choice("codec", "Output codec.", CODECS).default("flac"))
        .param(
            ParamSpec::integer(
                "bitrate_kbps",
                "Bit rate for lossy codecs, in kbit/s (default: mp3 192, aac 192, opus 128); ignored for wav and flac.",
            )
            .range(8, 512),
        )
        .param(
            ParamSpec::integer("sample_rate", "Output sample rate, in Hz. Unset: the input's (Opus: 48000 unless the input's is an Opus rate).")
                .range(8000, 192_000),
        )
        .param(ParamSpec::integer("channels", "Output channel count (remixed by ffmpeg). Unset: the input's.").range(1, 8))
    }

    fn plan(request: &PlanRequest) -> Result<Decision, Refusal> {
        let params = request.params();
        let codec = Codec::parse(params.text("codec")?)?;
        let audio = request
            .input("main")?
            .best_audio()
            .ok_or_else(|| refuse("NO_AUDIO", "input 'main' has no audio stream"))?;

        let sample_rate =
            codec.sample_rate(params.optional_integer("sample_rate")?, audio.sample_rate())?;
        let channels = codec.channels(params.optional_integer("channels")?, audio.channels())?;
        let bitrate_kbps = codec.bitrate_kbps(params.optional_integer("bitrate_kbps")?)?;

        let mut encoder = Encoder::new(codec.encoder())
            .sample_rate(sample_rate)
            .channels(channels);
        if let Some(kbps) = bitrate_kbps {
            encoder = encoder.bit_rate(kbps as u64 * 1000);
        }
        let step = Step::new("convert").input(MediaRef::input("main")).output(
            Output::new("main", codec.container()).audio(Pad::stream(0, audio.index()), encoder),
        );
        log::info(format!(
            "stream {} ({} {} Hz {} ch) -> {} {sample_rate} Hz {channels} ch",
            audio.index(),
            audio.codec(),
            audio.sample_rate(),
            audio.channels(),
            codec.name()
        ));

        let mut finish = Finish::new()
            .step(step)
            .report("codec", codec.name())
            .report("sample_rate", sample_rate)
            .report("channels", channels);
        if let Some(kbps) = bitrate_kbps {
            finish = finish.report("bitrate_kbps", kbps);
        }
        Ok(finish.into())
    }
}

export_preset!(AudioConvert);

const CODECS: [&str; 5] = ["wav", "flac", "mp3", "aac", "opus"];

/// The `codec` param's choices.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Codec {
    Wav,
    Flac,
    Mp3,
    Aac,
    Opus,
}

impl Codec {
    fn parse(name: &str) -> Result<Self, Refusal> {
        Ok(match name {
            "wav" => Codec::Wav,
            "flac" => Codec::Flac,
            "mp3" => Codec::Mp3,
            "aac" => Codec::Aac,
            "opus" => Codec::Opus,
            other => {
                return Err(refuse(
                    "UNSUPPORTED_CODEC",
                    format!("codec '{other}' is not one of {}", CODECS.join(", ")),
                ));
            }
        })
    }

    fn name(self) -> &'static str {
        CODECS[self as usize]
    }

    fn container(self) -> &'static str {
        match self {
            Codec::Wav => "wav",
            Codec::Flac => "flac",
            Codec::Mp3 => "mp3",
            Codec::Aac => "m4a",
            Codec::Opus => "opus",
        }
    }

    fn encoder(self) -> &'static str {
        match self {
            Codec::Wav => "pcm_s16le",
            Codec::Flac => "flac",
            Codec::Mp3 => "libmp3lame",
            Codec::Aac => "aac",
            Codec::Opus => "libopus",
        }
    }

    /// The output rate: the requested one if the codec has it (else a refusal), or the
    /// input's, moved to the nearest rate the codec has when it has not.
    fn sample_rate(self, requested: Option<i64>, input: u32) -> Result<u32, Refusal> {
        let supported: Option<&[u32]> = match self {
            Codec::Opus => Some(&OPUS_RATES),
            Codec::Mp3 => Some(&MP3_RATES),
            _ => None,
        };
        if let Some(requested) = requested {
            let rate = u32::try_from(requested).map_err(|_| unsupported_rate(self, requested))?;
            let ok = match (self, supported) {
                (_, Some(rates)) => rates.contains(&rate),
                (Codec::Aac, None) => rate <= AAC_MAX_RATE,
                _ => true,
            };
            return if ok {
                Ok(rate)
            } else {
                Err(unsupported_rate(self, requested))
            };
        }
        Ok(match (self, supported) {
            (_, Some(rates)) if rates.contains(&input) => input,
            (Codec::Opus, _) => 48_000,
            (_, Some(_)) if input.is_multiple_of(11_025) => 44_100,
            (_, Some(_)) => 48_000,
            (Codec::Aac, None) if input > AAC_MAX_RATE => 48_000,
            _ => input,
        })
    }

    /// The output channel count: the requested one if the codec takes it (else a refusal), or
    /// the input's, downmixed to stereo for MP3.
    fn channels(self, requested: Option<i64>, input: u32) -> Result<u32, Refusal> {
        let max = if self == Codec::Mp3 { 2 } else { 8 };
        match requested {
            Some(n) if !(1..=max).contains(&n) => Err(refuse(
                "UNSUPPORTED_CHANNELS",
                format!(
                    "{} takes 1 to {max} channels, not {n}; ask for fewer channels or another codec",
                    self.name()
                ),
            )),
            Some(n) => Ok(n as u32),
            None if self == Codec::Mp3 => Ok(input.min(2)),
            None => Ok(input),
        }
    }

    /// The bit rate for lossy codecs (the request or the codec's default); none for lossless.
    fn bitrate_kbps(self, requested: Option<i64>) -> Result<Option<i64>, Refusal> {
        let default = match self {
            Codec::Wav | Codec::Flac => {
                if requested.is_some() {
                    log::info(format!(
                        "bitrate_kbps is ignored: {} is lossless",
                        self.name()
                    ));
                }
                return Ok(None);
            }
            Codec::Mp3 | Codec::Aac => 192,
            Codec::Opus => 128,
        };
        match requested {
            Some(kbps) if self == Codec::Mp3 && kbps > MP3_MAX_KBPS => Err(refuse(
                "UNSUPPORTED_BITRATE",
                format!("mp3 goes up to {MP3_MAX_KBPS} kbit/s, not {kbps}"),
            )),
            Some(kbps) => Ok(Some(kbps)),
            None => Ok(Some(default)),
        }
    }
}

fn unsupported_rate(codec: Codec, requested: i64) -> Refusal {
    let supported = match codec {
        Codec::Opus => format!("one of {OPUS_RATES:?} Hz"),
        Codec::Mp3 => format!("one of {MP3_RATES:?} Hz"),
        Codec::Aac => format!("at most {AAC_MAX_RATE} Hz"),
        Codec::Wav | Codec::Flac => "a positive rate".to_owned(),
    };
    refuse(
        "UNSUPPORTED_SAMPLE_RATE",
        format!(
            "{} cannot encode at {requested} Hz: ask for {supported}",
            codec.name()
        ),
    )
}

#[cfg(test)]
mod tests;
