//! The indexes players and pages read: WebVTT with `#xywh` fragments, and JSON.

use preset_sdk::output_ref;
use video_source::{Json, vtt_time};

use crate::layout::Layout;

/// One cue per thumbnail, from its time to the next one's (the last to the end of the video),
/// pointing at its tile: `sheet_001.jpg#xywh=160,0,160,90`.
pub fn webvtt(layout: &Layout) -> String {
    let mut vtt = String::from("WEBVTT\n");
    for (k, &time) in layout.times.iter().enumerate() {
        let end = layout
            .times
            .get(k + 1)
            .copied()
            .unwrap_or(layout.duration_s)
            .max(time + 0.001);
        let place = layout.place(k);
        vtt.push_str(&format!(
            "\n{} --> {}\n{}#xywh={},{},{},{}\n",
            vtt_time(time),
            vtt_time(end),
            output_ref(&Layout::sheet_name(place.sheet)),
            place.column * layout.tile.width,
            place.row * layout.tile.height,
            layout.tile.width,
            layout.tile.height
        ));
    }
    vtt
}

/// `{"interval_s", "tile_width", "tile_height", "columns", "rows", "tiles": [{"time_s",
/// "sheet", "row", "column", "x", "y"}]}`, rows and columns from 0.
pub fn json(layout: &Layout) -> Json {
    let tiles = layout
        .times
        .iter()
        .enumerate()
        .map(|(k, &time)| {
            let place = layout.place(k);
            Json::object([
                ("time_s", Json::from(video_source::round_to(time, 3))),
                ("sheet", output_ref(&Layout::sheet_name(place.sheet)).into()),
                ("row", place.row.into()),
                ("column", place.column.into()),
                ("x", (place.column * layout.tile.width).into()),
                ("y", (place.row * layout.tile.height).into()),
            ])
        })
        .collect();
    Json::object([
        (
            "interval_s",
            Json::from(video_source::round_to(layout.interval_s, 3)),
        ),
        ("tile_width", layout.tile.width.into()),
        ("tile_height", layout.tile.height.into()),
        ("columns", layout.columns.into()),
        ("rows", layout.rows.into()),
        ("tiles", Json::Array(tiles)),
    ])
}
