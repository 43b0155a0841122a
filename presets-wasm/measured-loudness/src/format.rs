//! Which file the delivered audio goes into: the `codec` choices these presets share, their
//! containers and encoders, and the headroom each needs below the true-peak ceiling.

use preset_sdk::{Encoder, Refusal, refuse};

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
}
