//! hls-ladder as a player meets it: every segment of every rung starts with a keyframe at the
//! same time in every rung, no segment is longer than the target duration, the master's
//! BANDWIDTH and AVERAGE-BANDWIDTH are what the segments measure, its CODECS and RESOLUTION are
//! what the streams are, no rung is taller than the source, the master is stored last, and a
//! failing optional 2160p rung leaves a `partial` package that still plays.
//!
//! The ladders whose H.264 profile or H.264-against-H.265 alignment is checked run at
//! `superfast`: x264's `ultrafast` drops CABAC, 8x8 transforms and B-frames, so its rungs are
//! Constrained Baseline and present each keyframe two frames earlier than x265's (whose
//! B-frames delay presentation in fMP4); the other ladders run at `ultrafast`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mediahost_e2e::Host;
use mediahost_e2e::video::{
    self, MasterPlaylist, Rendition, SegmentStart, Source, Sources, job_body, output, output_names,
    run_job_watching,
};
use serde_json::{Value, json};

/// Half a frame at 25 fps: segment starts in two rungs are "the same time" within this.
const SAME_TIME_S: f64 = 0.02;

/// What a ladder job left: the job, its rungs in master order, where they were downloaded, and
/// each output's states and progress as seen while it ran.
struct Ladder {
    job: Value,
    rungs: Vec<Rung>,
    dir: PathBuf,
    progress: BTreeMap<String, Vec<(String, f64)>>,
}

/// What one rung of a ladder measures.
struct Rung {
    name: String,
    rendition: Rendition,
    starts: Vec<SegmentStart>,
}

/// Runs hls-ladder on `source`, downloads every object, and checks what every ladder must hold;
/// returns the job, the rungs (master order) and the download directory.
async fn ladder(source: Source, params: Value, label: &str) -> Ladder {
    let host = Host::shared_local();
    let client = host.client();
    let sources = Sources::get();
    let input = client.upload(sources.path(source)).await;
    let started = std::time::Instant::now();
    let (job, progress) = run_job_watching(&client, &job_body("hls-ladder", &input, params)).await;
    eprintln!(
        "[e2e] {label}: hls-ladder took {:.1}s, outcome {}, report {}",
        started.elapsed().as_secs_f64(),
        job["outcome"],
        job["report"]
    );
    eprintln!("[e2e] {label}: output progress seen while it ran: {progress:?}");
    assert_eq!(job["state"], "COMPLETED", "{job:#}");
    // One ffmpeg, one input: the source is decoded once for every rung. When an optional rung
    // fails, the host runs the step again without it (so the others are whole): two runs then.
    let steps = video::ffmpeg_steps(&client, &job).await;
    let runs = if job["outcome"] == "partial" { 2 } else { 1 };
    assert_eq!(steps.len(), runs, "ffmpeg runs for the ladder: {steps:#?}");
    for step in &steps {
        assert_eq!(step.matches(" -i ").count(), 1, "{step}");
    }
    let dir = sources.scratch(label);
    video::download_objects(&client, &job, &dir).await;

    let master_text = std::fs::read_to_string(dir.join("master.m3u8")).expect("master.m3u8");
    let master = MasterPlaylist::parse(&master_text).unwrap();
    assert!(master.independent_segments, "{master_text}");
    let source_probe = video::probe(sources.path(source));
    let (_, source_height) = video::display_size(video::stream(&source_probe, "video").unwrap());
    let source_short_side = {
        let (w, h) = video::display_size(video::stream(&source_probe, "video").unwrap());
        w.min(h)
    };

    // The audio group: one AAC stereo rendition.
    let audio = master
        .media
        .iter()
        .find(|m| m.get("TYPE").map(String::as_str) == Some("AUDIO"))
        .unwrap_or_else(|| panic!("no audio group:\n{master_text}"));
    let audio_uri = audio.get("URI").expect("the audio rendition's URI");
    let audio_rendition =
        Rendition::open(dir.join(audio_uri).parent().unwrap()).expect("the audio playlist");
    let audio_rates = audio_rendition.rates().unwrap();
    let audio_probe = audio_rendition.probe().unwrap();
    let aac = video::stream(&audio_probe, "audio").expect("an audio stream");
    assert_eq!(aac["channels"], 2, "{aac:#}");
    video::check_target_duration(&audio_rendition.playlist).unwrap();

    let mut rungs = Vec::new();
    for variant in &master.variants {
        let name = variant.uri.trim_end_matches("/index.m3u8").to_string();
        let rendition = Rendition::open(&dir.join(&name)).unwrap();
        let playlist = &rendition.playlist;
        assert!(playlist.ended, "{name}: a VOD playlist ends");
        video::check_target_duration(playlist).unwrap_or_else(|e| panic!("{name}: {e}"));
        let starts = rendition.segment_starts().unwrap();
        video::check_keyframe_starts(&starts).unwrap_or_else(|e| panic!("{name}: {e}"));

        let probe = rendition.probe().unwrap();
        let stream = video::stream(&probe, "video").expect("a video stream");
        video::check_codecs(&variant.codecs(), &[stream, aac])
            .unwrap_or_else(|e| panic!("{name}: {e}\n{master_text}"));
        let (w, h) = (
            stream["width"].as_u64().unwrap(),
            stream["height"].as_u64().unwrap(),
        );
        assert_eq!(variant.resolution(), Some((w, h)), "{name}: RESOLUTION");
        assert!(
            w.min(h) <= source_short_side,
            "{name} is {w}x{h}, taller than the {source_height}p source"
        );
        assert_eq!(video::rotation(stream), 0, "{name}: no display matrix");

        let rates = rendition.rates().unwrap();
        let deviation = video::check_bandwidth(variant, rates, Some(audio_rates), 0.10)
            .unwrap_or_else(|e| panic!("{e}\n{master_text}"));
        assert!(
            rates.peak <= 2.0 * rates.average,
            "{name}: peak segment rate {:.0} over twice the average {:.0}",
            rates.peak,
            rates.average
        );
        let nominal = job["report"][&name]
            .as_str()
            .and_then(|r| r.split_whitespace().nth(1))
            .and_then(|b| b.parse::<f64>().ok());
        eprintln!(
            "[e2e] {label} {name}: {w}x{h} {} segments, peak {:.0} average {:.0} bps (nominal {:?}, \
             ratio {:.2}); BANDWIDTH {:+.2} %, AVERAGE-BANDWIDTH {:+.2} %; CODECS {:?}",
            playlist.segments.len(),
            rates.peak,
            rates.average,
            nominal,
            rates.peak / rates.average,
            deviation.bandwidth * 100.0,
            deviation.average_bandwidth * 100.0,
            variant.codecs()
        );
        rungs.push(Rung {
            name,
            rendition,
            starts,
        });
    }
    let aligned: Vec<(&str, &Rendition, &[SegmentStart])> = rungs
        .iter()
        .map(|r| (r.name.as_str(), &r.rendition, r.starts.as_slice()))
        .collect();
    video::check_aligned(&aligned, SAME_TIME_S).unwrap();

    let stored = video::check_master_stored_last(host.data_dir(), &job, "master.m3u8")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(stored > 4, "only {stored} objects besides the master");
    Ladder {
        job,
        rungs,
        dir,
        progress,
    }
}

/// The rungs the master lists, by name.
fn names(rungs: &[Rung]) -> Vec<&str> {
    rungs.iter().map(|r| r.name.as_str()).collect()
}

/// Segment starts fall on multiples of the declared segment duration (keyframes every 2 s, a
/// segment every `segment_s`), the last one aside, within a frame at `fps`.
fn starts_on_the_grid(rung: &Rung, segment_s: f64, fps: f64) {
    let first = rung.starts[0].pts;
    for (i, start) in rung.starts.iter().enumerate() {
        let want = first + i as f64 * segment_s;
        assert!(
            (start.pts - want).abs() <= 1.0 / fps,
            "{}: segment {i} starts at {:.3}s, expected {want:.3}s: {:?}",
            rung.name,
            start.pts,
            rung.starts
        );
    }
}

/// While the job ran, each rung had its own entry in `output_progress`, seen running.
fn progress_per_rendition(progress: &BTreeMap<String, Vec<(String, f64)>>, rungs: &[&str]) {
    for rung in rungs {
        let seen = progress
            .get(*rung)
            .unwrap_or_else(|| panic!("no progress for {rung} while it ran: {progress:?}"));
        assert!(
            seen.iter().any(|(state, _)| state == "RUNNING"),
            "{rung} never seen RUNNING: {seen:?}"
        );
    }
}

fn play_all(dir: &Path, rungs: &[Rung]) {
    for rung in rungs {
        video::play(&dir.join(&rung.name).join("index.m3u8")).unwrap();
    }
    video::play(&dir.join("master.m3u8")).unwrap();
}

#[tokio::test]
async fn a_1080p_source_gets_three_aligned_rungs_with_honest_bandwidth() {
    let Ladder {
        job,
        rungs,
        dir,
        progress,
    } = ladder(
        Source::P1080,
        json!({"speed": "superfast", "segment_duration": 2}),
        "ladder-1080p",
    )
    .await;
    assert_eq!(job["outcome"], "complete", "{job:#}");
    assert_eq!(names(&rungs), ["360p", "720p", "1080p"]);
    let mut outputs = output_names(&job);
    outputs.sort();
    assert_eq!(outputs, ["1080p", "360p", "720p", "audio", "master"]);
    let report = &job["report"];
    assert_eq!(report["rungs"], "360p,720p,1080p", "{report:#}");
    assert_eq!(
        report["keyframe_interval_s"].as_f64(),
        Some(2.0),
        "{report:#}"
    );
    assert_eq!(
        report["segment_duration_s"].as_f64(),
        Some(2.0),
        "{report:#}"
    );
    assert_eq!(report["deinterlaced"], false, "{report:#}");
    for (name, size) in [
        ("360p", "640x360"),
        ("720p", "1280x720"),
        ("1080p", "1920x1080"),
    ] {
        let said = report[name].as_str().unwrap_or_default();
        assert!(said.starts_with(size), "{name}: {said}");
        assert_eq!(output(&job, name)["kind"], "hls-rendition");
        assert_eq!(output(&job, name)["state"], "COMPLETED");
    }
    for rung in &rungs {
        // 8 s in segments of 2 s: four of them, cut every 2 s.
        assert_eq!(rung.starts.len(), 4, "{}: {:?}", rung.name, rung.starts);
        starts_on_the_grid(rung, 2.0, 25.0);
        let fr = rung.rendition.probe().unwrap();
        let stream = video::stream(&fr, "video").unwrap();
        assert_eq!(stream["profile"], "High", "{}: {stream:#}", rung.name);
        assert_eq!(
            stream["r_frame_rate"], "25/1",
            "{}: frame rate kept",
            rung.name
        );
    }
    let master = std::fs::read_to_string(dir.join("master.m3u8")).unwrap();
    assert!(master.contains("FRAME-RATE=25.000"), "{master}");
    play_all(&dir, &rungs);
    progress_per_rendition(&progress, &["360p", "720p", "1080p"]);
}

#[tokio::test]
async fn a_480p_source_gets_no_rung_above_its_height() {
    let Ladder {
        job, rungs, dir, ..
    } = ladder(Source::P480, json!({"speed": "ultrafast"}), "ladder-480p").await;
    assert_eq!(job["outcome"], "complete", "{job:#}");
    assert_eq!(names(&rungs), ["360p"], "{job:#}");
    assert_eq!(job["report"]["rungs"], "360p", "{job:#}");
    for name in ["720p", "1080p", "2160p"] {
        assert!(
            !output_names(&job).iter().any(|n| n == name),
            "a {name} output for a 480p source: {job:#}"
        );
    }
    let playlist = &rungs[0].rendition.playlist;
    assert_eq!(
        job["report"]["segment_duration_s"].as_f64(),
        Some(4.0),
        "{job:#}"
    );
    // 60 frames at 30000/1001 fps.
    let keyframes = job["report"]["keyframe_interval_s"].as_f64();
    assert!(
        keyframes.is_some_and(|k| (k - 2.002).abs() < 0.001),
        "{job:#}"
    );
    // 30000/1001 fps: keyframes every 60 frames (2.002 s), segments of 4.004 s, then the rest.
    assert!(playlist.segments.len() >= 2, "{playlist:?}");
    starts_on_the_grid(&rungs[0], 4.004, 29.97);
    let master = std::fs::read_to_string(dir.join("master.m3u8")).unwrap();
    assert!(master.contains("FRAME-RATE=29.970"), "{master}");
    play_all(&dir, &rungs);
}

#[tokio::test]
async fn a_2160p_source_adds_an_hevc_rung_aligned_with_the_others() {
    let Ladder {
        job, rungs, dir, ..
    } = ladder(
        Source::P2160,
        json!({"speed": "superfast", "segment_duration": 2}),
        "ladder-2160p",
    )
    .await;
    assert_eq!(job["outcome"], "complete", "{job:#}");
    assert_eq!(names(&rungs), ["360p", "720p", "1080p", "2160p"]);
    let uhd = rungs.last().unwrap();
    let fr = uhd.rendition.probe().unwrap();
    let stream = video::stream(&fr, "video").unwrap();
    assert_eq!(stream["codec_name"], "hevc", "{stream:#}");
    assert_eq!(stream["codec_tag_string"], "hvc1", "{stream:#}");
    assert_eq!(stream["profile"], "Main", "{stream:#}");
    assert_eq!(
        (stream["width"].as_u64(), stream["height"].as_u64()),
        (Some(3840), Some(2160))
    );
    assert_eq!(output(&job, "2160p")["optional"], true, "{job:#}");
    for rung in &rungs {
        starts_on_the_grid(rung, 2.0, 25.0);
    }
    play_all(&dir, &rungs);
}

#[tokio::test]
async fn a_failing_optional_2160p_rung_leaves_a_playable_partial_package() {
    let Ladder {
        job, rungs, dir, ..
    } = ladder(
        Source::P2160,
        json!({"speed": "ultrafast", "uhd_level": "4.1"}),
        "ladder-partial",
    )
    .await;
    assert_eq!(job["outcome"], "partial", "{job:#}");
    let uhd = output(&job, "2160p");
    assert_eq!(uhd["state"], "FAILED", "{uhd:#}");
    assert_eq!(uhd["optional"], true, "{uhd:#}");
    assert!(uhd["error"]["code"].is_string(), "{uhd:#}");
    for name in ["360p", "720p", "1080p", "audio", "master"] {
        assert_eq!(output(&job, name)["state"], "COMPLETED", "{name}: {job:#}");
    }
    assert_eq!(
        names(&rungs),
        ["360p", "720p", "1080p"],
        "the master lists the rungs that exist"
    );
    let master = std::fs::read_to_string(dir.join("master.m3u8")).unwrap();
    assert!(!master.contains("2160p"), "{master}");
    play_all(&dir, &rungs);
}
