//! `tributary`: run the pipeline locally.

use std::path::PathBuf;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};
use tributary_local::consume::{Options, Summary, run};
use tributary_local::kafka::KafkaSource;
use tributary_local::pipeline::Pipeline;

#[derive(Parser)]
#[command(name = "tributary", about = "Kafka to query-ready Parquet on S3, run locally with no AWS account")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Replay the sample events through the real ingest handler into an embedded S3-compatible
    /// store and show what was written where (the default).
    Demo {
        /// Directory the embedded store keeps its files in (emptied at start).
        #[arg(long, default_value = "tributary-local-data")]
        data_dir: PathBuf,
    },
    /// Run SQL and print the result: over the local run's tables (DataFusion), or on Amazon Athena
    /// with --athena (credentials and region from the environment, as for the AWS CLI).
    Query {
        /// The SQL to run.
        sql: String,
        /// Run on Amazon Athena.
        #[arg(long)]
        athena: bool,
        /// Athena workgroup (the stack's output `AthenaWorkGroup`).
        #[arg(long, default_value = "tributary")]
        workgroup: String,
        /// Glue database.
        #[arg(long, default_value = "tributary")]
        database: String,
        /// Print CSV instead of a table.
        #[arg(long)]
        csv: bool,
        /// Give up waiting after this many seconds (the query goes on in Athena).
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Without --athena: the directory of the local run's tables.
        #[arg(long, default_value = "tributary-local-data")]
        data_dir: PathBuf,
    },
    /// Consume from any Kafka-protocol broker and drive the functions as the MSK event source
    /// mapping would (batch size, batching window, 6 MB payload cap; offsets committed only after
    /// a batch is delivered, failed batches retried). Stops on Ctrl-C, --max-records or
    /// --until-idle, delivering what it holds, then prints a summary.
    Consume {
        /// Bootstrap servers, host:port[,host:port...].
        #[arg(long)]
        bootstrap_servers: String,
        /// Topics to consume (repeat, or separate with commas).
        #[arg(long = "topic", required = true, value_delimiter = ',')]
        topics: Vec<String>,
        /// Consumer group (the event source mapping's consumer group id).
        #[arg(long, default_value = "tributary")]
        group: String,
        /// Records per batch (the event source mapping's BatchSize, 1 to 10,000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        batch_size: u32,
        /// How long a batch may gather records, in ms (MaximumBatchingWindowInSeconds, at most 300 s).
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(0..=300_000))]
        batching_window_ms: u64,
        /// Where a group without committed offsets starts: earliest (TRIM_HORIZON) or latest.
        #[arg(long, default_value = "earliest", value_parser = ["earliest", "latest"])]
        starting_position: String,
        /// Stop after this many records.
        #[arg(long)]
        max_records: Option<u64>,
        /// Stop once no record came for this many seconds, also while waiting for a partition
        /// assignment (after a kill -9 the broker holds the dead member's partitions until its
        /// session times out: `-X session.timeout.ms=6000` shortens that).
        #[arg(long)]
        until_idle: Option<u64>,
        /// Attempts per batch before stopping with its offsets uncommitted.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
        max_attempts: u32,
        /// How often the compactor's sweep runs, in seconds (the stack: every 10 minutes).
        #[arg(long, default_value_t = 600)]
        sweep_every: u64,
        /// A librdkafka property, key=value (repeatable): security.protocol, sasl.*, ssl.*, ...
        #[arg(short = 'X', long = "kafka-property")]
        properties: Vec<String>,
        /// Write to S3 and the Glue Data Catalog instead of the local store (bucket, database and
        /// the rest from TRIBUTARY_BUCKET / TRIBUTARY_DATABASE / TRIBUTARY_CONFIG, as the functions).
        #[arg(long)]
        aws: bool,
        /// The local store's directory (kept across runs: a restarted consumer carries on).
        #[arg(long, default_value = "tributary-local-data")]
        data_dir: PathBuf,
    },
    /// Ingest again, exactly once, the batches the event source mapping gave up on: the records its
    /// S3 on-failure destination wrote (after 10 retries). Safe to run any number of times.
    Replay {
        /// Read the failure records from S3 and write to S3 and Glue (bucket, database and the
        /// rest from TRIBUTARY_BUCKET / TRIBUTARY_DATABASE / TRIBUTARY_CONFIG, as the functions).
        #[arg(long)]
        aws: bool,
        /// The bucket holding the failure records (default: the data bucket, the stack's destination).
        #[arg(long)]
        bucket: Option<String>,
        /// Where Lambda writes them in that bucket.
        #[arg(long, default_value = tributary_core::layout::FAILED_BATCHES_PREFIX)]
        prefix: String,
        /// Without --aws: the local store's directory.
        #[arg(long, default_value = "tributary-local-data")]
        data_dir: PathBuf,
    },
    /// Produce the three everyday scenarios to a Kafka topic each (created with 3 partitions if
    /// missing), with keys and headers: records to try `consume` on.
    Produce {
        /// Bootstrap servers, host:port[,host:port...].
        #[arg(long)]
        bootstrap_servers: String,
        /// Records per scenario: customer_data gets this many, transaction twice, names_topic a fifth.
        #[arg(long, default_value_t = 3_000)]
        records: u64,
        /// Make every N-th record invalid JSON (0: none), to see the dead-letter area at work.
        #[arg(long, default_value_t = 0)]
        bad_every: u64,
        /// Seed of the generated records.
        #[arg(long, default_value_t = tributary_local::DEMO_SEED)]
        seed: u64,
        /// A librdkafka property, key=value (repeatable).
        #[arg(short = 'X', long = "kafka-property")]
        properties: Vec<String>,
    },
}

async fn query_local(data_dir: &std::path::Path, sql: &str, csv: bool) -> Result<String, tributary_local::Error> {
    let (store, root, config) = tributary_local::open_local(data_dir).await?;
    let ctx = tributary_local::sql::session(&store, &root, &config).await?;
    let batches = tributary_local::sql::run(&ctx, sql).await?;
    if csv {
        let mut buf = Vec::new();
        {
            let mut w = arrow_csv::WriterBuilder::new().with_header(true).build(&mut buf);
            for b in &batches {
                w.write(b)?;
            }
        }
        return Ok(String::from_utf8(buf)?);
    }
    Ok(format!("{}\n", arrow_cast::pretty::pretty_format_batches(&batches)?))
}

/// Set by Ctrl-C or SIGTERM: the consumer delivers what it holds and stops.
static STOP: AtomicBool = AtomicBool::new(false);

fn stop_on_signals() {
    tokio::spawn(async {
        let _ = tokio::signal::ctrl_c().await;
        STOP.store(true, Ordering::Relaxed);
    });
    #[cfg(unix)]
    tokio::spawn(async {
        if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            term.recv().await;
            STOP.store(true, Ordering::Relaxed);
        }
    });
}

struct ConsumeArgs {
    bootstrap_servers: String,
    topics: Vec<String>,
    group: String,
    starting_position: String,
    properties: Vec<String>,
    aws: bool,
    data_dir: PathBuf,
    options: Options,
}

/// Progress on standard error: a line rewritten in place on a terminal, a line every 10 s otherwise.
fn progress_printer() -> impl FnMut(&Summary) {
    let tty = std::io::stderr().is_terminal();
    let mut last = std::time::Instant::now();
    move |s: &Summary| {
        if tty {
            eprint!("\r{}   ", s.progress_line());
        } else if last.elapsed() >= std::time::Duration::from_secs(10) {
            eprintln!("{}", s.progress_line());
            last = std::time::Instant::now();
        }
    }
}

async fn consume(a: ConsumeArgs) -> Result<String, tributary_local::Error> {
    let properties = tributary_local::kafka::parse_properties(&a.properties)?;
    let mut source = KafkaSource::subscribe(&a.bootstrap_servers, &a.group, &a.topics, &a.starting_position, &properties)?;
    stop_on_signals();
    eprintln!("tributary consume: group {:?}, topics {}, from {}", a.group, a.topics.join(","), a.bootstrap_servers);
    let (summary, result) = if a.aws {
        let config = tributary_core::Config::from_env()?;
        let store = tributary_aws::S3Store::from_env(config.bucket.clone()).await;
        let catalog = std::sync::Arc::new(tributary_aws::GlueCatalog::from_env(config.database.clone()).await);
        eprintln!("writing to s3://{}/ and Glue database {}", config.bucket, config.database);
        let pipeline = Pipeline::new(store, catalog, config);
        run(&mut source, &pipeline, &a.options, &STOP, progress_printer()).await
    } else {
        let (store, root, config) = tributary_local::local_target(&a.data_dir).await?;
        eprintln!("writing to the local store {} (query it with `tributary query`)", root.display());
        let catalog = std::sync::Arc::new(tributary_aws::MemoryCatalog::new());
        let pipeline = Pipeline::new(store, catalog, config);
        run(&mut source, &pipeline, &a.options, &STOP, progress_printer()).await
    };
    eprintln!();
    println!("{summary}");
    result.map(|()| String::new())
}

async fn replay(
    aws: bool,
    bucket: Option<String>,
    prefix: &str,
    data_dir: &std::path::Path,
) -> Result<String, tributary_local::Error> {
    use tributary_local::replay::replay;
    let summary = if aws {
        let config = tributary_core::Config::from_env()?;
        let failures = tributary_aws::S3Store::from_env(bucket.unwrap_or_else(|| config.bucket.clone())).await;
        let store = tributary_aws::S3Store::from_env(config.bucket.clone()).await;
        let catalog = std::sync::Arc::new(tributary_aws::GlueCatalog::from_env(config.database.clone()).await);
        eprintln!(
            "replaying s3://{}/{prefix} into s3://{}/ and Glue database {}",
            failures.bucket(),
            config.bucket,
            config.database
        );
        replay(&failures, prefix, &Pipeline::new(store, catalog, config)).await?
    } else {
        let (store, root, config) = tributary_local::local_target(data_dir).await?;
        eprintln!("replaying {prefix} of the local store {}", root.display());
        let catalog = std::sync::Arc::new(tributary_aws::MemoryCatalog::new());
        replay(&store, prefix, &Pipeline::new(store.clone(), catalog, config)).await?
    };
    if summary.unreadable.is_empty() {
        Ok(summary.to_string())
    } else {
        Err(format!("{summary}some failure records hold no batch (see above)").into())
    }
}

async fn produce(
    bootstrap: &str,
    records: u64,
    bad_every: u64,
    seed: u64,
    properties: &[String],
) -> Result<String, tributary_local::Error> {
    let properties = tributary_local::kafka::parse_properties(properties)?;
    let counts = [("customer_data", records), ("transaction", records * 2), ("names_topic", records / 5)];
    let topics: Vec<(&str, i32)> = counts.iter().map(|(t, _)| (*t, 3)).collect();
    tributary_local::kafka::create_topics(bootstrap, &topics, &properties).await?;
    let (messages, bad) = tributary_local::scenario_messages(seed, &counts, 3, bad_every);
    let started = std::time::Instant::now();
    let acked = tributary_local::kafka::produce(bootstrap, &messages, &properties).await?;
    let per_topic: Vec<String> = counts.iter().map(|(t, n)| format!("{t} {n}")).collect();
    Ok(format!(
        "produced {} records ({}; {bad} of them invalid JSON) to {bootstrap} in {:.1} s\n",
        acked.len(),
        per_topic.join(", "),
        started.elapsed().as_secs_f64()
    ))
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // s3s logs every request it refuses (a 404 on a missing state key is normal): quiet unless
    // RUST_LOG asks for it.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn,s3s=off".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Demo { data_dir: PathBuf::from("tributary-local-data") });
    let result = match command {
        Command::Demo { data_dir } => tributary_local::demo(&data_dir).await,
        Command::Query { sql, athena: true, workgroup, database, csv, timeout, .. } => {
            let q = tributary_aws::AthenaQueries::from_env().await;
            let progress = |s: &tributary_aws::QueryStatus, t: std::time::Duration| {
                let scanned = s.scanned_bytes.map(|b| format!(", {:.1} MB scanned", b as f64 / 1e6)).unwrap_or_default();
                eprint!("\r{} after {:.1} s{scanned}   ", s.state, t.as_secs_f64());
            };
            let poll = std::time::Duration::from_millis(500);
            tributary_local::athena::run(&q, &sql, &database, &workgroup, poll, std::time::Duration::from_secs(timeout), progress)
                .await
                .map(|r| {
                    eprintln!();
                    if csv { tributary_local::athena::csv(&r) } else { tributary_local::athena::table(&r) }
                })
        }
        Command::Query { sql, athena: false, data_dir, csv, .. } => query_local(&data_dir, &sql, csv).await,
        Command::Consume {
            bootstrap_servers,
            topics,
            group,
            batch_size,
            batching_window_ms,
            starting_position,
            max_records,
            until_idle,
            max_attempts,
            sweep_every,
            properties,
            aws,
            data_dir,
        } => {
            let options = Options {
                batch_size: batch_size as usize,
                window: std::time::Duration::from_millis(batching_window_ms),
                max_records,
                until_idle: until_idle.map(std::time::Duration::from_secs),
                max_attempts,
                sweep_every: std::time::Duration::from_secs(sweep_every),
                bootstrap_servers: bootstrap_servers.clone(),
                ..Options::default()
            };
            consume(ConsumeArgs { bootstrap_servers, topics, group, starting_position, properties, aws, data_dir, options }).await
        }
        Command::Replay { aws, bucket, prefix, data_dir } => replay(aws, bucket, &prefix, &data_dir).await,
        Command::Produce { bootstrap_servers, records, bad_every, seed, properties } => {
            produce(&bootstrap_servers, records, bad_every, seed, &properties).await
        }
    };
    match result {
        Ok(out) => {
            print!("{out}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tributary: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
