//! Test support: an S3 API server (moto) on 127.0.0.1, started per test binary and stopped on
//! drop, and independent Parquet readers (pyarrow, DuckDB) from the project's Python venv.
//!
//! The venv is made by `scripts/install-test-deps.sh` under `$TRIBUTARY_CACHE` (default
//! `~/.cache/tributary`). A missing venv fails the tests with a message saying so.

pub mod calls;
pub mod faults;

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};

use calls::CallLog;
pub use calls::Role;

pub fn cache_dir() -> PathBuf {
    match std::env::var_os("TRIBUTARY_CACHE") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into())).join(".cache/tributary"),
    }
}

fn venv_bin(name: &str) -> PathBuf {
    let p = cache_dir().join("venv/bin").join(name);
    assert!(p.exists(), "{} is missing: run scripts/install-test-deps.sh (the README's test command does)", p.display());
    p
}

/// The venv's Python, which has pyarrow and duckdb.
pub fn python() -> PathBuf {
    venv_bin("python")
}

/// Servers the tests start are stopped when the test process ends, also when it aborts (a stack
/// overflow or a `panic = "abort"` skips `Drop`): Linux sends them SIGKILL when their parent dies.
trait DieWithParent {
    fn die_with_parent(&mut self) -> &mut Self;
}

impl DieWithParent for Command {
    fn die_with_parent(&mut self) -> &mut Self {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches only the child being started.
        unsafe {
            self.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            })
        }
    }
}

/// A moto server on a free port of 127.0.0.1, killed when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let child = Command::new(venv_bin("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .die_with_parent()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not listen on 127.0.0.1:{port} within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// The SDK configuration every client of this server shares: test credentials, a region, the
    /// server's endpoint.
    fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(Credentials::new(
                "test", "test", None, None, "tests",
            )))
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .build()
    }

    /// An S3 client for this server, with test credentials and path-style addressing.
    pub fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&self.sdk_config()).force_path_style(true).build())
    }

    /// An S3 client that a function with `role` would hold: its calls are recorded for the IAM
    /// check ([`calls`]).
    pub fn s3_as(&self, role: Role) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk_config())
            .force_path_style(true)
            .interceptor(CallLog::new(role, "s3"))
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// A Glue client that a function with `role` would hold, its calls recorded.
    pub fn glue_as(&self, role: Role) -> aws_sdk_glue::Client {
        let conf = aws_sdk_glue::config::Builder::from(&self.sdk_config()).interceptor(CallLog::new(role, "glue")).build();
        aws_sdk_glue::Client::from_conf(conf)
    }

    /// A Lambda client that a function with `role` would hold, its calls recorded.
    pub fn lambda_as(&self, role: Role) -> aws_sdk_lambda::Client {
        let conf = aws_sdk_lambda::config::Builder::from(&self.sdk_config()).interceptor(CallLog::new(role, "lambda")).build();
        aws_sdk_lambda::Client::from_conf(conf)
    }

    /// A Glue client for this server, with a database of `database` and a table `table`
    /// partitioned by `dt`, `hr` (the catalog function's job in the cloud).
    pub async fn glue(&self, database: &str, table: &str) -> aws_sdk_glue::Client {
        use aws_sdk_glue::types::{Column, DatabaseInput, StorageDescriptor, TableInput};
        let c = self.glue_client();
        c.create_database().database_input(DatabaseInput::builder().name(database).build().unwrap()).send().await.unwrap();
        let key = |n: &str| Column::builder().name(n).r#type("string").build().unwrap();
        c.create_table()
            .database_name(database)
            .table_input(
                TableInput::builder()
                    .name(table)
                    .partition_keys(key("dt"))
                    .partition_keys(key("hr"))
                    .storage_descriptor(StorageDescriptor::builder().location("s3://lake/tables/t/").build())
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        c
    }

    /// A Glue client for this server, nothing created.
    pub fn glue_client(&self) -> aws_sdk_glue::Client {
        aws_sdk_glue::Client::new(&self.sdk_config())
    }

    /// An Athena client for this server.
    pub fn athena(&self) -> aws_sdk_athena::Client {
        aws_sdk_athena::Client::new(&self.sdk_config())
    }

    /// POSTs JSON to moto's own API (`/moto-api/...`), e.g. to load Athena query results.
    pub fn moto_api(&self, path: &str, body: &serde_json::Value) {
        use std::io::{Read, Write};
        let addr = self.endpoint.trim_start_matches("http://");
        let body = body.to_string();
        let mut s = TcpStream::connect(addr).expect("moto answers");
        write!(s, "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
            .expect("request sent");
        let mut answer = String::new();
        s.read_to_string(&mut answer).expect("answer read");
        assert!(answer.starts_with("HTTP/1.1 20") || answer.starts_with("HTTP/1.0 20"), "moto-api {path}: {answer}");
    }

    /// A new, empty bucket.
    pub async fn bucket(&self, name: &str) -> aws_sdk_s3::Client {
        let c = self.s3();
        c.create_bucket().bucket(name).send().await.expect("bucket created");
        c
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tansu broker (Kafka protocol, SQLite storage in a temporary directory) listening and
/// advertising on a free port of 127.0.0.1, killed when dropped.
pub struct Tansu {
    child: Child,
    _dir: tempfile::TempDir,
    pub bootstrap: String,
}

impl Tansu {
    pub fn start() -> Tansu {
        let bin = cache_dir().join("tools/bin/tansu");
        assert!(bin.exists(), "{} is missing: run scripts/install-test-deps.sh (the README's test command does)", bin.display());
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let url = format!("tcp://127.0.0.1:{port}");
        // SQLite paths are relative to the working directory; its high watermarks are right.
        let child = Command::new(bin)
            .die_with_parent()
            .current_dir(dir.path())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", "sqlite://tansu.db"])
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .env_remove("STORAGE_ENGINE")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts");
        let tansu = Tansu { child, _dir: dir, bootstrap: format!("127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on 127.0.0.1:{port} within 60 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        tansu
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `tributary` binary of this build (`cargo build --bins`, which the test command runs first).
pub fn tributary_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test> -> target/<profile>/tributary
    let bin = exe.parent().and_then(|d| d.parent()).map(|d| d.join("tributary")).expect("a target directory");
    assert!(bin.exists(), "{} is missing: run `cargo build --bins` first (the README's test command does)", bin.display());
    bin
}

/// Runs `tests/py/<script>` with the venv's Python and parses its JSON output.
pub fn py_json(script: &str, args: &[&str]) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("py").join(script);
    let out = Command::new(python()).arg(&path).args(args).output().expect("python runs");
    assert!(out.status.success(), "{script} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// A sample event from `events/`, as JSON bytes.
pub fn event_file(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The bad-input corpus: `(file name, raw bytes)` of every file under `tests/corpus/bad-values/`.
pub fn bad_values() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus/bad-values");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("corpus directory")
        .map(|e| {
            let p = e.expect("entry").path();
            (p.file_name().unwrap_or_default().to_string_lossy().into_owned(), std::fs::read(&p).expect("corpus file"))
        })
        .collect();
    out.sort();
    out
}
