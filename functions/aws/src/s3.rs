//! The object-store capabilities on Amazon S3 (or any S3-compatible endpoint).

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use std::ops::Range;

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, TaggingDirective};

use crate::{MultipartWrite, Object, ObjectMeta, ObjectRead, ObjectWrite, Precondition, PutOutcome, StoreError};

/// A bucket, through the AWS SDK.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
}

impl S3Store {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3Store { client, bucket: bucket.into() }
    }

    /// A client from the environment (region, credentials, `AWS_ENDPOINT_URL`). Path-style
    /// addressing is used when an endpoint is set, as S3-compatible servers expect.
    pub async fn from_env(bucket: impl Into<String>) -> Self {
        let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let mut conf = aws_sdk_s3::config::Builder::from(&shared)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5));
        if std::env::var_os("AWS_ENDPOINT_URL").is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some() {
            conf = conf.force_path_style(true);
        }
        S3Store::new(Client::from_conf(conf.build()), bucket)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn failure(&self, op: &'static str, key: &str, message: String) -> StoreError {
        StoreError { op, bucket: self.bucket.clone(), key: key.to_string(), message }
    }

    fn error<E, R>(&self, op: &'static str, key: &str, e: SdkError<E, R>) -> StoreError
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        StoreError { op, bucket: self.bucket.clone(), key: key.to_string(), message: DisplayErrorContext(&e).to_string() }
    }
}

fn status<E, R: HasStatus>(e: &SdkError<E, R>) -> Option<u16> {
    e.raw_response().map(|r| r.status_code())
}

trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

impl ObjectRead for S3Store {
    async fn get(&self, key: &str) -> Result<Option<Object>, StoreError> {
        let out = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) || status(&e) == Some(404) => return Ok(None),
            Err(e) => return Err(self.error("GetObject", key, e)),
        };
        let etag = out.e_tag().map(str::to_string);
        let body = out.body.collect().await.map_err(|e| self.failure("GetObject", key, format!("reading the body: {e}")))?;
        Ok(Some(Object { body: body.into_bytes(), etag }))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>, StoreError> {
        let mut out = Vec::new();
        let mut pages = self.client.list_objects_v2().bucket(&self.bucket).prefix(prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error("ListObjectsV2", prefix, e))?;
            for o in page.contents() {
                if let Some(k) = o.key() {
                    out.push(ObjectMeta {
                        key: k.to_string(),
                        size: o.size().unwrap_or(0).max(0) as u64,
                        last_modified_ms: o.last_modified().and_then(|t| t.to_millis().ok()),
                    });
                }
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, StoreError> {
        if range.start >= range.end {
            return Ok(Bytes::new());
        }
        let header = format!("bytes={}-{}", range.start, range.end - 1);
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(header)
            .send()
            .await
            .map_err(|e| self.error("GetObject", key, e))?;
        let body = out.body.collect().await.map_err(|e| self.failure("GetObject", key, format!("reading the body: {e}")))?;
        Ok(body.into_bytes())
    }
}

impl ObjectWrite for S3Store {
    async fn put(&self, key: &str, body: Bytes, when: Precondition) -> Result<PutOutcome, StoreError> {
        let mut req = self.client.put_object().bucket(&self.bucket).key(key).body(ByteStream::from(body));
        req = match when {
            Precondition::None => req,
            Precondition::IfAbsent => req.if_none_match("*"),
            Precondition::IfMatch(etag) => req.if_match(etag),
        };
        match req.send().await {
            Ok(o) => Ok(PutOutcome::Written { etag: o.e_tag().map(str::to_string) }),
            // 412: the condition failed; 409: a concurrent conditional write won the race.
            Err(e) if matches!(status(&e), Some(412 | 409)) || e.code() == Some("PreconditionFailed") => {
                Ok(PutOutcome::PreconditionFailed)
            }
            // If-Match on a key that is gone.
            Err(e) if status(&e) == Some(404) => Ok(PutOutcome::PreconditionFailed),
            Err(e) => Err(self.error("PutObject", key, e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error("DeleteObject", key, e))
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), StoreError> {
        let source = format!("{}/{}", self.bucket, percent_encode_key(from));
        // CopyObject copies the source's tags unless told otherwise (the default directive is
        // COPY). A copy is a new live file: it must never inherit a tag a lifecycle rule or a
        // cleaner acts on, and COPY would also need s3:GetObjectTagging and s3:PutObjectTagging.
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .key(to)
            .copy_source(source)
            .tagging_directive(TaggingDirective::Replace)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error("CopyObject", to, e))
    }
}

/// CopySource is `bucket/key` with the key URL-encoded (slashes kept).
fn percent_encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl MultipartWrite for S3Store {
    async fn start_upload(&self, key: &str) -> Result<String, StoreError> {
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error("CreateMultipartUpload", key, e))?;
        out.upload_id()
            .map(str::to_string)
            .ok_or_else(|| self.failure("CreateMultipartUpload", key, "no upload id in the answer".into()))
    }

    async fn upload_part(&self, key: &str, upload_id: &str, number: i32, body: Bytes) -> Result<String, StoreError> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.error("UploadPart", key, e))?;
        Ok(out.e_tag().unwrap_or_default().to_string())
    }

    async fn complete_upload(&self, key: &str, upload_id: &str, parts: Vec<(i32, String)>) -> Result<(), StoreError> {
        let parts: Vec<CompletedPart> =
            parts.into_iter().map(|(n, etag)| CompletedPart::builder().part_number(n).e_tag(etag).build()).collect();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error("CompleteMultipartUpload", key, e))
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), StoreError> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.error("AbortMultipartUpload", key, e))
    }
}
