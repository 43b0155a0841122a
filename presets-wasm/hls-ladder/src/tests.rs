//! Planning decisions on hand-made ffprobe views.

use super::*;

fn request(round: u32, width: u32, height: u32) -> PlanRequest {
    let mut video = StreamInfo::new_video(0, "h264", width, height);
    if let StreamDetail::Video(v) = &mut video.detail {
        v.frame_rate = Some(Rational { num: 24, den: 1 });
    }
    let mut audio = StreamInfo::new_audio(1, "aac", 48_000, 2);
    audio.language = Some("eng".into());
    PlanRequest::new(round)
        .with_input(
            "main",
            MediaInfo::new(&["mov", "mp4"])
                .with_stream(video)
                .with_stream(audio)
                .with_duration(8.0),
        )
        .with_param("segment_duration", 4i64)
        .with_param("uhd", true)
        .with_param("uhd_level", "5.1")
        .with_param("speed", "veryfast")
}

fn scanned(request: PlanRequest, verdict: ScanType) -> PlanRequest {
    request.with_analysis(video_source::SCAN_ID, video_source::scan_result(verdict))
}

fn finish(width: u32, height: u32) -> Finish {
    let request = scanned(request(2, width, height), ScanType::Progressive);
    HlsLadder::plan(&request)
        .unwrap()
        .as_finish()
        .unwrap()
        .clone()
}

fn outputs(finish: &Finish) -> Vec<&Output> {
    finish.steps.iter().flat_map(|s| &s.outputs).collect()
}

#[test]
fn round_one_asks_for_the_interlacing_analysis() {
    let decision = HlsLadder::plan(&request(1, 1920, 1080)).unwrap();
    let work = decision.as_next().unwrap();
    assert!(matches!(work.analyses[0].kind, AnalysisKind::Interlacing));
}

#[test]
fn a_1080p_source_gets_three_h264_rungs_and_audio_from_one_step() {
    let finish = finish(1920, 1080);
    assert_eq!(finish.steps.len(), 1, "one ffmpeg for the whole ladder");
    let names: Vec<_> = outputs(&finish).iter().map(|o| o.name.clone()).collect();
    assert_eq!(names, ["360p", "720p", "1080p", "audio"]);
    assert_eq!(finish.packages[0].variants, ["360p", "720p", "1080p"]);
    assert_eq!(finish.packages[0].audio[0].language.as_deref(), Some("eng"));
    let split = finish.steps[0].find_filter("split").unwrap();
    assert_eq!(split.outputs.len(), 3);
    let rate = |name: &str| {
        outputs(&finish)
            .iter()
            .find(|o| o.name == name)
            .unwrap()
            .encoder()
            .unwrap()
            .bit_rate
    };
    assert_eq!(rate("360p"), Some(400_000));
    assert_eq!(rate("720p"), Some(2_500_000));
    assert_eq!(rate("1080p"), Some(5_000_000));
}

#[test]
fn every_rung_has_the_same_fixed_gop_and_no_scene_cut_keyframes() {
    let finish = finish(1920, 1080);
    for output in outputs(&finish).iter().filter(|o| o.name != "audio") {
        let encoder = output.encoder().unwrap();
        let option = |name: &str| {
            encoder
                .options
                .iter()
                .find(|o| o.name == name)
                .map(|o| o.value.clone())
        };
        assert_eq!(option("g"), Some(Value::Integer(48)), "{}", output.name);
        assert_eq!(option("keyint_min"), Some(Value::Integer(48)));
        assert_eq!(option("sc_threshold"), Some(Value::Integer(0)));
        assert_eq!(
            option("bf"),
            Some(Value::Integer(3)),
            "the H.265 rung's delay"
        );
        let rate = encoder.bit_rate.unwrap() as i64;
        assert_eq!(option("bufsize"), Some(Value::Integer(rate * 2)));
    }
}

#[test]
fn a_2160p_source_adds_an_optional_h265_rung_tagged_hvc1() {
    let finish = finish(3840, 2160);
    let uhd = outputs(&finish)
        .into_iter()
        .find(|o| o.name == "2160p")
        .unwrap();
    assert!(uhd.optional);
    let encoder = uhd.encoder().unwrap();
    assert_eq!(encoder.codec, "libx265");
    let params = encoder
        .options
        .iter()
        .find(|o| o.name == "x265-params")
        .unwrap();
    assert_eq!(
        params.value.as_str(),
        Some(
            "keyint=48:min-keyint=48:scenecut=0:open-gop=0:bframes=3:level-idc=5.1:log-level=error"
        )
    );
    assert!(
        encoder
            .options
            .iter()
            .any(|o| o.name == "tag" && o.value.as_str() == Some("hvc1"))
    );
}

#[test]
fn no_rung_is_above_the_source_and_a_small_source_gets_its_own_height() {
    let names = |w, h| -> Vec<String> { finish(w, h).packages[0].variants.clone() };
    assert_eq!(names(1280, 720), ["360p", "720p"]);
    assert_eq!(names(854, 480), ["360p"]);
    assert_eq!(names(320, 240), ["240p"]);
    // A portrait phone video: its 1080 wide side is what makes it 1080p.
    assert_eq!(names(1080, 1920), ["360p", "720p", "1080p"]);
}

#[test]
fn an_interlaced_source_is_deinterlaced_once_before_the_split() {
    let request = scanned(request(2, 1920, 1080), ScanType::TopFieldFirst);
    let decision = HlsLadder::plan(&request).unwrap();
    let step = &decision.as_finish().unwrap().steps[0];
    assert!(step.find_filter("bwdif").is_some());
    assert_eq!(
        step.find_filter("split").unwrap().inputs,
        [Pad::link("progressive")]
    );
}

#[test]
fn segments_must_hold_whole_keyframe_intervals() {
    let request =
        scanned(request(2, 1920, 1080), ScanType::Progressive).with_param("segment_duration", 5i64);
    let refusal = HlsLadder::plan(&request).err().unwrap();
    assert_eq!(refusal.code, "SEGMENT_DURATION");
}

#[test]
fn describe_names_the_crate() {
    let d = HlsLadder::describe();
    assert_eq!(
        (d.name.as_str(), d.version.as_str()),
        ("hls-ladder", "1.0.0")
    );
}
