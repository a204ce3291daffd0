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
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Demo { data_dir: PathBuf::from("tributary-local-data") });
    let result = match command {
        Command::Demo { data_dir } => tributary_local::demo(&data_dir).await,
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
