//! The SSE meter (both dialects) over arbitrary bytes: it never panics,
//! reports only its own units, and however the stream is cut into chunks
//! (one piece, byte by byte, pseudo-random cuts) the usage is the same.

#![no_main]

use blastdoor_fuzz::{EVENT_STREAM, check_units, hash, meter, split};
use blastdoor_meter::MeterSpec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for spec in [MeterSpec::OpenAi, MeterSpec::Anthropic] {
        let whole = meter(&spec, EVENT_STREAM, [data]);
        check_units(&spec, &whole);
        if data.is_empty() {
            assert!(whole.problem.is_some(), "an empty stream carries no usage");
        }
        let cut = meter(&spec, EVENT_STREAM, split(data, hash(data)));
        assert_eq!(whole, cut, "{spec:?}: one chunk vs pseudo-random cuts");
        // Framing is the same for both dialects: byte by byte once is enough.
        if spec == MeterSpec::OpenAi {
            let bytewise = meter(&spec, EVENT_STREAM, data.chunks(1));
            assert_eq!(whole, bytewise, "{spec:?}: one chunk vs byte by byte");
        }
    }
});
