//! An S3-compatible store embedded in the process (s3s-fs: every object a file under a
//! directory), reached through the real AWS SDK client. For the local tool and the benchmarks;
//! behind the `embedded` feature, so the Lambda binaries never carry it.

use std::path::Path;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation};
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
        // s3s-fs renames an object's body into place before it writes the body's checksums, so
        // a crash in between leaves a body whose stored checksum is stale: with the SDK's default
        // validation every later read of it fails ("streaming error") and the local consumer can
        // never get past it. Without checksums on the way in, none is stored or validated; the
        // body itself is replaced atomically, as S3 does.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .http_client(s3s_aws::Client::from(service))
        .build();
    Ok(aws_sdk_s3::Client::from_conf(conf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ObjectRead, ObjectWrite, Precondition, PutOutcome, S3Store};
    use bytes::Bytes;

    /// s3s-fs renames the object's file into place first and writes its metadata (ETag and
    /// checksums) after, so a `kill -9` in between leaves the new body under the old metadata.
    /// S3 itself is atomic; the embedded store must still read such an object, or the local
    /// consumer could never restart past it.
    #[tokio::test]
    async fn an_object_stays_readable_after_a_crash_between_its_body_and_its_metadata() {
        let root = std::env::temp_dir().join(format!("tributary-embedded-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("tributary-test")).unwrap();
        let store = S3Store::new(s3_client(&root).unwrap(), "tributary-test");
        let put = |body: &'static str, when| store.put("k/claims.json", Bytes::from_static(body.as_bytes()), when);
        assert!(matches!(put("first", Precondition::None).await.unwrap(), PutOutcome::Written { .. }));
        let info = |e: &std::fs::DirEntry| e.file_name().to_string_lossy().ends_with(".internal.json");
        let info_path = std::fs::read_dir(&root).unwrap().map(Result::unwrap).find(info).unwrap().path();
        let stale = std::fs::read(&info_path).unwrap();
        put("second, longer", Precondition::None).await.unwrap();
        std::fs::write(&info_path, stale).unwrap(); // the crash: the new body, the old metadata

        let got = store.get("k/claims.json").await.unwrap().unwrap();
        assert_eq!(&got.body[..], b"second, longer");
        // The ETag is only a version token: a compare-and-swap on the one read still goes through.
        let etag = got.etag.unwrap();
        assert!(matches!(put("third", Precondition::IfMatch(etag)).await.unwrap(), PutOutcome::Written { .. }));
        assert_eq!(&store.get("k/claims.json").await.unwrap().unwrap().body[..], b"third");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
