//! Interlacing: asked for in round 1, acted on in round 2.

use preset_sdk::*;

use crate::Source;

/// The id of the interlacing analysis every video preset asks for.
pub const SCAN_ID: &str = "scan";

/// How much of the source the interlacing analysis reads, from its start.
const SCAN_WINDOW_S: f64 = 10.0;

/// Round 1's interlacing analysis of the source's video stream (its first 10 s; the host reads
/// a bounded sample of that).
pub fn scan_analysis(source: &Source) -> AnalysisRequest {
    let window = source
        .duration_s()
        .map_or(SCAN_WINDOW_S, |d| d.min(SCAN_WINDOW_S));
    AnalysisRequest::interlacing(SCAN_ID, MediaRef::input("main"), source.index())
        .window(0.0, window)
}

/// What the analysis found, and the deinterlacer it calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan {
    pub verdict: ScanType,
}

impl Scan {
    /// The round 1 result; a refusal when round 2 came without it.
    pub fn of(request: &PlanRequest) -> Result<Scan, Refusal> {
        let found = request.interlacing(SCAN_ID).ok_or_else(|| {
            refuse(
                "NO_ANALYSIS",
                "round 2 came without the interlacing analysis asked for in round 1",
            )
        })?;
        Ok(Scan {
            verdict: found.verdict,
        })
    }

    /// Whether the source's frames are fields to weave: the analysis saw one field order.
    pub fn interlaced(&self) -> bool {
        matches!(
            self.verdict,
            ScanType::TopFieldFirst | ScanType::BottomFieldFirst
        )
    }

    /// `bwdif` at the source's frame rate (one frame per frame, not per field) for an
    /// interlaced source; nothing for a progressive or undetermined one.
    pub fn deinterlacer(&self) -> Option<FilterNode> {
        let parity = match self.verdict {
            ScanType::TopFieldFirst => "tff",
            ScanType::BottomFieldFirst => "bff",
            _ => return None,
        };
        Some(
            FilterNode::new("bwdif")
                .arg("mode", "send_frame")
                .arg("parity", parity)
                .arg("deint", "all"),
        )
    }
}

/// An interlacing result as the host would hand it back, with every sampled frame counted
/// under `verdict`: for presets' unit tests and dry runs of round 2.
///
/// ```
/// use preset_sdk::*;
/// let request = PlanRequest::new(2).with_analysis(
///     video_source::SCAN_ID,
///     video_source::scan_result(ScanType::TopFieldFirst),
/// );
/// assert!(video_source::Scan::of(&request).unwrap().interlaced());
/// ```
pub fn scan_result(verdict: ScanType) -> AnalysisValue {
    let frames = |v: ScanType| if v == verdict { 50 } else { 0 };
    AnalysisValue::Interlacing(Interlacing {
        verdict,
        progressive_frames: frames(ScanType::Progressive),
        top_field_first_frames: frames(ScanType::TopFieldFirst),
        bottom_field_first_frames: frames(ScanType::BottomFieldFirst),
        undetermined_frames: frames(ScanType::Undetermined),
    })
}
