"""py-gain: the best audio stream of `main`, its level changed by `gain_db`, encoded to MP3.

The Python twin of the README's Rust `gain` example, written with the `mediahost_preset` helper.
Build it with `./build.sh <out.wasm>`.
"""

import sys

from mediahost_preset import (
    Chain, Descriptor, Encoder, FilterNode, Finish, MediaRef, Output, Pad, ParamSpec, PlanRequest,
    Step, log, refuse,
)
from wit_world import exports


class Preset(exports.Preset):
    def describe(self):
        return (
            Descriptor("py-gain", "1.0.0", "Changes the level of the best audio stream; MP3 out.")
            .input("main", "Media with audio.")
            .param(ParamSpec.number("gain_db", "Gain in dB.").range(-30.0, 30.0).default(0.0))
            .param(ParamSpec.integer("bitrate_kbps", "MP3 bit rate in kbit/s.").range(32, 320).default(128))
            .build()
        )

    def plan(self, request):
        request = PlanRequest(request)
        gain = request.params.number("gain_db")
        kbps = request.params.integer("bitrate_kbps")
        audio = request.input("main").best_audio()
        if audio is None:
            refuse("NO_AUDIO", "input 'main' has no audio stream")
        # Both land in the job's log: stdout as info, stderr as warn.
        print(f"py-gain: stream {audio.index} ({audio.codec}, {audio.channels} ch) by {gain} dB")
        if gain > 0:
            print(f"py-gain: raising the level by {gain} dB may clip", file=sys.stderr)
        log.info(f"py-gain: {kbps} kbit/s MP3")
        step = (
            Step("gain")
            .input(MediaRef.input("main"))
            .chain("out", Chain(Pad.stream(0, audio.index)).then(FilterNode("volume").arg("volume", f"{gain}dB")))
            .output(Output("main", "mp3").audio(Pad.link("out"), Encoder("libmp3lame").bit_rate(kbps * 1000)))
        )
        return Finish().step(step).report("gain_db", gain).report("bitrate_kbps", kbps).build()
