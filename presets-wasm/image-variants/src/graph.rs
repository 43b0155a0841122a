//! The ffmpeg steps: one decode of the image per step, made upright once, split into the
//! variants; each variant scaled (and cropped), then made once per kind of picture its formats
//! need, then split into its formats.
//!
//! A variant's formats need up to two pictures ("looks"): PNG and WebP keep transparency when
//! the source has it or `contain` pads with `transparent` (`format=rgba` first, so the padding
//! has an alpha channel to be transparent in), JPEG and AVIF cannot (their padding is white
//! instead). A source's own transparency is not sharpened: ffmpeg's `unsharp` works on YUV
//! without alpha, and would drop it (transparent padding is added after sharpening). The
//! transparent look's nodes come first in the graph: ffmpeg settles pixel formats link by link
//! in graph order, so the `rgba` is settled on the shared part before the opaque branch, whose
//! conversion then happens on its own branch.
//!
//! A step holds at most `MAX_OUTPUTS` outputs and `MAX_NODES` filters (the host's limits); the
//! variants are packed into as few steps as that allows, each reading the image again.
//!
//! Not here: the sizes ([`crate::geometry`]), the image spec of each format (the plan, in the
//! crate's root).

use preset_sdk::*;

use crate::asked::{Background, Format};
use crate::geometry::{Op, Variant};
use crate::source::Image;

/// The host's limits on one step (host/src/plan/validate.rs).
pub const MAX_OUTPUTS: usize = 16;
pub const MAX_NODES: usize = 64;
pub const MAX_STEPS: usize = 16;

/// How every variant is finished: the same for all of them.
pub struct Finishing<'a> {
    pub formats: &'a [Format],
    pub background: Background,
    /// `unsharp`'s luma amount; 0 is off.
    pub sharpen: f64,
    /// Whether the source has transparency to keep.
    pub alpha: bool,
    /// Each format's output spec.
    pub spec: &'a dyn Fn(Format) -> ImageSpec,
}

impl Finishing<'_> {
    /// Whether `format`'s picture of `variant` keeps an alpha channel.
    fn keeps_alpha(&self, variant: &Variant, format: Format) -> bool {
        format.keeps_alpha()
            && (self.alpha || (variant.pad.is_some() && self.background == Background::Transparent))
    }

    /// Whether a look of `variant` is sharpened: when it was downscaled, unless the look
    /// keeps the source's own alpha (`unsharp` would drop it; transparent padding is added
    /// after sharpening, so it does not count).
    fn sharpens(&self, variant: &Variant, alpha: bool) -> bool {
        self.sharpen > 0.0 && variant.downscaled && !(alpha && self.alpha)
    }

    /// Whether any output is left unsharpened because it keeps the source's transparency.
    pub fn sharpen_skipped(&self, variants: &[Variant]) -> bool {
        self.sharpen > 0.0
            && self.alpha
            && variants
                .iter()
                .any(|v| v.downscaled && self.formats.iter().any(|f| self.keeps_alpha(v, *f)))
    }
}

/// The output name of `variant` in `format`: `w640-webp`, `400x300-jpeg`.
pub fn output_name(variant: &Variant, format: Format) -> String {
    format!("{}-{}", variant.name, format.name())
}

/// A step's filter graph as it is built: each node's output gets the next label.
struct Graph {
    nodes: Vec<FilterNode>,
}

impl Graph {
    fn label(&self) -> String {
        format!("n{}", self.nodes.len())
    }

    /// `node` reading `from`; its output.
    fn then(&mut self, from: Pad, node: FilterNode) -> Pad {
        let label = self.label();
        self.nodes.push(node.input(from).output(label.clone()));
        Pad::link(label)
    }

    /// `from` as `n` pads: itself when one is wanted, else a `split`.
    fn fork(&mut self, from: Pad, n: usize) -> Vec<Pad> {
        if n <= 1 {
            return vec![from];
        }
        let base = self.nodes.len();
        let labels: Vec<String> = (0..n).map(|i| format!("n{base}_{i}")).collect();
        let mut split = FilterNode::new("split")
            .arg("outputs", n as i64)
            .input(from);
        for label in &labels {
            split = split.output(label.clone());
        }
        self.nodes.push(split);
        labels.into_iter().map(Pad::link).collect()
    }
}

/// `variant`'s nodes reading `from`, and each format's final pad.
fn variant_nodes(
    graph: &mut Graph,
    from: Pad,
    variant: &Variant,
    finishing: &Finishing,
) -> Vec<(Format, Pad)> {
    let mut pad = from;
    for op in &variant.ops {
        let node = match op {
            Op::Scale(size) => FilterNode::new("scale")
                .arg("w", size.width)
                .arg("h", size.height)
                .arg("flags", "lanczos"),
            Op::Crop(rect) => FilterNode::new("crop")
                .arg("w", rect.size.width)
                .arg("h", rect.size.height)
                .arg("x", rect.x)
                .arg("y", rect.y),
        };
        pad = graph.then(pad, node);
    }
    pad = graph.then(pad, FilterNode::new("setsar").arg("sar", 1));

    // The transparent look first (see the module's doc), then the opaque one.
    let looks: Vec<(bool, Vec<Format>)> = [true, false]
        .into_iter()
        .map(|alpha| {
            let formats = finishing
                .formats
                .iter()
                .copied()
                .filter(|f| finishing.keeps_alpha(variant, *f) == alpha)
                .collect::<Vec<_>>();
            (alpha, formats)
        })
        .filter(|(_, formats)| !formats.is_empty())
        .collect();
    let mut finals = Vec::new();
    for ((alpha, formats), mut pad) in looks.iter().zip(graph.fork(pad, looks.len())) {
        if finishing.sharpens(variant, *alpha) {
            pad = graph.then(
                pad,
                FilterNode::new("unsharp")
                    .arg("luma_msize_x", 5)
                    .arg("luma_msize_y", 5)
                    .arg("luma_amount", finishing.sharpen),
            );
        }
        if *alpha {
            pad = graph.then(pad, FilterNode::new("format").arg("pix_fmts", "rgba"));
        }
        if let Some(canvas) = variant.pad {
            pad = graph.then(
                pad,
                FilterNode::new("pad")
                    .arg("w", canvas.size.width)
                    .arg("h", canvas.size.height)
                    .arg("x", canvas.x)
                    .arg("y", canvas.y)
                    .arg("color", finishing.background.pad_color(*alpha)),
            );
        }
        for (format, mut pad) in formats.iter().zip(graph.fork(pad, formats.len())) {
            // libaom would take RGB as 4:4:4 or GBR; web AVIF is 4:2:0. JPEG's yuvj420p is
            // the host's own `-pix_fmt`, and PNG and WebP take what the picture has. The
            // `scale` before the `format` converts on this branch alone: a `format` right after
            // the split would settle every branch on yuv420p, PNG's included.
            if *format == Format::Avif {
                pad = graph.then(pad, FilterNode::new("scale"));
                pad = graph.then(pad, FilterNode::new("format").arg("pix_fmts", "yuv420p"));
            }
            finals.push((*format, pad));
        }
    }
    // Outputs in the order the formats were asked for, whichever look made them.
    finals.sort_by_key(|(format, _)| finishing.formats.iter().position(|f| f == format));
    finals
}

/// How many filter nodes `variant` adds to a step.
fn node_count(variant: &Variant, finishing: &Finishing) -> usize {
    let mut graph = Graph { nodes: Vec::new() };
    variant_nodes(&mut graph, Pad::link("x"), variant, finishing);
    graph.nodes.len()
}

/// The variants in groups, one step each, each within the host's limits per step.
fn chunks<'v>(image: &Image, variants: &'v [Variant], finishing: &Finishing) -> Vec<&'v [Variant]> {
    let upright = image.orientation.filters().len();
    let outputs = finishing.formats.len();
    let mut chunks = Vec::new();
    let (mut start, mut nodes) = (0, 0);
    for (i, variant) in variants.iter().enumerate() {
        let added = node_count(variant, finishing);
        let count = i + 1 - start;
        // The orientation fix, the split into the variants (when more than one), the variants.
        let total = upright + usize::from(count > 1) + nodes + added;
        if count > 1 && (total > MAX_NODES || count * outputs > MAX_OUTPUTS) {
            chunks.push(&variants[start..i]);
            (start, nodes) = (i, added);
        } else {
            nodes += added;
        }
    }
    if start < variants.len() {
        chunks.push(&variants[start..]);
    }
    chunks
}

/// The steps making every variant in every format; `TOO_MANY_OUTPUTS` when they need more
/// steps than a round may hold.
pub fn steps(
    image: &Image,
    variants: &[Variant],
    finishing: &Finishing,
) -> Result<Vec<Step>, Refusal> {
    let chunks = chunks(image, variants, finishing);
    if chunks.len() > MAX_STEPS {
        return Err(refuse(
            "TOO_MANY_OUTPUTS",
            format!(
                "{} variants in {} formats need {} ffmpeg steps; at most {MAX_STEPS}: ask for \
                 fewer widths, sizes or formats",
                variants.len(),
                finishing.formats.len(),
                chunks.len()
            ),
        ));
    }
    Ok(chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| step(format!("variants-{}", i + 1), image, chunk, finishing))
        .collect())
}

/// One step: decode, upright, split, each variant in each format.
fn step(name: String, image: &Image, variants: &[Variant], finishing: &Finishing) -> Step {
    let mut graph = Graph { nodes: Vec::new() };
    let mut pad = image.pad();
    for node in image.orientation.filters() {
        pad = graph.then(pad, node);
    }
    let mut outputs = Vec::new();
    for (variant, pad) in variants.iter().zip(graph.fork(pad, variants.len())) {
        for (format, pad) in variant_nodes(&mut graph, pad, variant, finishing) {
            outputs.push(
                Output::still(output_name(variant, format), (finishing.spec)(format))
                    .video(pad, Encoder::new(format.encoder())),
            );
        }
    }
    let mut step = Step::new(name).input(MediaRef::input("main"));
    for node in graph.nodes {
        step = step.filter(node);
    }
    for output in outputs {
        step = step.output(output);
    }
    step
}
