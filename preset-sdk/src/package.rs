//! What a finished plan builds from its outputs: HLS packages (a master playlist the host
//! writes over renditions) and documents (WebVTT or JSON the preset writes, referring to other
//! outputs by role).
//!
//! Not here: the outputs themselves ([`crate::Output`]).

use crate::{Document, DocumentFormat, HlsAudio, HlsPackage};

impl HlsPackage {
    /// A package whose master playlist is stored as `<name>.m3u8`, with no renditions yet.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let package = HlsPackage::new("master")
    ///     .variant("240p")
    ///     .variant("144p")
    ///     .audio(HlsAudio::new("audio", "Stereo").language("en"));
    /// assert_eq!(package.variants, ["240p", "144p"]);
    /// assert_eq!(package.audio[0].output, "audio");
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        HlsPackage {
            name: name.into(),
            variants: Vec::new(),
            audio: Vec::new(),
        }
    }

    /// Adds an HLS rendition output with video as a variant stream of the master.
    ///
    /// ```
    /// let package = preset_sdk::HlsPackage::new("master").variant("720p");
    /// ```
    pub fn variant(mut self, output: impl Into<String>) -> Self {
        self.variants.push(output.into());
        self
    }

    /// Adds an audio-only rendition to the package's audio group (every variant then refers
    /// to the group).
    ///
    /// ```
    /// use preset_sdk::*;
    /// let package = HlsPackage::new("master").audio(HlsAudio::new("audio-en", "English"));
    /// ```
    pub fn audio(mut self, audio: HlsAudio) -> Self {
        self.audio.push(audio);
        self
    }
}

impl HlsAudio {
    /// The audio-only HLS rendition output `output`, named `label` in the master playlist.
    ///
    /// ```
    /// let audio = preset_sdk::HlsAudio::new("audio", "Stereo");
    /// assert_eq!((audio.label.as_str(), audio.language), ("Stereo", None));
    /// ```
    pub fn new(output: impl Into<String>, label: impl Into<String>) -> Self {
        HlsAudio {
            output: output.into(),
            label: label.into(),
            language: None,
        }
    }

    /// Its language (BCP 47: "en", "de").
    ///
    /// ```
    /// let audio = preset_sdk::HlsAudio::new("audio", "English").language("en");
    /// assert_eq!(audio.language.as_deref(), Some("en"));
    /// ```
    pub fn language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }
}

impl Document {
    /// A required WebVTT document stored as `<name>.vtt`. Refer to other outputs in `body`
    /// with [`output_ref`] and [`image_ref`].
    ///
    /// ```
    /// use preset_sdk::*;
    /// let body = format!("WEBVTT\n\n00:00.000 --> 00:02.000\n{}#xywh=0,0,160,90\n", image_ref("sprites", 1));
    /// let vtt = Document::webvtt("thumbnails", body);
    /// assert!(vtt.body.contains("{{output:sprites:1}}#xywh"));
    /// ```
    pub fn webvtt(name: impl Into<String>, body: impl Into<String>) -> Self {
        Document {
            name: name.into(),
            format: DocumentFormat::Webvtt,
            body: body.into(),
            optional: false,
        }
    }

    /// A required JSON document stored as `<name>.json`.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let json = Document::json("summary", format!("{{\"poster\": \"{}\"}}", output_ref("poster")));
    /// assert_eq!(json.body, "{\"poster\": \"{{output:poster}}\"}");
    /// ```
    pub fn json(name: impl Into<String>, body: impl Into<String>) -> Self {
        Document {
            format: DocumentFormat::Json,
            ..Document::webvtt(name, body)
        }
    }

    /// Marks the document optional: if it cannot be written (say, it refers to an optional
    /// output that failed), the job still completes, `partial`.
    ///
    /// ```
    /// assert!(preset_sdk::Document::json("summary", "{}").optional().optional);
    /// ```
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
}

/// The reference the host replaces with output `name`'s object name, relative to the document:
/// `{{output:<name>}}`.
///
/// ```
/// assert_eq!(preset_sdk::output_ref("poster"), "{{output:poster}}");
/// ```
pub fn output_ref(name: &str) -> String {
    format!("{{{{output:{name}}}}}")
}

/// The reference the host replaces with the `n`-th image (from 1) of image-sequence output
/// `name`, relative to the document: `{{output:<name>:<n>}}`.
///
/// ```
/// assert_eq!(preset_sdk::image_ref("sprites", 2), "{{output:sprites:2}}");
/// ```
pub fn image_ref(name: &str, n: u32) -> String {
    format!("{{{{output:{name}:{n}}}}}")
}
