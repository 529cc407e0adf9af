//! Buckets: S3, or folders on disk for local runs, behind one trait with one behaviour.
//!
//! The pipeline needs only these operations: list an upload's files, stream one into the checks,
//! copy a checked file on the condition that it is still the bytes that were checked, and write a
//! small object (the report) with an optional condition. `api.rs` holds the trait and its types;
//! `local.rs`, `s3.rs` and `overlay.rs` implement it. This file only lists them.

mod api;
mod local;
mod overlay;
mod s3;

pub use api::{
    object_name, read_small, Body, ObjectInfo, PutCondition, Small, Storage, StorageError,
};
pub use local::LocalStorage;
pub use overlay::Overlay;
pub use s3::{s3_client, S3Storage};
