"""A thin helper for writing mediahost presets in Python, mirroring the Rust `preset-sdk` builders.

It wraps the bindings componentize-py generates from `wit/2.0.0/preset.wit` (`wit_world`), so a
preset reads like its Rust twin:

    Descriptor("gain", "1.0.0", "Changes the level.") \
        .input("main", "Media with audio.") \
        .param(ParamSpec.number("gain_db", "Gain in dB.").range(-30.0, 30.0).default(0.0))

    step = Step("gain").input(MediaRef.input("main")) \
        .chain("out", Chain(Pad.stream(0, audio.index)).then(FilterNode("volume").arg("volume", "3dB"))) \
        .output(Output("main", "mp3").audio(Pad.link("out"), Encoder("libmp3lame")))
    return Finish().step(step).report("gain_db", 3.0).build()

Builders return plain WIT records from `.build()`; `refuse(code, message)` raises the refusal the
host reports under PRESET_REFUSED. `log.info(...)` goes to the host's `log` import; anything
printed to stdout or stderr (a traceback included) also lands in the job's log.

Not here: validation. The host checks every plan against its allowlist; this module only builds.
"""

import sys

from componentize_py_types import Err
from wit_world.imports import host
from wit_world.imports import types as t


# stdout is not a terminal, so CPython would keep `print` output in a block buffer that is never
# flushed (a preset call never exits): write each line through, as stderr already does. This runs
# when the component is built (componentize-py snapshots the imported modules), so every call
# starts with it.
sys.stdout.reconfigure(line_buffering=True)


# ---- values ----------------------------------------------------------------------------------


def value(v):
    """A Python value as a WIT `value` (bool before int: `True` is an `int` in Python)."""
    if isinstance(v, bool):
        return t.Value_Boolean(v)
    if isinstance(v, int):
        return t.Value_Integer(v)
    if isinstance(v, float):
        return t.Value_Number(v)
    if isinstance(v, str):
        return t.Value_Text(v)
    raise TypeError(f"no WIT value for {v!r}")


def _option(name, v):
    return t.OptionValue(name=name, value=value(v))


def refuse(code, message):
    """Raises a reasoned refusal to plan (`Refusal` in the Rust SDK)."""
    raise Err(t.Refusal(code=code, message=message))


class log:
    """The host's log, kept with the job (`preset_sdk::log`)."""

    @staticmethod
    def debug(message):
        host.log(t.LogLevel.DEBUG, str(message))

    @staticmethod
    def info(message):
        host.log(t.LogLevel.INFO, str(message))

    @staticmethod
    def warn(message):
        host.log(t.LogLevel.WARN, str(message))

    @staticmethod
    def error(message):
        host.log(t.LogLevel.ERROR, str(message))


# ---- describe --------------------------------------------------------------------------------


class ParamSpec:
    """A declared param; build with `integer`, `number`, `boolean`, `text` or `choice`."""

    def __init__(self, name, description, kind, spec):
        self.name, self.description, self.kind, self.spec = name, description, kind, spec
        self.is_required = False

    @classmethod
    def integer(cls, name, description):
        return cls(name, description, "integer", t.IntegerSpec(min=None, max=None, default=None))

    @classmethod
    def number(cls, name, description):
        return cls(name, description, "number", t.NumberSpec(min=None, max=None, default=None))

    @classmethod
    def boolean(cls, name, description):
        return cls(name, description, "boolean", None)

    @classmethod
    def text(cls, name, description, max_length=256):
        return cls(name, description, "text", t.TextSpec(max_length=max_length, default=None))

    @classmethod
    def choice(cls, name, description, options):
        return cls(name, description, "choice", t.ChoiceSpec(options=list(options), default=None))

    def range(self, lo, hi):
        self.spec.min, self.spec.max = lo, hi
        return self

    def default(self, v):
        if self.kind == "boolean":
            self.spec = bool(v)
        else:
            self.spec.default = v
        return self

    def required(self):
        self.is_required = True
        return self

    def build(self):
        kind = {
            "integer": t.ParamKind_Integer,
            "number": t.ParamKind_Number,
            "boolean": t.ParamKind_Boolean,
            "text": t.ParamKind_Text,
            "choice": t.ParamKind_Choice,
        }[self.kind](self.spec)
        return t.ParamSpec(
            name=self.name, description=self.description, kind=kind, required=self.is_required
        )


class Descriptor:
    """What a preset says about itself (`Descriptor::new(name, version, summary)`)."""

    def __init__(self, name, version, summary):
        self.record = t.Descriptor(name=name, version=version, summary=summary, inputs=[], params=[])

    def input(self, name, description):
        self.record.inputs.append(t.InputSpec(name=name, description=description, required=True))
        return self

    def optional_input(self, name, description):
        self.record.inputs.append(t.InputSpec(name=name, description=description, required=False))
        return self

    def param(self, spec):
        self.record.params.append(spec.build())
        return self

    def build(self):
        return self.record


# ---- the request -----------------------------------------------------------------------------


class AudioStream:
    """One audio stream of a media info: `index`, `codec`, `sample_rate`, `channels`."""

    def __init__(self, stream, audio):
        self.stream, self.audio = stream, audio
        self.index, self.codec = stream.index, stream.codec
        self.sample_rate, self.channels = audio.sample_rate, audio.channels


class Media:
    def __init__(self, info):
        self.info = info

    def audio_streams(self):
        return [
            AudioStream(s, s.detail.value)
            for s in self.info.streams
            if isinstance(s.detail, t.StreamDetail_Audio)
        ]

    def best_audio(self):
        """The default audio stream, else the one with most channels, else the lowest index."""
        streams = self.audio_streams()
        if not streams:
            return None
        return max(streams, key=lambda a: (a.stream.disposition.default, a.channels, -a.index))


class Params:
    def __init__(self, params):
        self.values = {p.name: p.value.value for p in params}

    def _get(self, name):
        if name not in self.values:
            refuse("PARAM_MISSING", f"param '{name}' has no value")
        return self.values[name]

    def number(self, name):
        return float(self._get(name))

    def integer(self, name):
        return int(self._get(name))

    def boolean(self, name):
        return bool(self._get(name))

    def text(self, name):
        return str(self._get(name))

    def get(self, name, default=None):
        return self.values.get(name, default)


class PlanRequest:
    """A `plan-request` with the Rust SDK's accessors."""

    def __init__(self, request):
        self.raw = request
        self.round = request.round
        self.params = Params(request.params)

    def input(self, name):
        for media in self.raw.inputs:
            if isinstance(media.source, t.MediaRef_Input) and media.source.value == name:
                return Media(media.info)
        refuse("INPUT_MISSING", f"input '{name}' was not given")


# ---- the plan --------------------------------------------------------------------------------


class MediaRef:
    @staticmethod
    def input(name):
        return t.MediaRef_Input(name)

    @staticmethod
    def produced(name):
        return t.MediaRef_Produced(name)


class Pad:
    @staticmethod
    def stream(input, stream):
        return t.Pad_Stream(t.StreamRef(input=input, stream=stream))

    @staticmethod
    def link(label):
        return t.Pad_Link(label)


class FilterNode:
    def __init__(self, filter):
        self.record = t.FilterNode(filter=filter, args=[], inputs=[], outputs=[])

    def arg(self, name, v):
        self.record.args.append(_option(name, v))
        return self


class Chain:
    """Filters wired one after another from `input`; the last output gets the step's label."""

    def __init__(self, input):
        self.input, self.filters = input, []

    def then(self, node):
        self.filters.append(node)
        return self

    def nodes(self, label):
        filters = self.filters or [FilterNode("anull")]
        pad, out = self.input, []
        for i, node in enumerate(filters):
            name = label if i == len(filters) - 1 else f"{label}_{i + 1}"
            node.record.inputs, node.record.outputs = [pad], [name]
            out.append(node.record)
            pad = Pad.link(name)
        return out


class Encoder:
    def __init__(self, codec):
        self.record = t.Encoder(
            codec=codec, bit_rate=None, sample_rate=None, channels=None, sample_format=None,
            pixel_format=None, frame_rate=None, options=[],
        )

    def bit_rate(self, bits_per_second):
        self.record.bit_rate = bits_per_second
        return self

    def sample_rate(self, hz):
        self.record.sample_rate = hz
        return self

    def channels(self, n):
        self.record.channels = n
        return self

    def option(self, name, v):
        self.record.options.append(_option(name, v))
        return self


class Output:
    """A file output in a container (`Output::new(name, container)`)."""

    def __init__(self, name, container):
        self.record = t.Output(
            name=name, kind=t.OutputKind_File(container), streams=[], metadata=[],
            muxer_options=[], duration_s=None, optional=False,
        )

    def audio(self, source, encoder):
        codec = t.Codec_Copy() if encoder is None else t.Codec_Encode(encoder.record)
        self.record.streams.append(t.OutputStream(source=source, codec=codec, metadata=[]))
        return self

    def metadata(self, key, v):
        self.record.metadata.append(t.Tag(key=key, value=v))
        return self


class Step:
    def __init__(self, name):
        self.record = t.Step(name=name, inputs=[], graph=[], outputs=[])

    def input(self, source, seek_s=None, duration_s=None):
        self.record.inputs.append(t.StepInput(source=source, seek_s=seek_s, duration_s=duration_s))
        return self

    def chain(self, label, chain):
        self.record.graph.extend(chain.nodes(label))
        return self

    def output(self, output):
        self.record.outputs.append(output.record)
        return self


class Finish:
    """The last round (`Finish::new()`); `.build()` gives the `decision`."""

    def __init__(self):
        self.steps, self.reports = [], []

    def step(self, step):
        self.steps.append(step.record)
        return self

    def report(self, name, v):
        self.reports.append(_option(name, v))
        return self

    def build(self):
        return t.Decision_Finish(
            t.Finish(steps=self.steps, packages=[], documents=[], report=self.reports)
        )
