//! The one place an ffmpeg command line is built, from a validated step.
//!
//! Paths are the host's: inputs are files the worker downloaded or produced, outputs are named
//! after their role inside the job's scratch directory. Every filter argument is escaped here for
//! both levels of ffmpeg's filtergraph syntax; no preset string becomes a flag.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::model;
use crate::plan::allowlist;
use crate::plan::validate::ValidatedStep;

/// A rendered ffmpeg invocation and the files it will write.
#[derive(Debug)]
pub struct Rendered {
    pub argv: Vec<OsString>,
    pub outputs: Vec<RenderedOutput>,
}

#[derive(Debug, Clone)]
pub struct RenderedOutput {
    pub name: String,
    pub container: String,
    pub path: PathBuf,
}

/// Renders a step. `input_path` maps each step input to a local file.
pub fn render(
    step: &ValidatedStep,
    input_path: impl Fn(&model::MediaRef) -> PathBuf,
    out_dir: &Path,
) -> Rendered {
    let validated = step;
    let step = step.step();
    let mut argv: Vec<OsString> = [
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-y",
        "-progress",
        "pipe:1",
    ]
    .iter()
    .map(Into::into)
    .collect();
    let push = |argv: &mut Vec<OsString>, a: &str, b: String| {
        argv.push(a.into());
        argv.push(b.into());
    };

    for input in &step.inputs {
        if let Some(s) = input.seek_s {
            push(&mut argv, "-ss", number(s));
        }
        if let Some(d) = input.duration_s {
            push(&mut argv, "-t", number(d));
        }
        argv.extend(super::input_guard_args());
        argv.push("-i".into());
        argv.push(input_path(&input.source).into_os_string());
    }

    if !step.graph.is_empty() {
        let graph: Vec<String> = step.graph.iter().map(node).collect();
        push(&mut argv, "-filter_complex", graph.join(";"));
    }

    let mut outputs = Vec::new();
    for (o, output) in step.outputs.iter().enumerate() {
        let model::OutputKind::File(container_name) = &output.kind else {
            unreachable!("validation admits only file outputs")
        };
        let container = allowlist::container(container_name).expect("validated container");
        for (i, stream) in output.streams.iter().enumerate() {
            push(&mut argv, "-map", map_source(&stream.source));
            match &stream.codec {
                model::Codec::Copy => push(&mut argv, &format!("-c:{i}"), "copy".into()),
                model::Codec::Encode(enc) => encoder(&mut argv, i, enc),
            }
            for tag in &stream.metadata {
                push(
                    &mut argv,
                    &format!("-metadata:s:{i}"),
                    format!("{}={}", tag.key, tag.value),
                );
            }
        }
        for tag in &output.metadata {
            push(&mut argv, "-metadata", format!("{}={}", tag.key, tag.value));
        }
        for opt in &output.muxer_options {
            push(&mut argv, &format!("-{}", opt.name), plain(&opt.value));
        }
        // Every output is bounded, whether or not the preset gave a duration.
        push(&mut argv, "-t", number(validated.output_bound(o)));
        push(&mut argv, "-f", container.muxer.into());
        let path = out_dir.join(format!("{}.{}", output.name, container.extension));
        argv.push(path.clone().into_os_string());
        outputs.push(RenderedOutput {
            name: output.name.clone(),
            container: container_name.clone(),
            path,
        });
    }
    Rendered { argv, outputs }
}

fn encoder(argv: &mut Vec<OsString>, i: usize, enc: &model::Encoder) {
    let mut push = |flag: &str, value: String| {
        argv.push(format!("-{flag}:{i}").into());
        argv.push(value.into());
    };
    push("c", enc.codec.clone());
    if let Some(b) = enc.bit_rate {
        push("b", b.to_string());
    }
    if let Some(r) = enc.sample_rate {
        push("ar", r.to_string());
    }
    if let Some(c) = enc.channels {
        push("ac", c.to_string());
    }
    if let Some(f) = &enc.sample_format {
        push("sample_fmt", f.clone());
    }
    if let Some(f) = &enc.pixel_format {
        push("pix_fmt", f.clone());
    }
    if let Some(r) = &enc.frame_rate {
        push("r", format!("{}/{}", r.num, r.den));
    }
    for opt in &enc.options {
        push(&opt.name, plain(&opt.value));
    }
}

fn map_source(pad: &model::Pad) -> String {
    match pad {
        model::Pad::Stream(r) => format!("{}:{}", r.input, r.stream),
        model::Pad::Link(label) => format!("[{label}]"),
    }
}

fn pad(p: &model::Pad) -> String {
    match p {
        model::Pad::Stream(r) => format!("[{}:{}]", r.input, r.stream),
        model::Pad::Link(label) => format!("[{label}]"),
    }
}

fn node(n: &model::FilterNode) -> String {
    let mut s: String = n.inputs.iter().map(pad).collect();
    s.push_str(&n.filter);
    if !n.args.is_empty() {
        s.push('=');
        let args: Vec<String> = n
            .args
            .iter()
            .map(|a| format!("{}={}", a.name, escape_filter_value(&plain(&a.value))))
            .collect();
        s.push_str(&args.join(":"));
    }
    for label in &n.outputs {
        s.push('[');
        s.push_str(label);
        s.push(']');
    }
    s
}

fn number(v: f64) -> String {
    format!("{v}")
}

fn plain(v: &model::Value) -> String {
    match v {
        model::Value::Integer(i) => i.to_string(),
        model::Value::Number(n) => number(*n),
        model::Value::Boolean(b) => if *b { "1" } else { "0" }.into(),
        model::Value::Text(t) => t.clone(),
    }
}

/// The command as a shell would read it, for logs and dry runs (never run through a shell).
pub fn shell_line(argv: &[OsString]) -> String {
    let quoted: Vec<String> = argv
        .iter()
        .map(|a| {
            let a = a.to_string_lossy();
            if !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+@%".contains(&b))
            {
                a.into_owned()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect();
    format!("ffmpeg {}", quoted.join(" "))
}

/// Escapes an option value twice: once for the filter's option parser (`\ ' :`), then for the
/// filtergraph parser (`\ ' [ ] , ;`).
pub fn escape_filter_value(v: &str) -> String {
    let escape = |s: &str, special: &[char]| {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            if special.contains(&c) {
                out.push('\\');
            }
            out.push(c);
        }
        out
    };
    let level1 = escape(v, &['\\', '\'', ':']);
    escape(&level1, &['\\', '\'', '[', ']', ',', ';'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_both_levels() {
        assert_eq!(escape_filter_value("a:b"), "a\\\\:b");
        assert_eq!(escape_filter_value("x,y;[z]"), "x\\,y\\;\\[z\\]");
        assert_eq!(escape_filter_value("'"), "\\\\\\'");
        assert_eq!(escape_filter_value("stereo|c0=c0"), "stereo|c0=c0");
    }

    #[test]
    fn renders_a_filter_node() {
        let n = model::FilterNode {
            filter: "volume".into(),
            args: vec![model::OptionValue {
                name: "volume".into(),
                value: model::Value::Text("3.5dB".into()),
            }],
            inputs: vec![model::Pad::Stream(model::StreamRef {
                input: 0,
                stream: 1,
            })],
            outputs: vec!["out".into()],
        };
        assert_eq!(node(&n), "[0:1]volume=volume=3.5dB[out]");
    }
}
