//! What a plan may name: filters with their typed arguments, encoders with their options,
//! containers with their muxer options, and numeric bounds.
//!
//! This is an allowlist, not a blocklist: anything not written here is rejected. Nothing listed
//! opens a file, a URL or a device (no `movie`, `amovie`, `sendcmd`, `zmq`, `lv2`, `ladspa`,
//! `frei0r`, `subtitles`, `drawtext` with files, ...).

use crate::model;

/// The type of one named argument.
#[derive(Debug, Clone, Copy)]
pub enum Arg {
    Int(i64, i64),
    /// An odd integer in the range (a matrix size, which has a centre).
    OddInt(i64, i64),
    Num(f64, f64),
    Bool,
    Choice(&'static [&'static str]),
    /// A gain: a number, or text like "-3.5dB".
    Gain,
    /// A `|`-separated list of sample formats, sample rates or channel layouts.
    List(ListOf),
    /// `pan`'s channel mapping: "stereo|c0=0.5*c0+0.5*c1|c1=c0".
    PanSpec,
    /// Space-separated numbers (amix weights).
    Weights,
    /// `|`-separated delays in ms (adelay).
    Delays,
    /// A frame rate: a number or "num/den".
    Rate,
    /// "WxH" (tile layout).
    Size,
    /// A `:`-separated list of `key=value` pairs (x265-params), each key with its own type.
    Params(&'static [(&'static str, Arg)]),
}

#[derive(Debug, Clone, Copy)]
pub enum ListOf {
    SampleFormats,
    SampleRates,
    Layouts,
    PixelFormats,
}

pub const SAMPLE_FORMATS: &[&str] = &[
    "u8", "s16", "s32", "s64", "flt", "dbl", "u8p", "s16p", "s32p", "s64p", "fltp", "dblp",
];

pub const PIXEL_FORMATS: &[&str] = &[
    "yuv420p",
    // WebP with alpha (libwebp encodes yuva420p).
    "yuva420p",
    "yuv422p",
    "yuv444p",
    "yuvj420p",
    "yuvj422p",
    "yuvj444p",
    "yuv420p10le",
    "yuv422p10le",
    "yuv444p10le",
    "nv12",
    "rgb24",
    "rgba",
    "gray",
    "bgr24",
];

pub const LAYOUTS: &[&str] = &[
    "mono",
    "stereo",
    "2.1",
    "3.0",
    "3.0(back)",
    "4.0",
    "quad",
    "quad(side)",
    "3.1",
    "5.0",
    "5.0(side)",
    "4.1",
    "5.1",
    "5.1(side)",
    "6.0",
    "6.1",
    "7.0",
    "7.1",
    "7.1(wide)",
];

const CHANNEL_NAMES: &[&str] = &[
    "FL", "FR", "FC", "LFE", "BL", "BR", "FLC", "FRC", "BC", "SL", "SR", "TC", "DL", "DR",
];

/// The longest side, in pixels, a scale, crop or pad may give a picture, on either axis.
pub const MAX_SIDE: i64 = 8192;

/// Arguments of an allowed filter; `None` when the filter is not allowed at all.
pub fn filter_args(filter: &str) -> Option<&'static [(&'static str, Arg)]> {
    use Arg::*;
    const FADE_CURVES: &[&str] = &[
        "tri", "qsin", "hsin", "esin", "log", "ipar", "qua", "cub", "squ", "cbr", "par", "exp",
        "iqsin", "ihsin", "dese", "desi", "losi", "sinc", "isinc", "nofade",
    ];
    const PTS: &[&str] = &["PTS-STARTPTS", "N/SR/TB", "N/FRAME_RATE/TB"];
    const COMPRESSOR: &[(&str, Arg)] = &[
        ("level_in", Num(0.015625, 64.0)),
        ("mode", Choice(&["downward", "upward"])),
        ("threshold", Num(0.000976563, 1.0)),
        ("ratio", Num(1.0, 20.0)),
        ("attack", Num(0.01, 2000.0)),
        ("release", Num(0.01, 9000.0)),
        ("makeup", Num(1.0, 64.0)),
        ("knee", Num(1.0, 8.0)),
        ("link", Choice(&["average", "maximum"])),
        ("detection", Choice(&["peak", "rms"])),
        ("level_sc", Num(0.015625, 64.0)),
        ("mix", Num(0.0, 1.0)),
    ];
    const PASS: &[(&str, Arg)] = &[
        ("frequency", Num(1.0, 192000.0)),
        ("poles", Int(1, 2)),
        ("width_type", Choice(&["h", "q", "o", "s", "k"])),
        ("width", Num(0.0, 99999.0)),
        ("mix", Num(0.0, 1.0)),
    ];
    const TRIM: &[(&str, Arg)] = &[
        ("start", Num(0.0, 86400.0)),
        ("end", Num(0.0, 86400.0)),
        ("duration", Num(0.0, 86400.0)),
    ];
    Some(match filter {
        "anull" | "null" | "hflip" | "vflip" => &[],
        "volume" => &[
            ("volume", Gain),
            ("precision", Choice(&["fixed", "float", "double"])),
        ],
        "aresample" => &[
            ("sample_rate", Int(8000, 768000)),
            ("osr", Int(8000, 768000)),
            ("osf", Choice(SAMPLE_FORMATS)),
            ("resampler", Choice(&["swr", "soxr"])),
            ("precision", Int(15, 33)),
            ("filter_size", Int(0, 128)),
            ("cutoff", Num(0.0, 1.0)),
            (
                "dither_method",
                Choice(&[
                    "none",
                    "rectangular",
                    "triangular",
                    "triangular_hp",
                    "shibata",
                ]),
            ),
        ],
        "alimiter" => &[
            ("level_in", Num(0.015625, 64.0)),
            ("level_out", Num(0.015625, 64.0)),
            ("limit", Num(0.0625, 1.0)),
            ("attack", Num(0.1, 80.0)),
            ("release", Num(1.0, 8000.0)),
            ("asc", Bool),
            ("asc_level", Num(0.0, 1.0)),
            ("level", Bool),
        ],
        "aformat" => &[
            ("sample_fmts", List(ListOf::SampleFormats)),
            ("sample_rates", List(ListOf::SampleRates)),
            ("channel_layouts", List(ListOf::Layouts)),
        ],
        "acompressor" | "sidechaincompress" => COMPRESSOR,
        "highpass" | "lowpass" => PASS,
        "afftdn" => &[
            ("nr", Num(0.01, 97.0)),
            ("nf", Num(-80.0, -20.0)),
            ("nt", Choice(&["w", "v", "s", "c"])),
        ],
        "pan" => &[("args", PanSpec)],
        "amix" => &[
            ("inputs", Int(1, 32)),
            ("duration", Choice(&["longest", "shortest", "first"])),
            ("dropout_transition", Num(0.0, 3600.0)),
            ("weights", Weights),
            ("normalize", Bool),
        ],
        "amerge" => &[("inputs", Int(1, 64))],
        "asplit" | "split" => &[("outputs", Int(1, 16))],
        "afade" => &[
            ("type", Choice(&["in", "out"])),
            ("start_time", Num(0.0, 86400.0)),
            ("duration", Num(0.0, 86400.0)),
            ("curve", Choice(FADE_CURVES)),
        ],
        "atrim" => TRIM,
        "trim" => &[
            ("start", Num(0.0, 86400.0)),
            ("end", Num(0.0, 86400.0)),
            ("duration", Num(0.0, 86400.0)),
            ("start_frame", Int(0, 100_000_000)),
            ("end_frame", Int(1, 100_000_000)),
        ],
        "asetpts" | "setpts" => &[("expr", Choice(PTS))],
        "apad" => &[
            ("pad_dur", Num(0.0, 86400.0)),
            ("whole_dur", Num(0.0, 86400.0)),
        ],
        "loudnorm" => &[
            ("I", Num(-70.0, -5.0)),
            ("LRA", Num(1.0, 50.0)),
            ("TP", Num(-9.0, 0.0)),
            ("measured_I", Num(-99.0, 0.0)),
            ("measured_LRA", Num(0.0, 99.0)),
            ("measured_TP", Num(-99.0, 99.0)),
            ("measured_thresh", Num(-99.0, 0.0)),
            ("offset", Num(-99.0, 99.0)),
            ("linear", Bool),
            ("dual_mono", Bool),
        ],
        "dynaudnorm" => &[
            ("f", Int(10, 8000)),
            ("g", Int(3, 301)),
            ("p", Num(0.0, 1.0)),
            ("m", Num(1.0, 100.0)),
        ],
        "channelsplit" => &[("channel_layout", List(ListOf::Layouts))],
        "join" => &[
            ("inputs", Int(1, 64)),
            ("channel_layout", List(ListOf::Layouts)),
        ],
        "adelay" => &[("delays", Delays), ("all", Bool)],
        // Either axis up to 8192: an image can be 8192 tall as well as wide.
        "scale" => &[
            ("w", Int(-8, MAX_SIDE)),
            ("h", Int(-8, MAX_SIDE)),
            (
                "flags",
                Choice(&["bilinear", "bicubic", "lanczos", "area", "neighbor"]),
            ),
            (
                "force_original_aspect_ratio",
                Choice(&["disable", "decrease", "increase"]),
            ),
        ],
        // `round=up` keeps, for each output tick, the first frame at or after it.
        "fps" => &[
            ("fps", Rate),
            ("round", Choice(&["zero", "inf", "down", "up", "near"])),
        ],
        // Deinterlacers, for sources the interlacing analysis calls interlaced.
        "bwdif" | "yadif" => &[
            ("mode", Choice(&["send_frame", "send_field"])),
            ("parity", Choice(&["auto", "tff", "bff"])),
            ("deint", Choice(&["all", "interlaced"])),
        ],
        // Joins streams of the step's own inputs end to end (sprite tiles read by seeking).
        "concat" => &[("n", Int(1, 16)), ("v", Int(0, 1)), ("a", Int(0, 1))],
        "format" => &[("pix_fmts", List(ListOf::PixelFormats))],
        "crop" => &[
            ("w", Int(1, MAX_SIDE)),
            ("h", Int(1, MAX_SIDE)),
            ("x", Int(0, MAX_SIDE)),
            ("y", Int(0, MAX_SIDE)),
        ],
        "pad" => &[
            ("w", Int(1, MAX_SIDE)),
            ("h", Int(1, MAX_SIDE)),
            ("x", Int(0, MAX_SIDE)),
            ("y", Int(0, MAX_SIDE)),
            // `black@0` is transparent, for outputs with alpha.
            ("color", Choice(&["black", "white", "black@0"])),
        ],
        // Sharpening after a downscale; ffmpeg wants odd matrix sizes.
        "unsharp" => &[
            ("luma_msize_x", OddInt(3, 13)),
            ("luma_msize_y", OddInt(3, 13)),
            ("luma_amount", Num(0.0, 3.0)),
        ],
        "setsar" => &[("sar", Rate)],
        "transpose" => &[(
            "dir",
            Choice(&["cclock_flip", "clock", "cclock", "clock_flip"]),
        )],
        "thumbnail" => &[("n", Int(2, 1000))],
        "tile" => &[
            ("layout", Size),
            ("padding", Int(0, 64)),
            ("margin", Int(0, 64)),
        ],
        "overlay" => &[("x", Int(0, 7680)), ("y", Int(0, 4320))],
        _ => return None,
    })
}

/// Check a text value against its list kind.
pub fn list_ok(kind: ListOf, text: &str) -> bool {
    text.split('|').all(|item| match kind {
        ListOf::SampleFormats => SAMPLE_FORMATS.contains(&item),
        ListOf::PixelFormats => PIXEL_FORMATS.contains(&item),
        ListOf::Layouts => LAYOUTS.contains(&item) || CHANNEL_NAMES.contains(&item),
        ListOf::SampleRates => item
            .parse::<u32>()
            .is_ok_and(|r| (8000..=768000).contains(&r)),
    })
}

/// `pan`'s mapping: a layout, then `cN=` terms of gains and `cN` channels.
pub fn pan_ok(text: &str) -> bool {
    let mut parts = text.split('|');
    let layout = parts.next().unwrap_or("");
    let layout_ok = LAYOUTS.contains(&layout)
        || layout
            .strip_suffix('c')
            .is_some_and(|n| n.parse::<u8>().is_ok_and(|n| (1..=16).contains(&n)));
    layout_ok
        && parts.clone().count() >= 1
        && parts.all(|term| {
            term.len() <= 256
                && term
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"=<+-*. ".contains(&b))
        })
}

/// Encoders a plan may use, with their own options. `None` when the codec is not allowed.
pub fn encoder_options(codec: &str) -> Option<&'static [(&'static str, Arg)]> {
    use Arg::*;
    const X26X_PRESETS: &[&str] = &[
        "ultrafast",
        "superfast",
        "veryfast",
        "faster",
        "fast",
        "medium",
        "slow",
        "slower",
        "veryslow",
    ];
    const X26X_TUNES: &[&str] = &[
        "film",
        "animation",
        "grain",
        "stillimage",
        "fastdecode",
        "zerolatency",
    ];
    const H264_LEVELS: &[&str] = &[
        "3.0", "3.1", "3.2", "4.0", "4.1", "4.2", "5.0", "5.1", "5.2", "6.0", "6.1", "6.2",
    ];
    // What a ladder needs of x265 beyond the generic options: fixed keyframes, closed GOPs, no
    // scene-cut keyframes, a level; nothing that names a file (no `csv`, `analysis-save`, ...).
    const X265_PARAMS: &[(&str, Arg)] = &[
        ("keyint", Int(1, 1000)),
        ("min-keyint", Int(1, 1000)),
        ("scenecut", Int(0, 100)),
        ("open-gop", Bool),
        ("bframes", Int(0, 16)),
        ("repeat-headers", Bool),
        (
            "level-idc",
            Choice(&["4.1", "5.0", "5.1", "5.2", "6.0", "6.1", "6.2"]),
        ),
        ("log-level", Choice(&["none", "error", "warning"])),
    ];
    Some(match codec {
        "pcm_s16le" | "pcm_s24le" | "pcm_s32le" | "pcm_f32le" | "alac" | "png" => &[],
        "flac" => &[("compression_level", Int(0, 12))],
        "libmp3lame" => &[
            ("compression_level", Int(0, 9)),
            ("q", Int(0, 9)),
            ("joint_stereo", Bool),
        ],
        "aac" => &[("aac_coder", Choice(&["twoloop", "fast"]))],
        "libopus" => &[
            ("application", Choice(&["voip", "audio", "lowdelay"])),
            ("vbr", Choice(&["on", "off", "constrained"])),
            ("frame_duration", Num(2.5, 120.0)),
            ("compression_level", Int(0, 10)),
        ],
        "libvorbis" => &[("q", Num(-1.0, 10.0))],
        "libx264" => &[
            ("crf", Int(0, 51)),
            ("preset", Choice(X26X_PRESETS)),
            ("profile", Choice(&["baseline", "main", "high"])),
            ("level", Choice(H264_LEVELS)),
            ("tune", Choice(X26X_TUNES)),
            ("g", Int(1, 1000)),
            // A fixed GOP for HLS: segments can only start at keyframes.
            ("keyint_min", Int(1, 1000)),
            ("sc_threshold", Int(0, 100)),
            ("bf", Int(0, 16)),
            ("maxrate", Int(10_000, 200_000_000)),
            ("bufsize", Int(10_000, 400_000_000)),
            ("forced-idr", Bool),
            ("tag", Choice(&["avc1"])),
        ],
        "libx265" => &[
            ("crf", Int(0, 51)),
            ("preset", Choice(X26X_PRESETS)),
            ("profile", Choice(&["main", "main10"])),
            ("tune", Choice(X26X_TUNES)),
            ("g", Int(1, 1000)),
            ("keyint_min", Int(1, 1000)),
            ("maxrate", Int(10_000, 200_000_000)),
            ("bufsize", Int(10_000, 400_000_000)),
            // Forced keyframes (segment boundaries) as IDR frames, so every segment decodes alone.
            ("forced-idr", Bool),
            // `hvc1` is what Apple's players require of HEVC in MP4 and fMP4.
            ("tag", Choice(&["hvc1", "hev1"])),
            ("x265-params", Params(X265_PARAMS)),
        ],
        "libvpx-vp9" => &[
            ("crf", Int(0, 63)),
            ("deadline", Choice(&["good", "best", "realtime"])),
            ("cpu-used", Int(-8, 8)),
            ("row-mt", Bool),
        ],
        "mjpeg" => &[("q", Int(1, 31))],
        // Image outputs only: the host sets their quality from the image spec.
        "libwebp" | "libaom-av1" => &[],
        _ => return None,
    })
}

/// The encoder the host uses for an image format (ffmpeg 5.1 on Debian: AVIF through libaom).
pub fn image_encoder(format: model::ImageFormat) -> &'static str {
    match format {
        model::ImageFormat::Jpeg => "mjpeg",
        model::ImageFormat::Png => "png",
        model::ImageFormat::Webp => "libwebp",
        model::ImageFormat::Avif => "libaom-av1",
    }
}

/// Whether an allowed encoder writes video (or images): what makes an HLS rendition a variant.
pub fn is_video_encoder(codec: &str) -> bool {
    matches!(
        codec,
        "libx264" | "libx265" | "libvpx-vp9" | "mjpeg" | "png" | "libwebp" | "libaom-av1"
    )
}

/// A container a plan may write.
#[derive(Debug, Clone, Copy)]
pub struct Container {
    /// ffmpeg's muxer name (`-f`).
    pub muxer: &'static str,
    pub extension: &'static str,
    pub muxer_options: &'static [(&'static str, Arg)],
}

/// Containers a plan may write; `None` when the container is not allowed.
pub fn container(name: &str) -> Option<Container> {
    use Arg::*;
    const MOV: &[(&str, Arg)] = &[("movflags", Choice(&["+faststart", "faststart"]))];
    let (muxer, extension, muxer_options): (_, _, &'static [(&'static str, Arg)]) = match name {
        "wav" => ("wav", "wav", &[]),
        "flac" => ("flac", "flac", &[]),
        "mp3" => ("mp3", "mp3", &[("id3v2_version", Int(0, 4))]),
        "m4a" => ("ipod", "m4a", MOV),
        "mp4" => ("mp4", "mp4", MOV),
        "mov" => ("mov", "mov", MOV),
        "mkv" => ("matroska", "mkv", &[]),
        "webm" => ("webm", "webm", &[]),
        "ogg" => ("ogg", "ogg", &[]),
        "opus" => ("opus", "opus", &[]),
        "adts" => ("adts", "aac", &[]),
        _ => return None,
    };
    Some(Container {
        muxer,
        extension,
        muxer_options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_that_reach_files_devices_or_the_network_are_absent() {
        for name in [
            "movie",
            "amovie",
            "sendcmd",
            "asendcmd",
            "zmq",
            "azmq",
            "lv2",
            "ladspa",
            "frei0r",
            "subtitles",
            "ass",
            "drawtext",
            "aloop",
            "loop",
            "anullsrc",
            "sine",
            "tpad",
        ] {
            assert!(filter_args(name).is_none(), "{name} is allowed");
        }
    }

    #[test]
    fn apad_takes_only_lengths() {
        let args = filter_args("apad").unwrap();
        let names: Vec<&str> = args.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["pad_dur", "whole_dur"]);
    }

    #[test]
    fn lists_hold_only_known_items() {
        assert!(list_ok(ListOf::SampleRates, "44100|48000"));
        assert!(!list_ok(ListOf::SampleRates, "44100|1"));
        assert!(list_ok(ListOf::Layouts, "stereo|FL"));
        assert!(!list_ok(ListOf::Layouts, "stereo|file.txt"));
        assert!(list_ok(ListOf::SampleFormats, "s16|fltp"));
        assert!(!list_ok(ListOf::PixelFormats, "yuv420p|"));
    }

    #[test]
    fn pan_specs_are_layout_then_terms() {
        assert!(pan_ok("stereo|c0=0.5*c0+0.5*c1|c1=c0"));
        assert!(pan_ok("2c|c0<c0|c1=c1"));
        assert!(!pan_ok("stereo"), "no terms");
        assert!(!pan_ok("17c|c0=c0"), "too many channels");
        assert!(!pan_ok("stereo|c0=c0:x"), "':' would end the option");
        assert!(!pan_ok("stereo|c0=c0;movie"), "';' would end the filter");
    }

    /// The argument `name` of `filter`.
    fn arg(filter: &str, name: &str) -> Arg {
        filter_args(filter)
            .and_then(|args| args.iter().find(|(n, _)| *n == name))
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("{filter} has no {name}"))
    }

    #[test]
    fn unsharp_takes_odd_matrix_sizes_and_a_bounded_amount() {
        for name in ["luma_msize_x", "luma_msize_y"] {
            assert!(matches!(arg("unsharp", name), Arg::OddInt(3, 13)), "{name}");
        }
        assert!(
            matches!(arg("unsharp", "luma_amount"), Arg::Num(lo, hi) if lo == 0.0 && hi == 3.0)
        );
        assert_eq!(filter_args("unsharp").unwrap().len(), 3);
    }

    #[test]
    fn scale_crop_and_pad_reach_8192_on_both_axes() {
        for (filter, names) in [
            ("scale", &["w", "h"][..]),
            ("crop", &["w", "h", "x", "y"]),
            ("pad", &["w", "h", "x", "y"]),
        ] {
            for name in names {
                assert!(
                    matches!(arg(filter, name), Arg::Int(_, 8192)),
                    "{filter} {name}: {:?}",
                    arg(filter, name)
                );
            }
        }
        assert!(
            filter_args("crop")
                .unwrap()
                .iter()
                .all(|(n, _)| *n != "color")
        );
    }

    #[test]
    fn pad_colours_are_black_white_and_transparent() {
        let Arg::Choice(colours) = arg("pad", "color") else {
            panic!("pad's color is a choice")
        };
        assert_eq!(colours, ["black", "white", "black@0"]);
    }

    #[test]
    fn image_outputs_have_their_pixel_formats() {
        for format in ["rgb24", "rgba", "yuva420p", "yuvj420p", "gray"] {
            assert!(list_ok(ListOf::PixelFormats, format), "{format}");
        }
    }

    #[test]
    fn encoders_and_containers_are_listed_with_their_options() {
        assert!(encoder_options("flac").unwrap()[0].0 == "compression_level");
        assert!(encoder_options("pcm_s16le").unwrap().is_empty());
        assert!(encoder_options("libx264rgb").is_none());
        assert!(encoder_options("h264_vaapi").is_none());
        let mkv = container("mkv").unwrap();
        assert_eq!((mkv.muxer, mkv.extension), ("matroska", "mkv"));
        for name in ["hls", "image2", "tee", "segment", "null", "rtp"] {
            assert!(container(name).is_none(), "{name} is allowed");
        }
    }
}
