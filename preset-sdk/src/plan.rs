//! Building the plan: steps, filter graphs, outputs (files, stills, image sequences, HLS
//! renditions), encoders, and the decision that carries them, plus read-back helpers for tests.
//!
//! Not here: analyses ([`crate::analysis`]), packages and documents ([`crate::package`]).

use crate::{
    AnalysisRequest, Codec, Decision, Document, Encoder, FilterNode, Finish, HlsPackage,
    HlsRenditionSpec, ImageSequenceSpec, ImageSpec, MediaRef, OptionValue, Output, OutputKind,
    OutputStream, Pad, Rational, RoundWork, Step, StepInput, StreamRef, Tag, Value,
};

impl From<f64> for Value {
    fn from(value: f64) -> Self {
        Value::Number(value)
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Value::Integer(value)
    }
}

impl From<i32> for Value {
    fn from(value: i32) -> Self {
        Value::Integer(value.into())
    }
}

impl From<u32> for Value {
    fn from(value: u32) -> Self {
        Value::Integer(value.into())
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Value::Boolean(value)
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Value::Text(value.to_owned())
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Value::Text(value)
    }
}

impl Value {
    /// The value as a number: a number, or an integer widened.
    ///
    /// ```
    /// use preset_sdk::Value;
    /// assert_eq!(Value::from(3).as_f64(), Some(3.0));
    /// assert_eq!(Value::from("3").as_f64(), None);
    /// ```
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The value as an integer.
    ///
    /// ```
    /// assert_eq!(preset_sdk::Value::from(44_100).as_i64(), Some(44_100));
    /// ```
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The value as a boolean.
    ///
    /// ```
    /// assert_eq!(preset_sdk::Value::from(false).as_bool(), Some(false));
    /// ```
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The value as text.
    ///
    /// ```
    /// assert_eq!(preset_sdk::Value::from("3.5dB").as_str(), Some("3.5dB"));
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }
}

impl OptionValue {
    /// A named argument.
    ///
    /// ```
    /// let o = preset_sdk::OptionValue::new("limit", 0.8);
    /// assert_eq!(o.value.as_f64(), Some(0.8));
    /// ```
    pub fn new(name: impl Into<String>, value: impl Into<Value>) -> Self {
        OptionValue {
            name: name.into(),
            value: value.into(),
        }
    }
}

fn find_option<'a>(options: &'a [OptionValue], name: &str) -> Option<&'a Value> {
    options.iter().find(|o| o.name == name).map(|o| &o.value)
}

impl Tag {
    /// A key/value tag.
    ///
    /// ```
    /// let t = preset_sdk::Tag::new("title", "Episode 1");
    /// assert_eq!(t.key, "title");
    /// ```
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }
}

impl Pad {
    /// Stream `stream` (absolute index) of the step's input number `input` (position in
    /// [`Step::inputs`], from 0).
    ///
    /// ```
    /// let pad = preset_sdk::Pad::stream(0, 1);
    /// assert!(matches!(pad, preset_sdk::Pad::Stream(preset_sdk::StreamRef { input: 0, stream: 1 })));
    /// ```
    pub fn stream(input: u32, stream: u32) -> Self {
        Pad::Stream(StreamRef { input, stream })
    }

    /// A labelled filter output.
    ///
    /// ```
    /// assert_eq!(preset_sdk::Pad::link("out"), preset_sdk::Pad::Link("out".into()));
    /// ```
    pub fn link(label: impl Into<String>) -> Self {
        Pad::Link(label.into())
    }
}

impl FilterNode {
    /// A node running ffmpeg filter `filter`, with no args or pads yet.
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let node = FilterNode::new("volume")
    ///     .arg("volume", "4.5dB")
    ///     .input(Pad::stream(0, 0))
    ///     .output("loud");
    /// assert_eq!(node.arg_value("volume").and_then(Value::as_str), Some("4.5dB"));
    /// ```
    pub fn new(filter: impl Into<String>) -> Self {
        FilterNode {
            filter: filter.into(),
            args: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        }
    }

    /// Adds a named argument (ffmpeg's option name, see `ffmpeg -h filter=NAME`).
    ///
    /// ```
    /// let node = preset_sdk::FilterNode::new("alimiter").arg("level", false);
    /// ```
    pub fn arg(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.args.push(OptionValue::new(name, value));
        self
    }

    /// Adds an input pad.
    ///
    /// ```
    /// let node = preset_sdk::FilterNode::new("anull").input(preset_sdk::Pad::link("a"));
    /// ```
    pub fn input(mut self, pad: Pad) -> Self {
        self.inputs.push(pad);
        self
    }

    /// Adds an output label.
    ///
    /// ```
    /// let node = preset_sdk::FilterNode::new("anull").output("b");
    /// ```
    pub fn output(mut self, label: impl Into<String>) -> Self {
        self.outputs.push(label.into());
        self
    }

    /// The value of argument `name`, if set.
    ///
    /// ```
    /// let node = preset_sdk::FilterNode::new("aresample").arg("sample_rate", 48_000);
    /// assert_eq!(node.arg_value("sample_rate").and_then(|v| v.as_i64()), Some(48_000));
    /// ```
    pub fn arg_value(&self, name: &str) -> Option<&Value> {
        find_option(&self.args, name)
    }
}

/// A linear filter chain from one pad: each filter feeds the next. [`Step::chain`] wires it into
/// a step's graph under a label.
///
/// ```
/// use preset_sdk::*;
///
/// let chain = Chain::new(Pad::stream(0, 0))
///     .then(FilterNode::new("volume").arg("volume", "6dB"))
///     .then(FilterNode::new("alimiter").arg("limit", 0.84).arg("level", false));
/// let nodes = chain.into_nodes("out");
/// assert_eq!(nodes[0].inputs, [Pad::stream(0, 0)]);
/// assert_eq!(nodes[1].inputs, [Pad::link("out_1")]);
/// assert_eq!(nodes[1].outputs, ["out"]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Chain {
    input: Pad,
    filters: Vec<FilterNode>,
}

impl Chain {
    /// An empty chain reading `input`.
    ///
    /// ```
    /// let chain = preset_sdk::Chain::new(preset_sdk::Pad::stream(0, 0));
    /// assert!(chain.is_empty());
    /// ```
    pub fn new(input: Pad) -> Self {
        Chain {
            input,
            filters: Vec::new(),
        }
    }

    /// Appends a filter; give only its name and args, the chain sets its pads.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let chain = Chain::new(Pad::stream(0, 0)).then(FilterNode::new("anull"));
    /// assert_eq!(chain.len(), 1);
    /// ```
    pub fn then(mut self, filter: FilterNode) -> Self {
        self.filters.push(filter);
        self
    }

    /// Appends a filter when `filter` is `Some`.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let chain = Chain::new(Pad::stream(0, 0)).then_maybe(None);
    /// assert!(chain.is_empty());
    /// ```
    pub fn then_maybe(self, filter: Option<FilterNode>) -> Self {
        match filter {
            Some(filter) => self.then(filter),
            None => self,
        }
    }

    /// Number of filters.
    ///
    /// ```
    /// assert_eq!(preset_sdk::Chain::new(preset_sdk::Pad::link("x")).len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.filters.len()
    }

    /// Whether the chain has no filters.
    ///
    /// ```
    /// assert!(preset_sdk::Chain::new(preset_sdk::Pad::link("x")).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// The wired nodes: the last one's output is labelled `label`, the ones before it
    /// `{label}_1`, `{label}_2`, ... Keep `label` short: labels are at most 32 characters.
    /// An empty chain yields a single `anull` so `label` still exists.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let nodes = Chain::new(Pad::stream(0, 2)).into_nodes("a");
    /// assert_eq!(nodes[0].filter, "anull");
    /// assert_eq!(nodes[0].outputs, ["a"]);
    /// ```
    pub fn into_nodes(self, label: &str) -> Vec<FilterNode> {
        let filters = if self.filters.is_empty() {
            vec![FilterNode::new("anull")]
        } else {
            self.filters
        };
        let last = filters.len() - 1;
        let mut input = self.input;
        filters
            .into_iter()
            .enumerate()
            .map(|(i, mut node)| {
                let out = if i == last {
                    label.to_owned()
                } else {
                    format!("{label}_{}", i + 1)
                };
                node.inputs = vec![std::mem::replace(&mut input, Pad::link(out.clone()))];
                node.outputs = vec![out];
                node
            })
            .collect()
    }
}

impl StepInput {
    /// Reads `source` from the start, whole.
    ///
    /// ```
    /// let input = preset_sdk::StepInput::new(preset_sdk::MediaRef::input("main")).seek(10.0).duration(5.0);
    /// assert_eq!((input.seek_s, input.duration_s), (Some(10.0), Some(5.0)));
    /// ```
    pub fn new(source: MediaRef) -> Self {
        StepInput {
            source,
            seek_s: None,
            duration_s: None,
        }
    }

    /// Starts reading at `seconds`.
    ///
    /// ```
    /// let input = preset_sdk::StepInput::new(preset_sdk::MediaRef::input("main")).seek(1.5);
    /// ```
    pub fn seek(mut self, seconds: f64) -> Self {
        self.seek_s = Some(seconds);
        self
    }

    /// Reads at most `seconds`.
    ///
    /// ```
    /// let input = preset_sdk::StepInput::new(preset_sdk::MediaRef::input("main")).duration(30.0);
    /// ```
    pub fn duration(mut self, seconds: f64) -> Self {
        self.duration_s = Some(seconds);
        self
    }
}

impl From<MediaRef> for StepInput {
    fn from(source: MediaRef) -> Self {
        StepInput::new(source)
    }
}

impl Step {
    /// A step (one ffmpeg run) named `name` (`[a-z0-9][a-z0-9_-]{0,31}`).
    ///
    /// ```
    /// use preset_sdk::*;
    ///
    /// let audio = Pad::stream(0, 0);
    /// let step = Step::new("encode")
    ///     .input(MediaRef::input("main"))
    ///     .chain("out", Chain::new(audio).then(FilterNode::new("volume").arg("volume", "-3dB")))
    ///     .output(Output::new("main", "flac").audio(Pad::link("out"), Encoder::new("flac")));
    /// assert!(step.find_filter("volume").is_some());
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Step {
            name: name.into(),
            inputs: Vec::new(),
            graph: Vec::new(),
            outputs: Vec::new(),
        }
    }

    /// Adds an input: a [`MediaRef`] or a [`StepInput`]. Pads refer to inputs by position.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let step = Step::new("cut").input(StepInput::new(MediaRef::input("main")).duration(10.0));
    /// assert_eq!(step.inputs.len(), 1);
    /// ```
    pub fn input(mut self, input: impl Into<StepInput>) -> Self {
        self.inputs.push(input.into());
        self
    }

    /// Adds one filter node, pads set by the caller.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let step = Step::new("s").filter(FilterNode::new("anull").input(Pad::stream(0, 0)).output("a"));
    /// assert_eq!(step.graph.len(), 1);
    /// ```
    pub fn filter(mut self, node: FilterNode) -> Self {
        self.graph.push(node);
        self
    }

    /// Adds a [`Chain`] whose final output is labelled `label`.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let step = Step::new("s").chain("a", Chain::new(Pad::stream(0, 0)).then(FilterNode::new("anull")));
    /// assert_eq!(step.graph[0].outputs, ["a"]);
    /// ```
    pub fn chain(mut self, label: &str, chain: Chain) -> Self {
        self.graph.extend(chain.into_nodes(label));
        self
    }

    /// Adds an output file.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let step = Step::new("s").output(Output::new("main", "wav"));
    /// assert_eq!(step.outputs[0].container(), Some("wav"));
    /// ```
    pub fn output(mut self, output: Output) -> Self {
        self.outputs.push(output);
        self
    }

    /// The first node running `filter`.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let step = Step::new("s").filter(FilterNode::new("alimiter"));
    /// assert!(step.find_filter("alimiter").is_some() && step.find_filter("volume").is_none());
    /// ```
    pub fn find_filter(&self, filter: &str) -> Option<&FilterNode> {
        self.graph.iter().find(|n| n.filter == filter)
    }

    /// The output named `name`.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let step = Step::new("s").output(Output::new("main", "wav"));
    /// assert!(step.find_output("main").is_some());
    /// ```
    pub fn find_output(&self, name: &str) -> Option<&Output> {
        self.outputs.iter().find(|o| o.name == name)
    }
}

impl Encoder {
    /// Encode with ffmpeg encoder `codec` ("flac", "pcm_s24le", "libmp3lame", "aac",
    /// "libopus", ...), everything else left to ffmpeg.
    ///
    /// ```
    /// let e = preset_sdk::Encoder::new("libmp3lame").bit_rate(320_000).sample_rate(44_100).channels(2);
    /// assert_eq!(e.bit_rate, Some(320_000));
    /// ```
    pub fn new(codec: impl Into<String>) -> Self {
        Encoder {
            codec: codec.into(),
            bit_rate: None,
            sample_rate: None,
            channels: None,
            sample_format: None,
            pixel_format: None,
            frame_rate: None,
            options: Vec::new(),
        }
    }

    /// Target bit rate in bits per second.
    ///
    /// ```
    /// let e = preset_sdk::Encoder::new("aac").bit_rate(256_000);
    /// ```
    pub fn bit_rate(mut self, bits_per_second: u64) -> Self {
        self.bit_rate = Some(bits_per_second);
        self
    }

    /// Output sample rate in Hz (ffmpeg resamples).
    ///
    /// ```
    /// let e = preset_sdk::Encoder::new("libopus").sample_rate(48_000);
    /// ```
    pub fn sample_rate(mut self, hz: u32) -> Self {
        self.sample_rate = Some(hz);
        self
    }

    /// Output channel count (ffmpeg's `-ac`: up- or downmixes).
    ///
    /// ```
    /// let e = preset_sdk::Encoder::new("libmp3lame").channels(2);
    /// ```
    pub fn channels(mut self, channels: u32) -> Self {
        self.channels = Some(channels);
        self
    }

    /// Output sample format (ffmpeg's name: "s16", "s32", "flt", ...).
    ///
    /// ```
    /// let e = preset_sdk::Encoder::new("flac").sample_format("s16");
    /// ```
    pub fn sample_format(mut self, sample_format: impl Into<String>) -> Self {
        self.sample_format = Some(sample_format.into());
        self
    }

    /// Output pixel format (ffmpeg's name: "yuv420p", "yuvj420p", "rgb24", ...).
    ///
    /// ```
    /// let e = preset_sdk::Encoder::new("libx264").pixel_format("yuv420p");
    /// assert_eq!(e.pixel_format.as_deref(), Some("yuv420p"));
    /// ```
    pub fn pixel_format(mut self, pixel_format: impl Into<String>) -> Self {
        self.pixel_format = Some(pixel_format.into());
        self
    }

    /// Output frame rate as a fraction (`30000, 1001` for 29.97 fps).
    ///
    /// ```
    /// let e = preset_sdk::Encoder::new("libx264").frame_rate(25, 1);
    /// assert_eq!(e.frame_rate.map(|r| (r.num, r.den)), Some((25, 1)));
    /// ```
    pub fn frame_rate(mut self, num: i64, den: i64) -> Self {
        self.frame_rate = Some(Rational { num, den });
        self
    }

    /// An encoder option by ffmpeg's name.
    ///
    /// ```
    /// let e = preset_sdk::Encoder::new("flac").option("compression_level", 8);
    /// ```
    pub fn option(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.options.push(OptionValue::new(name, value));
        self
    }
}

impl From<Encoder> for Codec {
    fn from(encoder: Encoder) -> Self {
        Codec::Encode(encoder)
    }
}

impl Codec {
    /// The encoder, unless this is a stream copy.
    ///
    /// ```
    /// use preset_sdk::*;
    /// assert_eq!(Codec::from(Encoder::new("flac")).encoder().map(|e| e.codec.as_str()), Some("flac"));
    /// assert!(Codec::Copy.encoder().is_none());
    /// ```
    pub fn encoder(&self) -> Option<&Encoder> {
        match self {
            Codec::Encode(encoder) => Some(encoder),
            Codec::Copy => None,
        }
    }
}

impl OutputStream {
    /// An output stream from `source`, encoded (an [`Encoder`]) or copied ([`Codec::Copy`]).
    ///
    /// ```
    /// use preset_sdk::*;
    /// let s = OutputStream::new(Pad::stream(0, 0), Codec::Copy).metadata("language", "eng");
    /// assert_eq!(s.metadata[0].value, "eng");
    /// ```
    pub fn new(source: Pad, codec: impl Into<Codec>) -> Self {
        OutputStream {
            source,
            codec: codec.into(),
            metadata: Vec::new(),
        }
    }

    /// Adds a stream metadata tag.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let s = OutputStream::new(Pad::link("a"), Encoder::new("flac")).metadata("title", "Mix");
    /// ```
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push(Tag::new(key, value));
        self
    }
}

impl Output {
    /// A file output named `name` (its role, `[a-z0-9][a-z0-9_-]{0,31}`) in container
    /// `container` ("wav", "flac", "mp3", "m4a", "mp4", ...): [`OutputKind::File`].
    ///
    /// ```
    /// use preset_sdk::*;
    /// let out = Output::new("main", "m4a")
    ///     .audio(Pad::link("out"), Encoder::new("aac").bit_rate(256_000))
    ///     .metadata("title", "Episode 1")
    ///     .muxer_option("movflags", "+faststart");
    /// assert_eq!(out.streams.len(), 1);
    /// ```
    pub fn new(name: impl Into<String>, container: impl Into<String>) -> Self {
        Output::of_kind(name, OutputKind::File(container.into()))
    }

    /// An output of any kind, required, with no streams yet.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let out = Output::of_kind("main", OutputKind::File("mp4".into()));
    /// assert_eq!(out.container(), Some("mp4"));
    /// ```
    pub fn of_kind(name: impl Into<String>, kind: OutputKind) -> Self {
        Output {
            name: name.into(),
            kind,
            streams: Vec::new(),
            metadata: Vec::new(),
            muxer_options: Vec::new(),
            duration_s: None,
            optional: false,
        }
    }

    /// One image (JPEG, PNG, WebP, AVIF) from the output's single video stream: a poster, a
    /// thumbnail. Seek the step's input to choose the frame.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let poster = Output::still("poster", ImageSpec::jpeg().quality(85))
    ///     .video(Pad::link("v"), Encoder::new("mjpeg"));
    /// assert!(matches!(poster.kind, OutputKind::Still(ImageSpec { format: ImageFormat::Jpeg, .. })));
    /// ```
    pub fn still(name: impl Into<String>, image: ImageSpec) -> Self {
        Output::of_kind(name, OutputKind::Still(image))
    }

    /// At most `max_frames` images, stored as `<name>/0001.<ext>`, ...: sprite-sheet tiles,
    /// thumbnails. Documents refer to the n-th with [`crate::image_ref`].
    ///
    /// ```
    /// use preset_sdk::*;
    /// let sprites = Output::image_sequence("sprites", ImageSpec::jpeg(), 4)
    ///     .video(Pad::link("tiles"), Encoder::new("mjpeg"));
    /// assert!(matches!(sprites.kind, OutputKind::ImageSequence(ImageSequenceSpec { max_frames: 4, .. })));
    /// ```
    pub fn image_sequence(name: impl Into<String>, image: ImageSpec, max_frames: u32) -> Self {
        Output::of_kind(
            name,
            OutputKind::ImageSequence(ImageSequenceSpec { image, max_frames }),
        )
    }

    /// An HLS rendition (segments, init segment for fMP4, media playlist) stored under
    /// `<name>/`; group renditions with a [`HlsPackage`]. Keep keyframes on multiples of the
    /// segment duration (a fixed GOP, no scene-cut keyframes).
    ///
    /// ```
    /// use preset_sdk::*;
    /// let r = Output::hls_rendition("360p", HlsRenditionSpec::fmp4(2.0))
    ///     .video(Pad::link("v360"), Encoder::new("libx264").option("g", 50))
    ///     .audio(Pad::stream(0, 1), Encoder::new("aac"));
    /// assert_eq!(r.streams.len(), 2);
    /// ```
    pub fn hls_rendition(name: impl Into<String>, rendition: HlsRenditionSpec) -> Self {
        Output::of_kind(name, OutputKind::HlsRendition(rendition))
    }

    /// Marks the output optional: if it fails, the others still complete and the job ends
    /// `partial`.
    ///
    /// ```
    /// let out = preset_sdk::Output::new("preview", "mp3").optional();
    /// assert!(out.optional);
    /// ```
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// The container of a file output; `None` for the other kinds.
    ///
    /// ```
    /// use preset_sdk::*;
    /// assert_eq!(Output::new("main", "flac").container(), Some("flac"));
    /// assert_eq!(Output::still("poster", ImageSpec::png()).container(), None);
    /// ```
    pub fn container(&self) -> Option<&str> {
        match &self.kind {
            OutputKind::File(container) => Some(container),
            _ => None,
        }
    }

    /// Adds a stream.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let out = Output::new("main", "flac").stream(OutputStream::new(Pad::link("a"), Encoder::new("flac")));
    /// ```
    pub fn stream(mut self, stream: OutputStream) -> Self {
        self.streams.push(stream);
        self
    }

    /// Adds an audio stream from `source` with `codec`: the common case.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let out = Output::new("main", "wav").audio(Pad::stream(0, 0), Encoder::new("pcm_s16le"));
    /// assert_eq!(out.encoder().map(|e| e.codec.as_str()), Some("pcm_s16le"));
    /// ```
    pub fn audio(self, source: Pad, codec: impl Into<Codec>) -> Self {
        self.stream(OutputStream::new(source, codec))
    }

    /// Adds a video stream from `source` with `codec` (the same as [`Output::audio`]; the name
    /// says what the preset means).
    ///
    /// ```
    /// use preset_sdk::*;
    /// let out = Output::new("main", "mp4").video(Pad::link("v"), Encoder::new("libx264"));
    /// assert_eq!(out.encoder().map(|e| e.codec.as_str()), Some("libx264"));
    /// ```
    pub fn video(self, source: Pad, codec: impl Into<Codec>) -> Self {
        self.stream(OutputStream::new(source, codec))
    }

    /// Adds a container metadata tag.
    ///
    /// ```
    /// let out = preset_sdk::Output::new("main", "flac").metadata("comment", "normalized");
    /// ```
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push(Tag::new(key, value));
        self
    }

    /// Adds a muxer option.
    ///
    /// ```
    /// let out = preset_sdk::Output::new("main", "m4a").muxer_option("movflags", "+faststart");
    /// ```
    pub fn muxer_option(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.muxer_options.push(OptionValue::new(name, value));
        self
    }

    /// Stops the output after `seconds`.
    ///
    /// ```
    /// let out = preset_sdk::Output::new("preview", "mp3").duration(30.0);
    /// ```
    pub fn duration(mut self, seconds: f64) -> Self {
        self.duration_s = Some(seconds);
        self
    }

    /// The encoder of the first stream, when it is encoded.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let out = Output::new("main", "flac").audio(Pad::link("a"), Codec::Copy);
    /// assert!(out.encoder().is_none());
    /// ```
    pub fn encoder(&self) -> Option<&Encoder> {
        self.streams.first().and_then(|s| s.codec.encoder())
    }
}

impl RoundWork {
    /// No work yet; add steps and analyses, then return it `.into()` a [`Decision`].
    ///
    /// ```
    /// use preset_sdk::*;
    /// let decision: Decision = RoundWork::new()
    ///     .analyze(AnalysisRequest::loudness("input", MediaRef::input("main"), 0))
    ///     .into();
    /// assert_eq!(decision.as_next().map(|w| w.analyses.len()), Some(1));
    /// ```
    pub fn new() -> Self {
        RoundWork {
            steps: Vec::new(),
            analyses: Vec::new(),
        }
    }

    /// Adds a step; its outputs become intermediates (`MediaRef::produced(output name)`).
    ///
    /// ```
    /// use preset_sdk::*;
    /// let work = RoundWork::new().step(Step::new("pass1"));
    /// ```
    pub fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// Adds an analysis, run after this round's steps.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let work = RoundWork::new().analyze(AnalysisRequest::loudness("p", MediaRef::produced("p"), 0));
    /// ```
    pub fn analyze(mut self, analysis: AnalysisRequest) -> Self {
        self.analyses.push(analysis);
        self
    }
}

impl Default for RoundWork {
    fn default() -> Self {
        RoundWork::new()
    }
}

impl Finish {
    /// The last round, with no steps or report yet.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let decision: Decision = Finish::new().step(Step::new("encode")).report("gain_db", 4.5).into();
    /// assert_eq!(decision.as_finish().and_then(|f| f.report_value("gain_db")), Some(&Value::Number(4.5)));
    /// ```
    pub fn new() -> Self {
        Finish {
            steps: Vec::new(),
            report: Vec::new(),
            packages: Vec::new(),
            documents: Vec::new(),
        }
    }

    /// Adds a step; its outputs are the job's outputs.
    ///
    /// ```
    /// let finish = preset_sdk::Finish::new().step(preset_sdk::Step::new("encode"));
    /// ```
    pub fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// Adds an HLS package: a master playlist over some of the job's HLS renditions, written by
    /// the host after they are stored.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let finish = Finish::new().package(HlsPackage::new("master").variant("360p"));
    /// assert_eq!(finish.packages[0].variants, ["360p"]);
    /// ```
    pub fn package(mut self, package: HlsPackage) -> Self {
        self.packages.push(package);
        self
    }

    /// Adds a document (WebVTT or JSON) the host stores beside the outputs.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let finish = Finish::new().document(Document::json("summary", "{}"));
    /// assert_eq!(finish.documents[0].name, "summary");
    /// ```
    pub fn document(mut self, document: Document) -> Self {
        self.documents.push(document);
        self
    }

    /// Adds a report entry (recorded in the job result).
    ///
    /// ```
    /// let finish = preset_sdk::Finish::new().report("limited", true);
    /// ```
    pub fn report(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.report.push(OptionValue::new(name, value));
        self
    }

    /// The report entry `name`.
    ///
    /// ```
    /// let finish = preset_sdk::Finish::new().report("passes", 2);
    /// assert_eq!(finish.report_value("passes").and_then(|v| v.as_i64()), Some(2));
    /// ```
    pub fn report_value(&self, name: &str) -> Option<&Value> {
        find_option(&self.report, name)
    }
}

impl Default for Finish {
    fn default() -> Self {
        Finish::new()
    }
}

impl From<RoundWork> for Decision {
    fn from(work: RoundWork) -> Self {
        Decision::Next(work)
    }
}

impl From<Finish> for Decision {
    fn from(finish: Finish) -> Self {
        Decision::Finish(finish)
    }
}

impl Decision {
    /// The work, when this asks for another round.
    ///
    /// ```
    /// use preset_sdk::*;
    /// assert!(Decision::from(RoundWork::new()).as_next().is_some());
    /// ```
    pub fn as_next(&self) -> Option<&RoundWork> {
        match self {
            Decision::Next(work) => Some(work),
            Decision::Finish(_) => None,
        }
    }

    /// The final plan, when this is the last round.
    ///
    /// ```
    /// use preset_sdk::*;
    /// assert!(Decision::from(Finish::new()).as_finish().is_some());
    /// ```
    pub fn as_finish(&self) -> Option<&Finish> {
        match self {
            Decision::Finish(finish) => Some(finish),
            Decision::Next(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::*;

    #[test]
    fn chain_wires_each_node_to_the_previous_label() {
        let nodes = Chain::new(Pad::stream(0, 3))
            .then(FilterNode::new("volume").arg("volume", "2dB"))
            .then_maybe(Some(
                FilterNode::new("aresample").arg("sample_rate", 192_000),
            ))
            .then_maybe(None)
            .then(FilterNode::new("alimiter"))
            .into_nodes("lim");
        let wiring: Vec<_> = nodes
            .iter()
            .map(|n| (n.filter.as_str(), n.inputs.clone(), n.outputs.clone()))
            .collect();
        assert_eq!(
            wiring,
            [
                ("volume", vec![Pad::stream(0, 3)], vec!["lim_1".to_owned()]),
                (
                    "aresample",
                    vec![Pad::link("lim_1")],
                    vec!["lim_2".to_owned()]
                ),
                ("alimiter", vec![Pad::link("lim_2")], vec!["lim".to_owned()]),
            ]
        );
    }

    #[test]
    fn values_convert_from_rust_literals() {
        assert_eq!(Value::from(1.5), Value::Number(1.5));
        assert_eq!(Value::from(7), Value::Integer(7));
        assert_eq!(Value::from(7u32), Value::Integer(7));
        assert_eq!(Value::from(true), Value::Boolean(true));
        assert_eq!(Value::from("x"), Value::Text("x".into()));
        assert_eq!(Value::from(7).as_str(), None);
    }

    #[test]
    fn step_builder_keeps_order_and_finds_things() {
        let step = Step::new("encode")
            .input(MediaRef::input("main"))
            .input(StepInput::new(MediaRef::produced("pass1")).seek(2.0))
            .chain(
                "a",
                Chain::new(Pad::stream(1, 0)).then(FilterNode::new("volume")),
            )
            .output(Output::new("main", "mp3").audio(Pad::link("a"), Encoder::new("libmp3lame")));
        assert_eq!(step.inputs[1].seek_s, Some(2.0));
        assert_eq!(
            step.find_filter("volume").unwrap().inputs,
            [Pad::stream(1, 0)]
        );
        let out = step.find_output("main").unwrap();
        assert_eq!(out.streams[0].source, Pad::link("a"));
        assert_eq!(out.encoder().unwrap().codec, "libmp3lame");
    }
}
