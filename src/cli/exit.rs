//! How a command ends: the exit codes of the contract, and the errors that are a failure of the
//! command itself (exit 2), not a verdict on a file.

use crate::event::EventError;
use crate::settings::SettingsError;
use crate::storage::StorageError;
use crate::upload::KeyError;

/// Exit codes of the contract: 0 all pass, 1 any fails, 2 usage or I/O error.
pub const EXIT_PASS: u8 = 0;
pub const EXIT_FAIL: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

/// A failure of the command itself, not a verdict on a file.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is a directory; give the files of the upload instead")]
    IsDirectory { path: String },
    #[error("stdin (-) can be given only once")]
    StdinTwice,
    #[error("cannot write the output: {0}")]
    Write(#[source] std::io::Error),
    #[error("{0}")]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Event(#[from] EventError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Client(#[from] crate::effects::ClientError),
    #[error("{path} has no file name")]
    NoFileName { path: String },
    #[error(transparent)]
    Override(#[from] crate::staff_override::OverrideError),
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

/// Why a replay cannot start, or an event cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(
        "{given} is not an upload in the temp bucket: {why} (give \
         s3://{temp}/COUNCIL_ID/YYYY-MM-DD/TIMESTAMP)"
    )]
    NotAnUpload {
        given: String,
        why: String,
        temp: String,
    },
    #[error(
        "{location} holds no file of an upload: nothing to replay (is the prefix right? list \
         the bucket to see the uploads)"
    )]
    Empty { location: String },
    #[error("cannot invoke the function {function}: {why}")]
    Invoke { function: String, why: String },
    #[error("cannot read the queue {queue}: {why}")]
    Queue { queue: String, why: String },
}
