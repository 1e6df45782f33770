//! Hits in interleaved rounds: every contender times a short block of hits in turn, round
//! after round, continuing through its URLs where its last block stopped.
//!
//! This machine's speed changes for seconds at a time (a plain `HashMap` hit takes 2.0 µs for
//! a while, then 3.5-4.5 µs, for ours and the floors alike). A round of in-process blocks
//! lasts a few tens of milliseconds, so the contenders of one round nearly always meet the
//! same speed, where rounds of 20,000 requests each (a second or more) did not: one contender
//! then had the fast mode and the other not, and a ratio swung from 0.7 to 1.7 between runs.
//! A ratio is therefore judged round by round: the median, over the rounds, of ours' block
//! median over the floor's in the same round (see [`Rounds::ratio`]). Each round starts with
//! the next contender, so a store's deferred work (a flush, a checkpoint) lands on a different
//! neighbour each time.

use std::time::Duration;

use crate::measure::{self, Stats, micros};
use crate::{Contender, Results};

/// Rounds a row runs.
pub(crate) const ROUNDS: usize = 41;
/// Timed hits per block of a contender in the process, and of one over a server (a loopback
/// round trip each, 70-200 µs): a few milliseconds of either.
pub(crate) const BLOCK: usize = 1_000;
pub(crate) const REMOTE_BLOCK: usize = 50;

/// One contender's blocks.
struct Timed {
    name: &'static str,
    /// Each round's block median, in µs.
    medians: Vec<f64>,
    /// Every request's time.
    samples: Vec<Duration>,
}

/// What the rounds measured of each contender.
pub(crate) struct Rounds(Vec<Timed>);

/// Runs [`ROUNDS`] rounds over `contenders` hitting `urls` (each stored first, then a warm-up
/// block); a contender at index `first_remote` or later times [`REMOTE_BLOCK`] hits a block.
pub(crate) async fn run(contenders: &[Contender], urls: &[String], first_remote: usize) -> Rounds {
    let block = |i: usize| {
        if i < first_remote {
            BLOCK
        } else {
            REMOTE_BLOCK
        }
    };
    for (i, contender) in contenders.iter().enumerate() {
        measure::time_from(&contender.client, urls, 0, urls.len()).await;
        measure::time_from(&contender.client, urls, 0, block(i)).await;
    }
    let mut timed: Vec<Timed> = contenders
        .iter()
        .map(|contender| Timed {
            name: contender.name,
            medians: Vec::with_capacity(ROUNDS),
            samples: Vec::new(),
        })
        .collect();
    // Where each contender's next block starts in `urls`: over many URLs, a block goes on
    // through them rather than hitting the first ones again.
    let mut next = vec![0; contenders.len()];
    for round in 0..ROUNDS {
        for k in 0..contenders.len() {
            let i = (round + k) % contenders.len();
            let samples = measure::time_from(&contenders[i].client, urls, next[i], block(i)).await;
            next[i] = (next[i] + block(i)) % urls.len();
            timed[i]
                .medians
                .push(micros(measure::stats(samples.clone()).median));
            timed[i].samples.extend(samples);
        }
    }
    Rounds(timed)
}

impl Rounds {
    /// Each contender's median ([`Rounds::median`]) and p99 (of every request).
    pub(crate) fn results(&self) -> Results {
        Results(
            self.0
                .iter()
                .map(|timed| {
                    let p99 = measure::stats(timed.samples.clone()).p99;
                    let median = self.median(timed.name).unwrap_or_default();
                    let median = Duration::from_secs_f64(median / 1e6);
                    (timed.name, Stats { median, p99 })
                })
                .collect(),
        )
    }

    /// The median of `name`'s block medians, in µs; `None` unless it ran.
    pub(crate) fn median(&self, name: &str) -> Option<f64> {
        let timed = self.0.iter().find(|timed| timed.name == name)?;
        median(timed.medians.clone())
    }

    /// `ours` against `floor`: the median over the rounds of ours' block median divided by
    /// the floor's in the same round. `None` unless both ran.
    pub(crate) fn ratio(&self, ours: &str, floor: &str) -> Option<f64> {
        let blocks = |name: &str| self.0.iter().find(|timed| timed.name == name);
        let (ours, floor) = (blocks(ours)?, blocks(floor)?);
        let ratios = ours
            .medians
            .iter()
            .zip(&floor.medians)
            .map(|(ours, floor)| ours / floor)
            .collect();
        median(ratios)
    }
}

/// The median of `values` (the upper one of an even count); `None` when empty.
fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}
