//! Which audio stream to extract: by absolute index, by language, or the best one.

use preset_sdk::{AudioStream, MediaInfo, Refusal, StreamKind, refuse};

/// ISO 639-1 codes and their ISO 639-2 bibliographic and terminology forms, for the languages
/// media is commonly tagged in. Matroska and MP4 tag streams with 639-2 ("eng", "ger"/"deu");
/// users often write 639-1 ("en", "de"); any of the three finds the others.
const LANGUAGES: &[[&str; 3]] = &[
    ["ar", "ara", "ara"],
    ["cs", "cze", "ces"],
    ["da", "dan", "dan"],
    ["de", "ger", "deu"],
    ["el", "gre", "ell"],
    ["en", "eng", "eng"],
    ["es", "spa", "spa"],
    ["fa", "per", "fas"],
    ["fi", "fin", "fin"],
    ["fr", "fre", "fra"],
    ["he", "heb", "heb"],
    ["hi", "hin", "hin"],
    ["hu", "hun", "hun"],
    ["id", "ind", "ind"],
    ["it", "ita", "ita"],
    ["ja", "jpn", "jpn"],
    ["ko", "kor", "kor"],
    ["nl", "dut", "nld"],
    ["no", "nor", "nor"],
    ["pl", "pol", "pol"],
    ["pt", "por", "por"],
    ["ro", "rum", "ron"],
    ["ru", "rus", "rus"],
    ["sk", "slo", "slk"],
    ["sv", "swe", "swe"],
    ["th", "tha", "tha"],
    ["tr", "tur", "tur"],
    ["uk", "ukr", "ukr"],
    ["vi", "vie", "vie"],
    ["zh", "chi", "zho"],
];

/// The stream to extract: `index` when given (it must exist and be audio), else the best audio
/// stream whose language is `language`, else the best audio stream.
pub fn audio_stream<'a>(
    info: &'a MediaInfo,
    index: Option<i64>,
    language: Option<&str>,
) -> Result<AudioStream<'a>, Refusal> {
    if let Some(index) = index {
        let stream = u32::try_from(index)
            .ok()
            .and_then(|i| info.stream(i))
            .ok_or_else(|| {
                refuse(
                    "STREAM_NOT_FOUND",
                    format!(
                        "input 'main' has no stream {index}; its streams are {}",
                        describe_streams(info)
                    ),
                )
            })?;
        return info
            .audio_streams()
            .find(|a| a.index() == stream.index)
            .ok_or_else(|| {
                refuse(
                    "NOT_AUDIO",
                    format!(
                        "stream {index} of input 'main' is {} ({}), not audio; its streams are {}",
                        kind_name(&stream.kind),
                        stream.codec,
                        describe_streams(info)
                    ),
                )
            });
    }
    if info.audio_streams().next().is_none() {
        return Err(refuse("NO_AUDIO", "input 'main' has no audio stream"));
    }
    let Some(language) = language else {
        return Ok(info.best_audio().expect("an audio stream exists"));
    };
    let wanted = language_forms(language)?;
    info.audio_streams()
        .filter(|a| {
            a.stream
                .language
                .as_deref()
                .is_some_and(|l| wanted.iter().any(|w| w.eq_ignore_ascii_case(l)))
        })
        .max_by_key(|a| {
            (
                a.stream.disposition.default,
                a.channels(),
                std::cmp::Reverse(a.index()),
            )
        })
        .ok_or_else(|| {
            let tagged: Vec<String> = info
                .audio_streams()
                .map(|a| {
                    format!(
                        "{}: {}",
                        a.index(),
                        a.stream.language.as_deref().unwrap_or("untagged")
                    )
                })
                .collect();
            refuse(
                "LANGUAGE_NOT_FOUND",
                format!(
                    "no audio stream of input 'main' is in language '{language}'; its audio streams are {}",
                    tagged.join(", ")
                ),
            )
        })
}

/// Every code that names the same language as `code` (itself included), lower case.
fn language_forms(code: &str) -> Result<Vec<String>, Refusal> {
    let code = code.trim().to_ascii_lowercase();
    if !(2..=3).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(refuse(
            "LANGUAGE_INVALID",
            format!(
                "language '{code}' is not an ISO 639 code: give 2 or 3 letters, like 'en' or 'eng'"
            ),
        ));
    }
    let mut forms = vec![code.clone()];
    if let Some(row) = LANGUAGES.iter().find(|row| row.contains(&code.as_str())) {
        forms.extend(row.iter().map(|s| (*s).to_owned()));
    }
    forms.dedup();
    Ok(forms)
}

fn kind_name(kind: &StreamKind) -> &'static str {
    match kind {
        StreamKind::Audio => "audio",
        StreamKind::Video => "video",
        StreamKind::Subtitle => "a subtitle",
        StreamKind::Data => "data",
        StreamKind::Attachment => "an attachment",
        StreamKind::Unknown => "of an unknown kind",
    }
}

/// "0 video (h264), 1 audio (aac, eng)".
fn describe_streams(info: &MediaInfo) -> String {
    let streams: Vec<String> = info
        .streams
        .iter()
        .map(|s| {
            let language = s
                .language
                .as_deref()
                .map(|l| format!(", {l}"))
                .unwrap_or_default();
            let kind = kind_name(&s.kind)
                .trim_start_matches("a ")
                .trim_start_matches("an ")
                .trim_start_matches("of an ");
            format!("{} {kind} ({}{language})", s.index, s.codec)
        })
        .collect();
    if streams.is_empty() {
        "none".to_owned()
    } else {
        streams.join(", ")
    }
}
