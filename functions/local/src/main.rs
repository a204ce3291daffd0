//! `tributary`: run the pipeline locally.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
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
