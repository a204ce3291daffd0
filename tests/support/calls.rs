//! Records every HTTP request an SDK client sends on behalf of one function, for the IAM check
//! (`scripts/iam_check.py`), which evaluates each one against that function's role policy in the
//! SAM-transformed template and in `cdk synth`'s output.
//!
//! The recorder sits in the SDK's interceptor chain: it takes the request as it is about to be
//! sent (signed, every retry attempt and paginator page included; after sending, the HTTP client
//! owns it) and adds the status that came back once the attempt ends: a GetObject answered 404 tells the check that S3 also made its implicit
//! `s3:ListBucket` check (without that permission S3 answers 403 instead).
//!
//! One JSON line per attempt, in `$TRIBUTARY_CALL_LOG_DIR` (default `$TRIBUTARY_CACHE/aws-calls`),
//! one file per test process. `scripts/test.sh` empties the directory before the suite.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use aws_sdk_s3::config::interceptors::{BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::config_bag::{Storable, StoreReplace};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request of the attempt under way, kept in the attempt's configuration bag until its
/// answer is known.
#[derive(Debug, Clone)]
struct Sent(serde_json::Value);

impl Storable for Sent {
    type Storer = StoreReplace<Self>;
}

/// The function whose role a client's calls are checked against (its name's suffix in the stack).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Ingest,
    Compact,
    Catalog,
    Watch,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Compact => "compact",
            Role::Catalog => "catalog",
            Role::Watch => "watch",
        }
    }
}

/// Headers the IAM mapping needs (the copy source, tagging, conditions, the Glue operation).
const HEADERS: [&str; 9] = [
    "x-amz-target",
    "x-amz-copy-source",
    "x-amz-tagging-directive",
    "x-amz-tagging",
    "x-amz-metadata-directive",
    "range",
    "if-none-match",
    "if-match",
    "content-type",
];

/// The interceptor: one per client, labelled with the role and the service.
#[derive(Debug, Clone)]
pub struct CallLog {
    role: Role,
    service: &'static str,
}

impl CallLog {
    pub fn new(role: Role, service: &'static str) -> CallLog {
        CallLog { role, service }
    }
}

pub fn log_dir() -> PathBuf {
    match std::env::var_os("TRIBUTARY_CALL_LOG_DIR") {
        Some(d) => PathBuf::from(d),
        None => crate::cache_dir().join("aws-calls"),
    }
}

fn sink() -> &'static Mutex<BufWriter<File>> {
    static SINK: OnceLock<Mutex<BufWriter<File>>> = OnceLock::new();
    SINK.get_or_init(|| {
        let dir = log_dir();
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let exe = std::env::current_exe().ok().and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()));
        let path = dir.join(format!("{}-{}.jsonl", exe.unwrap_or_else(|| "test".into()), std::process::id()));
        Mutex::new(BufWriter::new(File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))))
    })
}

impl Intercept for CallLog {
    fn name(&self) -> &'static str {
        "CallLog"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let headers: BTreeMap<&str, &str> = HEADERS.iter().filter_map(|h| request.headers().get(*h).map(|v| (*h, v))).collect();
        // S3 object bodies are data; Glue and Lambda bodies, and S3's multi-object delete, name
        // the resources the call acts on.
        let named = self.service != "s3" || request.uri().contains("?delete");
        let body = request.body().bytes().filter(|_| named).map(|b| String::from_utf8_lossy(b).into_owned());
        let line = serde_json::json!({
            "role": self.role.name(),
            "service": self.service,
            "method": request.method(),
            "uri": request.uri(),
            "headers": headers,
            "body": body,
        });
        cfg.interceptor_state().store_put(Sent(line));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // An attempt that failed before it was sent made no call.
        let Some(Sent(mut line)) = cfg.load::<Sent>().cloned() else { return Ok(()) };
        cfg.interceptor_state().unset::<Sent>();
        line["status"] = context.response().map(|r| r.status().as_u16()).into();
        let mut out = sink().lock().unwrap_or_else(|p| p.into_inner());
        writeln!(out, "{line}")?;
        out.flush()?;
        Ok(())
    }
}
