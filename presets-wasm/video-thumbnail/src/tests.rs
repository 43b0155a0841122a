//! Planning decisions on hand-made ffprobe views and analyses.

use super::*;
use choose::automatic;

fn request(round: u32) -> PlanRequest {
    PlanRequest::new(round)
        .with_input(
            "main",
            MediaInfo::new(&["mov", "mp4"])
                .with_stream(StreamInfo::new_video(0, "h264", 1920, 1080))
                .with_duration(30.0),
        )
        .with_param("format", "jpeg")
        .with_param("width", 640i64)
}

fn analysed(request: PlanRequest, black: Vec<Interval>, scenes: Vec<SceneChange>) -> PlanRequest {
    request
        .with_analysis(
            video_source::SCAN_ID,
            video_source::scan_result(ScanType::Progressive),
        )
        .with_analysis("black", AnalysisValue::BlackIntervals(black))
        .with_analysis("scenes", AnalysisValue::SceneChanges(scenes))
}

fn black(start_s: f64, end_s: f64) -> Interval {
    Interval { start_s, end_s }
}

fn cut(time_s: f64, score: f64) -> SceneChange {
    SceneChange { time_s, score }
}

#[test]
fn an_automatic_still_asks_for_black_and_scene_analyses_of_the_first_third() {
    let decision = VideoThumbnail::plan(&request(1)).unwrap();
    let analyses = &decision.as_next().unwrap().analyses;
    assert_eq!(analyses.len(), 3);
    assert!(
        analyses
            .iter()
            .skip(1)
            .all(|a| a.window.is_some_and(|w| w.duration_s == 10.0))
    );
    let timed = VideoThumbnail::plan(&request(1).with_param("time", 3.0)).unwrap();
    assert_eq!(
        timed.as_next().unwrap().analyses.len(),
        1,
        "only the interlacing scan"
    );
}

#[test]
fn the_strongest_cut_outside_black_wins() {
    let chosen = automatic(
        &[black(0.0, 2.0)],
        &[cut(1.0, 40.0), cut(2.0, 30.0), cut(6.0, 12.0)],
        10.0,
    );
    assert_eq!((chosen.time_s, chosen.chosen_by), (2.5, "scene_change"));
}

#[test]
fn without_cuts_the_still_steps_past_black() {
    let chosen = automatic(&[black(0.0, 2.0), black(2.0, 3.0)], &[], 10.0);
    assert_eq!((chosen.time_s, chosen.chosen_by), (3.5, "after_black"));
    let chosen = automatic(&[], &[], 10.0);
    assert_eq!((chosen.time_s, chosen.chosen_by), (1.0, "start"));
}

#[test]
fn the_still_is_taken_by_seeking_and_scaled_to_the_width() {
    let request = analysed(request(2), vec![black(0.0, 2.0)], vec![cut(2.0, 60.0)]);
    let decision = VideoThumbnail::plan(&request).unwrap();
    let finish = decision.as_finish().unwrap();
    let step = &finish.steps[0];
    assert_eq!(step.inputs[0].seek_s, Some(2.5));
    let scale = step.find_filter("scale").unwrap();
    assert_eq!(scale.arg_value("w"), Some(&Value::Integer(640)));
    assert_eq!(scale.arg_value("h"), Some(&Value::Integer(360)));
    assert!(matches!(step.outputs[0].kind, OutputKind::Still(_)));
    assert_eq!(
        finish.report_value("chosen_by").and_then(Value::as_str),
        Some("scene_change")
    );
}

#[test]
fn a_time_past_the_end_is_refused() {
    let request = analysed(request(2).with_param("time", 31.0), vec![], vec![]);
    let refusal = VideoThumbnail::plan(&request).err().unwrap();
    assert_eq!(refusal.code, "TIME_OUT_OF_RANGE");
}

#[test]
fn describe_names_the_crate() {
    let d = VideoThumbnail::describe();
    assert_eq!(
        (d.name.as_str(), d.version.as_str()),
        ("video-thumbnail", "1.0.0")
    );
}
