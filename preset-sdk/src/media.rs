//! What the inputs are: lookups in a [`PlanRequest`], stream selection in a [`MediaInfo`], and
//! constructors for building requests by hand in tests.

use crate::{
    AnalysisResult, AnalysisValue, AudioInfo, ColorInfo, Container, Disposition, Loudness,
    MediaInfo, MediaRef, NamedMedia, Param, ParamValue, Params, PlanRequest, Refusal, StreamDetail,
    StreamInfo, StreamKind, VideoInfo,
};

impl MediaRef {
    /// A job input, by the name the descriptor declared.
    ///
    /// ```
    /// assert_eq!(preset_sdk::MediaRef::input("main"), preset_sdk::MediaRef::Input("main".into()));
    /// ```
    pub fn input(name: impl Into<String>) -> Self {
        MediaRef::Input(name.into())
    }

    /// An intermediate produced by an earlier round, by its output name.
    ///
    /// ```
    /// let pass = preset_sdk::MediaRef::produced("pass1");
    /// assert_eq!(pass.name(), "pass1");
    /// ```
    pub fn produced(name: impl Into<String>) -> Self {
        MediaRef::Produced(name.into())
    }

    /// The input or output name this refers to.
    ///
    /// ```
    /// assert_eq!(preset_sdk::MediaRef::input("main").name(), "main");
    /// ```
    pub fn name(&self) -> &str {
        match self {
            MediaRef::Input(name) | MediaRef::Produced(name) => name,
        }
    }
}

impl PlanRequest {
    /// An empty request for round `round`: build one by hand to unit-test a preset.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let request = PlanRequest::new(2)
    ///     .with_input("main", MediaInfo::new(&["wav"]).with_stream(StreamInfo::new_audio(0, "pcm_s16le", 48_000, 2)))
    ///     .with_param("target_lufs", -16.0)
    ///     .with_analysis("input", Loudness::new(-20.0, -3.0, 5.0));
    /// assert_eq!(request.round, 2);
    /// ```
    pub fn new(round: u32) -> Self {
        PlanRequest {
            round,
            inputs: Vec::new(),
            params: Vec::new(),
            produced: Vec::new(),
            analyses: Vec::new(),
        }
    }

    /// Adds a job input.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let request = PlanRequest::new(1).with_input("main", MediaInfo::new(&["flac"]));
    /// assert!(request.input("main").is_ok());
    /// ```
    pub fn with_input(mut self, name: impl Into<String>, info: MediaInfo) -> Self {
        self.inputs.push(NamedMedia {
            source: MediaRef::input(name),
            info,
        });
        self
    }

    /// Adds an intermediate, as if an earlier round had produced it.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let request = PlanRequest::new(3).with_intermediate("pass1", MediaInfo::new(&["wav"]));
    /// assert!(request.intermediate("pass1").is_some());
    /// ```
    pub fn with_intermediate(mut self, name: impl Into<String>, info: MediaInfo) -> Self {
        self.produced.push(NamedMedia {
            source: MediaRef::produced(name),
            info,
        });
        self
    }

    /// Adds (or replaces) a param.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let request = PlanRequest::new(1).with_param("codec", "auto").with_param("codec", "flac");
    /// assert_eq!(request.params().text("codec"), Ok("flac"));
    /// ```
    pub fn with_param(mut self, name: impl Into<String>, value: impl Into<ParamValue>) -> Self {
        let name = name.into();
        self.params.retain(|p| p.name != name);
        self.params.push(Param {
            name,
            value: value.into(),
        });
        self
    }

    /// Adds an analysis result, as if an earlier round had measured it.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let request = PlanRequest::new(2).with_analysis("input", Loudness::new(-23.0, -6.0, 4.0));
    /// assert_eq!(request.loudness("input").map(|l| l.integrated_lufs), Some(-23.0));
    /// ```
    pub fn with_analysis(mut self, id: impl Into<String>, value: impl Into<AnalysisValue>) -> Self {
        self.analyses.push(AnalysisResult {
            id: id.into(),
            value: value.into(),
        });
        self
    }

    /// The job's params, typed; see [`Params`].
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let request = PlanRequest::new(1).with_param("gain_db", 3.0);
    /// assert_eq!(request.params().number("gain_db"), Ok(3.0));
    /// ```
    pub fn params(&self) -> Params<'_> {
        Params::new(&self.params)
    }

    /// A job input's media info; refuses with `INPUT_MISSING` when the job has no such input.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// assert_eq!(PlanRequest::new(1).input("main").unwrap_err().code, "INPUT_MISSING");
    /// ```
    pub fn input(&self, name: &str) -> Result<&MediaInfo, Refusal> {
        self.inputs
            .iter()
            .find(|m| matches!(&m.source, MediaRef::Input(n) if n == name))
            .map(|m| &m.info)
            .ok_or_else(|| Refusal::new("INPUT_MISSING", format!("the job has no input '{name}'")))
    }

    /// An intermediate produced by an earlier round, by output name.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// assert!(PlanRequest::new(1).intermediate("pass1").is_none());
    /// ```
    pub fn intermediate(&self, name: &str) -> Option<&MediaInfo> {
        self.produced
            .iter()
            .find(|m| matches!(&m.source, MediaRef::Produced(n) if n == name))
            .map(|m| &m.info)
    }

    /// The media a [`MediaRef`] points at: an input or an intermediate.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let request = PlanRequest::new(1).with_input("main", MediaInfo::new(&["wav"]));
    /// assert!(request.media(&MediaRef::input("main")).is_some());
    /// assert!(request.media(&MediaRef::produced("main")).is_none());
    /// ```
    pub fn media(&self, source: &MediaRef) -> Option<&MediaInfo> {
        match source {
            MediaRef::Input(name) => self.input(name).ok(),
            MediaRef::Produced(name) => self.intermediate(name),
        }
    }

    /// The result of the analysis requested with `id`, if it has been run.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let request = PlanRequest::new(2).with_analysis("input", Loudness::new(-20.0, -1.0, 3.0));
    /// assert!(matches!(request.analysis("input"), Some(AnalysisValue::Loudness(_))));
    /// ```
    pub fn analysis(&self, id: &str) -> Option<&AnalysisValue> {
        self.analyses.iter().find(|a| a.id == id).map(|a| &a.value)
    }

    /// The loudness measured by the analysis `id`, if it has been run.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let request = PlanRequest::new(2).with_analysis("input", Loudness::new(-20.0, -1.0, 3.0));
    /// assert_eq!(request.loudness("input").map(|l| l.true_peak_dbtp), Some(-1.0));
    /// assert!(request.loudness("pass1").is_none());
    /// ```
    pub fn loudness(&self, id: &str) -> Option<&Loudness> {
        match self.analysis(id)? {
            AnalysisValue::Loudness(loudness) => Some(loudness),
            _ => None,
        }
    }
}

impl Loudness {
    /// A measurement with the gating threshold set 10 LU below `integrated` (as BS.1770's
    /// relative gate puts it); handy in tests.
    ///
    /// ```
    /// let l = preset_sdk::Loudness::new(-16.0, -1.5, 6.0);
    /// assert_eq!(l.threshold_lufs, -26.0);
    /// ```
    pub fn new(integrated_lufs: f64, true_peak_dbtp: f64, lra_lu: f64) -> Self {
        Loudness {
            integrated_lufs,
            true_peak_dbtp,
            lra_lu,
            threshold_lufs: integrated_lufs - 10.0,
        }
    }
}

impl From<Loudness> for AnalysisValue {
    fn from(loudness: Loudness) -> Self {
        AnalysisValue::Loudness(loudness)
    }
}

/// One audio stream of a file, with its audio details at hand.
///
/// ```
/// use preset_sdk::*;
///
/// let info = MediaInfo::new(&["wav"]).with_stream(StreamInfo::new_audio(0, "pcm_s16le", 44_100, 1));
/// let audio = info.best_audio().unwrap();
/// assert_eq!((audio.index(), audio.codec(), audio.sample_rate(), audio.channels()), (0, "pcm_s16le", 44_100, 1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AudioStream<'a> {
    /// The stream as ffprobe saw it.
    pub stream: &'a StreamInfo,
    /// Its audio details.
    pub audio: &'a AudioInfo,
}

impl AudioStream<'_> {
    /// Absolute stream index within its file (what [`crate::Pad::stream`] and analyses take).
    ///
    /// ```
    /// # use preset_sdk::*;
    /// let info = MediaInfo::new(&["mkv"]).with_stream(StreamInfo::new_audio(3, "opus", 48_000, 2));
    /// assert_eq!(info.best_audio().unwrap().index(), 3);
    /// ```
    pub fn index(&self) -> u32 {
        self.stream.index
    }

    /// ffprobe's codec name ("pcm_s16le", "flac", "mp3", "aac", "opus", ...).
    ///
    /// ```
    /// # use preset_sdk::*;
    /// let info = MediaInfo::new(&["flac"]).with_stream(StreamInfo::new_audio(0, "flac", 48_000, 2));
    /// assert_eq!(info.best_audio().unwrap().codec(), "flac");
    /// ```
    pub fn codec(&self) -> &str {
        &self.stream.codec
    }

    /// Sample rate in Hz.
    ///
    /// ```
    /// # use preset_sdk::*;
    /// let info = MediaInfo::new(&["wav"]).with_stream(StreamInfo::new_audio(0, "pcm_s16le", 22_050, 1));
    /// assert_eq!(info.best_audio().unwrap().sample_rate(), 22_050);
    /// ```
    pub fn sample_rate(&self) -> u32 {
        self.audio.sample_rate
    }

    /// Channel count.
    ///
    /// ```
    /// # use preset_sdk::*;
    /// let info = MediaInfo::new(&["wav"]).with_stream(StreamInfo::new_audio(0, "pcm_s16le", 48_000, 6));
    /// assert_eq!(info.best_audio().unwrap().channels(), 6);
    /// ```
    pub fn channels(&self) -> u32 {
        self.audio.channels
    }

    /// ffmpeg's sample format name ("s16", "s32", "fltp", ...), when known.
    ///
    /// ```
    /// # use preset_sdk::*;
    /// let stream = StreamInfo::new_audio(0, "flac", 48_000, 2).with_sample_format("s16");
    /// let info = MediaInfo::new(&["flac"]).with_stream(stream);
    /// assert_eq!(info.best_audio().unwrap().sample_format(), Some("s16"));
    /// ```
    pub fn sample_format(&self) -> Option<&str> {
        self.audio.sample_format.as_deref()
    }
}

impl MediaInfo {
    /// Media with the given container format names and no streams yet; for tests.
    ///
    /// ```
    /// let info = preset_sdk::MediaInfo::new(&["mov", "mp4", "m4a"]);
    /// assert!(info.has_format("m4a"));
    /// ```
    pub fn new(format_names: &[&str]) -> Self {
        MediaInfo {
            container: Container {
                format_names: format_names.iter().map(|s| (*s).to_owned()).collect(),
                duration_s: None,
                size_bytes: 0,
                bit_rate: None,
                tags: Vec::new(),
            },
            streams: Vec::new(),
        }
    }

    /// Adds a stream.
    ///
    /// ```
    /// # use preset_sdk::*;
    /// let info = MediaInfo::new(&["wav"]).with_stream(StreamInfo::new_audio(0, "pcm_s16le", 48_000, 2));
    /// assert_eq!(info.streams.len(), 1);
    /// ```
    pub fn with_stream(mut self, stream: StreamInfo) -> Self {
        self.streams.push(stream);
        self
    }

    /// Sets the container duration.
    ///
    /// ```
    /// let info = preset_sdk::MediaInfo::new(&["wav"]).with_duration(14.4);
    /// assert_eq!(info.container.duration_s, Some(14.4));
    /// ```
    pub fn with_duration(mut self, seconds: f64) -> Self {
        self.container.duration_s = Some(seconds);
        self
    }

    /// Whether ffprobe named this container format (`format_names` holds every alias).
    ///
    /// ```
    /// let info = preset_sdk::MediaInfo::new(&["ogg"]);
    /// assert!(info.has_format("ogg") && !info.has_format("wav"));
    /// ```
    pub fn has_format(&self, name: &str) -> bool {
        self.container.format_names.iter().any(|f| f == name)
    }

    /// The stream with absolute index `index`.
    ///
    /// ```
    /// # use preset_sdk::*;
    /// let info = MediaInfo::new(&["mkv"]).with_stream(StreamInfo::new_audio(1, "aac", 48_000, 2));
    /// assert!(info.stream(1).is_some() && info.stream(0).is_none());
    /// ```
    pub fn stream(&self, index: u32) -> Option<&StreamInfo> {
        self.streams.iter().find(|s| s.index == index)
    }

    /// Every audio stream, in file order.
    ///
    /// ```
    /// # use preset_sdk::*;
    /// let info = MediaInfo::new(&["mkv"])
    ///     .with_stream(StreamInfo::new_audio(0, "aac", 48_000, 2))
    ///     .with_stream(StreamInfo::new_audio(1, "ac3", 48_000, 6));
    /// assert_eq!(info.audio_streams().count(), 2);
    /// ```
    pub fn audio_streams(&self) -> impl Iterator<Item = AudioStream<'_>> {
        self.streams
            .iter()
            .filter_map(|stream| stream.audio().map(|audio| AudioStream { stream, audio }))
    }

    /// The audio stream a listener would get: the default-disposition one first, then the
    /// one with most channels, then the lowest index. `None` when there is no audio.
    ///
    /// ```
    /// # use preset_sdk::*;
    /// let info = MediaInfo::new(&["mkv"])
    ///     .with_stream(StreamInfo::new_audio(1, "aac", 48_000, 2))
    ///     .with_stream(StreamInfo::new_audio(2, "ac3", 48_000, 6));
    /// assert_eq!(info.best_audio().map(|a| a.index()), Some(2));
    /// ```
    pub fn best_audio(&self) -> Option<AudioStream<'_>> {
        self.audio_streams().max_by_key(|a| {
            (
                a.stream.disposition.default,
                a.audio.channels,
                std::cmp::Reverse(a.stream.index),
            )
        })
    }
}

impl MediaInfo {
    /// The video stream to work from: the default one, else the largest picture, else the
    /// lowest index; attached pictures (cover art) never count.
    ///
    /// ```
    /// # use preset_sdk::*;
    /// let info = MediaInfo::new(&["mov", "mp4"])
    ///     .with_stream(StreamInfo::new_video(0, "h264", 640, 360))
    ///     .with_stream(StreamInfo::new_video(1, "h264", 1280, 720));
    /// assert_eq!(info.best_video().map(|v| v.index), Some(1));
    /// ```
    pub fn best_video(&self) -> Option<&StreamInfo> {
        self.streams
            .iter()
            .filter(|s| !s.disposition.attached_pic)
            .filter_map(|s| Some((s, s.video()?)))
            .max_by_key(|(s, v)| {
                (
                    s.disposition.default,
                    u64::from(v.width) * u64::from(v.height),
                    std::cmp::Reverse(s.index),
                )
            })
            .map(|(s, _)| s)
    }
}

impl Disposition {
    /// No disposition flags set.
    ///
    /// ```
    /// assert!(!preset_sdk::Disposition::none().default);
    /// ```
    pub fn none() -> Self {
        Disposition {
            default: false,
            forced: false,
            attached_pic: false,
            hearing_impaired: false,
            visual_impaired: false,
            comment: false,
            original: false,
            dub: false,
        }
    }
}

impl StreamInfo {
    /// An audio stream with no disposition, tags or duration; for tests.
    ///
    /// ```
    /// let s = preset_sdk::StreamInfo::new_audio(0, "mp3", 44_100, 2);
    /// assert!(s.audio().is_some());
    /// ```
    pub fn new_audio(index: u32, codec: &str, sample_rate: u32, channels: u32) -> Self {
        StreamInfo {
            index,
            kind: StreamKind::Audio,
            codec: codec.to_owned(),
            profile: None,
            bit_rate: None,
            duration_s: None,
            language: None,
            disposition: Disposition::none(),
            tags: Vec::new(),
            detail: StreamDetail::Audio(AudioInfo {
                sample_rate,
                channels,
                channel_layout: None,
                sample_format: None,
                bits_per_sample: None,
            }),
        }
    }

    /// A video stream of `width` x `height` at 25 fps, progressive, with no colour details;
    /// for tests.
    ///
    /// ```
    /// let s = preset_sdk::StreamInfo::new_video(0, "h264", 1920, 1080);
    /// assert_eq!(s.video().map(|v| v.width), Some(1920));
    /// ```
    pub fn new_video(index: u32, codec: &str, width: u32, height: u32) -> Self {
        let rate = crate::Rational { num: 25, den: 1 };
        StreamInfo {
            index,
            kind: StreamKind::Video,
            codec: codec.to_owned(),
            profile: None,
            bit_rate: None,
            duration_s: None,
            language: None,
            disposition: Disposition::none(),
            tags: Vec::new(),
            detail: StreamDetail::Video(VideoInfo {
                width,
                height,
                frame_rate: Some(rate),
                average_frame_rate: Some(rate),
                pixel_format: Some("yuv420p".to_owned()),
                sample_aspect_ratio: None,
                color: ColorInfo {
                    range: None,
                    space: None,
                    transfer: None,
                    primaries: None,
                },
                rotation_degrees: 0,
                field_order: Some("progressive".to_owned()),
            }),
        }
    }

    /// The video details when this is a video stream.
    ///
    /// ```
    /// let s = preset_sdk::StreamInfo::new_video(0, "vp9", 640, 480);
    /// assert_eq!(s.video().map(|v| v.height), Some(480));
    /// assert!(s.audio().is_none());
    /// ```
    pub fn video(&self) -> Option<&VideoInfo> {
        match (&self.kind, &self.detail) {
            (StreamKind::Video, StreamDetail::Video(video)) => Some(video),
            _ => None,
        }
    }

    /// Marks the stream as the default one of its kind.
    ///
    /// ```
    /// let s = preset_sdk::StreamInfo::new_audio(0, "aac", 48_000, 2).with_default();
    /// assert!(s.disposition.default);
    /// ```
    pub fn with_default(mut self) -> Self {
        self.disposition.default = true;
        self
    }

    /// Sets an audio stream's sample format (ffmpeg's name: "s16", "s32", "flt", "fltp", ...).
    ///
    /// ```
    /// let s = preset_sdk::StreamInfo::new_audio(0, "flac", 48_000, 2).with_sample_format("s32");
    /// assert_eq!(s.audio().unwrap().sample_format.as_deref(), Some("s32"));
    /// ```
    pub fn with_sample_format(mut self, sample_format: &str) -> Self {
        if let StreamDetail::Audio(audio) = &mut self.detail {
            audio.sample_format = Some(sample_format.to_owned());
        }
        self
    }

    /// The audio details when this is an audio stream.
    ///
    /// ```
    /// let s = preset_sdk::StreamInfo::new_audio(0, "flac", 96_000, 2);
    /// assert_eq!(s.audio().map(|a| a.sample_rate), Some(96_000));
    /// ```
    pub fn audio(&self) -> Option<&AudioInfo> {
        match (&self.kind, &self.detail) {
            (StreamKind::Audio, StreamDetail::Audio(audio)) => Some(audio),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::*;

    #[test]
    fn best_audio_prefers_default_then_channels_then_lowest_index() {
        let info = MediaInfo::new(&["mkv"])
            .with_stream(StreamInfo::new_audio(0, "aac", 48_000, 2))
            .with_stream(StreamInfo::new_audio(1, "ac3", 48_000, 6))
            .with_stream(StreamInfo::new_audio(2, "aac", 48_000, 2).with_default());
        assert_eq!(info.best_audio().map(|a| a.index()), Some(2));

        let info = MediaInfo::new(&["mkv"])
            .with_stream(StreamInfo::new_audio(4, "aac", 48_000, 2))
            .with_stream(StreamInfo::new_audio(5, "ac3", 48_000, 6))
            .with_stream(StreamInfo::new_audio(6, "eac3", 48_000, 6));
        assert_eq!(info.best_audio().map(|a| a.index()), Some(5));
    }

    #[test]
    fn no_audio_means_no_best_audio() {
        let mut video = StreamInfo::new_audio(0, "h264", 0, 0);
        video.kind = StreamKind::Video;
        video.detail = StreamDetail::Other;
        let info = MediaInfo::new(&["mp4"]).with_stream(video);
        assert!(info.best_audio().is_none());
        assert_eq!(info.audio_streams().count(), 0);
    }

    #[test]
    fn lookups_tell_inputs_from_intermediates() {
        let request = PlanRequest::new(2)
            .with_input("main", MediaInfo::new(&["wav"]))
            .with_intermediate("pass1", MediaInfo::new(&["flac"]))
            .with_analysis("pass1", Loudness::new(-16.1, -1.6, 3.0));
        assert!(request.input("main").unwrap().has_format("wav"));
        assert!(request.input("pass1").is_err());
        assert!(request.intermediate("main").is_none());
        assert!(
            request
                .media(&MediaRef::produced("pass1"))
                .unwrap()
                .has_format("flac")
        );
        assert_eq!(request.loudness("pass1").unwrap().integrated_lufs, -16.1);
        assert!(request.loudness("input").is_none());
    }
}
