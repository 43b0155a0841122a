//! Planning decisions on hand-made ffprobe views.

use super::*;

fn request(duration: f64) -> PlanRequest {
    scanned(duration, ScanType::Progressive)
}

fn scanned(duration: f64, verdict: ScanType) -> PlanRequest {
    PlanRequest::new(2)
        .with_input(
            "main",
            MediaInfo::new(&["mov", "mp4"])
                .with_stream(StreamInfo::new_video(0, "h264", 1280, 720))
                .with_duration(duration),
        )
        .with_param("interval", 2.0)
        .with_param("columns", 4i64)
        .with_param("rows", 4i64)
        .with_param("tile_width", 160i64)
        .with_param("format", "jpeg")
        .with_analysis(video_source::SCAN_ID, video_source::scan_result(verdict))
}

fn finish(request: &PlanRequest) -> Finish {
    SpriteSheet::plan(request)
        .unwrap()
        .as_finish()
        .unwrap()
        .clone()
}

#[test]
fn tiles_are_read_by_seeking_one_input_per_tile() {
    let finish = finish(&request(40.0));
    // 20 thumbnails at 0, 2, ... 38 s: a full sheet of 16 and one of 4.
    assert_eq!(finish.steps.len(), 2);
    let first = &finish.steps[0];
    assert_eq!(first.inputs.len(), 16);
    assert_eq!(first.inputs[3].seek_s, Some(6.0));
    assert!(first.inputs.iter().all(|i| i.duration_s == Some(0.08)));
    assert_eq!(finish.steps[1].inputs.len(), 4);
    let concat = first.find_filter("concat").unwrap();
    assert_eq!(concat.arg_value("n"), Some(&Value::Integer(16)));
    let tile = first.find_filter("tile").unwrap();
    assert_eq!(
        tile.arg_value("layout").and_then(Value::as_str),
        Some("4x4")
    );
    assert_eq!(
        finish.report_value("decode").and_then(Value::as_str),
        Some("seek")
    );
    let names: Vec<_> = finish
        .steps
        .iter()
        .map(|s| s.outputs[0].name.as_str())
        .collect();
    assert_eq!(names, ["sheet_001", "sheet_002"]);
}

#[test]
fn an_interlaced_sheet_of_16_seeks_stays_within_the_hosts_64_filters() {
    let request = scanned(40.0, ScanType::TopFieldFirst);
    let finish = finish(&request);
    let step = &finish.steps[0];
    assert_eq!(step.inputs.len(), 16);
    let deinterlacers = step.graph.iter().filter(|n| n.filter == "bwdif").count();
    assert_eq!(
        deinterlacers, 16,
        "each tile's fields woven before its frame is kept"
    );
    assert!(step.graph.len() <= 64, "{} filter nodes", step.graph.len());
}

#[test]
fn the_webvtt_cues_point_at_each_tile() {
    let finish = finish(&request(40.0));
    let vtt = &finish.documents[0].body;
    assert!(vtt.starts_with("WEBVTT\n"));
    assert!(
        vtt.contains("\n00:00:02.000 --> 00:00:04.000\n{{output:sheet_001}}#xywh=160,0,160,90\n")
    );
    assert!(
        vtt.contains("\n00:00:10.000 --> 00:00:12.000\n{{output:sheet_001}}#xywh=160,90,160,90\n")
    );
    assert!(
        vtt.contains("\n00:00:38.000 --> 00:00:40.000\n{{output:sheet_002}}#xywh=480,0,160,90\n")
    );
    let json = &finish.documents[1].body;
    assert!(json.contains(
        r#"{"time_s":34,"sheet":"{{output:sheet_002}}","row":0,"column":1,"x":160,"y":0}"#
    ));
}

#[test]
fn a_count_spreads_thumbnails_over_the_duration() {
    let finish = finish(&request(60.0).with_param("count", 10i64));
    assert_eq!(finish.report_value("thumbnails"), Some(&Value::Integer(10)));
    assert_eq!(finish.report_value("interval_s"), Some(&Value::Number(6.0)));
}

#[test]
fn a_large_grid_decodes_each_sheets_span_once() {
    let request = request(40.0)
        .with_param("columns", 5i64)
        .with_param("rows", 5i64);
    let finish = finish(&request);
    assert_eq!(finish.steps.len(), 1);
    let step = &finish.steps[0];
    assert_eq!(step.inputs.len(), 1);
    assert_eq!(step.inputs[0].duration_s, Some(40.0));
    let fps = step.find_filter("fps").unwrap();
    assert_eq!(
        fps.arg_value("fps").and_then(Value::as_str),
        Some("1000/2000")
    );
    assert_eq!(fps.arg_value("round").and_then(Value::as_str), Some("up"));
    assert_eq!(
        finish.report_value("decode").and_then(Value::as_str),
        Some("span")
    );
}

#[test]
fn too_many_thumbnails_are_refused() {
    let request = request(3600.0).with_param("interval", 1.0);
    let refusal = SpriteSheet::plan(&request).err().unwrap();
    assert_eq!(refusal.code, "TOO_MANY_THUMBNAILS");
}

#[test]
fn describe_names_the_crate() {
    let d = SpriteSheet::describe();
    assert_eq!(
        (d.name.as_str(), d.version.as_str()),
        ("sprite-sheet", "1.0.0")
    );
}
