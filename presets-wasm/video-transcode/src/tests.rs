//! Planning decisions on hand-made ffprobe views.

use super::*;

fn source(width: u32, height: u32, bit_rate: Option<u64>) -> MediaInfo {
    let mut video = StreamInfo::new_video(0, "h264", width, height);
    video.bit_rate = bit_rate;
    MediaInfo::new(&["mov", "mp4"])
        .with_stream(video)
        .with_stream(StreamInfo::new_audio(1, "aac", 48_000, 6))
        .with_duration(10.0)
}

fn plan_with(info: MediaInfo, params: &[(&str, ParamValue)]) -> Finish {
    let mut request = PlanRequest::new(2).with_input("main", info).with_analysis(
        video_source::SCAN_ID,
        video_source::scan_result(ScanType::Progressive),
    );
    for (name, value) in params {
        request = request.with_param(*name, value.clone());
    }
    // The host fills in the defaults of params the job left out.
    let defaults: [(&str, ParamValue); 2] = [("upscale", false.into()), ("speed", "medium".into())];
    for (name, default) in defaults {
        if !params.iter().any(|(given, _)| *given == name) {
            request = request.with_param(name, default);
        }
    }
    VideoTranscode::plan(&request)
        .unwrap()
        .as_finish()
        .unwrap()
        .clone()
}

fn report<'a>(finish: &'a Finish, key: &str) -> &'a Value {
    finish
        .report_value(key)
        .unwrap_or_else(|| panic!("no {key}"))
}

fn output(finish: &Finish) -> &Output {
    &finish.steps[0].outputs[0]
}

fn option<'a>(encoder: &'a Encoder, name: &str) -> Option<&'a Value> {
    encoder
        .options
        .iter()
        .find(|o| o.name == name)
        .map(|o| &o.value)
}

#[test]
fn web_hd_is_h264_high_at_4_mbps_in_a_faststart_mp4() {
    let finish = plan_with(
        source(3840, 2160, Some(40_000_000)),
        &[("profile", "web-hd".into())],
    );
    let out = output(&finish);
    assert_eq!(out.container(), Some("mp4"));
    let encoder = out.encoder().unwrap();
    assert_eq!(encoder.codec, "libx264");
    assert_eq!(encoder.bit_rate, Some(4_000_000));
    assert_eq!(
        option(encoder, "profile").and_then(Value::as_str),
        Some("high")
    );
    assert_eq!(option(encoder, "bufsize"), Some(&Value::Integer(8_000_000)));
    assert_eq!(
        (report(&finish, "width"), report(&finish, "height")),
        (&Value::Integer(1920), &Value::Integer(1080))
    );
    assert_eq!(report(&finish, "bit_rate_capped"), &Value::Boolean(false));
    assert!(out.muxer_options.iter().any(|o| o.name == "movflags"));
    let audio = out.streams[1].codec.clone();
    assert!(
        matches!(audio, Codec::Encode(e) if e.codec == "aac" && e.channels == Some(2) && e.bit_rate == Some(128_000))
    );
}

#[test]
fn web_4k_is_10_bit_h265_tagged_hvc1() {
    let finish = plan_with(source(3840, 2160, None), &[("profile", "web-4k".into())]);
    let encoder = output(&finish).encoder().unwrap();
    assert_eq!(encoder.codec, "libx265");
    assert_eq!(encoder.pixel_format.as_deref(), Some("yuv420p10le"));
    assert_eq!(
        option(encoder, "profile").and_then(Value::as_str),
        Some("main10")
    );
    assert_eq!(option(encoder, "tag").and_then(Value::as_str), Some("hvc1"));
    assert_eq!(encoder.bit_rate, Some(15_000_000));
}

#[test]
fn archive_is_h265_crf_18_with_flac_in_matroska() {
    let finish = plan_with(source(1920, 1080, None), &[("profile", "archive".into())]);
    let out = output(&finish);
    assert_eq!(out.container(), Some("mkv"));
    let encoder = out.encoder().unwrap();
    assert_eq!(option(encoder, "crf"), Some(&Value::Integer(18)));
    assert_eq!(encoder.bit_rate, None);
    assert!(
        option(encoder, "tag").is_none(),
        "Matroska takes no MP4 tag"
    );
    assert!(matches!(&out.streams[1].codec, Codec::Encode(e) if e.codec == "flac"));
    assert_eq!(report(&finish, "width"), &Value::Integer(1920));
}

#[test]
fn a_source_with_few_bits_caps_the_target_and_says_so() {
    // 1 Mbps of H.264 at 720p cannot justify 4 Mbps at the same size.
    let finish = plan_with(
        source(1280, 720, Some(1_000_000)),
        &[("profile", "web-hd".into())],
    );
    assert_eq!(report(&finish, "bit_rate_capped"), &Value::Boolean(true));
    assert_eq!(output(&finish).encoder().unwrap().bit_rate, Some(1_000_000));
    assert!(finish.report_value("bit_rate_reason").is_some());
    assert_eq!(
        report(&finish, "height"),
        &Value::Integer(720),
        "never upscaled"
    );
}

#[test]
fn params_override_the_profile() {
    let finish = plan_with(
        source(1920, 1080, None),
        &[
            ("profile", "social".into()),
            ("max_height", 720i64.into()),
            ("quality", 20i64.into()),
            ("audio_bit_rate", 96_000i64.into()),
            ("container", "mkv".into()),
        ],
    );
    let out = output(&finish);
    assert_eq!(out.container(), Some("mkv"));
    let encoder = out.encoder().unwrap();
    assert_eq!(option(encoder, "crf"), Some(&Value::Integer(20)));
    assert_eq!(
        option(encoder, "maxrate"),
        Some(&Value::Integer(12_000_000)),
        "the profile's rate caps CRF"
    );
    assert_eq!(report(&finish, "height"), &Value::Integer(720));
    assert_eq!(report(&finish, "audio_bit_rate"), &Value::Integer(96_000));
}

#[test]
fn ultrafast_h264_is_reported_as_the_constrained_baseline_it_writes() {
    let finish = plan_with(
        source(1920, 1080, None),
        &[("profile", "web-hd".into()), ("speed", "ultrafast".into())],
    );
    assert_eq!(
        report(&finish, "video_profile").as_str(),
        Some("constrained baseline")
    );
}

#[test]
fn describe_names_the_crate() {
    let d = VideoTranscode::describe();
    assert_eq!(
        (d.name.as_str(), d.version.as_str()),
        ("video-transcode", "1.0.0")
    );
}
