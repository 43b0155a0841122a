//! Where each thumbnail goes, and the step that makes each sheet.

use preset_sdk::*;
use video_source::{Scan, Size, Source, scaled};

/// The most sheets a job makes (one step each).
pub const MAX_SHEETS: u32 = 16;

/// The thumbnails' times and their places on the sheets.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub times: Vec<f64>,
    pub interval_s: f64,
    pub columns: u32,
    pub rows: u32,
    pub tile: Size,
    pub duration_s: f64,
}

/// One thumbnail's place.
pub struct Place {
    pub sheet: u32,
    pub row: u32,
    pub column: u32,
}

impl Layout {
    /// Thumbnail k at k x interval from the start (or `count` of them spread over the
    /// duration), none after `last_s`, the latest time a frame is sure to be found.
    pub fn new(
        duration_s: f64,
        last_s: f64,
        interval_s: f64,
        count: Option<i64>,
        columns: u32,
        rows: u32,
        tile: Size,
    ) -> Result<Layout, Refusal> {
        let interval_s = match count {
            Some(n) => duration_s / n.max(1) as f64,
            None => interval_s,
        };
        let wanted = match count {
            Some(n) => n.max(1) as u64,
            None => (last_s / interval_s).floor() as u64 + 1,
        };
        let cells = u64::from(columns) * u64::from(rows);
        if wanted > cells * u64::from(MAX_SHEETS) || wanted > 1000 {
            return Err(refuse(
                "TOO_MANY_THUMBNAILS",
                format!(
                    "{wanted} thumbnails would need more than {MAX_SHEETS} sheets of {columns}x{rows} \
                     (or more than 1000 thumbnails): raise the interval or the grid"
                ),
            ));
        }
        let times = (0..wanted)
            .map(|k| (k as f64 * interval_s).min(last_s))
            .collect();
        Ok(Layout {
            times,
            interval_s,
            columns,
            rows,
            tile,
            duration_s,
        })
    }

    pub fn cells(&self) -> u32 {
        self.columns * self.rows
    }

    pub fn sheets(&self) -> u32 {
        (self.times.len() as u32).div_ceil(self.cells())
    }

    pub fn place(&self, k: usize) -> Place {
        let k = k as u32;
        let cell = k % self.cells();
        Place {
            sheet: k / self.cells(),
            row: cell / self.columns,
            column: cell % self.columns,
        }
    }

    /// The output name of sheet `sheet` (from 0): `sheet_001`, ...
    pub fn sheet_name(sheet: u32) -> String {
        format!("sheet_{:03}", sheet + 1)
    }

    /// The thumbnails on sheet `sheet`: (their index k, time).
    fn on_sheet(&self, sheet: u32) -> impl Iterator<Item = (usize, f64)> + '_ {
        let first = (sheet * self.cells()) as usize;
        self.times
            .iter()
            .copied()
            .enumerate()
            .skip(first)
            .take(self.cells() as usize)
    }

    fn tiled(&self, chain: Chain) -> Chain {
        chain.then(FilterNode::new("tile").arg("layout", format!("{}x{}", self.columns, self.rows)))
    }

    /// A sheet of at most 16 tiles: one input per tile seeking to its time, one frame of each
    /// (the input read for two frame durations at most, deinterlaced before the frame is
    /// kept), joined, then scaled and tiled once.
    pub fn seek_step(&self, sheet: u32, source: &Source, scan: &Scan) -> Step {
        let read_s = (2.0 / source.fps()).max(0.05);
        let mut step = Step::new(format!("sheet_{}", sheet + 1));
        let mut concat = FilterNode::new("concat").arg("v", 1).arg("a", 0);
        let mut n = 0;
        for (i, (_, time)) in self.on_sheet(sheet).enumerate() {
            step = step.input(
                StepInput::new(MediaRef::input("main"))
                    .seek(time)
                    .duration(read_s),
            );
            let label = format!("tile{i}");
            let chain = Chain::new(Pad::stream(i as u32, source.index()))
                .then_maybe(scan.deinterlacer())
                .then(FilterNode::new("trim").arg("end_frame", 1));
            step = step.chain(&label, chain);
            concat = concat.input(Pad::link(label));
            n += 1;
        }
        step.filter(concat.arg("n", n).output("tiles")).chain(
            "sheet",
            self.tiled(scaled(Chain::new(Pad::link("tiles")), self.tile)),
        )
    }

    /// One frame per interval as a rate ffmpeg reads exactly (to the millisecond), even for
    /// intervals far longer than a second.
    fn rate(&self) -> String {
        format!(
            "1000/{}",
            (self.interval_s * 1000.0).round().max(1.0) as u64
        )
    }

    /// A sheet of a larger grid: its stretch of the video decoded once, a frame kept per
    /// interval.
    pub fn span_step(&self, sheet: u32, source: &Source, scan: &Scan) -> Step {
        let mut tiles = self.on_sheet(sheet).map(|(_, t)| t);
        let start = tiles.next().unwrap_or(0.0);
        let count = 1 + tiles.count();
        let span = (count as f64 * self.interval_s).min(self.duration_s - start);
        let chain = Chain::new(source.pad())
            .then_maybe(scan.deinterlacer())
            .then(
                // The frame at each thumbnail's time, not the one nearest half an interval on.
                FilterNode::new("fps")
                    .arg("fps", self.rate())
                    .arg("round", "up"),
            );
        Step::new(format!("sheet_{}", sheet + 1))
            .input(
                StepInput::new(MediaRef::input("main"))
                    .seek(start)
                    .duration(span.max(0.05)),
            )
            .chain("sheet", self.tiled(scaled(chain, self.tile)))
    }
}
