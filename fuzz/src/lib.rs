//! Helpers shared by the fuzz targets: run a meter over a body cut into
//! chunks, cut a body pseudo-randomly, and check what any meter reports.

use blastdoor_meter::{Meter, MeterSpec, Usage};

pub const EVENT_STREAM: &str = "text/event-stream";
pub const JSON: &str = "application/json";

fn no_headers(_: &str) -> Option<&'static str> {
    None
}

/// The usage a meter reads from a response fed as these chunks.
pub fn meter<'a>(
    spec: &MeterSpec,
    content_type: &str,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Usage {
    let mut m = Meter::start(spec, content_type, no_headers);
    for chunk in chunks {
        m.feed(chunk);
    }
    m.finish()
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a: a seed for `split` that follows the input.
pub fn hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `data` cut into pseudo-random chunks (some empty, many tiny, some
/// large), the same cuts for the same seed.
pub fn split(data: &[u8], seed: u64) -> Vec<&[u8]> {
    let mut state = seed;
    let mut out = Vec::new();
    let mut at = 0;
    let mut last_empty = false;
    while at < data.len() {
        let r = splitmix64(&mut state);
        let len = match r % 8 {
            0 if !last_empty => 0,
            0..=3 => 1 + (r >> 8) as usize % 3,
            4..=6 => 1 + (r >> 8) as usize % 32,
            _ => 1 + (r >> 8) as usize % 1024,
        };
        let end = (at + len).min(data.len());
        out.push(&data[at..end]);
        last_empty = len == 0;
        at = end;
    }
    out
}

/// What any meter reports: only the units its spec names.
pub fn check_units(spec: &MeterSpec, usage: &Usage) {
    let known = spec.units();
    for unit in usage.units.keys() {
        assert!(known.contains(unit), "{spec:?} reported unit {unit:?}");
    }
}
