//! Server-sent events, parsed incrementally: events may be split across
//! chunks anywhere, even inside a line or a UTF-8 sequence.

use crate::{Usage, anthropic, openai};

/// Longest single event kept while waiting for its end; a stream that
/// exceeds it is flagged rather than buffered without bound.
const MAX_EVENT: usize = 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    OpenAi,
    Anthropic,
}

#[derive(Debug)]
pub struct SseMeter {
    dialect: Dialect,
    pending: Vec<u8>,
    /// How much of `pending` is known to hold no event end (so each byte
    /// is searched about once, however finely the stream is cut).
    scanned: usize,
    usage: Usage,
    saw_usage: bool,
    too_long: bool,
}

/// The end of the first event in `buf`, searched for from `from` on:
/// (end of its text, start of the next).
fn event_end(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' && buf[i + 1] == b'\n' {
            return Some((i, i + 2));
        }
        if buf[i] == b'\n' && buf[i + 1] == b'\r' && buf.get(i + 2) == Some(&b'\n') {
            return Some((i, i + 3));
        }
        i += 1;
    }
    None
}

impl SseMeter {
    pub fn new(dialect: Dialect) -> Self {
        SseMeter {
            dialect,
            pending: Vec::new(),
            scanned: 0,
            usage: Usage::default(),
            saw_usage: false,
            too_long: false,
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        if self.too_long {
            return;
        }
        let mut buf = std::mem::take(&mut self.pending);
        buf.extend_from_slice(chunk);
        // Every complete event, then one drain: not one per event.
        let mut start = 0;
        let mut from = self.scanned;
        while let Some((end, next)) = event_end(&buf[start..], from) {
            // The limit holds however the stream is cut: an event is too
            // long if all of it but the last byte of its end would have
            // been waiting in `pending` had it come in small chunks.
            if next - 1 > MAX_EVENT {
                self.too_long = true;
                return;
            }
            self.event(&buf[start..start + end]);
            start += next;
            from = 0;
        }
        buf.drain(..start);
        if buf.len() > MAX_EVENT {
            self.too_long = true;
            return;
        }
        // An end may still begin in the last two bytes ("\n\r" + "\n").
        self.scanned = buf.len().saturating_sub(2);
        self.pending = buf;
    }

    /// One event: its `data:` lines joined by newlines.
    fn event(&mut self, raw: &[u8]) {
        let text = String::from_utf8_lossy(raw);
        let mut data = String::new();
        for line in text.lines() {
            if let Some(d) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(d.strip_prefix(' ').unwrap_or(d));
            }
        }
        if data.is_empty() || data == "[DONE]" {
            return;
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&data) else {
            return;
        };
        let carried = match self.dialect {
            Dialect::OpenAi => openai::apply_event(&v, &mut self.usage),
            Dialect::Anthropic => anthropic::apply_event(&v, &mut self.usage),
        };
        self.saw_usage |= carried;
    }

    pub fn finish(mut self) -> Usage {
        if !self.pending.is_empty() && !self.too_long {
            let rest = std::mem::take(&mut self.pending);
            self.event(&rest);
        }
        if self.too_long {
            self.usage.problem = Some("a stream event exceeded the metering limit".to_string());
        } else if !self.saw_usage {
            self.usage.problem = Some("the stream carried no usage".to_string());
        }
        self.usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENAI_STREAM: &str = concat!(
        "data: {\"id\":\"c1\",\"model\":\"gpt-4o-mini\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n",
        "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],",
        "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12,\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n",
        "data: [DONE]\n\n",
    );

    fn feed_in_pieces(dialect: Dialect, stream: &str, piece: usize) -> Usage {
        let mut m = SseMeter::new(dialect);
        for chunk in stream.as_bytes().chunks(piece) {
            m.feed(chunk);
        }
        m.finish()
    }

    #[test]
    fn openai_final_chunk_with_choices_and_usage_counts() {
        for piece in [1, 3, 7, 64, 10_000] {
            let u = feed_in_pieces(Dialect::OpenAi, OPENAI_STREAM, piece);
            assert_eq!(u.get("input_tokens"), 5, "piece {piece}");
            assert_eq!(u.get("cached_input_tokens"), 4);
            assert_eq!(u.get("output_tokens"), 12);
            assert_eq!(u.model.as_deref(), Some("gpt-4o-mini"));
            assert!(u.problem.is_none());
        }
    }

    #[test]
    fn crlf_framing_and_responses_api_completion() {
        let stream = "event: response.output_text.delta\r\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"x\"}\r\n\r\nevent: response.completed\r\ndata: {\"type\":\"response.completed\",\"response\":{\"model\":\"o4-mini\",\"usage\":{\"input_tokens\":3,\"output_tokens\":8,\"output_tokens_details\":{\"reasoning_tokens\":5}}}}\r\n\r\n";
        let u = feed_in_pieces(Dialect::OpenAi, stream, 5);
        assert_eq!(
            (
                u.get("input_tokens"),
                u.get("output_tokens"),
                u.get("reasoning_tokens")
            ),
            (3, 3, 5)
        );
        assert_eq!(u.model.as_deref(), Some("o4-mini"));
    }

    #[test]
    fn anthropic_start_and_cumulative_deltas() {
        let stream = concat!(
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-haiku-4-5\",\"usage\":{\"input_tokens\":25,\"output_tokens\":1,\"cache_read_input_tokens\":10}}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hello\"}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n",
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":42}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        );
        let u = feed_in_pieces(Dialect::Anthropic, stream, 11);
        assert_eq!(u.get("input_tokens"), 25);
        assert_eq!(u.get("cached_input_tokens"), 10);
        assert_eq!(u.get("output_tokens"), 42, "the last cumulative count");
        assert_eq!(u.model.as_deref(), Some("claude-haiku-4-5"));
    }

    #[test]
    fn a_stream_cut_short_counts_what_was_delivered_and_says_so() {
        let cut = &OPENAI_STREAM[..60];
        let u = feed_in_pieces(Dialect::OpenAi, cut, 8);
        assert!(u.problem.is_some(), "no usage arrived: flagged, not zero");
        let anthropic_cut = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9}}\n\n";
        let u = feed_in_pieces(Dialect::Anthropic, anthropic_cut, 4);
        assert_eq!(u.get("output_tokens"), 9);
    }

    #[test]
    fn oversized_events_are_flagged_not_buffered() {
        let mut m = SseMeter::new(Dialect::OpenAi);
        let junk = vec![b'a'; 64 * 1024];
        for _ in 0..20 {
            m.feed(&junk);
        }
        let u = m.finish();
        assert!(u.problem.unwrap().contains("limit"));
    }

    /// An event of exactly `len` bytes, its blank line included, with usage.
    fn event_of(len: usize) -> String {
        let head = "data: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2},\"pad\":\"";
        let tail = "\"}\n\n";
        format!("{head}{}{tail}", "x".repeat(len - head.len() - tail.len()))
    }

    #[test]
    fn the_event_limit_does_not_depend_on_chunking() {
        let small = "data: {\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}\n\n";
        // The longest event that never has more than MAX_EVENT bytes
        // waiting for its end, and one byte longer. Once flagged, the
        // stream is no longer read: the usage is what came before.
        for (len, flagged) in [(MAX_EVENT + 1, false), (MAX_EVENT + 2, true)] {
            let stream = format!("{small}{}{}", event_of(len), small.replace('3', "9"));
            let whole = feed_in_pieces(Dialect::OpenAi, &stream, stream.len());
            assert_eq!(
                whole.problem.is_some(),
                flagged,
                "{len}: {:?}",
                whole.problem
            );
            let output = if flagged { 3 } else { 9 };
            assert_eq!(whole.get("output_tokens"), output, "{len}");
            // Byte by byte too: each byte is searched about once, so this
            // stays fast (it used to take minutes).
            for piece in [64 * 1024, 1000, 1] {
                assert_eq!(
                    feed_in_pieces(Dialect::OpenAi, &stream, piece),
                    whole,
                    "{len} bytes in pieces of {piece}"
                );
            }
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// However the network splits the stream, the usage is the same.
            #[test]
            fn chunking_never_changes_usage(cuts in proptest::collection::vec(0usize..OPENAI_STREAM.len(), 0..12)) {
                let bytes = OPENAI_STREAM.as_bytes();
                let mut cuts = cuts;
                cuts.sort_unstable();
                let mut m = SseMeter::new(Dialect::OpenAi);
                let mut at = 0;
                for c in cuts {
                    m.feed(&bytes[at..c.max(at)]);
                    at = c.max(at);
                }
                m.feed(&bytes[at..]);
                let u = m.finish();
                prop_assert_eq!(u.get("input_tokens"), 5);
                prop_assert_eq!(u.get("output_tokens"), 12);
                prop_assert!(u.problem.is_none());
            }

            #[test]
            fn arbitrary_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16)) {
                for dialect in [Dialect::OpenAi, Dialect::Anthropic] {
                    let mut m = SseMeter::new(dialect);
                    for c in &chunks {
                        m.feed(c);
                    }
                    let _ = m.finish();
                }
            }
        }
    }
}
