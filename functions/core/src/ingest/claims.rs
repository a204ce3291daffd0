//! Offset claims: how two ingest invocations running at once on overlapping batches of one
//! Kafka partition agree on who makes which rows visible, so that no row is ever visible twice.
//!
//! The event source mapping delivers a partition's batches one at a time, except during a
//! consumer-group rebalance, when the old and the new poller may both be invoked with batches
//! that overlap. Object keys alone cannot stop that: the two batches have different boundaries,
//! so their files have different keys, and both would be visible. So before a data file becomes
//! visible, its writer records a claim on its offsets in the partition's claim log (one JSON object
//! per table, time partition and Kafka partition, changed only by conditional writes). A writer
//! that finds a live claim of someone else on offsets it still has to write does not write: it
//! fails, the mapping retries it, and by then the other file is visible and those rows count as
//! already committed.
//!
//! A claim lives until its writer's deadline (the invocation's, when Lambda gives one, plus the
//! clock skew two environments may have): a writer that died between its claim and its put no
//! longer holds anything after it. A claim of exactly the same range is the same write (a retry,
//! or a twin that read what we read): it proceeds.

use serde::{Deserialize, Serialize};

use crate::layout::FileRange;

/// Clocks of two Lambda environments may differ by this much: added to a Lambda deadline.
pub const CLOCK_SKEW_MS: i64 = 60 * 1000;
/// How long a claim lives when the writer has no deadline of its own: Lambda's longest
/// timeout, and the clock skew.
pub const DEFAULT_CLAIM_MS: i64 = 15 * 60 * 1000 + CLOCK_SKEW_MS;
/// A writer puts its file only while at least this much of its claim remains, so the put is
/// over before anyone may treat the claim as void.
pub const PUT_MARGIN_MS: i64 = CLOCK_SKEW_MS;
/// How long a void claim stays in the log: longer than any invocation. A writer whose listing
/// predates a void claim's put therefore still meets the claim, and lists again before writing
/// ([`ClaimDecision::Recheck`]); once a claim is gone, its file (if it was written) was visible
/// before any writer still running made its listing.
pub const CLAIM_RETAIN_MS: i64 = DEFAULT_CLAIM_MS;

/// One writer's claim on the offsets `first..=last` of the log's Kafka partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The first offset claimed.
    pub first: i64,
    /// The last offset claimed.
    pub last: i64,
    /// The writer's deadline with the clock skew (milliseconds since the epoch): past it, the
    /// claim is void.
    pub until_ms: i64,
}

/// The claims on one Kafka partition's offsets in one time partition of one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimLog {
    /// The claims, oldest first.
    pub claims: Vec<Claim>,
}

/// What a writer does with its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimDecision {
    /// Write it, after saving this log (conditionally); `None`: the log holds the claim already.
    Write(Option<ClaimLog>),
    /// Another live writer claimed offsets this file would make visible, until `until_ms`: wait
    /// for its file to become visible (list again) or its claim to lapse, or fail and be retried.
    Wait {
        /// Which writer, and which offsets.
        why: String,
        /// When its claim lapses.
        until_ms: i64,
    },
    /// A void claim overlaps rows still to write: its writer either finished after this writer
    /// listed (its file is visible now) or died. List again, drop what is visible, and decide
    /// again with `rechecked`.
    Recheck,
}

impl ClaimLog {
    /// The decision for a writer of `range` whose file holds the rows at `offsets` (sorted, not
    /// empty; the rows not visible at its last listing), at `now_ms`, with its own deadline
    /// `until_ms`. `rechecked`: the writer listed again after a [`ClaimDecision::Recheck`], so a
    /// void claim still overlapping its rows belonged to a writer that died before its put.
    /// The log it saves drops claims void for longer than [`CLAIM_RETAIN_MS`], and extends a
    /// held claim to the writer's deadline (a retry must hold it for as long as it runs).
    pub fn decide(&self, range: &FileRange, offsets: &[i64], now_ms: i64, until_ms: i64, rechecked: bool) -> ClaimDecision {
        let mut kept = Vec::with_capacity(self.claims.len() + 1);
        let mut held = None;
        for c in &self.claims {
            if now_ms > c.until_ms + CLAIM_RETAIN_MS {
                continue;
            }
            if (c.first, c.last) == (range.first, range.last) {
                held = Some(c.until_ms);
                kept.push(Claim { until_ms: c.until_ms.max(until_ms), ..c.clone() });
                continue;
            }
            if holds_any(offsets, c.first, c.last) {
                if now_ms <= c.until_ms {
                    let why = format!(
                        "offsets {}..={} of {}[{}] are claimed by another invocation until its deadline (a consumer-group \
                         rebalance ran two at once); this one writes them only if that one does not",
                        c.first.max(offsets[0]),
                        c.last.min(offsets[offsets.len() - 1]),
                        range.topic,
                        range.partition
                    );
                    return ClaimDecision::Wait { why, until_ms: c.until_ms };
                }
                if !rechecked {
                    return ClaimDecision::Recheck;
                }
            }
            kept.push(c.clone());
        }
        match held {
            Some(t) if t >= until_ms => ClaimDecision::Write(None),
            Some(_) => ClaimDecision::Write(Some(ClaimLog { claims: kept })),
            None => {
                kept.push(Claim { first: range.first, last: range.last, until_ms });
                ClaimDecision::Write(Some(ClaimLog { claims: kept }))
            }
        }
    }
}

/// Whether a sorted list of offsets has one in `first..=last`.
fn holds_any(sorted: &[i64], first: i64, last: i64) -> bool {
    let i = sorted.partition_point(|o| *o < first);
    i < sorted.len() && sorted[i] <= last
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(first: i64, last: i64) -> FileRange {
        FileRange { topic: "t".into(), partition: 0, first, last }
    }

    #[test]
    fn a_live_claim_on_rows_still_to_write_makes_the_writer_wait_and_nothing_else_does() {
        let empty = ClaimLog::default();
        let offsets: Vec<i64> = (0..=99).collect();
        let ClaimDecision::Write(Some(a)) = empty.decide(&range(0, 99), &offsets, 1_000, 61_000, false) else { panic!() };
        assert_eq!(a.claims, [Claim { first: 0, last: 99, until_ms: 61_000 }]);
        // The same range again (a retry, or a twin): the same write; a later deadline extends it.
        assert_eq!(a.decide(&range(0, 99), &offsets, 2_000, 61_000, false), ClaimDecision::Write(None));
        let ClaimDecision::Write(Some(ext)) = a.decide(&range(0, 99), &offsets, 2_000, 90_000, false) else { panic!() };
        assert_eq!(ext.claims, [Claim { first: 0, last: 99, until_ms: 90_000 }], "a retry holds the claim while it runs");
        // An overlapping batch whose rows 50..=99 are not visible yet waits, until A's deadline.
        let b: Vec<i64> = (50..=149).collect();
        let ClaimDecision::Wait { why, until_ms } = a.decide(&range(50, 149), &b, 2_000, 62_000, false) else { panic!() };
        assert!(why.contains("50..=99") && why.contains("t[0]"), "{why}");
        assert_eq!(until_ms, 61_000);
        // Once A's file is visible, B's remaining rows are 100..=149: no overlap, B claims them.
        let rest: Vec<i64> = (100..=149).collect();
        let ClaimDecision::Write(Some(ab)) = a.decide(&range(50, 149), &rest, 3_000, 63_000, false) else { panic!() };
        assert_eq!(ab.claims.len(), 2);
        // A range overlapping a claim only where the writer has no rows (gaps, other hours) writes.
        assert!(matches!(a.decide(&range(90, 120), &[100, 120], 3_000, 63_000, false), ClaimDecision::Write(Some(_))));
        // Live up to its deadline; past it, a writer whose listing may predate A's put lists
        // again first; still uncovered after that, A died before its put: the claim is void.
        assert!(matches!(a.decide(&range(0, 120), &[0], 61_000, 0, false), ClaimDecision::Wait { .. }));
        let all: Vec<i64> = (0..=120).collect();
        assert_eq!(a.decide(&range(0, 120), &all, 61_001, 200_000, false), ClaimDecision::Recheck);
        let ClaimDecision::Write(Some(c)) = a.decide(&range(0, 120), &all, 61_001, 200_000, true) else { panic!() };
        assert_eq!(c.claims.len(), 2, "the void claim stays for later writers whose listing is older");
        // Void for longer than the retention, it is dropped: no running writer listed before its put.
        let late = 61_000 + CLAIM_RETAIN_MS + 1;
        let ClaimDecision::Write(Some(d)) = a.decide(&range(0, 120), &all, late, late + 1, false) else { panic!() };
        assert_eq!(d.claims, [Claim { first: 0, last: 120, until_ms: late + 1 }]);
    }

    #[test]
    fn holds_any_is_an_interval_test_on_sorted_offsets() {
        let o = [3, 7, 10];
        for (first, last, want) in
            [(0, 2, false), (0, 3, true), (4, 6, false), (8, 9, false), (10, 10, true), (11, 20, false), (5, 8, true)]
        {
            assert_eq!(holds_any(&o, first, last), want, "{first}..={last}");
        }
        assert!(!holds_any(&[], 0, 10));
    }
}
