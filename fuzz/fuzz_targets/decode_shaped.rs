//! Structure-aware fuzzing of the entry decoder: the fuzzer describes an entry (header runs
//! repeated thousands of times, long values and URLs, many Vary names, a count that lies, a
//! few damaged bytes) and this target writes it byte by byte, the way the codec lays it out.
//! A few hundred input bytes thus become entries of up to about 1.5 MiB with up to 40,000
//! header pairs, past the 24,576 names `http` holds, which random bytes would almost never
//! reach with consistent lengths.
//!
//! ```sh
//! cargo +nightly fuzz run decode_shaped -- -max_total_time=300 -max_len=1048576 -rss_limit_mb=2048
//! ```
//!
//! Every built entry goes through the same checks as `decode_entry` (`checks.rs`).
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;

mod checks;

/// At most this many header pairs in one entry (response and request together).
const MAX_PAIRS: usize = 40_000;
/// At most this many bytes of values, names, URLs and body together.
const MAX_BYTES: usize = 1_500_000;

#[derive(Arbitrary, Debug)]
struct Shape {
    kind: Kind,
    flags: u8,
    status: u16,
    version: u8,
    headers: Vec<Run>,
    request_headers: Vec<Run>,
    url: Text,
    method: String,
    request_url: Text,
    body: Fill,
    generation: u64,
    /// Written instead of the response header (or Vary name) count.
    count_lie: Option<u32>,
    /// Bytes XORed after the entry is built (position modulo the length).
    flips: Vec<(u32, u8)>,
    /// Keep only this many bytes (modulo the length plus one).
    truncate: Option<u32>,
}

#[derive(Arbitrary, Debug)]
enum Kind {
    Response,
    VaryIndex,
    Other(u8),
}

/// One header, or as many as `repeat` says.
#[derive(Arbitrary, Debug)]
struct Run {
    name: Name,
    value: Fill,
    repeat: u16,
}

#[derive(Arbitrary, Debug)]
enum Name {
    /// The same name every time: many values of one name (legal past http's name limit).
    Same(String),
    /// `{prefix}{i}`: distinct names, up to past what `http` holds.
    Numbered(String),
}

#[derive(Arbitrary, Debug)]
enum Text {
    Given(String),
    Long(Fill),
}

/// `len` copies of `byte` (within the budget), then `tail`.
#[derive(Arbitrary, Debug)]
struct Fill {
    byte: u8,
    len: u32,
    tail: Vec<u8>,
}

/// What is left to spend on one entry.
struct Budget {
    pairs: usize,
    bytes: usize,
}

impl Budget {
    fn fill(&mut self, fill: &Fill) -> Vec<u8> {
        let len = (fill.len as usize).min(self.bytes);
        self.bytes -= len;
        let mut out = vec![fill.byte; len];
        let tail = fill.tail.len().min(self.bytes);
        self.bytes -= tail;
        out.extend_from_slice(&fill.tail[..tail]);
        out
    }

    fn text(&mut self, text: &Text) -> Vec<u8> {
        match text {
            Text::Given(s) => s.as_bytes().to_vec(),
            Text::Long(fill) => self.fill(fill),
        }
    }

    /// The (name, value) pairs of `runs`, as many as the budget allows.
    fn pairs(&mut self, runs: &[Run]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut pairs = Vec::new();
        for run in runs {
            let value = self.fill(&run.value);
            let repeat = usize::from(run.repeat).max(1).min(self.pairs);
            self.pairs -= repeat;
            for i in 0..repeat {
                let name = match &run.name {
                    Name::Same(name) => name.as_bytes().to_vec(),
                    Name::Numbered(prefix) => format!("{prefix}{i}").into_bytes(),
                };
                // Every copy of a long value counts: stop when the bytes run out.
                if self.bytes < name.len() + value.len() {
                    return pairs;
                }
                self.bytes -= name.len() + value.len();
                pairs.push((name, value.clone()));
            }
        }
        pairs
    }
}

/// A postcard varint (LEB128).
fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A postcard string or byte slice: its length, then its bytes.
fn bytes(value: &[u8], out: &mut Vec<u8>) {
    varint(value.len() as u64, out);
    out.extend_from_slice(value);
}

fn pairs(pairs: &[(Vec<u8>, Vec<u8>)], count: Option<u32>, out: &mut Vec<u8>) {
    varint(count.map_or(pairs.len() as u64, u64::from), out);
    for (name, value) in pairs {
        bytes(name, out);
        bytes(value, out);
    }
}

/// The entry `shape` describes, laid out as the codec writes it (then damaged as it says).
fn build(shape: &Shape) -> Vec<u8> {
    let mut budget = Budget {
        pairs: MAX_PAIRS,
        bytes: MAX_BYTES,
    };
    let mut head = Vec::new();
    let mut body = Vec::new();
    let kind = match shape.kind {
        Kind::Response | Kind::Other(_) => {
            varint(u64::from(shape.status), &mut head);
            head.push(shape.version);
            let headers = budget.pairs(&shape.headers);
            pairs(&headers, shape.count_lie, &mut head);
            let url = budget.text(&shape.url);
            bytes(&url, &mut head);
            bytes(shape.method.as_bytes(), &mut head);
            let request_url = budget.text(&shape.request_url);
            bytes(&request_url, &mut head);
            let request_headers = budget.pairs(&shape.request_headers);
            pairs(&request_headers, None, &mut head);
            body = budget.fill(&shape.body);
            match shape.kind {
                Kind::Other(kind) => kind,
                _ => 0,
            }
        }
        Kind::VaryIndex => {
            let names = budget.pairs(&shape.headers);
            let count = shape.count_lie.map_or(names.len() as u64, u64::from);
            varint(count, &mut head);
            for (name, _) in &names {
                bytes(name, &mut head);
            }
            varint(shape.generation, &mut head);
            1
        }
    };
    let mut entry = b"RQCE".to_vec();
    entry.extend_from_slice(&[cache_core::codec::FORMAT_VERSION, kind, shape.flags]);
    entry.extend_from_slice(&(head.len() as u32).to_le_bytes());
    entry.extend_from_slice(&(body.len() as u64).to_le_bytes());
    entry.extend_from_slice(&head);
    entry.extend_from_slice(&body);
    for &(at, xor) in &shape.flips {
        let at = at as usize % entry.len();
        entry[at] ^= xor;
    }
    if let Some(len) = shape.truncate {
        entry.truncate(len as usize % (entry.len() + 1));
    }
    entry
}

fuzz_target!(|shape: Shape| {
    checks::check(Bytes::from(build(&shape)));
});
