//! Which file the delivered audio goes into: the `codec` choices these presets share, their
//! containers and encoders, and the headroom each needs below the true-peak ceiling.

use preset_sdk::{AudioStream, Encoder, Refusal, refuse};

/// The `codec` param's choices, in the order presets list them.
pub const CODECS: [&str; 5] = ["wav", "flac", "mp3", "aac", "opus"];

/// Sample rates libmp3lame accepts (MPEG-1, -2 and -2.5).
const MP3_RATES: [u32; 9] = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000];

/// The output's container and encoder.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputFormat {
    /// The codec choice it was made from ("wav", "flac", "mp3", "aac", "opus").
    pub codec: &'static str,
    /// The container the plan names ("wav", "flac", "mp3", "m4a", "opus").
    pub container: &'static str,
    /// The encoder, with the sample rate set when the codec cannot take the audio's own.
    pub encoder: Encoder,
    /// Lossy encoders overshoot the source's true peak; they get more headroom.
    pub lossy: bool,
}

impl OutputFormat {
    /// The format for a `codec` choice, for audio at `sample_rate` Hz: 24-bit WAV, FLAC, MP3
    /// 320k, AAC 256k in M4A or Opus 192k. MP3 moves to the nearest MPEG rate family, Opus to
    /// 48 kHz, AAC above 96 kHz to 48 kHz; the channel count is the audio's (at most 2 here).
    ///
    /// ```
    /// use measured_loudness::OutputFormat;
    ///
    /// let opus = OutputFormat::for_codec("opus", 22_050).unwrap();
    /// assert_eq!((opus.container, opus.encoder.sample_rate), ("opus", Some(48_000)));
    /// assert_eq!(OutputFormat::for_codec("wma", 48_000).unwrap_err().code, "CODEC_UNSUPPORTED");
    /// ```
    pub fn for_codec(codec: &str, sample_rate: u32) -> Result<OutputFormat, Refusal> {
        Ok(match codec {
            "wav" => lossless("wav", "wav", Encoder::new("pcm_s24le")),
            "flac" => lossless("flac", "flac", Encoder::new("flac")),
            "mp3" => {
                let mut encoder = Encoder::new("libmp3lame").bit_rate(320_000);
                if !MP3_RATES.contains(&sample_rate) {
                    encoder = encoder.sample_rate(if sample_rate.is_multiple_of(11025) {
                        44100
                    } else {
                        48000
                    });
                }
                lossy("mp3", "mp3", encoder)
            }
            "aac" => {
                let mut encoder = Encoder::new("aac").bit_rate(256_000);
                if sample_rate > 96_000 {
                    encoder = encoder.sample_rate(48_000);
                }
                lossy("aac", "m4a", encoder)
            }
            "opus" => lossy(
                "opus",
                "opus",
                Encoder::new("libopus")
                    .bit_rate(192_000)
                    .sample_rate(48_000),
            ),
            other => {
                return Err(refuse(
                    "CODEC_UNSUPPORTED",
                    format!("codec '{other}' is not one of {}", CODECS.join(", ")),
                ));
            }
        })
    }

    /// The format for a `codec` choice or `auto` (the format class of `audio`'s codec, FLAC
    /// for anything else), kept as close to `audio` as the encoder allows: what
    /// [`for_codec`](OutputFormat::for_codec) gives, except that WAV keeps 16-bit, 24-bit and
    /// float PCM as it is, FLAC keeps 16-bit audio 16-bit and MP3 takes at most two channels.
    ///
    /// ```
    /// use measured_loudness::OutputFormat;
    /// use preset_sdk::{MediaInfo, StreamInfo};
    ///
    /// let info = MediaInfo::new(&["wav"]).with_stream(StreamInfo::new_audio(0, "pcm_s16le", 44_100, 6));
    /// let audio = info.best_audio().unwrap();
    /// let wav = OutputFormat::for_audio("auto", &audio).unwrap();
    /// assert_eq!((wav.codec, wav.encoder.codec.as_str()), ("wav", "pcm_s16le"));
    /// assert_eq!(OutputFormat::for_audio("mp3", &audio).unwrap().encoder.channels, Some(2));
    /// ```
    pub fn for_audio(codec: &str, audio: &AudioStream) -> Result<OutputFormat, Refusal> {
        let codec = match codec {
            "auto" => auto_codec(audio.codec()),
            choice => CODECS.iter().find(|c| **c == choice).ok_or_else(|| {
                refuse(
                    "CODEC_UNSUPPORTED",
                    format!("codec '{choice}' is not one of auto, {}", CODECS.join(", ")),
                )
            })?,
        };
        let mut format = OutputFormat::for_codec(codec, audio.sample_rate())?;
        match codec {
            "wav" => {
                if let same @ ("pcm_s16le" | "pcm_s24le" | "pcm_f32le") = audio.codec() {
                    format.encoder = Encoder::new(same);
                }
            }
            "flac" => {
                if let Some("s16" | "s16p") = audio.sample_format() {
                    format.encoder = format.encoder.sample_format("s16");
                }
            }
            "mp3" if audio.channels() > 2 => format.encoder = format.encoder.channels(2),
            _ => {}
        }
        Ok(format)
    }

    /// dB kept free below the true-peak ceiling: lossless output lands where it was measured,
    /// lossy decoding adds overshoot of up to about a dB.
    ///
    /// ```
    /// use measured_loudness::OutputFormat;
    /// assert_eq!(OutputFormat::for_codec("mp3", 44_100).unwrap().headroom_db(), 1.0);
    /// ```
    pub fn headroom_db(&self) -> f64 {
        if self.lossy { 1.0 } else { 0.1 }
    }
}

/// `auto`'s choice for audio in `input_codec`: its format class, FLAC for anything else.
fn auto_codec(input_codec: &str) -> &'static str {
    match input_codec {
        pcm if pcm.starts_with("pcm_") => "wav",
        "mp3" => "mp3",
        "aac" => "aac",
        "opus" => "opus",
        _ => "flac",
    }
}

fn lossless(codec: &'static str, container: &'static str, encoder: Encoder) -> OutputFormat {
    OutputFormat {
        codec,
        container,
        encoder,
        lossy: false,
    }
}

fn lossy(codec: &'static str, container: &'static str, encoder: Encoder) -> OutputFormat {
    OutputFormat {
        codec,
        container,
        encoder,
        lossy: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use preset_sdk::{MediaInfo, StreamInfo};

    #[test]
    fn every_choice_has_a_container_and_encoder() {
        let made: Vec<_> = CODECS
            .iter()
            .map(|c| {
                let f = OutputFormat::for_codec(c, 48_000).unwrap();
                (f.container, f.encoder.codec)
            })
            .collect();
        assert_eq!(
            made,
            [
                ("wav", "pcm_s24le".to_owned()),
                ("flac", "flac".to_owned()),
                ("mp3", "libmp3lame".to_owned()),
                ("m4a", "aac".to_owned()),
                ("opus", "libopus".to_owned()),
            ]
        );
    }

    #[test]
    fn lossy_codecs_get_rates_they_can_encode() {
        let mp3 = OutputFormat::for_codec("mp3", 88_200).unwrap();
        assert_eq!(mp3.encoder.sample_rate, Some(44_100));
        let mp3 = OutputFormat::for_codec("mp3", 22_050).unwrap();
        assert_eq!(mp3.encoder.sample_rate, None);
        let aac = OutputFormat::for_codec("aac", 192_000).unwrap();
        assert_eq!(aac.encoder.sample_rate, Some(48_000));
        assert_eq!(
            OutputFormat::for_codec("flac", 22_050)
                .unwrap()
                .headroom_db(),
            0.1
        );
    }

    fn format_for(codec_param: &str, stream: StreamInfo) -> OutputFormat {
        let info = MediaInfo::new(&["x"]).with_stream(stream);
        OutputFormat::for_audio(codec_param, &info.best_audio().unwrap()).unwrap()
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

    #[test]
    fn auto_and_unknown_choices_are_named_in_the_refusal() {
        let info = MediaInfo::new(&["x"]).with_stream(StreamInfo::new_audio(0, "flac", 44_100, 2));
        let refusal = OutputFormat::for_audio("wma", &info.best_audio().unwrap()).unwrap_err();
        assert_eq!(refusal.code, "CODEC_UNSUPPORTED");
        assert_eq!(
            refusal.message,
            "codec 'wma' is not one of auto, wav, flac, mp3, aac, opus"
        );
    }
}
