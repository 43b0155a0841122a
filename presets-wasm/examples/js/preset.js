// js-gain: the best audio stream of `main`, its level changed by `gain_db`, encoded to MP3.
// The JavaScript twin of the README's Rust `gain` example, written with ./mediahost-preset.js.
// Build it with `./build.sh <out.wasm>`.

import {
  Chain, Descriptor, Encoder, FilterNode, Finish, MediaRef, Output, Pad, ParamSpec, PlanRequest,
  Step, log, refuse,
} from './mediahost-preset.js';

export const preset = {
  describe() {
    return new Descriptor('js-gain', '1.0.0', 'Changes the level of the best audio stream; MP3 out.')
      .input('main', 'Media with audio.')
      .param(ParamSpec.number('gain_db', 'Gain in dB.').range(-30, 30).default(0))
      .param(ParamSpec.integer('bitrate_kbps', 'MP3 bit rate in kbit/s.').range(32, 320).default(128))
      .build();
  },

  plan(raw) {
    const request = new PlanRequest(raw);
    const gain = request.params.number('gain_db');
    const kbps = request.params.integer('bitrate_kbps');
    const audio = request.input('main').bestAudio();
    if (audio === undefined) refuse('NO_AUDIO', "input 'main' has no audio stream");
    // Both land in the job's log: stdout as info, stderr as warn.
    console.log(`js-gain: stream ${audio.index} (${audio.codec}, ${audio.channels} ch) by ${gain} dB`);
    if (gain > 0) console.error(`js-gain: raising the level by ${gain} dB may clip`);
    log.info(`js-gain: ${kbps} kbit/s MP3`);
    const step = new Step('gain')
      .input(MediaRef.input('main'))
      .chain('out', new Chain(Pad.stream(0, audio.index)).then(new FilterNode('volume').arg('volume', `${gain}dB`)))
      .output(new Output('main', 'mp3').audio(Pad.link('out'), new Encoder('libmp3lame').bitRate(kbps * 1000)));
    return new Finish().step(step).report('gain_db', gain).report('bitrate_kbps', BigInt(kbps)).build();
  },
};
