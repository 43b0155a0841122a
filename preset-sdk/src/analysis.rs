//! Analyses a preset asks for before planning (loudness; black intervals, scene changes, crop
//! and interlacing of video), optionally over a time window, and typed reads of their results
//! from a [`PlanRequest`].
//!
//! Not here: how the host measures them (ffmpeg's ebur128, blackdetect, scdet, cropdetect,
//! idet), or what a preset does with them.

use crate::{
    AnalysisKind, AnalysisRequest, AnalysisValue, BlackSpec, CropBox, Interlacing, Interval,
    MediaRef, PlanRequest, SceneChange, SceneSpec, TimeWindow,
};

impl AnalysisRequest {
    /// An analysis of stream `stream` (absolute index) of `source`, over the whole of it; the
    /// result comes back under `id`.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let a = AnalysisRequest::new("crop", MediaRef::input("main"), 0, AnalysisKind::Crop);
    /// assert_eq!(a.window, None);
    /// ```
    pub fn new(id: impl Into<String>, source: MediaRef, stream: u32, kind: AnalysisKind) -> Self {
        AnalysisRequest {
            id: id.into(),
            source,
            stream,
            kind,
            window: None,
        }
    }

    /// Asks for the EBU R128 loudness of audio stream `stream` of `source`; the result comes
    /// back under `id` ([`PlanRequest::loudness`]).
    ///
    /// ```
    /// use preset_sdk::*;
    /// let a = AnalysisRequest::loudness("input", MediaRef::input("main"), 0);
    /// assert_eq!(a.kind, AnalysisKind::Loudness);
    /// ```
    pub fn loudness(id: impl Into<String>, source: MediaRef, stream: u32) -> Self {
        AnalysisRequest::new(id, source, stream, AnalysisKind::Loudness)
    }

    /// Black intervals of video stream `stream` ([`PlanRequest::black_intervals`]).
    ///
    /// ```
    /// use preset_sdk::*;
    /// let a = AnalysisRequest::black_intervals("black", MediaRef::input("main"), 0, BlackSpec::new(0.5));
    /// assert!(matches!(a.kind, AnalysisKind::BlackIntervals(BlackSpec { min_duration_s: 0.5, .. })));
    /// ```
    pub fn black_intervals(
        id: impl Into<String>,
        source: MediaRef,
        stream: u32,
        spec: BlackSpec,
    ) -> Self {
        AnalysisRequest::new(id, source, stream, AnalysisKind::BlackIntervals(spec))
    }

    /// Scene changes of video stream `stream` scoring at least `threshold` (0 to 100; 10 is a
    /// good start) ([`PlanRequest::scene_changes`]).
    ///
    /// ```
    /// use preset_sdk::*;
    /// let a = AnalysisRequest::scene_changes("scenes", MediaRef::input("main"), 0, 10.0);
    /// assert_eq!(a.kind, AnalysisKind::SceneChanges(SceneSpec { threshold: 10.0 }));
    /// ```
    pub fn scene_changes(
        id: impl Into<String>,
        source: MediaRef,
        stream: u32,
        threshold: f64,
    ) -> Self {
        AnalysisRequest::new(
            id,
            source,
            stream,
            AnalysisKind::SceneChanges(SceneSpec { threshold }),
        )
    }

    /// The largest never-black rectangle of video stream `stream` ([`PlanRequest::crop`]).
    ///
    /// ```
    /// use preset_sdk::*;
    /// let a = AnalysisRequest::crop("crop", MediaRef::input("main"), 0);
    /// assert_eq!(a.kind, AnalysisKind::Crop);
    /// ```
    pub fn crop(id: impl Into<String>, source: MediaRef, stream: u32) -> Self {
        AnalysisRequest::new(id, source, stream, AnalysisKind::Crop)
    }

    /// Whether video stream `stream` is interlaced ([`PlanRequest::interlacing`]).
    ///
    /// ```
    /// use preset_sdk::*;
    /// let a = AnalysisRequest::interlacing("scan", MediaRef::input("main"), 0);
    /// assert_eq!(a.kind, AnalysisKind::Interlacing);
    /// ```
    pub fn interlacing(id: impl Into<String>, source: MediaRef, stream: u32) -> Self {
        AnalysisRequest::new(id, source, stream, AnalysisKind::Interlacing)
    }

    /// Measures only `duration_s` seconds from `start_s` of the source.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let a = AnalysisRequest::crop("crop", MediaRef::input("main"), 0).window(60.0, 30.0);
    /// assert_eq!(a.window, Some(TimeWindow { start_s: 60.0, duration_s: 30.0 }));
    /// ```
    pub fn window(mut self, start_s: f64, duration_s: f64) -> Self {
        self.window = Some(TimeWindow {
            start_s,
            duration_s,
        });
        self
    }
}

impl BlackSpec {
    /// Black intervals of at least `min_duration_s` seconds, with ffmpeg's default thresholds
    /// (98 % of a frame's pixels darker than 10 % of full scale).
    ///
    /// ```
    /// let spec = preset_sdk::BlackSpec::new(2.0);
    /// assert_eq!((spec.picture_threshold, spec.pixel_threshold), (0.98, 0.1));
    /// ```
    pub fn new(min_duration_s: f64) -> Self {
        BlackSpec {
            min_duration_s,
            picture_threshold: 0.98,
            pixel_threshold: 0.1,
        }
    }

    /// The share (0 to 1) of a frame's pixels that must be dark.
    ///
    /// ```
    /// let spec = preset_sdk::BlackSpec::new(2.0).picture_threshold(0.9);
    /// ```
    pub fn picture_threshold(mut self, share: f64) -> Self {
        self.picture_threshold = share;
        self
    }

    /// How dark (0 to 1 of full scale) a pixel must be to count.
    ///
    /// ```
    /// let spec = preset_sdk::BlackSpec::new(2.0).pixel_threshold(0.05);
    /// ```
    pub fn pixel_threshold(mut self, level: f64) -> Self {
        self.pixel_threshold = level;
        self
    }
}

impl PlanRequest {
    /// The black intervals measured by analysis `id`, if it has run.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let request = PlanRequest::new(2)
    ///     .with_analysis("black", AnalysisValue::BlackIntervals(vec![Interval { start_s: 0.0, end_s: 1.5 }]));
    /// assert_eq!(request.black_intervals("black").map(|b| b.len()), Some(1));
    /// ```
    pub fn black_intervals(&self, id: &str) -> Option<&[Interval]> {
        match self.analysis(id)? {
            AnalysisValue::BlackIntervals(intervals) => Some(intervals),
            _ => None,
        }
    }

    /// The scene changes measured by analysis `id`, if it has run.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let cut = SceneChange { time_s: 4.2, score: 31.0 };
    /// let request = PlanRequest::new(2).with_analysis("scenes", AnalysisValue::SceneChanges(vec![cut]));
    /// assert_eq!(request.scene_changes("scenes").unwrap()[0].time_s, 4.2);
    /// ```
    pub fn scene_changes(&self, id: &str) -> Option<&[SceneChange]> {
        match self.analysis(id)? {
            AnalysisValue::SceneChanges(changes) => Some(changes),
            _ => None,
        }
    }

    /// The crop measured by analysis `id`, if it has run: `Some(None)` when every frame
    /// measured was black.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let box_ = CropBox { width: 1920, height: 800, x: 0, y: 140 };
    /// let request = PlanRequest::new(2).with_analysis("crop", AnalysisValue::Crop(Some(box_)));
    /// assert_eq!(request.crop("crop"), Some(Some(&box_)));
    /// ```
    pub fn crop(&self, id: &str) -> Option<Option<&CropBox>> {
        match self.analysis(id)? {
            AnalysisValue::Crop(crop) => Some(crop.as_ref()),
            _ => None,
        }
    }

    /// The interlacing verdict of analysis `id`, if it has run.
    ///
    /// ```
    /// use preset_sdk::*;
    /// let scan = Interlacing {
    ///     verdict: ScanType::TopFieldFirst,
    ///     progressive_frames: 3,
    ///     top_field_first_frames: 240,
    ///     bottom_field_first_frames: 0,
    ///     undetermined_frames: 10,
    /// };
    /// let request = PlanRequest::new(2).with_analysis("scan", AnalysisValue::Interlacing(scan));
    /// assert_eq!(request.interlacing("scan").map(|i| i.verdict), Some(ScanType::TopFieldFirst));
    /// ```
    pub fn interlacing(&self, id: &str) -> Option<&Interlacing> {
        match self.analysis(id)? {
            AnalysisValue::Interlacing(interlacing) => Some(interlacing),
            _ => None,
        }
    }
}
