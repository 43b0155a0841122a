//! extract-audio: one audio stream of any file (video or audio) on its own, copied bit for bit
//! whenever the output container can carry its codec, re-encoded only when asked for another
//! codec.
//!
//! The stream is the one named by absolute index (`stream`), else the best one in a language
//! (`language`), else the best audio stream of the file. One round, no analyses: everything it
//! needs is ffprobe's view of the input.

mod format;
mod select;

use preset_sdk::*;

struct ExtractAudio;

impl Preset for ExtractAudio {
    fn describe() -> Descriptor {
        Descriptor::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
            "Extracts one audio stream (by index, by language, or the best one) from any video or audio file, stream-copied when the container allows it.",
        )
        .input("main", "Any video or audio file.")
        .param(
            ParamSpec::integer(
                "stream",
                "Absolute index of the audio stream to extract (ffprobe's stream index). Unset: chosen by language, else the best audio stream.",
            )
            .range(0, 1023),
        )
        .param(
            ParamSpec::text(
                "language",
                "ISO 639 language code (\"en\", \"eng\", \"de\", \"deu\", \"ger\", ...) of the audio stream to extract, matched against the stream's language tag. Ignored when `stream` is set.",
            )
            .max_length(8),
        )
        .param(
            ParamSpec::choice(
                "codec",
                "Output codec. auto copies the stream as it is into a container for its codec; any other re-encodes unless the stream already has that codec (then it is copied).",
                format::CODECS,
            )
            .default("auto"),
        )
    }

    fn plan(request: &PlanRequest) -> Result<Decision, Refusal> {
        let params = request.params();
        let info = request.input("main")?;
        let audio = select::audio_stream(
            info,
            params.optional_integer("stream")?,
            params.optional_text("language")?,
        )?;
        let format = format::choose(params.text("codec")?, &audio)?;

        let copied = format.codec.is_none();
        let codec = match &format.codec {
            None => Codec::Copy,
            Some(encoder) => Codec::Encode(encoder.clone()),
        };
        log::info(format!(
            "stream {} ({}, {} Hz, {} ch, language {}) -> {} {}",
            audio.index(),
            audio.codec(),
            audio.sample_rate(),
            audio.channels(),
            audio.stream.language.as_deref().unwrap_or("unset"),
            format.container,
            if copied {
                "by stream copy"
            } else {
                "re-encoded"
            },
        ));
        let step = Step::new("extract").input(MediaRef::input("main")).output(
            Output::new("main", format.container).audio(Pad::stream(0, audio.index()), codec),
        );
        let mut finish = Finish::new()
            .step(step)
            .report("stream", audio.index())
            .report("source_codec", audio.codec())
            .report("codec", format.codec_name(audio.codec()))
            .report("container", format.container)
            .report("copied", copied);
        if let Some(language) = &audio.stream.language {
            finish = finish.report("language", language.as_str());
        }
        Ok(finish.into())
    }
}

export_preset!(ExtractAudio);

#[cfg(test)]
mod tests;
