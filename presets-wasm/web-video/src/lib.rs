//! web-video: what a page needs to show a video: a poster frame and a web-friendly MP4
//! (H.264 High, up to 720p, AAC stereo, faststart so it plays while it downloads), from one
//! ffmpeg and one decode.
//!
//! The decoded picture is deinterlaced if the analysis found fields, scaled once and split: one
//! branch is encoded, the other is trimmed to the poster's time and written as a JPEG of the
//! same size. Constant quality (CRF 23) under a capped VBV (3 Mbps), so easy scenes stay small
//! and hard ones cannot stall a player.

use preset_sdk::*;
use video_source::{Scan, Source, fit, scan_analysis, speed_param};

struct WebVideo;

/// The poster's default time: a tenth of the video, at most this far in.
const POSTER_MAX_S: f64 = 5.0;

impl Preset for WebVideo {
    fn describe() -> Descriptor {
        Descriptor::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
            "A poster frame and a web-friendly 720p H.264/AAC MP4 of a video, from one decode.",
        )
        .input("main", "A video, with or without audio.")
        .param(
            ParamSpec::integer(
                "max_height",
                "The highest picture (the shorter side of a portrait video); never upscaled.",
            )
            .range(144, 2160)
            .default(720),
        )
        .param(
            ParamSpec::number(
                "poster_time",
                "Seconds from the start for the poster. Unset: a tenth of the video, at most 5 s.",
            )
            .range(0.0, 86_400.0),
        )
        .param(
            ParamSpec::integer("crf", "Constant quality (lower is better).")
                .range(0, 51)
                .default(23),
        )
        .param(
            ParamSpec::integer("max_bit_rate", "The video's peak bit rate in bits/s.")
                .range(200_000, 50_000_000)
                .default(3_000_000),
        )
        .param(
            ParamSpec::integer("audio_bit_rate", "AAC bit rate in bits/s.")
                .range(32_000, 512_000)
                .default(128_000),
        )
        .param(speed_param("medium"))
    }

    fn plan(request: &PlanRequest) -> Result<Decision, Refusal> {
        let source = Source::of(request, "main")?;
        if request.round == 1 {
            return Ok(RoundWork::new().analyze(scan_analysis(&source)).into());
        }
        let params = request.params();
        let scan = Scan::of(request)?;
        let size = fit(
            source.display(),
            params.integer("max_height")? as u32,
            false,
        );
        let duration = source.duration_s();
        let last = source.last_still_s();
        let poster_s = match params.optional_number("poster_time")? {
            Some(t) => {
                if let Some(d) = duration
                    && t >= d
                {
                    return Err(refuse(
                        "TIME_OUT_OF_RANGE",
                        format!("poster_time {t} s is past the end of the video ({d:.3} s)"),
                    ));
                }
                t
            }
            None => duration.map_or(0.0, |d| (d / 10.0).min(POSTER_MAX_S)),
        };
        let poster_s = last.map_or(poster_s, |l| poster_s.min(l));

        let max_rate = params.integer("max_bit_rate")?;
        let video = Encoder::new("libx264")
            .pixel_format("yuv420p")
            .option("preset", params.text("speed")?)
            .option("profile", "high")
            .option("crf", params.integer("crf")?)
            .option("maxrate", max_rate)
            .option("bufsize", max_rate * 2);
        let split = FilterNode::new("split")
            .arg("outputs", 2)
            .input(Pad::link("picture"))
            .output("video")
            .output("poster_in");
        let mut output = Output::new("video", "mp4")
            .video(Pad::link("video"), video)
            .muxer_option("movflags", "+faststart");
        if let Some(audio) = source.audio() {
            output = output.audio(
                Pad::stream(0, audio.index()),
                Encoder::new("aac")
                    .bit_rate(params.integer("audio_bit_rate")? as u64)
                    .channels(2),
            );
        }
        let step = Step::new("web")
            .input(MediaRef::input("main"))
            .chain("picture", video_source::picture(&source, &scan, size))
            .filter(split)
            .chain(
                "poster",
                Chain::new(Pad::link("poster_in"))
                    .then(FilterNode::new("trim").arg("start", poster_s)),
            )
            .output(
                Output::still("poster", ImageSpec::jpeg())
                    .video(Pad::link("poster"), Encoder::new("mjpeg")),
            )
            .output(output);
        log::info(format!(
            "{} -> {}; poster at {poster_s:.3} s",
            source.display().text(),
            size.text()
        ));
        Ok(Finish::new()
            .step(step)
            .report("width", size.width)
            .report("height", size.height)
            .report("poster_time_s", video_source::round_to(poster_s, 3))
            .report("deinterlaced", scan.interlaced())
            .into())
    }
}

export_preset!(WebVideo);

#[cfg(test)]
mod tests {
    use super::*;

    fn request(round: u32, width: u32, height: u32) -> PlanRequest {
        PlanRequest::new(round)
            .with_input(
                "main",
                MediaInfo::new(&["mov", "mp4"])
                    .with_stream(StreamInfo::new_video(0, "h264", width, height))
                    .with_stream(StreamInfo::new_audio(1, "aac", 48_000, 2))
                    .with_duration(60.0),
            )
            .with_param("max_height", 720i64)
            .with_param("crf", 23i64)
            .with_param("max_bit_rate", 3_000_000i64)
            .with_param("audio_bit_rate", 128_000i64)
            .with_param("speed", "medium")
            .with_analysis(
                video_source::SCAN_ID,
                video_source::scan_result(ScanType::Progressive),
            )
    }

    #[test]
    fn poster_and_video_come_from_one_decode() {
        let decision = WebVideo::plan(&request(2, 1920, 1080)).unwrap();
        let finish = decision.as_finish().unwrap();
        assert_eq!(finish.steps.len(), 1);
        let step = &finish.steps[0];
        assert_eq!(step.inputs.len(), 1);
        let names: Vec<_> = step.outputs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["poster", "video"]);
        let trim = step.find_filter("trim").unwrap();
        assert_eq!(trim.arg_value("start"), Some(&Value::Number(5.0)));
        assert_eq!(finish.report_value("height"), Some(&Value::Integer(720)));
        let video = step.find_output("video").unwrap();
        assert!(video.muxer_options.iter().any(|o| o.name == "movflags"));
    }

    #[test]
    fn a_small_source_is_not_upscaled() {
        let decision = WebVideo::plan(&request(2, 640, 360)).unwrap();
        let finish = decision.as_finish().unwrap();
        assert_eq!(finish.report_value("width"), Some(&Value::Integer(640)));
    }

    #[test]
    fn describe_names_the_crate() {
        let d = WebVideo::describe();
        assert_eq!(
            (d.name.as_str(), d.version.as_str()),
            ("web-video", "1.0.0")
        );
    }
}
