//! The fakes' self-tests: each fake of src/fakes/ driven by the real client of the service it
//! plays (the AWS SDK, octocrab, the sentry crate, reqwest as the program's webhook client, the
//! lambda_runtime crate). One test binary; a fake's tests are the module of its name.

mod aws_s3;
mod aws_ses_cloudfront;
mod github;
mod lambda_runtime;
mod sentry;
mod wdiv;
