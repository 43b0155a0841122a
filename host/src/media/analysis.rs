//! Measurements a preset can ask for, run by the host with ffmpeg.
//!
//! Not here: which analyses a plan may request (that is the worker's pipeline).

use std::path::Path;

use crate::error::{ErrorCode, JobError};
use crate::ffmpeg::{self, Tools};
use crate::model;

/// Runs one analysis a plan asked for, already checked by the planning session (its stream
/// exists and has the kind the analysis measures). This host measures loudness; the video
/// analyses of interface 2.0 are refused as a plan the host cannot run.
pub async fn run(
    tools: &Tools,
    file: &Path,
    request: &model::AnalysisRequest,
    duration_s: f64,
) -> Result<model::AnalysisValue, JobError> {
    match request.kind {
        model::AnalysisKind::Loudness => loudness(tools, file, request.stream, duration_s)
            .await
            .map(model::AnalysisValue::Loudness),
        model::AnalysisKind::BlackIntervals(_)
        | model::AnalysisKind::SceneChanges(_)
        | model::AnalysisKind::Crop
        | model::AnalysisKind::Interlacing => Err(JobError::new(
            ErrorCode::PlanRejected,
            "validate",
            format!(
                "analysis '{}': this host measures only loudness; ask for that, or run the job \
                 on a host with video analyses",
                request.id
            ),
        )),
    }
}

/// EBU R128 loudness of one audio stream (ffmpeg's `ebur128` filter, true peak oversampled).
/// A measurement the media makes fail is `ANALYSIS_FAILED`; ffmpeg stopped by something else
/// (a signal the host did not send, a host out of resources) keeps its own, retryable code.
pub async fn loudness(
    tools: &Tools,
    file: &Path,
    stream: u32,
    duration_s: f64,
) -> Result<model::Loudness, JobError> {
    let failed = |why: String| JobError::new(ErrorCode::AnalysisFailed, "analyze", why);
    let mut args = ffmpeg::guarded_input_argv(&["-hide_banner", "-nostdin", "-nostats"], file);
    for a in [
        "-map".to_owned(),
        format!("0:{stream}"),
        "-af".into(),
        "ebur128=peak=true".into(),
        "-f".into(),
        "null".into(),
        "-".into(),
    ] {
        args.push(a.into());
    }
    let out = ffmpeg::capture(
        &tools.ffmpeg,
        &args,
        ffmpeg::time_limit(duration_s),
        tools,
        file.parent(),
    )
    .await
    .map_err(|e| JobError::new(e.code(ErrorCode::AnalysisFailed), "analyze", e.to_string()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.success {
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(failed(format!(
            "loudness measurement of stream {stream} failed: {last}"
        )));
    }
    parse_summary(&stderr).ok_or_else(|| failed("ffmpeg printed no loudness summary".to_owned()))
}

fn value_after(text: &str, key: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.trim_start().starts_with(key))?;
    let field = line.trim_start()[key.len()..].split_whitespace().next()?;
    match field {
        "-inf" => Some(f64::NEG_INFINITY),
        "inf" => Some(f64::INFINITY),
        v => v.parse().ok(),
    }
}

/// Parses the `Summary:` block that ebur128 prints at the end.
pub fn parse_summary(stderr: &str) -> Option<model::Loudness> {
    let summary = &stderr[stderr.rfind("Summary:")?..];
    let integrated = &summary[summary.find("Integrated loudness:")?..];
    let range = &summary[summary.find("Loudness range:")?..];
    let peak = &summary[summary.find("True peak:")?..];
    Some(model::Loudness {
        integrated_lufs: value_after(integrated, "I:")?,
        threshold_lufs: value_after(integrated, "Threshold:")?,
        lra_lu: value_after(range, "LRA:")?,
        true_peak_dbtp: value_after(peak, "Peak:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_summary() {
        let text = "[Parsed_ebur128_0 @ 0x5] Summary:\n\n  Integrated loudness:\n    I:         -16.4 LUFS\n    Threshold: -26.9 LUFS\n\n  Loudness range:\n    LRA:         5.1 LU\n    Threshold: -37.0 LUFS\n    LRA low:   -19.9 LUFS\n    LRA high:  -14.8 LUFS\n\n  True peak:\n    Peak:       -1.6 dBFS\n";
        let l = parse_summary(text).unwrap();
        assert_eq!(l.integrated_lufs, -16.4);
        assert_eq!(l.threshold_lufs, -26.9);
        assert_eq!(l.lra_lu, 5.1);
        assert_eq!(l.true_peak_dbtp, -1.6);
        let silent = text.replace("-1.6 dBFS", "-inf dBFS");
        assert_eq!(
            parse_summary(&silent).unwrap().true_peak_dbtp,
            f64::NEG_INFINITY
        );
    }
}
