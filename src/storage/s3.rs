//! S3, through the AWS SDK for Rust: path-style with a custom endpoint, timeouts, bounded retries.

use async_trait::async_trait;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

use super::api::{Body, ObjectInfo, PutCondition, Storage, StorageError};

/// Amazon S3 or an S3-compatible endpoint.
#[derive(Debug, Clone)]
pub struct S3Storage {
    client: aws_sdk_s3::Client,
}

/// The S3 client as this program configures it (tests use it too).
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    // A custom endpoint (an emulator, MinIO) does not serve bucket subdomains.
    let path_style = sdk.endpoint_url().is_some();
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(path_style)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

impl S3Storage {
    pub fn new(sdk: &aws_config::SdkConfig) -> S3Storage {
        S3Storage {
            client: s3_client(sdk),
        }
    }

    fn error<E>(
        &self,
        op: &'static str,
        bucket: &str,
        key: &str,
        err: SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> StorageError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let location = self.location(bucket, key);
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().map(str::to_owned);
        match (code.as_deref(), status) {
            (Some("NoSuchBucket"), _) => StorageError::NoSuchBucket {
                bucket: bucket.to_owned(),
                location,
            },
            (Some("NoSuchKey" | "NotFound"), _) | (None, Some(404)) => {
                StorageError::NoSuchKey { location }
            }
            (Some("AccessDenied" | "Forbidden"), _) | (_, Some(403)) => {
                StorageError::AccessDenied { op, location }
            }
            (Some("PreconditionFailed"), _) | (_, Some(412)) => StorageError::ConditionFailed {
                op,
                location,
                why: "the object changed, or a condition on it did not hold".into(),
            },
            _ => {
                let detail = DisplayErrorContext(&err).to_string();
                match err {
                    SdkError::TimeoutError(_)
                    | SdkError::DispatchFailure(_)
                    | SdkError::ResponseError(_) => StorageError::Unavailable {
                        op,
                        location,
                        detail,
                    },
                    _ if status.is_some_and(|s| s >= 500) => StorageError::Unavailable {
                        op,
                        location,
                        detail,
                    },
                    _ => StorageError::Other {
                        op,
                        location,
                        detail,
                    },
                }
            }
        }
    }
}

fn size(len: Option<i64>) -> u64 {
    len.and_then(|l| u64::try_from(l).ok()).unwrap_or(0)
}

struct S3Body {
    stream: ByteStream,
    location: String,
}

#[async_trait]
impl Body for S3Body {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, StorageError> {
        match self.stream.next().await {
            None => Ok(None),
            Some(Ok(bytes)) => Ok(Some(bytes)),
            Some(Err(e)) => Err(StorageError::Unavailable {
                op: "GetObject",
                location: self.location.clone(),
                detail: DisplayErrorContext(&e).to_string(),
            }),
        }
    }
}

#[async_trait]
impl Storage for S3Storage {
    fn location(&self, bucket: &str, key: &str) -> String {
        super::api::object_name(None, bucket, key)
    }

    async fn list(
        &self,
        bucket: &str,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<ObjectInfo>, StorageError> {
        // S3 lists in key order, a page at a time: stop as soon as `max` keys are read.
        let page_size = i32::try_from(max.clamp(1, 1000)).unwrap_or(1000);
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(page_size)
            .into_paginator()
            .send();
        let mut objects = Vec::new();
        while objects.len() < max {
            let Some(page) = pages.next().await else {
                break;
            };
            let page = page.map_err(|e| self.error("ListObjectsV2", bucket, prefix, e))?;
            for object in page.contents().iter().take(max - objects.len()) {
                objects.push(ObjectInfo {
                    key: object.key().unwrap_or_default().to_owned(),
                    size: size(object.size()),
                    etag: object.e_tag().unwrap_or_default().to_owned(),
                });
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    async fn head(&self, bucket: &str, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        match self
            .client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(ObjectInfo {
                key: key.to_owned(),
                size: size(out.content_length()),
                etag: out.e_tag().unwrap_or_default().to_owned(),
            })),
            Err(e) => match self.error("HeadObject", bucket, key, e) {
                StorageError::NoSuchKey { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn get(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<(ObjectInfo, Box<dyn Body>), StorageError> {
        let out = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error("GetObject", bucket, key, e))?;
        let info = ObjectInfo {
            key: key.to_owned(),
            size: size(out.content_length()),
            etag: out.e_tag().unwrap_or_default().to_owned(),
        };
        let body = S3Body {
            stream: out.body,
            location: self.location(bucket, key),
        };
        Ok((info, Box::new(body)))
    }

    async fn copy(
        &self,
        from_bucket: &str,
        key: &str,
        to_bucket: &str,
        if_etag: &str,
        content_type: &str,
    ) -> Result<(), StorageError> {
        StorageError::require_etag("CopyObject", || self.location(from_bucket, key), if_etag)?;
        let source = format!("{from_bucket}/{}", encode_copy_source(key));
        self.client
            .copy_object()
            .copy_source(source)
            .copy_source_if_match(if_etag)
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .content_type(content_type)
            .content_disposition("attachment")
            .bucket(to_bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| match self.error("CopyObject", from_bucket, key, e) {
                StorageError::ConditionFailed { location, .. } => {
                    StorageError::changed_since_check(location, if_etag)
                }
                other => other,
            })?;
        Ok(())
    }

    async fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        content_type: &str,
        condition: PutCondition,
    ) -> Result<String, StorageError> {
        if let PutCondition::IfMatch(etag) = &condition {
            StorageError::require_etag("PutObject", || self.location(bucket, key), etag)?;
        }
        let mut request = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body));
        let conditional = condition != PutCondition::Always;
        request = match condition {
            PutCondition::Always => request,
            PutCondition::IfAbsent => request.if_none_match("*"),
            PutCondition::IfMatch(etag) => request.if_match(etag),
        };
        let out =
            request
                .send()
                .await
                .map_err(|e| match self.error("PutObject", bucket, key, e) {
                    // If-Match on an object deleted meanwhile: S3 says 404, but it is a condition.
                    StorageError::NoSuchKey { location } if conditional => {
                        StorageError::ConditionFailed {
                            op: "PutObject",
                            location,
                            why: "it was deleted since it was read".into(),
                        }
                    }
                    other => other,
                })?;
        Ok(out.e_tag().unwrap_or_default().to_owned())
    }
}

/// `x-amz-copy-source` is `bucket/key` with the key URL-encoded (slashes kept).
fn encode_copy_source(key: &str) -> String {
    percent_encoding::utf8_percent_encode(key, &crate::upload::KEY_PATH_SAFE).to_string()
}
