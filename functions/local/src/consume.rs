//! The consumer mode's loop, outside Lambda: records from a [`Source`] (a Kafka consumer group;
//! a list in tests) gathered into event-source-mapping batches by [`Batcher`], each delivered
//! through the [`Pipeline`] and retried on failure, its offsets committed only once it was
//! delivered. A crash at any point loses nothing: uncommitted records are read again, and ingest
//! recognises what an earlier attempt already wrote.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::batcher::{Batch, Batcher, Consumed};
use tributary_aws::{MultipartWrite, ObjectRead, ObjectWrite, PartitionLocation, TableCatalog};
use tributary_core::layout::table_partition;
use tributary_ingest::Report;

use crate::Error;
use crate::pipeline::{Pipeline, data_files};

/// Where records come from.
pub trait Source {
    /// The next record, or `None` when none came within `wait`.
    fn next(&mut self, wait: Duration) -> impl Future<Output = Result<Option<Consumed>, Error>>;
    /// Commits `(topic, partition, next offset to read)` for the group.
    fn commit(&mut self, offsets: &[(String, i32, i64)]) -> impl Future<Output = Result<(), Error>>;
    /// Whether partitions are assigned to this consumer (idle time counts only then).
    fn assigned(&self) -> bool;
}

/// How the loop batches, retries and stops. The defaults are the event source mapping's.
#[derive(Debug, Clone)]
pub struct Options {
    /// Records per batch (`BatchSize`: 100 by default, at most 10,000).
    pub batch_size: usize,
    /// How long a batch may gather records (`MaximumBatchingWindowInSeconds`: 500 ms for Kafka).
    pub window: Duration,
    /// Stop after consuming this many records.
    pub max_records: Option<u64>,
    /// Stop once no record came for this long, assigned partitions or not.
    pub until_idle: Option<Duration>,
    /// Attempts per batch before giving up (its offsets stay uncommitted).
    pub max_attempts: u32,
    /// The first retry's delay; it doubles up to 30 s.
    pub retry_backoff: Duration,
    /// How often the compactor's sweep runs (the stack's schedule: 10 minutes).
    pub sweep_every: Duration,
    pub progress_every: Duration,
    pub bootstrap_servers: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_size: 100,
            window: Duration::from_millis(500),
            max_records: None,
            until_idle: None,
            max_attempts: 8,
            retry_backoff: Duration::from_millis(500),
            sweep_every: Duration::from_secs(600),
            progress_every: Duration::from_secs(1),
            bootstrap_servers: String::new(),
        }
    }
}

/// Produced-to-visible latencies, in a histogram of 2 % wide buckets: constant memory however
/// long the consumer runs.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    buckets: BTreeMap<u32, u64>,
    count: u64,
    max_ms: i64,
}

const GROWTH: f64 = 1.02;

impl Latencies {
    pub fn record(&mut self, ms: i64) {
        let ms = ms.max(0);
        let bucket = if ms <= 1 { 0 } else { ((ms as f64).ln() / GROWTH.ln()).ceil() as u32 };
        *self.buckets.entry(bucket).or_default() += 1;
        self.count += 1;
        self.max_ms = self.max_ms.max(ms);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max_ms(&self) -> i64 {
        self.max_ms
    }

    /// The `q` quantile (0..=1), to within 2 %.
    pub fn quantile_ms(&self, q: f64) -> Option<i64> {
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (b, n) in &self.buckets {
            seen += n;
            if seen >= rank {
                return Some((GROWTH.powi(*b as i32).round() as i64).min(self.max_ms));
            }
        }
        None
    }
}

/// What a consumer run did.
#[derive(Debug, Default)]
pub struct Summary {
    pub consumed: u64,
    /// The delivered batches' ingest counts (`records_in` = rows + dead letters + skipped).
    pub report: Report,
    pub batches: u64,
    /// Bytes of event payload (JSON, base64 values), as the event source mapping counts them.
    pub payload_bytes: u64,
    /// `table/dt=…/hr=…/` partitions that received files.
    pub partitions: BTreeSet<String>,
    pub retries: u64,
    pub commit_failures: u64,
    /// Partition compactions (a partition still open may be compacted more than once).
    pub compacted: u64,
    pub compaction_failures: u64,
    /// No partition was assigned at the last empty poll.
    pub waiting_for_assignment: bool,
    /// The last committed `next offset` per topic-partition.
    pub committed: BTreeMap<(String, i32), i64>,
    pub freshness: Latencies,
    pub elapsed: Duration,
    /// From the first record consumed to the last batch delivered: the span throughput is over
    /// (not the group join before, nor the idle wait after).
    pub active: Duration,
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Summary {
    fn active_secs(&self) -> f64 {
        self.active.as_secs_f64().max(1e-3)
    }

    fn rate(&self) -> f64 {
        self.report.records_in as f64 / self.active_secs()
    }

    /// One line for the progress display.
    pub fn progress_line(&self) -> String {
        let waiting = if self.waiting_for_assignment {
            "waiting for a partition assignment (group join or rebalance; a member that died without leaving holds its \
             partitions until the broker's session timeout) | "
        } else {
            ""
        };
        let fresh = self.freshness.quantile_ms(0.5).map(|p| format!(" | freshness p50 {p} ms")).unwrap_or_default();
        format!(
            "{waiting}consumed {} | delivered {} in {} batches | rows {} | dead-lettered {} | {} rec/s{fresh}",
            thousands(self.consumed),
            thousands(self.report.records_in as u64),
            thousands(self.batches),
            thousands(self.report.rows_written as u64),
            thousands(self.report.dead_lettered as u64),
            thousands(self.rate() as u64),
        )
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.report;
        let secs = self.elapsed.as_secs_f64();
        writeln!(f, "consumer summary ({secs:.1} s):")?;
        writeln!(
            f,
            "  records in          {} ({} consumed, {} batches, {:.1} MB of event payload)",
            thousands(r.records_in as u64),
            thousands(self.consumed),
            thousands(self.batches),
            self.payload_bytes as f64 / 1e6
        )?;
        writeln!(
            f,
            "  rows written        {} ({} with fields in _rescued_data)",
            thousands(r.rows_written as u64),
            thousands(r.rows_rescued as u64)
        )?;
        let reasons: Vec<String> = r.rejected.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let reasons = if reasons.is_empty() { String::new() } else { format!(" ({})", reasons.join(", ")) };
        writeln!(f, "  dead-lettered       {}{reasons}", thousands(r.dead_lettered as u64))?;
        writeln!(f, "  tombstones skipped  {}", thousands(r.tombstones_skipped as u64))?;
        writeln!(
            f,
            "  already committed   {} (written by an earlier attempt, not twice)",
            thousands(r.already_committed as u64)
        )?;
        writeln!(
            f,
            "  files               {} data + {} dead-letter, {:.1} MB, in {} partitions; {} compactions",
            r.files_written,
            r.dead_letter_files,
            r.bytes_written as f64 / 1e6,
            self.partitions.len(),
            self.compacted
        )?;
        writeln!(
            f,
            "  throughput          {} records/s, {:.1} MB/s of event payload (over {:.1} s from the first record to the last delivery)",
            thousands(self.rate() as u64),
            self.payload_bytes as f64 / 1e6 / self.active_secs(),
            self.active_secs()
        )?;
        if let (Some(p50), Some(p99)) = (self.freshness.quantile_ms(0.5), self.freshness.quantile_ms(0.99)) {
            writeln!(
                f,
                "  freshness           produced -> visible to SQL: p50 {p50} ms, p99 {p99} ms, max {} ms",
                self.freshness.max_ms()
            )?;
        }
        writeln!(
            f,
            "  retries {}, commit failures {}, compaction failures {}",
            self.retries, self.commit_failures, self.compaction_failures
        )?;
        let offsets: Vec<String> = self.committed.iter().map(|((t, p), o)| format!("{t}[{p}]={o}")).collect();
        writeln!(f, "  committed offsets   {}", if offsets.is_empty() { "none".to_string() } else { offsets.join(" ") })?;
        let balanced = if r.balanced() { "=" } else { "!=" };
        write!(
            f,
            "  every record accounted for: {} in {balanced} {} written + {} dead-lettered + {} skipped + {} already committed",
            r.records_in, r.rows_written, r.dead_lettered, r.tombstones_skipped, r.already_committed
        )
    }
}

/// The loop's pause when nothing is due: short, so a stop request or the window is noticed soon.
const TICK: Duration = Duration::from_millis(200);

/// Consumes until `stop` is set, `max_records` were consumed, or the source stays idle; delivers
/// the last open batch; runs the sweep. Returns what it did, and an error if a batch could not be
/// delivered (its offsets, and any after it, stay uncommitted).
pub async fn run<Src, S, C>(
    source: &mut Src,
    pipeline: &Pipeline<S, C>,
    opts: &Options,
    stop: &AtomicBool,
    mut progress: impl FnMut(&Summary),
) -> (Summary, Result<(), Error>)
where
    Src: Source,
    S: ObjectRead + ObjectWrite + MultipartWrite + Clone + Send + Sync + Unpin + 'static,
    C: TableCatalog + PartitionLocation + Clone + Sync,
{
    let mut sum = Summary::default();
    let started = Instant::now();
    let mut looping = Loop { source, pipeline, opts, stop, sum: &mut sum, started, first_record: None };
    let result = looping.drive(&mut progress).await;
    sum.elapsed = started.elapsed();
    (sum, result)
}

struct Loop<'a, Src, S, C> {
    source: &'a mut Src,
    pipeline: &'a Pipeline<S, C>,
    opts: &'a Options,
    stop: &'a AtomicBool,
    sum: &'a mut Summary,
    started: Instant,
    first_record: Option<Instant>,
}

impl<Src, S, C> Loop<'_, Src, S, C>
where
    Src: Source,
    S: ObjectRead + ObjectWrite + MultipartWrite + Clone + Send + Sync + Unpin + 'static,
    C: TableCatalog + PartitionLocation + Clone + Sync,
{
    async fn drive(&mut self, progress: &mut impl FnMut(&Summary)) -> Result<(), Error> {
        let opts = self.opts;
        let mut batcher = Batcher::new(opts.batch_size, opts.window, &opts.bootstrap_servers);
        let mut idle_since = Instant::now();
        let mut last_progress = Instant::now();
        let mut last_sweep = Instant::now();
        loop {
            if self.stop.load(Ordering::Relaxed) || opts.max_records.is_some_and(|m| self.sum.consumed >= m) {
                break;
            }
            let wait = batcher.deadline().map_or(TICK, |d| d.saturating_duration_since(Instant::now()).min(TICK));
            // Idle: the source had nothing for us (time spent delivering does not count).
            let idle = match self.source.next(wait).await? {
                Some(record) => {
                    self.sum.waiting_for_assignment = false;
                    self.sum.consumed += 1;
                    self.first_record.get_or_insert_with(Instant::now);
                    if let Some(batch) = batcher.push(record, Instant::now()) {
                        self.deliver(batch).await?;
                    }
                    false
                }
                // Waiting for an assignment counts as idle too: a consumer restarted after a
                // kill -9 gets no partition until the broker drops the dead member, which takes
                // session.timeout.ms (minutes with some brokers' defaults).
                None => {
                    self.sum.waiting_for_assignment = !self.source.assigned();
                    true
                }
            };
            if batcher.due(Instant::now())
                && let Some(batch) = batcher.take()
            {
                self.deliver(batch).await?;
                idle_since = Instant::now();
            }
            if !idle {
                idle_since = Instant::now();
            }
            if opts.until_idle.is_some_and(|d| idle && batcher.is_empty() && idle_since.elapsed() >= d) {
                break;
            }
            if last_progress.elapsed() >= opts.progress_every {
                self.sum.elapsed = self.started.elapsed();
                progress(self.sum);
                last_progress = Instant::now();
            }
            if last_sweep.elapsed() >= opts.sweep_every {
                self.sweep().await;
                last_sweep = Instant::now();
            }
        }
        if let Some(batch) = batcher.take() {
            self.deliver(batch).await?;
        }
        self.sweep().await;
        Ok(())
    }

    /// Delivers a batch (retrying), then commits its offsets, then hands its files to the
    /// compactor. Offsets are committed only after delivery.
    async fn deliver(&mut self, batch: Batch) -> Result<(), Error> {
        let produced: Vec<i64> = batch.event.records.values().flatten().map(|r| r.timestamp.0.timestamp_millis()).collect();
        let mut attempt = 1;
        let delivered = loop {
            match self.pipeline.deliver(batch.event.clone()).await {
                Ok(d) => break d,
                Err(e) if attempt < self.opts.max_attempts && !self.stop.load(Ordering::Relaxed) => {
                    let delay = self.opts.retry_backoff.saturating_mul(1 << (attempt - 1).min(16)).min(Duration::from_secs(30));
                    tracing::warn!(error = %e, attempt, records = batch.records, "batch failed; retrying in {delay:?}");
                    self.sum.retries += 1;
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                }
                Err(e) => {
                    let from: Vec<String> = batch.commit.iter().map(|(t, p, _)| format!("{t}[{p}]")).collect();
                    return Err(format!(
                        "a batch of {} records failed after {attempt} attempts: {e}; offsets of {} not committed, \
                         so the next run reads it again",
                        batch.records,
                        from.join(", ")
                    )
                    .into());
                }
            }
        };
        let config = &self.pipeline.ingest.config;
        let r = &delivered.response;
        for key in data_files(r) {
            if let Some((table, tp)) = table_partition(config, key) {
                self.sum.partitions.insert(format!("{table}/{}", tp.path()));
            }
        }
        for t in produced {
            self.sum.freshness.record(delivered.visible_at_ms - t);
        }
        self.sum.report.add(&r.total);
        self.sum.report.objects.clear();
        self.sum.batches += 1;
        self.sum.payload_bytes += batch.payload_bytes as u64;
        self.sum.active = self.first_record.map(|t| t.elapsed()).unwrap_or_default();
        match self.source.commit(&batch.commit).await {
            Ok(()) => {
                for (t, p, o) in &batch.commit {
                    self.sum.committed.insert((t.clone(), *p), *o);
                }
            }
            // Not fatal: the next commit covers these offsets, and records read again after a
            // restart are recognised by ingest as already written.
            Err(e) => {
                self.sum.commit_failures += 1;
                tracing::warn!(error = %e, "offsets not committed");
            }
        }
        // Compaction never holds back ingestion: a failure is retried by the next sweep.
        match self.pipeline.compact_written(r, &format!("consumer-{}", self.sum.batches)).await {
            Ok(n) => self.sum.compacted += n as u64,
            Err(e) => {
                self.sum.compaction_failures += 1;
                tracing::warn!(error = %e, "compaction failed; the sweep retries it");
            }
        }
        Ok(())
    }

    async fn sweep(&mut self) {
        match self.pipeline.sweep(&format!("consumer-sweep-{}", self.sum.batches)).await {
            Ok(r) => self.sum.compacted += r.compacted.len() as u64,
            Err(e) => {
                self.sum.compaction_failures += 1;
                tracing::warn!(error = %e, "compaction sweep failed; the next sweep retries it");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Arc;
    use tributary_aws::{MemoryCatalog, MemoryStore};
    use tributary_core::Config;

    /// Records from a list; commits recorded.
    struct ListSource {
        records: VecDeque<Consumed>,
        commits: Vec<Vec<(String, i32, i64)>>,
        fail_commits: usize,
    }

    impl Source for ListSource {
        async fn next(&mut self, _wait: Duration) -> Result<Option<Consumed>, Error> {
            Ok(self.records.pop_front())
        }
        async fn commit(&mut self, offsets: &[(String, i32, i64)]) -> Result<(), Error> {
            if self.fail_commits > 0 {
                self.fail_commits -= 1;
                return Err("rebalance in progress".into());
            }
            self.commits.push(offsets.to_vec());
            Ok(())
        }
        fn assigned(&self) -> bool {
            true
        }
    }

    fn records(topic: &str, n: i64, bad_every: i64) -> VecDeque<Consumed> {
        (0..n)
            .map(|i| Consumed {
                topic: topic.into(),
                partition: (i % 2) as i32,
                offset: i / 2,
                timestamp_ms: 1_795_316_400_000 + i,
                timestamp_type: "CREATE_TIME".into(),
                key: Some(format!("k{i}").into_bytes()),
                value: Some(if bad_every > 0 && i % bad_every == 0 {
                    b"{\"amount\": ".to_vec()
                } else {
                    format!("{{\"amount\": {i}}}").into_bytes()
                }),
                headers: vec![("source".into(), vec![0xfe])],
            })
            .collect()
    }

    fn pipeline(store: &Arc<MemoryStore>) -> Pipeline<Arc<MemoryStore>, Arc<MemoryCatalog>> {
        let config = Config { bucket: "b".into(), ..Config::default() };
        Pipeline::new(store.clone(), Arc::new(MemoryCatalog::new()), config)
    }

    fn opts() -> Options {
        Options {
            batch_size: 10,
            until_idle: Some(Duration::ZERO),
            retry_backoff: Duration::from_millis(1),
            ..Options::default()
        }
    }

    /// A group member that never gets a partition (the broker still holds them for a member that
    /// was killed): `--until-idle` ends the wait, and the progress line says what it waits for.
    #[tokio::test]
    async fn until_idle_also_ends_a_wait_for_an_assignment_and_says_so() {
        struct Unassigned;
        impl Source for Unassigned {
            async fn next(&mut self, _wait: Duration) -> Result<Option<Consumed>, Error> {
                Ok(None)
            }
            async fn commit(&mut self, _offsets: &[(String, i32, i64)]) -> Result<(), Error> {
                Ok(())
            }
            fn assigned(&self) -> bool {
                false
            }
        }
        let store = Arc::new(MemoryStore::new());
        let stop = AtomicBool::new(false);
        let (sum, result) = run(&mut Unassigned, &pipeline(&store), &opts(), &stop, |_| {}).await;
        result.unwrap();
        assert!(sum.waiting_for_assignment);
        assert!(sum.progress_line().starts_with("waiting for a partition assignment"), "{}", sum.progress_line());
        assert_eq!(sum.consumed, 0);
    }

    #[tokio::test]
    async fn delivers_in_batches_and_commits_after_each() {
        let store = Arc::new(MemoryStore::new());
        let mut src = ListSource { records: records("payments", 45, 9), commits: vec![], fail_commits: 1 };
        let mut ticks = 0;
        let (sum, res) = run(&mut src, &pipeline(&store), &opts(), &AtomicBool::new(false), |_| ticks += 1).await;
        res.unwrap();
        assert_eq!(sum.consumed, 45);
        assert_eq!(sum.batches, 5, "45 records in batches of 10");
        assert_eq!(sum.report.records_in, 45);
        assert_eq!(sum.report.dead_lettered, 5, "offsets 0, 9, 18, 27, 36 are truncated JSON");
        assert_eq!(sum.report.rows_written, 40);
        assert!(sum.report.balanced());
        assert_eq!(sum.commit_failures, 1);
        assert_eq!(src.commits.len(), 4, "the first commit failed; the others went through");
        assert_eq!(src.commits.last().unwrap(), &vec![("payments".to_string(), 0, 23), ("payments".to_string(), 1, 22)]);
        assert_eq!(sum.committed.get(&("payments".to_string(), 0)), Some(&23));
        assert_eq!(sum.freshness.count(), 45);
        let text = sum.to_string();
        assert!(text.contains("every record accounted for: 45 in = 40 written + 5 dead-lettered"), "{text}");
        assert!(text.contains("dead-lettered       5 (invalid_json 5)"), "{text}");
        assert!(text.contains("rows written        40 (0 with fields in _rescued_data)"), "{text}");
    }

    #[tokio::test]
    async fn a_failed_batch_is_retried_and_committed_only_after_it_succeeds() {
        let store = Arc::new(MemoryStore::new());
        let mut src = ListSource { records: records("payments", 10, 0), commits: vec![], fail_commits: 0 };
        store.fail_next_puts(2);
        let (sum, res) = run(&mut src, &pipeline(&store), &opts(), &AtomicBool::new(false), |_| {}).await;
        res.unwrap();
        assert_eq!(sum.retries, 2);
        assert_eq!(sum.batches, 1);
        assert_eq!(sum.report.rows_written, 10);
        assert_eq!(src.commits.len(), 1);
    }

    #[tokio::test]
    async fn a_batch_that_keeps_failing_stops_the_run_without_committing() {
        let store = Arc::new(MemoryStore::new());
        let mut src = ListSource { records: records("payments", 25, 0), commits: vec![], fail_commits: 0 };
        let p = pipeline(&store);
        // The first batch goes through; the second fails every attempt.
        let mut o = opts();
        o.max_records = Some(10);
        let (_, res) = run(&mut src, &p, &o, &AtomicBool::new(false), |_| {}).await;
        res.unwrap();
        store.fail_next_puts(1_000);
        let (sum, res) = run(&mut src, &p, &opts(), &AtomicBool::new(false), |_| {}).await;
        let err = res.unwrap_err().to_string();
        assert!(err.contains("failed after 8 attempts") && err.contains("not committed"), "{err}");
        assert_eq!(sum.retries, 7);
        assert_eq!(src.commits.len(), 1, "only the first batch's offsets");
        // Read again (as after a restart), the batch goes through, and nothing is doubled.
        store.fail_next_puts(0);
        let mut again = ListSource { records: records("payments", 25, 0), commits: vec![], fail_commits: 0 };
        let (sum, res) = run(&mut again, &p, &opts(), &AtomicBool::new(false), |_| {}).await;
        res.unwrap();
        assert_eq!(sum.report.already_committed, 10);
        assert_eq!(sum.report.rows_written, 15);
    }

    #[test]
    fn latency_quantiles_within_two_percent() {
        let mut l = Latencies::default();
        for ms in 1..=1000 {
            l.record(ms);
        }
        let p50 = l.quantile_ms(0.5).unwrap();
        assert!((490..=510).contains(&p50), "{p50}");
        assert_eq!(l.quantile_ms(1.0), Some(1000));
        assert_eq!(l.max_ms(), 1000);
        assert_eq!(Latencies::default().quantile_ms(0.5), None);
        l.record(-5);
        assert_eq!(l.count(), 1001);
    }
}
