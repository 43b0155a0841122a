//! The shared decisions on hand-made ffprobe views.

use super::*;

fn request(width: u32, height: u32, rotation: i32) -> PlanRequest {
    let mut video = StreamInfo::new_video(0, "h264", width, height);
    if let StreamDetail::Video(v) = &mut video.detail {
        v.rotation_degrees = rotation;
    }
    PlanRequest::new(1).with_input("main", MediaInfo::new(&["mov"]).with_stream(video))
}

#[test]
fn a_phone_video_turned_a_quarter_is_displayed_portrait() {
    for rotation in [90, -90, 270, -270] {
        let request = request(1280, 720, rotation);
        let source = Source::of(&request, "main").unwrap();
        assert_eq!(
            source.display(),
            Size::new(720, 1280),
            "rotation {rotation}"
        );
    }
    let request = request(1280, 720, 180);
    assert_eq!(
        Source::of(&request, "main").unwrap().display(),
        Size::new(1280, 720)
    );
}

#[test]
fn non_square_pixels_are_displayed_square() {
    let mut request = request(720, 576, 0);
    let info = request.inputs[0].info.streams[0].detail.clone();
    if let StreamDetail::Video(mut v) = info {
        v.sample_aspect_ratio = Some(Rational { num: 64, den: 45 });
        request.inputs[0].info.streams[0].detail = StreamDetail::Video(v);
    }
    assert_eq!(
        Source::of(&request, "main").unwrap().display(),
        Size::new(1024, 576)
    );
}

#[test]
fn an_audio_file_has_no_video() {
    let request = PlanRequest::new(1).with_input(
        "main",
        MediaInfo::new(&["wav"]).with_stream(StreamInfo::new_audio(0, "pcm_s16le", 48_000, 2)),
    );
    let refusal = Source::of(&request, "main").err().unwrap();
    assert_eq!(refusal.code, "NO_VIDEO");
}

#[test]
fn fields_get_a_deinterlacer_with_their_order_and_frames_none() {
    let scan = |verdict| Scan { verdict };
    let tff = scan(ScanType::TopFieldFirst).deinterlacer().unwrap();
    assert_eq!(tff.filter, "bwdif");
    assert_eq!(
        tff.arg_value("parity").and_then(|v| v.as_str()),
        Some("tff")
    );
    assert_eq!(
        tff.arg_value("mode").and_then(|v| v.as_str()),
        Some("send_frame")
    );
    assert!(scan(ScanType::BottomFieldFirst).interlaced());
    assert!(scan(ScanType::Progressive).deinterlacer().is_none());
    assert!(scan(ScanType::Undetermined).deinterlacer().is_none());
}

#[test]
fn fitted_sizes_are_even_and_never_above_the_source() {
    assert_eq!(fit(Size::new(1920, 1080), 360, false), Size::new(640, 360));
    assert_eq!(fit(Size::new(1440, 1080), 720, false), Size::new(960, 720));
    assert_eq!(fit(Size::new(853, 480), 360, false), Size::new(640, 360));
    assert_eq!(
        fit(Size::new(1921, 1081), 1080, false),
        Size::new(1920, 1080)
    );
    assert_eq!(
        fit(Size::new(3840, 2160), 2160, false),
        Size::new(3840, 2160)
    );
}
