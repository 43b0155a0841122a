//! Reading `GET /v1/jobs/{id}/events`: a server-sent-events parser fed the response's chunks as
//! they arrive, and the step from an event to the contract's [`JobEventFrame`] and [`Job`].
//!
//! The parser follows the WHATWG event-stream format (lines ended by LF, CRLF or CR; `:` lines
//! are comments such as keep-alives; `data:` lines of one event are joined by newlines; a blank
//! line ends the event). Chunks may split lines, and characters, anywhere.
//!
//! Not here: opening, reconnecting or displaying the stream (`wait`).

use mediahost_api::{Job, JobEventFrame, JobEventKind};

/// One event of a stream: its `event:` name (`message` when it has none) and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// An incremental event-stream parser.
#[derive(Debug, Default)]
pub struct SseParser {
    /// The bytes of the line not yet ended (kept as bytes: a chunk may split a character).
    line: Vec<u8>,
    /// The previous chunk ended in CR: a LF starting this one belongs to that line end.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    /// Feeds the next bytes of the stream; returns the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        for &b in bytes {
            let after_cr = std::mem::replace(&mut self.after_cr, b == b'\r');
            match b {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    let line =
                        String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
                    events.extend(self.line_ended(&line));
                }
                _ => self.line.push(b),
            }
        }
        events
    }

    fn line_ended(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let event = self.event.take();
            let data = self.data.take()?;
            return Some(SseEvent {
                event: event.unwrap_or_else(|| "message".to_owned()),
                data,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            // `id` and `retry` matter to browsers' automatic reconnects, not here.
            _ => {}
        }
        None
    }
}

/// The job event an SSE event is; `None` for an event name the contract does not have (a
/// newer host's), which a client skips.
pub fn job_frame(event: SseEvent) -> Option<JobEventFrame> {
    let kind: JobEventKind = serde_json::from_value(serde_json::Value::String(event.event)).ok()?;
    Some(JobEventFrame {
        event: kind,
        data: event.data,
    })
}

/// The job a frame carries.
pub fn job_of(frame: &JobEventFrame) -> Result<Job, serde_json::Error> {
    serde_json::from_str(&frame.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.to_owned(),
            data: data.to_owned(),
        }
    }

    #[test]
    fn events_are_read_across_chunk_boundaries() {
        let stream =
            "event: state\ndata: {\"a\":1}\n\n: keep-alive\n\nevent: progress\ndata: {\"a\":2}\n\n";
        for split in 0..stream.len() {
            let mut p = SseParser::default();
            let mut got = p.feed(&stream.as_bytes()[..split]);
            got.extend(p.feed(&stream.as_bytes()[split..]));
            assert_eq!(
                got,
                vec![ev("state", "{\"a\":1}"), ev("progress", "{\"a\":2}")],
                "split at {split}"
            );
        }
    }

    #[test]
    fn crlf_and_cr_line_ends_and_multiline_data() {
        let mut p = SseParser::default();
        let got = p.feed(b"event:state\r\ndata: one\r\ndata:two\r\r");
        assert_eq!(got, vec![ev("state", "one\ntwo")]);
        // A CRLF split between chunks is one line end, not an extra blank line.
        let mut p = SseParser::default();
        assert!(p.feed(b"data: x\r").is_empty());
        assert!(p.feed(b"\n").is_empty());
        assert_eq!(p.feed(b"\n"), vec![ev("message", "x")]);
    }

    #[test]
    fn a_character_split_between_chunks_survives() {
        let bytes = "data: héllo\n\n".as_bytes();
        let mut p = SseParser::default();
        let mut got = p.feed(&bytes[..8]);
        got.extend(p.feed(&bytes[8..]));
        assert_eq!(got, vec![ev("message", "héllo")]);
    }

    #[test]
    fn comments_and_events_without_data_dispatch_nothing() {
        let mut p = SseParser::default();
        assert!(
            p.feed(b": ping\n\nevent: state\n\nid: 7\nretry: 10\n\n")
                .is_empty()
        );
        // The unused event name does not leak into the next event.
        assert_eq!(p.feed(b"data: d\n\n"), vec![ev("message", "d")]);
    }

    #[test]
    fn an_unfinished_event_is_not_dispatched() {
        let mut p = SseParser::default();
        assert!(p.feed(b"event: state\ndata: {\"cut\": ").is_empty());
    }

    #[test]
    fn only_the_contracts_event_names_are_job_frames() {
        let frame = job_frame(ev("progress", "{}")).expect("progress is a job event");
        assert_eq!(frame.event, JobEventKind::Progress);
        assert_eq!(
            job_frame(ev("state", "x")).map(|f| f.event),
            Some(JobEventKind::State)
        );
        assert!(job_frame(ev("message", "{}")).is_none());
        assert!(job_frame(ev("heartbeat", "{}")).is_none());
    }
}
