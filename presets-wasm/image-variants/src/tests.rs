//! Planning decisions on hand-made ffprobe views of images.

use std::collections::HashMap;

use super::*;

/// One still image as the host's probe reports it.
fn image(codec: &str, demuxer: &str, width: u32, height: u32, pixel_format: &str) -> MediaInfo {
    let mut stream = StreamInfo::new_video(0, codec, width, height);
    if let StreamDetail::Video(v) = &mut stream.detail {
        v.pixel_format = Some(pixel_format.into());
    }
    MediaInfo::new(&[demuxer])
        .with_stream(stream)
        .with_duration(0.04)
}

fn jpeg(width: u32, height: u32) -> MediaInfo {
    image("mjpeg", "jpeg_pipe", width, height, "yuvj420p")
}

fn oriented(mut info: MediaInfo, orientation: &str) -> MediaInfo {
    info.streams[0]
        .tags
        .push(Tag::new(source::ORIENTATION_TAG, orientation));
    info
}

/// A request for `info` with every param at its default, as the host fills them in.
fn request(info: MediaInfo) -> PlanRequest {
    let mut request = PlanRequest::new(1).with_input("main", info);
    for spec in ImageVariants::describe().params {
        let value: Option<ParamValue> = match spec.kind {
            ParamKind::Integer(s) => s.default.map(ParamValue::Integer),
            ParamKind::Number(s) => s.default.map(ParamValue::Number),
            ParamKind::Boolean(d) => d.map(ParamValue::Boolean),
            ParamKind::Text(s) => s.default.map(ParamValue::Text),
            ParamKind::Choice(s) => s.default.map(ParamValue::Text),
        };
        if let Some(value) = value {
            request = request.with_param(spec.name, value);
        }
    }
    request
}

fn finish(request: &PlanRequest) -> Finish {
    ImageVariants::plan(request)
        .unwrap()
        .as_finish()
        .unwrap()
        .clone()
}

fn refusal(request: &PlanRequest) -> Refusal {
    ImageVariants::plan(request).err().unwrap()
}

fn outputs(finish: &Finish) -> Vec<&Output> {
    finish.steps.iter().flat_map(|s| &s.outputs).collect()
}

fn names(finish: &Finish) -> Vec<String> {
    outputs(finish).iter().map(|o| o.name.clone()).collect()
}

fn report_text<'a>(finish: &'a Finish, name: &str) -> &'a str {
    finish
        .report_value(name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no text report '{name}'"))
}

fn int(node: &FilterNode, arg: &str) -> i64 {
    node.arg_value(arg)
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("{} has no integer {arg}", node.filter))
}

fn text<'a>(node: &'a FilterNode, arg: &str) -> &'a str {
    node.arg_value(arg).and_then(Value::as_str).unwrap()
}

/// The nodes from the image's stream to what `output` reads, first to last.
fn path_to<'a>(step: &'a Step, output: &str) -> Vec<&'a FilterNode> {
    let mut pad = step.find_output(output).unwrap().streams[0].source.clone();
    let mut path = Vec::new();
    while let Pad::Link(label) = &pad {
        let node = step
            .graph
            .iter()
            .find(|n| n.outputs.contains(label))
            .unwrap_or_else(|| panic!("nothing produces '{label}'"));
        path.push(node);
        pad = node.inputs[0].clone();
    }
    path.reverse();
    path
}

fn filters(path: &[&FilterNode]) -> Vec<String> {
    path.iter().map(|n| n.filter.clone()).collect()
}

/// The output size the scale, crop and pad along `path` make.
fn made_size(path: &[&FilterNode]) -> (i64, i64) {
    path.iter()
        .filter(|n| matches!(n.filter.as_str(), "scale" | "crop" | "pad"))
        .map(|n| (int(n, "w"), int(n, "h")))
        .next_back()
        .unwrap()
}

/// What the host checks of a step's wiring: within its limits, every label made once and read
/// once, every image output encoded by its format's encoder with no options.
fn assert_valid(step: &Step) {
    assert!(step.outputs.len() <= 16, "{} outputs", step.outputs.len());
    assert!(step.graph.len() <= 64, "{} nodes", step.graph.len());
    let mut made: HashMap<&str, usize> = HashMap::new();
    for label in step.graph.iter().flat_map(|n| &n.outputs) {
        *made.entry(label).or_default() += 1;
    }
    assert!(made.values().all(|n| *n == 1), "a label made twice");
    let mut read: HashMap<&str, usize> = HashMap::new();
    let pads = step
        .graph
        .iter()
        .flat_map(|n| &n.inputs)
        .chain(step.outputs.iter().map(|o| &o.streams[0].source));
    for pad in pads {
        match pad {
            Pad::Link(label) => *read.entry(label).or_default() += 1,
            Pad::Stream(s) => assert_eq!((s.input, s.stream), (0, 0)),
        }
    }
    assert_eq!(made.len(), read.len(), "a label made and never read");
    assert!(read.iter().all(|(l, n)| *n == 1 && made.contains_key(l)));
    for output in &step.outputs {
        let OutputKind::Still(spec) = output.kind else {
            panic!("{} is not a still", output.name);
        };
        let encoder = output.encoder().unwrap();
        let expected = match spec.format {
            ImageFormat::Jpeg => "mjpeg",
            ImageFormat::Png => "png",
            ImageFormat::Webp => "libwebp",
            ImageFormat::Avif => "libaom-av1",
        };
        assert_eq!(encoder.codec, expected);
        assert!(encoder.options.is_empty() && encoder.pixel_format.is_none());
    }
}

#[test]
fn a_4000x3000_jpeg_gets_its_ladder_in_every_format_from_one_decode() {
    let request = request(jpeg(4000, 3000))
        .with_param("widths", "2560, 320,640,1280,1920,5000")
        .with_param("formats", "webp,jpeg");
    let finish = finish(&request);
    assert_eq!(finish.steps.len(), 1);
    let step = &finish.steps[0];
    assert_valid(step);
    assert_eq!(step.inputs.len(), 1);
    assert_eq!(
        names(&finish),
        [
            "w320-webp",
            "w320-jpeg",
            "w640-webp",
            "w640-jpeg",
            "w1280-webp",
            "w1280-jpeg",
            "w1920-webp",
            "w1920-jpeg",
            "w2560-webp",
            "w2560-jpeg"
        ]
    );
    let split = step.find_filter("split").unwrap();
    assert_eq!(split.inputs, [Pad::stream(0, 0)], "no orientation to fix");
    assert_eq!(int(split, "outputs"), 5);
    for (name, size) in [
        ("w320-webp", (320, 240)),
        ("w640-jpeg", (640, 480)),
        ("w1280-webp", (1280, 960)),
        ("w1920-jpeg", (1920, 1440)),
        ("w2560-webp", (2560, 1920)),
    ] {
        let path = path_to(step, name);
        assert_eq!(made_size(&path), size, "{name}");
        let scale = path.iter().find(|n| n.filter == "scale").unwrap();
        assert_eq!(text(scale, "flags"), "lanczos");
    }
    assert_eq!(
        report_text(&finish, "skipped"),
        "w5000: wider than the 4000 px source (upscale is off)"
    );
    assert_eq!(
        report_text(&finish, "w640"),
        "640x480: w640-webp webp q80 metadata keep, w640-jpeg jpeg q85 metadata keep"
    );
    assert_eq!(report_text(&finish, "source"), "4000x3000 mjpeg");
    assert_eq!(finish.report_value("outputs"), Some(&Value::Integer(10)));
}

#[test]
fn each_format_gets_its_quality_and_metadata_mode() {
    let request = request(jpeg(4000, 3000))
        .with_param("widths", "640")
        .with_param("formats", "jpeg,webp,png")
        .with_param("jpeg_quality", 70i64)
        .with_param("webp_quality", 90i64)
        .with_param("metadata", "strip");
    let finish = finish(&request);
    let specs: Vec<ImageSpec> = outputs(&finish)
        .iter()
        .map(|o| match o.kind {
            OutputKind::Still(spec) => spec,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        specs,
        [
            ImageSpec::jpeg().quality(70).strip_metadata(),
            ImageSpec::webp().quality(90).strip_metadata(),
            ImageSpec::png().strip_metadata(),
        ]
    );
}

#[test]
fn orientation_6_turns_the_picture_first_and_swaps_its_sides() {
    let request = request(oriented(jpeg(4000, 3000), "6")).with_param("widths", "640,3000");
    let finish = finish(&request);
    let step = &finish.steps[0];
    assert_valid(step);
    let first = &step.graph[0];
    assert_eq!(first.filter, "transpose");
    assert_eq!(text(first, "dir"), "clock");
    assert_eq!(first.inputs, [Pad::stream(0, 0)]);
    assert_eq!(
        step.graph
            .iter()
            .filter(|n| n.filter == "transpose")
            .count(),
        1,
        "turned once"
    );
    let path = path_to(step, "w640-webp");
    assert_eq!(filters(&path)[..3], ["transpose", "split", "scale"]);
    assert_eq!(made_size(&path), (640, 853));
    assert_eq!(made_size(&path_to(step, "w3000-webp")), (3000, 4000));
    assert_eq!(finish.report_value("orientation"), Some(&Value::Integer(6)));
    assert_eq!(report_text(&finish, "orientation_fix"), "transpose=clock");
    assert_eq!(
        finish.report_value("source_width"),
        Some(&Value::Integer(3000))
    );
    assert_eq!(
        finish.report_value("source_height"),
        Some(&Value::Integer(4000))
    );
}

#[test]
fn mirrored_orientations_flip_without_swapping_sides() {
    let step = |tag: &str| {
        let request = request(oriented(jpeg(4000, 3000), tag)).with_param("widths", "640");
        finish(&request).steps[0].clone()
    };
    let two = step("2");
    assert_eq!(
        filters(&path_to(&two, "w640-webp")),
        ["hflip", "scale", "setsar"]
    );
    assert_eq!(made_size(&path_to(&two, "w640-webp")), (640, 480));
    assert_eq!(
        filters(&path_to(&step("3"), "w640-webp"))[..2],
        ["hflip", "vflip"]
    );
    assert_eq!(filters(&path_to(&step("4"), "w640-webp"))[0], "vflip");
    let dir = |tag: &str| text(&step(tag).graph[0], "dir").to_owned();
    assert_eq!(dir("5"), "cclock_flip");
    assert_eq!(dir("7"), "clock_flip");
    assert_eq!(dir("8"), "cclock");
    // No tag, 1, or a value EXIF does not define: as stored.
    for tag in ["1", "0", "9", "x"] {
        assert_eq!(
            filters(&path_to(&step(tag), "w640-webp")),
            ["scale", "setsar"]
        );
    }
}

#[test]
fn cover_crops_the_box_at_its_position() {
    let cover = |size: &str, position: &str| {
        let request = request(jpeg(4000, 3000))
            .with_param("widths", "")
            .with_param("sizes", size)
            .with_param("fit", "cover")
            .with_param("position", position);
        let finish = finish(&request);
        let name = format!("{size}-webp");
        let path = path_to(&finish.steps[0], &name);
        let scale = path.iter().find(|n| n.filter == "scale").unwrap();
        let crop = path.iter().find(|n| n.filter == "crop").unwrap();
        (
            (int(scale, "w"), int(scale, "h")),
            [
                int(crop, "w"),
                int(crop, "h"),
                int(crop, "x"),
                int(crop, "y"),
            ],
        )
    };
    // A square from 4:3: 533x400 scaled, 133 px across to crop.
    assert_eq!(cover("400x400", "center"), ((533, 400), [400, 400, 66, 0]));
    assert_eq!(cover("400x400", "left").1, [400, 400, 0, 0]);
    assert_eq!(cover("400x400", "bottom-right").1, [400, 400, 133, 0]);
    // A strip from 4:3: 400x300 scaled, 200 px down to crop.
    assert_eq!(cover("400x100", "top").1, [400, 100, 0, 0]);
    assert_eq!(cover("400x100", "center").1, [400, 100, 0, 100]);
    assert_eq!(cover("400x100", "bottom-left").1, [400, 100, 0, 200]);
}

#[test]
fn a_cover_square_of_a_wide_panorama_crops_before_it_scales() {
    // Scaled first, a 12000x1000 panorama covering 2000x1000 is 12000 px wide, over the
    // filters' 8192: cropped first, in the source's pixels, it is not.
    let request = request(jpeg(12_000, 1_000))
        .with_param("widths", "")
        .with_param("sizes", "2000x1000")
        .with_param("fit", "cover");
    let finish = finish(&request);
    let path = path_to(&finish.steps[0], "2000x1000-webp");
    assert_eq!(filters(&path), ["crop", "scale", "setsar"]);
    let crop = path[0];
    assert_eq!(
        [
            int(crop, "w"),
            int(crop, "h"),
            int(crop, "x"),
            int(crop, "y")
        ],
        [2000, 1000, 5000, 0]
    );
    assert_valid(&finish.steps[0]);
    // Wider still, the crop's own offset is past 8192: nothing can be made.
    let wider = super::tests::request(jpeg(24_000, 1_000))
        .with_param("widths", "")
        .with_param("sizes", "2000x1000")
        .with_param("fit", "cover");
    let refused = refusal(&wider);
    assert_eq!(refused.code, "NO_VARIANTS");
    assert!(
        refused.message.contains("over 8192 px"),
        "{}",
        refused.message
    );
}

#[test]
fn contain_pads_to_the_box_and_transparency_only_where_the_format_has_it() {
    let request = request(jpeg(4000, 3000))
        .with_param("widths", "")
        .with_param("sizes", "400x400")
        .with_param("fit", "contain")
        .with_param("position", "top")
        .with_param("background", "transparent")
        .with_param("formats", "png,jpeg");
    let finish = finish(&request);
    let step = &finish.steps[0];
    assert_valid(step);
    let png = path_to(step, "400x400-png");
    assert_eq!(filters(&png), ["scale", "setsar", "split", "format", "pad"]);
    let pad = png.last().unwrap();
    assert_eq!(
        [int(pad, "w"), int(pad, "h"), int(pad, "x"), int(pad, "y")],
        [400, 400, 0, 0]
    );
    assert_eq!(text(pad, "color"), "black@0");
    assert_eq!(text(png[3], "pix_fmts"), "rgba");
    let jpeg = path_to(step, "400x400-jpeg");
    assert_eq!(filters(&jpeg), ["scale", "setsar", "split", "pad"]);
    assert_eq!(text(jpeg[3], "color"), "white");
    assert_eq!(made_size(&jpeg[..1]), (400, 300));
    assert!(report_text(&finish, "notes").contains("jpeg cannot be transparent"));

    let centred = finish_of(
        request
            .with_param("position", "center")
            .with_param("background", "black"),
    );
    let pad = path_to(&centred.steps[0], "400x400-jpeg")
        .into_iter()
        .find(|n| n.filter == "pad")
        .unwrap();
    assert_eq!((int(pad, "y"), text(pad, "color")), (50, "black"));
}

fn finish_of(request: PlanRequest) -> Finish {
    finish(&request)
}

#[test]
fn fill_stretches_to_the_box_and_inside_stays_within_it() {
    let request = request(jpeg(4000, 3000))
        .with_param("widths", "")
        .with_param("sizes", "400x100,100x400")
        .with_param("fit", "fill");
    let finish = finish(&request);
    let path = path_to(&finish.steps[0], "400x100-webp");
    assert_eq!(filters(&path), ["split", "scale", "setsar"]);
    assert_eq!(made_size(&path), (400, 100));

    let inside = finish_of(request.with_param("fit", "inside"));
    assert_eq!(
        made_size(&path_to(&inside.steps[0], "400x100-webp")),
        (133, 100)
    );
    assert_eq!(
        made_size(&path_to(&inside.steps[0], "100x400-webp")),
        (100, 75)
    );
    assert!(report_text(&inside, "400x100").starts_with("133x100: 400x100-webp "));
}

#[test]
fn without_upscale_nothing_is_made_larger_than_the_source() {
    let small = |upscale: bool| {
        request(jpeg(1000, 750))
            .with_param("widths", "320,640,1280")
            .with_param("sizes", "2000x2000,2000x1000")
            .with_param("fit", "cover")
            .with_param("upscale", upscale)
    };
    let off = finish(&small(false));
    assert_eq!(
        report_text(&off, "variants"),
        "w320,w640,2000x2000,2000x1000"
    );
    assert_eq!(
        report_text(&off, "skipped"),
        "w1280: wider than the 1000 px source (upscale is off)"
    );
    // Boxes larger than the source are scaled down to fit within it, their aspect kept.
    let step = &off.steps[0];
    assert_eq!(made_size(&path_to(step, "2000x2000-webp")), (750, 750));
    let wide = path_to(step, "2000x1000-webp");
    assert_eq!(made_size(&wide), (1000, 500));
    let scale = wide.iter().find(|n| n.filter == "scale").unwrap();
    assert_eq!((int(scale, "w"), int(scale, "h")), (1000, 750), "1x");
    assert!(report_text(&off, "notes").contains(
        "2000x1000: the 2000x1000 box is larger than the 1000x750 source, so it is scaled down to 1000x500"
    ));

    let on = finish(&small(true));
    assert!(on.report_value("skipped").is_none());
    let step = &on.steps[0];
    assert_eq!(made_size(&path_to(step, "w1280-webp")), (1280, 960));
    assert_eq!(made_size(&path_to(step, "2000x2000-webp")), (2000, 2000));
    let scale = path_to(step, "2000x2000-webp")[1];
    assert_eq!((int(scale, "w"), int(scale, "h")), (2667, 2000));
}

#[test]
fn a_source_narrower_than_every_width_gets_its_own_width() {
    let finish = finish(&request(jpeg(200, 150)));
    assert_eq!(names(&finish), ["w200-webp"]);
    assert_eq!(
        made_size(&path_to(&finish.steps[0], "w200-webp")),
        (200, 150)
    );
    assert!(report_text(&finish, "skipped").starts_with("w320: wider than the 200 px source"));

    let contained = request(jpeg(200, 150))
        .with_param("widths", "")
        .with_param("sizes", "400x400")
        .with_param("fit", "contain");
    let step = &finish_of(contained).steps[0];
    let path = path_to(step, "400x400-webp");
    assert_eq!(made_size(&path[..2]), (200, 150), "never above 1x");
    let pad = path.last().unwrap();
    assert_eq!(
        [int(pad, "w"), int(pad, "h"), int(pad, "x"), int(pad, "y")],
        [400, 400, 100, 125]
    );
}

#[test]
fn a_source_over_the_pixel_cap_is_refused_before_decoding() {
    let large = request(jpeg(10_000, 6_000));
    let refused = refusal(&large);
    assert_eq!(refused.code, "SOURCE_TOO_LARGE");
    assert!(
        refused.message.contains("60.0 megapixels"),
        "{}",
        refused.message
    );
    assert!(ImageVariants::plan(&large.with_param("max_megapixels", 60i64)).is_ok());
}

#[test]
fn what_is_not_one_still_image_is_refused() {
    let audio =
        MediaInfo::new(&["wav"]).with_stream(StreamInfo::new_audio(0, "pcm_s16le", 48_000, 2));
    let video = MediaInfo::new(&["mov", "mp4"])
        .with_stream(StreamInfo::new_video(0, "h264", 1920, 1080))
        .with_duration(30.0);
    let motion_jpeg = MediaInfo::new(&["avi"])
        .with_stream(StreamInfo::new_video(0, "mjpeg", 640, 480))
        .with_duration(30.0);
    let with_sound = jpeg(640, 480).with_stream(StreamInfo::new_audio(1, "mp3", 44_100, 2));
    for (info, says) in [
        (audio, "has audio"),
        (video, "is h264 video"),
        (motion_jpeg, "is a avi file"),
        (with_sound, "has audio"),
    ] {
        let refused = refusal(&request(info));
        assert_eq!(refused.code, "NOT_AN_IMAGE");
        assert!(refused.message.contains(says), "{}", refused.message);
        assert!(
            refused.message.contains("JPEG, PNG, WebP"),
            "{}",
            refused.message
        );
    }
    for (codec, demuxer) in [
        ("png", "png_pipe"),
        ("webp", "webp_pipe"),
        ("gif", "gif"),
        ("tiff", "tiff_pipe"),
        ("bmp", "bmp_pipe"),
    ] {
        let info = image(codec, demuxer, 800, 600, "rgb24");
        assert!(ImageVariants::plan(&request(info)).is_ok(), "{codec}");
    }
}

#[test]
fn malformed_lists_are_refused_with_their_own_codes() {
    let base = || request(jpeg(4000, 3000));
    for (param, value, code) in [
        ("widths", "320,abc", "WIDTHS_INVALID"),
        ("widths", "320,,640", "WIDTHS_INVALID"),
        ("widths", "8", "WIDTHS_INVALID"),
        ("widths", "9000", "WIDTHS_INVALID"),
        (
            "widths",
            "16,32,48,64,80,96,112,128,144,160,176",
            "WIDTHS_INVALID",
        ),
        ("sizes", "400*300", "SIZES_INVALID"),
        ("sizes", "400x", "SIZES_INVALID"),
        ("sizes", "400x9000", "SIZES_INVALID"),
        (
            "sizes",
            "20x20,21x21,22x22,23x23,24x24,25x25,26x26,27x27,28x28",
            "SIZES_INVALID",
        ),
        ("formats", "webp,gif", "FORMATS_INVALID"),
        ("formats", " ", "FORMATS_INVALID"),
    ] {
        let refused = refusal(&base().with_param(param, value));
        assert_eq!(refused.code, code, "{param}={value}");
        assert!(refused.message.contains(param), "{}", refused.message);
    }
    let both_empty = base().with_param("widths", "").with_param("sizes", "");
    assert_eq!(refusal(&both_empty).code, "NO_VARIANTS");
    // Spaces, case, a trailing comma, repeats and `jpg` are fine.
    let lenient = base()
        .with_param("widths", " 640 ,320,640,")
        .with_param("sizes", "400X300, 400x300")
        .with_param("formats", "JPG,webp,jpeg");
    assert_eq!(
        names(&finish(&lenient)),
        [
            "w320-jpeg",
            "w320-webp",
            "w640-jpeg",
            "w640-webp",
            "400x300-jpeg",
            "400x300-webp"
        ]
    );
}

#[test]
fn avif_is_always_stripped_and_made_4_2_0() {
    let request = request(jpeg(4000, 3000))
        .with_param("widths", "640")
        .with_param("formats", "avif,jpeg");
    let finish = finish(&request);
    let spec = |name: &str| match outputs(&finish)
        .iter()
        .find(|o| o.name == name)
        .unwrap()
        .kind
    {
        OutputKind::Still(spec) => spec,
        _ => unreachable!(),
    };
    assert_eq!(
        spec("w640-avif"),
        ImageSpec::avif().quality(60).strip_metadata()
    );
    assert_eq!(spec("w640-jpeg"), ImageSpec::jpeg().quality(85));
    let avif = path_to(&finish.steps[0], "w640-avif");
    assert_eq!(text(avif.last().unwrap(), "pix_fmts"), "yuv420p");
    assert!(report_text(&finish, "avif_metadata").starts_with("strip"));
    assert!(report_text(&finish, "w640").contains("w640-avif avif q60 metadata strip"));
}

#[test]
fn sharpening_follows_downscaling_and_spares_transparency() {
    let request = request(image("png", "png_pipe", 1000, 800, "rgba"))
        .with_param("widths", "500,1000")
        .with_param("formats", "png,jpeg")
        .with_param("sharpen", 0.6);
    let finish = finish(&request);
    let step = &finish.steps[0];
    assert_valid(step);
    let jpeg = path_to(step, "w500-jpeg");
    let unsharp = jpeg.iter().find(|n| n.filter == "unsharp").unwrap();
    assert_eq!(int(unsharp, "luma_msize_x"), 5);
    assert_eq!(int(unsharp, "luma_msize_y"), 5);
    assert_eq!(unsharp.arg_value("luma_amount"), Some(&Value::Number(0.6)));
    // The PNG keeps the source's alpha: rgba, unsharpened.
    let png = path_to(step, "w500-png");
    assert!(png.iter().all(|n| n.filter != "unsharp"));
    assert!(
        png.iter()
            .any(|n| n.filter == "format" && text(n, "pix_fmts") == "rgba")
    );
    // Not downscaled, not sharpened.
    assert!(
        path_to(step, "w1000-jpeg")
            .iter()
            .all(|n| n.filter != "unsharp")
    );
    let notes = report_text(&finish, "notes");
    assert!(notes.contains("not sharpened"), "{notes}");
    assert!(notes.contains("transparency is dropped in jpeg"), "{notes}");
    // The transparent picture's nodes come before the opaque one's (ffmpeg settles formats in
    // graph order).
    let position = |filter: &str| step.graph.iter().position(|n| n.filter == filter).unwrap();
    assert!(position("format") < position("unsharp"));
}

#[test]
fn an_opaque_picture_is_sharpened_before_its_transparent_padding() {
    let request = request(jpeg(4000, 3000))
        .with_param("widths", "")
        .with_param("sizes", "400x400")
        .with_param("fit", "contain")
        .with_param("background", "transparent")
        .with_param("formats", "webp")
        .with_param("sharpen", 1.0);
    let finish = finish(&request);
    let path = path_to(&finish.steps[0], "400x400-webp");
    assert_eq!(
        filters(&path),
        ["scale", "setsar", "unsharp", "format", "pad"]
    );
    assert!(finish.report_value("notes").is_none());
}

#[test]
fn more_outputs_than_a_step_holds_are_spread_over_steps() {
    let request = request(oriented(jpeg(4000, 3000), "8"))
        .with_param("widths", "160,320,480,640,800,960,1280,1600,1920,2560")
        .with_param(
            "sizes",
            "100x100,200x200,300x300,400x300,1200x630,1080x1080,1080x1920,1500x500",
        )
        .with_param("fit", "cover")
        .with_param("formats", "webp,jpeg,png,avif")
        .with_param("sharpen", 0.5);
    let finish = finish(&request);
    assert_eq!(outputs(&finish).len(), 18 * 4);
    assert_eq!(finish.steps.len(), 5);
    let mut seen = std::collections::HashSet::new();
    for step in &finish.steps {
        assert_valid(step);
        assert_eq!(step.inputs.len(), 1, "each step decodes the image once");
        assert_eq!(
            step.graph[0].filter, "transpose",
            "each step turns it first"
        );
        assert!(step.outputs.iter().all(|o| seen.insert(o.name.clone())));
    }
    let step_names: Vec<_> = finish.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        step_names,
        [
            "variants-1",
            "variants-2",
            "variants-3",
            "variants-4",
            "variants-5"
        ]
    );
    assert_eq!(finish.report_value("steps"), Some(&Value::Integer(5)));

    // One format: 18 outputs, held back by the 16 outputs and the 64 filters of a step.
    let single = finish_of(request.with_param("formats", "webp"));
    assert_eq!(outputs(&single).len(), 18);
    assert!(single.steps.len() >= 2);
    single.steps.iter().for_each(assert_valid);
    assert!(
        single.report.len() <= 64,
        "the job record keeps 64 report entries"
    );
}

#[test]
fn describe_names_the_crate() {
    let d = ImageVariants::describe();
    assert_eq!(
        (d.name.as_str(), d.version.as_str()),
        ("image-variants", "1.0.0")
    );
    assert!(d.params.iter().all(|p| !p.description.is_empty()));
}

/// AVIF's 4:2:0 is made on its own branch, behind a `scale` that converts there alone: a
/// `format` straight after the split would settle every branch on yuv420p, and PNG would lose
/// its lossless picture.
#[test]
fn avif_converts_to_yuv420p_on_its_own_branch() {
    let request = request(jpeg(4000, 3000))
        .with_param("widths", "640")
        .with_param("formats", "png,avif");
    let finish = finish(&request);
    let step = &finish.steps[0];
    assert_valid(step);
    let avif = path_to(step, "w640-avif");
    assert_eq!(
        filters(&avif),
        ["scale", "setsar", "split", "scale", "format"]
    );
    assert_eq!(text(avif[4], "pix_fmts"), "yuv420p");
    let png = path_to(step, "w640-png");
    assert_eq!(filters(&png), ["scale", "setsar", "split"]);
}
