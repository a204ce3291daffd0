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

/// One writer's claim on the offsets `first..=last` of the log's Kafka partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub first: i64,
    pub last: i64,
    /// The writer's deadline with the clock skew (milliseconds since the epoch): past it, the
    /// claim is void.
    pub until_ms: i64,
}

/// The live claims on one Kafka partition's offsets in one time partition of one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimLog {
    pub claims: Vec<Claim>,
}

/// What a writer does with its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimDecision {
    /// Write it, after saving this log (conditionally); `None`: the log holds the claim already.
    Write(Option<ClaimLog>),
    /// Another live writer claimed offsets this file would make visible: fail, and retry later.
    Wait(String),
}

impl ClaimLog {
    /// The decision for a writer of `range` whose file holds the rows at `offsets` (sorted; the
    /// rows not yet visible), at `now_ms`, with its own deadline `until_ms`. Void claims are
    /// dropped from the log it saves.
    pub fn decide(&self, range: &FileRange, offsets: &[i64], now_ms: i64, until_ms: i64) -> ClaimDecision {
        let mut live = Vec::with_capacity(self.claims.len() + 1);
        let mut held = false;
        for c in &self.claims {
            if now_ms > c.until_ms {
                continue;
            }
            if (c.first, c.last) == (range.first, range.last) {
                held = true;
            } else if holds_any(offsets, c.first, c.last) {
                return ClaimDecision::Wait(format!(
                    "offsets {}..={} of {}[{}] are claimed by another invocation until its deadline (a consumer-group \
                     rebalance ran two at once); this one retries once they are visible",
                    c.first.max(offsets[0]),
                    c.last.min(offsets[offsets.len() - 1]),
                    range.topic,
                    range.partition
                ));
            }
            live.push(c.clone());
        }
        if held {
            return ClaimDecision::Write(None);
        }
        live.push(Claim { first: range.first, last: range.last, until_ms });
        ClaimDecision::Write(Some(ClaimLog { claims: live }))
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
        let ClaimDecision::Write(Some(a)) = empty.decide(&range(0, 99), &offsets, 1_000, 61_000) else { panic!() };
        assert_eq!(a.claims, [Claim { first: 0, last: 99, until_ms: 61_000 }]);
        // The same range again (a retry, or a twin): the same write, no new claim.
        assert_eq!(a.decide(&range(0, 99), &offsets, 2_000, 62_000), ClaimDecision::Write(None));
        // An overlapping batch whose rows 50..=99 are not visible yet waits.
        let b: Vec<i64> = (50..=149).collect();
        let ClaimDecision::Wait(why) = a.decide(&range(50, 149), &b, 2_000, 62_000) else { panic!() };
        assert!(why.contains("50..=99") && why.contains("t[0]"), "{why}");
        // Once A's file is visible, B's remaining rows are 100..=149: no overlap, B claims them.
        let rest: Vec<i64> = (100..=149).collect();
        let ClaimDecision::Write(Some(ab)) = a.decide(&range(50, 149), &rest, 3_000, 63_000) else { panic!() };
        assert_eq!(ab.claims.len(), 2);
        // A range overlapping a claim only where the writer has no rows (gaps, other hours) writes.
        assert!(matches!(a.decide(&range(90, 120), &[100, 120], 3_000, 63_000), ClaimDecision::Write(Some(_))));
        // Past its deadline a claim is void: its writer died before its put.
        let late = 61_001;
        let ClaimDecision::Write(Some(c)) = a.decide(&range(0, 120), &(0..=120).collect::<Vec<_>>(), late, late + 1) else {
            panic!()
        };
        assert_eq!(c.claims, [Claim { first: 0, last: 120, until_ms: late + 1 }], "void claims are dropped");
        assert!(matches!(a.decide(&range(0, 120), &[0], 61_000, 0), ClaimDecision::Wait(_)), "live up to its deadline");
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
