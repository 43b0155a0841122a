//! Which file the normalized audio goes into: container, encoder and the headroom that encoder
//! needs below the true-peak ceiling.

use preset_sdk::{AudioStream, Encoder, Refusal, refuse};

/// Sample rates libmp3lame accepts (MPEG-1, -2 and -2.5).
const MP3_RATES: [u32; 9] = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];

/// The output's container and encoder.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputFormat {
    pub container: &'static str,
    pub encoder: Encoder,
    /// Lossy encoders overshoot the source's true peak; they get more headroom.
    pub lossy: bool,
}

impl OutputFormat {
    /// dB kept free below the true-peak ceiling: lossless output lands where it was measured,
    /// lossy decoding adds overshoot of up to about a dB.
    pub fn headroom_db(&self) -> f64 {
        if self.lossy { 1.0 } else { 0.1 }
    }

    /// The short name the job report uses ("wav", "flac", "mp3", "aac", "opus"), from the
    /// encoder (the container may be Matroska or MP4 when other streams are kept).
    pub fn codec_name(&self) -> &'static str {
        match self.encoder.codec.as_str() {
            "flac" => "flac",
            "libmp3lame" => "mp3",
            "aac" => "aac",
            "libopus" => "opus",
            _ => "wav",
        }
    }
}

/// The format for the `codec` param (`auto` keeps the input's format class), keeping the input's
/// sample rate and channels wherever the encoder allows.
pub fn choose(codec: &str, audio: &AudioStream) -> Result<OutputFormat, Refusal> {
    let codec = match codec {
        "auto" => auto_codec(audio.codec()),
        explicit => explicit,
    };
    let rate = audio.sample_rate();
    let format = match codec {
        "wav" => {
            let pcm = match audio.codec() {
                same @ ("pcm_s16le" | "pcm_s24le" | "pcm_f32le") => same,
                _ => "pcm_s24le",
            };
            lossless("wav", Encoder::new(pcm))
        }
        "flac" => {
            let encoder = Encoder::new("flac");
            // Keep 16-bit sources 16-bit; everything else goes to 24-bit FLAC.
            let encoder = match audio.sample_format() {
                Some("s16" | "s16p") => encoder.sample_format("s16"),
                _ => encoder,
            };
            lossless("flac", encoder)
        }
        "mp3" => {
            let mut encoder = Encoder::new("libmp3lame").bit_rate(320_000);
            if !MP3_RATES.contains(&rate) {
                encoder = encoder.sample_rate(if rate.is_multiple_of(11025) {
                    44100
                } else {
                    48000
                });
            }
            if audio.channels() > 2 {
                encoder = encoder.channels(2);
            }
            lossy("mp3", encoder)
        }
        "aac" => {
            let mut encoder = Encoder::new("aac").bit_rate(256_000);
            if rate > 96_000 {
                encoder = encoder.sample_rate(48_000);
            }
            lossy("m4a", encoder)
        }
        "opus" => lossy(
            "opus",
            Encoder::new("libopus")
                .bit_rate(192_000)
                .sample_rate(48_000),
        ),
        other => {
            return Err(refuse(
                "CODEC_UNSUPPORTED",
                format!("codec '{other}' is not one of auto, wav, flac, mp3, aac, opus"),
            ));
        }
    };
    Ok(format)
}

/// `auto`: the input's format class, FLAC for anything else.
fn auto_codec(input_codec: &str) -> &'static str {
    match input_codec {
        pcm if pcm.starts_with("pcm_") => "wav",
        "mp3" => "mp3",
        "aac" => "aac",
        "opus" => "opus",
        _ => "flac",
    }
}

fn lossless(container: &'static str, encoder: Encoder) -> OutputFormat {
    OutputFormat {
        container,
        encoder,
        lossy: false,
    }
}

fn lossy(container: &'static str, encoder: Encoder) -> OutputFormat {
    OutputFormat {
        container,
        encoder,
        lossy: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use preset_sdk::{MediaInfo, StreamInfo};

    fn format_for(codec_param: &str, stream: StreamInfo) -> OutputFormat {
        let info = MediaInfo::new(&["x"]).with_stream(stream);
        choose(codec_param, &info.best_audio().unwrap()).unwrap()
    }

    #[test]
    fn auto_keeps_the_format_class() {
        let cases = [
            ("pcm_s16le", "wav", "pcm_s16le"),
            ("pcm_f32le", "wav", "pcm_f32le"),
            ("pcm_s32le", "wav", "pcm_s24le"),
            ("flac", "flac", "flac"),
            ("mp3", "mp3", "libmp3lame"),
            ("aac", "m4a", "aac"),
            ("opus", "opus", "libopus"),
            ("vorbis", "flac", "flac"),
        ];
        for (input, container, encoder) in cases {
            let format = format_for("auto", StreamInfo::new_audio(0, input, 44_100, 2));
            assert_eq!(
                (format.container, format.encoder.codec.as_str()),
                (container, encoder),
                "{input}"
            );
        }
    }

    #[test]
    fn lossy_formats_carry_bit_rates_and_headroom() {
        let mp3 = format_for("mp3", StreamInfo::new_audio(0, "flac", 44_100, 2));
        assert_eq!(mp3.encoder.bit_rate, Some(320_000));
        assert_eq!(mp3.headroom_db(), 1.0);
        let aac = format_for("aac", StreamInfo::new_audio(0, "flac", 44_100, 2));
        assert_eq!(
            (aac.container, aac.encoder.bit_rate),
            ("m4a", Some(256_000))
        );
        let opus = format_for("opus", StreamInfo::new_audio(0, "flac", 44_100, 2));
        assert_eq!(
            (opus.encoder.bit_rate, opus.encoder.sample_rate),
            (Some(192_000), Some(48_000))
        );
        assert_eq!(
            format_for("wav", StreamInfo::new_audio(0, "mp3", 44_100, 2)).headroom_db(),
            0.1
        );
    }

    #[test]
    fn mp3_gets_an_mpeg_rate_and_at_most_two_channels() {
        let format = format_for("mp3", StreamInfo::new_audio(0, "flac", 96_000, 6));
        assert_eq!(
            (format.encoder.sample_rate, format.encoder.channels),
            (Some(48_000), Some(2))
        );
        let format = format_for("mp3", StreamInfo::new_audio(0, "flac", 88_200, 2));
        assert_eq!(format.encoder.sample_rate, Some(44_100));
        let format = format_for("mp3", StreamInfo::new_audio(0, "flac", 22_050, 1));
        assert_eq!(
            (format.encoder.sample_rate, format.encoder.channels),
            (None, None)
        );
    }

    #[test]
    fn sixteen_bit_flac_stays_sixteen_bit() {
        let s16 = StreamInfo::new_audio(0, "pcm_s16le", 48_000, 2).with_sample_format("s16");
        assert_eq!(
            format_for("flac", s16).encoder.sample_format.as_deref(),
            Some("s16")
        );
        let s32 = StreamInfo::new_audio(0, "pcm_s24le", 48_000, 2).with_sample_format("s32");
        assert_eq!(format_for("flac", s32).encoder.sample_format, None);
    }
}
