//! The one naming rule for what an output writes: the relative object names of each output
//! kind, which the renderer writes, the worker stores and documents refer to.
//!
//! | kind | objects |
//! |---|---|
//! | file | `<name>.<ext>` (the container's extension) |
//! | still | `<name>.<jpg\|png\|webp\|avif>` |
//! | image sequence | `<name>/0001.<ext>`, `<name>/0002.<ext>`, ... up to its `max_frames` |
//! | HLS rendition | `<name>/index.m3u8`, `<name>/init.mp4` (fMP4), `<name>/0000.<m4s\|ts>`, ... |
//!
//! Not here: checking that an output may be written (`plan::validate`), the argv (`ffmpeg::render`).

use super::allowlist;
use crate::model;

/// Where an output's objects are, relative to the job's output directory (and object prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One file: a container file or a still image.
    File { file: String },
    /// Numbered images in a directory of their own, from 1.
    Sequence {
        dir: String,
        ext: &'static str,
        max_frames: u32,
    },
    /// A media playlist, its init segment (fMP4 only) and numbered segments from 0.
    Hls {
        dir: String,
        init: Option<String>,
        segment_ext: &'static str,
    },
}

/// The file name extension of an image format.
pub fn image_extension(format: model::ImageFormat) -> &'static str {
    match format {
        model::ImageFormat::Jpeg => "jpg",
        model::ImageFormat::Png => "png",
        model::ImageFormat::Webp => "webp",
        model::ImageFormat::Avif => "avif",
    }
}

/// The layout of a validated output (its container, for a file, is allowlisted).
pub fn layout(output: &model::Output) -> Layout {
    let name = &output.name;
    match &output.kind {
        model::OutputKind::File(container) => {
            let ext = allowlist::container(container).map_or("bin", |c| c.extension);
            Layout::File {
                file: format!("{name}.{ext}"),
            }
        }
        model::OutputKind::Still(image) => Layout::File {
            file: format!("{name}.{}", image_extension(image.format)),
        },
        model::OutputKind::ImageSequence(seq) => Layout::Sequence {
            dir: name.clone(),
            ext: image_extension(seq.image.format),
            max_frames: seq.max_frames,
        },
        model::OutputKind::HlsRendition(hls) => match hls.segment_format {
            model::SegmentFormat::Fmp4 => Layout::Hls {
                dir: name.clone(),
                init: Some(format!("{name}/init.mp4")),
                segment_ext: "m4s",
            },
            model::SegmentFormat::Mpegts => Layout::Hls {
                dir: name.clone(),
                init: None,
                segment_ext: "ts",
            },
        },
    }
}

impl Layout {
    /// The directory the host creates for the output before ffmpeg runs, if it has one.
    pub fn dir(&self) -> Option<&str> {
        match self {
            Self::File { .. } => None,
            Self::Sequence { dir, .. } | Self::Hls { dir, .. } => Some(dir),
        }
    }

    /// What ffmpeg is told to write: the file, the image pattern, or the media playlist.
    pub fn target(&self) -> String {
        match self {
            Self::File { file } => file.clone(),
            Self::Sequence { dir, ext, .. } => format!("{dir}/%04d.{ext}"),
            Self::Hls { dir, .. } => format!("{dir}/index.m3u8"),
        }
    }

    /// The HLS segment file pattern, for a rendition.
    pub fn segments(&self) -> Option<String> {
        match self {
            Self::Hls {
                dir, segment_ext, ..
            } => Some(format!("{dir}/%04d.{segment_ext}")),
            Self::File { .. } | Self::Sequence { .. } => None,
        }
    }

    /// The object `{{output:<name>}}` names: the file, the sequence's first image, or the
    /// media playlist.
    pub fn main_object(&self) -> String {
        match self {
            Self::Sequence { .. } => self.image(1).expect("a sequence has a first image"),
            Self::File { .. } | Self::Hls { .. } => self.target(),
        }
    }

    /// The objects known before ffmpeg runs: the file, every image a sequence may hold, or a
    /// rendition's playlist and init segment (its segments are counted once written).
    pub fn planned_objects(&self) -> Vec<String> {
        match self {
            Self::File { file } => vec![file.clone()],
            Self::Sequence { max_frames, .. } => {
                (1..=*max_frames).filter_map(|n| self.image(n)).collect()
            }
            Self::Hls { init, .. } => std::iter::once(self.target()).chain(init.clone()).collect(),
        }
    }

    /// The object of the `n`th image (from 1) of a sequence, `{{output:<name>:<n>}}`.
    pub fn image(&self, n: u32) -> Option<String> {
        match self {
            Self::Sequence {
                dir,
                ext,
                max_frames,
            } if (1..=*max_frames).contains(&n) => Some(format!("{dir}/{n:04}.{ext}")),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(kind: model::OutputKind) -> model::Output {
        model::Output {
            name: "o".into(),
            kind,
            streams: vec![],
            metadata: vec![],
            muxer_options: vec![],
            duration_s: None,
            optional: false,
        }
    }

    const WEBP: model::ImageSpec = model::ImageSpec {
        format: model::ImageFormat::Webp,
        quality: None,
        metadata: model::ImageMetadata::Keep,
    };

    #[test]
    fn each_kind_names_its_objects() {
        let file = layout(&output(model::OutputKind::File("mkv".into())));
        assert_eq!(file.target(), "o.mkv");
        assert_eq!(file.dir(), None);
        let still = layout(&output(model::OutputKind::Still(WEBP)));
        assert_eq!(still.main_object(), "o.webp");
        let seq = layout(&output(model::OutputKind::ImageSequence(
            model::ImageSequenceSpec {
                image: WEBP,
                max_frames: 20,
            },
        )));
        assert_eq!(seq.target(), "o/%04d.webp");
        assert_eq!(seq.main_object(), "o/0001.webp");
        assert_eq!(seq.image(20).as_deref(), Some("o/0020.webp"));
        assert_eq!(seq.image(21), None);
        assert_eq!(seq.image(0), None);
        assert_eq!(seq.planned_objects().len(), 20);
        let hls = layout(&output(model::OutputKind::HlsRendition(
            model::HlsRenditionSpec {
                segment_format: model::SegmentFormat::Fmp4,
                segment_duration_s: 4.0,
            },
        )));
        assert_eq!(hls.dir(), Some("o"));
        assert_eq!(hls.main_object(), "o/index.m3u8");
        assert_eq!(hls.segments().as_deref(), Some("o/%04d.m4s"));
        assert!(matches!(hls, Layout::Hls { init: Some(ref i), .. } if i == "o/init.mp4"));
        assert_eq!(hls.planned_objects(), ["o/index.m3u8", "o/init.mp4"]);
    }
}
