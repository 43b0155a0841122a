//! What the 2.0 output kinds are made of: an image's format, quality and metadata policy, and an
//! HLS rendition's segmenting. [`crate::Output::still`], [`crate::Output::image_sequence`] and
//! [`crate::Output::hls_rendition`] take them.
//!
//! Not here: the outputs themselves and their streams ([`crate::Output`]), HLS packages
//! ([`crate::HlsPackage`]).

use crate::{HlsRenditionSpec, ImageFormat, ImageMetadata, ImageSpec, SegmentFormat};

impl ImageSpec {
    /// An image in `format`, the host's default quality, the source's EXIF/XMP/ICC kept.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let spec = ImageSpec::new(ImageFormat::Webp);
    /// assert_eq!((spec.quality, spec.metadata), (None, ImageMetadata::Keep));
    /// ```
    pub fn new(format: ImageFormat) -> Self {
        ImageSpec {
            format,
            quality: None,
            metadata: ImageMetadata::Keep,
        }
    }

    /// A JPEG image.
    ///
    /// ```
    /// assert_eq!(preset_sdk::ImageSpec::jpeg().format, preset_sdk::ImageFormat::Jpeg);
    /// ```
    pub fn jpeg() -> Self {
        ImageSpec::new(ImageFormat::Jpeg)
    }

    /// A PNG image.
    ///
    /// ```
    /// assert_eq!(preset_sdk::ImageSpec::png().format, preset_sdk::ImageFormat::Png);
    /// ```
    pub fn png() -> Self {
        ImageSpec::new(ImageFormat::Png)
    }

    /// A WebP image.
    ///
    /// ```
    /// assert_eq!(preset_sdk::ImageSpec::webp().format, preset_sdk::ImageFormat::Webp);
    /// ```
    pub fn webp() -> Self {
        ImageSpec::new(ImageFormat::Webp)
    }

    /// An AVIF image.
    ///
    /// ```
    /// assert_eq!(preset_sdk::ImageSpec::avif().format, preset_sdk::ImageFormat::Avif);
    /// ```
    pub fn avif() -> Self {
        ImageSpec::new(ImageFormat::Avif)
    }

    /// Quality from 1 (smallest) to 100 (best); the host checks the range.
    ///
    /// ```
    /// assert_eq!(preset_sdk::ImageSpec::jpeg().quality(85).quality, Some(85));
    /// ```
    pub fn quality(mut self, quality: u32) -> Self {
        self.quality = Some(quality);
        self
    }

    /// Drops the source's EXIF, XMP and ICC profile (the host converts to sRGB first, so
    /// colours do not shift). Kept by default.
    ///
    /// ```
    /// use preset_sdk::*;
    /// assert_eq!(ImageSpec::png().strip_metadata().metadata, ImageMetadata::Strip);
    /// ```
    pub fn strip_metadata(mut self) -> Self {
        self.metadata = ImageMetadata::Strip;
        self
    }
}

impl HlsRenditionSpec {
    /// fMP4 (CMAF) segments of `segment_duration_s` seconds, with an init segment.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let spec = HlsRenditionSpec::fmp4(2.0);
    /// assert_eq!((spec.segment_format, spec.segment_duration_s), (SegmentFormat::Fmp4, 2.0));
    /// ```
    pub fn fmp4(segment_duration_s: f64) -> Self {
        HlsRenditionSpec {
            segment_format: SegmentFormat::Fmp4,
            segment_duration_s,
        }
    }

    /// MPEG-TS segments of `segment_duration_s` seconds.
    ///
    /// ```
    /// use preset_sdk::*;
    /// assert_eq!(HlsRenditionSpec::mpegts(6.0).segment_format, SegmentFormat::Mpegts);
    /// ```
    pub fn mpegts(segment_duration_s: f64) -> Self {
        HlsRenditionSpec {
            segment_format: SegmentFormat::Mpegts,
            segment_duration_s,
        }
    }
}
