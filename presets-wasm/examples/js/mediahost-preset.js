// A thin helper for writing mediahost presets in JavaScript, mirroring the Rust `preset-sdk`
// builders. The host types are the plain objects componentize-js (jco's conventions) maps
// `wit/2.0.0/preset.wit` to: records are objects with camelCase fields, variants
// `{ tag, val }`, enums strings, `option<T>` `T | undefined`, 64-bit integers `BigInt`.
//
//   new Descriptor('gain', '1.0.0', 'Changes the level.')
//     .input('main', 'Media with audio.')
//     .param(ParamSpec.number('gain_db', 'Gain in dB.').range(-30, 30).default(0))
//
//   const step = new Step('gain').input(MediaRef.input('main'))
//     .chain('out', new Chain(Pad.stream(0, audio.index)).then(new FilterNode('volume').arg('volume', '3dB')))
//     .output(new Output('main', 'mp3').audio(Pad.link('out'), new Encoder('libmp3lame')));
//   return new Finish().step(step).report('gain_db', 3).build();
//
// `refuse(code, message)` throws the refusal the host reports under PRESET_REFUSED; `log.info`
// goes to the host's `log` import, and `console.log` / `console.error` land in the job's log too.
//
// Not here: validation. The host checks every plan against its allowlist; this module only builds.

import { log as hostLog } from 'mediahost:preset/host@2.0.0';

/** A JS value as a WIT `value`: integers given as BigInt, other numbers as f64. */
export function value(v) {
  if (typeof v === 'boolean') return { tag: 'boolean', val: v };
  if (typeof v === 'bigint') return { tag: 'integer', val: v };
  if (typeof v === 'number') return { tag: 'number', val: v };
  if (typeof v === 'string') return { tag: 'text', val: v };
  throw new TypeError(`no WIT value for ${v}`);
}

const option = (name, v) => ({ name, value: value(v) });

/** A reasoned refusal to plan, thrown out of `plan` (the `err` of its result). */
export class Refusal extends Error {
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.payload = { code, message };
  }
}

export function refuse(code, message) {
  throw new Refusal(code, message);
}

/** The host's log, kept with the job (`preset_sdk::log`). */
export const log = {
  debug: (m) => hostLog('debug', String(m)),
  info: (m) => hostLog('info', String(m)),
  warn: (m) => hostLog('warn', String(m)),
  error: (m) => hostLog('error', String(m)),
};

// ---- describe ---------------------------------------------------------------------------------

export class ParamSpec {
  constructor(name, description, tag, spec) {
    Object.assign(this, { name, description, tag, spec, isRequired: false });
  }
  static integer(name, description) {
    return new ParamSpec(name, description, 'integer', {});
  }
  static number(name, description) {
    return new ParamSpec(name, description, 'number', {});
  }
  static boolean(name, description) {
    return new ParamSpec(name, description, 'boolean', undefined);
  }
  static text(name, description, maxLength = 256) {
    return new ParamSpec(name, description, 'text', { maxLength });
  }
  static choice(name, description, options) {
    return new ParamSpec(name, description, 'choice', { options: [...options] });
  }
  range(min, max) {
    const conv = this.tag === 'integer' ? BigInt : Number;
    Object.assign(this.spec, { min: conv(min), max: conv(max) });
    return this;
  }
  default(v) {
    if (this.tag === 'boolean') this.spec = Boolean(v);
    else this.spec.default = this.tag === 'integer' ? BigInt(v) : v;
    return this;
  }
  required() {
    this.isRequired = true;
    return this;
  }
  build() {
    return {
      name: this.name,
      description: this.description,
      kind: { tag: this.tag, val: this.spec },
      required: this.isRequired,
    };
  }
}

export class Descriptor {
  constructor(name, version, summary) {
    this.record = { name, version, summary, inputs: [], params: [] };
  }
  input(name, description) {
    this.record.inputs.push({ name, description, required: true });
    return this;
  }
  optionalInput(name, description) {
    this.record.inputs.push({ name, description, required: false });
    return this;
  }
  param(spec) {
    this.record.params.push(spec.build());
    return this;
  }
  build() {
    return this.record;
  }
}

// ---- the request ------------------------------------------------------------------------------

export class Media {
  constructor(info) {
    this.info = info;
  }
  /** Audio streams as `{ index, codec, sampleRate, channels, isDefault }`. */
  audioStreams() {
    return this.info.streams
      .filter((s) => s.detail.tag === 'audio')
      .map((s) => ({
        index: s.index,
        codec: s.codec,
        sampleRate: s.detail.val.sampleRate,
        channels: s.detail.val.channels,
        isDefault: s.disposition.default,
      }));
  }
  /** The default audio stream, else the one with most channels, else the lowest index. */
  bestAudio() {
    const key = (a) => [a.isDefault ? 1 : 0, a.channels, -a.index];
    let best;
    for (const a of this.audioStreams()) {
      if (best === undefined) {
        best = a;
        continue;
      }
      const [x, y] = [key(a), key(best)];
      const i = x.findIndex((v, j) => v !== y[j]);
      if (i >= 0 && x[i] > y[i]) best = a;
    }
    return best;
  }
}

export class Params {
  constructor(params) {
    this.values = new Map(params.map((p) => [p.name, p.value.val]));
  }
  get(name) {
    if (!this.values.has(name)) refuse('PARAM_MISSING', `param '${name}' has no value`);
    return this.values.get(name);
  }
  number(name) {
    return Number(this.get(name));
  }
  /** An integer param, as a JS number. */
  integer(name) {
    return Number(this.get(name));
  }
  boolean(name) {
    return Boolean(this.get(name));
  }
  text(name) {
    return String(this.get(name));
  }
}

export class PlanRequest {
  constructor(raw) {
    this.raw = raw;
    this.round = raw.round;
    this.params = new Params(raw.params);
  }
  input(name) {
    const found = this.raw.inputs.find((m) => m.source.tag === 'input' && m.source.val === name);
    if (!found) refuse('INPUT_MISSING', `input '${name}' was not given`);
    return new Media(found.info);
  }
}

// ---- the plan ---------------------------------------------------------------------------------

export const MediaRef = {
  input: (name) => ({ tag: 'input', val: name }),
  produced: (name) => ({ tag: 'produced', val: name }),
};

export const Pad = {
  stream: (input, stream) => ({ tag: 'stream', val: { input, stream } }),
  link: (label) => ({ tag: 'link', val: label }),
};

export class FilterNode {
  constructor(filter) {
    this.record = { filter, args: [], inputs: [], outputs: [] };
  }
  arg(name, v) {
    this.record.args.push(option(name, v));
    return this;
  }
}

/** Filters wired one after another from `input`; the last output gets the step's label. */
export class Chain {
  constructor(input) {
    this.input = input;
    this.filters = [];
  }
  then(node) {
    this.filters.push(node);
    return this;
  }
  nodes(label) {
    const filters = this.filters.length ? this.filters : [new FilterNode('anull')];
    let pad = this.input;
    return filters.map((node, i) => {
      const out = i === filters.length - 1 ? label : `${label}_${i + 1}`;
      node.record.inputs = [pad];
      node.record.outputs = [out];
      pad = Pad.link(out);
      return node.record;
    });
  }
}

export class Encoder {
  constructor(codec) {
    this.record = { codec, options: [] };
  }
  bitRate(bitsPerSecond) {
    this.record.bitRate = BigInt(bitsPerSecond);
    return this;
  }
  sampleRate(hz) {
    this.record.sampleRate = hz;
    return this;
  }
  channels(n) {
    this.record.channels = n;
    return this;
  }
  option(name, v) {
    this.record.options.push(option(name, v));
    return this;
  }
}

/** A file output in a container (`Output::new(name, container)`). */
export class Output {
  constructor(name, container) {
    this.record = {
      name,
      kind: { tag: 'file', val: container },
      streams: [],
      metadata: [],
      muxerOptions: [],
      optional: false,
    };
  }
  audio(source, encoder) {
    const codec = encoder ? { tag: 'encode', val: encoder.record } : { tag: 'copy' };
    this.record.streams.push({ source, codec, metadata: [] });
    return this;
  }
  metadata(key, v) {
    this.record.metadata.push({ key, value: v });
    return this;
  }
}

export class Step {
  constructor(name) {
    this.record = { name, inputs: [], graph: [], outputs: [] };
  }
  input(source, seekS, durationS) {
    this.record.inputs.push({ source, seekS, durationS });
    return this;
  }
  chain(label, chain) {
    this.record.graph.push(...chain.nodes(label));
    return this;
  }
  output(output) {
    this.record.outputs.push(output.record);
    return this;
  }
}

/** The last round (`Finish::new()`); `.build()` gives the `decision`. */
export class Finish {
  constructor() {
    this.steps = [];
    this.reports = [];
  }
  step(step) {
    this.steps.push(step.record);
    return this;
  }
  report(name, v) {
    this.reports.push(option(name, v));
    return this;
  }
  build() {
    return {
      tag: 'finish',
      val: { steps: this.steps, packages: [], documents: [], report: this.reports },
    };
  }
}
