//! What one compaction merges: the tiers that bound write amplification, and the byte budget
//! that bounds one invocation's work.
//!
//! A partition's files are in three tiers:
//!
//! - **ingest** files, as ingest wrote them;
//! - **partial** compacted files: written once by compaction, from ingest files only;
//! - **sealed** compacted files: at least three quarters of `target_file_bytes`, or holding rows
//!   that were compacted twice. The compactor never reads them again; a new version gets them by
//!   a server-side copy.
//!
//! While a partition's window is open, ingest files are merged into a new partial file, and the
//! partial files are merged only once, with new ingest files, when together they reach the
//! target (or number `max_partial_files`): the outputs are sealed. When the window closes, one final pass packs the partial files
//! and the remaining ingest files. So an ingested byte is rewritten at most twice (ingest →
//! partial → sealed), whatever the partition's size: write amplification is at most 2, and read
//! amplification at most 2 plus the ingest files' size over the final files'.

use crate::config::CompactionPolicy;
use crate::layout::time_partition::TimePartition;

use super::{Due, PartitionState, window_end_ms};

/// A file the planner may merge: its key and size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The object key.
    pub key: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// One compaction's inputs, in the order the merge reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Why the partition is compacted now.
    pub due: Due,
    /// The files to merge: partial compacted files first, then ingest files in key order.
    pub merge: Vec<String>,
    /// How many leading files of `merge` are partial compacted files. Their rows are in the
    /// partition state's `covered` already, so the merge does not check them again; an output
    /// that holds any of them is sealed.
    pub partials: usize,
    /// The bytes the merge reads: at most `max_read_bytes`, or one file if a single file is larger.
    pub read_bytes: u64,
}

/// The plan for a partition whose current location holds `partials` (partial compacted files)
/// and `ingest` (ingest files, in key order), at `now_ms`; `None` when it is not due. With
/// `rows_unknown` (a state written before tiers, which does not record the rows its compacted
/// files hold) every file is merged, whatever the budget, as compactions did then.
///
/// Due: `min_files` ingest files or `min_bytes` of them, or the window closed (plus grace) with
/// something to fold in: an ingest file, or two partial files to pack into one.
pub fn plan(
    policy: &CompactionPolicy,
    tp: &TimePartition,
    partials: &[Candidate],
    ingest: &[Candidate],
    rows_unknown: bool,
    now_ms: i64,
) -> Option<Plan> {
    let ingest_bytes: u64 = ingest.iter().map(|c| c.bytes).sum();
    let partial_bytes: u64 = partials.iter().map(|c| c.bytes).sum();
    let closed = window_closed(policy, tp, now_ms);
    let due = if !ingest.is_empty() && (ingest.len() >= policy.min_files || ingest_bytes >= policy.min_bytes) {
        Due::Size
    } else if closed && (!ingest.is_empty() || partials.len() >= 2) {
        Due::Closed
    } else {
        return None;
    };
    // Partial files are read once more: in the final pass, when with the new ingest files they
    // make a full file, or when there are `max_partial_files` of them. Otherwise only the ingest
    // files are merged, into a new partial file; so too while the ingest files alone exceed the
    // budget (a backlog): merged with them in budget-sized steps, the partial files would make
    // small sealed files.
    let with_partials = rows_unknown
        || (closed || partial_bytes + ingest_bytes >= policy.target_file_bytes || partials.len() >= policy.max_partial_files)
            && (ingest.is_empty() || partial_bytes + ingest_bytes <= policy.max_read_bytes);
    let candidates = partials.iter().filter(|_| with_partials).chain(ingest);
    let (mut merge, mut read_bytes, mut taken_partials) = (Vec::new(), 0u64, 0);
    for (i, c) in candidates.enumerate() {
        if !merge.is_empty() && read_bytes + c.bytes > policy.max_read_bytes && !rows_unknown {
            break;
        }
        merge.push(c.key.clone());
        read_bytes += c.bytes;
        if with_partials && i < partials.len() {
            taken_partials += 1;
        }
    }
    Some(Plan { due, merge, partials: taken_partials, read_bytes })
}

/// Whether compaction has nothing left to do in a partition unless new files arrive: its window
/// has closed (plus grace), nothing is due, and no compaction holds or is switching it. The sweep
/// stops visiting a settled partition (it deletes its pending marker).
pub fn settled(
    policy: &CompactionPolicy,
    tp: &TimePartition,
    state: &PartitionState,
    partials: &[Candidate],
    ingest: &[Candidate],
    now_ms: i64,
) -> bool {
    let closed = window_closed(policy, tp, now_ms);
    closed
        && plan(policy, tp, partials, ingest, state.held.is_none() && !state.compacted.is_empty(), now_ms).is_none()
        && state.closing.is_none()
        && state.lease.as_ref().is_none_or(|l| l.expires_ms <= now_ms)
}

/// Whether a partition's window has closed: its end plus `grace_seconds`.
fn window_closed(policy: &CompactionPolicy, tp: &TimePartition, now_ms: i64) -> bool {
    window_end_ms(tp).is_some_and(|end| now_ms >= end + (policy.grace_seconds as i64) * 1000)
}

/// Whether a compacted output is sealed (never read by the compactor again): it is at least
/// three quarters of the target (Iceberg's `min-file-size-bytes` default ratio), or it holds rows
/// of a partial file, which were compacted once already.
pub fn sealed(policy: &CompactionPolicy, output_bytes: u64, holds_partial_rows: bool) -> bool {
    holds_partial_rows || output_bytes >= policy.target_file_bytes / 4 * 3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(prefix: &str, sizes: &[u64]) -> Vec<Candidate> {
        sizes.iter().enumerate().map(|(i, &bytes)| Candidate { key: format!("{prefix}{i:04}"), bytes }).collect()
    }

    fn hour() -> TimePartition {
        TimePartition { dt: "2026-11-22".into(), hr: Some("03".into()) }
    }

    fn policy() -> CompactionPolicy {
        CompactionPolicy { min_files: 4, min_bytes: 1 << 40, target_file_bytes: 1000, max_read_bytes: 5000, ..Default::default() }
    }

    #[test]
    fn open_windows_merge_ingest_files_alone_until_the_partials_make_a_full_file() {
        let (p, h) = (policy(), hour());
        let open = window_end_ms(&h).unwrap() - 1;
        let ingest = files("part-", &[10; 4]);
        assert_eq!(plan(&p, &h, &[], &ingest[..3], false, open), None, "three files: not due");
        let partials = files("compacted-", &[300, 300]);
        let pl = plan(&p, &h, &partials, &ingest, false, open).unwrap();
        assert_eq!((pl.due, pl.partials, pl.merge.len(), pl.read_bytes), (Due::Size, 0, 4, 40), "partials not read");
        let partials = files("compacted-", &[500, 480]);
        let pl = plan(&p, &h, &partials, &ingest, false, open).unwrap();
        assert_eq!((pl.partials, pl.merge.len()), (2, 6), "together they reach the target: one full file");
        assert_eq!(pl.merge[..2], ["compacted-0000", "compacted-0001"], "partials first");
        let many = files("compacted-", &vec![10; p.max_partial_files]);
        assert_eq!(plan(&p, &h, &many[1..], &ingest, false, open).unwrap().partials, 0);
        assert_eq!(plan(&p, &h, &many, &ingest, false, open).unwrap().partials, many.len(), "max_partial_files: merged");
        let legacy = plan(&p, &h, &files("compacted-", &[9000, 9000]), &ingest, true, open).unwrap();
        assert_eq!(legacy.merge.len(), 6, "rows unknown (a state from before tiers): everything, whatever the budget");
    }

    #[test]
    fn a_partition_settles_once_its_window_closed_and_nothing_is_left_or_under_way() {
        let (p, h) = (policy(), hour());
        let closed = window_end_ms(&h).unwrap() + p.grace_seconds as i64 * 1000;
        let idle = PartitionState::default();
        assert!(!settled(&p, &h, &idle, &[], &[], closed - 1), "the window may still get records");
        assert!(settled(&p, &h, &idle, &files("c-", &[300]), &[], closed));
        assert!(!settled(&p, &h, &idle, &files("c-", &[300]), &files("part-", &[1]), closed), "a file to fold in");
        assert!(!settled(&p, &h, &idle, &files("c-", &[300, 300]), &[], closed), "two partials to pack");
        let leased = PartitionState { lease: Some(super::super::Lease { owner: "c".into(), expires_ms: closed + 1 }), ..idle };
        assert!(!settled(&p, &h, &leased, &[], &[], closed) && settled(&p, &h, &leased, &[], &[], closed + 1));
    }

    #[test]
    fn a_closed_window_packs_partials_and_stops_at_the_byte_budget() {
        let (p, h) = (policy(), hour());
        let closed = window_end_ms(&h).unwrap() + p.grace_seconds as i64 * 1000;
        assert_eq!(plan(&p, &h, &files("c-", &[300]), &[], false, closed), None, "one partial file: nothing to pack");
        let pl = plan(&p, &h, &files("c-", &[300, 300]), &[], false, closed).unwrap();
        assert_eq!((pl.due, pl.partials), (Due::Closed, 2));
        let pl = plan(&p, &h, &files("c-", &[2000, 2000, 2000]), &[], false, closed).unwrap();
        assert_eq!((pl.partials, pl.merge.len(), pl.read_bytes), (2, 2, 4000), "the budget, 5000, holds two");
        let pl = plan(&p, &h, &files("c-", &[3000, 2000]), &files("part-", &[10]), false, closed).unwrap();
        assert_eq!((pl.partials, pl.merge.len()), (0, 1), "a backlog over the budget: ingest files first");
        let pl = plan(&p, &h, &files("c-", &[9000, 10]), &[], false, closed).unwrap();
        assert_eq!((pl.merge.len(), pl.read_bytes), (1, 9000), "a file larger than the budget is still merged alone");
    }

    /// A simulated file: its size, and how many times its bytes were rewritten at most.
    type File = (u64, u32);

    /// Grows a partition file by file, compacting whenever due, with outputs as large as their
    /// inputs: no byte is written more than twice, and the visible files stay few.
    #[test]
    fn no_byte_is_rewritten_more_than_twice_however_large_the_partition_grows() {
        let p = CompactionPolicy { min_files: 8, target_file_bytes: 1000, max_read_bytes: 3000, ..policy() };
        let h = hour();
        let end = window_end_ms(&h).unwrap();
        for n in [50usize, 400, 3000] {
            let (mut partials, mut sealed_files, mut ingest): (Vec<File>, Vec<File>, Vec<u64>) = (vec![], vec![], vec![]);
            let (mut written, mut read) = (0u64, 0u64);
            let mut compact = |now: i64, partials: &mut Vec<File>, ingest: &mut Vec<u64>, sealed_files: &mut Vec<File>| {
                while let Some(pl) =
                    plan(&p, &h, &files("c", &partials.iter().map(|f| f.0).collect::<Vec<_>>()), &files("i", ingest), false, now)
                {
                    let taken: Vec<File> = partials.drain(..pl.partials).collect();
                    let n_ingest = pl.merge.len() - pl.partials;
                    let bytes: u64 = taken.iter().map(|f| f.0).sum::<u64>() + ingest.drain(..n_ingest).sum::<u64>();
                    let gen_of = |holds_partials: bool| if holds_partials { 2 } else { 1 };
                    assert!(taken.iter().all(|f| f.1 == 1), "a byte rewritten a third time");
                    read += bytes;
                    written += bytes;
                    // Outputs of up to the target, over the partials' rows first, then the ingest rows.
                    let partial_bytes: u64 = taken.iter().map(|f| f.0).sum();
                    let mut start = 0;
                    while start < bytes {
                        let out = (bytes - start).min(p.target_file_bytes);
                        let file = (out, gen_of(start < partial_bytes));
                        if sealed(&p, out, start < partial_bytes) {
                            sealed_files.push(file)
                        } else {
                            partials.push(file)
                        }
                        start += out;
                    }
                }
            };
            for _ in 0..n {
                ingest.push(7);
                compact(end - 1, &mut partials, &mut ingest, &mut sealed_files);
                assert!(partials.len() <= p.max_partial_files, "partials stay bounded");
            }
            compact(end + p.grace_seconds as i64 * 1000, &mut partials, &mut ingest, &mut sealed_files);
            let total: u64 = sealed_files.iter().chain(&partials).map(|f| f.0).sum();
            assert_eq!(total, 7 * n as u64, "every byte is in exactly one file");
            assert!(ingest.is_empty() && partials.len() <= 1);
            assert!(written <= 2 * total && read <= 2 * total, "n={n}: wrote {written}, read {read} for {total}");
        }
    }
}
