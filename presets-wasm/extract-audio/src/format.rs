//! Which container the extracted stream goes into, and whether it is copied or re-encoded.

use preset_sdk::{AudioStream, Encoder, Refusal, refuse};

/// The `codec` param's choices.
pub const CODECS: [&str; 6] = ["auto", "wav", "flac", "mp3", "aac", "opus"];

/// PCM codecs the WAV muxer writes (little-endian and companded); other PCM goes to Matroska.
const WAV_PCM: [&str; 9] = [
    "pcm_u8",
    "pcm_s16le",
    "pcm_s24le",
    "pcm_s32le",
    "pcm_s64le",
    "pcm_f32le",
    "pcm_f64le",
    "pcm_alaw",
    "pcm_mulaw",
];
/// Sample rates libmp3lame accepts (MPEG-1, -2 and -2.5).
const MP3_RATES: [u32; 9] = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];
/// Highest sample rate ffmpeg's AAC encoder takes.
const AAC_MAX_RATE: u32 = 96_000;

/// The output: a container, and the encoder when the stream is re-encoded (`None`: copied).
#[derive(Clone, Debug, PartialEq)]
pub struct OutputFormat {
    pub container: &'static str,
    pub codec: Option<Encoder>,
}

impl OutputFormat {
    /// The output stream's codec as ffprobe will name it.
    pub fn codec_name(&self, source_codec: &str) -> String {
        match &self.codec {
            None => source_codec.to_owned(),
            Some(encoder) => match encoder.codec.as_str() {
                "libmp3lame" => "mp3".to_owned(),
                "libopus" => "opus".to_owned(),
                other => other.to_owned(),
            },
        }
    }
}

/// `auto`: copy into the container made for the stream's codec. Any other codec: copy when the
/// stream already has it, else re-encode.
pub fn choose(codec: &str, audio: &AudioStream) -> Result<OutputFormat, Refusal> {
    let source = audio.codec();
    let copy = |container| OutputFormat {
        container,
        codec: None,
    };
    let encode = |container, encoder| OutputFormat {
        container,
        codec: Some(encoder),
    };
    let rate = audio.sample_rate();
    Ok(match codec {
        "auto" => copy(auto_container(source)),
        "wav" if WAV_PCM.contains(&source) => copy("wav"),
        "wav" => {
            let pcm = match audio.sample_format() {
                Some("u8" | "u8p" | "s16" | "s16p") => "pcm_s16le",
                Some("flt" | "fltp" | "dbl" | "dblp") => "pcm_f32le",
                _ => "pcm_s24le",
            };
            encode("wav", Encoder::new(pcm))
        }
        "flac" if source == "flac" => copy("flac"),
        "flac" => {
            // 16-bit sources stay 16-bit; everything else becomes 24-bit FLAC.
            let encoder = match audio.sample_format() {
                Some("u8" | "u8p" | "s16" | "s16p") => Encoder::new("flac").sample_format("s16"),
                _ => Encoder::new("flac"),
            };
            encode("flac", encoder)
        }
        "mp3" if source == "mp3" => copy("mp3"),
        "mp3" => {
            let mut encoder = Encoder::new("libmp3lame").bit_rate(320_000);
            if !MP3_RATES.contains(&rate) {
                encoder = encoder.sample_rate(if rate.is_multiple_of(11_025) {
                    44_100
                } else {
                    48_000
                });
            }
            if audio.channels() > 2 {
                encoder = encoder.channels(2);
            }
            encode("mp3", encoder)
        }
        "aac" if source == "aac" => copy("m4a"),
        "aac" => {
            let mut encoder = Encoder::new("aac").bit_rate(256_000);
            if rate > AAC_MAX_RATE {
                encoder = encoder.sample_rate(48_000);
            }
            encode("m4a", encoder)
        }
        "opus" if source == "opus" => copy("opus"),
        "opus" => {
            let mut encoder = Encoder::new("libopus")
                .bit_rate(192_000)
                .sample_rate(48_000);
            // libopus takes more than two channels only in Vorbis order (5.1 with back
            // channels, ...); anything else is downmixed to stereo rather than failing.
            if audio.channels() > 2
                && !matches!(audio.audio.channel_layout.as_deref(), Some("5.1" | "quad"))
            {
                encoder = encoder.channels(2);
            }
            encode("opus", encoder)
        }
        other => {
            return Err(refuse(
                "CODEC_UNSUPPORTED",
                format!("codec '{other}' is not one of {}", CODECS.join(", ")),
            ));
        }
    })
}

/// The container that carries `codec` as it is: the codec's own file type where it has one,
/// Matroska (which takes nearly anything) otherwise.
pub fn auto_container(codec: &str) -> &'static str {
    match codec {
        "aac" => "m4a",
        "mp3" => "mp3",
        "opus" => "opus",
        "flac" => "flac",
        "vorbis" => "ogg",
        pcm if WAV_PCM.contains(&pcm) => "wav",
        // ac3, eac3, dts, truehd, big-endian PCM, alac, ...
        _ => "mkv",
    }
}
