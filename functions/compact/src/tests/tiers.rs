//! The tiers and the byte budget: write amplification bounded however large a partition grows,
//! sealed files never read again, work per invocation bounded, duplicates found by offset.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};

use super::*;

/// Parquet GETs per file name (sealed files keep their names when carried into new versions).
fn reads_by_name(w: &World) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (k, n) in w.store.reads() {
        *out.entry(k.rsplit('/').next().unwrap().to_string()).or_default() += n;
    }
    out
}

fn name(key: &str) -> String {
    key.rsplit('/').next().unwrap().to_string()
}

/// What compaction read and wrote while a partition grew.
#[derive(Debug, Default)]
struct Traffic {
    ingested: usize,
    read: usize,
    written: usize,
    copies: usize,
    compactions: usize,
}

impl World {
    /// Compacts until nothing is due at `clock`'s time, checking after every step that no sealed
    /// file was read and that readers see exactly `rows` rows of partition 0.
    async fn compact_all(&self, c: &Compactor<Arc<MemoryStore>, Arc<MemoryCatalog>>, t: &mut Traffic, rows: i64) {
        for i in 0.. {
            assert!(i < 100, "compaction does not converge");
            let sealed: Vec<String> = self.state().await.sealed.iter().map(|k| name(k)).collect();
            let reads = reads_by_name(self);
            let (r0, w0) = self.store.data_bytes();
            let copies = self.store.copy_count();
            let outcome = c.compact_partition("t", &tp(), &format!("a{}", t.compactions)).await.unwrap().0;
            let (r1, w1) = self.store.data_bytes();
            t.read += r1 - r0;
            t.written += w1 - w0;
            t.copies += self.store.copy_count() - copies;
            let after = reads_by_name(self);
            for s in &sealed {
                assert_eq!(after.get(s), reads.get(s), "sealed file {s} was read again");
            }
            match outcome {
                Outcome::Compacted(r) => {
                    t.compactions += 1;
                    assert!(r.bytes_in <= c.config.compaction.max_read_bytes || r.files_in == 1, "{r:?}");
                }
                Outcome::NotDue => break,
                Outcome::Busy => panic!("busy"),
            }
            assert_eq!(self.visible().await, expected(&[(0, 0..rows)]));
        }
    }
}

fn clocked(w: &World, at: i64) -> (Arc<AtomicI64>, Compactor<Arc<MemoryStore>, Arc<MemoryCatalog>>) {
    let clock = Arc::new(AtomicI64::new(at));
    let c = w.compactor_on(&clock);
    (clock, c)
}

/// Grows one open partition by `files` ingest files of `rows` records, compacting after each as
/// the bucket's events would, then closes its window.
async fn grow(files: i64, rows: i64, change: impl FnOnce(&mut Config)) -> (World, Traffic) {
    let w = world_with(4, at_t0, change);
    let (clock, c) = clocked(&w, at_t0());
    let mut t = Traffic::default();
    for i in 0..files {
        let before = w.store.data_bytes().1;
        w.ingest(0, i * rows, rows).await;
        t.ingested += w.store.data_bytes().1 - before;
        w.compact_all(&c, &mut t, (i + 1) * rows).await;
    }
    clock.store(LATER, Ordering::SeqCst);
    w.compact_all(&c, &mut t, files * rows).await;
    (w, t)
}

async fn final_bytes(w: &World) -> usize {
    let s = w.state().await;
    let mut n = 0;
    for k in &s.compacted {
        n += w.store.get(k).await.unwrap().unwrap().body.len();
    }
    assert!(w.store.list(&s.location).await.unwrap().iter().all(|m| !is_ingest_file(&m.key)), "all folded in");
    n
}

#[tokio::test]
async fn write_amplification_stays_under_two_as_a_partition_grows_file_by_file() {
    let mut seen = Vec::new();
    for files in [40, 160] {
        let (w, t) = grow(files, 300, |c| c.compaction.target_file_bytes = 24 << 10).await;
        let fin = final_bytes(&w).await;
        let s = w.state().await;
        let (read, write) = (t.read as f64 / t.ingested as f64, t.written as f64 / fin as f64);
        seen.push((files, read, write, t.compactions, s.compacted.len(), s.sealed.len(), t.copies));
        // Each ingested byte is rewritten at most twice: once into a partial file, once into a
        // sealed one. So compaction writes at most twice what it leaves, and reads the ingest
        // files once and the partial files once (plus footers: these ingest files are tiny).
        assert!(write <= 2.0, "{seen:?}");
        assert!(t.read as f64 <= 1.5 * (t.ingested + t.written) as f64, "{seen:?}");
        assert!(s.sealed.len() >= 2 && t.copies > 0, "full files are sealed and carried by copy: {seen:?}");
        let target = w.compactor.config.compaction.target_file_bytes as usize;
        assert!(s.compacted.len() <= fin / (target / 2) + 2, "few files, near the target: {seen:?} {fin}");
    }
    // Flat as the partition grows (rewriting everything each time, both would grow with it).
    assert!(seen[1].1 <= seen[0].1 * 1.1 && seen[1].2 <= seen[0].2 * 1.1, "{seen:?}");
}

#[tokio::test]
async fn a_partition_larger_than_the_budget_is_compacted_over_several_invocations_exactly_once() {
    // Twenty files of about 4 KB, a budget of about four: no single invocation may take them all.
    let w = world_with(100, later, |c| {
        c.compaction.target_file_bytes = 8 << 10;
        c.compaction.max_read_bytes = 16 << 10;
    });
    for i in 0..20 {
        w.ingest(0, i * 300, 300).await;
    }
    let mut t = Traffic::default();
    let (_, c) = clocked(&w, LATER);
    // Checks after every invocation: each read at most its budget, readers saw every row once.
    w.compact_all(&c, &mut t, 20 * 300).await;
    assert!(t.compactions >= 5, "{t:?}");
    let s = w.state().await;
    let fin = final_bytes(&w).await;
    assert!(s.compacted.len() <= fin / (4 << 10) + 2, "the final passes packed the partial files: {fin} {:?}", s.compacted);
}

#[tokio::test]
async fn late_and_retried_files_are_deduplicated_by_the_compacted_offsets_without_reading_those_files() {
    let w = world(2, at_t0);
    w.ingest(0, 0, 300).await;
    let first = current_files(&w).await.pop().unwrap();
    let body = w.store.get(&first).await.unwrap().unwrap().body;
    w.ingest(0, 300, 300).await;
    let Outcome::Compacted(_) = w.compact("c1").await.unwrap().0 else { panic!() };
    let compacted = w.state().await.compacted.clone();
    assert_eq!(compacted.len(), 1);
    // A retried batch with other boundaries (offsets 0..299 again, under another name), written
    // by an ingest that read the state before the switch, and a new batch.
    let location = w.state().await.location;
    let again = format!("{location}part-t~0~00000000000000000000~00000000000000000299-retry.parquet");
    w.store.put(&again, body, tributary_aws::Precondition::None).await.unwrap();
    w.ingest(0, 600, 300).await;
    let before = reads_by_name(&w);
    let Outcome::Compacted(r) = w.compact("c2").await.unwrap().0 else { panic!() };
    assert_eq!((r.files_in, r.duplicates_removed, r.rows_out), (2, 300, 300), "{r:?}");
    assert_eq!(reads_by_name(&w).get(&name(&compacted[0])), before.get(&name(&compacted[0])), "the partial file was not read");
    assert_eq!(w.visible().await, expected(&[(0, 0..900)]));
}

/// Seed 604 of the fault campaign: an ingest file's name gives the offset range of its batch, and
/// can name offsets whose rows another file holds (a retry with other boundaries). When the byte
/// budget merges the first file and leaves the other for later, the other's rows must not be
/// taken for duplicates: the merge de-duplicates against the rows compacted files hold, not
/// against the ranges their inputs' names gave.
#[tokio::test]
async fn a_row_named_by_a_merged_files_range_but_held_by_a_file_left_for_later_is_kept() {
    let w = world_with(100, later, |c| {
        c.compaction.target_file_bytes = 8 << 10;
        c.compaction.max_read_bytes = 1; // one file per compaction
    });
    w.ingest(0, 3, 1).await;
    w.ingest(0, 4, 3).await;
    let loc = w.state().await.location;
    let (from, to) = (
        format!("{loc}part-t~0~00000000000000000004~00000000000000000006.parquet"),
        format!("{loc}part-t~0~00000000000000000002~00000000000000000006.parquet"),
    );
    let body = w.store.get(&from).await.unwrap().unwrap().body;
    w.store.put(&to, body, tributary_aws::Precondition::None).await.unwrap();
    w.store.delete(&from).await.unwrap();
    for i in 0.. {
        assert!(i < 10, "does not converge");
        let outcome = w.compact(&format!("c{i}")).await.unwrap().0;
        assert_eq!(w.visible().await, expected(&[(0, 3..7)]), "after compaction {i}");
        if outcome == Outcome::NotDue {
            break;
        }
    }
    assert!(w.state().await.held.is_some());
}

#[tokio::test]
async fn a_state_from_before_the_tiers_has_everything_merged_once() {
    let w = world(2, later);
    w.ingest(0, 0, 10).await;
    w.ingest(0, 10, 10).await;
    w.compact("c1").await.unwrap();
    // What the state looked like before tiers: no record of the rows its compacted files hold.
    let (mut s, etag) = w.compactor.load_state("t", &tp()).await.unwrap();
    s.held = None;
    w.compactor.save_state("t", &tp(), &s, etag.as_deref()).await.unwrap().unwrap();
    w.ingest(0, 20, 5).await;
    let Outcome::Compacted(r) = w.compact("c2").await.unwrap().0 else { panic!() };
    assert_eq!((r.files_in, r.rows_out), (2, 25), "the compacted file is merged with the new one: {r:?}");
    assert!(w.state().await.held.is_some_and(|h| (0..25).all(|o| h.contains("t", 0, o))));
    assert_eq!(w.visible().await, expected(&[(0, 0..25)]));
}
