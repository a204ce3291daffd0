//! An S3-compatible store embedded in the process (s3s-fs: every object a file under a
//! directory), reached through the real AWS SDK client. For the local tool and the benchmarks;
//! behind the `embedded` feature, so the Lambda binaries never carry it.

use std::path::Path;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

const ACCESS_KEY: &str = "tributary-local";
const SECRET_KEY: &str = "tributary-local-secret";

/// An S3 client whose requests are served in-process by s3s-fs over `root`.
pub fn s3_client(root: &Path) -> Result<aws_sdk_s3::Client, String> {
    std::fs::create_dir_all(root).map_err(|e| format!("embedded store at {}: {e}", root.display()))?;
    let fs = s3s_fs::FileSystem::new(root).map_err(|e| format!("embedded store at {}: {e:?}", root.display()))?;
    let mut builder = S3ServiceBuilder::new(fs);
    builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
    let service = builder.build();
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "tributary-local"))
        .region(Region::new("us-east-1"))
        .endpoint_url("http://localhost")
        .force_path_style(true)
        .http_client(s3s_aws::Client::from(service))
        .build();
    Ok(aws_sdk_s3::Client::from_conf(conf))
}
