//! What a ladder from one decode saves, and how long a poster takes.
//!
//! **Ladder.** Two sources generated here with lavfi: 10 s of 1080p25 H.264 (8 Mbps, AAC
//! stereo), which gets three rungs (360p, 720p, 1080p), and 4 s of 2160p25 H.265 (20 Mbps, AAC),
//! which gets four (2160p H.265 too); both get the audio rendition. Each ladder is made three ways:
//!
//! 1. *one decode*: the `hls-ladder` preset's own command, as the host's dry run renders it
//!    (round 1 asks for the interlacing analysis, answered "progressive"; round 2 finishes): one
//!    ffmpeg that decodes the source once, splits and scales per rung, and writes every
//!    rendition and the audio;
//! 2. *per rendition*: the naive design, one ffmpeg per rung and one for the audio, run one after
//!    another, each decoding the whole source: the preset's command cut down to one output (its
//!    filter chain for that output, `split` replaced by `null`; that output's own encoder and
//!    muxer options, unchanged);
//! 3. *hand-written*: the one command a person would write with ffmpeg's own HLS muxer:
//!    `split`, then `scale` and `setsar` per rung, every rendition in one `hls` output with
//!    `-var_stream_map` and `-master_pl_name` (ffmpeg 5.1 writes that master itself), each
//!    stream with the encoder options the preset gives it.
//!
//! All three run ffmpeg directly, not as jobs (no queue, no jail, no storage), from a scratch
//! directory laid out as a job's (`in/main`, `out/<rung>/`), so the CPU time is ffmpeg's alone:
//! user + system of each child, from `wait4`. The preset's `speed` is `veryfast` (its default,
//! and what every design uses); every other setting is the preset's default. Each round runs every
//! design once per source, the order rotating from round to round so that neither a cold cache
//! nor the machine's drift favours one design; each run is checked (every rung's and the audio's
//! playlist complete, its segments present and covering the source, at the rung's size and
//! codec) before its figures count. Prints per source and design the median (and range) of wall
//! and CPU seconds, the ratios of the medians to one decode's, CPU over wall (the cores kept
//! busy), the megabytes written (equal bit rates: about equal for all three) and the CPU seconds
//! the rest of the machine used meanwhile (from `/proc/stat`), since the 2 cores may be shared.
//!
//! **Poster.** A 60 s 1080p25 H.264 source, uploaded once, run through the host as jobs, one at a
//! time: `video-thumbnail` (automatic choice of the frame) and `web-video` (poster and 720p
//! MP4, speed `veryfast`) alternately; prints the median and range of submit to COMPLETED (the
//! poster downloadable) and the thumbnail job's own ffprobe and ffmpeg time (`timings.ffmpeg_s`),
//! and for `web-video` submit to the poster output's COMPLETED (the one step writes the poster and
//! the MP4 together, so this is the whole job).
//!
//! `VIDEO_LADDER_ROUNDS` sets the rounds of each part (default 3). Run:
//!
//! ```text
//! cargo build -p mediahost
//! cargo bench -p mediahost-e2e --bench video_ladder
//! ```
//!
//! A smoke run with one round (test profile): `VIDEO_LADDER_ROUNDS=1 cargo test -p
//! mediahost-e2e --bench video_ladder`.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mediahost_e2e::client::{JOB_TIMEOUT, assert_completed, json_body};
use mediahost_e2e::host::{StorageKind, mediahost_binary};
use mediahost_e2e::{Client, Host, media, process};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Rounds of each part unless `VIDEO_LADDER_ROUNDS` says otherwise.
const DEFAULT_ROUNDS: usize = 3;
/// The x264/x265 preset of every encode measured (the ladder preset's default).
const SPEED: &str = "veryfast";
/// Finer than the client's own polling, which would round every latency up to 150 ms.
const POLL_EVERY: Duration = Duration::from_millis(20);

/// A generated source.
struct Source {
    label: &'static str,
    path: PathBuf,
    duration_s: f64,
}

/// `seconds` of lavfi's testsrc2 at `size` and 25 fps with a stereo AAC tone, its video encoded
/// with `video` (codec, preset and bit rate).
fn source(dest: &Path, size: &str, seconds: u32, video: &[&str]) -> PathBuf {
    media::run(
        media::ffmpeg()
            .args(["-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size={size}:rate=25:duration={seconds}"))
            .args(["-f", "lavfi", "-i"])
            .arg(format!(
                "sine=frequency=440:sample_rate=48000:duration={seconds}"
            ))
            .args(video)
            .args([
                "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", "-b:a", "128k",
            ])
            .arg("-shortest")
            .arg(dest),
        &format!("generate {}", dest.display()),
    );
    dest.to_path_buf()
}

fn h264_1080p(dir: &Path, seconds: u32, preset: &str) -> PathBuf {
    let name = format!("h264-1080p-{seconds}s.mp4");
    source(
        &dir.join(name),
        "1920x1080",
        seconds,
        &[
            "-c:v", "libx264", "-preset", preset, "-b:v", "8M", "-maxrate", "8M", "-bufsize", "16M",
        ],
    )
}

fn h265_2160p(dir: &Path, seconds: u32) -> PathBuf {
    let name = format!("h265-2160p-{seconds}s.mp4");
    source(
        &dir.join(name),
        "3840x2160",
        seconds,
        &[
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-b:v",
            "20M",
            "-tag:v",
            "hvc1",
            "-x265-params",
            "log-level=error",
        ],
    )
}

// ---------------------------------------------------------------------------------------------
// The preset's command, from the dry run
// ---------------------------------------------------------------------------------------------

/// The one command of the ladder's finishing round, taken apart: what precedes the graph, the
/// graph node by node, and each output's own arguments.
struct PresetCommand {
    argv: Vec<String>,
    /// Global options and the input, before `-filter_complex`.
    prefix: Vec<String>,
    nodes: Vec<Node>,
    outputs: Vec<OutputArgs>,
    report: Value,
}

/// One filter node: its text as the host rendered it and, from the plan, its pads.
struct Node {
    text: String,
    filter: String,
    /// Each input pad as the graph names it: `[label]` or `[0:1]`.
    inputs: Vec<String>,
    outputs: Vec<String>,
}

/// One output's arguments between the graph (or the previous output) and its path.
struct OutputArgs {
    name: String,
    args: Vec<(String, String)>,
    path: String,
}

impl OutputArgs {
    /// The `-map` sources of this output, in order.
    fn maps(&self) -> Vec<&str> {
        self.args
            .iter()
            .filter(|(flag, _)| flag == "-map")
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn arg(&self, flag: &str) -> Option<&str> {
        let found = self.args.iter().find(|(f, _)| f == flag);
        found.map(|(_, v)| v.as_str())
    }
}

/// Asks the host for the ladder's plan of `input` (an uploaded URI): round after round, each
/// analysis the preset asks for answered as a plain progressive, cut-free, black-free source.
async fn preset_command(client: &Client, input: &str) -> PresetCommand {
    let url = client.url("/v1/presets/hls-ladder/1.0.0/plan");
    let mut analyses: Vec<Value> = Vec::new();
    for round in 1..=4 {
        let body = json!({
            "inputs": {"main": input}, "params": {"speed": SPEED},
            "round": round, "analyses": analyses,
        });
        let resp = client.http().post(&url).json(&body).send().await;
        let resp = resp.unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let plan = json_body(resp, StatusCode::OK, &format!("dry run round {round}")).await;
        if plan["decision"] == "finish" {
            return take_apart(&plan);
        }
        let asked = plan["analyses"].as_array().cloned().unwrap_or_default();
        assert!(
            !asked.is_empty(),
            "round {round} neither finishes nor asks:\n{plan:#}"
        );
        for request in asked {
            analyses.push(json!({"id": request["id"], "value": neutral_analysis(&request)}));
        }
    }
    panic!("the ladder's dry run did not finish within 4 rounds");
}

/// What a clean progressive source measures, for an analysis request of the dry run.
fn neutral_analysis(request: &Value) -> Value {
    let kind = &request["kind"];
    let kind = kind.as_str().map(str::to_owned).unwrap_or_else(|| {
        let keys = kind.as_object().and_then(|o| o.keys().next().cloned());
        keys.unwrap_or_else(|| panic!("analysis request without a kind: {request:#}"))
    });
    match kind.as_str() {
        "Interlacing" => json!({"Interlacing": {"verdict": "Progressive",
            "progressive_frames": 250, "top_field_first_frames": 0,
            "bottom_field_first_frames": 0, "undetermined_frames": 0}}),
        "BlackIntervals" => json!({"BlackIntervals": []}),
        "SceneChanges" => json!({"SceneChanges": []}),
        "Crop" => json!({"Crop": null}),
        other => panic!("the bench cannot answer a {other} analysis: {request:#}"),
    }
}

fn pad(pad: &Value) -> String {
    if let Some(label) = pad["Link"].as_str() {
        format!("[{label}]")
    } else {
        let stream = &pad["Stream"];
        format!("[{}:{}]", stream["input"], stream["stream"])
    }
}

/// Splits a rendered filtergraph at the `;` between nodes (a `;` inside a value is escaped).
fn graph_nodes(graph: &str) -> Vec<String> {
    let mut nodes = vec![String::new()];
    let mut chars = graph.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let last = nodes.last_mut().unwrap();
                last.push(c);
                last.extend(chars.next());
            }
            ';' => nodes.push(String::new()),
            c => nodes.last_mut().unwrap().push(c),
        }
    }
    nodes
}

fn take_apart(plan: &Value) -> PresetCommand {
    let commands = plan["commands"].as_array().expect("commands");
    assert_eq!(commands.len(), 1, "the ladder is one step:\n{plan:#}");
    let command = &commands[0];
    let argv: Vec<String> = command["argv"]
        .as_array()
        .expect("argv")
        .iter()
        .map(|a| a.as_str().expect("argv of strings").to_owned())
        .collect();
    let graph_at = argv
        .iter()
        .position(|a| a == "-filter_complex")
        .unwrap_or_else(|| panic!("the ladder's command has no graph: {argv:?}"));
    let structured = plan["steps"][0]["graph"]
        .as_array()
        .expect("the step's graph");
    let texts = graph_nodes(&argv[graph_at + 1]);
    assert_eq!(
        texts.len(),
        structured.len(),
        "one rendered node per planned node: {texts:?}"
    );
    let nodes = texts
        .into_iter()
        .zip(structured)
        .map(|(text, n)| Node {
            text,
            filter: n["filter"].as_str().expect("filter").to_owned(),
            inputs: n["inputs"]
                .as_array()
                .expect("inputs")
                .iter()
                .map(pad)
                .collect(),
            outputs: n["outputs"]
                .as_array()
                .expect("outputs")
                .iter()
                .map(|o| format!("[{}]", o.as_str().expect("label")))
                .collect(),
        })
        .collect();

    // After the graph: flag-value pairs, each output ending with its path (a lone argument).
    let paths: Vec<(&str, &str)> = command["outputs"]
        .as_array()
        .expect("outputs")
        .iter()
        .map(|o| (o["name"].as_str().unwrap(), o["path"].as_str().unwrap()))
        .collect();
    let mut outputs = Vec::new();
    let mut rest = argv[graph_at + 2..].iter();
    for (name, path) in paths {
        let mut args = Vec::new();
        loop {
            let a = rest
                .next()
                .unwrap_or_else(|| panic!("no path {path} in {argv:?}"));
            if a == path {
                break;
            }
            assert!(
                a.starts_with('-'),
                "{a} where a flag was expected: {argv:?}"
            );
            let value = rest.next().unwrap_or_else(|| panic!("{a} without a value"));
            args.push((a.clone(), value.clone()));
        }
        outputs.push(OutputArgs {
            name: name.to_owned(),
            args,
            path: path.to_owned(),
        });
    }
    assert!(
        rest.next().is_none(),
        "arguments after the last output: {argv:?}"
    );
    PresetCommand {
        prefix: argv[..graph_at].to_vec(),
        argv,
        nodes,
        outputs,
        report: plan["report"].clone(),
    }
}

impl PresetCommand {
    /// The video rungs, as the report lists them (lowest first), with their sizes.
    fn rungs(&self) -> Vec<Rung> {
        let names = self.report["rungs"].as_str().expect("report.rungs");
        names
            .split(',')
            .map(|name| {
                let line = self.report[name].as_str();
                let line = line.unwrap_or_else(|| panic!("no report.{name}: {:#}", self.report));
                let size = line.split_whitespace().next().expect("WxH first");
                let (w, h) = size.split_once('x').expect("WxH");
                Rung {
                    name: name.to_owned(),
                    width: w.parse().expect("width"),
                    height: h.parse().expect("height"),
                    codec: line
                        .split_whitespace()
                        .nth(2)
                        .expect("codec third")
                        .to_owned(),
                }
            })
            .collect()
    }

    fn output(&self, name: &str) -> &OutputArgs {
        let found = self.outputs.iter().find(|o| o.name == name);
        found.unwrap_or_else(|| panic!("no output {name} in {:?}", self.argv))
    }

    /// The `-hls_time` every output uses.
    fn segment_s(&self) -> &str {
        self.outputs[0].arg("-hls_time").expect("-hls_time")
    }

    /// Design 2: this output alone, from its own decode of the source. Keeps the nodes its maps
    /// depend on; a `split` feeding it becomes `null` (`asplit`, `anull`).
    fn alone(&self, output: &OutputArgs) -> Vec<String> {
        let mut needed: BTreeSet<String> = output
            .maps()
            .into_iter()
            .filter(|m| m.starts_with('['))
            .map(str::to_owned)
            .collect();
        let mut kept = vec![false; self.nodes.len()];
        loop {
            let before = needed.len();
            for (i, node) in self.nodes.iter().enumerate() {
                if node.outputs.iter().any(|o| needed.contains(o)) {
                    kept[i] = true;
                    needed.extend(node.inputs.iter().cloned());
                }
            }
            if needed.len() == before {
                break;
            }
        }
        let graph: Vec<String> = self
            .nodes
            .iter()
            .zip(&kept)
            .filter(|(_, kept)| **kept)
            .map(|(node, _)| {
                let used: Vec<&String> = node
                    .outputs
                    .iter()
                    .filter(|o| needed.contains(*o))
                    .collect();
                match node.filter.as_str() {
                    "split" | "asplit" => {
                        assert_eq!(used.len(), 1, "{}: one branch per output", node.text);
                        let null = if node.filter == "split" {
                            "null"
                        } else {
                            "anull"
                        };
                        format!("{}{null}{}", node.inputs.concat(), used[0])
                    }
                    _ => node.text.clone(),
                }
            })
            .collect();
        let mut argv = self.prefix.clone();
        if !graph.is_empty() {
            argv.push("-filter_complex".into());
            argv.push(graph.join(";"));
        }
        for (flag, value) in &output.args {
            argv.push(flag.clone());
            argv.push(value.clone());
        }
        argv.push(output.path.clone());
        argv
    }

    /// Design 3: `split` + `scale` per rung into one `hls` output with `-var_stream_map`, each
    /// stream encoded with the options the preset gives its output (`-b:0` of the 720p output
    /// becoming `-b:1`, its position in the one output).
    fn hand_written(&self, rungs: &[Rung], audio: &[&OutputArgs]) -> Vec<String> {
        let mut argv: Vec<String> = [
            "-hide_banner",
            "-nostdin",
            "-nostats",
            "-y",
            "-i",
            "in/main",
        ]
        .map(String::from)
        .to_vec();
        let mut graph = format!("[0:v:0]split={}", rungs.len());
        for i in 0..rungs.len() {
            graph.push_str(&format!("[s{i}]"));
        }
        for (i, rung) in rungs.iter().enumerate() {
            graph.push_str(&format!(
                ";[s{i}]scale=w={}:h={},setsar=1[v{i}]",
                rung.width, rung.height
            ));
        }
        argv.extend(["-filter_complex".into(), graph]);
        let mut streams = Vec::new();
        for (i, rung) in rungs.iter().enumerate() {
            streams.push((format!("[v{i}]"), self.output(&rung.name)));
        }
        for output in audio {
            let maps = output.maps();
            assert!(
                maps.len() == 1 && !maps[0].starts_with('['),
                "the hand-written command maps the audio as it is; the preset filters it: {maps:?}"
            );
            streams.push((maps[0].to_owned(), *output));
        }
        for (source, _) in &streams {
            argv.extend(["-map".into(), source.clone()]);
        }
        for (index, (_, output)) in streams.iter().enumerate() {
            for (flag, value) in &output.args {
                if let Some(name) = stream_option(flag) {
                    argv.push(format!("-{name}:{index}"));
                    argv.push(value.clone());
                } else {
                    assert!(
                        MUXER_FLAGS.contains(&flag.as_str()),
                        "the hand-written command does not know the preset's {flag} {value}: \
                         teach it"
                    );
                }
            }
        }
        let mut map = Vec::new();
        for (i, rung) in rungs.iter().enumerate() {
            map.push(format!("v:{i},agroup:audio,name:{}", rung.name));
        }
        for (i, output) in audio.iter().enumerate() {
            map.push(format!("a:{i},agroup:audio,name:{}", output.name));
        }
        argv.extend(
            [
                "-f",
                "hls",
                "-hls_time",
                self.segment_s(),
                "-hls_playlist_type",
                "vod",
                "-hls_list_size",
                "0",
                "-hls_flags",
                "independent_segments",
                "-hls_segment_type",
                "fmp4",
                "-hls_fmp4_init_filename",
                "init.mp4",
                "-master_pl_name",
                "master.m3u8",
                "-var_stream_map",
                &map.join(" "),
                "-hls_segment_filename",
                "out/%v/%04d.m4s",
                "out/%v/index.m3u8",
            ]
            .map(String::from),
        );
        argv
    }
}

/// Output-level flags of the preset's outputs, which the hand-written command sets itself once
/// (`-t` bounds each output at the source's length plus a margin, so it changes no work).
const MUXER_FLAGS: &[&str] = &[
    "-map",
    "-t",
    "-f",
    "-hls_time",
    "-hls_playlist_type",
    "-hls_list_size",
    "-hls_flags",
    "-hls_segment_type",
    "-hls_fmp4_init_filename",
    "-hls_segment_filename",
];

/// `c` for `-c:0`, `metadata:s` for `-metadata:s:0`: a per-stream option of an output.
fn stream_option(flag: &str) -> Option<&str> {
    let (name, index) = flag.strip_prefix('-')?.rsplit_once(':')?;
    index.bytes().all(|b| b.is_ascii_digit()).then_some(name)
}

struct Rung {
    name: String,
    width: u64,
    height: u64,
    /// As the report names it: `h264` or `h265`.
    codec: String,
}

// ---------------------------------------------------------------------------------------------
// Running and checking the three designs
// ---------------------------------------------------------------------------------------------

/// One way of making one source's ladder: ffmpeg argvs run one after another.
struct Design {
    label: &'static str,
    commands: Vec<Vec<String>>,
    /// Where ffmpeg's own master playlist should be, for the hand-written command.
    master: Option<&'static str>,
    wall: Vec<f64>,
    cpu: Vec<f64>,
    bytes: Vec<f64>,
    /// CPU seconds the rest of the machine used during each run.
    others: Vec<f64>,
}

impl Design {
    fn new(label: &'static str, commands: Vec<Vec<String>>, master: Option<&'static str>) -> Self {
        Design {
            label,
            commands,
            master,
            wall: Vec::new(),
            cpu: Vec::new(),
            bytes: Vec::new(),
            others: Vec::new(),
        }
    }
}

struct Ladder {
    source: Source,
    rungs: Vec<Rung>,
    audio: Vec<String>,
    designs: Vec<Design>,
}

/// Wall and CPU (user + system) seconds of one ffmpeg run, from spawn to its reaping.
fn run_ffmpeg(argv: &[String], cwd: &Path, log: &Path) -> (f64, f64) {
    let stderr = File::create(log).expect("create the ffmpeg log");
    let started = Instant::now();
    #[expect(
        clippy::zombie_processes,
        reason = "wait4 below reaps it, with its rusage"
    )]
    let child = Command::new("ffmpeg")
        .args(argv)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("run ffmpeg");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: wait4 writes only into the two locals it is given; `child` is never waited on
    // through std after this reaps it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let error = std::io::Error::last_os_error();
        assert_eq!(
            error.kind(),
            std::io::ErrorKind::Interrupted,
            "wait4: {error}"
        );
    }
    let wall = started.elapsed().as_secs_f64();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "ffmpeg failed (wait status {status}) in {}:\nffmpeg {}\n{}",
        cwd.display(),
        argv.join(" "),
        process::log_tail(log, 30)
    );
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (wall, seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

impl Ladder {
    /// Runs `design` once in a fresh scratch directory, checks what it wrote, records its
    /// figures and removes the directory.
    fn run(&mut self, design: usize, scratch: &Path) {
        std::fs::create_dir_all(scratch.join("in")).unwrap();
        let main = scratch.join("in/main");
        if std::fs::hard_link(&self.source.path, &main).is_err() {
            std::fs::copy(&self.source.path, &main).expect("copy the source");
        }
        for name in self.rungs.iter().map(|r| &r.name).chain(&self.audio) {
            std::fs::create_dir_all(scratch.join("out").join(name)).unwrap();
        }
        let d = &self.designs[design];
        let busy = machine_busy_s();
        let started = Instant::now();
        let mut cpu = 0.0;
        for (i, argv) in d.commands.iter().enumerate() {
            cpu += run_ffmpeg(argv, scratch, &scratch.join(format!("ffmpeg-{i}.log"))).1;
        }
        let wall = started.elapsed().as_secs_f64();
        let others = (machine_busy_s() - busy - cpu).max(0.0);
        let bytes = self.check(scratch, d);
        let d = &mut self.designs[design];
        d.wall.push(wall);
        d.cpu.push(cpu);
        d.bytes.push(bytes as f64);
        d.others.push(others);
        std::fs::remove_dir_all(scratch).expect("remove the scratch directory");
    }

    /// Asserts every rung and the audio are whole playlists covering the source, the rungs at
    /// their size and codec; returns the bytes written.
    fn check(&self, scratch: &Path, design: &Design) -> u64 {
        let what = format!("{} of {}", design.label, self.source.label);
        let out = scratch.join("out");
        let mut bytes = 0;
        for rung in &self.rungs {
            bytes += check_playlist(&out.join(&rung.name), self.source.duration_s, &what);
            let stream = first_stream(&out.join(&rung.name).join("index.m3u8"));
            let codec = if rung.codec == "h265" { "hevc" } else { "h264" };
            assert_eq!(stream["codec_name"], codec, "{what}: {}", rung.name);
            assert_eq!(stream["width"], rung.width, "{what}: {}", rung.name);
            assert_eq!(stream["height"], rung.height, "{what}: {}", rung.name);
        }
        for name in &self.audio {
            bytes += check_playlist(&out.join(name), self.source.duration_s, &what);
            let stream = first_stream(&out.join(name).join("index.m3u8"));
            assert_eq!(stream["codec_name"], "aac", "{what}: {name}");
            assert_eq!(stream["channels"], 2, "{what}: {name}");
        }
        if let Some(master) = design.master {
            let text = std::fs::read_to_string(out.join(master))
                .unwrap_or_else(|e| panic!("{what}: no {master}: {e}"));
            for name in self.rungs.iter().map(|r| &r.name).chain(&self.audio) {
                assert!(
                    text.contains(&format!("{name}/index.m3u8")),
                    "{what}: {text}"
                );
            }
            bytes += text.len() as u64;
        }
        bytes
    }
}

/// Checks a VOD media playlist in `dir`: ended, its init section and every segment present and
/// not empty, EXTINFs summing to the source's length (±0.5 s). Returns the bytes of all of them.
fn check_playlist(dir: &Path, duration_s: f64, what: &str) -> u64 {
    let playlist = dir.join("index.m3u8");
    let text = std::fs::read_to_string(&playlist)
        .unwrap_or_else(|e| panic!("{what}: no {}: {e}", playlist.display()));
    assert!(
        text.contains("#EXT-X-ENDLIST"),
        "{what}: unfinished:\n{text}"
    );
    let mut files = Vec::new();
    let mut seconds = 0.0;
    for line in text.lines() {
        if let Some(uri) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
            files.push(uri.trim_end_matches('"').to_owned());
        } else if let Some(d) = line.strip_prefix("#EXTINF:") {
            seconds += d
                .split(',')
                .next()
                .and_then(|d| d.parse::<f64>().ok())
                .unwrap_or(0.0);
        } else if !line.starts_with('#') && !line.is_empty() {
            files.push(line.to_owned());
        }
    }
    assert!(
        files.len() >= 2,
        "{what}: no init section or no segment:\n{text}"
    );
    assert!(
        (seconds - duration_s).abs() <= 0.5,
        "{what}: {} covers {seconds} s of {duration_s}:\n{text}",
        playlist.display()
    );
    let mut bytes = text.len() as u64;
    for file in files {
        let size = std::fs::metadata(dir.join(&file))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(
            size > 0,
            "{what}: {}/{file} missing or empty",
            dir.display()
        );
        bytes += size;
    }
    bytes
}

fn first_stream(path: &Path) -> Value {
    media::probe(path)["streams"][0].clone()
}

// ---------------------------------------------------------------------------------------------
// The poster
// ---------------------------------------------------------------------------------------------

/// Submit to COMPLETED of one job, submit to its output `still` COMPLETED if that was seen
/// before the job's (else the job's), and the job. Asserts the still was stored.
async fn poster_job(client: &Client, body: &Value, still: &str) -> (f64, f64, Value) {
    let started = Instant::now();
    let id = client.submit_ok(body).await;
    let mut poster_at = None;
    let job = loop {
        let job = client.job(&id).await;
        if poster_at.is_none() && job["output_progress"][still]["state"] == "COMPLETED" {
            poster_at = Some(started.elapsed().as_secs_f64());
        }
        if !matches!(job["state"].as_str(), Some("PENDING" | "PROCESSING")) {
            break job;
        }
        assert!(
            started.elapsed() < JOB_TIMEOUT,
            "job {id} not finished after {} s:\n{job:#}",
            JOB_TIMEOUT.as_secs()
        );
        tokio::time::sleep(POLL_EVERY).await;
    };
    let done = started.elapsed().as_secs_f64();
    assert_completed(&job);
    assert_eq!(job["outcome"], "complete", "{job:#}");
    let outputs = job["outputs"].as_array().expect("outputs");
    let output = outputs.iter().find(|o| o["name"] == still);
    let output = output.unwrap_or_else(|| panic!("no output {still}: {job:#}"));
    assert_eq!(output["state"], "COMPLETED", "{output:#}");
    assert_eq!(output["kind"], "still", "{output:#}");
    assert!(output["size_bytes"].as_u64() > Some(0), "{output:#}");
    (poster_at.unwrap_or(done), done, job)
}

// ---------------------------------------------------------------------------------------------

/// CPU seconds all processes of the machine have used since boot (`/proc/stat`: every state
/// but idle and iowait), to tell how much of a run's time other work took.
fn machine_busy_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").expect("read /proc/stat");
    let line = stat.lines().next().expect("the cpu line of /proc/stat");
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|t| t.parse().expect("ticks"))
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let busy: f64 = ticks[..3].iter().chain(&ticks[5..8]).sum();
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    busy / hz
}

/// `/proc/loadavg`'s three averages: the 2 cores are shared, so the figures come with the load.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Median, min and max of `v` (sorted in place).
fn stats(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn rounds() -> usize {
    process::count_from_env("VIDEO_LADDER_ROUNDS", DEFAULT_ROUNDS)
}

#[tokio::main]
async fn main() {
    let rounds = rounds();
    let bench_started = Instant::now();
    println!("binary: {}", mediahost_binary().display());
    println!("load average at the start: {}", load_average());
    let dir = process::fixture_dir("video-ladder-bench");
    let started = Instant::now();
    let sources = [
        Source {
            label: "1080p25 H.264 10 s",
            path: h264_1080p(dir.path(), 10, "veryfast"),
            duration_s: 10.0,
        },
        Source {
            label: "2160p25 H.265 4 s",
            path: h265_2160p(dir.path(), 4),
            duration_s: 4.0,
        },
    ];
    let minute = h264_1080p(dir.path(), 60, "ultrafast");
    println!(
        "sources generated in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let host = Host::start(StorageKind::Local).expect("host starts");
    let client = host.client();
    let mut ladders = Vec::new();
    for source in sources {
        let input = client.upload(&source.path).await;
        let preset = preset_command(&client, &input).await;
        let rungs = preset.rungs();
        let audio: Vec<&OutputArgs> = preset
            .outputs
            .iter()
            .filter(|o| !rungs.iter().any(|r| r.name == o.name))
            .collect();
        let per_rendition: Vec<Vec<String>> =
            preset.outputs.iter().map(|o| preset.alone(o)).collect();
        let hand_written = preset.hand_written(&rungs, &audio);
        println!("\n{} ({}):", source.label, preset.report["rungs"]);
        println!("  one decode:    {}", media::shown_ffmpeg(&preset.argv));
        for argv in &per_rendition {
            println!("  per rendition: {}", media::shown_ffmpeg(argv));
        }
        println!("  hand-written:  {}", media::shown_ffmpeg(&hand_written));
        ladders.push(Ladder {
            audio: audio.iter().map(|o| o.name.clone()).collect(),
            designs: vec![
                Design::new("one decode (the preset)", vec![preset.argv.clone()], None),
                Design::new("per rendition, in turn", per_rendition, None),
                Design::new("hand-written", vec![hand_written], Some("master.m3u8")),
            ],
            rungs,
            source,
        });
    }

    for round in 0..rounds {
        for (l, ladder) in ladders.iter_mut().enumerate() {
            for k in 0..ladder.designs.len() {
                let design = (round + k) % ladder.designs.len();
                let scratch = dir.path().join(format!("run-{round}-{l}-{design}"));
                ladder.run(design, &scratch);
            }
        }
        eprintln!("[bench] ladder round {} of {rounds} done", round + 1);
    }

    let input = client.upload(&minute).await;
    let thumbnail = json!({"preset": "video-thumbnail", "version": "1.0.0",
        "inputs": {"main": input}});
    let web = json!({"preset": "web-video", "version": "1.0.0", "inputs": {"main": input},
        "params": {"speed": SPEED}});
    let (mut thumbnail_s, mut thumbnail_ffmpeg_s) = (Vec::new(), Vec::new());
    let (mut web_poster_s, mut web_done_s) = (Vec::new(), Vec::new());
    let mut chosen = BTreeSet::new();
    for round in 0..rounds {
        let (_, done, job) = poster_job(&client, &thumbnail, "thumbnail").await;
        thumbnail_s.push(done);
        thumbnail_ffmpeg_s.push(job["timings"]["ffmpeg_s"].as_f64().expect("ffmpeg_s"));
        chosen.insert(format!(
            "{} at {} s",
            job["report"]["chosen_by"], job["report"]["time_s"]
        ));
        let (poster, done, _) = poster_job(&client, &web, "poster").await;
        web_poster_s.push(poster);
        web_done_s.push(done);
        eprintln!("[bench] poster round {} of {rounds} done", round + 1);
    }

    println!(
        "\nladder, speed {SPEED}, n={rounds} runs per design (p50 [min-max]); ratios of p50 to one decode"
    );
    println!(
        "  {:<34} {:>21} {:>21} {:>6} {:>6} {:>8} {:>7} {:>8}",
        "design", "wall s", "cpu s", "wall x", "cpu x", "cpu/wall", "MB out", "others s"
    );
    for ladder in &mut ladders {
        println!(
            "{} -> {} + {}",
            ladder.source.label,
            ladder
                .rungs
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            ladder.audio.join(", ")
        );
        let mut base = None;
        for design in &mut ladder.designs {
            let wall = stats(&mut design.wall);
            let cpu = stats(&mut design.cpu);
            let bytes = stats(&mut design.bytes).0;
            let others = stats(&mut design.others).0;
            let (base_wall, base_cpu) = *base.get_or_insert((wall.0, cpu.0));
            let label = format!("{}, {} ffmpeg", design.label, design.commands.len());
            println!(
                "  {label:<34} {:>6.2} [{:>5.2}-{:>5.2}] {:>6.2} [{:>5.2}-{:>5.2}] {:>6.2} {:>6.2} {:>8.2} {:>7.1} {:>8.1}",
                wall.0,
                wall.1,
                wall.2,
                cpu.0,
                cpu.1,
                cpu.2,
                wall.0 / base_wall,
                cpu.0 / base_cpu,
                cpu.0 / wall.0,
                bytes / 1e6,
                others
            );
        }
    }
    println!(
        "(others s: CPU seconds the rest of the machine used during a run, p50; 2 cores give 2 per \
         second of wall time)"
    );
    println!("\nposter, 60 s 1080p25 H.264 through the host, n={rounds} jobs each (p50 [min-max])");
    let line = |label: &str, v: &mut Vec<f64>| {
        let (p50, min, max) = stats(v);
        println!("  {label:<52} {p50:>7.2} s [{min:.2}-{max:.2}]");
    };
    line(
        "video-thumbnail (automatic): submit -> COMPLETED",
        &mut thumbnail_s,
    );
    line(
        "video-thumbnail: its ffprobe and ffmpeg children",
        &mut thumbnail_ffmpeg_s,
    );
    println!(
        "  (frame chosen by {})",
        chosen.into_iter().collect::<Vec<_>>().join("; ")
    );
    line(
        "web-video: submit -> poster output COMPLETED",
        &mut web_poster_s,
    );
    line(
        "web-video: submit -> COMPLETED (poster + 720p MP4)",
        &mut web_done_s,
    );
    println!(
        "\nwhole bench: {:.0} s; load average at the end: {}",
        bench_started.elapsed().as_secs_f64(),
        load_average()
    );
}
