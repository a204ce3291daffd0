//! The functions' logs as CloudWatch receives them: one JSON object per line, filtered by
//! `RUST_LOG` (default `info`), no colours, no timestamps (CloudWatch adds them). At `info`,
//! logs carry counts, keys, tables and partitions: never record contents (tested in
//! `tests/logs.rs`).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// A subscriber writing the functions' JSON log lines to `writer`.
pub fn json_subscriber<W>(writer: W, filter: EnvFilter) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_ansi(false)
        .without_time()
        .with_current_span(false)
        .with_writer(writer)
        .finish()
}

/// Installs the JSON subscriber on stdout, filtered by `RUST_LOG` or at `info`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing::subscriber::set_global_default(json_subscriber(std::io::stdout, filter));
}
