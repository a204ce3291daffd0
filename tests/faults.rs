//! The fault-injection campaign: the real handlers against S3 and Glue APIs (moto) on 127.0.0.1,
//! with faults injected at every call (`support/faults.rs`) and crashes at every compaction step,
//! on randomized but seeded schedules:
//!
//! - the event source mapping retries failed batches, with the same or other boundaries, runs a
//!   retry while the first attempt is still going, loses commits and delivers overlapping batches,
//!   also two at once to two instances (a consumer-group rebalance);
//! - S3's `Object Created` events reach the catalog and the compactor duplicated, delayed and
//!   reordered, and failed invocations are retried;
//! - two compactions and two catalog updates race; compactors die at every step, holding their
//!   lease or half-way through a switch; the clock moves past leases and windows;
//! - functions start cold (no warm caches) at random.
//!
//! After every step, what Athena would read (the Glue partitions' locations, listed as Athena
//! lists them) is read with an unfaulted client: no record twice, none that was visible ever
//! gone, every committed record of a registered partition there. After the schedule settles (faults
//! off, events drained, windows closed, sweeps run): every good record exactly once in the table,
//! every bad one in the dead-letter area, tombstones nowhere.
//!
//! `TRIBUTARY_FAULT_SCHEDULES` (default 1,000) and `TRIBUTARY_FAULT_SEED` (default 1) choose the
//! schedules; `scripts/faults.sh` runs a longer campaign. A failure names its seed: rerun it with
//! `TRIBUTARY_FAULT_SCHEDULES=1 TRIBUTARY_FAULT_SEED=<seed>`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use tributary_aws::Instrumented;

use aws_lambda_events::event::kafka::KafkaEvent;
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tributary_aws::{GlueCatalog, ObjectRead, S3Store};
use tributary_catalog::CatalogFn;
use tributary_compact::{Compactor, CrashPoint};
use tributary_core::Config;
use tributary_core::compaction::PartitionState;
use tributary_core::config::Granularity;
use tributary_core::ingest::dead_letter::DeadLetter;
use tributary_core::layout::time_partition::TimePartition;
use tributary_core::testing::events::{SampleRecord, build_event, event_bytes};
use tributary_ingest::Ingest;
use tributary_local::pipeline::object_created;
use tributary_tests::faults::{Fault, Faults, Faulty};
use tributary_tests::{Moto, Role};

const T0: i64 = 1_795_316_400_000; // 2026-11-22T03:00:00Z
const TOPIC: &str = "orders";

type Store = Faulty<S3Store>;
type Catalog = Faulty<GlueCatalog>;

/// One Kafka record of the schedule's topic.
#[derive(Debug, Clone)]
struct Rec {
    partition: i32,
    offset: i64,
    ts: i64,
    value: Option<Vec<u8>>,
    /// Lands in the table (else in the dead-letter area, or nowhere for a tombstone).
    good: bool,
    /// What its row's `_rescued_data` must hold.
    rescued: Option<String>,
}

/// Values no table can take: dead-lettered.
const BAD_VALUES: [&[u8]; 4] = [b"{\"id\": 1, \"amount\":", b"[1, 2, 3]", b"\xff\xfe{\"id\": 1}", b"{\"id\": NaN}"];

/// The topic's records: good ones, bad ones and tombstones, timestamps over three hours, some late.
fn records(rng: &mut fastrand::Rng) -> Vec<Vec<Rec>> {
    (0..rng.i32(1..=2))
        .map(|p| {
            (0..rng.i64(4..=14))
                .map(|o| {
                    let ts = if rng.u8(0..100) < 15 { T0 + rng.i64(0..3 * 3_600_000) } else { T0 + o * 13 * 60_000 };
                    let roll = rng.u8(0..100);
                    let good = format!(r#""id": {o}, "p": {p}, "amount": {}, "note": "order {p}-{o}""#, o * 3 + 1);
                    // Fields no column stores, whatever came first: rescued, the rest of the row kept.
                    let (value, good, rescued) = match roll {
                        0..8 => (Some(BAD_VALUES[rng.usize(0..BAD_VALUES.len())].to_vec()), false, None),
                        8..12 => (None, false, None),
                        12..15 => {
                            (Some(format!(r#"{{{good}, "tags": [1, "x"]}}"#).into_bytes()), true, Some(r#"{"tags":[1, "x"]}"#))
                        }
                        15..18 => (Some(format!(r#"{{"id": -1, {good}}}"#).into_bytes()), true, Some(r#"{"id":-1}"#)),
                        _ => (Some(format!("{{{good}}}").into_bytes()), true, None),
                    };
                    Rec { partition: p, offset: o, ts, value, good, rescued: rescued.map(String::from) }
                })
                .collect()
        })
        .collect()
}

fn event(slices: &[&[Rec]]) -> KafkaEvent {
    let mut out = KafkaEvent::default();
    out.event_source = Some("aws:kafka".into());
    for recs in slices.iter().filter(|s| !s.is_empty()) {
        let sample: Vec<SampleRecord> =
            recs.iter().map(|r| (r.offset, r.ts, Some(b"k".as_slice()), r.value.as_deref(), &[][..])).collect();
        out.records.extend(build_event("aws:kafka", TOPIC, recs[0].partition, &sample).records);
    }
    out
}

/// What one schedule did.
#[derive(Debug, Default)]
struct Tally {
    records: usize,
    good: usize,
    bad: usize,
    /// Rows checked to carry their rescued fields.
    rescued: usize,
    tombstones: usize,
    steps: usize,
    ingest_calls: usize,
    ingest_failures: usize,
    /// Two invocations at once on overlapping batches of one partition.
    rebalances: usize,
    catalog_calls: usize,
    compact_calls: usize,
    compactions: usize,
    /// Compacted files sealed, and files carried into a new version by copy (sealed files, and
    /// what a byte budget left for the next invocation).
    sealed: usize,
    carried: usize,
    crashes: usize,
    observations: usize,
    dead_letter_duplicates: usize,
    /// Good records missing from the settled table, and rows Athena saw twice at any step: each
    /// fails the schedule, so a finished campaign reports 0 for both.
    lost: usize,
    duplicated: usize,
    faults: BTreeMap<(Fault, &'static str), u64>,
    calls: u64,
}

impl Tally {
    fn count_compactions(&mut self, r: &tributary_compact::CompactResponse) {
        self.compactions += r.compacted.len();
        self.sealed += r.compacted.iter().map(|p| p.sealed_out).sum::<usize>();
        self.carried += r.compacted.iter().map(|p| p.carried).sum::<usize>();
    }
}

/// The stores and catalogs of the three functions, each on clients of its own role.
struct Functions {
    ingest: Store,
    compact: Store,
    catalog: Store,
    compact_glue: Catalog,
    catalog_glue: Catalog,
}

impl Functions {
    fn new(moto: &Moto, bucket: &str, database: &str, faults: &Arc<Faults>) -> Functions {
        let store = |role| Faulty { inner: S3Store::new(moto.s3_as(role), bucket), faults: faults.clone() };
        let glue = |role| Faulty { inner: GlueCatalog::new(moto.glue_as(role), database), faults: faults.clone() };
        Functions {
            ingest: store(Role::Ingest),
            compact: store(Role::Compact),
            catalog: store(Role::Catalog),
            compact_glue: glue(Role::Compact),
            catalog_glue: glue(Role::Catalog),
        }
    }
}

struct Schedule {
    seed: u64,
    rng: fastrand::Rng,
    config: Config,
    /// Each function's view: its own SDK clients, recorded for the IAM check, one fault schedule.
    fns: Functions,
    faults: Arc<Faults>,
    /// Unfaulted views, for the observer.
    clean: S3Store,
    glue: aws_sdk_glue::Client,
    recs: Vec<Vec<Rec>>,
    /// The event source mapping's committed offset, per partition.
    committed: Vec<i64>,
    ingest: Ingest<Store>,
    catalog_fn: CatalogFn<Store, Catalog>,
    /// `Object Created` events waiting for each target (EventBridge delivers to both).
    to_catalog: Vec<String>,
    to_compact: Vec<String>,
    visible: BTreeSet<(i32, i64)>,
    files: HashMap<String, Vec<Row>>,
    /// The `_rescued_data` of every row seen.
    rescued: HashMap<(i32, i64), Option<String>>,
    attempts: usize,
    /// The schedule's clock (milliseconds), which the compactors read.
    clock: Arc<AtomicI64>,
    tally: Tally,
}

impl Schedule {
    async fn new(moto: &Moto, s3: &aws_sdk_s3::Client, seed: u64) -> Schedule {
        let mut rng = fastrand::Rng::with_seed(seed);
        let bucket = format!("faults-{seed}");
        s3.create_bucket().bucket(&bucket).send().await.expect("bucket created");
        let mut config = Config { bucket: bucket.clone(), database: format!("faults_{seed}"), ..Config::default() };
        config.granularity = Granularity::Hour;
        config.compaction.min_files = rng.usize(2..=4);
        // Small targets and budgets (ingest files here are a few KB): partitions seal files,
        // carry them by copy, and take several invocations, so crashes fall between increments.
        config.compaction.target_file_bytes = rng.u64(6 << 10..=24 << 10);
        config.compaction.max_read_bytes = config.compaction.target_file_bytes * rng.u64(1..=3);
        config.compaction.max_partial_files = rng.usize(2..=16);
        let faults = Arc::new(Faults::new(seed, rng.u32(20..=150), &config.table_prefix));
        let fns = Functions::new(moto, &bucket, &config.database, &faults);
        let recs = records(&mut rng);
        let tally = Tally {
            records: recs.iter().map(Vec::len).sum(),
            good: recs.iter().flatten().filter(|r| r.good).count(),
            bad: recs.iter().flatten().filter(|r| r.value.is_some() && !r.good).count(),
            tombstones: recs.iter().flatten().filter(|r| r.value.is_none()).count(),
            ..Tally::default()
        };
        let clock = Arc::new(AtomicI64::new(T0 + rng.i64(0..3_600_000)));
        let ingest = {
            let clock = clock.clone();
            Ingest::new(fns.ingest.clone(), config.clone())
                .with_clock(move || clock.load(Ordering::SeqCst))
                .with_metrics_sink(|_| {})
                .without_claim_waits()
        };
        Schedule {
            clock,
            seed,
            committed: vec![0; recs.len()],
            ingest,
            catalog_fn: CatalogFn::new(fns.catalog.clone(), fns.catalog_glue.clone(), config.clone()).with_metrics_sink(|_| {}),
            clean: S3Store::new(s3.clone(), &bucket),
            glue: moto.glue_client(),
            rng,
            config,
            fns,
            faults,
            recs,
            to_catalog: Vec::new(),
            to_compact: Vec::new(),
            visible: BTreeSet::new(),
            files: HashMap::new(),
            rescued: HashMap::new(),
            attempts: 0,
            tally,
        }
    }

    /// An ingest instance (a cold start, or a second instance of the function) on the schedule's
    /// clock, which its offset claims are judged by.
    fn ingest_fn(&self) -> Ingest<Store> {
        let clock = self.clock.clone();
        Ingest::new(self.fns.ingest.clone(), self.config.clone())
            .with_clock(move || clock.load(Ordering::SeqCst))
            .with_metrics_sink(|_| {})
            .without_claim_waits()
    }

    fn compactor(&mut self) -> Compactor<Store, Catalog> {
        let c = Compactor::new(self.fns.compact.clone(), self.fns.compact_glue.clone(), self.config.clone())
            .with_clock({
                let clock = self.clock.clone();
                move || clock.load(Ordering::SeqCst)
            })
            .with_metrics_sink(|_| {});
        if self.faults.per_mille.load(Ordering::Relaxed) > 0 && self.rng.u8(0..100) < 15 {
            c.crash_at(Some(CrashPoint::ALL[self.rng.usize(0..CrashPoint::ALL.len())]));
            self.tally.crashes += 1;
        }
        c
    }

    fn trace(&self, what: impl std::fmt::Display) {
        if std::env::var_os("TRIBUTARY_FAULT_TRACE").is_some() {
            eprintln!("[seed {} t={}] {what}", self.seed, (self.clock.load(Ordering::SeqCst) - T0) / 1000);
        }
    }

    fn attempt(&mut self) -> String {
        self.attempts += 1;
        format!("attempt{}", self.attempts)
    }

    /// The next batch of a partition, as the event source mapping reads it: from the committed
    /// offset (or, after a lost commit or rebalance, from a little before), up to 8 records.
    fn batch(&mut self, p: usize) -> std::ops::Range<usize> {
        let mut start = self.committed[p] as usize;
        if start > 0 && self.rng.u8(0..100) < 15 {
            start -= self.rng.usize(1..=start.min(4));
        }
        let end = (start + self.rng.usize(1..=8)).min(self.recs[p].len());
        start..end
    }

    fn pending(&self) -> Vec<usize> {
        (0..self.recs.len()).filter(|&p| (self.committed[p] as usize) < self.recs[p].len()).collect()
    }

    fn collect_events(&mut self) {
        let keys = self.faults.take_events();
        self.to_catalog.extend(keys.iter().cloned());
        self.to_compact.extend(keys);
    }

    /// One invocation of ingest for the given batches; commits them when it succeeds (but for a
    /// lost commit, which makes the mapping deliver them again).
    async fn ingest_once(&mut self, batches: Vec<(usize, std::ops::Range<usize>)>) {
        let slices: Vec<&[Rec]> = batches.iter().map(|(p, r)| &self.recs[*p][r.clone()]).collect();
        let ev = event(&slices);
        self.tally.ingest_calls += 1;
        let r = self.ingest.handle(&event_bytes(&ev), None).await;
        self.trace(format_args!("ingest {batches:?}: {:?}", r.as_ref().map(|r| &r.total.objects)));
        let ok = r.is_ok();
        self.commit(ok, &batches);
    }

    fn commit(&mut self, ok: bool, batches: &[(usize, std::ops::Range<usize>)]) {
        if !ok {
            self.tally.ingest_failures += 1;
            return;
        }
        if self.faults.per_mille.load(Ordering::Relaxed) > 0 && self.rng.u8(0..100) < 10 {
            return; // the commit is lost
        }
        for (p, r) in batches {
            self.committed[*p] = self.committed[*p].max(r.end as i64);
        }
    }

    /// One step; `false` when it cannot have changed what Athena reads.
    async fn step(&mut self) -> bool {
        self.tally.steps += 1;
        let pending = self.pending();
        match self.rng.u8(0..100) {
            0..30 if !pending.is_empty() => {
                // One batch per partition in the event, one or all partitions.
                let chosen: Vec<usize> =
                    if self.rng.bool() { pending.clone() } else { vec![pending[self.rng.usize(0..pending.len())]] };
                let batches = chosen.into_iter().map(|p| (p, self.batch(p))).collect();
                self.ingest_once(batches).await;
            }
            30..36 if pending.len() > 1 => {
                // Partitions are processed concurrently (each in order, one invocation at a time:
                // the mapping's contract), by two instances of the function.
                let (p, q) = (pending[0], pending[1]);
                let (a, b) = (self.batch(p), self.batch(q));
                let twin = self.ingest_fn();
                let (ea, eb) = (event(&[&self.recs[p][a.clone()]]), event(&[&self.recs[q][b.clone()]]));
                let (ba, bb) = (event_bytes(&ea), event_bytes(&eb));
                let (ra, rb) = tokio::join!(self.ingest.handle(&ba, None), twin.handle(&bb, None));
                self.trace(format_args!(
                    "ingest concurrently {p}:{a:?} {q}:{b:?}: {:?} {:?}",
                    ra.as_ref().map(|r| &r.total.objects),
                    rb.as_ref().map(|r| &r.total.objects)
                ));
                self.tally.ingest_calls += 2;
                self.commit(ra.is_ok(), &[(p, a)]);
                self.commit(rb.is_ok(), &[(q, b)]);
            }
            30..36 if !pending.is_empty() && self.rng.bool() => {
                // A consumer-group rebalance: two invocations at once on overlapping batches of
                // one partition (the old poller's and the new one's). Claims keep every row
                // visible once; the loser fails and is retried.
                let p = pending[self.rng.usize(0..pending.len())];
                let (a, b) = (self.batch(p), self.batch(p));
                let twin = self.ingest_fn();
                let (ea, eb) = (event(&[&self.recs[p][a.clone()]]), event(&[&self.recs[p][b.clone()]]));
                let (ba, bb) = (event_bytes(&ea), event_bytes(&eb));
                let (ra, rb) = tokio::join!(self.ingest.handle(&ba, None), twin.handle(&bb, None));
                self.trace(format_args!(
                    "rebalance {p}:{a:?} {p}:{b:?}: {:?} {:?}",
                    ra.as_ref().map(|r| &r.total.objects),
                    rb.as_ref().map(|r| &r.total.objects)
                ));
                self.tally.ingest_calls += 2;
                self.tally.rebalances += 1;
                self.commit(ra.is_ok(), &[(p, a)]);
                self.commit(rb.is_ok(), &[(p, b)]);
            }
            30..36 if !pending.is_empty() => {
                // A batch delivered twice in a row (a lost answer), then with other boundaries.
                let p = pending[0];
                let a = self.batch(p);
                self.ingest_once(vec![(p, a.clone())]).await;
                self.ingest_once(vec![(p, a)]).await;
            }
            36..50 if !self.to_catalog.is_empty() => {
                let i = self.rng.usize(0..self.to_catalog.len());
                let ev = object_created(&self.config.bucket, &self.to_catalog[i]);
                if self.rng.u8(0..100) < 20 {
                    // Two catalog updates race on events of the same table.
                    let j = self.rng.usize(0..self.to_catalog.len());
                    let ev2 = object_created(&self.config.bucket, &self.to_catalog[j]);
                    let twin = CatalogFn::new(self.fns.catalog.clone(), self.fns.catalog_glue.clone(), self.config.clone())
                        .with_metrics_sink(|_| {});
                    let (ra, rb) = tokio::join!(self.catalog_fn.handle(&ev), twin.handle(&ev2));
                    self.trace(format_args!("catalog twins: {:?} {:?}", ra, rb));
                    self.tally.catalog_calls += 2;
                    remove_delivered(&mut self.to_catalog, [(ra.is_ok(), i), (rb.is_ok(), j)]);
                } else {
                    self.tally.catalog_calls += 1;
                    // A delivered event may come again (at-least-once).
                    let r = self.catalog_fn.handle(&ev).await;
                    self.trace(format_args!("catalog {}: {r:?}", self.to_catalog[i]));
                    if r.is_ok() && self.rng.u8(0..100) >= 15 {
                        self.to_catalog.remove(i);
                    }
                }
            }
            50..64 if !self.to_compact.is_empty() => {
                let i = self.rng.usize(0..self.to_compact.len());
                let ev = object_created(&self.config.bucket, &self.to_compact[i]);
                let c = self.compactor();
                let attempt = self.attempt();
                if self.rng.u8(0..100) < 25 {
                    // Two compactions race (the same event twice, or two files of a partition).
                    let j = self.rng.usize(0..self.to_compact.len());
                    let ev2 = object_created(&self.config.bucket, &self.to_compact[j]);
                    let c2 = self.compactor();
                    let attempt2 = self.attempt();
                    let (ra, rb) = tokio::join!(c.handle(&ev, &attempt), c2.handle(&ev2, &attempt2));
                    self.trace(format_args!("compact twins: {ra:?} {rb:?}"));
                    self.tally.compact_calls += 2;
                    for r in [&ra, &rb].into_iter().flatten() {
                        self.tally.count_compactions(r);
                    }
                    remove_delivered(&mut self.to_compact, [(ra.is_ok(), i), (rb.is_ok(), j)]);
                } else {
                    self.tally.compact_calls += 1;
                    let r = c.handle(&ev, &attempt).await;
                    self.trace(format_args!("compact {attempt}: {r:?}"));
                    if let Ok(r) = r {
                        self.tally.count_compactions(&r);
                        if self.rng.u8(0..100) >= 15 {
                            self.to_compact.remove(i);
                        }
                    }
                }
            }
            64..78 => {
                // Ingest, catalog and compaction at once: the races between the functions.
                let batch = (!pending.is_empty()).then(|| pending[self.rng.usize(0..pending.len())]).map(|p| (p, self.batch(p)));
                let cat_i = (!self.to_catalog.is_empty()).then(|| self.rng.usize(0..self.to_catalog.len()));
                let comp_i = (!self.to_compact.is_empty() && self.rng.bool()).then(|| self.rng.usize(0..self.to_compact.len()));
                let c = self.compactor();
                let attempt = self.attempt();
                let ingest_ev = batch.as_ref().map(|(p, r)| event(&[&self.recs[*p][r.clone()]]));
                let cat_ev = cat_i.map(|i| object_created(&self.config.bucket, &self.to_catalog[i]));
                let comp_ev = comp_i.map_or_else(
                    || serde_json::json!({"tributary": "sweep"}),
                    |i| object_created(&self.config.bucket, &self.to_compact[i]),
                );
                let (ri, rk, rc) = tokio::join!(
                    async {
                        match ingest_ev {
                            Some(e) => Some(self.ingest.handle(&event_bytes(&e), None).await),
                            None => None,
                        }
                    },
                    async {
                        match &cat_ev {
                            Some(e) => Some(self.catalog_fn.handle(e).await),
                            None => None,
                        }
                    },
                    c.handle(&comp_ev, &attempt),
                );
                self.trace(format_args!(
                    "race: ingest {batch:?} {:?} / catalog {:?} / compact {attempt} {rc:?}",
                    ri.as_ref().map(|r| r.as_ref().map(|r| &r.total.objects)),
                    rk
                ));
                if let (Some((p, r)), Some(res)) = (batch, ri) {
                    self.tally.ingest_calls += 1;
                    self.commit(res.is_ok(), &[(p, r)]);
                }
                if let (Some(i), Some(Ok(_))) = (cat_i, &rk) {
                    self.to_catalog.remove(i);
                }
                self.tally.catalog_calls += usize::from(rk.is_some());
                self.tally.compact_calls += 1;
                if let Ok(r) = rc {
                    self.tally.count_compactions(&r);
                    if let Some(i) = comp_i {
                        self.to_compact.remove(i);
                    }
                }
            }
            78..85 => {
                let c = self.compactor();
                let attempt = self.attempt();
                self.tally.compact_calls += 1;
                let r = c.handle(&serde_json::json!({"tributary": "sweep"}), &attempt).await;
                self.trace(format_args!("sweep {attempt}: {r:?}"));
                if let Ok(r) = r {
                    self.tally.count_compactions(&r);
                }
            }
            85..93 => {
                self.clock.fetch_add(self.rng.i64(0..20 * 60_000), Ordering::SeqCst);
                return false;
            }
            _ => {
                // Cold starts: the functions lose what they cached.
                self.ingest = self.ingest_fn();
                self.catalog_fn = CatalogFn::new(self.fns.catalog.clone(), self.fns.catalog_glue.clone(), self.config.clone())
                    .with_metrics_sink(|_| {});
                return false;
            }
        }
        self.collect_events();
        true
    }

    /// Faults off; every batch delivered, every event handled, windows closed, sweeps run.
    async fn settle(&mut self) {
        self.faults.per_mille.store(0, Ordering::SeqCst);
        // Past every invocation's deadline: the claims of writers that died before their put
        // are void (a live writer would have finished by then).
        self.clock.fetch_add(tributary_core::ingest::claims::DEFAULT_CLAIM_MS + 1, Ordering::SeqCst);
        while !self.pending().is_empty() {
            for p in self.pending() {
                let start = self.committed[p] as usize;
                let end = (start + self.rng.usize(1..=8)).min(self.recs[p].len());
                self.ingest_once(vec![(p, start..end)]).await;
            }
            self.collect_events();
        }
        for key in std::mem::take(&mut self.to_catalog) {
            self.tally.catalog_calls += 1;
            self.catalog_fn.handle(&object_created(&self.config.bucket, &key)).await.expect("catalog without faults");
        }
        // Past every lease, closing and window's grace.
        self.clock.fetch_add(6 * 3_600_000, Ordering::SeqCst);
        for key in std::mem::take(&mut self.to_compact) {
            let attempt = self.attempt();
            self.tally.compact_calls += 1;
            let c = self.compactor();
            let r = c.handle(&object_created(&self.config.bucket, &key), &attempt).await.expect("compact");
            self.trace(format_args!("settle: compact {attempt}: {r:?}"));
            self.tally.count_compactions(&r);
        }
        for _ in 0..2 {
            let attempt = self.attempt();
            self.tally.compact_calls += 1;
            let c = self.compactor();
            let r = c.handle(&serde_json::json!({"tributary": "sweep"}), &attempt).await.expect("sweep");
            self.trace(format_args!("settle: sweep {attempt}: {r:?}"));
            self.tally.count_compactions(&r);
        }
        self.collect_events();
        for key in std::mem::take(&mut self.to_catalog) {
            self.catalog_fn.handle(&object_created(&self.config.bucket, &key)).await.expect("catalog without faults");
        }
    }

    /// The Glue partitions of the table: values and location.
    async fn registered(&self) -> Vec<(Vec<String>, String)> {
        let out = self.glue.get_partitions().database_name(&self.config.database).table_name(TOPIC).send().await;
        let partitions = match out {
            Ok(o) => o.partitions.unwrap_or_default(),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_entity_not_found_exception()) => return Vec::new(),
            Err(e) => panic!("seed {}: GetPartitions: {e:?}", self.seed),
        };
        partitions
            .into_iter()
            .map(|p| {
                let loc = p.storage_descriptor.and_then(|s| s.location).unwrap_or_default();
                (p.values.unwrap_or_default(), loc)
            })
            .collect()
    }

    /// What Athena reads now: every file under each registered partition's location (files
    /// whose names start with `_` or `.` excepted, as Athena does), as (partition, offset) rows.
    async fn observe(&mut self, label: &str) {
        self.tally.observations += 1;
        let seed = self.seed;
        let prefix = format!("s3://{}/", self.config.bucket);
        let mut rows: Vec<(i32, i64)> = Vec::new();
        let mut read: Vec<String> = Vec::new();
        let registered = self.registered().await;
        for (_, location) in &registered {
            let dir = location.strip_prefix(&prefix).unwrap_or_else(|| panic!("seed {seed}: location {location}"));
            for m in self.clean.list(dir).await.expect("list") {
                let name = m.key.rsplit('/').next().unwrap_or_default();
                if name.starts_with('_') || name.starts_with('.') {
                    continue;
                }
                if !self.files.contains_key(&m.key) {
                    let body = self.clean.get(&m.key).await.expect("get").expect("listed object").body;
                    self.files.insert(m.key.clone(), offsets(seed, &m.key, body));
                }
                for (row, rescued) in &self.files[&m.key] {
                    rows.push(*row);
                    self.rescued.insert(*row, rescued.clone());
                }
                read.push(m.key.clone());
            }
        }
        let now: BTreeSet<(i32, i64)> = rows.iter().copied().collect();
        self.tally.duplicated += rows.len() - now.len();
        assert_eq!(
            now.len(),
            rows.len(),
            "seed {seed}, {label}: Athena would see a row twice: {:?} in {read:#?}",
            duplicates(&rows)
        );
        let gone: Vec<_> = self.visible.difference(&now).collect();
        assert!(gone.is_empty(), "seed {seed}, {label}: rows that were visible are gone: {gone:?}; Athena reads {read:#?}");
        let registered: BTreeSet<Vec<String>> = registered.into_iter().map(|(v, _)| v).collect();
        for p in 0..self.recs.len() {
            for r in &self.recs[p][..self.committed[p] as usize] {
                let tp = TimePartition::from_millis(r.ts, Granularity::Hour).values();
                if r.good && registered.contains(&tp) {
                    assert!(
                        now.contains(&(r.partition, r.offset)),
                        "seed {seed}, {label}: committed record {}:{} of registered partition {tp:?} is not visible",
                        r.partition,
                        r.offset
                    );
                }
            }
        }
        for (p, o) in &now {
            assert!(self.recs[*p as usize][*o as usize].good, "seed {seed}, {label}: a bad record {p}:{o} is in the table");
        }
        self.visible = now;
    }

    /// The settled state: each good record once in the table, each bad one in the dead-letter area.
    async fn check_settled(&mut self) {
        let seed = self.seed;
        self.observe("settled").await;
        let good: BTreeSet<(i32, i64)> = self.recs.iter().flatten().filter(|r| r.good).map(|r| (r.partition, r.offset)).collect();
        let missing: Vec<_> = good.difference(&self.visible).collect();
        self.tally.lost = missing.len();
        assert!(missing.is_empty(), "seed {seed}: good records not in the table: {missing:?}");
        for r in self.recs.iter().flatten().filter(|r| r.good) {
            let got = &self.rescued[&(r.partition, r.offset)];
            assert_eq!(got, &r.rescued, "seed {seed}: the rescued data of {}:{}", r.partition, r.offset);
            self.tally.rescued += usize::from(got.is_some());
        }
        // Every registered partition points where its state says (no stale location left).
        for (values, location) in self.registered().await {
            let tp = TimePartition { dt: values[0].clone(), hr: values.get(1).cloned() };
            let key = tributary_core::layout::state_key(&self.config, TOPIC, &tp);
            let state: Option<tributary_aws::Versioned<PartitionState>> =
                tributary_aws::get_json(&self.clean, &key).await.expect("state read");
            let want = state.map_or_else(|| PartitionState::initial(&self.config, TOPIC, &tp), |v| v.value);
            assert_eq!(location, format!("s3://{}/{}", self.config.bucket, want.location), "seed {seed}: {values:?}");
        }
        let mut letters: Vec<(i32, i64)> = Vec::new();
        for m in self.clean.list(&self.config.dead_letter_prefix).await.expect("list dead letters") {
            let body = self.clean.get(&m.key).await.expect("get").expect("listed").body;
            for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let d: DeadLetter = serde_json::from_slice(line).unwrap_or_else(|e| panic!("seed {seed}: {}: {e}", m.key));
                let rec = &self.recs[d.partition as usize][d.offset as usize];
                assert_eq!(d.value().as_deref(), rec.value.as_deref(), "seed {seed}: raw bytes kept");
                letters.push((d.partition, d.offset));
            }
        }
        let lettered: BTreeSet<(i32, i64)> = letters.iter().copied().collect();
        let bad: BTreeSet<(i32, i64)> =
            self.recs.iter().flatten().filter(|r| r.value.is_some() && !r.good).map(|r| (r.partition, r.offset)).collect();
        assert_eq!(lettered, bad, "seed {seed}: the dead-letter area holds exactly the bad records");
        self.tally.dead_letter_duplicates = letters.len() - lettered.len();
        self.tally.faults = self.faults.injected();
        self.tally.calls = self.faults.calls().values().sum();
    }
}

/// Takes the events whose invocation succeeded off a queue (one index may come twice).
fn remove_delivered(queue: &mut Vec<String>, outcomes: [(bool, usize); 2]) {
    let done: BTreeSet<usize> = outcomes.into_iter().filter(|d| d.0).map(|d| d.1).collect();
    for k in done.into_iter().rev() {
        queue.remove(k);
    }
}

fn duplicates(rows: &[(i32, i64)]) -> Vec<(i32, i64)> {
    let mut seen = BTreeSet::new();
    rows.iter().filter(|r| !seen.insert(**r)).copied().collect()
}

/// The (partition, offset) of every row of a Parquet file.
/// A row as the checks see it: its (partition, offset), and its `_rescued_data`.
type Row = ((i32, i64), Option<String>);

/// The rows of a file.
fn offsets(seed: u64, key: &str, body: Bytes) -> Vec<Row> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int32Type, Int64Type};
    let reader = ParquetRecordBatchReaderBuilder::try_new(body)
        .unwrap_or_else(|e| panic!("seed {seed}: Athena would fail on {key}, not Parquet: {e}"))
        .build()
        .expect("reader");
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.expect("batch");
        let p = batch.column_by_name("_kafka_partition").expect("_kafka_partition").as_primitive::<Int32Type>();
        let o = batch.column_by_name("_kafka_offset").expect("_kafka_offset").as_primitive::<Int64Type>();
        let rescued = batch.column_by_name("_rescued_data").map(|c| c.as_string::<i32>().clone());
        for i in 0..batch.num_rows() {
            let text = rescued.as_ref().and_then(|r| arrow_array::Array::is_valid(r, i).then(|| r.value(i).to_string()));
            out.push(((p.value(i), o.value(i)), text));
        }
    }
    out
}

async fn run(moto: &Moto, s3: &aws_sdk_s3::Client, seed: u64) -> Tally {
    let mut s = Schedule::new(moto, s3, seed).await;
    let steps = s.rng.usize(10..=30);
    for i in 0..steps {
        if s.step().await {
            s.observe(&format!("after step {i}")).await;
        }
    }
    s.settle().await;
    s.check_settled().await;
    s.tally
}

#[test]
fn no_record_lost_or_duplicated_under_faults_races_and_crashes() {
    // Three handlers' futures joined in one step nest deeply in a debug build: large stacks.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(32 << 20)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(campaign());
}

async fn campaign() {
    let count: u64 = std::env::var("TRIBUTARY_FAULT_SCHEDULES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000);
    let first: u64 = std::env::var("TRIBUTARY_FAULT_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let parallel: u64 = std::env::var("TRIBUTARY_FAULT_PARALLEL").ok().and_then(|v| v.parse().ok()).unwrap_or(4);
    // Two servers: one moto server (Python) keeps about one core busy.
    let servers = [Arc::new(Moto::start()), Arc::new(Moto::start())];
    let next = Arc::new(AtomicU64::new(first));
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..parallel {
        let (moto, next) = (servers[w as usize % servers.len()].clone(), next.clone());
        workers.spawn(async move {
            let s3 = moto.s3();
            let mut tallies = Vec::new();
            loop {
                let seed = next.fetch_add(1, Ordering::SeqCst);
                if seed >= first + count {
                    return tallies;
                }
                tallies.push(run(&moto, &s3, seed).await);
            }
        });
    }
    let mut total = Tally::default();
    let mut faults: BTreeMap<Fault, u64> = BTreeMap::new();
    let mut sites: BTreeSet<&'static str> = BTreeSet::new();
    while let Some(done) = workers.join_next().await {
        let tallies = done.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
        for t in tallies {
            total.records += t.records;
            total.good += t.good;
            total.bad += t.bad;
            total.rescued += t.rescued;
            total.tombstones += t.tombstones;
            total.steps += t.steps;
            total.ingest_calls += t.ingest_calls;
            total.ingest_failures += t.ingest_failures;
            total.rebalances += t.rebalances;
            total.catalog_calls += t.catalog_calls;
            total.compact_calls += t.compact_calls;
            total.compactions += t.compactions;
            total.sealed += t.sealed;
            total.carried += t.carried;
            total.crashes += t.crashes;
            total.observations += t.observations;
            total.dead_letter_duplicates += t.dead_letter_duplicates;
            total.lost += t.lost;
            total.duplicated += t.duplicated;
            total.calls += t.calls;
            for ((f, site), n) in t.faults {
                *faults.entry(f).or_default() += n;
                sites.insert(site);
            }
        }
    }
    let injected: u64 = faults.values().sum();
    let summary = serde_json::json!({
        "schedules": count, "first_seed": first, "records": total.records, "good": total.good,
        "bad": total.bad, "rescued": total.rescued, "tombstones": total.tombstones, "steps": total.steps,
        "ingest_invocations": total.ingest_calls, "ingest_failed": total.ingest_failures,
        "rebalances": total.rebalances,
        "catalog_invocations": total.catalog_calls, "compact_invocations": total.compact_calls,
        "compactions": total.compactions, "sealed_files": total.sealed, "carried_files": total.carried,
        "compactor_crashes": total.crashes,
        "observations": total.observations, "aws_calls": total.calls, "faults_injected": injected,
        "faults_by_kind": faults.iter().map(|(k, v)| (format!("{k:?}"), *v)).collect::<BTreeMap<_, _>>(),
        "fault_sites": sites, "records_lost": total.lost, "records_duplicated": total.duplicated,
        "dead_letter_duplicates": total.dead_letter_duplicates,
    });
    println!("fault campaign: {summary}");
    if let Ok(path) = std::env::var("TRIBUTARY_FAULT_REPORT") {
        std::fs::write(&path, serde_json::to_string_pretty(&summary).unwrap()).expect("report written");
    }
    assert!(total.compactions > 0 && injected > 0, "the campaign compacted and injected faults");
    assert!(total.sealed > 0 && total.carried > 0 || count < 20, "the campaign sealed files and carried them by copy");
    assert!(total.rebalances > 0 || count < 20, "the campaign ran overlapping batches of one partition at once");
}
