//! The S3 backend (aws-sdk-s3), for AWS or any S3-compatible store.
//!
//! The endpoint and path-style addressing are configurable; checksums are only sent and checked
//! where S3 requires them, because several S3-compatible stores reject the newer defaults.

use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use tokio::io::AsyncWriteExt;

use super::{Fingerprint, ObjectKey, ObjectMeta, StorageError};

pub struct S3Storage {
    client: Client,
    bucket: String,
}

/// How to reach the bucket; credentials come from the usual AWS environment variables.
pub struct S3Config {
    pub bucket: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub path_style: bool,
}

impl S3Storage {
    pub async fn connect(cfg: S3Config) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(Region::new(cfg.region));
        if let Some(endpoint) = &cfg.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        let conf = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(cfg.path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        Self {
            client: Client::from_conf(conf),
            bucket: cfg.bucket,
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn presigning(ttl: Duration) -> Result<PresigningConfig, StorageError> {
        PresigningConfig::expires_in(ttl).map_err(|e| StorageError::Failed(e.to_string()))
    }

    /// A presigned PUT; with `size`, the length is a signed header, so the store refuses a body
    /// of any other size.
    pub async fn presign_put(
        &self,
        key: &ObjectKey,
        ttl: Duration,
        size: Option<u64>,
    ) -> Result<String, StorageError> {
        let length = size
            .map(i64::try_from)
            .transpose()
            .map_err(|_| StorageError::Failed("the declared size is out of range".into()))?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .set_content_length(length)
            .presigned(Self::presigning(ttl)?)
            .await
            .map_err(|e| failed("presigning a PUT", key, e))?;
        Ok(req.uri().to_owned())
    }

    pub async fn presign_get(
        &self,
        key: &ObjectKey,
        ttl: Duration,
    ) -> Result<String, StorageError> {
        let req = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .presigned(Self::presigning(ttl)?)
            .await
            .map_err(|e| failed("presigning a GET", key, e))?;
        Ok(req.uri().to_owned())
    }

    /// The object's HEAD, or `NotFound`.
    async fn head(
        &self,
        key: &ObjectKey,
    ) -> Result<aws_sdk_s3::operation::head_object::HeadObjectOutput, StorageError> {
        self.client
            .head_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_not_found()) {
                    StorageError::NotFound(key.to_string())
                } else {
                    failed("HEAD", key, e)
                }
            })
    }

    pub async fn size(&self, key: &ObjectKey) -> Result<u64, StorageError> {
        let head = self.head(key).await?;
        Ok(head.content_length().unwrap_or(0).max(0) as u64)
    }

    /// The object's ETag and size; S3 keeps no SHA-256 of a whole object a client PUT with a
    /// presigned URL, so the hash is the downloader's to compute.
    pub async fn fingerprint(&self, key: &ObjectKey) -> Result<Fingerprint, StorageError> {
        let head = self.head(key).await?;
        Ok(Fingerprint {
            version: format!(
                "{}-{}",
                head.e_tag().unwrap_or_default().trim_matches('"'),
                head.content_length().unwrap_or(0)
            ),
            sha256: None,
        })
    }

    pub async fn download(&self, key: &ObjectKey, dest: &Path) -> Result<u64, StorageError> {
        let object = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => {
                return Err(
                    if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                        StorageError::NotFound(key.to_string())
                    } else {
                        failed("GET", key, e)
                    },
                );
            }
        };
        let mut body = object.body;
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(|e| StorageError::Failed(format!("{}: {e}", dest.display())))?;
        let mut written = 0u64;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| failed("reading the body of", key, e))?
        {
            written += chunk.len() as u64;
            file.write_all(&chunk)
                .await
                .map_err(|e| StorageError::Failed(format!("{}: {e}", dest.display())))?;
        }
        file.flush()
            .await
            .map_err(|e| StorageError::Failed(format!("{}: {e}", dest.display())))?;
        Ok(written)
    }

    pub async fn upload(
        &self,
        src: &Path,
        key: &ObjectKey,
        meta: &ObjectMeta,
    ) -> Result<(), StorageError> {
        let body = ByteStream::from_path(src)
            .await
            .map_err(|e| StorageError::Failed(format!("{}: {e}", src.display())))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(&meta.content_type)
            .cache_control(meta.cache.header())
            .body(body)
            .send()
            .await
            .map_err(|e| failed("PUT", key, e))?;
        Ok(())
    }

    pub async fn put_bytes(
        &self,
        key: &ObjectKey,
        bytes: bytes::Bytes,
        meta: &ObjectMeta,
    ) -> Result<(), StorageError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(&meta.content_type)
            .cache_control(meta.cache.header())
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| failed("PUT", key, e))?;
        Ok(())
    }

    pub async fn get_bytes(&self, key: &ObjectKey) -> Result<Vec<u8>, StorageError> {
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    StorageError::NotFound(key.to_string())
                } else {
                    failed("GET", key, e)
                }
            })?;
        let body = object
            .body
            .collect()
            .await
            .map_err(|e| failed("reading the body of", key, e))?;
        Ok(body.into_bytes().to_vec())
    }

    pub async fn check(&self) -> Result<(), StorageError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                StorageError::Failed(format!(
                    "bucket '{}' is not reachable: {}",
                    self.bucket,
                    aws_sdk_s3::error::DisplayErrorContext(e)
                ))
            })
    }
}

fn failed<E: std::error::Error>(what: &str, key: &ObjectKey, e: E) -> StorageError {
    StorageError::Failed(format!(
        "S3 {what} '{key}' failed: {}",
        aws_sdk_s3::error::DisplayErrorContext(e)
    ))
}
