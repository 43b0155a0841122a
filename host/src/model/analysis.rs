//! Measurements a preset asks for before it plans, and their typed results.

use serde::{Deserialize, Serialize};

use super::media::MediaRef;

/// Black intervals (ffmpeg's blackdetect).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BlackSpec {
    pub min_duration_s: f64,
    /// 0 to 1: the share of a frame's pixels that must be dark.
    pub picture_threshold: f64,
    /// 0 to 1: how dark a pixel must be to count, as a share of full scale.
    pub pixel_threshold: f64,
}

/// Scene changes (ffmpeg's scdet): a score of at least `threshold` (0 to 100) is a cut.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SceneSpec {
    pub threshold: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum AnalysisKind {
    Loudness,
    BlackIntervals(BlackSpec),
    SceneChanges(SceneSpec),
    Crop,
    Interlacing,
}

/// Part of a source, in seconds from its start.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimeWindow {
    pub start_s: f64,
    pub duration_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisRequest {
    /// Chosen by the preset; the result carries it back.
    pub id: String,
    pub source: MediaRef,
    /// Absolute index of the stream to measure: audio for loudness, video for the others.
    pub stream: u32,
    pub kind: AnalysisKind,
    /// Only this part of the source; the whole of it when absent.
    #[serde(default)]
    pub window: Option<TimeWindow>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Loudness {
    pub integrated_lufs: f64,
    pub true_peak_dbtp: f64,
    pub lra_lu: f64,
    pub threshold_lufs: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub start_s: f64,
    pub end_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SceneChange {
    pub time_s: f64,
    /// 0 to 100, as scdet scores it.
    pub score: f64,
}

/// A rectangle within a frame, in pixels of the coded picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CropBox {
    pub width: u32,
    pub height: u32,
    pub x: u32,
    pub y: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScanType {
    Progressive,
    TopFieldFirst,
    BottomFieldFirst,
    Undetermined,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interlacing {
    pub verdict: ScanType,
    pub progressive_frames: u32,
    pub top_field_first_frames: u32,
    pub bottom_field_first_frames: u32,
    pub undetermined_frames: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AnalysisValue {
    Loudness(Loudness),
    BlackIntervals(Vec<Interval>),
    SceneChanges(Vec<SceneChange>),
    /// None when every frame measured was black.
    Crop(Option<CropBox>),
    Interlacing(Interlacing),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisResult {
    pub id: String,
    pub value: AnalysisValue,
}
